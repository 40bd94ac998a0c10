/* rlib.c — helpers shared by the crash-consistency tests; see rlib.h. */
#include "rlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "crc32c.h"

/* ---- options ---------------------------------------------------------------- */

static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t l = strlen(name);
    if (strncmp(argv[*i], name, l) != 0) return 0;
    if (argv[*i][l] == '=') {
        *val = argv[*i] + l + 1;
        return 1;
    }
    if (argv[*i][l] == '\0' && *i + 1 < argc) {
        *val = argv[++*i];
        return 1;
    }
    return 0;
}

void rl_parse_args(int argc, char **argv, int default_cycles, rl_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->cycles = default_cycles;
    int seeded = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (opt_value(argc, argv, &i, "--cycles", &v)) {
            o->cycles = atoi(v);
        } else if (opt_value(argc, argv, &i, "--seed", &v)) {
            o->seed = strtoull(v, NULL, 0);
            seeded = 1;
        } else if (strcmp(argv[i], "--long") == 0) {
            o->long_run = 1;
        } else if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] && o->nflags < 8) {
            o->flags[o->nflags++] = argv[i];
        } else {
            fprintf(stderr, "usage: %s [--cycles N] [--seed S] [--long] [--FLAG...]\n", argv[0]);
            exit(2);
        }
    }
    if (!seeded && getenv("SLUICE_SEED")) {
        o->seed = strtoull(getenv("SLUICE_SEED"), NULL, 0);
        seeded = 1;
    }
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o->seed = ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        o->seed %= 1000000000u; /* short enough to type back in */
    }
    if (o->cycles < 1) o->cycles = 1;
}

int rl_flag(const rl_opts_t *o, const char *name)
{
    for (int i = 0; i < o->nflags; i++)
        if (strcmp(o->flags[i], name) == 0) return 1;
    return 0;
}

void rl_allow_flags(const rl_opts_t *o, const char *const *allowed)
{
    for (int i = 0; i < o->nflags; i++) {
        int ok = 0;
        for (int k = 0; allowed && allowed[k]; k++)
            if (strcmp(o->flags[i], allowed[k]) == 0) ok = 1;
        if (!ok) {
            fprintf(stderr, "unknown option %s\n", o->flags[i]);
            exit(2);
        }
    }
}

static harness_t *guarded;

static void guard_exit(void)
{
    if (guarded && guarded->pid > 0) harness_stop(guarded, SIGKILL);
}

void rl_guard(harness_t *h)
{
    if (!guarded) atexit(guard_exit);
    guarded = h;
}

/* ---- PRNG --------------------------------------------------------------------- */

uint64_t rl_next(rl_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t rl_range(rl_rng_t *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) return lo;
    return lo + rl_next(r) % (hi - lo + 1);
}

double rl_now_s(void)
{
    return (double)sl_mono_ns() / 1e9;
}

/* ---- libsluice handles ----------------------------------------------------------- */

sluice_conf_t *rl_conf(const harness_t *h, const char *const *kv)
{
    sluice_conf_t *c = sluice_conf_new();
    CHECK_FATAL(c != NULL);
    char err[256], bs[64];
    snprintf(bs, sizeof bs, "127.0.0.1:%d", h->port);
    CHECK_FATAL(sluice_conf_set(c, "bootstrap.servers", bs, err, sizeof err) == SLUICE_CONF_OK);
    for (int i = 0; kv && kv[i]; i += 2) {
        if (sluice_conf_set(c, kv[i], kv[i + 1], err, sizeof err) != SLUICE_CONF_OK) {
            fprintf(stderr, "conf %s=%s: %s\n", kv[i], kv[i + 1], err);
            CHECK_FATAL(0);
        }
    }
    return c;
}

/* libsluice's default log callback prints warnings; the tests provoke many
 * (every kill breaks connections), so only errors are shown. */
static void quiet_log(int level, const char *fac, const char *msg, void *opaque)
{
    (void)opaque;
    if (level <= 3) fprintf(stderr, "libsluice %s: %s\n", fac, msg);
}

