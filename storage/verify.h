/* verify.h — an offline check of a whole data directory (`sluiced
 * --verify`): every batch of every segment of every partition is read and
 * validated, so corruption at rest (a flipped bit, a torn or truncated
 * sealed segment) is found without starting the broker or waiting for a
 * consumer to trip over it.
 *
 * Checks per batch, in file order: the length fits the file, magic 2, the
 * CRC-32C, recordsCount matching lastOffsetDelta, dense offsets (each batch
 * starts where the previous one ended, the first at the segment's base),
 * and deep validation (records parse; lz4 decompresses). After a bad batch
 * whose length field still fits the file the scan resumes after it, so
 * several problems in one segment are all reported; otherwise the rest of
 * that segment is reported as unreadable. Index and time-index files are
 * not checked: they are hints that recovery rebuilds.
 *
 * The bytes after the last whole batch of a partition's active (last)
 * segment are a torn tail when the previous run did not shut down cleanly:
 * recovery truncates them at the next start. They are reported as TORN, not
 * as corruption. Everything else that fails is CORRUPT.
 *
 * Takes the directory's lock (DATA/.lock) for the duration, so it never
 * reads a log a running broker is writing: SL_ERR_LOCKED when one runs.
 * Reads only; changes nothing. Not thread-safe (one call at a time).
 */
#ifndef SLUICE_STORAGE_VERIFY_H
#define SLUICE_STORAGE_VERIFY_H

#include <stdint.h>

#include "errors.h"

typedef enum verify_kind {
    VERIFY_CORRUPT, /* a batch that fails its checks, or an unreadable region */
    VERIFY_TORN,    /* the unflushed tail of an active segment after a crash */
} verify_kind_t;

typedef struct verify_problem {
    verify_kind_t kind;
    const char *topic;
    int32_t partition;
    const char *segment; /* file name, e.g. "00000000000000001234.log" */
    int64_t base_offset; /* the batch's baseOffset as stored (or expected) */
    uint64_t position;   /* byte position in the segment file */
    uint64_t bytes;      /* bytes affected (the batch, or the rest of the file) */
    const char *reason;  /* e.g. "CRC-32C mismatch: stored ..., computed ..." */
} verify_problem_t;

typedef struct verify_stats {
    uint64_t topics, partitions, segments, batches, bytes;
    uint64_t corrupt, torn;
} verify_stats_t;

/* Called once per problem found, in scan order; the strings are valid only
 * during the call. */
typedef void (*verify_fn)(void *arg, const verify_problem_t *p);

/* Scans the data directory `dir`. Returns SL_OK when the scan ran (problems
 * are in *stats and reported through fn), SL_ERR_LOCKED when a broker holds
 * the directory, SL_ERR_NOT_FOUND when `dir` holds no data directory, or
 * SL_ERR_STORAGE on an I/O error, with err set. */
int store_verify(const char *dir, verify_fn fn, void *arg, verify_stats_t *stats, sl_err_t *err);

#endif
