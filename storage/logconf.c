#include "logconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(sl_log_conf_t, field)
#define DAY_MS   (24LL * 3600 * 1000)

/* Bounds: segment positions are u32 in the offset index, hence segment.bytes
 * ≤ 2^31 - 1; a batch must fit in a segment. Defaults are Kafka's, except
 * that Kafka's "never" (Long.MAX_VALUE) for the flush policy is spelled out. */
static const sl_log_conf_def_t table[] = {
    {"segment.bytes", F(segment_bytes), 4096, INT32_MAX, 1024LL * 1024 * 1024, "bytes",
     "Size at which the active segment is closed and a new one started."},
    {"segment.ms", F(segment_ms), 1, INT64_MAX, 7 * DAY_MS, "ms",
     "Age (since its first append) at which a non-empty active segment is rolled, so that "
     "time-based retention can delete it."},
    {"retention.ms", F(retention_ms), -1, INT64_MAX, 7 * DAY_MS, "ms",
     "A closed segment whose newest record timestamp is older than this is deleted; -1 keeps "
     "data forever."},
    {"retention.bytes", F(retention_bytes), -1, INT64_MAX, -1, "bytes",
     "Oldest closed segments are deleted while the partition would still hold at least this "
     "many bytes without them; -1 means no size limit."},
    {"index.interval.bytes", F(index_interval_bytes), 0, INT32_MAX, 4096, "bytes",
     "Log bytes between two entries of the sparse offset index (and time index); 0 indexes "
     "every batch."},
    {"flush.messages", F(flush_messages), 1, INT64_MAX, INT64_MAX, "messages",
     "fdatasync a partition once this many messages are unflushed. The default leaves "
     "durability to acks=all and the operating system."},
    {"flush.ms", F(flush_ms), 0, INT64_MAX, INT64_MAX, "ms",
     "fdatasync a partition once its oldest unflushed message is this old."},
    {"max.message.bytes", F(max_message_bytes), 64, 256LL * 1024 * 1024, 1048588, "bytes",
     "Largest record batch accepted, including its 12-byte log overhead (Kafka's default)."},
};

const sl_log_conf_def_t *sl_log_conf_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

void sl_log_conf_defaults(sl_log_conf_t *c)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        *(int64_t *)((char *)c + table[i].offset) = table[i].def;
}

const sl_log_conf_def_t *sl_log_conf_find(const char *key)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, key) == 0) return &table[i];
    return NULL;
}

int64_t sl_log_conf_value(const sl_log_conf_t *c, const sl_log_conf_def_t *def)
{
    return *(const int64_t *)((const char *)c + def->offset);
}

int sl_parse_int64(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    const char *p = s;
    if (*p == '-') p++;
    if (*p < '0' || *p > '9') return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int sl_log_conf_set(sl_log_conf_t *c, const char *key, const char *value, sl_err_t *err)
{
    const sl_log_conf_def_t *d = sl_log_conf_find(key);
    if (!d) {
        const char *best = NULL;
        size_t bestd = 4;
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
            size_t dd = sl_edit_distance(key, table[i].name);
            if (dd < bestd) bestd = dd, best = table[i].name;
        }
        if (best)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "unknown topic config key \"%s\" (did you mean \"%s\"?)", key, best);
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "unknown topic config key \"%s\"", key);
    }
    int64_t v;
    if (sl_parse_int64(value, &v) < 0 || v < d->min || v > d->max)
        return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                          "%s: \"%s\" is not an integer in %lld..%lld (%s)", key, value,
                          (long long)d->min, (long long)d->max, d->unit);
    *(int64_t *)((char *)c + d->offset) = v;
    return SL_OK;
}
