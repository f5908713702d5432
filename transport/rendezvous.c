#define _GNU_SOURCE
#include "rendezvous.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define RDV_MAGIC 0x44534d52u /* "DSMR" */

/* Node 0 -> a joiner, first: a fresh nonce for the joiner to sign. */
struct rdv_challenge {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	uint64_t nonce;
} __attribute__((packed));

/* Joiner -> node 0: who it is, where its transport listens, its own nonce
 * for the table's tag, and tag = SipHash(key, challenge nonce, the rest). */
struct rdv_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t node;
	uint16_t nnodes;
	uint16_t reserved;
	struct xport_addr addr;
	uint64_t nonce;
	uint64_t tag;
} __attribute__((packed));

/* The tag of a hello answering challenge nonce c. */
static uint64_t hello_tag(const struct sip_key *key, uint64_t c,
			  const struct rdv_hello *h)
{
	unsigned char buf[sizeof(c) + offsetof(struct rdv_hello, tag)];

	memcpy(buf, &c, sizeof(c));
	memcpy(buf + sizeof(c), h, offsetof(struct rdv_hello, tag));
	return siphash24(key, buf, sizeof(buf));
}

/* The tag of the table node 0 sends a joiner whose hello had nonce n. */
static uint64_t table_tag(const struct sip_key *key, uint64_t n,
			  const struct xport_addr *all, int nnodes)
{
	unsigned char buf[sizeof(n) + sizeof(*all) * WIRE_MAX_NODES];
	size_t len = sizeof(*all) * (size_t)nnodes;

	memcpy(buf, &n, sizeof(n));
	memcpy(buf + sizeof(n), all, len);
	return siphash24(key, buf, sizeof(n) + len);
}

static uint64_t nonce(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)clock_mono_ms() ^ ((uint64_t)getpid() << 32);
	return v;
}

static int ms_left(long long deadline)
{
	long long left = deadline - (long long)clock_mono_ms();

	return left > 0 ? (int)left : 0;
}

