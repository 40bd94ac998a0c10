/* k_produce.c — Kafka's Produce (v0..v7): decodes into the produce service
 * (svc_produce.h), which holds every rule (validation, the idempotent
 * producer's checks, acks), and encodes its answer. Kafka's own framing
 * rule comes along as one_batch: each partition's `records` must be
 * exactly one RecordBatch v2; older magics get
 * UNSUPPORTED_FOR_MESSAGE_FORMAT, since Sluice stores v2 only and does not
 * convert. InitProducerId (k_meta.c) hands out the producer ids. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kdispatch.h"
#include "svc_produce.h"

typedef struct ktopic {
    const char *name; /* owned (strdup) only by a heap request */
    int32_t nparts;
} ktopic_t;

typedef struct kprod {
    produce_req_t rq;
    slot_t *s;
    int ver;
    int32_t corr;
    ktopic_t *topics;
    int32_t ntopics;
} kprod_t;

static void release_heap(produce_req_t *rq)
{
    kprod_t *kp = rq->owner;
    for (int32_t i = 0; i < kp->ntopics; i++) free((char *)kp->topics[i].name);
    free(kp->topics);
    free(rq->parts);
    free(kp);
}

static void release_arena(produce_req_t *rq)
{
    (void)rq; /* the worker's decode arena, reset by the next request */
}

static void done(produce_req_t *rq)
{
    kprod_t *kp = rq->owner;
    kf_writer_t w;
    kw_init(&w, kp->corr);
    kw_i32(&w, kp->ntopics);
    produce_part_t *pp = rq->parts;
    for (int32_t i = 0; i < kp->ntopics; i++) {
        kw_str(&w, kp->topics[i].name);
        kw_i32(&w, kp->topics[i].nparts);
        for (int32_t j = 0; j < kp->topics[i].nparts; j++, pp++) {
            kw_i32(&w, pp->partition);
            kw_i16(&w, kafka_code(pp->code));
            kw_i64(&w, pp->code == SL_OK ? pp->base_offset : -1);
            if (kp->ver >= 2) kw_i64(&w, -1); /* log_append_time: CreateTime topics */
            if (kp->ver >= 5) kw_i64(&w, pp->code == SL_OK ? pp->log_start : -1);
        }
    }
    if (kp->ver >= 1) kw_i32(&w, 0);
    kafka_send(rq->c, kp->s, &w, KF_PRODUCE, rq->code);
}

/* Only acks=all outlives the call (it waits for the flusher): its request
 * is copied to the heap. The others answer inside produce_start and live
 * in the worker's decode arena, with the decoded topic names. */
static kprod_t *kprod_new(conn_t *c, const kf_produce_req_t *m, size_t nparts)
{
    int heap = m->acks == -1;
    kprod_t *kp = heap ? calloc(1, sizeof *kp) : sl_arena_alloc(c->arena, sizeof *kp);
    if (!kp) return NULL;
    size_t tsz = ((size_t)m->ntopics + 1) * sizeof *kp->topics;
    size_t psz = (nparts + 1) * sizeof *kp->rq.parts;
    kp->topics = heap ? calloc(1, tsz) : sl_arena_alloc(c->arena, tsz);
    kp->rq.parts = heap ? calloc(1, psz) : sl_arena_alloc(c->arena, psz);
    kp->ntopics = 0;
    kp->rq.owner = kp;
    kp->rq.release = heap ? release_heap : release_arena;
    if (!kp->topics || !kp->rq.parts) {
        if (heap) release_heap(&kp->rq);
        return NULL;
    }
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kf_produce_topic_t *t = &m->topics[i];
        ktopic_t *kt = &kp->topics[kp->ntopics++];
        kt->nparts = t->nparts;
        kt->name = heap ? strdup(t->name) : t->name;
        if (!kt->name) {
            release_heap(&kp->rq);
            return NULL;
        }
    }
    return kp;
}

void k_produce(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)s;
    kf_produce_req_t *m = &r->u.produce;
    size_t nparts = 0;
    for (int32_t i = 0; i < m->ntopics; i++) nparts += (size_t)m->topics[i].nparts;
    kprod_t *kp = kprod_new(c, m, nparts);
    slot_t *slot = kp && m->acks != 0 ? conn_slot(c) : NULL;
    if (!kp || (m->acks != 0 && !slot)) {
        if (kp) kp->rq.release(&kp->rq);
        conn_close(c, "out of memory");
        return;
    }
    produce_req_t *rq = &kp->rq;
    rq->done = done;
    kp->s = slot;
    kp->ver = r->h.api_version;
    kp->corr = r->h.correlation_id;
    produce_part_t *pp = rq->parts;
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kf_produce_topic_t *t = &m->topics[i];
        for (int32_t j = 0; j < t->nparts; j++, pp++) {
            pp->topic = kp->topics[i].name;
            pp->partition = t->parts[j].index;
            pp->records = t->parts[j].records;
            pp->len = t->parts[j].records ? (size_t)t->parts[j].records_len : 0;
        }
    }
    rq->c = c;
    rq->acks = m->acks;
    rq->one_batch = 1;
    rq->timeout_ms = m->timeout_ms > 0 ? (uint32_t)m->timeout_ms : 0;
    rq->t0_us = t0_us;
    rq->nparts = nparts;
    int acks = m->acks;
    sl_err_t first;
    int rc = produce_start(rq, &first); /* kp may be freed from here on */
    if (acks == 0) {
        kafka_count(c, KF_PRODUCE, rc == SL_OK ? SL_OK : SL_ERR_INVALID_REQUEST);
        if (rc != SL_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "acks=0 produce failed: %s: %s", sl_code_name(rc), first.msg);
            conn_close(c, msg);
        }
    }
}
