/* test_kafka_badinput.c — sluiced's Kafka listener byte by byte, with raw
 * sockets (no librdkafka): hand-built frames from kafka-protocol.md.
 *
 * Covers: ApiVersions v0/v1/v2 (the exact advertised table, no flexible
 * max), the captured librdkafka ApiVersions v3 request answered with the
 * exact v0-form bytes while the connection stays open; UNSUPPORTED_VERSION
 * (35) for unknown api keys and versions out of range, and INVALID_REQUEST
 * (42) for malformed headers and bodies, both as a 6-byte answer followed by
 * a close; frames that cannot be parsed (size < 10, > max.request.size)
 * closed without an answer; the smallest valid frame; half frames;
 * pipelined requests answered in order; Metadata v0/v4 (broker, cluster
 * id, controller, unknown topics without auto-creation); CreateTopics;
 * Produce acks -1/1/0 and its per-partition errors (CRC, magic, record
 * count, unknown partition) with the connection still usable and nothing
 * appended, a failing acks=0 produce closing the connection; Fetch v4/v11
 * byte-equal to what was produced, unknown topic (3), beyond the end (1,
 * with the real high watermark), long polls that expire or wake on a
 * produce; ListOffsets earliest/latest; a few hundred seeded garbage and
 * mutated frames, each followed by a healthy connection getting correct
 * ApiVersions and Metadata answers; the listener's request/error metrics
 * (each series once, refused requests counted as errors); a clean SIGTERM
 * at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h" /* SL_COMPRESSION_* */
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "kraw.h"

#define MAX_REQUEST 2097152

static harness_t h;
static int32_t next_corr = 100;
static int healthy = -1; /* a well-behaved connection kept open throughout */
static int64_t bi_end;   /* expected log end offset of "bi" (target of bad produces) */

static int conn(void)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    return fd;
}

/* ---- ApiVersions ---------------------------------------------------------- */

typedef struct range {
    int16_t key, min, max;
} range_t;

/* The table this broker must advertise (the list), and the first
 * flexible version of each key in Kafka's schemas. */
static const struct {
    int16_t key, max, first_flexible;
} want_apis[] = {
    {0, 7, 9},   /* Produce */
    {1, 11, 12}, /* Fetch */
    {2, 2, 6},   /* ListOffsets */
    {3, 4, 9},   /* Metadata */
    {8, 7, 8},   /* OffsetCommit */
    {9, 5, 6},   /* OffsetFetch */
    {10, 2, 3},  /* FindCoordinator */
    {11, 5, 6},  /* JoinGroup */
    {12, 3, 4},  /* Heartbeat */
    {13, 1, 4},  /* LeaveGroup */
    {14, 3, 4},  /* SyncGroup */
    {15, 4, 5},  /* DescribeGroups */
    {16, 2, 3},  /* ListGroups */
    {18, 2, 3},  /* ApiVersions */
    {19, 4, 5},  /* CreateTopics */
    {20, 3, 4},  /* DeleteTopics */
    {22, 1, 2},  /* InitProducerId */
};
#define NAPIS ((int)(sizeof want_apis / sizeof want_apis[0]))

/* ApiVersions at ver on fd: 0 when the response parsed exactly; fills the
 * error code and up to cap ranges. */
static int api_versions(int fd, int16_t ver, int16_t *err, range_t *out, int cap, int *n)
{
    int32_t corr = next_corr++;
    kt_buf_t b = {0};
    kt_req(&b, 18, ver, corr, "badinput");
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    *n = 0;
    *err = -99;
    if (rc) return -1;
    uint8_t *resp;
    size_t len;
    if (kt_recv(fd, 10000, &resp, &len) != KT_OK) return -1;
    kt_rd_t r;
    kt_rd_init(&r, resp, len);
    int ok = kt_r32(&r) == corr;
    *err = kt_r16(&r);
    int32_t cnt = kt_r32(&r);
    for (int32_t i = 0; i < cnt && !r.bad; i++) {
        range_t x;
        x.key = kt_r16(&r);
        x.min = kt_r16(&r);
        x.max = kt_r16(&r);
        if (*n < cap) out[(*n)++] = x;
    }
    if (ver >= 1) kt_r32(&r); /* throttle_time_ms, at the end */
    ok = ok && !r.bad && kt_left(&r) == 0 && cnt == *n;
    free(resp);
    return ok ? 0 : -1;
}

static void check_api_table(const range_t *got, int n, const char *what)
{
    CHECK_MSG(n == NAPIS, "%s: %d api keys advertised, expected %d", what, n, NAPIS);
    for (int i = 0; i < NAPIS; i++) {
        int found = 0;
        for (int k = 0; k < n; k++) {
            if (got[k].key != want_apis[i].key) continue;
            found = 1;
            CHECK_MSG(got[k].min == 0 && got[k].max == want_apis[i].max,
                      "%s: key %d advertises %d..%d, expected 0..%d", what, got[k].key, got[k].min,
                      got[k].max, want_apis[i].max);
        }
        CHECK_MSG(found, "%s: key %d not advertised", what, want_apis[i].key);
    }
    for (int k = 0; k < n; k++) {
        int known = 0;
        for (int i = 0; i < NAPIS; i++) {
            if (got[k].key != want_apis[i].key) continue;
            known = 1;
            CHECK_MSG(got[k].max < want_apis[i].first_flexible,
                      "%s: key %d advertises flexible version %d", what, got[k].key, got[k].max);
        }
        CHECK_MSG(known, "%s: unexpected api key %d advertised", what, got[k].key);
    }
}

/* ---- Metadata -------------------------------------------------------------- */

typedef struct md_topic {
    int16_t err;
    char name[128];
    int nparts;
    int32_t leader0, nrep0, rep0, nisr0, isr0; /* partition 0 */
} md_topic_t;

typedef struct md {
    int nbrokers;
    int32_t node, port, controller;
    char host[128], cluster[128];
    int cluster_null;
    int ntopics;
    md_topic_t t[64];
} md_t;

/* Metadata at ver (0..4) for one topic (NULL: all topics); 0 when the
 * response parsed exactly. */
