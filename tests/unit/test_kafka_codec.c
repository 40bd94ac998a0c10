/* test_kafka_codec.c — proto/kafka.c: every served API at every version
 * against requests encoded here by hand (an encoder independent of the
 * decoder, with the version gates spelled out per field), the captured
 * librdkafka ApiVersions v3, hostile frames (truncation at every byte,
 * huge counts, NULs, nulls, trailing bytes), frame peeking, and the
 * response writer read back with kr_*. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "codec.h"
#include "kafka.h"

/* ---- a request encoder ---------------------------------------------------- */

typedef struct bb {
    uint8_t b[16384];
    size_t n;
} bb_t;

static void bb_raw(bb_t *b, const void *p, size_t n)
{
    CHECK_FATAL(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void bb_i8(bb_t *b, int8_t v)
{
    uint8_t x = (uint8_t)v;
    bb_raw(b, &x, 1);
}

static void bb_i16(bb_t *b, int16_t v)
{
    uint8_t x[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    bb_raw(b, x, 2);
}

static void bb_i32(bb_t *b, int32_t v)
{
    uint8_t x[4];
    sl_put_be32(x, (uint32_t)v);
    bb_raw(b, x, 4);
}

static void bb_i64(bb_t *b, int64_t v)
{
    uint8_t x[8];
    sl_put_be64(x, (uint64_t)v);
    bb_raw(b, x, 8);
}

/* NULL = null string (-1). */
static void bb_str(bb_t *b, const char *s)
{
    if (!s) {
        bb_i16(b, -1);
        return;
    }
    bb_i16(b, (int16_t)strlen(s));
    bb_raw(b, s, strlen(s));
}

/* NULL = null bytes (-1). */
static void bb_bytes(bb_t *b, const void *p, int32_t n)
{
    if (!p) {
        bb_i32(b, -1);
        return;
    }
    bb_i32(b, n);
    bb_raw(b, p, (size_t)n);
}

/* Size placeholder + request header v1. */
static void bb_begin(bb_t *b, int16_t key, int16_t ver, int32_t corr, const char *client)
{
    b->n = 0;
    bb_i32(b, 0);
    bb_i16(b, key);
    bb_i16(b, ver);
    bb_i32(b, corr);
    bb_str(b, client);
}

static void bb_end(bb_t *b)
{
    sl_put_be32(b->b, (uint32_t)(b->n - 4));
}

static uint32_t rng = 0x2545F491;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* ---- decoding ------------------------------------------------------------- */

static sl_arena_t arena;
static uint8_t *frame_copy; /* the decoded frame; views point into it */

/* Decodes an exact-size heap copy of p[0..n) (so ASan sees any read past
 * the frame) with a reset arena and a cleared error. */
static int decode_raw(const uint8_t *p, size_t n, sl_arena_t *a, kf_request_t *q, sl_err_t *err)
{
    free(frame_copy);
    frame_copy = malloc(n ? n : 1);
    CHECK_FATAL(frame_copy != NULL);
    if (n) memcpy(frame_copy, p, n);
    sl_arena_reset(a);
    sl_err_clear(err);
    return kf_request_decode(frame_copy, (uint32_t)n, a, q, err);
}

static int decode(const bb_t *b, kf_request_t *q, sl_err_t *err)
{
    return decode_raw(b->b, b->n, &arena, q, err);
}

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        CHECK_MSG(sa_ &&sb_ ? strcmp(sa_, sb_) == 0 : sa_ == sb_, "\"%s\" != \"%s\"",              \
                  sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                     \
    } while (0)

/* Checks the code and that a failure came with a message. */
#define CHECK_CODE(expr, code, errp)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        CHECK_EQ_INT(rc_, code);                                                                   \
        if (rc_ != SL_OK) CHECK_MSG((errp)->msg[0] != '\0', "no message for code %d", rc_);        \
        if (rc_ != (code)) fprintf(stderr, "  message: %s\n", (errp)->msg);                        \
    } while (0)

/* The message contains `want`. */
#define CHECK_HAS(errp, want)                                                                      \
    CHECK_MSG(strstr((errp)->msg, (want)) != NULL, "message \"%s\" lacks \"%s\"", (errp)->msg,     \
              (want))

/* Checks a decode that must succeed, with the header. */
static bool decode_ok(const bb_t *b, kf_request_t *q, int16_t key, int16_t ver)
{
    sl_err_t err;
    int rc = decode(b, q, &err);
    CHECK_MSG(rc == SL_OK, "%s v%d: rc %d: %s", kf_api_name(key), ver, rc, err.msg);
    CHECK_EQ_INT(q->h.api_key, key);
    CHECK_EQ_INT(q->h.api_version, ver);
    return rc == SL_OK;
}

/* ---- Produce -------------------------------------------------------------- */

static uint8_t *batch;
static size_t batch_len;

static void enc_produce(bb_t *b, int v)
{
    bb_begin(b, KF_PRODUCE, (int16_t)v, 11, "rdkafka");
    if (v >= 3) bb_str(b, NULL);
    bb_i16(b, -1);
    bb_i32(b, 30000);
    bb_i32(b, 2);
    bb_str(b, "orders");
    bb_i32(b, 2);
    bb_i32(b, 0);
    bb_bytes(b, batch, (int32_t)batch_len);
    bb_i32(b, 3);
    bb_bytes(b, NULL, 0);
    bb_str(b, "e");
    bb_i32(b, 1);
    bb_i32(b, 5);
    bb_bytes(b, "", 0);
    bb_end(b);
}

static void test_produce(void)
{
    int max = kf_api_max(KF_PRODUCE);
    for (int v = 0; v <= max; v++) {
        bb_t b;
        kf_request_t q;
        enc_produce(&b, v);
        if (!decode_ok(&b, &q, KF_PRODUCE, (int16_t)v)) continue;
        const kf_produce_req_t *p = &q.u.produce;
        CHECK_EQ_INT(q.h.correlation_id, 11);
        CHECK_STR(q.h.client_id, "rdkafka");
        CHECK(p->transactional_id == NULL);
        CHECK_EQ_INT(p->acks, -1);
        CHECK_EQ_INT(p->timeout_ms, 30000);
        CHECK_FATAL(p->ntopics == 2);
        CHECK_STR(p->topics[0].name, "orders");
        CHECK_FATAL(p->topics[0].nparts == 2);
        CHECK_EQ_INT(p->topics[0].parts[0].index, 0);
        CHECK_EQ_INT(p->topics[0].parts[0].records_len, batch_len);
        CHECK(p->topics[0].parts[0].records &&
              memcmp(p->topics[0].parts[0].records, batch, batch_len) == 0);
        /* a view into the frame, not a copy: the broker assigns offsets in place */
        CHECK(p->topics[0].parts[0].records > frame_copy &&
              p->topics[0].parts[0].records < frame_copy + b.n);
        CHECK_EQ_INT(p->topics[0].parts[1].index, 3);
        CHECK(p->topics[0].parts[1].records == NULL);
        CHECK_EQ_INT(p->topics[0].parts[1].records_len, 0);
        CHECK_STR(p->topics[1].name, "e");
        CHECK_FATAL(p->topics[1].nparts == 1);
        CHECK_EQ_INT(p->topics[1].parts[0].index, 5);
        CHECK(p->topics[1].parts[0].records != NULL); /* empty, not null */
        CHECK_EQ_INT(p->topics[1].parts[0].records_len, 0);
    }
    /* A transactional id (v3+). */
    bb_t b;
    kf_request_t q;
    bb_begin(&b, KF_PRODUCE, 7, 1, NULL);
    bb_str(&b, "txn-1");
    bb_i16(&b, 1);
    bb_i32(&b, 5);
    bb_i32(&b, 0);
    bb_end(&b);
    if (decode_ok(&b, &q, KF_PRODUCE, 7)) {
        CHECK(q.h.client_id == NULL);
        CHECK_STR(q.u.produce.transactional_id, "txn-1");
        CHECK_EQ_INT(q.u.produce.acks, 1);
        CHECK_EQ_INT(q.u.produce.ntopics, 0);
    }
}

/* ---- Fetch ---------------------------------------------------------------- */

static void enc_fetch(bb_t *b, int v)
{
    bb_begin(b, KF_FETCH, (int16_t)v, 21, "c");
    bb_i32(b, -1);
    bb_i32(b, 500);
    bb_i32(b, 1);
    if (v >= 3) bb_i32(b, 52428800);
    if (v >= 4) bb_i8(b, 1);
    if (v >= 7) {
        bb_i32(b, 77);
        bb_i32(b, 78);
    }
    bb_i32(b, 2);
    for (int t = 0; t < 2; t++) {
        bb_str(b, t ? "t2" : "t1");
        int np = t ? 1 : 2;
        bb_i32(b, np);
        for (int p = 0; p < np; p++) {
            bb_i32(b, 10 * t + p);
            if (v >= 9) bb_i32(b, 40 + p);
            bb_i64(b, INT64_C(1) << 40 | (int64_t)(10 * t + p));
            if (v >= 5) bb_i64(b, 1000 + p);
            bb_i32(b, 1048576 + p);
        }
    }
    if (v >= 7) {
        bb_i32(b, 1);
        bb_str(b, "gone");
        bb_i32(b, 2);
        bb_i32(b, 1);
        bb_i32(b, 2);
    }
    if (v >= 11) bb_str(b, "rack-a");
    bb_end(b);
}

static void test_fetch(void)
{
    int max = kf_api_max(KF_FETCH);
    for (int v = 0; v <= max; v++) {
        bb_t b;
        kf_request_t q;
        enc_fetch(&b, v);
        if (!decode_ok(&b, &q, KF_FETCH, (int16_t)v)) continue;
        const kf_fetch_req_t *f = &q.u.fetch;
        CHECK_EQ_INT(q.h.correlation_id, 21);
        CHECK_EQ_INT(f->replica_id, -1);
        CHECK_EQ_INT(f->max_wait_ms, 500);
        CHECK_EQ_INT(f->min_bytes, 1);
        CHECK_EQ_INT(f->max_bytes, v >= 3 ? 52428800 : INT32_MAX);
        CHECK_EQ_INT(f->isolation_level, v >= 4 ? 1 : 0);
        CHECK_EQ_INT(f->session_id, v >= 7 ? 77 : 0);
        CHECK_EQ_INT(f->session_epoch, v >= 7 ? 78 : -1);
        CHECK_FATAL(f->ntopics == 2);
        for (int t = 0; t < 2; t++) {
            CHECK_STR(f->topics[t].topic, t ? "t2" : "t1");
            CHECK_FATAL(f->topics[t].nparts == (t ? 1 : 2));
            for (int p = 0; p < f->topics[t].nparts; p++) {
                const kf_fetch_part_t *fp = &f->topics[t].parts[p];
                CHECK_EQ_INT(fp->partition, 10 * t + p);
                CHECK_EQ_INT(fp->current_leader_epoch, v >= 9 ? 40 + p : -1);
                CHECK_EQ_INT(fp->fetch_offset, INT64_C(1) << 40 | (int64_t)(10 * t + p));
                CHECK_EQ_INT(fp->log_start_offset, v >= 5 ? 1000 + p : -1);
                CHECK_EQ_INT(fp->partition_max_bytes, 1048576 + p);
            }
        }
    }
}

/* Fetch v11 exactly as librdkafka 2.0.2 sends it (kafka-protocol.md §3.3's
 * observed defaults), spelled out byte by byte. */
static const uint8_t fetch_v11[] = {
    0x00, 0x00, 0x00, 0x57,                              /* size 87 */
    0x00, 0x01, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x05,      /* Fetch v11, corr 5 */
    0x00, 0x07, 'r',  'd',  'k',  'a',  'f',  'k',  'a', /* client_id */
    0xff, 0xff, 0xff, 0xff,                              /* replica_id -1 */
    0x00, 0x00, 0x01, 0xf4,                              /* max_wait_ms 500 */
    0x00, 0x00, 0x00, 0x01,                              /* min_bytes 1 */
    0x03, 0x20, 0x00, 0x00,                              /* max_bytes 52428800 */
    0x01,                                                /* isolation_level 1 */
    0x00, 0x00, 0x00, 0x00,                              /* session_id 0 */
    0xff, 0xff, 0xff, 0xff,                              /* session_epoch -1 */
    0x00, 0x00, 0x00, 0x01,                              /* topics: 1 */
    0x00, 0x01, 't',                                     /* topic "t" */
    0x00, 0x00, 0x00, 0x01,                              /* partitions: 1 */
    0x00, 0x00, 0x00, 0x00,                              /* partition 0 */
    0xff, 0xff, 0xff, 0xff,                              /* current_leader_epoch -1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,      /* fetch_offset 42 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,      /* log_start_offset -1 */
    0x00, 0x10, 0x00, 0x00,                              /* partition_max_bytes 1 MiB */
    0x00, 0x00, 0x00, 0x00,                              /* forgotten_topics_data: 0 */
    0x00, 0x00,                                          /* rack_id "" */
};

static void test_fetch_literal(void)
{
    kf_request_t q;
    sl_err_t err;
    CHECK_EQ_INT(sizeof fetch_v11, 91);
    CHECK_CODE(decode_raw(fetch_v11, sizeof fetch_v11, &arena, &q, &err), SL_OK, &err);
    if (q.h.api_key != KF_FETCH) return;
    CHECK_EQ_INT(q.h.api_version, 11);
    CHECK_EQ_INT(q.h.correlation_id, 5);
    CHECK_STR(q.h.client_id, "rdkafka");
    CHECK_EQ_INT(q.u.fetch.max_bytes, 52428800);
    CHECK_EQ_INT(q.u.fetch.isolation_level, 1);
    CHECK_EQ_INT(q.u.fetch.session_epoch, -1);
    CHECK_FATAL(q.u.fetch.ntopics == 1 && q.u.fetch.topics[0].nparts == 1);
    CHECK_STR(q.u.fetch.topics[0].topic, "t");
    CHECK_EQ_INT(q.u.fetch.topics[0].parts[0].fetch_offset, 42);
    CHECK_EQ_INT(q.u.fetch.topics[0].parts[0].partition_max_bytes, 1048576);

    /* The same bytes as Fetch v10 have 2 (the rack_id) left over. */
    uint8_t b[sizeof fetch_v11];
    memcpy(b, fetch_v11, sizeof b);
    b[7] = 10;
    CHECK_CODE(decode_raw(b, sizeof b, &arena, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "2 bytes left after the body of Fetch v10");
}

/* ---- ListOffsets ---------------------------------------------------------- */

static void enc_list_offsets(bb_t *b, int v)
{
    bb_begin(b, KF_LIST_OFFSETS, (int16_t)v, 31, "c");
    bb_i32(b, -1);
    if (v >= 2) bb_i8(b, 1);
    bb_i32(b, 1);
    bb_str(b, "lo");
    bb_i32(b, 2);
    bb_i32(b, 0);
    bb_i64(b, -1);
    if (v == 0) bb_i32(b, 1);
    bb_i32(b, 1);
    bb_i64(b, INT64_C(1700000000000));
    if (v == 0) bb_i32(b, 9);
    bb_end(b);
}

static void test_list_offsets(void)
{
    for (int v = 0; v <= kf_api_max(KF_LIST_OFFSETS); v++) {
        bb_t b;
        kf_request_t q;
        enc_list_offsets(&b, v);
        if (!decode_ok(&b, &q, KF_LIST_OFFSETS, (int16_t)v)) continue;
        const kf_list_offsets_req_t *l = &q.u.list_offsets;
        CHECK_EQ_INT(l->replica_id, -1);
        CHECK_EQ_INT(l->isolation_level, v >= 2 ? 1 : 0);
        CHECK_FATAL(l->ntopics == 1 && l->topics[0].nparts == 2);
        CHECK_STR(l->topics[0].name, "lo");
        CHECK_EQ_INT(l->topics[0].parts[0].partition, 0);
        CHECK_EQ_INT(l->topics[0].parts[0].timestamp, -1);
        CHECK_EQ_INT(l->topics[0].parts[0].current_leader_epoch, -1);
        CHECK_EQ_INT(l->topics[0].parts[0].max_num_offsets, 1);
        CHECK_EQ_INT(l->topics[0].parts[1].partition, 1);
        CHECK_EQ_INT(l->topics[0].parts[1].timestamp, INT64_C(1700000000000));
        CHECK_EQ_INT(l->topics[0].parts[1].max_num_offsets, v == 0 ? 9 : 1);
    }
}

/* ---- Metadata ------------------------------------------------------------- */

/* topics: n names, or n = -1 for null */
static void enc_metadata(bb_t *b, int v, int n)
{
    static const char *names[] = {"a", "bb", "ccc"};
    bb_begin(b, KF_METADATA, (int16_t)v, 41, "c");
    bb_i32(b, n);
    for (int i = 0; i < n; i++) bb_str(b, names[i]);
    if (v >= 4) bb_i8(b, 0);
    bb_end(b);
}

static void test_metadata(void)
{
    for (int v = 0; v <= kf_api_max(KF_METADATA); v++) {
        bb_t b;
        kf_request_t q;
        sl_err_t err;
        enc_metadata(&b, v, 3);
        if (decode_ok(&b, &q, KF_METADATA, (int16_t)v)) {
            const kf_metadata_req_t *m = &q.u.metadata;
            CHECK(!m->all_topics);
            CHECK_FATAL(m->ntopics == 3);
            CHECK_STR(m->topics[0], "a");
            CHECK_STR(m->topics[1], "bb");
            CHECK_STR(m->topics[2], "ccc");
            CHECK_EQ_INT(m->allow_auto_topic_creation, v >= 4 ? 0 : 1);
        }
        /* empty: all topics in v0, none from v1 */
        enc_metadata(&b, v, 0);
        if (decode_ok(&b, &q, KF_METADATA, (int16_t)v)) {
            CHECK_EQ_INT(q.u.metadata.all_topics, v == 0);
            CHECK_EQ_INT(q.u.metadata.ntopics, 0);
        }
        /* null: all topics from v1, not allowed in v0 */
        enc_metadata(&b, v, -1);
        if (v == 0) {
            CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
            CHECK_STR(err.msg, "Metadata v0: topics: array count -1 is not allowed");
        } else if (decode_ok(&b, &q, KF_METADATA, (int16_t)v)) {
            CHECK(q.u.metadata.all_topics);
            CHECK_EQ_INT(q.u.metadata.ntopics, 0);
        }
    }
}

/* ---- OffsetCommit --------------------------------------------------------- */

static void enc_offset_commit(bb_t *b, int v)
{
    bb_begin(b, KF_OFFSET_COMMIT, (int16_t)v, 81, "c");
    bb_str(b, "grp");
    if (v >= 1) {
        bb_i32(b, 4);
        bb_str(b, "member-1");
    }
    if (v >= 7) bb_str(b, "inst");
    if (v >= 2 && v <= 4) bb_i64(b, 86400000);
    bb_i32(b, 1);
    bb_str(b, "oc");
    bb_i32(b, 2);
    for (int p = 0; p < 2; p++) {
        bb_i32(b, p);
        bb_i64(b, 250 + p);
        if (v >= 6) bb_i32(b, 3 + p);
        if (v == 1) bb_i64(b, INT64_C(1600000000000) + p);
        bb_str(b, p ? NULL : "meta");
    }
    bb_end(b);
}

static void test_offset_commit(void)
{
    for (int v = 0; v <= kf_api_max(KF_OFFSET_COMMIT); v++) {
        bb_t b;
        kf_request_t q;
        enc_offset_commit(&b, v);
        if (!decode_ok(&b, &q, KF_OFFSET_COMMIT, (int16_t)v)) continue;
        const kf_offset_commit_req_t *c = &q.u.offset_commit;
        CHECK_STR(c->group_id, "grp");
        CHECK_EQ_INT(c->generation_id, v >= 1 ? 4 : -1);
        CHECK_STR(c->member_id, v >= 1 ? "member-1" : "");
        CHECK_STR(c->group_instance_id, v >= 7 ? "inst" : NULL);
        CHECK_EQ_INT(c->retention_time_ms, v >= 2 && v <= 4 ? 86400000 : -1);
        CHECK_FATAL(c->ntopics == 1 && c->topics[0].nparts == 2);
        CHECK_STR(c->topics[0].name, "oc");
        for (int p = 0; p < 2; p++) {
            const kf_commit_part_t *cp = &c->topics[0].parts[p];
            CHECK_EQ_INT(cp->index, p);
            CHECK_EQ_INT(cp->offset, 250 + p);
            CHECK_EQ_INT(cp->leader_epoch, v >= 6 ? 3 + p : -1);
            CHECK_EQ_INT(cp->commit_timestamp, v == 1 ? INT64_C(1600000000000) + p : -1);
            CHECK_STR(cp->metadata, p ? NULL : "meta");
        }
    }
}

/* ---- OffsetFetch ---------------------------------------------------------- */

static void test_offset_fetch(void)
{
    for (int v = 0; v <= kf_api_max(KF_OFFSET_FETCH); v++) {
        bb_t b;
        kf_request_t q;
        sl_err_t err;
        bb_begin(&b, KF_OFFSET_FETCH, (int16_t)v, 91, "c");
        bb_str(&b, "grp");
        bb_i32(&b, 2);
        bb_str(&b, "x");
        bb_i32(&b, 3);
        bb_i32(&b, 0);
        bb_i32(&b, 1);
        bb_i32(&b, 7);
        bb_str(&b, "y");
        bb_i32(&b, 0);
        bb_end(&b);
        if (decode_ok(&b, &q, KF_OFFSET_FETCH, (int16_t)v)) {
            const kf_offset_fetch_req_t *f = &q.u.offset_fetch;
            CHECK_STR(f->group_id, "grp");
            CHECK(!f->all_topics);
            CHECK_FATAL(f->ntopics == 2 && f->topics[0].nparts == 3);
            CHECK_STR(f->topics[0].name, "x");
            CHECK_EQ_INT(f->topics[0].parts[0], 0);
            CHECK_EQ_INT(f->topics[0].parts[1], 1);
            CHECK_EQ_INT(f->topics[0].parts[2], 7);
            CHECK_STR(f->topics[1].name, "y");
            CHECK_EQ_INT(f->topics[1].nparts, 0);
        }
        bb_begin(&b, KF_OFFSET_FETCH, (int16_t)v, 92, "c");
        bb_str(&b, "grp");
        bb_i32(&b, -1);
        bb_end(&b);
        if (v < 2) {
            CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
            CHECK_HAS(&err, "topics");
        } else if (decode_ok(&b, &q, KF_OFFSET_FETCH, (int16_t)v)) {
            CHECK(q.u.offset_fetch.all_topics);
            CHECK_EQ_INT(q.u.offset_fetch.ntopics, 0);
        }
    }
}

/* ---- group APIs ----------------------------------------------------------- */

static void test_find_coordinator(void)
{
    for (int v = 0; v <= kf_api_max(KF_FIND_COORDINATOR); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_FIND_COORDINATOR, (int16_t)v, 101, "c");
        bb_str(&b, "txn");
        if (v >= 1) bb_i8(&b, 1);
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_FIND_COORDINATOR, (int16_t)v)) continue;
        CHECK_STR(q.u.find_coordinator.key, "txn");
        CHECK_EQ_INT(q.u.find_coordinator.key_type, v >= 1 ? 1 : 0);
    }
}

