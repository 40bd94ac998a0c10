/* test_roundtrip.c — produce/fetch round trips against the real sluiced for
 * every acks level, auto-created topics, list offsets, long-poll wake-up,
 * and a restart after SIGTERM and after SIGKILL with every acks=all message
 * still there. */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

static harness_t h;

/* Fetches everything from offset 0 and returns the number of records,
 * checking dense offsets and CRCs. */
static int64_t consume_all(sc_t *c, const char *topic, int32_t part)
{
    int64_t next = 0, hw = 0;
    for (int guard = 0; guard < 100000; guard++) {
        const uint8_t *p;
        size_t n;
        int rc = sc_fetch(c, topic, part, next, 1 << 16, 0, 0, &p, &n, &hw);
        CHECK_EQ_INT(rc, 0);
        if (rc != 0 || n == 0) break;
        size_t off = 0;
        while (off + SL_BATCH_HEADER_SIZE <= n) {
            uint64_t sz = sl_batch_total_size(p + off);
            if (sz < SL_BATCH_HEADER_SIZE || off + sz > n) break; /* partial tail */
            sl_batch_hdr_t bh;
            sl_err_t err;
            CHECK_EQ_INT(sl_batch_validate(p + off, (size_t)sz, NULL, &bh, &err), SL_OK);
            if (bh.base_offset + bh.last_offset_delta >= next) {
                CHECK(bh.base_offset <= next);
                next = bh.base_offset + bh.last_offset_delta + 1;
            }
            off += (size_t)sz;
        }
        if (next >= hw) break;
    }
    CHECK_EQ_INT(next, hw);
    return next;
}

