/* test_groups_crash.c — committed group offsets and topic metadata survive
 * SIGKILL exactly as they were acknowledged.
 *
 * Set-up (all acknowledged before any kill): topics with non-default
 * partition counts and configs, created with libsluice's admin API, and one
 * topic created and then deleted. The broker runs with
 * auto.create.topics.enable=false, so asking about a missing topic cannot
 * create it. Each cycle then races a SIGKILL (after a random 50–500 ms)
 * against:
 *
 *  - NGROUP committer threads, one libsluice consumer each (group g<i>, no
 *    membership), committing synchronously, over and over, increasing offsets
 *    for 3 + 2 partitions of two topics (a commit is answered only after its
 *    fdatasync);
 *  - a thread creating topics with the admin API (partition counts and a
 *    retention.ms override that depend on the name).
 *
 * After each restart: every acknowledged commit is the committed offset
 * (exactly: the last acknowledged value, or the one that was in flight at
 * the kill — an unanswered commit may or may not have landed, nothing
 * else); every acknowledged topic exists with its partition count and its
 * topic.conf holds exactly its overrides; a topic whose creation was in
 * flight either does not exist or exists whole; the deleted topic stays
 * deleted. libsluice has no describe-configs call, so configs are checked
 * in DATA/topics/<t>/topic.conf and, at the end, by their effect:
 * max.message.bytes rejects a larger batch and segment.bytes rolls segments.
 *
 * Options: --cycles N (default 15), --seed S.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "rlib.h"
#include "sluice/sluice.h"

#define NGROUP     3
#define MAX_TOPICS 4096

static harness_t h;
static const char *const extra[] = {"--auto.create.topics.enable=false",
                                    "--group.initial.rebalance.delay.ms=0", NULL};
static atomic_int stop_flag;

/* ---- expected topics ----------------------------------------------------------- */

typedef struct etopic {
    char name[64];
    int32_t partitions;
    char configs[4][64]; /* "key=value" */
    int nconf;
    int state; /* 1 acknowledged, 2 creation in flight at a kill (may or may not exist) */
} etopic_t;

static etopic_t topics[MAX_TOPICS];
static int ntopics;
static pthread_mutex_t topics_mu = PTHREAD_MUTEX_INITIALIZER;

