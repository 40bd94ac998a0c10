/* conf.h — sluiced's configuration: one table (name, type, bounds, default,
 * description), loaded from a key=value file and --key=value flags. The
 * broker's own keys are written in conf.c; the defaults of topic configs
 * (log.segment.bytes, ...) take their bounds and defaults from
 * storage/logconf.c's table, so each is written once.
 *
 * Unknown keys and bad values stop start-up with a message naming the key,
 * the value, what was expected and (for an unknown key) the closest known
 * one; file errors carry file:line. docs/broker.md lists the same table
 * (tests/unit/test_broker_conf.c keeps the two in step).
 * Not thread-safe: load once at start-up, then read only.
 */
#ifndef SLUICE_BROKER_CONF_H
#define SLUICE_BROKER_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "logconf.h"

/* Most reactors (num.reactors): a partition's watcher word has one bit per
 * reactor (fetch long polls, push subscriptions) and is 64 bits wide. */
#define BROKER_MAX_REACTORS 64

/* Most partitions one Fetch request may name, over all its topics (Kafka's
 * Fetch; Sluice's Fetch names one partition). A consumer asks for all it
 * was assigned on this broker in one Fetch, so this is as large as an
 * assignment may be (group.h's GRP_MAX_ASSIGNED); beyond it the request is
 * refused and the connection closed. */
#define BROKER_FETCH_MAX_PARTITIONS 100000

typedef struct broker_conf {
    char log_dirs[1024];
    char listeners[256];
    char metrics_listener[256];
    char kafka_listeners[256];
    char kafka_advertised[256];
    int64_t node_id;
    int64_t num_reactors;
    int64_t reactor_edge; /* reactor.mode: 1 edge, 0 level */
    int64_t max_request_size;
    int64_t max_connections;
    int64_t connections_max_idle_ms;
    int64_t request_read_timeout_ms;
    int64_t max_connection_output_bytes;
    int64_t queued_max_request_bytes;
    int64_t auto_create_topics;
    int64_t num_partitions;
    int64_t deep_validation;
    int64_t fetch_max_wait_cap_ms;
    int64_t retention_check_interval_ms;
    int64_t max_open_segments;
    int64_t log_level;
    int64_t group_min_session_timeout_ms;
    int64_t group_max_session_timeout_ms;
    int64_t group_initial_rebalance_delay_ms;
    sl_log_conf_t topic; /* defaults for new topics: log.segment.bytes, ... */
} broker_conf_t;

typedef enum { CONF_STRING, CONF_INT, CONF_BOOL, CONF_ENUM } conf_type_t;

typedef struct conf_def {
    const char *name;
    conf_type_t type;
    size_t offset;      /* into broker_conf_t */
    size_t size;        /* CONF_STRING: buffer size */
    int64_t min, max;   /* CONF_INT */
    const char *def;    /* default, as text */
    const char *values; /* CONF_ENUM: "a|b|c" (value = index) */
    const char *doc;
} conf_def_t;

/* The table, *n entries: the broker's keys, then the topic defaults. Static
 * storage, built on first use (thread-safe). */
const conf_def_t *broker_conf_table(size_t *n);

/* Fills every default. */
void broker_conf_defaults(broker_conf_t *c);

/* Sets one key. SL_OK or SL_ERR_INVALID_CONFIG with a message. */
int broker_conf_set(broker_conf_t *c, const char *key, const char *value, sl_err_t *err);

/* Loads a key=value file ('#' comments, blank lines). */
int broker_conf_load_file(broker_conf_t *c, const char *path, sl_err_t *err);

/* Applies argv: --config FILE (first, wherever it stands), then --key=value
 * flags in order. --help, --dump-config and --version are reported through
 * *action (0 none, 1 help, 2 dump, 3 version, 4 verify). */
int broker_conf_from_args(broker_conf_t *c, int argc, char **argv, int *action, sl_err_t *err);

/* Cross-key checks after loading. */
int broker_conf_check(const broker_conf_t *c, sl_err_t *err);

/* Prints "key=value" for every key (the effective configuration). */
void broker_conf_dump(const broker_conf_t *c, int fd);

/* Splits "host:port" into host and port (0..65535). */
int conf_parse_hostport(const char *s, char *host, size_t hostlen, int *port, sl_err_t *err);

#endif
