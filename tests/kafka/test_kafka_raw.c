/* test_kafka_raw.c — every advertised version of every API of sluiced's
 * Kafka listener, byte by byte on raw sockets (librdkafka only ever sends
 * the highest version, so the others are exercised here).
 *
 * Covers: the response layout of each version (parsed exactly: no byte
 * missing, none left over) of Metadata 0-4, Produce 0-7, Fetch 0-11 (same
 * records from every version), ListOffsets 0-2, FindCoordinator 0-2 (and
 * transaction coordinators refused), JoinGroup 0-5 / SyncGroup 0-3 /
 * Heartbeat 0-3 / LeaveGroup 0-1 / DescribeGroups 0-4 / ListGroups 0-2 as a
 * one-member group (leader, metadata and assignment round trips, Stable and
 * Empty states, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, INVALID_GROUP_ID,
 * INVALID_SESSION_TIMEOUT), OffsetCommit 0-7 / OffsetFetch 0-5 (standalone
 * commits, metadata, -1 for nothing committed, null topic list), CreateTopics
 * 0-4 / DeleteTopics 0-3, InitProducerId 0-1; idempotent sequence handling
 * (a duplicate answered with its first offset and not appended, a gap gets
 * OUT_OF_ORDER_SEQUENCE_NUMBER; after a SIGKILL and restart, retries of
 * batches already in the log, a producer's first one included, are still
 * not appended twice); multi-partition Produce and Fetch requests
 * (per-partition results in request order, file ranges between headers);
 * the KIP-74 rule for a first batch larger than the fetch limit; a fetch
 * session id (FETCH_SESSION_ID_NOT_FOUND); retention moving the log start
 * offset (OFFSET_OUT_OF_RANGE below it, log_start_offset in Fetch and
 * ListOffsets); Produce refusals (acks 2, control and transactional
 * batches, two batches at once, MESSAGE_TOO_LARGE, the internal
 * __consumer_offsets); the same stored bytes through Kafka's Fetch and
 * Sluice's; node.id, kafka.advertised.listener, the cluster id kept across
 * restarts, and an empty kafka.listeners disabling the listener.
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h" /* SL_COMPRESSION_* */
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "kraw.h"
#include "sclient.h"

static harness_t h;
static int fd = -1; /* one connection for everything (it must stay usable) */
static int32_t next_corr = 1;

/* Starts a request on the shared connection. */
static int32_t req(kt_buf_t *b, int16_t key, int16_t ver)
{
    int32_t corr = next_corr++;
    kt_req(b, key, ver, corr, "kraw");
    return corr;
}

/* Sends b and reads the answer; returns the response (free it) with r
 * positioned after the correlation id, or NULL (checked) when none came. */
static uint8_t *rt(kt_buf_t *b, int32_t corr, kt_rd_t *r, const char *what)
{
    kt_finish(b);
    int rc = kt_send(fd, b->p, b->len);
    kt_free(b);
    uint8_t *resp = NULL;
    size_t len = 0;
    if (rc == 0) rc = kt_recv(fd, 15000, &resp, &len);
    CHECK_MSG(rc == 0, "%s: no response (status %d)", what, rc);
    if (rc != 0) {
        kt_rd_init(r, (const uint8_t *)"", 0);
        r->bad = 1;
        return NULL;
    }
    kt_rd_init(r, resp, len);
    int32_t c = kt_r32(r);
    CHECK_MSG(c == corr, "%s: correlation id %d, expected %d", what, c, corr);
    return resp;
}

/* The response must have been read exactly to its end. */
static void done(kt_rd_t *r, uint8_t *resp, const char *what)
{
    CHECK_MSG(resp && !r->bad && kt_left(r) == 0, "%s: response does not parse (%s, %zu left)",
              what, r->bad ? "short" : "ok", kt_left(r));
    free(resp);
}

static uint8_t *batch_n(int n, int vsize, size_t *len)
{
    bg_record_t r[64];
    char keys[64][16];
    char *vals = malloc((size_t)n * (size_t)vsize + 1);
    CHECK_FATAL(vals != NULL);
    for (int i = 0; i < n && i < 64; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        for (int j = 0; j < vsize; j++) vals[i * vsize + j] = (char)('a' + (i + j) % 26);
        r[i] = (bg_record_t){keys[i], (int32_t)strlen(keys[i]), vals + i * vsize,
                             vsize,   1700000000000LL + i,      0,
                             NULL};
    }
    uint8_t *b = bg_build(r, n, SL_COMPRESSION_NONE, len);
    free(vals);
    CHECK_FATAL(b != NULL);
    return b;
}

static int64_t end_of(const char *topic, int32_t part, int64_t ts)
{
    int64_t off = -99;
    int e = kt_list_offsets(fd, next_corr++, topic, part, ts, &off);
    CHECK_MSG(e == 0, "ListOffsets %s-%d %" PRId64 ": error %d", topic, part, ts, e);
    return off;
}

/* ---- Metadata, Produce, Fetch, ListOffsets -------------------------------- */

static void test_metadata_versions(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        kt_buf_t b = {0};
        int32_t corr = req(&b, 3, v);
        kt_i32(&b, 1);
        kt_str(&b, "r1");
        if (v >= 4) kt_i8(&b, 0);
        kt_rd_t r;
        char what[32];
        snprintf(what, sizeof what, "Metadata v%d", v);
        uint8_t *resp = rt(&b, corr, &r, what);
        if (v >= 3) CHECK_EQ_INT(kt_r32(&r), 0);
        CHECK_EQ_INT(kt_r32(&r), 1);
        CHECK_EQ_INT(kt_r32(&r), 1);
        char s[128];
        kt_rstr(&r, s, sizeof s);
        CHECK(strcmp(s, "127.0.0.1") == 0);
        CHECK_EQ_INT(kt_r32(&r), h.kafka_port);
        if (v >= 1) CHECK_EQ_INT(kt_rstr(&r, s, sizeof s), -1); /* rack */
        if (v >= 2) CHECK(kt_rstr(&r, s, sizeof s) == 22);      /* cluster id */
        if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 1);                /* controller */
        CHECK_EQ_INT(kt_r32(&r), 1);
        CHECK_EQ_INT(kt_r16(&r), 0);
        kt_rstr(&r, s, sizeof s);
        CHECK(strcmp(s, "r1") == 0);
        if (v >= 1) CHECK_EQ_INT(kt_r8(&r), 0); /* not internal */
        int32_t np = kt_r32(&r);
        CHECK_EQ_INT(np, 2);
        for (int32_t p = 0; p < np && !r.bad; p++) {
            CHECK_EQ_INT(kt_r16(&r), 0);
            CHECK_EQ_INT(kt_r32(&r), p);
            CHECK_EQ_INT(kt_r32(&r), 1);
            CHECK_EQ_INT(kt_r32(&r), 1);
            CHECK_EQ_INT(kt_r32(&r), 1);
            CHECK_EQ_INT(kt_r32(&r), 1);
            CHECK_EQ_INT(kt_r32(&r), 1);
        }
        done(&r, resp, what);
    }
}

