/* The rendezvous (transport/rendezvous.c) and its cluster key, on
 * 127.0.0.1: node 0 and the joiners are threads of this process; a rogue
 * speaks the protocol by hand.  Timeouts only bound a failure.
 *
 *   - SipHash-2-4 gives the paper's test vector;
 *   - a hello for node 1 without the key, arriving first, is dropped, and
 *     the real node 1 (with the key) gets its place: before the key the
 *     first hello for a node number won the rendezvous;
 *   - a joiner with another key is refused and fails;
 *   - without a key on either side it still works (with a warning);
 *   - node 0 serves a socket it inherited already listening (how dsmrun
 *     starts it: no window in which another socket takes the port), and
 *     refuses one on another port or one that does not listen.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "rendezvous.h"
#include "siphash.h"

struct party {
	int self, nnodes;
	char where[32];
	const struct sip_key *key;
	struct xport_addr mine, all[4];
	unsigned timeout_ms;
	int lfd; /* node 0: the listening socket it is given */
	int ret;
	pthread_t t;
};

static void *run_party(void *arg)
{
	struct party *p = arg;

	p->ret = rdv_exchange(p->where, p->self, p->nnodes, p->key, &p->mine,
			      p->all, p->timeout_ms, p->lfd);
	return NULL;
}

/* A socket listening on a free TCP port of 127.0.0.1, for node 0. */
static int listener(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Node 0 serves lfd; the others join port. */
static void party(struct party *p, int self, int nnodes, int port, int lfd,
		  const struct sip_key *key, uint16_t tport)
{
	*p = (struct party){.self = self, .nnodes = nnodes, .key = key,
			    .timeout_ms = 10000, .ret = 1,
			    .lfd = self == 0 ? lfd : -1};
	snprintf(p->where, sizeof(p->where), "127.0.0.1:%d", port);
	p->mine = (struct xport_addr){.ip = htonl(INADDR_LOOPBACK),
				      .port = htons(tport)};
	pthread_create(&p->t, NULL, run_party, p);
}

/* Connect to node 0 until it listens; -1 after 10 s. */
static int connect_to(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sin,
				       sizeof(sin)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		poll(NULL, 0, 10);
	}
	return -1;
}

