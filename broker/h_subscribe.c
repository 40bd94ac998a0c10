/* h_subscribe.c — push mode: SUBSCRIBE (answered once, then PUSH frames),
 * CREDIT (never answered), UNSUBSCRIBE (answered). See subscribe.h for the
 * ownership and wake-up rules and docs/protocol.md for the wire contract.
 *
 * Removal while pushing: pushing can close the connection (a write error),
 * which ends and frees all its subscriptions at once; the watch registry's
 * walk survives that (watch.h). After any push the caller checks c->closed
 * before touching a subscription again.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "subscribe.h"
#include "svc_topics.h"
#include "watch.h"

typedef struct sub {
    struct sub *cnext; /* connection's list */
    conn_t *c;
    partition_t *p; /* referenced */
    watch_t watch;  /* on the worker's registry for p */
    uint64_t corr;  /* the Subscribe's correlation id: names the subscription */
    int64_t offset; /* next offset to push */
    int64_t credit; /* bytes; may go negative after a batch larger than it */
} sub_t;

/* The connection's push state; NULL until its first Subscribe (create:
 * allocate it then; NULL on ENOMEM). Freed when the connection closes. */
static sluice_conn_t *state(conn_t *c, int create)
{
    if (!c->pstate && create) c->pstate = calloc(1, sizeof(sluice_conn_t));
    return c->pstate;
}

/* Takes s off its connection and the registry and frees it. */
static void end_sub(sub_t *s)
{
    conn_t *c = s->c;
    sluice_conn_t *st = c->pstate;
    for (sub_t **pp = &st->subs; *pp; pp = &(*pp)->cnext)
        if (*pp == s) {
            *pp = s->cnext;
            st->nsubs--;
            break;
        }
    watch_del(c->w, &s->watch);
    partition_unref(s->p);
    free(s);
}

static sub_t *find(conn_t *c, uint64_t corr)
{
    sluice_conn_t *st = state(c, 0);
    for (sub_t *s = st ? st->subs : NULL; s; s = s->cnext)
        if (s->corr == corr) return s;
    return NULL;
}

/* Pushes what s may send now: whole batches from s->offset while it has
 * credit and the connection's output is under its cap. Ends s (with an
 * error PUSH) when the log no longer has its offset. Returns 0, or -1 when
 * the connection closed (s may be freed). */
static int pump(sub_t *s)
{
    conn_t *c = s->c;
    worker_t *w = c->w;
    uint64_t cap = (uint64_t)w->b->conf.max_connection_output_bytes;
    sluice_conn_t *st = c->pstate; /* freed if c closes: not touched after that */
    int busy = st->push_busy;
    st->push_busy = 1; /* conn_respond → write_out must not re-enter pushing */
    /* c->closed first: once it is set, s may be freed. */
    while (!c->closed && s->credit > 0 && !w->draining && !c->close_after_write) {
        if (c->out_bytes >= cap) {
            st->push_blocked = 1;
            break;
        }
        uint64_t max = (uint64_t)s->credit;
        if (max > cap - c->out_bytes) max = cap - c->out_bytes;
        if (max > SUBSCRIBE_PUSH_MAX_BYTES) max = SUBSCRIBE_PUSH_MAX_BYTES;
        seg_range_t range;
        int64_t next;
        sl_err_t err;
        int rc = partition_read_batches(s->p, s->offset, max, &range, &next, &err);
        if (rc == SL_OK && range.len == 0) break; /* caught up: the next append wakes us */
        slot_t *slot = conn_slot(c);
        if (!slot) {
            if (rc == SL_OK) seg_range_release(&range);
            conn_close(c, "out of memory");
            break;
        }
        uint64_t corr = s->corr;
        if (rc != SL_OK) {
            /* Retention passed the offset, the topic was deleted, or the
             * disk failed: the subscription is over; the client re-subscribes. */
            log_info("push", "#%" PRIu64 " %s: subscription %" PRIu64 " ended: %s", c->id, c->peer,
                     corr, err.msg);
            end_sub(s); /* s is gone: leave the loop without looking at it */
            conn_respond(c, slot, SLUICE__API_KEY__PUSH, corr, rc, err.msg, NULL, NULL);
            break;
        }
        Sluice__PushData d = SLUICE__PUSH_DATA__INIT;
        d.topic = (char *)partition_topic(s->p);
        d.partition = partition_id(s->p);
        d.high_watermark = partition_log_end(s->p);
        d.first_offset = range.first_offset;
        s->credit -= (int64_t)range.len;
        s->offset = next;
        conn_respond(c, slot, SLUICE__API_KEY__PUSH, corr, SL_OK, NULL, &d.base, &range);
    }
    /* c stays allocated until the end of this event batch even if closed;
     * its push state does not. */
    if (c->closed) return -1;
    st->push_busy = busy;
    return 0;
}

