/* test_assign.c — the range and roundrobin assignors (broker/assign.c) on
 * their own: exact assignments for given members, subscriptions and
 * partition counts (uneven splits, members with different subscriptions,
 * missing topics, ids out of order or repeated), the GRP_MAX_ASSIGNED
 * bound, and the same answers from threads running them at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assign.h"
#include "check.h"
#include "errors.h"

/* ---- topics: passed through the callback's arg, not a global ------------------ */

typedef struct topic {
    const char *name;
    int32_t parts;
} topic_t;

typedef struct topics {
    const topic_t *t;
    size_t n;
} topics_t;

static int32_t parts_of(void *arg, const char *name)
{
    const topics_t *ts = arg;
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].name, name) == 0) return ts->t[i].parts;
    return 0;
}

/* "t1:0,1,2 t2:0", or "-" for nothing. */
static void show(const grp_assign_t *a, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->ntopics && at < len; i++) {
        at += (size_t)snprintf(buf + at, len - at, "%s%s:", i ? " " : "", a->topics[i].topic);
        for (size_t k = 0; k < a->topics[i].nparts && at < len; k++)
            at += (size_t)snprintf(buf + at, len - at, "%s%d", k ? "," : "",
                                   (int)a->topics[i].parts[k]);
    }
    if (a->ntopics == 0) snprintf(buf, len, "-");
}

#define MAXM 8

/* One case: members (id + subscription as "t1 t2"), topics, and what each
 * member, in the order given, must get from each assignor. */
typedef struct tcase {
    const char *what;
    topic_t topics[4];
    size_t ntopics;
    const char *ids[MAXM];
    const char *subs[MAXM];
    size_t n;
    const char *range[MAXM];
    const char *roundrobin[MAXM];
} tcase_t;

static const tcase_t cases[] = {
    {"everyone on two topics, ids out of order",
     {{"t1", 7}, {"t2", 3}},
     2,
     {"c", "a", "b"},
     {"t1 t2", "t1 t2", "t1 t2"},
     3,
     /* range: per topic, a then b then c; t1's 7 = 3+2+2 */
     {"t1:5,6 t2:2", "t1:0,1,2 t2:0", "t1:3,4 t2:1"},
     /* roundrobin: t1-0..6 then t2-0..2 dealt a,b,c,a,...; the turn runs on
      * across topics, so t2-0 goes to b */
     {"t1:2,5 t2:1", "t1:0,3,6 t2:2", "t1:1,4 t2:0"}},
    {"uneven: 10 partitions, 4 members",
     {{"t", 10}},
     1,
     {"a", "b", "c", "d"},
     {"t", "t", "t", "t"},
     4,
     {"t:0,1,2", "t:3,4,5", "t:6,7", "t:8,9"},
     {"t:0,4,8", "t:1,5,9", "t:2,6", "t:3,7"}},
    {"more members than partitions",
     {{"t", 2}},
     1,
     {"a", "b", "c"},
     {"t", "t", "t"},
     3,
     {"t:0", "t:1", "-"},
     {"t:0", "t:1", "-"}},
    {"different subscriptions",
     {{"t1", 3}, {"t2", 4}},
     2,
     {"a", "b", "c"},
     {"t1", "t1 t2", "t2"},
     3,
     /* range: t1 over a,b (2+1), t2 over b,c (2+2) */
     {"t1:0,1", "t1:2 t2:0,1", "t2:2,3"},
     /* roundrobin: t1-2's turn is c's, who skips it to a; t2-2's is a's,
      * who skips it to b */
     {"t1:0,2", "t1:1 t2:0,2", "t2:1,3"}},
    {"range's skew on single-partition topics; roundrobin spreads them",
     {{"x", 1}, {"y", 1}, {"z", 1}},
     3,
     {"a", "b"},
     {"x y z", "x y z"},
     2,
     {"x:0 y:0 z:0", "-"},
     {"x:0 z:0", "y:0"}},
    {"missing topics are skipped; a member may get nothing",
     {{"t", 3}, {"empty", 0}},
     2,
     {"a", "b", "c"},
     {"t gone", "empty", "t"},
     3,
     {"t:0,1", "-", "t:2"},
     {"t:0,2", "-", "t:1"}},
    {"repeated ids keep their input order",
     {{"t", 3}},
     1,
     {"x", "x"},
     {"t", "t"},
     2,
     {"t:0,1", "t:2"},
     {"t:0,2", "t:1"}},
};

