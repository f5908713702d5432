/* Members: who is up, heartbeats, and declaring silent or disconnected
 * peers dead, which every module hears of (peer_down, in the module table's
 * order).  Also the transport's event callback: messages go to
 * node_dispatch(), RDMA events to the module that owns their tag. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dsmd.h"
#include "log.h"

static void signal_ready(struct dsmd *d)
{
	static const char msg[] = "ready\n";

	if (d->cfg.ready_fd < 0)
		return;
	if (write(d->cfg.ready_fd, msg, sizeof(msg) - 1) < 0)
		log_warn("writing to the ready fd: %s", strerror(errno));
	close(d->cfg.ready_fd);
	d->cfg.ready_fd = -1;
}

static void check_formed(struct dsmd *d)
{
	int i;

	if (d->formed)
		return;
	for (i = 0; i < d->cfg.nnodes; i++)
		if (d->members[i].state == WIRE_MEMBER_JOINING)
			return;
	d->formed = true;
	log_info("cluster formed: %d nodes", d->cfg.nnodes);
	signal_ready(d);
}

void cluster_start(struct dsmd *d)
{
	check_formed(d);
}

static void mark_dead(struct dsmd *d, int node, const char *why)
{
	struct member *m = &d->members[node];
	size_t i;

	if (m->state == WIRE_MEMBER_DEAD || m->state == WIRE_MEMBER_SELF)
		return;
	m->state = WIRE_MEMBER_DEAD;
	log_warn("node %d is dead: %s", node, why);
	xport_close_peer(d->x, node);
	for (i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->peer_down)
			dsmd_modules[i]->peer_down(d, node);
	d->st.nodes_dead++;
	if (!d->formed) {
		log_err("node %d failed before the cluster formed", node);
		d->stop = true;
		d->failed = true;
	}
}

void cluster_suspect(struct dsmd *d, int node, const char *what)
{
	char why[96];

	if (node < 0 || node >= d->cfg.nnodes || node == d->cfg.node)
		return;
	snprintf(why, sizeof(why), "alive, but %s for %u ms", what,
		 d->cfg.dead_after_ms);
	mark_dead(d, node, why);
}

void cluster_suspect_set(struct dsmd *d, uint64_t set, const char *what)
{
	set &= node_all(d);
	while (set) {
		int n = __builtin_ctzll(set);

		set &= set - 1;
		if (node_alive(d, n))
			cluster_suspect(d, n, what);
	}
}

void cluster_suspect_each(struct dsmd *d, uint64_t (*silent)(struct dsmd *),
			  const char *what)
{
	for (int round = 0; round < d->cfg.nnodes; round++) {
		uint64_t s = silent(d) & node_all(d) & ~(1ull << d->cfg.node);

		while (s && !node_alive(d, __builtin_ctzll(s)))
			s &= s - 1;
		if (!s)
			return;
		cluster_suspect(d, __builtin_ctzll(s), what);
	}
}

void cluster_reported_dead(struct dsmd *d, int node, int by)
{
	char why[64];

	if (node < 0 || node >= d->cfg.nnodes || node == d->cfg.node ||
	    by == node || !node_alive(d, by))
		return;
	snprintf(why, sizeof(why), "node %d reports it dead", by);
	mark_dead(d, node, why);
}

static void heard(struct dsmd *d, int node)
{
	d->members[node].last_heard_ms = dsmd_now_ms(d);
	d->members[node].heard_any = true;
}

/* The module that takes an RDMA event: by the tag bit of its immediate
 * (a WRITE that landed here) or of its cookie (our own READ or WRITE). */
static void rdma_event(struct dsmd *d, const struct xport_event *ev)
{
	bool tagged = ev->type == XPORT_EV_WRITE_IMM
			      ? ev->imm & DSMD_RDMA_IMM_TAG
			      : ev->cookie & DSMD_RDMA_COOKIE_TAG;
	const struct dsmd_module *mod = d->rdma_mod[tagged];

	if (mod)
		mod->rdma(d, ev);
}

/* A joining peer is up (once): every module hears of it first. */
static void member_up(struct dsmd *d, int node)
{
	struct member *m = &d->members[node];
	size_t i;

	if (m->state != WIRE_MEMBER_JOINING)
		return;
	m->state = WIRE_MEMBER_ALIVE;
	heard(d, node);
	log_info("node %d joined", node);
	for (i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->peer_up)
			dsmd_modules[i]->peer_up(d, node);
	check_formed(d);
}

void cluster_on_event(void *arg, const struct xport_event *ev)
{
	struct dsmd *d = arg;
	struct member *m = &d->members[ev->peer];

	switch (ev->type) {
	case XPORT_EV_CONNECTED:
		member_up(d, ev->peer);
		break;
	case XPORT_EV_PEER_DOWN:
		mark_dead(d, ev->peer, ev->reason ? ev->reason
						  : "connection lost");
		break;
	case XPORT_EV_MSG:
		/* Not a dead node's; a joining one's counts: verbs may tell
		 * the side that accepted the connection later than the peer
		 * starts sending, and what it sends first (its PAGE_SLOTS)
		 * must not be lost.  It is up for us, and gets our own first
		 * messages, when our side says so (CONNECTED). */
		if (m->state == WIRE_MEMBER_DEAD)
			break;
		heard(d, ev->peer);
		if (wire_is_coherence(ev->msg.hdr->type)) {
			/* Coherence traffic only: not heartbeats, checks or
			 * collectives. */
			d->st.msgs_received++;
			d->st.bytes_received += ev->msg.hdr->length;
		}
		node_dispatch(d, ev->peer, &ev->msg);
		break;
	case XPORT_EV_WRITE_IMM:
		if (m->state == WIRE_MEMBER_ALIVE)
			heard(d, ev->peer);
		rdma_event(d, ev);
		break;
	case XPORT_EV_READ_DONE:
	case XPORT_EV_WRITE_DONE:
		rdma_event(d, ev);
		break;
	}
}

/* Each tick: heartbeat every live peer, declare dead whoever has been
 * silent too long, and give up if the cluster has not formed in time. */
void cluster_tick(struct dsmd *d)
{
	uint64_t now = dsmd_now_ms(d);
	struct wire_heartbeat hb = {.load = d->load};
	int i;

	if (!d->formed && now - d->start_ms > d->cfg.join_timeout_ms) {
		log_err("the cluster did not form within %u ms",
			d->cfg.join_timeout_ms);
		d->stop = true;
		d->failed = true;
		return;
	}
	for (i = 0; i < d->cfg.nnodes; i++) {
		struct member *m = &d->members[i];
		char why[64];

		if (m->state != WIRE_MEMBER_ALIVE)
			continue;
		if (now - m->last_heard_ms > d->cfg.dead_after_ms) {
			snprintf(why, sizeof(why), "silent for %llu ms",
				 (unsigned long long)(now - m->last_heard_ms));
			mark_dead(d, i, why);
			continue;
		}
		if (now - d->last_hb_ms >= d->cfg.heartbeat_ms)
			xport_send(d->x, i, WIRE_HEARTBEAT, 0, &hb, sizeof(hb));
	}
	if (now - d->last_hb_ms >= d->cfg.heartbeat_ms)
		d->last_hb_ms = now;
}
