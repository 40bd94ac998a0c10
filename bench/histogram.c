/* histogram.c — log-bucketed latency histogram; see histogram.h for the
 * bucketing and the error bound it guarantees. */
#include "histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

histogram_t *histogram_new(void)
{
    histogram_t *h = malloc(sizeof *h);
    if (h) histogram_reset(h);
    return h;
}

void histogram_free(histogram_t *h)
{
    free(h);
}

void histogram_reset(histogram_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned histogram_bucket(uint64_t value)
{
    if (value < HISTOGRAM_SUB_COUNT) return (unsigned)value;
    /* value >= 128, so clzll is defined and k >= 7. */
    unsigned k = 63u - (unsigned)__builtin_clzll(value);
    unsigned shift = k - HISTOGRAM_SUB_BITS;
    unsigned sub = (unsigned)(value >> shift) - HISTOGRAM_SUB_COUNT;
    return HISTOGRAM_SUB_COUNT * (k - HISTOGRAM_SUB_BITS + 1) + sub;
}

void histogram_bucket_range(unsigned bucket, uint64_t *lo, uint64_t *hi)
{
    if (bucket < HISTOGRAM_SUB_COUNT) {
        *lo = *hi = bucket;
        return;
    }
    unsigned k = bucket / HISTOGRAM_SUB_COUNT + HISTOGRAM_SUB_BITS - 1;
    unsigned sub = bucket % HISTOGRAM_SUB_COUNT;
    unsigned shift = k - HISTOGRAM_SUB_BITS;
    *lo = (uint64_t)(HISTOGRAM_SUB_COUNT + sub) << shift;
    /* For the top bucket this is exactly UINT64_MAX, no overflow. */
    *hi = *lo + ((UINT64_C(1) << shift) - 1);
}

void histogram_record_n(histogram_t *h, uint64_t value, uint64_t n)
{
    if (n == 0) return;
    h->counts[histogram_bucket(value)] += n;
    h->count += n;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
    /* value * n as 128 bits from 32-bit halves: no __int128 in C11. */
    uint64_t a_lo = value & 0xffffffffu, a_hi = value >> 32;
    uint64_t b_lo = n & 0xffffffffu, b_hi = n >> 32;
    uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    uint64_t prod_lo = (mid << 32) | (ll & 0xffffffffu);
    uint64_t prod_hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    uint64_t old = h->sum_lo;
    h->sum_lo += prod_lo;
    h->sum_hi += prod_hi + (h->sum_lo < old);
}

void histogram_record(histogram_t *h, uint64_t value)
{
    h->counts[histogram_bucket(value)]++;
    h->count++;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
    uint64_t old = h->sum_lo;
    h->sum_lo += value;
    h->sum_hi += (h->sum_lo < old);
}

void histogram_merge(histogram_t *dst, const histogram_t *src)
{
    if (src->count == 0) return;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) dst->counts[i] += src->counts[i];
    dst->count += src->count;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    uint64_t old = dst->sum_lo;
    dst->sum_lo += src->sum_lo;
    dst->sum_hi += src->sum_hi + (dst->sum_lo < old);
}

uint64_t histogram_rank(double p, uint64_t n)
{
    if (n == 0) return 0;
    if (!(p > 0)) return 1; /* also NaN */
    if (p >= 100) return n;
    double x = p * (double)n / 100.0;
    /* 99.9 * 1000 / 100 comes out as 999.0000000000001; a relative slack far
     * above double rounding (1e-16) and far below any real fractional part of
     * interest keeps such exact products on their own rank. */
    double r = ceil(x - x * 1e-9);
    if (r < 1) return 1;
    if (r >= (double)n) return n;
    return (uint64_t)r;
}

/* The value reported for a bucket: its midpoint, kept inside the exact
 * [min, max] so a bucket holding one distinct value at an end reports it. */
static uint64_t representative(const histogram_t *h, unsigned bucket)
{
    uint64_t lo, hi;
    histogram_bucket_range(bucket, &lo, &hi);
    uint64_t v = lo + (hi - lo) / 2;
    if (v < h->min) v = h->min;
    if (v > h->max) v = h->max;
    return v;
}

/* Values at ranks[0..n) (ascending, each in [1, count]) in one bucket walk. */
static void values_at_ranks(const histogram_t *h, const uint64_t *ranks, uint64_t *out, int n)
{
    uint64_t seen = 0;
    int j = 0;
    for (unsigned b = 0; b < HISTOGRAM_BUCKETS && j < n; b++) {
        seen += h->counts[b];
        while (j < n && ranks[j] <= seen) {
            if (ranks[j] == 1)
                out[j] = h->min;
            else if (ranks[j] == h->count)
                out[j] = h->max;
            else
                out[j] = representative(h, b);
            j++;
        }
    }
}

uint64_t histogram_percentile(const histogram_t *h, double p)
{
    if (h->count == 0) return 0;
    uint64_t r = histogram_rank(p, h->count), v = 0;
    values_at_ranks(h, &r, &v, 1);
    return v;
}

double histogram_mean(const histogram_t *h)
{
    if (h->count == 0) return 0.0;
    return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo) / (double)h->count;
}

void histogram_summary(const histogram_t *h, histogram_summary_t *out)
{
    memset(out, 0, sizeof *out);
    if (h->count == 0) return;
    out->count = h->count;
    out->min = h->min;
    out->max = h->max;
    out->mean = histogram_mean(h);
    uint64_t ranks[4] = {histogram_rank(50, h->count), histogram_rank(90, h->count),
                         histogram_rank(99, h->count), histogram_rank(99.9, h->count)};
    uint64_t v[4] = {0};
    values_at_ranks(h, ranks, v, 4);
    out->p50 = v[0];
    out->p90 = v[1];
    out->p99 = v[2];
    out->p999 = v[3];
}
