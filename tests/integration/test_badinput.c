/* test_badinput.c — every kind of bad input against the real sluiced.
 *
 * Each case gets either a precise error response (the connection stays
 * usable) or, where the byte stream can no longer be trusted, a closed
 * connection (after an INVALID_REQUEST answer with correlation 0 when the
 * frame boundary is still known). After every case a separate well-behaved
 * connection still produces and fetches, and nothing was appended to the
 * partitions the bad requests aimed at. Finally: the protocol-error metric,
 * the log's reasons for closing, and a clean SIGTERM with a half-sent frame
 * still open.
 */
#include <dirent.h>
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

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

#define MAX_REQUEST 65536
#define MAX_MESSAGE 32768

static harness_t h;
static int64_t bi_end[2];   /* expected log end offsets of topic "bi" (the target of bad input) */
static int64_t ok_produced; /* records the well-behaved client appended to "ok" */

static void connect_or_die(sc_t *c)
{
    CHECK_FATAL(sc_connect(c, h.port) == 0);
}

/* ---- raw frames ---------------------------------------------------------- */

/* A request frame whose header says exactly what hdr says (body_length
 * included, so it may lie), followed by body and payload bytes. Returns the
 * malloc'd frame and its size. */
static uint8_t *raw_frame(const Sluice__RequestHeader *hdr, const void *body, size_t blen,
                          const void *payload, size_t plen, size_t *len)
{
    size_t hl = sluice__request_header__get_packed_size(hdr);
    size_t total = SL_FRAME_PREFIX + hl + blen + plen;
    uint8_t *f = malloc(total);
    CHECK_FATAL(f != NULL);
    sluice__request_header__pack(hdr, f + SL_FRAME_PREFIX);
    if (blen) memcpy(f + SL_FRAME_PREFIX + hl, body, blen);
    if (plen) memcpy(f + SL_FRAME_PREFIX + hl + blen, payload, plen);
    sl_put_be32(f, (uint32_t)(total - 4));
    sl_put_be32(f + 4, (uint32_t)hl);
    *len = total;
    return f;
}

/* A well-formed request frame for api with body (packed) and payload. */
static uint8_t *good_frame(int api, uint64_t corr, const ProtobufCMessage *body,
                           const void *payload, size_t plen, size_t *len)
{
    size_t bl = body ? protobuf_c_message_get_packed_size(body) : 0;
    uint8_t *b = malloc(bl + 1);
    CHECK_FATAL(b != NULL);
    if (body) protobuf_c_message_pack(body, b);
    Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
    hd.api = (Sluice__ApiKey)api;
    hd.version = SL_PROTOCOL_VERSION;
    hd.correlation_id = corr;
    hd.body_length = (uint32_t)bl;
    uint8_t *f = raw_frame(&hd, b, bl, payload, plen, len);
    free(b);
    return f;
}

/* Reads until EOF; returns the number of bytes that arrived before it, or
 * -1 when the connection stayed open for timeout_ms. */
static long closed_after(sc_t *c, int timeout_ms)
{
    long got = 0;
    long long deadline = sl_mono_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - sl_mono_ms();
        if (left <= 0) return -1;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr == 0) return -1;
        if (pr < 0 && errno == EINTR) continue;
        uint8_t buf[4096];
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return got;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return got;
        got += n;
    }
}

/* Receives one response and checks its code and correlation id. */
static void expect_response(sc_t *c, int code, uint64_t corr, const char *what)
{
    sl_response_t r;
    int rc = sc_recv(c, &r);
    CHECK_MSG(rc == 0, "%s: no response (sc_recv %d)", what, rc);
    if (rc != 0) return;
    CHECK_MSG(r.hdr->error_code == code, "%s: error_code %d, expected %d (%s)", what,
              (int)r.hdr->error_code, code, r.hdr->error_message ? r.hdr->error_message : "");
    CHECK_MSG(r.hdr->correlation_id == corr, "%s: correlation %" PRIu64 ", expected %" PRIu64, what,
              (uint64_t)r.hdr->correlation_id, corr);
    if (code != 0)
        CHECK_MSG(r.hdr->error_message && r.hdr->error_message[0], "%s: empty error message", what);
}

/* ---- the broker keeps serving and nothing was appended ------------------- */

