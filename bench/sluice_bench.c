/* sluice_bench.c — the sluice-bench harness: runs one workload (workload.h)
 * through one system's driver (driver.h) and measures it.
 *
 *   sluice-bench [workload flags, see workload.h]
 *   sluice-bench compare OLD.json NEW.json [--threshold PCT]
 *
 * compare takes files of --json lines; a file with several runs of one
 * workload gives medians and a measured run-to-run noise (see
 * compare_main()).
 *
 * A run: setup (fresh topic), consumers subscribe, producers send for the
 * warm-up and then the measured phase, producers flush, consumers drain
 * until every acknowledged message has arrived (or nothing arrived for
 * DRAIN_IDLE_S), teardown. Every payload starts with a seqcheck header
 * (stream id, sequence, send time); the consumers feed one shared seqcheck
 * for loss and duplicates and compute end-to-end latency from the header.
 *
 * Closed loop (rate 0): each producer sends as fast as its client accepts;
 * the header's time is the actual send time. Open loop (rate > 0): message
 * i of a producer is due at t0 + i / rate_k, and the header carries that
 * intended time, so a stall (of the client, the broker or this harness)
 * shows up as latency of every message that should have gone out meanwhile
 * instead of as fewer samples (no coordinated omission). How late the sends
 * actually were is reported on its own (send delay).
 *
 * Only messages whose header time is in the measured phase count for the
 * figures; warm-up messages are checked for loss like any other.
 *
 * Output: a human summary on stdout and, with --json, one JSON object as the
 * last stdout line. Exit 0, or 1 when a message was lost or failed, a
 * client failed, or nothing was measured; 2 for bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "driver.h"
#include "harness.h"
#include "histogram.h"
#include "seqcheck.h"
#include "workload.h"

/* The sluiced this process started (0: none); the drivers' broker_pid()
 * returns it for Sluice's systems. */
pid_t sluice_bench_broker_pid;

/* After producers are done, consumers stop once they have every acked
 * message, or once nothing new arrived for this long (a loss). */
#define DRAIN_IDLE_S 10
/* (producer thread, partition) pairs up to this get their own seqcheck
 * stream, so partitions consumed at different paces do not look like late
 * arrivals; beyond it one stream per thread bounds the checker's memory. */
#define MAX_STREAMS 4096

const char *driver_group_id(const char *topic)
{
    static char id[300];
    static _Atomic int done;
    if (!atomic_load(&done)) {
        /* Consumers are created from one thread before they start, so this
         * first write does not race. */
        snprintf(id, sizeof id, "%s-g%ld-%lld", topic, (long)getpid(),
                 (long long)(sl_wall_ms() / 1000));
        atomic_store(&done, 1);
    }
    return id;
}

