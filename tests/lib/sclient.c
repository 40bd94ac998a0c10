#include "sclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"

int sc_connect(sc_t *c, int port)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 10000;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sl_arena_init(&c->arena, NULL, 0, 64u << 20);
    c->rcap = 1 << 16;
    c->rbuf = malloc(c->rcap);
    return c->rbuf ? 0 : -1;
}

void sc_close(sc_t *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
    sl_arena_free(&c->arena);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sc_send_raw(sc_t *c, const void *buf, size_t len)
{
    return write_all(c->fd, buf, len);
}

uint64_t sc_send(sc_t *c, int api, const ProtobufCMessage *body, const void *payload, size_t plen)
{
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = (Sluice__ApiKey)api;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = ++c->corr;
    size_t n = sl_request_size(&h, body);
    uint8_t *buf = malloc(n + plen);
    if (!buf) return 0;
    sl_request_encode(&h, body, (uint32_t)plen, buf);
    if (plen) memcpy(buf + n, payload, plen);
    int rc = write_all(c->fd, buf, n + plen);
    free(buf);
    return rc == 0 ? h.correlation_id : 0;
}

/* Makes at least `need` bytes available from rstart; 0, -1 EOF, -2 timeout. */
static int fill(sc_t *c, size_t need)
{
    if (c->rstart > 0 && c->rlen - c->rstart < need) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
        c->rlen -= c->rstart;
        c->rstart = 0;
    }
    if (need > c->rcap) {
        uint8_t *nb = realloc(c->rbuf, need);
        if (!nb) return -1;
        c->rbuf = nb;
        c->rcap = need;
    }
    while (c->rlen - c->rstart < need) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pf, 1, c->timeout_ms);
        if (pr == 0) return -2;
        if (pr < 0 && errno == EINTR) continue;
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        c->rlen += (size_t)n;
    }
    return 0;
}

int sc_recv(sc_t *c, sl_response_t *r)
{
    sl_arena_reset(&c->arena);
    int rc = fill(c, 4);
    if (rc < 0) return rc;
    uint32_t total = sl_be32(c->rbuf + c->rstart) + 4;
    if ((rc = fill(c, total)) < 0) return rc;
    sl_err_t err;
    if (sl_response_decode(c->rbuf + c->rstart, total, &c->arena, r, &err) != SL_OK) return -1;
    c->rstart += total;
    return 0;
}

int sc_wait_closed(sc_t *c, int timeout_ms)
{
    for (;;) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pf, 1, timeout_ms);
        if (pr == 0) return 0;
        if (pr < 0 && errno == EINTR) continue;
        uint8_t buf[4096];
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return 1;
        if (n < 0 && errno != EINTR) return 1;
    }
}

static int round_trip(sc_t *c, int api, const ProtobufCMessage *body, const void *payload,
                      size_t plen, sl_response_t *r)
{
    if (!sc_send(c, api, body, payload, plen)) return -1;
    if (sc_recv(c, r) != 0) return -1;
    return r->hdr->error_code;
}

int sc_create_topic(sc_t *c, const char *name, int32_t partitions)
{
    Sluice__CreateTopicRequest m = SLUICE__CREATE_TOPIC_REQUEST__INIT;
    m.name = (char *)name;
    m.partitions = partitions;
    sl_response_t r;
    return round_trip(c, SLUICE__API_KEY__CREATE_TOPIC, &m.base, NULL, 0, &r);
}

int sc_produce(sc_t *c, const char *topic, int32_t partition, int acks, const void *batches,
               size_t len, int64_t *base_offset)
{
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = partition;
    m.acks = acks;
    m.timeout_ms = 10000;
    sl_response_t r;
    int rc = round_trip(c, SLUICE__API_KEY__PRODUCE, &m.base, batches, len, &r);
    if (rc == 0 && base_offset) {
        sl_err_t err;
        Sluice__ProduceResponse *pr = (Sluice__ProduceResponse *)sl_body_decode(
            &sluice__produce_response__descriptor, r.body, r.body_len, &c->arena, &err);
        if (!pr) return -1;
        *base_offset = pr->base_offset;
    }
    return rc;
}

int sc_fetch(sc_t *c, const char *topic, int32_t partition, int64_t offset, uint32_t max_bytes,
             uint32_t min_bytes, uint32_t max_wait_ms, const uint8_t **payload, size_t *plen,
             int64_t *hw)
{
    Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = partition;
    m.offset = offset;
    m.max_bytes = max_bytes;
    m.min_bytes = min_bytes;
    m.max_wait_ms = max_wait_ms;
    sl_response_t r;
    int rc = round_trip(c, SLUICE__API_KEY__FETCH, &m.base, NULL, 0, &r);
    if (rc != 0) return rc;
    sl_err_t err;
    Sluice__FetchResponse *fr = (Sluice__FetchResponse *)sl_body_decode(
        &sluice__fetch_response__descriptor, r.body, r.body_len, &c->arena, &err);
    if (!fr) return -1;
    if (payload) *payload = r.payload;
    if (plen) *plen = r.payload_len;
    if (hw) *hw = fr->high_watermark;
    return 0;
}

int sc_list_offsets(sc_t *c, const char *topic, int32_t partition, int64_t ts, int64_t *offset)
{
    Sluice__ListOffsetsRequest m = SLUICE__LIST_OFFSETS_REQUEST__INIT;
    m.topic = (char *)topic;
    m.partition = partition;
    m.timestamp = ts;
    sl_response_t r;
    int rc = round_trip(c, SLUICE__API_KEY__LIST_OFFSETS, &m.base, NULL, 0, &r);
    if (rc != 0) return rc;
    sl_err_t err;
    Sluice__ListOffsetsResponse *lr = (Sluice__ListOffsetsResponse *)sl_body_decode(
        &sluice__list_offsets_response__descriptor, r.body, r.body_len, &c->arena, &err);
    if (!lr) return -1;
    *offset = lr->offset;
    return 0;
}
