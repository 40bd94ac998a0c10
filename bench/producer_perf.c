/* producer_perf — one application thread calling sluice_produce() for
 * fixed-size messages as fast as it can, against a sluiced it starts (or
 * --port). Reports msgs/s and MB/s from the first produce to the last
 * delivery report (flush included); --json prints a JSON line last.
 *
 *   producer_perf [--messages N] [--size B] [--acks 0|1|all]
 *                 [--batch-size B] [--linger-ms MS] [--compression none|lz4]
 *                 [--partitions P] [--port PORT] [--json]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "harness.h"
#include "sclient.h"
#include "sluice/sluice.h"

static long long delivered, failed;

static void dr(sluice_producer_t *p, const sluice_message_t *m, void *o)
{
    (void)p;
    (void)o;
    if (m->err)
        failed++;
    else
        delivered++;
}

int main(int argc, char **argv)
{
    long long n = 5000000;
    int size = 100, port = 0, json = 0, partitions = 1;
    const char *acks = "1", *bsize = "1048576", *linger = "5", *comp = "none";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!v) goto usage;
        i++;
        if (!strcmp(a, "--messages"))
            n = atoll(v);
        else if (!strcmp(a, "--size"))
            size = atoi(v);
        else if (!strcmp(a, "--acks"))
            acks = v;
        else if (!strcmp(a, "--batch-size"))
            bsize = v;
        else if (!strcmp(a, "--linger-ms"))
            linger = v;
        else if (!strcmp(a, "--compression"))
            comp = v;
        else if (!strcmp(a, "--partitions"))
            partitions = atoi(v);
        else if (!strcmp(a, "--port"))
            port = atoi(v);
        else
            goto usage;
    }
    signal(SIGPIPE, SIG_IGN);
    harness_t h;
    int own = port == 0;
    if (own) {
        harness_init(&h, "producer_perf");
        if (harness_start(&h, NULL) != 0) return 1;
        port = h.port;
    }
    if (partitions > 1) {
        sc_t c;
        if (sc_connect(&c, port) == 0) {
            sc_create_topic(&c, "perf", partitions);
            sc_close(&c);
        }
    }
    char bs[64], err[256];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", port);
    sluice_conf_t *conf = sluice_conf_new();
    const char *kv[] = {"bootstrap.servers",
                        bs,
                        "acks",
                        acks,
                        "batch.size",
                        bsize,
                        "linger.ms",
                        linger,
                        "compression.type",
                        comp,
                        "buffer.memory",
                        "268435456",
                        NULL};
    for (int i = 0; kv[i]; i += 2)
        if (sluice_conf_set(conf, kv[i], kv[i + 1], err, sizeof err) != SLUICE_CONF_OK) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    sluice_conf_set_dr_cb(conf, dr);
    sluice_producer_t *p = sluice_producer_new(conf, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *payload = malloc((size_t)size);
    memset(payload, 'p', (size_t)size);
    /* Learn the topic's metadata before the clock starts. */
    sluice_produce(p, "perf", SLUICE_PARTITION_UA, NULL, 0, payload, (size_t)size, NULL, 0, 0,
                   NULL);
    sluice_producer_flush(p, 10000);
    delivered = failed = 0;
    double t0 = (double)sl_mono_ns() / 1e9;
    for (long long i = 0; i < n; i++) {
        int rc = sluice_produce(p, "perf", SLUICE_PARTITION_UA, NULL, 0, payload, (size_t)size,
                                NULL, 0, 0, NULL);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "produce: %s\n", sluice_err2str(rc));
            break;
        }
        if ((i & 4095) == 0) sluice_producer_poll(p, 0);
    }
    double t_prod = (double)sl_mono_ns() / 1e9 - t0;
    sluice_producer_flush(p, 120000);
    double el = (double)sl_mono_ns() / 1e9 - t0;
    sluice_producer_destroy(p);
    free(payload);
    double rate = (double)delivered / el;
    printf("producer_perf: %lld messages of %d B, acks=%s batch.size=%s linger.ms=%s "
           "compression=%s partitions=%d\n",
           n, size, acks, bsize, linger, comp, partitions);
    printf("  produce loop %.3f s, until last report %.3f s: %.0f msgs/s, %.1f MB/s, %lld "
           "failed\n",
           t_prod, el, rate, rate * size / 1e6, failed);
    if (json)
        printf("{\"messages\":%lld,\"size\":%d,\"acks\":\"%s\",\"batch_size\":%s,\"linger_ms\":%s,"
               "\"compression\":\"%s\",\"partitions\":%d,\"seconds\":%.4f,\"msgs_per_s\":%.0f,"
               "\"mb_per_s\":%.2f,\"delivered\":%lld,\"failed\":%lld}\n",
               n, size, acks, bsize, linger, comp, partitions, el, rate, rate * size / 1e6,
               delivered, failed);
    if (own) {
        harness_stop(&h, SIGTERM);
        harness_cleanup(&h);
    }
    return failed ? 1 : 0;
usage:
    fprintf(stderr, "usage: producer_perf [--messages N] [--size B] [--acks 0|1|all] "
                    "[--batch-size B] [--linger-ms MS] [--compression none|lz4] "
                    "[--partitions P] [--port PORT] [--json]\n");
    return 2;
}
