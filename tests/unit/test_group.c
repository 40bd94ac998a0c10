/* test_group.c — the group coordinator without sockets: ConsumerProtocol
 * encodings, the range and roundrobin assignors (every partition exactly
 * once, their distributions), and the state machine driven by a fake clock
 * (generations, parked joins, session expiry, leave, rebalance timeout,
 * initial delay, client-side assignment, commit checks, shutdown). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "errors.h"
#include "group.h"

/* ---- a fake topic table ------------------------------------------------------- */

typedef struct topic {
    const char *name;
    int32_t parts;
} topic_t;

static topic_t topics[16];
static int ntopics;

static int32_t parts_of(void *arg, const char *name)
{
    (void)arg;
    for (int i = 0; i < ntopics; i++)
        if (strcmp(topics[i].name, name) == 0) return topics[i].parts;
    return 0;
}

/* ---- answers recorded by the callbacks ------------------------------------------ */

typedef struct ans {
    int done; /* times answered */
    int code;
    int32_t generation;
    char member[300], leader[300], protocol[64];
    size_t nmembers;
    uint8_t bytes[4096];
    size_t len;
    uint8_t meta0[256]; /* first member's metadata (client mode) */
    size_t meta0_len;
} ans_t;

static void on_join(void *arg, const grp_join_result_t *r)
{
    ans_t *a = arg;
    a->done++;
    a->code = r->code;
    a->generation = r->generation;
    snprintf(a->member, sizeof a->member, "%s", r->member_id);
    snprintf(a->leader, sizeof a->leader, "%s", r->leader_id);
    snprintf(a->protocol, sizeof a->protocol, "%s", r->protocol);
    a->nmembers = r->nmembers;
    if (r->nmembers && r->members[0].meta_len <= sizeof a->meta0) {
        memcpy(a->meta0, r->members[0].meta, r->members[0].meta_len);
        a->meta0_len = r->members[0].meta_len;
    }
}

static void on_sync(void *arg, const grp_sync_result_t *r)
{
    ans_t *a = arg;
    a->done++;
    a->code = r->code;
    a->len = r->len < sizeof a->bytes ? r->len : 0;
    if (a->len) memcpy(a->bytes, r->assignment, a->len);
}

static grp_conf_t conf = {.min_session_ms = 100, .max_session_ms = 300000, .initial_delay_ms = 0};

/* Broker-mode join of `member` ("" for new) subscribing to t[0..nt). */
static void join(grp_coord_t *g, const char *group, const char *member, const char *assignor,
                 const char *const *t, size_t nt, int64_t session, int64_t now, ans_t *a)
{
    char mid[300]; /* member may point into *a, which is cleared next */
    snprintf(mid, sizeof mid, "%s", member);
    member = mid;
    memset(a, 0, sizeof *a);
    size_t len;
    uint8_t *sub = grp_subscription_encode(t, nt, &len);
    grp_protocol_t p = {assignor, sub, len};
    grp_join_req_t r = {.group_id = group,
                        .member_id = member,
                        .client_id = "test",
                        .host = "127.0.0.1",
                        .session_ms = session,
                        .rebalance_ms = 1000,
                        .protocol_type = "consumer",
                        .mode = GRP_MODE_BROKER,
                        .protocols = &p,
                        .nprotocols = 1};
    grp_join(g, &r, now, on_join, a);
    free(sub);
}

static void sync_(grp_coord_t *g, const char *group, int32_t gen, const char *member, int64_t now,
                  ans_t *a)
{
    memset(a, 0, sizeof *a);
    grp_sync(g, group, gen, member, NULL, 0, now, on_sync, a);
}

