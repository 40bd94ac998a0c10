/* consumer.c — libsluice's consumer: the public API, the queue of fetched
 * batches that poll() decodes, and the background thread's data connection
 * (pull: pipelined Fetch long polls; push: SUBSCRIBE, PUSH frames, CREDIT).
 * The group protocol and commits live in consumer_group.c; the threads,
 * locks and the fetch.max.bytes budget are described in consumer_int.h.
 *
 * Why records are decoded in poll() and not in the thread: the thread only
 * validates batches (CRC) and queues them as they came, so prefetching costs
 * one copy of the payload, and decompression and message allocation happen
 * on the application's thread, only for what it actually consumes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "consumer_int.h"

#define MAX_FRAME (64u << 20)

void sl_cons_wake(sluice_consumer_t *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, the thread wakes anyway */
}

/* ---- items and budget (all with mu held) ---------------------------------- */

static void chunk_unref(sluice_consumer_t *c, cchunk_t *ch)
{
    if (!ch || --ch->refs > 0) return;
    c->buffered -= (int64_t)ch->charge;
    free(ch);
    if (c->budget_waiter) {
        c->budget_waiter = 0;
        sl_cons_wake(c);
    }
}

/* An item leaves the queue: its bytes go back to the budget, and in push
 * mode to the subscription's credit (sent by the thread once a quarter of
 * the initial credit has accumulated, so a CREDIT is not sent per batch). */
static void item_done(sluice_consumer_t *c, citem_t *it)
{
    if (it->push && it->p->sub_id && it->epoch == it->p->epoch) {
        cpart_t *p = it->p;
        int64_t before = p->credit_owed;
        p->credit_owed += (int64_t)it->len;
        int64_t thr = p->credit / 4 > 0 ? p->credit / 4 : 1;
        if (before < thr && p->credit_owed >= thr) sl_cons_wake(c);
    }
    chunk_unref(c, it->chunk);
    free(it);
}

static void drop_cur(sluice_consumer_t *c)
{
    if (!c->cur) return;
    sl_record_iter_free(&c->cur_it);
    item_done(c, c->cur);
    c->cur = NULL;
}

static void queue_item(sluice_consumer_t *c, citem_t *it)
{
    it->next = NULL;
    if (c->qtail)
        c->qtail->next = it;
    else
        c->qhead = it;
    c->qtail = it;
    pthread_cond_signal(&c->cond);
}

static void purge_part(sluice_consumer_t *c, cpart_t *p)
{
    if (c->cur && c->cur->p == p) drop_cur(c);
    citem_t **pp = &c->qhead, *last = NULL;
    while (*pp) {
        citem_t *it = *pp;
        if (it->p == p) {
            *pp = it->next;
            item_done(c, it);
        } else {
            last = it;
            pp = &it->next;
        }
    }
    c->qtail = last;
}

void sl_cons_queue_err(sluice_consumer_t *c, cpart_t *p, int err, int64_t offset)
{
    citem_t *it = calloc(1, sizeof *it);
    if (!it) return;
    it->p = p;
    it->epoch = p ? p->epoch : 0;
    it->err = err;
    it->offset = offset;
    it->next_off = -1;
    queue_item(c, it);
}

cpart_t *sl_cons_part(sluice_consumer_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->partition == partition && strcmp(c->parts[i]->topic, topic) == 0)
            return c->parts[i];
    if (c->nparts == c->parts_cap) {
        size_t n = c->parts_cap ? c->parts_cap * 2 : 16;
        cpart_t **np = realloc(c->parts, n * sizeof *np);
        if (!np) return NULL;
        c->parts = np;
        c->parts_cap = n;
    }
    cpart_t *p = calloc(1, sizeof *p);
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->position = SLUICE_OFFSET_INVALID;
    p->committed = SLUICE_OFFSET_INVALID;
    p->hw = -1;
    c->parts[c->nparts++] = p;
    return p;
}

void sl_cons_unassign(sluice_consumer_t *c, cpart_t *p)
{
    p->assigned = 0;
    p->epoch++;
    purge_part(c, p);
}

void sl_cons_assign_part(sluice_consumer_t *c, cpart_t *p, int64_t spec)
{
    p->assigned = 1;
    p->epoch++;
    purge_part(c, p);
    if (spec >= 0) {
        p->fetch_pos = p->position = spec;
        p->need_reset = 0;
    } else {
        p->need_reset = 1;
        p->reset_spec = spec == SLUICE_OFFSET_INVALID ? SLUICE_OFFSET_STORED : spec;
        p->position = SLUICE_OFFSET_INVALID;
    }
    p->eof_sent = 0;
    p->retry_at = 0;
    p->credit_owed = 0;
    sl_cons_wake(c);
}

/* ---- messages -------------------------------------------------------------- */

/* One allocation holds the message and copies of everything it points to,
 * so sluice_message_destroy is a single free and the message outlives the
 * batch, the partition and the consumer. */
