/* verify.c — store_verify(): read every segment of a data directory and
 * check every batch (see verify.h). Plain POSIX reads through a 1 MiB
 * window; no storage-engine state is opened, so a damaged directory cannot
 * trip recovery or rewrite anything. */
#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "io.h"

#define WINDOW (1u << 20)

typedef struct vctx {
    verify_fn fn;
    void *arg;
    verify_stats_t *st;
    int clean;    /* the last run shut down cleanly: no torn tail is expected */
    uint8_t *buf; /* a window, grown to hold the largest batch met */
    size_t cap;
} vctx_t;

static void report(vctx_t *v, verify_kind_t kind, const char *topic, int32_t part, const char *seg,
                   int64_t base, uint64_t pos, uint64_t bytes, const char *reason)
{
    if (kind == VERIFY_CORRUPT)
        v->st->corrupt++;
    else
        v->st->torn++;
    verify_problem_t p = {kind, topic, part, seg, base, pos, bytes, reason};
    if (v->fn) v->fn(v->arg, &p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir that end in `suffix` (all when NULL), sorted; malloc'd. */
static int list_dir(const char *dir, const char *suffix, char ***out, size_t *n, sl_err_t *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sl_err_sys(err, errno, "opendir %s", dir);
    size_t cap = 0;
    struct dirent *e;
    int rc = SL_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **g = realloc(*out, cap * sizeof *g);
            if (!g) {
                rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
                break;
            }
            *out = g;
        }
        if (!((*out)[*n] = strdup(e->d_name))) {
            rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, cmp_str);
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* Reads exactly len bytes at pos with the storage layer's io_pread_all;
 * the caller checked they lie inside the file, so a short read means the
 * file changed under the scan. */
static int read_exact(int fd, uint8_t *b, size_t len, uint64_t pos, const char *path, sl_err_t *err)
{
    ssize_t r = io_pread_all(fd, b, len, (off_t)pos);
    if (r < 0) return sl_err_sys(err, (int)-r, "read %s at %" PRIu64, path, pos);
    if ((size_t)r != len)
        return sl_err_set(err, SL_ERR_STORAGE, "%s: short read at %" PRIu64 " (file changed?)",
                          path, pos);
    return SL_OK;
}

/* Checks one segment; *next is the offset expected of its first batch on
 * entry (-1: unknown) and of the next segment's on return. */
static int verify_segment(vctx_t *v, const char *path, const char *topic, int32_t part,
                          const char *name, int last, int64_t *next, sl_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sl_err_sys(err, errno, "open %s", path);
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return sl_err_sys(err, e, "stat %s", path);
    }
    uint64_t size = (uint64_t)sb.st_size, pos = 0;
    int64_t seg_base = strtoll(name, NULL, 10);
    int64_t expect = seg_base;
    v->st->segments++;
    v->st->bytes += size;
    char why[400];
    while (pos < size) {
        uint8_t hdr[SL_BATCH_HEADER_SIZE];
        uint64_t left = size - pos;
        if (left < SL_BATCH_HEADER_SIZE) {
            snprintf(why, sizeof why, "%" PRIu64 " bytes after the last batch, less than a header",
                     left);
            report(v, last && !v->clean ? VERIFY_TORN : VERIFY_CORRUPT, topic, part, name, expect,
                   pos, left, why);
            break;
        }
        int rc = read_exact(fd, hdr, sizeof hdr, pos, path, err);
        if (rc != SL_OK) {
            close(fd);
            return rc;
        }
        uint64_t sz = sl_batch_total_size(hdr);
        int64_t base = (int64_t)sl_be64(hdr);
        if (sz < SL_BATCH_HEADER_SIZE || sz > left) {
            if (sz < SL_BATCH_HEADER_SIZE)
                snprintf(why, sizeof why,
                         "batch size %" PRIu64 " is below the %d-byte minimum: the rest of the "
                         "segment is unreadable",
                         sz, SL_BATCH_HEADER_SIZE);
            else
                snprintf(why, sizeof why,
                         "batch size %" PRIu64 " runs past the %" PRIu64
                         " bytes left: the rest of the segment is unreadable",
                         sz, left);
            report(v, last && !v->clean ? VERIFY_TORN : VERIFY_CORRUPT, topic, part, name, base,
                   pos, left, why);
            break;
        }
        if (sz > v->cap) {
            uint8_t *nb = realloc(v->buf, sz);
            if (!nb) {
                close(fd);
                return sl_err_set(err, SL_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte batch",
                                  sz);
            }
            v->buf = nb;
            v->cap = sz;
        }
        if ((rc = read_exact(fd, v->buf, sz, pos, path, err)) != SL_OK) {
            close(fd);
            return rc;
        }
        sl_err_t be;
        sl_batch_limits_t lim = {(uint32_t)(sz > UINT32_MAX ? UINT32_MAX : sz), 0};
        sl_batch_hdr_t h;
        rc = sl_batch_validate(v->buf, sz, &lim, &h, &be);
        if (rc == SL_OK) rc = sl_batch_validate_deep(v->buf, sz, &lim, &be);
        if (rc == SL_OK && expect >= 0 && base != expect) {
            rc = SL_ERR_CORRUPT_MESSAGE;
            snprintf(be.msg, sizeof be.msg,
                     "baseOffset %" PRId64 ", expected %" PRId64 " (offsets must be dense)", base,
                     expect);
        }
        v->st->batches++;
        if (rc != SL_OK) {
            snprintf(why, sizeof why, "%s: %s", sl_code_name(rc), be.msg);
            /* A batch that fails at the very end of the active segment
             * after a crash is the torn write recovery will drop. */
            int torn = last && !v->clean && pos + sz == size;
            report(v, torn ? VERIFY_TORN : VERIFY_CORRUPT, topic, part, name, base, pos, sz, why);
            /* Resume after it: later batches are still worth checking,
             * but this header (lastOffsetDelta may be the flipped bit)
             * says nothing trustworthy about where offsets go on: take
             * the next good batch's base as it comes. */
            expect = -1;
        } else {
            expect = base + h.last_offset_delta + 1;
        }
        pos += sz;
    }
    close(fd);
    *next = expect;
    return SL_OK;
}

static int verify_partition(vctx_t *v, const char *pdir, const char *topic, int32_t part,
                            sl_err_t *err)
{
    char **segs;
    size_t n;
    int rc = list_dir(pdir, ".log", &segs, &n, err);
    if (rc != SL_OK) return rc;
    v->st->partitions++;
    int64_t next = -1;
    char path[4200];
    for (size_t i = 0; i < n && rc == SL_OK; i++) {
        int64_t base = strtoll(segs[i], NULL, 10);
        if (next >= 0 && base != next) {
            char why[160];
            snprintf(why, sizeof why,
                     "segment starts at offset %" PRId64 " but the previous one ends at %" PRId64,
                     base, next);
            report(v, VERIFY_CORRUPT, topic, part, segs[i], base, 0, 0, why);
        }
        snprintf(path, sizeof path, "%s/%s", pdir, segs[i]);
        rc = verify_segment(v, path, topic, part, segs[i], i + 1 == n, &next, err);
    }
    free_list(segs, n);
    return rc;
}

int store_verify(const char *dir, verify_fn fn, void *arg, verify_stats_t *stats, sl_err_t *err)
{
    memset(stats, 0, sizeof *stats);
    char path[4200];
    snprintf(path, sizeof path, "%s/topics", dir);
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return sl_err_set(err, SL_ERR_NOT_FOUND, "%s is not a Sluice data directory (no topics/)",
                          dir);
    snprintf(path, sizeof path, "%s/.lock", dir);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) return sl_err_sys(err, errno, "open %s", path);
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(lock);
        return e == EWOULDBLOCK ? sl_err_set(err, SL_ERR_LOCKED,
                                             "%s is in use by another process (lock %s held): "
                                             "stop the broker first",
                                             dir, path)
                                : sl_err_sys(err, e, "flock %s", path);
    }
    snprintf(path, sizeof path, "%s/.clean_shutdown", dir);
    vctx_t v = {.fn = fn, .arg = arg, .st = stats, .clean = access(path, F_OK) == 0};
    char **topics = NULL;
    size_t nt = 0;
    snprintf(path, sizeof path, "%s/topics", dir);
    int rc = list_dir(path, NULL, &topics, &nt, err);
    for (size_t i = 0; i < nt && rc == SL_OK; i++) {
        char tdir[4200];
        snprintf(tdir, sizeof tdir, "%s/topics/%s", dir, topics[i]);
        char **parts = NULL;
        size_t np = 0;
        if (stat(tdir, &sb) < 0 || !S_ISDIR(sb.st_mode)) continue;
        stats->topics++;
        rc = list_dir(tdir, NULL, &parts, &np, err);
        for (size_t j = 0; j < np && rc == SL_OK; j++) {
            char *end;
            long pn = strtol(parts[j], &end, 10);
            if (*end || pn < 0 || pn > INT32_MAX) continue; /* topic.conf and the like */
            char pdir[4400];
            snprintf(pdir, sizeof pdir, "%s/%s", tdir, parts[j]);
            if (stat(pdir, &sb) < 0 || !S_ISDIR(sb.st_mode)) continue;
            rc = verify_partition(&v, pdir, topics[i], (int32_t)pn, err);
        }
        free_list(parts, np);
    }
    free_list(topics, nt);
    free(v.buf);
    close(lock); /* releases the lock */
    return rc;
}
