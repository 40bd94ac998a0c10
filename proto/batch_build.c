/* batch_build.c — RecordBatch v2 encoding (see batch_build.h).
 *
 * A record's length varint comes before its body, so append sizes the body
 * first (record_body_size) and then writes it once, in place. The sizing
 * and the writing walk the same fields in the same order; keep them in
 * step.
 */
#include "batch_build.h"

#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "crc32c.h"

/* Bytes of the zig-zag varint of v (1..10). */
static size_t varint_size(int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

/* A nullable byte string: length varint and bytes, or varint -1. */
static size_t bytes_size(const void *data, size_t len)
{
    return data ? varint_size((int64_t)len) + len : 1;
}

static uint8_t *put_bytes(uint8_t *p, const void *data, size_t len)
{
    if (!data) {
        *p++ = 1; /* zig-zag(-1): null */
        return p;
    }
    p += sl_varint_encode(p, (int32_t)len);
    if (len) memcpy(p, data, len);
    return p + len;
}

/* attributes, timestampDelta, offsetDelta, key, value, headers; or 0 when
 * r is out of contract (lengths travel as i32 varints, header keys are
 * strings). One pass both checks and sizes: this runs for every record the
 * producer accepts. */
static size_t record_body_size(int64_t ts_delta, int32_t offset_delta, const sl_batch_rec_t *r)
{
    if ((r->key && r->key_len > INT32_MAX) || (r->value && r->value_len > INT32_MAX) ||
        r->header_count > INT32_MAX || (r->header_count && !r->headers))
        return 0;
    size_t n = 1 + varint_size(ts_delta) + varint_size(offset_delta);
    n += bytes_size(r->key, r->key_len);
    n += bytes_size(r->value, r->value_len);
    n += varint_size((int64_t)r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        const sl_rec_header_t *h = &r->headers[i];
        if (!h->key) return 0;
        size_t kl = strlen(h->key);
        if (kl > INT32_MAX || (h->value && h->value_len > INT32_MAX)) return 0;
        n += bytes_size(h->key, kl);
        n += bytes_size(h->value, h->value_len);
    }
    return n;
}

size_t sl_batch_build_record_size(int64_t ts_delta, int32_t offset_delta, const sl_batch_rec_t *r)
{
    size_t body = record_body_size(ts_delta, offset_delta, r);
    /* Out of contract: a size no batch can hold, small enough that a caller
     * adding the batch header to it cannot wrap around. */
    return body ? varint_size((int64_t)body) + body : (size_t)SL_BATCH_MAX_SIZE + 1;
}

int sl_batch_build_init(sl_batch_builder_t *b, size_t cap, int grow)
{
    if (cap < SL_BATCH_HEADER_SIZE) cap = SL_BATCH_HEADER_SIZE;
    /* len ≤ cap ≤ SL_BATCH_MAX_SIZE always, so an append that fits needs
     * no other size check. */
    if (cap > SL_BATCH_MAX_SIZE) cap = SL_BATCH_MAX_SIZE;
    *b = (sl_batch_builder_t){.cap = cap, .len = SL_BATCH_HEADER_SIZE, .grow = grow != 0};
    b->buf = malloc(cap);
    if (!b->buf) {
        b->cap = 0;
        return SL_ERR_NOMEM;
    }
    return SL_OK;
}

void sl_batch_build_free(sl_batch_builder_t *b)
{
    if (!b) return;
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}

/* Makes room for need more bytes; returns SL_OK or an error, changing
 * nothing on failure. */
static int reserve(sl_batch_builder_t *b, size_t need)
{
    if (need > SL_BATCH_MAX_SIZE - b->len) return SL_ERR_RECORD_LIST_TOO_LARGE;
    if (b->len + need <= b->cap) return SL_OK;
    if (!b->grow) return SL_ERR_RECORD_LIST_TOO_LARGE;
    size_t cap = b->cap;
    while (cap < b->len + need) cap = cap > SL_BATCH_MAX_SIZE / 2 ? SL_BATCH_MAX_SIZE : cap * 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) return SL_ERR_NOMEM;
    b->buf = nb;
    b->cap = cap;
    return SL_OK;
}

