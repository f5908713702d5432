/* Unit tests of dsmd's core (daemon/core/): the module table (modules.c)
 * made into dispatch tables, the order modules hear of events in, the self
 * queue, and messages kept for later. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dsm_harness.h"
#include "ipc.h"
#include "modules.h"
#include "coll/coll.h"

/* How many modules of the table list node message type t. */
static int msg_handlers(unsigned t)
{
	const struct dsmd_msg *m;
	int n = 0;
	size_t i;

	for (i = 0; i < dsmd_nmodules; i++)
		for (m = dsmd_modules[i]->msgs; m && m->type; m++)
			n += m->type == t;
	return n;
}

static int ipc_handlers(unsigned t)
{
	const struct dsmd_ipc *c;
	int n = 0;
	size_t i;

	for (i = 0; i < dsmd_nmodules; i++)
		for (c = dsmd_modules[i]->ipcs; c && c->type; c++)
			n += c->type == t;
	return n;
}

/* Every node-channel type of wire.h has exactly one handler, but CREDIT,
 * which the transport consumes itself; and the dispatch table the core
 * filled names that module. */
static int test_every_node_type_one_handler(void)
{
	unsigned t;

	CHECK(setup(2, 0) == 0);
	for (t = 1; t < WIRE_TYPE_MAX; t++) {
		if (wire_type_channel(t) != WIRE_CH_NODE)
			continue;
		if (t == WIRE_CREDIT) {
			CHECK(msg_handlers(t) == 0);
			continue;
		}
		CHECKF(msg_handlers(t) == 1, "%s has %d handlers",
		       wire_type_name(t), msg_handlers(t));
		CHECK(dsmd_msg_owner(&tc.d[0], t) != NULL);
	}
	/* And no module takes a type that is not a node message. */
	for (t = 1; t < WIRE_TYPE_MAX; t++)
		if (wire_type_channel(t) != WIRE_CH_NODE)
			CHECK(msg_handlers(t) == 0);
	return 0;
}

/* Every request a client may send after its hello has exactly one
 * handler; what dsmd sends back has none. */
static int test_every_request_one_handler(void)
{
	static const unsigned requests[] = {
		WIRE_IPC_STATUS, WIRE_IPC_CHECK, WIRE_IPC_INJECT,
		WIRE_IPC_ATTACH, WIRE_IPC_UFFD, WIRE_IPC_COLL,
		WIRE_IPC_REGION, WIRE_IPC_PAGE, WIRE_IPC_STATS,
		WIRE_IPC_DETACH, WIRE_IPC_POLICY, WIRE_IPC_LOCK,
	};
	unsigned t, i, nreq = sizeof(requests) / sizeof(requests[0]);

	for (i = 0; i < nreq; i++)
		CHECKF(ipc_handlers(requests[i]) == 1, "%s has %d handlers",
		       wire_type_name(requests[i]), ipc_handlers(requests[i]));
	for (t = 1; t < WIRE_TYPE_MAX; t++) {
		bool req = false;

		for (i = 0; i < nreq; i++)
			req |= requests[i] == t;
		if (!req)
			CHECKF(ipc_handlers(t) == 0, "%s is handled",
			       wire_type_name(t));
	}
	return 0;
}

/* The order modules are set up in and hear of deaths in is the order
 * modules.c argues for: home before the kinds it serves (page, lock). */
static int test_module_order(void)
{
	static const char *const want[] = {"core", "ctl", "check", "home",
					   "page", "coll", "lock"};
	size_t i;

	CHECK(dsmd_nmodules == sizeof(want) / sizeof(want[0]));
	for (i = 0; i < dsmd_nmodules; i++)
		CHECKF(!strcmp(dsmd_modules[i]->name, want[i]),
		       "module %zu is %s, not %s", i, dsmd_modules[i]->name,
		       want[i]);
	return 0;
}

/* RDMA events: the tagged ones to the page module, the others to the
 * self-check, nobody else. */
