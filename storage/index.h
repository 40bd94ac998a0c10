/* index.h — the sparse indexes of one segment.
 *
 * Offset index (.index): 8-byte entries (relative offset u32, file position
 * u32), one per index.interval.bytes of log, each pointing at the start of a
 * batch whose base offset is base + relative offset.
 * Time index (.timeindex): 12-byte entries (timestamp i64, relative offset
 * u32): "every record up to and including this offset has a timestamp ≤ ts";
 * ts strictly increases from entry to entry.
 * Both little-endian on disk. Neither is checksummed: a corrupt index is
 * detected by idx_check_*() and rebuilt from the log (the log is the truth).
 * Changing the entry layout changes the on-disk format: bump
 * SL_STORAGE_FORMAT_VERSION in partition.h.
 *
 * An idx_t holds its entries either in a growable heap buffer (the active
 * segment, and indexes rebuilt by recovery) or in a read-only mmap of the
 * file (closed segments). Not thread-safe: the owning partition serialises
 * access (see segment.h for the locking rules).
 */
#ifndef SLUICE_STORAGE_INDEX_H
#define SLUICE_STORAGE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_OFFSET_ENTRY 8
#define IDX_TIME_ENTRY   12

typedef struct idx {
    uint8_t *heap;      /* entries when in heap mode */
    size_t heap_cap;    /* bytes allocated */
    const uint8_t *map; /* entries when mapped */
    size_t map_len;     /* bytes mapped */
    size_t n;           /* number of entries */
    size_t persisted;   /* heap mode: entries already written to the file */
    uint8_t esize;      /* IDX_OFFSET_ENTRY or IDX_TIME_ENTRY */
} idx_t;

/* Initialises an empty heap-mode index with entry size esize. */
void idx_init(idx_t *x, uint8_t esize);

/* Frees the heap buffer or unmaps; leaves an empty index of the same kind. */
void idx_release(idx_t *x);

/* 1 if the index holds its entries (heap or map), 0 if it must be loaded. */
int idx_loaded(const idx_t *x);

/* Appends one entry (heap mode). Returns 0 or -ENOMEM. */
int idx_append_offset(idx_t *x, uint32_t rel_off, uint32_t pos);
int idx_append_time(idx_t *x, int64_t ts, uint32_t rel_off);

/* Entry accessors (i < n). */
void idx_offset_at(const idx_t *x, size_t i, uint32_t *rel_off, uint32_t *pos);
void idx_time_at(const idx_t *x, size_t i, int64_t *ts, uint32_t *rel_off);

/* Largest offset entry with rel_off ≤ target: its position and relative
 * offset; position 0 / rel_off 0 when no entry qualifies. Binary search that
 * tries the warm tail first (recent offsets are the common case). */
void idx_lookup_offset(const idx_t *x, uint32_t target, uint32_t *rel_off, uint32_t *pos);

/* Largest time entry with ts < target; returns 1 and its rel_off, or 0 when
 * none (every record may be ≥ target: scan from the start). */
int idx_lookup_time(const idx_t *x, int64_t target, uint32_t *rel_off);

/* Keeps only the first n entries (heap mode; persisted is clamped). */
void idx_truncate(idx_t *x, size_t n);

/* Loads the file at fd into heap mode (recovery and the active segment).
 * Returns 0, or -errno. Does not validate: call idx_check_*(). */
int idx_read_fd(idx_t *x, int fd);

/* Maps the file at fd read-only (closed segments). An empty file maps to an
 * empty index. Returns 0 or -errno. */
int idx_map_fd(idx_t *x, int fd);

/* Writes the entries not yet persisted (heap mode) to fd, appending at
 * persisted * esize; full = 1 rewrites everything and truncates the file to
 * the exact length. Returns 0 or -errno. */
int idx_persist(idx_t *x, int fd, int full);

/* Consistency checks against the log: offset entries strictly increasing in
 * both fields with positions < log_size; time entries strictly increasing in
 * ts and non-decreasing in rel_off. Return 1 if consistent, 0 if not. */
int idx_check_offset(const idx_t *x, uint64_t log_size);
int idx_check_time(const idx_t *x);

#endif
