/* The lock manager: named resources, six modes, three queues, value
 * blocks, blocking notifications, deadlock search and rebuilding after a
 * master dies.
 *
 * Owner side.  Each process that locks opens a lock connection (struct
 * lclient).  Its locks (struct llock) live here: their mode, what they
 * wait for, the IPC request to answer, the timeout.  Every change is one
 * LOCK_OP to the resource's master; the master answers with LOCK_REPLY.
 * A release is answered too (UNLOCKED), and the process's dsm_unlock()
 * returns then; until then the lock stays here, UNLOCKING, so that a
 * release refused on the way can be sent again (one lost with a dead
 * master is done: the master's locks died with it).
 *
 * Master side.  A resource (struct lres, a directory entry of kind
 * WIRE_ENTRY_LOCK) keeps granted, converting and waiting queues of lock
 * blocks (struct lkb).  A converting lock keeps its granted mode until the
 * conversion is granted.  Grants go in order: the converting queue first,
 * each in turn while the head is compatible with every granted mode, then
 * the waiting queue the same way once no conversion waits.  So a
 * conversion that can be granted is never starved by new requests, and a
 * request is never overtaken by a later one.
 *
 * Deadlocks.  A lock that has waited --deadlock-ms starts a search: the
 * master of its resource names the owners whose locks block it (granted
 * or converting in an incompatible mode, or queued ahead of it), and the
 * search visits each owner's node, which passes it on to the masters of
 * every lock that owner waits for.  When the search reaches the owner it
 * started from, its lock closes a cycle and fails with -EDEADLK.  A search
 * only visits owners whose number ((node << 32) | connection) is smaller
 * than its originator's, so of the owners on a cycle only the largest
 * finds it: exactly one victim.
 *
 * Failures.  A process's locks are released when its connection closes (a
 * PW or EX holder that dies leaves the value block invalid).  When a node
 * dies, every master drops the dead node's locks, and every survivor sends
 * the locks it holds on resources the dead node mastered (REBUILD) to the
 * resource's recovery master: the first live node from the placement's
 * home on.  That node first asks every node whether someone else masters
 * the resource (it may have moved); if not, it adopts it.  Then each
 * survivor tells every node it is done (RECOVERED); until a node has heard
 * that from every live node, it grants nothing and holds new requests, so
 * no grant is made from a half-rebuilt resource.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "dsmd.h"
#include "lock.h"
#include "watch.h"

#define LK_BUCKETS 1024u
#define LK_NONE WIRE_LK_NONE
#define LK_SEEN 16u          /* searches an owner remembers passing on */
#define LK_PACK_MAX 96u      /* locks a resource may hold and still move */
#define ADOPT_TOKEN UINT64_MAX

/* A lock as its resource's master sees it. */
struct lkb {
	struct lkb *next;
	struct wire_lock_id id;
	uint8_t grmode, rqmode;  /* LK_NONE: none */
	uint8_t flags;           /* WIRE_LKF_BAST, and VALBLK of its request */
	uint8_t bast_mode;       /* the last blocking notification, or NONE */
};

/* An operation kept for later: parked for a resource on its way, held
 * while recovering, or waiting for a node to be seen dead here. */
struct lpend {
	struct lpend *next;
	int from;
	struct wire_lock_op op;
};

struct lres {
	struct home h;           /* first: where the resource lives */
	struct lres *hnext;
	uint64_t key, parent;
	bool named;              /* name and parent are known */
	bool asking;             /* an adoption lookup is out */
	bool replaying;          /* parked operations are being replayed:
				    grant once they all are in */
	bool lvb_valid;
	uint8_t name_len;
	uint8_t rebuilt_mode;    /* the strongest mode a REBUILD brought the
				    value block with, or NONE */
	uint32_t seen_epoch;     /* the newest epoch a parked op named */
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
	struct lkb *granted, *converting, *waiting;
	struct lpend *parked;
};

enum lstate { LS_WAITING = 1, LS_GRANTED, LS_CONVERTING, LS_UNLOCKING };

/* A lock of one of this node's processes. */
struct llock {
	struct llock *next;      /* the owner's list */
	struct llock *hnext;     /* by handle */
	struct lclient *lc;      /* NULL once its process is gone */
	uint32_t owner;          /* its process's connection, for good: a
				    release sent again after the process
				    died must still name the lock */
	uint64_t handle, lkid, key, parent_key;
	struct llock *parent;
	unsigned children;
	uint8_t state;           /* enum lstate */
	uint8_t grmode, rqmode;
	uint8_t name_len;
	uint32_t flags;          /* WIRE_LKF_* of the request in progress */
	int32_t cancel;          /* a CANCEL is on its way: the error it
				    ends the request with, else 0 */
	bool lvb_ok;             /* lvb is the block as last granted */
	int16_t master;          /* the node that last answered, or -1 */
	uint32_t seq;            /* deadlock searches of this wait */
	uint64_t req_id;         /* the IPC request to answer, 0: none */
	uint64_t deadline_ms;    /* the request's timeout, 0: none */
	uint64_t search_ms;      /* the next deadlock search, 0: none */
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
};

struct lclient {
	struct lclient *next;
	int fd;                  /* its connection: events go there */
	uint32_t id;
	struct llock *locks;
	bool lost_logged;
	struct wire_lock_id seen[LK_SEEN]; /* searches passed on (handle,
					      node, and seq in owner) */
	unsigned seen_next;
};

struct lockmgr {
	struct lres *res[LK_BUCKETS];
	struct llock *byh[LK_BUCKETS];
	struct lclient *clients;
	uint32_t next_client;
	uint64_t next_handle;
	int timer_fd;
	struct watch w;
	unsigned deadlock_ms;
	uint64_t dead;                       /* nodes seen dead here */
	uint64_t await[WIRE_MAX_NODES];      /* per dead node: who has yet
						to say RECOVERED */
	uint64_t reported[WIRE_MAX_NODES];   /* per dead node: who said it */
	struct lpend *held, **held_tail;     /* ops held while recovering */
	struct lpend *early;                 /* ops naming a death not yet
						seen here */
};

static struct lockmgr *LK(const struct dsmd *d)
{
	return d->lk;
}

static uint64_t bit(int node)
{
	return 1ull << node;
}

/* ---------------------------------------------------------------------- */
/* Modes                                                                  */

/* Bit m of compat[a]: mode a may be held with mode m. */
static const uint8_t compat[WIRE_LK_MODES] = {
	[DSM_LK_NL] = 0x3f, /* all */
	[DSM_LK_CR] = 0x1f, /* all but EX */
	[DSM_LK_CW] = 0x07, /* NL CR CW */
	[DSM_LK_PR] = 0x0b, /* NL CR PR */
	[DSM_LK_PW] = 0x03, /* NL CR */
	[DSM_LK_EX] = 0x01, /* NL */
};

