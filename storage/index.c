#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "io.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static const uint8_t *entries(const idx_t *x)
{
    return x->map ? x->map : x->heap;
}

void idx_init(idx_t *x, uint8_t esize)
{
    memset(x, 0, sizeof *x);
    x->esize = esize;
}

void idx_release(idx_t *x)
{
    uint8_t esize = x->esize;
    free(x->heap);
    if (x->map) munmap((void *)x->map, x->map_len);
    idx_init(x, esize);
}

int idx_loaded(const idx_t *x)
{
    return x->heap != NULL || x->map != NULL;
}

static int reserve(idx_t *x)
{
    size_t need = (x->n + 1) * x->esize;
    if (need <= x->heap_cap) return 0;
    size_t cap = x->heap_cap ? x->heap_cap * 2 : (size_t)x->esize * 16;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(x->heap, cap);
    if (!p) return -ENOMEM;
    x->heap = p;
    x->heap_cap = cap;
    return 0;
}

int idx_append_offset(idx_t *x, uint32_t rel_off, uint32_t pos)
{
    if (reserve(x) < 0) return -ENOMEM;
    uint8_t *e = x->heap + x->n * IDX_OFFSET_ENTRY;
    put_le32(e, rel_off);
    put_le32(e + 4, pos);
    x->n++;
    return 0;
}

int idx_append_time(idx_t *x, int64_t ts, uint32_t rel_off)
{
    if (reserve(x) < 0) return -ENOMEM;
    uint8_t *e = x->heap + x->n * IDX_TIME_ENTRY;
    put_le64(e, (uint64_t)ts);
    put_le32(e + 8, rel_off);
    x->n++;
    return 0;
}

void idx_offset_at(const idx_t *x, size_t i, uint32_t *rel_off, uint32_t *pos)
{
    const uint8_t *e = entries(x) + i * IDX_OFFSET_ENTRY;
    *rel_off = le32(e);
    *pos = le32(e + 4);
}

void idx_time_at(const idx_t *x, size_t i, int64_t *ts, uint32_t *rel_off)
{
    const uint8_t *e = entries(x) + i * IDX_TIME_ENTRY;
    *ts = (int64_t)le64(e);
    *rel_off = le32(e + 8);
}

/* Index of the last entry whose key is ≤ target (or < target when strict),
 * or -1. Searches the last 1024 entries (8 KiB of offset index, the pages a
 * tailing reader keeps warm) before the whole range, for the reason Kafka's
 * AbstractIndex gives: a plain binary search touches cold pages of a large
 * mapped index and stalls. */
static long search(const idx_t *x, int64_t target, int strict, int is_time)
{
    const uint8_t *base = entries(x);
    size_t n = x->n;
    if (n == 0) return -1;
#define KEY(i)                                                                                     \
    (is_time ? (int64_t)le64(base + (i)*IDX_TIME_ENTRY)                                            \
             : (int64_t)le32(base + (i)*IDX_OFFSET_ENTRY))
#define BELOW(k) (strict ? (k) < target : (k) <= target)
    size_t lo = 0, hi = n; /* answer in [lo-1, hi-1] */
    size_t warm = n > 1024 ? n - 1024 : 0;
    if (warm > 0 && BELOW(KEY(warm)))
        lo = warm;
    else if (warm > 0)
        hi = warm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (BELOW(KEY(mid)))
            lo = mid + 1;
        else
            hi = mid;
    }
#undef KEY
#undef BELOW
    return (long)lo - 1;
}

void idx_lookup_offset(const idx_t *x, uint32_t target, uint32_t *rel_off, uint32_t *pos)
{
    long i = search(x, target, 0, 0);
    if (i < 0) {
        *rel_off = 0;
        *pos = 0;
        return;
    }
    idx_offset_at(x, (size_t)i, rel_off, pos);
}

int idx_lookup_time(const idx_t *x, int64_t target, uint32_t *rel_off)
{
    long i = search(x, target, 1, 1);
    if (i < 0) return 0;
    int64_t ts;
    idx_time_at(x, (size_t)i, &ts, rel_off);
    return 1;
}

void idx_truncate(idx_t *x, size_t n)
{
    if (n < x->n) x->n = n;
    if (x->persisted > x->n) x->persisted = x->n;
}

int idx_read_fd(idx_t *x, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    idx_release(x);
    size_t n = (size_t)st.st_size / x->esize;
    if (n == 0) return 0;
    x->heap = malloc(n * x->esize);
    if (!x->heap) return -ENOMEM;
    x->heap_cap = n * x->esize;
    ssize_t r = io_pread_all(fd, x->heap, n * x->esize, 0);
    if (r < 0) {
        idx_release(x);
        return (int)r;
    }
    x->n = (size_t)r / x->esize;
    x->persisted = x->n;
    return 0;
}

int idx_map_fd(idx_t *x, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    idx_release(x);
    size_t n = (size_t)st.st_size / x->esize;
    if (n == 0) return 0;
    void *m = mmap(NULL, n * x->esize, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return -errno;
    x->map = m;
    x->map_len = n * x->esize;
    x->n = n;
    x->persisted = n;
    return 0;
}

int idx_persist(idx_t *x, int fd, int full)
{
    if (x->map) return 0; /* mapped indexes are the file */
    size_t from = full ? 0 : x->persisted;
    if (from < x->n) {
        int rc = io_pwrite_all(fd, x->heap + from * x->esize, (x->n - from) * x->esize,
                               (off_t)(from * x->esize));
        if (rc < 0) return rc;
    }
    if (full && sl_io->ftruncate(fd, (off_t)(x->n * x->esize)) < 0) return -errno;
    x->persisted = x->n;
    return 0;
}

int idx_check_offset(const idx_t *x, uint64_t log_size)
{
    uint32_t prev_off = 0, prev_pos = 0;
    for (size_t i = 0; i < x->n; i++) {
        uint32_t off, pos;
        idx_offset_at(x, i, &off, &pos);
        if (pos >= log_size) return 0;
        if (i > 0 && (off <= prev_off || pos <= prev_pos)) return 0;
        prev_off = off;
        prev_pos = pos;
    }
    return 1;
}

int idx_check_time(const idx_t *x)
{
    int64_t prev_ts = 0;
    uint32_t prev_off = 0;
    for (size_t i = 0; i < x->n; i++) {
        int64_t ts;
        uint32_t off;
        idx_time_at(x, i, &ts, &off);
        if (i > 0 && (ts <= prev_ts || off < prev_off)) return 0;
        prev_ts = ts;
        prev_off = off;
    }
    return 1;
}
