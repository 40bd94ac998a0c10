/* partition.h — one partition's log: a list of segments, the last of which
 * is active; offsets assigned on append; reads as pinned file ranges;
 * flush, recovery, retention.
 *
 * Invariants (see partition.c for how each is kept):
 *  1. log_start ≤ durable ≤ log_end (LEO). Offsets are dense: the batch after
 *     one ending at offset o starts at o + 1, also across segments.
 *  2. durable only moves after an fdatasync of every segment holding bytes
 *     below it returned; an acks=all reply waits for durable > its last offset.
 *  3. Readers see only whole batches below the published LEO.
 *  4. Offset-index entries increase in both offset and position and point at
 *     batch starts; indexes are never trusted over the log: a bad one is
 *     rebuilt.
 *  5. The recovery-point checkpoint never names an offset above durable, so
 *     recovery needs to scan only the bytes after it.
 *  6. An idempotent batch (producerId >= 0) is checked against its
 *     producer's state and recorded in it under the same hold of the mutex
 *     that appends it, so no two appends of one producer interleave. The
 *     state (producers.h) never names a batch the log did not hold at the
 *     offsets it gives, and once loaded it knows every producer with a
 *     batch in the last PRODUCERS_SCAN_OFFSETS offsets except evicted ones
 *     (which a rescan finds). It is loaded from the log after every open
 *     (so truncation by recovery is seen), trimmed when retention moves the
 *     log start, and dropped when a load fails or the topic is deleted.
 *
 * Thread safety: every function may be called from any thread; a partition
 * mutex is held for the append itself (including, once per open, reading
 * the producer state back from the log) and for read lookups, never across
 * fdatasync. Errors: sl_code_t with a message in sl_err_t naming the file and
 * position.
 */
#ifndef SLUICE_STORAGE_PARTITION_H
#define SLUICE_STORAGE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "logconf.h"
#include "producers.h"
#include "segment.h"

/* Version of the on-disk layout of segments, indexes and checkpoints. */
#define SL_STORAGE_FORMAT_VERSION 1

typedef struct partition partition_t;

typedef struct partition_opts {
    const char *dir;   /* the partition's directory (created if missing) */
    const char *topic; /* for messages */
    int32_t id;        /* for messages */
    const sl_log_conf_t *conf;
    seg_cache_t *cache; /* shared, outlives the partition */
    int recover;        /* 1: the store did not shut down cleanly */
    int64_t now_ms;
    /* Called (without the partition lock) when the partition goes from fully
     * flushed to holding unflushed data, or when flush.messages is reached;
     * the store wires it to the flusher. May be NULL. */
    void (*on_dirty)(void *arg, partition_t *p);
    void *on_dirty_arg;
    /* Store-wide count and cap of idempotent-producer states; must outlive
     * the partition. NULL: producers_bound_default(). */
    producers_bound_t *producers;
} partition_opts_t;

/* What one recovery did, for logs and tests. */
typedef struct partition_recovery {
    int ran; /* 0: clean open, nothing scanned */
    uint64_t bytes_scanned;
    uint64_t bytes_truncated; /* dropped from the tail (torn or corrupt) */
    int segments_deleted;     /* whole segments after the first bad batch */
    int indexes_rebuilt;
    char reason[200]; /* why the scan stopped early, if it did */
} partition_recovery_t;

/* Opens (creating if needed) the partition in opts->dir. With opts->recover,
 * scans every batch after the recovery point, truncates at the first invalid
 * one, rebuilds indexes and syncs the result. Fills *rec if not NULL. */
int partition_open(const partition_opts_t *opts, partition_t **out, partition_recovery_t *rec,
                   sl_err_t *err);

/* Flushes, persists indexes and the checkpoint, and frees. With `discard`
 * (the topic was deleted, or a crash is being simulated) skips all I/O.
 * NULL is ok. Segments still pinned by readers stay readable until released.
 * Ignores references: use it only on a partition nobody else holds. */
void partition_close(partition_t *p, int discard);

/* Reference counting for shared partitions (the store hands them out).
 * partition_open returns a partition holding one reference. The last
 * partition_unref runs the on_close hook (if set) and then partition_close,
 * discarding I/O when partition_mark_deleted was called. Any thread. */
void partition_ref(partition_t *p);
void partition_unref(partition_t *p);
void partition_mark_deleted(partition_t *p);

/* Hook run by the last unref before closing (the store: flusher_forget). */
void partition_set_on_close(partition_t *p, void (*fn)(void *arg, partition_t *p), void *arg);

typedef struct partition_append_info {
    int64_t base_offset; /* offset assigned to the first record */
    int64_t last_offset; /* offset of the last record */
    int64_t records;     /* records appended (0 for a duplicate) */
    int flush_due;       /* flush.messages reached */
    /* 1: the batch was a retry of one of its producer's last 5 batches and
     * was not appended again; base_offset and last_offset are the offsets it
     * got the first time (they may be above durable still, or below the log
     * start by now). */
    int duplicate;
} partition_append_info_t;

