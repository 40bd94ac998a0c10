/* segment.h — one segment of a partition log, and the bounded cache of open
 * segment files shared by a whole store.
 *
 * A segment is three files named by its base offset (20 digits):
 * <base>.log (batches back to back), <base>.index, <base>.timeindex.
 *
 * File descriptors (and the mmaps of closed segments' indexes) live in an LRU
 * of at most `max_open` segments, so 100,000 partitions fit in an ordinary
 * fd limit: a segment is opened when pinned and closed when evicted. A pinned
 * segment is never evicted; the cache may exceed max_open while every open
 * segment is pinned.
 *
 * Lifetime: the partition's list owns a segment; pins are borrowed users of
 * its fd (an append in progress, a file range being sent). seg_drop() takes
 * the segment out of its partition; the memory and fd are freed when the last
 * pin goes. Deleted files stay readable through a pinned fd (Linux unlink
 * semantics), which is how a reader keeps a segment that retention removed.
 *
 * Locking: fields marked [P] belong to the owning partition's lock; fields
 * marked [C] to the cache's mutex. seg_pin() must be called with the owning
 * partition's lock held (it may load index state); seg_unpin() and
 * seg_range_release() may be called from any thread without it.
 */
#ifndef SLUICE_STORAGE_SEGMENT_H
#define SLUICE_STORAGE_SEGMENT_H

#include <stdint.h>

#include "errors.h"
#include "index.h"

typedef struct seg_cache seg_cache_t;

typedef struct seg {
    /* immutable */
    int64_t base;
    char *path; /* ".../<base>" without extension */
    seg_cache_t *cache;

    /* [P] */
    uint64_t size;       /* bytes of whole, valid batches */
    int64_t next_offset; /* offset after the last batch */
    int64_t max_ts;      /* largest batch maxTimestamp; INT64_MIN = unknown yet */
    int64_t created_ms;  /* wall time of the first append (for segment.ms) */
    int64_t bytes_since_index;
    int sealed;    /* no longer the active segment */
    int dirty;     /* appended to since the last fdatasync */
    int index_bad; /* mapped index failed its checks: rebuild before use */
    idx_t oidx, tidx;

    /* [C] */
    int fd;
    int pins;
    int dropped;
    struct seg *lru_prev, *lru_next;
} seg_t;

/* A pinned byte range of one segment file, for sendfile() or pread(). The
 * holder owns the pin and must call seg_range_release() once done. */
typedef struct seg_range {
    seg_t *seg;
    int fd;
    uint64_t pos;
    uint64_t len;
    int64_t first_offset; /* base offset of the first batch in the range */
} seg_range_t;

/* Creates a cache of at most max_open (≥ 1) open segments; NULL on ENOMEM. */
seg_cache_t *seg_cache_new(uint32_t max_open);

/* Frees the cache. Every segment must have been dropped and unpinned. */
void seg_cache_free(seg_cache_t *c);

/* Number of segments with an open fd right now. */
uint32_t seg_cache_open_count(seg_cache_t *c);

/* A segment object for dir/<base>, no I/O. NULL on ENOMEM. */
seg_t *seg_new(seg_cache_t *c, const char *dir, int64_t base);

/* Creates (truncating) the segment's three files for a new active segment.
 * Returns SL_OK or SL_ERR_STORAGE. */
int seg_create_files(seg_t *s, sl_err_t *err);

/* Ensures the fd is open (and, for a sealed segment whose indexes are not in
 * memory, maps them and checks them, setting index_bad when they fail) and
 * takes a pin. Returns SL_OK or SL_ERR_STORAGE. [P] held. */
int seg_pin(seg_t *s, sl_err_t *err);

/* Gives back a pin. Any thread. */
void seg_unpin(seg_t *s);

/* The partition lets go of the segment; freed once unpinned. Any thread. */
void seg_drop(seg_t *s);

/* Unlinks the segment's three files. Returns SL_OK or SL_ERR_STORAGE. */
int seg_unlink_files(seg_t *s, sl_err_t *err);

/* Opens one of the side files (".index" / ".timeindex") with flags. Returns
 * the fd or -errno. The caller closes it. */
int seg_open_side(const seg_t *s, const char *ext, int flags);

/* Releases a range's pin (NULL seg is a no-op) and clears it. Any thread. */
void seg_range_release(seg_range_t *r);

/* Formats the file name of a segment: "%020lld" of base + ext. */
void seg_file_name(char *buf, size_t n, const char *dir, int64_t base, const char *ext);

#endif
