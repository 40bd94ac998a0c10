/* h_produce.c — Sluice's Produce: one partition, one or more batches in the
 * frame's raw payload. Decodes into the produce service (svc_produce.h),
 * which holds every rule, and encodes its answer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "dispatch.h"
#include "svc_produce.h"

typedef struct hprod {
    produce_req_t rq;
    produce_part_t part;
    slot_t *slot;
    uint64_t corr;
} hprod_t;

static void done(produce_req_t *rq)
{
    hprod_t *hp = rq->owner;
    conn_t *c = rq->c;
    produce_part_t *pp = &hp->part;
    met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, pp->code);
    if (pp->code != SL_OK) {
        conn_respond(c, hp->slot, SLUICE__API_KEY__PRODUCE, hp->corr, pp->code, rq->err.msg, NULL,
                     NULL);
        return;
    }
    Sluice__ProduceResponse r = SLUICE__PRODUCE_RESPONSE__INIT;
    r.base_offset = pp->base_offset;
    r.last_offset = pp->last_offset;
    r.log_start_offset = pp->log_start;
    conn_respond(c, hp->slot, SLUICE__API_KEY__PRODUCE, hp->corr, SL_OK, NULL, &r.base, NULL);
}

static void release_heap(produce_req_t *rq)
{
    free(rq->owner);
}

static void release_stack(produce_req_t *rq)
{
    (void)rq;
}

void h_produce(conn_t *c, const sl_request_t *req, uint64_t t0_us)
{
    sl_err_t err;
    Sluice__ProduceRequest *m = (Sluice__ProduceRequest *)sl_body_decode(
        &sluice__produce_request__descriptor, req->body, req->body_len, c->arena, &err);
    int acks = m ? m->acks : 1;
    slot_t *slot = NULL;
    if (acks != 0 && !(slot = conn_slot(c))) {
        conn_close(c, "out of memory");
        return;
    }
    uint64_t corr = req->hdr->correlation_id;
    if (!m) {
        met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, err.code);
        conn_respond(c, slot, SLUICE__API_KEY__PRODUCE, corr, err.code, err.msg, NULL, NULL);
        return;
    }
    /* Only acks=all outlives this call: the others answer (and release)
     * inside produce_start, so they need no allocation. */
    hprod_t local, *hp = &local;
    if (acks == -1 && !(hp = malloc(sizeof *hp))) {
        conn_respond(c, slot, SLUICE__API_KEY__PRODUCE, corr, SL_ERR_NOMEM, "out of memory", NULL,
                     NULL);
        return;
    }
    hp->slot = slot;
    hp->corr = corr;
    produce_req_t *rq = &hp->rq;
    rq->c = c;
    rq->acks = acks;
    rq->one_batch = 0;
    rq->timeout_ms = m->timeout_ms;
    rq->t0_us = t0_us;
    rq->parts = &hp->part;
    rq->nparts = 1;
    rq->done = done;
    rq->release = hp == &local ? release_stack : release_heap;
    rq->owner = hp;
    hp->part.topic = m->topic; /* arena memory: read only during produce_start */
    hp->part.partition = (int32_t)m->partition;
    hp->part.records = (uint8_t *)req->payload;
    hp->part.len = req->payload_len;
    sl_err_t first;
    int rc = produce_start(rq, &first); /* hp may be freed from here on */
    if (acks == 0) {
        met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, rc);
        if (rc != SL_OK) {
            char why[300];
            snprintf(why, sizeof why, "acks=0 produce failed: %s: %s", sl_code_name(rc), first.msg);
            conn_close(c, why);
        }
    }
}
