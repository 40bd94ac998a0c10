/* drv_rabbitmq.c — sluice-bench's RabbitMQ driver, through rabbitmq-c
 * (Debian's librabbitmq 0.11: <amqp.h>, <amqp_tcp_socket.h>).
 *
 * Mapping of the workload:
 *   partitions   one classic queue per partition, "<topic>.<i>"; setup deletes
 *                and declares them (durable iff acks=all), teardown deletes
 *                them.
 *   producer     one connection + channel each, publishing through the
 *                default exchange with routing key = queue name, to the
 *                requested queue (a negative partition: round-robin).
 *   acks         0: no confirms, a message counts as acknowledged once written
 *                to the socket; 1 and all: publisher confirms (confirm.select),
 *                basic.ack / basic.nack counted in produce/poll/flush, at most
 *                PUB_WINDOW messages unconfirmed (produce then blocks serving
 *                confirms); all also makes messages persistent
 *                (delivery_mode 2) in durable queues.
 *   batch.size, linger.ms, compression   no equivalent in AMQP 0-9-1 or
 *                rabbitmq-c: ignored (workload_finish() refuses lz4 for
 *                rabbitmq). rabbitmq-c writes each publish at once.
 *   consumer     consumer `id` of `n` consumes queues i with i % n == id on
 *                one connection + channel: basic.qos prefetch CON_PREFETCH,
 *                basic.consume without auto-ack, basic.ack multiple=true
 *                every CON_ACK_EVERY messages and whenever the socket runs
 *                dry (so a lull never leaves deliveries unacknowledged).
 *   bootstrap    host:port ([v6]:port too) from workload_bootstrap(): by
 *                default 127.0.0.1:15673, the private node of
 *                bench/peers/rabbitmq/rabbitmq.sh. Credentials guest/guest,
 *                vhost "/"; heartbeats off (a blocked harness thread would
 *                otherwise miss them).
 *
 * Errors name the AMQP operation and the broker's reply text (or
 * rabbitmq-c's error string). Producer errors after producer_new have no
 * caller buffer: they go to stderr, once, and the producer refuses further
 * messages (its unconfirmed ones count as failed).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include "clock.h"
#include "driver.h"

#define RMQ_USER              "guest"
#define RMQ_PASSWORD          "guest"
#define RMQ_VHOST             "/"
#define RMQ_FRAME_MAX         131072
#define RMQ_CONNECT_TIMEOUT_S 10
#define RMQ_CHANNEL           1

#define PUB_WINDOW     10000 /* max span of unconfirmed delivery tags */
#define PUB_RING       16384 /* power of two >= PUB_WINDOW */
#define PUB_BLOCK_MS   60000 /* produce gives up waiting for window room */
#define CON_PREFETCH   1000
#define CON_ACK_EVERY  100
#define CON_MAX_BATCH  1000 /* messages per consume() call at most */
#define CON_TAG_PREFIX "sluice-bench."

#define ERRMAX 512

/* --- helpers ---------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static struct timeval tv_ms(int64_t ms)
{
    if (ms < 0) ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void sleep_ms(int ms)
{
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* "rabbitmq: OP: what went wrong", from an RPC reply. */
static void reply_err(char *err, size_t errlen, const char *op, amqp_rpc_reply_t r)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        seterr(err, errlen, "rabbitmq: %s: failed (no error reported)", op);
        break;
    case AMQP_RESPONSE_NONE:
        seterr(err, errlen, "rabbitmq: %s: no reply from the broker", op);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        seterr(err, errlen, "rabbitmq: %s: %s", op, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD && r.reply.decoded) {
            const amqp_connection_close_t *m = r.reply.decoded;
            seterr(err, errlen, "rabbitmq: %s: broker closed the connection: %u %.*s", op,
                   (unsigned)m->reply_code, (int)m->reply_text.len,
                   (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD && r.reply.decoded) {
            const amqp_channel_close_t *m = r.reply.decoded;
            seterr(err, errlen, "rabbitmq: %s: broker closed the channel: %u %.*s", op,
                   (unsigned)m->reply_code, (int)m->reply_text.len,
                   (const char *)m->reply_text.bytes);
        } else {
            seterr(err, errlen, "rabbitmq: %s: unexpected broker method 0x%08x", op,
                   (unsigned)r.reply.id);
        }
        break;
    }
}