const bench_driver_t *driver_for(workload_system_t system)
{
    switch (system) {
    case WORKLOAD_SLUICE:
        return &drv_sluice;
    case WORKLOAD_SLUICE_KAFKA:
    case WORKLOAD_KAFKA:
        return &drv_kafka;
    case WORKLOAD_RABBITMQ:
#ifdef HAVE_DRV_RABBITMQ
        return &drv_rabbitmq;
#else
        return NULL;
#endif
    }
    return NULL;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

typedef struct run {
    const workload_t *w;
    const bench_driver_t *drv;
    const char *topic;
    uint64_t t0;     /* warm-up starts: the first message is due */
    uint64_t mstart; /* measured phase starts */
    uint64_t mend;   /* measured phase ends (duration runs); 0 for --messages */
    bool per_pair;   /* seqcheck stream per (producer, partition) */
    seqcheck_t *sc;
    pthread_mutex_t sc_mu;
    _Atomic uint64_t delivered; /* first deliveries over all consumers */
    _Atomic bool stop_consumers;
} run_t;

typedef struct prod {
    run_t *r;
    int id;
    drv_producer_t *p;
    pthread_t th;
    uint64_t *seq; /* next sequence per stream of this producer */
    uint64_t sent, refused, sent_measured, bytes_measured;
    uint64_t flushed_ns;
    bool flush_failed;
    histogram_t *send_delay;
} prod_t;

typedef struct arrival {
    uint32_t stream;
    uint32_t partition;
    uint64_t seq, send_ns, recv_ns;
    size_t len;
} arrival_t;

#define ARRIVALS 1024

typedef struct cons {
    run_t *r;
    int id;
    drv_consumer_t *c;
    pthread_t th;
    histogram_t *lat;
    uint64_t recv_measured, bytes_measured, last_recv_ns, garbage;
    _Atomic bool failed; /* read by the main thread while draining */
    /* Arrivals are checked in batches so the shared checker's mutex is
     * taken once per batch, not once per message. */
    arrival_t buf[ARRIVALS];
    size_t nbuf;
} cons_t;

/* Message i of a producer sending rate_k msgs/s is due at t0 + i/rate_k,
 * computed without overflowing for any i a run can reach. */
static uint64_t due_time(uint64_t t0, uint64_t i, uint64_t rate_k)
{
    return t0 + i / rate_k * 1000000000u + (i % rate_k) * 1000000000u / rate_k;
}

static uint64_t share(uint64_t total, uint32_t n, int id)
{
    return total / n + ((uint64_t)id < total % n ? 1 : 0);
}

static void *producer_main(void *arg)
{
    prod_t *pr = arg;
    run_t *r = pr->r;
    const workload_t *w = r->w;
    const bench_driver_t *d = r->drv;
    uint8_t *buf = malloc(w->message_bytes);
    if (!buf) {
        pr->flush_failed = true;
        return NULL;
    }
    /* Letters, not zeros: lz4 runs should not compress to nothing, nor
     * should they be incompressible noise. */
    uint32_t x = 2463534242u + (uint32_t)pr->id;
    for (uint64_t i = 0; i < w->message_bytes; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (uint8_t)('a' + x % 16);
    }
    uint64_t rate_k = w->rate ? share(w->rate, w->producers, pr->id) : 0;
    uint64_t quota = w->messages ? share(w->messages, w->producers, pr->id) : 0;
    bool idle = w->rate && rate_k == 0; /* more producers than msgs/s */
    for (uint64_t i = 0; !idle; i++) {
        uint64_t send_ns, now;
        if (rate_k) {
            send_ns = due_time(r->t0, i, rate_k);
            if (r->mend && send_ns >= r->mend) break;
            now = sl_mono_ns();
            /* Serve acknowledgements while waiting; sleep the last stretch
             * rather than spin, which would steal CPU from the clients and
             * broker being measured. Waking late is measured (send delay). */
            if (send_ns > now + 2000000) {
                d->poll(pr->p, (int)((send_ns - now) / 1000000) - 1);
                now = sl_mono_ns();
            }
            if (send_ns > now) {
                sleep_until(send_ns);
                now = sl_mono_ns();
            }
            if (send_ns >= r->mstart) histogram_record(pr->send_delay, now - send_ns);
        } else {
            send_ns = now = sl_mono_ns();
            if (r->mend && now >= r->mend) break;
        }
        bool measured = send_ns >= r->mstart;
        if (quota && measured && pr->sent_measured >= quota) break;
        int part = (int)((i + (uint64_t)pr->id) % w->partitions);
        size_t sidx = r->per_pair ? (size_t)part : 0;
        seqcheck_hdr_t h = {
            .producer =
                r->per_pair ? (uint32_t)pr->id * w->partitions + (uint32_t)part : (uint32_t)pr->id,
            .seq = pr->seq[sidx],
            .send_ns = send_ns,
        };
        seqcheck_encode(buf, &h);
        if (d->produce(pr->p, part, buf, w->message_bytes) != 0) {
            /* Refused at once (not backpressure, which blocks): the
             * sequence is reused, so a refusal is not counted as a loss. */
            pr->refused++;
            d->poll(pr->p, 1);
            continue;
        }
        pr->seq[sidx]++;
        pr->sent++;
        if (measured) {
            pr->sent_measured++;
            pr->bytes_measured += w->message_bytes;
        }
        if ((pr->sent & 63) == 0) d->poll(pr->p, 0);
    }
    if (d->flush(pr->p, 60000) != 0) pr->flush_failed = true;
    pr->flushed_ns = sl_mono_ns();
    free(buf);
    return NULL;
}

static void check_arrivals(cons_t *c)
{
    run_t *r = c->r;
    seqcheck_verdict_t v[ARRIVALS];
    pthread_mutex_lock(&r->sc_mu);
    for (size_t i = 0; i < c->nbuf; i++)
        v[i] = seqcheck_record(r->sc, c->buf[i].stream, c->buf[i].partition, c->buf[i].seq);
    pthread_mutex_unlock(&r->sc_mu);
    uint64_t firsts = 0;
    for (size_t i = 0; i < c->nbuf; i++) {
        const arrival_t *a = &c->buf[i];
        /* Duplicates would count one message twice; latency and
         * throughput are about first deliveries. */
        if (v[i] != SEQCHECK_NEW && v[i] != SEQCHECK_REORDERED) continue;
        firsts++;
        if (a->send_ns < r->mstart) continue;
        histogram_record(c->lat, a->recv_ns > a->send_ns ? a->recv_ns - a->send_ns : 0);
        c->recv_measured++;
        c->bytes_measured += a->len;
        if (a->recv_ns > c->last_recv_ns) c->last_recv_ns = a->recv_ns;
    }
    atomic_fetch_add(&r->delivered, firsts);
    c->nbuf = 0;
}

static void on_message(void *arg, int partition, const void *payload, size_t len)
{
    cons_t *c = arg;
    uint64_t t = sl_mono_ns();
    seqcheck_hdr_t h;
    if (seqcheck_decode(payload, len, &h) != 0) {
        c->garbage++;
        return;
    }
    c->buf[c->nbuf++] = (arrival_t){h.producer, (uint32_t)partition, h.seq, h.send_ns, t, len};
    if (c->nbuf == ARRIVALS) check_arrivals(c);
}

static void *consumer_main(void *arg)
{
    cons_t *c = arg;
    while (!atomic_load(&c->r->stop_consumers)) {
        long n = c->r->drv->consume(c->c, 100, on_message, c);
        check_arrivals(c);
        if (n < 0) {
            c->failed = true;
            break;
        }
    }
    return NULL;
}

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], line[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields
     * are counted from the last ')'. utime and stime are fields 14, 15. */
    char *p = strrchr(line, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Peak resident set (VmHWM) of pid in MiB, or -1. */
static double proc_hwm_mb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    double mb = -1;
    unsigned long long kb;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) mb = (double)kb / 1024.0;
    fclose(f);
    return mb;
}

