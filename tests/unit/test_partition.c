/* test_partition.c — append/read round trips across segment rolls, offset
 * lookups at every boundary, read ranges, copying reads, time lookups,
 * flush and reopen. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "logcheck.h"
#include "partition.h"

static seg_cache_t *cache;

static partition_t *open_part(const char *dir, const sl_log_conf_t *c, int recover,
                              partition_recovery_t *rec)
{
    partition_opts_t o = {.dir = dir,
                          .topic = "t",
                          .id = 0,
                          .conf = c,
                          .cache = cache,
                          .recover = recover,
                          .now_ms = 1000};
    return check_open(&o, rec);
}

/* Appends one batch of n records (values "v<offset-independent seq>"). */
static int64_t append(partition_t *p, int n, size_t vsize, int64_t ts, uint32_t seed)
{
    size_t len;
    uint8_t *b = bg_simple(n, vsize, ts, seed, &len);
    partition_append_info_t info;
    sl_err_t err;
    int rc = partition_append(p, b, len, ts, &info, &err);
    CHECK_MSG(rc == SL_OK, "append: %s", err.msg);
    free(b);
    return rc == SL_OK ? info.base_offset : -1;
}

/* Reads every record from offset 0 via copying reads and checks offsets are
 * dense and end at leo. Returns the number of records seen. */
static int64_t read_all(partition_t *p, int64_t from, uint64_t max_bytes)
{
    int64_t next = from, seen = 0;
    int64_t leo = partition_log_end(p);
    while (next < leo) {
        uint8_t *buf;
        size_t len;
        sl_err_t err;
        int rc = partition_read_copy(p, next, max_bytes, &buf, &len, &err);
        CHECK_MSG(rc == SL_OK, "read_copy at %" PRId64 ": %s", next, err.msg);
        if (rc != SL_OK || len == 0) {
            free(buf);
            break;
        }
        size_t off = 0;
        while (off < len) {
            size_t sz = (size_t)sl_batch_total_size(buf + off);
            sl_batch_hdr_t h;
            CHECK(sl_batch_validate(buf + off, sz, NULL, &h, &err) == SL_OK);
            /* The first batch may start before `next` (it holds it). */
            CHECK(h.base_offset <= next);
            CHECK(h.base_offset + h.last_offset_delta >= next);
            seen += h.base_offset + h.last_offset_delta + 1 - next;
            next = h.base_offset + h.last_offset_delta + 1;
            off += sz;
        }
        free(buf);
    }
    CHECK_EQ_INT(next, leo);
    return seen;
}