static void still_serving(const char *after)
{
    sc_t c;
    CHECK_MSG(sc_connect(&c, h.port) == 0, "after %s: cannot connect", after);
    if (c.fd < 0) return;
    for (int32_t p = 0; p < 2; p++) {
        int64_t end = -1;
        int rc = sc_list_offsets(&c, "bi", p, -1, &end);
        CHECK_MSG(rc == 0 && end == bi_end[p],
                  "after %s: bi-%d list_offsets rc %d end %" PRId64 ", expected %" PRId64, after, p,
                  rc, end, bi_end[p]);
    }
    size_t len;
    uint8_t *b = bg_simple(3, 40, 1000, (uint32_t)ok_produced, &len);
    int64_t base = -1;
    int rc = sc_produce(&c, "ok", 0, 1, b, len, &base);
    CHECK_MSG(rc == 0 && base == ok_produced, "after %s: produce rc %d base %" PRId64, after, rc,
              base);
    if (rc == 0) ok_produced += 3;
    const uint8_t *p;
    size_t n = 0;
    int64_t hw = -1;
    rc = sc_fetch(&c, "ok", 0, base, 1 << 16, 0, 0, &p, &n, &hw);
    CHECK_MSG(rc == 0 && n == len && hw == ok_produced, "after %s: fetch rc %d len %zu hw %" PRId64,
              after, rc, n, hw);
    if (rc == 0 && n == len) CHECK_MSG(memcmp(p + 8, b + 8, len - 8) == 0, "after %s", after);
    free(b);
    sc_close(&c);
}

/* ---- framing ------------------------------------------------------------- */

static void test_frame_lengths(void)
{
    /* Length under 4: cannot even hold header_length; closed, no answer. */
    uint32_t small[] = {0, 1, 3};
    for (int i = 0; i < 3; i++) {
        sc_t c;
        connect_or_die(&c);
        uint8_t f[16] = {0};
        sl_put_be32(f, small[i]);
        CHECK(sc_send_raw(&c, f, sizeof f) == 0);
        long got = closed_after(&c, 3000);
        CHECK_MSG(got == 0, "frame length %u: %ld bytes then close (-1: still open)", small[i],
                  got);
        sc_close(&c);
        still_serving("frame length < 4");
    }
    /* Over max.request.size: closed, no answer; the prefix alone suffices. */
    uint32_t big[] = {MAX_REQUEST - 3, MAX_REQUEST, 1u << 30, UINT32_MAX};
    for (int i = 0; i < 4; i++) {
        sc_t c;
        connect_or_die(&c);
        uint8_t f[64];
        memset(f, 0x5a, sizeof f);
        sl_put_be32(f, big[i]);
        CHECK(sc_send_raw(&c, f, sizeof f) == 0);
        long got = closed_after(&c, 3000);
        CHECK_MSG(got == 0, "frame length %u: %ld bytes then close (-1: still open)", big[i], got);
        sc_close(&c);
    }
    /* The whole oversized frame, sent for real (the broker may reset us
     * mid-write: that is fine). */
    {
        sc_t c;
        connect_or_die(&c);
        size_t n = MAX_REQUEST + 4096;
        uint8_t *f = calloc(1, n);
        CHECK_FATAL(f != NULL);
        sl_put_be32(f, (uint32_t)(n - 4));
        (void)sc_send_raw(&c, f, n);
        free(f);
        CHECK(closed_after(&c, 3000) >= 0);
        sc_close(&c);
    }
    /* Exactly at the limit (length = max - 4) is a legal frame size: a
     * produce whose batch is too large gets an answer, not a close. */
    {
        sc_t c;
        connect_or_die(&c);
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        m.topic = "bi";
        m.partition = 0;
        m.acks = 1;
        size_t hlen;
        uint8_t *probe = good_frame(SLUICE__API_KEY__PRODUCE, 41, &m.base, NULL, 0, &hlen);
        free(probe);
        size_t plen = MAX_REQUEST - hlen;
        uint8_t *payload = calloc(1, plen);
        CHECK_FATAL(payload != NULL);
        size_t len;
        uint8_t *f = good_frame(SLUICE__API_KEY__PRODUCE, 41, &m.base, payload, plen, &len);
        CHECK_EQ_INT(len, MAX_REQUEST);
        CHECK(sc_send_raw(&c, f, len) == 0);
        expect_response(&c, SL_ERR_CORRUPT_MESSAGE, 41, "frame of exactly max.request.size");
        free(f);
        free(payload);
        int64_t end;
        CHECK_EQ_INT(sc_list_offsets(&c, "bi", 0, -1, &end), 0);
        sc_close(&c);
    }
    still_serving("frame length > max.request.size");
}