static etopic_t *add_topic(const char *name, int32_t parts, const char *const *cfg, int n)
{
    pthread_mutex_lock(&topics_mu);
    CHECK_FATAL(ntopics < MAX_TOPICS);
    etopic_t *t = &topics[ntopics++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->partitions = parts;
    for (int i = 0; i < n && i < 4; i++)
        snprintf(t->configs[i], sizeof t->configs[i], "%s", cfg[i]);
    t->nconf = n;
    pthread_mutex_unlock(&topics_mu);
    return t;
}

static int create_topic(sluice_admin_t *a, etopic_t *t, char *err, size_t errlen)
{
    const char *cfg[4];
    for (int i = 0; i < t->nconf; i++) cfg[i] = t->configs[i];
    return sluice_admin_create_topic(a, t->name, t->partitions, cfg, (size_t)t->nconf, err, errlen);
}

/* topic.conf holds "partitions=N" and exactly the overrides. */
static int conf_matches(const etopic_t *t, char *why, size_t cap)
{
    char path[700];
    snprintf(path, sizeof path, "%s/topics/%s/topic.conf", h.data, t->name);
    size_t len = 0;
    uint8_t *b = rl_slurp(path, &len);
    if (!b) {
        snprintf(why, cap, "%s missing", path);
        return 0;
    }
    char *s = malloc(len + 1);
    CHECK_FATAL(s != NULL);
    memcpy(s, b, len);
    s[len] = 0;
    free(b);
    int found[4] = {0}, parts_ok = 0, extra_lines = 0;
    char want_parts[32];
    snprintf(want_parts, sizeof want_parts, "partitions=%d", (int)t->partitions);
    for (char *save = NULL, *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#' || l[0] == '\0') continue;
        if (strcmp(l, want_parts) == 0) {
            parts_ok = 1;
            continue;
        }
        int hit = 0;
        for (int i = 0; i < t->nconf; i++)
            if (strcmp(l, t->configs[i]) == 0) found[i] = hit = 1;
        if (!hit) extra_lines++;
    }
    free(s);
    int ok = parts_ok && !extra_lines;
    for (int i = 0; i < t->nconf; i++) ok = ok && found[i];
    if (!ok)
        snprintf(why, cap, "%s: partitions line %s, %d unexpected lines, overrides %s", path,
                 parts_ok ? "ok" : "missing", extra_lines,
                 t->nconf ? "some missing or different" : "none expected");
    return ok;
}

/* ---- committers ------------------------------------------------------------------ */

typedef struct committer {
    pthread_t th;
    int g;
    char group[16];
    int64_t acked;    /* last acknowledged value (0: none yet) */
    int64_t inflight; /* value of a commit left unanswered by the kill (0: none) */
    int64_t next;     /* next value to commit */
    int64_t commits;  /* acknowledged in this cycle */
    int unexpected;   /* an answer other than success or a transport error */
} committer_t;

static committer_t comm[NGROUP];

/* The partitions a group commits, and the offset value v means for each. */
static const struct {
    const char *topic;
    int32_t partition;
} ctps[] = {{"gc-conf", 0}, {"gc-conf", 1}, {"gc-conf", 2}, {"gc-wide", 3}, {"gc-wide", 6}};
#define NCTP ((int)(sizeof ctps / sizeof ctps[0]))

static int64_t offset_for(int g, int64_t v, int k)
{
    return v * 100 + g * 10 + k;
}

static sluice_tp_list_t *commit_list(int g, int64_t v)
{
    sluice_tp_list_t *l = sluice_tp_list_new(NCTP);
    for (int k = 0; k < NCTP; k++)
        sluice_tp_list_add(l, ctps[k].topic, ctps[k].partition)->offset = offset_for(g, v, k);
    return l;
}

static void *commit_main(void *arg)
{
    committer_t *c = arg;
    const char *kv[] = {"group.id", c->group, "enable.auto.commit", "false", NULL};
    sluice_consumer_t *k = rl_consumer(&h, kv);
    while (!atomic_load(&stop_flag)) {
        int64_t v = c->next++;
        sluice_tp_list_t *l = commit_list(c->g, v);
        c->inflight = v;
        int rc = sluice_consumer_commit(k, l, 0);
        int per = 0;
        for (size_t i = 0; i < l->cnt; i++)
            if (l->elems[i].err) per = l->elems[i].err;
        sluice_tp_list_destroy(l);
        if (rc == SLUICE_OK && per == 0) {
            c->acked = v;
            c->inflight = 0;
            c->commits++;
            continue;
        }
        /* The broker is gone: v stays in flight (its fate is unknown). */
        if (rc != SLUICE_ERR__TRANSPORT && rc != SLUICE_ERR__TIMED_OUT) {
            c->unexpected = rc ? rc : per;
            c->inflight = 0; /* refused: must not have landed */
        }
        break;
    }
    sluice_consumer_destroy(k);
    return NULL;
}

/* ---- topic creator ------------------------------------------------------------------ */

typedef struct creator {
    pthread_t th;
    int cycle;
    int created;
    int unexpected;
    char unexpected_msg[300];
} creator_t;

static void racing_topic(etopic_t *t, int cycle, int k)
{
    char name[64], cfg[64];
    snprintf(name, sizeof name, "gc-r%d-%d", cycle, k);
    snprintf(cfg, sizeof cfg, "retention.ms=%d", 1000000 + cycle * 1000 + k);
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->partitions = 1 + k % 5;
    snprintf(t->configs[0], sizeof t->configs[0], "%s", cfg);
    t->nconf = 1;
}

static void *create_main(void *arg)
{
    creator_t *cr = arg;
    sluice_admin_t *a = rl_admin(&h);
    if (!a) return NULL;
    rl_rng_t rng = {(uint64_t)cr->cycle * 7919u + 1};
    for (int k = 0; !atomic_load(&stop_flag) && k < 200; k++) {
        if (k) usleep((useconds_t)rl_range(&rng, 2000, 15000)); /* spread over the window */
        etopic_t t;
        racing_topic(&t, cr->cycle, k);
        etopic_t *e = add_topic(t.name, t.partitions, (const char *const[]){t.configs[0]}, 1);
        e->state = 2; /* in flight */
        char err[256] = "";
        int rc = create_topic(a, e, err, sizeof err);
        if (rc == SLUICE_OK) {
            e->state = 1;
            cr->created++;
            continue;
        }
        if (rc != SLUICE_ERR__TRANSPORT && rc != SLUICE_ERR__TIMED_OUT) {
            cr->unexpected = rc;
            snprintf(cr->unexpected_msg, sizeof cr->unexpected_msg, "create %s: %s (%s)", e->name,
                     sluice_err2str(rc), err);
        }
        break;
    }
    sluice_admin_destroy(a);
    return NULL;
}

/* ---- checks ------------------------------------------------------------------------- */

typedef struct seen_topic {
    const char *name;
    int partitions;
} seen_topic_t;

static int cmp_seen(const void *a, const void *b)
{
    return strcmp(((const seen_topic_t *)a)->name, ((const seen_topic_t *)b)->name);
}

static int64_t committed_of(sluice_consumer_t *k, int g, int64_t *offs)
{
    sluice_tp_list_t *l = commit_list(g, 0);
    int rc = sluice_consumer_committed(k, l, 10000);
    CHECK_MSG(rc == SLUICE_OK, "committed() for g%d: %s", g, sluice_err2str(rc));
    for (int i = 0; i < NCTP; i++) offs[i] = l->elems[i].offset;
    sluice_tp_list_destroy(l);
    return rc;
}

/* Returns what was acknowledged and is not there: missing or wrong topics,
 * commits that are not the acknowledged (or in-flight) value. */
static int64_t check_state(const char *when, int cycle, uint64_t seed)
{
    int64_t lost = 0;
    /* Topics: one describe of them all. */
    sluice_admin_t *a = rl_admin(&h);
    CHECK_FATAL(a != NULL);
    sluice_tp_list_t *all = NULL;
    char err[256] = "";
    int rc = sluice_admin_describe_topics(a, NULL, 0, &all, err, sizeof err);
    sluice_admin_destroy(a);
    CHECK_MSG(rc == SLUICE_OK && all, "describe all topics: %s (%s)", sluice_err2str(rc), err);
    size_t nseen = 0;
    seen_topic_t *seen = calloc(all ? all->cnt + 1 : 1, sizeof *seen);
    CHECK_FATAL(seen != NULL);
    for (size_t i = 0; all && i < all->cnt; i++) {
        if (nseen && strcmp(seen[nseen - 1].name, all->elems[i].topic) == 0) {
            seen[nseen - 1].partitions++;
            continue;
        }
        seen[nseen].name = all->elems[i].topic;
        seen[nseen].partitions = all->elems[i].err ? -1 : 1;
        nseen++;
    }
    qsort(seen, nseen, sizeof *seen, cmp_seen);
    int missing = 0, wrong = 0, half = 0, present_inflight = 0;
    for (int i = 0; i < ntopics; i++) {
        etopic_t *t = &topics[i];
        seen_topic_t key = {t->name, 0};
        seen_topic_t *f = bsearch(&key, seen, nseen, sizeof *seen, cmp_seen);
        int n = f ? f->partitions : -1;
        char why[800] = "";
        if (t->state == 0) { /* deleted */
            if (n >= 0) {
                wrong++;
                fprintf(stderr, "%s: deleted topic %s is back with %d partitions\n", when, t->name,
                        n);
            }
            continue;
        }
        if (n < 0) {
            if (t->state == 1) {
                missing++;
                fprintf(stderr,
                        "LOST: %s (cycle %d, seed %" PRIu64 "): acknowledged topic %s is missing\n",
                        when, cycle, seed, t->name);
            }
            continue;
        }
        if (t->state == 2) present_inflight++;
        if (n != t->partitions || !conf_matches(t, why, sizeof why)) {
            if (t->state == 1)
                wrong++;
            else
                half++;
            fprintf(stderr,
                    "%s (cycle %d, seed %" PRIu64 "): topic %s: %d partitions (want %d) %s\n", when,
                    cycle, seed, t->name, n, (int)t->partitions, why);
        }
        if (t->state == 2) t->state = 1; /* it exists now: from here on it must stay */
    }
    lost += missing + wrong;
    CHECK_MSG(missing == 0 && wrong == 0 && half == 0,
              "%s: %d acknowledged topics missing, %d wrong, %d half-created", when, missing, wrong,
              half);
    /* Nothing else exists (but the offsets topic). */
    int expected_present = 0;
    for (int i = 0; i < ntopics; i++) expected_present += topics[i].state != 0;
    int others = 0;
    for (size_t i = 0; i < nseen; i++) {
        int known = strcmp(seen[i].name, "__consumer_offsets") == 0;
        for (int k = 0; !known && k < ntopics; k++)
            known = topics[k].state != 0 && strcmp(topics[k].name, seen[i].name) == 0;
        if (!known && others++ < 5)
            fprintf(stderr, "%s: unexpected topic %s\n", when, seen[i].name);
    }
    CHECK_MSG(others == 0, "%s: %d topics nobody created", when, others);
    (void)expected_present;
    free(seen);
    sluice_tp_list_destroy(all);
    /* Topics whose creation was in flight and that did not make it: a later
     * create of the same name must work, so drop them from the list. */
    int w = 0;
    for (int i = 0; i < ntopics; i++)
        if (topics[i].state != 2) topics[w++] = topics[i];
    ntopics = w;

    /* Committed offsets. */
    for (int g = 0; g < NGROUP; g++) {
        committer_t *c = &comm[g];
        const char *kv[] = {"group.id", c->group, "enable.auto.commit", "false", NULL};
        sluice_consumer_t *k = rl_consumer(&h, kv);
        int64_t offs[NCTP];
        committed_of(k, g, offs);
        sluice_consumer_destroy(k);
        /* All partitions of one commit carry the same value v. */
        int64_t v_seen = -1;
        int consistent = 1;
        for (int i = 0; i < NCTP; i++) {
            int64_t v = offs[i] < 0 ? 0 : (offs[i] - g * 10 - i) / 100;
            if (offs[i] >= 0 && offs[i] != offset_for(g, v, i)) consistent = 0;
            if (i == 0)
                v_seen = v;
            else if (v != v_seen)
                consistent = 0;
        }
        int ok = consistent && (v_seen == c->acked || (c->inflight && v_seen == c->inflight));
        if (c->acked == 0 && !c->inflight) ok = ok && offs[0] == SLUICE_OFFSET_INVALID;
        CHECK_MSG(ok,
                  "%s (cycle %d, seed %" PRIu64 "): group %s committed value %" PRId64
                  " (offsets %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                  "); acknowledged %" PRId64 ", in flight %" PRId64,
                  when, cycle, seed, c->group, v_seen, offs[0], offs[1], offs[2], offs[3], offs[4],
                  c->acked, c->inflight);
        lost += !ok;
        /* What survived is now the acknowledged state. */
        if (ok && v_seen > c->acked) c->acked = v_seen;
        c->inflight = 0;
        if (c->next <= c->acked) c->next = c->acked + 1;
    }
    return lost;
}