static void test_produce_fetch_versions(void)
{
    size_t len = 0;
    uint8_t *b = batch_n(3, 20, &len);
    int64_t end = 0, base = -1;
    for (int16_t v = 0; v <= 7; v++) {
        int e = kt_produce(fd, v, next_corr++, 1, "r1", 0, b, (int32_t)len, &base);
        if (v >= 3) {
            CHECK_MSG(e == 0 && base == end, "Produce v%d: error %d base %" PRId64, v, e, base);
        } else {
            /* Kafka refuses magic 2 below v3 (87); accepting it is fine too. */
            CHECK_MSG(e == 0 || e == 87 || e == 43, "Produce v%d: error %d", v, e);
            CHECK_MSG(e != 0 || base == end, "Produce v%d: base %" PRId64, v, base);
        }
        if (e == 0) end += 3;
        CHECK_EQ_INT(end_of("r1", 0, -1), end);
    }
    free(b);

    /* Every Fetch version returns the same bytes from offset 0. */
    kt_fetch_res_t ref;
    kt_fetch(fd, 11, next_corr++, "r1", 0, 0, 100, 1, 1 << 20, &ref);
    CHECK_EQ_INT(ref.rc, KT_OK);
    CHECK(ref.records_len > 0 && ref.records_len % (int32_t)len == 0);
    for (int16_t v = 0; v <= 11; v++) {
        kt_fetch_res_t f;
        kt_fetch(fd, v, next_corr++, "r1", 0, 0, 100, 1, 1 << 20, &f);
        CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.hwm == end,
                  "Fetch v%d: rc %d error %d hwm %" PRId64, v, f.rc, f.error, f.hwm);
        if (v >= 4) CHECK_EQ_INT(f.lso, end);
        if (v >= 5) CHECK_EQ_INT(f.log_start, 0);
        CHECK_MSG(
            f.records_len == ref.records_len &&
                (f.records_len <= 0 || memcmp(f.records, ref.records, (size_t)f.records_len) == 0),
            "Fetch v%d: %d bytes of records, v11 gave %d", v, f.records_len, ref.records_len);
        free(f.records);
    }
    free(ref.records);

    /* ListOffsets v0 (offset arrays), v1, v2. */
    for (int16_t v = 0; v <= 2; v++) {
        for (int k = 0; k < 2; k++) {
            int64_t ts = k ? -2 : -1, want = k ? 0 : end;
            kt_buf_t q = {0};
            int32_t corr = req(&q, 2, v);
            kt_i32(&q, -1);
            if (v >= 2) kt_i8(&q, 0);
            kt_i32(&q, 1);
            kt_str(&q, "r1");
            kt_i32(&q, 1);
            kt_i32(&q, 0);
            kt_i64(&q, ts);
            if (v == 0) kt_i32(&q, 1);
            kt_rd_t r;
            char what[48];
            snprintf(what, sizeof what, "ListOffsets v%d ts %" PRId64, v, ts);
            uint8_t *resp = rt(&q, corr, &r, what);
            if (v >= 2) CHECK_EQ_INT(kt_r32(&r), 0);
            CHECK_EQ_INT(kt_r32(&r), 1);
            char s[32];
            kt_rstr(&r, s, sizeof s);
            CHECK_EQ_INT(kt_r32(&r), 1);
            CHECK_EQ_INT(kt_r32(&r), 0);
            CHECK_EQ_INT(kt_r16(&r), 0);
            if (v == 0) {
                int32_t n = kt_r32(&r);
                CHECK_MSG(n == 1, "%s: %d offsets", what, n);
                for (int32_t i = 0; i < n && !r.bad; i++) {
                    int64_t o = kt_r64(&r);
                    CHECK_MSG(o == want, "%s: offset %" PRId64 ", expected %" PRId64, what, o,
                              want);
                }
            } else {
                kt_r64(&r); /* timestamp */
                int64_t o = kt_r64(&r);
                CHECK_MSG(o == want, "%s: offset %" PRId64 ", expected %" PRId64, what, o, want);
            }
            done(&r, resp, what);
        }
    }
}

