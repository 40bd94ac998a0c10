/* svc_topics.h — the topics service: the rules every front end applies to
 * topic names, lookups, auto-creation, create/delete and offset look-ups.
 *
 * Front ends (h_*.c, k_*.c) decode a request, call these, and encode the
 * answer; none of them checks a topic rule of its own.
 *
 * Threads: any worker thread (the store locks itself). Errors: SL_OK or an
 * sl_code_t with a message in *err. Creating and deleting a topic do disk
 * I/O on the calling reactor (open, fsync of topic.conf), as before.
 */
#ifndef SLUICE_BROKER_SVC_TOPICS_H
#define SLUICE_BROKER_SVC_TOPICS_H

#include <stdint.h>

#include "broker.h"

/* SL_OK, or INVALID_TOPIC for the broker's own topics (__consumer_offsets),
 * which clients may read but not write, create or delete. */
int topics_may_write(const char *topic, sl_err_t *err);

/* Looks a partition up; with auto_create (a produce, or a metadata request
 * that allows it) creates a missing topic first with num.partitions, when
 * auto.create.topics.enable is on. Returns SL_OK with a reference in *out
 * (partition_unref when done). */
int topics_partition(broker_t *b, const char *topic, int32_t id, int auto_create, partition_t **out,
                     sl_err_t *err);

/* The partition count of a topic (*nparts), auto-creating it as above. */
int topics_describe(broker_t *b, const char *topic, int auto_create, int32_t *nparts,
                    sl_err_t *err);

/* `partitions` value that asks for num.partitions (Kafka's -1, Sluice's 0:
 * each front end maps its own). */
#define TOPICS_DEFAULT_PARTITIONS INT64_MIN /* outside every front end's int32 */

/* Creates a topic. partitions: TOPICS_DEFAULT_PARTITIONS, or a count in
 * 1..STORE_MAX_PARTITIONS (INVALID_PARTITIONS otherwise). replication_factor -1 or
 * 1 (one broker; INVALID_REPLICATION_FACTOR otherwise). A NULL value among
 * the configs is INVALID_CONFIG. validate_only checks everything and
 * creates nothing. `who` names the requester in the log line. */
int topics_create(broker_t *b, const char *name, int64_t partitions, int32_t replication_factor,
                  const char *const *keys, const char *const *vals, size_t nconf, int validate_only,
                  const char *who, sl_err_t *err);

/* Deletes a topic and its data. */
int topics_delete(broker_t *b, const char *name, const char *who, sl_err_t *err);

/* ListOffsets: timestamp -1 → the log end, -2 → the log start, ≥ 0 → the
 * first offset whose batch's max timestamp is ≥ it (the log end when none
 * is); anything else INVALID_REQUEST. */
int topics_offset_for(partition_t *p, int64_t timestamp, int64_t *offset, sl_err_t *err);

#endif
