/* test_cli.c — the sluice CLI against the real sluiced, through pipes as a
 * script would use it: produce/consume round trips (plain, keys, JSON, -c),
 * topics create/list/describe/delete, groups list/describe with committed
 * offsets and lag, usage errors (exit 2), an unreachable broker (exit 1,
 * bounded time), --help everywhere (exit 0).
 *
 * Each run of the CLI is a fork/exec with stdin from a temp file and
 * stdout/stderr captured in temp files, killed after a deadline so a hang
 * is a failure and not a stuck test. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

#ifndef SLUICE_CLI_PATH
#error "SLUICE_CLI_PATH must name the sluice binary"
#endif

static harness_t h;
static char bootstrap[64];
static char *tmp;

typedef struct run {
    int status; /* exit code, or 128+signal, or -1 when killed at the deadline */
    char *out, *err;
    long long ms;
} run_t;

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Runs the CLI with argv (NULL-terminated, without argv[0]), input on stdin
 * (NULL: /dev/null), for at most timeout_ms. */
static run_t run_v(const char *input, int timeout_ms, const char *const *args)
{
    run_t r = {0};
    char in[512], out[512], err[512];
    snprintf(in, sizeof in, "%s/in", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(err, sizeof err, "%s/err", tmp);
    FILE *f = fopen(in, "w");
    CHECK_FATAL(f);
    if (input) fputs(input, f);
    fclose(f);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = SLUICE_CLI_PATH;
    for (size_t i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    long long t0 = sl_mono_ms();
    pid_t pid = fork();
    CHECK_FATAL(pid >= 0);
    if (pid == 0) {
        int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || fe < 0) _exit(127);
        dup2(fi, 0), dup2(fo, 1), dup2(fe, 2);
        execv(SLUICE_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (sl_mono_ms() - t0 > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            r.status = -1;
            goto done;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
done:
    r.ms = sl_mono_ms() - t0;
    r.out = check_slurp(out);
    r.err = check_slurp(err);
    if (r.status != 0 && getenv("TEST_CLI_VERBOSE"))
        fprintf(stderr, "[%s ...] exit %d\nstdout: %s\nstderr: %s\n", args[0], r.status, r.out,
                r.err);
    return r;
}

/* run(input, timeout, "arg", ..., NULL), with -b added after the command
 * words (the first args that do not start with '-'... callers put -b
 * themselves where needed via B). */
#define RUN(input, ...) run_v((input), 30000, (const char *const[]){__VA_ARGS__, NULL})
#define B               "-b", bootstrap

/* ---- a small JSON syntax checker (RFC 8259), enough to prove every line
 * the CLI prints is one valid object. */
static const char *js_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}
static const char *js_value(const char *s, int depth);
static const char *js_string(const char *s)
{
    if (*s++ != '"') return NULL;
    while (*s && *s != '"') {
        if ((unsigned char)*s < 0x20) return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i]) return NULL;
                s += 5;
                continue;
            }
            if (!*s || !strchr("\"\\/bfnrt", *s)) return NULL;
        }
        s++;
    }
    return *s == '"' ? s + 1 : NULL;
}
static const char *js_value(const char *s, int depth)
{
    if (depth > 32) return NULL;
    s = js_ws(s);
    if (*s == '"') return js_string(s);
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        s = js_ws(s + 1);
        if (*s == close) return s + 1;
        for (;;) {
            if (close == '}') {
                s = js_string(js_ws(s));
                if (!s) return NULL;
                s = js_ws(s);
                if (*s++ != ':') return NULL;
            }
            s = js_value(s, depth + 1);
            if (!s) return NULL;
            s = js_ws(s);
            if (*s == close) return s + 1;
            if (*s++ != ',') return NULL;
        }
    }
    if (strncmp(s, "null", 4) == 0) return s + 4;
    if (strncmp(s, "true", 4) == 0) return s + 4;
    if (strncmp(s, "false", 5) == 0) return s + 5;
    const char *b = s;
    if (*s == '-') s++;
    while (*s >= '0' && *s <= '9') s++;
    return s > b ? s : NULL;
}
static int json_line_ok(const char *line, size_t len)
{
    char *copy = strndup(line, len);
    const char *e = copy[0] == '{' ? js_value(copy, 0) : NULL;
    int ok = e && *js_ws(e) == '\0';
    free(copy);
    return ok;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_help_and_usage(void)
{
    const char *helps[][4] = {
        {"--help", NULL, NULL},       {"produce", "--help", NULL},     {"consume", "--help", NULL},
        {"topics", "--help", NULL},   {"topics", "create", "--help"},  {"topics", "list", "--help"},
        {"topics", "describe", "-h"}, {"topics", "delete", "--help"},  {"groups", "--help", NULL},
        {"groups", "list", "--help"}, {"groups", "describe", "--help"}};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        run_t r = run_v(NULL, 10000, helps[i]);
        CHECK_MSG(r.status == 0, "%s %s --help: exit %d", helps[i][0],
                  helps[i][1] ? helps[i][1] : "", r.status);
        CHECK(strstr(r.out, "Usage") != NULL);
        run_free(&r);
    }
    /* Usage errors: exit 2, a message naming the problem, nothing done. */
    struct {
        const char *args[8];
        const char *needle;
    } bad[] = {
        {{NULL}, "Usage"},
        {{"frobnicate"}, "unknown command"},
        {{"produce"}, "-t TOPIC is required"},
        {{"produce", "-t", "x", "--acks", "7"}, "acks"},
        {{"produce", "-t", "x", "--bogus"}, "unknown option"},
        {{"produce", "-t", "x", "-X", "no.such.key=1"}, "no.such.key"},
        {{"produce", "-t", "x", "-X", "novalue"}, "KEY=VALUE"},
        {{"consume", "-t", "x", "--format", "xml"}, "plain or json"},
        {{"consume", "-t", "x", "-o", "middle"}, "-o expects"},
        {{"consume", "-t", "x", "-g", "g", "-p", "0"}, "-p cannot be used with -g"},
        {{"consume", "-t", "x", "-c", "0"}, "-c expects"},
        {{"topics"}, "subcommand is required"},
        {{"topics", "rename"}, "unknown subcommand"},
        {{"topics", "create"}, "TOPIC is required"},
        {{"topics", "create", "t", "-P", "zero"}, "-P expects"},
        {{"topics", "create", "t", "-c", "noequals"}, "KEY=VALUE"},
        {{"topics", "list", "extra"}, "unexpected argument"},
        {{"groups", "describe"}, "GROUP is required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* The broker address must not matter: usage is checked first. */
        run_t r = run_v(NULL, 10000, bad[i].args);
        CHECK_MSG(r.status == 2, "case %zu (%s): exit %d", i, bad[i].needle, r.status);
        CHECK_MSG(strstr(r.err, bad[i].needle) != NULL, "case %zu: stderr \"%s\" lacks \"%s\"", i,
                  r.err, bad[i].needle);
        run_free(&r);
    }
}

static void test_topics(void)
{
    run_t r = RUN(NULL, "topics", "create", "tc", "-P", "3", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "topics", "create", "tc", "-P", "3", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "TOPIC_ALREADY_EXISTS") != NULL);
    run_free(&r);
    r = RUN(NULL, "topics", "create", "tcfg", "-c", "retention.ms=60000", "-c",
            "segment.bytes=1048576", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "topics", "create", "tbad", "-c", "no.such.config=1", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "no.such.config") != NULL);
    run_free(&r);

    r = RUN(NULL, "topics", "list", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK(strstr(r.out, "tc\t3\n") != NULL);
    CHECK(strstr(r.out, "tcfg\t1\n") != NULL);
    CHECK(strstr(r.out, "tbad") == NULL);
    run_free(&r);

    r = RUN(NULL, "topics", "describe", "tc", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK(strstr(r.out, "Partitions: 3") != NULL);
    CHECK(strstr(r.out, "\n2\t0\n") != NULL);
    run_free(&r);
    /* Describing an unknown topic fails and does not create it. */
    r = RUN(NULL, "topics", "describe", "nosuch", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "no such topic") != NULL);
    run_free(&r);
    r = RUN(NULL, "topics", "list", B);
    CHECK(strstr(r.out, "nosuch") == NULL);
    run_free(&r);

    r = RUN(NULL, "topics", "delete", "tcfg", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "topics", "delete", "tcfg", B);
    CHECK_EQ_INT(r.status, 1);
    run_free(&r);
    r = RUN(NULL, "topics", "describe", "tcfg", B);
    CHECK_EQ_INT(r.status, 1);
    run_free(&r);
}

