/* workload.c — sluice-bench's workload flags: one table (name, kind, bounds,
 * field), one parser per kind, messages that name flag, value and bounds. */
#include "workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "seqcheck.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

typedef enum {
    K_UINT,
    K_SIZE,
    K_SYSTEM,
    K_ACKS,
    K_COMPRESSION,
    K_FLAG,
    K_BOOTSTRAP,
    K_TOPIC_CONFIG
} kind_t;

typedef struct flag {
    const char *name;
    kind_t kind;
    uint64_t min, max;
    size_t off;   /* offsetof the field in workload_t */
    size_t width; /* sizeof the field, for K_UINT and K_SIZE */
} flag_t;

#define U32(f) offsetof(workload_t, f), sizeof(uint32_t)
#define U64(f) offsetof(workload_t, f), sizeof(uint64_t)

static const flag_t flags[] = {
    {"--system", K_SYSTEM, 0, 0, offsetof(workload_t, system), 0},
    {"--message-size", K_SIZE, SEQCHECK_HEADER_BYTES, 16 * MiB, U64(message_bytes)},
    {"--producers", K_UINT, 1, 1024, U32(producers)},
    {"--consumers", K_UINT, 0, 1024, U32(consumers)},
    {"--partitions", K_UINT, 1, 10000, U32(partitions)},
    {"--acks", K_ACKS, 0, 0, offsetof(workload_t, acks), 0},
    {"--batch-size", K_SIZE, 0, 256 * MiB, U64(batch_bytes)},
    {"--linger-ms", K_UINT, 0, 60000, U32(linger_ms)},
    {"--compression", K_COMPRESSION, 0, 0, offsetof(workload_t, compression), 0},
    {"--duration", K_UINT, 1, 86400, U32(duration_s)},
    {"--messages", K_UINT, 1, UINT64_C(1000000000000), U64(messages)},
    {"--warmup", K_UINT, 0, 3600, U32(warmup_s)},
    {"--rate", K_UINT, 0, 1000000000, U64(rate)},
    {"--json", K_FLAG, 0, 0, offsetof(workload_t, json), 0},
    {"--quick", K_FLAG, 0, 0, offsetof(workload_t, quick), 0},
    {"--bootstrap", K_BOOTSTRAP, 0, 0, offsetof(workload_t, bootstrap), 0},
    {"--topic-config", K_TOPIC_CONFIG, 0, 0, offsetof(workload_t, topic_config), 0},
};

static const char *const system_names[] = {"sluice", "sluice-kafka", "kafka", "rabbitmq"};

