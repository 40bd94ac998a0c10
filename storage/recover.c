/* recover.c — opening a partition from disk: discovering segments, reading
 * the recovery-point checkpoint, scanning batches, truncating a torn or
 * corrupt tail and rebuilding indexes.
 *
 * Rules (docs/storage.md, "Recovery"):
 *  R1. After a clean shutdown nothing is scanned but the active segment's
 *      tail after its last index entry, and only headers: enough to find the
 *      log end. If that tail does not end exactly at the file's end, the
 *      partition is recovered as after a crash.
 *  R2. After a crash, every byte after the recovery point (the checkpoint:
 *      offset, segment, position — all known fdatasync'ed) is scanned with
 *      full checks: length, magic, CRC-32C, dense offsets. Bytes before it are
 *      trusted. So the cost is proportional to unflushed data.
 *  R3. The log is truncated at the first batch that fails; every later
 *      segment is deleted (its offsets would leave a gap). Everything kept is
 *      fdatasync'ed before the partition is used, so durable = log end.
 *  R4. Index files are hints: any that fails its checks is rebuilt from the
 *      log.
 *  R5. (below, "producer state") Idempotent-producer state is not on disk
 *      apart from the log: it is rebuilt from batch headers when needed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "crc32c.h"
#include "io.h"
#include "partition_int.h"

/* ---- checkpoint ----------------------------------------------------------
 * File "recovery-point": two 64-byte slots written alternately, so a torn
 * write leaves the other slot intact; the valid slot with the higher sequence
 * wins. Slot: magic "SLRP" | version u32 | seq u64 | offset i64 | segment
 * base i64 | position u64 | segment max timestamp i64 | pad | crc32c u32 of
 * bytes [0, 60). Little-endian. Changing it: bump SL_STORAGE_FORMAT_VERSION. */

#define CKPT_SLOT 64
#define CKPT_NAME "recovery-point"

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef struct ckpt {
    uint64_t seq;
    int64_t offset, seg_base, max_ts;
    uint64_t pos;
} ckpt_t;

int part_ckpt_write(partition_t *p, int64_t offset, int64_t seg_base, uint64_t pos, int64_t max_ts)
{
    uint8_t b[CKPT_SLOT] = {0};
    uint64_t seq = ++p->ckpt_seq;
    memcpy(b, "SLRP", 4);
    put64(b + 4, SL_STORAGE_FORMAT_VERSION); /* low 4 bytes version, high 4 zero */
    put64(b + 8, seq);
    put64(b + 16, (uint64_t)offset);
    put64(b + 24, (uint64_t)seg_base);
    put64(b + 32, pos);
    put64(b + 40, (uint64_t)max_ts);
    uint32_t crc = sl_crc32c(0, b, 60);
    for (int i = 0; i < 4; i++) b[60 + i] = (uint8_t)(crc >> (8 * i));
    char path[4096];
    snprintf(path, sizeof path, "%s/" CKPT_NAME, p->dir);
    int fd = sl_io->open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return -errno;
    int rc = io_pwrite_all(fd, b, CKPT_SLOT, (off_t)((seq & 1) * CKPT_SLOT));
    sl_io->close(fd);
    return rc;
}

static int ckpt_read(partition_t *p, ckpt_t *out)
{
    uint8_t b[2 * CKPT_SLOT];
    char path[4096];
    snprintf(path, sizeof path, "%s/" CKPT_NAME, p->dir);
    int fd = sl_io->open(path, O_RDONLY, 0);
    if (fd < 0) return 0;
    ssize_t n = io_pread_all(fd, b, sizeof b, 0);
    sl_io->close(fd);
    int found = 0;
    for (int s = 0; s < 2 && n >= (ssize_t)((s + 1) * CKPT_SLOT); s++) {
        const uint8_t *q = b + s * CKPT_SLOT;
        uint32_t crc =
            (uint32_t)q[60] | (uint32_t)q[61] << 8 | (uint32_t)q[62] << 16 | (uint32_t)q[63] << 24;
        if (memcmp(q, "SLRP", 4) != 0 || sl_crc32c(0, q, 60) != crc) continue;
        if ((uint32_t)get64(q + 4) != SL_STORAGE_FORMAT_VERSION) continue;
        ckpt_t c = {get64(q + 8), (int64_t)get64(q + 16), (int64_t)get64(q + 24),
                    (int64_t)get64(q + 40), get64(q + 32)};
        if (!found || c.seq > out->seq) *out = c;
        found = 1;
    }
    if (found) p->ckpt_seq = out->seq;
    return found;
}