/* Adds an assignment's partitions to seen[topic index][partition]. */
static int count_assignment(const uint8_t *b, size_t len, int seen[16][64])
{
    grp_assign_t a;
    int n = 0;
    CHECK_EQ_INT(grp_assignment_decode(b, len, &a), SL_OK);
    for (size_t i = 0; i < a.ntopics; i++) {
        int t = -1;
        for (int k = 0; k < ntopics; k++)
            if (strcmp(topics[k].name, a.topics[i].topic) == 0) t = k;
        CHECK(t >= 0);
        for (size_t j = 0; t >= 0 && j < a.topics[i].nparts; j++) {
            int32_t p = a.topics[i].parts[j];
            CHECK(p >= 0 && p < topics[t].parts);
            if (p >= 0 && p < 64) seen[t][p]++;
            n++;
        }
    }
    grp_assign_free(&a);
    return n;
}

/* ---- encodings ------------------------------------------------------------------ */

static void test_encodings(void)
{
    const char *t[] = {"alpha", "beta", ""};
    size_t len;
    uint8_t *b = grp_subscription_encode(t, 3, &len);
    char **out;
    size_t n;
    CHECK_EQ_INT(grp_subscription_decode(b, len, &out, &n), SL_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) CHECK(strcmp(out[1], "beta") == 0 && out[2][0] == 0);
    grp_strings_free(out, n);
    /* Every truncation is refused, never read past. */
    for (size_t cut = 0; cut < len - 4; cut++) {
        CHECK_EQ_INT(grp_subscription_decode(b, cut, &out, &n), SL_ERR_INVALID_REQUEST);
        grp_strings_free(out, n);
    }
    free(b);
    uint8_t lie[] = {0, 0, 0x7f, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(grp_subscription_decode(lie, sizeof lie, &out, &n), SL_ERR_INVALID_REQUEST);

    int32_t p0[] = {0, 2, 4}, p1[] = {7};
    grp_tp_t tps[] = {{"x", p0, 3}, {"y", p1, 1}};
    grp_assign_t a = {tps, 2}, d;
    b = grp_assignment_encode(&a, &len);
    CHECK_EQ_INT(grp_assignment_decode(b, len, &d), SL_OK);
    CHECK_EQ_INT(d.ntopics, 2);
    if (d.ntopics == 2) {
        CHECK(strcmp(d.topics[0].topic, "x") == 0 && d.topics[0].nparts == 3 &&
              d.topics[0].parts[2] == 4);
        CHECK(strcmp(d.topics[1].topic, "y") == 0 && d.topics[1].parts[0] == 7);
    }
    grp_assign_free(&d);
    for (size_t cut = 1; cut < len - 4; cut++) {
        CHECK_EQ_INT(grp_assignment_decode(b, cut, &d), SL_ERR_INVALID_REQUEST);
        grp_assign_free(&d);
    }
    free(b);
    CHECK_EQ_INT(grp_assignment_decode(NULL, 0, &d), SL_OK);
    CHECK_EQ_INT(d.ntopics, 0);
}

/* ---- assignors ------------------------------------------------------------------ */

static void run_assignor(grp_assignor_fn fn, grp_assignor_member_t *m, size_t n, grp_assign_t *out,
                         int seen[16][64])
{
    memset(out, 0, n * sizeof *out);
    memset(seen, 0, sizeof(int[16][64]));
    CHECK_EQ_INT(fn(m, n, parts_of, NULL, out), SL_OK);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = grp_assignment_encode(&out[i], &len);
        count_assignment(b, len, seen);
        free(b);
    }
}

static size_t total(const grp_assign_t *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->ntopics; i++) n += a->topics[i].nparts;
    return n;
}

