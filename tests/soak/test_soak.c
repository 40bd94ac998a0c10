/* test_soak.c — a bounded soak of sluiced: mixed libsluice producers and
 * consumers at a fixed rate across 64 partitions, while segments roll all
 * the time and retention deletes them under the readers.
 *
 * Load (short run, label soak / long run, --long, label torture):
 *   - 60 s / 600 s at 5,000 / 20,000 messages a second in all, 1 KiB values;
 *   - topic "soak", 64 partitions, created with the admin API with
 *     retention.ms=8000 and retention.bytes=4 segments; the broker runs with
 *     log.segment.bytes=256 KiB / 1 MiB (a roll about every 3 s per
 *     partition) and log.retention.check.interval.ms=1000;
 *   - 4 producers, each owning 16 partitions (so each partition has one
 *     writer and its sequence numbers are its offsets): acks=all, acks=1
 *     with lz4, and two with acks=1; open loop: message i of a producer is
 *     due at t0 + i / rate, whatever happened before;
 *   - 4 consumers (assign, no group): two live ones that keep up (pull on
 *     partitions 0-31, push on 32-63; auto.offset.reset=earliest) and two
 *     laggards on 16 partitions each that stop polling for 15 s out of every
 *     25 s, with a small prefetch budget, so retention deletes their
 *     position: one with auto.offset.reset=error (it gets
 *     OFFSET_OUT_OF_RANGE, counts it, seeks to the beginning), one with
 *     earliest (libsluice resets by itself; seen as a jump of offsets).
 * Every payload carries its partition, sequence number, intended send time
 * and a checksum.
 *
 * Every 5 s a sample: broker RSS (VmRSS), its open fds (/proc/<pid>/fd),
 * end-to-end latency of the live consumers over the window (receive time −
 * intended send time: a stalled producer shows as latency, not as a lower
 * rate), messages produced and consumed. Lines start with "soak:".
 *
 * Rules (chosen to catch leaks and degradation, not a neighbour's compile
 * job on a shared 2-core machine under ASan):
 *   1. no errors: no failed produce or delivery report, no consumer error
 *      other than the laggard's OFFSET_OUT_OF_RANGE, no bad payload, every
 *      message at the offset equal to its sequence number;
 *   2. no loss: per consumer and partition, sequence numbers increase by
 *      one; the only jumps allowed are at the start and after a reset by
 *      retention, i.e. where the skipped offset is below the partition's log
 *      start when the jump is seen. At the end every consumer reaches the
 *      last sequence number of each of its partitions;
 *   3. RSS flat: after the warm-up (15 s, or 10% of a long run), the mean
 *      of the last third of the samples ≤ max(1.2 × the mean of the first
 *      third, that + 16 MiB);
 *   4. fds bounded: no sample after the warm-up above the first one after
 *      it + 128 (a leak of one fd per roll or deletion breaks this within
 *      seconds), and the last third's mean ≤ the first third's + 64;
 *   5. p99 stable, for the messages of the acks=1 producers (48 partitions):
 *      with M the median of the windows' p99 (the first window, connection
 *      set-up, excluded), a window is slow when its p99 > max(5 × M, M +
 *      100 ms). At most one window in ten (at least one) may be slow, and
 *      none may exceed 3 s. The acks=all producer's partitions are shown
 *      apart: their next batch leaves only after the group-commit fsync of
 *      the previous one, so their latency also follows the (shared) disk;
 *      the only rule for them is no window p99 above 5 s (a stalled
 *      flusher). The broker's fdatasync count and mean time are printed;
 *   6. throughput: all planned messages produced, and in every window after
 *      the first the live consumers received ≥ 50% of the planned rate;
 *   7. the test did what it says: retention moved the log start of all 64
 *      partitions, and the laggards were reset at least once.
 * Under ASan (make test) the broker's quarantine of freed memory is capped
 * at 16 MiB (ASAN_OPTIONS for the child only): at 5 MB/s the default
 * 256 MiB quarantine fills for most of a minute and rule 3 would measure it.
 *
 * Usage: test_soak [--long]
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"
#include "sluice/sluice.h"

#define TOPIC      "soak"
#define NPART      64
#define NPROD      4
#define NCONS      4
#define MSG_SIZE   1024
#define MAGIC      0x534f414bu /* "SOAK" */
#define SAMPLE_MS  5000
#define MIB        (1024.0 * 1024.0)
#define LAG_ACTIVE 10000 /* laggards: poll this long... */
#define LAG_STALL  15000 /* ...then stop polling this long */

