/* test_etcd.c — broker/etcd.c against a real etcd that this test starts on
 * ephemeral 127.0.0.1 ports in a temp dir and stops at the end. Skips
 * (exit 0) only when no etcd binary is installed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"

static int g_fail;
static pid_t g_etcd = -1;
static char g_dir[] = "/tmp/test_etcd.XXXXXX";

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            g_fail = 1;                                                                            \
        }                                                                                          \
    } while (0)
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != SL_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #call, rc_, err.msg);    \
            g_fail = 1;                                                                            \
        }                                                                                          \
    } while (0)

/* A port nothing listens on now: bind port 0, read it, close. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int have_etcd(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path) path = "/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *c = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, sizeof(buf), "%.*s/etcd", (int)n, p);
        if (access(buf, X_OK) == 0) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

static void stop_etcd(void)
{
    if (g_etcd > 0) {
        kill(g_etcd, SIGTERM);
        waitpid(g_etcd, NULL, 0);
        g_etcd = -1;
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

static void start_etcd(int cport, int pport)
{
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char data[300], curl[64], purl[64], init[80], log[300];
    snprintf(data, sizeof(data), "%s/data", g_dir);
    snprintf(log, sizeof(log), "%s/etcd.log", g_dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cport);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
    snprintf(init, sizeof(init), "t=%s", purl);
    g_etcd = fork();
    if (g_etcd < 0) {
        perror("fork");
        exit(1);
    }
    if (g_etcd == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("etcd", "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls", curl,
               "--advertise-client-urls", curl, "--listen-peer-urls", purl,
               "--initial-advertise-peer-urls", purl, "--initial-cluster", init, (char *)NULL);
        _exit(127);
    }
}

/* Waits until etcd answers a range read (up to 30 s), polling. */
static int wait_ready(etcd_t *e)
{
    sl_err_t err = {0};
    for (int i = 0; i < 600; i++) {
        etcd_kvs_t kvs;
        int rc = etcd_get(e, "ready", 5, 0, &kvs, &err);
        etcd_kvs_free(&kvs);
        if (rc == SL_OK) return 1;
        if (waitpid(g_etcd, NULL, WNOHANG) == g_etcd) {
            g_etcd = -1;
            fprintf(stderr, "etcd exited early; see %s/etcd.log\n", g_dir);
            return 0;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "etcd did not answer in 30 s: %s\n", err.msg);
    return 0;
}

static void test_kv(etcd_t *e)
{
    sl_err_t err = {0};
    int64_t rev1 = 0, rev2 = 0, n = 0;
    /* binary-safe key and value: NUL and 0xff bytes */
    static const char bkey[] = {'b', 0, (char)0xff, 'k'};
    static const char bval[] = {0, 1, 2, (char)0xff, 'v'};
    CHECK_OK(etcd_put(e, bkey, sizeof(bkey), bval, sizeof(bval), 0, &rev1, &err));
    CHECK(rev1 > 0);
    etcd_kvs_t kvs;
    CHECK_OK(etcd_get(e, bkey, sizeof(bkey), 0, &kvs, &err));
    CHECK(kvs.n == 1 && kvs.revision >= rev1);
    if (kvs.n == 1) {
        CHECK(kvs.kv[0].klen == sizeof(bkey) && memcmp(kvs.kv[0].key, bkey, sizeof(bkey)) == 0);
        CHECK(kvs.kv[0].vlen == sizeof(bval) && memcmp(kvs.kv[0].value, bval, sizeof(bval)) == 0);
        CHECK(kvs.kv[0].mod_revision == rev1 && kvs.kv[0].create_revision == rev1 &&
              kvs.kv[0].version == 1);
        CHECK(kvs.kv[0].lease == 0);
    }
    etcd_kvs_free(&kvs);

    /* empty value, then a second version */
    CHECK_OK(etcd_put(e, "p/a", 3, "", 0, 0, NULL, &err));
    CHECK_OK(etcd_put(e, "p/a", 3, "1", 1, 0, &rev2, &err));
    CHECK_OK(etcd_put(e, "p/b", 3, "2", 1, 0, NULL, &err));
    CHECK_OK(etcd_put(e, "p0", 2, "outside", 7, 0, NULL, &err)); /* '0' = '/' + 1: not in p/ */
    CHECK_OK(etcd_get(e, "p/", 2, 1, &kvs, &err));
    CHECK(kvs.n == 2);
    if (kvs.n == 2) {
        CHECK(kvs.kv[0].klen == 3 && memcmp(kvs.kv[0].key, "p/a", 3) == 0 &&
              kvs.kv[0].version == 2);
        CHECK(kvs.kv[0].mod_revision == rev2 && kvs.kv[0].vlen == 1 && kvs.kv[0].value[0] == '1');
        CHECK(kvs.kv[1].klen == 3 && memcmp(kvs.kv[1].key, "p/b", 3) == 0);
    }
    etcd_kvs_free(&kvs);

    /* a missing key is an empty result, not an error */
    CHECK_OK(etcd_get(e, "nope", 4, 0, &kvs, &err));
    CHECK(kvs.n == 0 && kvs.revision > 0);
    etcd_kvs_free(&kvs);

    CHECK_OK(etcd_delete(e, "p/", 2, 1, &n, &err));
    CHECK(n == 2);
    CHECK_OK(etcd_get(e, "p", 1, 1, &kvs, &err));
    CHECK(kvs.n == 1 && kvs.n == 1 && kvs.kv[0].klen == 2); /* only p0 left */
    etcd_kvs_free(&kvs);
    CHECK_OK(etcd_delete(e, "p0", 2, 0, &n, &err));
    CHECK(n == 1);
    CHECK_OK(etcd_delete(e, "p0", 2, 0, &n, &err));
    CHECK(n == 0);
}

static void test_cas(etcd_t *e)
{
    sl_err_t err = {0};
    int ok = -1;
    int64_t rev = 0, rev2 = 0;
    /* create-only: succeeds once, then fails */
    CHECK_OK(etcd_txn_cas(e, "cas", 3, 0, "v1", 2, 0, &ok, &rev, &err));
    CHECK(ok == 1 && rev > 0);
    CHECK_OK(etcd_txn_cas(e, "cas", 3, 0, "v1b", 3, 0, &ok, NULL, &err));
    CHECK(ok == 0);
    /* set on the current mod_revision succeeds; the stale one then fails */
    CHECK_OK(etcd_txn_cas(e, "cas", 3, rev, "v2", 2, 0, &ok, &rev2, &err));
    CHECK(ok == 1 && rev2 > rev);
    CHECK_OK(etcd_txn_cas(e, "cas", 3, rev, "v3", 2, 0, &ok, NULL, &err));
    CHECK(ok == 0);
    etcd_kvs_t kvs;
    CHECK_OK(etcd_get(e, "cas", 3, 0, &kvs, &err));
    CHECK(kvs.n == 1 && kvs.kv[0].vlen == 2 && memcmp(kvs.kv[0].value, "v2", 2) == 0);
    CHECK(kvs.n == 1 && kvs.kv[0].mod_revision == rev2);
    etcd_kvs_free(&kvs);
}

static void test_lease(etcd_t *e)
{
    sl_err_t err = {0};
    int64_t id = 0, ttl = 0;
    CHECK_OK(etcd_lease_grant(e, 30, &id, &err));
    CHECK(id != 0);
    CHECK_OK(etcd_put(e, "leased", 6, "x", 1, id, NULL, &err));
    int ok = -1;
    CHECK_OK(etcd_txn_cas(e, "leased2", 7, 0, "y", 1, id, &ok, NULL, &err));
    CHECK(ok == 1);
    etcd_kvs_t kvs;
    CHECK_OK(etcd_get(e, "leased", 6, 1, &kvs, &err));
    CHECK(kvs.n == 2 && kvs.kv[0].lease == id && kvs.kv[1].lease == id);
    etcd_kvs_free(&kvs);
    CHECK_OK(etcd_lease_keepalive(e, id, &ttl, &err));
    CHECK(ttl > 0 && ttl <= 30);
    CHECK_OK(etcd_lease_revoke(e, id, &err));
    CHECK_OK(etcd_get(e, "leased", 6, 1, &kvs, &err));
    CHECK(kvs.n == 0);
    etcd_kvs_free(&kvs);
    /* a revoked lease: keepalive says NOT_FOUND, a put on it fails */
    CHECK(etcd_lease_keepalive(e, id, &ttl, &err) == SL_ERR_NOT_FOUND);
    CHECK(etcd_put(e, "leased", 6, "x", 1, id, NULL, &err) == SL_ERR_UNKNOWN);
    CHECK(strstr(err.msg, "lease") != NULL);
}

/* Collects events until n are in hand (or a 10 s wait fails). */
static size_t collect(etcd_watch_t *w, etcd_event_t *out, size_t n)
{
    size_t got = 0;
    sl_err_t err = {0};
    while (got < n) {
        etcd_events_t evs;
        int rc = etcd_watch_next(w, 10000, &evs, &err);
        if (rc != SL_OK) {
            fprintf(stderr, "watch_next: %d (%s)\n", rc, err.msg);
            etcd_events_free(&evs);
            break;
        }
        for (size_t i = 0; i < evs.n; i++) {
            if (got < n) {
                out[got] = evs.ev[i];
                got++;
            } else {
                free(evs.ev[i].kv.key);
                free(evs.ev[i].kv.value);
            }
        }
        free(evs.ev);
    }
    return got;
}

static void free_events(etcd_event_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ev[i].kv.key);
        free(ev[i].kv.value);
    }
}

