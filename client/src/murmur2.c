/* murmur2.c — Kafka's murmur2 (the Java client's Utils.murmur2) and its
 * default partitioner, so a key lands in the same partition as with Kafka
 * clients. Bytes are read little-endian in 4-byte groups exactly as Java
 * does, whatever the host's byte order. Pure; thread-safe.
 */
#include "internal.h"

SLUICE_API uint32_t sluice_murmur2(const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *q = p + i * 4;
        uint32_t k =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *t = p + (len & ~(size_t)3);
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)t[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)t[1] << 8;
        /* fall through */
    case 1:
        h ^= t[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

SLUICE_API int32_t sluice_partition_for_key(const void *key, size_t key_len, int32_t partitions)
{
    if (partitions <= 0) return -1;
    /* Kafka's Utils.toPositive: mask the sign bit (not abs()). */
    return (int32_t)((sluice_murmur2(key, key_len) & 0x7fffffffu) % (uint32_t)partitions);
}