static const uint8_t sub_meta[] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't'};

static void enc_join_group(bb_t *b, int v)
{
    bb_begin(b, KF_JOIN_GROUP, (int16_t)v, 111, "rdkafka");
    bb_str(b, "grp");
    bb_i32(b, 45000);
    if (v >= 1) bb_i32(b, 300000);
    bb_str(b, "");
    if (v >= 5) bb_str(b, NULL);
    bb_str(b, "consumer");
    bb_i32(b, 2);
    bb_str(b, "range");
    bb_bytes(b, sub_meta, sizeof sub_meta);
    bb_str(b, "roundrobin");
    bb_bytes(b, "", 0);
    bb_end(b);
}

static void test_join_group(void)
{
    for (int v = 0; v <= kf_api_max(KF_JOIN_GROUP); v++) {
        bb_t b;
        kf_request_t q;
        enc_join_group(&b, v);
        if (!decode_ok(&b, &q, KF_JOIN_GROUP, (int16_t)v)) continue;
        const kf_join_group_req_t *j = &q.u.join_group;
        CHECK_STR(j->group_id, "grp");
        CHECK_EQ_INT(j->session_timeout_ms, 45000);
        CHECK_EQ_INT(j->rebalance_timeout_ms, v >= 1 ? 300000 : 45000);
        CHECK_STR(j->member_id, "");
        CHECK(j->group_instance_id == NULL);
        CHECK_STR(j->protocol_type, "consumer");
        CHECK_FATAL(j->nprotocols == 2);
        CHECK_STR(j->protocols[0].name, "range");
        CHECK_EQ_INT(j->protocols[0].metadata_len, sizeof sub_meta);
        CHECK(memcmp(j->protocols[0].metadata, sub_meta, sizeof sub_meta) == 0);
        CHECK_STR(j->protocols[1].name, "roundrobin");
        CHECK_EQ_INT(j->protocols[1].metadata_len, 0);
    }
    /* v5 with a group instance id */
    bb_t b;
    kf_request_t q;
    bb_begin(&b, KF_JOIN_GROUP, 5, 112, "c");
    bb_str(&b, "g");
    bb_i32(&b, 1);
    bb_i32(&b, 2);
    bb_str(&b, "m");
    bb_str(&b, "static-1");
    bb_str(&b, "consumer");
    bb_i32(&b, 0);
    bb_end(&b);
    if (decode_ok(&b, &q, KF_JOIN_GROUP, 5)) {
        CHECK_STR(q.u.join_group.group_instance_id, "static-1");
        CHECK_STR(q.u.join_group.member_id, "m");
        CHECK_EQ_INT(q.u.join_group.nprotocols, 0);
    }
}

