/* loadgen — load generator for sluiced over Sluice's protocol (proto/ codec).
 *
 * Produce phase: P connections (one thread each) send pre-built produce
 * frames (100-byte messages in 16 KiB batches, acks=1 by default) with up to
 * --inflight requests pipelined per connection, for --seconds; it reports
 * msgs/s, MB/s and the produce round trip's p50/p99 (send to response).
 * Fetch phase: C connections read everything back with pipelined fetches
 * and report msgs/s and MB/s. Baseline, same run: plain sendfile() of the
 * same segment files over loopback TCP, so the fetch figure can be quoted
 * as a ratio of what the kernel can do on this machine right now.
 *
 * Starts its own sluiced in a temp dir unless --port is given. With --json
 * the last stdout line is one JSON object.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "clock.h"
#include "codec.h"
#include "harness.h"

static struct {
    int port, producers, consumers, partitions, inflight, acks, json, connections;
    double seconds;
    size_t msg_size, batch_bytes;
    const char *mode;
} opt = {0, 2, 2, 0, 16, 1, 0, 0, 3.0, 100, 16384, "edge"};

static const char *TOPIC = "loadgen";

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            perror("send");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Response reader: buffers the stream and hands out whole frames. */
typedef struct rd {
    int fd;
    uint8_t *buf;
    size_t cap, start, len;
} rd_t;

static const uint8_t *next_frame(rd_t *r, uint32_t *total)
{
    for (;;) {
        if (r->len - r->start >= 4) {
            uint32_t t = sl_be32(r->buf + r->start) + 4;
            if (r->len - r->start >= t) {
                const uint8_t *f = r->buf + r->start;
                r->start += t;
                *total = t;
                return f;
            }
            if (t > r->cap) {
                r->buf = realloc(r->buf, t * 2);
                r->cap = t * 2;
            }
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "loadgen: connection closed by the broker\n");
            exit(1);
        }
        r->len += (size_t)n;
    }
}

static int response_code(const uint8_t *f, uint32_t total, sl_arena_t *a, sl_response_t *resp)
{
    sl_arena_reset(a);
    sl_err_t err;
    if (sl_response_decode(f, total, a, resp, &err) != SL_OK) return -1;
    return resp->hdr->error_code;
}

/* ---- produce ---- */

typedef struct pconn {
    int fd;
    rd_t r;
    uint64_t *sent; /* send times of the requests in flight, a ring */
    size_t head, out;
} pconn_t;

typedef struct prod {
    pthread_t th;
    int id;
    int nconns; /* connections this thread drives */
    uint8_t *frame;
    size_t frame_len;
    int records;
    uint64_t requests, msgs, bytes, errors;
    uint64_t *rtt_ns;
    size_t nrtt, caprtt;
} prod_t;

static volatile int stop_flag;

/* Takes the complete response frames buffered on pc (no blocking). */
static void take_responses(prod_t *p, pconn_t *pc, sl_arena_t *a)
{
    for (;;) {
        rd_t *r = &pc->r;
        if (r->len - r->start < 4) break;
        uint32_t t = sl_be32(r->buf + r->start) + 4;
        if (r->len - r->start < t) break;
        uint64_t now = sl_mono_ns();
        sl_response_t resp;
        if (response_code(r->buf + r->start, t, a, &resp) != 0)
            p->errors++;
        else {
            p->requests++;
            p->msgs += (uint64_t)p->records;
            p->bytes += (uint64_t)p->records * opt.msg_size;
        }
        r->start += t;
        if (p->nrtt == p->caprtt) {
            p->caprtt = p->caprtt ? p->caprtt * 2 : 4096;
            p->rtt_ns = realloc(p->rtt_ns, p->caprtt * sizeof *p->rtt_ns);
        }
        p->rtt_ns[p->nrtt++] = now - pc->sent[pc->head];
        pc->head = (pc->head + 1) % (size_t)opt.inflight;
        pc->out--;
    }
    if (pc->r.start > 0) {
        memmove(pc->r.buf, pc->r.buf + pc->r.start, pc->r.len - pc->r.start);
        pc->r.len -= pc->r.start;
        pc->r.start = 0;
    }
}

