/* test_groups.c — consumer groups and committed offsets against the real
 * sluiced: three members get disjoint assignments covering every
 * partition; a silent member's session expires and the others rebalance to
 * a new generation; LeaveGroup rebalances at once; ILLEGAL_GENERATION,
 * UNKNOWN_MEMBER_ID, INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT; a join
 * parked on a connection that closes; OffsetCommit/OffsetFetch round trips
 * that survive SIGTERM and SIGKILL restarts; ListGroups and DescribeGroup. */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "batchgen.h"
#include "check.h"
#include "clock.h"
#include "harness.h"
#include "sclient.h"

#define NPART 6

static harness_t h;
static const char *const extra[] = {"--group.initial.rebalance.delay.ms=300", NULL};

/* Receives the answer to corr and decodes its body; NULL on a transport
 * error; *code = header error code. */
static ProtobufCMessage *recv_body(sc_t *c, uint64_t corr, const ProtobufCMessageDescriptor *d,
                                   int *code)
{
    sl_response_t r;
    *code = -1;
    if (sc_recv(c, &r) != 0) return NULL;
    CHECK_EQ_INT(r.hdr->correlation_id, corr);
    *code = r.hdr->error_code;
    sl_err_t err;
    return sl_body_decode(d, r.body, r.body_len, &c->arena, &err);
}

typedef struct member {
    sc_t c;
    char id[300];
    int32_t gen;
    uint64_t pending;
} member_t;

static uint64_t send_join(member_t *m, const char *group, uint32_t session)
{
    Sluice__JoinGroupRequest j = SLUICE__JOIN_GROUP_REQUEST__INIT;
    char *topics[] = {"gt"};
    j.group_id = (char *)group;
    j.member_id = m->id;
    j.client_id = "test-groups";
    j.session_timeout_ms = session;
    j.rebalance_timeout_ms = 3000;
    j.topics = topics;
    j.n_topics = 1;
    j.assignor = "roundrobin";
    return m->pending = sc_send(&m->c, SLUICE__API_KEY__JOIN_GROUP, &j.base, NULL, 0);
}

/* Returns the code; fills id and generation; *nmembers, leader optional. */
static int recv_join(member_t *m, size_t *nmembers, char *leader)
{
    int code;
    Sluice__JoinGroupResponse *r = (Sluice__JoinGroupResponse *)recv_body(
        &m->c, m->pending, &sluice__join_group_response__descriptor, &code);
    if (code == 0 && r) {
        snprintf(m->id, sizeof m->id, "%s", r->member_id);
        m->gen = r->generation_id;
        if (nmembers) *nmembers = r->n_members;
        if (leader) snprintf(leader, 300, "%s", r->leader_id);
    }
    return code;
}

/* SyncGroup; adds the assignment into seen[]; returns the code. */
static int sync_member(member_t *m, const char *group, int seen[NPART], int *count)
{
    Sluice__SyncGroupRequest s = SLUICE__SYNC_GROUP_REQUEST__INIT;
    s.group_id = (char *)group;
    s.generation_id = m->gen;
    s.member_id = m->id;
    uint64_t corr = sc_send(&m->c, SLUICE__API_KEY__SYNC_GROUP, &s.base, NULL, 0);
    int code;
    Sluice__SyncGroupResponse *r = (Sluice__SyncGroupResponse *)recv_body(
        &m->c, corr, &sluice__sync_group_response__descriptor, &code);
    if (count) *count = 0;
    for (size_t i = 0; code == 0 && r && i < r->n_assignment; i++) {
        CHECK(strcmp(r->assignment[i]->topic, "gt") == 0);
        for (size_t k = 0; k < r->assignment[i]->n_partitions; k++) {
            int32_t p = r->assignment[i]->partitions[k];
            CHECK(p >= 0 && p < NPART);
            if (p >= 0 && p < NPART) seen[p]++;
            if (count) (*count)++;
        }
    }
    return code;
}

static int heartbeat(member_t *m, const char *group, int32_t gen)
{
    Sluice__HeartbeatRequest hb = SLUICE__HEARTBEAT_REQUEST__INIT;
    hb.group_id = (char *)group;
    hb.generation_id = gen;
    hb.member_id = m->id;
    uint64_t corr = sc_send(&m->c, SLUICE__API_KEY__HEARTBEAT, &hb.base, NULL, 0);
    int code;
    recv_body(&m->c, corr, &sluice__heartbeat_response__descriptor, &code);
    return code;
}

