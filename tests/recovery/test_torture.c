/* test_torture.c — sluiced never loses an acknowledged message across
 * SIGKILL. Each cycle: NPROD libsluice producer threads (half acks=all, half
 * acks=1; retries=0 so the client never resends, and a record can appear in
 * the log at most once) write self-checking, sequence-numbered messages to
 * 2 topics × 4 partitions and record every acknowledged (partition, offset,
 * producer, sequence) from their delivery reports; the broker is SIGKILLed
 * after a random 50–500 ms (seeded PRNG), restarted on the same port, and
 * the part of the log written in this cycle is read back with the libsluice
 * consumer (CRC checked: any error fails). Proved per cycle:
 *
 *  - every acks=all acknowledged message is in the log exactly once, at its
 *    acknowledged offset, with its exact content;
 *  - every acks=1 acknowledged message is there too: acks=1 answers after the
 *    write() into the page cache, and the page cache survives the death of
 *    the process (it would not survive a power loss: test_powerloss.c);
 *  - offsets are dense from 0, no record fails its CRC or its content check,
 *    no record appears twice, per producer and partition the log keeps
 *    produce order, and nothing verified in an earlier cycle changes (full
 *    re-read every --full-every cycles and at the end);
 *  - the log accepts appends after the restart (one acks=all message per
 *    partition, at exactly the old log end, read back);
 *  - a group's offsets, committed synchronously over and over by a thread
 *    racing the kill, come back as the last acknowledged commit (or the one
 *    in flight), the same for every partition of that commit.
 *
 * --synclog turns the SIGKILL into an exact power loss: sluiced runs with
 * the synclog.c shim preloaded, which logs what every fdatasync/fsync made
 * durable, and after the kill each segment file is cut back to that (data
 * only in the page cache is gone). acks=all messages and acknowledged
 * commits must all survive; acks=1 ones may be lost (counted, allowed); the
 * run must have cut something, or it proved nothing.
 *
 * --inject-loss is the checker's self-test: between kill and restart this
 * cycle's data of one partition is cut away, and the run passes only if the
 * loss is reported.
 *
 * Prints one greppable summary line (docs/RELIABILITY.md quotes it):
 *   torture: N cycles, A acks=all messages acknowledged, B acks=1 messages
 *   acknowledged, lost 0, duplicated 0, seed S
 * (torture-powerloss: ... with --synclog). Options: --cycles N (default 20),
 * --seed S (or $SLUICE_SEED), --long (a full re-read every 25 cycles instead
 * of 10; used by the torture label), --synclog, --inject-loss.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "rlib.h"
#include "sluice/sluice.h"

#define NTOPICS  2
#define PPT      4 /* partitions per topic */
#define NSLOT    (NTOPICS * PPT)
#define NPROD    4
#define PID_SPAN (NPROD + 1) /* producer ids per cycle; the last is the append check's */
#define RATE     40000       /* messages per second per producer, at most */

static const char *const topic_names[NTOPICS] = {"torture-a", "torture-b"};
static harness_t h;
static atomic_int stop_flag;

typedef struct ack {
    int32_t slot;
    int64_t offset;
    uint64_t seq;
} ack_t;

typedef struct prod {
    pthread_t th;
    int idx;
    uint32_t pid;
    int acks_all;
    rl_rng_t rng;
    uint64_t max_msgs;
    uint64_t produced; /* sequence numbers 0..produced-1 were queued */
    ack_t *acks;
    size_t nacks, cap;
    int64_t failed;         /* delivery reports with an error (not a test failure) */
    int64_t produce_errors; /* sluice_produce() errors other than a full queue */
    int last_err;
} prod_t;

/* What the log holds, per partition slot: v[offset] = rl_pack(pid, seq). */
typedef struct slotmap {
    uint64_t *v;
    int64_t n, cap;
} slotmap_t;

static slotmap_t map[NSLOT];

static int slot_of(const char *topic, int32_t partition)
{
    for (int t = 0; t < NTOPICS; t++)
        if (topic && strcmp(topic, topic_names[t]) == 0 && partition >= 0 && partition < PPT)
            return t * PPT + partition;
    return -1;
}

static void map_set(slotmap_t *m, int64_t off, uint64_t v)
{
    if (off >= m->cap) {
        int64_t nc = m->cap ? m->cap : 4096;
        while (nc <= off) nc *= 2;
        uint64_t *nv = realloc(m->v, (size_t)nc * sizeof *nv);
        CHECK_FATAL(nv != NULL);
        memset(nv + m->cap, 0, (size_t)(nc - m->cap) * sizeof *nv);
        m->v = nv;
        m->cap = nc;
    }
    m->v[off] = v;
    if (off + 1 > m->n) m->n = off + 1;
}

