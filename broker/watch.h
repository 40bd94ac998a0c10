/* watch.h — the watch registry: which waiters of a worker watch which
 * partition, and waking them when it grows.
 *
 * A waiter is anything that waits for a partition to grow on a worker: a
 * long-polling fetch (one watch per partition it reads), a push
 * subscription, and later an AMQP consumer or a follower's fetch. It embeds
 * a watch_t and registers it with watch_add; the registry calls its fn on
 * the worker's thread after an append to the partition, until watch_del.
 *
 * Cross-thread: an append runs on any worker (or the offsets thread). It
 * reads the partition's watcher word (partition_user_word: one bit per
 * worker, set while anything on that worker watches the partition) and
 * posts watch_appended to each worker whose bit is set. The bit is set in
 * watch_add, before the caller's last look at the log: a caller must look
 * again after watch_add, so no append between its first look and the bit
 * is missed. Bits alias above 64 workers (num.reactors is at most 64).
 *
 * A wake-up post may fail for lack of memory (reactor_post); every waiter
 * that matters also has a timer (max_wait) or is woken by the next append,
 * so a lost wake-up delays, it never loses data or a response.
 *
 * Ownership: the registry holds no references. A watch is the caller's
 * memory and must stay valid until watch_del; the caller holds its own
 * reference to the partition while it watches. watch_del may be called
 * from inside any fn, for any watch (the walk survives it).
 *
 * Threads: every function runs on the worker's own thread, except
 * watch_partition_appended (any thread).
 */
#ifndef SLUICE_BROKER_WATCH_H
#define SLUICE_BROKER_WATCH_H

#include <stddef.h>

#include "partition.h"

typedef struct worker worker_t;
typedef struct watch watch_t;
struct watch_entry;

/* Called on the worker when the watched partition grew (or may have). */
typedef void (*watch_fn)(watch_t *x);

struct watch {
    watch_t *next, *prev;
    struct watch_entry *e; /* NULL: not registered */
    watch_fn fn;
    void *owner; /* the caller's; the registry never touches it */
};

/* A worker's registry: partition → its watches (embedded in worker_t). */
typedef struct watch_reg {
    struct watch_entry **buckets;
    size_t nbuckets, nentries;
} watch_reg_t;

/* Frees the registry's tables (after every watch was removed). */
void watch_reg_free(watch_reg_t *reg);

/* Registers x on p for worker w and sets w's bit in p's watcher word.
 * Returns 0, or -ENOMEM (x is then not registered; the caller answers
 * without waiting). */
int watch_add(worker_t *w, watch_t *x, partition_t *p, watch_fn fn, void *owner);

/* Unregisters x (a no-op when it is not registered); clears w's bit in p's
 * word when it was the worker's last watch on p. */
void watch_del(worker_t *w, watch_t *x);

/* Calls fn of every watch of w on p. fn may add and delete watches. */
void watch_notify(worker_t *w, partition_t *p);

/* Calls fn of every watch of w, as if each partition grew: on shutdown,
 * once w->draining is set, so waiters answer with what there is. */
void watch_notify_all(worker_t *w);

/* The store's on_append hook: posts watch_notify to every worker whose bit
 * is set in p's watcher word. Any thread. */
void watch_partition_appended(void *broker, partition_t *p);

#endif
