/* fuzz_batch.c — libFuzzer target for RecordBatch v2 validation and record
 * iteration (proto/batch.c): sl_batch_validate, sl_batch_validate_set,
 * sl_batch_validate_deep (lz4 inflate, record walk), sl_record_iter_* and
 * the varint codecs.
 *
 * Input: one flag byte, then the batch bytes (one batch, or several back to
 * back). Flags:
 *   bit 0     recompute the CRC-32C of every batch found by walking the
 *             batchLength fields (CRC-covered fields are then reachable by
 *             mutation; without it the CRC check itself is fuzzed);
 *   bit 1     first set lastOffsetDelta = recordsCount - 1 in each batch;
 *   bits 2-3  max_batch_bytes: 0 (the 256 MiB ceiling), 128, 1024, 65536;
 *   bits 4-5  max_uncompressed_bytes: 0 (64 MiB), 64, 1024, 65536.
 * The bytes go in an exact-size heap buffer, so ASan sees any read past the
 * batch.
 *
 * Checks:
 *   - sl_batch_validate and sl_batch_validate_set return exactly the code of
 *     a small reference model written from the order documented in batch.h;
 *   - deep validation agrees with the iterator: SL_OK iff the iterator
 *     yields exactly recordsCount records and then 0; a failed iterator
 *     stays failed;
 *   - every record: offset = baseOffset + index, key/value/headers views
 *     inside the records region (the batch or the decompressed copy), null
 *     iff length -1, the headers re-parse to header_count entries filling
 *     headers_len exactly, LogAppendTime batches report maxTimestamp;
 *   - every deep-valid batch is re-encoded by tests/lib/batchgen.c (proto's
 *     builder, the producer's and the broker's encoder), uncompressed and
 *     lz4, and iterates back to the same records (keys, values, headers,
 *     timestamps);
 *   - varint/varlong: decode(encode(x)) == x for the values found in the
 *     input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batchgen.h"
#include "crc32c.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_RECORDS_REBUILT 4096

static volatile size_t sink;

/* ---- reference model of the shallow checks ------------------------------- */

static int ref_validate(const uint8_t *b, size_t len, const sl_batch_limits_t *lim)
{
    if (len < SL_BATCH_HEADER_SIZE) return SL_ERR_CORRUPT_MESSAGE;
    int32_t blen = (int32_t)sl_be32(b + 8);
    if (blen < 0 || (uint64_t)blen + 12 != len) return SL_ERR_CORRUPT_MESSAGE;
    uint64_t max = lim->max_batch_bytes == 0 || lim->max_batch_bytes > SL_BATCH_MAX_SIZE
                       ? SL_BATCH_MAX_SIZE
                       : lim->max_batch_bytes;
    if (len > max) return SL_ERR_MESSAGE_TOO_LARGE;
    if (b[16] != 2) return SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (sl_crc32c(0, b + 21, len - 21) != sl_be32(b + 17)) return SL_ERR_CORRUPT_MESSAGE;
    if ((sl_be16(b + 21) & 7) > 4) return SL_ERR_INVALID_RECORD;
    int32_t count = (int32_t)sl_be32(b + 57);
    int32_t lod = (int32_t)sl_be32(b + 23);
    if (count < 1 || (int64_t)lod + 1 != count) return SL_ERR_INVALID_RECORD;
    return SL_OK;
}

static int ref_validate_set(const uint8_t *b, size_t len, const sl_batch_limits_t *lim, size_t *n)
{
    size_t pos = 0;
    *n = 0;
    while (pos < len) {
        if (len - pos < 12) return SL_ERR_CORRUPT_MESSAGE;
        int32_t blen = (int32_t)sl_be32(b + pos + 8);
        if (blen < 0 || (uint64_t)blen + 12 > len - pos) return SL_ERR_CORRUPT_MESSAGE;
        int rc = ref_validate(b + pos, (size_t)blen + 12, lim);
        if (rc != SL_OK) return rc;
        pos += (size_t)blen + 12;
        ++*n;
    }
    return SL_OK;
}

/* ---- records --------------------------------------------------------------- */

