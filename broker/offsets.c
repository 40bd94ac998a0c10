/* offsets.c — committed offsets: record encoding, the durable append, the
 * replay, and the in-memory table (see offsets.h).
 *
 * The table is a sorted array of groups, each with a sorted array of
 * (topic, partition) entries: lookups are binary searches, inserts a
 * memmove. Both are bounded by real partitions (commits name existing
 * topic-partitions; the caller checks) times groups.
 */
#include "offsets.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_build.h"
#include "log.h"

#define KEY_VERSION   1
#define VALUE_VERSION 1
#define REPLAY_CHUNK  (1u << 20)

typedef struct entry {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *metadata;
    int64_t log_offset; /* of the record that set it: later records win */
} entry_t;

typedef struct ogroup {
    char *name;
    entry_t *e;
    size_t n, cap;
} ogroup_t;

struct offsets {
    store_t *store;
    pthread_mutex_t mu;
    ogroup_t **groups;
    size_t ngroups, cap;
    struct {
        uint64_t replayed, skipped; /* records applied and not decoded at open (logged) */
    } st;
    int created; /* [mu] the internal topic exists */
};

/* ---- record encoding ---------------------------------------------------------- */

static size_t put_str(uint8_t *p, const char *s, size_t n)
{
    sl_put_be16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return 2 + n;
}

#define KEY_MAX (2 + 2 + 255 + 2 + STORE_MAX_TOPIC_NAME + 4)

/* The record key: version, group, topic, partition; returns its size. */
static size_t encode_key(uint8_t *k, const char *group, const offsets_entry_t *e)
{
    size_t kl = 0;
    sl_put_be16(k, KEY_VERSION);
    kl = 2;
    kl += put_str(k + kl, group, strlen(group));
    kl += put_str(k + kl, e->topic, strlen(e->topic));
    sl_put_be32(k + kl, (uint32_t)e->partition);
    return kl + 4;
}

static size_t value_size(const offsets_entry_t *e)
{
    return 2 + 8 + 2 + (e->metadata ? strlen(e->metadata) : 0) + 8;
}

/* The record value: version, offset, metadata, commit time, into v
 * (value_size(e) bytes); returns its size. */
static size_t encode_value(uint8_t *v, const offsets_entry_t *e, int64_t now_ms)
{
    const char *md = e->metadata ? e->metadata : "";
    size_t ml = strlen(md);
    sl_put_be16(v, VALUE_VERSION);
    sl_put_be64(v + 2, (uint64_t)e->offset);
    put_str(v + 10, md, ml);
    sl_put_be64(v + 12 + ml, (uint64_t)now_ms);
    return 2 + 8 + 2 + ml + 8;
}

/* Builds the batch, one record per entry, all stamped now_ms: a malloc'd
 * buffer and its size, or NULL when out of memory. */
static uint8_t *build_batch(const char *group, const offsets_entry_t *e, size_t n, int64_t now_ms,
                            size_t *len)
{
    size_t vmax = 0;
    for (size_t i = 0; i < n; i++) {
        size_t vl = value_size(&e[i]);
        if (vl > vmax) vmax = vl;
    }
    uint8_t key[KEY_MAX];
    uint8_t *val = malloc(vmax);
    sl_batch_builder_t b;
    if (!val || sl_batch_build_init(&b, SL_BATCH_HEADER_SIZE + n * 64, 1) != SL_OK) {
        free(val);
        return NULL;
    }
    int rc = SL_OK;
    for (size_t i = 0; i < n && rc == SL_OK; i++) {
        sl_batch_rec_t r = {.timestamp = now_ms, .key = key, .value = val};
        r.key_len = encode_key(key, group, &e[i]);
        r.value_len = encode_value(val, &e[i], now_ms);
        rc = sl_batch_build_append(&b, &r);
    }
    if (rc == SL_OK) rc = sl_batch_build_finish(&b, NULL);
    free(val);
    if (rc != SL_OK) {
        sl_batch_build_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.buf; /* taken from the builder: the caller frees it */
}

/* Reads an i16-length string; NULL when it does not fit. */
static char *get_str(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2) return NULL;
    int16_t n = (int16_t)sl_be16(*p);
    if (n < 0 || end - *p - 2 < n) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    memcpy(s, *p + 2, (size_t)n);
    s[n] = 0;
    *p += 2 + n;
    return s;
}

void offsets_record_free(offsets_record_t *r)
{
    if (!r) return;
    free(r->group);
    free(r->topic);
    free(r->metadata);
    memset(r, 0, sizeof *r);
}

