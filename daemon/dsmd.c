/* dsmd: the per-node daemon.  Parses its configuration (options, or the
 * environment a launcher sets), joins the cluster through the rendezvous,
 * connects the full mesh, then runs the event loop until SIGTERM/SIGINT. */
#define _GNU_SOURCE
#include "dsmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "kver.h"
#include "lock/lock.h"
#include "log.h"
#include "rendezvous.h"

/* Where the arena sits in every process (32 TiB): above the heap and
 * below where the kernel places mmaps and libraries even with the most
 * address randomisation (47-bit user space less 16 TiB), clear of
 * AddressSanitizer's shadow and of its allocator (0x600000000000, 4 TiB).
 * --arena-base moves it. */
#define DSMD_ARENA_BASE 0x200000000000ull

static void usage(FILE *f)
{
	fprintf(f,
"usage: dsmd [options]\n"
"  -r, --node N            this node's number, 0..nodes-1     (DSM_NODE)\n"
"  -n, --nodes N           nodes in the cluster               (DSM_NNODES)\n"
"  -R, --rendezvous H:P    node 0's rendezvous address        (DSM_RENDEZVOUS)\n"
"  -d, --device NAME       RDMA device                        (DSM_DEVICE)\n"
"  -a, --addr IP           IPv4 address on the RDMA device    (DSM_RDMA_ADDR)\n"
"  -s, --socket PATH       Unix socket for clients            (DSM_SOCKET)\n"
"      --heartbeat-ms MS   heartbeat period, default 500      (DSM_HEARTBEAT_MS)\n"
"      --dead-after-ms MS  silence before a peer is dead, default 5000\n"
"                                                             (DSM_DEAD_AFTER_MS)\n"
"      --join-timeout-ms MS  time to form the cluster, default 120000\n"
"      --recv-depth N      receive credits per peer, default 32 (DSM_RECV_DEPTH)\n"
"      --poll-us US        busy-poll the CQ before blocking, default 0\n"
"                                                             (DSM_POLL_US)\n"
"      --txn-poll-us US    while a fault of this node waits for the network,\n"
"                          poll instead of sleeping until nothing has come\n"
"                          for US; default 0 (sleep: see docs/architecture.md)\n"
"                                                             (DSM_TXN_POLL_US)\n"
"      --ready-fd FD       write \"ready\" to FD once the mesh is up\n"
"      --arena-mb MB       size of the shared arena, default 1024 (DSM_ARENA_MB)\n"
"      --arena-base ADDR   its address in every process, default 0x200000000000\n"
"                                                             (DSM_ARENA_BASE)\n"
"      --hold-us US        keep a page granted to a fault at least this long\n"
"                          before giving it up, default 200     (DSM_HOLD_US)\n"
"      --peer-reads on|off a read miss asks the node last heard to write the\n"
"                          page before the master, default on (DSM_PEER_READS)\n"
"      --peer-hold-us US   give a page to such a reader only this long after\n"
"                          it was granted, default 1000   (DSM_PEER_HOLD_US)\n"
"Where directory entries live (dsm_set_policy overrides them per range):\n"
"      --placement P       static (page i at node i %% nodes) or first-touch,\n"
"                          default static                   (DSM_PLACEMENT)\n"
"      --migrate on|off    move an entry to the node that uses it most,\n"
"                          default on                       (DSM_MIGRATE)\n"
"      --migrate-share PCT share of recent requests that moves it, 51..100,\n"
"                          default 60                 (DSM_MIGRATE_SHARE)\n"
"      --migrate-min N     and at least this many, default 4 (DSM_MIGRATE_MIN)\n"
"      --migrate-window-ms MS  counts halve every MS; an entry stays MS\n"
"                          where it arrived, default 500\n"
"                                                 (DSM_MIGRATE_WINDOW_MS)\n"
"      --migrate-load PCT  never to a node mastering over PCT %% of its fair\n"
"                          share of busy entries, default 200 (DSM_MIGRATE_LOAD)\n"
"Locks:\n"
"      --deadlock-ms MS    a lock request waits this long before a deadlock\n"
"                          search starts, default 1000    (DSM_DEADLOCK_MS)\n"
"  -v, --verbose           debug logging\n"
"The node number and count fall back to SLURM_PROCID/SLURM_NTASKS,\n"
"OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE and PMI_RANK/PMI_SIZE.\n");
}