static void *producer(void *arg)
{
    prod_t *p = arg;
    pconn_t *cs = calloc((size_t)p->nconns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)p->nconns, sizeof *pf);
    for (int i = 0; i < p->nconns; i++) {
        cs[i].fd = dial(opt.port);
        cs[i].r = (rd_t){cs[i].fd, malloc(1 << 16), 1 << 16, 0, 0};
        cs[i].sent = calloc((size_t)opt.inflight, sizeof *cs[i].sent);
    }
    sl_arena_t a;
    sl_arena_init(&a, NULL, 0, 0);
    for (;;) {
        size_t pending = 0;
        for (int i = 0; i < p->nconns; i++) {
            pconn_t *pc = &cs[i];
            while (!stop_flag && pc->out < (size_t)opt.inflight) {
                pc->sent[(pc->head + pc->out) % (size_t)opt.inflight] = sl_mono_ns();
                write_all(pc->fd, p->frame, p->frame_len);
                if (opt.acks == 0) {
                    p->requests++;
                    p->msgs += (uint64_t)p->records;
                    p->bytes += (uint64_t)p->records * opt.msg_size;
                    continue;
                }
                pc->out++;
            }
            pending += pc->out;
            pf[i] = (struct pollfd){.fd = pc->fd, .events = POLLIN};
        }
        if (stop_flag && pending == 0) break;
        if (opt.acks == 0 && stop_flag) break;
        if (poll(pf, (nfds_t)p->nconns, 1000) <= 0) continue;
        for (int i = 0; i < p->nconns; i++) {
            if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            rd_t *r = &cs[i].r;
            if (r->cap - r->len < 65536) {
                r->cap *= 2;
                r->buf = realloc(r->buf, r->cap);
            }
            ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
            if (n <= 0) {
                fprintf(stderr, "loadgen: connection closed by the broker\n");
                exit(1);
            }
            r->len += (size_t)n;
            take_responses(p, &cs[i], &a);
        }
    }
    for (int i = 0; i < p->nconns; i++) {
        close(cs[i].fd);
        free(cs[i].r.buf);
        free(cs[i].sent);
    }
    free(cs);
    free(pf);
    sl_arena_free(&a);
    return NULL;
}

