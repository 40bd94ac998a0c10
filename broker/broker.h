/* broker.h — the broker object and its workers (one reactor thread each).
 *
 * Threads: N workers (reactor + its SO_REUSEPORT listener), the store's
 * flusher, one housekeeping thread, and the main thread that waits for
 * signals. Partitions are shared by all workers (the store locks them);
 * everything else a worker owns (its connections, waiting fetches, metrics
 * counters) is touched only by its own thread, except the counters, which
 * the metrics page reads with relaxed atomics.
 *
 * Cross-thread wake-ups: a flush that completes an acks=all produce, and an
 * append that can answer a waiting fetch on another worker, post a task to
 * the target worker's reactor (reactor_post: a queue plus an eventfd).
 */
#ifndef SLUICE_BROKER_BROKER_H
#define SLUICE_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "codec.h"
#include "conf.h"
#include "metrics.h"
#include "protocol.h"
#include "reactor.h"
#include "store.h"
#include "watch.h"

typedef struct broker broker_t;

typedef struct conn conn_t;
struct grp_coord;
struct offsets;

/* A worker's socket of one listener (protocols[proto]). */
typedef struct worker_listener {
    struct worker *w;
    int proto;
    reactor_handle_t h; /* h.fd -1: that protocol is off */
} worker_listener_t;

/* One listener: a protocol's host:port, one SO_REUSEPORT socket per worker. */
typedef struct listener {
    char host[256];
    int port;                     /* the bound port (resolved when 0 was asked) */
    int fds[BROKER_MAX_REACTORS]; /* -1: none */
} listener_t;

typedef struct worker {
    broker_t *b;
    int id;
    reactor_t *r;
    pthread_t thread;
    worker_listener_t listen[PROTOCOLS]; /* by protocols[] row */
    reactor_handle_t metrics_h;          /* worker 0 only */
    reactor_task_t drain_task;           /* broker_stop's, posted once */
    conn_t *conns;                       /* all connections of this worker */
    size_t nconns;
    conn_t *paused; /* connections waiting for the global budget */
    reactor_timer_t budget_timer;
    reactor_timer_t idle_timer;
    watch_reg_t watches; /* waiters per partition: long polls, subscriptions (watch.h) */
    int draining;
    int pending_flushes; /* acks=all produces and commits waiting for the flusher */
    uint8_t *scratch;    /* read buffer shared by this worker's connections (SCRATCH bytes) */
    /* Request decoding (protobuf and Kafka bodies) on this worker: one
     * request at a time, reset before each; its first block is inline. */
    sl_arena_t arena;
    uint8_t arena_block[16384];
    metrics_worker_t m;
} worker_t;

struct broker {
    broker_conf_t conf;
    store_t *store;
    worker_t *workers;
    int nworkers;
    listener_t listeners[PROTOCOLS]; /* by protocols[] row; host "" when off */
    char host[256];                  /* Sluice's listener (row 0), for its Metadata */
    int port;
    int metrics_port;
    /* What Metadata and FindCoordinator tell Kafka clients (kafka_advertise). */
    char kafka_adv_host[256];
    int kafka_adv_port;
    char cluster_id[32];              /* Kafka's cluster id, kept in log.dirs/cluster.id */
    _Atomic int64_t next_producer_id; /* produce_next_producer_id; 0 before the first */
    int metrics_fd;
    _Atomic int64_t inflight_bytes; /* global budget use (queued.max.request.bytes) */
    _Atomic int64_t nconns;
    uint64_t start_ms;
    /* housekeeping */
    pthread_t hk_thread;
    pthread_mutex_t hk_mu;
    pthread_cond_t hk_cv;
    int hk_stop;
    /* consumer groups and committed offsets (group.h, offsets.h, h_groups.c) */
    struct grp_coord *groups;
    struct offsets *offsets;
    reactor_timer_t groups_timer; /* worker 0: session timeouts, every 100 ms */
};

/* Opens the store, binds listeners, starts workers and housekeeping. */
int broker_start(broker_t *b, const broker_conf_t *conf, sl_err_t *err);

/* Graceful: stop accepting, answer what is in flight (bounded wait), stop
 * the threads, close the store cleanly. */
void broker_stop(broker_t *b);

/* Budget accounting (any thread). */
static inline void broker_budget_add(broker_t *b, int64_t n)
{
    atomic_fetch_add_explicit(&b->inflight_bytes, n, memory_order_relaxed);
}
static inline int broker_budget_over(broker_t *b)
{
    return atomic_load_explicit(&b->inflight_bytes, memory_order_relaxed) >
           b->conf.queued_max_request_bytes;
}

/* Sets kafka_adv_host/port from kafka.advertised.listener, or the bound
 * listener (a wildcard address is advertised as 127.0.0.1). k_meta.c. */
void kafka_advertise(broker_t *b, const char *host, int port);

/* Reads log.dirs/cluster.id into b->cluster_id, creating it (22 random
 * base64url characters, like Kafka's) on first start. k_meta.c. */
int kafka_cluster_id(broker_t *b, sl_err_t *err);

#endif
