/* test_producer.c — libsluice's producer against the real sluiced: every
 * acks level with offsets in the reports, batches closing on linger.ms and
 * on batch.size, key partitioning and per-partition order, retries across a
 * SIGKILL restart (at-least-once: no gaps, no reordering), delivery.timeout
 * with the broker gone, buffer.memory blocking then QUEUE_FULL, flush
 * timeouts, and lz4 batches read back with proto/batch.h's iterator. */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"
#include "sluice/sluice.h"

static harness_t h;

/* Delivery report bookkeeping. */
typedef struct drs {
    int n, ok, bad, last_err;
    int64_t *offsets; /* by message index (opaque) */
    int32_t *parts;
    int cap;
} drs_t;

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    drs_t *d = opaque;
    d->n++;
    if (m->err == SLUICE_OK)
        d->ok++;
    else {
        d->bad++;
        d->last_err = m->err;
    }
    long idx = (long)(intptr_t)m->opaque;
    if (idx >= 0 && idx < d->cap) {
        d->offsets[idx] = m->offset;
        d->parts[idx] = m->partition;
    }
}

static void drs_init(drs_t *d, int cap)
{
    memset(d, 0, sizeof *d);
    d->cap = cap;
    d->offsets = calloc((size_t)cap, sizeof *d->offsets);
    d->parts = calloc((size_t)cap, sizeof *d->parts);
}

static void drs_free(drs_t *d)
{
    free(d->offsets);
    free(d->parts);
}

static sluice_producer_t *mk(drs_t *d, const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h.port);
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2) {
        sluice_conf_res_t r = sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err);
        CHECK_MSG(r == SLUICE_CONF_OK, "%s", err);
    }
    if (d) {
        sluice_conf_set_dr_cb(c, dr_cb);
        sluice_conf_set_opaque(c, d);
    }
    sluice_producer_t *p = sluice_producer_new(c, err, sizeof err);
    CHECK_FATAL(p);
    return p;
}

/* Reads every record of a partition; calls fn per record. Returns count. */
static long read_all(const char *topic, int32_t part, void (*fn)(const sl_record_t *, void *),
                     void *arg, int *codec_seen)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    int64_t next = 0, hw = 0;
    long n = 0;
    for (int guard = 0; guard < 100000; guard++) {
        const uint8_t *p;
        size_t len;
        int rc = sc_fetch(&c, topic, part, next, 1 << 20, 0, 0, &p, &len, &hw);
        CHECK_EQ_INT(rc, 0);
        if (rc || len == 0) break;
        size_t off = 0;
        while (off + SL_BATCH_HEADER_SIZE <= len) {
            uint64_t sz = sl_batch_total_size(p + off);
            if (sz < SL_BATCH_HEADER_SIZE || off + sz > len) break;
            sl_record_iter_t it;
            sl_err_t err;
            CHECK_EQ_INT(sl_record_iter_init(&it, p + off, (size_t)sz, NULL, &err), SL_OK);
            if (codec_seen) *codec_seen |= 1 << (it.hdr.attributes & 7);
            sl_record_t r;
            while (sl_record_iter_next(&it, &r, &err) == 1) {
                if (r.offset < next) continue;
                if (fn) fn(&r, arg);
                n++;
                next = r.offset + 1;
            }
            sl_record_iter_free(&it);
            off += (size_t)sz;
        }
        if (next >= hw) break;
    }
    sc_close(&c);
    return n;
}

static int64_t log_end(const char *topic, int32_t part)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    int64_t off = -1;
    int rc = sc_list_offsets(&c, topic, part, -1, &off);
    sc_close(&c);
    return rc == 0 ? off : -1;
}

static long count_batches(const char *topic, int32_t part)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    const uint8_t *p;
    size_t len;
    int64_t hw;
    long n = 0;
    if (sc_fetch(&c, topic, part, 0, 16 << 20, 0, 0, &p, &len, &hw) == 0) {
        size_t off = 0;
        while (off + SL_BATCH_HEADER_SIZE <= len) {
            uint64_t sz = sl_batch_total_size(p + off);
            if (sz < SL_BATCH_HEADER_SIZE || off + sz > len) break;
            n++;
            off += (size_t)sz;
        }
    }
    sc_close(&c);
    return n;
}

