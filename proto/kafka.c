/* kafka.c — Kafka's classic (non-flexible) wire encoding: frames, request
 * header v1, the request bodies of the served APIs, and the response writer.
 *
 * Every request byte is hostile. Decoding goes through one reader (rd_t)
 * with a sticky error: the first failure records a code and a message naming
 * the field ("Fetch v11: topics[0].partitions: count ..."), and every later
 * read is a no-op returning zero, so the per-API decoders are straight-line
 * code that checks the outcome once at the end. Counts are checked against
 * the bytes left (count * smallest element) before anything is allocated,
 * and all memory comes from the caller's arena.
 */
#include "kafka.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h" /* sl_be16/32/64, sl_put_be16/32/64 */

/* ---- the API table -------------------------------------------------------- */

typedef struct api_info {
    int16_t key;
    int16_t max;
    const char *name;
} api_info_t;

/* Ascending by key; the max versions are kafka-protocol.md §3's "advertise"
 * column (the highest non-flexible version librdkafka 2.0.2 sends). */
static const api_info_t apis[] = {
    {KF_PRODUCE, 7, "Produce"},
    {KF_FETCH, 11, "Fetch"},
    {KF_LIST_OFFSETS, 2, "ListOffsets"},
    {KF_METADATA, 4, "Metadata"},
    {KF_OFFSET_COMMIT, 7, "OffsetCommit"},
    {KF_OFFSET_FETCH, 5, "OffsetFetch"},
    {KF_FIND_COORDINATOR, 2, "FindCoordinator"},
    {KF_JOIN_GROUP, 5, "JoinGroup"},
    {KF_HEARTBEAT, 3, "Heartbeat"},
    {KF_LEAVE_GROUP, 1, "LeaveGroup"},
    {KF_SYNC_GROUP, 3, "SyncGroup"},
    {KF_DESCRIBE_GROUPS, 4, "DescribeGroups"},
    {KF_LIST_GROUPS, 2, "ListGroups"},
    {KF_API_VERSIONS, 2, "ApiVersions"},
    {KF_CREATE_TOPICS, 4, "CreateTopics"},
    {KF_DELETE_TOPICS, 3, "DeleteTopics"},
    {KF_INIT_PRODUCER_ID, 1, "InitProducerId"},
};
#define NAPIS (sizeof apis / sizeof apis[0])

/* kf_api_list hands out int16_t keys; the same order as apis[]. */
static const int16_t api_keys[] = {
    KF_PRODUCE,          KF_FETCH,        KF_LIST_OFFSETS,     KF_METADATA,
    KF_OFFSET_COMMIT,    KF_OFFSET_FETCH, KF_FIND_COORDINATOR, KF_JOIN_GROUP,
    KF_HEARTBEAT,        KF_LEAVE_GROUP,  KF_SYNC_GROUP,       KF_DESCRIBE_GROUPS,
    KF_LIST_GROUPS,      KF_API_VERSIONS, KF_CREATE_TOPICS,    KF_DELETE_TOPICS,
    KF_INIT_PRODUCER_ID,
};
_Static_assert(sizeof api_keys / sizeof api_keys[0] == NAPIS, "api_keys and apis differ");

static const api_info_t *api_find(int api_key)
{
    for (size_t i = 0; i < NAPIS; i++)
        if (apis[i].key == api_key) return &apis[i];
    return NULL;
}

int kf_api_max(int api_key)
{
    const api_info_t *a = api_find(api_key);
    return a ? a->max : -1;
}

size_t kf_api_list(const int16_t **keys)
{
    *keys = api_keys;
    return NAPIS;
}

const char *kf_api_name(int api_key)
{
    const api_info_t *a = api_find(api_key);
    return a ? a->name : "Unknown";
}

/* ---- frames --------------------------------------------------------------- */

int kf_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *total)
{
    if (len < 4) return SL_ERR_PARTIAL;
    uint32_t size = sl_be32(buf);
    /* Kafka reads the size as an int32 and rejects a negative one as an
     * invalid receive, whatever the limit; this also keeps 4 + size from
     * wrapping. */
    if (size > INT32_MAX || size < KF_MIN_FRAME - 4) return SL_ERR_INVALID_REQUEST;
    if (size > max_frame) return SL_ERR_MESSAGE_TOO_LARGE;
    *total = size + 4;
    return SL_OK;
}

/* ---- the reader ----------------------------------------------------------- */

#define RD_DEPTH 4

/* One level of the field path: an array being walked and the index in it. */
typedef struct rd_level {
    const char *name;
    int32_t idx;
} rd_level_t;