/* ---- producers ------------------------------------------------------------------- */

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    prod_t *pr = opaque;
    if (m->err != SLUICE_OK || m->offset < 0) {
        pr->failed++;
        pr->last_err = m->err;
        return;
    }
    int slot = slot_of(m->topic, m->partition);
    CHECK_FATAL(slot >= 0);
    if (pr->nacks == pr->cap) {
        pr->cap = pr->cap ? pr->cap * 2 : 65536;
        ack_t *na = realloc(pr->acks, pr->cap * sizeof *na);
        CHECK_FATAL(na != NULL);
        pr->acks = na;
    }
    pr->acks[pr->nacks++] = (ack_t){slot, m->offset, (uint64_t)(uintptr_t)m->opaque};
}

static void key_of(uint32_t pid, uint64_t seq, char *k, size_t cap, size_t *klen)
{
    int n = snprintf(k, cap, "k%" PRIu32 "-%" PRIu64, pid, seq % 97);
    *klen = (size_t)n;
}

static void *prod_main(void *arg)
{
    prod_t *pr = arg;
    static const char *const batch_sizes[] = {"4096", "16384", "65536", "262144"};
    const char *kv[] = {"acks",
                        pr->acks_all ? "all" : "1",
                        "retries",
                        "0",
                        "linger.ms",
                        pr->idx % 2 ? "1" : "5",
                        "batch.size",
                        batch_sizes[rl_range(&pr->rng, 0, 3)],
                        "compression.type",
                        pr->idx == 3 ? "lz4" : "none",
                        "max.block.ms",
                        "200",
                        "delivery.timeout.ms",
                        "20000",
                        "request.timeout.ms",
                        "10000",
                        NULL};
    sluice_producer_t *p = rl_producer(&h, kv, dr_cb, pr);
    char buf[512], key[32];
    int64_t t0 = sl_mono_ms();
    while (!atomic_load(&stop_flag)) {
        /* At most RATE messages a second, so 200 cycles stay a few GiB. */
        int64_t allowed = (sl_mono_ms() - t0 + 1) * RATE / 1000;
        if (pr->produced >= pr->max_msgs || (int64_t)pr->produced >= allowed) {
            sluice_producer_poll(p, 1);
            continue;
        }
        uint64_t seq = pr->produced;
        int slot = (int)rl_range(&pr->rng, 0, NSLOT - 1);
        size_t len = rl_payload(buf, sizeof buf, pr->pid, seq,
                                (size_t)rl_range(&pr->rng, RL_PAYLOAD_MIN, 240));
        size_t klen = 0;
        if (pr->idx % 2 == 0) key_of(pr->pid, seq, key, sizeof key, &klen);
        int rc = sluice_produce(p, topic_names[slot / PPT], slot % PPT, klen ? key : NULL, klen,
                                buf, len, NULL, 0, 0, (void *)(uintptr_t)seq);
        if (rc == SLUICE_OK) {
            pr->produced++;
            if ((pr->produced & 255) == 0) sluice_producer_poll(p, 0);
        } else if (rc == SLUICE_ERR__QUEUE_FULL || rc == SLUICE_ERR__TIMED_OUT) {
            sluice_producer_poll(p, 5);
        } else {
            pr->produce_errors++;
            pr->last_err = rc;
            sluice_producer_poll(p, 5);
        }
    }
    /* The broker is dead: take every report that is coming (answers already
     * in the socket are real acknowledgements), then drop the rest. */
    sluice_producer_flush(p, 200);
    sluice_producer_destroy(p);
    return NULL;
}

/* ---- verification ------------------------------------------------------------------- */

typedef struct verify {
    uint32_t pid0; /* first producer id of the cycle */
    prod_t *prods;
    uint8_t *seen[NPROD]; /* per producer: sequence numbers found in the log */
    int64_t last_seq[NPROD][NSLOT];
    int64_t bad_content, foreign, dups, reorder, records;
    int printed;
} verify_t;