static void test_round_trip_and_rolls(void)
{
    char *dir = check_tmpdir("part-roll");
    sl_log_conf_t c;
    sl_log_conf_defaults(&c);
    c.segment_bytes = 8192; /* a roll every few batches */
    c.index_interval_bytes = 512;
    partition_t *p = open_part(dir, &c, 0, NULL);
    CHECK_EQ_INT(partition_log_end(p), 0);
    CHECK_EQ_INT(partition_log_start(p), 0);

    int64_t expect = 0;
    int64_t bases[200], sizes[200];
    for (int i = 0; i < 200; i++) {
        int n = 1 + i % 7;
        int64_t base = append(p, n, 100 + (size_t)(i % 5) * 50, 1000 + i, (uint32_t)i);
        CHECK_EQ_INT(base, expect);
        bases[i] = base;
        sizes[i] = n;
        expect += n;
    }
    CHECK_EQ_INT(partition_log_end(p), expect);
    partition_stats_t st;
    partition_stats(p, &st);
    CHECK_MSG(st.segments > 10, "segments = %u", st.segments);

    /* Every offset, from a fetch of 1 byte: the batch holding it, whole. */
    for (int i = 0; i < 200; i++)
        for (int64_t o = bases[i]; o < bases[i] + sizes[i]; o++) {
            seg_range_t r;
            sl_err_t err;
            int rc = partition_read(p, o, 1, &r, &err);
            CHECK_MSG(rc == SL_OK, "read %" PRId64 ": %s", o, err.msg);
            if (rc != SL_OK) continue;
            CHECK_EQ_INT(r.first_offset, bases[i]);
            uint8_t h[SL_BATCH_HEADER_SIZE];
            CHECK(pread(r.fd, h, sizeof h, (off_t)r.pos) == (ssize_t)sizeof h);
            CHECK_EQ_INT((int64_t)sl_be64(h), bases[i]);
            CHECK_EQ_INT(r.len, sl_batch_total_size(h));
            seg_range_release(&r);
        }
    CHECK_EQ_INT(read_all(p, 0, 1), expect);
    CHECK_EQ_INT(read_all(p, 0, 1 << 20), expect);
    CHECK_EQ_INT(read_all(p, 17, 3000), expect - 17);

    /* At the log end: empty, no pin. Beyond it and below 0: out of range. */
    seg_range_t r;
    sl_err_t err;
    CHECK_EQ_INT(partition_read(p, expect, 100, &r, &err), SL_OK);
    CHECK_EQ_INT(r.len, 0);
    CHECK(r.seg == NULL);
    CHECK_EQ_INT(partition_read(p, expect + 1, 100, &r, &err), SL_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(partition_read(p, -1, 100, &r, &err), SL_ERR_OFFSET_OUT_OF_RANGE);

    /* A large fetch stops at the end of its segment; the range may end inside
     * a batch, but starts at one. */
    CHECK_EQ_INT(partition_read(p, 0, 1 << 20, &r, &err), SL_OK);
    CHECK(r.len > 0 && r.len <= 8192);
    seg_range_release(&r);

    /* Time lookups: timestamps are 1000 + i per batch. */
    int64_t off;
    CHECK_EQ_INT(partition_offset_for_time(p, 0, &off, &err), SL_OK);
    CHECK_EQ_INT(off, 0);
    for (int i = 0; i < 200; i += 13) {
        CHECK_EQ_INT(partition_offset_for_time(p, 1000 + i, &off, &err), SL_OK);
        CHECK_EQ_INT(off, bases[i]);
    }
    CHECK_EQ_INT(partition_offset_for_time(p, 5000, &off, &err), SL_OK);
    CHECK_EQ_INT(off, expect);

    /* Flush then reopen cleanly: same offsets, same content. */
    CHECK_EQ_INT(partition_flush(p, &err), SL_OK);
    CHECK_EQ_INT(partition_durable(p), expect);
    partition_close(p, 0);
    partition_recovery_t rec;
    p = open_part(dir, &c, 0, &rec);
    CHECK_EQ_INT(rec.ran, 0);
    CHECK_EQ_INT(partition_log_end(p), expect);
    CHECK_EQ_INT(read_all(p, 0, 777), expect);
    CHECK_EQ_INT(partition_offset_for_time(p, 1000 + 150, &off, &err), SL_OK);
    CHECK_EQ_INT(off, bases[150]);
    /* Appends continue the sequence. */
    CHECK_EQ_INT(append(p, 3, 10, 2000, 9), expect);
    partition_close(p, 0);

    /* And a recovery open of the same data changes nothing. */
    p = open_part(dir, &c, 1, &rec);
    CHECK_EQ_INT(rec.ran, 1);
    CHECK_EQ_INT(rec.bytes_truncated, 0);
    CHECK_EQ_INT(partition_log_end(p), expect + 3);
    CHECK_EQ_INT(read_all(p, 0, 4096), expect + 3);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

static void test_validation_rejects(void)
{
    char *dir = check_tmpdir("part-val");
    sl_log_conf_t c;
    sl_log_conf_defaults(&c);
    c.max_message_bytes = 2048;
    partition_t *p = open_part(dir, &c, 0, NULL);
    size_t len;
    sl_err_t err;
    uint8_t *b = bg_simple(5, 100, 1, 1, &len);
    b[len - 1] ^= 1; /* CRC no longer matches */
    CHECK_EQ_INT(partition_append(p, b, len, 1, NULL, &err), SL_ERR_CORRUPT_MESSAGE);
    free(b);
    b = bg_simple(50, 100, 1, 1, &len); /* > 2048 bytes */
    CHECK_EQ_INT(partition_append(p, b, len, 1, NULL, &err), SL_ERR_MESSAGE_TOO_LARGE);
    CHECK_EQ_INT(partition_append(p, b, 30, 1, NULL, &err), SL_ERR_CORRUPT_MESSAGE);
    free(b);
    CHECK_EQ_INT(partition_log_end(p), 0);
    /* Several batches in one append get consecutive offsets. */
    size_t l1, l2;
    uint8_t *b1 = bg_simple(3, 10, 1, 1, &l1), *b2 = bg_simple(4, 10, 1, 2, &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    partition_append_info_t info;
    CHECK_EQ_INT(partition_append(p, both, l1 + l2, 1, &info, &err), SL_OK);
    CHECK_EQ_INT(info.base_offset, 0);
    CHECK_EQ_INT(info.last_offset, 6);
    CHECK_EQ_INT((int64_t)sl_be64(both + l1), 3);
    free(b1);
    free(b2);
    free(both);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

/* One append of many batches larger than segment.bytes (a client packing a
 * whole request) is accepted whole into a fresh segment, reads back, and
 * the next append rolls again. */
static void test_append_larger_than_segment(void)
{
    char *dir = check_tmpdir("part-big");
    sl_log_conf_t c;
    sl_log_conf_defaults(&c);
    c.segment_bytes = 4096;
    partition_t *p = open_part(dir, &c, 0, NULL);
    CHECK_EQ_INT(append(p, 2, 100, 1, 1), 0); /* the active segment is not empty */
    size_t total = 0, len;
    uint8_t *set = NULL;
    for (int i = 0; i < 20; i++) { /* 20 batches of ~1 KiB: 5x segment.bytes */
        uint8_t *b = bg_simple(5, 180, 2, (uint32_t)i, &len);
        set = realloc(set, total + len);
        CHECK_FATAL(set != NULL);
        memcpy(set + total, b, len);
        total += len;
        free(b);
    }
    CHECK(total > 4 * 4096);
    partition_append_info_t info;
    sl_err_t err;
    CHECK_EQ_INT(partition_append(p, set, total, 2, &info, &err), SL_OK);
    CHECK_EQ_INT(info.base_offset, 2);
    CHECK_EQ_INT(info.last_offset, 101);
    free(set);
    CHECK_EQ_INT(append(p, 1, 10, 3, 99), 102);
    partition_stats_t st;
    partition_stats(p, &st);
    CHECK_EQ_INT(st.segments, 3); /* before, the big one, after */
    CHECK_EQ_INT(read_all(p, 0, 1 << 20), 103);
    partition_close(p, 0);
    /* And it recovers as written. */
    p = open_part(dir, &c, 1, NULL);
    CHECK_EQ_INT(partition_log_end(p), 103);
    CHECK_EQ_INT(read_all(p, 0, 1 << 20), 103);
    partition_close(p, 0);
    check_rmtree(dir);
    free(dir);
}

int main(void)
{
    cache = seg_cache_new(8); /* small: exercises eviction and reopening */
    test_round_trip_and_rolls();
    test_validation_rejects();
    test_append_larger_than_segment();
    seg_cache_free(cache);
    return check_exit();
}