sluice_producer_t *rl_producer(const harness_t *h, const char *const *kv, sluice_dr_cb_t *cb,
                               void *opaque)
{
    sluice_conf_t *c = rl_conf(h, kv);
    if (cb) sluice_conf_set_dr_cb(c, cb);
    sluice_conf_set_opaque(c, opaque);
    sluice_conf_set_log_cb(c, quiet_log);
    char err[256];
    sluice_producer_t *p = sluice_producer_new(c, err, sizeof err);
    if (!p) fprintf(stderr, "sluice_producer_new: %s\n", err);
    CHECK_FATAL(p != NULL);
    return p;
}

sluice_consumer_t *rl_consumer(const harness_t *h, const char *const *kv)
{
    sluice_conf_t *c = rl_conf(h, kv);
    sluice_conf_set_log_cb(c, quiet_log);
    char err[256];
    sluice_consumer_t *k = sluice_consumer_new(c, err, sizeof err);
    if (!k) fprintf(stderr, "sluice_consumer_new: %s\n", err);
    CHECK_FATAL(k != NULL);
    return k;
}

sluice_admin_t *rl_admin(const harness_t *h)
{
    sluice_conf_t *c = rl_conf(h, NULL);
    char err[256];
    sluice_admin_t *a = sluice_admin_new(c, err, sizeof err);
    if (!a) {
        fprintf(stderr, "sluice_admin_new: %s\n", err);
        sluice_conf_destroy(c);
    }
    return a;
}

int rl_create_topic(const harness_t *h, const char *topic, int32_t partitions,
                    const char *const *configs, size_t n)
{
    sluice_admin_t *a = rl_admin(h);
    if (!a) return SLUICE_ERR__TRANSPORT;
    char err[512] = "";
    int rc = sluice_admin_create_topic(a, topic, partitions, configs, n, err, sizeof err);
    if (rc) fprintf(stderr, "create topic %s: %s (%s)\n", topic, sluice_err2str(rc), err);
    sluice_admin_destroy(a);
    return rc;
}

int rl_describe(const harness_t *h, const char *topic, int64_t *leo, int max)
{
    sluice_admin_t *a = rl_admin(h);
    if (!a) return -1;
    sluice_tp_list_t *l = NULL;
    char err[512] = "";
    int n = -1;
    int rc = sluice_admin_describe_topics(a, &topic, 1, &l, err, sizeof err);
    if (rc == SLUICE_OK && l) {
        n = 0;
        for (size_t i = 0; i < l->cnt; i++) {
            if (strcmp(l->elems[i].topic, topic) != 0) continue;
            if (l->elems[i].err) {
                n = -1;
                break;
            }
            int32_t p = l->elems[i].partition;
            if (leo && p >= 0 && p < max) leo[p] = l->elems[i].offset;
            n++;
        }
    }
    sluice_tp_list_destroy(l);
    sluice_admin_destroy(a);
    return n;
}

/* ---- payloads ----------------------------------------------------------------------- */

static char fill_char(uint32_t pid, uint64_t seq, size_t i)
{
    return (char)('a' + (int)((pid * 131u + seq * 17u + i * 7u) % 26u));
}

size_t rl_payload(char *buf, size_t cap, uint32_t pid, uint64_t seq, size_t len)
{
    if (len < RL_PAYLOAD_MIN) len = RL_PAYLOAD_MIN;
    if (len > cap) len = cap;
    int n = snprintf(buf, cap, "R%" PRIu32 ":%" PRIu64 ":%zu:", pid, seq, len);
    for (size_t i = (size_t)n; i < len; i++) buf[i] = fill_char(pid, seq, i);
    return len;
}

int rl_payload_parse(const void *v, size_t len, uint32_t *pid, uint64_t *seq)
{
    if (!v || len < RL_PAYLOAD_MIN || len > (1u << 20)) return -1;
    const char *s = v;
    char head[64];
    size_t hl = len < sizeof head - 1 ? len : sizeof head - 1;
    memcpy(head, s, hl);
    head[hl] = 0;
    unsigned long p = 0;
    unsigned long long q = 0;
    size_t l = 0;
    int used = 0;
    if (head[0] != 'R' || sscanf(head, "R%lu:%llu:%zu:%n", &p, &q, &l, &used) != 3 || used <= 0 ||
        l != len)
        return -1;
    for (size_t i = (size_t)used; i < len; i++)
        if (s[i] != fill_char((uint32_t)p, q, i)) return -1;
    *pid = (uint32_t)p;
    *seq = q;
    return 0;
}

