/* The transport contract, on two or three transports in this one process,
 * their addresses exchanged directly, driven by xport_progress() and
 * blocking in poll() on their fds as dsmd's loop does (xport_arm() first).
 * Every wait has a deadline generous enough for a loaded machine.
 *
 * By default the libfabric transport (transport/xport_ofi.c) over
 * tcp;ofi_rxm on 127.0.0.1 (unit.xport_ofi; skips only where libfabric
 * offers no tcp provider).  With DSM_TRANSPORT=verbs the verbs transport
 * (xport_rdma.c) on DSM_RDMA_ADDR (rxe.xport_verbs, in the soft-RoCE
 * guest); the few cases about libfabric's own behaviour skip there.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_TIMEOUT_S 120 /* several waits of DEADLINE_MS each */
#include "clock.h"
#include "harness.h"
#include "wire.h"
#include "xport.h"

#define NMAX        3

/* The transport under test (see the top). */
static const struct xport_ops *xops = &xport_ofi_ops;
static const char *xaddr = "127.0.0.1";
static bool on_verbs;

__attribute__((constructor)) static void pick_transport(void)
{
	const char *t = getenv("DSM_TRANSPORT");

	if (t && !strcmp(t, "verbs")) {
		on_verbs = true;
		xops = &xport_rdma_ops;
		xaddr = getenv("DSM_RDMA_ADDR");
	}
}

/* A case about libfabric's own behaviour. */
#define OFI_ONLY()                                                     \
	do {                                                           \
		if (on_verbs)                                          \
			SKIP("about libfabric's own behaviour; this run " \
			     "tests verbs");                           \
	} while (0)
#define DEADLINE_MS 15000
#define BURST       4000u
/* Body of a numbered test message: struct wire_check_data and a payload. */
#define PAYLOAD_MAX (WIRE_MSG_MAX - sizeof(struct wire_hdr) - \
		     sizeof(struct wire_check_data))

struct node {
	struct xport *x;
	int connected[NMAX];  /* CONNECTED events per peer */
	int down[NMAX];       /* PEER_DOWN events per peer */
	char reason[NMAX][96];
	unsigned msgs[NMAX];  /* numbered messages received in order */
	unsigned disorder;    /* numbered messages out of order or corrupt */
	unsigned other_msgs;  /* messages of any other kind */
	unsigned bad_peer;    /* events naming no valid peer */
	unsigned nimm, ndone;
	struct xport_event imm, done;
	uint32_t imm_log[64];  /* the first imms, in arrival order */
	unsigned nimm_at_msg;  /* WRITE_IMMs seen when the last numbered
				  message arrived */
};

static struct node nodes[NMAX];
static int nnodes;
static unsigned connect_timeout_ms; /* 0: the transport's default */

/* Registered buffers, released by the teardown. */
struct buf {
	int node;
	void *p;
	struct xport_mr mr;
};
static struct buf bufs[8];
static int nbufs;

static void on_msg(struct node *n, const struct xport_event *ev)
{
	struct wire_check_data d;
	const unsigned char *payload;

	if (ev->msg.hdr->type != WIRE_CHECK_DATA) {
		n->other_msgs++;
		return;
	}
	memcpy(&d, ev->msg.body, sizeof(d));
	payload = (const unsigned char *)ev->msg.body + sizeof(d);
	if (d.index != n->msgs[ev->peer] || ev->msg.hdr->req_id != d.index ||
	    d.session != (uint32_t)ev->peer ||
	    wire_pattern_check(payload, d.payload_len, d.index) != -1)
		n->disorder++;
	else
		n->msgs[ev->peer]++;
	n->nimm_at_msg = n->nimm;
}

static void on_event(void *arg, const struct xport_event *ev)
{
	struct node *n = arg;

	if (ev->peer < 0 || ev->peer >= nnodes || &nodes[ev->peer] == n) {
		n->bad_peer++;
		return;
	}
	switch (ev->type) {
	case XPORT_EV_CONNECTED:
		n->connected[ev->peer]++;
		break;
	case XPORT_EV_PEER_DOWN:
		n->down[ev->peer]++;
		snprintf(n->reason[ev->peer], sizeof(n->reason[0]), "%s",
			 ev->reason ? ev->reason : "");
		break;
	case XPORT_EV_MSG:
		on_msg(n, ev);
		break;
	case XPORT_EV_WRITE_IMM:
		if (n->nimm < 64)
			n->imm_log[n->nimm] = ev->imm;
		n->nimm++;
		n->imm = *ev;
		break;
	case XPORT_EV_READ_DONE:
	case XPORT_EV_WRITE_DONE:
		n->ndone++;
		n->done = *ev;
		break;
	}
}

