/* test_client_call.c — libsluice's blocking call (client/src/call.c) against
 * a fake broker on the other end of a socketpair: answers, broker errors,
 * and each way a call stops half-way (which must close the connection, so
 * a late answer cannot reach the next call). The fake's answer is written
 * before the call: the call reads only after it has sent its request. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "internal.h"

static int peer_fd = -1;

/* A fresh connection: k's end non-blocking, the fake broker's end in peer_fd. */
static void connect_pair(sl_callconn_t *k)
{
    int sv[2];
    CHECK_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    sl_callconn_close(k);
    if (peer_fd >= 0) close(peer_fd);
    k->fd = sv[0];
    peer_fd = sv[1];
    snprintf(k->peer, sizeof k->peer, "fake:1");
}

/* Queues a response frame for correlation id corr. */
static void answer(uint64_t corr, int wire_code, const char *msg, const ProtobufCMessage *body)
{
    Sluice__ResponseHeader h = SLUICE__RESPONSE_HEADER__INIT;
    h.api = SLUICE__API_KEY__METADATA;
    h.correlation_id = corr;
    h.error_code = (Sluice__ErrorCode)wire_code;
    h.error_message = (char *)(msg ? msg : "");
    uint8_t buf[1024];
    size_t n = sl_response_size(&h, body);
    CHECK_FATAL(n <= sizeof buf);
    n = sl_response_encode(&h, body, 0, buf);
    CHECK_FATAL(write(peer_fd, buf, n) == (ssize_t)n);
}

static int call(sl_callconn_t *k, int64_t wait_ms, int (*cancel)(void *), ProtobufCMessage **body,
                char *err, size_t errsz)
{
    Sluice__MetadataRequest req = SLUICE__METADATA_REQUEST__INIT;
    return sl_call(k, SLUICE__API_KEY__METADATA, &req.base, &sluice__metadata_response__descriptor,
                   sl_mono_ms() + wait_ms, cancel, NULL, body, err, errsz);
}

static int always(void *arg)
{
    (void)arg;
    return 1;
}

int main(void)
{
    sl_callconn_t k;
    sl_callconn_init(&k, 1 << 20);
    ProtobufCMessage *body;
    char err[256];

    /* An answer: decoded, the connection stays. */
    connect_pair(&k);
    Sluice__MetadataResponse mr = SLUICE__METADATA_RESPONSE__INIT;
    answer(k.corr + 1, 0, NULL, &mr.base);
    CHECK_EQ_INT(call(&k, 5000, NULL, &body, err, sizeof err), SLUICE_OK);
    CHECK(body != NULL && err[0] == '\0');
    CHECK(k.fd >= 0);

    /* A broker error: its code and message; the stream is still in step. */
    answer(k.corr + 1, 3, "no such topic", NULL);
    CHECK_EQ_INT(call(&k, 5000, NULL, &body, err, sizeof err), 3);
    CHECK_MSG(strcmp(err, "no such topic") == 0, "%s", err);
    CHECK(body == NULL && k.fd >= 0);

    /* The answer to another request: out of step, closed. */
    answer(k.corr + 7, 0, NULL, &mr.base);
    CHECK_EQ_INT(call(&k, 5000, NULL, &body, err, sizeof err), SLUICE_ERR__BAD_MSG);
    CHECK(k.fd < 0);

    /* No answer in time: closed, and the message names the peer. */
    connect_pair(&k);
    int64_t t0 = sl_mono_ms();
    CHECK_EQ_INT(call(&k, 100, NULL, &body, err, sizeof err), SLUICE_ERR__TIMED_OUT);
    CHECK(sl_mono_ms() - t0 >= 100);
    CHECK_MSG(strstr(err, "no response from fake:1") != NULL, "%s", err);
    CHECK(k.fd < 0);

    /* The broker hangs up. */
    connect_pair(&k);
    shutdown(peer_fd, SHUT_WR);
    CHECK_EQ_INT(call(&k, 5000, NULL, &body, err, sizeof err), SLUICE_ERR__TRANSPORT);
    CHECK_MSG(strstr(err, "closed by the broker") != NULL, "%s", err);
    CHECK(k.fd < 0);

    /* Not a Sluice frame (a length past the 64 MiB limit). */
    connect_pair(&k);
    CHECK_FATAL(write(peer_fd, "\xff\xff\xff\xff", 4) == 4);
    CHECK_EQ_INT(call(&k, 5000, NULL, &body, err, sizeof err), SLUICE_ERR__BAD_MSG);
    CHECK_MSG(strstr(err, "bad response frame") != NULL, "%s", err);
    CHECK(k.fd < 0);

    /* Cancelled: given up well before the deadline. */
    connect_pair(&k);
    t0 = sl_mono_ms();
    CHECK_EQ_INT(call(&k, 10000, always, &body, err, sizeof err), SLUICE_ERR__DESTROY);
    CHECK(sl_mono_ms() - t0 < 5000);
    CHECK(k.fd < 0);

    sl_callconn_free(&k);
    close(peer_fd);
    return check_exit();
}
