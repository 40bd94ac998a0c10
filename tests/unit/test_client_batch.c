/* test_client_batch.c — libsluice's batch builder byte-exact against the
 * kcat vector of kafka-protocol.md §4.2, round trips through proto/batch.h's
 * record iterator (plain and lz4), and murmur2/partitioner vectors from
 * Kafka's Java client (murmur2("21"), and the Java-compatibility partition
 * vectors recorded in kafka-python's tests). kafkajs's "legacy" murmur2
 * vectors are NOT Java's (that partitioner had a known bug) and are not used. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"
#include "internal.h"

static void test_kcat_vector(void)
{
    static const uint8_t want[82] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00,
        0x00, 0x00, 0x02, 0xf7, 0x1f, 0x24, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8, 0xea, 0x00, 0x00, 0x01, 0xa2, 0x1b, 0x0e, 0xc8,
        0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x01, 0x28, 0x00, 0x00, 0x00, 0x02, 0x4b, 0x02, 0x61, 0x04,
        0x04, 0x68, 0x31, 0x04, 0x76, 0x31, 0x04, 0x68, 0x32, 0x04, 0x76, 0x32};
    sluice_header_t h[2] = {{"h1", "v1", 2}, {"h2", "v2", 2}};
    sl_pbatch_t *b = sl_pbatch_new(1024);
    CHECK_FATAL(b);
    int op = 7;
    CHECK_EQ_INT(sl_pbatch_append(b, 0x1a21b0ec8eaLL, "K", 1, "a", 1, h, 2, &op), 0);
    CHECK_EQ_INT(sl_pbatch_finalize(b, SL_COMPRESSION_NONE), 0);
    CHECK_EQ_INT(b->wire_len, sizeof want);
    CHECK(b->wire_len == sizeof want && memcmp(b->wire, want, sizeof want) == 0);
    CHECK_EQ_INT(sl_batch_validate(b->wire, b->wire_len, NULL, NULL, NULL), SL_OK);

    /* What a delivery report sees. */
    sluice_message_t m = {0};
    sluice_header_t hd[4];
    char kb[64];
    CHECK_EQ_INT(sl_pbatch_msg(b, 0, &m, hd, 4, kb, sizeof kb), 0);
    CHECK(m.key_len == 1 && memcmp(m.key, "K", 1) == 0);
    CHECK(m.value_len == 1 && memcmp(m.value, "a", 1) == 0);
    CHECK_EQ_INT(m.header_count, 2);
    CHECK(strcmp(hd[1].key, "h2") == 0 && hd[1].value_len == 2);
    CHECK_EQ_INT(m.timestamp, 0x1a21b0ec8eaLL);
    CHECK(m.opaque == &op);
    sl_pbatch_free(b);
}

/* Many records, null keys/values, negative timestamp deltas; then through
 * the iterator; compression as asked. */
static void roundtrip(int compression, int expect_codec)
{
    sl_pbatch_t *b = sl_pbatch_new(1 << 20);
    CHECK_FATAL(b);
    char val[200];
    int n = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(val, sizeof val, "value-%06d-%s", i,
                 "the quick brown fox jumps over the lazy dog");
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        sluice_header_t h = {"seq", key, strlen(key)};
        if (sl_pbatch_append(b, 1000000 + (i % 7) - 3, i % 5 ? key : NULL, strlen(key),
                             i % 11 ? val : NULL, strlen(val), &h, i % 3 == 0, NULL) != 0)
            break;
        n++;
    }
    CHECK_EQ_INT(n, 2000);
    CHECK_EQ_INT(sl_pbatch_finalize(b, compression), 0);
    sl_batch_hdr_t hh;
    CHECK_EQ_INT(sl_batch_validate(b->wire, b->wire_len, NULL, &hh, NULL), SL_OK);
    CHECK_EQ_INT(hh.attributes & SL_BATCH_COMPRESSION_MASK, expect_codec);
    CHECK_EQ_INT(hh.records_count, 2000);
    CHECK_EQ_INT(hh.max_timestamp, 1000003);
    if (expect_codec) CHECK(b->wire_len < b->len / 2);
    CHECK_EQ_INT(sl_batch_validate_deep(b->wire, b->wire_len, NULL, NULL), SL_OK);
    sl_record_iter_t it;
    sl_err_t err;
    CHECK_EQ_INT(sl_record_iter_init(&it, b->wire, b->wire_len, NULL, &err), SL_OK);
    sl_record_t r;
    int i = 0, bad = 0;
    while (sl_record_iter_next(&it, &r, &err) == 1) {
        snprintf(val, sizeof val, "value-%06d-%s", i,
                 "the quick brown fox jumps over the lazy dog");
        if (i % 11 ? (r.value_len != (int32_t)strlen(val) || memcmp(r.value, val, strlen(val)))
                   : r.value_len != -1)
            bad++;
        if (i % 5 == 0 && r.key_len != -1) bad++;
        if (r.timestamp != 1000000 + (i % 7) - 3) bad++;
        if (r.header_count != (i % 3 == 0)) bad++;
        if (r.offset != i) bad++;
        i++;
    }
    sl_record_iter_free(&it);
    CHECK_EQ_INT(i, 2000);
    CHECK_EQ_INT(bad, 0);
    sl_pbatch_free(b);
}

