/* Deadlock searches.
 *
 * A lock that has waited --deadlock-ms starts a search (its timer, in
 * owner.c): the master of its resource names the owners whose locks block
 * it (granted or converting in an incompatible mode, or queued ahead of
 * it), and the search visits each owner's node, which passes it on to the
 * masters of every lock that owner waits for.  When the search reaches the
 * owner it started from, its lock closes a cycle and fails with -EDEADLK.
 * A search only visits owners whose number ((node << 32) | connection) is
 * smaller than its originator's, so of the owners on a cycle only the
 * largest finds it: exactly one victim.
 *
 * Each owner passes a search on once (edge chasing): it remembers, per
 * origin, the newest search it passed on, and drops that one again and
 * any older one.  So a search crosses each owner once however many paths
 * lead there, and a cycle that is not the originator's does not keep it
 * going round.  An origin's entry goes once it is older than a search can
 * live (its hop limit at one deadlock period a hop is far more than any
 * search takes; a search of a forgotten origin is only passed on again),
 * and at most LK_SEEN_MAX are kept per owner (the oldest goes first).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"

/* A search from o->origin found x blocking the lock it is at: x's owner is
 * the origin's (a cycle: tell the origin), or, if smaller, is visited. */
static void visit(struct dsmd *d, const struct wire_lock_op *o,
		  const struct lkb *x)
{
	struct wire_lock_probe pb = {.origin = o->origin, .seq = o->seq,
				     .hops = o->hops + 1,
				     .target = x->id.owner};
	uint64_t rank = lock_owner_rank(&x->id);

	if (rank == lock_owner_rank(&o->origin)) {
		struct wire_lock_reply rp = {.id = o->origin,
					     .kind = WIRE_LKR_DEADLOCK,
					     .seq = o->seq};

		node_send(d, o->origin.node, WIRE_LOCK_REPLY, 0, &rp,
			  sizeof(rp));
	} else if (rank < lock_owner_rank(&o->origin)) {
		node_send(d, x->id.node, WIRE_LOCK_PROBE, 0, &pb, sizeof(pb));
	}
}

/* At the master: who blocks the lock o names.  The owners of granted or
 * converting locks in a mode incompatible with what it asks, and of the
 * locks queued ahead of it (conversions go first, each queue in order). */
void lock_search(struct dsmd *d, struct lres *r, const struct wire_lock_op *o)
{
	struct lkb *b = lock_find_in(&r->converting, &o->id), *x;
	bool converting = b != NULL, ahead = true;

	if (!b)
		b = lock_find_in(&r->waiting, &o->id);
	if (!b || o->hops > 4u * WIRE_MAX_NODES)
		return;
	list_for_each(x, &r->granted, link)
		if (!lock_compatible(x->grmode, b->rqmode))
			visit(d, o, x);
	list_for_each(x, &r->converting, link) {
		if (x == b) {
			ahead = false; /* the conversions after b are behind */
			continue;
		}
		if (!converting || ahead ||
		    !lock_compatible(x->grmode, b->rqmode))
			visit(d, o, x);
	}
	if (converting)
		return;
	list_for_each(x, &r->waiting, link) {
		if (x == b)
			break;
		visit(d, o, x);
	}
}

/* Whether owner lc passes search (origin, seq) on: the first time only,
 * and never an origin's search older than one it passed on. */
static bool first_pass(struct dsmd *d, struct lclient *lc,
		       const struct wire_lock_id *origin, uint32_t seq)
{
	uint64_t now = dsmd_now_ms(d), life = 8ull * (d->lk->deadlock_ms ?
						   d->lk->deadlock_ms :
						   LOCK_DEADLOCK_MS);
	unsigned i, oldest = 0;

	for (i = 0; i < lc->nseen; i++) {
		struct lseen *e = &lc->seen[i];

		if (lock_same_lock(&e->origin, origin)) {
			if ((int32_t)(seq - e->seq) <= 0)
				return false;
			e->seq = seq;
			e->at_ms = now;
			return true;
		}
		if (now - e->at_ms > life) {
			*e = lc->seen[--lc->nseen]; /* gone: see this slot again */
			i--;
			continue;
		}
		if (e->at_ms < lc->seen[oldest].at_ms)
			oldest = i;
	}
	if (lc->nseen == lc->seen_cap && lc->seen_cap < LK_SEEN_MAX) {
		unsigned cap = lc->seen_cap ? 2 * lc->seen_cap : 8;
		struct lseen *n = realloc(lc->seen, cap * sizeof(*n));

		if (n) {
			lc->seen = n;
			lc->seen_cap = cap;
		}
	}
	if (lc->nseen < lc->seen_cap)
		i = lc->nseen++;
	else if (lc->nseen)
		i = oldest; /* full (or out of memory): the oldest goes */
	else
		return true; /* nothing to remember it in: passed on */
	lc->seen[i] = (struct lseen){.origin = *origin, .seq = seq,
				     .at_ms = now};
	return true;
}

/* A search reached an owner of this node: pass it on to the masters of
 * every lock that owner waits for. */
void lock_on_probe(struct dsmd *d, const struct wire_lock_probe *pb)
{
	struct lclient *lc = lock_client_find(d, pb->target);
	struct llock *l;

	if (!lc || !first_pass(d, lc, &pb->origin, pb->seq))
		return;
	list_for_each(l, &lc->locks, olink) {
		struct wire_lock_op o;

		if (!lock_waits(l))
			continue;
		lock_fill_op(d, l, WIRE_LOCK_SEARCH, &o);
		o.origin = pb->origin;
		o.seq = pb->seq;
		o.hops = pb->hops;
		lock_send_op(d, &o);
	}
}

/* l has waited deadlock_ms more: a new search, from its own master. */
void lock_search_start(struct dsmd *d, struct llock *l, uint64_t now_ms)
{
	struct wire_lock_op o;

	l->seq++;
	l->search_ms = now_ms + d->lk->deadlock_ms;
	lock_fill_op(d, l, WIRE_LOCK_SEARCH, &o);
	o.origin = o.id;
	o.seq = l->seq;
	lock_send_op(d, &o);
}