static void test_headers(void)
{
    /* header_length 0, and larger than the frame: INVALID_REQUEST with
     * correlation 0, then close. */
    uint32_t hls[] = {0, 9, 1000, UINT32_MAX};
    for (int i = 0; i < 4; i++) {
        sc_t c;
        connect_or_die(&c);
        uint8_t f[12];
        memset(f + 8, 0x08, 4);
        sl_put_be32(f, 8);
        sl_put_be32(f + 4, hls[i]);
        CHECK(sc_send_raw(&c, f, sizeof f) == 0);
        char what[64];
        snprintf(what, sizeof what, "header_length %u in a 12-byte frame", hls[i]);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 0, what);
        CHECK_MSG(sc_wait_closed(&c, 3000) == 1, "%s: not closed", what);
        sc_close(&c);
    }
    still_serving("bad header_length");

    /* A header that is not protobuf; a valid request right behind it in the
     * same write must not be answered (the stream is no longer trusted). */
    {
        sc_t c;
        connect_or_die(&c);
        uint8_t f[16];
        memset(f, 0xff, sizeof f);
        sl_put_be32(f, 12);
        sl_put_be32(f + 4, 8);
        Sluice__ListOffsetsRequest m = SLUICE__LIST_OFFSETS_REQUEST__INIT;
        m.topic = "bi";
        m.timestamp = -1;
        size_t glen;
        uint8_t *g = good_frame(SLUICE__API_KEY__LIST_OFFSETS, 5, &m.base, NULL, 0, &glen);
        uint8_t *both = malloc(sizeof f + glen);
        CHECK_FATAL(both != NULL);
        memcpy(both, f, sizeof f);
        memcpy(both + sizeof f, g, glen);
        CHECK(sc_send_raw(&c, both, sizeof f + glen) == 0);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 0, "garbage header");
        sl_response_t r;
        int rc = sc_recv(&c, &r);
        CHECK_MSG(rc == -1, "a request after a garbage header was answered (sc_recv %d)", rc);
        free(both);
        free(g);
        sc_close(&c);
    }
    still_serving("garbage header");

    /* body_length beyond the frame. */
    {
        sc_t c;
        connect_or_die(&c);
        Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
        hd.api = SLUICE__API_KEY__LIST_OFFSETS;
        hd.version = 1;
        hd.correlation_id = 77;
        hd.body_length = 1000;
        uint8_t body[10] = {0};
        size_t len;
        uint8_t *f = raw_frame(&hd, body, sizeof body, NULL, 0, &len);
        CHECK(sc_send_raw(&c, f, len) == 0);
        free(f);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 0, "body_length beyond the frame");
        CHECK_MSG(sc_wait_closed(&c, 3000) == 1, "body_length beyond the frame: not closed");
        sc_close(&c);
    }
    still_serving("body_length beyond the frame");
}

/* Errors that leave the stream intact: answered with the request's own
 * correlation id, and the next request on the same connection works. */
