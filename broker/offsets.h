/* offsets.h — committed consumer-group offsets, durable in the internal
 * partition __consumer_offsets/0 of the store, with an in-memory table
 * (group → topic-partition → offset, metadata) in front of it.
 *
 * On disk: one RecordBatch v2 per commit, one record per partition:
 *   key   = i16 version (1) | str group | str topic | i32 partition
 *   value = i16 version (1) | i64 offset | str metadata | i64 commit time (ms)
 *           (a null value deletes the key; nothing writes one yet)
 * str = i16 length + bytes (Kafka's string), big-endian integers. Changing
 * this changes the format: bump the version and keep reading the old one.
 * The topic is created by the first commit, with retention.ms=-1 (forever):
 * there is no compaction yet, so it grows by one small batch per commit.
 *
 * Replay (offsets_open) reads the whole partition in log order; the latest
 * record per key wins. Records that do not decode are skipped and counted
 * (a client can produce into the topic; nothing it writes can crash us).
 *
 * A commit is visible to offsets_get only once it is durable (fdatasync'd):
 * what a reader sees survives SIGKILL. Commits that race on one key are
 * ordered by their log offsets, as replay orders them.
 *
 * Thread safety: every function may be called from any thread; one mutex
 * guards the table (held for a page-cache append, never for a sync).
 * Errors: sl_code_t with a message in sl_err_t.
 */
#ifndef SLUICE_BROKER_OFFSETS_H
#define SLUICE_BROKER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "errors.h"
#include "store.h"

#define OFFSETS_TOPIC        "__consumer_offsets"
#define OFFSETS_MAX_METADATA 4096  /* Kafka's offset.metadata.max.bytes */
#define OFFSETS_MAX_ENTRIES  10000 /* partitions in one commit */

typedef struct offsets offsets_t;

/* The rule for one committed offset, the same for every protocol: metadata
 * longer than OFFSETS_MAX_METADATA is OFFSET_METADATA_TOO_LARGE, a negative
 * offset INVALID_REQUEST. */
static inline int offsets_commit_check(int64_t offset, const char *metadata)
{
    if (metadata && strlen(metadata) > OFFSETS_MAX_METADATA)
        return SL_ERR_OFFSET_METADATA_TOO_LARGE;
    return offset < 0 ? SL_ERR_INVALID_REQUEST : SL_OK;
}

typedef struct offsets_entry {
    const char *topic; /* ≤ STORE_MAX_TOPIC_NAME bytes */
    int32_t partition;
    int64_t offset;
    const char *metadata; /* ≤ OFFSETS_MAX_METADATA bytes; NULL = "" */
} offsets_entry_t;

/* Replays the internal topic when it exists (and re-applies its retention
 * settings). Blocking I/O: start-up only. The store must outlive o. */
int offsets_open(store_t *s, offsets_t **out, sl_err_t *err);

/* NULL is ok. No commit may still be in flight (close the store first:
 * that completes every flush wait). */
void offsets_free(offsets_t *o);

/* Called once the commit is durable (code SL_OK, the table updated) or
 * failed (STORAGE_ERROR; the table unchanged). */
typedef void (*offsets_done_fn)(void *arg, int code);

/* Appends one batch holding e[0..n) (1..OFFSETS_MAX_ENTRIES; strings are
 * copied) for `group` and asks the flusher to sync it. On SL_OK, done runs
 * exactly once: on the flusher thread, or on this thread before this
 * returns when the data is already durable. On an error (INVALID_REQUEST
 * for sizes, STORAGE_ERROR, NOMEM) done never runs. Never blocks beyond a
 * page-cache write. */
int offsets_commit(offsets_t *o, const char *group, const offsets_entry_t *e, size_t n,
                   int64_t now_ms, offsets_done_fn done, void *arg, sl_err_t *err);

/* The committed offset of one partition: SL_OK, or SL_ERR_NOT_FOUND.
 * metadata (may be NULL) receives a malloc'd copy. */
int offsets_get(offsets_t *o, const char *group, const char *topic, int32_t partition,
                int64_t *offset, char **metadata);

typedef struct offsets_item {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *metadata;
} offsets_item_t;

/* Every committed offset of a group, by topic then partition; *out is
 * malloc'd (offsets_items_free); n = 0 for an unknown group. */
int offsets_list(offsets_t *o, const char *group, offsets_item_t **out, size_t *n);
void offsets_items_free(offsets_item_t *items, size_t n);

/* Names of the groups holding committed offsets, sorted; malloc'd array of
 * malloc'd strings (store_names_free). */
int offsets_groups(offsets_t *o, char ***names, size_t *n);

/* Encodes/decodes one record's key and value (for tests and tools).
 * decode returns SL_OK or SL_ERR_INVALID_RECORD; strings are malloc'd. */
typedef struct offsets_record {
    char *group, *topic, *metadata;
    int32_t partition;
    int64_t offset;
    int64_t commit_ms;
    int tombstone;
} offsets_record_t;

int offsets_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                          int32_t value_len, offsets_record_t *out);
void offsets_record_free(offsets_record_t *r);

#endif
