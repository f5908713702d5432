/* The lock manager's tables: resources by key, this node's locks by handle
 * and by owner, the lock connections, and the lists of operations kept for
 * later; the module's state as a whole is made and freed here.
 *
 * Hash chains keep the newest first (as the singly linked chains before
 * them did): the order in which a node's death rebuilds its locks and in
 * which the end of recovery grants from its resources follows from it.
 *
 * Operations parked for a resource that never comes are refused after
 * --dead-after-ms (parked_expire).  A resource is made on every node an
 * operation for it passes.  One that is idle goes again (lock_res_sweep, a share of the buckets each tick):
 * no lock, nothing parked or asked, a value block as a new one's (valid,
 * zeros), and never moved (epoch 0), so that what is made again for it
 * is what went: placed at its home, and no node knows it at a higher
 * epoch.  A resource that moved, or holds a value block, stays.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"
#include "log.h"

int lock_mgr_new(struct dsmd *d)
{
	struct lockmgr *lk = calloc(1, sizeof(*lk));
	unsigned i;

	if (!lk)
		return -ENOMEM;
	for (i = 0; i < LK_BUCKETS; i++) {
		list_init(&lk->res[i]);
		list_init(&lk->byh[i]);
	}
	list_init(&lk->clients);
	list_init(&lk->held);
	lk->deadlock_ms = d->cfg.deadlock_ms ? d->cfg.deadlock_ms
					     : LOCK_DEADLOCK_MS;
	d->lk = lk;
	return 0;
}

static void res_free_bucket(struct list *bucket)
{
	struct lres *r, *tmp;

	list_for_each_safe(r, tmp, bucket, hlink) {
		list_del(&r->hlink);
		lock_queues_free(r);
		lock_pends_free(&r->parked);
		free(r);
	}
}

/* The locks' timers are in the core's heap: out of it before they go. */
static void llock_free_bucket(struct dsmd *d, struct list *bucket)
{
	struct llock *l, *tmp;

	list_for_each_safe(l, tmp, bucket, hlink) {
		timer_stop(d, &l->t);
		list_del(&l->hlink);
		free(l);
	}
}

void lock_mgr_free(struct dsmd *d)
{
	struct lockmgr *lk = d->lk;
	struct lclient *lc, *tmp;
	unsigned i;

	if (!lk)
		return;
	for (i = 0; i < LK_BUCKETS; i++) {
		res_free_bucket(&lk->res[i]);
		llock_free_bucket(d, &lk->byh[i]);
	}
	list_for_each_safe(lc, tmp, &lk->clients, link) {
		lc->c->lk = NULL; /* the connection may outlive the module */
		free(lc->seen);
		free(lc);
	}
	lock_pends_free(&lk->held);
	free(lk);
	d->lk = NULL;
}

/* ---------------------------------------------------------------------- */

struct lres *lock_res_get(struct dsmd *d, uint64_t key, bool create)
{
	struct list *bucket = &d->lk->res[key % LK_BUCKETS];
	struct lres *r;

	list_for_each(r, bucket, hlink)
		if (r->key == key)
			return r;
	if (!create || !key)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		log_err("out of memory for a lock resource");
		return NULL;
	}
	r->key = key;
	r->rebuilt_mode = LK_NONE;
	r->lvb_valid = true; /* a new resource's block: zeros, and valid */
	list_init(&r->granted);
	list_init(&r->converting);
	list_init(&r->waiting);
	list_init(&r->parked);
	list_add_head(bucket, &r->hlink);
	d->lk->nres++;
	return r;
}

/* Whether r is as a new one would be, and nothing waits on it. */
static bool res_idle(const struct lres *r)
{
	static const uint8_t zero[WIRE_LVB_LEN];

	return list_empty(&r->granted) && list_empty(&r->converting) &&
	       list_empty(&r->waiting) && list_empty(&r->parked) &&
	       !r->asking && !r->replaying && !r->rebuilding &&
	       !r->h.epoch && !r->seen_epoch && r->lvb_valid &&
	       !memcmp(r->lvb, zero, sizeof(zero));
}

/* Operations parked for a resource on its way here (a node named this one
 * its master at a newer epoch) that has not come in --dead-after-ms: it
 * will not (its sender died, or lied).  Each is refused to its origin,
 * which asks who masters it now. */
static void parked_expire(struct dsmd *d, struct lres *r)
{
	struct lpend *p, *tmp;

	if (list_empty(&r->parked) || r->asking ||
	    home_is_master(d, r->key, &r->h) ||
	    dsmd_now_ms(d) - r->parked_ms < d->cfg.dead_after_ms)
		return;
	list_for_each_safe(p, tmp, &r->parked, link) {
		list_del(&p->link);
		home_nack(d, &home_lock_kind, r->key, p->op.route.origin,
			  p->op.id.handle);
		free(p);
	}
}

void lock_res_sweep(struct dsmd *d, unsigned nbuckets)
{
	struct lockmgr *lk = d->lk;

	if (lock_recovering(d))
		return;
	while (nbuckets--) {
		struct list *bucket = &lk->res[lk->sweep++ % LK_BUCKETS];
		struct lres *r, *tmp;

		list_for_each_safe(r, tmp, bucket, hlink) {
			parked_expire(d, r);
			if (!res_idle(r))
				continue;
			list_del(&r->hlink);
			free(r);
			lk->nres--;
		}
	}
}

struct llock *lock_by_handle(struct dsmd *d, uint64_t handle)
{
	struct llock *l;

	list_for_each(l, &d->lk->byh[handle % LK_BUCKETS], hlink)
		if (l->handle == handle)
			return l;
	return NULL;
}

struct llock *lock_by_lkid(struct lclient *lc, uint64_t lkid)
{
	struct llock *l;

	list_for_each(l, &lc->locks, olink)
		if (l->lkid == lkid)
			return l;
	return NULL;
}

struct lclient *lock_client_find(struct dsmd *d, uint32_t id)
{
	struct lclient *lc;

	list_for_each(lc, &d->lk->clients, link)
		if (lc->id == id)
			return lc;
	return NULL;
}

void lock_llock_add(struct dsmd *d, struct lclient *lc, struct llock *l)
{
	l->lc = lc;
	if (l->parent)
		l->parent->children++;
	list_add_head(&lc->locks, &l->olink);
	lc->nlocks++;
	list_add_head(&d->lk->byh[l->handle % LK_BUCKETS], &l->hlink);
}

void lock_drop_parent(struct llock *l)
{
	if (l->parent) {
		l->parent->children--;
		l->parent = NULL;
	}
}

void lock_llock_free(struct dsmd *d, struct llock *l)
{
	if (l->lc) {
		list_del(&l->olink);
		l->lc->nlocks--;
		l->lc = NULL;
		lock_drop_parent(l);
	}
	timer_stop(d, &l->t);
	list_del(&l->hlink);
	free(l);
}

/* ---------------------------------------------------------------------- */

bool lock_pend_keep(struct list *q, int from, const struct wire_lock_op *o)
{
	struct lpend *p = calloc(1, sizeof(*p));

	if (!p) {
		log_err("out of memory keeping a lock operation: dropped");
		return false;
	}
	p->from = from;
	p->op = *o;
	list_add_tail(q, &p->link);
	return true;
}

void lock_pends_free(struct list *q)
{
	struct lpend *p, *tmp;

	list_for_each_safe(p, tmp, q, link) {
		list_del(&p->link);
		free(p);
	}
}