static void test_recoverable_requests(void)
{
    sc_t c;
    connect_or_die(&c);
    /* Unknown request type, pipelined with a valid request. */
    {
        Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
        hd.api = (Sluice__ApiKey)99;
        hd.version = 1;
        hd.correlation_id = 901;
        hd.body_length = 3;
        size_t l1, l2;
        uint8_t *f1 = raw_frame(&hd, "\x08\x01\x10", 3, "xyz", 3, &l1);
        Sluice__ListOffsetsRequest m = SLUICE__LIST_OFFSETS_REQUEST__INIT;
        m.topic = "bi";
        m.timestamp = -1;
        uint8_t *f2 = good_frame(SLUICE__API_KEY__LIST_OFFSETS, 902, &m.base, NULL, 0, &l2);
        uint8_t *both = malloc(l1 + l2);
        CHECK_FATAL(both != NULL);
        memcpy(both, f1, l1);
        memcpy(both + l1, f2, l2);
        CHECK(sc_send_raw(&c, both, l1 + l2) == 0);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 901, "unknown api 99");
        expect_response(&c, 0, 902, "list_offsets after unknown api");
        free(both);
        free(f1);
        free(f2);
        hd.api = SLUICE__API_KEY__API_NONE;
        hd.correlation_id = 903;
        hd.body_length = 0;
        f1 = raw_frame(&hd, NULL, 0, NULL, 0, &l1);
        CHECK(sc_send_raw(&c, f1, l1) == 0);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 903, "api 0 (API_NONE)");
        free(f1);
    }
    /* Undecodable bodies for known types. */
    int apis[] = {SLUICE__API_KEY__HELLO,        SLUICE__API_KEY__METADATA,
                  SLUICE__API_KEY__CREATE_TOPIC, SLUICE__API_KEY__DELETE_TOPIC,
                  SLUICE__API_KEY__PRODUCE,      SLUICE__API_KEY__FETCH,
                  SLUICE__API_KEY__LIST_OFFSETS};
    for (int i = 0; i < 7; i++) {
        uint8_t junk[24];
        memset(junk, 0xff, sizeof junk);
        Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
        hd.api = (Sluice__ApiKey)apis[i];
        hd.version = 1;
        hd.correlation_id = 1000 + (uint64_t)i;
        hd.body_length = sizeof junk;
        size_t len;
        /* A produce also carries a valid batch: it must not be appended. */
        size_t blen = 0;
        uint8_t *batch = apis[i] == SLUICE__API_KEY__PRODUCE ? bg_simple(1, 10, 1, 1, &blen) : NULL;
        uint8_t *f = raw_frame(&hd, junk, sizeof junk, batch, blen, &len);
        CHECK(sc_send_raw(&c, f, len) == 0);
        char what[64];
        snprintf(what, sizeof what, "garbage body for api %d", apis[i]);
        expect_response(&c, SL_ERR_INVALID_REQUEST, 1000 + (uint64_t)i, what);
        free(f);
        free(batch);
    }
    int64_t end = -1;
    CHECK_EQ_INT(sc_list_offsets(&c, "bi", 0, -1, &end), 0);
    CHECK_EQ_INT(end, bi_end[0]);
    sc_close(&c);
    still_serving("unknown api / garbage bodies");
}

/* ---- produce payloads ---------------------------------------------------- */

static int produce_to(sc_t *c, const char *topic, int32_t part, int acks, const void *b, size_t len)
{
    int64_t base;
    return sc_produce(c, topic, part, acks, b, len, &base);
}