/* Produce to two partitions and Fetch three (one unknown) in one request. */
static void test_multi_partition(void)
{
    size_t l1 = 0, l2 = 0;
    uint8_t *b1 = batch_n(2, 10, &l1), *b2 = batch_n(5, 30, &l2);
    int64_t e0 = end_of("r1", 0, -1), e1 = end_of("r1", 1, -1);
    kt_buf_t b = {0};
    int32_t corr = req(&b, 0, 7);
    kt_str(&b, NULL);
    kt_i16(&b, -1);
    kt_i32(&b, 10000);
    kt_i32(&b, 1);
    kt_str(&b, "r1");
    kt_i32(&b, 2);
    kt_i32(&b, 1);
    kt_bytes(&b, b2, (int32_t)l2);
    kt_i32(&b, 0);
    kt_bytes(&b, b1, (int32_t)l1);
    kt_rd_t r;
    uint8_t *resp = rt(&b, corr, &r, "Produce to 2 partitions");
    CHECK_EQ_INT(kt_r32(&r), 1);
    char s[64];
    kt_rstr(&r, s, sizeof s);
    CHECK_EQ_INT(kt_r32(&r), 2);
    static const int32_t order[2] = {1, 0};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(kt_r32(&r), order[i]);
        CHECK_EQ_INT(kt_r16(&r), 0);
        CHECK_EQ_INT(kt_r64(&r), order[i] ? e1 : e0);
        CHECK_EQ_INT(kt_r64(&r), -1);
        CHECK_EQ_INT(kt_r64(&r), 0);
    }
    CHECK_EQ_INT(kt_r32(&r), 0);
    done(&r, resp, "Produce to 2 partitions");

    /* Fetch v11: r1-1 at e1, nosuch-0, r1-0 at e0. */
    corr = req(&b, 1, 11);
    kt_i32(&b, -1);
    kt_i32(&b, 100);
    kt_i32(&b, 1);
    kt_i32(&b, 1 << 20);
    kt_i8(&b, 0);
    kt_i32(&b, 0);
    kt_i32(&b, -1);
    kt_i32(&b, 2);
    kt_str(&b, "r1");
    kt_i32(&b, 2);
    for (int i = 0; i < 2; i++) {
        kt_i32(&b, order[i]);
        kt_i32(&b, -1);
        kt_i64(&b, order[i] ? e1 : e0);
        kt_i64(&b, -1);
        kt_i32(&b, 1 << 20);
    }
    kt_str(&b, "nosuch");
    kt_i32(&b, 1);
    kt_i32(&b, 0);
    kt_i32(&b, -1);
    kt_i64(&b, 0);
    kt_i64(&b, -1);
    kt_i32(&b, 1 << 20);
    kt_i32(&b, 0);
    kt_str(&b, "");
    resp = rt(&b, corr, &r, "Fetch of 3 partitions");
    CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r16(&r), 0);
    CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r32(&r), 2);
    kt_rstr(&r, s, sizeof s);
    CHECK(strcmp(s, "r1") == 0);
    CHECK_EQ_INT(kt_r32(&r), 2);
    for (int i = 0; i < 2; i++) {
        const uint8_t *want = order[i] ? b2 : b1;
        size_t wl = order[i] ? l2 : l1;
        int64_t base = order[i] ? e1 : e0;
        CHECK_EQ_INT(kt_r32(&r), order[i]);
        CHECK_EQ_INT(kt_r16(&r), 0);
        CHECK_EQ_INT(kt_r64(&r), base + (order[i] ? 5 : 2));
        CHECK_EQ_INT(kt_r64(&r), base + (order[i] ? 5 : 2));
        CHECK_EQ_INT(kt_r64(&r), 0);
        int32_t na = kt_r32(&r);
        CHECK(na == 0 || na == -1);
        CHECK_EQ_INT(kt_r32(&r), -1);
        const uint8_t *rec;
        int32_t rl = kt_rbytes(&r, &rec);
        CHECK_MSG(rl == (int32_t)wl && rec && memcmp(rec + 16, want + 16, wl - 16) == 0,
                  "partition %d: %d bytes of records, expected the %zu produced", order[i], rl, wl);
        if (rec && rl >= 8) {
            int64_t bo = 0;
            for (int k = 0; k < 8; k++) bo = bo << 8 | rec[k];
            CHECK_EQ_INT(bo, base);
        }
    }
    kt_rstr(&r, s, sizeof s);
    CHECK(strcmp(s, "nosuch") == 0);
    CHECK_EQ_INT(kt_r32(&r), 1);
    CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r16(&r), 3);
    kt_r64(&r);
    kt_r64(&r);
    kt_r64(&r);
    int32_t na = kt_r32(&r);
    CHECK(na == 0 || na == -1);
    kt_r32(&r);
    const uint8_t *rec;
    CHECK_EQ_INT(kt_rbytes(&r, &rec), 0);
    done(&r, resp, "Fetch of 3 partitions");
    free(b1);
    free(b2);

    /* A fetch session (KIP-227) is not kept: FETCH_SESSION_ID_NOT_FOUND. */
    corr = req(&b, 1, 7);
    kt_i32(&b, -1);
    kt_i32(&b, 100);
    kt_i32(&b, 1);
    kt_i32(&b, 1 << 20);
    kt_i8(&b, 0);
    kt_i32(&b, 12345);
    kt_i32(&b, 1);
    kt_i32(&b, 0);
    kt_i32(&b, 0);
    resp = rt(&b, corr, &r, "Fetch with a session id");
    CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r16(&r), 70);
    CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r32(&r), 0);
    done(&r, resp, "Fetch with a session id");
}

/* KIP-74: a first batch larger than the limits still comes whole; the
 * budget otherwise holds. */
static void test_fetch_limits(void)
{
    CHECK_EQ_INT(kt_create_topic(fd, next_corr++, "big", 1, 1), 0);
    size_t len = 0;
    uint8_t *b = batch_n(10, 5000, &len);
    int64_t base = -1;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 1, "big", 0, b, (int32_t)len, &base), 0);
        CHECK_EQ_INT(base, 10 * i);
    }
    kt_fetch_res_t f;
    kt_fetch(fd, 11, next_corr++, "big", 0, 0, 100, 1, 1000, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.records_len == (int32_t)len,
              "fetch limit 1000: %d bytes of records (batch %zu)", f.records_len, len);
    free(f.records);
    kt_fetch(fd, 4, next_corr++, "big", 0, 15, 100, 1, 1000, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.records_len == (int32_t)len && f.records &&
                  f.records[7] == 10,
              "fetch v4 at 15 with limit 1000: %d bytes", f.records_len);
    free(f.records);
    int32_t lim = (int32_t)(len + len / 2);
    kt_fetch(fd, 11, next_corr++, "big", 0, 0, 100, 1, lim, &f);
    CHECK_MSG(f.rc == KT_OK && f.records_len >= (int32_t)len && f.records_len <= lim,
              "fetch limit %d: %d bytes", lim, f.records_len);
    free(f.records);
    kt_fetch(fd, 11, next_corr++, "big", 0, 0, 100, 1, 1 << 20, &f);
    CHECK_EQ_INT(f.records_len, 3 * (int32_t)len);
    free(f.records);
    free(b);
}

/* ---- coordinator and groups ------------------------------------------------ */

static void test_find_coordinator(void)
{
    for (int16_t v = 0; v <= 2; v++) {
        for (int8_t kt = 0; kt <= (v >= 1 ? 1 : 0); kt++) {
            kt_buf_t b = {0};
            int32_t corr = req(&b, 10, v);
            kt_str(&b, "cg");
            if (v >= 1) kt_i8(&b, kt);
            kt_rd_t r;
            char what[48];
            snprintf(what, sizeof what, "FindCoordinator v%d type %d", v, kt);
            uint8_t *resp = rt(&b, corr, &r, what);
            if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
            int16_t e = kt_r16(&r);
            char s[128];
            if (v >= 1) kt_rstr(&r, s, sizeof s);
            int32_t node = kt_r32(&r);
            kt_rstr(&r, s, sizeof s);
            int32_t port = kt_r32(&r);
            if (kt == 0)
                CHECK_MSG(e == 0 && node == 1 && strcmp(s, "127.0.0.1") == 0 &&
                              port == h.kafka_port,
                          "%s: error %d node %d %s:%d", what, e, node, s, port);
            else
                CHECK_MSG(e == 15, "%s: error %d, expected COORDINATOR_NOT_AVAILABLE", what, e);
            done(&r, resp, what);
        }
    }
}

