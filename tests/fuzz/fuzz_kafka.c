/* fuzz_kafka.c — libFuzzer target for proto/kafka.c's request decoding.
 *
 * Each input is used three ways:
 *   1. as a stream: kf_frame_peek, then kf_request_decode of the first
 *      frame when it is all there;
 *   2. as a body: data[0] picks a served API, data[1] a version (one past
 *      the max included), data[2..] is the body behind a valid header — so
 *      the fuzzer reaches deep fields without having to find a header
 *      (and, by the top bit of data[1], a 2 KiB arena to run out of);
 *   3. when the input starts with a frame of a served API (every seed in
 *      corpus/kafka does), its body again at every version of that API, so
 *      the version-gated fields are all exercised from one seed.
 * Every decode works on an exact-size heap copy, so ASan sees a read past
 * the frame. kafka.c is compiled here with sl_arena_alloc renamed to
 * fuzz_arena_alloc (see CMakeLists.txt), which gives each allocation its
 * own heap block under the same 1 MiB limit: a write one byte past an
 * allocation, invisible inside a real arena chunk, is caught too.
 * A decoded request is then walked (every string read, every view checked
 * to lie inside the frame) and a few fields go through the writer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h" /* sl_put_be16/32 */
#include "kafka.h"

#define ARENA_LIMIT (1u << 20)
#define MAX_FRAME   (1u << 20)
#define SMALL_ARENA 2048

/* ---- the arena, one heap block per allocation ----------------------------- */

typedef struct blk {
    struct blk *next;
    max_align_t data[];
} blk_t;

static blk_t *blocks;

void *fuzz_arena_alloc(sl_arena_t *a, size_t n);

/* Same limit accounting as sl_arena_alloc (16-byte rounding). */
void *fuzz_arena_alloc(sl_arena_t *a, size_t n)
{
    size_t r = (n + 15) & ~(size_t)15;
    if (r == 0) r = 16;
    if (a->total + r > a->limit) return NULL;
    blk_t *b = malloc(sizeof *b + n);
    if (!b) return NULL;
    a->total += r;
    b->next = blocks;
    blocks = b;
    return b->data;
}

static void arena_reset(sl_arena_t *a)
{
    while (blocks) {
        blk_t *n = blocks->next;
        free(blocks);
        blocks = n;
    }
    sl_arena_reset(a);
}

/* ---- walking a decoded request -------------------------------------------- */

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint8_t *frame_lo, *frame_hi;
static volatile size_t sink;

/* Reads the whole string (ASan checks it is a live allocation). */
static void touch(const char *s)
{
    if (s) sink += strlen(s);
}

static void touch_req(const char *s)
{
    FUZZ_ASSERT(s != NULL);
    touch(s);
}

static void view(const uint8_t *p, int32_t len, int nullable)
{
    if (!p) {
        FUZZ_ASSERT(nullable && len == 0);
        return;
    }
    FUZZ_ASSERT(len >= 0);
    FUZZ_ASSERT(p >= frame_lo && p + len <= frame_hi);
    if (len) sink += p[0] + p[len - 1];
}

/* A count and its array: never negative, an array whenever there is one. */
#define ARR(n, p)                                                                                  \
    do {                                                                                           \
        FUZZ_ASSERT((n) >= 0);                                                                     \
        FUZZ_ASSERT((n) == 0 || (p) != NULL);                                                      \
    } while (0)

