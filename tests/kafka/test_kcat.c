/* test_kcat.c — the unmodified kcat 1.7.1 (librdkafka 2.0.2) against
 * sluiced's Kafka listener. Every kcat run has a hard 30 s timeout (then
 * SIGKILL), so a broker that hangs fails the test instead of hanging ctest.
 *
 * Covers: -L (broker 1 at the listener's address, controller, topics with
 * leader/replicas/isrs), -L -t for a known topic, for an unknown one with
 * allow.auto.create.topics=false (error, not created) and for a new one
 * (kcat's producer handle asks for auto-creation: created, 1 partition); -P from stdin with no key,
 * -k, -K:, -H headers, -p, acks 0 and 1 and enable.idempotence=true; -C -o beginning -e with every
 * offset/key/value/header checked (with and without check.crcs); lz4 with
 * linger.ms=100 (a raw Fetch proves the stored batch is lz4 and multi-record)
 * and gzip/snappy/zstd round trips; -o 75 inside a compressed batch, -o end,
 * -o -5, -o 999 (OFFSET_OUT_OF_RANGE, reset to the end), -o s@timestamp;
 * -G groups: a first run consumes everything from earliest, a second run
 * after more produces gets only the new messages (committed offsets), a
 * third gets nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "harness.h"
#include "kraw.h"

#ifndef KCAT_PATH
#error "KCAT_PATH must name the kcat binary"
#endif

#define KCAT_TIMEOUT_MS 30000

static harness_t h;
static char bootstrap[64];

/* ---- running kcat ------------------------------------------------------- */

typedef struct run {
    int status; /* exit code, or -1 when killed/timed out */
    int timed_out;
    char *out, *err; /* NUL-terminated, malloc'd */
    size_t out_len;
} run_t;

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        CHECK_FATAL(np != NULL);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Runs kcat -b <listener> args... (NULL-terminated) with `in` on stdin.
 * stdout and stderr are captured; stderr is echoed on failure by callers. */
static void kcat(run_t *r, const char *in, ...)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = KCAT_PATH;
    argv[n++] = "-b";
    argv[n++] = bootstrap;
    va_list ap;
    va_start(ap, in);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;

    memset(r, 0, sizeof *r);
    r->status = -1;
    int pin[2], pout[2], perr[2];
    CHECK_FATAL(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
    pid_t pid = fork();
    CHECK_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[0]);
        close(pin[1]);
        close(pout[0]);
        close(pout[1]);
        close(perr[0]);
        close(perr[1]);
        execv(KCAT_PATH, (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    int wfd = pin[1];
    fcntl(wfd, F_SETFL, O_NONBLOCK);
    size_t in_len = in ? strlen(in) : 0, in_off = 0;
    if (in_len == 0) {
        close(wfd);
        wfd = -1;
    }
    sbuf_t out = {0}, err = {0};
    sb_add(&out, "", 0);
    sb_add(&err, "", 0);
    int open_out = 1, open_err = 1;
    long long deadline = sl_mono_ms() + KCAT_TIMEOUT_MS;
    while (open_out || open_err) {
        long long left = deadline - sl_mono_ms();
        if (left <= 0) {
            r->timed_out = 1;
            break;
        }
        struct pollfd pf[3];
        int np = 0;
        pf[np++] = (struct pollfd){.fd = open_out ? pout[0] : -1, .events = POLLIN};
        pf[np++] = (struct pollfd){.fd = open_err ? perr[0] : -1, .events = POLLIN};
        pf[np++] = (struct pollfd){.fd = wfd, .events = POLLOUT};
        int pr = poll(pf, (nfds_t)np, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) break;
        char buf[8192];
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t k = read(pf[i].fd, buf, sizeof buf);
            if (k > 0) {
                sb_add(i == 0 ? &out : &err, buf, (size_t)k);
            } else if (k == 0 || errno != EINTR) {
                if (i == 0)
                    open_out = 0;
                else
                    open_err = 0;
            }
        }
        if (wfd >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t k = write(wfd, in + in_off, in_len - in_off);
            if (k > 0) in_off += (size_t)k;
            if (k < 0 && errno != EAGAIN && errno != EINTR) in_off = in_len;
            if (in_off >= in_len) {
                close(wfd);
                wfd = -1;
            }
        }
    }
    if (wfd >= 0) close(wfd);
    close(pout[0]);
    close(perr[0]);
    int st = 0;
    if (r->timed_out) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    } else {
        /* Output closed: the process is exiting. */
        long long until = sl_mono_ms() + 10000;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            if (sl_mono_ms() > until) {
                r->timed_out = 1;
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            poll(NULL, 0, 5);
        }
    }
    if (!r->timed_out && WIFEXITED(st)) r->status = WEXITSTATUS(st);
    r->out = out.p;
    r->out_len = out.len;
    r->err = err.p;
    CHECK_MSG(!r->timed_out, "kcat %s %s %s ... timed out after %d ms; stderr:\n%s",
              n > 3 ? argv[3] : "", n > 4 ? argv[4] : "", n > 5 ? argv[5] : "", KCAT_TIMEOUT_MS,
              r->err);
}

