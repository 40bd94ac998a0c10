/* repro_mapped_index.c — known finding 1 of tests/fuzz/README.md at full
 * scale: crash recovery that rescans a sealed segment appends the rebuilt
 * index entries to the segment's *mapped* on-disk index (seg_pin maps it
 * first), so the in-memory index counts twice the entries its mapping holds
 * and the first read of that segment after recovery reads far past the
 * mapping: SIGBUS/SIGSEGV (ASan: "unknown-crash ... in le32, index.c").
 *
 * Scenario: default log configuration but 8 MiB segments; ~24 MiB appended
 * (acks=1 style: no flush), a clean close (indexes written), then the
 * recovery-point removed — what a broker killed before its first flush
 * since start-up leaves behind — and the partition opened with recovery.
 * Every batch is intact; the reads of offset 0.. then crash.
 *
 * Build and run (from the repository root, after building build-clang):
 *   cc -D_GNU_SOURCE -O1 -g -Istorage -Iproto -Itests/lib -Ibuild-clang/proto \
 *      tests/fuzz/crashes/recovery/repro_mapped_index.c tests/lib/batchgen.c \
 *      storage/io.c storage/logconf.c storage/index.c storage/segment.c \
 *      storage/partition.c storage/recover.c proto/batch.c proto/crc32c.c \
 *      proto/batch_build.c proto/compress.c proto/errors.c -llz4 -lpthread \
 *      -o /tmp/repro_mapped_index
 *   /tmp/repro_mapped_index /tmp/repro-part     # exit status 135 (SIGBUS) or 139
 * Expected once fixed: "all N offsets read back", exit status 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batchgen.h"
#include "partition.h"

int main(int argc, char **argv)
{
    const char *d = argc > 1 ? argv[1] : "/tmp/repro-mapped-index";
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) return 2;
    seg_cache_t *cache = seg_cache_new(16);
    sl_log_conf_t conf;
    sl_log_conf_defaults(&conf); /* index.interval.bytes 4096 */
    conf.segment_bytes = 8 << 20;
    partition_opts_t o = {.dir = d, .topic = "t", .conf = &conf, .cache = cache, .now_ms = 1000};
    partition_t *p;
    sl_err_t err;
    if (partition_open(&o, &p, NULL, &err) != SL_OK) return fprintf(stderr, "%s\n", err.msg), 2;
    for (int i = 0; i < 24000; i++) { /* 1 KiB batches: three segments */
        size_t len;
        uint8_t *b = bg_simple(1, 1000, 1000, (uint32_t)i, &len);
        if (partition_append(p, b, len, 1000, NULL, &err) != SL_OK)
            return fprintf(stderr, "%s\n", err.msg), 2;
        free(b);
    }
    partition_close(p, 0);
    snprintf(cmd, sizeof cmd, "%s/recovery-point", d);
    unlink(cmd); /* killed before its first flush */

    o.recover = 1;
    partition_recovery_t rec;
    if (partition_open(&o, &p, &rec, &err) != SL_OK) return fprintf(stderr, "%s\n", err.msg), 2;
    fprintf(stderr, "recovered [%lld, %lld), %llu bytes scanned\n",
            (long long)partition_log_start(p), (long long)partition_log_end(p),
            (unsigned long long)rec.bytes_scanned);
    long bad = 0, n = 0;
    for (int64_t off = partition_log_start(p); off < partition_log_end(p); off++, n++) {
        uint8_t *b;
        size_t len;
        if (partition_read_copy(p, off, 1, &b, &len, &err) != SL_OK && bad++ < 3)
            fprintf(stderr, "read %lld: %s\n", (long long)off, err.msg);
        free(b);
    }
    partition_close(p, 1);
    seg_cache_free(cache);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) return 2;
    if (bad) return fprintf(stderr, "%ld of %ld reads failed\n", bad, n), 1;
    fprintf(stderr, "all %ld offsets read back\n", n);
    return 0;
}
