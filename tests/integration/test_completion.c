/* test_completion.c — no completion is ever dropped: with every allocating
 * cross-thread post refused (reactor_test_fail_posts), acks=all produces,
 * group commits and long polls on both protocols still fill their response
 * slots, in request order.
 *
 * Before the task nodes embedded in the waiting objects, a refused post of
 * a flush completion was logged and the slot never filled, so that
 * connection's later responses stalled behind it. The broker runs in this
 * process (broker_core) so the test can switch the refusal on after start.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batchgen.h"
#include "broker.h"
#include "check.h"
#include "kraw.h"
#include "log.h"
#include "sclient.h"

#define NPRODUCE 40

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static uint64_t send_produce(sc_t *c, const char *topic, int acks, int i)
{
    size_t len;
    uint8_t *b = bg_simple(2, 32, 1000 + i, (uint32_t)i, &len);
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = 0;
    m.acks = acks;
    m.timeout_ms = 10000;
    uint64_t corr = sc_send(c, SLUICE__API_KEY__PRODUCE, &m.base, b, len);
    free(b);
    return corr;
}

static uint64_t send_commit(sc_t *c, const char *topic, int64_t offset)
{
    Sluice__PartitionOffset po = SLUICE__PARTITION_OFFSET__INIT;
    po.topic = (char *)topic;
    po.partition = 0;
    po.offset = offset;
    po.metadata = (char *)"";
    Sluice__PartitionOffset *pop = &po;
    Sluice__OffsetCommitRequest m = SLUICE__OFFSET_COMMIT_REQUEST__INIT;
    m.group_id = (char *)"completion";
    m.generation_id = -1;
    m.member_id = (char *)"";
    m.n_offsets = 1;
    m.offsets = &pop;
    return sc_send(c, SLUICE__API_KEY__OFFSET_COMMIT, &m.base, NULL, 0);
}

static uint64_t send_list_offsets(sc_t *c, const char *topic)
{
    Sluice__ListOffsetsRequest m = SLUICE__LIST_OFFSETS_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = 0;
    m.timestamp = -1;
    return sc_send(c, SLUICE__API_KEY__LIST_OFFSETS, &m.base, NULL, 0);
}

/* One pipelined connection: acks=all produces with commits and list
 * offsets in between; every answer must come, in order, without error. */
static void pipelined(int port)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, port) == 0);
    c.timeout_ms = 15000;
    CHECK_EQ_INT(sc_create_topic(&c, "cmp", 1), 0);
    uint64_t corr[3 * NPRODUCE];
    int api[3 * NPRODUCE], n = 0;
    for (int i = 0; i < NPRODUCE; i++) {
        api[n] = SLUICE__API_KEY__PRODUCE;
        corr[n++] = send_produce(&c, "cmp", -1, i);
        if (i % 4 == 0) {
            api[n] = SLUICE__API_KEY__LIST_OFFSETS;
            corr[n++] = send_list_offsets(&c, "cmp");
        }
        if (i % 8 == 0) {
            api[n] = SLUICE__API_KEY__OFFSET_COMMIT;
            corr[n++] = send_commit(&c, "cmp", i);
        }
    }
    int64_t next_base = 0;
    for (int i = 0; i < n; i++) {
        sl_response_t r;
        int rc = sc_recv(&c, &r);
        CHECK_MSG(rc == 0, "response %d of %d (api %d): sc_recv %d (a stalled slot)", i, n, api[i],
                  rc);
        if (rc != 0) break;
        CHECK_MSG(r.hdr->correlation_id == corr[i] && (int)r.hdr->api == api[i],
                  "response %d: corr %" PRIu64 " api %d, expected corr %" PRIu64 " api %d", i,
                  r.hdr->correlation_id, (int)r.hdr->api, corr[i], api[i]);
        CHECK_MSG(r.hdr->error_code == 0, "response %d (api %d): error %d %s", i, api[i],
                  r.hdr->error_code, r.hdr->error_message);
        if (api[i] == SLUICE__API_KEY__PRODUCE && r.hdr->error_code == 0) {
            sl_err_t err;
            Sluice__ProduceResponse *pr = (Sluice__ProduceResponse *)sl_body_decode(
                &sluice__produce_response__descriptor, r.body, r.body_len, &c.arena, &err);
            CHECK(pr != NULL);
            if (pr) {
                CHECK_MSG(pr->base_offset == next_base,
                          "produce base %" PRId64 ", expected %" PRId64, pr->base_offset,
                          next_base);
                next_base = pr->base_offset + 2;
            }
        }
    }
    sc_close(&c);
}

