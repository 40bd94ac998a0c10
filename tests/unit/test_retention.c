/* test_retention.c — retention by size and by time (whole closed segments,
 * never the active one), the log start offset, reads around it, readers
 * keeping deleted segments alive, segment.ms rolls (by housekeeping and by
 * append), and store_housekeep's counts, including partitions it has to
 * open itself. Time is whatever now_ms the test passes; record timestamps
 * are chosen by the test. */
#include <dirent.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "store.h"

#define DAY_MS    (24LL * 3600 * 1000)
#define SEG_BYTES 4096
#define VSIZE     900 /* one record of this value size: about 970 bytes a batch */

/* ---- helpers ------------------------------------------------------------------- */

static store_t *open_store(const char *dir)
{
    store_opts_t o = {.dir = dir, .max_open_segments = 8};
    store_t *s = NULL;
    sl_err_t err;
    int rc = store_open(&o, &s, &err);
    CHECK_MSG(rc == SL_OK, "store_open: %s", err.msg);
    CHECK_FATAL(s != NULL);
    return s;
}

/* Creates `name` with small segments plus extra overrides (key, value, ...,
 * NULL). */
static void create_topic(store_t *s, const char *name, int32_t parts, ...)
{
    const char *keys[16] = {"segment.bytes", "max.message.bytes"};
    const char *vals[16] = {"4096", "4096"};
    size_t n = 2;
    va_list ap;
    va_start(ap, parts);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL && n < 16) {
        keys[n] = k;
        vals[n] = va_arg(ap, const char *);
        n++;
    }
    va_end(ap);
    sl_err_t err;
    int rc = store_topic_create(s, name, parts, keys, vals, n, &err);
    CHECK_MSG(rc == SL_OK, "create %s: %s", name, err.msg);
}

static partition_t *get_part(store_t *s, const char *topic, int32_t id)
{
    partition_t *p = NULL;
    sl_err_t err;
    int rc = store_partition(s, topic, id, &p, &err);
    CHECK_MSG(rc == SL_OK, "store_partition %s-%d: %s", topic, id, err.msg);
    CHECK_FATAL(p != NULL);
    return p;
}

/* Appends one record of VSIZE bytes timestamped ts, at wall time now. */
static int64_t append_at(partition_t *p, int64_t ts, int64_t now, uint32_t seed)
{
    size_t len;
    uint8_t *b = bg_simple(1, VSIZE, ts, seed, &len);
    CHECK_FATAL(b != NULL);
    partition_append_info_t info;
    sl_err_t err;
    int rc = partition_append(p, b, len, now, &info, &err);
    CHECK_MSG(rc == SL_OK, "append: %s", err.msg);
    free(b);
    return rc == SL_OK ? info.base_offset : -1;
}

static size_t batch_len(void)
{
    size_t len;
    free(bg_simple(1, VSIZE, 0, 0, &len));
    return len;
}

/* Batches per segment under the roll rule "size + next > segment.bytes". */
static int per_segment(void)
{
    return (int)(SEG_BYTES / batch_len());
}

static uint32_t segments(partition_t *p)
{
    partition_stats_t st;
    partition_stats(p, &st);
    return st.segments;
}

static int seg_file_exists(partition_t *p, int64_t base, const char *ext)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%020" PRId64 "%s", partition_dir(p), base, ext);
    return stat(path, &st) == 0;
}

static int count_logs(partition_t *p)
{
    DIR *d = opendir(partition_dir(p));
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".log") == 0) n++;
    }
    closedir(d);
    return n;
}

/* Reads every batch from `from` to the log end; checks each is valid and
 * the offsets are dense. Returns the number of records read. */
static int64_t read_all(partition_t *p, int64_t from)
{
    int64_t next = from, seen = 0, leo = partition_log_end(p);
    while (next < leo) {
        uint8_t *buf;
        size_t len;
        sl_err_t err;
        int rc = partition_read_copy(p, next, 1, &buf, &len, &err);
        CHECK_MSG(rc == SL_OK, "read_copy %" PRId64 ": %s", next, err.msg);
        if (rc != SL_OK || len == 0) {
            free(buf);
            break;
        }
        sl_batch_hdr_t h;
        CHECK(sl_batch_validate(buf, len, NULL, &h, &err) == SL_OK);
        CHECK_EQ_INT(h.base_offset, next);
        next = h.base_offset + h.last_offset_delta + 1;
        seen += h.last_offset_delta + 1;
        free(buf);
    }
    CHECK_EQ_INT(next, leo);
    return seen;
}

