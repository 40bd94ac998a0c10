/* producer.c — the producer: accumulators, the I/O thread, delivery reports.
 *
 * Threads and locking. One mutex (p->lock) guards the topics, every
 * partition's open batch and ready queue, the delivery-report queue and the
 * memory/outq counters; one condition variable (p->cv) is broadcast on every
 * change a caller may wait for (metadata, free memory, reports, outq). The
 * I/O thread alone owns the connection and the batches it has taken for a
 * request; it holds the lock only to move batches between queues, and
 * finalizes (CRC, lz4), writes and reads without it. Application threads
 * append records under the lock (a memcpy into the open batch).
 *
 * Ordering and retries. A partition has at most one produce request on the
 * connection at a time; that request carries every batch closed for the
 * partition so far (up to 4 MiB), so throughput does not depend on
 * pipelining one partition. A request that fails retriably (connection
 * lost, request.timeout.ms, REQUEST_TIMED_OUT, STORAGE_ERROR) puts its
 * batches back at the head of the partition's queue, and the partition
 * waits retry.backoff.ms; nothing behind them can overtake, so the log
 * keeps produce order. Delivery is at-least-once: a request the broker
 * appended whose response was lost is sent again (duplicates, never gaps
 * or reordering among delivered messages).
 *
 * Memory. Each batch charges its buffer capacity plus 16 bytes per message
 * to buffer.memory from creation until its delivery reports are served (or
 * at once when there is no dr_cb): memory is bounded by buffer.memory plus
 * one lz4 copy per batch being sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "internal.h"

#define MAX_REQUEST_PAYLOAD (4u << 20)
#define MSG_MEM             ((size_t)sizeof(sl_msginfo_t))

typedef struct sl_part {
    struct sl_topic *topic;
    int32_t id;
    sl_pbatch_t *open;               /* being appended to */
    sl_pbatch_t *ready, *ready_tail; /* closed, in produce order */
    int inflight;                    /* I/O thread: a request is on the connection */
    int64_t backoff_until;           /* I/O thread: monotonic ms */
} sl_part_t;

typedef struct sl_topic {
    char *name;
    int32_t nparts; /* -1 until metadata answers */
    sl_part_t *parts;
    int32_t sticky; /* partition for null keys, -1 none yet */
    int want_meta, meta_inflight, meta_err;
} sl_topic_t;

struct sluice_producer_s {
    sluice_conf_t *conf;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pthread_t thread;
    int efd, epfd;
    int wake_pending, terminate, flush_req;
    sl_topic_t **topics;
    size_t ntopics, cap_topics;
    sl_topic_t *last_topic;
    sl_pbatch_t *drq, *drq_tail; /* reports ready for the application */
    size_t mem_used, outq;
    uint64_t rnd;
    /* I/O thread only */
    sl_conn_t conn;
    int64_t reconnect_at;
    int server_idx;
};

/* Waits on p->cv until the monotonic deadline; -1 forever. 0 or ETIMEDOUT. */
static int wait_until(sluice_producer_t *p, int64_t deadline)
{
    if (deadline < 0) return pthread_cond_wait(&p->cv, &p->lock);
    int64_t left = deadline - sl_mono_ms();
    if (left <= 0) return ETIMEDOUT;
    struct timespec ts = sl_abstime(CLOCK_REALTIME, left);
    return pthread_cond_timedwait(&p->cv, &p->lock, &ts);
}

/* Wakes the I/O thread; lock held. One eventfd write per sleep. */
static void wake_io(sluice_producer_t *p)
{
    if (p->wake_pending) return;
    p->wake_pending = 1;
    uint64_t one = 1;
    ssize_t n = write(p->efd, &one, sizeof one);
    (void)n;
}

static uint32_t rnd32(sluice_producer_t *p)
{
    p->rnd ^= p->rnd << 13;
    p->rnd ^= p->rnd >> 7;
    p->rnd ^= p->rnd << 17;
    return (uint32_t)(p->rnd >> 11);
}