/* ---- scanning ------------------------------------------------------------ */

typedef struct scan {
    uint64_t end;        /* position after the last good batch */
    int64_t next_offset; /* offset after the last good batch */
    int bad;             /* stopped before the end of the file */
    char why[160];
} scan_t;

#define SCAN_CHUNK (1u << 20)

/* Walks the batches of s from `pos` (whose first batch must start at offset
 * `expect`) to file_size. With `crc`, each batch is fully validated;
 * otherwise only its header is read. Good batches go into the indexes.
 * Returns SL_OK (see sc->bad) or SL_ERR_STORAGE when reading fails. */
static int scan(partition_t *p, seg_t *s, int fd, uint64_t pos, int64_t expect, uint64_t file_size,
                int crc, scan_t *sc, sl_err_t *err)
{
    uint8_t *buf = NULL;
    size_t cap = 0, have = 0; /* buf holds file bytes [bpos, bpos+have) */
    uint64_t bpos = pos;
    int rc = SL_OK;
    sc->bad = 0;
    sc->why[0] = 0;
    while (pos < file_size) {
        uint64_t left = file_size - pos;
        if (left < SL_BATCH_HEADER_SIZE) {
            snprintf(sc->why, sizeof sc->why, "%" PRIu64 " trailing bytes, less than a header",
                     left);
            sc->bad = 1;
            break;
        }
        /* Make [pos, pos+61) available. */
        if (pos < bpos || pos + SL_BATCH_HEADER_SIZE > bpos + have) {
            size_t want = crc ? SCAN_CHUNK : SL_BATCH_HEADER_SIZE;
            if (want > left) want = (size_t)left;
            if (cap < want) {
                uint8_t *nb = realloc(buf, want);
                if (!nb) {
                    rc = sl_err_set(err, SL_ERR_NOMEM, "scan %s.log: out of memory", s->path);
                    goto out;
                }
                buf = nb;
                cap = want;
            }
            ssize_t r = io_pread_all(fd, buf, want, (off_t)pos);
            if (r < 0) {
                rc = sl_err_sys(err, (int)-r, "read %s.log @%" PRIu64, s->path, pos);
                goto out;
            }
            bpos = pos;
            have = (size_t)r;
            if (have < SL_BATCH_HEADER_SIZE) {
                snprintf(sc->why, sizeof sc->why, "file shorter than expected at %" PRIu64, pos);
                sc->bad = 1;
                break;
            }
        }
        const uint8_t *h = buf + (pos - bpos);
        int64_t base = (int64_t)sl_be64(h);
        int32_t blen = (int32_t)sl_be32(h + SL_BATCH_OFF_LENGTH);
        uint64_t total = SL_BATCH_LOG_OVERHEAD + (uint64_t)(int64_t)blen;
        if (blen < SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD || total > SL_BATCH_MAX_SIZE) {
            snprintf(sc->why, sizeof sc->why, "bad batch length %d at %" PRIu64, blen, pos);
            sc->bad = 1;
            break;
        }
        if (total > left) {
            snprintf(sc->why, sizeof sc->why,
                     "torn batch at %" PRIu64 ": %" PRIu64 " bytes, %" PRIu64 " in the file", pos,
                     total, left);
            sc->bad = 1;
            break;
        }
        if (base != expect) {
            snprintf(sc->why, sizeof sc->why,
                     "batch at %" PRIu64 " has offset %" PRId64 ", expected %" PRId64, pos, base,
                     expect);
            sc->bad = 1;
            break;
        }
        if (h[SL_BATCH_OFF_MAGIC] != SL_BATCH_MAGIC) {
            snprintf(sc->why, sizeof sc->why, "batch at %" PRIu64 " has magic %d", pos,
                     h[SL_BATCH_OFF_MAGIC]);
            sc->bad = 1;
            break;
        }
        int32_t lod = (int32_t)sl_be32(h + SL_BATCH_OFF_LAST_OFFSET_DELTA);
        int64_t max_ts = (int64_t)sl_be64(h + SL_BATCH_OFF_MAX_TIMESTAMP);
        if (crc) {
            if (pos + total > bpos + have) { /* refill so the whole batch is in buf */
                if (cap < total) {
                    uint8_t *nb = realloc(buf, (size_t)total);
                    if (!nb) {
                        rc = sl_err_set(err, SL_ERR_NOMEM, "scan %s.log: out of memory", s->path);
                        goto out;
                    }
                    buf = nb;
                    cap = (size_t)total;
                }
                size_t want = cap < left ? cap : (size_t)left;
                ssize_t r = io_pread_all(fd, buf, want, (off_t)pos);
                if (r < 0) {
                    rc = sl_err_sys(err, (int)-r, "read %s.log @%" PRIu64, s->path, pos);
                    goto out;
                }
                bpos = pos;
                have = (size_t)r;
                if (have < total) {
                    snprintf(sc->why, sizeof sc->why, "file shorter than expected at %" PRIu64,
                             pos);
                    sc->bad = 1;
                    break;
                }
                h = buf;
            }
            sl_batch_limits_t lim = {SL_BATCH_MAX_SIZE, 0};
            sl_err_t verr;
            if (sl_batch_validate(h, (size_t)total, &lim, NULL, &verr) != SL_OK) {
                snprintf(sc->why, sizeof sc->why, "batch at %" PRIu64 ": %s", pos, verr.msg);
                sc->bad = 1;
                break;
            }
        } else if (lod < 0) {
            snprintf(sc->why, sizeof sc->why, "batch at %" PRIu64 " has lastOffsetDelta %d", pos,
                     lod);
            sc->bad = 1;
            break;
        }
        /* CRC-valid need not mean sane: baseOffset is outside the CRC, and
         * offsets near INT64_MAX would overflow the sums below. */
        if (base > INT64_MAX - 1 - lod) {
            snprintf(sc->why, sizeof sc->why,
                     "batch at %" PRIu64 ": offset %" PRId64 " + %d overflows", pos, base, lod);
            sc->bad = 1;
            break;
        }
        if (part_index_batch(p, s, base, base + lod, pos, total, max_ts) < 0) {
            rc = sl_err_set(err, SL_ERR_NOMEM, "index %s: out of memory", s->path);
            goto out;
        }
        expect = base + lod + 1;
        pos += total;
    }
out:
    free(buf);
    sc->end = pos;
    sc->next_offset = expect;
    return rc;
}

