/* watch.c — the watch registry (watch.h): per worker, a hash of partition
 * → list of watches, and the cross-worker wake-up after an append.
 *
 * Removal during a walk: watch_notify keeps its place in the entry
 * (`cursor`, the next watch to visit). watch_del of that very watch moves
 * the cursor on, so a fn may delete itself, its siblings (a multi-partition
 * fetch deletes all its watches when answered) or any other watch. An entry
 * emptied during a walk is freed when the walk ends.
 */
#include "watch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "broker.h"

typedef struct watch_entry {
    struct watch_entry *hnext;
    partition_t *p;
    watch_t *head, *tail;
    watch_t *cursor; /* during a walk: the next watch to visit */
    int walking;
} watch_entry_t;

static uint64_t worker_bit(const worker_t *w)
{
    return 1ull << (w->id & 63);
}

static size_t bucket_of(const watch_reg_t *reg, const partition_t *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (reg->nbuckets - 1);
}

static watch_entry_t *find(const watch_reg_t *reg, const partition_t *p)
{
    if (!reg->nbuckets) return NULL;
    for (watch_entry_t *e = reg->buckets[bucket_of(reg, p)]; e; e = e->hnext)
        if (e->p == p) return e;
    return NULL;
}

/* Doubles the table when it is fuller than one entry per bucket. */
static int grow(watch_reg_t *reg)
{
    size_t n = reg->nbuckets ? reg->nbuckets * 2 : 64;
    watch_entry_t **b = calloc(n, sizeof *b);
    if (!b) return reg->nbuckets ? 0 : -ENOMEM; /* a full table still works */
    watch_reg_t nr = {b, n, reg->nentries};
    for (size_t i = 0; i < reg->nbuckets; i++) {
        watch_entry_t *e = reg->buckets[i];
        while (e) {
            watch_entry_t *next = e->hnext;
            size_t k = bucket_of(&nr, e->p);
            e->hnext = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(reg->buckets);
    *reg = nr;
    return 0;
}

static void entry_free(worker_t *w, watch_entry_t *e)
{
    watch_reg_t *reg = &w->watches;
    for (watch_entry_t **pp = &reg->buckets[bucket_of(reg, e->p)]; *pp; pp = &(*pp)->hnext)
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    reg->nentries--;
    atomic_fetch_and(partition_user_word(e->p), ~worker_bit(w));
    free(e);
}

int watch_add(worker_t *w, watch_t *x, partition_t *p, watch_fn fn, void *owner)
{
    watch_reg_t *reg = &w->watches;
    watch_entry_t *e = find(reg, p);
    if (!e) {
        if (reg->nentries >= reg->nbuckets && grow(reg) < 0) return -ENOMEM;
        if (!(e = calloc(1, sizeof *e))) return -ENOMEM;
        e->p = p;
        size_t k = bucket_of(reg, p);
        e->hnext = reg->buckets[k];
        reg->buckets[k] = e;
        reg->nentries++;
        /* seq_cst: pairs with the appender's load in watch_partition_appended */
        atomic_fetch_or(partition_user_word(p), worker_bit(w));
    }
    x->e = e;
    x->fn = fn;
    x->owner = owner;
    x->next = NULL;
    x->prev = e->tail;
    if (e->tail)
        e->tail->next = x;
    else
        e->head = x;
    e->tail = x;
    return 0;
}

void watch_del(worker_t *w, watch_t *x)
{
    watch_entry_t *e = x->e;
    if (!e) return;
    if (e->cursor == x) e->cursor = x->next;
    if (x->prev)
        x->prev->next = x->next;
    else
        e->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        e->tail = x->prev;
    x->next = x->prev = NULL;
    x->e = NULL;
    if (!e->head && !e->walking) entry_free(w, e);
}

void watch_notify(worker_t *w, partition_t *p)
{
    watch_entry_t *e = find(&w->watches, p);
    if (!e || e->walking) return; /* no nested walks: the outer one sees the news */
    e->walking = 1;
    for (watch_t *x = e->head; x; x = e->cursor) {
        e->cursor = x->next;
        x->fn(x);
    }
    e->cursor = NULL;
    e->walking = 0;
    if (!e->head) entry_free(w, e);
}

void watch_notify_all(worker_t *w)
{
    watch_reg_t *reg = &w->watches;
    size_t n = 0;
    partition_t **ps = reg->nentries ? malloc(reg->nentries * sizeof *ps) : NULL;
    if (!ps) return; /* the waiters' own timers end them */
    for (size_t i = 0; i < reg->nbuckets; i++)
        for (watch_entry_t *e = reg->buckets[i]; e; e = e->hnext) ps[n++] = e->p;
    /* Entries may go away as waiters answer: look each one up again (only
     * the pointer is compared, never followed, for a partition no longer
     * watched). */
    for (size_t i = 0; i < n; i++) watch_notify(w, ps[i]);
    free(ps);
}

void watch_reg_free(watch_reg_t *reg)
{
    for (size_t i = 0; i < reg->nbuckets; i++) {
        watch_entry_t *e = reg->buckets[i];
        while (e) {
            watch_entry_t *next = e->hnext;
            free(e);
            e = next;
        }
    }
    free(reg->buckets);
    reg->buckets = NULL;
    reg->nbuckets = reg->nentries = 0;
}

typedef struct appended {
    worker_t *w;
    partition_t *p;
} appended_t;

static void appended_task(void *arg)
{
    appended_t *a = arg;
    watch_notify(a->w, a->p);
    partition_unref(a->p);
    free(a);
}

void watch_partition_appended(void *arg, partition_t *p)
{
    broker_t *b = arg;
    uint64_t mask = atomic_load(partition_user_word(p)); /* seq_cst: pairs with watch_add */
    while (mask) {
        int id = __builtin_ctzll(mask);
        mask &= mask - 1;
        if (id >= b->nworkers) continue;
        appended_t *a = malloc(sizeof *a);
        if (!a) continue; /* the waiter's timer or the next append still wakes it */
        a->w = &b->workers[id];
        a->p = p;
        partition_ref(p);
        if (reactor_post(a->w->r, appended_task, a) < 0) {
            partition_unref(p);
            free(a);
        }
    }
}