static void walk(const kf_request_t *q)
{
    touch(q->h.client_id);
    switch (q->h.api_key) {
    case KF_PRODUCE: {
        const kf_produce_req_t *p = &q->u.produce;
        touch(p->transactional_id);
        ARR(p->ntopics, p->topics);
        for (int32_t i = 0; i < p->ntopics; i++) {
            touch_req(p->topics[i].name);
            ARR(p->topics[i].nparts, p->topics[i].parts);
            for (int32_t j = 0; j < p->topics[i].nparts; j++)
                view(p->topics[i].parts[j].records, p->topics[i].parts[j].records_len, 1);
        }
        break;
    }
    case KF_FETCH: {
        const kf_fetch_req_t *f = &q->u.fetch;
        ARR(f->ntopics, f->topics);
        for (int32_t i = 0; i < f->ntopics; i++) {
            touch_req(f->topics[i].topic);
            ARR(f->topics[i].nparts, f->topics[i].parts);
            for (int32_t j = 0; j < f->topics[i].nparts; j++)
                sink += (size_t)f->topics[i].parts[j].fetch_offset;
        }
        break;
    }
    case KF_LIST_OFFSETS: {
        const kf_list_offsets_req_t *l = &q->u.list_offsets;
        ARR(l->ntopics, l->topics);
        for (int32_t i = 0; i < l->ntopics; i++) {
            touch_req(l->topics[i].name);
            ARR(l->topics[i].nparts, l->topics[i].parts);
            for (int32_t j = 0; j < l->topics[i].nparts; j++)
                sink += (size_t)l->topics[i].parts[j].timestamp;
        }
        break;
    }
    case KF_METADATA: {
        const kf_metadata_req_t *m = &q->u.metadata;
        ARR(m->ntopics, m->topics);
        FUZZ_ASSERT(!m->all_topics || m->ntopics == 0);
        for (int32_t i = 0; i < m->ntopics; i++) touch_req(m->topics[i]);
        break;
    }
    case KF_OFFSET_COMMIT: {
        const kf_offset_commit_req_t *c = &q->u.offset_commit;
        touch_req(c->group_id);
        touch_req(c->member_id);
        touch(c->group_instance_id);
        ARR(c->ntopics, c->topics);
        for (int32_t i = 0; i < c->ntopics; i++) {
            touch_req(c->topics[i].name);
            ARR(c->topics[i].nparts, c->topics[i].parts);
            for (int32_t j = 0; j < c->topics[i].nparts; j++) touch(c->topics[i].parts[j].metadata);
        }
        break;
    }
    case KF_OFFSET_FETCH: {
        const kf_offset_fetch_req_t *f = &q->u.offset_fetch;
        touch_req(f->group_id);
        ARR(f->ntopics, f->topics);
        FUZZ_ASSERT(!f->all_topics || f->ntopics == 0);
        for (int32_t i = 0; i < f->ntopics; i++) {
            touch_req(f->topics[i].name);
            ARR(f->topics[i].nparts, f->topics[i].parts);
            for (int32_t j = 0; j < f->topics[i].nparts; j++) sink += (size_t)f->topics[i].parts[j];
        }
        break;
    }
    case KF_FIND_COORDINATOR:
        touch_req(q->u.find_coordinator.key);
        break;
    case KF_JOIN_GROUP: {
        const kf_join_group_req_t *j = &q->u.join_group;
        touch_req(j->group_id);
        touch_req(j->member_id);
        touch(j->group_instance_id);
        touch_req(j->protocol_type);
        ARR(j->nprotocols, j->protocols);
        for (int32_t i = 0; i < j->nprotocols; i++) {
            touch_req(j->protocols[i].name);
            view(j->protocols[i].metadata, j->protocols[i].metadata_len, 0);
        }
        break;
    }
    case KF_HEARTBEAT:
        touch_req(q->u.heartbeat.group_id);
        touch_req(q->u.heartbeat.member_id);
        touch(q->u.heartbeat.group_instance_id);
        break;
    case KF_LEAVE_GROUP:
        touch_req(q->u.leave_group.group_id);
        touch_req(q->u.leave_group.member_id);
        break;
    case KF_SYNC_GROUP: {
        const kf_sync_group_req_t *s = &q->u.sync_group;
        touch_req(s->group_id);
        touch_req(s->member_id);
        touch(s->group_instance_id);
        ARR(s->nassignments, s->assignments);
        for (int32_t i = 0; i < s->nassignments; i++) {
            touch_req(s->assignments[i].member_id);
            view(s->assignments[i].assignment, s->assignments[i].assignment_len, 0);
        }
        break;
    }
    case KF_DESCRIBE_GROUPS:
        ARR(q->u.describe_groups.ngroups, q->u.describe_groups.groups);
        for (int32_t i = 0; i < q->u.describe_groups.ngroups; i++)
            touch_req(q->u.describe_groups.groups[i]);
        break;
    case KF_CREATE_TOPICS: {
        const kf_create_topics_req_t *c = &q->u.create_topics;
        ARR(c->ntopics, c->topics);
        for (int32_t i = 0; i < c->ntopics; i++) {
            touch_req(c->topics[i].name);
            FUZZ_ASSERT(c->topics[i].nassignments >= 0);
            ARR(c->topics[i].nconfigs, c->topics[i].configs);
            for (int32_t j = 0; j < c->topics[i].nconfigs; j++) {
                touch_req(c->topics[i].configs[j].name);
                touch(c->topics[i].configs[j].value);
            }
        }
        break;
    }
    case KF_DELETE_TOPICS:
        ARR(q->u.delete_topics.nnames, q->u.delete_topics.names);
        for (int32_t i = 0; i < q->u.delete_topics.nnames; i++)
            touch_req(q->u.delete_topics.names[i]);
        break;
    case KF_INIT_PRODUCER_ID:
        touch(q->u.init_producer_id.transactional_id);
        break;
    default:
        break;
    }
}