static const uint8_t SUB[] = {0, 1, 0, 0, 0, 1, 0, 2, 'r', '1', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
static const uint8_t ASSIGN[] = {0, 0, 0, 0, 0, 1, 0, 2, 'r', '1',  0,    0,    0,
                                 2, 0, 0, 0, 0, 0, 0, 0, 1,   0xff, 0xff, 0xff, 0xff};

typedef struct join_res {
    int16_t err;
    int32_t gen;
    char proto[32], leader[256], member[256];
    int nmembers, meta_ok;
} join_res_t;

static void join(int16_t v, const char *group, const char *member, int32_t session, join_res_t *j)
{
    memset(j, 0, sizeof *j);
    kt_buf_t b = {0};
    int32_t corr = req(&b, 11, v);
    kt_str(&b, group);
    kt_i32(&b, session);
    if (v >= 1) kt_i32(&b, 5000);
    kt_str(&b, member);
    if (v >= 5) kt_str(&b, NULL);
    kt_str(&b, "consumer");
    kt_i32(&b, 1);
    kt_str(&b, "range");
    kt_bytes(&b, SUB, (int32_t)sizeof SUB);
    kt_rd_t r;
    char what[48];
    snprintf(what, sizeof what, "JoinGroup v%d %s", v, group);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 2) CHECK_EQ_INT(kt_r32(&r), 0);
    j->err = kt_r16(&r);
    j->gen = kt_r32(&r);
    kt_rstr(&r, j->proto, sizeof j->proto);
    kt_rstr(&r, j->leader, sizeof j->leader);
    kt_rstr(&r, j->member, sizeof j->member);
    j->nmembers = kt_r32(&r);
    for (int i = 0; i < j->nmembers && !r.bad; i++) {
        char m[256], inst[64];
        kt_rstr(&r, m, sizeof m);
        if (v >= 5) kt_rstr(&r, inst, sizeof inst);
        const uint8_t *md;
        int32_t ml = kt_rbytes(&r, &md);
        j->meta_ok = strcmp(m, j->member) == 0 && ml == (int32_t)sizeof SUB &&
                     memcmp(md, SUB, sizeof SUB) == 0;
    }
    done(&r, resp, what);
}

static int16_t sync_group(int16_t v, const char *group, int32_t gen, const char *member,
                          int *assign_ok)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 14, v);
    kt_str(&b, group);
    kt_i32(&b, gen);
    kt_str(&b, member);
    if (v >= 3) kt_str(&b, NULL);
    kt_i32(&b, 1);
    kt_str(&b, member);
    kt_bytes(&b, ASSIGN, (int32_t)sizeof ASSIGN);
    kt_rd_t r;
    char what[48];
    snprintf(what, sizeof what, "SyncGroup v%d %s", v, group);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
    int16_t e = kt_r16(&r);
    const uint8_t *a;
    int32_t al = kt_rbytes(&r, &a);
    *assign_ok = al == (int32_t)sizeof ASSIGN && memcmp(a, ASSIGN, sizeof ASSIGN) == 0;
    done(&r, resp, what);
    return e;
}

static int16_t heartbeat(int16_t v, const char *group, int32_t gen, const char *member)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 12, v);
    kt_str(&b, group);
    kt_i32(&b, gen);
    kt_str(&b, member);
    if (v >= 3) kt_str(&b, NULL);
    kt_rd_t r;
    char what[48];
    snprintf(what, sizeof what, "Heartbeat v%d %s", v, group);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
    int16_t e = kt_r16(&r);
    done(&r, resp, what);
    return e;
}

static int16_t leave(int16_t v, const char *group, const char *member)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 13, v);
    kt_str(&b, group);
    kt_str(&b, member);
    kt_rd_t r;
    char what[48];
    snprintf(what, sizeof what, "LeaveGroup v%d %s", v, group);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
    int16_t e = kt_r16(&r);
    done(&r, resp, what);
    return e;
}

/* DescribeGroups: state, protocol type and data, members (and whether the
 * given member is among them with client id "kraw"). */
static void describe(int16_t v, const char *group, char *state, char *ptype, char *proto,
                     int *nmembers, const char *member, int *found)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 15, v);
    kt_i32(&b, 1);
    kt_str(&b, group);
    if (v >= 3) kt_i8(&b, 0);
    kt_rd_t r;
    char what[48];
    snprintf(what, sizeof what, "DescribeGroups v%d %s", v, group);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r32(&r), 1);
    CHECK_EQ_INT(kt_r16(&r), 0);
    char g[128];
    kt_rstr(&r, g, sizeof g);
    CHECK(strcmp(g, group) == 0);
    kt_rstr(&r, state, 32);
    kt_rstr(&r, ptype, 32);
    kt_rstr(&r, proto, 32);
    *nmembers = kt_r32(&r);
    *found = 0;
    for (int i = 0; i < *nmembers && !r.bad; i++) {
        char m[256], inst[64], cid[64], host[128];
        kt_rstr(&r, m, sizeof m);
        if (v >= 4) kt_rstr(&r, inst, sizeof inst);
        kt_rstr(&r, cid, sizeof cid);
        kt_rstr(&r, host, sizeof host);
        const uint8_t *x;
        kt_rbytes(&r, &x);
        kt_rbytes(&r, &x);
        if (strcmp(m, member) == 0 && strcmp(cid, "kraw") == 0) *found = 1;
    }
    if (v >= 3) kt_r32(&r);
    done(&r, resp, what);
}

/* ListGroups: 1 when group is listed with protocol type "consumer". */
static int listed(int16_t v, const char *group)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 16, v);
    kt_rd_t r;
    char what[32];
    snprintf(what, sizeof what, "ListGroups v%d", v);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r16(&r), 0);
    int32_t n = kt_r32(&r);
    int found = 0;
    for (int32_t i = 0; i < n && !r.bad; i++) {
        char g[128], t[64];
        kt_rstr(&r, g, sizeof g);
        kt_rstr(&r, t, sizeof t);
        if (strcmp(g, group) == 0) found = strcmp(t, "consumer") == 0;
    }
    done(&r, resp, what);
    return found;
}

