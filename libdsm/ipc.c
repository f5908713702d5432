#define _GNU_SOURCE
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int ipc_listen(const char *path)
{
	struct sockaddr_un sun;
	int fd, ret = ipc_addr(path, &sun);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 64)) {
		ret = -errno;
		close(fd);
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

int ipc_send(int fd, unsigned type, uint64_t req_id, const void *body,
	     size_t body_len)
{
	size_t len = sizeof(struct wire_hdr) + body_len;
	char *buf;
	ssize_t n;

	if (len > WIRE_IPC_MAX)
		return -EMSGSIZE;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	wire_build(buf, len, type, req_id, body, body_len);
	n = send(fd, buf, len, MSG_NOSIGNAL);
	free(buf);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int ipc_recv(int fd, void *buf, size_t cap, int timeout_ms,
	     struct wire_msg *out, enum wire_error *bad)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	enum wire_error e;
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (n == 0)
		return -ECONNRESET;
	e = (size_t)n > cap ? WIRE_ELONG
			    : wire_decode(buf, (size_t)n, WIRE_CH_IPC, out);
	if (e != WIRE_OK) {
		if (bad)
			*bad = e;
		return -EPROTO;
	}
	return 0;
}

int ipc_client_open(const char *path, uint32_t kind, int timeout_ms,
		    struct wire_ipc_hello_ok *hello)
{
	struct wire_ipc_hello h = {.kind = kind, .pid = (uint32_t)getpid()};
	char buf[256];
	struct wire_msg m;
	int fd, ret;

	memcpy(h.magic, WIRE_IPC_MAGIC, sizeof(h.magic));
	fd = ipc_connect(path);
	if (fd < 0)
		return fd;
	ret = ipc_send(fd, WIRE_IPC_HELLO, 0, &h, sizeof(h));
	if (ret == 0)
		ret = ipc_recv(fd, buf, sizeof(buf), timeout_ms, &m, NULL);
	if (ret == 0 && m.hdr->type != WIRE_IPC_HELLO_OK)
		ret = -EPROTO;
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
