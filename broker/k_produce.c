/* k_produce.c — Kafka's Produce (v0..v7) on Sluice's storage, with the
 * idempotent producer's sequence checks.
 *
 * acks as in Sluice's protocol (h_produce.c): 0 no response (a failure
 * closes the connection, the only signal such a client gets), 1 after the
 * page-cache write, -1 after the group-commit fdatasync covering every
 * partition of the request, or REQUEST_TIMED_OUT for those not durable
 * within timeout_ms.
 *
 * Each partition's `records` must be exactly one RecordBatch v2 (Kafka's
 * rule for magic 2); older magics get UNSUPPORTED_FOR_MESSAGE_FORMAT, since
 * Sluice stores v2 only and does not convert.
 *
 * Idempotence (enable.idempotence=true): a batch with producerId ≥ 0 is
 * checked against that producer's state in the partition — its epoch and
 * the sequence ranges and offsets of its last 5 batches, as Kafka keeps
 * them (a producer has at most 5 requests in flight):
 *   - a retry of one of those 5 batches is not appended again; it is
 *     answered with the offset it got the first time;
 *   - a first sequence other than last + 1 is OUT_OF_ORDER_SEQUENCE_NUMBER;
 *   - an older epoch is INVALID_PRODUCER_EPOCH; a newer one must start at 0.
 * The state lives in memory (bounded, least recently used evicted). When
 * a batch arrives for a producer without state and its sequence is not 0
 * (the broker restarted, or the state was evicted), the state is rebuilt
 * from the batch headers of the partition's last PID_SCAN_OFFSETS offsets,
 * so a retry of a batch written before a crash is still recognised. A
 * producer found nowhere is accepted at any sequence, as Kafka accepts a
 * producer whose state expired. Check, append and update happen under one
 * mutex, so two connections of one producer cannot interleave them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "batch.h"
#include "dispatch.h"
#include "kdispatch.h"
#include "log.h"

#define PID_BATCHES      5      /* batches remembered per producer and partition */
#define PID_MAX_STATES   100000 /* producer-partition states kept; LRU beyond */
#define PID_BUCKETS      16384
#define PID_SCAN_OFFSETS 100000 /* how far back a rebuild looks */

/* ---- producer state ----------------------------------------------------------- */

typedef struct pid_batch {
    int32_t first_seq, last_seq;
    int64_t base_offset;
} pid_batch_t;

typedef struct pid_state {
    struct pid_state *hnext;         /* bucket chain */
    struct pid_state *older, *newer; /* LRU list */
    char *topic;
    int32_t partition;
    int64_t pid;
    int16_t epoch;
    pid_batch_t b[PID_BATCHES]; /* ring, newest at b[(head + n - 1) % 5] */
    int head, n;
} pid_state_t;

static struct {
    pthread_mutex_t mu;
    pid_state_t *bucket[PID_BUCKETS];
    pid_state_t *oldest, *newest;
    size_t count;
    _Atomic int64_t next_pid;
    _Atomic int64_t first_pid; /* the first id of this run, 0 before any */
} pids = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kafka_next_producer_id(broker_t *b)
{
    (void)b;
    /* Ids start at the start-up time in ms times 65536, so an id handed
     * out by an earlier run of the broker is never handed out again. */
    int64_t zero = 0, base = wall_ms() << 16;
    if (atomic_compare_exchange_strong(&pids.next_pid, &zero, base))
        atomic_store(&pids.first_pid, base);
    return atomic_fetch_add(&pids.next_pid, 1);
}

/* Was pid handed out by this run of the broker (kafka_next_producer_id)? */
static int pid_from_this_run(int64_t pid)
{
    int64_t first = atomic_load(&pids.first_pid);
    return first > 0 && pid >= first;
}

static size_t pid_hash(const char *topic, int32_t part, int64_t pid)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = topic; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ (uint32_t)part) * 1099511628211ull;
    h = (h ^ (uint64_t)pid) * 1099511628211ull;
    return (size_t)(h % PID_BUCKETS);
}

static void lru_unlink(pid_state_t *s)
{
    if (s->older)
        s->older->newer = s->newer;
    else
        pids.oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        pids.newest = s->older;
    s->older = s->newer = NULL;
}

