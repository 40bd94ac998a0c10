/* test_diskfull.c — a full disk fails produces with a storage error and
 * damages nothing; the broker serves reads while full and takes writes again
 * once space is freed.
 *
 * The data directory lives on an 8 MiB tmpfs mounted by the test (in a
 * private mount namespace when unshare() allows, so nothing outlives the
 * test; as root). If no small filesystem can be mounted (no privilege, e.g.
 * in a container) the test prints "SKIP: cannot mount a small filesystem:
 * <reason>" and exits 77, which ctest reports as skipped. A 4 MiB filler
 * file on the same tmpfs, written before the broker starts, is what gets
 * deleted to free space without touching the broker's files.
 *
 * Proved:
 *  - producing (acks=all, retries=0, 1000-byte records, 1 MiB segments so
 *    rolls happen on the way) until the disk is full ends with delivery
 *    reports carrying SLUICE_ERR_STORAGE_ERROR (56) and nothing else; the
 *    broker stays up;
 *  - every acknowledged message reads back at its offset with its content
 *    while the disk is full, the log holds exactly the acknowledged records
 *    (a failed append leaves nothing behind), offsets dense, no errors;
 *  - after deleting the filler, produces succeed again and the new messages
 *    get the next dense offsets and read back;
 *  - a clean stop and a SIGKILL each followed by a restart keep all of it;
 *  - a broker stopped while the disk is completely full (no byte left)
 *    starts again on that full disk and serves everything, and takes writes
 *    once space is back.
 *
 * Options: --seed S.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "rlib.h"
#include "sluice/sluice.h"

#define TOPIC   "full"
#define NPART   2
#define MSG_LEN 1000

static harness_t h;
static char fsdir[400];
static int mounted;
static const char *const extra[] = {"--log.segment.bytes=1048576", NULL};

/* offsets -> sequence number (+1; 0 = nothing acknowledged there) */
static uint64_t *acked[NPART];
static int64_t nacked[NPART], cap_acked[NPART];

static void unmount_fs(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
    if (mounted) {
        if (umount2(fsdir, MNT_DETACH) != 0)
            fprintf(stderr, "umount %s: %s\n", fsdir, strerror(errno));
        mounted = 0;
    }
}

static void set_acked(int32_t p, int64_t off, uint64_t seq)
{
    if (off >= cap_acked[p]) {
        int64_t nc = cap_acked[p] ? cap_acked[p] * 2 : 4096;
        while (nc <= off) nc *= 2;
        uint64_t *n = realloc(acked[p], (size_t)nc * sizeof *n);
        CHECK_FATAL(n != NULL);
        memset(n + cap_acked[p], 0, (size_t)(nc - cap_acked[p]) * sizeof *n);
        acked[p] = n;
        cap_acked[p] = nc;
    }
    acked[p][off] = seq + 1;
    if (off + 1 > nacked[p]) nacked[p] = off + 1;
}

typedef struct drs {
    int64_t ok, storage, other;
    int other_err;
} drs_t;

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    drs_t *d = opaque;
    if (m->err == SLUICE_OK && m->offset >= 0 && m->partition >= 0 && m->partition < NPART) {
        d->ok++;
        set_acked(m->partition, m->offset, (uint64_t)(uintptr_t)m->opaque);
    } else if (m->err == SLUICE_ERR_STORAGE_ERROR) {
        d->storage++;
    } else {
        d->other++;
        d->other_err = m->err;
    }
}

static uint64_t next_seq;

