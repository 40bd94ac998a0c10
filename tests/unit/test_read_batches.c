/* test_read_batches.c — partition_read_batches: ranges hold whole batches
 * only, as many as fit in max_bytes (at least one), never cross a segment,
 * and next_offset continues densely; at every start offset, every max_bytes
 * around batch sizes, with sparse and dense offset indexes, across rolls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "logcheck.h"
#include "io.h"
#include "partition.h"

static seg_cache_t *cache;

static partition_t *open_part(const char *dir, int64_t seg_bytes, int64_t interval)
{
    sl_log_conf_t conf;
    sl_log_conf_defaults(&conf);
    conf.segment_bytes = seg_bytes;
    conf.index_interval_bytes = interval;
    partition_opts_t o = {
        .dir = dir, .topic = "t", .id = 0, .conf = &conf, .cache = cache, .now_ms = 1000};
    return check_open(&o, NULL);
}

/* Batches of 1..4 records with values of 10..400 bytes: sizes vary. */
static void fill(partition_t *p, int nbatches)
{
    for (int i = 0; i < nbatches; i++) {
        size_t len;
        uint8_t *b = bg_simple(1 + i % 4, 10 + (size_t)(i * 37) % 400, 1000 + i, (uint32_t)i, &len);
        partition_append_info_t info;
        sl_err_t err;
        CHECK_MSG(partition_append(p, b, len, 1000 + i, &info, &err) == SL_OK, "append: %s",
                  err.msg);
        free(b);
    }
}

/* Checks one range read at `offset`: whole valid batches, the first holding
 * offset, dense, within max_bytes unless one batch, maximal within its
 * segment. Returns next_offset. */
static int64_t check_range(partition_t *p, int64_t offset, uint64_t max_bytes)
{
    seg_range_t r;
    int64_t next = -1;
    sl_err_t err;
    int rc = partition_read_batches(p, offset, max_bytes, &r, &next, &err);
    CHECK_MSG(rc == SL_OK, "read_batches at %" PRId64 ": %s", offset, err.msg);
    if (rc != SL_OK) return -1;
    if (r.len == 0) {
        CHECK_EQ_INT(offset, partition_log_end(p));
        CHECK_EQ_INT(next, offset);
        return next;
    }
    uint8_t *buf = malloc(r.len);
    CHECK_FATAL(buf != NULL);
    CHECK_EQ_INT(io_pread_all(r.fd, buf, r.len, (off_t)r.pos), (ssize_t)r.len);
    size_t off = 0;
    int nb = 0;
    int64_t expect = -1;
    while (off < r.len) {
        CHECK_FATAL(off + SL_BATCH_HEADER_SIZE <= r.len);
        size_t sz = (size_t)sl_batch_total_size(buf + off);
        CHECK_FATAL(sz >= SL_BATCH_HEADER_SIZE && off + sz <= r.len); /* whole */
        sl_batch_hdr_t h;
        CHECK(sl_batch_validate(buf + off, sz, NULL, &h, &err) == SL_OK);
        if (nb == 0) {
            CHECK(h.base_offset <= offset && h.base_offset + h.last_offset_delta >= offset);
            CHECK_EQ_INT(r.first_offset, h.base_offset);
        } else {
            CHECK_EQ_INT(h.base_offset, expect);
        }
        expect = h.base_offset + h.last_offset_delta + 1;
        off += sz;
        nb++;
    }
    CHECK_EQ_INT(next, expect);
    CHECK(nb == 1 || r.len <= max_bytes);
    /* Maximal: the next batch, when in the same segment right after, would
     * not have fit. */
    seg_range_t n;
    int64_t nn;
    if (next < partition_log_end(p) && partition_read_batches(p, next, 1, &n, &nn, &err) == SL_OK &&
        n.len) {
        if (n.seg == r.seg && n.pos == r.pos + r.len)
            CHECK_MSG(r.len + n.len > max_bytes, "len %" PRIu64 " + next %" PRIu64 " fits %" PRIu64,
                      r.len, n.len, max_bytes);
        seg_range_release(&n);
    }
    free(buf);
    seg_range_release(&r);
    return next;
}

static void sweep(int64_t seg_bytes, int64_t interval)
{
    char *dir = check_tmpdir("read-batches");
    partition_t *p = open_part(dir, seg_bytes, interval);
    fill(p, 300);
    partition_stats_t st;
    partition_stats(p, &st);
    CHECK(seg_bytes > (1 << 20) || st.segments > 3);
    int64_t leo = partition_log_end(p);
    uint64_t sizes[] = {1, 100, 300, 700, 1000, 2500, 5000, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t at = 0;
        int guard = 0;
        while (at < leo && guard++ < 100000) {
            int64_t next = check_range(p, at, sizes[k]);
            if (next <= at) break;
            at = next;
        }
        CHECK_EQ_INT(at, leo);
    }
    /* Every start offset, including ones inside a batch. */
    for (int64_t o = 0; o <= leo; o++) check_range(p, o, 777);
    seg_range_t r;
    int64_t next;
    sl_err_t err;
    CHECK_EQ_INT(partition_read_batches(p, leo + 1, 100, &r, &next, &err),
                 SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(partition_read_batches(p, -1, 100, &r, &next, &err), SL_ERR_OFFSET_OUT_OF_RANGE);
    /* Reopened: sealed segments' indexes are mapped from their files. */
    partition_close(p, 0);
    p = open_part(dir, seg_bytes, interval);
    for (int64_t at = 0; at < leo;) {
        int64_t nx = check_range(p, at, 3000);
        if (nx <= at) break;
        at = nx;
    }
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

int main(void)
{
    cache = seg_cache_new(8);
    sweep(16384, 512);   /* small segments, several index entries per window */
    sweep(16384, 0);     /* an index entry per batch */
    sweep(16384, 65536); /* no index entry inside most windows */
    sweep(1 << 30, 256); /* one segment */
    seg_cache_free(cache);
    return check_exit();
}
