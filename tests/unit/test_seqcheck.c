/* test_seqcheck.c — payload header codec; exact loss/duplicate/reorder counts
 * on constructed streams, the window limit, 10^7 messages per producer, and a
 * randomised comparison with a brute-force reference. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "seqcheck.h"

static uint64_t rng_state = 0x243f6a8885a308d3u;

static uint64_t rnd64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static seqcheck_report_t report(const seqcheck_t *c, uint32_t producer, uint64_t sent)
{
    seqcheck_report_t r;
    CHECK_FATAL(seqcheck_report(c, producer, sent, &r) == 0);
    return r;
}

/* Expected report fields, in one line per case. */
static void check_report(const seqcheck_t *c, uint32_t producer, uint64_t sent, uint64_t delivered,
                         uint64_t lost, uint64_t dup, uint64_t reord, uint64_t late, int exact,
                         int line)
{
    seqcheck_report_t r = report(c, producer, sent);
    CHECK_MSG(r.delivered == delivered && r.lost == lost && r.duplicated == dup &&
                  r.reordered == reord && r.late == late && r.exact == exact,
              "line %d: delivered %llu lost %llu dup %llu reord %llu late %llu exact %d", line,
              (unsigned long long)r.delivered, (unsigned long long)r.lost,
              (unsigned long long)r.duplicated, (unsigned long long)r.reordered,
              (unsigned long long)r.late, r.exact);
}
#define REPORT_IS(c, p, sent, del, lost, dup, reord, late, exact)                                  \
    check_report(c, p, sent, del, lost, dup, reord, late, exact, __LINE__)

static void test_header(void)
{
    seqcheck_hdr_t h = {0x01020304u, 0x1112131415161718u, 0x2122232425262728u}, g;
    uint8_t buf[SEQCHECK_HEADER_BYTES + 8];
    static const uint8_t want[SEQCHECK_HEADER_BYTES] = {
        'S',  'L',  'B',  '1',  0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14,
        0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};
    seqcheck_encode(buf, &h);
    CHECK(memcmp(buf, want, sizeof want) == 0);
    memset(&g, 0, sizeof g);
    CHECK_EQ_INT(seqcheck_decode(buf, sizeof buf, &g), 0); /* longer payload: fine */
    CHECK(g.producer == h.producer && g.seq == h.seq && g.send_ns == h.send_ns);
    CHECK_EQ_INT(seqcheck_decode(buf, SEQCHECK_HEADER_BYTES, &g), 0);
    CHECK_EQ_INT(seqcheck_decode(buf, SEQCHECK_HEADER_BYTES - 1, &g), SEQCHECK_ERR_SHORT);
    CHECK_EQ_INT(seqcheck_decode(buf, 0, &g), SEQCHECK_ERR_SHORT);
    buf[3] = '2';
    g.seq = 7;
    CHECK_EQ_INT(seqcheck_decode(buf, sizeof buf, &g), SEQCHECK_ERR_MAGIC);
    CHECK(g.seq == 7); /* untouched on error */
}

static void test_new(void)
{
    CHECK(seqcheck_new(0, 1, 0) == NULL);
    CHECK(seqcheck_new(1, 1, SEQCHECK_MIN_WINDOW_BITS - 1) == NULL);
    CHECK(seqcheck_new(1, 1, SEQCHECK_MAX_WINDOW_BITS + 1) == NULL);
    CHECK_EQ_INT(seqcheck_memory_bytes(0, 1, 0), 0);
    /* Default window: 2^20 bits = 128 KiB per producer. */
    size_t m = seqcheck_memory_bytes(4, 16, 0);
    CHECK(m >= 4 * (128 * 1024 + 16 * 8) && m < 4 * (128 * 1024 + 16 * 8 + 64) + 256);
    seqcheck_free(NULL);
}

