/* fuzz_sluice_frame.c — libFuzzer target for Sluice's own protocol decoding
 * (proto/codec.c): sl_frame_peek, sl_request_decode / sl_response_decode
 * into a bounded sl_arena_t, then sl_body_decode of the body with the
 * descriptor the broker (broker/dispatch.c, h_*.c) or the client would use
 * for the header's api.
 *
 * Each input is used three ways:
 *   1. as a stream: sl_frame_peek, then, when the first frame is all there,
 *      request and response decoding of an exact-size heap copy of it, under
 *      three arenas (see below);
 *   2. as a body: data[0] picks an api and a direction (request/response),
 *      data[1] an arena, data[2..] is the body behind a valid header — so
 *      the fuzzer reaches message fields without having to find a header;
 *   3. when the input starts with a whole frame that decodes as a request
 *      (every seed in corpus/sluice_frame does), its body again under every
 *      request and response descriptor (type confusion is cheap to try).
 *
 * Arenas: "heap" replaces the arena's protobuf-c allocator with one heap
 * block per allocation under the same limit accounting, so ASan sees a
 * write one byte past an allocation that inside a real arena chunk would go
 * unnoticed; "block" is the broker's own set-up (a 16 KiB first block, 8 MiB
 * limit) through the real sl_arena_alloc; "small" is the real arena with a
 * limit of 16..2048 bytes, so running out half-way through a message is
 * reachable with small inputs.
 *
 * Checks on a decoded frame: the views tile the frame exactly; every field
 * of the message is walked by its descriptor (strings read to their NUL,
 * repeated arrays present when counted, singular strings never NULL — the
 * handlers dereference them); pack(unpack(pack(m))) == pack(m); and the
 * header + body go back through sl_request_encode / sl_response_encode and
 * decode to the same api, correlation id, body and payload. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h" /* sl_be32, sl_put_be32 */
#include "codec.h"

#define MAX_FRAME   (1u << 20)
#define BIG_LIMIT   (8u << 20) /* broker/broker.c ARENA_LIMIT */
#define BLOCK_BYTES 16384      /* broker/broker.h arena_block */
#define MAX_DEPTH   16

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- which message each api carries ------------------------------------- */

typedef struct api_desc {
    Sluice__ApiKey api;
    const ProtobufCMessageDescriptor *req;  /* broker side, NULL: no request */
    const ProtobufCMessageDescriptor *resp; /* client side, NULL: never answered */
} api_desc_t;

static const api_desc_t apis[] = {
    {SLUICE__API_KEY__HELLO, &sluice__hello_request__descriptor,
     &sluice__hello_response__descriptor},
    {SLUICE__API_KEY__METADATA, &sluice__metadata_request__descriptor,
     &sluice__metadata_response__descriptor},
    {SLUICE__API_KEY__CREATE_TOPIC, &sluice__create_topic_request__descriptor,
     &sluice__create_topic_response__descriptor},
    {SLUICE__API_KEY__DELETE_TOPIC, &sluice__delete_topic_request__descriptor,
     &sluice__delete_topic_response__descriptor},
    {SLUICE__API_KEY__PRODUCE, &sluice__produce_request__descriptor,
     &sluice__produce_response__descriptor},
    {SLUICE__API_KEY__FETCH, &sluice__fetch_request__descriptor,
     &sluice__fetch_response__descriptor},
    {SLUICE__API_KEY__LIST_OFFSETS, &sluice__list_offsets_request__descriptor,
     &sluice__list_offsets_response__descriptor},
    {SLUICE__API_KEY__JOIN_GROUP, &sluice__join_group_request__descriptor,
     &sluice__join_group_response__descriptor},
    {SLUICE__API_KEY__SYNC_GROUP, &sluice__sync_group_request__descriptor,
     &sluice__sync_group_response__descriptor},
    {SLUICE__API_KEY__HEARTBEAT, &sluice__heartbeat_request__descriptor,
     &sluice__heartbeat_response__descriptor},
    {SLUICE__API_KEY__LEAVE_GROUP, &sluice__leave_group_request__descriptor,
     &sluice__leave_group_response__descriptor},
    {SLUICE__API_KEY__OFFSET_COMMIT, &sluice__offset_commit_request__descriptor,
     &sluice__offset_commit_response__descriptor},
    {SLUICE__API_KEY__OFFSET_FETCH, &sluice__offset_fetch_request__descriptor,
     &sluice__offset_fetch_response__descriptor},
    {SLUICE__API_KEY__LIST_GROUPS, &sluice__list_groups_request__descriptor,
     &sluice__list_groups_response__descriptor},
    {SLUICE__API_KEY__DESCRIBE_GROUP, &sluice__describe_group_request__descriptor,
     &sluice__describe_group_response__descriptor},
    {SLUICE__API_KEY__SUBSCRIBE, &sluice__subscribe_request__descriptor,
     &sluice__subscribe_response__descriptor},
    {SLUICE__API_KEY__CREDIT, &sluice__credit_request__descriptor, NULL},
    {SLUICE__API_KEY__UNSUBSCRIBE, &sluice__unsubscribe_request__descriptor,
     &sluice__unsubscribe_response__descriptor},
    {SLUICE__API_KEY__PUSH, NULL, &sluice__push_data__descriptor},
};
#define NAPIS (sizeof apis / sizeof apis[0])

