/* seqcheck.h — the payload header of sluice-bench messages and the checker
 * that counts lost, duplicated and reordered messages on the consumer side.
 *
 * Header: every message payload starts with 24 bytes, big-endian
 *   0  magic     u32  SEQCHECK_MAGIC ("SLB1")
 *   4  producer  u32  the sending stream's id, 0 .. producers-1
 *   8  seq       u64  0, 1, 2, ... per producer, never reused
 *   16 send_ns   u64  send timestamp (CLOCK_MONOTONIC ns, or the intended send
 *                     time in open-loop runs), so latency needs no side table
 * Changing this layout changes what old captures decode to: bump the magic.
 *
 * Checker: for each producer it keeps a sliding window of W = 2^window_bits
 * bits over the sequence space, [base, base + W), plus counters. A sequence
 * at or above base + W slides the window up so that it becomes the highest
 * slot; sequences that leave the window unseen are counted lost then. So:
 *
 *   Reordering limit: a sequence may arrive at most W - 1 below the highest
 *   sequence seen so far for its producer. One arriving further behind is
 *   "late": the checker cannot tell a late first delivery from a duplicate
 *   any more, counts it in `late`, and the report is marked inexact (lost is
 *   then an upper bound and lost - late a lower bound).
 *
 * The window is per producer across all partitions, so partitions consumed at
 * different paces widen the spread a producer's sequences arrive in. Either
 * size W for the worst lag (in messages) between partitions, or give each
 * (producer thread, partition) pair its own producer id, which leaves W to
 * absorb only in-partition effects (retries, duplicates).
 *
 * Reordering within a partition (optional, partitions > 0): a first delivery
 * whose sequence is below the highest already delivered from the same
 * producer in the same partition counts as reordered. Duplicates and late
 * arrivals are not counted again as reordered.
 *
 * Memory, fixed at seqcheck_new() and independent of the message count:
 *   producers * (W / 8 + 64) + producers * partitions * 8 bytes (+ ~100),
 * see seqcheck_memory_bytes(); the default W = 2^20 costs 128 KiB per
 * producer. Recording never allocates and is amortised O(1): each sequence
 * slot is slid past once, 64 at a time where possible.
 *
 * Ownership: seqcheck_new() returns a checker the caller frees with
 * seqcheck_free(). Threads: none of the checker functions are thread-safe;
 * consumers that run on several threads serialise seqcheck_record() with one
 * mutex (one checker must see every copy of a message to spot duplicates
 * that arrive at different consumers). encode/decode are pure, any thread.
 * Errors: see each function; nothing here prints.
 */
#ifndef SLUICE_BENCH_SEQCHECK_H
#define SLUICE_BENCH_SEQCHECK_H

#include <stddef.h>
#include <stdint.h>

#define SEQCHECK_HEADER_BYTES        24
#define SEQCHECK_MAGIC               0x534c4231u /* "SLB1" */
#define SEQCHECK_DEFAULT_WINDOW_BITS 20
#define SEQCHECK_MIN_WINDOW_BITS     6
#define SEQCHECK_MAX_WINDOW_BITS     32
/* Sequences at or above this are rejected (foreign): it keeps base + W from
 * overflowing, and no benchmark sends 2^63 messages. */
#define SEQCHECK_MAX_SEQ (UINT64_C(1) << 63)

#define SEQCHECK_ERR_SHORT (-1) /* fewer than SEQCHECK_HEADER_BYTES bytes */
#define SEQCHECK_ERR_MAGIC (-2) /* not a sluice-bench payload */

typedef struct seqcheck_hdr {
    uint32_t producer;
    uint64_t seq;
    uint64_t send_ns;
} seqcheck_hdr_t;

/* Writes the 24-byte header for *h (magic included) to out. Pure. */
void seqcheck_encode(uint8_t out[SEQCHECK_HEADER_BYTES], const seqcheck_hdr_t *h);

/* Reads the header at the start of payload[0..len) into *out; returns 0,
 * SEQCHECK_ERR_SHORT or SEQCHECK_ERR_MAGIC (then *out is untouched). Pure. */
int seqcheck_decode(const void *payload, size_t len, seqcheck_hdr_t *out);

typedef struct seqcheck seqcheck_t;

/* What seqcheck_record() made of one arrival. */
typedef enum seqcheck_verdict {
    SEQCHECK_NEW = 0,   /* first delivery, in order within its partition */
    SEQCHECK_REORDERED, /* first delivery, behind a higher seq in its partition */
    SEQCHECK_DUPLICATE, /* seen before (within the window) */
    SEQCHECK_LATE,      /* more than W - 1 behind the producer's highest seq */
    SEQCHECK_FOREIGN,   /* producer or partition out of range, or seq >= 2^63 */
} seqcheck_verdict_t;

/* A checker for producer ids 0..producers-1 and partitions 0..partitions-1
 * (0 = do not track reordering; any partition number is then accepted), with
 * a window of 2^window_bits sequences per producer (0 = the default 20;
 * otherwise SEQCHECK_MIN_WINDOW_BITS..SEQCHECK_MAX_WINDOW_BITS). Returns NULL
 * on a bad argument, a size overflow or no memory. All memory is allocated
 * here. */
seqcheck_t *seqcheck_new(uint32_t producers, uint32_t partitions, unsigned window_bits);

/* Frees c; accepts NULL. */
void seqcheck_free(seqcheck_t *c);

/* The bytes seqcheck_new() would allocate for these arguments (0 if they are
 * invalid), for logging the bound up front. */
size_t seqcheck_memory_bytes(uint32_t producers, uint32_t partitions, unsigned window_bits);

/* Records the arrival of (producer, seq) read from `partition` and returns
 * its verdict. Never allocates; amortised O(1); not thread-safe. */
seqcheck_verdict_t seqcheck_record(seqcheck_t *c, uint32_t producer, uint32_t partition,
                                   uint64_t seq);

typedef struct seqcheck_report {
    uint64_t sent;       /* as passed in: the producer sent seqs 0 .. sent-1 */
    uint64_t delivered;  /* distinct sequences seen */
    uint64_t lost;       /* sequences in 0 .. sent-1 never seen */
    uint64_t duplicated; /* arrivals of a sequence already seen (extra copies) */
    uint64_t reordered;  /* first deliveries behind a higher seq, same partition */
    uint64_t late;       /* arrivals beyond the window (see the top of the file) */
    uint64_t highest;    /* highest sequence seen + 1; 0 if none */
    /* 1 when the counts above are exact: no late arrival and no sequence at or
     * above `sent` was seen (which would mean a checker or producer bug). */
    int exact;
} seqcheck_report_t;

/* Fills *out for `producer`, which says it sent sequences 0..sent-1. Does not
 * change the checker (it can be called mid-run for a running tally, where
 * "lost" means "not seen yet"). O(W / 64). Returns 0, or -1 if producer is out
 * of range. */
int seqcheck_report(const seqcheck_t *c, uint32_t producer, uint64_t sent, seqcheck_report_t *out);

/* Arrivals rejected as SEQCHECK_FOREIGN, over all producers. */
uint64_t seqcheck_foreign(const seqcheck_t *c);

#endif
