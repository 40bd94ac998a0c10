/* accum.c — the producer's record batch builder: records are encoded
 * straight into a RecordBatch v2 buffer at sluice_produce() time, so the
 * batch is the only copy of a message's bytes; delivery reports decode
 * key/value/headers back out of it (no second copy per message).
 *
 * Not thread-safe by itself: the producer appends under its lock, and only
 * the I/O thread finalizes a closed batch (nobody appends to it any more).
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "internal.h"

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

sl_pbatch_t *sl_pbatch_new(size_t cap)
{
    if (cap < SL_BATCH_HEADER_SIZE) cap = SL_BATCH_HEADER_SIZE;
    sl_pbatch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->buf = malloc(cap);
    if (!b->buf) {
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->len = SL_BATCH_HEADER_SIZE;
    b->base_offset = -1;
    return b;
}

void sl_pbatch_free(sl_pbatch_t *b)
{
    if (!b) return;
    if (b->wire && b->wire != b->buf) free(b->wire);
    free(b->buf);
    free(b->msgs);
    free(b);
}

static size_t record_body_size(int64_t ts_delta, int32_t offset_delta, const void *key,
                               size_t key_len, const void *value, size_t value_len,
                               const sluice_header_t *hdrs, size_t hdr_count)
{
    size_t n = 1 + varint_size(ts_delta) + varint_size(offset_delta);
    n += key ? varint_size((int64_t)key_len) + key_len : 1;
    n += value ? varint_size((int64_t)value_len) + value_len : 1;
    n += varint_size((int64_t)hdr_count);
    for (size_t i = 0; i < hdr_count; i++) {
        size_t kl = strlen(hdrs[i].key);
        n += varint_size((int64_t)kl) + kl;
        n += hdrs[i].value ? varint_size((int64_t)hdrs[i].value_len) + hdrs[i].value_len : 1;
    }
    return n;
}

size_t sl_record_size(int64_t ts_delta, int32_t offset_delta, const void *key, size_t key_len,
                      const void *value, size_t value_len, const sluice_header_t *hdrs,
                      size_t hdr_count)
{
    size_t body =
        record_body_size(ts_delta, offset_delta, key, key_len, value, value_len, hdrs, hdr_count);
    return varint_size((int64_t)body) + body;
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

int sl_pbatch_append(sl_pbatch_t *b, int64_t ts, const void *key, size_t key_len, const void *value,
                     size_t value_len, const sluice_header_t *hdrs, size_t hdr_count, void *opaque)
{
    int64_t base = b->count ? b->base_ts : ts;
    int64_t delta = ts - base;
    size_t body =
        record_body_size(delta, b->count, key, key_len, value, value_len, hdrs, hdr_count);
    size_t total = varint_size((int64_t)body) + body;
    if (b->len + total > b->cap) return -1;
    if (b->count == b->msgs_cap) {
        int32_t nc = b->msgs_cap ? b->msgs_cap * 2 : 64;
        sl_msginfo_t *nm = realloc(b->msgs, (size_t)nc * sizeof *nm);
        if (!nm) return -1;
        b->msgs = nm;
        b->msgs_cap = nc;
    }
    uint8_t *p = b->buf + b->len;
    b->msgs[b->count] = (sl_msginfo_t){.opaque = opaque, .rec_off = (uint32_t)b->len};
    p += sl_varint_encode(p, (int32_t)body);
    *p++ = 0; /* attributes */
    p += sl_varlong_encode(p, delta);
    p += sl_varint_encode(p, b->count);
    p = put_bytes(p, key, key_len);
    p = put_bytes(p, value, value_len);
    p += sl_varint_encode(p, (int32_t)hdr_count);
    for (size_t i = 0; i < hdr_count; i++) {
        p = put_bytes(p, hdrs[i].key, strlen(hdrs[i].key));
        p = put_bytes(p, hdrs[i].value, hdrs[i].value_len);
    }
    b->len += total;
    if (b->count == 0) b->base_ts = b->max_ts = ts;
    if (ts > b->max_ts) b->max_ts = ts;
    b->count++;
    return 0;
}

