/* flusher.h — the group-commit thread.
 *
 * One thread fdatasyncs partitions so that no reactor ever blocks on the
 * disk. Two kinds of work reach it:
 *  - waits: "call me when partition p is durable through offset o" (acks=all).
 *    Every wait on p that is pending when a flush of p starts is covered by
 *    that one flush: one fdatasync acknowledges every batch appended before
 *    it began.
 *  - policy: partitions with unflushed data (reported by partition's on_dirty
 *    hook) are flushed when flush.messages or flush.ms says so.
 *
 * Callbacks run on the flusher thread, without its lock held; they must be
 * quick (post to a reactor's queue and signal its eventfd). They may call
 * flusher_wait() again.
 * Thread safety: every function may be called from any thread, except that
 * flusher_free() must not race with other calls on the same flusher.
 */
#ifndef SLUICE_STORAGE_FLUSHER_H
#define SLUICE_STORAGE_FLUSHER_H

#include <stdint.h>

#include "errors.h"
#include "partition.h"

typedef struct flusher flusher_t;

/* code is SL_OK once durable > offset, or the flush's error code.
 * durable is the partition's durable offset after the flush. */
typedef void (*flusher_done_fn)(void *arg, int code, int64_t durable);

/* Starts the thread. Returns NULL (and err) on failure. */
flusher_t *flusher_new(sl_err_t *err);

/* Completes every pending wait (flushing first), stops the thread, frees.
 * NULL is ok. */
void flusher_free(flusher_t *f);

/* Asks for done(arg, ...) once p is durable through `offset` (inclusive).
 * If it already is, done runs before this returns, on the calling thread.
 * Returns SL_OK or SL_ERR_NOMEM. */
int flusher_wait(flusher_t *f, partition_t *p, int64_t offset, flusher_done_fn done, void *arg);

/* Blocking form: returns once p is durable through offset (or the flush
 * failed). For tools and tests, never for a reactor thread. */
int flusher_wait_sync(flusher_t *f, partition_t *p, int64_t offset, sl_err_t *err);

/* The partition has unflushed data: track it for flush.messages/flush.ms.
 * Suitable as partition_opts.on_dirty (arg = the flusher). */
void flusher_mark_dirty(void *flusher, partition_t *p);

/* Stops tracking p before it is closed: flushes it, completes its waits, and
 * returns once the thread no longer touches p. */
void flusher_forget(flusher_t *f, partition_t *p);

typedef struct flusher_stats {
    uint64_t flushes;      /* partition_flush calls */
    uint64_t waits_done;   /* waits completed */
    uint64_t flush_ns_sum; /* total time in partition_flush */
} flusher_stats_t;

void flusher_get_stats(flusher_t *f, flusher_stats_t *st);

#endif
