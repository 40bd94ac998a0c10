/* h_fetch.c — Fetch: offset → pinned file range → response payload sent
 * with sendfile. Long poll: with fewer than min_bytes available the request
 * waits (up to max_wait_ms) on this worker; an append on any worker posts a
 * check here through the partition's watcher bitmask (one bit per worker,
 * set before the last availability check so no append is missed). Push
 * subscriptions (h_subscribe.c) share the bitmask and appended_task.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kdispatch.h"
#include "log.h"
#include "subscribe.h"

struct fetch_wait {
    fetch_wait_t *next, *prev;
    worker_t *w;
    conn_t *c;
    slot_t *slot;
    partition_t *p;
    int64_t offset;
    uint32_t max_bytes, min_bytes;
    uint64_t corr;
    uint64_t t0_us;
    reactor_timer_t timer;
};

/* Reads and answers if min_bytes are there (or `force`); returns 1 when
 * answered. */
static int try_answer(conn_t *c, slot_t *slot, partition_t *p, int64_t offset, uint32_t max_bytes,
                      uint32_t min_bytes, uint64_t corr, uint64_t t0_us, int force)
{
    seg_range_t range;
    sl_err_t err;
    int rc = partition_read(p, offset, max_bytes ? max_bytes : 1, &range, &err);
    if (rc != SL_OK) {
        met_request(&c->w->m, SLUICE__API_KEY__FETCH, rc);
        conn_respond(c, slot, SLUICE__API_KEY__FETCH, corr, rc, err.msg, NULL, NULL);
        return 1;
    }
    if (!force && range.len < (min_bytes ? min_bytes : 1) && min_bytes > 0) {
        seg_range_release(&range);
        return 0;
    }
    Sluice__FetchResponse r = SLUICE__FETCH_RESPONSE__INIT;
    r.high_watermark = partition_log_end(p);
    r.log_start_offset = partition_log_start(p);
    r.first_offset = range.len ? range.first_offset : offset;
    met_request(&c->w->m, SLUICE__API_KEY__FETCH, SL_OK);
    met_observe(&c->w->m.fetch_us, now_us() - t0_us);
    conn_respond(c, slot, SLUICE__API_KEY__FETCH, corr, SL_OK, NULL, &r.base, &range);
    return 1;
}

static uint64_t worker_bit(const worker_t *w)
{
    return 1ull << (w->id & 63);
}

static void remove_wait(fetch_wait_t *fw)
{
    worker_t *w = fw->w;
    reactor_timer_stop(w->r, &fw->timer);
    if (fw->prev)
        fw->prev->next = fw->next;
    else
        w->waits = fw->next;
    if (fw->next) fw->next->prev = fw->prev;
    /* The bit stays while another wait or a subscription watches p. */
    if (!fetch_waits_watching(w, fw->p) && !subscribe_watching(w, fw->p) &&
        !kfetch_waits_watching(w, fw->p))
        atomic_fetch_and(partition_user_word(fw->p), ~worker_bit(w));
    partition_unref(fw->p);
    conn_unref(fw->c);
    free(fw);
}

static void expire(void *arg)
{
    fetch_wait_t *fw = arg;
    try_answer(fw->c, fw->slot, fw->p, fw->offset, fw->max_bytes, fw->min_bytes, fw->corr,
               fw->t0_us, 1);
    remove_wait(fw);
}

void fetch_waits_check(worker_t *w, partition_t *p)
{
    fetch_wait_t *fw = w->waits;
    while (fw) {
        fetch_wait_t *next = fw->next;
        if (fw->p == p &&
            (fw->c->closed || try_answer(fw->c, fw->slot, fw->p, fw->offset, fw->max_bytes,
                                         fw->min_bytes, fw->corr, fw->t0_us, 0)))
            remove_wait(fw);
        fw = next;
    }
}

int fetch_waits_watching(const worker_t *w, const partition_t *p)
{
    for (const fetch_wait_t *o = w->waits; o; o = o->next)
        if (o->p == p) return 1;
    return 0;
}

void fetch_waits_expire_all(worker_t *w)
{
    while (w->waits) expire(w->waits);
}

typedef struct appended {
    worker_t *w;
    partition_t *p;
} appended_t;

static void appended_task(void *arg)
{
    appended_t *a = arg;
    fetch_waits_check(a->w, a->p);
    kfetch_waits_check(a->w, a->p);
    subscribe_check(a->w, a->p);
    partition_unref(a->p);
    free(a);
}

void broker_partition_appended(void *arg, partition_t *p)
{
    broker_t *b = arg;
    uint64_t mask = atomic_load(partition_user_word(p)) /* seq_cst: pairs with the fetch side */;
    while (mask) {
        int id = __builtin_ctzll(mask);
        mask &= mask - 1;
        if (id >= b->nworkers) continue;
        appended_t *a = malloc(sizeof *a);
        if (!a) continue; /* the wait still ends at max_wait_ms */
        a->w = &b->workers[id];
        a->p = p;
        partition_ref(p);
        if (reactor_post(a->w->r, appended_task, a) < 0) {
            partition_unref(p);
            free(a);
        }
    }
}

void h_fetch(conn_t *c, const sl_request_t *req, uint64_t t0_us)
{
    sl_err_t err;
    uint64_t corr = req->hdr->correlation_id;
    slot_t *slot = conn_slot(c);
    if (!slot) {
        conn_close(c, "out of memory");
        return;
    }
    Sluice__FetchRequest *m = (Sluice__FetchRequest *)sl_body_decode(
        &sluice__fetch_request__descriptor, req->body, req->body_len, c->arena, &err);
    partition_t *p = NULL;
    int rc = m ? dispatch_partition(c, m->topic, m->partition, 0, &p, &err) : err.code;
    if (rc != SL_OK) {
        met_request(&c->w->m, SLUICE__API_KEY__FETCH, rc);
        conn_respond(c, slot, SLUICE__API_KEY__FETCH, corr, rc, err.msg, NULL, NULL);
        return;
    }
    uint32_t wait_ms = m->max_wait_ms;
    if (wait_ms > (uint64_t)c->w->b->conf.fetch_max_wait_cap_ms)
        wait_ms = (uint32_t)c->w->b->conf.fetch_max_wait_cap_ms;
    int force = wait_ms == 0 || m->min_bytes == 0 || c->w->draining;
    if (try_answer(c, slot, p, m->offset, m->max_bytes, m->min_bytes, corr, t0_us, force)) {
        partition_unref(p);
        return;
    }
    fetch_wait_t *fw = calloc(1, sizeof *fw);
    if (!fw) {
        try_answer(c, slot, p, m->offset, m->max_bytes, m->min_bytes, corr, t0_us, 1);
        partition_unref(p);
        return;
    }
    worker_t *w = c->w;
    fw->w = w;
    fw->c = c;
    conn_ref(c);
    fw->slot = slot;
    fw->p = p;
    fw->offset = m->offset;
    fw->max_bytes = m->max_bytes;
    fw->min_bytes = m->min_bytes;
    fw->corr = corr;
    fw->t0_us = t0_us;
    fw->next = w->waits;
    if (w->waits) w->waits->prev = fw;
    w->waits = fw;
    reactor_timer_init(&fw->timer, expire, fw);
    reactor_timer_start(w->r, &fw->timer, wait_ms);
    /* Publish interest, then look again: an append between the first check
     * and the bit would otherwise go unnoticed until max_wait. */
    atomic_fetch_or(partition_user_word(p), worker_bit(w));
    if (try_answer(c, slot, p, m->offset, m->max_bytes, m->min_bytes, corr, t0_us, 0))
        remove_wait(fw);
}