static sluice_message_t *msg_new(const cpart_t *p, const sl_record_t *r, int err, int64_t off)
{
    const char *topic = p ? p->topic : "";
    size_t tlen = strlen(topic) + 1, hc = 0, extra = 0;
    if (r) {
        hc = r->header_count > 0 ? (size_t)r->header_count : 0;
        if (r->key_len > 0) extra += (size_t)r->key_len;
        if (r->value_len > 0) extra += (size_t)r->value_len;
        extra += r->headers_len + hc; /* header bytes, plus a NUL per key */
    }
    size_t size = sizeof(sluice_message_t) + hc * sizeof(sluice_header_t) + tlen + extra;
    sluice_message_t *m = calloc(1, size);
    if (!m) return NULL;
    sluice_header_t *hdrs = (sluice_header_t *)(m + 1);
    char *w = (char *)(hdrs + hc);
    memcpy(w, topic, tlen);
    m->topic = w;
    w += tlen;
    m->err = err;
    m->partition = p ? p->partition : -1;
    m->offset = off;
    if (!r) return m;
    m->offset = r->offset;
    m->timestamp = r->timestamp;
    if (r->key) {
        memcpy(w, r->key, (size_t)r->key_len);
        m->key = w;
        m->key_len = (size_t)r->key_len;
        w += r->key_len;
    }
    if (r->value) {
        memcpy(w, r->value, (size_t)r->value_len);
        m->value = w;
        m->value_len = (size_t)r->value_len;
        w += r->value_len;
    }
    /* Headers: varint keyLen, key, varint valueLen (-1: null), value. */
    const uint8_t *hp = r->headers, *he = r->headers + r->headers_len;
    for (size_t i = 0; i < hc; i++) {
        int32_t kl, vl;
        size_t n = sl_varint_decode(hp, he, &kl);
        if (!n || kl < 0 || (size_t)(he - hp - (ptrdiff_t)n) < (size_t)kl) goto bad;
        hp += n;
        memcpy(w, hp, (size_t)kl);
        w[kl] = '\0';
        hdrs[i].key = w;
        w += kl + 1;
        hp += kl;
        n = sl_varint_decode(hp, he, &vl);
        if (!n) goto bad;
        hp += n;
        if (vl >= 0) {
            if ((size_t)(he - hp) < (size_t)vl) goto bad;
            memcpy(w, hp, (size_t)vl);
            hdrs[i].value = w;
            hdrs[i].value_len = (size_t)vl;
            w += vl;
            hp += vl;
        }
    }
    m->headers = hc ? hdrs : NULL;
    m->header_count = hc;
    return m;
bad:
    m->err = SLUICE_ERR__BAD_MSG;
    m->header_count = 0;
    m->headers = NULL;
    return m;
}

SLUICE_API void sluice_message_destroy(sluice_message_t *msg)
{
    free(msg);
}

/* ---- received payloads (thread, mu held) ------------------------------------ */

/* Cuts a fetch or push payload into batch items for p. Whole batches only:
 * a partial tail (a fetch stops at max_bytes) is dropped and fetched again
 * from the offset after the last whole batch. Every batch's CRC is checked
 * here when check.crcs, so a bad batch becomes a SLUICE_ERR__BAD_MSG item
 * and none of its records is ever decoded. Returns the bytes of the payload
 * that were not queued (push: returned as credit at once). */
static size_t take_payload(sluice_consumer_t *c, cpart_t *p, const uint8_t *pl, size_t len,
                           int push)
{
    size_t whole = 0;
    while (whole + SL_BATCH_LOG_OVERHEAD <= len) {
        uint64_t sz = sl_batch_total_size(pl + whole);
        if (sz < SL_BATCH_HEADER_SIZE || sz > SL_BATCH_MAX_SIZE || sz > len - whole) break;
        whole += (size_t)sz;
    }
    if (whole == 0) {
        if (len >= SL_BATCH_LOG_OVERHEAD &&
            sl_batch_total_size(pl) < SL_BATCH_HEADER_SIZE) { /* not even a length to trust */
            sl_cons_queue_err(c, p, SLUICE_ERR__BAD_MSG, p->fetch_pos);
            p->retry_at = sl_mono_ms() + 1000;
        }
        return len;
    }
    cchunk_t *ch = malloc(sizeof *ch + whole);
    if (!ch) return len;
    memcpy(ch->data, pl, whole);
    ch->refs = 1; /* held while cutting */
    ch->charge = whole;
    c->buffered += (int64_t)whole;
    if (c->buffered > c->max_buffered) c->max_buffered = c->buffered;
    size_t queued = 0;
    for (size_t off = 0; off < whole;) {
        const uint8_t *b = ch->data + off;
        size_t sz = (size_t)sl_batch_total_size(b);
        off += sz;
        sl_batch_hdr_t h;
        int rc = SL_OK;
        sl_batch_hdr_parse(b, &h); /* validate fills nothing on failure */
        if (c->conf->check_crcs)
            rc = sl_batch_validate(b, sz, NULL, NULL, NULL);
        else if (h.magic != SL_BATCH_MAGIC)
            rc = SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        int64_t last = h.base_offset + h.last_offset_delta;
        int sane = h.base_offset >= 0 && h.last_offset_delta >= 0 && last >= p->fetch_pos;
        if (rc != SL_OK) {
            citem_t *it = calloc(1, sizeof *it);
            if (!it) break;
            it->p = p;
            it->epoch = p->epoch;
            it->err = SLUICE_ERR__BAD_MSG;
            it->offset = h.base_offset >= p->fetch_pos ? h.base_offset : p->fetch_pos;
            /* Past the bad batch when its header still makes sense; else
             * stay and report again after a pause (nothing else is safe). */
            it->next_off = sane ? last + 1 : p->fetch_pos;
            if (sane)
                p->fetch_pos = last + 1;
            else
                p->retry_at = sl_mono_ms() + 1000;
            queue_item(c, it);
            if (!sane) break;
            continue;
        }
        if (last < p->fetch_pos) continue; /* all below the requested offset */
        citem_t *it = calloc(1, sizeof *it);
        if (!it) break;
        it->p = p;
        it->epoch = p->epoch;
        it->min_offset = p->fetch_pos;
        it->next_off = last + 1;
        it->chunk = ch;
        it->batch = b;
        it->len = sz;
        it->push = push;
        ch->refs++;
        queued += sz;
        p->fetch_pos = last + 1;
        p->eof_sent = 0;
        queue_item(c, it);
    }
    chunk_unref(c, ch);
    return len - queued;
}