static void test_assignors_fixed(void)
{
    ntopics = 2;
    topics[0] = (topic_t){"t1", 7};
    topics[1] = (topic_t){"t2", 3};
    char *both[] = {"t1", "t2"};
    /* Member ids out of order on purpose: assignors sort them. */
    grp_assignor_member_t m[3] = {{"c", both, 2}, {"a", both, 2}, {"b", both, 2}};
    grp_assign_t out[3];
    int seen[16][64];
    run_assignor(grp_assign_range, m, 3, out, seen);
    /* range: t1 7 → a:0-2 b:3-4 c:5-6; t2 3 → a:0 b:1 c:2 */
    CHECK_EQ_INT(total(&out[1]), 4); /* a */
    CHECK_EQ_INT(total(&out[2]), 3); /* b */
    CHECK_EQ_INT(total(&out[0]), 3); /* c */
    CHECK(out[1].topics[0].parts[0] == 0 && out[1].topics[0].parts[2] == 2);
    CHECK(out[2].topics[0].parts[0] == 3);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < topics[t].parts; p++) CHECK_EQ_INT(seen[t][p], 1);
    for (int i = 0; i < 3; i++) grp_assign_free(&out[i]);

    run_assignor(grp_assign_roundrobin, m, 3, out, seen);
    /* roundrobin over t1-0..6, t2-0..2 (10): a gets 0,3,6 of t1 and t2-0 */
    CHECK_EQ_INT(total(&out[1]), 4);
    CHECK_EQ_INT(total(&out[2]), 3);
    CHECK_EQ_INT(total(&out[0]), 3);
    CHECK(out[1].topics[0].nparts == 3 && out[1].topics[0].parts[1] == 3);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < topics[t].parts; p++) CHECK_EQ_INT(seen[t][p], 1);
    for (int i = 0; i < 3; i++) grp_assign_free(&out[i]);

    /* Range's known skew: 2 topics of 1 partition both land on "a";
     * roundrobin spreads them. */
    topics[0].parts = 1;
    topics[1].parts = 1;
    grp_assignor_member_t two[2] = {{"a", both, 2}, {"b", both, 2}};
    run_assignor(grp_assign_range, two, 2, out, seen);
    CHECK_EQ_INT(total(&out[0]), 2);
    CHECK_EQ_INT(total(&out[1]), 0);
    for (int i = 0; i < 2; i++) grp_assign_free(&out[i]);
    run_assignor(grp_assign_roundrobin, two, 2, out, seen);
    CHECK_EQ_INT(total(&out[0]), 1);
    CHECK_EQ_INT(total(&out[1]), 1);
    for (int i = 0; i < 2; i++) grp_assign_free(&out[i]);

    /* A topic only one member wants goes wholly to it; a missing topic is
     * skipped. */
    topics[0].parts = 4;
    char *only1[] = {"t1"}, *t2andx[] = {"t2", "missing"};
    grp_assignor_member_t mixed[2] = {{"a", only1, 1}, {"b", t2andx, 2}};
    run_assignor(grp_assign_roundrobin, mixed, 2, out, seen);
    CHECK_EQ_INT(total(&out[0]), 4);
    CHECK_EQ_INT(total(&out[1]), 1);
    for (int i = 0; i < 2; i++) grp_assign_free(&out[i]);
}

/* Random memberships: every partition of a subscribed topic exactly once,
 * always to a subscriber; range balanced per topic, roundrobin overall when
 * everyone subscribes to everything. */
static void test_assignors_random(void)
{
    static char *names[] = {"a", "b", "c", "d", "e"};
    srand(42);
    for (int iter = 0; iter < 300; iter++) {
        ntopics = 1 + rand() % 5;
        for (int t = 0; t < ntopics; t++) topics[t] = (topic_t){names[t], rand() % 21};
        size_t n = 1 + (size_t)(rand() % 9);
        int all = iter % 2;
        grp_assignor_member_t m[10];
        char *subs[10][5];
        char ids[10][8];
        for (size_t i = 0; i < n; i++) {
            snprintf(ids[i], sizeof ids[i], "m%02d", rand() % 100);
            m[i].member_id = ids[i];
            m[i].topics = subs[i];
            m[i].ntopics = 0;
            for (int t = 0; t < ntopics; t++)
                if (all || rand() % 2) subs[i][m[i].ntopics++] = names[t];
        }
        for (int which = 0; which < 2; which++) {
            grp_assign_t out[10];
            int seen[16][64];
            run_assignor(which ? grp_assign_roundrobin : grp_assign_range, m, n, out, seen);
            for (int t = 0; t < ntopics; t++) {
                int wanted = 0;
                for (size_t i = 0; i < n; i++)
                    for (size_t k = 0; k < m[i].ntopics; k++)
                        wanted |= strcmp(m[i].topics[k], names[t]) == 0;
                for (int p = 0; p < topics[t].parts; p++) CHECK_EQ_INT(seen[t][p], wanted ? 1 : 0);
            }
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < out[i].ntopics; k++) {
                    int ok = 0;
                    for (size_t s = 0; s < m[i].ntopics; s++)
                        ok |= strcmp(m[i].topics[s], out[i].topics[k].topic) == 0;
                    CHECK(ok);
                }
            if (all) {
                size_t lo = SIZE_MAX, hi = 0;
                for (size_t i = 0; i < n; i++) {
                    size_t x = total(&out[i]);
                    lo = x < lo ? x : lo;
                    hi = x > hi ? x : hi;
                }
                /* roundrobin: off by at most one overall. range: at most one
                 * per topic, so at most ntopics overall. */
                CHECK(hi - lo <= (which ? 1u : (size_t)ntopics));
            }
            for (size_t i = 0; i < n; i++) grp_assign_free(&out[i]);
        }
    }
}

