/* k_fetch.c — Kafka's Fetch (v0..v11) and ListOffsets (v0..v2).
 *
 * Fetch answers every requested partition in request order from the
 * segment files: the response is written with a kf_writer_t and each
 * partition's record bytes are spliced in as a pinned file range, sent with
 * sendfile (conn_respond_raw). Per partition (kafka-protocol.md §5):
 *   - unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION, HWM -1;
 *   - offset below the log start or above the log end: OFFSET_OUT_OF_RANGE
 *     with the real HWM and log start; at the log end: no records;
 *   - otherwise bytes from the batch holding the offset, at most
 *     partition_max_bytes and what is left of max_bytes. The first batch of
 *     the first partition with data is sent whole even when it is larger
 *     (KIP-74, so a consumer always progresses); later partitions may end
 *     in a partial batch, which clients skip and fetch again.
 * HWM = LSO = the log end (no transactions); aborted_transactions empty;
 * preferred_read_replica -1. Versions below 4 are answered in their own
 * layout but still carry RecordBatch v2 (Sluice stores nothing else); only
 * clients that read magic 2 can use them.
 *
 * Long poll: with fewer than min_bytes available and no partition in error,
 * the request waits up to max_wait_ms (capped by fetch.max.wait.cap.ms) on
 * this worker and is rebuilt whenever a watched partition grows, exactly
 * like Sluice's own fetch (h_fetch.c), watching several partitions.
 *
 * Fetch sessions (KIP-227) are not kept: session_id 0 is answered as a full
 * fetch and no session is created; a non-zero session id gets
 * FETCH_SESSION_ID_NOT_FOUND, after which clients fall back to full fetches.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kdispatch.h"
#include "log.h"
#include "subscribe.h"

#define FETCH_MAX_PARTITIONS 100000 /* partitions named in one request */

typedef struct kfpart {
    int32_t partition;
    int64_t offset;
    int32_t max_bytes;
    partition_t *p; /* NULL: unknown */
    int code;       /* the lookup's error, when p is NULL */
} kfpart_t;

typedef struct kftopic {
    char *name;
    kfpart_t *parts;
    int32_t nparts;
} kftopic_t;

typedef struct kfetch {
    struct kfetch *next, *prev; /* worker's list of waits */
    worker_t *w;
    conn_t *c;
    slot_t *slot;
    int32_t corr;
    int ver;
    uint64_t t0_us;
    int32_t min_bytes, max_bytes;
    int top_code; /* FETCH_SESSION_ID_NOT_FOUND, else 0 */
    kftopic_t *topics;
    int32_t ntopics;
    reactor_timer_t timer;
} kfetch_t;

static void kfetch_free(kfetch_t *f)
{
    for (int32_t i = 0; i < f->ntopics; i++) {
        for (int32_t j = 0; j < f->topics[i].nparts; j++)
            if (f->topics[i].parts[j].p) partition_unref(f->topics[i].parts[j].p);
        free(f->topics[i].parts);
        free(f->topics[i].name);
    }
    free(f->topics);
    free(f);
}

/* Builds the response from what the partitions hold now and sends it when
 * it has min_bytes, an error, or `force`; returns 1 when sent. */
