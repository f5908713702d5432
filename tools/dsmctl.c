/* dsmctl: ask this node's dsmd for its state, or make it check its links.
 *
 *   dsmctl [-s SOCKET] status
 *   dsmctl [-s SOCKET] stats
 *   dsmctl [-s SOCKET] check [--count N] [--payload B] [--sizes 4096,1048576]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dsm.h>

#include "ipc.h"
#include "log.h"

static const char *const state_names[] = {
	[WIRE_MEMBER_SELF] = "self", [WIRE_MEMBER_JOINING] = "joining",
	[WIRE_MEMBER_ALIVE] = "alive", [WIRE_MEMBER_DEAD] = "dead",
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: dsmctl [-s SOCKET] [-t TIMEOUT_S] COMMAND\n"
"  status                 members, their state and transport counters\n"
"  stats                  this node's shared-memory counters (dsm_get_stats)\n"
"  check [--count N] [--payload BYTES] [--sizes S1,S2,...] [--live-only]\n"
"                         exchange N numbered messages with every peer and\n"
"                         RDMA READ and WRITE buffers of each size, checking\n"
"                         order and every byte (defaults: 1000, 256,\n"
"                         4096,1048576); --live-only leaves out peers\n"
"                         already known dead\n"
"  inject PEER KIND...     test hook (dsmd with DSM_TEST_HOOKS=1): send PEER\n"
"                         malformed messages, KIND 1..%d (see wire.h)\n"
"The socket defaults to $DSM_SOCKET, then %s.\n", WIRE_INJECT_MAX - 1, IPC_DEFAULT_SOCKET);
}

static int open_daemon(const char *path, int timeout_ms,
		       struct wire_ipc_hello_ok *hello)
{
	int fd = ipc_client_open(path, WIRE_IPC_KIND_CTL, 0, NULL, timeout_ms,
				 hello);

	if (fd < 0)
		fprintf(stderr, "dsmctl: cannot talk to dsmd at %s: %s\n", path,
			strerror(-fd));
	return fd;
}

/* Send a request and wait for its reply (or an IPC_RESULT). */
static int request(int fd, unsigned type, const void *body, size_t len,
		   unsigned want, int timeout_ms, char *buf, struct wire_msg *m)
{
	enum wire_error bad = WIRE_OK;
	int ret = ipc_send(fd, type, 1, body, len);

	if (ret == 0)
		ret = ipc_recv(fd, buf, WIRE_IPC_MAX, timeout_ms, m, &bad);
	if (ret == -EPROTO) {
		fprintf(stderr, "dsmctl: malformed reply from dsmd: %s\n",
			wire_error_str(bad));
		return ret;
	}
	if (ret) {
		fprintf(stderr, "dsmctl: no reply from dsmd: %s\n",
			strerror(-ret));
		return ret;
	}
	if (m->hdr->type == WIRE_IPC_RESULT) {
		struct wire_ipc_result e;

		memcpy(&e, m->body, sizeof(e));
		if (want == WIRE_IPC_RESULT && e.status == 0)
			return 0;
		fprintf(stderr, "dsmctl: dsmd refused: %s\n",
			strerror(-e.status));
		return e.status ? e.status : -EIO;
	}
	if (m->hdr->type != want) {
		fprintf(stderr, "dsmctl: unexpected reply %s\n",
			wire_type_name(m->hdr->type));
		return -EPROTO;
	}
	return 0;
}

static void print_member(const struct wire_member *m)
{
	const char *st = m->state <= WIRE_MEMBER_DEAD ? state_names[m->state]
						     : "?";
	char heard[32];

	if (m->state == WIRE_MEMBER_SELF)
		snprintf(heard, sizeof(heard), "-");
	else if (m->last_heard_ms == ~0ull)
		snprintf(heard, sizeof(heard), "never");
	else
		snprintf(heard, sizeof(heard), "%llums",
			 (unsigned long long)m->last_heard_ms);
	printf("  %4u  %-7s %8s %10llu %10llu %12llu %12llu %7llu %7llu "
	       "%7llu %5llu\n",
	       m->node, st, heard, (unsigned long long)m->c.msgs_sent,
	       (unsigned long long)m->c.msgs_received,
	       (unsigned long long)m->c.bytes_sent,
	       (unsigned long long)m->c.bytes_received,
	       (unsigned long long)m->c.rdma_reads,
	       (unsigned long long)m->c.rdma_writes,
	       (unsigned long long)m->c.credit_stalls,
	       (unsigned long long)m->c.bad_msgs);
}