static const api_desc_t *api_find(int api)
{
    for (size_t i = 0; i < NAPIS; i++)
        if ((int)apis[i].api == api) return &apis[i];
    return NULL;
}

/* ---- arenas --------------------------------------------------------------- */

typedef struct blk {
    struct blk *next;
    max_align_t data[];
} blk_t;

/* An sl_arena_t whose protobuf-c allocator gives each allocation its own
 * heap block; same limit accounting as sl_arena_alloc (16-byte rounding). */
typedef struct heap_arena {
    sl_arena_t a; /* first: &a.pb is what the decoders get */
    blk_t *blocks;
} heap_arena_t;

static void *heap_alloc(void *data, size_t n)
{
    heap_arena_t *h = data;
    size_t r = (n + 15) & ~(size_t)15;
    if (r == 0) r = 16;
    if (h->a.total + r > h->a.limit) return NULL;
    blk_t *b = malloc(sizeof *b + n);
    if (!b) return NULL;
    h->a.total += r;
    b->next = h->blocks;
    h->blocks = b;
    return b->data;
}

static void heap_init(heap_arena_t *h, size_t limit)
{
    sl_arena_init(&h->a, NULL, 0, limit);
    h->a.pb.alloc = heap_alloc;
    h->a.pb.allocator_data = h;
    h->blocks = NULL;
}

static void heap_reset(heap_arena_t *h)
{
    while (h->blocks) {
        blk_t *n = h->blocks->next;
        free(h->blocks);
        h->blocks = n;
    }
    sl_arena_reset(&h->a);
}

enum { AR_HEAP, AR_BLOCK, AR_SMALL, AR_COUNT };

typedef struct arena_set {
    heap_arena_t heap;    /* AR_HEAP */
    sl_arena_t block;     /* AR_BLOCK: first block in `mem` */
    sl_arena_t small;     /* AR_SMALL: limit set per use */
    uint8_t *mem;         /* exact-size heap block: ASan bounds the inline block */
    heap_arena_t checker; /* for re-decoding in the checks */
    int ready;
} arena_set_t;

static arena_set_t ar;

static void arenas_init(void)
{
    if (ar.ready) return;
    heap_init(&ar.heap, BIG_LIMIT);
    ar.mem = malloc(BLOCK_BYTES);
    sl_arena_init(&ar.block, ar.mem, BLOCK_BYTES, BIG_LIMIT);
    sl_arena_init(&ar.small, NULL, 0, 2048);
    heap_init(&ar.checker, BIG_LIMIT);
    ar.ready = 1;
}

