/* batchgen.c — test batches through proto's builder (batch_build.h).
 *
 * This file only adapts bg_record_t (the tests' vocabulary, with i32
 * lengths) to the builder; the bytes come from the same encoder the
 * producer and the broker use. What keeps that encoder honest is
 * tests/unit/test_batch.c and test_batch_build.c, which compare its output
 * with hand-written byte vectors.
 */
#include "batchgen.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_build.h"
#include "crc32c.h"

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

/* Appends r, its headers copied into proto's type in hbuf (room for
 * r->nheaders); returns the builder's code. */
static int append(sl_batch_builder_t *b, const bg_record_t *r, sl_rec_header_t *hbuf)
{
    for (int i = 0; i < r->nheaders; i++)
        hbuf[i] = (sl_rec_header_t){r->headers[i].key, r->headers[i].value,
                                    r->headers[i].value ? (size_t)r->headers[i].value_len : 0};
    sl_batch_rec_t rec = {.timestamp = r->timestamp,
                          .key = r->key,
                          .key_len = r->key ? (size_t)r->key_len : 0,
                          .value = r->value,
                          .value_len = r->value ? (size_t)r->value_len : 0,
                          .headers = r->nheaders ? hbuf : NULL,
                          .header_count = (size_t)r->nheaders};
    return sl_batch_build_append(b, &rec);
}

uint8_t *bg_build(const bg_record_t *recs, int n, int compression, size_t *len)
{
    if (!recs || n < 1 || !len) return NULL;
    if (compression != SL_COMPRESSION_NONE && compression != SL_COMPRESSION_LZ4) return NULL;
    int maxh = 0;
    for (int i = 0; i < n; i++) {
        if (!record_ok(&recs[i])) return NULL;
        if (recs[i].nheaders > maxh) maxh = recs[i].nheaders;
    }
    sl_rec_header_t *hbuf = malloc((size_t)maxh * sizeof *hbuf + 1);
    sl_batch_builder_t b;
    if (!hbuf || sl_batch_build_init(&b, 4096, 1) != SL_OK) {
        free(hbuf);
        return NULL;
    }
    int rc = SL_OK;
    for (int i = 0; i < n && rc == SL_OK; i++) rc = append(&b, &recs[i], hbuf);
    free(hbuf);
    uint8_t *out = NULL;
    if (rc == SL_OK && compression == SL_COMPRESSION_NONE) {
        rc = sl_batch_build_finish(&b, NULL);
        if (rc == SL_OK) {
            out = b.buf; /* taken from the builder */
            *len = b.len;
            b.buf = NULL;
        }
    } else if (rc == SL_OK) {
        /* Always compressed, even when it does not shrink: tests ask for
         * lz4 to exercise the lz4 path. */
        rc = sl_batch_build_finish_compressed(&b, NULL, compression, &out, len);
    }
    sl_batch_build_free(&b);
    return rc == SL_OK ? out : NULL;
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
    if (!batch || len < SL_BATCH_HEADER_SIZE) return;
    sl_put_be32(batch + SL_BATCH_OFF_CRC,
                sl_crc32c(0, batch + SL_BATCH_OFF_ATTRIBUTES, len - SL_BATCH_OFF_ATTRIBUTES));
}
