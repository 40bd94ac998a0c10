/* conf.c — libsluice's configuration: one static table (as librdkafka's
 * rdkafka_conf.c) with each key's name, type, offsetof into sluice_conf_s,
 * range, default and description. Defaults are applied by parsing the
 * table's default strings, so the table is the single source of truth (and
 * docs/client.md's table is written from it).
 *
 * A conf is owned by one thread at a time (no locking); sluice_producer_new
 * takes it over on success.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "internal.h"

typedef enum { T_STR, T_INT, T_INT64, T_ENUM } ctype_t;

typedef struct {
    const char *name;
    int value;
} cenum_t;

typedef struct {
    const char *name;
    ctype_t type;
    size_t off;
    int64_t min, max;
    const char *def;
    const cenum_t *enums; /* T_ENUM: accepted words; the first per value is canonical */
    const char *alias_of; /* non-NULL: an alias of that key */
    const char *desc;
} cprop_t;

static const cenum_t acks_enum[] = {{"all", -1}, {"-1", -1}, {"0", 0}, {"1", 1}, {NULL, 0}};
static const cenum_t bool_enum[] = {{"true", 1}, {"false", 0}, {NULL, 0}};
static const cenum_t reset_enum[] = {
    {"earliest", SL_RESET_EARLIEST}, {"latest", SL_RESET_LATEST},  {"error", SL_RESET_ERROR},
    {"smallest", SL_RESET_EARLIEST}, {"largest", SL_RESET_LATEST}, {NULL, 0}};
static const cenum_t fetch_mode_enum[] = {
    {"pull", SL_FETCH_PULL}, {"push", SL_FETCH_PUSH}, {NULL, 0}};
static const cenum_t compression_enum[] = {
    {"none", SL_COMPRESSION_NONE}, {"lz4", SL_COMPRESSION_LZ4}, {NULL, 0}};

#define OFF(f) offsetof(struct sluice_conf_s, f)

static const cprop_t props[] = {
    {"bootstrap.servers", T_STR, OFF(bootstrap_servers), 0, 0, "127.0.0.1:9292", NULL, NULL,
     "Broker to connect to, host:port; a comma-separated list is tried in turn on reconnects."},
    {"client.id", T_STR, OFF(client_id), 0, 0, "libsluice", NULL, NULL,
     "Name sent to the broker in Hello, shown in its logs."},
    {"acks", T_ENUM, OFF(acks), 0, 0, "all", acks_enum, NULL,
     "0: no response (fire and forget, offsets unknown); 1: after the broker's write; "
     "all (-1): after fsync."},
    {"batch.size", T_INT, OFF(batch_size), 64, 16 << 20, "16384", NULL, NULL,
     "Bytes of records per partition batch; a full batch is closed and sent at once."},
    {"linger.ms", T_INT, OFF(linger_ms), 0, 900000, "5", NULL, NULL,
     "How long a batch that is not full waits for more records before it is sent."},
    {"compression.type", T_ENUM, OFF(compression), 0, 0, "none", compression_enum, NULL,
     "none or lz4 (Kafka's LZ4 frame); a batch that does not shrink goes uncompressed."},
    {"max.in.flight", T_INT, OFF(max_in_flight), 1, 1000, "5", NULL, NULL,
     "Produce requests awaiting a response on the connection (at most one per partition)."},
    {"max.in.flight.requests.per.connection", T_INT, OFF(max_in_flight), 1, 1000, "5", NULL,
     "max.in.flight", "Alias of max.in.flight (Kafka's name)."},
    {"buffer.memory", T_INT64, OFF(buffer_memory), 1 << 16, INT64_C(1) << 40, "33554432", NULL,
     NULL, "Bytes of messages held until their delivery report is served."},
    {"max.block.ms", T_INT, OFF(max_block_ms), 0, INT32_MAX, "60000", NULL, NULL,
     "How long sluice_produce() waits for buffer.memory before SLUICE_ERR__QUEUE_FULL."},
    {"retries", T_INT, OFF(retries), 0, INT32_MAX, "2147483647", NULL, NULL,
     "How often a batch is resent after a retriable error (within delivery.timeout.ms)."},
    {"retry.backoff.ms", T_INT, OFF(retry_backoff_ms), 1, 300000, "100", NULL, NULL,
     "Wait before resending a batch and before reconnecting."},
    {"request.timeout.ms", T_INT, OFF(request_timeout_ms), 1, 900000, "30000", NULL, NULL,
     "A request unanswered this long fails the connection (then its batches are retried)."},
    {"delivery.timeout.ms", T_INT, OFF(delivery_timeout_ms), 1, INT32_MAX, "120000", NULL, NULL,
     "Upper bound on a message's life from sluice_produce() to its report; then "
     "SLUICE_ERR__MSG_TIMED_OUT."},
    /* consumer (Kafka's names and defaults) */
    {"group.id", T_STR, OFF(group_id), 0, 0, NULL, NULL, NULL,
     "Consumer group: needed by subscribe and for committing offsets (1-255 bytes)."},
    {"auto.offset.reset", T_ENUM, OFF(auto_offset_reset), 0, 0, "latest", reset_enum, NULL,
     "Where to start without a committed offset, or out of range: earliest, latest, error."},
    {"enable.auto.commit", T_ENUM, OFF(enable_auto_commit), 0, 0, "true", bool_enum, NULL,
     "Commit positions every auto.commit.interval.ms, on rebalance and on close."},
    {"auto.commit.interval.ms", T_INT, OFF(auto_commit_interval_ms), 1, 86400000, "5000", NULL,
     NULL, "Interval of automatic commits."},
    {"fetch.min.bytes", T_INT, OFF(fetch_min_bytes), 0, 100000000, "1", NULL, NULL,
     "A fetch waits (up to fetch.max.wait.ms) until this many bytes are available."},
    {"fetch.max.wait.ms", T_INT, OFF(fetch_max_wait_ms), 0, 300000, "500", NULL, NULL,
     "Longest wait of a long-polling fetch."},
    {"max.partition.fetch.bytes", T_INT, OFF(max_partition_fetch_bytes), 1, 1 << 30, "1048576",
     NULL, NULL,
     "Most bytes asked for in one fetch of one partition (a first larger batch "
     "still comes whole)."},
    {"fetch.max.bytes", T_INT64, OFF(fetch_max_bytes), 1024, INT64_C(1) << 40, "52428800", NULL,
     NULL, "The one budget of prefetched bytes across all partitions (push: total credit)."},
    {"session.timeout.ms", T_INT, OFF(session_timeout_ms), 1, 86400000, "45000", NULL, NULL,
     "A group member without a heartbeat this long is dropped by the broker."},
    {"heartbeat.interval.ms", T_INT, OFF(heartbeat_interval_ms), 1, 86400000, "3000", NULL, NULL,
     "Interval of group heartbeats (also how soon a rebalance is noticed)."},
    {"check.crcs", T_ENUM, OFF(check_crcs), 0, 0, "true", bool_enum, NULL,
     "Check every received batch's CRC-32C; a bad batch is reported as SLUICE_ERR__BAD_MSG."},
    {"enable.partition.eof", T_ENUM, OFF(enable_partition_eof), 0, 0, "false", bool_enum, NULL,
     "Report reaching the end of a partition as a message with SLUICE_ERR__PARTITION_EOF."},
    {"fetch.mode", T_ENUM, OFF(fetch_mode), 0, 0, "pull", fetch_mode_enum, NULL,
     "pull: Fetch long polls; push: the broker streams batches (lowest latency)."},
};
#define NPROPS (sizeof props / sizeof props[0])

