/* test_histogram.c — bucketing, ranks, and every reported percentile against
 * the exact value of a sorted reference for several distributions. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "histogram.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd64(void)
{
    /* xorshift64*: deterministic, good enough to shape distributions. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Uniform in (0, 1]. */
static double rnd01(void)
{
    return ((double)(rnd64() >> 11) + 1.0) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double worst_rel_err; /* over every distribution, for the report */

static void test_buckets(void)
{
    uint64_t prev_hi = 0;
    int contiguous = 1, self = 1, narrow = 1;
    for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
        uint64_t lo, hi;
        histogram_bucket_range(b, &lo, &hi);
        if (b > 0 && lo != prev_hi + 1) contiguous = 0;
        if (histogram_bucket(lo) != b || histogram_bucket(hi) != b) self = 0;
        /* The guarantee: a bucket is at most 1/128 of its lower bound wide. */
        if (lo > 0 && (double)(hi - lo) / (double)lo > 1.0 / 128) narrow = 0;
        prev_hi = hi;
    }
    CHECK(contiguous);
    CHECK(self);
    CHECK(narrow);
    CHECK(prev_hi == UINT64_MAX);
    CHECK_EQ_INT(histogram_bucket(0), 0);
    CHECK_EQ_INT(histogram_bucket(127), 127);
    CHECK_EQ_INT(histogram_bucket(255), 255);
    CHECK_EQ_INT(histogram_bucket(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

static void test_rank(void)
{
    CHECK_EQ_INT(histogram_rank(50, 0), 0);
    CHECK_EQ_INT(histogram_rank(0, 10), 1);
    CHECK_EQ_INT(histogram_rank(50, 10), 5);
    CHECK_EQ_INT(histogram_rank(51, 10), 6);
    CHECK_EQ_INT(histogram_rank(100, 10), 10);
    CHECK_EQ_INT(histogram_rank(150, 10), 10);
    CHECK_EQ_INT(histogram_rank(-1, 10), 1);
    CHECK_EQ_INT(histogram_rank(NAN, 10), 1);
    CHECK_EQ_INT(histogram_rank(99.9, 1000), 999); /* 99.9*1000/100 rounds above 999 */
    CHECK_EQ_INT(histogram_rank(99.9, 1001), 1000);
    CHECK_EQ_INT(histogram_rank(99, 101), 100);
    CHECK_EQ_INT(histogram_rank(99.99, 1000000), 999900);
    CHECK_EQ_INT(histogram_rank(0.1, 1), 1);
}

static void test_empty_and_edges(void)
{
    histogram_t *h = histogram_new();
    CHECK_FATAL(h != NULL);
    histogram_summary_t s;
    histogram_summary(h, &s);
    CHECK_EQ_INT(s.count, 0);
    CHECK_EQ_INT(s.p99, 0);
    CHECK_EQ_INT(histogram_percentile(h, 50), 0);
    CHECK(histogram_mean(h) == 0.0);

    /* One hour in nanoseconds and the top of the range: max stays exact. */
    histogram_record(h, UINT64_C(3600000000000));
    CHECK_EQ_INT(histogram_percentile(h, 50), 3600000000000LL);
    histogram_record(h, UINT64_MAX);
    CHECK(histogram_percentile(h, 100) == UINT64_MAX);
    CHECK(h->max == UINT64_MAX);
    CHECK_EQ_INT(histogram_percentile(h, 0), 3600000000000LL);

    /* The 128-bit sum: (2^64-1) * (2^64-1) = 2^128 - 2^65 + 1. */
    histogram_reset(h);
    histogram_record_n(h, UINT64_MAX, UINT64_MAX);
    CHECK(h->sum_hi == UINT64_MAX - 1 && h->sum_lo == 1);
    CHECK(h->count == UINT64_MAX);
    histogram_reset(h);
    histogram_record_n(h, 1000, 0);
    CHECK_EQ_INT(h->count, 0);
    /* 3e12 * 1e8 = 3e20 > 2^64: one record_n equals 100 smaller ones. */
    histogram_t *g = histogram_new();
    CHECK_FATAL(g != NULL);
    histogram_record_n(h, UINT64_C(3000000000000), 100000000);
    for (int i = 0; i < 100; i++) histogram_record_n(g, UINT64_C(3000000000000), 1000000);
    CHECK(memcmp(g, h, sizeof *h) == 0);
    CHECK(h->sum_hi == 16);
    CHECK(histogram_mean(h) == 3e12);
    histogram_free(g);
    histogram_free(h);
    histogram_free(NULL);
}

typedef enum { UNIFORM, EXPONENTIAL, BIMODAL, CONSTANT, HEAVY_TAIL, SMALL, NDIST } dist_t;
static const char *dist_name[NDIST] = {"uniform",  "exponential", "bimodal",
                                       "constant", "heavy-tail",  "small"};

static uint64_t draw(dist_t d)
{
    switch (d) {
    case UNIFORM: /* 0 .. 1 s in ns */
        return rnd64() % 1000000001u;
    case EXPONENTIAL: /* mean 200 us */
        return (uint64_t)(-log(rnd01()) * 200000.0);
    case BIMODAL: { /* 90 % around 50 us, 10 % around 20 ms, each +-20 % */
        double centre = rnd64() % 10 ? 50000.0 : 20000000.0;
        return (uint64_t)(centre * (0.8 + 0.4 * rnd01()));
    }
    case CONSTANT:
        return 123456789;
    case HEAVY_TAIL: { /* Pareto alpha 1.1 from 10 us, capped at one hour */
        double v = 10000.0 / pow(rnd01(), 1.0 / 1.1);
        return v > 3.6e12 ? UINT64_C(3600000000000) : (uint64_t)v;
    }
    case SMALL: /* exact region and its edge */
        return rnd64() % 300;
    default:
        return 0;
    }
}

static void check_distribution(dist_t d, size_t n)
{
    uint64_t *v = malloc(n * sizeof *v);
    histogram_t *one = histogram_new(), *parts[4], *merged = histogram_new();
    CHECK_FATAL(v && one && merged);
    for (int i = 0; i < 4; i++) {
        parts[i] = histogram_new();
        CHECK_FATAL(parts[i]);
    }
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = draw(d);
        sum += v[i];
        histogram_record(one, v[i]);
        histogram_record(parts[rnd64() % 4], v[i]);
    }
    qsort(v, n, sizeof *v, cmp_u64);

    /* Fixed percentiles, the summary ones, and random ones. */
    double ps[64] = {0, 0.001, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100};
    int np = 13;
    while (np < 64) ps[np++] = rnd01() * 100;
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < np; i++) {
        uint64_t r = histogram_rank(ps[i], n);
        uint64_t exact = v[r - 1], got = histogram_percentile(one, ps[i]);
        double err = exact ? fabs((double)got - (double)exact) / (double)exact : (double)got;
        if (err > worst) worst = err;
        if (err > 0.01) {
            bad++;
            fprintf(stderr, "%s p%g: got %llu exact %llu\n", dist_name[d], ps[i],
                    (unsigned long long)got, (unsigned long long)exact);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d percentiles off by more than 1%%", dist_name[d], bad);
    CHECK_MSG(worst <= 1.0 / 256 + 1e-12, "%s: worst %g above the 1/256 bound", dist_name[d],
              worst);
    if (worst > worst_rel_err) worst_rel_err = worst;

    histogram_summary_t s;
    histogram_summary(one, &s);
    CHECK(s.count == n);
    CHECK(s.min == v[0]);
    CHECK(s.max == v[n - 1]);
    CHECK(histogram_percentile(one, 100) == v[n - 1]);
    CHECK(s.p50 == histogram_percentile(one, 50));
    CHECK(s.p90 == histogram_percentile(one, 90));
    CHECK(s.p99 == histogram_percentile(one, 99));
    CHECK(s.p999 == histogram_percentile(one, 99.9));
    double mean = (double)(sum / n);
    CHECK_MSG(fabs(s.mean - mean) <= mean * 1e-12, "%s mean %f vs %f", dist_name[d], s.mean, mean);

    for (int i = 0; i < 4; i++) histogram_merge(merged, parts[i]);
    CHECK_MSG(memcmp(merged, one, sizeof *one) == 0, "%s: merge differs", dist_name[d]);
    /* Merging an empty one changes nothing; reset empties. */
    histogram_reset(parts[0]);
    histogram_merge(merged, parts[0]);
    CHECK(memcmp(merged, one, sizeof *one) == 0);

    printf("%-12s n=%zu p50=%llu p99=%llu p99.9=%llu max=%llu worst rel err %.5f%%\n", dist_name[d],
           n, (unsigned long long)s.p50, (unsigned long long)s.p99, (unsigned long long)s.p999,
           (unsigned long long)s.max, worst * 100);
    for (int i = 0; i < 4; i++) histogram_free(parts[i]);
    histogram_free(merged);
    histogram_free(one);
    free(v);
}

int main(void)
{
    test_buckets();
    test_rank();
    test_empty_and_edges();
    for (int d = 0; d < NDIST; d++) check_distribution((dist_t)d, d % 2 ? 100000 : 1000000);
    printf("worst relative error over all distributions: %.5f%% (bound 1/256 = 0.39%%)\n",
           worst_rel_err * 100);
    return check_exit();
}
