/* test_abuse.c — hostile clients against one running sluiced, while a
 * well-behaved libsluice producer/consumer pair keeps working beside them.
 *
 * What it proves: for each attack below, run in turn against the same broker,
 *   - the pair keeps working: every round trip (produce one message with
 *     acks=1, linger.ms=0, then poll the consumer until that very message
 *     arrives) completes within 3 s, in order, with no delivery error;
 *   - the pair's latency stays close to its quiet latency. Rule: the p99 of
 *     the round trips under attack must be ≤ max(2 × quiet p99, quiet p99 +
 *     2 ms), where "quiet p99" is measured (500 round trips) right before the
 *     attack starts. The 2 ms floor exists because sub-millisecond latencies
 *     on a shared 2-core machine under ASan jitter by more than 2x on their
 *     own. When the first measurement under attack breaks the rule without a
 *     single timeout, it is taken once more under the same attack and the
 *     second one is judged: a stall that comes from the broker repeats, a
 *     neighbour's compile job rarely does;
 *   - the broker's RSS (VmRSS of its pid) stays under a bound (256 MiB in
 *     the short run, 768 MiB in the long one), sampled throughout. Under
 *     ASan the broker's quarantine of freed memory is capped at 16 MiB
 *     (ASAN_OPTIONS of the child only), or VmRSS would show up to 256 MiB
 *     of ASan's own holding;
 *   - afterwards sluice_connections is back where it was (bounded waits),
 *     and the broker still accepts and answers new connections. A broker
 *     that does not is counted as a failure and restarted (SIGKILL, same
 *     ports, a new topic for the pair), so that the later phases still
 *     report;
 *   - at the end SIGTERM makes it exit 0 (under ASan: no leak).
 * The attacks (every one bounded in count and in time):
 *   1. idle connections: 10,000 (long run: 100,000) opened from several
 *      127.0.0.x source addresses (one address has ~28k ephemeral ports) and
 *      left idle; memory per idle connection = (RSS with N idle − RSS before)
 *      / N must be ≤ 2 KiB (the goal of issue #7); the gauge returns to its
 *      base after they close. Needs RLIMIT_NOFILE ≥ N + 1024 in this
 *      process and the broker: the soft limit is raised to the hard limit,
 *      and when the hard limit is too low the part says SKIP (the long run
 *      then opens as many as fit);
 *   2. random bytes on fresh connections (2,000, long: 20,000, at 2,000 a
 *      second while the pair measures), on the Sluice port and the Kafka
 *      port: pure noise (whose length prefix is then beyond
 *      max.request.size: the broker must close every such connection) and
 *      noise behind a correct length prefix (and, for Kafka, a plausible
 *      request header) so the decoders see it;
 *   3. half-open connections: a partial frame (2, 6 or 18 bytes), then for
 *      half of them shutdown(SHUT_WR) — the broker must close those — and
 *      the rest just stay; memory per half-open connection is printed and
 *      must stay ≤ 16 KiB (their frames claim ≤ 100 bytes);
 *   4. slowloris: frame headers claiming 16 MiB − 4 KiB (just under the
 *      default max.request.size), then 1 byte per second per connection, on
 *      64 (long: 512) connections on both ports, for 8 s (long: 60 s);
 *   5. clients that send requests but never read the responses: 32 (long:
 *      128) connections with a 4 KiB receive buffer pipelining Metadata
 *      requests (memory responses) or 1 MiB Fetches (file ranges) until
 *      their socket buffers are full. The broker must stop reading them at
 *      max.connection.output.bytes (1 MiB here): sluice_inflight_bytes ≤ per
 *      connection the 256 KiB read buffer's rest (+ 4 KiB), and for the
 *      Metadata ones the cap + one response (≤ 64 KiB); RSS growth ≤ twice
 *      that (allocator overhead) + 32 MiB;
 *   6. connection churn: connect/close in a tight loop, 3,000 (long: 30,000)
 *      times, alternating a normal close, a reset (SO_LINGER 0) and a close
 *      right after a request; bursts of 20 back to back paced to 5,000 a
 *      second, so that the attacker does not take a whole core of the
 *      2-core machine (then the pair would measure the CPU, not the broker).
 * They run in this order, slowloris last since it wedges today's broker.
 * Every figure is printed on a line starting with "abuse:" (greppable, for
 * docs/RELIABILITY.md). Broker flags: --max.connections=200000
 * --connections.max.idle.ms=600000 (idle means idle for the whole test)
 * --max.connection.output.bytes=1048576; everything else is the default,
 * so max.request.size is 16 MiB and queued.max.request.bytes 256 MiB.
 *
 * Usage: test_abuse [--long]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "codec.h"
#include "harness.h"
#include "sclient.h"
#include "sluice/sluice.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MIB           (1024.0 * 1024.0)
#define OUTPUT_CAP    1048576      /* --max.connection.output.bytes */
#define MAX_REQUEST   16777216     /* the default max.request.size */
#define READ_BUF      (256u << 10) /* the broker's per-worker read buffer (conn.h SCRATCH) */
#define RT_TIMEOUT_MS 3000         /* one round trip of the pair */
#define QUIET_N       500          /* round trips per measurement */
#define RANDOM_RATE   2000         /* random-bytes connections per second */
#define CHURN_BURST   20           /* churn: back-to-back connect/close cycles... */
#define CHURN_RATE    5000         /* ...paced to this many per second */

