/* repro_timeindex_retention.c — finding 9 of tests/fuzz/README.md: a sealed
 * segment's newest timestamp comes from the last entry of its .timeindex,
 * a file with no checksum that idx_check_time accepts whatever a single
 * entry says. One flipped bit there (bit 40 of the timestamp: -35 years)
 * and time-based retention deletes a segment whose records are an hour
 * old. (fuzz_recovery's crashes/recovery/timeindex-skips-segment.bin shows
 * the other face: partition_offset_for_time skips the segment.)
 *
 * Scenario: default log configuration (retention.ms 7 days) but 64 KiB
 * segments; records stamped now - 1 h; clean close; one bit flipped in
 * segment 0's .timeindex; clean reopen; partition_retention(now).
 *
 * Build and run (from the repository root, after building build-clang):
 *   cc -D_GNU_SOURCE -O1 -g -Istorage -Iproto -Itests/lib -Ibuild-clang/proto \
 *      tests/fuzz/crashes/recovery/repro_timeindex_retention.c tests/lib/batchgen.c \
 *      storage/io.c storage/logconf.c storage/index.c storage/segment.c \
 *      storage/partition.c storage/recover.c proto/batch.c proto/crc32c.c \
 *      proto/batch_build.c proto/compress.c proto/errors.c -llz4 -lpthread \
 *      -o /tmp/repro_timeindex_retention
 *   /tmp/repro_timeindex_retention /tmp/repro-part   # exit 1: "retention deleted 1 segment"
 * Expected once fixed: nothing deleted, exit status 0. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batchgen.h"
#include "partition.h"

int main(int argc, char **argv)
{
    const char *d = argc > 1 ? argv[1] : "/tmp/repro-timeindex-retention";
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) return 2;
    const int64_t now = INT64_C(1800000000000), ts = now - 3600 * 1000;
    seg_cache_t *cache = seg_cache_new(16);
    sl_log_conf_t conf;
    sl_log_conf_defaults(&conf); /* retention.ms: 7 days */
    conf.segment_bytes = 64 << 10;
    partition_opts_t o = {.dir = d, .topic = "t", .conf = &conf, .cache = cache, .now_ms = now};
    partition_t *p;
    sl_err_t err;
    if (partition_open(&o, &p, NULL, &err) != SL_OK) return fprintf(stderr, "%s\n", err.msg), 2;
    for (int i = 0; i < 200; i++) { /* 1 KiB batches: three segments and a bit */
        size_t len;
        uint8_t *b = bg_simple(1, 1000, ts, (uint32_t)i, &len);
        if (partition_append(p, b, len, now, NULL, &err) != SL_OK)
            return fprintf(stderr, "%s\n", err.msg), 2;
        free(b);
    }
    partition_close(p, 0);

    /* one bit of the last (only) entry of segment 0's time index */
    snprintf(cmd, sizeof cmd, "%s/%020d.timeindex", d, 0);
    int fd = open(cmd, O_RDWR);
    off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
    uint8_t byte;
    if (size < 12 || pread(fd, &byte, 1, size - 12 + 5) != 1)
        return fprintf(stderr, "no index\n"), 2;
    byte ^= 1; /* timestamp bit 40 */
    if (pwrite(fd, &byte, 1, size - 12 + 5) != 1) return 2;
    close(fd);

    if (partition_open(&o, &p, NULL, &err) != SL_OK) return fprintf(stderr, "%s\n", err.msg), 2;
    int64_t start = partition_log_start(p);
    int deleted = 0;
    if (partition_retention(p, now, &deleted, &err) != SL_OK)
        return fprintf(stderr, "%s\n", err.msg), 2;
    fprintf(stderr,
            "records are 1 h old, retention.ms 7 days: retention deleted %d segment%s, log start "
            "%" PRId64 " -> %" PRId64 "\n",
            deleted, deleted == 1 ? "" : "s", start, partition_log_start(p));
    partition_close(p, 1);
    seg_cache_free(cache);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) return 2;
    return deleted ? 1 : 0;
}
