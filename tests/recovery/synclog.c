/* synclog.c — an LD_PRELOAD shim for test_synclog.c: records what each
 * successful fdatasync()/fsync() made durable, so a test can emulate a power
 * loss exactly (every file cut back to what was synced).
 *
 * For every call it takes the file's size *before* syncing (everything
 * written before the call is durable once it returns; bytes appended while
 * it runs may not be), calls the real function and, on success, appends
 * one line "<size> <path>\n" to the file named by $SLUICE_SYNCLOG (one
 * O_APPEND write per line, so lines from different threads never mix).
 * Without $SLUICE_SYNCLOG it only passes the calls through.
 *
 * Built without sanitizers; loaded into sluiced (also an ASan build, with
 * ASAN_OPTIONS=verify_asan_link_order=0).
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int logfd = -1;

__attribute__((constructor)) static void synclog_init(void)
{
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *p = getenv("SLUICE_SYNCLOG");
    if (p && *p) logfd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static int logged(int fd, int (*real)(int))
{
    struct stat st;
    int have = logfd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    int rc = real(fd);
    if (rc != 0 || !have) return rc;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return rc;
    path[n] = 0;
    char line[4200];
    int l = snprintf(line, sizeof line, "%lld %s\n", (long long)st.st_size, path);
    if (l > 0 && l < (int)sizeof line && write(logfd, line, (size_t)l) != l) {
        /* nothing to do: the test sees a missing line as "not synced" */
    }
    return rc;
}

int fdatasync(int fd)
{
    if (!real_fdatasync) synclog_init();
    return logged(fd, real_fdatasync);
}

int fsync(int fd)
{
    if (!real_fsync) synclog_init();
    return logged(fd, real_fsync);
}