static void test_constructed(void)
{
    seqcheck_t *c = seqcheck_new(8, 2, 6); /* W = 64 */
    CHECK_FATAL(c != NULL);

    /* p0: no loss, in order. */
    for (uint64_t s = 0; s < 1000; s++) CHECK_EQ_INT(seqcheck_record(c, 0, 0, s), SEQCHECK_NEW);
    REPORT_IS(c, 0, 1000, 1000, 0, 0, 0, 0, 1);
    /* Mid-run tally: not seen yet counts as lost. */
    REPORT_IS(c, 0, 1500, 1000, 500, 0, 0, 0, 1);
    /* Nothing at all from p7. */
    REPORT_IS(c, 7, 0, 0, 0, 0, 0, 0, 1);
    REPORT_IS(c, 7, 10, 0, 10, 0, 0, 0, 1);

    /* p1: gaps — 5, 17, 500..599 and the tail 990..999 never arrive. */
    for (uint64_t s = 0; s < 990; s++)
        if (s != 5 && s != 17 && (s < 500 || s >= 600)) seqcheck_record(c, 1, 0, s);
    REPORT_IS(c, 1, 1000, 888, 112, 0, 0, 0, 1);

    /* p2: duplicates — every 10th twice, seq 3 four times, a re-sent run. */
    for (uint64_t s = 0; s < 200; s++) {
        seqcheck_record(c, 2, 1, s);
        if (s % 10 == 0) CHECK_EQ_INT(seqcheck_record(c, 2, 1, s), SEQCHECK_DUPLICATE);
        if (s == 3)
            for (int k = 0; k < 3; k++) seqcheck_record(c, 2, 1, s);
    }
    for (uint64_t s = 150; s < 200; s++) seqcheck_record(c, 2, 0, s); /* other partition */
    REPORT_IS(c, 2, 200, 200, 0, 20 + 3 + 50, 0, 0, 1);

    /* p3: reordered within the window — pairs swapped, and a block of 40
     * reversed; partition 0 and 1 interleave in order (no reordering). */
    for (uint64_t s = 0; s < 100; s += 2) {
        CHECK_EQ_INT(seqcheck_record(c, 3, 0, s + 1), SEQCHECK_NEW);
        CHECK_EQ_INT(seqcheck_record(c, 3, 0, s), SEQCHECK_REORDERED);
    }
    for (uint64_t s = 139; s >= 100; s--) seqcheck_record(c, 3, 0, s);
    for (uint64_t s = 140; s < 300; s++) seqcheck_record(c, 3, (uint32_t)(s % 2), s);
    REPORT_IS(c, 3, 300, 300, 0, 0, 50 + 39, 0, 1);

    /* p4: beyond the window — 10 missing until 200 arrived (200 - 10 >= 64):
     * late, and counted lost (the upper bound), report inexact. A duplicate
     * of 5 that late is late too. 150 arriving after 200 is within reach. */
    for (uint64_t s = 0; s <= 200; s++)
        if (s != 10 && s != 150) seqcheck_record(c, 4, 0, s);
    CHECK_EQ_INT(seqcheck_record(c, 4, 0, 10), SEQCHECK_LATE);
    CHECK_EQ_INT(seqcheck_record(c, 4, 0, 5), SEQCHECK_LATE);
    CHECK_EQ_INT(seqcheck_record(c, 4, 0, 150), SEQCHECK_REORDERED);
    CHECK_EQ_INT(seqcheck_record(c, 4, 0, 137), SEQCHECK_DUPLICATE); /* 200 - 63 */
    CHECK_EQ_INT(seqcheck_record(c, 4, 0, 136), SEQCHECK_LATE);      /* 200 - 64 */
    REPORT_IS(c, 4, 201, 200, 1, 1, 1, 3, 0);

    /* p5: a jump far past the window, with holes on both sides. */
    seqcheck_record(c, 5, 0, 0);
    seqcheck_record(c, 5, 0, 2);
    seqcheck_record(c, 5, 0, 10000);
    REPORT_IS(c, 5, 10001, 3, 9998, 0, 0, 0, 1);
    /* A sequence at or above `sent` (a producer bug) makes it inexact. */
    CHECK_EQ_INT(report(c, 5, 5000).exact, 0);

    /* Foreign arrivals touch no producer. */
    CHECK_EQ_INT(seqcheck_record(c, 8, 0, 0), SEQCHECK_FOREIGN);
    CHECK_EQ_INT(seqcheck_record(c, 6, 2, 0), SEQCHECK_FOREIGN);
    CHECK_EQ_INT(seqcheck_record(c, 6, 0, SEQCHECK_MAX_SEQ), SEQCHECK_FOREIGN);
    CHECK_EQ_INT(seqcheck_foreign(c), 3);
    REPORT_IS(c, 6, 0, 0, 0, 0, 0, 0, 1);
    seqcheck_report_t r;
    CHECK_EQ_INT(seqcheck_report(c, 8, 0, &r), -1);

    /* Sliding by a whole word at a time keeps the count: p6 gets only odd
     * seqs up to 10^4, arriving strictly increasing. */
    for (uint64_t s = 1; s < 10000; s += 2) seqcheck_record(c, 6, 1, s);
    REPORT_IS(c, 6, 10000, 5000, 5000, 0, 0, 0, 1);
    seqcheck_free(c);

    /* partitions = 0: no reorder tracking, any partition number accepted. */
    c = seqcheck_new(1, 0, 6);
    CHECK_FATAL(c != NULL);
    CHECK_EQ_INT(seqcheck_record(c, 0, 12345, 1), SEQCHECK_NEW);
    CHECK_EQ_INT(seqcheck_record(c, 0, 7, 0), SEQCHECK_NEW);
    REPORT_IS(c, 0, 2, 2, 0, 0, 0, 0, 1);
    seqcheck_free(c);
}

