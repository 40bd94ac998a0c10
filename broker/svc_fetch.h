/* svc_fetch.h — the fetch service: a read plan over one or many
 * partitions, with the long poll, for every front end (Sluice's fetch is
 * the one-partition case).
 *
 * A front end fills a fetch_req_t with one fetch_part_t per requested
 * partition (looked up with topics_partition; a failed lookup is a part
 * with p == NULL and its code) and calls fetch_start. The service reads
 * each part (fetch_part_t.range: a pinned file range, whole batches from
 * the one holding the offset), in request order, against two limits:
 * each part's max_bytes and the request's max_bytes. The first part with
 * data may exceed both by its first batch (KIP-74: a consumer always
 * progresses); later parts are cut to what is left and may end in a
 * partial batch, which clients skip and fetch again. A part outside
 * [log start, log end] is OFFSET_OUT_OF_RANGE; at the log end it is empty.
 *
 * The request is answered (`done`) when the parts hold min_bytes in all,
 * when any part is in error, or when max_wait (capped by
 * fetch.max.wait.cap.ms) runs out; until then it waits on this worker,
 * watching every part's partition (watch.h), and is read again whenever
 * one grows. max_wait 0, min_bytes ≤ 0 or a draining worker answer at once.
 *
 * `done` runs once, on the request's worker, with every part's range set:
 * it takes the pins (conn_respond / conn_respond_raw) or releases them.
 * `release` runs once nothing refers to the request (possibly before
 * fetch_start returns); it must not unref the parts' partitions (the
 * service does). The service holds a connection reference while waiting;
 * a request whose connection closed ends without `done`.
 */
#ifndef SLUICE_BROKER_SVC_FETCH_H
#define SLUICE_BROKER_SVC_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "watch.h"

typedef struct fetch_req fetch_req_t;

typedef struct fetch_part {
    /* in */
    partition_t *p;    /* a reference the service drops; NULL: the lookup failed */
    int code;          /* the lookup's error when p is NULL */
    int64_t offset;    /* where to read */
    int64_t max_bytes; /* this part's limit (≤ 0: the first batch only) */
    /* out, for `done` */
    seg_range_t range;                 /* len 0: nothing (no pin) */
    int64_t high_watermark, log_start; /* -1 when p is NULL */
    int rcode;                         /* SL_OK or the part's error */
    /* the service's */
    fetch_req_t *rq;
    watch_t watch;
} fetch_part_t;

struct fetch_req {
    /* in */
    conn_t *c;
    uint64_t t0_us;
    fetch_part_t *parts;
    size_t nparts;
    int64_t min_bytes, max_bytes; /* max_bytes ≤ 0: the first batch only */
    int64_t max_wait_ms;
    void (*done)(fetch_req_t *rq);
    void (*release)(fetch_req_t *rq);
    void *owner;
    /* out: the first part error's message (Sluice sends it) */
    sl_err_t err;
    int64_t total_bytes; /* bytes in all the ranges */
    /* the service's */
    reactor_timer_t timer;
    int waiting;
};

/* Answers now or waits (see above). */
void fetch_start(fetch_req_t *rq);

/* The same in two steps, so a request that is answered at once needs no
 * allocation: fetch_try answers now if it can and returns 1 (done and
 * release have run). It returns 0 when the request must wait, having kept
 * nothing (no pin, no watch, the parts' references still the caller's):
 * the caller may then move rq (and its parts) to memory that lives until
 * `release`, and must call fetch_wait on the moved request. To answer at
 * once instead (no memory to wait in), set max_wait_ms to 0 and call
 * fetch_try again. */
int fetch_try(fetch_req_t *rq);
void fetch_wait(fetch_req_t *rq);

#endif