typedef struct results {
    uint64_t sent, acked, failed, refused, sent_measured, delivered, lost, duplicated, reordered,
        late, garbage, foreign;
    double produce_msgs_s, produce_mb_s, consume_msgs_s, consume_mb_s;
    histogram_summary_t e2e;
    uint64_t send_delay_p99;
    double broker_cpu_s, broker_rss_mb;
    bool exact, client_failed;
} results_t;

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_human(const workload_t *w, const results_t *s)
{
    char sum[512];
    workload_summary(w, sum, sizeof sum);
    printf("%s\n", sum);
    printf("produce: %.0f msgs/s, %.2f MB/s (%" PRIu64 " sent, %" PRIu64 " acked, %" PRIu64
           " failed, %" PRIu64 " refused)\n",
           s->produce_msgs_s, s->produce_mb_s, s->sent, s->acked, s->failed, s->refused);
    if (w->consumers) {
        printf("consume: %.0f msgs/s, %.2f MB/s (%" PRIu64 " delivered, %" PRIu64 " lost, %" PRIu64
               " duplicated, %" PRIu64 " reordered%s)\n",
               s->consume_msgs_s, s->consume_mb_s, s->delivered, s->lost, s->duplicated,
               s->reordered, s->exact ? "" : ", inexact: late arrivals");
        printf("e2e latency: p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us"
               " (%" PRIu64 " samples)\n",
               us(s->e2e.p50), us(s->e2e.p90), us(s->e2e.p99), us(s->e2e.p999), us(s->e2e.max),
               s->e2e.count);
    }
    if (w->rate) printf("send delay: p99 %.1f us\n", us(s->send_delay_p99));
    if (s->broker_cpu_s >= 0)
        printf("broker: %.2f CPU s, peak RSS %.1f MiB\n", s->broker_cpu_s, s->broker_rss_mb);
    else
        printf("broker: pid unknown, no CPU/RSS figures\n");
}