static void test_produce_consume(void)
{
    run_t r = RUN(NULL, "topics", "create", "t", "-P", "1", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN("a\nb\n", "produce", "-t", "t", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(r.err[0] == '\0', "stderr not a terminal: no progress line, got \"%s\"", r.err);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "t", "-o", "beginning", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strcmp(r.out, "a\nb\n") == 0, "got \"%s\"", r.out);
    run_free(&r);

    /* -c: exactly COUNT messages, even though more are there. */
    r = RUN(NULL, "consume", "-t", "t", "-c", "1", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strcmp(r.out, "a\n") == 0, "got \"%s\"", r.out);
    run_free(&r);
    /* -o OFFSET */
    r = RUN(NULL, "consume", "-t", "t", "-o", "1", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strcmp(r.out, "b\n") == 0, "got \"%s\"", r.out);
    run_free(&r);

    /* Keys with -K, several partitions, acks=1 and lz4: each key lands in
     * its murmur2 partition and comes back with its value. */
    r = RUN(NULL, "topics", "create", "tk", "-P", "2", B);
    run_free(&r);
    r = RUN("k1:v1\nk2:v2:with:colons\nnokey\n", "produce", "-t", "tk", "-K", ":", "--acks", "1",
            "-z", "lz4", "--linger-ms", "0", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "tk", "-K", "=", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(count_lines(r.out), 3);
    CHECK(strstr(r.out, "k1=v1\n") != NULL);
    CHECK(strstr(r.out, "k2=v2:with:colons\n") != NULL);
    CHECK(strstr(r.out, "=nokey\n") != NULL);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "tk", "-p", "1", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);

    /* JSON: valid per line, escaped, non-UTF-8 bytes as \u00XX. */
    r = RUN(NULL, "topics", "create", "tj", "-P", "1", B);
    run_free(&r);
    r = RUN("key1|he said \"hi\"\\\tx\nplain\xff\x01 \xc3\xa9\n", "produce", "-t", "tj", "-K", "|",
            B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "tj", "-e", "--format", "json", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(count_lines(r.out), 2);
    int lines = 0;
    for (const char *s = r.out; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl) break;
        CHECK_MSG(json_line_ok(s, (size_t)(nl - s)), "invalid JSON: %.*s", (int)(nl - s), s);
        lines++;
        s = nl + 1;
    }
    CHECK_EQ_INT(lines, 2);
    CHECK(strstr(r.out, "{\"topic\":\"tj\",\"partition\":0,\"offset\":0,\"timestamp\":") == r.out);
    CHECK(strstr(r.out, "\"key\":\"key1\",\"value\":\"he said \\\"hi\\\"\\\\\\tx\"") != NULL);
    CHECK(strstr(r.out, "\"offset\":1,") != NULL);
    CHECK(strstr(r.out, "\"key\":null,\"value\":\"plain\\u00ff\\u0001 \xc3\xa9\"") != NULL);
    CHECK(strstr(r.out, "\"headers\":[]") != NULL);
    run_free(&r);

    /* A larger run: every line acknowledged, every line back in order. */
    size_t cap = 2000 * 16;
    char *big = malloc(cap), *want = big;
    size_t off = 0;
    for (int i = 0; i < 2000; i++) off += (size_t)snprintf(big + off, cap - off, "m%05d\n", i);
    r = RUN(NULL, "topics", "create", "tbig", "-P", "1", B);
    run_free(&r);
    r = RUN(big, "produce", "-t", "tbig", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "tbig", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK(strcmp(r.out, want) == 0);
    run_free(&r);
    free(big);

    /* Producing to a partition that does not exist fails, and says so. */
    r = RUN("x\n", "produce", "-t", "t", "-p", "5", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "UNKNOWN_PARTITION") != NULL);
    run_free(&r);
    /* Consuming a topic that does not exist fails at once. */
    r = RUN(NULL, "consume", "-t", "nope", "-e", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "no such topic") != NULL);
    run_free(&r);
}

