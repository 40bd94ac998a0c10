/* test_faults.c — disk faults injected through the storage I/O seam
 * (storage/io.h): ENOSPC, EIO and short writes on append, failures while
 * rolling, fdatasync errors, and failed topic metadata writes. The log must
 * stay valid, report SL_ERR_STORAGE with the cause, and work again once the
 * fault clears. */
#include <errno.h>
#include <fcntl.h>
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
#include "store.h"

/* ---- the faulty I/O table ---- */

static struct {
    int pwrite_errno;     /* fail pwrite with this errno ... */
    long pwrite_after;    /* ... once this many more bytes were written (-1: never) */
    size_t short_max;     /* > 0: every pwrite transfers at most this many bytes */
    int fdatasync_errno;  /* fail fdatasync */
    int open_creat_errno; /* fail open(O_CREAT) */
    int ftruncate_errno;  /* fail ftruncate */
    int calls_failed;
} fault = {.pwrite_after = -1};

static void fault_clear(void)
{
    memset(&fault, 0, sizeof fault);
    fault.pwrite_after = -1;
}

static ssize_t f_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fault.short_max && n > fault.short_max) n = fault.short_max;
    if (fault.pwrite_after >= 0) {
        if (fault.pwrite_after == 0) {
            fault.calls_failed++;
            errno = fault.pwrite_errno;
            return -1;
        }
        if ((long)n > fault.pwrite_after) n = (size_t)fault.pwrite_after; /* short, then fail */
        fault.pwrite_after -= (long)n;
    }
    return pwrite(fd, buf, n, off);
}

static int f_fdatasync(int fd)
{
    if (fault.fdatasync_errno) {
        fault.calls_failed++;
        errno = fault.fdatasync_errno;
        return -1;
    }
    return fdatasync(fd);
}

static int f_open(const char *path, int flags, mode_t mode)
{
    if ((flags & O_CREAT) && fault.open_creat_errno) {
        fault.calls_failed++;
        errno = fault.open_creat_errno;
        return -1;
    }
    return sl_io_real()->open(path, flags, mode);
}

static int f_ftruncate(int fd, off_t len)
{
    if (fault.ftruncate_errno) {
        fault.calls_failed++;
        errno = fault.ftruncate_errno;
        return -1;
    }
    return ftruncate(fd, len);
}

static sl_io_ops_t faulty;

/* ---- helpers ---- */

static seg_cache_t *cache;
static sl_log_conf_t conf;

static partition_t *open_part(const char *dir, int recover)
{
    partition_opts_t o = {.dir = dir,
                          .topic = "t",
                          .conf = &conf,
                          .cache = cache,
                          .recover = recover,
                          .now_ms = 1000};
    return check_open(&o, NULL);
}

static int try_append(partition_t *p, int n, uint32_t seed, sl_err_t *err)
{
    size_t len;
    uint8_t *b = bg_simple(n, 200, 1000, seed, &len);
    int rc = partition_append(p, b, len, 1000, NULL, err);
    free(b);
    return rc;
}

