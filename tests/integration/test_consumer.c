/* test_consumer.c — libsluice's consumer against the real sluiced: assign
 * from BEGINNING / END / explicit offsets, seek and position, keys, headers
 * and lz4 round trips, partition EOF, partial batches at the end of fetch
 * responses, a CRC-corrupted batch in a sealed segment (BAD_MSG, none of
 * its records), the fetch.max.bytes budget across many partitions, commits
 * (sync, async, committed() from another consumer), a group of three on six
 * partitions (exactly once, a member dying, a restarted group), and push
 * mode with an end-to-end latency measurement. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"
#include "sluice/sluice.h"

/* consumer.c's white-box hook (client/src/consumer_int.h). */
int64_t sl_consumer_max_buffered(sluice_consumer_t *c);

static harness_t h;
static const char *const extra[] = {"--group.initial.rebalance.delay.ms=0", NULL};

/* The value as an integer (values are not NUL-terminated). */
static int ival(const sluice_message_t *m)
{
    char b[32];
    size_t n = m->value_len < sizeof b - 1 ? m->value_len : sizeof b - 1;
    if (!m->value) return -1;
    memcpy(b, m->value, n);
    b[n] = '\0';
    return atoi(b);
}

static sluice_conf_t *mkconf(const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h.port);
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2) {
        sluice_conf_res_t r = sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err);
        CHECK_MSG(r == SLUICE_CONF_OK, "%s", err);
    }
    return c;
}

static sluice_producer_t *mkprod(const char *const *kv)
{
    char err[256];
    sluice_producer_t *p = sluice_producer_new(mkconf(kv), err, sizeof err);
    CHECK_FATAL(p);
    return p;
}

static sluice_consumer_t *mkcons(const char *const *kv)
{
    char err[256];
    sluice_consumer_t *c = sluice_consumer_new(mkconf(kv), err, sizeof err);
    CHECK_FATAL(c);
    return c;
}

static void create(const char *topic, int parts, const char *const *kv)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    Sluice__CreateTopicRequest m = SLUICE__CREATE_TOPIC_REQUEST__INIT;
    Sluice__CreateTopicRequest__ConfigsEntry e[4], *ep[4];
    size_t n = 0;
    for (; kv && kv[2 * n] && n < 4; n++) {
        sluice__create_topic_request__configs_entry__init(&e[n]);
        e[n].key = (char *)kv[2 * n];
        e[n].value = (char *)kv[2 * n + 1];
        ep[n] = &e[n];
    }
    m.name = (char *)topic;
    m.partitions = parts;
    m.n_configs = n;
    m.configs = ep;
    CHECK_FATAL(sc_send(&c, SLUICE__API_KEY__CREATE_TOPIC, &m.base, NULL, 0));
    sl_response_t r;
    CHECK_FATAL(sc_recv(&c, &r) == 0);
    CHECK_EQ_INT(r.hdr->error_code, 0);
    sc_close(&c);
}

/* Produces values "<seq>" (seq from `first`), keys "k<seq>", one header. */
static void produce_seq(sluice_producer_t *p, const char *topic, int32_t part, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char k[32], v[64], hv[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "%d", i);
        snprintf(hv, sizeof hv, "h%d", i);
        sluice_header_t hd = {"hdr", hv, strlen(hv)};
        int rc = sluice_produce(p, topic, part, k, strlen(k), v, strlen(v), &hd, 1, 0, NULL);
        CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), 0);
}

/* Next data message (skips EOFs unless want_eof), or NULL after timeout. */
static sluice_message_t *next_msg(sluice_consumer_t *c, int timeout_ms, int want_eof)
{
    int64_t end = sl_mono_ns() + (int64_t)timeout_ms * 1000000;
    while (sl_mono_ns() < end) {
        sluice_message_t *m = sluice_consumer_poll(c, 50);
        if (!m) continue;
        if (m->err == SLUICE_ERR__PARTITION_EOF && !want_eof) {
            sluice_message_destroy(m);
            continue;
        }
        return m;
    }
    return NULL;
}

