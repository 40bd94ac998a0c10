/* test_batch.c — RecordBatch v2 validation and iteration against a real kcat
 * batch, against proto's builder (through batchgen), and against hostile
 * bytes; the builder itself against hand-written byte vectors. */
#include <limits.h>
#include <lz4frame.h>
#include <stdint.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"

/* kafka-protocol.md §4.2: printf 'a\n' | kcat -P -t hd -k K -H h1=v1 -H h2=v2 */
static const uint8_t kcat_batch[82] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00,
    0x00, 0x00, 0x02, 0xf7, 0x1f, 0x24, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8, 0xea, 0x00, 0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8,
    0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x01, 0x28, 0x00, 0x00, 0x00, 0x02, 0x4b, 0x02, 0x61, 0x04,
    0x04, 0x68, 0x31, 0x04, 0x76, 0x31, 0x04, 0x68, 0x32, 0x04, 0x76, 0x32,
};
#define KCAT_TS INT64_C(0x000001a21b0ec8ea)

static uint32_t rng = 0x2545F491;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static uint8_t *dup(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    CHECK_FATAL(q != NULL);
    memcpy(q, p, n);
    return q;
}

/* Checks the code and that a failure came with a message. */
#define CHECK_CODE(expr, code, errp)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        CHECK_EQ_INT(rc_, code);                                                                   \
        if (rc_ != SL_OK) CHECK_MSG((errp)->msg[0] != '\0', "no message for code %d", rc_);        \
        if (rc_ != (code)) fprintf(stderr, "  message: %s\n", (errp)->msg);                        \
    } while (0)

static int deep(const uint8_t *b, size_t len, uint32_t max_uncompressed, sl_err_t *err)
{
    sl_batch_limits_t lim = {0, max_uncompressed};
    return sl_batch_validate_deep(b, len, &lim, err);
}

static int shallow(const uint8_t *b, size_t len, sl_err_t *err)
{
    return sl_batch_validate(b, len, NULL, NULL, err);
}

/* Walks n encoded headers and compares them with the expected ones. */
static int headers_match(const uint8_t *p, size_t len, const bg_header_t *want, int n)
{
    const uint8_t *end = p + len;
    for (int i = 0; i < n; i++) {
        int32_t kl, vl;
        size_t c = sl_varint_decode(p, end, &kl);
        if (!c || kl < 0 || (size_t)kl > (size_t)(end - p - c)) return 0;
        p += c;
        if ((size_t)kl != strlen(want[i].key) || memcmp(p, want[i].key, (size_t)kl)) return 0;
        p += kl;
        c = sl_varint_decode(p, end, &vl);
        if (!c) return 0;
        p += c;
        if (!want[i].value) {
            if (vl != -1) return 0;
            continue;
        }
        if (vl != want[i].value_len || (size_t)vl > (size_t)(end - p)) return 0;
        if (memcmp(p, want[i].value, (size_t)vl)) return 0;
        p += vl;
    }
    return p == end;
}

static void test_kcat(void)
{
    sl_err_t err;
    sl_batch_hdr_t h;
    CHECK_CODE(sl_batch_validate(kcat_batch, sizeof kcat_batch, NULL, &h, &err), SL_OK, &err);
    CHECK_EQ_INT(h.base_offset, 0);
    CHECK_EQ_INT(h.length, 70);
    CHECK_EQ_INT(h.leader_epoch, 0);
    CHECK_EQ_INT(h.magic, 2);
    CHECK_EQ_INT(h.crc, 0xf71f240bu);
    CHECK_EQ_INT(h.attributes, 0);
    CHECK_EQ_INT(h.last_offset_delta, 0);
    CHECK_EQ_INT(h.base_timestamp, KCAT_TS);
    CHECK_EQ_INT(h.max_timestamp, KCAT_TS);
    CHECK_EQ_INT(h.producer_id, -1);
    CHECK_EQ_INT(h.producer_epoch, -1);
    CHECK_EQ_INT(h.base_sequence, -1);
    CHECK_EQ_INT(h.records_count, 1);
    CHECK_EQ_INT(sl_batch_total_size(kcat_batch), 82);
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_OK, &err);
    CHECK_CODE(deep(kcat_batch, sizeof kcat_batch, 0, &err), SL_OK, &err);

    sl_record_iter_t it;
    sl_record_t r;
    CHECK_CODE(sl_record_iter_init(&it, kcat_batch, sizeof kcat_batch, NULL, &err), SL_OK, &err);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 1);
    CHECK_EQ_INT(r.offset, 0);
    CHECK_EQ_INT(r.timestamp, KCAT_TS);
    CHECK(r.key_len == 1 && r.key && r.key[0] == 'K');
    CHECK(r.value_len == 1 && r.value && r.value[0] == 'a');
    CHECK_EQ_INT(r.header_count, 2);
    CHECK_EQ_INT(r.headers_len, 12);
    bg_header_t want[2] = {{"h1", "v1", 2}, {"h2", "v2", 2}};
    CHECK(headers_match(r.headers, r.headers_len, want, 2));
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 0);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 0); /* the end is sticky */
    sl_record_iter_free(&it);
    sl_record_iter_free(&it); /* and freeing twice is harmless */

    /* baseOffset and the leader epoch are outside the CRC: the broker writes
     * them on append without re-checksumming. */
    uint8_t *b = dup(kcat_batch, sizeof kcat_batch);
    sl_put_be64(b, 41);
    sl_put_be32(b + SL_BATCH_OFF_LEADER_EPOCH, 7);
    CHECK_CODE(sl_batch_validate(b, sizeof kcat_batch, NULL, &h, &err), SL_OK, &err);
    CHECK_EQ_INT(h.base_offset, 41);
    CHECK_EQ_INT(h.leader_epoch, 7);
    CHECK_CODE(sl_record_iter_init(&it, b, sizeof kcat_batch, NULL, &err), SL_OK, &err);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 1);
    CHECK_EQ_INT(r.offset, 41);
    sl_record_iter_free(&it);

    /* LogAppendTime: every record carries maxTimestamp. */
    sl_put_be64(b, 0);
    sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, SL_BATCH_ATTR_LOG_APPEND_TIME);
    sl_put_be64(b + SL_BATCH_OFF_MAX_TIMESTAMP, 1234567);
    bg_fix_crc(b, sizeof kcat_batch);
    CHECK_CODE(sl_record_iter_init(&it, b, sizeof kcat_batch, NULL, &err), SL_OK, &err);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 1);
    CHECK_EQ_INT(r.timestamp, 1234567);
    sl_record_iter_free(&it);
    free(b);
}

