#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* Per wake-up caps, so one busy peer cannot starve the others on its
 * worker; past them the connection re-queues itself (edge mode gets no new
 * event for data already there). */
#define READ_BUDGET  (1u << 20)
#define WRITE_BUDGET (4u << 20)
/* Requests handled per turn: at most FRAME_BUDGET frames and, past the
 * first, at most TURN_US of work. Bytes alone do not bound the work: a
 * 20-byte Metadata request for every topic costs far more to answer than
 * to read, and a client that pipelines thousands of them would hold the
 * worker for seconds (every other connection on it, and the metrics page,
 * stalled behind). */
#define FRAME_BUDGET 64
#define TURN_US      200

static uint64_t next_id;

static void on_io(void *arg, uint32_t ev);
static void write_out(conn_t *c);

static void free_nodes(conn_t *c, onode_t *n)
{
    while (n) {
        onode_t *next = n->next;
        if (n->is_file)
            seg_range_release(&n->range);
        else
            free(n->mem);
        free(n);
        n = next;
    }
    (void)c;
}

conn_t *conn_new(worker_t *w, int fd, const char *peer, const protocol_t *proto)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->w = w;
    c->proto = proto;
    c->tp = &transport_plain;
    c->h.fd = fd;
    c->h.fn = on_io;
    c->h.arg = c;
    c->refs = 1;
    c->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->arena = &w->arena;
    c->last_active_ms = reactor_now_ms(w->r);
    if (reactor_add(w->r, &c->h, REACTOR_IN) < 0) {
        free(c);
        return NULL;
    }
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add(&w->b->nconns, 1);
    met_add(&w->m.accepted, 1);
    return c;
}

void conn_ref(conn_t *c)
{
    c->refs++;
}

static void free_conn(void *arg)
{
    conn_t *c = arg;
    slot_t *s = c->shead;
    while (s) {
        slot_t *n = s->next;
        free_nodes(c, s->head);
        free(s);
        s = n;
    }
    free(c);
}

void conn_unref(conn_t *c)
{
    if (--c->refs == 0) reactor_defer(c->w->r, free_conn, c); /* its handle may be in this batch */
}

static void unpause(conn_t *c)
{
    if (!c->paused) return;
    for (conn_t **pp = &c->w->paused; *pp; pp = &(*pp)->next_paused)
        if (*pp == c) {
            *pp = c->next_paused;
            break;
        }
    c->paused = 0;
}

void conn_close(conn_t *c, const char *why)
{
    if (c->closed) return;
    c->closed = 1;
    worker_t *w = c->w;
    if (why) log_info("conn", "#%" PRIu64 " %s closed: %s", c->id, c->peer, why);
    if (c->proto->on_close) c->proto->on_close(c);
    reactor_del(w->r, &c->h);
    close(c->h.fd);
    unpause(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->b->nconns, 1);
    met_add(&w->m.closed, 1);
    free(c->in);
    c->in = NULL;
    broker_budget_add(w->b, -(c->in_budget + c->out_budget));
    c->in_budget = c->out_budget = 0;
    c->in_len = c->in_cap = c->in_off = 0;
    free_nodes(c, c->ohead);
    c->ohead = c->otail = NULL;
    for (slot_t *s = c->shead; s; s = s->next) {
        free_nodes(c, s->head);
        s->head = s->tail = NULL;
    }
    conn_unref(c);
}

slot_t *conn_slot(conn_t *c)
{
    slot_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (c->stail)
        c->stail->next = s;
    else
        c->shead = s;
    c->stail = s;
    c->nslots++;
    return s;
}

static onode_t *node_mem(uint8_t *mem, size_t len)
{
    onode_t *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->mem = mem;
    n->len = len;
    return n;
}

static void slot_push(slot_t *s, onode_t *n)
{
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
}