static int metadata(int fd, int16_t ver, const char *topic, int auto_create, md_t *m)
{
    memset(m, 0, sizeof *m);
    m->controller = -99;
    int32_t corr = next_corr++;
    kt_buf_t b = {0};
    kt_req(&b, 3, ver, corr, "badinput");
    if (topic) {
        kt_i32(&b, 1);
        kt_str(&b, topic);
    } else {
        kt_i32(&b, ver == 0 ? 0 : -1);
    }
    if (ver >= 4) kt_i8(&b, auto_create ? 1 : 0);
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    if (rc) return -1;
    uint8_t *resp;
    size_t len;
    if (kt_recv(fd, 10000, &resp, &len) != KT_OK) return -1;
    kt_rd_t r;
    kt_rd_init(&r, resp, len);
    int ok = kt_r32(&r) == corr;
    if (ver >= 3) kt_r32(&r);
    m->nbrokers = kt_r32(&r);
    for (int i = 0; i < m->nbrokers && !r.bad; i++) {
        m->node = kt_r32(&r);
        kt_rstr(&r, m->host, sizeof m->host);
        m->port = kt_r32(&r);
        if (ver >= 1) {
            char rack[64];
            kt_rstr(&r, rack, sizeof rack);
        }
    }
    if (ver >= 2) m->cluster_null = kt_rstr(&r, m->cluster, sizeof m->cluster) < 0;
    if (ver >= 1) m->controller = kt_r32(&r);
    int32_t nt = kt_r32(&r);
    for (int32_t i = 0; i < nt && !r.bad; i++) {
        md_topic_t tmp, *t = m->ntopics < 64 ? &m->t[m->ntopics++] : &tmp;
        memset(t, 0, sizeof *t);
        t->leader0 = t->rep0 = t->isr0 = -99;
        t->err = kt_r16(&r);
        kt_rstr(&r, t->name, sizeof t->name);
        if (ver >= 1) kt_r8(&r);
        t->nparts = kt_r32(&r);
        for (int32_t p = 0; p < t->nparts && !r.bad; p++) {
            kt_r16(&r);
            int32_t idx = kt_r32(&r);
            int32_t leader = kt_r32(&r);
            int32_t nrep = kt_r32(&r), rep = -99;
            for (int32_t k = 0; k < nrep && !r.bad; k++) rep = kt_r32(&r);
            int32_t nisr = kt_r32(&r), isr = -99;
            for (int32_t k = 0; k < nisr && !r.bad; k++) isr = kt_r32(&r);
            if (idx == 0) {
                t->leader0 = leader;
                t->nrep0 = nrep;
                t->rep0 = rep;
                t->nisr0 = nisr;
                t->isr0 = isr;
            }
        }
    }
    ok = ok && !r.bad && kt_left(&r) == 0;
    free(resp);
    return ok ? 0 : -1;
}

static const md_topic_t *md_find(const md_t *m, const char *name)
{
    for (int i = 0; i < m->ntopics; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    return NULL;
}

static int create_topic(int fd, const char *name, int32_t parts, int16_t rf)
{
    return kt_create_topic(fd, next_corr++, name, parts, rf);
}

/* ---- the broker keeps serving ------------------------------------------- */

static void still_serving(const char *after)
{
    range_t got[64];
    int n = 0;
    int16_t err = -99;
    int rc = api_versions(healthy, 0, &err, got, 64, &n);
    CHECK_MSG(rc == 0 && err == 0 && n == NAPIS,
              "after %s: ApiVersions on the healthy connection rc %d err %d n %d", after, rc, err,
              n);
    md_t m;
    rc = metadata(healthy, 1, "ok", 0, &m);
    const md_topic_t *t = md_find(&m, "ok");
    CHECK_MSG(rc == 0 && m.nbrokers == 1 && m.node == 1 && t && t->err == 0 && t->nparts == 1 &&
                  t->leader0 == 1,
              "after %s: Metadata rc %d brokers %d topic %s", after, rc, m.nbrokers,
              t ? "ok" : "missing");
}

static void still_accepting(const char *after)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_MSG(fd >= 0, "after %s: cannot connect", after);
    if (fd < 0) return;
    range_t got[64];
    int n = 0;
    int16_t err = -99;
    int rc = api_versions(fd, 2, &err, got, 64, &n);
    CHECK_MSG(rc == 0 && err == 0 && n == NAPIS, "after %s: new connection ApiVersions rc %d",
              after, rc);
    int64_t end = -1;
    int e = kt_list_offsets(fd, next_corr++, "bi", 0, -1, &end);
    CHECK_MSG(e == 0 && end == bi_end, "after %s: bi end %" PRId64 " (err %d), expected %" PRId64,
              after, end, e, bi_end);
    close(fd);
}

/* ---- expectations about a connection ------------------------------------ */

/* Sends frame on a new connection; expects exactly the minimal answer
 * (size 6, corr, code) and then the close. */
static void expect_error_close(const void *frame, size_t len, int32_t corr, int16_t code,
                               const char *what)
{
    int fd = conn();
    CHECK_MSG(kt_send(fd, frame, len) == 0, "%s: send failed", what);
    uint8_t *resp = NULL;
    size_t n = 0;
    int rc = kt_recv(fd, 5000, &resp, &n);
    CHECK_MSG(rc == KT_OK, "%s: no answer (status %d)", what, rc);
    if (rc == KT_OK) {
        kt_rd_t r;
        kt_rd_init(&r, resp, n);
        int32_t c = kt_r32(&r);
        int16_t e = kt_r16(&r);
        CHECK_MSG(n == 6 && c == corr && e == code,
                  "%s: answer of %zu bytes, corr %d error %d; expected 6 bytes, corr %d error %d",
                  what, n, c, e, corr, code);
    }
    free(resp);
    long after = kt_closed_after(fd, 5000);
    CHECK_MSG(after == 0, "%s: connection not closed after the answer (%ld)", what, after);
    close(fd);
    still_serving(what);
}

/* Sends bytes on a new connection; expects a close with no byte sent. */
static void expect_silent_close(const void *bytes, size_t len, const char *what)
{
    int fd = conn();
    CHECK_MSG(kt_send(fd, bytes, len) == 0, "%s: send failed", what);
    long got = kt_closed_after(fd, 5000);
    CHECK_MSG(got == 0, "%s: expected a close without an answer, got %ld (-1 = still open)", what,
              got);
    close(fd);
    still_serving(what);
}

/* ---- cases ---------------------------------------------------------------- */

