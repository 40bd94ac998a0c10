/* accum.c — the producer's batches: proto/'s builder (batch_build.h)
 * encodes records straight into the batch buffer at sluice_produce() time,
 * so the batch is the only copy of a message's bytes; this file adds what
 * only the producer needs: an opaque per message, delivery reports that
 * decode key/value/headers back out of the buffer (no second copy), and the
 * "send lz4 only when it shrinks" policy.
 *
 * Not thread-safe by itself: the producer appends under its lock, and only
 * the I/O thread finalizes a closed batch (nobody appends to it any more).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "internal.h"

/* internal.h's mirror of the builder's leading fields (see sl_pbatch). */
_Static_assert(offsetof(sl_pbatch_t, buf) == offsetof(sl_pbatch_t, bld.buf), "mirror: buf");
_Static_assert(offsetof(sl_pbatch_t, len) == offsetof(sl_pbatch_t, bld.len), "mirror: len");
_Static_assert(offsetof(sl_pbatch_t, cap) == offsetof(sl_pbatch_t, bld.cap), "mirror: cap");
_Static_assert(offsetof(sl_pbatch_t, count) == offsetof(sl_pbatch_t, bld.count), "mirror: count");

sl_pbatch_t *sl_pbatch_new(size_t cap)
{
    sl_pbatch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    /* Fixed capacity: batch.size is the budget, a full batch closes. */
    if (sl_batch_build_init(&b->bld, cap, 0) != SL_OK) {
        free(b);
        return NULL;
    }
    b->base_offset = -1;
    return b;
}

void sl_pbatch_free(sl_pbatch_t *b)
{
    if (!b) return;
    if (b->wire && b->wire != b->bld.buf) free(b->wire);
    sl_batch_build_free(&b->bld);
    free(b->msgs);
    free(b);
}

/* sluice_header_t (public) and sl_rec_header_t (proto/) hold the same
 * fields but are distinct types, so a record's headers are copied into
 * proto's type: on the stack for the usual handful, else on the heap. */
#define STACK_HDRS 16

typedef struct rec_view {
    sl_batch_rec_t rec;
    sl_rec_header_t stack[STACK_HDRS];
    sl_rec_header_t *heap;
} rec_view_t;

/* Fills v->rec; returns 0, or -1 on ENOMEM or over INT32_MAX headers.
 * Pair with view_done() after a 0. */
static int view_init(rec_view_t *v, int64_t ts, const void *key, size_t key_len, const void *value,
                     size_t value_len, const sluice_header_t *hdrs, size_t hdr_count)
{
    v->heap = NULL;
    sl_rec_header_t *h = v->stack;
    if (hdr_count > STACK_HDRS) {
        if (hdr_count > INT32_MAX) return -1; /* unencodable; and the product must not wrap */
        h = v->heap = malloc(hdr_count * sizeof *h);
        if (!h) return -1;
    }
    for (size_t i = 0; i < hdr_count; i++)
        h[i] = (sl_rec_header_t){hdrs[i].key, hdrs[i].value, hdrs[i].value_len};
    v->rec = (sl_batch_rec_t){.timestamp = ts,
                              .key = key,
                              .key_len = key_len,
                              .value = value,
                              .value_len = value_len,
                              .headers = hdr_count ? h : NULL,
                              .header_count = hdr_count};
    return 0;
}

static void view_done(rec_view_t *v)
{
    if (v->heap) free(v->heap); /* skips a libc call per record in the usual case */
}

size_t sl_record_size(int64_t ts_delta, int32_t offset_delta, const void *key, size_t key_len,
                      const void *value, size_t value_len, const sluice_header_t *hdrs,
                      size_t hdr_count)
{
    rec_view_t v;
    /* No view (out of memory, or more headers than Kafka can count): no
     * size can be promised, so report one no batch can hold, as the builder
     * does for a record it cannot encode; the producer turns it into
     * MESSAGE_TOO_LARGE. */
    if (view_init(&v, 0, key, key_len, value, value_len, hdrs, hdr_count) != 0)
        return (size_t)SL_BATCH_MAX_SIZE + 1;
    size_t n = sl_batch_build_record_size(ts_delta, offset_delta, &v.rec);
    view_done(&v);
    return n;
}