void conn_respond(conn_t *c, slot_t *s, int api, uint64_t corr, int code, const char *msg,
                  const ProtobufCMessage *body, seg_range_t *range)
{
    if (c->closed) {
        if (range) seg_range_release(range);
        return;
    }
    Sluice__ResponseHeader h = SLUICE__RESPONSE_HEADER__INIT;
    h.api = (Sluice__ApiKey)api;
    h.correlation_id = corr;
    h.error_code = (Sluice__ErrorCode)sl_code_to_wire(code);
    h.error_message = (char *)(msg ? msg : "");
    size_t size = sl_response_size(&h, body);
    uint8_t *mem = malloc(size);
    onode_t *n = mem ? node_mem(mem, size) : NULL;
    onode_t *f = NULL;
    uint64_t plen = range && range->len ? range->len : 0;
    if (n && plen) {
        f = calloc(1, sizeof *f);
        if (f) {
            f->is_file = 1;
            f->range = *range;
            f->len = plen;
            range->seg = NULL; /* the node owns the pin now */
        }
    }
    if (!n || (plen && !f)) {
        free(mem);
        free(n);
        if (range) seg_range_release(range);
        conn_close(c, "out of memory building a response");
        return;
    }
    if (range && !plen) seg_range_release(range);
    sl_response_encode(&h, body, (uint32_t)plen, mem);
    slot_push(s, n);
    if (f) slot_push(s, f);
    s->bytes = size + plen;
    s->ready = 1;
    c->out_bytes += s->bytes;
    c->out_budget += (int64_t)size;
    broker_budget_add(c->w->b, (int64_t)size);
    write_out(c);
}

void conn_respond_raw(conn_t *c, slot_t *s, uint8_t *mem, size_t len, const size_t *cuts,
                      seg_range_t *ranges, size_t n)
{
    if (c->closed) goto release;
    /* mem[0..cuts[0]) stays in the first node (which owns the whole
     * buffer); later slices of mem are copied into their own nodes, since
     * every node frees its memory once sent. They are the few bytes of a
     * partition header between two file ranges. */
    size_t first = n ? cuts[0] : len;
    onode_t *head = node_mem(mem, first), *tail = head;
    uint64_t total = first;
    if (!head) goto oom;
    mem = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].len) {
            onode_t *f = calloc(1, sizeof *f);
            if (!f) goto oom_chain;
            f->is_file = 1;
            f->range = ranges[i];
            f->len = ranges[i].len;
            ranges[i].seg = NULL; /* the node owns the pin now */
            tail->next = f;
            tail = f;
            total += f->len;
        } else {
            seg_range_release(&ranges[i]);
        }
        size_t from = cuts[i], to = i + 1 < n ? cuts[i + 1] : len;
        if (to > from) {
            uint8_t *m = malloc(to - from);
            onode_t *x = m ? node_mem(m, to - from) : NULL;
            if (!x) {
                free(m);
                goto oom_chain;
            }
            memcpy(m, head->mem + from, to - from);
            tail->next = x;
            tail = x;
            total += to - from;
        }
    }
    if (s->tail)
        s->tail->next = head;
    else
        s->head = head;
    s->tail = tail;
    s->bytes = total;
    s->ready = 1;
    c->out_bytes += total;
    /* Memory nodes give back their own length when sent: the first node
     * `first` bytes, the copied slices the other len - first. */
    c->out_budget += (int64_t)len;
    broker_budget_add(c->w->b, (int64_t)len);
    write_out(c);
    return;
oom_chain:
    free_nodes(c, head);
    for (size_t i = 0; i < n; i++) seg_range_release(&ranges[i]);
    conn_close(c, "out of memory building a response");
    return;
oom:
    conn_close(c, "out of memory building a response");
release:
    free(mem);
    for (size_t i = 0; i < n; i++) seg_range_release(&ranges[i]);
}

void conn_fail(conn_t *c, slot_t *s, int api, uint64_t corr, int code, const char *msg)
{
    log_info("conn", "#%" PRIu64 " %s: %s: %s (closing)", c->id, c->peer, sl_code_name(code), msg);
    met_add(&c->w->m.protocol_errors, 1);
    c->close_after_write = 1;
    conn_respond(c, s, api, corr, code, msg, NULL, NULL);
}

/* Moves filled slots at the head of the queue to the output chain. */
static void take_ready(conn_t *c)
{
    while (c->shead && c->shead->ready) {
        slot_t *s = c->shead;
        c->shead = s->next;
        if (!c->shead) c->stail = NULL;
        c->nslots--;
        if (s->head) {
            if (c->otail)
                c->otail->next = s->head;
            else
                c->ohead = s->head;
            c->otail = s->tail;
        }
        free(s);
    }
}

static int over_cap(const conn_t *c)
{
    return c->out_bytes > (uint64_t)c->w->b->conf.max_connection_output_bytes;
}

static void resume_task(void *arg)
{
    conn_t *c = arg;
    if (!c->closed) conn_resume(c);
    conn_unref(c);
}

