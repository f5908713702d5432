/* bench_verbs: the raw verbs floor between two processes, no libdsm.
 *
 * One RC QP connected through librdmacm, then
 *   verbs_read_4k  RDMA READ of 4096 bytes from the server, one outstanding
 *                  (what `ib_read_lat -s 4096` measures);
 *   verbs_send_64  64-byte SEND/RECV ping-pong, one-way = round trip / 2
 *                  (what `ib_send_lat -s 64` measures).
 * Like perftest, the measuring side busy-polls its CQ, and so does the
 * server while a ping-pong runs.  Outside a measurement the server sleeps
 * on its completion channel, so an idle pair burns no CPU.
 *
 * By default the process forks the server; the server binds port 0 and
 * passes the port back through a socketpair.  --server/--client run the
 * two ends separately.  The cases run through Google Benchmark (any
 * --benchmark_* argument is handed to it); --direct runs them without it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "bench_cli.h"
#include "gbench_shim.h"
#include "log.h"
#include "pair_proto.h"
#include "verbs_pair.h"

#define PROG "bench_verbs"
#define CONNECT_TIMEOUT_MS 10000
#define SPIN_TIMEOUT_NS (10ull * 1000000000ull) /* a lost completion */
#define SERVER_SPIN_NS (200ull * 1000000ull)    /* then sleep */

_Static_assert(VP_MSG_SIZE == PAIR_MSG_SIZE, "a slot holds one pair message");

struct options {
	enum { ROLE_PAIR, ROLE_SERVER, ROLE_CLIENT } role;
	struct bench_config cfg;
	const char *addr;
	const char *device;
	const char *json;
	const char *only;
	uint16_t port;
	bool gbench;
	int gb_argc;
	char **gb_argv;
};

/* ------------------------------------------------------------ client */

struct client {
	struct vp_endpoint ep;
	uint64_t seq;       /* last PING sent */
	uint64_t sends;     /* SEND completions seen */
	uint64_t reads;     /* READ completions seen */
	uint64_t pongs;     /* matching PONGs received */
	unsigned long bad;  /* received messages dropped as malformed */
};

static int client_take_recv(struct client *c, const struct ibv_wc *wc)
{
	uint32_t slot = vp_wr_slot(wc->wr_id);
	struct pair_msg m;

	memcpy(&m, vp_recv_buf(&c->ep, slot), sizeof(m));
	if (pair_client_pong(&m, wc->byte_len, c->seq, &c->bad))
		c->pongs++;
	return vp_post_recv(&c->ep, slot);
}

