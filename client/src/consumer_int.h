/* consumer_int.h — the consumer's private state, shared by consumer.c (API,
 * message queue, the data thread: Fetch or push) and consumer_group.c (the
 * blocking coordinator connection: groups, commits, offset look-ups).
 *
 * Threads and locks
 *   - the application calls the API (poll from one thread at a time);
 *   - one background thread per consumer (consumer.c: cthread_main) owns the
 *     data connection (Fetch or SUBSCRIBE/PUSH) and runs the group protocol;
 *   - `mu` guards everything in sluice_consumer_s marked [mu]; `cond` wakes
 *     poll() when an item is queued; the thread sleeps in poll(2) on the data
 *     socket and `wake_fd` (an eventfd the API writes to after seek, assign,
 *     async commit, close, or when consumed bytes free budget or credit);
 *   - `coord_mu` serializes the coordinator connection, used by the thread
 *     (join, sync, heartbeat, offset look-ups, auto-commit) and by the
 *     application (sync commit, committed()). Lock order: coord_mu, then mu;
 *     never hold mu across I/O.
 *
 * Memory budget (fetch.max.bytes): every received fetch or push payload is
 * one refcounted chunk, charged to `buffered` until its last batch has been
 * consumed by poll(). Pull: a fetch reserves its max_bytes in `reserved`
 * before it is sent and is only sent while buffered + reserved stays within
 * the budget, so the total can exceed it only by the part of a first batch
 * beyond a fetch's max_bytes (the broker always sends one whole batch).
 * Push: each subscription starts with budget / partitions of credit and
 * gets back exactly what poll() consumed.
 */
#ifndef SLUICE_CLIENT_CONSUMER_INT_H
#define SLUICE_CLIENT_CONSUMER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "batch.h"
#include "internal.h"

/* One received payload (fetch or push), shared by the batch items cut from it. */
typedef struct cchunk {
    int refs;       /* [mu] items still pointing into data */
    size_t charge;  /* bytes charged to the budget */
    uint8_t data[]; /* the payload */
} cchunk_t;

/* A partition the consumer knows. Never freed before the consumer, so the
 * thread's in-flight requests can keep pointers to it; `assigned` and
 * `epoch` say whether what they carry is still wanted. All fields [mu]. */
typedef struct cpart {
    char *topic;
    int32_t partition;
    int assigned;
    uint32_t epoch;     /* bumped by seek, assign and revoke: older items and responses are stale */
    int64_t position;   /* next offset for the application; SLUICE_OFFSET_INVALID if unknown */
    int64_t fetch_pos;  /* next offset to fetch; valid when !need_reset */
    int need_reset;     /* fetch_pos to be resolved from reset_spec */
    int64_t reset_spec; /* SLUICE_OFFSET_BEGINNING / _END / _STORED */
    int64_t committed;  /* last offset committed by this consumer (auto-commit skips equal) */
    int inflight;       /* pull: a Fetch is outstanding */
    int64_t hw;         /* last high watermark seen */
    int eof_sent;       /* EOF reported for the current end */
    int64_t retry_at;   /* monotonic ms: no fetch before (after an error) */
    /* push */
    uint64_t sub_id;     /* live subscription (its correlation id), 0 none */
    uint32_t sub_epoch;  /* epoch it was made for */
    int sub_pending;     /* Subscribe sent, answer not yet in */
    int64_t credit;      /* initial credit of the subscription */
    int64_t credit_owed; /* consumed bytes not yet returned with CREDIT */
} cpart_t;

/* A queued unit for poll(): a whole batch, or an error / EOF report. */
typedef struct citem {
    struct citem *next;
    cpart_t *p;
    uint32_t epoch;
    int err;            /* 0: batch; else the message's err */
    int64_t offset;     /* err: the message's offset */
    int64_t next_off;   /* batch or BAD_MSG: offset after it (position moves there) */
    int64_t min_offset; /* skip records below (the fetch offset) */
    cchunk_t *chunk;
    const uint8_t *batch;
    size_t len;
    int push; /* consumed bytes go back as credit */
} citem_t;

struct sluice_consumer_s {
    sluice_conf_t *conf;
    pthread_t thread;
    int thread_started;
    int wake_fd;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* poll waits here */
    int terminate;       /* [mu] the thread must exit */
    int closed;          /* [mu] close() ran */