static sl_topic_t *topic_get(sluice_producer_t *p, const char *name)
{
    if (p->last_topic && strcmp(p->last_topic->name, name) == 0) return p->last_topic;
    for (size_t i = 0; i < p->ntopics; i++)
        if (strcmp(p->topics[i]->name, name) == 0) return p->last_topic = p->topics[i];
    if (p->ntopics == p->cap_topics) {
        size_t nc = p->cap_topics ? p->cap_topics * 2 : 8;
        sl_topic_t **nt = realloc(p->topics, nc * sizeof *nt);
        if (!nt) return NULL;
        p->topics = nt;
        p->cap_topics = nc;
    }
    sl_topic_t *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    t->nparts = -1;
    t->sticky = -1;
    p->topics[p->ntopics++] = t;
    return p->last_topic = t;
}

/* ---- queues (lock held) --------------------------------------------------- */

static void dr_enqueue(sluice_producer_t *p, sl_pbatch_t *b, int err)
{
    b->err = err;
    b->next = NULL;
    if (!p->conf->dr_cb) {
        /* Nobody will serve reports: release at once. */
        p->mem_used -= b->mem;
        p->outq -= (size_t)b->count;
        sl_pbatch_free(b);
    } else {
        if (p->drq_tail)
            p->drq_tail->next = b;
        else
            p->drq = b;
        p->drq_tail = b;
    }
    pthread_cond_broadcast(&p->cv);
}

static void close_open(sluice_producer_t *p, sl_part_t *pt)
{
    sl_pbatch_t *b = pt->open;
    if (!b) return;
    pt->open = NULL;
    b->closed = 1;
    b->next = NULL;
    if (pt->ready_tail)
        pt->ready_tail->next = b;
    else
        pt->ready = b;
    pt->ready_tail = b;
    /* Sticky partitioning: null keys move on when their batch is done. */
    sl_topic_t *t = pt->topic;
    if (t->sticky == pt->id && t->nparts > 1) {
        int32_t n = (int32_t)(rnd32(p) % (uint32_t)(t->nparts - 1));
        t->sticky = n >= pt->id ? n + 1 : n;
    }
    wake_io(p);
}

/* Puts a request's batches back at the head of their partition, in order. */
static void requeue_front(sl_part_t *pt, sl_pbatch_t *list)
{
    if (!list) return;
    sl_pbatch_t *last = list;
    while (last->next) last = last->next;
    last->next = pt->ready;
    pt->ready = list;
    if (!pt->ready_tail) pt->ready_tail = last;
}

static int serve_reports(sluice_producer_t *p);

/* ---- produce ----------------------------------------------------------------- */