/* Three records written out by hand, field by field, from
 * kafka-protocol.md §4.1-4.2 (the CRC from a bitwise CRC-32C written apart from
 * proto/crc32c.c; the deep validation below agrees): a key and one header;
 * null key and value with a negative timestampDelta (-5); an empty key with
 * a two-byte timestampDelta (+200) and a header with a null value. */
static const uint8_t three_batch[101] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* baseOffset 0 */
    0x00, 0x00, 0x00, 0x59,                         /* batchLength 89 */
    0x00, 0x00, 0x00, 0x00,                         /* partitionLeaderEpoch 0 */
    0x02,                                           /* magic */
    0x65, 0xab, 0x55, 0x25,                         /* crc */
    0x00, 0x00,                                     /* attributes */
    0x00, 0x00, 0x00, 0x02,                         /* lastOffsetDelta 2 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* baseTimestamp 1700000000000 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0xc8, /* maxTimestamp  1700000000200 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producerId -1 */
    0xff, 0xff,                                     /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* baseSequence -1 */
    0x00, 0x00, 0x00, 0x03,                         /* recordsCount 3 */
    /* record 0: length 18, attrs, tsDelta 0, offsetDelta 0, key "key",
     * value "hello", 1 header "h" = "x" */
    0x24, 0x00, 0x00, 0x00, 0x06, 'k', 'e', 'y', 0x0a, 'h', 'e', 'l', 'l', 'o', 0x02, 0x02, 'h',
    0x02, 'x',
    /* record 1: length 6, attrs, tsDelta -5, offsetDelta 1, key null,
     * value null, 0 headers */
    0x0c, 0x00, 0x09, 0x02, 0x01, 0x01, 0x00,
    /* record 2: length 13, attrs, tsDelta +200, offsetDelta 2, key "",
     * value "abc", 1 header "n" = null */
    0x1a, 0x00, 0x90, 0x03, 0x04, 0x00, 0x06, 'a', 'b', 'c', 0x02, 0x02, 'n', 0x01};

/* The encoder behind bg_build (proto's builder, which the producer and the
 * broker use too) against the hand-written bytes above and kcat's. */
static void test_vectors(void)
{
    size_t len = 0;
    bg_header_t kh[2] = {{"h1", "v1", 2}, {"h2", "v2", 2}};
    bg_record_t kcat = {"K", 1, "a", 1, KCAT_TS, 2, kh};
    uint8_t *b = bg_build(&kcat, 1, SL_COMPRESSION_NONE, &len);
    CHECK_FATAL(b != NULL);
    CHECK(len == sizeof kcat_batch && memcmp(b, kcat_batch, len) == 0);
    free(b);

    bg_header_t h = {"h", "x", 1}, n = {"n", NULL, 0};
    bg_record_t recs[3] = {{"key", 3, "hello", 5, INT64_C(1700000000000), 1, &h},
                           {NULL, 0, NULL, 0, INT64_C(1700000000000) - 5, 0, NULL},
                           {"", 0, "abc", 3, INT64_C(1700000000200), 1, &n}};
    b = bg_build(recs, 3, SL_COMPRESSION_NONE, &len);
    CHECK_FATAL(b != NULL);
    CHECK_EQ_INT(len, sizeof three_batch);
    CHECK(len == sizeof three_batch && memcmp(b, three_batch, len) == 0);
    free(b);
    sl_err_t err;
    CHECK_CODE(deep(three_batch, sizeof three_batch, 0, &err), SL_OK, &err);
}

/* Builds, validates and iterates back, comparing every field. */
static void roundtrip(const bg_record_t *recs, int n, int comp, const char *what)
{
    size_t len = 0;
    uint8_t *b = bg_build(recs, n, comp, &len);
    CHECK_FATAL(b != NULL);
    sl_err_t err;
    sl_batch_hdr_t h;
    CHECK_CODE(sl_batch_validate(b, len, NULL, &h, &err), SL_OK, &err);
    CHECK_CODE(deep(b, len, 0, &err), SL_OK, &err);
    int64_t max_ts = recs[0].timestamp;
    for (int i = 1; i < n; i++)
        if (recs[i].timestamp > max_ts) max_ts = recs[i].timestamp;
    CHECK_EQ_INT(h.attributes, comp);
    CHECK_EQ_INT(h.records_count, n);
    CHECK_EQ_INT(h.last_offset_delta, n - 1);
    CHECK_EQ_INT(h.base_timestamp, recs[0].timestamp);
    CHECK_EQ_INT(h.max_timestamp, max_ts);

    sl_record_iter_t it;
    sl_record_t r;
    CHECK_CODE(sl_record_iter_init(&it, b, len, NULL, &err), SL_OK, &err);
    int bad = 0, i = 0, more;
    while ((more = sl_record_iter_next(&it, &r, &err)) == 1) {
        const bg_record_t *w = i < n ? &recs[i] : NULL;
        int ok = w && r.offset == i && r.timestamp == w->timestamp;
        if (ok && w->key)
            ok = r.key && r.key_len == w->key_len && !memcmp(r.key, w->key, (size_t)w->key_len);
        else if (ok)
            ok = !r.key && r.key_len == -1;
        if (ok && w->value)
            ok = r.value && r.value_len == w->value_len &&
                 !memcmp(r.value, w->value, (size_t)w->value_len);
        else if (ok)
            ok = !r.value && r.value_len == -1;
        ok = ok && r.header_count == w->nheaders &&
             headers_match(r.headers, r.headers_len, w->headers, w->nheaders);
        if (!ok && bad++ < 3) fprintf(stderr, "%s: record %d differs\n", what, i);
        i++;
    }
    CHECK_MSG(more == 0, "%s: %s", what, err.msg);
    CHECK_EQ_INT(i, n);
    CHECK_MSG(bad == 0, "%s: %d records differ", what, bad);
    sl_record_iter_free(&it);
    free(b);
}

