#include "conf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define O(f)           offsetof(broker_conf_t, f)
#define STR(f)         CONF_STRING, O(f), sizeof(((broker_conf_t *)0)->f), 0, 0
#define INT(f, lo, hi) CONF_INT, O(f), 0, lo, hi
#define BOOL(f)        CONF_BOOL, O(f), 0, 0, 1
#define ENUM(f)        CONF_ENUM, O(f), 0, 0, 0

/* The broker's own keys. The defaults of topic configs follow them in
 * `table` (see topic_keys). */
static const conf_def_t broker_keys[] = {
    {"log.dirs", STR(log_dirs), "./data", NULL, "Data directory (one)."},
    {"listeners", STR(listeners), "127.0.0.1:9292", NULL,
     "host:port for Sluice's protocol; port 0 picks a free port (logged)."},
    {"metrics.listener", STR(metrics_listener), "127.0.0.1:9293", NULL,
     "host:port serving GET /metrics (Prometheus text); empty disables it."},
    {"kafka.listeners", STR(kafka_listeners), "127.0.0.1:9092", NULL,
     "host:port for Kafka's wire protocol (docs/kafka-compat.md); port 0 picks a free port "
     "(logged); empty disables it."},
    {"kafka.advertised.listener", STR(kafka_advertised), "", NULL,
     "host:port Kafka clients are told to connect to (Metadata, FindCoordinator); empty: the "
     "kafka.listeners address (127.0.0.1 when it binds every address)."},
    {"node.id", INT(node_id, 0, 2147483647), "1", NULL,
     "This broker's node id in Kafka's Metadata (leader, controller, coordinator)."},
    {"num.reactors", INT(num_reactors, 0, BROKER_MAX_REACTORS), "0", NULL,
     "Reactor threads, each with its own epoll and SO_REUSEPORT listener; 0 = one per core "
     "(at most 64)."},
    {"reactor.mode", ENUM(reactor_edge), "edge", "level|edge",
     "epoll triggering: edge (EPOLLET, read/write until EAGAIN) or level."},
    {"max.request.size", INT(max_request_size, 1024, 1LL << 30), "16777216", NULL,
     "Largest request frame accepted, in bytes; a larger one closes the connection."},
    {"max.connections", INT(max_connections, 1, 10000000), "100000", NULL,
     "Connections accepted at once; more are closed on accept."},
    {"connections.max.idle.ms", INT(connections_max_idle_ms, 0, INT64_MAX), "600000", NULL,
     "Close a connection idle this long; 0 never."},
    {"request.read.timeout.ms", INT(request_read_timeout_ms, 0, INT64_MAX), "30000", NULL,
     "Close a connection whose request has begun arriving but is not complete this long after "
     "(a slowloris client); 0 never."},
    {"max.connection.output.bytes", INT(max_connection_output_bytes, 4096, 1LL << 40), "8388608",
     NULL,
     "Queued response bytes (memory and file ranges) at which a connection stops being read "
     "until its client catches up."},
    {"queued.max.request.bytes", INT(queued_max_request_bytes, 65536, 1LL << 40), "268435456", NULL,
     "Global budget of request and response bytes in memory; over it, reactors stop reading "
     "sockets until it frees."},
    {"auto.create.topics.enable", BOOL(auto_create_topics), "true", NULL,
     "Create a topic (num.partitions) on the first produce or metadata request naming it."},
    {"num.partitions", INT(num_partitions, 1, 10000), "1", NULL,
     "Partitions of auto-created topics and of CreateTopic with partitions 0."},
    {"produce.deep.validation", BOOL(deep_validation), "false", NULL,
     "Decompress and walk every record of every produced batch (costly; shallow CRC "
     "validation always runs)."},
    {"fetch.max.wait.cap.ms", INT(fetch_max_wait_cap_ms, 0, 3600000), "30000", NULL,
     "Upper bound on a fetch's max_wait_ms."},
    {"log.retention.check.interval.ms", INT(retention_check_interval_ms, 100, INT64_MAX), "300000",
     NULL, "How often housekeeping applies retention and segment.ms rolls."},
    {"log.max.open.segments", INT(max_open_segments, 16, 10000000), "1024", NULL,
     "Segment files kept open at once (an LRU); the rest are opened on use."},
    {"log.level", ENUM(log_level), "info", "error|warn|info|debug", "Log verbosity."},
    {"group.min.session.timeout.ms", INT(group_min_session_timeout_ms, 1, 86400000), "100", NULL,
     "Shortest session timeout a group member may ask for (else INVALID_SESSION_TIMEOUT)."},
    {"group.max.session.timeout.ms", INT(group_max_session_timeout_ms, 1, 86400000), "300000", NULL,
     "Longest session timeout a group member may ask for."},
    {"group.initial.rebalance.delay.ms", INT(group_initial_rebalance_delay_ms, 0, 300000), "0",
     NULL,
     "An empty group's first rebalance waits this long for more members to join (Kafka: 3000)."},
};

