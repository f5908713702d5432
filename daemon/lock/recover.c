/* A node's death, and recovering from it.
 *
 * When a node dies, every master drops the dead node's locks (a PW or EX
 * holder's value block goes with it), and every survivor sends every lock
 * it holds on a resource it does not master itself (REBUILD) to the
 * resource's recovery master: the first live node from the placement's
 * home on.  Every lock, not only those whose master it knows died: a
 * resource moves with its granted locks and their owners learn of it
 * only from the next answer.  The recovery master asks every node whether
 * someone masters the resource; a live master had it all along and
 * ignores REBUILDs; if nobody does, the recovery master adopts it
 * (kind.c) and files what the survivors sent, each checked against those
 * already filed.  Then each
 * survivor tells every node it is done (RECOVERED); until a node has heard
 * that from every live node, it grants nothing and holds new requests
 * (master.c), so no grant is made from a half-rebuilt resource.  The
 * survivors' REBUILDs go out before their RECOVERED, on the same queue
 * pairs, so they arrive first.
 *
 * An operation that names a death this node has not seen yet is a death
 * report (master.c): this node declares that node dead too.
 *
 * Recovery waits for every live node's RECOVERED at most --dead-after-ms
 * (lock_recovery_tick): a node that sends none by then is alive but
 * broken, and is declared dead as any silent node is.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <stdlib.h>

#include "lock/lock.h"
#include "log.h"

bool lock_recovering(const struct dsmd *d)
{
	const struct lockmgr *lk = d->lk;
	int i;

	for (i = 0; i < d->cfg.nnodes; i++)
		if (lk->await[i])
			return true;
	return false;
}

/* Every survivor is done: grant again, then serve what was held, in the
 * order it came. */
static void end_recovery(struct dsmd *d)
{
	struct lockmgr *lk = d->lk;
	struct lpend *p, *tmp;
	struct list q;
	unsigned i;

	list_init(&q);
	list_splice_tail(&q, &lk->held);
	log_info("lock recovery done");
	for (i = 0; i < LK_BUCKETS; i++) {
		struct lres *r;

		list_for_each(r, &lk->res[i], hlink) {
			r->rebuilding = false;
			lock_grant_pass(d, r);
		}
	}
	list_for_each_safe(p, tmp, &q, link) {
		list_del(&p->link);
		lock_on_op(d, p->from, &p->op);
		free(p);
	}
}

void lock_heard_recovered(struct dsmd *d, int from, unsigned dead)
{
	struct lockmgr *lk = d->lk;
	bool was = lock_recovering(d);

	lk->reported[dead] |= lock_bit(from);
	lk->await[dead] &= ~lock_bit(from);
	if (was && !lock_recovering(d))
		end_recovery(d);
}

/* ---------------------------------------------------------------------- */
/* The phases of a death                                                  */

/* Master side: the dead node's locks go; a writer's block with them. */
static void drop_node_locks(struct dsmd *d, int node)
{
	unsigned i;

	for (i = 0; i < LK_BUCKETS; i++) {
		struct lres *r;

		list_for_each(r, &d->lk->res[i], hlink) {
			struct list *queues[3] = {&r->granted, &r->converting,
						  &r->waiting};
			struct lkb *b, *tmp;
			int q;

			for (q = 0; q < 3; q++) {
				list_for_each_safe(b, tmp, queues[q], link) {
					if (b->id.node != node)
						continue;
					if (b->grmode != LK_NONE &&
					    b->grmode >= DSM_LK_PW)
						r->lvb_valid = false;
					list_del(&b->link);
					free(b);
				}
			}
		}
	}
}

/* l's REBUILD: as this node holds it, named with the death it follows. */
static void fill_rebuild(struct dsmd *d, const struct llock *l,
			 struct wire_lock_op *o)
{
	lock_fill_op(d, l, WIRE_LOCK_REBUILD, o);
	if (l->state == LS_WAITING)
		o->grmode = LK_NONE;
	if (l->state == LS_GRANTED)
		o->rqmode = LK_NONE;
	if (l->lvb_ok)
		o->flags |= WIRE_LKF_LVB;
	o->reserved = l->rebuilt_for;
}

/* Owner side, one lock after `node` died, to the resource's recovery
 * master, named with the death (a node that has not seen it yet declares
 * it then, master.c).  That node asks who masters the resource now; if nobody
 * does, it adopts it and rebuilds it from what the survivors send.  A
 * CANCEL this node sent may have died with the master: sent again, behind
 * the REBUILD on the same path. */