static void test_roundtrip(void)
{
    enum { MANY = 600, BIG = 150000 };
    bg_header_t hdrs[3] = {{"trace", "abc", 3}, {"nullv", NULL, 0}, {"", "x", 1}};
    bg_record_t one = {"key", 3, "value", 5, 1700000000000, 2, hdrs};
    bg_record_t nulls = {NULL, 0, NULL, 0, -5, 0, NULL};
    bg_record_t empty = {"", 0, "", 0, 0, 3, hdrs};

    bg_record_t *many = calloc(MANY, sizeof *many);
    uint8_t **mem = calloc(MANY, sizeof *mem);
    CHECK_FATAL(many && mem);
    for (int i = 0; i < MANY; i++) {
        size_t vlen = i == 300 ? BIG : rnd() % 300;
        mem[i] = malloc(vlen + 32);
        CHECK_FATAL(mem[i] != NULL);
        /* Half random, half repetitive, so lz4 has something to do. */
        for (size_t j = 0; j < vlen; j++) mem[i][j] = (uint8_t)(j < vlen / 2 ? rnd() : j % 7);
        char *key = (char *)mem[i] + vlen;
        int klen = snprintf(key, 32, "key-%d", i);
        bg_record_t *r = &many[i];
        r->key = i % 7 == 0 ? NULL : key;
        r->key_len = i % 11 == 0 ? 0 : klen;
        r->value = i % 13 == 0 ? NULL : mem[i];
        r->value_len = (int32_t)vlen;
        /* Out of order, some before the first: negative deltas. */
        r->timestamp = 1700000000000 + (i * 37 % 1000) - 500;
        r->nheaders = i % 4;
        r->headers = hdrs;
    }
    for (int comp = SL_COMPRESSION_NONE; comp <= SL_COMPRESSION_LZ4; comp += 3) {
        roundtrip(&one, 1, comp, "one record");
        roundtrip(&nulls, 1, comp, "null key and value");
        roundtrip(&empty, 1, comp, "empty key and value");
        roundtrip(many, MANY, comp, "many records");
        roundtrip(many + 1, 2, comp, "two records");
    }
    for (int i = 0; i < MANY; i++) free(mem[i]);
    free(mem);
    free(many);

    /* bg_simple's documented pattern. */
    size_t len;
    uint8_t *b = bg_simple(50, 33, 99, 7, &len);
    CHECK_FATAL(b != NULL);
    sl_err_t err;
    sl_record_iter_t it;
    sl_record_t r;
    CHECK_CODE(sl_record_iter_init(&it, b, len, NULL, &err), SL_OK, &err);
    int i = 0, bad = 0;
    while (sl_record_iter_next(&it, &r, &err) == 1) {
        uint32_t x = 7u ^ (uint32_t)(i + 1) * 0x9E3779B9u;
        if (!x) x = 1;
        if (r.key || r.value_len != 33 || r.timestamp != 99 || r.header_count) bad++;
        for (int j = 0; j < 33 && r.value; j++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (r.value[j] != (uint8_t)x) bad++;
        }
        i++;
    }
    CHECK_EQ_INT(i, 50);
    CHECK_EQ_INT(bad, 0);
    sl_record_iter_free(&it);
    free(b);

    /* Bad arguments. */
    CHECK(bg_build(&one, 0, SL_COMPRESSION_NONE, &len) == NULL);
    CHECK(bg_build(&one, 1, SL_COMPRESSION_GZIP, &len) == NULL);
    CHECK(bg_build(NULL, 1, SL_COMPRESSION_NONE, &len) == NULL);
}

/* Every single-bit flip in [17, len) (CRC field and covered bytes) must be
 * caught by the CRC, before any other check can claim it. */