static struct xport_config config(int self, int count, unsigned depth)
{
	return (struct xport_config){
		.self = self, .nnodes = count, .addr = xaddr,
		.recv_depth = depth, .connect_timeout_ms = connect_timeout_ms,
		.cb = on_event, .cb_arg = &nodes[self],
	};
}

/* ---------------------------------------------------------------------- */
/* Driving                                                                */

/* Progress every transport until cond() holds or the deadline passes;
 * between rounds, arm all and sleep in poll() on their fds. */
static bool drive(bool (*cond)(void *), void *arg, int ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ms;
	struct pollfd pfd[NMAX];
	int i, n, busy;

	for (;;) {
		for (i = 0; i < nnodes; i++)
			if (nodes[i].x && xport_progress(nodes[i].x) < 0)
				return false;
		if (cond(arg))
			return true;
		if (clock_mono_ms() >= end)
			return false;
		busy = 0;
		for (i = 0, n = 0; i < nnodes; i++) {
			if (!nodes[i].x)
				continue;
			int r = xport_arm(nodes[i].x);

			if (r < 0)
				return false;
			busy |= r > 0;
			pfd[n++] = (struct pollfd){.fd = xport_fd(nodes[i].x),
						   .events = POLLIN};
		}
		if (!busy)
			poll(pfd, (nfds_t)n, 100);
	}
}

static bool all_connected(void *arg)
{
	int i, j;

	(void)arg;
	for (i = 0; i < nnodes; i++)
		for (j = 0; j < nnodes; j++)
			if (i != j && nodes[i].x && nodes[j].x &&
			    nodes[i].connected[j] < 1)
				return false;
	return true;
}

/* Create `count` transports, exchange their addresses, connect them. */
static int start(int count, unsigned depth)
{
	struct xport_addr addrs[NMAX];
	int i, ret;

	nnodes = count;
	for (i = 0; i < count; i++) {
		struct xport_config cfg = config(i, count, depth);

		ret = xport_create(xops, &cfg, &nodes[i].x);
		if (ret)
			return ret;
		xport_local_addr(nodes[i].x, &addrs[i]);
	}
	for (i = 0; i < count; i++) {
		ret = xport_connect_all(nodes[i].x, addrs);
		if (ret)
			return ret;
	}
	return drive(all_connected, NULL, DEADLINE_MS) ? 0 : -ETIMEDOUT;
}

#define START(count, depth)                                                  \
	do {                                                                 \
		int ret_ = start(count, depth);                              \
		if (ret_ == -ENOENT)                                         \
			SKIP("libfabric offers no tcp;ofi_rxm provider");    \
		CHECKF(ret_ == 0, "start: %s", strerror(-ret_));             \
	} while (0)

static void teardown(void)
{
	int i;

	for (i = 0; i < nbufs; i++) {
		if (bufs[i].mr.priv)
			xport_dereg_mr(nodes[bufs[i].node].x, &bufs[i].mr);
		free(bufs[i].p);
	}
	nbufs = 0;
	for (i = 0; i < NMAX; i++)
		if (nodes[i].x)
			xport_destroy(nodes[i].x);
	memset(nodes, 0, sizeof(nodes));
	nnodes = 0;
	connect_timeout_ms = 0;
}

/* A zeroed buffer of node's, registered with access. */
static struct buf *buf_new_access(int node, size_t len, unsigned access)
{
	struct buf *b = &bufs[nbufs];

	b->node = node;
	b->p = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!b->p)
		return NULL;
	memset(b->p, 0, len);
	nbufs++;
	if (xport_reg_mr(nodes[node].x, b->p, len, access, &b->mr))
		return NULL;
	return b;
}

/* The same, open to peers' READs and WRITEs. */
static struct buf *buf_new(int node, size_t len)
{
	return buf_new_access(node, len,
			      XPORT_MR_REMOTE_READ | XPORT_MR_REMOTE_WRITE);
}

/* Message `index` from `from`, with a payload of len bytes (up to a header
 * more than fits, to be refused). */
