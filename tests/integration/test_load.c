/* test_load.c — sluiced under load and under clients that misbehave slowly:
 *   - 1,000 concurrent connections, each a produce and a fetch round trip;
 *     afterwards the connection gauge returns to 0;
 *   - a slow reader (200 pipelined 1 MiB fetches, never read) does not hold
 *     up a fast client, and the broker's memory stays bounded (it stops
 *     reading the slow socket instead of queueing 200 MiB);
 *   - fetching everything across many segment rolls: dense offsets, CRCs,
 *     the bytes that were produced;
 *   - connections.max.idle.ms closes an idle connection, not an active one;
 *   - request.read.timeout.ms closes a trickling (slowloris) request;
 *   - max.connections refuses the connection over the limit;
 *   - the same round trips and slow-reader check with reactor.mode=level.
 * Each broker is stopped with SIGTERM and must exit 0 (ASan leak check).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

#define OUTPUT_CAP 1048576 /* --max.connection.output.bytes of the slow-reader brokers */

static void stop_clean(harness_t *h, const char *what)
{
    int st = harness_stop(h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: SIGTERM exit status 0x%x", what, st);
}

/* Metric value from a fresh scrape, or -2 when the page is unavailable. */
static double metric(const harness_t *h, const char *series)
{
    char *page = harness_metrics(h);
    if (!page) return -2;
    double v = harness_metric(page, series);
    free(page);
    return v;
}

/* Polls a metric until it equals want, for at most ms; returns the last value. */
static double wait_metric(const harness_t *h, const char *series, double want, int ms)
{
    long long deadline = sl_mono_ms() + ms;
    double v;
    for (;;) {
        v = metric(h, series);
        if (v == want || sl_mono_ms() > deadline) return v;
        poll(NULL, 0, 20);
    }
}

/* ---- many connections ---------------------------------------------------- */

static void many_connections(harness_t *h, int n, const char *topic)
{
    sc_t *cs = calloc((size_t)n, sizeof *cs);
    uint8_t **batches = calloc((size_t)n, sizeof *batches);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    int64_t *bases = calloc((size_t)n, sizeof *bases);
    CHECK_FATAL(cs && batches && lens && bases);
    {
        sc_t c;
        CHECK_FATAL(sc_connect(&c, h->port) == 0);
        int rc = sc_create_topic(&c, topic, 4);
        CHECK(rc == 0 || rc == SL_ERR_TOPIC_ALREADY_EXISTS);
        sc_close(&c);
    }
    long long t0 = sl_mono_ms();
    int connected = 0;
    for (int i = 0; i < n; i++) {
        if (sc_connect(&cs[i], h->port) != 0) {
            cs[i].fd = -1;
            continue;
        }
        connected++;
    }
    CHECK_EQ_INT(connected, n);
    double open = wait_metric(h, "sluice_connections", n, 10000);
    CHECK_MSG(open == n, "sluice_connections %g with %d open", open, n);
    /* Every connection has a produce in flight at once (acks 1 and -1
     * alternating, so the flusher's group commit sees hundreds of waiters),
     * then a fetch in flight at once. */
    int sent = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].fd < 0) continue;
        batches[i] = bg_simple(1 + i % 3, 50 + (size_t)(i % 200), 1000 + i, (uint32_t)i, &lens[i]);
        Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
        m.topic = (char *)topic;
        m.partition = i % 4;
        m.acks = i % 2 ? 1 : -1;
        m.timeout_ms = 30000;
        if (sc_send(&cs[i], SLUICE__API_KEY__PRODUCE, &m.base, batches[i], lens[i]) != 0) sent++;
    }
    CHECK_EQ_INT(sent, connected);
    int produced = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].fd < 0) continue;
        sl_response_t r;
        bases[i] = -1;
        if (sc_recv(&cs[i], &r) != 0 || r.hdr->error_code != 0) continue;
        sl_err_t err;
        Sluice__ProduceResponse *pr = (Sluice__ProduceResponse *)sl_body_decode(
            &sluice__produce_response__descriptor, r.body, r.body_len, &cs[i].arena, &err);
        if (!pr) continue;
        bases[i] = pr->base_offset;
        produced++;
    }
    CHECK_EQ_INT(produced, n);
    for (int i = 0; i < n; i++) {
        if (cs[i].fd < 0 || bases[i] < 0) continue;
        Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
        m.topic = (char *)topic;
        m.partition = i % 4;
        m.offset = bases[i];
        m.max_bytes = 1;
        CHECK(sc_send(&cs[i], SLUICE__API_KEY__FETCH, &m.base, NULL, 0) != 0);
    }
    int fetched = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].fd < 0 || bases[i] < 0) continue;
        sl_response_t r;
        if (sc_recv(&cs[i], &r) != 0 || r.hdr->error_code != 0) continue;
        /* max_bytes 1 still returns the whole first batch: ours. */
        if (r.payload_len == lens[i] && sl_be64(r.payload) == (uint64_t)bases[i] &&
            memcmp(r.payload + 8, batches[i] + 8, lens[i] - 8) == 0)
            fetched++;
    }
    CHECK_EQ_INT(fetched, n);
    /* Offsets were handed out densely: per partition, the sum of records. */
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h->port) == 0);
    int64_t total = 0, want = 0;
    for (int p = 0; p < 4; p++) {
        int64_t end = -1;
        CHECK_EQ_INT(sc_list_offsets(&c, topic, p, -1, &end), 0);
        total += end;
    }
    for (int i = 0; i < n; i++) want += 1 + i % 3;
    CHECK_EQ_INT(total, want);
    sc_close(&c);
    long long dt = sl_mono_ms() - t0;
    fprintf(stderr, "%d connections: produce + fetch each in %lld ms\n", n, dt);
    for (int i = 0; i < n; i++) {
        if (cs[i].fd >= 0) sc_close(&cs[i]);
        free(batches[i]);
    }
    double left = wait_metric(h, "sluice_connections", 0, 10000);
    CHECK_MSG(left == 0, "sluice_connections %g after closing all", left);
    free(cs);
    free(batches);
    free(lens);
    free(bases);
}