typedef struct rd {
    uint8_t *p, *end;
    sl_arena_t *a;
    sl_err_t *err;
    int rc;        /* the first error; SL_OK while all is well */
    char what[48]; /* "Fetch v11" or "request header", for messages */
    rd_level_t lvl[RD_DEPTH];
    int depth;
} rd_t;

static void rd_init(rd_t *r, uint8_t *p, size_t len, sl_arena_t *a, sl_err_t *err, const char *what)
{
    memset(r, 0, sizeof *r);
    r->p = p;
    r->end = p + len;
    r->a = a;
    r->err = err;
    snprintf(r->what, sizeof r->what, "%s", what);
}

static size_t rd_left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Records the first error only: a later failure is a consequence of it
 * (reads after an error return zeros), so its message would mislead. The
 * path is formatted here, not while walking, so that a good request pays
 * nothing for it. */
__attribute__((format(printf, 4, 5))) static void rd_fail(rd_t *r, int code, const char *field,
                                                          const char *fmt, ...)
{
    if (r->rc != SL_OK) return;
    r->rc = code;
    char path[128];
    size_t n = 0;
    path[0] = '\0';
    int depth = r->depth < RD_DEPTH ? r->depth : RD_DEPTH;
    for (int i = 0; i < depth && n < sizeof path; i++) {
        const rd_level_t *l = &r->lvl[i];
        int k = snprintf(path + n, sizeof path - n, "%s%s[%d]", i ? "." : "", l->name, (int)l->idx);
        if (k < 0) break;
        n += (size_t)k;
    }
    if (field && n < sizeof path) snprintf(path + n, sizeof path - n, "%s%s", n ? "." : "", field);
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sl_err_set(r->err, code, "%s: %s: %s", r->what, path, msg);
}

/* Enters an array of structs; rd_at() sets the element index. */
static void rd_push(rd_t *r, const char *name)
{
    if (r->depth < RD_DEPTH) r->lvl[r->depth] = (rd_level_t){name, 0};
    r->depth++;
}

static void rd_at(rd_t *r, int32_t i)
{
    if (r->depth > 0 && r->depth <= RD_DEPTH) r->lvl[r->depth - 1].idx = i;
}

static void rd_pop(rd_t *r)
{
    if (r->depth > 0) r->depth--;
}

/* True when n more bytes can be read; records the error otherwise. */
static bool rd_need(rd_t *r, const char *field, size_t n)
{
    if (r->rc != SL_OK) return false;
    if (rd_left(r) >= n) return true;
    rd_fail(r, SL_ERR_INVALID_REQUEST, field, "needs %zu bytes, %zu left", n, rd_left(r));
    return false;
}

static int8_t rd_i8(rd_t *r, const char *field)
{
    if (!rd_need(r, field, 1)) return 0;
    return (int8_t)*r->p++;
}

/* Kafka reads a boolean as "byte != 0"; so does this. */
static bool rd_bool(rd_t *r, const char *field)
{
    return rd_i8(r, field) != 0;
}

static int16_t rd_i16(rd_t *r, const char *field)
{
    if (!rd_need(r, field, 2)) return 0;
    int16_t v = (int16_t)sl_be16(r->p);
    r->p += 2;
    return v;
}

static int32_t rd_i32(rd_t *r, const char *field)
{
    if (!rd_need(r, field, 4)) return 0;
    int32_t v = (int32_t)sl_be32(r->p);
    r->p += 4;
    return v;
}

static int64_t rd_i64(rd_t *r, const char *field)
{
    if (!rd_need(r, field, 8)) return 0;
    int64_t v = (int64_t)sl_be64(r->p);
    r->p += 8;
    return v;
}

static void rd_skip(rd_t *r, const char *field, size_t n)
{
    if (rd_need(r, field, n)) r->p += n;
}

/* Arena memory for n elements of `size` bytes; NULL for n == 0 (nothing to
 * point at) and after an error (NOMEM past the arena's limit). */
static void *rd_alloc(rd_t *r, const char *field, size_t n, size_t size)
{
    if (r->rc != SL_OK || n == 0) return NULL;
    if (n > SIZE_MAX / size) {
        rd_fail(r, SL_ERR_NOMEM, field, "%zu elements of %zu bytes overflow", n, size);
        return NULL;
    }
    void *p = sl_arena_alloc(r->a, n * size);
    if (!p)
        rd_fail(r, SL_ERR_NOMEM, field, "%zu bytes exceed the arena's limit of %zu", n * size,
                r->a->limit);
    return p;
}

/* Shared by strings: validates and returns the length, -1 for null (only
 * when nullable), -2 after an error; the bytes are at r->p. */