static void write_task(void *arg)
{
    conn_t *c = arg;
    if (!c->closed) write_out(c);
    conn_unref(c);
}

/* Drops n sent bytes from the head of the chain. */
static void consume(conn_t *c, size_t n)
{
    while (n > 0 && c->ohead) {
        onode_t *o = c->ohead;
        size_t left = o->len - o->off;
        size_t k = n < left ? n : left;
        o->off += k;
        n -= k;
        if (o->off < o->len) break;
        c->ohead = o->next;
        if (!c->ohead) c->otail = NULL;
        c->out_bytes -= o->len;
        if (!o->is_file) {
            c->out_budget -= (int64_t)o->len;
            broker_budget_add(c->w->b, -(int64_t)o->len);
        }
        o->next = NULL;
        free_nodes(c, o);
    }
}

static void write_out(conn_t *c)
{
    worker_t *w = c->w;
    size_t written = 0;
    take_ready(c);
    while (c->ohead) {
        if (written >= WRITE_BUDGET) {
            conn_ref(c);
            reactor_defer(w->r, write_task, c);
            return;
        }
        onode_t *o = c->ohead;
        ssize_t n;
        if (!o->is_file) {
            struct iovec iov[64];
            int k = 0, more = 0;
            for (onode_t *x = o; x && k < 64; x = x->next) {
                if (x->is_file) {
                    more = 1; /* a header before file bytes: one packet if possible */
                    break;
                }
                iov[k].iov_base = x->mem + x->off;
                iov[k].iov_len = x->len - x->off;
                k++;
            }
            n = c->tp->writev(c->h.fd, iov, k, more);
        } else {
            off_t pos = (off_t)(o->range.pos + o->off);
            size_t left = o->len - o->off;
            if (left > (1u << 30)) left = 1u << 30;
            n = c->tp->sendfile(c->h.fd, o->range.fd, &pos, left);
            if (n == 0) {
                log_error("conn",
                          "#%" PRIu64 ": sendfile of %s.log at %lld returned 0: file "
                          "truncated under a reader",
                          c->id, o->range.seg ? o->range.seg->path : "?", (long long)pos);
                conn_close(c, "segment file truncated");
                return;
            }
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (!reactor_is_edge(w->r)) reactor_mod(w->r, &c->h, c->h.interest | REACTOR_OUT);
                return;
            }
            conn_close(c, strerror(errno));
            return;
        }
        met_add(&w->m.bytes_out, (uint64_t)n);
        c->last_active_ms = reactor_now_ms(w->r);
        written += (size_t)n;
        consume(c, (size_t)n);
        take_ready(c);
    }
    c->last_active_ms = reactor_now_ms(w->r);
    if (!reactor_is_edge(w->r) && (c->h.interest & REACTOR_OUT))
        reactor_mod(w->r, &c->h, c->h.interest & ~REACTOR_OUT);
    if (c->close_after_write && !c->shead) {
        conn_close(c, NULL);
        return;
    }
    if (c->want_read && !over_cap(c)) {
        conn_ref(c);
        reactor_defer(w->r, resume_task, c);
    }
    if (c->proto->on_drained) c->proto->on_drained(c);
}

static int frame_peek(conn_t *c, const uint8_t *buf, size_t len, uint32_t max, uint32_t *total)
{
    return c->proto->frame_peek(c, buf, len, max, total);
}

/* Processes the whole frames in buf[0..len); returns bytes consumed. Stops
 * early when the connection closes or must not take more work now
 * (*stop 1), or when its turn is over (*stop 2: the caller re-queues the
 * connection behind the worker's other connections). */
static size_t process(conn_t *c, uint8_t *buf, size_t len, int *stop)
{
    size_t off = 0;
    uint32_t max = (uint32_t)c->w->b->conf.max_request_size;
    int frames = 0;
    int64_t t0 = 0;
    *stop = 0;
    while (!c->closed) {
        if (over_cap(c) || c->close_after_write || c->w->draining) {
            *stop = 1;
            break;
        }
        if (frames > 0 && (frames == FRAME_BUDGET || sl_mono_us() - t0 >= TURN_US)) {
            *stop = 2;
            break;
        }
        uint32_t total = 0;
        int rc = frame_peek(c, buf + off, len - off, max, &total);
        if (rc == SL_ERR_PARTIAL) break;
        if (rc != SL_OK) {
            char why[128];
            snprintf(why, sizeof why, "%s: frame length %u (max.request.size %u)", sl_code_name(rc),
                     total, max);
            met_add(&c->w->m.protocol_errors, 1);
            conn_close(c, why);
            *stop = 1;
            break;
        }
        if (total > len - off) break;
        if (frames++ == 0) t0 = sl_mono_us();
        c->proto->dispatch(c, buf + off, total);
        off += total;
    }
    return off;
}