static void err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* "16M", "16384", "1G": the shortest exact spelling of a byte count. */
static const char *size_str(uint64_t v, char *buf, size_t len)
{
    if (v >= GiB && v % GiB == 0)
        snprintf(buf, len, "%lluG", (unsigned long long)(v / GiB));
    else if (v >= MiB && v % MiB == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(v / MiB));
    else if (v >= KiB && v % KiB == 0)
        snprintf(buf, len, "%lluK", (unsigned long long)(v / KiB));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* Decimal digits only: no sign, space or base prefix, which strtoull would
 * accept ("-1" wraps to 2^64-1). Returns 0, or -1 on anything else or
 * overflow. `end` gets the first non-digit when non-NULL (then trailing text
 * is the caller's business). */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (end)
        *end = p;
    else if (*p)
        return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v, mult = 1;
    if (parse_digits(s, &v, &end) < 0) return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = KiB;
        break;
    case 'm':
    case 'M':
        mult = MiB;
        break;
    case 'g':
    case 'G':
        mult = GiB;
        break;
    default:
        return -1;
    }
    if (*end && end[1]) return -1;
    if (v > UINT64_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

/* HOST:PORT, HOST a DNS name or IPv4 address, or [IPv6]:PORT. */
static int valid_bootstrap(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= WORKLOAD_BOOTSTRAP_MAX) return 0;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return 0;
    uint64_t port;
    if (parse_digits(colon + 1, &port, NULL) < 0 || port < 1 || port > 65535) return 0;
    const char *h = s, *hend = colon;
    if (*h == '[') {
        if (hend[-1] != ']' || hend - h < 3) return 0;
        for (h++, hend--; h < hend; h++)
            if (!strchr("0123456789abcdefABCDEF:.", *h)) return 0;
        return 1;
    }
    for (; h < hend; h++)
        if (!(*h >= 'a' && *h <= 'z') && !(*h >= 'A' && *h <= 'Z') && !(*h >= '0' && *h <= '9') &&
            *h != '.' && *h != '-' && *h != '_')
            return 0;
    return 1;
}

/* KEY=VALUE: KEY a Kafka config name ([a-z0-9._-], as Kafka spells every
 * topic config), VALUE 1..127 printable ASCII bytes other than '"' and '\\'
 * (so it needs no escaping in the JSON output). A key given twice keeps
 * the last value, like Kafka's own tools. */
static int set_topic_config(workload_t *w, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= WORKLOAD_TOPIC_CONFIG_LEN) return 0;
    for (const char *p = s; p < eq; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '.' && *p != '-' &&
            *p != '_')
            return 0;
    const char *v = eq + 1;
    size_t vn = strlen(v);
    if (vn == 0 || vn >= WORKLOAD_TOPIC_CONFIG_LEN) return 0;
    for (const char *p = v; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') return 0;
    uint32_t i;
    for (i = 0; i < w->n_topic_config; i++)
        if (strncmp(w->topic_config[i].key, s, (size_t)(eq - s)) == 0 &&
            w->topic_config[i].key[eq - s] == '\0')
            break;
    if (i == WORKLOAD_TOPIC_CONFIG_MAX) return 0;
    memcpy(w->topic_config[i].key, s, (size_t)(eq - s));
    w->topic_config[i].key[eq - s] = '\0';
    memcpy(w->topic_config[i].value, v, vn + 1);
    if (i == w->n_topic_config) w->n_topic_config++;
    return 1;
}

/* What a flag's value should be, for "missing value" and bad-value errors. */
static const char *expectation(const flag_t *f, char *buf, size_t len)
{
    char a[32], b[32];
    switch (f->kind) {
    case K_UINT:
        snprintf(buf, len, "an integer in %llu..%llu", (unsigned long long)f->min,
                 (unsigned long long)f->max);
        break;
    case K_SIZE:
        snprintf(buf, len, "a size in %s..%s bytes (suffix K, M or G allowed)",
                 size_str(f->min, a, sizeof a), size_str(f->max, b, sizeof b));
        break;
    case K_SYSTEM:
        snprintf(buf, len, "one of sluice, sluice-kafka, kafka, rabbitmq");
        break;
    case K_ACKS:
        snprintf(buf, len, "one of 0, 1, all");
        break;
    case K_COMPRESSION:
        snprintf(buf, len, "one of none, lz4");
        break;
    case K_BOOTSTRAP:
        snprintf(buf, len, "HOST:PORT or [IPV6]:PORT with PORT in 1..65535");
        break;
    case K_FLAG:
        snprintf(buf, len, "no value");
        break;
    case K_TOPIC_CONFIG:
        snprintf(buf, len,
                 "KEY=VALUE with KEY in [a-z0-9._-], VALUE printable, each < %d bytes, "
                 "at most %d keys",
                 WORKLOAD_TOPIC_CONFIG_LEN, WORKLOAD_TOPIC_CONFIG_MAX);
        break;
    }
    return buf;
}

static int lookup(const char *const *names, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], v) == 0) return (int)i;
    return -1;
}

void workload_defaults(workload_t *w)
{
    memset(w, 0, sizeof *w);
    w->system = WORKLOAD_SLUICE;
    w->message_bytes = 100;
    w->producers = 1;
    w->consumers = 1;
    w->partitions = 1;
    w->acks = WORKLOAD_ACKS_LEADER;
    w->batch_bytes = 16 * KiB;
    w->linger_ms = 5;
    w->compression = WORKLOAD_COMPRESSION_NONE;
    w->duration_s = 10;
    w->warmup_s = 2;
}

