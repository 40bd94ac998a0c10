/* consumer_example.c — the consumer walk-through of docs/client.md: joins a
 * group, prints every message, commits after each processed batch of
 * messages, and leaves cleanly on Ctrl-C.
 *
 *   consumer_example [bootstrap] [group] [topic...]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sluice.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = argc > 1 ? argv[1] : "127.0.0.1:9292";
    const char *group = argc > 2 ? argv[2] : "example-group";
    const char *deftopic[] = {"example"};
    const char *const *topics = argc > 3 ? (const char *const *)argv + 3 : deftopic;
    size_t ntopics = argc > 3 ? (size_t)(argc - 3) : 1;
    char err[512];

    sluice_conf_t *conf = sluice_conf_new();
    if (!conf) return 1;
    if (sluice_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        sluice_conf_set(conf, "group.id", group, err, sizeof err) ||
        sluice_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err) ||
        /* commit ourselves, after processing: at-least-once */
        sluice_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        sluice_conf_destroy(conf);
        return 1;
    }
    sluice_consumer_t *c = sluice_consumer_new(conf, err, sizeof err);
    if (!c) { /* conf is still ours */
        fprintf(stderr, "consumer: %s\n", err);
        sluice_conf_destroy(conf);
        return 1;
    }
    int rc = sluice_consumer_subscribe(c, topics, ntopics);
    if (rc) {
        fprintf(stderr, "subscribe: %s\n", sluice_err2str(rc));
        sluice_consumer_destroy(c);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    long uncommitted = 0;
    while (!stop) {
        sluice_message_t *m = sluice_consumer_poll(c, 200);
        if (!m) { /* idle: commit what was processed */
            if (uncommitted && sluice_consumer_commit(c, NULL, 0) == SLUICE_OK) uncommitted = 0;
            continue;
        }
        if (m->err)
            fprintf(stderr, "%s [%d] @%lld: %s\n", m->topic, (int)m->partition,
                    (long long)m->offset, sluice_err2str(m->err));
        else
            printf("%s [%d] @%lld: %.*s\n", m->topic, (int)m->partition, (long long)m->offset,
                   (int)m->value_len, m->value ? (const char *)m->value : "");
        sluice_message_destroy(m);
        if (++uncommitted >= 1000 && sluice_consumer_commit(c, NULL, 1) == SLUICE_OK)
            uncommitted = 0; /* async: do not wait for the broker on the hot path */
    }
    sluice_consumer_commit(c, NULL, 0); /* sync: durable before we leave */
    sluice_consumer_close(c);           /* LeaveGroup: the others rebalance at once */
    sluice_consumer_destroy(c);
    return 0;
}
