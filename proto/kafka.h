/* kafka.h — Kafka's wire protocol, the non-flexible versions the Kafka
 * listener serves (docs/kafka-compat.md): frame and request-header parsing,
 * the request bodies decoded into plain structs, and a growable writer for
 * response bodies.
 *
 * Encoding (Kafka's "classic" types): big-endian integers; string = int16
 * length + bytes (-1 = null where nullable); bytes = int32 length + bytes
 * (-1 = null); array = int32 count + elements (-1 = null where nullable).
 * Optional fields are gated by the request version exactly as Kafka's
 * schema files gate them; the comments below say "(vN+)".
 *
 * Decoding is pure and hostile-input safe: every length and count is
 * checked against the bytes left before anything is read or allocated;
 * nothing is allocated with malloc — strings and arrays live in the
 * caller's sl_arena_t (bounded by its limit), and `records` are views into
 * the caller's body buffer (mutable: the broker assigns offsets in place).
 * Decoded strings are NUL-terminated copies; a string holding a NUL byte,
 * a negative length where the field is not nullable, a count or length
 * running past the body, or bytes left over after the last field are all
 * INVALID_REQUEST with a message naming the field. Every function is
 * thread-safe (no shared state).
 */
#ifndef SLUICE_PROTO_KAFKA_H
#define SLUICE_PROTO_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h" /* sl_arena_t */
#include "errors.h"

/* API keys served (Kafka's numbering). */
typedef enum kf_api {
    KF_PRODUCE = 0,
    KF_FETCH = 1,
    KF_LIST_OFFSETS = 2,
    KF_METADATA = 3,
    KF_OFFSET_COMMIT = 8,
    KF_OFFSET_FETCH = 9,
    KF_FIND_COORDINATOR = 10,
    KF_JOIN_GROUP = 11,
    KF_HEARTBEAT = 12,
    KF_LEAVE_GROUP = 13,
    KF_SYNC_GROUP = 14,
    KF_DESCRIBE_GROUPS = 15,
    KF_LIST_GROUPS = 16,
    KF_API_VERSIONS = 18,
    KF_CREATE_TOPICS = 19,
    KF_DELETE_TOPICS = 20,
    KF_INIT_PRODUCER_ID = 22,
} kf_api_t;

/* The version range advertised for each served API (min is 0 for every
 * one, see kafka-protocol.md §2.3); kf_api_max returns -1 for a key that is
 * not served. Every version in [0, max] decodes. */
int kf_api_max(int api_key);
/* Served API keys in ascending order, for ApiVersions; returns the count. */
size_t kf_api_list(const int16_t **keys);
/* "Produce", "Fetch", ... or "Unknown". */
const char *kf_api_name(int api_key);

/* ---- frames and header ---------------------------------------------------- */

/* Smallest possible request: size(4) + api_key(2) + api_version(2) +
 * correlation_id(4) + client_id length(2). */
#define KF_MIN_FRAME 14

/* Looks at buf[0..len): SL_OK with *total = 4 + size once the 4-byte size
 * is there; SL_ERR_PARTIAL before that. A size below KF_MIN_FRAME - 4 or
 * negative as an int32 (INVALID_REQUEST), or above max_frame
 * (MESSAGE_TOO_LARGE), is an error after which the stream cannot be
 * trusted. */
int kf_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *total);

/* Request header v1 (every non-flexible version). */
typedef struct kf_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    const char *client_id; /* NULL when null; in the arena */
} kf_header_t;

/* Decodes the header of one whole frame (frame[0..total), total from
 * kf_frame_peek). *body / *body_len: the rest of the frame. The first 8
 * bytes after the size (key, version, correlation id) are always read, so
 * on an INVALID_REQUEST from a bad client_id, h->correlation_id is still
 * set and the caller can answer. */
int kf_header_decode(uint8_t *frame, uint32_t total, sl_arena_t *a, kf_header_t *h, uint8_t **body,
                     size_t *body_len, sl_err_t *err);

/* ---- request bodies ------------------------------------------------------- */

typedef struct kf_produce_part {
    int32_t index;
    uint8_t *records;    /* view into the body; NULL when null */
    int32_t records_len; /* 0 when null */
} kf_produce_part_t;

