/* call.c — blocking request/response calls on a connection of their own:
 * the admin handle (admin.c) and the consumer's coordinator connection
 * (consumer_group.c). The producer and the consumer's data connection
 * pipeline instead (net.c, consumer.c).
 *
 * One request at a time, so the next frame on the socket must be the answer
 * to the request just written. A call that stops half-way (timeout, cancel,
 * a broken or garbled stream) would leave that answer on its way to the
 * next call, so it closes the socket; the owner reconnects.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "internal.h"

#define CALL_MAX_RESPONSE (64u << 20)
#define CALL_CANCEL_MS    100 /* how often a cancellable wait asks */

void sl_callconn_init(sl_callconn_t *k, size_t arena_limit)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    sl_arena_init(&k->arena, NULL, 0, arena_limit);
}

void sl_callconn_close(sl_callconn_t *k)
{
    if (k->fd >= 0) close(k->fd);
    k->fd = -1;
}

void sl_callconn_free(sl_callconn_t *k)
{
    sl_callconn_close(k);
    sl_arena_free(&k->arena);
    free(k->buf);
    k->buf = NULL;
    k->cap = 0;
}

static int grow(sl_callconn_t *k, size_t n)
{
    if (n <= k->cap) return 0;
    uint8_t *b = realloc(k->buf, n);
    if (!b) return -1;
    k->buf = b;
    k->cap = n;
    return 0;
}

/* Waits until fd is ready for events: SLUICE_OK, SLUICE_ERR__TIMED_OUT once
 * deadline has passed, SLUICE_ERR__DESTROY when cancel says so, or
 * SLUICE_ERR__TRANSPORT (errno set) when poll fails. A deadline already
 * past still gets one look, so an answer that is there is taken. */
static int wait_fd(int fd, short events, int64_t deadline, int (*cancel)(void *), void *arg)
{
    for (;;) {
        int64_t left = deadline - sl_mono_ms();
        if (left < 0) left = 0;
        if (cancel && left > 0 && cancel(arg)) return SLUICE_ERR__DESTROY;
        int slice = left > INT32_MAX ? INT32_MAX : (int)left;
        if (cancel && slice > CALL_CANCEL_MS) slice = CALL_CANCEL_MS;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, slice);
        if (n > 0) return SLUICE_OK;
        if (n < 0 && errno != EINTR) return SLUICE_ERR__TRANSPORT;
        if (n == 0 && slice == left) return SLUICE_ERR__TIMED_OUT;
    }
}

/* The peer's name for messages. */
static const char *peer(const sl_callconn_t *k)
{
    return k->peer[0] ? k->peer : "the broker";
}

/* Sends (dir POLLOUT) or receives (POLLIN) exactly len bytes at p before
 * deadline. SLUICE_OK, or an error with its message in errstr. */
static int xfer(sl_callconn_t *k, short dir, uint8_t *p, size_t len, int64_t deadline,
                int (*cancel)(void *), void *arg, char *errstr, size_t errstr_size)
{
    for (size_t off = 0; off < len;) {
        /* MSG_NOSIGNAL: a broker that went away must not raise SIGPIPE in
         * the application. */
        ssize_t n = dir == POLLOUT ? send(k->fd, p + off, len - off, MSG_NOSIGNAL)
                                   : recv(k->fd, p + off, len - off, 0);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        int rc = SLUICE_ERR__TRANSPORT;
        if (n < 0 && errno == EAGAIN &&
            (rc = wait_fd(k->fd, dir, deadline, cancel, arg)) == SLUICE_OK)
            continue;
        if (rc == SLUICE_ERR__TIMED_OUT)
            sl_errf(errstr, errstr_size,
                    dir == POLLOUT ? "request to %s timed out" : "no response from %s in time",
                    peer(k));
        else if (rc == SLUICE_ERR__DESTROY)
            sl_errf(errstr, errstr_size, "call cancelled (the consumer is closing)");
        else if (dir == POLLOUT)
            sl_errf(errstr, errstr_size, "send to %s failed: %s", peer(k), strerror(errno));
        else
            sl_errf(errstr, errstr_size, "connection to %s lost: %s", peer(k),
                    n == 0 ? "closed by the broker" : strerror(errno));
        return rc;
    }
    return SLUICE_OK;
}

/* Reads exactly one response frame into k->buf, and no further: nothing
 * else is expected, and anything after it would belong to no request. Its
 * size in *total. */
static int recv_frame(sl_callconn_t *k, int64_t deadline, int (*cancel)(void *), void *arg,
                      uint32_t *total, char *errstr, size_t errstr_size)
{
    /* k->buf held the request just sent: room for 4 bytes at least. */
    int rc = xfer(k, POLLIN, k->buf, 4, deadline, cancel, arg, errstr, errstr_size);
    if (rc != SLUICE_OK) return rc;
    if (sl_frame_peek(k->buf, 4, CALL_MAX_RESPONSE, total) != SL_OK) {
        sl_errf(errstr, errstr_size, "bad response frame from %s (is it a Sluice broker?)",
                peer(k));
        return SLUICE_ERR__BAD_MSG;
    }
    if (grow(k, *total) != 0) {
        sl_errf(errstr, errstr_size, "out of memory");
        return SLUICE_ERR__NO_MEMORY;
    }
    return xfer(k, POLLIN, k->buf + 4, *total - 4, deadline, cancel, arg, errstr, errstr_size);
}

int sl_call(sl_callconn_t *k, int api, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, int64_t deadline, int (*cancel)(void *),
            void *cancel_arg, ProtobufCMessage **body, char *errstr, size_t errstr_size)
{
    if (errstr && errstr_size) errstr[0] = '\0';
    if (body) *body = NULL;
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = (Sluice__ApiKey)api;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = ++k->corr;
    size_t len = sl_request_size(&h, req);
    if (grow(k, len) != 0) {
        /* Nothing was sent: the connection is still in step. */
        sl_errf(errstr, errstr_size, "out of memory");
        return SLUICE_ERR__NO_MEMORY;
    }
    sl_request_encode(&h, req, 0, k->buf);

    uint32_t total;
    int rc = xfer(k, POLLOUT, k->buf, len, deadline, cancel, cancel_arg, errstr, errstr_size);
    if (rc == SLUICE_OK)
        rc = recv_frame(k, deadline, cancel, cancel_arg, &total, errstr, errstr_size);
    if (rc != SLUICE_OK) {
        sl_callconn_close(k);
        return rc;
    }

    sl_arena_reset(&k->arena);
    sl_response_t rs;
    if (sl_response_decode(k->buf, total, &k->arena, &rs, NULL) != SL_OK ||
        rs.hdr->correlation_id != h.correlation_id) {
        sl_errf(errstr, errstr_size, "undecodable response from %s", peer(k));
        sl_callconn_close(k);
        return SLUICE_ERR__BAD_MSG;
    }
    if (rs.hdr->error_code != 0) {
        sl_errf(errstr, errstr_size, "%s", rs.hdr->error_message ? rs.hdr->error_message : "");
        return sl_client_code_from_wire(rs.hdr->error_code);
    }
    if (desc && body) {
        *body = sl_body_decode(desc, rs.body, rs.body_len, &k->arena, NULL);
        if (!*body) {
            sl_errf(errstr, errstr_size, "undecodable response body from %s", peer(k));
            return SLUICE_ERR__BAD_MSG;
        }
    }
    return SLUICE_OK;
}