/* For a server-initiated close seen as a frame outside an RPC. */
static void close_frame_err(char *err, size_t errlen, const char *op, const amqp_frame_t *f)
{
    amqp_rpc_reply_t r;
    memset(&r, 0, sizeof r);
    r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
    r.reply = f->payload.method;
    reply_err(err, errlen, op, r);
}

static const char *bootstrap_of(const workload_t *w)
{
    /* workload_bootstrap()'s default is the peer script's private node. */
    return workload_bootstrap(w);
}

/* Splits "host:port" or "[v6]:port" into host (brackets removed) and port. */
static int split_hostport(const char *hp, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp) return -1;
    const char *h = hp, *hend = colon;
    if (*h == '[') {
        if (hend[-1] != ']') return -1;
        h++;
        hend--;
    }
    size_t n = (size_t)(hend - h);
    if (n == 0 || n >= hostlen) return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static int queue_name(char *buf, size_t len, const char *topic, int i)
{
    int n = snprintf(buf, len, "%s.%d", topic, i);
    return n < 0 || (size_t)n >= len || n > 255 ? -1 : 0;
}

/* Closes (if still open) and frees a connection. */
static void conn_close(amqp_connection_state_t conn, bool polite)
{
    if (!conn) return;
    if (polite) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* Connects, logs in and opens channel RMQ_CHANNEL. `who` goes into errors. */
static amqp_connection_state_t conn_open(const workload_t *w, const char *who, char *err,
                                         size_t errlen)
{
    const char *hp = bootstrap_of(w);
    char host[WORKLOAD_BOOTSTRAP_MAX];
    int port;
    if (split_hostport(hp, host, sizeof host, &port) < 0) {
        seterr(err, errlen, "rabbitmq %s: bad bootstrap address \"%s\" (want HOST:PORT)", who, hp);
        return NULL;
    }
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        seterr(err, errlen, "rabbitmq %s: amqp_new_connection: out of memory", who);
        return NULL;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock) {
        seterr(err, errlen, "rabbitmq %s: amqp_tcp_socket_new: out of memory", who);
        amqp_destroy_connection(conn);
        return NULL;
    }
    struct timeval tv = {.tv_sec = RMQ_CONNECT_TIMEOUT_S, .tv_usec = 0};
    int st = amqp_socket_open_noblock(sock, host, port, &tv);
    if (st != AMQP_STATUS_OK) {
        seterr(err, errlen, "rabbitmq %s: connect to %s: %s", who, hp, amqp_error_string2(st));
        amqp_destroy_connection(conn);
        return NULL;
    }
    char op[WORKLOAD_BOOTSTRAP_MAX + 128];
    amqp_rpc_reply_t r = amqp_login(conn, RMQ_VHOST, 0, RMQ_FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN,
                                    RMQ_USER, RMQ_PASSWORD);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(op, sizeof op, "%s: connection.open (login as %s to %s)", who, RMQ_USER, hp);
        reply_err(err, errlen, op, r);
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, RMQ_CHANNEL);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(op, sizeof op, "%s: channel.open", who);
        reply_err(err, errlen, op, r);
        conn_close(conn, r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION);
        return NULL;
    }
    return conn;
}

/* --- setup / teardown ------------------------------------------------------- */

