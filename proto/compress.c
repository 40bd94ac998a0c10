/* compress.c — Kafka's LZ4 frame (see compress.h): FLG 0x60, BD 0x40.
 * Uses liblz4's LZ4F API, which computes the correct header checksum (the
 * KAFKA-1493 quirk only applies to magic 0).
 */
#include <lz4frame.h>
#include <stdlib.h>

#include "compress.h"

/* Kafka's frame settings, in one place for the bound and the compressor. */
static void kafka_prefs(LZ4F_preferences_t *prefs)
{
    *prefs = (LZ4F_preferences_t){0};
    prefs->frameInfo.blockSizeID = LZ4F_max64KB;
    prefs->frameInfo.blockMode = LZ4F_blockIndependent;
    prefs->frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs->frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs->compressionLevel = 0; /* fast: Kafka's default level */
}

size_t sl_lz4_bound(size_t len)
{
    LZ4F_preferences_t prefs;
    kafka_prefs(&prefs);
    return LZ4F_compressFrameBound(len, &prefs);
}

size_t sl_lz4_compress_into(void *dst, size_t cap, const void *src, size_t len)
{
    LZ4F_preferences_t prefs;
    kafka_prefs(&prefs);
    size_t n = LZ4F_compressFrame(dst, cap, src, len, &prefs);
    return LZ4F_isError(n) ? 0 : n;
}

size_t sl_lz4_compress(const void *src, size_t len, uint8_t **out)
{
    size_t bound = sl_lz4_bound(len);
    *out = malloc(bound);
    if (!*out) return 0;
    size_t n = sl_lz4_compress_into(*out, bound, src, len);
    if (n == 0) {
        free(*out);
        *out = NULL;
    }
    return n;
}

long sl_lz4_decompress(const void *src, size_t len, size_t max, uint8_t **out)
{
    LZ4F_dctx *d;
    *out = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return -1;
    size_t cap = len * 4 + 1024, used = 0, pos = 0;
    uint8_t *buf = malloc(cap);
    long rc = -1;
    while (buf) {
        size_t dst = cap - used, srcn = len - pos;
        size_t r = LZ4F_decompress(d, buf + used, &dst, (const uint8_t *)src + pos, &srcn, NULL);
        if (LZ4F_isError(r)) break;
        used += dst;
        pos += srcn;
        if (r == 0) {
            rc = (long)used;
            break;
        }
        if (pos >= len && dst == 0) break; /* truncated */
        if (used == cap) {
            if (cap >= max) break;
            cap = cap * 2 > max ? max : cap * 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
    }
    LZ4F_freeDecompressionContext(d);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return rc;
}
