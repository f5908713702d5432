/* The master side: a resource's queues, and the operations that reach it.
 *
 * A resource (struct lres, a directory entry of kind WIRE_ENTRY_LOCK)
 * keeps granted, converting and waiting queues of lock blocks (struct
 * lkb).  A converting lock keeps its granted mode until the conversion is
 * granted.  Grants go in order: the converting queue first, each in turn
 * while the head is compatible with every granted mode, then the waiting
 * queue the same way once no conversion waits.  So a conversion that can
 * be granted is never starved by new requests, and a request is never
 * overtaken by a later one.
 *
 * An operation is routed like a page request (home.h): served here if this
 * node masters the resource, parked while it is on its way here, passed on
 * otherwise.  One that names a death this node has not seen yet is a death
 * report (this node declares it too), and while recovering (recover.c)
 * everything but REBUILD is held.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"
#include "log.h"

/* `seq`: the operation answered (wire_lock_op.seq). */
static void reply(struct dsmd *d, const struct lres *r,
		  const struct wire_lock_id *id, uint32_t seq, unsigned kind,
		  int status, unsigned mode, bool with_lvb)
{
	struct wire_lock_reply rp = {.key = r->key, .id = *id, .kind = kind,
				     .status = status, .mode = (uint8_t)mode,
				     .epoch = r->h.epoch, .seq = seq};

	if (with_lvb) {
		rp.flags = WIRE_LKR_LVB | (r->lvb_valid ? 0 : WIRE_LKR_LVB_BAD);
		memcpy(rp.lvb, r->lvb, sizeof(rp.lvb));
	}
	node_send(d, id->node, WIRE_LOCK_REPLY, 0, &rp, sizeof(rp));
}

/* ---------------------------------------------------------------------- */
/* Queues                                                                 */

struct lkb *lock_find_in(struct list *q, const struct wire_lock_id *id)
{
	struct lkb *b;

	list_for_each(b, q, link)
		if (lock_same_lock(&b->id, id))
			return b;
	return NULL;
}

/* The lock id names in any of the resource's queues, or NULL. */
static struct lkb *find_any(struct lres *r, const struct wire_lock_id *id)
{
	struct lkb *b = lock_find_in(&r->granted, id);

	if (!b)
		b = lock_find_in(&r->converting, id);
	return b ? b : lock_find_in(&r->waiting, id);
}

/* A lock block as the master keeps it, on no queue; NULL when out of
 * memory. */
struct lkb *lock_lkb_new(const struct wire_lock_id *id, unsigned grmode,
			 unsigned rqmode, uint32_t flags)
{
	struct lkb *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	*b = (struct lkb){.id = *id, .grmode = (uint8_t)grmode,
			  .rqmode = (uint8_t)rqmode,
			  .flags = (uint8_t)(flags & (WIRE_LKF_BAST |
						      WIRE_LKF_VALBLK)),
			  .bast_mode = LK_NONE};
	list_init(&b->link);
	return b;
}

void lock_lkbs_free(struct list *q)
{
	struct lkb *b, *tmp;

	list_for_each_safe(b, tmp, q, link) {
		list_del(&b->link);
		free(b);
	}
}

void lock_queues_free(struct lres *r)
{
	lock_lkbs_free(&r->granted);
	lock_lkbs_free(&r->converting);
	lock_lkbs_free(&r->waiting);
}

/* ---------------------------------------------------------------------- */
/* Granting                                                               */

/* Whether mode may be granted beside every granted mode but skip's. */
static bool fits(const struct lres *r, const struct lkb *skip, unsigned mode)
{
	const struct lkb *b;

	list_for_each(b, &r->granted, link)
		if (b != skip && !lock_compatible(b->grmode, mode))
			return false;
	list_for_each(b, &r->converting, link)
		if (b != skip && !lock_compatible(b->grmode, mode))
			return false;
	return true;
}

/* b, on no queue, is granted its request. */
static void grant(struct dsmd *d, struct lres *r, struct lkb *b)
{
	bool lvb = (b->flags & WIRE_LKF_VALBLK) && b->rqmode >= DSM_LK_PR;

	b->grmode = b->rqmode;
	b->rqmode = LK_NONE;
	b->bast_mode = LK_NONE;
	list_add_tail(&r->granted, &b->link);
	reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, 0, b->grmode, lvb);
}

