/* test_crc32c.c — CRC-32C: published vectors, portable vs SSE4.2, chaining. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "crc32c.h"

/* The kcat batch of kafka-protocol.md §4.2 (82 bytes, offset 0 assigned). */
static const uint8_t kcat_batch[82] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00,
    0x00, 0x00, 0x02, 0xf7, 0x1f, 0x24, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8, 0xea, 0x00, 0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8,
    0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x01, 0x28, 0x00, 0x00, 0x00, 0x02, 0x4b, 0x02, 0x61, 0x04,
    0x04, 0x68, 0x31, 0x04, 0x76, 0x31, 0x04, 0x68, 0x32, 0x04, 0x76, 0x32,
};

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static int hw;

/* Runs the check against every implementation this CPU can run. */
static void check_vector(const void *buf, size_t len, uint32_t want)
{
    CHECK_EQ_INT(sl_crc32c(0, buf, len), want);
    CHECK_EQ_INT(sl_crc32c_sw(0, buf, len), want);
    if (hw) CHECK_EQ_INT(sl_crc32c_hw(0, buf, len), want);
}

static void test_vectors(void)
{
    uint8_t zeros[32], ones[32], up[32], down[32];
    memset(zeros, 0, sizeof zeros);
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) {
        up[i] = (uint8_t)i;
        down[i] = (uint8_t)(31 - i);
    }
    check_vector("123456789", 9, 0xE3069283u);
    check_vector(zeros, 32, 0x8A9136AAu);
    check_vector(ones, 32, 0x62A8AB43u);
    check_vector(up, 32, 0x46DD794Eu);
    check_vector(down, 32, 0x113FDB5Cu);
    check_vector("", 0, 0);
    /* A zero-length update leaves a running value untouched. */
    CHECK_EQ_INT(sl_crc32c(0xE3069283u, "", 0), 0xE3069283u);
    CHECK_EQ_INT(sl_crc32c_sw(0xE3069283u, NULL, 0), 0xE3069283u);
}

static void test_kcat_batch(void)
{
    uint32_t stored = (uint32_t)kcat_batch[17] << 24 | (uint32_t)kcat_batch[18] << 16 |
                      (uint32_t)kcat_batch[19] << 8 | kcat_batch[20];
    CHECK_EQ_INT(stored, 0xf71f240bu);
    check_vector(kcat_batch + 21, sizeof kcat_batch - 21, 0xf71f240bu);
}

static uint32_t rng = 0x12345678;
static uint8_t rnd8(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (uint8_t)(rng >> 7);
}

/* Every length 0..300 at every alignment 0..15: exercises the head, the
 * 8-byte body and the tail of both implementations. Failures are counted
 * rather than each being its own CHECK so the summary stays readable. */
static void test_hw_vs_sw(void)
{
    static uint8_t mem[16 + 300 + 16];
    for (size_t i = 0; i < sizeof mem; i++) mem[i] = rnd8();
    int mismatches = 0, dispatch_mismatches = 0, runs = 0;
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len <= 300; len++) {
            const uint8_t *p = mem + align;
            uint32_t sw = sl_crc32c_sw(0, p, len);
            if (hw && sl_crc32c_hw(0, p, len) != sw) {
                if (mismatches++ < 5)
                    fprintf(stderr, "hw != sw at align %zu len %zu\n", align, len);
            }
            /* Also from a non-zero running value. */
            if (hw && sl_crc32c_hw(0xdeadbeef, p, len) != sl_crc32c_sw(0xdeadbeef, p, len))
                mismatches++;
            if (sl_crc32c(0, p, len) != sw) dispatch_mismatches++;
            runs++;
        }
    }
    CHECK_EQ_INT(runs, 16 * 301);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(dispatch_mismatches, 0);
}

static void test_incremental(void)
{
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = rnd8();
    crc_fn fns[3] = {sl_crc32c, sl_crc32c_sw, sl_crc32c_hw};
    for (int f = 0; f < (hw ? 3 : 2); f++) {
        uint32_t whole = fns[f](0, buf, sizeof buf);
        int bad = 0;
        for (size_t k = 0; k <= sizeof buf; k++) {
            if (fns[f](fns[f](0, buf, k), buf + k, sizeof buf - k) != whole) bad++;
        }
        CHECK_EQ_INT(bad, 0);
        /* One byte at a time: only the tail loops ever run. */
        uint32_t c = 0;
        for (size_t k = 0; k < sizeof buf; k++) c = fns[f](c, buf + k, 1);
        CHECK_EQ_INT(c, whole);
    }
    /* Mixing implementations mid-stream must work too: the state is the CRC. */
    if (hw) {
        uint32_t a = sl_crc32c_sw(0, buf, 123);
        CHECK_EQ_INT(sl_crc32c_hw(a, buf + 123, sizeof buf - 123),
                     sl_crc32c_sw(0, buf, sizeof buf));
    }
}