/* Checks exit 0 and prints stderr when not. */
static int ok_run(const run_t *r, const char *what)
{
    CHECK_MSG(r->status == 0, "%s: kcat exit %d; stderr:\n%s", what, r->status, r->err);
    return r->status == 0;
}

static void produce(const char *what, const char *in, ...)
{
    /* kcat -P with the given extra args (at most 8). */
    const char *a[9] = {0};
    va_list ap;
    va_start(ap, in);
    for (int i = 0; i < 8; i++) {
        a[i] = va_arg(ap, const char *);
        if (!a[i]) break;
    }
    va_end(ap);
    run_t r;
    kcat(&r, in, "-P", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (const char *)NULL);
    ok_run(&r, what);
    CHECK_MSG(strstr(r.err, "ERROR") == NULL && strstr(r.err, "failed") == NULL,
              "%s: kcat -P reported:\n%s", what, r.err);
    run_free(&r);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- cases ---------------------------------------------------------------- */

static void test_list_empty(void)
{
    run_t r;
    kcat(&r, NULL, "-L", (const char *)NULL);
    ok_run(&r, "-L");
    char want[128];
    snprintf(want, sizeof want, " 1 brokers:\n  broker 1 at 127.0.0.1:%d (controller)\n",
             h.kafka_port);
    CHECK_MSG(strstr(r.out, want) != NULL, "-L output:\n%s", r.out);
    run_free(&r);
}

static void test_produce_consume(void)
{
    produce("no key", "a\nb\n", "-t", "t", (const char *)NULL);
    produce("-k", "c\nd\n", "-t", "t", "-k", "key", (const char *)NULL);
    produce("-K:", "k4:v4\nk5:v5\n", "-t", "t", "-K:", (const char *)NULL);
    produce("-H", "hv\n", "-t", "t", "-k", "K", "-H", "h1=v1", "-H", "h2=v2", (const char *)NULL);
    produce("acks=0", "x0\n", "-t", "t", "-X", "acks=0", (const char *)NULL);
    produce("acks=1", "x1\n", "-t", "t", "-X", "acks=1", (const char *)NULL);
    produce("idempotent", "x2\ny2\n", "-t", "t", "-X", "enable.idempotence=true",
            (const char *)NULL);
    static const char *want = "0||a|\n"
                              "1||b|\n"
                              "2|key|c|\n"
                              "3|key|d|\n"
                              "4|k4|v4|\n"
                              "5|k5|v5|\n"
                              "6|K|hv|h1=v1,h2=v2\n"
                              "7||x0|\n"
                              "8||x1|\n"
                              "9||x2|\n"
                              "10||y2|\n";
    for (int crc = 0; crc < 2; crc++) {
        run_t r;
        kcat(&r, NULL, "-C", "-t", "t", "-o", "beginning", "-e", "-f", "%o|%k|%s|%h\n", "-X",
             crc ? "check.crcs=true" : "isolation.level=read_uncommitted", (const char *)NULL);
        ok_run(&r, "-C -o beginning");
        CHECK_MSG(strcmp(r.out, want) == 0, "consumed (check.crcs %d):\n%s\nexpected:\n%s", crc,
                  r.out, want);
        CHECK_MSG(strstr(r.err, "Reached end of topic t [0] at offset 11") != NULL, "stderr:\n%s",
                  r.err);
        run_free(&r);
    }

    /* -L after producing: the topic with its single partition. */
    run_t r;
    kcat(&r, NULL, "-L", "-t", "t", (const char *)NULL);
    ok_run(&r, "-L -t t");
    CHECK_MSG(strstr(r.out, " 1 topics:\n  topic \"t\" with 1 partitions:\n"
                            "    partition 0, leader 1, replicas: 1, isrs: 1\n") != NULL,
              "-L -t t:\n%s", r.out);
    run_free(&r);
    /* An unknown topic: not created when the client does not allow it
     * (librdkafka's producer default allows it: kcat -L -t creates). */
    kcat(&r, NULL, "-L", "-t", "nosuch", "-X", "allow.auto.create.topics=false",
         (const char *)NULL);
    CHECK_MSG(strstr(r.out, "topic \"nosuch\" with 0 partitions: Broker: Unknown topic or "
                            "partition") != NULL,
              "-L -t nosuch:\n%s", r.out);
    run_free(&r);
    kcat(&r, NULL, "-L", "-t", "autoc", (const char *)NULL);
    CHECK_MSG(strstr(r.out, "topic \"autoc\" with 1 partitions:\n"
                            "    partition 0, leader 1, replicas: 1, isrs: 1\n") != NULL,
              "-L -t autoc (auto-created):\n%s", r.out);
    run_free(&r);
    kcat(&r, NULL, "-L", (const char *)NULL);
    ok_run(&r, "-L");
    CHECK_MSG(strstr(r.out, "topic \"t\" with 1 partitions:") != NULL, "-L:\n%s", r.out);
    CHECK_MSG(strstr(r.out, "topic \"autoc\" with 1 partitions:") != NULL, "-L:\n%s", r.out);
    CHECK_MSG(strstr(r.out, "nosuch") == NULL, "-L -t nosuch created the topic:\n%s", r.out);
    run_free(&r);

    /* -o s@<ms>: the first offset whose timestamp is at least that of
     * offset 6 (its own batch). */
    kcat(&r, NULL, "-C", "-t", "t", "-e", "-f", "%o %T\n", (const char *)NULL);
    long long ts[16];
    int n = 0;
    for (const char *p = r.out; *p && n < 16; n++) {
        long long o = -1, t = -1;
        if (sscanf(p, "%lld %lld", &o, &t) != 2 || o != n) break;
        ts[n] = t;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    CHECK_EQ_INT(n, 11);
    run_free(&r);
    if (n == 11) {
        int first = 0;
        while (first < 11 && ts[first] < ts[6]) first++;
        char at[32], want_first[32];
        snprintf(at, sizeof at, "s@%lld", ts[6]);
        snprintf(want_first, sizeof want_first, "%d\n", first);
        kcat(&r, NULL, "-C", "-t", "t", "-o", at, "-e", "-f", "%o\n", (const char *)NULL);
        ok_run(&r, "-o s@");
        CHECK_MSG(
            strncmp(r.out, want_first, strlen(want_first)) == 0 && count_lines(r.out) == 11 - first,
            "-o %s (offset 6's timestamp) printed:\n%s\nexpected from offset %d", at, r.out, first);
        run_free(&r);
    }
}

static void test_partition_flag(void)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    CHECK_EQ_INT(kt_create_topic(fd, 1, "pp", 3, 1), 0);
    close(fd);
    produce("-p 2", "to2\n", "-t", "pp", "-p", "2", (const char *)NULL);
    produce("-p 0", "to0\n", "-t", "pp", "-p", "0", (const char *)NULL);
    run_t r;
    kcat(&r, NULL, "-C", "-t", "pp", "-p", "2", "-e", "-f", "%p %o %s\n", (const char *)NULL);
    ok_run(&r, "-C -p 2");
    CHECK_MSG(strcmp(r.out, "2 0 to2\n") == 0, "partition 2:\n%s", r.out);
    run_free(&r);
    kcat(&r, NULL, "-C", "-t", "pp", "-p", "1", "-e", "-f", "%p %o %s\n", (const char *)NULL);
    ok_run(&r, "-C -p 1");
    CHECK_MSG(strcmp(r.out, "") == 0, "partition 1:\n%s", r.out);
    run_free(&r);
}

/* The line kcat printed for offset i of the compressed topics. */
static void zline(char *b, size_t cap, int i)
{
    snprintf(b, cap, "line-%03d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
}

/* Raw Fetch of topic at offset 0: checks the stored batches are compressed
 * with codec (multi-record) and that offset 75 sits inside a batch. */
static void check_stored_batches(const char *topic, int codec, int64_t total)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    kt_fetch_res_t f;
    kt_fetch(fd, 11, 7, topic, 0, 0, 100, 1, 1 << 24, &f);
    CHECK_MSG(f.rc == KT_OK && f.error == 0 && f.hwm == total,
              "raw fetch %s: rc %d error %d hwm %" PRId64, topic, f.rc, f.error, f.hwm);
    int batches = 0, single = 0, multi = 0, mid75 = 0;
    int64_t next = 0;
    for (int32_t off = 0; f.records && off + 61 <= f.records_len;) {
        const uint8_t *b = f.records + off;
        int64_t base = 0;
        for (int i = 0; i < 8; i++) base = base << 8 | b[i];
        int32_t blen =
            (int32_t)((uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11]);
        int attr = b[22] & 7;
        int32_t lod =
            (int32_t)((uint32_t)b[23] << 24 | (uint32_t)b[24] << 16 | (uint32_t)b[25] << 8 | b[26]);
        int32_t cnt =
            (int32_t)((uint32_t)b[57] << 24 | (uint32_t)b[58] << 16 | (uint32_t)b[59] << 8 | b[60]);
        if (off + 12 + blen > f.records_len) break;
        CHECK_MSG(base == next && b[16] == 2 && lod + 1 == cnt,
                  "%s batch %d: base %" PRId64 " (expected %" PRId64 ") magic %d lod %d count %d",
                  topic, batches, base, next, b[16], lod, cnt);
        single += cnt == 1;
        multi += attr == codec && cnt > 1;
        if (base < 75 && base + lod > 75) mid75 = 1;
        next = base + cnt;
        batches++;
        off += 12 + blen;
    }
    CHECK_MSG(next == total, "%s: batches cover %" PRId64 " offsets, expected %" PRId64, topic,
              next, total);
    /* librdkafka sends a batch uncompressed when compressing does not
     * shrink it (a lone record). */
    CHECK_MSG(multi >= 1 && multi == batches - single,
              "%s: %d stored batches (%d of one record), %d multi-record ones use codec %d", topic,
              batches, single, multi, codec);
    if (codec == 3) CHECK_MSG(mid75, "%s: offset 75 is not inside a batch", topic);
    free(f.records);
    close(fd);
}

static void test_compressed(void)
{
    size_t cap = 200 * 64 + 1;
    char *in = malloc(cap), *want = malloc(cap * 2);
    CHECK_FATAL(in && want);
    in[0] = 0;
    size_t len = 0;
    for (int i = 0; i < 200; i++) {
        char l[64];
        zline(l, sizeof l, i);
        len += (size_t)snprintf(in + len, cap - len, "%s\n", l);
    }
    produce("-z lz4", in, "-t", "z", "-z", "lz4", "-X", "linger.ms=100", (const char *)NULL);
    check_stored_batches("z", 3, 200);

    struct {
        const char *o;
        int first, count;
        const char *extra;
    } cases[] = {
        {"beginning", 0, 200, "check.crcs=true"}, {"75", 75, 125, "check.crcs=true"},
        {"end", 0, 0, "check.crcs=false"},        {"-5", 195, 5, "check.crcs=false"},
        {"999", 0, 0, "check.crcs=false"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_t r;
        kcat(&r, NULL, "-C", "-t", "z", "-o", cases[c].o, "-e", "-f", "%o %s\n", "-X",
             cases[c].extra, (const char *)NULL);
        ok_run(&r, cases[c].o);
        size_t wl = 0;
        want[0] = 0;
        for (int i = cases[c].first; i < cases[c].first + cases[c].count; i++) {
            char l[64];
            zline(l, sizeof l, i);
            wl += (size_t)snprintf(want + wl, cap * 2 - wl, "%d %s\n", i, l);
        }
        CHECK_MSG(strcmp(r.out, want) == 0, "-o %s: got %d lines, expected %d from %d:\n%.300s",
                  cases[c].o, count_lines(r.out), cases[c].count, cases[c].first, r.out);
        CHECK_MSG(strstr(r.err, "Reached end of topic z [0] at offset 200") != NULL,
                  "-o %s stderr:\n%s", cases[c].o, r.err);
        if (strcmp(cases[c].o, "999") == 0)
            CHECK_MSG(strstr(r.err, "Offset out of range") != NULL,
                      "-o 999: no OFFSET_OUT_OF_RANGE reset reported:\n%s", r.err);
        run_free(&r);
    }

    /* The other codecs librdkafka has: stored verbatim, read back. */
    static const struct {
        const char *name, *topic;
        int codec;
    } codecs[] = {{"gzip", "zgzip", 1}, {"snappy", "zsnappy", 2}, {"zstd", "zzstd", 4}};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        produce(codecs[c].name, in, "-t", codecs[c].topic, "-z", codecs[c].name, "-X",
                "linger.ms=100", (const char *)NULL);
        check_stored_batches(codecs[c].topic, codecs[c].codec, 200);
        run_t r;
        kcat(&r, NULL, "-C", "-t", codecs[c].topic, "-e", "-f", "%s\n", "-X", "check.crcs=true",
             (const char *)NULL);
        ok_run(&r, codecs[c].name);
        CHECK_MSG(strcmp(r.out, in) == 0, "%s: %d lines back, not the 200 produced", codecs[c].name,
                  count_lines(r.out));
        run_free(&r);
    }
    free(in);
    free(want);
}

/* Parses "%p %o %s" lines of values "v<N>" into seen[N]++. Returns lines. */
static int parse_group_out(const char *out, int *seen, int max)
{
    int lines = 0;
    for (const char *p = out; *p;) {
        int part = -1, v = -1;
        long long off = -1;
        if (sscanf(p, "%d %lld v%d", &part, &off, &v) == 3 && v >= 0 && v < max)
            seen[v]++;
        else
            CHECK_MSG(0, "unexpected -G line: %.60s", p);
        lines++;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    return lines;
}

static void group_run(run_t *r)
{
    kcat(r, NULL, "-G", "kg", "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
         "-X", "heartbeat.interval.ms=500", "-e", "-f", "%p %o %s\n", "g", (const char *)NULL);
    ok_run(r, "-G");
}

static void test_group(void)
{
    int fd = kt_connect(h.kafka_port);
    CHECK_FATAL(fd >= 0);
    CHECK_EQ_INT(kt_create_topic(fd, 2, "g", 3, 1), 0);
    close(fd);
    char in[2048];
    size_t len = 0;
    for (int i = 0; i < 30; i++)
        len += (size_t)snprintf(in + len, sizeof in - len, "k%d:v%d\n", i, i);
    produce("group input", in, "-t", "g", "-K:", (const char *)NULL);

    int seen[64] = {0};
    run_t r;
    group_run(&r);
    int lines = parse_group_out(r.out, seen, 64);
    CHECK_MSG(lines == 30, "first -G run: %d lines\n%s\nstderr:\n%s", lines, r.out, r.err);
    for (int i = 0; i < 30; i++) CHECK_MSG(seen[i] == 1, "v%d consumed %d times", i, seen[i]);
    CHECK_MSG(strstr(r.err, "assigned: g [0], g [1], g [2]") != NULL, "stderr:\n%s", r.err);
    run_free(&r);

    len = 0;
    for (int i = 30; i < 40; i++)
        len += (size_t)snprintf(in + len, sizeof in - len, "k%d:v%d\n", i, i);
    produce("group input 2", in, "-t", "g", "-K:", (const char *)NULL);
    memset(seen, 0, sizeof seen);
    group_run(&r);
    lines = parse_group_out(r.out, seen, 64);
    CHECK_MSG(lines == 10, "second -G run: %d lines (expected only the 10 new)\n%s", lines, r.out);
    for (int i = 30; i < 40; i++) CHECK_MSG(seen[i] == 1, "v%d consumed %d times", i, seen[i]);
    run_free(&r);

    group_run(&r);
    CHECK_MSG(strcmp(r.out, "") == 0, "third -G run consumed:\n%s", r.out);
    run_free(&r);
}

/* A fatal check exits at once: do not leave the broker running. */
static void kill_broker(void)
{
    if (h.pid > 0) harness_stop(&h, SIGKILL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    harness_init(&h, "kafka-kcat");
    atexit(kill_broker);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK_FATAL(h.kafka_port > 0);
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", h.kafka_port);
    long long t0 = sl_mono_ms();

    test_list_empty();
    test_produce_consume();
    test_partition_flag();
    test_compressed();
    test_group();

    fprintf(stderr, "kcat cases took %lld ms\n", sl_mono_ms() - t0);
    CHECK(kill(h.pid, 0) == 0);
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced exit status 0x%x", st);
    harness_cleanup(&h);
    return check_exit();
}
