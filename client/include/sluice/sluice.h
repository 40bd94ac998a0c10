/* sluice.h — libsluice, the C client library of the Sluice message broker.
 *
 * The whole public API is this one header; every symbol starts with
 * sluice_ / SLUICE_. Handles are opaque. Configuration uses Kafka's names
 * (bootstrap.servers, acks, batch.size, linger.ms, ...), so a Kafka user
 * knows them already; docs/client.md walks through a complete producer.
 *
 * Threads: a producer owns one background I/O thread. Every function may be
 * called from any application thread unless its comment says otherwise.
 * Callbacks (delivery reports, logs) are called from the thread named at each
 * setter and must not block; a delivery report callback may call
 * sluice_produce() again.
 *
 * Errors: functions return SLUICE_OK (0) or an error code: negative codes
 * are local (SLUICE_ERR__*, two underscores, as in librdkafka), positive
 * codes come from the broker and use Kafka's numbers (SLUICE_ERR_*).
 * sluice_err2str() names any of them. Functions that can explain more take
 * a caller's buffer (errstr, errstr_size).
 *
 * Ownership: what a function takes over is said at the function. Messages
 * handed to the application in delivery reports belong to the library and
 * are valid only during the callback.
 */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SLUICE_API __attribute__((visibility("default")))
#else
#define SLUICE_API
#endif

/** @name Version */
/** 0xMMmmpp: major, minor, patch. */
#define SLUICE_VERSION 0x000100
/** The library's version at run time (SLUICE_VERSION of the build). */
SLUICE_API int sluice_version(void);
/** "0.1.0". Static storage. */
SLUICE_API const char *sluice_version_str(void);

/** @name Errors */
typedef enum sluice_err {
    /* local */
    SLUICE_ERR__BAD_MSG = -199,       /**< a received batch failed its CRC or did not parse */
    SLUICE_ERR__DESTROY = -197,       /**< the handle is being destroyed */
    SLUICE_ERR__TRANSPORT = -195,     /**< connection to the broker failed or broke */
    SLUICE_ERR__MSG_TIMED_OUT = -192, /**< not delivered within delivery.timeout.ms */
    SLUICE_ERR__PARTITION_EOF = -191, /**< consumer reached the end of a partition (offset = it) */
    SLUICE_ERR__UNKNOWN_PARTITION = -190,
    SLUICE_ERR__UNKNOWN_TOPIC = -188,
    SLUICE_ERR__TIMED_OUT = -185,   /**< the call's own timeout expired */
    SLUICE_ERR__QUEUE_FULL = -184,  /**< buffer.memory full for longer than max.block.ms */
    SLUICE_ERR__INVALID_ARG = -186, /**< an argument is out of contract */
    SLUICE_ERR__NO_MEMORY = -183,
    SLUICE_ERR__STATE = -172, /**< the call does not fit the handle's state */

    SLUICE_OK = 0,

    /* from the broker (Kafka's numbers) */
    SLUICE_ERR_OFFSET_OUT_OF_RANGE = 1,
    SLUICE_ERR_CORRUPT_MESSAGE = 2,
    SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SLUICE_ERR_REQUEST_TIMED_OUT = 7,
    SLUICE_ERR_MESSAGE_TOO_LARGE = 10,
    SLUICE_ERR_INVALID_TOPIC = 17,
    SLUICE_ERR_RECORD_LIST_TOO_LARGE = 18,
    SLUICE_ERR_INVALID_REQUIRED_ACKS = 21,
    SLUICE_ERR_ILLEGAL_GENERATION = 22, /**< consumer group: stale generation (rejoins) */
    SLUICE_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    SLUICE_ERR_INVALID_GROUP_ID = 24,
    SLUICE_ERR_UNKNOWN_MEMBER_ID = 25, /**< consumer group: member unknown (rejoins) */
    SLUICE_ERR_INVALID_SESSION_TIMEOUT = 26,
    SLUICE_ERR_REBALANCE_IN_PROGRESS = 27, /**< consumer group: rejoin needed */
    SLUICE_ERR_TOPIC_ALREADY_EXISTS = 36,
    SLUICE_ERR_INVALID_PARTITIONS = 37,
    SLUICE_ERR_INVALID_CONFIG = 40,
    SLUICE_ERR_INVALID_REQUEST = 42,
    SLUICE_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    SLUICE_ERR_STORAGE_ERROR = 56,
    SLUICE_ERR_GROUP_ID_NOT_FOUND = 69, /**< describe of a group the broker does not know */
    SLUICE_ERR_INVALID_RECORD = 87,
} sluice_err_t;