static int rd_str_len(rd_t *r, const char *field, bool nullable)
{
    int16_t len = rd_i16(r, field);
    if (r->rc != SL_OK) return -2;
    if (len == -1 && nullable) return -1;
    if (len < 0) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "string length %d is not allowed", len);
        return -2;
    }
    if ((size_t)len > rd_left(r)) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "string length %d exceeds the %zu bytes left",
                len, rd_left(r));
        return -2;
    }
    const uint8_t *nul = memchr(r->p, 0, (size_t)len);
    if (nul) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "string holds a NUL byte at %d",
                (int)(nul - r->p));
        return -2;
    }
    return len;
}

/* A string copied into the arena and NUL-terminated. NULL for a null one
 * (nullable only) and after an error. */
static const char *rd_str_any(rd_t *r, const char *field, bool nullable)
{
    int len = rd_str_len(r, field, nullable);
    if (len < 0) return NULL;
    char *s = rd_alloc(r, field, (size_t)len + 1, 1);
    if (!s) return NULL;
    memcpy(s, r->p, (size_t)len);
    s[len] = '\0';
    r->p += len;
    return s;
}

static const char *rd_str(rd_t *r, const char *field)
{
    return rd_str_any(r, field, false);
}

static const char *rd_nstr(rd_t *r, const char *field)
{
    return rd_str_any(r, field, true);
}

/* A string validated like the others but not copied (fields the broker
 * ignores). */
static void rd_skip_str(rd_t *r, const char *field)
{
    int len = rd_str_len(r, field, false);
    if (len > 0) r->p += len;
}

/* bytes: a view into the body. Null (nullable only) gives NULL and length
 * 0; an empty value gives a non-NULL pointer and length 0. */
static uint8_t *rd_bytes_any(rd_t *r, const char *field, bool nullable, int32_t *len_out)
{
    *len_out = 0;
    int32_t len = rd_i32(r, field);
    if (r->rc != SL_OK) return NULL;
    if (len == -1 && nullable) return NULL;
    if (len < 0) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "bytes length %d is not allowed", (int)len);
        return NULL;
    }
    if ((size_t)len > rd_left(r)) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "bytes length %d exceeds the %zu bytes left",
                (int)len, rd_left(r));
        return NULL;
    }
    uint8_t *b = r->p;
    r->p += len;
    *len_out = len;
    return b;
}

/* An array count, checked against the bytes left assuming each element
 * takes at least min_size bytes, so a hostile count fails here, before any
 * allocation. Returns the count, -1 for null (only when nullable), 0 after
 * an error. */
static int32_t rd_count(rd_t *r, const char *field, size_t min_size, bool nullable)
{
    int32_t n = rd_i32(r, field);
    if (r->rc != SL_OK) return 0;
    if (n == -1 && nullable) return -1;
    if (n < 0) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "array count %d is not allowed", (int)n);
        return 0;
    }
    if ((uint64_t)n * min_size > rd_left(r)) {
        rd_fail(r, SL_ERR_INVALID_REQUEST, field, "count %d exceeds the %zu bytes left", (int)n,
                rd_left(r));
        return 0;
    }
    return n;
}

/* count + allocation for an array of structs, the common case. */
#define RD_ARRAY(r, field, n, type) ((type *)rd_alloc((r), (field), (size_t)(n), sizeof(type)))

/* [string]: *n is the count, -1 for null (only when nullable). */
static const char **rd_str_array(rd_t *r, const char *field, bool nullable, int32_t *n)
{
    *n = rd_count(r, field, 2, nullable);
    if (*n <= 0) return NULL;
    const char **v = RD_ARRAY(r, field, *n, const char *);
    rd_push(r, field);
    for (int32_t i = 0; i < *n && r->rc == SL_OK; i++) {
        rd_at(r, i);
        v[i] = rd_str(r, NULL);
    }
    rd_pop(r);
    return v;
}

/* [int32]: a count and a view, values decoded into the arena. */
static int32_t *rd_i32_array(rd_t *r, const char *field, int32_t *n)
{
    *n = rd_count(r, field, 4, false);
    int32_t *v = RD_ARRAY(r, field, *n, int32_t);
    for (int32_t i = 0; i < *n && r->rc == SL_OK; i++) v[i] = rd_i32(r, field);
    return v;
}

/* [int32] the broker ignores: count checked, contents skipped. */
static void rd_skip_i32_array(rd_t *r, const char *field)
{
    int32_t n = rd_count(r, field, 4, false);
    rd_skip(r, field, (size_t)n * 4);
}

/* ---- request bodies ------------------------------------------------------- */

