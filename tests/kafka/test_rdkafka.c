/* test_rdkafka.c — librdkafka 2.0.2 (the C library, unmodified) against
 * sluiced's Kafka listener, and libsluice on Sluice's protocol against the
 * same data.
 *
 * Covers: producers with acks 0/1/all, enable.idempotence=true and lz4
 * (linger.ms batching; the stored batch is lz4): every delivery report OK
 * with its offset, watermarks, and everything consumed back with a
 * librdkafka consumer; keyed messages on 3 partitions with
 * partitioner=murmur2_random land where libsluice's sluice_partition_for_key
 * (and libsluice's own producer) put them; cross-protocol byte equality of
 * keys, values, headers (null vs empty), timestamps and offsets both ways
 * (librdkafka -> libsluice and libsluice with lz4 -> librdkafka); a consumer
 * group of two on 4 partitions (both get partitions, one leaves, the other
 * gets all 4, every message consumed exactly once in total) with
 * ListGroups/DescribeGroups through rd_kafka_list_groups; committed offsets
 * that survive a SIGTERM restart (rd_kafka_committed, a new member resumes
 * there, and libsluice sees the same offsets); an idempotent producer across a broker SIGKILL +
 * restart mid-stream (every message acknowledged once, none duplicated, no fatal error); the admin
 * API (CreateTopics ok / TOPIC_ALREADY_EXISTS / INVALID_REPLICATION_FACTOR / INVALID_PARTITIONS /
 * INVALID_CONFIG / validate_only, DeleteTopics ok / unknown, a topic of 16 KiB segments read back
 * across segment ends); ListOffsets through rd_kafka_query_watermark_offsets and
 * rd_kafka_offsets_for_times.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "kraw.h"
#include "sluice/sluice.h"

static harness_t h;
static char kbs[64]; /* Kafka listener */
static char sbs[64]; /* Sluice's protocol */
static const char *const extra[] = {"--group.initial.rebalance.delay.ms=0", NULL};

/* ---- librdkafka handles ------------------------------------------------- */

static rd_kafka_conf_t *kconf(const char *const *kv)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[512];
    CHECK_FATAL(rd_kafka_conf_set(c, "bootstrap.servers", kbs, err, sizeof err) ==
                RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(c, "log_level", "4", err, sizeof err);
    for (int i = 0; kv && kv[i]; i += 2) {
        rd_kafka_conf_res_t r = rd_kafka_conf_set(c, kv[i], kv[i + 1], err, sizeof err);
        CHECK_MSG(r == RD_KAFKA_CONF_OK, "%s=%s: %s", kv[i], kv[i + 1], err);
    }
    return c;
}

static rd_kafka_t *mk(rd_kafka_type_t type, rd_kafka_conf_t *c)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    CHECK_MSG(rk != NULL, "rd_kafka_new: %s", err);
    CHECK_FATAL(rk != NULL);
    return rk;
}

/* Delivery reports land in the dr_t given as the message opaque. */
typedef struct dr {
    int err; /* rd_kafka_resp_err_t; -9999 until reported */
    int32_t partition;
    int64_t offset;
    int reports;
} dr_t;

static int dr_total;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    dr_t *d = m->_private;
    dr_total++;
    if (!d) return;
    d->err = m->err;
    d->partition = m->partition;
    d->offset = m->offset;
    d->reports++;
}

static rd_kafka_t *mkprod(const char *const *kv)
{
    rd_kafka_conf_t *c = kconf(kv);
    rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    return mk(RD_KAFKA_PRODUCER, c);
}

static dr_t *new_drs(int n)
{
    dr_t *d = calloc((size_t)n, sizeof *d);
    CHECK_FATAL(d != NULL);
    for (int i = 0; i < n; i++) d[i].err = -9999, d[i].offset = -9999, d[i].partition = -9999;
    return d;
}

static void create_topic(const char *name, int parts)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    int e = kt_create_topic(fd, 1, name, parts, 1);
    CHECK_MSG(e == 0, "CreateTopics %s: %d", name, e);
    close(fd);
}

/* ---- consuming with librdkafka ------------------------------------------ */

typedef struct msgs {
    rd_kafka_message_t **m;
    size_t n, cap;
} msgs_t;

static void msgs_add(msgs_t *l, rd_kafka_message_t *m)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->m = realloc(l->m, l->cap * sizeof *l->m);
        CHECK_FATAL(l->m != NULL);
    }
    l->m[l->n++] = m;
}

static void msgs_free(msgs_t *l)
{
    for (size_t i = 0; i < l->n; i++) rd_kafka_message_destroy(l->m[i]);
    free(l->m);
    memset(l, 0, sizeof *l);
}

/* Reads every partition of topic from the beginning with a librdkafka
 * consumer (no group) until `want` messages arrived and every partition hit
 * EOF (or 20 s). Messages are sorted by (partition, offset) as received. */
static rd_kafka_t *read_all(const char *topic, int nparts, size_t want, msgs_t *out)
{
    /* rd_kafka_consumer_poll needs a group.id even with assign(); nothing is
     * committed. */
    static const char *const kv[] = {"group.id",
                                     "reader",
                                     "enable.auto.commit",
                                     "false",
                                     "enable.partition.eof",
                                     "true",
                                     "check.crcs",
                                     "true",
                                     "fetch.wait.max.ms",
                                     "100",
                                     NULL};
    rd_kafka_t *rk = mk(RD_KAFKA_CONSUMER, kconf(kv));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    CHECK_EQ_INT(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int eof[64] = {0}, errors = 0;
    memset(out, 0, sizeof *out);
    long long deadline = sl_mono_ms() + 20000;
    for (;;) {
        int all_eof = 1;
        for (int p = 0; p < nparts && p < 64; p++) all_eof &= eof[p];
        if ((all_eof && out->n >= want) || sl_mono_ms() > deadline) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < 64) eof[m->partition] = 1;
            rd_kafka_message_destroy(m);
        } else if (m->err) {
            if (errors++ < 3)
                fprintf(stderr, "consume %s: %s\n", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        } else {
            if (m->partition >= 0 && m->partition < 64) eof[m->partition] = 0;
            msgs_add(out, m);
        }
    }
    CHECK_MSG(errors == 0, "%s: %d consumer errors", topic, errors);
    CHECK_MSG(out->n == want, "%s: consumed %zu messages, expected %zu", topic, out->n, want);
    return rk;
}

