/* histogram.h — a log-bucketed latency histogram for sluice-bench.
 *
 * Values are unsigned 64-bit integers in whatever unit the caller picks
 * (sluice-bench records nanoseconds); the whole uint64_t range is covered, so
 * an hour (3.6e12 ns) and far beyond fits and nothing is ever clamped.
 *
 * Bucketing (HdrHistogram-like, 7 significant bits): values below 128 get one
 * bucket each (exact). A value v >= 128 with top bit k (2^k <= v < 2^(k+1))
 * falls into one of 128 linear sub-buckets of width 2^(k-7) covering
 * [2^k, 2^(k+1)). A bucket's lower bound is at least 128 widths, so every
 * value in it is within 1/128 of the lower bound, and the value reported for a
 * bucket (its midpoint, clamped to the exact min and max) is within 1/256
 * (0.39 %) of any value recorded in it. 57 * 128 + 128 = 7424 counters,
 * 58 KiB per histogram, whatever the number of values.
 *
 * Percentile definition: the p-th percentile of n values (0 <= p <= 100) is
 * the value at rank r = ceil(p / 100 * n) of the values sorted ascending,
 * ranks counted from 1, with r clamped to [1, n] (so p = 0 is the minimum and
 * p = 100 the maximum). histogram_rank() computes r; histogram_percentile()
 * returns a value within 1/256 relative of the exact value at that rank. min
 * and max are tracked exactly; the mean is exact up to the final division.
 *
 * Ownership: histogram_t is a plain struct the caller owns; it may be
 * embedded, static or come from histogram_new(). No function allocates except
 * histogram_new(); recording is O(1): a count-leading-zeros and two adds.
 *
 * Threads: one writer per histogram and no concurrent readers. For several
 * threads, give each its own histogram and histogram_merge() them into one
 * after the threads are joined (or otherwise synchronised with).
 *
 * Errors: none on the record path; histogram_new() returns NULL without
 * memory.
 */
#ifndef SLUICE_BENCH_HISTOGRAM_H
#define SLUICE_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS  7
#define HISTOGRAM_SUB_COUNT (1u << HISTOGRAM_SUB_BITS) /* 128 sub-buckets per power of two */
/* Exact buckets for [0, 128) plus 128 for each k in 7..63. */
#define HISTOGRAM_BUCKETS (HISTOGRAM_SUB_COUNT * (64 - HISTOGRAM_SUB_BITS + 1))

/* Fields are read-only outside histogram.c; use the functions below. */
typedef struct histogram {
    uint64_t count;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max; /* 0 while empty */
    /* The exact 128-bit sum of all values: sum_hi * 2^64 + sum_lo. */
    uint64_t sum_lo;
    uint64_t sum_hi;
    uint64_t counts[HISTOGRAM_BUCKETS];
} histogram_t;

/* The usual report, filled by histogram_summary(); all zero when empty. */
typedef struct histogram_summary {
    uint64_t count;
    uint64_t min, max;
    double mean;
    uint64_t p50, p90, p99, p999;
} histogram_summary_t;

/* A zeroed (empty) histogram on the heap, or NULL without memory. The caller
 * frees it with histogram_free(), which accepts NULL. */
histogram_t *histogram_new(void);
void histogram_free(histogram_t *h);

/* Empties h; also the initialiser for a histogram the caller allocated. */
void histogram_reset(histogram_t *h);

/* Records one value (histogram_record) or `n` copies of it (for coordinated-
 * omission back-fill and tests). O(1), never allocates, never fails; counts
 * wrap only after 2^64 records. */
void histogram_record(histogram_t *h, uint64_t value);
void histogram_record_n(histogram_t *h, uint64_t value, uint64_t n);

/* Adds every value recorded in src to dst, as if each had been recorded into
 * dst directly (the result is identical, field by field). src is unchanged.
 * Neither may be written concurrently. */
void histogram_merge(histogram_t *dst, const histogram_t *src);

/* The 1-based rank ceil(p / 100 * n) clamped to [1, n]; 0 when n == 0.
 * p outside [0, 100] (or NaN) is clamped to that range. Products that are
 * integers in exact arithmetic (99.9 % of 1000 = 999) are not pushed up to the
 * next rank by binary rounding of p. */
uint64_t histogram_rank(double p, uint64_t n);

/* The value at rank histogram_rank(p, count), within 1/256 relative (see the
 * top of this file); exact for p = 0 (min) and p = 100 (max), and for values
 * below 128. 0 when empty. O(HISTOGRAM_BUCKETS). */
uint64_t histogram_percentile(const histogram_t *h, double p);

/* The arithmetic mean of all values, 0.0 when empty. */
double histogram_mean(const histogram_t *h);

/* count, min, max, mean, p50, p90, p99, p99.9 in one pass over the buckets. */
void histogram_summary(const histogram_t *h, histogram_summary_t *out);

/* The bucket index of a value and the range [*lo, *hi] of values sharing it;
 * exposed for tests and for writing the histogram out. */
unsigned histogram_bucket(uint64_t value);
void histogram_bucket_range(unsigned bucket, uint64_t *lo, uint64_t *hi);

#endif