static void test_api_versions(void)
{
    for (int16_t v = 0; v <= 2; v++) {
        int fd = conn();
        range_t got[64];
        int n = 0;
        int16_t err = -99;
        char what[32];
        snprintf(what, sizeof what, "ApiVersions v%d", v);
        CHECK_MSG(api_versions(fd, v, &err, got, 64, &n) == 0, "%s did not parse", what);
        CHECK_EQ_INT(err, 0);
        check_api_table(got, n, what);
        close(fd);
    }

    /* librdkafka's first request, captured (kafka-protocol.md §2.1). */
    static const uint8_t v3[] = {0x00, 0x00, 0x00, 0x24, 0x00, 0x12, 0x00, 0x03, 0x00, 0x00,
                                 0x00, 0x01, 0x00, 0x07, 'r',  'd',  'k',  'a',  'f',  'k',
                                 'a',  0x00, 0x0b, 'l',  'i',  'b',  'r',  'd',  'k',  'a',
                                 'f',  'k',  'a',  0x06, '2',  '.',  '0',  '.',  '2',  0x00};
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x23,
                                   0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x02};
    CHECK_EQ_INT(sizeof v3, 40);
    int fd = conn();
    CHECK(kt_send(fd, v3, sizeof v3) == 0);
    uint8_t got[64];
    size_t n = 0;
    long long deadline = sl_mono_ms() + 5000;
    while (n < sizeof want && sl_mono_ms() < deadline) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0) continue;
        ssize_t r = read(fd, got + n, sizeof got - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    CHECK_MSG(n == sizeof want && memcmp(got, want, sizeof want) == 0,
              "ApiVersions v3: %zu bytes back, expected the 20 bytes of §2.1", n);
    /* The connection stays open and then speaks v0, as librdkafka does. */
    range_t table[64];
    int cnt = 0;
    int16_t err = -99;
    CHECK_MSG(api_versions(fd, 0, &err, table, 64, &cnt) == 0 && err == 0 && cnt == NAPIS,
              "v0 after v3 on the same connection: err %d count %d", err, cnt);
    close(fd);

    /* Any ApiVersions above 2 gets the same v0-form answer (Kafka: KIP-511). */
    kt_buf_t b = {0};
    kt_req(&b, 18, 4, 77, "x");
    kt_raw(&b, "\x00\x00\x00", 3);
    kt_finish(&b);
    fd = conn();
    CHECK(kt_send(fd, b.p, b.len) == 0);
    kt_free(&b);
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK(kt_recv(fd, 5000, &resp, &len) == KT_OK);
    static const uint8_t want4[] = {0x00, 0x00, 0x00, 0x4d, 0x00, 0x23, 0x00, 0x00,
                                    0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x02};
    CHECK_MSG(resp && len == sizeof want4 && memcmp(resp, want4, len) == 0,
              "ApiVersions v4: %zu bytes back", len);
    free(resp);
    CHECK(api_versions(fd, 1, &err, table, 64, &cnt) == 0 && err == 0 && cnt == NAPIS);
    close(fd);

    /* The smallest frame: size 10, ApiVersions v0 with a null client id. */
    static const uint8_t tiny[] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff};
    fd = conn();
    CHECK(kt_send(fd, tiny, sizeof tiny) == 0);
    resp = NULL;
    CHECK(kt_recv(fd, 5000, &resp, &len) == KT_OK);
    CHECK_MSG(resp && len == 4 + 2 + 4 + (size_t)NAPIS * 6 && resp[3] == 9 && resp[4] == 0 &&
                  resp[5] == 0,
              "size-10 ApiVersions: %zu bytes", len);
    free(resp);
    close(fd);
}

static void test_unsupported(void)
{
    kt_buf_t b = {0};
    char what[64];
    static const int16_t cases[][2] = {{99, 0}, {4, 0},  {17, 0}, {32, 0}, {1, 12},
                                       {0, 8},  {3, 5},  {2, 3},  {9, 6},  {22, 2},
                                       {11, 6}, {19, 5}, {0, -1}, {-1, 0}, {0x7fff, 0x7fff}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t corr = 5000 + (int32_t)i;
        kt_req(&b, cases[i][0], cases[i][1], corr, "badinput");
        /* A body that some version could have: it must not be looked at. */
        kt_i32(&b, 0);
        kt_i32(&b, 0);
        kt_finish(&b);
        snprintf(what, sizeof what, "api %d v%d", cases[i][0], cases[i][1]);
        expect_error_close(b.p, b.len, corr, 35, what);
    }
    kt_free(&b);
}

static void test_malformed(void)
{
    kt_buf_t b = {0};
    /* Metadata v4: one topic whose name runs past the frame. */
    kt_req(&b, 3, 4, 601, "badinput");
    kt_i32(&b, 1);
    kt_i16(&b, 10);
    kt_raw(&b, "abc", 3);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 601, 42, "Metadata v4 truncated topic name");
    /* Metadata v4 cut before allow_auto_topic_creation. */
    kt_req(&b, 3, 4, 602, "badinput");
    kt_i32(&b, 1);
    kt_str(&b, "ok");
    kt_finish(&b);
    expect_error_close(b.p, b.len, 602, 42, "Metadata v4 missing allow_auto_topic_creation");
    /* Metadata v1 with bytes after the last field. */
    kt_req(&b, 3, 1, 603, "badinput");
    kt_i32(&b, 0);
    kt_raw(&b, "junk", 4);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 603, 42, "Metadata v1 trailing bytes");
    /* Metadata v4: a topic count far beyond the body. */
    kt_req(&b, 3, 4, 604, "badinput");
    kt_i32(&b, 0x7ffffff0);
    kt_i8(&b, 0);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 604, 42, "Metadata v4 huge topic count");

    /* Produce v7: records length 100 with 10 bytes. */
    kt_req(&b, 0, 7, 611, "badinput");
    kt_str(&b, NULL);
    kt_i16(&b, 1);
    kt_i32(&b, 1000);
    kt_i32(&b, 1);
    kt_str(&b, "bi");
    kt_i32(&b, 1);
    kt_i32(&b, 0);
    kt_i32(&b, 100);
    kt_raw(&b, "0123456789", 10);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 611, 42, "Produce v7 truncated records");
    /* Produce v7 cut after acks. */
    kt_req(&b, 0, 7, 612, "badinput");
    kt_str(&b, NULL);
    kt_i16(&b, 1);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 612, 42, "Produce v7 cut after acks");
    /* Produce v7 with a negative topic count and a negative name length. */
    kt_req(&b, 0, 7, 613, "badinput");
    kt_str(&b, NULL);
    kt_i16(&b, 1);
    kt_i32(&b, 1000);
    kt_i32(&b, -5);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 613, 42, "Produce v7 topic count -5");
    kt_req(&b, 0, 7, 614, "badinput");
    kt_str(&b, NULL);
    kt_i16(&b, 1);
    kt_i32(&b, 1000);
    kt_i32(&b, 1);
    kt_i16(&b, -2);
    kt_i32(&b, 0);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 614, 42, "Produce v7 topic name length -2");

    /* Fetch v11 cut after max_wait_ms; Fetch v4 cut inside a partition. */
    kt_req(&b, 1, 11, 621, "badinput");
    kt_i32(&b, -1);
    kt_i32(&b, 500);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 621, 42, "Fetch v11 truncated");
    kt_req(&b, 1, 4, 622, "badinput");
    kt_i32(&b, -1);
    kt_i32(&b, 500);
    kt_i32(&b, 1);
    kt_i32(&b, 1 << 20);
    kt_i8(&b, 0);
    kt_i32(&b, 1);
    kt_str(&b, "bi");
    kt_i32(&b, 1);
    kt_i32(&b, 0);
    kt_raw(&b, "\0\0\0", 3);
    kt_finish(&b);
    expect_error_close(b.p, b.len, 622, 42, "Fetch v4 truncated fetch_offset");

    /* A client_id that runs past the frame: the header itself is bad. */
    static const uint8_t badhdr[] = {0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 2, 0x5b, 0, 40, 'a', 'b'};
    expect_error_close(badhdr, sizeof badhdr, 0x25b, 42, "client_id past the frame");
    kt_free(&b);
}