int workload_set(workload_t *w, const char *name, const char *value, char *errbuf, size_t errlen)
{
    const flag_t *f = NULL;
    char exp[96];
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(flags[i].name, name) == 0) f = &flags[i];
    if (!f) {
        err(errbuf, errlen, "unknown option \"%s\"", name);
        return WORKLOAD_UNKNOWN;
    }
    if (f->kind == K_FLAG) {
        if (value) {
            err(errbuf, errlen, "%s: takes no value (got \"%s\")", name, value);
            return WORKLOAD_INVALID;
        }
        *(bool *)((char *)w + f->off) = true;
        return WORKLOAD_OK;
    }
    if (!value) {
        err(errbuf, errlen, "%s: missing value (expected %s)", name,
            expectation(f, exp, sizeof exp));
        return WORKLOAD_INVALID;
    }

    uint64_t v = 0;
    int ok = 1, idx;
    switch (f->kind) {
    case K_UINT:
    case K_SIZE:
        ok = (f->kind == K_UINT ? parse_digits(value, &v, NULL) : parse_size(value, &v)) == 0 &&
             v >= f->min && v <= f->max;
        if (!ok) break;
        if (f->width == sizeof(uint32_t))
            *(uint32_t *)((char *)w + f->off) = (uint32_t)v;
        else
            *(uint64_t *)((char *)w + f->off) = v;
        if (f->off == offsetof(workload_t, duration_s)) w->set_duration = true;
        if (f->off == offsetof(workload_t, messages)) w->set_messages = true;
        if (f->off == offsetof(workload_t, warmup_s)) w->set_warmup = true;
        break;
    case K_SYSTEM:
        idx = lookup(system_names, sizeof system_names / sizeof system_names[0], value);
        if ((ok = idx >= 0)) w->system = (workload_system_t)idx;
        break;
    case K_ACKS:
        if (strcmp(value, "0") == 0)
            w->acks = WORKLOAD_ACKS_NONE;
        else if (strcmp(value, "1") == 0)
            w->acks = WORKLOAD_ACKS_LEADER;
        else if (strcmp(value, "all") == 0 || strcmp(value, "-1") == 0)
            w->acks = WORKLOAD_ACKS_ALL;
        else
            ok = 0;
        break;
    case K_COMPRESSION:
        if (strcmp(value, "none") == 0)
            w->compression = WORKLOAD_COMPRESSION_NONE;
        else if (strcmp(value, "lz4") == 0)
            w->compression = WORKLOAD_COMPRESSION_LZ4;
        else
            ok = 0;
        break;
    case K_BOOTSTRAP:
        if ((ok = valid_bootstrap(value))) snprintf(w->bootstrap, sizeof w->bootstrap, "%s", value);
        break;
    case K_TOPIC_CONFIG:
        ok = set_topic_config(w, value);
        break;
    case K_FLAG:
        break;
    }
    if (!ok) {
        /* The message quotes at most 64 bytes of the value: argv may hold
         * anything, and the line must stay readable. */
        err(errbuf, errlen, "%s: \"%.64s%s\" is not %s", name, value,
            strlen(value) > 64 ? "..." : "", expectation(f, exp, sizeof exp));
        return WORKLOAD_INVALID;
    }
    return WORKLOAD_OK;
}

