/* test_push.c — push mode against the real sluiced: a subscribe answered
 * once, then PUSH frames of whole, valid batches with dense offsets as
 * produces land; credit exhaustion and CREDIT; a backlog streamed first;
 * unsubscribe; errors; the per-connection subscription bound; a subscriber
 * that never reads next to one that does; connections closed with live
 * subscriptions and a clean SIGTERM afterwards (ASan: no leaks); and the
 * produce-to-push latency, printed. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

static harness_t h;

static void connect_or_die(sc_t *c)
{
    CHECK_FATAL(sc_connect(c, h.port) == 0);
}

static uint64_t send_subscribe(sc_t *c, const char *topic, int32_t part, int64_t offset,
                               uint64_t credit)
{
    Sluice__SubscribeRequest m = SLUICE__SUBSCRIBE_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = part;
    m.offset = offset;
    m.credit_bytes = credit;
    return sc_send(c, SLUICE__API_KEY__SUBSCRIBE, &m.base, NULL, 0);
}

/* Subscribes and reads the answer; returns its error code (-1: transport)
 * and the subscription id in *sub. */
static int subscribe(sc_t *c, const char *topic, int32_t part, int64_t offset, uint64_t credit,
                     uint64_t *sub, int64_t *hw)
{
    uint64_t corr = send_subscribe(c, topic, part, offset, credit);
    if (sub) *sub = corr;
    sl_response_t r;
    if (!corr || sc_recv(c, &r) != 0) return -1;
    CHECK_EQ_INT(r.hdr->api, SLUICE__API_KEY__SUBSCRIBE);
    CHECK_EQ_INT(r.hdr->correlation_id, corr);
    if (r.hdr->error_code == 0 && hw) {
        sl_err_t err;
        Sluice__SubscribeResponse *sr = (Sluice__SubscribeResponse *)sl_body_decode(
            &sluice__subscribe_response__descriptor, r.body, r.body_len, &c->arena, &err);
        CHECK_FATAL(sr != NULL);
        *hw = sr->high_watermark;
    }
    return r.hdr->error_code;
}

static void credit(sc_t *c, uint64_t sub, uint64_t bytes)
{
    Sluice__CreditRequest m = SLUICE__CREDIT_REQUEST__INIT;
    m.subscription = sub;
    m.bytes = bytes;
    CHECK(sc_send(c, SLUICE__API_KEY__CREDIT, &m.base, NULL, 0) != 0);
}

static uint64_t send_unsubscribe(sc_t *c, uint64_t sub)
{
    Sluice__UnsubscribeRequest m = SLUICE__UNSUBSCRIBE_REQUEST__INIT;
    m.subscription = sub;
    return sc_send(c, SLUICE__API_KEY__UNSUBSCRIBE, &m.base, NULL, 0);
}

/* 1 if nothing arrives on c within ms. */
static int quiet(sc_t *c, int ms)
{
    if (c->rlen > c->rstart) return 0;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return poll(&pf, 1, ms) == 0;
}

typedef struct pushed {
    int64_t first_offset, hw;
    int64_t next;    /* offset after the last batch */
    int64_t records; /* records at or after the expected offset */
    size_t bytes;
    int batches;
} pushed_t;

/* Checks the PUSH frame r of subscription sub: whole valid batches, the
 * first holding *next, dense after it; advances *next. */
