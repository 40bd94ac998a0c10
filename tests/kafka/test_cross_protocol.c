/* test_cross_protocol.c — both front ends enforce the same produce rules over
 * one log: one sluiced with Sluice's listener and Kafka's, one partition,
 * batches carrying a producer id (from InitProducerId on the Kafka listener)
 * sent through either protocol.
 *
 * Written against the intended design (DESIGN.md, "Front ends over one
 * core of services": the produce service holds the rules once, and the
 * idempotent-producer state belongs to the partition in storage, rebuilt by
 * recovery). The checks, numbered as in the summary this program prints:
 *   1. a batch with producer id / epoch 0 / sequence 0 appended through one
 *      protocol and retried through the other is not appended again; the
 *      retry is answered with the offset of the first append (Sluice acks 1
 *      and -1 first then Kafka, and Kafka first then Sluice);
 *   2. a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER (45) on both; the
 *      producer's sequence goes on across protocols;
 *   3. an older producer epoch is INVALID_PRODUCER_EPOCH (47) on both,
 *      whichever protocol brought the newer epoch;
 *   4. a transactional batch (attributes bit 0x10) is INVALID_RECORD (87)
 *      on both;
 *   5. Sluice's protocol: a payload of two batches, one with a producer id,
 *      is INVALID_RECORD; two plain batches are still accepted;
 *   6. producer state survives SIGKILL: retries of the last batch written
 *      (acks=-1) before the crash through the other protocol are duplicates
 *      with their first offsets, the next sequence is accepted, a gap is not;
 *   7. a Sluice-protocol client without producer ids (raw batches with
 *      producer id -1, and libsluice itself) works as before: every batch
 *      appended, retries included, bytes read back unchanged.
 * The Sluice error codes are errors.h's, which are Kafka's numbers (45, 47,
 * 87). Every produce is followed by ListOffsets(latest) through both
 * listeners, which must agree. A watchdog bounds the whole run.
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "crc32c.h"
#include "errors.h"
#include "harness.h"
#include "kraw.h"
#include "sclient.h"
#include "sluice/sluice.h"

#define TOPIC    "xp"
#define NREC     3  /* records per batch: sequences advance by 3 */
#define WATCHDOG 28 /* seconds for the whole program */

static harness_t h;
static int kfd = -1; /* Kafka listener */
static sc_t sc;      /* Sluice listener */
static int sc_up;
static int32_t kcorr = 1;

/* ---- sections: a pass/fail line per numbered check ------------------------- */

static const char *const titles[] = {
    "",
    "retry across protocols is a duplicate",
    "sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER on both",
    "older epoch: INVALID_PRODUCER_EPOCH on both",
    "transactional batch: INVALID_RECORD on both",
    "Sluice: two batches, one idempotent, refused; two plain accepted",
    "producer state survives SIGKILL",
    "clients without producer ids work as before",
};
#define NSECTIONS ((int)(sizeof titles / sizeof titles[0]))
static int sec_cur, sec_fail0, sec_checks0;
static int sec_failed[NSECTIONS], sec_checks[NSECTIONS];

static void section_end(void)
{
    if (sec_cur == 0) return;
    sec_failed[sec_cur] = check_failures - sec_fail0;
    sec_checks[sec_cur] = check_count - sec_checks0;
    sec_cur = 0;
}

static void section(int n)
{
    section_end();
    sec_cur = n;
    sec_fail0 = check_failures;
    sec_checks0 = check_count;
    fprintf(stderr, "== check %d: %s\n", n, titles[n]);
}

/* ---- batches ---------------------------------------------------------------- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Sets the producer fields and the transactional bit of a built batch, then
 * recomputes the CRC-32C (it covers everything from the attributes on). */
