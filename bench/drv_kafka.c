/* drv_kafka.c — sluice-bench's driver for Apache Kafka through librdkafka;
 * the same driver targets Sluice's Kafka listener ("sluice-kafka").
 *
 * Producer: acks, batch.size, linger.ms, compression.type with Kafka's
 * names; batch.size is clamped to librdkafka's range (1 .. 2^31-1), so the
 * workload's 0 ("no batching") becomes 1 byte, i.e. one message per batch.
 * Idempotence stays off (the default), as for libsluice's producer.
 * Consumer: a consumer group (one group id per sluice-bench process),
 * auto.offset.reset=earliest, no auto-commit (the group is never reused).
 * Setup/teardown: the Admin API (DeleteTopics, CreateTopics with
 * replication factor 1: the peers are single brokers).
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "driver.h"

extern pid_t sluice_bench_broker_pid; /* see drv_sluice.c */

struct drv_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    /* Written by the delivery report callback (served in poll/flush on the
     * handle's thread), read by the harness's main thread. */
    _Atomic uint64_t acked, failed;
};

struct drv_consumer {
    rd_kafka_t *rk;
};

static void set_err(char *err, size_t errlen, const char *what, const char *why)
{
    if (err && errlen) snprintf(err, errlen, "kafka: %s: %s", what, why);
}

/* A conf with bootstrap.servers and the NULL-ended key/value pairs, or NULL
 * with err filled. */
static rd_kafka_conf_t *make_conf(const workload_t *w, const char *const *kv, char *err,
                                  size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", workload_bootstrap(w), why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
        set_err(err, errlen, "conf", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], why, sizeof why) != RD_KAFKA_CONF_OK) {
            set_err(err, errlen, "conf", why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* Waits for one admin result event on q (at most timeout_ms). */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
    return rd_kafka_queue_poll(q, timeout_ms);
}

/* Waits for the answer to one CreateTopics (create) or DeleteTopics
 * request on q: the request's error, else its one topic's, with a message
 * in why. */
static rd_kafka_resp_err_t topic_result(rd_kafka_queue_t *q, int create, char *why, size_t whylen)
{
    rd_kafka_event_t *ev = admin_wait(q, 30000);
    if (!ev) {
        snprintf(why, whylen, "%s timed out", create ? "CreateTopics" : "DeleteTopics");
        return RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (!e) {
        size_t n = 0;
        const rd_kafka_topic_result_t **r =
            create
                ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
                : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        if (n > 0) {
            e = rd_kafka_topic_result_error(r[0]);
            const char *msg = rd_kafka_topic_result_error_string(r[0]);
            snprintf(why, whylen, "%s", msg ? msg : rd_kafka_err2str(e));
        }
    } else {
        snprintf(why, whylen, "%s", rd_kafka_event_error_string(ev));
    }
    rd_kafka_event_destroy(ev);
    return e;
}

static rd_kafka_resp_err_t delete_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic,
                                        char *why, size_t whylen)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_DeleteTopic_destroy(dt);
    return topic_result(q, 0, why, whylen);
}

static rd_kafka_resp_err_t create_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic,
                                        const workload_t *w, char *why, size_t whylen)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, (int)w->partitions, 1, errstr, sizeof errstr);
    if (!nt) {
        snprintf(why, whylen, "%s", errstr);
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    }
    /* --topic-config, e.g. flush.messages=1 for a durable (c) row; the
     * broker validates names and values and fails the create otherwise. */
    for (uint32_t i = 0; i < w->n_topic_config; i++) {
        rd_kafka_resp_err_t ce =
            rd_kafka_NewTopic_set_config(nt, w->topic_config[i].key, w->topic_config[i].value);
        if (ce) {
            snprintf(why, whylen, "topic config %s: %s", w->topic_config[i].key,
                     rd_kafka_err2str(ce));
            rd_kafka_NewTopic_destroy(nt);
            return ce;
        }
    }
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_NewTopic_destroy(nt);
    return topic_result(q, 1, why, whylen);
}

/* 1 when metadata shows `topic` with `partitions` partitions, each with a
 * leader: producing to it before then only fills the client's queue. */
static int topic_ready(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int ok = 0;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topics[0].partition_cnt == partitions) {
            ok = 1;
            for (int i = 0; i < partitions; i++)
                if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err)
                    ok = 0;
        }
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) rd_kafka_topic_destroy(rkt);
    return ok;
}