static void maybe_eof(sluice_consumer_t *c, cpart_t *p, int64_t hw)
{
    p->hw = hw;
    if (c->conf->enable_partition_eof && !p->eof_sent && hw >= 0 && p->fetch_pos >= hw) {
        p->eof_sent = 1;
        sl_cons_queue_err(c, p, SLUICE_ERR__PARTITION_EOF, hw);
    }
}

/* OFFSET_OUT_OF_RANGE: restart per auto.offset.reset (error: report it and
 * wait for a seek). */
static void out_of_range(sluice_consumer_t *c, cpart_t *p)
{
    int64_t at = p->fetch_pos;
    switch (c->conf->auto_offset_reset) {
    case SL_RESET_EARLIEST:
        sl_cons_assign_part(c, p, SLUICE_OFFSET_BEGINNING);
        break;
    case SL_RESET_LATEST:
        sl_cons_assign_part(c, p, SLUICE_OFFSET_END);
        break;
    default:
        sl_cons_assign_part(c, p, SLUICE_OFFSET_INVALID);
        p->reset_spec = SLUICE_OFFSET_INVALID; /* stuck until seek */
        sl_cons_queue_err(c, p, SLUICE_ERR_OFFSET_OUT_OF_RANGE, at);
    }
}

/* ---- the data connection (thread only) ----------------------------------- */

typedef struct dreq {
    struct dreq *next;
    uint64_t corr;
    int api;
    cpart_t *p;
    uint32_t epoch;
    int64_t reserve; /* pull: budget reserved for the answer */
} dreq_t;

typedef struct dconn {
    int fd;
    uint64_t corr;
    uint8_t *out;
    size_t olen, ocap, ooff;
    uint8_t *in;
    size_t ilen, icap;
    dreq_t *wq, *wq_tail;
    sl_arena_t arena;
    int64_t retry_at;
    size_t rr; /* round-robin start among partitions */
} dconn_t;

static int d_send(dconn_t *d, int api, const ProtobufCMessage *body, uint64_t *corr)
{
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = (Sluice__ApiKey)api;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = ++d->corr;
    size_t n = sl_request_size(&h, body);
    if (d->olen + n > d->ocap) {
        size_t cap = d->ocap ? d->ocap : 4096;
        while (cap < d->olen + n) cap *= 2;
        uint8_t *o = realloc(d->out, cap);
        if (!o) return -1;
        d->out = o;
        d->ocap = cap;
    }
    d->olen += sl_request_encode(&h, body, 0, d->out + d->olen);
    if (corr) *corr = h.correlation_id;
    return 0;
}

static int d_expect(dconn_t *d, uint64_t corr, int api, cpart_t *p, int64_t reserve)
{
    dreq_t *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->corr = corr;
    r->api = api;
    r->p = p;
    r->epoch = p->epoch;
    r->reserve = reserve;
    if (d->wq_tail)
        d->wq_tail->next = r;
    else
        d->wq = r;
    d->wq_tail = r;
    return 0;
}

/* Drops the connection: in-flight fetches give back their reservation,
 * subscriptions are gone (they end with the connection on the broker too). */
static void d_close(sluice_consumer_t *c, dconn_t *d)
{
    if (d->fd >= 0) close(d->fd);
    d->fd = -1;
    d->olen = d->ooff = d->ilen = 0;
    pthread_mutex_lock(&c->mu);
    while (d->wq) {
        dreq_t *r = d->wq;
        d->wq = r->next;
        c->reserved -= r->reserve;
        r->p->inflight = 0;
        r->p->sub_pending = 0;
        free(r);
    }
    d->wq_tail = NULL;
    for (size_t i = 0; i < c->nparts; i++) {
        c->parts[i]->sub_id = 0;
        c->parts[i]->inflight = 0;
        c->parts[i]->sub_pending = 0;
    }
    pthread_mutex_unlock(&c->mu);
    d->retry_at = sl_mono_ms() + 200;
}