static int rmq_setup(const workload_t *w, const char *topic, char *err, size_t errlen)
{
    amqp_connection_state_t conn = conn_open(w, "setup", err, errlen);
    if (!conn) return -1;
    const bool durable = w->acks == WORKLOAD_ACKS_ALL;
    char name[512], op[600];
    for (uint32_t i = 0; i < w->partitions; i++) {
        if (queue_name(name, sizeof name, topic, (int)i) < 0) {
            seterr(err, errlen, "rabbitmq setup: queue name \"%s.%u\" too long (max 255 bytes)",
                   topic, (unsigned)i);
            conn_close(conn, true);
            return -1;
        }
        amqp_queue_delete(conn, RMQ_CHANNEL, amqp_cstring_bytes(name), 0, 0);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(op, sizeof op, "setup: queue.delete \"%s\"", name);
            reply_err(err, errlen, op, r);
            conn_close(conn, r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION);
            return -1;
        }
        amqp_queue_declare(conn, RMQ_CHANNEL, amqp_cstring_bytes(name), 0, durable, 0, 0,
                           amqp_empty_table);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(op, sizeof op, "setup: queue.declare \"%s\" (%s)", name,
                     durable ? "durable" : "non-durable");
            reply_err(err, errlen, op, r);
            conn_close(conn, r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION);
            return -1;
        }
        amqp_maybe_release_buffers(conn);
    }
    conn_close(conn, true);
    return 0;
}

static void rmq_teardown(const workload_t *w, const char *topic)
{
    char err[ERRMAX];
    amqp_connection_state_t conn = conn_open(w, "teardown", err, sizeof err);
    if (!conn) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    char name[512];
    for (uint32_t i = 0; i < w->partitions; i++) {
        if (queue_name(name, sizeof name, topic, (int)i) < 0) break;
        amqp_queue_delete(conn, RMQ_CHANNEL, amqp_cstring_bytes(name), 0, 0);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char op[600];
            snprintf(op, sizeof op, "teardown: queue.delete \"%s\"", name);
            reply_err(err, sizeof err, op, r);
            fprintf(stderr, "%s\n", err);
            conn_close(conn, r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION);
            return;
        }
        amqp_maybe_release_buffers(conn);
    }
    conn_close(conn, true);
}

/* --- producer --------------------------------------------------------------- */

struct drv_producer {
    amqp_connection_state_t conn;
    int id;
    bool confirms, persistent;
    bool dead;       /* connection or channel lost: refuse, count as failed */
    bool conn_alive; /* worth a polite connection.close at free */
    uint32_t nqueues;
    uint32_t rr; /* next round-robin queue */
    char **names;
    uint64_t acked, failed;
    /* Publisher confirms: delivery tags [base, next) are published, those with
     * done[tag % PUB_RING] set are confirmed; base is the lowest unconfirmed. */
    uint64_t base, next;
    unsigned char done[PUB_RING];
};

static void prod_fail(drv_producer_t *p, const char *msg)
{
    if (!p->dead) fprintf(stderr, "rabbitmq producer %d: %s\n", p->id, msg);
    p->dead = true;
    /* Unconfirmed messages will never be confirmed now. */
    for (uint64_t t = p->base; t < p->next; t++)
        if (!p->done[t % PUB_RING]) p->failed++;
    memset(p->done, 0, sizeof p->done);
    p->base = p->next;
}

static void confirm_one(drv_producer_t *p, uint64_t tag, bool ok)
{
    unsigned char *d = &p->done[tag % PUB_RING];
    if (*d) return;
    *d = 1;
    if (ok)
        p->acked++;
    else
        p->failed++;
}

static void confirm(drv_producer_t *p, uint64_t tag, bool multiple, bool ok)
{
    if (multiple && tag == 0) tag = p->next - 1; /* "everything so far" */
    if (tag >= p->next) tag = p->next - 1;       /* the broker never does this */
    if (multiple) {
        for (uint64_t t = p->base; t <= tag; t++) confirm_one(p, t, ok);
    } else if (tag >= p->base) {
        confirm_one(p, tag, ok);
    }
    while (p->base < p->next && p->done[p->base % PUB_RING]) p->done[p->base++ % PUB_RING] = 0;
}

/* Handles one incoming frame. */
static void prod_frame(drv_producer_t *p, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD) return; /* e.g. a basic.return's content */
    char err[ERRMAX];
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *m = f->payload.method.decoded;
        confirm(p, m->delivery_tag, m->multiple, true);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *m = f->payload.method.decoded;
        confirm(p, m->delivery_tag, m->multiple, false);
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
        close_frame_err(err, sizeof err, "basic.publish", f);
        prod_fail(p, err);
        break;
    case AMQP_CONNECTION_CLOSE_METHOD:
        close_frame_err(err, sizeof err, "basic.publish", f);
        prod_fail(p, err);
        p->conn_alive = false;
        break;
    default:
        break; /* connection.blocked/unblocked, basic.return: nothing to count */
    }
}

