#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "io.h"

typedef struct topic {
    char *name;
    int32_t nparts;
    char **okeys, **ovals; /* overrides of the store defaults */
    size_t nover;
    sl_log_conf_t conf;          /* effective */
    partition_t **parts;         /* NULL until opened */
    struct topic *next;          /* hash chain */
    struct topic *anext, *aprev; /* every topic (store.all), for listing without
                                    walking all NBUCKETS chains */
} topic_t;

#define NBUCKETS 4096

struct store {
    pthread_mutex_t mu; /* topics and the partitions array of each */
    char *dir;
    char *topics_dir;
    int lock_fd;
    int was_clean;
    sl_log_conf_t defaults;
    seg_cache_t *cache;
    flusher_t *flusher;
    producers_bound_t producers; /* idempotent-producer states of every partition */
    topic_t *buckets[NBUCKETS];
    topic_t *all; /* every topic, through anext */
    size_t ntopics;
    uint64_t delete_seq;
    void (*on_append)(void *arg, partition_t *p);
    void *on_append_arg;
    void (*on_recover)(void *arg, const char *topic, int32_t id, const partition_recovery_t *rec);
    void *on_recover_arg;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static topic_t *lookup(store_t *s, const char *name)
{
    for (topic_t *t = s->buckets[hash(name) % NBUCKETS]; t; t = t->next)
        if (strcmp(t->name, name) == 0) return t;
    return NULL;
}

static void topic_free(topic_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nover; i++) {
        free(t->okeys[i]);
        free(t->ovals[i]);
    }
    free(t->okeys);
    free(t->ovals);
    free(t->parts);
    free(t->name);
    free(t);
}

int store_validate_topic_name(const char *name, sl_err_t *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return sl_err_set(err, SL_ERR_INVALID_TOPIC, "topic name is empty");
    if (n > STORE_MAX_TOPIC_NAME)
        return sl_err_set(err, SL_ERR_INVALID_TOPIC, "topic name is %zu characters, at most %d", n,
                          STORE_MAX_TOPIC_NAME);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return sl_err_set(err, SL_ERR_INVALID_TOPIC, "topic name cannot be \"%s\"", name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return sl_err_set(err, SL_ERR_INVALID_TOPIC,
                              "topic name has '%c' (0x%02x) at position %zu; allowed are "
                              "[a-zA-Z0-9._-]",
                              (c >= 32 && c < 127) ? c : '?', (unsigned char)c, i);
    }
    return SL_OK;
}