    cpart_t **parts; /* [mu] every partition ever known */
    size_t nparts, parts_cap;
    citem_t *qhead, *qtail; /* [mu] ready for poll */
    /* poll's current batch */
    citem_t *cur;            /* [mu] */
    sl_record_iter_t cur_it; /* valid while cur */
    int64_t buffered;        /* [mu] bytes of live chunks */
    int64_t reserved;        /* [mu] max_bytes of in-flight fetches */
    int64_t max_buffered;    /* [mu] high-water mark of buffered (tests) */
    int budget_waiter;       /* [mu] the thread waits for budget: wake it on release */

    /* subscription / group: [mu] unless noted */
    char **topics;
    size_t ntopics;
    int subscribed;
    int need_join;                   /* rejoin at the thread's next turn */
    int in_group;                    /* joined and synced: generation/member_id valid */
    int32_t generation;              /* [coord_mu and mu to write] */
    char *member_id;                 /* [coord_mu and mu to write] */
    int64_t next_hb_ms;              /* thread only */
    int64_t join_retry_at;           /* thread only */
    int64_t next_autocommit_ms;      /* thread only */
    sluice_tp_list_t *async_commits; /* [mu] queued by commit(async=1) */
    int async_all;                   /* [mu] an async commit of all positions is queued */

    /* coordinator connection [coord_mu] */
    pthread_mutex_t coord_mu;
    sl_callconn_t coord;
};

/* ---- consumer_group.c ----------------------------------------------------- */

/* One blocking round trip on the coordinator connection (caller holds
 * coord_mu), connecting first if needed. Decodes the response body with
 * resp_desc into coord.arena (valid until the next call) at *out. Returns
 * the header's error code (with its message in errmsg), SLUICE_ERR__BAD_MSG
 * for a body that does not decode, SLUICE_ERR__NO_MEMORY, or with the
 * connection closed SLUICE_ERR__TRANSPORT (also for a garbled stream),
 * SLUICE_ERR__TIMED_OUT, or SLUICE_ERR__DESTROY when the consumer's own
 * thread gives up because the consumer is closing. */
int sl_coord_call(sluice_consumer_t *c, int api, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                  ProtobufCMessage **out, char *errmsg, size_t errmsg_size);

/* Connects (bounded by timeout_ms) to the first reachable "host:port" of a
 * comma-separated list. Returns a non-blocking socket with TCP_NODELAY, or
 * -1; the server it reached is copied to which (NULL: not wanted). */
int sl_cons_connect(const char *servers, int timeout_ms, char *which, size_t which_size);

/* Commits offsets (offset = next to read) for group.id: the group's
 * generation and member id when in the group, else -1 / "". Caller holds
 * coord_mu (not mu). Returns the group-level error, else the first
 * per-partition error; fills each element's err. */
int sl_commit_list(sluice_consumer_t *c, sluice_tp_list_t *l);

/* A list of the current positions of assigned partitions (those moved since
 * the last commit only when changed_only). Takes mu. NULL if empty. */
sluice_tp_list_t *sl_positions_list(sluice_consumer_t *c, int changed_only);
/* Records a successful commit of l in each partition's `committed`. Takes mu. */
void sl_note_committed(sluice_consumer_t *c, const sluice_tp_list_t *l);

/* The thread's group work: (re)join and sync when needed, heartbeat when
 * due, auto-commit when due, queued async commits, and resolving the start
 * offsets of partitions that need it (OffsetFetch, ListOffsets). Called by
 * the data thread between I/O rounds; blocks on the coordinator. Returns the
 * ms until it wants to run again. */
int sl_group_work(sluice_consumer_t *c, int64_t now_ms);
/* On close: commit (enable.auto.commit) and LeaveGroup. */
void sl_group_close(sluice_consumer_t *c);

/* ---- consumer.c, used by consumer_group.c -------------------------------- */

void sl_cons_wake(sluice_consumer_t *c);
/* Finds or adds (topic, partition) in parts. Caller holds mu. NULL on ENOMEM. */
cpart_t *sl_cons_part(sluice_consumer_t *c, const char *topic, int32_t partition);
/* Marks p unassigned or assigned-from-spec and drops its queued items.
 * Caller holds mu. */
void sl_cons_unassign(sluice_consumer_t *c, cpart_t *p);
void sl_cons_assign_part(sluice_consumer_t *c, cpart_t *p, int64_t spec);
/* Queues an error message for the application. Caller holds mu. */
void sl_cons_queue_err(sluice_consumer_t *c, cpart_t *p, int err, int64_t offset);

/* ---- for white-box tests ------------------------------------------------- */

/* The highest number of bytes the consumer ever held prefetched. */
int64_t sl_consumer_max_buffered(sluice_consumer_t *c);

#endif