/* Busy-poll until the counters reach the targets: the measured path. */
static int client_spin(struct client *c, uint64_t sends, uint64_t reads,
		       uint64_t pongs)
{
	struct ibv_wc wc[8];
	uint64_t deadline = 0;
	unsigned idle = 0;

	while (c->sends < sends || c->reads < reads || c->pongs < pongs) {
		int n = vp_poll(&c->ep, wc, 8);

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			enum vp_wr_kind kind = vp_wr_kind(wc[i].wr_id);
			int rc = 0;

			if (kind == VP_WR_SEND)
				c->sends++;
			else if (kind == VP_WR_READ)
				c->reads++;
			else
				rc = client_take_recv(c, &wc[i]);
			if (rc)
				return rc;
		}
		/* Read the clock only once in a while: it is not free. */
		if (n > 0 || ++idle % 4096)
			continue;
		if (!deadline)
			deadline = bench_now_ns() + SPIN_TIMEOUT_NS;
		else if (bench_now_ns() > deadline) {
			log_err("client: no completion for %llu s",
				SPIN_TIMEOUT_NS / 1000000000ull);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Post a SEND, first waiting for the send queue to drain if it is full. */
static int client_post(struct client *c, const struct pair_msg *m, bool signal)
{
	int rc = vp_post_send(&c->ep, m, sizeof(*m), signal);

	if (rc == -EAGAIN) {
		rc = client_spin(c, c->sends + 1, 0, 0);
		if (!rc)
			rc = vp_post_send(&c->ep, m, sizeof(*m), signal);
	}
	return rc < 0 ? rc : 0;
}

/* A control message, delivered (its SEND completed) on return. */
static int client_send(struct client *c, uint32_t type)
{
	struct pair_msg m = pair_msg(type, ++c->seq);
	int rc = client_post(c, &m, true);

	return rc ? rc : client_spin(c, c->sends + 1, 0, 0);
}

static int op_read(void *ctx)
{
	struct client *c = ctx;
	int rc = vp_post_read(&c->ep);

	return rc ? rc : client_spin(c, 0, c->reads + 1, 0);
}

/* One round trip.  Like perftest, only every VP_SIGNAL_EVERY-th SEND is
 * signalled and no SEND completion is waited for unless the queue fills. */
static int op_ping(void *ctx)
{
	struct client *c = ctx;
	struct pair_msg m = pair_msg(PAIR_PING, ++c->seq);
	int rc = client_post(c, &m, false);

	return rc ? rc : client_spin(c, 0, 0, c->pongs + 1);
}

static int ping_begin(void *ctx)
{
	return client_send(ctx, PAIR_BEGIN);
}

static int ping_end(void *ctx)
{
	return client_send(ctx, PAIR_END);
}

/* ------------------------------------------------------------ server */

struct server {
	struct vp_endpoint ep;
	struct pair_server st;
};

static int server_pong(struct server *s)
{
	struct pair_msg pong = pair_msg(PAIR_PONG, s->st.pong_seq);
	int rc = vp_post_send(&s->ep, &pong, sizeof(pong), false);

	s->st.pong_pending = rc == -EAGAIN;
	return rc < 0 && rc != -EAGAIN ? rc : 0;
}

static int server_take_recv(struct server *s, const struct ibv_wc *wc)
{
	uint32_t slot = vp_wr_slot(wc->wr_id);
	struct pair_msg m;
	int rc;

	memcpy(&m, vp_recv_buf(&s->ep, slot), sizeof(m));
	/* Repost first: the slot's contents are copied out. */
	rc = vp_post_recv(&s->ep, slot);
	if (rc)
		return rc;
	return pair_server_take(&s->st, &m, wc->byte_len) ? server_pong(s) : 0;
}

/* Handle whatever the CQ holds: the number of completions, or an error. */
static int server_poll(struct server *s)
{
	struct ibv_wc wc[8];
	int n = vp_poll(&s->ep, wc, 8);

	for (int i = 0; i < n; i++) {
		int rc = 0;

		if (vp_wr_kind(wc[i].wr_id) == VP_WR_RECV)
			rc = server_take_recv(s, &wc[i]);
		if (rc)
			return rc;
	}
	return n;
}

/* Serve until PAIR_QUIT.  Spin while a phase runs and for a moment after
 * the last completion; otherwise arm the CQ, poll once more (a completion
 * that came before the arm raises no event) and sleep. */
static int serve(struct server *s, int ctl_fd)
{
	uint64_t last = bench_now_ns();

	while (!s->st.done) {
		int n = server_poll(s);

		if (n >= 0 && s->st.pong_pending && server_pong(s))
			return -EIO;
		if (n < 0)
			return n;
		if (n > 0 || s->st.pong_pending) {
			last = bench_now_ns();
			continue;
		}
		if (s->st.busy && bench_now_ns() - last < SERVER_SPIN_NS)
			continue;
		n = vp_arm(&s->ep);
		if (!n)
			n = server_poll(s);
		if (!n)
			n = vp_block(&s->ep, ctl_fd, -1);
		if (n < 0)
			return n;
	}
	return 0;
}

static int write_port(int fd, uint16_t port)
{
	ssize_t n = write(fd, &port, sizeof(port));

	if (n == (ssize_t)sizeof(port))
		return 0;
	log_err("server: cannot pass the port to the client: %s",
		n < 0 ? strerror(errno) : "short write");
	return -EIO;
}

/* ctl_fd: the socketpair to the forking parent (the port goes there and
 * its hang-up ends the server), or -1 when run with --server. */
static int run_server(const struct options *o, int ctl_fd)
{
	struct server s = { .ep.role = "server" };
	uint16_t port;
	int rc = vp_listen(&s.ep, o->addr, o->port, &port);

	if (!rc && ctl_fd >= 0)
		rc = write_port(ctl_fd, port);
	else if (!rc) {
		printf("%s: server listening on %s port %u\n", PROG, o->addr,
		       port);
		fflush(stdout);
	}
	if (!rc)
		rc = vp_accept(&s.ep, ctl_fd >= 0 ? CONNECT_TIMEOUT_MS : -1);
	if (!rc)
		rc = serve(&s, ctl_fd);
	vp_close(&s.ep);
	if (rc == -ECONNRESET)
		log_err("server: the client disconnected before PAIR_QUIT");
	return rc;
}

/* ------------------------------------------------------------ cases */

static int read_counters(void *ctx, struct bench_result *r)
{
	(void)ctx;
	return pair_floor_counters(r, 1, false);
}

static int ping_counters(void *ctx, struct bench_result *r)
{
	const struct client *c = ctx;

	return pair_floor_counters(r, 2, c->ep.max_inline >= VP_MSG_SIZE);
}

/* The benchmarks; ctx (the client) is filled in per run. */
static const struct bench_case case_tab[] = {
	{ .name = "verbs_read_4k", .bytes = VP_DATA_SIZE, .divisor = 1,
	  .op = op_read, .counters = read_counters,
	  .note = "RDMA READ 4096 B from the server, 1 outstanding, "
		  "CQ busy-polled" },
	{ .name = "verbs_send_64", .bytes = VP_MSG_SIZE, .divisor = 2,
	  .begin = ping_begin, .op = op_ping, .counters = ping_counters,
	  .end = ping_end,
	  .note = "64 B SEND/RECV ping-pong, one-way = RTT/2, "
		  "CQ busy-polled on both sides" },
};

#define N_CASES (sizeof(case_tab) / sizeof(case_tab[0]))

static bool selected(const struct options *o, const struct bench_case *bc)
{
	return !o->only || strcmp(o->only, bc->name) == 0;
}

/* Run the selected cases (through Google Benchmark unless --direct),
 * print the table under a header naming the device, write the JSON. */
static int run_cases(const struct options *o, const struct client *c,
		     const struct bench_case *tab)
{
	char title[256];
	struct bench_cli cli = {
		.tool = PROG, .title = title, .cfg = o->cfg, .only = o->only,
		.json = o->json, .direct = !o->gbench, .gb_argc = o->gb_argc,
	};

	snprintf(title, sizeof(title),
		 "%s: raw verbs, RC QP via rdma_cm on %s (%s), no libdsm\n"
		 " CQ: busy-polled during measurement; the server sleeps on "
		 "its completion channel between phases; inline send: %s",
		 PROG, vp_device_name(&c->ep), o->addr,
		 c->ep.max_inline >= VP_MSG_SIZE ? "yes" : "no");
	for (int i = 0; i <= o->gb_argc; i++)
		cli.gb_argv[i] = o->gb_argv[i];
	return bench_cli_run(&cli, tab, N_CASES) ? -EIO : 0;
}

static int check_device(const struct options *o, const struct client *c)
{
	const char *name = vp_device_name(&c->ep);

	if (!o->device || strcmp(o->device, name) == 0)
		return 0;
	log_err("address %s belongs to device %s, not %s", o->addr, name,
		o->device);
	return -ENODEV;
}

static int quit_server(struct client *c)
{
	return client_send(c, PAIR_QUIT);
}

static int run_client(const struct options *o, uint16_t port)
{
	struct client c = { .ep.role = "client" };
	struct bench_case tab[N_CASES];
	int rc = vp_connect(&c.ep, o->addr, port, CONNECT_TIMEOUT_MS);

	if (!rc)
		rc = check_device(o, &c);
	if (rc) {
		vp_close(&c.ep);
		return rc;
	}
	for (size_t i = 0; i < N_CASES; i++) {
		tab[i] = case_tab[i];
		tab[i].ctx = &c;
	}
	rc = run_cases(o, &c, tab);
	if (c.ep.connected && quit_server(&c) && !rc)
		rc = -EIO;
	vp_close(&c.ep);
	if (!rc && c.bad)
		log_err("client: %lu malformed messages dropped", c.bad);
	return rc;
}

/* ------------------------------------------------------------ roles */

static int read_port(int fd, uint16_t *port)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) <= 0) {
		log_err("the server did not report its port");
		return -ETIMEDOUT;
	}
	n = read(fd, port, sizeof(*port));
	if (n == (ssize_t)sizeof(*port))
		return 0;
	/* EOF: the server failed and has said why. */
	return -ECHILD;
}