static void flips(const uint8_t *orig, size_t len, const char *what)
{
    uint8_t *b = dup(orig, len);
    sl_err_t err;
    int missed = 0, other = 0;
    for (size_t i = SL_BATCH_OFF_CRC; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            int rc = shallow(b, len, &err);
            if (rc == SL_OK)
                missed++;
            else if (rc != SL_ERR_CORRUPT_MESSAGE)
                other++;
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_MSG(missed == 0 && other == 0, "%s: %d flips missed, %d gave another code", what, missed,
              other);
    /* The length field: any flip breaks 12 + batchLength == size. */
    for (size_t i = SL_BATCH_OFF_LENGTH; i < SL_BATCH_OFF_LENGTH + 4; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            CHECK_CODE(shallow(b, len, &err), SL_ERR_CORRUPT_MESSAGE, &err);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_CODE(shallow(b, len, &err), SL_OK, &err);
    free(b);
}

static void test_corruption(void)
{
    flips(kcat_batch, sizeof kcat_batch, "kcat");
    bg_header_t hh = {"h", "v", 1};
    bg_record_t recs[3] = {{"a", 1, "hello hello hello", 17, 5, 1, &hh},
                           {NULL, 0, "world world world world", 23, 6, 0, NULL},
                           {"c", 1, NULL, 0, 4, 0, NULL}};
    size_t len;
    uint8_t *b = bg_build(recs, 3, SL_COMPRESSION_LZ4, &len);
    CHECK_FATAL(b != NULL);
    flips(b, len, "lz4");
    free(b);
}

/* Plain truncation breaks the length check. Truncation with batchLength and
 * CRC fixed up (a lying but self-consistent batch) passes the shallow check
 * and must be caught by the record walk. */
static void truncations(const uint8_t *orig, size_t len, const char *what)
{
    sl_err_t err;
    int bad_plain = 0, bad_consistent = 0;
    for (size_t l = 0; l < len; l++) {
        uint8_t *b = dup(orig, l);
        if (shallow(b, l, &err) != SL_ERR_CORRUPT_MESSAGE) bad_plain++;
        if (deep(b, l, 0, &err) != SL_ERR_CORRUPT_MESSAGE) bad_plain++;
        size_t n = 99;
        if (l && sl_batch_validate_set(b, l, NULL, &n, &err) != SL_ERR_CORRUPT_MESSAGE) bad_plain++;
        if (l >= SL_BATCH_HEADER_SIZE) {
            sl_put_be32(b + SL_BATCH_OFF_LENGTH, (uint32_t)(l - SL_BATCH_LOG_OVERHEAD));
            bg_fix_crc(b, l);
            if (shallow(b, l, &err) != SL_OK) bad_consistent++;
            if (deep(b, l, 0, &err) != SL_ERR_INVALID_RECORD) {
                if (bad_consistent++ < 3) fprintf(stderr, "%s: cut at %zu: %s\n", what, l, err.msg);
            }
        }
        free(b);
    }
    CHECK_MSG(bad_plain == 0, "%s: %d plain truncations not rejected", what, bad_plain);
    CHECK_MSG(bad_consistent == 0, "%s: %d consistent truncations not rejected", what,
              bad_consistent);
}

static void test_truncation(void)
{
    truncations(kcat_batch, sizeof kcat_batch, "kcat");
    bg_record_t recs[4] = {{"k1", 2, "v1", 2, 1, 0, NULL},
                           {"k2", 2, "v2v2v2v2v2v2v2v2v2v2v2v2v2", 26, 2, 0, NULL},
                           {NULL, 0, NULL, 0, 3, 0, NULL},
                           {"k4", 2, "v4", 2, 4, 0, NULL}};
    for (int comp = SL_COMPRESSION_NONE; comp <= SL_COMPRESSION_LZ4; comp += 3) {
        size_t len;
        uint8_t *b = bg_build(recs, 4, comp, &len);
        CHECK_FATAL(b != NULL);
        truncations(b, len, comp ? "lz4" : "none");
        free(b);
    }
}

static void test_header_checks(void)
{
    sl_err_t err;
    sl_batch_hdr_t h;
    uint8_t *b = dup(kcat_batch, sizeof kcat_batch);
    size_t len = sizeof kcat_batch;

    /* Magic is checked before the CRC, which older formats place elsewhere. */
    int magics[] = {0, 1, 3, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
        b[SL_BATCH_OFF_MAGIC] = (uint8_t)magics[i];
        CHECK_CODE(shallow(b, len, &err), SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT, &err);
    }
    b[SL_BATCH_OFF_MAGIC] = 2;

    /* lastOffsetDelta / recordsCount. */
    struct {
        int32_t lod, count, code;
    } counts[] = {
        {1, 1, SL_ERR_INVALID_RECORD},
        {0, 2, SL_ERR_INVALID_RECORD},
        {-1, 0, SL_ERR_INVALID_RECORD},
        {-2, -1, SL_ERR_INVALID_RECORD},
        {INT32_MAX, INT32_MIN, SL_ERR_INVALID_RECORD},
        {INT32_MAX - 1, INT32_MAX, SL_OK},
        {1, 2, SL_OK},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        sl_put_be32(b + SL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)counts[i].lod);
        sl_put_be32(b + SL_BATCH_OFF_RECORDS_COUNT, (uint32_t)counts[i].count);
        bg_fix_crc(b, len);
        CHECK_CODE(shallow(b, len, &err), counts[i].code, &err);
        /* Shallowly fine, but the one record present is not the count. */
        if (counts[i].code == SL_OK) CHECK_CODE(deep(b, len, 0, &err), SL_ERR_INVALID_RECORD, &err);
    }
    memcpy(b, kcat_batch, len);

    /* Size limits. */
    sl_batch_limits_t lim = {(uint32_t)len - 1, 0};
    CHECK_CODE(sl_batch_validate(b, len, &lim, NULL, &err), SL_ERR_MESSAGE_TOO_LARGE, &err);
    lim.max_batch_bytes = (uint32_t)len;
    CHECK_CODE(sl_batch_validate(b, len, &lim, NULL, &err), SL_OK, &err);
    lim.max_batch_bytes = UINT32_MAX; /* clamped to the hard ceiling, still fine */
    CHECK_CODE(sl_batch_validate(b, len, &lim, NULL, &err), SL_OK, &err);
    lim.max_batch_bytes = 100;
    size_t big_len;
    uint8_t *big = bg_simple(3, 100, 0, 1, &big_len);
    CHECK_FATAL(big != NULL);
    CHECK_CODE(sl_batch_validate(big, big_len, &lim, NULL, &err), SL_ERR_MESSAGE_TOO_LARGE, &err);
    size_t n;
    CHECK_CODE(sl_batch_validate_set(big, big_len, &lim, &n, &err), SL_ERR_MESSAGE_TOO_LARGE, &err);
    free(big);

    /* Codecs: known but unsupported ones pass the shallow check (the broker
     * stores them verbatim) and fail only where records are needed. */
    for (int codec = 1; codec <= 7; codec++) {
        if (codec == SL_COMPRESSION_LZ4) continue;
        sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, (uint16_t)codec);
        bg_fix_crc(b, len);
        if (codec <= SL_COMPRESSION_ZSTD) {
            CHECK_CODE(shallow(b, len, &err), SL_OK, &err);
            CHECK_CODE(deep(b, len, 0, &err), SL_ERR_UNSUPPORTED_COMPRESSION, &err);
            sl_record_iter_t it;
            sl_record_t r;
            CHECK_CODE(sl_record_iter_init(&it, b, len, NULL, &err), SL_ERR_UNSUPPORTED_COMPRESSION,
                       &err);
            CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), -1); /* a failed init stays failed */
            sl_record_iter_free(&it);
        } else {
            CHECK_CODE(shallow(b, len, &err), SL_ERR_INVALID_RECORD, &err);
        }
    }
    memcpy(b, kcat_batch, len);

    /* Produce-side checks. */
    sl_batch_hdr_parse(b, &h);
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_OK, &err);
    h.attributes = SL_BATCH_ATTR_CONTROL;
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_ERR_INVALID_RECORD, &err);
    h.attributes = SL_BATCH_ATTR_TRANSACTIONAL;
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_ERR_INVALID_RECORD, &err);
    CHECK(strstr(err.msg, "transactional") != NULL);
    h.attributes = 0;
    h.producer_id = 17;
    h.base_sequence = -1;
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_ERR_INVALID_RECORD, &err);
    h.base_sequence = 0;
    CHECK_CODE(sl_batch_validate_produce(&h, &err), SL_OK, &err);
    CHECK_EQ_INT(sl_batch_validate_produce(NULL, NULL), SL_ERR_INVALID_ARG);

    /* NULL err everywhere is fine. */
    CHECK_EQ_INT(sl_batch_validate(kcat_batch, len, NULL, NULL, NULL), SL_OK);
    CHECK_EQ_INT(sl_batch_validate(kcat_batch, 10, NULL, NULL, NULL), SL_ERR_CORRUPT_MESSAGE);
    CHECK_EQ_INT(sl_batch_validate_deep(kcat_batch, len, NULL, NULL), SL_OK);
    free(b);
}