int workload_finish(workload_t *w, char *errbuf, size_t errlen)
{
    if (w->set_duration && w->set_messages) {
        err(errbuf, errlen,
            "--duration and --messages are exclusive (got --duration %u and --messages %llu)",
            (unsigned)w->duration_s, (unsigned long long)w->messages);
        return WORKLOAD_INVALID;
    }
    if (w->system == WORKLOAD_RABBITMQ && w->compression != WORKLOAD_COMPRESSION_NONE) {
        err(errbuf, errlen,
            "--compression: \"lz4\" is not supported with --system rabbitmq "
            "(AMQP has no batch compression); expected none");
        return WORKLOAD_INVALID;
    }
    if (w->n_topic_config && (w->system == WORKLOAD_SLUICE || w->system == WORKLOAD_RABBITMQ)) {
        err(errbuf, errlen,
            "--topic-config: only with --system kafka or sluice-kafka (it is sent in "
            "Kafka's CreateTopics), not with --system %s",
            workload_system_name(w->system));
        return WORKLOAD_INVALID;
    }
    if (w->quick) {
        if (!w->set_duration && !w->set_messages) w->duration_s = 3;
        if (!w->set_warmup) w->warmup_s = 1;
    }
    if (w->set_messages) w->duration_s = 0;
    return WORKLOAD_OK;
}

int workload_parse(workload_t *w, int argc, char *const argv[], char *errbuf, size_t errlen)
{
    char name[64];
    workload_defaults(w);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL, *eq;
        if (strncmp(arg, "--", 2) != 0) {
            err(errbuf, errlen, "unexpected argument \"%s\" (workload options start with --)", arg);
            return WORKLOAD_INVALID;
        }
        if ((eq = strchr(arg, '='))) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof name) n = sizeof name - 1; /* too long to be a flag anyway */
            memcpy(name, arg, n);
            name[n] = '\0';
            value = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            /* Only flags that take a value consume the next word, so that
             * "--json --quick" stays two flags; "--producers --json" reports
             * a bad --producers value rather than a missing one. */
            if (strcmp(name, "--json") != 0 && strcmp(name, "--quick") != 0 && i + 1 < argc)
                value = argv[++i];
        }
        int rc = workload_set(w, name, value, errbuf, errlen);
        if (rc != WORKLOAD_OK) return rc;
    }
    return workload_finish(w, errbuf, errlen);
}

const char *workload_system_name(workload_system_t s)
{
    return (unsigned)s < sizeof system_names / sizeof system_names[0] ? system_names[s] : "?";
}

const char *workload_bootstrap(const workload_t *w)
{
    if (w->bootstrap[0]) return w->bootstrap;
    /* The ports the project's own peers listen on (docs/peers.md): Sluice's
     * protocol, Sluice's Kafka listener, bench/peers' Kafka and RabbitMQ. */
    switch (w->system) {
    case WORKLOAD_SLUICE:
        return "127.0.0.1:9292";
    case WORKLOAD_RABBITMQ:
        return "127.0.0.1:15673";
    case WORKLOAD_KAFKA:
        return "127.0.0.1:19092";
    default:
        return "127.0.0.1:9092";
    }
}

static const char *acks_name(workload_acks_t a)
{
    return a == WORKLOAD_ACKS_ALL ? "all" : a == WORKLOAD_ACKS_NONE ? "0" : "1";
}

static const char *compression_name(workload_compression_t c)
{
    return c == WORKLOAD_COMPRESSION_LZ4 ? "lz4" : "none";
}