int offsets_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                          int32_t value_len, offsets_record_t *out)
{
    memset(out, 0, sizeof *out);
    if (!key || key_len < 2) return SL_ERR_INVALID_RECORD;
    const uint8_t *p = key, *end = key + key_len;
    if (sl_be16(p) != KEY_VERSION) return SL_ERR_INVALID_RECORD;
    p += 2;
    out->group = get_str(&p, end);
    out->topic = out->group ? get_str(&p, end) : NULL;
    if (!out->topic || end - p != 4 || !*out->group) goto bad;
    out->partition = (int32_t)sl_be32(p);
    if (!value || value_len < 0) {
        out->tombstone = 1;
        return SL_OK;
    }
    p = value;
    end = value + value_len;
    if (value_len < 2 + 8 + 2 + 8 || sl_be16(p) < VALUE_VERSION) goto bad;
    out->offset = (int64_t)sl_be64(p + 2);
    p += 10;
    out->metadata = get_str(&p, end);
    if (!out->metadata || end - p < 8) goto bad;
    out->commit_ms = (int64_t)sl_be64(p);
    return SL_OK;
bad:
    offsets_record_free(out);
    return SL_ERR_INVALID_RECORD;
}

/* ---- the table ---------------------------------------------------------------- */

static size_t group_pos(offsets_t *o, const char *name, int *found)
{
    size_t lo = 0, hi = o->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(o->groups[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int cmp_tp(const entry_t *e, const char *topic, int32_t part)
{
    int c = strcmp(e->topic, topic);
    if (c) return c;
    return e->partition < part ? -1 : e->partition > part;
}

static size_t entry_pos(ogroup_t *g, const char *topic, int32_t part, int *found)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_tp(&g->e[mid], topic, part);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* [mu] Sets (or, tombstone, deletes) one key if log_offset is newer. */
static void table_set(offsets_t *o, const char *group, const char *topic, int32_t part,
                      int64_t offset, const char *md, int64_t log_offset, int tombstone)
{
    int found;
    size_t gi = group_pos(o, group, &found);
    if (!found) {
        if (tombstone) return;
        if (o->ngroups == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 16;
            ogroup_t **ng = realloc(o->groups, cap * sizeof *ng);
            if (!ng) goto oom;
            o->groups = ng;
            o->cap = cap;
        }
        ogroup_t *g = calloc(1, sizeof *g);
        if (!g || !(g->name = strdup(group))) {
            free(g);
            goto oom;
        }
        memmove(&o->groups[gi + 1], &o->groups[gi], (o->ngroups - gi) * sizeof *o->groups);
        o->groups[gi] = g;
        o->ngroups++;
    }
    ogroup_t *g = o->groups[gi];
    size_t ei = entry_pos(g, topic, part, &found);
    if (found) {
        entry_t *e = &g->e[ei];
        if (e->log_offset > log_offset) return;
        if (tombstone) {
            free(e->topic);
            free(e->metadata);
            memmove(e, e + 1, (g->n - ei - 1) * sizeof *e);
            g->n--;
            return;
        }
        char *m = strdup(md);
        if (!m) goto oom;
        free(e->metadata);
        e->metadata = m;
        e->offset = offset;
        e->log_offset = log_offset;
        return;
    }
    if (tombstone) return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        entry_t *ne = realloc(g->e, cap * sizeof *ne);
        if (!ne) goto oom;
        g->e = ne;
        g->cap = cap;
    }
    entry_t ne = {strdup(topic), part, offset, strdup(md), log_offset};
    if (!ne.topic || !ne.metadata) {
        free(ne.topic);
        free(ne.metadata);
        goto oom;
    }
    memmove(&g->e[ei + 1], &g->e[ei], (g->n - ei) * sizeof *g->e);
    g->e[ei] = ne;
    g->n++;
    return;
oom:
    log_error("offsets", "out of memory: committed offset of %s %s/%d not kept in memory", group,
              topic, part);
}

/* ---- open and replay ------------------------------------------------------------- */

static void replay_batch(offsets_t *o, const uint8_t *b, size_t len)
{
    sl_record_iter_t it;
    sl_record_t r;
    sl_err_t err;
    if (sl_record_iter_init(&it, b, len, NULL, &err) != SL_OK) {
        o->st.skipped++;
        sl_record_iter_free(&it);
        return;
    }
    int more;
    while ((more = sl_record_iter_next(&it, &r, &err)) == 1) {
        offsets_record_t rec;
        if (offsets_record_decode(r.key, r.key_len, r.value, r.value_len, &rec) != SL_OK) {
            o->st.skipped++;
            continue;
        }
        table_set(o, rec.group, rec.topic, rec.partition, rec.offset,
                  rec.metadata ? rec.metadata : "", r.offset, rec.tombstone);
        o->st.replayed++;
        offsets_record_free(&rec);
    }
    if (more < 0) o->st.skipped++;
    sl_record_iter_free(&it);
}

static int replay(offsets_t *o, partition_t *p, sl_err_t *err)
{
    int64_t next = partition_log_start(p), end = partition_log_end(p);
    while (next < end) {
        uint8_t *buf;
        size_t len;
        int rc = partition_read_copy(p, next, REPLAY_CHUNK, &buf, &len, err);
        if (rc != SL_OK) return rc;
        if (len == 0) break;
        size_t off = 0;
        int64_t before = next;
        while (off + SL_BATCH_HEADER_SIZE <= len) {
            uint64_t sz = sl_batch_total_size(buf + off);
            if (sz < SL_BATCH_HEADER_SIZE || sz > len - off) break;
            sl_batch_hdr_t h;
            sl_batch_hdr_parse(buf + off, &h);
            replay_batch(o, buf + off, (size_t)sz);
            next = h.base_offset + h.last_offset_delta + 1;
            off += (size_t)sz;
        }
        free(buf);
        if (next <= before) /* no progress: never loop on a bad read */
            return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "%s/0: cannot read past offset %" PRId64,
                              OFFSETS_TOPIC, next);
    }
    return SL_OK;
}

/* Offsets must outlive any retention setting, and a commit of
 * OFFSETS_MAX_ENTRIES partitions with metadata can pass 1 MiB. */
static const char *const topic_keys[] = {"retention.ms", "retention.bytes", "max.message.bytes",
                                         "segment.bytes"};
static const char *const topic_vals[] = {"-1", "-1", "67108864", "104857600"};

int offsets_open(store_t *s, offsets_t **out, sl_err_t *err)
{
    *out = NULL;
    int rc = store_topic_info(s, OFFSETS_TOPIC, NULL, NULL, NULL, NULL);
    int exists = rc == SL_OK;
    if (exists)
        rc = store_topic_alter(s, OFFSETS_TOPIC, topic_keys, topic_vals, 4, err);
    else if (rc == SL_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        rc = SL_OK; /* created by the first commit: a broker without groups shows no such topic */
    if (rc != SL_OK) return rc;
    offsets_t *o = calloc(1, sizeof *o);
    if (!o) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    o->store = s;
    o->created = exists;
    pthread_mutex_init(&o->mu, NULL);
    partition_t *p;
    if (exists && (rc = store_partition(s, OFFSETS_TOPIC, 0, &p, err)) == SL_OK) {
        rc = replay(o, p, err);
        partition_unref(p);
    }
    if (rc != SL_OK) {
        offsets_free(o);
        return rc;
    }
    if (o->st.skipped)
        log_warn("offsets", "%s/0: %" PRIu64 " records did not decode and were skipped",
                 OFFSETS_TOPIC, o->st.skipped);
    log_info("offsets", "replayed %" PRIu64 " committed offsets of %zu groups", o->st.replayed,
             o->ngroups);
    *out = o;
    return SL_OK;
}

void offsets_free(offsets_t *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->ngroups; i++) {
        ogroup_t *g = o->groups[i];
        for (size_t k = 0; k < g->n; k++) {
            free(g->e[k].topic);
            free(g->e[k].metadata);
        }
        free(g->e);
        free(g->name);
        free(g);
    }
    free(o->groups);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* ---- commit ------------------------------------------------------------------------ */

typedef struct commit {
    offsets_t *o;
    partition_t *p;
    char *group;
    offsets_entry_t *e; /* strings inside `strings` */
    size_t n;
    int64_t base_log_offset;
    offsets_done_fn done;
    void *arg;
} commit_t;

static void commit_free(commit_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free((char *)c->e[i].topic);
        free((char *)c->e[i].metadata);
    }
    free(c->e);
    free(c->group);
    if (c->p) partition_unref(c->p);
    free(c);
}

/* The flusher's verdict (its thread, or inline). */
static void synced(void *arg, int code, int64_t durable)
{
    (void)durable;
    commit_t *c = arg;
    offsets_t *o = c->o;
    if (code == SL_OK) {
        pthread_mutex_lock(&o->mu);
        for (size_t i = 0; i < c->n; i++)
            table_set(o, c->group, c->e[i].topic, c->e[i].partition, c->e[i].offset,
                      c->e[i].metadata, c->base_log_offset + (int64_t)i, 0);
        pthread_mutex_unlock(&o->mu);
    }
    offsets_done_fn done = c->done;
    void *darg = c->arg;
    commit_free(c);
    done(darg, code);
}

int offsets_commit(offsets_t *o, const char *group, const offsets_entry_t *e, size_t n,
                   int64_t now_ms, offsets_done_fn done, void *arg, sl_err_t *err)
{
    if (n == 0 || n > OFFSETS_MAX_ENTRIES)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST, "%zu offsets in one commit; 1..%d", n,
                          OFFSETS_MAX_ENTRIES);
    if (!group || !*group || strlen(group) > 255)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST, "group id must be 1..255 bytes");
    for (size_t i = 0; i < n; i++)
        if (!e[i].topic || strlen(e[i].topic) > STORE_MAX_TOPIC_NAME ||
            (e[i].metadata && strlen(e[i].metadata) > OFFSETS_MAX_METADATA))
            return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                              "offset %zu: topic over %d or metadata over %d bytes", i,
                              STORE_MAX_TOPIC_NAME, OFFSETS_MAX_METADATA);
    commit_t *c = calloc(1, sizeof *c);
    if (!c) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    c->o = o;
    c->done = done;
    c->arg = arg;
    c->group = strdup(group);
    c->e = calloc(n, sizeof *c->e);
    int ok = c->group && c->e;
    for (size_t i = 0; ok && i < n; i++) {
        c->n = i + 1;
        c->e[i] = e[i];
        c->e[i].topic = strdup(e[i].topic);
        c->e[i].metadata = strdup(e[i].metadata ? e[i].metadata : "");
        ok = c->e[i].topic && c->e[i].metadata;
    }
    if (!ok) {
        commit_free(c);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    size_t len;
    uint8_t *b = build_batch(group, e, n, now_ms, &len);
    if (!b) {
        commit_free(c);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    /* Under the table lock: the first commit creates the topic (a one-time
     * mkdir and fsync on this worker, as a topic auto-create costs), and
     * appends, so log offsets, happen one commit at a time. */
    pthread_mutex_lock(&o->mu);
    int rc = SL_OK;
    if (!o->created) {
        rc = store_topic_create(o->store, OFFSETS_TOPIC, 1, topic_keys, topic_vals, 4, err);
        if (rc == SL_ERR_TOPIC_ALREADY_EXISTS) /* a client made it meanwhile */
            rc = store_topic_alter(o->store, OFFSETS_TOPIC, topic_keys, topic_vals, 4, err);
        o->created = rc == SL_OK;
    }
    if (rc == SL_OK) rc = store_partition(o->store, OFFSETS_TOPIC, 0, &c->p, err);
    partition_append_info_t info;
    if (rc == SL_OK) rc = partition_append(c->p, b, len, now_ms, &info, err);
    pthread_mutex_unlock(&o->mu);
    free(b);
    if (rc != SL_OK) {
        commit_free(c);
        return rc;
    }
    c->base_log_offset = info.base_offset;
    partition_t *p = c->p;
    partition_ref(p); /* c may be freed by synced() before flusher_wait returns */
    rc = flusher_wait(store_flusher(o->store), p, info.last_offset, synced, c);
    partition_unref(p);
    if (rc != SL_OK) {
        commit_free(c);
        return sl_err_set(err, rc, "out of memory waiting for the flush");
    }
    return SL_OK;
}

/* ---- reads ------------------------------------------------------------------------- */

int offsets_get(offsets_t *o, const char *group, const char *topic, int32_t partition,
                int64_t *offset, char **metadata)
{
    int rc = SL_ERR_NOT_FOUND, found;
    if (metadata) *metadata = NULL;
    pthread_mutex_lock(&o->mu);
    size_t gi = group_pos(o, group, &found);
    if (found) {
        ogroup_t *g = o->groups[gi];
        size_t ei = entry_pos(g, topic, partition, &found);
        if (found) {
            *offset = g->e[ei].offset;
            if (metadata) *metadata = strdup(g->e[ei].metadata);
            rc = SL_OK;
        }
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void offsets_items_free(offsets_item_t *items, size_t n)
{
    if (!items) return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].topic);
        free(items[i].metadata);
    }
    free(items);
}