static void on_response(sluice_consumer_t *c, dconn_t *d, dreq_t *r, const sl_response_t *rs)
{
    cpart_t *p = r->p;
    int code = rs->hdr->error_code;
    pthread_mutex_lock(&c->mu);
    int fresh = p->assigned && r->epoch == p->epoch;
    if (r->api == SLUICE__API_KEY__FETCH) {
        c->reserved -= r->reserve;
        p->inflight = 0;
        if (c->budget_waiter) c->budget_waiter = 0; /* the loop re-checks anyway */
        if (!fresh) goto out;
        if (code == SL_ERR_OFFSET_OUT_OF_RANGE) {
            out_of_range(c, p);
        } else if (code != SL_OK) {
            sl_cons_queue_err(c, p, sl_client_code_from_wire(code), p->fetch_pos);
            p->retry_at = sl_mono_ms() + 500;
        } else {
            Sluice__FetchResponse *f = (Sluice__FetchResponse *)sl_body_decode(
                &sluice__fetch_response__descriptor, rs->body, rs->body_len, &d->arena, NULL);
            take_payload(c, p, rs->payload, rs->payload_len, 0);
            if (f) maybe_eof(c, p, f->high_watermark);
        }
    } else if (r->api == SLUICE__API_KEY__SUBSCRIBE) {
        p->sub_pending = 0;
        if (p->sub_id != r->corr) goto out; /* already replaced */
        if (code != SL_OK) {
            p->sub_id = 0;
            if (!fresh) goto out;
            if (code == SL_ERR_OFFSET_OUT_OF_RANGE) {
                out_of_range(c, p);
            } else {
                sl_cons_queue_err(c, p, sl_client_code_from_wire(code), p->fetch_pos);
                p->retry_at = sl_mono_ms() + 500;
            }
        } else if (fresh) {
            Sluice__SubscribeResponse *s = (Sluice__SubscribeResponse *)sl_body_decode(
                &sluice__subscribe_response__descriptor, rs->body, rs->body_len, &d->arena, NULL);
            if (s) maybe_eof(c, p, s->high_watermark);
        }
    }
out:
    pthread_mutex_unlock(&c->mu);
}

static void on_push(sluice_consumer_t *c, dconn_t *d, const sl_response_t *rs)
{
    uint64_t sub = rs->hdr->correlation_id;
    pthread_mutex_lock(&c->mu);
    cpart_t *p = NULL;
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->sub_id == sub) p = c->parts[i];
    if (!p || !p->assigned || p->sub_epoch != p->epoch) goto out; /* stale subscription */
    int code = rs->hdr->error_code;
    if (code != SL_OK) { /* the subscription is over */
        p->sub_id = 0;
        if (code == SL_ERR_OFFSET_OUT_OF_RANGE)
            out_of_range(c, p);
        else {
            sl_cons_queue_err(c, p, sl_client_code_from_wire(code), p->fetch_pos);
            p->retry_at = sl_mono_ms() + 500;
        }
        goto out;
    }
    Sluice__PushData *pd = (Sluice__PushData *)sl_body_decode(
        &sluice__push_data__descriptor, rs->body, rs->body_len, &d->arena, NULL);
    size_t unused = take_payload(c, p, rs->payload, rs->payload_len, 1);
    p->credit_owed += (int64_t)unused;
    if (pd) maybe_eof(c, p, pd->high_watermark);
out:
    pthread_mutex_unlock(&c->mu);
}

/* Reads what is there and dispatches whole frames. -1: the connection broke. */
static int d_read(sluice_consumer_t *c, dconn_t *d)
{
    for (;;) {
        if (d->icap - d->ilen < 65536) {
            size_t cap = d->icap ? d->icap * 2 : 1 << 17;
            uint8_t *n = realloc(d->in, cap);
            if (!n) return -1;
            d->in = n;
            d->icap = cap;
        }
        ssize_t n = read(d->fd, d->in + d->ilen, d->icap - d->ilen);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) return -1;
        d->ilen += (size_t)n;
        size_t pos = 0;
        for (;;) {
            uint32_t total;
            int rc = sl_frame_peek(d->in + pos, d->ilen - pos, MAX_FRAME, &total);
            if (rc == SL_ERR_PARTIAL) break;
            if (rc != SL_OK) return -1;
            if (d->ilen - pos < total) {
                if (total > d->icap) {
                    uint8_t *nb = realloc(d->in, (size_t)total + 65536);
                    if (!nb) return -1;
                    d->in = nb;
                    d->icap = (size_t)total + 65536;
                }
                break;
            }
            sl_response_t rs;
            sl_arena_reset(&d->arena);
            if (sl_response_decode(d->in + pos, total, &d->arena, &rs, NULL) != SL_OK) return -1;
            if (rs.hdr->api == SLUICE__API_KEY__PUSH) {
                on_push(c, d, &rs);
            } else {
                dreq_t *r = d->wq;
                /* In-order responses: a mismatch means the stream is lost. */
                if (!r || r->corr != rs.hdr->correlation_id) return -1;
                d->wq = r->next;
                if (!d->wq) d->wq_tail = NULL;
                on_response(c, d, r, &rs);
                free(r);
            }
            pos += total;
        }
        if (pos) {
            memmove(d->in, d->in + pos, d->ilen - pos);
            d->ilen -= pos;
        }
    }
}