static void test_watch(etcd_t *e)
{
    sl_err_t err = {0};
    int64_t r0 = 0, r1 = 0;
    /* a change before the watch: seen only by a watch from an older revision */
    CHECK_OK(etcd_put(e, "w/old", 5, "o", 1, 0, &r0, &err));
    etcd_watch_t *w = NULL;
    CHECK_OK(etcd_watch_open(e, "w/", 2, 1, 0, &w, &err));
    if (!w) return;
    /* nothing yet: a timeout, and the watch stays usable */
    etcd_events_t evs;
    CHECK(etcd_watch_next(w, 200, &evs, &err) == SL_ERR_REQUEST_TIMED_OUT);
    etcd_events_free(&evs);
    CHECK_OK(etcd_put(e, "w/a", 3, "va", 2, 0, &r1, &err));
    CHECK_OK(etcd_put(e, "x/other", 7, "no", 2, 0, NULL, &err)); /* outside the prefix */
    CHECK_OK(etcd_delete(e, "w/a", 3, 0, NULL, &err));
    etcd_event_t ev[3];
    size_t n = collect(w, ev, 2);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(ev[0].type == ETCD_EVENT_PUT && ev[0].kv.klen == 3 &&
              memcmp(ev[0].kv.key, "w/a", 3) == 0);
        CHECK(ev[0].kv.vlen == 2 && memcmp(ev[0].kv.value, "va", 2) == 0 &&
              ev[0].kv.mod_revision == r1);
        CHECK(ev[1].type == ETCD_EVENT_DELETE && ev[1].kv.klen == 3 &&
              memcmp(ev[1].kv.key, "w/a", 3) == 0);
        CHECK(ev[1].kv.mod_revision > r1);
    }
    free_events(ev, n);
    etcd_watch_close(w);

    /* from r0: the put made before the watch, then the two above */
    w = NULL;
    CHECK_OK(etcd_watch_open(e, "w/", 2, 1, r0, &w, &err));
    if (!w) return;
    n = collect(w, ev, 3);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(ev[0].type == ETCD_EVENT_PUT && ev[0].kv.klen == 5 &&
              memcmp(ev[0].kv.key, "w/old", 5) == 0);
        CHECK(ev[0].kv.mod_revision == r0);
        CHECK(ev[1].type == ETCD_EVENT_PUT && ev[1].kv.mod_revision == r1);
        CHECK(ev[2].type == ETCD_EVENT_DELETE);
    }
    free_events(ev, n);
    etcd_watch_close(w);

    /* a single-key watch does not see a sibling */
    w = NULL;
    CHECK_OK(etcd_watch_open(e, "w/k", 3, 0, 0, &w, &err));
    if (!w) return;
    CHECK_OK(etcd_put(e, "w/k2", 4, "s", 1, 0, NULL, &err));
    CHECK_OK(etcd_put(e, "w/k", 3, "k", 1, 0, NULL, &err));
    n = collect(w, ev, 1);
    CHECK(n == 1 && ev[0].kv.klen == 3 && memcmp(ev[0].kv.key, "w/k", 3) == 0);
    free_events(ev, n);
    etcd_watch_close(w);
}