/* The turn ended with input left: come back after the other connections'
 * events of this round. */
static void requeue(conn_t *c)
{
    conn_ref(c);
    reactor_defer(c->w->r, resume_task, c);
}

/* Keeps buf[from..len) in the connection's own buffer for later. */
static int keep_rest(conn_t *c, const uint8_t *buf, size_t len)
{
    if (len == 0) {
        if (c->in && c->in_cap > SCRATCH) { /* do not hold a large buffer while idle */
            free(c->in);
            broker_budget_add(c->w->b, -c->in_budget);
            c->in = NULL;
            c->in_cap = 0;
            c->in_budget = 0;
        }
        c->in_len = c->in_off = 0;
        return 0;
    }
    /* The buffer grows with the bytes that actually arrived (doubling,
     * capped at the frame's size), never to the size a frame merely
     * claims: a client that sends "16 MiB follow" and then nothing must
     * not take 16 MiB of the global budget (slowloris). */
    uint32_t total = 0;
    size_t want = len + 4096;
    if (frame_peek(c, buf, len, (uint32_t)c->w->b->conf.max_request_size, &total) == SL_OK &&
        total > want) {
        size_t grow = len < 4096 ? len + 4096 : 2 * len;
        want = grow < total ? grow : total;
    }
    if (c->in_cap < want) {
        uint8_t *n = malloc(want);
        if (!n) return -1;
        if (buf != c->in)
            memcpy(n, buf, len);
        else
            memcpy(n, c->in, len);
        free(c->in);
        broker_budget_add(c->w->b, (int64_t)want - c->in_budget);
        c->in_budget = (int64_t)want;
        c->in = n;
        c->in_cap = want;
    } else if (buf != c->in) {
        memmove(c->in, buf, len);
    }
    c->in_len = len;
    c->in_off = 0;
    return 0;
}

static void pause_for_budget(conn_t *c)
{
    worker_t *w = c->w;
    if (!c->paused) {
        c->paused = 1;
        c->next_paused = w->paused;
        w->paused = c;
    }
    if (!reactor_timer_active(&w->budget_timer)) reactor_timer_start(w->r, &w->budget_timer, 5);
}

static void read_in(conn_t *c)
{
    worker_t *w = c->w;
    size_t got = 0;
    uint8_t *scratch = w->scratch;
    /* Frames left over from a previous stop come first. */
    if (c->in_len > 0) {
        int stop;
        size_t used = process(c, c->in + c->in_off, c->in_len - c->in_off, &stop);
        if (c->closed) return;
        c->in_off += used;
        if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
        if (stop == 2) { /* no compaction per turn: it would move the rest each time */
            requeue(c);
            return;
        }
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
        if (stop) {
            c->want_read = 1;
            return;
        }
    }
    for (;;) {
        if (broker_budget_over(w->b)) {
            c->want_read = 1;
            pause_for_budget(c);
            if (!reactor_is_edge(w->r)) reactor_mod(w->r, &c->h, c->h.interest & ~REACTOR_IN);
            return;
        }
        if (got >= READ_BUDGET) {
            conn_ref(c);
            reactor_defer(w->r, resume_task, c);
            return;
        }
        uint8_t *buf;
        size_t len, cap;
        if (c->in_len > 0) {
            if (c->in_len == c->in_cap && keep_rest(c, c->in, c->in_len) < 0) {
                conn_close(c, "out of memory");
                return;
            }
            buf = c->in;
            len = c->in_len;
            cap = c->in_cap;
        } else {
            buf = scratch;
            len = 0;
            cap = SCRATCH;
        }
        ssize_t n = c->tp->read(c->h.fd, buf + len, cap - len);
        if (n == 0) {
            conn_close(c, NULL);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (buf == c->in) c->in_len = len;
                c->want_read = 0;
                if (!reactor_is_edge(w->r)) reactor_mod(w->r, &c->h, c->h.interest | REACTOR_IN);
                return;
            }
            conn_close(c, strerror(errno));
            return;
        }
        got += (size_t)n;
        met_add(&w->m.bytes_in, (uint64_t)n);
        c->last_active_ms = reactor_now_ms(w->r);
        len += (size_t)n;
        int stop;
        size_t used = process(c, buf, len, &stop);
        if (c->closed) return;
        /* Bytes left after whole frames start a new frame when something
         * was consumed or nothing was kept before: the read timeout
         * counts from there. */
        if ((used > 0 || buf != c->in) && len > used) c->partial_since_ms = reactor_now_ms(w->r);
        if (keep_rest(c, buf + used, len - used) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        if (stop == 2) {
            requeue(c);
            return;
        }
        if (stop) {
            c->want_read = 1;
            if (!reactor_is_edge(w->r)) reactor_mod(w->r, &c->h, c->h.interest & ~REACTOR_IN);
            return;
        }
    }
}