/* Tell the holders that block b, once per mode wanted. */
static void notify_blockers(struct dsmd *d, struct lres *r,
			    const struct lkb *b)
{
	struct list *queues[2] = {&r->granted, &r->converting};
	struct lkb *h;
	int i;

	for (i = 0; i < 2; i++) {
		list_for_each(h, queues[i], link) {
			if (h == b || lock_compatible(h->grmode, b->rqmode) ||
			    !(h->flags & WIRE_LKF_BAST) ||
			    h->bast_mode == b->rqmode)
				continue;
			h->bast_mode = b->rqmode;
			reply(d, r, &h->id, 0, WIRE_LKR_BAST, 0, b->rqmode, false);
		}
	}
}

/* Grant what can be granted, in order; tell holders that block the rest. */
void lock_grant_pass(struct dsmd *d, struct lres *r)
{
	struct lkb *b;

	if (lock_recovering(d) || r->replaying ||
	    !home_is_master(d, r->key, &r->h))
		return;
	while ((b = list_first(&r->converting, struct lkb, link)) &&
	       fits(r, b, b->rqmode)) {
		list_del(&b->link);
		grant(d, r, b);
	}
	while (list_empty(&r->converting) &&
	       (b = list_first(&r->waiting, struct lkb, link)) &&
	       fits(r, NULL, b->rqmode)) {
		list_del(&b->link);
		grant(d, r, b);
	}
	list_for_each(b, &r->converting, link)
		notify_blockers(d, r, b);
	list_for_each(b, &r->waiting, link)
		notify_blockers(d, r, b);
}

/* Nothing waits on the resource and it is small enough to move. */
static bool idle(const struct lres *r)
{
	const struct lkb *b;
	unsigned n = 0;

	if (!list_empty(&r->converting) || !list_empty(&r->waiting) ||
	    !list_empty(&r->parked) || r->asking)
		return false;
	list_for_each(b, &r->granted, link)
		if (++n > LK_PACK_MAX)
			return false;
	return true;
}

/* The resource is quiet: move it if its users say so.  Only its master
 * does: a node that passed on what it had parked (lock_replay_parked)
 * weighs nothing, or it would send an empty copy from counts it kept
 * from when it was master. */
static void settle(struct dsmd *d, struct lres *r)
{
	int to;

	if (!idle(r) || lock_recovering(d) ||
	    !home_is_master(d, r->key, &r->h))
		return;
	to = home_decide(d, &home_lock_kind, r->key, &r->h, -1);
	if (to >= 0)
		home_migrate(d, &home_lock_kind, r->key, &r->h, to);
}

/* ---------------------------------------------------------------------- */
/* Operations                                                             */

static void write_lvb(struct lres *r, const struct lkb *b,
		      const struct wire_lock_op *o)
{
	if (b->grmode < DSM_LK_PW || b->grmode == LK_NONE)
		return;
	if (o->flags & WIRE_LKF_DIED) {
		r->lvb_valid = false; /* it may have been half written */
	} else if (o->flags & WIRE_LKF_VALBLK) {
		memcpy(r->lvb, o->lvb, sizeof(r->lvb));
		r->lvb_valid = true;
	}
}

/* Whether o names the resource as it was first named here (the first
 * name sticks: keys are hashes, and two names may share one). */
static bool name_matches(struct lres *r, const struct wire_lock_op *o)
{
	if (!r->named) {
		r->named = true;
		r->parent = o->parent;
		r->name_len = o->name_len;
		memcpy(r->name, o->name, o->name_len);
		return true;
	}
	return r->parent == o->parent && r->name_len == o->name_len &&
	       !memcmp(r->name, o->name, o->name_len);
}

/* Whether r's queues hold `cap` locks or more. */
static bool queues_full(const struct lres *r, unsigned cap)
{
	const struct list *queues[3] = {&r->granted, &r->converting,
					&r->waiting};
	const struct lkb *b;
	unsigned n = 0;

	for (int q = 0; q < 3; q++)
		list_for_each(b, queues[q], link)
			if (++n >= cap)
				return true;
	return false;
}