int rdv_parse(const char *s, struct sockaddr_in *out)
{
	struct addrinfo hints = {.ai_family = AF_INET,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	char host[256];
	const char *colon;
	char *end;
	long port;

	if (!s || !(colon = strrchr(s, ':')) || colon == s ||
	    (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port <= 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if (getaddrinfo(host, NULL, &hints, &res))
		return -EINVAL;
	*out = *(struct sockaddr_in *)res->ai_addr;
	out->sin_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

/* Read or write exactly len bytes before the deadline. */
static int io_full(int fd, void *buf, size_t len, bool wr, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = wr ? POLLOUT : POLLIN};
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		int r = poll(&pfd, 1, ms_left(deadline));

		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r < 0)
			continue;
		n = wr ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
		       : recv(fd, (char *)buf + done, len - done, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n > 0)
			done += (size_t)n;
	}
	return 0;
}

static bool hello_ok(const struct rdv_hello *h, int nnodes)
{
	return h->magic == RDV_MAGIC && h->version == WIRE_VERSION &&
	       h->nnodes == nnodes && h->node > 0 && h->node < nnodes;
}

/* A listening socket handed to node 0 by its launcher: a TCP one on the
 * rendezvous address's port (the address itself may be a name, or any). */
static int inherited_ok(int fd, const struct sockaddr_in *want)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int listening = 0, type = 0;
	socklen_t ilen = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) ||
	    len != sizeof(sin) || sin.sin_family != AF_INET ||
	    type != SOCK_STREAM || !listening) {
		log_err("rendezvous: fd %d is not a listening TCP socket", fd);
		return -EBADF;
	}
	if (sin.sin_port != want->sin_port) {
		log_err("rendezvous: fd %d listens on port %u, not the "
			"rendezvous address's %u", fd, ntohs(sin.sin_port),
			ntohs(want->sin_port));
		return -EINVAL;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* lfd: an inherited listening socket (rdv_exchange closes it), or -1:
 * bind the address here. */
static int rdv_serve(const struct sockaddr_in *sin, int nnodes,
		     const struct sip_key *key, struct xport_addr *all,
		     long long deadline, int lfd)
{
	int fds[WIRE_MAX_NODES], have = 1, ret = 0, one = 1, i;
	bool own = lfd < 0;
	uint64_t theirs[WIRE_MAX_NODES];
	unsigned refused = 0;

	for (i = 0; i < nnodes; i++)
		fds[i] = -1;

	if (!own) {
		ret = inherited_ok(lfd, sin);
		if (ret)
			return ret;
	} else {
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0)
			return -errno;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (const struct sockaddr *)sin, sizeof(*sin)) ||
		    listen(lfd, nnodes)) {
			ret = -errno;
			log_err("rendezvous: cannot listen on %s:%u: %s",
				inet_ntoa(sin->sin_addr), ntohs(sin->sin_port),
				strerror(errno));
			close(lfd);
			return ret;
		}
	}
	while (have < nnodes) {
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		struct rdv_challenge c;
		struct rdv_hello h;
		long long stray;
		int fd, r = poll(&pfd, 1, ms_left(deadline));

		if (r == 0) {
			log_err("rendezvous: %d of %d nodes arrived before the "
				"timeout", have, nnodes);
			ret = -ETIMEDOUT;
			goto out;
		}
		if (r < 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* A stray client gets a short deadline of its own. */
		stray = (long long)clock_mono_ms() + 2000;
		if (stray > deadline)
			stray = deadline;
		c = (struct rdv_challenge){.magic = RDV_MAGIC,
					   .version = WIRE_VERSION,
					   .nonce = nonce()};
		r = io_full(fd, &c, sizeof(c), true, stray);
		if (!r)
			r = io_full(fd, &h, sizeof(h), false, stray);
		if (r || !hello_ok(&h, nnodes) || fds[h.node] >= 0 ||
		    h.tag != hello_tag(key, c.nonce, &h)) {
			if (refused++ < 16)
				log_warn("rendezvous: dropped a connection with "
					 "a bad, unsigned (cluster key) or "
					 "duplicate hello");
			close(fd);
			continue;
		}
		fds[h.node] = fd;
		all[h.node] = h.addr;
		theirs[h.node] = h.nonce;
		have++;
	}
	for (i = 1; i < nnodes; i++) {
		uint64_t tag = table_tag(key, theirs[i], all, nnodes);

		ret = io_full(fds[i], all, sizeof(*all) * (size_t)nnodes, true,
			      deadline);
		if (!ret)
			ret = io_full(fds[i], &tag, sizeof(tag), true, deadline);
		if (ret) {
			log_err("rendezvous: sending the table to node %d: %s",
				i, strerror(-ret));
			goto out;
		}
	}
out:
	for (i = 1; i < nnodes; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (own)
		close(lfd);
	return ret;
}

static int rdv_join(const struct sockaddr_in *sin, int self, int nnodes,
		    const struct sip_key *key, const struct xport_addr *mine,
		    struct xport_addr *all, long long deadline)
{
	struct rdv_hello h = {
		.magic = RDV_MAGIC, .version = WIRE_VERSION,
		.node = (uint16_t)self, .nnodes = (uint16_t)nnodes,
		.addr = *mine, .nonce = nonce(),
	};
	struct rdv_challenge c;
	uint64_t tag;
	int fd, ret;

	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == 0)
			break;
		ret = -errno;
		close(fd);
		if (ms_left(deadline) == 0) {
			log_err("rendezvous: cannot reach node 0 at %s:%u: %s",
				inet_ntoa(sin->sin_addr), ntohs(sin->sin_port),
				strerror(-ret));
			return -ETIMEDOUT;
		}
		/* Node 0 may not listen yet: back off briefly, blocking. */
		poll(NULL, 0, 50);
	}
	ret = io_full(fd, &c, sizeof(c), false, deadline);
	if (ret == 0 && (c.magic != RDV_MAGIC || c.version != WIRE_VERSION))
		ret = -EPROTO;
	if (ret == 0) {
		h.tag = hello_tag(key, c.nonce, &h);
		ret = io_full(fd, &h, sizeof(h), true, deadline);
	}
	if (ret == 0)
		ret = io_full(fd, all, sizeof(*all) * (size_t)nnodes, false,
			      deadline);
	if (ret == 0)
		ret = io_full(fd, &tag, sizeof(tag), false, deadline);
	close(fd);
	if (ret == 0 && tag != table_tag(key, h.nonce, all, nnodes)) {
		log_err("rendezvous: node 0's table is not signed with this "
			"cluster's key (DSM_CLUSTER_KEY): refused");
		return -EPERM;
	}
	if (ret)
		log_err("rendezvous: exchange with node 0 failed: %s%s",
			strerror(-ret), ret == -ECONNRESET ? " (a different "
			"cluster key, DSM_CLUSTER_KEY, or version?)" : "");
	return ret;
}

static int exchange(const char *rendezvous, int self, int nnodes,
		    const struct sip_key *key, const struct xport_addr *mine,
		    struct xport_addr *all, unsigned timeout_ms, int listen_fd)
{
	static const struct sip_key none;
	long long deadline = (long long)clock_mono_ms() + timeout_ms;
	struct sockaddr_in sin;

	if (nnodes < 1 || (unsigned)nnodes > WIRE_MAX_NODES || self < 0 ||
	    self >= nnodes)
		return -EINVAL;
	if (listen_fd >= 0 && self != 0) {
		log_err("rendezvous: only node 0 serves it, on an inherited "
			"socket or its own");
		return -EINVAL;
	}
	all[self] = *mine;
	if (nnodes == 1)
		return 0;
	if (rdv_parse(rendezvous, &sin)) {
		log_err("rendezvous: bad address '%s' (want host:port)",
			rendezvous ? rendezvous : "(none)");
		return -EINVAL;
	}
	if (!key)
		key = &none;
	if (self == 0)
		return rdv_serve(&sin, nnodes, key, all, deadline, listen_fd);
	return rdv_join(&sin, self, nnodes, key, mine, all, deadline);
}

int rdv_exchange(const char *rendezvous, int self, int nnodes,
		 const struct sip_key *key, const struct xport_addr *mine,
		 struct xport_addr *all, unsigned timeout_ms, int listen_fd)
{
	int ret = exchange(rendezvous, self, nnodes, key, mine, all,
			   timeout_ms, listen_fd);

	if (listen_fd >= 0)
		close(listen_fd);
	return ret;
}