static void dec_produce(rd_t *r, int v, kf_produce_req_t *q)
{
    q->transactional_id = v >= 3 ? rd_nstr(r, "transactional_id") : NULL;
    q->acks = rd_i16(r, "acks");
    q->timeout_ms = rd_i32(r, "timeout_ms");
    /* topic: name(2) + partition count(4); partition: index(4) + length(4) */
    q->ntopics = rd_count(r, "topic_data", 6, false);
    q->topics = RD_ARRAY(r, "topic_data", q->ntopics, kf_produce_topic_t);
    rd_push(r, "topic_data");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_produce_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->name = rd_str(r, "name");
        t->nparts = rd_count(r, "partition_data", 8, false);
        t->parts = RD_ARRAY(r, "partition_data", t->nparts, kf_produce_part_t);
        rd_push(r, "partition_data");
        for (int32_t j = 0; j < t->nparts && r->rc == SL_OK; j++) {
            kf_produce_part_t *p = &t->parts[j];
            rd_at(r, j);
            p->index = rd_i32(r, "index");
            p->records = rd_bytes_any(r, "records", true, &p->records_len);
        }
        rd_pop(r);
    }
    rd_pop(r);
}

static void dec_fetch(rd_t *r, int v, kf_fetch_req_t *q)
{
    q->replica_id = rd_i32(r, "replica_id");
    q->max_wait_ms = rd_i32(r, "max_wait_ms");
    q->min_bytes = rd_i32(r, "min_bytes");
    q->max_bytes = v >= 3 ? rd_i32(r, "max_bytes") : INT32_MAX;
    q->isolation_level = v >= 4 ? rd_i8(r, "isolation_level") : 0;
    q->session_id = v >= 7 ? rd_i32(r, "session_id") : 0;
    q->session_epoch = v >= 7 ? rd_i32(r, "session_epoch") : -1;
    size_t part_size = 4 + (v >= 9 ? 4 : 0) + 8 + (v >= 5 ? 8 : 0) + 4;
    q->ntopics = rd_count(r, "topics", 6, false);
    q->topics = RD_ARRAY(r, "topics", q->ntopics, kf_fetch_topic_t);
    rd_push(r, "topics");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_fetch_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->topic = rd_str(r, "topic");
        t->nparts = rd_count(r, "partitions", part_size, false);
        t->parts = RD_ARRAY(r, "partitions", t->nparts, kf_fetch_part_t);
        rd_push(r, "partitions");
        for (int32_t j = 0; j < t->nparts && r->rc == SL_OK; j++) {
            kf_fetch_part_t *p = &t->parts[j];
            rd_at(r, j);
            p->partition = rd_i32(r, "partition");
            p->current_leader_epoch = v >= 9 ? rd_i32(r, "current_leader_epoch") : -1;
            p->fetch_offset = rd_i64(r, "fetch_offset");
            p->log_start_offset = v >= 5 ? rd_i64(r, "log_start_offset") : -1;
            p->partition_max_bytes = rd_i32(r, "partition_max_bytes");
        }
        rd_pop(r);
    }
    rd_pop(r);
    if (v >= 7) {
        /* Incremental fetch sessions are not supported (session 0 / epoch
         * -1 is a full fetch), so the forgotten topics only need to parse. */
        int32_t n = rd_count(r, "forgotten_topics_data", 6, false);
        rd_push(r, "forgotten_topics_data");
        for (int32_t i = 0; i < n && r->rc == SL_OK; i++) {
            rd_at(r, i);
            rd_skip_str(r, "topic");
            rd_skip_i32_array(r, "partitions");
        }
        rd_pop(r);
    }
    if (v >= 11) rd_skip_str(r, "rack_id");
}

static void dec_list_offsets(rd_t *r, int v, kf_list_offsets_req_t *q)
{
    q->replica_id = rd_i32(r, "replica_id");
    q->isolation_level = v >= 2 ? rd_i8(r, "isolation_level") : 0;
    size_t part_size = 4 + 8 + (v == 0 ? 4 : 0);
    q->ntopics = rd_count(r, "topics", 6, false);
    q->topics = RD_ARRAY(r, "topics", q->ntopics, kf_list_offsets_topic_t);
    rd_push(r, "topics");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_list_offsets_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->name = rd_str(r, "name");
        t->nparts = rd_count(r, "partitions", part_size, false);
        t->parts = RD_ARRAY(r, "partitions", t->nparts, kf_list_offsets_part_t);
        rd_push(r, "partitions");
        for (int32_t j = 0; j < t->nparts && r->rc == SL_OK; j++) {
            kf_list_offsets_part_t *p = &t->parts[j];
            rd_at(r, j);
            p->partition = rd_i32(r, "partition_index");
            p->current_leader_epoch = -1;
            p->timestamp = rd_i64(r, "timestamp");
            p->max_num_offsets = v == 0 ? rd_i32(r, "max_num_offsets") : 1;
        }
        rd_pop(r);
    }
    rd_pop(r);
}