typedef struct plan {
    int duration_s;
    int rate; /* messages per second, all producers */
    int segment_bytes;
} plan_t;

static const plan_t SHORT = {60, 5000, 262144};
static const plan_t LONG = {600, 20000, 1048576};

static plan_t P;
static harness_t h;
static int64_t t0_ns;
static atomic_int final_known; /* producers done: final_seq is valid */
static int64_t final_seq[NPART];
static atomic_int stop_all;

static void sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

/* ---- payloads ------------------------------------------------------------ */

typedef struct payload_hdr {
    uint32_t magic;
    uint32_t partition;
    int64_t seq;
    int64_t intended_ns;
    uint32_t sum; /* FNV-1a of the bytes after the header */
    uint32_t pad;
} payload_hdr_t;

static uint32_t fnv(const uint8_t *p, size_t n)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < n; i++) x = (x ^ p[i]) * 16777619u;
    return x;
}

/* A compressible (lz4 finds its repeats) but sequence-dependent body. */
static void fill(uint8_t *buf, int part, int64_t seq, int64_t intended)
{
    payload_hdr_t hd = {MAGIC, (uint32_t)part, seq, intended, 0, 0};
    for (size_t k = sizeof hd; k < MSG_SIZE; k++) buf[k] = (uint8_t)(seq * 31 + (int64_t)k / 16);
    hd.sum = fnv(buf + sizeof hd, MSG_SIZE - sizeof hd);
    memcpy(buf, &hd, sizeof hd);
}

/* ---- latency windows ----------------------------------------------------- */

static pthread_mutex_t win_mu = PTHREAD_MUTEX_INITIALIZER;
/* Latencies of the window's live deliveries: [0] of the acks=1 producers'
 * partitions (16-63), [1] of the acks=all producer's (0-15), whose next
 * batch per partition leaves only after the group-commit fsync of the
 * previous one, so they measure the disk as much as the broker. */
static double *win_lat[2];
static size_t win_n[2], win_cap[2];

static void win_push(int k, double ms)
{
    if (win_n[k] == win_cap[k]) {
        size_t cap = win_cap[k] ? win_cap[k] * 2 : 65536;
        double *n = realloc(win_lat[k], cap * sizeof *n);
        if (!n) return;
        win_lat[k] = n;
        win_cap[k] = cap;
    }
    win_lat[k][win_n[k]++] = ms;
}

static void win_add(int part, double ms)
{
    pthread_mutex_lock(&win_mu);
    win_push(part < NPART / NPROD, ms);
    pthread_mutex_unlock(&win_mu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Takes window k's samples: count, p50, p99, max. With win_mu held. */
static size_t win_take(int k, double *p50, double *p99, double *max)
{
    size_t n = win_n[k];
    double *l = win_lat[k];
    if (n) {
        qsort(l, n, sizeof *l, cmp_double);
        *p50 = l[(n - 1) / 2];
        *p99 = l[(size_t)((double)(n - 1) * 0.99)];
        *max = l[n - 1];
    } else {
        *p50 = *p99 = *max = 0;
    }
    win_n[k] = 0;
    return n;
}

/* ---- configuration ------------------------------------------------------- */

static sluice_conf_t *mkconf(const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    CHECK_FATAL(c != NULL);
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h.port);
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2) {
        sluice_conf_res_t r = sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err);
        if (r != SLUICE_CONF_OK) {
            fprintf(stderr, "soak: conf %s=%s: %s\n", kv[i], kv[i + 1], err);
            exit(2);
        }
    }
    return c;
}

/* ---- producers ----------------------------------------------------------- */

typedef struct prod {
    int id;
    const char *const *kv; /* extra configuration */
    const char *desc;
    pthread_t t;
    sluice_producer_t *p;
    /* results (the thread's own until joined, except the atomics) */
    atomic_llong produced; /* accepted by sluice_produce */
    atomic_llong acked;    /* delivery reports without error */
    long long produce_errors, dr_errors, dr_offset_mismatch, flush_timeout;
    int64_t count[NPART]; /* messages per partition */
} prod_t;

static prod_t prods[NPROD];

/* The opaque of a message: partition and sequence number. */
static void *mkopaque(int part, int64_t seq)
{
    return (void *)(uintptr_t)(((uint64_t)seq << 8) | (uint64_t)part);
}

