/* crc32c.h — CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
 *
 * Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value 0xFFFFFFFF,
 * final xor 0xFFFFFFFF; crc32c("123456789") == 0xE3069283.
 *
 * sl_crc32c() picks, once, the SSE4.2 `crc32` instruction when the CPU has it
 * and a table-driven portable version otherwise. Both are exposed so tests
 * can check them against each other and against known vectors.
 * Thread-safe; no allocation; never fails.
 */
#ifndef SLUICE_PROTO_CRC32C_H
#define SLUICE_PROTO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..len). Continue a running checksum by passing the previous
 * result as `crc` (start with 0): sl_crc32c(sl_crc32c(0, a, n), b, m) equals
 * the CRC of a‖b. */
uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable implementation (slicing-by-8 tables). */
uint32_t sl_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* The SSE4.2 implementation; only call it when sl_crc32c_hw_available(). */
uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len);

/* 1 when the CPU supports SSE4.2 (and the build targets x86-64), else 0. */
int sl_crc32c_hw_available(void);

#endif