/* ---- long-poll fan-out --------------------------------------------------- */

/* n connections long-poll the same empty partition; one produce wakes them
 * all (across every reactor) well before max_wait. */
static void fanout(harness_t *h, int n)
{
    sc_t *cs = calloc((size_t)n, sizeof *cs);
    CHECK_FATAL(cs != NULL);
    sc_t prod;
    CHECK_FATAL(sc_connect(&prod, h->port) == 0);
    CHECK_EQ_INT(sc_create_topic(&prod, "fan", 1), 0);
    for (int i = 0; i < n; i++) {
        CHECK_FATAL(sc_connect(&cs[i], h->port) == 0);
        Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
        m.topic = "fan";
        m.max_bytes = 1 << 16;
        m.min_bytes = 1;
        m.max_wait_ms = 20000;
        CHECK(sc_send(&cs[i], SLUICE__API_KEY__FETCH, &m.base, NULL, 0) != 0);
    }
    poll(NULL, 0, 300);
    /* Nobody was answered yet. */
    int early = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd pf = {.fd = cs[i].fd, .events = POLLIN};
        if (poll(&pf, 1, 0) > 0) early++;
    }
    CHECK_EQ_INT(early, 0);
    size_t len;
    uint8_t *b = bg_simple(3, 64, 1, 9, &len);
    int64_t base;
    long long t0 = sl_mono_ms();
    CHECK_EQ_INT(sc_produce(&prod, "fan", 0, 1, b, len, &base), 0);
    int woken = 0;
    for (int i = 0; i < n; i++) {
        sl_response_t r;
        if (sc_recv(&cs[i], &r) == 0 && r.hdr->error_code == 0 && r.payload_len == len &&
            memcmp(r.payload + 8, b + 8, len - 8) == 0)
            woken++;
    }
    long long dt = sl_mono_ms() - t0;
    CHECK_EQ_INT(woken, n);
    CHECK_MSG(dt < 5000, "%d long polls woken in %lld ms", n, dt);
    fprintf(stderr, "fan-out: %d long polls woken by one produce in %lld ms\n", n, dt);
    free(b);
    for (int i = 0; i < n; i++) sc_close(&cs[i]);
    sc_close(&prod);
    free(cs);
}