/* Appends to buf[0..len) at *pos, snprintf-style: *pos keeps counting past
 * len so the caller learns the size needed. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*pos < len ? buf + *pos : NULL, *pos < len ? len - *pos : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n;
}

size_t workload_to_json(const workload_t *w, char *buf, size_t len)
{
    size_t pos = 0;
    if (len) buf[0] = '\0';
    append(buf, len, &pos, "{\"system\":\"%s\",\"bootstrap\":\"", workload_system_name(w->system));
    /* valid_bootstrap() admits no character that needs escaping, but a
     * caller may fill the struct by hand. */
    for (const char *p = workload_bootstrap(w); *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            append(buf, len, &pos, "\\%c", c);
        else if (c < 0x20)
            append(buf, len, &pos, "\\u%04x", c);
        else
            append(buf, len, &pos, "%c", c);
    }
    append(buf, len, &pos,
           "\",\"message_size\":%llu,\"producers\":%u,\"consumers\":%u,\"partitions\":%u,"
           "\"acks\":\"%s\",\"batch_size\":%llu,\"linger_ms\":%u,\"compression\":\"%s\",",
           (unsigned long long)w->message_bytes, (unsigned)w->producers, (unsigned)w->consumers,
           (unsigned)w->partitions, acks_name(w->acks), (unsigned long long)w->batch_bytes,
           (unsigned)w->linger_ms, compression_name(w->compression));
    if (w->messages)
        append(buf, len, &pos, "\"duration_s\":null,\"messages\":%llu,",
               (unsigned long long)w->messages);
    else
        append(buf, len, &pos, "\"duration_s\":%u,\"messages\":null,", (unsigned)w->duration_s);
    append(buf, len, &pos,
           "\"warmup_s\":%u,\"rate\":%llu,\"mode\":\"%s\",\"quick\":%s,\"topic_config\":{",
           (unsigned)w->warmup_s, (unsigned long long)w->rate,
           w->rate ? "open-loop" : "closed-loop", w->quick ? "true" : "false");
    /* set_topic_config() admits nothing that needs escaping. */
    for (uint32_t i = 0; i < w->n_topic_config; i++)
        append(buf, len, &pos, "%s\"%s\":\"%s\"", i ? "," : "", w->topic_config[i].key,
               w->topic_config[i].value);
    append(buf, len, &pos, "}}");
    return pos;
}

/* "100 B", "16 KiB", "1 MiB": exact binary units for the summary line. */
static const char *bytes_str(uint64_t v, char *buf, size_t len)
{
    if (v >= GiB && v % GiB == 0)
        snprintf(buf, len, "%llu GiB", (unsigned long long)(v / GiB));
    else if (v >= MiB && v % MiB == 0)
        snprintf(buf, len, "%llu MiB", (unsigned long long)(v / MiB));
    else if (v >= KiB && v % KiB == 0)
        snprintf(buf, len, "%llu KiB", (unsigned long long)(v / KiB));
    else
        snprintf(buf, len, "%llu B", (unsigned long long)v);
    return buf;
}

size_t workload_summary(const workload_t *w, char *buf, size_t len)
{
    size_t pos = 0;
    char a[32], b[32];
    const char *part = w->system == WORKLOAD_RABBITMQ ? "queue" : "partition";
    if (len) buf[0] = '\0';
    append(buf, len, &pos, "%s @%s: %u producer%s -> %u %s%s -> ", workload_system_name(w->system),
           workload_bootstrap(w), (unsigned)w->producers, w->producers == 1 ? "" : "s",
           (unsigned)w->partitions, part, w->partitions == 1 ? "" : "s");
    if (w->consumers)
        append(buf, len, &pos, "%u consumer%s", (unsigned)w->consumers,
               w->consumers == 1 ? "" : "s");
    else
        append(buf, len, &pos, "no consumer");
    append(buf, len, &pos, ", %s messages, acks=%s, batch %s, linger %u ms, compression %s, ",
           bytes_str(w->message_bytes, a, sizeof a), acks_name(w->acks),
           bytes_str(w->batch_bytes, b, sizeof b), (unsigned)w->linger_ms,
           compression_name(w->compression));
    if (w->messages)
        append(buf, len, &pos, "%llu messages", (unsigned long long)w->messages);
    else
        append(buf, len, &pos, "%u s", (unsigned)w->duration_s);
    append(buf, len, &pos, " after %u s warm-up, ", (unsigned)w->warmup_s);
    if (w->rate)
        append(buf, len, &pos, "open loop at %llu msg/s", (unsigned long long)w->rate);
    else
        append(buf, len, &pos, "closed loop");
    for (uint32_t i = 0; i < w->n_topic_config; i++)
        append(buf, len, &pos, "%s%s=%s", i ? ", " : ", topic config ", w->topic_config[i].key,
               w->topic_config[i].value);
    return pos;
}
