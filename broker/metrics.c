/* metrics.c — the Prometheus text page and the tiny HTTP server that serves
 * it (GET /metrics on metrics.listener, handled by worker 0). */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "kafka.h"
#include "log.h"

/* Error codes tracked per api; anything else counts as "other". */
static const int codes[MET_CODES] = {0,  1,  2,  3,  7,  10, 17, 18, 21, 22,
                                     25, 27, 36, 37, 40, 42, 56, 69, 87, -1};
static const char *api_names[MET_APIS] = {
    "none",           "hello",       "metadata",      "create_topic", "delete_topic",
    "produce",        "fetch",       "list_offsets",  "join_group",   "sync_group",
    "heartbeat",      "leave_group", "offset_commit", "offset_fetch", "list_groups",
    "describe_group", "subscribe",   "credit",        "unsubscribe",  "push"};

void met_observe(met_hist_t *h, uint64_t us)
{
    int i = 0;
    while (i < MET_BUCKETS - 1 && us > (1ull << i)) i++;
    met_add(&h->bucket[i], 1);
    met_add(&h->count, 1);
    met_add(&h->sum_us, us);
}

void met_request(metrics_worker_t *m, int api, int code)
{
    if (api < 0 || api >= MET_APIS) api = 0;
    met_add(&m->requests[api], 1);
    int k = MET_CODES - 1;
    for (int i = 0; i < MET_CODES; i++)
        if (codes[i] == (code < 0 ? -1 : code)) {
            k = i;
            break;
        }
    met_add(&m->errors[api][k], 1);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

static void out(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(buf_t *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static uint64_t ld(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void hist(buf_t *o, broker_t *b, const char *name, const char *help, size_t off)
{
    out(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0, count = 0, sum = 0;
    for (int i = 0; i < MET_BUCKETS; i++) {
        for (int w = 0; w < b->nworkers; w++)
            cum += ld(&((met_hist_t *)((char *)&b->workers[w].m + off))->bucket[i]);
        out(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)(1ull << i) / 1e6,
            (unsigned long long)cum);
    }
    for (int w = 0; w < b->nworkers; w++) {
        met_hist_t *h = (met_hist_t *)((char *)&b->workers[w].m + off);
        count += ld(&h->count);
        sum += ld(&h->sum_us);
    }
    out(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
        (unsigned long long)count, name, (double)sum / 1e6, name, (unsigned long long)count);
}

static uint64_t sum_at(broker_t *b, size_t off)
{
    uint64_t s = 0;
    for (int w = 0; w < b->nworkers; w++)
        s += ld((_Atomic uint64_t *)((char *)&b->workers[w].m + off));
    return s;
}
#define SUM(field) sum_at(b, offsetof(metrics_worker_t, field))

static void part_line(void *arg, partition_t *p)
{
    buf_t *o = arg;
    partition_stats_t st;
    partition_stats(p, &st);
    out(o, "sluice_partition_log_end_offset{topic=\"%s\",partition=\"%d\"} %lld\n",
        partition_topic(p), partition_id(p), (long long)st.log_end);
    out(o, "sluice_partition_log_start_offset{topic=\"%s\",partition=\"%d\"} %lld\n",
        partition_topic(p), partition_id(p), (long long)st.log_start);
    out(o, "sluice_partition_size_bytes{topic=\"%s\",partition=\"%d\"} %llu\n", partition_topic(p),
        partition_id(p), (unsigned long long)st.size_bytes);
}

char *metrics_render(broker_t *b, size_t *len)
{
    buf_t o = {malloc(16384), 0, 16384, 0};
    if (!o.p) return NULL;
    out(&o,
        "# HELP sluice_connections Open client connections.\n# TYPE sluice_connections gauge\n");
    out(&o, "sluice_connections %lld\n", (long long)atomic_load(&b->nconns));
    out(&o,
        "# TYPE sluice_connections_accepted_total counter\nsluice_connections_accepted_total "
        "%llu\n",
        (unsigned long long)SUM(accepted));
    out(&o,
        "# TYPE sluice_connections_rejected_total counter\nsluice_connections_rejected_total "
        "%llu\n",
        (unsigned long long)SUM(rejected));
    out(&o, "# TYPE sluice_protocol_errors_total counter\nsluice_protocol_errors_total %llu\n",
        (unsigned long long)SUM(protocol_errors));
    out(&o, "# HELP sluice_requests_total Requests by type and result.\n"
            "# TYPE sluice_requests_total counter\n");
    for (int a = 1; a < MET_APIS; a++)
        for (int k = 0; k < MET_CODES; k++) {
            uint64_t n = 0;
            for (int w = 0; w < b->nworkers; w++) n += ld(&b->workers[w].m.errors[a][k]);
            if (n == 0 && k != 0) continue;
            out(&o, "sluice_requests_total{type=\"%s\",error=\"%s\"} %llu\n", api_names[a],
                k == MET_CODES - 1 ? "OTHER" : sl_code_name(codes[k]), (unsigned long long)n);
        }
    out(&o, "# HELP sluice_kafka_requests_total Requests on the Kafka listener by API.\n"
            "# TYPE sluice_kafka_requests_total counter\n"
            "# HELP sluice_kafka_request_errors_total Of those, answered with an error code.\n"
            "# TYPE sluice_kafka_request_errors_total counter\n");
    for (int a = 0; a <= MET_KAFKA_APIS; a++) {
        uint64_t n = 0, e = 0;
        for (int w = 0; w < b->nworkers; w++) {
            n += ld(&b->workers[w].m.kafka_requests[a]);
            e += ld(&b->workers[w].m.kafka_errors[a]);
        }
        if (n == 0) continue;
        const char *name = a < MET_KAFKA_APIS ? kf_api_name(a) : "Unknown";
        out(&o, "sluice_kafka_requests_total{api=\"%s\"} %llu\n", name, (unsigned long long)n);
        out(&o, "sluice_kafka_request_errors_total{api=\"%s\"} %llu\n", name,
            (unsigned long long)e);
    }
    out(&o, "# TYPE sluice_bytes_in_total counter\nsluice_bytes_in_total %llu\n",
        (unsigned long long)SUM(bytes_in));
    out(&o, "# TYPE sluice_bytes_out_total counter\nsluice_bytes_out_total %llu\n",
        (unsigned long long)SUM(bytes_out));
    out(&o, "# TYPE sluice_inflight_bytes gauge\nsluice_inflight_bytes %lld\n",
        (long long)atomic_load(&b->inflight_bytes));
    hist(&o, b, "sluice_produce_latency_seconds",
         "Produce request to response (acks=all: after fsync).",
         offsetof(metrics_worker_t, produce_us));
    hist(&o, b, "sluice_fetch_latency_seconds", "Fetch request to response (long polls included).",
         offsetof(metrics_worker_t, fetch_us));
    flusher_stats_t fs;
    flusher_get_stats(store_flusher(b->store), &fs);
    out(&o,
        "# HELP sluice_flush_seconds Time in fdatasync per partition flush.\n"
        "# TYPE sluice_flush_seconds summary\nsluice_flush_seconds_sum %g\n"
        "sluice_flush_seconds_count %llu\n",
        (double)fs.flush_ns_sum / 1e9, (unsigned long long)fs.flushes);
    out(&o, "# TYPE sluice_flush_waits_total counter\nsluice_flush_waits_total %llu\n",
        (unsigned long long)fs.waits_done);
    out(&o, "# TYPE sluice_open_segment_files gauge\nsluice_open_segment_files %u\n",
        store_open_segment_files(b->store));
    out(&o, "# TYPE sluice_partition_log_end_offset gauge\n"
            "# TYPE sluice_partition_log_start_offset gauge\n"
            "# TYPE sluice_partition_size_bytes gauge\n");
    store_foreach_open(b->store, part_line, &o);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

/* ---- HTTP ---- */

typedef struct http {
    reactor_handle_t h;
    worker_t *w;
    char req[4096];
    size_t rlen;
    char *resp;
    size_t wlen, woff;
    reactor_timer_t timer;
} http_t;

static void http_free(void *arg)
{
    http_t *x = arg;
    free(x->resp);
    free(x);
}

static void http_close(http_t *x)
{
    reactor_timer_stop(x->w->r, &x->timer);
    reactor_del(x->w->r, &x->h);
    close(x->h.fd);
    reactor_defer(x->w->r, http_free, x);
}

static void http_timeout(void *arg)
{
    http_close(arg);
}

static void http_io(void *arg, uint32_t ev)
{
    http_t *x = arg;
    if (x->h.dead) return;
    if (!x->resp && (ev & REACTOR_IN)) {
        for (;;) {
            ssize_t n = read(x->h.fd, x->req + x->rlen, sizeof x->req - 1 - x->rlen);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                http_close(x);
                return;
            }
            if (n < 0) break;
            x->rlen += (size_t)n;
            x->req[x->rlen] = 0;
            if (strstr(x->req, "\r\n\r\n") || strstr(x->req, "\n\n")) break;
            if (x->rlen == sizeof x->req - 1) {
                http_close(x); /* request head too large */
                return;
            }
        }
        if (!strstr(x->req, "\r\n\r\n") && !strstr(x->req, "\n\n")) return;
        size_t blen = 0;
        char *body = NULL;
        int ok =
            strncmp(x->req, "GET /metrics ", 13) == 0 || strncmp(x->req, "GET /metrics?", 13) == 0;
        if (ok) body = metrics_render(x->w->b, &blen);
        const char *status = ok ? (body ? "200 OK" : "500 Internal Server Error") : "404 Not Found";
        if (!body) {
            body = strdup(ok ? "out of memory\n" : "try GET /metrics\n");
            blen = body ? strlen(body) : 0;
        }
        char head[256];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          status, blen);
        x->resp = malloc((size_t)hl + blen);
        if (!x->resp) {
            free(body);
            http_close(x);
            return;
        }
        memcpy(x->resp, head, (size_t)hl);
        if (body) memcpy(x->resp + hl, body, blen);
        free(body);
        x->wlen = (size_t)hl + blen;
        reactor_mod(x->w->r, &x->h, REACTOR_OUT);
    }
    if (x->resp) {
        while (x->woff < x->wlen) {
            ssize_t n = send(x->h.fd, x->resp + x->woff, x->wlen - x->woff, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) break;
            x->woff += (size_t)n;
        }
        http_close(x);
    }
}

void metrics_http_accept(worker_t *w, int fd)
{
    http_t *x = calloc(1, sizeof *x);
    if (!x) {
        close(fd);
        return;
    }
    x->w = w;
    x->h.fd = fd;
    x->h.fn = http_io;
    x->h.arg = x;
    reactor_timer_init(&x->timer, http_timeout, x);
    if (reactor_add(w->r, &x->h, REACTOR_IN) < 0) {
        close(fd);
        free(x);
        return;
    }
    reactor_timer_start(w->r, &x->timer, 10000);
    http_io(x, REACTOR_IN); /* data may already be there (edge mode) */
}