static int try_answer(kfetch_t *f, int force)
{
    conn_t *c = f->c;
    size_t nparts = 0;
    for (int32_t i = 0; i < f->ntopics; i++) nparts += (size_t)f->topics[i].nparts;
    seg_range_t *ranges = calloc(nparts + 1, sizeof *ranges);
    size_t *cuts = calloc(nparts + 1, sizeof *cuts);
    if (!ranges || !cuts) {
        free(ranges);
        free(cuts);
        conn_close(c, "out of memory");
        return 1;
    }
    size_t nr = 0;
    int64_t total = 0, budget = f->max_bytes;
    int errors = f->top_code != SL_OK, first_data = 1;
    kf_writer_t w;
    kw_init(&w, f->corr);
    if (f->ver >= 1) kw_i32(&w, 0);
    if (f->ver >= 7) {
        kw_i16(&w, kafka_code(f->top_code));
        kw_i32(&w, 0); /* session_id: no session */
    }
    kw_i32(&w, f->top_code ? 0 : f->ntopics);
    for (int32_t i = 0; !f->top_code && i < f->ntopics; i++) {
        kftopic_t *t = &f->topics[i];
        kw_str(&w, t->name);
        kw_i32(&w, t->nparts);
        for (int32_t j = 0; j < t->nparts; j++) {
            kfpart_t *fp = &t->parts[j];
            int code = fp->p ? SL_OK : fp->code;
            int64_t hwm = -1, lso = -1, start = -1;
            seg_range_t range = {.fd = -1};
            if (fp->p) {
                hwm = lso = partition_log_end(fp->p);
                start = partition_log_start(fp->p);
                int64_t left = budget - total;
                int64_t lim = fp->max_bytes < left ? fp->max_bytes : left;
                sl_err_t e;
                if (fp->offset < start || fp->offset > hwm) {
                    code = SL_ERR_OFFSET_OUT_OF_RANGE;
                } else if (fp->offset < hwm && (lim > 0 || first_data)) {
                    code =
                        partition_read(fp->p, fp->offset, lim > 0 ? (uint64_t)lim : 1, &range, &e);
                    /* The first partition with data may exceed the limits
                     * by its first batch; later ones are cut to them. */
                    if (code == SL_OK && range.len > 0 && !first_data &&
                        range.len > (uint64_t)lim) {
                        range.len = (uint64_t)lim;
                    }
                    if (code == SL_OK && range.len > 0) first_data = 0;
                    if (code == SL_ERR_OFFSET_OUT_OF_RANGE) /* retention moved the start */
                        start = partition_log_start(fp->p);
                }
            }
            if (code != SL_OK) errors = 1;
            kw_i32(&w, fp->partition);
            kw_i16(&w, kafka_code(code));
            kw_i64(&w, hwm);
            if (f->ver >= 4) kw_i64(&w, lso);
            if (f->ver >= 5) kw_i64(&w, start);
            if (f->ver >= 4) kw_i32(&w, 0);   /* aborted_transactions: none */
            if (f->ver >= 11) kw_i32(&w, -1); /* preferred_read_replica */
            kw_i32(&w, (int32_t)range.len);
            if (range.len > 0) {
                cuts[nr] = w.len;
                ranges[nr++] = range;
                total += (int64_t)range.len;
            }
        }
    }
    if (!force && !errors && total < (f->min_bytes > 0 ? f->min_bytes : 0)) {
        kw_free(&w);
        for (size_t i = 0; i < nr; i++) seg_range_release(&ranges[i]);
        free(ranges);
        free(cuts);
        return 0;
    }
    kafka_count(c, KF_FETCH, f->top_code);
    met_observe(&c->w->m.fetch_us, now_us() - f->t0_us);
    if (kw_finish(&w, (uint64_t)total) < 0) {
        for (size_t i = 0; i < nr; i++) seg_range_release(&ranges[i]);
        conn_close(c, "out of memory building a response");
    } else {
        conn_respond_raw(c, f->slot, w.buf, w.len, cuts, ranges, nr);
    }
    free(ranges);
    free(cuts);
    return 1;
}

static uint64_t worker_bit(const worker_t *w)
{
    return 1ull << (w->id & 63);
}

static int watches(const kfetch_t *f, const partition_t *p)
{
    for (int32_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i].nparts; j++)
            if (f->topics[i].parts[j].p == p) return 1;
    return 0;
}

int kfetch_waits_watching(const worker_t *w, const partition_t *p)
{
    for (const kfetch_t *f = w->kwaits; f; f = f->next)
        if (watches(f, p)) return 1;
    return 0;
}

static void remove_wait(kfetch_t *f)
{
    worker_t *w = f->w;
    reactor_timer_stop(w->r, &f->timer);
    if (f->prev)
        f->prev->next = f->next;
    else
        w->kwaits = f->next;
    if (f->next) f->next->prev = f->prev;
    f->next = f->prev = NULL;
    /* A bit stays while something else on this worker watches the partition. */
    for (int32_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i].nparts; j++) {
            partition_t *p = f->topics[i].parts[j].p;
            if (p && !kfetch_waits_watching(w, p) && !fetch_waits_watching(w, p) &&
                !subscribe_watching(w, p))
                atomic_fetch_and(partition_user_word(p), ~worker_bit(w));
        }
    conn_unref(f->c);
    kfetch_free(f);
}

static void expire(void *arg)
{
    kfetch_t *f = arg;
    try_answer(f, 1);
    remove_wait(f);
}

void kfetch_waits_check(worker_t *w, partition_t *p)
{
    kfetch_t *f = w->kwaits;
    while (f) {
        kfetch_t *next = f->next;
        if (watches(f, p) && (f->c->closed || try_answer(f, 0))) remove_wait(f);
        f = next;
    }
}

void kfetch_waits_expire_all(worker_t *w)
{
    while (w->kwaits) expire(w->kwaits);
}