typedef struct kf_produce_topic {
    const char *name;
    kf_produce_part_t *parts;
    int32_t nparts;
} kf_produce_topic_t;

typedef struct kf_produce_req {
    const char *transactional_id; /* (v3+) NULL when null or absent */
    int16_t acks;
    int32_t timeout_ms;
    kf_produce_topic_t *topics;
    int32_t ntopics;
} kf_produce_req_t;

typedef struct kf_fetch_part {
    int32_t partition;
    int32_t current_leader_epoch; /* (v9+) else -1 */
    int64_t fetch_offset;
    int64_t log_start_offset; /* (v5+) else -1 */
    int32_t partition_max_bytes;
} kf_fetch_part_t;

typedef struct kf_fetch_topic {
    const char *topic;
    kf_fetch_part_t *parts;
    int32_t nparts;
} kf_fetch_topic_t;

typedef struct kf_fetch_req {
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;      /* (v3+) else INT32_MAX */
    int8_t isolation_level; /* (v4+) else 0 */
    int32_t session_id;     /* (v7+) else 0 */
    int32_t session_epoch;  /* (v7+) else -1 */
    kf_fetch_topic_t *topics;
    int32_t ntopics;
    /* forgotten_topics_data (v7+) is parsed and skipped; rack_id (v11+)
     * likewise. */
} kf_fetch_req_t;

typedef struct kf_list_offsets_part {
    int32_t partition;
    int32_t current_leader_epoch; /* (v4+, never decoded here) -1 */
    int64_t timestamp;            /* -1 latest, -2 earliest, else ms */
    int32_t max_num_offsets;      /* (v0 only) else 1 */
} kf_list_offsets_part_t;

typedef struct kf_list_offsets_topic {
    const char *name;
    kf_list_offsets_part_t *parts;
    int32_t nparts;
} kf_list_offsets_topic_t;

typedef struct kf_list_offsets_req {
    int32_t replica_id;
    int8_t isolation_level; /* (v2+) else 0 */
    kf_list_offsets_topic_t *topics;
    int32_t ntopics;
} kf_list_offsets_req_t;

typedef struct kf_metadata_req {
    /* v0: an empty array means all topics. v1+: null means all topics, an
     * empty array none. Decoded so that all_topics says which. */
    bool all_topics;
    const char **topics;
    int32_t ntopics;
    bool allow_auto_topic_creation; /* (v4+) else true */
} kf_metadata_req_t;

typedef struct kf_commit_part {
    int32_t index;
    int64_t offset;
    int32_t leader_epoch;     /* (v6+) else -1 */
    int64_t commit_timestamp; /* (v1 only) else -1 */
    const char *metadata;     /* NULL when null */
} kf_commit_part_t;

typedef struct kf_commit_topic {
    const char *name;
    kf_commit_part_t *parts;
    int32_t nparts;
} kf_commit_topic_t;

typedef struct kf_offset_commit_req {
    const char *group_id;
    int32_t generation_id;         /* (v1+) else -1 */
    const char *member_id;         /* (v1+) else "" */
    const char *group_instance_id; /* (v7+) NULL when null or absent */
    int64_t retention_time_ms;     /* (v2..v4) else -1 */
    kf_commit_topic_t *topics;
    int32_t ntopics;
} kf_offset_commit_req_t;

typedef struct kf_offset_fetch_topic {
    const char *name;
    int32_t *parts;
    int32_t nparts;
} kf_offset_fetch_topic_t;

typedef struct kf_offset_fetch_req {
    const char *group_id;
    bool all_topics; /* topics was null (v2+) */
    kf_offset_fetch_topic_t *topics;
    int32_t ntopics;
} kf_offset_fetch_req_t;

typedef struct kf_find_coordinator_req {
    const char *key;
    int8_t key_type; /* (v1+) else 0 (group) */
} kf_find_coordinator_req_t;

typedef struct kf_join_protocol {
    const char *name;
    const uint8_t *metadata; /* view into the body */
    int32_t metadata_len;
} kf_join_protocol_t;