/* One round: n records spread over the partitions, then a flush. */
static void produce_round(sluice_producer_t *p, int n)
{
    char buf[MSG_LEN + 1];
    for (int i = 0; i < n; i++) {
        uint64_t seq = next_seq++;
        size_t len = rl_payload(buf, sizeof buf, 1, seq, MSG_LEN);
        int rc = sluice_produce(p, TOPIC, (int32_t)(seq % NPART), NULL, 0, buf, len, NULL, 0, 0,
                                (void *)(uintptr_t)seq);
        CHECK_EQ_INT(rc, SLUICE_OK);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
}

static sluice_producer_t *mkprod(drs_t *d)
{
    memset(d, 0, sizeof *d);
    /* batch.size 16 KiB and a flush per round keep every request far below
     * segment.bytes; retries=0 shows the broker's own answer. */
    const char *kv[] = {"acks",       "all",       "retries",
                        "0",          "linger.ms", "1",
                        "batch.size", "16384",     "delivery.timeout.ms",
                        "30000",      NULL};
    return rl_producer(&h, kv, dr_cb, d);
}

typedef struct readck {
    int64_t wrong, unacked;
} readck_t;

static void read_msg(void *arg, size_t idx, const sluice_message_t *m)
{
    readck_t *r = arg;
    if (m->err) return;
    uint32_t pid = 0;
    uint64_t seq = 0;
    int64_t off = m->offset;
    if (off < 0 || off >= nacked[idx] || acked[idx][off] == 0) {
        r->unacked++;
        return;
    }
    if (rl_payload_parse(m->value, m->value_len, &pid, &seq) != 0 || pid != 1 ||
        seq + 1 != acked[idx][off]) {
        if (r->wrong++ < 5)
            fprintf(stderr, "partition %zu offset %" PRId64 ": wrong content\n", idx, off);
    }
}

static int64_t damaged;

/* Everything acknowledged reads back; the log holds nothing else. */
static void verify(const char *when)
{
    int64_t leo[NPART] = {-1, -1};
    CHECK_EQ_INT(rl_describe(&h, TOPIC, leo, NPART), NPART);
    rl_part_t parts[NPART];
    memset(parts, 0, sizeof parts);
    for (int p = 0; p < NPART; p++) {
        CHECK_MSG(leo[p] == nacked[p],
                  "%s: partition %d ends at %" PRId64 ", %" PRId64 " offsets acknowledged", when, p,
                  leo[p], nacked[p]);
        int64_t holes = 0;
        for (int64_t o = 0; o < nacked[p]; o++) holes += acked[p][o] == 0;
        CHECK_MSG(holes == 0,
                  "%s: partition %d: %" PRId64 " offsets below the end never acknowledged", when, p,
                  holes);
        parts[p].topic = TOPIC;
        parts[p].partition = p;
        parts[p].to = nacked[p];
    }
    readck_t r = {0, 0};
    rl_read(&h, parts, NPART, read_msg, &r, 60000, NULL);
    for (int p = 0; p < NPART; p++)
        CHECK_MSG(parts[p].errors == 0 && parts[p].gaps == 0 && parts[p].eof_at == nacked[p] &&
                      parts[p].next == nacked[p],
                  "%s: partition %d: %" PRId64 " errors, %" PRId64 " gaps, end %" PRId64
                  ", read to %" PRId64 ", want %" PRId64,
                  when, p, parts[p].errors, parts[p].gaps, parts[p].eof_at, parts[p].next,
                  nacked[p]);
    CHECK_MSG(r.wrong == 0 && r.unacked == 0,
              "%s: %" PRId64 " wrong records, %" PRId64 " never acknowledged", when, r.wrong,
              r.unacked);
    damaged += r.wrong;
    for (int p = 0; p < NPART; p++)
        if (parts[p].next < nacked[p]) damaged += nacked[p] - parts[p].next;
}

static int broker_alive(void)
{
    int st;
    return h.pid > 0 && waitpid(h.pid, &st, WNOHANG) == 0;
}

/* Writes a file of `bytes` (or until ENOSPC when bytes is 0); returns the
 * bytes written or -1. */
static int64_t write_filler(const char *path, int64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    static char chunk[65536];
    memset(chunk, 'F', sizeof chunk);
    int64_t done = 0;
    for (;;) {
        size_t want = sizeof chunk;
        if (bytes && (int64_t)want > bytes - done) want = (size_t)(bytes - done);
        if (want == 0) break;
        ssize_t w = write(fd, chunk, want);
        if (w <= 0) break;
        done += w;
    }
    close(fd);
    return done;
}

/* Produces until the disk is full: returns the rounds it took. */
static int fill(int *first_err)
{
    drs_t d;
    sluice_producer_t *p = mkprod(&d);
    int rounds = 0;
    *first_err = 0;
    while (rounds < 400) { /* 400 × 64 KB is far beyond 8 MiB */
        int64_t before = d.storage + d.other;
        produce_round(p, 64);
        rounds++;
        if (d.storage + d.other > before) break;
    }
    /* Full: a few more rounds all get storage errors (or fit in a last
     * gap); nothing else. */
    for (int i = 0; i < 3; i++) produce_round(p, 16);
    sluice_producer_destroy(p);
    CHECK_MSG(d.storage > 0, "no STORAGE_ERROR after %d rounds (%" PRId64 " acknowledged)", rounds,
              d.ok);
    CHECK_MSG(d.other == 0, "%" PRId64 " reports with another error: %s", d.other,
              sluice_err2str(d.other_err));
    *first_err = d.storage ? SLUICE_ERR_STORAGE_ERROR : d.other_err;
    fprintf(stderr,
            "diskfull: %" PRId64 " acknowledged, %" PRId64 " storage errors after %d rounds\n",
            d.ok, d.storage, rounds);
    return rounds;
}

/* Produces n more; all must be acknowledged at the next dense offsets. */
static void produce_ok(const char *when, int n)
{
    int64_t before[NPART];
    for (int p = 0; p < NPART; p++) before[p] = nacked[p];
    drs_t d;
    sluice_producer_t *p = mkprod(&d);
    for (int i = 0; i < n; i += 64) produce_round(p, n - i < 64 ? n - i : 64);
    sluice_producer_destroy(p);
    CHECK_MSG(d.ok == n && d.storage == 0 && d.other == 0,
              "%s: %" PRId64 " of %d acknowledged, %" PRId64 " storage errors, %" PRId64
              " other (%s)",
              when, d.ok, n, d.storage, d.other, sluice_err2str(d.other_err));
    int64_t added = 0;
    for (int q = 0; q < NPART; q++) added += nacked[q] - before[q];
    CHECK_EQ_INT(added, d.ok);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 1, &o);
    rl_allow_flags(&o, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    harness_init(&h, "diskfull");
    rl_guard(&h);
    snprintf(fsdir, sizeof fsdir, "%s/fs", h.dir);
    CHECK_FATAL(mkdir(fsdir, 0755) == 0);
    /* A private mount namespace when possible: the tmpfs dies with us. */
    int private_ns = 0;
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
        private_ns = 1;
    if (mount("tmpfs", fsdir, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0755") != 0) {
        int e = errno;
        printf("SKIP: cannot mount a small filesystem: mount -t tmpfs -o size=8m on %s: %s\n",
               fsdir, strerror(e));
        harness_cleanup(&h);
        return 77;
    }
    mounted = 1;
    atexit(unmount_fs);
    printf("diskfull: 8 MiB tmpfs on %s%s\n", fsdir,
           private_ns ? " (private mount namespace)" : "");
    snprintf(h.data, sizeof h.data, "%s/data", fsdir);
    char filler[500], filler2[500];
    snprintf(filler, sizeof filler, "%s/filler", fsdir);
    snprintf(filler2, sizeof filler2, "%s/filler2", fsdir);
    CHECK_FATAL(write_filler(filler, 4 << 20) == 4 << 20);

    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(rl_create_topic(&h, TOPIC, NPART, NULL, 0) == 0);

    int first_err = 0;
    int rounds = fill(&first_err);
    CHECK_EQ_INT(first_err, SLUICE_ERR_STORAGE_ERROR);
    CHECK_MSG(broker_alive(), "sluiced died on a full disk (see %s)", h.log);
    int64_t full_at = nacked[0] + nacked[1];
    CHECK_MSG(full_at > 1000, "only %" PRId64 " messages fit on the disk", full_at);
    verify("while full");

    /* Free space: writes work again. */
    CHECK_FATAL(unlink(filler) == 0);
    produce_ok("after freeing 4 MiB", 1000);
    verify("after freeing space");

    /* Restarts keep it all. */
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    verify("after a clean restart");
    produce_ok("after a clean restart", 200);
    int st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    verify("after SIGKILL and restart");

    /* Completely full (not a byte left: a second filler takes what the
     * broker left free), then stopped and restarted there. */
    int64_t f2 = write_filler(filler2, 0);
    CHECK_MSG(f2 >= 1 << 20, "only %" PRId64 " bytes were free for the second filler", f2);
    {
        drs_t d;
        sluice_producer_t *p = mkprod(&d);
        produce_round(p, 16);
        sluice_producer_destroy(p);
        /* tmpfs allocates whole pages: a record may still fit in the slack
         * of a segment's last page, but most must fail. */
        CHECK_MSG(d.storage > 0 && d.ok <= 2 && d.other == 0,
                  "produce on a completely full disk: %" PRId64 " acknowledged, %" PRId64
                  " storage errors, %" PRId64 " other",
                  d.ok, d.storage, d.other);
    }
    verify("completely full");
    st = harness_stop(&h, SIGTERM);
    CHECK_MSG(st != -1 && WIFEXITED(st), "clean stop on a full disk: wait status %#x", st);
    int restarted = harness_start(&h, extra) == 0;
    CHECK_MSG(restarted, "sluiced does not start on a full disk (log: %s)", h.log);
    if (restarted) verify("restarted on a full disk");
    CHECK_FATAL(unlink(filler2) == 0);
    if (!restarted) CHECK_FATAL(harness_start(&h, extra) == 0);
    produce_ok("after freeing the disk again", 500);
    verify("at the end");
    printf("diskfull: full after %d rounds (%" PRId64 " messages of %d bytes), produce failed with "
           "%s, %" PRId64 " acknowledged messages missing or damaged; writes resumed after freeing "
           "space\n",
           rounds, full_at, MSG_LEN, sluice_err2str(first_err), damaged);
    harness_stop(&h, SIGTERM);
    unmount_fs();
    harness_cleanup(&h);
    for (int p = 0; p < NPART; p++) free(acked[p]);
    return check_exit();
}