void conn_resume(conn_t *c)
{
    if (c->closed) return;
    if (!reactor_is_edge(c->w->r)) reactor_mod(c->w->r, &c->h, c->h.interest | REACTOR_IN);
    read_in(c);
}

/* A connection that is not being read (paused for the global budget, or
 * over its output cap) still has to notice that its peer went away, or it
 * would hold its buffers and budget until the idle timeout. On a reset:
 * close. On a half-close: close if what is buffered plus what the socket
 * still holds can never complete the request in progress, or if nothing
 * is left to read or answer; otherwise the requests already sent are
 * still served once reading resumes. */
static void peer_gone_while_unread(conn_t *c, uint32_t ev)
{
    if (ev & REACTOR_ERR) {
        conn_close(c, "connection reset while not being read");
        return;
    }
    int avail = 0;
    if (ioctl(c->h.fd, FIONREAD, &avail) < 0) avail = 0;
    size_t buffered = c->in_len - c->in_off;
    size_t have = buffered + (size_t)(avail > 0 ? avail : 0);
    uint32_t total = 0;
    int partial = buffered > 0 &&
                  frame_peek(c, c->in + c->in_off, buffered,
                             (uint32_t)c->w->b->conf.max_request_size, &total) == SL_OK &&
                  total > have;
    if (partial)
        conn_close(c, "peer closed in the middle of a request");
    else if (have == 0 && !c->shead && !c->ohead)
        conn_close(c, NULL);
}

static void on_io(void *arg, uint32_t ev)
{
    conn_t *c = arg;
    if (c->closed) return;
    conn_ref(c);
    if (ev & REACTOR_OUT) write_out(c);
    if (!c->closed && (ev & REACTOR_IN)) {
        if (c->paused || over_cap(c) || c->close_after_write) {
            c->want_read = 1;
            if (ev & (REACTOR_HUP | REACTOR_ERR)) peer_gone_while_unread(c, ev);
        } else {
            read_in(c);
        }
    }
    conn_unref(c);
}

void conn_close_all(worker_t *w)
{
    while (w->conns) conn_close(w->conns, NULL);
}

void conn_reap_idle(worker_t *w, uint64_t now_ms)
{
    int64_t idle = w->b->conf.connections_max_idle_ms;
    int64_t rt = w->b->conf.request_read_timeout_ms;
    conn_t *c = w->conns;
    while (c) {
        conn_t *next = c->next;
        /* Idle: no bytes either way for the period. A connection whose only
         * pending work is the broker's own (a long poll, an acks=all wait) is
         * not idle, nor is a subscriber waiting for data; one whose client
         * stopped reading its output is. */
        int broker_owes =
            (c->shead || (c->proto->broker_owes && c->proto->broker_owes(c))) && !c->ohead;
        /* A request that started arriving must finish within
         * request.read.timeout.ms, however slowly its bytes trickle in
         * (slowloris) — unless the broker itself stopped reading it. */
        int reading = c->in_len > 0 && !c->paused && !c->want_read;
        if (idle > 0 && !broker_owes && now_ms - c->last_active_ms > (uint64_t)idle)
            conn_close(c, c->ohead ? "idle: the client stopped reading its responses" : "idle");
        else if (rt > 0 && reading && now_ms - c->partial_since_ms > (uint64_t)rt)
            conn_close(c, "a request was not complete within request.read.timeout.ms");
        c = next;
    }
}