static sl_arena_t *arena_get(int kind, size_t small_limit)
{
    switch (kind) {
    case AR_HEAP:
        return &ar.heap.a;
    case AR_BLOCK:
        return &ar.block;
    default:
        ar.small.limit = small_limit;
        return &ar.small;
    }
}

static void arena_done(sl_arena_t *a)
{
    FUZZ_ASSERT(a->total <= a->limit);
    if (a == &ar.heap.a)
        heap_reset(&ar.heap);
    else
        sl_arena_reset(a);
    FUZZ_ASSERT(a->total == 0 && a->chunks == NULL);
}

/* ---- walking a decoded message -------------------------------------------- */

static volatile size_t sink;

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static void walk_msg(const ProtobufCMessage *m, int depth);

/* One value of field f at p. `elem`: an element of a repeated field. */
static void walk_value(const ProtobufCFieldDescriptor *f, const void *p, int elem, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        /* proto3 strings decode to "" when absent: never NULL, the handlers
         * strcmp and print them unchecked. */
        FUZZ_ASSERT(s != NULL);
        sink += strlen(s);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        FUZZ_ASSERT(b->len == 0 || b->data != NULL);
        if (b->len) sink += b->data[0] + b->data[b->len - 1];
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        FUZZ_ASSERT(!elem || sub != NULL); /* array elements are always there */
        if (sub) {
            FUZZ_ASSERT(sub->descriptor == f->descriptor);
            FUZZ_ASSERT(depth < MAX_DEPTH);
            walk_msg(sub, depth + 1);
        }
        break;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        /* proto3 enums are open: an unknown value is legal, just noted */
        if (protobuf_c_enum_descriptor_get_value(f->descriptor, v))
            sink++;
        else
            sink += 2;
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        sink += *(const protobuf_c_boolean *)p != 0;
        break;
    default: {
        size_t n = scalar_size(f->type);
        uint64_t v = 0;
        memcpy(&v, p, n);
        sink += (size_t)v;
    }
    }
}

static void walk_msg(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    FUZZ_ASSERT(d != NULL && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *member = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)member;
            FUZZ_ASSERT(n == 0 || arr != NULL);
            size_t es = scalar_size(f->type);
            for (size_t j = 0; j < n; j++) walk_value(f, arr + j * es, 1, depth);
        } else {
            walk_value(f, member, 0, depth);
        }
    }
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        FUZZ_ASSERT(u->len == 0 || u->data != NULL);
        if (u->len) sink += u->data[0] + u->data[u->len - 1] + u->tag;
    }
}

/* ---- checks --------------------------------------------------------------- */

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*n ? *n : 1);
    FUZZ_ASSERT(p != NULL);
    size_t w = protobuf_c_message_pack(m, p);
    FUZZ_ASSERT(w == *n);
    return p;
}

/* An unknown field numbered 0 anywhere in m: protobuf-c 1.4.1 keeps one
 * (from a tag such as 80 00, an over-long zero) but refuses the bytes it
 * packs it to, so such a message cannot round-trip. The broker never
 * re-packs a client's message; not Sluice's bug (README.md, note 7). */
static int has_tag0(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0) return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *member = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage * *const *)member;
            for (size_t j = 0; j < n; j++)
                if (has_tag0(arr[j])) return 1;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
            if (sub && has_tag0(sub)) return 1;
        }
    }
    return 0;
}

/* pack(m) decodes again, and packs to the same bytes. */
static void check_repack(const ProtobufCMessage *m)
{
    if (has_tag0(m)) return;
    size_t n1, n2;
    uint8_t *p1 = pack(m, &n1);
    ProtobufCMessage *m2 = protobuf_c_message_unpack(m->descriptor, &ar.checker.a.pb, n1, p1);
    FUZZ_ASSERT(m2 != NULL);
    walk_msg(m2, 0);
    uint8_t *p2 = pack(m2, &n2);
    FUZZ_ASSERT(n1 == n2 && memcmp(p1, p2, n1) == 0);
    free(p1);
    free(p2);
    heap_reset(&ar.checker);
}