static int send_numbered(int from, int to, uint32_t index, size_t len)
{
	unsigned char body[WIRE_MSG_MAX];
	struct wire_check_data d = {
		.session = (uint32_t)from, .index = index,
		.payload_len = (uint32_t)len,
	};

	memcpy(body, &d, sizeof(d));
	wire_pattern_fill(body + sizeof(d), len, index);
	return xport_send(nodes[from].x, to, WIRE_CHECK_DATA, index, body,
			  sizeof(d) + len);
}

struct want_msgs {
	int node, from;
	unsigned count;
};

static bool got_msgs(void *arg)
{
	struct want_msgs *w = arg;

	return nodes[w->node].msgs[w->from] >= w->count ||
	       nodes[w->node].disorder;
}

static bool got_done(void *arg)
{
	return nodes[*(int *)arg].ndone > 0;
}

static bool got_imm(void *arg)
{
	(void)arg;
	return nodes[1].nimm > 0;
}

static bool got_imm_and_done(void *arg)
{
	int writer = *(int *)arg;

	return nodes[1].nimm > 0 && nodes[writer].ndone > 0;
}

static bool both_down(void *arg)
{
	(void)arg;
	return nodes[0].down[1] > 0 && nodes[1].down[0] > 0;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* What the transport logs meanwhile goes to a file (and is echoed). */
struct capture {
	FILE *tmp;
	int saved;
};

static bool capture_start(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	c->saved = dup(STDERR_FILENO);
	if (!c->tmp || c->saved < 0)
		return false;
	return dup2(fileno(c->tmp), STDERR_FILENO) >= 0;
}

static void capture_end(struct capture *c, char *log, size_t len)
{
	size_t n;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->tmp);
	n = fread(log, 1, len - 1, c->tmp);
	fclose(c->tmp);
	log[n] = 0;
	fprintf(stderr, "%s", log);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

static int test_connect_three(void)
{
	struct xport_addr a[NMAX];
	int i, j;

	START(3, 16);
	for (i = 0; i < 3; i++) {
		CHECK(xport_local_addr(nodes[i].x, &a[i]) == 0);
		CHECK(a[i].ip == inet_addr(xaddr));
		CHECK(a[i].port != 0);
		if (!on_verbs) {
			CHECK(!strcmp(xport_device(nodes[i].x),
				      "ofi:tcp;ofi_rxm"));
			CHECK(xport_numa_node(nodes[i].x) == -1);
		}
		for (j = 0; j < 3; j++)
			CHECKF(nodes[i].connected[j] == (i != j),
			       "node %d saw %d CONNECTED for %d", i,
			       nodes[i].connected[j], j);
		CHECK(nodes[i].bad_peer == 0);
	}
	CHECK(a[0].port != a[1].port && a[1].port != a[2].port &&
	      a[0].port != a[2].port);
	/* Every node can talk to every other. */
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			if (i != j)
				CHECK(send_numbered(i, j, 0, 10) == 0);
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++) {
			struct want_msgs w = {i, j, 1};

			if (i != j)
				CHECK(drive(got_msgs, &w, DEADLINE_MS));
		}
	for (i = 0; i < 3; i++)
		CHECK(nodes[i].disorder == 0);
	return TEST_PASS;
}

static int test_not_connected_yet(void)
{
	struct xport_config cfg = config(0, 2, 8);
	struct xport_addr a;
	int ret;

	nnodes = 2;
	ret = xport_create(xops, &cfg, &nodes[0].x);
	if (ret == -ENOENT)
		SKIP("libfabric offers no tcp;ofi_rxm provider");
	CHECK(ret == 0);
	CHECK(xport_local_addr(nodes[0].x, &a) == 0 && a.port != 0);
	CHECK(xport_send(nodes[0].x, 1, WIRE_HEARTBEAT, 0, NULL, 0) ==
	      -ENOTCONN);
	CHECK(xport_send(nodes[0].x, 0, WIRE_HEARTBEAT, 0, NULL, 0) ==
	      -EINVAL);
	CHECK(xport_send(nodes[0].x, 2, WIRE_HEARTBEAT, 0, NULL, 0) ==
	      -EINVAL);
	return TEST_PASS;
}

/* Arm every transport; true if none had work and they may all sleep. */
static bool arm_all(struct pollfd *pfd)
{
	bool quiet = true;
	int i;

	for (i = 0; i < nnodes; i++) {
		if (xport_arm(nodes[i].x) != 0)
			quiet = false;
		pfd[i] = (struct pollfd){.fd = xport_fd(nodes[i].x),
					 .events = POLLIN};
	}
	return quiet;
}