/* An admin-capable client (any rd_kafka_t is one) and its result queue. */
static rd_kafka_t *admin_new(const workload_t *w, rd_kafka_queue_t **q, char *err, size_t errlen)
{
    char why[512];
    /* Topic auto-creation would race with our own create after a delete. */
    const char *kv[] = {"allow.auto.create.topics", "false", NULL};
    rd_kafka_conf_t *conf = make_conf(w, kv, err, errlen);
    if (!conf) return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        set_err(err, errlen, "admin", why);
        return NULL;
    }
    *q = rd_kafka_queue_new(rk);
    return rk;
}

static int kafka_setup(const workload_t *w, const char *topic, char *err, size_t errlen)
{
    char why[512] = "";
    rd_kafka_queue_t *q;
    rd_kafka_t *rk = admin_new(w, &q, err, errlen);
    if (!rk) return -1;
    int rc = -1;
    rd_kafka_resp_err_t e = delete_topic(rk, q, topic, why, sizeof why);
    if (e && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        set_err(err, errlen, "delete topic", why);
        goto out;
    }
    /* Kafka deletes asynchronously: until it is done, a create of the same
     * name fails with TOPIC_ALREADY_EXISTS. Retry for a while. */
    int64_t deadline = sl_mono_ms() + 60000;
    for (;;) {
        e = create_topic(rk, q, topic, w, why, sizeof why);
        if (!e) break;
        if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS || sl_mono_ms() > deadline) {
            set_err(err, errlen, "create topic", why);
            goto out;
        }
        usleep(200 * 1000);
    }
    while (!topic_ready(rk, topic, (int)w->partitions)) {
        if (sl_mono_ms() > deadline) {
            set_err(err, errlen, "create topic", "partitions got no leader in time");
            goto out;
        }
        usleep(100 * 1000);
    }
    rc = 0;
out:
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static void kafka_teardown(const workload_t *w, const char *topic)
{
    char why[512];
    rd_kafka_queue_t *q;
    rd_kafka_t *rk = admin_new(w, &q, why, sizeof why);
    if (!rk) return;
    (void)delete_topic(rk, q, topic, why, sizeof why);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct drv_producer *dp = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add_explicit(&dp->acked, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&dp->failed, 1, memory_order_relaxed);
}

static const char *acks_str(workload_acks_t a)
{
    return a == WORKLOAD_ACKS_NONE ? "0" : a == WORKLOAD_ACKS_LEADER ? "1" : "all";
}

