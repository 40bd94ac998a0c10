/* fuzz_conf.c — libFuzzer target for sluiced's configuration parsing
 * (broker/conf.c, with storage/logconf.c's integer parser and
 * proto/errors.c's edit distance behind it).
 *
 * Input: text. It is split at the first line "--" (if any) into a file part
 * and an argument part; without that line the whole input is both.
 *   1. The file part is written to a temporary file (under /dev/shm) and
 *      loaded with broker_conf_load_file over the defaults.
 *   2. The argument part is split into argv words — at NUL bytes when it
 *      holds any, else at newlines — behind argv[0] = "sluiced", and applied
 *      with broker_conf_from_args over the defaults. Any "--config X" /
 *      "--config=X" is pointed at the temporary file (the fuzzer must not
 *      open arbitrary paths such as /dev/zero, on which fgets never ends).
 * Both must return SL_OK or SL_ERR_INVALID_CONFIG with a message and never
 * crash; a failed load may have changed some keys, but every value must
 * still be within its table bounds, and every string value one the dump can
 * write back (no control characters, no blank at either end). After each
 * successful load broker_conf_check runs, and the configuration must
 * survive broker_conf_dump → broker_conf_load_file: the same value for every
 * key, the same check result, and a second dump identical to the first.
 *
 * The file is also loaded by a small reference loader written from the
 * format's description (a line of more than 4095 bytes, its newline
 * included, or holding a NUL byte is an error); both must agree on the
 * result and on every value. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_ARGS 256
#define MAX_LINE 4095 /* bytes of a line, its newline included */

static char path[256], dump_path[256];
static const conf_def_t *table;
static size_t ntable;

static void cleanup(void)
{
    unlink(path);
    unlink(dump_path);
}

static void init(void)
{
    if (table) return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sluice-fuzz-conf-%d.conf", base, (int)getpid());
    snprintf(dump_path, sizeof dump_path, "%s/sluice-fuzz-conf-%d.dump", base, (int)getpid());
    table = broker_conf_table(&ntable);
    atexit(cleanup);
}

static void write_file(const char *p, const uint8_t *b, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(n == 0 || write(fd, b, n) == (ssize_t)n);
    close(fd);
}

static char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    FUZZ_ASSERT(f != NULL);
    char *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (cap - *n < 4096) {
            cap = cap ? 2 * cap : 8192;
            b = realloc(b, cap);
            FUZZ_ASSERT(b != NULL);
        }
        size_t r = fread(b + *n, 1, cap - *n, f);
        *n += r;
        if (r == 0) break;
    }
    fclose(f);
    return b;
}

/* ---- properties ----------------------------------------------------------- */

static const char *str_of(const broker_conf_t *c, const conf_def_t *d)
{
    return (const char *)c + d->offset;
}

static int64_t int_of(const broker_conf_t *c, const conf_def_t *d)
{
    int64_t v;
    memcpy(&v, (const char *)c + d->offset, sizeof v);
    return v;
}

/* A string value the key=value file format can carry: no control
 * characters (a newline would split it), no blank at either end (the file
 * reader trims). */
static int representable(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return n == 0 || (s[0] != ' ' && s[n - 1] != ' ');
}

/* Every value lies within its key's bounds, whatever was loaded. */
static void check_bounds(const broker_conf_t *c)
{
    for (size_t i = 0; i < ntable; i++) {
        const conf_def_t *d = &table[i];
        int64_t v;
        switch (d->type) {
        case CONF_STRING:
            FUZZ_ASSERT(memchr(str_of(c, d), 0, d->size) != NULL);
            FUZZ_ASSERT(representable(str_of(c, d)));
            break;
        case CONF_INT:
            v = int_of(c, d);
            FUZZ_ASSERT(v >= d->min && v <= d->max);
            break;
        case CONF_BOOL:
            v = int_of(c, d);
            FUZZ_ASSERT(v == 0 || v == 1);
            break;
        case CONF_ENUM: {
            v = int_of(c, d);
            int64_t n = 1;
            for (const char *p = d->values; (p = strchr(p, '|')); p++) n++;
            FUZZ_ASSERT(v >= 0 && v < n);
            break;
        }
        }
    }
}