int part_rebuild_index(partition_t *p, seg_t *s, sl_err_t *err)
{
    idx_release(&s->oidx);
    idx_release(&s->tidx);
    s->bytes_since_index = 0;
    int64_t keep_ts = s->max_ts;
    s->max_ts = INT64_MIN;
    scan_t sc = {0};
    int rc = scan(p, s, s->fd, 0, s->base, s->size, 0, &sc, err);
    if (rc != SL_OK) return rc;
    if (sc.bad || sc.end != s->size)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "rebuilding index of %s.log: %s", s->path,
                          sc.why);
    if (s->max_ts == INT64_MIN) s->max_ts = keep_ts;
    s->index_bad = 0;
    if (s->sealed) return part_persist_index(p, s, 1, err);
    return SL_OK;
}

/* ---- producer state --------------------------------------------------------
 * R5 from headers only: producer id, epoch and base sequence sit in the
 * header, and a batch that reached the log passed its CRC then. Read through
 * the I/O seam in chunks, so a run of small batches costs few preads. A
 * failed read or a header out of place is an error, never "no such
 * producer": treating the producer as new would append a retry twice. */

#define PSCAN_CHUNK (64u * 1024)

/* Walks the headers of pinned segment s that hold offsets in [from, to).
 * Returns SL_OK, SL_ERR_NOMEM or SL_ERR_STORAGE; *restart = 1 when the
 * index entry it started from did not point at the batch it names (the
 * caller walks the segment again from its start). */
