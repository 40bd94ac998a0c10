/* gen_fuzz_corpus.c — writes the checked-in seed corpora of fuzz_sluice_frame,
 * fuzz_batch, fuzz_recovery and fuzz_conf: small, valid inputs, built with
 * the project's own encoders (protobuf-c generated code + sl_request_encode,
 * tests/lib/batchgen.c, the real partition code, broker_conf_dump).
 * Deterministic: the same bytes on every run. Rerun only to change them:
 *
 *   build-clang/tests/fuzz/gen_fuzz_corpus sluice_frame tests/fuzz/corpus/sluice_frame
 *   build-clang/tests/fuzz/gen_fuzz_corpus batch        tests/fuzz/corpus/batch
 *   build-clang/tests/fuzz/gen_fuzz_corpus recovery     tests/fuzz/corpus/recovery
 *   build-clang/tests/fuzz/gen_fuzz_corpus conf         tests/fuzz/corpus/conf
 *
 * (the recovery seeds are made in a scratch directory under /tmp, removed
 * afterwards). Input formats are described at the top of each fuzz_*.c. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "batchgen.h"
#include "codec.h"
#include "conf.h"
#include "partition.h"

static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "gen_fuzz_corpus: %s\n", what);
    exit(1);
}

static void emit(const char *name, const void *b, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0) die(p);
}

/* ---- a growable byte buffer ----------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n)
{
    if (b->cap - b->n < n) {
        while (b->cap - b->n < n) b->cap = b->cap ? 2 * b->cap : 1024;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put8(buf_t *b, uint8_t v)
{
    put(b, &v, 1);
}

/* ---- sluice_frame ---------------------------------------------------------- */

static uint64_t corr = 1;

static void emit_req(const char *name, Sluice__ApiKey api, const ProtobufCMessage *body,
                     const uint8_t *payload, uint32_t plen)
{
    Sluice__RequestHeader h = SLUICE__REQUEST_HEADER__INIT;
    h.api = api;
    h.version = SL_PROTOCOL_VERSION;
    h.correlation_id = corr++;
    size_t n = sl_request_size(&h, body);
    uint8_t *f = malloc(n + plen);
    if (!f) die("out of memory");
    sl_request_encode(&h, body, plen, f);
    if (plen) memcpy(f + n, payload, plen);
    emit(name, f, n + plen);
    free(f);
}

static void emit_resp(const char *name, Sluice__ApiKey api, int code, const char *msg,
                      const ProtobufCMessage *body, const uint8_t *payload, uint32_t plen)
{
    Sluice__ResponseHeader h = SLUICE__RESPONSE_HEADER__INIT;
    h.api = api;
    h.correlation_id = corr++;
    h.error_code = (Sluice__ErrorCode)code;
    if (msg) h.error_message = (char *)msg;
    size_t n = sl_response_size(&h, body);
    uint8_t *f = malloc(n + plen);
    if (!f) die("out of memory");
    sl_response_encode(&h, body, plen, f);
    if (plen) memcpy(f + n, payload, plen);
    emit(name, f, n + plen);
    free(f);
}

