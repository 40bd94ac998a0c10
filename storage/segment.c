#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

struct seg_cache {
    pthread_mutex_t mu;
    uint32_t max_open;
    uint32_t open;
    seg_t head; /* sentinel: head.lru_next is the most recently used */
};

seg_cache_t *seg_cache_new(uint32_t max_open)
{
    seg_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->max_open = max_open ? max_open : 1;
    c->head.lru_next = c->head.lru_prev = &c->head;
    return c;
}

void seg_cache_free(seg_cache_t *c)
{
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

uint32_t seg_cache_open_count(seg_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    uint32_t n = c->open;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void seg_file_name(char *buf, size_t n, const char *dir, int64_t base, const char *ext)
{
    snprintf(buf, n, "%s/%020lld%s", dir, (long long)base, ext);
}

seg_t *seg_new(seg_cache_t *c, const char *dir, int64_t base)
{
    seg_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t n = strlen(dir) + 24;
    s->path = malloc(n);
    if (!s->path) {
        free(s);
        return NULL;
    }
    seg_file_name(s->path, n, dir, base, "");
    s->base = base;
    s->cache = c;
    s->next_offset = base;
    s->max_ts = INT64_MIN;
    s->fd = -1;
    idx_init(&s->oidx, IDX_OFFSET_ENTRY);
    idx_init(&s->tidx, IDX_TIME_ENTRY);
    return s;
}

static char *ext_path(const seg_t *s, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s", s->path, ext);
    return buf;
}

int seg_open_side(const seg_t *s, const char *ext, int flags)
{
    char p[4096];
    int fd = sl_io->open(ext_path(s, ext, p, sizeof p), flags, 0644);
    return fd < 0 ? -errno : fd;
}

int seg_create_files(seg_t *s, sl_err_t *err)
{
    static const char *exts[] = {".log", ".index", ".timeindex"};
    for (int i = 0; i < 3; i++) {
        char p[4096];
        int fd = sl_io->open(ext_path(s, exts[i], p, sizeof p), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return sl_err_sys(err, errno, "create %s", p);
        sl_io->close(fd);
    }
    return SL_OK;
}

int seg_unlink_files(seg_t *s, sl_err_t *err)
{
    static const char *exts[] = {".index", ".timeindex", ".log"};
    int rc = SL_OK;
    for (int i = 0; i < 3; i++) {
        char p[4096];
        if (sl_io->unlink(ext_path(s, exts[i], p, sizeof p)) < 0 && errno != ENOENT)
            rc = sl_err_sys(err, errno, "unlink %s", p);
    }
    return rc;
}

static void lru_unlink(seg_t *s)
{
    s->lru_prev->lru_next = s->lru_next;
    s->lru_next->lru_prev = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_front(seg_cache_t *c, seg_t *s)
{
    s->lru_next = c->head.lru_next;
    s->lru_prev = &c->head;
    c->head.lru_next->lru_prev = s;
    c->head.lru_next = s;
}

/* Closes the fd and releases what can be reloaded from disk: mapped indexes,
 * and heap indexes of sealed segments that are fully persisted. The active
 * segment's heap index is the only copy of unpersisted entries: kept. */
static void close_files(seg_cache_t *c, seg_t *s)
{
    if (s->fd >= 0) {
        sl_io->close(s->fd);
        s->fd = -1;
        c->open--;
        lru_unlink(s);
    }
    if (s->oidx.map || (s->sealed && s->oidx.persisted == s->oidx.n)) idx_release(&s->oidx);
    if (s->tidx.map || (s->sealed && s->tidx.persisted == s->tidx.n)) idx_release(&s->tidx);
}

static void destroy(seg_cache_t *c, seg_t *s)
{
    close_files(c, s);
    idx_release(&s->oidx);
    idx_release(&s->tidx);
    free(s->path);
    free(s);
}

static void evict(seg_cache_t *c)
{
    seg_t *s = c->head.lru_prev;
    while (c->open > c->max_open && s != &c->head) {
        seg_t *prev = s->lru_prev;
        if (s->pins == 0) close_files(c, s);
        s = prev;
    }
}

/* Maps a sealed segment's side index and checks it; a missing or bad file
 * leaves the index empty and index_bad set (the caller rebuilds from the
 * log). */
static void map_side(seg_t *s, idx_t *x, const char *ext)
{
    int fd = seg_open_side(s, ext, O_RDONLY);
    if (fd < 0) {
        s->index_bad = 1;
        return;
    }
    int rc = idx_map_fd(x, fd);
    sl_io->close(fd);
    if (rc < 0) {
        s->index_bad = 1;
        return;
    }
    int ok = x->esize == IDX_OFFSET_ENTRY ? idx_check_offset(x, s->size) : idx_check_time(x);
    if (!ok) {
        idx_release(x);
        s->index_bad = 1;
    }
}

int seg_pin(seg_t *s, sl_err_t *err)
{
    seg_cache_t *c = s->cache;
    pthread_mutex_lock(&c->mu);
    if (s->fd < 0) {
        char p[4096];
        int fd = sl_io->open(ext_path(s, ".log", p, sizeof p), O_RDWR, 0);
        if (fd < 0) {
            int e = errno;
            pthread_mutex_unlock(&c->mu);
            return sl_err_sys(err, e, "open %s", p);
        }
        s->fd = fd;
        c->open++;
        lru_push_front(c, s);
    } else if (c->head.lru_next != s) {
        lru_unlink(s);
        lru_push_front(c, s);
    }
    s->pins++;
    if (s->sealed && !s->index_bad) {
        if (!idx_loaded(&s->oidx)) map_side(s, &s->oidx, ".index");
        if (!idx_loaded(&s->tidx)) map_side(s, &s->tidx, ".timeindex");
        if (s->max_ts == INT64_MIN && s->tidx.n > 0) {
            uint32_t rel;
            idx_time_at(&s->tidx, s->tidx.n - 1, &s->max_ts, &rel);
        }
    }
    if (c->open > c->max_open) evict(c);
    pthread_mutex_unlock(&c->mu);
    return SL_OK;
}

void seg_unpin(seg_t *s)
{
    seg_cache_t *c = s->cache;
    pthread_mutex_lock(&c->mu);
    if (--s->pins == 0) {
        if (s->dropped)
            destroy(c, s);
        else if (c->open > c->max_open)
            evict(c);
    }
    pthread_mutex_unlock(&c->mu);
}

void seg_drop(seg_t *s)
{
    seg_cache_t *c = s->cache;
    pthread_mutex_lock(&c->mu);
    s->dropped = 1;
    if (s->pins == 0) destroy(c, s);
    pthread_mutex_unlock(&c->mu);
}

void seg_range_release(seg_range_t *r)
{
    if (r->seg) seg_unpin(r->seg);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}
