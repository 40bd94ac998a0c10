/* batch.h — Kafka RecordBatch v2 ("magic 2"): header access, validation and
 * record iteration. The one on-disk and on-wire format of Sluice.
 *
 * Layout (all integers big-endian; see docs/storage.md):
 *   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 |
 *   16 magic i8 | 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 |
 *   27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
 *   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records
 * The CRC-32C covers bytes [21, end); baseOffset (written by the broker on
 * append) is outside it.
 *
 * Pure functions over caller-owned memory: no I/O, no allocation except in
 * sl_batch_validate_deep()/sl_record_iter (decompression buffer, freed by
 * sl_record_iter_free). Thread-safe. Errors are sl_code_t values with a
 * message in the optional sl_err_t.
 */
#ifndef SLUICE_PROTO_BATCH_H
#define SLUICE_PROTO_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define SL_BATCH_HEADER_SIZE  61
#define SL_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength, before the length's span */
#define SL_BATCH_MAGIC        2

/* Field offsets. */
#define SL_BATCH_OFF_BASE_OFFSET       0
#define SL_BATCH_OFF_LENGTH            8
#define SL_BATCH_OFF_LEADER_EPOCH      12
#define SL_BATCH_OFF_MAGIC             16
#define SL_BATCH_OFF_CRC               17
#define SL_BATCH_OFF_ATTRIBUTES        21
#define SL_BATCH_OFF_LAST_OFFSET_DELTA 23
#define SL_BATCH_OFF_BASE_TIMESTAMP    27
#define SL_BATCH_OFF_MAX_TIMESTAMP     35
#define SL_BATCH_OFF_PRODUCER_ID       43
#define SL_BATCH_OFF_PRODUCER_EPOCH    51
#define SL_BATCH_OFF_BASE_SEQUENCE     53
#define SL_BATCH_OFF_RECORDS_COUNT     57

/* attributes */
#define SL_BATCH_COMPRESSION_MASK     0x07
#define SL_COMPRESSION_NONE           0
#define SL_COMPRESSION_GZIP           1
#define SL_COMPRESSION_SNAPPY         2
#define SL_COMPRESSION_LZ4            3
#define SL_COMPRESSION_ZSTD           4
#define SL_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define SL_BATCH_ATTR_TRANSACTIONAL   0x10
#define SL_BATCH_ATTR_CONTROL         0x20

/* Hard ceiling on one batch, whatever the configuration says: batchLength is
 * an i32 and a segment position a u32. Configured limits are lower. */
#define SL_BATCH_MAX_SIZE (256u * 1024 * 1024)

/* Big-endian loads and stores on unaligned memory. */
static inline uint16_t sl_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t sl_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t sl_be64(const uint8_t *p)
{
    return (uint64_t)sl_be32(p) << 32 | sl_be32(p + 4);
}
static inline void sl_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void sl_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void sl_put_be64(uint8_t *p, uint64_t v)
{
    sl_put_be32(p, (uint32_t)(v >> 32));
    sl_put_be32(p + 4, (uint32_t)v);
}

