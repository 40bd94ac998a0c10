/* internal.h — libsluice's private declarations (never installed).
 *
 * Everything here has hidden visibility (the library is built with
 * -fvisibility=hidden); only SLUICE_API functions of sluice.h are exported.
 * The unit tests link the static archive and may call these directly.
 */
#ifndef SLUICE_CLIENT_INTERNAL_H
#define SLUICE_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "batch_build.h"
#include "codec.h"
#include "compress.h" /* sl_lz4_*: the tests reach them through here */
#include "sluice/sluice.h"

/* ---- configuration (conf.c) ------------------------------------------------ */

struct sluice_conf_s {
    char *bootstrap_servers;
    char *client_id;
    int acks;          /* 0, 1, -1 */
    int batch_size;    /* bytes per batch before it closes */
    int linger_ms;     /* how long an open batch waits for more records */
    int compression;   /* SL_COMPRESSION_NONE or SL_COMPRESSION_LZ4 */
    int max_in_flight; /* requests awaiting a response on the connection */
    int64_t buffer_memory;
    int max_block_ms;
    int retries;
    int retry_backoff_ms;
    int request_timeout_ms;
    int delivery_timeout_ms;
    /* consumer (consumer.c, consumer_group.c) */
    char *group_id;        /* NULL: no group (assign only, no commits) */
    int auto_offset_reset; /* SL_RESET_* */
    int enable_auto_commit;
    int auto_commit_interval_ms;
    int fetch_min_bytes;
    int fetch_max_wait_ms;
    int max_partition_fetch_bytes;
    int64_t fetch_max_bytes;
    int session_timeout_ms;
    int heartbeat_interval_ms;
    int check_crcs;
    int enable_partition_eof;
    int fetch_mode; /* SL_FETCH_PULL or SL_FETCH_PUSH */
    sluice_dr_cb_t *dr_cb;
    sluice_log_cb_t *log_cb;
    void *opaque;
};

enum { SL_RESET_EARLIEST, SL_RESET_LATEST, SL_RESET_ERROR };
enum { SL_FETCH_PULL, SL_FETCH_PUSH };