static void check_push(sc_t *c, const sl_response_t *r, uint64_t sub, int64_t *next, pushed_t *o)
{
    memset(o, 0, sizeof *o);
    CHECK_EQ_INT(r->hdr->api, SLUICE__API_KEY__PUSH);
    CHECK_EQ_INT(r->hdr->correlation_id, sub);
    CHECK_EQ_INT(r->hdr->error_code, 0);
    sl_err_t err;
    Sluice__PushData *d = (Sluice__PushData *)sl_body_decode(&sluice__push_data__descriptor,
                                                             r->body, r->body_len, &c->arena, &err);
    CHECK_FATAL(d != NULL);
    o->first_offset = d->first_offset;
    o->hw = d->high_watermark;
    o->bytes = r->payload_len;
    CHECK(r->payload_len > 0);
    size_t off = 0;
    while (off < r->payload_len) {
        CHECK_FATAL(off + SL_BATCH_HEADER_SIZE <= r->payload_len);
        uint64_t sz = sl_batch_total_size(r->payload + off);
        CHECK_FATAL(sz >= SL_BATCH_HEADER_SIZE && off + sz <= r->payload_len); /* whole */
        sl_batch_hdr_t bh;
        CHECK_EQ_INT(sl_batch_validate(r->payload + off, (size_t)sz, NULL, &bh, &err), SL_OK);
        if (o->batches == 0) {
            CHECK_EQ_INT(bh.base_offset, d->first_offset);
            CHECK(bh.base_offset <= *next && bh.base_offset + bh.last_offset_delta >= *next);
        } else {
            CHECK_EQ_INT(bh.base_offset, *next);
        }
        o->records += bh.base_offset + bh.last_offset_delta + 1 - *next;
        *next = bh.base_offset + bh.last_offset_delta + 1;
        off += (size_t)sz;
        o->batches++;
    }
    o->next = *next;
    CHECK(o->hw >= *next);
    CHECK(strcmp(d->topic, "") != 0);
}

/* Receives pushes of sub until *next reaches `until`; returns pushes seen. */
static int drain_pushes(sc_t *c, uint64_t sub, int64_t *next, int64_t until)
{
    int n = 0;
    while (*next < until) {
        sl_response_t r;
        int rc = sc_recv(c, &r);
        CHECK_EQ_INT(rc, 0);
        if (rc != 0) break;
        pushed_t o;
        check_push(c, &r, sub, next, &o);
        n++;
    }
    return n;
}

static int64_t produce(sc_t *c, const char *topic, int nrec, size_t vsize, uint32_t seed)
{
    size_t len;
    uint8_t *b = bg_simple(nrec, vsize, 1000 + seed, seed, &len);
    int64_t base = -1;
    CHECK_EQ_INT(sc_produce(c, topic, 0, 1, b, len, &base), 0);
    free(b);
    return base;
}

static void test_basic(void)
{
    sc_t s, p;
    connect_or_die(&s);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "basic", 1), 0);
    uint64_t sub;
    int64_t hw = -1;
    CHECK_EQ_INT(subscribe(&s, "basic", 0, 0, 1 << 20, &sub, &hw), 0);
    CHECK_EQ_INT(hw, 0);
    CHECK(quiet(&s, 100)); /* nothing to push yet */
    /* The exact bytes come back (the broker only sets baseOffset, 0 here). */
    size_t len;
    uint8_t *b = bg_simple(5, 100, 1234, 7, &len);
    int64_t base = -1;
    uint64_t t0 = sl_mono_us();
    CHECK_EQ_INT(sc_produce(&p, "basic", 0, 1, b, len, &base), 0);
    CHECK_EQ_INT(base, 0);
    sl_response_t r;
    CHECK_EQ_INT(sc_recv(&s, &r), 0);
    uint64_t dt = sl_mono_us() - t0;
    CHECK_MSG(dt < 1000000, "first push took %" PRIu64 " us", dt);
    int64_t next = 0;
    pushed_t o;
    check_push(&s, &r, sub, &next, &o);
    CHECK_EQ_INT(next, 5);
    CHECK_EQ_INT(o.hw, 5);
    CHECK_EQ_INT(r.payload_len, len);
    CHECK(r.payload_len == len && memcmp(r.payload, b, len) == 0);
    free(b);
    /* Many pushes, in order, dense. */
    for (int i = 0; i < 300; i++) produce(&p, "basic", 1 + i % 3, 50 + i, (uint32_t)i);
    int64_t leo = 5;
    for (int i = 0; i < 300; i++) leo += 1 + i % 3;
    int n = drain_pushes(&s, sub, &next, leo);
    CHECK_EQ_INT(next, leo);
    CHECK(n >= 1);
    CHECK(quiet(&s, 100));
    /* Ordinary requests on the subscribing connection keep their order. */
    int64_t lo = -1;
    CHECK_EQ_INT(sc_list_offsets(&s, "basic", 0, -1, &lo), 0);
    CHECK_EQ_INT(lo, leo);
    sc_close(&s);
    sc_close(&p);
}