static void test_unparseable_frames(void)
{
    static const uint8_t s3[] = {0, 0, 0, 3, 0, 18, 0};
    expect_silent_close(s3, sizeof s3, "size 3");
    static const uint8_t s0[] = {0, 0, 0, 0};
    expect_silent_close(s0, sizeof s0, "size 0");
    static const uint8_t s9[] = {0, 0, 0, 9, 0, 18, 0, 0, 0, 0, 0, 1, 0};
    expect_silent_close(s9, sizeof s9, "size 9");
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe, 0, 18};
    expect_silent_close(neg, sizeof neg, "size -2");
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0, 0, 0, 0, 1};
    expect_silent_close(huge, sizeof huge, "size 0x7fffffff");
    uint32_t o = MAX_REQUEST + 1;
    uint8_t over[16] = {(uint8_t)(o >> 24),
                        (uint8_t)(o >> 16),
                        (uint8_t)(o >> 8),
                        (uint8_t)o,
                        0,
                        3,
                        0,
                        1,
                        0,
                        0,
                        0,
                        1,
                        0,
                        0};
    expect_silent_close(over, sizeof over, "size max.request.size + 1");
}

static void test_half_frames(void)
{
    /* Half a frame, then the client goes away. */
    kt_buf_t b = {0};
    kt_req(&b, 3, 4, 700, "badinput");
    kt_i32(&b, 1);
    kt_str(&b, "ok");
    kt_i8(&b, 0);
    kt_finish(&b);
    int fd = conn();
    CHECK(kt_send(fd, b.p, b.len / 2) == 0);
    close(fd);
    still_serving("half a frame then close");

    /* Half a frame on an open connection does not hold the broker up; the
     * rest completes the request. */
    fd = conn();
    CHECK(kt_send(fd, b.p, 3) == 0);
    still_serving("3 bytes of a frame pending");
    CHECK(kt_send(fd, b.p + 3, b.len / 2 - 3) == 0);
    still_accepting("half a frame pending");
    CHECK(kt_send(fd, b.p + b.len / 2, b.len - b.len / 2) == 0);
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK(kt_recv(fd, 5000, &resp, &len) == KT_OK);
    CHECK(resp && len > 8 && resp[2] == 0x02 && resp[3] == 0xbc); /* corr 700 */
    free(resp);
    close(fd);

    /* A size prefix alone, then close. */
    fd = conn();
    CHECK(kt_send(fd, "\0\0\0\x40", 4) == 0);
    close(fd);
    still_serving("size prefix then close");
    kt_free(&b);
}

static void test_pipelined(void)
{
    kt_buf_t all = {0}, b = {0};
    int32_t corrs[3] = {801, 802, 803};
    kt_req(&b, 18, 0, corrs[0], "p");
    kt_raw(&all, kt_finish(&b), b.len);
    kt_req(&b, 3, 1, corrs[1], "p");
    kt_i32(&b, 1);
    kt_str(&b, "ok");
    kt_raw(&all, kt_finish(&b), b.len);
    kt_req(&b, 18, 2, corrs[2], "p");
    kt_raw(&all, kt_finish(&b), b.len);
    int fd = conn();
    CHECK(kt_send(fd, all.p, all.len) == 0);
    for (int i = 0; i < 3; i++) {
        uint8_t *resp = NULL;
        size_t len = 0;
        int rc = kt_recv(fd, 5000, &resp, &len);
        CHECK_MSG(rc == KT_OK && len >= 4 &&
                      (int32_t)((uint32_t)resp[0] << 24 | (uint32_t)resp[1] << 16 |
                                (uint32_t)resp[2] << 8 | resp[3]) == corrs[i],
                  "pipelined response %d out of order or missing (rc %d)", i, rc);
        free(resp);
    }
    close(fd);
    kt_free(&all);
    kt_free(&b);
}

