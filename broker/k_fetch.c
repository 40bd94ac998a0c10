/* k_fetch.c — Kafka's Fetch (v0..v11) and ListOffsets (v0..v2).
 *
 * Fetch decodes into the fetch service (svc_fetch.h: the read plan over
 * every requested partition in request order, the limits, the long poll)
 * and encodes its answer: the response is written with a kf_writer_t and
 * each partition's record bytes are spliced in as a pinned file range,
 * sent with sendfile (conn_respond_raw). Per partition (kafka-protocol.md
 * §5): unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION, HWM -1;
 * outside [log start, log end]: OFFSET_OUT_OF_RANGE with the real HWM and
 * log start. HWM = LSO = the log end (no transactions);
 * aborted_transactions empty; preferred_read_replica -1. Versions below 4
 * are answered in their own layout but still carry RecordBatch v2 (Sluice
 * stores nothing else); only clients that read magic 2 can use them.
 *
 * Fetch sessions (KIP-227) are not kept: session_id 0 is answered as a full
 * fetch and no session is created; a non-zero session id gets
 * FETCH_SESSION_ID_NOT_FOUND, after which clients fall back to full fetches.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kdispatch.h"
#include "svc_fetch.h"
#include "svc_topics.h"

typedef struct kftopic {
    char *name;
    int32_t nparts;
} kftopic_t;

typedef struct kfetch {
    fetch_req_t rq;
    slot_t *slot;
    int32_t corr;
    int ver;
    kftopic_t *topics;
    int32_t ntopics;
    int32_t *ids; /* each part's partition id, for the answer */
} kfetch_t;

static void release(fetch_req_t *rq)
{
    kfetch_t *f = rq->owner;
    for (int32_t i = 0; i < f->ntopics; i++) free(f->topics[i].name);
    free(f->topics);
    free(f->ids);
    free(rq->parts);
    free(f);
}

/* Sends the answer; top_code is FETCH_SESSION_ID_NOT_FOUND or SL_OK. */
static void send_answer(conn_t *c, kfetch_t *f, int top_code)
{
    fetch_req_t *rq = &f->rq;
    size_t n = top_code ? 0 : rq->nparts;
    seg_range_t *ranges = calloc(n + 1, sizeof *ranges);
    size_t *cuts = calloc(n + 1, sizeof *cuts);
    if (!ranges || !cuts) {
        free(ranges);
        free(cuts);
        for (size_t i = 0; i < n; i++) seg_range_release(&rq->parts[i].range);
        conn_close(c, "out of memory");
        return;
    }
    size_t nr = 0;
    kf_writer_t w;
    kw_init(&w, f->corr);
    if (f->ver >= 1) kw_i32(&w, 0);
    if (f->ver >= 7) {
        kw_i16(&w, kafka_code(top_code));
        kw_i32(&w, 0); /* session_id: no session */
    }
    kw_i32(&w, top_code ? 0 : f->ntopics);
    fetch_part_t *fp = rq->parts;
    for (int32_t i = 0; !top_code && i < f->ntopics; i++) {
        kw_str(&w, f->topics[i].name);
        kw_i32(&w, f->topics[i].nparts);
        for (int32_t j = 0; j < f->topics[i].nparts; j++, fp++) {
            int64_t hwm = fp->high_watermark;
            kw_i32(&w, f->ids[fp - rq->parts]);
            kw_i16(&w, kafka_code(fp->rcode));
            kw_i64(&w, hwm);
            if (f->ver >= 4) kw_i64(&w, hwm); /* last stable offset */
            if (f->ver >= 5) kw_i64(&w, fp->log_start);
            if (f->ver >= 4) kw_i32(&w, 0);   /* aborted_transactions: none */
            if (f->ver >= 11) kw_i32(&w, -1); /* preferred_read_replica */
            kw_i32(&w, (int32_t)fp->range.len);
            if (fp->range.len > 0) {
                cuts[nr] = w.len;
                ranges[nr++] = fp->range;
            }
        }
    }
    kafka_count(c, KF_FETCH, top_code);
    if (kw_finish(&w, top_code ? 0 : (uint64_t)rq->total_bytes) < 0) {
        for (size_t i = 0; i < nr; i++) seg_range_release(&ranges[i]);
        conn_close(c, "out of memory building a response");
    } else {
        conn_respond_raw(c, f->slot, w.buf, w.len, cuts, ranges, nr);
    }
    free(ranges);
    free(cuts);
}

static void done(fetch_req_t *rq)
{
    send_answer(rq->c, rq->owner, SL_OK);
}

void k_fetch(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    kf_fetch_req_t *m = &r->u.fetch;
    int64_t nparts = 0;
    for (int32_t i = 0; i < m->ntopics; i++) nparts += m->topics[i].nparts;
    if (nparts > BROKER_FETCH_MAX_PARTITIONS) {
        char why[80];
        snprintf(why, sizeof why, "fetch names more than %d partitions",
                 BROKER_FETCH_MAX_PARTITIONS);
        conn_close(c, why);
        return;
    }
    kfetch_t *f = calloc(1, sizeof *f);
    fetch_part_t *parts = calloc((size_t)nparts + 1, sizeof *parts);
    if (f) {
        f->topics = calloc((size_t)m->ntopics + 1, sizeof *f->topics);
        f->ids = calloc((size_t)nparts + 1, sizeof *f->ids);
    }
    if (!f || !parts || !f->topics || !f->ids) {
        if (f) free(f->topics), free(f->ids);
        free(f);
        free(parts);
        conn_close(c, "out of memory");
        return;
    }
    fetch_req_t *rq = &f->rq;
    rq->owner = f;
    rq->parts = parts;
    rq->release = release;
    rq->done = done;
    rq->c = c;
    rq->t0_us = t0_us;
    f->slot = s;
    f->corr = r->h.correlation_id;
    f->ver = r->h.api_version;
    if (r->h.api_version >= 7 && m->session_id != 0) {
        send_answer(c, f, SL_ERR_FETCH_SESSION_ID_NOT_FOUND);
        release(rq);
        return;
    }
    fetch_part_t *fp = parts;
    for (int32_t i = 0; i < m->ntopics; i++) {
        kf_fetch_topic_t *t = &m->topics[i];
        kftopic_t *ft = &f->topics[f->ntopics++];
        if (!(ft->name = strdup(t->topic))) {
            for (fetch_part_t *q = parts; q < fp; q++)
                if (q->p) partition_unref(q->p);
            release(rq);
            conn_close(c, "out of memory");
            return;
        }
        ft->nparts = t->nparts;
        for (int32_t j = 0; j < t->nparts; j++, fp++) {
            f->ids[fp - parts] = t->parts[j].partition;
            fp->offset = t->parts[j].fetch_offset;
            fp->max_bytes =
                t->parts[j].partition_max_bytes > 0 ? t->parts[j].partition_max_bytes : 0;
            sl_err_t e;
            fp->code = topics_partition(c->w->b, t->topic, t->parts[j].partition, 0, &fp->p, &e);
            if (fp->code != SL_OK) fp->p = NULL;
        }
    }
    rq->nparts = (size_t)nparts;
    rq->min_bytes = m->min_bytes;
    rq->max_bytes = m->max_bytes > 0 ? m->max_bytes : 0;
    rq->max_wait_ms = m->max_wait_ms;
    fetch_start(rq);
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
            int rc = topics_partition(c->w->b, t->name, lp->partition, 0, &p, &e);
            if (rc == SL_OK) {
                rc = topics_offset_for(p, lp->timestamp, &off, &e);
                if (rc == SL_OK && lp->timestamp >= 0 && off == partition_log_end(p))
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
