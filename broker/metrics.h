/* metrics.h — counters and latency histograms, rendered as Prometheus text
 * on GET /metrics.
 *
 * Each worker owns a metrics_worker_t and is its only writer (relaxed
 * atomic adds, so the renderer on another thread reads whole values); the
 * page sums all workers. Histograms have power-of-two microsecond buckets.
 */
#ifndef SLUICE_BROKER_METRICS_H
#define SLUICE_BROKER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MET_APIS    20 /* ApiKey values 0..19 */
#define MET_CODES   20 /* distinct error codes tracked per api, see metrics.c */
#define MET_BUCKETS 26
#define MET_KAFKA_APIS                                                                             \
    23 /* Kafka API keys 0..22; slot 23 counts unknown keys */ /* 1 µs .. 2^25 µs (33 s) */

typedef struct met_hist {
    _Atomic uint64_t bucket[MET_BUCKETS]; /* count of observations ≤ 2^i µs */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} met_hist_t;

typedef struct metrics_worker {
    _Atomic uint64_t accepted, closed, rejected;
    _Atomic uint64_t requests[MET_APIS];
    _Atomic uint64_t errors[MET_APIS][MET_CODES];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t protocol_errors; /* connections closed for an untrusted stream */
    _Atomic uint64_t kafka_requests[MET_KAFKA_APIS + 1]; /* by Kafka API key */
    _Atomic uint64_t kafka_errors[MET_KAFKA_APIS + 1];   /* of those, answered with an error */
    met_hist_t produce_us, fetch_us;
} metrics_worker_t;

static inline void met_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void met_observe(met_hist_t *h, uint64_t us);

/* Counts one request of `api` that ended with `code` (0 = success). */
void met_request(metrics_worker_t *m, int api, int code);

struct broker;
struct worker;
/* Renders the page; malloc'd, *len bytes. NULL on ENOMEM. */
char *metrics_render(struct broker *b, size_t *len);

/* Serves one accepted HTTP connection (fd non-blocking) on worker w: reads
 * the request head (≤ 4 KiB, 10 s), answers GET /metrics, closes. */
void metrics_http_accept(struct worker *w, int fd);

#endif