/** A static, readable name for err ("QUEUE_FULL", "CORRUPT_MESSAGE"); never NULL. */
SLUICE_API const char *sluice_err2str(int err);

/** 1 if a producer retries a request that failed with err (connection
 * lost, timeouts, storage errors), else 0. */
SLUICE_API int sluice_err_is_retriable(int err);

/** @name Configuration */
typedef struct sluice_conf_s sluice_conf_t;

typedef enum {
    SLUICE_CONF_UNKNOWN = -2, /**< no such key */
    SLUICE_CONF_INVALID = -1, /**< bad value */
    SLUICE_CONF_OK = 0,
} sluice_conf_res_t;

/** A configuration with every default. Destroy it with sluice_conf_destroy
 * unless a sluice_*_new() call took it. NULL on ENOMEM. */
SLUICE_API sluice_conf_t *sluice_conf_new(void);
SLUICE_API void sluice_conf_destroy(sluice_conf_t *conf);
SLUICE_API sluice_conf_t *sluice_conf_dup(const sluice_conf_t *conf);

/** Sets name=value. Keys (Kafka's names; docs/client.md has the table):
 * bootstrap.servers, client.id, acks (0, 1, all/-1), batch.size, linger.ms,
 * compression.type (none, lz4), max.in.flight, buffer.memory, max.block.ms,
 * retries, retry.backoff.ms, request.timeout.ms, delivery.timeout.ms.
 * On failure writes a message naming the key, the value and what was
 * expected (and the closest known key) into errstr. */
SLUICE_API sluice_conf_res_t sluice_conf_set(sluice_conf_t *conf, const char *name,
                                             const char *value, char *errstr, size_t errstr_size);

/** Reads a key's current value as text into dest (dest_size ≥ 1).
 * SLUICE_CONF_UNKNOWN for no such key. */
SLUICE_API sluice_conf_res_t sluice_conf_get(const sluice_conf_t *conf, const char *name,
                                             char *dest, size_t dest_size);

/** @name Messages */
typedef struct sluice_header {
    const char *key;   /**< NUL-terminated */
    const void *value; /**< NULL for a null value */
    size_t value_len;
} sluice_header_t;

typedef struct sluice_message {
    int err; /**< SLUICE_OK, or why the message failed */
    const char *topic;
    int32_t partition;
    int64_t offset;    /**< assigned by the broker; -1 if unknown (acks=0 or failure) */
    int64_t timestamp; /**< milliseconds since the epoch */
    const void *key;   /**< NULL for a null key */
    size_t key_len;
    const void *value; /**< NULL for a null value */
    size_t value_len;
    const sluice_header_t *headers;
    size_t header_count;
    void *opaque; /**< the msg_opaque given to sluice_produce */
} sluice_message_t;

/** @name Producer */
typedef struct sluice_producer_s sluice_producer_t;

/** Called once per produced message with its final outcome: msg->err is
 * SLUICE_OK and msg->offset set, or the error (after retries). Called from
 * the application thread inside sluice_producer_poll(),
 * sluice_producer_flush(), sluice_producer_destroy() (SLUICE_ERR__DESTROY),
 * and inside sluice_produce() while it waits for buffer.memory that is held
 * by reports not yet served. msg and everything it points to are valid only
 * during the call. */
