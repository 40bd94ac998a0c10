/* batchgen.c — a RecordBatch v2 encoder for tests.
 *
 * Written apart from proto/batch.c on purpose: its own varints, its own
 * header layout (offsets spelled out from kafka-protocol.md §4.1 rather than
 * taken from batch.h), so a mistake in one is caught by the other. Only the
 * compression constants and the CRC come from proto/.
 */
#include "batchgen.h"

#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h" /* SL_COMPRESSION_* only */
#include "crc32c.h"

#define HDR_SIZE  61
#define CRC_START 21

typedef struct growbuf {
    uint8_t *p;
    size_t len, cap;
    int failed;
} growbuf_t;

static void gb_put(growbuf_t *b, const void *data, size_t n)
{
    if (b->failed) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void gb_byte(growbuf_t *b, uint8_t v)
{
    gb_put(b, &v, 1);
}

/* Unsigned LEB128 of the zig-zag value. Zig-zag written as "negative numbers
 * become the bitwise complement of twice the value", a different route to
 * the same mapping than batch.c's xor-with-sign-mask. */
static void gb_zigzag(growbuf_t *b, int64_t v)
{
    uint64_t u = v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
    do {
        uint8_t byte = u & 0x7f;
        u >>= 7;
        gb_byte(b, (uint8_t)(byte | (u ? 0x80 : 0)));
    } while (u);
}

static void gb_bytes(growbuf_t *b, const void *data, int32_t len)
{
    if (!data) {
        gb_zigzag(b, -1);
        return;
    }
    gb_zigzag(b, len);
    gb_put(b, data, (size_t)len);
}

static void be(uint8_t *p, uint64_t v, int nbytes)
{
    for (int i = nbytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int record_ok(const bg_record_t *r)
{
    if ((r->key && r->key_len < 0) || (r->value && r->value_len < 0)) return 0;
    if (r->nheaders < 0 || (r->nheaders > 0 && !r->headers)) return 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (!r->headers[i].key) return 0;
        if (r->headers[i].value && r->headers[i].value_len < 0) return 0;
    }
    return 1;
}

static void encode_record(growbuf_t *out, growbuf_t *body, const bg_record_t *r, int index,
                          int64_t base_ts)
{
    body->len = 0;
    gb_byte(body, 0); /* attributes */
    gb_zigzag(body, (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts));
    gb_zigzag(body, index);
    gb_bytes(body, r->key, r->key_len);
    gb_bytes(body, r->value, r->value_len);
    gb_zigzag(body, r->nheaders);
    for (int i = 0; i < r->nheaders; i++) {
        const bg_header_t *h = &r->headers[i];
        gb_bytes(body, h->key, (int32_t)strlen(h->key));
        gb_bytes(body, h->value, h->value_len);
    }
    if (body->failed) {
        out->failed = 1;
        return;
    }
    gb_zigzag(out, (int64_t)body->len);
    gb_put(out, body->p, body->len);
}

static uint8_t *lz4_frame(const uint8_t *src, size_t len, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    size_t cap = LZ4F_compressFrameBound(len, &prefs);
    uint8_t *dst = malloc(cap);
    if (!dst) return NULL;
    size_t n = LZ4F_compressFrame(dst, cap, src, len, &prefs);
    if (LZ4F_isError(n)) {
        free(dst);
        return NULL;
    }
    *out_len = n;
    return dst;
}

uint8_t *bg_build(const bg_record_t *recs, int n, int compression, size_t *len)
{
    if (!recs || n < 1 || !len) return NULL;
    if (compression != SL_COMPRESSION_NONE && compression != SL_COMPRESSION_LZ4) return NULL;
    int64_t base_ts = recs[0].timestamp, max_ts = recs[0].timestamp;
    for (int i = 0; i < n; i++) {
        if (!record_ok(&recs[i])) return NULL;
        if (recs[i].timestamp > max_ts) max_ts = recs[i].timestamp;
    }

    growbuf_t raw = {0}, body = {0};
    for (int i = 0; i < n; i++) encode_record(&raw, &body, &recs[i], i, base_ts);
    free(body.p);
    if (raw.failed) {
        free(raw.p);
        return NULL;
    }

    const uint8_t *payload = raw.p;
    size_t payload_len = raw.len;
    uint8_t *packed = NULL;
    if (compression == SL_COMPRESSION_LZ4) {
        packed = lz4_frame(raw.p, raw.len, &payload_len);
        if (!packed) {
            free(raw.p);
            return NULL;
        }
        payload = packed;
    }

    uint8_t *b = NULL;
    size_t total = HDR_SIZE + payload_len;
    if (total - 12 <= INT32_MAX) b = malloc(total);
    if (b) {
        be(b + 0, 0, 8);                      /* baseOffset */
        be(b + 8, total - 12, 4);             /* batchLength */
        be(b + 12, 0, 4);                     /* partitionLeaderEpoch */
        b[16] = 2;                            /* magic */
        be(b + 21, (uint64_t)compression, 2); /* attributes */
        be(b + 23, (uint64_t)(n - 1), 4);     /* lastOffsetDelta */
        be(b + 27, (uint64_t)base_ts, 8);     /* baseTimestamp */
        be(b + 35, (uint64_t)max_ts, 8);      /* maxTimestamp */
        be(b + 43, UINT64_MAX, 8);            /* producerId -1 */
        be(b + 51, UINT64_MAX, 2);            /* producerEpoch -1 */
        be(b + 53, UINT64_MAX, 4);            /* baseSequence -1 */
        be(b + 57, (uint64_t)n, 4);           /* recordsCount */
        memcpy(b + HDR_SIZE, payload, payload_len);
        bg_fix_crc(b, total);
        *len = total;
    }
    free(packed);
    free(raw.p);
    return b;
}

/* Value byte j of record i is the low byte of the j-th step of a xorshift32
 * stream seeded with seed ^ (i + 1) * 0x9E3779B9 (0 replaced by 1): cheap,
 * reproducible in a test, and not so regular that lz4 makes it vanish. */
uint8_t *bg_simple(int n, size_t value_size, int64_t ts, uint32_t seed, size_t *len)
{
    if (n < 1 || !len) return NULL;
    if (value_size > INT32_MAX || value_size > SIZE_MAX / (size_t)n) return NULL;
    bg_record_t *recs = calloc((size_t)n, sizeof *recs);
    uint8_t *values = malloc(value_size * (size_t)n + 1);
    uint8_t *out = NULL;
    if (recs && values) {
        for (int i = 0; i < n; i++) {
            uint8_t *v = values + (size_t)i * value_size;
            uint32_t x = seed ^ (uint32_t)(i + 1) * 0x9E3779B9u;
            if (!x) x = 1;
            for (size_t j = 0; j < value_size; j++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v[j] = (uint8_t)x;
            }
            recs[i].value = v;
            recs[i].value_len = (int32_t)value_size;
            recs[i].timestamp = ts;
        }
        out = bg_build(recs, n, SL_COMPRESSION_NONE, len);
    }
    free(values);
    free(recs);
    return out;
}

void bg_fix_crc(uint8_t *batch, size_t len)
{
    if (!batch || len < HDR_SIZE) return;
    be(batch + 17, sl_crc32c(0, batch + CRC_START, len - CRC_START), 4);
}
