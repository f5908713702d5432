/* The owner side: this node's locks talking to their masters.
 *
 * Each process that locks opens a lock connection (struct lclient).  Its
 * locks (struct llock) live here: their mode, what they wait for, the IPC
 * request to answer, the timeout.  Every change is one LOCK_OP to the
 * resource's master; the master answers with LOCK_REPLY.  A release is
 * answered too (UNLOCKED), and the process's dsm_unlock() returns then;
 * until then the lock stays here, UNLOCKING, so that a release refused on
 * the way can be sent again (one lost with a dead master is done: the
 * master's locks died with it).
 *
 * A waiting lock has one timer, armed for the earlier of its timeout and
 * its next deadlock search: a timeout cancels the wait (-ETIMEDOUT), a
 * search goes out (deadlock.c) and the next is due deadlock_ms later.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <string.h>

#include "lock/lock.h"
#include "log.h"

/* ---------------------------------------------------------------------- */
/* Where a resource's master is                                           */

/* The node that takes a resource over when its master died: the first
 * live node from the placement's home on. */
int lock_recovery_master(const struct dsmd *d, uint64_t key)
{
	int n = d->cfg.nnodes, i, c;

	for (i = 0; i < n; i++) {
		c = (int)((key + (uint64_t)i) % (uint64_t)n);
		if (node_usable(d, c))
			return c;
	}
	return d->cfg.node;
}

/* Where to send an operation on key: the master as this node knows it, or
 * its recovery master when that one is dead (*dead then names it). */
int lock_target(struct dsmd *d, uint64_t key, uint32_t *epoch, int *dead)
{
	struct lres *r = lock_res_get(d, key, false);
	int to = home_where(d, key, r ? &r->h : NULL, epoch);

	*dead = -1;
	if (!node_usable(d, to)) {
		*dead = to;
		*epoch = 0;
		to = lock_recovery_master(d, key);
	}
	return to;
}

/* ---------------------------------------------------------------------- */
/* Operations to masters                                                  */

void lock_fill_op(struct dsmd *d, const struct llock *l, unsigned op,
		  struct wire_lock_op *o)
{
	*o = (struct wire_lock_op){
		.key = l->key, .parent = l->parent_key,
		.id = {.handle = l->handle, .owner = l->owner,
		       .node = (uint16_t)d->cfg.node},
		.op = op, .flags = l->flags, .grmode = l->grmode,
		.rqmode = l->rqmode, .name_len = l->name_len,
		.seq = l->opseq,
		.route = {.origin = (uint16_t)d->cfg.node},
	};
	memcpy(o->name, l->name, l->name_len);
	memcpy(o->lvb, l->lvb, sizeof(o->lvb));
}

/* `reserved` carries the dead master + 1 when the op goes to a recovery
 * master: a node that has not seen that death yet keeps it (master.c). */
void lock_send_op(struct dsmd *d, struct wire_lock_op *o)
{
	uint32_t epoch;
	int dead, to = lock_target(d, o->key, &epoch, &dead);

	o->route.epoch = epoch;
	o->reserved = dead >= 0 ? (uint8_t)(dead + 1) : 0;
	node_send(d, to, WIRE_LOCK_OP, 0, o, sizeof(*o));
}

void lock_owner_send(struct dsmd *d, struct llock *l, unsigned op,
		     int32_t status)
{
	struct wire_lock_op o;

	lock_fill_op(d, l, op, &o);
	o.status = status;
	lock_send_op(d, &o);
}

/* End l's wait with status (sent again with it if the CANCEL is lost). */
void lock_cancel(struct dsmd *d, struct llock *l, int32_t status)
{
	l->cancel = status;
	lock_owner_send(d, l, WIRE_LOCK_CANCEL, status);
}

/* Send l's operation in progress again (after a refusal, or a death). */
void lock_resend(struct dsmd *d, struct llock *l)
{
	switch (l->state) {
	case LS_WAITING:
		lock_owner_send(d, l, WIRE_LOCK_NEW, 0);
		break;
	case LS_CONVERTING:
		lock_owner_send(d, l, WIRE_LOCK_CONVERT, 0);
		break;
	case LS_UNLOCKING:
		lock_owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
		return;
	default:
		return;
	}
	if (l->cancel)
		lock_owner_send(d, l, WIRE_LOCK_CANCEL, l->cancel);
}

