/* A process's requests on its lock connection (WIRE_IPC_LOCK), and the
 * connection closing.
 *
 * A request that can be refused at once is answered at once (a COMPLETE
 * event with the error); one that goes to a master is answered when the
 * master answers (owner.c).  A process's locks are released when its
 * connection closes: its waits end there, and a PW or EX holder that dies
 * leaves the value block invalid (the UNLOCK says it died).
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"

static struct lclient *client_new(struct dsmd *d, struct client *c)
{
	struct lockmgr *lk = d->lk;
	struct lclient *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return NULL;
	lc->c = c;
	lc->id = ++lk->next_client;
	list_init(&lc->locks);
	list_add_head(&lk->clients, &lc->link);
	return lc;
}

/* The process is gone: nobody waits for what its locks do next.  A lock
 * whose request or conversion is on its way is cancelled and released
 * once its master answered (owner.c, finish): a release sent now could
 * overtake the request (the master may move between the two), and the
 * request would then be granted to nobody. */
static void orphan(struct dsmd *d, struct llock *l)
{
	list_del(&l->olink);
	lock_drop_parent(l);
	l->req_id = 0;
	if (lock_waits(l)) {
		l->deadline_ms = l->search_ms = 0;
		timer_stop(d, &l->t);
		if (!l->cancel)
			lock_cancel(d, l, -ECANCELED);
	} else if (l->state != LS_UNLOCKING) {
		l->flags = WIRE_LKF_DIED;
		l->state = LS_UNLOCKING;
		l->opseq++;
		l->deadline_ms = l->search_ms = 0;
		timer_stop(d, &l->t);
		lock_owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
	}
	l->lc = NULL;
}

void lock_client_gone(struct dsmd *d, struct client *c)
{
	struct lclient *lc = c->lk;
	struct llock *l, *tmp;

	if (!lc)
		return;
	/* Children first: the list is newest first already. */
	list_for_each_safe(l, tmp, &lc->locks, olink)
		orphan(d, l);
	list_del(&lc->link);
	c->lk = NULL;
	free(lc->seen);
	free(lc);
}

/* ---------------------------------------------------------------------- */

/* What a process's request asks of the master, as WIRE_LKF_* flags. */
static uint32_t request_flags(const struct wire_ipc_lock *q)
{
	return (q->flags & DSM_LKF_NOQUEUE ? WIRE_LKF_NOQUEUE : 0) |
	       (q->flags & DSM_LKF_VALBLK ? WIRE_LKF_VALBLK : 0) |
	       (q->bast ? WIRE_LKF_BAST : 0);
}

/* Count a request or conversion (remote when its master is elsewhere)
 * and send it. */
static void send_request(struct dsmd *d, struct llock *l, unsigned op)
{
	uint32_t epoch;
	int dead;

	d->st.lock_requests++;
	if (lock_target(d, l->key, &epoch, &dead) != d->cfg.node)
		d->st.lock_remote++;
	lock_owner_send(d, l, op, 0);
}

