/* bench_xport: libdsm's own transport between two processes, over verbs
 * (transport/xport_rdma.c, measured like bench_verbs measures raw verbs) or
 * with --transport ofi over libfabric (transport/xport_ofi.c, against
 * bench_ofi), so that the transport's overhead over its floor is a ratio
 * in one run.  The cases have the same names on both:
 *
 *   xport_send_64       64-byte message ping-pong through xport_send(),
 *                       one-way = round trip / 2; both ends block in poll()
 *                       on the transport's fd between messages, as dsmd does
 *   xport_send_64_poll  the same, both ends spinning on xport_progress()
 *   xport_read_4k       4 KiB RDMA READ through xport_read(), the requester
 *                       blocking until its completion
 *   xport_read_4k_poll  the same, spinning
 *
 * (on ofi, "RDMA READ" is an fi_read).
 *
 * The process starts a server for each case (itself again, by fork and
 * exec, as node 1, with the same transport; it echoes messages and owns
 * the buffer that is read); the two swap transport addresses through a
 * socketpair.  Counters per operation (messages and bytes sent and received
 * by the client, credit-only messages included) come from the transport's
 * own counters.
 *
 * --transport verbs|ofi (default $DSM_TRANSPORT when it names one of them,
 * else verbs); --provider NAME for ofi (default $DSM_OFI_PROVIDER, else
 * the transport's, tcp;ofi_rxm).  Both ends use $DSM_RDMA_ADDR, as dsmd
 * does: on ofi, the address to listen on (default 127.0.0.1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "bench_cli.h"
#include "log.h"
#include "xport.h"

#define PAYLOAD (64 - sizeof(struct wire_hdr) - sizeof(struct wire_check_data))
#define READ_LEN 4096u
#define WAIT_MS 10000

enum { C_SEND, C_SEND_POLL, C_READ, C_READ_POLL, C_MAX };

/* The transport both ends run, from the command line (the server's comes
 * from its exec arguments). */
static const struct xport_ops *xops = &xport_rdma_ops;
static const char *provider; /* ofi: NULL for the transport's default */

static const struct {
	const char *name, *note;
	bool poll, read;
} cases[C_MAX] = {
	[C_SEND] = {"xport_send_64", "64 B message ping-pong through "
		    "xport_send, one-way = RTT/2, both ends block in poll()",
		    false, false},
	[C_SEND_POLL] = {"xport_send_64_poll", "64 B message ping-pong "
			 "through xport_send, one-way = RTT/2, both ends "
			 "spin on xport_progress", true, false},
	[C_READ] = {"xport_read_4k", "4 KiB RDMA READ through xport_read, "
		    "the requester blocks in poll()", false, true},
	[C_READ_POLL] = {"xport_read_4k_poll", "4 KiB RDMA READ through "
			 "xport_read, the requester spins on xport_progress",
			 true, true},
};

/* One end of a pair.  Event flags are set by the callback and read by
 * the same thread after xport_progress() returns. */
struct end {
	struct xport *x;
	int self;
	bool poll;
	bool connected, down, got_msg, read_done, quit;
	int read_status;
	unsigned char buf[READ_LEN] __attribute__((aligned(4096)));
	struct xport_mr mr;
	struct wire_check_ready peer_buf; /* the server's, at the client */
	bool have_peer_buf;
	unsigned char last_msg[WIRE_MSG_MAX];
	size_t last_len;
};

static void on_event(void *arg, const struct xport_event *ev)
{
	struct end *e = arg;

	switch (ev->type) {
	case XPORT_EV_CONNECTED:
		e->connected = true;
		break;
	case XPORT_EV_PEER_DOWN:
		e->down = true;
		break;
	case XPORT_EV_READ_DONE:
		e->read_done = true;
		e->read_status = ev->status;
		break;
	case XPORT_EV_MSG:
		if (ev->msg.hdr->type == WIRE_CHECK_READY &&
		    ev->msg.body_len == sizeof(e->peer_buf)) {
			memcpy(&e->peer_buf, ev->msg.body, sizeof(e->peer_buf));
			e->have_peer_buf = true;
		} else if (ev->msg.hdr->type == WIRE_CHECK_END) {
			e->quit = true;
		} else {
			e->last_len = ev->msg.body_len;
			memcpy(e->last_msg, ev->msg.body, ev->msg.body_len);
			e->got_msg = true;
		}
		break;
	default:
		break;
	}
}