/* ---------------------------------------------------------------------- */
/* Events to the process                                                  */

static void event(struct lclient *lc, uint64_t req_id,
		  const struct wire_ipc_lock_event *ev)
{
	/* Queued if the connection is full; a process that leaves more
	 * than CLIENT_OUT_MAX unread is cut off (client.c says so), and its
	 * callers get -EIO instead of waiting. */
	if (lc && lc->c)
		client_reply(lc->c, WIRE_IPC_LOCK_EVENT, req_id, ev,
			     sizeof(*ev));
}

void lock_complete(struct lclient *lc, uint64_t req_id, uint64_t lkid,
		   int status, unsigned mode)
{
	struct wire_ipc_lock_event ev = {.kind = WIRE_IPC_LKE_COMPLETE,
					 .status = status, .lkid = lkid,
					 .mode = mode};

	event(lc, req_id, &ev);
}

/* A release is done (its master answered, or died): the process's
 * dsm_unlock() returns. */
void lock_released(struct dsmd *d, struct llock *l)
{
	if (l->req_id)
		lock_complete(l->lc, l->req_id, l->lkid, 0, LK_NONE);
	lock_llock_free(d, l);
}

/* A request or conversion of l ended with status. */
static void finish(struct dsmd *d, struct llock *l, int status,
		   const struct wire_lock_reply *rp)
{
	struct wire_ipc_lock_event ev = {.kind = WIRE_IPC_LKE_COMPLETE,
					 .status = status, .lkid = l->lkid};
	uint64_t req = l->req_id;
	struct lclient *lc = l->lc;

	if (rp && (rp->flags & WIRE_LKR_LVB)) {
		memcpy(l->lvb, rp->lvb, sizeof(l->lvb));
		memcpy(ev.lvb, rp->lvb, sizeof(ev.lvb));
		l->lvb_ok = !(rp->flags & WIRE_LKR_LVB_BAD);
		ev.has_lvb = 1;
		if (rp->flags & WIRE_LKR_LVB_BAD)
			ev.sbflags |= DSM_SBF_VALNOTVALID;
	}
	l->req_id = 0;
	l->deadline_ms = l->search_ms = 0;
	timer_stop(d, &l->t);
	l->cancel = 0;
	l->rqmode = LK_NONE;
	if (l->state == LS_WAITING && status) {
		/* A new lock that was not granted does not exist. */
		ev.mode = LK_NONE;
		lock_llock_free(d, l);
	} else {
		if (!status && rp)
			l->grmode = rp->mode;
		l->state = LS_GRANTED;
		ev.mode = l->grmode;
		if (!lc) {
			/* Its process is gone (ipc.c, orphan): released
			 * now that the master has answered. */
			l->flags = WIRE_LKF_DIED;
			l->state = LS_UNLOCKING;
			l->opseq++;
			lock_owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
			return;
		}
	}
	event(lc, req, &ev);
}

static void bast(struct dsmd *d, struct llock *l, unsigned mode)
{
	struct wire_ipc_lock_event ev = {.kind = WIRE_IPC_LKE_BAST,
					 .lkid = l->lkid, .mode = mode};

	if (l->lc && (l->state == LS_GRANTED || l->state == LS_CONVERTING)) {
		d->st.lock_basts++;
		event(l->lc, 0, &ev);
	}
}

static bool reply_ok(const struct dsmd *d, const struct wire_lock_reply *rp)
{
	return rp->id.node == d->cfg.node && rp->kind < WIRE_LKR_KIND_MAX &&
	       !(rp->kind == WIRE_LKR_DONE && rp->mode >= WIRE_LK_MODES &&
		 !rp->status) &&
	       !(rp->kind == WIRE_LKR_BAST && rp->mode >= WIRE_LK_MODES);
}

/* A grant of a lock this node does not have (handles are never used
 * twice): a request sent again after a death that reached its master
 * after the lock had gone (recover.c).  Given back at once, by key. */
static void release_ghost(struct dsmd *d, int from,
			  const struct wire_lock_reply *rp)
{
	struct wire_lock_op o = {.key = rp->key, .id = rp->id,
				 .op = WIRE_LOCK_UNLOCK, .seq = UINT32_MAX,
				 .route = {.origin = (uint16_t)d->cfg.node}};

	log_debug("lock %016llx: granted lock %llu is not ours: given back",
		  (unsigned long long)rp->key,
		  (unsigned long long)rp->id.handle);
	node_send(d, from, WIRE_LOCK_OP, 0, &o, sizeof(o));
}