static void close_consumer(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static int mcmp(const void *p, size_t pl, const void *q, size_t ql)
{
    if ((p == NULL) != (q == NULL)) return 1;
    if (!p) return 0;
    return pl != ql || (pl && memcmp(p, q, pl) != 0);
}

/* Reads partition 0 of topic raw from offset 0: the record count of its
 * first batch in *first_count (if not NULL); returns how many of its
 * multi-record batches use codec. */
static int stored_batch(const char *topic, int codec, int32_t *first_count)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    kt_fetch_res_t f;
    kt_fetch(fd, 11, 3, topic, 0, 0, 100, 1, 1 << 22, &f);
    int coded = 0;
    if (first_count) *first_count = -1;
    for (int32_t off = 0; f.records && off + 61 <= f.records_len;) {
        const uint8_t *b = f.records + off;
        int32_t blen =
            (int32_t)((uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11]);
        int32_t cnt =
            (int32_t)((uint32_t)b[57] << 24 | (uint32_t)b[58] << 16 | (uint32_t)b[59] << 8 | b[60]);
        if (off == 0 && first_count) *first_count = cnt;
        if (cnt > 1 && (b[22] & 7) == codec) coded++;
        off += 12 + blen;
    }
    free(f.records);
    close(fd);
    return coded;
}

/* ---- 1. producer modes -------------------------------------------------- */

static void test_produce_modes(void)
{
    static const struct {
        const char *name;
        const char *kv[10];
        int acks0, lz4;
    } v[] = {
        {"acks0", {"acks", "0", NULL}, 1, 0},
        {"acks1", {"acks", "1", NULL}, 0, 0},
        {"acksall", {"acks", "all", NULL}, 0, 0},
        {"idem", {"enable.idempotence", "true", NULL}, 0, 0},
        {"lz4", {"compression.codec", "lz4", "linger.ms", "50", "acks", "1", NULL}, 0, 1},
        {"idemlz4",
         {"enable.idempotence", "true", "compression.codec", "lz4", "linger.ms", "20", NULL},
         0,
         1},
    };
    enum { N = 300 };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        char topic[64];
        snprintf(topic, sizeof topic, "pm-%s", v[k].name);
        rd_kafka_t *p = mkprod(v[k].kv);
        dr_t *d = new_drs(N);
        for (int i = 0; i < N; i++) {
            char key[32], val[160];
            snprintf(key, sizeof key, "k%d", i);
            snprintf(val, sizeof val,
                     "%s-%d-........................................................", v[k].name,
                     i);
            rd_kafka_resp_err_t e = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE(&d[i]), RD_KAFKA_V_END);
            CHECK_EQ_INT(e, 0);
        }
        CHECK_EQ_INT(rd_kafka_flush(p, 30000), 0);
        int bad = 0, misplaced = 0;
        for (int i = 0; i < N; i++) {
            if (d[i].reports != 1 || d[i].err != 0) {
                if (bad++ < 3)
                    fprintf(stderr, "%s #%d: %d reports, %s\n", v[k].name, i, d[i].reports,
                            rd_kafka_err2str((rd_kafka_resp_err_t)d[i].err));
            }
            if (!v[k].acks0 && d[i].offset != i) misplaced++;
        }
        CHECK_MSG(bad == 0, "%s: %d of %d delivery reports not OK", v[k].name, bad, N);
        CHECK_MSG(misplaced == 0, "%s: %d delivery reports with an offset other than its index",
                  v[k].name, misplaced);
        char err[512];
        CHECK_MSG(rd_kafka_fatal_error(p, err, sizeof err) == 0, "%s: fatal error %s", v[k].name,
                  err);
        rd_kafka_destroy(p);
        free(d);

        if (v[k].lz4)
            CHECK_MSG(stored_batch(topic, 3, NULL) >= 1, "%s: no stored batch is lz4", topic);
        msgs_t got;
        rd_kafka_t *c = read_all(topic, 1, N, &got);
        int wrong = 0;
        for (size_t i = 0; i < got.n; i++) {
            rd_kafka_message_t *m = got.m[i];
            char key[32], val[160];
            snprintf(key, sizeof key, "k%zu", i);
            snprintf(val, sizeof val,
                     "%s-%zu-........................................................", v[k].name,
                     i);
            if (m->offset != (int64_t)i || mcmp(m->key, m->key_len, key, strlen(key)) ||
                mcmp(m->payload, m->len, val, strlen(val)))
                wrong++;
        }
        CHECK_MSG(wrong == 0, "%s: %d messages read back differ", v[k].name, wrong);
        int64_t lo = -9, hi = -9;
        CHECK_EQ_INT(rd_kafka_query_watermark_offsets(c, topic, 0, &lo, &hi, 10000), 0);
        CHECK_EQ_INT(lo, 0);
        CHECK_EQ_INT(hi, N);
        msgs_free(&got);
        close_consumer(c);
    }
}

/* ---- 2. keys and partitions --------------------------------------------- */

static void on_sdr(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    (void)opaque;
    dr_t *d = m->opaque;
    if (!d) return;
    d->err = m->err;
    d->partition = m->partition;
    d->offset = m->offset;
    d->reports++;
}

static sluice_producer_t *mksprod(const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    char err[256];
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", sbs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2)
        CHECK_MSG(sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err) == SLUICE_CONF_OK, "%s",
                  err);
    sluice_conf_set_dr_cb(c, on_sdr);
    sluice_producer_t *p = sluice_producer_new(c, err, sizeof err);
    CHECK_MSG(p != NULL, "sluice_producer_new: %s", err);
    CHECK_FATAL(p != NULL);
    return p;
}