static int d_flush(dconn_t *d)
{
    while (d->ooff < d->olen) {
        ssize_t w = write(d->fd, d->out + d->ooff, d->olen - d->ooff);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return 0;
        if (w < 0) return -1;
        d->ooff += (size_t)w;
    }
    d->ooff = d->olen = 0;
    return 0;
}

/* Pull: one Fetch per fetchable partition without one in flight, while the
 * budget allows. Responses on one connection come back in request order, so
 * a long poll on a partition that is caught up would hold back the answers
 * of partitions that have data behind it, and its reservation would take
 * budget they need. So partitions with a backlog (or an unknown end) go
 * first; caught-up ones follow, and while any partition has a backlog they
 * do not long-poll (max_wait 0, then a short pause) and reserve only a small
 * share. Only when everything is caught up do all of them long-poll. The
 * round-robin start keeps the first partitions from taking the whole budget
 * every time. Caller holds mu. */
static int caught_up(const cpart_t *p)
{
    return p->hw >= 0 && p->fetch_pos >= p->hw;
}

static void issue_fetches(sluice_consumer_t *c, dconn_t *d, int64_t now)
{
    const sluice_conf_t *cf = c->conf;
    int64_t floor = cf->max_partition_fetch_bytes < 4096 ? cf->max_partition_fetch_bytes : 4096;
    size_t n = c->nparts;
    int backlog = 0;
    for (size_t i = 0; i < n; i++)
        if (c->parts[i]->assigned && !c->parts[i]->need_reset && !caught_up(c->parts[i]))
            backlog = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            cpart_t *p = c->parts[(d->rr + k) % n];
            if (!p->assigned || p->need_reset || p->inflight || now < p->retry_at) continue;
            int idle = caught_up(p);
            if (idle != pass) continue;
            int64_t avail = cf->fetch_max_bytes - c->buffered - c->reserved;
            int64_t want = idle && backlog ? floor : cf->max_partition_fetch_bytes;
            int64_t mb = avail < want ? avail : want;
            if (mb < floor) {
                /* Out of budget. With nothing held at all a fetch must still
                 * go out (the broker sends at least one whole batch) or
                 * nothing would ever progress. */
                if (c->buffered + c->reserved > 0) {
                    c->budget_waiter = 1;
                    goto done;
                }
                mb = floor;
            }
            Sluice__FetchRequest f = SLUICE__FETCH_REQUEST__INIT;
            f.topic = p->topic;
            f.partition = p->partition;
            f.offset = p->fetch_pos;
            f.max_bytes = (uint32_t)mb;
            f.min_bytes = (uint32_t)cf->fetch_min_bytes;
            f.max_wait_ms = idle && backlog ? 0 : (uint32_t)cf->fetch_max_wait_ms;
            uint64_t corr;
            if (d_send(d, SLUICE__API_KEY__FETCH, &f.base, &corr) != 0 ||
                d_expect(d, corr, SLUICE__API_KEY__FETCH, p, mb) != 0)
                goto done;
            p->inflight = 1;
            c->reserved += mb;
            /* A caught-up partition asked without waiting is asked again
             * only after a pause, not in a tight loop of empty answers. */
            if (idle && backlog) p->retry_at = now + 20;
        }
    }
done:
    if (n) d->rr = (d->rr + 1) % n;
}

/* Push: subscribe what is assigned, unsubscribe what is stale, return
 * consumed bytes as credit. Caller holds mu. */