static void rebuild_wait(struct dsmd *d, struct lres *r, struct lkb *b,
			 const struct wire_lock_op *o);

static void op_new(struct dsmd *d, struct lres *r, const struct wire_lock_op *o)
{
	struct lkb *b = find_any(r, &o->id);

	if (b) {
		/* Sent again after a refusal (the first got here), or asked
		 * anew after a death under a new number (recover.c): then
		 * renumbered, and answered again if granted meanwhile. */
		if ((int32_t)(o->seq - b->opseq) > 0)
			rebuild_wait(d, r, b, o);
		return;
	}
	if (!name_matches(r, o)) {
		reply(d, r, &o->id, o->seq, WIRE_LKR_DONE, -ENOTUNIQ, LK_NONE, false);
		return;
	}
	if (queues_full(r, d->cfg.max_lock_queue ? d->cfg.max_lock_queue
						 : DSMD_MAX_LOCK_QUEUE)) {
		d->refused.locks++;
		reply(d, r, &o->id, o->seq, WIRE_LKR_DONE, -EDQUOT, LK_NONE, false);
		return;
	}
	b = lock_lkb_new(&o->id, LK_NONE, o->rqmode, o->flags);
	if (!b) {
		reply(d, r, &o->id, o->seq, WIRE_LKR_DONE, -ENOMEM, LK_NONE, false);
		return;
	}
	b->opseq = o->seq;
	if ((o->flags & WIRE_LKF_NOQUEUE) &&
	    (lock_recovering(d) || !list_empty(&r->converting) ||
	     !list_empty(&r->waiting) || !fits(r, NULL, b->rqmode))) {
		reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, -EAGAIN, LK_NONE, false);
		free(b);
		return;
	}
	list_add_tail(&r->waiting, &b->link);
}

static void op_convert(struct dsmd *d, struct lres *r,
		       const struct wire_lock_op *o)
{
	struct lkb *b = lock_find_in(&r->granted, &o->id);

	if (!b) {
		b = lock_find_in(&r->converting, &o->id);
		if (!b)
			reply(d, r, &o->id, o->seq, WIRE_LKR_DONE, -ENOLCK, LK_NONE,
			      false);
		else if ((int32_t)(o->seq - b->opseq) > 0)
			b->opseq = o->seq; /* asked anew after a death */
		return;
	}
	if ((int32_t)(o->seq - b->opseq) <= 0)
		return; /* applied already: sent again after a death */
	b->opseq = o->seq;
	b->rqmode = o->rqmode;
	b->flags = (uint8_t)((b->flags & ~WIRE_LKF_VALBLK) |
			     (o->flags & WIRE_LKF_VALBLK));
	if (lock_weaker_or_equal(o->rqmode, b->grmode)) {
		/* Down (or sideways into less): nothing can conflict. */
		write_lvb(r, b, o);
		b->grmode = b->rqmode;
		b->rqmode = LK_NONE;
		b->bast_mode = LK_NONE;
		reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, 0, b->grmode,
		      (b->flags & WIRE_LKF_VALBLK) && b->grmode >= DSM_LK_PR);
		return;
	}
	if ((o->flags & WIRE_LKF_NOQUEUE) &&
	    (lock_recovering(d) || !list_empty(&r->converting) ||
	     !fits(r, b, b->rqmode))) {
		b->rqmode = LK_NONE;
		reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, -EAGAIN, b->grmode, false);
		return;
	}
	list_del(&b->link);
	list_add_tail(&r->converting, &b->link);
}

static void op_unlock(struct dsmd *d, struct lres *r,
		      const struct wire_lock_op *o)
{
	struct lkb *b = find_any(r, &o->id);

	if (b) {
		list_del(&b->link);
		write_lvb(r, b, o);
		free(b);
	}
	reply(d, r, &o->id, o->seq, WIRE_LKR_UNLOCKED, 0, LK_NONE, false);
}

