/* The IPC receiver on a real SOCK_SEQPACKET pair: each input is one
 * message (its first byte says whether a descriptor goes with it), sent
 * as a client would and taken by ipc_recv_fd() as dsmd does.  It must
 * agree with wire_decode() on the same bytes, hand over a passed
 * descriptor only with a good message, and leak none. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "fuzz.h"
#include "wire.h"

static int sv[2] = {-1, -1};
static unsigned char *buf;

/* The lowest free descriptor: a leak shows as a higher one. */
static int lowest_free(void)
{
	int fd = dup(0);

	REQUIRE(fd >= 0);
	close(fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_msg m, want;
	enum wire_error bad = WIRE_OK, e;
	int passed = -1, ret, before, extra = -1;
	bool with_fd;

	if (size == 0 || size - 1 > WIRE_IPC_MAX + 64)
		return 0;
	if (sv[0] < 0) {
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				   sv) == 0);
		buf = malloc(WIRE_IPC_MAX);
		REQUIRE(buf != NULL);
	}
	with_fd = data[0] & 1;
	data++;
	size--;
	before = lowest_free();
	if (with_fd) {
		extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
		REQUIRE(extra >= 0);
	}
	if (size == 0) {
		/* A zero-length message reads as the peer gone. */
		REQUIRE(send(sv[1], "", 0, 0) == 0);
	} else {
		REQUIRE(ipc_send_raw(sv[1], data, size, extra) == 0);
	}
	if (extra >= 0)
		close(extra);
	ret = ipc_recv_fd(sv[0], buf, WIRE_IPC_MAX, 1000, &m, &bad, &passed);
	e = size <= WIRE_IPC_MAX ? wire_decode(data, size, WIRE_CH_IPC, &want)
				 : WIRE_ELONG;
	if (size == 0) {
		REQUIRE(ret == -ECONNRESET && passed == -1);
	} else if (e == WIRE_OK) {
		REQUIRE(ret == 0);
		REQUIRE(m.body_len == want.body_len);
		REQUIRE(memcmp(m.hdr, data, size) == 0);
		REQUIRE(with_fd ? passed >= 0 : passed == -1);
	} else {
		REQUIRE(ret == -EPROTO && bad == e && passed == -1);
	}
	if (passed >= 0)
		close(passed);
	REQUIRE(lowest_free() == before);
	return 0;
}