static void region_msg(void *arg, size_t idx, const sluice_message_t *m)
{
    verify_t *v = arg;
    if (m->err) return; /* counted by rl_read */
    int slot = (int)idx;
    uint32_t pid = 0;
    uint64_t seq = 0;
    v->records++;
    if (rl_payload_parse(m->value, m->value_len, &pid, &seq) != 0) {
        v->bad_content++;
        if (v->printed++ < 10)
            fprintf(stderr, "slot %d offset %" PRId64 ": value is not a valid payload\n", slot,
                    m->offset);
        map_set(&map[slot], m->offset, 1); /* never a valid packing */
        return;
    }
    map_set(&map[slot], m->offset, rl_pack(pid, seq));
    if (pid < v->pid0 || pid >= v->pid0 + NPROD || seq >= v->prods[pid - v->pid0].produced) {
        v->foreign++;
        if (v->printed++ < 10)
            fprintf(stderr,
                    "slot %d offset %" PRId64 ": record of producer %" PRIu32 " seq %" PRIu64
                    " was never produced in this cycle (producers %" PRIu32 "..%" PRIu32 ")\n",
                    slot, m->offset, pid, seq, v->pid0, v->pid0 + NPROD - 1);
        return;
    }
    int i = (int)(pid - v->pid0);
    if (v->seen[i][seq]) {
        v->dups++;
        if (v->printed++ < 10)
            fprintf(stderr,
                    "slot %d offset %" PRId64 ": producer %" PRIu32 " seq %" PRIu64
                    " appears a second time\n",
                    slot, m->offset, pid, seq);
    }
    v->seen[i][seq] = 1;
    if ((int64_t)seq <= v->last_seq[i][slot]) {
        v->reorder++;
        if (v->printed++ < 10)
            fprintf(stderr,
                    "slot %d offset %" PRId64 ": producer %" PRIu32 " seq %" PRIu64
                    " after seq %" PRId64 " (produce order lost)\n",
                    slot, m->offset, pid, seq, v->last_seq[i][slot]);
    }
    v->last_seq[i][slot] = (int64_t)seq;
    if (i % 2 == 0) {
        char k[32];
        size_t kl;
        key_of(pid, seq, k, sizeof k, &kl);
        if (m->key_len != kl || memcmp(m->key, k, kl) != 0) {
            v->bad_content++;
            if (v->printed++ < 10)
                fprintf(stderr, "slot %d offset %" PRId64 ": wrong key\n", slot, m->offset);
        }
    } else if (m->key != NULL) {
        v->bad_content++;
    }
}

typedef struct reread {
    int64_t mismatches, bad;
} reread_t;

static void reread_msg(void *arg, size_t idx, const sluice_message_t *m)
{
    reread_t *r = arg;
    if (m->err) return;
    uint32_t pid = 0;
    uint64_t seq = 0;
    uint64_t want = m->offset < map[idx].n ? map[idx].v[m->offset] : 0;
    if (rl_payload_parse(m->value, m->value_len, &pid, &seq) != 0) {
        r->bad++;
        return;
    }
    if (rl_pack(pid, seq) != want) {
        if (r->mismatches++ < 10)
            fprintf(stderr,
                    "re-read slot %zu offset %" PRId64 ": producer %" PRIu32 " seq %" PRIu64
                    ", earlier cycles saw %#" PRIx64 "\n",
                    idx, m->offset, pid, seq, want);
    }
}

static void make_parts(rl_part_t *parts, const int64_t *from, const int64_t *to)
{
    for (int s = 0; s < NSLOT; s++) {
        memset(&parts[s], 0, sizeof parts[s]);
        parts[s].topic = topic_names[s / PPT];
        parts[s].partition = s % PPT;
        parts[s].from = from[s];
        parts[s].to = to[s];
    }
}

static int check_parts(const rl_part_t *parts, const char *what)
{
    int ok = 1;
    for (int s = 0; s < NSLOT; s++) {
        const rl_part_t *p = &parts[s];
        if (p->errors || p->gaps || p->eof_at != p->to || p->next != p->to) {
            ok = 0;
            CHECK_MSG(0,
                      "%s %s-%d: errors %" PRId64 ", gaps %" PRId64 ", end at %" PRId64
                      ", read to %" PRId64 ", expected end %" PRId64,
                      what, p->topic, (int)p->partition, p->errors, p->gaps, p->eof_at, p->next,
                      p->to);
        }
    }
    return ok;
}

/* Re-reads every partition from offset 0 and compares with the map. */
static void full_reread(const char *when)
{
    rl_part_t parts[NSLOT];
    int64_t from[NSLOT] = {0}, to[NSLOT];
    int64_t total = 0;
    for (int s = 0; s < NSLOT; s++) {
        to[s] = map[s].n;
        total += map[s].n;
    }
    make_parts(parts, from, to);
    reread_t r = {0};
    double t0 = rl_now_s();
    rl_read(&h, parts, NSLOT, reread_msg, &r, 120000 + (int)(total / 1000), NULL);
    check_parts(parts, "re-read");
    CHECK_EQ_INT(r.mismatches, 0);
    CHECK_EQ_INT(r.bad, 0);
    fprintf(stderr,
            "torture: full re-read %s: %" PRId64 " records in %.1f s, %" PRId64 " changed\n", when,
            total, rl_now_s() - t0, r.mismatches + r.bad);
}

/* The log accepts appends after the restart: one acks=all message per
 * partition lands at exactly the old end and reads back. */
typedef struct append_ck {
    int64_t off[NSLOT];
    int err[NSLOT];
} append_ck_t;

static void append_dr(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    append_ck_t *a = opaque;
    int s = (int)(uintptr_t)m->opaque;
    if (s < 0 || s >= NSLOT) return;
    a->err[s] = m->err;
    a->off[s] = m->offset;
}

