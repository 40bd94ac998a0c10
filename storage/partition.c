/* partition.c — the live log of one partition: append, read, flush, roll,
 * retention. Opening and recovery live in recover.c.
 *
 * How the invariants of partition.h are kept:
 *  1. Offsets are assigned under mu from leo, which only append moves; the
 *     write goes to the active segment's end; on failure the file is
 *     truncated back so the next append starts at the same place.
 *  2. partition_flush samples leo and the dirty segments under mu, syncs
 *     them outside it, then raises durable to the sample.
 *  3. leo (atomic) is stored after the segment size and indexes, so a reader
 *     that saw it finds the bytes; reads take mu for the lookup.
 *  4. part_index_batch appends entries in log order only.
 *  5. The checkpoint is written after the fdatasync, with the sampled offset.
 *  6. check_producer runs under mu in the same hold as the write, and the
 *     batch is recorded before mu is released; the table starts unloaded at
 *     open (after recovery truncated whatever it did), a failed load or
 *     record clears it, retention trims it, mark_deleted clears it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "io.h"
#include "clock.h"
#include "partition_int.h"

int part_index_batch(partition_t *p, seg_t *s, int64_t base_off, int64_t last_off, uint64_t pos,
                     uint64_t size, int64_t max_ts)
{
    if (s->max_ts == INT64_MIN || max_ts > s->max_ts) s->max_ts = max_ts;
    /* Kafka's rule: index a batch once more than the interval has been
     * written since the last entry. The first batch of a segment needs no
     * entry (position 0 is the default). */
    if (s->bytes_since_index > p->conf.index_interval_bytes) {
        if (idx_append_offset(&s->oidx, (uint32_t)(base_off - s->base), (uint32_t)pos) < 0)
            return -ENOMEM;
        int64_t last_ts = INT64_MIN;
        if (s->tidx.n > 0) {
            uint32_t rel;
            idx_time_at(&s->tidx, s->tidx.n - 1, &last_ts, &rel);
        }
        if (s->max_ts > last_ts &&
            idx_append_time(&s->tidx, s->max_ts, (uint32_t)(last_off - s->base)) < 0)
            return -ENOMEM;
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += (int64_t)size;
    s->next_offset = last_off + 1;
    return 0;
}

int part_persist_index(partition_t *p, seg_t *s, int full, sl_err_t *err)
{
    (void)p;
    if (s->sealed && s->max_ts != INT64_MIN && s->next_offset > s->base) {
        /* A closed segment's last time entry is its max timestamp, so
         * retention reads one entry instead of scanning. */
        int64_t last_ts = INT64_MIN;
        uint32_t rel = 0;
        if (s->tidx.n > 0) idx_time_at(&s->tidx, s->tidx.n - 1, &last_ts, &rel);
        if (s->max_ts > last_ts && !s->tidx.map &&
            idx_append_time(&s->tidx, s->max_ts, (uint32_t)(s->next_offset - 1 - s->base)) < 0)
            return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    static const char *ext[2] = {".index", ".timeindex"};
    idx_t *x[2] = {&s->oidx, &s->tidx};
    for (int i = 0; i < 2; i++) {
        if (x[i]->map || (!full && x[i]->persisted == x[i]->n)) continue;
        int fd = seg_open_side(s, ext[i], O_RDWR | O_CREAT);
        if (fd < 0) return sl_err_sys(err, -fd, "open %s%s", s->path, ext[i]);
        int rc = idx_persist(x[i], fd, full);
        sl_io->close(fd);
        if (rc < 0) return sl_err_sys(err, -rc, "write %s%s", s->path, ext[i]);
    }
    return SL_OK;
}

int partition_open(const partition_opts_t *o, partition_t **out, partition_recovery_t *rec,
                   sl_err_t *err)
{
    *out = NULL;
    int e = io_mkdir_p(o->dir);
    if (e < 0) return sl_err_sys(err, -e, "mkdir %s", o->dir);
    partition_t *p = calloc(1, sizeof *p);
    if (!p) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->flush_mu, NULL);
    p->dir = strdup(o->dir);
    p->topic = strdup(o->topic ? o->topic : "");
    p->id = o->id;
    p->conf = *o->conf;
    p->cache = o->cache;
    p->on_dirty = o->on_dirty;
    p->on_dirty_arg = o->on_dirty_arg;
    p->producers = producers_new(o->producers ? o->producers : producers_bound_default());
    atomic_store(&p->refs, 1);
    int rc;
    if (!p->dir || !p->topic || !p->producers) {
        rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = part_load(p, o->recover, rec, err);
    if (rc != SL_OK) goto fail;
    /* segment.ms counts from a segment's first append; for one found on disk
     * with data, from now (its first append's time is not recorded). */
    seg_t *act = p->segs[p->nsegs - 1];
    if (act->size > 0) act->created_ms = o->now_ms ? o->now_ms : sl_wall_ms();
    *out = p;
    return SL_OK;
fail:
    partition_close(p, 1);
    return rc;
}

void partition_close(partition_t *p, int discard)
{
    if (!p) return;
    if (!discard && !p->failed && p->nsegs > 0) {
        sl_err_t err;
        if (partition_flush(p, &err) == SL_OK) {
            seg_t *a = p->segs[p->nsegs - 1];
            if (seg_pin(a, NULL) == SL_OK) {
                part_persist_index(p, a, 1, NULL);
                seg_unpin(a);
            }
        }
    }
    for (size_t i = 0; i < p->nsegs; i++) seg_drop(p->segs[i]);
    free(p->segs);
    producers_free(p->producers);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->flush_mu);
    free(p->dir);
    free(p->topic);
    free(p);
}

