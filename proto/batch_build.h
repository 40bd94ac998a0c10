/* batch_build.h — the one RecordBatch v2 encoder: the producer's
 * accumulator, the broker's committed-offsets log and the tests' batchgen
 * all build their batches here, so the bytes a Kafka client would write are
 * spelled out once (layout in batch.h; decoding and validation in batch.c).
 *
 * A builder owns one buffer: 61 bytes reserved for the batch header, then
 * the records, each encoded straight into place by sl_batch_build_append()
 * (no second copy; offsetDelta = the record's index, timestampDelta =
 * its timestamp minus the first record's). Finishing writes the header and
 * the CRC-32C over bytes [21, end): in place for an uncompressed batch, or
 * into a new buffer with the records compressed, which leaves the plain
 * records readable in the builder (the producer decodes delivery reports
 * from them).
 *
 * Ownership: the builder's buffer belongs to the builder until
 * sl_batch_build_free(); a caller may take b->buf instead (then set it to
 * NULL). Compressed batches are malloc'd and owned by the caller.
 * Thread safety: none inside; one thread at a time per builder. No I/O.
 * Errors: SL_OK or a negative/wire sl_code_t from errors.h; a failed call
 * leaves the builder as it was.
 */
#ifndef SLUICE_PROTO_BATCH_BUILD_H
#define SLUICE_PROTO_BATCH_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* One record header (Kafka's record-level key/value pair). */
typedef struct sl_rec_header {
    const char *key;   /* NUL-terminated, never NULL */
    const void *value; /* NULL: null value */
    size_t value_len;
} sl_rec_header_t;

/* One record to append; all pointers are read during the call only. */
typedef struct sl_batch_rec {
    int64_t timestamp; /* absolute, ms (CreateTime) */
    const void *key;   /* NULL: null key */
    size_t key_len;
    const void *value; /* NULL: null value */
    size_t value_len;
    const sl_rec_header_t *headers; /* header_count of them; NULL when 0 */
    size_t header_count;
} sl_batch_rec_t;

/* The header fields the records do not determine. */
typedef struct sl_batch_meta {
    int64_t base_offset;    /* 0 from a producer: the broker assigns it on append */
    int32_t leader_epoch;   /* partitionLeaderEpoch */
    int16_t attributes;     /* SL_BATCH_ATTR_TRANSACTIONAL / _CONTROL / _LOG_APPEND_TIME;
                               the codec bits are the finishing call's to set */
    int64_t producer_id;    /* -1: not idempotent */
    int16_t producer_epoch; /* -1 with producer_id -1 */
    int32_t base_sequence;  /* -1 with producer_id -1 */
} sl_batch_meta_t;

/* What a plain (non-idempotent, non-transactional) producer sends; the
 * finishing calls use it for a NULL meta. */
#define SL_BATCH_META_INIT                                                                         \
    ((sl_batch_meta_t){.base_offset = 0,                                                           \
                       .leader_epoch = 0,                                                          \
                       .attributes = 0,                                                            \
                       .producer_id = -1,                                                          \
                       .producer_epoch = -1,                                                       \
                       .base_sequence = -1})

/* The builder's state; read its fields freely, change them only through
 * the calls below. */
typedef struct sl_batch_builder {
    uint8_t *buf;     /* [0, 61) header (written when finished), then records */
    size_t len, cap;  /* bytes used (≥ 61) and allocated */
    int32_t count;    /* records appended: the next offsetDelta */
    int64_t first_ts; /* baseTimestamp: the first record's timestamp */
    int64_t max_ts;   /* maxTimestamp: the largest timestamp appended */
    int grow;         /* 1: append grows buf; 0: append refuses what does not fit */
} sl_batch_builder_t;

/* Starts an empty batch in a malloc'd buffer of cap bytes (raised to 61,
 * lowered to SL_BATCH_MAX_SIZE).
 * grow = 0 fixes the capacity (the producer's batch.size budget); grow = 1
 * lets appends realloc up to SL_BATCH_MAX_SIZE. Returns SL_OK or
 * SL_ERR_NOMEM (then *b holds nothing to free). */
int sl_batch_build_init(sl_batch_builder_t *b, size_t cap, int grow);

/* Frees the buffer (NULL-safe, idempotent). */
void sl_batch_build_free(sl_batch_builder_t *b);

/* Encoded size of a record (its length varint included) when appended with
 * these deltas; INT64_MIN / INT32_MAX give the worst case for any position.
 * A record append would refuse with SL_ERR_INVALID_ARG sizes as
 * SL_BATCH_MAX_SIZE + 1: more than any batch holds. */
size_t sl_batch_build_record_size(int64_t ts_delta, int32_t offset_delta, const sl_batch_rec_t *r);

/* Encodes r at the end of the batch as record number b->count. Returns
 * SL_OK; SL_ERR_RECORD_LIST_TOO_LARGE when it does not fit (a fixed
 * builder's capacity, SL_BATCH_MAX_SIZE, or INT32_MAX records);
 * SL_ERR_INVALID_ARG for a key, value or header longer than INT32_MAX or a
 * NULL header key; SL_ERR_NOMEM when growing fails. Never blocks. */
int sl_batch_build_append(sl_batch_builder_t *b, const sl_batch_rec_t *r);

/* Writes the header (codec none; m NULL = SL_BATCH_META_INIT) and the CRC
 * into b->buf, which then holds the whole batch, b->len bytes. May be
 * called again (after more appends, or with other meta). Returns SL_OK, or
 * SL_ERR_INVALID_ARG with no records or codec bits in m->attributes. */
int sl_batch_build_finish(sl_batch_builder_t *b, const sl_batch_meta_t *m);

/* Builds a second, compressed copy of the batch: header with the codec in
 * its attributes, then the records compressed as one frame, into a malloc'd
 * *out of *out_len bytes that the caller frees. b is left as it was. Only
 * SL_COMPRESSION_LZ4 is supported (else SL_ERR_UNSUPPORTED_COMPRESSION).
 * The copy is made even when it is not smaller: sending the plain batch
 * instead is the caller's policy. Returns SL_OK, SL_ERR_INVALID_ARG (as
 * for sl_batch_build_finish), SL_ERR_NOMEM, or SL_ERR_RECORD_LIST_TOO_LARGE
 * when the frame would push the batch past SL_BATCH_MAX_SIZE. */
int sl_batch_build_finish_compressed(const sl_batch_builder_t *b, const sl_batch_meta_t *m,
                                     int codec, uint8_t **out, size_t *out_len);

#endif
