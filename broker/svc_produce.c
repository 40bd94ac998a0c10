/* svc_produce.c — the produce service (svc_produce.h). */
#include "svc_produce.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "log.h"
#include "svc_topics.h"

int64_t produce_next_producer_id(broker_t *b)
{
    /* Ids start at the start-up time in ms times 65536, so an id handed out
     * by an earlier run of the broker is never handed out again. */
    int64_t zero = 0, base = sl_wall_ms() << 16;
    atomic_compare_exchange_strong(&b->next_producer_id, &zero, base);
    return atomic_fetch_add(&b->next_producer_id, 1);
}

/* What no producer may send, whatever the CRC says, checked per batch
 * before anything is appended. A malformed size stops the walk: the
 * append's own validation names it. */
static int check_records(const produce_req_t *rq, const produce_part_t *pp, sl_err_t *e)
{
    const uint8_t *rec = pp->records;
    size_t len = pp->len;
    if (!rec || len == 0) return sl_err_set(e, SL_ERR_CORRUPT_MESSAGE, "no record batch");
    if (rq->one_batch) {
        if (len > SL_BATCH_OFF_MAGIC && rec[SL_BATCH_OFF_MAGIC] != 2)
            return sl_err_set(e, SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
                              "message format v%d: only RecordBatch v2 (magic 2) is stored",
                              rec[SL_BATCH_OFF_MAGIC]);
        if (len < SL_BATCH_HEADER_SIZE)
            return sl_err_set(e, SL_ERR_CORRUPT_MESSAGE,
                              "records: %zu bytes, less than a batch header", len);
        if (sl_batch_total_size(rec) != len)
            return sl_err_set(e, SL_ERR_INVALID_RECORD,
                              "records must hold exactly one batch (batch size %" PRIu64
                              ", %zu bytes)",
                              sl_batch_total_size(rec), len);
    }
    for (const uint8_t *q = rec, *end = rec + len; q + SL_BATCH_HEADER_SIZE <= end;) {
        sl_batch_hdr_t h;
        sl_batch_hdr_parse(q, &h);
        int rc = sl_batch_validate_produce(&h, e);
        if (rc != SL_OK) return rc;
        uint64_t sz = sl_batch_total_size(q);
        if (sz < SL_BATCH_HEADER_SIZE || sz > (uint64_t)(end - q)) break;
        q += sz;
    }
    return SL_OK;
}

static int deep_check(const produce_part_t *pp, sl_err_t *e)
{
    sl_batch_limits_t lim = {0, 0};
    const uint8_t *q = pp->records, *end = pp->records + pp->len;
    while (q < end) {
        uint64_t sz = end - q >= 12 ? sl_batch_total_size(q) : 0;
        if (sz < SL_BATCH_HEADER_SIZE || sz > (uint64_t)(end - q)) break; /* append says why */
        int rc = sl_batch_validate_deep(q, (size_t)sz, &lim, e);
        if (rc != SL_OK) return rc;
        q += sz;
    }
    return SL_OK;
}

/* Validates and appends one part. On success with acks=-1 *pp_out keeps a
 * partition reference for the flush wait. */
static int append_part(produce_req_t *rq, produce_part_t *pp, partition_t **out, sl_err_t *e)
{
    broker_t *b = rq->c->w->b;
    *out = NULL;
    int rc = check_records(rq, pp, e);
    if (rc != SL_OK) return rc;
    partition_t *p;
    if ((rc = topics_partition(b, pp->topic, pp->partition, 1, &p, e)) != SL_OK) return rc;
    if (b->conf.deep_validation && (rc = deep_check(pp, e)) != SL_OK) {
        partition_unref(p);
        return rc;
    }
    partition_append_info_t info;
    rc = partition_append(p, pp->records, pp->len, sl_wall_ms(), &info, e);
    if (rc != SL_OK) {
        partition_unref(p);
        return rc;
    }
    if (info.duplicate)
        log_debug("produce", "#%" PRIu64 " %s/%d: retry of a batch already at %" PRId64, rq->c->id,
                  pp->topic, pp->partition, info.base_offset);
    pp->duplicate = info.duplicate;
    pp->base_offset = info.base_offset;
    pp->last_offset = info.last_offset;
    pp->log_start = partition_log_start(p);
    *out = p;
    return SL_OK;
}