static void test_group_versions(void)
{
    for (int16_t v = 0; v <= 5; v++) {
        int16_t sv = v < 3 ? v : 3, hv = v < 3 ? v : 3, lv = v < 1 ? v : 1, dv = v < 4 ? v : 4,
                lgv = v < 2 ? v : 2;
        char group[32];
        snprintf(group, sizeof group, "cg%d", v);
        join_res_t j;
        join(v, group, "", 6000, &j);
        CHECK_MSG(j.err == 0 && j.gen >= 1 && j.member[0] && strcmp(j.leader, j.member) == 0 &&
                      strcmp(j.proto, "range") == 0 && j.nmembers == 1 && j.meta_ok,
                  "JoinGroup v%d: error %d gen %d member '%s' leader '%s' protocol '%s' members "
                  "%d metadata %s",
                  v, j.err, j.gen, j.member, j.leader, j.proto, j.nmembers,
                  j.meta_ok ? "ok" : "differs");
        int aok = 0;
        CHECK_EQ_INT(sync_group(sv, group, j.gen, j.member, &aok), 0);
        CHECK_MSG(aok, "SyncGroup v%d: assignment differs from the leader's", sv);
        CHECK_EQ_INT(heartbeat(hv, group, j.gen, j.member), 0);
        CHECK_EQ_INT(heartbeat(hv, group, j.gen + 1, j.member), 22);
        CHECK_EQ_INT(heartbeat(hv, group, j.gen, "nobody"), 25);
        char state[32], ptype[32], proto[32];
        int n = 0, found = 0;
        describe(dv, group, state, ptype, proto, &n, j.member, &found);
        CHECK_MSG(strcmp(state, "Stable") == 0 && strcmp(ptype, "consumer") == 0 &&
                      strcmp(proto, "range") == 0 && n == 1 && found,
                  "DescribeGroups v%d: %s/%s/%s, %d members, member %s", dv, state, ptype, proto, n,
                  found ? "found" : "missing");
        CHECK_MSG(listed(lgv, group), "ListGroups v%d does not list %s", lgv, group);
        /* Rejoining with the member id keeps it and moves the generation. */
        join_res_t j2;
        join(v, group, j.member, 6000, &j2);
        CHECK_MSG(j2.err == 0 && strcmp(j2.member, j.member) == 0 && j2.gen == j.gen + 1,
                  "rejoin v%d: error %d member %s gen %d", v, j2.err, j2.member, j2.gen);
        CHECK_EQ_INT(sync_group(sv, group, j2.gen, j2.member, &aok), 0);
        CHECK_EQ_INT(leave(lv, group, j.member), 0);
        CHECK_EQ_INT(heartbeat(hv, group, j2.gen, j.member), 25);
        describe(dv, group, state, ptype, proto, &n, j.member, &found);
        CHECK_MSG(strcmp(state, "Empty") == 0 && n == 0, "after LeaveGroup v%d: %s, %d members", lv,
                  state, n);
    }
    join_res_t j;
    join(5, "", "", 6000, &j);
    CHECK_EQ_INT(j.err, 24);
    join(5, "cgbad", "", 10, &j);
    CHECK_EQ_INT(j.err, 26);
    join(5, "cgbad", "unknown-member", 6000, &j);
    CHECK_EQ_INT(j.err, 25);
    char state[32], ptype[32], proto[32];
    int n = -1, found = 0;
    describe(4, "never-seen", state, ptype, proto, &n, "", &found);
    CHECK_MSG(strcmp(state, "Dead") == 0 && n == 0, "unknown group: %s, %d members", state, n);
}

/* ---- offsets ------------------------------------------------------------ */

static int16_t offset_commit(int16_t v, const char *group, int32_t part, int64_t off,
                             const char *md)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 8, v);
    kt_str(&b, group);
    if (v >= 1) {
        kt_i32(&b, -1);
        kt_str(&b, "");
    }
    if (v >= 7) kt_str(&b, NULL);
    if (v >= 2 && v <= 4) kt_i64(&b, -1);
    kt_i32(&b, 1);
    kt_str(&b, "r1");
    kt_i32(&b, 1);
    kt_i32(&b, part);
    kt_i64(&b, off);
    if (v == 1) kt_i64(&b, -1);
    if (v >= 6) kt_i32(&b, -1);
    kt_str(&b, md);
    kt_rd_t r;
    char what[32];
    snprintf(what, sizeof what, "OffsetCommit v%d", v);
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 3) CHECK_EQ_INT(kt_r32(&r), 0);
    CHECK_EQ_INT(kt_r32(&r), 1);
    char s[32];
    kt_rstr(&r, s, sizeof s);
    CHECK(strcmp(s, "r1") == 0);
    CHECK_EQ_INT(kt_r32(&r), 1);
    CHECK_EQ_INT(kt_r32(&r), part);
    int16_t e = kt_r16(&r);
    done(&r, resp, what);
    return e;
}

/* OffsetFetch of r1 partitions 0 and 1 (all = null topic list, v2+). */
static void offset_fetch(int16_t v, const char *group, int all, int64_t off[2], char md[2][32])
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 9, v);
    kt_str(&b, group);
    if (all) {
        kt_i32(&b, -1);
    } else {
        kt_i32(&b, 1);
        kt_str(&b, "r1");
        kt_i32(&b, 2);
        kt_i32(&b, 0);
        kt_i32(&b, 1);
    }
    kt_rd_t r;
    char what[40];
    snprintf(what, sizeof what, "OffsetFetch v%d%s", v, all ? " (all)" : "");
    uint8_t *resp = rt(&b, corr, &r, what);
    if (v >= 3) CHECK_EQ_INT(kt_r32(&r), 0);
    off[0] = off[1] = -99;
    int32_t nt = kt_r32(&r);
    for (int32_t t = 0; t < nt && !r.bad; t++) {
        char s[64];
        kt_rstr(&r, s, sizeof s);
        int32_t np = kt_r32(&r);
        for (int32_t i = 0; i < np && !r.bad; i++) {
            int32_t p = kt_r32(&r);
            int64_t o = kt_r64(&r);
            if (v >= 5) kt_r32(&r);
            char m[32];
            kt_rstr(&r, m, sizeof m);
            CHECK_EQ_INT(kt_r16(&r), 0);
            if (strcmp(s, "r1") == 0 && p >= 0 && p < 2) {
                off[p] = o;
                snprintf(md[p], 32, "%s", m);
            }
        }
    }
    if (v >= 2) CHECK_EQ_INT(kt_r16(&r), 0);
    done(&r, resp, what);
}

static void test_offset_versions(void)
{
    int64_t off[2];
    char md[2][32];
    offset_fetch(5, "oc", 0, off, md);
    CHECK_MSG(off[0] == -1 && off[1] == -1, "nothing committed: %" PRId64 " %" PRId64, off[0],
              off[1]);
    for (int16_t v = 0; v <= 7; v++) {
        char m[32];
        snprintf(m, sizeof m, "meta-v%d", v);
        CHECK_MSG(offset_commit(v, "oc", 0, 100 + v, m) == 0, "OffsetCommit v%d refused", v);
        for (int16_t fv = 0; fv <= 5; fv++) {
            offset_fetch(fv, "oc", 0, off, md);
            CHECK_MSG(off[0] == 100 + v && strcmp(md[0], m) == 0 && off[1] == -1,
                      "OffsetFetch v%d after OffsetCommit v%d: %" PRId64 " '%s' / %" PRId64, fv, v,
                      off[0], md[0], off[1]);
        }
    }
    CHECK_EQ_INT(offset_commit(7, "oc", 1, 5, NULL), 0);
    offset_fetch(3, "oc", 1, off, md);
    CHECK_MSG(off[0] == 107 && off[1] == 5, "OffsetFetch all: %" PRId64 " %" PRId64, off[0],
              off[1]);
    CHECK_EQ_INT(offset_commit(7, "oc", 9, 5, NULL), 3);
}

/* ---- topics and producer ids --------------------------------------------- */