static void test_bad_batches(void)
{
    sc_t c;
    connect_or_die(&c);
    size_t len;
    uint8_t *good = bg_simple(4, 100, 5000, 7, &len);
    CHECK_FATAL(good != NULL);
    uint8_t *b = malloc(len * 2);
    CHECK_FATAL(b != NULL);

    /* CRC mismatch: a flipped bit in the records. */
    memcpy(b, good, len);
    b[len - 5] ^= 0x10;
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_CORRUPT_MESSAGE);
    /* ... and in the CRC field itself. */
    memcpy(b, good, len);
    b[SL_BATCH_OFF_CRC] ^= 1;
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_CORRUPT_MESSAGE);
    /* Truncated: batchLength promises more than is there. */
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, good, len - 10), SL_ERR_CORRUPT_MESSAGE);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, good, 30), SL_ERR_CORRUPT_MESSAGE);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, good, 5), SL_ERR_CORRUPT_MESSAGE);
    /* A negative batchLength. */
    memcpy(b, good, len);
    sl_put_be32(b + SL_BATCH_OFF_LENGTH, 0xfffffff0u);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_CORRUPT_MESSAGE);
    /* Trailing bytes after a whole batch. */
    memcpy(b, good, len);
    memset(b + len, 0, 20);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len + 20), SL_ERR_CORRUPT_MESSAGE);
    /* Magic 1 (whatever the CRC says). */
    memcpy(b, good, len);
    b[SL_BATCH_OFF_MAGIC] = 1;
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    /* lastOffsetDelta that does not match recordsCount (CRC made valid). */
    memcpy(b, good, len);
    sl_put_be32(b + SL_BATCH_OFF_LAST_OFFSET_DELTA, 4);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_INVALID_RECORD);
    memcpy(b, good, len);
    sl_put_be32(b + SL_BATCH_OFF_RECORDS_COUNT, 0);
    sl_put_be32(b + SL_BATCH_OFF_LAST_OFFSET_DELTA, UINT32_MAX);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_INVALID_RECORD);
    /* Unknown compression codec 7. */
    memcpy(b, good, len);
    sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, 7);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, len), SL_ERR_INVALID_RECORD);
    /* A control batch: producers may not write those; and an idempotent
     * batch (producerId >= 0) without a sequence (batch.h,
     * sl_batch_validate_produce). Aimed at their own topic, so a failure here
     * does not cascade into the other cases' "nothing appended" checks. */
    memcpy(b, good, len);
    sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, SL_BATCH_ATTR_CONTROL);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bictl", 0, 1, b, len), SL_ERR_INVALID_RECORD);
    memcpy(b, good, len);
    sl_put_be64(b + SL_BATCH_OFF_PRODUCER_ID, 42);
    bg_fix_crc(b, len);
    CHECK_EQ_INT(produce_to(&c, "bictl", 0, 1, b, len), SL_ERR_INVALID_RECORD);
    {
        int64_t e = -1;
        CHECK_EQ_INT(sc_list_offsets(&c, "bictl", 0, -1, &e), 0);
        CHECK_MSG(e == 0, "control / sequence-less idempotent batches were appended: end %" PRId64,
                  e);
    }
    /* One good batch followed by a bad one: all or nothing. */
    memcpy(b, good, len);
    memcpy(b + len, good, len);
    b[2 * len - 1] ^= 1;
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, b, 2 * len), SL_ERR_CORRUPT_MESSAGE);
    /* Larger than message.max.bytes (but the frame is within limits). */
    size_t blen;
    uint8_t *big = bg_simple(1, MAX_MESSAGE + 100, 1, 1, &blen);
    CHECK_FATAL(big != NULL && blen < MAX_REQUEST - 1024);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, big, blen), SL_ERR_MESSAGE_TOO_LARGE);
    free(big);
    /* Exactly message.max.bytes is accepted (to partition 1). */
    /* Exactly message.max.bytes is accepted (to partition 1); varint widths
     * make the value size a small search. */
    big = NULL;
    for (long v = MAX_MESSAGE - 200, k = 0; k < 4; k++) {
        free(big);
        big = bg_simple(1, (size_t)v, 1, 1, &blen);
        CHECK_FATAL(big != NULL);
        if (blen == MAX_MESSAGE) break;
        v += (long)MAX_MESSAGE - (long)blen;
    }
    CHECK_EQ_INT(blen, MAX_MESSAGE);
    CHECK_EQ_INT(produce_to(&c, "bi", 1, 1, big, blen), 0);
    bi_end[1] += 1;
    big[blen - 1] ^= 1; /* the same size, corrupt */
    CHECK_EQ_INT(produce_to(&c, "bi", 1, 1, big, blen), SL_ERR_CORRUPT_MESSAGE);
    free(big);
    /* No payload at all. */
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 1, NULL, 0), SL_ERR_CORRUPT_MESSAGE);
    /* acks out of range (and the batch is good: nothing may be written). */
    CHECK_EQ_INT(produce_to(&c, "bi", 0, 5, good, len), SL_ERR_INVALID_REQUIRED_ACKS);
    CHECK_EQ_INT(produce_to(&c, "bi", 0, -2, good, len), SL_ERR_INVALID_REQUIRED_ACKS);
    /* The connection is still usable after all of that. */
    int64_t end = -1;
    CHECK_EQ_INT(sc_list_offsets(&c, "bi", 0, -1, &end), 0);
    CHECK_EQ_INT(end, bi_end[0]);
    sc_close(&c);
    still_serving("bad batches");

    /* acks=0 with a bad batch: no response ever, the connection is closed. */
    memcpy(b, good, len);
    b[len - 1] ^= 0x40;
    {
        sc_t z;
        connect_or_die(&z);
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        m.topic = "bi";
        m.partition = 0;
        m.acks = 0;
        CHECK(sc_send(&z, SLUICE__API_KEY__PRODUCE, &m.base, good, len) != 0); /* fine */
        CHECK(sc_send(&z, SLUICE__API_KEY__PRODUCE, &m.base, b, len) != 0);    /* bad */
        long got = closed_after(&z, 3000);
        CHECK_MSG(got == 0, "acks=0 bad batch: %ld bytes then close (-1: still open)", got);
        sc_close(&z);
        bi_end[0] += 4; /* the good acks=0 batch before it was appended */
    }
    /* acks=0 with a bad acks-independent error (invalid topic) also closes. */
    {
        sc_t z;
        connect_or_die(&z);
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        m.topic = "bad/name";
        m.acks = 0;
        CHECK(sc_send(&z, SLUICE__API_KEY__PRODUCE, &m.base, good, len) != 0);
        long got = closed_after(&z, 3000);
        CHECK_MSG(got == 0, "acks=0 invalid topic: %ld bytes then close (-1: still open)", got);
        sc_close(&z);
    }
    free(b);
    free(good);
    still_serving("acks=0 with a bad batch");
}