/* The views of a decoded frame tile it: prefix, header, body, payload. */
static void check_views(const uint8_t *frame, uint32_t total, const uint8_t *body,
                        uint32_t body_len, uint32_t hdr_body_len, const uint8_t *payload,
                        uint32_t payload_len)
{
    uint32_t hl = sl_be32(frame + 4);
    FUZZ_ASSERT(hl > 0 && hl <= SL_MAX_HEADER);
    FUZZ_ASSERT(body == frame + SL_FRAME_PREFIX + hl);
    FUZZ_ASSERT(body_len == hdr_body_len);
    FUZZ_ASSERT(payload == body + body_len);
    FUZZ_ASSERT((uint64_t)SL_FRAME_PREFIX + hl + body_len + payload_len == total);
}

/* A body's message through the encoder and decoder again. */
static void check_reencode_req(const Sluice__RequestHeader *hdr, const ProtobufCMessage *body,
                               const uint8_t *payload, uint32_t payload_len)
{
    if (has_tag0(&hdr->base) || (body && has_tag0(body))) return;
    Sluice__RequestHeader h = *hdr;
    size_t need = sl_request_size(&h, body);
    uint8_t *out = malloc(need + payload_len);
    FUZZ_ASSERT(out != NULL);
    size_t n = sl_request_encode(&h, body, payload_len, out);
    FUZZ_ASSERT(n == need);
    if (payload_len) memcpy(out + n, payload, payload_len);
    uint32_t total = 0;
    FUZZ_ASSERT(sl_frame_peek(out, n + payload_len, 0xffffffffu, &total) == SL_OK);
    FUZZ_ASSERT(total == n + payload_len);
    sl_request_t q;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = sl_request_decode(out, total, &ar.checker.a, &q, &err);
    if (rc != SL_OK) {
        /* Only a header re-encoded past SL_MAX_HEADER, or to nothing (every
         * field at its default: api NONE, correlation id 0, ...), may fail:
         * the decoder refuses header_length 0 (README.md, known finding 6). */
        FUZZ_ASSERT(sl_be32(out + 4) == 0 || sl_be32(out + 4) > SL_MAX_HEADER);
    } else {
        FUZZ_ASSERT(q.hdr->api == hdr->api && q.hdr->correlation_id == hdr->correlation_id &&
                    q.hdr->version == hdr->version);
        FUZZ_ASSERT(q.payload_len == payload_len);
        FUZZ_ASSERT(payload_len == 0 || memcmp(q.payload, payload, payload_len) == 0);
        if (body) {
            size_t bn;
            uint8_t *bp = pack(body, &bn);
            FUZZ_ASSERT(q.body_len == bn && memcmp(q.body, bp, bn) == 0);
            free(bp);
        } else {
            FUZZ_ASSERT(q.body_len == 0);
        }
    }
    heap_reset(&ar.checker);
    free(out);
}

static void check_reencode_resp(const Sluice__ResponseHeader *hdr, const ProtobufCMessage *body,
                                const uint8_t *payload, uint32_t payload_len)
{
    if (has_tag0(&hdr->base) || (body && has_tag0(body))) return;
    Sluice__ResponseHeader h = *hdr;
    size_t need = sl_response_size(&h, body);
    uint8_t *out = malloc(need + payload_len);
    FUZZ_ASSERT(out != NULL);
    size_t n = sl_response_encode(&h, body, payload_len, out);
    FUZZ_ASSERT(n == need);
    if (payload_len) memcpy(out + n, payload, payload_len);
    sl_response_t r;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = sl_response_decode(out, (uint32_t)(n + payload_len), &ar.checker.a, &r, &err);
    if (rc != SL_OK) {
        FUZZ_ASSERT(sl_be32(out + 4) == 0 || sl_be32(out + 4) > SL_MAX_HEADER);
    } else {
        FUZZ_ASSERT(r.hdr->api == hdr->api && r.hdr->correlation_id == hdr->correlation_id &&
                    r.hdr->error_code == hdr->error_code);
        FUZZ_ASSERT(strcmp(r.hdr->error_message, hdr->error_message) == 0);
        FUZZ_ASSERT(r.payload_len == payload_len);
        FUZZ_ASSERT(payload_len == 0 || memcmp(r.payload, payload, payload_len) == 0);
        if (body) {
            size_t bn;
            uint8_t *bp = pack(body, &bn);
            FUZZ_ASSERT(r.body_len == bn && memcmp(r.body, bp, bn) == 0);
            free(bp);
        } else {
            FUZZ_ASSERT(r.body_len == 0);
        }
    }
    heap_reset(&ar.checker);
    free(out);
}

