/* test_config.c — sluiced's command line and config file, as a user meets
 * them: every unknown key, bad value, bad file line, missing file and stray
 * argument stops start-up with exit status 2 and a message that names the
 * culprit (and, for a misspelt key, the key that was meant); --help lists
 * every key; --dump-config prints every key of the table; a config file
 * really configures a running broker; a second broker on the same data
 * directory (or the same port) refuses to start while the first keeps
 * serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "conf.h"
#include "sclient.h"

#ifndef SLUICED_PATH
#error "SLUICED_PATH must name the sluiced binary"
#endif

static char *tmp; /* this test's directory */

/* ---- running sluiced ----------------------------------------------------- */

typedef struct run {
    int status; /* wait status; -1 when it had to be killed after the timeout */
    char *out;  /* stdout and stderr together, NUL-terminated */
} run_t;

/* Runs sluiced with args (NULL-terminated) and waits at most timeout_ms.
 * Every run gets a private log.dirs and ephemeral listeners first, so a
 * case that wrongly starts a broker cannot touch ./data or port 9292. */
static run_t run_args(int timeout_ms, const char *const *args)
{
    static int seq;
    char dirs[400], *argv[64];
    snprintf(dirs, sizeof dirs, "--log.dirs=%s/run%d", tmp, ++seq);
    int n = 0;
    argv[n++] = (char *)SLUICED_PATH;
    argv[n++] = dirs;
    argv[n++] = (char *)"--listeners=127.0.0.1:0";
    argv[n++] = (char *)"--metrics.listener=127.0.0.1:0";
    argv[n++] = (char *)"--kafka.listeners=127.0.0.1:0";
    for (int i = 0; args[i] && n < 62; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    run_t r = {-1, NULL};
    int pfd[2];
    CHECK_FATAL(pipe2(pfd, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CHECK_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execv(SLUICED_PATH, argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    CHECK_FATAL(buf != NULL);
    long long deadline = sl_mono_ms() + timeout_ms;
    int killed = 0;
    for (;;) {
        long long left = deadline - sl_mono_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = 1;
            left = 2000;
        }
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) {
            if (killed) break;
            continue;
        }
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap *= 2);
            CHECK_FATAL(nb != NULL);
            buf = nb;
        }
        ssize_t k = read(pfd[0], buf + len, cap - len - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(pfd[0]);
    buf[len] = 0;
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = killed ? -1 : st;
    r.out = buf;
    CHECK_MSG(!strstr(buf, "Sanitizer") && !strstr(buf, "runtime error"),
              "sanitizer report from sluiced:\n%s", buf);
    return r;
}

#define RUN(...) run_args(10000, (const char *const[]){__VA_ARGS__, NULL})

static int exit_code(const run_t *r)
{
    return r->status >= 0 && WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

/* Checks exit status 2 and that the output contains every needle
 * (NULL-terminated list). */
static void expect_fail_v(run_t r, const char *what, const char *const *needles)
{
    CHECK_MSG(exit_code(&r) == 2, "%s: exit status %d (wait 0x%x), output:\n%s", what,
              exit_code(&r), r.status, r.out);
    for (int i = 0; needles[i]; i++)
        CHECK_MSG(strstr(r.out, needles[i]) != NULL, "%s: output lacks \"%s\":\n%s", what,
                  needles[i], r.out);
    /* One line, prefixed with the program's name: no usage dump. */
    CHECK_MSG(strncmp(r.out, "sluiced: ", 9) == 0, "%s: output:\n%s", what, r.out);
    free(r.out);
}

#define expect_fail(r, what, ...) expect_fail_v(r, what, (const char *const[]){__VA_ARGS__, NULL})

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* ---- command-line errors ------------------------------------------------- */

static void test_unknown_keys(void)
{
    /* A misspelt key names itself and the key that was meant. */
    expect_fail(RUN("--segment.byte=5"), "--segment.byte", "\"segment.byte\"",
                "did you mean \"log.segment.bytes\"");
    expect_fail(RUN("--segment.bytes=5"), "--segment.bytes", "\"segment.bytes\"",
                "did you mean \"log.segment.bytes\"");
    expect_fail(RUN("--num.reactor=2"), "--num.reactor", "\"num.reactor\"",
                "did you mean \"num.reactors\"");
    expect_fail(RUN("--max.connection=9"), "--max.connection", "did you mean \"max.connections\"");
    expect_fail(RUN("--retention.ms=5"), "--retention.ms", "did you mean \"log.retention.ms\"");
    /* Nothing close: just the key, no far-fetched suggestion. */
    run_t r = RUN("--zzzzzzzzzzzz=1");
    CHECK_MSG(!strstr(r.out, "did you mean"), "%s", r.out);
    expect_fail(r, "--zzzzzzzzzzzz", "unknown config key \"zzzzzzzzzzzz\"");
    /* A bad key after good ones still fails; the first bad one is named. */
    expect_fail(RUN("--num.partitions=3", "--bogus.key=1", "--other.bogus=2"), "--bogus.key",
                "\"bogus.key\"");
}

static void test_bad_values(void)
{
    expect_fail(RUN("--num.reactors=abc"), "num.reactors=abc", "num.reactors", "\"abc\"", "0..64");
    /* 64 reactors at most (one bit each in a partition's watcher word):
     * more is a configuration error, not a silent clamp. */
    expect_fail(RUN("--num.reactors=65"), "num.reactors=65", "num.reactors", "\"65\"", "0..64");
    expect_fail(RUN("--num.reactors=300"), "num.reactors=300", "num.reactors", "300");
    expect_fail(RUN("--num.reactors=-1"), "num.reactors=-1", "num.reactors", "-1");
    expect_fail(RUN("--num.reactors="), "num.reactors=", "num.reactors");
    expect_fail(RUN("--num.reactors=2x"), "num.reactors=2x", "num.reactors", "2x");
    expect_fail(RUN("--max.request.size=99999999999999999999"), "max.request.size overflow",
                "max.request.size");
    expect_fail(RUN("--reactor.mode=sideways"), "reactor.mode=sideways", "reactor.mode",
                "\"sideways\"", "level|edge");
    expect_fail(RUN("--log.level=loud"), "log.level=loud", "log.level", "\"loud\"");
    expect_fail(RUN("--auto.create.topics.enable=yes"), "auto.create.topics.enable=yes",
                "auto.create.topics.enable", "\"yes\"", "true or false");
    /* host:port values: the message names the key and the bad value. */
    expect_fail(RUN("--listeners=nohostport"), "listeners=nohostport", "listeners",
                "\"nohostport\"", "host:port");
    expect_fail(RUN("--listeners=127.0.0.1:70000"), "listeners port 70000",
                "listeners: \"127.0.0.1:70000\"", "0..65535");
    expect_fail(RUN("--metrics.listener=bad"), "metrics.listener=bad", "metrics.listener",
                "\"bad\"");
    /* A batch may exceed log.segment.bytes (it gets a segment of its own, as
     * in Kafka): no cross-key rule there. Cross-key checks name both keys. */
    expect_fail(RUN("--max.request.size=40000", "--message.max.bytes=40000"),
                "max.request.size <= message.max.bytes", "max.request.size", "message.max.bytes");
    /* A string longer than its buffer. */
    char longdir[1500] = "--log.dirs=/tmp/";
    memset(longdir + strlen(longdir), 'd', 1400);
    longdir[sizeof longdir - 1] = 0;
    expect_fail(RUN(longdir), "log.dirs too long", "log.dirs");
}

static void test_arguments(void)
{
    expect_fail(RUN("foo"), "non-flag argument", "\"foo\"", "--key=value");
    expect_fail(RUN("-x"), "-x", "\"-x\"");
    expect_fail(RUN("--num.partitions"), "flag without =value", "\"--num.partitions\"");
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no-such.conf", tmp);
    expect_fail(RUN("--config", missing), "--config of a missing file", missing,
                "No such file or directory");
    expect_fail(RUN("--config"), "--config without a file", "--config needs a file name");
}

static void test_file_errors(void)
{
    char path[400];
    char needle[500];
    snprintf(path, sizeof path, "%s/bad1.conf", tmp);
    write_file(path, "# a comment\n\nnum.partitions = 3\nthis line has no equals sign\n");
    snprintf(needle, sizeof needle, "%s:4:", path);
    expect_fail(RUN("--config", path), "file line without =", needle, "expected key=value");

    snprintf(path, sizeof path, "%s/bad2.conf", tmp);
    write_file(path, "num.partitions=3\n  # indented comment\nsegment.bytes=5\n");
    snprintf(needle, sizeof needle, "%s:3:", path);
    expect_fail(RUN("--config", path), "unknown key in a file", needle, "\"segment.bytes\"",
                "log.segment.bytes");

    snprintf(path, sizeof path, "%s/bad3.conf", tmp);
    write_file(path, "log.level=info\nreactor.mode = diagonal\n");
    snprintf(needle, sizeof needle, "%s:2:", path);
    expect_fail(RUN("--config", path), "bad value in a file", needle, "reactor.mode",
                "\"diagonal\"");

    /* CRLF line ends are trimmed: line 1 is fine, line 2's value is named
     * without a stray \r. */
    snprintf(path, sizeof path, "%s/bad4.conf", tmp);
    write_file(path, "num.partitions=3\r\nlog.level=verbose\r\n");
    snprintf(needle, sizeof needle, "%s:2:", path);
    expect_fail(RUN("--config", path), "bad value in a CRLF file", needle,
                "log.level: \"verbose\" is not one of");

    /* A flag cannot rescue a broken file: the file's error is reported. */
    snprintf(path, sizeof path, "%s/bad5.conf", tmp);
    write_file(path, "num.reactors=many\n");
    snprintf(needle, sizeof needle, "%s:1:", path);
    expect_fail(RUN("--num.reactors=2", "--config", path), "broken file plus a flag", needle,
                "\"many\"");
}

/* ---- --help and --dump-config -------------------------------------------- */

static void test_help_and_dump(void)
{
    size_t n;
    const conf_def_t *t = broker_conf_table(&n);
    CHECK(n >= 20);

    run_t r = RUN("--help");
    CHECK_MSG(exit_code(&r) == 0, "--help: exit %d", exit_code(&r));
    CHECK(strstr(r.out, "usage: sluiced") != NULL);
    for (size_t i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "  %s ", t[i].name);
        CHECK_MSG(strstr(r.out, key) != NULL, "--help does not list %s", t[i].name);
        CHECK_MSG(strstr(r.out, t[i].doc) != NULL, "--help lacks the doc of %s", t[i].name);
    }
    CHECK(strstr(r.out, "listening on") == NULL); /* it did not start a broker */
    free(r.out);

    /* --dump-config (with only the run's own overrides): exactly one line per
     * table key, in table order, default values except for the overrides. */
    r = RUN("--dump-config");
    CHECK_MSG(exit_code(&r) == 0, "--dump-config: exit %d", exit_code(&r));
    size_t lines = 0;
    char *save = NULL;
    char *copy = strdup(r.out);
    CHECK_FATAL(copy != NULL);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        CHECK_MSG(eq != NULL, "--dump-config line without '=': %s", line);
        if (!eq) continue;
        if (lines < n) {
            const conf_def_t *d = &t[lines];
            CHECK_MSG(strncmp(line, d->name, strlen(d->name)) == 0 && line + strlen(d->name) == eq,
                      "--dump-config line %zu is \"%s\", expected key %s", lines + 1, line,
                      d->name);
            int overridden =
                strcmp(d->name, "log.dirs") == 0 || strcmp(d->name, "listeners") == 0 ||
                strcmp(d->name, "metrics.listener") == 0 || strcmp(d->name, "kafka.listeners") == 0;
            if (!overridden)
                CHECK_MSG(strcmp(eq + 1, d->def) == 0, "--dump-config: %s, default %s", line,
                          d->def);
        }
        lines++;
    }
    CHECK_EQ_INT(lines, n);
    CHECK(strstr(r.out, "listeners=127.0.0.1:0\n") != NULL);
    free(copy);
    free(r.out);

    /* A file plus flags: the flags win, wherever --config stands. */
    char path[400];
    snprintf(path, sizeof path, "%s/dump.conf", tmp);
    write_file(path, "num.partitions=3\nnum.reactors=3\nreactor.mode=level\n"
                     "produce.deep.validation=true\n");
    r = RUN("--num.partitions=7", "--dump-config", "--config", path);
    CHECK_EQ_INT(exit_code(&r), 0);
    CHECK(strstr(r.out, "\nnum.partitions=7\n") != NULL);
    CHECK(strstr(r.out, "\nnum.reactors=3\n") != NULL);
    CHECK(strstr(r.out, "\nreactor.mode=level\n") != NULL);
    CHECK(strstr(r.out, "\nproduce.deep.validation=true\n") != NULL);
    free(r.out);
}

/* ---- a broker configured by a file --------------------------------------- */

typedef struct proc {
    pid_t pid;
    char log[400];
    int port;
} proc_t;

/* Starts sluiced with argv (after the program name), output to p->log, and
 * waits (bounded) for its "listening on" line. 0 or -1 (it exited or hung). */
static int start_logged(proc_t *p, const char *log, const char *const *args)
{
    snprintf(p->log, sizeof p->log, "%s", log);
    p->port = -1;
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)SLUICED_PATH;
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    p->pid = fork();
    CHECK_FATAL(p->pid >= 0);
    if (p->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(SLUICED_PATH, argv);
        _exit(127);
    }
    long long deadline = sl_mono_ms() + 10000;
    while (sl_mono_ms() < deadline) {
        FILE *f = fopen(log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            char *at = strstr(line, "listening on 127.0.0.1:");
            if (at) p->port = atoi(at + strlen("listening on 127.0.0.1:"));
        }
        if (f) fclose(f);
        if (p->port > 0) return 0;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = -1;
            return -1;
        }
        poll(NULL, 0, 10);
    }
    return -1;
}