/* The client id through the writer and back. */
static void write_back(const kf_request_t *q)
{
    kf_writer_t w;
    kw_init(&w, q->h.correlation_id);
    size_t pos = kw_reserve_i32(&w);
    kw_str(&w, q->h.client_id);
    kw_patch_i32(&w, pos, q->h.api_key);
    if (kw_finish(&w, 0) != 0) return;
    const uint8_t *p = w.buf, *end = w.buf + w.len;
    int32_t size = 0, corr = 0, key = 0;
    int16_t len = 0;
    FUZZ_ASSERT(kr_i32(&p, end, &size) == 0 && (size_t)size == w.len - 4);
    FUZZ_ASSERT(kr_i32(&p, end, &corr) == 0 && corr == q->h.correlation_id);
    FUZZ_ASSERT(kr_i32(&p, end, &key) == 0 && key == q->h.api_key);
    FUZZ_ASSERT(kr_i16(&p, end, &len) == 0);
    FUZZ_ASSERT(q->h.client_id ? (size_t)len == strlen(q->h.client_id) : len == -1);
    kw_free(&w);
}

/* ---- driving -------------------------------------------------------------- */

static sl_arena_t arena;
static int arena_ready;

/* Decodes an exact-size copy of frame[0..total). */
static void decode(const uint8_t *frame, size_t total)
{
    uint8_t *copy = malloc(total ? total : 1);
    if (!copy) return;
    if (total) memcpy(copy, frame, total);
    frame_lo = copy;
    frame_hi = copy + total;
    kf_request_t q;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = kf_request_decode(copy, (uint32_t)total, &arena, &q, &err);
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_INVALID_REQUEST || rc == SL_ERR_UNSUPPORTED_VERSION ||
                rc == SL_ERR_NOMEM);
    FUZZ_ASSERT(rc == SL_OK || err.msg[0] != '\0');
    FUZZ_ASSERT(arena.total <= arena.limit);
    if (rc == SL_OK) {
        int max = kf_api_max(q.h.api_key);
        FUZZ_ASSERT(max >= 0 && q.h.api_version >= 0 && q.h.api_version <= max);
        walk(&q);
        write_back(&q);
    }
    arena_reset(&arena);
    free(copy);
}

/* A frame with a valid header of (key, version) around body[0..len). */
static void decode_body(int16_t key, int16_t ver, const uint8_t *body, size_t len)
{
    static const uint8_t client[] = {0x00, 0x04, 'f', 'u', 'z', 'z'};
    size_t total = 12 + sizeof client + len;
    if (total > MAX_FRAME) return;
    uint8_t *f = malloc(total);
    if (!f) return;
    uint8_t hdr[12];
    sl_put_be32(hdr, (uint32_t)(total - 4));
    sl_put_be16(hdr + 4, (uint16_t)key);
    sl_put_be16(hdr + 6, (uint16_t)ver);
    sl_put_be32(hdr + 8, 42);
    memcpy(f, hdr, sizeof hdr);
    memcpy(f + sizeof hdr, client, sizeof client);
    if (len) memcpy(f + sizeof hdr + sizeof client, body, len);
    decode(f, total);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!arena_ready) {
        sl_arena_init(&arena, NULL, 0, ARENA_LIMIT);
        arena_ready = 1;
    }

    /* 1. the input as a stream */
    uint32_t total = 0;
    int rc = kf_frame_peek(data, size, MAX_FRAME, &total);
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_PARTIAL || rc == SL_ERR_INVALID_REQUEST ||
                rc == SL_ERR_MESSAGE_TOO_LARGE);
    FUZZ_ASSERT(rc != SL_ERR_PARTIAL || size < 4);
    bool whole = rc == SL_OK && total <= size;
    if (rc == SL_OK) FUZZ_ASSERT(total >= KF_MIN_FRAME && total - 4 <= MAX_FRAME);
    if (whole) decode(data, total);

    /* 2. a fuzzer-chosen API and version, the rest as its body */
    const int16_t *keys = NULL;
    size_t nkeys = kf_api_list(&keys);
    if (size >= 2) {
        int16_t key = keys[data[0] % nkeys];
        int16_t ver = (int16_t)(data[1] % (kf_api_max(key) + 2));
        /* half the time a small arena, so that running out of it (NOMEM
         * half-way through a request) is reachable with small inputs */
        arena.limit = data[1] & 0x80 ? SMALL_ARENA : ARENA_LIMIT;
        decode_body(key, ver, data + 2, size - 2);
        arena.limit = ARENA_LIMIT;
    }

    /* 3. a frame's body at every version of its API */
    if (whole && total >= KF_MIN_FRAME) {
        int16_t key = (int16_t)(data[4] << 8 | data[5]);
        int max = kf_api_max(key);
        uint32_t idlen = (uint32_t)(data[12] << 8 | data[13]);
        uint32_t skip = 14 + (idlen == 0xffff ? 0 : idlen);
        if (max >= 0 && skip <= total)
            for (int v = 0; v <= max; v++) decode_body(key, (int16_t)v, data + skip, total - skip);
    }
    return 0;
}