void k_fetch(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    kf_fetch_req_t *m = &r->u.fetch;
    broker_t *b = c->w->b;
    kfetch_t *f = calloc(1, sizeof *f);
    if (f) f->topics = calloc((size_t)m->ntopics + 1, sizeof *f->topics);
    if (!f || !f->topics) {
        free(f);
        conn_close(c, "out of memory");
        return;
    }
    f->w = c->w;
    f->c = c;
    f->slot = s;
    f->corr = r->h.correlation_id;
    f->ver = r->h.api_version;
    f->t0_us = t0_us;
    f->min_bytes = m->min_bytes;
    f->max_bytes = m->max_bytes > 0 ? m->max_bytes : 0;
    if (r->h.api_version >= 7 && m->session_id != 0)
        f->top_code = SL_ERR_FETCH_SESSION_ID_NOT_FOUND;
    int64_t nparts = 0;
    for (int32_t i = 0; i < m->ntopics && !f->top_code; i++) {
        kf_fetch_topic_t *t = &m->topics[i];
        kftopic_t *ft = &f->topics[f->ntopics++];
        nparts += t->nparts;
        ft->name = strdup(t->topic);
        ft->parts = calloc((size_t)t->nparts + 1, sizeof *ft->parts);
        if (!ft->name || !ft->parts || nparts > FETCH_MAX_PARTITIONS) {
            kfetch_free(f);
            if (nparts > FETCH_MAX_PARTITIONS)
                conn_close(c, "fetch names more than 100000 partitions");
            else
                conn_close(c, "out of memory");
            return;
        }
        ft->nparts = t->nparts;
        for (int32_t j = 0; j < t->nparts; j++) {
            kfpart_t *fp = &ft->parts[j];
            fp->partition = t->parts[j].partition;
            fp->offset = t->parts[j].fetch_offset;
            fp->max_bytes =
                t->parts[j].partition_max_bytes > 0 ? t->parts[j].partition_max_bytes : 0;
            sl_err_t e;
            fp->code = dispatch_partition(c, t->topic, fp->partition, 0, &fp->p, &e);
            if (fp->code != SL_OK) fp->p = NULL;
        }
    }
    int64_t wait_ms = m->max_wait_ms > 0 ? m->max_wait_ms : 0;
    if (wait_ms > b->conf.fetch_max_wait_cap_ms) wait_ms = b->conf.fetch_max_wait_cap_ms;
    int force = wait_ms == 0 || m->min_bytes <= 0 || c->w->draining;
    if (try_answer(f, force)) {
        kfetch_free(f);
        return;
    }
    worker_t *w = c->w;
    conn_ref(c);
    f->next = w->kwaits;
    if (w->kwaits) w->kwaits->prev = f;
    w->kwaits = f;
    reactor_timer_init(&f->timer, expire, f);
    reactor_timer_start(w->r, &f->timer, (uint64_t)wait_ms);
    /* Publish interest, then look again: an append between the first try
     * and the bits would otherwise go unnoticed until max_wait. */
    for (int32_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i].nparts; j++)
            if (f->topics[i].parts[j].p)
                atomic_fetch_or(partition_user_word(f->topics[i].parts[j].p), worker_bit(w));
    if (try_answer(f, 0)) remove_wait(f);
}

/* ---- ListOffsets ---------------------------------------------------------- */

void k_list_offsets(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)t0_us;
    kf_list_offsets_req_t *m = &r->u.list_offsets;
    int ver = r->h.api_version, any = SL_OK;
    kf_writer_t w;
    kw_init(&w, r->h.correlation_id);
    if (ver >= 2) kw_i32(&w, 0);
    kw_i32(&w, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        kf_list_offsets_topic_t *t = &m->topics[i];
        kw_str(&w, t->name);
        kw_i32(&w, t->nparts);
        for (int32_t j = 0; j < t->nparts; j++) {
            kf_list_offsets_part_t *lp = &t->parts[j];
            partition_t *p = NULL;
            sl_err_t e;
            int64_t off = -1;
            int rc = dispatch_partition(c, t->name, lp->partition, 0, &p, &e);
            if (rc == SL_OK) {
                if (lp->timestamp == -1)
                    off = partition_log_end(p);
                else if (lp->timestamp == -2)
                    off = partition_log_start(p);
                else if (lp->timestamp < 0)
                    rc = SL_ERR_INVALID_REQUEST;
                else if ((rc = partition_offset_for_time(p, lp->timestamp, &off, &e)) == SL_OK &&
                         off == partition_log_end(p))
                    off = -1; /* no record that late: Kafka's "none" */
                partition_unref(p);
            }
            if (rc != SL_OK) {
                any = rc;
                off = -1;
            }
            kw_i32(&w, lp->partition);
            kw_i16(&w, kafka_code(rc));
            if (ver == 0) {
                kw_i32(&w, rc == SL_OK && off >= 0 && lp->max_num_offsets > 0 ? 1 : 0);
                if (rc == SL_OK && off >= 0 && lp->max_num_offsets > 0) kw_i64(&w, off);
            } else {
                /* The record's own timestamp is not looked up: -1, which
                 * clients read as "unknown". */
                kw_i64(&w, -1);
                kw_i64(&w, off);
            }
        }
    }
    kafka_send(c, s, &w, KF_LIST_OFFSETS, any);
}
