/* protocol.h — the listener registry: what a front end (a wire protocol)
 * plugs into the broker, and the table of front ends.
 *
 * A front end is one row: its name, the config key that lists its
 * listener, its framing, its dispatch and its connection hooks. broker.c
 * binds a listener for every row whose config value is not empty and
 * accepts connections that speak that row's protocol; conn.c reads bytes,
 * asks the row's framing where each frame ends, and hands whole frames to
 * its dispatch. Nothing outside a front end's own files branches on which
 * protocol a connection speaks. Adding a protocol: its files, a row in
 * protocols[] (protocol.c), and its config key in conf.c.
 *
 * Threads: every hook runs on the connection's worker thread.
 */
#ifndef SLUICE_BROKER_PROTOCOL_H
#define SLUICE_BROKER_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct broker broker_t;
typedef struct conn conn_t;

typedef struct protocol {
    const char *name; /* "sluice", "kafka": logs */
    /* Where the listener is configured: offset of a char[] in broker_conf_t
     * holding host:port (empty: the protocol is off). */
    size_t conf_offset;
    /* Framing. Looks at the start of buf (len bytes, the connection's
     * unread input) and returns SL_OK with the size of the first frame in
     * *total (which may exceed len: the rest has not arrived), SL_ERR_PARTIAL
     * when more bytes are needed to know the size, or another code when
     * the stream cannot be trusted (the connection is closed; *total then
     * holds the size the frame claims, for the log line). A frame larger
     * than max is such an error. Must not consume or keep anything:
     * it is also asked about a partial frame to size the input buffer. */
    int (*frame_peek)(conn_t *c, const uint8_t *buf, size_t len, uint32_t max, uint32_t *total);
    /* Handles one whole frame (mutable: produce assigns offsets in place).
     * The frame's memory is reused after it returns. */
    void (*dispatch)(conn_t *c, uint8_t *frame, uint32_t total);
    /* The connection's output is all written (may be NULL). */
    void (*on_drained)(conn_t *c);
    /* The connection is closing: end what the protocol keeps for it
     * (may be NULL). Responses can no longer be sent. */
    void (*on_close)(conn_t *c);
    /* 1 while the broker owes the connection something that is not a
     * response slot (a push subscription waiting for data), so the idle
     * reaper leaves it alone (may be NULL). */
    int (*broker_owes)(const conn_t *c);
    /* The listener is bound to host:port (the first worker's socket): the
     * place to derive advertised addresses and to log (may be NULL). */
    void (*on_bound)(broker_t *b, const char *host, int port);
} protocol_t;

/* The front ends, in the order their listeners are bound. Row 0 is
 * Sluice's own protocol, whose "listening on" line comes last at start-up. */
#define PROTOCOLS 2
extern const protocol_t *const protocols[PROTOCOLS];

/* The rows (dispatch.c, kdispatch.c). */
extern const protocol_t protocol_sluice;
extern const protocol_t protocol_kafka;

#endif
