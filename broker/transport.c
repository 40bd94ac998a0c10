/* transport.c — the plain-socket transport (transport.h). */
#include "transport.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(int fd, void *buf, size_t len)
{
    return read(fd, buf, len);
}

static ssize_t plain_writev(int fd, const struct iovec *iov, int n, int more)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    return sendmsg(fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static ssize_t plain_sendfile(int fd, int file_fd, off_t *pos, size_t len)
{
    return sendfile(fd, file_fd, pos, len);
}

const transport_t transport_plain = {"plain", plain_read, plain_writev, plain_sendfile};