static void set_producer(uint8_t *b, size_t len, int64_t pid, int16_t epoch, int32_t seq, int txn)
{
    put_be(b + SL_BATCH_OFF_PRODUCER_ID, (uint64_t)pid, 8);
    put_be(b + SL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch, 2);
    put_be(b + SL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq, 4);
    uint16_t attr = (uint16_t)(b[SL_BATCH_OFF_ATTRIBUTES] << 8 | b[SL_BATCH_OFF_ATTRIBUTES + 1]);
    attr = txn ? (uint16_t)(attr | SL_BATCH_ATTR_TRANSACTIONAL)
               : (uint16_t)(attr & ~SL_BATCH_ATTR_TRANSACTIONAL);
    put_be(b + SL_BATCH_OFF_ATTRIBUTES, attr, 2);
    uint32_t crc = sl_crc32c(0, b + SL_BATCH_OFF_ATTRIBUTES, len - SL_BATCH_OFF_ATTRIBUTES);
    put_be(b + SL_BATCH_OFF_CRC, crc, 4);
}

/* A batch of NREC records; the same arguments give the same bytes (a retry
 * is byte for byte the batch it retries). pid -1: a plain batch. */
static uint8_t *mk_batch(int64_t pid, int16_t epoch, int32_t seq, int txn, size_t *len)
{
    uint32_t seed = (uint32_t)(pid * 31 + epoch * 7 + seq);
    uint8_t *b = bg_simple(NREC, 24, 1700000000000LL, seed, len);
    CHECK_FATAL(b != NULL);
    if (pid >= 0 || txn) set_producer(b, *len, pid, epoch, seq, txn);
    sl_batch_hdr_t hd;
    sl_err_t err;
    CHECK_FATAL(sl_batch_validate(b, *len, NULL, &hd, &err) == SL_OK);
    CHECK_FATAL(hd.producer_id == pid && hd.records_count == NREC);
    return b;
}

/* ---- the two protocols ------------------------------------------------------ */

typedef struct res {
    int code; /* error code; <= -1000 when no answer came */
    int64_t base;
    char msg[160];
} res_t;

static const char *name_of(int code)
{
    return code <= -1000 ? "no answer" : sl_code_name(code);
}

/* Produce through Sluice's protocol (acks 1 or -1). */
static res_t via_sluice(int acks, const void *p, size_t len)
{
    res_t r = {.code = -1000, .base = -1};
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = TOPIC;
    m.partition = 0;
    m.acks = acks;
    m.timeout_ms = 5000;
    if (!sc_send(&sc, SLUICE__API_KEY__PRODUCE, &m.base, p, len)) return r;
    sl_response_t resp;
    int rc = sc_recv(&sc, &resp);
    if (rc != 0) {
        r.code = -1000 + rc;
        return r;
    }
    r.code = resp.hdr->error_code;
    if (resp.hdr->error_message) snprintf(r.msg, sizeof r.msg, "%s", resp.hdr->error_message);
    if (r.code == 0) {
        sl_err_t err;
        Sluice__ProduceResponse *pr = (Sluice__ProduceResponse *)sl_body_decode(
            &sluice__produce_response__descriptor, resp.body, resp.body_len, &sc.arena, &err);
        if (pr)
            r.base = pr->base_offset;
        else
            r.code = -2000;
    }
    return r;
}

/* Produce v7 through Kafka's listener. */
static res_t via_kafka(int acks, const void *p, size_t len)
{
    res_t r = {.code = -1000, .base = -1};
    r.code = kt_produce(kfd, 7, kcorr++, (int16_t)acks, TOPIC, 0, p, (int32_t)len, &r.base);
    return r;
}

/* The partition's log end through both listeners; they must agree. */
static int64_t log_end(void)
{
    int64_t k = -99, s = -98;
    int ek = kt_list_offsets(kfd, kcorr++, TOPIC, 0, -1, &k);
    int es = sc_up ? sc_list_offsets(&sc, TOPIC, 0, -1, &s) : -1;
    CHECK_MSG(ek == 0 && es == 0 && k == s,
              "ListOffsets(latest) %s-0: expected both listeners to answer error 0 with the same "
              "offset; got Kafka error %d offset %" PRId64 ", Sluice error %d offset %" PRId64,
              TOPIC, ek, k, es, s);
    return k;
}