typedef struct kf_join_group_req {
    const char *group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* (v1+) else session_timeout_ms */
    const char *member_id;
    const char *group_instance_id; /* (v5+) NULL when null or absent */
    const char *protocol_type;
    kf_join_protocol_t *protocols;
    int32_t nprotocols;
} kf_join_group_req_t;

typedef struct kf_heartbeat_req {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id; /* (v3+) */
} kf_heartbeat_req_t;

typedef struct kf_leave_group_req {
    const char *group_id;
    const char *member_id; /* v0..v2 */
} kf_leave_group_req_t;

typedef struct kf_sync_assignment {
    const char *member_id;
    const uint8_t *assignment; /* view into the body */
    int32_t assignment_len;
} kf_sync_assignment_t;

typedef struct kf_sync_group_req {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id; /* (v3+) */
    kf_sync_assignment_t *assignments;
    int32_t nassignments;
} kf_sync_group_req_t;

typedef struct kf_describe_groups_req {
    const char **groups;
    int32_t ngroups;
    bool include_authorized_operations; /* (v3+) */
} kf_describe_groups_req_t;

typedef struct kf_list_groups_req {
    int unused; /* v0..v2: empty body */
} kf_list_groups_req_t;

typedef struct kf_create_config {
    const char *name;
    const char *value; /* NULL when null */
} kf_create_config_t;

typedef struct kf_create_topic {
    const char *name;
    int32_t num_partitions;     /* -1 = broker default (v4+) */
    int16_t replication_factor; /* -1 = broker default (v4+) */
    int32_t nassignments;       /* manual assignments: counted, contents skipped */
    kf_create_config_t *configs;
    int32_t nconfigs;
} kf_create_topic_t;

typedef struct kf_create_topics_req {
    kf_create_topic_t *topics;
    int32_t ntopics;
    int32_t timeout_ms;
    bool validate_only; /* (v1+) */
} kf_create_topics_req_t;

typedef struct kf_delete_topics_req {
    const char **names;
    int32_t nnames;
    int32_t timeout_ms;
} kf_delete_topics_req_t;

typedef struct kf_init_producer_id_req {
    const char *transactional_id; /* NULL when null */
    int32_t transaction_timeout_ms;
} kf_init_producer_id_req_t;

/* ApiVersions v0..v2 have an empty body. A request above v2 (librdkafka
 * sends v3 first) is not decoded at all: the broker answers it in v0 form
 * with UNSUPPORTED_VERSION, as Kafka does (kafka-protocol.md §2.1). */
typedef struct kf_api_versions_req {
    int unused;
} kf_api_versions_req_t;

typedef struct kf_request {
    kf_header_t h;
    union {
        kf_produce_req_t produce;
        kf_fetch_req_t fetch;
        kf_list_offsets_req_t list_offsets;
        kf_metadata_req_t metadata;
        kf_offset_commit_req_t offset_commit;
        kf_offset_fetch_req_t offset_fetch;
        kf_find_coordinator_req_t find_coordinator;
        kf_join_group_req_t join_group;
        kf_heartbeat_req_t heartbeat;
        kf_leave_group_req_t leave_group;
        kf_sync_group_req_t sync_group;
        kf_describe_groups_req_t describe_groups;
        kf_list_groups_req_t list_groups;
        kf_api_versions_req_t api_versions;
        kf_create_topics_req_t create_topics;
        kf_delete_topics_req_t delete_topics;
        kf_init_producer_id_req_t init_producer_id;
    } u;
} kf_request_t;

/* Decodes one whole request frame (frame[0..total) from kf_frame_peek):
 * the header, then the body of h.api_key at h.api_version into the matching
 * member of out->u. Returns:
 *   SL_OK;
 *   SL_ERR_UNSUPPORTED_VERSION: the key is not served or the version is
 *     above kf_api_max (out->h is filled; the body is not looked at);
 *   SL_ERR_INVALID_REQUEST: a malformed header or body (out->h holds at
 *     least key, version and correlation id), with a message in err;
 *   SL_ERR_NOMEM: the arena's limit was reached.
 * `frame` must stay alive and unchanged while out is used (records and
 * metadata point into it). */