static int stop_proc(proc_t *p)
{
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st = -1;
    long long deadline = sl_mono_ms() + 20000;
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (sl_mono_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            break;
        }
        poll(NULL, 0, 5);
    }
    p->pid = -1;
    return st;
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* A produce + fetch round trip on topic t; 0 when it worked. */
static int round_trip(int port, const char *topic, int64_t expect_base)
{
    sc_t c;
    if (sc_connect(&c, port) != 0) return -1;
    size_t len;
    uint8_t *b = bg_simple(2, 30, 1, (uint32_t)expect_base, &len);
    int64_t base = -1;
    int rc = sc_produce(&c, topic, 0, 1, b, len, &base);
    const uint8_t *p;
    size_t n = 0;
    if (rc == 0) rc = sc_fetch(&c, topic, 0, base, 1 << 16, 0, 0, &p, &n, NULL);
    if (rc == 0 && (base != expect_base || n != len || memcmp(p + 8, b + 8, len - 8) != 0)) rc = -2;
    free(b);
    sc_close(&c);
    return rc;
}

static void test_config_file_broker(void)
{
    char data[400], conf[400], log1[400], log2[400], log3[400], text[1200];
    snprintf(data, sizeof data, "%s/filedata", tmp);
    snprintf(conf, sizeof conf, "%s/broker.conf", tmp);
    snprintf(log1, sizeof log1, "%s/first.log", tmp);
    snprintf(log2, sizeof log2, "%s/second.log", tmp);
    snprintf(log3, sizeof log3, "%s/third.log", tmp);
    snprintf(text, sizeof text,
             "# sluiced test configuration\n"
             "log.dirs = %s\n"
             "listeners=127.0.0.1:9\n" /* overridden by the flag */
             "metrics.listener=\n"
             "kafka.listeners=\n" /* disabled: no second listener */
             "num.reactors=2\n"
             "reactor.mode=level\n"
             "num.partitions=3\n"
             "log.segment.bytes=65536\n"
             "message.max.bytes=32768\n",
             data);
    write_file(conf, text);
    proc_t first;
    const char *args1[] = {"--config", conf, "--listeners=127.0.0.1:0", NULL};
    int started = start_logged(&first, log1, args1);
    CHECK_MSG(started == 0, "sluiced --config did not start");
    if (started != 0) {
        char cmd[500];
        snprintf(cmd, sizeof cmd, "cat %s >&2", log1);
        CHECK(system(cmd) >= 0);
        return;
    }
    /* The file's settings are in force. */
    CHECK(file_contains(log1, "2 level-triggered reactors"));
    CHECK(!file_contains(log1, "metrics on"));
    CHECK_EQ_INT(round_trip(first.port, "viafile", 0), 0);
    char tdir[600];
    snprintf(tdir, sizeof tdir, "%s/topics/viafile", data); /* log.dirs from the file */
    struct stat sb;
    CHECK_MSG(stat(tdir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s missing", tdir);
    {
        /* num.partitions=3 from the file: partitions 0..2 of the auto-created topic. */
        sc_t c;
        CHECK_FATAL(sc_connect(&c, first.port) == 0);
        int64_t off;
        CHECK_EQ_INT(sc_list_offsets(&c, "viafile", 2, -1, &off), 0);
        CHECK_EQ_INT(sc_list_offsets(&c, "viafile", 3, -1, &off),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        sc_close(&c);
    }
    {
        /* message.max.bytes=32768 from the file: a 40 KB batch is refused. */
        sc_t c;
        CHECK_FATAL(sc_connect(&c, first.port) == 0);
        size_t len;
        uint8_t *b = bg_simple(1, 40000, 1, 1, &len);
        int64_t base;
        CHECK_EQ_INT(sc_produce(&c, "viafile", 1, 1, b, len, &base), SL_ERR_MESSAGE_TOO_LARGE);
        free(b);
        sc_close(&c);
    }

    /* A second broker on the same data directory refuses to start... */
    char dirflag[500];
    snprintf(dirflag, sizeof dirflag, "--log.dirs=%s", data);
    run_t r = RUN(dirflag);
    CHECK_MSG(exit_code(&r) > 0, "second broker on the same data dir: exit %d (wait 0x%x):\n%s",
              exit_code(&r), r.status, r.out);
    CHECK_MSG(strstr(r.out, "in use by another process") && strstr(r.out, ".lock"),
              "second broker's message:\n%s", r.out);
    CHECK(strstr(r.out, "listening on") == NULL);
    free(r.out);
    /* ... also when started from the same file. */
    proc_t second;
    const char *args2[] = {"--config", conf, "--listeners=127.0.0.1:0", NULL};
    CHECK_MSG(start_logged(&second, log2, args2) == -1, "a second broker started on %s", data);
    if (second.pid > 0) stop_proc(&second);
    CHECK(file_contains(log2, "in use by another process"));
    /* ... and the first keeps serving, its data intact. */
    CHECK_EQ_INT(round_trip(first.port, "viafile", 2), 0);

    /* A second broker on the first one's port (another data dir) must not
     * start either: it would silently take half of the connections. */
    char portflag[64], otherdir[500];
    snprintf(portflag, sizeof portflag, "--listeners=127.0.0.1:%d", first.port);
    snprintf(otherdir, sizeof otherdir, "--log.dirs=%s/otherdata", tmp);
    proc_t third;
    const char *args3[] = {otherdir, portflag, "--metrics.listener=", NULL};
    int third_started = start_logged(&third, log3, args3);
    CHECK_MSG(third_started == -1, "a second broker started on port %d, in use by the first",
              first.port);
    if (third.pid > 0) {
        int st = stop_proc(&third);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "third broker: exit 0x%x", st);
    } else {
        CHECK(file_contains(log3, "cannot listen on 127.0.0.1"));
    }
    CHECK_EQ_INT(round_trip(first.port, "viafile", 4), 0);

    int st = stop_proc(&first);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "first broker: SIGTERM exit 0x%x", st);
    CHECK(file_contains(log1, "clean shutdown"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tmp = check_tmpdir("it-config");
    long long t0 = sl_mono_ms();
    test_unknown_keys();
    test_bad_values();
    test_arguments();
    test_file_errors();
    test_help_and_dump();
    test_config_file_broker();
    fprintf(stderr, "test_config: %lld ms\n", sl_mono_ms() - t0);
    if (getenv("SLUICE_KEEP_TMP") == NULL) check_rmtree(tmp);
    free(tmp);
    return check_exit();
}