static int exit_status(int rc)
{
	if (rc == 0)
		return PAIR_EXIT_OK;
	if (rc == -ENODEV || rc == -EADDRNOTAVAIL)
		return PAIR_EXIT_ENV;
	return PAIR_EXIT_FAIL;
}

/* The client's end of the forked pair: the server's port comes first. */
static int client_end(const void *o, int fd)
{
	uint16_t port;
	int rc = read_port(fd, &port);

	return rc ? rc : run_client(o, port);
}

static int server_end(const void *o, int fd)
{
	return run_server(o, fd);
}

static int run_pair(const struct options *o)
{
	return pair_run(server_end, client_end, o, exit_status);
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options] [--benchmark_*...]\n"
		"  -n, --iters N      measured iterations per benchmark [%d]\n"
		"  -w, --warmup N     iterations run first and discarded [%d]\n"
		"  -t, --trim N       largest samples left out of the "
		"statistics [%d]\n"
		"  -a, --addr IP      RDMA address [$DSM_RDMA_ADDR]\n"
		"  -d, --device NAME  check the address is on this device "
		"[$DSM_DEVICE]\n"
		"  -b, --bench NAME   run only verbs_read_4k or verbs_send_64\n"
		"  -j, --json FILE    write the results as JSON ('-': stdout)\n"
		"      --server       only the server; -p PORT (default: any)\n"
		"      --client       only the client; needs -p PORT\n"
		"  -p, --port PORT    rdma_cm port for --server/--client\n"
		"      --direct       run the cases without Google Benchmark (by\n"
		"                     default they run through it; --benchmark_*\n"
		"                     arguments are handed to it)\n"
		"Exit: 0 ok, 1 failure, 2 no RDMA device or bad usage.\n"
		"Without RDMA in the kernel, run it under soft-RoCE:\n"
		"  scripts/softroce build/bench/" PROG " -n 1000\n",
		BENCH_DEFAULT_ITERS, BENCH_DEFAULT_WARMUP, BENCH_DEFAULT_TRIM);
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static void split_gbench_args(int *argc, char **argv, struct options *o)
{
	static char *gb[32]; /* as many as struct bench_cli holds */

	o->gb_argv = gb;
	o->gb_argc = gbench_split_args(argc, argv, gb, 32);
}

