/* test_store.c — the data directory: topic create/list/describe/alter/delete,
 * Kafka's topic-name rules, config validation, metadata across reopen, the
 * directory lock, the clean-shutdown marker, deletion under a reader,
 * leftovers of interrupted work, lazy partition opening, and the acks=all
 * path through the flusher (sync, async, group commit). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "io.h"
#include "store.h"

/* ---- helpers ---------------------------------------------------------------- */

static store_t *open_store_opts(const char *dir, uint32_t max_open, const sl_log_conf_t *defs)
{
    store_opts_t o = {.dir = dir, .defaults = defs, .max_open_segments = max_open};
    store_t *s = NULL;
    sl_err_t err;
    int rc = store_open(&o, &s, &err);
    CHECK_MSG(rc == SL_OK, "store_open %s: %s", dir, err.msg);
    CHECK_FATAL(s != NULL);
    return s;
}

static store_t *open_store(const char *dir)
{
    return open_store_opts(dir, 0, NULL);
}

static int create_topic(store_t *s, const char *name, int32_t parts)
{
    sl_err_t err;
    int rc = store_topic_create(s, name, parts, NULL, NULL, 0, &err);
    CHECK_MSG(rc == SL_OK, "create %s: %s", name, err.msg);
    return rc;
}

static partition_t *get_part(store_t *s, const char *topic, int32_t id)
{
    partition_t *p = NULL;
    sl_err_t err;
    int rc = store_partition(s, topic, id, &p, &err);
    CHECK_MSG(rc == SL_OK, "store_partition %s-%d: %s", topic, id, err.msg);
    CHECK_FATAL(p != NULL);
    return p;
}

/* The batch bg_simple(n, vsize, ts, seed) as it must read back at `base`. */
static uint8_t *expected_batch(int n, size_t vsize, int64_t ts, uint32_t seed, int64_t base,
                               size_t *len)
{
    uint8_t *b = bg_simple(n, vsize, ts, seed, len);
    CHECK_FATAL(b != NULL);
    sl_put_be64(b, (uint64_t)base);
    return b;
}

/* Appends bg_simple(n, vsize, ts, seed); returns the base offset or -1. */
static int64_t append(partition_t *p, int n, size_t vsize, int64_t ts, uint32_t seed,
                      partition_append_info_t *out)
{
    size_t len;
    uint8_t *b = bg_simple(n, vsize, ts, seed, &len);
    CHECK_FATAL(b != NULL);
    partition_append_info_t info;
    sl_err_t err;
    int rc = partition_append(p, b, len, ts, &info, &err);
    CHECK_MSG(rc == SL_OK, "append: %s", err.msg);
    free(b);
    if (out) *out = info;
    return rc == SL_OK ? info.base_offset : -1;
}

/* 1 when the batch holding `offset` reads back byte for byte as expected. */
static int reads_back(partition_t *p, int64_t offset, const uint8_t *want, size_t wlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    sl_err_t err;
    int rc = partition_read_copy(p, offset, 1, &buf, &len, &err);
    CHECK_MSG(rc == SL_OK, "read_copy %" PRId64 ": %s", offset, err.msg);
    int ok = rc == SL_OK && len == wlen && memcmp(buf, want, wlen) == 0;
    free(buf);
    return ok;
}