/* Sizes of the short (make test) and the long (make torture) run. */
typedef struct plan {
    int idle;         /* idle connections */
    int random;       /* connections that send random bytes */
    int halfopen;     /* half-open connections */
    int slowloris;    /* slowloris connections */
    int slowloris_ms; /* how long they trickle */
    int nonreading;   /* clients that never read */
    int churn;        /* connect/close cycles */
    double rss_bound; /* MiB */
} plan_t;

static const plan_t SHORT = {10000, 2000, 1000, 64, 8000, 32, 3000, 256};
static const plan_t LONG = {100000, 20000, 10000, 512, 60000, 128, 30000, 768};

static plan_t P;
static harness_t h;
static const char *const broker_args[] = {"--max.connections=200000",
                                          "--connections.max.idle.ms=600000",
                                          "--max.connection.output.bytes=1048576", NULL};
static char pair_topic[32]; /* "pair", then "pair2"... after a restart */
static int restarts;
static double rss_max_mib;
static double base_conns; /* sluice_connections with only the pair connected */

/* ---- time, memory, metrics ----------------------------------------------- */

static void sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

/* The broker's VmRSS in MiB (-1 when unreadable). Also tracks the maximum
 * and checks it against the plan's bound. */
static double rss_mib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)h.pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atof(line + 6);
    fclose(f);
    if (kb < 0) return -1;
    double mib = kb / 1024.0;
    if (mib > rss_max_mib) rss_max_mib = mib;
    return mib;
}

/* Metric value from a fresh scrape, or -2 when the page is unavailable. */
static double metric(const char *series)
{
    char *page = harness_metrics(&h);
    if (!page) return -2;
    double v = harness_metric(page, series);
    free(page);
    return v;
}

/* Polls a metric until it equals want, for at most ms; returns the last value. */
static double wait_metric(const char *series, double want, int ms)
{
    long long deadline = sl_mono_ms() + ms;
    double v;
    for (;;) {
        v = metric(series);
        if (v == want || sl_mono_ms() > deadline) return v;
        sleep_ms(20);
    }
}

/* ---- raw sockets --------------------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:port from source address src (NULL:
 * the default), with a receive buffer of rcvbuf bytes (0: the default), made
 * non-blocking once connected when nonblock. -1 on failure. */
static int tcp_connect(int port, const char *src, int rcvbuf, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (src) {
        /* The port is picked at connect() time, per 4-tuple. */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            close(fd);
            return -1;
        }
    }
    struct timeval tv = {5, 0}; /* bounds a connect that waits for a full backlog */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
    if (connect(fd, (struct sockaddr *)&da, sizeof da) < 0) {
        close(fd);
        return -1;
    }
    if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Writes what the socket takes now (non-blocking or not); returns bytes
 * written, -1 on a broken connection. */
static ssize_t send_some(int fd, const void *buf, size_t len)
{
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return n;
}

/* 1 if the peer closed the connection (EOF or reset) within ms, else 0.
 * Whatever it sent first is discarded. */
static int peer_closed(int fd, int ms)
{
    long long deadline = sl_mono_ms() + ms;
    for (;;) {
        long long left = deadline - sl_mono_ms();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, left > 0 ? (int)left : 0) <= 0) return 0;
        char b[4096];
        ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (n == 0) return 1;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return 1;
        if (left <= 0) return 0;
    }
}

static uint32_t xs32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* One encoded Sluice request (prefix, header, body; no payload) appended to
 * *buf, which grows. */
static void encode_req(uint8_t **buf, size_t *len, int api, uint64_t corr,
                       const ProtobufCMessage *body)
{
    Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
    hd.api = (Sluice__ApiKey)api;
    hd.version = SL_PROTOCOL_VERSION;
    hd.correlation_id = corr;
    size_t n = sl_request_size(&hd, body);
    uint8_t *nb = realloc(*buf, *len + n);
    CHECK_FATAL(nb != NULL);
    *buf = nb;
    sl_request_encode(&hd, body, 0, nb + *len);
    *len += n;
}

/* ---- the well-behaved pair ----------------------------------------------- */

typedef struct pair {
    sluice_producer_t *p;
    sluice_consumer_t *c;
    long long seq;    /* last sequence number produced */
    long long seen;   /* last sequence number consumed */
    int dr_errors;    /* delivery reports with an error */
    int cons_errors;  /* consumer messages with an error */
    int order_errors; /* a sequence number out of order or skipped */
    int closing;      /* torn down after a broker restart: reports do not count */
} pair_t;

static pair_t pair;

static void pair_dr(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    pair_t *pr = opaque;
    if (m->err && !pr->closing) {
        pr->dr_errors++;
        fprintf(stderr, "abuse: pair delivery error %s\n", sluice_err2str(m->err));
    }
}

static sluice_conf_t *mkconf(const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    CHECK_FATAL(c != NULL);
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h.port);
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2) {
        sluice_conf_res_t r = sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err);
        CHECK_MSG(r == SLUICE_CONF_OK, "%s", err);
    }
    return c;
}

static void pair_open(void)
{
    if (restarts == 0)
        snprintf(pair_topic, sizeof pair_topic, "pair");
    else
        snprintf(pair_topic, sizeof pair_topic, "pair%d", restarts + 1);
    pair.seq = pair.seen = 0;
    pair.closing = 0;
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_FATAL(sc_create_topic(&c, pair_topic, 1) == 0);
    sc_close(&c);
    char err[256];
    sluice_conf_t *pc =
        mkconf((const char *const[]){"linger.ms", "0", "acks", "1", "client.id", "pair", NULL});
    sluice_conf_set_dr_cb(pc, pair_dr);
    sluice_conf_set_opaque(pc, &pair);
    pair.p = sluice_producer_new(pc, err, sizeof err);
    CHECK_FATAL(pair.p != NULL);
    pair.c = sluice_consumer_new(mkconf((const char *const[]){"client.id", "pair", NULL}), err,
                                 sizeof err);
    CHECK_FATAL(pair.c != NULL);
    sluice_tp_list_t *l = sluice_tp_list_new(1);
    sluice_tp_list_add(l, pair_topic, 0)->offset = SLUICE_OFFSET_BEGINNING;
    CHECK_FATAL(sluice_consumer_assign(pair.c, l) == 0);
    sluice_tp_list_destroy(l);
}