static void check_out_of_range(partition_t *p, int64_t offset)
{
    seg_range_t r;
    sl_err_t err;
    CHECK_EQ_INT(partition_read(p, offset, 100, &r, &err), SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK(r.seg == NULL);
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    CHECK_EQ_INT(partition_read_copy(p, offset, 100, &buf, &len, &err), SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK(buf == NULL && len == 0);
}

/* ---- retention.bytes ------------------------------------------------------------ */

static void test_retention_bytes(void)
{
    char *dir = check_tmpdir("ret-bytes");
    store_t *s = open_store(dir);
    const int k = per_segment();
    const uint64_t L = batch_len();
    CHECK_FATAL(k >= 2);
    /* Keep at least 3.5 segments' worth. */
    char rb[32];
    int64_t retention = (int64_t)(L * (uint64_t)k * 7 / 2);
    snprintf(rb, sizeof rb, "%" PRId64, retention);
    create_topic(s, "t", 1, "retention.bytes", rb, "segment.ms", "9223372036854775807",
                 "retention.ms", "-1", NULL);
    partition_t *p = get_part(s, "t", 0);
    int64_t now = sl_wall_ms();
    const int nb = 10 * k + 1; /* ten full segments and one batch in the 11th */
    for (int i = 0; i < nb; i++) CHECK_EQ_INT(append_at(p, 1000 + i, now, (uint32_t)i), i);
    CHECK_EQ_INT(segments(p), 11);
    CHECK_EQ_INT(count_logs(p), 11);

    /* A reader holds the first segment's bytes. */
    seg_range_t r;
    sl_err_t err;
    CHECK_EQ_INT(partition_read(p, 0, 1 << 20, &r, &err), SL_OK);
    CHECK_EQ_INT(r.len, L * (uint64_t)k); /* to the end of its segment */
    uint8_t *orig = malloc(r.len);
    CHECK_FATAL(orig != NULL);
    CHECK_EQ_INT(pread(r.fd, orig, r.len, (off_t)r.pos), (ssize_t)r.len);

    /* Expected: drop the oldest while the rest still holds ≥ retention.bytes. */
    uint64_t total = L * (uint64_t)nb;
    int expect_del = 0;
    while (expect_del < 10 && total - L * (uint64_t)k >= (uint64_t)retention) {
        total -= L * (uint64_t)k;
        expect_del++;
    }
    CHECK_EQ_INT(expect_del, 6); /* 10k+1 batches, keep ≥ 3.5k: 4k+1 stay */
    int deleted = -1;
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, expect_del);
    partition_stats_t st;
    partition_stats(p, &st);
    CHECK_EQ_INT(st.segments, 11 - expect_del);
    CHECK_EQ_INT(st.size_bytes, total);
    CHECK(st.size_bytes >= (uint64_t)retention);
    CHECK_EQ_INT(st.log_start, (int64_t)expect_del * k);
    CHECK_EQ_INT(partition_log_start(p), (int64_t)expect_del * k);
    CHECK_EQ_INT(partition_log_end(p), nb);
    /* Files of deleted segments are gone; the rest are there. */
    for (int i = 0; i < 11; i++) {
        int64_t base = (int64_t)i * k;
        int want = i >= expect_del;
        CHECK_MSG(seg_file_exists(p, base, ".log") == want, "segment %d .log", i);
        CHECK_MSG(seg_file_exists(p, base, ".index") == want, "segment %d .index", i);
        CHECK_MSG(seg_file_exists(p, base, ".timeindex") == want, "segment %d .timeindex", i);
    }
    CHECK_EQ_INT(count_logs(p), 11 - expect_del);

    /* Below the log start: out of range; at and above it: readable. */
    int64_t ls = partition_log_start(p);
    check_out_of_range(p, 0);
    check_out_of_range(p, ls - 1);
    CHECK_EQ_INT(read_all(p, ls), nb - ls);
    CHECK_EQ_INT(read_all(p, ls + 1), nb - ls - 1);

    /* The reader's range still reads the original bytes. */
    uint8_t *again = malloc(r.len);
    CHECK_FATAL(again != NULL);
    CHECK_EQ_INT(pread(r.fd, again, r.len, (off_t)r.pos), (ssize_t)r.len);
    CHECK_MSG(memcmp(orig, again, r.len) == 0, "deleted segment's bytes changed under a reader");
    sl_batch_hdr_t h;
    CHECK(sl_batch_validate(again, L, NULL, &h, &err) == SL_OK);
    CHECK_EQ_INT(h.base_offset, 0);
    seg_range_release(&r);
    free(orig);
    free(again);

    /* Idempotent. */
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 0);

    /* retention.bytes = 0: every closed segment goes, never the active one. */
    const char *kz[] = {"retention.bytes"}, *vz[] = {"0"};
    CHECK_EQ_INT(store_topic_alter(s, "t", kz, vz, 1, &err), SL_OK);
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 10 - expect_del);
    CHECK_EQ_INT(segments(p), 1);
    CHECK_EQ_INT(partition_log_start(p), 10 * k);
    CHECK_EQ_INT(partition_log_end(p), nb);
    CHECK_EQ_INT(read_all(p, 10 * k), 1);
    check_out_of_range(p, 10 * k - 1);
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 0);
    CHECK_EQ_INT(segments(p), 1);
    /* Appends continue; the log start stays. */
    CHECK_EQ_INT(append_at(p, 5000, now, 99), nb);
    CHECK_EQ_INT(partition_log_start(p), 10 * k);
    partition_unref(p);
    store_close(s);

    /* The log start survives a reopen (it is the first segment's base). */
    s = open_store(dir);
    p = get_part(s, "t", 0);
    CHECK_EQ_INT(partition_log_start(p), 10 * k);
    CHECK_EQ_INT(partition_log_end(p), nb + 1);
    check_out_of_range(p, 0);
    CHECK_EQ_INT(read_all(p, 10 * k), 2);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- retention.ms ------------------------------------------------------------------ */

