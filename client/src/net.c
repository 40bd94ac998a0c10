/* net.c — the producer's broker connection: one non-blocking TCP socket in
 * the I/O thread's epoll, requests pipelined in order and written with
 * writev straight from the batch buffers (no copy of the payload),
 * responses parsed with proto/codec.h and matched in request order.
 * Used only by the I/O thread; no locking.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "batch.h"
#include <poll.h>

#include "internal.h"

#define MAX_RESPONSE (64u << 20)

int sl_net_dial(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host || !colon[1]) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    /* getaddrinfo may block on DNS; bootstrap servers are normally
     * literal addresses or /etc/hosts names. */
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sl_net_dial_wait(const char *hostport, int timeout_ms)
{
    int fd = sl_net_dial(hostport);
    if (fd < 0) return -1;
    /* The connect was started non-blocking so that a black-holed address
     * costs at most the caller's timeout, not the kernel's SYN retries. */
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int n;
    do n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 0)
        err = ETIMEDOUT;
    else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno ? errno : EIO;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int sl_conn_connect(sl_conn_t *c, int epfd, const char *hostport)
{
    int fd = sl_net_dial(hostport);
    if (fd < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->state = SL_CONN_CONNECTING;
    c->rlen = 0;
    c->send_off = 0;
    return 0;
}

void sl_conn_close(sl_conn_t *c)
{
    if (c->fd >= 0) close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = SL_CONN_DOWN;
    c->rlen = 0;
    c->send_off = 0;
}

void sl_conn_enqueue(sl_conn_t *c, sl_req_t *r)
{
    r->next = NULL;
    if (c->sendq_tail)
        c->sendq_tail->next = r;
    else
        c->sendq = r;
    c->sendq_tail = r;
    c->queued++;
}

void sl_conn_update_events(sl_conn_t *c, int epfd)
{
    if (c->fd < 0) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (c->sendq || c->state == SL_CONN_CONNECTING) ev.events |= EPOLLOUT;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

int sl_conn_write(sl_conn_t *c, void (*on_sent)(void *ctx, sl_req_t *r), void *ctx)
{
    if (c->state == SL_CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) return -1;
        c->state = SL_CONN_UP;
    }
    while (c->sendq) {
        struct iovec iov[64];
        int n = 0;
        size_t skip = c->send_off;
        for (sl_req_t *r = c->sendq; r && n < 64; r = r->next) {
            if (skip < r->hdr_len) {
                iov[n++] = (struct iovec){r->hdr + skip, r->hdr_len - skip};
                skip = 0;
            } else {
                skip -= r->hdr_len;
            }
            for (sl_pbatch_t *b = r->batches; b && n < 64; b = b->next) {
                if (skip < b->wire_len) {
                    iov[n++] = (struct iovec){b->wire + skip, b->wire_len - skip};
                    skip = 0;
                } else {
                    skip -= b->wire_len;
                }
            }
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            return -1;
        }
        c->send_off += (size_t)w;
        /* Pop every request now written in full. */
        while (c->sendq) {
            sl_req_t *r = c->sendq;
            size_t total = r->hdr_len;
            for (sl_pbatch_t *b = r->batches; b; b = b->next) total += b->wire_len;
            if (c->send_off < total) break;
            c->send_off -= total;
            c->sendq = r->next;
            if (!c->sendq) c->sendq_tail = NULL;
            r->next = NULL;
            if (r->expect_response) {
                if (c->waitq_tail)
                    c->waitq_tail->next = r;
                else
                    c->waitq = r;
                c->waitq_tail = r;
            } else {
                c->queued--;
                on_sent(ctx, r);
            }
        }
    }
    return 0;
}

int sl_conn_read(sl_conn_t *c, void (*on_resp)(void *ctx, sl_req_t *r, const sl_response_t *rs),
                 void *ctx)
{
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            size_t nc = c->rcap ? c->rcap * 2 : 1 << 16;
            uint8_t *nb = realloc(c->rbuf, nc);
            if (!nb) return -1;
            c->rbuf = nb;
            c->rcap = nc;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) return -1;
        c->rlen += (size_t)n;
        size_t pos = 0;
        for (;;) {
            uint32_t total;
            int rc = sl_frame_peek(c->rbuf + pos, c->rlen - pos, MAX_RESPONSE, &total);
            if (rc == SL_ERR_PARTIAL) break;
            if (rc != SL_OK) return -1;
            if (c->rlen - pos < total) {
                if (total > c->rcap) {
                    uint8_t *nb = realloc(c->rbuf, total + 4096);
                    if (!nb) return -1;
                    c->rbuf = nb;
                    c->rcap = total + 4096;
                }
                break;
            }
            sl_response_t rs;
            sl_err_t err;
            sl_arena_reset(&c->arena);
            if (sl_response_decode(c->rbuf + pos, total, &c->arena, &rs, &err) != SL_OK) return -1;
            sl_req_t *r = c->waitq;
            /* Responses come in request order: anything else means the
             * stream is out of step, and only a new connection can fix it. */
            if (!r || rs.hdr->correlation_id != r->corr) return -1;
            c->waitq = r->next;
            if (!c->waitq) c->waitq_tail = NULL;
            r->next = NULL;
            c->queued--;
            on_resp(ctx, r, &rs);
            pos += total;
        }
        if (pos) {
            memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
            c->rlen -= pos;
        }
    }
}