static void pair_close(void)
{
    CHECK_EQ_INT(sluice_producer_flush(pair.p, 10000), 0);
    sluice_producer_destroy(pair.p);
    sluice_consumer_close(pair.c);
    sluice_consumer_destroy(pair.c);
}

/* One round trip: latency in ms, or -1 (error) / -2 (timeout). */
static double pair_roundtrip(void)
{
    long long seq = ++pair.seq;
    char v[32];
    int vl = snprintf(v, sizeof v, "%lld", seq);
    int64_t t0 = sl_mono_ns();
    int rc = sluice_produce(pair.p, pair_topic, 0, NULL, 0, v, (size_t)vl, NULL, 0, 0, NULL);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "abuse: pair produce: %s\n", sluice_err2str(rc));
        pair.dr_errors++;
        return -1;
    }
    int64_t deadline = t0 + (int64_t)RT_TIMEOUT_MS * 1000000;
    while (sl_mono_ns() < deadline) {
        sluice_producer_poll(pair.p, 0);
        sluice_message_t *m = sluice_consumer_poll(pair.c, 10);
        if (!m) continue;
        if (m->err) {
            pair.cons_errors++;
            fprintf(stderr, "abuse: pair consumer error %s\n", sluice_err2str(m->err));
            sluice_message_destroy(m);
            continue;
        }
        char b[32];
        size_t n = m->value_len < sizeof b - 1 ? m->value_len : sizeof b - 1;
        memcpy(b, m->value, n);
        b[n] = 0;
        long long got = atoll(b);
        sluice_message_destroy(m);
        if (got != pair.seen + 1) pair.order_errors++;
        if (got > pair.seen) pair.seen = got;
        if (got == seq) return (double)(sl_mono_ns() - t0) / 1e6;
    }
    return -2;
}

typedef struct stats {
    int n, timeouts, errors;
    double p50, p99, max;
} stats_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Round trips until at least min_n are done and min_ms have passed (at most
 * max_n, and stopping after two timeouts in a row: the pair is stalled).
 * Samples the broker's RSS every 50 round trips. */
static stats_t measure(int min_n, int min_ms, int max_n)
{
    stats_t s = {0, 0, 0, 0, 0, 0};
    double *lat = calloc((size_t)max_n, sizeof *lat);
    CHECK_FATAL(lat != NULL);
    long long t0 = sl_mono_ms();
    int consecutive = 0;
    while (s.n + s.timeouts + s.errors < max_n &&
           (s.n + s.timeouts + s.errors < min_n || sl_mono_ms() - t0 < min_ms)) {
        double l = pair_roundtrip();
        if (l >= 0) {
            lat[s.n++] = l;
            consecutive = 0;
        } else if (l == -2) {
            s.timeouts++;
            if (++consecutive >= 2) break;
        } else {
            s.errors++;
        }
        if ((s.n + s.timeouts) % 50 == 0) rss_mib();
    }
    rss_mib();
    if (s.n > 0) {
        qsort(lat, (size_t)s.n, sizeof *lat, cmp_double);
        s.p50 = lat[(s.n - 1) / 2];
        s.p99 = lat[(int)((s.n - 1) * 0.99)];
        s.max = lat[s.n - 1];
    }
    free(lat);
    return s;
}

static double p99_limit(const stats_t *quiet)
{
    double a = 2 * quiet->p99, b = quiet->p99 + 2.0;
    return a > b ? a : b;
}

static int stats_ok(const stats_t *s, double limit)
{
    return s->n > 0 && s->timeouts == 0 && s->errors == 0 && s->p99 <= limit;
}

/* Measures the pair under an attack that is running now and judges it
 * against `quiet` (see the header for the rule); for continuous attacks the
 * measurement lasts at least min_ms. */
static void judge(const char *attack, const stats_t *quiet, int min_ms)
{
    double limit = p99_limit(quiet);
    stats_t a = measure(QUIET_N, min_ms, QUIET_N * 1000);
    int retried = 0;
    if (!stats_ok(&a, limit) && a.timeouts == 0 && a.errors == 0 && a.n > 0) {
        fprintf(stderr,
                "abuse: %s: p99 %.3f ms over the limit %.3f ms; measuring once more under the "
                "same attack\n",
                attack, a.p99, limit);
        a = measure(QUIET_N, min_ms, QUIET_N * 1000);
        retried = 1;
    }
    int ok = stats_ok(&a, limit);
    printf("abuse: %s: pair %d round trips, %d timeouts, %d errors, p50 %.3f ms p99 %.3f ms max "
           "%.3f ms (quiet p99 %.3f ms, limit %.3f ms)%s: %s\n",
           attack, a.n, a.timeouts, a.errors, a.p50, a.p99, a.max, quiet->p99, limit,
           retried ? " (second try)" : "", ok ? "ok" : "FAIL");
    fflush(stdout);
    CHECK_MSG(a.timeouts == 0, "%s: the pair timed out %d times (stalled)", attack, a.timeouts);
    CHECK_MSG(a.errors == 0, "%s: the pair had %d errors", attack, a.errors);
    CHECK_MSG(a.n >= QUIET_N, "%s: only %d round trips", attack, a.n);
    CHECK_MSG(a.p99 <= limit, "%s: pair p99 %.3f ms > limit %.3f ms (quiet p99 %.3f ms)", attack,
              a.p99, limit, quiet->p99);
}