static int test_rdma_owners(void)
{
	CHECK(setup(2, 0) == 0);
	CHECK(tc.d[0].rdma_mod[1] == &page_module);
	CHECK(tc.d[0].rdma_mod[0] == &check_module);
	return 0;
}

/* Sent to self: handled in the next round, in order, like a message from
 * a peer; an unknown type is counted as unexpected, a page out of the
 * arena as bad. */
static int test_self_queue(void)
{
	struct wire_dsm_done done = {.page = ARENA / WIRE_PAGE_SIZE};
	struct wire_heartbeat hb = {0};

	CHECK(setup(2, 0) == 0);
	pump();
	CHECK(node_send(&tc.d[0], 0, WIRE_CREDIT, 0, NULL, 0) == 0);
	CHECK(node_send(&tc.d[0], 0, WIRE_DSM_DONE, 1, &done,
			sizeof(done)) == 0);
	CHECK(node_send(&tc.d[0], 0, WIRE_HEARTBEAT, 0, &hb, sizeof(hb)) == 0);
	CHECK(tc.d[0].bad_msgs == 0 && st(0)->bad_msgs == 0);
	CHECK(node_run_self(&tc.d[0]));
	CHECK(tc.d[0].bad_msgs == 1);   /* CREDIT: no module */
	CHECK(st(0)->bad_msgs == 1);    /* the page is past the arena */
	CHECK(!node_run_self(&tc.d[0]));
	return 0;
}

/* A module whose setup fails: those before it are torn down again, and
 * the error comes back (here: no descriptor is left for the node's memfd,
 * so the page module fails). */
static int test_setup_failure_unwinds(void)
{
	struct rlimit old, few;
	struct dsmd d;
	int ret;

	memset(&d, 0, sizeof(d));
	d.cfg = (struct dsmd_config){.node = 0, .nnodes = 1,
				     .arena_base = BASE, .arena_size = ARENA};
	CHECK(dsmd_init(&d, &tc_clock) == 0);
	CHECK(xport_create(&xport_mock_ops,
			   &(struct xport_config){.self = 0, .nnodes = 1,
						  .recv_depth = 4,
						  .cb = cluster_on_event,
						  .cb_arg = &d,
						  .impl_arg = (tc.f =
						  xport_mock_fabric_new(1))},
			   &d.x) == 0);
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	few = old;
	few.rlim_cur = (rlim_t)d.epfd; /* every descriptor from here is refused */
	CHECK(setrlimit(RLIMIT_NOFILE, &few) == 0);
	ret = dsmd_modules_setup(&d);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	CHECK(ret == -EMFILE);
	CHECK(d.modules_up == 0 && !d.page && !d.home && !d.check);
	xport_destroy(d.x);
	dsmd_fini(&d);
	return 0;
}

/* dsmd's listening socket with n clients connected, on a fresh path. */
static int listen_with(struct dsmd *d, char *dir, char *path, size_t len,
		       int *fds, int n)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, len, "%s/d.sock", dir);
	d->cfg.socket = path;
	if (client_listen(d))
		return -1;
	for (int i = 0; i < n; i++)
		if ((fds[i] = ipc_connect(path)) < 0)
			return -1;
	return 0;
}

static void unlisten(struct dsmd *d, char *dir, int *fds, int n)
{
	client_close_all(d);
	watch_del(d, &d->listen_w);
	close(d->listen_fd);
	d->listen_fd = -1;
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	d->spare_fd = -1;
	access_close(d);
	rmdir(dir);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Whether fd reads EOF (the server closed it). */
static bool sees_eof(int fd)
{
	char b[64];
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 1000) == 1 && recv(fd, b, sizeof(b), 0) == 0;
}

/* Out of descriptors, dsmd gives up its spare one to accept each waiting
 * connection and close it: the clients see EOF, the refusals are counted,
 * and the listening socket is not left readable for the loop to spin on
 * (it was, 1000 times of 1000 polls). */