/* sl_body_decode with its contract: a message of that type, or NULL with
 * INVALID_REQUEST and a message. */
static ProtobufCMessage *body_decode(const ProtobufCMessageDescriptor *d, const uint8_t *body,
                                     uint32_t len, sl_arena_t *a)
{
    sl_err_t err;
    sl_err_clear(&err);
    ProtobufCMessage *m = sl_body_decode(d, body, len, a, &err);
    if (m) {
        FUZZ_ASSERT(m->descriptor == d);
        walk_msg(m, 0);
    } else {
        FUZZ_ASSERT(err.code == SL_ERR_INVALID_REQUEST && err.msg[0] != '\0');
    }
    FUZZ_ASSERT(a->total <= a->limit);
    return m;
}

/* ---- decoding one frame --------------------------------------------------- */

static void decode_request(const uint8_t *f, uint32_t total, sl_arena_t *a, int checks)
{
    sl_request_t q;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = sl_request_decode(f, total, a, &q, &err);
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_INVALID_REQUEST);
    FUZZ_ASSERT(rc == SL_OK || err.msg[0] != '\0');
    if (rc != SL_OK) return;
    FUZZ_ASSERT(q.hdr != NULL);
    walk_msg(&q.hdr->base, 0);
    check_views(f, total, q.body, q.body_len, q.hdr->body_length, q.payload, q.payload_len);
    if (checks) check_repack(&q.hdr->base);
    const api_desc_t *api = api_find(q.hdr->api);
    ProtobufCMessage *m = NULL;
    if (api && api->req) {
        m = body_decode(api->req, q.body, q.body_len, a);
        if (m && checks) check_repack(m);
    }
    if (checks) check_reencode_req(q.hdr, m, q.payload, q.payload_len);
}

static void decode_response(const uint8_t *f, uint32_t total, sl_arena_t *a, int checks)
{
    sl_response_t r;
    sl_err_t err;
    sl_err_clear(&err);
    int rc = sl_response_decode(f, total, a, &r, &err);
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_INVALID_REQUEST);
    FUZZ_ASSERT(rc == SL_OK || err.msg[0] != '\0');
    /* The client passes no sl_err_t: that must work too (same limit, same
     * accounting, so the same result). */
    sl_response_t r2;
    size_t keep = ar.checker.a.limit;
    ar.checker.a.limit = a->limit;
    FUZZ_ASSERT(sl_response_decode(f, total, &ar.checker.a, &r2, NULL) == rc);
    heap_reset(&ar.checker);
    ar.checker.a.limit = keep;
    if (rc != SL_OK) return;
    FUZZ_ASSERT(r.hdr != NULL);
    walk_msg(&r.hdr->base, 0);
    check_views(f, total, r.body, r.body_len, r.hdr->body_length, r.payload, r.payload_len);
    if (checks) check_repack(&r.hdr->base);
    const api_desc_t *api = api_find(r.hdr->api);
    ProtobufCMessage *m = NULL;
    if (api && api->resp) {
        m = body_decode(api->resp, r.body, r.body_len, a);
        if (m && checks) check_repack(m);
    }
    if (checks) check_reencode_resp(r.hdr, m, r.payload, r.payload_len);
}

/* Decodes an exact-size heap copy of frame[0..total) both ways under each
 * arena; the round-trip checks run under the heap arena only. */