static int pscan_seg(partition_t *p, seg_t *s, uint8_t *buf, uint64_t at, int64_t expect,
                     int64_t from, int64_t to, int64_t pid, int *restart, sl_err_t *err)
{
    uint64_t bpos = 0;
    size_t have = 0;
    int first = at > 0;
    *restart = 0;
    while (at < s->size) {
        if (at < bpos || at + SL_BATCH_HEADER_SIZE > bpos + have) {
            uint64_t left = s->size - at;
            size_t want = left < PSCAN_CHUNK ? (size_t)left : PSCAN_CHUNK;
            ssize_t r = io_pread_all(s->fd, buf, want, (off_t)at);
            if (r < 0) return sl_err_sys(err, (int)-r, "read %s.log @%" PRIu64, s->path, at);
            if (r < SL_BATCH_HEADER_SIZE)
                return sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read at %" PRIu64, s->path,
                                  at);
            bpos = at;
            have = (size_t)r;
        }
        sl_batch_hdr_t h;
        sl_batch_hdr_parse(buf + (at - bpos), &h);
        uint64_t sz = sl_batch_total_size(buf + (at - bpos));
        if (sz < SL_BATCH_HEADER_SIZE || at + sz > s->size || h.base_offset != expect ||
            h.last_offset_delta < 0 || h.magic != SL_BATCH_MAGIC ||
            h.base_offset > INT64_MAX - 1 - h.last_offset_delta) {
            if (first) {
                *restart = 1;
                return SL_OK;
            }
            return sl_err_set(err, SL_ERR_STORAGE,
                              "%s.log: no valid batch header at %" PRIu64
                              " (expected offset %" PRId64 ") while loading producer state",
                              s->path, at, expect);
        }
        first = 0;
        if (h.base_offset >= to) break;
        int64_t last = h.base_offset + h.last_offset_delta;
        if (last >= from && h.producer_id >= 0 && (pid < 0 || h.producer_id == pid) &&
            producers_record(p->producers, &h, h.base_offset) != SL_OK)
            return sl_err_set(err, SL_ERR_NOMEM, "producer state of %s-%d: out of memory", p->topic,
                              p->id);
        expect = last + 1;
        at += sz;
    }
    return SL_OK;
}

int part_scan_producers(partition_t *p, int64_t from, int64_t to, int64_t pid, sl_err_t *err)
{
    if (from >= to) return SL_OK;
    size_t k = 0;
    while (k + 1 < p->nsegs && p->segs[k + 1]->base <= from) k++;
    uint8_t *buf = malloc(PSCAN_CHUNK);
    if (!buf) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    int rc = SL_OK;
    for (size_t i = k; i < p->nsegs && p->segs[i]->base < to && rc == SL_OK; i++) {
        seg_t *s = p->segs[i];
        if ((rc = seg_pin(s, err)) != SL_OK) break;
        /* Start at the index entry at or before `from` when there is one
         * (indexes are hints: pscan_seg checks the batch it points at). */
        uint64_t at = 0;
        int64_t expect = s->base;
        if (!s->index_bad && from > s->base && from - s->base <= (int64_t)UINT32_MAX) {
            uint32_t rel = 0, pos = 0;
            idx_lookup_offset(&s->oidx, (uint32_t)(from - s->base), &rel, &pos);
            at = pos;
            expect = s->base + rel;
        }
        int restart = 0;
        rc = pscan_seg(p, s, buf, at, expect, from, to, pid, &restart, err);
        if (rc == SL_OK && restart)
            rc = pscan_seg(p, s, buf, 0, s->base, from, to, pid, &restart, err);
        seg_unpin(s);
    }
    free(buf);
    return rc;
}