static void test_topic_versions(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        char name[16];
        snprintf(name, sizeof name, "cv%d", v);
        kt_buf_t b = {0};
        int32_t corr = req(&b, 19, v);
        kt_i32(&b, 1);
        kt_str(&b, name);
        kt_i32(&b, 2);
        kt_i16(&b, 1);
        kt_i32(&b, 0);
        kt_i32(&b, 1);
        kt_str(&b, "retention.ms");
        kt_str(&b, "86400000");
        kt_i32(&b, 5000);
        if (v >= 1) kt_i8(&b, 0);
        kt_rd_t r;
        char what[32];
        snprintf(what, sizeof what, "CreateTopics v%d", v);
        uint8_t *resp = rt(&b, corr, &r, what);
        if (v >= 2) CHECK_EQ_INT(kt_r32(&r), 0);
        CHECK_EQ_INT(kt_r32(&r), 1);
        char s[64];
        kt_rstr(&r, s, sizeof s);
        CHECK(strcmp(s, name) == 0);
        int16_t e = kt_r16(&r);
        if (v >= 1) kt_rstr(&r, s, sizeof s);
        CHECK_MSG(e == 0, "%s: error %d %s", what, e, v >= 1 ? s : "");
        done(&r, resp, what);
        CHECK_EQ_INT(end_of(name, 1, -1), 0);
    }
    for (int16_t v = 0; v <= 3; v++) {
        for (int again = 0; again < 2; again++) {
            char name[16];
            snprintf(name, sizeof name, "cv%d", v);
            kt_buf_t b = {0};
            int32_t corr = req(&b, 20, v);
            kt_i32(&b, 1);
            kt_str(&b, name);
            kt_i32(&b, 5000);
            kt_rd_t r;
            char what[32];
            snprintf(what, sizeof what, "DeleteTopics v%d", v);
            uint8_t *resp = rt(&b, corr, &r, what);
            if (v >= 1) CHECK_EQ_INT(kt_r32(&r), 0);
            CHECK_EQ_INT(kt_r32(&r), 1);
            char s[64];
            kt_rstr(&r, s, sizeof s);
            CHECK(strcmp(s, name) == 0);
            int16_t e = kt_r16(&r);
            CHECK_MSG(e == (again ? 3 : 0), "%s (%s): error %d", what, again ? "again" : "first",
                      e);
            done(&r, resp, what);
        }
        int64_t o = -99;
        char name[16];
        snprintf(name, sizeof name, "cv%d", v);
        CHECK_EQ_INT(kt_list_offsets(fd, next_corr++, name, 0, -1, &o), 3);
    }
}

static int64_t init_pid(int16_t v, const char *txn, int16_t *err, int16_t *epoch)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 22, v);
    kt_str(&b, txn);
    kt_i32(&b, 60000);
    kt_rd_t r;
    uint8_t *resp = rt(&b, corr, &r, "InitProducerId");
    CHECK_EQ_INT(kt_r32(&r), 0);
    *err = kt_r16(&r);
    int64_t pid = kt_r64(&r);
    *epoch = kt_r16(&r);
    done(&r, resp, "InitProducerId");
    return pid;
}

static void set_producer(uint8_t *batch, size_t len, int64_t pid, int16_t epoch, int32_t seq)
{
    for (int i = 0; i < 8; i++) batch[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
    batch[51] = (uint8_t)((uint16_t)epoch >> 8);
    batch[52] = (uint8_t)epoch;
    for (int i = 0; i < 4; i++) batch[53 + i] = (uint8_t)((uint32_t)seq >> (24 - 8 * i));
    bg_fix_crc(batch, len);
}

static void test_idempotence(void)
{
    int16_t e0 = -1, e1 = -1, ep0 = -1, ep1 = -1;
    int64_t p0 = init_pid(0, NULL, &e0, &ep0), p1 = init_pid(1, NULL, &e1, &ep1);
    CHECK_MSG(e0 == 0 && e1 == 0 && p0 >= 0 && p1 >= 0 && p0 != p1 && ep0 == 0 && ep1 == 0,
              "InitProducerId: %d/%d pids %" PRId64 " %" PRId64 " epochs %d %d", e0, e1, p0, p1,
              ep0, ep1);
    int16_t et = 0, ept = 0;
    init_pid(1, "txn", &et, &ept);
    CHECK_MSG(et != 0, "a transactional id was accepted");

    CHECK_EQ_INT(kt_create_topic(fd, next_corr++, "seq", 1, 1), 0);
    size_t len = 0;
    uint8_t *b = batch_n(3, 10, &len);
    int64_t base = -1;
    struct {
        int32_t seq;
        int err;
        int64_t base, end;
    } steps[] = {
        {0, 0, 0, 3},    /* first */
        {0, 0, 0, 3},    /* retried: same offset, not appended */
        {3, 0, 3, 6},    /* next */
        {10, 45, -1, 6}, /* a gap */
        {6, 0, 6, 9},    /* the right next one still works */
        {3, 0, 3, 9},    /* an older batch among the last five: its first offset */
        {9, 0, 9, 12},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        set_producer(b, len, p1, 0, steps[i].seq);
        int e = kt_produce(fd, 7, next_corr++, -1, "seq", 0, b, (int32_t)len, &base);
        CHECK_MSG(e == steps[i].err && (e != 0 || base == steps[i].base),
                  "idempotent step %zu (seq %d): error %d base %" PRId64
                  ", expected error %d base %" PRId64,
                  i, steps[i].seq, e, base, steps[i].err, steps[i].base);
        int64_t end = end_of("seq", 0, -1);
        CHECK_MSG(end == steps[i].end,
                  "idempotent step %zu: log end %" PRId64 ", expected %" PRId64, i, end,
                  steps[i].end);
    }
    /* Another producer id has its own sequence. */
    set_producer(b, len, p0, 0, 0);
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, -1, "seq", 0, b, (int32_t)len, &base), 0);
    CHECK_EQ_INT(base, 12);

    /* After a crash the broker has no state for these producers: retries
     * of batches in the log (acks=-1, so durable) are still recognised,
     * the first batch of a producer (sequence 0) included. */
    close(fd);
    int st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st));
    static const char *const again[] = {"--log.retention.check.interval.ms=100", NULL};
    CHECK_FATAL(harness_start(&h, again) == 0);
    fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    CHECK_EQ_INT(end_of("seq", 0, -1), 15);
    struct {
        int64_t pid;
        int32_t seq;
        int64_t base; /* a retry: the first offset; -1: new, appended at the end */
    } after[] = {
        {0, 9, 9},   /* p1's last batch, retried */
        {0, 0, 0},   /* p1's first batch, retried */
        {0, 12, -1}, /* p1 goes on */
        {1, 0, 12},  /* p0's only batch (sequence 0), retried */
        {1, 3, -1},  /* p0 goes on */
    };
    int64_t end = 15;
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        set_producer(b, len, after[i].pid ? p0 : p1, 0, after[i].seq);
        int e = kt_produce(fd, 7, next_corr++, -1, "seq", 0, b, (int32_t)len, &base);
        int64_t want_base = after[i].base >= 0 ? after[i].base : end;
        int64_t want_end = after[i].base >= 0 ? end : end + 3;
        end = end_of("seq", 0, -1);
        CHECK_MSG(e == 0 && base == want_base && end == want_end,
                  "after a restart, %s seq %d: error %d base %" PRId64 " log end %" PRId64
                  "; expected base %" PRId64 " end %" PRId64,
                  after[i].pid ? "p0" : "p1", after[i].seq, e, base, end, want_base, want_end);
    }
    free(b);
}