int kf_request_decode(uint8_t *frame, uint32_t total, sl_arena_t *a, kf_request_t *out,
                      sl_err_t *err);

/* ---- writer --------------------------------------------------------------- */

/* A growable buffer in Kafka's encoding. kw_init starts a response: the
 * 4-byte size and the correlation id (response header v0), the size
 * patched by kw_finish(). kw_init_plain starts bare bytes (no frame) that
 * travel inside another message, handed over by kw_take(). A failed
 * allocation sets `oom` and makes every later call a no-op, so a caller
 * checks once at the end. */
typedef struct kf_writer {
    uint8_t *buf; /* malloc'd; the caller takes it after kw_finish */
    size_t len, cap;
    int oom;
} kf_writer_t;

/* Starts a response: reserves the size, writes the correlation id. */
void kw_init(kf_writer_t *w, int32_t correlation_id);
/* Starts an empty buffer with no frame header (e.g. the ConsumerProtocol
 * bytes of JoinGroup metadata and SyncGroup assignments); finish it with
 * kw_take, not kw_finish. */
void kw_init_plain(kf_writer_t *w);
void kw_i8(kf_writer_t *w, int8_t v);
void kw_i16(kf_writer_t *w, int16_t v);
void kw_i32(kf_writer_t *w, int32_t v);
void kw_i64(kf_writer_t *w, int64_t v);
void kw_bool(kf_writer_t *w, bool v);
/* string: NULL writes a null string (length -1); longer than 32767 bytes is
 * truncated to 32767 (no field the broker writes can be that long). */
void kw_str(kf_writer_t *w, const char *s);
void kw_strn(kf_writer_t *w, const char *s, size_t n);
/* bytes: NULL writes null (-1). */
void kw_bytes(kf_writer_t *w, const uint8_t *b, int32_t len);
/* Raw bytes, no length. */
void kw_raw(kf_writer_t *w, const void *b, size_t len);
/* Reserves an int32 (an array count or a length known only later) and
 * returns its position for kw_patch_i32. */
size_t kw_reserve_i32(kf_writer_t *w);
void kw_patch_i32(kf_writer_t *w, size_t pos, int32_t v);
/* Patches the frame size to len - 4 + extra (extra: bytes the caller sends
 * after the buffer, e.g. file ranges spliced in by the broker). Returns 0,
 * or -1 after an allocation failure or for a size above INT32_MAX (the
 * buffer is then freed). */
int kw_finish(kf_writer_t *w, uint64_t extra);
/* Hands over what a kw_init_plain writer holds: a malloc'd buffer the
 * caller frees (not NULL even when empty) and its length in *len; NULL
 * after an allocation failure, the buffer then freed. Either way the
 * writer is left empty. */
uint8_t *kw_take(kf_writer_t *w, size_t *len);
void kw_free(kf_writer_t *w);

/* ---- reader helpers ---------------------------------------------------------
 * For bytes that are not a request frame: responses (clients, tests) and
 * byte strings carried inside messages (ConsumerProtocol). No allocation,
 * no error text: each returns 0 and advances *p, or -1 and leaves *p
 * alone. Views point into the caller's buffer. */

/* -1 when fewer than the needed bytes remain. */
int kr_i16(const uint8_t **p, const uint8_t *end, int16_t *v);
int kr_i32(const uint8_t **p, const uint8_t *end, int32_t *v);
int kr_i64(const uint8_t **p, const uint8_t *end, int64_t *v);
/* string: *s views its bytes (not NUL-terminated; they may hold a NUL) and
 * *n counts them; null gives *s NULL and *n -1. -1 for a length below -1
 * or bytes past end. */
int kr_str(const uint8_t **p, const uint8_t *end, const char **s, int16_t *n);
/* bytes: the same with an int32 length. */
int kr_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **b, int32_t *n);
/* An array count: -1 when negative (a caller that allows a null array reads
 * kr_i32 itself) or when count * min_size exceeds the bytes left, so that
 * a hostile count fails before anything is allocated for it. */
int kr_count(const uint8_t **p, const uint8_t *end, size_t min_size, int32_t *n);

#endif