static void append_check(uint32_t pid, const int64_t *leo)
{
    append_ck_t a;
    for (int s = 0; s < NSLOT; s++) {
        a.off[s] = -1;
        a.err[s] = -1;
    }
    const char *kv[] = {"acks", "all", "linger.ms", "0", NULL};
    sluice_producer_t *p = rl_producer(&h, kv, append_dr, &a);
    char buf[128];
    for (int s = 0; s < NSLOT; s++) {
        size_t len = rl_payload(buf, sizeof buf, pid, (uint64_t)s, 64);
        CHECK_EQ_INT(sluice_produce(p, topic_names[s / PPT], s % PPT, NULL, 0, buf, len, NULL, 0, 0,
                                    (void *)(uintptr_t)s),
                     SLUICE_OK);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 20000), SLUICE_OK);
    sluice_producer_destroy(p);
    int64_t from[NSLOT], to[NSLOT];
    for (int s = 0; s < NSLOT; s++) {
        CHECK_MSG(a.err[s] == 0 && a.off[s] == leo[s],
                  "append after restart to %s-%d: %s at offset %" PRId64 ", expected %" PRId64,
                  topic_names[s / PPT], s % PPT, sluice_err2str(a.err[s]), a.off[s], leo[s]);
        from[s] = leo[s];
        to[s] = leo[s] + 1;
        map_set(&map[s], leo[s], rl_pack(pid, (uint64_t)s));
    }
    rl_part_t parts[NSLOT];
    make_parts(parts, from, to);
    reread_t r = {0};
    rl_read(&h, parts, NSLOT, reread_msg, &r, 30000, NULL);
    check_parts(parts, "append read-back");
    CHECK_EQ_INT(r.mismatches + r.bad, 0);
}

/* ---- group commits racing the kill ------------------------------------------------ */

/* One consumer commits value v as the offset of all NSLOT partitions in one
 * synchronous commit, v = 1, 2, ...; after a restart the committed offsets
 * must all be the last acknowledged v, or the one in flight at the kill. */
#define GROUP "torture-g"
static int64_t commit_acked, commit_inflight, commit_next = 1, commits_total;
static int commit_unexpected;

static void *commit_main(void *arg)
{
    (void)arg;
    const char *kv[] = {"group.id", GROUP, "enable.auto.commit", "false", NULL};
    sluice_consumer_t *k = rl_consumer(&h, kv);
    while (!atomic_load(&stop_flag)) {
        int64_t v = commit_next++;
        sluice_tp_list_t *l = sluice_tp_list_new(NSLOT);
        for (int s = 0; s < NSLOT; s++)
            sluice_tp_list_add(l, topic_names[s / PPT], s % PPT)->offset = v;
        commit_inflight = v;
        int rc = sluice_consumer_commit(k, l, 0);
        for (size_t i = 0; rc == SLUICE_OK && i < l->cnt; i++) rc = l->elems[i].err;
        sluice_tp_list_destroy(l);
        if (rc == SLUICE_OK) {
            commit_acked = v;
            commit_inflight = 0;
            commits_total++;
            usleep(2000);
            continue;
        }
        if (rc != SLUICE_ERR__TRANSPORT && rc != SLUICE_ERR__TIMED_OUT) {
            commit_unexpected = rc;
            commit_inflight = 0;
        }
        break;
    }
    sluice_consumer_destroy(k);
    return NULL;
}

static void check_commits(int cyc, uint64_t seed)
{
    const char *kv[] = {"group.id", GROUP, "enable.auto.commit", "false", NULL};
    sluice_consumer_t *k = rl_consumer(&h, kv);
    sluice_tp_list_t *l = sluice_tp_list_new(NSLOT);
    for (int s = 0; s < NSLOT; s++) sluice_tp_list_add(l, topic_names[s / PPT], s % PPT);
    int rc = sluice_consumer_committed(k, l, 10000);
    CHECK_MSG(rc == SLUICE_OK, "committed(): %s", sluice_err2str(rc));
    int64_t v = l->elems[0].offset;
    int same = 1;
    for (size_t i = 1; i < l->cnt; i++) same = same && l->elems[i].offset == v;
    int64_t want_none = commit_acked == 0 && !commit_inflight;
    int ok = same && (want_none ? v == SLUICE_OFFSET_INVALID
                                : v == commit_acked || (commit_inflight && v == commit_inflight));
    CHECK_MSG(ok,
              "cycle %d (seed %" PRIu64 "): committed offsets %" PRId64 "%s; acknowledged %" PRId64
              ", in flight %" PRId64,
              cyc, seed, v, same ? "" : " (differ between partitions)", commit_acked,
              commit_inflight);
    CHECK_MSG(commit_unexpected == 0, "cycle %d: commit failed with %s", cyc,
              sluice_err2str(commit_unexpected));
    if (ok && v > commit_acked) commit_acked = v;
    commit_inflight = 0;
    commit_unexpected = 0;
    if (commit_next <= commit_acked) commit_next = commit_acked + 1;
    sluice_tp_list_destroy(l);
    sluice_consumer_destroy(k);
}