static int test_emfile_sheds(void)
{
	char dir[] = "/tmp/dsmd-core.XXXXXX", path[64];
	struct pollfd pfd;
	struct rlimit old, few;
	struct dsmd *d;
	int fds[4], probe;

	CHECK(setup(1, 0) == 0);
	d = &tc.d[0];
	CHECK(listen_with(d, dir, path, sizeof(path), fds, 4) == 0);
	CHECK(d->spare_fd >= 0);
	probe = dup(0);
	CHECK(probe >= 0);
	close(probe);
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	few = old;
	few.rlim_cur = (rlim_t)probe; /* no descriptor above those in use */
	CHECK(setrlimit(RLIMIT_NOFILE, &few) == 0);
	d->listen_w.fn(d, &d->listen_w, EPOLLIN);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	pfd = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
	CHECK(poll(&pfd, 1, 0) == 0);
	CHECK(d->ipc_refused == 4 && d->nclients == 0);
	for (int i = 0; i < 4; i++)
		CHECK(sees_eof(fds[i]));
	CHECK(d->spare_fd >= 0); /* taken again for next time */
	unlisten(d, dir, fds, 4);
	return 0;
}

/* Past --max-clients a connection is closed at once and counted; those
 * within are served. */
static int test_max_clients(void)
{
	char dir[] = "/tmp/dsmd-core.XXXXXX", path[64];
	struct pollfd p;
	struct dsmd *d;
	int fds[3];

	CHECK(setup(1, 0) == 0);
	d = &tc.d[0];
	d->cfg.max_clients = 2;
	CHECK(listen_with(d, dir, path, sizeof(path), fds, 3) == 0);
	d->listen_w.fn(d, &d->listen_w, EPOLLIN);
	CHECK(d->nclients == 2 && d->ipc_refused == 1);
	CHECK(sees_eof(fds[2]));
	p = (struct pollfd){.fd = fds[0], .events = POLLIN};
	CHECK(poll(&p, 1, 0) == 0); /* served: open, nothing to read */
	unlisten(d, dir, fds, 3);
	return 0;
}

/* dsmctl check paces its DATA: however many messages are asked for, the
 * checker sends at most a window before the checked node says how many
 * it has (CHECK_PROGRESS); the whole check still passes.  A check of
 * 20,000 messages once put all 20,000 into the transport at once. */