static void test_metadata(void)
{
    int fd = conn();
    md_t m;
    CHECK(metadata(fd, 4, NULL, 0, &m) == 0);
    CHECK_EQ_INT(m.nbrokers, 1);
    CHECK_EQ_INT(m.node, 1);
    CHECK_EQ_INT(m.port, h.kafka_port);
    CHECK(strcmp(m.host, "127.0.0.1") == 0);
    CHECK(!m.cluster_null && m.cluster[0]);
    CHECK_EQ_INT(m.controller, 1);
    const md_topic_t *t = md_find(&m, "ok");
    CHECK(t && t->err == 0 && t->nparts == 1 && t->leader0 == 1 && t->nrep0 == 1 && t->rep0 == 1 &&
          t->nisr0 == 1 && t->isr0 == 1);
    t = md_find(&m, "three");
    CHECK(t && t->err == 0 && t->nparts == 3);
    char cluster[128];
    snprintf(cluster, sizeof cluster, "%s", m.cluster);

    /* v0: an empty array means all topics; no cluster id, no controller. */
    CHECK(metadata(fd, 0, NULL, 0, &m) == 0);
    CHECK(md_find(&m, "ok") && md_find(&m, "three") && m.node == 1);
    CHECK(metadata(fd, 2, "ok", 0, &m) == 0);
    CHECK(m.ntopics == 1 && strcmp(m.cluster, cluster) == 0);

    /* Unknown topic without auto-creation: error 3, no partitions, and it
     * was not created. */
    CHECK(metadata(fd, 4, "nosuch", 0, &m) == 0);
    CHECK(m.ntopics == 1 && m.t[0].err == 3 && m.t[0].nparts == 0 &&
          strcmp(m.t[0].name, "nosuch") == 0);
    CHECK(metadata(fd, 4, NULL, 0, &m) == 0);
    CHECK(md_find(&m, "nosuch") == NULL);
    /* With auto-creation (producers ask for it): created with
     * num.partitions (1). */
    CHECK(metadata(fd, 4, "autoc", 1, &m) == 0);
    CHECK_MSG(m.ntopics == 1 && m.t[0].err == 0 && m.t[0].nparts == 1,
              "auto-created topic: err %d parts %d", m.ntopics ? m.t[0].err : -99,
              m.ntopics ? m.t[0].nparts : -99);
    close(fd);
}

/* A batch of n records "k<i>" = "value <i>" for the produce cases. */
static uint8_t *batch(int n, size_t *len)
{
    bg_record_t r[16];
    char keys[16][16], vals[16][32];
    for (int i = 0; i < n && i < 16; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        snprintf(vals[i], sizeof vals[i], "value %d", i);
        r[i] = (bg_record_t){keys[i],
                             (int32_t)strlen(keys[i]),
                             vals[i],
                             (int32_t)strlen(vals[i]),
                             1700000000000LL + i,
                             0,
                             NULL};
    }
    uint8_t *b = bg_build(r, n, SL_COMPRESSION_NONE, len);
    CHECK_FATAL(b != NULL);
    return b;
}

static int64_t end_of(int fd, const char *topic)
{
    int64_t end = -99;
    int e = kt_list_offsets(fd, next_corr++, topic, 0, -1, &end);
    CHECK_MSG(e == 0, "ListOffsets %s: %d", topic, e);
    return end;
}

static void test_produce_fetch(void)
{
    int fd = conn();
    size_t len = 0;
    uint8_t *b = batch(3, &len);
    int64_t base = -1;

    /* acks=1, -1 and v3: consecutive base offsets. */
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 1, "bi", 0, b, (int32_t)len, &base), 0);
    CHECK_EQ_INT(base, 0);
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, -1, "bi", 0, b, (int32_t)len, &base), 0);
    CHECK_EQ_INT(base, 3);
    CHECK_EQ_INT(kt_produce(fd, 3, next_corr++, -1, "bi", 0, b, (int32_t)len, &base), 0);
    CHECK_EQ_INT(base, 6);
    bi_end = 9;
    CHECK_EQ_INT(end_of(fd, "bi"), bi_end);
    int64_t start = -99;
    CHECK_EQ_INT(kt_list_offsets(fd, next_corr++, "bi", 0, -2, &start), 0);
    CHECK_EQ_INT(start, 0);

    /* Fetch gives back the produced bytes: baseOffset assigned, everything
     * from magic on unchanged (leader epoch may be rewritten). */
    for (int16_t v = 4; v <= 11; v += 7) {
        kt_fetch_res_t f;
        kt_fetch(fd, v, next_corr++, "bi", 0, 3, 100, 1, 1 << 20, &f);
        CHECK_MSG(f.rc == KT_OK, "Fetch v%d did not parse (%d)", v, f.rc);
        CHECK_EQ_INT(f.error, 0);
        CHECK_EQ_INT(f.top_error, 0);
        CHECK_EQ_INT(f.hwm, 9);
        CHECK_EQ_INT(f.lso, 9);
        if (v >= 5) CHECK_EQ_INT(f.log_start, 0);
        CHECK_EQ_INT(f.preferred_replica, -1);
        CHECK_MSG(f.records_len >= (int32_t)len && f.records_len % (int32_t)len == 0,
                  "Fetch v%d: %d bytes of records, batches are %zu", v, f.records_len, len);
        if (f.records && f.records_len >= (int32_t)len) {
            int64_t bo = 0;
            for (int i = 0; i < 8; i++) bo = bo << 8 | f.records[i];
            CHECK_EQ_INT(bo, 3);
            CHECK(memcmp(f.records + 8, b + 8, 4) == 0);
            CHECK(memcmp(f.records + 16, b + 16, len - 16) == 0);
        }
        free(f.records);
    }

    /* Per-partition errors in a well-formed response; nothing appended;
     * the connection stays usable. */
    uint8_t *bad = malloc(len);
    CHECK_FATAL(bad != NULL);
    memcpy(bad, b, len);
    bad[len - 1] ^= 0x55; /* covered by the CRC */
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 1, "bi", 0, bad, (int32_t)len, &base), 2);
    CHECK_EQ_INT(base, -1);
    memcpy(bad, b, len);
    bad[16] = 1; /* magic 1 (not covered by the CRC) */
    int e = kt_produce(fd, 7, next_corr++, 1, "bi", 0, bad, (int32_t)len, &base);
    CHECK_MSG(e == 43 || e == 2 || e == 87, "magic 1: error %d", e);
    memcpy(bad, b, len);
    bad[60] = 4; /* recordsCount 4 with lastOffsetDelta 2 */
    bg_fix_crc(bad, len);
    e = kt_produce(fd, 7, next_corr++, 1, "bi", 0, bad, (int32_t)len, &base);
    CHECK_MSG(e == 87 || e == 2, "recordsCount mismatch: error %d", e);
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 1, "bi", 7, b, (int32_t)len, &base), 3);
    e = kt_produce(fd, 5, next_corr++, 1, "bi", 0, b, 30, &base);
    CHECK_MSG(e == 2 || e == 87, "30 bytes of a batch: error %d", e);
    CHECK_EQ_INT(end_of(fd, "bi"), bi_end);
    still_serving("bad produces");

    /* acks=0: no response; the next request's answer comes first. */
    CHECK_EQ_INT(kt_produce(fd, 7, next_corr++, 0, "bi", 0, b, (int32_t)len, &base), 0);
    bi_end += 3;
    CHECK_EQ_INT(end_of(fd, "bi"), bi_end);
    close(fd);

    /* A failing acks=0 produce closes the connection (no answer). */
    fd = conn();
    memcpy(bad, b, len);
    bad[len - 1] ^= 0x55;
    CHECK_EQ_INT(kt_produce(fd, 7, 999, 0, "bi", 0, bad, (int32_t)len, &base), 0);
    CHECK_MSG(kt_closed_after(fd, 5000) == 0, "acks=0 corrupt produce did not close");
    close(fd);
    still_accepting("acks=0 corrupt produce");
    free(bad);
    free(b);
}

