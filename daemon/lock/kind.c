/* Lock resources as a kind of directory entry (home.h): the home module
 * places, counts and moves them as it does pages.
 *
 * A resource moves only while idle (master.c's settle), and then carries
 * its name, its value block and its granted locks (struct wire_lock_state
 * in wire.h); what was parked for it follows it, in order.  When nobody
 * alive masters a resource (its master died), the lookup of the first node
 * that needs it ends here: the resource's recovery master adopts it, with
 * an epoch above every one it knew of, and the survivors' REBUILDs parked
 * for it are replayed as one batch (recover.c says when it grants again).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"
#include "log.h"

static struct lres *to_lres(struct home *h)
{
	return container_of(h, struct lres, h);
}

static bool lk_valid(const struct dsmd *d, uint64_t key)
{
	(void)d;
	return key != 0;
}

static struct home *lk_get(struct dsmd *d, uint64_t key, bool create)
{
	struct lres *r = lock_res_get(d, key, create);

	return r ? &r->h : NULL;
}

static size_t lk_pack(struct dsmd *d, uint64_t key, struct home *h,
		      void *buf, size_t cap)
{
	struct lres *r = to_lres(h);
	struct wire_lock_state st = {.parent = r->parent,
				     .name_len = r->name_len,
				     .lvb_valid = r->lvb_valid};
	char *p = (char *)buf + sizeof(st);
	const struct lkb *b;

	(void)d;
	(void)key;
	memcpy(st.name, r->name, sizeof(st.name));
	memcpy(st.lvb, r->lvb, sizeof(st.lvb));
	list_for_each(b, &r->granted, link) {
		struct wire_lock_held w = {.id = b->id, .grmode = b->grmode,
					   .flags = b->flags,
					   .opseq = b->opseq};

		if ((size_t)(p - (char *)buf) + sizeof(w) > cap)
			return 0;
		memcpy(p, &w, sizeof(w));
		p += sizeof(w);
		st.nlocks++;
	}
	if (cap < sizeof(st))
		return 0;
	memcpy(buf, &st, sizeof(st));
	return (size_t)(p - (char *)buf);
}

/* Whether every two of the granted locks on q are compatible, and no
 * lock is there twice: what an honest master sends. */
static bool held_consistent(const struct list *q)
{
	const struct lkb *a, *b;

	list_for_each(a, q, link)
		list_for_each(b, q, link)
			if (a != b && (lock_same_lock(&a->id, &b->id) ||
				       !lock_compatible(a->grmode, b->grmode)))
				return false;
	return true;
}

/* The granted locks that came with a resource, onto q in order. */
static int unpack_held(const struct dsmd *d, const char *p, unsigned n,
		       struct list *q)
{
	unsigned i;

	if (n > LK_PACK_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++, p += sizeof(struct wire_lock_held)) {
		struct wire_lock_held w;
		struct lkb *b;

		memcpy(&w, p, sizeof(w));
		if (w.grmode >= WIRE_LK_MODES || w.id.node >= d->cfg.nnodes ||
		    !(b = lock_lkb_new(&w.id, w.grmode, LK_NONE, w.flags))) {
			lock_lkbs_free(q);
			return -EINVAL;
		}
		b->opseq = w.opseq;
		list_add_tail(q, &b->link);
	}
	if (!held_consistent(q)) {
		lock_lkbs_free(q);
		return -EINVAL;
	}
	return 0;
}

static int lk_unpack(struct dsmd *d, uint64_t key, struct home *h,
		     const void *buf, size_t len)
{
	struct lres *r = to_lres(h);
	struct wire_lock_state st;
	struct list held;

	if (len < sizeof(st) || !list_empty(&r->granted) ||
	    !list_empty(&r->converting) || !list_empty(&r->waiting))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	if (len != sizeof(st) + st.nlocks * sizeof(struct wire_lock_held) ||
	    !st.name_len || st.name_len > WIRE_LOCK_NAME_MAX ||
	    lock_key(st.parent, st.name, st.name_len) != key)
		return -EINVAL;
	list_init(&held);
	if (unpack_held(d, (const char *)buf + sizeof(st), st.nlocks, &held))
		return -EINVAL;
	list_splice_tail(&r->granted, &held);
	r->named = true;
	r->parent = st.parent;
	r->name_len = st.name_len;
	memcpy(r->name, st.name, sizeof(r->name));
	memcpy(r->lvb, st.lvb, sizeof(r->lvb));
	r->lvb_valid = st.lvb_valid;
	return 0;
}