/* A batch around a hand-written records region, CRC fixed. */
static uint8_t *hand(const void *recs, size_t rlen, int32_t count, size_t *len)
{
    *len = SL_BATCH_HEADER_SIZE + rlen;
    uint8_t *b = calloc(1, *len);
    CHECK_FATAL(b != NULL);
    sl_put_be32(b + SL_BATCH_OFF_LENGTH, (uint32_t)(*len - SL_BATCH_LOG_OVERHEAD));
    b[SL_BATCH_OFF_MAGIC] = SL_BATCH_MAGIC;
    sl_put_be32(b + SL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(count - 1));
    sl_put_be64(b + SL_BATCH_OFF_BASE_TIMESTAMP, 1000);
    sl_put_be64(b + SL_BATCH_OFF_MAX_TIMESTAMP, 1000);
    sl_put_be64(b + SL_BATCH_OFF_PRODUCER_ID, UINT64_MAX);
    sl_put_be16(b + SL_BATCH_OFF_PRODUCER_EPOCH, UINT16_MAX);
    sl_put_be32(b + SL_BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);
    sl_put_be32(b + SL_BATCH_OFF_RECORDS_COUNT, (uint32_t)count);
    if (rlen) memcpy(b + SL_BATCH_HEADER_SIZE, recs, rlen);
    bg_fix_crc(b, *len);
    return b;
}