static stats_t quiet(const char *before)
{
    stats_t q = measure(QUIET_N, 0, QUIET_N);
    printf("abuse: quiet before %s: %d round trips, p50 %.3f ms p99 %.3f ms max %.3f ms\n", before,
           q.n, q.p50, q.p99, q.max);
    CHECK_MSG(q.n == QUIET_N && q.timeouts == 0 && q.errors == 0,
              "quiet before %s: %d round trips ok, %d timeouts, %d errors", before, q.n, q.timeouts,
              q.errors);
    return q;
}

static void pair_open(void);
static stats_t measure(int min_n, int min_ms, int max_n);

/* After a phase that left the broker unable to serve (see settled()), a
 * fresh broker on the same data directory and ports, and a fresh pair on a
 * new topic, so that the later phases still measure something. */
static void restart_broker(const char *attack)
{
    restarts++;
    printf("abuse: %s left the broker unable to serve: restarting it (SIGKILL) for the next "
           "phases\n",
           attack);
    pair.closing = 1;
    sluice_producer_destroy(pair.p);
    sluice_consumer_destroy(pair.c);
    harness_stop(&h, SIGKILL);
    CHECK_FATAL(harness_start(&h, broker_args) == 0);
    pair_open();
    stats_t w = measure(50, 0, 50);
    CHECK_FATAL(w.n == 50);
    CHECK_FATAL(wait_metric("sluice_connections", base_conns, 5000) == base_conns);
}

/* After an attack: the gauge returns to the pair's own connections, and a
 * new connection is accepted and answered. If not, the broker is restarted
 * (the failure is counted). */
static void settled(const char *attack)
{
    double v = wait_metric("sluice_connections", base_conns, 15000);
    CHECK_MSG(v == base_conns, "%s: sluice_connections %g after the attack, base %g", attack, v,
              base_conns);
    sc_t c;
    int ok = sc_connect(&c, h.port) == 0;
    int64_t off = -1;
    if (ok) {
        ok = sc_list_offsets(&c, pair_topic, 0, -1, &off) == 0 && off == pair.seq;
        sc_close(&c);
    }
    CHECK_MSG(ok, "%s: a new connection is not served afterwards (log end %lld, produced %lld)",
              attack, (long long)off, pair.seq);
    double rss = rss_mib();
    CHECK_MSG(rss > 0 && rss <= P.rss_bound, "%s: broker RSS %.1f MiB (bound %.0f MiB)", attack,
              rss, P.rss_bound);
    if (v != base_conns || !ok) restart_broker(attack);
}

/* ---- attackers (threads) ------------------------------------------------- */

typedef struct attacker {
    pthread_t t;
    atomic_int stop;
    int min, max; /* units of work: at least min before stopping, at most max */
    int max_ms;   /* and at most this long */
    /* results */
    int done;
    int must_close, closed_ok; /* random bytes: connections the broker must close, and did */
    int failed_connects;
    long long bytes;
} attacker_t;

static int attacker_go_on(attacker_t *a, long long t0)
{
    if (a->done >= a->max || sl_mono_ms() - t0 > a->max_ms) return 0;
    return a->done < a->min || !atomic_load(&a->stop);
}

/* Random bytes on fresh connections, alternating the Sluice and the Kafka
 * port, at most RANDOM_RATE connections a second (unpaced, this thread and
 * the broker's accepting would take both cores of the test machine, and the
 * pair's latency would measure the CPU, not the broker's fairness). A ring of 64 connections is
 * kept open, so the broker answers or closes each while the next ones arrive; a connection leaving
 * the ring is checked (those that must be closed get up to 2 s) and closed. */
static void *random_bytes(void *arg)
{
    attacker_t *a = arg;
    enum { RING = 64 };
    int fds[RING], must[RING];
    for (int i = 0; i < RING; i++) fds[i] = -1;
    uint32_t s = 0x5eed1234u;
    uint8_t buf[8192];
    long long t0 = sl_mono_ms();
    int i = 0;
    for (; attacker_go_on(a, t0); i++) {
        long long due = t0 + (long long)i * 1000 / RANDOM_RATE;
        if (sl_mono_ms() < due) sleep_ms((int)(due - sl_mono_ms()));
        int slot = i % RING;
        if (fds[slot] >= 0) {
            int cl = peer_closed(fds[slot], must[slot] ? 2000 : 0);
            if (must[slot]) a->closed_ok += cl;
            close(fds[slot]);
            fds[slot] = -1;
        }
        int kafka = (i & 1) && h.kafka_port > 0;
        int fd = tcp_connect(kafka ? h.kafka_port : h.port, NULL, 0, 1);
        if (fd < 0) {
            a->failed_connects++;
            a->done++;
            continue;
        }
        size_t len = 1 + xs32(&s) % sizeof buf;
        for (size_t k = 0; k < len; k++) buf[k] = (uint8_t)xs32(&s);
        int mode = (i >> 1) % 3;
        int m = 0;
        if (mode == 0) {
            /* Pure noise whose length prefix is impossible (top bit set:
             * beyond max.request.size on either protocol): must close. */
            buf[0] |= 0x80;
            if (len < 4) len = 4;
            m = 1;
        } else if (len >= 12) {
            /* A correct length prefix around noise. */
            sl_put_be32(buf, (uint32_t)(len - 4));
            if (mode == 2 && kafka) {
                /* A plausible Kafka request header: api key 0..67, version
                 * 0..15, then noise (client id, body). */
                buf[4] = 0;
                buf[5] = (uint8_t)(xs32(&s) % 68);
                buf[6] = 0;
                buf[7] = (uint8_t)(xs32(&s) % 16);
            } else if (mode == 2) {
                /* A plausible Sluice header length, then noise. */
                sl_put_be32(buf + 4, 1 + xs32(&s) % 64);
            }
        }
        if (send_some(fd, buf, len) < 0) {
            /* Already closed by the broker: fine. */
        }
        a->bytes += (long long)len;
        a->must_close += m;
        fds[slot] = fd;
        must[slot] = m;
        a->done++;
    }
    for (int k = 0; k < RING; k++) {
        if (fds[k] < 0) continue;
        int cl = peer_closed(fds[k], must[k] ? 2000 : 0);
        if (must[k]) a->closed_ok += cl;
        close(fds[k]);
    }
    return NULL;
}