static void lru_push(pid_state_t *s)
{
    s->older = pids.newest;
    s->newer = NULL;
    if (pids.newest)
        pids.newest->newer = s;
    else
        pids.oldest = s;
    pids.newest = s;
}

static void pid_evict_oldest(void)
{
    pid_state_t *s = pids.oldest;
    if (!s) return;
    lru_unlink(s);
    for (pid_state_t **pp = &pids.bucket[pid_hash(s->topic, s->partition, s->pid)]; *pp;
         pp = &(*pp)->hnext)
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    pids.count--;
    free(s->topic);
    free(s);
}

/* Mutex held. The state, or NULL (with create: a new one; NULL on ENOMEM). */
static pid_state_t *pid_find(const char *topic, int32_t part, int64_t pid, int create)
{
    size_t h = pid_hash(topic, part, pid);
    for (pid_state_t *s = pids.bucket[h]; s; s = s->hnext)
        if (s->pid == pid && s->partition == part && !strcmp(s->topic, topic)) {
            lru_unlink(s);
            lru_push(s);
            return s;
        }
    if (!create) return NULL;
    if (pids.count >= PID_MAX_STATES) pid_evict_oldest();
    pid_state_t *s = calloc(1, sizeof *s);
    if (!s || !(s->topic = strdup(topic))) {
        free(s);
        return NULL;
    }
    s->partition = part;
    s->pid = pid;
    s->hnext = pids.bucket[h];
    pids.bucket[h] = s;
    lru_push(s);
    pids.count++;
    return s;
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    /* Sequences wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch). */
    return (int32_t)(((int64_t)seq + n) % ((int64_t)INT32_MAX + 1));
}

/* Mutex held. Decides about a batch of producer h->producer_id: SL_OK to
 * append; SL_ERR_EXISTS when it is a retry of a remembered batch (its
 * offset in *dup_base); or an error code. */
static int pid_check(const pid_state_t *s, const sl_batch_hdr_t *h, int32_t last_seq,
                     int64_t *dup_base, sl_err_t *e)
{
    if (!s) return SL_OK;
    if (h->producer_epoch < s->epoch)
        return sl_err_set(e, SL_ERR_INVALID_PRODUCER_EPOCH,
                          "producer %" PRId64 ": epoch %d is older than %d", h->producer_id,
                          h->producer_epoch, s->epoch);
    if (h->producer_epoch > s->epoch) {
        if (h->base_sequence != 0)
            return sl_err_set(e, SL_ERR_OUT_OF_ORDER_SEQUENCE,
                              "producer %" PRId64 ": new epoch %d must start at sequence 0, not %d",
                              h->producer_id, h->producer_epoch, h->base_sequence);
        return SL_OK;
    }
    for (int i = 0; i < s->n; i++) {
        const pid_batch_t *b = &s->b[(s->head + i) % PID_BATCHES];
        if (b->first_seq == h->base_sequence && b->last_seq == last_seq) {
            *dup_base = b->base_offset;
            return SL_ERR_EXISTS;
        }
    }
    if (s->n == 0) return SL_OK;
    int32_t last = s->b[(s->head + s->n - 1) % PID_BATCHES].last_seq;
    if (h->base_sequence != seq_add(last, 1))
        return sl_err_set(e, SL_ERR_OUT_OF_ORDER_SEQUENCE,
                          "producer %" PRId64 ": sequence %d after %d", h->producer_id,
                          h->base_sequence, last);
    return SL_OK;
}

static void pid_record(pid_state_t *s, const sl_batch_hdr_t *h, int32_t last_seq, int64_t base)
{
    if (h->producer_epoch != s->epoch || s->n == 0) {
        s->epoch = h->producer_epoch;
        s->n = s->head = 0;
    }
    pid_batch_t nb = {h->base_sequence, last_seq, base};
    if (s->n < PID_BATCHES) {
        s->b[(s->head + s->n) % PID_BATCHES] = nb;
        s->n++;
    } else {
        s->b[s->head] = nb;
        s->head = (s->head + 1) % PID_BATCHES;
    }
}