static void test_keys(void)
{
    enum { N = 300 };
    create_topic("keys", 3);
    static const char *const kv[] = {"partitioner", "murmur2_random", "linger.ms", "10", NULL};
    rd_kafka_t *p = mkprod(kv);
    sluice_producer_t *sp = mksprod(NULL);
    dr_t *d = new_drs(N), *sd = new_drs(N);
    int per[3] = {0};
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i * 7919);
        CHECK_EQ_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("keys"),
                                       RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE("rd", 2),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_OPAQUE(&d[i]), RD_KAFKA_V_END),
                     0);
        CHECK_EQ_INT(sluice_produce(sp, "keys", SLUICE_PARTITION_UA, key, strlen(key), "sl", 2,
                                    NULL, 0, 0, &sd[i]),
                     0);
    }
    CHECK_EQ_INT(rd_kafka_flush(p, 30000), 0);
    CHECK_EQ_INT(sluice_producer_flush(sp, 30000), 0);
    int wrong = 0, swrong = 0;
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i * 7919);
        int32_t want = sluice_partition_for_key(key, strlen(key), 3);
        if (want >= 0 && want < 3) per[want]++;
        if (d[i].err != 0 || d[i].partition != want) {
            if (wrong++ < 3)
                fprintf(stderr, "key %s: librdkafka partition %d err %d, murmur2 says %d\n", key,
                        d[i].partition, d[i].err, want);
        }
        if (sd[i].err != 0 || sd[i].partition != want) swrong++;
    }
    CHECK_MSG(wrong == 0, "%d keys not on libsluice's murmur2 partition (librdkafka)", wrong);
    CHECK_MSG(swrong == 0, "%d keys not on libsluice's murmur2 partition (libsluice)", swrong);
    CHECK(per[0] > 0 && per[1] > 0 && per[2] > 0);
    rd_kafka_destroy(p);
    sluice_producer_destroy(sp);

    /* What the broker stored: each key on its partition, from both
     * producers. */
    msgs_t got;
    rd_kafka_t *c = read_all("keys", 3, 2 * N, &got);
    int misplaced = 0, from_rd = 0, from_sl = 0;
    for (size_t i = 0; i < got.n; i++) {
        rd_kafka_message_t *m = got.m[i];
        if (m->partition != sluice_partition_for_key(m->key, m->key_len, 3)) misplaced++;
        if (m->len == 2 && memcmp(m->payload, "rd", 2) == 0) from_rd++;
        if (m->len == 2 && memcmp(m->payload, "sl", 2) == 0) from_sl++;
    }
    CHECK_EQ_INT(misplaced, 0);
    CHECK_EQ_INT(from_rd, N);
    CHECK_EQ_INT(from_sl, N);
    msgs_free(&got);
    close_consumer(c);
    free(d);
    free(sd);
}

/* ---- 3. cross-protocol ---------------------------------------------------- */

enum { XN = 40 };

typedef struct xmsg {
    uint8_t key[8], hbin[4];
    const void *k;
    size_t kl;
    uint8_t *v;
    size_t vl;
    int vnull;
    int nh; /* 0, 1 ("h1"="v<i>") or 2 ("bin"=4 bytes, "nul"=null) */
    char h1[16];
    int64_t ts;
} xmsg_t;

static void xmsg_make(xmsg_t *x, int i, int64_t t0)
{
    memset(x, 0, sizeof *x);
    x->key[0] = (uint8_t)i;
    x->key[1] = 0;
    x->key[2] = 0xff;
    x->key[3] = (uint8_t)(i * 7);
    x->k = i % 5 == 0 ? NULL : i % 5 == 1 ? (const void *)"" : x->key;
    x->kl = i % 5 <= 1 ? 0 : 4;
    x->vnull = i % 7 == 0;
    x->vl = x->vnull || i % 7 == 1 ? 0 : (size_t)((i * 997) % 3000 + 1);
    x->v = malloc(x->vl + 1);
    CHECK_FATAL(x->v != NULL);
    for (size_t j = 0; j < x->vl; j++) x->v[j] = (uint8_t)(i + j * 31);
    x->nh = i % 3;
    snprintf(x->h1, sizeof x->h1, "v%d", i);
    x->hbin[0] = 0;
    x->hbin[1] = 1;
    x->hbin[2] = 2;
    x->hbin[3] = (uint8_t)i;
    x->ts = t0 + i;
}