static void gen_frames(void)
{
    size_t blen;
    uint8_t *batch = bg_simple(2, 8, 1700000000000, 7, &blen);
    if (!batch) die("bg_simple");

    Sluice__HelloRequest hello = SLUICE__HELLO_REQUEST__INIT;
    hello.min_version = 1;
    hello.max_version = 1;
    hello.client_id = "fuzz-seed";
    emit_req("req_hello.bin", SLUICE__API_KEY__HELLO, &hello.base, NULL, 0);

    Sluice__MetadataRequest md = SLUICE__METADATA_REQUEST__INIT;
    char *topics[] = {"orders", "t"};
    md.n_topics = 2;
    md.topics = topics;
    emit_req("req_metadata.bin", SLUICE__API_KEY__METADATA, &md.base, NULL, 0);
    Sluice__MetadataRequest md_all = SLUICE__METADATA_REQUEST__INIT;
    emit_req("req_metadata_all.bin", SLUICE__API_KEY__METADATA, &md_all.base, NULL, 0);

    Sluice__CreateTopicRequest ct = SLUICE__CREATE_TOPIC_REQUEST__INIT;
    Sluice__CreateTopicRequest__ConfigsEntry e1 = SLUICE__CREATE_TOPIC_REQUEST__CONFIGS_ENTRY__INIT;
    Sluice__CreateTopicRequest__ConfigsEntry e2 = SLUICE__CREATE_TOPIC_REQUEST__CONFIGS_ENTRY__INIT;
    e1.key = "segment.bytes";
    e1.value = "1048576";
    e2.key = "retention.ms";
    e2.value = "-1";
    Sluice__CreateTopicRequest__ConfigsEntry *entries[] = {&e1, &e2};
    ct.name = "orders";
    ct.partitions = 3;
    ct.n_configs = 2;
    ct.configs = entries;
    emit_req("req_create_topic.bin", SLUICE__API_KEY__CREATE_TOPIC, &ct.base, NULL, 0);

    Sluice__DeleteTopicRequest dt = SLUICE__DELETE_TOPIC_REQUEST__INIT;
    dt.name = "orders";
    emit_req("req_delete_topic.bin", SLUICE__API_KEY__DELETE_TOPIC, &dt.base, NULL, 0);

    Sluice__ProduceRequest pr = SLUICE__PRODUCE_REQUEST__INIT;
    pr.topic = "orders";
    pr.partition = 1;
    pr.acks = -1;
    pr.timeout_ms = 30000;
    emit_req("req_produce.bin", SLUICE__API_KEY__PRODUCE, &pr.base, batch, (uint32_t)blen);

    Sluice__FetchRequest fe = SLUICE__FETCH_REQUEST__INIT;
    fe.topic = "orders";
    fe.offset = 42;
    fe.max_bytes = 1048576;
    fe.min_bytes = 1;
    fe.max_wait_ms = 500;
    emit_req("req_fetch.bin", SLUICE__API_KEY__FETCH, &fe.base, NULL, 0);

    Sluice__ListOffsetsRequest lo = SLUICE__LIST_OFFSETS_REQUEST__INIT;
    lo.topic = "orders";
    lo.timestamp = -2;
    emit_req("req_list_offsets.bin", SLUICE__API_KEY__LIST_OFFSETS, &lo.base, NULL, 0);

    Sluice__JoinGroupRequest jg = SLUICE__JOIN_GROUP_REQUEST__INIT;
    jg.group_id = "g1";
    jg.client_id = "c1";
    jg.session_timeout_ms = 10000;
    jg.rebalance_timeout_ms = 30000;
    jg.n_topics = 2;
    jg.topics = topics;
    jg.assignor = "roundrobin";
    emit_req("req_join_group.bin", SLUICE__API_KEY__JOIN_GROUP, &jg.base, NULL, 0);

    Sluice__SyncGroupRequest sg = SLUICE__SYNC_GROUP_REQUEST__INIT;
    sg.group_id = "g1";
    sg.generation_id = 3;
    sg.member_id = "c1-0001";
    emit_req("req_sync_group.bin", SLUICE__API_KEY__SYNC_GROUP, &sg.base, NULL, 0);

    Sluice__HeartbeatRequest hb = SLUICE__HEARTBEAT_REQUEST__INIT;
    hb.group_id = "g1";
    hb.generation_id = 3;
    hb.member_id = "c1-0001";
    emit_req("req_heartbeat.bin", SLUICE__API_KEY__HEARTBEAT, &hb.base, NULL, 0);

    Sluice__LeaveGroupRequest lg = SLUICE__LEAVE_GROUP_REQUEST__INIT;
    lg.group_id = "g1";
    lg.member_id = "c1-0001";
    emit_req("req_leave_group.bin", SLUICE__API_KEY__LEAVE_GROUP, &lg.base, NULL, 0);

    Sluice__OffsetCommitRequest oc = SLUICE__OFFSET_COMMIT_REQUEST__INIT;
    Sluice__PartitionOffset po1 = SLUICE__PARTITION_OFFSET__INIT;
    Sluice__PartitionOffset po2 = SLUICE__PARTITION_OFFSET__INIT;
    po1.topic = "orders";
    po1.offset = 100;
    po1.metadata = "m";
    po2.topic = "orders";
    po2.partition = 2;
    po2.offset = 7;
    Sluice__PartitionOffset *pos[] = {&po1, &po2};
    oc.group_id = "g1";
    oc.generation_id = -1;
    oc.n_offsets = 2;
    oc.offsets = pos;
    emit_req("req_offset_commit.bin", SLUICE__API_KEY__OFFSET_COMMIT, &oc.base, NULL, 0);

    Sluice__OffsetFetchRequest of = SLUICE__OFFSET_FETCH_REQUEST__INIT;
    Sluice__TopicPartitions tp = SLUICE__TOPIC_PARTITIONS__INIT;
    int32_t parts[] = {0, 1, 2};
    tp.topic = "orders";
    tp.n_partitions = 3;
    tp.partitions = parts;
    Sluice__TopicPartitions *tps[] = {&tp};
    of.group_id = "g1";
    of.n_partitions = 1;
    of.partitions = tps;
    emit_req("req_offset_fetch.bin", SLUICE__API_KEY__OFFSET_FETCH, &of.base, NULL, 0);

    Sluice__ListGroupsRequest lgs = SLUICE__LIST_GROUPS_REQUEST__INIT;
    emit_req("req_list_groups.bin", SLUICE__API_KEY__LIST_GROUPS, &lgs.base, NULL, 0);

    Sluice__DescribeGroupRequest dg = SLUICE__DESCRIBE_GROUP_REQUEST__INIT;
    dg.group_id = "g1";
    emit_req("req_describe_group.bin", SLUICE__API_KEY__DESCRIBE_GROUP, &dg.base, NULL, 0);

    Sluice__SubscribeRequest su = SLUICE__SUBSCRIBE_REQUEST__INIT;
    su.topic = "orders";
    su.offset = 5;
    su.credit_bytes = 1 << 20;
    emit_req("req_subscribe.bin", SLUICE__API_KEY__SUBSCRIBE, &su.base, NULL, 0);

    Sluice__CreditRequest cr = SLUICE__CREDIT_REQUEST__INIT;
    cr.subscription = 17;
    cr.bytes = 65536;
    emit_req("req_credit.bin", SLUICE__API_KEY__CREDIT, &cr.base, NULL, 0);

    Sluice__UnsubscribeRequest un = SLUICE__UNSUBSCRIBE_REQUEST__INIT;
    un.subscription = 17;
    emit_req("req_unsubscribe.bin", SLUICE__API_KEY__UNSUBSCRIBE, &un.base, NULL, 0);

    /* responses, as the client decodes them */
    Sluice__HelloResponse hr = SLUICE__HELLO_RESPONSE__INIT;
    hr.version = 1;
    hr.broker_version = "0.1.0";
    hr.max_request_size = 16777216;
    emit_resp("resp_hello.bin", SLUICE__API_KEY__HELLO, 0, NULL, &hr.base, NULL, 0);

    Sluice__MetadataResponse mr = SLUICE__METADATA_RESPONSE__INIT;
    Sluice__TopicMetadata tm = SLUICE__TOPIC_METADATA__INIT;
    Sluice__PartitionMetadata pm = SLUICE__PARTITION_METADATA__INIT;
    pm.partition = 0;
    pm.log_start_offset = 0;
    pm.log_end_offset = 10;
    Sluice__PartitionMetadata *pms[] = {&pm};
    tm.name = "orders";
    tm.n_partitions = 1;
    tm.partitions = pms;
    Sluice__TopicMetadata *tms[] = {&tm};
    mr.n_topics = 1;
    mr.topics = tms;
    mr.host = "127.0.0.1";
    mr.port = 9292;
    emit_resp("resp_metadata.bin", SLUICE__API_KEY__METADATA, 0, NULL, &mr.base, NULL, 0);

    Sluice__FetchResponse fr = SLUICE__FETCH_RESPONSE__INIT;
    fr.high_watermark = 2;
    fr.first_offset = 0;
    emit_resp("resp_fetch.bin", SLUICE__API_KEY__FETCH, 0, NULL, &fr.base, batch, (uint32_t)blen);

    Sluice__DescribeGroupResponse dr = SLUICE__DESCRIBE_GROUP_RESPONSE__INIT;
    Sluice__GroupMember gm = SLUICE__GROUP_MEMBER__INIT;
    gm.member_id = "c1-0001";
    gm.client_id = "c1";
    gm.host = "/127.0.0.1";
    gm.n_assignment = 1;
    gm.assignment = tps;
    Sluice__GroupMember *gms[] = {&gm};
    dr.group_id = "g1";
    dr.state = "Stable";
    dr.generation_id = 3;
    dr.assignor = "range";
    dr.n_members = 1;
    dr.members = gms;
    dr.n_offsets = 2;
    dr.offsets = pos;
    emit_resp("resp_describe_group.bin", SLUICE__API_KEY__DESCRIBE_GROUP, 0, NULL, &dr.base, NULL,
              0);

    Sluice__PushData pd = SLUICE__PUSH_DATA__INIT;
    pd.topic = "orders";
    pd.high_watermark = 2;
    emit_resp("resp_push.bin", SLUICE__API_KEY__PUSH, 0, NULL, &pd.base, batch, (uint32_t)blen);

    emit_resp("resp_error.bin", SLUICE__API_KEY__PRODUCE, SL_ERR_CORRUPT_MESSAGE,
              "batch 0 at position 0: CRC-32C mismatch", NULL, NULL, 0);
    free(batch);
}