/* ---- the state machine ------------------------------------------------------------ */

static void test_validation(void)
{
    grp_coord_t *g = grp_new(&conf, parts_of, NULL);
    const char *t[] = {"t1"};
    ans_t a;
    join(g, "", "", "range", t, 1, 1000, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_INVALID_GROUP_ID);
    char longid[300];
    memset(longid, 'g', 299);
    longid[299] = 0;
    join(g, longid, "", "range", t, 1, 1000, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_INVALID_GROUP_ID);
    join(g, "g", "", "range", t, 1, 99, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_INVALID_SESSION_TIMEOUT);
    join(g, "g", "", "range", t, 1, 300001, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_INVALID_SESSION_TIMEOUT);
    join(g, "g", "nobody", "range", t, 1, 1000, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_UNKNOWN_MEMBER_ID);
    join(g, "g", "", "sticky", t, 1, 1000, 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_INCONSISTENT_GROUP_PROTOCOL);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 1, "x", 0), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(grp_heartbeat(g, "", 1, "x", 0), SL_ERR_INVALID_GROUP_ID);
    CHECK_EQ_INT(grp_leave(g, "g", "x", 0), SL_ERR_UNKNOWN_MEMBER_ID);
    sync_(g, "g", 1, "x", 0, &a);
    CHECK_EQ_INT(a.code, SL_ERR_UNKNOWN_MEMBER_ID);
    grp_desc_t d;
    CHECK_EQ_INT(grp_describe(g, "none", &d), SL_ERR_GROUP_ID_NOT_FOUND);
    grp_desc_free(&d);
    grp_free(g);
}