/* Logs through conf->log_cb or, without one, warnings and errors to stderr. */
void sl_client_log(const sluice_conf_t *conf, int level, const char *fac, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the producer's batches (accum.c) ----------------------------------------- */

/* What a delivery report needs per message: the application's opaque and
 * where the record starts in the batch's (uncompressed) buffer; key, value,
 * headers and timestamp are decoded from there at report time, so a message
 * costs 16 bytes besides its encoded record. */
typedef struct sl_msginfo {
    void *opaque;
    uint32_t rec_off;
} sl_msginfo_t;

typedef struct sl_pbatch sl_pbatch_t;
struct sl_pbatch {
    /* The records, encoded by proto/'s builder at sluice_produce() time
     * (the only copy of a message's bytes; DRs point into bld.buf). The
     * anonymous struct repeats the builder's leading fields so the
     * producer and its tests keep reading b->buf, b->len, b->cap and
     * b->count; C11 6.5.2.3 lets a union's members share a common initial
     * sequence, and the asserts in accum.c keep the two in step. Only the
     * builder writes them. */
    union {
        sl_batch_builder_t bld;
        struct {
            uint8_t *buf; /* 61-byte header + records, uncompressed */
            size_t len, cap;
            int32_t count;
        };
    };
    sl_pbatch_t *next;
    uint8_t *wire; /* what is sent: buf itself, or an lz4-compressed copy */
    size_t wire_len;
    sl_msginfo_t *msgs;
    int32_t msgs_cap;
    int64_t created_ms;  /* monotonic: linger starts here */
    int64_t deadline_ms; /* monotonic: delivery.timeout.ms of its first message */
    size_t mem;          /* bytes charged to buffer.memory */
    int retries;
    int closed;
    /* outcome, set when the batch leaves the I/O thread */
    int err;
    int64_t base_offset;
    /* owner's context for the report */
    struct sl_topic *topic;
    int32_t partition;
};

/* A new, empty batch whose buffer holds cap bytes (≥ 61). NULL on ENOMEM. */
sl_pbatch_t *sl_pbatch_new(size_t cap);
void sl_pbatch_free(sl_pbatch_t *b);

/* Encoded size of one record (including its length varint); over
 * SL_BATCH_MAX_SIZE when it cannot be encoded (a field over INT32_MAX
 * bytes) or sized (ENOMEM). */
size_t sl_record_size(int64_t ts_delta, int32_t offset_delta, const void *key, size_t key_len,
                      const void *value, size_t value_len, const sluice_header_t *hdrs,
                      size_t hdr_count);

/* Appends a record when it fits in cap (returns 0), else returns -1 and
 * changes nothing. The first record sets baseTimestamp. */
int sl_pbatch_append(sl_pbatch_t *b, int64_t ts, const void *key, size_t key_len, const void *value,
                     size_t value_len, const sluice_header_t *hdrs, size_t hdr_count, void *opaque);

/* Writes the header fields and CRC (attributes = none) into buf, and with
 * compression lz4 builds the compressed wire copy when it is smaller.
 * Idempotent. Returns 0 (a failed compression sends the batch plain). */
int sl_pbatch_finalize(sl_pbatch_t *b, int compression);

/* Decodes message i of a finalized or open batch for a delivery report.
 * hdrs must hold max_hdrs entries; header keys are copied into keybuf
 * (NUL-terminated); returns 0 or -1 if the record does not parse. */
int sl_pbatch_msg(const sl_pbatch_t *b, int32_t i, sluice_message_t *m, sluice_header_t *hdrs,
                  size_t max_hdrs, char *keybuf, size_t keybuf_size);

/* ---- the broker connection (net.c) -------------------------------------------
 * Owned and used only by the producer's I/O thread. Requests are written in
 * order (pipelined); responses come back in request order, so they are
 * matched against the head of the wait queue (and the correlation id is
 * checked). */

typedef struct sl_req sl_req_t;
struct sl_req {
    sl_req_t *next;
    uint64_t corr;
    int api;
    int expect_response;
    uint8_t *hdr; /* frame prefix + protobuf header + body */
    size_t hdr_len;
    sl_pbatch_t *batches; /* PRODUCE payload, linked by next, in order */
    struct sl_part *part;
    int32_t records;
    int64_t sent_ms; /* monotonic: queued on the connection */
};

enum { SL_CONN_DOWN, SL_CONN_CONNECTING, SL_CONN_UP };

typedef struct sl_conn {
    int fd, state;
    sl_req_t *sendq, *sendq_tail; /* not yet fully written; head at offset send_off */
    size_t send_off;
    sl_req_t *waitq, *waitq_tail; /* written, awaiting their response */
    int queued;                   /* requests in sendq + waitq */
    uint64_t next_corr;
    uint8_t *rbuf;
    size_t rcap, rlen;
    sl_arena_t arena;
} sl_conn_t;

/* Starts a non-blocking TCP connect to "host:port" (TCP_NODELAY, CLOEXEC):
 * the fd (connect in progress or done), or -1 with errno. */
int sl_net_dial(const char *hostport);

/* sl_net_dial, then waits up to timeout_ms for the connect to finish: a
 * connected non-blocking fd, or -1 with errno (ETIMEDOUT, ECONNREFUSED...). */
int sl_net_dial_wait(const char *hostport, int timeout_ms);

/* Starts a non-blocking connect to "host:port" and registers the socket in
 * epfd (data.ptr = c). 0, or -1 with errno. */
int sl_conn_connect(sl_conn_t *c, int epfd, const char *hostport);
/* Closes the socket; requests stay queued for the caller to take back. */
void sl_conn_close(sl_conn_t *c);
/* Appends a request to the send queue; the caller encoded it with
 * r->corr = ++c->next_corr. */
void sl_conn_enqueue(sl_conn_t *c, sl_req_t *r);
/* Writes what the socket accepts; fully written requests that expect no
 * response are passed to on_sent. 0, or -1 when the connection broke. */
int sl_conn_write(sl_conn_t *c, void (*on_sent)(void *ctx, sl_req_t *r), void *ctx);
/* Reads and dispatches whole response frames to on_resp (which owns the
 * request afterwards). 0, or -1 when the connection broke or the stream
 * cannot be trusted. */
int sl_conn_read(sl_conn_t *c, void (*on_resp)(void *ctx, sl_req_t *r, const sl_response_t *rs),
                 void *ctx);
/* Sets the epoll interest (EPOLLOUT only while there is something to send). */
void sl_conn_update_events(sl_conn_t *c, int epfd);

/* ---- blocking calls (call.c) ------------------------------------------------
 * One request, then its response, on a socket of its own: the admin handle
 * and the consumer's coordinator connection. Nothing is pipelined, so a call
 * that stops half-way closes the socket (the answer would otherwise reach the
 * next call); the owner reconnects. The owner serializes calls. */

typedef struct sl_callconn {
    int fd;         /* a connected non-blocking socket, or -1 */
    uint64_t corr;  /* the last correlation id sent */
    char peer[256]; /* "host:port" of fd, for messages; "" = unnamed */
    uint8_t *buf;   /* the request, then the response frame */
    size_t cap;
    sl_arena_t arena; /* the decoded response, until the next call */
} sl_callconn_t;

/* Not connected, no buffers; a response may decode into arena_limit bytes. */
void sl_callconn_init(sl_callconn_t *k, size_t arena_limit);
/* Closes the socket if open (fd = -1); buffers stay for the next one. */
void sl_callconn_close(sl_callconn_t *k);
/* Closes the socket and frees the buffers. */
void sl_callconn_free(sl_callconn_t *k);

/* Sends req as `api` on k->fd (the caller connected it), waits for the
 * response until deadline (sl_mono_ms) and decodes its body with desc into
 * k->arena at *body (valid until the next call; desc or body NULL: no body
 * wanted). cancel, when not NULL, is asked at least every 100 ms while the
 * call waits; non-zero gives up. errstr (may be NULL) gets a message.
 *   SLUICE_OK
 *   the broker's error code      errstr = its message ("" if none)
 *   SLUICE_ERR__BAD_MSG          the body does not decode
 *   SLUICE_ERR__NO_MEMORY        no room for the request (nothing sent)
 * and with the socket closed:
 *   SLUICE_ERR__TIMED_OUT        the deadline passed
 *   SLUICE_ERR__DESTROY          cancel said so
 *   SLUICE_ERR__TRANSPORT        send or receive failed, or the peer closed
 *   SLUICE_ERR__BAD_MSG          a frame or header that does not decode, or
 *                                the answer to another request
 *   SLUICE_ERR__NO_MEMORY        no room for the response */
int sl_call(sl_callconn_t *k, int api, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, int64_t deadline, int (*cancel)(void *),
            void *cancel_arg, ProtobufCMessage **body, char *errstr, size_t errstr_size);

/* ---- errors (errors.c) ------------------------------------------------------- */
int sl_client_code_from_wire(int code);

/* snprintf into a caller's error buffer; errstr NULL or size 0: nothing. */
void sl_errf(char *errstr, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