/* Waits up to timeout_ms for a frame, then handles everything already
 * received without blocking. Returns frames handled, or -1 (dead). */
static int prod_pump(drv_producer_t *p, int64_t timeout_ms)
{
    int n = 0;
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = tv_ms(n == 0 ? timeout_ms : 0);
        int st = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT) break;
        if (st != AMQP_STATUS_OK) {
            char err[ERRMAX];
            seterr(err, sizeof err, "rabbitmq: waiting for basic.ack (publisher confirms): %s",
                   amqp_error_string2(st));
            prod_fail(p, err);
            p->conn_alive = false;
            return -1;
        }
        n++;
        prod_frame(p, &f);
        if (p->dead) return -1;
    }
    if (!amqp_frames_enqueued(p->conn) && !amqp_data_in_buffer(p->conn))
        amqp_maybe_release_buffers(p->conn);
    return n;
}

static void prod_free_names(drv_producer_t *p)
{
    if (!p->names) return;
    for (uint32_t i = 0; i < p->nqueues; i++) free(p->names[i]);
    free(p->names);
}

static void rmq_producer_free(drv_producer_t *p)
{
    if (!p) return;
    conn_close(p->conn, p->conn_alive);
    prod_free_names(p);
    free(p);
}

static drv_producer_t *rmq_producer_new(const workload_t *w, const char *topic, int id, char *err,
                                        size_t errlen)
{
    drv_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "rabbitmq producer %d: out of memory", id);
        return NULL;
    }
    p->id = id;
    p->confirms = w->acks != WORKLOAD_ACKS_NONE;
    p->persistent = w->acks == WORKLOAD_ACKS_ALL;
    p->base = p->next = 1; /* delivery tags start at 1 after confirm.select */
    p->nqueues = w->partitions;
    p->names = calloc(p->nqueues ? p->nqueues : 1, sizeof *p->names);
    if (!p->names) {
        seterr(err, errlen, "rabbitmq producer %d: out of memory", id);
        free(p);
        return NULL;
    }
    char name[512];
    for (uint32_t i = 0; i < p->nqueues; i++) {
        if (queue_name(name, sizeof name, topic, (int)i) < 0 || !(p->names[i] = strdup(name))) {
            seterr(err, errlen, "rabbitmq producer %d: queue name \"%s.%u\": too long or no memory",
                   id, topic, (unsigned)i);
            rmq_producer_free(p);
            return NULL;
        }
    }
    char who[32];
    snprintf(who, sizeof who, "producer %d", id);
    p->conn = conn_open(w, who, err, errlen);
    if (!p->conn) {
        rmq_producer_free(p);
        return NULL;
    }
    p->conn_alive = true;
    if (p->confirms) {
        amqp_confirm_select(p->conn, RMQ_CHANNEL);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char op[64];
            snprintf(op, sizeof op, "%s: confirm.select", who);
            reply_err(err, errlen, op, r);
            p->conn_alive = r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION;
            rmq_producer_free(p);
            return NULL;
        }
    }
    return p;
}