/* Checks one produce answer and the log end after it: want_code, and for
 * success want_base; the log end must be end0 + grow. Returns the log end. */
static int64_t expect(const char *what, const res_t *r, int want_code, int64_t want_base,
                      int64_t end0, int64_t grow)
{
    int64_t end = log_end();
    int ok = r->code == want_code && (want_code != 0 || r->base == want_base) && end == end0 + grow;
    char wb[32] = "-", gb[32] = "-";
    if (want_code == 0) snprintf(wb, sizeof wb, "%" PRId64, want_base);
    if (r->code == 0) snprintf(gb, sizeof gb, "%" PRId64, r->base);
    CHECK_MSG(ok,
              "%s\n      expected: error %d (%s), base offset %s, log end %" PRId64
              "\n      got:      error %d (%s), base offset %s, log end %" PRId64 "%s%s",
              what, want_code, name_of(want_code), wb, end0 + grow, r->code, name_of(r->code), gb,
              end, r->msg[0] ? ", message: " : "", r->msg);
    return end;
}

/* Both listeners gave the same answer to the same rule. */
static void same_rule(const char *what, const res_t *k, const res_t *s)
{
    CHECK_MSG(k->code == s->code,
              "%s: expected the same error code from both listeners; got Kafka %d (%s), "
              "Sluice %d (%s)%s%s",
              what, k->code, name_of(k->code), s->code, name_of(s->code),
              s->msg[0] ? ", Sluice's message: " : "", s->msg);
}

static int64_t init_pid(void)
{
    kt_buf_t b = {0};
    int32_t corr = kcorr++;
    kt_req(&b, 22, 1, corr, "xtest");
    kt_str(&b, NULL); /* no transactional id: an idempotent producer */
    kt_i32(&b, 60000);
    kt_finish(&b);
    int rc = kt_send(kfd, b.p, b.len);
    kt_free(&b);
    uint8_t *resp = NULL;
    size_t len = 0;
    if (rc == 0) rc = kt_recv(kfd, 10000, &resp, &len);
    CHECK_FATAL(rc == 0);
    kt_rd_t r;
    kt_rd_init(&r, resp, len);
    int32_t c = kt_r32(&r);
    kt_r32(&r); /* throttle */
    int16_t err = kt_r16(&r);
    int64_t pid = kt_r64(&r);
    int16_t epoch = kt_r16(&r);
    int ok = !r.bad && kt_left(&r) == 0 && c == corr && err == 0 && pid >= 0 && epoch == 0;
    if (!ok)
        fprintf(stderr,
                "InitProducerId: expected error 0, a producer id >= 0 and epoch 0; got "
                "error %d id %" PRId64 " epoch %d\n",
                err, pid, epoch);
    free(resp);
    CHECK_FATAL(ok);
    return pid;
}

static void connect_both(void)
{
    kfd = kt_connect(h.kafka_port);
    CHECK_FATAL(kfd >= 0);
    CHECK_FATAL(sc_connect(&sc, h.port) == 0);
    sc.timeout_ms = 10000;
    sc_up = 1;
}

static void close_both(void)
{
    if (kfd >= 0) close(kfd);
    kfd = -1;
    if (sc_up) sc_close(&sc);
    sc_up = 0;
}

/* ---- 1. a retry through the other protocol ---------------------------------- */

static int64_t pa, pb, pc; /* producers used by checks 1-3 */