/* Connect/close in a tight loop, from 8 source addresses (ports of one
 * address would run out in TIME_WAIT in the long run): a plain close, a
 * reset (SO_LINGER 0), or a ListOffsets request and a close without reading
 * the answer. Bursts of CHURN_BURST cycles back to back, paced to
 * CHURN_RATE a second: unpaced, this thread and the broker's accepting take
 * both cores of a 2-core machine (~30,000 cycles/s) and the pair's latency
 * measures the CPU, not the broker. */
static void *churn(void *arg)
{
    attacker_t *a = arg;
    uint8_t *req = NULL;
    size_t rlen = 0;
    Sluice__ListOffsetsRequest lo = SLUICE__LIST_OFFSETS_REQUEST__INIT;
    lo.topic = pair_topic;
    lo.timestamp = -1;
    encode_req(&req, &rlen, SLUICE__API_KEY__LIST_OFFSETS, 1, &lo.base);
    long long t0 = sl_mono_ms();
    for (int i = 0; attacker_go_on(a, t0); i++) {
        if (i % CHURN_BURST == 0) {
            long long due = t0 + (long long)i * 1000 / CHURN_RATE;
            if (sl_mono_ms() < due) sleep_ms((int)(due - sl_mono_ms()));
        }
        char src[32];
        snprintf(src, sizeof src, "127.0.1.%d", 1 + i % 8);
        int fd = tcp_connect(h.port, src, 0, 0);
        a->done++;
        if (fd < 0) {
            a->failed_connects++;
            continue;
        }
        switch (i % 3) {
        case 1: {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        case 2:
            send_some(fd, req, rlen);
            break;
        }
        close(fd);
    }
    free(req);
    return NULL;
}

/* Slowloris connections: fds set up by the main thread; one byte per second
 * on each until stopped. */
typedef struct slow {
    attacker_t a;
    int *fds;
    int n;
} slow_t;

static void *trickle(void *arg)
{
    slow_t *s = arg;
    long long t0 = sl_mono_ms();
    uint8_t byte = 0x41;
    while (!atomic_load(&s->a.stop) && sl_mono_ms() - t0 < s->a.max_ms) {
        for (int i = 0; i < s->n; i++)
            if (s->fds[i] >= 0 && send_some(s->fds[i], &byte, 1) == 1) s->a.bytes++;
        s->a.done++;
        for (int k = 0; k < 20 && !atomic_load(&s->a.stop); k++) sleep_ms(50);
    }
    return NULL;
}

static void attacker_start(attacker_t *a, void *(*fn)(void *))
{
    atomic_store(&a->stop, 0);
    CHECK_FATAL(pthread_create(&a->t, NULL, fn, a) == 0);
}

static void attacker_stop(attacker_t *a)
{
    atomic_store(&a->stop, 1);
    pthread_join(a->t, NULL);
}

/* ---- 1. idle connections ------------------------------------------------- */

/* Opens n connections from 127.0.0.2, .3, ... (5,000 per address); returns
 * how many succeeded, fds in fds[]. */
static int open_idle(int *fds, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 2 + i / 5000);
        fds[i] = tcp_connect(h.port, src, 0, 0);
        if (fds[i] >= 0) ok++;
        if (i > 0 && i % 20000 == 0) rss_mib();
    }
    return ok;
}