static void test_retention_time(void)
{
    char *dir = check_tmpdir("ret-time");
    store_t *s = open_store(dir);
    const int k = per_segment();
    create_topic(s, "t", 1, "retention.ms", "86400000", "segment.ms", "9223372036854775807", NULL);
    partition_t *p = get_part(s, "t", 0);
    int64_t now = sl_wall_ms();
    /* Record timestamps a month ago, one second apart. */
    const int64_t ts0 = now - 30 * DAY_MS;
    const int nb = 6 * k + 2;
    for (int i = 0; i < nb; i++)
        CHECK_EQ_INT(append_at(p, ts0 + (int64_t)i * 1000, now, (uint32_t)i), i);
    CHECK_EQ_INT(segments(p), 7);
    sl_err_t err;
    int deleted = -1;

    /* Now = the wall clock: everything closed is older than a day. But first,
     * exact boundaries: segment i's newest record is ts0 + ((i+1)k - 1) s. */
    int64_t newest2 = ts0 + (int64_t)(3 * k - 1) * 1000;
    /* newest2 == now - retention.ms: not yet older than retention. */
    CHECK_EQ_INT(partition_retention(p, newest2 + DAY_MS, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(partition_log_start(p), 2 * k);
    /* One millisecond later it is. */
    CHECK_EQ_INT(partition_retention(p, newest2 + DAY_MS + 1, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 1);
    CHECK_EQ_INT(partition_log_start(p), 3 * k);
    check_out_of_range(p, 3 * k - 1);
    CHECK_EQ_INT(read_all(p, 3 * k), nb - 3 * k);
    /* Time going backwards deletes nothing more. */
    CHECK_EQ_INT(partition_retention(p, ts0, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 0);

    /* A reader pins segment 3, which goes next. */
    seg_range_t r;
    CHECK_EQ_INT(partition_read(p, 3 * k + 1, 1, &r, &err), SL_OK);
    CHECK_EQ_INT(r.first_offset, 3 * k + 1);
    uint8_t *orig = malloc(r.len);
    CHECK_FATAL(orig != NULL);
    CHECK_EQ_INT(pread(r.fd, orig, r.len, (off_t)r.pos), (ssize_t)r.len);

    /* Far in the future: every closed segment, never the active one (its
     * records are just as old). */
    CHECK_EQ_INT(partition_retention(p, now + 3650 * DAY_MS, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 3);
    CHECK_EQ_INT(segments(p), 1);
    CHECK_EQ_INT(partition_log_start(p), 6 * k);
    CHECK_EQ_INT(partition_log_end(p), nb);
    CHECK_EQ_INT(read_all(p, 6 * k), 2);
    check_out_of_range(p, 0);
    check_out_of_range(p, 6 * k - 1);
    CHECK(!seg_file_exists(p, 3 * k, ".log"));
    CHECK(!seg_file_exists(p, 0, ".log"));
    CHECK(seg_file_exists(p, 6 * k, ".log"));
    CHECK_EQ_INT(count_logs(p), 1);
    uint8_t *again = malloc(r.len);
    CHECK_FATAL(again != NULL);
    CHECK_EQ_INT(pread(r.fd, again, r.len, (off_t)r.pos), (ssize_t)r.len);
    CHECK_MSG(memcmp(orig, again, r.len) == 0, "pinned segment changed after retention");
    seg_range_release(&r);
    free(orig);
    free(again);

    /* retention.ms = -1 keeps data forever. */
    const char *kf[] = {"retention.ms"}, *vf[] = {"-1"};
    CHECK_EQ_INT(store_topic_alter(s, "t", kf, vf, 1, &err), SL_OK);
    const char *ks[] = {"segment.ms"}, *vs[] = {"1"};
    CHECK_EQ_INT(store_topic_alter(s, "t", ks, vs, 1, &err), SL_OK);
    CHECK_EQ_INT(partition_roll_if_due(p, now + DAY_MS, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 2);
    CHECK_EQ_INT(partition_retention(p, INT64_MAX / 2, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 0);
    CHECK_EQ_INT(partition_log_start(p), 6 * k);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* Time retention of segments reopened from disk: their newest timestamp
 * comes from the time index. */
static void test_retention_time_after_reopen(void)
{
    char *dir = check_tmpdir("ret-time2");
    store_t *s = open_store(dir);
    const int k = per_segment();
    create_topic(s, "t", 1, "retention.ms", "86400000", "segment.ms", "9223372036854775807", NULL);
    partition_t *p = get_part(s, "t", 0);
    int64_t now = sl_wall_ms();
    /* Two old segments, then recent data. */
    for (int i = 0; i < 2 * k; i++) append_at(p, now - 10 * DAY_MS + i, now, (uint32_t)i);
    for (int i = 2 * k; i < 4 * k + 1; i++) append_at(p, now - 1000 + i, now, (uint32_t)i);
    CHECK_EQ_INT(segments(p), 5);
    partition_unref(p);
    store_close(s);
    s = open_store(dir);
    p = get_part(s, "t", 0);
    sl_err_t err;
    int deleted = -1;
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(partition_log_start(p), 2 * k);
    CHECK_EQ_INT(read_all(p, 2 * k), 2 * k + 1);
    partition_unref(p);
    store_crash(s);
    /* And after a crash (recovery) the same. */
    s = open_store(dir);
    p = get_part(s, "t", 0);
    CHECK_EQ_INT(partition_log_start(p), 2 * k);
    CHECK_EQ_INT(partition_retention(p, now + 2 * DAY_MS, &deleted, &err), SL_OK);
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(partition_log_start(p), 4 * k);
    CHECK_EQ_INT(read_all(p, 4 * k), 1);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* One call deletes everything past retention, however many segments that
 * is: the caller (housekeeping) has no way to tell that work was left. */
static void test_retention_many_segments(void)
{
    char *dir = check_tmpdir("ret-many");
    store_t *s = open_store(dir);
    const int k = per_segment();
    create_topic(s, "t", 1, "segment.ms", "9223372036854775807", NULL);
    partition_t *p = get_part(s, "t", 0);
    int64_t now = sl_wall_ms();
    const int nsealed = 70;
    for (int i = 0; i < nsealed * k + 1; i++) append_at(p, 1000 + i, now, (uint32_t)i);
    CHECK_EQ_INT(segments(p), nsealed + 1);
    sl_err_t err;
    const char *kz[] = {"retention.bytes"}, *vz[] = {"0"};
    CHECK_EQ_INT(store_topic_alter(s, "t", kz, vz, 1, &err), SL_OK);
    int deleted = -1;
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    /* BUG (storage/partition.c, partition_retention): victims are collected
     * into a fixed seg_t *victims[64] and the loop stops at 64, returning
     * SL_OK with *deleted = 64 while older segments past retention remain;
     * nothing in the API says to call again. */
    CHECK_MSG(deleted == nsealed, "one retention pass deleted %d of %d expired segments", deleted,
              nsealed);
    CHECK_EQ_INT(partition_log_start(p), (int64_t)nsealed * k);
    /* A second pass finishes the job either way. */
    CHECK_EQ_INT(partition_retention(p, now, &deleted, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 1);
    CHECK_EQ_INT(partition_log_start(p), (int64_t)nsealed * k);
    CHECK_EQ_INT(count_logs(p), 1);
    CHECK_EQ_INT(read_all(p, (int64_t)nsealed * k), 1);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- segment.ms ---------------------------------------------------------------------- */

static void test_segment_ms_roll(void)
{
    char *dir = check_tmpdir("ret-roll");
    store_t *s = open_store(dir);
    create_topic(s, "t", 1, "segment.ms", "1000", NULL);
    partition_t *p = get_part(s, "t", 0);
    /* The active segment was created no later than t1. */
    int64_t t1 = sl_wall_ms();
    sl_err_t err;

    /* An empty active segment never rolls, however old. */
    CHECK_EQ_INT(partition_roll_if_due(p, t1 + 100 * DAY_MS, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 1);

    CHECK_EQ_INT(append_at(p, 1, t1, 1), 0);
    CHECK_EQ_INT(append_at(p, 2, t1 + 10, 2), 1);
    CHECK_EQ_INT(segments(p), 1);
    CHECK_EQ_INT(partition_roll_if_due(p, t1 + 500, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 1);

    /* Housekeeping rolls a quiet partition once the segment is old enough. */
    CHECK_EQ_INT(partition_roll_if_due(p, t1 + 1000, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 2);
    CHECK(seg_file_exists(p, 2, ".log"));
    CHECK_EQ_INT(partition_log_end(p), 2);
    CHECK_EQ_INT(partition_roll_if_due(p, t1 + 100 * DAY_MS, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 2); /* the new one is empty */
    CHECK_EQ_INT(read_all(p, 0), 2);

    /* An append rolls when the active segment is older than segment.ms
     * (measured either from its creation or from its first append). */
    int64_t x = t1 + 1000 + 5;
    CHECK_EQ_INT(append_at(p, 3, x, 3), 2);
    CHECK_EQ_INT(segments(p), 2);
    CHECK_EQ_INT(append_at(p, 4, x + 500, 4), 3);
    CHECK_EQ_INT(segments(p), 2);
    CHECK_EQ_INT(append_at(p, 5, x + 1000, 5), 4);
    CHECK_EQ_INT(segments(p), 3);
    CHECK(seg_file_exists(p, 4, ".log"));
    CHECK_EQ_INT(read_all(p, 0), 5);

    /* segment.ms counts from the first append (logconf.c: "Age (since its
     * first append)"). Housekeeping rolls at y; the first append comes
     * much later; the next, 1 ms after it, must not roll. */
    int64_t y = x + 2000;
    CHECK_EQ_INT(partition_roll_if_due(p, y, &err), SL_OK);
    CHECK_EQ_INT(segments(p), 4);
    CHECK_EQ_INT(append_at(p, 6, y + 5000, 6), 5);
    CHECK_EQ_INT(segments(p), 4);
    CHECK_EQ_INT(append_at(p, 7, y + 5001, 7), 6);
    /* BUG (storage/partition.c, roll()/partition_roll_if_due and
     * partition_open): created_ms of a new active segment is set when the
     * segment is created, not at its first append (the "if (a->created_ms ==
     * 0) a->created_ms = now_ms" in partition_append never fires), so after a
     * housekeeping roll of a quiet partition — or after any open — the first
     * append to the new segment is followed by a roll on the very next
     * append: one-batch segments, against segment.ms's documented meaning. */
    CHECK_MSG(segments(p) == 4, "rolled 1 ms after the segment's first append (%u segments)",
              segments(p));
    CHECK_EQ_INT(read_all(p, 0), 7);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- store_housekeep ------------------------------------------------------------------ */

static void test_housekeep(void)
{
    char *dir = check_tmpdir("ret-hk");
    store_t *s = open_store(dir);
    const int k = per_segment();
    int64_t now = sl_wall_ms();
    create_topic(s, "hk", 3, "retention.ms", "86400000", "segment.ms", "9223372036854775807", NULL);
    /* Partition 0: three old segments and a recent active one. Partition 1:
     * one old segment only (the active one). Partition 2: never written. */
    partition_t *p = get_part(s, "hk", 0);
    for (int i = 0; i < 3 * k; i++) append_at(p, now - 5 * DAY_MS + i, now, (uint32_t)i);
    append_at(p, now, now, 99);
    CHECK_EQ_INT(segments(p), 4);
    partition_unref(p);
    p = get_part(s, "hk", 1);
    append_at(p, now - 5 * DAY_MS, now, 1);
    partition_unref(p);
    store_close(s);

    s = open_store(dir);
    CHECK_EQ_INT(store_open_partitions(s), 0);
    store_housekeeping_t hk;
    /* Before any deletion is due: it opens partition 0 (more than one segment
     * on disk) but not the others, and deletes nothing. */
    store_housekeep(s, now - 4 * DAY_MS, &hk);
    CHECK_EQ_INT(hk.errors, 0);
    CHECK_EQ_INT(hk.deleted, 0);
    CHECK_EQ_INT(hk.rolled, 0);
    CHECK_EQ_INT(store_open_partitions(s), 1);
    store_close(s);

    s = open_store(dir);
    store_housekeep(s, now, &hk);
    CHECK_MSG(hk.errors == 0, "housekeep: %s", hk.last_error.msg);
    CHECK_EQ_INT(hk.deleted, 3);
    CHECK_EQ_INT(hk.rolled, 0);
    CHECK_EQ_INT(store_open_partitions(s), 1);
    p = get_part(s, "hk", 0);
    CHECK_EQ_INT(partition_log_start(p), 3 * k);
    CHECK_EQ_INT(partition_log_end(p), 3 * k + 1);
    CHECK_EQ_INT(segments(p), 1);
    CHECK_EQ_INT(count_logs(p), 1);
    check_out_of_range(p, 0);
    CHECK_EQ_INT(read_all(p, 3 * k), 1);
    partition_unref(p);
    /* Again: nothing left to do. */
    store_housekeep(s, now, &hk);
    CHECK_EQ_INT(hk.deleted, 0);
    CHECK_EQ_INT(hk.errors, 0);

    /* Rolled counts segment.ms rolls; a roll and the deletion it enables
     * happen in one pass. */
    create_topic(s, "roll", 2, "segment.ms", "1000", "retention.ms", "60000", NULL);
    int64_t t = sl_wall_ms();
    partition_t *a = get_part(s, "roll", 0);
    partition_t *b = get_part(s, "roll", 1);
    append_at(a, t - DAY_MS, t, 1); /* old records */
    append_at(b, t, t, 2);          /* fresh records */
    CHECK_EQ_INT(store_open_partitions(s), 3);
    store_housekeep(s, t + 500, &hk); /* not due yet */
    CHECK_EQ_INT(hk.rolled, 0);
    CHECK_EQ_INT(hk.deleted, 0);
    store_housekeep(s, t + 2000, &hk);
    CHECK_MSG(hk.errors == 0, "housekeep: %s", hk.last_error.msg);
    CHECK_EQ_INT(hk.rolled, 2);
    CHECK_EQ_INT(hk.deleted, 1); /* a's sealed segment: its record is a day old */
    CHECK_EQ_INT(segments(a), 1);
    CHECK_EQ_INT(partition_log_start(a), 1);
    CHECK_EQ_INT(partition_log_end(a), 1);
    check_out_of_range(a, 0);
    seg_range_t r;
    sl_err_t err;
    CHECK_EQ_INT(partition_read(a, 1, 100, &r, &err), SL_OK);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(segments(b), 2);
    CHECK_EQ_INT(partition_log_start(b), 0);
    CHECK_EQ_INT(read_all(b, 0), 1);
    /* b's sealed segment expires a minute after its record. */
    store_housekeep(s, t + 60001, &hk);
    CHECK_EQ_INT(hk.deleted, 1);
    CHECK_EQ_INT(hk.rolled, 0); /* empty active segments do not roll */
    CHECK_EQ_INT(partition_log_start(b), 1);
    partition_unref(a);
    partition_unref(b);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

int main(void)
{
    int64_t t0 = sl_wall_ms();
    test_retention_bytes();
    test_retention_time();
    test_retention_time_after_reopen();
    test_retention_many_segments();
    test_segment_ms_roll();
    test_housekeep();
    printf("test_retention: %" PRId64 " ms\n", sl_wall_ms() - t0);
    return check_exit();
}