/* ---- reading back ---------------------------------------------------------------------- */

static size_t find_part(rl_part_t *parts, size_t n, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].partition == partition && strcmp(parts[i].topic, topic) == 0) return i;
    return n;
}

int rl_read(const harness_t *h, rl_part_t *parts, size_t n, rl_msg_fn fn, void *arg, int timeout_ms,
            const char *const *extra_kv)
{
    const char *kv[32];
    int k = 0;
    kv[k++] = "enable.partition.eof";
    kv[k++] = "true";
    kv[k++] = "check.crcs";
    kv[k++] = "true";
    kv[k++] = "fetch.max.wait.ms";
    kv[k++] = "100";
    for (int i = 0; extra_kv && extra_kv[i] && k < 30; i++) kv[k++] = extra_kv[i];
    kv[k] = NULL;
    sluice_consumer_t *c = rl_consumer(h, kv);
    sluice_tp_list_t *l = sluice_tp_list_new(n);
    for (size_t i = 0; i < n; i++) {
        parts[i].next = parts[i].from;
        parts[i].eof_at = -1;
        parts[i].records = parts[i].gaps = parts[i].errors = 0;
        sluice_tp_list_add(l, parts[i].topic, parts[i].partition)->offset = parts[i].from;
    }
    CHECK_EQ_INT(sluice_consumer_assign(c, l), 0);
    sluice_tp_list_destroy(l);
    size_t done = 0;
    int printed = 0;
    int64_t deadline = sl_mono_ms() + timeout_ms;
    while (done < n && sl_mono_ms() < deadline) {
        sluice_message_t *m = sluice_consumer_poll(c, 100);
        if (!m) continue;
        size_t i = find_part(parts, n, m->topic ? m->topic : "", m->partition);
        if (i == n) {
            CHECK_MSG(0, "message from an unassigned partition %s-%d", m->topic ? m->topic : "?",
                      (int)m->partition);
            sluice_message_destroy(m);
            continue;
        }
        rl_part_t *p = &parts[i];
        if (m->err == SLUICE_ERR__PARTITION_EOF) {
            /* No producer runs while a test reads back, so the end it
             * reports is the log end. */
            if (p->eof_at < 0) {
                p->eof_at = m->offset; /* short of `to` when the log ends early */
                done++;
            }
        } else if (m->err) {
            p->errors++;
            if (printed++ < 20)
                fprintf(stderr, "read %s-%d: error %s at offset %" PRId64 "\n", p->topic,
                        (int)p->partition, sluice_err2str(m->err), m->offset);
            if (fn) fn(arg, i, m);
        } else {
            if (m->offset != p->next) {
                p->gaps++;
                if (printed++ < 20)
                    fprintf(stderr, "read %s-%d: offset %" PRId64 " after %" PRId64 "\n", p->topic,
                            (int)p->partition, m->offset, p->next - 1);
            }
            if (m->offset >= p->next) p->next = m->offset + 1;
            p->records++;
            if (p->eof_at >= 0 && m->offset >= p->eof_at) {
                /* more data after a reported end: keep reading to the real one */
                p->eof_at = -1;
                done--;
            }
            if (fn) fn(arg, i, m);
        }
        sluice_message_destroy(m);
    }
    sluice_consumer_destroy(c);
    if (done < n) {
        for (size_t i = 0; i < n; i++)
            if (parts[i].eof_at < 0)
                CHECK_MSG(0,
                          "read %s-%d: no end of partition within %d ms (at %" PRId64
                          ", want %" PRId64 ")",
                          parts[i].topic, (int)parts[i].partition, timeout_ms, parts[i].next,
                          parts[i].to);
        return -1;
    }
    return 0;
}

/* ---- files ------------------------------------------------------------------------------ */