/* Progress until *flag, the peer is down or has said it is done (END: on
 * ofi no disconnection follows), or WAIT_MS pass. */
static int wait_for(struct end *e, bool *flag)
{
	struct pollfd pfd = {.fd = xport_fd(e->x), .events = POLLIN};
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!*flag && !e->down && !e->quit) {
		/* Blocking, the way dsmd's loop does: arm, and sleep only if
		 * the arm's own poll found nothing. */
		int armed = e->poll ? 1 : xport_arm(e->x);

		if (armed < 0)
			return -EIO;
		if (armed == 0 && poll(&pfd, 1, WAIT_MS) == 0)
			return -ETIMEDOUT;
		if (*flag)
			break;
		if (xport_progress(e->x) < 0)
			return -EIO;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > WAIT_MS / 1000)
			return -ETIMEDOUT;
	}
	return *flag ? 0 : -ECONNRESET;
}

/* Create this end and connect it to the other through the socketpair. */
static int end_open(struct end *e, int self, bool poll, int sock)
{
	struct xport_config cfg = {
		.self = self, .nnodes = 2, .device = getenv("DSM_DEVICE"),
		.addr = getenv("DSM_RDMA_ADDR"), .provider = provider,
		.recv_depth = 32,
		.cb = on_event, .cb_arg = e,
	};
	struct xport_addr addrs[2];
	int ret;

	memset(e, 0, sizeof(*e));
	e->self = self;
	e->poll = poll;
	ret = xport_create(xops, &cfg, &e->x);
	if (ret)
		return ret;
	xport_local_addr(e->x, &addrs[self]);
	if (write(sock, &addrs[self], sizeof(addrs[0])) != sizeof(addrs[0]) ||
	    read(sock, &addrs[1 - self], sizeof(addrs[0])) != sizeof(addrs[0]))
		return -EPIPE;
	ret = xport_reg_mr(e->x, e->buf, sizeof(e->buf), XPORT_MR_REMOTE_READ,
			   &e->mr);
	if (ret == 0)
		ret = xport_connect_all(e->x, addrs);
	if (ret == 0)
		ret = wait_for(e, &e->connected);
	return ret;
}

static void end_close(struct end *e)
{
	if (!e->x)
		return;
	if (e->mr.priv)
		xport_dereg_mr(e->x, &e->mr);
	xport_destroy(e->x);
	e->x = NULL;
}

/* ---------------------------------------------------------------------- */
/* Server (node 1)                                                        */

static int serve(struct end *e)
{
	struct wire_check_ready r = {
		.addr = (uintptr_t)e->buf, .rkey = e->mr.rkey, .len = READ_LEN,
	};
	int ret;

	memset(e->buf, 0x3c, sizeof(e->buf));
	ret = xport_send(e->x, 0, WIRE_CHECK_READY, 0, &r, sizeof(r));
	while (ret == 0 && !e->quit) {
		e->got_msg = false;
		ret = wait_for(e, &e->got_msg);
		if (ret == -ETIMEDOUT && !e->down)
			ret = 0; /* idle between cases */
		if (ret == 0 && e->got_msg)
			ret = xport_send(e->x, 0, WIRE_CHECK_DATA, 0,
					 e->last_msg, e->last_len);
	}
	return e->quit ? 0 : ret;
}