/* The block sizes of sl_crc32c_hw's three-way interleaving (CRC_LONG,
 * CRC_MID and CRC_SHORT in crc32c.c). Only used to aim the lengths below at
 * the edges between its paths; the checks hold whatever the sizes are. */
enum { HW_LONG = 65536, HW_MID = 4096, HW_SHORT = 256 };

static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* A random value in [0, n]. */
static size_t rnd_upto(size_t n)
{
    uint64_t hi = rnd32();
    return (size_t)((hi << 32 | rnd32()) % ((uint64_t)n + 1));
}

static uint8_t *random_buffer(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK_FATAL(b != NULL);
    for (size_t i = 0; i < n; i++) b[i] = rnd8();
    return b;
}

static int within_64(size_t len, size_t edge)
{
    return len + 64 >= edge && len < edge + 64;
}

/* hw against sw at lengths 0 .. 3*HW_LONG+300: every length up to 2,000 (the
 * single chain, the short groups and the tail after them) and within 64 of
 * the first mid and long groups, every 7th elsewhere (7 is odd, so every
 * residue mod 8 and mod the block sizes comes up). Up to 3*HW_MID+300 and
 * near 3*HW_LONG each length is tried at every alignment 0..15; in between,
 * where there are 26,000 lengths of up to 192 KiB, at one alignment each, in
 * rotation (alignment only decides how many bytes the byte loop takes before
 * the 8-byte loads, so that still meets every (head, length) pairing many
 * times). Each alignment has its own random running value (0 at alignment
 * 0, where the dispatching entry point is checked too).
 *
 * The reference is sw, carried forward incrementally from the previous
 * length so the sweep costs one sw pass per alignment; it is checked against
 * a one-shot sw at the end, and chaining itself has its own tests. */
static void test_hw_vs_sw_long(void)
{
    enum { MAXLEN = 3 * HW_LONG + 300, DENSE_END = 3 * HW_MID + 300 };
    uint8_t *mem = random_buffer(16 + MAXLEN + 16);
    uint32_t start[16], ref[16];
    size_t ref_len[16];
    for (int a = 0; a < 16; a++) {
        start[a] = ref[a] = a == 0 ? 0 : rnd32();
        ref_len[a] = 0;
    }
    int mismatches = 0, dispatch_mismatches = 0, runs = 0, dense = 0, sparse = 0;
    size_t rotate = 0;
    for (size_t len = 0; len <= MAXLEN;) {
        size_t first = 0, last = 15;
        if (len <= DENSE_END || within_64(len, 3 * HW_LONG)) {
            dense++;
        } else {
            first = last = rotate++ % 16;
            sparse++;
        }
        for (size_t align = first; align <= last; align++) {
            const uint8_t *p = mem + align;
            ref[align] = sl_crc32c_sw(ref[align], p + ref_len[align], len - ref_len[align]);
            ref_len[align] = len;
            if (hw && sl_crc32c_hw(start[align], p, len) != ref[align]) {
                if (mismatches++ < 5)
                    fprintf(stderr, "hw != sw at align %zu len %zu start %08x\n", align, len,
                            (unsigned)start[align]);
            }
            if (align == 0 && sl_crc32c(0, p, len) != ref[0]) dispatch_mismatches++;
            runs++;
        }
        if (len < 2000 || within_64(len, 3 * HW_MID) || within_64(len, 3 * HW_LONG))
            len++;
        else
            len += 7;
    }
    printf("hw vs sw: lengths 0..%d, %d at 16 alignments, %d at one: %d runs\n", MAXLEN, dense,
           sparse, runs);
    CHECK(dense + sparse > 2000 + (MAXLEN - 2000) / 7);
    CHECK(dense > 2000 + (DENSE_END - 2000) / 7);
    CHECK_EQ_INT(runs, 16 * dense + sparse);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(dispatch_mismatches, 0);
    /* The incremental reference is the one-shot CRC. */
    int ref_bad = 0;
    for (int a = 0; a < 16; a++) {
        ref[a] = sl_crc32c_sw(ref[a], mem + a + ref_len[a], MAXLEN - ref_len[a]);
        if (ref[a] != sl_crc32c_sw(start[a], mem + a, MAXLEN)) ref_bad++;
    }
    CHECK_EQ_INT(ref_bad, 0);
    free(mem);
}