void lock_on_reply(struct dsmd *d, int from, const struct wire_lock_reply *rp)
{
	struct llock *l = lock_by_handle(d, rp->id.handle);

	if (!reply_ok(d, rp)) {
		d->st.bad_msgs++;
		return;
	}
	/* A search's answer comes from the master of the resource where the
	 * cycle closed, which need not be this lock's. */
	if (!l && rp->kind == WIRE_LKR_DONE && !rp->status) {
		release_ghost(d, from, rp);
		return;
	}
	if (!l || (l->key != rp->key && rp->kind != WIRE_LKR_DEADLOCK))
		return; /* a late answer for a lock that is gone */
	if (rp->kind == WIRE_LKR_DONE && rp->seq != l->opseq)
		return; /* an answer to an operation already answered */
	if (rp->kind != WIRE_LKR_DEADLOCK) {
		l->refusals = 0;
		l->master = (int16_t)from;
		home_learn(d, &home_lock_kind, rp->key, from, rp->epoch);
	}
	switch (rp->kind) {
	case WIRE_LKR_DONE:
		if (lock_waits(l))
			finish(d, l, rp->status, rp);
		break;
	case WIRE_LKR_BAST:
		bast(d, l, rp->mode);
		break;
	case WIRE_LKR_UNLOCKED:
		if (l->state == LS_UNLOCKING)
			lock_released(d, l);
		break;
	case WIRE_LKR_DEADLOCK:
		if (lock_waits(l) && !l->cancel && rp->seq == l->seq) {
			log_info("lock %.*s: deadlock, this request is the "
				 "victim", l->name_len, l->name);
			d->st.lock_deadlocks++;
			lock_cancel(d, l, -EDEADLK);
		}
		break;
	}
}

void lock_refused(struct dsmd *d, struct llock *l)
{
	if (++l->refusals <= HOME_REFUSALS_MAX(d)) {
		home_ask(d, &home_lock_kind, l->key, l->handle);
		return;
	}
	log_warn("lock %.*s: refused %u times on its way, and nobody "
		 "answers for it: given up", l->name_len, l->name,
		 l->refusals);
	l->refusals = 0;
	if (l->state == LS_UNLOCKING)
		lock_released(d, l);
	else if (lock_waits(l))
		finish(d, l, -EHOSTDOWN, NULL);
}

/* ---------------------------------------------------------------------- */
/* Each waiting lock's timer                                              */

/* When l's timer should fire next, in ms, or 0.  A search cannot start
 * while a CANCEL is out (only the answer to it ends that), so it does not
 * count then: its time may be past, and the timer would fire at once,
 * forever. */
static uint64_t next_due_ms(const struct llock *l)
{
	uint64_t due = l->deadline_ms;

	if (!lock_waits(l))
		return 0;
	if (l->search_ms && !l->cancel && (!due || l->search_ms < due))
		due = l->search_ms;
	return due;
}

static void on_timer(struct dsmd *d, struct timer *t)
{
	struct llock *l = container_of(t, struct llock, t);
	uint64_t now = dsmd_now_ms(d);

	if (lock_waits(l)) {
		if (l->deadline_ms && now >= l->deadline_ms) {
			l->deadline_ms = 0;
			if (!l->cancel)
				lock_cancel(d, l, -ETIMEDOUT);
		}
		if (l->search_ms && now >= l->search_ms && !l->cancel)
			lock_search_start(d, l, now);
	}
	lock_timer_arm(d, l);
}

/* Never sooner than 1 ms from now: a time already past would run again in
 * the same timers_run() pass, and a lock whose time stays past (a bug)
 * would hold the loop forever. */
void lock_timer_arm(struct dsmd *d, struct llock *l)
{
	uint64_t due = next_due_ms(l), soonest = dsmd_now_us(d) + 1000u;

	if (!due) {
		timer_stop(d, &l->t);
		return;
	}
	if (timer_start(d, &l->t, due * 1000u > soonest ? due * 1000u : soonest,
			on_timer))
		log_err("lock %.*s: out of memory arming its timer: its "
			"timeout and deadlock searches will not run",
			l->name_len, l->name);
}