static int rmq_produce(drv_producer_t *p, int partition, const void *payload, size_t len)
{
    if (p->dead || p->nqueues == 0) return -1;
    uint32_t q;
    if (partition < 0) {
        q = p->rr;
        p->rr = (p->rr + 1) % p->nqueues;
    } else if ((uint32_t)partition < p->nqueues) {
        q = (uint32_t)partition;
    } else {
        return -1;
    }
    if (p->confirms && p->next - p->base >= PUB_WINDOW) {
        /* Too many unconfirmed: serve confirms until there is room. */
        int64_t deadline = sl_mono_ms() + PUB_BLOCK_MS;
        while (p->next - p->base >= PUB_WINDOW) {
            int64_t left = deadline - sl_mono_ms();
            if (left <= 0) {
                char err[ERRMAX];
                seterr(err, sizeof err,
                       "rabbitmq: basic.publish: no basic.ack for %d s with %llu unconfirmed",
                       PUB_BLOCK_MS / 1000, (unsigned long long)(p->next - p->base));
                fprintf(stderr, "rabbitmq producer %d: %s\n", p->id, err);
                return -1;
            }
            if (prod_pump(p, left) < 0) return -1;
        }
    }
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = p->persistent ? 2 : 1;
    amqp_bytes_t body = {.len = len, .bytes = (void *)(uintptr_t)payload};
    int st = amqp_basic_publish(p->conn, RMQ_CHANNEL, amqp_empty_bytes,
                                amqp_cstring_bytes(p->names[q]), 0, 0, &props, body);
    if (st != AMQP_STATUS_OK) {
        char err[ERRMAX];
        seterr(err, sizeof err, "rabbitmq: basic.publish to \"%s\": %s", p->names[q],
               amqp_error_string2(st));
        prod_fail(p, err);
        p->conn_alive = false;
        return -1;
    }
    if (p->confirms)
        p->next++;
    else
        p->acked++;
    return 0;
}

static void rmq_poll(drv_producer_t *p, int timeout_ms)
{
    if (p->dead) return;
    /* Nothing can arrive that we count without confirms, and nothing is
     * awaited when all is confirmed: just serve what is there. */
    if (!p->confirms || p->base == p->next) timeout_ms = 0;
    prod_pump(p, timeout_ms);
}

static int rmq_flush(drv_producer_t *p, int timeout_ms)
{
    int64_t deadline = sl_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (!p->dead && p->base < p->next) {
        int64_t left = deadline - sl_mono_ms();
        if (left <= 0) return -1;
        prod_pump(p, left);
    }
    return 0;
}

static void rmq_producer_counts(drv_producer_t *p, uint64_t *acked, uint64_t *failed)
{
    if (acked) *acked = p->acked;
    if (failed) *failed = p->failed;
}

/* --- consumer --------------------------------------------------------------- */

struct drv_consumer {
    amqp_connection_state_t conn;
    int id;
    uint32_t nqueues; /* queues this consumer reads */
    bool dead, conn_alive;
    uint64_t last_tag; /* highest delivery tag received */
    uint32_t unacked;  /* deliveries up to last_tag not acknowledged yet */
};

static void rmq_consumer_free(drv_consumer_t *c)
{
    if (!c) return;
    conn_close(c->conn, c->conn_alive);
    free(c);
}

static drv_consumer_t *rmq_consumer_new(const workload_t *w, const char *topic, int id, int n,
                                        char *err, size_t errlen)
{
    if (n < 1 || id < 0 || id >= n) {
        seterr(err, errlen, "rabbitmq consumer %d of %d: bad consumer index", id, n);
        return NULL;
    }
    drv_consumer_t *c = calloc(1, sizeof *c);
    if (!c) {
        seterr(err, errlen, "rabbitmq consumer %d: out of memory", id);
        return NULL;
    }
    c->id = id;
    char who[32], op[700], name[512], tag[64];
    snprintf(who, sizeof who, "consumer %d", id);
    c->conn = conn_open(w, who, err, errlen);
    if (!c->conn) {
        free(c);
        return NULL;
    }
    c->conn_alive = true;
    amqp_basic_qos(c->conn, RMQ_CHANNEL, 0, CON_PREFETCH, 0);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(op, sizeof op, "%s: basic.qos prefetch %d", who, CON_PREFETCH);
        goto fail;
    }
    for (uint32_t i = (uint32_t)id; i < w->partitions; i += (uint32_t)n) {
        if (queue_name(name, sizeof name, topic, (int)i) < 0) {
            seterr(err, errlen, "rabbitmq %s: queue name \"%s.%u\" too long (max 255 bytes)", who,
                   topic, (unsigned)i);
            rmq_consumer_free(c);
            return NULL;
        }
        snprintf(tag, sizeof tag, CON_TAG_PREFIX "%u", (unsigned)i);
        amqp_basic_consume(c->conn, RMQ_CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(tag),
                           0, 0, 0, amqp_empty_table);
        r = amqp_get_rpc_reply(c->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(op, sizeof op, "%s: basic.consume \"%s\"", who, name);
            goto fail;
        }
        c->nqueues++;
    }
    return c;