static int parse_opt(int c, const char *arg, struct options *o)
{
	unsigned long v;

	switch (c) {
	case 'n':
		if (!parse_ulong(arg, 100000000ul, &v) || v == 0)
			return -EINVAL;
		o->cfg.iters = v;
		return 0;
	case 'w': return parse_ulong(arg, 100000000ul, &o->cfg.warmup) ? 0
									  : -EINVAL;
	case 't':
		if (!parse_ulong(arg, 1000, &v))
			return -EINVAL;
		o->cfg.trim = (unsigned)v;
		return 0;
	case 'p':
		if (!parse_ulong(arg, 65535, &v))
			return -EINVAL;
		o->port = (uint16_t)v;
		return 0;
	case 'a': o->addr = arg; return 0;
	case 'd': o->device = arg; return 0;
	case 'b': o->only = arg; return 0;
	case 'j': o->json = arg; return 0;
	case 'S': o->role = ROLE_SERVER; return 0;
	case 'C': o->role = ROLE_CLIENT; return 0;
	case 'G': o->gbench = false; return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "iters", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "trim", required_argument, NULL, 't' },
		{ "addr", required_argument, NULL, 'a' },
		{ "device", required_argument, NULL, 'd' },
		{ "bench", required_argument, NULL, 'b' },
		{ "json", required_argument, NULL, 'j' },
		{ "port", required_argument, NULL, 'p' },
		{ "server", no_argument, NULL, 'S' },
		{ "client", no_argument, NULL, 'C' },
		{ "direct", no_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	split_gbench_args(&argc, argv, o);
	while ((c = getopt_long(argc, argv, "n:w:t:a:d:b:j:p:h", longopts,
				NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(PAIR_EXIT_OK);
		}
		if (parse_opt(c, optarg, o)) {
			if (c != '?')
				log_err("bad value for -%c: '%s'", c, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int check_options(const struct options *o)
{
	if (!o->addr || !*o->addr) {
		log_err("no RDMA address: give --addr or set DSM_RDMA_ADDR "
			"(scripts/softroce sets it)");
		return -EINVAL;
	}
	if (o->role == ROLE_CLIENT && !o->port) {
		log_err("--client needs --port");
		return -EINVAL;
	}
	for (size_t i = 0; o->only && i < N_CASES; i++)
		if (selected(o, &case_tab[i]))
			return 0;
	if (o->only) {
		log_err("unknown benchmark '%s'", o->only);
		return -EINVAL;
	}
	return 0;
}

/* Exit 2 with a pointer to scripts/softroce when there is no device (the
 * host kernel of this project's machines has no RDMA at all). */
static int check_rdma(const struct options *o)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);
	bool found = !o->device;

	for (int i = 0; list && i < n && !found; i++)
		found = strcmp(ibv_get_device_name(list[i]), o->device) == 0;
	if (list)
		ibv_free_device_list(list);
	if (n == 0) {
		log_err("no RDMA device found; run under soft-RoCE: "
			"scripts/softroce build/bench/" PROG " ...");
		return -ENODEV;
	}
	if (!found) {
		log_err("RDMA device %s not found (DSM_DEVICE or --device)",
			o->device);
		return -ENODEV;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
		.gbench = true,
		.cfg = { .iters = BENCH_DEFAULT_ITERS,
			 .warmup = BENCH_DEFAULT_WARMUP,
			 .trim = BENCH_DEFAULT_TRIM },
		.addr = getenv("DSM_RDMA_ADDR"),
		.device = getenv("DSM_DEVICE"),
	};
	int rc;

	log_setup(PROG, -1);
	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return PAIR_EXIT_ENV;
	}
	if (o.device && !*o.device)
		o.device = NULL;
	/* The device first: without one, the address hardly matters. */
	rc = check_rdma(&o);
	if (!rc)
		rc = check_options(&o);
	if (rc)
		return PAIR_EXIT_ENV;
	if (o.role == ROLE_SERVER)
		return exit_status(run_server(&o, -1));
	if (o.role == ROLE_CLIENT)
		return exit_status(run_client(&o, o.port));
	return run_pair(&o);
}