/* The broker-wide default of each topic config, under Kafka's broker-level
 * name. Bounds and defaults are storage/logconf.c's: that table is the one
 * place they are written, and table_build copies them from it. */
static const struct {
    const char *name;      /* the broker key */
    const char *topic_key; /* the key of sl_log_conf_table() it sets the default of */
    const char *doc;
} topic_keys[] = {
    {"log.segment.bytes", "segment.bytes", "Default segment.bytes of topics."},
    {"log.roll.ms", "segment.ms", "Default segment.ms of topics."},
    {"log.retention.ms", "retention.ms", "Default retention.ms of topics."},
    {"log.retention.bytes", "retention.bytes", "Default retention.bytes of topics."},
    {"log.index.interval.bytes", "index.interval.bytes", "Default index.interval.bytes of topics."},
    {"log.flush.interval.messages", "flush.messages", "Default flush.messages of topics."},
    {"log.flush.interval.ms", "flush.ms", "Default flush.ms of topics."},
    {"message.max.bytes", "max.message.bytes", "Default max.message.bytes of topics."},
};

#define NBROKER (sizeof broker_keys / sizeof broker_keys[0])
#define NTOPIC  (sizeof topic_keys / sizeof topic_keys[0])
#define NTABLE  (NBROKER + NTOPIC)

/* broker_keys then topic_keys, built once (first use) by table_build. */
static conf_def_t table[NTABLE];
static char topic_defs[NTOPIC][24]; /* the topic defaults as text */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    memcpy(table, broker_keys, sizeof broker_keys);
    for (size_t i = 0; i < NTOPIC; i++) {
        const sl_log_conf_def_t *t = sl_log_conf_find(topic_keys[i].topic_key);
        if (!t) abort(); /* a name above that logconf.c lacks: test_broker_conf catches it */
        snprintf(topic_defs[i], sizeof topic_defs[i], "%lld", (long long)t->def);
        table[NBROKER + i] = (conf_def_t){
            .name = topic_keys[i].name,
            .type = CONF_INT,
            .offset = offsetof(broker_conf_t, topic) + t->offset,
            .min = t->min,
            .max = t->max,
            .def = topic_defs[i],
            .doc = topic_keys[i].doc,
        };
    }
}

static const conf_def_t *table_get(void)
{
    pthread_once(&table_once, table_build);
    return table;
}

const conf_def_t *broker_conf_table(size_t *n)
{
    *n = NTABLE;
    return table_get();
}

static const conf_def_t *find(const char *key)
{
    const conf_def_t *t = table_get();
    for (size_t i = 0; i < NTABLE; i++)
        if (strcmp(t[i].name, key) == 0) return &t[i];
    return NULL;
}