/* ---- the slow reader ----------------------------------------------------- */

/* sc_connect with a small receive buffer set before the handshake, so the
 * kernel absorbs little of what the broker sends. */
static int connect_small_rcvbuf(sc_t *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 10000;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
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

/* ~5 MB in topic "big" (10 batches of ~525 KB). */
static int64_t fill_big(harness_t *h)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h->port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "big", 1), 0);
    int64_t end = 0;
    for (int i = 0; i < 10; i++) {
        size_t len;
        uint8_t *b = bg_simple(64, 8192, 1, (uint32_t)(100 + i), &len);
        int64_t base;
        CHECK_EQ_INT(sc_produce(&c, "big", 0, 1, b, len, &base), 0);
        CHECK_EQ_INT(base, end);
        end += 64;
        free(b);
    }
    sc_close(&c);
    return end;
}

static void slow_reader(harness_t *h, const char *mode)
{
    fill_big(h);
    sc_t fast;
    CHECK_FATAL(sc_connect(&fast, h->port) == 0);
    CHECK_EQ_INT(sc_create_topic(&fast, "fast", 1), 0);
    double fetch0 = metric(h, "sluice_requests_total{type=\"fetch\",error=\"NONE\"}");

    /* 200 pipelined fetches of 1 MiB each, in one write, never read. */
    sc_t slow;
    CHECK_FATAL(connect_small_rcvbuf(&slow, h->port, 16384) == 0);
    enum { NSLOW = 200 };
    uint8_t *reqs = NULL;
    size_t rlen = 0;
    for (int i = 0; i < NSLOW; i++) {
        Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
        m.topic = "big";
        m.offset = 0;
        m.max_bytes = 1 << 20;
        Sluice__RequestHeader hd = SLUICE__REQUEST_HEADER__INIT;
        hd.api = SLUICE__API_KEY__FETCH;
        hd.version = SL_PROTOCOL_VERSION;
        hd.correlation_id = (uint64_t)i + 1;
        size_t n = sl_request_size(&hd, &m.base);
        uint8_t *nr = realloc(reqs, rlen + n);
        CHECK_FATAL(nr != NULL);
        reqs = nr;
        sl_request_encode(&hd, &m.base, 0, reqs + rlen);
        rlen += n;
    }
    slow.corr = NSLOW;
    CHECK(sc_send_raw(&slow, reqs, rlen) == 0);
    free(reqs);
    poll(NULL, 0, 100); /* let the broker choke on it */

    /* Meanwhile: 200 produce + fetch round trips at full speed. */
    double max_inflight = 0;
    int ok = 0;
    long long t0 = sl_mono_ms();
    for (int i = 0; i < 200; i++) {
        size_t len;
        uint8_t *b = bg_simple(2, 100, 1, (uint32_t)i, &len);
        int64_t base = -1;
        int rc = sc_produce(&fast, "fast", 0, 1, b, len, &base);
        const uint8_t *p;
        size_t n = 0;
        if (rc == 0) rc = sc_fetch(&fast, "fast", 0, base, 1 << 16, 0, 0, &p, &n, NULL);
        if (rc == 0 && n == len && memcmp(p + 8, b + 8, len - 8) == 0) ok++;
        free(b);
        if (i % 20 == 0) {
            double v = metric(h, "sluice_inflight_bytes");
            if (v > max_inflight) max_inflight = v;
        }
    }
    long long dt = sl_mono_ms() - t0;
    CHECK_EQ_INT(ok, 200);
    CHECK_MSG(dt < 10000, "%s: 200 fast round trips beside a slow reader took %lld ms", mode, dt);
    fprintf(stderr, "%s: 200 fast round trips beside a slow reader: %lld ms; inflight max %g\n",
            mode, dt, max_inflight);
    double v = metric(h, "sluice_inflight_bytes");
    if (v > max_inflight) max_inflight = v;
    CHECK_MSG(max_inflight >= 0 && max_inflight <= OUTPUT_CAP + (1 << 20),
              "%s: sluice_inflight_bytes reached %g", mode, max_inflight);
    /* The broker stopped reading the slow socket instead of answering all
     * 200 fetches into memory or file ranges: only a few were processed. */
    double fetch1 = metric(h, "sluice_requests_total{type=\"fetch\",error=\"NONE\"}");
    double slow_done = fetch1 - fetch0 - 200;
    fprintf(stderr, "%s: %g of the slow reader's 200 fetches processed while it did not read\n",
            mode, slow_done);
    /* What the kernel can absorb: the broker's send buffer (up to tcp_wmem's
     * max) plus our 16 KiB receive buffer; then one response over the cap. */
    long wmem_max = 4 << 20;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (f) {
        long a, b2, c2;
        if (fscanf(f, "%ld %ld %ld", &a, &b2, &c2) == 3) wmem_max = c2;
        fclose(f);
    }
    double bound = 4 + (double)wmem_max / (1 << 20);
    CHECK_MSG(slow_done >= 1 && slow_done <= bound,
              "%s: %g of the slow reader's fetches processed (bound %g)", mode, slow_done, bound);

    /* The slow reader now reads: every answer arrives, in order, whole. */
    t0 = sl_mono_ms();
    int good = 0;
    uint8_t first[64];
    for (int i = 0; i < NSLOW; i++) {
        sl_response_t r;
        if (sc_recv(&slow, &r) != 0) break;
        if (r.hdr->correlation_id != (uint64_t)i + 1 || r.hdr->error_code != 0 ||
            r.payload_len != 1u << 20)
            continue;
        if (i == 0) {
            memcpy(first, r.payload, sizeof first);
            uint64_t sz = sl_batch_total_size(r.payload);
            CHECK(sz <= r.payload_len &&
                  sl_batch_validate(r.payload, (size_t)sz, NULL, NULL, NULL) == SL_OK);
        }
        if (memcmp(first, r.payload, sizeof first) == 0) good++;
    }
    CHECK_EQ_INT(good, NSLOW);
    fprintf(stderr, "%s: slow reader drained 200 MiB in %lld ms\n", mode, sl_mono_ms() - t0);
    sc_close(&slow);
    sc_close(&fast);
}

