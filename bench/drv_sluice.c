/* drv_sluice.c — sluice-bench's driver for Sluice's own protocol, through
 * libsluice.
 *
 * Producer: acks, batch.size, linger.ms and compression.type come from the
 * workload one to one, except that batch.size is clamped to libsluice's
 * accepted range (64 B .. 16 MiB): the workload allows 0 ("no batching" in
 * Kafka's terms), and 64 B is the closest libsluice has to that.
 * Consumer: a consumer group (broker-side assignment) with one group id per
 * sluice-bench process, auto.offset.reset=earliest so messages produced
 * before the group settled are read too; fetch.mode=push for open-loop
 * (latency) runs, pull (long poll) for closed-loop (throughput) runs.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "sluice/sluice.h"

/* Set by sluice_bench.c when it started the broker itself (0 otherwise):
 * only the process that forked sluiced knows its pid for certain. */
extern pid_t sluice_bench_broker_pid;

struct drv_producer {
    sluice_producer_t *p;
    char *topic;
    /* Written by delivery reports (this handle's thread, inside poll/flush/
     * produce) and read by the harness's main thread for progress. */
    _Atomic uint64_t acked, failed;
};

struct drv_consumer {
    sluice_consumer_t *c;
};

static void set_err(char *err, size_t errlen, const char *what, const char *why)
{
    if (err && errlen) snprintf(err, errlen, "sluice: %s: %s", what, why);
}

/* A conf with bootstrap.servers and the given key/value pairs (NULL-ended),
 * or NULL with err filled. */
