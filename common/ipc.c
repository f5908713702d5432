#define _GNU_SOURCE
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int ipc_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (!path || !*path || strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

int ipc_listen(const char *path, mode_t mode, gid_t group)
{
	struct sockaddr_un sun;
	int fd, ret = ipc_addr(path, &sun);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	/* The mode is set before listen(): until then a connect is refused,
	 * so nobody gets in under the umask's mode. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if ((group != (gid_t)-1 && chown(path, (uid_t)-1, group)) ||
	    chmod(path, mode) || listen(fd, 64)) {
		ret = -errno;
		close(fd);
		unlink(path);
		return ret;
	}
	return fd;
}

int ipc_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, ret = ipc_addr(path, &sun);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int ipc_send_raw(int fd, const void *msg, size_t len, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int ipc_send_fd(int fd, unsigned type, uint64_t req_id, const void *body,
		size_t body_len, int pass_fd)
{
	size_t len = sizeof(struct wire_hdr) + body_len;
	char *buf;
	int ret;

	if (len > WIRE_IPC_MAX)
		return -EMSGSIZE;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	wire_build(buf, len, type, req_id, body, body_len);
	ret = ipc_send_raw(fd, buf, len, pass_fd);
	free(buf);
	return ret;
}

int ipc_send(int fd, unsigned type, uint64_t req_id, const void *body,
	     size_t body_len)
{
	return ipc_send_fd(fd, type, req_id, body, body_len, -1);
}

/* The descriptor passed with a message, if any; closes any extra ones. */
static int take_fds(struct msghdr *mh)
{
	struct cmsghdr *cm;
	int got = -1, one;
	size_t i, n;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&one, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (got < 0)
				got = one;
			else
				close(one);
		}
	}
	return got;
}

int ipc_recv_fd(int fd, void *buf, size_t cap, int timeout_ms,
		struct wire_msg *out, enum wire_error *bad, int *passed)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	enum wire_error e;
	ssize_t n;
	int r, got;

	if (passed)
		*passed = -1;
	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recvmsg(fd, &mh, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	got = take_fds(&mh);
	if (passed)
		*passed = got;
	else if (got >= 0)
		close(got);
	if (n == 0)
		e = WIRE_ETRUNC;
	else
		e = (size_t)n > cap || (mh.msg_flags & MSG_CTRUNC)
			    ? WIRE_ELONG
			    : wire_decode(buf, (size_t)n, WIRE_CH_IPC, out);
	if (n == 0 || e != WIRE_OK) {
		if (passed && got >= 0) {
			close(got);
			*passed = -1;
		}
		if (n == 0)
			return -ECONNRESET;
		if (bad)
			*bad = e;
		return -EPROTO;
	}
	return 0;
}

int ipc_recv(int fd, void *buf, size_t cap, int timeout_ms,
	     struct wire_msg *out, enum wire_error *bad)
{
	return ipc_recv_fd(fd, buf, cap, timeout_ms, out, bad, NULL);
}

int ipc_client_open(const char *path, uint32_t kind, uint64_t job,
		    const char *key, int timeout_ms,
		    struct wire_ipc_hello_ok *hello)
{
	struct wire_ipc_hello h = {.kind = kind, .job = job};
	char buf[256];
	struct wire_msg m;
	int fd, ret;

	memcpy(h.magic, WIRE_IPC_MAGIC, sizeof(h.magic));
	if (key && strlen(key) >= sizeof(h.key))
		return -ENAMETOOLONG;
	if (key)
		memcpy(h.key, key, strlen(key));
	fd = ipc_connect(path);
	if (fd < 0)
		return fd;
	ret = ipc_send(fd, WIRE_IPC_HELLO, 0, &h, sizeof(h));
	if (ret == 0)
		ret = ipc_recv(fd, buf, sizeof(buf), timeout_ms, &m, NULL);
	if (ret == 0 && m.hdr->type == WIRE_IPC_RESULT) {
		struct wire_ipc_result r;

		memcpy(&r, m.body, sizeof(r));
		ret = r.status < 0 ? r.status : -EPROTO;
	} else if (ret == 0 && m.hdr->type != WIRE_IPC_HELLO_OK) {
		ret = -EPROTO;
	}
	if (ret) {
		close(fd);
		return ret;
	}
	memcpy(hello, m.body, sizeof(*hello));
	return fd;
}

const char *ipc_socket_path(void)
{
	const char *p = getenv("DSM_SOCKET");

	return p && *p ? p : IPC_DEFAULT_SOCKET;
}