static void print_json(const workload_t *w, const results_t *s)
{
    char wj[2048];
    workload_to_json(w, wj, sizeof wj);
    /* Unknown broker figures are null, not 0: 0 would read as a measurement
     * and compare as a huge improvement. */
    char cpu[32] = "null", rss[32] = "null";
    if (s->broker_cpu_s >= 0) snprintf(cpu, sizeof cpu, "%.3f", s->broker_cpu_s);
    if (s->broker_rss_mb >= 0) snprintf(rss, sizeof rss, "%.1f", s->broker_rss_mb);
    printf("{\"bench\":\"sluice-bench\",\"workload\":%s,"
           "\"produce_msgs_s\":%.1f,\"produce_mb_s\":%.3f,\"consume_msgs_s\":%.1f,"
           "\"consume_mb_s\":%.3f,\"e2e_p50_us\":%.1f,\"e2e_p90_us\":%.1f,\"e2e_p99_us\":%.1f,"
           "\"e2e_p999_us\":%.1f,\"e2e_max_us\":%.1f,\"e2e_samples\":%" PRIu64
           ",\"send_delay_p99_us\":%.1f,"
           "\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"refused\":%" PRIu64
           ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
           ",\"reordered\":%" PRIu64 ",\"exact\":%s,\"broker_cpu_s\":%s,\"broker_rss_mb\":%s}\n",
           wj, s->produce_msgs_s, s->produce_mb_s, s->consume_msgs_s, s->consume_mb_s,
           us(s->e2e.p50), us(s->e2e.p90), us(s->e2e.p99), us(s->e2e.p999), us(s->e2e.max),
           s->e2e.count, us(s->send_delay_p99), s->sent, s->acked, s->failed, s->refused,
           s->delivered, s->lost, s->duplicated, s->reordered, s->exact ? "true" : "false", cpu,
           rss);
}

/* Runs the workload through d; fills *s. Returns 0, or -1 when the run
 * could not be carried out (message on stderr). */