/* ---- retention and the log start offset ---------------------------------- */

static void test_log_start(void)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 19, 4);
    kt_i32(&b, 1);
    kt_str(&b, "ret");
    kt_i32(&b, 1);
    kt_i16(&b, 1);
    kt_i32(&b, 0);
    kt_i32(&b, 2);
    kt_str(&b, "segment.bytes");
    kt_str(&b, "4096");
    kt_str(&b, "retention.bytes");
    kt_str(&b, "4096");
    kt_i32(&b, 5000);
    kt_i8(&b, 0);
    kt_rd_t r;
    uint8_t *resp = rt(&b, corr, &r, "CreateTopics with configs");
    kt_r32(&r);
    kt_r32(&r);
    char s[256];
    kt_rstr(&r, s, sizeof s);
    int16_t e = kt_r16(&r);
    kt_rstr(&r, s, sizeof s);
    CHECK_MSG(e == 0, "CreateTopics ret: %d %s", e, s);
    done(&r, resp, "CreateTopics with configs");

    size_t len = 0;
    uint8_t *batch = batch_n(5, 100, &len);
    int64_t base = -1;
    for (int i = 0; i < 40; i++)
        CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 1, "ret", 0, batch, (int32_t)len, &base), 0);
    free(batch);
    int64_t start = 0;
    long long deadline = sl_mono_ms() + 15000;
    while ((start = end_of("ret", 0, -2)) <= 0 && sl_mono_ms() < deadline) poll(NULL, 0, 50);
    CHECK_MSG(start > 0 && start < 200 && start % 5 == 0, "log start after retention: %" PRId64,
              start);
    kt_fetch_res_t f;
    kt_fetch(fd, 11, next_corr++, "ret", 0, 0, 100, 1, 1 << 20, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 1 && f.hwm == 200 && f.log_start == start,
              "fetch below the log start: error %d hwm %" PRId64 " log start %" PRId64, f.error,
              f.hwm, f.log_start);
    free(f.records);
    kt_fetch(fd, 5, next_corr++, "ret", 0, start, 100, 1, 1 << 20, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.log_start == start && f.records_len > 8,
              "fetch at the log start: error %d log start %" PRId64 " records %d", f.error,
              f.log_start, f.records_len);
    if (f.records && f.records_len > 8) {
        int64_t bo = 0;
        for (int k = 0; k < 8; k++) bo = bo << 8 | f.records[k];
        CHECK_EQ_INT(bo, start);
    }
    free(f.records);
    CHECK_EQ_INT(end_of("ret", 0, -1), 200);
}

/* ---- produce validation -------------------------------------------------- */

static void test_produce_rejects(void)
{
    CHECK_EQ_INT(kt_create_topic(fd, next_corr++, "rej", 1, 1), 0);
    size_t len = 0;
    int64_t base = -1;
    uint8_t *b = batch_n(3, 10, &len);
    /* acks 2 */
    int e = kt_produce(fd, 7, next_corr++, 2, "rej", 0, b, (int32_t)len, &base);
    CHECK_MSG(e == 21, "acks=2: error %d, expected INVALID_REQUIRED_ACKS", e);
    /* A control batch (attribute bit 5) and a transactional one (bit 4). */
    b[22] |= 0x20;
    bg_fix_crc(b, len);
    e = kt_produce(fd, 7, next_corr++, 1, "rej", 0, b, (int32_t)len, &base);
    CHECK_MSG(e != 0, "a control batch from a client was accepted");
    b[22] = (uint8_t)((b[22] & ~0x20) | 0x10);
    for (int i = 0; i < 8; i++) b[43 + i] = i == 7 ? 5 : 0; /* producer id 5 */
    b[51] = b[52] = 0;
    b[53] = b[54] = b[55] = b[56] = 0;
    bg_fix_crc(b, len);
    e = kt_produce(fd, 7, next_corr++, 1, "rej", 0, b, (int32_t)len, &base);
    CHECK_MSG(e != 0, "a transactional batch was accepted");
    /* Two batches in one partition's records. */
    free(b);
    b = batch_n(3, 10, &len);
    uint8_t *two = malloc(2 * len);
    CHECK_FATAL(two != NULL);
    memcpy(two, b, len);
    memcpy(two + len, b, len);
    e = kt_produce(fd, 7, next_corr++, 1, "rej", 0, two, (int32_t)(2 * len), &base);
    CHECK_MSG(e == 87 || e == 2, "two batches in one produce: error %d", e);
    free(two);
    free(b);
    /* Larger than max.message.bytes (1048588). */
    b = batch_n(20, 60000, &len);
    e = kt_produce(fd, 7, next_corr++, 1, "rej", 0, b, (int32_t)len, &base);
    CHECK_MSG(e == 10, "a %zu-byte batch: error %d, expected MESSAGE_TOO_LARGE", len, e);
    free(b);
    CHECK_EQ_INT(end_of("rej", 0, -1), 0);

    /* __consumer_offsets is internal: listed as such, not writable. */
    kt_buf_t q = {0};
    int32_t corr = req(&q, 3, 1);
    kt_i32(&q, -1);
    kt_rd_t r;
    uint8_t *resp = rt(&q, corr, &r, "Metadata v1 all");
    int32_t nb = kt_r32(&r);
    for (int32_t i = 0; i < nb && !r.bad; i++) {
        char x[128];
        kt_r32(&r);
        kt_rstr(&r, x, sizeof x);
        kt_r32(&r);
        kt_rstr(&r, x, sizeof x);
    }
    kt_r32(&r);
    int32_t nt = kt_r32(&r);
    int internal = -1, others_internal = 0;
    for (int32_t t = 0; t < nt && !r.bad; t++) {
        char name[256];
        kt_r16(&r);
        kt_rstr(&r, name, sizeof name);
        int8_t in = kt_r8(&r);
        if (strcmp(name, "__consumer_offsets") == 0)
            internal = in;
        else
            others_internal += in != 0;
        int32_t np = kt_r32(&r);
        for (int32_t p = 0; p < np && !r.bad; p++) {
            kt_r16(&r);
            kt_r32(&r);
            kt_r32(&r);
            int32_t n = kt_r32(&r);
            for (int32_t k = 0; k < n && !r.bad; k++) kt_r32(&r);
            n = kt_r32(&r);
            for (int32_t k = 0; k < n && !r.bad; k++) kt_r32(&r);
        }
    }
    done(&r, resp, "Metadata v1 all");
    CHECK_MSG(internal == 1, "__consumer_offsets internal flag %d (-1: not listed)", internal);
    CHECK_EQ_INT(others_internal, 0);
    b = batch_n(1, 10, &len);
    e = kt_produce(fd, 7, next_corr++, 1, "__consumer_offsets", 0, b, (int32_t)len, &base);
    CHECK_MSG(e == 17, "produce to __consumer_offsets: error %d", e);
    free(b);
}