static int cmd_stats(int fd, int timeout_ms)
{
	static const char *const names[] = {
		"read_faults", "write_faults", "upgrade_faults",
		"minor_faults", "zero_fills", "pages_received", "pages_sent",
		"bytes_received", "bytes_sent", "invalidations_sent",
		"invalidations_received", "downgrades", "directory_local",
		"directory_remote", "forwards", "msgs_sent", "msgs_received",
		"bad_msgs", "wp_faults", "stale_faults", "held_back",
		"lost_faults", "holder_forwards", "migrations_in",
		"migrations_out", "hint_hits", "hint_misses",
		"who_has_broadcasts", "lock_requests", "lock_remote",
		"lock_basts", "lock_deadlocks", "lock_rebuilt", "wakeups",
		"poll_hits", "direct_installs", "peer_requests",
		"peer_served", "peer_passed", "nodes_dead", "stuck_waits",
	};
	char *buf = malloc(WIRE_IPC_MAX);
	uint64_t v[sizeof(names) / sizeof(names[0])];
	struct wire_msg msg;
	size_t i;
	int ret;

	_Static_assert(sizeof(v) == sizeof(struct dsm_stats),
		       "a name for every counter of struct dsm_stats");
	if (!buf)
		return -ENOMEM;
	ret = request(fd, WIRE_IPC_STATS, NULL, 0, WIRE_IPC_STATS_REPLY,
		      timeout_ms, buf, &msg);
	if (ret == 0) {
		/* The fields come in this order at the start of the struct. */
		memcpy(v, msg.body, sizeof(v));
		for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			printf("%-24s %llu\n", names[i],
			       (unsigned long long)v[i]);
	}
	free(buf);
	return ret;
}

static int cmd_status(int fd, int timeout_ms)
{
	char *buf = malloc(WIRE_IPC_MAX);
	struct wire_status_reply r;
	struct wire_member m;
	char numa[32];
	struct wire_msg msg;
	unsigned i, alive = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = request(fd, WIRE_IPC_STATUS, NULL, 0, WIRE_IPC_STATUS_REPLY,
		      timeout_ms, buf, &msg);
	if (ret)
		goto out;
	memcpy(&r, msg.body, sizeof(r));
	r.device[sizeof(r.device) - 1] = 0;
	r.transport[sizeof(r.transport) - 1] = 0;
	if (r.numa_node >= 0)
		snprintf(numa, sizeof(numa), "NUMA node %d", r.numa_node);
	else
		snprintf(numa, sizeof(numa), "NUMA node unknown");
	/* A lone node without an RDMA device runs no fabric ("none"). */
	if (!strcmp(r.transport, "none"))
		snprintf(r.device, sizeof(r.device), "no fabric");
	printf("node %u of %u, transport %s on %s (%s), up %llu ms, "
	       "heartbeat %llu ms, dead after %llu ms\n", r.node, r.nnodes,
	       r.transport, r.device, numa,
	       (unsigned long long)r.uptime_ms,
	       (unsigned long long)r.heartbeat_ms,
	       (unsigned long long)r.dead_after_ms);
	printf("  node  state      heard  msgs_sent  msgs_recv   bytes_sent "
	       "  bytes_recv   reads  writes  stalls   bad\n");
	for (i = 0; i < r.nnodes; i++) {
		memcpy(&m, (const char *)msg.body + sizeof(r) + i * sizeof(m),
		       sizeof(m));
		print_member(&m);
		alive += m.state == WIRE_MEMBER_ALIVE ||
			 m.state == WIRE_MEMBER_SELF;
	}
	printf("members alive: %u of %u; bad messages dropped: %llu; "
	       "clients refused: %llu\n", alive, r.nnodes,
	       (unsigned long long)r.bad_msgs,
	       (unsigned long long)r.ipc_refused);
	if (r.job_bound)
		printf("job %llu", (unsigned long long)r.job);
	else
		printf("no job yet (the first process's)");
	printf("; refused: other job or key %llu, attach %llu, regions "
	       "%llu, locks %llu, checks %llu, queue overflow %llu, out of "
	       "memory %llu\n", (unsigned long long)r.refused.job,
	       (unsigned long long)r.refused.attach,
	       (unsigned long long)r.refused.regions,
	       (unsigned long long)r.refused.locks,
	       (unsigned long long)r.refused.checks,
	       (unsigned long long)r.refused.queues,
	       (unsigned long long)r.refused.nomem);
out:
	free(buf);
	return ret;
}

static int parse_sizes(const char *s, struct wire_ipc_check *req)
{
	char *copy = strdup(s), *tok, *save = NULL, *end;

	if (!copy)
		return -ENOMEM;
	req->nsizes = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned long v = strtoul(tok, &end, 0);

		if (*end || v == 0 || v > (16u << 20) || req->nsizes == 8) {
			free(copy);
			return -EINVAL;
		}
		req->sizes[req->nsizes++] = (uint32_t)v;
	}
	free(copy);
	return req->nsizes ? 0 : -EINVAL;
}