static void test_heartbeat_leave_sync(void)
{
    for (int v = 0; v <= kf_api_max(KF_HEARTBEAT); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_HEARTBEAT, (int16_t)v, 121, "c");
        bb_str(&b, "grp");
        bb_i32(&b, 6);
        bb_str(&b, "m-1");
        if (v >= 3) bb_str(&b, "i-1");
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_HEARTBEAT, (int16_t)v)) continue;
        CHECK_STR(q.u.heartbeat.group_id, "grp");
        CHECK_EQ_INT(q.u.heartbeat.generation_id, 6);
        CHECK_STR(q.u.heartbeat.member_id, "m-1");
        CHECK_STR(q.u.heartbeat.group_instance_id, v >= 3 ? "i-1" : NULL);
    }
    for (int v = 0; v <= kf_api_max(KF_LEAVE_GROUP); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_LEAVE_GROUP, (int16_t)v, 131, "c");
        bb_str(&b, "grp");
        bb_str(&b, "m-2");
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_LEAVE_GROUP, (int16_t)v)) continue;
        CHECK_STR(q.u.leave_group.group_id, "grp");
        CHECK_STR(q.u.leave_group.member_id, "m-2");
    }
    static const uint8_t assign[] = {0, 0, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 1, 0, 0, 0, 0};
    for (int v = 0; v <= kf_api_max(KF_SYNC_GROUP); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_SYNC_GROUP, (int16_t)v, 141, "c");
        bb_str(&b, "grp");
        bb_i32(&b, 8);
        bb_str(&b, "leader");
        if (v >= 3) bb_str(&b, NULL);
        bb_i32(&b, 2);
        bb_str(&b, "leader");
        bb_bytes(&b, assign, sizeof assign);
        bb_str(&b, "other");
        bb_bytes(&b, "", 0);
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_SYNC_GROUP, (int16_t)v)) continue;
        const kf_sync_group_req_t *s = &q.u.sync_group;
        CHECK_STR(s->group_id, "grp");
        CHECK_EQ_INT(s->generation_id, 8);
        CHECK_STR(s->member_id, "leader");
        CHECK(s->group_instance_id == NULL);
        CHECK_FATAL(s->nassignments == 2);
        CHECK_STR(s->assignments[0].member_id, "leader");
        CHECK_EQ_INT(s->assignments[0].assignment_len, sizeof assign);
        CHECK(memcmp(s->assignments[0].assignment, assign, sizeof assign) == 0);
        CHECK_STR(s->assignments[1].member_id, "other");
        CHECK_EQ_INT(s->assignments[1].assignment_len, 0);
    }
    /* SyncGroup v3 with an instance id */
    bb_t b;
    kf_request_t q;
    bb_begin(&b, KF_SYNC_GROUP, 3, 142, "c");
    bb_str(&b, "g");
    bb_i32(&b, 1);
    bb_str(&b, "m");
    bb_str(&b, "inst");
    bb_i32(&b, 0);
    bb_end(&b);
    if (decode_ok(&b, &q, KF_SYNC_GROUP, 3)) CHECK_STR(q.u.sync_group.group_instance_id, "inst");
}