static sluice_conf_t *make_conf(const workload_t *w, const char *const *kv, char *err,
                                size_t errlen)
{
    sluice_conf_t *conf = sluice_conf_new();
    char why[256];
    if (!conf) {
        set_err(err, errlen, "conf", "out of memory");
        return NULL;
    }
    if (sluice_conf_set(conf, "bootstrap.servers", workload_bootstrap(w), why, sizeof why) !=
        SLUICE_CONF_OK) {
        set_err(err, errlen, "conf", why);
        sluice_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (sluice_conf_set(conf, kv[i], kv[i + 1], why, sizeof why) != SLUICE_CONF_OK) {
            set_err(err, errlen, "conf", why);
            sluice_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

static int sluice_setup(const workload_t *w, const char *topic, char *err, size_t errlen)
{
    char why[512];
    sluice_conf_t *conf = make_conf(w, NULL, err, errlen);
    if (!conf) return -1;
    sluice_admin_t *a = sluice_admin_new(conf, why, sizeof why);
    if (!a) {
        sluice_conf_destroy(conf);
        set_err(err, errlen, "admin", why);
        return -1;
    }
    /* Delete first so the run starts from an empty log; "no such topic" is
     * the normal case and not an error. */
    int rc = sluice_admin_delete_topic(a, topic, why, sizeof why);
    if (rc != SLUICE_OK && rc != SLUICE_ERR_UNKNOWN_TOPIC_OR_PARTITION &&
        rc != SLUICE_ERR__UNKNOWN_TOPIC) {
        set_err(err, errlen, "delete topic", why);
        sluice_admin_destroy(a);
        return -1;
    }
    rc = sluice_admin_create_topic(a, topic, (int32_t)w->partitions, NULL, 0, why, sizeof why);
    sluice_admin_destroy(a);
    if (rc != SLUICE_OK) {
        set_err(err, errlen, "create topic", why);
        return -1;
    }
    return 0;
}

static void sluice_teardown(const workload_t *w, const char *topic)
{
    char why[256];
    sluice_conf_t *conf = make_conf(w, NULL, why, sizeof why);
    if (!conf) return;
    sluice_admin_t *a = sluice_admin_new(conf, why, sizeof why);
    if (!a) {
        sluice_conf_destroy(conf);
        return;
    }
    (void)sluice_admin_delete_topic(a, topic, why, sizeof why);
    sluice_admin_destroy(a);
}

static void dr_cb(sluice_producer_t *p, const sluice_message_t *msg, void *opaque)
{
    (void)p;
    struct drv_producer *dp = opaque;
    if (msg->err == SLUICE_OK)
        atomic_fetch_add_explicit(&dp->acked, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&dp->failed, 1, memory_order_relaxed);
}

static const char *acks_str(workload_acks_t a)
{
    return a == WORKLOAD_ACKS_NONE ? "0" : a == WORKLOAD_ACKS_LEADER ? "1" : "all";
}

static drv_producer_t *sluice_producer_new_(const workload_t *w, const char *topic, int id,
                                            char *err, size_t errlen)
{
    char batch[32], linger[32], cid[64], why[512];
    uint64_t b = w->batch_bytes < 64            ? 64
                 : w->batch_bytes > (16u << 20) ? (16u << 20)
                                                : w->batch_bytes;
    snprintf(batch, sizeof batch, "%" PRIu64, b);
    snprintf(linger, sizeof linger, "%u", (unsigned)w->linger_ms);
    snprintf(cid, sizeof cid, "sluice-bench-p%d", id);
    const char *kv[] = {"client.id",
                        cid,
                        "acks",
                        acks_str(w->acks),
                        "batch.size",
                        batch,
                        "linger.ms",
                        linger,
                        "compression.type",
                        w->compression == WORKLOAD_COMPRESSION_LZ4 ? "lz4" : "none",
                        NULL};
    struct drv_producer *dp = calloc(1, sizeof *dp);
    if (!dp || !(dp->topic = strdup(topic))) {
        free(dp);
        set_err(err, errlen, "producer", "out of memory");
        return NULL;
    }
    sluice_conf_t *conf = make_conf(w, kv, err, errlen);
    if (!conf) goto fail;
    sluice_conf_set_dr_cb(conf, dr_cb);
    sluice_conf_set_opaque(conf, dp);
    dp->p = sluice_producer_new(conf, why, sizeof why);
    if (!dp->p) {
        sluice_conf_destroy(conf);
        set_err(err, errlen, "producer", why);
        goto fail;
    }
    return dp;
fail:
    free(dp->topic);
    free(dp);
    return NULL;
}

static int sluice_produce_(drv_producer_t *p, int partition, const void *payload, size_t len)
{
    /* sluice_produce blocks (up to max.block.ms) while buffer.memory is full
     * and serves delivery reports meanwhile: that is the backpressure. */
    int rc = sluice_produce(p->p, p->topic, partition, NULL, 0, payload, len, NULL, 0, 0, NULL);
    return rc == SLUICE_OK ? 0 : -1;
}

static void sluice_poll_(drv_producer_t *p, int timeout_ms)
{
    sluice_producer_poll(p->p, timeout_ms);
}

static int sluice_flush_(drv_producer_t *p, int timeout_ms)
{
    return sluice_producer_flush(p->p, timeout_ms) == SLUICE_OK ? 0 : -1;
}

static void sluice_counts(drv_producer_t *p, uint64_t *acked, uint64_t *failed)
{
    *acked = atomic_load_explicit(&p->acked, memory_order_relaxed);
    *failed = atomic_load_explicit(&p->failed, memory_order_relaxed);
}

static void sluice_producer_free_(drv_producer_t *p)
{
    if (!p) return;
    sluice_producer_destroy(p->p);
    free(p->topic);
    free(p);
}

static drv_consumer_t *sluice_consumer_new_(const workload_t *w, const char *topic, int id, int n,
                                            char *err, size_t errlen)
{
    (void)n; /* the broker's group coordinator splits the partitions */
    char cid[64], why[512];
    snprintf(cid, sizeof cid, "sluice-bench-c%d", id);
    const char *kv[] = {
        "client.id", cid, "group.id", driver_group_id(topic), "auto.offset.reset", "earliest",
        /* Nothing is committed that a later run could see:
         * the group id is unique, commits would be waste. */
        "enable.auto.commit", "false", "fetch.mode", w->rate ? "push" : "pull", NULL};
    struct drv_consumer *dc = calloc(1, sizeof *dc);
    if (!dc) {
        set_err(err, errlen, "consumer", "out of memory");
        return NULL;
    }
    sluice_conf_t *conf = make_conf(w, kv, err, errlen);
    if (!conf) {
        free(dc);
        return NULL;
    }
    dc->c = sluice_consumer_new(conf, why, sizeof why);
    if (!dc->c) {
        sluice_conf_destroy(conf);
        set_err(err, errlen, "consumer", why);
        free(dc);
        return NULL;
    }
    const char *topics[] = {topic};
    int rc = sluice_consumer_subscribe(dc->c, topics, 1);
    if (rc != SLUICE_OK) {
        set_err(err, errlen, "subscribe", sluice_err2str(rc));
        sluice_consumer_destroy(dc->c);
        free(dc);
        return NULL;
    }
    return dc;
}

/* Messages handed back per call at most, so the harness can check its stop
 * flag regularly even when the consumer never runs dry. */
#define CONSUME_BATCH 4096

static long sluice_consume_(drv_consumer_t *c, int timeout_ms, drv_message_fn fn, void *arg)
{
    long n = 0;
    int wait = timeout_ms;
    while (n < CONSUME_BATCH) {
        sluice_message_t *m = sluice_consumer_poll(c->c, wait);
        if (!m) break;
        /* After the first message, take only what is already prefetched. */
        wait = 0;
        if (m->err == SLUICE_OK) {
            fn(arg, m->partition, m->value, m->value_len);
            n++;
        } else if (m->err == SLUICE_ERR__BAD_MSG) {
            /* A batch that failed its CRC is never delivered: for a
             * benchmark that is a broken broker, not noise. */
            fprintf(stderr, "sluice: consumer: %s\n", sluice_err2str(m->err));
            sluice_message_destroy(m);
            return -1;
        }
        /* Other errors (partition EOF, rebalances) are informational. */
        sluice_message_destroy(m);
    }
    return n;
}

static void sluice_consumer_free_(drv_consumer_t *c)
{
    if (!c) return;
    sluice_consumer_close(c->c);
    sluice_consumer_destroy(c->c);
    free(c);
}

static pid_t sluice_broker_pid(const workload_t *w)
{
    (void)w;
    /* A broker someone else started (--bootstrap) is not ours to find. */
    return sluice_bench_broker_pid;
}

const bench_driver_t drv_sluice = {
    .name = "sluice",
    .setup = sluice_setup,
    .teardown = sluice_teardown,
    .producer_new = sluice_producer_new_,
    .produce = sluice_produce_,
    .poll = sluice_poll_,
    .flush = sluice_flush_,
    .producer_counts = sluice_counts,
    .producer_free = sluice_producer_free_,
    .consumer_new = sluice_consumer_new_,
    .consume = sluice_consume_,
    .consumer_free = sluice_consumer_free_,
    .broker_pid = sluice_broker_pid,
};