/* ---- discovery ------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Bases of the "<20 digits>.log" files in dir, sorted; removes leftovers of
 * interrupted work (*.tmp) and side files whose log is missing. */
static int list_segments(partition_t *p, int64_t **out, size_t *n, sl_err_t *err)
{
    DIR *d = opendir(p->dir);
    if (!d) return sl_err_sys(err, errno, "opendir %s", p->dir);
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    int rc = SL_OK;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", p->dir, nm);
        if (l > 4 && strcmp(nm + l - 4, ".tmp") == 0) {
            sl_io->unlink(path);
            continue;
        }
        int digits = 0;
        while (digits < 20 && nm[digits] >= '0' && nm[digits] <= '9') digits++;
        if (digits != 20) continue;
        const char *ext = nm + 20;
        char num[21];
        memcpy(num, nm, 20);
        num[20] = 0;
        int64_t base = strtoll(num, NULL, 10);
        if (strcmp(ext, ".log") == 0) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *nv = realloc(v, cap * sizeof *v);
                if (!nv) {
                    rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
                    break;
                }
                v = nv;
            }
            v[cnt++] = base;
        } else if (strcmp(ext, ".index") == 0 || strcmp(ext, ".timeindex") == 0) {
            char logp[4096];
            seg_file_name(logp, sizeof logp, p->dir, base, ".log");
            if (access(logp, F_OK) != 0) sl_io->unlink(path);
        }
    }
    closedir(d);
    if (rc != SL_OK) {
        free(v);
        return rc;
    }
    if (cnt > 1) qsort(v, cnt, sizeof *v, cmp_i64);
    *out = v;
    *n = cnt;
    return SL_OK;
}

static int push_seg(partition_t *p, seg_t *s)
{
    if (p->nsegs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        seg_t **ns = realloc(p->segs, cap * sizeof *ns);
        if (!ns) return -ENOMEM;
        p->segs = ns;
        p->cap = cap;
    }
    p->segs[p->nsegs++] = s;
    return 0;
}

static uint64_t file_size_of(const seg_t *s)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s.log", s->path);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Reads a side index into heap mode (the active segment, or the segment
 * where recovery starts). Returns 1 if loaded and consistent with log_size. */
static int load_side(seg_t *s, idx_t *x, const char *ext, uint64_t log_size)
{
    int fd = seg_open_side(s, ext, O_RDONLY);
    if (fd < 0) return 0;
    int rc = idx_read_fd(x, fd);
    sl_io->close(fd);
    if (rc < 0) return 0;
    if (x->esize == IDX_OFFSET_ENTRY) {
        /* Entries at or past log_size may be legitimate (persisted after the
         * checkpoint was written): cut them before judging the rest. */
        size_t keep = x->n;
        while (keep > 0) {
            uint32_t rel, pos;
            idx_offset_at(x, keep - 1, &rel, &pos);
            if (pos < log_size) break;
            keep--;
        }
        idx_truncate(x, keep);
    }
    return x->esize == IDX_OFFSET_ENTRY ? idx_check_offset(x, log_size) : idx_check_time(x);
}