static void test_describe_list_groups(void)
{
    for (int v = 0; v <= kf_api_max(KF_DESCRIBE_GROUPS); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_DESCRIBE_GROUPS, (int16_t)v, 151, "c");
        bb_i32(&b, 2);
        bb_str(&b, "g1");
        bb_str(&b, "g2");
        if (v >= 3) bb_i8(&b, 1);
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_DESCRIBE_GROUPS, (int16_t)v)) continue;
        CHECK_FATAL(q.u.describe_groups.ngroups == 2);
        CHECK_STR(q.u.describe_groups.groups[0], "g1");
        CHECK_STR(q.u.describe_groups.groups[1], "g2");
        CHECK_EQ_INT(q.u.describe_groups.include_authorized_operations, v >= 3);
    }
    for (int v = 0; v <= kf_api_max(KF_LIST_GROUPS); v++) {
        bb_t b;
        kf_request_t q;
        sl_err_t err;
        bb_begin(&b, KF_LIST_GROUPS, (int16_t)v, 161, "c");
        bb_end(&b);
        decode_ok(&b, &q, KF_LIST_GROUPS, (int16_t)v);
        CHECK_EQ_INT(q.h.correlation_id, 161);
        bb_i8(&b, 0);
        bb_end(&b);
        CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
        CHECK_HAS(&err, "1 bytes left after the body of ListGroups");
    }
}

/* ---- ApiVersions ---------------------------------------------------------- */

/* kafka-protocol.md §2.1: librdkafka 2.0.2's first request on a connection. */
static const uint8_t apiversions_v3[] = {
    0x00, 0x00, 0x00, 0x24, 0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07,
    0x72, 0x64, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x00, 0x0b, 0x6c, 0x69, 0x62, 0x72, 0x64,
    0x6b, 0x61, 0x66, 0x6b, 0x61, 0x06, 0x32, 0x2e, 0x30, 0x2e, 0x32, 0x00,
};