static void lk_left(struct dsmd *d, uint64_t key, struct home *h, int to)
{
	struct lres *r = to_lres(h);
	struct lpend *p, *tmp;

	(void)key;
	lock_queues_free(r);
	/* Whatever waited for it follows it, in order. */
	list_for_each_safe(p, tmp, &r->parked, link) {
		list_del(&p->link);
		if (!p->op.route.hops)
			p->op.route.hops = 1;
		p->op.route.epoch = h->epoch;
		node_send(d, to, WIRE_LOCK_OP, 0, &p->op, sizeof(p->op));
		free(p);
	}
}

/* It may have been sent before its sender saw a death this node has
 * seen: the dead nodes' locks go, as they went here then (recover.c). */
static void lk_arrived(struct dsmd *d, uint64_t key, struct home *h)
{
	struct lres *r = to_lres(h);
	struct lkb *b, *tmp;

	(void)key;
	list_for_each_safe(b, tmp, &r->granted, link) {
		if (!(d->lk->dead & lock_bit(b->id.node)))
			continue;
		if (b->grmode >= DSM_LK_PW)
			r->lvb_valid = false;
		list_del(&b->link);
		free(b);
	}
	lock_replay_parked(d, r);
}

/* A request of ours was refused on its way: ask who masters it. */
static void lk_nacked(struct dsmd *d, uint64_t key, uint64_t token)
{
	struct llock *l = lock_by_handle(d, token);

	if (l && l->key == key)
		lock_refused(d, l);
}

/* Nobody alive masters r: its recovery master adopts it; another node
 * points there. */
static void adopt(struct dsmd *d, struct lres *r)
{
	int rm = lock_recovery_master(d, r->key);
	uint32_t e = r->h.epoch > r->seen_epoch ? r->h.epoch : r->seen_epoch;

	if (rm != d->cfg.node) {
		/* Not ours to adopt: on to the recovery master. */
		r->h.flags = HOME_KNOWN;
		r->h.hint = (uint16_t)rm;
		return;
	}
	log_info("lock %.*s: its master died; rebuilt here", r->name_len,
		 r->name);
	r->h.flags = HOME_KNOWN | HOME_MASTER;
	r->h.hint = (uint16_t)d->cfg.node;
	/* The block died with its master unless a holder brings it back
	 * (op_rebuild). */
	r->lvb_valid = false;
	r->rebuilt_mode = LK_NONE;
	r->rebuilding = true;
	r->h.epoch = e + 1;
	r->h.arrived_ms = r->h.decay_ms = (uint32_t)dsmd_now_ms(d);
	d->st.lock_rebuilt++;
}

static void lk_located(struct dsmd *d, uint64_t key, uint64_t token,
		       int master, uint32_t epoch)
{
	struct lres *r;
	struct llock *l;

	(void)epoch;
	r = lock_res_get(d, key, false);
	if (token != LK_ADOPT_TOKEN) {
		l = lock_by_handle(d, token);
		if (!l || l->key != key)
			return;
		/* Nobody claims it: a pointer of epoch 0 is a recovery's
		 * guess, and the operation goes by the placement, or to the
		 * recovery master, which adopts it (lock_orphaned). */
		if (master < 0 && r && home_hinted(&r->h) && !r->h.epoch)
			r->h.flags = 0;
		lock_resend(d, l); /* to what home_ask learnt */
		return;
	}
	if (!r || !r->asking)
		return;
	r->asking = false;
	if (master >= 0 && master != d->cfg.node && lock_orphaned(d, r)) {
		/* What this node knew names a dead node: any live answer is
		 * better, whatever its epoch (else it would ask forever). */
		r->h.flags = HOME_KNOWN;
		r->h.hint = (uint16_t)master;
	} else if (master < 0 || master == d->cfg.node) {
		adopt(d, r);
	}
	lock_replay_parked(d, r);
}

const struct home_kind home_lock_kind = {
	.name = "lock",
	.kind = WIRE_ENTRY_LOCK,
	.valid = lk_valid,
	.get = lk_get,
	.pack = lk_pack,
	.unpack = lk_unpack,
	.left = lk_left,
	.arrived = lk_arrived,
	.nacked = lk_nacked,
	.located = lk_located,
};