/* ---- batch ------------------------------------------------------------------ */

static void emit_flagged(const char *name, uint8_t flags, const uint8_t *b, size_t n)
{
    buf_t o = {0};
    put8(&o, flags);
    put(&o, b, n);
    emit(name, o.p, o.n);
    free(o.p);
}

static void gen_batches(void)
{
    size_t n;
    uint8_t *b = bg_simple(1, 16, 1700000000000, 1, &n);
    emit_flagged("simple1.bin", 0, b, n);
    emit_flagged("simple1_fixcrc.bin", 1, b, n);
    free(b);

    static const bg_header_t hdrs[] = {{"trace", "abc", 3}, {"null-value", NULL, -1}};
    const bg_record_t recs[] = {
        {"k0", 2, "value zero", 10, 1700000000000, 2, hdrs},
        {NULL, -1, "v1", 2, 1700000000005, 0, NULL},
        {"k2", 2, NULL, -1, 1699999999990, 1, hdrs},
        {"", 0, "", 0, 1700000000100, 0, NULL},
        {"k4", 2, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", 50, 1700000000200, 0, NULL},
    };
    b = bg_build(recs, 5, SL_COMPRESSION_NONE, &n);
    emit_flagged("mixed5.bin", 0, b, n);
    emit_flagged("mixed5_fixcrc.bin", 1, b, n);
    emit_flagged("mixed5_small_limits.bin", 0x04 | 0x10, b, n);
    /* LogAppendTime: the attribute bit, then the CRC again */
    b[SL_BATCH_OFF_ATTRIBUTES + 1] |= SL_BATCH_ATTR_LOG_APPEND_TIME;
    bg_fix_crc(b, n);
    emit_flagged("mixed5_logappendtime.bin", 0, b, n);
    free(b);

    b = bg_build(recs, 5, SL_COMPRESSION_LZ4, &n);
    emit_flagged("mixed5_lz4.bin", 0, b, n);
    emit_flagged("mixed5_lz4_fixcrc.bin", 1, b, n);
    emit_flagged("mixed5_lz4_small_unc.bin", 0x10, b, n);
    free(b);

    size_t n1, n2, n3;
    uint8_t *b1 = bg_simple(3, 8, 1700000000000, 2, &n1);
    uint8_t *b2 = bg_build(recs, 2, SL_COMPRESSION_LZ4, &n2);
    uint8_t *b3 = bg_simple(1, 0, 1700000000000, 3, &n3);
    sl_put_be64(b2, 3); /* baseOffsets as a log would have them */
    sl_put_be64(b3, 5);
    buf_t set = {0};
    put(&set, b1, n1);
    put(&set, b2, n2);
    put(&set, b3, n3);
    emit_flagged("set3.bin", 0, set.p, set.n);
    emit_flagged("set3_fixcrc.bin", 1, set.p, set.n);
    free(set.p);
    free(b1);
    free(b2);
    free(b3);

    b = bg_simple(40, 4, 1700000000000, 4, &n);
    emit_flagged("simple40.bin", 0, b, n);
    free(b);
    uint8_t *z = NULL;
    bg_record_t many[20];
    uint8_t val[64];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 20; i++)
        many[i] = (bg_record_t){NULL, -1, val, 64, 1700000000000 + i, 0, NULL};
    z = bg_build(many, 20, SL_COMPRESSION_LZ4, &n);
    emit_flagged("lz4_20_compressible.bin", 0, z, n);
    free(z);
}