#define R(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void test_lz4_hostile(void)
{
    sl_err_t err;
    /* A zip bomb: one 4 MiB value of zeros compresses to a few KiB. */
    enum { BOMB = 4 << 20 };
    uint8_t *zeros = calloc(1, BOMB);
    CHECK_FATAL(zeros != NULL);
    bg_record_t rec = {NULL, 0, zeros, BOMB, 0, 0, NULL};
    size_t len, plain_len;
    uint8_t *b = bg_build(&rec, 1, SL_COMPRESSION_LZ4, &len);
    uint8_t *plain = bg_build(&rec, 1, SL_COMPRESSION_NONE, &plain_len);
    CHECK_FATAL(b && plain);
    CHECK(len < 64 * 1024);
    uint32_t raw = (uint32_t)(plain_len - SL_BATCH_HEADER_SIZE);
    CHECK_CODE(deep(b, len, 0, &err), SL_OK, &err);
    CHECK_CODE(deep(b, len, raw, &err), SL_OK, &err);
    CHECK_CODE(deep(b, len, raw - 1, &err), SL_ERR_INVALID_RECORD, &err);
    CHECK_CODE(deep(b, len, 64 * 1024, &err), SL_ERR_INVALID_RECORD, &err);
    CHECK_CODE(deep(b, len, 1, &err), SL_ERR_INVALID_RECORD, &err);
    free(plain);
    free(b);
    free(zeros);

    /* Beyond the 64 MiB default, without building 64 MiB of input: one
     * compressed block of 64 KiB zeros repeated in a hand-made frame. */
    enum { BLK = 64 * 1024 };
    zeros = calloc(1, BLK);
    CHECK_FATAL(zeros != NULL);
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t fcap = LZ4F_compressFrameBound(BLK, &prefs);
    uint8_t *frame = malloc(fcap);
    CHECK_FATAL(frame != NULL);
    size_t fl = LZ4F_compressFrame(frame, fcap, zeros, BLK, &prefs);
    CHECK_FATAL(!LZ4F_isError(fl) && fl > 7 + 4 + 4);
    free(zeros);
    const uint8_t *blk = frame + 7; /* magic, FLG, BD, HC */
    size_t blk_len = fl - 7 - 4;    /* minus the end mark */
    for (int k = 1024; k <= 1025; k++) {
        size_t rlen = 7 + (size_t)k * blk_len + 4;
        uint8_t *recs = malloc(rlen);
        CHECK_FATAL(recs != NULL);
        memcpy(recs, frame, 7);
        for (int j = 0; j < k; j++) memcpy(recs + 7 + (size_t)j * blk_len, blk, blk_len);
        memset(recs + rlen - 4, 0, 4);
        b = hand(recs, rlen, 1, &len);
        sl_put_be16(b + SL_BATCH_OFF_ATTRIBUTES, SL_COMPRESSION_LZ4);
        bg_fix_crc(b, len);
        CHECK_CODE(shallow(b, len, &err), SL_OK, &err);
        /* Exactly 64 MiB fits and then fails as records; one block more
         * is refused by the cap. */
        CHECK_CODE(deep(b, len, 0, &err), SL_ERR_INVALID_RECORD, &err);
        if (k == 1024)
            CHECK_MSG(strstr(err.msg, "record 0") != NULL, "%s", err.msg);
        else
            CHECK_MSG(strstr(err.msg, "more than the limit") != NULL, "%s", err.msg);
        free(b);
        free(recs);
    }
    free(frame);

    /* A record count no limit could hold is refused before decompressing. */
    bg_record_t small = {"k", 1, "v", 1, 0, 0, NULL};
    b = bg_build(&small, 1, SL_COMPRESSION_LZ4, &len);
    CHECK_FATAL(b != NULL);
    /* batchgen writes what librdkafka writes: FLG 0x60, BD 0x40, HC 0x82. */
    CHECK(!memcmp(b + SL_BATCH_HEADER_SIZE, "\x04\x22\x4d\x18\x60\x40\x82", 7));
    uint8_t *c = dup(b, len);
    sl_put_be32(c + SL_BATCH_OFF_RECORDS_COUNT, 10000000);
    sl_put_be32(c + SL_BATCH_OFF_LAST_OFFSET_DELTA, 10000000 - 1);
    bg_fix_crc(c, len);
    CHECK_CODE(shallow(c, len, &err), SL_OK, &err);
    CHECK_CODE(deep(c, len, 1 << 20, &err), SL_ERR_INVALID_RECORD, &err);
    free(c);

    /* Frame corruptions that lz4 itself must notice (frame layout: magic 4,
     * FLG, BD, HC, then u32le block size). */
    struct {
        size_t off;
        uint8_t val;
        const char *what;
    } edits[] = {
        {0, 0x05, "magic"},
        {4, 0x00, "FLG version"},
        {4, 0x62, "FLG reserved bit"},
        {5, 0x00, "BD block size"},
        {5, 0x41, "BD reserved"},
        {6, 0x00, "header checksum"},
        {10, 0x01, "block size > 64 KiB"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        c = dup(b, len);
        c[SL_BATCH_HEADER_SIZE + edits[i].off] = edits[i].val;
        bg_fix_crc(c, len);
        CHECK_CODE(shallow(c, len, &err), SL_OK, &err);
        err.msg[0] = '\0';
        int rc = deep(c, len, 0, &err);
        CHECK_MSG(rc == SL_ERR_INVALID_RECORD, "lz4 %s: rc %d (%s)", edits[i].what, rc, err.msg);
        free(c);
    }

    /* Bytes after the frame's end mark. */
    c = malloc(len + 3);
    CHECK_FATAL(c != NULL);
    memcpy(c, b, len);
    memcpy(c + len, "xyz", 3);
    sl_put_be32(c + SL_BATCH_OFF_LENGTH, (uint32_t)(len + 3 - SL_BATCH_LOG_OVERHEAD));
    bg_fix_crc(c, len + 3);
    CHECK_CODE(shallow(c, len + 3, &err), SL_OK, &err);
    CHECK_CODE(deep(c, len + 3, 0, &err), SL_ERR_INVALID_RECORD, &err);
    free(c);
    free(b);

    /* Random damage inside a multi-block frame: whatever lz4 makes of it,
     * the outcome is either a clean batch or INVALID_RECORD, never a crash. */
    enum { N = 200 };
    bg_record_t *recs = calloc(N, sizeof *recs);
    uint8_t *vals = malloc(N * 1000);
    CHECK_FATAL(recs && vals);
    for (int i = 0; i < N * 1000; i++) vals[i] = (uint8_t)(i % 251 < 100 ? rnd() : (uint32_t)i % 5);
    for (int i = 0; i < N; i++) {
        recs[i].value = vals + i * 1000;
        recs[i].value_len = 1000;
        recs[i].timestamp = i;
    }
    b = bg_build(recs, N, SL_COMPRESSION_LZ4, &len);
    CHECK_FATAL(b != NULL);
    int other = 0, rejected = 0;
    for (int iter = 0; iter < 1500; iter++) {
        c = dup(b, len);
        int edits_n = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits_n; e++)
            c[SL_BATCH_HEADER_SIZE + rnd() % (len - SL_BATCH_HEADER_SIZE)] = (uint8_t)rnd();
        bg_fix_crc(c, len);
        int rc = deep(c, len, 0, &err);
        if (rc == SL_ERR_INVALID_RECORD)
            rejected++;
        else if (rc != SL_OK && other++ < 3)
            fprintf(stderr, "fuzz: rc %d: %s\n", rc, err.msg);
        free(c);
    }
    CHECK_EQ_INT(other, 0);
    CHECK(rejected > 0);
    free(b);
    free(vals);
    free(recs);
}

static void hand_case(const uint8_t *recs, size_t rlen, int32_t count, int want, const char *what)
{
    size_t len;
    uint8_t *b = hand(recs, rlen, count, &len);
    sl_err_t err;
    int rc = shallow(b, len, &err);
    CHECK_MSG(rc == SL_OK, "%s: shallow rc %d (%s)", what, rc, err.msg);
    err.msg[0] = '\0';
    rc = deep(b, len, 0, &err);
    CHECK_MSG(rc == want, "%s: deep rc %d, want %d (%s)", what, rc, want, err.msg);
    if (rc != SL_OK) CHECK_MSG(err.msg[0] != '\0', "%s: no message", what);
    if (getenv("TEST_VERBOSE")) printf("%-45s %s\n", what, rc ? err.msg : "ok");
    free(b);
}