/* No etcd on a port: a clear error naming the endpoint. Then a second
 * endpoint that works: the client moves on to it. */
static void test_unreachable(const char *good)
{
    sl_err_t err = {0};
    char eps[200];
    int dead = free_port();
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", dead);
    etcd_t *e = etcd_new(eps, 2000, &err);
    CHECK(e != NULL);
    CHECK(etcd_put(e, "k", 1, "v", 1, 0, NULL, &err) == SL_ERR_UNKNOWN);
    CHECK(strstr(err.msg, eps) != NULL);
    fprintf(stderr, "expected error: %s\n", err.msg);
    etcd_free(e);

    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d,%s", dead, good);
    e = etcd_new(eps, 2000, &err);
    CHECK(e != NULL);
    CHECK_OK(etcd_put(e, "k", 1, "v", 1, 0, NULL, &err));
    etcd_free(e);

    etcd_watch_t *w = NULL;
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", dead);
    e = etcd_new(eps, 2000, &err);
    CHECK(etcd_watch_open(e, "k", 1, 0, 0, &w, &err) == SL_ERR_UNKNOWN && w == NULL);
    CHECK(strstr(err.msg, eps) != NULL);
    etcd_free(e);

    CHECK(etcd_new("", 1000, &err) == NULL && err.code == SL_ERR_INVALID_ARG);
    CHECK(etcd_new(",,", 1000, &err) == NULL && err.code == SL_ERR_INVALID_ARG);
}

int main(void)
{
    if (!have_etcd()) {
        printf("SKIP test_etcd: no etcd binary on PATH (Debian package etcd-server; make deps "
               "installs it)\n");
        return 0;
    }
    int cport = free_port(), pport = free_port();
    while (pport == cport) pport = free_port();
    start_etcd(cport, pport);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", cport);
    sl_err_t err = {0};
    etcd_t *e = etcd_new(ep, 5000, &err);
    if (!e || !wait_ready(e)) {
        fprintf(stderr, "FAIL: etcd not usable: %s\n", err.msg);
        etcd_free(e);
        stop_etcd();
        return 1;
    }
    test_kv(e);
    test_cas(e);
    test_lease(e);
    test_watch(e);
    test_unreachable(ep);
    etcd_free(e);
    stop_etcd();
    printf("test_etcd: %s\n", g_fail ? "FAILED" : "ok");
    return g_fail;
}
