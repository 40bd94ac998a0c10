/* group.h — the consumer-group coordinator: groups, members, generations,
 * session timeouts and rebalances, with pluggable assignment.
 *
 * State machine of one group (Kafka's "classic" protocol):
 *
 *   Empty ──join──▶ PreparingRebalance ──all known members rejoined, or the
 *     ▲                 ▲   │             rebalance timeout passed──▶ (complete)
 *     │                 │   ▼
 *     │   join/leave/   │  complete: generation++, members that did not
 *     │   session death │  rejoin are dropped, a leader is chosen
 *     │                 │   │
 *     │        ┌────────┴───┴─────────────┐
 *     │        │ GRP_MODE_CLIENT           │ GRP_MODE_BROKER
 *     │        ▼                           ▼
 *     │   CompletingRebalance ──leader's──▶ Stable ◀── the broker ran the
 *     │   (followers' SyncGroup   SyncGroup            assignor itself at
 *     │    are parked)            (assignments)        completion
 *     └── last member gone (leave or session timeout): Empty, generation++
 *
 * Dead is reported for a group being evicted (the table is full and the
 * group is Empty); nothing is ever parked on a Dead group.
 *
 * Two assignment modes share everything else:
 *  - GRP_MODE_BROKER (Sluice's protocol): each member's protocol metadata is
 *    a Kafka consumer Subscription (grp_subscription_encode,
 *    proto/consumer_proto.h); at completion the coordinator runs the chosen
 *    assignor ("range" or "roundrobin", assign.h) over the partitions of
 *    the subscribed topics and stores each member's Assignment; SyncGroup
 *    just returns it.
 *  - GRP_MODE_CLIENT (the Kafka listener): metadata and assignments are
 *    opaque bytes; the leader gets every member's metadata in its join
 *    result and sends the assignments in its SyncGroup; the coordinator
 *    stores them and hands each member its own.
 * Both store assignments in Kafka's ConsumerProtocol Assignment encoding, so
 * DescribeGroup decodes them the same way (grp_assignment_decode). A group's
 * mode is fixed by its first member; a join in the other mode gets
 * INCONSISTENT_GROUP_PROTOCOL.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the whole coordinator (group operations are rare next to produce/fetch).
 * Parked JoinGroup/SyncGroup requests are answered through a callback that
 * runs exactly once per call, after the mutex is released, on whichever
 * thread completed them (the caller's own thread for an immediate answer,
 * another request's thread, or the ticking thread). The result it receives
 * is valid only during the callback: copy what you keep. A callback must not
 * block; it may call back into the coordinator.
 *
 * Time: every call takes now_ms (a monotonic clock chosen by the caller), so
 * tests drive timeouts with a fake clock. grp_tick() must be called
 * regularly (the broker: every 100 ms) to expire sessions and finish
 * rebalances whose deadline passed.
 *
 * Errors: sl_code_t wire codes (proto/errors.h), Kafka's meanings.
 */
#ifndef SLUICE_BROKER_GROUP_H
#define SLUICE_BROKER_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "assign.h"         /* the assignors, grp_partitions_fn */
#include "consumer_proto.h" /* grp_subscription_*, grp_assignment_*, grp_assign_t */

/* Hard bounds on what a request can make the coordinator hold (and, with
 * the code they bound: GRP_MAX_TOPICS, the topics of one subscription, in
 * consumer_proto.h; GRP_MAX_ASSIGNED, the partitions of one broker-side
 * assignment, in assign.h). */
#define GRP_MAX_ID        255     /* group id, member id, client id, protocol name (bytes) */
#define GRP_MAX_MEMBERS   1000    /* per group */
#define GRP_MAX_GROUPS    10000   /* live groups in memory */
#define GRP_MAX_PROTOCOLS 16      /* candidate protocols per JoinGroup */
#define GRP_MAX_METADATA  65536   /* bytes of one member's metadata or assignment */
#define GRP_MAX_REBALANCE 1800000 /* rebalance_timeout_ms is clamped to this */