static void test_rd_to_sluice(void)
{
    int64_t t0 = sl_wall_ms() - 5000;
    xmsg_t x[XN];
    static const char *const kv[] = {"linger.ms", "20", NULL};
    rd_kafka_t *p = mkprod(kv);
    dr_t *d = new_drs(XN);
    for (int i = 0; i < XN; i++) {
        xmsg_make(&x[i], i, t0);
        rd_kafka_headers_t *hd = rd_kafka_headers_new(2);
        if (x[i].nh == 1) rd_kafka_header_add(hd, "h1", -1, x[i].h1, -1);
        if (x[i].nh == 2) {
            rd_kafka_header_add(hd, "bin", -1, x[i].hbin, 4);
            rd_kafka_header_add(hd, "nul", -1, NULL, 0);
        }
        void *vp = x[i].vnull ? NULL : x[i].v; /* the macros do not parenthesise */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC("x1"), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(x[i].k, x[i].kl),
            RD_KAFKA_V_VALUE(vp, x[i].vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(x[i].ts), RD_KAFKA_V_HEADERS(hd), RD_KAFKA_V_OPAQUE(&d[i]),
            RD_KAFKA_V_END);
        CHECK_EQ_INT(e, 0);
        if (e) rd_kafka_headers_destroy(hd);
    }
    CHECK_EQ_INT(rd_kafka_flush(p, 30000), 0);
    for (int i = 0; i < XN; i++) CHECK_MSG(d[i].err == 0 && d[i].offset == i, "x1 #%d", i);
    rd_kafka_destroy(p);
    free(d);

    /* Read through Sluice's protocol with libsluice. */
    sluice_conf_t *c = sluice_conf_new();
    char err[256];
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", sbs, err, sizeof err) == SLUICE_CONF_OK);
    sluice_consumer_t *sc = sluice_consumer_new(c, err, sizeof err);
    CHECK_FATAL(sc != NULL);
    sluice_tp_list_t *l = sluice_tp_list_new(1);
    sluice_tp_list_add(l, "x1", 0)->offset = SLUICE_OFFSET_BEGINNING;
    CHECK_EQ_INT(sluice_consumer_assign(sc, l), 0);
    sluice_tp_list_destroy(l);
    int n = 0, wrong = 0, errors = 0;
    long long deadline = sl_mono_ms() + 15000;
    while (n < XN && sl_mono_ms() < deadline) {
        sluice_message_t *m = sluice_consumer_poll(sc, 100);
        if (!m) continue;
        if (m->err) {
            if (m->err != SLUICE_ERR__PARTITION_EOF && errors++ < 3)
                fprintf(stderr, "libsluice consume x1: %s\n", sluice_err2str(m->err));
            sluice_message_destroy(m);
            continue;
        }
        int i = n++;
        const xmsg_t *e = &x[i];
        int ok = m->offset == i && !mcmp(m->key, m->key_len, e->k, e->kl) &&
                 !mcmp(m->value, m->value_len, e->vnull ? NULL : e->v, e->vl) &&
                 m->timestamp == e->ts && m->header_count == (size_t)e->nh;
        if (ok && e->nh == 1)
            ok = strcmp(m->headers[0].key, "h1") == 0 &&
                 !mcmp(m->headers[0].value, m->headers[0].value_len, e->h1, strlen(e->h1));
        if (ok && e->nh == 2)
            ok = strcmp(m->headers[0].key, "bin") == 0 &&
                 !mcmp(m->headers[0].value, m->headers[0].value_len, e->hbin, 4) &&
                 strcmp(m->headers[1].key, "nul") == 0 && m->headers[1].value == NULL;
        if (!ok && wrong++ < 3)
            fprintf(stderr,
                    "x1 #%d: offset %" PRId64 " key %s/%zu value %s/%zu ts %" PRId64
                    " (want %" PRId64 ") headers %zu (want %d)\n",
                    i, m->offset, m->key ? "set" : "null", m->key_len, m->value ? "set" : "null",
                    m->value_len, m->timestamp, e->ts, m->header_count, e->nh);
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(n, XN);
    CHECK_EQ_INT(errors, 0);
    CHECK_MSG(wrong == 0, "%d messages differ between librdkafka and libsluice", wrong);
    sluice_consumer_close(sc);
    sluice_consumer_destroy(sc);
    for (int i = 0; i < XN; i++) free(x[i].v);
}

static void test_sluice_to_rd(void)
{
    int64_t t0 = sl_wall_ms() - 4000;
    xmsg_t x[XN];
    static const char *const kv[] = {"compression.type", "lz4", "linger.ms", "20", NULL};
    sluice_producer_t *p = mksprod(kv);
    dr_t *d = new_drs(XN);
    for (int i = 0; i < XN; i++) {
        xmsg_make(&x[i], i, t0);
        sluice_header_t hd[2];
        size_t nh = 0;
        if (x[i].nh == 1) hd[nh++] = (sluice_header_t){"h1", x[i].h1, strlen(x[i].h1)};
        if (x[i].nh == 2) {
            hd[nh++] = (sluice_header_t){"bin", x[i].hbin, 4};
            hd[nh++] = (sluice_header_t){"nul", NULL, 0};
        }
        CHECK_EQ_INT(sluice_produce(p, "x2", 0, x[i].k, x[i].kl, x[i].vnull ? NULL : x[i].v,
                                    x[i].vl, nh ? hd : NULL, nh, x[i].ts, &d[i]),
                     0);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), 0);
    for (int i = 0; i < XN; i++) CHECK_MSG(d[i].err == 0 && d[i].offset == i, "x2 #%d", i);
    sluice_producer_destroy(p);
    free(d);
    CHECK_MSG(stored_batch("x2", 3, NULL) >= 1, "libsluice's lz4 batches are not stored as lz4");

    msgs_t got;
    rd_kafka_t *c = read_all("x2", 1, XN, &got);
    int wrong = 0;
    for (size_t i = 0; i < got.n && i < XN; i++) {
        rd_kafka_message_t *m = got.m[i];
        const xmsg_t *e = &x[i];
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        rd_kafka_headers_t *hd = NULL;
        size_t nh = rd_kafka_message_headers(m, &hd) == 0 && hd ? rd_kafka_header_cnt(hd) : 0;
        int ok = m->offset == (int64_t)i && !mcmp(m->key, m->key_len, e->k, e->kl) &&
                 !mcmp(m->payload, m->len, e->vnull ? NULL : e->v, e->vl) && ts == e->ts &&
                 tt == RD_KAFKA_TIMESTAMP_CREATE_TIME && nh == (size_t)e->nh;
        const char *name = NULL;
        const void *val = NULL;
        size_t vl = 0;
        if (ok && e->nh == 1)
            ok = rd_kafka_header_get_all(hd, 0, &name, &val, &vl) == 0 && strcmp(name, "h1") == 0 &&
                 !mcmp(val, vl, e->h1, strlen(e->h1));
        if (ok && e->nh == 2) {
            ok = rd_kafka_header_get_all(hd, 0, &name, &val, &vl) == 0 &&
                 strcmp(name, "bin") == 0 && !mcmp(val, vl, e->hbin, 4);
            ok = ok && rd_kafka_header_get_all(hd, 1, &name, &val, &vl) == 0 &&
                 strcmp(name, "nul") == 0 && val == NULL;
        }
        if (!ok && wrong++ < 3)
            fprintf(stderr,
                    "x2 #%zu: offset %" PRId64 " key %s/%zu value %s/%zu ts %" PRId64
                    " (want %" PRId64 ") headers %zu (want %d)\n",
                    i, m->offset, m->key ? "set" : "null", m->key_len, m->payload ? "set" : "null",
                    m->len, ts, e->ts, nh, e->nh);
    }
    CHECK_MSG(wrong == 0, "%d messages differ between libsluice and librdkafka", wrong);
    msgs_free(&got);
    close_consumer(c);
    for (int i = 0; i < XN; i++) free(x[i].v);
}

/* ---- 4. a consumer group of two ----------------------------------------- */

typedef struct member {
    rd_kafka_t *rk;
    int assigned; /* partitions currently assigned */
    int rebalances;
    int (*seen)[1000];
    int consumed;
    int errors;
} member_t;

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    member_t *m = opaque;
    m->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        m->assigned = parts->cnt;
    } else {
        /* Commit what was consumed before giving the partitions away. */
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
        CHECK_MSG(e == 0 || e == RD_KAFKA_RESP_ERR__NO_OFFSET, "commit on revoke: %s",
                  rd_kafka_err2str(e));
        rd_kafka_assign(rk, NULL);
        m->assigned = 0;
    }
}

static void member_init(member_t *m, const char *group, int (*seen)[1000])
{
    memset(m, 0, sizeof *m);
    m->seen = seen;
    const char *const kv[] = {"group.id",
                              group,
                              "session.timeout.ms",
                              "6000",
                              "heartbeat.interval.ms",
                              "500",
                              "enable.auto.commit",
                              "false",
                              "auto.offset.reset",
                              "earliest",
                              "fetch.wait.max.ms",
                              "100",
                              "partition.assignment.strategy",
                              "range,roundrobin",
                              NULL};
    rd_kafka_conf_t *c = kconf(kv);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    rd_kafka_conf_set_opaque(c, m);
    m->rk = mk(RD_KAFKA_CONSUMER, c);
    rd_kafka_poll_set_consumer(m->rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, "grp4", RD_KAFKA_PARTITION_UA);
    CHECK_EQ_INT(rd_kafka_subscribe(m->rk, t), 0);
    rd_kafka_topic_partition_list_destroy(t);
}