int offsets_list(offsets_t *o, const char *group, offsets_item_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int found, rc = SL_OK;
    pthread_mutex_lock(&o->mu);
    size_t gi = group_pos(o, group, &found);
    if (found) {
        ogroup_t *g = o->groups[gi];
        *out = calloc(g->n + 1, sizeof **out);
        if (!*out) {
            rc = SL_ERR_NOMEM;
        } else {
            for (size_t i = 0; i < g->n; i++) {
                (*out)[i].topic = strdup(g->e[i].topic);
                (*out)[i].metadata = strdup(g->e[i].metadata);
                (*out)[i].partition = g->e[i].partition;
                (*out)[i].offset = g->e[i].offset;
                *n = i + 1;
                if (!(*out)[i].topic || !(*out)[i].metadata) rc = SL_ERR_NOMEM;
            }
        }
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

int offsets_groups(offsets_t *o, char ***names, size_t *n)
{
    int rc = SL_OK;
    pthread_mutex_lock(&o->mu);
    *names = calloc(o->ngroups + 1, sizeof **names);
    *n = 0;
    if (!*names) rc = SL_ERR_NOMEM;
    for (size_t i = 0; rc == SL_OK && i < o->ngroups; i++) {
        if (!((*names)[i] = strdup(o->groups[i]->name))) rc = SL_ERR_NOMEM;
        *n = i + 1;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}
