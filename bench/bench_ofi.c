/* bench_ofi: the raw libfabric floor between two processes, no libdsm.
 *
 * One reliable-datagram endpoint (FI_EP_RDM) each, by default over
 * tcp;ofi_rxm on 127.0.0.1 with the hints libdsm's transport uses
 * (ofi_pair.h), then
 *   ofi_send_64  64-byte message ping-pong, one-way = round trip / 2 (what
 *                bench_verbs' verbs_send_64 measures on verbs);
 *   ofi_read_4k  fi_read of 4096 bytes from the server's registered
 *                buffer, one outstanding (bench_verbs' verbs_read_4k).
 * These are the floors of bench_xport --transport ofi and of everything
 * scripts/bench --native measures.
 *
 * Like perftest, the measuring side busy-polls its CQ, and so does the
 * server while a phase runs.  Progress is manual: the server's provider
 * moves its bytes only inside its own calls, and it answers a READ, which
 * raises no completion there, inside fi_cq_read; so the server spins
 * through the READ phase too (on verbs the device serves a READ alone).
 * Between phases the server sleeps on its CQ's wait fd (fi_trywait, then
 * poll()), so an idle pair burns no CPU.
 *
 * The process forks the server; the two swap endpoint names, and the
 * server its buffer's address and key, through the socketpair, whose
 * hang-up also ends the server.  The cases run through Google Benchmark
 * (any --benchmark_* argument is handed to it); --direct runs them without
 * it.  Exit status: 0; 1 on a failure; 2 on bad usage or a provider
 * libfabric does not have here.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "bench_cli.h"
#include "log.h"
#include "ofi_pair.h"
#include "pair_proto.h"

#define PROG "bench_ofi"
#define CONNECT_TIMEOUT_MS 10000
#define SPIN_TIMEOUT_NS (10ull * 1000000000ull) /* a lost completion */
#define IDLE_CHECK 4096u /* empty polls between clock or hang-up checks */
#define DATA_BYTE 0xa5 /* what ofp_open fills a data buffer with */

_Static_assert(OFP_MSG_SIZE == PAIR_MSG_SIZE, "a slot holds one pair message");


struct options {
	struct bench_cli cli;
	const char *provider;
	const char *addr;
};

/* ------------------------------------------------------------ client */

struct client {
	struct ofp_endpoint ep;
	uint64_t seq;       /* last message sent */
	uint64_t sends;     /* send completions seen */
	uint64_t reads;     /* READ completions seen */
	uint64_t pongs;     /* matching PONGs received */
	unsigned long bad;  /* received messages dropped as malformed */
};

static int client_take_recv(struct client *c, const struct fi_cq_data_entry *e)
{
	const struct ofp_ctx *ctx = e->op_context;
	struct pair_msg m;

	memcpy(&m, ofp_recv_buf(&c->ep, ctx->slot), sizeof(m));
	if (pair_client_pong(&m, e->len, c->seq, &c->bad))
		c->pongs++;
	return ofp_post_recv(&c->ep, ctx->slot);
}

/* Poll the CQ once and count what it held: completions, or an error. */
static int client_progress(struct client *c)
{
	struct fi_cq_data_entry e[8];
	int n = ofp_poll(&c->ep, e, 8);

	for (int i = 0; i < n; i++) {
		const struct ofp_ctx *ctx = e[i].op_context;
		int rc = 0;

		if (!ctx)
			continue; /* none of ours: nothing posted without one */
		if (ctx->kind == OFP_CTX_SEND)
			c->sends++;
		else if (ctx->kind == OFP_CTX_READ)
			c->reads++;
		else
			rc = client_take_recv(c, &e[i]);
		if (rc)
			return rc;
	}
	return n;
}