static sluice_tp_list_t *one(const char *topic, int32_t part, int64_t off)
{
    sluice_tp_list_t *l = sluice_tp_list_new(1);
    sluice_tp_list_add(l, topic, part)->offset = off;
    return l;
}

static int64_t position(sluice_consumer_t *c, const char *topic, int32_t part)
{
    sluice_tp_list_t *l = one(topic, part, 0);
    sluice_consumer_position(c, l);
    int64_t v = l->elems[0].offset;
    sluice_tp_list_destroy(l);
    return v;
}

/* assign from BEGINNING / END / explicit, keys, headers, EOF, seek, position. */
static void test_assign(void)
{
    create("basic", 1, NULL);
    sluice_producer_t *p = mkprod((const char *const[]){"linger.ms", "0", NULL});
    produce_seq(p, "basic", 0, 0, 100);

    sluice_consumer_t *c = mkcons((const char *const[]){"enable.partition.eof", "true", NULL});
    sluice_tp_list_t *l = one("basic", 0, SLUICE_OFFSET_BEGINNING);
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    int ok = 1;
    for (int i = 0; i < 100; i++) {
        sluice_message_t *m = next_msg(c, 5000, 0);
        CHECK_FATAL(m);
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        if (m->err || m->offset != i || m->value_len != strlen(v) ||
            memcmp(m->value, v, m->value_len) || m->key_len != strlen(v) + 1 ||
            ((const char *)m->key)[0] != 'k' || m->header_count != 1 ||
            strcmp(m->headers[0].key, "hdr") != 0 || m->headers[0].value_len != strlen(v) + 1 ||
            m->timestamp <= 0 || strcmp(m->topic, "basic") != 0 || m->partition != 0) {
            ok = 0;
            fprintf(stderr, "bad message %d: err %d offset %lld\n", i, m->err,
                    (long long)m->offset);
        }
        sluice_message_destroy(m);
    }
    CHECK(ok);
    sluice_message_t *m = next_msg(c, 3000, 1);
    CHECK(m && m->err == SLUICE_ERR__PARTITION_EOF && m->offset == 100);
    sluice_message_destroy(m);
    CHECK_EQ_INT(position(c, "basic", 0), 100);

    /* explicit offset and seek */
    CHECK_EQ_INT(sluice_consumer_seek(c, "basic", 0, 50, 1000), 0);
    m = next_msg(c, 3000, 0);
    CHECK(m && m->offset == 50);
    sluice_message_destroy(m);
    CHECK_EQ_INT(position(c, "basic", 0), 51);
    CHECK_EQ_INT(sluice_consumer_seek(c, "basic", 0, SLUICE_OFFSET_BEGINNING, 1000), 0);
    m = next_msg(c, 3000, 0);
    CHECK(m && m->offset == 0);
    sluice_message_destroy(m);
    CHECK_EQ_INT(sluice_consumer_seek(c, "nope", 0, 5, 1000), SLUICE_ERR__STATE);
    sluice_tp_list_t *as = NULL;
    CHECK_EQ_INT(sluice_consumer_assignment(c, &as), 0);
    CHECK(as && as->cnt == 1 && strcmp(as->elems[0].topic, "basic") == 0);
    sluice_tp_list_destroy(as);

    /* END: only new messages */
    l = one("basic", 0, SLUICE_OFFSET_END);
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    m = next_msg(c, 700, 0);
    CHECK(m == NULL);
    sluice_message_destroy(m);
    produce_seq(p, "basic", 0, 100, 5);
    for (int i = 100; i < 105; i++) {
        m = next_msg(c, 5000, 0);
        CHECK(m && m->err == 0 && m->offset == i);
        sluice_message_destroy(m);
    }
    /* explicit start offset in assign */
    l = one("basic", 0, 42);
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    m = next_msg(c, 3000, 0);
    CHECK(m && m->offset == 42);
    sluice_message_destroy(m);
    CHECK_EQ_INT(sluice_consumer_close(c), 0);
    sluice_consumer_destroy(c);
    sluice_producer_destroy(p);
}

