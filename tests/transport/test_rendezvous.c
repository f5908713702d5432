/* The rendezvous (transport/rendezvous.c) and its cluster key, on
 * 127.0.0.1: node 0 and the joiners are threads of this process; a rogue
 * speaks the protocol by hand.  Timeouts only bound a failure.
 *
 *   - SipHash-2-4 gives the paper's test vector;
 *   - a hello for node 1 without the key, arriving first, is dropped, and
 *     the real node 1 (with the key) gets its place: before the key the
 *     first hello for a node number won the rendezvous;
 *   - a joiner with another key is refused and fails;
 *   - without a key on either side it still works (with a warning).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
	int ret;
	pthread_t t;
};

static void *run_party(void *arg)
{
	struct party *p = arg;

	p->ret = rdv_exchange(p->where, p->self, p->nnodes, p->key, &p->mine,
			      p->all, p->timeout_ms);
	return NULL;
}

/* A free TCP port on 127.0.0.1 (bound and let go). */
static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void party(struct party *p, int self, int nnodes, int port,
		  const struct sip_key *key, uint16_t tport)
{
	*p = (struct party){.self = self, .nnodes = nnodes, .key = key,
			    .timeout_ms = 10000, .ret = 1};
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
	int port = free_port(), fd;
	char b;

	CHECK(port > 0);
	party(&n0, 0, 2, port, &key, 5000);
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
	party(&n1, 1, 2, port, &key, 5001);
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
	int port = free_port();

	CHECK(port > 0);
	party(&n0, 0, 2, port, &key, 5000);
	n0.timeout_ms = 3000;
	party(&n1, 1, 2, port, &other, 5001);
	pthread_join(n1.t, NULL);
	pthread_join(n0.t, NULL);
	CHECK(n1.ret != 0);
	CHECK(n0.ret == -ETIMEDOUT);
	return 0;
}

static int test_no_key(void)
{
	struct party n[3];
	int port = free_port();

	CHECK(port > 0);
	for (int i = 0; i < 3; i++)
		party(&n[i], i, 3, port, NULL, (uint16_t)(6000 + i));
	for (int i = 0; i < 3; i++)
		pthread_join(n[i].t, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(n[i].ret == 0);
		for (int j = 0; j < 3; j++)
			CHECK(n[i].all[j].port == htons((uint16_t)(6000 + j)));
	}
	return 0;
}

static const struct test_case tests[] = {
	{"siphash_vector", test_siphash_vector},
	{"unsigned_hello_dropped", test_unsigned_hello_dropped},
	{"wrong_key_refused", test_wrong_key_refused},
	{"no_key", test_no_key},
};

TEST_MAIN(tests, NULL)