static void test_hand_records(void)
{
    const int OK = SL_OK, BAD = SL_ERR_INVALID_RECORD;
    /* len=8 attr ts off keylen=1 'K' vallen=1 'a' hdrs=0 */
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 1, OK, "baseline");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00, 0x0c, 0, 0, 0x02, 0x01, 0x01, 0x00), 2,
              OK, "two records, second with null key and value");
    hand_case(R(0x0c, 0, 0, 0, 0x01, 0x01, 0x00), 1, OK, "null key and value");
    hand_case(R(0x0c, 0, 0x01, 0, 0x01, 0x01, 0x00), 1, OK, "negative timestampDelta");
    /* A non-minimal but in-range varint is accepted, as Kafka does. */
    hand_case(R(0x12, 0, 0, 0, 0x82, 0x00, 'K', 0x02, 'a', 0x00), 1, OK, "non-minimal keylen");

    hand_case(R(0x01, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 1, BAD, "negative length");
    hand_case(R(0x12, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 1, BAD, "length beyond region");
    hand_case(R(0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0), 1, BAD, "over-long length");
    hand_case(R(0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0, 0), 1, BAD, "length, 5th byte too big");
    hand_case(R(0x80), 1, BAD, "truncated length");
    hand_case(R(0x00), 1, BAD, "zero length");
    hand_case(R(0x0e, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 1, BAD, "length short of fields");
    hand_case(R(0x12, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00, 0x00), 1, BAD, "length past fields");
    hand_case(R(0x04, 0, 0x80), 1, BAD, "truncated timestampDelta");
    hand_case(
        R(0x1e, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0x01, 0x01, 0x00),
        1, BAD, "timestampDelta 10th byte too big");
    hand_case(R(0x20, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0x01,
                0x01, 0x00),
              1, BAD, "over-long timestampDelta");
    hand_case(R(0x10, 0, 0, 0x02, 0x02, 'K', 0x02, 'a', 0x00), 1, BAD, "offsetDelta 1 for 0");
    hand_case(R(0x10, 0, 0, 0x01, 0x02, 'K', 0x02, 'a', 0x00), 1, BAD, "offsetDelta -1");
    hand_case(R(0x0e, 0, 0, 0, 0x03, 0x02, 'a', 0x00), 1, BAD, "key length -2");
    hand_case(R(0x10, 0, 0, 0, 0x7e, 'K', 0x02, 'a', 0x00), 1, BAD, "key length beyond");
    hand_case(R(0x18, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 'K', 0x02, 'a', 0x00), 1, BAD,
              "key length INT32_MAX");
    hand_case(R(0x18, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 'K', 0x02, 'a', 0x00), 1, BAD,
              "key length INT32_MIN");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x09, 'a', 0x00), 1, BAD, "value length -5");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x04, 'a', 0x00), 1, BAD, "value length beyond");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x01), 1, BAD, "header count -1");
    hand_case(R(0x18, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0xfe, 0xff, 0xff, 0xff, 0x0f), 1, BAD,
              "header count INT32_MAX");
    hand_case(R(0x14, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x02, 0x01, 0x00), 1, BAD, "null header key");
    hand_case(R(0x14, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x02, 0x14, 0x00), 1, BAD,
              "header key beyond");
    hand_case(R(0x16, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x02, 0x02, 'h', 0x05), 1, BAD,
              "header value -3");
    hand_case(R(0x16, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x02, 0x02, 'h', 0x01), 1, OK,
              "null header value");
    hand_case(R(0x16, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x04, 0x02, 'h', 0x01), 1, BAD,
              "second header missing");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00, 0x00), 1, BAD, "trailing byte");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 2, BAD, "count 2, one record");
    hand_case(
        R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00, 0x10, 0, 0, 0x02, 0x02, 'K', 0x02, 'a', 0x00),
        1, BAD, "count 1, two records");
    hand_case(R(0x10, 0, 0, 0, 0x02, 'K', 0x02, 'a', 0x00), 1, OK, "baseline again");
    {
        size_t len;
        uint8_t *b = hand(NULL, 0, 1, &len);
        sl_err_t err;
        CHECK_CODE(deep(b, len, 0, &err), BAD, &err);
        free(b);
    }

    /* Sums that would overflow int64: timestamp and offset. */
    size_t len;
    sl_err_t err;
    uint8_t *b = hand(R(0x0c, 0, 0x02, 0, 0x01, 0x01, 0x00), 1, &len);
    sl_put_be64(b + SL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)INT64_MAX);
    bg_fix_crc(b, len);
    CHECK_CODE(deep(b, len, 0, &err), BAD, &err);
    free(b);
    b = hand(R(0x0c, 0, 0, 0, 0x01, 0x01, 0x00, 0x0c, 0, 0, 0x02, 0x01, 0x01, 0x00), 2, &len);
    CHECK_CODE(deep(b, len, 0, &err), OK, &err);
    sl_put_be64(b, (uint64_t)INT64_MAX); /* not covered by the CRC */
    CHECK_CODE(deep(b, len, 0, &err), BAD, &err);

    /* After an error the iterator stays failed. */
    sl_record_iter_t it;
    sl_record_t r;
    CHECK_CODE(sl_record_iter_init(&it, b, len, NULL, &err), OK, &err);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), 1);
    CHECK_EQ_INT(r.offset, INT64_MAX);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), -1);
    CHECK_EQ_INT(err.code, BAD);
    CHECK(strstr(err.msg, "record 1") != NULL);
    CHECK_EQ_INT(sl_record_iter_next(&it, &r, &err), -1);
    sl_record_iter_free(&it);
    free(b);
}