/* dump → load → same configuration, same check, same dump. */
static void check_roundtrip(const broker_conf_t *c)
{
    int fd = open(dump_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0);
    broker_conf_dump(c, fd);
    close(fd);
    size_t n1;
    char *d1 = slurp(dump_path, &n1);

    broker_conf_t c2;
    broker_conf_defaults(&c2);
    sl_err_t err;
    int rc = broker_conf_load_file(&c2, dump_path, &err);
    if (rc != SL_OK) fprintf(stderr, "reloading the dump: %s\n", err.msg);
    FUZZ_ASSERT(rc == SL_OK);
    for (size_t i = 0; i < ntable; i++) {
        const conf_def_t *d = &table[i];
        if (d->type == CONF_STRING) {
            if (strcmp(str_of(c, d), str_of(&c2, d)) != 0)
                fprintf(stderr, "%s: \"%s\" came back as \"%s\"\n", d->name, str_of(c, d),
                        str_of(&c2, d));
            FUZZ_ASSERT(strcmp(str_of(c, d), str_of(&c2, d)) == 0);
        } else {
            FUZZ_ASSERT(int_of(c, d) == int_of(&c2, d));
        }
    }
    sl_err_t e1, e2;
    FUZZ_ASSERT(broker_conf_check(c, &e1) == broker_conf_check(&c2, &e2));

    fd = open(dump_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_ASSERT(fd >= 0);
    broker_conf_dump(&c2, fd);
    close(fd);
    size_t n2;
    char *d2 = slurp(dump_path, &n2);
    FUZZ_ASSERT(n1 == n2 && memcmp(d1, d2, n1) == 0);
    free(d1);
    free(d2);
}

static void after_load(const broker_conf_t *c, int rc, const sl_err_t *err)
{
    FUZZ_ASSERT(rc == SL_OK || rc == SL_ERR_INVALID_CONFIG);
    if (rc != SL_OK) FUZZ_ASSERT(err->code == rc && err->msg[0] != '\0');
    check_bounds(c);
    if (rc != SL_OK) return;
    sl_err_t e;
    sl_err_clear(&e);
    int crc = broker_conf_check(c, &e);
    FUZZ_ASSERT(crc == SL_OK || (crc == SL_ERR_INVALID_CONFIG && e.msg[0] != '\0'));
    check_roundtrip(c);
}

/* ---- a reference file loader ---------------------------------------------- */

/* The file format as docs/broker.md describes it: lines end at '\n'; a
 * line of more than MAX_LINE bytes (its '\n' included) or holding a NUL is
 * an error; blanks around keys and values and a trailing '\r' are trimmed;
 * empty lines and lines starting with '#' are skipped; others are
 * key=value, applied in order until the first error. */
static char *ref_trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

static int ref_load(broker_conf_t *c, const uint8_t *d, size_t n)
{
    char *buf = malloc(n + 1);
    FUZZ_ASSERT(buf != NULL);
    if (n) memcpy(buf, d, n);
    buf[n] = 0;
    int rc = SL_OK;
    for (size_t i = 0; i < n && rc == SL_OK;) {
        char *line = buf + i;
        size_t l = 0;
        while (i + l < n && buf[i + l] != '\n') l++;
        if (l + (i + l < n) > MAX_LINE || memchr(line, 0, l)) {
            rc = SL_ERR_INVALID_CONFIG;
            break;
        }
        line[l] = 0;
        i += l + 1;
        char *s = ref_trim(line);
        if (*s == 0 || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = SL_ERR_INVALID_CONFIG;
            break;
        }
        *eq = 0;
        rc = broker_conf_set(c, ref_trim(s), ref_trim(eq + 1), NULL);
    }
    free(buf);
    return rc;
}

static void check_same(const broker_conf_t *a, const broker_conf_t *b)
{
    for (size_t i = 0; i < ntable; i++) {
        const conf_def_t *d = &table[i];
        if (d->type == CONF_STRING)
            FUZZ_ASSERT(strcmp(str_of(a, d), str_of(b, d)) == 0);
        else
            FUZZ_ASSERT(int_of(a, d) == int_of(b, d));
    }
}

/* ---- driving -------------------------------------------------------------- */

/* Offset of the first "--" line (the line itself included) or size. */
static size_t split_point(const uint8_t *d, size_t size, size_t *args_at)
{
    for (size_t i = 0; i + 2 <= size; i++) {
        if ((i == 0 || d[i - 1] == '\n') && d[i] == '-' && d[i + 1] == '-' &&
            (i + 2 == size || d[i + 2] == '\n')) {
            *args_at = i + 2 < size ? i + 3 : size;
            return i;
        }
    }
    *args_at = 0;
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    size_t args_at;
    size_t file_len = split_point(data, size, &args_at);

    /* 1. the file */
    write_file(path, data, file_len);
    broker_conf_t c;
    broker_conf_defaults(&c);
    sl_err_t err;
    sl_err_clear(&err);
    int rc = broker_conf_load_file(&c, path, &err);
    after_load(&c, rc, &err);
    /* ... exactly as the reference loader does */
    broker_conf_t r;
    broker_conf_defaults(&r);
    int rrc = ref_load(&r, data, file_len);
    if (rrc != rc) fprintf(stderr, "reference loader: %d, broker_conf_load_file: %d\n", rrc, rc);
    FUZZ_ASSERT(rrc == rc);
    check_same(&c, &r);

    /* 2. the arguments */
    size_t alen = size - args_at;
    char *buf = malloc(alen + 1);
    FUZZ_ASSERT(buf != NULL);
    if (alen) memcpy(buf, data + args_at, alen);
    buf[alen] = 0;
    char sep = memchr(buf, 0, alen) ? '\0' : '\n';
    char *argv[MAX_ARGS + 1];
    char cfg[300];
    snprintf(cfg, sizeof cfg, "--config=%s", path);
    int argc = 0;
    argv[argc++] = "sluiced";
    for (size_t i = 0; i <= alen && argc < MAX_ARGS;) {
        char *w = buf + i;
        size_t n = 0;
        while (i + n < alen && buf[i + n] != sep) n++;
        w[n] = 0;
        i += n + 1;
        if (n == 0) continue; /* a trailing or doubled separator */
        if (strcmp(w, "--config") == 0) {
            argv[argc++] = cfg;
            /* skip the file name word */
            while (i < alen && buf[i] != sep) i++;
            i++;
            continue;
        }
        argv[argc++] = strncmp(w, "--config=", 9) == 0 ? cfg : w;
    }
    argv[argc] = NULL;
    broker_conf_t c2;
    broker_conf_defaults(&c2);
    sl_err_clear(&err);
    int action = -1;
    rc = broker_conf_from_args(&c2, argc, argv, &action, &err);
    FUZZ_ASSERT(action >= 0 && action <= 4);
    after_load(&c2, rc, &err);
    free(buf);
    cleanup(); /* libFuzzer does not always run atexit handlers */
    return 0;
}