SLUICE_API int sluice_produce(sluice_producer_t *p, const char *topic, int32_t partition,
                              const void *key, size_t key_len, const void *value, size_t value_len,
                              const sluice_header_t *headers, size_t header_count,
                              int64_t timestamp, void *msg_opaque)
{
    if (!p || !topic || !*topic || partition < SLUICE_PARTITION_UA || (header_count && !headers))
        return SLUICE_ERR__INVALID_ARG;
    for (size_t i = 0; i < header_count; i++)
        if (!headers[i].key) return SLUICE_ERR__INVALID_ARG;
    if (timestamp == 0) timestamp = sl_wall_ms();
    /* Worst-case size (10-byte timestamp delta). */
    size_t rec =
        sl_record_size(INT64_MIN, INT32_MAX, key, key_len, value, value_len, headers, header_count);
    if (rec + SL_BATCH_HEADER_SIZE > (16u << 20) - 1024 ||
        rec + SL_BATCH_HEADER_SIZE + MSG_MEM > (uint64_t)p->conf->buffer_memory)
        return SLUICE_ERR_MESSAGE_TOO_LARGE;

    int64_t now = sl_mono_ms();
    int64_t block_deadline = now + p->conf->max_block_ms;
    int rc = SLUICE_OK;
    pthread_mutex_lock(&p->lock);
    sl_topic_t *t = topic_get(p, topic);
    if (!t) {
        rc = SLUICE_ERR__NO_MEMORY;
        goto out;
    }
    /* Partition counts come from the broker: like Kafka's producer, wait for
     * metadata up to max.block.ms the first time a topic is used. */
    while (t->nparts < 0) {
        if (t->meta_err) {
            rc = t->meta_err;
            t->meta_err = 0;
            goto out;
        }
        if (p->terminate) {
            rc = SLUICE_ERR__DESTROY;
            goto out;
        }
        if (!t->want_meta && !t->meta_inflight) {
            t->want_meta = 1;
            wake_io(p);
        }
        if (wait_until(p, block_deadline) == ETIMEDOUT && t->nparts < 0) {
            rc = SLUICE_ERR__TIMED_OUT;
            goto out;
        }
    }
    for (;;) {
        int32_t part = partition;
        if (part == SLUICE_PARTITION_UA) {
            if (key) {
                part = sluice_partition_for_key(key, key_len, t->nparts);
            } else {
                if (t->sticky < 0) t->sticky = (int32_t)(rnd32(p) % (uint32_t)t->nparts);
                part = t->sticky;
            }
        } else if (part >= t->nparts) {
            rc = SLUICE_ERR__UNKNOWN_PARTITION;
            goto out;
        }
        sl_part_t *pt = &t->parts[part];
        if (pt->open) {
            if (sl_pbatch_append(pt->open, timestamp, key, key_len, value, value_len, headers,
                                 header_count, msg_opaque) == 0) {
                pt->open->mem += MSG_MEM;
                p->mem_used += MSG_MEM;
                p->outq++;
                if (pt->open->len >= (size_t)p->conf->batch_size) close_open(p, pt);
                goto out;
            }
            close_open(p, pt); /* full: may move the sticky partition */
            continue;
        }
        size_t cap = (size_t)p->conf->batch_size;
        if (cap < rec + SL_BATCH_HEADER_SIZE) cap = rec + SL_BATCH_HEADER_SIZE;
        if (p->mem_used + cap + MSG_MEM > (uint64_t)p->conf->buffer_memory) {
            if (p->terminate) {
                rc = SLUICE_ERR__DESTROY;
                goto out;
            }
            if (p->drq) {
                /* The memory we wait for is held by reports nobody has
                 * served yet: serve them here, on this application thread,
                 * rather than block until max.block.ms for nothing. */
                pthread_mutex_unlock(&p->lock);
                serve_reports(p);
                pthread_mutex_lock(&p->lock);
                continue;
            }
            if (wait_until(p, block_deadline) == ETIMEDOUT &&
                p->mem_used + cap + MSG_MEM > (uint64_t)p->conf->buffer_memory) {
                rc = SLUICE_ERR__QUEUE_FULL;
                goto out;
            }
            continue; /* state may have changed while we waited */
        }
        sl_pbatch_t *b = sl_pbatch_new(cap);
        if (!b) {
            rc = SLUICE_ERR__NO_MEMORY;
            goto out;
        }
        b->topic = t;
        b->partition = part;
        b->created_ms = now;
        b->deadline_ms = now + p->conf->delivery_timeout_ms;
        b->mem = cap;
        p->mem_used += cap;
        pt->open = b;
        wake_io(p); /* arm its linger timer */
    }
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- delivery reports ----------------------------------------------------------- */

static void report_batch(sluice_producer_t *p, sl_pbatch_t *b)
{
    sluice_header_t hdrs[64];
    char keybuf[4096];
    for (int32_t i = 0; i < b->count; i++) {
        sluice_message_t m = {0};
        if (sl_pbatch_msg(b, i, &m, hdrs, 64, keybuf, sizeof keybuf) != 0) {
            m.opaque = b->msgs[i].opaque;
        }
        m.err = b->err;
        m.topic = b->topic->name;
        m.partition = b->partition;
        m.offset = b->err == SLUICE_OK && b->base_offset >= 0 ? b->base_offset + i : -1;
        p->conf->dr_cb(p, &m, p->conf->opaque);
    }
}

/* Serves the reports queued now; returns messages served. */
static int serve_reports(sluice_producer_t *p)
{
    pthread_mutex_lock(&p->lock);
    sl_pbatch_t *list = p->drq;
    p->drq = p->drq_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    int n = 0;
    size_t mem = 0, cnt = 0;
    while (list) {
        sl_pbatch_t *b = list;
        list = b->next;
        report_batch(p, b);
        n += b->count;
        mem += b->mem;
        cnt += (size_t)b->count;
        sl_pbatch_free(b);
    }
    if (cnt) {
        pthread_mutex_lock(&p->lock);
        p->mem_used -= mem;
        p->outq -= cnt;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->lock);
    }
    return n;
}

SLUICE_API int sluice_producer_poll(sluice_producer_t *p, int timeout_ms)
{
    if (!p) return 0;
    if (timeout_ms != 0) {
        int64_t deadline = timeout_ms < 0 ? -1 : sl_mono_ms() + timeout_ms;
        pthread_mutex_lock(&p->lock);
        while (!p->drq && wait_until(p, deadline) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&p->lock);
    }
    return serve_reports(p);
}