static int enum_index(const char *values, const char *v)
{
    int i = 0;
    size_t vl = strlen(v);
    for (const char *p = values; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0) return i;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

int broker_conf_set(broker_conf_t *c, const char *key, const char *value, sl_err_t *err)
{
    const conf_def_t *d = find(key);
    if (!d) {
        const char *best = NULL;
        size_t bd = 5;
        for (size_t i = 0; i < NTABLE; i++) {
            /* Also against the name without its first dotted part, so a
             * topic-level spelling ("segment.bytes") finds "log.segment.bytes". */
            const char *dot = strchr(table[i].name, '.');
            size_t x = sl_edit_distance(key, table[i].name);
            size_t y = dot ? sl_edit_distance(key, dot + 1) : 99;
            if (y < x) x = y;
            if (x < bd) bd = x, best = table[i].name;
        }
        if (best)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "unknown config key \"%s\" (did you mean \"%s\"?)", key, best);
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "unknown config key \"%s\"", key);
    }
    char *base = (char *)c;
    int64_t v = 0;
    switch (d->type) {
    case CONF_STRING:
        if (strlen(value) >= d->size)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s: value longer than %zu characters",
                              key, d->size - 1);
        /* Values must survive --dump-config and a reload: no control
         * characters (a newline would inject a line) and no blanks at
         * either end (the file reader trims them). */
        for (const char *q = value; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                                  "%s: control character 0x%02x in the value", key,
                                  (unsigned char)*q);
        if (*value && (value[0] == ' ' || value[strlen(value) - 1] == ' '))
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s: \"%s\" has blanks at either end",
                              key, value);
        memcpy(base + d->offset, value, strlen(value) + 1);
        return SL_OK;
    case CONF_INT:
        if (sl_parse_int64(value, &v) < 0 || v < d->min || v > d->max)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "%s: \"%s\" is not an integer in %lld..%lld", key, value,
                              (long long)d->min, (long long)d->max);
        break;
    case CONF_BOOL:
        if (strcmp(value, "true") == 0)
            v = 1;
        else if (strcmp(value, "false") == 0)
            v = 0;
        else
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s: \"%s\" is not true or false", key,
                              value);
        break;
    case CONF_ENUM:
        v = enum_index(d->values, value);
        if (v < 0)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s: \"%s\" is not one of %s", key, value,
                              d->values);
        break;
    }
    *(int64_t *)(base + d->offset) = v;
    return SL_OK;
}

void broker_conf_defaults(broker_conf_t *c)
{
    memset(c, 0, sizeof *c);
    const conf_def_t *t = table_get();
    for (size_t i = 0; i < NTABLE; i++) broker_conf_set(c, t[i].name, t[i].def, NULL);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

int broker_conf_load_file(broker_conf_t *c, const char *path, sl_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "cannot open config file %s: %s", path,
                          strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = SL_OK;
    while (rc == SL_OK && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        /* getline counts every byte, NULs included: a line too long for
         * any setting, or one with a NUL that would hide its tail, is an
         * error rather than something split or cut in two. */
        if (n > 4095) {
            rc = sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s:%d: line longer than 4095 bytes", path,
                            lineno);
            break;
        }
        if (memchr(line, 0, (size_t)n)) {
            rc =
                sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s:%d: NUL byte in the line", path, lineno);
            break;
        }
        char *s = trim(line);
        if (*s == 0 || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s:%d: expected key=value", path, lineno);
            break;
        }
        *eq = 0;
        sl_err_t e2;
        if ((rc = broker_conf_set(c, trim(s), trim(eq + 1), &e2)) != SL_OK)
            sl_err_set(err, rc, "%s:%d: %s", path, lineno, e2.msg);
    }
    free(line);
    fclose(f);
    return rc;
}

int broker_conf_from_args(broker_conf_t *c, int argc, char **argv, int *action, sl_err_t *err)
{
    *action = 0;
    for (int i = 1; i < argc; i++) {
        const char *file = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return sl_err_set(err, SL_ERR_INVALID_CONFIG, "--config needs a file name");
            file = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
        if (file) {
            int rc = broker_conf_load_file(c, file, err);
            if (rc != SL_OK) return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0) continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *action = 1;
            continue;
        }
        if (strcmp(a, "--dump-config") == 0) {
            *action = 2;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            *action = 3;
            continue;
        }
        if (strcmp(a, "--verify") == 0) {
            *action = 4;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !strchr(a, '='))
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "unexpected argument \"%s\" (use --key=value; see --help)", a);
        char key[256];
        const char *eq = strchr(a, '=');
        size_t kl = (size_t)(eq - a - 2);
        if (kl >= sizeof key) return sl_err_set(err, SL_ERR_INVALID_CONFIG, "key too long: %s", a);
        memcpy(key, a + 2, kl);
        key[kl] = 0;
        int rc = broker_conf_set(c, key, eq + 1, err);
        if (rc != SL_OK) return rc;
    }
    return SL_OK;
}