void partition_ref(partition_t *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void partition_unref(partition_t *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    if (p->on_close) p->on_close(p->on_close_arg, p);
    partition_close(p, atomic_load(&p->deleted));
}

void partition_mark_deleted(partition_t *p)
{
    /* Under mu: once this returns no append is running or will start. */
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->deleted, 1);
    /* No append will check it again: give its states back to the bound now
     * rather than when the last reader lets go. */
    producers_clear(p->producers);
    pthread_mutex_unlock(&p->mu);
}

void partition_set_on_close(partition_t *p, void (*fn)(void *arg, partition_t *p), void *arg)
{
    p->on_close = fn;
    p->on_close_arg = arg;
}

/* Seals the active segment and starts a new one at leo. [mu] held. */
static int roll(partition_t *p, int64_t now_ms, sl_err_t *err)
{
    seg_t *a = p->segs[p->nsegs - 1];
    int rc = seg_pin(a, err);
    if (rc != SL_OK) return rc;
    a->sealed = 1;
    rc = part_persist_index(p, a, 1, err);
    seg_unpin(a);
    if (rc != SL_OK) {
        a->sealed = 0;
        return rc;
    }
    if (p->nsegs == p->cap) {
        size_t cap = p->cap * 2;
        seg_t **ns = realloc(p->segs, cap * sizeof *ns);
        if (!ns) {
            a->sealed = 0;
            return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        }
        p->segs = ns;
        p->cap = cap;
    }
    seg_t *s = seg_new(p->cache, p->dir, atomic_load(&p->leo));
    if (!s) {
        a->sealed = 0;
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    if ((rc = seg_create_files(s, err)) != SL_OK) {
        seg_unlink_files(s, NULL);
        seg_drop(s);
        a->sealed = 0;
        return rc;
    }
    (void)now_ms; /* the new segment's age starts at its first append */
    p->segs[p->nsegs++] = s;
    p->dir_dirty = 1;
    return SL_OK;
}

static int roll_due(const partition_t *p, const seg_t *a, uint64_t add, int64_t last_off,
                    int64_t now_ms)
{
    if (a->size == 0) return 0;
    if (a->size + add > (uint64_t)p->conf.segment_bytes) return 1;
    if (now_ms - a->created_ms >= p->conf.segment_ms) return 1;
    /* Relative offsets and positions are u32 in the index. */
    if (last_off - a->base > (int64_t)UINT32_MAX - 1) return 1;
    return 0;
}

/* Where a rebuild of the producer table starts reading. [mu] */
static int64_t producer_scan_from(const partition_t *p)
{
    int64_t start = atomic_load(&p->log_start), leo = atomic_load(&p->leo);
    return leo - PRODUCERS_SCAN_OFFSETS > start ? leo - PRODUCERS_SCAN_OFFSETS : start;
}

/* Invariant 6: decides about idempotent batch h. Loads the table first if
 * this is the first idempotent batch since open (or since a failed load),
 * and rescans for h's producer when it is missing but may have been
 * evicted. Returns SL_OK (append), SL_ERR_EXISTS (a retry: offsets in
 * *dup_base, *dup_last) or an error. [mu] */
static int check_producer(partition_t *p, const sl_batch_hdr_t *h, int64_t *dup_base,
                          int64_t *dup_last, sl_err_t *err)
{
    producers_t *t = p->producers;
    int64_t from = producer_scan_from(p), leo = atomic_load(&p->leo);
    int rc;
    if (!producers_loaded(t)) {
        if ((rc = part_scan_producers(p, from, leo, -1, err)) != SL_OK) {
            producers_clear(t);
            return rc;
        }
        producers_set_loaded(t);
    }
    producer_t *s = producers_get(t, h->producer_id);
    int64_t hi = producers_evicted_hi(t);
    if (!s && hi >= from) {
        /* Its batches, if any, lie at or below the newest evicted one. */
        int64_t to = hi + 1 < leo ? hi + 1 : leo;
        if ((rc = part_scan_producers(p, from, to, h->producer_id, err)) != SL_OK) {
            producers_clear(t);
            return rc;
        }
        s = producers_get(t, h->producer_id);
    }
    return producers_check(s, h, dup_base, dup_last, err);
}

int partition_append(partition_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                     partition_append_info_t *info, sl_err_t *err)
{
    sl_batch_limits_t lim = {(uint32_t)p->conf.max_message_bytes, 0};
    size_t nb;
    int rc = sl_batch_validate_set(buf, len, &lim, &nb, err);
    if (rc != SL_OK) return rc;
    /* What no writer may store, whichever protocol it came by (batch.h).
     * Kafka's rule: an idempotent batch travels alone, so one verdict
     * covers the whole call. */
    sl_batch_hdr_t idem = {.producer_id = -1};
    int nidem = 0;
    for (size_t off = 0; off < len; off += (size_t)sl_batch_total_size(buf + off)) {
        sl_batch_hdr_t h;
        sl_batch_hdr_parse(buf + off, &h);
        if ((rc = sl_batch_validate_produce(&h, err)) != SL_OK) return rc;
        if (h.producer_id >= 0 && nidem++ == 0) idem = h;
    }
    if (nidem > 0 && nb > 1)
        return sl_err_set(err, SL_ERR_INVALID_RECORD,
                          "%s-%d: a batch with producerId %" PRId64
                          " must be the only batch of its append (%zu batches)",
                          p->topic, p->id, idem.producer_id, nb);
    /* A request larger than segment.bytes (several batches; a client may
     * pack megabytes into one) goes whole into a fresh segment, which it
     * then overfills, as a single oversized batch does: splitting it across
     * segments would break the all-or-nothing append. Sizes stay far below
     * the index's 4 GiB positions (max.request.size is at most 1 GiB). */
    (void)nb;

    pthread_mutex_lock(&p->mu);
    if (atomic_load(&p->deleted)) {
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "%s-%d: topic deleted", p->topic,
                        p->id);
        goto out;
    }
    if (p->failed) {
        rc = sl_err_set(err, SL_ERR_STORAGE, "%s-%d: %s", p->topic, p->id, p->failed_msg);
        goto out;
    }
    if (idem.producer_id >= 0) {
        int64_t dup_base = -1, dup_last = -1;
        rc = check_producer(p, &idem, &dup_base, &dup_last, err);
        if (rc == SL_ERR_EXISTS) {
            if (info) {
                info->base_offset = dup_base;
                info->last_offset = dup_last;
                info->records = 0;
                info->flush_due = 0;
                info->duplicate = 1;
            }
            rc = SL_OK;
            goto out;
        }
        if (rc != SL_OK) goto out;
    }
    int64_t leo = atomic_load(&p->leo);
    int64_t records = 0;
    for (size_t off = 0; off < len; off += (size_t)sl_batch_total_size(buf + off))
        records += (int64_t)(int32_t)sl_be32(buf + off + SL_BATCH_OFF_LAST_OFFSET_DELTA) + 1;
    seg_t *a = p->segs[p->nsegs - 1];
    if (roll_due(p, a, len, leo + records - 1, now_ms)) {
        if ((rc = roll(p, now_ms, err)) != SL_OK) goto out;
        a = p->segs[p->nsegs - 1];
    }
    if ((rc = seg_pin(a, err)) != SL_OK) goto out;
    int64_t next = leo;
    for (size_t off = 0; off < len; off += (size_t)sl_batch_total_size(buf + off)) {
        sl_put_be64(buf + off, (uint64_t)next);
        next += (int64_t)(int32_t)sl_be32(buf + off + SL_BATCH_OFF_LAST_OFFSET_DELTA) + 1;
    }
    int e = io_pwrite_all(a->fd, buf, len, (off_t)a->size);
    if (e < 0) {
        /* Cut whatever part was written, so the log ends at a batch boundary. */
        rc =
            sl_err_sys(err, -e, "%s-%d: write %s.log @%" PRIu64, p->topic, p->id, a->path, a->size);
        if (sl_io->ftruncate(a->fd, (off_t)a->size) < 0) {
            p->failed = 1;
            snprintf(p->failed_msg, sizeof p->failed_msg,
                     "could not truncate %s.log after a failed write: %s", a->path,
                     strerror(errno));
        }
        seg_unpin(a);
        goto out;
    }
    uint64_t pos = a->size;
    for (size_t off = 0; off < len;) {
        uint64_t sz = sl_batch_total_size(buf + off);
        int64_t base = (int64_t)sl_be64(buf + off);
        int64_t last = base + (int32_t)sl_be32(buf + off + SL_BATCH_OFF_LAST_OFFSET_DELTA);
        int64_t mts = (int64_t)sl_be64(buf + off + SL_BATCH_OFF_MAX_TIMESTAMP);
        /* Index memory is small; on ENOMEM the entry is skipped, which only
         * lengthens a later forward scan. */
        (void)part_index_batch(p, a, base, last, pos + off, sz, mts);
        off += (size_t)sz;
    }
    a->size += len;
    a->dirty = 1;
    if (a->created_ms == 0) a->created_ms = now_ms;
    seg_unpin(a);
    int was_clean = atomic_load(&p->durable) == leo;
    if (was_clean) p->first_unflushed_ms = now_ms;
    atomic_store(&p->leo, next);
    /* Without the record a retry would pass as new: forget the table and
     * let the next idempotent append rebuild it from the log, which holds
     * this batch now. */
    if (idem.producer_id >= 0 && producers_loaded(p->producers) &&
        producers_record(p->producers, &idem, leo) != SL_OK)
        producers_clear(p->producers);
    int flush_due = next - atomic_load(&p->durable) >= p->conf.flush_messages;
    if (info) {
        info->base_offset = leo;
        info->last_offset = next - 1;
        info->records = records;
        info->flush_due = flush_due;
        info->duplicate = 0;
    }
    pthread_mutex_unlock(&p->mu);
    /* The flusher tracks dirty partitions only for a finite flush policy;
     * acks=all waits reach it on their own. */
    int track = was_clean && (p->conf.flush_ms != INT64_MAX || p->conf.flush_messages != INT64_MAX);
    if ((track || flush_due) && p->on_dirty) p->on_dirty(p->on_dirty_arg, p);
    if (p->on_append) p->on_append(p->on_append_arg, p);
    return SL_OK;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Index of the segment holding `offset` (largest base ≤ offset). [mu] */
static size_t find_seg(const partition_t *p, int64_t offset)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Finds the position of the batch holding `offset` in pinned segment s.
 * [mu] Returns SL_OK with *pos and the batch's size and base, or an error. */
static int locate(partition_t *p, seg_t *s, int64_t offset, uint64_t *pos, uint64_t *bsize,
                  int64_t *bbase, sl_err_t *err)
{
    for (int attempt = 0;; attempt++) {
        if (s->index_bad) {
            int rc = part_rebuild_index(p, s, err);
            if (rc != SL_OK) return rc;
        }
        uint32_t rel, ipos;
        idx_lookup_offset(&s->oidx, (uint32_t)(offset - s->base), &rel, &ipos);
        uint64_t at = ipos;
        uint8_t h[SL_BATCH_HEADER_SIZE];
        int first = 1;
        while (at < s->size) {
            ssize_t r = io_pread_all(s->fd, h, SL_BATCH_OFF_BASE_TIMESTAMP, (off_t)at);
            if (r < 0) return sl_err_sys(err, (int)-r, "read %s.log @%" PRIu64, s->path, at);
            if (r < SL_BATCH_OFF_BASE_TIMESTAMP)
                return sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read at %" PRIu64, s->path,
                                  at);
            int64_t base = (int64_t)sl_be64(h);
            int32_t lod = (int32_t)sl_be32(h + SL_BATCH_OFF_LAST_OFFSET_DELTA);
            uint64_t sz = sl_batch_total_size(h);
            /* These headers may lie in a region opened without a scan
             * (below a recovery point, or sealed at a clean open), and
             * baseOffset is outside the CRC: an impossible offset is
             * corruption, never an answer or an overflow. */
            int bad_len = sz < SL_BATCH_HEADER_SIZE || at + sz > s->size || lod < 0 ||
                          base < s->base || base > INT64_MAX - lod;
            int64_t last = bad_len ? base : base + lod;
            /* Indexes are hints (invariant 4): the batch an entry points at
             * must start exactly at the entry's offset, or the entry is
             * damaged (the files carry no checksum) and following it could
             * skip records or stop at a bogus length. Rebuild from the log
             * once; only what the log itself holds is an error. */
            if (first && ipos != 0 && (bad_len || base - s->base != (int64_t)rel) && attempt == 0) {
                s->index_bad = 1;
                break;
            }
            first = 0;
            if (bad_len)
                return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE,
                                  "%s.log: bad batch header at %" PRIu64, s->path, at);
            /* The batch that reaches the target must also start at or
             * before it: one whose base jumped past it is a corrupt
             * header, and serving it would hand out other offsets. */
            if (last >= offset) {
                *pos = at;
                *bsize = sz;
                *bbase = base;
                return SL_OK;
            }
            at += sz;
        }
        if (s->index_bad && attempt == 0) continue;
        return sl_err_set(err, SL_ERR_OFFSET_OUT_OF_RANGE, "offset %" PRId64 " not in %s.log",
                          offset, s->path);
    }
}

