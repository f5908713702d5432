/* Abuse dsmd's Unix socket (DSM_SOCKET): garbage, bad handshakes, truncated,
 * oversized and out-of-place messages.  Each bad client must be cut off,
 * each well-behaved one served, and the daemon must answer a correct client
 * after all of it, having counted every refusal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Through the emulated guest, slower than the host. */
#define TEST_TIMEOUT_S 120
#include "harness.h"
#include "ipc.h"

static const char *path;
static unsigned expect_refused;
static char rbuf[WIRE_IPC_MAX];

/* True if the daemon closed the connection instead of answering. */
static int cut_off(int fd)
{
	struct wire_msg m;
	int ret = ipc_recv(fd, rbuf, sizeof(rbuf), 20000, &m, NULL);

	close(fd);
	return ret == -ECONNRESET;
}

static int send_raw(const void *p, size_t len)
{
	int fd = ipc_connect(path);

	if (fd < 0)
		return fd;
	if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int refused_raw(const void *p, size_t len)
{
	int fd = send_raw(p, len);

	expect_refused++;
	return fd >= 0 && cut_off(fd);
}

static size_t hello(void *buf, const char *magic, uint32_t kind)
{
	struct wire_ipc_hello h = {.kind = kind};

	memcpy(h.magic, magic, sizeof(h.magic));
	return wire_build(buf, 256, WIRE_IPC_HELLO, 1, &h, sizeof(h));
}

static int test_garbage(void)
{
	unsigned char g[100];

	for (size_t i = 0; i < sizeof(g); i++)
		g[i] = (unsigned char)(i * 37 + 11);
	CHECK(refused_raw(g, sizeof(g)));
	return 0;
}

static int test_bad_magic(void)
{
	unsigned char b[256];

	CHECK(refused_raw(b, hello(b, "NOTDSM!!", WIRE_IPC_KIND_CTL)));
	return 0;
}

static int test_bad_kind(void)
{
	unsigned char b[256];

	CHECK(refused_raw(b, hello(b, WIRE_IPC_MAGIC, 99)));
	return 0;
}

static int test_bad_version(void)
{
	unsigned char b[256];
	size_t len = hello(b, WIRE_IPC_MAGIC, WIRE_IPC_KIND_CTL);

	b[offsetof(struct wire_hdr, version)] = WIRE_VERSION + 1;
	CHECK(refused_raw(b, len));
	return 0;
}

/* The hello of IPC version 01 carried the client's pid, which dsmd once
 * signalled (a pid of 0xffffffff became kill(-1, SIGBUS)): it is refused
 * now, old magic or new, and the pid is the kernel's. */
static int test_hello_with_pid(void)
{
	struct {
		struct wire_ipc_hello h;
		uint32_t pid;
	} __attribute__((packed)) old = {.h.kind = WIRE_IPC_KIND_APP,
					 .pid = 0xffffffffu};
	unsigned char b[256];

	memcpy(old.h.magic, "DSMIPC01", sizeof(old.h.magic));
	CHECK(refused_raw(b, wire_build(b, sizeof(b), WIRE_IPC_HELLO, 1, &old,
					sizeof(old))));
	memcpy(old.h.magic, WIRE_IPC_MAGIC, sizeof(old.h.magic));
	CHECK(refused_raw(b, wire_build(b, sizeof(b), WIRE_IPC_HELLO, 1, &old,
					sizeof(old))));
	return 0;
}

static int test_truncated(void)
{
	unsigned char b[256];
	size_t len = hello(b, WIRE_IPC_MAGIC, WIRE_IPC_KIND_CTL);

	CHECK(refused_raw(b, 10));       /* less than a header */
	CHECK(refused_raw(b, len - 1));  /* header says one byte more */
	return 0;
}

static int test_oversized(void)
{
	size_t len = WIRE_IPC_MAX + 100;
	unsigned char *b = calloc(1, len);
	int ok;

	if (!b)
		return 1;
	wire_hdr_init(b, WIRE_IPC_STATUS, len - sizeof(struct wire_hdr), 1);
	ok = refused_raw(b, len);
	free(b);
	CHECK(ok);
	return 0;
}

static int test_request_before_hello(void)
{
	unsigned char b[64];
	size_t len = wire_build(b, sizeof(b), WIRE_IPC_STATUS, 1, NULL, 0);

	CHECK(refused_raw(b, len));
	return 0;
}

/* A good client that then sends a node-to-node message type. */
static int test_foreign_type(void)
{
	struct wire_ipc_hello_ok ok;
	unsigned char b[64];
	size_t len = wire_build(b, sizeof(b), WIRE_HEARTBEAT, 1, NULL, 0);
	int fd = ipc_client_open(path, WIRE_IPC_KIND_CTL, 0, NULL, 20000, &ok);

	CHECK(fd >= 0);
	expect_refused++;
	CHECK(send(fd, b, len, MSG_NOSIGNAL) == (ssize_t)len);
	CHECK(cut_off(fd));
	return 0;
}

/* A bad argument is an error reply, not a reason to hang up. */
static int test_bad_check_args(void)
{
	struct wire_ipc_check req = {.count = 1, .nsizes = 0};
	struct wire_ipc_hello_ok ok;
	struct wire_ipc_result e;
	struct wire_msg m;
	int fd = ipc_client_open(path, WIRE_IPC_KIND_CTL, 0, NULL, 20000, &ok);

	CHECK(fd >= 0);
	CHECK(ipc_send(fd, WIRE_IPC_CHECK, 5, &req, sizeof(req)) == 0);
	CHECK(ipc_recv(fd, rbuf, sizeof(rbuf), 20000, &m, NULL) == 0);
	CHECK(m.hdr->type == WIRE_IPC_RESULT && m.hdr->req_id == 5);
	memcpy(&e, m.body, sizeof(e));
	CHECK(e.status == -EINVAL);
	/* Still served on the same connection. */
	CHECK(ipc_send(fd, WIRE_IPC_STATUS, 6, NULL, 0) == 0);
	CHECK(ipc_recv(fd, rbuf, sizeof(rbuf), 20000, &m, NULL) == 0);
	CHECK(m.hdr->type == WIRE_IPC_STATUS_REPLY);
	close(fd);
	return 0;
}

static int test_silent_client(void)
{
	int fd = ipc_connect(path);

	CHECK(fd >= 0);
	close(fd);
	return 0;
}

/* Last: the daemon still answers and counted every refusal. */
static int test_still_serving(void)
{
	struct wire_ipc_hello_ok ok;
	struct wire_status_reply r;
	struct wire_msg m;
	int fd = ipc_client_open(path, WIRE_IPC_KIND_CTL, 0, NULL, 20000, &ok);

	CHECK(fd >= 0);
	CHECK(ipc_send(fd, WIRE_IPC_STATUS, 7, NULL, 0) == 0);
	CHECK(ipc_recv(fd, rbuf, sizeof(rbuf), 20000, &m, NULL) == 0);
	CHECK(m.hdr->type == WIRE_IPC_STATUS_REPLY);
	memcpy(&r, m.body, sizeof(r));
	CHECKF(r.ipc_refused == expect_refused, "refused %llu, expected %u",
	       (unsigned long long)r.ipc_refused, expect_refused);
	close(fd);
	return 0;
}

static const struct test_case tests[] = {
	{"garbage", test_garbage},
	{"bad_magic", test_bad_magic},
	{"bad_kind", test_bad_kind},
	{"bad_version", test_bad_version},
	{"hello_with_pid", test_hello_with_pid},
	{"truncated", test_truncated},
	{"oversized", test_oversized},
	{"request_before_hello", test_request_before_hello},
	{"foreign_type", test_foreign_type},
	{"bad_check_args", test_bad_check_args},
	{"silent_client", test_silent_client},
	{"still_serving", test_still_serving},
};

int main(int argc, char **argv)
{
	path = ipc_socket_path();
	if (argc > 1) {
		fprintf(stderr, "ctl_abuse runs every case, in order\n");
		return 2;
	}
	(void)argv;
	return test_run(tests, sizeof(tests) / sizeof(tests[0]), NULL, 1, argv);
}