static int leave(member_t *m, const char *group)
{
    Sluice__LeaveGroupRequest l = SLUICE__LEAVE_GROUP_REQUEST__INIT;
    l.group_id = (char *)group;
    l.member_id = m->id;
    uint64_t corr = sc_send(&m->c, SLUICE__API_KEY__LEAVE_GROUP, &l.base, NULL, 0);
    int code;
    recv_body(&m->c, corr, &sluice__leave_group_response__descriptor, &code);
    return code;
}

/* Commits one offset; returns the header code, *pcode the partition's. */
static int commit(sc_t *c, const char *group, int32_t gen, const char *member, const char *topic,
                  int32_t part, int64_t offset, const char *md, int *pcode)
{
    Sluice__OffsetCommitRequest m = SLUICE__OFFSET_COMMIT_REQUEST__INIT;
    Sluice__PartitionOffset po = SLUICE__PARTITION_OFFSET__INIT, *pp = &po;
    po.topic = (char *)topic;
    po.partition = part;
    po.offset = offset;
    po.metadata = (char *)md;
    m.group_id = (char *)group;
    m.generation_id = gen;
    m.member_id = (char *)member;
    m.offsets = &pp;
    m.n_offsets = 1;
    uint64_t corr = sc_send(c, SLUICE__API_KEY__OFFSET_COMMIT, &m.base, NULL, 0);
    int code;
    Sluice__OffsetCommitResponse *r = (Sluice__OffsetCommitResponse *)recv_body(
        c, corr, &sluice__offset_commit_response__descriptor, &code);
    *pcode = -2;
    if (code == 0 && r && r->n_offsets == 1) *pcode = r->offsets[0]->error_code;
    return code;
}

/* Fetches one partition's committed offset; returns the header code. */
static int fetch_offset(sc_t *c, const char *group, const char *topic, int32_t part,
                        int64_t *offset, char *md, int64_t *leo)
{
    Sluice__OffsetFetchRequest m = SLUICE__OFFSET_FETCH_REQUEST__INIT;
    Sluice__TopicPartitions tp = SLUICE__TOPIC_PARTITIONS__INIT, *tpp = &tp;
    tp.topic = (char *)topic;
    tp.partitions = &part;
    tp.n_partitions = 1;
    m.group_id = (char *)group;
    m.partitions = &tpp;
    m.n_partitions = 1;
    uint64_t corr = sc_send(c, SLUICE__API_KEY__OFFSET_FETCH, &m.base, NULL, 0);
    int code;
    Sluice__OffsetFetchResponse *r = (Sluice__OffsetFetchResponse *)recv_body(
        c, corr, &sluice__offset_fetch_response__descriptor, &code);
    *offset = -99;
    if (code == 0 && r && r->n_offsets == 1) {
        *offset = r->offsets[0]->offset;
        if (md) snprintf(md, 64, "%s", r->offsets[0]->metadata);
        if (leo) *leo = r->offsets[0]->log_end_offset;
        CHECK_EQ_INT(r->offsets[0]->error_code, 0);
    }
    return code;
}

static void connect_all(member_t *m, int n)
{
    for (int i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof m[i]);
        CHECK_FATAL(sc_connect(&m[i].c, h.port) == 0);
    }
}