static int run_workload(const workload_t *w, const bench_driver_t *d, results_t *s)
{
    char err[512], topic[128];
    /* A fresh name per run: a topic still being deleted by an earlier run
     * (Kafka deletes asynchronously) cannot get in the way. */
    snprintf(topic, sizeof topic, "sluice-bench-%ld-%lld", (long)getpid(),
             (long long)(sl_wall_ms() / 1000));
    if (d->setup(w, topic, err, sizeof err) != 0) {
        fprintf(stderr, "sluice-bench: setup: %s\n", err);
        return -1;
    }
    int rc = -1;
    run_t r = {.w = w, .drv = d, .topic = topic};
    uint64_t pairs = (uint64_t)w->producers * w->partitions;
    r.per_pair = pairs <= MAX_STREAMS;
    uint32_t streams = r.per_pair ? (uint32_t)pairs : w->producers;
    r.sc = seqcheck_new(streams, w->partitions, 0);
    pthread_mutex_init(&r.sc_mu, NULL);
    prod_t *pr = calloc(w->producers, sizeof *pr);
    cons_t *co = calloc(w->consumers ? w->consumers : 1, sizeof *co);
    uint32_t np = 0, nc = 0, started_p = 0, started_c = 0;
    if (!r.sc || !pr || !co) {
        fprintf(stderr, "sluice-bench: out of memory\n");
        goto out;
    }
    for (; nc < w->consumers; nc++) {
        co[nc].r = &r;
        co[nc].id = (int)nc;
        co[nc].lat = histogram_new();
        co[nc].c = d->consumer_new(w, topic, (int)nc, (int)w->consumers, err, sizeof err);
        if (!co[nc].c || !co[nc].lat) {
            fprintf(stderr, "sluice-bench: consumer %u: %s\n", nc, co[nc].c ? "no memory" : err);
            histogram_free(co[nc].lat);
            if (co[nc].c) d->consumer_free(co[nc].c);
            goto out;
        }
    }
    for (; np < w->producers; np++) {
        pr[np].r = &r;
        pr[np].id = (int)np;
        pr[np].send_delay = histogram_new();
        pr[np].seq = calloc(r.per_pair ? w->partitions : 1, sizeof *pr[np].seq);
        pr[np].p = d->producer_new(w, topic, (int)np, err, sizeof err);
        if (!pr[np].p || !pr[np].send_delay || !pr[np].seq) {
            fprintf(stderr, "sluice-bench: producer %u: %s\n", np, pr[np].p ? "no memory" : err);
            histogram_free(pr[np].send_delay);
            free(pr[np].seq);
            if (pr[np].p) d->producer_free(pr[np].p);
            goto out;
        }
    }
    for (; started_c < nc; started_c++)
        if (pthread_create(&co[started_c].th, NULL, consumer_main, &co[started_c]) != 0) goto out;

    pid_t bpid = d->broker_pid(w);
    r.t0 = sl_mono_ns() + 50000000u; /* every producer thread is running by then */
    r.mstart = r.t0 + (uint64_t)w->warmup_s * 1000000000u;
    r.mend = w->messages ? 0 : r.mstart + (uint64_t)w->duration_s * 1000000000u;
    for (; started_p < np; started_p++)
        if (pthread_create(&pr[started_p].th, NULL, producer_main, &pr[started_p]) != 0) goto out;

    sleep_until(r.mstart);
    double cpu0 = bpid ? proc_cpu_s(bpid) : -1;
    for (uint32_t i = 0; i < started_p; i++) pthread_join(pr[i].th, NULL);
    uint64_t last_flush = 0;
    for (uint32_t i = 0; i < np; i++) {
        uint64_t a, f;
        d->producer_counts(pr[i].p, &a, &f);
        s->acked += a;
        s->failed += f;
        s->sent += pr[i].sent;
        s->refused += pr[i].refused;
        s->sent_measured += pr[i].sent_measured;
        if (pr[i].flushed_ns > last_flush) last_flush = pr[i].flushed_ns;
        if (pr[i].flush_failed) s->client_failed = true;
    }
    started_p = 0;

    /* Drain: everything acknowledged should arrive; stop early only when
     * nothing new came for DRAIN_IDLE_S (then the rest counts as lost). */
    uint64_t seen = atomic_load(&r.delivered), idle_since = sl_mono_ns();
    while (nc && seen < s->acked) {
        usleep(20000);
        uint64_t cur = atomic_load(&r.delivered);
        bool any_failed = false;
        for (uint32_t i = 0; i < nc; i++)
            any_failed |= co[i].failed; /* written before that thread exits */
        if (any_failed) break;
        if (cur != seen)
            seen = cur, idle_since = sl_mono_ns();
        else if (sl_mono_ns() - idle_since > (uint64_t)DRAIN_IDLE_S * 1000000000u)
            break;
    }
    double cpu1 = bpid ? proc_cpu_s(bpid) : -1;
    s->broker_rss_mb = bpid ? proc_hwm_mb(bpid) : -1;
    s->broker_cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    if (s->broker_cpu_s < 0) s->broker_rss_mb = -1;
    atomic_store(&r.stop_consumers, true);
    for (uint32_t i = 0; i < started_c; i++) pthread_join(co[i].th, NULL);
    started_c = 0;

    histogram_t *e2e = histogram_new(), *sd = histogram_new();
    if (!e2e || !sd) {
        histogram_free(e2e);
        histogram_free(sd);
        goto out;
    }
    uint64_t recv_measured = 0, bytes_in = 0, bytes_out = 0, last_recv = 0;
    for (uint32_t i = 0; i < nc; i++) {
        histogram_merge(e2e, co[i].lat);
        recv_measured += co[i].recv_measured;
        bytes_in += co[i].bytes_measured;
        s->garbage += co[i].garbage;
        if (co[i].last_recv_ns > last_recv) last_recv = co[i].last_recv_ns;
        if (co[i].failed) s->client_failed = true;
    }
    for (uint32_t i = 0; i < np; i++) {
        histogram_merge(sd, pr[i].send_delay);
        bytes_out += pr[i].bytes_measured;
    }
    histogram_summary(e2e, &s->e2e);
    s->send_delay_p99 = histogram_percentile(sd, 99.0);
    histogram_free(e2e);
    histogram_free(sd);

    /* Producer figures run to the end of the flush (every measured message
     * acknowledged), consumer figures to the last measured arrival. */
    double pspan = last_flush > r.mstart ? (double)(last_flush - r.mstart) / 1e9 : 0;
    double cspan = last_recv > r.mstart ? (double)(last_recv - r.mstart) / 1e9 : 0;
    if (pspan > 0) {
        s->produce_msgs_s = (double)s->sent_measured / pspan;
        s->produce_mb_s = (double)bytes_out / pspan / 1e6;
    }
    if (cspan > 0) {
        s->consume_msgs_s = (double)recv_measured / cspan;
        s->consume_mb_s = (double)bytes_in / cspan / 1e6;
    }

    s->exact = true;
    s->foreign = seqcheck_foreign(r.sc);
    for (uint32_t st = 0; st < streams && nc; st++) {
        /* Each stream belongs to one producer thread; its `sent` is that
         * thread's sequence count for the stream. */
        uint32_t p = r.per_pair ? st / w->partitions : st;
        uint64_t sent = pr[p].seq[r.per_pair ? st % w->partitions : 0];
        seqcheck_report_t rep;
        seqcheck_report(r.sc, st, sent, &rep);
        s->delivered += rep.delivered;
        s->lost += rep.lost;
        s->duplicated += rep.duplicated;
        s->reordered += rep.reordered;
        s->late += rep.late;
        if (!rep.exact) s->exact = false;
    }
    rc = 0;
out:
    atomic_store(&r.stop_consumers, true);
    for (uint32_t i = 0; i < started_p; i++) pthread_join(pr[i].th, NULL);
    for (uint32_t i = 0; i < started_c; i++) pthread_join(co[i].th, NULL);
    for (uint32_t i = 0; i < nc; i++) {
        d->consumer_free(co[i].c);
        histogram_free(co[i].lat);
    }
    for (uint32_t i = 0; i < np; i++) {
        d->producer_free(pr[i].p);
        histogram_free(pr[i].send_delay);
        free(pr[i].seq);
    }
    free(pr);
    free(co);
    seqcheck_free(r.sc);
    pthread_mutex_destroy(&r.sc_mu);
    d->teardown(w, topic);
    return rc;
}