static const cprop_t *find(const char *name)
{
    for (size_t i = 0; i < NPROPS; i++)
        if (strcmp(props[i].name, name) == 0) return &props[i];
    return NULL;
}

/* Levenshtein distance, for "did you mean" (keys are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t d[64], prev;
    for (size_t j = 0; j <= lb; j++) d[j] = j;
    for (size_t i = 1; i <= la; i++) {
        prev = d[0];
        d[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = d[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (d[j] + 1 < best) best = d[j] + 1;
            if (d[j - 1] + 1 < best) best = d[j - 1] + 1;
            d[j] = best;
            prev = cur;
        }
    }
    return d[lb];
}

static void errf(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *errstr, size_t size, const char *fmt, ...)
{
    if (!errstr || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

static sluice_conf_res_t set_prop(sluice_conf_t *conf, const cprop_t *p, const char *value,
                                  char *errstr, size_t errstr_size)
{
    char *base = (char *)conf;
    switch (p->type) {
    case T_STR: {
        if (!*value) {
            errf(errstr, errstr_size, "%s: \"\" is empty; expected a non-empty string", p->name);
            return SLUICE_CONF_INVALID;
        }
        char *s = strdup(value);
        if (!s) {
            errf(errstr, errstr_size, "%s: out of memory", p->name);
            return SLUICE_CONF_INVALID;
        }
        char **slot = (char **)(base + p->off);
        free(*slot);
        *slot = s;
        return SLUICE_CONF_OK;
    }
    case T_INT:
    case T_INT64: {
        int64_t v;
        if (parse_int(value, &v) != 0 || v < p->min || v > p->max) {
            errf(errstr, errstr_size, "%s: \"%s\" is not an integer in %" PRId64 "..%" PRId64,
                 p->name, value, p->min, p->max);
            return SLUICE_CONF_INVALID;
        }
        if (p->type == T_INT)
            *(int *)(base + p->off) = (int)v;
        else
            *(int64_t *)(base + p->off) = v;
        return SLUICE_CONF_OK;
    }
    case T_ENUM:
        for (const cenum_t *e = p->enums; e->name; e++) {
            if (strcmp(e->name, value) == 0) {
                *(int *)(base + p->off) = e->value;
                return SLUICE_CONF_OK;
            }
        }
        {
            char list[128] = "";
            for (const cenum_t *e = p->enums; e->name; e++) {
                if (list[0]) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, e->name, sizeof list - strlen(list) - 1);
            }
            errf(errstr, errstr_size, "%s: \"%s\" is not one of %s", p->name, value, list);
        }
        return SLUICE_CONF_INVALID;
    }
    return SLUICE_CONF_INVALID;
}

SLUICE_API sluice_conf_t *sluice_conf_new(void)
{
    sluice_conf_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < NPROPS; i++) {
        if (props[i].alias_of || !props[i].def) continue; /* no default: unset (NULL) */
        if (set_prop(c, &props[i], props[i].def, NULL, 0) != SLUICE_CONF_OK) {
            sluice_conf_destroy(c);
            return NULL;
        }
    }
    return c;
}