static void test_acks(void)
{
    const char *levels[] = {"0", "1", "all"};
    for (int l = 0; l < 3; l++) {
        char topic[32];
        snprintf(topic, sizeof topic, "acks-%d", l);
        drs_t d;
        const int N = 2000;
        drs_init(&d, N);
        const char *kv[] = {"acks", levels[l], "linger.ms", "2", NULL};
        sluice_producer_t *p = mk(&d, kv);
        for (int i = 0; i < N; i++) {
            char v[32];
            snprintf(v, sizeof v, "m%d", i);
            CHECK_EQ_INT(
                sluice_produce(p, topic, 0, NULL, 0, v, strlen(v), NULL, 0, 0, (void *)(intptr_t)i),
                SLUICE_OK);
        }
        CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
        CHECK_EQ_INT(sluice_producer_outq_len(p), 0);
        CHECK_EQ_INT(d.n, N);
        CHECK_EQ_INT(d.ok, N);
        int bad = 0;
        for (int i = 0; i < N; i++)
            if (d.offsets[i] != (l == 0 ? -1 : i)) bad++;
        CHECK_MSG(bad == 0, "acks=%s: %d wrong offsets", levels[l], bad);
        sluice_producer_destroy(p);
        CHECK_EQ_INT(log_end(topic, 0), N);
        drs_free(&d);
    }
}

static void test_linger(void)
{
    drs_t d;
    drs_init(&d, 16);
    const char *kv[] = {"linger.ms", "1500", "acks", "1", NULL};
    sluice_producer_t *p = mk(&d, kv);
    long long t0 = sl_mono_ms();
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(
            sluice_produce(p, "linger", 0, NULL, 0, "x", 1, NULL, 0, 0, (void *)(intptr_t)i),
            SLUICE_OK);
    usleep(1000 * 1000);
    CHECK_EQ_INT(log_end("linger", 0), 0); /* nothing before linger.ms */
    CHECK_EQ_INT(d.n, 0);
    while (d.n < 10 && sl_mono_ms() - t0 < 10000) sluice_producer_poll(p, 100);
    long long el = sl_mono_ms() - t0;
    CHECK_EQ_INT(d.ok, 10);
    CHECK_MSG(el >= 1450, "delivered after %lld ms", el);
    CHECK_EQ_INT(log_end("linger", 0), 10);
    CHECK_EQ_INT(count_batches("linger", 0), 1);
    sluice_producer_destroy(p);
    drs_free(&d);
}

static void test_batch_size(void)
{
    drs_t d;
    drs_init(&d, 100);
    const char *kv[] = {"linger.ms", "60000", "batch.size", "1024", "acks", "1", NULL};
    sluice_producer_t *p = mk(&d, kv);
    char v[100];
    memset(v, 'v', sizeof v);
    long long t0 = sl_mono_ms();
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(
            sluice_produce(p, "bsize", 0, NULL, 0, v, sizeof v, NULL, 0, 0, (void *)(intptr_t)i),
            SLUICE_OK);
    /* Full batches go at once; the last partial one waits for its linger. */
    while (d.n < 90 && sl_mono_ms() - t0 < 10000) sluice_producer_poll(p, 100);
    CHECK_MSG(d.n >= 90 && d.n < 100, "%d reports before linger", d.n);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    CHECK_EQ_INT(d.ok, 100);
    long nb = count_batches("bsize", 0);
    CHECK_MSG(nb >= 10, "%ld batches", nb);
    sluice_producer_destroy(p);
    drs_free(&d);
}

typedef struct keyck {
    int last[10];
    int bad, n;
} keyck_t;

