/* sluiced — the Sluice broker. Wiring only: configuration, signals, start,
 * stop. See docs/broker.md. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "verify.h"

static void usage(void)
{
    size_t n;
    const conf_def_t *t = broker_conf_table(&n);
    printf("usage: sluiced [--config FILE] [--key=value ...] [--dump-config] [--version] [--help]\n"
           "       sluiced --verify [--log.dirs=DIR]\n\n"
           "Starts the Sluice broker. Settings come from FILE (key=value lines), then from\n"
           "--key=value flags, which win. --verify checks every batch of every segment in\n"
           "log.dirs instead (the broker must be stopped) and exits 0 when all is well, 3 when\n"
           "a batch is corrupt, 1 on errors. Keys, with their defaults:\n\n");
    for (size_t i = 0; i < n; i++) {
        printf("  %-32s %s", t[i].name, t[i].def);
        if (t[i].values) printf("  (%s)", t[i].values);
        printf("\n      %s\n", t[i].doc);
    }
}

static void print_problem(void *arg, const verify_problem_t *p)
{
    (void)arg;
    printf("%s %s/%d %s batch at offset %lld (byte %llu, %llu bytes): %s\n",
           p->kind == VERIFY_CORRUPT ? "CORRUPT" : "TORN", p->topic, p->partition, p->segment,
           (long long)p->base_offset, (unsigned long long)p->position, (unsigned long long)p->bytes,
           p->reason);
}

/* sluiced --verify: exit 0 clean, 3 corrupt, 1 when the scan could not run. */
static int verify(const char *dir)
{
    verify_stats_t st;
    sl_err_t err;
    int rc = store_verify(dir, print_problem, NULL, &st, &err);
    if (rc != SL_OK) {
        fprintf(stderr, "sluiced --verify: %s\n", err.msg);
        return 1;
    }
    printf("verify: %s: %llu topics, %llu partitions, %llu segments, %llu batches, %llu bytes; "
           "%llu corrupt, %llu torn (unflushed tail: the next start truncates it)\n",
           dir, (unsigned long long)st.topics, (unsigned long long)st.partitions,
           (unsigned long long)st.segments, (unsigned long long)st.batches,
           (unsigned long long)st.bytes, (unsigned long long)st.corrupt,
           (unsigned long long)st.torn);
    return st.corrupt ? 3 : 0;
}

int main(int argc, char **argv)
{
    broker_conf_t conf;
    broker_conf_defaults(&conf);
    int action;
    sl_err_t err;
    if (broker_conf_from_args(&conf, argc, argv, &action, &err) != SL_OK ||
        broker_conf_check(&conf, &err) != SL_OK) {
        fprintf(stderr, "sluiced: %s\n", err.msg);
        return 2;
    }
    if (action == 1) {
        usage();
        return 0;
    }
    if (action == 2) {
        broker_conf_dump(&conf, 1);
        return 0;
    }
    if (action == 3) {
        printf("sluiced %s\n", SLUICE_VERSION_STRING);
        return 0;
    }
    if (action == 4) return verify(conf.log_dirs);
    log_level = (int)conf.log_level;

    /* Signals are taken synchronously by this thread; workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static broker_t b;
    if (broker_start(&b, &conf, &err) != SL_OK) {
        log_error("broker", "start-up failed: %s", err.msg);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    log_info("broker", "%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    broker_stop(&b);
    return 0;
}