static void test_fetch_errors(void)
{
    int fd = conn();
    kt_fetch_res_t f;
    kt_fetch(fd, 11, next_corr++, "nosuch", 0, 0, 100, 1, 1 << 20, &f);
    CHECK_EQ_INT(f.rc, KT_OK);
    CHECK_EQ_INT(f.error, 3);
    CHECK_EQ_INT(f.hwm, -1);
    CHECK_EQ_INT(f.records_len, 0);
    free(f.records);
    kt_fetch(fd, 11, next_corr++, "bi", 5, 0, 100, 1, 1 << 20, &f);
    CHECK_EQ_INT(f.rc, KT_OK);
    CHECK_EQ_INT(f.error, 3);
    free(f.records);

    /* Beyond the end: OFFSET_OUT_OF_RANGE with the real high watermark. */
    for (int16_t v = 4; v <= 11; v++) {
        kt_fetch(fd, v, next_corr++, "bi", 0, bi_end + 5, 100, 1, 1 << 20, &f);
        CHECK_MSG(f.rc == KT_OK && f.error == 1 && f.hwm == bi_end && f.records_len == 0,
                  "Fetch v%d beyond the end: rc %d error %d hwm %" PRId64 " records %d", v, f.rc,
                  f.error, f.hwm, f.records_len);
        free(f.records);
    }
    kt_fetch(fd, 11, next_corr++, "bi", 0, -7, 100, 1, 1 << 20, &f);
    CHECK_MSG(f.error == 1 && f.hwm == bi_end, "Fetch at -7: error %d hwm %" PRId64, f.error,
              f.hwm);
    free(f.records);

    /* At the end: no error, no records, after the long poll's wait. */
    long long t0 = sl_mono_ms();
    kt_fetch(fd, 11, next_corr++, "bi", 0, bi_end, 400, 1, 1 << 20, &f);
    long long waited = sl_mono_ms() - t0;
    CHECK_EQ_INT(f.rc, KT_OK);
    CHECK_EQ_INT(f.error, 0);
    CHECK_EQ_INT(f.hwm, bi_end);
    CHECK_EQ_INT(f.records_len, 0);
    CHECK_MSG(waited >= 300 && waited < 5000, "idle long poll returned after %lld ms", waited);
    free(f.records);
    /* min_bytes 0 answers at once. */
    t0 = sl_mono_ms();
    kt_fetch(fd, 11, next_corr++, "bi", 0, bi_end, 5000, 0, 1 << 20, &f);
    CHECK_MSG(f.error == 0 && sl_mono_ms() - t0 < 2000, "min_bytes 0 fetch waited %lld ms",
              sl_mono_ms() - t0);
    free(f.records);

    /* A parked fetch wakes on a produce from another connection. */
    CHECK(kt_fetch_send(fd, 11, 4242, "bi", 0, bi_end, 10000, 1, 1 << 20) == 0);
    poll(NULL, 0, 300);
    int p = conn();
    size_t len = 0;
    uint8_t *b = batch(2, &len);
    int64_t base = -1;
    t0 = sl_mono_ms();
    CHECK_EQ_INT(kt_produce(p, 7, next_corr++, 1, "bi", 0, b, (int32_t)len, &base), 0);
    CHECK_EQ_INT(base, bi_end);
    kt_fetch_recv(fd, 11, 4242, "bi", 0, 15000, &f);
    long long woke = sl_mono_ms() - t0;
    CHECK_EQ_INT(f.rc, KT_OK);
    CHECK_EQ_INT(f.error, 0);
    CHECK_EQ_INT(f.hwm, bi_end + 2);
    CHECK_EQ_INT(f.records_len, (int32_t)len);
    CHECK_MSG(woke < 3000, "parked fetch woke %lld ms after the produce", woke);
    bi_end += 2;
    free(f.records);
    free(b);
    close(p);

    int64_t off = -99;
    CHECK_EQ_INT(kt_list_offsets(fd, next_corr++, "nosuch", 0, -1, &off), 3);
    CHECK_EQ_INT(kt_list_offsets(fd, next_corr++, "bi", 0, -1, &off), 0);
    CHECK_EQ_INT(off, bi_end);
    close(fd);
}

/* Requests behind a parked fetch wait for it (answers stay in order), and
 * clients that go away with a fetch parked or an acks=-1 produce pending
 * leave nothing behind. */