static void test_api_versions(void)
{
    kf_request_t q;
    sl_err_t err;
    uint32_t total = 0;
    CHECK_EQ_INT(kf_frame_peek(apiversions_v3, sizeof apiversions_v3, 1 << 20, &total), SL_OK);
    CHECK_EQ_INT(total, sizeof apiversions_v3);
    CHECK_CODE(decode_raw(apiversions_v3, sizeof apiversions_v3, &arena, &q, &err),
               SL_ERR_UNSUPPORTED_VERSION, &err);
    CHECK_EQ_INT(q.h.api_key, KF_API_VERSIONS);
    CHECK_EQ_INT(q.h.api_version, 3);
    CHECK_EQ_INT(q.h.correlation_id, 1);
    CHECK_STR(q.h.client_id, "rdkafka");
    /* v4 with garbage after the header: the body is never looked at */
    uint8_t b[sizeof apiversions_v3];
    memcpy(b, apiversions_v3, sizeof b);
    b[7] = 4;
    b[sizeof b - 1] = 0xff;
    CHECK_CODE(decode_raw(b, sizeof b, &arena, &q, &err), SL_ERR_UNSUPPORTED_VERSION, &err);
    CHECK_EQ_INT(q.h.correlation_id, 1);

    for (int v = 0; v <= kf_api_max(KF_API_VERSIONS); v++) {
        bb_t bb;
        bb_begin(&bb, KF_API_VERSIONS, (int16_t)v, 2, "rdkafka");
        bb_end(&bb);
        if (decode_ok(&bb, &q, KF_API_VERSIONS, (int16_t)v)) {
            CHECK_EQ_INT(q.h.correlation_id, 2);
        }
        bb_i8(&bb, 0);
        bb_end(&bb);
        CHECK_CODE(decode(&bb, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    }
}

/* ---- admin APIs ----------------------------------------------------------- */

static void enc_create_topics(bb_t *b, int v)
{
    bb_begin(b, KF_CREATE_TOPICS, (int16_t)v, 191, "c");
    bb_i32(b, 2);
    bb_str(b, "new");
    bb_i32(b, 3);
    bb_i16(b, 1);
    bb_i32(b, 0);
    bb_i32(b, 2);
    bb_str(b, "retention.ms");
    bb_str(b, "1000");
    bb_str(b, "cleanup.policy");
    bb_str(b, NULL);
    bb_str(b, "manual");
    bb_i32(b, -1);
    bb_i16(b, -1);
    bb_i32(b, 2); /* assignments */
    bb_i32(b, 0);
    bb_i32(b, 1);
    bb_i32(b, 1);
    bb_i32(b, 1);
    bb_i32(b, 2);
    bb_i32(b, 1);
    bb_i32(b, 2);
    bb_i32(b, 0);
    bb_i32(b, 5000);
    if (v >= 1) bb_i8(b, 1);
    bb_end(b);
}

static void test_create_delete_topics(void)
{
    for (int v = 0; v <= kf_api_max(KF_CREATE_TOPICS); v++) {
        bb_t b;
        kf_request_t q;
        enc_create_topics(&b, v);
        if (!decode_ok(&b, &q, KF_CREATE_TOPICS, (int16_t)v)) continue;
        const kf_create_topics_req_t *c = &q.u.create_topics;
        CHECK_FATAL(c->ntopics == 2);
        CHECK_STR(c->topics[0].name, "new");
        CHECK_EQ_INT(c->topics[0].num_partitions, 3);
        CHECK_EQ_INT(c->topics[0].replication_factor, 1);
        CHECK_EQ_INT(c->topics[0].nassignments, 0);
        CHECK_FATAL(c->topics[0].nconfigs == 2);
        CHECK_STR(c->topics[0].configs[0].name, "retention.ms");
        CHECK_STR(c->topics[0].configs[0].value, "1000");
        CHECK_STR(c->topics[0].configs[1].name, "cleanup.policy");
        CHECK(c->topics[0].configs[1].value == NULL);
        CHECK_STR(c->topics[1].name, "manual");
        CHECK_EQ_INT(c->topics[1].num_partitions, -1);
        CHECK_EQ_INT(c->topics[1].replication_factor, -1);
        CHECK_EQ_INT(c->topics[1].nassignments, 2);
        CHECK_EQ_INT(c->topics[1].nconfigs, 0);
        CHECK_EQ_INT(c->timeout_ms, 5000);
        CHECK_EQ_INT(c->validate_only, v >= 1);
    }
    for (int v = 0; v <= kf_api_max(KF_DELETE_TOPICS); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_DELETE_TOPICS, (int16_t)v, 201, "c");
        bb_i32(&b, 2);
        bb_str(&b, "old1");
        bb_str(&b, "old2");
        bb_i32(&b, 15000);
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_DELETE_TOPICS, (int16_t)v)) continue;
        CHECK_FATAL(q.u.delete_topics.nnames == 2);
        CHECK_STR(q.u.delete_topics.names[0], "old1");
        CHECK_STR(q.u.delete_topics.names[1], "old2");
        CHECK_EQ_INT(q.u.delete_topics.timeout_ms, 15000);
    }
    for (int v = 0; v <= kf_api_max(KF_INIT_PRODUCER_ID); v++) {
        bb_t b;
        kf_request_t q;
        bb_begin(&b, KF_INIT_PRODUCER_ID, (int16_t)v, 221, "c");
        bb_str(&b, v ? NULL : "tx");
        bb_i32(&b, -1);
        bb_end(&b);
        if (!decode_ok(&b, &q, KF_INIT_PRODUCER_ID, (int16_t)v)) continue;
        CHECK_STR(q.u.init_producer_id.transactional_id, v ? NULL : "tx");
        CHECK_EQ_INT(q.u.init_producer_id.transaction_timeout_ms, -1);
    }
}

/* ---- the API table -------------------------------------------------------- */

static void test_api_table(void)
{
    const int16_t *keys = NULL;
    size_t n = kf_api_list(&keys);
    CHECK_EQ_INT(n, 17);
    CHECK_FATAL(keys != NULL);
    for (size_t i = 0; i < n; i++) {
        if (i) CHECK(keys[i - 1] < keys[i]);
        CHECK(kf_api_max(keys[i]) >= 0);
        CHECK(strcmp(kf_api_name(keys[i]), "Unknown") != 0);
    }
    static const int want[][2] = {{0, 7},  {1, 11}, {2, 2},  {3, 4},  {8, 7},  {9, 5},
                                  {10, 2}, {11, 5}, {12, 3}, {13, 1}, {14, 3}, {15, 4},
                                  {16, 2}, {18, 2}, {19, 4}, {20, 3}, {22, 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_EQ_INT(kf_api_max(want[i][0]), want[i][1]);
        CHECK_EQ_INT(keys[i], want[i][0]);
    }
    CHECK_EQ_INT(kf_api_max(4), -1);
    CHECK_EQ_INT(kf_api_max(17), -1);
    CHECK_EQ_INT(kf_api_max(99), -1);
    CHECK_EQ_INT(kf_api_max(-1), -1);
    CHECK_STR(kf_api_name(KF_FETCH), "Fetch");
    CHECK_STR(kf_api_name(KF_INIT_PRODUCER_ID), "InitProducerId");
    CHECK_STR(kf_api_name(32), "Unknown");
}

/* ---- unsupported and hostile input ---------------------------------------- */

static void test_unsupported(void)
{
    bb_t b;
    kf_request_t q;
    sl_err_t err;
    bb_begin(&b, 99, 0, 1234, "c");
    bb_i32(&b, 7);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_UNSUPPORTED_VERSION, &err);
    CHECK_EQ_INT(q.h.api_key, 99);
    CHECK_EQ_INT(q.h.correlation_id, 1234);
    CHECK_STR(q.h.client_id, "c");

    enc_fetch(&b, 11);
    sl_put_be16(b.b + 6, 12);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_UNSUPPORTED_VERSION, &err);
    CHECK_EQ_INT(q.h.api_version, 12);
    CHECK_EQ_INT(q.h.correlation_id, 21);
    CHECK_HAS(&err, "Fetch v12");

    /* every served key one past its max, and at -1 */
    const int16_t *keys;
    size_t n = kf_api_list(&keys);
    for (size_t i = 0; i < n; i++) {
        int16_t vs[] = {(int16_t)(kf_api_max(keys[i]) + 1), -1, INT16_MIN};
        for (size_t k = 0; k < 3; k++) {
            bb_begin(&b, keys[i], vs[k], 77, NULL);
            bb_end(&b);
            CHECK_CODE(decode(&b, &q, &err), SL_ERR_UNSUPPORTED_VERSION, &err);
            CHECK_EQ_INT(q.h.api_key, keys[i]);
            CHECK_EQ_INT(q.h.api_version, vs[k]);
            CHECK_EQ_INT(q.h.correlation_id, 77);
        }
    }
    /* DescribeConfigs (32) is not served */
    bb_begin(&b, 32, 1, 78, NULL);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_UNSUPPORTED_VERSION, &err);
}

/* Every proper prefix of a valid frame (size field adjusted, so the frame
 * looks whole) is INVALID_REQUEST: never SL_OK, never a crash. */