/* Commits with generation -1, as a consumer outside the group protocol may
 * while the group has no members. */
static int commit_raw(const char *group, const char *topic, int32_t part, int64_t offset)
{
    sc_t c;
    if (sc_connect(&c, h.port) != 0) return -1;
    Sluice__OffsetCommitRequest m = SLUICE__OFFSET_COMMIT_REQUEST__INIT;
    Sluice__PartitionOffset po = SLUICE__PARTITION_OFFSET__INIT, *pp = &po;
    po.topic = (char *)topic;
    po.partition = part;
    po.offset = offset;
    po.metadata = "";
    m.group_id = (char *)group;
    m.generation_id = -1;
    m.member_id = "";
    m.offsets = &pp;
    m.n_offsets = 1;
    int code = -1;
    if (sc_send(&c, SLUICE__API_KEY__OFFSET_COMMIT, &m.base, NULL, 0)) {
        sl_response_t rs;
        if (sc_recv(&c, &rs) == 0) code = rs.hdr->error_code;
    }
    sc_close(&c);
    return code;
}

static void test_groups(void)
{
    /* Committed offsets without a consumer: describe shows them and the
     * lag against the log end. Topic t holds 2 messages. */
    CHECK_EQ_INT(commit_raw("graw", "t", 0, 1), 0);
    run_t r = RUN(NULL, "groups", "list", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strstr(r.out, "graw\tEmpty\t0\n") != NULL, "got \"%s\"", r.out);
    run_free(&r);
    r = RUN(NULL, "groups", "describe", "graw", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strstr(r.out, "State: Empty") != NULL, "got \"%s\"", r.out);
    CHECK_MSG(strstr(r.out, "\nt\t0\t1\t2\t1\n") != NULL, "got \"%s\"", r.out);
    run_free(&r);
    r = RUN(NULL, "groups", "describe", "nogroup", B);
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "no such group") != NULL);
    run_free(&r);

    /* A group consumes with the CLI and commits on exit: lag 0, then 1
     * after one more message, and the next run resumes after the commit. */
    r = RUN(NULL, "consume", "-t", "t", "-g", "gcli", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strcmp(r.out, "a\nb\n") == 0, "got \"%s\"", r.out);
    run_free(&r);
    r = RUN("c\n", "produce", "-t", "t", B);
    CHECK_EQ_INT(r.status, 0);
    run_free(&r);
    r = RUN(NULL, "groups", "list", B);
    CHECK(strstr(r.out, "gcli\t") != NULL);
    run_free(&r);
    r = RUN(NULL, "groups", "describe", "gcli", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strstr(r.out, "\nt\t0\t2\t3\t1\n") != NULL, "got \"%s\"", r.out);
    run_free(&r);
    r = RUN(NULL, "consume", "-t", "t", "-g", "gcli", "-e", B);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strcmp(r.out, "c\n") == 0, "got \"%s\"", r.out);
    run_free(&r);
    r = RUN(NULL, "groups", "describe", "gcli", B);
    CHECK_MSG(strstr(r.out, "\nt\t0\t3\t3\t0\n") != NULL, "got \"%s\"", r.out);
    run_free(&r);
}

