/* producers.c — the idempotent-producer table of one partition.
 *
 * Invariants (the partition mutex guards all of them):
 *  P1. A producer's ring holds its newest batches of its current epoch,
 *      oldest first, at most PRODUCERS_BATCHES, each with the offsets the
 *      log gave it; n == 0 only between creation and the first record.
 *  P2. Every state is in exactly one hash chain and in the LRU list, and is
 *      counted once in t->n and once in the shared bound.
 *  P3. evict_hi ≥ the newest last offset of every producer evicted since the
 *      last clear: a producer absent from a loaded table has no batch in the
 *      log above max(evict_hi, the rebuild's scan start).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "producers.h"

typedef struct pbatch {
    int32_t first_seq, last_seq;
    int64_t base_off;
    int32_t last_delta; /* last offset - base offset */
} pbatch_t;

struct producer {
    producer_t *hnext;         /* hash chain */
    producer_t *older, *newer; /* LRU list */
    int64_t pid;
    int16_t epoch;
    int head, n; /* ring: oldest at b[head], newest at b[(head + n - 1) % 5] */
    pbatch_t b[PRODUCERS_BATCHES];
};

struct producers {
    producers_bound_t *bound;
    producer_t **bucket;
    size_t nbuckets; /* a power of two */
    int64_t n;
    producer_t *oldest, *newest;
    int loaded;
    int64_t evict_hi;
};

static producers_bound_t default_bound = {0, PRODUCERS_MAX_STATES};

void producers_bound_init(producers_bound_t *b, int64_t max)
{
    atomic_store(&b->count, 0);
    b->max = max > 0 ? max : PRODUCERS_MAX_STATES;
}

producers_bound_t *producers_bound_default(void)
{
    return &default_bound;
}

int32_t producers_seq_add(int32_t seq, int32_t n)
{
    return (int32_t)(((int64_t)seq + n) % ((int64_t)INT32_MAX + 1));
}

producers_t *producers_new(producers_bound_t *bound)
{
    producers_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->bound = bound;
    t->evict_hi = -1;
    return t;
}

static size_t slot(const producers_t *t, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull; /* ids are often consecutive */
    return (size_t)(h >> 32) & (t->nbuckets - 1);
}

static void lru_unlink(producers_t *t, producer_t *s)
{
    if (s->older)
        s->older->newer = s->newer;
    else
        t->oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        t->newest = s->older;
    s->older = s->newer = NULL;
}

static void lru_push(producers_t *t, producer_t *s)
{
    s->older = t->newest;
    s->newer = NULL;
    if (t->newest)
        t->newest->newer = s;
    else
        t->oldest = s;
    t->newest = s;
}

static int64_t newest_last(const producer_t *s)
{
    if (s->n == 0) return -1;
    const pbatch_t *b = &s->b[(s->head + s->n - 1) % PRODUCERS_BATCHES];
    return b->base_off + b->last_delta;
}

static void remove_state(producers_t *t, producer_t *s)
{
    lru_unlink(t, s);
    for (producer_t **pp = &t->bucket[slot(t, s->pid)]; *pp; pp = &(*pp)->hnext)
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    t->n--;
    atomic_fetch_sub(&t->bound->count, 1);
    free(s);
}

void producers_clear(producers_t *t)
{
    if (!t) return;
    while (t->oldest) remove_state(t, t->oldest);
    free(t->bucket);
    t->bucket = NULL;
    t->nbuckets = 0;
    t->loaded = 0;
    t->evict_hi = -1;
}

void producers_free(producers_t *t)
{
    if (!t) return;
    producers_clear(t);
    free(t);
}

int producers_loaded(const producers_t *t)
{
    return t->loaded;
}

void producers_set_loaded(producers_t *t)
{
    t->loaded = 1;
}

int64_t producers_evicted_hi(const producers_t *t)
{
    return t->evict_hi;
}

int64_t producers_count(const producers_t *t)
{
    return t->n;
}

producer_t *producers_get(producers_t *t, int64_t pid)
{
    if (t->nbuckets == 0) return NULL;
    for (producer_t *s = t->bucket[slot(t, pid)]; s; s = s->hnext)
        if (s->pid == pid) {
            lru_unlink(t, s);
            lru_push(t, s);
            return s;
        }
    return NULL;
}