/* The registry's callback: s's partition grew. */
static void grew(watch_t *x)
{
    sub_t *s = x->owner;
    if (!s->c->closed) pump(s);
}

void subscribe_conn_closed(conn_t *c)
{
    sluice_conn_t *st = c->pstate;
    if (!st) return;
    while (st->subs) end_sub(st->subs);
    free(st);
    c->pstate = NULL;
}

void subscribe_output_drained(conn_t *c)
{
    sluice_conn_t *st = c->pstate;
    if (!st || !st->push_blocked || st->push_busy || c->closed) return;
    st->push_blocked = 0;
    sub_t *s = st->subs;
    while (s && !c->closed) {
        sub_t *next = s->cnext; /* s may end; next stays valid unless c closes */
        if (pump(s) < 0) break;
        s = next;
    }
}

static void on_subscribe(conn_t *c, const sl_request_t *req, slot_t *slot)
{
    sl_err_t err;
    uint64_t corr = req->hdr->correlation_id;
    Sluice__SubscribeRequest *m = (Sluice__SubscribeRequest *)sl_body_decode(
        &sluice__subscribe_request__descriptor, req->body, req->body_len, c->arena, &err);
    partition_t *p = NULL;
    int rc = m ? SL_OK : err.code;
    sluice_conn_t *st = rc == SL_OK ? state(c, 1) : NULL;
    if (rc == SL_OK && !st) rc = sl_err_set(&err, SL_ERR_NOMEM, "out of memory");
    if (rc == SL_OK && st->nsubs >= SUBSCRIBE_MAX_PER_CONN)
        rc = sl_err_set(&err, SL_ERR_INVALID_REQUEST,
                        "too many subscriptions on this connection (max %d)",
                        SUBSCRIBE_MAX_PER_CONN);
    if (rc == SL_OK && find(c, corr))
        rc = sl_err_set(&err, SL_ERR_INVALID_REQUEST,
                        "correlation id %" PRIu64 " already names a subscription", corr);
    if (rc == SL_OK) rc = topics_partition(c->w->b, m->topic, (int32_t)m->partition, 0, &p, &err);
    int64_t start = 0, end = 0, offset = 0;
    if (rc == SL_OK) {
        start = partition_log_start(p);
        end = partition_log_end(p);
        offset = m->offset == -1 ? end : m->offset == -2 ? start : m->offset;
        if (offset < start || offset > end)
            rc = sl_err_set(&err, SL_ERR_OFFSET_OUT_OF_RANGE,
                            "%s-%d: offset %" PRId64 " is outside [%" PRId64 ", %" PRId64 "]",
                            m->topic, m->partition, m->offset, start, end);
    }
    sub_t *s = rc == SL_OK ? calloc(1, sizeof *s) : NULL;
    if (rc == SL_OK && !s) rc = sl_err_set(&err, SL_ERR_NOMEM, "out of memory");
    /* Publish interest before the first read (pump below): an append in
     * between then posts a check instead of going unnoticed. */
    if (rc == SL_OK && watch_add(c->w, &s->watch, p, grew, s) < 0) {
        free(s);
        rc = sl_err_set(&err, SL_ERR_NOMEM, "out of memory");
    }
    met_request(&c->w->m, SLUICE__API_KEY__SUBSCRIBE, rc);
    if (rc != SL_OK) {
        if (p) partition_unref(p);
        conn_respond(c, slot, SLUICE__API_KEY__SUBSCRIBE, corr, rc, err.msg, NULL, NULL);
        return;
    }
    s->c = c;
    s->p = p;
    s->corr = corr;
    s->offset = offset;
    s->credit = m->credit_bytes > INT64_MAX ? INT64_MAX : (int64_t)m->credit_bytes;
    s->cnext = st->subs;
    st->subs = s;
    st->nsubs++;
    Sluice__SubscribeResponse r = SLUICE__SUBSCRIBE_RESPONSE__INIT;
    r.high_watermark = end;
    r.log_start_offset = start;
    conn_respond(c, slot, SLUICE__API_KEY__SUBSCRIBE, corr, SL_OK, NULL, &r.base, NULL);
    if (!c->closed) pump(s);
}