static void test_lifecycle(void)
{
    ntopics = 1;
    topics[0] = (topic_t){"t1", 6};
    grp_coord_t *g = grp_new(&conf, parts_of, NULL);
    const char *t[] = {"t1"};
    ans_t a, b, s;
    int64_t now = 1000;
    /* One member: completes at once, generation 1, leader, all 6 partitions. */
    join(g, "g", "", "range", t, 1, 500, now, &a);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(a.code, SL_OK);
    CHECK_EQ_INT(a.generation, 1);
    CHECK(strcmp(a.member, a.leader) == 0);
    CHECK(strcmp(a.protocol, "range") == 0);
    char ma[300];
    snprintf(ma, sizeof ma, "%s", a.member);
    sync_(g, "g", 1, ma, now, &s);
    CHECK_EQ_INT(s.code, SL_OK);
    int seen[16][64] = {{0}};
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 6);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 1, ma, now), SL_OK);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 0, ma, now), SL_ERR_ILLEGAL_GENERATION);
    sync_(g, "g", 2, ma, now, &s);
    CHECK_EQ_INT(s.code, SL_ERR_ILLEGAL_GENERATION);
    /* A repeated join of a Stable member changes nothing. */
    join(g, "g", ma, "range", t, 1, 500, now, &a);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(a.generation, 1);

    /* A second member parks; the first learns through its heartbeat. */
    join(g, "g", "", "range", t, 1, 500, now, &b);
    CHECK_EQ_INT(b.done, 0);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 1, ma, now + 10), SL_ERR_REBALANCE_IN_PROGRESS);
    sync_(g, "g", 1, ma, now, &s);
    CHECK_EQ_INT(s.code, SL_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(grp_commit_check(g, "g", 1, ma, now), SL_OK); /* commits while revoking */
    join(g, "g", ma, "range", t, 1, 500, now + 20, &a);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(b.done, 1);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(b.generation, 2);
    CHECK_EQ_INT(a.nmembers, 2);
    CHECK(strcmp(b.leader, ma) == 0); /* the old leader stays */
    char mb[300];
    snprintf(mb, sizeof mb, "%s", b.member);
    memset(seen, 0, sizeof seen);
    sync_(g, "g", 2, ma, now, &s);
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 3);
    sync_(g, "g", 2, mb, now, &s);
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 3);
    for (int p = 0; p < 6; p++) CHECK_EQ_INT(seen[0][p], 1);
    CHECK_EQ_INT(grp_commit_check(g, "g", 1, ma, now), SL_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(grp_commit_check(g, "g", -1, "", now), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(grp_commit_check(g, "free", -1, "", now), SL_OK);

    /* B stops heartbeating: its session (500 ms) ends, A must rejoin. */
    now += 20;
    grp_tick(g, now + 400);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 2, ma, now + 400), SL_OK);
    grp_tick(g, now + 501);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 2, mb, now + 501), SL_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 2, ma, now + 502), SL_ERR_REBALANCE_IN_PROGRESS);
    join(g, "g", ma, "range", t, 1, 500, now + 503, &a);
    CHECK_EQ_INT(a.generation, 3);
    CHECK_EQ_INT(a.nmembers, 1);
    grp_desc_t d;
    CHECK_EQ_INT(grp_describe(g, "g", &d), SL_OK);
    CHECK_EQ_INT(d.state, GRP_STABLE);
    CHECK_EQ_INT(d.nmembers, 1);
    grp_desc_free(&d);

    /* Leave: the group empties and the generation moves on. */
    CHECK_EQ_INT(grp_leave(g, "g", ma, now + 600), SL_OK);
    CHECK_EQ_INT(grp_describe(g, "g", &d), SL_OK);
    CHECK_EQ_INT(d.state, GRP_EMPTY);
    CHECK_EQ_INT(d.generation, 4);
    grp_desc_free(&d);
    grp_summary_t *gs;
    size_t ng;
    CHECK_EQ_INT(grp_list(g, &gs, &ng), SL_OK);
    CHECK_EQ_INT(ng, 1);
    if (ng == 1) CHECK(strcmp(gs[0].group_id, "g") == 0 && gs[0].state == GRP_EMPTY);
    free(gs);
    grp_free(g);
}

/* A leave triggers the rebalance at once; members that never rejoin are
 * dropped at the rebalance timeout (1000 ms in join()). */
