/* reactor.h — one event loop per thread: fd readiness, timers, tasks posted
 * from other threads, and deferred work.
 *
 * Only reactor.c includes <sys/epoll.h>. The loop knows fds, masks, timers
 * and opaque arguments, nothing about connections.
 *
 * Modes: edge-triggered (default) registers each fd once for in+out with
 * EPOLLET; handlers must read and write until EAGAIN (or re-queue themselves
 * with reactor_defer when they stop early for fairness). Level-triggered
 * registers in/out interest as asked and reports readiness as long as it
 * lasts; callers change interest with reactor_mod. The broker's conn layer
 * works in both (reactor.mode), so the benchmark can compare them.
 *
 * Threads: every function runs on the reactor's own thread except
 * reactor_post() and reactor_stop(), which any thread may call.
 * Errors: 0 or -errno.
 */
#ifndef SLUICE_BROKER_REACTOR_H
#define SLUICE_BROKER_REACTOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct reactor reactor_t;

#define REACTOR_IN  1u
#define REACTOR_OUT 2u
#define REACTOR_ERR 4u /* error or hang-up; handlers also see IN|OUT so they find it */
#define REACTOR_HUP 8u /* the peer shut down its writing side (EPOLLRDHUP); with IN */

typedef void (*reactor_io_fn)(void *arg, uint32_t events);
typedef void (*reactor_task_fn)(void *arg);

/* A registered fd. Owned (embedded) by the caller; must stay valid until
 * reactor_del() returned and the current event batch is over (free it from a
 * deferred task, never in the handler that deleted it). */
typedef struct reactor_handle {
    int fd;
    uint32_t interest; /* REACTOR_IN | REACTOR_OUT (level mode) */
    int dead;          /* deleted: events still in this batch are dropped */
    reactor_io_fn fn;
    void *arg;
} reactor_handle_t;

/* A timer. Owned (embedded) by the caller; idle when heap_idx == SIZE_MAX.
 * Initialise with reactor_timer_init(). */
typedef struct reactor_timer {
    uint64_t deadline_ms;
    size_t heap_idx;
    reactor_task_fn fn;
    void *arg;
} reactor_timer_t;

/* edge: 1 for edge-triggered, 0 for level-triggered. Returns NULL with
 * errno set on failure. */
reactor_t *reactor_new(int edge);
void reactor_free(reactor_t *r);
int reactor_is_edge(const reactor_t *r);

/* Registers h->fd with interest (REACTOR_IN|REACTOR_OUT; in edge mode both
 * are always armed). */
int reactor_add(reactor_t *r, reactor_handle_t *h, uint32_t interest);
/* Changes interest (a no-op in edge mode, where both stay armed). */
int reactor_mod(reactor_t *r, reactor_handle_t *h, uint32_t interest);
/* Unregisters; marks h dead so later events of this batch are dropped. */
int reactor_del(reactor_t *r, reactor_handle_t *h);

void reactor_timer_init(reactor_timer_t *t, reactor_task_fn fn, void *arg);
/* (Re)arms t to fire once after delay_ms. */
void reactor_timer_start(reactor_t *r, reactor_timer_t *t, uint64_t delay_ms);
void reactor_timer_stop(reactor_t *r, reactor_timer_t *t);
int reactor_timer_active(const reactor_timer_t *t);

/* Runs fn(arg) on r's thread soon. Any thread. Returns 0 or -ENOMEM (the
 * queue grows by allocation): for work that may be dropped, such as a
 * wake-up whose waiter also has a timer. A completion that must not be
 * lost uses reactor_post_task. */
int reactor_post(reactor_t *r, reactor_task_fn fn, void *arg);

/* A task node embedded in the object that will be completed (an acks=all
 * wait, a group commit), so posting it needs no memory and cannot fail.
 * Initialise with reactor_task_init(). A node is on at most one queue: post
 * it again only after its fn started running. The caller keeps the memory
 * valid until then; fn may free it. */
typedef struct reactor_task {
    struct reactor_task *next;
    reactor_task_fn fn;
    void *arg;
} reactor_task_t;

void reactor_task_init(reactor_task_t *t, reactor_task_fn fn, void *arg);

/* Queues t to run on r's thread soon. Any thread. Never fails. Runs in the
 * same pass as reactor_post's tasks. */
void reactor_post_task(reactor_t *r, reactor_task_t *t);

/* Tests only: while on, reactor_post fails with -ENOMEM as if the queue
 * could not grow (process-wide), so a test can check that nothing that
 * must complete depends on it. */
void reactor_test_fail_posts(int on);
/* How many posts were refused that way so far (process-wide). */
uint64_t reactor_test_refused_posts(void);

/* Runs fn(arg) on this thread after the current event batch (same thread
 * only): for resuming work cut short by a per-wake budget, and for freeing
 * objects whose handles may still appear in the batch. */
int reactor_defer(reactor_t *r, reactor_task_fn fn, void *arg);

/* Runs posted and deferred tasks until none are left (bounded rounds). For
 * shutdown, after the reactor's thread has stopped. */
void reactor_drain(reactor_t *r);

/* Loops until reactor_stop(). Returns 0, or -errno if epoll fails. */
int reactor_run(reactor_t *r);
void reactor_stop(reactor_t *r);

/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t reactor_now_ms(reactor_t *r);
uint64_t reactor_clock_ms(void);

#endif