/* The 61-byte header for records of rec_len bytes; CRC over [21, end). */
static void write_header(uint8_t *h, const sl_pbatch_t *b, int16_t attrs, size_t total,
                         const uint8_t *records, size_t rec_len)
{
    sl_put_be64(h + SL_BATCH_OFF_BASE_OFFSET, 0);
    sl_put_be32(h + SL_BATCH_OFF_LENGTH, (uint32_t)(total - SL_BATCH_LOG_OVERHEAD));
    sl_put_be32(h + SL_BATCH_OFF_LEADER_EPOCH, 0); /* as librdkafka sends */
    h[SL_BATCH_OFF_MAGIC] = SL_BATCH_MAGIC;
    sl_put_be16(h + SL_BATCH_OFF_ATTRIBUTES, (uint16_t)attrs);
    sl_put_be32(h + SL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    sl_put_be64(h + SL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->base_ts);
    sl_put_be64(h + SL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_ts);
    sl_put_be64(h + SL_BATCH_OFF_PRODUCER_ID, UINT64_MAX);    /* -1: not idempotent */
    sl_put_be16(h + SL_BATCH_OFF_PRODUCER_EPOCH, UINT16_MAX); /* -1 */
    sl_put_be32(h + SL_BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);  /* -1 */
    sl_put_be32(h + SL_BATCH_OFF_RECORDS_COUNT, (uint32_t)b->count);
    uint32_t crc =
        sl_crc32c(0, h + SL_BATCH_OFF_ATTRIBUTES, SL_BATCH_HEADER_SIZE - SL_BATCH_OFF_ATTRIBUTES);
    crc = sl_crc32c(crc, records, rec_len);
    sl_put_be32(h + SL_BATCH_OFF_CRC, crc);
}

int sl_pbatch_finalize(sl_pbatch_t *b, int compression)
{
    if (b->wire) return 0;
    size_t rec_len = b->len - SL_BATCH_HEADER_SIZE;
    write_header(b->buf, b, SL_COMPRESSION_NONE, b->len, b->buf + SL_BATCH_HEADER_SIZE, rec_len);
    b->wire = b->buf;
    b->wire_len = b->len;
    if (compression != SL_COMPRESSION_LZ4) return 0;
    uint8_t *z = NULL;
    size_t zlen = sl_lz4_compress(b->buf + SL_BATCH_HEADER_SIZE, rec_len, &z);
    /* Kafka clients send a batch uncompressed when compression does not
     * shrink it; so do we (and on a compression failure). */
    if (zlen == 0 || zlen >= rec_len) {
        free(z);
        return 0;
    }
    uint8_t *w = malloc(SL_BATCH_HEADER_SIZE + zlen);
    if (!w) {
        free(z);
        return 0;
    }
    memcpy(w + SL_BATCH_HEADER_SIZE, z, zlen);
    free(z);
    write_header(w, b, SL_COMPRESSION_LZ4, SL_BATCH_HEADER_SIZE + zlen, w + SL_BATCH_HEADER_SIZE,
                 zlen);
    b->wire = w;
    b->wire_len = SL_BATCH_HEADER_SIZE + zlen;
    return 0;
}

static const uint8_t *get_bytes(const uint8_t *p, const uint8_t *end, const void **data,
                                int32_t *len)
{
    size_t n = sl_varint_decode(p, end, len);
    if (!n) return NULL;
    p += n;
    if (*len < 0) {
        *data = NULL;
        return p;
    }
    if ((size_t)(end - p) < (size_t)*len) return NULL;
    *data = p;
    return p + *len;
}

int sl_pbatch_msg(const sl_pbatch_t *b, int32_t i, sluice_message_t *m, sluice_header_t *hdrs,
                  size_t max_hdrs, char *keybuf, size_t keybuf_size)
{
    const uint8_t *p = b->buf + b->msgs[i].rec_off, *end = b->buf + b->len;
    int32_t body, od, kl, vl, hc;
    int64_t tsd;
    size_t n;
    if (!(n = sl_varint_decode(p, end, &body))) return -1;
    p += n + 1; /* attributes */
    if (!(n = sl_varlong_decode(p, end, &tsd))) return -1;
    p += n;
    if (!(n = sl_varint_decode(p, end, &od))) return -1;
    p += n;
    if (!(p = get_bytes(p, end, &m->key, &kl))) return -1;
    if (!(p = get_bytes(p, end, &m->value, &vl))) return -1;
    m->key_len = kl < 0 ? 0 : (size_t)kl;
    m->value_len = vl < 0 ? 0 : (size_t)vl;
    m->timestamp = b->base_ts + tsd;
    m->opaque = b->msgs[i].opaque;
    if (!(n = sl_varint_decode(p, end, &hc))) return -1;
    p += n;
    m->headers = hdrs;
    m->header_count = 0;
    size_t kpos = 0;
    for (int32_t h = 0; h < hc && (size_t)h < max_hdrs; h++) {
        const void *k, *v;
        int32_t hkl, hvl;
        if (!(p = get_bytes(p, end, &k, &hkl))) return -1;
        if (!(p = get_bytes(p, end, &v, &hvl))) return -1;
        size_t kn = hkl < 0 ? 0 : (size_t)hkl;
        if (kpos + kn + 1 > keybuf_size) break;
        memcpy(keybuf + kpos, k ? k : "", kn);
        keybuf[kpos + kn] = '\0';
        hdrs[h] = (sluice_header_t){
            .key = keybuf + kpos, .value = v, .value_len = hvl < 0 ? 0 : (size_t)hvl};
        kpos += kn + 1;
        m->header_count++;
    }
    if (m->header_count == 0) m->headers = NULL;
    return 0;
}