static void op_cancel(struct dsmd *d, struct lres *r,
		      const struct wire_lock_op *o)
{
	struct lkb *b = lock_find_in(&r->waiting, &o->id);
	int status = o->status < 0 ? o->status : -ECANCELED;

	/* Of the wait renumbered after a death (recover.c) whose REBUILD is
	 * still on its way here by another path (through the recovery
	 * master, while the CANCEL came straight): renumbered now, or the
	 * CANCEL would go unanswered and the owner wait for ever. */
	if (b && (int32_t)(o->seq - b->opseq) > 0)
		b->opseq = o->seq;
	if (b && b->opseq != o->seq)
		return; /* of an operation that ended: its answer went */
	if (b) {
		list_del(&b->link);
		reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, status, LK_NONE, false);
		free(b);
		return;
	}
	b = lock_find_in(&r->converting, &o->id);
	if (b && (int32_t)(o->seq - b->opseq) > 0)
		b->opseq = o->seq; /* as above */
	if (b && b->opseq == o->seq) {
		/* A conversion that fails keeps the granted mode. */
		list_del(&b->link);
		b->rqmode = LK_NONE;
		list_add_tail(&r->granted, &b->link);
		reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, status, b->grmode, false);
	}
	/* Else it was granted first: the grant is the answer. */
}

/* An owner waits on b and asked anew after a death (its operation renumbered,
 * recover.c): renumbered here too.  If it was granted meanwhile (the
 * answer went out under the old number and is dropped), it is answered
 * again; a conversion that never came is made. */
static void rebuild_wait(struct dsmd *d, struct lres *r, struct lkb *b,
			 const struct wire_lock_op *o)
{
	struct wire_lock_op redo = *o;

	if (!lock_find_in(&r->granted, &b->id)) {
		b->opseq = o->seq; /* still waiting or converting */
		return;
	}
	if (o->grmode != LK_NONE && b->grmode == o->grmode &&
	    b->grmode != o->rqmode) {
		redo.op = WIRE_LOCK_CONVERT;
		op_convert(d, r, &redo);
		return;
	}
	b->opseq = o->seq;
	reply(d, r, &b->id, b->opseq, WIRE_LKR_DONE, 0, b->grmode,
	      (b->flags & WIRE_LKF_VALBLK) && b->grmode >= DSM_LK_PR);
}

/* A survivor's lock after a death (recover.c): the mode its owner holds,
 * and the operation it has under way (its seq), which may have died on
 * its way with the dead node. */
static void op_rebuild(struct dsmd *d, struct lres *r,
		       const struct wire_lock_op *o)
{
	struct lkb *b = find_any(r, &o->id);
	struct wire_lock_op redo = *o;

	if (!r->rebuilding) {
		/* A master that had the resource all along has every lock;
		 * a request or conversion it has not seen died on its way:
		 * made again here.  (A request that came and went since is
		 * made again too: its grant goes to an owner that no longer
		 * has the lock, which gives it back, owner.c.) */
		if (!b && o->grmode == LK_NONE) {
			redo.op = WIRE_LOCK_NEW;
			op_new(d, r, &redo);
		} else if (b && o->rqmode != LK_NONE &&
			   (int32_t)(o->seq - b->opseq) > 0) {
			rebuild_wait(d, r, b, o);
		}
		return;
	}
	/* Adopted here: survivors held their locks beside each other, so a
	 * mode that does not fit beside those already rebuilt is a broken or
	 * hostile peer's: refused, counted. */
	if (b)
		return;
	if (o->grmode != LK_NONE && !fits(r, NULL, o->grmode)) {
		log_once(d->proto_logged, LOG_WARN,
			 "lock %.*s: a rebuilt lock of node %u does not fit "
			 "beside those granted: refused (logged once)",
			 o->name_len, o->name, o->id.node);
		d->st.bad_msgs++;
		return;
	}
	name_matches(r, o);
	b = lock_lkb_new(&o->id, o->grmode, o->rqmode, o->flags);
	if (!b)
		return;
	b->opseq = o->seq;
	if (b->grmode == LK_NONE)
		list_add_tail(&r->waiting, &b->link);
	else if (b->rqmode != LK_NONE)
		list_add_tail(&r->converting, &b->link);
	else
		list_add_tail(&r->granted, &b->link);
	/* The block as the strongest holder has it: a PW or EX holder's is
	 * the newest; readers all got the same one. */
	if ((o->flags & WIRE_LKF_LVB) && b->grmode != LK_NONE &&
	    b->grmode >= DSM_LK_PR &&
	    (r->rebuilt_mode == LK_NONE || b->grmode > r->rebuilt_mode)) {
		memcpy(r->lvb, o->lvb, sizeof(r->lvb));
		r->lvb_valid = true;
		r->rebuilt_mode = b->grmode;
	}
}

