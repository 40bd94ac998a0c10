/* test_bitflip.c — a byte flipped inside a sealed (older, not the last)
 * segment is never delivered as valid data, and `sluiced --verify` finds it.
 *
 * The broker runs with --log.segment.bytes=65536, so every partition has
 * several segments. After a clean stop (SIGTERM) one byte in the CRC-covered
 * part (bytes ≥ 21) of one batch of a sealed segment is changed, chosen by
 * the seed: in the records (a value byte: without the CRC check, corrupted
 * content would reach the application) or in the header fields after the
 * CRC. Proved:
 *
 *  - `sluiced --verify --log.dirs=DIR` exits 1 while a broker holds the
 *    directory, 0 on the clean directory, 3 after the flip, and prints a
 *    CORRUPT line naming the topic and partition, the segment file and the
 *    batch's base offset, then a summary line;
 *  - after restarting (clean, then also after a SIGKILL) a libsluice consumer
 *    reading the partition from 0 gets exactly one SLUICE_ERR__BAD_MSG, at the
 *    batch's base offset, never a record of that batch, and every other
 *    record with its acknowledged content at its acknowledged offset; the
 *    other partitions read clean;
 *  - with the partition's recovery-point checkpoint lost, an unclean
 *    restart scans the whole log and (as docs/storage.md says) truncates at
 *    the corrupt batch, deleting every later segment: the log then ends at
 *    that batch's base offset, everything before it reads back and nothing
 *    after it is served. The acknowledged records this deletes are counted
 *    in the output.
 *
 * Options: --cycles N (independent runs, alternating records / header
 * flips; default 4), --seed S.
 */
#include <ctype.h>
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

#define TOPIC "bitflip"
#define NPART 3
#define NMSG  3000 /* per partition: about 7 segments of 64 KiB each */

static harness_t h;
static const char *const extra[] = {"--log.segment.bytes=65536", NULL};
static uint64_t *expect[NPART]; /* offset -> rl_pack(pid, seq) */

static void dr_cb(sluice_producer_t *p, const sluice_message_t *m, void *opaque)
{
    (void)p;
    int64_t *bad = opaque;
    if (m->err || m->offset < 0 || m->offset >= NMSG || m->partition < 0 || m->partition >= NPART) {
        if ((*bad)++ == 0)
            fprintf(stderr, "delivery report: %s, partition %d offset %" PRId64 "\n",
                    sluice_err2str(m->err), (int)m->partition, m->offset);
        return;
    }
    expect[m->partition][m->offset] = (uint64_t)(uintptr_t)m->opaque;
}

/* 1 if tok occurs in s with no digit right before or after it. */
static int has_number(const char *s, const char *tok)
{
    size_t l = strlen(tok);
    for (const char *p = strstr(s, tok); p; p = strstr(p + 1, tok)) {
        int before = p > s && isdigit((unsigned char)p[-1]);
        int after = isdigit((unsigned char)p[l]);
        if (!before && !after) return 1;
    }
    return 0;
}

/* Runs sluiced --verify on the data dir; returns its exit status. */
static int run_verify(char **out)
{
    char arg[400];
    snprintf(arg, sizeof arg, "--log.dirs=%s", h.data);
    char *argv[] = {(char *)SLUICED_PATH, (char *)"--verify", arg, NULL};
    return rl_run(argv, out, 120000);
}

typedef struct readck {
    int32_t part;
    int64_t bad_first, bad_last; /* the corrupted batch (-1 for none) */
    int64_t bad_msgs, other_errors, in_bad, wrong, delivered;
    int64_t err_offset;
} readck_t;

static void read_msg(void *arg, size_t idx, const sluice_message_t *m)
{
    readck_t *r = &((readck_t *)arg)[idx];
    if (m->err == SLUICE_ERR__BAD_MSG) {
        r->bad_msgs++;
        r->err_offset = m->offset;
        return;
    }
    if (m->err) {
        r->other_errors++;
        return;
    }
    r->delivered++;
    if (m->offset >= r->bad_first && m->offset <= r->bad_last) r->in_bad++;
    uint32_t pid = 0;
    uint64_t seq = 0;
    if (rl_payload_parse(m->value, m->value_len, &pid, &seq) != 0 || m->offset < 0 ||
        m->offset >= NMSG || expect[r->part][m->offset] != seq || pid != (uint32_t)r->part) {
        if (r->wrong++ < 5)
            fprintf(stderr, "partition %d offset %" PRId64 ": unexpected content\n", (int)r->part,
                    m->offset);
    }
}