static void test_retry_across(void)
{
    section(1);
    char what[160];
    size_t len;
    /* Sluice first (acks 1 for pa, acks -1 for pb), then a Kafka retry. */
    int64_t *pids[] = {&pa, &pb};
    int acks[] = {1, -1};
    for (int i = 0; i < 2; i++) {
        *pids[i] = init_pid();
        uint8_t *b = mk_batch(*pids[i], 0, 0, 0, &len);
        int64_t end0 = log_end();
        res_t s = via_sluice(acks[i], b, len);
        snprintf(what, sizeof what, "1: producer %" PRId64 " seq 0 via Sluice acks=%d (first)",
                 *pids[i], acks[i]);
        int64_t end1 = expect(what, &s, 0, end0, end0, NREC);
        int64_t first = s.code == 0 ? s.base : end0;
        for (int ka = 0; ka < 2; ka++) {
            res_t k = via_kafka(acks[ka], b, len);
            snprintf(what, sizeof what,
                     "1: producer %" PRId64 " seq 0 retried via Kafka acks=%d (a duplicate)",
                     *pids[i], acks[ka]);
            end1 = expect(what, &k, 0, first, end1, 0);
        }
        free(b);
    }
    /* Kafka first, then Sluice retries. */
    pc = init_pid();
    uint8_t *b = mk_batch(pc, 0, 0, 0, &len);
    int64_t end0 = log_end();
    res_t k = via_kafka(-1, b, len);
    snprintf(what, sizeof what, "1: producer %" PRId64 " seq 0 via Kafka acks=-1 (first)", pc);
    int64_t end1 = expect(what, &k, 0, end0, end0, NREC);
    int64_t first = k.code == 0 ? k.base : end0;
    for (int i = 0; i < 2; i++) {
        res_t s = via_sluice(acks[i], b, len);
        snprintf(what, sizeof what,
                 "1: producer %" PRId64 " seq 0 retried via Sluice acks=%d (a duplicate)", pc,
                 acks[i]);
        end1 = expect(what, &s, 0, first, end1, 0);
    }
    free(b);
}

/* ---- 2. a sequence gap -------------------------------------------------------- */

static void test_gap(void)
{
    section(2);
    size_t len;
    char what[160];
    /* pa's last batch holds sequences 0-2: 3 is next, 6 skips ahead. */
    uint8_t *gap = mk_batch(pa, 0, 2 * NREC, 0, &len);
    int64_t end0 = log_end();
    res_t k = via_kafka(-1, gap, len);
    end0 =
        expect("2: sequence 6 after 0-2 via Kafka", &k, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0, end0, 0);
    res_t s1 = via_sluice(1, gap, len);
    end0 = expect("2: sequence 6 after 0-2 via Sluice acks=1", &s1, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0,
                  end0, 0);
    res_t s2 = via_sluice(-1, gap, len);
    end0 = expect("2: sequence 6 after 0-2 via Sluice acks=-1", &s2, SL_ERR_OUT_OF_ORDER_SEQUENCE,
                  0, end0, 0);
    same_rule("2: sequence gap", &k, &s1);
    free(gap);

    /* The right next batch still goes in, through Sluice; then Kafka takes
     * the sequence up from there, and Sluice refuses the next gap. */
    uint8_t *b = mk_batch(pa, 0, NREC, 0, &len);
    end0 = log_end();
    res_t s = via_sluice(-1, b, len);
    int64_t end = expect("2: sequence 3 (the next) via Sluice", &s, 0, end0, end0, NREC);
    free(b);
    b = mk_batch(pa, 0, 2 * NREC, 0, &len);
    k = via_kafka(-1, b, len);
    end = expect("2: sequence 6 (the next, after 3-5 came through Sluice) via Kafka", &k, 0, end,
                 end, NREC);
    free(b);
    gap = mk_batch(pa, 0, 20 * NREC, 0, &len);
    s = via_sluice(1, gap, len);
    snprintf(what, sizeof what, "2: sequence %d after 6-8 via Sluice", 20 * NREC);
    end = expect(what, &s, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0, end, 0);
    k = via_kafka(1, gap, len);
    snprintf(what, sizeof what, "2: sequence %d after 6-8 via Kafka", 20 * NREC);
    end = expect(what, &k, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0, end, 0);
    same_rule("2: second sequence gap", &k, &s);
    free(gap);
}