/* 10^7 per producer, two producers, four partitions, default window: every
 * 1000th message lost, every 777th duplicated, neighbours swapped every 100. */
static void test_ten_million(void)
{
    const uint64_t n = 10000000;
    seqcheck_t *c = seqcheck_new(2, 4, 0);
    CHECK_FATAL(c != NULL);
    for (uint64_t s = 0; s < n; s++) {
        for (uint32_t p = 0; p < 2; p++) {
            uint64_t seq = s;
            if (s % 100 == 10) seq = s + 1; /* swap s and s+1 ... */
            if (s % 100 == 11) seq = s - 1;
            if (seq % 1000 == 999) continue;
            uint32_t part = (uint32_t)((seq / 100) % 4); /* the swapped pair shares one */
            seqcheck_record(c, p, part, seq);
            if (seq % 777 == 0) seqcheck_record(c, p, part, seq);
        }
    }
    uint64_t lost = n / 1000, dup = 0, reord = n / 100;
    for (uint64_t s = 0; s < n; s += 777) dup += s % 1000 != 999;
    REPORT_IS(c, 0, n, n - lost, lost, dup, reord, 0, 1);
    REPORT_IS(c, 1, n, n - lost, lost, dup, reord, 0, 1);
    printf("10^7 x 2 producers: memory %zu bytes\n", seqcheck_memory_bytes(2, 4, 0));
    seqcheck_free(c);
}

typedef struct arrival {
    uint64_t key; /* sort key: original position + displacement */
    uint32_t producer, partition;
    uint64_t seq;
} arrival_t;

static int cmp_arrival(const void *a, const void *b)
{
    const arrival_t *x = a, *y = b;
    if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
    return (x > y) - (x < y); /* ties keep generation order (qsort is not stable) */
}

static uint64_t total_arrivals, total_late, total_reordered, total_dup, total_lost;

/* Random streams against a brute-force model of the documented semantics
 * (full arrays, no window), and against the generated truth when the
 * displacement stays inside the window. */