static void attack_idle(void)
{
    int want = P.idle;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int fit = rl.rlim_max == RLIM_INFINITY ? want : (int)rl.rlim_max - 1024;
    if (fit < want) {
        printf("abuse: SKIP %d idle connections: RLIMIT_NOFILE hard limit is %llu (needs %d in "
               "this process and in sluiced; raising it needs CAP_SYS_RESOURCE)\n",
               want, (unsigned long long)rl.rlim_max, want + 1024);
        if (P.idle == SHORT.idle || fit < 1000) return;
        want = fit / 1000 * 1000; /* the long run: as many as fit */
        printf("abuse: idle connections: opening %d instead\n", want);
    }
    stats_t q = quiet("idle connections");
    int *fds = malloc((size_t)want * sizeof *fds);
    CHECK_FATAL(fds != NULL);
    sleep_ms(200);
    double rss0 = rss_mib();
    long long t0 = sl_mono_ms();
    int ok = open_idle(fds, want);
    CHECK_EQ_INT(ok, want);
    double open = wait_metric("sluice_connections", base_conns + ok, 60000);
    CHECK_MSG(open == base_conns + ok, "sluice_connections %g with %d idle open (base %g)", open,
              ok, base_conns);
    long long dt = sl_mono_ms() - t0;
    sleep_ms(500); /* let the reactors settle (idle timers, deferred accepts) */
    double rss1 = rss_mib();
    double per_conn = ok > 0 ? (rss1 - rss0) * MIB / ok : 0;
    printf("abuse: %d idle connections, %.0f bytes per connection (broker RSS %.1f -> %.1f MiB; "
           "opened and accepted in %lld ms)\n",
           ok, per_conn, rss0, rss1, dt);
    fflush(stdout);
    /* Issue #7's goal. conn_t embeds a 2 KiB decode arena today, so this
     * fails until that shrinks. */
    CHECK_MSG(per_conn <= 2048, "%.0f bytes per idle connection (goal: <= 2048)", per_conn);
    char what[64];
    snprintf(what, sizeof what, "%d idle connections", ok);
    judge(what, &q, 0);
    t0 = sl_mono_ms();
    for (int i = 0; i < want; i++)
        if (fds[i] >= 0) close(fds[i]);
    double left = wait_metric("sluice_connections", base_conns, 60000);
    printf("abuse: %d idle connections closed: sluice_connections %g after %lld ms (base %g)\n", ok,
           left, sl_mono_ms() - t0, base_conns);
    settled(what);
    free(fds);
}

/* ---- 2. random bytes ----------------------------------------------------- */

static void attack_random(void)
{
    stats_t q = quiet("random bytes");
    double perr0 = metric("sluice_protocol_errors_total");
    attacker_t a;
    memset(&a, 0, sizeof a);
    a.min = P.random;
    a.max = P.random * 50;
    a.max_ms = 120000;
    attacker_start(&a, random_bytes);
    judge("random bytes", &q, P.random * 1000 / RANDOM_RATE); /* the pair measures throughout */
    attacker_stop(&a);
    double perr = metric("sluice_protocol_errors_total") - perr0;
    printf("abuse: random bytes: %d connections (half on the Kafka port%s), %.1f MiB sent, %d of "
           "%d with an impossible length closed by the broker, protocol errors +%g\n",
           a.done, h.kafka_port > 0 ? "" : ": SKIP, no Kafka listener", a.bytes / MIB, a.closed_ok,
           a.must_close, perr);
    CHECK(a.done >= P.random);
    CHECK_EQ_INT(a.failed_connects, 0);
    CHECK_EQ_INT(a.closed_ok, a.must_close);
    CHECK_MSG(perr >= a.must_close, "protocol errors +%g, %d impossible lengths", perr,
              a.must_close);
    settled("random bytes");
}

/* ---- 3. half-open connections -------------------------------------------- */

static void attack_halfopen(void)
{
    stats_t q = quiet("half-open connections");
    int n = P.halfopen;
    int *fds = malloc((size_t)n * sizeof *fds);
    CHECK_FATAL(fds != NULL);
    double rss0 = rss_mib();
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int kafka = i % 4 == 3 && h.kafka_port > 0;
        fds[i] = tcp_connect(kafka ? h.kafka_port : h.port, "127.0.0.200", 0, 0);
        if (fds[i] < 0) continue;
        ok++;
        /* A frame of 100 bytes, cut after 2, 6 or 18 of them. */
        uint8_t f[18];
        memset(f, 0, sizeof f);
        sl_put_be32(f, 96);
        sl_put_be32(f + 4, 4);
        size_t cut = i % 3 == 0 ? 2 : i % 3 == 1 ? 6 : sizeof f;
        CHECK(send_some(fds[i], f, cut) == (ssize_t)cut);
    }
    CHECK_EQ_INT(ok, n);
    double open = wait_metric("sluice_connections", base_conns + ok, 20000);
    CHECK_MSG(open == base_conns + ok, "sluice_connections %g with %d half-open (base %g)", open,
              ok, base_conns);
    sleep_ms(300);
    double rss1 = rss_mib();
    double per = ok > 0 ? (rss1 - rss0) * MIB / ok : 0;
    printf("abuse: %d half-open connections (partial frames), %.0f bytes per connection (broker "
           "RSS %.1f -> %.1f MiB)\n",
           ok, per, rss0, rss1);
    CHECK_MSG(per <= 16384, "%.0f bytes per half-open connection", per);
    judge("half-open connections", &q, 0);
    /* Half of them shut their side down: the broker must close those. */
    int shut = 0;
    for (int i = 0; i < n; i += 2)
        if (fds[i] >= 0 && shutdown(fds[i], SHUT_WR) == 0) shut++;
    long long t0 = sl_mono_ms();
    double left = wait_metric("sluice_connections", base_conns + ok - shut, 20000);
    int closed = 0;
    for (int i = 0; i < n; i += 2)
        if (fds[i] >= 0) closed += peer_closed(fds[i], 100);
    printf("abuse: half-open: %d sent FIN, %d of them closed by the broker within %lld ms; "
           "sluice_connections %g (base %g + %d still open)\n",
           shut, closed, sl_mono_ms() - t0, left, base_conns, ok - shut);
    CHECK_EQ_INT(left, base_conns + ok - shut);
    CHECK_EQ_INT(closed, shut);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    settled("half-open connections");
    free(fds);
}

/* ---- 4. slowloris -------------------------------------------------------- */