static void dec_metadata(rd_t *r, int v, kf_metadata_req_t *q)
{
    /* v0's array is not nullable and empty means all; v1+ uses null. */
    q->topics = rd_str_array(r, "topics", v >= 1, &q->ntopics);
    if (q->ntopics < 0) {
        q->all_topics = true;
        q->ntopics = 0;
    } else {
        q->all_topics = v == 0 && q->ntopics == 0;
    }
    q->allow_auto_topic_creation = v >= 4 ? rd_bool(r, "allow_auto_topic_creation") : true;
}

static void dec_offset_commit(rd_t *r, int v, kf_offset_commit_req_t *q)
{
    q->group_id = rd_str(r, "group_id");
    q->generation_id = v >= 1 ? rd_i32(r, "generation_id") : -1;
    q->member_id = v >= 1 ? rd_str(r, "member_id") : "";
    q->group_instance_id = v >= 7 ? rd_nstr(r, "group_instance_id") : NULL;
    q->retention_time_ms = v >= 2 && v <= 4 ? rd_i64(r, "retention_time_ms") : -1;
    size_t part_size = 4 + 8 + (v >= 6 ? 4 : 0) + (v == 1 ? 8 : 0) + 2;
    q->ntopics = rd_count(r, "topics", 6, false);
    q->topics = RD_ARRAY(r, "topics", q->ntopics, kf_commit_topic_t);
    rd_push(r, "topics");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_commit_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->name = rd_str(r, "name");
        t->nparts = rd_count(r, "partitions", part_size, false);
        t->parts = RD_ARRAY(r, "partitions", t->nparts, kf_commit_part_t);
        rd_push(r, "partitions");
        for (int32_t j = 0; j < t->nparts && r->rc == SL_OK; j++) {
            kf_commit_part_t *p = &t->parts[j];
            rd_at(r, j);
            p->index = rd_i32(r, "partition_index");
            p->offset = rd_i64(r, "committed_offset");
            p->leader_epoch = v >= 6 ? rd_i32(r, "committed_leader_epoch") : -1;
            p->commit_timestamp = v == 1 ? rd_i64(r, "commit_timestamp") : -1;
            p->metadata = rd_nstr(r, "committed_metadata");
        }
        rd_pop(r);
    }
    rd_pop(r);
}

static void dec_offset_fetch(rd_t *r, int v, kf_offset_fetch_req_t *q)
{
    q->group_id = rd_str(r, "group_id");
    q->ntopics = rd_count(r, "topics", 6, v >= 2);
    if (q->ntopics < 0) {
        q->all_topics = true;
        q->ntopics = 0;
        return;
    }
    q->topics = RD_ARRAY(r, "topics", q->ntopics, kf_offset_fetch_topic_t);
    rd_push(r, "topics");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_offset_fetch_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->name = rd_str(r, "name");
        t->parts = rd_i32_array(r, "partition_indexes", &t->nparts);
    }
    rd_pop(r);
}

static void dec_find_coordinator(rd_t *r, int v, kf_find_coordinator_req_t *q)
{
    q->key = rd_str(r, "key");
    q->key_type = v >= 1 ? rd_i8(r, "key_type") : 0;
}

static void dec_join_group(rd_t *r, int v, kf_join_group_req_t *q)
{
    q->group_id = rd_str(r, "group_id");
    q->session_timeout_ms = rd_i32(r, "session_timeout_ms");
    q->rebalance_timeout_ms = v >= 1 ? rd_i32(r, "rebalance_timeout_ms") : q->session_timeout_ms;
    q->member_id = rd_str(r, "member_id");
    q->group_instance_id = v >= 5 ? rd_nstr(r, "group_instance_id") : NULL;
    q->protocol_type = rd_str(r, "protocol_type");
    q->nprotocols = rd_count(r, "protocols", 6, false);
    q->protocols = RD_ARRAY(r, "protocols", q->nprotocols, kf_join_protocol_t);
    rd_push(r, "protocols");
    for (int32_t i = 0; i < q->nprotocols && r->rc == SL_OK; i++) {
        kf_join_protocol_t *p = &q->protocols[i];
        rd_at(r, i);
        p->name = rd_str(r, "name");
        p->metadata = rd_bytes_any(r, "metadata", false, &p->metadata_len);
    }
    rd_pop(r);
}

