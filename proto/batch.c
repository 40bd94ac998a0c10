/* batch.c — RecordBatch v2: validation and record iteration.
 *
 * Every byte here may be hostile: produce requests, segments after a crash,
 * fetch responses from a broker we do not trust. So every length is checked
 * against the bytes actually present before it is used, sums that could
 * overflow are done in 64 bits or with __builtin_add_overflow, decompression
 * has a hard output cap, and bad data is reported, never aborted on.
 */
#include "batch.h"

#include <inttypes.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#define DEFAULT_MAX_UNCOMPRESSED (64u * 1024 * 1024)

/* The smallest record: length, attributes, timestampDelta, offsetDelta,
 * keyLength, valueLength and headersCount, one byte each. */
#define MIN_RECORD_SIZE 7

/* The smallest header: a zero key length and a null value, one byte each. */
#define MIN_HEADER_SIZE 2

/* First guess for the lz4 output buffer, as a multiple of the compressed
 * size; it doubles from there up to the cap. */
#define LZ4_INITIAL_RATIO 4
#define LZ4_INITIAL_MIN   (64u * 1024)

void sl_batch_hdr_parse(const uint8_t *p, sl_batch_hdr_t *h)
{
    h->base_offset = (int64_t)sl_be64(p + SL_BATCH_OFF_BASE_OFFSET);
    h->length = (int32_t)sl_be32(p + SL_BATCH_OFF_LENGTH);
    h->leader_epoch = (int32_t)sl_be32(p + SL_BATCH_OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[SL_BATCH_OFF_MAGIC];
    h->crc = sl_be32(p + SL_BATCH_OFF_CRC);
    h->attributes = (int16_t)sl_be16(p + SL_BATCH_OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)sl_be32(p + SL_BATCH_OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)sl_be64(p + SL_BATCH_OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)sl_be64(p + SL_BATCH_OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)sl_be64(p + SL_BATCH_OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)sl_be16(p + SL_BATCH_OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)sl_be32(p + SL_BATCH_OFF_BASE_SEQUENCE);
    h->records_count = (int32_t)sl_be32(p + SL_BATCH_OFF_RECORDS_COUNT);
}

/* A configured limit can lower the hard ceiling but never raise it. */
static uint32_t limit_batch(const sl_batch_limits_t *lim)
{
    uint32_t m = lim ? lim->max_batch_bytes : 0;
    return m == 0 || m > SL_BATCH_MAX_SIZE ? SL_BATCH_MAX_SIZE : m;
}

static uint32_t limit_uncompressed(const sl_batch_limits_t *lim)
{
    uint32_t m = lim ? lim->max_uncompressed_bytes : 0;
    return m == 0 ? DEFAULT_MAX_UNCOMPRESSED : m;
}

static const char *codec_name(int codec)
{
    static const char *const names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    return codec >= 0 && codec <= SL_COMPRESSION_ZSTD ? names[codec] : "unknown";
}

int sl_batch_validate(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim,
                      sl_batch_hdr_t *h, sl_err_t *err)
{
    if (!buf && len) return sl_err_set(err, SL_ERR_INVALID_ARG, "batch: NULL buffer");
    if (len < SL_BATCH_HEADER_SIZE)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                          "batch of %zu bytes is shorter than the %d-byte header", len,
                          SL_BATCH_HEADER_SIZE);
    sl_batch_hdr_t hd;
    sl_batch_hdr_parse(buf, &hd);
    if (hd.length < 0 || SL_BATCH_LOG_OVERHEAD + (uint64_t)hd.length != len)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                          "batchLength %" PRId32
                          " implies a batch of %lld bytes but %zu were given",
                          hd.length, (long long)SL_BATCH_LOG_OVERHEAD + hd.length, len);
    uint32_t max = limit_batch(lim);
    if (len > max)
        return sl_err_set(err, SL_ERR_MESSAGE_TOO_LARGE,
                          "batch of %zu bytes exceeds the limit of %" PRIu32 " bytes", len, max);
    /* Magic before CRC: older formats put their checksum elsewhere, so a CRC
     * failure on them would misreport an unsupported batch as a corrupt one. */
    if (hd.magic != SL_BATCH_MAGIC)
        return sl_err_set(err, SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
                          "batch magic %d is not supported (only %d, RecordBatch v2)", hd.magic,
                          SL_BATCH_MAGIC);
    uint32_t crc = sl_crc32c(0, buf + SL_BATCH_OFF_ATTRIBUTES, len - SL_BATCH_OFF_ATTRIBUTES);
    if (crc != hd.crc)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                          "CRC-32C mismatch: header has 0x%08" PRIx32
                          ", bytes [21, %zu) give 0x%08" PRIx32,
                          hd.crc, len, crc);
    /* The fields below are CRC-covered, so from here on a failure means the
     * sender built a bad batch, not that the bytes were damaged in transit. */
    int codec = hd.attributes & SL_BATCH_COMPRESSION_MASK;
    if (codec > SL_COMPRESSION_ZSTD)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "unknown compression codec %d in attributes 0x%04x", codec,
                          (unsigned)(uint16_t)hd.attributes);
    if (hd.records_count < 1)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "recordsCount %" PRId32 ": a batch needs at least one record",
                          hd.records_count);
    if ((int64_t)hd.last_offset_delta + 1 != hd.records_count)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "lastOffsetDelta %" PRId32 " does not match recordsCount %" PRId32
                          " (expected %" PRId32 ")",
                          hd.last_offset_delta, hd.records_count, hd.records_count - 1);
    if (h) *h = hd;
    return SL_OK;
}

