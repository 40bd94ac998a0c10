/* partition_int.h — the partition struct, shared by partition.c (the live
 * log) and recover.c (opening, scanning, checkpoints). Not part of the
 * storage API. */
#ifndef SLUICE_STORAGE_PARTITION_INT_H
#define SLUICE_STORAGE_PARTITION_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "partition.h"
#include "producers.h"

struct partition {
    pthread_mutex_t mu;       /* the log: segment list, sizes, indexes */
    pthread_mutex_t flush_mu; /* one partition_flush at a time */
    char *dir;
    char *topic;
    int32_t id;
    sl_log_conf_t conf;
    seg_cache_t *cache;

    seg_t **segs; /* by base offset; segs[nsegs-1] is active */
    size_t nsegs, cap;

    _Atomic int64_t leo;
    _Atomic int64_t durable;
    _Atomic int64_t log_start;

    int64_t first_unflushed_ms; /* wall time of the oldest unflushed append; 0 = none */
    int dir_dirty;              /* a segment file was created or deleted since the last flush */
    int failed;                 /* an fdatasync failed: refuse appends until reopened */
    char failed_msg[200];

    uint64_t ckpt_seq; /* the checkpoint file is opened per write: no fd per partition */

    /* Idempotent producers (invariant 6); guarded by mu. Not loaded until
     * the first append of a batch with producerId >= 0 after open. */
    producers_t *producers;

    void (*on_dirty)(void *arg, partition_t *p);
    void *on_dirty_arg;
    void (*on_close)(void *arg, partition_t *p);
    void *on_close_arg;
    void (*on_append)(void *arg, partition_t *p);
    void *on_append_arg;
    _Atomic uint64_t user_word;
    _Atomic int refs;
    _Atomic int deleted;
};

/* Records one appended batch in the segment's indexes and max timestamp. */
int part_index_batch(partition_t *p, seg_t *s, int64_t base_off, int64_t last_off, uint64_t pos,
                     uint64_t size, int64_t max_ts);

/* Adds the final time-index entry and writes both indexes of s in full to
 * its side files. s must be pinned or not yet shared. */
int part_persist_index(partition_t *p, seg_t *s, int full, sl_err_t *err);

/* Rebuilds both indexes of s from its log (headers only) and writes them.
 * [mu] held, s pinned. */
int part_rebuild_index(partition_t *p, seg_t *s, sl_err_t *err);

/* Loads the segment list from disk (recovering when asked). recover.c. */
int part_load(partition_t *p, int recover, partition_recovery_t *rec, sl_err_t *err);

/* Reads the headers of every batch holding an offset in [from, to) through
 * the I/O seam and records, in p->producers, those with producerId >= 0
 * (only producer `pid`'s when pid >= 0). Returns SL_OK, SL_ERR_STORAGE (a
 * read failed, or a header is not where the dense offsets say it must be)
 * or SL_ERR_NOMEM; on error the table may hold part of the tail: the caller
 * clears it. [mu] held. recover.c. */
int part_scan_producers(partition_t *p, int64_t from, int64_t to, int64_t pid, sl_err_t *err);

/* Writes the recovery-point checkpoint (no fsync: it only ever names data
 * already synced, and a stale one only costs a longer scan). recover.c. */
int part_ckpt_write(partition_t *p, int64_t offset, int64_t seg_base, uint64_t pos, int64_t max_ts);

#endif