static void key_rec(const sl_record_t *r, void *arg)
{
    keyck_t *k = arg;
    int key = r->key[1] - '0';
    char buf[16] = {0};
    memcpy(buf, r->value, (size_t)r->value_len < 15 ? (size_t)r->value_len : 15);
    int seq = atoi(buf);
    if (seq <= k->last[key]) k->bad++;
    k->last[key] = seq;
    k->n++;
}

static void test_keys(void)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "keyed", 4), 0);
    sc_close(&c);
    drs_t d;
    const int N = 1000;
    drs_init(&d, N);
    const char *kv[] = {"acks", "1", "batch.size", "512", NULL};
    sluice_producer_t *p = mk(&d, kv);
    for (int i = 0; i < N; i++) {
        char k[4], v[16];
        snprintf(k, sizeof k, "k%d", i % 10);
        snprintf(v, sizeof v, "%d", i);
        CHECK_EQ_INT(sluice_produce(p, "keyed", SLUICE_PARTITION_UA, k, 2, v, strlen(v), NULL, 0, 0,
                                    (void *)(intptr_t)i),
                     SLUICE_OK);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
    CHECK_EQ_INT(d.ok, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        char k[4];
        snprintf(k, sizeof k, "k%d", i % 10);
        if (d.parts[i] != sluice_partition_for_key(k, 2, 4)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    keyck_t kc;
    memset(&kc, 0, sizeof kc);
    for (int i = 0; i < 10; i++) kc.last[i] = -1;
    for (int32_t part = 0; part < 4; part++) read_all("keyed", part, key_rec, &kc, NULL);
    CHECK_EQ_INT(kc.n, N);
    CHECK_EQ_INT(kc.bad, 0);
    /* Null keys: sticky partition, still every partition a valid one. */
    const int M = 200;
    drs_t d2;
    drs_init(&d2, M);
    sluice_producer_destroy(p);
    p = mk(&d2, kv);
    for (int i = 0; i < M; i++)
        sluice_produce(p, "keyed", SLUICE_PARTITION_UA, NULL, 0, "0123456789012345678901234", 25,
                       NULL, 0, 0, (void *)(intptr_t)i);
    CHECK_EQ_INT(sluice_produce(p, "keyed", 7, NULL, 0, "x", 1, NULL, 0, 0, NULL),
                 SLUICE_ERR__UNKNOWN_PARTITION);
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
    CHECK_EQ_INT(d2.ok, M);
    int used[4] = {0}, nused = 0;
    for (int i = 0; i < M; i++)
        if (d2.parts[i] >= 0 && d2.parts[i] < 4) used[d2.parts[i]] = 1;
    for (int i = 0; i < 4; i++) nused += used[i];
    CHECK_MSG(nused >= 2, "sticky partitioner used %d partitions", nused);
    sluice_producer_destroy(p);
    drs_free(&d);
    drs_free(&d2);
}

typedef struct seqck {
    char *seen;
    int n_expected, next_new, dups, gaps, total;
} seqck_t;

/* At-least-once: first sightings must come in order 0,1,2,... (no gaps, no
 * reordering); a resent request may repeat an earlier run. */
static void seq_rec(const sl_record_t *r, void *arg)
{
    seqck_t *s = arg;
    char buf[16] = {0};
    memcpy(buf, r->value, (size_t)r->value_len < 15 ? (size_t)r->value_len : 15);
    int v = atoi(buf);
    s->total++;
    if (v < 0 || v >= s->n_expected) {
        s->gaps++;
        return;
    }
    if (s->seen[v]) {
        s->dups++;
        return;
    }
    if (v != s->next_new) s->gaps++;
    s->seen[v] = 1;
    s->next_new = v + 1;
}

static void test_restart(void)
{
    drs_t d;
    const int N = 200000;
    drs_init(&d, N);
    const char *kv[] = {"acks", "1", "retry.backoff.ms", "50", "linger.ms", "5", NULL};
    sluice_producer_t *p = mk(&d, kv);
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        int rc =
            sluice_produce(p, "restart", 0, NULL, 0, v, strlen(v), NULL, 0, 0, (void *)(intptr_t)i);
        CHECK_EQ_INT(rc, SLUICE_OK);
        if (i % 1000 == 0) sluice_producer_poll(p, 0);
        if (i == N / 2) {
            CHECK_EQ_INT(harness_stop(&h, SIGKILL) != -1, 1);
            usleep(300 * 1000);
            CHECK_FATAL(harness_start(&h, NULL) == 0);
        }
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 60000), SLUICE_OK);
    CHECK_EQ_INT(d.n, N);
    CHECK_EQ_INT(d.ok, N);
    sluice_producer_destroy(p);
    seqck_t s = {.seen = calloc((size_t)N, 1), .n_expected = N};
    read_all("restart", 0, seq_rec, &s, NULL);
    CHECK_EQ_INT(s.next_new, N);
    CHECK_EQ_INT(s.gaps, 0);
    int missing = 0;
    for (int i = 0; i < N; i++) missing += !s.seen[i];
    CHECK_EQ_INT(missing, 0);
    fprintf(stderr, "restart: %d records read, %d duplicates (at-least-once)\n", s.total, s.dups);
    free(s.seen);
    drs_free(&d);
}