/* Splits "t1 t2" into words pointing into buf. */
static size_t split(const char *s, char *buf, size_t len, char **words, size_t max)
{
    snprintf(buf, len, "%s", s);
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < max;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    return n;
}

/* Runs fn over case c; 0 when every member got what `want` says. */
static int run_case(const tcase_t *c, grp_assignor_fn fn, const char *const *want, int report)
{
    char bufs[MAXM][64], *words[MAXM][4];
    grp_assignor_member_t m[MAXM];
    grp_assign_t out[MAXM];
    topics_t ts = {c->topics, c->ntopics};
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < c->n; i++) {
        m[i].member_id = c->ids[i];
        m[i].topics = words[i];
        m[i].ntopics = split(c->subs[i], bufs[i], sizeof bufs[i], words[i], 4);
    }
    int bad = fn(m, c->n, parts_of, &ts, out) != SL_OK;
    for (size_t i = 0; i < c->n; i++) {
        char got[128];
        show(&out[i], got, sizeof got);
        if (strcmp(got, want[i]) != 0) {
            bad = 1;
            if (report)
                CHECK_MSG(0, "%s, %s: member %zu (%s) got \"%s\", wants \"%s\"", c->what,
                          fn == grp_assign_range ? "range" : "roundrobin", i, c->ids[i], got,
                          want[i]);
        }
        grp_assign_free(&out[i]);
    }
    return bad;
}

static void test_cases(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_EQ_INT(run_case(&cases[k], grp_assign_range, cases[k].range, 1), 0);
        CHECK_EQ_INT(run_case(&cases[k], grp_assign_roundrobin, cases[k].roundrobin, 1), 0);
    }
}

/* The members' order in the input changes nothing but which out[] slot
 * holds whose assignment. */
static void test_input_order(void)
{
    const tcase_t *c = &cases[3]; /* different subscriptions */
    tcase_t r = *c;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->n - 1 - i;
        r.ids[i] = c->ids[j];
        r.subs[i] = c->subs[j];
        r.range[i] = c->range[j];
        r.roundrobin[i] = c->roundrobin[j];
    }
    CHECK_EQ_INT(run_case(&r, grp_assign_range, r.range, 1), 0);
    CHECK_EQ_INT(run_case(&r, grp_assign_roundrobin, r.roundrobin, 1), 0);
}

static void test_bound(void)
{
    char *t[] = {"big"};
    grp_assignor_member_t m[2] = {{"a", t, 1}, {"b", t, 1}};
    topic_t at_bound = {"big", GRP_MAX_ASSIGNED}, past = {"big", GRP_MAX_ASSIGNED + 1};
    for (int which = 0; which < 2; which++) {
        grp_assignor_fn fn = which ? grp_assign_roundrobin : grp_assign_range;
        grp_assign_t out[2];
        topics_t ts = {&at_bound, 1};
        memset(out, 0, sizeof out);
        CHECK_EQ_INT(fn(m, 2, parts_of, &ts, out), SL_OK);
        CHECK(out[0].ntopics == 1 && out[0].topics[0].nparts == GRP_MAX_ASSIGNED / 2);
        grp_assign_free(&out[0]);
        grp_assign_free(&out[1]);
        ts.t = &past;
        CHECK_EQ_INT(fn(m, 2, parts_of, &ts, out), SL_ERR_INVALID_REQUEST);
        CHECK(out[0].ntopics == 0 && out[1].ntopics == 0);
        grp_assign_free(&out[0]);
        grp_assign_free(&out[1]);
    }
}

static void test_names(void)
{
    CHECK(grp_assignor("range") == grp_assign_range);
    CHECK(grp_assignor("roundrobin") == grp_assign_roundrobin);
    CHECK(grp_assignor("Range") == NULL);
    CHECK(grp_assignor("sticky") == NULL);
    CHECK(grp_assignor("") == NULL);
}

/* Threads running assignors at once get the single-threaded answers (the
 * member sort once went through a global under a lock). */
static void *worker(void *arg)
{
    intptr_t bad = 0;
    (void)arg;
    for (int round = 0; round < 200; round++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            bad += run_case(&cases[k], grp_assign_range, cases[k].range, 0);
            bad += run_case(&cases[k], grp_assign_roundrobin, cases[k].roundrobin, 0);
        }
    return (void *)bad;
}

static void test_threads(void)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++) CHECK_FATAL(pthread_create(&th[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK_EQ_INT((intptr_t)bad, 0);
    }
}

int main(void)
{
    test_cases();
    test_input_order();
    test_bound();
    test_names();
    test_threads();
    return check_exit();
}