static void member_poll(member_t *m, int ms)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, ms);
    if (!msg) return;
    if (msg->err == 0 && msg->partition >= 0 && msg->partition < 4 && msg->offset >= 0 &&
        msg->offset < 1000) {
        m->seen[msg->partition][msg->offset]++;
        m->consumed++;
    } else if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->errors++ < 3) fprintf(stderr, "group member: %s\n", rd_kafka_message_errstr(msg));
    }
    rd_kafka_message_destroy(msg);
}

static void produce_spread(rd_kafka_t *p, const char *topic, int nparts, int per, int first)
{
    for (int part = 0; part < nparts; part++)
        for (int i = 0; i < per; i++) {
            char v[32];
            snprintf(v, sizeof v, "p%d-%d", part, first + i);
            CHECK_EQ_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                           RD_KAFKA_V_VALUE(v, strlen(v)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        }
    CHECK_EQ_INT(rd_kafka_flush(p, 30000), 0);
}

static int total_seen(int (*seen)[1000], int *dups)
{
    int n = 0;
    *dups = 0;
    for (int p = 0; p < 4; p++)
        for (int o = 0; o < 1000; o++) {
            n += seen[p][o] > 0;
            *dups += seen[p][o] > 1 ? seen[p][o] - 1 : 0;
        }
    return n;
}

static void test_group(void)
{
    create_topic("grp4", 4);
    rd_kafka_t *p = mkprod(NULL);
    produce_spread(p, "grp4", 4, 100, 0);
    static int seen[4][1000];
    member_t a, b;
    member_init(&a, "g2", seen);
    member_init(&b, "g2", seen);
    int dups = 0;
    long long t0 = sl_mono_ms(), deadline = t0 + 40000;
    while (sl_mono_ms() < deadline) {
        member_poll(&a, 20);
        member_poll(&b, 20);
        if (a.assigned > 0 && b.assigned > 0 && a.assigned + b.assigned == 4 &&
            total_seen(seen, &dups) == 400)
            break;
    }
    CHECK_MSG(a.assigned > 0 && b.assigned > 0 && a.assigned + b.assigned == 4,
              "two members: assigned %d and %d partitions", a.assigned, b.assigned);
    CHECK_MSG(total_seen(seen, &dups) == 400, "two members consumed %d distinct of 400",
              total_seen(seen, &dups));
    fprintf(stderr, "group of two stable after %lld ms (%d + %d consumed)\n", sl_mono_ms() - t0,
            a.consumed, b.consumed);

    /* The group as ListGroups/DescribeGroups see it. */
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(p, "g2", &gl, 10000);
    CHECK_EQ_INT(e, 0);
    if (e == 0 && gl) {
        CHECK_EQ_INT(gl->group_cnt, 1);
        if (gl->group_cnt == 1) {
            const struct rd_kafka_group_info *g = &gl->groups[0];
            CHECK(strcmp(g->group, "g2") == 0);
            CHECK_EQ_INT(g->err, 0);
            CHECK_MSG(strcmp(g->state, "Stable") == 0, "state %s", g->state);
            CHECK(strcmp(g->protocol_type, "consumer") == 0);
            CHECK(strcmp(g->protocol, "range") == 0 || strcmp(g->protocol, "roundrobin") == 0);
            CHECK_EQ_INT(g->member_cnt, 2);
        }
        rd_kafka_group_list_destroy(gl);
    }

    /* a leaves; b ends up with all four and consumes the rest. */
    produce_spread(p, "grp4", 4, 100, 100);
    CHECK_EQ_INT(rd_kafka_consumer_close(a.rk), 0);
    rd_kafka_destroy(a.rk);
    t0 = sl_mono_ms();
    deadline = t0 + 40000;
    while (sl_mono_ms() < deadline) {
        member_poll(&b, 50);
        if (b.assigned == 4 && total_seen(seen, &dups) == 800) break;
    }
    CHECK_MSG(b.assigned == 4, "remaining member has %d partitions", b.assigned);
    CHECK_MSG(a.errors == 0 && b.errors == 0, "consumer errors: %d and %d", a.errors, b.errors);
    int n = total_seen(seen, &dups);
    CHECK_MSG(n == 800 && dups == 0, "after the leave: %d distinct of 800, %d duplicates", n, dups);
    fprintf(stderr, "after the leave: %lld ms, b consumed %d in total\n", sl_mono_ms() - t0,
            b.consumed);
    /* Nothing beyond what was produced. */
    for (int i = 0; i < 20; i++) member_poll(&b, 20);
    CHECK_EQ_INT(total_seen(seen, &dups), 800);
    CHECK_EQ_INT(dups, 0);

    gl = NULL;
    if (rd_kafka_list_groups(p, "g2", &gl, 10000) == 0 && gl) {
        CHECK(gl->group_cnt == 1 && gl->groups[0].member_cnt == 1 &&
              strcmp(gl->groups[0].state, "Stable") == 0);
        rd_kafka_group_list_destroy(gl);
    }
    CHECK_EQ_INT(rd_kafka_consumer_close(b.rk), 0);
    rd_kafka_destroy(b.rk);
    gl = NULL;
    if (rd_kafka_list_groups(p, NULL, &gl, 10000) == 0 && gl) {
        int found = 0;
        for (int i = 0; i < gl->group_cnt; i++)
            if (strcmp(gl->groups[i].group, "g2") == 0) found = 1;
        CHECK_MSG(found, "ListGroups does not list g2 (%d groups)", gl->group_cnt);
        rd_kafka_group_list_destroy(gl);
    } else {
        CHECK_MSG(0, "rd_kafka_list_groups(NULL) failed");
    }
    rd_kafka_destroy(p);
}

/* ---- 5. committed offsets across a restart ------------------------------ */

static rd_kafka_t *group_consumer(const char *group)
{
    const char *const kv[] = {"group.id",
                              group,
                              "session.timeout.ms",
                              "6000",
                              "heartbeat.interval.ms",
                              "500",
                              "enable.auto.commit",
                              "false",
                              "auto.offset.reset",
                              "earliest",
                              "enable.partition.eof",
                              "true",
                              "fetch.wait.max.ms",
                              "100",
                              NULL};
    rd_kafka_t *rk = mk(RD_KAFKA_CONSUMER, kconf(kv));
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void subscribe1(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    CHECK_EQ_INT(rd_kafka_subscribe(rk, t), 0);
    rd_kafka_topic_partition_list_destroy(t);
}

/* Consumes until both partitions of topic hit EOF: counts and the first
 * offset per partition. */
static void consume_to_eof(rd_kafka_t *rk, int count[2], int64_t first[2])
{
    int eof[2] = {0, 0}, errors = 0;
    count[0] = count[1] = 0;
    first[0] = first[1] = -1;
    long long deadline = sl_mono_ms() + 30000;
    while (!(eof[0] && eof[1]) && sl_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->partition >= 0 && m->partition < 2) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                eof[m->partition] = 1;
            } else if (m->err == 0) {
                if (first[m->partition] < 0) first[m->partition] = m->offset;
                count[m->partition]++;
                eof[m->partition] = 0;
            }
        }
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && errors++ < 3)
            fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    CHECK_MSG(eof[0] && eof[1], "did not reach the end of both partitions");
    CHECK_MSG(errors == 0, "%d consumer errors", errors);
}