SLUICE_API int sluice_producer_flush(sluice_producer_t *p, int timeout_ms)
{
    if (!p) return SLUICE_ERR__INVALID_ARG;
    int64_t deadline = timeout_ms < 0 ? -1 : sl_mono_ms() + timeout_ms;
    pthread_mutex_lock(&p->lock);
    p->flush_req++;
    wake_io(p);
    int rc = SLUICE_OK;
    for (;;) {
        if (p->drq) {
            pthread_mutex_unlock(&p->lock);
            serve_reports(p);
            pthread_mutex_lock(&p->lock);
            wake_io(p); /* callbacks may have produced more */
            continue;
        }
        if (p->outq == 0) break;
        if (wait_until(p, deadline) == ETIMEDOUT && !p->drq && p->outq) {
            rc = SLUICE_ERR__TIMED_OUT;
            break;
        }
    }
    p->flush_req--;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

SLUICE_API size_t sluice_producer_outq_len(sluice_producer_t *p)
{
    if (!p) return 0;
    pthread_mutex_lock(&p->lock);
    size_t n = p->outq;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ---- the I/O thread ------------------------------------------------------------- */

static void free_req(sl_req_t *r)
{
    free(r->hdr);
    free(r);
}

/* A produce request ended with err (SLUICE_OK: delivered at base). */
static void produce_done(sluice_producer_t *p, sl_req_t *r, int err, int64_t base, int requeue)
{
    sl_part_t *pt = r->part;
    pthread_mutex_lock(&p->lock);
    pt->inflight = 0;
    sl_pbatch_t *list = r->batches;
    r->batches = NULL;
    if (err != SLUICE_OK && (requeue || sluice_err_is_retriable(err))) {
        /* Back to the head of the queue; those out of retries fail. Failing
         * the head does not reorder anything that is delivered. */
        sl_pbatch_t *keep = NULL, **tail = &keep;
        while (list) {
            sl_pbatch_t *b = list;
            list = b->next;
            b->next = NULL;
            if (!requeue && ++b->retries > p->conf->retries) {
                dr_enqueue(p, b, err);
            } else {
                *tail = b;
                tail = &b->next;
            }
        }
        requeue_front(pt, keep);
        pt->backoff_until = sl_mono_ms() + p->conf->retry_backoff_ms;
        if (!requeue)
            sl_client_log(p->conf, 4, "produce", "%s [%d]: %s, retrying in %d ms", pt->topic->name,
                          pt->id, sluice_err2str(err), p->conf->retry_backoff_ms);
    } else {
        while (list) {
            sl_pbatch_t *b = list;
            list = b->next;
            if (err == SLUICE_OK) {
                b->base_offset = base;
                if (base >= 0) base += b->count;
            }
            dr_enqueue(p, b, err);
        }
    }
    pthread_mutex_unlock(&p->lock);
    free_req(r);
}

static void meta_done(sluice_producer_t *p, sl_req_t *r, const Sluice__MetadataResponse *m)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->ntopics; i++) {
        sl_topic_t *t = p->topics[i];
        if (!t->meta_inflight) continue;
        t->meta_inflight = 0;
        if (!m) {
            t->want_meta = 1; /* connection lost: ask again */
            continue;
        }
        for (size_t k = 0; k < m->n_topics; k++) {
            const Sluice__TopicMetadata *tm = m->topics[k];
            if (strcmp(tm->name, t->name) != 0) continue;
            if (tm->error_code != 0) {
                t->meta_err = tm->error_code;
            } else if (t->nparts < 0 && tm->n_partitions > 0) {
                sl_part_t *parts = calloc(tm->n_partitions, sizeof *parts);
                if (!parts) {
                    t->meta_err = SLUICE_ERR__NO_MEMORY;
                    break;
                }
                for (size_t j = 0; j < tm->n_partitions; j++) {
                    parts[j].topic = t;
                    parts[j].id = (int32_t)j;
                }
                t->parts = parts;
                t->nparts = (int32_t)tm->n_partitions;
            }
        }
        if (t->nparts < 0 && !t->meta_err) t->meta_err = SLUICE_ERR__UNKNOWN_TOPIC;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
    free_req(r);
}

static void on_sent(void *ctx, sl_req_t *r)
{
    /* acks=0: written is all we will ever know. */
    produce_done(ctx, r, SLUICE_OK, -1, 0);
}

static void on_resp(void *ctx, sl_req_t *r, const sl_response_t *rs)
{
    sluice_producer_t *p = ctx;
    sl_conn_t *c = &p->conn;
    int err = rs->hdr->error_code;
    if (r->api == SLUICE__API_KEY__METADATA) {
        Sluice__MetadataResponse *m = NULL;
        if (err == 0)
            m = (Sluice__MetadataResponse *)sl_body_decode(&sluice__metadata_response__descriptor,
                                                           rs->body, rs->body_len, &c->arena, NULL);
        meta_done(p, r, m);
        return;
    }
    int64_t base = -1;
    if (err == 0) {
        Sluice__ProduceResponse *m = (Sluice__ProduceResponse *)sl_body_decode(
            &sluice__produce_response__descriptor, rs->body, rs->body_len, &c->arena, NULL);
        if (m)
            base = m->base_offset;
        else
            err = SLUICE_ERR__BAD_MSG;
    } else {
        sl_client_log(p->conf, err == SLUICE_ERR_REQUEST_TIMED_OUT ? 6 : 4, "produce",
                      "%s [%d]: broker says %s: %s", r->part->topic->name, r->part->id,
                      sluice_err2str(err), rs->hdr->error_message ? rs->hdr->error_message : "");
    }
    produce_done(p, r, err, base, 0);
}

/* The connection failed: every queued request's batches go back to their
 * partitions (counting a retry), metadata is asked again. */
static void conn_failed(sluice_producer_t *p, const char *why, int shutting_down)
{
    sl_conn_t *c = &p->conn;
    if (c->state != SL_CONN_DOWN && !shutting_down)
        sl_client_log(p->conf, 4, "net", "connection to %s lost: %s", p->conf->bootstrap_servers,
                      why);
    sl_conn_close(c);
    sl_req_t *lists[2] = {c->waitq, c->sendq};
    c->waitq = c->waitq_tail = c->sendq = c->sendq_tail = NULL;
    c->queued = 0;
    for (int i = 0; i < 2; i++) {
        for (sl_req_t *r = lists[i], *next; r; r = next) {
            next = r->next;
            if (r->api == SLUICE__API_KEY__METADATA)
                meta_done(p, r, NULL);
            else
                produce_done(p, r, SLUICE_ERR__TRANSPORT, -1, shutting_down);
        }
    }
    p->reconnect_at = sl_mono_ms() + p->conf->retry_backoff_ms;
}

/* Picks the next bootstrap server (comma-separated list) into out. */
static void next_server(sluice_producer_t *p, char *out, size_t size)
{
    const char *s = p->conf->bootstrap_servers;
    int n = 1;
    for (const char *q = s; *q; q++) n += *q == ',';
    int idx = p->server_idx++ % n;
    for (int i = 0; i < idx; i++) s = strchr(s, ',') + 1;
    size_t len = strcspn(s, ",");
    while (len && *s == ' ') s++, len--;
    if (len >= size) len = size - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

static sl_req_t *build_req(sluice_producer_t *p, int api, ProtobufCMessage *body,
                           sl_pbatch_t *batches)
{
    sl_req_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    uint32_t plen = 0;
    for (sl_pbatch_t *b = batches; b; b = b->next) plen += (uint32_t)b->wire_len;
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = (Sluice__ApiKey)api;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = r->corr = ++p->conn.next_corr;
    r->hdr_len = sl_request_size(&h, body);
    r->hdr = malloc(r->hdr_len);
    if (!r->hdr) {
        free(r);
        return NULL;
    }
    sl_request_encode(&h, body, plen, r->hdr);
    r->api = api;
    r->batches = batches;
    r->sent_ms = sl_mono_ms();
    return r;
}

/* A produce request taken from the partition (lock not held). */
typedef struct take {
    sl_part_t *pt;
    sl_pbatch_t *batches;
} take_t;

static void *io_main(void *arg)
{
    sluice_producer_t *p = arg;
    sl_conn_t *c = &p->conn;
    take_t *takes = NULL;
    size_t takes_cap = 0;
    char **meta_names = NULL;
    size_t meta_cap = 0;
    for (;;) {
        int64_t now = sl_mono_ms();
        int64_t next = now + 1000;
        size_t ntakes = 0, nmeta = 0;
        int need_conn = 0;
        pthread_mutex_lock(&p->lock);
        if (p->terminate) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        int can_send = c->state == SL_CONN_UP;
        int slots = p->conf->max_in_flight - c->queued;
        for (size_t i = 0; i < p->ntopics; i++) {
            sl_topic_t *t = p->topics[i];
            if (t->want_meta && !t->meta_inflight) {
                need_conn = 1;
                if (can_send && slots > 0) {
                    if (nmeta == meta_cap) {
                        meta_cap = meta_cap ? meta_cap * 2 : 8;
                        meta_names = realloc(meta_names, meta_cap * sizeof *meta_names);
                    }
                    meta_names[nmeta++] = t->name;
                    t->want_meta = 0;
                    t->meta_inflight = 1;
                }
            }
            for (int32_t k = 0; k < t->nparts; k++) {
                sl_part_t *pt = &t->parts[k];
                sl_pbatch_t *ob = pt->open;
                if (ob) {
                    int64_t due = ob->created_ms + p->conf->linger_ms;
                    if (p->flush_req || due <= now || ob->deadline_ms <= now)
                        close_open(p, pt);
                    else if (due < next)
                        next = due;
                }
                /* delivery.timeout.ms: batches not on the wire expire. */
                while (pt->ready && pt->ready->deadline_ms <= now && !pt->inflight) {
                    sl_pbatch_t *b = pt->ready;
                    pt->ready = b->next;
                    if (!pt->ready) pt->ready_tail = NULL;
                    dr_enqueue(p, b, SLUICE_ERR__MSG_TIMED_OUT);
                }
                if (!pt->ready || pt->inflight) continue;
                if (pt->ready->deadline_ms < next) next = pt->ready->deadline_ms;
                need_conn = 1;
                if (pt->backoff_until > now) {
                    if (pt->backoff_until < next) next = pt->backoff_until;
                    continue;
                }
                if (!can_send || slots <= 0) continue;
                /* Everything closed for this partition, up to 4 MiB. */
                sl_pbatch_t *list = pt->ready, *last = list;
                size_t bytes = last->len;
                while (last->next && bytes + last->next->len <= MAX_REQUEST_PAYLOAD) {
                    last = last->next;
                    bytes += last->len;
                }
                pt->ready = last->next;
                if (!pt->ready) pt->ready_tail = NULL;
                last->next = NULL;
                pt->inflight = 1;
                slots--;
                if (ntakes == takes_cap) {
                    takes_cap = takes_cap ? takes_cap * 2 : 16;
                    takes = realloc(takes, takes_cap * sizeof *takes);
                }
                takes[ntakes++] = (take_t){pt, list};
            }
        }
        p->wake_pending = 0;
        pthread_mutex_unlock(&p->lock);

        if (nmeta) {
            Sluice__MetadataRequest m = SLUICE__METADATA_REQUEST__INIT;
            m.n_topics = nmeta;
            m.topics = meta_names;
            sl_req_t *r = build_req(p, SLUICE__API_KEY__METADATA, &m.base, NULL);
            if (r) {
                r->expect_response = 1;
                sl_conn_enqueue(c, r);
            }
        }
        for (size_t i = 0; i < ntakes; i++) {
            sl_part_t *pt = takes[i].pt;
            int32_t records = 0;
            for (sl_pbatch_t *b = takes[i].batches; b; b = b->next) {
                sl_pbatch_finalize(b, p->conf->compression);
                records += b->count;
            }
            Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
            m.topic = pt->topic->name;
            m.partition = pt->id;
            m.acks = p->conf->acks;
            m.timeout_ms = (uint32_t)p->conf->request_timeout_ms;
            sl_req_t *r = build_req(p, SLUICE__API_KEY__PRODUCE, &m.base, takes[i].batches);
            if (!r) {
                sl_req_t tmp = {.part = pt, .batches = takes[i].batches};
                sl_req_t *heap = malloc(sizeof *heap);
                if (heap) {
                    *heap = tmp;
                    produce_done(p, heap, SLUICE_ERR__TRANSPORT, -1, 1);
                }
                continue;
            }
            r->part = pt;
            r->records = records;
            r->expect_response = p->conf->acks != 0;
            sl_conn_enqueue(c, r);
        }

        if (c->state == SL_CONN_DOWN && need_conn) {
            if (now >= p->reconnect_at) {
                char server[256];
                next_server(p, server, sizeof server);
                if (sl_conn_connect(c, p->epfd, server) < 0) {
                    sl_client_log(p->conf, 4, "net", "connect to %s failed: %s", server,
                                  strerror(errno));
                    p->reconnect_at = now + p->conf->retry_backoff_ms;
                }
            }
            if (c->state == SL_CONN_DOWN && p->reconnect_at < next) next = p->reconnect_at;
        }
        if (c->state != SL_CONN_DOWN) {
            if (c->state == SL_CONN_UP && c->sendq && sl_conn_write(c, on_sent, p) < 0)
                conn_failed(p, strerror(errno), 0);
            /* request.timeout.ms: the oldest outstanding request. */
            sl_req_t *oldest = c->waitq ? c->waitq : c->sendq;
            if (oldest) {
                int64_t due = oldest->sent_ms + p->conf->request_timeout_ms;
                if (due <= now)
                    conn_failed(p, "request timed out", 0);
                else if (due < next)
                    next = due;
            }
            sl_conn_update_events(c, p->epfd);
        }

        int timeout = (int)(next - sl_mono_ms());
        if (timeout < 0) timeout = 0;
        struct epoll_event evs[4];
        int n = epoll_wait(p->epfd, evs, 4, timeout);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t rd = read(p->efd, &v, sizeof v);
                (void)rd;
                continue;
            }
            if (c->state == SL_CONN_DOWN) continue;
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                if (sl_conn_write(c, on_sent, p) < 0) {
                    conn_failed(p, c->state == SL_CONN_CONNECTING ? "connect failed" : "write", 0);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (c->state == SL_CONN_UP && sl_conn_read(c, on_resp, p) < 0)
                    conn_failed(p, "closed by broker", 0);
            }
        }
    }
    conn_failed(p, "shutdown", 1);
    free(takes);
    free(meta_names);
    return NULL;
}

