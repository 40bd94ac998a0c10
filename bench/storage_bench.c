/* storage_bench.c — how close partition_append comes to the page cache, and
 * what recovery after a crash and a clean reopen cost.
 *
 * Phases, all in one fresh temporary directory (removed at the end):
 *  1. append vs baseline, alternated for --rounds rounds (baseline, append,
 *     baseline, append, ...) because the machine is shared and noisy:
 *       baseline: write() of the same pooled batch buffers to a fresh file;
 *       append:   partition_append() of those batches to one partition of a
 *                 fresh store (store_open, store_topic_create, store_partition).
 *     Each phase runs for --seconds or until --max-bytes, whichever comes
 *     first; the best round of each is reported, with the median and every
 *     round listed too (JSON: append_mb_s etc. are the best, *_median the
 *     medians). An untimed write() phase runs first (--no-warmup skips it):
 *     on a VM the first phase otherwise pays for memory not yet handed out.
 *     Files of a finished phase are deleted before the next one starts, and
 *     an append store is dropped with store_crash so its unflushed gigabytes
 *     are not written to disk just to be deleted.
 *  2. recovery: a --recovery-mb segment written through the engine without a
 *     flush, the store dropped with store_crash, then the partition recovered
 *     with partition_open(recover=1) — the very call store_partition makes
 *     after an unclean shutdown — which reports partition_recovery_t.
 *  3. clean reopen of that partition: store_close, then store_open +
 *     store_partition timed.
 *  4. optionally (--fsync-bench) acks=all: threads appending small batches,
 *     each waiting for flusher_wait_sync, to show group commit.
 *
 * MB here is MiB (2^20 bytes). Progress goes to stderr; the report to stdout,
 * or with --json to stderr while stdout gets one JSON object on one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "clock.h"
#include "crc32c.h"
#include "store.h"

#define MIB        (1024.0 * 1024.0)
#define MAX_ROUNDS 16

typedef struct opts {
    const char *dir; /* parent of the temporary directory */
    double seconds;
    int64_t max_bytes;
    int64_t segment_bytes; /* 0: the engine's default */
    int rounds;
    int64_t recovery_mb; /* 0: skip */
    const char *recovery_mode;
    int fsync_bench;
    int fsync_threads;
    double fsync_seconds;
    int batch_records;
    int64_t batch_bytes;
    int pool;
    int json;
    int keep;
    int warmup;
} opts_t;

/* ---- process-wide state for error exits ---------------------------------- */

