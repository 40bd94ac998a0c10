/* test_crc32c.c — CRC-32C: published vectors, portable vs SSE4.2, chaining. */
#include <pthread.h>
#include <stdint.h>

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
    return check_exit();
}
