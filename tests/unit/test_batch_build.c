/* test_batch_build.c — proto's RecordBatch v2 builder (batch_build.h):
 * byte-exact against a hand-written idempotent, transactional batch (kcat's
 * batch and a plain hand-written one are checked in test_batch.c through
 * batchgen, and in test_client_batch.c through the producer); round trips
 * through batch.c's validators and record iterator, plain and lz4;
 * capacity, growth and argument errors. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_build.h"
#include "check.h"

/* Written out by hand from kafka-protocol.md §4.1-4.2 (the CRC from a
 * bitwise CRC-32C written apart from proto/crc32c.c): every header field
 * the caller sets is non-default, and the second record goes back in time. */
static const uint8_t txn_batch[79] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* baseOffset 100 */
    0x00, 0x00, 0x00, 0x43,                         /* batchLength 67 */
    0x00, 0x00, 0x00, 0x07,                         /* partitionLeaderEpoch 7 */
    0x02,                                           /* magic */
    0xd6, 0xd2, 0xb3, 0xac,                         /* crc */
    0x00, 0x10,                                     /* attributes: transactional */
    0x00, 0x00, 0x00, 0x01,                         /* lastOffsetDelta 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* baseTimestamp 1000 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* maxTimestamp 1000 */
    0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* producerId 0x1122334455 */
    0x00, 0x03,                                     /* producerEpoch 3 */
    0x00, 0x00, 0x00, 0x2a,                         /* baseSequence 42 */
    0x00, 0x00, 0x00, 0x02,                         /* recordsCount 2 */
    /* record 0: length 8, attrs, tsDelta 0, offsetDelta 0, key "a", value "1", 0 headers */
    0x10, 0x00, 0x00, 0x00, 0x02, 'a', 0x02, '1', 0x00,
    /* record 1: length 8, attrs, tsDelta -1, offsetDelta 1, key null, value "22", 0 headers */
    0x10, 0x00, 0x01, 0x02, 0x01, 0x04, '2', '2', 0x00};

static sl_batch_meta_t txn_meta(void)
{
    sl_batch_meta_t m = SL_BATCH_META_INIT;
    m.base_offset = 100;
    m.leader_epoch = 7;
    m.attributes = SL_BATCH_ATTR_TRANSACTIONAL;
    m.producer_id = INT64_C(0x1122334455);
    m.producer_epoch = 3;
    m.base_sequence = 42;
    return m;
}

static void test_init(void)
{
    sl_batch_builder_t b;
    CHECK_FATAL(sl_batch_build_init(&b, 0, 0) == SL_OK);
    CHECK_EQ_INT(b.len, SL_BATCH_HEADER_SIZE);
    CHECK_EQ_INT(b.cap, SL_BATCH_HEADER_SIZE); /* raised to the header */
    CHECK_EQ_INT(b.count, 0);
    sl_batch_build_free(&b);
    sl_batch_build_free(&b); /* idempotent */
    sl_batch_build_free(NULL);
}