typedef void(sluice_dr_cb_t)(sluice_producer_t *p, const sluice_message_t *msg, void *opaque);
SLUICE_API void sluice_conf_set_dr_cb(sluice_conf_t *conf, sluice_dr_cb_t *cb);

/** Called for log lines (level: 3 error, 4 warning, 6 info, 7 debug) from
 * any of the library's threads; must not call back into the library.
 * Default: warnings and errors to stderr. */
typedef void(sluice_log_cb_t)(int level, const char *facility, const char *msg, void *opaque);
SLUICE_API void sluice_conf_set_log_cb(sluice_conf_t *conf, sluice_log_cb_t *cb);

/** The opaque passed to the callbacks. */
SLUICE_API void sluice_conf_set_opaque(sluice_conf_t *conf, void *opaque);

/** Creates a producer and its I/O thread. Takes conf on success (do not
 * destroy it then); on failure conf is still the caller's and errstr says
 * why. Connecting happens in the background: a broker that is down shows up
 * as delivery failures after delivery.timeout.ms, not as an error here. */
SLUICE_API sluice_producer_t *sluice_producer_new(sluice_conf_t *conf, char *errstr,
                                                  size_t errstr_size);

/** Unassigned partition: chosen by key (murmur2, like Kafka's default
 * partitioner) or, for a null key, the sticky partition of the topic. */
#define SLUICE_PARTITION_UA ((int32_t)-1)

/** Queues one message. Key, value and headers are copied before it returns.
 * timestamp 0 means now. Blocks up to max.block.ms while buffer.memory is
 * full, then returns SLUICE_ERR__QUEUE_FULL. The first message to a topic
 * also waits (within the same max.block.ms) for the broker's metadata, as
 * Kafka's producer does: SLUICE_ERR__TIMED_OUT when it does not come, or
 * the broker's error for the topic (e.g. SLUICE_ERR_INVALID_TOPIC). Other
 * immediate errors: SLUICE_ERR__INVALID_ARG (NULL topic),
 * SLUICE_ERR__UNKNOWN_PARTITION (explicit partition beyond the topic's
 * count), SLUICE_ERR_MESSAGE_TOO_LARGE (the message alone exceeds batch
 * limits or buffer.memory). On SLUICE_OK exactly one delivery report
 * follows. Delivery is at-least-once: a retried request that the broker
 * had appended is appended again (no gaps, no reordering). */
SLUICE_API int sluice_produce(sluice_producer_t *p, const char *topic, int32_t partition,
                              const void *key, size_t key_len, const void *value, size_t value_len,
                              const sluice_header_t *headers, size_t header_count,
                              int64_t timestamp, void *msg_opaque);

/** Serves delivery reports that are ready, waiting up to timeout_ms (0: do
 * not wait, -1: forever) for the first. Returns the number served. */
SLUICE_API int sluice_producer_poll(sluice_producer_t *p, int timeout_ms);

/** Sends everything queued (ignoring linger.ms) and waits until every
 * message has its delivery report served (this calls the callbacks), at
 * most timeout_ms (-1: forever). SLUICE_OK or SLUICE_ERR__TIMED_OUT. */
SLUICE_API int sluice_producer_flush(sluice_producer_t *p, int timeout_ms);

/** Messages produced but not yet reported. */
SLUICE_API size_t sluice_producer_outq_len(sluice_producer_t *p);

/** Stops the I/O thread and frees everything. Messages not yet delivered are
 * reported with SLUICE_ERR__DESTROY (call sluice_producer_flush first to
 * deliver them). NULL is ok. Not from a callback. */
SLUICE_API void sluice_producer_destroy(sluice_producer_t *p);

/** The partition Kafka's default partitioner picks for key among
 * `partitions`: murmur2(key) & 0x7fffffff modulo partitions. */
SLUICE_API int32_t sluice_partition_for_key(const void *key, size_t key_len, int32_t partitions);

/** Kafka's murmur2 (seed 0x9747b28c), as its partitioner uses it. */
SLUICE_API uint32_t sluice_murmur2(const void *data, size_t len);