/* Reads partition 0 of topic from BEGINNING and checks values 0..n-1 in
 * order, exactly once. Extra conf in kv. */
static void read_seq(const char *topic, int n, const char *const *kv)
{
    sluice_consumer_t *c = mkcons(kv);
    sluice_tp_list_t *l = one(topic, 0, SLUICE_OFFSET_BEGINNING);
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    int next = 0, bad = 0;
    while (next < n) {
        sluice_message_t *m = next_msg(c, 5000, 0);
        if (!m) break;
        if (m->err || ival(m) != next || m->offset != next) bad++;
        next++;
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(next, n);
    CHECK_EQ_INT(bad, 0);
    sluice_message_t *m = next_msg(c, 300, 0);
    CHECK(m == NULL);
    sluice_message_destroy(m);
    sluice_consumer_destroy(c);
}

static void test_lz4_and_partial(void)
{
    create("lz", 1, NULL);
    sluice_producer_t *p = mkprod((const char *const[]){"compression.type", "lz4", "linger.ms",
                                                        "20", "batch.size", "65536", NULL});
    produce_seq(p, "lz", 0, 0, 5000);
    sluice_producer_destroy(p);
    read_seq("lz", 5000, NULL);

    /* Partial batches: fetches of 3000 bytes over ~2 KB batches end inside
     * a batch almost every time. */
    create("partial", 1, NULL);
    p = mkprod((const char *const[]){"linger.ms", "20", "batch.size", "2000", NULL});
    produce_seq(p, "partial", 0, 0, 3000);
    sluice_producer_destroy(p);
    read_seq("partial", 3000, (const char *const[]){"max.partition.fetch.bytes", "3000", NULL});
    /* and the smallest: every fetch returns one whole batch plus a tail */
    read_seq("partial", 3000, (const char *const[]){"max.partition.fetch.bytes", "1", NULL});
}

/* One budget across 16 partitions: prefetching alone stays within
 * fetch.max.bytes plus one batch. */
static void test_budget(void)
{
    create("many", 16, NULL);
    sluice_producer_t *p =
        mkprod((const char *const[]){"linger.ms", "20", "batch.size", "4096", NULL});
    char v[200];
    memset(v, 'x', sizeof v);
    for (int part = 0; part < 16; part++)
        for (int i = 0; i < 300; i++)
            CHECK_EQ_INT(sluice_produce(p, "many", part, NULL, 0, v, sizeof v, NULL, 0, 0, NULL),
                         0);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), 0);
    sluice_producer_destroy(p);
    const int64_t budget = 32768, max_batch = 4096 + 256;
    sluice_consumer_t *c = mkcons((const char *const[]){"fetch.max.bytes", "32768",
                                                        "max.partition.fetch.bytes", "8192", NULL});
    sluice_tp_list_t *l = sluice_tp_list_new(16);
    for (int i = 0; i < 16; i++) sluice_tp_list_add(l, "many", i)->offset = SLUICE_OFFSET_BEGINNING;
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    usleep(800 * 1000); /* the thread prefetches as much as it may */
    int64_t mb = sl_consumer_max_buffered(c);
    CHECK_MSG(mb > 0 && mb <= budget + max_batch, "buffered %lld, budget %lld", (long long)mb,
              (long long)budget);
    long n = 0;
    sluice_message_t *m;
    while ((m = next_msg(c, 2000, 0)) != NULL) {
        CHECK(m->err == 0);
        n++;
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(n, 16 * 300);
    mb = sl_consumer_max_buffered(c);
    CHECK_MSG(mb <= budget + max_batch, "buffered %lld, budget %lld", (long long)mb,
              (long long)budget);
    printf("budget: max buffered %lld of %lld\n", (long long)mb, (long long)budget);
    sluice_consumer_destroy(c);
}

