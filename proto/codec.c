#include "codec.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"

struct sl_arena_chunk {
    sl_arena_chunk_t *next;
    size_t cap, used;
    uint8_t data[];
};

static void *pb_alloc(void *data, size_t n)
{
    return sl_arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* freed all at once by sl_arena_reset */
}

void sl_arena_init(sl_arena_t *a, void *block, size_t cap, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    a->block = block;
    a->block_cap = block ? cap : 0;
    a->limit = limit ? limit : 1u << 20;
}

void sl_arena_reset(sl_arena_t *a)
{
    sl_arena_chunk_t *c = a->chunks;
    while (c) {
        sl_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    a->chunks = NULL;
    a->used = 0;
    a->total = 0;
}

void sl_arena_free(sl_arena_t *a)
{
    sl_arena_reset(a);
}

void *sl_arena_alloc(sl_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->total + n > a->limit) return NULL;
    if (a->block && a->block_cap - a->used >= n) {
        void *p = a->block + a->used;
        a->used += n;
        a->total += n;
        return p;
    }
    sl_arena_chunk_t *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

int sl_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *total)
{
    if (len < 4) return SL_ERR_PARTIAL;
    uint32_t l = sl_be32(buf);
    if (l < 4) return SL_ERR_INVALID_REQUEST;
    if (max_frame < 4 || l > max_frame - 4) return SL_ERR_MESSAGE_TOO_LARGE;
    *total = l + 4;
    return SL_OK;
}

/* Splits frame into header / body / payload views. */
static int split(const uint8_t *frame, uint32_t total, const uint8_t **hp, uint32_t *hl,
                 sl_err_t *err)
{
    if (total < SL_FRAME_PREFIX)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST, "frame of %u bytes is shorter than 8",
                          total);
    uint32_t h = sl_be32(frame + 4);
    if (h == 0 || h > SL_MAX_HEADER || h > total - SL_FRAME_PREFIX)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                          "header length %u does not fit a frame of %u bytes (max %u)", h, total,
                          SL_MAX_HEADER);
    *hp = frame + SL_FRAME_PREFIX;
    *hl = h;
    return SL_OK;
}

int sl_request_decode(const uint8_t *frame, uint32_t total, sl_arena_t *a, sl_request_t *req,
                      sl_err_t *err)
{
    const uint8_t *hp = NULL;
    uint32_t hl = 0;
    int rc = split(frame, total, &hp, &hl, err);
    if (rc != SL_OK) return rc;
    req->hdr = sluice__request_header__unpack(&a->pb, hl, hp);
    if (!req->hdr) return sl_err_set(err, SL_ERR_INVALID_REQUEST, "request header does not decode");
    uint32_t rest = total - SL_FRAME_PREFIX - hl;
    if (req->hdr->body_length > rest)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                          "body_length %u exceeds the %u bytes left in the frame",
                          req->hdr->body_length, rest);
    req->body = hp + hl;
    req->body_len = req->hdr->body_length;
    req->payload = req->body + req->body_len;
    req->payload_len = rest - req->body_len;
    return SL_OK;
}

int sl_response_decode(const uint8_t *frame, uint32_t total, sl_arena_t *a, sl_response_t *resp,
                       sl_err_t *err)
{
    const uint8_t *hp = NULL;
    uint32_t hl = 0;
    int rc = split(frame, total, &hp, &hl, err);
    if (rc != SL_OK) return rc;
    resp->hdr = sluice__response_header__unpack(&a->pb, hl, hp);
    if (!resp->hdr)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST, "response header does not decode");
    uint32_t rest = total - SL_FRAME_PREFIX - hl;
    if (resp->hdr->body_length > rest)
        return sl_err_set(err, SL_ERR_INVALID_REQUEST,
                          "body_length %u exceeds the %u bytes left in the frame",
                          resp->hdr->body_length, rest);
    resp->body = hp + hl;
    resp->body_len = resp->hdr->body_length;
    resp->payload = resp->body + resp->body_len;
    resp->payload_len = rest - resp->body_len;
    return SL_OK;
}

ProtobufCMessage *sl_body_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body,
                                 uint32_t len, sl_arena_t *a, sl_err_t *err)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a->pb, len, body);
    if (!m)
        sl_err_set(err, SL_ERR_INVALID_REQUEST, "%s body of %u bytes does not decode", desc->name,
                   len);
    return m;
}

static size_t frame_size(const ProtobufCMessage *hdr, const ProtobufCMessage *body)
{
    return SL_FRAME_PREFIX + protobuf_c_message_get_packed_size(hdr) +
           (body ? protobuf_c_message_get_packed_size(body) : 0);
}

static size_t frame_encode(const ProtobufCMessage *hdr, const ProtobufCMessage *body,
                           uint32_t payload_len, uint8_t *out)
{
    size_t hl = protobuf_c_message_pack(hdr, out + SL_FRAME_PREFIX);
    size_t bl = body ? protobuf_c_message_pack(body, out + SL_FRAME_PREFIX + hl) : 0;
    sl_put_be32(out, (uint32_t)(4 + hl + bl + payload_len));
    sl_put_be32(out + 4, (uint32_t)hl);
    return SL_FRAME_PREFIX + hl + bl;
}

size_t sl_request_size(const Sluice__RequestHeader *hdr, const ProtobufCMessage *body)
{
    Sluice__RequestHeader h = *hdr;
    h.body_length = body ? (uint32_t)protobuf_c_message_get_packed_size(body) : 0;
    return frame_size(&h.base, body);
}

size_t sl_request_encode(Sluice__RequestHeader *hdr, const ProtobufCMessage *body,
                         uint32_t payload_len, uint8_t *out)
{
    hdr->body_length = body ? (uint32_t)protobuf_c_message_get_packed_size(body) : 0;
    return frame_encode(&hdr->base, body, payload_len, out);
}

size_t sl_response_size(const Sluice__ResponseHeader *hdr, const ProtobufCMessage *body)
{
    Sluice__ResponseHeader h = *hdr;
    h.body_length = body ? (uint32_t)protobuf_c_message_get_packed_size(body) : 0;
    return frame_size(&h.base, body);
}

size_t sl_response_encode(Sluice__ResponseHeader *hdr, const ProtobufCMessage *body,
                          uint32_t payload_len, uint8_t *out)
{
    hdr->body_length = body ? (uint32_t)protobuf_c_message_get_packed_size(body) : 0;
    return frame_encode(&hdr->base, body, payload_len, out);
}

int32_t sl_code_to_wire(int code)
{
    return code < 0 ? -1 : code;
}