/* ---- life cycle -------------------------------------------------------------------- */

SLUICE_API sluice_producer_t *sluice_producer_new(sluice_conf_t *conf, char *errstr,
                                                  size_t errstr_size)
{
    if (!conf) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "conf is NULL");
        return NULL;
    }
    sluice_producer_t *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->conn.fd = -1;
    p->rnd = (uint64_t)sl_wall_ms() * 0x9E3779B97F4A7C15ull | 1;
    sl_arena_init(&p->conn.arena, NULL, 0, 64u << 20);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (p->efd < 0 || p->epfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->efd, &ev) < 0) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "eventfd/epoll: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->conf = conf;
    if (pthread_create(&p->thread, NULL, io_main, p) != 0) {
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "cannot start the I/O thread");
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cv);
        p->conf = NULL;
        goto fail;
    }
    return p;
nomem:
    if (errstr && errstr_size) snprintf(errstr, errstr_size, "out of memory");
fail:
    if (p) {
        if (p->efd >= 0) close(p->efd);
        if (p->epfd >= 0) close(p->epfd);
        sl_arena_free(&p->conn.arena);
        free(p);
    }
    return NULL;
}

SLUICE_API void sluice_producer_destroy(sluice_producer_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->terminate = 1;
    wake_io(p);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    /* The I/O thread has put its in-flight batches back; everything left is
     * undelivered. Report it from this (the application's) thread. */
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->ntopics; i++) {
        sl_topic_t *t = p->topics[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            sl_part_t *pt = &t->parts[k];
            close_open(p, pt);
            while (pt->ready) {
                sl_pbatch_t *b = pt->ready;
                pt->ready = b->next;
                dr_enqueue(p, b, SLUICE_ERR__DESTROY);
            }
            pt->ready_tail = NULL;
        }
    }
    pthread_mutex_unlock(&p->lock);
    serve_reports(p);
    for (size_t i = 0; i < p->ntopics; i++) {
        free(p->topics[i]->parts);
        free(p->topics[i]->name);
        free(p->topics[i]);
    }
    free(p->topics);
    free(p->conn.rbuf);
    sl_arena_free(&p->conn.arena);
    close(p->efd);
    close(p->epfd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    sluice_conf_destroy(p->conf);
    free(p);
}
