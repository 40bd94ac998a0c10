/* test_producers.c — idempotent-producer state enforced by partition_append
 * (storage/producers.h): retries of the last 5 batches answered with their
 * first offsets, sequence and epoch rules, sequence wrap-around, the
 * one-batch rule, transactional batches refused, the state rebuilt from the
 * log after a clean or unclean close, a failed rebuild read failing the
 * append (never accepting a retry as new), the store-wide bound, retention,
 * deletion, and two threads racing with the same producer's batches. */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "logcheck.h"
#include "io.h"
#include "partition.h"

static seg_cache_t *cache;
static sl_log_conf_t conf;

/* ---- a pread that fails on demand ---- */

static struct {
    long fail_after; /* preads that still succeed before they fail (-1: never) */
    int failed;
} fault = {-1, 0};

static ssize_t f_pread(int fd, void *buf, size_t n, off_t off)
{
    if (fault.fail_after == 0) {
        fault.failed++;
        errno = EIO;
        return -1;
    }
    if (fault.fail_after > 0) fault.fail_after--;
    return pread(fd, buf, n, off);
}

static sl_io_ops_t faulty;

/* ---- helpers ---- */

/* Opens the partition in dir with config c (NULL: the test's default). */
static partition_t *open_conf(const char *dir, const sl_log_conf_t *c, int recover,
                              producers_bound_t *bound)
{
    partition_opts_t o = {.dir = dir,
                          .topic = "t",
                          .conf = c ? c : &conf,
                          .cache = cache,
                          .recover = recover,
                          .now_ms = 1000,
                          .producers = bound};
    return check_open(&o, NULL);
}

static partition_t *open_part(const char *dir, int recover, producers_bound_t *bound)
{
    return open_conf(dir, NULL, recover, bound);
}

/* A batch of n records from producer pid/epoch starting at sequence seq
 * (pid -1: a plain batch), with extra attribute bits. */
static uint8_t *batch(int64_t pid, int16_t epoch, int32_t seq, int n, int16_t attrs, size_t *len)
{
    uint8_t *b = bg_simple(n, 20, 1000, (uint32_t)(pid * 31 + seq), len);
    CHECK_FATAL(b != NULL);
    sl_put_be64(b + SL_BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    sl_put_be16(b + SL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)(pid < 0 ? -1 : epoch));
    sl_put_be32(b + SL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)(pid < 0 ? -1 : seq));
    sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, (uint16_t)attrs);
    bg_fix_crc(b, *len);
    return b;
}

/* Appends one batch; returns the code, with *info filled. */
static int put(partition_t *p, int64_t pid, int16_t epoch, int32_t seq, int n,
               partition_append_info_t *info, sl_err_t *err)
{
    size_t len;
    uint8_t *b = batch(pid, epoch, seq, n, 0, &len);
    memset(info, 0xa5, sizeof *info);
    int rc = partition_append(p, b, len, 1000, info, err);
    free(b);
    return rc;
}

/* Appends and expects a new batch at the log end. Returns its base offset. */
static int64_t put_new(partition_t *p, int64_t pid, int16_t epoch, int32_t seq, int n)
{
    partition_append_info_t info;
    sl_err_t err;
    int64_t leo = partition_log_end(p);
    int rc = put(p, pid, epoch, seq, n, &info, &err);
    CHECK_MSG(rc == SL_OK, "append pid %" PRId64 " seq %d: %s", pid, seq, err.msg);
    if (rc != SL_OK) return -1;
    CHECK_EQ_INT(info.duplicate, 0);
    CHECK_EQ_INT(info.base_offset, leo);
    CHECK_EQ_INT(info.last_offset, leo + n - 1);
    return info.base_offset;
}

/* Appends and expects a duplicate of the batch first written at base. */
static void put_dup(partition_t *p, int64_t pid, int16_t epoch, int32_t seq, int n, int64_t base)
{
    partition_append_info_t info;
    sl_err_t err;
    int64_t leo = partition_log_end(p);
    int rc = put(p, pid, epoch, seq, n, &info, &err);
    CHECK_MSG(rc == SL_OK, "retry pid %" PRId64 " seq %d: %s", pid, seq, err.msg);
    CHECK_MSG(info.duplicate == 1, "retry pid %" PRId64 " seq %d was not a duplicate", pid, seq);
    CHECK_EQ_INT(info.base_offset, base);
    CHECK_EQ_INT(info.last_offset, base + n - 1);
    CHECK_EQ_INT(info.records, 0);
    CHECK_EQ_INT(partition_log_end(p), leo);
}

