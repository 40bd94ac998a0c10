/* e2e_latency — end-to-end latency of libsluice: a producer (linger.ms=0,
 * acks=1) and a consumer (fetch.mode=push by default) in one process,
 * against a sluiced it starts (or --port).
 *
 * Open loop: message i is due at start + i/rate whatever happened before,
 * and its payload carries that due time; latency = receive time - due time.
 * A stall of the producer or of the broker therefore shows up as latency of
 * every message that should have been sent meanwhile, instead of as fewer
 * samples (no coordinated omission).
 *
 *   e2e_latency [--rate N] [--seconds S] [--size B] [--mode push|pull]
 *               [--port PORT] [--json]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "sluice/sluice.h"

typedef struct {
    sluice_producer_t *p;
    int rate, size;
    long n;
    int64_t start;
} prod_t;

static void *producer(void *arg)
{
    prod_t *a = arg;
    char *v = calloc(1, (size_t)a->size);
    for (long i = 0; i < a->n; i++) {
        int64_t due = a->start + (int64_t)i * 1000000000 / a->rate;
        /* Sleep, not spin: on a small machine a spinning sender steals the
         * CPU the pipeline being measured needs. Waking late only adds to
         * the measured latency (the due time is in the payload). */
        struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
        }
        memcpy(v, &due, sizeof due);
        while (sluice_produce(a->p, "e2e", 0, NULL, 0, v, (size_t)a->size, NULL, 0, 0, NULL) != 0)
            sluice_producer_poll(a->p, 1);
        sluice_producer_poll(a->p, 0);
    }
    sluice_producer_flush(a->p, 30000);
    free(v);
    return NULL;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static sluice_conf_t *conf(int port, const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    char bs[64], err[256];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", port);
    sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err);
    for (int i = 0; kv[i]; i += 2)
        if (sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err) != SLUICE_CONF_OK) {
            fprintf(stderr, "%s\n", err);
            exit(2);
        }
    return c;
}

int main(int argc, char **argv)
{
    int rate = 20000, seconds = 5, size = 64, port = 0, json = 0;
    const char *mode = "push";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--rate") && v)
            rate = atoi(argv[++i]);
        else if (!strcmp(a, "--seconds") && v)
            seconds = atoi(argv[++i]);
        else if (!strcmp(a, "--size") && v)
            size = atoi(argv[++i]);
        else if (!strcmp(a, "--port") && v)
            port = atoi(argv[++i]);
        else if (!strcmp(a, "--mode") && v)
            mode = argv[++i];
        else {
            fprintf(stderr,
                    "usage: e2e_latency [--rate N] [--seconds S] [--size B] [--mode push|pull] "
                    "[--port PORT] [--json]\n");
            return 2;
        }
    }
    if (size < 8) size = 8;
    harness_t h;
    int own = port == 0;
    if (own) {
        harness_init(&h, "e2e");
        if (harness_start(&h, NULL) != 0) return 1;
        port = h.port;
    }
    char err[256];
    sluice_producer_t *p = sluice_producer_new(
        conf(port, (const char *const[]){"linger.ms", "0", "acks", "1", NULL}), err, sizeof err);
    sluice_consumer_t *c = sluice_consumer_new(
        conf(port, (const char *const[]){"fetch.mode", mode, "fetch.max.wait.ms", "100", NULL}),
        err, sizeof err);
    if (!p || !c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Create the topic (first produce), then subscribe at its end. */
    sluice_produce(p, "e2e", 0, NULL, 0, "warmup-0", 8, NULL, 0, 0, NULL);
    sluice_producer_flush(p, 10000);
    sluice_tp_list_t *l = sluice_tp_list_new(1);
    sluice_tp_list_add(l, "e2e", 0)->offset = SLUICE_OFFSET_END;
    sluice_consumer_assign(c, l);
    for (;;) {
        sluice_consumer_position(c, l);
        if (l->elems[0].offset >= 0) break;
        usleep(1000);
    }
    sluice_tp_list_destroy(l);
    usleep(100000);
    prod_t a = {.p = p, .rate = rate, .size = size, .n = (long)rate * seconds};
    int64_t *lat = calloc((size_t)a.n, sizeof *lat);
    a.start = sl_mono_ns() + 20000000;
    pthread_t th;
    pthread_create(&th, NULL, producer, &a);
    long got = 0;
    while (got < a.n) {
        sluice_message_t *m = sluice_consumer_poll(c, 5000);
        if (!m) break;
        int64_t t = sl_mono_ns(), due;
        if (!m->err && m->value_len >= 8) {
            memcpy(&due, m->value, sizeof due);
            lat[got++] = t - due;
        }
        sluice_message_destroy(m);
    }
    pthread_join(th, NULL);
    qsort(lat, (size_t)got, sizeof *lat, cmp64);
#define PCT(q) (got ? lat[(long)((double)(got - 1) * (q))] / 1e6 : 0.0)
    double p50 = PCT(0.50), p90 = PCT(0.90), p99 = PCT(0.99), p999 = PCT(0.999), mx = PCT(1.0);
    printf("e2e latency (%s, %d msg/s, %d B, %ld/%ld msgs): p50 %.3f ms, p90 %.3f ms, "
           "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
           mode, rate, size, got, a.n, p50, p90, p99, p999, mx);
    if (json)
        printf("{\"bench\":\"e2e_latency\",\"mode\":\"%s\",\"rate\":%d,\"size\":%d,\"sent\":%ld,"
               "\"received\":%ld,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
               "\"p999_ms\":%.4f,\"max_ms\":%.4f}\n",
               mode, rate, size, a.n, got, p50, p90, p99, p999, mx);
    free(lat);
    sluice_consumer_destroy(c);
    sluice_producer_destroy(p);
    if (own) harness_cleanup(&h);
    return got == a.n ? 0 : 1;
}