int conf_parse_hostport(const char *s, char *host, size_t hostlen, int *port, sl_err_t *err)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "\"%s\" is not host:port", s);
    size_t hl = (size_t)(colon - s);
    if (hl >= hostlen) return sl_err_set(err, SL_ERR_INVALID_CONFIG, "host too long in \"%s\"", s);
    memcpy(host, s, hl);
    host[hl] = 0;
    int64_t p;
    if (sl_parse_int64(colon + 1, &p) < 0 || p < 0 || p > 65535)
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "\"%s\": port must be 0..65535", s);
    *port = (int)p;
    return SL_OK;
}

int broker_conf_check(const broker_conf_t *c, sl_err_t *err)
{
    char host[256];
    int port;
    sl_err_t inner;
    int rc = conf_parse_hostport(c->listeners, host, sizeof host, &port, &inner);
    if (rc != SL_OK) return sl_err_set(err, rc, "listeners: %s", inner.msg);
    if (c->metrics_listener[0] &&
        (rc = conf_parse_hostport(c->metrics_listener, host, sizeof host, &port, &inner)) != SL_OK)
        return sl_err_set(err, rc, "metrics.listener: %s", inner.msg);
    if (c->kafka_listeners[0] &&
        (rc = conf_parse_hostport(c->kafka_listeners, host, sizeof host, &port, &inner)) != SL_OK)
        return sl_err_set(err, rc, "kafka.listeners: %s", inner.msg);
    if (c->kafka_advertised[0]) {
        rc = conf_parse_hostport(c->kafka_advertised, host, sizeof host, &port, &inner);
        if (rc == SL_OK && port == 0)
            rc = sl_err_set(&inner, SL_ERR_INVALID_CONFIG,
                            "\"%s\": clients cannot connect to port 0", c->kafka_advertised);
        if (rc != SL_OK) return sl_err_set(err, rc, "kafka.advertised.listener: %s", inner.msg);
    }
    if (c->topic.max_message_bytes + 1024 > c->max_request_size)
        return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                          "max.request.size (%lld) must exceed message.max.bytes (%lld) by 1024",
                          (long long)c->max_request_size, (long long)c->topic.max_message_bytes);
    if (c->group_min_session_timeout_ms > c->group_max_session_timeout_ms)
        return sl_err_set(
            err, SL_ERR_INVALID_CONFIG,
            "group.min.session.timeout.ms (%lld) exceeds group.max.session.timeout.ms "
            "(%lld)",
            (long long)c->group_min_session_timeout_ms, (long long)c->group_max_session_timeout_ms);
    return SL_OK;
}

void broker_conf_dump(const broker_conf_t *c, int fd)
{
    const char *base = (const char *)c;
    const conf_def_t *t = table_get();
    for (size_t i = 0; i < NTABLE; i++) {
        const conf_def_t *d = &t[i];
        char line[2048];
        int64_t v = d->type == CONF_STRING ? 0 : *(const int64_t *)(base + d->offset);
        if (d->type == CONF_STRING)
            snprintf(line, sizeof line, "%s=%s\n", d->name, base + d->offset);
        else if (d->type == CONF_BOOL)
            snprintf(line, sizeof line, "%s=%s\n", d->name, v ? "true" : "false");
        else if (d->type == CONF_ENUM) {
            const char *p = d->values;
            for (int64_t k = 0; k < v && strchr(p, '|'); k++) p = strchr(p, '|') + 1;
            size_t l = strchr(p, '|') ? (size_t)(strchr(p, '|') - p) : strlen(p);
            snprintf(line, sizeof line, "%s=%.*s\n", d->name, (int)l, p);
        } else
            snprintf(line, sizeof line, "%s=%lld\n", d->name, (long long)v);
        ssize_t w = write(fd, line, strlen(line));
        (void)w;
    }
}