/* Once everything is said, the fds stay quiet: no busy polling. */
static int test_idle_fd_quiet(void)
{
	struct pollfd pfd[2];
	struct xport_stats st;
	int i, round, woke = -1;

	START(2, 16);
	/* The last hello acks may be on their way: a few rounds until one in
	 * which everybody armed and nothing woke for half a second. */
	for (round = 0; round < 20 && woke != 0; round++) {
		for (i = 0; i < 2; i++)
			CHECK(xport_progress(nodes[i].x) >= 0);
		woke = arm_all(pfd) ? poll(pfd, 2, 500) : -1;
	}
	CHECKF(woke == 0, "still busy after %d rounds", round);
	for (i = 0; i < 2; i++) {
		CHECK(xport_stats(nodes[i].x, &st) == 0);
		CHECK(st.cq_arms > 0 && st.progress_calls > 0);
	}
	/* A message wakes the armed receiver; the sender arms first, as its
	 * loop would before it sleeps. */
	CHECK(send_numbered(0, 1, 0, 100) == 0);
	CHECK(xport_arm(nodes[0].x) >= 0);
	CHECK(poll(&pfd[1], 1, DEADLINE_MS) == 1);
	return TEST_PASS;
}

static int test_messages_in_order(void)
{
	struct wire_counters c;
	uint32_t i;
	size_t len;

	START(2, 16);
	/* Both ways at once, every payload length up to the largest. */
	for (i = 0; i < 300; i++) {
		len = i == 299 ? PAYLOAD_MAX : (i * 37u) % PAYLOAD_MAX;
		CHECK(send_numbered(0, 1, i, len) == 0);
		CHECK(send_numbered(1, 0, i, PAYLOAD_MAX - len) == 0);
	}
	CHECK(send_numbered(0, 1, 300, PAYLOAD_MAX + 1) == -EMSGSIZE);
	{
		struct want_msgs w1 = {1, 0, 300}, w0 = {0, 1, 300};

		CHECK(drive(got_msgs, &w1, DEADLINE_MS));
		CHECK(drive(got_msgs, &w0, DEADLINE_MS));
	}
	CHECK(nodes[0].disorder == 0 && nodes[1].disorder == 0);
	CHECK(nodes[1].msgs[0] == 300 && nodes[0].msgs[1] == 300);
	CHECK(nodes[0].other_msgs == 0 && nodes[1].other_msgs == 0);
	CHECK(xport_counters(nodes[1].x, 0, &c) == 0);
	CHECK(c.msgs_received >= 300 && c.bad_msgs == 0);
	CHECK(xport_counters(nodes[0].x, 1, &c) == 0);
	CHECK(c.msgs_sent >= 300);
	return TEST_PASS;
}

/* Far more messages than receive credits, sent before anything moves:
 * the credits hold them back and none is lost or reordered. */
static int test_burst_beyond_depth(void)
{
	struct want_msgs w = {1, 0, BURST};
	struct wire_counters tx, rx;
	uint32_t i;

	START(2, 8);
	for (i = 0; i < BURST; i++)
		CHECKF(send_numbered(0, 1, i, 64 + i % 512) == 0,
		       "message %u refused", i);
	CHECK(drive(got_msgs, &w, DEADLINE_MS));
	CHECK(nodes[1].disorder == 0);
	CHECK(nodes[1].msgs[0] == BURST);
	CHECK(xport_counters(nodes[0].x, 1, &tx) == 0);
	CHECK(xport_counters(nodes[1].x, 0, &rx) == 0);
	CHECK(tx.credit_stalls > 0);  /* the sender did wait for credits */
	CHECK(rx.credit_msgs > 0);    /* returned with nothing to carry them */
	CHECK(rx.bad_msgs == 0 && tx.bad_msgs == 0);
	return TEST_PASS;
}

/* The per-peer queue has a bound: beyond it, -ENOBUFS; what it took
 * still arrives, in order. */
static int test_queue_bound(void)
{
	struct want_msgs w = {1, 0, 0};
	uint32_t i;
	int ret = 0;

	START(2, 4);
	for (i = 0; i < 100000 && ret == 0; i++)
		ret = send_numbered(0, 1, i, 8);
	CHECKF(ret == -ENOBUFS, "send %u: %s", i, strerror(-ret));
	w.count = i - 1;
	CHECK(w.count > 4);
	CHECK(drive(got_msgs, &w, DEADLINE_MS));
	CHECK(nodes[1].disorder == 0 && nodes[1].msgs[0] == w.count);
	CHECK(send_numbered(0, 1, w.count, 8) == 0);
	return TEST_PASS;
}