static void test_txn_vector(void)
{
    sl_batch_builder_t b;
    CHECK_FATAL(sl_batch_build_init(&b, 128, 0) == SL_OK);
    sl_batch_rec_t r0 = {.timestamp = 1000, .key = "a", .key_len = 1, .value = "1", .value_len = 1};
    sl_batch_rec_t r1 = {.timestamp = 999, .value = "22", .value_len = 2};
    size_t before = b.len;
    CHECK_EQ_INT(sl_batch_build_append(&b, &r0), SL_OK);
    CHECK_EQ_INT(b.len - before, sl_batch_build_record_size(0, 0, &r0));
    CHECK_EQ_INT(sl_batch_build_append(&b, &r1), SL_OK);
    CHECK_EQ_INT(b.count, 2);
    CHECK_EQ_INT(b.first_ts, 1000);
    CHECK_EQ_INT(b.max_ts, 1000);
    sl_batch_meta_t m = txn_meta();
    CHECK_EQ_INT(sl_batch_build_finish(&b, &m), SL_OK);
    CHECK_EQ_INT(b.len, sizeof txn_batch);
    CHECK(b.len == sizeof txn_batch && memcmp(b.buf, txn_batch, b.len) == 0);

    /* What the broker's validators make of it. */
    sl_batch_hdr_t hh;
    sl_err_t err;
    CHECK_EQ_INT(sl_batch_validate(b.buf, b.len, NULL, &hh, &err), SL_OK);
    /* Well formed, but no producer may send it: Sluice has no transactions. */
    CHECK_EQ_INT(sl_batch_validate_produce(&hh, &err), SL_ERR_INVALID_RECORD);
    CHECK_EQ_INT(sl_batch_validate_deep(b.buf, b.len, NULL, &err), SL_OK);
    CHECK_EQ_INT(hh.base_offset, 100);
    CHECK_EQ_INT(hh.leader_epoch, 7);
    CHECK_EQ_INT(hh.attributes, SL_BATCH_ATTR_TRANSACTIONAL);
    CHECK_EQ_INT(hh.producer_id, INT64_C(0x1122334455));
    CHECK_EQ_INT(hh.producer_epoch, 3);
    CHECK_EQ_INT(hh.base_sequence, 42);

    /* Finishing again rewrites the header: back to a plain producer's. */
    CHECK_EQ_INT(sl_batch_build_finish(&b, NULL), SL_OK);
    CHECK_EQ_INT(sl_batch_validate(b.buf, b.len, NULL, &hh, &err), SL_OK);
    CHECK_EQ_INT(hh.producer_id, -1);
    CHECK_EQ_INT(hh.base_sequence, -1);
    CHECK_EQ_INT(hh.attributes, 0);
    CHECK_EQ_INT(hh.base_offset, 0);

    /* The control bit goes through to the bytes; a producer's batch may
     * not carry it, which sl_batch_validate_produce enforces. */
    m.attributes = SL_BATCH_ATTR_CONTROL;
    CHECK_EQ_INT(sl_batch_build_finish(&b, &m), SL_OK);
    CHECK_EQ_INT(sl_batch_validate(b.buf, b.len, NULL, &hh, &err), SL_OK);
    CHECK_EQ_INT(hh.attributes, SL_BATCH_ATTR_CONTROL);
    CHECK_EQ_INT(sl_batch_validate_produce(&hh, &err), SL_ERR_INVALID_RECORD);
    sl_batch_build_free(&b);
}

/* The record i of roundtrip(): keys on 4 of 5, values on 10 of 11, a
 * header on every third (its value null on every sixth), timestamps that
 * go back and forth around the first. */
#define NREC 3000

typedef struct rt_rec {
    char key[16], val[96];
    sl_rec_header_t h[2];
    sl_batch_rec_t r;
} rt_rec_t;

static void make_rec(rt_rec_t *x, int i)
{
    snprintf(x->key, sizeof x->key, "k%d", i);
    snprintf(x->val, sizeof x->val, "value-%06d-%s", i, "the quick brown fox jumps");
    x->h[0] = (sl_rec_header_t){"seq", x->key, strlen(x->key)};
    x->h[1] = (sl_rec_header_t){"", i % 6 == 0 ? NULL : "v", 1};
    x->r = (sl_batch_rec_t){.timestamp = 1000000 + (i % 7) - 3,
                            .key = i % 5 ? x->key : NULL,
                            .key_len = strlen(x->key),
                            .value = i % 11 ? x->val : NULL,
                            .value_len = strlen(x->val),
                            .headers = i % 3 == 0 ? x->h : NULL,
                            .header_count = i % 3 == 0 ? 2 : 0};
}

static int same_bytes(const uint8_t *got, int32_t got_len, const void *want, size_t want_len)
{
    if (!want) return got == NULL && got_len == -1;
    return got_len == (int32_t)want_len && memcmp(got, want, want_len) == 0;
}

/* Reads every record back through batch.c's iterator and compares. */
static void check_records(const uint8_t *batch, size_t len, const char *what)
{
    sl_err_t err;
    sl_record_iter_t it;
    CHECK_EQ_INT(sl_record_iter_init(&it, batch, len, NULL, &err), SL_OK);
    sl_record_t r;
    rt_rec_t x;
    int i = 0, bad = 0;
    while (sl_record_iter_next(&it, &r, &err) == 1) {
        make_rec(&x, i);
        if (!same_bytes(r.key, r.key_len, x.r.key, x.r.key_len)) bad++;
        if (!same_bytes(r.value, r.value_len, x.r.value, x.r.value_len)) bad++;
        if (r.timestamp != x.r.timestamp || r.offset != i) bad++;
        if (r.header_count != (int32_t)x.r.header_count) bad++;
        if (x.r.header_count) {
            /* "seq" = key, "" = "v" or null */
            uint8_t want[40];
            size_t n = 0, kl = strlen(x.key);
            want[n++] = 6;
            memcpy(want + n, "seq", 3);
            n += 3;
            want[n++] = (uint8_t)(kl * 2);
            memcpy(want + n, x.key, kl);
            n += kl;
            want[n++] = 0;
            if (x.h[1].value) {
                want[n++] = 2;
                want[n++] = 'v';
            } else {
                want[n++] = 1;
            }
            if (r.headers_len != n || memcmp(r.headers, want, n) != 0) bad++;
        }
        i++;
    }
    sl_record_iter_free(&it);
    CHECK_MSG(i == NREC, "%s: %d records", what, i);
    CHECK_MSG(bad == 0, "%s: %d mismatches", what, bad);
}