static void check_truncations(const bb_t *b)
{
    kf_request_t q;
    sl_err_t err;
    int bad = 0;
    for (size_t k = 0; k < b->n; k++) {
        uint8_t tmp[sizeof b->b];
        memcpy(tmp, b->b, k);
        if (k >= 4) sl_put_be32(tmp, (uint32_t)(k - 4));
        int rc = decode_raw(tmp, k, &arena, &q, &err);
        if (rc != SL_ERR_INVALID_REQUEST || !err.msg[0]) {
            if (bad++ < 5)
                fprintf(stderr, "  truncated at %zu of %zu: rc %d (%s)\n", k, b->n, rc, err.msg);
        }
        if (k >= 12) CHECK_EQ_INT(q.h.correlation_id, (int32_t)sl_be32(b->b + 8));
    }
    CHECK_MSG(bad == 0, "%d truncations of api %d not INVALID_REQUEST", bad,
              (int)sl_be16(b->b + 4));
}

static void test_truncation(void)
{
    bb_t b;
    enc_produce(&b, 7);
    check_truncations(&b);
    enc_fetch(&b, 11);
    check_truncations(&b);
    enc_join_group(&b, 5);
    check_truncations(&b);
    enc_offset_commit(&b, 7);
    check_truncations(&b);
    enc_create_topics(&b, 4);
    check_truncations(&b);
    /* and every version of every encoder above */
    for (int v = 0; v <= 11; v++) {
        enc_fetch(&b, v);
        check_truncations(&b);
        if (v <= 7) {
            enc_produce(&b, v);
            check_truncations(&b);
            enc_offset_commit(&b, v);
            check_truncations(&b);
        }
        if (v <= 5) {
            enc_join_group(&b, v);
            check_truncations(&b);
        }
        if (v <= 4) {
            enc_metadata(&b, v, 2);
            check_truncations(&b);
        }
        if (v <= 2) {
            enc_list_offsets(&b, v);
            check_truncations(&b);
        }
    }
}

/* Trailing bytes after every valid body. */
static void test_trailing(void)
{
    bb_t b;
    kf_request_t q;
    sl_err_t err;
    enc_fetch(&b, 11);
    bb_i8(&b, 0);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "1 bytes left after the body of Fetch v11");
    CHECK_EQ_INT(q.h.correlation_id, 21);
    for (int v = 0; v <= 7; v++) {
        enc_produce(&b, v);
        bb_i32(&b, 0);
        bb_end(&b);
        CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
        CHECK_HAS(&err, "4 bytes left after the body of Produce");
        enc_offset_commit(&b, v);
        bb_i8(&b, 1);
        bb_end(&b);
        CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    }
}

static void test_hostile(void)
{
    bb_t b;
    kf_request_t q;
    sl_err_t err;

    /* A huge count fails on the bytes left, before any allocation: with a
     * 4 KiB arena only the client id was allocated. */
    static uint8_t block[256];
    sl_arena_t small;
    sl_arena_init(&small, block, sizeof block, 4096);
    bb_begin(&b, KF_FETCH, 11, 9, "c");
    bb_i32(&b, -1);
    bb_i32(&b, 500);
    bb_i32(&b, 1);
    bb_i32(&b, 1000);
    bb_i8(&b, 0);
    bb_i32(&b, 0);
    bb_i32(&b, -1);
    bb_i32(&b, 0x7fffffff);
    bb_end(&b);
    CHECK_CODE(decode_raw(b.b, b.n, &small, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "Fetch v11: topics: count 2147483647 exceeds the 0 bytes left");
    CHECK(small.total <= 16);

    /* The example of the contract: a partition count in the first topic. */
    bb_begin(&b, KF_FETCH, 11, 9, "c");
    bb_i32(&b, -1);
    bb_i32(&b, 500);
    bb_i32(&b, 1);
    bb_i32(&b, 1000);
    bb_i8(&b, 0);
    bb_i32(&b, 0);
    bb_i32(&b, -1);
    bb_i32(&b, 1);
    bb_str(&b, "t");
    bb_i32(&b, 1000000);
    bb_raw(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    bb_end(&b);
    CHECK_CODE(decode_raw(b.b, b.n, &small, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "Fetch v11: topics[0].partitions: count 1000000 exceeds the 12 bytes left");

    /* 0x7fffffff everywhere a count or length sits in Produce v7 */
    bb_begin(&b, KF_PRODUCE, 7, 9, "c");
    bb_str(&b, NULL);
    bb_i16(&b, 1);
    bb_i32(&b, 0);
    bb_i32(&b, 1);
    bb_str(&b, "t");
    bb_i32(&b, 1);
    bb_i32(&b, 0);
    bb_i32(&b, 0x7fffffff);
    bb_raw(&b, "abcd", 4);
    bb_end(&b);
    CHECK_CODE(decode_raw(b.b, b.n, &small, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "Produce v7: topic_data[0].partition_data[0].records: bytes length "
                       "2147483647 exceeds the 4 bytes left");

    /* Counts are checked with the version's smallest element: ListOffsets
     * v0 partitions take 16 bytes (v1+: 12). */
    for (int v = 0; v <= 1; v++) {
        bb_begin(&b, KF_LIST_OFFSETS, (int16_t)v, 9, "c");
        bb_i32(&b, -1);
        bb_i32(&b, 1);
        bb_str(&b, "t");
        bb_i32(&b, 2);
        bb_raw(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
        bb_end(&b);
        if (v == 0) {
            CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
            CHECK_STR(err.msg,
                      "ListOffsets v0: topics[0].partitions: count 2 exceeds the 24 bytes left");
        } else {
            CHECK_CODE(decode(&b, &q, &err), SL_OK, &err);
        }
    }

    /* A string longer than what is left. */
    bb_begin(&b, KF_FIND_COORDINATOR, 2, 9, "c");
    bb_i16(&b, 0x7fff);
    bb_raw(&b, "abc", 3);
    bb_end(&b);
    CHECK_CODE(decode_raw(b.b, b.n, &small, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "FindCoordinator v2: key: string length 32767 exceeds the 3 bytes left");

    /* A valid request that needs more than the arena's limit: NOMEM. 400
     * one-byte names take 400 pointers and 400 16-byte strings. */
    bb_begin(&b, KF_DELETE_TOPICS, 3, 9, "c");
    bb_i32(&b, 400);
    for (int i = 0; i < 400; i++) bb_str(&b, "x");
    bb_i32(&b, 0);
    bb_end(&b);
    CHECK_CODE(decode_raw(b.b, b.n, &small, &q, &err), SL_ERR_NOMEM, &err);
    CHECK(small.total <= 4096);
    CHECK_CODE(decode(&b, &q, &err), SL_OK, &err); /* the 1 MiB arena is enough */
    CHECK_EQ_INT(q.u.delete_topics.nnames, 400);
    sl_arena_free(&small);

    /* Embedded NUL in a string. */
    bb_begin(&b, KF_DELETE_TOPICS, 0, 9, "c");
    bb_i32(&b, 2);
    bb_str(&b, "ok");
    bb_i16(&b, 3);
    bb_raw(&b, "a\0b", 3);
    bb_i32(&b, 0);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "DeleteTopics v0: topic_names[1]: string holds a NUL byte at 1");
    /* ... and in the client id */
    bb_begin(&b, KF_API_VERSIONS, 0, 55, NULL);
    b.n -= 2;
    bb_i16(&b, 2);
    bb_raw(&b, "\0x", 2);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_EQ_INT(q.h.correlation_id, 55);
    CHECK_HAS(&err, "client_id");

    /* Null where not nullable: a topic name, protocol metadata, an array. */
    bb_begin(&b, KF_PRODUCE, 7, 9, "c");
    bb_str(&b, NULL);
    bb_i16(&b, 1);
    bb_i32(&b, 0);
    bb_i32(&b, 1);
    bb_str(&b, NULL);
    bb_i32(&b, 0);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "Produce v7: topic_data[0].name: string length -1 is not allowed");

    bb_begin(&b, KF_JOIN_GROUP, 5, 9, "c");
    bb_str(&b, "g");
    bb_i32(&b, 1);
    bb_i32(&b, 2);
    bb_str(&b, "");
    bb_str(&b, NULL);
    bb_str(&b, "consumer");
    bb_i32(&b, 1);
    bb_str(&b, "range");
    bb_bytes(&b, NULL, 0);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "JoinGroup v5: protocols[0].metadata: bytes length -1 is not allowed");

    bb_begin(&b, KF_FETCH, 4, 9, "c");
    bb_i32(&b, -1);
    bb_i32(&b, 500);
    bb_i32(&b, 1);
    bb_i32(&b, 1000);
    bb_i8(&b, 0);
    bb_i32(&b, -1);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_STR(err.msg, "Fetch v4: topics: array count -1 is not allowed");

    /* Negative lengths other than -1, even where nullable. */
    bb_begin(&b, KF_INIT_PRODUCER_ID, 1, 9, "c");
    bb_i16(&b, -2);
    bb_i32(&b, 0);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_HAS(&err, "transactional_id");
    bb_begin(&b, KF_OFFSET_FETCH, 5, 9, "c");
    bb_str(&b, "g");
    bb_i32(&b, -2);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    bb_begin(&b, KF_PRODUCE, 3, 9, "c");
    bb_str(&b, NULL);
    bb_i16(&b, 1);
    bb_i32(&b, 0);
    bb_i32(&b, 1);
    bb_str(&b, "t");
    bb_i32(&b, 1);
    bb_i32(&b, 0);
    bb_i32(&b, -5);
    bb_end(&b);
    CHECK_CODE(decode(&b, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_HAS(&err, "records");

    /* Header-level: too short to hold the fixed header, client_id running
     * past the frame. */
    static const uint8_t tiny[] = {0, 0, 0, 6, 0, 1, 0, 11, 0, 0};
    CHECK_CODE(decode_raw(tiny, sizeof tiny, &arena, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    static const uint8_t shortid[] = {0, 0, 0, 12, 0, 3, 0, 4, 0, 0, 0, 9, 0, 5, 'a', 'b'};
    CHECK_CODE(decode_raw(shortid, sizeof shortid, &arena, &q, &err), SL_ERR_INVALID_REQUEST, &err);
    CHECK_EQ_INT(q.h.api_key, 3);
    CHECK_EQ_INT(q.h.api_version, 4);
    CHECK_EQ_INT(q.h.correlation_id, 9);
    CHECK_STR(err.msg, "request header: client_id: string length 5 exceeds the 2 bytes left");

    /* kf_header_decode directly: body and body_len */
    enc_metadata(&b, 4, 0);
    kf_header_t h;
    uint8_t *body = NULL;
    size_t blen = 0;
    CHECK_CODE(kf_header_decode(b.b, (uint32_t)b.n, &arena, &h, &body, &blen, &err), SL_OK, &err);
    CHECK_EQ_INT(h.api_key, KF_METADATA);
    CHECK_EQ_INT(h.api_version, 4);
    CHECK_EQ_INT(h.correlation_id, 41);
    CHECK_STR(h.client_id, "c");
    CHECK(body == b.b + 15);
    CHECK_EQ_INT(blen, 5);

    /* Random garbage bodies for every api and version never crash and
     * never allocate past the arena's limit. */
    const int16_t *keys;
    size_t n = kf_api_list(&keys);
    int ok = 0;
    for (int round = 0; round < 3000; round++) {
        int16_t key = keys[round % n];
        int16_t ver = (int16_t)((round / (int)n) % (kf_api_max(key) + 1));
        bb_begin(&b, key, ver, round, "f");
        size_t len = rnd() % 64;
        for (size_t i = 0; i < len; i++) {
            uint32_t x = rnd();
            /* mostly small bytes, so counts and lengths are plausible */
            uint8_t c = (x & 3) ? (uint8_t)(x >> 8 & 3) : (uint8_t)(x >> 8);
            bb_raw(&b, &c, 1);
        }
        bb_end(&b);
        int rc = decode(&b, &q, &err);
        CHECK_MSG(rc == SL_OK || rc == SL_ERR_INVALID_REQUEST, "rc %d", rc);
        ok += rc == SL_OK;
        CHECK_EQ_INT(q.h.correlation_id, round);
    }
    CHECK(ok > 0); /* some random bodies do decode (e.g. the empty ones) */
}

/* ---- frames --------------------------------------------------------------- */

static void test_frame_peek(void)
{
    uint8_t b[8] = {0, 0, 0, 10, 0, 0, 0, 0};
    uint32_t total = 0;
    for (size_t len = 0; len < 4; len++)
        CHECK_EQ_INT(kf_frame_peek(b, len, 1 << 20, &total), SL_ERR_PARTIAL);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 1 << 20, &total), SL_OK);
    CHECK_EQ_INT(total, KF_MIN_FRAME);
    total = 0;
    CHECK_EQ_INT(kf_frame_peek(b, 8, 1 << 20, &total), SL_OK);
    CHECK_EQ_INT(total, 14);
    sl_put_be32(b, 9);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 1 << 20, &total), SL_ERR_INVALID_REQUEST);
    sl_put_be32(b, 0);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 1 << 20, &total), SL_ERR_INVALID_REQUEST);
    sl_put_be32(b, 1 << 20);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 1 << 20, &total), SL_OK);
    CHECK_EQ_INT(total, (1 << 20) + 4);
    sl_put_be32(b, (1 << 20) + 1);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 1 << 20, &total), SL_ERR_MESSAGE_TOO_LARGE);
    sl_put_be32(b, 0x7fffffff);
    CHECK_EQ_INT(kf_frame_peek(b, 4, UINT32_MAX, &total), SL_OK);
    CHECK_EQ_INT(total, 0x80000003u);
    /* a negative int32 size is invalid, whatever the limit */
    sl_put_be32(b, 0x80000000u);
    CHECK_EQ_INT(kf_frame_peek(b, 4, UINT32_MAX, &total), SL_ERR_INVALID_REQUEST);
    sl_put_be32(b, 0xffffffffu);
    CHECK_EQ_INT(kf_frame_peek(b, 4, UINT32_MAX, &total), SL_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(kf_frame_peek(b, 4, 100, &total), SL_ERR_INVALID_REQUEST);
}