/* READ of `len` bytes at `roff` into the reader's buffer at `loff`. */
static int read_case(size_t region, size_t roff, size_t loff, size_t len)
{
	struct buf *src, *dst;
	unsigned char *d;
	int reader = 0;
	size_t i;

	START(2, 16);
	src = buf_new(1, region);
	dst = buf_new(0, region);
	CHECK(src && dst);
	wire_pattern_fill(src->p, region, 42);
	CHECK(xport_read(nodes[0].x, 1, &dst->mr, loff,
			 (uint64_t)(uintptr_t)src->p + roff, src->mr.rkey,
			 (uint32_t)len, 0xc0ffee) == 0);
	CHECK(drive(got_done, &reader, DEADLINE_MS));
	CHECK(nodes[0].ndone == 1);
	CHECK(nodes[0].done.type == XPORT_EV_READ_DONE);
	CHECKF(nodes[0].done.status == 0, "status %d",
	       nodes[0].done.status);
	CHECK(nodes[0].done.cookie == 0xc0ffee && nodes[0].done.peer == 1);
	d = dst->p;
	CHECK(memcmp(d + loff, (unsigned char *)src->p + roff, len) == 0);
	for (i = 0; i < region; i++)
		if (i < loff || i >= loff + len)
			CHECKF(d[i] == 0, "byte %zu written", i);
	if (roff == 0 && loff == 0 && len == region)
		CHECK(wire_pattern_check(d, len, 42) == -1);
	return TEST_PASS;
}

/* A buffer registered for no remote access cannot be READ by a peer: the
 * READ completes with an error and brings nothing (least privilege is
 * the provider's to enforce, as the NIC's on verbs). */
static int test_read_needs_access(void)
{
	struct buf *src, *dst;
	int reader = 0;

	START(2, 16);
	src = buf_new_access(1, 4096, XPORT_MR_REMOTE_WRITE);
	dst = buf_new(0, 4096);
	CHECK(src && dst);
	memset(src->p, 0x77, 4096);
	CHECK(xport_read(nodes[0].x, 1, &dst->mr, 0,
			 (uint64_t)(uintptr_t)src->p, src->mr.rkey, 4096,
			 0xbad) == 0);
	CHECK(drive(got_done, &reader, DEADLINE_MS));
	CHECK(nodes[0].done.type == XPORT_EV_READ_DONE);
	CHECKF(nodes[0].done.status != 0, "a READ without access succeeded");
	for (size_t i = 0; i < 4096; i++)
		CHECKF(((unsigned char *)dst->p)[i] == 0, "byte %zu read", i);
	return TEST_PASS;
}

static int test_read_4k(void)
{
	/* From inside the region: raddr is a virtual address, not an
	 * offset. */
	return read_case(3 * 4096, 4096, 512, 4096);
}

static int test_read_1m(void)
{
	return read_case(1u << 20, 0, 0, 1u << 20);
}

/* Node 2 writes into node 1: the target learns the writer, imm and length
 * from the CQ data; the writer gets its cookie back. */
static int test_write_imm(void)
{
	const size_t len = 65536, at = 1000;
	struct buf *src, *dst;
	int writer = 2;
	unsigned char *d;

	START(3, 16);
	src = buf_new(writer, len);
	dst = buf_new(1, 2 * len);
	CHECK(src && dst);
	wire_pattern_fill(src->p, len, 7);
	CHECK(xport_write_imm(nodes[writer].x, 1, &src->mr, 0,
			      (uint64_t)(uintptr_t)dst->p + at, dst->mr.rkey,
			      (uint32_t)len, 0xfeedf00d, 77) == 0);
	/* verbs may post the WRITE unsignalled: its WRITE_DONE then comes
	 * with a later completion of the queue pair (writes_then_message
	 * tests that), so here only the target's side is awaited. */
	CHECK(drive(on_verbs ? got_imm : got_imm_and_done, &writer,
		    DEADLINE_MS));
	CHECK(nodes[1].nimm == 1);
	CHECKF(nodes[1].imm.peer == writer, "peer %d", nodes[1].imm.peer);
	CHECK(nodes[1].imm.imm == 0xfeedf00d);
	CHECKF(nodes[1].imm.len == len, "len %u", nodes[1].imm.len);
	if (!on_verbs) {
		CHECK(nodes[writer].ndone == 1);
		CHECK(nodes[writer].done.type == XPORT_EV_WRITE_DONE);
		CHECK(nodes[writer].done.cookie == 77);
		CHECK(nodes[writer].done.status == 0 &&
		      nodes[writer].done.peer == 1);
	}
	CHECK(nodes[0].nimm == 0 && nodes[0].ndone == 0);
	d = dst->p;
	CHECK(wire_pattern_check(d + at, len, 7) == -1);
	CHECK(d[at - 1] == 0 && d[at + len] == 0);
	CHECK(xport_write_imm(nodes[writer].x, 1, &src->mr, 1, 0, 0,
			      (uint32_t)len, 0, 0) == -EINVAL);
	return TEST_PASS;
}