static void push_work(sluice_consumer_t *c, dconn_t *d, int64_t now)
{
    size_t nassigned = 0;
    for (size_t i = 0; i < c->nparts; i++) nassigned += c->parts[i]->assigned;
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        if (p->sub_id && (!p->assigned || p->sub_epoch != p->epoch)) {
            Sluice__UnsubscribeRequest u = SLUICE__UNSUBSCRIBE_REQUEST__INIT;
            u.subscription = p->sub_id;
            uint64_t corr;
            if (d_send(d, SLUICE__API_KEY__UNSUBSCRIBE, &u.base, &corr) != 0 ||
                d_expect(d, corr, SLUICE__API_KEY__UNSUBSCRIBE, p, 0) != 0)
                return;
            p->sub_id = 0;
        }
        if (!p->assigned || p->need_reset || p->sub_id || p->sub_pending || now < p->retry_at)
            continue;
        int64_t credit = c->conf->fetch_max_bytes / (int64_t)(nassigned ? nassigned : 1);
        if (credit < 1) credit = 1;
        Sluice__SubscribeRequest s = SLUICE__SUBSCRIBE_REQUEST__INIT;
        s.topic = p->topic;
        s.partition = p->partition;
        s.offset = p->fetch_pos;
        s.credit_bytes = (uint64_t)credit;
        uint64_t corr;
        if (d_send(d, SLUICE__API_KEY__SUBSCRIBE, &s.base, &corr) != 0 ||
            d_expect(d, corr, SLUICE__API_KEY__SUBSCRIBE, p, 0) != 0)
            return;
        p->sub_id = corr;
        p->sub_epoch = p->epoch;
        p->sub_pending = 1;
        p->credit = credit;
        p->credit_owed = 0;
    }
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        int64_t thr = p->credit / 4 > 0 ? p->credit / 4 : 1;
        if (!p->sub_id || p->credit_owed < thr) continue;
        Sluice__CreditRequest cr = SLUICE__CREDIT_REQUEST__INIT;
        cr.subscription = p->sub_id;
        cr.bytes = (uint64_t)p->credit_owed;
        if (d_send(d, SLUICE__API_KEY__CREDIT, &cr.base, NULL) != 0) return;
        p->credit_owed = 0; /* never answered: nothing to expect */
    }
}

static void *cthread_main(void *arg)
{
    sluice_consumer_t *c = arg;
    dconn_t d = {.fd = -1};
    sl_arena_init(&d.arena, NULL, 0, 4 << 20);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->terminate;
        pthread_mutex_unlock(&c->mu);
        if (stop) break;
        int64_t now = sl_mono_ms();
        int wait_ms = sl_group_work(c, now);
        now = sl_mono_ms();
        if (d.fd < 0 && now >= d.retry_at) {
            d.fd = sl_cons_connect(c->conf->bootstrap_servers, 2000, NULL, 0);
            if (d.fd < 0) d.retry_at = now + 200;
        }
        if (d.fd >= 0) {
            pthread_mutex_lock(&c->mu);
            if (c->conf->fetch_mode == SL_FETCH_PUSH)
                push_work(c, &d, now);
            else
                issue_fetches(c, &d, now);
            pthread_mutex_unlock(&c->mu);
            if (d_flush(&d) != 0) {
                d_close(c, &d);
                continue;
            }
        }
        struct pollfd pf[2] = {{.fd = c->wake_fd, .events = POLLIN},
                               {.fd = d.fd, .events = POLLIN}};
        if (d.fd >= 0 && d.olen > d.ooff) pf[1].events |= POLLOUT;
        if (wait_ms > 100 || wait_ms < 0) wait_ms = 100;
        if (d.fd < 0 && wait_ms > 50) wait_ms = 50;
        int n = poll(pf, d.fd >= 0 ? 2 : 1, wait_ms);
        if (n <= 0) continue;
        if (pf[0].revents) {
            uint64_t v;
            ssize_t r = read(c->wake_fd, &v, sizeof v);
            (void)r;
        }
        if (d.fd >= 0 && (pf[1].revents & (POLLIN | POLLERR | POLLHUP)) && d_read(c, &d) != 0)
            d_close(c, &d);
        else if (d.fd >= 0 && (pf[1].revents & POLLOUT) && d_flush(&d) != 0)
            d_close(c, &d);
    }
    d_close(c, &d);
    free(d.out);
    free(d.in);
    sl_arena_free(&d.arena);
    return NULL;
}

/* ---- API ------------------------------------------------------------------- */

SLUICE_API sluice_consumer_t *sluice_consumer_new(sluice_conf_t *conf, char *errstr,
                                                  size_t errstr_size)
{
    if (!conf) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "conf is NULL");
        return NULL;
    }
    sluice_consumer_t *c = calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->conf = conf;
    sl_callconn_init(&c->coord, 16 << 20);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        free(c);
        goto nomem;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->coord_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->next_autocommit_ms = sl_mono_ms() + conf->auto_commit_interval_ms;
    if (pthread_create(&c->thread, NULL, cthread_main, c) != 0) {
        c->conf = NULL; /* still the caller's */
        sluice_consumer_destroy(c);
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "cannot start the thread");
        return NULL;
    }
    c->thread_started = 1;
    return c;
nomem:
    if (errstr && errstr_size) snprintf(errstr, errstr_size, "out of memory");
    return NULL;
}

static void stop_thread(sluice_consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    __atomic_store_n(&c->terminate, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started) {
        sl_cons_wake(c);
        pthread_join(c->thread, NULL);
        c->thread_started = 0;
    }
}