static void committed(rd_kafka_t *rk, const char *topic, int64_t out[2])
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    rd_kafka_topic_partition_list_add(l, topic, 1);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 15000);
    CHECK_MSG(e == 0, "rd_kafka_committed: %s", rd_kafka_err2str(e));
    out[0] = l->elems[0].offset;
    out[1] = l->elems[1].offset;
    CHECK_EQ_INT(l->elems[0].err, 0);
    CHECK_EQ_INT(l->elems[1].err, 0);
    rd_kafka_topic_partition_list_destroy(l);
}

static void test_commit_restart(void)
{
    create_topic("rs", 2);
    rd_kafka_t *p = mkprod(NULL);
    produce_spread(p, "rs", 2, 50, 0);
    rd_kafka_destroy(p);

    rd_kafka_t *c = group_consumer("gr");
    int64_t got[2] = {-9, -9};
    committed(c, "rs", got);
    CHECK_EQ_INT(got[0], RD_KAFKA_OFFSET_INVALID);
    CHECK_EQ_INT(got[1], RD_KAFKA_OFFSET_INVALID);
    subscribe1(c, "rs");
    int count[2];
    int64_t first[2];
    consume_to_eof(c, count, first);
    CHECK(count[0] == 50 && count[1] == 50 && first[0] == 0 && first[1] == 0);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, "rs", 0)->offset = 37;
    rd_kafka_topic_partition_list_add(l, "rs", 1)->offset = 21;
    rd_kafka_resp_err_t e = rd_kafka_commit(c, l, 0);
    CHECK_MSG(e == 0, "commit: %s", rd_kafka_err2str(e));
    CHECK_EQ_INT(l->elems[0].err, 0);
    CHECK_EQ_INT(l->elems[1].err, 0);
    rd_kafka_topic_partition_list_destroy(l);
    committed(c, "rs", got);
    CHECK_EQ_INT(got[0], 37);
    CHECK_EQ_INT(got[1], 21);
    close_consumer(c);

    int port = h.kafka_port;
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status 0x%x", st);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_EQ_INT(h.kafka_port, port);

    c = group_consumer("gr");
    committed(c, "rs", got);
    CHECK_EQ_INT(got[0], 37);
    CHECK_EQ_INT(got[1], 21);
    subscribe1(c, "rs");
    consume_to_eof(c, count, first);
    CHECK_MSG(first[0] == 37 && first[1] == 21 && count[0] == 13 && count[1] == 29,
              "resumed at %" PRId64 "/%" PRId64 " with %d/%d messages; expected 37/21, 13/29",
              first[0], first[1], count[0], count[1]);
    close_consumer(c);

    /* The same committed offsets through Sluice's protocol (libsluice). */
    sluice_conf_t *sc = sluice_conf_new();
    char err[256];
    CHECK_FATAL(sluice_conf_set(sc, "bootstrap.servers", sbs, err, sizeof err) == SLUICE_CONF_OK);
    CHECK_FATAL(sluice_conf_set(sc, "group.id", "gr", err, sizeof err) == SLUICE_CONF_OK);
    sluice_consumer_t *s = sluice_consumer_new(sc, err, sizeof err);
    CHECK_FATAL(s != NULL);
    sluice_tp_list_t *sl = sluice_tp_list_new(2);
    sluice_tp_list_add(sl, "rs", 0);
    sluice_tp_list_add(sl, "rs", 1);
    CHECK_EQ_INT(sluice_consumer_committed(s, sl, 10000), 0);
    CHECK_MSG(sl->elems[0].offset == 37 && sl->elems[1].offset == 21,
              "libsluice sees committed %" PRId64 "/%" PRId64 ", expected 37/21",
              sl->elems[0].offset, sl->elems[1].offset);
    sluice_tp_list_destroy(sl);
    sluice_consumer_close(s);
    sluice_consumer_destroy(s);
}

/* ---- 6. idempotent producer across a SIGKILL ----------------------------- */