static int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* 1 if `name` is in the store's topic list. */
static int listed(store_t *s, const char *name)
{
    char **names = NULL;
    size_t n = 0;
    sl_err_t err;
    int rc = store_topic_list(s, &names, &n, &err);
    CHECK_MSG(rc == SL_OK, "list: %s", err.msg);
    int found = 0;
    for (size_t i = 0; rc == SL_OK && i < n; i++) found |= strcmp(names[i], name) == 0;
    store_names_free(names, n);
    return found;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    CHECK_FATAL(buf != NULL);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* ---- topic names ------------------------------------------------------------ */

static void test_topic_names(void)
{
    char *dir = check_tmpdir("store-names");
    store_t *s = open_store(dir);
    sl_err_t err;

    char max[STORE_MAX_TOPIC_NAME + 1], over[STORE_MAX_TOPIC_NAME + 2];
    memset(max, 'x', STORE_MAX_TOPIC_NAME);
    max[STORE_MAX_TOPIC_NAME] = 0;
    memset(over, 'y', STORE_MAX_TOPIC_NAME + 1);
    over[STORE_MAX_TOPIC_NAME + 1] = 0;

    const char *valid[] = {"a", max, "a.b_c-D9", "...", ".a", "-", "_"};
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        CHECK_MSG(store_validate_topic_name(valid[i], &err) == SL_OK, "\"%s\": %s", valid[i],
                  err.msg);
        CHECK_MSG(store_topic_create(s, valid[i], 1, NULL, NULL, 0, &err) == SL_OK,
                  "create \"%s\": %s", valid[i], err.msg);
        CHECK_MSG(listed(s, valid[i]), "\"%s\" not listed", valid[i]);
    }

    const char *invalid[] = {"",         over,  ".",    "..",  "a/b", "a b",
                             "\xc3\xa9", "a\n", "a\\b", "a:b", "a*"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        err.msg[0] = 0;
        CHECK_EQ_INT(store_validate_topic_name(invalid[i], &err), SL_ERR_INVALID_TOPIC);
        CHECK_MSG(err.code == SL_ERR_INVALID_TOPIC && strlen(err.msg) > 0,
                  "invalid name #%zu: no message", i);
        err.msg[0] = 0;
        CHECK_EQ_INT(store_topic_create(s, invalid[i], 1, NULL, NULL, 0, &err),
                     SL_ERR_INVALID_TOPIC);
        CHECK_MSG(strlen(err.msg) > 0, "create of invalid name #%zu: no message", i);
        CHECK(!listed(s, invalid[i]));
    }
    CHECK_EQ_INT(store_validate_topic_name(NULL, &err), SL_ERR_INVALID_TOPIC);
    /* The messages say what is wrong. */
    store_validate_topic_name(over, &err);
    CHECK_MSG(strstr(err.msg, "250") != NULL, "length message: %s", err.msg);
    store_validate_topic_name("a b", &err);
    CHECK_MSG(strstr(err.msg, "position 1") != NULL, "char message: %s", err.msg);
    /* Nothing created for the invalid ones: only the valid topics' dirs. */
    char path[4096];
    snprintf(path, sizeof path, "%s/topics", dir);
    CHECK_EQ_INT(count_entries(path), (int)(sizeof valid / sizeof *valid));

    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- partition counts ------------------------------------------------------ */

static void test_partition_counts(void)
{
    char *dir = check_tmpdir("store-parts");
    store_t *s = open_store(dir);
    sl_err_t err;
    const int32_t bad[] = {0, -1, STORE_MAX_PARTITIONS + 1, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        CHECK_EQ_INT(store_topic_create(s, "t", bad[i], NULL, NULL, 0, &err),
                     SL_ERR_INVALID_PARTITIONS);
        CHECK_MSG(strlen(err.msg) > 0, "no message for %d partitions", bad[i]);
        CHECK(!listed(s, "t"));
    }
    CHECK_EQ_INT(store_topic_create(s, "t", STORE_MAX_PARTITIONS, NULL, NULL, 0, &err), SL_OK);
    int32_t n = 0;
    CHECK_EQ_INT(store_topic_info(s, "t", &n, NULL, NULL, &err), SL_OK);
    CHECK_EQ_INT(n, STORE_MAX_PARTITIONS);
    /* Creating it opened nothing. */
    CHECK_EQ_INT(store_open_partitions(s), 0);
    partition_t *p = get_part(s, "t", STORE_MAX_PARTITIONS - 1);
    partition_unref(p);
    CHECK_EQ_INT(store_open_partitions(s), 1);
    CHECK_EQ_INT(store_partition(s, "t", STORE_MAX_PARTITIONS, &p, &err),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK(p == NULL);
    CHECK_EQ_INT(store_partition(s, "t", -1, &p, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(store_partition(s, "nope", 0, &p, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    store_close(s);
    /* The count survives a reopen. */
    s = open_store(dir);
    CHECK_EQ_INT(store_topic_info(s, "t", &n, NULL, NULL, &err), SL_OK);
    CHECK_EQ_INT(n, STORE_MAX_PARTITIONS);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- configuration --------------------------------------------------------- */

static void test_config_validation(void)
{
    char *dir = check_tmpdir("store-conf");
    store_t *s = open_store(dir);
    sl_err_t err;

    /* Unknown key: named, with the closest known key suggested. */
    const char *k1[] = {"segment.byte"}, *v1[] = {"65536"};
    CHECK_EQ_INT(store_topic_create(s, "t", 1, k1, v1, 1, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "\"segment.byte\"") != NULL, "msg: %s", err.msg);
    CHECK_MSG(strstr(err.msg, "segment.bytes") != NULL, "no suggestion: %s", err.msg);
    CHECK(!listed(s, "t"));
    const char *k2[] = {"retention.msec"}, *v2[] = {"1"};
    CHECK_EQ_INT(store_topic_create(s, "t", 1, k2, v2, 1, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "retention.ms\"?") != NULL || strstr(err.msg, "\"retention.ms\""),
              "suggestion: %s", err.msg);
    const char *k3[] = {"completely.unrelated.key"}, *v3[] = {"1"};
    CHECK_EQ_INT(store_topic_create(s, "t", 1, k3, v3, 1, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "completely.unrelated.key") != NULL, "msg: %s", err.msg);

    /* Bad values: not an integer, empty, out of the key's bounds, overflow. */
    struct {
        const char *k, *v;
    } bad[] = {
        {"segment.bytes", "12x"},
        {"segment.bytes", ""},
        {"segment.bytes", " 65536"},
        {"segment.bytes", "65536 "},
        {"segment.bytes", "+65536"},
        {"segment.bytes", "0x10000"},
        {"segment.bytes", "100"},        /* below the 4096 minimum */
        {"segment.bytes", "4294967296"}, /* above INT32_MAX */
        {"retention.ms", "-2"},
        {"retention.bytes", "-5"},
        {"segment.ms", "0"},
        {"flush.messages", "0"},
        {"max.message.bytes", "10"},
        {"retention.ms", "99999999999999999999"}, /* int64 overflow */
        {"retention.ms", "-"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *k[] = {bad[i].k}, *v[] = {bad[i].v};
        err.msg[0] = 0;
        CHECK_MSG(store_topic_create(s, "t", 1, k, v, 1, &err) == SL_ERR_INVALID_CONFIG,
                  "%s=\"%s\" accepted", bad[i].k, bad[i].v);
        CHECK_MSG(strstr(err.msg, bad[i].k) != NULL, "%s=\"%s\": message %s", bad[i].k, bad[i].v,
                  err.msg);
        CHECK(!listed(s, "t"));
    }
    /* A batch may be larger than segment.bytes (it gets a segment of its own,
     * as in Kafka), so small segments with the default max.message.bytes are
     * fine. */
    const char *k4[] = {"segment.bytes"}, *v4[] = {"4096"};
    CHECK_EQ_INT(store_topic_create(s, "tseg", 1, k4, v4, 1, &err), SL_OK);
    {
        partition_t *tp = get_part(s, "tseg", 0);
        size_t bl;
        uint8_t *big = bg_simple(3, 5000, 1, 1, &bl); /* > 4096 */
        CHECK_EQ_INT(partition_append(tp, big, bl, 1, NULL, &err), SL_OK);
        CHECK_EQ_INT(partition_append(tp, big, bl, 1, NULL, &err), SL_OK);
        partition_stats_t st;
        partition_stats(tp, &st);
        CHECK_EQ_INT(st.segments, 2);
        CHECK_EQ_INT(st.log_end, 6);
        free(big);
        partition_unref(tp);
    }
    CHECK_EQ_INT(store_topic_delete(s, "tseg", &err), SL_OK);

    /* Good values at the bounds. */
    const char *k5[] = {"segment.bytes", "max.message.bytes", "retention.ms", "retention.bytes",
                        "flush.ms"};
    const char *v5[] = {"4096", "4096", "-1", "9223372036854775807", "0"};
    CHECK_EQ_INT(store_topic_create(s, "t", 2, k5, v5, 5, &err), SL_OK);
    sl_log_conf_t c;
    CHECK_EQ_INT(store_topic_info(s, "t", NULL, &c, NULL, &err), SL_OK);
    CHECK_EQ_INT(c.segment_bytes, 4096);
    CHECK_EQ_INT(c.max_message_bytes, 4096);
    CHECK_EQ_INT(c.retention_ms, -1);
    CHECK(c.retention_bytes == INT64_MAX);
    CHECK_EQ_INT(c.flush_ms, 0);

    /* Alter is all or nothing: one bad pair leaves everything unchanged. */
    const char *ka[] = {"retention.ms", "segment.byte"}, *va[] = {"1000", "8192"};
    CHECK_EQ_INT(store_topic_alter(s, "t", ka, va, 2, &err), SL_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.msg, "segment.bytes") != NULL, "alter suggestion: %s", err.msg);
    const char *kb[] = {"retention.ms", "segment.bytes"}, *vb[] = {"1000", "12x"};
    CHECK_EQ_INT(store_topic_alter(s, "t", kb, vb, 2, &err), SL_ERR_INVALID_CONFIG);
    const char *kc[] = {"segment.bytes"}, *vc[] = {"8192000"}; /* fine alone ... */
    const char *kd[] = {"segment.bytes", "max.message.bytes"}, *vd[] = {"8192", "10"};
    CHECK_EQ_INT(store_topic_alter(s, "t", kd, vd, 2, &err), SL_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(store_topic_info(s, "t", NULL, &c, NULL, &err), SL_OK);
    CHECK_EQ_INT(c.retention_ms, -1);
    CHECK_EQ_INT(c.segment_bytes, 4096);
    CHECK_EQ_INT(c.max_message_bytes, 4096);
    CHECK_EQ_INT(store_topic_alter(s, "t", kc, vc, 1, &err), SL_OK);
    CHECK_EQ_INT(store_topic_info(s, "t", NULL, &c, NULL, &err), SL_OK);
    CHECK_EQ_INT(c.segment_bytes, 8192000);
    CHECK_EQ_INT(store_topic_alter(s, "nope", kc, vc, 1, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);

    /* Store defaults are validated too. */
    sl_log_conf_t d;
    sl_log_conf_defaults(&d);
    d.segment_bytes = 100; /* below its minimum */
    store_opts_t o = {.dir = dir, .defaults = &d};
    store_t *s2 = NULL;
    store_close(s); /* the lock: the bad open must fail on the config, not on it */
    CHECK_EQ_INT(store_open(&o, &s2, &err), SL_ERR_INVALID_CONFIG);
    CHECK(s2 == NULL);
    check_rmtree(dir);
    free(dir);
}

/* ---- create, list, describe, alter, delete --------------------------------- */

static void test_topic_lifecycle(void)
{
    char *dir = check_tmpdir("store-life");
    store_t *s = open_store(dir);
    sl_err_t err;

    char **names;
    size_t n;
    CHECK_EQ_INT(store_topic_list(s, &names, &n, &err), SL_OK);
    CHECK_EQ_INT(n, 0);
    store_names_free(names, n);

    const char *k[] = {"retention.ms", "segment.bytes"}, *v[] = {"3600000", "2097152"};
    CHECK_EQ_INT(store_topic_create(s, "orders", 3, k, v, 2, &err), SL_OK);
    create_topic(s, "b", 1);
    create_topic(s, "a.b", 2);
    create_topic(s, "Z", 1);

    /* Duplicates, and names that differ only by '.' vs '_'. */
    CHECK_EQ_INT(store_topic_create(s, "orders", 3, NULL, NULL, 0, &err),
                 SL_ERR_TOPIC_ALREADY_EXISTS);
    CHECK_MSG(strstr(err.msg, "orders") != NULL, "msg: %s", err.msg);
    CHECK_EQ_INT(store_topic_create(s, "a_b", 1, NULL, NULL, 0, &err), SL_ERR_TOPIC_ALREADY_EXISTS);
    CHECK_MSG(strstr(err.msg, "a.b") != NULL, "collision message: %s", err.msg);
    CHECK(!listed(s, "a_b"));
    CHECK_EQ_INT(store_topic_create(s, "a.b", 5, NULL, NULL, 0, &err), SL_ERR_TOPIC_ALREADY_EXISTS);
    /* Not collisions: a prefix, and a different character. */
    create_topic(s, "a", 1);
    create_topic(s, "a-b", 1);

    CHECK_EQ_INT(store_topic_list(s, &names, &n, &err), SL_OK);
    const char *want[] = {"Z", "a", "a-b", "a.b", "b", "orders"};
    CHECK_EQ_INT(n, 6);
    for (size_t i = 0; i < n && i < 6; i++)
        CHECK_MSG(strcmp(names[i], want[i]) == 0, "list[%zu] = %s, want %s", i, names[i], want[i]);
    store_names_free(names, n);

    /* Describe: partition count, effective config, override text. */
    int32_t parts = 0;
    sl_log_conf_t c, def;
    sl_log_conf_defaults(&def);
    char *ov = NULL;
    CHECK_EQ_INT(store_topic_info(s, "orders", &parts, &c, &ov, &err), SL_OK);
    CHECK_EQ_INT(parts, 3);
    CHECK_EQ_INT(c.retention_ms, 3600000);
    CHECK_EQ_INT(c.segment_bytes, 2097152);
    CHECK_EQ_INT(c.retention_bytes, def.retention_bytes);
    CHECK_EQ_INT(c.max_message_bytes, def.max_message_bytes);
    CHECK_EQ_INT(c.index_interval_bytes, def.index_interval_bytes);
    CHECK_MSG(ov && strstr(ov, "retention.ms=3600000\n") && strstr(ov, "segment.bytes=2097152\n"),
              "overrides: %s", ov ? ov : "(null)");
    free(ov);
    ov = NULL;
    CHECK_EQ_INT(store_topic_info(s, "b", &parts, &c, &ov, &err), SL_OK);
    CHECK_MSG(ov && ov[0] == 0, "no overrides expected: %s", ov ? ov : "(null)");
    free(ov);
    CHECK(memcmp(&c, &def, sizeof c) == 0);
    CHECK_EQ_INT(store_topic_info(s, "nope", &parts, &c, NULL, &err),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(store_topic_info(s, "a_b", &parts, &c, NULL, &err),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);

    /* Alter replaces an override (no duplicate line) and adds new ones. */
    const char *ka[] = {"retention.ms", "retention.bytes"}, *va[] = {"7200000", "1000000"};
    CHECK_EQ_INT(store_topic_alter(s, "orders", ka, va, 2, &err), SL_OK);
    ov = NULL;
    CHECK_EQ_INT(store_topic_info(s, "orders", &parts, &c, &ov, &err), SL_OK);
    CHECK_EQ_INT(c.retention_ms, 7200000);
    CHECK_EQ_INT(c.retention_bytes, 1000000);
    CHECK_EQ_INT(c.segment_bytes, 2097152);
    CHECK_MSG(ov && !strstr(ov, "3600000") && strstr(ov, "retention.ms=7200000\n") &&
                  strstr(ov, "retention.bytes=1000000\n"),
              "overrides after alter: %s", ov ? ov : "(null)");
    free(ov);

    /* Alter reaches a partition that is already open. */
    partition_t *p = get_part(s, "orders", 1);
    CHECK(append(p, 1, 500, 1000, 1, NULL) == 0);
    const char *km[] = {"max.message.bytes"}, *vm[] = {"200"};
    CHECK_EQ_INT(store_topic_alter(s, "orders", km, vm, 1, &err), SL_OK);
    size_t len;
    uint8_t *b = bg_simple(1, 500, 1000, 2, &len);
    CHECK_EQ_INT(partition_append(p, b, len, 1000, NULL, &err), SL_ERR_MESSAGE_TOO_LARGE);
    free(b);
    partition_unref(p);

    /* Delete: gone from list, describe, lookups; the directory is gone. */
    char path[4096];
    snprintf(path, sizeof path, "%s/topics/orders", dir);
    CHECK(path_exists(path));
    CHECK_EQ_INT(store_topic_delete(s, "orders", &err), SL_OK);
    CHECK(!listed(s, "orders"));
    CHECK(!path_exists(path));
    CHECK_EQ_INT(store_topic_info(s, "orders", &parts, NULL, NULL, &err),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(store_partition(s, "orders", 0, &p, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(store_topic_delete(s, "orders", &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_MSG(strstr(err.msg, "orders") != NULL, "msg: %s", err.msg);
    CHECK_EQ_INT(store_topic_alter(s, "orders", ka, va, 1, &err),
                 SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* Deleting "a.b" frees the name "a_b". */
    CHECK_EQ_INT(store_topic_delete(s, "a.b", &err), SL_OK);
    create_topic(s, "a_b", 1);

    /* Re-create under the old name: fresh, empty, default config. */
    create_topic(s, "orders", 2);
    CHECK_EQ_INT(store_topic_info(s, "orders", &parts, &c, NULL, &err), SL_OK);
    CHECK_EQ_INT(parts, 2);
    CHECK(memcmp(&c, &def, sizeof c) == 0);
    p = get_part(s, "orders", 1);
    CHECK_EQ_INT(partition_log_end(p), 0);
    CHECK_EQ_INT(partition_log_start(p), 0);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- persistence across reopen ---------------------------------------------- */

static void test_metadata_survives_reopen(void)
{
    char *dir = check_tmpdir("store-persist");
    store_t *s = open_store(dir);
    sl_err_t err;
    const char *k[] = {"retention.ms", "segment.bytes", "max.message.bytes"};
    const char *v[] = {"60000", "65536", "65536"};
    CHECK_EQ_INT(store_topic_create(s, "events", 4, k, v, 3, &err), SL_OK);
    create_topic(s, "plain", 1);
    const char *ka[] = {"retention.bytes"}, *va[] = {"123456789"};
    CHECK_EQ_INT(store_topic_alter(s, "plain", ka, va, 1, &err), SL_OK);

    /* topic.conf is replaced atomically: no temp file left behind. */
    char path[4096];
    snprintf(path, sizeof path, "%s/topics/events/topic.conf", dir);
    CHECK(path_exists(path));
    char *text = read_text(path);
    CHECK_MSG(text && strstr(text, "partitions=4\n") && strstr(text, "retention.ms=60000\n"),
              "topic.conf: %s", text ? text : "(missing)");
    free(text);
    snprintf(path, sizeof path, "%s/topics/events/topic.conf.tmp", dir);
    CHECK(!path_exists(path));
    snprintf(path, sizeof path, "%s/topics/plain/topic.conf.tmp", dir);
    CHECK(!path_exists(path));
    snprintf(path, sizeof path, "%s/topics/plain/topic.conf", dir);
    text = read_text(path);
    CHECK_MSG(text && strstr(text, "retention.bytes=123456789\n"), "topic.conf: %s",
              text ? text : "(missing)");
    free(text);

    /* Data in two partitions, several batches each. */
    uint8_t *want[2][5];
    size_t wlen[2][5];
    for (int id = 0; id < 2; id++) {
        partition_t *p = get_part(s, "events", id * 3);
        for (int i = 0; i < 5; i++) {
            uint32_t seed = (uint32_t)(id * 100 + i);
            int64_t base = append(p, 3, 200, 5000 + i, seed, NULL);
            CHECK_EQ_INT(base, i * 3);
            want[id][i] = expected_batch(3, 200, 5000 + i, seed, i * 3, &wlen[id][i]);
        }
        partition_unref(p);
    }
    store_close(s);

    /* Reopen with different store defaults: overrides stay, the rest follows
     * the new defaults. */
    sl_log_conf_t d;
    sl_log_conf_defaults(&d);
    d.retention_bytes = 5555555;
    d.index_interval_bytes = 100;
    s = open_store_opts(dir, 0, &d);
    CHECK_EQ_INT(store_open_partitions(s), 0); /* lazy */
    int32_t parts = 0;
    sl_log_conf_t c;
    char *ov = NULL;
    CHECK_EQ_INT(store_topic_info(s, "events", &parts, &c, &ov, &err), SL_OK);
    CHECK_EQ_INT(parts, 4);
    CHECK_EQ_INT(c.retention_ms, 60000);
    CHECK_EQ_INT(c.segment_bytes, 65536);
    CHECK_EQ_INT(c.max_message_bytes, 65536);
    CHECK_EQ_INT(c.retention_bytes, 5555555);
    CHECK_EQ_INT(c.index_interval_bytes, 100);
    CHECK_MSG(ov && strstr(ov, "retention.ms=60000\n") && strstr(ov, "segment.bytes=65536\n") &&
                  strstr(ov, "max.message.bytes=65536\n"),
              "overrides: %s", ov ? ov : "(null)");
    free(ov);
    CHECK_EQ_INT(store_topic_info(s, "plain", &parts, &c, NULL, &err), SL_OK);
    CHECK_EQ_INT(parts, 1);
    CHECK_EQ_INT(c.retention_bytes, 123456789);
    CHECK_EQ_INT(c.index_interval_bytes, 100);

    for (int id = 0; id < 2; id++) {
        partition_t *p = get_part(s, "events", id * 3);
        CHECK_EQ_INT(partition_log_end(p), 15);
        CHECK_EQ_INT(partition_durable(p), 15);
        for (int i = 0; i < 5; i++) {
            CHECK_MSG(reads_back(p, i * 3 + 1, want[id][i], wlen[id][i]),
                      "partition %d batch %d differs after reopen", id * 3, i);
            free(want[id][i]);
        }
        /* Appends continue the offsets. */
        CHECK_EQ_INT(append(p, 1, 10, 6000, 9, NULL), 15);
        partition_unref(p);
    }
    partition_t *p = get_part(s, "events", 1); /* never written */
    CHECK_EQ_INT(partition_log_end(p), 0);
    partition_unref(p);
    CHECK_EQ_INT(store_open_partitions(s), 3);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* A valid name may start with '.' (Kafka allows ".a"), so it must survive a
 * reopen like any other. */
static void test_dot_topic_survives_reopen(void)
{
    char *dir = check_tmpdir("store-dot");
    store_t *s = open_store(dir);
    sl_err_t err;
    CHECK_EQ_INT(store_validate_topic_name(".hidden", &err), SL_OK);
    create_topic(s, ".hidden", 2);
    create_topic(s, "..x", 1);
    partition_t *p = get_part(s, ".hidden", 0);
    append(p, 2, 50, 1, 1, NULL);
    partition_unref(p);
    store_close(s);
    s = open_store(dir);
    /* BUG (storage/store.c, store_open): the topic discovery loop skips every
     * directory entry whose name starts with '.', so topics ".hidden" and
     * "..x" — accepted by store_validate_topic_name and created on disk — vanish
     * from the store after a reopen (their data stays on disk, unreachable,
     * and the name can be created again over it). */
    CHECK_MSG(listed(s, ".hidden"), "topic \".hidden\" lost after reopen");
    CHECK_MSG(listed(s, "..x"), "topic \"..x\" lost after reopen");
    int32_t parts = 0;
    CHECK_EQ_INT(store_topic_info(s, ".hidden", &parts, NULL, NULL, &err), SL_OK);
    CHECK_EQ_INT(parts, 2);
    if (store_partition(s, ".hidden", 0, &p, &err) == SL_OK) {
        CHECK_EQ_INT(partition_log_end(p), 2);
        partition_unref(p);
    }
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- the lock ----------------------------------------------------------------- */

static void test_lock(void)
{
    char *dir = check_tmpdir("store-lock");
    store_t *s = open_store(dir);
    sl_err_t err;

    /* In this process: a second open() is a second open file description,
     * and flock locks conflict between descriptions, so this is refused. */
    store_opts_t o = {.dir = dir};
    store_t *s2 = NULL;
    err.msg[0] = 0;
    CHECK_EQ_INT(store_open(&o, &s2, &err), SL_ERR_LOCKED);
    CHECK(s2 == NULL);
    CHECK_MSG(strstr(err.msg, dir) != NULL, "lock message: %s", err.msg);
    /* The refused open must not have disturbed the holder: its lock holds. */
    CHECK_EQ_INT(store_open(&o, &s2, &err), SL_ERR_LOCKED);

    /* From another process, as in production. The child inherits the
     * parent's lock description, but store_open opens its own. */
    fflush(NULL);
    pid_t pid = fork();
    CHECK_FATAL(pid >= 0);
    if (pid == 0) {
        store_t *c = NULL;
        sl_err_t e2;
        int rc = store_open(&o, &c, &e2);
        _exit(rc == SL_ERR_LOCKED ? 0 : rc == SL_OK ? 1 : 2);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child open while locked: status %d (1 = opened, 2 = other error)", status);

    /* The store still works after the refusals. */
    create_topic(s, "t", 1);
    store_close(s);

    /* Released at close: another process can open it now. */
    pid = fork();
    CHECK_FATAL(pid >= 0);
    if (pid == 0) {
        store_t *c = NULL;
        sl_err_t e2;
        int rc = store_open(&o, &c, &e2);
        _exit(rc == SL_OK ? 0 : 1); /* no close: exiting releases the lock */
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child open after close: %d", status);
    /* And released by store_crash too. */
    s = open_store(dir);
    CHECK(listed(s, "t"));
    store_crash(s);
    s = open_store(dir);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- the clean-shutdown marker ------------------------------------------------ */

static void test_clean_marker(void)
{
    char *dir = check_tmpdir("store-clean");
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/.clean_shutdown", dir);
    store_t *s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 0); /* a new directory: no previous run */
    create_topic(s, "t", 1);
    partition_t *p = get_part(s, "t", 0);
    size_t l0, l1;
    uint8_t *w0 = expected_batch(4, 100, 10, 1, 0, &l0);
    uint8_t *w1 = expected_batch(2, 100, 11, 2, 4, &l1);
    append(p, 4, 100, 10, 1, NULL);
    partition_unref(p);
    CHECK(!path_exists(marker));
    store_close(s);
    CHECK(path_exists(marker));

    s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 1);
    CHECK(!path_exists(marker)); /* removed at open */
    p = get_part(s, "t", 0);
    CHECK(reads_back(p, 0, w0, l0));
    append(p, 2, 100, 11, 2, NULL); /* page cache only: survives a process crash */
    partition_unref(p);
    store_crash(s);
    CHECK(!path_exists(marker));

    s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 0);
    p = get_part(s, "t", 0); /* recovers */
    CHECK_EQ_INT(partition_log_end(p), 6);
    CHECK(reads_back(p, 0, w0, l0));
    CHECK(reads_back(p, 5, w1, l1));
    partition_unref(p);
    store_close(s);

    s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 1);
    store_close(s);
    s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 1); /* a run that opened nothing stays clean */
    store_crash(s);
    s = open_store(dir);
    CHECK_EQ_INT(store_was_clean(s), 0);
    store_close(s);
    free(w0);
    free(w1);
    check_rmtree(dir);
    free(dir);
}

/* A clean close after a run that created a topic and used only some of its
 * partitions. The unused ones have nothing on disk, yet: */
static void test_clean_marker_unused_new_partitions(void)
{
    char *dir = check_tmpdir("store-clean2");
    store_t *s = open_store(dir);
    create_topic(s, "t", 3);
    partition_t *p = get_part(s, "t", 0);
    append(p, 1, 10, 1, 1, NULL);
    partition_unref(p);
    store_close(s);
    s = open_store(dir);
    /* BUG (storage/store.c, free_topics): a partition never opened in this
     * run counts as "not known good" whenever the run itself started without
     * the marker — including partitions of topics created in this very run,
     * which have no files at all. So a fresh directory, or any run after a
     * crash, never writes the marker on store_close unless every partition
     * of every topic was opened; the next run reports an unclean shutdown
     * (and recovers every partition it opens) after a clean one, and so on
     * forever on a broker with idle partitions. */
    CHECK_MSG(store_was_clean(s) == 1, "clean close not recognised (topic created this run)");
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- delete under a reader ---------------------------------------------------- */

static void test_delete_with_reader(void)
{
    char *dir = check_tmpdir("store-delread");
    store_t *s = open_store(dir);
    sl_err_t err;
    create_topic(s, "doomed", 2);
    create_topic(s, "other", 1);
    partition_t *p = get_part(s, "doomed", 1);
    size_t wl;
    uint8_t *want = expected_batch(5, 300, 77, 7, 0, &wl);
    append(p, 5, 300, 77, 7, NULL);
    append(p, 1, 30, 78, 8, NULL);
    seg_range_t r;
    CHECK_EQ_INT(partition_read(p, 2, (uint64_t)wl, &r, &err), SL_OK);
    CHECK_EQ_INT(r.len, wl);
    CHECK_EQ_INT(r.first_offset, 0);
    partition_unref(p); /* the range alone keeps the segment */

    CHECK_EQ_INT(store_topic_delete(s, "doomed", &err), SL_OK);
    CHECK(!listed(s, "doomed"));
    CHECK(listed(s, "other"));
    char path[4096];
    snprintf(path, sizeof path, "%s/topics/doomed", dir);
    CHECK(!path_exists(path));
    snprintf(path, sizeof path, "%s/deleted", dir);
    CHECK_MSG(count_entries(path) <= 0, "deleted/ still holds %d entries", count_entries(path));

    uint8_t *got = malloc(wl);
    CHECK_FATAL(got != NULL);
    CHECK_EQ_INT(pread(r.fd, got, wl, (off_t)r.pos), (ssize_t)wl);
    CHECK_MSG(memcmp(got, want, wl) == 0, "bytes changed under the reader");
    free(got);
    seg_range_release(&r);
    free(want);

    /* A reader holding the partition itself (not just a range) across the
     * delete can still read it and drop it without harm. */
    create_topic(s, "doomed2", 1);
    p = get_part(s, "doomed2", 0);
    want = expected_batch(2, 40, 5, 3, 0, &wl);
    append(p, 2, 40, 5, 3, NULL);
    CHECK_EQ_INT(store_topic_delete(s, "doomed2", &err), SL_OK);
    CHECK(!listed(s, "doomed2"));
    /* New reads of a deleted partition are refused (its files may be gone
     * from their paths); only pinned ranges stay readable, as above. */
    {
        uint8_t *b2;
        size_t l2;
        CHECK_EQ_INT(partition_read_copy(p, 0, 1 << 16, &b2, &l2, &err),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    }
    partition_unref(p);
    free(want);
    CHECK_EQ_INT(store_open_partitions(s), 0);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* A partition of a deleted topic that someone still holds must not touch
 * the files of a new topic created under the same name. The fd cache (one
 * slot here) closes idle segment files; the held partition reopens them by
 * path. */
static void test_delete_recreate_while_held(void)
{
    char *dir = check_tmpdir("store-delrecreate");
    store_t *s = open_store_opts(dir, 1, NULL);
    sl_err_t err;
    create_topic(s, "t", 1);
    create_topic(s, "evict", 1);
    partition_t *old = get_part(s, "t", 0);
    partition_t *ev = get_part(s, "evict", 0);
    size_t la;
    uint8_t *wa = expected_batch(3, 100, 1, 1, 0, &la);
    append(old, 3, 100, 1, 1, NULL);
    append(ev, 1, 10, 1, 2, NULL); /* evicts old's segment fd */

    CHECK_EQ_INT(store_topic_delete(s, "t", &err), SL_OK);
    /* The holder cannot read through the partition any more (only ranges it
     * pinned before stay readable): its files are no longer at their paths. */
    {
        uint8_t *b2;
        size_t l2;
        CHECK_EQ_INT(partition_read_copy(old, 0, 1 << 16, &b2, &l2, &err),
                     SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    }

    create_topic(s, "t", 1);
    partition_t *nw = get_part(s, "t", 0);
    size_t lb;
    uint8_t *wb = expected_batch(1, 500, 2, 3, 0, &lb);
    append(nw, 1, 500, 2, 3, NULL);
    append(ev, 1, 10, 1, 4, NULL); /* evicts both */

    /* The old holder appends (a producer that looked the partition up before
     * the delete). Whatever it gets, the new topic's data must not change. */
    size_t lc;
    uint8_t *bc = bg_simple(1, 20, 3, 5, &lc);
    CHECK_EQ_INT(partition_append(old, bc, lc, 3, NULL, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    free(bc);
    append(ev, 1, 10, 1, 6, NULL);
    /* BUG (storage/segment.c seg_pin + storage/store.c store_topic_delete):
     * segments reopen their files by path (seg->path under topics/<name>/),
     * and the delete renamed that directory away, so a held partition of a
     * deleted topic either fails to read (ENOENT, above) or — once a topic
     * of the same name exists again — opens and writes the NEW topic's
     * files: the old partition's append lands at its own stale end position
     * inside the new topic's 00000000000000000000.log. */
    CHECK_MSG(reads_back(nw, 0, wb, lb), "new topic's log overwritten by a deleted partition");
    CHECK_EQ_INT(partition_log_end(nw), 1);
    partition_unref(old);
    partition_unref(nw);
    partition_unref(ev);
    store_close(s);

    /* And after a reopen the new topic still holds exactly its batch. */
    s = open_store(dir);
    nw = get_part(s, "t", 0);
    CHECK_EQ_INT(partition_log_end(nw), 1);
    CHECK(reads_back(nw, 0, wb, lb));
    partition_unref(nw);
    store_close(s);
    free(wa);
    free(wb);
    check_rmtree(dir);
    free(dir);
}

/* Deleting a topic discards its data: syncing it first is wasted I/O (the
 * delete blocks on an fdatasync of everything unflushed). */
static atomic_int sync_counting, syncs_seen;

static int counting_fdatasync(int fd)
{
    if (atomic_load(&sync_counting)) atomic_fetch_add(&syncs_seen, 1);
    return sl_io_real()->fdatasync(fd);
}

static void test_delete_does_not_sync(void)
{
    static sl_io_ops_t ops;
    ops = *sl_io_real();
    ops.fdatasync = counting_fdatasync;
    sl_io_set(&ops); /* before the store (and its flusher thread) exists */
    char *dir = check_tmpdir("store-delsync");
    store_t *s = open_store(dir);
    sl_err_t err;
    create_topic(s, "t", 2);
    for (int32_t id = 0; id < 2; id++) {
        partition_t *p = get_part(s, "t", id);
        for (int i = 0; i < 20; i++) append(p, 10, 1000, 1, (uint32_t)i, NULL);
        CHECK(partition_durable(p) < partition_log_end(p)); /* unflushed */
        partition_unref(p);
    }
    atomic_store(&syncs_seen, 0);
    atomic_store(&sync_counting, 1);
    CHECK_EQ_INT(store_topic_delete(s, "t", &err), SL_OK);
    atomic_store(&sync_counting, 0);
    /* Regression: the last partition_unref of a deleted partition runs the
     * store's on_close hook, flusher_forget(), which calls partition_flush();
     * at 2d69f7e that synced every dirty segment of the deleted topic (2
     * fdatasync calls here) before partition_close(p, discard=1) skipped
     * I/O. partition_flush now returns at once for a deleted partition
     * (b83f616). */
    CHECK_MSG(atomic_load(&syncs_seen) == 0, "%d fdatasync calls while deleting a topic",
              atomic_load(&syncs_seen));
    CHECK(!listed(s, "t"));
    store_close(s);
    sl_io_set(NULL);
    check_rmtree(dir);
    free(dir);
}

/* ---- leftovers of interrupted work --------------------------------------------- */

static void test_leftovers_at_open(void)
{
    char *dir = check_tmpdir("store-leftover");
    store_t *s = open_store(dir);
    create_topic(s, "keep", 1);
    store_close(s);

    /* A deletion that a crash interrupted after the rename. */
    char path[4096];
    snprintf(path, sizeof path, "%s/deleted", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/deleted/gone-1", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/deleted/gone-1/0", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/deleted/gone-1/0/00000000000000000000.log", dir);
    write_file(path, "junk");
    snprintf(path, sizeof path, "%s/deleted/gone-1/topic.conf", dir);
    write_file(path, "partitions=1\n");
    /* A create that a crash interrupted before topic.conf existed. */
    snprintf(path, sizeof path, "%s/topics/ghost", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/topics/ghost/topic.conf.tmp", dir);
    write_file(path, "partitions=3\n");
    snprintf(path, sizeof path, "%s/topics/ghost2", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0);
    /* Not a topic at all. */
    snprintf(path, sizeof path, "%s/topics/bad name", dir);
    CHECK_FATAL(mkdir(path, 0755) == 0);

    s = open_store(dir);
    snprintf(path, sizeof path, "%s/deleted/gone-1", dir);
    CHECK_MSG(!path_exists(path), "interrupted deletion not finished at open");
    CHECK(!listed(s, "gone-1") && !listed(s, "gone"));
    CHECK(!listed(s, "ghost"));
    CHECK(!listed(s, "ghost2"));
    CHECK(!listed(s, "bad name"));
    CHECK(listed(s, "keep"));
    sl_err_t err;
    partition_t *p = NULL;
    CHECK_EQ_INT(store_partition(s, "ghost", 0, &p, &err), SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* The name is free: creating it works and gives an empty topic. */
    create_topic(s, "ghost", 1);
    int32_t parts = 0;
    CHECK_EQ_INT(store_topic_info(s, "ghost", &parts, NULL, NULL, &err), SL_OK);
    CHECK_EQ_INT(parts, 1);
    p = get_part(s, "ghost", 0);
    CHECK_EQ_INT(partition_log_end(p), 0);
    partition_unref(p);
    store_close(s);
    s = open_store(dir);
    CHECK(listed(s, "ghost"));
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- lazy opening ---------------------------------------------------------------- */

static void test_lazy_open(void)
{
    char *dir = check_tmpdir("store-lazy");
    store_t *s = open_store(dir);
    create_topic(s, "t", 50);
    for (int32_t i = 0; i < 50; i += 7) {
        partition_t *p = get_part(s, "t", i);
        append(p, 1, 10, 1, (uint32_t)i, NULL);
        partition_unref(p);
    }
    CHECK_EQ_INT(store_open_partitions(s), 8);
    store_close(s);
    s = open_store(dir);
    CHECK_EQ_INT(store_open_partitions(s), 0);
    CHECK_EQ_INT(store_open_segment_files(s), 0);
    partition_t *p = get_part(s, "t", 14);
    CHECK_EQ_INT(store_open_partitions(s), 1);
    CHECK_EQ_INT(partition_log_end(p), 1);
    partition_t *q = get_part(s, "t", 14); /* the same object, another reference */
    CHECK(p == q);
    CHECK_EQ_INT(store_open_partitions(s), 1);
    partition_unref(q);
    partition_unref(p);
    /* Dropping the last caller reference does not close it: the store keeps it. */
    CHECK_EQ_INT(store_open_partitions(s), 1);
    p = get_part(s, "t", 14);
    CHECK_EQ_INT(partition_log_end(p), 1);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- acks=all: the flusher --------------------------------------------------------- */

typedef struct async_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, code;
    int64_t durable;
    pthread_t thread;
} async_rec_t;

static void async_done(void *arg, int code, int64_t durable)
{
    async_rec_t *a = arg;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->code = code;
    a->durable = durable;
    a->thread = pthread_self();
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Waits up to 10 s for the callback; returns the number of calls seen. */
static int async_wait(async_rec_t *a)
{
    struct timespec ts = sl_abstime(CLOCK_REALTIME, 10000);
    pthread_mutex_lock(&a->mu);
    while (a->calls == 0)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) == ETIMEDOUT) break;
    int n = a->calls;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static void test_acks_all(void)
{
    char *dir = check_tmpdir("store-acks");
    store_t *s = open_store(dir);
    sl_err_t err;
    create_topic(s, "t", 2);
    partition_t *p = get_part(s, "t", 0);
    flusher_t *f = store_flusher(s);
    CHECK_FATAL(f != NULL);

    partition_append_info_t info;
    append(p, 10, 50, 1, 1, &info);
    CHECK_EQ_INT(info.last_offset, 9);
    CHECK_EQ_INT(partition_durable(p), 0); /* default policy: nothing synced yet */
    CHECK_EQ_INT(flusher_wait_sync(f, p, info.last_offset, &err), SL_OK);
    CHECK_MSG(partition_durable(p) > info.last_offset, "durable %" PRId64, partition_durable(p));
    /* Already durable: returns at once. */
    CHECK_EQ_INT(flusher_wait_sync(f, p, 5, &err), SL_OK);

    /* Async: the callback reports the durable offset, from the flusher. */
    append(p, 3, 50, 2, 2, &info);
    async_rec_t a = {.calls = 0};
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    CHECK_EQ_INT(flusher_wait(f, p, info.last_offset, async_done, &a), SL_OK);
    CHECK_EQ_INT(async_wait(&a), 1);
    CHECK_EQ_INT(a.code, SL_OK);
    CHECK_MSG(a.durable > info.last_offset, "callback durable %" PRId64 " for offset %" PRId64,
              a.durable, info.last_offset);
    CHECK(partition_durable(p) >= a.durable);
    /* Already durable: the callback runs before flusher_wait returns, here. */
    a.calls = 0;
    CHECK_EQ_INT(flusher_wait(f, p, info.last_offset, async_done, &a), SL_OK);
    CHECK_EQ_INT(a.calls, 1);
    CHECK(pthread_equal(a.thread, pthread_self()));
    CHECK_EQ_INT(a.durable, info.last_offset + 1);

    /* Two partitions: a wait on one does not need the other flushed, and a
     * wait on each completes. */
    partition_t *q = get_part(s, "t", 1);
    partition_append_info_t iq;
    append(q, 1, 50, 3, 3, &iq);
    append(p, 1, 50, 3, 4, &info);
    CHECK_EQ_INT(flusher_wait_sync(f, q, iq.last_offset, &err), SL_OK);
    CHECK(partition_durable(q) > iq.last_offset);
    CHECK_EQ_INT(flusher_wait_sync(f, p, info.last_offset, &err), SL_OK);
    CHECK(partition_durable(p) > info.last_offset);
    partition_unref(q);

    /* A wait pending at close is completed, not dropped. */
    append(p, 1, 50, 4, 5, &info);
    a.calls = 0;
    CHECK_EQ_INT(flusher_wait(f, p, info.last_offset, async_done, &a), SL_OK);
    partition_unref(p);
    store_close(s);
    CHECK_EQ_INT(a.calls, 1);
    CHECK_EQ_INT(a.code, SL_OK);
    CHECK(a.durable > info.last_offset);
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    check_rmtree(dir);
    free(dir);
}

/* Waits up to 5 s for p's durable offset to reach `want`. */
static int durable_within(partition_t *p, int64_t want)
{
    for (int i = 0; i < 500 && partition_durable(p) < want; i++) usleep(10 * 1000);
    return partition_durable(p) >= want;
}

/* The policy side of the flusher: flush.messages and flush.ms, no waits. */
static void test_flush_policy(void)
{
    char *dir = check_tmpdir("store-policy");
    store_t *s = open_store(dir);
    sl_err_t err;
    const char *k1[] = {"flush.messages"}, *v1[] = {"5"};
    CHECK_EQ_INT(store_topic_create(s, "bymsgs", 1, k1, v1, 1, &err), SL_OK);
    const char *k2[] = {"flush.ms"}, *v2[] = {"50"};
    CHECK_EQ_INT(store_topic_create(s, "byms", 1, k2, v2, 1, &err), SL_OK);
    create_topic(s, "never", 1);

    partition_t *p = get_part(s, "bymsgs", 0);
    partition_append_info_t info;
    size_t len;
    uint8_t *b = bg_simple(3, 10, sl_wall_ms(), 1, &len);
    CHECK_EQ_INT(partition_append(p, b, len, sl_wall_ms(), &info, &err), SL_OK);
    free(b);
    CHECK_EQ_INT(info.flush_due, 0);
    usleep(100 * 1000);
    CHECK_EQ_INT(partition_durable(p), 0); /* 3 < flush.messages */
    b = bg_simple(2, 10, sl_wall_ms(), 2, &len);
    CHECK_EQ_INT(partition_append(p, b, len, sl_wall_ms(), &info, &err), SL_OK);
    free(b);
    CHECK_EQ_INT(info.flush_due, 1);
    CHECK_MSG(durable_within(p, 5), "flush.messages=5: durable %" PRId64 " after 5 s",
              partition_durable(p));
    partition_unref(p);

    p = get_part(s, "byms", 0);
    b = bg_simple(1, 10, sl_wall_ms(), 3, &len);
    CHECK_EQ_INT(partition_append(p, b, len, sl_wall_ms(), &info, &err), SL_OK);
    free(b);
    CHECK_MSG(durable_within(p, 1), "flush.ms=50: durable %" PRId64 " after 5 s",
              partition_durable(p));
    partition_unref(p);

    p = get_part(s, "never", 0);
    b = bg_simple(1, 10, sl_wall_ms(), 4, &len);
    CHECK_EQ_INT(partition_append(p, b, len, sl_wall_ms(), &info, &err), SL_OK);
    free(b);
    usleep(100 * 1000);
    CHECK_EQ_INT(partition_durable(p), 0); /* defaults: left to acks=all and the OS */
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

#define GC_THREADS 4
#define GC_BATCHES 200

typedef struct gc_arg {
    store_t *s;
    partition_t *p;
    int bad_rc, bad_durable, bad_append;
    int64_t last_seen;
} gc_arg_t;

static void *gc_thread(void *arg)
{
    gc_arg_t *g = arg;
    flusher_t *f = store_flusher(g->s);
    for (int i = 0; i < GC_BATCHES; i++) {
        size_t len;
        uint8_t *b = bg_simple(1, 20, 1, (uint32_t)i, &len);
        partition_append_info_t info;
        sl_err_t err;
        if (!b || partition_append(g->p, b, len, 1, &info, &err) != SL_OK) {
            g->bad_append++;
            free(b);
            continue;
        }
        free(b);
        if (flusher_wait_sync(f, g->p, info.last_offset, &err) != SL_OK)
            g->bad_rc++;
        else if (partition_durable(g->p) <= info.last_offset)
            g->bad_durable++;
        g->last_seen = info.last_offset;
    }
    return NULL;
}

static void test_group_commit(void)
{
    char *dir = check_tmpdir("store-gc");
    store_t *s = open_store(dir);
    create_topic(s, "t", 1);
    partition_t *p = get_part(s, "t", 0);
    flusher_stats_t before, after;
    flusher_get_stats(store_flusher(s), &before);
    pthread_t th[GC_THREADS];
    gc_arg_t args[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        args[i] = (gc_arg_t){.s = s, .p = p};
        CHECK_FATAL(pthread_create(&th[i], NULL, gc_thread, &args[i]) == 0);
    }
    for (int i = 0; i < GC_THREADS; i++) pthread_join(th[i], NULL);
    flusher_get_stats(store_flusher(s), &after);
    int total = GC_THREADS * GC_BATCHES;
    for (int i = 0; i < GC_THREADS; i++) {
        CHECK_EQ_INT(args[i].bad_append, 0);
        CHECK_EQ_INT(args[i].bad_rc, 0);
        CHECK_EQ_INT(args[i].bad_durable, 0);
    }
    CHECK_EQ_INT(partition_log_end(p), total);
    CHECK_EQ_INT(partition_durable(p), total);
    uint64_t flushes = after.flushes - before.flushes;
    uint64_t waits = after.waits_done - before.waits_done;
    printf("group commit: %d waits, %" PRIu64 " queued, %" PRIu64 " flushes (%.1f waits/flush)\n",
           total, waits, flushes, flushes ? (double)total / (double)flushes : 0.0);
    CHECK(flushes >= 1);
    CHECK_MSG(flushes < (uint64_t)total, "%" PRIu64 " flushes for %d waits: no grouping", flushes,
              total);
    CHECK(waits <= (uint64_t)total);
    partition_unref(p);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

/* ---- housekeeping basics: the store visits open partitions ----------------------- */

static void test_data_round_trip_many_partitions(void)
{
    char *dir = check_tmpdir("store-rt");
    store_t *s = open_store_opts(dir, 4, NULL); /* fewer fds than partitions */
    create_topic(s, "t", 12);
    uint8_t *want[12];
    size_t wl[12];
    for (int round = 0; round < 3; round++)
        for (int32_t i = 0; i < 12; i++) {
            partition_t *p = get_part(s, "t", i);
            uint32_t seed = (uint32_t)(round * 12 + i);
            int64_t base = append(p, 2, 64, 100 + round, seed, NULL);
            CHECK_EQ_INT(base, round * 2);
            if (round == 2) want[i] = expected_batch(2, 64, 100 + round, seed, 4, &wl[i]);
            partition_unref(p);
            CHECK_MSG(store_open_segment_files(s) <= 4, "open segment files %u",
                      store_open_segment_files(s));
        }
    store_close(s);
    s = open_store_opts(dir, 4, NULL);
    for (int32_t i = 11; i >= 0; i--) {
        partition_t *p = get_part(s, "t", i);
        CHECK_EQ_INT(partition_log_end(p), 6);
        CHECK(reads_back(p, 5, want[i], wl[i]));
        free(want[i]);
        partition_unref(p);
    }
    CHECK(store_open_segment_files(s) <= 4);
    store_close(s);
    check_rmtree(dir);
    free(dir);
}

int main(void)
{
    int64_t t0 = sl_wall_ms();
    test_topic_names();
    test_partition_counts();
    test_config_validation();
    test_topic_lifecycle();
    test_metadata_survives_reopen();
    test_dot_topic_survives_reopen();
    test_lock();
    test_clean_marker();
    test_clean_marker_unused_new_partitions();
    test_delete_with_reader();
    test_delete_recreate_while_held();
    test_delete_does_not_sync();
    test_leftovers_at_open();
    test_lazy_open();
    test_acks_all();
    test_group_commit();
    test_flush_policy();
    test_data_round_trip_many_partitions();
    printf("test_store: %" PRId64 " ms\n", sl_wall_ms() - t0);
    return check_exit();
}