fail:
    reply_err(err, errlen, op, r);
    c->conn_alive = r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION;
    rmq_consumer_free(c);
    return NULL;
}

static void con_fail(drv_consumer_t *c, const char *msg)
{
    if (!c->dead) fprintf(stderr, "rabbitmq consumer %d: %s\n", c->id, msg);
    c->dead = true;
}

static int con_ack(drv_consumer_t *c)
{
    if (c->unacked == 0) return 0;
    int st = amqp_basic_ack(c->conn, RMQ_CHANNEL, c->last_tag, 1);
    if (st != AMQP_STATUS_OK) {
        char err[ERRMAX];
        seterr(err, sizeof err, "rabbitmq: basic.ack (multiple, up to tag %llu): %s",
               (unsigned long long)c->last_tag, amqp_error_string2(st));
        con_fail(c, err);
        c->conn_alive = false;
        return -1;
    }
    c->unacked = 0;
    return 0;
}

/* The queue index from our consumer tag "sluice-bench.<i>", or -1. */
static int tag_partition(amqp_bytes_t tag)
{
    const size_t plen = sizeof CON_TAG_PREFIX - 1;
    if (tag.len <= plen || tag.len > plen + 9 || memcmp(tag.bytes, CON_TAG_PREFIX, plen) != 0)
        return -1;
    int v = 0;
    for (size_t i = plen; i < tag.len; i++) {
        char ch = ((const char *)tag.bytes)[i];
        if (ch < '0' || ch > '9') return -1;
        v = v * 10 + (ch - '0');
    }
    return v;
}

/* A non-delivery frame is waiting (amqp_consume_message said
 * UNEXPECTED_STATE): read and judge it. Returns 0, or -1 when fatal. */
static int con_other_frame(drv_consumer_t *c)
{
    amqp_frame_t f;
    char err[ERRMAX];
    int st = amqp_simple_wait_frame(c->conn, &f);
    if (st != AMQP_STATUS_OK) {
        seterr(err, sizeof err, "rabbitmq: basic.deliver (reading a frame): %s",
               amqp_error_string2(st));
        con_fail(c, err);
        c->conn_alive = false;
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) return 0;
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
        close_frame_err(err, sizeof err, "basic.consume", &f);
        con_fail(c, err);
        return -1;
    case AMQP_CONNECTION_CLOSE_METHOD:
        close_frame_err(err, sizeof err, "basic.consume", &f);
        con_fail(c, err);
        c->conn_alive = false;
        return -1;
    case AMQP_BASIC_CANCEL_METHOD: {
        const amqp_basic_cancel_t *m = f.payload.method.decoded;
        seterr(err, sizeof err,
               "rabbitmq: basic.consume: broker sent basic.cancel for %.*s "
               "(queue deleted?)",
               (int)m->consumer_tag.len, (const char *)m->consumer_tag.bytes);
        con_fail(c, err);
        return -1;
    }
    default:
        return 0; /* connection.blocked etc. */
    }
}

static long rmq_consume(drv_consumer_t *c, int timeout_ms, drv_message_fn fn, void *arg)
{
    if (c->dead) return -1;
    if (c->nqueues == 0) { /* more consumers than queues: idle */
        sleep_ms(timeout_ms);
        return 0;
    }
    int64_t deadline = sl_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    long count = 0;
    while (count < CON_MAX_BATCH) {
        if (!amqp_frames_enqueued(c->conn) && !amqp_data_in_buffer(c->conn))
            amqp_maybe_release_buffers(c->conn);
        /* Wait for the first message; after that take only what is there. */
        struct timeval tv = tv_ms(count == 0 ? deadline - sl_mono_ms() : 0);
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            fn(arg, tag_partition(env.consumer_tag), env.message.body.bytes, env.message.body.len);
            c->last_tag = env.delivery_tag;
            c->unacked++;
            amqp_destroy_envelope(&env);
            count++;
            if (c->unacked >= CON_ACK_EVERY && con_ack(c) < 0) break;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (con_ack(c) < 0) break; /* on timeout: acknowledge what we have */
            if (count > 0 || sl_mono_ms() >= deadline) break;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (con_other_frame(c) < 0) break;
            continue;
        }
        char err[ERRMAX];
        reply_err(err, sizeof err, "basic.deliver (amqp_consume_message)", r);
        con_fail(c, err);
        c->conn_alive = false;
        break;
    }
    /* A fatal error after some deliveries: report those; -1 next time. */
    return c->dead && count == 0 ? -1 : count;
}