/** @name Topic-partition lists (consumer and admin) */

/** Special offsets. */
#define SLUICE_OFFSET_BEGINNING ((int64_t)-2) /**< the log start */
#define SLUICE_OFFSET_END       ((int64_t)-1) /**< the log end: only new messages */
#define SLUICE_OFFSET_STORED                                                                       \
    ((int64_t)-1000)                           /**< the group's committed offset, else             \
                                                    auto.offset.reset */
#define SLUICE_OFFSET_INVALID ((int64_t)-1001) /**< none (e.g. nothing committed) */

typedef struct sluice_topic_partition {
    char *topic; /**< owned by the list */
    int32_t partition;
    int64_t offset; /**< meaning depends on the call */
    int err;        /**< per-partition result, where a call reports one */
} sluice_topic_partition_t;

typedef struct sluice_tp_list {
    size_t cnt, size;
    sluice_topic_partition_t *elems;
} sluice_tp_list_t;

/** A new empty list with room for `size` elements (grows as needed). NULL on
 * ENOMEM. Free with sluice_tp_list_destroy. */
SLUICE_API sluice_tp_list_t *sluice_tp_list_new(size_t size);
SLUICE_API void sluice_tp_list_destroy(sluice_tp_list_t *list);
/** Appends (topic is copied); returns the new element (offset
 * SLUICE_OFFSET_INVALID, err 0) or NULL on ENOMEM. */
SLUICE_API sluice_topic_partition_t *sluice_tp_list_add(sluice_tp_list_t *list, const char *topic,
                                                        int32_t partition);

/** @name Consumer
 *
 * Configuration keys (besides bootstrap.servers, client.id): group.id,
 * auto.offset.reset (earliest, latest, error), enable.auto.commit,
 * auto.commit.interval.ms, fetch.min.bytes, fetch.max.wait.ms,
 * max.partition.fetch.bytes, fetch.max.bytes (the one budget for all
 * prefetched data, whatever the number of partitions), session.timeout.ms,
 * heartbeat.interval.ms, check.crcs (default true: every received batch's
 * CRC-32C is checked; a bad one is reported as SLUICE_ERR__BAD_MSG and never
 * delivered), enable.partition.eof, fetch.mode (pull: Fetch long polls;
 * push: the broker streams new batches, for the lowest latency; the API is
 * the same).
 *
 * A consumer has one background thread that prefetches; the application
 * calls sluice_consumer_poll() from one thread at a time. */
typedef struct sluice_consumer_s sluice_consumer_t;

/** Creates a consumer and its thread. Takes conf on success. */
SLUICE_API sluice_consumer_t *sluice_consumer_new(sluice_conf_t *conf, char *errstr,
                                                  size_t errstr_size);

/** Consumes exactly these partitions, from each element's offset (an offset,
 * or SLUICE_OFFSET_BEGINNING / _END / _STORED). Replaces any previous
 * assignment. No group membership. */
SLUICE_API int sluice_consumer_assign(sluice_consumer_t *c, const sluice_tp_list_t *partitions);

/** Joins group.id with these topics (broker-side assignment); partitions are
 * assigned and revoked by rebalances, positions start at the committed
 * offsets (else auto.offset.reset). SLUICE_ERR__INVALID_ARG without
 * group.id. */
SLUICE_API int sluice_consumer_subscribe(sluice_consumer_t *c, const char *const *topics, size_t n);

/** The next message, waiting up to timeout_ms (-1: forever); NULL when none
 * arrived in time. A message with err != 0 reports an error (partition EOF
 * when enable.partition.eof, a bad CRC, a lost partition...). The caller
 * owns the message: free it with sluice_message_destroy. */
SLUICE_API sluice_message_t *sluice_consumer_poll(sluice_consumer_t *c, int timeout_ms);
SLUICE_API void sluice_message_destroy(sluice_message_t *msg);

/** Moves the position of an assigned partition; the next poll returns the
 * message at `offset` (or per SLUICE_OFFSET_BEGINNING / _END). */