/* ---- compare ---------------------------------------------------------- */

#define COMPARE_MAX_RUNS 64

/* Every line of path that starts with '{' (a sluice-bench --json run; the
 * whole output may be saved, and several runs of one workload appended to
 * one file), malloc'd into runs[0..*n). Returns 0, or -1 with a message. */
static int read_json_lines(const char *path, char **runs, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sluice-bench compare: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int too_many = 0;
    *n = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] != '{') continue;
        if (*n == COMPARE_MAX_RUNS) {
            fprintf(stderr, "sluice-bench compare: %s: more than %d runs\n", path,
                    COMPARE_MAX_RUNS);
            too_many = 1;
            break;
        }
        runs[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (*n == 0) fprintf(stderr, "sluice-bench compare: %s: no JSON line\n", path);
    return *n > 0 && !too_many ? 0 : -1;
}

/* The number after "key": at the top level of a flat object (the nested
 * workload object has none of the figures' names). NAN if absent or null. */
static double json_number(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return NAN;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and relative spread ((max - min) / median, in percent) of one
 * figure over a side's runs; NAN median when any run lacks it. */
static double side_stats(char **runs, int n, const char *key, double *spread_pct)
{
    double v[COMPARE_MAX_RUNS];
    for (int i = 0; i < n; i++)
        if (isnan(v[i] = json_number(runs[i], key))) return NAN;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *spread_pct = n > 1 && med != 0 ? (v[n - 1] - v[0]) / fabs(med) * 100.0 : 0.0;
    return med;
}

static int parse_pct(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end || !(*out >= 0)) {
        fprintf(stderr, "sluice-bench compare: --threshold: want a percentage >= 0\n");
        return -1;
    }
    return 0;
}

