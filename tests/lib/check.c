#include "check.h"

#include <ftw.h>
#include <unistd.h>

int check_failures;
int check_count;

int check_exit(void)
{
    if (check_count == 0) {
        fprintf(stderr, "no checks ran\n");
        return 1;
    }
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

char *check_tmpdir(const char *name)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + strlen(name) + 32;
    char *p = malloc(n);
    CHECK_FATAL(p != NULL);
    snprintf(p, n, "%s/sluice-%s-XXXXXX", base, name);
    CHECK_FATAL(mkdtemp(p) != NULL);
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void check_rmtree(const char *path)
{
    if (path) nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

char *check_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    CHECK_FATAL(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}