int partition_read(partition_t *p, int64_t offset, uint64_t max_bytes, seg_range_t *out,
                   sl_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    pthread_mutex_lock(&p->mu);
    int64_t start = atomic_load(&p->log_start), leo = atomic_load(&p->leo);
    int rc = SL_OK;
    if (atomic_load(&p->deleted)) {
        /* Its files may be gone from their paths (or the name reused by a new
         * topic): never reopen them. Ranges already pinned stay readable. */
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "%s-%d: topic deleted", p->topic,
                        p->id);
        goto out;
    }
    if (offset < start || offset > leo) {
        rc = sl_err_set(err, SL_ERR_OFFSET_OUT_OF_RANGE,
                        "%s-%d: offset %" PRId64 " is outside [%" PRId64 ", %" PRId64 "]", p->topic,
                        p->id, offset, start, leo);
        goto out;
    }
    if (offset == leo) goto out;
    seg_t *s = p->segs[find_seg(p, offset)];
    /* An offset past the last batch of a closed segment lives in the next. */
    if (offset >= s->next_offset && s != p->segs[p->nsegs - 1])
        s = p->segs[find_seg(p, s->next_offset)];
    if ((rc = seg_pin(s, err)) != SL_OK) goto out;
    uint64_t pos = 0, bsize = 0;
    int64_t bbase = 0;
    rc = locate(p, s, offset, &pos, &bsize, &bbase, err);
    if (rc != SL_OK) {
        seg_unpin(s);
        goto out;
    }
    uint64_t avail = s->size - pos;
    uint64_t n = avail < max_bytes ? avail : max_bytes;
    if (n < bsize) n = bsize;
    out->seg = s;
    out->fd = s->fd;
    out->pos = pos;
    out->len = n;
    out->first_offset = bbase;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Reads the header prefix of the batch at `at` in s: its base and last
 * offset and total size. [mu] */