static off_t dir_bytes(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cat '%s'/*.log | wc -c", dir);
    FILE *f = popen(cmd, "r");
    long long n = -1;
    if (f) {
        if (fscanf(f, "%lld", &n) != 1) n = -1;
        pclose(f);
    }
    return (off_t)n;
}

/* ---- tests ---- */

static void test_write_faults(void)
{
    static const int errs[] = {ENOSPC, EIO};
    for (int ei = 0; ei < 2; ei++)
        for (long after = 0; after < 1700; after += 137) { /* the batch is ~1,750 bytes */
            char *dir = check_tmpdir("fault-write");
            partition_t *p = open_part(dir, 0);
            sl_err_t err;
            for (int i = 0; i < 5; i++) CHECK_EQ_INT(try_append(p, 4, (uint32_t)i, &err), SL_OK);
            int64_t leo = partition_log_end(p);
            off_t bytes = dir_bytes(dir);

            fault.pwrite_errno = errs[ei];
            fault.pwrite_after = after;
            sl_io_set(&faulty);
            int rc = try_append(p, 8, 100, &err);
            sl_io_set(NULL);
            CHECK_EQ_INT(rc, SL_ERR_STORAGE);
            CHECK_MSG(strstr(err.msg, strerror(errs[ei])) != NULL, "message: %s", err.msg);
            CHECK_EQ_INT(partition_log_end(p), leo);
            CHECK_EQ_INT(dir_bytes(dir), bytes); /* partial write cut away */
            CHECK_EQ_INT(check_log(p), leo);
            fault_clear();

            CHECK_EQ_INT(try_append(p, 3, 101, &err), SL_OK);
            CHECK_EQ_INT(partition_log_end(p), leo + 3);
            CHECK_EQ_INT(check_log(p), leo + 3);
            partition_close(p, 1);
            p = open_part(dir, 1);
            CHECK_EQ_INT(check_log(p), leo + 3);
            partition_close(p, 0);
            check_rmtree(dir);
            free(dir);
        }
}

/* A write that fails and cannot be cut back leaves the partition refusing
 * appends (it cannot prove where its log ends) until it is reopened. */
static void test_write_fault_untruncatable(void)
{
    char *dir = check_tmpdir("fault-trunc");
    partition_t *p = open_part(dir, 0);
    sl_err_t err;
    CHECK_EQ_INT(try_append(p, 4, 1, &err), SL_OK);
    fault.pwrite_errno = EIO;
    fault.pwrite_after = 100;
    fault.ftruncate_errno = EIO;
    sl_io_set(&faulty);
    CHECK_EQ_INT(try_append(p, 8, 2, &err), SL_ERR_STORAGE);
    sl_io_set(NULL);
    fault_clear();
    CHECK_EQ_INT(try_append(p, 1, 3, &err), SL_ERR_STORAGE);
    CHECK_MSG(strstr(err.msg, "truncate") != NULL, "message: %s", err.msg);
    partition_close(p, 1);
    /* Recovery cuts the torn bytes. */
    p = open_part(dir, 1);
    CHECK_EQ_INT(partition_log_end(p), 4);
    CHECK_EQ_INT(check_log(p), 4);
    CHECK_EQ_INT(try_append(p, 1, 3, &err), SL_OK);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* Short writes are not errors: the seam's helper finishes the write. */
static void test_short_writes(void)
{
    char *dir = check_tmpdir("fault-short");
    partition_t *p = open_part(dir, 0);
    sl_err_t err;
    fault.short_max = 7;
    sl_io_set(&faulty);
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(try_append(p, 3, (uint32_t)i, &err), SL_OK);
    CHECK_EQ_INT(partition_flush(p, &err), SL_OK);
    sl_io_set(NULL);
    fault_clear();
    CHECK_EQ_INT(check_log(p), 60);
    partition_close(p, 0);
    p = open_part(dir, 1);
    CHECK_EQ_INT(check_log(p), 60);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* The next segment's files cannot be created: the append that needed the
 * roll fails, the log is unchanged, the roll succeeds later. */
static void test_roll_fault(void)
{
    char *dir = check_tmpdir("fault-roll");
    partition_t *p = open_part(dir, 0);
    sl_err_t err;
    int64_t leo = 0;
    partition_stats_t st;
    do {
        CHECK_FATAL(try_append(p, 2, 1, &err) == SL_OK);
        leo += 2;
        partition_stats(p, &st);
    } while (st.size_bytes + 1200 < (uint64_t)conf.segment_bytes);
    fault.open_creat_errno = ENOSPC;
    sl_io_set(&faulty);
    int rc = SL_OK;
    for (int i = 0; i < 5 && rc == SL_OK; i++) {
        rc = try_append(p, 2, 2, &err);
        if (rc == SL_OK) leo += 2;
    }
    sl_io_set(NULL);
    CHECK_EQ_INT(rc, SL_ERR_STORAGE);
    CHECK(fault.calls_failed > 0);
    fault_clear();
    CHECK_EQ_INT(partition_log_end(p), leo);
    CHECK_EQ_INT(check_log(p), leo);
    CHECK_EQ_INT(try_append(p, 2, 3, &err), SL_OK);
    partition_stats(p, &st);
    CHECK(st.segments >= 2);
    CHECK_EQ_INT(check_log(p), leo + 2);
    partition_close(p, 0);
    p = open_part(dir, 1);
    CHECK_EQ_INT(check_log(p), leo + 2);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* A failed fdatasync: the flush reports it, durable does not move, and the
 * partition refuses appends (the kernel may have dropped the dirty pages,
 * so a retried fsync could lie) until reopened, when recovery re-checks. */
static void test_fdatasync_fault(void)
{
    char *dir = check_tmpdir("fault-sync");
    partition_t *p = open_part(dir, 0);
    sl_err_t err;
    CHECK_EQ_INT(try_append(p, 4, 1, &err), SL_OK);
    CHECK_EQ_INT(partition_flush(p, &err), SL_OK);
    CHECK_EQ_INT(try_append(p, 4, 2, &err), SL_OK);
    fault.fdatasync_errno = EIO;
    sl_io_set(&faulty);
    CHECK_EQ_INT(partition_flush(p, &err), SL_ERR_STORAGE);
    sl_io_set(NULL);
    fault_clear();
    CHECK_MSG(strstr(err.msg, "fdatasync") != NULL, "message: %s", err.msg);
    CHECK_EQ_INT(partition_durable(p), 4);
    CHECK_EQ_INT(try_append(p, 1, 3, &err), SL_ERR_STORAGE);
    CHECK_EQ_INT(partition_flush(p, &err), SL_ERR_STORAGE);
    CHECK_EQ_INT(check_log(p), 8); /* reads still work */
    partition_close(p, 1);
    p = open_part(dir, 1);
    CHECK_EQ_INT(check_log(p), 8);
    CHECK_EQ_INT(try_append(p, 1, 3, &err), SL_OK);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* Through the store: a failed topic.conf write creates nothing; a failed
 * acks=all flush reaches the waiter as an error. */
static void test_store_faults(void)
{
    char *dir = check_tmpdir("fault-store");
    store_opts_t so = {.dir = dir};
    store_t *s;
    sl_err_t err;
    CHECK_FATAL(store_open(&so, &s, &err) == SL_OK);
    fault.pwrite_errno = ENOSPC;
    fault.pwrite_after = 0;
    sl_io_set(&faulty);
    CHECK_EQ_INT(store_topic_create(s, "t1", 2, NULL, NULL, 0, &err), SL_ERR_STORAGE);
    sl_io_set(NULL);
    fault_clear();
    char **names;
    size_t n;
    CHECK_EQ_INT(store_topic_list(s, &names, &n, &err), SL_OK);
    CHECK_EQ_INT(n, 0);
    store_names_free(names, n);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/topics/t1/topic.conf.tmp", dir);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_EQ_INT(store_topic_create(s, "t1", 2, NULL, NULL, 0, &err), SL_OK);

    partition_t *p;
    CHECK_EQ_INT(store_partition(s, "t1", 1, &p, &err), SL_OK);
    CHECK_EQ_INT(try_append(p, 5, 1, &err), SL_OK);
    fault.fdatasync_errno = EIO;
    sl_io_set(&faulty);
    CHECK_EQ_INT(flusher_wait_sync(store_flusher(s), p, 4, &err), SL_ERR_STORAGE);
    sl_io_set(NULL);
    fault_clear();
    partition_unref(p);
    store_close(s);
    /* A failed partition means no clean marker: the next open recovers. */
    CHECK_FATAL(store_open(&so, &s, &err) == SL_OK);
    CHECK_EQ_INT(store_was_clean(s), 0);
    CHECK_EQ_INT(store_partition(s, "t1", 1, &p, &err), SL_OK);
    CHECK_EQ_INT(check_log(p), 5);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

int main(void)
{
    faulty = *sl_io_real();
    faulty.pwrite = f_pwrite;
    faulty.fdatasync = f_fdatasync;
    faulty.open = f_open;
    faulty.ftruncate = f_ftruncate;
    fault_clear();
    cache = seg_cache_new(16);
    sl_log_conf_defaults(&conf);
    conf.segment_bytes = 8192;
    test_write_faults();
    test_write_fault_untruncatable();
    test_short_writes();
    test_roll_fault();
    test_fdatasync_fault();
    test_store_faults();
    seg_cache_free(cache);
    return check_exit();
}