/* ---- recovery --------------------------------------------------------------- */

/* Appends chunk tag | u16 LE length | bytes of the file, if it exists. */
static void put_chunk_file(buf_t *o, uint8_t tag, const char *path, size_t drop_tail)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) < 0) die(path);
    size_t n = (size_t)st.st_size;
    if (n > 0xffff) die("recovery seed file too large");
    uint8_t *b = malloc(n ? n : 1);
    if (!b || read(fd, b, n) != (ssize_t)n) die(path);
    close(fd);
    n = n > drop_tail ? n - drop_tail : 0;
    uint8_t h[3] = {tag, (uint8_t)n, (uint8_t)(n >> 8)};
    put(o, h, 3);
    put(o, b, n);
    free(b);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Serialises a partition directory: for each segment (in order) its .log,
 * .index and .timeindex; then, when `ckpt`, the recovery-point. `torn`
 * bytes are cut from the last .log. */
static void put_dir(buf_t *o, const char *d, int ckpt, size_t torn)
{
    DIR *dd = opendir(d);
    if (!dd) die(d);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dd))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 && n < 64)
            names[n++] = strdup(e->d_name);
    }
    closedir(dd);
    qsort(names, n, sizeof names[0], cmp_name);
    for (size_t i = 0; i < n; i++) {
        char p[4096];
        size_t stem = strlen(names[i]) - 4;
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        put_chunk_file(o, 0, p, i + 1 == n ? torn : 0);
        snprintf(p, sizeof p, "%s/%.*s.index", d, (int)stem, names[i]);
        put_chunk_file(o, 1, p, 0);
        snprintf(p, sizeof p, "%s/%.*s.timeindex", d, (int)stem, names[i]);
        put_chunk_file(o, 2, p, 0);
        free(names[i]);
    }
    if (ckpt) {
        char p[4096];
        snprintf(p, sizeof p, "%s/recovery-point", d);
        put_chunk_file(o, 3, p, 0);
    }
}