bool lock_compatible(unsigned a, unsigned b)
{
	if (a == LK_NONE || b == LK_NONE)
		return true;
	return a < WIRE_LK_MODES && b < WIRE_LK_MODES && (compat[a] >> b & 1);
}

/* Whether mode b lets everything through that mode a does: a conversion
 * from a to b can never conflict with the locks a was granted beside. */
static bool weaker_or_equal(unsigned b, unsigned a)
{
	return (compat[b] & compat[a]) == compat[a];
}

uint64_t lock_key(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
	size_t i;

	for (i = 0; i < 8; i++) {
		h ^= (parent >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	for (i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static uint64_t owner_rank(const struct wire_lock_id *id)
{
	return (uint64_t)id->node << 32 | id->owner;
}

static bool same_lock(const struct wire_lock_id *a, const struct wire_lock_id *b)
{
	return a->handle == b->handle && a->node == b->node &&
	       a->owner == b->owner;
}

/* ---------------------------------------------------------------------- */
/* Tables                                                                 */

static struct lres *res_get(struct dsmd *d, uint64_t key, bool create)
{
	struct lockmgr *lk = LK(d);
	struct lres **pp = &lk->res[key % LK_BUCKETS], *r;

	for (r = *pp; r; r = r->hnext)
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
	r->hnext = *pp;
	*pp = r;
	return r;
}

static struct llock *by_handle(struct dsmd *d, uint64_t handle)
{
	struct llock *l;

	for (l = LK(d)->byh[handle % LK_BUCKETS]; l; l = l->hnext)
		if (l->handle == handle)
			return l;
	return NULL;
}

static struct llock *by_lkid(struct lclient *lc, uint64_t lkid)
{
	struct llock *l;

	for (l = lc->locks; l; l = l->next)
		if (l->lkid == lkid)
			return l;
	return NULL;
}

/* l no longer counts as its parent's child. */
static void drop_parent(struct llock *l)
{
	if (l->parent) {
		l->parent->children--;
		l->parent = NULL;
	}
}

static void unlink_owner(struct llock *l)
{
	struct llock **pp;

	if (!l->lc)
		return;
	for (pp = &l->lc->locks; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	l->lc = NULL;
	drop_parent(l);
}

static void llock_free(struct dsmd *d, struct llock *l)
{
	struct llock **pp;

	unlink_owner(l);
	for (pp = &LK(d)->byh[l->handle % LK_BUCKETS]; *pp; pp = &(*pp)->hnext) {
		if (*pp == l) {
			*pp = l->hnext;
			break;
		}
	}
	free(l);
}

static void pend_append(struct lpend **head, struct lpend *p)
{
	while (*head)
		head = &(*head)->next;
	p->next = NULL;
	*head = p;
}

static struct lpend *pend_new(int from, const struct wire_lock_op *o)
{
	struct lpend *p = calloc(1, sizeof(*p));

	if (!p) {
		log_err("out of memory keeping a lock operation: dropped");
		return NULL;
	}
	p->from = from;
	p->op = *o;
	return p;
}

/* ---------------------------------------------------------------------- */
/* Where a resource's master is                                           */

static bool usable(const struct dsmd *d, int node)
{
	return node == d->cfg.node || cluster_peer_alive(d, node);
}

/* The node that takes a resource over when its master died: the first
 * live node from the placement's home on. */
static int recovery_master(const struct dsmd *d, uint64_t key)
{
	int n = d->cfg.nnodes, i, c;

	for (i = 0; i < n; i++) {
		c = (int)((key + (uint64_t)i) % (uint64_t)n);
		if (usable(d, c))
			return c;
	}
	return d->cfg.node;
}

/* Where to send an operation on key: the master as this node knows it, or
 * its recovery master when that one is dead (*dead then names it). */
static int target(struct dsmd *d, uint64_t key, uint32_t *epoch, int *dead)
{
	struct lres *r = res_get(d, key, false);
	int to = home_where(d, key, r ? &r->h : NULL, epoch);

	*dead = -1;
	if (!usable(d, to)) {
		*dead = to;
		*epoch = 0;
		to = recovery_master(d, key);
	}
	return to;
}

/* ---------------------------------------------------------------------- */
/* Owner side: talking to masters and to the process                      */

static void fill_op(struct dsmd *d, const struct llock *l, unsigned op,
		    struct wire_lock_op *o)
{
	*o = (struct wire_lock_op){
		.key = l->key, .parent = l->parent_key,
		.id = {.handle = l->handle, .owner = l->owner,
		       .node = (uint16_t)d->cfg.node},
		.op = op, .flags = l->flags, .grmode = l->grmode,
		.rqmode = l->rqmode, .name_len = l->name_len,
		.route = {.origin = (uint16_t)d->cfg.node},
	};
	memcpy(o->name, l->name, l->name_len);
	memcpy(o->lvb, l->lvb, sizeof(o->lvb));
}

static void send_op(struct dsmd *d, struct wire_lock_op *o)
{
	uint32_t epoch;
	int dead, to = target(d, o->key, &epoch, &dead);

	o->route.epoch = epoch;
	o->reserved = dead >= 0 ? (uint8_t)(dead + 1) : 0;
	mem_send(d, to, WIRE_LOCK_OP, 0, o, sizeof(*o));
}

static void owner_send(struct dsmd *d, struct llock *l, unsigned op,
		       int32_t status)
{
	struct wire_lock_op o;

	fill_op(d, l, op, &o);
	o.status = status;
	send_op(d, &o);
}

/* Whether l's request or conversion is in progress. */
static bool waits(const struct llock *l)
{
	return l->state == LS_WAITING || l->state == LS_CONVERTING;
}

/* End l's wait with status (sent again with it if the CANCEL is lost). */
static void cancel(struct dsmd *d, struct llock *l, int32_t status)
{
	l->cancel = status;
	owner_send(d, l, WIRE_LOCK_CANCEL, status);
}

static void event(struct lclient *lc, uint64_t req_id,
		  const struct wire_ipc_lock_event *ev)
{
	/* A process that does not read its connection loses events, and
	 * its blocked callers wait: say so once. */
	if (lc && lc->fd >= 0 &&
	    ipc_send(lc->fd, WIRE_IPC_LOCK_EVENT, req_id, ev, sizeof(*ev)) &&
	    !lc->lost_logged) {
		lc->lost_logged = true;
		log_warn("a process's lock connection is full: events lost");
	}
}

static void complete(struct lclient *lc, uint64_t req_id, uint64_t lkid,
		     int status, unsigned mode)
{
	struct wire_ipc_lock_event ev = {.kind = WIRE_IPC_LKE_COMPLETE,
					 .status = status, .lkid = lkid,
					 .mode = mode};

	event(lc, req_id, &ev);
}

/* A release is done (its master answered, or died): the process's
 * dsm_unlock() returns. */
static void released(struct dsmd *d, struct llock *l)
{
	if (l->req_id)
		complete(l->lc, l->req_id, l->lkid, 0, LK_NONE);
	llock_free(d, l);
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
	l->cancel = 0;
	l->rqmode = LK_NONE;
	if (l->state == LS_WAITING && status) {
		/* A new lock that was not granted does not exist. */
		ev.mode = LK_NONE;
		llock_free(d, l);
	} else {
		if (!status && rp)
			l->grmode = rp->mode;
		l->state = LS_GRANTED;
		ev.mode = l->grmode;
	}
	event(lc, req, &ev);
}

static void on_reply(struct dsmd *d, int from, const struct wire_lock_reply *rp)
{
	struct llock *l = by_handle(d, rp->id.handle);

	if (rp->id.node != d->cfg.node || rp->kind >= WIRE_LKR_KIND_MAX ||
	    (rp->kind == WIRE_LKR_DONE && rp->mode >= WIRE_LK_MODES &&
	     !rp->status) ||
	    (rp->kind == WIRE_LKR_BAST && rp->mode >= WIRE_LK_MODES)) {
		d->mem.st.bad_msgs++;
		return;
	}
	/* A search's answer comes from the master of the resource where the
	 * cycle closed, which need not be this lock's. */
	if (!l || (l->key != rp->key && rp->kind != WIRE_LKR_DEADLOCK))
		return; /* a late answer for a lock that is gone */
	if (rp->kind != WIRE_LKR_DEADLOCK) {
		l->master = (int16_t)from;
		home_learn(d, &home_lock_kind, rp->key, from, rp->epoch);
	}
	switch (rp->kind) {
	case WIRE_LKR_DONE:
		if (waits(l))
			finish(d, l, rp->status, rp);
		break;
	case WIRE_LKR_BAST:
		if (l->lc && (l->state == LS_GRANTED ||
			      l->state == LS_CONVERTING)) {
			struct wire_ipc_lock_event ev = {
				.kind = WIRE_IPC_LKE_BAST, .lkid = l->lkid,
				.mode = rp->mode};

			d->mem.st.lock_basts++;
			event(l->lc, 0, &ev);
		}
		break;
	case WIRE_LKR_UNLOCKED:
		if (l->state == LS_UNLOCKING)
			released(d, l);
		break;
	case WIRE_LKR_DEADLOCK:
		if (waits(l) && !l->cancel && rp->seq == l->seq) {
			log_info("lock %.*s: deadlock, this request is the "
				 "victim", l->name_len, l->name);
			d->mem.st.lock_deadlocks++;
			cancel(d, l, -EDEADLK);
		}
		break;
	}
}

/* A search reached an owner of this node: pass it on to the masters of
 * every lock that owner waits for. */
static void on_probe(struct dsmd *d, const struct wire_lock_probe *pb)
{
	struct lclient *lc;
	struct llock *l;
	struct wire_lock_id tag = pb->origin;
	unsigned i;

	for (lc = LK(d)->clients; lc && lc->id != pb->target; lc = lc->next)
		;
	if (!lc)
		return;
	tag.reserved = (uint16_t)pb->seq; /* remember the search number too */
	for (i = 0; i < LK_SEEN; i++)
		if (same_lock(&lc->seen[i], &tag) &&
		    lc->seen[i].reserved == tag.reserved)
			return; /* already passed on: a cycle not ours */
	lc->seen[lc->seen_next++ % LK_SEEN] = tag;
	for (l = lc->locks; l; l = l->next) {
		struct wire_lock_op o;

		if (!waits(l))
			continue;
		fill_op(d, l, WIRE_LOCK_SEARCH, &o);
		o.origin = pb->origin;
		o.seq = pb->seq;
		o.hops = pb->hops;
		send_op(d, &o);
	}
}

/* ---------------------------------------------------------------------- */
/* Master side                                                            */

static void reply(struct dsmd *d, const struct lres *r,
		  const struct wire_lock_id *id, unsigned kind, int status,
		  unsigned mode, bool with_lvb)
{
	struct wire_lock_reply rp = {.key = r->key, .id = *id, .kind = kind,
				     .status = status, .mode = (uint8_t)mode,
				     .epoch = r->h.epoch};

	if (with_lvb) {
		rp.flags = WIRE_LKR_LVB | (r->lvb_valid ? 0 : WIRE_LKR_LVB_BAD);
		memcpy(rp.lvb, r->lvb, sizeof(rp.lvb));
	}
	mem_send(d, id->node, WIRE_LOCK_REPLY, 0, &rp, sizeof(rp));
}

static struct lkb **find_in(struct lkb **pp, const struct wire_lock_id *id)
{
	for (; *pp; pp = &(*pp)->next)
		if (same_lock(&(*pp)->id, id))
			return pp;
	return NULL;
}

/* The lock id names in any of the resource's queues, or NULL. */
static struct lkb **find_any(struct lres *r, const struct wire_lock_id *id)
{
	struct lkb **pp = find_in(&r->granted, id);

	if (!pp)
		pp = find_in(&r->converting, id);
	return pp ? pp : find_in(&r->waiting, id);
}

/* A lock block as the master keeps it; NULL when out of memory. */
static struct lkb *new_lkb(const struct wire_lock_id *id, unsigned grmode,
			   unsigned rqmode, uint32_t flags)
{
	struct lkb *b = calloc(1, sizeof(*b));

	if (b)
		*b = (struct lkb){.id = *id, .grmode = (uint8_t)grmode,
				  .rqmode = (uint8_t)rqmode,
				  .flags = (uint8_t)(flags & (WIRE_LKF_BAST |
							      WIRE_LKF_VALBLK)),
				  .bast_mode = LK_NONE};
	return b;
}

static void append(struct lkb **pp, struct lkb *b)
{
	while (*pp)
		pp = &(*pp)->next;
	b->next = NULL;
	*pp = b;
}

static void free_lkbs(struct lkb **pp)
{
	struct lkb *b;

	while ((b = *pp)) {
		*pp = b->next;
		free(b);
	}
}

static void free_queues(struct lres *r)
{
	free_lkbs(&r->granted);
	free_lkbs(&r->converting);
	free_lkbs(&r->waiting);
}

/* Whether mode may be granted beside every granted mode but skip's. */
static bool fits(const struct lres *r, const struct lkb *skip, unsigned mode)
{
	const struct lkb *b;

	for (b = r->granted; b; b = b->next)
		if (b != skip && !lock_compatible(b->grmode, mode))
			return false;
	for (b = r->converting; b; b = b->next)
		if (b != skip && !lock_compatible(b->grmode, mode))
			return false;
	return true;
}

static void grant(struct dsmd *d, struct lres *r, struct lkb *b)
{
	bool lvb = (b->flags & WIRE_LKF_VALBLK) && b->rqmode >= DSM_LK_PR;

	b->grmode = b->rqmode;
	b->rqmode = LK_NONE;
	b->bast_mode = LK_NONE;
	append(&r->granted, b);
	reply(d, r, &b->id, WIRE_LKR_DONE, 0, b->grmode, lvb);
}

static bool recovering(const struct dsmd *d)
{
	const struct lockmgr *lk = LK(d);
	int i;

	for (i = 0; i < d->cfg.nnodes; i++)
		if (lk->await[i])
			return true;
	return false;
}

/* Tell the holders that block b, once per mode wanted. */
static void notify_blockers(struct dsmd *d, struct lres *r,
			    const struct lkb *b)
{
	struct lkb *lists[2] = {r->granted, r->converting}, *h;
	int i;

	for (i = 0; i < 2; i++) {
		for (h = lists[i]; h; h = h->next) {
			if (h == b || lock_compatible(h->grmode, b->rqmode) ||
			    !(h->flags & WIRE_LKF_BAST) ||
			    h->bast_mode == b->rqmode)
				continue;
			h->bast_mode = b->rqmode;
			reply(d, r, &h->id, WIRE_LKR_BAST, 0, b->rqmode, false);
		}
	}
}

/* Grant what can be granted, in order; tell holders that block the rest. */
static void grant_pass(struct dsmd *d, struct lres *r)
{
	struct lkb *b;

	if (recovering(d) || r->replaying || !home_is_master(d, r->key, &r->h))
		return;
	while ((b = r->converting) && fits(r, b, b->rqmode)) {
		r->converting = b->next;
		grant(d, r, b);
	}
	while (!r->converting && (b = r->waiting) && fits(r, NULL, b->rqmode)) {
		r->waiting = b->next;
		grant(d, r, b);
	}
	for (b = r->converting; b; b = b->next)
		notify_blockers(d, r, b);
	for (b = r->waiting; b; b = b->next)
		notify_blockers(d, r, b);
}

static bool idle(const struct lres *r)
{
	const struct lkb *b;
	unsigned n = 0;

	if (r->converting || r->waiting || r->parked || r->asking)
		return false;
	for (b = r->granted; b; b = b->next)
		n++;
	return n <= LK_PACK_MAX;
}

/* The resource is quiet: move it if its users say so. */
static void settle(struct dsmd *d, struct lres *r)
{
	int to;

	if (!idle(r) || recovering(d))
		return;
	to = home_decide(d, &home_lock_kind, r->key, &r->h, -1);
	if (to >= 0)
		home_migrate(d, &home_lock_kind, r->key, &r->h, to);
}

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

static void op_new(struct dsmd *d, struct lres *r, const struct wire_lock_op *o)
{
	struct lkb *b;

	if (find_any(r, &o->id))
		return; /* sent again after a refusal; the first got here */
	if (!name_matches(r, o)) {
		reply(d, r, &o->id, WIRE_LKR_DONE, -ENOTUNIQ, LK_NONE, false);
		return;
	}
	b = new_lkb(&o->id, LK_NONE, o->rqmode, o->flags);
	if (!b) {
		reply(d, r, &o->id, WIRE_LKR_DONE, -ENOMEM, LK_NONE, false);
		return;
	}
	if ((o->flags & WIRE_LKF_NOQUEUE) &&
	    (recovering(d) || r->converting || r->waiting ||
	     !fits(r, NULL, b->rqmode))) {
		reply(d, r, &b->id, WIRE_LKR_DONE, -EAGAIN, LK_NONE, false);
		free(b);
		return;
	}
	append(&r->waiting, b);
}

static void op_convert(struct dsmd *d, struct lres *r,
		       const struct wire_lock_op *o)
{
	struct lkb **pp = find_in(&r->granted, &o->id), *b;

	if (!pp) {
		if (!find_in(&r->converting, &o->id))
			reply(d, r, &o->id, WIRE_LKR_DONE, -ENOLCK, LK_NONE,
			      false);
		return;
	}
	b = *pp;
	b->rqmode = o->rqmode;
	b->flags = (uint8_t)((b->flags & ~WIRE_LKF_VALBLK) |
			     (o->flags & WIRE_LKF_VALBLK));
	if (weaker_or_equal(o->rqmode, b->grmode)) {
		/* Down (or sideways into less): nothing can conflict. */
		write_lvb(r, b, o);
		b->grmode = b->rqmode;
		b->rqmode = LK_NONE;
		b->bast_mode = LK_NONE;
		reply(d, r, &b->id, WIRE_LKR_DONE, 0, b->grmode,
		      (b->flags & WIRE_LKF_VALBLK) && b->grmode >= DSM_LK_PR);
		return;
	}
	if ((o->flags & WIRE_LKF_NOQUEUE) &&
	    (recovering(d) || r->converting || !fits(r, b, b->rqmode))) {
		b->rqmode = LK_NONE;
		reply(d, r, &b->id, WIRE_LKR_DONE, -EAGAIN, b->grmode, false);
		return;
	}
	*pp = b->next;
	append(&r->converting, b);
}

static void op_unlock(struct dsmd *d, struct lres *r,
		      const struct wire_lock_op *o)
{
	struct lkb **pp = find_any(r, &o->id), *b;

	if (pp) {
		b = *pp;
		*pp = b->next;
		write_lvb(r, b, o);
		free(b);
	}
	reply(d, r, &o->id, WIRE_LKR_UNLOCKED, 0, LK_NONE, false);
}

static void op_cancel(struct dsmd *d, struct lres *r,
		      const struct wire_lock_op *o)
{
	struct lkb **pp = find_in(&r->waiting, &o->id), *b;
	int status = o->status < 0 ? o->status : -ECANCELED;

	if (pp) {
		b = *pp;
		*pp = b->next;
		reply(d, r, &b->id, WIRE_LKR_DONE, status, LK_NONE, false);
		free(b);
		return;
	}
	pp = find_in(&r->converting, &o->id);
	if (pp) {
		/* A conversion that fails keeps the granted mode. */
		b = *pp;
		*pp = b->next;
		b->rqmode = LK_NONE;
		append(&r->granted, b);
		reply(d, r, &b->id, WIRE_LKR_DONE, status, b->grmode, false);
	}
	/* Else it was granted first: the grant is the answer. */
}

/* A survivor's lock on a resource whose master died. */
static void op_rebuild(struct lres *r, const struct wire_lock_op *o)
{
	struct lkb *b;

	if (find_any(r, &o->id))
		return;
	name_matches(r, o);
	b = new_lkb(&o->id, o->grmode, o->rqmode, o->flags);
	if (!b)
		return;
	if (b->grmode == LK_NONE)
		append(&r->waiting, b);
	else if (b->rqmode != LK_NONE)
		append(&r->converting, b);
	else
		append(&r->granted, b);
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

/* A search for o->origin found x blocking the lock it is at: x's owner is
 * the origin's (a cycle: tell the origin), or, if smaller, is visited. */
static void visit(struct dsmd *d, const struct wire_lock_op *o,
		  const struct lkb *x)
{
	struct wire_lock_probe pb = {.origin = o->origin, .seq = o->seq,
				     .hops = o->hops + 1,
				     .target = x->id.owner};

	if (owner_rank(&x->id) == owner_rank(&o->origin)) {
		struct wire_lock_reply rp = {.id = o->origin,
					     .kind = WIRE_LKR_DEADLOCK,
					     .seq = o->seq};

		mem_send(d, o->origin.node, WIRE_LOCK_REPLY, 0, &rp,
			 sizeof(rp));
	} else if (owner_rank(&x->id) < owner_rank(&o->origin)) {
		mem_send(d, x->id.node, WIRE_LOCK_PROBE, 0, &pb, sizeof(pb));
	}
}

/* Who blocks the lock o names: the owners of granted or converting locks
 * in a mode incompatible with what it asks, and of the locks queued ahead
 * of it (conversions go first, each queue in order). */
static void search(struct dsmd *d, struct lres *r, const struct wire_lock_op *o)
{
	struct lkb **pp = find_in(&r->converting, &o->id), *b, *x;
	bool converting = pp != NULL;

	if (!pp)
		pp = find_in(&r->waiting, &o->id);
	if (!pp || o->hops > 4u * WIRE_MAX_NODES)
		return;
	b = *pp;
	for (x = r->granted; x; x = x->next)
		if (!lock_compatible(x->grmode, b->rqmode))
			visit(d, o, x);
	for (x = r->converting; x; x = x->next) {
		bool ahead = !converting || find_in(&x->next, &b->id);

		if (x != b && (ahead || !lock_compatible(x->grmode, b->rqmode)))
			visit(d, o, x);
	}
	for (x = r->waiting; !converting && x && x != b; x = x->next)
		visit(d, o, x);
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
		op_rebuild(r, o);
		break;
	case WIRE_LOCK_SEARCH:
		search(d, r, o);
		return;
	}
	grant_pass(d, r);
	settle(d, r);
}

static void park(struct lres *r, int from, const struct wire_lock_op *o)
{
	struct lpend *p = pend_new(from, o);

	if (!r->named)
		name_matches(r, o); /* the key is the name's: checked */
	if (p)
		pend_append(&r->parked, p);
	if (o->route.epoch > r->seen_epoch)
		r->seen_epoch = o->route.epoch;
}

static void handle_op(struct dsmd *d, int from, const struct wire_lock_op *o);

/* Replay what was parked, in order, as one batch: a resource rebuilt
 * from its survivors' locks must have every one of them before anything
 * is granted from it. */
static void replay_parked(struct dsmd *d, struct lres *r)
{
	struct lpend *p = r->parked;

	r->parked = NULL;
	r->replaying = true;
	while (p) {
		struct lpend *next = p->next;

		handle_op(d, p->from, &p->op);
		free(p);
		p = next;
	}
	r->replaying = false;
	grant_pass(d, r);
	settle(d, r);
}

/* This node is not the master, and what it knows names a dead node (or
 * nothing, and the placement's home is dead): ask who masters it now. */
static bool orphaned(struct dsmd *d, struct lres *r)
{
	uint32_t epoch;

	return !usable(d, home_where(d, r->key, &r->h, &epoch));
}

static void handle_op(struct dsmd *d, int from, const struct wire_lock_op *o)
{
	struct wire_lock_op fw = *o;
	struct lres *r;
	int next;

	r = res_get(d, o->key, true);
	if (!r)
		return;
	if (!home_is_master(d, o->key, &r->h) && (r->asking ||
						   orphaned(d, r))) {
		park(r, from, o);
		if (!r->asking) {
			r->asking = true;
			home_ask(d, &home_lock_kind, r->key, ADOPT_TOKEN);
		}
		return;
	}
	switch (home_route(d, o->key, &r->h, &fw.route, &next)) {
	case HOME_PARK:
		park(r, from, o);
		return;
	case HOME_FORWARD:
		mem_send(d, next, WIRE_LOCK_OP, 0, &fw, sizeof(fw));
		return;
	case HOME_NACK:
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
	    o->name_len == 0 || o->name_len > WIRE_LOCK_NAME_MAX ||
	    (mode_needed && o->rqmode >= WIRE_LK_MODES) ||
	    (o->grmode >= WIRE_LK_MODES && o->grmode != LK_NONE) ||
	    (o->rqmode >= WIRE_LK_MODES && o->rqmode != LK_NONE) ||
	    o->reserved > d->cfg.nnodes ||
	    (o->op == WIRE_LOCK_SEARCH && o->origin.node >= d->cfg.nnodes) ||
	    (o->op == WIRE_LOCK_REBUILD && o->grmode == LK_NONE &&
	     o->rqmode == LK_NONE) ||
	    home_route_check(d, from, &o->route) ||
	    lock_key(o->parent, o->name, o->name_len) != o->key)
		return -EINVAL;
	return 0;
}

static void on_op(struct dsmd *d, int from, const struct wire_lock_op *o)
{
	struct lockmgr *lk = LK(d);
	struct lpend *p;
	int dead = (int)o->reserved - 1;

	if (check_op(d, from, o)) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (dead >= 0 && dead != d->cfg.node && !(lk->dead & bit(dead))) {
		/* The sender saw a death this node has not seen yet: keep
		 * it until it has, so it is not sent to the dead node. */
		if ((p = pend_new(from, o)))
			pend_append(&lk->early, p);
		return;
	}
	if (recovering(d) && o->op != WIRE_LOCK_REBUILD) {
		if ((p = pend_new(from, o))) {
			*lk->held_tail = p;
			lk->held_tail = &p->next;
		}
		return;
	}
	handle_op(d, from, o);
}

/* ---------------------------------------------------------------------- */
/* Resources as a kind of directory entry (home.c moves them)             */

struct wire_lock_state {
	uint64_t parent;
	uint8_t name_len;
	uint8_t lvb_valid;
	uint16_t nlocks;
	uint32_t reserved;
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
} __attribute__((packed));

struct wire_lock_held {
	struct wire_lock_id id;
	uint8_t grmode, flags;
	uint16_t reserved;
} __attribute__((packed));

static bool lk_valid(const struct dsmd *d, uint64_t key)
{
	(void)d;
	return key != 0;
}

static struct home *lk_get(struct dsmd *d, uint64_t key, bool create)
{
	struct lres *r = res_get(d, key, create);

	return r ? &r->h : NULL;
}

static size_t lk_pack(struct dsmd *d, uint64_t key, struct home *h,
		      void *buf, size_t cap)
{
	struct lres *r = (struct lres *)h;
	struct wire_lock_state st = {.parent = r->parent,
				     .name_len = r->name_len,
				     .lvb_valid = r->lvb_valid};
	char *p = (char *)buf + sizeof(st);
	const struct lkb *b;

	(void)d;
	(void)key;
	memcpy(st.name, r->name, sizeof(st.name));
	memcpy(st.lvb, r->lvb, sizeof(st.lvb));
	for (b = r->granted; b; b = b->next) {
		struct wire_lock_held w = {.id = b->id, .grmode = b->grmode,
					   .flags = b->flags};

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

static int lk_unpack(struct dsmd *d, uint64_t key, struct home *h,
		     const void *buf, size_t len)
{
	struct lres *r = (struct lres *)h;
	struct wire_lock_state st;
	const char *p = (const char *)buf + sizeof(st);
	struct lkb *list = NULL;
	unsigned i;

	if (len < sizeof(st) || r->granted || r->converting || r->waiting)
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	if (len != sizeof(st) + st.nlocks * sizeof(struct wire_lock_held) ||
	    !st.name_len || st.name_len > WIRE_LOCK_NAME_MAX ||
	    lock_key(st.parent, st.name, st.name_len) != key)
		return -EINVAL;
	for (i = 0; i < st.nlocks; i++, p += sizeof(struct wire_lock_held)) {
		struct wire_lock_held w;
		struct lkb *b;

		memcpy(&w, p, sizeof(w));
		if (w.grmode >= WIRE_LK_MODES || w.id.node >= d->cfg.nnodes ||
		    !(b = new_lkb(&w.id, w.grmode, LK_NONE, w.flags))) {
			free_lkbs(&list);
			return -EINVAL;
		}
		append(&list, b);
	}
	r->granted = list;
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
	struct lres *r = (struct lres *)h;
	struct lpend *p;

	(void)key;
	free_queues(r);
	/* Whatever waited for it follows it, in order. */
	while ((p = r->parked)) {
		r->parked = p->next;
		if (!p->op.route.hops)
			p->op.route.hops = 1;
		p->op.route.epoch = h->epoch;
		mem_send(d, to, WIRE_LOCK_OP, 0, &p->op, sizeof(p->op));
		free(p);
	}
}

static void lk_arrived(struct dsmd *d, uint64_t key, struct home *h)
{
	(void)key;
	replay_parked(d, (struct lres *)h);
}

/* A request of ours was refused on its way: ask who masters it. */
static void lk_nacked(struct dsmd *d, uint64_t key, uint64_t token)
{
	struct llock *l = by_handle(d, token);

	if (l && l->key == key)
		home_ask(d, &home_lock_kind, key, token);
}

/* Send l's operation in progress again (after a refusal, or a death). */
static void resend(struct dsmd *d, struct llock *l)
{
	switch (l->state) {
	case LS_WAITING:
		owner_send(d, l, WIRE_LOCK_NEW, 0);
		break;
	case LS_CONVERTING:
		owner_send(d, l, WIRE_LOCK_CONVERT, 0);
		break;
	case LS_UNLOCKING:
		owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
		return;
	default:
		return;
	}
	if (l->cancel)
		owner_send(d, l, WIRE_LOCK_CANCEL, l->cancel);
}

static void lk_located(struct dsmd *d, uint64_t key, uint64_t token,
		       int master, uint32_t epoch)
{
	struct lres *r;
	struct llock *l;

	(void)epoch;
	if (token != ADOPT_TOKEN) {
		l = by_handle(d, token);
		if (l && l->key == key)
			resend(d, l); /* to what home_ask learnt */
		return;
	}
	r = res_get(d, key, false);
	if (!r || !r->asking)
		return;
	r->asking = false;
	if (master >= 0 && master != d->cfg.node && orphaned(d, r)) {
		/* What this node knew names a dead node: any live answer is
		 * better, whatever its epoch (else it would ask forever). */
		r->h.flags = HOME_KNOWN;
		r->h.hint = (uint16_t)master;
	} else if (master < 0 || master == d->cfg.node) {
		if (recovery_master(d, key) == d->cfg.node) {
			uint32_t e = r->h.epoch > r->seen_epoch ? r->h.epoch
								 : r->seen_epoch;

			log_info("lock %.*s: its master died; rebuilt here",
				 r->name_len, r->name);
			r->h.flags = HOME_KNOWN | HOME_MASTER;
			r->h.hint = (uint16_t)d->cfg.node;
			/* The block died with its master unless a holder
			 * brings it back (op_rebuild). */
			r->lvb_valid = false;
			r->rebuilt_mode = LK_NONE;
			r->h.epoch = e + 1;
			r->h.arrived_ms = r->h.decay_ms =
				(uint32_t)dsmd_now_ms();
			d->mem.st.lock_rebuilt++;
		} else {
			/* Not ours to adopt: on to the recovery master. */
			r->h.flags = HOME_KNOWN;
			r->h.hint = (uint16_t)recovery_master(d, key);
		}
	}
	replay_parked(d, r);
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

/* ---------------------------------------------------------------------- */
/* Recovery                                                               */

static void end_recovery(struct dsmd *d)
{
	struct lockmgr *lk = LK(d);
	struct lpend *p = lk->held;
	unsigned i;

	lk->held = NULL;
	lk->held_tail = &lk->held;
	log_info("lock recovery done");
	for (i = 0; i < LK_BUCKETS; i++) {
		struct lres *r;

		for (r = lk->res[i]; r; r = r->hnext)
			grant_pass(d, r);
	}
	while (p) {
		struct lpend *next = p->next;

		on_op(d, p->from, &p->op);
		free(p);
		p = next;
	}
}

static void heard_recovered(struct dsmd *d, int from, unsigned dead)
{
	struct lockmgr *lk = LK(d);
	bool was = recovering(d);

	lk->reported[dead] |= bit(from);
	lk->await[dead] &= ~bit(from);
	if (was && !recovering(d))
		end_recovery(d);
}

void lock_peer_down(struct dsmd *d, int node)
{
	struct lockmgr *lk = LK(d);
	struct lpend *p, *keep = NULL;
	unsigned i;
	int n;

	if (!lk || (lk->dead & bit(node)))
		return;
	lk->dead |= bit(node);
	/* Master side: the dead node's locks go; a writer's block with it. */
	for (i = 0; i < LK_BUCKETS; i++) {
		struct lres *r;

		for (r = lk->res[i]; r; r = r->hnext) {
			struct lkb **lists[3] = {&r->granted, &r->converting,
						 &r->waiting};
			int q;

			for (q = 0; q < 3; q++) {
				struct lkb **pp = lists[q], *b;

				while ((b = *pp)) {
					if (b->id.node != node) {
						pp = &b->next;
						continue;
					}
					if (b->grmode != LK_NONE &&
					    b->grmode >= DSM_LK_PW)
						r->lvb_valid = false;
					*pp = b->next;
					free(b);
				}
			}
		}
	}
	/* Owner side: what we hold of resources the dead node mastered goes
	 * to their recovery masters; releases it never answered are done. */
	for (i = 0; i < LK_BUCKETS; i++) {
		struct llock *l, *next;

		for (l = lk->byh[i]; l; l = next) {
			uint32_t epoch;
			struct lres *r = res_get(d, l->key, false);
			int where = home_where(d, l->key, r ? &r->h : NULL,
					       &epoch);

			next = l->hnext;
			if (where != node && l->master != node)
				continue;
			if (l->state == LS_UNLOCKING) {
				released(d, l);
				continue;
			}
			if (r && !home_is_master(d, l->key, &r->h)) {
				r->h.flags = HOME_KNOWN;
				r->h.hint = (uint16_t)node; /* dead: orphaned */
			}
			{
				struct wire_lock_op o;

				fill_op(d, l, WIRE_LOCK_REBUILD, &o);
				if (l->state == LS_WAITING)
					o.grmode = LK_NONE;
				if (l->state == LS_GRANTED)
					o.rqmode = LK_NONE;
				if (l->lvb_ok)
					o.flags |= WIRE_LKF_LVB;
				send_op(d, &o);
			}
			if (l->cancel) /* it may have died with the master */
				owner_send(d, l, WIRE_LOCK_CANCEL, l->cancel);
		}
	}
	/* Tell everyone we are done; wait for the others to say so. */
	for (n = 0; n < d->cfg.nnodes; n++) {
		struct wire_lock_recovered rc = {.dead = (uint32_t)node};

		if (n != d->cfg.node && cluster_peer_alive(d, n))
			mem_send(d, n, WIRE_LOCK_RECOVERED, 0, &rc, sizeof(rc));
	}
	lk->reported[node] |= bit(d->cfg.node);
	lk->await[node] = home_all_nodes(d) & ~lk->reported[node] & ~lk->dead &
			  ~bit(d->cfg.node);
	for (n = 0; n < d->cfg.nnodes; n++)
		lk->await[n] &= ~bit(node); /* it will not report */
	/* Operations that waited for this death. */
	p = lk->early;
	lk->early = NULL;
	while (p) {
		struct lpend *next = p->next;

		if ((int)p->op.reserved - 1 == node) {
			on_op(d, p->from, &p->op);
			free(p);
		} else {
			p->next = keep;
			keep = p;
		}
		p = next;
	}
	lk->early = keep;
	if (recovering(d))
		log_info("node %d died: rebuilding its lock resources", node);
	else
		end_recovery(d);
}

/* ---------------------------------------------------------------------- */
/* Timeouts and deadlock searches                                         */

static void arm_timer(struct dsmd *d)
{
	struct lockmgr *lk = LK(d);
	uint64_t first = 0, now = dsmd_now_ms();
	struct itimerspec its = {0};
	unsigned i;

	for (i = 0; i < LK_BUCKETS; i++) {
		struct llock *l;

		for (l = lk->byh[i]; l; l = l->hnext) {
			if (l->deadline_ms && (!first || l->deadline_ms < first))
				first = l->deadline_ms;
			if (l->search_ms && (!first || l->search_ms < first))
				first = l->search_ms;
		}
	}
	if (first) {
		uint64_t in = first > now ? first - now : 1;

		its.it_value.tv_sec = (time_t)(in / 1000);
		its.it_value.tv_nsec = (long)(in % 1000) * 1000000L;
	}
	timerfd_settime(lk->timer_fd, 0, &its, NULL);
}

void lock_on_timer(struct dsmd *d)
{
	struct lockmgr *lk = LK(d);
	uint64_t n, now = dsmd_now_ms();
	unsigned i;

	if (read(lk->timer_fd, &n, sizeof(n)) < 0) {
		/* Spurious: re-armed below all the same. */
	}
	for (i = 0; i < LK_BUCKETS; i++) {
		struct llock *l;

		for (l = lk->byh[i]; l; l = l->hnext) {
			if (!waits(l))
				continue;
			if (l->deadline_ms && now >= l->deadline_ms) {
				l->deadline_ms = 0;
				if (!l->cancel)
					cancel(d, l, -ETIMEDOUT);
			}
			if (l->search_ms && now >= l->search_ms && !l->cancel) {
				struct wire_lock_op o;

				l->seq++;
				l->search_ms = now + lk->deadlock_ms;
				fill_op(d, l, WIRE_LOCK_SEARCH, &o);
				o.origin = o.id;
				o.seq = l->seq;
				send_op(d, &o);
			}
		}
	}
	arm_timer(d);
}

void *lock_watch(struct dsmd *d)
{
	return &LK(d)->w;
}

int lock_timer_fd(const struct dsmd *d)
{
	return LK(d) ? LK(d)->timer_fd : -1;
}

/* ---------------------------------------------------------------------- */
/* Processes                                                              */

struct lclient *lock_client_new(struct dsmd *d, int fd)
{
	struct lockmgr *lk = LK(d);
	struct lclient *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return NULL;
	lc->fd = fd;
	lc->id = ++lk->next_client;
	lc->next = lk->clients;
	lk->clients = lc;
	return lc;
}

void lock_client_gone(struct dsmd *d, struct lclient *lc)
{
	struct lockmgr *lk = LK(d);
	struct lclient **pp;
	struct llock *l;

	if (!lc)
		return;
	/* Children first: their list order is newest first already. */
	while ((l = lc->locks)) {
		lc->locks = l->next;
		l->next = NULL;
		drop_parent(l);
		if (l->state == LS_UNLOCKING) {
			l->lc = NULL; /* nobody to answer any more */
			l->req_id = 0;
			continue;
		}
		l->flags = WIRE_LKF_DIED;
		l->state = LS_UNLOCKING;
		l->req_id = 0;
		l->deadline_ms = l->search_ms = 0;
		owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
		l->lc = NULL;
	}
	for (pp = &lk->clients; *pp; pp = &(*pp)->next) {
		if (*pp == lc) {
			*pp = lc->next;
			break;
		}
	}
	free(lc);
}

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

	d->mem.st.lock_requests++;
	if (target(d, l->key, &epoch, &dead) != d->cfg.node)
		d->mem.st.lock_remote++;
	owner_send(d, l, op, 0);
}

static int ipc_new(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		   const struct wire_ipc_lock *q)
{
	struct lockmgr *lk = LK(d);
	struct llock *l, *parent = NULL;

	if (!q->name_len)
		return -EINVAL;
	if (q->name_len > WIRE_LOCK_NAME_MAX)
		return -ENAMETOOLONG;
	if (!q->lkid || by_lkid(lc, q->lkid))
		return -EINVAL;
	if (q->parent) {
		parent = by_lkid(lc, q->parent);
		if (!parent || parent->state == LS_WAITING ||
		    parent->state == LS_UNLOCKING)
			return -ENOLCK;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*l = (struct llock){
		.lc = lc, .owner = lc->id, .handle = ++lk->next_handle,
		.lkid = q->lkid,
		.parent_key = parent ? parent->key : 0, .parent = parent,
		.state = LS_WAITING, .grmode = LK_NONE,
		.rqmode = (uint8_t)q->mode, .name_len = (uint8_t)q->name_len,
		.master = -1, .req_id = req_id,
	};
	memcpy(l->name, q->name, q->name_len);
	l->key = lock_key(l->parent_key, l->name, l->name_len);
	l->flags = request_flags(q);
	if (parent)
		parent->children++;
	l->next = lc->locks;
	lc->locks = l;
	l->hnext = lk->byh[l->handle % LK_BUCKETS];
	lk->byh[l->handle % LK_BUCKETS] = l;
	send_request(d, l, WIRE_LOCK_NEW);
	return 0;
}

static int ipc_convert(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		       const struct wire_ipc_lock *q)
{
	struct llock *l = by_lkid(lc, q->lkid);

	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	if (l->state != LS_GRANTED)
		return -EBUSY;
	l->state = LS_CONVERTING;
	l->rqmode = (uint8_t)q->mode;
	l->req_id = req_id;
	l->flags = request_flags(q);
	memcpy(l->lvb, q->lvb, sizeof(l->lvb));
	send_request(d, l, WIRE_LOCK_CONVERT);
	return 0;
}

static int ipc_unlock(struct dsmd *d, struct lclient *lc, uint64_t req_id,
		      const struct wire_ipc_lock *q)
{
	struct llock *l = by_lkid(lc, q->lkid);

	if (q->flags & ~(DSM_LKF_CANCEL | DSM_LKF_VALBLK))
		return -EINVAL;
	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	if (q->flags & DSM_LKF_CANCEL) {
		if (!waits(l))
			return -ENOLCK;
		if (!l->cancel)
			cancel(d, l, -ECANCELED);
		return 0;
	}
	if (l->state != LS_GRANTED)
		return -EBUSY;
	if (l->children)
		return -ENOTEMPTY;
	l->flags = q->flags & DSM_LKF_VALBLK ? WIRE_LKF_VALBLK : 0;
	memcpy(l->lvb, q->lvb, sizeof(l->lvb));
	l->state = LS_UNLOCKING;
	l->req_id = req_id;
	drop_parent(l); /* the parent may go as this one does */
	owner_send(d, l, WIRE_LOCK_UNLOCK, 0);
	return 1; /* answered when the master answers */
}

static int ipc_master(struct dsmd *d, struct lclient *lc,
		      const struct wire_ipc_lock *q)
{
	struct llock *l = by_lkid(lc, q->lkid);
	uint32_t epoch;
	int dead;

	if (!l || l->state == LS_UNLOCKING)
		return -ENOLCK;
	return target(d, l->key, &epoch, &dead);
}

bool lock_ipc(struct dsmd *d, struct lclient *lc, const struct wire_msg *m)
{
	struct wire_ipc_lock q;
	uint64_t id = m->hdr->req_id;
	int ret;

	if (m->hdr->type != WIRE_IPC_LOCK)
		return false;
	memcpy(&q, m->body, sizeof(q));
	switch (q.op) {
	case WIRE_IPC_LK_LOCK:
		if (q.mode >= WIRE_LK_MODES ||
		    (q.flags & ~(DSM_LKF_NOQUEUE | DSM_LKF_CONVERT |
				 DSM_LKF_ASYNC | DSM_LKF_VALBLK))) {
			ret = -EINVAL;
			break;
		}
		ret = q.flags & DSM_LKF_CONVERT ? ipc_convert(d, lc, id, &q)
						: ipc_new(d, lc, id, &q);
		if (!ret) {
			struct llock *l = by_lkid(lc, q.lkid);

			if (l && q.timeout_ms)
				l->deadline_ms = dsmd_now_ms() + q.timeout_ms;
			if (l && !(q.flags & DSM_LKF_NOQUEUE))
				l->search_ms = dsmd_now_ms() +
					       LK(d)->deadlock_ms;
			if (l && (l->deadline_ms || l->search_ms))
				arm_timer(d);
			return true; /* answered when the master answers */
		}
		break;
	case WIRE_IPC_LK_UNLOCK:
		ret = ipc_unlock(d, lc, id, &q);
		if (ret > 0)
			return true;
		break;
	case WIRE_IPC_LK_MASTER:
		ret = ipc_master(d, lc, &q);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	complete(lc, id, q.lkid, ret, LK_NONE);
	return true;
}

/* ---------------------------------------------------------------------- */

void lock_on_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	switch (m->hdr->type) {
	case WIRE_LOCK_OP: {
		struct wire_lock_op o;

		memcpy(&o, m->body, sizeof(o));
		on_op(d, from, &o);
		return;
	}
	case WIRE_LOCK_REPLY: {
		struct wire_lock_reply rp;

		memcpy(&rp, m->body, sizeof(rp));
		on_reply(d, from, &rp);
		return;
	}
	case WIRE_LOCK_PROBE: {
		struct wire_lock_probe pb;

		memcpy(&pb, m->body, sizeof(pb));
		if (pb.origin.node >= d->cfg.nnodes ||
		    pb.hops > 4u * WIRE_MAX_NODES) {
			d->mem.st.bad_msgs++;
			return;
		}
		on_probe(d, &pb);
		return;
	}
	case WIRE_LOCK_RECOVERED: {
		struct wire_lock_recovered rc;

		memcpy(&rc, m->body, sizeof(rc));
		if (rc.dead >= (uint32_t)d->cfg.nnodes ||
		    (int)rc.dead == d->cfg.node) {
			d->mem.st.bad_msgs++;
			return;
		}
		heard_recovered(d, from, rc.dead);
		return;
	}
	default:
		d->mem.st.bad_msgs++;
		return;
	}
}

int lock_setup(struct dsmd *d)
{
	struct lockmgr *lk = calloc(1, sizeof(*lk));

	if (!lk)
		return -ENOMEM;
	lk->timer_fd = timerfd_create(CLOCK_MONOTONIC,
				      TFD_CLOEXEC | TFD_NONBLOCK);
	if (lk->timer_fd < 0) {
		free(lk);
		return -errno;
	}
	lk->w.kind = W_LOCK;
	lk->held_tail = &lk->held;
	lk->deadlock_ms = d->cfg.deadlock_ms ? d->cfg.deadlock_ms
					     : LOCK_DEADLOCK_MS;
	d->lk = lk;
	return 0;
}

static void free_pends(struct lpend *p)
{
	while (p) {
		struct lpend *next = p->next;

		free(p);
		p = next;
	}
}

void lock_teardown(struct dsmd *d)
{
	struct lockmgr *lk = LK(d);
	unsigned i;

	if (!lk)
		return;
	for (i = 0; i < LK_BUCKETS; i++) {
		while (lk->res[i]) {
			struct lres *r = lk->res[i];

			lk->res[i] = r->hnext;
			free_queues(r);
			free_pends(r->parked);
			free(r);
		}
		while (lk->byh[i]) {
			struct llock *l = lk->byh[i];

			lk->byh[i] = l->hnext;
			free(l);
		}
	}
	while (lk->clients) {
		struct lclient *lc = lk->clients;

		lk->clients = lc->next;
		free(lc);
	}
	free_pends(lk->held);
	free_pends(lk->early);
	close(lk->timer_fd);
	free(lk);
	d->lk = NULL;
}