/* Keeps chains short: doubles the buckets when states outnumber them. */
static int grow(producers_t *t)
{
    if ((size_t)t->n < t->nbuckets) return 0;
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 16;
    producer_t **nbk = calloc(nb, sizeof *nbk);
    if (!nbk) return t->nbuckets ? 0 : -1; /* full chains are slow, not wrong */
    producer_t **old = t->bucket;
    size_t on = t->nbuckets;
    t->bucket = nbk;
    t->nbuckets = nb;
    for (size_t i = 0; i < on; i++)
        for (producer_t *s = old[i], *next; s; s = next) {
            next = s->hnext;
            size_t h = slot(t, s->pid);
            s->hnext = t->bucket[h];
            t->bucket[h] = s;
        }
    free(old);
    return 0;
}

static producer_t *add(producers_t *t, int64_t pid)
{
    /* The bound is store-wide but eviction is local: the partition being
     * appended to pays, so no lock beyond its own is ever needed. */
    if (atomic_load(&t->bound->count) >= t->bound->max && t->oldest) {
        int64_t last = newest_last(t->oldest);
        if (last > t->evict_hi) t->evict_hi = last;
        remove_state(t, t->oldest);
    }
    if (grow(t) < 0) return NULL;
    producer_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pid = pid;
    size_t h = slot(t, pid);
    s->hnext = t->bucket[h];
    t->bucket[h] = s;
    lru_push(t, s);
    t->n++;
    atomic_fetch_add(&t->bound->count, 1);
    return s;
}

int producers_check(const producer_t *s, const sl_batch_hdr_t *h, int64_t *dup_base,
                    int64_t *dup_last, sl_err_t *err)
{
    if (!s || s->n == 0) return SL_OK;
    if (h->producer_epoch < s->epoch)
        return sl_err_set(err, SL_ERR_INVALID_PRODUCER_EPOCH,
                          "producer %" PRId64 ": epoch %d is older than %d", h->producer_id,
                          h->producer_epoch, s->epoch);
    if (h->producer_epoch > s->epoch) {
        if (h->base_sequence != 0)
            return sl_err_set(err, SL_ERR_OUT_OF_ORDER_SEQUENCE,
                              "producer %" PRId64 ": new epoch %d must start at sequence 0, not %d",
                              h->producer_id, h->producer_epoch, h->base_sequence);
        return SL_OK;
    }
    int32_t last_seq = producers_seq_add(h->base_sequence, h->last_offset_delta);
    for (int i = 0; i < s->n; i++) {
        const pbatch_t *b = &s->b[(s->head + i) % PRODUCERS_BATCHES];
        if (b->first_seq == h->base_sequence && b->last_seq == last_seq) {
            *dup_base = b->base_off;
            *dup_last = b->base_off + b->last_delta;
            return SL_ERR_EXISTS;
        }
    }
    int32_t last = s->b[(s->head + s->n - 1) % PRODUCERS_BATCHES].last_seq;
    if (h->base_sequence != producers_seq_add(last, 1))
        return sl_err_set(err, SL_ERR_OUT_OF_ORDER_SEQUENCE,
                          "producer %" PRId64 ": sequence %d after %d (epoch %d)", h->producer_id,
                          h->base_sequence, last, h->producer_epoch);
    return SL_OK;
}

int producers_record(producers_t *t, const sl_batch_hdr_t *h, int64_t base_off)
{
    producer_t *s = producers_get(t, h->producer_id);
    if (!s && !(s = add(t, h->producer_id))) return SL_ERR_NOMEM;
    if (s->n > 0 && h->producer_epoch < s->epoch) return SL_OK;
    if (s->n == 0 || h->producer_epoch != s->epoch) {
        s->epoch = h->producer_epoch;
        s->n = s->head = 0;
    }
    pbatch_t nb = {h->base_sequence, producers_seq_add(h->base_sequence, h->last_offset_delta),
                   base_off, h->last_offset_delta};
    if (s->n < PRODUCERS_BATCHES) {
        s->b[(s->head + s->n) % PRODUCERS_BATCHES] = nb;
        s->n++;
    } else {
        s->b[s->head] = nb;
        s->head = (s->head + 1) % PRODUCERS_BATCHES;
    }
    return SL_OK;
}

void producers_trim(producers_t *t, int64_t log_start)
{
    for (producer_t *s = t->oldest, *next; s; s = next) {
        next = s->newer;
        if (newest_last(s) < log_start) remove_state(t, s);
    }
}