static int inside(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* The headers of a record, parsed again: header_count entries, exactly. */
static void check_headers(const sl_record_t *r)
{
    const uint8_t *p = r->headers, *end = r->headers + r->headers_len;
    for (int32_t i = 0; i < r->header_count; i++) {
        int32_t kl, vl;
        size_t n = sl_varint_decode(p, end, &kl);
        FUZZ_ASSERT(n > 0 && kl >= 0 && (size_t)kl <= (size_t)(end - p - n));
        p += n + (size_t)kl;
        n = sl_varint_decode(p, end, &vl);
        FUZZ_ASSERT(n > 0 && vl >= -1);
        p += n;
        if (vl > 0) {
            FUZZ_ASSERT((size_t)vl <= (size_t)(end - p));
            p += vl;
        }
    }
    FUZZ_ASSERT(p == end);
}

/* A copy of one record, for the re-encoding comparison. */
typedef struct rec_copy {
    int64_t ts;
    const uint8_t *key, *value, *headers;
    int32_t key_len, value_len, header_count;
    size_t headers_len;
} rec_copy_t;

/* Walks the batch's records, checking each; fills recs[] (up to cap) when
 * given. Returns the iterator's final result: 0 (all read), or the error
 * code of init / next. */
static int iterate(const uint8_t *b, size_t len, const sl_batch_limits_t *lim, rec_copy_t *recs,
                   size_t cap, size_t *nrecs, uint8_t **owned)
{
    sl_record_iter_t it;
    sl_err_t err;
    sl_err_clear(&err);
    *nrecs = 0;
    *owned = NULL;
    int rc = sl_record_iter_init(&it, b, len, lim, &err);
    if (rc != SL_OK) {
        FUZZ_ASSERT(err.msg[0] != '\0');
        sl_record_t r;
        FUZZ_ASSERT(sl_record_iter_next(&it, &r, NULL) == -1); /* a failed one keeps failing */
        sl_record_iter_free(&it);
        return rc;
    }
    const uint8_t *lo = it.owned ? it.owned : b + SL_BATCH_HEADER_SIZE;
    const uint8_t *hi = it.owned ? it.end : b + len;
    FUZZ_ASSERT(it.pos == lo && it.end == hi);
    int compressed = (it.hdr.attributes & SL_BATCH_COMPRESSION_MASK) != SL_COMPRESSION_NONE;
    FUZZ_ASSERT(compressed == (it.owned != NULL));
    sl_record_t r;
    int k;
    int64_t idx = 0;
    while ((k = sl_record_iter_next(&it, &r, &err)) == 1) {
        FUZZ_ASSERT(idx < it.hdr.records_count);
        FUZZ_ASSERT(r.offset == it.hdr.base_offset + idx);
        FUZZ_ASSERT((r.key == NULL) == (r.key_len == -1));
        if (r.key) FUZZ_ASSERT(r.key_len >= 0 && inside(r.key, (size_t)r.key_len, lo, hi));
        FUZZ_ASSERT((r.value == NULL) == (r.value_len == -1));
        if (r.value) FUZZ_ASSERT(r.value_len >= 0 && inside(r.value, (size_t)r.value_len, lo, hi));
        FUZZ_ASSERT(r.header_count >= 0 && inside(r.headers, r.headers_len, lo, hi));
        check_headers(&r);
        if (it.hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME)
            FUZZ_ASSERT(r.timestamp == it.hdr.max_timestamp);
        if (r.key_len > 0) sink += r.key[0] + r.key[r.key_len - 1];
        if (r.value_len > 0) sink += r.value[0] + r.value[r.value_len - 1];
        if (recs && (size_t)idx < cap)
            recs[idx] = (rec_copy_t){.ts = r.timestamp,
                                     .key = r.key,
                                     .value = r.value,
                                     .headers = r.headers,
                                     .key_len = r.key_len,
                                     .value_len = r.value_len,
                                     .header_count = r.header_count,
                                     .headers_len = r.headers_len};
        idx++;
    }
    if (k == 0) {
        FUZZ_ASSERT(idx == it.hdr.records_count && it.pos == it.end);
        FUZZ_ASSERT(sl_record_iter_next(&it, &r, NULL) == 0); /* the end stays the end */
    } else {
        FUZZ_ASSERT(k == -1 && err.code == SL_ERR_INVALID_RECORD && err.msg[0] != '\0');
        FUZZ_ASSERT(sl_record_iter_next(&it, &r, NULL) == -1);
    }
    *nrecs = (size_t)idx;
    /* The views stay valid until the iterator is freed: hand its buffer on. */
    *owned = it.owned;
    it.owned = NULL;
    sl_record_iter_free(&it);
    return k == 0 ? 0 : SL_ERR_INVALID_RECORD;
}

static int ts_tame(int64_t t)
{
    return t > -(INT64_C(1) << 62) && t < (INT64_C(1) << 62);
}

/* Re-encodes recs with batchgen (compression c) and checks the result
 * iterates to the same records. */
static void rebuild(const rec_copy_t *recs, size_t n, int c)
{
    bg_record_t *in = calloc(n, sizeof *in);
    bg_header_t *hdrs = NULL;
    char *keys = NULL;
    size_t nh = 0, keybytes = 0;
    FUZZ_ASSERT(in != NULL);
    for (size_t i = 0; i < n; i++) {
        /* batchgen takes NUL-terminated header keys: count what is needed */
        const uint8_t *p = recs[i].headers, *end = p + recs[i].headers_len;
        for (int32_t h = 0; h < recs[i].header_count; h++) {
            int32_t kl, vl;
            p += sl_varint_decode(p, end, &kl);
            if (memchr(p, 0, (size_t)kl)) goto out; /* not representable */
            keybytes += (size_t)kl + 1;
            p += kl;
            p += sl_varint_decode(p, end, &vl);
            if (vl > 0) p += vl;
            nh++;
        }
    }
    hdrs = calloc(nh ? nh : 1, sizeof *hdrs);
    keys = malloc(keybytes ? keybytes : 1);
    FUZZ_ASSERT(hdrs && keys);
    size_t hi = 0, ki = 0;
    for (size_t i = 0; i < n; i++) {
        in[i].key = recs[i].key;
        in[i].key_len = recs[i].key_len;
        in[i].value = recs[i].value;
        in[i].value_len = recs[i].value_len;
        in[i].timestamp = recs[i].ts;
        in[i].nheaders = recs[i].header_count;
        in[i].headers = hdrs + hi;
        const uint8_t *p = recs[i].headers, *end = p + recs[i].headers_len;
        for (int32_t h = 0; h < recs[i].header_count; h++, hi++) {
            int32_t kl, vl;
            p += sl_varint_decode(p, end, &kl);
            memcpy(keys + ki, p, (size_t)kl);
            keys[ki + (size_t)kl] = 0;
            hdrs[hi].key = keys + ki;
            ki += (size_t)kl + 1;
            p += kl;
            p += sl_varint_decode(p, end, &vl);
            hdrs[hi].value = vl >= 0 ? p : NULL;
            hdrs[hi].value_len = vl;
            if (vl > 0) p += vl;
        }
    }
    size_t blen = 0;
    uint8_t *b = bg_build(in, (int)n, c, &blen);
    FUZZ_ASSERT(b != NULL);
    sl_err_t err;
    FUZZ_ASSERT(sl_batch_validate_deep(b, blen, NULL, &err) == SL_OK);
    rec_copy_t *back = calloc(n, sizeof *back);
    FUZZ_ASSERT(back != NULL);
    size_t nb;
    uint8_t *owned;
    FUZZ_ASSERT(iterate(b, blen, NULL, back, n, &nb, &owned) == 0 && nb == n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(back[i].ts == recs[i].ts);
        FUZZ_ASSERT(back[i].key_len == recs[i].key_len);
        FUZZ_ASSERT(back[i].key_len <= 0 ||
                    memcmp(back[i].key, recs[i].key, (size_t)back[i].key_len) == 0);
        FUZZ_ASSERT(back[i].value_len == recs[i].value_len);
        FUZZ_ASSERT(back[i].value_len <= 0 ||
                    memcmp(back[i].value, recs[i].value, (size_t)back[i].value_len) == 0);
        FUZZ_ASSERT(back[i].header_count == recs[i].header_count);
        FUZZ_ASSERT(back[i].headers_len == recs[i].headers_len);
        FUZZ_ASSERT(back[i].headers_len == 0 ||
                    memcmp(back[i].headers, recs[i].headers, back[i].headers_len) == 0);
    }
    free(owned);
    free(back);
    free(b);
out:
    free(keys);
    free(hdrs);
    free(in);
}

/* Deep validation, iteration and the re-encoding of one batch. */
static void check_batch(const uint8_t *b, size_t len, const sl_batch_limits_t *lim)
{
    sl_err_t err;
    sl_err_clear(&err);
    int deep = sl_batch_validate_deep(b, len, lim, &err);
    FUZZ_ASSERT(deep == SL_OK || err.msg[0] != '\0');
    sl_batch_hdr_t h;
    int shallow = sl_batch_validate(b, len, lim, &h, NULL);
    FUZZ_ASSERT(shallow == ref_validate(b, len, lim));
    if (shallow != SL_OK) FUZZ_ASSERT(deep == shallow);
    if (shallow == SL_OK) {
        int prc = sl_batch_validate_produce(&h, &err);
        FUZZ_ASSERT(prc == SL_OK || prc == SL_ERR_INVALID_RECORD);
    }

    size_t cap = shallow == SL_OK && h.records_count > 0 && h.records_count <= MAX_RECORDS_REBUILT
                     ? (size_t)h.records_count
                     : 0;
    rec_copy_t *recs = cap ? calloc(cap, sizeof *recs) : NULL;
    size_t n = 0;
    uint8_t *owned = NULL;
    int it = iterate(b, len, lim, recs, cap, &n, &owned);
    if (it == 0)
        FUZZ_ASSERT(deep == SL_OK);
    else
        FUZZ_ASSERT(deep == it);

    if (deep == SL_OK && recs) {
        int tame = 1;
        for (size_t i = 0; i < n && tame; i++) tame = ts_tame(recs[i].ts);
        if (tame) {
            rebuild(recs, n, SL_COMPRESSION_NONE);
            rebuild(recs, n, SL_COMPRESSION_LZ4);
        }
    }
    free(owned);
    free(recs);
}

/* ---- varints ------------------------------------------------------------- */

static void check_varints(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    int32_t v;
    int64_t w;
    uint8_t buf[10];
    size_t n = sl_varint_decode(p, end, &v);
    if (n) {
        FUZZ_ASSERT(n <= 5);
        size_t e = sl_varint_encode(buf, v);
        int32_t v2;
        FUZZ_ASSERT(e <= n && sl_varint_decode(buf, buf + e, &v2) == e && v2 == v);
    }
    n = sl_varlong_decode(p, end, &w);
    if (n) {
        FUZZ_ASSERT(n <= 10);
        size_t e = sl_varlong_encode(buf, w);
        int64_t w2;
        FUZZ_ASSERT(e <= n && sl_varlong_decode(buf, buf + e, &w2) == e && w2 == w);
    }
}

/* ---- driving ------------------------------------------------------------- */

/* Applies the fix-up flags to every batch found by walking batchLength. */
static void fix_up(uint8_t *b, size_t len, int fix_crc, int fix_lod)
{
    size_t pos = 0;
    while (len - pos >= SL_BATCH_HEADER_SIZE) {
        int32_t blen = (int32_t)sl_be32(b + pos + 8);
        if (blen < SL_BATCH_HEADER_SIZE - 12 || (uint64_t)blen + 12 > len - pos) break;
        size_t total = (size_t)blen + 12;
        if (fix_lod) {
            uint32_t count = sl_be32(b + pos + SL_BATCH_OFF_RECORDS_COUNT);
            sl_put_be32(b + pos + SL_BATCH_OFF_LAST_OFFSET_DELTA, count - 1);
        }
        if (fix_crc) bg_fix_crc(b + pos, total);
        pos += total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t max_batch[4] = {0, 128, 1024, 65536};
    static const uint32_t max_unc[4] = {0, 64, 1024, 65536};
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t len = size - 1;
    uint8_t *b = malloc(len ? len : 1);
    FUZZ_ASSERT(b != NULL);
    if (len) memcpy(b, data + 1, len);
    fix_up(b, len, flags & 1, flags & 2);
    sl_batch_limits_t lim = {max_batch[(flags >> 2) & 3], max_unc[(flags >> 4) & 3]};

    check_varints(b, len);

    /* the whole input as one batch */
    check_batch(b, len, &lim);

    /* as a set, and each batch of it */
    size_t n = 0, rn = 0;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = sl_batch_validate_set(b, len, &lim, &n, &err);
    FUZZ_ASSERT(rc == ref_validate_set(b, len, &lim, &rn));
    FUZZ_ASSERT(rc == SL_OK ? n == rn : n == 0 && err.msg[0] != '\0');
    size_t pos = 0, count = 0;
    while (len - pos >= 12 && count < 64) {
        int32_t blen = (int32_t)sl_be32(b + pos + 8);
        if (blen < 0 || (uint64_t)blen + 12 > len - pos) break;
        size_t total = (size_t)blen + 12;
        /* an exact-size copy, so a read past this batch is caught too */
        uint8_t *one = malloc(total);
        FUZZ_ASSERT(one != NULL);
        memcpy(one, b + pos, total);
        if (count > 0 || total != len) check_batch(one, total, &lim);
        free(one);
        pos += total;
        count++;
    }
    free(b);
    return 0;
}
