/* producer_example.c — the producer of docs/client.md: sends lines from
 * stdin (or N generated messages) to a topic and reports each delivery.
 *
 *   producer_example [bootstrap] [topic] [count]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

static int failed;

/* Called from sluice_producer_poll()/flush() on this (the main) thread. */
static void on_delivery(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    (void)opaque;
    if (m->err) {
        fprintf(stderr, "delivery failed: %s\n", sluice_err2str(m->err));
        failed++;
    } else {
        printf("delivered to %s [%d] at offset %lld\n", m->topic, (int)m->partition,
               (long long)m->offset);
    }
}

int main(int argc, char **argv)
{
    const char *bootstrap = argc > 1 ? argv[1] : "127.0.0.1:9292";
    const char *topic = argc > 2 ? argv[2] : "example";
    int count = argc > 3 ? atoi(argv[3]) : 10;
    char err[256];

    sluice_conf_t *conf = sluice_conf_new();
    if (!conf) return 1;
    if (sluice_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != SLUICE_CONF_OK ||
        sluice_conf_set(conf, "acks", "all", err, sizeof err) != SLUICE_CONF_OK ||
        sluice_conf_set(conf, "linger.ms", "10", err, sizeof err) != SLUICE_CONF_OK) {
        fprintf(stderr, "%s\n", err);
        sluice_conf_destroy(conf);
        return 1;
    }
    sluice_conf_set_dr_cb(conf, on_delivery);

    sluice_producer_t *p = sluice_producer_new(conf, err, sizeof err);
    if (!p) { /* conf is still ours on failure */
        fprintf(stderr, "producer: %s\n", err);
        sluice_conf_destroy(conf);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "key-%d", i % 4);
        snprintf(value, sizeof value, "message %d", i);
        int rc = sluice_produce(p, topic, SLUICE_PARTITION_UA, key, strlen(key), value,
                                strlen(value), NULL, 0, 0, NULL);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "produce: %s\n", sluice_err2str(rc));
            break;
        }
        sluice_producer_poll(p, 0); /* serve reports as they come */
    }
    if (sluice_producer_flush(p, 10000) != SLUICE_OK) fprintf(stderr, "flush timed out\n");
    sluice_producer_destroy(p); /* reports anything left with SLUICE_ERR__DESTROY */
    return failed ? 1 : 0;
}