static void test_parked(void)
{
    int fd = conn();
    long long t0 = sl_mono_ms();
    CHECK(kt_fetch_send(fd, 11, 901, "bi", 0, bi_end, 600, 1, 1 << 20) == 0);
    kt_buf_t b = {0};
    kt_req(&b, 18, 0, 902, "p");
    kt_finish(&b);
    CHECK(kt_send(fd, b.p, b.len) == 0);
    kt_free(&b);
    kt_fetch_res_t f;
    kt_fetch_recv(fd, 11, 901, "bi", 0, 10000, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.records_len == 0,
              "parked fetch first: rc %d error %d records %d", f.rc, f.error, f.records_len);
    free(f.records);
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK(kt_recv(fd, 5000, &resp, &len) == KT_OK);
    CHECK_MSG(resp && len > 4 && resp[3] == (902 & 0xff) && resp[2] == (902 >> 8),
              "ApiVersions behind a parked fetch: not answered next");
    long long took = sl_mono_ms() - t0;
    CHECK_MSG(took >= 450, "ApiVersions behind a 600 ms fetch answered after %lld ms", took);
    free(resp);
    close(fd);

    /* A fetch parked on a connection that closes, then woken. */
    fd = conn();
    CHECK(kt_fetch_send(fd, 11, 903, "bi", 0, bi_end, 5000, 1, 1 << 20) == 0);
    poll(NULL, 0, 50);
    close(fd);
    /* An acks=-1 produce whose client does not wait for the answer. */
    size_t bl = 0;
    uint8_t *batch = bg_simple(2, 50, 1700000000000LL, 7, &bl);
    CHECK_FATAL(batch != NULL);
    fd = conn();
    kt_buf_t pb = {0};
    kt_req(&pb, 0, 7, 904, "p");
    kt_str(&pb, NULL);
    kt_i16(&pb, -1);
    kt_i32(&pb, 10000);
    kt_i32(&pb, 1);
    kt_str(&pb, "bi");
    kt_i32(&pb, 1);
    kt_i32(&pb, 0);
    kt_bytes(&pb, batch, (int32_t)bl);
    kt_finish(&pb);
    CHECK(kt_send(fd, pb.p, pb.len) == 0);
    close(fd);
    kt_free(&pb);
    free(batch);
    /* The produce is applied (it wakes the parked fetch of a closed
     * connection); the broker goes on. */
    long long deadline = sl_mono_ms() + 5000;
    int64_t end = -1;
    do {
        int c = conn();
        kt_list_offsets(c, next_corr++, "bi", 0, -1, &end);
        close(c);
        if (end == bi_end + 2) break;
        poll(NULL, 0, 20);
    } while (sl_mono_ms() < deadline);
    CHECK_MSG(end == bi_end + 2,
              "acks=-1 produce of a closed client: end %" PRId64 ", expected %" PRId64, end,
              bi_end + 2);
    if (end == bi_end + 2) bi_end += 2;
    still_serving("clients gone with requests pending");
    still_accepting("clients gone with requests pending");
}

/* ---- garbage -------------------------------------------------------------- */

static uint64_t rng = 0x5eed5eed1234ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Well-formed requests to mutate (no CreateTopics/DeleteTopics, so a
 * mutation cannot create thousands of partitions). */
static void template_req(kt_buf_t *b, int which, int32_t corr)
{
    static const uint8_t sub[] = {0, 1, 0, 0, 0, 1, 0, 2, 'f', 'z', 0, 0, 0, 0, 0, 0, 0, 0};
    static uint8_t *bt;
    static size_t btl;
    if (!bt) bt = batch(2, &btl);
    switch (which) {
    case 0:
        kt_req(b, 18, 2, corr, "fz");
        break;
    case 1:
        kt_req(b, 3, 4, corr, "fz");
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i8(b, 1);
        break;
    case 2:
        kt_req(b, 0, 7, corr, "fz");
        kt_str(b, NULL);
        kt_i16(b, 1);
        kt_i32(b, 1000);
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i32(b, 1);
        kt_i32(b, 0);
        kt_bytes(b, bt, (int32_t)btl);
        break;
    case 3:
        kt_req(b, 1, 11, corr, "fz");
        kt_i32(b, -1);
        kt_i32(b, 50);
        kt_i32(b, 1);
        kt_i32(b, 1 << 20);
        kt_i8(b, 0);
        kt_i32(b, 0);
        kt_i32(b, -1);
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i32(b, 1);
        kt_i32(b, 0);
        kt_i32(b, -1);
        kt_i64(b, 0);
        kt_i64(b, -1);
        kt_i32(b, 1 << 20);
        kt_i32(b, 0);
        kt_str(b, "");
        break;
    case 4:
        kt_req(b, 2, 2, corr, "fz");
        kt_i32(b, -1);
        kt_i8(b, 0);
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i32(b, 1);
        kt_i32(b, 0);
        kt_i64(b, -2);
        break;
    case 5:
        kt_req(b, 8, 7, corr, "fz");
        kt_str(b, "gz");
        kt_i32(b, -1);
        kt_str(b, "");
        kt_str(b, NULL);
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i32(b, 1);
        kt_i32(b, 0);
        kt_i64(b, 1);
        kt_i32(b, -1);
        kt_str(b, "");
        break;
    case 6:
        kt_req(b, 9, 5, corr, "fz");
        kt_str(b, "gz");
        kt_i32(b, 1);
        kt_str(b, "fz");
        kt_i32(b, 1);
        kt_i32(b, 0);
        break;
    case 7:
        kt_req(b, 10, 2, corr, "fz");
        kt_str(b, "gz");
        kt_i8(b, 0);
        break;
    case 8:
        kt_req(b, 11, 5, corr, "fz");
        kt_str(b, "gz");
        kt_i32(b, 6000);
        kt_i32(b, 100);
        kt_str(b, "");
        kt_str(b, NULL);
        kt_str(b, "consumer");
        kt_i32(b, 1);
        kt_str(b, "range");
        kt_bytes(b, sub, (int32_t)sizeof sub);
        break;
    case 9:
        kt_req(b, 12, 3, corr, "fz");
        kt_str(b, "gz");
        kt_i32(b, 1);
        kt_str(b, "m");
        kt_str(b, NULL);
        break;
    case 10:
        kt_req(b, 14, 3, corr, "fz");
        kt_str(b, "gz");
        kt_i32(b, 1);
        kt_str(b, "m");
        kt_str(b, NULL);
        kt_i32(b, 1);
        kt_str(b, "m");
        kt_bytes(b, "\0\0\0\0\0\0\0\0\0\0", 10);
        break;
    case 11:
        kt_req(b, 13, 1, corr, "fz");
        kt_str(b, "gz");
        kt_str(b, "m");
        break;
    case 12:
        kt_req(b, 15, 4, corr, "fz");
        kt_i32(b, 1);
        kt_str(b, "gz");
        kt_i8(b, 0);
        break;
    case 13:
        kt_req(b, 16, 2, corr, "fz");
        break;
    default:
        kt_req(b, 22, 1, corr, "fz");
        kt_str(b, NULL);
        kt_i32(b, -1);
        break;
    }
}