/* Mutex held. Rebuilds the state of producer pid in partition p from the
 * headers of the batches in its last PID_SCAN_OFFSETS offsets (at most one
 * pread of a header per batch). Returns the state, or NULL when the
 * producer has no batch there (or on ENOMEM or a read error: the producer
 * is then treated as new). */
static pid_state_t *pid_rebuild(partition_t *p, const char *topic, int32_t part, int64_t pid)
{
    int64_t end = partition_log_end(p), start = partition_log_start(p);
    int64_t off = end - PID_SCAN_OFFSETS > start ? end - PID_SCAN_OFFSETS : start;
    pid_state_t *st = NULL;
    while (off < end) {
        seg_range_t r;
        int64_t next = off;
        if (partition_read_batches(p, off, 1u << 20, &r, &next, NULL) != SL_OK || r.len == 0) break;
        for (uint64_t pos = 0; pos + SL_BATCH_HEADER_SIZE <= r.len;) {
            uint8_t hb[SL_BATCH_HEADER_SIZE];
            if (pread(r.fd, hb, sizeof hb, (off_t)(r.pos + pos)) != (ssize_t)sizeof hb) break;
            sl_batch_hdr_t h;
            sl_batch_hdr_parse(hb, &h);
            uint64_t sz = sl_batch_total_size(hb);
            if (sz < SL_BATCH_HEADER_SIZE) break;
            if (h.producer_id == pid && (st || (st = pid_find(topic, part, pid, 1))))
                pid_record(st, &h, seq_add(h.base_sequence, h.last_offset_delta), h.base_offset);
            pos += sz;
        }
        seg_range_release(&r);
        if (next <= off) break;
        off = next;
    }
    return st;
}

/* ---- the request ---------------------------------------------------------------- */

typedef struct kprod kprod_t;

typedef struct kpart {
    kprod_t *kp;
    int32_t index;
    int code;
    int64_t base_offset, log_start;
    int waiting;    /* an fdatasync wait is outstanding */
    int flush_code; /* its verdict, written by the flusher before the post */
} kpart_t;

typedef struct ktopic {
    char *name;
    kpart_t *parts;
    int32_t nparts;
} ktopic_t;

struct kprod {
    conn_t *c;
    slot_t *s;
    int ver;
    int32_t corr;
    uint64_t t0_us;
    int pending; /* outstanding fdatasync waits */
    int answered;
    reactor_timer_t timer;
    ktopic_t *topics;
    int32_t ntopics;
};

static void kprod_free(kprod_t *kp)
{
    for (int32_t i = 0; i < kp->ntopics; i++) {
        free(kp->topics[i].name);
        free(kp->topics[i].parts);
    }
    free(kp->topics);
    free(kp);
}

static void answer(kprod_t *kp)
{
    if (kp->answered) return;
    kp->answered = 1;
    conn_t *c = kp->c;
    int any = SL_OK;
    kf_writer_t w;
    kw_init(&w, kp->corr);
    kw_i32(&w, kp->ntopics);
    for (int32_t i = 0; i < kp->ntopics; i++) {
        ktopic_t *t = &kp->topics[i];
        kw_str(&w, t->name);
        kw_i32(&w, t->nparts);
        for (int32_t j = 0; j < t->nparts; j++) {
            kpart_t *p = &t->parts[j];
            if (p->waiting && p->code == SL_OK) p->code = SL_ERR_REQUEST_TIMED_OUT;
            if (p->code != SL_OK) any = p->code;
            kw_i32(&w, p->index);
            kw_i16(&w, kafka_code(p->code));
            kw_i64(&w, p->code == SL_OK ? p->base_offset : -1);
            if (kp->ver >= 2) kw_i64(&w, -1); /* log_append_time: CreateTime topics */
            if (kp->ver >= 5) kw_i64(&w, p->code == SL_OK ? p->log_start : -1);
        }
    }
    if (kp->ver >= 1) kw_i32(&w, 0);
    met_observe(&c->w->m.produce_us, now_us() - kp->t0_us);
    kafka_send(c, kp->s, &w, KF_PRODUCE, any);
}

static void timed_out(void *arg)
{
    answer(arg); /* the waits still own kp and free it when they complete */
}