static void rm_dir(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd) return;
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        unlink(p);
    }
    closedir(dd);
    rmdir(d);
}

/* Builds a partition in d: nbatches appends of 1..3 records (every third
 * lz4), rolling at seg_bytes, then closes it cleanly. */
static void make_partition(const char *d, seg_cache_t *cache, int nbatches, int64_t seg_bytes,
                           int64_t interval)
{
    rm_dir(d);
    sl_log_conf_t conf;
    sl_log_conf_defaults(&conf);
    conf.segment_bytes = seg_bytes;
    conf.index_interval_bytes = interval;
    partition_opts_t o = {.dir = d, .topic = "seed", .conf = &conf, .cache = cache, .now_ms = 1000};
    partition_t *p;
    sl_err_t err;
    if (partition_open(&o, &p, NULL, &err) != SL_OK) die(err.msg);
    for (int i = 0; i < nbatches; i++) {
        size_t n;
        uint8_t *b;
        if (i % 3 == 2) {
            bg_record_t r[2] = {{"key", 3, "lz4 value lz4 value lz4 value", 29, 1000 + i, 0, NULL},
                                {NULL, -1, "second", 6, 1001 + i, 0, NULL}};
            b = bg_build(r, 2, SL_COMPRESSION_LZ4, &n);
        } else {
            b = bg_simple(1 + i % 3, 12, 1000 + i, (uint32_t)i, &n);
        }
        if (!b || partition_append(p, b, n, 1000 + i, NULL, &err) != SL_OK) die(err.msg);
        free(b);
    }
    partition_close(p, 0);
}

static void emit_recovery(const char *name, uint8_t flags, uint8_t sel, const char *d, int ckpt,
                          size_t torn)
{
    buf_t o = {0};
    put8(&o, flags);
    put8(&o, sel);
    put_dir(&o, d, ckpt, torn);
    emit(name, o.p, o.n);
    free(o.p);
}