static void prod_dr(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    prod_t *pr = opaque;
    uint64_t o = (uint64_t)(uintptr_t)m->opaque;
    int64_t seq = (int64_t)(o >> 8);
    if (m->err) {
        if (pr->dr_errors++ < 5)
            fprintf(stderr, "soak: producer %d: delivery of %d/%" PRId64 " failed: %s\n", pr->id,
                    m->partition, seq, sluice_err2str(m->err));
        return;
    }
    /* One writer per partition, a fresh topic: offset = sequence number. */
    if (m->offset != seq && pr->dr_offset_mismatch++ < 5)
        fprintf(stderr, "soak: producer %d: %d/%" PRId64 " got offset %" PRId64 "\n", pr->id,
                m->partition, seq, m->offset);
    atomic_fetch_add(&pr->acked, 1);
}

static void *prod_main(void *arg)
{
    prod_t *pr = arg;
    const int64_t total = (int64_t)P.rate / NPROD * P.duration_s;
    const double gap_ns = 1e9 / ((double)P.rate / NPROD);
    uint8_t buf[MSG_SIZE];
    for (int64_t i = 0; i < total && !atomic_load(&stop_all); i++) {
        int64_t due = t0_ns + (int64_t)((double)i * gap_ns);
        int64_t wait;
        while ((wait = due - sl_mono_ns()) > 1000000) {
            /* Serves delivery reports while it waits (returns early when
             * it served some). */
            if (sluice_producer_poll(pr->p, (int)(wait / 1000000)) == 0) break;
        }
        int part = pr->id * (NPART / NPROD) + (int)(i % (NPART / NPROD));
        int64_t seq = pr->count[part];
        fill(buf, part, seq, due);
        int rc = sluice_produce(pr->p, TOPIC, part, NULL, 0, buf, sizeof buf, NULL, 0, 0,
                                mkopaque(part, seq));
        if (rc != SLUICE_OK) {
            if (pr->produce_errors++ < 5)
                fprintf(stderr, "soak: producer %d: produce %d/%" PRId64 ": %s\n", pr->id, part,
                        seq, sluice_err2str(rc));
            continue;
        }
        pr->count[part]++;
        atomic_fetch_add(&pr->produced, 1);
        if ((i & 63) == 0) sluice_producer_poll(pr->p, 0);
    }
    if (sluice_producer_flush(pr->p, 60000) != SLUICE_OK) pr->flush_timeout = 1;
    return NULL;
}

/* ---- consumers ----------------------------------------------------------- */

typedef struct cons {
    int id;
    const char *desc;
    int live;       /* keeps up; its latency is measured */
    int laggard;    /* stalls */
    int error_mode; /* auto.offset.reset=error: seeks itself */
    const char *const *kv;
    int parts[NPART];
    int nparts;
    pthread_t t;
    sluice_consumer_t *c;
    sc_t sc;                 /* for log start look-ups */
    int64_t next_seq[NPART]; /* -1: nothing yet */
    int reset_pending[NPART];
    /* results */
    atomic_llong delivered;
    long long corrupt, offset_mismatch, gaps, dups, other_errors;
    long long oor_errors; /* OFFSET_OUT_OF_RANGE reported (error mode) */
    long long auto_resets, explicit_resets;
    long long stalls;
    int done; /* reached final_seq on every partition */
} cons_t;

static cons_t conss[NCONS];

/* The partition's log start, or -1. The connection is used rarely, so the
 * broker may have closed it as idle (connections.max.idle.ms): one
 * reconnect. */
static int64_t log_start_sc(sc_t *sc, int part)
{
    int64_t off = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = sc_list_offsets(sc, TOPIC, part, -2, &off);
        if (rc == 0) return off;
        if (rc > 0) return -1; /* the broker's error */
        sc_close(sc);
        if (sc_connect(sc, h.port) != 0) {
            sc->fd = -1;
            return -1;
        }
    }
    return -1;
}

static int64_t log_start(cons_t *c, int part)
{
    return log_start_sc(&c->sc, part);
}

static int all_done(cons_t *c)
{
    if (!atomic_load(&final_known)) return 0;
    for (int i = 0; i < c->nparts; i++)
        if (c->next_seq[c->parts[i]] != final_seq[c->parts[i]]) return 0;
    return 1;
}

