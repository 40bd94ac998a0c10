/* io.h — the one seam through which storage/ touches the disk.
 *
 * Every open, write, read, sync, truncate, allocate, rename, unlink and
 * mkdir of the storage engine goes through the function table `sl_io`, so
 * tests can swap in one that injects short writes, ENOSPC or EIO (the way
 * beanstalkd swaps its falloc and SQLite its VFS). Production uses the real
 * system calls.
 *
 * Conventions: every function returns what the system call returns (-1 and
 * errno on failure). The helpers below loop on EINTR and short transfers and
 * return 0 or a negative errno. sl_io_set() is for tests: call it while no
 * store is open (it is a plain pointer store, not synchronised).
 */
#ifndef SLUICE_STORAGE_IO_H
#define SLUICE_STORAGE_IO_H

#include <stddef.h>
#include <sys/types.h>

typedef struct sl_io_ops {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*fallocate)(int fd, int mode, off_t off, off_t len);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*rmdir)(const char *path);
} sl_io_ops_t;

/* The table in force. Never NULL. */
extern const sl_io_ops_t *sl_io;

/* The real system calls. */
const sl_io_ops_t *sl_io_real(void);

/* Replaces the table (NULL restores the real one). Tests only. */
void sl_io_set(const sl_io_ops_t *ops);

/* Writes all n bytes at off, retrying EINTR and continuing after short
 * writes. Returns 0 or -errno; on error some prefix may have been written. */
int io_pwrite_all(int fd, const void *buf, size_t n, off_t off);

/* Reads up to n bytes at off, retrying EINTR and short reads; returns the
 * number read (short only at end of file) or -errno. */
ssize_t io_pread_all(int fd, void *buf, size_t n, off_t off);

/* fsync() of a directory, so a create, rename or unlink inside it is
 * durable. Returns 0 or -errno. */
int io_fsync_dir(const char *dir);

/* Replaces `path` atomically with data[0..n): writes path.tmp, fdatasyncs it,
 * renames it over path and fsyncs the parent directory. After a crash the
 * file holds either the old or the new content. Returns 0 or -errno. */
int io_write_file_atomic(const char *path, const void *data, size_t n);

/* mkdir that treats EEXIST as success. Returns 0 or -errno. */
int io_mkdir_p(const char *path);

#endif