static void gen_recovery(void)
{
    char d[256];
    snprintf(d, sizeof d, "/tmp/sluice-gen-corpus-%d", (int)getpid());
    seg_cache_t *cache = seg_cache_new(16);
    if (!cache) die("out of memory");

    /* three segments with indexes and the checkpoint of a clean close */
    make_partition(d, cache, 12, 400, 100);
    emit_recovery("three_segs_ckpt.bin", 0x00, 0, d, 1, 0);
    emit_recovery("three_segs_clean_open.bin", 0x01, 0, d, 1, 0);
    emit_recovery("three_segs_harness_ckpt.bin", 0x04, 5, d, 0, 0);
    emit_recovery("three_segs_fixcrc_idx0.bin", 0x02 | 0x08, 0, d, 0, 0);
    emit_recovery("three_segs_torn.bin", 0x00, 0, d, 0, 9);
    emit_recovery("three_segs_roll.bin", 0x10 | 0x04, 9, d, 1, 0);

    /* one segment, an index entry per batch */
    make_partition(d, cache, 6, 1 << 20, 0);
    emit_recovery("one_seg.bin", 0x08, 0, d, 1, 0);
    emit_recovery("one_seg_torn_harness_ckpt.bin", 0x04 | 0x08, 3, d, 0, 30);

    /* a segment at an explicit base: tag 7 */
    size_t n;
    uint8_t *b = bg_simple(2, 8, 1000, 9, &n);
    sl_put_be64(b, 1000);
    bg_fix_crc(b, n);
    buf_t o = {0};
    put8(&o, 0);
    put8(&o, 0);
    uint8_t h[3] = {7, (uint8_t)(n + 8), (uint8_t)((n + 8) >> 8)};
    put(&o, h, 3);
    uint8_t base[8];
    sl_put_be64(base, 1000);
    put(&o, base, 8);
    put(&o, b, n);
    emit("explicit_base.bin", o.p, o.n);
    free(o.p);
    free(b);

    /* nothing at all: a fresh partition */
    emit("empty.bin", "\0\0", 2);

    rm_dir(d);
    seg_cache_free(cache);
}

/* ---- conf ------------------------------------------------------------------- */

static void gen_conf(void)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/defaults_dump.conf", out_dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(p);
    broker_conf_t c;
    broker_conf_defaults(&c);
    broker_conf_dump(&c, fd);
    close(fd);

    static const char file[] = "# sluiced.conf\n"
                               "\n"
                               "log.dirs = /var/lib/sluice\n"
                               "listeners=0.0.0.0:9292\n"
                               "\tkafka.listeners=:9092\n"
                               "metrics.listener=\n"
                               "reactor.mode=level\n"
                               "num.reactors=4\n"
                               "log.level=debug\n"
                               "auto.create.topics.enable=false\n"
                               "log.segment.bytes=1048576\n"
                               "message.max.bytes=1048588\n"
                               "max.request.size=16777216\n";
    emit("file.conf", file, sizeof file - 1);

    static const char args[] = "--\n"
                               "--log.dirs=/tmp/x\n"
                               "--listeners=127.0.0.1:0\n"
                               "--kafka.advertised.listener=broker:9092\n"
                               "--group.min.session.timeout.ms=6000\n"
                               "--dump-config\n";
    emit("args.txt", args, sizeof args - 1);

    static const char both[] = "num.partitions=3\n"
                               "log.retention.ms=-1\n"
                               "--\n"
                               "--config\n"
                               "sluiced.conf\n"
                               "--num.partitions=5\n"
                               "--verify\n";
    emit("file_and_args.txt", both, sizeof both - 1);

    static const char nul[] = "--log.dirs=a b\0--version\0--segment.bytes=1\0";
    emit("args_nul.bin", nul, sizeof nul - 1);

    static const char bad[] = "listeners=nohostport\n"
                              "log.segment.byte=4096\n";
    emit("bad.conf", bad, sizeof bad - 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_fuzz_corpus sluice_frame|batch|recovery|conf DIR\n");
        return 2;
    }
    out_dir = argv[2];
    mkdir(out_dir, 0755);
    if (strcmp(argv[1], "sluice_frame") == 0)
        gen_frames();
    else if (strcmp(argv[1], "batch") == 0)
        gen_batches();
    else if (strcmp(argv[1], "recovery") == 0)
        gen_recovery();
    else if (strcmp(argv[1], "conf") == 0)
        gen_conf();
    else
        die("unknown corpus");
    return 0;
}
