/* kraw.c — see kraw.h. */
#include "kraw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* ---- request builder ------------------------------------------------------ */

static void put(kt_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) abort();
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

void kt_i8(kt_buf_t *b, int8_t v)
{
    put(b, &v, 1);
}

void kt_i16(kt_buf_t *b, int16_t v)
{
    uint8_t x[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    put(b, x, 2);
}

void kt_i32(kt_buf_t *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    put(b, x, 4);
}

void kt_i64(kt_buf_t *b, int64_t v)
{
    kt_i32(b, (int32_t)(uint32_t)((uint64_t)v >> 32));
    kt_i32(b, (int32_t)(uint32_t)(uint64_t)v);
}

void kt_str(kt_buf_t *b, const char *s)
{
    if (!s) {
        kt_i16(b, -1);
        return;
    }
    size_t n = strlen(s);
    kt_i16(b, (int16_t)n);
    put(b, s, n);
}

void kt_bytes(kt_buf_t *b, const void *p, int32_t len)
{
    if (!p) {
        kt_i32(b, -1);
        return;
    }
    kt_i32(b, len);
    put(b, p, (size_t)len);
}

void kt_raw(kt_buf_t *b, const void *p, size_t len)
{
    put(b, p, len);
}

void kt_req(kt_buf_t *b, int16_t key, int16_t ver, int32_t corr, const char *client_id)
{
    b->len = 0;
    kt_i32(b, 0);
    kt_i16(b, key);
    kt_i16(b, ver);
    kt_i32(b, corr);
    kt_str(b, client_id);
}

uint8_t *kt_finish(kt_buf_t *b)
{
    uint32_t n = (uint32_t)(b->len - 4);
    b->p[0] = (uint8_t)(n >> 24);
    b->p[1] = (uint8_t)(n >> 16);
    b->p[2] = (uint8_t)(n >> 8);
    b->p[3] = (uint8_t)n;
    return b->p;
}

void kt_free(kt_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- connection ----------------------------------------------------------- */

int kt_connect(int port)
{
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int kt_send(int fd, const void *p, size_t len)
{
    const uint8_t *c = p;
    while (len) {
        ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly n bytes before deadline: KT_OK, KT_EOF (none read),
 * KT_PARTIAL, KT_TIMEOUT, KT_ERROR. */
static int read_full(int fd, uint8_t *p, size_t n, long long deadline)
{
    size_t got = 0;
    while (got < n) {
        long long left = deadline - sl_mono_ms();
        if (left <= 0) return KT_TIMEOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return KT_ERROR;
        if (pr == 0) return KT_TIMEOUT;
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET)) return got ? KT_PARTIAL : KT_EOF;
        if (r < 0) return KT_ERROR;
        got += (size_t)r;
    }
    return KT_OK;
}

int kt_recv(int fd, int timeout_ms, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    long long deadline = sl_mono_ms() + timeout_ms;
    uint8_t sz[4];
    int rc = read_full(fd, sz, 4, deadline);
    if (rc != KT_OK) return rc;
    uint32_t n = (uint32_t)sz[0] << 24 | (uint32_t)sz[1] << 16 | (uint32_t)sz[2] << 8 | sz[3];
    if (n > (1u << 30)) return KT_ERROR;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return KT_ERROR;
    rc = read_full(fd, b, n, deadline);
    if (rc != KT_OK) {
        free(b);
        return rc == KT_EOF ? KT_PARTIAL : rc;
    }
    *out = b;
    *len = n;
    return KT_OK;
}

long kt_closed_after(int fd, int timeout_ms)
{
    long got = 0;
    long long deadline = sl_mono_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - sl_mono_ms();
        if (left <= 0) return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr == 0) return -1;
        if (pr < 0 && errno == EINTR) continue;
        uint8_t buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return got;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return got;
        got += n;
    }
}

/* ---- response reader ------------------------------------------------------ */

void kt_rd_init(kt_rd_t *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
    r->bad = 0;
}

static const uint8_t *take(kt_rd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

int8_t kt_r8(kt_rd_t *r)
{
    const uint8_t *p = take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t kt_r16(kt_rd_t *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (int16_t)(uint16_t)((uint16_t)p[0] << 8 | p[1]) : 0;
}

int32_t kt_r32(kt_rd_t *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
             : 0;
}

int64_t kt_r64(kt_rd_t *r)
{
    uint64_t hi = (uint32_t)kt_r32(r), lo = (uint32_t)kt_r32(r);
    return (int64_t)(hi << 32 | lo);
}

int kt_rstr(kt_rd_t *r, char *out, size_t cap)
{
    int16_t n = kt_r16(r);
    if (cap) out[0] = 0;
    if (r->bad || n < 0) return r->bad ? 0 : -1;
    const uint8_t *p = take(r, (size_t)n);
    if (!p) return 0;
    size_t c = (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
    if (cap) {
        memcpy(out, p, c);
        out[c] = 0;
    }
    return n;
}

int32_t kt_rbytes(kt_rd_t *r, const uint8_t **p)
{
    int32_t n = kt_r32(r);
    *p = NULL;
    if (r->bad || n < 0) return r->bad ? 0 : -1;
    *p = take(r, (size_t)n);
    return *p ? n : 0;
}

size_t kt_left(const kt_rd_t *r)
{
    return r->bad ? 0 : (size_t)(r->end - r->p);
}

/* ---- round trips ---------------------------------------------------------- */

int kt_fetch_send(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part,
                  int64_t offset, int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes)
{
    kt_buf_t b = {0};
    kt_req(&b, 1, ver, corr, "kraw");
    kt_i32(&b, -1);
    kt_i32(&b, max_wait_ms);
    kt_i32(&b, min_bytes);
    if (ver >= 3) kt_i32(&b, max_bytes);
    if (ver >= 4) kt_i8(&b, 0); /* read_uncommitted */
    if (ver >= 7) {
        kt_i32(&b, 0);  /* session_id */
        kt_i32(&b, -1); /* session_epoch */
    }
    kt_i32(&b, 1);
    kt_str(&b, topic);
    kt_i32(&b, 1);
    kt_i32(&b, part);
    if (ver >= 9) kt_i32(&b, -1);
    kt_i64(&b, offset);
    if (ver >= 5) kt_i64(&b, -1);
    kt_i32(&b, max_bytes);
    if (ver >= 7) kt_i32(&b, 0); /* forgotten topics */
    if (ver >= 11) kt_str(&b, "");
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    return rc;
}

void kt_fetch_recv(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part,
                   int timeout_ms, kt_fetch_res_t *out)
{
    memset(out, 0, sizeof *out);
    out->rc = -1;
    out->hwm = out->lso = out->log_start = -99;
    out->records_len = -1;
    uint8_t *resp;
    size_t len;
    int rc = kt_recv(fd, timeout_ms, &resp, &len);
    if (rc != KT_OK) {
        out->rc = rc;
        return;
    }
    kt_rd_t r;
    kt_rd_init(&r, resp, len);
    int ok = kt_r32(&r) == corr;
    if (ver >= 1) kt_r32(&r); /* throttle */
    if (ver >= 7) {
        out->top_error = kt_r16(&r);
        kt_r32(&r); /* session id */
    }
    ok = ok && kt_r32(&r) == 1;
    char name[256];
    kt_rstr(&r, name, sizeof name);
    ok = ok && strcmp(name, topic) == 0 && kt_r32(&r) == 1 && kt_r32(&r) == part;
    out->error = kt_r16(&r);
    out->hwm = kt_r64(&r);
    if (ver >= 4) out->lso = kt_r64(&r);
    if (ver >= 5) out->log_start = kt_r64(&r);
    if (ver >= 4) {
        int32_t naborted = kt_r32(&r);
        for (int32_t i = 0; i < naborted && !r.bad; i++) {
            kt_r64(&r);
            kt_r64(&r);
        }
    }
    out->preferred_replica = ver >= 11 ? kt_r32(&r) : -1;
    const uint8_t *rec;
    out->records_len = kt_rbytes(&r, &rec);
    if (rec && out->records_len > 0) {
        out->records = malloc((size_t)out->records_len);
        if (out->records) memcpy(out->records, rec, (size_t)out->records_len);
    }
    if (ok && !r.bad && kt_left(&r) == 0) out->rc = KT_OK;
    free(resp);
}

void kt_fetch(int fd, int16_t ver, int32_t corr, const char *topic, int32_t part, int64_t offset,
              int32_t max_wait_ms, int32_t min_bytes, int32_t max_bytes, kt_fetch_res_t *out)
{
    if (kt_fetch_send(fd, ver, corr, topic, part, offset, max_wait_ms, min_bytes, max_bytes)) {
        memset(out, 0, sizeof *out);
        out->rc = KT_ERROR;
        out->records_len = -1;
        return;
    }
    kt_fetch_recv(fd, ver, corr, topic, part, max_wait_ms + 10000, out);
}

int kt_produce(int fd, int16_t ver, int32_t corr, int16_t acks, const char *topic, int32_t part,
               const void *records, int32_t len, int64_t *base)
{
    *base = -99;
    kt_buf_t b = {0};
    kt_req(&b, 0, ver, corr, "kraw");
    if (ver >= 3) kt_str(&b, NULL); /* transactional_id */
    kt_i16(&b, acks);
    kt_i32(&b, 10000);
    kt_i32(&b, 1);
    kt_str(&b, topic);
    kt_i32(&b, 1);
    kt_i32(&b, part);
    kt_bytes(&b, records, len);
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    if (rc != 0) return -1000 - KT_ERROR;
    if (acks == 0) return 0;
    uint8_t *resp;
    size_t n;
    rc = kt_recv(fd, 15000, &resp, &n);
    if (rc != KT_OK) return -1000 - rc;
    kt_rd_t r;
    kt_rd_init(&r, resp, n);
    int ok = kt_r32(&r) == corr && kt_r32(&r) == 1;
    char name[256];
    kt_rstr(&r, name, sizeof name);
    ok = ok && strcmp(name, topic) == 0 && kt_r32(&r) == 1 && kt_r32(&r) == part;
    int16_t err = kt_r16(&r);
    *base = kt_r64(&r);
    if (ver >= 2) kt_r64(&r); /* log_append_time */
    if (ver >= 5) kt_r64(&r); /* log_start_offset */
    if (ver >= 1) kt_r32(&r); /* throttle, at the end */
    ok = ok && !r.bad && kt_left(&r) == 0;
    free(resp);
    return ok ? err : -2000;
}

int kt_list_offsets(int fd, int32_t corr, const char *topic, int32_t part, int64_t ts,
                    int64_t *offset)
{
    *offset = -99;
    kt_buf_t b = {0};
    kt_req(&b, 2, 1, corr, "kraw");
    kt_i32(&b, -1);
    kt_i32(&b, 1);
    kt_str(&b, topic);
    kt_i32(&b, 1);
    kt_i32(&b, part);
    kt_i64(&b, ts);
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    if (rc != 0) return -1000 - KT_ERROR;
    uint8_t *resp;
    size_t n;
    rc = kt_recv(fd, 10000, &resp, &n);
    if (rc != KT_OK) return -1000 - rc;
    kt_rd_t r;
    kt_rd_init(&r, resp, n);
    int ok = kt_r32(&r) == corr && kt_r32(&r) == 1;
    char name[256];
    kt_rstr(&r, name, sizeof name);
    ok = ok && strcmp(name, topic) == 0 && kt_r32(&r) == 1 && kt_r32(&r) == part;
    int16_t err = kt_r16(&r);
    kt_r64(&r); /* timestamp */
    *offset = kt_r64(&r);
    ok = ok && !r.bad && kt_left(&r) == 0;
    free(resp);
    return ok ? err : -2000;
}

int kt_create_topic(int fd, int32_t corr, const char *name, int32_t parts, int16_t rf)
{
    kt_buf_t b = {0};
    kt_req(&b, 19, 4, corr, "kraw");
    kt_i32(&b, 1);
    kt_str(&b, name);
    kt_i32(&b, parts);
    kt_i16(&b, rf);
    kt_i32(&b, 0); /* assignments */
    kt_i32(&b, 0); /* configs */
    kt_i32(&b, 10000);
    kt_i8(&b, 0);
    kt_finish(&b);
    int rc = kt_send(fd, b.p, b.len);
    kt_free(&b);
    if (rc) return -1000;
    uint8_t *resp;
    size_t len;
    if (kt_recv(fd, 10000, &resp, &len) != KT_OK) return -1001;
    kt_rd_t r;
    kt_rd_init(&r, resp, len);
    int ok = kt_r32(&r) == corr;
    kt_r32(&r);
    ok = ok && kt_r32(&r) == 1;
    char got[128], msg[256];
    kt_rstr(&r, got, sizeof got);
    int16_t err = kt_r16(&r);
    kt_rstr(&r, msg, sizeof msg);
    ok = ok && !r.bad && kt_left(&r) == 0 && strcmp(got, name) == 0;
    free(resp);
    return ok ? err : -2000;
}
