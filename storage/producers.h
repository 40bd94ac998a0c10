/* producers.h — a partition's idempotent-producer table: for each producer
 * id seen in the partition, its epoch and the sequence ranges and offsets of
 * its last PRODUCERS_BATCHES batches, as Kafka keeps them (a producer has at
 * most 5 requests in flight, so a retry is always one of those 5).
 *
 * The table is a cache of what the log says: every batch carries its
 * producer id, epoch and base sequence, so the table can always be rebuilt
 * by reading the batch headers of the partition's tail (partition.c does
 * that through the I/O seam on the first idempotent append after an open).
 * This module holds no I/O and makes no decision about when to load; it
 * only stores, bounds and checks.
 *
 * Bounds: PRODUCERS_BATCHES batches per producer; at most `max` producer
 * states across every table that shares one producers_bound_t (the store
 * has one; 100,000 by default). Adding a state while the shared count is at
 * the cap evicts the least recently used producer of the table being added
 * to; when that table holds no producer, the state is added anyway, so the
 * count may exceed the cap by at most one per table (one per partition).
 * Each eviction is remembered as the highest offset the evicted producer
 * had written (producers_evicted_hi), so the caller knows when a missing
 * producer may have been evicted rather than never seen.
 *
 * Thread safety: a producers_t is guarded by its partition's mutex: every
 * function taking one must be called with that mutex held. The bound's
 * count is atomic and may be shared by tables under different mutexes.
 * Errors: sl_code_t with a message in the optional sl_err_t.
 */
#ifndef SLUICE_STORAGE_PRODUCERS_H
#define SLUICE_STORAGE_PRODUCERS_H

#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"
#include "errors.h"

#define PRODUCERS_BATCHES      5      /* batches remembered per producer */
#define PRODUCERS_MAX_STATES   100000 /* default store-wide cap on producer states */
#define PRODUCERS_SCAN_OFFSETS 100000 /* how far back from the log end a rebuild reads */

/* The store-wide count of producer states and its cap. Owned by whoever
 * opens partitions (the store); must outlive every table counted in it. */
typedef struct producers_bound {
    _Atomic int64_t count;
    int64_t max;
} producers_bound_t;

/* Sets count 0 and the cap (≤ 0: PRODUCERS_MAX_STATES). */
void producers_bound_init(producers_bound_t *b, int64_t max);

/* A process-wide bound for partitions opened without one (tests, tools). */
producers_bound_t *producers_bound_default(void);

typedef struct producers producers_t;
typedef struct producer producer_t;

/* A new, empty, not-loaded table counted in `bound` (not NULL). NULL on
 * ENOMEM. */
producers_t *producers_new(producers_bound_t *bound);

/* Frees the table and gives its states back to the bound. NULL is ok. */
void producers_free(producers_t *t);

/* Forgets every producer and marks the table not loaded, so the next
 * idempotent append rebuilds it from the log. Used when the table can no
 * longer be trusted: a failed load, an allocation failure while recording,
 * a deleted topic. */
void producers_clear(producers_t *t);

/* Loaded: the table holds every producer found in the scanned tail of the
 * log plus everything appended since (except evicted ones). */
int producers_loaded(const producers_t *t);
void producers_set_loaded(producers_t *t);

/* Highest last offset of any producer evicted since the table was last
 * cleared, or -1. A producer missing from a loaded table can have batches
 * in the log only at or below it. */
int64_t producers_evicted_hi(const producers_t *t);

/* Number of producers in this table. */
int64_t producers_count(const producers_t *t);

/* The state of producer `pid`, marked most recently used; NULL if absent. */
producer_t *producers_get(producers_t *t, int64_t pid);

/* Decides about batch h (producer_id ≥ 0) against its producer's state s
 * (NULL: a producer unknown to the partition). Returns
 *   SL_OK: append it;
 *   SL_ERR_EXISTS: a retry of one of the last PRODUCERS_BATCHES batches
 *     (same epoch, same first and last sequence): do not append; its first
 *     offset and offset count are in *dup_base and *dup_last;
 *   SL_ERR_INVALID_PRODUCER_EPOCH: an epoch older than the producer's;
 *   SL_ERR_OUT_OF_ORDER_SEQUENCE: a newer epoch not starting at sequence 0,
 *     or a first sequence other than the last one + 1 in the same epoch.
 * An unknown producer is accepted at any sequence (as Kafka accepts a
 * producer whose state expired). Pure: changes nothing. */
int producers_check(const producer_t *s, const sl_batch_hdr_t *h, int64_t *dup_base,
                    int64_t *dup_last, sl_err_t *err);

/* Records batch h, appended at base_off, as its producer's newest batch
 * (creating the state, and possibly evicting another of this table, as the
 * header says). A new epoch starts a new ring. Batches of an older epoch
 * than the state's (only seen while loading a log written before an epoch
 * was fenced) are ignored. Returns SL_OK or SL_ERR_NOMEM (the table is then
 * incomplete: clear it). */
int producers_record(producers_t *t, const sl_batch_hdr_t *h, int64_t base_off);

/* Retention moved the log start: forgets producers whose newest batch ends
 * below log_start, as a rebuild from the remaining log would. */
void producers_trim(producers_t *t, int64_t log_start);

/* Sequences wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch). */
int32_t producers_seq_add(int32_t seq, int32_t n);

#endif