static uint8_t *build_produce_frame(int partition, size_t *len, int *records)
{
    /* Records of msg_size bytes until the batch reaches batch_bytes. */
    int n = (int)(opt.batch_bytes / (opt.msg_size + 10));
    if (n < 1) n = 1;
    size_t blen;
    uint8_t *batch = bg_simple(n, opt.msg_size, 1700000000000LL, (uint32_t)partition, &blen);
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = SLUICE__API_KEY__PRODUCE;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = 1;
    Sluice__ProduceRequest m = SLUICE__PRODUCE_REQUEST__INIT;
    m.topic = (char *)TOPIC;
    m.partition = partition;
    m.acks = opt.acks;
    m.timeout_ms = 30000;
    size_t hl = sl_request_size(&h, &m.base);
    uint8_t *f = malloc(hl + blen);
    sl_request_encode(&h, &m.base, (uint32_t)blen, f);
    memcpy(f + hl, batch, blen);
    free(batch);
    *len = hl + blen;
    *records = n;
    return f;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- fetch ---- */

typedef struct cons {
    pthread_t th;
    int first, step; /* partitions first, first+step, ... */
    int64_t *end;    /* log end per partition */
    uint64_t msgs, bytes;
} cons_t;

static void *consumer(void *arg)
{
    cons_t *c = arg;
    int fd = dial(opt.port);
    rd_t r = {fd, malloc(1 << 21), 1 << 21, 0, 0};
    sl_arena_t a;
    sl_arena_init(&a, NULL, 0, 0);
    for (int part = c->first; part < opt.partitions; part += c->step) {
        int64_t next = 0, end = c->end[part];
        int64_t requested = 0; /* pipelined fetches are sent for successive windows */
        while (next < end) {
            /* One request at a time per partition, but a large window. */
            Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
            h.api = SLUICE__API_KEY__FETCH;
            h.correlation_id = (uint64_t)++requested;
            Sluice__FetchRequest m = SLUICE__FETCH_REQUEST__INIT;
            m.topic = (char *)TOPIC;
            m.partition = part;
            m.offset = next;
            m.max_bytes = 4u << 20;
            uint8_t buf[256];
            size_t n = sl_request_encode(&h, &m.base, 0, buf);
            write_all(fd, buf, n);
            uint32_t total;
            const uint8_t *f = next_frame(&r, &total);
            sl_response_t resp;
            if (response_code(f, total, &a, &resp) != 0) {
                fprintf(stderr, "loadgen: fetch error %d\n", resp.hdr->error_code);
                exit(1);
            }
            size_t off = 0;
            while (off + SL_BATCH_HEADER_SIZE <= resp.payload_len) {
                const uint8_t *bh = resp.payload + off;
                uint64_t sz = sl_batch_total_size(bh);
                if (sz < SL_BATCH_HEADER_SIZE || off + sz > resp.payload_len) break;
                int64_t base = (int64_t)sl_be64(bh);
                int64_t last = base + (int32_t)sl_be32(bh + SL_BATCH_OFF_LAST_OFFSET_DELTA);
                if (last >= next) {
                    c->msgs += (uint64_t)(last + 1 - (base > next ? base : next));
                    next = last + 1;
                }
                c->bytes += sz;
                off += (size_t)sz;
            }
        }
    }
    free(r.buf);
    sl_arena_free(&a);
    close(fd);
    return NULL;
}

/* ---- sendfile baseline ---- */

typedef struct base {
    int lfd;
    char **files;
    int nfiles;
    uint64_t bytes;
} base_t;

static void *base_server(void *arg)
{
    base_t *b = arg;
    int fd = accept(b->lfd, NULL, NULL);
    for (int i = 0; i < b->nfiles; i++) {
        int in = open(b->files[i], O_RDONLY);
        struct stat st;
        fstat(in, &st);
        off_t pos = 0;
        while (pos < st.st_size) {
            ssize_t n = sendfile(fd, in, &pos, (size_t)(st.st_size - pos));
            if (n <= 0) break;
        }
        close(in);
    }
    close(fd);
    return NULL;
}

static double sendfile_baseline(const char *dir, uint64_t *bytes)
{
    base_t b = {0};
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.log' -size +0", dir);
    FILE *f = popen(cmd, "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        b.files = realloc(b.files, (size_t)(b.nfiles + 1) * sizeof *b.files);
        b.files[b.nfiles++] = strdup(line);
    }
    if (f) pclose(f);
    b.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(b.lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(b.lfd, 1);
    socklen_t sl = sizeof sa;
    getsockname(b.lfd, (struct sockaddr *)&sa, &sl);
    pthread_t th;
    pthread_create(&th, NULL, base_server, &b);
    int fd = dial(ntohs(sa.sin_port));
    static uint8_t buf[1 << 20];
    uint64_t t0 = sl_mono_ns(), got = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) got += (uint64_t)n;
    double dt = (double)(sl_mono_ns() - t0) / 1e9;
    pthread_join(th, NULL);
    close(fd);
    close(b.lfd);
    for (int i = 0; i < b.nfiles; i++) free(b.files[i]);
    free(b.files);
    *bytes = got;
    return (double)got / 1e6 / dt;
}

static void usage(void)
{
    printf("usage: loadgen [--port P] [--producers N] [--consumers N] [--partitions N]\n"
           "               [--seconds S] [--msg-size B] [--batch-bytes B] [--inflight N]\n"
           "               [--acks 0|1|-1] [--reactor-mode edge|level] [--connections N] [--json]\n"
           "--connections spreads N producer connections over the --producers threads.\n"
           "Without --port it starts its own sluiced in a temp directory.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            opt.json = 1;
        else if (!strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (v && !strcmp(a, "--port"))
            opt.port = atoi(v), i++;
        else if (v && !strcmp(a, "--producers"))
            opt.producers = atoi(v), i++;
        else if (v && !strcmp(a, "--connections"))
            opt.connections = atoi(v), i++;
        else if (v && !strcmp(a, "--consumers"))
            opt.consumers = atoi(v), i++;
        else if (v && !strcmp(a, "--partitions"))
            opt.partitions = atoi(v), i++;
        else if (v && !strcmp(a, "--seconds"))
            opt.seconds = atof(v), i++;
        else if (v && !strcmp(a, "--msg-size"))
            opt.msg_size = (size_t)atol(v), i++;
        else if (v && !strcmp(a, "--batch-bytes"))
            opt.batch_bytes = (size_t)atol(v), i++;
        else if (v && !strcmp(a, "--inflight"))
            opt.inflight = atoi(v), i++;
        else if (v && !strcmp(a, "--acks"))
            opt.acks = atoi(v), i++;
        else if (v && !strcmp(a, "--reactor-mode"))
            opt.mode = v, i++;
        else {
            usage();
            return 2;
        }
    }
    if (opt.partitions <= 0) opt.partitions = opt.producers;
    if (opt.connections < opt.producers) opt.connections = opt.producers;
    if (opt.producers < 1 || opt.consumers < 1 || opt.inflight < 1) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    harness_t h;
    int own = opt.port == 0;
    if (own) {
        harness_init(&h, "loadgen");
        char mode[64];
        snprintf(mode, sizeof mode, "--reactor.mode=%s", opt.mode);
        const char *args[] = {mode, NULL};
        if (harness_start(&h, args) != 0) return 1;
        opt.port = h.port;
    }
    /* Create the topic. */
    {
        int fd = dial(opt.port);
        Sluice__RequestHeader hh = SLUICE__REQUEST_HEADER__INIT;
        hh.api = SLUICE__API_KEY__CREATE_TOPIC;
        Sluice__CreateTopicRequest m = SLUICE__CREATE_TOPIC_REQUEST__INIT;
        m.name = (char *)TOPIC;
        m.partitions = opt.partitions;
        uint8_t buf[256];
        size_t n = sl_request_encode(&hh, &m.base, 0, buf);
        write_all(fd, buf, n);
        rd_t r = {fd, malloc(4096), 4096, 0, 0};
        uint32_t total;
        next_frame(&r, &total);
        free(r.buf);
        close(fd);
    }
    fprintf(stderr,
            "loadgen: producing for %.1f s from %d connections (%d threads) to %d "
            "partitions...\n",
            opt.seconds, opt.connections, opt.producers, opt.partitions);
    prod_t *ps = calloc((size_t)opt.producers, sizeof *ps);
    for (int i = 0; i < opt.producers; i++) {
        ps[i].id = i;
        ps[i].nconns = opt.connections / opt.producers + (i < opt.connections % opt.producers);
        ps[i].frame = build_produce_frame(i % opt.partitions, &ps[i].frame_len, &ps[i].records);
    }
    uint64_t t0 = sl_mono_ns();
    for (int i = 0; i < opt.producers; i++) pthread_create(&ps[i].th, NULL, producer, &ps[i]);
    poll(NULL, 0, (int)(opt.seconds * 1000));
    stop_flag = 1;
    for (int i = 0; i < opt.producers; i++) pthread_join(ps[i].th, NULL);
    double pdt = (double)(sl_mono_ns() - t0) / 1e9;
    uint64_t msgs = 0, bytes = 0, errors = 0, nrtt = 0;
    for (int i = 0; i < opt.producers; i++) {
        msgs += ps[i].msgs;
        bytes += ps[i].bytes;
        errors += ps[i].errors;
        nrtt += ps[i].nrtt;
    }
    uint64_t *all = malloc((nrtt + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < opt.producers; i++) {
        memcpy(all + k, ps[i].rtt_ns, ps[i].nrtt * sizeof *all);
        k += ps[i].nrtt;
    }
    qsort(all, nrtt, sizeof *all, cmp_u64);
    double p50 = nrtt ? (double)all[nrtt / 2] / 1e3 : 0,
           p99 = nrtt ? (double)all[nrtt * 99 / 100] / 1e3 : 0;
    double pmsgs = (double)msgs / pdt, pmb = (double)bytes / 1e6 / pdt;

    /* Log ends, for the fetch phase. */
    int64_t *end = calloc((size_t)opt.partitions, sizeof *end);
    {
        int fd = dial(opt.port);
        rd_t r = {fd, malloc(4096), 4096, 0, 0};
        sl_arena_t a;
        sl_arena_init(&a, NULL, 0, 0);
        for (int p = 0; p < opt.partitions; p++) {
            Sluice__RequestHeader hh = SLUICE__REQUEST_HEADER__INIT;
            hh.api = SLUICE__API_KEY__LIST_OFFSETS;
            Sluice__ListOffsetsRequest m = SLUICE__LIST_OFFSETS_REQUEST__INIT;
            m.topic = (char *)TOPIC;
            m.partition = p;
            m.timestamp = -1;
            uint8_t buf[256];
            size_t n = sl_request_encode(&hh, &m.base, 0, buf);
            write_all(fd, buf, n);
            uint32_t total;
            const uint8_t *f = next_frame(&r, &total);
            sl_response_t resp;
            if (response_code(f, total, &a, &resp) == 0) {
                sl_err_t err;
                Sluice__ListOffsetsResponse *lr = (Sluice__ListOffsetsResponse *)sl_body_decode(
                    &sluice__list_offsets_response__descriptor, resp.body, resp.body_len, &a, &err);
                if (lr) end[p] = lr->offset;
            }
        }
        free(r.buf);
        sl_arena_free(&a);
        close(fd);
    }
    fprintf(stderr, "loadgen: fetching it back with %d connections...\n", opt.consumers);
    cons_t *cs = calloc((size_t)opt.consumers, sizeof *cs);
    t0 = sl_mono_ns();
    for (int i = 0; i < opt.consumers; i++) {
        cs[i].first = i;
        cs[i].step = opt.consumers;
        cs[i].end = end;
        pthread_create(&cs[i].th, NULL, consumer, &cs[i]);
    }
    uint64_t fmsgs = 0, fbytes = 0;
    for (int i = 0; i < opt.consumers; i++) {
        pthread_join(cs[i].th, NULL);
        fmsgs += cs[i].msgs;
        fbytes += cs[i].bytes;
    }
    double fdt = (double)(sl_mono_ns() - t0) / 1e9;
    double fmb = (double)fbytes / 1e6 / fdt;
    double base_mb = 0;
    uint64_t base_bytes = 0;
    if (own) base_mb = sendfile_baseline(h.data, &base_bytes);

    printf("produce: %.0f msgs/s, %.1f MB/s (payload), %" PRIu64 " errors, round trip p50 %.0f us, "
           "p99 %.0f us (%d connections x %d in flight, %zu-byte messages, %zu-byte batches, "
           "acks=%d)\n",
           pmsgs, pmb, errors, p50, p99, opt.connections, opt.inflight, opt.msg_size,
           opt.batch_bytes, opt.acks);
    printf("fetch:   %.0f msgs/s, %.1f MB/s (%d connections)\n", (double)fmsgs / fdt, fmb,
           opt.consumers);
    if (own)
        printf("baseline: loopback sendfile of the same segment files: %.1f MB/s; fetch/baseline "
               "= %.2f\n",
               base_mb, base_mb > 0 ? fmb / base_mb : 0);
    if (opt.json)
        printf("{\"produce_msgs_s\":%.0f,\"produce_mb_s\":%.1f,\"produce_errors\":%" PRIu64
               ",\"produce_p50_us\":%.0f,\"produce_p99_us\":%.0f,\"fetch_msgs_s\":%.0f,"
               "\"fetch_mb_s\":%.1f,\"sendfile_baseline_mb_s\":%.1f,\"fetch_ratio\":%.3f,"
               "\"connections\":%d,\"producers\":%d,\"consumers\":%d,\"partitions\":%d,"
               "\"inflight\":%d,"
               "\"msg_size\":%zu,\"batch_bytes\":%zu,\"acks\":%d,\"reactor_mode\":\"%s\"}\n",
               pmsgs, pmb, errors, p50, p99, (double)fmsgs / fdt, fmb, base_mb,
               base_mb > 0 ? fmb / base_mb : 0, opt.connections, opt.producers, opt.consumers,
               opt.partitions, opt.inflight, opt.msg_size, opt.batch_bytes, opt.acks, opt.mode);
    for (int i = 0; i < opt.producers; i++) {
        free(ps[i].frame);
        free(ps[i].rtt_ns);
    }
    free(ps);
    free(cs);
    free(end);
    free(all);
    if (own) {
        harness_stop(&h, SIGTERM);
        harness_cleanup(&h);
    }
    return errors ? 1 : 0;
}