static void test_idempotent_kill(void)
{
    enum { N = 4000 };
    create_topic("idem", 1);
    static const char *const kv[] = {"enable.idempotence",
                                     "true",
                                     "linger.ms",
                                     "2",
                                     "message.timeout.ms",
                                     "60000",
                                     "retry.backoff.ms",
                                     "100",
                                     "reconnect.backoff.ms",
                                     "50",
                                     "reconnect.backoff.max.ms",
                                     "500",
                                     "batch.num.messages",
                                     "50",
                                     NULL};
    rd_kafka_t *p = mkprod(kv);
    dr_t *d = new_drs(N);
    dr_total = 0;
    char val[64];
    for (int i = 0; i < N / 2; i++) {
        snprintf(val, sizeof val, "idem-%05d-..........", i);
        CHECK_EQ_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("idem"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(val, strlen(val)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_OPAQUE(&d[i]), RD_KAFKA_V_END),
                     0);
        if (i % 100 == 0) rd_kafka_poll(p, 0);
    }
    long long deadline = sl_mono_ms() + 20000;
    while (dr_total < 300 && sl_mono_ms() < deadline) rd_kafka_poll(p, 1);
    int acked_at_kill = dr_total;
    int st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    for (int i = N / 2; i < N; i++) {
        snprintf(val, sizeof val, "idem-%05d-..........", i);
        CHECK_EQ_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("idem"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(val, strlen(val)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_OPAQUE(&d[i]), RD_KAFKA_V_END),
                     0);
    }
    rd_kafka_poll(p, 300);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_EQ_INT(rd_kafka_flush(p, 70000), 0);
    char err[512];
    rd_kafka_resp_err_t fe = rd_kafka_fatal_error(p, err, sizeof err);
    CHECK_MSG(fe == 0, "idempotent producer fatal error after the restart: %s", err);
    int failed = 0, unreported = 0;
    for (int i = 0; i < N; i++) {
        if (d[i].reports != 1)
            unreported++;
        else if (d[i].err != 0 && failed++ < 3)
            fprintf(stderr, "idem #%d: %s\n", i, rd_kafka_err2str((rd_kafka_resp_err_t)d[i].err));
    }
    fprintf(stderr, "idempotent: %d acked before the kill, %d failed, %d unreported\n",
            acked_at_kill, failed, unreported);
    CHECK_EQ_INT(unreported, 0);
    CHECK_MSG(failed == 0, "%d messages failed across the restart", failed);
    rd_kafka_destroy(p);

    /* Every acknowledged message exactly once, at its reported offset, and
     * no message twice. */
    int *times = calloc(N, sizeof *times);
    int64_t *where = calloc(N, sizeof *where);
    CHECK_FATAL(times && where);
    int acked = 0;
    for (int i = 0; i < N; i++) acked += d[i].reports == 1 && d[i].err == 0;
    msgs_t got;
    rd_kafka_t *c = read_all("idem", 1, (size_t)acked, &got);
    int strange = 0;
    for (size_t i = 0; i < got.n; i++) {
        int k = -1;
        rd_kafka_message_t *m = got.m[i];
        if (m->len > 10 && memcmp(m->payload, "idem-", 5) == 0)
            k = atoi((const char *)m->payload + 5);
        if (k < 0 || k >= N) {
            strange++;
            continue;
        }
        times[k]++;
        where[k] = m->offset;
    }
    int missing = 0, dup = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        if (times[i] > 1) dup++;
        if (d[i].reports == 1 && d[i].err == 0) {
            if (times[i] == 0)
                missing++;
            else if (where[i] != d[i].offset)
                moved++;
        }
    }
    CHECK_EQ_INT(strange, 0);
    CHECK_MSG(dup == 0, "%d messages stored more than once", dup);
    CHECK_MSG(missing == 0, "%d acknowledged messages missing", missing);
    CHECK_MSG(moved == 0, "%d acknowledged messages not at their reported offset", moved);
    CHECK_EQ_INT(got.n, (size_t)acked);
    msgs_free(&got);
    close_consumer(c);
    free(times);
    free(where);
    free(d);
}

/* ---- 7. admin API --------------------------------------------------------- */