struct want_writes {
	unsigned writes;
};

static bool writes_and_msg(void *arg)
{
	struct want_writes *w = arg;

	return nodes[0].ndone >= w->writes && nodes[1].msgs[0] >= 1;
}

/* Operations leave in call order, whatever held each back: WRITEs beyond
 * the per-peer limit wait in the queue, and a message sent after them
 * arrives after them all. */
static int test_writes_then_message(void)
{
	struct want_writes w = {32};
	struct buf *src, *dst;
	uint32_t i;

	START(2, 16);
	src = buf_new(0, 64 * w.writes);
	dst = buf_new(1, 64 * w.writes);
	CHECK(src && dst);
	wire_pattern_fill(src->p, 64 * w.writes, 3);
	for (i = 0; i < w.writes; i++)
		CHECK(xport_write_imm(nodes[0].x, 1, &src->mr, 64 * i,
				      (uint64_t)(uintptr_t)dst->p + 64 * i,
				      dst->mr.rkey, 64, i, i) == 0);
	CHECK(send_numbered(0, 1, 0, 32) == 0);
	CHECK(drive(writes_and_msg, &w, DEADLINE_MS));
	CHECK(nodes[1].nimm == w.writes && nodes[0].ndone == w.writes);
	for (i = 0; i < w.writes; i++)
		CHECKF(nodes[1].imm_log[i] == i, "imm %u arrived %u-th",
		       nodes[1].imm_log[i], i);
	CHECKF(nodes[1].nimm_at_msg == w.writes,
	       "the message came after %u WRITEs", nodes[1].nimm_at_msg);
	CHECK(nodes[0].done.status == 0);
	CHECK(memcmp(src->p, dst->p, 64 * w.writes) == 0);
	return TEST_PASS;
}

/* Malformed input is counted and dropped; the link goes on. */
static int test_bad_messages(void)
{
	unsigned char junk[sizeof(struct wire_hdr)];
	unsigned char forged[sizeof(struct wire_hdr)];
	struct want_msgs w = {1, 0, 1};
	struct wire_hdr h;
	struct wire_counters c;

	START(2, 8);
	memset(junk, 0xab, sizeof(junk));
	wire_hdr_init(forged, WIRE_HEARTBEAT, 0, 0);
	memcpy(&h, forged, sizeof(h));
	h.src = 1; /* claims to come from the receiver itself */
	memcpy(forged, &h, sizeof(h));
	CHECK(xport_send_raw(nodes[0].x, 1, junk, sizeof(junk)) == 0);
	CHECK(xport_send_raw(nodes[0].x, 1, forged, sizeof(forged)) == 0);
	CHECK(xport_send_raw(nodes[0].x, 1, junk, 3) == 0);
	CHECK(send_numbered(0, 1, 0, 200) == 0);
	CHECK(drive(got_msgs, &w, DEADLINE_MS));
	CHECK(xport_counters(nodes[1].x, 0, &c) == 0);
	CHECKF(c.bad_msgs == 3, "bad_msgs %llu",
	       (unsigned long long)c.bad_msgs);
	CHECK(nodes[1].other_msgs == 0 && nodes[1].disorder == 0);
	CHECK(nodes[1].down[0] == 0);
	return TEST_PASS;
}