/* On the worker: one partition's flush verdict. */
static void flushed_task(void *arg)
{
    kpart_t *p = arg;
    kprod_t *kp = p->kp;
    conn_t *c = kp->c;
    c->w->pending_flushes--;
    if (!kp->answered) {
        p->waiting = 0;
        if (p->flush_code != SL_OK) p->code = p->flush_code;
    }
    if (--kp->pending == 0) {
        reactor_timer_stop(c->w->r, &kp->timer);
        answer(kp);
        conn_unref(c);
        kprod_free(kp);
    }
}

/* On the flusher thread (or this one): hand over to the worker. The code
 * is stored before the post, which orders it before flushed_task reads it. */
static void flushed(void *arg, int code, int64_t durable)
{
    (void)durable;
    kpart_t *p = arg;
    p->flush_code = code;
    if (reactor_post(p->kp->c->w->r, flushed_task, p) < 0)
        log_error("kafka", "cannot post a flush completion: out of memory");
}

/* Validates, checks the producer's sequence and appends one partition's
 * records; returns the code for the response and fills the offsets. With
 * acks=-1 and success, *pp keeps a reference for the flush wait. */
static int produce_one(conn_t *c, const char *topic, const kf_produce_part_t *pd, kpart_t *out,
                       partition_t **pp, int64_t *last_offset, sl_err_t *e)
{
    broker_t *b = c->w->b;
    *pp = NULL;
    if (!pd->records || pd->records_len == 0)
        return sl_err_set(e, SL_ERR_CORRUPT_MESSAGE, "no record batch");
    uint8_t *rec = pd->records;
    size_t len = (size_t)pd->records_len;
    if (len > 16 && rec[16] != 2)
        return sl_err_set(e, SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
                          "message format v%d: only RecordBatch v2 (magic 2) is stored", rec[16]);
    if (len < SL_BATCH_HEADER_SIZE)
        return sl_err_set(e, SL_ERR_CORRUPT_MESSAGE, "records: %zu bytes, less than a batch header",
                          len);
    if (sl_batch_total_size(rec) != len)
        return sl_err_set(e, SL_ERR_INVALID_RECORD,
                          "records must hold exactly one batch (batch size %" PRIu64 ", %zu bytes)",
                          sl_batch_total_size(rec), len);
    sl_batch_hdr_t h;
    sl_batch_hdr_parse(rec, &h);
    int rc = sl_batch_validate_produce(&h, e);
    if (rc != SL_OK) return rc;
    if (h.attributes & 0x10)
        return sl_err_set(e, SL_ERR_INVALID_RECORD, "transactional batches are not supported");
    partition_t *p;
    if ((rc = dispatch_partition(c, topic, pd->index, 1, &p, e)) != SL_OK) return rc;
    if (b->conf.deep_validation) {
        sl_batch_limits_t lim = {0, 0};
        if ((rc = sl_batch_validate_deep(rec, len, &lim, e)) != SL_OK) {
            partition_unref(p);
            return rc;
        }
    }
    partition_append_info_t info;
    if (h.producer_id < 0) {
        rc = partition_append(p, rec, len, wall_ms(), &info, e);
    } else {
        int32_t last_seq = seq_add(h.base_sequence, h.last_offset_delta);
        int64_t dup = -1;
        pthread_mutex_lock(&pids.mu);
        pid_state_t *st = pid_find(topic, pd->index, h.producer_id, 0);
        /* No state: a producer this run handed its id to and that starts
         * at 0 is new; any other may have batches in the log already (a
         * retry of its first batch after a restart, too). */
        if (!st && (h.base_sequence != 0 || !pid_from_this_run(h.producer_id)))
            st = pid_rebuild(p, topic, pd->index, h.producer_id);
        rc = pid_check(st, &h, last_seq, &dup, e);
        if (rc == SL_OK) rc = partition_append(p, rec, len, wall_ms(), &info, e);
        if (rc == SL_OK && (st || (st = pid_find(topic, pd->index, h.producer_id, 1))))
            pid_record(st, &h, last_seq, info.base_offset);
        pthread_mutex_unlock(&pids.mu);
        if (rc == SL_ERR_EXISTS) {
            /* A retry of a batch already in the log: its first offset again,
             * and durable once everything up to the log end is. */
            log_debug("kafka", "producer %" PRId64 " %s/%d: duplicate of sequence %d at %" PRId64,
                      h.producer_id, topic, pd->index, h.base_sequence, dup);
            rc = SL_OK;
            info.base_offset = dup;
            info.last_offset = dup + h.last_offset_delta;
        }
    }
    if (rc != SL_OK) {
        partition_unref(p);
        return rc;
    }
    out->base_offset = info.base_offset;
    out->log_start = partition_log_start(p);
    *last_offset = info.last_offset;
    *pp = p;
    return SL_OK;
}