/* A client that asks for 20 MiB and stops reading; returns it connected. */
static void stuck_reader(harness_t *h, sc_t *c)
{
    CHECK_FATAL(connect_small_rcvbuf(c, h->port, 16384) == 0);
    for (int i = 0; i < 20; i++) {
        Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
        m.topic = "big";
        m.max_bytes = 1 << 20;
        CHECK(sc_send(c, SLUICE__API_KEY__FETCH, &m.base, NULL, 0) != 0);
    }
    poll(NULL, 0, 100);
}

/* ---- segment rolls ------------------------------------------------------- */

typedef struct sent {
    uint8_t *b;
    size_t len;
    int64_t base;
    int n;
} sent_t;

static int count_segments(const harness_t *h, const char *topic)
{
    char path[600];
    snprintf(path, sizeof path, "%s/topics/%s/0", h->data, topic);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".log") == 0) n++;
    }
    if (d) closedir(d);
    return n;
}

/* Fetches everything from 0 with max_bytes 100000 and checks it against
 * what was sent: dense offsets, valid CRCs, identical bytes. */
static void consume_check(harness_t *h, const char *topic, const sent_t *s, int ns, int64_t end)
{
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h->port) == 0);
    int64_t next = 0;
    int j = 0, fetches = 0, multi = 0, bad = 0;
    while (next < end && fetches < 10000) {
        const uint8_t *p;
        size_t n = 0;
        int64_t hw = -1;
        int rc = sc_fetch(&c, topic, 0, next, 100000, 0, 0, &p, &n, &hw);
        fetches++;
        if (rc != 0 || hw != end) {
            CHECK_MSG(0, "fetch at %" PRId64 ": rc %d hw %" PRId64, next, rc, hw);
            break;
        }
        size_t off = 0;
        int batches = 0;
        while (off + SL_BATCH_LOG_OVERHEAD <= n) {
            uint64_t sz = sl_batch_total_size(p + off);
            if (sz < SL_BATCH_HEADER_SIZE || off + sz > n) break; /* partial tail */
            sl_batch_hdr_t bh;
            if (sl_batch_validate(p + off, (size_t)sz, NULL, &bh, NULL) != SL_OK || j >= ns ||
                bh.base_offset != next || bh.base_offset != s[j].base || sz != s[j].len ||
                memcmp(p + off + 8, s[j].b + 8, s[j].len - 8) != 0) {
                bad++;
                break;
            }
            next += bh.last_offset_delta + 1;
            j++;
            batches++;
            off += (size_t)sz;
        }
        if (batches == 0 || bad) {
            CHECK_MSG(0, "fetch at %" PRId64 ": %zu bytes, %d whole batches, bad %d", next, n,
                      batches, bad);
            break;
        }
        /* max_bytes is soft only for the first batch. */
        CHECK_MSG(n <= 100000 || batches == 1, "fetch of %zu bytes, %d batches", n, batches);
        if (batches > 1) multi++;
    }
    CHECK_EQ_INT(next, end);
    CHECK_EQ_INT(j, ns);
    CHECK(multi > 0);
    /* An offset inside a batch returns the batch that holds it, also when
     * that batch opens a segment. */
    int probes = 0, hits = 0;
    for (int k = 1; k < ns; k += 7) {
        if (s[k].n < 2) continue;
        const uint8_t *p;
        size_t n = 0;
        probes++;
        if (sc_fetch(&c, topic, 0, s[k].base + s[k].n - 1, 1, 0, 0, &p, &n, NULL) == 0 &&
            n == s[k].len && sl_be64(p) == (uint64_t)s[k].base)
            hits++;
    }
    CHECK_EQ_INT(hits, probes);
    sc_close(&c);
}

