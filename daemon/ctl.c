/* What dsmctl asks of dsmd: the members and transport counters (status),
 * the node's counters (stats, also asked by processes through
 * dsm_get_stats), and, under DSM_TEST_HOOKS=1, malformed messages sent to
 * a peer on purpose (inject.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "dsmd.h"

static int reply_status(struct dsmd *d, struct client *c, uint64_t req_id)
{
	size_t len = sizeof(struct wire_status_reply) +
		     (size_t)d->cfg.nnodes * sizeof(struct wire_member);
	struct wire_status_reply *r = calloc(1, len);
	struct wire_member *m;
	uint64_t now = dsmd_now_ms(d);
	int i, ret;

	if (!r)
		return -ENOMEM;
	*r = (struct wire_status_reply){
		.node = (uint32_t)d->cfg.node,
		.nnodes = (uint32_t)d->cfg.nnodes,
		.uptime_ms = now - d->start_ms,
		.bad_msgs = d->bad_msgs, .ipc_refused = d->ipc_refused,
		.job = d->job.id, .job_bound = d->job.bound,
		.refused = d->refused,
		.heartbeat_ms = d->cfg.heartbeat_ms,
		.dead_after_ms = d->cfg.dead_after_ms,
		.numa_node = xport_numa_node(d->x),
	};
	snprintf(r->device, sizeof(r->device), "%s", xport_device(d->x));
	snprintf(r->transport, sizeof(r->transport), "%s", xport_name(d->x));
	m = (struct wire_member *)(r + 1);
	for (i = 0; i < d->cfg.nnodes; i++) {
		m[i].node = (uint32_t)i;
		m[i].state = d->members[i].state;
		m[i].last_heard_ms = d->members[i].heard_any
					     ? now - d->members[i].last_heard_ms
					     : ~0ull;
		if (i != d->cfg.node) {
			xport_counters(d->x, i, &m[i].c);
			r->bad_msgs += m[i].c.bad_msgs;
		}
	}
	ret = client_reply(c, WIRE_IPC_STATUS_REPLY, req_id, r, len);
	free(r);
	return ret;
}

static void on_status(struct dsmd *d, struct client *c,
		      const struct wire_msg *m, int *fd)
{
	(void)fd;
	if (reply_status(d, c, m->hdr->req_id))
		client_close(d, c);
}

static void on_stats(struct dsmd *d, struct client *c,
		     const struct wire_msg *m, int *fd)
{
	struct dsm_stats st = d->st;
	struct wire_counters wc;
	int i;

	(void)fd;
	st.bad_msgs += d->bad_msgs;
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node)
			continue;
		xport_counters(d->x, i, &wc);
		st.bad_msgs += wc.bad_msgs;
	}
	client_reply(c, WIRE_IPC_STATS_REPLY, m->hdr->req_id, &st, sizeof(st));
}

static void on_inject(struct dsmd *d, struct client *c,
		      const struct wire_msg *m, int *fd)
{
	struct wire_ipc_inject inj;

	(void)fd;
	memcpy(&inj, m->body, sizeof(inj));
	client_result(c, m->hdr->req_id, inject_bad_msg(d, &inj));
}

static const struct dsmd_ipc ctl_ipcs[] = {
	{WIRE_IPC_STATUS, IPC_FROM(WIRE_IPC_KIND_CTL), false, on_status},
	{WIRE_IPC_STATS, IPC_FROM(WIRE_IPC_KIND_CTL) |
			 IPC_FROM(WIRE_IPC_KIND_APP), true, on_stats},
	{WIRE_IPC_INJECT, IPC_FROM(WIRE_IPC_KIND_CTL), false, on_inject},
	{0},
};

const struct dsmd_module ctl_module = {
	.name = "ctl",
	.ipcs = ctl_ipcs,
};