static void test_roundtrip(void)
{
    sl_batch_builder_t b;
    CHECK_FATAL(sl_batch_build_init(&b, 64, 1) == SL_OK); /* grows from nothing */
    rt_rec_t x;
    int appended = 0;
    for (int i = 0; i < NREC; i++) {
        make_rec(&x, i);
        if (sl_batch_build_append(&b, &x.r) == SL_OK) appended++;
    }
    CHECK_EQ_INT(appended, NREC);
    CHECK_EQ_INT(b.first_ts, 1000000 - 3); /* i = 0: 1000000 + 0 - 3 */
    CHECK_EQ_INT(b.max_ts, 1000003);
    CHECK(b.cap >= b.len);
    sl_batch_meta_t m = txn_meta();
    m.base_offset = 0;

    /* lz4 first: it must leave the plain records as they are. */
    uint8_t *z = NULL;
    size_t zlen = 0;
    CHECK_EQ_INT(sl_batch_build_finish_compressed(&b, &m, SL_COMPRESSION_LZ4, &z, &zlen), SL_OK);
    CHECK_FATAL(z != NULL);
    CHECK(zlen < b.len / 2);
    sl_batch_hdr_t hh;
    sl_err_t err;
    CHECK_EQ_INT(sl_batch_validate(z, zlen, NULL, &hh, &err), SL_OK);
    CHECK_EQ_INT(hh.attributes, SL_BATCH_ATTR_TRANSACTIONAL | SL_COMPRESSION_LZ4);
    CHECK_EQ_INT(hh.records_count, NREC);
    CHECK_EQ_INT(hh.last_offset_delta, NREC - 1);
    CHECK_EQ_INT(hh.base_timestamp, 1000000 - 3);
    CHECK_EQ_INT(hh.max_timestamp, 1000003);
    CHECK_EQ_INT(hh.producer_id, INT64_C(0x1122334455));
    CHECK_EQ_INT(hh.base_sequence, 42);
    CHECK_EQ_INT(sl_batch_validate_produce(&hh, &err), SL_ERR_INVALID_RECORD); /* transactional */
    CHECK_EQ_INT(sl_batch_validate_deep(z, zlen, NULL, &err), SL_OK);
    /* Kafka's frame: magic, FLG 0x60, BD 0x40, HC 0x82 (kafka-protocol.md §4.4). */
    const uint8_t frame[7] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82};
    CHECK(memcmp(z + SL_BATCH_HEADER_SIZE, frame, sizeof frame) == 0);
    check_records(z, zlen, "lz4");

    CHECK_EQ_INT(sl_batch_build_finish(&b, &m), SL_OK);
    CHECK_EQ_INT(sl_batch_validate(b.buf, b.len, NULL, &hh, &err), SL_OK);
    CHECK_EQ_INT(hh.attributes, SL_BATCH_ATTR_TRANSACTIONAL);
    CHECK_EQ_INT(sl_batch_validate_deep(b.buf, b.len, NULL, &err), SL_OK);
    check_records(b.buf, b.len, "plain");
    /* Same header fields either way, except the length, codec and CRC. */
    CHECK(memcmp(z + SL_BATCH_OFF_LAST_OFFSET_DELTA, b.buf + SL_BATCH_OFF_LAST_OFFSET_DELTA,
                 SL_BATCH_HEADER_SIZE - SL_BATCH_OFF_LAST_OFFSET_DELTA) == 0);
    free(z);
    sl_batch_build_free(&b);
}

/* A tiny lz4 batch does not shrink, and the builder compresses it anyway:
 * sending it plain is the producer's policy, not the builder's. */
