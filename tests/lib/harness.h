/* harness.h — starts the real sluiced for integration tests: a temp
 * directory, ephemeral ports on 127.0.0.1, stderr captured to a log file
 * that the harness watches for the "listening on" line (no sleeps), and a
 * stop with SIGTERM or SIGKILL followed by waitpid.
 *
 * Single-threaded use. Every wait is bounded (10 s by default).
 */
#ifndef SLUICE_TESTS_HARNESS_H
#define SLUICE_TESTS_HARNESS_H

#include <sys/types.h>

typedef struct harness {
    pid_t pid;
    char dir[256]; /* temp dir: data/ and sluiced.log inside */
    char data[300];
    char log[300];
    int port; /* Sluice's protocol */
    int metrics_port;
    int kafka_port; /* the Kafka listener; -1 when disabled (--kafka.listeners=) */
    int starts;     /* how many times started (log lines of earlier runs are skipped) */
} harness_t;

/* Creates the temp dir (name is for the dir's name). */
void harness_init(harness_t *h, const char *name);

/* Starts sluiced with the harness's flags (data dir, and every listener on
 * an ephemeral 127.0.0.1 port: Sluice's, the metrics page and the Kafka
 * listener) plus extra "--key=value" args (NULL-terminated list, may be
 * NULL; they come last, so they override). Returns 0 once it listens, -1 if it
 * exited or did not listen within 10 s (the log is printed to stderr). */
int harness_start(harness_t *h, const char *const *extra);

/* Sends sig (SIGTERM, SIGKILL) and waits; returns the wait status, or -1. */
int harness_stop(harness_t *h, int sig);

/* Stops if running (SIGKILL) and removes the temp dir. */
void harness_cleanup(harness_t *h);

/* 1 if the log (all runs) contains `needle`. */
int harness_log_contains(const harness_t *h, const char *needle);

/* GET /metrics; returns a malloc'd body or NULL. */
char *harness_metrics(const harness_t *h);

/* Value of one metric line "name{labels} value" (exact text before the
 * value), or -1 when absent. */
double harness_metric(const char *page, const char *series);

#endif