int sl_batch_build_append(sl_batch_builder_t *b, const sl_batch_rec_t *r)
{
    if (b->count == INT32_MAX) return SL_ERR_RECORD_LIST_TOO_LARGE;
    int64_t first = b->count ? b->first_ts : r->timestamp;
    /* Wraps instead of overflowing for absurd timestamp pairs, as the i64
     * field on the wire would. */
    int64_t delta = (int64_t)((uint64_t)r->timestamp - (uint64_t)first);
    size_t body = record_body_size(delta, b->count, r);
    if (body == 0) return SL_ERR_INVALID_ARG;
    size_t total = varint_size((int64_t)body) + body;
    if (total > b->cap - b->len) {
        int rc = reserve(b, total);
        if (rc != SL_OK) return rc;
    }

    uint8_t *p = b->buf + b->len;
    p += sl_varint_encode(p, (int32_t)body);
    *p++ = 0; /* record attributes: unused in v2 */
    p += sl_varlong_encode(p, delta);
    p += sl_varint_encode(p, b->count);
    p = put_bytes(p, r->key, r->key_len);
    p = put_bytes(p, r->value, r->value_len);
    p += sl_varint_encode(p, (int32_t)r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        const sl_rec_header_t *h = &r->headers[i];
        p = put_bytes(p, h->key, strlen(h->key));
        p = put_bytes(p, h->value, h->value_len);
    }
    b->len += total;
    if (b->count == 0) b->first_ts = b->max_ts = r->timestamp;
    if (r->timestamp > b->max_ts) b->max_ts = r->timestamp;
    b->count++;
    return SL_OK;
}

static int meta_ok(const sl_batch_builder_t *b, const sl_batch_meta_t *m)
{
    return b->count > 0 && (m->attributes & SL_BATCH_COMPRESSION_MASK) == 0;
}

/* The 61-byte header at h of a batch whose records occupy h[61, total);
 * the CRC covers [21, total). */
static void put_header(uint8_t *h, size_t total, const sl_batch_builder_t *b,
                       const sl_batch_meta_t *m, int codec)
{
    sl_put_be64(h + SL_BATCH_OFF_BASE_OFFSET, (uint64_t)m->base_offset);
    sl_put_be32(h + SL_BATCH_OFF_LENGTH, (uint32_t)(total - SL_BATCH_LOG_OVERHEAD));
    sl_put_be32(h + SL_BATCH_OFF_LEADER_EPOCH, (uint32_t)m->leader_epoch);
    h[SL_BATCH_OFF_MAGIC] = SL_BATCH_MAGIC;
    sl_put_be16(h + SL_BATCH_OFF_ATTRIBUTES, (uint16_t)(m->attributes | codec));
    sl_put_be32(h + SL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    sl_put_be64(h + SL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->first_ts);
    sl_put_be64(h + SL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_ts);
    sl_put_be64(h + SL_BATCH_OFF_PRODUCER_ID, (uint64_t)m->producer_id);
    sl_put_be16(h + SL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)m->producer_epoch);
    sl_put_be32(h + SL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)m->base_sequence);
    sl_put_be32(h + SL_BATCH_OFF_RECORDS_COUNT, (uint32_t)b->count);
    sl_put_be32(h + SL_BATCH_OFF_CRC,
                sl_crc32c(0, h + SL_BATCH_OFF_ATTRIBUTES, total - SL_BATCH_OFF_ATTRIBUTES));
}

int sl_batch_build_finish(sl_batch_builder_t *b, const sl_batch_meta_t *m)
{
    sl_batch_meta_t def = SL_BATCH_META_INIT;
    if (!m) m = &def;
    if (!meta_ok(b, m)) return SL_ERR_INVALID_ARG;
    put_header(b->buf, b->len, b, m, SL_COMPRESSION_NONE);
    return SL_OK;
}

int sl_batch_build_finish_compressed(const sl_batch_builder_t *b, const sl_batch_meta_t *m,
                                     int codec, uint8_t **out, size_t *out_len)
{
    sl_batch_meta_t def = SL_BATCH_META_INIT;
    if (!m) m = &def;
    *out = NULL;
    *out_len = 0;
    if (!meta_ok(b, m)) return SL_ERR_INVALID_ARG;
    if (codec != SL_COMPRESSION_LZ4) return SL_ERR_UNSUPPORTED_COMPRESSION;
    const uint8_t *recs = b->buf + SL_BATCH_HEADER_SIZE;
    size_t rec_len = b->len - SL_BATCH_HEADER_SIZE;
    /* Compressed behind the header's room, so the frame is not copied. */
    size_t cap = SL_BATCH_HEADER_SIZE + sl_lz4_bound(rec_len);
    uint8_t *w = malloc(cap);
    if (!w) return SL_ERR_NOMEM;
    size_t zlen =
        sl_lz4_compress_into(w + SL_BATCH_HEADER_SIZE, cap - SL_BATCH_HEADER_SIZE, recs, rec_len);
    int rc = SL_OK;
    if (zlen == 0)
        rc = SL_ERR_NOMEM; /* LZ4F fails only on allocation (the bound is its own) */
    else if (zlen > SL_BATCH_MAX_SIZE - SL_BATCH_HEADER_SIZE)
        rc = SL_ERR_RECORD_LIST_TOO_LARGE; /* incompressible and already at the ceiling */
    if (rc != SL_OK) {
        free(w);
        return rc;
    }
    put_header(w, SL_BATCH_HEADER_SIZE + zlen, b, m, codec);
    *out = w;
    *out_len = SL_BATCH_HEADER_SIZE + zlen;
    return SL_OK;
}