/* sluice-bench compare OLD NEW [--threshold PCT]: each side's figure is the
 * median of its runs. A figure regresses when it got worse by more than
 * the threshold or by more than the run-to-run noise, whichever is larger;
 * the noise of a figure is the larger relative spread (max - min over the
 * median) of the two sides, so it is measured only when a side holds
 * repeated runs. Exit 0, 1 on a regression, 2 on bad input. */
static int compare_main(int argc, char **argv)
{
    const char *files[2] = {NULL, NULL};
    double threshold = 10.0;
    int nf = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_pct(argv[++i], &threshold) < 0) return 2;
        } else if (!strncmp(argv[i], "--threshold=", 12)) {
            if (parse_pct(argv[i] + 12, &threshold) < 0) return 2;
        } else if (nf < 2) {
            files[nf++] = argv[i];
        } else {
            nf = 3;
        }
    }
    if (nf != 2) {
        fprintf(stderr, "usage: sluice-bench compare OLD.json NEW.json [--threshold PCT]\n");
        return 2;
    }
    char *a[COMPARE_MAX_RUNS], *b[COMPARE_MAX_RUNS];
    int na = 0, nb = 0, rc = 2;
    if (read_json_lines(files[0], a, &na) < 0 || read_json_lines(files[1], b, &nb) < 0) goto out;
    /* dir: +1 higher is better (throughput), -1 lower is better (latency),
     * 0 informational. */
    static const struct {
        const char *key;
        int dir;
    } figs[] = {
        {"produce_msgs_s", 1},     {"produce_mb_s", 1},  {"consume_msgs_s", 1},
        {"consume_mb_s", 1},       {"e2e_p50_us", -1},   {"e2e_p90_us", -1},
        {"e2e_p99_us", -1},        {"e2e_p999_us", -1},  {"e2e_max_us", -1},
        {"send_delay_p99_us", -1}, {"lost", 0},          {"duplicated", 0},
        {"broker_cpu_s", 0},       {"broker_rss_mb", 0},
    };
    int bad = 0;
    printf("old: %d run%s, new: %d run%s; medians, noise = larger max-min spread of a side\n", na,
           na == 1 ? "" : "s", nb, nb == 1 ? "" : "s");
    printf("%-18s %14s %14s %9s %8s\n", "figure", "old", "new", "change", "noise");
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        double sa = 0, sb = 0;
        double o = side_stats(a, na, figs[i].key, &sa), n = side_stats(b, nb, figs[i].key, &sb);
        if (isnan(o) || isnan(n)) {
            printf("%-18s %14s %14s %9s\n", figs[i].key, isnan(o) ? "-" : "", isnan(n) ? "-" : "",
                   "n/a");
            continue;
        }
        double noise = sa > sb ? sa : sb;
        double limit = threshold > noise ? threshold : noise;
        double pct = o != 0 ? (n - o) / o * 100.0 : (n == 0 ? 0.0 : INFINITY);
        const char *verdict = "";
        if ((figs[i].dir > 0 && pct < -limit) || (figs[i].dir < 0 && pct > limit)) {
            verdict = "  REGRESSION";
            bad = 1;
        }
        /* Losing messages where the old runs lost none is a regression
         * whatever the threshold. */
        if (!strcmp(figs[i].key, "lost") && o == 0 && n > 0) {
            verdict = "  REGRESSION";
            bad = 1;
        }
        printf("%-18s %14.1f %14.1f %+8.1f%% %7.1f%%%s\n", figs[i].key, o, n, pct, noise, verdict);
    }
    if (bad) printf("regression beyond max(%.1f%%, noise)\n", threshold);
    rc = bad;