/* CreateTopic with per-topic configs (k1, v1, k2, v2, ..., NULL). */
static int create_with(sc_t *c, const char *name, const char *const *kv)
{
    Sluice__CreateTopicRequest m = SLUICE__CREATE_TOPIC_REQUEST__INIT;
    Sluice__CreateTopicRequest__ConfigsEntry e[8], *ep[8];
    size_t n = 0;
    for (; kv[2 * n] && n < 8; n++) {
        sluice__create_topic_request__configs_entry__init(&e[n]);
        e[n].key = (char *)kv[2 * n];
        e[n].value = (char *)kv[2 * n + 1];
        ep[n] = &e[n];
    }
    m.name = (char *)name;
    m.partitions = 1;
    m.n_configs = n;
    m.configs = ep;
    if (!sc_send(c, SLUICE__API_KEY__CREATE_TOPIC, &m.base, NULL, 0)) return -1;
    sl_response_t r;
    if (sc_recv(c, &r) != 0) return -1;
    return r.hdr->error_code;
}

static int delete_topic(sc_t *c, const char *name)
{
    Sluice__DeleteTopicRequest m = SLUICE__DELETE_TOPIC_REQUEST__INIT;
    m.name = (char *)name;
    if (!sc_send(c, SLUICE__API_KEY__DELETE_TOPIC, &m.base, NULL, 0)) return -1;
    sl_response_t r;
    if (sc_recv(c, &r) != 0) return -1;
    return r.hdr->error_code;
}

/* ---- topics, partitions, offsets ----------------------------------------- */

