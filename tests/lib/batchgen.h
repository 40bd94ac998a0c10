/* batchgen.h — builds RecordBatch v2 batches for tests and benchmarks.
 *
 * A thin layer over proto's builder (batch_build.h), the encoder the
 * producer and the broker use, so tests build exactly the bytes production
 * builds. It is not a second implementation: tests/unit/test_batch.c
 * cross-checks the builder (through bg_build) against hand-written byte
 * vectors, and tests/unit/test_batch_build.c covers it directly. Results
 * are malloc'd and owned by the caller (free()). Not for production paths.
 * Thread-safe.
 */
#ifndef SLUICE_TESTS_BATCHGEN_H
#define SLUICE_TESTS_BATCHGEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bg_header {
    const char *key;   /* NUL-terminated */
    const void *value; /* NULL = null value */
    int32_t value_len;
} bg_header_t;

typedef struct bg_record {
    const void *key; /* NULL = null key */
    int32_t key_len;
    const void *value; /* NULL = null value */
    int32_t value_len;
    int64_t timestamp; /* absolute, ms */
    int nheaders;
    const bg_header_t *headers;
} bg_record_t;

/* Builds one batch of n ≥ 1 records, baseOffset 0, leader epoch 0,
 * producerId/epoch/sequence -1, compression SL_COMPRESSION_NONE or
 * SL_COMPRESSION_LZ4 (Kafka's LZ4 frame: 64 KiB independent blocks, no
 * checksums; compressed even when that does not shrink it). baseTimestamp =
 * first record's timestamp; maxTimestamp = the largest. Returns the batch
 * and its size in *len, or NULL on bad arguments or ENOMEM. */
uint8_t *bg_build(const bg_record_t *recs, int n, int compression, size_t *len);

/* n records, null keys, values of value_size bytes filled with a pattern
 * derived from (seed, index), all timestamped ts. */
uint8_t *bg_simple(int n, size_t value_size, int64_t ts, uint32_t seed, size_t *len);

/* Recomputes the CRC-32C of a batch after a test edited covered bytes. */
void bg_fix_crc(uint8_t *batch, size_t len);

#endif
