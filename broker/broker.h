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
#include "reactor.h"
#include "store.h"

typedef struct broker broker_t;
typedef struct conn conn_t;
typedef struct fetch_wait fetch_wait_t;
struct grp_coord;
struct offsets;

typedef struct worker {
    broker_t *b;
    int id;
    reactor_t *r;
    pthread_t thread;
    reactor_handle_t listen_h;  /* Sluice's protocol */
    reactor_handle_t kafka_h;   /* Kafka's protocol (when kafka.listeners is set) */
    reactor_handle_t metrics_h; /* worker 0 only */
    conn_t *conns;              /* all connections of this worker */
    size_t nconns;
    conn_t *paused; /* connections waiting for the global budget */
    reactor_timer_t budget_timer;
    reactor_timer_t idle_timer;
    fetch_wait_t *waits;   /* long-polling fetches */
    struct kfetch *kwaits; /* long-polling Kafka fetches (k_fetch.c) */
    struct sub *subs;      /* push subscriptions of its connections (h_subscribe.c) */
    int draining;
    int pending_flushes;
    uint8_t *scratch;
    /* Request decoding (protobuf and Kafka bodies) on this worker: one
     * request at a time, reset before each; its first block is inline. */
    sl_arena_t arena;
    uint8_t arena_block[16384];
    /* read buffer shared by this worker's connections */ /* acks=all produces waiting for the
                                                             flusher */
    metrics_worker_t m;
} worker_t;

struct broker {
    broker_conf_t conf;
    store_t *store;
    worker_t *workers;
    int nworkers;
    char host[256];
    int port; /* the bound port (resolved when 0 was asked) */
    int metrics_port;
    int listen_fds[256]; /* one per worker, SO_REUSEPORT */
    int kafka_fds[256];  /* the same for the Kafka listener; -1 when disabled */
    int kafka_port;      /* bound port of the Kafka listener */
    /* What Metadata and FindCoordinator tell Kafka clients (kafka_advertise). */
    char kafka_adv_host[256];
    int kafka_adv_port;
    char cluster_id[32]; /* Kafka's cluster id, kept in log.dirs/cluster.id */
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

/* Wakes the fetches waiting on p (any thread; store's on_append hook). */
void broker_partition_appended(void *broker, partition_t *p);

#endif