/* Names equal once '.' and '_' are treated alike (Kafka rejects those). */
static int collides(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '.' ? '_' : *a, y = *b == '.' ? '_' : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

/* ---- topic.conf ------------------------------------------------------------ */

static int conf_path(const store_t *s, const char *topic, char *buf, size_t n)
{
    return snprintf(buf, n, "%s/%s/topic.conf", s->topics_dir, topic) < (int)n ? 0 : -1;
}

static int write_topic_conf(store_t *s, const topic_t *t, sl_err_t *err)
{
    size_t cap = 128;
    for (size_t i = 0; i < t->nover; i++) cap += strlen(t->okeys[i]) + strlen(t->ovals[i]) + 2;
    char *buf = malloc(cap);
    if (!buf) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(buf, cap, "# sluice topic, format %d\npartitions=%d\n",
                                  SL_STORAGE_FORMAT_VERSION, t->nparts);
    for (size_t i = 0; i < t->nover; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s=%s\n", t->okeys[i], t->ovals[i]);
    char path[4096];
    conf_path(s, t->name, path, sizeof path);
    int e = io_write_file_atomic(path, buf, len);
    free(buf);
    if (e < 0) return sl_err_sys(err, -e, "write %s", path);
    return SL_OK;
}

/* Sets (or replaces) one override after validating it against conf. */
static int set_override(topic_t *t, const char *k, const char *v, sl_err_t *err)
{
    int rc = sl_log_conf_set(&t->conf, k, v, err);
    if (rc != SL_OK) return rc;
    for (size_t i = 0; i < t->nover; i++)
        if (strcmp(t->okeys[i], k) == 0) {
            char *nv = strdup(v);
            if (!nv) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
            free(t->ovals[i]);
            t->ovals[i] = nv;
            return SL_OK;
        }
    char **nk = realloc(t->okeys, (t->nover + 1) * sizeof *nk);
    if (!nk) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    t->okeys = nk;
    char **nvv = realloc(t->ovals, (t->nover + 1) * sizeof *nvv);
    if (!nvv) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    t->ovals = nvv;
    t->okeys[t->nover] = strdup(k);
    t->ovals[t->nover] = strdup(v);
    if (!t->okeys[t->nover] || !t->ovals[t->nover]) {
        free(t->okeys[t->nover]);
        free(t->ovals[t->nover]);
        return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    }
    t->nover++;
    return SL_OK;
}

static topic_t *topic_new(store_t *s, const char *name, int32_t nparts)
{
    topic_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = strdup(name);
    t->nparts = nparts;
    t->conf = s->defaults;
    t->parts = calloc((size_t)nparts, sizeof *t->parts);
    if (!t->name || !t->parts) {
        topic_free(t);
        return NULL;
    }
    return t;
}

/* Every value within its key's bounds (store defaults come from the broker
 * as numbers, not through sl_log_conf_set). There is no cross-key rule: a
 * batch larger than segment.bytes gets a segment of its own, as in Kafka. */
static int check_conf(const sl_log_conf_t *c, sl_err_t *err)
{
    size_t n;
    const sl_log_conf_def_t *t = sl_log_conf_table(&n);
    for (size_t i = 0; i < n; i++) {
        int64_t v = sl_log_conf_value(c, &t[i]);
        if (v < t[i].min || v > t[i].max)
            return sl_err_set(err, SL_ERR_INVALID_CONFIG,
                              "%s: %" PRId64 " is not in %" PRId64 "..%" PRId64, t[i].name, v,
                              t[i].min, t[i].max);
    }
    return SL_OK;
}

/* Parses DIR/topics/<name>/topic.conf. */
static int load_topic(store_t *s, const char *name, topic_t **out, sl_err_t *err)
{
    char path[4096];
    conf_path(s, name, path, sizeof path);
    FILE *f = fopen(path, "re");
    if (!f) return sl_err_sys(err, errno, "open %s", path);
    char line[1024];
    int lineno = 0, rc = SL_OK;
    int64_t nparts = -1;
    topic_t *t = NULL;
    /* Two passes over a small file: the partition count sizes the topic. */
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (strncmp(line, "partitions=", 11) == 0) {
            line[strcspn(line, "\n")] = 0;
            if (sl_parse_int64(line + 11, &nparts) < 0 || nparts < 1 ||
                nparts > STORE_MAX_PARTITIONS) {
                rc = sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s:%d: bad partitions \"%s\"", path,
                                lineno, line + 11);
                goto out;
            }
        }
    }
    if (nparts < 0) {
        rc = sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s: no partitions line", path);
        goto out;
    }
    if (!(t = topic_new(s, name, (int32_t)nparts))) {
        rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        goto out;
    }
    rewind(f);
    lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0 || strncmp(line, "partitions=", 11) == 0) continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s:%d: expected key=value", path, lineno);
            goto out;
        }
        *eq = 0;
        sl_err_t e2;
        if ((rc = set_override(t, line, eq + 1, &e2)) != SL_OK) {
            sl_err_set(err, rc, "%s:%d: %s", path, lineno, e2.msg);
            goto out;
        }
    }
out:
    fclose(f);
    if (rc != SL_OK) {
        topic_free(t);
        return rc;
    }
    *out = t;
    return SL_OK;
}

static void insert(store_t *s, topic_t *t)
{
    topic_t **b = &s->buckets[hash(t->name) % NBUCKETS];
    t->next = *b;
    *b = t;
    t->aprev = NULL;
    t->anext = s->all;
    if (s->all) s->all->aprev = t;
    s->all = t;
    s->ntopics++;
}

static void remove_topic(store_t *s, topic_t *t)
{
    for (topic_t **pp = &s->buckets[hash(t->name) % NBUCKETS]; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            if (t->aprev)
                t->aprev->anext = t->anext;
            else
                s->all = t->anext;
            if (t->anext) t->anext->aprev = t->aprev;
            s->ntopics--;
            return;
        }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? sl_io->rmdir(path) : sl_io->unlink(path);
}

static int rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

