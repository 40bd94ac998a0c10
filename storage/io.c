#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int real_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags | O_CLOEXEC, mode);
}

static const sl_io_ops_t real_ops = {
    .open = real_open,
    .close = close,
    .pwrite = pwrite,
    .pread = pread,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = ftruncate,
    .fallocate = fallocate,
    .rename = rename,
    .unlink = unlink,
    .mkdir = mkdir,
    .rmdir = rmdir,
};

const sl_io_ops_t *sl_io = &real_ops;

const sl_io_ops_t *sl_io_real(void)
{
    return &real_ops;
}

void sl_io_set(const sl_io_ops_t *ops)
{
    sl_io = ops ? ops : &real_ops;
}

int io_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = sl_io->pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (w == 0) return -EIO; /* a regular file never legitimately writes 0 */
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

ssize_t io_pread_all(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = sl_io->pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int io_fsync_dir(const char *dir)
{
    int fd = sl_io->open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return -errno;
    int rc = sl_io->fsync(fd) < 0 ? -errno : 0;
    sl_io->close(fd);
    return rc;
}

int io_write_file_atomic(const char *path, const void *data, size_t n)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    char *dircopy = strdup(path);
    int rc = 0, fd = -1;
    if (!tmp || !dircopy) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = sl_io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = io_pwrite_all(fd, data, n, 0)) < 0) goto out_unlink;
    if (sl_io->fdatasync(fd) < 0) {
        rc = -errno;
        goto out_unlink;
    }
    sl_io->close(fd);
    fd = -1;
    if (sl_io->rename(tmp, path) < 0) {
        rc = -errno;
        goto out_unlink;
    }
    rc = io_fsync_dir(dirname(dircopy));
    goto out;
out_unlink:
    sl_io->unlink(tmp);
out:
    if (fd >= 0) sl_io->close(fd);
    free(tmp);
    free(dircopy);
    return rc;
}

int io_mkdir_p(const char *path)
{
    if (sl_io->mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -errno;
}