static void attack_slowloris(void)
{
    stats_t q = quiet("slowloris");
    slow_t s;
    memset(&s, 0, sizeof s);
    s.n = P.slowloris;
    s.fds = malloc((size_t)s.n * sizeof *s.fds);
    CHECK_FATAL(s.fds != NULL);
    double rss0 = rss_mib();
    double infl0 = metric("sluice_inflight_bytes");
    uint32_t claim = MAX_REQUEST - 4096;
    int ok = 0;
    for (int i = 0; i < s.n; i++) {
        int kafka = i % 4 == 3 && h.kafka_port > 0;
        s.fds[i] = tcp_connect(kafka ? h.kafka_port : h.port, "127.0.0.201", 0, 1);
        if (s.fds[i] < 0) continue;
        ok++;
        /* A frame header claiming `claim` bytes; the Sluice header length
         * is plausible too. */
        uint8_t f[8];
        sl_put_be32(f, claim - 4);
        sl_put_be32(f + 4, kafka ? 0x00120003 : 16);
        CHECK(send_some(s.fds[i], f, sizeof f) == (ssize_t)sizeof f);
    }
    CHECK_EQ_INT(ok, s.n);
    double open = wait_metric("sluice_connections", base_conns + ok, 20000);
    CHECK_EQ_INT(open, base_conns + ok);
    s.a.max_ms = P.slowloris_ms + 120000;
    atomic_store(&s.a.stop, 0);
    CHECK_FATAL(pthread_create(&s.a.t, NULL, trickle, &s) == 0);
    sleep_ms(200);
    double infl = metric("sluice_inflight_bytes");
    double rss1 = rss_mib();
    printf("abuse: slowloris: %d connections each claiming a %u-byte frame (%.0f MiB in all), "
           "trickling 1 byte/s for %d s; sluice_inflight_bytes %.0f -> %.0f "
           "(queued.max.request.bytes 268435456), broker RSS %.1f -> %.1f MiB\n",
           ok, claim, (double)ok * claim / MIB, P.slowloris_ms / 1000, infl0, infl, rss0, rss1);
    fflush(stdout);
    judge("slowloris", &q, P.slowloris_ms);
    attacker_stop(&s.a);
    infl = metric("sluice_inflight_bytes");
    printf("abuse: slowloris: %lld bytes trickled; sluice_inflight_bytes %.0f at the end\n",
           s.a.bytes, infl);
    /* The broker must not count bytes that never arrived against the
     * global budget: that budget is what every other client shares. */
    CHECK_MSG(infl < 268435456.0,
              "slowloris: sluice_inflight_bytes %.0f reached queued.max.request.bytes: every "
              "reactor stops reading, every client stalls",
              infl);
    for (int i = 0; i < s.n; i++)
        if (s.fds[i] >= 0) close(s.fds[i]);
    settled("slowloris");
    free(s.fds);
}

/* ---- 5. clients that never read ------------------------------------------ */

static void attack_nonreading(void)
{
    /* A topic to fetch from (~4 MiB) and one with 64 partitions, so a
     * Metadata answer is some hundreds of bytes. */
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_FATAL(sc_create_topic(&c, "big", 1) == 0);
    CHECK_FATAL(sc_create_topic(&c, "wide", 64) == 0);
    for (int i = 0; i < 8; i++) {
        size_t len;
        uint8_t *b = bg_simple(64, 8000, 1700000000000LL, (uint32_t)i, &len);
        int64_t base;
        CHECK_EQ_INT(sc_produce(&c, "big", 0, 1, b, len, &base), 0);
        free(b);
    }
    sc_close(&c);
    stats_t q = quiet("clients that never read");
    uint8_t *meta = NULL, *fetch = NULL;
    size_t mlen = 0, flen = 0;
    for (int i = 0; i < 256; i++) {
        Sluice__MetadataRequest m = SLUICE__METADATA_REQUEST__INIT;
        encode_req(&meta, &mlen, SLUICE__API_KEY__METADATA, (uint64_t)i + 1, &m.base);
        Sluice__FetchRequest fr = SLUICE__FETCH_REQUEST__INIT;
        fr.topic = "big";
        fr.max_bytes = 1 << 20;
        encode_req(&fetch, &flen, SLUICE__API_KEY__FETCH, (uint64_t)i + 1, &fr.base);
    }
    int n = P.nonreading;
    int *fds = malloc((size_t)n * sizeof *fds);
    CHECK_FATAL(fds != NULL);
    double rss0 = rss_mib();
    for (int i = 0; i < n; i++) fds[i] = tcp_connect(h.port, "127.0.0.202", 4096, 1);
    /* Pipeline until every socket refuses more for 300 ms in a row (the
     * broker stopped reading it), for at most 20 s. */
    long long t0 = sl_mono_ms(), quiet_since = -1;
    long long sent = 0;
    int nfull = 0;
    while (sl_mono_ms() - t0 < 20000) {
        int progress = 0;
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0) continue;
            const uint8_t *b = i % 2 ? fetch : meta;
            size_t l = i % 2 ? flen : mlen;
            ssize_t w = send_some(fds[i], b, l);
            if (w > 0) {
                sent += w;
                progress = 1;
            }
        }
        if (progress) {
            quiet_since = -1;
        } else if (quiet_since < 0) {
            quiet_since = sl_mono_ms();
        } else if (sl_mono_ms() - quiet_since >= 300) {
            nfull = n;
            break;
        }
        sleep_ms(progress ? 1 : 20);
    }
    double infl = metric("sluice_inflight_bytes");
    double rss1 = rss_mib();
    /* What the broker may hold for them: every connection an input buffer
     * (the rest of a 256 KiB read, + 4 KiB), the Metadata ones also their
     * responses up to the cap plus one response (the Fetch ones' responses
     * are file ranges: no memory). */
    double bound = n * (double)(READ_BUF + 4096) + n / 2 * (double)(OUTPUT_CAP + 65536);
    printf("abuse: %d clients that never read (half Metadata, half 1 MiB Fetch): %.1f MiB of "
           "requests sent in %lld ms, all blocked: %s; sluice_inflight_bytes %.0f (bound %.0f), "
           "broker RSS %.1f -> %.1f MiB\n",
           n, sent / MIB, sl_mono_ms() - t0, nfull == n ? "yes" : "NO", infl, bound, rss0, rss1);
    CHECK_MSG(nfull == n, "the broker kept reading clients that never read, for 20 s");
    CHECK_MSG(infl >= 0 && infl <= bound, "sluice_inflight_bytes %.0f with %d non-reading clients",
              infl, n);
    /* RSS: twice that for the allocator's overhead (ASan's redzones), + 32 MiB. */
    CHECK_MSG(rss1 - rss0 <= 2 * bound / MIB + 32,
              "broker RSS grew %.1f MiB with %d non-reading clients", rss1 - rss0, n);
    judge("clients that never read", &q, 0);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    settled("clients that never read");
    free(fds);
    free(meta);
    free(fetch);
}