static void dec_heartbeat(rd_t *r, int v, kf_heartbeat_req_t *q)
{
    q->group_id = rd_str(r, "group_id");
    q->generation_id = rd_i32(r, "generation_id");
    q->member_id = rd_str(r, "member_id");
    q->group_instance_id = v >= 3 ? rd_nstr(r, "group_instance_id") : NULL;
}

static void dec_leave_group(rd_t *r, int v, kf_leave_group_req_t *q)
{
    (void)v; /* v0 and v1 are the same */
    q->group_id = rd_str(r, "group_id");
    q->member_id = rd_str(r, "member_id");
}

static void dec_sync_group(rd_t *r, int v, kf_sync_group_req_t *q)
{
    q->group_id = rd_str(r, "group_id");
    q->generation_id = rd_i32(r, "generation_id");
    q->member_id = rd_str(r, "member_id");
    q->group_instance_id = v >= 3 ? rd_nstr(r, "group_instance_id") : NULL;
    q->nassignments = rd_count(r, "assignments", 6, false);
    q->assignments = RD_ARRAY(r, "assignments", q->nassignments, kf_sync_assignment_t);
    rd_push(r, "assignments");
    for (int32_t i = 0; i < q->nassignments && r->rc == SL_OK; i++) {
        kf_sync_assignment_t *s = &q->assignments[i];
        rd_at(r, i);
        s->member_id = rd_str(r, "member_id");
        s->assignment = rd_bytes_any(r, "assignment", false, &s->assignment_len);
    }
    rd_pop(r);
}

static void dec_describe_groups(rd_t *r, int v, kf_describe_groups_req_t *q)
{
    q->groups = rd_str_array(r, "groups", false, &q->ngroups);
    q->include_authorized_operations = v >= 3 ? rd_bool(r, "include_authorized_operations") : false;
}

static void dec_create_topics(rd_t *r, int v, kf_create_topics_req_t *q)
{
    /* topic: name(2) + num_partitions(4) + replication_factor(2) +
     * assignments count(4) + configs count(4) */
    q->ntopics = rd_count(r, "topics", 16, false);
    q->topics = RD_ARRAY(r, "topics", q->ntopics, kf_create_topic_t);
    rd_push(r, "topics");
    for (int32_t i = 0; i < q->ntopics && r->rc == SL_OK; i++) {
        kf_create_topic_t *t = &q->topics[i];
        rd_at(r, i);
        t->name = rd_str(r, "name");
        t->num_partitions = rd_i32(r, "num_partitions");
        t->replication_factor = rd_i16(r, "replication_factor");
        /* Manual assignments are not supported (the broker rejects them),
         * so they are only counted. */
        t->nassignments = rd_count(r, "assignments", 8, false);
        rd_push(r, "assignments");
        for (int32_t j = 0; j < t->nassignments && r->rc == SL_OK; j++) {
            rd_at(r, j);
            rd_skip(r, "partition_index", 4);
            rd_skip_i32_array(r, "broker_ids");
        }
        rd_pop(r);
        t->nconfigs = rd_count(r, "configs", 4, false);
        t->configs = RD_ARRAY(r, "configs", t->nconfigs, kf_create_config_t);
        rd_push(r, "configs");
        for (int32_t j = 0; j < t->nconfigs && r->rc == SL_OK; j++) {
            rd_at(r, j);
            t->configs[j].name = rd_str(r, "name");
            t->configs[j].value = rd_nstr(r, "value");
        }
        rd_pop(r);
    }
    rd_pop(r);
    q->timeout_ms = rd_i32(r, "timeout_ms");
    q->validate_only = v >= 1 ? rd_bool(r, "validate_only") : false;
}

static void dec_delete_topics(rd_t *r, int v, kf_delete_topics_req_t *q)
{
    (void)v; /* v0..v3 are the same */
    q->names = rd_str_array(r, "topic_names", false, &q->nnames);
    q->timeout_ms = rd_i32(r, "timeout_ms");
}

static void dec_init_producer_id(rd_t *r, int v, kf_init_producer_id_req_t *q)
{
    (void)v; /* v0 and v1 are the same */
    q->transactional_id = rd_nstr(r, "transactional_id");
    q->transaction_timeout_ms = rd_i32(r, "transaction_timeout_ms");
}

/* ---- header and request --------------------------------------------------- */

/* key(2) + version(2) + correlation id(4) after the size */
#define HDR_FIXED 12