static void on_message(cons_t *c, sluice_message_t *m)
{
    int part = m->partition;
    if (m->err == SLUICE_ERR_OFFSET_OUT_OF_RANGE && c->error_mode) {
        /* Retention deleted our position: count it, check it, go on from
         * the beginning (what auto.offset.reset=earliest does). */
        int64_t ls = log_start(c, part);
        c->oor_errors++;
        if (ls >= 0 && m->offset >= ls && c->other_errors++ < 5)
            fprintf(stderr,
                    "soak: %s: OFFSET_OUT_OF_RANGE at %d/%" PRId64 ", log start %" PRId64 "\n",
                    c->desc, part, m->offset, ls);
        c->reset_pending[part] = 1;
        int rc = sluice_consumer_seek(c->c, TOPIC, part, SLUICE_OFFSET_BEGINNING, 5000);
        if (rc != SLUICE_OK && c->other_errors++ < 5)
            fprintf(stderr, "soak: %s: seek %d: %s\n", c->desc, part, sluice_err2str(rc));
        return;
    }
    if (m->err) {
        if (c->other_errors++ < 5)
            fprintf(stderr, "soak: %s: error %s on %d at %" PRId64 "\n", c->desc,
                    sluice_err2str(m->err), part, m->offset);
        return;
    }
    payload_hdr_t hd;
    if (m->value_len != MSG_SIZE || part < 0 || part >= NPART) {
        c->corrupt++;
        return;
    }
    memcpy(&hd, m->value, sizeof hd);
    if (hd.magic != MAGIC || hd.partition != (uint32_t)part ||
        hd.sum != fnv((const uint8_t *)m->value + sizeof hd, MSG_SIZE - sizeof hd)) {
        if (c->corrupt++ < 5)
            fprintf(stderr, "soak: %s: bad payload at %d/%" PRId64 "\n", c->desc, part, m->offset);
        return;
    }
    if (m->offset != hd.seq && c->offset_mismatch++ < 5)
        fprintf(stderr, "soak: %s: seq %" PRId64 " at offset %d/%" PRId64 "\n", c->desc, hd.seq,
                part, m->offset);
    int64_t want = c->next_seq[part];
    if (want >= 0 && hd.seq != want) {
        if (hd.seq < want) {
            if (c->dups++ < 5)
                fprintf(stderr, "soak: %s: %d: seq %" PRId64 " again (expected %" PRId64 ")\n",
                        c->desc, part, hd.seq, want);
        } else if (c->reset_pending[part]) {
            c->explicit_resets++;
        } else {
            /* A jump: fine only if `want` is gone (retention) by now. */
            int64_t ls = log_start(c, part);
            if (ls >= 0 && want < ls) {
                c->auto_resets++;
            } else if (c->gaps++ < 5) {
                fprintf(stderr,
                        "soak: %s: %d: seq %" PRId64 " after %" PRId64 " (log start %" PRId64
                        "): lost\n",
                        c->desc, part, hd.seq, want - 1, ls);
            }
        }
    }
    c->reset_pending[part] = 0;
    if (hd.seq >= want) c->next_seq[part] = hd.seq + 1;
    atomic_fetch_add(&c->delivered, 1);
    if (c->live) win_add(part, (double)(sl_mono_ns() - hd.intended_ns) / 1e6);
}

static void *cons_main(void *arg)
{
    cons_t *c = arg;
    int stalled = 0;
    int64_t hard_end = t0_ns + ((int64_t)P.duration_s + 120) * 1000000000;
    while (!atomic_load(&stop_all) && sl_mono_ns() < hard_end) {
        if (c->laggard && !atomic_load(&final_known)) {
            int64_t in = (sl_mono_ns() - t0_ns) / 1000000 % (LAG_ACTIVE + LAG_STALL);
            int st = in >= LAG_ACTIVE;
            if (st && !stalled) c->stalls++;
            stalled = st;
            if (stalled) {
                sleep_ms(50);
                continue;
            }
        }
        sluice_message_t *m = sluice_consumer_poll(c->c, 100);
        if (m) {
            on_message(c, m);
            sluice_message_destroy(m);
        } else if (all_done(c)) {
            break;
        }
    }
    c->done = all_done(c);
    return NULL;
}

/* ---- the broker ---------------------------------------------------------- */

static double rss_mib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)h.pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atof(line + 6);
    fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

static int fd_count(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)h.pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The broker's user + system CPU seconds so far. */
static double broker_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)h.pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Segment files (.log) of the topic on disk now. */
static int segment_count(void)
{
    int n = 0;
    for (int p = 0; p < NPART; p++) {
        char path[512];
        snprintf(path, sizeof path, "%s/topics/%s/%d", h.data, TOPIC, p);
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l > 4 && strcmp(de->d_name + l - 4, ".log") == 0) n++;
        }
        if (d) closedir(d);
    }
    return n;
}

/* Sums the housekeeping log's "rolled N segments, deleted M by retention". */
static void housekeeping_totals(long *rolled, long *deleted)
{
    *rolled = *deleted = 0;
    FILE *f = fopen(h.log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "rolled ");
        long r, d;
        if (p && sscanf(p, "rolled %ld segments, deleted %ld by retention", &r, &d) == 2) {
            *rolled += r;
            *deleted += d;
        }
    }
    fclose(f);
}