/* Parse a whole decimal number in [min, max]. */
static int parse_uint(const char *what, const char *s, long min, long max,
		      long *out)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < min || v > max) {
		log_err("bad %s '%s' (want %ld..%ld)", what, s ? s : "", min,
			max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}



/* The arena's address: page aligned, and the whole arena below the top of
 * 47-bit user space. */
static int parse_base(const char *s, struct dsmd_config *c)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (!*s || *end || errno || v == 0 || (v & 0xfff) ||
	    v >= (1ull << 47) || c->arena_size > (1ull << 47) - v) {
		log_err("bad arena base '%s' (want a page-aligned address "
			"with the arena below 0x800000000000)", s);
		return -EINVAL;
	}
	c->arena_base = v;
	return 0;
}

/* A variable's value, NULL when unset or empty. */
static const char *env_str(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The first of several variables that is set and not empty. */
static const char *env_first(const char *const *names)
{
	const char *v = NULL;

	for (; *names && !v; names++)
		v = env_str(*names);
	return v;
}

static const char *const node_envs[] = {"DSM_NODE", "SLURM_PROCID",
					"OMPI_COMM_WORLD_RANK", "PMI_RANK",
					NULL};
static const char *const size_envs[] = {"DSM_NNODES", "SLURM_NTASKS",
					"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
					NULL};

struct raw_opts {
	const char *node, *nnodes, *hb, *dead, *join, *depth, *poll, *ready;
	const char *txn_poll;
	const char *arena, *hold, *base;
	const char *placement, *migrate, *share, *min, *window, *load;
	const char *deadlock, *peer, *peer_hold;
};

static void env_defaults(struct dsmd_config *c, struct raw_opts *r)
{
	const char *hooks = env_str("DSM_TEST_HOOKS");

	r->node = env_first(node_envs);
	r->nnodes = env_first(size_envs);
	r->hb = env_str("DSM_HEARTBEAT_MS");
	r->dead = env_str("DSM_DEAD_AFTER_MS");
	r->depth = env_str("DSM_RECV_DEPTH");
	r->poll = env_str("DSM_POLL_US");
	r->txn_poll = env_str("DSM_TXN_POLL_US");
	r->arena = env_str("DSM_ARENA_MB");
	r->base = env_str("DSM_ARENA_BASE");
	r->hold = env_str("DSM_HOLD_US");
	r->placement = env_str("DSM_PLACEMENT");
	r->migrate = env_str("DSM_MIGRATE");
	r->share = env_str("DSM_MIGRATE_SHARE");
	r->min = env_str("DSM_MIGRATE_MIN");
	r->window = env_str("DSM_MIGRATE_WINDOW_MS");
	r->load = env_str("DSM_MIGRATE_LOAD");
	r->deadlock = env_str("DSM_DEADLOCK_MS");
	r->peer = env_str("DSM_PEER_READS");
	r->peer_hold = env_str("DSM_PEER_HOLD_US");
	c->rendezvous = getenv("DSM_RENDEZVOUS");
	c->device = env_str("DSM_DEVICE");
	c->addr = env_str("DSM_RDMA_ADDR");
	c->socket = ipc_socket_path();
	c->test_hooks = hooks && !strcmp(hooks, "1");
}

/* One of several words, by its index. */
static int parse_word(const char *what, const char *s,
		      const char *const *words, uint32_t *out)
{
	uint32_t i;

	for (i = 0; words[i]; i++) {
		if (!strcmp(s, words[i])) {
			*out = i;
			return 0;
		}
	}
	log_err("bad %s '%s'", what, s);
	return -EINVAL;
}

static int parse_policy_num(const char *what, const char *s, long min,
			    long max, uint32_t *out)
{
	long v;

	if (!s)
		return 0;
	if (parse_uint(what, s, min, max, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_policy(struct wire_policy *out, const struct raw_opts *r)
{
	static const char *const places[] = {"static", "first-touch", NULL};
	static const char *const onoff[] = {"off", "on", NULL};
	static const char *const bits[] = {"0", "1", NULL};
	struct dsm_policy p = {.placement = out->placement,
			       .migrate = out->migrate,
			       .share_pct = out->share_pct,
			       .min_requests = out->min_requests,
			       .window_ms = out->window_ms,
			       .load_pct = out->load_pct};

	if (r->placement &&
	    parse_word("placement (static, first-touch)", r->placement,
		       places, &p.placement))
		return -EINVAL;
	if (r->migrate && parse_word("--migrate (on, off)", r->migrate,
				     strchr("01", r->migrate[0]) ? bits
								 : onoff,
				     &p.migrate))
		return -EINVAL;
	if (parse_policy_num("migrate share (%)", r->share, 51, 100,
			     &p.share_pct) ||
	    parse_policy_num("migrate minimum", r->min, 1, 65535,
			     &p.min_requests) ||
	    parse_policy_num("migrate window (ms)", r->window, 1, 3600000,
			     &p.window_ms) ||
	    parse_policy_num("migrate load (%)", r->load, 100, 100000,
			     &p.load_pct))
		return -EINVAL;
	*out = (struct wire_policy){.placement = p.placement,
				    .migrate = p.migrate,
				    .share_pct = p.share_pct,
				    .min_requests = p.min_requests,
				    .window_ms = p.window_ms,
				    .load_pct = p.load_pct};
	return 0;
}

static int finish_config(struct dsmd_config *c, const struct raw_opts *r)
{
	long v;

	if (!r->node || !r->nnodes) {
		log_err("node number and node count are required (-r/-n, "
			"or DSM_NODE/DSM_NNODES)");
		return -EINVAL;
	}
	if (parse_uint("node count", r->nnodes, 1, WIRE_MAX_NODES, &v))
		return -EINVAL;
	c->nnodes = (int)v;
	if (parse_uint("node number", r->node, 0, c->nnodes - 1, &v))
		return -EINVAL;
	c->node = (int)v;
	if (r->hb && parse_uint("heartbeat", r->hb, 10, 600000, &v) == 0)
		c->heartbeat_ms = (unsigned)v;
	else if (r->hb)
		return -EINVAL;
	if (r->dead && parse_uint("dead-after", r->dead, 20, 3600000, &v) == 0)
		c->dead_after_ms = (unsigned)v;
	else if (r->dead)
		return -EINVAL;
	if (r->join && parse_uint("join timeout", r->join, 100, 3600000, &v))
		return -EINVAL;
	if (r->join)
		c->join_timeout_ms = (unsigned)v;
	if (r->depth && parse_uint("recv depth", r->depth, 4, 1024, &v))
		return -EINVAL;
	if (r->depth)
		c->recv_depth = (unsigned)v;
	if (r->poll && parse_uint("poll", r->poll, 0, 1000000, &v))
		return -EINVAL;
	if (r->poll)
		c->poll_us = (unsigned)v;
	if (r->txn_poll && parse_uint("txn poll", r->txn_poll, 0, 1000000,
				      &v))
		return -EINVAL;
	if (r->txn_poll)
		c->txn_poll_us = (unsigned)v;
	if (r->ready && parse_uint("ready fd", r->ready, 0, 1 << 20, &v))
		return -EINVAL;
	if (r->ready)
		c->ready_fd = (int)v;
	if (r->arena && parse_uint("arena size (MiB)", r->arena, 1,
				   1 << 20, &v))
		return -EINVAL;
	if (r->arena)
		c->arena_size = (uint64_t)v << 20;
	if (r->base && parse_base(r->base, c))
		return -EINVAL;
	if (r->hold && parse_uint("hold time", r->hold, 0, 1000000, &v))
		return -EINVAL;
	if (r->hold)
		c->hold_us = (unsigned)v;
	if (r->peer_hold && parse_uint("peer hold time", r->peer_hold, 0,
				       1000000, &v))
		return -EINVAL;
	if (r->peer_hold)
		c->peer_hold_us = (unsigned)v;
	if (r->peer) {
		static const char *const onoff[] = {"off", "on", NULL};
		static const char *const bits[] = {"0", "1", NULL};
		uint32_t on;

		if (parse_word("--peer-reads (on, off)", r->peer,
			       strchr("01", r->peer[0]) ? bits : onoff, &on))
			return -EINVAL;
		c->peer_reads_off = !on;
	}
	if (parse_policy(&c->policy, r))
		return -EINVAL;
	if (r->deadlock && parse_uint("deadlock wait (ms)", r->deadlock, 1,
				      3600000, &v))
		return -EINVAL;
	if (r->deadlock)
		c->deadlock_ms = (unsigned)v;
	if (c->dead_after_ms < 2 * c->heartbeat_ms) {
		log_err("--dead-after-ms (%u) must be at least twice "
			"--heartbeat-ms (%u)", c->dead_after_ms,
			c->heartbeat_ms);
		return -EINVAL;
	}
	if (c->nnodes > 1 && !c->rendezvous) {
		log_err("a rendezvous address is required for more than one "
			"node (-R host:port or DSM_RENDEZVOUS)");
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct dsmd_config *c)
{
	enum { O_HB = 256, O_DEAD, O_JOIN, O_DEPTH, O_POLL, O_READY, O_ARENA,
	       O_HOLD, O_BASE, O_PLACE, O_MIGRATE, O_SHARE, O_MIN, O_WINDOW,
	       O_LOAD, O_DEADLOCK, O_TXN_POLL, O_PEER, O_PEER_HOLD };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'r'},
		{"rank", required_argument, NULL, 'r'},
		{"nodes", required_argument, NULL, 'n'},
		{"rendezvous", required_argument, NULL, 'R'},
		{"device", required_argument, NULL, 'd'},
		{"addr", required_argument, NULL, 'a'},
		{"socket", required_argument, NULL, 's'},
		{"heartbeat-ms", required_argument, NULL, O_HB},
		{"dead-after-ms", required_argument, NULL, O_DEAD},
		{"join-timeout-ms", required_argument, NULL, O_JOIN},
		{"recv-depth", required_argument, NULL, O_DEPTH},
		{"poll-us", required_argument, NULL, O_POLL},
		{"txn-poll-us", required_argument, NULL, O_TXN_POLL},
		{"ready-fd", required_argument, NULL, O_READY},
		{"arena-mb", required_argument, NULL, O_ARENA},
		{"hold-us", required_argument, NULL, O_HOLD},
		{"peer-reads", required_argument, NULL, O_PEER},
		{"peer-hold-us", required_argument, NULL, O_PEER_HOLD},
		{"arena-base", required_argument, NULL, O_BASE},
		{"placement", required_argument, NULL, O_PLACE},
		{"migrate", required_argument, NULL, O_MIGRATE},
		{"migrate-share", required_argument, NULL, O_SHARE},
		{"migrate-min", required_argument, NULL, O_MIN},
		{"migrate-window-ms", required_argument, NULL, O_WINDOW},
		{"migrate-load", required_argument, NULL, O_LOAD},
		{"deadlock-ms", required_argument, NULL, O_DEADLOCK},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct raw_opts r = {0};
	int o;

	*c = (struct dsmd_config){.heartbeat_ms = 500, .dead_after_ms = 5000,
				  .join_timeout_ms = 120000,
				  .recv_depth = 32, .ready_fd = -1,
				  .arena_base = DSMD_ARENA_BASE,
				  .arena_size = 1ull << 30, .hold_us = 200,
				  .peer_hold_us = 1000,
				  .policy = {.placement = DSM_PLACE_STATIC,
					     .migrate = 1, .share_pct = 60,
					     .min_requests = 4,
					     .window_ms = 500,
					     .load_pct = 200},
				  .deadlock_ms = LOCK_DEADLOCK_MS};
	env_defaults(c, &r);
	while ((o = getopt_long(argc, argv, "r:n:R:d:a:s:vh", opts, NULL)) !=
	       -1) {
		switch (o) {
		case 'r': r.node = optarg; break;
		case 'n': r.nnodes = optarg; break;
		case 'R': c->rendezvous = optarg; break;
		case 'd': c->device = optarg; break;
		case 'a': c->addr = optarg; break;
		case 's': c->socket = optarg; break;
		case O_HB: r.hb = optarg; break;
		case O_DEAD: r.dead = optarg; break;
		case O_JOIN: r.join = optarg; break;
		case O_DEPTH: r.depth = optarg; break;
		case O_POLL: r.poll = optarg; break;
		case O_TXN_POLL: r.txn_poll = optarg; break;
		case O_READY: r.ready = optarg; break;
		case O_ARENA: r.arena = optarg; break;
		case O_HOLD: r.hold = optarg; break;
		case O_PEER: r.peer = optarg; break;
		case O_PEER_HOLD: r.peer_hold = optarg; break;
		case O_BASE: r.base = optarg; break;
		case O_PLACE: r.placement = optarg; break;
		case O_MIGRATE: r.migrate = optarg; break;
		case O_SHARE: r.share = optarg; break;
		case O_MIN: r.min = optarg; break;
		case O_WINDOW: r.window = optarg; break;
		case O_LOAD: r.load = optarg; break;
		case O_DEADLOCK: r.deadlock = optarg; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return finish_config(c, &r);
}

static int setup_transport(struct dsmd *d)
{
	struct xport_config xc = {
		.self = d->cfg.node, .nnodes = d->cfg.nnodes,
		.device = d->cfg.device, .addr = d->cfg.addr,
		.recv_depth = d->cfg.recv_depth, .poll_us = d->cfg.poll_us,
		.cb = cluster_on_event, .cb_arg = d,
	};
	struct xport_addr mine, all[WIRE_MAX_NODES];
	int ret;

	ret = xport_create(&xport_rdma_ops, &xc, &d->x);
	if (ret) {
		log_err("cannot start the RDMA transport: %s", strerror(-ret));
		return ret;
	}
	xport_local_addr(d->x, &mine);
	log_info("node %d of %d on %s, transport at %s:%u", d->cfg.node,
		 d->cfg.nnodes, xport_device(d->x),
		 inet_ntoa((struct in_addr){mine.ip}), ntohs(mine.port));
	ret = rdv_exchange(d->cfg.rendezvous, d->cfg.node, d->cfg.nnodes,
			   &mine, all, d->cfg.join_timeout_ms);
	if (ret)
		return ret;
	return xport_connect_all(d->x, all);
}

static void on_xport(struct dsmd *d, struct watch *w, uint32_t events)
{
	int ret = xport_progress(d->x);

	(void)w;
	(void)events;
	if (ret < 0) {
		log_err("transport: %s", strerror(-ret));
		d->stop = true;
		d->failed = true;
	}
}

static int setup(struct dsmd *d)
{
	int ret;

	ret = dsmd_loop_setup(d);
	if (ret) {
		log_err("timer/signal setup: %s", strerror(-ret));
		return ret;
	}
	ret = client_listen(d);
	if (ret)
		return ret;
	ret = setup_transport(d);
	if (ret)
		return ret;
	ret = dsmd_modules_setup(d);
	if (ret)
		return ret;
	return watch_add(d, &d->xport_w, xport_fd(d->x), EPOLLIN, on_xport);
}

static void teardown(struct dsmd *d)
{
	client_close_all(d);
	dsmd_modules_teardown(d);
	if (d->x)
		xport_destroy(d->x);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->cfg.socket);
	}
	dsmd_fini(d);
}

/* Linux 6.4 or later, or a clear refusal before anything starts. */
static bool kernel_refused(void)
{
	char why[160];

	if (kver_check(why, sizeof(why)) == 0)
		return false;
	log_err("%s", why);
	return true;
}

int main(int argc, char **argv)
{
	static struct dsmd d;
	int ret;

	log_setup("dsmd", -1);
	if (parse_args(argc, argv, &d.cfg))
		return 2;
	log_setup("dsmd", d.cfg.node);
	if (kernel_refused())
		return 2;
	ret = dsmd_init(&d, &clock_monotonic);
	if (ret == 0)
		ret = setup(&d);
	if (ret == 0)
		ret = dsmd_run(&d);
	if (ret == 0 && d.failed)
		ret = -EIO;
	teardown(&d);
	log_info("exiting%s", ret ? " after an error" : "");
	return ret ? 1 : 0;
}