/* --- broker pid ------------------------------------------------------------- */

static pid_t pid_from_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long v = 0;
    int ok = fscanf(f, "%ld", &v);
    fclose(f);
    if (ok != 1 || v <= 1) return 0;
    pid_t pid = (pid_t)v;
    if (kill(pid, 0) < 0 && errno != EPERM) return 0;
    return pid;
}

/* The peer script, found next to this source file (CMake compiles with an
 * absolute path) or from the current directory. */
static bool peer_script(char *buf, size_t len)
{
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    if (src[0] == '/' && slash) {
        int n = snprintf(buf, len, "%.*s/peers/rabbitmq/rabbitmq.sh", (int)(slash - src), src);
        if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0) return true;
    }
    static const char *const rel[] = {"bench/peers/rabbitmq/rabbitmq.sh",
                                      "../bench/peers/rabbitmq/rabbitmq.sh",
                                      "peers/rabbitmq/rabbitmq.sh"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        if (access(rel[i], X_OK) == 0 && strlen(rel[i]) < len) {
            snprintf(buf, len, "%s", rel[i]);
            return true;
        }
    }
    return false;
}

static pid_t rmq_broker_pid(const workload_t *w)
{
    char host[WORKLOAD_BOOTSTRAP_MAX];
    int port = 0;
    if (split_hostport(bootstrap_of(w), host, sizeof host, &port) < 0) return 0;

    const char *env = getenv("RABBITMQ_PID_FILE");
    if (env && *env) {
        pid_t pid = pid_from_file(env);
        if (pid) return pid;
    }
    char script[4096], cmd[4200], line[4096], pidfile[4096] = "";
    int node_port = 0;
    if (peer_script(script, sizeof script)) {
        snprintf(cmd, sizeof cmd, "'%s' info 2>/dev/null", script);
        FILE *f = popen(cmd, "r");
        if (f) {
            while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "RABBITMQ_PID_FILE=", 18) == 0)
                    snprintf(pidfile, sizeof pidfile, "%s", line + 18);
                else if (strncmp(line, "RABBITMQ_NODE_PORT=", 19) == 0)
                    node_port = atoi(line + 19);
            }
            pclose(f);
        }
    }
    if (!pidfile[0]) { /* the script's default location */
        const char *cache = getenv("SLUICE_BENCH_CACHE");
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (cache && *cache)
            snprintf(pidfile, sizeof pidfile, "%s/rabbitmq/rabbitmq.pid", cache);
        else if (xdg && *xdg)
            snprintf(pidfile, sizeof pidfile, "%s/sluice-bench/rabbitmq/rabbitmq.pid", xdg);
        else if (home && *home)
            snprintf(pidfile, sizeof pidfile, "%s/.cache/sluice-bench/rabbitmq/rabbitmq.pid", home);
        else
            return 0;
        node_port = 15673;
    }
    /* The private node is only the broker if we talk to its port. */
    if (node_port && node_port != port) return 0;
    return pid_from_file(pidfile);
}

const bench_driver_t drv_rabbitmq = {
    .name = "rabbitmq",
    .setup = rmq_setup,
    .teardown = rmq_teardown,
    .producer_new = rmq_producer_new,
    .produce = rmq_produce,
    .poll = rmq_poll,
    .flush = rmq_flush,
    .producer_counts = rmq_producer_counts,
    .producer_free = rmq_producer_free,
    .consumer_new = rmq_consumer_new,
    .consume = rmq_consume,
    .consumer_free = rmq_consumer_free,
    .broker_pid = rmq_broker_pid,
};