/* ---- open / close ---------------------------------------------------------- */

static void forget_hook(void *arg, partition_t *p)
{
    flusher_forget(arg, p);
}

int store_open(const store_opts_t *o, store_t **out, sl_err_t *err)
{
    *out = NULL;
    store_t *s = calloc(1, sizeof *s);
    if (!s) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->lock_fd = -1;
    if (o->defaults)
        s->defaults = *o->defaults;
    else
        sl_log_conf_defaults(&s->defaults);
    int rc = check_conf(&s->defaults, err);
    if (rc != SL_OK) goto fail;
    size_t dl = strlen(o->dir);
    if (dl == 0 || dl > 3000) { /* room for topic/partition/segment names in PATH_MAX */
        rc = sl_err_set(err, SL_ERR_INVALID_ARG, "data directory path is %zu characters (1..3000)",
                        dl);
        goto fail;
    }
    s->dir = strdup(o->dir);
    s->topics_dir = malloc(dl + 8);
    if (!s->dir || !s->topics_dir) {
        rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(s->topics_dir, dl + 8, "%s/topics", o->dir);
    char path[4096];
    int e;
    if ((e = io_mkdir_p(s->dir)) < 0 || (e = io_mkdir_p(s->topics_dir)) < 0) {
        rc = sl_err_sys(err, -e, "mkdir %s", s->dir);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/.lock", s->dir);
    s->lock_fd = sl_io->open(path, O_RDWR | O_CREAT, 0644);
    if (s->lock_fd < 0) {
        rc = sl_err_sys(err, errno, "open %s", path);
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK
                 ? sl_err_set(err, SL_ERR_LOCKED, "%s is in use by another process (lock %s held)",
                              s->dir, path)
                 : sl_err_sys(err, errno, "flock %s", path);
        goto fail;
    }
    /* The marker must be gone, durably, before anything is written: a crash
     * from here on needs recovery. */
    snprintf(path, sizeof path, "%s/.clean_shutdown", s->dir);
    s->was_clean = access(path, F_OK) == 0;
    if (s->was_clean) {
        if (sl_io->unlink(path) < 0 || (e = io_fsync_dir(s->dir)) < 0) {
            rc = sl_err_sys(err, errno, "remove %s", path);
            goto fail;
        }
    }
    snprintf(path, sizeof path, "%s/deleted", s->dir);
    if (access(path, F_OK) == 0) rmtree(path); /* deletions a crash interrupted */
    producers_bound_init(&s->producers, PRODUCERS_MAX_STATES);
    s->cache = seg_cache_new(o->max_open_segments ? o->max_open_segments : 1024);
    s->flusher = flusher_new(err);
    if (!s->cache || !s->flusher) {
        rc = s->cache ? SL_ERR_UNKNOWN : sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    DIR *d = opendir(s->topics_dir);
    if (!d) {
        rc = sl_err_sys(err, errno, "opendir %s", s->topics_dir);
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            store_validate_topic_name(de->d_name, NULL) != SL_OK)
            continue;
        conf_path(s, de->d_name, path, sizeof path);
        if (access(path, F_OK) != 0) continue; /* a create that did not finish */
        topic_t *t = NULL;
        if ((rc = load_topic(s, de->d_name, &t, err)) != SL_OK) {
            closedir(d);
            goto fail;
        }
        insert(s, t);
    }
    closedir(d);
    *out = s;
    return SL_OK;
fail:
    store_crash(s);
    return rc;
}

/* 1 if partition i of t has no log bytes on disk (or no directory). */
static int partition_dir_empty(store_t *s, topic_t *t, int32_t i)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s/%d", s->topics_dir, t->name, i);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".log") != 0) continue;
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || st.st_size > 0) empty = 0;
    }
    closedir(d);
    return empty;
}

static void free_topics(store_t *s, int clean, int *all_good)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        topic_t *t = s->buckets[b];
        while (t) {
            topic_t *next = t->next;
            for (int32_t i = 0; i < t->nparts; i++) {
                partition_t *p = t->parts[i];
                if (!p) {
                    /* Never opened in this run: fine if the last run was clean,
                     * or if it holds no data that could need recovery. */
                    if (!s->was_clean && !partition_dir_empty(s, t, i)) *all_good = 0;
                    continue;
                }
                if (!clean) partition_mark_deleted(p); /* crash: no I/O */
                partition_stats_t st;
                partition_stats(p, &st);
                if (st.failed) *all_good = 0;
                partition_unref(p);
            }
            topic_free(t);
            t = next;
        }
        s->buckets[b] = NULL;
    }
    s->all = NULL;
}

