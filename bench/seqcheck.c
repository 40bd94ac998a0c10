/* seqcheck.c — payload header codec and the sliding-window loss/duplicate
 * checker; the contract and the reordering limit are in seqcheck.h.
 *
 * Invariants per producer:
 *  (1) every sequence below `base` is resolved: it was either seen (counted in
 *      `delivered`) or counted in `lost_slid` when the window moved past it;
 *  (2) the bit for s in [base, base + W) is at index s & (W - 1) and is set
 *      iff s has been seen; bits of resolved slots are zero, ready for reuse;
 *  (3) base only grows, and only in slide().
 */
#include "seqcheck.h"

#include <stdlib.h>
#include <string.h>

typedef struct producer {
    uint64_t base;    /* lowest unresolved sequence */
    uint64_t highest; /* highest seen + 1 */
    uint64_t delivered, duplicated, reordered, late, lost_slid;
    uint64_t *bits; /* W / 64 words inside seqcheck.bits */
} producer_t;

struct seqcheck {
    uint32_t producers, partitions;
    uint64_t window, mask;
    uint64_t foreign;
    producer_t *prod;
    uint64_t *bits;      /* producers * W / 64 words */
    uint64_t *part_next; /* [producer * partitions + partition] = highest seq + 1 */
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void seqcheck_encode(uint8_t out[SEQCHECK_HEADER_BYTES], const seqcheck_hdr_t *h)
{
    put_be32(out, SEQCHECK_MAGIC);
    put_be32(out + 4, h->producer);
    put_be32(out + 8, (uint32_t)(h->seq >> 32));
    put_be32(out + 12, (uint32_t)h->seq);
    put_be32(out + 16, (uint32_t)(h->send_ns >> 32));
    put_be32(out + 20, (uint32_t)h->send_ns);
}

int seqcheck_decode(const void *payload, size_t len, seqcheck_hdr_t *out)
{
    const uint8_t *p = payload;
    if (len < SEQCHECK_HEADER_BYTES) return SEQCHECK_ERR_SHORT;
    if (be32(p) != SEQCHECK_MAGIC) return SEQCHECK_ERR_MAGIC;
    out->producer = be32(p + 4);
    out->seq = (uint64_t)be32(p + 8) << 32 | be32(p + 12);
    out->send_ns = (uint64_t)be32(p + 16) << 32 | be32(p + 20);
    return 0;
}

/* Sizes of the three arrays, or -1 on bad arguments or overflow. */
static int sizes(uint32_t producers, uint32_t partitions, unsigned *window_bits, size_t *prod_b,
                 size_t *bits_b, size_t *part_b)
{
    if (*window_bits == 0) *window_bits = SEQCHECK_DEFAULT_WINDOW_BITS;
    if (producers == 0 || *window_bits < SEQCHECK_MIN_WINDOW_BITS ||
        *window_bits > SEQCHECK_MAX_WINDOW_BITS)
        return -1;
    uint64_t words = (UINT64_C(1) << *window_bits) / 64;
    uint64_t bits = (uint64_t)producers * words * 8; /* < 2^32 * 2^26 * 8 = 2^61 */
    uint64_t part = (uint64_t)producers * partitions * 8;
    if (bits > SIZE_MAX / 2 || part > SIZE_MAX / 2) return -1;
    *prod_b = (size_t)producers * sizeof(producer_t);
    *bits_b = (size_t)bits;
    *part_b = (size_t)part;
    return 0;
}

size_t seqcheck_memory_bytes(uint32_t producers, uint32_t partitions, unsigned window_bits)
{
    size_t a, b, p;
    if (sizes(producers, partitions, &window_bits, &a, &b, &p) < 0) return 0;
    return sizeof(seqcheck_t) + a + b + p;
}

seqcheck_t *seqcheck_new(uint32_t producers, uint32_t partitions, unsigned window_bits)
{
    size_t prod_b, bits_b, part_b;
    if (sizes(producers, partitions, &window_bits, &prod_b, &bits_b, &part_b) < 0) return NULL;
    seqcheck_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->producers = producers;
    c->partitions = partitions;
    c->window = UINT64_C(1) << window_bits;
    c->mask = c->window - 1;
    c->prod = calloc(1, prod_b);
    c->bits = calloc(1, bits_b);
    c->part_next = part_b ? calloc(1, part_b) : NULL;
    if (!c->prod || !c->bits || (part_b && !c->part_next)) {
        seqcheck_free(c);
        return NULL;
    }
    for (uint32_t i = 0; i < producers; i++)
        c->prod[i].bits = c->bits + (size_t)i * (c->window / 64);
    return c;
}

void seqcheck_free(seqcheck_t *c)
{
    if (!c) return;
    free(c->part_next);
    free(c->bits);
    free(c->prod);
    free(c);
}

/* Moves p's window up so that it starts at new_base, counting the unseen
 * sequences it leaves behind as lost. Each slot is passed at most once per
 * W sequences of progress, a whole word at a time when aligned. */
static void slide(const seqcheck_t *c, producer_t *p, uint64_t new_base)
{
    uint64_t end = p->base + c->window;
    if (new_base >= end) {
        /* The whole window resolves, and everything between it and new_base
         * was never even in the window. */
        uint64_t seen = 0;
        for (uint64_t w = 0; w < c->window / 64; w++) {
            seen += (uint64_t)__builtin_popcountll(p->bits[w]);
            p->bits[w] = 0;
        }
        p->lost_slid += (c->window - seen) + (new_base - end);
        p->base = new_base;
        return;
    }
    while (p->base < new_base) {
        uint64_t i = p->base & c->mask;
        if ((i & 63) == 0 && new_base - p->base >= 64) {
            p->lost_slid += 64 - (uint64_t)__builtin_popcountll(p->bits[i / 64]);
            p->bits[i / 64] = 0;
            p->base += 64;
        } else {
            uint64_t bit = UINT64_C(1) << (i & 63);
            if (!(p->bits[i / 64] & bit)) p->lost_slid++;
            p->bits[i / 64] &= ~bit;
            p->base++;
        }
    }
}

seqcheck_verdict_t seqcheck_record(seqcheck_t *c, uint32_t producer, uint32_t partition,
                                   uint64_t seq)
{
    if (producer >= c->producers || (c->partitions && partition >= c->partitions) ||
        seq >= SEQCHECK_MAX_SEQ) {
        c->foreign++;
        return SEQCHECK_FOREIGN;
    }
    producer_t *p = &c->prod[producer];
    if (seq < p->base) {
        p->late++;
        return SEQCHECK_LATE;
    }
    if (seq - p->base >= c->window) slide(c, p, seq - c->window + 1);
    uint64_t i = seq & c->mask, bit = UINT64_C(1) << (i & 63);
    if (p->bits[i / 64] & bit) {
        p->duplicated++;
        return SEQCHECK_DUPLICATE;
    }
    p->bits[i / 64] |= bit;
    p->delivered++;
    if (seq >= p->highest) p->highest = seq + 1;
    if (!c->partitions) return SEQCHECK_NEW;
    uint64_t *next = &c->part_next[(size_t)producer * c->partitions + partition];
    if (seq < *next) {
        p->reordered++;
        return SEQCHECK_REORDERED;
    }
    *next = seq + 1;
    return SEQCHECK_NEW;
}

int seqcheck_report(const seqcheck_t *c, uint32_t producer, uint64_t sent, seqcheck_report_t *out)
{
    if (producer >= c->producers) return -1;
    const producer_t *p = &c->prod[producer];
    memset(out, 0, sizeof *out);
    out->sent = sent;
    out->delivered = p->delivered;
    out->duplicated = p->duplicated;
    out->reordered = p->reordered;
    out->late = p->late;
    out->highest = p->highest;
    out->exact = p->late == 0 && p->highest <= sent;

    /* (1): below base, lost_slid is final. Inside the window up to `sent`,
     * count the clear bits; beyond the window nothing was seen. */
    uint64_t lost = p->lost_slid;
    uint64_t end = p->base + c->window;
    uint64_t stop = sent < end ? sent : end;
    for (uint64_t s = p->base; s < stop;) {
        uint64_t i = s & c->mask;
        if ((i & 63) == 0 && stop - s >= 64) {
            lost += 64 - (uint64_t)__builtin_popcountll(p->bits[i / 64]);
            s += 64;
        } else {
            lost += !(p->bits[i / 64] & (UINT64_C(1) << (i & 63)));
            s++;
        }
    }
    if (sent > end) lost += sent - end;
    out->lost = lost;
    return 0;
}

uint64_t seqcheck_foreign(const seqcheck_t *c)
{
    return c->foreign;
}