/* ---- the writer ----------------------------------------------------------- */

static void test_writer(void)
{
    /* kafka-protocol.md §2.1: the v0 reply to ApiVersions v3 */
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x23,
                                   0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x02};
    kf_writer_t w;
    kw_init(&w, 1);
    kw_i16(&w, 35);
    kw_i32(&w, 1);
    kw_i16(&w, 18);
    kw_i16(&w, 0);
    kw_i16(&w, 2);
    CHECK_EQ_INT(kw_finish(&w, 0), 0);
    CHECK_EQ_INT(w.len, sizeof want);
    CHECK(w.buf && memcmp(w.buf, want, sizeof want) == 0);
    kw_free(&w);
    CHECK(w.buf == NULL && w.len == 0);

    /* every type, read back */
    static const uint8_t raw[] = {1, 2, 3};
    kw_init(&w, -7);
    kw_i8(&w, -2);
    kw_bool(&w, true);
    kw_bool(&w, false);
    kw_i16(&w, -300);
    kw_i32(&w, INT32_MIN);
    kw_i64(&w, INT64_C(-1234567890123));
    kw_str(&w, "hey");
    kw_str(&w, NULL);
    kw_str(&w, "");
    kw_strn(&w, "abcdef", 2);
    kw_strn(&w, NULL, 5);
    kw_bytes(&w, raw, 3);
    kw_bytes(&w, NULL, 3);
    kw_bytes(&w, raw, 0);
    size_t pos = kw_reserve_i32(&w);
    kw_raw(&w, raw, sizeof raw);
    kw_patch_i32(&w, pos, 42);
    kw_patch_i32(&w, w.len - 2, 1); /* past the end: ignored */
    CHECK_EQ_INT(kw_finish(&w, 1000), 0);
    CHECK_FATAL(w.buf != NULL);
    const uint8_t *p = w.buf, *end = w.buf + w.len;
    int16_t s16 = 0;
    int32_t s32 = 0;
    int64_t s64 = 0;
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, (int32_t)(w.len - 4 + 1000));
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, -7);
    CHECK_EQ_INT((int8_t)*p++, -2);
    CHECK_EQ_INT(*p++, 1);
    CHECK_EQ_INT(*p++, 0);
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, -300);
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, INT32_MIN);
    CHECK_EQ_INT(kr_i64(&p, end, &s64), 0);
    CHECK_EQ_INT(s64, INT64_C(-1234567890123));
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, 3);
    CHECK(memcmp(p, "hey", 3) == 0);
    p += 3;
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, -1);
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, 0);
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, 2);
    CHECK(memcmp(p, "ab", 2) == 0);
    p += 2;
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    CHECK_EQ_INT(s16, -1);
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, 3);
    CHECK(memcmp(p, raw, 3) == 0);
    p += 3;
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, -1);
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, 0);
    CHECK_EQ_INT(kr_i32(&p, end, &s32), 0);
    CHECK_EQ_INT(s32, 42);
    CHECK(memcmp(p, raw, 3) == 0);
    p += 3;
    CHECK(p == end);
    /* the readers stop at the end and leave *p alone */
    CHECK_EQ_INT(kr_i16(&p, end, &s16), -1);
    CHECK_EQ_INT(kr_i32(&p, end, &s32), -1);
    CHECK_EQ_INT(kr_i64(&p, end, &s64), -1);
    CHECK(p == end);
    p = end - 3;
    CHECK_EQ_INT(kr_i32(&p, end, &s32), -1);
    CHECK_EQ_INT(kr_i64(&p, end, &s64), -1);
    CHECK_EQ_INT(kr_i16(&p, end, &s16), 0);
    kw_free(&w);

    /* long strings are cut at 32767; growth keeps every byte */
    size_t big = 40000;
    char *s = malloc(big + 1);
    CHECK_FATAL(s != NULL);
    for (size_t i = 0; i < big; i++) s[i] = (char)('a' + i % 26);
    s[big] = '\0';
    kw_init(&w, 0);
    kw_str(&w, s);
    for (int32_t i = 0; i < 50000; i++) kw_i32(&w, i);
    CHECK_EQ_INT(kw_finish(&w, 0), 0);
    CHECK_FATAL(w.buf != NULL);
    CHECK_EQ_INT(w.len, 8 + 2 + 32767 + 4 * 50000);
    CHECK(w.cap >= w.len);
    CHECK_MSG((w.cap & (w.cap - 1)) == 0, "capacity %zu grew other than by doubling", w.cap);
    p = w.buf + 8;
    CHECK_EQ_INT(kr_i16(&p, w.buf + w.len, &s16), 0);
    CHECK_EQ_INT(s16, 32767);
    CHECK(memcmp(p, s, 32767) == 0);
    p += 32767;
    int wrong = 0;
    for (int32_t i = 0; i < 50000; i++) wrong += kr_i32(&p, w.buf + w.len, &s32) != 0 || s32 != i;
    CHECK_EQ_INT(wrong, 0);
    kw_free(&w);
    free(s);

    /* a latched failure: later calls are no-ops, finish frees and fails */
    kw_init(&w, 3);
    kw_i32(&w, 1);
    w.oom = 1;
    size_t len = w.len;
    kw_i64(&w, 5);
    kw_str(&w, "x");
    CHECK_EQ_INT(w.len, len);
    CHECK_EQ_INT(kw_finish(&w, 0), -1);
    CHECK(w.buf == NULL);
    kw_free(&w);
    /* a size beyond int32 cannot be sent */
    kw_init(&w, 3);
    CHECK_EQ_INT(kw_finish(&w, (uint64_t)INT32_MAX), -1);
    CHECK(w.buf == NULL);
    kw_init(&w, 3);
    CHECK_EQ_INT(kw_finish(&w, (uint64_t)INT32_MAX - 4), 0);
    CHECK_EQ_INT(sl_be32(w.buf), INT32_MAX);
    kw_free(&w);
}