/* Appends and expects error `code` with nothing appended. */
static void put_err(partition_t *p, int64_t pid, int16_t epoch, int32_t seq, int n, int code)
{
    partition_append_info_t info;
    sl_err_t err;
    int64_t leo = partition_log_end(p);
    int rc = put(p, pid, epoch, seq, n, &info, &err);
    CHECK_MSG(rc == code, "pid %" PRId64 " epoch %d seq %d: %s (%s), expected %s", pid, epoch, seq,
              sl_code_name(rc), rc == SL_OK ? "" : err.msg, sl_code_name(code));
    CHECK_EQ_INT(partition_log_end(p), leo);
}

/* Closes p cleanly and removes its directory. */
static void finish(partition_t *p, char *dir)
{
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* ---- tests ---- */

/* Each of the last 5 batches is recognised; the 6th oldest is not. */
static void test_last_five(void)
{
    char *dir = check_tmpdir("prod-five");
    partition_t *p = open_part(dir, 0, NULL);
    put_new(p, -1, 0, 0, 2); /* plain batches are never checked */
    int64_t base[7];
    for (int i = 0; i < 7; i++) base[i] = put_new(p, 7, 0, i * 3, 3);
    for (int i = 2; i < 7; i++) put_dup(p, 7, 0, i * 3, 3, base[i]);
    /* Batch 1 is no longer remembered: a stale sequence, refused, never
     * appended twice. */
    put_err(p, 7, 0, 3, 3, SL_ERR_OUT_OF_ORDER_SEQUENCE);
    /* Same first sequence with another length is not a retry. */
    put_err(p, 7, 0, 18, 2, SL_ERR_OUT_OF_ORDER_SEQUENCE);
    put_new(p, 7, 0, 21, 1);
    finish(p, dir);
}

static void test_sequence_and_epoch(void)
{
    char *dir = check_tmpdir("prod-seq");
    partition_t *p = open_part(dir, 0, NULL);
    /* Unknown producers are accepted at any sequence (state expired). */
    put_new(p, 11, 4, 42, 2);
    put_err(p, 11, 4, 45, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE); /* a gap */
    put_err(p, 11, 4, 43, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE); /* overlaps */
    put_new(p, 11, 4, 44, 1);
    put_err(p, 11, 3, 45, 1, SL_ERR_INVALID_PRODUCER_EPOCH);
    put_err(p, 11, 5, 45, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE); /* new epoch, not at 0 */
    int64_t b = put_new(p, 11, 5, 0, 2);
    put_err(p, 11, 4, 45, 1, SL_ERR_INVALID_PRODUCER_EPOCH); /* fenced */
    put_err(p, 11, 4, 44, 1, SL_ERR_INVALID_PRODUCER_EPOCH); /* even a retry */
    put_dup(p, 11, 5, 0, 2, b);
    put_new(p, 11, 5, 2, 1);
    /* Another producer is independent. */
    put_new(p, 12, 0, 0, 1);
    put_new(p, 12, 0, 1, 1);
    finish(p, dir);
}

static void test_wrap(void)
{
    char *dir = check_tmpdir("prod-wrap");
    partition_t *p = open_part(dir, 0, NULL);
    int64_t a = put_new(p, 5, 0, INT32_MAX - 3, 2);       /* INT32_MAX-3 .. INT32_MAX-2 */
    int64_t b = put_new(p, 5, 0, INT32_MAX - 1, 4);       /* INT32_MAX-1 .. 1, wrapping */
    put_err(p, 5, 0, 0, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE); /* 0 is inside b */
    int64_t c = put_new(p, 5, 0, 2, 1);
    put_dup(p, 5, 0, INT32_MAX - 1, 4, b);
    put_dup(p, 5, 0, INT32_MAX - 3, 2, a);
    put_dup(p, 5, 0, 2, 1, c);
    /* A batch ending exactly at INT32_MAX is followed by 0. */
    put_new(p, 6, 0, INT32_MAX - 1, 2);
    put_new(p, 6, 0, 0, 1);
    finish(p, dir);
}

static void test_refused(void)
{
    char *dir = check_tmpdir("prod-refused");
    partition_t *p = open_part(dir, 0, NULL);
    sl_err_t err;
    partition_append_info_t info;
    size_t l1, l2;
    uint8_t *b1 = batch(-1, 0, 0, 2, 0, &l1), *b2 = batch(9, 0, 0, 2, 0, &l2);
    uint8_t *two = malloc(l1 + l2);
    CHECK_FATAL(two != NULL);
    /* An idempotent batch must travel alone, first or not. */
    memcpy(two, b1, l1);
    memcpy(two + l1, b2, l2);
    CHECK_EQ_INT(partition_append(p, two, l1 + l2, 1000, &info, &err), SL_ERR_INVALID_RECORD);
    CHECK(strstr(err.msg, "only batch") != NULL);
    memcpy(two, b2, l2);
    memcpy(two + l2, b1, l1);
    CHECK_EQ_INT(partition_append(p, two, l1 + l2, 1000, &info, &err), SL_ERR_INVALID_RECORD);
    CHECK_EQ_INT(partition_log_end(p), 0);
    /* Plain batches together are fine. */
    memcpy(two, b1, l1);
    memcpy(two + l1, b1, l1);
    CHECK_EQ_INT(partition_append(p, two, 2 * l1, 1000, &info, &err), SL_OK);
    CHECK_EQ_INT(info.duplicate, 0);
    CHECK_EQ_INT(partition_log_end(p), 4);
    free(two);
    free(b1);
    free(b2);
    /* Transactional batches, idempotent or not: refused for every caller. */
    for (int64_t pid = -1; pid <= 9; pid += 10) {
        size_t len;
        uint8_t *t = batch(pid, 0, 0, 1, SL_BATCH_ATTR_TRANSACTIONAL, &len);
        CHECK_EQ_INT(partition_append(p, t, len, 1000, &info, &err), SL_ERR_INVALID_RECORD);
        CHECK(strstr(err.msg, "transactional batches are not supported") != NULL);
        free(t);
    }
    CHECK_EQ_INT(partition_log_end(p), 4);
    /* The refused idempotent batch left no state: producer 9 is still new. */
    put_new(p, 9, 0, 17, 1);
    finish(p, dir);
}

/* Writes batches of producers 1 and 2 between plain ones across several
 * segments; returns producer 1's last base offset. */
static int64_t write_history(partition_t *p, int64_t *p2_base)
{
    int64_t last1 = -1;
    for (int i = 0; i < 40; i++) {
        put_new(p, -1, 0, 0, 3);
        last1 = put_new(p, 1, 2, i * 2, 2);
        *p2_base = put_new(p, 2, 0, i, 1);
    }
    return last1;
}

/* A fresh partition with write_history in it, closed (crashed with
 * `crash`) and opened again, so its producer state must come from the log. */
static partition_t *history_reopened(const char *name, int crash, char **dir, int64_t *b1,
                                     int64_t *b2)
{
    *dir = check_tmpdir(name);
    partition_t *p = open_part(*dir, 0, NULL);
    *b1 = write_history(p, b2);
    int64_t leo = partition_log_end(p);
    partition_close(p, crash); /* crash: no flush, no index, no checkpoint */
    p = open_part(*dir, crash, NULL);
    CHECK_EQ_INT(partition_log_end(p), leo);
    return p;
}

static void test_rebuild_after_close(void)
{
    for (int crash = 0; crash < 2; crash++) {
        char *dir;
        int64_t b1, b2;
        partition_t *p = history_reopened("prod-reopen", crash, &dir, &b1, &b2);
        put_dup(p, 1, 2, 78, 2, b1);
        put_dup(p, 2, 0, 39, 1, b2);
        put_err(p, 1, 1, 80, 1, SL_ERR_INVALID_PRODUCER_EPOCH);
        put_err(p, 2, 0, 41, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE);
        put_new(p, 2, 0, 40, 1);
        put_new(p, 1, 2, 80, 1);
        partition_close(p, crash);
        check_rmtree(dir);
        free(dir);
    }
}

/* A crash tears the last batch: recovery truncates it, and the rebuilt
 * state must not remember it, so its retry is appended as new. */
static void test_rebuild_after_truncation(void)
{
    char *dir = check_tmpdir("prod-torn");
    partition_t *p = open_part(dir, 0, NULL);
    int64_t b0 = put_new(p, 3, 0, 0, 2);
    put_new(p, 3, 0, 2, 2);
    partition_close(p, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/%020d.log", dir, 0);
    struct stat st;
    CHECK_FATAL(stat(path, &st) == 0);
    CHECK_FATAL(truncate(path, st.st_size - 5) == 0);
    p = open_part(dir, 1, NULL);
    CHECK_EQ_INT(partition_log_end(p), 2);
    put_dup(p, 3, 0, 0, 2, b0);
    put_new(p, 3, 0, 2, 2); /* lost in the crash: a new append */
    put_dup(p, 3, 0, 2, 2, 2);
    finish(p, dir);
}

/* A read failure while rebuilding fails the append with a storage error
 * and appends nothing; once reads work, the retry is recognised. */
static void test_rebuild_read_fault(void)
{
    for (long after = 0; after < 3; after++) {
        char *dir;
        int64_t b1, b2;
        partition_t *p = history_reopened("prod-fault", 0, &dir, &b1, &b2);
        int64_t leo = partition_log_end(p);
        fault.fail_after = after;
        fault.failed = 0;
        sl_io_set(&faulty);
        partition_append_info_t info;
        sl_err_t err;
        int rc = put(p, 1, 2, 78, 2, &info, &err);
        CHECK_MSG(rc == SL_ERR_STORAGE, "after %ld reads: %s: %s", after, sl_code_name(rc),
                  err.msg);
        CHECK(fault.failed > 0);
        CHECK_EQ_INT(partition_log_end(p), leo);
        /* Plain appends do not depend on the state. */
        put_new(p, -1, 0, 0, 1);
        /* Still failing: still refused, still not appended. */
        fault.fail_after = 0;
        CHECK_EQ_INT(put(p, 1, 2, 78, 2, &info, &err), SL_ERR_STORAGE);
        sl_io_set(NULL);
        fault.fail_after = -1;
        put_dup(p, 1, 2, 78, 2, b1);
        put_dup(p, 2, 0, 39, 1, b2);
        CHECK_EQ_INT(partition_log_end(p), leo + 1);
        partition_close(p, 0);
        check_rmtree(dir);
        free(dir);
    }
}

/* The store-wide bound: over it, the appending partition evicts its least
 * recently used producer; a retry of an evicted producer's batch is still
 * recognised (rescan); a partition with nothing to evict goes over by one. */
static void test_bound(void)
{
    producers_bound_t bound;
    producers_bound_init(&bound, 3);
    char *d1 = check_tmpdir("prod-bound1"), *d2 = check_tmpdir("prod-bound2");
    partition_t *p1 = open_part(d1, 0, &bound), *p2 = open_part(d2, 0, &bound);
    int64_t base[5];
    for (int i = 1; i <= 3; i++) base[i] = put_new(p1, 100 + i, 0, 0, 2);
    CHECK_EQ_INT(atomic_load(&bound.count), 3);
    base[4] = put_new(p1, 104, 0, 0, 2); /* evicts producer 101 */
    CHECK_EQ_INT(atomic_load(&bound.count), 3);
    put_dup(p1, 101, 0, 0, 2, base[1]); /* found again by a rescan (evicts 102) */
    put_err(p1, 101, 0, 5, 1, SL_ERR_OUT_OF_ORDER_SEQUENCE);
    CHECK_EQ_INT(atomic_load(&bound.count), 3);
    put_dup(p1, 102, 0, 0, 2, base[2]);
    put_new(p1, 102, 0, 2, 1);
    CHECK_EQ_INT(atomic_load(&bound.count), 3);
    /* p2 holds nothing to evict: it adds its first producer anyway. */
    put_new(p2, 200, 0, 0, 1);
    CHECK_EQ_INT(atomic_load(&bound.count), 4);
    put_new(p2, 201, 0, 0, 1); /* evicts 200, its own */
    CHECK_EQ_INT(atomic_load(&bound.count), 4);
    put_dup(p2, 200, 0, 0, 1, 0);
    /* Deleting a topic gives its states back at once. */
    partition_mark_deleted(p2);
    CHECK_EQ_INT(atomic_load(&bound.count), 3);
    partition_close(p2, 1);
    partition_close(p1, 0);
    CHECK_EQ_INT(atomic_load(&bound.count), 0);
    check_rmtree(d1);
    check_rmtree(d2);
    free(d1);
    free(d2);
}

/* A rebuild looks back PRODUCERS_SCAN_OFFSETS offsets only: a producer
 * whose last batch is older is new after a restart, as Kafka treats one
 * whose state expired. */
static void test_scan_window(void)
{
    char *dir = check_tmpdir("prod-window");
    sl_log_conf_t big = conf;
    big.max_message_bytes = 8 << 20;
    big.segment_bytes = 64 << 20;
    partition_t *p = open_conf(dir, &big, 0, NULL);
    put_new(p, 50, 0, 0, 1);                          /* offset 0: outside the window */
    int64_t in = put_new(p, 51, 0, 0, 1);             /* offset 1: inside */
    put_new(p, -1, 0, 0, PRODUCERS_SCAN_OFFSETS - 1); /* 2 .. 100,000 */
    partition_close(p, 0);
    p = open_conf(dir, &big, 0, NULL);
    put_dup(p, 51, 0, 0, 1, in);
    put_new(p, 50, 0, 0, 1); /* forgotten: appended again */
    finish(p, dir);
}

/* Retention trims producers whose batches are all gone, as a rebuild from
 * the remaining log would not find them. */
static void test_retention(void)
{
    char *dir = check_tmpdir("prod-retention");
    sl_log_conf_t c = conf;
    c.segment_bytes = 1024;
    c.retention_bytes = 1;
    producers_bound_t bound;
    producers_bound_init(&bound, 100);
    partition_t *p = open_conf(dir, &c, 0, &bound);
    put_new(p, 60, 0, 0, 20);
    for (int i = 0; i < 20; i++) put_new(p, 61, 0, i * 20, 20);
    CHECK_EQ_INT(atomic_load(&bound.count), 2);
    int deleted = 0;
    sl_err_t err;
    CHECK_EQ_INT(partition_retention(p, 1000, &deleted, &err), SL_OK);
    CHECK(deleted > 0);
    CHECK(partition_log_start(p) > 0);
    CHECK_EQ_INT(atomic_load(&bound.count), 1); /* 60 is gone, 61 wrote lately */
    put_new(p, 60, 0, 7, 1);
    put_new(p, 61, 0, 400, 1);
    finish(p, dir);
}

/* Two threads send the same batches of one producer (each its own retry
 * of the other's): check and append are one step under the partition
 * mutex, so every batch lands exactly once, at the offset of its sequence. */
typedef struct racer {
    partition_t *p;
    int bad; /* an answer that contradicts exactly-once */
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    for (int32_t seq = 0; seq < 300; seq++) {
        partition_append_info_t info;
        sl_err_t err;
        int rc = put(r->p, 77, 0, seq, 1, &info, &err);
        /* Behind the other by more than 5 batches: refused, never appended. */
        if (rc == SL_ERR_OUT_OF_ORDER_SEQUENCE) continue;
        if (rc != SL_OK || info.base_offset != seq) r->bad++;
    }
    return NULL;
}

static void test_concurrent_retries(void)
{
    char *dir = check_tmpdir("prod-race");
    partition_t *p = open_part(dir, 0, NULL);
    racer_t r[2] = {{p, 0}, {p, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK_FATAL(pthread_create(&t[i], NULL, race, &r[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(r[0].bad + r[1].bad, 0);
    CHECK_EQ_INT(partition_log_end(p), 300);
    finish(p, dir);
}

int main(void)
{
    faulty = *sl_io_real();
    faulty.pread = f_pread;
    cache = seg_cache_new(16);
    sl_log_conf_defaults(&conf);
    conf.segment_bytes = 2048; /* several segments in the histories */
    test_last_five();
    test_sequence_and_epoch();
    test_wrap();
    test_refused();
    test_concurrent_retries();
    test_rebuild_after_close();
    test_rebuild_after_truncation();
    test_rebuild_read_fault();
    test_bound();
    test_scan_window();
    test_retention();
    seg_cache_free(cache);
    return check_exit();
}
