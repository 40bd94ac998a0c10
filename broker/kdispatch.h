/* kdispatch.h — the Kafka listener: request handling for Kafka's wire
 * protocol (proto/kafka.h decodes; docs/kafka-compat.md describes what is
 * served). Worker thread only, like dispatch.h.
 *
 * A Kafka connection uses the same conn_t machinery as Sluice's protocol:
 * response slots in request order, output chains of memory and sendfile
 * ranges, budgets and idle reaping. Handlers write the whole response with
 * a kf_writer_t and hand it over with kafka_send(); Fetch splices file
 * ranges into it (conn_respond_raw).
 *
 * Requests that cannot be answered in their own layout — an API key that
 * is not served, a version above the advertised one, a body that does not
 * decode — get a minimal response (size, correlation id, int16 error code:
 * UNSUPPORTED_VERSION or INVALID_REQUEST) and the connection is closed once
 * it is written, as Kafka closes it. ApiVersions above v2 is the exception
 * (kafka-protocol.md §2.1): a v0 answer with UNSUPPORTED_VERSION, and the
 * connection stays open.
 *
 * Handlers never keep pointers into the frame or the arena after they
 * return: asynchronous work copies what it needs.
 */
#ifndef SLUICE_BROKER_KDISPATCH_H
#define SLUICE_BROKER_KDISPATCH_H

#include <stdint.h>

#include "conn.h"
#include "kafka.h"

/* Handlers. `s` is the response slot (NULL only for Produce, which takes
 * its own unless acks=0); t0_us is when the request was read. */
typedef void (*k_handler_fn)(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_api_versions(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us); /* k_meta.c */
void k_metadata(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_create_topics(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_delete_topics(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_find_coordinator(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_init_producer_id(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_produce(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us); /* k_produce.c */
void k_fetch(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);   /* k_fetch.c */
void k_list_offsets(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_join_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us); /* k_groups.c */
void k_sync_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_heartbeat(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_leave_group(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_offset_commit(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_offset_fetch(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_describe_groups(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);
void k_list_groups(conn_t *c, slot_t *s, kf_request_t *r, uint64_t t0_us);

/* The int16 error code Kafka clients expect for an sl_code_t: wire codes
 * pass through; local failures (negative) become UNKNOWN_SERVER_ERROR (-1). */
int16_t kafka_code(int code);

/* Finishes w (kw_finish) and fills slot s with it; counts the request in
 * the metrics with `code` (the request's overall result). An allocation
 * failure inside w closes the connection. */
void kafka_send(conn_t *c, slot_t *s, kf_writer_t *w, int api, int code);

/* Counts one Kafka request of `api` that ended with `code`. */
void kafka_count(conn_t *c, int api, int code);

#endif
