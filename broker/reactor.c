#include "reactor.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct task {
    reactor_task_fn fn;
    void *arg;
} task_t;

typedef struct taskq {
    task_t *v;
    size_t n, cap;
} taskq_t;

struct reactor {
    int epfd;
    int evfd;
    int edge;
    _Atomic int stop;
    uint64_t now_ms;
    /* posted from other threads */
    pthread_mutex_t mu;
    taskq_t posted;
    reactor_task_t *nodes_head, *nodes_tail; /* reactor_post_task, FIFO */
    _Atomic int nodes_pending;               /* nodes_head != NULL, readable without mu */
    _Atomic int wake_pending;                /* an eventfd write is outstanding */
    reactor_handle_t evh;
    /* this thread only */
    taskq_t deferred;
    reactor_timer_t **heap;
    size_t nheap, capheap;
};

uint64_t reactor_clock_ms(void)
{
    return (uint64_t)sl_mono_ms();
}

static int q_push(taskq_t *q, reactor_task_fn fn, void *arg)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        task_t *v = realloc(q->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = (task_t){fn, arg};
    return 0;
}

static void on_eventfd(void *arg, uint32_t events)
{
    (void)events;
    reactor_t *r = arg;
    uint64_t v;
    while (read(r->evfd, &v, sizeof v) == sizeof v) {
    }
    atomic_store(&r->wake_pending, 0);
}

reactor_t *reactor_new(int edge)
{
    reactor_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->edge = edge;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&r->mu, NULL);
    if (r->epfd < 0 || r->evfd < 0) goto fail;
    r->evh.fd = r->evfd;
    r->evh.fn = on_eventfd;
    r->evh.arg = r;
    /* The eventfd is always level-triggered: a wake-up is never lost. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r->evh};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) < 0) goto fail;
    r->now_ms = reactor_clock_ms();
    return r;
fail : {
    int e = errno;
    reactor_free(r);
    errno = e;
    return NULL;
}
}

void reactor_free(reactor_t *r)
{
    if (!r) return;
    if (r->epfd >= 0) close(r->epfd);
    if (r->evfd >= 0) close(r->evfd);
    pthread_mutex_destroy(&r->mu);
    free(r->posted.v);
    free(r->deferred.v);
    free(r->heap);
    free(r);
}

int reactor_is_edge(const reactor_t *r)
{
    return r->edge;
}

static uint32_t to_epoll(const reactor_t *r, uint32_t interest)
{
    if (r->edge) return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    return (interest & REACTOR_IN ? EPOLLIN | EPOLLRDHUP : 0) |
           (interest & REACTOR_OUT ? EPOLLOUT : 0);
}

int reactor_add(reactor_t *r, reactor_handle_t *h, uint32_t interest)
{
    h->interest = interest;
    h->dead = 0;
    struct epoll_event ev = {.events = to_epoll(r, interest), .data.ptr = h};
    return epoll_ctl(r->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0 ? -errno : 0;
}

int reactor_mod(reactor_t *r, reactor_handle_t *h, uint32_t interest)
{
    if (r->edge || h->interest == interest) {
        h->interest = interest;
        return 0;
    }
    h->interest = interest;
    struct epoll_event ev = {.events = to_epoll(r, interest), .data.ptr = h};
    return epoll_ctl(r->epfd, EPOLL_CTL_MOD, h->fd, &ev) < 0 ? -errno : 0;
}

int reactor_del(reactor_t *r, reactor_handle_t *h)
{
    h->dead = 1;
    return epoll_ctl(r->epfd, EPOLL_CTL_DEL, h->fd, NULL) < 0 ? -errno : 0;
}

/* ---- timers: a binary min-heap on deadline ---- */

void reactor_timer_init(reactor_timer_t *t, reactor_task_fn fn, void *arg)
{
    t->deadline_ms = 0;
    t->heap_idx = SIZE_MAX;
    t->fn = fn;
    t->arg = arg;
}

int reactor_timer_active(const reactor_timer_t *t)
{
    return t->heap_idx != SIZE_MAX;
}

static void heap_swap(reactor_t *r, size_t a, size_t b)
{
    reactor_timer_t *t = r->heap[a];
    r->heap[a] = r->heap[b];
    r->heap[b] = t;
    r->heap[a]->heap_idx = a;
    r->heap[b]->heap_idx = b;
}

static void heap_up(reactor_t *r, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (r->heap[p]->deadline_ms <= r->heap[i]->deadline_ms) break;
        heap_swap(r, p, i);
        i = p;
    }
}

static void heap_down(reactor_t *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->nheap && r->heap[l]->deadline_ms < r->heap[m]->deadline_ms) m = l;
        if (l + 1 < r->nheap && r->heap[l + 1]->deadline_ms < r->heap[m]->deadline_ms) m = l + 1;
        if (m == i) return;
        heap_swap(r, i, m);
        i = m;
    }
}

void reactor_timer_stop(reactor_t *r, reactor_timer_t *t)
{
    size_t i = t->heap_idx;
    if (i == SIZE_MAX) return;
    t->heap_idx = SIZE_MAX;
    r->nheap--;
    if (i == r->nheap) return;
    r->heap[i] = r->heap[r->nheap];
    r->heap[i]->heap_idx = i;
    heap_up(r, i);
    heap_down(r, r->heap[i]->heap_idx);
}