static int64_t committed(sluice_consumer_t *c, const char *topic, int32_t part)
{
    sluice_tp_list_t *l = one(topic, part, 0);
    int rc = sluice_consumer_committed(c, l, 5000);
    CHECK_EQ_INT(rc, 0);
    int64_t v = l->elems[0].offset;
    sluice_tp_list_destroy(l);
    return v;
}

static void test_commit(void)
{
    const char *const kv[] = {"group.id", "g-commit", "enable.auto.commit", "false", NULL};
    sluice_consumer_t *c = mkcons(kv);
    CHECK_EQ_INT(committed(c, "basic", 0), SLUICE_OFFSET_INVALID);
    sluice_tp_list_t *l = one("basic", 0, SLUICE_OFFSET_BEGINNING);
    sluice_consumer_assign(c, l);
    sluice_tp_list_destroy(l);
    for (int i = 0; i < 30; i++) sluice_message_destroy(next_msg(c, 3000, 0));
    CHECK_EQ_INT(sluice_consumer_commit(c, NULL, 0), 0);
    CHECK_EQ_INT(committed(c, "basic", 0), 30);
    for (int i = 0; i < 10; i++) sluice_message_destroy(next_msg(c, 3000, 0));
    CHECK_EQ_INT(sluice_consumer_commit(c, NULL, 1), 0);
    sluice_consumer_t *c2 = mkcons(kv);
    int64_t got = -5;
    for (int i = 0; i < 60 && got != 40; i++) {
        got = committed(c2, "basic", 0);
        if (got != 40) usleep(50 * 1000);
    }
    CHECK_EQ_INT(got, 40);
    /* explicit offsets */
    l = one("basic", 0, 77);
    CHECK_EQ_INT(sluice_consumer_commit(c, l, 0), 0);
    sluice_tp_list_destroy(l);
    CHECK_EQ_INT(committed(c2, "basic", 0), 77);
    /* STORED starts at the committed offset */
    l = one("basic", 0, SLUICE_OFFSET_STORED);
    sluice_consumer_assign(c2, l);
    sluice_tp_list_destroy(l);
    sluice_message_t *m = next_msg(c2, 3000, 0);
    CHECK(m && m->offset == 77);
    sluice_message_destroy(m);
    sluice_consumer_close(c);
    sluice_consumer_destroy(c);
    sluice_consumer_destroy(c2);
    /* without group.id there is nothing to commit to */
    c = mkcons(NULL);
    CHECK_EQ_INT(sluice_consumer_commit(c, NULL, 0), SLUICE_ERR__INVALID_ARG);
    const char *t[] = {"basic"};
    CHECK_EQ_INT(sluice_consumer_subscribe(c, t, 1), SLUICE_ERR__INVALID_ARG);
    sluice_consumer_destroy(c);
}

/* A flipped byte in a sealed segment: BAD_MSG once, none of that batch's
 * records, everything else. */