typedef struct lzck {
    int n, bad;
} lzck_t;

static void lz_rec(const sl_record_t *r, void *arg)
{
    lzck_t *l = arg;
    char want[128];
    snprintf(want, sizeof want, "lz4 record number %08d, padding padding padding padding", l->n);
    if (r->value_len != (int32_t)strlen(want) || memcmp(r->value, want, strlen(want))) l->bad++;
    if (r->header_count != 1) l->bad++;
    l->n++;
}

static void test_lz4(void)
{
    drs_t d;
    const int N = 5000;
    drs_init(&d, N);
    const char *kv[] = {"compression.type", "lz4", "acks", "1", "batch.size", "65536", NULL};
    sluice_producer_t *p = mk(&d, kv);
    for (int i = 0; i < N; i++) {
        char v[128];
        snprintf(v, sizeof v, "lz4 record number %08d, padding padding padding padding", i);
        sluice_header_t hd = {"h", "1", 1};
        CHECK_EQ_INT(
            sluice_produce(p, "lz4", 0, "k", 1, v, strlen(v), &hd, 1, 0, (void *)(intptr_t)i),
            SLUICE_OK);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
    CHECK_EQ_INT(d.ok, N);
    sluice_producer_destroy(p);
    lzck_t l = {0};
    int codecs = 0;
    CHECK_EQ_INT(read_all("lz4", 0, lz_rec, &l, &codecs), N);
    CHECK_EQ_INT(l.bad, 0);
    CHECK(codecs & (1 << 3));
    drs_free(&d);
}

/* SIGSTOP takes effect per thread as each is next scheduled: on a loaded
 * machine a reactor may still answer requests for a while. Returns once
 * every thread of pid is stopped ('T' in /proc), at most 5 s. */
static int stop_broker(pid_t pid)
{
    kill(pid, SIGSTOP);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    for (int tries = 0; tries < 500; tries++) {
        DIR *d = opendir(dir);
        if (!d) return -1;
        int running = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[128], buf[512];
            snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            const char *paren = strrchr(buf, ')');
            if (paren && paren[1] == ' ' && paren[2] != 'T' && paren[2] != 't') running = 1;
        }
        closedir(d);
        if (!running) return 0;
        poll(NULL, 0, 10);
    }
    return -1;
}