/* An unknown provider is refused, with a line that lists the real ones. */
static int test_unknown_provider(void)
{
	struct xport_config cfg = config(0, 2, 8);
	struct capture cap;
	char log[4096];
	int ret;

	OFI_ONLY();
	cfg.provider = "no-such-provider";
	CHECK(capture_start(&cap));
	ret = xport_create(xops, &cfg, &nodes[0].x);
	capture_end(&cap, log, sizeof(log));
	CHECKF(ret == -ENOENT, "create: %s", strerror(-ret));
	CHECK(nodes[0].x == NULL);
	CHECK(strstr(log, "'no-such-provider'") != NULL);
	if (!strstr(log, "tcp;ofi_rxm"))
		SKIP("libfabric lists no tcp;ofi_rxm provider here");
	return TEST_PASS;
}

/* Node 0 greets before node 1 has the address vector to name it: node 1
 * drops that hello, and its own hello, answered, brings both up. */
static int test_hello_before_connect_all(void)
{
	struct xport_addr addrs[2];
	struct capture cap;
	char log[8192];
	int i, ret;

	OFI_ONLY();
	nnodes = 2;
	for (i = 0; i < 2; i++) {
		struct xport_config cfg = config(i, 2, 8);

		ret = xport_create(xops, &cfg, &nodes[i].x);
		if (ret == -ENOENT)
			SKIP("libfabric offers no tcp;ofi_rxm provider");
		CHECK(ret == 0);
		CHECK(xport_local_addr(nodes[i].x, &addrs[i]) == 0);
	}
	CHECK(xport_connect_all(nodes[0].x, addrs) == 0);
	CHECK(capture_start(&cap));
	drive(never, NULL, 1000);
	capture_end(&cap, log, sizeof(log));
	CHECK(strstr(log, "not in the address vector") != NULL);
	CHECK(nodes[0].connected[1] == 0 && nodes[1].connected[0] == 0);
	CHECK(xport_connect_all(nodes[1].x, addrs) == 0);
	CHECK(drive(all_connected, NULL, DEADLINE_MS));
	CHECK(nodes[0].connected[1] == 1 && nodes[1].connected[0] == 1);
	CHECK(send_numbered(0, 1, 0, 64) == 0);
	{
		struct want_msgs w = {1, 0, 1};

		CHECK(drive(got_msgs, &w, DEADLINE_MS));
	}
	return TEST_PASS;
}

/* Members of different clusters (keys) do not connect: each drops the
 * other's unsigned greeting (libfabric) or connection request (verbs),
 * and says why. */
static int test_other_key_refused(void)
{
	struct xport_addr addrs[2];
	struct capture cap;
	char log[8192];
	int i, ret;

	nnodes = 2;
	for (i = 0; i < 2; i++) {
		struct xport_config cfg = config(i, 2, 8);

		cfg.key = sip_key_from(i ? "cluster B" : "cluster A");
		ret = xport_create(xops, &cfg, &nodes[i].x);
		if (ret == -ENOENT)
			SKIP("libfabric offers no tcp;ofi_rxm provider");
		CHECK(ret == 0);
		CHECK(xport_local_addr(nodes[i].x, &addrs[i]) == 0);
	}
	CHECK(capture_start(&cap));
	for (i = 0; i < 2; i++)
		xport_connect_all(nodes[i].x, addrs);
	drive(never, NULL, 2000);
	capture_end(&cap, log, sizeof(log));
	CHECK(nodes[0].connected[1] == 0 && nodes[1].connected[0] == 0);
	CHECKF(strstr(log, "cluster key") != NULL, "no reason logged");
	return TEST_PASS;
}

static int test_bad_config(void)
{
	struct xport_config cfg = config(0, 2, 8);
	struct xport *x = NULL;

	OFI_ONLY();
	cfg.addr = "not-an-address";
	CHECK(xport_create(xops, &cfg, &x) == -EINVAL);
	cfg = config(0, 2, 2);
	CHECK(xport_create(xops, &cfg, &x) == -EINVAL);
	cfg = config(2, 2, 8);
	CHECK(xport_create(xops, &cfg, &x) == -EINVAL);
	CHECK(x == NULL);
	return TEST_PASS;
}