static void test_crc(void)
{
    create("crc", 1, (const char *const[]){"segment.bytes", "65536", NULL});
    sluice_producer_t *p =
        mkprod((const char *const[]){"linger.ms", "5", "batch.size", "1024", NULL});
    for (int i = 0; i < 5000; i += 250)
        produce_seq(p, "crc", 0, i, 250); /* < segment.bytes per request */
    sluice_producer_destroy(p);
    CHECK_FATAL(harness_stop(&h, SIGTERM) >= 0);
    char path[600];
    snprintf(path, sizeof path, "%s/topics/crc/0/00000000000000000000.log", h.data);
    char *buf = NULL;
    int fd = open(path, O_RDWR);
    CHECK_FATAL(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    buf = malloc((size_t)st.st_size);
    CHECK_FATAL(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
    /* the third batch */
    size_t off = 0;
    for (int i = 0; i < 2; i++) off += (size_t)sl_batch_total_size((uint8_t *)buf + off);
    sl_batch_hdr_t hd;
    sl_batch_hdr_parse((uint8_t *)buf + off, &hd);
    size_t sz = (size_t)sl_batch_total_size((uint8_t *)buf + off);
    CHECK_FATAL(off + sz < (size_t)st.st_size);
    char b = (char)(buf[off + sz - 3] ^ 0x55);
    CHECK_FATAL(pwrite(fd, &b, 1, (off_t)(off + sz - 3)) == 1);
    close(fd);
    free(buf);
    int64_t bad_first = hd.base_offset, bad_last = hd.base_offset + hd.last_offset_delta;
    CHECK_FATAL(harness_start(&h, extra) == 0);

    sluice_consumer_t *c = mkcons(NULL);
    sluice_tp_list_t *l = one("crc", 0, SLUICE_OFFSET_BEGINNING);
    sluice_consumer_assign(c, l);
    sluice_tp_list_destroy(l);
    int bad = 0, in_bad = 0, good = 0, order = 1;
    int64_t last = -1;
    sluice_message_t *m;
    while ((m = next_msg(c, 2000, 0)) != NULL) {
        if (m->err == SLUICE_ERR__BAD_MSG) {
            bad++;
            CHECK_EQ_INT(m->offset, bad_first);
        } else if (m->err == 0) {
            good++;
            if (m->offset >= bad_first && m->offset <= bad_last) in_bad++;
            if (m->offset <= last) order = 0;
            last = m->offset;
        }
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(bad, 1);
    CHECK_EQ_INT(in_bad, 0);
    CHECK(order);
    CHECK_EQ_INT(good, 5000 - (bad_last - bad_first + 1));
    sluice_consumer_destroy(c);
    /* check.crcs=false: the records come through (the bytes are garbage or not) */
}

/* ---- groups ----------------------------------------------------------- */

#define GPARTS 6
typedef struct seen {
    int n;
    unsigned char *cnt;
    int dup;
} seen_t;

static void take(seen_t *s, const sluice_message_t *m)
{
    if (m->err) return;
    int v = ival(m);
    if (v < 0 || v >= s->n) return;
    if (s->cnt[v]++) s->dup++;
}

/* Polls every live consumer until `want` distinct values in [lo, hi) are
 * seen or timeout. Returns the number seen. */
static int drain(sluice_consumer_t **cs, int nc, seen_t *s, int lo, int hi, int timeout_ms)
{
    int64_t end = sl_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int have = 0;
        for (int v = lo; v < hi; v++) have += s->cnt[v] > 0;
        if (have == hi - lo || sl_mono_ns() > end) return have;
        for (int i = 0; i < nc; i++) {
            if (!cs[i]) continue;
            sluice_message_t *m = sluice_consumer_poll(cs[i], 10);
            if (m) take(s, m);
            sluice_message_destroy(m);
        }
    }
}

static void produce_wave(sluice_producer_t *p, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char v[32];
        snprintf(v, sizeof v, "%d", i);
        CHECK_EQ_INT(sluice_produce(p, "grp", i % GPARTS, NULL, 0, v, strlen(v), NULL, 0, 0, NULL),
                     0);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), 0);
}

