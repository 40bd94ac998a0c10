/* workload.h — the workload of one sluice-bench run: its options, their
 * defaults and checks, and its rendering as JSON and as a one-line summary.
 *
 * The same workload drives every system, so results compare like with like.
 * Flags (each also as --flag=VALUE):
 *   --system sluice|sluice-kafka|kafka|rabbitmq  (sluice-kafka = sluiced's
 *                                Kafka listener, driven by librdkafka)
 *   --message-size BYTES        24 (the seqcheck header) .. 16M     [100]
 *   --producers N               1..1024                              [1]
 *   --consumers N               0..1024 (0 = produce only)           [1]
 *   --partitions N              1..10000; queues for RabbitMQ        [1]
 *   --acks 0|1|all              (-1 = all, Kafka's spelling)         [1]
 *   --batch-size BYTES          0..256M                              [16K]
 *   --linger-ms N               0..60000                             [5]
 *   --compression none|lz4      lz4 not with rabbitmq                [none]
 *   --duration SECONDS          1..86400, excludes --messages        [10]
 *   --messages N                1..10^12, excludes --duration
 *   --warmup SECONDS            0..3600, not counted in results      [2]
 *   --rate MSGS_PER_S           0..10^9; 0 = closed loop (as fast as
 *                               possible), > 0 = open loop at that rate,
 *                               latency from the intended send time  [0]
 *   --topic-config KEY=VALUE    a topic config for the bench topic,
 *                               repeatable (up to 8); kafka and
 *                               sluice-kafka only, set at CreateTopics,
 *                               e.g. flush.messages=1               [none]
 *   --json                      machine-readable output
 *   --quick                     a smoke run: 3 s, 1 s warm-up, unless
 *                               --duration/--messages/--warmup are given
 *   --bootstrap HOST:PORT       ([v6addr]:PORT too)  [per system, see
 *                               workload_bootstrap()]
 * BYTES take an optional K, M or G suffix (either case), binary multiples:
 * 16K = 16384. Counts, seconds and rates are plain decimal integers.
 *
 * Defaults follow the Kafka producer's (batch.size 16 KiB; linger.ms 5, the
 * default since Kafka 4.0, which trades a few ms of latency for batches);
 * latency-focused runs pass --linger-ms 0.
 *
 * Pure: nothing here does I/O or keeps global state; any thread, one
 * workload_t per thread at a time. Errors: workload_parse() and
 * workload_set() return a WORKLOAD_* code and write one line naming the flag,
 * the value and what was expected into the caller's errbuf (NUL-terminated,
 * truncated to errlen).
 */
#ifndef SLUICE_BENCH_WORKLOAD_H
#define SLUICE_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKLOAD_OK      0
#define WORKLOAD_UNKNOWN (-1) /* not a workload flag (the caller may own it) */
#define WORKLOAD_INVALID (-2) /* a workload flag with a bad or missing value */

typedef enum workload_system {
    WORKLOAD_SLUICE,
    WORKLOAD_SLUICE_KAFKA,
    WORKLOAD_KAFKA,
    WORKLOAD_RABBITMQ,
} workload_system_t;

typedef enum workload_acks {
    WORKLOAD_ACKS_NONE = 0,
    WORKLOAD_ACKS_LEADER = 1,
    WORKLOAD_ACKS_ALL = -1, /* Kafka's value for acks=all */
} workload_acks_t;

typedef enum workload_compression {
    WORKLOAD_COMPRESSION_NONE,
    WORKLOAD_COMPRESSION_LZ4,
} workload_compression_t;

#define WORKLOAD_BOOTSTRAP_MAX    256
#define WORKLOAD_TOPIC_CONFIG_MAX 8
#define WORKLOAD_TOPIC_CONFIG_LEN 128 /* key and value, each with its NUL */

typedef struct workload_topic_config {
    char key[WORKLOAD_TOPIC_CONFIG_LEN];
    char value[WORKLOAD_TOPIC_CONFIG_LEN];
} workload_topic_config_t;

typedef struct workload {
    workload_system_t system;
    uint64_t message_bytes;
    uint32_t producers;
    uint32_t consumers;
    uint32_t partitions;
    workload_acks_t acks;
    uint64_t batch_bytes;
    uint32_t linger_ms;
    workload_compression_t compression;
    uint32_t duration_s; /* 0 iff messages > 0 */
    uint64_t messages;   /* 0 = run for duration_s */
    uint32_t warmup_s;
    uint64_t rate; /* messages per second over all producers; 0 = closed loop */
    bool json;
    bool quick;
    char bootstrap[WORKLOAD_BOOTSTRAP_MAX]; /* "" = workload_bootstrap() default */
    workload_topic_config_t topic_config[WORKLOAD_TOPIC_CONFIG_MAX];
    uint32_t n_topic_config;
    /* Which of duration/messages/warmup were given, for --quick and the
     * exclusivity check; set by workload_set(). */
    bool set_duration, set_messages, set_warmup;
} workload_t;

/* Fills *w with the defaults listed above. */
void workload_defaults(workload_t *w);

/* Applies one flag: `name` with its leading "--" (e.g. "--producers") and
 * `value` (NULL for --json/--quick, required for every other flag). Returns
 * WORKLOAD_OK, WORKLOAD_UNKNOWN (errbuf says so) or WORKLOAD_INVALID. On
 * failure *w is unchanged. Cross-flag checks happen in workload_finish(). */
int workload_set(workload_t *w, const char *name, const char *value, char *errbuf, size_t errlen);

/* The checks across flags (--duration with --messages, lz4 with rabbitmq,
 * --topic-config only with a Kafka-protocol system)
 * and --quick's shortened run; WORKLOAD_OK or WORKLOAD_INVALID. */
int workload_finish(workload_t *w, char *errbuf, size_t errlen);

/* Defaults, then every argv[1..argc) as "--flag VALUE" or "--flag=VALUE",
 * then workload_finish(). Stops at the first error. argv is only read. */
int workload_parse(workload_t *w, int argc, char *const argv[], char *errbuf, size_t errlen);

/* The --system spelling of s, e.g. "sluice-kafka". Static string. */
const char *workload_system_name(workload_system_t s);

/* w->bootstrap, or the system's default address when it is empty:
 * sluice 127.0.0.1:9292, sluice-kafka 127.0.0.1:9092, kafka 127.0.0.1:19092 and
 * rabbitmq 127.0.0.1:15673 (the peers of bench/peers). Points into *w or at
 * a static string. */
const char *workload_bootstrap(const workload_t *w);

/* Writes w as one JSON object (no newline) into buf, snprintf-style: returns
 * the length the whole text needs; it is complete iff that is < len. */
size_t workload_to_json(const workload_t *w, char *buf, size_t len);

/* Writes a one-line human summary, snprintf-style like workload_to_json, e.g.
 * "kafka @127.0.0.1:19092: 1 producer -> 1 partition -> 1 consumer, 100 B
 * messages, acks=1, batch 16 KiB, linger 5 ms, compression none, 10 s after
 * 2 s warm-up, closed loop". */
size_t workload_summary(const workload_t *w, char *buf, size_t len);

#endif