/* ---- 6. churn ------------------------------------------------------------ */

static void attack_churn(void)
{
    stats_t q = quiet("connection churn");
    double acc0 = metric("sluice_connections_accepted_total");
    attacker_t a;
    memset(&a, 0, sizeof a);
    a.min = P.churn;
    a.max = P.churn * 20;
    a.max_ms = 120000;
    long long t0 = sl_mono_ms();
    attacker_start(&a, churn);
    judge("connection churn", &q, P.churn * 1000 / CHURN_RATE);
    attacker_stop(&a);
    long long dt = sl_mono_ms() - t0;
    double acc = metric("sluice_connections_accepted_total") - acc0;
    printf("abuse: connection churn: %d connect/close cycles in %lld ms (%d failed connects), "
           "accepted +%g\n",
           a.done, dt, a.failed_connects, acc);
    CHECK(a.done >= P.churn);
    CHECK_EQ_INT(a.failed_connects, 0);
    CHECK_MSG(acc >= a.done / 2, "only %g of %d churned connections accepted", acc, a.done);
    settled("connection churn");
}

/* ---- main ---------------------------------------------------------------- */

/* A CHECK_FATAL exits: the broker must not outlive the test. */
static void kill_broker(void)
{
    harness_cleanup(&h);
}

int main(int argc, char **argv)
{
    int long_run = argc > 1 && strcmp(argv[1], "--long") == 0;
    P = long_run ? LONG : SHORT;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    long long t_start = sl_mono_ms();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    harness_init(&h, long_run ? "abuse-long" : "abuse");
    atexit(kill_broker);
    /* Under ASan (make test), freed memory waits in a quarantine of up to
     * 256 MiB, which shows in VmRSS: the RSS bounds would measure ASan, not
     * the broker. The broker's quarantine is capped at 16 MiB (still enough
     * to catch a use after free soon after the free); a build without ASan
     * ignores the variable. */
    {
        const char *old = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", old ? old : "",
                 old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    CHECK_FATAL(harness_start(&h, broker_args) == 0);
    printf("abuse: %s run; RSS bound %.0f MiB; Kafka port %d\n", long_run ? "long" : "short",
           P.rss_bound, h.kafka_port);

    pair_open();
    /* Warm-up: the pair's connections exist and the first fetch is served. */
    stats_t w = measure(50, 0, 50);
    CHECK_FATAL(w.n == 50);
    /* The producer's connection and the consumer's (metadata and data). */
    base_conns = metric("sluice_connections");
    CHECK_MSG(base_conns >= 2 && base_conns <= 4, "sluice_connections %g with only the pair",
              base_conns);
    stats_t b = measure(QUIET_N, 0, QUIET_N);
    printf("abuse: baseline: %d round trips, p50 %.3f ms p99 %.3f ms max %.3f ms; broker RSS "
           "%.1f MiB\n",
           b.n, b.p50, b.p99, b.max, rss_mib());
    CHECK_EQ_INT(b.n, QUIET_N);

    /* Idle connections first: the broker's allocator has no freed
     * connections to reuse yet, so the RSS difference is what they cost. */
    attack_idle();
    attack_random();
    attack_halfopen();
    attack_nonreading();
    attack_churn();
    /* Last: it wedges the broker today (see attack_slowloris). */
    attack_slowloris();

    stats_t f = quiet("the end");
    CHECK_EQ_INT(f.n, QUIET_N);
    CHECK_EQ_INT(pair.dr_errors, 0);
    CHECK_EQ_INT(pair.cons_errors, 0);
    CHECK_EQ_INT(pair.order_errors, 0);
    pair_close();
    printf("abuse: pair: %lld messages, %d delivery errors, %d consumer errors, %d out of "
           "order\n",
           pair.seq, pair.dr_errors, pair.cons_errors, pair.order_errors);
    printf("abuse: broker RSS max %.1f MiB (bound %.0f MiB); broker restarts after a wedge: %d\n",
           rss_max_mib, P.rss_bound, restarts);
    CHECK_EQ_INT(restarts, 0);
    CHECK_MSG(rss_max_mib <= P.rss_bound, "broker RSS reached %.1f MiB (bound %.0f MiB)",
              rss_max_mib, P.rss_bound);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status 0x%x", st);
    printf("abuse: total %lld ms\n", sl_mono_ms() - t_start);
    return check_exit();
}
