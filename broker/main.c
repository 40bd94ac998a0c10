/* sluiced — the Sluice broker. Wiring only: configuration, signals, start,
 * stop. See docs/broker.md. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

static void usage(void)
{
    size_t n;
    const conf_def_t *t = broker_conf_table(&n);
    printf(
        "usage: sluiced [--config FILE] [--key=value ...] [--dump-config] [--version] [--help]\n\n"
        "Starts the Sluice broker. Settings come from FILE (key=value lines), then from\n"
        "--key=value flags, which win. Keys, with their defaults:\n\n");
    for (size_t i = 0; i < n; i++) {
        printf("  %-32s %s", t[i].name, t[i].def);
        if (t[i].values) printf("  (%s)", t[i].values);
        printf("\n      %s\n", t[i].doc);
    }
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