void k_produce(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us)
{
    (void)s;
    kf_produce_req_t *m = &r->u.produce;
    int acks = m->acks;
    broker_t *b = c->w->b;
    kprod_t *kp = calloc(1, sizeof *kp);
    if (kp) kp->topics = calloc((size_t)m->ntopics + 1, sizeof *kp->topics);
    if (!kp || !kp->topics) {
        free(kp);
        conn_close(c, "out of memory");
        return;
    }
    kp->c = c;
    kp->ver = r->h.api_version;
    kp->corr = r->h.correlation_id;
    kp->t0_us = t0_us;
    if (acks != 0 && !(kp->s = conn_slot(c))) {
        kprod_free(kp);
        conn_close(c, "out of memory");
        return;
    }
    int bad_acks = acks != 0 && acks != 1 && acks != -1;
    char why[320] = "";
    for (int32_t i = 0; i < m->ntopics; i++) {
        kf_produce_topic_t *t = &m->topics[i];
        ktopic_t *kt = &kp->topics[kp->ntopics++];
        kt->name = strdup(t->name);
        kt->parts = calloc((size_t)t->nparts + 1, sizeof *kt->parts);
        if (!kt->name || !kt->parts) {
            kprod_free(kp);
            conn_close(c, "out of memory");
            return;
        }
        kt->nparts = t->nparts;
        for (int32_t j = 0; j < t->nparts; j++) {
            kpart_t *kpp = &kt->parts[j];
            kpp->kp = kp;
            kpp->index = t->parts[j].index;
            sl_err_t e;
            e.msg[0] = 0;
            partition_t *p = NULL;
            int64_t last = -1;
            int rc = bad_acks ? sl_err_set(&e, SL_ERR_INVALID_REQUIRED_ACKS,
                                           "acks=%d; use 0, 1 or -1", acks)
                              : produce_one(c, t->name, &t->parts[j], kpp, &p, &last, &e);
            kpp->code = rc;
            if (rc != SL_OK) {
                log_debug("kafka", "#%" PRIu64 " produce %s/%d: %s: %s", c->id, t->name, kpp->index,
                          sl_code_name(rc), e.msg);
                if (!why[0])
                    snprintf(why, sizeof why, "%s/%d: %s: %s", t->name, kpp->index,
                             sl_code_name(rc), e.msg);
                continue;
            }
            if (acks == -1) {
                kpp->waiting = 1;
                kp->pending++;
                c->w->pending_flushes++;
                if (kp->pending == 1) conn_ref(c);
                if (flusher_wait(store_flusher(b->store), p, last, flushed, kpp) != SL_OK) {
                    kpp->waiting = 0;
                    kpp->code = SL_ERR_NOMEM;
                    kp->pending--;
                    c->w->pending_flushes--;
                    if (kp->pending == 0) conn_unref(c);
                }
            }
            partition_unref(p);
        }
    }
    if (acks == 0) {
        kafka_count(c, KF_PRODUCE, why[0] ? SL_ERR_INVALID_REQUEST : SL_OK);
        kprod_free(kp);
        if (why[0]) {
            char msg[400];
            snprintf(msg, sizeof msg, "acks=0 produce failed: %s", why);
            conn_close(c, msg);
        }
        return;
    }
    if (kp->pending == 0) {
        answer(kp);
        kprod_free(kp);
        return;
    }
    /* acks=-1: answered when the last wait completes or at timeout_ms;
     * the waits own kp (flushed_task frees it). */
    reactor_timer_init(&kp->timer, timed_out, kp);
    reactor_timer_start(c->w->r, &kp->timer, m->timeout_ms > 0 ? (uint64_t)m->timeout_ms : 30000);
}