int sl_pbatch_append(sl_pbatch_t *b, int64_t ts, const void *key, size_t key_len, const void *value,
                     size_t value_len, const sluice_header_t *hdrs, size_t hdr_count, void *opaque)
{
    if (b->count == b->msgs_cap) {
        int32_t nc = b->msgs_cap ? b->msgs_cap * 2 : 64;
        sl_msginfo_t *nm = realloc(b->msgs, (size_t)nc * sizeof *nm);
        if (!nm) return -1;
        b->msgs = nm;
        b->msgs_cap = nc;
    }
    uint32_t rec_off = (uint32_t)b->bld.len;
    rec_view_t v;
    if (view_init(&v, ts, key, key_len, value, value_len, hdrs, hdr_count) != 0) return -1;
    int rc = sl_batch_build_append(&b->bld, &v.rec);
    view_done(&v);
    if (rc != SL_OK) return -1;
    b->msgs[b->count - 1] = (sl_msginfo_t){.opaque = opaque, .rec_off = rec_off};
    return 0;
}

int sl_pbatch_finalize(sl_pbatch_t *b, int compression)
{
    if (b->wire) return 0;
    /* The plain header is written even when an lz4 copy is what gets sent:
     * cheap next to compression, and buf stays a valid batch either way. */
    sl_batch_build_finish(&b->bld, NULL);
    b->wire = b->bld.buf;
    b->wire_len = b->bld.len;
    if (compression != SL_COMPRESSION_LZ4) return 0;
    uint8_t *w;
    size_t wlen;
    if (sl_batch_build_finish_compressed(&b->bld, NULL, compression, &w, &wlen) != SL_OK) return 0;
    /* Kafka clients send a batch uncompressed when compression does not
     * shrink it; so do we (and on a compression failure). */
    if (wlen >= b->bld.len) {
        free(w);
        return 0;
    }
    b->wire = w;
    b->wire_len = wlen;
    return 0;
}

static const uint8_t *get_bytes(const uint8_t *p, const uint8_t *end, const void **data,
                                int32_t *len)
{
    size_t n = sl_varint_decode(p, end, len);
    if (!n) return NULL;
    p += n;
    if (*len < 0) {
        *data = NULL;
        return p;
    }
    if ((size_t)(end - p) < (size_t)*len) return NULL;
    *data = p;
    return p + *len;
}

int sl_pbatch_msg(const sl_pbatch_t *b, int32_t i, sluice_message_t *m, sluice_header_t *hdrs,
                  size_t max_hdrs, char *keybuf, size_t keybuf_size)
{
    const uint8_t *p = b->bld.buf + b->msgs[i].rec_off, *end = b->bld.buf + b->bld.len;
    int32_t body, od, kl, vl, hc;
    int64_t tsd;
    size_t n;
    if (!(n = sl_varint_decode(p, end, &body))) return -1;
    p += n + 1; /* attributes */
    if (!(n = sl_varlong_decode(p, end, &tsd))) return -1;
    p += n;
    if (!(n = sl_varint_decode(p, end, &od))) return -1;
    p += n;
    if (!(p = get_bytes(p, end, &m->key, &kl))) return -1;
    if (!(p = get_bytes(p, end, &m->value, &vl))) return -1;
    m->key_len = kl < 0 ? 0 : (size_t)kl;
    m->value_len = vl < 0 ? 0 : (size_t)vl;
    m->timestamp = b->bld.first_ts + tsd;
    m->opaque = b->msgs[i].opaque;
    if (!(n = sl_varint_decode(p, end, &hc))) return -1;
    p += n;
    m->headers = hdrs;
    m->header_count = 0;
    size_t kpos = 0;
    for (int32_t h = 0; h < hc && (size_t)h < max_hdrs; h++) {
        const void *k, *v;
        int32_t hkl, hvl;
        if (!(p = get_bytes(p, end, &k, &hkl))) return -1;
        if (!(p = get_bytes(p, end, &v, &hvl))) return -1;
        size_t kn = hkl < 0 ? 0 : (size_t)hkl;
        if (kpos + kn + 1 > keybuf_size) break;
        memcpy(keybuf + kpos, k ? k : "", kn);
        keybuf[kpos + kn] = '\0';
        hdrs[h] = (sluice_header_t){
            .key = keybuf + kpos, .value = v, .value_len = hvl < 0 ? 0 : (size_t)hvl};
        kpos += kn + 1;
        m->header_count++;
    }
    if (m->header_count == 0) m->headers = NULL;
    return 0;
}