SLUICE_API int sluice_consumer_assign(sluice_consumer_t *c, const sluice_tp_list_t *partitions)
{
    if (!c) return SLUICE_ERR__INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    int rc = SLUICE_OK;
    if (c->subscribed || c->closed) {
        rc = SLUICE_ERR__STATE;
        goto out;
    }
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->assigned) sl_cons_unassign(c, c->parts[i]);
    for (size_t i = 0; partitions && i < partitions->cnt; i++) {
        const sluice_topic_partition_t *e = &partitions->elems[i];
        if (!e->topic || e->partition < 0) {
            rc = SLUICE_ERR__INVALID_ARG;
            continue;
        }
        cpart_t *p = sl_cons_part(c, e->topic, e->partition);
        if (!p) {
            rc = SLUICE_ERR__NO_MEMORY;
            break;
        }
        sl_cons_assign_part(c, p, e->offset);
    }
out:
    pthread_mutex_unlock(&c->mu);
    sl_cons_wake(c);
    return rc;
}

SLUICE_API int sluice_consumer_subscribe(sluice_consumer_t *c, const char *const *topics, size_t n)
{
    if (!c || !topics || n == 0) return SLUICE_ERR__INVALID_ARG;
    if (!c->conf->group_id) return SLUICE_ERR__INVALID_ARG;
    char **t = calloc(n, sizeof *t);
    if (!t) return SLUICE_ERR__NO_MEMORY;
    for (size_t i = 0; i < n; i++)
        if (!topics[i] || !(t[i] = strdup(topics[i]))) {
            for (size_t j = 0; j < i; j++) free(t[j]);
            free(t);
            return topics[i] ? SLUICE_ERR__NO_MEMORY : SLUICE_ERR__INVALID_ARG;
        }
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        for (size_t j = 0; j < n; j++) free(t[j]);
        free(t);
        return SLUICE_ERR__STATE;
    }
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->assigned && !c->subscribed) sl_cons_unassign(c, c->parts[i]);
    for (size_t i = 0; i < c->ntopics; i++) free(c->topics[i]);
    free(c->topics);
    c->topics = t;
    c->ntopics = n;
    c->subscribed = 1;
    c->need_join = 1;
    pthread_mutex_unlock(&c->mu);
    sl_cons_wake(c);
    return SLUICE_OK;
}