static int ipc_new(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		   const struct wire_ipc_lock *q)
{
	struct llock *l, *parent = NULL;

	if (!q->name_len)
		return -EINVAL;
	if (q->name_len > WIRE_LOCK_NAME_MAX)
		return -ENAMETOOLONG;
	if (!q->lkid || lock_by_lkid(lc, q->lkid))
		return -EINVAL;
	if (lc->nlocks >= (d->cfg.max_locks ? d->cfg.max_locks
					    : DSMD_MAX_LOCKS)) {
		d->refused.locks++;
		return -EDQUOT;
	}
	if (q->parent) {
		parent = lock_by_lkid(lc, q->parent);
		if (!parent || parent->state == LS_WAITING ||
		    parent->state == LS_UNLOCKING)
			return -ENOLCK;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*l = (struct llock){
		.owner = lc->id, .handle = ++d->lk->next_handle,
		.lkid = q->lkid,
		.parent_key = parent ? parent->key : 0, .parent = parent,
		.state = LS_WAITING, .grmode = LK_NONE,
		.rqmode = (uint8_t)q->mode, .name_len = (uint8_t)q->name_len,
		.master = -1, .req_id = req_id,
	};
	memcpy(l->name, q->name, q->name_len);
	l->key = lock_key(l->parent_key, l->name, l->name_len);
	l->flags = request_flags(q);
	lock_llock_add(d, lc, l);
	l->opseq = 1;
	send_request(d, l, WIRE_LOCK_NEW);
	return 0;
}

static int ipc_convert(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		       const struct wire_ipc_lock *q)
{
	struct llock *l = lock_by_lkid(lc, q->lkid);

	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	if (l->state != LS_GRANTED)
		return -EBUSY;
	l->state = LS_CONVERTING;
	l->opseq++;
	l->rqmode = (uint8_t)q->mode;
	l->req_id = req_id;
	l->flags = request_flags(q);
	memcpy(l->lvb, q->lvb, sizeof(l->lvb));
	send_request(d, l, WIRE_LOCK_CONVERT);
	return 0;
}

/* A new lock or a conversion: 0 once sent (answered when the master
 * answers), else the error to answer now. */
static int ipc_lock(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		    const struct wire_ipc_lock *q)
{
	uint64_t now = dsmd_now_ms(d);
	struct llock *l;
	int ret;

	if (q->mode >= WIRE_LK_MODES ||
	    (q->flags & ~(DSM_LKF_NOQUEUE | DSM_LKF_CONVERT | DSM_LKF_ASYNC |
			  DSM_LKF_VALBLK)))
		return -EINVAL;
	ret = q->flags & DSM_LKF_CONVERT ? ipc_convert(d, lc, req_id, q)
					 : ipc_new(d, lc, req_id, q);
	if (ret)
		return ret;
	l = lock_by_lkid(lc, q->lkid);
	if (l && q->timeout_ms)
		l->deadline_ms = now + q->timeout_ms;
	if (l && !(q->flags & DSM_LKF_NOQUEUE))
		l->search_ms = now + d->lk->deadlock_ms;
	if (l)
		lock_timer_arm(d, l);
	return 0;
}

/* A release, or with DSM_LKF_CANCEL the end of a wait: 1 once a release
 * is sent (answered when the master answers), else the answer now. */
static int ipc_unlock(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		      const struct wire_ipc_lock *q)
{
	struct llock *l = lock_by_lkid(lc, q->lkid);

	if (q->flags & ~(DSM_LKF_CANCEL | DSM_LKF_VALBLK))
		return -EINVAL;
	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	if (q->flags & DSM_LKF_CANCEL) {
		if (!lock_waits(l))
			return -ENOLCK;
		if (!l->cancel)
			lock_cancel(d, l, -ECANCELED);
		return 0;
	}
	if (l->state != LS_GRANTED)
		return -EBUSY;
	if (l->children)
		return -ENOTEMPTY;
	l->flags = q->flags & DSM_LKF_VALBLK ? WIRE_LKF_VALBLK : 0;
	memcpy(l->lvb, q->lvb, sizeof(l->lvb));
	l->state = LS_UNLOCKING;
	l->opseq++;
	l->req_id = req_id;
	lock_drop_parent(l); /* the parent may go as this one does */
	lock_owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
	return 1;
}

static int ipc_master(struct dsmd *d, struct lclient *lc,
		      const struct wire_ipc_lock *q)
{
	struct llock *l = lock_by_lkid(lc, q->lkid);
	uint32_t epoch;
	int dead;

	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	return lock_target(d, l->key, &epoch, &dead);
}

/* WIRE_IPC_LOCK, on a lock connection only (the module table says so). */
void lock_on_ipc(struct dsmd *d, struct client *c, const struct wire_msg *m,
		 int *fd)
{
	uint64_t id = m->hdr->req_id;
	struct wire_ipc_lock q;
	int ret;

	(void)fd;
	if (!c->lk && !(c->lk = client_new(d, c))) {
		client_refuse(d, c, "out of memory for a lock connection");
		return;
	}
	memcpy(&q, m->body, sizeof(q));
	switch (q.op) {
	case WIRE_IPC_LK_LOCK:
		ret = ipc_lock(d, c->lk, id, &q);
		if (!ret)
			return;
		break;
	case WIRE_IPC_LK_UNLOCK:
		ret = ipc_unlock(d, c->lk, id, &q);
		if (ret > 0)
			return;
		break;
	case WIRE_IPC_LK_MASTER:
		ret = ipc_master(d, c->lk, &q);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	lock_complete(c->lk, id, q.lkid, ret, LK_NONE);
}