static char g_root[4096]; /* the temporary directory, removed on exit */
static int g_keep;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static void cleanup(void)
{
    if (!g_root[0]) return;
    if (g_keep)
        fprintf(stderr, "storage_bench: keeping %s\n", g_root);
    else if (rmtree(g_root) < 0)
        fprintf(stderr, "storage_bench: could not remove %s: %s\n", g_root, strerror(errno));
    g_root[0] = 0;
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("storage_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup();
    exit(1);
}

/* Exits with the storage error unless rc is SL_OK. */
static void check(int rc, const sl_err_t *err, const char *what)
{
    if (rc == SL_OK) return;
    die("%s: %s (%s)", what, err->msg[0] ? err->msg : "no message", sl_code_name(rc));
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("storage_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- clocks ------------------------------------------------------------------ */

/* ---- batches ----------------------------------------------------------------- */

typedef struct pool {
    uint8_t **bufs;
    int n;
    size_t len;        /* every batch has this size */
    int records;       /* per batch */
    size_t value_size; /* per record */
} pool_t;

/* The largest value size whose batch of `records` records fits in `target`
 * bytes (at least 1). */
static size_t fit_value_size(int records, size_t target)
{
    size_t lo = 1, hi = target;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2, len;
        uint8_t *b = bg_simple(records, mid, 0, 1, &len);
        if (!b) die("cannot build a batch of %d records of %zu bytes", records, mid);
        free(b);
        if (len <= target)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static void pool_build(pool_t *p, int n, int records, size_t value_size)
{
    p->bufs = calloc((size_t)n, sizeof *p->bufs);
    if (!p->bufs) die("out of memory");
    p->n = n;
    p->records = records;
    p->value_size = value_size;
    int64_t ts = sl_wall_ms();
    for (int i = 0; i < n; i++) {
        size_t len;
        p->bufs[i] = bg_simple(records, value_size, ts, (uint32_t)i * 7919u + 1, &len);
        if (!p->bufs[i]) die("cannot build batch %d", i);
        if (i == 0)
            p->len = len;
        else if (len != p->len)
            die("batches differ in size (%zu vs %zu)", len, p->len);
    }
}

static void pool_free(pool_t *p)
{
    for (int i = 0; i < p->n; i++) free(p->bufs[i]);
    free(p->bufs);
}

/* ---- helpers ----------------------------------------------------------------- */

static const char *fs_name(const char *path)
{
    struct statfs st;
    if (statfs(path, &st) < 0) return "unknown";
    switch ((unsigned long)st.f_type) {
    case 0xEF53UL:
        return "ext4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x01021994UL:
        return "tmpfs";
    case 0x794C7630UL:
        return "overlayfs";
    case 0x2FC12FC1UL:
        return "zfs";
    case 0xF2F52010UL:
        return "f2fs";
    default:
        return "other";
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double best(const double *v, int n)
{
    double b = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] > b) b = v[i];
    return b;
}

/* Topic overrides for segment.bytes (and max.message.bytes when a small
 * segment would otherwise be refused: a batch must fit in a segment). */
typedef struct overrides {
    const char *keys[2];
    const char *vals[2];
    char vbuf[2][32];
    size_t n;
} overrides_t;

static void overrides_segment(overrides_t *ov, int64_t segment_bytes)
{
    memset(ov, 0, sizeof *ov);
    if (segment_bytes <= 0) return;
    sl_log_conf_t def;
    sl_log_conf_defaults(&def);
    snprintf(ov->vbuf[0], sizeof ov->vbuf[0], "%" PRId64, segment_bytes);
    ov->keys[ov->n] = "segment.bytes";
    ov->vals[ov->n++] = ov->vbuf[0];
    if (def.max_message_bytes > segment_bytes) {
        snprintf(ov->vbuf[1], sizeof ov->vbuf[1], "%" PRId64, segment_bytes);
        ov->keys[ov->n] = "max.message.bytes";
        ov->vals[ov->n++] = ov->vbuf[1];
    }
}

/* Opens a fresh store in dir with one single-partition topic. */
static void open_fresh(const char *dir, const char *topic, int64_t segment_bytes, store_t **s,
                       partition_t **p)
{
    sl_err_t err;
    sl_err_clear(&err);
    store_opts_t so = {.dir = dir};
    check(store_open(&so, s, &err), &err, "store_open");
    overrides_t ov;
    overrides_segment(&ov, segment_bytes);
    check(store_topic_create(*s, topic, 1, ov.keys, ov.vals, ov.n, &err), &err,
          "store_topic_create");
    check(store_partition(*s, topic, 0, p, &err), &err, "store_partition");
}

/* ---- phase 1: append vs baseline --------------------------------------------- */

typedef struct phase {
    uint64_t bytes, batches, records;
    double secs;
    double user, sys; /* CPU seconds of the timed loop's thread */
    uint32_t segments;
} phase_t;

static void thread_cpu(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void phase_begin(phase_t *r)
{
    thread_cpu(&r->user, &r->sys);
}

static void phase_end(phase_t *r, uint64_t t0)
{
    r->secs = (double)(sl_mono_ns() - t0) / 1e9;
    double u, s;
    thread_cpu(&u, &s);
    r->user = u - r->user;
    r->sys = s - r->sys;
}

static double mb_s(const phase_t *r)
{
    return r->secs > 0 ? (double)r->bytes / MIB / r->secs : 0;
}

static volatile int64_t g_clock_sink;

static phase_t run_baseline(const opts_t *o, const pool_t *pl, const char *root, int round)
{
    char path[4200];
    if (round < 0)
        snprintf(path, sizeof path, "%s/warmup.dat", root);
    else
        snprintf(path, sizeof path, "%s/baseline-%d.dat", root, round);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open %s: %s", path, strerror(errno));
    phase_t r = {0};
    phase_begin(&r);
    int64_t t0 = sl_mono_ns(), deadline = t0 + (int64_t)(o->seconds * 1e9);
    for (;;) {
        if (sl_mono_ns() >= deadline || r.bytes + pl->len > (uint64_t)o->max_bytes) break;
        g_clock_sink = sl_wall_ms(); /* read as often as the append loop reads it */
        const uint8_t *b = pl->bufs[r.batches % (uint64_t)pl->n];
        size_t off = 0;
        while (off < pl->len) {
            ssize_t w = write(fd, b + off, pl->len - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                die("write %s @%" PRIu64 ": %s", path, r.bytes + off, strerror(errno));
            }
            off += (size_t)w;
        }
        r.bytes += pl->len;
        r.batches++;
    }
    phase_end(&r, t0);
    r.records = r.batches * (uint64_t)pl->records;
    r.segments = 1;
    close(fd);
    if (unlink(path) < 0) die("unlink %s: %s", path, strerror(errno));
    return r;
}

static phase_t run_append(const opts_t *o, const pool_t *pl, const char *root, int round)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/append-%d", root, round);
    store_t *s;
    partition_t *p;
    open_fresh(dir, "bench", o->segment_bytes, &s, &p);
    sl_err_t err;
    sl_err_clear(&err);
    phase_t r = {0};
    phase_begin(&r);
    int64_t t0 = sl_mono_ns(), deadline = t0 + (int64_t)(o->seconds * 1e9);
    for (;;) {
        if (sl_mono_ns() >= deadline || r.bytes + pl->len > (uint64_t)o->max_bytes) break;
        partition_append_info_t info;
        int rc = partition_append(p, pl->bufs[r.batches % (uint64_t)pl->n], pl->len, sl_wall_ms(),
                                  &info, &err);
        check(rc, &err, "partition_append");
        r.bytes += pl->len;
        r.batches++;
        r.records += (uint64_t)info.records;
    }
    phase_end(&r, t0);
    partition_stats_t st;
    partition_stats(p, &st);
    if (st.size_bytes != r.bytes || st.log_end != (int64_t)r.records)
        die("append round %d: partition holds %" PRIu64 " bytes, %" PRId64
            " records; appended %" PRIu64 " bytes, %" PRIu64 " records",
            round, st.size_bytes, st.log_end, r.bytes, r.records);
    r.segments = st.segments;
    /* Dropped without I/O: a clean close (or store_topic_delete) would first
     * fdatasync gigabytes that are about to be deleted anyway. */
    partition_unref(p);
    store_crash(s);
    int e = rmtree(dir);
    if (e < 0) die("remove %s: %s", dir, strerror(-e));
    return r;
}

/* ---- phase 2 and 3: recovery, clean reopen ----------------------------------- */

#define CLEAN_OPENS 3

typedef struct recovery {
    uint64_t bytes_written;
    int64_t records;
    double write_secs;
    double ms;
    partition_recovery_t rec;
    double clean_open_ms; /* best of CLEAN_OPENS */
    double clean_open_ms_all[CLEAN_OPENS];
} recovery_t;

/* Brings the crashed segment into the state --recovery-mode asks for. */
static void settle(const char *mode, const char *logpath)
{
    if (strcmp(mode, "dirty") == 0) return; /* recovery's own fdatasync writes it back */
    int fd = open(logpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open %s: %s", logpath, strerror(errno));
    if (fdatasync(fd) < 0) die("fdatasync %s: %s", logpath, strerror(errno));
    if (strcmp(mode, "cold") == 0) {
        int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (e != 0) die("posix_fadvise %s: %s", logpath, strerror(e));
    }
    close(fd);
}

static void run_recovery(const opts_t *o, const pool_t *pl, const char *root, recovery_t *out)
{
    char dir[4200], pdir[4300], logpath[4400];
    snprintf(dir, sizeof dir, "%s/recovery", root);
    snprintf(pdir, sizeof pdir, "%s/topics/recovery/0", dir);
    snprintf(logpath, sizeof logpath, "%s/%020d.log", pdir, 0);
    uint64_t target = (uint64_t)o->recovery_mb * 1024 * 1024;
    /* One segment: room for the target plus a batch. */
    int64_t seg_bytes = (int64_t)target + 1024 * 1024;
    sl_err_t err;
    sl_err_clear(&err);
    memset(out, 0, sizeof *out);

    progress("recovery: writing %" PRId64 " MiB through the engine, no flush", o->recovery_mb);
    store_t *s;
    partition_t *p;
    open_fresh(dir, "recovery", seg_bytes, &s, &p);
    uint64_t t0 = sl_mono_ns();
    uint64_t n = 0;
    while (out->bytes_written + pl->len <= target) {
        partition_append_info_t info;
        check(partition_append(p, pl->bufs[n++ % (uint64_t)pl->n], pl->len, sl_wall_ms(), &info,
                               &err),
              &err, "partition_append (recovery data)");
        out->bytes_written += pl->len;
        out->records += info.records;
    }
    out->write_secs = (double)(sl_mono_ns() - t0) / 1e9;
    partition_stats_t st;
    partition_stats(p, &st);
    if (st.segments != 1) die("recovery data spans %u segments, expected 1", st.segments);
    if (st.durable != 0) die("recovery data was flushed (durable %" PRId64 ")", st.durable);
    partition_unref(p);
    store_crash(s);

    settle(o->recovery_mode, logpath);
    progress("recovery: crashed; recovering (%s)", o->recovery_mode);

    /* The recovery itself: what store_partition runs after an unclean
     * shutdown (open_part: partition_open with recover = !was_clean). */
    sl_log_conf_t conf;
    sl_log_conf_defaults(&conf);
    conf.segment_bytes = seg_bytes;
    seg_cache_t *cache = seg_cache_new(1024);
    if (!cache) die("out of memory");
    partition_opts_t po = {.dir = pdir,
                           .topic = "recovery",
                           .id = 0,
                           .conf = &conf,
                           .cache = cache,
                           .recover = 1,
                           .now_ms = sl_wall_ms()};
    t0 = sl_mono_ns();
    int rc = partition_open(&po, &p, &out->rec, &err);
    out->ms = (double)(sl_mono_ns() - t0) / 1e6;
    check(rc, &err, "partition_open(recover=1)");
    int64_t leo = partition_log_end(p);
    partition_close(p, 0);
    seg_cache_free(cache);
    if (!out->rec.ran) die("recovery did not run after store_crash");
    if (out->rec.bytes_truncated || out->rec.segments_deleted || leo != out->records)
        die("recovery lost data: log end %" PRId64 " (expected %" PRId64 "), %" PRIu64
            " bytes truncated, %d segments deleted: %s",
            leo, out->records, out->rec.bytes_truncated, out->rec.segments_deleted,
            out->rec.reason);

    /* Clean reopen. The store still lacks its clean-shutdown marker (the
     * partition was recovered behind its back): open, close cleanly, then
     * time store_open + store_partition. */
    store_opts_t so = {.dir = dir};
    check(store_open(&so, &s, &err), &err, "store_open");
    check(store_partition(s, "recovery", 0, &p, &err), &err, "store_partition");
    partition_unref(p);
    store_close(s);
    for (int i = 0; i < CLEAN_OPENS; i++) {
        t0 = sl_mono_ns();
        check(store_open(&so, &s, &err), &err, "store_open (clean)");
        check(store_partition(s, "recovery", 0, &p, &err), &err, "store_partition (clean)");
        double ms = (double)(sl_mono_ns() - t0) / 1e6;
        if (!store_was_clean(s)) die("store_close did not leave a clean-shutdown marker");
        if (partition_log_end(p) != out->records)
            die("clean reopen: log end %" PRId64 ", expected %" PRId64, partition_log_end(p),
                out->records);
        out->clean_open_ms_all[i] = ms;
        if (i == 0 || ms < out->clean_open_ms) out->clean_open_ms = ms;
        partition_unref(p);
        store_close(s);
    }
    int e = rmtree(dir);
    if (e < 0) die("remove %s: %s", dir, strerror(-e));
}

/* ---- phase 4: acks=all --------------------------------------------------------- */

#define FSYNC_RECORDS 10
#define FSYNC_VALUE   100

typedef struct fs_worker {
    pthread_t th;
    partition_t *p;
    flusher_t *f;
    uint8_t *buf;
    size_t len;
    atomic_int *stop;
    uint64_t appends;
    int rc;
    sl_err_t err;
} fs_worker_t;

static void *fs_loop(void *arg)
{
    fs_worker_t *w = arg;
    while (!atomic_load(w->stop)) {
        partition_append_info_t info;
        w->rc = partition_append(w->p, w->buf, w->len, sl_wall_ms(), &info, &w->err);
        if (w->rc != SL_OK) break;
        w->rc = flusher_wait_sync(w->f, w->p, info.last_offset, &w->err);
        if (w->rc != SL_OK) break;
        w->appends++;
    }
    return NULL;
}

typedef struct fsync_res {
    int threads;
    size_t batch_bytes;
    double secs;
    uint64_t appends;
    flusher_stats_t st;
} fsync_res_t;

static void run_fsync(const opts_t *o, const char *root, fsync_res_t *out)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/fsync", root);
    store_t *s;
    partition_t *p;
    open_fresh(dir, "fsync", 0, &s, &p);
    flusher_t *f = store_flusher(s);
    int nt = o->fsync_threads;
    fs_worker_t *w = calloc((size_t)nt, sizeof *w);
    if (!w) die("out of memory");
    atomic_int stop = 0;
    memset(out, 0, sizeof *out);
    out->threads = nt;
    flusher_stats_t before, after;
    flusher_get_stats(f, &before);
    uint64_t t0 = sl_mono_ns();
    for (int i = 0; i < nt; i++) {
        w[i].p = p;
        w[i].f = f;
        w[i].stop = &stop;
        w[i].buf = bg_simple(FSYNC_RECORDS, FSYNC_VALUE, sl_wall_ms(), (uint32_t)i + 1, &w[i].len);
        if (!w[i].buf) die("cannot build a batch");
        out->batch_bytes = w[i].len;
        int e = pthread_create(&w[i].th, NULL, fs_loop, &w[i]);
        if (e != 0) die("pthread_create: %s", strerror(e));
    }
    struct timespec ts = {(time_t)o->fsync_seconds,
                          (long)((o->fsync_seconds - (double)(time_t)o->fsync_seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) continue;
    atomic_store(&stop, 1);
    for (int i = 0; i < nt; i++) pthread_join(w[i].th, NULL);
    out->secs = (double)(sl_mono_ns() - t0) / 1e9;
    flusher_get_stats(f, &after);
    out->st.flushes = after.flushes - before.flushes;
    out->st.waits_done = after.waits_done - before.waits_done;
    out->st.flush_ns_sum = after.flush_ns_sum - before.flush_ns_sum;
    for (int i = 0; i < nt; i++) {
        check(w[i].rc, &w[i].err, "acks=all append/wait");
        out->appends += w[i].appends;
        free(w[i].buf);
    }
    free(w);
    partition_unref(p);
    store_close(s);
    int e = rmtree(dir);
    if (e < 0) die("remove %s: %s", dir, strerror(-e));
}

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: storage_bench [options]\n"
            "\n"
            "Measures the storage engine against the page cache: partition_append of\n"
            "pre-built RecordBatch v2 batches to one partition vs plain write() of the same\n"
            "buffers to a file in the same directory (alternated; best and median reported),\n"
            "the cost of crash recovery of an unflushed segment, a clean reopen, and\n"
            "optionally acks=all group commit. MB means MiB (2^20 bytes) throughout.\n"
            "\n"
            "  --dir DIR            parent of the temporary directory (default $TMPDIR or /tmp);\n"
            "                       a fresh sluice-bench.XXXXXX is made in it and removed at exit\n"
            "  --seconds N          duration of each append/baseline phase (default 3)\n"
            "  --max-bytes N        ... or until N bytes were written, whichever comes first\n"
            "                       (default 2147483648); suffixes K, M, G accepted\n"
            "  --rounds N           baseline/append rounds, alternated (default 2, max %d)\n"
            "  --segment-bytes N    segment.bytes for the append phase (default: the engine's,\n"
            "                       1 GiB; segments roll naturally)\n"
            "  --batch-bytes N      target batch size (default 16384)\n"
            "  --batch-records N    records per batch (default 160; values sized to fit)\n"
            "  --pool N             distinct pre-built batches cycled through (default 64)\n"
            "  --recovery-mb N      size in MiB of the segment to recover (default 1024;\n"
            "                       0 skips recovery and clean-reopen measurements)\n"
            "  --recovery-mode M    state of the crashed segment when recovery starts:\n"
            "                       warm  written back by the kernel, still in the page cache\n"
            "                             (default: the scan itself is measured)\n"
            "                       cold  written back and dropped from the page cache (read\n"
            "                             from disk, as after a power loss)\n"
            "                       dirty still dirty (recovery's own fdatasync writes it out)\n"
            "  --fsync-bench        also run acks=all: threads append %d-record batches, each\n"
            "                       followed by flusher_wait_sync (group commit)\n"
            "  --fsync-threads N    threads for --fsync-bench (default 4)\n"
            "  --fsync-seconds N    duration of --fsync-bench (default 2)\n"
            "  --json               report to stderr; stdout gets one JSON object on one line\n"
            "  --no-warmup          skip the untimed write() phase run before round 1\n"
            "  --keep               keep the temporary directory\n"
            "  --help               this text\n"
            "\n"
            "Noise: on a VM, page-cache bandwidth of a fresh multi-GiB phase swings with the\n"
            "host's memory management (2x between rounds was seen); smaller phases and more\n"
            "rounds, e.g. --max-bytes 512M --rounds 6, give a stable ratio. Each round prints\n"
            "the loop's user and sys CPU time to tell such noise from real cost.\n"
            "\n"
            "Exit status: 0 on success, 1 on any storage or I/O error (its message is\n"
            "printed), 2 on bad usage.\n",
            MAX_ROUNDS, FSYNC_RECORDS);
}

static _Noreturn void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("storage_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see --help)\n", stderr);
    va_end(ap);
    exit(2);
}

static int64_t parse_size(const char *opt, const char *s, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s) bad_usage("bad number for %s", opt);
    int64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024LL * 1024 * 1024, end++;
    if (*end) bad_usage("bad number for %s", opt);
    if (v < min / mul || v > max / mul) bad_usage("%s is out of range", opt);
    v *= mul;
    if (v < min || v > max) bad_usage("%s is out of range", opt);
    return v;
}

static double parse_secs(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 3600) bad_usage("bad duration for %s", opt);
    return v;
}

static void parse(int argc, char **argv, opts_t *o)
{
    enum {
        OPT_DIR = 256,
        OPT_SECONDS,
        OPT_MAX_BYTES,
        OPT_ROUNDS,
        OPT_SEGMENT_BYTES,
        OPT_BATCH_BYTES,
        OPT_BATCH_RECORDS,
        OPT_POOL,
        OPT_RECOVERY_MB,
        OPT_RECOVERY_MODE,
        OPT_FSYNC,
        OPT_FSYNC_THREADS,
        OPT_FSYNC_SECONDS,
        OPT_JSON,
        OPT_KEEP,
        OPT_NO_WARMUP,
        OPT_HELP
    };
    static const struct option lo[] = {
        {"dir", required_argument, 0, OPT_DIR},
        {"seconds", required_argument, 0, OPT_SECONDS},
        {"max-bytes", required_argument, 0, OPT_MAX_BYTES},
        {"rounds", required_argument, 0, OPT_ROUNDS},
        {"segment-bytes", required_argument, 0, OPT_SEGMENT_BYTES},
        {"batch-bytes", required_argument, 0, OPT_BATCH_BYTES},
        {"batch-records", required_argument, 0, OPT_BATCH_RECORDS},
        {"pool", required_argument, 0, OPT_POOL},
        {"recovery-mb", required_argument, 0, OPT_RECOVERY_MB},
        {"recovery-mode", required_argument, 0, OPT_RECOVERY_MODE},
        {"fsync-bench", no_argument, 0, OPT_FSYNC},
        {"fsync-threads", required_argument, 0, OPT_FSYNC_THREADS},
        {"fsync-seconds", required_argument, 0, OPT_FSYNC_SECONDS},
        {"json", no_argument, 0, OPT_JSON},
        {"keep", no_argument, 0, OPT_KEEP},
        {"no-warmup", no_argument, 0, OPT_NO_WARMUP},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    const char *tmp = getenv("TMPDIR");
    *o = (opts_t){.dir = tmp && *tmp ? tmp : "/tmp",
                  .seconds = 3,
                  .max_bytes = 2LL * 1024 * 1024 * 1024,
                  .rounds = 2,
                  .recovery_mb = 1024,
                  .recovery_mode = "warm",
                  .fsync_threads = 4,
                  .fsync_seconds = 2,
                  .batch_records = 160,
                  .batch_bytes = 16384,
                  .pool = 64,
                  .warmup = 1};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_DIR:
            o->dir = optarg;
            break;
        case OPT_SECONDS:
            o->seconds = parse_secs("--seconds", optarg);
            break;
        case OPT_MAX_BYTES:
            o->max_bytes = parse_size("--max-bytes", optarg, 1, INT64_MAX / 2);
            break;
        case OPT_ROUNDS:
            o->rounds = (int)parse_size("--rounds", optarg, 1, MAX_ROUNDS);
            break;
        case OPT_SEGMENT_BYTES:
            o->segment_bytes = parse_size("--segment-bytes", optarg, 4096, INT32_MAX);
            break;
        case OPT_BATCH_BYTES:
            o->batch_bytes = parse_size("--batch-bytes", optarg, 128, 64 * 1024 * 1024);
            break;
        case OPT_BATCH_RECORDS:
            o->batch_records = (int)parse_size("--batch-records", optarg, 1, 1000000);
            break;
        case OPT_POOL:
            o->pool = (int)parse_size("--pool", optarg, 1, 4096);
            break;
        case OPT_RECOVERY_MB:
            /* segment.bytes ≤ 2^31 - 1 and it needs 1 MiB of slack. */
            o->recovery_mb = parse_size("--recovery-mb", optarg, 0, 2046);
            break;
        case OPT_RECOVERY_MODE:
            if (strcmp(optarg, "warm") && strcmp(optarg, "cold") && strcmp(optarg, "dirty"))
                bad_usage("--recovery-mode is warm, cold or dirty, not \"%s\"", optarg);
            o->recovery_mode = optarg;
            break;
        case OPT_FSYNC:
            o->fsync_bench = 1;
            break;
        case OPT_FSYNC_THREADS:
            o->fsync_threads = (int)parse_size("--fsync-threads", optarg, 1, 256);
            break;
        case OPT_FSYNC_SECONDS:
            o->fsync_seconds = parse_secs("--fsync-seconds", optarg);
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_NO_WARMUP:
            o->warmup = 0;
            break;
        case OPT_KEEP:
            o->keep = 1;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            bad_usage("unknown or incomplete option %s", argv[optind - 1 < argc ? optind - 1 : 0]);
        }
    }
    if (optind < argc) bad_usage("unexpected argument \"%s\"", argv[optind]);
}

