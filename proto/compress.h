/* compress.h — the record codecs of a RecordBatch v2, as Kafka frames them.
 *
 * Only lz4 today (compression.type=lz4, codec 3): Kafka's LZ4 frame, version
 * 01, independent 64 KiB blocks, no block or content checksum, no content
 * size — what librdkafka and the Java client write and what both read. The
 * batch builder (batch_build.h) compresses with it; proto/batch.c's record
 * iterator has its own bounded inflater for untrusted input.
 *
 * Pure functions: no I/O, no state; outputs are malloc'd and owned by the
 * caller (free()). Thread-safe.
 */
#ifndef SLUICE_PROTO_COMPRESS_H
#define SLUICE_PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes sl_lz4_compress_into() may write for len input bytes. */
size_t sl_lz4_bound(size_t len);

/* Compresses src[0..len) into one Kafka LZ4 frame at dst (cap bytes; cap ≥
 * sl_lz4_bound(len) always suffices), so a caller can leave room in front
 * of the frame and skip a copy. Returns the frame's size, or 0 on failure. */
size_t sl_lz4_compress_into(void *dst, size_t cap, const void *src, size_t len);

/* Compresses src[0..len) into one Kafka LZ4 frame in a malloc'd *out.
 * Returns the frame's size, or 0 (and *out NULL) on failure (ENOMEM). */
size_t sl_lz4_compress(const void *src, size_t len, uint8_t **out);

/* Decompresses one whole frame into a malloc'd *out of at most max bytes.
 * Returns the size, or -1 (and *out NULL) on a bad, truncated or oversized
 * frame or ENOMEM. */
long sl_lz4_decompress(const void *src, size_t len, size_t max, uint8_t **out);

#endif
