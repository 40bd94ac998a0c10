/* conn.h — one client connection, whatever its protocol: input buffer and
 * framing (the protocol's frame_peek, protocol.h), response slots kept in
 * request order, and the output chain of memory and file-range nodes
 * written through the connection's transport (transport.h: gather-writes
 * and sendfile).
 *
 * Ownership: a worker owns its connections; every function runs on that
 * worker's thread. Asynchronous work (an acks=all wait, a long-polling
 * fetch) holds a reference (conn_ref) and may outlive the socket: after
 * conn_close the struct stays, marked closed, until the last conn_unref.
 *
 * Responses leave in request order: each request that will be answered gets
 * a slot when it is read; a slot is filled now or later; the head of the
 * queue is written as soon as it is filled.
 */
#ifndef SLUICE_BROKER_CONN_H
#define SLUICE_BROKER_CONN_H

#include <stdint.h>

#include "broker.h"
#include "codec.h"
#include "protocol.h"
#include "segment.h"
#include "transport.h"

/* Size of a worker's shared read buffer (worker_t.scratch). */
#define SCRATCH (256u << 10)

/* One node of output: memory (owned, freed when sent) or a pinned range of
 * a segment file (released when sent). */
typedef struct onode {
    struct onode *next;
    int is_file;
    uint8_t *mem;      /* memory: the bytes */
    size_t off, len;   /* bytes [off, len) left to send (file: offsets in the range) */
    seg_range_t range; /* file */
} onode_t;

/* A response slot. */
typedef struct slot {
    struct slot *next;
    int ready;
    onode_t *head, *tail;
    size_t bytes;
} slot_t;

struct conn {
    reactor_handle_t h;
    worker_t *w;
    conn_t *next, *prev; /* worker's list */
    conn_t *next_paused;
    uint64_t id;
    const protocol_t *proto; /* the listener's front end */
    const transport_t *tp;   /* what carries the bytes */
    char peer[64];
    int refs;
    int closed;
    int close_after_write; /* the stream is no longer trusted: close once answered */
    int paused;            /* on the worker's paused list (global budget) */
    int want_read;         /* input left unread because of a budget or cap */
    /* input */
    uint8_t *in;
    size_t in_len, in_cap;
    size_t in_off; /* bytes of in[0..in_len) already handled (a turn ended mid-buffer) */
    uint64_t partial_since_ms; /* when the incomplete frame in `in` began arriving */
    int64_t in_budget;         /* bytes of in_cap counted in the global budget */
    /* decode arena: the worker's, reset per request (handlers copy what
     * they keep), so an idle connection holds none */
    sl_arena_t *arena;
    /* responses */
    slot_t *shead, *stail;
    uint32_t nslots;
    onode_t *ohead, *otail; /* ready to write */
    uint64_t out_bytes;     /* queued bytes: slots + chain */
    int64_t out_budget;     /* memory bytes of out counted in the global budget */
    uint64_t last_active_ms;
    void *pstate; /* the protocol's own per-connection state (its on_close frees it) */
};

/* Accepted socket fd (non-blocking) → a registered connection speaking
 * proto over a plain transport. */
conn_t *conn_new(worker_t *w, int fd, const char *peer, const protocol_t *proto);

/* Closes the socket now (responses not yet written are dropped). Idempotent.
 * `why` is logged at info level (NULL: a normal close). */
void conn_close(conn_t *c, const char *why);

void conn_ref(conn_t *c);
void conn_unref(conn_t *c);

/* Reads and processes input when allowed (used to resume paused or capped
 * connections). */
void conn_resume(conn_t *c);

/* A new slot at the tail of the response queue. NULL on ENOMEM. */
slot_t *conn_slot(conn_t *c);

/* Fills slot s with a response frame: header (api, correlation id, code,
 * message), body (may be NULL), and optionally a file-range payload whose
 * pin the slot takes over (range may be NULL). Then writes what is ready.
 * On a closed connection just releases what it was given. */
void conn_respond(conn_t *c, slot_t *s, int api, uint64_t corr, int code, const char *msg,
                  const ProtobufCMessage *body, seg_range_t *range);

/* Fills slot s with a response already encoded (the Kafka listener):
 * mem[0..len) (malloc'd; ownership passes to the connection) with file
 * ranges spliced in — ranges[i] is sent right after byte cuts[i] of mem
 * (cuts ascending, each ≤ len). The pins of ranges[0..n) pass to the
 * connection too. Then writes what is ready. On a closed connection, or on
 * ENOMEM (which closes it), just releases what it was given. */
void conn_respond_raw(conn_t *c, slot_t *s, uint8_t *mem, size_t len, const size_t *cuts,
                      seg_range_t *ranges, size_t n);

/* Answers with an error and closes the connection once it is written. */
void conn_fail(conn_t *c, slot_t *s, int api, uint64_t corr, int code, const char *msg);

/* Frees every connection of a worker (shutdown). */
void conn_close_all(worker_t *w);

/* Closes connections idle longer than connections.max.idle.ms, and those
 * whose request in progress began arriving more than
 * request.read.timeout.ms ago. */
void conn_reap_idle(worker_t *w, uint64_t now_ms);

#endif
