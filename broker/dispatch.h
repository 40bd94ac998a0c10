/* dispatch.h — request handling for Sluice's protocol: one decoded frame in,
 * a response slot filled now or later. Worker thread only. Frames arrive
 * through the listener registry's row (protocol_sluice, dispatch.c).
 *
 * Handlers never keep pointers into the frame (it lives in a reused buffer)
 * or into the decode arena (reset per request): asynchronous work copies
 * what it needs.
 */
#ifndef SLUICE_BROKER_DISPATCH_H
#define SLUICE_BROKER_DISPATCH_H

#include <stdint.h>

#include "conn.h"

/* Handlers, by request type (h_produce.c, h_fetch.c, dispatch.c). */
void h_produce(conn_t *c, const sl_request_t *req, uint64_t t0_us);
void h_fetch(conn_t *c, const sl_request_t *req, uint64_t t0_us);
/* Consumer groups and committed offsets (h_groups.c): JOIN_GROUP ..
 * DESCRIBE_GROUP. */
void h_groups(conn_t *c, const sl_request_t *req);
/* Push mode (h_subscribe.c): SUBSCRIBE, CREDIT, UNSUBSCRIBE. */
void h_subscribe(conn_t *c, const sl_request_t *req);

/* Answers req now with a code, a message (NULL on success) and an optional
 * body, counting it in the metrics. */
void dispatch_reply(conn_t *c, const sl_request_t *req, int code, const char *msg,
                    const ProtobufCMessage *body);

/* In a handler: decodes the request body into `name` (arena memory) or
 * answers INVALID_REQUEST and returns. Declares `err`. */
#define DISPATCH_DECODE(type, name, desc)                                                          \
    sl_err_t err;                                                                                  \
    type *name = (type *)sl_body_decode(&desc, req->body, req->body_len, c->arena, &err);          \
    if (!name) {                                                                                   \
        dispatch_reply(c, req, SL_ERR_INVALID_REQUEST, err.msg, NULL);                             \
        return;                                                                                    \
    }

#endif