SLUICE_API void sluice_conf_destroy(sluice_conf_t *conf)
{
    if (!conf) return;
    free(conf->bootstrap_servers);
    free(conf->client_id);
    free(conf->group_id);
    free(conf);
}

SLUICE_API sluice_conf_t *sluice_conf_dup(const sluice_conf_t *conf)
{
    sluice_conf_t *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *conf;
    c->bootstrap_servers = strdup(conf->bootstrap_servers);
    c->client_id = strdup(conf->client_id);
    c->group_id = conf->group_id ? strdup(conf->group_id) : NULL;
    if (!c->bootstrap_servers || !c->client_id || (conf->group_id && !c->group_id)) {
        sluice_conf_destroy(c);
        return NULL;
    }
    return c;
}

SLUICE_API sluice_conf_res_t sluice_conf_set(sluice_conf_t *conf, const char *name,
                                             const char *value, char *errstr, size_t errstr_size)
{
    if (!conf || !name || !value) {
        errf(errstr, errstr_size, "sluice_conf_set: NULL argument");
        return SLUICE_CONF_INVALID;
    }
    const cprop_t *p = find(name);
    if (!p) {
        const char *best = NULL;
        size_t bd = (size_t)-1;
        for (size_t i = 0; i < NPROPS; i++) {
            size_t d = edit_distance(name, props[i].name);
            if (d < bd) {
                bd = d;
                best = props[i].name;
            }
        }
        if (best && bd <= strlen(name) / 2 + 2)
            errf(errstr, errstr_size, "%s: no such configuration key (did you mean %s?)", name,
                 best);
        else
            errf(errstr, errstr_size, "%s: no such configuration key", name);
        return SLUICE_CONF_UNKNOWN;
    }
    return set_prop(conf, p, value, errstr, errstr_size);
}

SLUICE_API sluice_conf_res_t sluice_conf_get(const sluice_conf_t *conf, const char *name,
                                             char *dest, size_t dest_size)
{
    const cprop_t *p = name ? find(name) : NULL;
    if (!p) return SLUICE_CONF_UNKNOWN;
    if (!dest || dest_size == 0) return SLUICE_CONF_INVALID;
    const char *base = (const char *)conf;
    switch (p->type) {
    case T_STR: {
        const char *v = *(char *const *)(base + p->off);
        snprintf(dest, dest_size, "%s", v ? v : "");
    } break;
    case T_INT:
        snprintf(dest, dest_size, "%d", *(const int *)(base + p->off));
        break;
    case T_INT64:
        snprintf(dest, dest_size, "%" PRId64, *(const int64_t *)(base + p->off));
        break;
    case T_ENUM: {
        int v = *(const int *)(base + p->off);
        const char *s = "?";
        for (const cenum_t *e = p->enums; e->name; e++)
            if (e->value == v) {
                s = e->name;
                break;
            }
        snprintf(dest, dest_size, "%s", s);
        break;
    }
    }
    return SLUICE_CONF_OK;
}

SLUICE_API void sluice_conf_set_dr_cb(sluice_conf_t *conf, sluice_dr_cb_t *cb)
{
    conf->dr_cb = cb;
}

SLUICE_API void sluice_conf_set_log_cb(sluice_conf_t *conf, sluice_log_cb_t *cb)
{
    conf->log_cb = cb;
}

SLUICE_API void sluice_conf_set_opaque(sluice_conf_t *conf, void *opaque)
{
    conf->opaque = opaque;
}

void sl_client_log(const sluice_conf_t *conf, int level, const char *fac, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (conf->log_cb)
        conf->log_cb(level, fac, msg, conf->opaque);
    else if (level <= 4)
        fprintf(stderr, "libsluice %s %s: %s\n", level <= 3 ? "error" : "warning", fac, msg);
}