void reactor_timer_start(reactor_t *r, reactor_timer_t *t, uint64_t delay_ms)
{
    reactor_timer_stop(r, t);
    if (r->nheap == r->capheap) {
        size_t cap = r->capheap ? r->capheap * 2 : 64;
        reactor_timer_t **h = realloc(r->heap, cap * sizeof *h);
        if (!h) abort(); /* a few pointers; nothing sensible to do without them */
        r->heap = h;
        r->capheap = cap;
    }
    t->deadline_ms = reactor_clock_ms() + delay_ms;
    t->heap_idx = r->nheap;
    r->heap[r->nheap++] = t;
    heap_up(r, t->heap_idx);
}

/* ---- tasks ---- */

static _Atomic int fail_posts; /* reactor_test_fail_posts */
static _Atomic uint64_t refused_posts;

void reactor_test_fail_posts(int on)
{
    atomic_store(&fail_posts, on);
}

uint64_t reactor_test_refused_posts(void)
{
    return atomic_load(&refused_posts);
}

static void wake(reactor_t *r)
{
    if (!atomic_exchange(&r->wake_pending, 1)) {
        uint64_t one = 1;
        ssize_t w = write(r->evfd, &one, sizeof one);
        (void)w; /* EAGAIN only when the counter is huge: a wake-up is pending anyway */
    }
}

int reactor_post(reactor_t *r, reactor_task_fn fn, void *arg)
{
    if (atomic_load_explicit(&fail_posts, memory_order_relaxed)) {
        atomic_fetch_add(&refused_posts, 1);
        return -ENOMEM;
    }
    pthread_mutex_lock(&r->mu);
    int rc = q_push(&r->posted, fn, arg);
    pthread_mutex_unlock(&r->mu);
    if (rc == 0) wake(r);
    return rc;
}

void reactor_task_init(reactor_task_t *t, reactor_task_fn fn, void *arg)
{
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
}

void reactor_post_task(reactor_t *r, reactor_task_t *t)
{
    t->next = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->nodes_tail)
        r->nodes_tail->next = t;
    else
        r->nodes_head = t;
    r->nodes_tail = t;
    atomic_store(&r->nodes_pending, 1);
    pthread_mutex_unlock(&r->mu);
    wake(r);
}

/* Runs the embedded-node tasks posted so far (later ones run next pass). */
static void run_nodes(reactor_t *r)
{
    /* Most loop iterations have none: skip the lock then. A node posted
     * after this look has also written the eventfd, so the loop comes
     * back for it. */
    if (!atomic_load(&r->nodes_pending)) return; /* seq_cst: pairs with wake() */
    pthread_mutex_lock(&r->mu);
    reactor_task_t *t = r->nodes_head;
    r->nodes_head = r->nodes_tail = NULL;
    atomic_store(&r->nodes_pending, 0);
    pthread_mutex_unlock(&r->mu);
    while (t) {
        reactor_task_t *next = t->next; /* fn may free t */
        t->fn(t->arg);
        t = next;
    }
}

int reactor_defer(reactor_t *r, reactor_task_fn fn, void *arg)
{
    return q_push(&r->deferred, fn, arg);
}

void reactor_stop(reactor_t *r)
{
    atomic_store(&r->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(r->evfd, &one, sizeof one);
    (void)w;
}

uint64_t reactor_now_ms(reactor_t *r)
{
    return r->now_ms;
}

static void run_queue(reactor_t *r, taskq_t *q, int locked)
{
    /* Swap the queue out so tasks may queue more (they run next round). */
    taskq_t mine;
    if (locked) pthread_mutex_lock(&r->mu);
    mine = *q;
    memset(q, 0, sizeof *q);
    if (locked) pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < mine.n; i++) mine.v[i].fn(mine.v[i].arg);
    /* Keep the larger buffer for reuse. */
    if (locked) pthread_mutex_lock(&r->mu);
    if (q->v == NULL) {
        q->v = mine.v;
        q->cap = mine.cap;
    } else {
        free(mine.v);
    }
    if (locked) pthread_mutex_unlock(&r->mu);
}

void reactor_drain(reactor_t *r)
{
    for (int round = 0;
         round < 100 && (r->posted.n || r->deferred.n || atomic_load(&r->nodes_pending)); round++) {
        run_nodes(r);
        run_queue(r, &r->posted, 1);
        run_queue(r, &r->deferred, 0);
    }
}

int reactor_run(reactor_t *r)
{
    struct epoll_event evs[256];
    while (!atomic_load(&r->stop)) {
        int timeout = -1;
        if (r->deferred.n > 0)
            timeout = 0;
        else if (r->nheap > 0) {
            uint64_t now = reactor_clock_ms();
            uint64_t d = r->heap[0]->deadline_ms;
            timeout = d <= now ? 0 : (int)(d - now > 60000 ? 60000 : d - now);
        }
        int n = epoll_wait(r->epfd, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        r->now_ms = reactor_clock_ms();
        for (int i = 0; i < n; i++) {
            reactor_handle_t *h = evs[i].data.ptr;
            if (h->dead) continue;
            uint32_t e = evs[i].events, m = 0;
            if (e & (EPOLLIN | EPOLLRDHUP)) m |= REACTOR_IN;
            if (e & EPOLLRDHUP) m |= REACTOR_HUP;
            if (e & EPOLLOUT) m |= REACTOR_OUT;
            if (e & (EPOLLERR | EPOLLHUP)) m |= REACTOR_ERR | REACTOR_IN | REACTOR_OUT;
            h->fn(h->arg, m);
        }
        run_nodes(r);
        run_queue(r, &r->posted, 1);
        while (r->nheap > 0 && r->heap[0]->deadline_ms <= r->now_ms) {
            reactor_timer_t *t = r->heap[0];
            reactor_timer_stop(r, t);
            t->fn(t->arg);
        }
        run_queue(r, &r->deferred, 0);
    }
    return 0;
}