/* ---- samples and rules --------------------------------------------------- */

typedef struct sample {
    int t_s;
    double rss;
    int fds;
    int segs;
    size_t n;
    double p50, p99, max;
    size_t n_all;                     /* the acks=all partitions': */
    double p50_all, p99_all, max_all; /* their latency */
    long long produced, consumed;
} sample_t;

static double mean_rss(const sample_t *s, int from, int to)
{
    double sum = 0;
    for (int i = from; i < to; i++) sum += s[i].rss;
    return to > from ? sum / (to - from) : 0;
}

static double mean_fds(const sample_t *s, int from, int to)
{
    double sum = 0;
    for (int i = from; i < to; i++) sum += s[i].fds;
    return to > from ? sum / (to - from) : 0;
}

static void kill_broker(void)
{
    harness_cleanup(&h);
}

int main(int argc, char **argv)
{
    int long_run = argc > 1 && strcmp(argv[1], "--long") == 0;
    P = long_run ? LONG : SHORT;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    {
        const char *old = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", old ? old : "",
                 old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    harness_init(&h, long_run ? "soak-long" : "soak");
    atexit(kill_broker);
    char segarg[64];
    snprintf(segarg, sizeof segarg, "--log.segment.bytes=%d", P.segment_bytes);
    const char *args[] = {segarg, "--log.retention.check.interval.ms=1000", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);

    /* The topic, with retention set per topic through the admin API. */
    {
        char err[256], rb[64];
        snprintf(rb, sizeof rb, "retention.bytes=%d", 4 * P.segment_bytes);
        const char *cfg[] = {"retention.ms=8000", rb};
        sluice_admin_t *a = sluice_admin_new(mkconf(NULL), err, sizeof err);
        CHECK_FATAL(a != NULL);
        int rc = sluice_admin_create_topic(a, TOPIC, NPART, cfg, 2, err, sizeof err);
        if (rc) fprintf(stderr, "soak: create topic: %s\n", err);
        CHECK_FATAL(rc == 0);
        sluice_admin_destroy(a);
    }
    printf("soak: %s run: %d s at %d msgs/s of %d bytes, %d partitions, %d producers, %d "
           "consumers, segment.bytes %d, retention.ms 8000, retention.bytes %d\n",
           long_run ? "long" : "short", P.duration_s, P.rate, MSG_SIZE, NPART, NPROD, NCONS,
           P.segment_bytes, 4 * P.segment_bytes);

    static const char *const kv_all[] = {"acks", "all", NULL};
    static const char *const kv_lz4[] = {"acks", "1", "compression.type", "lz4", NULL};
    static const char *const kv_one[] = {"acks", "1", NULL};
    const char *const *pkv[NPROD] = {kv_all, kv_lz4, kv_one, kv_one};
    const char *pdesc[NPROD] = {"acks=all", "acks=1 lz4", "acks=1", "acks=1"};
    for (int i = 0; i < NPROD; i++) {
        prod_t *pr = &prods[i];
        pr->id = i;
        pr->kv = pkv[i];
        pr->desc = pdesc[i];
        char err[256];
        sluice_conf_t *conf = mkconf(pr->kv);
        sluice_conf_set_dr_cb(conf, prod_dr);
        sluice_conf_set_opaque(conf, pr);
        pr->p = sluice_producer_new(conf, err, sizeof err);
        CHECK_FATAL(pr->p != NULL);
    }
    static const char *const kv_live_pull[] = {"auto.offset.reset", "earliest", NULL};
    static const char *const kv_live_push[] = {"auto.offset.reset", "earliest", "fetch.mode",
                                               "push", NULL};
    static const char *const kv_lag_err[] = {"auto.offset.reset",
                                             "error",
                                             "fetch.max.bytes",
                                             "262144",
                                             "max.partition.fetch.bytes",
                                             "32768",
                                             NULL};
    static const char *const kv_lag_earliest[] = {"auto.offset.reset",
                                                  "earliest",
                                                  "fetch.max.bytes",
                                                  "262144",
                                                  "max.partition.fetch.bytes",
                                                  "32768",
                                                  NULL};
    const char *const *ckv[NCONS] = {kv_live_pull, kv_live_push, kv_lag_err, kv_lag_earliest};
    const char *cdesc[NCONS] = {"live pull 0-31", "live push 32-63", "laggard error-mode p%4==0",
                                "laggard earliest p%4==2"};
    for (int i = 0; i < NCONS; i++) {
        cons_t *c = &conss[i];
        c->id = i;
        c->desc = cdesc[i];
        c->kv = ckv[i];
        c->live = i < 2;
        c->laggard = i >= 2;
        c->error_mode = i == 2;
        for (int p = 0; p < NPART; p++) {
            c->next_seq[p] = -1;
            int mine = i == 0 ? p < 32 : i == 1 ? p >= 32 : i == 2 ? p % 4 == 0 : p % 4 == 2;
            if (mine) c->parts[c->nparts++] = p;
        }
        char err[256];
        c->c = sluice_consumer_new(mkconf(c->kv), err, sizeof err);
        CHECK_FATAL(c->c != NULL);
        sluice_tp_list_t *l = sluice_tp_list_new((size_t)c->nparts);
        for (int k = 0; k < c->nparts; k++)
            sluice_tp_list_add(l, TOPIC, c->parts[k])->offset = SLUICE_OFFSET_BEGINNING;
        CHECK_FATAL(sluice_consumer_assign(c->c, l) == 0);
        sluice_tp_list_destroy(l);
        CHECK_FATAL(sc_connect(&c->sc, h.port) == 0);
    }

    t0_ns = sl_mono_ns() + 200000000; /* the schedule starts in 200 ms */
    for (int i = 0; i < NCONS; i++)
        CHECK_FATAL(pthread_create(&conss[i].t, NULL, cons_main, &conss[i]) == 0);
    for (int i = 0; i < NPROD; i++)
        CHECK_FATAL(pthread_create(&prods[i].t, NULL, prod_main, &prods[i]) == 0);

    /* Samples. */
    int nsamples = P.duration_s * 1000 / SAMPLE_MS;
    sample_t *s = calloc((size_t)nsamples, sizeof *s);
    CHECK_FATAL(s != NULL);
    printf("soak: %5s %8s %4s %4s %8s %8s | %8s %8s %8s %8s | %8s %8s %8s %8s\n", "t", "rss_MiB",
           "fds", "segs", "produced", "consumed", "n_acks1", "p50_ms", "p99_ms", "max_ms", "n_all",
           "p50_ms", "p99_ms", "max_ms");
    long long prod_last = 0, cons_last = 0;
    for (int k = 0; k < nsamples; k++) {
        int64_t at = t0_ns + (int64_t)(k + 1) * SAMPLE_MS * 1000000;
        while (sl_mono_ns() < at) sleep_ms((int)((at - sl_mono_ns()) / 1000000) + 1);
        sample_t *x = &s[k];
        x->t_s = (k + 1) * SAMPLE_MS / 1000;
        x->rss = rss_mib();
        x->fds = fd_count();
        x->segs = segment_count();
        pthread_mutex_lock(&win_mu);
        x->n = win_take(0, &x->p50, &x->p99, &x->max);
        x->n_all = win_take(1, &x->p50_all, &x->p99_all, &x->max_all);
        pthread_mutex_unlock(&win_mu);
        long long pt = 0, ct = 0;
        for (int i = 0; i < NPROD; i++) pt += atomic_load(&prods[i].acked);
        for (int i = 0; i < 2; i++) ct += atomic_load(&conss[i].delivered);
        x->produced = pt - prod_last;
        x->consumed = ct - cons_last;
        prod_last = pt;
        cons_last = ct;
        printf("soak: %4ds %8.1f %4d %4d %8lld %8lld | %8zu %8.2f %8.2f %8.2f | %8zu %8.2f %8.2f "
               "%8.2f\n",
               x->t_s, x->rss, x->fds, x->segs, x->produced, x->consumed, x->n, x->p50, x->p99,
               x->max, x->n_all, x->p50_all, x->p99_all, x->max_all);
    }

    /* Producers finish their schedule (late ones catch up), then flush. */
    for (int i = 0; i < NPROD; i++) pthread_join(prods[i].t, NULL);
    int64_t planned = (int64_t)P.rate / NPROD * P.duration_s * NPROD, produced = 0;
    for (int i = 0; i < NPROD; i++)
        for (int p = 0; p < NPART; p++)
            if (prods[i].count[p]) final_seq[p] = prods[i].count[p];
    for (int i = 0; i < NPROD; i++) produced += atomic_load(&prods[i].produced);
    int64_t t_prod_done = sl_mono_ns();
    atomic_store(&final_known, 1);
    for (int i = 0; i < NCONS; i++) pthread_join(conss[i].t, NULL);
    double drain_s = (double)(sl_mono_ns() - t_prod_done) / 1e9;

    /* ---- rules ---- */
    long long errors = 0;
    for (int i = 0; i < NPROD; i++) {
        prod_t *pr = &prods[i];
        printf("soak: producer %d (%s): %lld produced, %lld acknowledged, %lld produce errors, "
               "%lld delivery errors, %lld offsets != sequence%s\n",
               i, pr->desc, (long long)atomic_load(&pr->produced),
               (long long)atomic_load(&pr->acked), pr->produce_errors, pr->dr_errors,
               pr->dr_offset_mismatch, pr->flush_timeout ? ", FLUSH TIMED OUT" : "");
        CHECK_EQ_INT(pr->produce_errors, 0);
        CHECK_EQ_INT(pr->dr_errors, 0);
        CHECK_EQ_INT(pr->dr_offset_mismatch, 0);
        CHECK_EQ_INT(pr->flush_timeout, 0);
        CHECK_EQ_INT(atomic_load(&pr->acked), atomic_load(&pr->produced));
        errors += pr->produce_errors + pr->dr_errors + pr->dr_offset_mismatch + pr->flush_timeout;
    }
    CHECK_EQ_INT(produced, planned);
    long long resets = 0;
    for (int i = 0; i < NCONS; i++) {
        cons_t *c = &conss[i];
        int reached = 0;
        for (int k = 0; k < c->nparts; k++)
            reached += c->next_seq[c->parts[k]] == final_seq[c->parts[k]];
        printf("soak: consumer %d (%s): %lld delivered, %d/%d partitions complete, "
               "OFFSET_OUT_OF_RANGE %lld, resets %lld explicit %lld automatic, stalls %lld; "
               "errors: %lld other, %lld bad payloads, %lld offset != seq, %lld gaps, %lld "
               "repeats\n",
               i, c->desc, (long long)atomic_load(&c->delivered), reached, c->nparts, c->oor_errors,
               c->explicit_resets, c->auto_resets, c->stalls, c->other_errors, c->corrupt,
               c->offset_mismatch, c->gaps, c->dups);
        CHECK_MSG(c->done && reached == c->nparts, "%s: %d of %d partitions read to the end",
                  c->desc, reached, c->nparts);
        CHECK_EQ_INT(c->other_errors, 0);
        CHECK_EQ_INT(c->corrupt, 0);
        CHECK_EQ_INT(c->offset_mismatch, 0);
        CHECK_EQ_INT(c->gaps, 0);
        CHECK_EQ_INT(c->dups, 0);
        errors += c->other_errors + c->corrupt + c->offset_mismatch + c->gaps + c->dups;
        if (c->laggard) resets += c->explicit_resets + c->auto_resets;
    }
    /* Rule 7: retention ran under the readers. */
    int moved = 0;
    {
        sc_t sc;
        CHECK_FATAL(sc_connect(&sc, h.port) == 0);
        for (int p = 0; p < NPART; p++) moved += log_start_sc(&sc, p) > 0;
        sc_close(&sc);
    }
    long rolled, deleted;
    housekeeping_totals(&rolled, &deleted);
    printf("soak: retention: log start moved on %d/%d partitions; %.0f segments written "
           "(bytes / segment.bytes), housekeeping deleted %ld (and rolled %ld by age); laggard "
           "resets %lld\n",
           moved, NPART, (double)produced * (MSG_SIZE + 70) / P.segment_bytes, deleted, rolled,
           resets);
    CHECK_EQ_INT(moved, NPART);
    CHECK(deleted > 0);
    CHECK(resets > 0);

    /* Rules 3-6 over the samples. */
    int warm = 15000 / SAMPLE_MS;
    if (warm < nsamples / 10) warm = nsamples / 10;
    int n = nsamples - warm, third = n / 3;
    double rss_first = mean_rss(s, warm, warm + third),
           rss_last = mean_rss(s, nsamples - third, nsamples);
    double rss_limit = rss_first * 1.2 > rss_first + 16 ? rss_first * 1.2 : rss_first + 16;
    double fds_first = mean_fds(s, warm, warm + third),
           fds_last = mean_fds(s, nsamples - third, nsamples);
    int fd_base = s[warm].fds, fd_max = 0;
    double rss_max = 0;
    for (int k = 0; k < nsamples; k++) {
        if (k >= warm && s[k].fds > fd_max) fd_max = s[k].fds;
        if (s[k].rss > rss_max) rss_max = s[k].rss;
    }
    double *p99s = calloc((size_t)nsamples, sizeof *p99s);
    CHECK_FATAL(p99s != NULL);
    for (int k = 1; k < nsamples; k++) p99s[k - 1] = s[k].p99;
    qsort(p99s, (size_t)(nsamples - 1), sizeof *p99s, cmp_double);
    double med = p99s[(nsamples - 2) / 2];
    double slow_limit = 5 * med > med + 100 ? 5 * med : med + 100;
    int slow = 0, allowed = (nsamples - 1) / 10 > 1 ? (nsamples - 1) / 10 : 1, low = 0;
    double worst = 0, worst_all = 0, window_plan = (double)P.rate * SAMPLE_MS / 1000;
    for (int k = 1; k < nsamples; k++) {
        if (s[k].p99 > slow_limit) slow++;
        if (s[k].p99 > worst) worst = s[k].p99;
        if (s[k].p99_all > worst_all) worst_all = s[k].p99_all;
        if (s[k].consumed < window_plan / 2) low++;
    }
    for (int k = 1; k < nsamples; k++) p99s[k - 1] = s[k].p99_all;
    qsort(p99s, (size_t)(nsamples - 1), sizeof *p99s, cmp_double);
    double med_all = p99s[(nsamples - 2) / 2];
    free(p99s);
    /* The fsyncs behind the acks=all latency. */
    double fsum = -1, fcount = -1, fwaits = -1;
    {
        char *page = harness_metrics(&h);
        if (page) {
            fsum = harness_metric(page, "sluice_flush_seconds_sum");
            fcount = harness_metric(page, "sluice_flush_seconds_count");
            fwaits = harness_metric(page, "sluice_flush_waits_total");
            free(page);
        }
    }
    printf("soak: rss: first third %.1f MiB, last third %.1f MiB (limit %.1f), max %.1f MiB\n",
           rss_first, rss_last, rss_limit, rss_max);
    printf("soak: fds: first third %.1f, last third %.1f, max %d (bound %d)\n", fds_first, fds_last,
           fd_max, fd_base + 128);
    printf("soak: latency acks=1: median window p99 %.2f ms, worst window p99 %.2f ms, %d slow "
           "windows (p99 > %.2f ms; %d allowed)\n",
           med, worst, slow, slow_limit, allowed);
    printf("soak: latency acks=all: median window p99 %.2f ms, worst window p99 %.2f ms (bound "
           "5000 ms); broker fdatasync: %.0f flushes, mean %.2f ms, %.0f acks=all waits\n",
           med_all, worst_all, fcount, fcount > 0 ? fsum * 1000 / fcount : -1, fwaits);
    CHECK_MSG(rss_last <= rss_limit, "RSS grew: %.1f -> %.1f MiB", rss_first, rss_last);
    CHECK_MSG(fd_max <= fd_base + 128, "fds grew: %d -> max %d", fd_base, fd_max);
    CHECK_MSG(fds_last <= fds_first + 64, "fds grew: %.1f -> %.1f", fds_first, fds_last);
    CHECK_MSG(slow <= allowed, "%d windows with p99 > %.2f ms", slow, slow_limit);
    CHECK_MSG(worst <= 3000, "a window's p99 was %.2f ms", worst);
    CHECK_MSG(worst_all <= 5000, "acks=all: a window's p99 was %.2f ms", worst_all);
    CHECK_MSG(low == 0, "%d windows where the live consumers got < 50%% of the planned rate", low);

    double cpu = broker_cpu_s();
    for (int i = 0; i < NPROD; i++) sluice_producer_destroy(prods[i].p);
    for (int i = 0; i < NCONS; i++) {
        sluice_consumer_destroy(conss[i].c);
        sc_close(&conss[i].sc);
    }
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status 0x%x", st);
    printf("soak: summary: %s run %d s, %lld messages (%.1f MiB), errors %lld, laggard resets "
           "%lld, RSS %.1f -> %.1f MiB (max %.1f), fds %.0f -> %.0f (max %d), window p99 median "
           "%.2f ms worst %.2f ms (acks=all partitions: median %.2f ms worst %.2f ms), drained "
           "in %.1f s, broker CPU %.1f s: %s\n",
           long_run ? "long" : "short", P.duration_s, (long long)produced,
           (double)produced * MSG_SIZE / MIB, errors, resets, rss_first, rss_last, rss_max,
           fds_first, fds_last, fd_max, med, worst, med_all, worst_all, drain_s, cpu,
           check_failures ? "FAIL" : "ok");
    free(s);
    free(win_lat[0]);
    free(win_lat[1]);
    return check_exit();
}
