#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"

#ifndef SLUICED_PATH
#error "SLUICED_PATH must name the sluiced binary"
#endif

void harness_init(harness_t *h, const char *name)
{
    memset(h, 0, sizeof *h);
    char *d = check_tmpdir(name);
    snprintf(h->dir, sizeof h->dir, "%s", d);
    free(d);
    snprintf(h->data, sizeof h->data, "%s/data", h->dir);
    snprintf(h->log, sizeof h->log, "%s/sluiced.log", h->dir);
    h->pid = -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    size_t n;
    while (b && (n = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            } else {
                b = nb;
            }
        }
    }
    fclose(f);
    if (b) b[len] = 0;
    return b;
}

int harness_log_contains(const harness_t *h, const char *needle)
{
    char *s = slurp(h->log);
    int r = s && strstr(s, needle) != NULL;
    free(s);
    return r;
}

/* The port in the n-th "listening on" / "metrics on" line. */
static int find_port(const char *log, const char *marker, int nth)
{
    const char *p = log;
    int port = -1;
    for (int i = 0; i < nth; i++) {
        p = strstr(p, marker);
        if (!p) return -1;
        p += strlen(marker);
    }
    const char *colon = strchr(p, ':');
    if (colon) port = atoi(colon + 1);
    return port;
}

int harness_start(harness_t *h, const char *const *extra)
{
    const char *argv[64];
    int n = 0;
    char a1[400], a2[64], a3[64], a4[64];
    snprintf(a1, sizeof a1, "--log.dirs=%s", h->data);
    /* Restarts keep their ports, so clients can reconnect to the same one. */
    snprintf(a2, sizeof a2, "--listeners=127.0.0.1:%d", h->starts ? h->port : 0);
    snprintf(a3, sizeof a3, "--metrics.listener=127.0.0.1:%d", h->starts ? h->metrics_port : 0);
    snprintf(a4, sizeof a4, "--kafka.listeners=127.0.0.1:%d",
             h->starts && h->kafka_port > 0 ? h->kafka_port : 0);
    argv[n++] = SLUICED_PATH;
    argv[n++] = a1;
    argv[n++] = a2;
    argv[n++] = a3;
    argv[n++] = a4;
    for (int i = 0; extra && extra[i] && n < 62; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* A test that dies (a fatal check, a ctest timeout, an ASan abort)
         * must not leave its broker running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(SLUICED_PATH, (char *const *)argv);
        _exit(127);
    }
    h->pid = pid;
    h->starts++;
    long long deadline = sl_mono_ms() + 10000;
    while (sl_mono_ms() < deadline) {
        char *log = slurp(h->log);
        int port = log ? find_port(log, "listening on 127.0.0.1", h->starts) : -1;
        int mport = log ? find_port(log, "metrics on http://127.0.0.1", h->starts) : -1;
        /* The Kafka listener's line comes before "listening on"; it is
         * absent when a test disabled the listener. */
        int kport = log ? find_port(log, "kafka protocol on 127.0.0.1", h->starts) : -1;
        free(log);
        if (port > 0 && mport > 0) {
            h->port = port;
            h->metrics_port = mport;
            h->kafka_port = kport;
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            h->pid = -1;
            break;
        }
        poll(NULL, 0, 10);
    }
    char *log = slurp(h->log);
    fprintf(stderr, "sluiced did not start; its log:\n%s\n", log ? log : "(none)");
    free(log);
    if (h->pid > 0) harness_stop(h, SIGKILL);
    return -1;
}

int harness_stop(harness_t *h, int sig)
{
    if (h->pid <= 0) return -1;
    kill(h->pid, sig);
    int st = -1;
    long long deadline = sl_mono_ms() + 20000;
    while (waitpid(h->pid, &st, WNOHANG) == 0) {
        if (sl_mono_ms() > deadline) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &st, 0);
            break;
        }
        poll(NULL, 0, 5);
    }
    h->pid = -1;
    return st;
}

void harness_cleanup(harness_t *h)
{
    if (h->pid > 0) harness_stop(h, SIGKILL);
    if (getenv("SLUICE_KEEP_TMP") == NULL) check_rmtree(h->dir);
}

char *harness_metrics(const harness_t *h)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->metrics_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return NULL;
    }
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    ssize_t n;
    while (b && (n = read(fd, b + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) break;
            b = nb;
        }
    }
    close(fd);
    if (!b) return NULL;
    b[len] = 0;
    char *body = strstr(b, "\r\n\r\n");
    if (!body || strncmp(b, "HTTP/1.0 200", 12) != 0) {
        free(b);
        return NULL;
    }
    memmove(b, body + 4, strlen(body + 4) + 1);
    return b;
}

double harness_metric(const char *page, const char *series)
{
    size_t l = strlen(series);
    for (const char *p = page; p && *p;) {
        if (strncmp(p, series, l) == 0 && p[l] == ' ') return atof(p + l + 1);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}