/* The frame-less writer and the view readers (ConsumerProtocol's bytes). */
static void test_plain_and_views(void)
{
    kf_writer_t w;
    size_t len = 99;
    kw_init_plain(&w);
    uint8_t *b = kw_take(&w, &len);
    CHECK(b != NULL && len == 0); /* empty, but not a failure */
    CHECK(w.buf == NULL && w.len == 0);
    free(b);

    static const uint8_t raw[] = {9, 8, 7};
    kw_init_plain(&w);
    kw_str(&w, "abc");
    kw_str(&w, NULL);
    kw_bytes(&w, raw, 3);
    kw_bytes(&w, NULL, 0);
    kw_i32(&w, 2); /* a count */
    kw_i16(&w, 1);
    b = kw_take(&w, &len);
    CHECK_FATAL(b != NULL);
    static const uint8_t want[] = {
        0,    3,    'a',  'b',  'c',       /* "abc", no frame header before it */
        0xff, 0xff,                        /* null string */
        0,    0,    0,    3,    9,   8, 7, /* bytes */
        0xff, 0xff, 0xff, 0xff,            /* null bytes */
        0,    0,    0,    2,               /* count */
        0,    1,                           /* i16 1 */
    };
    CHECK_EQ_INT(len, sizeof want);
    CHECK(memcmp(b, want, sizeof want) == 0);

    const uint8_t *p = b, *end = b + len, *bv = NULL;
    const char *sv = NULL;
    int16_t n16 = 0;
    int32_t n32 = 0;
    CHECK_EQ_INT(kr_str(&p, end, &sv, &n16), 0);
    CHECK(n16 == 3 && sv == (const char *)b + 2);
    CHECK_EQ_INT(kr_str(&p, end, &sv, &n16), 0);
    CHECK(n16 == -1 && sv == NULL);
    CHECK_EQ_INT(kr_bytes(&p, end, &bv, &n32), 0);
    CHECK(n32 == 3 && bv && memcmp(bv, raw, 3) == 0);
    CHECK_EQ_INT(kr_bytes(&p, end, &bv, &n32), 0);
    CHECK(n32 == -1 && bv == NULL);
    /* 2 elements of at least 1 byte: 2 bytes are left, so yes; of 2: no */
    const uint8_t *at = p;
    CHECK_EQ_INT(kr_count(&p, end, 2, &n32), -1);
    CHECK(p == at);
    CHECK_EQ_INT(kr_count(&p, end, 1, &n32), 0);
    CHECK_EQ_INT(n32, 2);
    CHECK(p == end - 2);

    /* Lengths past the end, below -1, and negative counts are refused and
     * leave *p alone. */
    static const uint8_t bad_str[] = {0, 4, 'x', 'y', 'z'}, neg_str[] = {0xff, 0xfe};
    static const uint8_t bad_bytes[] = {0, 0, 0, 2, 1}, neg[] = {0xff, 0xff, 0xff, 0xff};
    p = bad_str;
    CHECK_EQ_INT(kr_str(&p, bad_str + sizeof bad_str, &sv, &n16), -1);
    CHECK(p == bad_str);
    p = neg_str;
    CHECK_EQ_INT(kr_str(&p, neg_str + sizeof neg_str, &sv, &n16), -1);
    CHECK(p == neg_str);
    p = bad_bytes;
    CHECK_EQ_INT(kr_bytes(&p, bad_bytes + sizeof bad_bytes, &bv, &n32), -1);
    CHECK(p == bad_bytes);
    p = neg;
    CHECK_EQ_INT(kr_count(&p, neg + sizeof neg, 0, &n32), -1);
    CHECK(p == neg);
    p = neg + 2;
    CHECK_EQ_INT(kr_count(&p, neg + sizeof neg, 0, &n32), -1);
    CHECK(p == neg + 2);
    free(b);

    /* A latched failure: nothing is handed over and the writer is empty. */
    kw_init_plain(&w);
    kw_i32(&w, 1);
    w.oom = 1;
    CHECK(kw_take(&w, &len) == NULL);
    CHECK(w.buf == NULL && len == 0);
}

int main(void)
{
    sl_arena_init(&arena, NULL, 0, 1u << 20);
    batch = bg_simple(3, 20, INT64_C(1700000000000), 7, &batch_len);
    CHECK_FATAL(batch != NULL);
    test_api_table();
    test_produce();
    test_fetch();
    test_fetch_literal();
    test_list_offsets();
    test_metadata();
    test_offset_commit();
    test_offset_fetch();
    test_find_coordinator();
    test_join_group();
    test_heartbeat_leave_sync();
    test_describe_list_groups();
    test_api_versions();
    test_create_delete_topics();
    test_unsupported();
    test_truncation();
    test_trailing();
    test_hostile();
    test_frame_peek();
    test_writer();
    test_plain_and_views();
    free(frame_copy);
    free(batch);
    sl_arena_free(&arena);
    return check_exit();
}