/* Reads every partition from 0; the corrupted one must show exactly the
 * flipped batch as one BAD_MSG and nothing of it. */
static void read_back(const char *when, int32_t part, int64_t first, int64_t last)
{
    rl_part_t parts[NPART];
    readck_t ck[NPART];
    memset(parts, 0, sizeof parts);
    memset(ck, 0, sizeof ck);
    for (int p = 0; p < NPART; p++) {
        parts[p].topic = TOPIC;
        parts[p].partition = p;
        parts[p].from = 0;
        parts[p].to = NMSG;
        ck[p].part = p;
        ck[p].bad_first = p == part ? first : -1;
        ck[p].bad_last = p == part ? last : -2;
        ck[p].err_offset = -1;
    }
    rl_read(&h, parts, NPART, read_msg, ck, 60000, NULL);
    for (int p = 0; p < NPART; p++) {
        int64_t want = p == part ? NMSG - (last - first + 1) : NMSG;
        CHECK_MSG(ck[p].delivered == want && ck[p].wrong == 0 && ck[p].other_errors == 0 &&
                      parts[p].eof_at == NMSG,
                  "%s: partition %d: %" PRId64 " records delivered (want %" PRId64 "), %" PRId64
                  " with wrong content, %" PRId64 " other errors, end at %" PRId64,
                  when, p, ck[p].delivered, want, ck[p].wrong, ck[p].other_errors, parts[p].eof_at);
    }
    CHECK_MSG(ck[part].bad_msgs == 1 && ck[part].err_offset == first,
              "%s: %" PRId64 " BAD_MSG errors (want 1, at offset %" PRId64 ", got %" PRId64 ")",
              when, ck[part].bad_msgs, first, ck[part].err_offset);
    CHECK_MSG(ck[part].in_bad == 0,
              "%s: %" PRId64 " records of the corrupt batch [%" PRId64 ", %" PRId64
              "] were delivered as valid",
              when, ck[part].in_bad, first, last);
    for (int p = 0; p < NPART; p++)
        if (p != part) CHECK_EQ_INT(ck[p].bad_msgs, 0);
}

/* One fresh broker, one flip: in the records when in_records, else in the
 * header fields after the CRC. */