static void rebuild(struct dsmd *d, struct llock *l, struct lres *r, int node,
		    int where)
{
	int to = where == d->cfg.node ? where : lock_recovery_master(d, l->key);
	struct wire_lock_op o;

	if (r && where != d->cfg.node &&
	    (where == node || l->master == node)) {
		r->h.flags = HOME_KNOWN;
		r->h.hint = (uint16_t)node; /* dead: orphaned */
	}
	/* A request or conversion under way is asked anew: an answer to it
	 * still on its way from before the death is of another incarnation
	 * of the lock (the resource may be rebuilt without it), and goes. */
	if (lock_waits(l))
		l->opseq++;
	l->rebuilt_for = (uint8_t)(node + 1);
	fill_rebuild(d, l, &o);
	node_send(d, to, WIRE_LOCK_OP, 0, &o, sizeof(o));
	if (l->cancel) {
		lock_fill_op(d, l, WIRE_LOCK_CANCEL, &o);
		o.status = l->cancel;
		o.reserved = (uint8_t)(node + 1);
		node_send(d, to, WIRE_LOCK_OP, 0, &o, sizeof(o));
	}
}

/* Owner side: every lock this node holds on a resource it does not master
 * goes to the resource's recovery master: what the dead node mastered is
 * rebuilt from them, and owners do not always know it was the master (a
 * resource moves with its granted locks, and they learn of it only from
 * the next answer).  One whose request or conversion is under way on a
 * resource this node masters goes here: the request may have been sent
 * to the dead node before the resource arrived.  A release not answered
 * yet is sent again, through the recovery master if its master is dead:
 * the resource may have moved on to a live node before the death (a
 * release twice is harmless; one that reaches a rebuilt resource finds
 * nothing and is answered). */
static void rebuild_owned(struct dsmd *d, int node)
{
	unsigned i;

	for (i = 0; i < LK_BUCKETS; i++) {
		struct llock *l, *tmp;

		list_for_each_safe(l, tmp, &d->lk->byh[i], hlink) {
			struct lres *r = lock_res_get(d, l->key, false);
			uint32_t epoch;
			int where = home_where(d, l->key, r ? &r->h : NULL,
					       &epoch);

			if (l->state == LS_UNLOCKING)
				lock_owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
			else if (where != d->cfg.node || lock_waits(l))
				rebuild(d, l, r, node, where);
		}
	}
}

/* Tell everyone this node is done; wait for the others to say so. */
static void recovery_begin(struct dsmd *d, int node)
{
	struct lockmgr *lk = d->lk;
	struct wire_lock_recovered rc = {.dead = (uint32_t)node};
	int n, me = d->cfg.node;

	/* To this node too, through its queue to itself: behind the
	 * REBUILDs it sent itself (rebuild_owned), as on every other
	 * node's queue pair.  Marked done at once, its recovery could end,
	 * and the resources it adopted be granted from, before its own locks
	 * were filed: EX was granted beside its own EX (unit.explore
	 * lock_master_dies_3). */
	for (n = 0; n < d->cfg.nnodes; n++)
		if (n == me || node_alive(d, n))
			node_send(d, n, WIRE_LOCK_RECOVERED, 0, &rc, sizeof(rc));
	lk->recovery_ms = dsmd_now_ms(d);
	lk->await[node] = node_all(d) & ~lk->reported[node] & ~lk->dead;
	for (n = 0; n < d->cfg.nnodes; n++)
		lk->await[n] &= ~lock_bit(node); /* it will not report */
}

/* The nodes whose RECOVERED is awaited past --dead-after-ms. */
static uint64_t recovery_silent(struct dsmd *d)
{
	struct lockmgr *lk = d->lk;
	uint64_t silent = 0;

	if (!lock_recovering(d) ||
	    dsmd_now_ms(d) - lk->recovery_ms < d->cfg.dead_after_ms)
		return 0;
	for (int i = 0; i < d->cfg.nnodes; i++)
		silent |= lk->await[i];
	return silent;
}

void lock_recovery_tick(struct dsmd *d)
{
	cluster_suspect_each(d, recovery_silent, "sent no lock RECOVERED");
}

void lock_peer_down(struct dsmd *d, int node)
{
	struct lockmgr *lk = d->lk;

	if (!lk || (lk->dead & lock_bit(node)))
		return;
	lk->dead |= lock_bit(node);
	drop_node_locks(d, node);
	rebuild_owned(d, node);
	recovery_begin(d, node);
	log_info("node %d died: rebuilding its lock resources", node);
}