static void teardown(store_t *s, int clean)
{
    if (!s) return;
    int all_good = 1;
    if (!clean) {
        /* A crash flushes nothing: detach the partitions from the flusher and
         * stop it before they go. */
        for (size_t b = 0; b < NBUCKETS; b++)
            for (topic_t *t = s->buckets[b]; t; t = t->next)
                for (int32_t i = 0; i < t->nparts; i++)
                    if (t->parts[i]) partition_set_on_close(t->parts[i], NULL, NULL);
        flusher_free(s->flusher);
        s->flusher = NULL;
    }
    /* Clean: each partition's last unref flushes it through flusher_forget. */
    free_topics(s, clean, &all_good);
    flusher_free(s->flusher);
    seg_cache_free(s->cache);
    if (clean && all_good && s->lock_fd >= 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/.clean_shutdown", s->dir);
        io_write_file_atomic(path, "clean\n", 6);
    }
    if (s->lock_fd >= 0) sl_io->close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s->topics_dir);
    free(s);
}

void store_close(store_t *s)
{
    teardown(s, 1);
}

void store_crash(store_t *s)
{
    teardown(s, 0);
}

int store_was_clean(const store_t *s)
{
    return s->was_clean;
}

flusher_t *store_flusher(store_t *s)
{
    return s->flusher;
}

/* ---- topics ------------------------------------------------------------------ */

int store_topic_create(store_t *s, const char *name, int32_t partitions, const char *const *keys,
                       const char *const *values, size_t nconf, sl_err_t *err)
{
    int rc = store_validate_topic_name(name, err);
    if (rc != SL_OK) return rc;
    if (partitions < 1 || partitions > STORE_MAX_PARTITIONS)
        return sl_err_set(err, SL_ERR_INVALID_PARTITIONS,
                          "topic %s: %d partitions; allowed are 1..%d", name, partitions,
                          STORE_MAX_PARTITIONS);
    topic_t *t = topic_new(s, name, partitions);
    if (!t) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nconf; i++) {
        sl_err_t e2;
        if ((rc = set_override(t, keys[i], values[i], &e2)) != SL_OK) {
            sl_err_set(err, rc, "topic %s: %s", name, e2.msg);
            topic_free(t);
            return rc;
        }
    }
    if ((rc = check_conf(&t->conf, err)) != SL_OK) {
        topic_free(t);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < NBUCKETS && rc == SL_OK; b++)
        for (topic_t *o = s->buckets[b]; o; o = o->next)
            if (collides(o->name, name)) {
                rc = strcmp(o->name, name) == 0
                         ? sl_err_set(err, SL_ERR_TOPIC_ALREADY_EXISTS, "topic %s already exists",
                                      name)
                         : sl_err_set(err, SL_ERR_TOPIC_ALREADY_EXISTS,
                                      "topic %s collides with existing topic %s ('.' and '_' "
                                      "are alike in metric names)",
                                      name, o->name);
                break;
            }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->topics_dir, name);
    int e;
    if (rc == SL_OK && (e = io_mkdir_p(path)) < 0) rc = sl_err_sys(err, -e, "mkdir %s", path);
    if (rc == SL_OK) rc = write_topic_conf(s, t, err);
    if (rc == SL_OK && (e = io_fsync_dir(s->topics_dir)) < 0)
        rc = sl_err_sys(err, -e, "fsync %s", s->topics_dir);
    if (rc == SL_OK) insert(s, t);
    pthread_mutex_unlock(&s->mu);
    if (rc != SL_OK) topic_free(t);
    return rc;
}