/* ---- 3. an older epoch --------------------------------------------------------- */

static void test_epoch(void)
{
    section(3);
    size_t len;
    char what[200];
    /* pb's epoch goes to 1 through Sluice, pc's through Kafka; then epoch 0
     * (the next sequence of the old epoch) is fenced on both listeners. */
    struct {
        int64_t pid;
        int bump_via_kafka;
    } cases[] = {{pb, 0}, {pc, 1}};
    for (int i = 0; i < 2; i++) {
        int64_t pid = cases[i].pid;
        const char *via = cases[i].bump_via_kafka ? "Kafka" : "Sluice";
        uint8_t *b = mk_batch(pid, 1, 0, 0, &len);
        int64_t end0 = log_end();
        res_t r = cases[i].bump_via_kafka ? via_kafka(-1, b, len) : via_sluice(-1, b, len);
        snprintf(what, sizeof what, "3: producer %" PRId64 " epoch 1 seq 0 via %s", pid, via);
        int64_t end = expect(what, &r, 0, end0, end0, NREC);
        free(b);

        uint8_t *old = mk_batch(pid, 0, NREC, 0, &len);
        res_t k = via_kafka(-1, old, len);
        snprintf(what, sizeof what,
                 "3: producer %" PRId64 " epoch 0 seq 3 via Kafka (epoch 1 came via %s)", pid, via);
        end = expect(what, &k, SL_ERR_INVALID_PRODUCER_EPOCH, 0, end, 0);
        res_t s = via_sluice(1, old, len);
        snprintf(what, sizeof what,
                 "3: producer %" PRId64 " epoch 0 seq 3 via Sluice (epoch 1 came via %s)", pid,
                 via);
        end = expect(what, &s, SL_ERR_INVALID_PRODUCER_EPOCH, 0, end, 0);
        same_rule("3: older epoch", &k, &s);
        free(old);
    }
}

/* ---- 4. a transactional batch --------------------------------------------------- */

static void test_transactional(void)
{
    section(4);
    size_t len;
    int64_t pd = init_pid();
    uint8_t *b = mk_batch(pd, 0, 0, 1, &len);
    int64_t end0 = log_end();
    res_t k = via_kafka(1, b, len);
    end0 = expect("4: transactional batch via Kafka", &k, SL_ERR_INVALID_RECORD, 0, end0, 0);
    res_t s1 = via_sluice(1, b, len);
    end0 =
        expect("4: transactional batch via Sluice acks=1", &s1, SL_ERR_INVALID_RECORD, 0, end0, 0);
    res_t s2 = via_sluice(-1, b, len);
    end0 =
        expect("4: transactional batch via Sluice acks=-1", &s2, SL_ERR_INVALID_RECORD, 0, end0, 0);
    same_rule("4: transactional batch", &k, &s1);
    free(b);
}

/* ---- 5. Sluice: several batches in one produce ------------------------------------ */

static void test_multi_batch(void)
{
    section(5);
    size_t lp, li;
    int64_t pe = init_pid();
    uint8_t *plain = mk_batch(-1, 0, 0, 0, &lp);
    uint8_t *idem = mk_batch(pe, 0, 0, 0, &li);
    uint8_t *two = malloc(lp + li);
    CHECK_FATAL(two != NULL);
    int64_t end0 = log_end();

    memcpy(two, plain, lp);
    memcpy(two + lp, idem, li);
    res_t s = via_sluice(1, two, lp + li);
    end0 = expect("5: plain batch + idempotent batch in one Sluice produce", &s,
                  SL_ERR_INVALID_RECORD, 0, end0, 0);
    memcpy(two, idem, li);
    memcpy(two + li, plain, lp);
    s = via_sluice(-1, two, lp + li);
    end0 = expect("5: idempotent batch + plain batch in one Sluice produce", &s,
                  SL_ERR_INVALID_RECORD, 0, end0, 0);
    /* Refused as a whole, so pe has no state: its sequence 0 is new. */
    s = via_sluice(1, idem, li);
    int64_t end = expect("5: the idempotent batch alone afterwards (sequence 0, new)", &s, 0, end0,
                         end0, NREC);

    uint8_t *plain2 = mk_batch(-1, 0, 1, 0, &lp);
    memcpy(two, plain, lp);
    memcpy(two + lp, plain2, lp);
    s = via_sluice(1, two, 2 * lp);
    end = expect("5: two plain batches in one Sluice produce (acks=1)", &s, 0, end, end, 2 * NREC);
    s = via_sluice(-1, two, 2 * lp);
    expect("5: two plain batches in one Sluice produce (acks=-1)", &s, 0, end, end, 2 * NREC);
    free(plain2);
    free(two);
    free(idem);
    free(plain);
}