out:
    for (int i = 0; i < na; i++) free(a[i]);
    for (int i = 0; i < nb; i++) free(b[i]);
    return rc;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "compare")) return compare_main(argc, argv);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: sluice-bench [--system S] [--message-size B] [--producers N] "
               "[--consumers N]\n"
               "         [--partitions N] [--acks 0|1|all] [--batch-size B] [--linger-ms N]\n"
               "         [--compression none|lz4] [--duration S | --messages N] [--warmup S]\n"
               "         [--rate N] [--topic-config KEY=VALUE]... [--bootstrap HOST:PORT]\n"
               "         [--quick] [--json]\n"
               "       sluice-bench compare OLD.json NEW.json [--threshold PCT]\n"
               "See bench/workload.h for ranges and defaults.\n");
        return 0;
    }
    workload_t w;
    char err[512];
    if (workload_parse(&w, argc, argv, err, sizeof err) != WORKLOAD_OK) {
        fprintf(stderr, "sluice-bench: %s\n", err);
        return 2;
    }
    const bench_driver_t *d = driver_for(w.system);
    if (!d) {
        fprintf(stderr, "sluice-bench: no driver for %s in this build\n",
                workload_system_name(w.system));
        return 2;
    }
    harness_t h;
    bool own = (w.system == WORKLOAD_SLUICE || w.system == WORKLOAD_SLUICE_KAFKA) &&
               w.bootstrap[0] == '\0';
    if (own) {
        /* No address given: a private sluiced in a temp dir, so a run
         * needs nothing set up and leaves nothing behind. */
        harness_init(&h, "sluice-bench");
        if (harness_start(&h, NULL) != 0) {
            fprintf(stderr, "sluice-bench: could not start sluiced\n");
            harness_cleanup(&h);
            return 1;
        }
        /* sluice-kafka: the same broker, through its Kafka listener. */
        snprintf(w.bootstrap, sizeof w.bootstrap, "127.0.0.1:%d",
                 w.system == WORKLOAD_SLUICE_KAFKA ? h.kafka_port : h.port);
        sluice_bench_broker_pid = h.pid;
    }
    char sum[512];
    workload_summary(&w, sum, sizeof sum);
    fprintf(stderr, "sluice-bench: %s\n", sum);
    results_t s = {0};
    int rc = run_workload(&w, d, &s);
    if (own) {
        harness_stop(&h, SIGTERM); /* a clean shutdown, as a user's would be */
        harness_cleanup(&h);
    }
    if (rc != 0) return 1;
    print_human(&w, &s);
    if (w.json) print_json(&w, &s);
    fflush(stdout);

    int status = 0;
    if (s.client_failed) fprintf(stderr, "sluice-bench: a client failed\n"), status = 1;
    if (s.failed)
        fprintf(stderr, "sluice-bench: %" PRIu64 " deliveries failed\n", s.failed), status = 1;
    if (w.consumers && s.lost)
        fprintf(stderr, "sluice-bench: %" PRIu64 " messages lost\n", s.lost), status = 1;
    if (s.garbage || s.foreign)
        fprintf(stderr, "sluice-bench: %" PRIu64 " undecodable, %" PRIu64 " foreign messages\n",
                s.garbage, s.foreign),
            status = 1;
    if (s.sent_measured == 0 || (w.consumers && s.e2e.count == 0))
        fprintf(stderr, "sluice-bench: nothing measured\n"), status = 1;
    return status;
}
