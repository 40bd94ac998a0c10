/* test_restart_time.c — how long sluiced takes to come back with 1,000
 * partitions and a few GiB of data (label torture: it writes GiBs).
 *
 * 10 topics × 100 partitions get about 2 GiB (1 KiB records in ~1 MiB
 * requests, acks=1, bounded at 150 s of producing), then one acks=all
 * produce per partition makes all of it durable, then 10 partitions get
 * 1 MiB more with acks=1 (unflushed) and the broker is SIGKILLed. Measured,
 * on a warm page cache:
 *
 *   unclean   restart after that SIGKILL: time until the broker listens, then
 *             the first fetch of every partition (partitions open lazily, so
 *             that is when recovery runs: only the unflushed tails are
 *             scanned, thanks to the recovery-point checkpoints);
 *   clean     SIGTERM (timed), restart, first fetch of every partition;
 *   full scan SIGKILL, every recovery-point file deleted, restart, first
 *             fetch of every partition: recovery has to scan all the data.
 *
 * Proved each time: every partition's log end is exactly what was
 * acknowledged and the last record is served. With at least 1 GiB, the
 * unclean restart's first fetches must also be faster than the full scan's:
 * the unclean restart is bounded by unflushed data, not by total size.
 *
 * Prints one line for docs/RELIABILITY.md:
 *   restart: 1000 partitions, X GiB, unclean restart to listening Y ms, first
 *   fetch of all partitions Z ms; clean: ...; full scan: ...
 * Options: --quick (200 MiB instead of 2 GiB), --seed S (unused: nothing is
 * random here).
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "harness.h"
#include "rlib.h"
#include "sclient.h"

#define NTOPIC          10
#define PPT             100
#define NPARTS          (NTOPIC * PPT)
#define REC_SIZE        1000
#define BATCH_N         256 /* records per batch: ~260 KB */
#define REQ_B           4   /* batches per request: ~1 MiB */
#define UNFLUSHED_PARTS 10

static harness_t h;
static int64_t leo[NPARTS];

static void tname(int t, char *buf, size_t cap)
{
    snprintf(buf, cap, "rt-%02d", t);
}

/* ListOffsets-free check of one partition: a fetch at its last offset opens
 * (and, after a crash, recovers) it and must return that record's batch. */
static int fetch_last(sc_t *c, int i)
{
    char t[16];
    tname(i / PPT, t, sizeof t);
    const uint8_t *p = NULL;
    size_t len = 0;
    int64_t hw = -1;
    int rc = sc_fetch(c, t, i % PPT, leo[i] - 1, 1, 0, 0, &p, &len, &hw);
    if (rc != 0 || hw != leo[i] || len < SL_BATCH_HEADER_SIZE) {
        CHECK_MSG(0,
                  "%s-%d: fetch at %" PRId64 ": rc %d, high watermark %" PRId64 " (want %" PRId64
                  "), %zu bytes",
                  t, i % PPT, leo[i] - 1, rc, hw, leo[i], len);
        return -1;
    }
    sl_batch_hdr_t hd;
    sl_batch_hdr_parse(p, &hd);
    if (hd.base_offset > leo[i] - 1 || hd.base_offset + hd.last_offset_delta != leo[i] - 1) {
        CHECK_MSG(0, "%s-%d: last batch holds %" PRId64 "..%" PRId64 ", want it to end at %" PRId64,
                  t, i % PPT, hd.base_offset, hd.base_offset + hd.last_offset_delta, leo[i] - 1);
        return -1;
    }
    return 0;
}

/* Starts the broker; *listen_ms = time to listening, *fetch_ms = time for
 * the first fetch of every partition. */
static void timed_start(const char *what, double *listen_ms, double *fetch_ms)
{
    double t0 = rl_now_s();
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    double t1 = rl_now_s();
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    c.timeout_ms = 120000;
    int bad = 0;
    for (int i = 0; i < NPARTS; i++) bad += fetch_last(&c, i) != 0;
    sc_close(&c);
    double t2 = rl_now_s();
    *listen_ms = (t1 - t0) * 1000;
    *fetch_ms = (t2 - t1) * 1000;
    fprintf(stderr,
            "restart (%s): listening after %.0f ms, first fetch of %d partitions %.0f ms, %d bad\n",
            what, *listen_ms, NPARTS, *fetch_ms, bad);
}