/* ---- --synclog: an exact power loss ------------------------------------------------- */

/* sluiced runs with the synclog.c shim preloaded, which logs the size each
 * successful fdatasync/fsync made durable. After the kill every segment file
 * is cut back to what was durable: its size when this run started (all of
 * it survived the previous power loss, and recovery syncs it) or the largest
 * size a sync of this run covered, whichever is larger. Unsynced appends are
 * lost as in a real power loss; acks=all must not be. */
typedef struct fsize {
    char *path;
    int64_t size;
} fsize_t;

typedef struct fsizes {
    fsize_t *v;
    size_t n, cap;
} fsizes_t;

static char synclog_path[400];
static fsizes_t baseline;

static void fs_add(fsizes_t *f, const char *path, int64_t size)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        fsize_t *nv = realloc(f->v, f->cap * sizeof *nv);
        CHECK_FATAL(nv != NULL);
        f->v = nv;
    }
    f->v[f->n].path = strdup(path);
    CHECK_FATAL(f->v[f->n].path != NULL);
    f->v[f->n].size = size;
    f->n++;
}

static void fs_free(fsizes_t *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->v[i].path);
    free(f->v);
    memset(f, 0, sizeof *f);
}

static int fs_cmp(const void *a, const void *b)
{
    return strcmp(((const fsize_t *)a)->path, ((const fsize_t *)b)->path);
}

/* Sorts by path, keeping the largest size of duplicates. */
static void fs_sort(fsizes_t *f)
{
    if (f->n < 2) return;
    qsort(f->v, f->n, sizeof *f->v, fs_cmp);
    size_t w = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (w && strcmp(f->v[w - 1].path, f->v[i].path) == 0) {
            if (f->v[i].size > f->v[w - 1].size) f->v[w - 1].size = f->v[i].size;
            free(f->v[i].path);
            continue;
        }
        f->v[w++] = f->v[i];
    }
    f->n = w;
}

static int64_t fs_get(const fsizes_t *f, const char *path)
{
    if (f->n == 0) return -1;
    fsize_t key = {(char *)path, 0};
    fsize_t *e = bsearch(&key, f->v, f->n, sizeof *f->v, fs_cmp);
    return e ? e->size : -1;
}

/* Every segment file under DATA/topics, with its size (canonical paths). */
static void list_segments(fsizes_t *out)
{
    char top[PATH_MAX], tdir[PATH_MAX + 300];
    snprintf(tdir, sizeof tdir, "%s/topics", h.data);
    if (!realpath(tdir, top)) return;
    DIR *d = opendir(top);
    CHECK_FATAL(d != NULL);
    struct dirent *t;
    while ((t = readdir(d))) {
        if (t->d_name[0] == '.') continue;
        char tp[PATH_MAX + 300];
        snprintf(tp, sizeof tp, "%s/%s", top, t->d_name);
        DIR *pd = opendir(tp);
        if (!pd) continue;
        struct dirent *p;
        while ((p = readdir(pd))) {
            if (p->d_name[0] == '.') continue;
            char pp[PATH_MAX + 600];
            snprintf(pp, sizeof pp, "%s/%s", tp, p->d_name);
            DIR *sd = opendir(pp);
            if (!sd) continue;
            struct dirent *e;
            while ((e = readdir(sd))) {
                size_t l = strlen(e->d_name);
                if (l < 5 || strcmp(e->d_name + l - 4, ".log") != 0) continue;
                char fp[PATH_MAX + 900];
                snprintf(fp, sizeof fp, "%s/%s", pp, e->d_name);
                struct stat st;
                if (stat(fp, &st) == 0) fs_add(out, fp, (int64_t)st.st_size);
            }
            closedir(sd);
        }
        closedir(pd);
    }
    closedir(d);
    fs_sort(out);
}