static drv_producer_t *kafka_producer_new(const workload_t *w, const char *topic, int id, char *err,
                                          size_t errlen)
{
    char batch[32], linger[32], cid[64], why[512];
    uint64_t b = w->batch_bytes < 1 ? 1 : w->batch_bytes > INT32_MAX ? INT32_MAX : w->batch_bytes;
    snprintf(batch, sizeof batch, "%" PRIu64, b);
    snprintf(linger, sizeof linger, "%u", (unsigned)w->linger_ms);
    snprintf(cid, sizeof cid, "sluice-bench-p%d", id);
    const char *kv[] = {"client.id", cid, "acks", acks_str(w->acks), "batch.size", batch,
                        "linger.ms", linger, "compression.type",
                        w->compression == WORKLOAD_COMPRESSION_LZ4 ? "lz4" : "none",
                        /* The workload's message size may exceed librdkafka's
                         * 1 MB default; the broker still has the last word. */
                        "message.max.bytes", "20000000", NULL};
    struct drv_producer *dp = calloc(1, sizeof *dp);
    if (!dp) {
        set_err(err, errlen, "producer", "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = make_conf(w, kv, err, errlen);
    if (!conf) {
        free(dp);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, dp);
    dp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!dp->rk) {
        rd_kafka_conf_destroy(conf);
        set_err(err, errlen, "producer", why);
        free(dp);
        return NULL;
    }
    dp->rkt = rd_kafka_topic_new(dp->rk, topic, NULL);
    if (!dp->rkt) {
        set_err(err, errlen, "producer", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(dp->rk);
        free(dp);
        return NULL;
    }
    return dp;
}

static int kafka_produce(drv_producer_t *p, int partition, const void *payload, size_t len)
{
    for (;;) {
        if (rd_kafka_produce(p->rkt, partition, RD_KAFKA_MSG_F_COPY, (void *)payload, len, NULL, 0,
                             NULL) == 0)
            return 0;
        /* librdkafka does not block on a full queue: serving delivery
         * reports is what frees it, so this is the client's backpressure. */
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) return -1;
        rd_kafka_poll(p->rk, 10);
    }
}

static void kafka_poll(drv_producer_t *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

static int kafka_flush(drv_producer_t *p, int timeout_ms)
{
    return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static void kafka_counts(drv_producer_t *p, uint64_t *acked, uint64_t *failed)
{
    *acked = atomic_load_explicit(&p->acked, memory_order_relaxed);
    *failed = atomic_load_explicit(&p->failed, memory_order_relaxed);
}

static void kafka_producer_free(drv_producer_t *p)
{
    if (!p) return;
    rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    free(p);
}

static drv_consumer_t *kafka_consumer_new(const workload_t *w, const char *topic, int id, int n,
                                          char *err, size_t errlen)
{
    (void)n; /* the group coordinator splits the partitions */
    char cid[64], why[512];
    snprintf(cid, sizeof cid, "sluice-bench-c%d", id);
    const char *kv[] = {"client.id", cid, "group.id", driver_group_id(topic), "auto.offset.reset",
                        "earliest", "enable.auto.commit", "false", "enable.partition.eof", "false",
                        /* Latency runs: do not let the broker hold a fetch
                         * for the default 500 ms waiting for more bytes. */
                        "fetch.wait.max.ms", w->rate ? "10" : "100", NULL};
    struct drv_consumer *dc = calloc(1, sizeof *dc);
    if (!dc) {
        set_err(err, errlen, "consumer", "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = make_conf(w, kv, err, errlen);
    if (!conf) {
        free(dc);
        return NULL;
    }
    dc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!dc->rk) {
        rd_kafka_conf_destroy(conf);
        set_err(err, errlen, "consumer", why);
        free(dc);
        return NULL;
    }
    rd_kafka_poll_set_consumer(dc->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(dc->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        set_err(err, errlen, "subscribe", rd_kafka_err2str(e));
        rd_kafka_destroy(dc->rk);
        free(dc);
        return NULL;
    }
    return dc;
}

/* See drv_sluice.c: bounded so the harness sees its stop flag. */
#define CONSUME_BATCH 4096

static long kafka_consume(drv_consumer_t *c, int timeout_ms, drv_message_fn fn, void *arg)
{
    long n = 0;
    int wait = timeout_ms;
    while (n < CONSUME_BATCH) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait);
        if (!m) break;
        wait = 0;
        if (!m->err) {
            fn(arg, (int)m->partition, m->payload, m->len);
            n++;
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            fprintf(stderr, "kafka: consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return -1;
        }
        /* Anything else (a topic not yet known to the group, transport
         * hiccups) is retried by librdkafka itself. */
        rd_kafka_message_destroy(m);
    }
    return n;
}

static void kafka_consumer_free(drv_consumer_t *c)
{
    if (!c) return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}

#ifndef SLUICE_SOURCE_DIR
#define SLUICE_SOURCE_DIR "."
#endif

/* The real Kafka's pid from the peer script's pid file (`kafka.sh info`
 * names the file); sluice-kafka: the sluiced sluice-bench started, if any. */
static pid_t kafka_broker_pid(const workload_t *w)
{
    if (w->system != WORKLOAD_KAFKA) return sluice_bench_broker_pid;
    FILE *f = popen(SLUICE_SOURCE_DIR "/bench/peers/kafka/kafka.sh info 2>/dev/null", "r");
    if (!f) return 0;
    char line[1024], pidfile[1024] = "";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "KAFKA_PID_FILE=", 15)) {
            snprintf(pidfile, sizeof pidfile, "%s", line + 15);
            pidfile[strcspn(pidfile, "\r\n")] = '\0';
        }
    pclose(f);
    if (!pidfile[0] || !(f = fopen(pidfile, "r"))) return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
    return pid > 0 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

const bench_driver_t drv_kafka = {
    .name = "kafka",
    .setup = kafka_setup,
    .teardown = kafka_teardown,
    .producer_new = kafka_producer_new,
    .produce = kafka_produce,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .producer_counts = kafka_counts,
    .producer_free = kafka_producer_free,
    .consumer_new = kafka_consumer_new,
    .consume = kafka_consume,
    .consumer_free = kafka_consumer_free,
    .broker_pid = kafka_broker_pid,
};
