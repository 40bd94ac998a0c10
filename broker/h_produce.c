/* h_produce.c — Produce: validate, append, answer by acks.
 *   acks=0   no response at all; an error closes the connection (the only
 *            way a fire-and-forget client can notice, as in Kafka).
 *   acks=1   answered after the write to the page cache.
 *   acks=-1  answered after the group-commit fdatasync that covers the last
 *            offset (the flusher calls back; the completion is posted to this
 *            worker), or REQUEST_TIMED_OUT after timeout_ms.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "dispatch.h"
#include "log.h"

typedef struct produce_wait {
    conn_t *c;
    slot_t *slot;
    partition_t *p;
    reactor_timer_t timer;
    uint64_t corr;
    uint64_t t0_us;
    int answered;
    int code;
    Sluice__ProduceResponse r;
} produce_wait_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer(produce_wait_t *pw, int code, const char *msg)
{
    if (pw->answered) return;
    pw->answered = 1;
    conn_t *c = pw->c;
    met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, code);
    met_observe(&c->w->m.produce_us, now_us() - pw->t0_us);
    conn_respond(c, pw->slot, SLUICE__API_KEY__PRODUCE, pw->corr, code, msg,
                 code == SL_OK ? &pw->r.base : NULL, NULL);
}

/* On the worker: the flusher's verdict arrived. */
static void flushed_task(void *arg)
{
    produce_wait_t *pw = arg;
    reactor_timer_stop(pw->c->w->r, &pw->timer);
    pw->c->w->pending_flushes--;
    char msg[96];
    if (pw->code != SL_OK)
        snprintf(msg, sizeof msg, "fdatasync failed: %s", sl_code_name(pw->code));
    answer(pw, pw->code, pw->code == SL_OK ? NULL : msg);
    partition_unref(pw->p);
    conn_unref(pw->c);
    free(pw);
}

/* On the flusher thread: hand over to the worker. */
static void flushed(void *arg, int code, int64_t durable)
{
    (void)durable;
    produce_wait_t *pw = arg;
    pw->code = code;
    if (reactor_post(pw->c->w->r, flushed_task, pw) < 0)
        log_error("produce", "cannot post a flush completion: out of memory");
}

static void timed_out(void *arg)
{
    produce_wait_t *pw = arg;
    /* The flush still owns pw and frees it when it completes. */
    answer(pw, SL_ERR_REQUEST_TIMED_OUT, "acks=all: not durable within timeout_ms");
}

void h_produce(conn_t *c, const sl_request_t *req, uint64_t t0_us)
{
    broker_t *b = c->w->b;
    sl_err_t err;
    uint64_t corr = req->hdr->correlation_id;
    Sluice__ProduceRequest *m = (Sluice__ProduceRequest *)sl_body_decode(
        &sluice__produce_request__descriptor, req->body, req->body_len, c->arena, &err);
    int acks = m ? m->acks : 1;
    slot_t *slot = NULL;
    if (acks != 0 && !(slot = conn_slot(c))) {
        conn_close(c, "out of memory");
        return;
    }
    int rc = SL_OK;
    partition_t *p = NULL;
    partition_append_info_t info;
    if (!m) {
        rc = err.code;
    } else if (acks != 0 && acks != 1 && acks != -1) {
        rc = sl_err_set(&err, SL_ERR_INVALID_REQUIRED_ACKS, "acks=%d; use 0, 1 or -1", acks);
    } else if (req->payload_len == 0) {
        rc = sl_err_set(&err, SL_ERR_CORRUPT_MESSAGE, "produce request carries no record batch");
    } else {
        /* What a producer may not send, whatever the CRC says: control
         * batches, idempotent batches without a sequence. */
        for (const uint8_t *q = req->payload, *end = q + req->payload_len;
             q + SL_BATCH_HEADER_SIZE <= end;) {
            sl_batch_hdr_t bh;
            sl_batch_hdr_parse(q, &bh);
            uint64_t sz = sl_batch_total_size(q);
            if ((rc = sl_batch_validate_produce(&bh, &err)) != SL_OK) break;
            if (sz < SL_BATCH_HEADER_SIZE || sz > (uint64_t)(end - q)) break; /* append says why */
            q += sz;
        }
        if (rc == SL_OK) rc = dispatch_partition(c, m->topic, m->partition, 1, &p, &err);
        if (rc == SL_OK && b->conf.deep_validation) {
            sl_batch_limits_t lim = {0, 0};
            const uint8_t *q = req->payload, *end = req->payload + req->payload_len;
            while (rc == SL_OK && q < end) {
                uint64_t sz = end - q >= 12 ? sl_batch_total_size(q) : 0;
                if (sz < SL_BATCH_HEADER_SIZE || sz > (uint64_t)(end - q))
                    break; /* append says why */
                rc = sl_batch_validate_deep(q, (size_t)sz, &lim, &err);
                q += sz;
            }
        }
        if (rc == SL_OK)
            rc = partition_append(p, (uint8_t *)req->payload, req->payload_len, wall_ms(), &info,
                                  &err);
    }
    if (rc != SL_OK) {
        if (p) partition_unref(p);
        log_debug("produce", "#%" PRIu64 " %s: %s: %s", c->id, c->peer, sl_code_name(rc), err.msg);
        if (acks == 0) {
            met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, rc);
            char why[300];
            snprintf(why, sizeof why, "acks=0 produce failed: %s: %s", sl_code_name(rc), err.msg);
            conn_close(c, why);
            return;
        }
        met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, rc);
        conn_respond(c, slot, SLUICE__API_KEY__PRODUCE, corr, rc, err.msg, NULL, NULL);
        return;
    }
    if (acks == 0) {
        met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, SL_OK);
        partition_unref(p);
        return;
    }
    Sluice__ProduceResponse r = SLUICE__PRODUCE_RESPONSE__INIT;
    r.base_offset = info.base_offset;
    r.last_offset = info.last_offset;
    r.log_start_offset = partition_log_start(p);
    if (acks == 1) {
        partition_unref(p);
        met_request(&c->w->m, SLUICE__API_KEY__PRODUCE, SL_OK);
        met_observe(&c->w->m.produce_us, now_us() - t0_us);
        conn_respond(c, slot, SLUICE__API_KEY__PRODUCE, corr, SL_OK, NULL, &r.base, NULL);
        return;
    }
    produce_wait_t *pw = calloc(1, sizeof *pw);
    if (!pw) {
        partition_unref(p);
        conn_respond(c, slot, SLUICE__API_KEY__PRODUCE, corr, SL_ERR_NOMEM, "out of memory", NULL,
                     NULL);
        return;
    }
    pw->c = c;
    pw->slot = slot;
    pw->p = p; /* our reference, dropped in flushed_task */
    pw->corr = corr;
    pw->t0_us = t0_us;
    pw->r = r;
    conn_ref(c);
    c->w->pending_flushes++;
    reactor_timer_init(&pw->timer, timed_out, pw);
    uint32_t tmo = m->timeout_ms ? m->timeout_ms : 30000;
    reactor_timer_start(c->w->r, &pw->timer, tmo);
    if (flusher_wait(store_flusher(b->store), p, info.last_offset, flushed, pw) != SL_OK) {
        reactor_timer_stop(c->w->r, &pw->timer);
        answer(pw, SL_ERR_NOMEM, "out of memory");
        c->w->pending_flushes--;
        partition_unref(p);
        conn_unref(c);
        free(pw);
    }
}
