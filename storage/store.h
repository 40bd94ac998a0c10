/* store.h — a data directory: its lock, its topics, their partitions.
 *
 * Layout:  DIR/.lock                   (flock: one process per directory)
 *          DIR/.clean_shutdown         (present only between a clean close
 *                                       and the next open)
 *          DIR/topics/<topic>/topic.conf
 *          DIR/topics/<topic>/<partition>/<base>.log|.index|.timeindex
 *          DIR/topics/<topic>/<partition>/recovery-point
 *          DIR/deleted/                (topics being removed)
 * topic.conf is "key=value" lines (partitions plus the topic's overrides of
 * the store defaults), replaced atomically (temp file, fdatasync, rename,
 * directory fsync).
 *
 * Partitions open lazily, on first use, so a directory with 100,000
 * partitions opens in the time it takes to read the topic list. Without a
 * clean-shutdown marker, each partition is recovered as it opens.
 *
 * Thread safety: every function may be called from any thread concurrently,
 * except store_close (no other call may be running or follow). Partitions
 * handed out carry a reference: give it back with partition_unref().
 * Errors: sl_code_t with a message naming the topic, key or file.
 */
#ifndef SLUICE_STORAGE_STORE_H
#define SLUICE_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "flusher.h"
#include "logconf.h"
#include "partition.h"

#define STORE_MAX_PARTITIONS 10000
#define STORE_MAX_TOPIC_NAME 249

typedef struct store store_t;

typedef struct store_opts {
    const char *dir;
    const sl_log_conf_t *defaults; /* NULL: the built-in defaults */
    uint32_t max_open_segments;    /* fd cache size; 0: 1024 */
} store_opts_t;

/* Opens (creating) the directory, takes its lock (SL_ERR_LOCKED if another
 * process holds it), notes and removes the clean-shutdown marker, finishes
 * interrupted topic deletions and discovers every topic. Starts the flusher
 * thread. */
int store_open(const store_opts_t *opts, store_t **out, sl_err_t *err);

/* Clean shutdown: closes every partition (flush, indexes, checkpoints),
 * writes the clean-shutdown marker when every partition is known good, stops
 * the flusher, releases the lock. NULL is ok. */
void store_close(store_t *s);

/* Simulated crash, for tests: frees everything and releases the lock with no
 * flush, no index or checkpoint write and no marker. */
void store_crash(store_t *s);

/* 1 if the previous run shut down cleanly. */
int store_was_clean(const store_t *s);

/* SL_OK, or SL_ERR_INVALID_TOPIC with a message: 1..249 characters of
 * [a-zA-Z0-9._-], not "." or "..". */
int store_validate_topic_name(const char *name, sl_err_t *err);

/* Creates a topic with `partitions` (1..10000, else INVALID_PARTITIONS) and
 * config overrides keys[i]=values[i] (INVALID_CONFIG on an unknown key or
 * bad value). TOPIC_ALREADY_EXISTS if it exists or its name collides with
 * another's once '.' and '_' are treated alike (as Kafka does). Durable
 * when it returns. */
int store_topic_create(store_t *s, const char *name, int32_t partitions, const char *const *keys,
                       const char *const *values, size_t nconf, sl_err_t *err);

/* Deletes a topic and its data. Readers holding its partitions keep them
 * until they unref. UNKNOWN_TOPIC_OR_PARTITION if absent. */
int store_topic_delete(store_t *s, const char *name, sl_err_t *err);

/* Sets config overrides on an existing topic (persisted atomically, applied
 * to open partitions). */
int store_topic_alter(store_t *s, const char *name, const char *const *keys,
                      const char *const *values, size_t nconf, sl_err_t *err);

/* Topic names, sorted; *names is malloc'd (free with store_names_free). */
int store_topic_list(store_t *s, char ***names, size_t *n, sl_err_t *err);
void store_names_free(char **names, size_t n);

/* A topic's partition count and effective config; UNKNOWN_TOPIC_OR_PARTITION
 * if absent. overrides (may be NULL) receives the "key=value" text of its
 * overrides, malloc'd, NUL-terminated lines. */
int store_topic_info(store_t *s, const char *name, int32_t *partitions, sl_log_conf_t *conf,
                     char **overrides, sl_err_t *err);

/* Opens (on first use) and returns partition `id` of `topic` with a
 * reference the caller must drop with partition_unref(). */
int store_partition(store_t *s, const char *topic, int32_t id, partition_t **out, sl_err_t *err);

/* The store's group-commit thread. */
flusher_t *store_flusher(store_t *s);

typedef struct store_housekeeping {
    int rolled;  /* segments rolled by segment.ms */
    int deleted; /* segments deleted by retention */
    int errors;
    sl_err_t last_error;
} store_housekeeping_t;

/* Rolls segments due by age and applies retention, on every partition that
 * is open or has more than one segment on disk. For a housekeeping thread:
 * it does I/O. */
void store_housekeep(store_t *s, int64_t now_ms, store_housekeeping_t *out);

/* Hook installed on every partition the store opens (see
 * partition_set_on_append). Set it before partitions open. */
void store_set_on_append(store_t *s, void (*fn)(void *arg, partition_t *p), void *arg);

/* Hook called after a partition's first open ran recovery (after an
 * unclean shutdown), with what it found: bytes scanned, truncated, segments
 * deleted and why. Called with the store lock held (fn must not call back
 * into the store), on the thread that opened the partition. */
void store_set_on_recover(store_t *s,
                          void (*fn)(void *arg, const char *topic, int32_t id,
                                     const partition_recovery_t *rec),
                          void *arg);

/* Calls fn for every open partition (with the store lock held: fn must not
 * call back into the store). */
void store_foreach_open(store_t *s, void (*fn)(void *arg, partition_t *p), void *arg);

/* Number of partitions currently open, and segment fds open. */
size_t store_open_partitions(store_t *s);
uint32_t store_open_segment_files(store_t *s);

#endif