/* ---- 6. producer state after SIGKILL -------------------------------------------- */

static void test_restart(void)
{
    section(6);
    size_t len;
    char what[200];
    /* pf writes through Sluice, pg through Kafka; acks=-1, so durable. */
    int64_t pf = init_pid(), pg = init_pid();
    int64_t base_f[3], base_g[3];
    int64_t end = log_end();
    for (int i = 0; i < 3; i++) {
        uint8_t *b = mk_batch(pf, 0, i * NREC, 0, &len);
        res_t s = via_sluice(-1, b, len);
        snprintf(what, sizeof what, "6: producer %" PRId64 " seq %d via Sluice acks=-1", pf,
                 i * NREC);
        end = expect(what, &s, 0, end, end, NREC);
        base_f[i] = s.base;
        free(b);
        b = mk_batch(pg, 0, i * NREC, 0, &len);
        res_t k = via_kafka(-1, b, len);
        snprintf(what, sizeof what, "6: producer %" PRId64 " seq %d via Kafka acks=-1", pg,
                 i * NREC);
        end = expect(what, &k, 0, end, end, NREC);
        base_g[i] = k.base;
        free(b);
    }

    close_both();
    int st = harness_stop(&h, SIGKILL);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "6: expected sluiced to die of SIGKILL; wait status 0x%x", st);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    connect_both();
    int64_t after = log_end();
    CHECK_MSG(after == end,
              "6: log end after SIGKILL and restart: expected %" PRId64 ", got %" PRId64, end,
              after);
    end = after;

    /* pf: written via Sluice, retried and continued via Kafka; pg the
     * other way round. */
    struct {
        int64_t pid;
        const int64_t *bases;
        int kafka; /* the retry goes through Kafka */
    } cases[] = {{pf, base_f, 1}, {pg, base_g, 0}};
    for (int i = 0; i < 2; i++) {
        int64_t pid = cases[i].pid;
        const char *via = cases[i].kafka ? "Kafka" : "Sluice";
        const char *other = cases[i].kafka ? "Sluice" : "Kafka";
        uint8_t *b = mk_batch(pid, 0, 2 * NREC, 0, &len);
        res_t r = cases[i].kafka ? via_kafka(-1, b, len) : via_sluice(-1, b, len);
        snprintf(what, sizeof what,
                 "6: after restart, producer %" PRId64 " seq 6 (written via %s) retried via %s",
                 pid, other, via);
        end = expect(what, &r, 0, cases[i].bases[2], end, 0);
        free(b);

        b = mk_batch(pid, 0, 3 * NREC, 0, &len);
        r = cases[i].kafka ? via_kafka(-1, b, len) : via_sluice(-1, b, len);
        snprintf(what, sizeof what, "6: after restart, producer %" PRId64 " seq 9 (next) via %s",
                 pid, via);
        end = expect(what, &r, 0, end, end, NREC);
        free(b);

        uint8_t *gap = mk_batch(pid, 0, 20 * NREC, 0, &len);
        res_t k = via_kafka(1, gap, len);
        snprintf(what, sizeof what,
                 "6: after restart, producer %" PRId64 " seq 60 (a gap) via Kafka", pid);
        end = expect(what, &k, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0, end, 0);
        res_t s = via_sluice(1, gap, len);
        snprintf(what, sizeof what,
                 "6: after restart, producer %" PRId64 " seq 60 (a gap) via Sluice", pid);
        end = expect(what, &s, SL_ERR_OUT_OF_ORDER_SEQUENCE, 0, end, 0);
        same_rule("6: gap after restart", &k, &s);
        free(gap);
    }
}