static void test_acks_levels(void)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "rt", 2), 0);
    CHECK_EQ_INT(sc_create_topic(&c, "rt", 2), SL_ERR_TOPIC_ALREADY_EXISTS);
    int64_t expect = 0;
    int acks_levels[] = {1, -1, 0};
    for (int a = 0; a < 3; a++) {
        for (int i = 0; i < 50; i++) {
            size_t len;
            uint8_t *b = bg_simple(10, 100, 1000 + i, (uint32_t)i, &len);
            int64_t base = -1;
            if (acks_levels[a] == 0) {
                Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
                m.topic = "rt";
                m.partition = 1;
                m.acks = 0;
                CHECK(sc_send(&c, SLUICE__API_KEY__PRODUCE, &m.base, b, len) != 0);
            } else {
                CHECK_EQ_INT(sc_produce(&c, "rt", 1, acks_levels[a], b, len, &base), 0);
                CHECK_EQ_INT(base, expect);
            }
            expect += 10;
            free(b);
        }
    }
    /* acks=0 sent no responses: the next request's answer is its own. */
    int64_t end = -1;
    for (int tries = 0; tries < 100 && end != expect; tries++) {
        CHECK_EQ_INT(sc_list_offsets(&c, "rt", 1, -1, &end), 0);
        if (end != expect) poll(NULL, 0, 10);
    }
    CHECK_EQ_INT(end, expect);
    CHECK_EQ_INT(consume_all(&c, "rt", 1), expect);
    int64_t off;
    CHECK_EQ_INT(sc_list_offsets(&c, "rt", 1, -2, &off), 0);
    CHECK_EQ_INT(off, 0);
    CHECK_EQ_INT(sc_list_offsets(&c, "rt", 1, 1000 + 7, &off), 0);
    CHECK_EQ_INT(off, 70);
    CHECK_EQ_INT(sc_list_offsets(&c, "rt", 0, -1, &off), 0);
    CHECK_EQ_INT(off, 0);
    /* Produce to a missing topic auto-creates it; fetch from a missing one is
     * an error, not a disconnect. */
    size_t len;
    uint8_t *b = bg_simple(1, 10, 1, 1, &len);
    int64_t base;
    CHECK_EQ_INT(sc_produce(&c, "auto-made", 0, 1, b, len, &base), 0);
    CHECK_EQ_INT(sc_fetch(&c, "nope", 0, 0, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(sc_fetch(&c, "rt", 1, expect + 5, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(sc_produce(&c, "rt", 7, 1, b, len, &base), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(sc_produce(&c, "rt", 0, 2, b, len, &base), SL_ERR_INVALID_REQUIRED_ACKS);
    free(b);
    sc_close(&c);
}

typedef struct delayed {
    int port;
    int delay_ms;
} delayed_t;

static void *produce_later(void *arg)
{
    delayed_t *d = arg;
    poll(NULL, 0, d->delay_ms);
    sc_t c;
    if (sc_connect(&c, d->port) == 0) {
        size_t len;
        uint8_t *b = bg_simple(3, 50, 5, 5, &len);
        int64_t base;
        sc_produce(&c, "lp", 0, 1, b, len, &base);
        free(b);
        sc_close(&c);
    }
    return NULL;
}

/* A fetch with no data waits, and is answered as soon as a produce on
 * another connection (likely another reactor) lands. */
static void test_long_poll(void)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "lp", 1), 0);
    /* Nothing arrives: answered empty after max_wait. */
    long long t0 = sl_mono_ms();
    const uint8_t *p;
    size_t n = 99;
    CHECK_EQ_INT(sc_fetch(&c, "lp", 0, 0, 1 << 16, 1, 300, &p, &n, NULL), 0);
    long long dt = sl_mono_ms() - t0;
    CHECK_EQ_INT(n, 0);
    CHECK_MSG(dt >= 250 && dt < 3000, "empty long poll took %lld ms", dt);
    /* Data arrives after 200 ms of a 5 s wait: answered right then. */
    for (int round = 0; round < 4; round++) {
        delayed_t d = {h.port, 200};
        pthread_t th;
        pthread_create(&th, NULL, produce_later, &d);
        t0 = sl_mono_ms();
        int64_t hw;
        CHECK_EQ_INT(sc_fetch(&c, "lp", 0, 3 * round, 1 << 16, 1, 5000, &p, &n, &hw), 0);
        dt = sl_mono_ms() - t0;
        pthread_join(th, NULL);
        CHECK(n > 0);
        CHECK_EQ_INT(hw, 3 * (round + 1));
        CHECK_MSG(dt >= 150 && dt < 2500, "woken after %lld ms", dt);
    }
    sc_close(&c);
}

/* Restarts: SIGTERM is a clean shutdown; SIGKILL recovers; acks=all data
 * survives both. */
static void test_restarts(void)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "dur", 1), 0);
    int64_t acked = 0;
    for (int i = 0; i < 100; i++) {
        size_t len;
        uint8_t *b = bg_simple(5, 64, 1, (uint32_t)i, &len);
        int64_t base;
        if (sc_produce(&c, "dur", 0, -1, b, len, &base) == 0) acked = base + 5;
        free(b);
    }
    CHECK_EQ_INT(acked, 500);
    sc_close(&c);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status %d", st);
    CHECK(harness_log_contains(&h, "clean shutdown"));
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK(harness_log_contains(&h, "last shutdown: clean"));
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(consume_all(&c, "dur", 0), 500);
    for (int i = 0; i < 100; i++) {
        size_t len;
        uint8_t *b = bg_simple(5, 64, 1, (uint32_t)i, &len);
        int64_t base;
        if (sc_produce(&c, "dur", 0, -1, b, len, &base) == 0) acked = base + 5;
        free(b);
    }
    sc_close(&c);
    harness_stop(&h, SIGKILL);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(consume_all(&c, "dur", 0), acked);
    CHECK_EQ_INT(acked, 1000);
    sc_close(&c);

    /* A torn write after a crash: garbage after the last batch of the
     * active segment is cut by recovery, which says so in the log. */
    harness_stop(&h, SIGKILL);
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "f=$(ls %s/topics/dur/0/*.log | sort | tail -n 1) && "
             "printf 'torn-write-torn-write-torn-write' >> \"$f\"",
             h.data);
    CHECK_FATAL(system(cmd) == 0);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(consume_all(&c, "dur", 0), 1000);
    CHECK(harness_log_contains(&h, "dur-0 recovered: torn tail truncated (32 bytes dropped"));
    sc_close(&c);
}

static void test_metrics(void)
{
    char *page = harness_metrics(&h);
    CHECK_FATAL(page != NULL);
    CHECK(harness_metric(page, "sluice_requests_total{type=\"fetch\",error=\"NONE\"}") > 0);
    CHECK(harness_metric(page, "sluice_partition_log_end_offset{topic=\"dur\",partition=\"0\"}") ==
          1000);
    CHECK(strstr(page, "sluice_produce_latency_seconds_bucket") != NULL);
    CHECK(harness_metric(page, "sluice_connections") >= 0);
    free(page);
}

int main(void)
{
    harness_init(&h, "it-roundtrip");
    const char *args[] = {"--log.segment.bytes=65536", "--message.max.bytes=32768", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);
    test_acks_levels();
    test_long_poll();
    test_restarts();
    test_metrics();
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    harness_cleanup(&h);
    return check_exit();
}