void rl_part_dir(const harness_t *h, const char *topic, int32_t partition, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/topics/%s/%d", h->data, topic, (int)partition);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int rl_segments(const char *dir, int64_t *bases, int max)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strlen(nm) != 24 || strcmp(nm + 20, ".log") != 0) continue;
        int digits = 1;
        for (int i = 0; i < 20; i++)
            if (nm[i] < '0' || nm[i] > '9') digits = 0;
        if (!digits) continue;
        if (n < max) bases[n++] = strtoll(nm, NULL, 10);
    }
    closedir(d);
    qsort(bases, (size_t)n, sizeof *bases, cmp_i64);
    return n;
}

void rl_segment_path(const char *dir, int64_t base, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%020" PRId64 ".log", dir, base);
}

uint8_t *rl_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return NULL;
    }
    size_t sz = (size_t)st.st_size;
    uint8_t *b = malloc(sz ? sz : 1);
    size_t got = 0;
    while (b && got < sz) {
        ssize_t r = pread(fd, b + got, sz - got, (off_t)got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (b && got != sz) {
        free(b);
        return NULL;
    }
    *len = sz;
    return b;
}

int rl_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, (const char *)buf + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

size_t rl_walk(const uint8_t *buf, size_t len, int64_t first_offset, rl_batch_t **out,
               uint64_t *end_pos)
{
    size_t n = 0, cap = 0;
    rl_batch_t *v = NULL;
    uint64_t pos = 0;
    int64_t expect = first_offset;
    while (pos + SL_BATCH_HEADER_SIZE <= len) {
        uint64_t sz = sl_batch_total_size(buf + pos);
        if (sz < SL_BATCH_HEADER_SIZE || pos + sz > len) break;
        sl_batch_hdr_t hd;
        if (sl_batch_validate(buf + pos, (size_t)sz, NULL, &hd, NULL) != SL_OK) break;
        if (hd.base_offset != expect) break;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            rl_batch_t *nv = realloc(v, cap * sizeof *nv);
            CHECK_FATAL(nv != NULL);
            v = nv;
        }
        v[n].pos = pos;
        v[n].size = sz;
        v[n].base = hd.base_offset;
        v[n].last = hd.base_offset + hd.last_offset_delta;
        expect = v[n].last + 1;
        n++;
        pos += sz;
    }
    *end_pos = pos;
    if (out)
        *out = v;
    else
        free(v);
    return n;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int rl_checkpoint(const char *dir, int64_t *offset, int64_t *seg_base, uint64_t *pos)
{
    char path[600];
    snprintf(path, sizeof path, "%s/recovery-point", dir);
    size_t len = 0;
    uint8_t *b = rl_slurp(path, &len);
    if (!b) return 0;
    int found = 0;
    uint64_t best = 0;
    for (size_t s = 0; s < 2 && len >= (s + 1) * 64; s++) {
        const uint8_t *q = b + s * 64;
        uint32_t crc =
            (uint32_t)q[60] | (uint32_t)q[61] << 8 | (uint32_t)q[62] << 16 | (uint32_t)q[63] << 24;
        if (memcmp(q, "SLRP", 4) != 0 || sl_crc32c(0, q, 60) != crc) continue;
        uint64_t seq = le64(q + 8);
        if (found && seq <= best) continue;
        best = seq;
        found = 1;
        *offset = (int64_t)le64(q + 16);
        *seg_base = (int64_t)le64(q + 24);
        *pos = le64(q + 32);
    }
    free(b);
    return found;
}

int rl_run(char *const argv[], char **out, int timeout_ms)
{
    int pfd[2];
    if (out) *out = NULL;
    if (pipe(pfd) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = sl_mono_ms() + timeout_ms;
    int killed = 0;
    for (;;) {
        int64_t left = deadline - sl_mono_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (buf && cap - len < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (nb) {
                buf = nb;
                cap *= 2;
            }
        }
        char scratch[1024];
        char *dst = buf && cap - len > 1 ? buf + len : scratch;
        size_t room = buf && cap - len > 1 ? cap - len - 1 : sizeof scratch;
        ssize_t r = read(pfd[0], dst, room);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (dst != scratch) len += (size_t)r;
    }
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (buf) buf[len] = 0;
    if (out)
        *out = buf;
    else
        free(buf);
    if (killed) {
        fprintf(stderr, "%s did not finish within %d ms\n", argv[0], timeout_ms);
        return -1;
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}