/* 1 MiB and 16 MiB + 13 at a few alignments: many long groups in a row. */
static void test_hw_vs_sw_large(void)
{
    static const size_t sizes[] = {1u << 20, (16u << 20) + 13};
    static const size_t aligns[] = {0, 3, 8, 13};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint8_t *mem = random_buffer(sizes[s] + 16);
        for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
            const uint8_t *p = mem + aligns[a];
            uint32_t sw = sl_crc32c_sw(0, p, sizes[s]);
            if (hw) CHECK_EQ_INT(sl_crc32c_hw(0, p, sizes[s]), sw);
            CHECK_EQ_INT(sl_crc32c(0, p, sizes[s]), sw);
            /* From a non-zero running value too. */
            if (hw)
                CHECK_EQ_INT(sl_crc32c_hw(0x5a5a5a5au, p, sizes[s]),
                             sl_crc32c_sw(0x5a5a5a5au, p, sizes[s]));
        }
        free(mem);
    }
}

/* Chaining at random split points equals the one-shot CRC, for every
 * implementation and when they are mixed: two pieces and three pieces of
 * random prefixes (half of them short enough to stay below the long groups),
 * and a 16 MiB buffer cut in thousands of random pieces. */
static void test_random_splits(void)
{
    enum { N = 3 * HW_LONG + 3 * HW_MID + 3 * HW_SHORT + 300 };
    uint8_t *buf = random_buffer(N);
    crc_fn fns[3] = {sl_crc32c, sl_crc32c_sw, sl_crc32c_hw};
    int nfns = hw ? 3 : 2;
    int bad2 = 0, bad3 = 0, trials = 0;
    for (int t = 0; t < 2000; t++) {
        size_t n = rnd_upto(t % 2 ? N : 3 * HW_MID + 3 * HW_SHORT + 300);
        uint32_t want = sl_crc32c_sw(0, buf, n);
        size_t i = rnd_upto(n), j = rnd_upto(n);
        if (i > j) {
            size_t tmp = i;
            i = j;
            j = tmp;
        }
        crc_fn f = fns[rnd32() % (unsigned)nfns], g = fns[rnd32() % (unsigned)nfns],
               h = fns[rnd32() % (unsigned)nfns];
        if (g(f(0, buf, i), buf + i, n - i) != want) bad2++;
        if (h(g(f(0, buf, i), buf + i, j - i), buf + j, n - j) != want) bad3++;
        trials++;
    }
    CHECK_EQ_INT(trials, 2000);
    CHECK_EQ_INT(bad2, 0);
    CHECK_EQ_INT(bad3, 0);
    uint32_t whole = sl_crc32c_sw(0, buf, N);
    for (int f = 0; f < nfns; f++) CHECK_EQ_INT(fns[f](0, buf, N), whole);
    free(buf);

    size_t big = (16u << 20) + 13;
    uint8_t *mem = random_buffer(big);
    uint32_t one_shot = sl_crc32c_sw(0, mem, big);
    for (int f = 0; f < nfns; f++) {
        uint32_t c = 0;
        size_t off = 0;
        int pieces = 0;
        while (off < big) {
            /* Mostly pieces below the long groups, some of up to 1 MiB. */
            size_t n = rnd_upto(rnd32() % 8 ? 3 * HW_MID + 100 : 1u << 20);
            if (n > big - off) n = big - off;
            c = fns[f](c, mem + off, n);
            off += n;
            pieces++;
        }
        CHECK(pieces > 100);
        CHECK_EQ_INT(c, one_shot);
    }
    free(mem);
}

static void *race_first_call(void *arg)
{
    uint32_t *out = arg;
    *out = sl_crc32c(0, "123456789", 9);
    return NULL;
}

/* Runs before anything else calls sl_crc32c, so the threads race on the
 * one-time dispatch (ASan/TSan builds see any problem there). */
static void test_first_call_race(void)
{
    enum { N = 4 };
    pthread_t t[N];
    uint32_t res[N] = {0};
    for (int i = 0; i < N; i++)
        CHECK_FATAL(pthread_create(&t[i], NULL, race_first_call, &res[i]) == 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(res[i], 0xE3069283u);
    }
}

int main(void)
{
    test_first_call_race();
    hw = sl_crc32c_hw_available();
    printf("sse4.2 crc32: %s\n", hw ? "available" : "not available");
    CHECK(hw == 0 || hw == 1);
    test_vectors();
    test_kcat_batch();
    test_hw_vs_sw();
    test_incremental();
    test_hw_vs_sw_long();
    test_hw_vs_sw_large();
    test_random_splits();
    return check_exit();
}