int sl_batch_validate_produce(const sl_batch_hdr_t *h, sl_err_t *err)
{
    if (!h) return sl_err_set(err, SL_ERR_INVALID_ARG, "batch header: NULL");
    if (h->attributes & SL_BATCH_ATTR_CONTROL)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "producers may not write control batches (attributes 0x%04x)",
                          (unsigned)(uint16_t)h->attributes);
    /* Storing a transactional batch would promise read_committed readers a
     * commit or abort marker that Sluice never writes. */
    if (h->attributes & SL_BATCH_ATTR_TRANSACTIONAL)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "transactional batches are not supported (attributes 0x%04x)",
                          (unsigned)(uint16_t)h->attributes);
    if (h->producer_id >= 0 && h->base_sequence < 0)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "producerId %" PRId64 " with baseSequence %" PRId32
                          ": an idempotent batch needs a sequence >= 0",
                          h->producer_id, h->base_sequence);
    return SL_OK;
}

int sl_batch_validate_set(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim, size_t *n,
                          sl_err_t *err)
{
    size_t pos = 0, count = 0;
    if (n) *n = 0;
    if (!buf && len) return sl_err_set(err, SL_ERR_INVALID_ARG, "batch set: NULL buffer");
    while (pos < len) {
        size_t left = len - pos;
        if (left < SL_BATCH_LOG_OVERHEAD)
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                              "trailing partial batch at position %zu: %zu bytes, too few for "
                              "baseOffset and batchLength",
                              pos, left);
        /* Read the length ourselves: a negative one would wrap in
         * sl_batch_total_size and look like a small, plausible batch. */
        int32_t blen = (int32_t)sl_be32(buf + pos + SL_BATCH_OFF_LENGTH);
        if (blen < 0)
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                              "batch %zu at position %zu: negative batchLength %" PRId32, count,
                              pos, blen);
        uint64_t total = SL_BATCH_LOG_OVERHEAD + (uint64_t)blen;
        if (total > left)
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                              "trailing partial batch at position %zu: batchLength %" PRId32
                              " needs %llu bytes, only %zu remain",
                              pos, blen, (unsigned long long)total, left);
        int rc = sl_batch_validate(buf + pos, (size_t)total, lim, NULL, err);
        if (rc != SL_OK) {
            if (err) {
                char inner[sizeof err->msg];
                memcpy(inner, err->msg, sizeof inner);
                sl_err_set(err, rc, "batch %zu at position %zu: %s", count, pos, inner);
            }
            return rc;
        }
        pos += (size_t)total;
        count++;
    }
    if (n) *n = count;
    return SL_OK;
}

/* Inflates the lz4 frame src[0..src_len) into it->owned. The output buffer
 * never grows past limit + 1 bytes: the spare byte tells "exactly at the
 * limit" from "over it" without another probing call. */