static void test_leave_and_rebalance_timeout(void)
{
    ntopics = 1;
    topics[0] = (topic_t){"t1", 4};
    grp_coord_t *g = grp_new(&conf, parts_of, NULL);
    const char *t[] = {"t1"};
    ans_t a, b, c;
    join(g, "g", "", "roundrobin", t, 1, 10000, 0, &a);
    join(g, "g", "", "roundrobin", t, 1, 10000, 0, &b);
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 0, &a);
    CHECK_EQ_INT(b.generation, 2);
    join(g, "g", "", "roundrobin", t, 1, 10000, 0, &c);
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 0, &a);
    join(g, "g", b.member, "roundrobin", t, 1, 10000, 0, &b);
    CHECK_EQ_INT(c.generation, 3);
    CHECK_EQ_INT(c.nmembers, 3);
    /* c leaves: the others hear of it on their next heartbeat. */
    CHECK_EQ_INT(grp_leave(g, "g", c.member, 100), SL_OK);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 3, a.member, 100), SL_ERR_REBALANCE_IN_PROGRESS);
    /* Only a rejoins; b is silent but its session (10 s) is alive: the
     * rebalance timeout (1 s) drops it. */
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 200, &a);
    CHECK_EQ_INT(a.done, 0);
    grp_tick(g, 1099);
    CHECK_EQ_INT(a.done, 0);
    grp_tick(g, 1100);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(a.generation, 4);
    CHECK_EQ_INT(a.nmembers, 1);
    CHECK_EQ_INT(grp_heartbeat(g, "g", 3, b.member, 1100), SL_ERR_UNKNOWN_MEMBER_ID);
    join(g, "g", "", "roundrobin", t, 1, 10000, 1200, &b);
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 1200, &a);
    CHECK_EQ_INT(a.generation, 5);
    CHECK_EQ_INT(b.generation, 5);
    /* A parked join replaced by a newer one of the same member. */
    join(g, "g", "", "roundrobin", t, 1, 10000, 1210, &c);
    ans_t old;
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 1210, &old);
    CHECK_EQ_INT(old.done, 0);
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 1211, &a);
    CHECK_EQ_INT(old.done, 1);
    CHECK_EQ_INT(old.code, SL_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(a.done, 0);
    join(g, "g", b.member, "roundrobin", t, 1, 10000, 1212, &b);
    CHECK_EQ_INT(a.generation, 6);
    CHECK_EQ_INT(b.generation, 6);
    CHECK_EQ_INT(c.generation, 6);
    CHECK_EQ_INT(c.nmembers, 3);
    /* Mixing assignors that share nothing, or modes, is refused. */
    join(g, "g", "", "range", t, 1, 10000, 1300, &c);
    CHECK_EQ_INT(c.code, SL_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* Shutdown answers parked joins. */
    join(g, "g", "", "roundrobin", t, 1, 10000, 1400, &c);
    CHECK_EQ_INT(c.done, 0);
    grp_close(g);
    CHECK_EQ_INT(c.done, 1);
    CHECK_EQ_INT(c.code, SL_ERR_REBALANCE_IN_PROGRESS);
    join(g, "g", a.member, "roundrobin", t, 1, 10000, 1500, &a);
    CHECK_EQ_INT(a.code, SL_ERR_REBALANCE_IN_PROGRESS);
    grp_free(g);
}

static void test_initial_delay(void)
{
    grp_conf_t dc = conf;
    dc.initial_delay_ms = 500;
    ntopics = 1;
    topics[0] = (topic_t){"t1", 3};
    grp_coord_t *g = grp_new(&dc, parts_of, NULL);
    const char *t[] = {"t1"};
    ans_t a, b, c;
    join(g, "g", "", "range", t, 1, 10000, 0, &a);
    join(g, "g", "", "range", t, 1, 10000, 100, &b);
    join(g, "g", "", "range", t, 1, 10000, 200, &c);
    grp_tick(g, 499);
    CHECK_EQ_INT(a.done + b.done + c.done, 0);
    grp_tick(g, 500);
    CHECK_EQ_INT(a.done + b.done + c.done, 3);
    CHECK_EQ_INT(a.generation, 1);
    CHECK_EQ_INT(c.generation, 1);
    CHECK_EQ_INT(a.nmembers, 3);
    int seen[16][64] = {{0}};
    ans_t s;
    sync_(g, "g", 1, a.member, 500, &s);
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 1);
    sync_(g, "g", 1, b.member, 500, &s);
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 1);
    sync_(g, "g", 1, c.member, 500, &s);
    CHECK_EQ_INT(count_assignment(s.bytes, s.len, seen), 1);
    for (int p = 0; p < 3; p++) CHECK_EQ_INT(seen[0][p], 1);
    grp_free(g);
}

/* Client-side assignment (the Kafka listener's mode). */
static void cjoin(grp_coord_t *g, const char *member, const char *meta, int64_t now, ans_t *a)
{
    char mid[300];
    snprintf(mid, sizeof mid, "%s", member);
    member = mid;
    memset(a, 0, sizeof *a);
    grp_protocol_t p[2] = {{"range", (const uint8_t *)meta, strlen(meta)},
                           {"roundrobin", (const uint8_t *)"rr", 2}};
    grp_join_req_t r = {.group_id = "k",
                        .member_id = member,
                        .client_id = "rdkafka",
                        .host = "/127.0.0.1",
                        .session_ms = 6000,
                        .rebalance_ms = 300000,
                        .protocol_type = "consumer",
                        .mode = GRP_MODE_CLIENT,
                        .protocols = p,
                        .nprotocols = 2};
    grp_join(g, &r, now, on_join, a);
}