/* Answers once: parts still waiting for the disk time out. */
static void answer(produce_req_t *rq)
{
    if (rq->answered) return;
    rq->answered = 1;
    for (size_t i = 0; i < rq->nparts; i++) {
        produce_part_t *pp = &rq->parts[i];
        if (pp->waiting && pp->code == SL_OK) {
            pp->code = SL_ERR_REQUEST_TIMED_OUT;
            if (rq->code == SL_OK) {
                rq->code = pp->code;
                sl_err_set(&rq->err, pp->code, "acks=all: not durable within timeout_ms");
            }
        }
        if (pp->code != SL_OK) pp->base_offset = -1;
    }
    met_observe(&rq->c->w->m.produce_us, sl_mono_us() - rq->t0_us);
    rq->done(rq);
}

static void timed_out(void *arg)
{
    answer(arg); /* the waits still own rq and release it when they complete */
}

/* On the worker: one part's flush verdict. */
static void flushed_task(void *arg)
{
    produce_part_t *pp = arg;
    produce_req_t *rq = pp->rq;
    conn_t *c = rq->c;
    c->w->pending_flushes--;
    if (!rq->answered) {
        pp->waiting = 0;
        if (pp->flush_code != SL_OK) {
            pp->code = pp->flush_code;
            if (rq->code == SL_OK) {
                rq->code = pp->code;
                sl_err_set(&rq->err, pp->code, "fdatasync failed: %s", sl_code_name(pp->code));
            }
        }
    }
    if (--rq->pending == 0) {
        reactor_timer_stop(c->w->r, &rq->timer);
        answer(rq);
        rq->release(rq);
        conn_unref(c);
    }
}

/* On the flusher thread (or this one): hand over to the worker. The code
 * is stored before the post, which orders it before flushed_task. */
static void flushed(void *arg, int code, int64_t durable)
{
    (void)durable;
    produce_part_t *pp = arg;
    pp->flush_code = code;
    reactor_post_task(pp->rq->c->w->r, &pp->task);
}

int produce_start(produce_req_t *rq, sl_err_t *first)
{
    conn_t *c = rq->c;
    broker_t *b = c->w->b;
    int acks = rq->acks;
    int bad_acks = acks != 0 && acks != 1 && acks != -1;
    rq->code = SL_OK;
    rq->err.code = SL_OK;
    rq->err.msg[0] = 0;
    rq->pending = 0;
    rq->answered = 0;
    for (size_t i = 0; i < rq->nparts; i++) {
        produce_part_t *pp = &rq->parts[i];
        pp->rq = rq;
        pp->waiting = 0;
        pp->duplicate = 0;
        pp->base_offset = pp->last_offset = pp->log_start = -1;
        sl_err_t e;
        e.msg[0] = 0;
        partition_t *p = NULL;
        int rc = bad_acks
                     ? sl_err_set(&e, SL_ERR_INVALID_REQUIRED_ACKS, "acks=%d; use 0, 1 or -1", acks)
                     : append_part(rq, pp, &p, &e);
        pp->code = rc;
        if (rc != SL_OK) {
            log_debug("produce", "#%" PRIu64 " %s %s/%d: %s: %s", c->id, c->peer, pp->topic,
                      pp->partition, sl_code_name(rc), e.msg);
            if (rq->code == SL_OK) {
                rq->code = rc;
                rq->err = e;
                rq->err.code = rc;
            }
            continue;
        }
        if (acks == -1) {
            pp->waiting = 1;
            rq->pending++;
            c->w->pending_flushes++;
            reactor_task_init(&pp->task, flushed_task, pp);
            if (flusher_wait(store_flusher(b->store), p, pp->last_offset, flushed, pp) != SL_OK) {
                pp->waiting = 0;
                pp->code = SL_ERR_NOMEM;
                rq->pending--;
                c->w->pending_flushes--;
                if (rq->code == SL_OK) {
                    rq->code = SL_ERR_NOMEM;
                    sl_err_set(&rq->err, SL_ERR_NOMEM, "out of memory");
                }
            }
        }
        partition_unref(p);
    }
    int code = rq->code;
    if (first && code != SL_OK) *first = rq->err;
    if (acks == 0) {
        rq->release(rq);
        return code;
    }
    if (rq->pending == 0) {
        answer(rq);
        rq->release(rq);
        return code;
    }
    /* acks=-1: answered when the last wait completes or at timeout_ms; the
     * waits own rq (the last flushed_task releases it). */
    conn_ref(c);
    reactor_timer_init(&rq->timer, timed_out, rq);
    reactor_timer_start(c->w->r, &rq->timer, rq->timeout_ms ? rq->timeout_ms : 30000);
    return code;
}