static void test_queue_full(void)
{
    drs_t d;
    drs_init(&d, 1000);
    const char *kv[] = {"buffer.memory", "65536",        "batch.size", "60000", "linger.ms",
                        "600000",        "max.block.ms", "400",        NULL};
    sluice_producer_t *p = mk(&d, kv);
    /* A stopped broker holds the first 60000-byte batch unanswered, so
     * the next batch cannot be allocated in 64 KiB: produce blocks, then
     * fails. */
    char v[1000];
    memset(v, 'q', sizeof v);
    CHECK_EQ_INT(sluice_produce(p, "qfull", 0, NULL, 0, "x", 1, NULL, 0, 0, (void *)0), 0);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK); /* metadata known */
    CHECK_FATAL(stop_broker(h.pid) == 0);
    int rc = SLUICE_OK, i;
    long long t0 = 0;
    for (i = 0; i < 999; i++) {
        t0 = sl_mono_ms();
        rc = sluice_produce(p, "qfull", 0, NULL, 0, v, sizeof v, NULL, 0, 0,
                            (void *)(intptr_t)(i + 1));
        if (rc != SLUICE_OK) break;
    }
    long long el = sl_mono_ms() - t0;
    CHECK_EQ_INT(rc, SLUICE_ERR__QUEUE_FULL);
    CHECK_MSG(el >= 380 && el < 3000, "blocked %lld ms", el);
    CHECK_MSG(i >= 40 && i < 70, "%d messages fit in 64 KiB", i);
    kill(h.pid, SIGCONT);
    /* flush with a timeout returns once the data is out. */
    CHECK_EQ_INT(sluice_producer_flush(p, 20000), SLUICE_OK);
    CHECK_EQ_INT(d.ok, i + 1);
    /* Too large for the buffer at all. */
    static char big[70000];
    CHECK_EQ_INT(sluice_produce(p, "qfull", 0, NULL, 0, big, sizeof big, NULL, 0, 0, NULL),
                 SLUICE_ERR_MESSAGE_TOO_LARGE);
    CHECK_EQ_INT(sluice_produce(p, NULL, 0, NULL, 0, "x", 1, NULL, 0, 0, NULL),
                 SLUICE_ERR__INVALID_ARG);
    sluice_producer_destroy(p);
    drs_free(&d);
}

static void test_delivery_timeout(void)
{
    drs_t d;
    drs_init(&d, 100);
    const char *kv[] = {"delivery.timeout.ms",
                        "1500",
                        "request.timeout.ms",
                        "1000",
                        "retry.backoff.ms",
                        "50",
                        NULL};
    sluice_producer_t *p = mk(&d, kv);
    CHECK_EQ_INT(sluice_produce(p, "gone", 0, NULL, 0, "a", 1, NULL, 0, 0, (void *)0), SLUICE_OK);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    CHECK_EQ_INT(d.ok, 1);
    harness_stop(&h, SIGKILL);
    long long t0 = sl_mono_ms();
    for (int i = 1; i <= 50; i++)
        CHECK_EQ_INT(sluice_produce(p, "gone", 0, NULL, 0, "b", 1, NULL, 0, 0, (void *)(intptr_t)i),
                     SLUICE_OK);
    CHECK_EQ_INT(sluice_producer_flush(p, 100), SLUICE_ERR__TIMED_OUT);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    long long el = sl_mono_ms() - t0;
    CHECK_EQ_INT(d.n, 51);
    CHECK_EQ_INT(d.bad, 50);
    CHECK_EQ_INT(d.last_err, SLUICE_ERR__MSG_TIMED_OUT);
    CHECK_MSG(el >= 1400 && el < 5000, "failed after %lld ms", el);
    /* A message left at destroy is reported with DESTROY. */
    const char *kv2[] = {"linger.ms", "100000", NULL};
    drs_t d2;
    drs_init(&d2, 4);
    sluice_producer_t *p2 = mk(&d2, kv2);
    sluice_producer_destroy(p);
    CHECK_EQ_INT(sluice_producer_outq_len(p2), 0);
    sluice_producer_destroy(p2);
    drs_free(&d);
    drs_free(&d2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "producer");
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    test_acks();
    test_linger();
    test_batch_size();
    test_keys();
    test_lz4();
    test_queue_full();
    test_restart();
    test_delivery_timeout();
    harness_cleanup(&h);
    return check_exit();
}