static void test_credit(void)
{
    sc_t s, p;
    connect_or_die(&s);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "credit", 1), 0);
    uint64_t sub;
    CHECK_EQ_INT(subscribe(&s, "credit", 0, 0, 1, &sub, NULL), 0);
    for (int i = 0; i < 3; i++) produce(&p, "credit", 2, 200, (uint32_t)i);
    /* Credit 1: one whole batch anyway (progress), then credit < 0. */
    sl_response_t r;
    CHECK_EQ_INT(sc_recv(&s, &r), 0);
    int64_t next = 0;
    pushed_t o;
    check_push(&s, &r, sub, &next, &o);
    CHECK_EQ_INT(o.batches, 1);
    CHECK_EQ_INT(next, 2);
    CHECK(quiet(&s, 300));
    /* Still negative after a tiny credit. */
    credit(&s, sub, 1);
    CHECK(quiet(&s, 200));
    /* Enough for the rest: both batches, and nothing is answered. */
    credit(&s, sub, 1 << 20);
    drain_pushes(&s, sub, &next, 6);
    CHECK_EQ_INT(next, 6);
    CHECK(quiet(&s, 100));
    credit(&s, sub, 0); /* a no-op */
    produce(&p, "credit", 1, 100, 50);
    drain_pushes(&s, sub, &next, 7);
    /* CREDIT for an unknown subscription: ignored, never answered. */
    credit(&s, 999999, 100);
    int64_t lo = -1;
    CHECK_EQ_INT(sc_list_offsets(&s, "credit", 0, -1, &lo), 0);
    CHECK_EQ_INT(lo, 7);
    sc_close(&s);
    sc_close(&p);
}

static void test_backlog(void)
{
    sc_t s, p;
    connect_or_die(&s);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "backlog", 1), 0);
    for (int i = 0; i < 200; i++) produce(&p, "backlog", 4, 300, (uint32_t)i);
    /* From the middle of a batch: the first push starts at the batch
     * holding offset 37, everything through 800 follows. */
    uint64_t sub;
    int64_t hw = -1;
    CHECK_EQ_INT(subscribe(&s, "backlog", 0, 37, 100000, &sub, &hw), 0);
    CHECK_EQ_INT(hw, 800);
    int64_t next = 37;
    sl_response_t r;
    CHECK_EQ_INT(sc_recv(&s, &r), 0);
    pushed_t o;
    check_push(&s, &r, sub, &next, &o);
    CHECK_EQ_INT(o.first_offset, 36);
    /* 100000 bytes of credit ≈ 76 batches of ~1.3 KB: then it stops. */
    while (!quiet(&s, 300)) {
        CHECK_EQ_INT(sc_recv(&s, &r), 0);
        check_push(&s, &r, sub, &next, &o);
    }
    CHECK(next > 37 && next < 800);
    credit(&s, sub, 10 << 20);
    drain_pushes(&s, sub, &next, 800);
    CHECK_EQ_INT(next, 800);
    /* Then live data continues the same stream. */
    produce(&p, "backlog", 1, 10, 999);
    drain_pushes(&s, sub, &next, 801);
    CHECK_EQ_INT(next, 801);
    /* offset -2: from the log start; -1: from the end. */
    uint64_t sub2, sub3;
    CHECK_EQ_INT(subscribe(&s, "backlog", 0, -1, 1 << 20, &sub3, &hw), 0);
    CHECK_EQ_INT(hw, 801);
    CHECK(quiet(&s, 100));
    CHECK_EQ_INT(subscribe(&s, "backlog", 0, -2, 1 << 30, &sub2, NULL), 0);
    int64_t n2 = 0;
    drain_pushes(&s, sub2, &n2, 801);
    CHECK_EQ_INT(n2, 801);
    sc_close(&s);
    sc_close(&p);
}