static void test_group(void)
{
    create("grp", GPARTS, NULL);
    const int wave = 600;
    seen_t s = {.n = 3 * wave, .cnt = calloc(3 * wave, 1)};
    sluice_producer_t *p = mkprod((const char *const[]){"linger.ms", "1", NULL});
    produce_wave(p, 0, wave);
    const char *const kv[] = {"group.id",
                              "g3",
                              "auto.offset.reset",
                              "earliest",
                              "session.timeout.ms",
                              "3000",
                              "heartbeat.interval.ms",
                              "200",
                              "auto.commit.interval.ms",
                              "500",
                              NULL};
    const char *topics[] = {"grp"};
    sluice_consumer_t *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = mkcons(kv);
        CHECK_EQ_INT(sluice_consumer_subscribe(cs[i], topics, 1), 0);
    }
    CHECK_EQ_INT(drain(cs, 3, &s, 0, wave, 20000), wave);
    CHECK_EQ_INT(s.dup, 0);
    /* every member ends up with two partitions */
    int64_t end = sl_mono_ns() + 10000000000LL;
    int balanced = 0;
    while (!balanced && sl_mono_ns() < end) {
        balanced = 1;
        for (int i = 0; i < 3; i++) {
            sluice_tp_list_t *a = NULL;
            sluice_consumer_assignment(cs[i], &a);
            if (!a || a->cnt != 2) balanced = 0;
            sluice_tp_list_destroy(a);
            sluice_message_destroy(sluice_consumer_poll(cs[i], 10));
        }
    }
    CHECK(balanced);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sluice_consumer_commit(cs[i], NULL, 0), 0);

    /* One member dies without a word: the others take over its partitions
     * within the session timeout, from what it committed. */
    sluice_consumer_destroy(cs[2]);
    cs[2] = NULL;
    int64_t t0 = sl_mono_ns();
    produce_wave(p, wave, wave);
    CHECK_EQ_INT(drain(cs, 2, &s, wave, 2 * wave, 20000), wave);
    double took = (double)(sl_mono_ns() - t0) / 1e9;
    printf("group: survivors had the dead member's partitions after %.2f s\n", took);
    CHECK_MSG(took < 3.0 + 5.0, "rebalance took %.2f s", took);
    CHECK_EQ_INT(s.dup, 0);

    /* close (commits, leaves); a restarted group continues exactly */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(sluice_consumer_close(cs[i]), 0);
        sluice_consumer_destroy(cs[i]);
    }
    produce_wave(p, 2 * wave, wave);
    for (int i = 0; i < 2; i++) {
        cs[i] = mkcons(kv);
        CHECK_EQ_INT(sluice_consumer_subscribe(cs[i], topics, 1), 0);
    }
    CHECK_EQ_INT(drain(cs, 2, &s, 2 * wave, 3 * wave, 20000), wave);
    /* and nothing more trickles in */
    drain(cs, 2, &s, 0, 3 * wave + 0, 500);
    CHECK_EQ_INT(s.dup, 0);
    for (int i = 0; i < 3 * wave; i++)
        if (s.cnt[i] != 1) {
            CHECK_MSG(s.cnt[i] == 1, "value %d seen %d times", i, s.cnt[i]);
            break;
        }
    for (int i = 0; i < 2; i++) {
        sluice_consumer_close(cs[i]);
        sluice_consumer_destroy(cs[i]);
    }
    sluice_producer_destroy(p);
    free(s.cnt);
}

/* ---- push ----------------------------------------------------------------- */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct lat {
    sluice_producer_t *p;
    int rate, n;
    int64_t start;
} lat_t;

/* Open loop: message i is due at start + i/rate, whatever happened before;
 * its payload carries that due time, so a stall shows as latency instead of
 * as fewer samples (no coordinated omission). */
static void *lat_producer(void *arg)
{
    lat_t *l = arg;
    for (int i = 0; i < l->n; i++) {
        int64_t due = l->start + (int64_t)i * 1000000000 / l->rate;
        /* Sleep, not spin: on a small machine a spinning sender steals the
         * CPU the pipeline being measured needs. Waking late only adds to
         * the measured latency (the due time is in the payload). */
        struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
        }
        char v[64];
        memcpy(v, &due, sizeof due);
        memset(v + 8, 'p', sizeof v - 8);
        sluice_produce(l->p, "lat", 0, NULL, 0, v, sizeof v, NULL, 0, 0, NULL);
        sluice_producer_poll(l->p, 0);
    }
    sluice_producer_flush(l->p, 10000);
    return NULL;
}

