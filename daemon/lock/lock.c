/* The lock manager as a module of dsmd: its table, and the node messages
 * it handles.  The transport's decoder has checked each body's length; a
 * PROBE and a RECOVERED are checked here, an OP where it is acted on
 * (master.c: ops kept for later are replayed through the same check), a
 * REPLY in owner.c.
 *
 * The messages (common/wire.h):
 *   LOCK_OP         owner -> master, routed like a page request (forwarded
 *                   on hints, parked while the resource moves); legal any
 *                   time; held while this node recovers (but REBUILD); one
 *                   naming a death not seen here yet is a death report.
 *   LOCK_REPLY      master -> owner, the answer to an op or a blocking
 *                   notification; a deadlock search's end comes from the
 *                   master where the cycle closed.  One for a lock that is
 *                   gone is late, and dropped.
 *   LOCK_PROBE      a master -> the node of an owner that blocks a search.
 *   LOCK_RECOVERED  every survivor -> every node, once per death, after
 *                   its REBUILDs for that death.
 */
#define _GNU_SOURCE
#include <string.h>

#include "lock/lock.h"
#include "modules.h"

static void on_op_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_lock_op o;

	memcpy(&o, m->body, sizeof(o));
	lock_on_op(d, from, &o); /* checked there: it is replayed too */
}

static void on_reply_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_lock_reply rp;

	memcpy(&rp, m->body, sizeof(rp));
	lock_on_reply(d, from, &rp);
}

static void on_probe_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_lock_probe pb;

	(void)from;
	memcpy(&pb, m->body, sizeof(pb));
	if (pb.origin.node >= d->cfg.nnodes || pb.hops > 4u * WIRE_MAX_NODES) {
		d->st.bad_msgs++;
		return;
	}
	lock_on_probe(d, &pb);
}

static void on_recovered_msg(struct dsmd *d, int from,
			     const struct wire_msg *m)
{
	struct wire_lock_recovered rc;

	memcpy(&rc, m->body, sizeof(rc));
	if (rc.dead >= (uint32_t)d->cfg.nnodes ||
	    (int)rc.dead == d->cfg.node) {
		d->st.bad_msgs++;
		return;
	}
	/* Its recovery waits for ours: a death it saw is ours too. */
	cluster_reported_dead(d, (int)rc.dead, from);
	lock_heard_recovered(d, from, rc.dead);
}

/* ---------------------------------------------------------------------- */

static int lock_setup(struct dsmd *d)
{
	int ret = lock_mgr_new(d);

	if (ret)
		return ret;
	home_register(d, &home_lock_kind);
	return 0;
}

static void lock_teardown(struct dsmd *d)
{
	lock_mgr_free(d); /* copes with d->lk NULL */
}

static const struct dsmd_msg lock_msgs[] = {
	{WIRE_LOCK_OP, false, on_op_msg},
	{WIRE_LOCK_REPLY, false, on_reply_msg},
	{WIRE_LOCK_PROBE, false, on_probe_msg},
	{WIRE_LOCK_RECOVERED, false, on_recovered_msg},
	{0},
};

static const struct dsmd_ipc lock_ipcs[] = {
	{WIRE_IPC_LOCK, IPC_FROM(WIRE_IPC_KIND_LOCK), false, lock_on_ipc},
	{0},
};

/* A recovery's deadline; idle resources go, a sixteenth of the table each
 * tick: all of it every 16 ticks. */
static void lock_tick(struct dsmd *d)
{
	lock_recovery_tick(d);
	lock_res_sweep(d, LK_BUCKETS / 16);
}

const struct dsmd_module lock_module = {
	.name = "lock",
	.setup = lock_setup,
	.teardown = lock_teardown,
	.peer_down = lock_peer_down,
	.client_gone = lock_client_gone,
	.tick = lock_tick,
	.msgs = lock_msgs,
	.ipcs = lock_ipcs,
};