typedef struct grp_coord grp_coord_t;

typedef enum grp_state {
    GRP_EMPTY,
    GRP_PREPARING_REBALANCE,
    GRP_COMPLETING_REBALANCE,
    GRP_STABLE,
    GRP_DEAD,
} grp_state_t;

typedef enum grp_mode { GRP_MODE_BROKER, GRP_MODE_CLIENT } grp_mode_t;

typedef struct grp_conf {
    int64_t min_session_ms;   /* group.min.session.timeout.ms */
    int64_t max_session_ms;   /* group.max.session.timeout.ms */
    int64_t initial_delay_ms; /* group.initial.rebalance.delay.ms: an Empty group's
                                 first rebalance waits this long for more members */
} grp_conf_t;

/* One candidate protocol of a JoinGroup: a name ("range") and the member's
 * metadata for it (broker mode: a Subscription). Views; copied. */
typedef struct grp_protocol {
    const char *name;
    const uint8_t *meta;
    size_t meta_len;
} grp_protocol_t;

typedef struct grp_join_req {
    const char *group_id;
    const char *member_id; /* "" on a first join */
    const char *client_id;
    const char *host;
    int64_t session_ms;
    int64_t rebalance_ms;      /* 0: session_ms */
    const char *protocol_type; /* "consumer" */
    grp_mode_t mode;
    const grp_protocol_t *protocols;
    size_t nprotocols;
} grp_join_req_t;

typedef struct grp_member_info {
    const char *member_id;
    const uint8_t *meta; /* the chosen protocol's metadata */
    size_t meta_len;
} grp_member_info_t;

typedef struct grp_join_result {
    int code;            /* SL_OK or the error */
    const char *message; /* "" on success */
    int32_t generation;
    const char *member_id; /* the member's id (also on errors, when known) */
    const char *leader_id;
    const char *protocol; /* the chosen protocol */
    /* Every member of the new generation, in member-id order (the Kafka
     * listener sends them to the leader only). */
    const grp_member_info_t *members;
    size_t nmembers;
} grp_join_result_t;

typedef struct grp_sync_result {
    int code;
    const char *message;
    const uint8_t *assignment; /* Assignment bytes; may be empty */
    size_t len;
} grp_sync_result_t;

typedef void (*grp_join_fn)(void *arg, const grp_join_result_t *r);
typedef void (*grp_sync_fn)(void *arg, const grp_sync_result_t *r);

/* One member's assignment in a leader's SyncGroup (client mode). Views. */
typedef struct grp_member_assignment {
    const char *member_id;
    const uint8_t *bytes;
    size_t len;
} grp_member_assignment_t;

/* NULL on ENOMEM. partitions(arg, topic) (assign.h) gives the broker-mode
 * assignors their partition counts; it runs with the coordinator mutex
 * held, so it must not call back into the coordinator. */
grp_coord_t *grp_new(const grp_conf_t *conf, grp_partitions_fn partitions, void *arg);

/* Answers every parked request with REBALANCE_IN_PROGRESS ("broker shutting
 * down") and makes later JoinGroup/SyncGroup answer the same at once. */
void grp_close(grp_coord_t *g);

/* Frees everything (calls grp_close first). NULL is ok. */
void grp_free(grp_coord_t *g);

/* JoinGroup. done(arg, result) runs exactly once: at once for an error or
 * for a known member of a Stable group whose metadata did not change (the
 * current generation again), otherwise when the join phase completes.
 * Errors: INVALID_GROUP_ID (empty or longer than GRP_MAX_ID),
 * INVALID_SESSION_TIMEOUT, UNKNOWN_MEMBER_ID, INCONSISTENT_GROUP_PROTOCOL
 * (type, mode or no common protocol; an unknown assignor in broker mode),
 * INVALID_REQUEST (bounds: sizes, counts, too many groups or members),
 * REBALANCE_IN_PROGRESS (closing; or a newer JoinGroup of the same member
 * replaced this parked one). */