/* Appends buf[0..len): one or more whole RecordBatch v2 batches. Each is
 * validated (sl_batch_validate with max.message.bytes, then
 * sl_batch_validate_produce: no control or transactional batches, a
 * sequence for every producerId >= 0); baseOffset is overwritten in buf with
 * the assigned offset (bytes outside the CRC). Atomic: on any error nothing
 * is appended and the log is unchanged (a failed write is truncated away).
 *
 * Idempotent producers (Kafka's rules; producers.h keeps the state): a
 * batch with producerId >= 0 must be the only batch of the call. It is
 * checked against its producer's epoch and last 5 batches under the
 * partition mutex, together with the append, so callers need no lock:
 *   - a retry of one of those 5 (same epoch, first and last sequence) is
 *     not appended: SL_OK with info->duplicate = 1 and the first offsets;
 *   - an older epoch: SL_ERR_INVALID_PRODUCER_EPOCH; a newer one must start
 *     at sequence 0, and in the same epoch the first sequence must follow
 *     the last one (wrapping at INT32_MAX to 0), else
 *     SL_ERR_OUT_OF_ORDER_SEQUENCE;
 *   - a producer with no batch in the state or in the scanned tail is new:
 *     any sequence is accepted.
 * The first such batch after partition_open rebuilds the state from the
 * headers of the last PRODUCERS_SCAN_OFFSETS offsets (holding the mutex:
 * appends to this partition wait for it); a producer missing after the LRU
 * bound evicted others may cost a narrower rescan. When that read fails the
 * append fails with SL_ERR_STORAGE (or SL_ERR_NOMEM), nothing is appended,
 * and the next idempotent append tries the load again. Batches with
 * producerId < 0 are never checked and never wait for a load.
 *
 * Returns SL_OK, a validation code (CORRUPT_MESSAGE, INVALID_RECORD,
 * MESSAGE_TOO_LARGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, ...), one of the
 * producer codes above, UNKNOWN_TOPIC_OR_PARTITION (deleted topic),
 * SL_ERR_STORAGE or SL_ERR_NOMEM. Does not block beyond page-cache writes
 * and reads (and, on roll, the creation of the next segment's files). */
int partition_append(partition_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                     partition_append_info_t *info, sl_err_t *err);

/* Pins the bytes to send for a fetch at `offset`: starts at the batch that
 * holds it, runs to the end of that segment's published data but at most
 * max_bytes, except that the first batch is always whole (so a consumer can
 * always make progress). The range may end in a partial batch. At offset ==
 * LEO it returns SL_OK with len 0 and no pin. OFFSET_OUT_OF_RANGE below the
 * log start or above LEO. */
int partition_read(partition_t *p, int64_t offset, uint64_t max_bytes, seg_range_t *out,
                   sl_err_t *err);

/* Like partition_read, but the range holds whole batches only: from the
 * batch holding `offset` up to max_bytes, at least one batch even when it
 * exceeds max_bytes, never beyond the end of that batch's segment. Sets
 * *next_offset to the offset after the last batch in the range (where the
 * next read continues; equal to `offset` when the range is empty). At LEO:
 * SL_OK, len 0, no pin. Same errors as partition_read. Push mode reads with
 * it so every frame carries whole batches. Any thread; never blocks beyond
 * page-cache reads of batch headers. */
int partition_read_batches(partition_t *p, int64_t offset, uint64_t max_bytes, seg_range_t *out,
                           int64_t *next_offset, sl_err_t *err);

/* Copying read: whole batches only, starting at the batch holding `offset`,
 * at least one batch even when it exceeds max_bytes. *buf is malloc'd (the
 * caller frees); *len = 0 and *buf = NULL at LEO. */
int partition_read_copy(partition_t *p, int64_t offset, uint64_t max_bytes, uint8_t **buf,
                        size_t *len, sl_err_t *err);

/* fdatasync every segment with data appended before the call started, then
 * advance the durable offset and write the recovery-point checkpoint. One
 * call covers every append that completed before it began (group commit).
 * Returns SL_OK or SL_ERR_STORAGE; after a failed fdatasync the partition
 * refuses appends (the page cache can no longer be trusted) until reopened. */
int partition_flush(partition_t *p, sl_err_t *err);

/* 1 when flush.ms says the oldest unflushed data has waited long enough. */
int partition_flush_due(partition_t *p, int64_t now_ms);

/* Deletes whole closed segments past retention.bytes / retention.ms; the log
 * start offset advances. Returns SL_OK or SL_ERR_STORAGE; *deleted (may be
 * NULL) receives the number of segments removed. */
int partition_retention(partition_t *p, int64_t now_ms, int *deleted, sl_err_t *err);

/* Rolls a non-empty active segment older than segment.ms (housekeeping: a
 * partition that receives no appends still rolls). Returns SL_OK or error. */
int partition_roll_if_due(partition_t *p, int64_t now_ms, sl_err_t *err);

/* The earliest offset whose record timestamp is ≥ ts, or LEO when none. */
int partition_offset_for_time(partition_t *p, int64_t ts, int64_t *offset, sl_err_t *err);

/* Replaces the configuration (retention and roll settings take effect on
 * the next append/housekeeping). */
void partition_set_conf(partition_t *p, const sl_log_conf_t *conf);

int64_t partition_log_start(partition_t *p);
int64_t partition_log_end(partition_t *p);
int64_t partition_durable(partition_t *p);

typedef struct partition_stats {
    int64_t log_start, log_end, durable;
    uint64_t size_bytes;
    uint32_t segments;
    int64_t unflushed_messages;
    int failed;
} partition_stats_t;

void partition_stats(partition_t *p, partition_stats_t *st);

const char *partition_dir(const partition_t *p);
const char *partition_topic(const partition_t *p);
int32_t partition_id(const partition_t *p);

/* A word the storage engine never interprets, for the layer above (the
 * broker keeps a bitmask of reactors with waiters on this partition in it:
 * broker/watch.h). Lives as long as the partition. */
_Atomic uint64_t *partition_user_word(partition_t *p);

/* Called after every successful append, without the partition lock, on the
 * appending thread (the broker wakes waiting fetches from it). */
void partition_set_on_append(partition_t *p, void (*fn)(void *arg, partition_t *p), void *arg);

#endif