static void test_membership(void)
{
    member_t m[3];
    connect_all(m, 3);
    CHECK_EQ_INT(sc_create_topic(&m[0].c, "gt", NPART), 0);
    /* Three members join at once (the initial delay gathers them). */
    for (int i = 0; i < 3; i++) CHECK(send_join(&m[i], "g", 1000) != 0);
    char leader[300] = "";
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        CHECK_EQ_INT(recv_join(&m[i], &n, i == 0 ? leader : NULL), 0);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(m[i].gen, m[0].gen);
    }
    CHECK(m[0].gen >= 1);
    CHECK(strcmp(m[0].id, m[1].id) != 0 && strcmp(m[1].id, m[2].id) != 0 &&
          strcmp(m[0].id, m[2].id) != 0);
    CHECK(strcmp(leader, m[0].id) == 0 || strcmp(leader, m[1].id) == 0 ||
          strcmp(leader, m[2].id) == 0);
    int seen[NPART] = {0};
    for (int i = 0; i < 3; i++) {
        int cnt;
        CHECK_EQ_INT(sync_member(&m[i], "g", seen, &cnt), 0);
        CHECK_EQ_INT(cnt, 2); /* roundrobin, 6 over 3 */
    }
    for (int p = 0; p < NPART; p++) CHECK_EQ_INT(seen[p], 1);
    int32_t gen1 = m[0].gen;

    /* m[2] goes silent; the others heartbeat until told to rejoin. */
    long long t0 = sl_mono_ms();
    int rc0 = 0, rc1 = 0;
    while (sl_mono_ms() - t0 < 10000) {
        rc0 = heartbeat(&m[0], "g", gen1);
        rc1 = heartbeat(&m[1], "g", gen1);
        if (rc0 || rc1) break;
        poll(NULL, 0, 150);
    }
    long long waited = sl_mono_ms() - t0;
    CHECK_EQ_INT(rc0, SL_ERR_REBALANCE_IN_PROGRESS);
    CHECK_MSG(waited >= 800 && waited < 3000, "rebalance after %lld ms (session 1000)", waited);
    if (rc1 == 0) CHECK_EQ_INT(heartbeat(&m[1], "g", gen1), SL_ERR_REBALANCE_IN_PROGRESS);
    send_join(&m[0], "g", 1000);
    send_join(&m[1], "g", 1000);
    size_t n0 = 0, n1 = 0;
    CHECK_EQ_INT(recv_join(&m[0], &n0, NULL), 0);
    CHECK_EQ_INT(recv_join(&m[1], &n1, NULL), 0);
    CHECK_EQ_INT(n0, 2);
    CHECK_EQ_INT(m[0].gen, gen1 + 1);
    CHECK_EQ_INT(m[1].gen, gen1 + 1);
    memset(seen, 0, sizeof seen);
    CHECK_EQ_INT(sync_member(&m[0], "g", seen, NULL), 0);
    CHECK_EQ_INT(sync_member(&m[1], "g", seen, NULL), 0);
    for (int p = 0; p < NPART; p++) CHECK_EQ_INT(seen[p], 1);
    CHECK_EQ_INT(heartbeat(&m[2], "g", gen1), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(&m[0], "g", gen1), SL_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(sync_member(&m[2], "g", seen, NULL), SL_ERR_UNKNOWN_MEMBER_ID);
    m[0].gen = gen1;
    CHECK_EQ_INT(sync_member(&m[0], "g", seen, NULL), SL_ERR_ILLEGAL_GENERATION);
    m[0].gen = gen1 + 1;

    /* LeaveGroup rebalances at once. */
    CHECK_EQ_INT(leave(&m[1], "g"), 0);
    CHECK_EQ_INT(leave(&m[1], "g"), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(&m[0], "g", gen1 + 1), SL_ERR_REBALANCE_IN_PROGRESS);
    send_join(&m[0], "g", 1000);
    CHECK_EQ_INT(recv_join(&m[0], &n0, NULL), 0);
    CHECK_EQ_INT(n0, 1);
    CHECK_EQ_INT(m[0].gen, gen1 + 2);
    memset(seen, 0, sizeof seen);
    int cnt;
    CHECK_EQ_INT(sync_member(&m[0], "g", seen, &cnt), 0);
    CHECK_EQ_INT(cnt, NPART);

    /* Bad requests. */
    member_t x;
    connect_all(&x, 1);
    send_join(&x, "", 1000);
    CHECK_EQ_INT(recv_join(&x, NULL, NULL), SL_ERR_INVALID_GROUP_ID);
    send_join(&x, "g", 50);
    CHECK_EQ_INT(recv_join(&x, NULL, NULL), SL_ERR_INVALID_SESSION_TIMEOUT);
    send_join(&x, "g", 400000);
    CHECK_EQ_INT(recv_join(&x, NULL, NULL), SL_ERR_INVALID_SESSION_TIMEOUT);
    snprintf(x.id, sizeof x.id, "forged");
    send_join(&x, "g", 1000);
    CHECK_EQ_INT(recv_join(&x, NULL, NULL), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(&x, "nogroup", 1), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(&x, "", 1), SL_ERR_INVALID_GROUP_ID);
    sc_close(&x.c);

    /* A join parked (the initial delay) on a connection that closes. */
    member_t gone;
    connect_all(&gone, 1);
    send_join(&gone, "g-gone", 1000);
    sc_close(&gone.c);

    /* Offsets: a member commits, a standalone consumer commits. */
    int pc;
    CHECK_EQ_INT(commit(&m[0].c, "g", m[0].gen, m[0].id, "gt", 3, 42, "meta-42", &pc), 0);
    CHECK_EQ_INT(pc, 0);
    CHECK_EQ_INT(commit(&m[0].c, "g", gen1, m[0].id, "gt", 3, 43, "", &pc),
                 SL_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(commit(&m[0].c, "g", -1, "", "gt", 3, 43, "", &pc), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(commit(&m[0].c, "solo", -1, "", "gt", 0, 7, "", &pc), 0);
    CHECK_EQ_INT(pc, 0);
    CHECK_EQ_INT(commit(&m[0].c, "solo", -1, "", "nosuchtopic", 0, 7, "", &pc), 0);
    CHECK_EQ_INT(pc, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(commit(&m[0].c, "solo", -1, "", "gt", NPART, 7, "", &pc), 0);
    CHECK_EQ_INT(pc, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(commit(&m[0].c, "", -1, "", "gt", 0, 7, "", &pc), SL_ERR_INVALID_GROUP_ID);
    int64_t off, leo;
    char md[64];
    CHECK_EQ_INT(fetch_offset(&m[0].c, "g", "gt", 3, &off, md, &leo), 0);
    CHECK_EQ_INT(off, 42);
    CHECK(strcmp(md, "meta-42") == 0);
    CHECK_EQ_INT(leo, 0);
    CHECK_EQ_INT(fetch_offset(&m[0].c, "g", "gt", 4, &off, NULL, NULL), 0);
    CHECK_EQ_INT(off, -1);
    CHECK_EQ_INT(fetch_offset(&m[0].c, "never", "gt", 0, &off, NULL, NULL), 0);
    CHECK_EQ_INT(off, -1);

    /* Some data, so the log end offset shows up for lag. */
    size_t blen;
    uint8_t *b = bg_simple(5, 20, 1, 1, &blen);
    int64_t base;
    CHECK_EQ_INT(sc_produce(&m[0].c, "gt", 3, 1, b, blen, &base), 0);
    free(b);

    /* ListGroups: g (Stable, 1 member), solo (offsets only: Empty). */
    Sluice__ListGroupsRequest lg = SLUICE__LIST_GROUPS_REQUEST__INIT;
    uint64_t corr = sc_send(&m[0].c, SLUICE__API_KEY__LIST_GROUPS, &lg.base, NULL, 0);
    int code;
    Sluice__ListGroupsResponse *lr = (Sluice__ListGroupsResponse *)recv_body(
        &m[0].c, corr, &sluice__list_groups_response__descriptor, &code);
    CHECK_EQ_INT(code, 0);
    int found_g = 0, found_solo = 0;
    for (size_t i = 0; lr && i < lr->n_groups; i++) {
        if (strcmp(lr->groups[i]->group_id, "g") == 0) {
            found_g = 1;
            CHECK(strcmp(lr->groups[i]->state, "Stable") == 0);
            CHECK_EQ_INT(lr->groups[i]->members, 1);
        }
        if (strcmp(lr->groups[i]->group_id, "solo") == 0) {
            found_solo = 1;
            CHECK(strcmp(lr->groups[i]->state, "Empty") == 0);
        }
    }
    CHECK(found_g && found_solo);

    Sluice__DescribeGroupRequest dg = SLUICE__DESCRIBE_GROUP_REQUEST__INIT;
    dg.group_id = "g";
    corr = sc_send(&m[0].c, SLUICE__API_KEY__DESCRIBE_GROUP, &dg.base, NULL, 0);
    Sluice__DescribeGroupResponse *dr = (Sluice__DescribeGroupResponse *)recv_body(
        &m[0].c, corr, &sluice__describe_group_response__descriptor, &code);
    CHECK_EQ_INT(code, 0);
    if (dr) {
        CHECK(strcmp(dr->state, "Stable") == 0);
        CHECK_EQ_INT(dr->generation_id, m[0].gen);
        CHECK(strcmp(dr->assignor, "roundrobin") == 0);
        CHECK_EQ_INT(dr->n_members, 1);
        if (dr->n_members == 1) {
            CHECK(strcmp(dr->members[0]->member_id, m[0].id) == 0);
            CHECK(strcmp(dr->members[0]->client_id, "test-groups") == 0);
            CHECK_EQ_INT(dr->members[0]->n_assignment, 1);
            if (dr->members[0]->n_assignment == 1)
                CHECK_EQ_INT(dr->members[0]->assignment[0]->n_partitions, NPART);
        }
        CHECK_EQ_INT(dr->n_offsets, 1);
        if (dr->n_offsets == 1) {
            CHECK_EQ_INT(dr->offsets[0]->offset, 42);
            CHECK_EQ_INT(dr->offsets[0]->log_end_offset, 5);
        }
    }
    dg.group_id = "nope";
    corr = sc_send(&m[0].c, SLUICE__API_KEY__DESCRIBE_GROUP, &dg.base, NULL, 0);
    recv_body(&m[0].c, corr, &sluice__describe_group_response__descriptor, &code);
    CHECK_EQ_INT(code, SL_ERR_GROUP_ID_NOT_FOUND);
    dg.group_id = "";
    corr = sc_send(&m[0].c, SLUICE__API_KEY__DESCRIBE_GROUP, &dg.base, NULL, 0);
    recv_body(&m[0].c, corr, &sluice__describe_group_response__descriptor, &code);
    CHECK_EQ_INT(code, SL_ERR_INVALID_GROUP_ID);
    for (int i = 0; i < 3; i++) sc_close(&m[i].c);
}

/* Offsets survive a clean stop and a SIGKILL. */
static void test_restarts(void)
{
    int st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status %d", st);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    sc_t c;
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    int64_t off;
    char md[64];
    CHECK_EQ_INT(fetch_offset(&c, "g", "gt", 3, &off, md, NULL), 0);
    CHECK_EQ_INT(off, 42);
    CHECK(strcmp(md, "meta-42") == 0);
    CHECK_EQ_INT(fetch_offset(&c, "solo", "gt", 0, &off, NULL, NULL), 0);
    CHECK_EQ_INT(off, 7);
    /* Members are not durable: the old generation's member is unknown. */
    int pc;
    CHECK_EQ_INT(commit(&c, "solo", -1, "", "gt", 0, 1000, "after-term", &pc), 0);
    CHECK_EQ_INT(commit(&c, "solo", -1, "", "gt", 1, 2000, "", &pc), 0);
    sc_close(&c);
    harness_stop(&h, SIGKILL);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(sc_connect(&c, h.port) == 0);
    CHECK_EQ_INT(fetch_offset(&c, "solo", "gt", 0, &off, md, NULL), 0);
    CHECK_EQ_INT(off, 1000);
    CHECK(strcmp(md, "after-term") == 0);
    CHECK_EQ_INT(fetch_offset(&c, "solo", "gt", 1, &off, NULL, NULL), 0);
    CHECK_EQ_INT(off, 2000);
    CHECK_EQ_INT(fetch_offset(&c, "g", "gt", 3, &off, NULL, NULL), 0);
    CHECK_EQ_INT(off, 42);
    /* Every committed offset of a group at once. */
    Sluice__OffsetFetchRequest m = SLUICE__OFFSET_FETCH_REQUEST__INIT;
    m.group_id = "solo";
    uint64_t corr = sc_send(&c, SLUICE__API_KEY__OFFSET_FETCH, &m.base, NULL, 0);
    int code;
    Sluice__OffsetFetchResponse *r = (Sluice__OffsetFetchResponse *)recv_body(
        &c, corr, &sluice__offset_fetch_response__descriptor, &code);
    CHECK_EQ_INT(code, 0);
    if (r) CHECK_EQ_INT(r->n_offsets, 2);
    sc_close(&c);
    st = harness_stop(&h, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exit status %d", st);
}

int main(void)
{
    harness_init(&h, "groups");
    CHECK_FATAL(harness_start(&h, extra) == 0);
    test_membership();
    test_restarts();
    harness_cleanup(&h);
    return check_exit();
}