static void test_unreachable(void)
{
    /* Port 1 on loopback refuses at once; every command must fail with a
     * message and exit 1 well within its timeouts. */
    const char *bad = "127.0.0.1:1";
    const char *cases[][12] = {
        {"topics", "list", "-b", bad, "-X", "request.timeout.ms=2000"},
        {"groups", "list", "-b", bad, "-X", "request.timeout.ms=2000"},
        {"produce", "-t", "t", "-b", bad, "-X", "request.timeout.ms=2000", "-X",
         "delivery.timeout.ms=2000", "-X", "max.block.ms=2000"},
        {"consume", "-t", "t", "-e", "-b", bad, "-X", "request.timeout.ms=2000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_t r = run_v("x\n", 15000, cases[i]);
        CHECK_MSG(r.status == 1, "%s: exit %d", cases[i][0], r.status);
        CHECK_MSG(strstr(r.err, "cannot connect") && strstr(r.err, bad), "%s: stderr \"%s\"",
                  cases[i][0], r.err);
        CHECK_MSG(r.ms < 5000, "%s took %lld ms", cases[i][0], r.ms);
        run_free(&r);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tmp = check_tmpdir("cli");
    test_help_and_usage();
    harness_init(&h, "cli");
    CHECK_FATAL(harness_start(
                    &h, (const char *const[]){"--group.initial.rebalance.delay.ms=0", NULL}) == 0);
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", h.port);
    test_topics();
    test_produce_consume();
    test_groups();
    test_unreachable();
    harness_cleanup(&h);
    check_rmtree(tmp);
    free(tmp);
    return check_exit();
}
