/* test_powerloss.c — a simulated power loss: what was acknowledged with
 * acks=all survives, and whatever the lost page cache leaves at the end of
 * the active segment is never served.
 *
 * SIGKILL keeps the page cache, so a power loss is emulated on the files:
 * each iteration produces acks=all messages (durable when acknowledged),
 * then acks=1 messages (only in the page cache), SIGKILLs the broker, and
 * rewrites the active segment of the partition: it keeps the bytes up to
 * the durable position — the end of the batch holding the last acks=all
 * offset, or the recovery-point checkpoint's position if that is further,
 * sometimes plus some whole batches of the unflushed tail (the kernel may
 * have written part of it back) — and appends one tail kind:
 *
 *   none     nothing (the file simply ends at a batch boundary)
 *   garbage  random bytes
 *   zeros    zero bytes (a file whose size reached the disk before its data)
 *   torn     a prefix of the next real batch
 *   flip     the next real batch with one byte flipped (anywhere but the
 *            partitionLeaderEpoch, which nothing protects), followed by the
 *            rest of the real tail: valid batches after a bad one must go too
 *   whole    the next real batch intact, then a torn prefix of the one after:
 *            the whole batch is kept, the torn one dropped
 *
 * After the restart: the log end is exactly the expected offset, every
 * offset below it holds exactly the message acknowledged there (read with the
 * libsluice consumer, CRCs checked, no errors, dense), nothing after the
 * garbage is served, the other partition (recovered too, untouched) is
 * intact, and the log accepts appends at the next dense offsets.
 *
 * Options: --cycles N (iterations, default 60), --seed S.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "harness.h"
#include "rlib.h"
#include "sluice/sluice.h"

#define TOPIC "powerloss"
#define NPART 2

enum { T_NONE, T_GARBAGE, T_ZEROS, T_TORN, T_FLIP, T_WHOLE, T_KINDS };
static const char *const kind_names[T_KINDS] = {"none", "garbage", "zeros",
                                                "torn", "flip",    "whole"};

static harness_t h;

/* Expected content per partition: v[offset] = rl_pack(pid, seq). */
typedef struct pmap {
    uint64_t *v;
    int64_t n, cap;
} pmap_t;

static pmap_t pm[NPART];

static void pm_set(pmap_t *m, int64_t off, uint64_t val)
{
    if (off >= m->cap) {
        int64_t nc = m->cap ? m->cap * 2 : 4096;
        while (nc <= off) nc *= 2;
        uint64_t *nv = realloc(m->v, (size_t)nc * sizeof *nv);
        CHECK_FATAL(nv != NULL);
        memset(nv + m->cap, 0, (size_t)(nc - m->cap) * sizeof *nv);
        m->v = nv;
        m->cap = nc;
    }
    m->v[off] = val;
    if (off + 1 > m->n) m->n = off + 1;
}

/* Delivery reports: every message must be acknowledged (the broker is up
 * while they are produced); the offset goes into the partition's map. */
typedef struct dr_state {
    uint32_t pid;
    int64_t ok, bad;
    int64_t last_off[NPART]; /* highest acknowledged offset per partition */
    int last_err;
} dr_state_t;

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    dr_state_t *d = opaque;
    if (m->err || m->offset < 0 || m->partition < 0 || m->partition >= NPART) {
        d->bad++;
        d->last_err = m->err;
        return;
    }
    d->ok++;
    pm_set(&pm[m->partition], m->offset, rl_pack(d->pid, (uint64_t)(uintptr_t)m->opaque));
    if (m->offset > d->last_off[m->partition]) d->last_off[m->partition] = m->offset;
}