/* configs by their effect, at the end */
typedef struct big_dr {
    int err;
    int64_t offset;
    int n;
} big_dr_t;

static void big_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    big_dr_t *d = opaque;
    d->err = m->err;
    d->offset = m->offset;
    d->n++;
}

static void check_config_effects(void)
{
    /* max.message.bytes=2048 on gc-conf: a 3000-byte record is refused by
     * the broker, a 1000-byte one is taken. */
    big_dr_t d = {0, -1, 0};
    /* batch.size 1200: one 1000-byte record per batch */
    const char *kv[] = {"acks", "all",        "linger.ms", "0", "retries",
                        "0",    "batch.size", "1200",      NULL};
    sluice_producer_t *p = rl_producer(&h, kv, big_cb, &d);
    static char v[3000];
    memset(v, 'm', sizeof v);
    CHECK_EQ_INT(sluice_produce(p, "gc-conf", 1, NULL, 0, v, sizeof v, NULL, 0, 0, NULL), 0);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    CHECK_MSG(d.n == 1 && d.err == SLUICE_ERR_MESSAGE_TOO_LARGE,
              "3000-byte record to gc-conf (max.message.bytes=2048): %s", sluice_err2str(d.err));
    d.n = 0;
    CHECK_EQ_INT(sluice_produce(p, "gc-conf", 1, NULL, 0, v, 1000, NULL, 0, 0, NULL), 0);
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    CHECK_MSG(d.n == 1 && d.err == 0, "1000-byte record to gc-conf: %s", sluice_err2str(d.err));
    /* segment.bytes=65536: 200 KB in 1000-byte records makes ≥ 3 segments
     * (a flush every 40 records keeps requests under segment.bytes). */
    for (int i = 0; i < 200; i++) {
        sluice_produce(p, "gc-conf", 2, NULL, 0, v, 1000, NULL, 0, 0, NULL);
        if (i % 40 == 39) sluice_producer_flush(p, 10000);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 10000), SLUICE_OK);
    CHECK_EQ_INT(d.err, 0);
    sluice_producer_destroy(p);
    char dir[600];
    rl_part_dir(&h, "gc-conf", 2, dir, sizeof dir);
    int64_t bases[64];
    int nseg = rl_segments(dir, bases, 64);
    CHECK_MSG(nseg >= 3, "gc-conf/2 has %d segments after 200 KB (segment.bytes=65536)", nseg);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 15, &o);
    rl_allow_flags(&o, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("groups_crash: seed %" PRIu64 " (rerun with --seed %" PRIu64 "), %d cycles\n", o.seed,
           o.seed, o.cycles);
    rl_rng_t rng = {o.seed};
    harness_init(&h, "groups-crash");
    rl_guard(&h);
    CHECK_FATAL(harness_start(&h, extra) == 0);

    sluice_admin_t *a = rl_admin(&h);
    CHECK_FATAL(a != NULL);
    char err[256];
    const char *conf_cfg[] = {"retention.ms=123456789", "segment.bytes=65536",
                              "max.message.bytes=2048", "index.interval.bytes=1024"};
    const char *wide_cfg[] = {"retention.bytes=10485760", "flush.messages=1000"};
    etopic_t *t = add_topic("gc-conf", 3, conf_cfg, 4);
    CHECK_EQ_INT(create_topic(a, t, err, sizeof err), 0);
    t->state = 1;
    t = add_topic("gc-wide", 7, wide_cfg, 2);
    CHECK_EQ_INT(create_topic(a, t, err, sizeof err), 0);
    t->state = 1;
    t = add_topic("gc-plain", 1, NULL, 0);
    CHECK_EQ_INT(create_topic(a, t, err, sizeof err), 0);
    t->state = 1;
    t = add_topic("gc-gone", 2, NULL, 0);
    CHECK_EQ_INT(create_topic(a, t, err, sizeof err), 0);
    CHECK_EQ_INT(sluice_admin_delete_topic(a, "gc-gone", err, sizeof err), 0);
    t->state = 0; /* deleted, acknowledged */
    sluice_admin_destroy(a);
    for (int g = 0; g < NGROUP; g++) {
        comm[g].g = g;
        snprintf(comm[g].group, sizeof comm[g].group, "g%d", g);
        comm[g].next = 1;
    }

    int64_t total_commits = 0, total_topics = 0, inflight_landed = 0, inflight_total = 0, lost = 0;
    int cycles = 0;
    for (int cyc = 0; cyc < o.cycles; cyc++) {
        atomic_store(&stop_flag, 0);
        creator_t cr;
        memset(&cr, 0, sizeof cr);
        cr.cycle = cyc;
        for (int g = 0; g < NGROUP; g++) {
            comm[g].commits = 0;
            comm[g].unexpected = 0;
            CHECK_FATAL(pthread_create(&comm[g].th, NULL, commit_main, &comm[g]) == 0);
        }
        CHECK_FATAL(pthread_create(&cr.th, NULL, create_main, &cr) == 0);
        int delay = (int)rl_range(&rng, 50, 500);
        usleep((useconds_t)delay * 1000);
        int st = harness_stop(&h, SIGKILL);
        atomic_store(&stop_flag, 1);
        CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "cycle %d: the broker was not alive at the kill (status %#x)", cyc, st);
        for (int g = 0; g < NGROUP; g++) pthread_join(comm[g].th, NULL);
        pthread_join(cr.th, NULL);
        int64_t commits = 0, inflight = 0;
        for (int g = 0; g < NGROUP; g++) {
            CHECK_MSG(comm[g].unexpected == 0, "cycle %d: group %s commit: %s", cyc, comm[g].group,
                      sluice_err2str(comm[g].unexpected));
            commits += comm[g].commits;
            inflight += comm[g].inflight != 0;
        }
        CHECK_MSG(cr.unexpected == 0, "cycle %d: %s", cyc, cr.unexpected_msg);
        int64_t acked_before[NGROUP];
        for (int g = 0; g < NGROUP; g++) acked_before[g] = comm[g].acked;
        int64_t inflight_v[NGROUP];
        for (int g = 0; g < NGROUP; g++) inflight_v[g] = comm[g].inflight;
        if (harness_start(&h, extra) != 0) {
            CHECK_MSG(0, "cycle %d: sluiced did not restart (seed %" PRIu64 ")", cyc, o.seed);
            break;
        }
        lost += check_state("after SIGKILL", cyc, o.seed);
        for (int g = 0; g < NGROUP; g++)
            if (inflight_v[g] && comm[g].acked == inflight_v[g] && acked_before[g] != inflight_v[g])
                inflight_landed++;
        inflight_total += inflight;
        total_commits += commits;
        total_topics += cr.created;
        fprintf(stderr,
                "cycle %d: kill after %d ms; %" PRId64 " commits acknowledged, %" PRId64
                " in flight; %d topics created\n",
                cyc, delay, commits, inflight, cr.created);
        cycles++;
        if (check_failures) break;
    }
    /* A clean restart keeps it all too; then the configs' effects. */
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    lost += check_state("after a clean restart", cycles, o.seed);
    check_config_effects();
    printf("groups_crash: %d cycles, %" PRId64 " commits acknowledged, %" PRId64
           " in flight at a kill (%" PRId64 " of them landed), %" PRId64
           " topics created while racing the kill, lost %" PRId64 ", seed %" PRIu64 "\n",
           cycles, total_commits, inflight_total, inflight_landed, total_topics, lost, o.seed);
    harness_cleanup(&h);
    return check_exit();
}