typedef struct poll_arg {
    int port;
    int rc;
    size_t got;
    long long took_ms;
} poll_arg_t;

/* A long poll at the log end, answered by data a producer appends on
 * another connection: the wake-up post is refused, so the answer comes at
 * max_wait with the data, never later and never not at all. */
static void *long_poll(void *arg)
{
    poll_arg_t *a = arg;
    sc_t c;
    if (sc_connect(&c, a->port) != 0) {
        a->rc = -100;
        return NULL;
    }
    c.timeout_ms = 10000;
    const uint8_t *p;
    int64_t hw;
    long long t0 = mono_ms();
    a->rc = sc_fetch(&c, "cmp", 0, 2 * NPRODUCE, 1 << 20, 1, 1500, &p, &a->got, &hw);
    a->took_ms = mono_ms() - t0;
    sc_close(&c);
    return NULL;
}

static void kafka_produces(int port)
{
    int fd = kt_connect(port);
    CHECK_FATAL(fd >= 0);
    for (int i = 0; i < 5; i++) {
        size_t len;
        uint8_t *b = bg_simple(1, 16, 1, (uint32_t)i, &len);
        int64_t base = -1;
        int rc = kt_produce(fd, 7, 100 + i, -1, "kcmp", 0, b, (int32_t)len, &base);
        free(b);
        CHECK_MSG(rc == 0 && base == i, "kafka acks=all produce %d: code %d base %" PRId64, i, rc,
                  base);
    }
    close(fd);
}

int main(void)
{
    char *dir = check_tmpdir("completion");
    CHECK_FATAL(dir != NULL);
    log_level = LOG_WARN;
    broker_conf_t conf;
    broker_conf_defaults(&conf);
    sl_err_t err;
    const char *kv[][2] = {{"log.dirs", dir},
                           {"listeners", "127.0.0.1:0"},
                           {"kafka.listeners", "127.0.0.1:0"},
                           {"metrics.listener", ""},
                           {"num.reactors", "2"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK_FATAL(broker_conf_set(&conf, kv[i][0], kv[i][1], &err) == SL_OK);
    static broker_t b;
    CHECK_FATAL(broker_start(&b, &conf, &err) == SL_OK);
    int port = b.port, kport = b.listeners[1].port;

    reactor_test_fail_posts(1);
    pipelined(port);
    kafka_produces(kport);

    poll_arg_t pa = {.port = port};
    pthread_t t;
    pthread_create(&t, NULL, long_poll, &pa);
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL); /* let the poll park; if it has not, it sees the data at once */
    sc_t c;
    CHECK_FATAL(sc_connect(&c, port) == 0);
    int64_t base;
    size_t len;
    uint8_t *bb = bg_simple(1, 16, 1, 7, &len);
    CHECK_EQ_INT(sc_produce(&c, "cmp", 0, 1, bb, len, &base), 0);
    free(bb);
    pthread_join(t, NULL);
    CHECK_MSG(pa.rc == 0 && pa.got > 0, "long poll: rc %d, %zu bytes", pa.rc, pa.got);
    CHECK_MSG(pa.took_ms < 5000, "long poll took %lld ms (max_wait 1500)", pa.took_ms);
    sc_close(&c);
    CHECK_MSG(reactor_test_refused_posts() > 0,
              "no post was refused: the injection did not reach the wake-up path");

    /* The stop itself posts to every worker: it must not depend on it. */
    long long t0 = mono_ms();
    broker_stop(&b);
    CHECK_MSG(mono_ms() - t0 < 4000, "broker_stop took %lld ms", mono_ms() - t0);
    reactor_test_fail_posts(0);
    check_rmtree(dir);
    free(dir);
    return check_exit();
}