static void serve(struct dsmd *d, struct lres *r, const struct wire_lock_op *o)
{
	if (o->route.chain)
		home_tell_chain(d, &home_lock_kind, r->key, &r->h,
				o->route.chain);
	switch (o->op) {
	case WIRE_LOCK_NEW:
		home_note(d, r->key, &r->h, o->id.node);
		op_new(d, r, o);
		break;
	case WIRE_LOCK_CONVERT:
		home_note(d, r->key, &r->h, o->id.node);
		op_convert(d, r, o);
		break;
	case WIRE_LOCK_UNLOCK:
		op_unlock(d, r, o);
		break;
	case WIRE_LOCK_CANCEL:
		op_cancel(d, r, o);
		break;
	case WIRE_LOCK_REBUILD:
		op_rebuild(d, r, o);
		break;
	case WIRE_LOCK_SEARCH:
		lock_search(d, r, o);
		return;
	}
	lock_grant_pass(d, r);
	settle(d, r);
}

/* ---------------------------------------------------------------------- */
/* Routing, parking                                                       */

/* An operation that could not be kept (out of memory) is refused to its
 * origin, which asks who masters the resource and sends it again, rather
 * than lost. */
static void refuse_kept(struct dsmd *d, const struct wire_lock_op *o)
{
	d->refused.nomem++;
	home_nack(d, &home_lock_kind, o->key, o->route.origin, o->id.handle);
}

static void park(struct dsmd *d, struct lres *r, int from,
		 const struct wire_lock_op *o)
{
	if (list_empty(&r->parked))
		r->parked_ms = dsmd_now_ms(d);
	if (!r->named && o->name_len)
		name_matches(r, o); /* the key is the name's: checked */
	if (!lock_pend_keep(&r->parked, from, o))
		refuse_kept(d, o); /* out of memory */
	if (o->route.epoch > r->seen_epoch)
		r->seen_epoch = o->route.epoch;
}

static void handle_op(struct dsmd *d, int from, const struct wire_lock_op *o);

/* Replay what was parked, in order, as one batch: a resource rebuilt
 * from its survivors' locks must have every one of them before anything
 * is granted from it. */
void lock_replay_parked(struct dsmd *d, struct lres *r)
{
	struct lpend *p, *tmp;
	struct list q;

	list_init(&q);
	list_splice_tail(&q, &r->parked);
	r->replaying = true;
	list_for_each_safe(p, tmp, &q, link) {
		list_del(&p->link);
		handle_op(d, p->from, &p->op);
		free(p);
	}
	r->replaying = false;
	if (!lock_recovering(d))
		r->rebuilding = false;
	lock_grant_pass(d, r);
	settle(d, r);
}

/* This node is not the master, and what it knows names a dead node (or
 * nothing, and the placement's home is dead): ask who masters it now.
 *
 * Or this node is the resource's recovery master and what it knows is a
 * guess: a pointer of epoch 0 to a node that is not the placement's home.
 * Only a move or an adoption raises the epoch, so a master at epoch 0 is
 * the placement's home, and that one is dead when another node is the
 * recovery master: the pointer was left by a recovery (or made up by a
 * peer).  Following it, the recovery master would send every operation
 * round the guesses, each refused and sent to it again, while it is the
 * node that should adopt the resource; it asks instead, and adopts when
 * nobody claims it. */
bool lock_orphaned(struct dsmd *d, struct lres *r)
{
	uint32_t epoch;
	int to = home_where(d, r->key, &r->h, &epoch);

	if (!node_usable(d, to))
		return true;
	return !epoch && to != d->cfg.node && to != home_placement(d, r->key) &&
	       lock_recovery_master(d, r->key) == d->cfg.node;
}