int kf_header_decode(uint8_t *frame, uint32_t total, sl_arena_t *a, kf_header_t *h, uint8_t **body,
                     size_t *body_len, sl_err_t *err)
{
    memset(h, 0, sizeof *h);
    *body = NULL;
    *body_len = 0;
    if (total < HDR_FIXED)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                          "request frame of %u bytes is shorter than its %d-byte header", total,
                          KF_MIN_FRAME);
    h->api_key = (int16_t)sl_be16(frame + 4);
    h->api_version = (int16_t)sl_be16(frame + 6);
    h->correlation_id = (int32_t)sl_be32(frame + 8);
    rd_t r;
    rd_init(&r, frame + HDR_FIXED, total - HDR_FIXED, a, err, "request header");
    h->client_id = rd_nstr(&r, "client_id");
    if (r.rc != SL_OK) return r.rc;
    *body = r.p;
    *body_len = rd_left(&r);
    return SL_OK;
}

int kf_request_decode(uint8_t *frame, uint32_t total, sl_arena_t *a, kf_request_t *out,
                      sl_err_t *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = kf_header_decode(frame, total, a, &out->h, &body, &len, err);
    if (rc != SL_OK) return rc;
    int key = out->h.api_key, v = out->h.api_version;
    const api_info_t *api = api_find(key);
    if (!api) return sl_err_set(err, SL_ERR_UNSUPPORTED_VERSION, "api key %d is not served", key);
    /* ApiVersions above v2 lands here too: its body (flexible encoding) is
     * never looked at, the broker answers in v0 form. */
    if (v < 0 || v > api->max)
        return sl_err_set(err, SL_ERR_UNSUPPORTED_VERSION, "%s v%d is not served (v0..v%d)",
                          api->name, v, api->max);

    char what[48];
    snprintf(what, sizeof what, "%s v%d", api->name, v);
    rd_t r;
    rd_init(&r, body, len, a, err, what);
    switch (key) {
    case KF_PRODUCE:
        dec_produce(&r, v, &out->u.produce);
        break;
    case KF_FETCH:
        dec_fetch(&r, v, &out->u.fetch);
        break;
    case KF_LIST_OFFSETS:
        dec_list_offsets(&r, v, &out->u.list_offsets);
        break;
    case KF_METADATA:
        dec_metadata(&r, v, &out->u.metadata);
        break;
    case KF_OFFSET_COMMIT:
        dec_offset_commit(&r, v, &out->u.offset_commit);
        break;
    case KF_OFFSET_FETCH:
        dec_offset_fetch(&r, v, &out->u.offset_fetch);
        break;
    case KF_FIND_COORDINATOR:
        dec_find_coordinator(&r, v, &out->u.find_coordinator);
        break;
    case KF_JOIN_GROUP:
        dec_join_group(&r, v, &out->u.join_group);
        break;
    case KF_HEARTBEAT:
        dec_heartbeat(&r, v, &out->u.heartbeat);
        break;
    case KF_LEAVE_GROUP:
        dec_leave_group(&r, v, &out->u.leave_group);
        break;
    case KF_SYNC_GROUP:
        dec_sync_group(&r, v, &out->u.sync_group);
        break;
    case KF_DESCRIBE_GROUPS:
        dec_describe_groups(&r, v, &out->u.describe_groups);
        break;
    case KF_CREATE_TOPICS:
        dec_create_topics(&r, v, &out->u.create_topics);
        break;
    case KF_DELETE_TOPICS:
        dec_delete_topics(&r, v, &out->u.delete_topics);
        break;
    case KF_INIT_PRODUCER_ID:
        dec_init_producer_id(&r, v, &out->u.init_producer_id);
        break;
    default: /* ListGroups v0..v2 and ApiVersions v0..v2: empty bodies */
        break;
    }
    if (r.rc != SL_OK) return r.rc;
    if (r.p != r.end)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST, "%zu bytes left after the body of %s",
                          rd_left(&r), what);
    return SL_OK;
}

/* ---- writer --------------------------------------------------------------- */

#define KW_INITIAL_CAP 256

/* Makes room for n more bytes, doubling; false (and oom latched) when the
 * memory is not there. */