/* Before a start: what is on "disk" now is durable; the shim's log restarts. */
static void synclog_baseline(void)
{
    fs_free(&baseline);
    list_segments(&baseline);
    int fd = open(synclog_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_FATAL(fd >= 0);
    close(fd);
}

/* After the kill: cuts every segment back to what was durable. Returns the
 * bytes cut; *files gets the number of files cut. */
static int64_t synclog_power_cut(int *files)
{
    fsizes_t synced = {0}, now = {0};
    size_t len = 0;
    uint8_t *log = rl_slurp(synclog_path, &len);
    for (size_t i = 0; log && i < len;) {
        size_t j = i;
        while (j < len && log[j] != '\n') j++;
        if (j < len) { /* a whole line: "<size> <path>" */
            log[j] = 0;
            char *sp = strchr((char *)log + i, ' ');
            if (sp) fs_add(&synced, sp + 1, strtoll((char *)log + i, NULL, 10));
        }
        i = j + 1;
    }
    free(log);
    fs_sort(&synced);
    list_segments(&now);
    int64_t cut = 0;
    *files = 0;
    for (size_t i = 0; i < now.n; i++) {
        int64_t keep = fs_get(&baseline, now.v[i].path);
        int64_t s = fs_get(&synced, now.v[i].path);
        if (s > keep) keep = s;
        if (keep < 0) keep = 0; /* created in this run and never synced */
        if (now.v[i].size > keep) {
            CHECK_FATAL(truncate(now.v[i].path, (off_t)keep) == 0);
            cut += now.v[i].size - keep;
            (*files)++;
        }
    }
    fs_free(&synced);
    fs_free(&now);
    return cut;
}

/* --inject-loss: cuts torture-b/0's segment before the first batch at or
 * after `from` (the data of the cycle that was just killed). */
static void inject_loss(int64_t from)
{
    char dir[600], path[700];
    rl_part_dir(&h, topic_names[1], 0, dir, sizeof dir);
    int64_t bases[4];
    CHECK_FATAL(rl_segments(dir, bases, 4) == 1);
    rl_segment_path(dir, bases[0], path, sizeof path);
    size_t len = 0;
    uint8_t *buf = rl_slurp(path, &len);
    CHECK_FATAL(buf != NULL);
    rl_batch_t *b = NULL;
    uint64_t end = 0;
    size_t n = rl_walk(buf, len, bases[0], &b, &end);
    uint64_t cut = end;
    for (size_t i = 0; i < n; i++)
        if (b[i].base >= from) {
            cut = b[i].pos;
            break;
        }
    CHECK_FATAL(truncate(path, (off_t)cut) == 0);
    fprintf(stderr, "inject: cut %s from %zu to %" PRIu64 " bytes\n", path, len, cut);
    free(b);
    free(buf);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 20, &o);
    rl_allow_flags(&o, (const char *const[]){"--inject-loss", "--synclog", NULL});
    /* Self-test: between kill and restart, drop this cycle's data of
     * torture-b/0 from its segment file; the checks must notice. */
    int inject = rl_flag(&o, "--inject-loss");
    /* Power loss instead of a mere SIGKILL (see synclog_power_cut). */
    int synclog = rl_flag(&o, "--synclog");
    const char *tag = synclog ? "torture-powerloss" : "torture";
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("torture: seed %" PRIu64 " (rerun with --seed %" PRIu64 "), %d cycles\n", o.seed, o.seed,
           o.cycles);
    rl_rng_t rng = {o.seed};
    /* A bound on what one producer queues per cycle (RATE × the longest
     * window) keeps memory and disk flat. */
    uint64_t max_msgs = 40000;
    int full_every = o.long_run ? 25 : 10;

    harness_init(&h, "torture");
    rl_guard(&h);
    if (synclog) {
        snprintf(synclog_path, sizeof synclog_path, "%s/synclog", h.dir);
        setenv("SLUICE_SYNCLOG", synclog_path, 1);
        setenv("LD_PRELOAD", SYNCLOG_PATH, 1);
        /* An ASan sluiced accepts a preloaded library that is not ASan. */
        char asan[1024];
        const char *old_opts = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old_opts ? old_opts : "",
                 old_opts && *old_opts ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        synclog_baseline();
    }
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    /* torture-a rolls segments often, so kills land during rolls too. */
    const char *cfg_a[] = {"segment.bytes=262144"};
    CHECK_FATAL(rl_create_topic(&h, topic_names[0], PPT, cfg_a, 1) == 0);
    CHECK_FATAL(rl_create_topic(&h, topic_names[1], PPT, NULL, 0) == 0);

    int64_t acked_all = 0, acked_one = 0, lost_all = 0, lost_one = 0, dups = 0, unacked = 0;
    int64_t pl_one = 0, cut_total = 0; /* --synclog: acks=1 lost with the page cache, bytes cut */
    int quiet_cycles = 0; /* cycles in which acks=all or acks=1 got no acknowledgement */
    int64_t region[NSLOT] = {0};
    double t_start = rl_now_s();
    int cycles_done = 0;
    for (int cyc = 0; cyc < o.cycles; cyc++) {
        uint32_t pid0 = (uint32_t)cyc * PID_SPAN;
        prod_t prods[NPROD];
        memset(prods, 0, sizeof prods);
        atomic_store(&stop_flag, 0);
        for (int i = 0; i < NPROD; i++) {
            prods[i].idx = i;
            prods[i].pid = pid0 + (uint32_t)i;
            prods[i].acks_all = (i < NPROD / 2);
            prods[i].rng.s = rl_next(&rng);
            prods[i].max_msgs = max_msgs;
        }
        for (int i = 0; i < NPROD; i++)
            CHECK_FATAL(pthread_create(&prods[i].th, NULL, prod_main, &prods[i]) == 0);
        pthread_t committer;
        CHECK_FATAL(pthread_create(&committer, NULL, commit_main, NULL) == 0);
        int delay = (int)rl_range(&rng, 50, 500);
        usleep((useconds_t)delay * 1000);
        int st = harness_stop(&h, SIGKILL);
        atomic_store(&stop_flag, 1);
        CHECK_MSG(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "cycle %d: the broker was not alive at the kill (wait status %#x): it crashed "
                  "(see %s)",
                  cyc, st, h.log);
        for (int i = 0; i < NPROD; i++) pthread_join(prods[i].th, NULL);
        pthread_join(committer, NULL);
        if (inject) inject_loss(region[PPT]);
        int cut_files = 0;
        int64_t cut = 0;
        if (synclog) {
            cut = synclog_power_cut(&cut_files);
            cut_total += cut;
            synclog_baseline();
        }
        if (harness_start(&h, NULL) != 0) {
            CHECK_MSG(0, "cycle %d: sluiced did not restart after SIGKILL (seed %" PRIu64 ")", cyc,
                      o.seed);
            break;
        }

        /* What survived: the log end must not be below what earlier cycles
         * verified. */
        int64_t leo[NSLOT];
        for (int t = 0; t < NTOPICS; t++) {
            int64_t e[PPT];
            for (int p = 0; p < PPT; p++) e[p] = -1;
            CHECK_EQ_INT(rl_describe(&h, topic_names[t], e, PPT), PPT);
            for (int p = 0; p < PPT; p++) leo[t * PPT + p] = e[p];
        }
        int lost_region = 0;
        for (int s = 0; s < NSLOT; s++) {
            if (leo[s] < region[s]) {
                CHECK_MSG(0,
                          "cycle %d: %s-%d ends at %" PRId64
                          " after restart, but offsets up to %" PRId64
                          " were verified before (seed %" PRIu64 ")",
                          cyc, topic_names[s / PPT], s % PPT, leo[s], region[s] - 1, o.seed);
                lost_region = 1;
                leo[s] = region[s];
            }
        }
        verify_t v;
        memset(&v, 0, sizeof v);
        v.pid0 = pid0;
        v.prods = prods;
        for (int i = 0; i < NPROD; i++) {
            v.seen[i] = calloc((size_t)prods[i].produced + 1, 1);
            CHECK_FATAL(v.seen[i] != NULL);
            for (int s = 0; s < NSLOT; s++) v.last_seq[i][s] = -1;
        }
        rl_part_t parts[NSLOT];
        make_parts(parts, region, leo);
        int64_t span = 0;
        for (int s = 0; s < NSLOT; s++) span += leo[s] - region[s];
        rl_read(&h, parts, NSLOT, region_msg, &v, 60000 + (int)(span / 500), NULL);
        check_parts(parts, "cycle read");
        CHECK_EQ_INT(v.bad_content, 0);
        CHECK_EQ_INT(v.foreign, 0);
        CHECK_EQ_INT(v.reorder, 0);
        (void)lost_region;

        /* Every acknowledged message at its offset. */
        int64_t c_all = 0, c_one = 0, l_all = 0, l_one = 0, failed = 0, perr = 0;
        int printed = 0;
        for (int i = 0; i < NPROD; i++) {
            prod_t *pr = &prods[i];
            failed += pr->failed;
            perr += pr->produce_errors;
            for (size_t k = 0; k < pr->nacks; k++) {
                const ack_t *a = &pr->acks[k];
                int64_t off = a->offset;
                uint64_t got = off >= 0 && off < map[a->slot].n ? map[a->slot].v[off] : 0;
                int ok =
                    off >= region[a->slot] && off < leo[a->slot] && got == rl_pack(pr->pid, a->seq);
                if (pr->acks_all) {
                    c_all++;
                    l_all += !ok;
                } else {
                    c_one++;
                    l_one += !ok;
                }
                if (!ok && (pr->acks_all || !synclog) && printed++ < 20)
                    fprintf(stderr,
                            "LOST: cycle %d seed %" PRIu64 ": acks=%s producer %" PRIu32
                            " seq %" PRIu64 " acknowledged at %s-%d offset %" PRId64
                            "; the log (end %" PRId64 ") holds %#" PRIx64 " there\n",
                            cyc, o.seed, pr->acks_all ? "all" : "1", pr->pid, a->seq,
                            topic_names[a->slot / PPT], a->slot % PPT, off, leo[a->slot], got);
            }
        }
        if (!inject) {
            CHECK_MSG(l_all == 0, "cycle %d: %" PRId64 " acks=all messages lost (seed %" PRIu64 ")",
                      cyc, l_all, o.seed);
            /* A power loss may take acks=1 data (it was only in the page
             * cache); a SIGKILL may not. */
            CHECK_MSG(synclog || l_one == 0,
                      "cycle %d: %" PRId64 " acks=1 messages lost after SIGKILL (seed %" PRIu64 ")",
                      cyc, l_one, o.seed);
        }
        CHECK_MSG(v.dups == 0, "cycle %d: %" PRId64 " duplicated records (seed %" PRIu64 ")", cyc,
                  v.dups, o.seed);
        /* A cycle without acknowledgements proves little (a kill before the
         * producers got going, on a loaded machine); a run of them proves
         * nothing: checked at the end. */
        quiet_cycles += c_all == 0 || c_one == 0;
        check_commits(cyc, o.seed);
        acked_all += c_all;
        acked_one += c_one;
        lost_all += l_all;
        if (synclog)
            pl_one += l_one;
        else
            lost_one += l_one;
        dups += v.dups;
        unacked += v.records - (c_all + c_one - l_all - l_one);
        fprintf(stderr,
                "cycle %d: kill after %d ms; acknowledged acks=all %" PRId64 ", acks=1 %" PRId64
                "; failed reports %" PRId64 ", produce errors %" PRId64 "; log +%" PRId64
                " records; lost acks=all %" PRId64 ", acks=1 %" PRId64 ", duplicated %" PRId64,
                cyc, delay, c_all, c_one, failed, perr, v.records, l_all, l_one, v.dups);
        if (synclog)
            fprintf(stderr, "; power loss cut %" PRId64 " unsynced bytes from %d files", cut,
                    cut_files);
        fprintf(stderr, "\n");
        for (int i = 0; i < NPROD; i++) {
            free(v.seen[i]);
            free(prods[i].acks);
        }

        append_check(pid0 + NPROD, leo);
        for (int s = 0; s < NSLOT; s++) region[s] = leo[s] + 1;
        cycles_done++;
        if ((cyc + 1) % full_every == 0 && cyc + 1 < o.cycles) {
            char when[32];
            snprintf(when, sizeof when, "after cycle %d", cyc);
            full_reread(when);
        }
        if (check_failures) {
            fprintf(stderr,
                    "torture: stopping after the first failing cycle (%d, seed %" PRIu64
                    "); data kept in %s when SLUICE_KEEP_TMP is set\n",
                    cyc, o.seed, h.dir);
            break;
        }
    }
    if (inject) {
        /* The checker caught the injected loss, and nothing else failed. */
        CHECK_MSG(lost_all + lost_one > 0, "injected loss went unnoticed");
        printf("torture: --inject-loss: %" PRId64 " injected losses detected\n",
               lost_all + lost_one);
        harness_cleanup(&h);
        return check_exit();
    }
    CHECK_MSG(quiet_cycles * 2 <= cycles_done,
              "%d of %d cycles had no acknowledgement for acks=all or acks=1: the kills came "
              "too early to prove anything",
              quiet_cycles, cycles_done);
    full_reread("at the end");
    /* and once more after a clean restart */
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    if (synclog) synclog_baseline();
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    full_reread("after a clean restart");
    check_commits(cycles_done, o.seed);
    if (synclog)
        CHECK_MSG(cut_total > 0,
                  "the emulated power losses never cut anything: the shim logged no syncs?");

    int64_t total = 0;
    for (int s = 0; s < NSLOT; s++) total += map[s].n;
    if (synclog)
        printf("%s: %d cycles, %" PRId64 " acks=all messages acknowledged, %" PRId64
               " acks=1 messages acknowledged (%" PRId64
               " of them lost with the page cache, allowed), lost %" PRId64 ", duplicated %" PRId64
               ", %" PRId64 " unsynced bytes cut, seed %" PRIu64 "\n",
               tag, cycles_done, acked_all, acked_one, pl_one, lost_all + lost_one, dups, cut_total,
               o.seed);
    else
        printf("%s: %d cycles, %" PRId64 " acks=all messages acknowledged, %" PRId64
               " acks=1 messages acknowledged, lost %" PRId64 ", duplicated %" PRId64
               ", seed %" PRIu64 "\n",
               tag, cycles_done, acked_all, acked_one, lost_all + lost_one, dups, o.seed);
    printf("%s: %" PRId64 " records in the log, %" PRId64
           " of them appended but never acknowledged (the kill came first), %" PRId64
           " group commits acknowledged, %.1f s\n",
           tag, total, unacked, commits_total, rl_now_s() - t_start);
    harness_cleanup(&h);
    for (int s = 0; s < NSLOT; s++) free(map[s].v);
    return check_exit();
}