static int batch_at(const seg_t *s, uint64_t at, int64_t *base, int64_t *last, uint64_t *size,
                    sl_err_t *err)
{
    uint8_t h[SL_BATCH_OFF_BASE_TIMESTAMP];
    ssize_t r = io_pread_all(s->fd, h, sizeof h, (off_t)at);
    if (r < 0) return sl_err_sys(err, (int)-r, "read %s.log @%" PRIu64, s->path, at);
    if ((size_t)r < sizeof h)
        return sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read at %" PRIu64, s->path, at);
    *base = (int64_t)sl_be64(h);
    *last = *base + (int32_t)sl_be32(h + SL_BATCH_OFF_LAST_OFFSET_DELTA);
    *size = sl_batch_total_size(h);
    if (*size < SL_BATCH_HEADER_SIZE || at + *size > s->size)
        return sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "%s.log: bad batch length at %" PRIu64,
                          s->path, at);
    return SL_OK;
}

int partition_read_batches(partition_t *p, int64_t offset, uint64_t max_bytes, seg_range_t *out,
                           int64_t *next_offset, sl_err_t *err)
{
    *next_offset = offset;
    int rc = partition_read(p, offset, max_bytes, out, err);
    if (rc != SL_OK || out->len == 0) return rc;
    seg_t *s = out->seg;
    /* partition_read made len ≥ the first batch: the window is at least it. */
    uint64_t limit = out->pos + (max_bytes > out->len ? max_bytes : out->len);
    pthread_mutex_lock(&p->mu);
    /* The segment may have grown since partition_read, but only by whole
     * batches, and next_offset is always the offset after its last one. */
    if (s->size <= limit) {
        out->len = s->size - out->pos;
        *next_offset = s->next_offset;
        pthread_mutex_unlock(&p->mu);
        return SL_OK;
    }
    /* Cut at the last batch boundary within the window. Start the walk at the
     * last index entry inside it (a batch start), so at most about
     * index.interval.bytes of headers are read. */
    uint64_t at = out->pos;
    int64_t next = offset;
    size_t lo = 0, hi = s->oidx.n;
    while (lo < hi) { /* lo = first entry with position > limit */
        size_t mid = lo + (hi - lo) / 2;
        uint32_t rel, pos;
        idx_offset_at(&s->oidx, mid, &rel, &pos);
        if (pos > limit)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo > 0) {
        uint32_t rel, pos;
        idx_offset_at(&s->oidx, lo - 1, &rel, &pos);
        if (pos > out->pos) {
            at = pos;
            next = s->base + rel;
        }
    }
    while (at < s->size) {
        int64_t base = 0, last = 0;
        uint64_t size = 0;
        if ((rc = batch_at(s, at, &base, &last, &size, err)) != SL_OK) break;
        if (at + size > limit) break;
        at += size;
        next = last + 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != SL_OK || at == out->pos) {
        seg_range_release(out);
        memset(out, 0, sizeof *out);
        out->fd = -1;
        *next_offset = offset;
        if (rc == SL_OK)
            rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "%s-%d: no whole batch at %" PRId64,
                            p->topic, p->id, offset);
        return rc;
    }
    out->len = at - out->pos;
    *next_offset = next;
    return SL_OK;
}