static void test_lz4_small_stays_plain(void)
{
    sl_pbatch_t *b = sl_pbatch_new(256);
    CHECK_EQ_INT(sl_pbatch_append(b, 1, NULL, 0, "xyz", 3, NULL, 0, NULL), 0);
    CHECK_EQ_INT(sl_pbatch_finalize(b, SL_COMPRESSION_LZ4), 0);
    CHECK(b->wire == b->buf); /* did not shrink: sent uncompressed */
    CHECK_EQ_INT(b->wire[SL_BATCH_OFF_ATTRIBUTES + 1] & 7, 0);
    sl_pbatch_free(b);
    /* Frame header as Kafka clients write it: magic, FLG 0x60, BD 0x40. */
    uint8_t *z = NULL;
    char buf[4096];
    memset(buf, 'a', sizeof buf);
    size_t zn = sl_lz4_compress(buf, sizeof buf, &z);
    CHECK(zn > 7 && zn < 200);
    CHECK(z[0] == 0x04 && z[1] == 0x22 && z[2] == 0x4d && z[3] == 0x18);
    CHECK_EQ_INT(z[4], 0x60);
    CHECK_EQ_INT(z[5], 0x40);
    uint8_t *out = NULL;
    CHECK_EQ_INT(sl_lz4_decompress(z, zn, 1 << 20, &out), (long)sizeof buf);
    CHECK(out && memcmp(out, buf, sizeof buf) == 0);
    free(out);
    free(z);
}

static void test_batch_full(void)
{
    sl_pbatch_t *b = sl_pbatch_new(200);
    char v[100] = {0};
    CHECK_EQ_INT(sl_pbatch_append(b, 1, NULL, 0, v, sizeof v, NULL, 0, NULL), 0);
    CHECK_EQ_INT(sl_pbatch_append(b, 1, NULL, 0, v, sizeof v, NULL, 0, NULL), -1);
    CHECK_EQ_INT(b->count, 1);
    sl_pbatch_free(b);
}

static void test_murmur2(void)
{
    CHECK_EQ_INT((int32_t)sluice_murmur2("21", 2), -973932308);
    /* Java's default partitioner over 1000 partitions (kafka-python's
     * java-compatibility test). */
    CHECK_EQ_INT(sluice_partition_for_key("", 0, 1000), 681);
    CHECK_EQ_INT(sluice_partition_for_key("a", 1, 1000), 524);
    CHECK_EQ_INT(sluice_partition_for_key("ab", 2, 1000), 434);
    CHECK_EQ_INT(sluice_partition_for_key("abc", 3, 1000), 107);
    CHECK_EQ_INT(sluice_partition_for_key("123456789", 9, 1000), 566);
    CHECK_EQ_INT(sluice_partition_for_key("\x00 ", 2, 1000), 742);
    CHECK_EQ_INT(sluice_partition_for_key("x", 1, 0), -1);
}

static void test_errors_version(void)
{
    CHECK(strcmp(sluice_err2str(SLUICE_ERR__QUEUE_FULL), "QUEUE_FULL") == 0);
    CHECK(strcmp(sluice_err2str(SLUICE_ERR_CORRUPT_MESSAGE), "CORRUPT_MESSAGE") == 0);
    CHECK(sluice_err2str(-12345) != NULL);
    CHECK(sluice_err_is_retriable(SLUICE_ERR__TRANSPORT));
    CHECK(sluice_err_is_retriable(SLUICE_ERR_STORAGE_ERROR));
    CHECK(sluice_err_is_retriable(SLUICE_ERR_REQUEST_TIMED_OUT));
    CHECK(!sluice_err_is_retriable(SLUICE_ERR_MESSAGE_TOO_LARGE));
    CHECK_EQ_INT(sluice_version(), SLUICE_VERSION);
    CHECK(strcmp(sluice_version_str(), "0.1.0") == 0);
}

int main(void)
{
    test_kcat_vector();
    roundtrip(SL_COMPRESSION_NONE, 0);
    roundtrip(SL_COMPRESSION_LZ4, 3);
    test_lz4_small_stays_plain();
    test_batch_full();
    test_murmur2();
    test_errors_version();
    return check_exit();
}