/* ---- 7. clients that know nothing of producer ids --------------------------------- */

typedef struct drs {
    int n, bad;
    int64_t off[64];
} drs_t;

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    drs_t *d = opaque;
    intptr_t i = (intptr_t)m->opaque;
    if (m->err != SLUICE_OK || i < 0 || i >= 64) {
        d->bad++;
        fprintf(stderr, "7: libsluice delivery report #%ld: error %d\n", (long)i, m->err);
        return;
    }
    d->off[i] = m->offset;
    d->n++;
}

static void test_plain_clients(void)
{
    section(7);
    size_t len;
    char what[160];
    uint8_t *b = mk_batch(-1, 0, 77, 0, &len);
    int64_t end = log_end();
    /* The same plain batch again and again: each one is appended (no
     * producer id, no deduplication), through both listeners. */
    for (int i = 0; i < 2; i++) {
        res_t s = via_sluice(i ? -1 : 1, b, len);
        snprintf(what, sizeof what, "7: plain batch via Sluice acks=%d (copy %d)", i ? -1 : 1,
                 i + 1);
        end = expect(what, &s, 0, end, end, NREC);
    }
    res_t k = via_kafka(1, b, len);
    end = expect("7: the same plain batch via Kafka", &k, 0, end, end, NREC);
    /* acks=0 has no answer; the next request on the connection sees it. */
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = TOPIC;
    m.acks = 0;
    CHECK_MSG(sc_send(&sc, SLUICE__API_KEY__PRODUCE, &m.base, b, len) != 0,
              "7: expected the acks=0 produce to be sent; the send failed");
    res_t s = via_sluice(1, b, len);
    end = expect("7: plain batch via Sluice acks=1 after one with acks=0", &s, 0, end + NREC, end,
                 2 * NREC);
    /* What was stored reads back unchanged but for the base offset. */
    const uint8_t *p = NULL;
    size_t n = 0;
    int64_t hw = -1;
    int rc = sc_fetch(&sc, TOPIC, 0, s.base, 1 << 16, 0, 0, &p, &n, &hw);
    CHECK_MSG(rc == 0 && n >= len && p && memcmp(p + 8, b + 8, len - 8) == 0 &&
                  (int64_t)sl_be64(p) == s.base,
              "7: fetch at %" PRId64 ": expected error 0 and the produced batch's %zu bytes at "
              "base offset %" PRId64 "; got error %d, %zu bytes%s",
              s.base, len, s.base, rc, n, rc == 0 && n >= len && p ? " that differ" : "");
    free(b);

    /* An idempotent producer's sequence is not disturbed by plain batches in
     * between: pa's next (9-11 after 6-8 in check 2) goes in. */
    b = mk_batch(pa, 0, 3 * NREC, 0, &len);
    s = via_sluice(1, b, len);
    end = expect("7: producer pa seq 9 via Sluice after plain batches", &s, 0, end, end, NREC);
    free(b);

    /* libsluice itself: every message delivered, offsets dense from the log
     * end, and its batches carry no producer id. */
    drs_t d = {0};
    sluice_conf_t *c = sluice_conf_new();
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h.port);
    const char *kv[] = {"bootstrap.servers", bs, "acks", "all", "linger.ms", "1", NULL};
    for (int i = 0; kv[i]; i += 2)
        CHECK_FATAL(sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err) == SLUICE_CONF_OK);
    sluice_conf_set_dr_cb(c, dr_cb);
    sluice_conf_set_opaque(c, &d);
    sluice_producer_t *prod = sluice_producer_new(c, err, sizeof err);
    CHECK_FATAL(prod != NULL);
    enum { NMSG = 20 };
    for (int i = 0; i < NMSG; i++) {
        char v[32];
        snprintf(v, sizeof v, "libsluice-%d", i);
        rc = sluice_produce(prod, TOPIC, 0, NULL, 0, v, strlen(v), NULL, 0, 0, (void *)(intptr_t)i);
        CHECK_MSG(rc == SLUICE_OK, "7: libsluice produce #%d: expected 0, got %d", i, rc);
    }
    rc = sluice_producer_flush(prod, 10000);
    sluice_producer_destroy(prod);
    int dense = 1;
    for (int i = 0; i < d.n && i < NMSG; i++) dense &= d.off[i] == end + i;
    CHECK_MSG(rc == SLUICE_OK && d.n == NMSG && d.bad == 0 && dense,
              "7: libsluice: expected %d delivered at offsets %" PRId64 "..%" PRId64
              "; got flush %d, %d delivered, %d failed, offsets %s",
              NMSG, end, end + NMSG - 1, rc, d.n, d.bad, dense ? "dense" : "not dense");
    int64_t end2 = log_end();
    CHECK_MSG(end2 == end + NMSG, "7: libsluice: log end expected %" PRId64 ", got %" PRId64,
              end + NMSG, end2);
    int64_t off = end, pids_seen = 0, batches = 0;
    for (int guard = 0; guard < 100 && off < end2; guard++) {
        rc = sc_fetch(&sc, TOPIC, 0, off, 1 << 16, 0, 0, &p, &n, &hw);
        if (rc != 0 || n < SL_BATCH_HEADER_SIZE) break;
        for (size_t q = 0; q + SL_BATCH_HEADER_SIZE <= n;) {
            uint64_t sz = sl_batch_total_size(p + q);
            if (sz < SL_BATCH_HEADER_SIZE || q + sz > n) break;
            sl_batch_hdr_t hd;
            sl_batch_hdr_parse(p + q, &hd);
            if (hd.base_offset >= end) {
                batches++;
                pids_seen += hd.producer_id != -1;
            }
            off = hd.base_offset + hd.last_offset_delta + 1;
            q += (size_t)sz;
        }
    }
    CHECK_MSG(batches > 0 && pids_seen == 0 && off == end2,
              "7: libsluice's batches: expected producer id -1 in all, read up to %" PRId64
              "; got %" PRId64 " of %" PRId64 " with a producer id, read up to %" PRId64,
              end2, pids_seen, batches, off);
}

/* ---- main ---------------------------------------------------------------------- */

static void kill_broker(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
}

static void watchdog(int sig)
{
    (void)sig;
    static const char m[] = "test_cross_protocol: watchdog: still running after 28 s\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    if (h.pid > 0) kill(h.pid, SIGKILL);
    _exit(3);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG);
    harness_init(&h, "xproto");
    atexit(kill_broker);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK_FATAL(h.kafka_port > 0);
    connect_both();
    CHECK_FATAL(kt_create_topic(kfd, kcorr++, TOPIC, 1, 1) == 0);

    test_retry_across();
    test_gap();
    test_epoch();
    test_transactional();
    test_multi_batch();
    test_restart();
    test_plain_clients();
    section_end();

    close_both();
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "sluiced: expected exit status 0 after SIGTERM; wait status 0x%x", st);
    harness_cleanup(&h);
    fprintf(stderr, "summary:\n");
    for (int i = 1; i < NSECTIONS; i++)
        fprintf(stderr, "  check %d %-66s %s (%d of %d assertions failed)\n", i, titles[i],
                sec_failed[i] ? "FAIL" : "pass", sec_failed[i], sec_checks[i]);
    return check_exit();
}