static int parse_check(int argc, char **argv, struct wire_ipc_check *req)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'c'},
		{"payload", required_argument, NULL, 'p'},
		{"sizes", required_argument, NULL, 'S'},
		{"live-only", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int o;

	*req = (struct wire_ipc_check){.count = 1000, .payload_len = 256,
				       .nsizes = 2,
				       .sizes = {4096, 1u << 20}};
	optind = 1;
	while ((o = getopt_long(argc, argv, "c:p:S:L", opts, NULL)) != -1) {
		switch (o) {
		case 'L':
			req->flags |= WIRE_CHECK_LIVE_ONLY;
			break;
		case 'c':
			req->count = (uint32_t)strtoul(optarg, &end, 0);
			if (*end)
				return -EINVAL;
			break;
		case 'p':
			req->payload_len = (uint32_t)strtoul(optarg, &end, 0);
			if (*end)
				return -EINVAL;
			break;
		case 'S':
			if (parse_sizes(optarg, req))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static int cmd_check(int fd, int argc, char **argv, int timeout_ms)
{
	char *buf = malloc(WIRE_IPC_MAX);
	struct wire_ipc_check req;
	struct wire_check_reply r;
	struct wire_check_peer p;
	struct wire_msg msg;
	unsigned i, failed = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = parse_check(argc, argv, &req);
	if (ret) {
		usage(stderr);
		goto out;
	}
	ret = request(fd, WIRE_IPC_CHECK, &req, sizeof(req),
		      WIRE_IPC_CHECK_REPLY, timeout_ms, buf, &msg);
	if (ret)
		goto out;
	memcpy(&r, msg.body, sizeof(r));
	printf("node %u check: %u messages of %u bytes to every peer\n",
	       r.node, req.count, req.payload_len);
	printf("  peer  rdma_bytes  msgs_in_order  read  write  elapsed_ms  "
	       "result\n");
	for (i = 0; i < r.npeers; i++) {
		memcpy(&p, (const char *)msg.body + sizeof(r) + i * sizeof(p),
		       sizeof(p));
		printf("  %4u  %10u  %13u  %4s  %5s  %10.1f  %s\n", p.node,
		       p.rdma_len, p.msgs_ok, p.read_ok ? "ok" : "BAD",
		       p.write_ok ? "ok" : "BAD", p.elapsed_us / 1000.0,
		       p.status ? strerror(-p.status) : "ok");
		failed += p.status != 0;
	}
	printf("check %s: %u of %u peer checks failed\n",
	       failed ? "FAILED" : "passed", failed, r.npeers);
	ret = failed ? -EIO : 0;
out:
	free(buf);
	return ret;
}

static int cmd_inject(int fd, int argc, char **argv, int timeout_ms)
{
	char *buf = malloc(WIRE_IPC_MAX);
	struct wire_ipc_inject req;
	struct wire_msg msg;
	int i, ret = 0;

	if (!buf)
		return -ENOMEM;
	if (argc < 3) {
		usage(stderr);
		ret = -EINVAL;
	}
	for (i = 2; i < argc && ret == 0; i++) {
		req.peer = (uint32_t)atoi(argv[1]);
		req.kind = (uint32_t)atoi(argv[i]);
				ret = request(fd, WIRE_IPC_INJECT, &req, sizeof(req),
			      WIRE_IPC_RESULT, timeout_ms, buf, &msg);
	}
	if (ret == 0)
		printf("injected %d malformed message(s) into node %s\n",
		       argc - 2, argv[1]);
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	const char *path = ipc_socket_path();
	struct wire_ipc_hello_ok hello;
	int timeout_ms = 600000, fd, ret, o;

	log_setup("dsmctl", -1);
	while ((o = getopt(argc, argv, "+s:t:h")) != -1) {
		switch (o) {
		case 's': path = optarg; break;
		case 't': timeout_ms = atoi(optarg) * 1000; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	fd = open_daemon(path, timeout_ms, &hello);
	if (fd < 0)
		return 1;
	if (!strcmp(argv[optind], "status")) {
		ret = cmd_status(fd, timeout_ms);
	} else if (!strcmp(argv[optind], "stats")) {
		ret = cmd_stats(fd, timeout_ms);
	} else if (!strcmp(argv[optind], "inject")) {
		ret = cmd_inject(fd, argc - optind, argv + optind, timeout_ms);
	} else if (!strcmp(argv[optind], "check")) {
		ret = cmd_check(fd, argc - optind, argv + optind, timeout_ms);
	} else {
		fprintf(stderr, "dsmctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		ret = -EINVAL;
	}
	close(fd);
	return ret ? 1 : 0;
}