static void handle_op(struct dsmd *d, int from, const struct wire_lock_op *o)
{
	struct wire_lock_op fw = *o;
	struct lres *r;
	int next;

	/* A release by key alone follows a resource this node knows of. */
	r = lock_res_get(d, o->key, o->name_len != 0);
	if (!r)
		return;
	/* A survivor's lock, sent here as to the resource's recovery master:
	 * ask who masters it now (it may have moved to the dead node without
	 * its owners knowing), unless that is what the replay follows. */
	if (!home_is_master(d, o->key, &r->h) &&
	    (r->asking || lock_orphaned(d, r) ||
	     (o->op == WIRE_LOCK_REBUILD && !o->route.hops && !r->replaying))) {
		park(d, r, from, o);
		if (!r->asking) {
			r->asking = true;
			home_ask(d, &home_lock_kind, r->key, LK_ADOPT_TOKEN);
		}
		return;
	}
	switch (home_route(d, o->key, &r->h, &fw.route, &next)) {
	case HOME_PARK:
		park(d, r, from, o);
		return;
	case HOME_FORWARD:
		node_send(d, next, WIRE_LOCK_OP, 0, &fw, sizeof(fw));
		return;
	case HOME_NACK:
		/* What this node knew led round: a pointer no move left
		 * (epoch 0: a recovery's guess) is forgotten, so the next
		 * operation goes by the placement (or its recovery master)
		 * instead of round again. */
		if (!r->h.epoch)
			r->h.flags = 0;
		home_nack(d, &home_lock_kind, o->key, o->route.origin,
			  o->id.handle);
		return;
	case HOME_SERVE:
		serve(d, r, o);
		return;
	}
}

static int check_op(const struct dsmd *d, int from, const struct wire_lock_op *o)
{
	bool mode_needed = o->op == WIRE_LOCK_NEW || o->op == WIRE_LOCK_CONVERT;

	if (!o->key || o->op < WIRE_LOCK_NEW || o->op >= WIRE_LOCK_OPCODE_MAX ||
	    (o->flags & ~WIRE_LKF_ALL) || o->id.node >= d->cfg.nnodes ||
	    (o->name_len == 0 && o->op != WIRE_LOCK_UNLOCK) ||
	    o->name_len > WIRE_LOCK_NAME_MAX ||
	    (mode_needed && o->rqmode >= WIRE_LK_MODES) ||
	    (o->grmode >= WIRE_LK_MODES && o->grmode != LK_NONE) ||
	    (o->rqmode >= WIRE_LK_MODES && o->rqmode != LK_NONE) ||
	    o->reserved > d->cfg.nnodes ||
	    (o->op == WIRE_LOCK_SEARCH && o->origin.node >= d->cfg.nnodes) ||
	    (o->op == WIRE_LOCK_REBUILD &&
	     ((o->grmode == LK_NONE && o->rqmode == LK_NONE) ||
	      !o->reserved || o->reserved - 1 == d->cfg.node)) ||
	    home_route_check(d, from, &o->route) ||
	    (o->name_len &&
	     lock_key(o->parent, o->name, o->name_len) != o->key))
		return -EINVAL;
	return 0;
}

/* LOCK_OP, from the network, from this node, or replayed. */
void lock_on_op(struct dsmd *d, int from, const struct wire_lock_op *o)
{
	struct lockmgr *lk = d->lk;
	int dead = (int)o->reserved - 1;

	if (check_op(d, from, o)) {
		d->st.bad_msgs++;
		return;
	}
	if (dead >= 0 && dead != d->cfg.node && !(lk->dead & lock_bit(dead))) {
		/* The sender saw a death this node has not seen yet.  A
		 * death one member saw is every member's (as for RECOVERED,
		 * lock.c): this node declares it too, and the operation goes
		 * on.  If the death does not take, the sender is no live
		 * member: refused. */
		cluster_reported_dead(d, dead, from);
		if (!(lk->dead & lock_bit(dead))) {
			d->st.bad_msgs++;
			return;
		}
	}
	if (lock_recovering(d) && o->op != WIRE_LOCK_REBUILD) {
		if (!lock_pend_keep(&lk->held, from, o))
			refuse_kept(d, o); /* out of memory */
		return;
	}
	handle_op(d, from, o);
}