int partition_read_copy(partition_t *p, int64_t offset, uint64_t max_bytes, uint8_t **buf,
                        size_t *len, sl_err_t *err)
{
    *buf = NULL;
    *len = 0;
    seg_range_t r;
    int rc = partition_read(p, offset, max_bytes, &r, err);
    if (rc != SL_OK || r.len == 0) return rc;
    uint8_t *b = malloc(r.len);
    if (!b) {
        seg_range_release(&r);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    ssize_t got = io_pread_all(r.fd, b, r.len, (off_t)r.pos);
    if (got < 0 || (uint64_t)got != r.len) {
        rc = got < 0 ? sl_err_sys(err, (int)-got, "read %s.log @%" PRIu64, r.seg->path, r.pos)
                     : sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read", r.seg->path);
        free(b);
        seg_range_release(&r);
        return rc;
    }
    seg_range_release(&r);
    /* Whole batches only. */
    size_t keep = 0;
    while (keep + SL_BATCH_LOG_OVERHEAD <= (size_t)got) {
        uint64_t sz = sl_batch_total_size(b + keep);
        if (sz < SL_BATCH_HEADER_SIZE || keep + sz > (size_t)got) break;
        keep += (size_t)sz;
    }
    *buf = b;
    *len = keep;
    return SL_OK;
}

int partition_flush(partition_t *p, sl_err_t *err)
{
    if (atomic_load(&p->deleted)) /* nothing to make durable: the files are going */
        return sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "%s-%d: topic deleted", p->topic,
                          p->id);
    pthread_mutex_lock(&p->flush_mu);
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        int rc = sl_err_set(err, SL_ERR_STORAGE, "%s-%d: %s", p->topic, p->id, p->failed_msg);
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->flush_mu);
        return rc;
    }
    int64_t target = atomic_load(&p->leo);
    if (target == atomic_load(&p->durable) && !p->dir_dirty) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->flush_mu);
        return SL_OK;
    }
    /* Dirty segments are the newest ones; collect and pin them. */
    seg_t **dirty = malloc(p->nsegs * sizeof *dirty);
    size_t nd = 0;
    int rc = dirty ? SL_OK : sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    for (size_t i = p->nsegs; dirty && i-- > 0;) {
        seg_t *s = p->segs[i];
        if (!s->dirty) {
            if (s->sealed) break;
            continue;
        }
        if ((rc = seg_pin(s, err)) != SL_OK) break;
        s->dirty = 0;
        dirty[nd++] = s;
    }
    int dir_dirty = p->dir_dirty;
    p->dir_dirty = 0;
    seg_t *a = p->segs[p->nsegs - 1]; /* its end is `target` */
    int64_t ck_base = a->base, ck_ts = a->max_ts;
    uint64_t ck_pos = a->size;
    /* The active index's new entries, copied so the write happens outside mu. */
    size_t on = a->oidx.n, tn = a->tidx.n, op = a->oidx.persisted, tp = a->tidx.persisted;
    uint8_t *ob = NULL, *tb = NULL;
    if (!a->oidx.map && on > op) ob = malloc((on - op) * IDX_OFFSET_ENTRY);
    if (!a->tidx.map && tn > tp) tb = malloc((tn - tp) * IDX_TIME_ENTRY);
    if (ob) memcpy(ob, a->oidx.heap + op * IDX_OFFSET_ENTRY, (on - op) * IDX_OFFSET_ENTRY);
    if (tb) memcpy(tb, a->tidx.heap + tp * IDX_TIME_ENTRY, (tn - tp) * IDX_TIME_ENTRY);
    seg_t *aidx = (ob || tb) ? a : NULL;
    if (aidx && seg_pin(aidx, NULL) != SL_OK) aidx = NULL;
    pthread_mutex_unlock(&p->mu);

    for (size_t i = 0; i < nd && rc == SL_OK; i++) {
        if (sl_io->fdatasync(dirty[i]->fd) < 0) {
            int e = errno;
            rc = sl_err_sys(err, e, "%s-%d: fdatasync %s.log", p->topic, p->id, dirty[i]->path);
            pthread_mutex_lock(&p->mu);
            /* After a failed fdatasync the kernel may have dropped the dirty
             * pages: retrying could report success for lost data. */
            p->failed = 1;
            snprintf(p->failed_msg, sizeof p->failed_msg, "fdatasync %s.log failed: %s",
                     dirty[i]->path, strerror(e));
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (rc == SL_OK && dir_dirty) {
        int e = io_fsync_dir(p->dir);
        if (e < 0) {
            rc = sl_err_sys(err, -e, "fsync %s", p->dir);
            pthread_mutex_lock(&p->mu);
            p->dir_dirty = 1;
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (aidx) {
        /* Index files are hints (never synced): recovery checks them. */
        int fd;
        if (ob && (fd = seg_open_side(aidx, ".index", O_RDWR | O_CREAT)) >= 0) {
            if (io_pwrite_all(fd, ob, (on - op) * IDX_OFFSET_ENTRY,
                              (off_t)(op * IDX_OFFSET_ENTRY)) == 0) {
                pthread_mutex_lock(&p->mu);
                if (aidx->oidx.persisted == op && aidx->oidx.n >= on) aidx->oidx.persisted = on;
                pthread_mutex_unlock(&p->mu);
            }
            sl_io->close(fd);
        }
        if (tb && (fd = seg_open_side(aidx, ".timeindex", O_RDWR | O_CREAT)) >= 0) {
            if (io_pwrite_all(fd, tb, (tn - tp) * IDX_TIME_ENTRY, (off_t)(tp * IDX_TIME_ENTRY)) ==
                0) {
                pthread_mutex_lock(&p->mu);
                if (aidx->tidx.persisted == tp && aidx->tidx.n >= tn) aidx->tidx.persisted = tn;
                pthread_mutex_unlock(&p->mu);
            }
            sl_io->close(fd);
        }
        seg_unpin(aidx);
    }
    free(ob);
    free(tb);
    if (rc == SL_OK) {
        pthread_mutex_lock(&p->mu);
        if (target > atomic_load(&p->durable)) atomic_store(&p->durable, target);
        /* Data appended during the sync is now the oldest unflushed. */
        p->first_unflushed_ms = atomic_load(&p->leo) > target ? sl_wall_ms() : 0;
        pthread_mutex_unlock(&p->mu);
        part_ckpt_write(p, target, ck_base, ck_pos, ck_ts);
    } else {
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < nd; i++) dirty[i]->dirty = 1;
        pthread_mutex_unlock(&p->mu);
    }
    for (size_t i = 0; i < nd; i++) seg_unpin(dirty[i]);
    free(dirty);
    pthread_mutex_unlock(&p->flush_mu);
    return rc;
}

int partition_flush_due(partition_t *p, int64_t now_ms)
{
    pthread_mutex_lock(&p->mu);
    int64_t unflushed = atomic_load(&p->leo) - atomic_load(&p->durable);
    int due = unflushed > 0 &&
              (unflushed >= p->conf.flush_messages ||
               (p->first_unflushed_ms > 0 && now_ms - p->first_unflushed_ms >= p->conf.flush_ms));
    pthread_mutex_unlock(&p->mu);
    return due;
}

/* Newest timestamp of a closed segment for retention.ms; the file's mtime
 * when its records carry none (Kafka's fallback too). [mu], s not pinned. */
static int64_t seg_newest_ms(seg_t *s)
{
    if (s->max_ts == INT64_MIN && seg_pin(s, NULL) == SL_OK) seg_unpin(s);
    if (s->max_ts >= 0) return s->max_ts;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s.log", s->path);
    if (stat(path, &st) < 0) return INT64_MAX; /* unknown: keep it */
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

int partition_retention(partition_t *p, int64_t now_ms, int *deleted, sl_err_t *err)
{
    pthread_mutex_lock(&p->mu);
    uint64_t total = 0;
    for (size_t i = 0; i < p->nsegs; i++) total += p->segs[i]->size;
    size_t nv = 0;
    while (nv + 1 < p->nsegs) { /* never the active segment */
        seg_t *s = p->segs[nv];
        int by_size =
            p->conf.retention_bytes >= 0 && total - s->size >= (uint64_t)p->conf.retention_bytes;
        int by_time = p->conf.retention_ms >= 0 && seg_newest_ms(s) < now_ms - p->conf.retention_ms;
        if (!by_size && !by_time) break;
        total -= s->size;
        nv++;
    }
    seg_t **victims = nv ? malloc(nv * sizeof *victims) : NULL;
    if (nv && !victims) {
        pthread_mutex_unlock(&p->mu);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    if (nv > 0) {
        memcpy(victims, p->segs, nv * sizeof *victims);
        memmove(p->segs, p->segs + nv, (p->nsegs - nv) * sizeof *p->segs);
        p->nsegs -= nv;
        atomic_store(&p->log_start, p->segs[0]->base);
        p->dir_dirty = 1;
        if (producers_loaded(p->producers)) producers_trim(p->producers, p->segs[0]->base);
    }
    pthread_mutex_unlock(&p->mu);
    /* Unlinked outside the lock; readers holding pins keep reading. */
    int rc = SL_OK;
    for (size_t i = 0; i < nv; i++) {
        int r = seg_unlink_files(victims[i], err);
        if (r != SL_OK) rc = r;
        seg_drop(victims[i]);
    }
    free(victims);
    if (deleted) *deleted = (int)nv;
    return rc;
}

int partition_roll_if_due(partition_t *p, int64_t now_ms, sl_err_t *err)
{
    pthread_mutex_lock(&p->mu);
    seg_t *a = p->segs[p->nsegs - 1];
    int rc = SL_OK;
    if (!p->failed && a->size > 0 && now_ms - a->created_ms >= p->conf.segment_ms)
        rc = roll(p, now_ms, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* First offset ≥ `from` in batch b whose record timestamp is ≥ ts. */
static int first_in_batch(const uint8_t *b, size_t len, int64_t ts, int64_t *off, sl_err_t *err)
{
    sl_record_iter_t it;
    sl_batch_limits_t lim = {SL_BATCH_MAX_SIZE, 0};
    int rc = sl_record_iter_init(&it, b, len, &lim, err);
    if (rc == SL_OK) {
        sl_record_t r;
        int k;
        rc = SL_ERR_NOT_FOUND;
        while ((k = sl_record_iter_next(&it, &r, err)) == 1) {
            if (r.timestamp >= ts) {
                *off = r.offset;
                rc = SL_OK;
                break;
            }
        }
        if (k < 0) rc = err ? err->code : SL_ERR_INVALID_RECORD;
    }
    sl_record_iter_free(&it);
    return rc;
}

int partition_offset_for_time(partition_t *p, int64_t ts, int64_t *offset, sl_err_t *err)
{
    pthread_mutex_lock(&p->mu);
    int rc = SL_OK;
    *offset = atomic_load(&p->leo);
    for (size_t i = 0; i < p->nsegs; i++) {
        seg_t *s = p->segs[i];
        if ((rc = seg_pin(s, err)) != SL_OK) break;
        if (s->index_bad && (rc = part_rebuild_index(p, s, err)) != SL_OK) {
            seg_unpin(s);
            break;
        }
        if (s->size == 0 || (s->max_ts != INT64_MIN && s->max_ts < ts)) {
            seg_unpin(s);
            continue;
        }
        /* Every record up to the entry's offset is older than ts. */
        uint32_t rel = 0, pos = 0, irel;
        uint64_t at = 0;
        if (idx_lookup_time(&s->tidx, ts, &rel)) {
            idx_lookup_offset(&s->oidx, rel + 1, &irel, &pos);
            at = pos;
        }
        uint8_t h[SL_BATCH_HEADER_SIZE];
        int found = 0;
        while (at < s->size && rc == SL_OK) {
            ssize_t r = io_pread_all(s->fd, h, sizeof h, (off_t)at);
            if (r != (ssize_t)sizeof h) {
                rc = sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read at %" PRIu64, s->path, at);
                break;
            }
            uint64_t sz = sl_batch_total_size(h);
            if (sz < SL_BATCH_HEADER_SIZE || at + sz > s->size) {
                rc = sl_err_set(err, SL_ERR_CORRUPT_MESSAGE, "%s.log: bad batch at %" PRIu64,
                                s->path, at);
                break;
            }
            if ((int64_t)sl_be64(h + SL_BATCH_OFF_MAX_TIMESTAMP) >= ts) {
                uint8_t *b = malloc((size_t)sz);
                if (!b) {
                    rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
                    break;
                }
                r = io_pread_all(s->fd, b, (size_t)sz, (off_t)at);
                if (r == (ssize_t)sz) {
                    int k = first_in_batch(b, (size_t)sz, ts, offset, err);
                    if (k == SL_OK)
                        found = 1;
                    else if (k != SL_ERR_NOT_FOUND)
                        rc = k;
                } else {
                    rc = sl_err_set(err, SL_ERR_STORAGE, "%s.log: short read at %" PRIu64, s->path,
                                    at);
                }
                free(b);
                if (found) break;
            }
            at += sz;
        }
        seg_unpin(s);
        if (found || rc != SL_OK) break;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void partition_set_conf(partition_t *p, const sl_log_conf_t *conf)
{
    pthread_mutex_lock(&p->mu);
    p->conf = *conf;
    pthread_mutex_unlock(&p->mu);
}

int64_t partition_log_start(partition_t *p)
{
    return atomic_load(&p->log_start);
}

int64_t partition_log_end(partition_t *p)
{
    return atomic_load(&p->leo);
}

int64_t partition_durable(partition_t *p)
{
    return atomic_load(&p->durable);
}

void partition_stats(partition_t *p, partition_stats_t *st)
{
    pthread_mutex_lock(&p->mu);
    st->log_start = atomic_load(&p->log_start);
    st->log_end = atomic_load(&p->leo);
    st->durable = atomic_load(&p->durable);
    st->size_bytes = 0;
    for (size_t i = 0; i < p->nsegs; i++) st->size_bytes += p->segs[i]->size;
    st->segments = (uint32_t)p->nsegs;
    st->unflushed_messages = st->log_end - st->durable;
    st->failed = p->failed;
    pthread_mutex_unlock(&p->mu);
}

const char *partition_dir(const partition_t *p)
{
    return p->dir;
}

const char *partition_topic(const partition_t *p)
{
    return p->topic;
}

int32_t partition_id(const partition_t *p)
{
    return p->id;
}

_Atomic uint64_t *partition_user_word(partition_t *p)
{
    return &p->user_word;
}

void partition_set_on_append(partition_t *p, void (*fn)(void *arg, partition_t *p), void *arg)
{
    p->on_append = fn;
    p->on_append_arg = arg;
}