static void decode_frame(const uint8_t *frame, uint32_t total)
{
    uint8_t *copy = malloc(total ? total : 1);
    FUZZ_ASSERT(copy != NULL);
    if (total) memcpy(copy, frame, total);
    size_t small = 16 * (1 + total % 128);
    for (int k = 0; k < AR_COUNT; k++) {
        sl_arena_t *a = arena_get(k, small);
        decode_request(copy, total, a, k == AR_HEAP);
        arena_done(a);
        decode_response(copy, total, a, k == AR_HEAP);
        arena_done(a);
    }
    free(copy);
}

/* A frame around body[0..len) with a valid header for (api, direction). */
static void decode_body(const api_desc_t *api, int response, int arena, size_t small,
                        const uint8_t *body, size_t len)
{
    uint8_t hbuf[64];
    size_t hl;
    if (response) {
        Sluice__ResponseHeader h = SLUICE__RESPONSE_HEADER__INIT;
        h.api = api->api;
        h.correlation_id = 42;
        h.body_length = (uint32_t)len;
        hl = sluice__response_header__pack(&h, hbuf);
    } else {
        Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
        h.api = api->api;
        h.version = SL_PROTOCOL_VERSION;
        h.correlation_id = 42;
        h.body_length = (uint32_t)len;
        hl = sluice__request_header__pack(&h, hbuf);
    }
    size_t total = SL_FRAME_PREFIX + hl + len;
    if (total > MAX_FRAME) return;
    uint8_t *f = malloc(total);
    FUZZ_ASSERT(f != NULL);
    sl_put_be32(f, (uint32_t)(total - 4));
    sl_put_be32(f + 4, (uint32_t)hl);
    memcpy(f + SL_FRAME_PREFIX, hbuf, hl);
    if (len) memcpy(f + SL_FRAME_PREFIX + hl, body, len);
    sl_arena_t *a = arena_get(arena, small);
    if (response)
        decode_response(f, (uint32_t)total, a, arena == AR_HEAP);
    else
        decode_request(f, (uint32_t)total, a, arena == AR_HEAP);
    arena_done(a);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arenas_init();

    /* 1. the input as a stream */
    uint32_t total = 0;
    int rc = sl_frame_peek(data, size, MAX_FRAME, &total);
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_PARTIAL || rc == SL_ERR_INVALID_REQUEST ||
                rc == SL_ERR_MESSAGE_TOO_LARGE);
    FUZZ_ASSERT((rc == SL_ERR_PARTIAL) == (size < 4));
    if (rc == SL_OK) FUZZ_ASSERT(total >= 8 && total <= MAX_FRAME);
    int whole = rc == SL_OK && total <= size;
    if (whole) decode_frame(data, total);

    /* 2. a fuzzer-chosen api and direction, the rest as its body */
    if (size >= 2) {
        const api_desc_t *api = &apis[data[0] % NAPIS];
        int response = (data[0] / NAPIS) & 1;
        if (response ? api->resp == NULL : api->req == NULL) response = !response;
        int arena = data[1] % AR_COUNT;
        size_t small = 16 * (1 + (data[1] >> 2) % 128);
        decode_body(api, response, arena, small, data + 2, size - 2);
    }

    /* 3. a request frame's body under every descriptor */
    if (whole) {
        sl_request_t q;
        sl_err_t err;
        uint8_t *copy = malloc(total);
        FUZZ_ASSERT(copy != NULL);
        memcpy(copy, data, total);
        if (sl_request_decode(copy, total, &ar.heap.a, &q, &err) == SL_OK) {
            for (size_t i = 0; i < NAPIS; i++) {
                if (apis[i].req) body_decode(apis[i].req, q.body, q.body_len, &ar.heap.a);
                if (apis[i].resp) body_decode(apis[i].resp, q.body, q.body_len, &ar.heap.a);
            }
        }
        arena_done(&ar.heap.a);
        free(copy);
    }
    return 0;
}
