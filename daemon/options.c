/* dsmd's configuration: options, each with the environment variable a
 * launcher may set instead (an option wins), in one table.  Every value is
 * checked against its range before anything starts; a bad one is named
 * and dsmd exits 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "lock/lock.h"
#include "log.h"
#include "options.h"

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
"      --transport T       auto (verbs where an RDMA device is usable, else\n"
"                          libfabric), verbs or ofi, default auto (DSM_TRANSPORT)\n"
"      --provider NAME     libfabric provider for ofi, default tcp;ofi_rxm\n"
"                          (tcp under ofi_rxm's reliable datagrams)\n"
"                                                          (DSM_OFI_PROVIDER)\n"
"  -d, --device NAME       RDMA device                        (DSM_DEVICE)\n"
"  -a, --addr IP           IPv4 address on the RDMA device, or for ofi the\n"
"                          one to listen on (default 127.0.0.1) (DSM_RDMA_ADDR)\n"
"  -s, --socket PATH       Unix socket for clients            (DSM_SOCKET)\n"
"      --job ID            the one job served here; its processes bring the\n"
"                          key DSM_JOB_KEY gives dsmd, if any; default: the\n"
"                          first process's      (DSM_JOB, SLURM_JOB_ID)\n"
"      --allow-uid LIST    users (names or uids, comma-separated) who may\n"
"                          attach besides dsmd's own and root (DSM_ALLOW_UID)\n"
"      --allow-group LIST  groups who may attach             (DSM_ALLOW_GROUP)\n"
"      --client-queue-kb KB  replies waiting for a client that does not read,\n"
"                          at most (then it is cut off), default 4096\n"
"                                                   (DSM_CLIENT_QUEUE_KB)\n"
"      --max-clients N     connections served at once, default 1024; more\n"
"                          are refused and counted      (DSM_MAX_CLIENTS)\n"
"      --max-regions N     regions live at once (node 0), default 65536;\n"
"                          more fail with ENOSPC       (DSM_MAX_REGIONS)\n"
"      --max-named N       named regions one process may have open,\n"
"                          default 64; more fail with EMFILE (DSM_MAX_NAMED)\n"
"      --max-locks N       locks one process may hold or ask for, default\n"
"                          65536; more fail with EDQUOT  (DSM_MAX_LOCKS)\n"
"      --max-lock-queue N  locks on one resource, default 65536; more fail\n"
"                          with EDQUOT              (DSM_MAX_LOCK_QUEUE)\n"
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
"      --rendezvous-fd FD  node 0: serve the rendezvous on this listening\n"
"                          socket, inherited from a launcher that bound it\n"
"                          (its port must be the rendezvous address's)\n"
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

enum opt_kind {
	OPT_STR,     /* const char * */
	OPT_UINT,    /* unsigned, in [min, max] */
	OPT_INT,     /* int, in [min, max] */
	OPT_U32,     /* uint32_t (policy fields), in [min, max] */
	OPT_MIB,     /* uint64_t bytes, given in MiB in [min, max] */
	OPT_BASE,    /* the arena's base address (after its size) */
	OPT_PLACE,   /* uint32_t: static or first-touch */
	OPT_XPORT,   /* uint32_t: auto, verbs or ofi */
	OPT_ONOFF,   /* uint32_t: on/off or 1/0 */
	OPT_OFFON,   /* bool: on/off or 1/0, stored inverted */
};

struct opt {
	const char *name;        /* --name */
	int key;                 /* getopt's value: a letter, or 256 + index */
	const char *env;         /* DSM_..., or NULL */
	const char *what;        /* in "bad WHAT" */
	enum opt_kind kind;
	long min, max;
	size_t off;              /* in struct dsmd_config */
};

#define CFG(f) offsetof(struct dsmd_config, f)

/* In the order they are checked.  Node number and count are apart: they
 * have several variables each, and the number is checked against the
 * count. */