/* Produces n messages to partition part and waits for every report. */
static void produce(rl_rng_t *rng, const char *acks, const char *batch_size, uint32_t pid,
                    int32_t part, int n, dr_state_t *d)
{
    memset(d, 0, sizeof *d);
    d->pid = pid;
    for (int i = 0; i < NPART; i++) d->last_off[i] = -1;
    const char *kv[] = {"acks", acks, "linger.ms", "2", "batch.size", batch_size, NULL};
    sluice_producer_t *p = rl_producer(&h, kv, dr_cb, d);
    char buf[256];
    for (int i = 0; i < n; i++) {
        size_t len = rl_payload(buf, sizeof buf, pid, (uint64_t)i,
                                (size_t)rl_range(rng, RL_PAYLOAD_MIN, 200));
        CHECK_EQ_INT(
            sluice_produce(p, TOPIC, part, NULL, 0, buf, len, NULL, 0, 0, (void *)(uintptr_t)i),
            SLUICE_OK);
    }
    CHECK_EQ_INT(sluice_producer_flush(p, 30000), SLUICE_OK);
    sluice_producer_destroy(p);
    CHECK_MSG(d->ok == n && d->bad == 0,
              "pid %" PRIu32 ": %" PRId64 " of %d acknowledged, last error %s", pid, d->ok, n,
              sluice_err2str(d->last_err));
}

typedef struct cmp {
    int64_t mismatches, bad;
} cmp_t;

static void cmp_msg(void *arg, size_t idx, const sluice_message_t *m)
{
    cmp_t *c = arg;
    if (m->err) return; /* counted by rl_read */
    uint32_t pid = 0;
    uint64_t seq = 0;
    if (rl_payload_parse(m->value, m->value_len, &pid, &seq) != 0) {
        if (c->bad++ < 5)
            fprintf(stderr, "partition %zu offset %" PRId64 ": not a valid payload\n", idx,
                    m->offset);
        return;
    }
    int64_t want = m->offset < pm[idx].n ? (int64_t)pm[idx].v[m->offset] : 0;
    if ((int64_t)rl_pack(pid, seq) != want && c->mismatches++ < 5)
        fprintf(stderr,
                "partition %zu offset %" PRId64 ": producer %" PRIu32 " seq %" PRIu64
                ", expected %#" PRIx64 "\n",
                idx, m->offset, pid, seq, (uint64_t)want);
}

/* Reads partitions [0, pm[p].n) back and compares with the maps; returns
 * the number of expected records that were missing or different. */
static int64_t verify_all(const char *when, int iter)
{
    rl_part_t parts[NPART];
    memset(parts, 0, sizeof parts);
    for (int p = 0; p < NPART; p++) {
        parts[p].topic = TOPIC;
        parts[p].partition = p;
        parts[p].from = 0;
        parts[p].to = pm[p].n;
    }
    int64_t leo[NPART] = {-1, -1};
    CHECK_EQ_INT(rl_describe(&h, TOPIC, leo, NPART), NPART);
    for (int p = 0; p < NPART; p++)
        CHECK_MSG(leo[p] == pm[p].n,
                  "%s (iteration %d): partition %d ends at %" PRId64 ", expected %" PRId64, when,
                  iter, p, leo[p], pm[p].n);
    cmp_t c = {0, 0};
    rl_read(&h, parts, NPART, cmp_msg, &c, 60000, NULL);
    for (int p = 0; p < NPART; p++) {
        CHECK_MSG(parts[p].errors == 0 && parts[p].gaps == 0 && parts[p].eof_at == pm[p].n &&
                      parts[p].next == pm[p].n,
                  "%s (iteration %d): partition %d: %" PRId64 " errors, %" PRId64
                  " gaps, end of partition at %" PRId64 ", read to %" PRId64 ", expected %" PRId64,
                  when, iter, p, parts[p].errors, parts[p].gaps, parts[p].eof_at, parts[p].next,
                  pm[p].n);
    }
    CHECK_MSG(c.mismatches == 0 && c.bad == 0,
              "%s (iteration %d): %" PRId64 " records differ, %" PRId64 " are not valid", when,
              iter, c.mismatches, c.bad);
    int64_t lost = c.mismatches + c.bad;
    for (int p = 0; p < NPART; p++)
        if (parts[p].next < pm[p].n) lost += pm[p].n - parts[p].next;
    return lost;
}