static void run_once(rl_rng_t *rng_, int in_records, uint64_t seed)
{
    rl_rng_t rng = *rng_;
    rng_->s = rl_next(rng_);
    harness_init(&h, "bitflip");
    rl_guard(&h);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    CHECK_FATAL(rl_create_topic(&h, TOPIC, NPART, NULL, 0) == 0);
    int64_t bad = 0;
    for (int p = 0; p < NPART; p++) {
        expect[p] = calloc(NMSG, sizeof *expect[p]);
        CHECK_FATAL(expect[p] != NULL);
        memset(expect[p], 0xff, NMSG * sizeof *expect[p]);
    }
    const char *kv[] = {"acks", "all", "linger.ms", "5", "batch.size", "4096", NULL};
    sluice_producer_t *pr = rl_producer(&h, kv, dr_cb, &bad);
    char buf[256];
    /* The broker refuses a request whose batches add up to more than
     * segment.bytes (RECORD_LIST_TOO_LARGE), and the producer packs all of a
     * partition's closed batches into one request: flush every 200 messages
     * (< 48 KiB). */
    for (int i0 = 0; i0 < NMSG; i0 += 200) {
        for (int p = 0; p < NPART; p++)
            for (int i = i0; i < i0 + 200 && i < NMSG; i++) {
                /* pid = partition, seq = i */
                size_t len = rl_payload(buf, sizeof buf, (uint32_t)p, (uint64_t)i,
                                        (size_t)rl_range(&rng, RL_PAYLOAD_MIN, 200));
                CHECK_EQ_INT(sluice_produce(pr, TOPIC, p, NULL, 0, buf, len, NULL, 0, 0,
                                            (void *)(uintptr_t)i),
                             SLUICE_OK);
            }
        CHECK_EQ_INT(sluice_producer_flush(pr, 60000), SLUICE_OK);
    }
    sluice_producer_destroy(pr);
    CHECK_EQ_INT(bad, 0);
    for (int p = 0; p < NPART; p++)
        for (int i = 0; i < NMSG; i++) CHECK_FATAL(expect[p][i] != UINT64_MAX);

    /* --verify refuses a directory a broker holds. */
    char *out = NULL;
    int rc = run_verify(&out);
    CHECK_MSG(rc == 1, "--verify with the broker running: exit %d (want 1), output:\n%s", rc,
              out ? out : "");
    free(out);

    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    rc = run_verify(&out);
    CHECK_MSG(rc == 0 && out && strstr(out, "CORRUPT") == NULL,
              "--verify on the clean directory: exit %d (want 0), output:\n%s", rc, out ? out : "");
    free(out);

    /* Pick a sealed segment (not the first, never the last) and a batch. */
    int32_t part = (int32_t)rl_range(&rng, 0, NPART - 1);
    char dir[600], path[700];
    rl_part_dir(&h, TOPIC, part, dir, sizeof dir);
    int64_t bases[64];
    int nseg = rl_segments(dir, bases, 64);
    CHECK_FATAL(nseg >= 4);
    int si = (int)rl_range(&rng, 1, (uint64_t)nseg - 2);
    rl_segment_path(dir, bases[si], path, sizeof path);
    size_t len = 0;
    uint8_t *seg = rl_slurp(path, &len);
    CHECK_FATAL(seg != NULL);
    rl_batch_t *b = NULL;
    uint64_t end = 0;
    size_t nb = rl_walk(seg, len, bases[si], &b, &end);
    CHECK_FATAL(nb >= 3 && end == len);
    size_t bi = (size_t)rl_range(&rng, 0, nb - 1);
    uint64_t at = in_records ? rl_range(&rng, SL_BATCH_HEADER_SIZE, b[bi].size - 1)
                             : rl_range(&rng, SL_BATCH_OFF_ATTRIBUTES, SL_BATCH_HEADER_SIZE - 1);
    /* Not in lastOffsetDelta (bytes 23..26): the consumer skips a bad
     * batch by the range its header claims, so a flip there that widens it
     * also skips the next batch's first records (a known limit, noted in
     * docs/RELIABILITY.md); this test checks exactly one batch is lost. */
    if (!in_records && at >= SL_BATCH_OFF_LAST_OFFSET_DELTA &&
        at < SL_BATCH_OFF_LAST_OFFSET_DELTA + 4)
        at = SL_BATCH_OFF_LAST_OFFSET_DELTA + 4;          /* baseTimestamp */
    uint8_t mask = (uint8_t)(1u << rl_range(&rng, 0, 7)); /* one bit */
    seg[b[bi].pos + at] ^= mask;
    CHECK_FATAL(rl_write_file(path, seg, len) == 0);
    int64_t first = b[bi].base, last = b[bi].last;
    char segname[64];
    snprintf(segname, sizeof segname, "%020" PRId64 ".log", bases[si]);
    printf("bitflip: partition %d, segment %s (%d of %d), batch %zu at byte %" PRIu64
           " (offsets %" PRId64 "..%" PRId64 "), bit %#x of byte %" PRIu64 " (%s)\n",
           (int)part, segname, si, nseg, bi, b[bi].pos, first, last, mask, at,
           in_records ? "records" : "header after the CRC");
    free(b);
    free(seg);

    /* --verify names it. */
    rc = run_verify(&out);
    CHECK_MSG(rc == 3, "--verify after the flip: exit %d (want 3), output:\n%s", rc,
              out ? out : "");
    int lines = 0, named = 0;
    char offs[32], pnum[16];
    snprintf(offs, sizeof offs, "%" PRId64, first);
    snprintf(pnum, sizeof pnum, "%d", (int)part);
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "CORRUPT")) continue;
        lines++;
        if (strstr(line, TOPIC) && has_number(line, pnum) && strstr(line, segname) &&
            has_number(line, offs))
            named++;
        else
            fprintf(stderr,
                    "CORRUPT line without topic %s, partition %s, segment %s or offset %s: %s\n",
                    TOPIC, pnum, segname, offs, line);
    }
    CHECK_MSG(lines == 1 && named == 1,
              "--verify printed %d CORRUPT lines, %d naming the batch (want 1 and 1)", lines,
              named);
    free(out);

    CHECK_FATAL(harness_start(&h, extra) == 0);
    read_back("after a clean restart", part, first, last);
    /* A crash does not make the bad batch valid, nor drop what follows it. */
    int st = harness_stop(&h, SIGKILL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    read_back("after SIGKILL and restart", part, first, last);
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    rc = run_verify(&out);
    CHECK_MSG(rc == 3, "--verify at the end: exit %d (want 3)", rc);
    free(out);
    printf("bitflip: corrupt batch [%" PRId64 ", %" PRId64 "] reported as BAD_MSG, none of its "
           "%" PRId64 " records delivered, seed %" PRIu64 "\n",
           first, last, last - first + 1, seed);

    /* A crash with the partition's checkpoint lost: recovery scans the whole
     * log, and docs/storage.md says it truncates at the first bad batch and
     * deletes every later segment. Pinned here: the log then ends exactly at
     * the corrupt batch, everything before it reads back, nothing after it
     * is served. The acknowledged records after it are gone; the count is
     * printed (a bit flip in old data costs everything written after it). */
    CHECK_FATAL(harness_start(&h, extra) == 0);
    st = harness_stop(&h, SIGKILL); /* the next start is unclean */
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    char ck[700];
    snprintf(ck, sizeof ck, "%s/recovery-point", dir);
    CHECK_FATAL(unlink(ck) == 0);
    CHECK_FATAL(harness_start(&h, extra) == 0);
    int64_t ends[NPART] = {-1, -1, -1};
    CHECK_EQ_INT(rl_describe(&h, TOPIC, ends, NPART), NPART);
    CHECK_MSG(ends[part] == first,
              "full-scan recovery: partition %d ends at %" PRId64
              ", want the corrupt batch's base %" PRId64,
              (int)part, ends[part], first);
    rl_part_t rp;
    memset(&rp, 0, sizeof rp);
    rp.topic = TOPIC;
    rp.partition = part;
    rp.to = first;
    readck_t rc1;
    memset(&rc1, 0, sizeof rc1);
    rc1.part = part;
    rc1.bad_first = first;
    rc1.bad_last = INT64_MAX;
    rc1.err_offset = -1;
    readck_t rcs[NPART];
    for (int p = 0; p < NPART; p++) rcs[p] = rc1;
    rl_read(&h, &rp, 1, read_msg, rcs, 60000, NULL);
    CHECK_MSG(rp.errors == 0 && rp.gaps == 0 && rp.eof_at == first && rcs[0].delivered == first &&
                  rcs[0].in_bad == 0 && rcs[0].wrong == 0,
              "full-scan recovery: %" PRId64 " records read (want %" PRId64 "), %" PRId64
              " errors, end at %" PRId64 ", %" PRId64 " at or after the corrupt batch",
              rcs[0].delivered, first, rp.errors, rp.eof_at, rcs[0].in_bad);
    int64_t segs_left = rl_segments(dir, bases, 64);
    printf("bitflip: with the checkpoint lost, an unclean restart truncated partition %d at offset "
           "%" PRId64 ": %" PRId64
           " acknowledged records after the corrupt batch deleted, %d of %d "
           "segments left\n",
           (int)part, first, (int64_t)NMSG - 1 - last, (int)segs_left, nseg);
    CHECK_EQ_INT(harness_stop(&h, SIGTERM), 0);
    harness_cleanup(&h);
    for (int p = 0; p < NPART; p++) free(expect[p]);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rl_opts_t o;
    rl_parse_args(argc, argv, 4, &o);
    rl_allow_flags(&o, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bitflip: seed %" PRIu64 " (rerun with --seed %" PRIu64 "), %d runs\n", o.seed, o.seed,
           o.cycles);
    rl_rng_t rng = {o.seed};
    for (int c = 0; c < o.cycles && !check_failures; c++) run_once(&rng, c % 2 == 0, o.seed);
    return check_exit();
}