static int admin_create(rd_kafka_t *rk, const char *name, int parts, int rf, const char *ck,
                        const char *cv, int validate_only)
{
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, parts, rf, err, sizeof err);
    CHECK_MSG(nt != NULL, "NewTopic %s: %s", name, err);
    if (!nt) return -1000;
    if (ck) rd_kafka_NewTopic_set_config(nt, ck, cv);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, 10000, err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(o, 5000, err, sizeof err);
    if (validate_only) rd_kafka_AdminOptions_set_validate_only(o, 1, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    int rc = -2000;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
        if (rd_kafka_event_error(ev))
            rc = rd_kafka_event_error(ev);
        else if (tr && cnt == 1)
            rc = rd_kafka_topic_result_error(tr[0]);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int admin_delete(rd_kafka_t *rk, const char *name)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    char err[512];
    rd_kafka_AdminOptions_set_request_timeout(o, 10000, err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(o, 5000, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    int rc = -2000;
    if (ev) {
        const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_DeleteTopics_result_topics(res, &cnt) : NULL;
        if (rd_kafka_event_error(ev))
            rc = rd_kafka_event_error(ev);
        else if (tr && cnt == 1)
            rc = rd_kafka_topic_result_error(tr[0]);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy(dt);
    return rc;
}

/* Partition count of topic in a fresh all-topics Metadata; -1 if absent. */
static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    CHECK_MSG(e == 0, "metadata: %s", rd_kafka_err2str(e));
    int n = -1;
    for (int i = 0; md && i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
            n = md->topics[i].partition_cnt;
    if (md) {
        CHECK_EQ_INT(md->broker_cnt, 1);
        CHECK_EQ_INT(md->orig_broker_id, 1);
        rd_kafka_metadata_destroy(md);
    }
    return n;
}

static void test_admin(void)
{
    rd_kafka_t *rk = mkprod(NULL);
    CHECK_EQ_INT(admin_create(rk, "adm", 5, 1, NULL, NULL, 0), 0);
    CHECK_EQ_INT(partitions_of(rk, "adm"), 5);
    CHECK_EQ_INT(admin_create(rk, "adm", 5, 1, NULL, NULL, 0),
                 RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
    CHECK_EQ_INT(admin_create(rk, "adm-rf3", 1, 3, NULL, NULL, 0),
                 RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ_INT(admin_create(rk, "adm-p0", 0, 1, NULL, NULL, 0),
                 RD_KAFKA_RESP_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(admin_create(rk, "adm-def", -1, -1, NULL, NULL, 0), 0);
    CHECK_EQ_INT(partitions_of(rk, "adm-def"), 1);
    CHECK_EQ_INT(admin_create(rk, "adm-cfg", 2, 1, "retention.ms", "3600000", 0), 0);
    CHECK_EQ_INT(admin_create(rk, "adm-badcfg", 2, 1, "no.such.config", "1", 0),
                 RD_KAFKA_RESP_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(admin_create(rk, "adm-validate", 2, 1, NULL, NULL, 1), 0);
    CHECK_EQ_INT(partitions_of(rk, "adm-rf3"), -1);
    CHECK_EQ_INT(partitions_of(rk, "adm-p0"), -1);
    CHECK_EQ_INT(partitions_of(rk, "adm-badcfg"), -1);
    CHECK_EQ_INT(partitions_of(rk, "adm-validate"), -1);
    CHECK_EQ_INT(partitions_of(rk, "adm-cfg"), 2);

    CHECK_EQ_INT(admin_delete(rk, "adm"), 0);
    CHECK_EQ_INT(partitions_of(rk, "adm"), -1);
    CHECK_EQ_INT(admin_delete(rk, "adm"), RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    /* Re-created empty after the delete. */
    CHECK_EQ_INT(admin_create(rk, "adm", 2, 1, NULL, NULL, 0), 0);
    CHECK_EQ_INT(partitions_of(rk, "adm"), 2);
    int64_t lo = -9, hi = -9;
    CHECK_EQ_INT(rd_kafka_query_watermark_offsets(rk, "adm", 1, &lo, &hi, 10000), 0);
    CHECK(lo == 0 && hi == 0);

    /* A topic of small segments (config from CreateTopics): fetches end at
     * segment boundaries; everything still reads back in order. */
    CHECK_EQ_INT(admin_create(rk, "segs", 1, 1, "segment.bytes", "16384", 0), 0);
    enum { SN = 2000 };
    for (int i = 0; i < SN; i++) {
        char v[256];
        int n = snprintf(v, sizeof v, "%06d-", i);
        memset(v + n, 'a' + i % 26, sizeof v - (size_t)n);
        CHECK_EQ_INT(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("segs"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(v, sizeof v),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
        if (i % 100 == 0) rd_kafka_poll(rk, 0);
    }
    CHECK_EQ_INT(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    msgs_t got;
    rd_kafka_t *c = read_all("segs", 1, SN, &got);
    int wrong = 0;
    for (size_t i = 0; i < got.n; i++) {
        char want[8];
        snprintf(want, sizeof want, "%06zu-", i);
        if (got.m[i]->offset != (int64_t)i || got.m[i]->len != 256 ||
            memcmp(got.m[i]->payload, want, 7) != 0 ||
            ((const char *)got.m[i]->payload)[255] != 'a' + (char)(i % 26))
            wrong++;
    }
    CHECK_MSG(wrong == 0, "segs: %d of %zu messages differ", wrong, got.n);
    msgs_free(&got);
    close_consumer(c);
}

/* ---- 8. ListOffsets ------------------------------------------------------- */

static int64_t offset_for(rd_kafka_t *rk, const char *topic, int64_t ts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = ts;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, 10000);
    CHECK_MSG(e == 0, "offsets_for_times: %s", rd_kafka_err2str(e));
    CHECK_EQ_INT(l->elems[0].err, 0);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

static void test_list_offsets(void)
{
    int64_t t0 = sl_wall_ms() - 600000;
    /* "ts1": one batch per message (librdkafka, flushed each time); "ts2":
     * all ten in one batch (built here, so it surely is one batch; the
     * lookup must look inside it, as Kafka does). */
    create_topic("ts1", 1);
    create_topic("ts2", 1);
    rd_kafka_t *p = mkprod(NULL);
    bg_record_t recs[10];
    char vals[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(vals[i], sizeof vals[i], "t%d", i);
        CHECK_EQ_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("ts1"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(vals[i], strlen(vals[i])),
                                       RD_KAFKA_V_TIMESTAMP(t0 + 1000 * i),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
        CHECK_EQ_INT(rd_kafka_flush(p, 10000), 0);
        recs[i] = (bg_record_t){NULL, 0, vals[i], (int32_t)strlen(vals[i]), t0 + 1000 * i, 0, NULL};
    }
    size_t blen = 0;
    uint8_t *batch = bg_build(recs, 10, 0, &blen);
    CHECK_FATAL(batch != NULL);
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    int64_t base = -1;
    CHECK_EQ_INT(kt_produce(fd, 7, 1, -1, "ts2", 0, batch, (int32_t)blen, &base), 0);
    CHECK_EQ_INT(base, 0);
    close(fd);
    free(batch);
    int32_t n1 = 0, n2 = 0;
    stored_batch("ts1", 0, &n1);
    stored_batch("ts2", 0, &n2);
    CHECK_MSG(n1 == 1 && n2 == 10, "first batches hold %d and %d records, expected 1 and 10", n1,
              n2);
    for (int t = 1; t <= 2; t++) {
        const char *topic = t == 1 ? "ts1" : "ts2";
        int64_t lo = -9, hi = -9;
        CHECK_EQ_INT(rd_kafka_query_watermark_offsets(p, topic, 0, &lo, &hi, 10000), 0);
        CHECK_EQ_INT(lo, 0);
        CHECK_EQ_INT(hi, 10);
        int64_t o0 = offset_for(p, topic, t0 - 5000);
        int64_t o3 = offset_for(p, topic, t0 + 3000);
        int64_t o35 = offset_for(p, topic, t0 + 3500);
        int64_t o9 = offset_for(p, topic, t0 + 9000);
        int64_t none = offset_for(p, topic, t0 + 60000);
        CHECK_MSG(o0 == 0 && o3 == 3 && o35 == 4 && o9 == 9 && none == -1,
                  "%s offsets for times: %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                  "; expected 0 3 4 9 -1",
                  topic, o0, o3, o35, o9, none);
    }
    rd_kafka_destroy(p);
}

/* A fatal check exits at once: do not leave the broker running. */
static void kill_broker(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "kafka-rdkafka");
    atexit(kill_broker);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(h.kafka_port > 0);
    snprintf(kbs, sizeof kbs, "127.0.0.1:%d", h.kafka_port);
    snprintf(sbs, sizeof sbs, "127.0.0.1:%d", h.port);
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"produce modes", test_produce_modes},
        {"keys", test_keys},
        {"librdkafka -> libsluice", test_rd_to_sluice},
        {"libsluice -> librdkafka", test_sluice_to_rd},
        {"admin", test_admin},
        {"list offsets", test_list_offsets},
        {"group of two", test_group},
        {"commits across a restart", test_commit_restart},
        {"idempotent producer across SIGKILL", test_idempotent_kill},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long t0 = sl_mono_ms();
        int before = check_failures;
        cases[i].fn();
        fprintf(stderr, "-- %s: %lld ms, %d failures\n", cases[i].name, sl_mono_ms() - t0,
                check_failures - before);
    }
    CHECK(rd_kafka_wait_destroyed(10000) == 0);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced exit status 0x%x", st);
    harness_cleanup(&h);
    return check_exit();
}