static void segment_rolls(void)
{
    harness_t h;
    harness_init(&h, "it-load-rolls");
    const char *args[] = {"--log.segment.bytes=65536", "--message.max.bytes=32768",
                          "--log.index.interval.bytes=1024", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&c, "seg", 1), 0);
    enum { MAXB = 2000 };
    sent_t *s = calloc(MAXB, sizeof *s);
    CHECK_FATAL(s != NULL);
    int ns = 0;
    size_t bytes = 0;
    int64_t end = 0;
    while (bytes < (2u << 20) && ns < MAXB) {
        int i = ns;
        /* Sizes from tiny to near message.max.bytes, so batches straddle
         * every kind of segment boundary. */
        int nrec = 1 + i % 5;
        size_t vs = i % 13 == 0 ? 32000 / (size_t)nrec - 64
                                : 20 + (size_t)((i * 977) % 9000) / (size_t)nrec;
        uint8_t *b = bg_simple(nrec, vs, 1700000000000LL + i, (uint32_t)i, &s[i].len);
        CHECK_FATAL(b != NULL && s[i].len <= 32768);
        int64_t base = -1;
        int rc = sc_produce(&c, "seg", 0, 1, b, s[i].len, &base);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(base, end);
        if (rc != 0) {
            free(b);
            break;
        }
        s[i].b = b;
        s[i].base = base;
        s[i].n = nrec;
        end += nrec;
        bytes += s[i].len;
        ns++;
    }
    sc_close(&c);
    int segs = count_segments(&h, "seg");
    CHECK_MSG(segs >= 25, "only %d segments for %zu bytes", segs, bytes);
    fprintf(stderr, "rolls: %d batches, %zu bytes, %d segments\n", ns, bytes, segs);
    consume_check(&h, "seg", s, ns, end);
    /* And again after a clean restart (indexes reopened, not rebuilt). */
    stop_clean(&h, "segment rolls");
    CHECK_FATAL(harness_start(&h, args) == 0);
    consume_check(&h, "seg", s, ns, end);
    stop_clean(&h, "segment rolls after restart");
    for (int i = 0; i < ns; i++) free(s[i].b);
    free(s);
    harness_cleanup(&h);
}

/* ---- idle timeout, max.connections --------------------------------------- */