static uint64_t du(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return (uint64_t)st.st_size;
    uint64_t sum = 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        sum += du(p);
    }
    closedir(d);
    return sum;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 1, &o);
    rl_allow_flags(&o, (const char *const[]){"--quick", NULL});
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t target = rl_flag(&o, "--quick") ? 200ull << 20 : 2ull << 30;
    harness_init(&h, "restart-time");
    rl_guard(&h);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    for (int t = 0; t < NTOPIC; t++) {
        char n[16];
        tname(t, n, sizeof n);
        CHECK_FATAL(rl_create_topic(&h, n, PPT, NULL, 0) == 0);
    }
    /* One ~1 MiB request body, sent over and over (the broker writes each
     * batch's base offset into its own copy). */
    size_t blen = 0;
    uint8_t *b = bg_simple(BATCH_N, REC_SIZE, 1700000000000LL, 42, &blen);
    CHECK_FATAL(b != NULL);
    uint8_t *req = malloc(blen * REQ_B);
    CHECK_FATAL(req != NULL);
    for (int i = 0; i < REQ_B; i++) memcpy(req + i * blen, b, blen);
    size_t rlen = blen * REQ_B;
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    c.timeout_ms = 60000;
    double t0 = rl_now_s();
    uint64_t sent = 0;
    int stopped_early = 0;
    for (int round = 0; sent < target; round++) {
        for (int i = 0; i < NPARTS && sent < target; i++) {
            char t[16];
            tname(i / PPT, t, sizeof t);
            int64_t base = -1;
            int rc = sc_produce(&c, t, i % PPT, 1, req, rlen, &base);
            CHECK_FATAL(rc == 0);
            CHECK_FATAL(base == leo[i]);
            leo[i] += BATCH_N * REQ_B;
            sent += rlen;
        }
        if (rl_now_s() - t0 > 150) {
            stopped_early = 1;
            break;
        }
    }
    double t_prod = rl_now_s() - t0;
    /* Make it all durable: one acks=all record per partition (pipelined). */
    size_t olen = 0;
    uint8_t *one = bg_simple(1, 100, 1700000000000LL, 7, &olen);
    double t1 = rl_now_s();
    for (int i = 0; i < NPARTS; i++) {
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        char t[16];
        tname(i / PPT, t, sizeof t);
        m.topic = t;
        m.partition = i % PPT;
        m.acks = -1;
        m.timeout_ms = 60000;
        CHECK_FATAL(sc_send(&c, SLUICE__API_KEY__PRODUCE, &m.base, one, olen) != 0);
    }
    for (int i = 0; i < NPARTS; i++) {
        sl_response_t r;
        CHECK_FATAL(sc_recv(&c, &r) == 0);
        CHECK_EQ_INT(r.hdr->error_code, 0);
        leo[i] += 1;
    }
    double t_flush = rl_now_s() - t1;
    /* A little unflushed data. */
    uint64_t unflushed = 0;
    for (int i = 0; i < UNFLUSHED_PARTS; i++) {
        int p = i * (NPARTS / UNFLUSHED_PARTS);
        char t[16];
        tname(p / PPT, t, sizeof t);
        int64_t base = -1;
        CHECK_FATAL(sc_produce(&c, t, p % PPT, 1, req, rlen, &base) == 0);
        CHECK_EQ_INT(base, leo[p]);
        leo[p] += BATCH_N * REQ_B;
        unflushed += rlen;
    }
    sc_close(&c);
    uint64_t disk = du(h.data);
    double gib = (double)disk / (1u << 30);
    fprintf(stderr,
            "restart: produced %.2f GiB in %.1f s%s, made durable in %.1f s, %.1f MiB unflushed; "
            "data dir %.2f GiB\n",
            (double)sent / (1u << 30), t_prod, stopped_early ? " (time bound hit)" : "", t_flush,
            (double)unflushed / (1 << 20), gib);

    int st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    double u_listen, u_fetch, c_listen, c_fetch, f_listen, f_fetch;
    timed_start("unclean", &u_listen, &u_fetch);

    double ts = rl_now_s();
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    double c_stop = (rl_now_s() - ts) * 1000;
    timed_start("clean", &c_listen, &c_fetch);

    /* Full scan: no checkpoint anywhere. */
    st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    int removed = 0;
    for (int i = 0; i < NPARTS; i++) {
        char t[16], dir[600], path[700];
        tname(i / PPT, t, sizeof t);
        rl_part_dir(&h, t, i % PPT, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/recovery-point", dir);
        removed += unlink(path) == 0;
    }
    CHECK_EQ_INT(removed, NPARTS);
    timed_start("full scan", &f_listen, &f_fetch);
    if (disk >= (1u << 30))
        CHECK_MSG(
            u_fetch < f_fetch,
            "unclean restart's first fetches (%.0f ms) not faster than a full scan's (%.0f ms)",
            u_fetch, f_fetch);
    printf("restart: %d partitions, %.2f GiB, unclean restart to listening %.0f ms, first fetch of "
           "all partitions %.0f ms (%.0f MiB unflushed); clean: stop %.0f ms, listening %.0f ms, "
           "first fetch %.0f ms; full scan (no recovery points): listening %.0f ms, first fetch "
           "%.0f ms; warm page cache\n",
           NPARTS, gib, u_listen, u_fetch, (double)unflushed / (1 << 20), c_stop, c_listen, c_fetch,
           f_listen, f_fetch);
    free(b);
    free(one);
    free(req);
    harness_cleanup(&h);
    return check_exit();
}