static int run_server(bool poll, int sock)
{
	static struct end e;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	ret = end_open(&e, 1, poll, sock);
	if (ret == 0)
		ret = serve(&e);
	end_close(&e);
	if (ret)
		fprintf(stderr, "bench_xport server: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Client (node 0)                                                        */

struct client {
	int kind;
	struct end e;
	pid_t server;
	unsigned char msg[sizeof(struct wire_check_data) + PAYLOAD];
	unsigned long ops;
	struct wire_counters c0;
	struct xport_stats s0;
};

static int client_begin(void *ctx)
{
	struct client *c = ctx;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	c->server = fork();
	if (c->server < 0)
		return -errno;
	if (c->server == 0) {
		char fd[16];

		/* A fresh image: librdmacm and libibverbs state inherited
		 * across fork() is not usable in the child (its verbs calls
		 * fail with EACCES). */
		snprintf(fd, sizeof(fd), "%d", sv[1]);
		fcntl(sv[1], F_SETFD, 0);
		execl("/proc/self/exe", "bench_xport", "--serve-fd", fd,
		      cases[c->kind].poll ? "poll" : "block", xops->name,
		      provider ? provider : "", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	ret = end_open(&c->e, 0, cases[c->kind].poll, sv[0]);
	close(sv[0]);
	if (ret == 0)
		ret = wait_for(&c->e, &c->e.have_peer_buf);
	*(struct wire_check_data *)c->msg = (struct wire_check_data){
		.payload_len = PAYLOAD};
	c->ops = 0;
	if (ret == 0)
		ret = xport_counters(c->e.x, 1, &c->c0);
	if (ret == 0)
		ret = xport_stats(c->e.x, &c->s0);
	return ret;
}

static int op_send(void *ctx)
{
	struct client *c = ctx;
	int ret;

	c->e.got_msg = false;
	ret = xport_send(c->e.x, 1, WIRE_CHECK_DATA, c->ops, c->msg,
			 sizeof(c->msg));
	if (ret == 0)
		ret = wait_for(&c->e, &c->e.got_msg);
	c->ops++;
	return ret;
}

static int op_read(void *ctx)
{
	struct client *c = ctx;
	int ret;

	c->e.read_done = false;
	ret = xport_read(c->e.x, 1, &c->e.mr, 0, c->e.peer_buf.addr,
			 c->e.peer_buf.rkey, READ_LEN, c->ops);
	if (ret == 0)
		ret = wait_for(&c->e, &c->e.read_done);
	c->ops++;
	return ret ? ret : c->e.read_status;
}

static int client_end(void *ctx)
{
	struct client *c = ctx;
	struct wire_check_end q = {0};
	int status = 0;

	if (c->e.x && !c->e.down)
		xport_send(c->e.x, 1, WIRE_CHECK_END, 0, &q, sizeof(q));
	/* Let the END leave before the QP goes. */
	for (int i = 0; i < 100 && c->e.x && xport_progress(c->e.x) > 0; i++)
		;
	end_close(&c->e);
	if (c->server > 0 && waitpid(c->server, &status, 0) == c->server &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return -EIO;
	return 0;
}

/* Messages, READs and wake-ups per operation, from the transport's own
 * counters, read while it is still open (bench_case.counters runs before
 * end). */
static int client_counters(void *ctx, struct bench_result *r)
{
	struct client *c = ctx;
	const double n = c->ops ? (double)c->ops : 1;
	struct wire_counters w;
	struct xport_stats st;
	int ret;

	ret = xport_counters(c->e.x, 1, &w);
	if (ret == 0)
		ret = xport_stats(c->e.x, &st);
	if (ret)
		return ret;
	const struct bench_counter k[] = {
		{"msgs_sent_per_op", (double)(w.msgs_sent - c->c0.msgs_sent) / n},
		{"msgs_recv_per_op",
		 (double)(w.msgs_received - c->c0.msgs_received) / n},
		{"bytes_sent_per_op",
		 (double)(w.bytes_sent - c->c0.bytes_sent) / n},
		{"rdma_reads_per_op",
		 (double)(w.rdma_reads - c->c0.rdma_reads) / n},
		{"progress_calls_per_op",
		 (double)(st.progress_calls - c->s0.progress_calls) / n},
		{"cq_arms_per_op", (double)(st.cq_arms - c->s0.cq_arms) / n},
		{"cq_events_per_op",
		 (double)(st.cq_events - c->s0.cq_events) / n},
	};
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]) && ret == 0; i++)
		ret = bench_result_add_counter(r, k[i].name, k[i].value);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Main                                                                   */

/* "verbs" or "ofi" (xport_name()'s); NULL for anything else. */
static const struct xport_ops *ops_named(const char *name)
{
	if (name && !strcmp(name, xport_rdma_ops.name))
		return &xport_rdma_ops;
	if (name && !strcmp(name, xport_ofi_ops.name))
		return &xport_ofi_ops;
	return NULL;
}

/* --transport and --provider after bench_cli_parse, their defaults from
 * the environment dsmd reads; the title names what runs.  -EINVAL on a
 * bad name. */
static int pick_transport(const char *name, const char *prov, char *title,
			  size_t len)
{
	const char *env = getenv("DSM_TRANSPORT");

	if (!name)
		name = ops_named(env) ? env : xport_rdma_ops.name;
	xops = ops_named(name);
	if (!xops) {
		fprintf(stderr, "bench_xport: --transport must be verbs or "
			"ofi, not '%s'\n", name);
		return -EINVAL;
	}
	if (!prov)
		prov = getenv("DSM_OFI_PROVIDER");
	provider = prov && *prov ? prov : NULL;
	if (xops == &xport_rdma_ops)
		snprintf(title, len, "bench_xport: libdsm's transport "
			 "(xport_rdma), 2 processes");
	else
		snprintf(title, len, "bench_xport: libdsm's transport "
			 "(xport_ofi over %s), 2 processes",
			 provider ? provider : "tcp;ofi_rxm");
	return 0;
}

int main(int argc, char **argv)
{
	static struct client cl[C_MAX];
	static char title[160];
	const char *transport = NULL, *prov = NULL;
	const struct bench_cli_opt opts[] = {
		{"transport", 0, "NAME", "verbs or ofi [$DSM_TRANSPORT, "
		 "else verbs]", &transport},
		{"provider", 0, "NAME", "libfabric provider for ofi "
		 "[$DSM_OFI_PROVIDER, else tcp;ofi_rxm]", &prov},
	};
	struct bench_case bc[C_MAX];
	struct bench_cli o = {
		.tool = "bench_xport",
		.title = title,
		.hint = "verbs needs an RDMA device ($DSM_DEVICE, "
			"$DSM_RDMA_ADDR): run under scripts/softroce; ofi "
			"runs anywhere",
		.opts = opts, .nopts = 2,
	};
	int i, ret;

	log_setup("bench_xport", -1);
	log_set_level(LOG_WARN);
	if (argc == 6 && !strcmp(argv[1], "--serve-fd")) {
		log_set_level(LOG_ERR); /* the client leaving is no news */
		xops = ops_named(argv[4]);
		provider = *argv[5] ? argv[5] : NULL;
		if (!xops)
			return 1;
		return run_server(!strcmp(argv[3], "poll"), atoi(argv[2]));
	}
	ret = bench_cli_parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (pick_transport(transport, prov, title, sizeof(title)))
		return 2;
	for (i = 0; i < C_MAX; i++) {
		cl[i].kind = i;
		bc[i] = (struct bench_case){
			.name = cases[i].name, .note = cases[i].note,
			.bytes = cases[i].read ? READ_LEN : 64,
			.divisor = cases[i].read ? 1 : 2,
			.begin = client_begin,
			.op = cases[i].read ? op_read : op_send,
			.counters = client_counters, .end = client_end,
			.ctx = &cl[i],
		};
	}
	return bench_cli_run(&o, bc, C_MAX);
}
