/* h_fetch.c — Sluice's Fetch: one partition, answered with a FetchResponse
 * whose payload is a file range sent with sendfile. Decodes into the fetch
 * service (svc_fetch.h: the read plan and the long poll) and encodes its
 * answer. */
#include <stdlib.h>

#include "dispatch.h"
#include "svc_fetch.h"
#include "svc_topics.h"

typedef struct hfetch {
    fetch_req_t rq;
    fetch_part_t part;
    slot_t *slot;
    uint64_t corr;
} hfetch_t;

static void done(fetch_req_t *rq)
{
    hfetch_t *hf = rq->owner;
    conn_t *c = rq->c;
    fetch_part_t *fp = &hf->part;
    met_request(&c->w->m, SLUICE__API_KEY__FETCH, fp->rcode);
    if (fp->rcode != SL_OK) {
        seg_range_release(&fp->range);
        conn_respond(c, hf->slot, SLUICE__API_KEY__FETCH, hf->corr, fp->rcode, rq->err.msg, NULL,
                     NULL);
        return;
    }
    Sluice__FetchResponse r = SLUICE__FETCH_RESPONSE__INIT;
    r.high_watermark = partition_log_end(fp->p);
    r.log_start_offset = partition_log_start(fp->p);
    r.first_offset = fp->range.len ? fp->range.first_offset : fp->offset;
    conn_respond(c, hf->slot, SLUICE__API_KEY__FETCH, hf->corr, SL_OK, NULL, &r.base, &fp->range);
}

static void release_heap(fetch_req_t *rq)
{
    free(rq->owner);
}

static void release_stack(fetch_req_t *rq)
{
    (void)rq;
}

void h_fetch(conn_t *c, const sl_request_t *req, uint64_t t0_us)
{
    sl_err_t err;
    slot_t *slot = conn_slot(c);
    if (!slot) {
        conn_close(c, "out of memory");
        return;
    }
    uint64_t corr = req->hdr->correlation_id;
    Sluice__FetchRequest *m = (Sluice__FetchRequest *)sl_body_decode(
        &sluice__fetch_request__descriptor, req->body, req->body_len, c->arena, &err);
    partition_t *p = NULL;
    int rc = m ? topics_partition(c->w->b, m->topic, (int32_t)m->partition, 0, &p, &err) : err.code;
    if (rc != SL_OK) {
        met_request(&c->w->m, SLUICE__API_KEY__FETCH, rc);
        conn_respond(c, slot, SLUICE__API_KEY__FETCH, corr, rc, err.msg, NULL, NULL);
        return;
    }
    /* On the stack while it can be answered at once; to the heap only to
     * wait. */
    hfetch_t local;
    local.slot = slot;
    local.corr = corr;
    fetch_req_t *rq = &local.rq;
    rq->c = c;
    rq->t0_us = t0_us;
    rq->parts = &local.part;
    rq->nparts = 1;
    rq->min_bytes = m->min_bytes;
    rq->max_bytes = m->max_bytes;
    rq->max_wait_ms = m->max_wait_ms;
    rq->done = done;
    rq->release = release_stack;
    rq->owner = &local;
    local.part.p = p; /* the service drops our reference */
    local.part.offset = m->offset;
    local.part.max_bytes = m->max_bytes;
    if (fetch_try(rq)) return;
    hfetch_t *hf = malloc(sizeof *hf);
    if (!hf) {
        rq->max_wait_ms = 0; /* nowhere to wait: answer with what there is */
        fetch_try(rq);
        return;
    }
    *hf = local;
    hf->rq.parts = &hf->part;
    hf->rq.owner = hf;
    hf->rq.release = release_heap;
    fetch_wait(&hf->rq);
}