int store_topic_delete(store_t *s, const char *name, sl_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    topic_t *t = lookup(s, name);
    if (!t) {
        pthread_mutex_unlock(&s->mu);
        return sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s does not exist", name);
    }
    char from[4096], del[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", s->topics_dir, name);
    snprintf(del, sizeof del, "%s/deleted", s->dir);
    snprintf(to, sizeof to, "%s/%s-%" PRIu64, del, name, ++s->delete_seq);
    /* Deleted first: from here no append runs and no closed segment file is
     * reopened by its old path, which a new topic of the same name may take. */
    for (int32_t i = 0; i < t->nparts; i++)
        if (t->parts[i]) partition_mark_deleted(t->parts[i]);
    int e = io_mkdir_p(del);
    /* One rename takes the topic out of the namespace atomically; the files
     * are removed after, and a crash in between is finished at open. */
    if (e < 0 || sl_io->rename(from, to) < 0) {
        int rc = sl_err_sys(err, e < 0 ? -e : errno, "rename %s to %s", from, to);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    io_fsync_dir(s->topics_dir);
    remove_topic(s, t);
    pthread_mutex_unlock(&s->mu);
    for (int32_t i = 0; i < t->nparts; i++)
        if (t->parts[i]) partition_unref(t->parts[i]);
    topic_free(t);
    rmtree(to);
    return SL_OK;
}

int store_topic_alter(store_t *s, const char *name, const char *const *keys,
                      const char *const *values, size_t nconf, sl_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    topic_t *t = lookup(s, name);
    int rc = SL_OK;
    if (!t) {
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s does not exist", name);
        goto out;
    }
    /* Validate everything on a scratch copy first: all or nothing. */
    sl_log_conf_t c = t->conf;
    for (size_t i = 0; i < nconf && rc == SL_OK; i++) {
        sl_err_t e2;
        if ((rc = sl_log_conf_set(&c, keys[i], values[i], &e2)) != SL_OK)
            sl_err_set(err, rc, "topic %s: %s", name, e2.msg);
    }
    if (rc == SL_OK) rc = check_conf(&c, err);
    for (size_t i = 0; i < nconf && rc == SL_OK; i++) rc = set_override(t, keys[i], values[i], err);
    if (rc == SL_OK) rc = write_topic_conf(s, t, err);
    if (rc == SL_OK)
        for (int32_t i = 0; i < t->nparts; i++)
            if (t->parts[i]) partition_set_conf(t->parts[i], &t->conf);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_topic_list(store_t *s, char ***names, size_t *n, sl_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    char **v = calloc(s->ntopics + 1, sizeof *v);
    size_t k = 0;
    int rc = SL_OK;
    for (topic_t *t = v ? s->all : NULL; t; t = t->anext)
        if (!(v[k++] = strdup(t->name))) {
            rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
            break;
        }
    pthread_mutex_unlock(&s->mu);
    if (!v) return sl_err_set(err, SL_ERR_NOMEM, "out of memory");
    if (rc != SL_OK) {
        store_names_free(v, k);
        return rc;
    }
    qsort(v, k, sizeof *v, cmp_str);
    *names = v;
    *n = k;
    return SL_OK;
}

void store_names_free(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int store_topic_info(store_t *s, const char *name, int32_t *partitions, sl_log_conf_t *conf,
                     char **overrides, sl_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    topic_t *t = lookup(s, name);
    int rc = SL_OK;
    if (!t) {
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s does not exist", name);
        goto out;
    }
    if (partitions) *partitions = t->nparts;
    if (conf) *conf = t->conf;
    if (overrides) {
        size_t cap = 1;
        for (size_t i = 0; i < t->nover; i++) cap += strlen(t->okeys[i]) + strlen(t->ovals[i]) + 2;
        char *o = malloc(cap);
        if (!o) {
            rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
            goto out;
        }
        size_t len = 0;
        o[0] = 0;
        for (size_t i = 0; i < t->nover; i++)
            len += (size_t)snprintf(o + len, cap - len, "%s=%s\n", t->okeys[i], t->ovals[i]);
        *overrides = o;
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Opens partition id of t. [mu] held: a first open (and its recovery) holds
 * up other lookups; recovery is bounded by unflushed data. */
static int open_part(store_t *s, topic_t *t, int32_t id, sl_err_t *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s/%d", s->topics_dir, t->name, id);
    partition_opts_t po = {
        .dir = dir,
        .topic = t->name,
        .id = id,
        .conf = &t->conf,
        .cache = s->cache,
        .recover = !s->was_clean,
        .now_ms = sl_wall_ms(),
        .on_dirty = flusher_mark_dirty,
        .on_dirty_arg = s->flusher,
        .producers = &s->producers,
    };
    partition_recovery_t rec;
    memset(&rec, 0, sizeof rec);
    partition_t *p;
    int rc = partition_open(&po, &p, &rec, err);
    if (rc != SL_OK) return rc;
    if (rec.ran && s->on_recover) s->on_recover(s->on_recover_arg, t->name, id, &rec);
    partition_set_on_close(p, forget_hook, s->flusher);
    partition_set_on_append(p, s->on_append, s->on_append_arg);
    t->parts[id] = p;
    return SL_OK;
}

int store_partition(store_t *s, const char *topic, int32_t id, partition_t **out, sl_err_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    topic_t *t = lookup(s, topic);
    int rc = SL_OK;
    if (!t) {
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s does not exist", topic);
        goto out;
    }
    if (id < 0 || id >= t->nparts) {
        rc = sl_err_set(err, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s has no partition %d",
                        topic, id);
        goto out;
    }
    if (!t->parts[id] && (rc = open_part(s, t, id, err)) != SL_OK) goto out;
    partition_ref(t->parts[id]);
    *out = t->parts[id];
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* More than one .log file in dir: retention may have work there. */
static int has_old_segments(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int logs = 0;
    struct dirent *e;
    while ((e = readdir(d)) && logs < 2) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".log") == 0) logs++;
    }
    closedir(d);
    return logs > 1;
}

void store_housekeep(store_t *s, int64_t now_ms, store_housekeeping_t *out)
{
    memset(out, 0, sizeof *out);
    /* Snapshot the partitions to visit under the lock; work without it. */
    pthread_mutex_lock(&s->mu);
    size_t cap = 64, n = 0;
    partition_t **v = malloc(cap * sizeof *v);
    for (size_t b = 0; v && b < NBUCKETS; b++)
        for (topic_t *t = s->buckets[b]; t; t = t->next)
            for (int32_t i = 0; i < t->nparts; i++) {
                if (!t->parts[i]) {
                    char dir[4096];
                    snprintf(dir, sizeof dir, "%s/%s/%d", s->topics_dir, t->name, i);
                    if (!has_old_segments(dir)) continue;
                    sl_err_t e;
                    if (open_part(s, t, i, &e) != SL_OK) {
                        out->errors++;
                        out->last_error = e;
                        continue;
                    }
                }
                if (n == cap) {
                    partition_t **nv = realloc(v, cap * 2 * sizeof *nv);
                    if (!nv) break;
                    v = nv;
                    cap *= 2;
                }
                partition_ref(t->parts[i]);
                v[n++] = t->parts[i];
            }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        sl_err_t e;
        int deleted = 0;
        partition_stats_t before, after;
        partition_stats(v[i], &before);
        if (partition_roll_if_due(v[i], now_ms, &e) != SL_OK) {
            out->errors++;
            out->last_error = e;
        }
        partition_stats(v[i], &after);
        out->rolled += (int)(after.segments - before.segments);
        if (partition_retention(v[i], now_ms, &deleted, &e) != SL_OK) {
            out->errors++;
            out->last_error = e;
        }
        out->deleted += deleted;
        partition_unref(v[i]);
    }
    free(v);
}

size_t store_open_partitions(store_t *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (topic_t *t = s->buckets[b]; t; t = t->next)
            for (int32_t i = 0; i < t->nparts; i++) n += t->parts[i] != NULL;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint32_t store_open_segment_files(store_t *s)
{
    return seg_cache_open_count(s->cache);
}

void store_set_on_append(store_t *s, void (*fn)(void *arg, partition_t *p), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->on_append = fn;
    s->on_append_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

void store_set_on_recover(store_t *s,
                          void (*fn)(void *arg, const char *topic, int32_t id,
                                     const partition_recovery_t *rec),
                          void *arg)
{
    s->on_recover = fn;
    s->on_recover_arg = arg;
}

void store_foreach_open(store_t *s, void (*fn)(void *arg, partition_t *p), void *arg)
{
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (topic_t *t = s->buckets[b]; t; t = t->next)
            for (int32_t i = 0; i < t->nparts; i++)
                if (t->parts[i]) fn(arg, t->parts[i]);
    pthread_mutex_unlock(&s->mu);
}