/* Busy-poll until the counters reach the targets: the measured path. */
static int client_spin(struct client *c, uint64_t sends, uint64_t reads,
		       uint64_t pongs)
{
	uint64_t deadline = 0;
	unsigned idle = 0;

	while (c->sends < sends || c->reads < reads || c->pongs < pongs) {
		int n = client_progress(c);

		if (n < 0)
			return n;
		/* Read the clock only once in a while: it is not free. */
		if (n > 0 || ++idle % IDLE_CHECK)
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

/* The provider could not take an operation (-EAGAIN: ofi_rxm connects on
 * the first send): progress, and give up if that lasts. */
static int client_stalled(struct client *c, uint64_t *deadline)
{
	int n = client_progress(c);

	if (n < 0)
		return n;
	if (!*deadline) {
		*deadline = bench_now_ns() + SPIN_TIMEOUT_NS;
	} else if (bench_now_ns() > *deadline) {
		log_err("client: the provider took nothing for %llu s",
			SPIN_TIMEOUT_NS / 1000000000ull);
		return -ETIMEDOUT;
	}
	return 0;
}

static int client_post(struct client *c, const struct pair_msg *m, bool inject)
{
	uint64_t deadline = 0;
	int rc;

	while ((rc = ofp_post_send(&c->ep, m, sizeof(*m), inject)) == -EAGAIN) {
		rc = client_stalled(c, &deadline);
		if (rc)
			return rc;
	}
	return rc;
}

/* A control message, delivered (its send completed) on return. */
static int client_send(struct client *c, uint32_t type)
{
	struct pair_msg m = pair_msg(type, ++c->seq);
	int rc = client_post(c, &m, false);

	return rc ? rc : client_spin(c, c->sends + 1, 0, 0);
}

static int op_read(void *ctx)
{
	struct client *c = ctx;
	uint64_t deadline = 0;
	int rc;

	while ((rc = ofp_post_read(&c->ep)) == -EAGAIN) {
		rc = client_stalled(c, &deadline);
		if (rc)
			return rc;
	}
	return rc ? rc : client_spin(c, 0, c->reads + 1, 0);
}

/* One round trip.  Like perftest's inline sends, the PING is injected
 * when the provider takes 64 bytes so: no completion to wait for. */
static int op_ping(void *ctx)
{
	struct client *c = ctx;
	struct pair_msg m = pair_msg(PAIR_PING, ++c->seq);
	int rc = client_post(c, &m, true);

	return rc ? rc : client_spin(c, 0, 0, c->pongs + 1);
}

static int phase_begin(void *ctx)
{
	return client_send(ctx, PAIR_BEGIN);
}

static int phase_end(void *ctx)
{
	return client_send(ctx, PAIR_END);
}

/* The READs brought the server's bytes (the client's buffer was zeroed). */
static int read_end(void *ctx)
{
	struct client *c = ctx;
	int rc = phase_end(c);

	for (size_t i = 0; !rc && i < OFP_DATA_SIZE; i++) {
		if (c->ep.data[i] != DATA_BYTE) {
			log_err("client: byte %zu read is %#x, not %#x", i,
				c->ep.data[i], DATA_BYTE);
			rc = -EIO;
		}
	}
	return rc;
}

/* ------------------------------------------------------------ server */

struct server {
	struct ofp_endpoint ep;
	struct pair_server st;
};

static int server_pong(struct server *s)
{
	struct pair_msg pong = pair_msg(PAIR_PONG, s->st.pong_seq);
	int rc = ofp_post_send(&s->ep, &pong, sizeof(pong), true);

	s->st.pong_pending = rc == -EAGAIN;
	return rc < 0 && rc != -EAGAIN ? rc : 0;
}

static int server_take_recv(struct server *s, const struct fi_cq_data_entry *e)
{
	const struct ofp_ctx *ctx = e->op_context;
	struct pair_msg m;
	int rc;

	memcpy(&m, ofp_recv_buf(&s->ep, ctx->slot), sizeof(m));
	/* Repost first: the slot's contents are copied out. */
	rc = ofp_post_recv(&s->ep, ctx->slot);
	if (rc)
		return rc;
	return pair_server_take(&s->st, &m, e->len) ? server_pong(s) : 0;
}

/* Handle whatever the CQ holds: the number of completions, or an error. */
static int server_poll(struct server *s)
{
	struct fi_cq_data_entry e[8];
	int n = ofp_poll(&s->ep, e, 8);

	for (int i = 0; i < n; i++) {
		const struct ofp_ctx *ctx = e[i].op_context;
		int rc = 0;

		if (ctx && ctx->kind == OFP_CTX_RECV)
			rc = server_take_recv(s, &e[i]);
		if (rc)
			return rc;
	}
	return n;
}

/* Whether the forking parent is gone (its end of the socketpair hung up
 * or, against the protocol, wrote). */
static bool parent_gone(int ctl_fd)
{
	struct pollfd pfd = { .fd = ctl_fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

/* Serve until PAIR_QUIT.  Spin while a phase runs, whether or not
 * completions come (a READ raises none here); otherwise sleep on the CQ's
 * wait fd until a message comes or the parent hangs up. */
static int serve(struct server *s, int ctl_fd)
{
	unsigned idle = 0;

	while (!s->st.done) {
		int n = server_poll(s);

		if (n >= 0 && s->st.pong_pending && server_pong(s))
			return -EIO;
		if (n < 0)
			return n;
		if (n > 0 || s->st.pong_pending)
			continue;
		if (s->st.busy) {
			if (++idle % IDLE_CHECK == 0 && parent_gone(ctl_fd))
				return -ECANCELED;
			continue;
		}
		n = ofp_block(&s->ep, ctl_fd, -1);
		if (n < 0)
			return n;
	}
	return 0;
}

/* ------------------------------------------------------------ the pair */

static int write_wire(int fd, const struct ofp_wire *w, const char *role)
{
	ssize_t n = write(fd, w, sizeof(*w));

	if (n == (ssize_t)sizeof(*w))
		return 0;
	log_err("%s: cannot pass the endpoint's name on: %s", role,
		n < 0 ? strerror(errno) : "short write");
	return -EIO;
}

/* The peer's description; -ECHILD at EOF (the other end failed and has
 * said why). */
static int read_wire(int fd, struct ofp_wire *w, const char *role)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < sizeof(*w)) {
		ssize_t n;

		if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) <= 0) {
			log_err("%s: the peer did not describe its endpoint "
				"within %d ms", role, CONNECT_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		n = read(fd, (char *)w + got, sizeof(*w) - got);
		if (n == 0)
			return -ECHILD;
		if (n < 0 && errno != EINTR) {
			log_err("%s: read: %s", role, strerror(errno));
			return -EIO;
		}
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

/* ctl_fd: the socketpair to the forking parent. */
static int run_server(const struct options *o, int ctl_fd)
{
	struct server s = { .ep.role = "server" };
	struct ofp_wire mine, peer;
	int rc = ofp_open(&s.ep, o->provider, o->addr, true);

	if (!rc) {
		ofp_describe(&s.ep, &mine);
		rc = write_wire(ctl_fd, &mine, s.ep.role);
	}
	if (!rc)
		rc = read_wire(ctl_fd, &peer, s.ep.role);
	if (!rc)
		rc = ofp_set_peer(&s.ep, &peer);
	if (!rc)
		rc = serve(&s, ctl_fd);
	ofp_close(&s.ep);
	if (rc == -ECANCELED)
		log_err("server: the client went away before PAIR_QUIT");
	return rc == -ECHILD ? -ECANCELED : rc;
}

static int read_counters(void *ctx, struct bench_result *r)
{
	(void)ctx;
	return pair_floor_counters(r, 1, false);
}

static int ping_counters(void *ctx, struct bench_result *r)
{
	const struct client *c = ctx;

	return pair_floor_counters(r, 2, c->ep.inject_size >= OFP_MSG_SIZE);
}

/* The benchmarks; ctx (the client) is filled in per run. */
static const struct bench_case case_tab[] = {
	{ .name = "ofi_read_4k", .bytes = OFP_DATA_SIZE, .divisor = 1,
	  .begin = phase_begin, .op = op_read, .counters = read_counters,
	  .end = read_end,
	  .note = "fi_read 4096 B from the server, 1 outstanding, CQ "
		  "busy-polled on both sides (manual progress)" },
	{ .name = "ofi_send_64", .bytes = OFP_MSG_SIZE, .divisor = 2,
	  .begin = phase_begin, .op = op_ping, .counters = ping_counters,
	  .end = phase_end,
	  .note = "64 B message ping-pong over FI_EP_RDM, one-way = RTT/2, "
		  "CQ busy-polled on both sides" },
};

#define N_CASES (sizeof(case_tab) / sizeof(case_tab[0]))

/* Run the selected cases (through Google Benchmark unless --direct),
 * print the table under a header naming the provider, write the JSON. */
static int run_cases(const struct options *o, const struct client *c,
		     const struct bench_case *tab)
{
	char title[320], fabric[96];
	struct bench_cli cli = o->cli;

	snprintf(title, sizeof(title),
		 "%s: raw libfabric, FI_EP_RDM over %s on %s, no libdsm\n"
		 " CQ: busy-polled during measurement; the server sleeps on "
		 "its CQ's wait fd between phases; registration mode %#llx; "
		 "inject: %s",
		 PROG, ofp_provider(&c->ep), o->addr,
		 (unsigned long long)ofp_mr_mode(&c->ep),
		 c->ep.inject_size >= OFP_MSG_SIZE ? "yes" : "no");
	/* The report names the floor set after it. */
	snprintf(fabric, sizeof(fabric), "libfabric %s", ofp_provider(&c->ep));
	cli.title = title;
	cli.fabric = fabric;
	return bench_cli_run(&cli, tab, N_CASES) ? -EIO : 0;
}

/* ctl_fd: the socketpair to the server. */
static int run_client(const struct options *o, int ctl_fd)
{
	struct client c = { .ep.role = "client" };
	struct bench_case tab[N_CASES];
	struct ofp_wire mine, peer;
	int rc = read_wire(ctl_fd, &peer, c.ep.role);

	if (rc)
		return rc;
	rc = ofp_open(&c.ep, o->provider, o->addr, false);
	if (!rc)
		rc = ofp_set_peer(&c.ep, &peer);
	if (!rc) {
		ofp_describe(&c.ep, &mine);
		rc = write_wire(ctl_fd, &mine, c.ep.role);
	}
	if (rc) {
		ofp_close(&c.ep);
		return rc;
	}
	memset(c.ep.data, 0, OFP_DATA_SIZE);
	for (size_t i = 0; i < N_CASES; i++) {
		tab[i] = case_tab[i];
		tab[i].ctx = &c;
	}
	rc = run_cases(o, &c, tab);
	/* After a failure the parent ends the server instead. */
	if (!rc)
		rc = client_send(&c, PAIR_QUIT);
	ofp_close(&c.ep);
	if (!rc && c.bad)
		log_err("client: %lu malformed messages dropped", c.bad);
	return rc;
}

static int exit_status(int rc)
{
	if (rc == 0)
		return PAIR_EXIT_OK;
	if (rc == -ENOENT)
		return PAIR_EXIT_ENV; /* no such provider here */
	return PAIR_EXIT_FAIL;
}

static int server_end(const void *o, int fd)
{
	return run_server(o, fd);
}

static int client_end(const void *o, int fd)
{
	return run_client(o, fd);
}

static int run_pair(const struct options *o)
{
	return pair_run(server_end, client_end, o, exit_status);
}

/* ------------------------------------------------------------ main */

static bool known_case(const char *name)
{
	for (size_t i = 0; i < N_CASES; i++)
		if (!strcmp(name, case_tab[i].name))
			return true;
	return false;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

int main(int argc, char **argv)
{
	struct options o = {
		.provider = env_or("DSM_OFI_PROVIDER", OFP_DEFAULT_PROVIDER),
		.addr = env_or("DSM_RDMA_ADDR", OFP_DEFAULT_ADDR),
	};
	const struct bench_cli_opt opts[] = {
		{ "provider", 'P', "NAME", "libfabric provider "
		  "[$DSM_OFI_PROVIDER, else " OFP_DEFAULT_PROVIDER "]",
		  &o.provider },
		{ "addr", 'a', "IP", "address both ends listen on "
		  "[$DSM_RDMA_ADDR, else " OFP_DEFAULT_ADDR "]", &o.addr },
	};
	int rc;

	o.cli = (struct bench_cli){
		.tool = PROG, .opts = opts, .nopts = 2,
		.hint = "both ends run on libfabric (--provider, --addr): no "
			"RDMA device is needed",
	};
	log_setup(PROG, -1);
	rc = bench_cli_parse(&o.cli, argc, argv);
	if (rc)
		return rc > 0 ? PAIR_EXIT_OK : PAIR_EXIT_ENV;
	if (o.cli.only && !known_case(o.cli.only)) {
		log_err("unknown benchmark '%s'", o.cli.only);
		return PAIR_EXIT_ENV;
	}
	return run_pair(&o);
}