static void test_garbage(void)
{
    static const int16_t served[] = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 22};
    static const int16_t maxv[] = {7, 11, 2, 4, 7, 5, 2, 5, 3, 1, 3, 4, 2, 2, 1};
    int open_after = 0, frames = 0, answered = 0;
    long long t0 = sl_mono_ms();
    fprintf(stderr, "garbage: seed 0x%" PRIx64 "\n", rng);
    for (int i = 0; i < 300 && sl_mono_ms() - t0 < 60000; i++, frames++) {
        kt_buf_t b = {0};
        int cls = (int)(rnd() % 3);
        if (cls == 0) {
            /* Random bytes, size prefix included. */
            size_t n = 1 + rnd() % 64;
            for (size_t k = 0; k < n; k++) kt_i8(&b, (int8_t)rnd());
        } else if (cls == 1) {
            /* A valid header of a served key and version, random body. */
            int k = (int)(rnd() % (sizeof served / sizeof served[0]));
            kt_req(&b, served[k], (int16_t)(rnd() % (uint32_t)(maxv[k] + 1)), i, "fz");
            size_t n = rnd() % 64;
            for (size_t j = 0; j < n; j++) kt_i8(&b, (int8_t)rnd());
            kt_finish(&b);
        } else {
            /* A valid request, mutated. */
            template_req(&b, (int)(rnd() % 15), i);
            kt_finish(&b);
            int how = (int)(rnd() % 3);
            if (how == 0 && b.len > 12) {
                int flips = 1 + (int)(rnd() % 4);
                for (int f = 0; f < flips; f++) b.p[12 + rnd() % (b.len - 12)] = (uint8_t)rnd();
            } else if (how == 1 && b.len > 14) {
                b.len = 14 + rnd() % (b.len - 14);
                kt_finish(&b);
            } else {
                size_t n = 1 + rnd() % 16;
                for (size_t j = 0; j < n; j++) kt_i8(&b, (int8_t)rnd());
                kt_finish(&b);
            }
        }
        int fd = conn();
        kt_send(fd, b.p, b.len);
        shutdown(fd, SHUT_WR);
        long got = kt_closed_after(fd, 200);
        if (got < 0) open_after++;
        if (got > 0) answered++;
        close(fd);
        kt_free(&b);
        char what[64];
        snprintf(what, sizeof what, "garbage frame %d (class %d)", i, cls);
        still_serving(what);
        if (i % 25 == 0) still_accepting(what);
        if (check_failures > 20) break;
    }
    fprintf(stderr,
            "garbage: %d frames in %lld ms, %d answered, %d connections still open after 200 ms\n",
            frames, sl_mono_ms() - t0, answered, open_after);
    CHECK(frames >= 100);
    /* Most mutated frames still frame correctly and get an answer (an error
     * or a real response): the decoders were reached. */
    CHECK_MSG(answered >= frames / 4, "only %d of %d garbage frames were answered", answered,
              frames);
}

/* The listener's metrics: every series once; what was refused counted. */
static void check_metrics(void)
{
    char *page = harness_metrics(&h);
    CHECK(page != NULL);
    if (!page) return;
    double unknown = 0, unknown_err = 0;
    int dup = 0, nseries = 0;
    const char *seen[512];
    size_t seen_len[512];
    for (const char *line = page; *line;) {
        const char *nl = strchr(line, '\n'), *sp = strchr(line, ' ');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (line[0] != '#' && sp && sp < line + len) {
            size_t sl = (size_t)(sp - line);
            for (int i = 0; i < nseries; i++)
                if (seen_len[i] == sl && memcmp(seen[i], line, sl) == 0) {
                    if (dup++ < 3)
                        fprintf(stderr, "metrics: series %.*s repeated\n", (int)sl, line);
                }
            if (nseries < 512) {
                seen[nseries] = line;
                seen_len[nseries++] = sl;
            }
            if (strncmp(line, "sluice_kafka_requests_total{api=\"Unknown\"} ", sl + 1) == 0)
                unknown += atof(sp + 1);
            if (strncmp(line, "sluice_kafka_request_errors_total{api=\"Unknown\"} ", sl + 1) == 0)
                unknown_err += atof(sp + 1);
        }
        line = nl ? nl + 1 : line + len;
    }
    CHECK_MSG(dup == 0, "metrics: %d series appear more than once", dup);
    /* Keys 99, 4, 17, 32, -1, 0x7fff above, plus garbage. */
    CHECK_MSG(unknown >= 6, "Unknown api requests counted: %g", unknown);
    CHECK_MSG(unknown_err == unknown,
              "Unknown api requests: %g counted, %g counted as errors (all got error 35)", unknown,
              unknown_err);
    double av_err = harness_metric(page, "sluice_kafka_request_errors_total{api=\"ApiVersions\"}");
    double pr_err = harness_metric(page, "sluice_kafka_request_errors_total{api=\"Produce\"}");
    CHECK_MSG(av_err >= 2, "ApiVersions errors counted: %g", av_err);
    CHECK_MSG(pr_err >= 5, "Produce errors counted: %g", pr_err);
    free(page);
}

/* A fatal check exits at once: do not leave the broker running. */
static void kill_broker(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "kafka-badinput");
    atexit(kill_broker);
    char maxreq[64];
    snprintf(maxreq, sizeof maxreq, "--max.request.size=%d", MAX_REQUEST);
    const char *const extra[] = {maxreq, NULL};
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(h.kafka_port > 0);
    healthy = conn();
    CHECK_EQ_INT(create_topic(healthy, "ok", 1, 1), 0);
    CHECK_EQ_INT(create_topic(healthy, "bi", 1, -1), 0);
    CHECK_EQ_INT(create_topic(healthy, "three", 3, 1), 0);
    CHECK_EQ_INT(create_topic(healthy, "fz", 2, 1), 0);
    CHECK_EQ_INT(create_topic(healthy, "bi", 1, 1), 36);
    CHECK_EQ_INT(create_topic(healthy, "zero", 0, 1), 37);
    CHECK_EQ_INT(create_topic(healthy, "rf3", 1, 3), 38);

    test_api_versions();
    test_metadata();
    test_produce_fetch();
    test_fetch_errors();
    test_unsupported();
    test_malformed();
    test_unparseable_frames();
    test_half_frames();
    test_pipelined();
    test_parked();
    test_garbage();

    still_serving("everything");
    still_accepting("everything");
    CHECK(kill(h.pid, 0) == 0);
    check_metrics();
    /* A half-sent frame is still open while the broker shuts down. */
    int half = conn();
    CHECK(kt_send(half, "\0\0\0\x20\0\3", 6) == 0);
    close(healthy);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced exit status 0x%x after SIGTERM", st);
    close(half);
    harness_cleanup(&h);
    return check_exit();
}
