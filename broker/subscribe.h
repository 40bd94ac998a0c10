/* subscribe.h — push mode (h_subscribe.c): a connection's subscriptions,
 * each streaming whole batches of one partition as PUSH frames within its
 * byte credit.
 *
 * Ownership: a subscription belongs to its connection (its sluice_conn_t,
 * conn_t.pstate, created by the first Subscribe and freed on close) and
 * holds a partition reference and a watch on it in the worker's registry
 * (watch.h), which wakes it after an append. It holds no connection
 * reference: conn_close ends every subscription of the connection
 * (subscribe_conn_closed). The watch is added before the first look at the
 * log, so no append between the two is missed.
 *
 * Back-pressure: a push is a new ready slot at the tail of the response
 * queue, so responses keep their order. Pushing stops while the
 * connection's queued output is at max.connection.output.bytes; the
 * connection's on_drained hook calls subscribe_output_drained once
 * everything is written.
 *
 * Threads: every function runs on the connection's worker thread, except
 * at shutdown, when the main thread closes connections of stopped workers.
 */
#ifndef SLUICE_BROKER_SUBSCRIBE_H
#define SLUICE_BROKER_SUBSCRIBE_H

#include "conn.h"

/* Sluice's protocol's own per-connection state (conn_t.pstate). */
typedef struct sluice_conn {
    struct sub *subs; /* this connection's subscriptions */
    uint32_t nsubs;
    int push_busy;    /* pushing now: a drain must not start pushing again */
    int push_blocked; /* a subscription stopped at the output cap */
} sluice_conn_t;

/* Subscriptions one connection may hold; more get INVALID_REQUEST. */
#define SUBSCRIBE_MAX_PER_CONN 1024

/* Largest payload of one PUSH frame (more credit just means more frames). */
#define SUBSCRIBE_PUSH_MAX_BYTES (1u << 20)

/* Ends every subscription of c, sending nothing, and frees its push state
 * (the protocol's on_close). */
void subscribe_conn_closed(conn_t *c);

/* c's output chain is empty (the protocol's on_drained): resume
 * subscriptions stopped at the output cap. Does nothing while c is already
 * pushing or none was stopped. */
void subscribe_output_drained(conn_t *c);

#endif