static void test_unsubscribe_and_errors(void)
{
    sc_t s, p;
    connect_or_die(&s);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "unsub", 1), 0);
    uint64_t sub;
    CHECK_EQ_INT(subscribe(&s, "unsub", 0, 0, 1 << 20, &sub, NULL), 0);
    produce(&p, "unsub", 1, 10, 1);
    int64_t next = 0;
    drain_pushes(&s, sub, &next, 1);
    uint64_t corr = send_unsubscribe(&s, sub);
    sl_response_t r;
    CHECK_EQ_INT(sc_recv(&s, &r), 0);
    CHECK_EQ_INT(r.hdr->api, SLUICE__API_KEY__UNSUBSCRIBE);
    CHECK_EQ_INT(r.hdr->correlation_id, corr);
    CHECK_EQ_INT(r.hdr->error_code, 0);
    produce(&p, "unsub", 1, 10, 2);
    CHECK(quiet(&s, 300));
    /* Again: no such subscription any more. */
    corr = send_unsubscribe(&s, sub);
    CHECK_EQ_INT(sc_recv(&s, &r), 0);
    CHECK_EQ_INT(r.hdr->correlation_id, corr);
    CHECK_EQ_INT(r.hdr->error_code, SL_ERR_INVALID_REQUEST);
    /* Errors. */
    CHECK_EQ_INT(subscribe(&s, "unsub", 0, 3, 100, NULL, NULL), SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(subscribe(&s, "unsub", 0, -5, 100, NULL, NULL), SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(subscribe(&s, "unsub", 1, 0, 100, NULL, NULL), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(subscribe(&s, "no-such-topic", 0, 0, 100, NULL, NULL),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(subscribe(&s, "bad/name", 0, 0, 100, NULL, NULL), SL_ERR_INVALID_TOPIC);
    /* A subscribe at LEO is fine and pushes what comes next. */
    CHECK_EQ_INT(subscribe(&s, "unsub", 0, 2, 100, &sub, NULL), 0);
    produce(&p, "unsub", 1, 10, 3);
    next = 2;
    drain_pushes(&s, sub, &next, 3);
    sc_close(&s);
    sc_close(&p);
}

/* The bound on subscriptions per connection, pipelined. */
static void test_limit(void)
{
    sc_t s;
    connect_or_die(&s);
    CHECK_EQ_INT(sc_create_topic(&s, "limit", 1), 0);
    enum { N = 1025 };
    for (int i = 0; i < N; i++) CHECK(send_subscribe(&s, "limit", 0, -1, 0) != 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        sl_response_t r;
        if (sc_recv(&s, &r) != 0) {
            CHECK(0);
            break;
        }
        if (r.hdr->error_code == 0)
            ok++;
        else if ((int)r.hdr->error_code == SL_ERR_INVALID_REQUEST)
            refused++;
    }
    CHECK_EQ_INT(ok, 1024);
    CHECK_EQ_INT(refused, 1);
    sc_close(&s); /* 1024 live subscriptions go with it */
}

/* A subscriber that never reads stops receiving once its output reaches
 * max.connection.output.bytes; the other subscriber of the same partition
 * keeps up with the producer. */
static void test_slow_subscriber(void)
{
    sc_t slow, fast, p;
    connect_or_die(&slow);
    connect_or_die(&fast);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "slow", 1), 0);
    uint64_t ssub, fsub;
    CHECK_EQ_INT(subscribe(&slow, "slow", 0, 0, UINT64_MAX, &ssub, NULL), 0);
    CHECK_EQ_INT(subscribe(&fast, "slow", 0, 0, UINT64_MAX, &fsub, NULL), 0);
    enum { BATCHES = 800, RECS = 10, VSIZE = 5000 };
    size_t len;
    uint8_t *b = bg_simple(RECS, VSIZE, 1000, 1, &len);
    uint64_t t0 = sl_mono_us();
    int64_t next = 0;
    for (int i = 0; i < BATCHES; i++) {
        /* Pipelined produce (acks=1), read the acks after a few. */
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        m.topic = "slow";
        m.acks = 1;
        CHECK(sc_send(&p, SLUICE__API_KEY__PRODUCE, &m.base, b, len) != 0);
        /* Read whatever pushes have arrived, so the fast one never lags. */
        while (!quiet(&fast, 0)) {
            sl_response_t r;
            CHECK_EQ_INT(sc_recv(&fast, &r), 0);
            pushed_t o;
            check_push(&fast, &r, fsub, &next, &o);
        }
        if (i % 16 == 15)
            for (int k = 0; k < 16; k++) {
                sl_response_t r;
                CHECK_EQ_INT(sc_recv(&p, &r), 0);
                CHECK_EQ_INT(r.hdr->error_code, 0);
            }
    }
    for (int k = 0; k < BATCHES % 16; k++) {
        sl_response_t r;
        CHECK_EQ_INT(sc_recv(&p, &r), 0);
    }
    uint64_t t_prod = sl_mono_us() - t0;
    drain_pushes(&fast, fsub, &next, (int64_t)BATCHES * RECS);
    uint64_t t_all = sl_mono_us() - t0;
    CHECK_EQ_INT(next, (int64_t)BATCHES * RECS);
    double mb = (double)BATCHES * (double)len / 1e6;
    printf("slow-subscriber: %.1f MB produced in %.0f ms; the reading subscriber had all of it "
           "%.0f ms after the first produce (%.0f MB/s)\n",
           mb, t_prod / 1e3, t_all / 1e3, mb / (t_all / 1e6));
    CHECK_MSG(t_all < 30000000, "reading subscriber took %" PRIu64 " us", t_all);
    /* The slow one was held at its cap plus socket buffers... */
    int unread = 0;
    CHECK(ioctl(slow.fd, FIONREAD, &unread) == 0);
    printf("slow-subscriber: the non-reading subscriber had %d bytes waiting in its socket\n",
           unread);
    CHECK_MSG((double)unread < (double)BATCHES * (double)len * 0.9, "unread %d", unread);
    /* ... and reading resumes its stream where it stopped, in order. */
    slow.timeout_ms = 2000;
    int64_t snext = 0;
    while (!quiet(&slow, 200) && snext < (int64_t)BATCHES * RECS) {
        sl_response_t r;
        if (sc_recv(&slow, &r) != 0) break;
        pushed_t o;
        check_push(&slow, &r, ssub, &snext, &o);
    }
    drain_pushes(&slow, ssub, &snext, (int64_t)BATCHES * RECS);
    CHECK_EQ_INT(snext, (int64_t)BATCHES * RECS);
    free(b);
    sc_close(&slow);
    sc_close(&fast);
    sc_close(&p);
}

/* Connections closed with live subscriptions and output still queued. */
static void test_close_live(void)
{
    sc_t p;
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "close", 2), 0);
    for (int i = 0; i < 50; i++) produce(&p, "close", 10, 5000, (uint32_t)i);
    for (int round = 0; round < 5; round++) {
        sc_t s[4];
        for (int k = 0; k < 4; k++) {
            connect_or_die(&s[k]);
            for (int j = 0; j < 8; j++)
                CHECK(send_subscribe(&s[k], "close", j % 2, j % 2 ? -1 : 0, UINT64_MAX) != 0);
        }
        produce(&p, "close", 3, 100, 77);
        for (int k = 0; k < 4; k++) sc_close(&s[k]); /* unread responses and pushes */
    }
    /* The broker is fine: a new subscriber still works. */
    sc_t s;
    connect_or_die(&s);
    uint64_t sub;
    CHECK_EQ_INT(subscribe(&s, "close", 0, -2, UINT64_MAX, &sub, NULL), 0);
    int64_t next = 0;
    drain_pushes(&s, sub, &next, 50 * 10 + 5 * 3);
    CHECK_EQ_INT(next, 50 * 10 + 5 * 3);
    /* Left open with a live subscription: SIGTERM must still be clean. */
    sc_close(&p);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced exit status 0x%x", st);
    sc_close(&s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Produce (acks=1, one record) and wait for both the ack and the push;
 * prints produce→push and ack→push percentiles. */
static void test_latency(void)
{
    sc_t s, p;
    connect_or_die(&s);
    connect_or_die(&p);
    CHECK_EQ_INT(sc_create_topic(&p, "lat", 1), 0);
    uint64_t sub;
    CHECK_EQ_INT(subscribe(&s, "lat", 0, -1, UINT64_MAX, &sub, NULL), 0);
    enum { N = 1000 };
    static int64_t e2e[N], after_ack[N], ack[N];
    size_t len;
    uint8_t *b = bg_simple(1, 100, 1000, 1, &len);
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = "lat";
    m.acks = 1;
    int64_t next = 0;
    int got = 0;
    for (int i = 0; i < N; i++) {
        uint64_t t0 = sl_mono_us(), t_ack = 0, t_push = 0;
        CHECK_FATAL(sc_send(&p, SLUICE__API_KEY__PRODUCE, &m.base, b, len) != 0);
        while (!t_ack || !t_push) {
            struct pollfd pf[2] = {{.fd = p.fd, .events = POLLIN}, {.fd = s.fd, .events = POLLIN}};
            int buffered = (!t_push && s.rlen > s.rstart) || (!t_ack && p.rlen > p.rstart);
            int pr = buffered ? 1 : poll(pf, 2, 5000);
            CHECK_FATAL(pr > 0);
            sl_response_t r;
            if (!t_push && (s.rlen > s.rstart || (pf[1].revents & POLLIN))) {
                CHECK_FATAL(sc_recv(&s, &r) == 0);
                t_push = sl_mono_us();
                pushed_t o;
                check_push(&s, &r, sub, &next, &o);
            }
            if (!t_ack && (p.rlen > p.rstart || (pf[0].revents & POLLIN))) {
                CHECK_FATAL(sc_recv(&p, &r) == 0);
                CHECK_EQ_INT(r.hdr->error_code, 0);
                t_ack = sl_mono_us();
            }
        }
        e2e[got] = (int64_t)(t_push - t0);
        ack[got] = (int64_t)(t_ack - t0);
        after_ack[got] = (int64_t)t_push - (int64_t)t_ack;
        got++;
    }
    CHECK_EQ_INT(next, N);
    qsort(e2e, (size_t)got, sizeof *e2e, cmp_i64);
    qsort(ack, (size_t)got, sizeof *ack, cmp_i64);
    qsort(after_ack, (size_t)got, sizeof *after_ack, cmp_i64);
    int i50 = got / 2, i99 = got * 99 / 100;
    printf("latency over %d single-record produces (acks=1), microseconds:\n", got);
    printf("  produce sent -> ack received : p50 %" PRId64 "  p99 %" PRId64 "\n", ack[i50],
           ack[i99]);
    printf("  produce sent -> push received: p50 %" PRId64 "  p99 %" PRId64 "\n", e2e[i50],
           e2e[i99]);
    printf("  ack received -> push received: p50 %" PRId64 "  p99 %" PRId64
           " (negative: the push came first)\n",
           after_ack[i50], after_ack[i99]);
    free(b);
    sc_close(&s);
    sc_close(&p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "push");
    const char *extra[] = {"--num.reactors=4", "--max.connection.output.bytes=1048576", NULL};
    CHECK_FATAL(harness_start(&h, extra) == 0);
    test_basic();
    test_credit();
    test_backlog();
    test_unsubscribe_and_errors();
    test_limit();
    test_slow_subscriber();
    test_latency();
    test_close_live(); /* last: stops the broker */
    harness_cleanup(&h);
    return check_exit();
}
