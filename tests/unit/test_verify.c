/* test_verify.c — store_verify() (sluiced --verify): a healthy directory is
 * clean; a flipped bit in a sealed segment, a segment cut short, garbage
 * after the last batch, a gap between segments and a broken offset are
 * each reported as CORRUPT with the right partition, segment and offset; a
 * torn tail after an unclean shutdown is TORN, not corrupt; the directory
 * lock is honoured. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batchgen.h"
#include "check.h"
#include "store.h"
#include "verify.h"

#define NBATCH 40

typedef struct found {
    int n;
    verify_problem_t last;
    char topic[64], segment[64], reason[400];
} found_t;

static void collect(void *arg, const verify_problem_t *p)
{
    found_t *f = arg;
    f->n++;
    f->last = *p;
    snprintf(f->topic, sizeof f->topic, "%s", p->topic);
    snprintf(f->segment, sizeof f->segment, "%s", p->segment);
    snprintf(f->reason, sizeof f->reason, "%s", p->reason);
}

static int run(const char *dir, found_t *f, verify_stats_t *st)
{
    memset(f, 0, sizeof *f);
    sl_err_t err;
    int rc = store_verify(dir, collect, f, st, &err);
    if (rc != SL_OK) fprintf(stderr, "store_verify: %s\n", err.msg);
    return rc;
}

/* A directory with topic "t" (2 partitions), NBATCH 10-record batches in
 * partition 0 over several 4 KiB segments, closed cleanly. */
static void make_dir(const char *dir)
{
    sl_log_conf_t defs;
    sl_log_conf_defaults(&defs);
    defs.segment_bytes = 4096;
    store_opts_t o = {.dir = dir, .defaults = &defs};
    store_t *s = NULL;
    sl_err_t err;
    CHECK_FATAL(store_open(&o, &s, &err) == SL_OK);
    CHECK_FATAL(store_topic_create(s, "t", 2, NULL, NULL, 0, &err) == SL_OK);
    partition_t *p = NULL;
    CHECK_FATAL(store_partition(s, "t", 0, &p, &err) == SL_OK);
    for (int i = 0; i < NBATCH; i++) {
        size_t len;
        uint8_t *b = bg_simple(10, 40, 1700000000000 + i, (uint32_t)i, &len);
        partition_append_info_t info;
        CHECK_FATAL(partition_append(p, b, len, 1700000000000 + i, &info, &err) == SL_OK);
        free(b);
    }
    partition_unref(p);
    /* An empty partition too: opened once, so its directory exists. */
    CHECK_FATAL(store_partition(s, "t", 1, &p, &err) == SL_OK);
    partition_unref(p);
    store_close(s);
}

/* Name of the n-th segment file of t/0 (sorted), into buf. */
static void segment(const char *dir, int n, char *buf, size_t len)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/topics/t/0/ | grep '\\.log$' | sort | sed -n %dp", dir, n + 1);
    FILE *f = popen(cmd, "r");
    CHECK_FATAL(f != NULL);
    char name[128] = "";
    CHECK_FATAL(fgets(name, sizeof name, f) != NULL);
    pclose(f);
    name[strcspn(name, "\n")] = 0;
    snprintf(buf, len, "%s/topics/t/0/%s", dir, name);
}

static void poke(const char *path, long pos, uint8_t x)
{
    int fd = open(path, O_RDWR);
    CHECK_FATAL(fd >= 0);
    uint8_t b;
    CHECK_FATAL(pread(fd, &b, 1, pos) == 1);
    b ^= x;
    CHECK_FATAL(pwrite(fd, &b, 1, pos) == 1);
    close(fd);
}

static void test_clean_then_flip(const char *tmp)
{
    char dir[300], seg[600];
    snprintf(dir, sizeof dir, "%s/flip", tmp);
    make_dir(dir);
    found_t f;
    verify_stats_t st;
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 0);
    CHECK_EQ_INT((int)st.batches, NBATCH);
    CHECK_EQ_INT((int)st.partitions, 2);
    CHECK((int)st.segments >= 4);
    CHECK_EQ_INT((int)st.corrupt, 0);

    /* One bit inside the second segment's first batch, past the CRC field. */
    segment(dir, 1, seg, sizeof seg);
    poke(seg, 100, 0x10);
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 1);
    CHECK_EQ_INT(f.last.kind, VERIFY_CORRUPT);
    CHECK(strcmp(f.topic, "t") == 0 && f.last.partition == 0);
    CHECK(strstr(seg, f.segment) != NULL);
    CHECK_EQ_INT((int)f.last.position, 0);
    CHECK_EQ_INT((int)f.last.base_offset, atoi(f.segment)); /* the segment's first batch */
    CHECK_MSG(strstr(f.reason, "CRC") != NULL, "reason: %s", f.reason);
    CHECK_EQ_INT((int)st.corrupt, 1);
    /* Later batches are still checked: the scan resumed after the bad one. */
    CHECK_EQ_INT((int)st.batches, NBATCH);
    poke(seg, 100, 0x10); /* undo */
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 0);
}

