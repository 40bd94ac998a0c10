/* transport.h — what carries a connection's bytes: reads, gather-writes
 * of memory and sendfile of file ranges, behind one small table, so the
 * output chain (conn.c: memory and file-range nodes) and the handlers do
 * not know whether the socket is plain or (later) TLS.
 *
 * Every operation follows the system call it stands for: the byte count,
 * or -1 with errno set (EAGAIN: try again once the socket is ready; EINTR:
 * retry). read returns 0 at end of stream; sendfile returns 0 when the
 * file ended before the range did. A transport that cannot send a file
 * range without copying (TLS without kernel offload) reads and writes it
 * itself; the caller does not care.
 *
 * Threads: the connection's worker.
 */
#ifndef SLUICE_BROKER_TRANSPORT_H
#define SLUICE_BROKER_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct transport {
    const char *name;
    ssize_t (*read)(int fd, void *buf, size_t len);
    /* more: more bytes follow at once (a header before a file range), so
     * the transport may hold this packet back briefly (MSG_MORE). */
    ssize_t (*writev)(int fd, const struct iovec *iov, int n, int more);
    ssize_t (*sendfile)(int fd, int file_fd, off_t *pos, size_t len);
} transport_t;

/* Plain TCP: read(), sendmsg(MSG_NOSIGNAL), sendfile(). */
extern const transport_t transport_plain;

#endif