static void test_random(int round, uint64_t displacement)
{
    enum { NP = 3, NQ = 4, WBITS = 8 };
    const uint64_t W = 1u << WBITS;
    uint64_t sent[NP], total = 0;
    for (int p = 0; p < NP; p++) total += sent[p] = rnd64() % 5000;
    arrival_t *a = malloc((total * 3 + 1) * sizeof *a);
    uint8_t *copies[NP], *seen[NP];
    size_t na = 0;
    uint64_t pos = 0;
    /* Each producer sends its seqs in order, interleaved at random. */
    uint64_t next[NP] = {0};
    for (uint64_t k = 0; k < total; k++) {
        int p;
        do p = (int)(rnd64() % NP);
        while (next[p] == sent[p]);
        uint64_t s = next[p]++;
        uint32_t part = (uint32_t)(rnd64() % NQ);
        uint64_t r = rnd64() % 100, n = r < 3 ? 0 : r < 5 ? 2 + rnd64() % 2 : 1;
        for (uint64_t j = 0; j < n; j++)
            a[na++] = (arrival_t){pos * 4 + rnd64() % (displacement * 4 + 1), (uint32_t)p, part, s};
        pos++;
    }
    qsort(a, na, sizeof *a, cmp_arrival);
    total_arrivals += na;

    seqcheck_t *c = seqcheck_new(NP, NQ, WBITS);
    CHECK_FATAL(a && c);
    uint64_t del[NP] = {0}, dup[NP] = {0}, reord[NP] = {0}, late[NP] = {0}, hi[NP] = {0};
    uint64_t part_next[NP][NQ] = {{0}};
    for (int p = 0; p < NP; p++) {
        copies[p] = calloc(sent[p] + 1, 1);
        seen[p] = calloc(sent[p] + 1, 1);
        CHECK_FATAL(copies[p] && seen[p]);
    }
    int mismatched = 0;
    for (size_t i = 0; i < na; i++) {
        uint32_t p = a[i].producer;
        uint64_t s = a[i].seq;
        copies[p][s]++;
        /* The model: base = highest non-late seq + 1 - W. */
        seqcheck_verdict_t want;
        uint64_t base = hi[p] > W ? hi[p] - W : 0;
        if (s < base) {
            late[p]++;
            want = SEQCHECK_LATE;
        } else if (seen[p][s]) {
            dup[p]++;
            want = SEQCHECK_DUPLICATE;
        } else {
            seen[p][s] = 1;
            del[p]++;
            if (s + 1 > hi[p]) hi[p] = s + 1;
            if (s < part_next[p][a[i].partition]) {
                reord[p]++;
                want = SEQCHECK_REORDERED;
            } else {
                part_next[p][a[i].partition] = s + 1;
                want = SEQCHECK_NEW;
            }
        }
        if (seqcheck_record(c, p, a[i].partition, s) != want) mismatched++;
    }
    CHECK_MSG(mismatched == 0, "round %d: %d verdicts differ from the model", round, mismatched);
    for (int p = 0; p < NP; p++) {
        uint64_t lost = 0, true_lost = 0, true_dup = 0;
        for (uint64_t s = 0; s < sent[p]; s++) {
            lost += !seen[p][s];
            true_lost += copies[p][s] == 0;
            true_dup += copies[p][s] > 1 ? copies[p][s] - 1u : 0;
        }
        seqcheck_report_t r = report(c, (uint32_t)p, sent[p]);
        CHECK_MSG(r.delivered == del[p] && r.lost == lost && r.duplicated == dup[p] &&
                      r.reordered == reord[p] && r.late == late[p] && r.exact == (late[p] == 0),
                  "round %d producer %d", round, p);
        CHECK(r.delivered + r.lost == sent[p]);
        total_late += r.late;
        total_reordered += r.reordered;
        total_dup += r.duplicated;
        total_lost += r.lost;
        if (displacement * 4 < W) {
            /* Inside the window: the checker sees the generated truth. */
            CHECK_MSG(r.late == 0 && r.lost == true_lost && r.duplicated == true_dup,
                      "round %d producer %d: late %llu lost %llu/%llu dup %llu/%llu", round, p,
                      (unsigned long long)r.late, (unsigned long long)r.lost,
                      (unsigned long long)true_lost, (unsigned long long)r.duplicated,
                      (unsigned long long)true_dup);
        } else {
            /* Beyond it: true lost lies in [lost - late, lost]. */
            CHECK(true_lost <= r.lost && true_lost + r.late >= r.lost);
        }
        free(copies[p]);
        free(seen[p]);
    }
    seqcheck_free(c);
    free(a);
}

int main(void)
{
    test_header();
    test_new();
    test_constructed();
    test_ten_million();
    for (int i = 0; i < 40; i++) test_random(i, i % 2 ? 16 : 200 + rnd64() % 600);
    printf("random: %llu arrivals, %llu lost, %llu duplicated, %llu reordered, %llu late\n",
           (unsigned long long)total_arrivals, (unsigned long long)total_lost,
           (unsigned long long)total_dup, (unsigned long long)total_reordered,
           (unsigned long long)total_late);
    /* Both regimes were exercised. */
    CHECK(total_late > 0 && total_reordered > 0 && total_dup > 0 && total_lost > 0);
    return check_exit();
}