SLUICE_API sluice_message_t *sluice_consumer_poll(sluice_consumer_t *c, int timeout_ms)
{
    if (!c) return NULL;
    /* c->cond waits on CLOCK_MONOTONIC (sluice_consumer_new). */
    struct timespec dl = sl_abstime(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : 0);
    sluice_message_t *m = NULL;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->cur) {
            citem_t *it = c->cur;
            cpart_t *p = it->p;
            if (!p->assigned || it->epoch != p->epoch) {
                drop_cur(c);
                continue;
            }
            sl_record_t r;
            int rc = sl_record_iter_next(&c->cur_it, &r, NULL);
            if (rc == 1) {
                if (r.offset < it->min_offset) continue;
                m = msg_new(p, &r, SLUICE_OK, r.offset);
                p->position = r.offset + 1;
                break;
            }
            if (rc < 0) m = msg_new(p, NULL, SLUICE_ERR__BAD_MSG, p->position);
            if (p->position < it->next_off) p->position = it->next_off;
            drop_cur(c);
            if (m) break;
            continue;
        }
        citem_t *it = c->qhead;
        if (it) {
            c->qhead = it->next;
            if (!c->qhead) c->qtail = NULL;
            cpart_t *p = it->p;
            if (p && (!p->assigned || it->epoch != p->epoch)) {
                item_done(c, it);
                continue;
            }
            if (it->err) {
                m = msg_new(p, NULL, it->err, it->offset);
                if (p && it->next_off > p->position) p->position = it->next_off;
                item_done(c, it);
                break;
            }
            if (sl_record_iter_init(&c->cur_it, it->batch, it->len, NULL, NULL) != SL_OK) {
                sl_record_iter_free(&c->cur_it);
                m = msg_new(p, NULL, SLUICE_ERR__BAD_MSG, it->min_offset);
                if (it->next_off > p->position) p->position = it->next_off;
                item_done(c, it);
                break;
            }
            c->cur = it;
            continue;
        }
        if (timeout_ms == 0) break;
        if (timeout_ms < 0)
            pthread_cond_wait(&c->cond, &c->mu);
        else if (pthread_cond_timedwait(&c->cond, &c->mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return m;
}

SLUICE_API int sluice_consumer_seek(sluice_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t offset, int timeout_ms)
{
    (void)timeout_ms; /* seeking only changes local state; nothing to wait for */
    if (!c || !topic ||
        (offset < 0 && offset != SLUICE_OFFSET_BEGINNING && offset != SLUICE_OFFSET_END &&
         offset != SLUICE_OFFSET_STORED))
        return SLUICE_ERR__INVALID_ARG;
    int rc = SLUICE_ERR__STATE;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        if (p->assigned && p->partition == partition && strcmp(p->topic, topic) == 0) {
            sl_cons_assign_part(c, p, offset);
            rc = SLUICE_OK;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

SLUICE_API int sluice_consumer_commit(sluice_consumer_t *c, const sluice_tp_list_t *offsets,
                                      int async)
{
    if (!c) return SLUICE_ERR__INVALID_ARG;
    if (!c->conf->group_id) return SLUICE_ERR__INVALID_ARG;
    sluice_tp_list_t *l;
    if (offsets) {
        l = sluice_tp_list_new(offsets->cnt);
        if (!l) return SLUICE_ERR__NO_MEMORY;
        for (size_t i = 0; i < offsets->cnt; i++) {
            sluice_topic_partition_t *e =
                sluice_tp_list_add(l, offsets->elems[i].topic, offsets->elems[i].partition);
            if (!e) {
                sluice_tp_list_destroy(l);
                return SLUICE_ERR__NO_MEMORY;
            }
            e->offset = offsets->elems[i].offset;
        }
    } else {
        l = sl_positions_list(c, 0);
        if (!l) return SLUICE_OK; /* nothing consumed: nothing to commit */
    }
    if (async) {
        /* The thread sends it at its next turn; errors are logged. */
        pthread_mutex_lock(&c->mu);
        if (c->async_commits) {
            for (size_t i = 0; i < l->cnt; i++) {
                sluice_topic_partition_t *e =
                    sluice_tp_list_add(c->async_commits, l->elems[i].topic, l->elems[i].partition);
                if (e) e->offset = l->elems[i].offset;
            }
            sluice_tp_list_destroy(l);
        } else {
            c->async_commits = l;
        }
        pthread_mutex_unlock(&c->mu);
        sl_cons_wake(c);
        return SLUICE_OK;
    }
    pthread_mutex_lock(&c->coord_mu);
    int rc = sl_commit_list(c, l);
    pthread_mutex_unlock(&c->coord_mu);
    sluice_tp_list_destroy(l);
    return rc;
}

SLUICE_API int sluice_consumer_position(sluice_consumer_t *c, sluice_tp_list_t *partitions)
{
    if (!c || !partitions) return SLUICE_ERR__INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < partitions->cnt; i++) {
        sluice_topic_partition_t *e = &partitions->elems[i];
        e->offset = SLUICE_OFFSET_INVALID;
        e->err = SLUICE_ERR__UNKNOWN_PARTITION;
        for (size_t k = 0; k < c->nparts; k++) {
            cpart_t *p = c->parts[k];
            if (p->assigned && p->partition == e->partition && strcmp(p->topic, e->topic) == 0) {
                e->offset = p->position;
                e->err = 0;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return SLUICE_OK;
}

SLUICE_API int sluice_consumer_assignment(sluice_consumer_t *c, sluice_tp_list_t **out)
{
    if (!c || !out) return SLUICE_ERR__INVALID_ARG;
    sluice_tp_list_t *l = sluice_tp_list_new(0);
    if (!l) return SLUICE_ERR__NO_MEMORY;
    int rc = SLUICE_OK;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];
        if (!p->assigned) continue;
        sluice_topic_partition_t *e = sluice_tp_list_add(l, p->topic, p->partition);
        if (!e) {
            rc = SLUICE_ERR__NO_MEMORY;
            break;
        }
        e->offset = p->position;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc) {
        sluice_tp_list_destroy(l);
        l = NULL;
    }
    *out = l;
    return rc;
}

SLUICE_API int sluice_consumer_close(sluice_consumer_t *c)
{
    if (!c) return SLUICE_ERR__INVALID_ARG;
    pthread_mutex_lock(&c->mu);
    int was = c->closed;
    c->closed = 1;
    pthread_mutex_unlock(&c->mu);
    if (was) return SLUICE_OK;
    /* The thread first, so nothing fetches or rejoins while we leave. */
    stop_thread(c);
    sl_group_close(c);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->assigned) sl_cons_unassign(c, c->parts[i]);
    pthread_mutex_unlock(&c->mu);
    return SLUICE_OK;
}

SLUICE_API void sluice_consumer_destroy(sluice_consumer_t *c)
{
    if (!c) return;
    /* Without close(): no commit and no LeaveGroup — the broker drops the
     * member after session.timeout.ms, as for a crashed process. */
    stop_thread(c);
    pthread_mutex_lock(&c->mu);
    drop_cur(c);
    while (c->qhead) {
        citem_t *it = c->qhead;
        c->qhead = it->next;
        item_done(c, it);
    }
    c->qtail = NULL;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < c->nparts; i++) {
        free(c->parts[i]->topic);
        free(c->parts[i]);
    }
    free(c->parts);
    for (size_t i = 0; i < c->ntopics; i++) free(c->topics[i]);
    free(c->topics);
    free(c->member_id);
    sluice_tp_list_destroy(c->async_commits);
    sl_callconn_free(&c->coord);
    close(c->wake_fd);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->coord_mu);
    pthread_cond_destroy(&c->cond);
    sluice_conf_destroy(c->conf);
    free(c);
}

int64_t sl_consumer_max_buffered(sluice_consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t v = c->max_buffered;
    pthread_mutex_unlock(&c->mu);
    return v;
}