static int lz4_inflate(sl_record_iter_t *it, const uint8_t *src, size_t src_len, uint32_t limit,
                       sl_err_t *err)
{
    /* Refuse a count that cannot fit before spending any work on a bomb. */
    if ((uint64_t)it->hdr.records_count * MIN_RECORD_SIZE > limit)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "recordsCount %" PRId32 " cannot fit in the %" PRIu32
                          "-byte decompression limit",
                          it->hdr.records_count, limit);
    size_t cap_max = (size_t)limit + 1;
    uint64_t guess = (uint64_t)src_len * LZ4_INITIAL_RATIO;
    if (guess < LZ4_INITIAL_MIN) guess = LZ4_INITIAL_MIN;
    size_t cap = guess > cap_max ? cap_max : (size_t)guess;

    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return sl_err_set(err, SL_ERR_NOMEM, "lz4: cannot create a decompression context");
    uint8_t *out = malloc(cap);
    if (!out) {
        LZ4F_freeDecompressionContext(dctx);
        return sl_err_set(err, SL_ERR_NOMEM, "lz4: cannot allocate %zu bytes", cap);
    }

    const uint8_t *in = src, *in_end = src + src_len;
    size_t used = 0;
    int rc = SL_OK;
    for (;;) {
        if (used == cap) {
            if (cap == cap_max) {
                rc = sl_err_set(
                    err, SL_ERR_INVALID_RECORD,
                    "lz4 records decompress to more than the limit of %" PRIu32 " bytes", limit);
                break;
            }
            size_t ncap = cap > cap_max / 2 ? cap_max : cap * 2;
            uint8_t *grown = realloc(out, ncap);
            if (!grown) {
                rc = sl_err_set(err, SL_ERR_NOMEM, "lz4: cannot grow output to %zu bytes", ncap);
                break;
            }
            out = grown;
            cap = ncap;
        }
        size_t dst_n = cap - used, src_n = (size_t)(in_end - in);
        size_t hint = LZ4F_decompress(dctx, out + used, &dst_n, in, &src_n, NULL);
        if (LZ4F_isError(hint)) {
            rc = sl_err_set(err, SL_ERR_INVALID_RECORD,
                            "lz4 frame invalid at compressed byte %zu of %zu: %s",
                            (size_t)(in - src), src_len, LZ4F_getErrorName(hint));
            break;
        }
        in += src_n;
        used += dst_n;
        if (hint == 0) break; /* frame complete */
        /* Room to write yet nothing moved: the decoder wants input we lack. */
        if (src_n == 0 && dst_n == 0 && used < cap) {
            rc = sl_err_set(err, SL_ERR_INVALID_RECORD,
                            "lz4 frame truncated: %zu compressed bytes end mid-frame", src_len);
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    if (rc == SL_OK && used > limit)
        rc =
            sl_err_set(err, SL_ERR_INVALID_RECORD,
                       "lz4 records decompress to more than the limit of %" PRIu32 " bytes", limit);
    /* One batch is one frame; bytes after it would be silently ignored by
     * some readers and not by others, so refuse them. */
    if (rc == SL_OK && in != in_end)
        rc = sl_err_set(err, SL_ERR_INVALID_RECORD, "%zu bytes follow the end of the lz4 frame",
                        (size_t)(in_end - in));
    if (rc != SL_OK) {
        free(out);
        return rc;
    }
    it->owned = out;
    it->pos = out;
    it->end = out + used;
    return SL_OK;
}

int sl_record_iter_init(sl_record_iter_t *it, const uint8_t *buf, size_t len,
                        const sl_batch_limits_t *lim, sl_err_t *err)
{
    if (!it) return sl_err_set(err, SL_ERR_INVALID_ARG, "record iterator: NULL");
    memset(it, 0, sizeof *it);
    /* A failed iterator keeps failing instead of looking like an empty one. */
    it->index = -1;
    int rc = sl_batch_validate(buf, len, lim, &it->hdr, err);
    if (rc != SL_OK) return rc;
    const uint8_t *recs = buf + SL_BATCH_HEADER_SIZE;
    size_t recs_len = len - SL_BATCH_HEADER_SIZE;
    int codec = it->hdr.attributes & SL_BATCH_COMPRESSION_MASK;
    switch (codec) {
    case SL_COMPRESSION_NONE:
        it->pos = recs;
        it->end = recs + recs_len;
        break;
    case SL_COMPRESSION_LZ4:
        rc = lz4_inflate(it, recs, recs_len, limit_uncompressed(lim), err);
        if (rc != SL_OK) return rc;
        break;
    default:
        return sl_err_set(err, SL_ERR_UNSUPPORTED_COMPRESSION,
                          "compression codec %d (%s) is not supported for record access; only "
                          "none and lz4 are",
                          codec, codec_name(codec));
    }
    it->index = 0;
    return SL_OK;
}

/* A bounded read position inside one record. */
typedef struct cursor {
    const uint8_t *p, *end;
} cursor_t;

/* Why a varint at p failed to decode: for the error message only. */
static const char *varint_fault(const uint8_t *p, const uint8_t *end, size_t max_bytes)
{
    for (size_t i = 0; i < max_bytes; i++) {
        if (p + i == end) return "truncated";
        if (!(p[i] & 0x80)) break;
    }
    return "over-long";
}

static int read_varint(cursor_t *c, int32_t *v)
{
    size_t n = sl_varint_decode(c->p, c->end, v);
    c->p += n;
    return n != 0;
}

static int read_varlong(cursor_t *c, int64_t *v)
{
    size_t n = sl_varlong_decode(c->p, c->end, v);
    c->p += n;
    return n != 0;
}

/* Stops the iterator for good: a failed one keeps failing. */
static int stop(sl_record_iter_t *it)
{
    it->index = -1;
    it->pos = it->end = NULL;
    return -1;
}

__attribute__((format(printf, 3, 4))) static int bad_record(sl_record_iter_t *it, sl_err_t *err,
                                                            const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    sl_err_set(err, SL_ERR_INVALID_RECORD, "record %" PRId32 " of %" PRId32 ": %s", it->index,
               it->hdr.records_count, detail);
    return stop(it);
}

/* Reads a varint length and the bytes it announces; -1 is null when allowed. */
static int read_bytes(sl_record_iter_t *it, cursor_t *c, const char *what, int nullable,
                      const uint8_t **data, int32_t *len, sl_err_t *err)
{
    if (!read_varint(c, len))
        return bad_record(it, err, "%s %s length varint", varint_fault(c->p, c->end, 5), what);
    if (*len == -1 && nullable) {
        *data = NULL;
        return 0;
    }
    if (*len < 0) return bad_record(it, err, "invalid %s length %" PRId32, what, *len);
    size_t left = (size_t)(c->end - c->p);
    if ((size_t)*len > left)
        return bad_record(it, err, "%s length %" PRId32 " exceeds the %zu bytes left in the record",
                          what, *len, left);
    *data = c->p;
    c->p += *len;
    return 0;
}

int sl_record_iter_next(sl_record_iter_t *it, sl_record_t *r, sl_err_t *err)
{
    if (!it || !r) {
        sl_err_set(err, SL_ERR_INVALID_ARG, "record iterator: NULL argument");
        return -1;
    }
    if (it->index < 0) {
        sl_err_set(err, SL_ERR_INVALID_RECORD, "record iterator already failed");
        return -1;
    }
    if (it->index >= it->hdr.records_count) {
        if (it->pos != it->end) {
            sl_err_set(err, SL_ERR_INVALID_RECORD,
                       "%zu bytes follow the last of %" PRId32 " records",
                       (size_t)(it->end - it->pos), it->hdr.records_count);
            return stop(it);
        }
        return 0;
    }
    if (it->pos == it->end) return bad_record(it, err, "missing: the records end before it");

    cursor_t c = {it->pos, it->end};
    int32_t rec_len;
    if (!read_varint(&c, &rec_len))
        return bad_record(it, err, "%s length varint", varint_fault(c.p, c.end, 5));
    size_t left = (size_t)(c.end - c.p);
    if (rec_len < 0) return bad_record(it, err, "negative length %" PRId32, rec_len);
    if ((size_t)rec_len > left)
        return bad_record(it, err, "length %" PRId32 " exceeds the %zu bytes left", rec_len, left);
    const uint8_t *next = c.p + rec_len;
    c.end = next;

    /* Attributes are unused; Kafka ignores their value, so do we. */
    if (c.p == c.end) return bad_record(it, err, "length %" PRId32 " is too short", rec_len);
    c.p++;
    int64_t ts_delta;
    if (!read_varlong(&c, &ts_delta))
        return bad_record(it, err, "%s timestampDelta varlong", varint_fault(c.p, c.end, 10));
    int32_t off_delta;
    if (!read_varint(&c, &off_delta))
        return bad_record(it, err, "%s offsetDelta varint", varint_fault(c.p, c.end, 5));
    if (off_delta != it->index)
        return bad_record(it, err, "offsetDelta %" PRId32 ", expected %" PRId32, off_delta,
                          it->index);

    sl_record_t rec;
    if (read_bytes(it, &c, "key", 1, &rec.key, &rec.key_len, err)) return -1;
    if (read_bytes(it, &c, "value", 1, &rec.value, &rec.value_len, err)) return -1;
    if (!read_varint(&c, &rec.header_count))
        return bad_record(it, err, "%s header count varint", varint_fault(c.p, c.end, 5));
    if (rec.header_count < 0)
        return bad_record(it, err, "negative header count %" PRId32, rec.header_count);
    left = (size_t)(c.end - c.p);
    if ((size_t)rec.header_count > left / MIN_HEADER_SIZE)
        return bad_record(it, err, "header count %" PRId32 " impossible in the %zu bytes left",
                          rec.header_count, left);
    rec.headers = c.p;
    for (int32_t i = 0; i < rec.header_count; i++) {
        const uint8_t *data;
        int32_t n;
        /* Header keys are strings and may not be null; values may. */
        if (read_bytes(it, &c, "header key", 0, &data, &n, err)) return -1;
        if (read_bytes(it, &c, "header value", 1, &data, &n, err)) return -1;
    }
    rec.headers_len = (size_t)(c.p - rec.headers);
    if (c.p != c.end)
        return bad_record(it, err, "length %" PRId32 " leaves %zu bytes unparsed", rec_len,
                          (size_t)(c.end - c.p));

    if (__builtin_add_overflow(it->hdr.base_offset, (int64_t)off_delta, &rec.offset))
        return bad_record(it, err, "baseOffset %" PRId64 " + offsetDelta overflows",
                          it->hdr.base_offset);
    if (it->hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME)
        rec.timestamp = it->hdr.max_timestamp;
    else if (__builtin_add_overflow(it->hdr.base_timestamp, ts_delta, &rec.timestamp))
        return bad_record(it, err,
                          "baseTimestamp %" PRId64 " + timestampDelta %" PRId64 " overflows",
                          it->hdr.base_timestamp, ts_delta);
    *r = rec;
    it->pos = next;
    it->index++;
    return 1;
}

void sl_record_iter_free(sl_record_iter_t *it)
{
    if (!it) return;
    free(it->owned);
    it->owned = NULL;
    it->pos = it->end = NULL;
}

int sl_batch_validate_deep(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim,
                           sl_err_t *err)
{
    sl_record_iter_t it;
    sl_record_t r;
    int rc = sl_record_iter_init(&it, buf, len, lim, err);
    if (rc == SL_OK) {
        int more;
        while ((more = sl_record_iter_next(&it, &r, err)) == 1) {
        }
        if (more < 0) rc = SL_ERR_INVALID_RECORD;
    }
    sl_record_iter_free(&it);
    return rc;
}

/* Zig-zag maps small magnitudes of either sign to small unsigned values;
 * done in unsigned arithmetic so no shift of a negative number is involved. */
size_t sl_varint_decode(const uint8_t *p, const uint8_t *end, int32_t *out)
{
    if (!p || !end || p >= end) return 0;
    size_t avail = (size_t)(end - p);
    uint32_t u = 0;
    for (size_t i = 0; i < 5 && i < avail; i++) {
        uint8_t b = p[i];
        /* The 5th byte holds bits 28..31 only: more is over-long. */
        if (i == 4 && b > 0x0f) return 0;
        u |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (out) *out = (int32_t)((u >> 1) ^ (0u - (u & 1)));
            return i + 1;
        }
    }
    return 0;
}

size_t sl_varlong_decode(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    if (!p || !end || p >= end) return 0;
    size_t avail = (size_t)(end - p);
    uint64_t u = 0;
    for (size_t i = 0; i < 10 && i < avail; i++) {
        uint8_t b = p[i];
        /* The 10th byte holds bit 63 only. */
        if (i == 9 && b > 0x01) return 0;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (out) *out = (int64_t)((u >> 1) ^ (0u - (u & 1)));
            return i + 1;
        }
    }
    return 0;
}

size_t sl_varint_encode(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v << 1 ^ (0u - ((uint32_t)v >> 31));
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

size_t sl_varlong_encode(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v << 1 ^ (0u - ((uint64_t)v >> 63));
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}