/* ---- main --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts_t o;
    parse(argc, argv, &o);
    g_keep = o.keep;
    FILE *out = o.json ? stderr : stdout;

    snprintf(g_root, sizeof g_root, "%s/sluice-bench.XXXXXX", o.dir);
    if (strlen(o.dir) > 2000 || !mkdtemp(g_root)) {
        int e = errno;
        g_root[0] = 0;
        die("cannot create a temporary directory in %s: %s", o.dir, strerror(e));
    }
    char root[4096];
    snprintf(root, sizeof root, "%s", g_root);
    const char *fs = fs_name(root);

    pool_t pl = {0};
    size_t vsize = fit_value_size(o.batch_records, (size_t)o.batch_bytes);
    pool_build(&pl, o.pool, o.batch_records, vsize);
    progress("dir %s (%s); batch %zu bytes = %d records x %zu-byte values; pool of %d", root, fs,
             pl.len, pl.records, vsize, pl.n);

    /* Phase 1, after an untimed warm-up (an ordinary baseline phase whose
     * result is dropped): the first phase of a process otherwise pays for
     * memory the machine has not handed out yet, and it is always a baseline. */
    if (o.warmup) {
        progress("warm-up: untimed write()");
        run_baseline(&o, &pl, root, -1);
    }
    phase_t base[MAX_ROUNDS], app[MAX_ROUNDS];
    double base_mb[MAX_ROUNDS], app_mb[MAX_ROUNDS], app_msgs[MAX_ROUNDS];
    for (int r = 0; r < o.rounds; r++) {
        progress("round %d/%d: baseline write()", r + 1, o.rounds);
        base[r] = run_baseline(&o, &pl, root, r);
        base_mb[r] = mb_s(&base[r]);
        progress("round %d/%d: baseline %.1f MiB/s; partition_append", r + 1, o.rounds, base_mb[r]);
        app[r] = run_append(&o, &pl, root, r);
        app_mb[r] = mb_s(&app[r]);
        app_msgs[r] = app[r].secs > 0 ? (double)app[r].records / app[r].secs : 0;
        progress("round %d/%d: append %.1f MiB/s", r + 1, o.rounds, app_mb[r]);
    }
    double base_best = best(base_mb, o.rounds), app_best = best(app_mb, o.rounds);
    double msgs_best = best(app_msgs, o.rounds);
    double base_med = median(base_mb, o.rounds), app_med = median(app_mb, o.rounds);
    double ratio = base_best > 0 ? app_best / base_best : 0;
    double ratio_med = base_med > 0 ? app_med / base_med : 0;

    /* Phases 2 and 3. */
    recovery_t rec = {0};
    if (o.recovery_mb > 0) run_recovery(&o, &pl, root, &rec);
    double rec_mb_s = rec.ms > 0 ? (double)rec.rec.bytes_scanned / MIB / (rec.ms / 1e3) : 0;

    /* Phase 4. */
    fsync_res_t fr = {0};
    if (o.fsync_bench) {
        progress("acks=all: %d threads for %.1f s", o.fsync_threads, o.fsync_seconds);
        run_fsync(&o, root, &fr);
    }
    pool_free(&pl);
    cleanup();

    /* Report. */
    sl_log_conf_t def;
    sl_log_conf_defaults(&def);
    fprintf(out, "storage_bench: %s (%s), CRC-32C %s\n", o.dir, fs,
            sl_crc32c_hw_available() ? "SSE4.2" : "software");
    fprintf(out, "batch: %zu bytes (%d records of %zu-byte values), pool of %d batches\n", pl.len,
            pl.records, vsize, pl.n);
    fprintf(out,
            "append vs baseline: %d rounds alternated%s, each phase min(%.1f s, %" PRId64
            " MiB), segment.bytes %" PRId64 "%s\n",
            o.rounds, o.warmup ? " after an untimed warm-up" : "", o.seconds, o.max_bytes >> 20,
            o.segment_bytes ? o.segment_bytes : def.segment_bytes,
            o.segment_bytes ? "" : " (default)");
    for (int r = 0; r < o.rounds; r++) {
        fprintf(out,
                "  round %-2d baseline write()  %8.1f MiB/s  %6.0f MiB in %.2f s, cpu %.2f user "
                "+ %.2f sys\n",
                r + 1, base_mb[r], (double)base[r].bytes / MIB, base[r].secs, base[r].user,
                base[r].sys);
        fprintf(out,
                "           partition_append %8.1f MiB/s  %6.0f MiB in %.2f s, cpu %.2f user "
                "+ %.2f sys, %.0f msgs/s, %u segment(s)\n",
                app_mb[r], (double)app[r].bytes / MIB, app[r].secs, app[r].user, app[r].sys,
                app_msgs[r], app[r].segments);
    }
    fprintf(out,
            "  best:    baseline %.1f MiB/s, append %.1f MiB/s (%.0f msgs/s), ratio %.2f\n"
            "  median:  baseline %.1f MiB/s, append %.1f MiB/s, ratio %.2f\n",
            base_best, app_best, msgs_best, ratio, base_med, app_med, ratio_med);
    if (o.recovery_mb > 0) {
        fprintf(out,
                "recovery: %.0f MiB unflushed segment (%" PRId64
                " records, written at %.1f MiB/s), store_crash, mode %s\n"
                "  partition_open(recover=1): %.1f ms, scanned %" PRIu64
                " bytes = %.1f MiB/s (CRC-checked), truncated %" PRIu64 ", indexes rebuilt %d\n",
                (double)rec.bytes_written / MIB, rec.records,
                rec.write_secs > 0 ? (double)rec.bytes_written / MIB / rec.write_secs : 0,
                o.recovery_mode, rec.ms, rec.rec.bytes_scanned, rec_mb_s, rec.rec.bytes_truncated,
                rec.rec.indexes_rebuilt);
        fprintf(out,
                "clean reopen (store_open + store_partition after store_close): best %.2f ms "
                "of %.2f / %.2f / %.2f\n",
                rec.clean_open_ms, rec.clean_open_ms_all[0], rec.clean_open_ms_all[1],
                rec.clean_open_ms_all[2]);
    }
    double fs_rate = 0, fs_wpf = 0, fs_avg_ms = 0;
    if (o.fsync_bench) {
        fs_rate = fr.secs > 0 ? (double)fr.appends / fr.secs : 0;
        fs_wpf = fr.st.flushes ? (double)fr.st.waits_done / (double)fr.st.flushes : 0;
        fs_avg_ms = fr.st.flushes ? (double)fr.st.flush_ns_sum / 1e6 / (double)fr.st.flushes : 0;
        fprintf(out,
                "acks=all: %d threads, %zu-byte batches, %.1f s: %.0f appends/s; %" PRIu64
                " flushes for %" PRIu64 " waits = %.2f waits per flush; avg flush %.2f ms\n",
                fr.threads, fr.batch_bytes, fr.secs, fs_rate, fr.st.flushes, fr.st.waits_done,
                fs_wpf, fs_avg_ms);
    }

    if (o.json) {
        printf("{\"append_mb_s\":%.1f,\"baseline_mb_s\":%.1f,\"append_ratio\":%.3f,"
               "\"append_msgs_s\":%.0f,\"stat\":\"best\",\"append_mb_s_median\":%.1f,"
               "\"baseline_mb_s_median\":%.1f,\"append_ratio_median\":%.3f,",
               app_best, base_best, ratio, msgs_best, app_med, base_med, ratio_med);
        printf("\"append_rounds_mb_s\":[");
        for (int r = 0; r < o.rounds; r++) printf("%s%.1f", r ? "," : "", app_mb[r]);
        printf("],\"baseline_rounds_mb_s\":[");
        for (int r = 0; r < o.rounds; r++) printf("%s%.1f", r ? "," : "", base_mb[r]);
        printf("],\"rounds\":%d,\"seconds\":%.3f,\"max_bytes\":%" PRId64
               ",\"segment_bytes\":%" PRId64 ",\"batch_bytes\":%zu,\"batch_records\":%d,"
               "\"mb\":1048576,\"fs\":\"%s\",\"crc32c_hw\":%s,\"warmup\":%s",
               o.rounds, o.seconds, o.max_bytes,
               o.segment_bytes ? o.segment_bytes : def.segment_bytes, pl.len, pl.records, fs,
               sl_crc32c_hw_available() ? "true" : "false", o.warmup ? "true" : "false");
        if (o.recovery_mb == 0)
            printf(",\"recovery_mb_s\":null,\"recovery_bytes\":null,\"clean_open_ms\":null");
        else
            printf(",\"recovery_mb_s\":%.1f,\"recovery_bytes\":%" PRIu64
                   ",\"recovery_ms\":%.1f,\"recovery_mode\":\"%s\",\"recovery_truncated\":%" PRIu64
                   ",\"clean_open_ms\":%.3f",
                   rec_mb_s, rec.rec.bytes_scanned, rec.ms, o.recovery_mode,
                   rec.rec.bytes_truncated, rec.clean_open_ms);
        if (o.fsync_bench)
            printf(",\"fsync_threads\":%d,\"fsync_batch_bytes\":%zu,\"fsync_appends_s\":%.0f,"
                   "\"fsync_flushes\":%" PRIu64 ",\"fsync_waits\":%" PRIu64
                   ",\"fsync_waits_per_flush\":%.2f,\"fsync_avg_flush_ms\":%.3f",
                   fr.threads, fr.batch_bytes, fs_rate, fr.st.flushes, fr.st.waits_done, fs_wpf,
                   fs_avg_ms);
        printf("}\n");
    }
    return 0;
}