static int test_siphash_vector(void)
{
	struct sip_key k = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
	unsigned char m[15];

	for (unsigned i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	CHECK(siphash24(&k, m, sizeof(m)) == 0xa129ca6149be45e5ull);
	CHECK(siphash24(&k, m, 0) == 0x726fdb47dd0e0e31ull);
	return 0;
}

/* The rogue: reads the challenge, sends a well-formed hello for node 1
 * with a tag it cannot know, and must be cut off. */
static int test_unsigned_hello_dropped(void)
{
	struct sip_key key = sip_key_from("the right one");
	struct party n0, n1;
	unsigned char challenge[16], hello[64] = {0};
	uint32_t magic = 0x44534d52u;
	uint16_t version = WIRE_VERSION, node = 1, nnodes = 2;
	int port, lfd = listener(&port), fd;
	char b;

	CHECK(lfd >= 0);
	party(&n0, 0, 2, port, lfd, &key, 5000);
	fd = connect_to(port);
	CHECK(fd >= 0);
	CHECK(recv(fd, challenge, sizeof(challenge), MSG_WAITALL) ==
	      (ssize_t)sizeof(challenge));
	memcpy(hello, &magic, 4);
	memcpy(hello + 4, &version, 2);
	memcpy(hello + 6, &node, 2);
	memcpy(hello + 8, &nnodes, 2);
	/* addr (8 bytes at 12) left 0, nonce and tag made up */
	memset(hello + 20, 0x5a, 16);
	CHECK(send(fd, hello, 36, 0) == 36);
	CHECK(recv(fd, &b, 1, 0) == 0); /* cut off, no table */
	close(fd);
	party(&n1, 1, 2, port, -1, &key, 5001);
	pthread_join(n1.t, NULL);
	pthread_join(n0.t, NULL);
	CHECK(n0.ret == 0 && n1.ret == 0);
	CHECK(n0.all[1].port == htons(5001) && n1.all[0].port == htons(5000));
	CHECK(n1.all[1].port == htons(5001));
	return 0;
}

static int test_wrong_key_refused(void)
{
	struct sip_key key = sip_key_from("one"), other = sip_key_from("two");
	struct party n0, n1;
	int port, lfd = listener(&port);

	CHECK(lfd >= 0);
	party(&n0, 0, 2, port, lfd, &key, 5000);
	n0.timeout_ms = 3000;
	party(&n1, 1, 2, port, -1, &other, 5001);
	pthread_join(n1.t, NULL);
	pthread_join(n0.t, NULL);
	CHECK(n1.ret != 0);
	CHECK(n0.ret == -ETIMEDOUT);
	return 0;
}

static int test_no_key(void)
{
	struct party n[3];
	int port, lfd = listener(&port);

	CHECK(lfd >= 0);
	for (int i = 0; i < 3; i++)
		party(&n[i], i, 3, port, lfd, NULL, (uint16_t)(6000 + i));
	for (int i = 0; i < 3; i++)
		pthread_join(n[i].t, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(n[i].ret == 0);
		for (int j = 0; j < 3; j++)
			CHECK(n[i].all[j].port == htons((uint16_t)(6000 + j)));
	}
	return 0;
}

/* The joiners connect before node 0 runs: the inherited socket queues
 * them.  Without one, node 0 binds the address itself. */
static int test_inherited_socket(void)
{
	struct sip_key key = sip_key_from("inherited");
	struct party n[3];
	int port, lfd = listener(&port);

	CHECK(lfd >= 0);
	party(&n[1], 1, 3, port, -1, &key, 7001);
	party(&n[2], 2, 3, port, -1, &key, 7002);
	poll(NULL, 0, 50); /* not needed for the outcome: only makes the
			      joiners likely to be waiting in the backlog */
	party(&n[0], 0, 3, port, lfd, &key, 7000);
	for (int i = 0; i < 3; i++)
		pthread_join(n[i].t, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(n[i].ret == 0);
		for (int j = 0; j < 3; j++)
			CHECK(n[i].all[j].port == htons((uint16_t)(7000 + j)));
	}
	CHECK(fcntl(lfd, F_GETFD) < 0 && errno == EBADF); /* closed */
	return 0;
}

static int test_inherited_socket_checked(void)
{
	struct xport_addr mine = {.ip = htonl(INADDR_LOOPBACK), .port = 1};
	struct xport_addr all[2];
	char where[32];
	int port, other, lfd = listener(&port), wrong = listener(&other), fd;

	CHECK(lfd >= 0 && wrong >= 0);
	snprintf(where, sizeof(where), "127.0.0.1:%d", port);
	/* listening, but on another port than the address names */
	CHECK(rdv_exchange(where, 0, 2, NULL, &mine, all, 1000, wrong) ==
	      -EINVAL);
	CHECK(fcntl(wrong, F_GETFD) < 0 && errno == EBADF);
	/* a socket that does not listen */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK(rdv_exchange(where, 0, 2, NULL, &mine, all, 1000, fd) == -EBADF);
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	/* only node 0 may be given one */
	CHECK(rdv_exchange(where, 1, 2, NULL, &mine, all, 1000, lfd) ==
	      -EINVAL);
	CHECK(fcntl(lfd, F_GETFD) < 0 && errno == EBADF);
	return 0;
}

static const struct test_case tests[] = {
	{"siphash_vector", test_siphash_vector},
	{"unsigned_hello_dropped", test_unsigned_hello_dropped},
	{"wrong_key_refused", test_wrong_key_refused},
	{"no_key", test_no_key},
	{"inherited_socket", test_inherited_socket},
	{"inherited_socket_checked", test_inherited_socket_checked},
};

TEST_MAIN(tests, NULL)