SLUICE_API int sluice_consumer_seek(sluice_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t offset, int timeout_ms);

/** Commits offsets for group.id: `offsets` (offset = the NEXT message to
 * read), or with NULL the current positions of every assigned partition.
 * async = 0 waits for the broker's answer (durable) and returns its error;
 * async = 1 returns at once. */
SLUICE_API int sluice_consumer_commit(sluice_consumer_t *c, const sluice_tp_list_t *offsets,
                                      int async);

/** Fills each element's offset with the consumer's position (the next
 * offset poll would return; SLUICE_OFFSET_INVALID if unknown). */
SLUICE_API int sluice_consumer_position(sluice_consumer_t *c, sluice_tp_list_t *partitions);

/** Fills each element's offset with the group's committed offset
 * (SLUICE_OFFSET_INVALID if none), asking the broker. */
SLUICE_API int sluice_consumer_committed(sluice_consumer_t *c, sluice_tp_list_t *partitions,
                                         int timeout_ms);

/** The current assignment; *out is a new list the caller destroys. */
SLUICE_API int sluice_consumer_assignment(sluice_consumer_t *c, sluice_tp_list_t **out);

/** Leaves the group (committing positions first when enable.auto.commit),
 * stops prefetching. sluice_consumer_destroy still has to be called. */
SLUICE_API int sluice_consumer_close(sluice_consumer_t *c);
SLUICE_API void sluice_consumer_destroy(sluice_consumer_t *c);

/** @name Admin (blocking calls, for tools like the sluice CLI) */
typedef struct sluice_admin_s sluice_admin_t;

/** Connects to bootstrap.servers from conf (taken on success). */
SLUICE_API sluice_admin_t *sluice_admin_new(sluice_conf_t *conf, char *errstr, size_t errstr_size);
SLUICE_API void sluice_admin_destroy(sluice_admin_t *a);

/** Creates a topic; configs are "key=value" strings (n of them). errstr gets
 * the broker's message on failure. */
SLUICE_API int sluice_admin_create_topic(sluice_admin_t *a, const char *topic, int32_t partitions,
                                         const char *const *configs, size_t n, char *errstr,
                                         size_t errstr_size);
SLUICE_API int sluice_admin_delete_topic(sluice_admin_t *a, const char *topic, char *errstr,
                                         size_t errstr_size);

/** Topic metadata: one element per partition of each topic (all topics when
 * topics is NULL), offset = log end offset; err per topic. *out is a new list. */
SLUICE_API int sluice_admin_describe_topics(sluice_admin_t *a, const char *const *topics, size_t n,
                                            sluice_tp_list_t **out, char *errstr,
                                            size_t errstr_size);

/** A group as the broker describes it. */
typedef struct sluice_group_member {
    char *member_id, *client_id, *host;
    sluice_tp_list_t *assignment;
} sluice_group_member_t;

typedef struct sluice_group_info {
    char *group_id, *state, *assignor;
    int32_t generation;
    size_t member_count;
    sluice_group_member_t *members;
    /** committed offsets; each element's err holds 0, offset the committed
     * offset; log end offsets in `log_end` (same order), for lag. */
    sluice_tp_list_t *committed;
    int64_t *log_end;
} sluice_group_info_t;

/** Lists groups: *out is an array of *n infos (members and offsets not
 * filled), freed with sluice_group_infos_destroy. */
SLUICE_API int sluice_admin_list_groups(sluice_admin_t *a, sluice_group_info_t **out, size_t *n,
                                        char *errstr, size_t errstr_size);
/** Describes one group fully. */
SLUICE_API int sluice_admin_describe_group(sluice_admin_t *a, const char *group,
                                           sluice_group_info_t **out, char *errstr,
                                           size_t errstr_size);
SLUICE_API void sluice_group_infos_destroy(sluice_group_info_t *infos, size_t n);

#ifdef __cplusplus
}
#endif
#endif
