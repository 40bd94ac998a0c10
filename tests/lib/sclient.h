/* sclient.h — a small blocking client of Sluice's protocol over the proto/
 * codec, for tests and the load generator (libsluice, issue #4, is the real
 * client). One connection per sc_t; pipelining is allowed: sc_send several,
 * then sc_recv them in order. Every read is bounded by a timeout.
 * Single-threaded per sc_t.
 */
#ifndef SLUICE_TESTS_SCLIENT_H
#define SLUICE_TESTS_SCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct sc {
    int fd;
    uint64_t corr;
    sl_arena_t arena;
    uint8_t *rbuf;
    size_t rcap, rlen, rstart; /* bytes [rstart, rlen) received, not yet returned */
    int timeout_ms;
} sc_t;

/* Connects to 127.0.0.1:port. Returns 0 or -1 (errno). */
int sc_connect(sc_t *c, int port);
void sc_close(sc_t *c);

/* Sends one request frame; returns its correlation id, or 0 on error. */
uint64_t sc_send(sc_t *c, int api, const ProtobufCMessage *body, const void *payload, size_t plen);

/* Sends raw bytes as they are (for malformed-input tests). 0 or -1. */
int sc_send_raw(sc_t *c, const void *buf, size_t len);

/* Receives the next response frame; views stay valid until the next
 * sc_recv. Returns 0, -1 on EOF/error, -2 on timeout. */
int sc_recv(sc_t *c, sl_response_t *r);

/* 1 if the peer closed the connection within timeout_ms (reads until EOF,
 * discarding data), 0 otherwise. */
int sc_wait_closed(sc_t *c, int timeout_ms);

/* Convenience round trips; return the response's error code (0 = ok) or
 * -1 on a transport error. */
int sc_create_topic(sc_t *c, const char *name, int32_t partitions);
int sc_produce(sc_t *c, const char *topic, int32_t partition, int acks, const void *batches,
               size_t len, int64_t *base_offset);
/* Fetch: on success *payload points into the receive buffer (valid until
 * the next sc_recv), *hw gets the high watermark. */
int sc_fetch(sc_t *c, const char *topic, int32_t partition, int64_t offset, uint32_t max_bytes,
             uint32_t min_bytes, uint32_t max_wait_ms, const uint8_t **payload, size_t *plen,
             int64_t *hw);
int sc_list_offsets(sc_t *c, const char *topic, int32_t partition, int64_t ts, int64_t *offset);

#endif