static void test_truncated_and_garbage(const char *tmp)
{
    char dir[300], seg[600];
    snprintf(dir, sizeof dir, "%s/trunc", tmp);
    make_dir(dir);
    found_t f;
    verify_stats_t st;
    /* A sealed segment cut in the middle of its last batch. */
    segment(dir, 0, seg, sizeof seg);
    struct stat sb;
    CHECK_FATAL(stat(seg, &sb) == 0);
    CHECK_FATAL(truncate(seg, sb.st_size - 7) == 0);
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK(f.n >= 1);
    CHECK_EQ_INT(f.last.kind, VERIFY_CORRUPT); /* sealed, and a clean shutdown: never torn */
    CHECK_MSG(strstr(f.reason, "unreadable") != NULL || strstr(f.reason, "offset") != NULL,
              "reason: %s", f.reason);

    /* Garbage appended to the last segment after a clean shutdown. */
    snprintf(dir, sizeof dir, "%s/garbage", tmp);
    make_dir(dir);
    char last[600];
    for (int i = 0;; i++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "test $(ls %s/topics/t/0/ | grep -c '\\.log$') -gt %d", dir, i);
        if (system(cmd) != 0) break;
        segment(dir, i, last, sizeof last);
    }
    int fd = open(last, O_WRONLY | O_APPEND);
    CHECK_FATAL(fd >= 0);
    CHECK_FATAL(write(fd, "garbage!garbage!garbage!", 24) == 24);
    close(fd);
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 1);
    CHECK_EQ_INT(f.last.kind, VERIFY_CORRUPT);

    /* The same after an unclean shutdown is the torn tail recovery drops. */
    char marker[400];
    snprintf(marker, sizeof marker, "%s/.clean_shutdown", dir);
    CHECK_FATAL(unlink(marker) == 0);
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 1);
    CHECK_EQ_INT(f.last.kind, VERIFY_TORN);
    CHECK_EQ_INT((int)st.corrupt, 0);
    CHECK_EQ_INT((int)st.torn, 1);
}

static void test_offsets_and_lock(const char *tmp)
{
    char dir[300], seg[600];
    snprintf(dir, sizeof dir, "%s/offsets", tmp);
    make_dir(dir);
    found_t f;
    verify_stats_t st;
    /* A gap: the second segment disappears. */
    segment(dir, 1, seg, sizeof seg);
    CHECK_FATAL(unlink(seg) == 0);
    CHECK_EQ_INT(run(dir, &f, &st), SL_OK);
    CHECK_EQ_INT(f.n, 1);
    CHECK_MSG(strstr(f.reason, "previous one ends") != NULL, "reason: %s", f.reason);

    /* A held lock: a running broker's directory is not read. */
    char lock[400];
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    int fd = open(lock, O_RDWR);
    CHECK_FATAL(fd >= 0);
    CHECK_FATAL(flock(fd, LOCK_EX) == 0);
    pid_t pid = fork();
    if (pid == 0) { /* flock is per open file: another process sees it */
        verify_stats_t s2;
        _exit(store_verify(dir, NULL, NULL, &s2, NULL) == SL_ERR_LOCKED ? 0 : 1);
    }
    int status = -1;
    CHECK_FATAL(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "verify ignored a held lock");
    close(fd);

    char nodir[400];
    snprintf(nodir, sizeof nodir, "%s/none", tmp);
    CHECK_EQ_INT(store_verify(nodir, NULL, NULL, &st, NULL), SL_ERR_NOT_FOUND);
}

int main(void)
{
    char *tmp = check_tmpdir("verify");
    test_clean_then_flip(tmp);
    test_truncated_and_garbage(tmp);
    test_offsets_and_lock(tmp);
    check_rmtree(tmp);
    free(tmp);
    return check_exit();
}
