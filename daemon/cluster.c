/* Membership: who is up, heartbeats, and declaring silent or disconnected
 * peers dead.  Also the dispatcher for every transport event. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "dsmd.h"

bool cluster_peer_alive(const struct dsmd *d, int node)
{
	return node >= 0 && node < d->cfg.nnodes &&
	       d->members[node].state == WIRE_MEMBER_ALIVE;
}

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

	if (m->state == WIRE_MEMBER_DEAD || m->state == WIRE_MEMBER_SELF)
		return;
	m->state = WIRE_MEMBER_DEAD;
	log_warn("node %d is dead: %s", node, why);
	xport_close_peer(d->x, node);
	check_on_peer_down(d, node);
	home_peer_down(d, node);
	mem_peer_down(d, node);
	dir_peer_down(d, node);
	coll_peer_down(d, node);
	lock_peer_down(d, node);
	if (!d->formed) {
		log_err("node %d failed before the cluster formed", node);
		d->stop = true;
		d->failed = true;
	}
}

static void heard(struct dsmd *d, int node)
{
	d->members[node].last_heard_ms = dsmd_now_ms();
	d->members[node].heard_any = true;
}

void cluster_dispatch(struct dsmd *d, int peer, const struct wire_msg *m)
{
	switch (m->hdr->type) {
	case WIRE_HEARTBEAT:
		if (m->body_len == sizeof(struct wire_heartbeat)) {
			struct wire_heartbeat hb;

			memcpy(&hb, m->body, sizeof(hb));
			home_heard_load(d, peer, hb.load);
		}
		break;
	case WIRE_DSM_REQ:
	case WIRE_DSM_DONE:
	case WIRE_DSM_SHARED:
		dir_on_msg(d, peer, m);
		break;
	case WIRE_DSM_FWD:
	case WIRE_DSM_INV:
	case WIRE_DSM_INV_ACK:
	case WIRE_DSM_GRANT:
	case WIRE_DSM_LOST:
	case WIRE_DSM_PEER_REQ:
		mem_on_msg(d, peer, m);
		break;
	case WIRE_DIR_MIGRATE:
	case WIRE_DIR_HINT:
	case WIRE_DIR_NACK:
	case WIRE_DIR_WHO_HAS:
	case WIRE_DIR_WHO_HAS_REPLY:
	case WIRE_DIR_POLICY:
	case WIRE_DIR_POLICY_ACK:
		home_on_msg(d, peer, m);
		break;
	case WIRE_LOCK_OP:
	case WIRE_LOCK_REPLY:
	case WIRE_LOCK_PROBE:
	case WIRE_LOCK_RECOVERED:
		lock_on_msg(d, peer, m);
		break;
	case WIRE_COLL_ARRIVE:
	case WIRE_COLL_DONE:
	case WIRE_REGION_OP:
	case WIRE_REGION_REPLY:
	case WIRE_RESET:
	case WIRE_RESET_ACK:
		coll_on_msg(d, peer, m);
		break;
	case WIRE_CHECK_BEGIN:
	case WIRE_CHECK_READY:
	case WIRE_CHECK_DATA:
	case WIRE_CHECK_DATA_DONE:
	case WIRE_CHECK_WRITE_DONE:
	case WIRE_CHECK_END:
		check_on_msg(d, peer, m);
		break;
	default:
		d->bad_msgs++;
		log_once(d->proto_logged, LOG_WARN,
			 "dropped a %s message from node %d: not expected "
			 "here (logged once)", wire_type_name(m->hdr->type),
			 peer);
		break;
	}
}

void cluster_on_event(void *arg, const struct xport_event *ev)
{
	struct dsmd *d = arg;
	struct member *m = &d->members[ev->peer];

	switch (ev->type) {
	case XPORT_EV_CONNECTED:
		if (m->state == WIRE_MEMBER_JOINING) {
			m->state = WIRE_MEMBER_ALIVE;
			heard(d, ev->peer);
			log_info("node %d joined", ev->peer);
			check_formed(d);
		}
		break;
	case XPORT_EV_PEER_DOWN:
		mark_dead(d, ev->peer, ev->reason ? ev->reason
						  : "connection lost");
		break;
	case XPORT_EV_MSG:
		if (m->state != WIRE_MEMBER_ALIVE)
			break;
		heard(d, ev->peer);
		if (wire_is_coherence(ev->msg.hdr->type)) {
			/* Coherence traffic only: not heartbeats, checks or
			 * collectives. */
			d->mem.st.msgs_received++;
			d->mem.st.bytes_received += ev->msg.hdr->length;
		}
		cluster_dispatch(d, ev->peer, &ev->msg);
		break;
	case XPORT_EV_WRITE_IMM:
		if (m->state == WIRE_MEMBER_ALIVE)
			heard(d, ev->peer);
		if (ev->imm & MEM_IMM_BIT)
			mem_on_rdma(d, ev);
		else
			check_on_rdma(d, ev);
		break;
	case XPORT_EV_READ_DONE:
	case XPORT_EV_WRITE_DONE:
		if (ev->cookie & MEM_COOKIE_BIT)
			mem_on_rdma(d, ev);
		else
			check_on_rdma(d, ev);
		break;
	}
}

/* Each tick: heartbeat every live peer, declare dead whoever has been
 * silent too long, and give up if the cluster has not formed in time. */
void cluster_tick(struct dsmd *d)
{
	uint64_t now = dsmd_now_ms();
	struct wire_heartbeat hb = {.load = home_load(d)};
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