void grp_join(grp_coord_t *g, const grp_join_req_t *req, int64_t now_ms, grp_join_fn done,
              void *arg);

/* SyncGroup. assignments (client mode, the leader only; others pass 0) are
 * copied. done runs exactly once: at once unless the member is a follower
 * in CompletingRebalance (then when the leader syncs, or
 * REBALANCE_IN_PROGRESS when a new rebalance starts). Errors:
 * UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
 * INVALID_GROUP_ID, INVALID_REQUEST. */
void grp_sync(grp_coord_t *g, const char *group_id, int32_t generation, const char *member_id,
              const grp_member_assignment_t *assignments, size_t n, int64_t now_ms,
              grp_sync_fn done, void *arg);

/* Heartbeat: SL_OK (session refreshed), REBALANCE_IN_PROGRESS (rejoin; the
 * session is refreshed too), UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
 * INVALID_GROUP_ID. */
int grp_heartbeat(grp_coord_t *g, const char *group_id, int32_t generation, const char *member_id,
                  int64_t now_ms);

/* LeaveGroup: SL_OK (the member is gone, a rebalance starts at once if
 * others remain), UNKNOWN_MEMBER_ID, INVALID_GROUP_ID. */
int grp_leave(grp_coord_t *g, const char *group_id, const char *member_id, int64_t now_ms);

/* May this member commit offsets for this group now? (Kafka's
 * validateOffsetCommit.) generation < 0 on an Empty or unknown group: yes
 * (a standalone consumer). Otherwise UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
 * REBALANCE_IN_PROGRESS (CompletingRebalance); a commit in
 * PreparingRebalance with the current generation is allowed. A valid
 * member's session is refreshed. */
int grp_commit_check(grp_coord_t *g, const char *group_id, int32_t generation,
                     const char *member_id, int64_t now_ms);

/* Expires sessions and completes rebalances whose deadline passed. */
void grp_tick(grp_coord_t *g, int64_t now_ms);

/* ---- introspection --------------------------------------------------------- */

typedef struct grp_summary {
    char group_id[GRP_MAX_ID + 1];
    grp_state_t state;
    uint32_t members;
} grp_summary_t;

/* Every group in memory, sorted by id; *out is malloc'd (free()). */
int grp_list(grp_coord_t *g, grp_summary_t **out, size_t *n);

typedef struct grp_member_desc {
    char *member_id, *client_id, *host;
    uint8_t *assignment; /* Assignment bytes, possibly empty */
    size_t assignment_len;
} grp_member_desc_t;

typedef struct grp_desc {
    char group_id[GRP_MAX_ID + 1];
    grp_state_t state;
    int32_t generation;
    grp_mode_t mode;
    char protocol_type[GRP_MAX_ID + 1];
    char protocol[GRP_MAX_ID + 1];
    char leader[GRP_MAX_ID + 1];
    grp_member_desc_t *members; /* in member-id order */
    size_t nmembers;
} grp_desc_t;

/* A snapshot of one group: SL_OK, or GROUP_ID_NOT_FOUND. Release with
 * grp_desc_free (also after an error). */
int grp_describe(grp_coord_t *g, const char *group_id, grp_desc_t *out);
void grp_desc_free(grp_desc_t *d);

const char *grp_state_name(grp_state_t s);

/* ---- broker glue (h_groups.c) ------------------------------------------------- */

struct broker;
/* Creates the coordinator and replays committed offsets (broker_start,
 * after the store opened, before workers run); starts the 100 ms tick on
 * worker 0 (call after the workers' reactors exist). */
int groups_start(struct broker *b, char *errbuf, size_t errlen);
void groups_start_tick(struct broker *b);
/* Answers parked joins and syncs (top of broker_stop). */
void groups_close(struct broker *b);
/* Frees coordinator and offsets (end of broker_stop, after the store
 * closed and the reactors drained). */
void groups_free(struct broker *b);

#endif
