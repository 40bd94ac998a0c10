/* svc_fetch.c — the fetch service (svc_fetch.h). */
#include "svc_fetch.h"

#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"

/* Reads every part. Returns 1 (ranges set) when the request should be
 * answered now: min_bytes reached, an error, or `force`; otherwise releases
 * what it read and returns 0. */
static int plan(fetch_req_t *rq, int force)
{
    int64_t total = 0, budget = rq->max_bytes;
    int errors = 0, first_data = 1;
    rq->err.code = SL_OK;
    rq->err.msg[0] = 0;
    for (size_t i = 0; i < rq->nparts; i++) {
        fetch_part_t *fp = &rq->parts[i];
        fp->range = (seg_range_t){.fd = -1};
        fp->high_watermark = fp->log_start = -1;
        sl_err_t e;
        int code = fp->p ? SL_OK : fp->code;
        if (!fp->p) sl_err_set(&e, code, "%s", sl_code_name(code));
        if (fp->p) {
            int64_t hwm = partition_log_end(fp->p), start = partition_log_start(fp->p);
            int64_t left = budget - total;
            int64_t lim = fp->max_bytes < left ? fp->max_bytes : left;
            if (fp->offset < start || fp->offset > hwm) {
                code =
                    sl_err_set(&e, SL_ERR_OFFSET_OUT_OF_RANGE,
                               "offset %" PRId64 " is outside the log [%" PRId64 ", %" PRId64 "]",
                               fp->offset, start, hwm);
            } else if (fp->offset < hwm && (lim > 0 || first_data)) {
                code =
                    partition_read(fp->p, fp->offset, lim > 0 ? (uint64_t)lim : 1, &fp->range, &e);
                if (code == SL_OK && fp->range.len > 0 && !first_data &&
                    fp->range.len > (uint64_t)lim)
                    fp->range.len = (uint64_t)lim;
                if (code == SL_OK && fp->range.len > 0) first_data = 0;
                if (code == SL_ERR_OFFSET_OUT_OF_RANGE) /* retention moved the start */
                    start = partition_log_start(fp->p);
            }
            fp->high_watermark = hwm;
            fp->log_start = start;
        }
        fp->rcode = code;
        if (code != SL_OK) {
            if (!errors) rq->err = e, rq->err.code = code;
            errors = 1;
        }
        total += (int64_t)fp->range.len;
    }
    rq->total_bytes = total;
    if (!force && !errors && total < rq->min_bytes) {
        for (size_t i = 0; i < rq->nparts; i++) seg_range_release(&rq->parts[i].range);
        return 0;
    }
    return 1;
}

static void finish(fetch_req_t *rq)
{
    conn_t *c = rq->c;
    worker_t *w = c->w;
    int waited = rq->waiting;
    if (waited) {
        reactor_timer_stop(w->r, &rq->timer);
        for (size_t i = 0; i < rq->nparts; i++) watch_del(w, &rq->parts[i].watch);
    }
    for (size_t i = 0; i < rq->nparts; i++)
        if (rq->parts[i].p) partition_unref(rq->parts[i].p);
    rq->release(rq);
    if (waited) conn_unref(c);
}

static void answer(fetch_req_t *rq)
{
    met_observe(&rq->c->w->m.fetch_us, sl_mono_us() - rq->t0_us);
    rq->done(rq);
}

static void expire(void *arg)
{
    fetch_req_t *rq = arg;
    if (!rq->c->closed) {
        plan(rq, 1);
        answer(rq);
    }
    finish(rq);
}

static void grew(watch_t *x)
{
    fetch_part_t *fp = x->owner;
    fetch_req_t *rq = fp->rq;
    if (rq->c->closed || rq->c->w->draining) {
        expire(rq);
        return;
    }
    if (plan(rq, 0)) {
        answer(rq);
        finish(rq);
    }
}

static int64_t wait_ms_of(const fetch_req_t *rq)
{
    int64_t cap = rq->c->w->b->conf.fetch_max_wait_cap_ms;
    int64_t ms = rq->max_wait_ms > 0 ? rq->max_wait_ms : 0;
    return ms < cap ? ms : cap;
}

int fetch_try(fetch_req_t *rq)
{
    worker_t *w = rq->c->w;
    int force = wait_ms_of(rq) == 0 || rq->min_bytes <= 0 || w->draining;
    rq->waiting = 0;
    for (size_t i = 0; i < rq->nparts; i++) {
        rq->parts[i].rq = rq;
        rq->parts[i].watch.e = NULL;
    }
    if (!plan(rq, force)) return 0;
    answer(rq);
    finish(rq);
    return 1;
}

void fetch_wait(fetch_req_t *rq)
{
    conn_t *c = rq->c;
    worker_t *w = c->w;
    /* The request may have moved since fetch_try: point the parts back. */
    for (size_t i = 0; i < rq->nparts; i++) {
        rq->parts[i].rq = rq;
        rq->parts[i].watch.e = NULL;
    }
    /* Publish interest, then look again: an append between the first look
     * and the watch would otherwise go unnoticed until max_wait. */
    rq->waiting = 1;
    conn_ref(c);
    reactor_timer_init(&rq->timer, expire, rq);
    reactor_timer_start(w->r, &rq->timer, (uint64_t)wait_ms_of(rq));
    for (size_t i = 0; i < rq->nparts; i++) {
        fetch_part_t *fp = &rq->parts[i];
        if (fp->p && watch_add(w, &fp->watch, fp->p, grew, fp) < 0) {
            expire(rq); /* cannot watch: answer with what there is */
            return;
        }
    }
    if (plan(rq, 0)) {
        answer(rq);
        finish(rq);
    }
}

void fetch_start(fetch_req_t *rq)
{
    if (!fetch_try(rq)) fetch_wait(rq);
}