/* ---- the same bytes through both protocols -------------------------------- */

static void test_cross_bytes(void)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    int64_t end = end_of("r1", 0, -1);
    /* A batch produced through Sluice's protocol... */
    size_t len = 0;
    uint8_t *b = batch_n(4, 33, &len);
    int64_t base = -1;
    CHECK_EQ_INT(sc_produce(&c, "r1", 0, -1, b, len, &base), 0);
    CHECK_EQ_INT(base, end);
    /* ...and everything in r1-0 reads the same through both. */
    kt_fetch_res_t f;
    kt_fetch(fd, 11, next_corr++, "r1", 0, 0, 100, 1, 1 << 20, &f);
    const uint8_t *p = NULL;
    size_t n = 0;
    int64_t hw = -1;
    CHECK_EQ_INT(sc_fetch(&c, "r1", 0, 0, 1 << 20, 0, 0, &p, &n, &hw), 0);
    CHECK_EQ_INT(hw, end + 4);
    CHECK_EQ_INT(f.hwm, end + 4);
    CHECK_MSG(f.records_len == (int32_t)n && p && f.records && memcmp(p, f.records, n) == 0,
              "r1-0 through Kafka: %d bytes, through Sluice: %zu bytes, %s", f.records_len, n,
              f.records && p && f.records_len == (int32_t)n ? "different" : "sizes differ");
    if (f.records && f.records_len >= (int32_t)len)
        CHECK(memcmp(f.records + f.records_len - len + 16, b + 16, len - 16) == 0);
    free(f.records);
    free(b);
    sc_close(&c);
}

/* ---- listener settings ---------------------------------------------------- */

static void cluster_and_node(char *cluster, size_t cap, int32_t *node, char *host, int32_t *port)
{
    kt_buf_t b = {0};
    int32_t corr = req(&b, 3, 2);
    kt_i32(&b, 0);
    kt_rd_t r;
    uint8_t *resp = rt(&b, corr, &r, "Metadata v2");
    CHECK_EQ_INT(kt_r32(&r), 1);
    *node = kt_r32(&r);
    kt_rstr(&r, host, 128);
    *port = kt_r32(&r);
    char rack[64];
    kt_rstr(&r, rack, sizeof rack);
    kt_rstr(&r, cluster, cap);
    int32_t ctl = kt_r32(&r);
    CHECK_EQ_INT(ctl, *node);
    CHECK_EQ_INT(kt_r32(&r), 0);
    done(&r, resp, "Metadata v2");
}

static void test_listener_settings(void)
{
    char c1[64] = "", c2[64] = "", host[128];
    int32_t node = -1, port = -1;
    cluster_and_node(c1, sizeof c1, &node, host, &port);
    CHECK(node == 1 && port == h.kafka_port && strlen(c1) == 22);
    close(fd);

    /* node.id and kafka.advertised.listener; the cluster id persists. */
    CHECK_EQ_INT(WEXITSTATUS(harness_stop(&h, SIGTERM)), 0);
    static const char *const adv[] = {"--node.id=7", "--kafka.advertised.listener=kafka.test:19999",
                                      NULL};
    CHECK_FATAL(harness_start(&h, adv) == 0);
    fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    cluster_and_node(c2, sizeof c2, &node, host, &port);
    CHECK_MSG(node == 7 && strcmp(host, "kafka.test") == 0 && port == 19999,
              "advertised: node %d at %s:%d", node, host, port);
    CHECK_MSG(strcmp(c1, c2) == 0, "cluster id changed across a restart: %s -> %s", c1, c2);
    kt_buf_t b = {0};
    int32_t corr = req(&b, 10, 2);
    kt_str(&b, "cg");
    kt_i8(&b, 0);
    kt_rd_t r;
    uint8_t *resp = rt(&b, corr, &r, "FindCoordinator advertised");
    kt_r32(&r);
    CHECK_EQ_INT(kt_r16(&r), 0);
    kt_rstr(&r, host, sizeof host);
    CHECK_EQ_INT(kt_r32(&r), 7);
    kt_rstr(&r, host, sizeof host);
    CHECK(strcmp(host, "kafka.test") == 0);
    CHECK_EQ_INT(kt_r32(&r), 19999);
    done(&r, resp, "FindCoordinator advertised");
    /* Partitions are led by node 7 now. */
    corr = req(&b, 3, 1);
    kt_i32(&b, 1);
    kt_str(&b, "r1");
    resp = rt(&b, corr, &r, "Metadata r1 node 7");
    kt_r32(&r);
    kt_r32(&r);
    kt_rstr(&r, host, sizeof host);
    kt_r32(&r);
    kt_rstr(&r, host, sizeof host);
    kt_r32(&r);
    kt_r32(&r);
    kt_r16(&r);
    kt_rstr(&r, host, sizeof host);
    kt_r8(&r);
    CHECK_EQ_INT(kt_r32(&r), 2);
    kt_r16(&r);
    kt_r32(&r);
    CHECK_EQ_INT(kt_r32(&r), 7);
    free(resp);
    close(fd);
    fd = -1;

    /* An empty kafka.listeners disables the listener. */
    int old = h.kafka_port;
    CHECK_EQ_INT(WEXITSTATUS(harness_stop(&h, SIGTERM)), 0);
    static const char *const off[] = {"--kafka.listeners=", NULL};
    CHECK_FATAL(harness_start(&h, off) == 0);
    CHECK_EQ_INT(h.kafka_port, -1);
    int x = kt_connect(old);
    CHECK_MSG(x < 0, "the Kafka port still accepts with kafka.listeners empty");
    if (x >= 0) close(x);
    sc_t c;
    CHECK(sc_connect(&c, h.port) == 0);
    int64_t o = -1;
    CHECK_EQ_INT(sc_list_offsets(&c, "r1", 1, -1, &o), 0);
    CHECK(o > 0);
    sc_close(&c);
}

/* A fatal check exits at once: do not leave the broker running. */
static void kill_broker(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "kafka-raw");
    atexit(kill_broker);
    static const char *const extra[] = {"--log.retention.check.interval.ms=100",
                                        "--group.initial.rebalance.delay.ms=0", NULL};
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(h.kafka_port > 0);
    fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    CHECK_EQ_INT(kt_create_topic(fd, next_corr++, "r1", 2, 1), 0);

    test_metadata_versions();
    test_produce_fetch_versions();
    test_multi_partition();
    test_fetch_limits();
    test_find_coordinator();
    test_group_versions();
    test_offset_versions();
    test_topic_versions();
    test_idempotence();
    test_log_start();
    test_produce_rejects();
    test_cross_bytes();
    test_listener_settings();

    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced exit status 0x%x", st);
    harness_cleanup(&h);
    return check_exit();
}