static void test_client_mode(void)
{
    grp_coord_t *g = grp_new(&conf, parts_of, NULL);
    ans_t a, b, sa, sb;
    cjoin(g, "", "meta-a", 0, &a);
    CHECK_EQ_INT(a.generation, 1);
    cjoin(g, "", "meta-b", 0, &b);
    cjoin(g, a.member, "meta-a", 0, &a);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(a.nmembers, 2);
    CHECK(strcmp(a.protocol, "range") == 0);
    CHECK(a.meta0_len == 6 && memcmp(a.meta0, "meta-", 5) == 0);
    grp_desc_t d;
    CHECK_EQ_INT(grp_describe(g, "k", &d), SL_OK);
    CHECK_EQ_INT(d.state, GRP_COMPLETING_REBALANCE);
    grp_desc_free(&d);
    const char *leader = a.leader, *follower = strcmp(a.leader, a.member) ? a.member : b.member;
    CHECK_EQ_INT(grp_commit_check(g, "k", 2, follower, 0), SL_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(grp_heartbeat(g, "k", 2, follower, 0), SL_OK);
    /* The follower parks until the leader's assignment arrives. */
    memset(&sb, 0, sizeof sb);
    grp_sync(g, "k", 2, follower, NULL, 0, 10, on_sync, &sb);
    CHECK_EQ_INT(sb.done, 0);
    int32_t p0[] = {0}, p1[] = {1};
    grp_tp_t t0 = {"t", p0, 1}, t1 = {"t", p1, 1};
    grp_assign_t x0 = {&t0, 1}, x1 = {&t1, 1};
    size_t l0, l1;
    uint8_t *b0 = grp_assignment_encode(&x0, &l0), *b1 = grp_assignment_encode(&x1, &l1);
    grp_member_assignment_t as[2] = {{leader, b0, l0}, {follower, b1, l1}};
    memset(&sa, 0, sizeof sa);
    grp_sync(g, "k", 2, leader, as, 2, 20, on_sync, &sa);
    CHECK_EQ_INT(sa.done, 1);
    CHECK_EQ_INT(sb.done, 1);
    CHECK_EQ_INT(sb.code, SL_OK);
    CHECK(sb.len == l1 && memcmp(sb.bytes, b1, l1) == 0);
    CHECK(sa.len == l0 && memcmp(sa.bytes, b0, l0) == 0);
    free(b0);
    free(b1);
    CHECK_EQ_INT(grp_describe(g, "k", &d), SL_OK);
    CHECK_EQ_INT(d.state, GRP_STABLE);
    CHECK_EQ_INT(d.nmembers, 2);
    grp_desc_free(&d);
    /* A broker-mode member cannot join a client-mode group. */
    ans_t c;
    const char *t[] = {"t"};
    join(g, "k", "", "range", t, 1, 6000, 30, &c);
    CHECK_EQ_INT(c.code, SL_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* The leader dies while a follower waits in a new round: its session
     * ends and the follower's parked sync is released. */
    cjoin(g, follower, "meta-changed", 40, &b);
    CHECK_EQ_INT(b.done, 0);
    grp_tick(g, 40 + 300001); /* rebalance timeout: the leader never rejoined */
    CHECK_EQ_INT(b.done, 1);
    CHECK_EQ_INT(b.generation, 4 - 1); /* generation 3 with the follower alone */
    CHECK_EQ_INT(b.nmembers, 1);
    grp_free(g);
}

int main(void)
{
    test_encodings();
    test_assignors_fixed();
    test_assignors_random();
    test_validation();
    test_lifecycle();
    test_leave_and_rebalance_timeout();
    test_initial_delay();
    test_client_mode();
    return check_exit();
}