static bool kw_room(kf_writer_t *w, size_t n)
{
    if (w->oom) return false;
    if (w->cap - w->len >= n) return true;
    size_t cap = w->cap ? w->cap : KW_INITIAL_CAP;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->oom = 1;
            return false;
        }
        cap *= 2;
    }
    uint8_t *b = realloc(w->buf, cap);
    if (!b) {
        w->oom = 1;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

void kw_init_plain(kf_writer_t *w)
{
    memset(w, 0, sizeof *w);
}

void kw_init(kf_writer_t *w, int32_t correlation_id)
{
    kw_init_plain(w);
    kw_i32(w, 0); /* the size, patched by kw_finish */
    kw_i32(w, correlation_id);
}

void kw_raw(kf_writer_t *w, const void *b, size_t len)
{
    if (len == 0 || !kw_room(w, len)) return;
    memcpy(w->buf + w->len, b, len);
    w->len += len;
}

void kw_i8(kf_writer_t *w, int8_t v)
{
    uint8_t b = (uint8_t)v;
    kw_raw(w, &b, 1);
}

void kw_i16(kf_writer_t *w, int16_t v)
{
    uint8_t b[2];
    sl_put_be16(b, (uint16_t)v);
    kw_raw(w, b, sizeof b);
}

void kw_i32(kf_writer_t *w, int32_t v)
{
    uint8_t b[4];
    sl_put_be32(b, (uint32_t)v);
    kw_raw(w, b, sizeof b);
}

void kw_i64(kf_writer_t *w, int64_t v)
{
    uint8_t b[8];
    sl_put_be64(b, (uint64_t)v);
    kw_raw(w, b, sizeof b);
}

void kw_bool(kf_writer_t *w, bool v)
{
    kw_i8(w, v ? 1 : 0);
}

void kw_str(kf_writer_t *w, const char *s)
{
    kw_strn(w, s, s ? strlen(s) : 0);
}

void kw_strn(kf_writer_t *w, const char *s, size_t n)
{
    if (!s) {
        kw_i16(w, -1);
        return;
    }
    if (n > INT16_MAX) n = INT16_MAX;
    kw_i16(w, (int16_t)n);
    kw_raw(w, s, n);
}

void kw_bytes(kf_writer_t *w, const uint8_t *b, int32_t len)
{
    if (!b || len < 0) {
        kw_i32(w, -1);
        return;
    }
    kw_i32(w, len);
    kw_raw(w, b, (size_t)len);
}

size_t kw_reserve_i32(kf_writer_t *w)
{
    size_t pos = w->len;
    kw_i32(w, 0);
    return pos;
}

void kw_patch_i32(kf_writer_t *w, size_t pos, int32_t v)
{
    if (w->oom || pos > w->len || w->len - pos < 4) return;
    sl_put_be32(w->buf + pos, (uint32_t)v);
}

/* A size that does not fit Kafka's int32 cannot be sent either; it is
 * treated like an allocation failure. */
int kw_finish(kf_writer_t *w, uint64_t extra)
{
    if (!w->oom && w->len >= 4) {
        uint64_t size = (uint64_t)w->len - 4 + extra;
        if (size <= INT32_MAX && size >= extra) {
            sl_put_be32(w->buf, (uint32_t)size);
            return 0;
        }
    }
    kw_free(w);
    w->oom = 1;
    return -1;
}

uint8_t *kw_take(kf_writer_t *w, size_t *len)
{
    /* Callers tell failure by NULL, so an empty result is a real buffer. */
    if (!w->buf) kw_room(w, 1);
    if (w->oom) {
        kw_free(w);
        *len = 0;
        return NULL;
    }
    uint8_t *b = w->buf;
    *len = w->len;
    memset(w, 0, sizeof *w);
    return b;
}

void kw_free(kf_writer_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ---- reader helpers ------------------------------------------------------- */

int kr_i16(const uint8_t **p, const uint8_t *end, int16_t *v)
{
    if (end - *p < 2) return -1;
    *v = (int16_t)sl_be16(*p);
    *p += 2;
    return 0;
}

int kr_i32(const uint8_t **p, const uint8_t *end, int32_t *v)
{
    if (end - *p < 4) return -1;
    *v = (int32_t)sl_be32(*p);
    *p += 4;
    return 0;
}

int kr_i64(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    if (end - *p < 8) return -1;
    *v = (int64_t)sl_be64(*p);
    *p += 8;
    return 0;
}

int kr_str(const uint8_t **p, const uint8_t *end, const char **s, int16_t *n)
{
    const uint8_t *q = *p;
    int16_t len;
    if (kr_i16(&q, end, &len) != 0 || len < -1 || end - q < len) return -1;
    *s = len < 0 ? NULL : (const char *)q;
    *n = len;
    *p = q + (len < 0 ? 0 : len);
    return 0;
}

int kr_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **b, int32_t *n)
{
    const uint8_t *q = *p;
    int32_t len;
    if (kr_i32(&q, end, &len) != 0 || len < -1 || end - q < len) return -1;
    *b = len < 0 ? NULL : q;
    *n = len;
    *p = q + (len < 0 ? 0 : len);
    return 0;
}

int kr_count(const uint8_t **p, const uint8_t *end, size_t min_size, int32_t *n)
{
    const uint8_t *q = *p;
    int32_t v;
    if (kr_i32(&q, end, &v) != 0 || v < 0 || (uint64_t)v * min_size > (uint64_t)(end - q))
        return -1;
    *n = v;
    *p = q;
    return 0;
}
