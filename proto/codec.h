/* codec.h — framing and protobuf encoding of Sluice's protocol, shared by
 * the broker and libsluice (docs/protocol.md).
 *
 * Frame: u32 length | u32 header_length | header | body | payload, both u32
 * big-endian; body_length is inside the header; the payload is the rest.
 *
 * Decoding is pure and never allocates with malloc: protobuf messages are
 * unpacked into an sl_arena_t (a bump allocator the caller resets after each
 * request), and views point into the caller's buffer. Every length is checked
 * against the frame before use. Thread-safe (no shared state).
 */
#ifndef SLUICE_PROTO_CODEC_H
#define SLUICE_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "errors.h"
#include "sluice.pb-c.h"

#define SL_PROTOCOL_VERSION 1
#define SL_FRAME_PREFIX     8 /* u32 length + u32 header_length */
#define SL_MAX_HEADER       1024

/* ---- arena --------------------------------------------------------------- */

/* A bump allocator for protobuf-c. Memory comes from an inline first block
 * and then from malloc'd chunks, up to `limit` bytes in all; beyond that
 * allocations fail, so a hostile message cannot make the decoder allocate
 * without bound. sl_arena_reset() keeps the first block and frees chunks. */
typedef struct sl_arena_chunk sl_arena_chunk_t;
typedef struct sl_arena {
    ProtobufCAllocator pb; /* pass &arena->pb to protobuf-c; MUST be first */
    uint8_t *block;
    size_t block_cap, used;
    size_t total, limit;
    sl_arena_chunk_t *chunks;
} sl_arena_t;

/* block may be NULL (cap 0); limit 0 means 1 MiB. */
void sl_arena_init(sl_arena_t *a, void *block, size_t cap, size_t limit);
void sl_arena_reset(sl_arena_t *a);
void sl_arena_free(sl_arena_t *a); /* frees chunks; block belongs to the caller */
void *sl_arena_alloc(sl_arena_t *a, size_t n);

/* ---- frames -------------------------------------------------------------- */

/* Looks at buf[0..len): SL_OK with *total = the whole frame's size (4 +
 * length) once 4 bytes are there; SL_ERR_PARTIAL with fewer; and for a
 * length under 4 (INVALID_REQUEST) or over max_frame (MESSAGE_TOO_LARGE) an
 * error: the stream cannot be trusted past it. */
int sl_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *total);

/* A decoded request, views into the frame buffer and the arena. */
typedef struct sl_request {
    Sluice__RequestHeader *hdr;
    const uint8_t *body;
    uint32_t body_len;
    const uint8_t *payload;
    uint32_t payload_len;
} sl_request_t;

/* Decodes one whole frame (frame[0..total), as sized by sl_frame_peek):
 * header lengths inside the frame, the header decodes, body_length fits.
 * INVALID_REQUEST with a message otherwise (the frame boundary is still
 * trusted, so the caller may answer before closing). */
int sl_request_decode(const uint8_t *frame, uint32_t total, sl_arena_t *a, sl_request_t *req,
                      sl_err_t *err);

/* The same for responses (client side). */
typedef struct sl_response {
    Sluice__ResponseHeader *hdr;
    const uint8_t *body;
    uint32_t body_len;
    const uint8_t *payload;
    uint32_t payload_len;
} sl_response_t;

int sl_response_decode(const uint8_t *frame, uint32_t total, sl_arena_t *a, sl_response_t *resp,
                       sl_err_t *err);

/* Unpacks a body into the arena; NULL with INVALID_REQUEST in err when it
 * does not decode. `desc` is the message's descriptor, e.g.
 * &sluice__produce_request__descriptor. */
ProtobufCMessage *sl_body_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body,
                                 uint32_t len, sl_arena_t *a, sl_err_t *err);

/* ---- encoding ------------------------------------------------------------ */

/* Bytes needed for a frame's prefix, header and body (not the payload). */
size_t sl_request_size(const Sluice__RequestHeader *hdr, const ProtobufCMessage *body);

/* Writes prefix + header + body into out (which has sl_request_size bytes)
 * for a frame whose payload of payload_len bytes follows separately. Sets
 * hdr->body_length. Returns bytes written. */
size_t sl_request_encode(Sluice__RequestHeader *hdr, const ProtobufCMessage *body,
                         uint32_t payload_len, uint8_t *out);

size_t sl_response_size(const Sluice__ResponseHeader *hdr, const ProtobufCMessage *body);
size_t sl_response_encode(Sluice__ResponseHeader *hdr, const ProtobufCMessage *body,
                          uint32_t payload_len, uint8_t *out);

/* Wire value of an sl_code_t (local negative codes map to
 * UNKNOWN_SERVER_ERROR). */
int32_t sl_code_to_wire(int code);

#endif
