/* subscribe.h — push mode (h_subscribe.c): a connection's subscriptions,
 * each streaming whole batches of one partition as PUSH frames within its
 * byte credit.
 *
 * Ownership: a subscription belongs to its connection (conn_t.subs) and is
 * also on its worker's list (worker_t.subs), which appended_task scans. It
 * holds a partition reference; it holds no connection reference: conn_close
 * ends every subscription of the connection (subscribe_conn_closed).
 *
 * Wake-ups: while a worker has a fetch wait or a live subscription on a
 * partition, its bit stays set in the partition's watcher word
 * (partition_user_word); an append on any worker then posts appended_task
 * here (h_fetch.c), which calls subscribe_check. The bit is set before the
 * first look at the log, so no append between the two is missed.
 *
 * Back-pressure: a push is a new ready slot at the tail of the response
 * queue, so responses keep their order. Pushing stops while the
 * connection's queued output is at max.connection.output.bytes; write_out
 * calls subscribe_output_drained once everything is written.
 *
 * Threads: every function runs on the connection's worker thread, except
 * at shutdown, when the main thread closes connections of stopped workers.
 */
#ifndef SLUICE_BROKER_SUBSCRIBE_H
#define SLUICE_BROKER_SUBSCRIBE_H

#include "conn.h"

/* Subscriptions one connection may hold; more get INVALID_REQUEST. */
#define SUBSCRIBE_MAX_PER_CONN 1024

/* Largest payload of one PUSH frame (more credit just means more frames). */
#define SUBSCRIBE_PUSH_MAX_BYTES (1u << 20)

/* The worker's bit in a partition's watcher word (same rule as h_fetch.c:
 * bits alias above 64 workers, which only costs spurious checks). */
static inline uint64_t subscribe_watch_bit(const worker_t *w)
{
    return 1ull << (w->id & 63);
}

/* Pushes to every subscription of worker w on p that may send (p grew). */
void subscribe_check(worker_t *w, partition_t *p);

/* 1 if a live subscription of worker w reads p (keep the watcher bit). */
int subscribe_watching(const worker_t *w, const partition_t *p);

/* 1 if a fetch of worker w waits on p (h_fetch.c; keep the watcher bit). */
int fetch_waits_watching(const worker_t *w, const partition_t *p);

/* Ends every subscription of c, sending nothing (conn_close). */
void subscribe_conn_closed(conn_t *c);

/* c's output chain is empty: resume subscriptions stopped at the output cap
 * (write_out). Does nothing while c is already pushing. */
void subscribe_output_drained(conn_t *c);

#endif
