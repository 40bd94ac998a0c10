#include "flusher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

typedef struct waiter {
    int64_t offset;
    flusher_done_fn done;
    void *arg;
    struct waiter *next;
} waiter_t;

/* One tracked partition. */
typedef struct entry {
    partition_t *p;
    waiter_t *waiters;
    int dirty; /* has unflushed data (policy flushes) */
    int busy;  /* being flushed by the thread right now */
    struct entry *next;
} entry_t;

struct flusher {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived / stop */
    pthread_cond_t idle_cv; /* an entry stopped being busy */
    pthread_t thread;
    int stop;
    entry_t *entries;
    flusher_stats_t stats;
};

static entry_t *find(flusher_t *f, partition_t *p, int create)
{
    for (entry_t *e = f->entries; e; e = e->next)
        if (e->p == p) return e;
    if (!create) return NULL;
    entry_t *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->p = p;
    e->next = f->entries;
    f->entries = e;
    return e;
}

static void unlink_entry(flusher_t *f, entry_t *e)
{
    for (entry_t **pp = &f->entries; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            return;
        }
}

/* Waits of e satisfied by `durable` (or all of them, on error), detached
 * from e. [mu] */
static waiter_t *take_done(entry_t *e, int64_t durable, int all)
{
    waiter_t *done = NULL, **pp = &e->waiters;
    while (*pp) {
        waiter_t *w = *pp;
        if (all || w->offset < durable) {
            *pp = w->next;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    return done;
}

static void run_done(flusher_t *f, waiter_t *w, int code, int64_t durable)
{
    uint64_t n = 0;
    while (w) {
        waiter_t *next = w->next;
        w->done(w->arg, code, durable);
        free(w);
        w = next;
        n++;
    }
    pthread_mutex_lock(&f->mu);
    f->stats.waits_done += n;
    pthread_mutex_unlock(&f->mu);
}

/* Flushes e->p (not holding mu) and completes what it covered. */
static void flush_entry(flusher_t *f, entry_t *e)
{
    e->busy = 1;
    pthread_mutex_unlock(&f->mu);
    sl_err_t err;
    uint64_t t0 = sl_mono_ns();
    int rc = partition_flush(e->p, &err);
    uint64_t dt = sl_mono_ns() - t0;
    int64_t durable = partition_durable(e->p);
    pthread_mutex_lock(&f->mu);
    f->stats.flushes++;
    f->stats.flush_ns_sum += dt;
    waiter_t *done = take_done(e, durable, rc != SL_OK);
    if (rc != SL_OK || partition_log_end(e->p) == durable) e->dirty = 0;
    pthread_mutex_unlock(&f->mu);
    run_done(f, done, rc, durable);
    pthread_mutex_lock(&f->mu);
    /* Busy until the callbacks ran, so flusher_forget cannot free e under us. */
    e->busy = 0;
    pthread_cond_broadcast(&f->idle_cv);
}

static void *loop(void *arg)
{
    flusher_t *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        int64_t now = sl_wall_ms();
        entry_t *work = NULL;
        int any_dirty = 0;
        for (entry_t *e = f->entries; e; e = e->next) {
            if (e->busy) continue;
            if (e->waiters || (e->dirty && partition_flush_due(e->p, now))) {
                work = e;
                break;
            }
            any_dirty |= e->dirty;
        }
        if (work) {
            flush_entry(f, work);
            /* Drop entries with nothing left to do, so the list stays short. */
            if (!work->busy && !work->waiters && !work->dirty) {
                unlink_entry(f, work);
                free(work);
            }
            continue;
        }
        if (f->stop) break;
        if (any_dirty) {
            /* flush.ms is checked every 10 ms while some partition holds
             * unflushed data; idle otherwise. */
            struct timespec ts = sl_abstime(CLOCK_REALTIME, 10);
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        } else {
            pthread_cond_wait(&f->cv, &f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

flusher_t *flusher_new(sl_err_t *err)
{
    flusher_t *f = calloc(1, sizeof *f);
    if (!f) {
        sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_cond_init(&f->idle_cv, NULL);
    int e = pthread_create(&f->thread, NULL, loop, f);
    if (e != 0) {
        sl_err_set(err, SL_ERR_UNKNOWN, "pthread_create(flusher): %s", strerror(e));
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        pthread_cond_destroy(&f->idle_cv);
        free(f);
        return NULL;
    }
    return f;
}

void flusher_free(flusher_t *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    /* The loop only exits with no waiters left; free what remains. */
    entry_t *e = f->entries;
    while (e) {
        entry_t *next = e->next;
        run_done(f, take_done(e, 0, 1), SL_ERR_STORAGE, partition_durable(e->p));
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    pthread_cond_destroy(&f->idle_cv);
    free(f);
}

int flusher_wait(flusher_t *f, partition_t *p, int64_t offset, flusher_done_fn done, void *arg)
{
    int64_t durable = partition_durable(p);
    if (offset < durable) {
        done(arg, SL_OK, durable);
        return SL_OK;
    }
    waiter_t *w = malloc(sizeof *w);
    if (!w) return SL_ERR_NOMEM;
    w->offset = offset;
    w->done = done;
    w->arg = arg;
    pthread_mutex_lock(&f->mu);
    entry_t *e = find(f, p, 1);
    if (!e) {
        pthread_mutex_unlock(&f->mu);
        free(w);
        return SL_ERR_NOMEM;
    }
    w->next = e->waiters;
    e->waiters = w;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return SL_OK;
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, code;
} sync_wait_t;

static void sync_done(void *arg, int code, int64_t durable)
{
    (void)durable;
    sync_wait_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->done = 1;
    s->code = code;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int flusher_wait_sync(flusher_t *f, partition_t *p, int64_t offset, sl_err_t *err)
{
    sync_wait_t s = {.done = 0};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    int rc = flusher_wait(f, p, offset, sync_done, &s);
    if (rc == SL_OK) {
        pthread_mutex_lock(&s.mu);
        while (!s.done) pthread_cond_wait(&s.cv, &s.mu);
        pthread_mutex_unlock(&s.mu);
        rc = s.code;
    }
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    if (rc != SL_OK) sl_err_set(err, rc, "flush failed: %s", sl_code_name(rc));
    return rc;
}

void flusher_mark_dirty(void *arg, partition_t *p)
{
    flusher_t *f = arg;
    pthread_mutex_lock(&f->mu);
    entry_t *e = find(f, p, 1);
    if (e) { /* on ENOMEM the partition is flushed at close or by acks=all */
        e->dirty = 1;
        pthread_cond_signal(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}

void flusher_forget(flusher_t *f, partition_t *p)
{
    pthread_mutex_lock(&f->mu);
    entry_t *e;
    while ((e = find(f, p, 0)) && e->busy) pthread_cond_wait(&f->idle_cv, &f->mu);
    if (e) unlink_entry(f, e);
    pthread_mutex_unlock(&f->mu);
    if (!e) return;
    sl_err_t err;
    int rc = partition_flush(p, &err);
    int64_t durable = partition_durable(p);
    run_done(f, take_done(e, durable, 1), rc, durable);
    free(e);
}

void flusher_get_stats(flusher_t *f, flusher_stats_t *st)
{
    pthread_mutex_lock(&f->mu);
    *st = f->stats;
    pthread_mutex_unlock(&f->mu);
}