/* close_peer: both ends hear PEER_DOWN, and neither talks any more. */
static int test_close_peer(void)
{
	START(2, 8);
	CHECK(xport_close_peer(nodes[0].x, 1) == 0);
	CHECK(nodes[0].down[1] == 0); /* not from inside the owner's call */
	CHECK(drive(both_down, NULL, DEADLINE_MS));
	CHECK(nodes[0].down[1] == 1 && nodes[1].down[0] == 1);
	CHECKF(strstr(nodes[0].reason[1], "closed by owner"), "'%s'",
	       nodes[0].reason[1]);
	CHECKF(strstr(nodes[1].reason[0], on_verbs ? "DISCONNECTED"
						   : "peer closed"), "'%s'",
	       nodes[1].reason[0]);
	CHECK(send_numbered(0, 1, 0, 8) == -ENOTCONN);
	CHECK(send_numbered(1, 0, 0, 8) == -ENOTCONN);
	CHECK(xport_close_peer(nodes[0].x, 1) == 0);
	CHECK(xport_close_peer(nodes[0].x, 0) == -EINVAL);
	return TEST_PASS;
}

static bool node0_down(void *arg)
{
	(void)arg;
	return nodes[0].down[1] > 0;
}

/* A peer that vanishes says nothing, and ofi_rxm keeps trying to reach it:
 * once the provider has taken nothing for connect_timeout_ms, while
 * heartbeats wanted to leave, it is PEER_DOWN. */
static int test_dead_peer(void)
{
	uint64_t t0;
	uint32_t i;

	connect_timeout_ms = 1500;
	START(2, 8);
	xport_destroy(nodes[1].x);
	nodes[1].x = NULL;
	t0 = clock_mono_ms();
	for (i = 0; i < 100 && !nodes[0].down[1]; i++) {
		CHECK(send_numbered(0, 1, i, 8) == 0 || nodes[0].down[1]);
		drive(node0_down, NULL, 200);
	}
	CHECK(nodes[0].down[1] == 1);
	/* libfabric: the provider's silence; verbs: the CM's disconnect. */
	CHECKF(strstr(nodes[0].reason[1], on_verbs ? "DISCONNECTED"
						   : "unreachable"), "'%s'",
	       nodes[0].reason[1]);
	if (!on_verbs)
		CHECK(clock_mono_ms() - t0 >= 1500);
	CHECK(send_numbered(0, 1, i, 8) == -ENOTCONN);
	return TEST_PASS;
}

/* A peer nobody listens for: its hello is never taken, and it goes down
 * without ever being connected. */
static int test_unreachable_at_start(void)
{
	struct xport_addr addrs[2];
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd, ret;

	OFI_ONLY();
	connect_timeout_ms = 1500;
	nnodes = 2;
	struct xport_config cfg = config(0, 2, 8);

	ret = xport_create(xops, &cfg, &nodes[0].x);
	if (ret == -ENOENT)
		SKIP("libfabric offers no tcp;ofi_rxm provider");
	CHECK(ret == 0);
	/* A port that was free a moment ago and has no listener now. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	close(fd);
	CHECK(xport_local_addr(nodes[0].x, &addrs[0]) == 0);
	addrs[1] = (struct xport_addr){.ip = sin.sin_addr.s_addr,
				       .port = sin.sin_port};
	CHECK(xport_connect_all(nodes[0].x, addrs) == 0);
	CHECK(xport_connect_all(nodes[0].x, addrs) == -EALREADY);
	CHECK(drive(node0_down, NULL, DEADLINE_MS));
	CHECK(nodes[0].connected[1] == 0);
	CHECKF(strstr(nodes[0].reason[1], "unreachable"), "'%s'",
	       nodes[0].reason[1]);
	return TEST_PASS;
}

static const struct test_case tests[] = {
	{"connect_three", test_connect_three},
	{"hello_before_connect_all", test_hello_before_connect_all},
	{"not_connected_yet", test_not_connected_yet},
	{"idle_fd_quiet", test_idle_fd_quiet},
	{"messages_in_order", test_messages_in_order},
	{"burst_beyond_depth", test_burst_beyond_depth},
	{"queue_bound", test_queue_bound},
	{"read_4k", test_read_4k},
	{"read_needs_access", test_read_needs_access},
	{"read_1m", test_read_1m},
	{"write_imm", test_write_imm},
	{"writes_then_message", test_writes_then_message},
	{"bad_messages", test_bad_messages},
	{"unknown_provider", test_unknown_provider},
	{"other_key_refused", test_other_key_refused},
	{"bad_config", test_bad_config},
	{"close_peer", test_close_peer},
	{"dead_peer", test_dead_peer},
	{"unreachable_at_start", test_unreachable_at_start},
};

TEST_MAIN(tests, teardown)