static const struct opt opts[] = {
	{"rendezvous", 'R', "DSM_RENDEZVOUS", NULL, OPT_STR, 0, 0, CFG(rendezvous)},
	{"transport", 0, "DSM_TRANSPORT", "--transport (auto, verbs, ofi)",
	 OPT_XPORT, 0, 0, CFG(transport)},
	{"provider", 0, "DSM_OFI_PROVIDER", NULL, OPT_STR, 0, 0, CFG(provider)},
	{"device", 'd', "DSM_DEVICE", NULL, OPT_STR, 0, 0, CFG(device)},
	{"addr", 'a', "DSM_RDMA_ADDR", NULL, OPT_STR, 0, 0, CFG(addr)},
	{"socket", 's', NULL, NULL, OPT_STR, 0, 0, CFG(socket)},
	{"allow-uid", 0, "DSM_ALLOW_UID", NULL, OPT_STR, 0, 0, CFG(allow_uid)},
	{"allow-group", 0, "DSM_ALLOW_GROUP", NULL, OPT_STR, 0, 0,
	 CFG(allow_group)},
	{"client-queue-kb", 0, "DSM_CLIENT_QUEUE_KB", "client queue (KiB)",
	 OPT_UINT, 64, 1 << 20, CFG(client_queue_kb)},
	{"max-clients", 0, "DSM_MAX_CLIENTS", "max clients", OPT_UINT, 1,
	 1 << 20, CFG(max_clients)},
	{"max-regions", 0, "DSM_MAX_REGIONS", "max regions", OPT_UINT, 1,
	 1 << 24, CFG(max_regions)},
	{"max-named", 0, "DSM_MAX_NAMED", "max named", OPT_UINT, 1, 1 << 20,
	 CFG(max_named)},
	{"max-locks", 0, "DSM_MAX_LOCKS", "max locks", OPT_UINT, 1, 1 << 24,
	 CFG(max_locks)},
	{"max-lock-queue", 0, "DSM_MAX_LOCK_QUEUE", "max lock queue", OPT_UINT,
	 1, 1 << 24, CFG(max_lock_queue)},
	{"heartbeat-ms", 0, "DSM_HEARTBEAT_MS", "heartbeat", OPT_UINT, 10,
	 600000, CFG(heartbeat_ms)},
	{"dead-after-ms", 0, "DSM_DEAD_AFTER_MS", "dead-after", OPT_UINT, 20,
	 3600000, CFG(dead_after_ms)},
	{"join-timeout-ms", 0, NULL, "join timeout", OPT_UINT, 100, 3600000,
	 CFG(join_timeout_ms)},
	{"recv-depth", 0, "DSM_RECV_DEPTH", "recv depth", OPT_UINT, 4, 1024,
	 CFG(recv_depth)},
	{"poll-us", 0, "DSM_POLL_US", "poll", OPT_UINT, 0, 1000000,
	 CFG(poll_us)},
	{"txn-poll-us", 0, "DSM_TXN_POLL_US", "txn poll", OPT_UINT, 0, 1000000,
	 CFG(txn_poll_us)},
	{"ready-fd", 0, NULL, "ready fd", OPT_INT, 0, 1 << 20, CFG(ready_fd)},
	{"rendezvous-fd", 0, NULL, "rendezvous fd", OPT_INT, 0, 1 << 20,
	 CFG(rendezvous_fd)},
	{"arena-mb", 0, "DSM_ARENA_MB", "arena size (MiB)", OPT_MIB, 1, 1 << 20,
	 CFG(arena_size)},
	{"arena-base", 0, "DSM_ARENA_BASE", "arena base", OPT_BASE, 0, 0,
	 CFG(arena_base)},
	{"hold-us", 0, "DSM_HOLD_US", "hold time", OPT_UINT, 0, 1000000,
	 CFG(hold_us)},
	{"peer-hold-us", 0, "DSM_PEER_HOLD_US", "peer hold time", OPT_UINT, 0,
	 1000000, CFG(peer_hold_us)},
	{"peer-reads", 0, "DSM_PEER_READS", "--peer-reads (on, off)", OPT_OFFON,
	 0, 0, CFG(peer_reads_off)},
	{"placement", 0, "DSM_PLACEMENT", "placement (static, first-touch)",
	 OPT_PLACE, 0, 0, CFG(policy.placement)},
	{"migrate", 0, "DSM_MIGRATE", "--migrate (on, off)", OPT_ONOFF, 0, 0,
	 CFG(policy.migrate)},
	{"migrate-share", 0, "DSM_MIGRATE_SHARE", "migrate share (%)", OPT_U32,
	 51, 100, CFG(policy.share_pct)},
	{"migrate-min", 0, "DSM_MIGRATE_MIN", "migrate minimum", OPT_U32, 1,
	 65535, CFG(policy.min_requests)},
	{"migrate-window-ms", 0, "DSM_MIGRATE_WINDOW_MS", "migrate window (ms)",
	 OPT_U32, 1, 3600000, CFG(policy.window_ms)},
	{"migrate-load", 0, "DSM_MIGRATE_LOAD", "migrate load (%)", OPT_U32, 100,
	 100000, CFG(policy.load_pct)},
	{"deadlock-ms", 0, "DSM_DEADLOCK_MS", "deadlock wait (ms)", OPT_UINT, 1,
	 3600000, CFG(deadlock_ms)},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

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

/* One of several words, by its index: the first list, or for a value
 * that starts with a digit the second. */
static int parse_word(const char *what, const char *s,
		      const char *const *words, const char *const *digits,
		      uint32_t *out)
{
	const char *const *w = digits && strchr("01", s[0]) ? digits : words;
	uint32_t i;

	for (i = 0; w[i]; i++) {
		if (!strcmp(s, w[i])) {
			*out = i;
			return 0;
		}
	}
	log_err("bad %s '%s'", what, s);
	return -EINVAL;
}

/* Set one option from its text. */
static int set_opt(struct dsmd_config *c, const struct opt *o, const char *s)
{
	static const char *const places[] = {"static", "first-touch", NULL};
	static const char *const xports[] = {"auto", "verbs", "ofi", NULL};
	static const char *const onoff[] = {"off", "on", NULL};
	static const char *const bits[] = {"0", "1", NULL};
	char *field = (char *)c + o->off;
	uint32_t w;
	long v;

	switch (o->kind) {
	case OPT_STR:
		memcpy(field, &s, sizeof(s));
		return 0;
	case OPT_BASE:
		return parse_base(s, c);
	case OPT_PLACE:
		return parse_word(o->what, s, places, NULL, (uint32_t *)field);
	case OPT_XPORT:
		return parse_word(o->what, s, xports, NULL, (uint32_t *)field);
	case OPT_ONOFF:
		return parse_word(o->what, s, onoff, bits, (uint32_t *)field);
	case OPT_OFFON:
		if (parse_word(o->what, s, onoff, bits, &w))
			return -EINVAL;
		*(bool *)field = !w;
		return 0;
	default:
		break;
	}
	if (parse_uint(o->what, s, o->min, o->max, &v))
		return -EINVAL;
	if (o->kind == OPT_INT)
		*(int *)field = (int)v;
	else if (o->kind == OPT_MIB)
		*(uint64_t *)field = (uint64_t)v << 20;
	else if (o->kind == OPT_U32)
		*(uint32_t *)field = (uint32_t)v;
	else
		*(unsigned *)field = (unsigned)v;
	return 0;
}

/* A variable's value, NULL when unset or empty. */
static const char *env_str(const char *name)
{
	const char *v = name ? getenv(name) : NULL;

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

static const char *const job_envs[] = {"DSM_JOB", "SLURM_JOB_ID", NULL};

/* The job this dsmd serves (--job, DSM_JOB or the launcher's job id):
 * a whole decimal number.  Unset: the first process's. */
static int set_job(struct dsmd_config *c, const char *s)
{
	unsigned long long v;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || *s == '+') {
		log_err("bad job id '%s' (want a decimal number)", s);
		return -EINVAL;
	}
	c->job_set = true;
	c->job = v;
	return 0;
}

static int set_node(struct dsmd_config *c, const char *node,
		    const char *nnodes)
{
	long v;

	if (!node || !nnodes) {
		log_err("node number and node count are required (-r/-n, "
			"or DSM_NODE/DSM_NNODES)");
		return -EINVAL;
	}
	if (parse_uint("node count", nnodes, 1, WIRE_MAX_NODES, &v))
		return -EINVAL;
	c->nnodes = (int)v;
	if (parse_uint("node number", node, 0, c->nnodes - 1, &v))
		return -EINVAL;
	c->node = (int)v;
	return 0;
}

/* What no single option can check. */
static int check_config(const struct dsmd_config *c)
{
	if (c->dead_after_ms < 2 * c->heartbeat_ms) {
		log_err("--dead-after-ms (%u) must be at least twice "
			"--heartbeat-ms (%u)", c->dead_after_ms,
			c->heartbeat_ms);
		return -EINVAL;
	}
	if (c->transport == DSMD_XPORT_OFI && c->device) {
		log_err("--device %s names an RDMA device, but the transport "
			"is ofi (--transport, DSM_TRANSPORT)", c->device);
		return -EINVAL;
	}
	if (c->nnodes > 1 && !c->rendezvous) {
		log_err("a rendezvous address is required for more than one "
			"node (-R host:port or DSM_RENDEZVOUS)");
		return -EINVAL;
	}
	return 0;
}

static const struct dsmd_config defaults = {
	.heartbeat_ms = 500, .dead_after_ms = 5000, .join_timeout_ms = 120000,
	.recv_depth = 32, .ready_fd = -1, .rendezvous_fd = -1,
	.arena_base = DSMD_ARENA_BASE,
	.arena_size = 1ull << 30, .hold_us = 200, .peer_hold_us = 1000,
	.policy = {.placement = DSM_PLACE_STATIC, .migrate = 1,
		   .share_pct = 60, .min_requests = 4, .window_ms = 500,
		   .load_pct = 200},
	.deadlock_ms = LOCK_DEADLOCK_MS,
	.client_queue_kb = CLIENT_OUT_MAX >> 10, .max_clients = DSMD_MAX_CLIENTS,
	.max_regions = DSMD_MAX_REGIONS, .max_named = DSMD_MAX_NAMED,
	.max_locks = DSMD_MAX_LOCKS, .max_lock_queue = DSMD_MAX_LOCK_QUEUE,
};

/* getopt_long's table from ours, plus node, count, verbose and help. */
static void long_opts(struct option *lo)
{
	static const struct option fixed[] = {
		{"node", required_argument, NULL, 'r'},
		{"rank", required_argument, NULL, 'r'},
		{"nodes", required_argument, NULL, 'n'},
		{"job", required_argument, NULL, 'J'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
	};
	size_t i, n = sizeof(fixed) / sizeof(fixed[0]);

	memcpy(lo, fixed, sizeof(fixed));
	for (i = 0; i < NOPTS; i++)
		lo[n + i] = (struct option){opts[i].name, required_argument,
					    NULL,
					    opts[i].key ? opts[i].key
							: 256 + (int)i};
	lo[n + NOPTS] = (struct option){0};
}

int dsmd_parse_args(int argc, char **argv, struct dsmd_config *c)
{
	struct option lo[NOPTS + 7];
	const char *raw[NOPTS], *node, *nnodes, *job, *hooks;
	size_t i;
	int o;

	*c = defaults;
	c->socket = ipc_socket_path();
	hooks = env_str("DSM_TEST_HOOKS");
	c->test_hooks = hooks && !strcmp(hooks, "1");
	node = env_first(node_envs);
	nnodes = env_first(size_envs);
	job = env_first(job_envs);
	c->job_key = env_str("DSM_JOB_KEY");
	for (i = 0; i < NOPTS; i++)
		raw[i] = env_str(opts[i].env);
	long_opts(lo);
	while ((o = getopt_long(argc, argv, "r:n:R:d:a:s:vh", lo, NULL)) != -1) {
		if (o == 'r') {
			node = optarg;
		} else if (o == 'n') {
			nnodes = optarg;
		} else if (o == 'J') {
			job = optarg;
		} else if (o == 'v') {
			log_set_level(LOG_DEBUG);
		} else if (o == 'h') {
			usage(stdout);
			exit(0);
		} else if (o >= 256 && o < 256 + (int)NOPTS) {
			raw[o - 256] = optarg;
		} else {
			for (i = 0; i < NOPTS && opts[i].key != o; i++)
				;
			if (i == NOPTS || o == '?') {
				usage(stderr);
				return -EINVAL;
			}
			raw[i] = optarg;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (set_node(c, node, nnodes) || set_job(c, job))
		return -EINVAL;
	for (i = 0; i < NOPTS; i++)
		if (raw[i] && set_opt(c, &opts[i], raw[i]))
			return -EINVAL;
	return check_config(c);
}
