/* svc_produce.h — the produce service: every rule of a produce, once, for
 * every front end.
 *
 * A front end decodes a request into a produce_req_t with one
 * produce_part_t per (topic, partition), calls produce_start, and encodes
 * the parts' results in its `done` callback. The service
 *   1. validates each part's records (presence; with one_batch, Kafka's
 *      "exactly one RecordBatch v2"; per batch what no producer may send:
 *      control batches, an idempotent batch without a sequence), looks the
 *      partition up (auto-creating the topic), deep-validates when
 *      deep.validation is on;
 *   2. appends: the partition checks the idempotent producer's state itself
 *      (storage/producers.h: epoch, sequence, a retry of one of its last 5
 *      batches answered with its first offsets and not appended again;
 *      transactional batches refused), under its own lock;
 *   3. answers by acks: 0 never (`done` is not called; produce_start
 *      returns the first error so the front end can close the connection,
 *      the only signal such a client gets, as in Kafka); 1 at once; -1 once
 *      a group-commit fdatasync covers every appended part's last offset,
 *      or at timeout_ms with REQUEST_TIMED_OUT for the parts still waiting.
 *
 * Completion: `done` runs exactly once (acks 1 and -1), on the request's
 * worker; flush verdicts reach the worker through task nodes embedded in
 * the parts (reactor_post_task), which cannot fail, so no response slot is
 * ever left unfilled. `release` runs once nothing refers to the request any
 * more (possibly before produce_start returns): the front end frees it
 * there. The service holds a connection reference while it waits.
 *
 * Threads: produce_start on the connection's worker; everything else the
 * service does runs there too.
 */
#ifndef SLUICE_BROKER_SVC_PRODUCE_H
#define SLUICE_BROKER_SVC_PRODUCE_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

typedef struct produce_req produce_req_t;

typedef struct produce_part {
    /* in: set by the front end; records are only read during produce_start
     * (offsets are assigned in place) */
    const char *topic;
    int32_t partition;
    uint8_t *records;
    size_t len;
    /* out */
    int code;            /* SL_OK or the part's error */
    int duplicate;       /* a retry of a batch already in the log */
    int64_t base_offset; /* -1 on error */
    int64_t last_offset;
    int64_t log_start;
    /* the service's */
    produce_req_t *rq;
    reactor_task_t task;
    int waiting; /* an fdatasync wait is outstanding */
    int flush_code;
} produce_part_t;

struct produce_req {
    /* in */
    conn_t *c;
    int acks;            /* 0, 1 or -1; anything else: INVALID_REQUIRED_ACKS for every part */
    int one_batch;       /* records must be exactly one batch (Kafka's rule for magic 2) */
    uint32_t timeout_ms; /* acks=-1; 0 means 30 s */
    uint64_t t0_us;      /* when the request was read (latency metric) */
    produce_part_t *parts;
    size_t nparts;
    void (*done)(produce_req_t *rq);
    void (*release)(produce_req_t *rq);
    void *owner; /* the front end's */
    /* out: the first part error, for logs and Sluice's single message */
    sl_err_t err;
    int code;
    /* the service's */
    int pending; /* parts waiting for a flush */
    int answered;
    reactor_timer_t timer;
};

/* Runs the request (see above). Returns SL_OK or the first part's error,
 * with its message in *first (may be NULL; written only on an error):
 * what an acks=0 front end closes the connection with. rq must stay valid
 * until `release`. With acks 0 or 1, `release` has run when produce_start
 * returns, so such a request may live on the caller's stack. The service
 * initialises every field it owns; the caller sets only the `in` ones. */
int produce_start(produce_req_t *rq, sl_err_t *first);

/* A fresh producer id for InitProducerId: unique across restarts (the
 * start-up time in ms times 65536, then counting). Any thread. */
int64_t produce_next_producer_id(broker_t *b);

#endif