static int test_check_paced(void)
{
	struct wire_ipc_check req = {.count = 20000, .payload_len = 64,
				     .nsizes = 1, .sizes = {4096}};
	unsigned char buf[2048], rbuf[WIRE_IPC_MAX];
	struct wire_check_reply rep;
	struct wire_check_peer peer;
	struct client c = {.hello = true, .kind = WIRE_IPC_KIND_CTL};
	struct wire_msg m;
	const struct dsmd_ipc *h;
	unsigned long sent;
	int sv[2], fd = -1;

	CHECK(setup(2, 0) == 0);
	pump();
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	client_init(&c, NULL);
	c.w.fd = sv[0];
	wire_build(buf, sizeof(buf), WIRE_IPC_CHECK, 9, &req, sizeof(req));
	CHECK(wire_decode(buf, sizeof(struct wire_hdr) + sizeof(req),
			  WIRE_CH_IPC, &m) == WIRE_OK);
	h = tc.d[0].ipc_of[WIRE_IPC_CHECK];
	CHECK(h != NULL);
	h->fn(&tc.d[0], &c, &m, &fd);
	/* BEGIN to node 1, READY back, and the checker starts sending. */
	CHECK(xport_progress(tc.d[1].x) > 0);
	CHECK(xport_progress(tc.d[0].x) > 0);
	sent = xport_mock_sent(tc.d[0].x, 1, WIRE_CHECK_DATA);
	CHECKF(sent > 0 && sent <= 256, "%lu DATA sent before an answer",
	       sent);
	pump();
	CHECK(xport_mock_sent(tc.d[0].x, 1, WIRE_CHECK_DATA) == 20000);
	CHECK(xport_mock_sent(tc.d[1].x, 0, WIRE_CHECK_PROGRESS) >= 20000 / 64 - 1);
	CHECK(ipc_recv(sv[1], rbuf, sizeof(rbuf), 1000, &m, NULL) == 0);
	CHECK(m.hdr->type == WIRE_IPC_CHECK_REPLY);
	memcpy(&rep, m.body, sizeof(rep));
	CHECK(rep.npeers == 1);
	memcpy(&peer, (const char *)m.body + sizeof(rep), sizeof(peer));
	CHECKF(peer.status == 0 && peer.msgs_ok == 20000,
	       "status %d, %u messages ok", peer.status, peer.msgs_ok);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/* Each waiting message of each client, handled (accepting first). */
static void serve(struct dsmd *d)
{
	struct client *c, *ct;

	d->listen_w.fn(d, &d->listen_w, EPOLLIN);
	list_for_each_safe(c, ct, &d->clients, link)
		c->w.fn(d, &c->w, EPOLLIN);
}

/* Say hello as a process of `job` with `key`: the reply's type, or -1;
 * *status is a RESULT's. */
static int hello(struct dsmd *d, int fd, uint64_t job, const char *key,
		 int *status)
{
	struct wire_ipc_hello h = {.kind = WIRE_IPC_KIND_APP, .job = job};
	unsigned char buf[WIRE_IPC_MAX];
	struct wire_ipc_result r;
	struct wire_msg m;

	memcpy(h.magic, WIRE_IPC_MAGIC, sizeof(h.magic));
	snprintf(h.key, sizeof(h.key), "%s", key);
	if (ipc_send(fd, WIRE_IPC_HELLO, 1, &h, sizeof(h)))
		return -1;
	serve(d);
	if (ipc_recv(fd, buf, sizeof(buf), 1000, &m, NULL))
		return -1;
	if (m.hdr->type == WIRE_IPC_RESULT) {
		memcpy(&r, m.body, sizeof(r));
		*status = r.status;
	}
	return m.hdr->type;
}

/* Attach as `rank` of `size`: 0, or the refusal's errno. */
static int attach(struct dsmd *d, int fd, uint32_t rank, uint32_t size,
		  uint32_t local_size)
{
	struct wire_ipc_attach at = {.rank = rank, .size = size,
				     .local_size = local_size};
	unsigned char buf[WIRE_IPC_MAX];
	struct wire_ipc_result r;
	struct wire_msg m;
	int memfd = -1;

	if (ipc_send(fd, WIRE_IPC_ATTACH, 2, &at, sizeof(at)))
		return -EIO;
	serve(d);
	if (ipc_recv_fd(fd, buf, sizeof(buf), 1000, &m, NULL, &memfd))
		return -EIO;
	if (memfd >= 0)
		close(memfd);
	if (m.hdr->type == WIRE_IPC_ATTACH_OK)
		return 0;
	if (m.hdr->type != WIRE_IPC_RESULT)
		return -EPROTO;
	memcpy(&r, m.body, sizeof(r));
	return r.status;
}

/* One dsmd serves one job: the first process binds it; a process of
 * another job is refused at hello with EBUSY, one without the job's key
 * with EACCES, each counted; within the job a rank attaches once, the
 * job's size is one, and no more than local_size attach.  (At 3f600ff a
 * one-rank job 999 attached beside job 111 and freed its region.) */
static int test_one_job(void)
{
	char dir[] = "/tmp/dsmd-core.XXXXXX", path[64];
	struct dsmd *d;
	int fds[4], st = 0;

	CHECK(setup(1, 0) == 0);
	d = &tc.d[0];
	CHECK(listen_with(d, dir, path, sizeof(path), fds, 4) == 0);
	CHECK(hello(d, fds[0], 111, "k1", &st) == WIRE_IPC_HELLO_OK);
	CHECK(d->job.bound && d->job.id == 111);
	CHECK(hello(d, fds[1], 999, "k1", &st) == WIRE_IPC_RESULT);
	CHECKF(st == -EBUSY, "other job: %d", st);
	CHECK(sees_eof(fds[1]));
	CHECK(hello(d, fds[2], 111, "k2", &st) == WIRE_IPC_RESULT);
	CHECKF(st == -EACCES, "wrong key: %d", st);
	CHECK(sees_eof(fds[2]));
	CHECK(hello(d, fds[3], 111, "k1", &st) == WIRE_IPC_HELLO_OK);
	CHECK(d->refused.job == 2);
	CHECK(attach(d, fds[0], 0, 2, 2) == 0);
	CHECK(attach(d, fds[3], 0, 2, 2) == -EEXIST);
	CHECK(attach(d, fds[3], 1, 3, 2) == -EINVAL);
	CHECK(attach(d, fds[3], 1, 2, 2) == 0);
	CHECK(d->refused.attach == 2);
	unlisten(d, dir, fds, 4);
	return 0;
}

/* Past the job's local size no process attaches. */
static int test_local_size_cap(void)
{
	char dir[] = "/tmp/dsmd-core.XXXXXX", path[64];
	struct dsmd *d;
	int fds[2], st = 0;

	CHECK(setup(1, 0) == 0);
	d = &tc.d[0];
	d->job.bound = true; /* as --job 5 does */
	d->job.id = 5;
	CHECK(listen_with(d, dir, path, sizeof(path), fds, 2) == 0);
	CHECK(hello(d, fds[0], 5, "", &st) == WIRE_IPC_HELLO_OK);
	CHECK(hello(d, fds[1], 5, "", &st) == WIRE_IPC_HELLO_OK);
	CHECK(attach(d, fds[0], 0, 4, 1) == 0);
	CHECK(attach(d, fds[1], 1, 4, 1) == -EUSERS);
	unlisten(d, dir, fds, 2);
	return 0;
}

/* Node 0 counts only its job's collectives: another job's arrival is
 * answered with EBUSY to its node and not counted, so the job's barrier
 * waits for its own ranks.  (Before, an arrival of another job wiped the
 * running job's half-counted collectives.) */
static int test_other_jobs_collective(void)
{
	struct wire_coll_arrive a = {.job = 999, .seq = 0, .op = WIRE_COLL_BARRIER,
				     .count = 1, .size = 2};

	CHECK(setup(2, 0) == 0);
	pump();
	CHECK(job_is(&tc.d[0], 111) && job_is(&tc.d[1], 999));
	CHECK(node_send(&tc.d[1], 0, WIRE_COLL_ARRIVE, 0, &a, sizeof(a)) == 0);
	pump();
	CHECK(xport_mock_sent(tc.d[0].x, 1, WIRE_COLL_DONE) == 1);
	a.job = 111;
	CHECK(node_send(&tc.d[1], 0, WIRE_COLL_ARRIVE, 0, &a, sizeof(a)) == 0);
	pump();
	/* One of job 111's two ranks: nothing decided yet. */
	CHECK(xport_mock_sent(tc.d[0].x, 1, WIRE_COLL_DONE) == 1);
	CHECK(node_send(&tc.d[0], 0, WIRE_COLL_ARRIVE, 0, &a, sizeof(a)) == 0);
	pump();
	CHECK(xport_mock_sent(tc.d[0].x, 1, WIRE_COLL_DONE) == 2);
	return 0;
}

/* A named region request of the process on fd: the reply's status, its
 * value in *addr. */
static int region_req(struct dsmd *d, int fd, uint32_t op, const char *name,
		      uint64_t *addr)
{
	struct wire_region_op r = {.op = op, .flags = DSM_CREATE,
				   .size = 8192, .addr = *addr};
	unsigned char buf[WIRE_IPC_MAX];
	struct wire_ipc_reply rep;
	struct wire_msg m;

	snprintf(r.name, sizeof(r.name), "%s", name);
	if (ipc_send(fd, WIRE_IPC_REGION, 3, &r, sizeof(r)))
		return -EIO;
	serve(d);
	pump();
	if (ipc_recv(fd, buf, sizeof(buf), 1000, &m, NULL) ||
	    m.hdr->type != WIRE_IPC_REPLY)
		return -EPROTO;
	memcpy(&rep, m.body, sizeof(rep));
	if (op == WIRE_REGION_OPEN)
		*addr = rep.value;
	return rep.status;
}

/* A process closes only a named region it opened, and what it leaves open
 * when it dies is closed for it.  (At 3f600ff any process could close a
 * region by address, and a dead process's references were never
 * released: the region stayed for ever.) */
static int test_named_region_refs(void)
{
	char dir[] = "/tmp/dsmd-core.XXXXXX", path[64];
	struct dsmd *d;
	uint64_t addr = 0, other = 0;
	int fds[2], st = 0;

	CHECK(setup(1, 0) == 0);
	d = &tc.d[0];
	CHECK(listen_with(d, dir, path, sizeof(path), fds, 2) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK(hello(d, fds[i], 7, "", &st) == WIRE_IPC_HELLO_OK);
		CHECK(attach(d, fds[i], (uint32_t)i, 2, 2) == 0);
	}
	CHECK(region_req(d, fds[0], WIRE_REGION_OPEN, "grid", &addr) == 0);
	CHECK(addr != 0 && region_at(d, addr, true));
	other = addr;
	CHECK(region_req(d, fds[1], WIRE_REGION_CLOSE, "", &other) == -EINVAL);
	CHECK(region_at(d, addr, true) != NULL);
	/* Past --max-named a process opens no more, until it closes one. */
	d->cfg.max_named = 3;
	for (int i = 0; i < 3; i++)
		CHECK(region_req(d, fds[1], WIRE_REGION_OPEN, "grid",
				 &other) == 0 && other == addr);
	CHECK(region_req(d, fds[1], WIRE_REGION_OPEN, "grid", &other) ==
	      -EMFILE);
	CHECK(d->refused.regions == 1);
	other = addr;
	CHECK(region_req(d, fds[1], WIRE_REGION_CLOSE, "", &other) == 0);
	CHECK(region_req(d, fds[1], WIRE_REGION_OPEN, "grid", &other) == 0);
	for (int i = 0; i < 3; i++) {
		other = addr;
		CHECK(region_req(d, fds[1], WIRE_REGION_CLOSE, "", &other) ==
		      0);
	}
	d->cfg.max_named = 0;
	/* Past --max-regions none is made. */
	d->cfg.max_regions = 1;
	CHECK(region_req(d, fds[1], WIRE_REGION_OPEN, "more", &other) ==
	      -ENOSPC);
	CHECK(d->refused.regions == 2);
	/* Rank 0 dies with it open. */
	close(fds[0]);
	fds[0] = -1;
	serve(d);
	pump();
	CHECK(region_at(d, addr, true) == NULL);
	unlisten(d, dir, fds + 1, 1);
	return 0;
}

static const struct test_case tests[] = {
	{"every_node_type_one_handler", test_every_node_type_one_handler},
	{"every_request_one_handler", test_every_request_one_handler},
	{"module_order", test_module_order},
	{"rdma_owners", test_rdma_owners},
	{"self_queue", test_self_queue},
	{"setup_failure_unwinds", test_setup_failure_unwinds},
	{"emfile_sheds", test_emfile_sheds},
	{"max_clients", test_max_clients},
	{"check_paced", test_check_paced},
	{"one_job", test_one_job},
	{"local_size_cap", test_local_size_cap},
	{"other_jobs_collective", test_other_jobs_collective},
	{"named_region_refs", test_named_region_refs},
};

TEST_MAIN(tests, teardown)