static void test_lz4_tiny(void)
{
    sl_batch_builder_t b;
    CHECK_FATAL(sl_batch_build_init(&b, 128, 0) == SL_OK);
    sl_batch_rec_t r = {.timestamp = 5, .value = "xyz", .value_len = 3};
    CHECK_EQ_INT(sl_batch_build_append(&b, &r), SL_OK);
    uint8_t *z;
    size_t zlen;
    CHECK_EQ_INT(sl_batch_build_finish_compressed(&b, NULL, SL_COMPRESSION_LZ4, &z, &zlen), SL_OK);
    CHECK(zlen > b.len);
    CHECK_EQ_INT(sl_batch_validate_deep(z, zlen, NULL, NULL), SL_OK);
    free(z);
    sl_batch_build_free(&b);
}

static void test_capacity_and_errors(void)
{
    sl_batch_builder_t b;
    char v[100] = {0};
    sl_batch_rec_t r = {.timestamp = 1, .value = v, .value_len = sizeof v};
    size_t one = SL_BATCH_HEADER_SIZE + sl_batch_build_record_size(0, 0, &r);
    CHECK_FATAL(sl_batch_build_init(&b, one + 10, 0) == SL_OK);

    /* Nothing appended yet: nothing to finish. */
    CHECK_EQ_INT(sl_batch_build_finish(&b, NULL), SL_ERR_INVALID_ARG);
    uint8_t *z = (uint8_t *)1;
    size_t zlen = 1;
    CHECK_EQ_INT(sl_batch_build_finish_compressed(&b, NULL, SL_COMPRESSION_LZ4, &z, &zlen),
                 SL_ERR_INVALID_ARG);
    CHECK(z == NULL && zlen == 0);

    /* Fixed capacity: the second record does not fit and changes nothing. */
    CHECK_EQ_INT(sl_batch_build_append(&b, &r), SL_OK);
    CHECK_EQ_INT(b.len, one);
    r.timestamp = 9;
    CHECK_EQ_INT(sl_batch_build_append(&b, &r), SL_ERR_RECORD_LIST_TOO_LARGE);
    CHECK_EQ_INT(b.len, one);
    CHECK_EQ_INT(b.count, 1);
    CHECK_EQ_INT(b.max_ts, 1);

    /* Arguments out of contract. */
    sl_rec_header_t nokey = {NULL, "v", 1};
    sl_batch_rec_t bad = {.timestamp = 1, .headers = &nokey, .header_count = 1};
    CHECK_EQ_INT(sl_batch_build_append(&b, &bad), SL_ERR_INVALID_ARG);
    bad = (sl_batch_rec_t){.timestamp = 1, .header_count = 1}; /* headers NULL */
    CHECK_EQ_INT(sl_batch_build_append(&b, &bad), SL_ERR_INVALID_ARG);
    bad = (sl_batch_rec_t){.timestamp = 1, .key = "k", .key_len = (size_t)INT32_MAX + 1};
    CHECK_EQ_INT(sl_batch_build_append(&b, &bad), SL_ERR_INVALID_ARG);
    /* Sized as more than any batch holds, so a size check refuses it too. */
    CHECK_EQ_INT(sl_batch_build_record_size(0, 0, &bad), (size_t)SL_BATCH_MAX_SIZE + 1);
    CHECK_EQ_INT(b.count, 1);

    sl_batch_meta_t m = SL_BATCH_META_INIT;
    m.attributes = SL_COMPRESSION_LZ4; /* the codec is the finishing call's to set */
    CHECK_EQ_INT(sl_batch_build_finish(&b, &m), SL_ERR_INVALID_ARG);
    CHECK_EQ_INT(sl_batch_build_finish_compressed(&b, NULL, SL_COMPRESSION_GZIP, &z, &zlen),
                 SL_ERR_UNSUPPORTED_COMPRESSION);
    CHECK_EQ_INT(sl_batch_build_finish_compressed(&b, NULL, SL_COMPRESSION_NONE, &z, &zlen),
                 SL_ERR_UNSUPPORTED_COMPRESSION);
    CHECK_EQ_INT(sl_batch_build_finish(&b, NULL), SL_OK);
    CHECK_EQ_INT(sl_batch_validate_deep(b.buf, b.len, NULL, NULL), SL_OK);
    sl_batch_build_free(&b);

    /* Worst-case sizes: a 10-byte timestamp delta, a 5-byte offset delta. */
    sl_batch_rec_t empty = {0};
    CHECK_EQ_INT(sl_batch_build_record_size(0, 0, &empty), 1 + 6);
    CHECK_EQ_INT(sl_batch_build_record_size(INT64_MIN, INT32_MAX, &empty), 1 + 1 + 10 + 5 + 3);
}

int main(void)
{
    test_init();
    test_txn_vector();
    test_roundtrip();
    test_lz4_tiny();
    test_capacity_and_errors();
    return check_exit();
}