static void test_push(void)
{
    create("pushed", 2, NULL);
    sluice_producer_t *p = mkprod((const char *const[]){"linger.ms", "2", NULL});
    produce_seq(p, "pushed", 0, 0, 1000);
    produce_seq(p, "pushed", 1, 0, 1000);
    sluice_consumer_t *c =
        mkcons((const char *const[]){"fetch.mode", "push", "fetch.max.bytes", "65536", NULL});
    sluice_tp_list_t *l = sluice_tp_list_new(2);
    sluice_tp_list_add(l, "pushed", 0)->offset = SLUICE_OFFSET_BEGINNING;
    sluice_tp_list_add(l, "pushed", 1)->offset = 500;
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    int next[2] = {0, 500}, bad = 0;
    sluice_message_t *m;
    while ((next[0] < 1000 || next[1] < 1000) && (m = next_msg(c, 5000, 0)) != NULL) {
        if (m->err || m->offset != next[m->partition] || ival(m) != next[m->partition])
            bad++;
        else
            next[m->partition]++;
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(next[0], 1000);
    CHECK_EQ_INT(next[1], 1000);
    CHECK_EQ_INT(bad, 0);
    /* live data after the backlog, and a seek */
    produce_seq(p, "pushed", 1, 1000, 10);
    for (int i = 1000; i < 1010; i++) {
        m = next_msg(c, 5000, 0);
        CHECK(m && m->partition == 1 && m->offset == i);
        sluice_message_destroy(m);
    }
    CHECK_EQ_INT(sluice_consumer_seek(c, "pushed", 0, 990, 1000), 0);
    m = next_msg(c, 5000, 0);
    CHECK(m && m->partition == 0 && m->offset == 990);
    sluice_message_destroy(m);
    sluice_consumer_destroy(c);
    sluice_producer_destroy(p);

    /* end-to-end latency at 20,000 msgs/s, linger.ms=0 */
    create("lat", 1, NULL);
    lat_t lt = {.p = mkprod((const char *const[]){"linger.ms", "0", "acks", "1", NULL}),
                .rate = 20000,
                .n = 40000};
    c = mkcons((const char *const[]){"fetch.mode", "push", NULL});
    l = one("lat", 0, SLUICE_OFFSET_END);
    sluice_consumer_assign(c, l);
    sluice_tp_list_destroy(l);
    while (position(c, "lat", 0) < 0) usleep(1000); /* subscribed at the end */
    usleep(50000);
    int64_t *lat = calloc((size_t)lt.n, sizeof *lat);
    int got = 0;
    lt.start = sl_mono_ns() + 10000000;
    pthread_t th;
    pthread_create(&th, NULL, lat_producer, &lt);
    while (got < lt.n && (m = next_msg(c, 5000, 0)) != NULL) {
        int64_t t = sl_mono_ns(), due;
        if (m->err == 0 && m->value_len >= 8) {
            memcpy(&due, m->value, sizeof due);
            lat[got++] = t - due;
        }
        sluice_message_destroy(m);
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(got, lt.n);
    if (got) {
        qsort(lat, (size_t)got, sizeof *lat, cmp64);
        printf("push e2e latency @%d msg/s, %d msgs: p50 %.3f ms p99 %.3f ms max %.3f ms "
               "(sanitized build: see bench/e2e_latency for release figures)\n",
               lt.rate, got, lat[got / 2] / 1e6, lat[got * 99 / 100] / 1e6, lat[got - 1] / 1e6);
    }
    free(lat);
    sluice_consumer_destroy(c);
    sluice_producer_destroy(lt.p);
}

int main(void)
{
    harness_init(&h, "consumer");
    CHECK_FATAL(harness_start(&h, extra) == 0);
    test_assign();
    test_lz4_and_partial();
    test_budget();
    test_commit();
    test_group();
    test_push();
    test_crc(); /* last: restarts the broker */
    harness_cleanup(&h);
    return check_exit();
}