static void test_set(void)
{
    sl_err_t err;
    size_t l1 = sizeof kcat_batch, l2, l3, n;
    uint8_t *b2 = bg_simple(5, 20, 1, 2, &l2);
    bg_record_t rec = {"k", 1, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", 50, 0, 0, NULL};
    uint8_t *b3 = bg_build(&rec, 1, SL_COMPRESSION_LZ4, &l3);
    CHECK_FATAL(b2 && b3);
    size_t total = l1 + l2 + l3;
    uint8_t *s = malloc(total + l2);
    CHECK_FATAL(s != NULL);
    memcpy(s, kcat_batch, l1);
    memcpy(s + l1, b2, l2);
    memcpy(s + l1 + l2, b3, l3);
    memcpy(s + total, b2, l2);

    CHECK_CODE(sl_batch_validate_set(s, total, NULL, &n, &err), SL_OK, &err);
    CHECK_EQ_INT(n, 3);
    CHECK_CODE(sl_batch_validate_set(s, total, NULL, NULL, &err), SL_OK, &err);
    CHECK_CODE(sl_batch_validate_set(s, total + l2, NULL, &n, &err), SL_OK, &err);
    CHECK_EQ_INT(n, 4);
    /* Trailing partial batch, cut anywhere in the fourth. */
    int bad = 0;
    for (size_t cut = 1; cut < l2; cut++) {
        n = 99;
        if (sl_batch_validate_set(s, total + cut, NULL, &n, &err) != SL_ERR_CORRUPT_MESSAGE ||
            n != 0)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_CODE(sl_batch_validate_set(s, total + 5, NULL, &n, &err), SL_ERR_CORRUPT_MESSAGE, &err);
    CHECK_CODE(sl_batch_validate_set(s, total + 30, NULL, &n, &err), SL_ERR_CORRUPT_MESSAGE, &err);
    /* A negative batchLength in the trailer. */
    sl_put_be32(s + total + SL_BATCH_OFF_LENGTH, 0xfffffffcu);
    CHECK_CODE(sl_batch_validate_set(s, total + l2, NULL, &n, &err), SL_ERR_CORRUPT_MESSAGE, &err);
    /* The second batch damaged: its error, naming it. */
    s[l1 + 40] ^= 1;
    CHECK_CODE(sl_batch_validate_set(s, total, NULL, &n, &err), SL_ERR_CORRUPT_MESSAGE, &err);
    CHECK(strstr(err.msg, "batch 1 at position 82") != NULL);
    s[l1 + 40] ^= 1;
    s[l1 + l2 + SL_BATCH_OFF_MAGIC] = 1;
    CHECK_CODE(sl_batch_validate_set(s, total, NULL, &n, &err),
               SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT, &err);
    CHECK_CODE(sl_batch_validate_set(s, 0, NULL, &n, &err), SL_OK, &err);
    CHECK_EQ_INT(n, 0);
    free(s);
    free(b2);
    free(b3);
}

static void test_varints(void)
{
    uint8_t buf[16];
    const int32_t v32[] = {
        0,   1,    -1,    2,    -2,        63,        -64,           64,
        -65, 8191, -8192, 8192, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
    const size_t n32[] = {1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 5, 5, 5, 5};
    for (size_t i = 0; i < sizeof v32 / sizeof v32[0]; i++) {
        size_t n = sl_varint_encode(buf, v32[i]);
        CHECK_EQ_INT(n, n32[i]);
        int32_t out = 12345;
        CHECK_EQ_INT(sl_varint_decode(buf, buf + n, &out), n);
        CHECK_EQ_INT(out, v32[i]);
        int64_t out64 = 0; /* a varint is also a valid varlong */
        CHECK_EQ_INT(sl_varlong_decode(buf, buf + n, &out64), n);
        CHECK_EQ_INT(out64, v32[i]);
        for (size_t cut = 0; cut < n; cut++)
            CHECK_EQ_INT(sl_varint_decode(buf, buf + cut, &out), 0);
    }
    const int64_t v64[] = {0,
                           1,
                           -1,
                           INT32_MAX,
                           INT32_MIN,
                           (int64_t)INT32_MAX + 1,
                           INT64_MAX,
                           INT64_MIN,
                           INT64_MAX - 1,
                           INT64_MIN + 1};
    const size_t n64[] = {1, 1, 1, 5, 5, 5, 10, 10, 10, 10};
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        size_t n = sl_varlong_encode(buf, v64[i]);
        CHECK_EQ_INT(n, n64[i]);
        int64_t out = 12345;
        CHECK_EQ_INT(sl_varlong_decode(buf, buf + n, &out), n);
        CHECK_EQ_INT(out, v64[i]);
        for (size_t cut = 0; cut < n; cut++)
            CHECK_EQ_INT(sl_varlong_decode(buf, buf + cut, &out), 0);
    }
    /* Exact bytes. */
    CHECK(sl_varint_encode(buf, -1) == 1 && buf[0] == 0x01);
    CHECK(sl_varint_encode(buf, 64) == 2 && buf[0] == 0x80 && buf[1] == 0x01);
    CHECK(sl_varint_encode(buf, INT32_MIN) == 5 && !memcmp(buf, "\xff\xff\xff\xff\x0f", 5));
    CHECK(sl_varlong_encode(buf, INT64_MIN) == 10 &&
          !memcmp(buf, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10));

    /* Random round trips. */
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        int shift = (int)(rnd() % 64);
        int64_t v = (int64_t)(((uint64_t)rnd() << 32 | rnd()) >> shift);
        if (rnd() & 1) v = (int64_t) ~(uint64_t)v; /* -v - 1 without overflow */
        int64_t o64;
        int32_t o32;
        size_t n = sl_varlong_encode(buf, v);
        if (sl_varlong_decode(buf, buf + n, &o64) != n || o64 != v) bad++;
        n = sl_varint_encode(buf, (int32_t)v);
        if (sl_varint_decode(buf, buf + n, &o32) != n || o32 != (int32_t)v) bad++;
    }
    CHECK_EQ_INT(bad, 0);

    /* Over-long: too many bytes, or bits beyond the type's width. */
    int32_t o32;
    int64_t o64;
    const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    CHECK_EQ_INT(sl_varint_decode(six, six + 6, &o32), 0);
    const uint8_t wide5[] = {0xff, 0xff, 0xff, 0xff, 0x10};
    CHECK_EQ_INT(sl_varint_decode(wide5, wide5 + 5, &o32), 0);
    const uint8_t ok5[] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
    CHECK_EQ_INT(sl_varint_decode(ok5, ok5 + 5, &o32), 5);
    CHECK_EQ_INT(o32, INT32_MAX);
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    CHECK_EQ_INT(sl_varlong_decode(eleven, eleven + 11, &o64), 0);
    const uint8_t wide10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    CHECK_EQ_INT(sl_varlong_decode(wide10, wide10 + 10, &o64), 0);
    const uint8_t cont10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00};
    CHECK_EQ_INT(sl_varlong_decode(cont10, cont10 + 11, &o64), 0);
    /* Non-minimal but within the width: accepted (Kafka reads it too). */
    const uint8_t padded[] = {0x80, 0x80, 0x00};
    CHECK_EQ_INT(sl_varint_decode(padded, padded + 3, &o32), 3);
    CHECK_EQ_INT(o32, 0);
    /* Empty and NULL input. */
    CHECK_EQ_INT(sl_varint_decode(buf, buf, &o32), 0);
    CHECK_EQ_INT(sl_varint_decode(NULL, NULL, &o32), 0);
    CHECK_EQ_INT(sl_varlong_decode(buf, buf, &o64), 0);
}

int main(void)
{
    test_kcat();
    test_vectors();
    test_roundtrip();
    test_corruption();
    test_truncation();
    test_header_checks();
    test_lz4_hostile();
    test_hand_records();
    test_set();
    test_varints();
    return check_exit();
}