static int is_closed_now(sc_t *c)
{
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    if (poll(&pf, 1, 0) <= 0) return 0;
    uint8_t b[256];
    ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static void idle_timeout(void)
{
    harness_t h;
    harness_init(&h, "it-load-idle");
    const char *args[] = {"--connections.max.idle.ms=300", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);
    sc_t active, idle;
    CHECK_FATAL(sc_connect(&active, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&active, "idle", 1), 0);
    CHECK_FATAL(sc_connect(&idle, h.port) == 0);
    long long t0 = sl_mono_ms(), closed_at = -1;
    int rounds = 0, answered = 0;
    /* Active: a request every 100 ms for 2 s; idle: nothing. */
    while (sl_mono_ms() - t0 < 2000) {
        int64_t off;
        rounds++;
        if (sc_list_offsets(&active, "idle", 0, -1, &off) == 0) answered++;
        if (closed_at < 0 && is_closed_now(&idle)) closed_at = sl_mono_ms() - t0;
        poll(NULL, 0, 100);
    }
    if (closed_at < 0 && sc_wait_closed(&idle, 1000)) closed_at = sl_mono_ms() - t0;
    fprintf(stderr, "idle: closed after %lld ms; active answered %d of %d\n", closed_at, answered,
            rounds);
    CHECK_MSG(closed_at >= 250 && closed_at <= 3000, "idle connection closed after %lld ms",
              closed_at);
    CHECK_EQ_INT(answered, rounds);
    CHECK(!is_closed_now(&active));
    int64_t off;
    CHECK_EQ_INT(sc_list_offsets(&active, "idle", 0, -1, &off), 0);
    CHECK(harness_log_contains(&h, "closed: idle"));
    sc_close(&idle);
    sc_close(&active);
    CHECK_EQ_INT(wait_metric(&h, "sluice_connections", 0, 5000), 0);

    /* A client that stopped reading makes no progress either: its queued
     * responses (pinned segment files) must not keep it open forever. It is
     * watched through the gauge, since reading would be progress. */
    fill_big(&h);
    sc_t stuck;
    stuck_reader(&h, &stuck);
    CHECK_EQ_INT(metric(&h, "sluice_connections"), 1);
    t0 = sl_mono_ms();
    double v = wait_metric(&h, "sluice_connections", 0, 3000);
    CHECK_MSG(v == 0,
              "a connection that stopped reading was still open after %lld ms "
              "(connections.max.idle.ms=300)",
              sl_mono_ms() - t0);
    sc_close(&stuck);
    stop_clean(&h, "idle timeout");
    harness_cleanup(&h);
}

/* request.read.timeout.ms: a frame that started arriving and trickles on
 * (slowloris) is cut off, though its connection is never idle; a healthy
 * client next to it is not; and the claimed 16 MiB never enters the
 * global budget. */
static void read_timeout(void)
{
    harness_t h;
    harness_init(&h, "it-load-readtmo");
    const char *args[] = {"--request.read.timeout.ms=600", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);
    sc_t slow, ok;
    CHECK_FATAL(sc_connect(&slow, h.port) == 0);
    CHECK_FATAL(sc_connect(&ok, h.port) == 0);
    CHECK_EQ_INT(sc_create_topic(&ok, "rt", 1), 0);
    /* "16 MiB - 8 follow", then a byte every 100 ms. */
    uint8_t hdr[8] = {0x00, 0xff, 0xff, 0xf8, 0, 0, 0, 8};
    CHECK_EQ_INT(sc_send_raw(&slow, hdr, sizeof hdr), 0);
    long long t0 = sl_mono_ms(), closed_at = -1;
    while (sl_mono_ms() - t0 < 3000 && closed_at < 0) {
        int64_t off;
        CHECK_EQ_INT(sc_list_offsets(&ok, "rt", 0, -1, &off), 0);
        if (is_closed_now(&slow)) {
            closed_at = sl_mono_ms() - t0;
            break;
        }
        uint8_t b = 0;
        (void)sc_send_raw(&slow, &b, 1);
        if (sl_mono_ms() - t0 < 400)
            CHECK_MSG(metric(&h, "sluice_inflight_bytes") < 65536,
                      "a frame claiming 16 MiB took %g bytes of the budget",
                      metric(&h, "sluice_inflight_bytes"));
        poll(NULL, 0, 100);
    }
    fprintf(stderr, "read timeout: trickling request closed after %lld ms\n", closed_at);
    CHECK_MSG(closed_at >= 500 && closed_at <= 2500,
              "trickling request closed after %lld ms (request.read.timeout.ms=600)", closed_at);
    CHECK(harness_log_contains(&h, "not complete within request.read.timeout.ms"));
    CHECK(!is_closed_now(&ok));
    sc_close(&slow);
    sc_close(&ok);
    stop_clean(&h, "read timeout");
    harness_cleanup(&h);
}

static void max_connections(void)
{
    harness_t h;
    harness_init(&h, "it-load-maxconn");
    const char *args[] = {"--max.connections=5", NULL};
    CHECK_FATAL(harness_start(&h, args) == 0);
    sc_t c[6];
    for (int i = 0; i < 5; i++) {
        CHECK_FATAL(sc_connect(&c[i], h.port) == 0);
        int64_t off;
        /* A round trip proves the broker registered the connection. */
        CHECK_EQ_INT(sc_list_offsets(&c[i], "none", 0, -1, &off),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    }
    CHECK_FATAL(sc_connect(&c[5], h.port) == 0); /* the kernel's backlog takes it */
    CHECK_MSG(sc_wait_closed(&c[5], 3000) == 1, "a 6th connection was not closed");
    sc_close(&c[5]);
    CHECK(metric(&h, "sluice_connections_rejected_total") > 0);
    CHECK_EQ_INT(metric(&h, "sluice_connections"), 5);
    CHECK(harness_log_contains(&h, "max.connections (5) reached"));
    for (int i = 0; i < 5; i++) {
        int64_t off;
        CHECK_EQ_INT(sc_list_offsets(&c[i], "none", 0, -1, &off),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    }
    /* One leaves: there is room again. */
    sc_close(&c[0]);
    CHECK_EQ_INT(wait_metric(&h, "sluice_connections", 4, 5000), 4);
    CHECK_FATAL(sc_connect(&c[0], h.port) == 0);
    int64_t off;
    CHECK_EQ_INT(sc_list_offsets(&c[0], "none", 0, -1, &off), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    for (int i = 0; i < 5; i++) sc_close(&c[i]);
    stop_clean(&h, "max.connections");
    harness_cleanup(&h);
}

/* ---- main ---------------------------------------------------------------- */

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK_FATAL(rl.rlim_cur >= 1100);
}

int main(void)
{
    long long t0 = sl_mono_ms();
    raise_nofile(4096);
    signal(SIGPIPE, SIG_IGN);

    /* Edge-triggered (the default): load and the slow reader. */
    {
        harness_t h;
        harness_init(&h, "it-load-edge");
        const char *args[] = {"--max.connection.output.bytes=1048576", NULL};
        CHECK_FATAL(harness_start(&h, args) == 0);
        many_connections(&h, 1000, "load");
        fanout(&h, 500);
        slow_reader(&h, "edge");
        /* SIGTERM while a client is stuck: bounded drain, clean exit. */
        sc_t stuck;
        stuck_reader(&h, &stuck);
        long long ts = sl_mono_ms();
        stop_clean(&h, "edge, with a stuck reader");
        long long dts = sl_mono_ms() - ts;
        CHECK_MSG(dts < 10000, "SIGTERM with a stuck reader took %lld ms", dts);
        CHECK(harness_log_contains(&h, "clean shutdown"));
        sc_close(&stuck);
        harness_cleanup(&h);
    }
    segment_rolls();
    idle_timeout();
    read_timeout();
    max_connections();
    /* Level-triggered: the same round trips and the slow reader. */
    {
        harness_t h;
        harness_init(&h, "it-load-level");
        const char *args[] = {"--reactor.mode=level", "--max.connection.output.bytes=1048576",
                              NULL};
        CHECK_FATAL(harness_start(&h, args) == 0);
        CHECK(harness_log_contains(&h, "level-triggered reactors"));
        many_connections(&h, 300, "load");
        slow_reader(&h, "level");
        stop_clean(&h, "level");
        harness_cleanup(&h);
    }
    fprintf(stderr, "test_load: %lld ms\n", sl_mono_ms() - t0);
    return check_exit();
}