static void test_names_and_ranges(void)
{
    sc_t c;
    connect_or_die(&c);
    char longname[301];
    memset(longname, 'x', 300);
    longname[300] = 0;
    char just[250];
    memset(just, 'y', 249);
    just[249] = 0;
    const char *bad[] = {"bad/name", "", longname, "..", ".", "a b", "tab\tname", "ünï"};
    size_t len;
    uint8_t *good = bg_simple(1, 10, 1, 3, &len);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(produce_to(&c, bad[i], 0, 1, good, len) == SL_ERR_INVALID_TOPIC,
                  "produce to \"%.20s\"", bad[i]);
        CHECK_MSG(sc_create_topic(&c, bad[i], 1) == SL_ERR_INVALID_TOPIC, "create \"%.20s\"",
                  bad[i]);
        CHECK_MSG(sc_fetch(&c, bad[i], 0, 0, 100, 0, 0, NULL, NULL, NULL) == SL_ERR_INVALID_TOPIC,
                  "fetch \"%.20s\"", bad[i]);
        int64_t off;
        CHECK_MSG(sc_list_offsets(&c, bad[i], 0, -1, &off) == SL_ERR_INVALID_TOPIC,
                  "list_offsets \"%.20s\"", bad[i]);
    }
    /* Delete: bad names, a topic that does not exist. */
    for (int i = 0; i < 8; i++)
        CHECK_MSG(delete_topic(&c, bad[i]) == SL_ERR_INVALID_TOPIC, "delete \"%.20s\"", bad[i]);
    CHECK_EQ_INT(delete_topic(&c, "never-made"), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* Per-topic configs: unknown keys, bad values, inconsistent pairs. */
    CHECK_EQ_INT(create_with(&c, "cfg-bad", (const char *const[]){"no.such.key", "1", NULL}),
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(create_with(&c, "cfg-bad", (const char *const[]){"segment.bytes", "abc", NULL}),
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(create_with(&c, "cfg-bad", (const char *const[]){"segment.bytes", "", NULL}),
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(create_with(&c, "cfg-bad",
                             (const char *const[]){"segment.bytes", "65536\nretention.ms=1", NULL}),
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(create_with(&c, "cfg-bad",
                             (const char *const[]){"segment.bytes", "65536", "max.message.bytes",
                                                   "10", NULL}), /* below its minimum */
                 SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(sc_list_offsets(&c, "cfg-bad", 0, -1, &(int64_t){0}),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(create_with(&c, "cfg-ok", (const char *const[]){"segment.bytes", "65536", NULL}),
                 0);
    /* 249 characters is the longest legal name. */
    CHECK_EQ_INT(sc_create_topic(&c, just, 1), 0);
    /* Partition counts: 0 means num.partitions; -1 and 10001 are invalid. */
    CHECK_EQ_INT(sc_create_topic(&c, "parts-neg", -1), SL_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(sc_create_topic(&c, "parts-big", 10001), SL_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(sc_create_topic(&c, "parts-min", INT32_MIN), SL_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(sc_create_topic(&c, "parts-default", 0), 0);
    int64_t off;
    CHECK_EQ_INT(sc_list_offsets(&c, "parts-neg", 0, -1, &off), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(sc_list_offsets(&c, "parts-big", 0, -1, &off), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(sc_list_offsets(&c, "parts-default", 0, -1, &off), 0);
    /* Partitions that do not exist. */
    CHECK_EQ_INT(produce_to(&c, "bi", 2, 1, good, len), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(produce_to(&c, "bi", -1, 1, good, len), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(sc_fetch(&c, "bi", -1, 0, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* Offsets out of range: an error, not a disconnect; then a good fetch. */
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, -1, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, INT64_MIN, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, bi_end[0] + 1, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, INT64_MAX, 100, 0, 0, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    /* ... also for a long poll, which must answer at once. */
    long long t0 = sl_mono_ms();
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, bi_end[0] + 100, 100, 1, 5000, NULL, NULL, NULL),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_MSG(sl_mono_ms() - t0 < 2000, "out-of-range long poll took %lld ms", sl_mono_ms() - t0);
    const uint8_t *p;
    size_t n = 99;
    int64_t hw;
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, bi_end[0], 100, 0, 0, &p, &n, &hw), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(hw, bi_end[0]);
    CHECK_EQ_INT(sc_fetch(&c, "bi", 0, 0, 100, 0, 0, &p, &n, &hw), 0);
    CHECK(n > 0);
    /* list_offsets with a timestamp below -2. */
    CHECK_EQ_INT(sc_list_offsets(&c, "bi", 0, -3, &off), SL_ERR_INVALID_REQUEST);
    free(good);
    sc_close(&c);
    still_serving("invalid names, partitions and offsets");

    /* No directory was made for any rejected name or partition count. */
    char path[600];
    snprintf(path, sizeof path, "%s/topics", h.data);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    while (d) {
        struct dirent *de = readdir(d);
        if (!de) break;
        const char *nm = de->d_name;
        if (nm[0] == '.') continue;
        int known = strcmp(nm, "bi") == 0 || strcmp(nm, "ok") == 0 || strcmp(nm, "bictl") == 0 ||
                    strcmp(nm, "cfg-ok") == 0 || strcmp(nm, "parts-default") == 0 ||
                    strcmp(nm, just) == 0;
        CHECK_MSG(known, "unexpected topic directory %.40s", nm);
    }
    if (d) closedir(d);
}

/* ---- streams of garbage and stalls --------------------------------------- */

static uint32_t xs(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void test_garbage(void)
{
    for (uint32_t seed = 1; seed <= 12; seed++) {
        uint32_t s = seed * 2654435761u;
        uint8_t buf[4096];
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)xs(&s);
        /* Odd seeds: raw garbage (its first word is a random length, with
         * the top bit forced so it cannot be a plausible partial frame);
         * even seeds: a correct frame length around garbage, so the header
         * parser sees it. */
        if (seed & 1)
            buf[0] |= 0x80;
        else
            sl_put_be32(buf, sizeof buf - 4);
        sc_t c;
        connect_or_die(&c);
        CHECK(sc_send_raw(&c, buf, sizeof buf) == 0);
        CHECK_MSG(sc_wait_closed(&c, 3000) == 1, "garbage seed %u: not closed", seed);
        sc_close(&c);
    }
    still_serving("random garbage");
}

/* Returns the connection that stalls (kept open by the caller). */
static void test_stall(sc_t *stalled)
{
    connect_or_die(stalled);
    uint8_t f[14];
    memset(f, 0, sizeof f);
    sl_put_be32(f, 60000);
    sl_put_be32(f + 4, 4);
    CHECK(sc_send_raw(stalled, f, sizeof f) == 0);
    /* Other clients are served meanwhile, promptly. */
    long long t0 = sl_mono_ms();
    for (int i = 0; i < 5; i++) still_serving("a stalled half frame");
    long long dt = sl_mono_ms() - t0;
    CHECK_MSG(dt < 5000, "5 round trips beside a stalled frame took %lld ms", dt);
    /* The stalled connection is still open (it may yet send the rest). */
    struct pollfd pf = {.fd = stalled->fd, .events = POLLIN};
    CHECK_EQ_INT(poll(&pf, 1, 200), 0);
    /* Many of them at once do not hurt either. */
    sc_t more[20];
    for (int i = 0; i < 20; i++) {
        connect_or_die(&more[i]);
        CHECK(sc_send_raw(&more[i], f, sizeof f) == 0);
    }
    still_serving("20 stalled half frames");
    for (int i = 0; i < 20; i++) sc_close(&more[i]);
}

/* ---- main ---------------------------------------------------------------- */

int main(void)
{
    harness_init(&h, "it-badinput");
    char a1[64], a2[64];
    snprintf(a1, sizeof a1, "--max.request.size=%d", MAX_REQUEST);
    snprintf(a2, sizeof a2, "--message.max.bytes=%d", MAX_MESSAGE);
    const char *args[] = {a1, a2, "--num.reactors=2", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);

    /* Set-up: "bi" (the target of bad input) with a few good records. */
    sc_t c;
    connect_or_die(&c);
    CHECK_FATAL(sc_create_topic(&c, "bi", 2) == 0);
    CHECK_FATAL(sc_create_topic(&c, "ok", 1) == 0);
    CHECK_FATAL(sc_create_topic(&c, "bictl", 1) == 0);
    size_t len;
    uint8_t *b = bg_simple(5, 20, 1, 1, &len);
    int64_t base;
    CHECK_FATAL(sc_produce(&c, "bi", 0, 1, b, len, &base) == 0);
    bi_end[0] = 5;
    free(b);
    sc_close(&c);
    still_serving("set-up");

    test_frame_lengths();
    test_headers();
    test_recoverable_requests();
    test_bad_batches();
    test_names_and_ranges();
    test_garbage();
    sc_t stalled;
    test_stall(&stalled);

    char *page = harness_metrics(&h);
    CHECK(page != NULL);
    if (page) {
        double pe = harness_metric(page, "sluice_protocol_errors_total");
        CHECK_MSG(pe >= 12, "sluice_protocol_errors_total %g", pe);
        double bad = harness_metric(
            page, "sluice_requests_total{type=\"produce\",error=\"CORRUPT_MESSAGE\"}");
        CHECK_MSG(bad > 0, "produce CORRUPT_MESSAGE count %g", bad);
        free(page);
    }
    /* The log says why each kind of connection was closed. */
    CHECK(harness_log_contains(&h, "closed: INVALID_REQUEST: frame length 0"));
    CHECK(harness_log_contains(&h, "closed: MESSAGE_TOO_LARGE: frame length 4294967295"));
    CHECK(harness_log_contains(&h, "INVALID_REQUEST: header length 0 does not fit"));
    CHECK(harness_log_contains(&h, "request header does not decode (closing)"));
    CHECK(harness_log_contains(&h, "closed: acks=0 produce failed: CORRUPT_MESSAGE"));
    CHECK(harness_log_contains(&h, "closed: acks=0 produce failed: INVALID_TOPIC"));

    /* SIGTERM with a half-sent frame still open: a prompt, clean exit. */
    long long t0 = sl_mono_ms();
    int st = harness_stop(&h, SIGTERM);
    long long dt = sl_mono_ms() - t0;
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status 0x%x", st);
    CHECK_MSG(dt < 8000, "SIGTERM took %lld ms", dt);
    CHECK(harness_log_contains(&h, "clean shutdown"));
    sc_close(&stalled);
    harness_cleanup(&h);
    return check_exit();
}