/* Makes a new empty active segment at `base` and pushes it. */
static int new_active(partition_t *p, int64_t base, sl_err_t *err)
{
    seg_t *s = seg_new(p->cache, p->dir, base);
    if (!s || push_seg(p, s) < 0) {
        if (s) seg_drop(s);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    p->dir_dirty = 1;
    return seg_create_files(s, err);
}

/* Clean open (R1): returns 1 when the tail checks out, 0 to fall back to
 * recovery. */
static int open_clean(partition_t *p, sl_err_t *err, int *rc)
{
    seg_t *a = p->segs[p->nsegs - 1];
    *rc = SL_OK;
    if (!load_side(a, &a->oidx, ".index", a->size) || !load_side(a, &a->tidx, ".timeindex", 0)) {
        idx_release(&a->oidx);
        idx_release(&a->tidx);
    }
    uint32_t rel = 0, pos = 0;
    if (a->oidx.n > 0) idx_offset_at(&a->oidx, a->oidx.n - 1, &rel, &pos);
    if (a->tidx.n > 0) {
        uint32_t trel;
        idx_time_at(&a->tidx, a->tidx.n - 1, &a->max_ts, &trel);
    }
    /* The last index entry was already recorded; scan() re-adds it. */
    if (a->oidx.n > 0) idx_truncate(&a->oidx, a->oidx.n - 1);
    a->bytes_since_index = a->oidx.n > 0 ? INT64_MAX / 2 : 0;
    if ((*rc = seg_pin(a, err)) != SL_OK) return 0;
    scan_t sc = {0};
    *rc = scan(p, a, a->fd, pos, a->base + rel, a->size, 0, &sc, err);
    seg_unpin(a);
    if (*rc != SL_OK || sc.bad || sc.end != a->size) {
        idx_release(&a->oidx);
        idx_release(&a->tidx);
        a->max_ts = INT64_MIN;
        return 0;
    }
    a->next_offset = sc.next_offset;
    return 1;
}

int part_load(partition_t *p, int recover, partition_recovery_t *rec, sl_err_t *err)
{
    partition_recovery_t dummy;
    if (!rec) rec = &dummy;
    memset(rec, 0, sizeof *rec);
    int64_t *bases = NULL;
    size_t nb = 0;
    int rc = list_segments(p, &bases, &nb, err);
    if (rc != SL_OK) return rc;
    for (size_t i = 0; i < nb; i++) {
        seg_t *s = seg_new(p->cache, p->dir, bases[i]);
        if (!s || push_seg(p, s) < 0) {
            if (s) seg_drop(s);
            free(bases);
            return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        }
        s->size = file_size_of(s);
        s->sealed = i + 1 < nb;
        s->next_offset = i + 1 < nb ? bases[i + 1] : s->base;
    }
    free(bases);

    if (p->nsegs == 0) {
        if ((rc = new_active(p, 0, err)) != SL_OK) return rc;
        recover = 0;
    } else if (!recover) {
        if (!open_clean(p, err, &rc)) {
            if (rc != SL_OK) return rc;
            recover = 1;
        }
    }

    if (recover) {
        rec->ran = 1;
        /* Where to start (R2). */
        ckpt_t ck = {0};
        size_t k = 0;
        uint64_t from = 0;
        int64_t expect = p->segs[0]->base;
        if (ckpt_read(p, &ck)) {
            for (size_t i = 0; i < p->nsegs; i++) {
                seg_t *s = p->segs[i];
                if (s->base == ck.seg_base && ck.offset >= s->base && ck.pos <= s->size) {
                    k = i;
                    from = ck.pos;
                    expect = ck.offset;
                    break;
                }
            }
        }
        seg_t *s = p->segs[k];
        idx_release(&s->oidx);
        idx_release(&s->tidx);
        s->bytes_since_index = 0;
        if (from > 0) {
            /* Keep index entries below the recovery point; a bad index means a
             * full scan of this segment. */
            if (load_side(s, &s->oidx, ".index", from) && load_side(s, &s->tidx, ".timeindex", 0)) {
                size_t keep = s->tidx.n;
                for (size_t i = 0; i < s->tidx.n; i++) {
                    int64_t ts;
                    uint32_t rel;
                    idx_time_at(&s->tidx, i, &ts, &rel);
                    if (s->base + (int64_t)rel >= ck.offset) {
                        keep = i;
                        break;
                    }
                }
                idx_truncate(&s->tidx, keep);
                s->max_ts = ck.max_ts;
                s->bytes_since_index = INT64_MAX / 2; /* index the first batch after the RP */
            } else {
                rec->indexes_rebuilt++;
                idx_release(&s->oidx);
                idx_release(&s->tidx);
                from = 0;
                expect = s->base;
            }
        }
        size_t bad_at = p->nsegs; /* first segment to delete */
        for (size_t i = k; i < p->nsegs; i++) {
            s = p->segs[i];
            if (i > k) {
                idx_release(&s->oidx);
                idx_release(&s->tidx);
                s->bytes_since_index = 0;
                s->max_ts = INT64_MIN;
                from = 0;
                if (s->base != expect) { /* a gap: everything from here is unusable */
                    snprintf(rec->reason, sizeof rec->reason,
                             "segment %020" PRId64 " starts at offset %" PRId64
                             ", expected %" PRId64,
                             s->base, s->base, expect);
                    bad_at = i;
                    break;
                }
            }
            /* Unsealed while it is rescanned: pinning a sealed segment maps
             * its on-disk indexes, and the scan would then append rebuilt
             * entries next to a stale mapping that readers keep using (and
             * that part_persist_index never rewrites). The rebuilt heap
             * index is persisted below, once the segment is sealed again. */
            s->sealed = 0;
            if ((rc = seg_pin(s, err)) != SL_OK) return rc;
            scan_t sc = {0};
            rc = scan(p, s, s->fd, from, expect, s->size, 1, &sc, err);
            if (rc == SL_OK && sc.bad) {
                rec->bytes_truncated += s->size - sc.end;
                snprintf(rec->reason, sizeof rec->reason, "%s.log: %s", s->path, sc.why);
                if (sl_io->ftruncate(s->fd, (off_t)sc.end) < 0)
                    rc = sl_err_sys(err, errno, "truncate %s.log to %" PRIu64, s->path, sc.end);
                else
                    bad_at = i + 1;
            }
            rec->bytes_scanned += sc.end - from;
            s->size = sc.end;
            s->next_offset = sc.next_offset;
            expect = sc.next_offset;
            if (rc == SL_OK && sl_io->fdatasync(s->fd) < 0)
                rc = sl_err_sys(err, errno, "fdatasync %s.log", s->path);
            seg_unpin(s);
            if (rc != SL_OK) return rc;
            if (bad_at == i + 1) break;
        }
        /* R3: later segments would leave a gap in the offsets. */
        for (size_t i = bad_at; i < p->nsegs; i++) {
            rec->bytes_truncated += p->segs[i]->size;
            rec->segments_deleted++;
            seg_unlink_files(p->segs[i], NULL);
            seg_drop(p->segs[i]);
            p->dir_dirty = 1;
        }
        if (bad_at < p->nsegs) p->nsegs = bad_at;
        if (p->nsegs == 0 && (rc = new_active(p, expect, err)) != SL_OK) return rc;
        /* Everything scanned is now sealed (but the last) with fresh indexes. */
        for (size_t i = k; i < p->nsegs; i++) {
            s = p->segs[i];
            s->sealed = i + 1 < p->nsegs;
            if ((rc = seg_pin(s, err)) != SL_OK) return rc;
            rc = part_persist_index(p, s, 1, err);
            seg_unpin(s);
            if (rc != SL_OK) return rc;
        }
        if (p->dir_dirty) {
            int e = io_fsync_dir(p->dir);
            if (e < 0) return sl_err_sys(err, -e, "fsync %s", p->dir);
            p->dir_dirty = 0;
        }
    }

    seg_t *a = p->segs[p->nsegs - 1];
    a->sealed = 0;
    atomic_store(&p->log_start, p->segs[0]->base);
    atomic_store(&p->leo, a->next_offset);
    atomic_store(&p->durable, a->next_offset);
    if (recover) part_ckpt_write(p, a->next_offset, a->base, a->size, a->max_ts);
    return SL_OK;
}