/* The decoded fixed header of one batch. */
typedef struct sl_batch_hdr {
    int64_t base_offset;
    int32_t length; /* batchLength: bytes after the length field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} sl_batch_hdr_t;

/* Total size in bytes of the batch whose header starts at p (12 readable
 * bytes): 12 + batchLength, or 0 when batchLength is negative, so a caller
 * walking untrusted bytes that checks "size ≥ 61" can never loop or wrap. */
static inline uint64_t sl_batch_total_size(const uint8_t *p)
{
    int32_t l = (int32_t)sl_be32(p + SL_BATCH_OFF_LENGTH);
    return l < 0 ? 0 : SL_BATCH_LOG_OVERHEAD + (uint64_t)l;
}

/* Decodes the 61-byte header at p (caller guarantees 61 readable bytes). */
void sl_batch_hdr_parse(const uint8_t *p, sl_batch_hdr_t *h);

/* Limits for validation. */
typedef struct sl_batch_limits {
    uint32_t max_batch_bytes;        /* whole batch incl. 12-byte overhead; 0 = SL_BATCH_MAX_SIZE */
    uint32_t max_uncompressed_bytes; /* deep validation: cap on decompressed size;
                                        0 = 64 MiB */
} sl_batch_limits_t;

/* Shallow validation of exactly one batch occupying buf[0..len): size ≥ 61,
 * 12 + batchLength == len, len ≤ max_batch_bytes (MESSAGE_TOO_LARGE), magic 2
 * (UNSUPPORTED_FOR_MESSAGE_FORMAT), known compression codec (0..4), CRC-32C
 * (CORRUPT_MESSAGE), recordsCount ≥ 1 and lastOffsetDelta + 1 == recordsCount
 * (INVALID_RECORD). Does not look at baseOffset. On success fills *h (may be
 * NULL) and returns SL_OK. */
int sl_batch_validate(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim,
                      sl_batch_hdr_t *h, sl_err_t *err);

/* The checks a producer's batch must pass in addition to sl_batch_validate:
 * baseOffset == 0 is not required (clients differ) but the control and
 * transactional bits must be clear (Sluice has no transactions) and
 * producerId ≥ 0 implies baseSequence ≥ 0 (INVALID_RECORD).
 * partition_append applies it to every batch it stores. */
int sl_batch_validate_produce(const sl_batch_hdr_t *h, sl_err_t *err);

/* Validates a buffer holding one or more whole batches back to back, each
 * with sl_batch_validate; returns SL_OK and the number of batches in *n, or
 * the first batch's error. A trailing partial batch is CORRUPT_MESSAGE. */
int sl_batch_validate_set(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim, size_t *n,
                          sl_err_t *err);

/* Deep validation: sl_batch_validate, then decompress (none or lz4; gzip,
 * snappy and zstd give UNSUPPORTED_COMPRESSION) and walk every record:
 * varints well-formed and in bounds, record lengths consistent, offsetDelta
 * == index (0, 1, 2, ...), header counts sane, exactly recordsCount records
 * and no trailing bytes (INVALID_RECORD otherwise). */
int sl_batch_validate_deep(const uint8_t *buf, size_t len, const sl_batch_limits_t *lim,
                           sl_err_t *err);

/* One record, as views into the batch (or its decompressed copy). Valid until
 * the iterator moves on or is freed. key/value are NULL with len -1 when null. */
typedef struct sl_record {
    int64_t offset;    /* baseOffset + offsetDelta */
    int64_t timestamp; /* baseTimestamp + timestampDelta (or maxTimestamp for
                          LogAppendTime batches) */
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* raw encoded headers, header_count of them */
    size_t headers_len;
} sl_record_t;

typedef struct sl_record_iter {
    sl_batch_hdr_t hdr;
    const uint8_t *pos, *end; /* the records region being walked */
    uint8_t *owned;           /* decompressed records, freed by sl_record_iter_free */
    int32_t index;            /* next record's index */
} sl_record_iter_t;

/* Starts iterating the records of the validated batch buf[0..len),
 * decompressing when needed. Returns SL_OK or an error (see deep validation).
 * Always pair with sl_record_iter_free(), also on error. */
int sl_record_iter_init(sl_record_iter_t *it, const uint8_t *buf, size_t len,
                        const sl_batch_limits_t *lim, sl_err_t *err);

/* Returns 1 and fills *r with the next record, 0 at the end (all recordsCount
 * records seen and no bytes left over), or -1 on malformed data with
 * err->code = INVALID_RECORD and a message naming the record index. */
int sl_record_iter_next(sl_record_iter_t *it, sl_record_t *r, sl_err_t *err);

void sl_record_iter_free(sl_record_iter_t *it);

/* Zig-zag varint decoding, as used inside records. Return the number of
 * bytes consumed, or 0 when the input is truncated or over-long. */
size_t sl_varint_decode(const uint8_t *p, const uint8_t *end, int32_t *out);
size_t sl_varlong_decode(const uint8_t *p, const uint8_t *end, int64_t *out);
/* Encoding; return bytes written (≤ 5 / ≤ 10). */
size_t sl_varint_encode(uint8_t *p, int32_t v);
size_t sl_varlong_encode(uint8_t *p, int64_t v);

#endif
