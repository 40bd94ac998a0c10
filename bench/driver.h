/* driver.h — what sluice-bench needs from a messaging system. One driver per
 * system: Sluice through libsluice (drv_sluice.c), Kafka (and Sluice's Kafka
 * listener) through librdkafka (drv_kafka.c), RabbitMQ through rabbitmq-c
 * (drv_rabbitmq.c). The harness (sluice_bench.c) runs the same workload
 * through any of them and measures: it stamps every payload with a seqcheck
 * header (producer id, sequence, send time) and measures end-to-end latency
 * and loss at the consumer.
 *
 * Threads: each producer and each consumer handle is used by exactly one
 * harness thread; a driver may start threads of its own (librdkafka does).
 * Errors: functions returning int give 0 on success, -1 on failure with a
 * message in the caller's buffer (err, errlen) where one is taken.
 */
#ifndef SLUICE_BENCH_DRIVER_H
#define SLUICE_BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "workload.h"

typedef struct drv_producer drv_producer_t;
typedef struct drv_consumer drv_consumer_t;

/* Called by a consumer for each message received: the partition (queue
 * index for RabbitMQ) and the payload, valid only during the call. */
typedef void (*drv_message_fn)(void *arg, int partition, const void *payload, size_t len);

typedef struct bench_driver {
    const char *name; /* "sluice", "sluice-kafka", "kafka", "rabbitmq" */

    /* Creates the topic (or queues) for the workload: w->partitions
     * partitions / queues, deleting an existing one of the same name first
     * so every run starts empty. */
    int (*setup)(const workload_t *w, const char *topic, char *err, size_t errlen);

    /* Deletes what setup made (best effort). */
    void (*teardown)(const workload_t *w, const char *topic);

    /* A producer with the workload's acks, batch.size, linger.ms and
     * compression (as far as the system has them; say so in its comment). */
    drv_producer_t *(*producer_new)(const workload_t *w, const char *topic, int id, char *err,
                                    size_t errlen);

    /* Sends one message to `partition` (a queue for RabbitMQ), asynchronously
     * where the client allows. May block for the client's own backpressure.
     * Returns 0, or -1 if the message was refused at once. */
    int (*produce)(drv_producer_t *p, int partition, const void *payload, size_t len);

    /* Serves acknowledgements for up to timeout_ms. */
    void (*poll)(drv_producer_t *p, int timeout_ms);

    /* Waits until everything sent is acknowledged (or failed), at most
     * timeout_ms. Returns 0 or -1 on timeout. */
    int (*flush)(drv_producer_t *p, int timeout_ms);

    /* Messages acknowledged (acks=0: sent) and failed so far. */
    void (*producer_counts)(drv_producer_t *p, uint64_t *acked, uint64_t *failed);

    void (*producer_free)(drv_producer_t *p);

    /* Consumer `id` of `n` consumers sharing the topic's partitions (or
     * queues) from the beginning: a consumer group for Kafka and Sluice,
     * queues split by index for RabbitMQ. */
    drv_consumer_t *(*consumer_new)(const workload_t *w, const char *topic, int id, int n,
                                    char *err, size_t errlen);

    /* Receives for up to timeout_ms, calling fn for each message. Returns
     * the number of messages delivered, or -1 on a fatal error. */
    long (*consume)(drv_consumer_t *c, int timeout_ms, drv_message_fn fn, void *arg);

    void (*consumer_free)(drv_consumer_t *c);

    /* The broker's process id (to sample its CPU time and RSS from /proc), or
     * 0 when unknown. */
    pid_t (*broker_pid)(const workload_t *w);
} bench_driver_t;

extern const bench_driver_t drv_sluice;   /* libsluice, Sluice's protocol */
extern const bench_driver_t drv_kafka;    /* librdkafka: Kafka, or Sluice's Kafka listener */
extern const bench_driver_t drv_rabbitmq; /* rabbitmq-c */

/* The consumer group id of this run's consumers: the same for all of them
 * (so they split the partitions) and new for every run (so no offset
 * committed by an earlier run moves the start away from the beginning).
 * Call first from one thread before consumers start. Static storage. */
const char *driver_group_id(const char *topic);

/* The driver for a workload's system, or NULL. */
const bench_driver_t *driver_for(workload_system_t system);

#endif