static void on_credit(conn_t *c, const sl_request_t *req)
{
    sl_err_t err;
    Sluice__CreditRequest *m = (Sluice__CreditRequest *)sl_body_decode(
        &sluice__credit_request__descriptor, req->body, req->body_len, c->arena, &err);
    if (!m) {
        /* Never answered, so an error cannot be reported: the client's
         * stream is broken, like a bad frame length. */
        met_add(&c->w->m.protocol_errors, 1);
        conn_close(c, "CREDIT body does not decode");
        return;
    }
    sub_t *s = find(c, m->subscription);
    if (!s) return; /* ended by an error PUSH or an Unsubscribe in flight */
    int64_t add = m->bytes > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)m->bytes;
    s->credit = s->credit > INT64_MAX - add ? INT64_MAX : s->credit + add; /* saturate */
    pump(s);
}

static void on_unsubscribe(conn_t *c, const sl_request_t *req, slot_t *slot)
{
    sl_err_t err;
    uint64_t corr = req->hdr->correlation_id;
    Sluice__UnsubscribeRequest *m = (Sluice__UnsubscribeRequest *)sl_body_decode(
        &sluice__unsubscribe_request__descriptor, req->body, req->body_len, c->arena, &err);
    int rc = m ? SL_OK : err.code;
    sub_t *s = m ? find(c, m->subscription) : NULL;
    if (rc == SL_OK && !s)
        rc = sl_err_set(&err, SL_ERR_INVALID_REQUEST,
                        "no subscription %" PRIu64 " on this connection", m->subscription);
    met_request(&c->w->m, SLUICE__API_KEY__UNSUBSCRIBE, rc);
    if (rc != SL_OK) {
        conn_respond(c, slot, SLUICE__API_KEY__UNSUBSCRIBE, corr, rc, err.msg, NULL, NULL);
        return;
    }
    end_sub(s);
    Sluice__UnsubscribeResponse r = SLUICE__UNSUBSCRIBE_RESPONSE__INIT;
    conn_respond(c, slot, SLUICE__API_KEY__UNSUBSCRIBE, corr, SL_OK, NULL, &r.base, NULL);
}

void h_subscribe(conn_t *c, const sl_request_t *req)
{
    if (req->hdr->api == SLUICE__API_KEY__CREDIT) {
        on_credit(c, req); /* no slot: CREDIT is never answered */
        return;
    }
    slot_t *slot = conn_slot(c);
    if (!slot) {
        conn_close(c, "out of memory");
        return;
    }
    if (req->hdr->api == SLUICE__API_KEY__SUBSCRIBE)
        on_subscribe(c, req, slot);
    else
        on_unsubscribe(c, req, slot);
}