/* Checks the file bytes (as the page cache had them) against the map. */
static void check_file_matches(const uint8_t *buf, const rl_batch_t *b, size_t n, int32_t part)
{
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        sl_record_iter_t it;
        sl_err_t err;
        if (sl_record_iter_init(&it, buf + b[i].pos, (size_t)b[i].size, NULL, &err) != SL_OK) {
            bad++;
            sl_record_iter_free(&it);
            continue;
        }
        sl_record_t r;
        while (sl_record_iter_next(&it, &r, &err) == 1) {
            uint32_t pid = 0;
            uint64_t seq = 0;
            if (rl_payload_parse(r.value, r.value_len < 0 ? 0 : (size_t)r.value_len, &pid, &seq) !=
                    0 ||
                r.offset >= pm[part].n || pm[part].v[r.offset] != rl_pack(pid, seq))
                bad++;
        }
        sl_record_iter_free(&it);
    }
    CHECK_MSG(bad == 0,
              "partition %d: %" PRId64 " records in the segment differ from what was acknowledged",
              part, bad);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 60, &o);
    rl_allow_flags(&o, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("powerloss: seed %" PRIu64 " (rerun with --seed %" PRIu64 "), %d iterations\n", o.seed,
           o.seed, o.cycles);
    rl_rng_t rng = {o.seed};
    harness_init(&h, "powerloss");
    rl_guard(&h);
    CHECK_FATAL(harness_start(&h, NULL) == 0);
    CHECK_FATAL(rl_create_topic(&h, TOPIC, NPART, NULL, 0) == 0);

    int kinds_seen[T_KINDS] = {0};
    int64_t acked_all = 0, dropped_unflushed = 0, kept_unflushed = 0, lost = 0;
    static const char *const bsizes[] = {"1024", "4096", "16384"};
    uint32_t pid = 0;
    int iters = 0;
    for (int it = 0; it < o.cycles; it++) {
        int32_t part = (int32_t)rl_range(&rng, 0, NPART - 1), other = 1 - part;
        int kind = it % T_KINDS;
        /* Durable data on both partitions, then page-cache-only data on one. */
        dr_state_t da, dother, d1;
        int n_all = (int)rl_range(&rng, 20, 600);
        produce(&rng, "all", bsizes[rl_range(&rng, 0, 2)], pid++, part, n_all, &da);
        produce(&rng, "all", "4096", pid++, other, (int)rl_range(&rng, 1, 50), &dother);
        int n_one = (int)rl_range(&rng, 50, 400);
        produce(&rng, "1", "1024", pid++, part, n_one, &d1);
        acked_all += da.ok + dother.ok;
        int64_t last_all = da.last_off[part];
        CHECK_FATAL(last_all >= 0);

        int st = harness_stop(&h, SIGKILL);
        CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "iteration %d: the broker was not alive at the kill (status %#x)", it, st);

        char dir[600], path[700];
        rl_part_dir(&h, TOPIC, part, dir, sizeof dir);
        int64_t bases[8];
        int nseg = rl_segments(dir, bases, 8);
        CHECK_FATAL(nseg == 1); /* default segment.bytes: one segment */
        rl_segment_path(dir, bases[0], path, sizeof path);
        size_t len = 0;
        uint8_t *buf = rl_slurp(path, &len);
        CHECK_FATAL(buf != NULL);
        rl_batch_t *b = NULL;
        uint64_t end = 0;
        size_t nb = rl_walk(buf, len, bases[0], &b, &end);
        /* SIGKILL lost nothing: the page cache holds every batch. */
        CHECK_MSG(end == len,
                  "iteration %d: segment %s is not a clean run of batches after SIGKILL "
                  "(%" PRIu64 " of %zu bytes)",
                  it, path, end, len);
        CHECK_FATAL(nb > 0);
        check_file_matches(buf, b, nb, part);

        /* The durable position. */
        size_t k = 0;
        while (k < nb && b[k].last < last_all) k++;
        CHECK_FATAL(k < nb);
        uint64_t durable = b[k].pos + b[k].size;
        int64_t ck_off = -1, ck_base = -1;
        uint64_t ck_pos = 0;
        if (rl_checkpoint(dir, &ck_off, &ck_base, &ck_pos) && ck_base == bases[0] &&
            ck_pos > durable) {
            int boundary = 0;
            for (size_t i = 0; i < nb; i++)
                if (b[i].pos + b[i].size == ck_pos) boundary = 1;
            CHECK_MSG(boundary, "iteration %d: checkpoint position %" PRIu64 " is not a batch end",
                      it, ck_pos);
            durable = ck_pos;
        }
        /* Batches kept: those ending at or before the cut. Sometimes the
         * kernel had written back part of the unflushed tail. */
        size_t keep0 = 0;
        while (keep0 < nb && b[keep0].pos + b[keep0].size <= durable) keep0++;
        size_t keep = keep0;
        if (rl_range(&rng, 0, 2) == 0 && keep < nb) keep += rl_range(&rng, 0, nb - keep);
        if (kind == T_WHOLE && keep + 1 >= nb) {
            /* needs two real batches after the cut */
            if (keep0 + 1 < nb)
                keep = keep0 + rl_range(&rng, 0, nb - keep0 - 2);
            else
                kind = T_TORN;
        }
        uint64_t cut = keep ? b[keep - 1].pos + b[keep - 1].size : 0;
        int64_t expect_leo = keep ? b[keep - 1].last + 1 : bases[0];
        CHECK_FATAL(expect_leo > last_all);

        /* The tail. */
        size_t cap = len + 65536;
        uint8_t *out = malloc(cap);
        CHECK_FATAL(out != NULL);
        memcpy(out, buf, (size_t)cut);
        size_t olen = (size_t)cut;
        /* "next batch": the real one after the cut, or a copy of the last
         * batch renumbered to follow (when the cut is at the file's end). */
        uint8_t *next = NULL;
        size_t next_len = 0;
        if (keep < nb) {
            next_len = (size_t)b[keep].size;
            next = malloc(next_len);
            CHECK_FATAL(next != NULL);
            memcpy(next, buf + b[keep].pos, next_len);
        } else {
            next_len = (size_t)b[nb - 1].size;
            next = malloc(next_len);
            CHECK_FATAL(next != NULL);
            memcpy(next, buf + b[nb - 1].pos, next_len);
            sl_put_be64(next, (uint64_t)expect_leo);
        }
        char detail[160] = "";
        switch (kind) {
        case T_NONE:
            break;
        case T_GARBAGE: {
            size_t g = (size_t)rl_range(&rng, 1, 4096);
            for (size_t i = 0; i < g; i++) out[olen++] = (uint8_t)rl_next(&rng);
            snprintf(detail, sizeof detail, "%zu random bytes", g);
            break;
        }
        case T_ZEROS: {
            size_t g = (size_t)rl_range(&rng, 1, 8192);
            memset(out + olen, 0, g);
            olen += g;
            snprintf(detail, sizeof detail, "%zu zero bytes", g);
            break;
        }
        case T_TORN: {
            size_t g = (size_t)rl_range(&rng, 1, next_len - 1);
            memcpy(out + olen, next, g);
            olen += g;
            snprintf(detail, sizeof detail, "%zu of the next batch's %zu bytes", g, next_len);
            break;
        }
        case T_FLIP: {
            size_t at;
            /* half of them in the header: offset, length, magic, CRC, counts */
            size_t hi = rl_range(&rng, 0, 1) ? SL_BATCH_HEADER_SIZE - 1 : next_len - 1;
            do at = (size_t)rl_range(&rng, 0, hi);
            while (at >= SL_BATCH_OFF_LEADER_EPOCH && at < SL_BATCH_OFF_MAGIC);
            uint8_t mask = (uint8_t)rl_range(&rng, 1, 255);
            memcpy(out + olen, next, next_len);
            out[olen + at] ^= mask;
            olen += next_len;
            /* then the real batches that followed (valid, but after garbage) */
            size_t rest = keep + 1 < nb ? len - (size_t)b[keep + 1].pos : 0;
            if (rest) memcpy(out + olen, buf + b[keep + 1].pos, rest);
            olen += rest;
            snprintf(detail, sizeof detail,
                     "byte %zu of %zu flipped (xor %#x), then %zu valid bytes", at, next_len, mask,
                     rest);
            break;
        }
        case T_WHOLE: {
            CHECK_FATAL(keep + 1 < nb);
            memcpy(out + olen, next, next_len);
            olen += next_len;
            expect_leo = b[keep].last + 1;
            size_t after = (size_t)b[keep + 1].size;
            size_t g = (size_t)rl_range(&rng, 1, after - 1);
            memcpy(out + olen, buf + b[keep + 1].pos, g);
            olen += g;
            snprintf(detail, sizeof detail, "a whole batch (%zu bytes), then %zu of %zu bytes",
                     next_len, g, after);
            break;
        }
        }
        CHECK_FATAL(olen <= cap);
        CHECK_FATAL(rl_write_file(path, out, olen) == 0);
        int64_t pre_leo = pm[part].n;
        if (expect_leo < pre_leo) {
            dropped_unflushed += pre_leo - expect_leo;
            pm[part].n = expect_leo; /* those offsets are gone */
        }
        kept_unflushed += expect_leo - (last_all + 1);
        fprintf(stderr,
                "iteration %d: partition %d, acks=all through %" PRId64 ", log end %" PRId64
                " before the loss; cut at %" PRIu64 " (durable %" PRIu64
                "), tail %s%s%s; expect end %" PRId64 "\n",
                it, part, last_all, pre_leo, cut, durable, kind_names[kind], detail[0] ? ": " : "",
                detail, expect_leo);
        free(out);
        free(next);
        free(b);
        free(buf);

        if (harness_start(&h, NULL) != 0) {
            CHECK_MSG(0,
                      "iteration %d: sluiced did not start after the power loss (seed %" PRIu64
                      ", tail %s)",
                      it, o.seed, kind_names[kind]);
            break;
        }
        char when[64];
        snprintf(when, sizeof when, "after the power loss (tail %s)", kind_names[kind]);
        lost += verify_all(when, it);

        /* Appends continue at the next dense offsets. */
        dr_state_t dn;
        int n_new = 20;
        produce(&rng, "all", "4096", pid++, part, n_new, &dn);
        CHECK_EQ_INT(dn.last_off[part], expect_leo + n_new - 1);
        CHECK_EQ_INT(pm[part].n, expect_leo + n_new);
        lost += verify_all("after appending", it);
        kinds_seen[kind]++;
        iters++;
        if (check_failures) {
            fprintf(stderr,
                    "powerloss: stopping at the first failing iteration (%d, seed %" PRIu64 ")\n",
                    it, o.seed);
            break;
        }
    }
    printf("powerloss: %d iterations (", iters);
    for (int k = 0; k < T_KINDS; k++)
        printf("%s%s %d", k ? ", " : "", kind_names[k], kinds_seen[k]);
    printf("), %" PRId64 " acks=all messages acknowledged, lost %" PRId64 ", %" PRId64
           " unflushed acks=1 records dropped by the simulated loss, %" PRId64
           " kept, seed %" PRIu64 "\n",
           acked_all, lost, dropped_unflushed, kept_unflushed, o.seed);
    harness_cleanup(&h);
    for (int p = 0; p < NPART; p++) free(pm[p].v);
    return check_exit();
}
