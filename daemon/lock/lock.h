/* The lock manager, a module of dsmd: named resources, six modes, three
 * queues, value blocks, blocking notifications, deadlock search and
 * rebuilding after a master dies.
 *
 * Two sides, like the directory.  The owner side keeps the locks of this
 * node's processes (one lock connection each) and talks to masters; the
 * master side keeps, per resource it masters, the granted, converting and
 * waiting queues and the value block.  Resources are directory entries of
 * kind WIRE_ENTRY_LOCK: the home module places, counts and moves them as it
 * does pages.
 *
 *   mode.c      modes and resource keys (pure: no daemon, tested alone)
 *   table.c     resources by key, locks by handle, kept operations
 *   owner.c     the owner side: operations to masters, their answers,
 *               events to the process, each lock's timer
 *   ipc.c       a process's requests; its connection closing
 *   master.c    the master side: queues, grants, parking, routing
 *   deadlock.c  deadlock searches
 *   kind.c      resources as directory entries (home_lock_kind)
 *   recover.c   a node's death: rebuilding, and the barrier after it
 *   lock.c      the module table and the node message handlers
 *
 * This is the module's one header.  Its first part needs nothing of the
 * daemon: dsmd.c takes LOCK_DEADLOCK_MS from it, and mode.c and its unit
 * test, which build without the daemon, define LOCK_MODE_ONLY and see that
 * part alone.
 */
#ifndef DSMD_LOCK_MODE_H
#define DSMD_LOCK_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define LOCK_DEADLOCK_MS 1000 /* default wait before a deadlock search */

/* The standard compatibility of two modes (enum dsm_lock_mode); no mode
 * (WIRE_LK_NONE) is compatible with everything. */
bool lock_compatible(unsigned a, unsigned b);
/* Whether mode b lets everything through that mode a does: a conversion
 * from a to b can never conflict with the locks a was granted beside. */
bool lock_weaker_or_equal(unsigned b, unsigned a);
/* A resource's key: its parent's key and its name, hashed; never 0. */
uint64_t lock_key(uint64_t parent, const char *name, size_t len);
/* An owner's place in the deadlock order: (node << 32) | connection. */
uint64_t lock_owner_rank(const struct wire_lock_id *id);
bool lock_same_lock(const struct wire_lock_id *a,
		    const struct wire_lock_id *b);

#endif

#if !defined(LOCK_MODE_ONLY) && !defined(DSMD_LOCK_H)
#define DSMD_LOCK_H

#include "dsmd.h"
#include "home/home.h"

#define LK_BUCKETS 1024u
#define LK_NONE WIRE_LK_NONE
#define LK_SEEN_MAX 4096u    /* searches an owner remembers passing on */
#define LK_PACK_MAX 96u      /* locks a resource may hold and still move */
#define LK_ADOPT_TOKEN UINT64_MAX /* home_ask() token: an adoption lookup */

extern const struct home_kind home_lock_kind;

static inline uint64_t lock_bit(int node)
{
	return 1ull << node;
}

/* ---------------------------------------------------------------------- */
/* The master side's state (master.c, unless a field says otherwise)     */

/* A lock as its resource's master sees it. */
struct lkb {
	struct list link;        /* one of its resource's three queues */
	struct wire_lock_id id;
	uint8_t grmode, rqmode;  /* LK_NONE: none */
	uint8_t flags;           /* WIRE_LKF_BAST, and VALBLK of its request */
	uint8_t bast_mode;       /* the last blocking notification, or NONE */
	uint32_t opseq;          /* the owner's last operation applied */
};

/* An operation kept for later: parked for a resource on its way, or held
 * while recovering. */
struct lpend {
	struct list link;        /* lres.parked or lockmgr.held */
	int from;
	struct wire_lock_op op;
};

/* A resource: on every node a request for it passed through; with queues
 * at its master only. */
struct lres {
	struct home h;           /* first: where the resource lives (home) */
	struct list hlink;       /* its bucket of lockmgr.res (table.c) */
	uint64_t key, parent;
	bool named;              /* name and parent are known */
	bool asking;             /* an adoption lookup is out (kind.c) */
	bool replaying;          /* parked operations are being replayed:
				    grant once they all are in */
	bool rebuilding;         /* adopted here after its master died, and
				    survivors' locks may still come in:
				    REBUILD applies only then (kind.c) */
	bool lvb_valid;
	uint8_t name_len;
	uint8_t rebuilt_mode;    /* the strongest mode a REBUILD brought the
				    value block with, or NONE */
	uint32_t seen_epoch;     /* the newest epoch a parked op named */
	uint64_t parked_ms;      /* when parked became non-empty */
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
	/* In order: grants go from the heads, new ones join the tails. */
	struct list granted, converting, waiting; /* struct lkb */
	struct list parked;      /* struct lpend, oldest first */
};

/* ---------------------------------------------------------------------- */
/* The owner side's state (owner.c and ipc.c)                            */

enum lstate { LS_WAITING = 1, LS_GRANTED, LS_CONVERTING, LS_UNLOCKING };

/* A lock of one of this node's processes. */
struct llock {
	struct list olink;       /* its owner's locks, newest first; alone
				    once its process is gone */
	struct list hlink;       /* its bucket of lockmgr.byh (table.c) */
	struct timer t;          /* armed while it waits, for the earlier
				    of deadline_ms and search_ms */
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
	uint32_t opseq;          /* the operation under way, or the last
				    (wire_lock_op.seq) */
	uint8_t rebuilt_for;     /* the last death it was rebuilt after, + 1;
				    0: none */
	uint8_t refusals;        /* DIR_NACKs in a row, with no answer from a
				    master between (lock_refused) */
	uint32_t seq;            /* deadlock searches of this wait
				    (deadlock.c) */
	uint64_t req_id;         /* the IPC request to answer, 0: none */
	uint64_t deadline_ms;    /* the request's timeout, 0: none */
	uint64_t search_ms;      /* the next deadlock search, 0: none */
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
};

/* A deadlock search an owner passed on: its origin's newest. */
struct lseen {
	struct wire_lock_id origin;
	uint32_t seq;
	uint64_t at_ms;
};

/* A process's lock connection, made at its first request (ipc.c). */
struct lclient {
	struct list link;        /* lockmgr.clients */
	struct client *c;        /* the connection: events go there */
	uint32_t id;
	struct list locks;       /* struct llock, newest first */
	unsigned nlocks;         /* on locks: at most cfg.max_locks */
	/* The newest search of each origin passed on (deadlock.c). */
	struct lseen *seen;
	unsigned nseen, seen_cap;
};

/* The module's state (d->lk; table.c makes and frees it). */
struct lockmgr {
	struct list res[LK_BUCKETS];         /* struct lres by key */
	struct list byh[LK_BUCKETS];         /* struct llock by handle */
	struct list clients;                 /* struct lclient */
	uint32_t next_client;
	uint64_t next_handle;
	unsigned deadlock_ms;
	/* recover.c */
	uint64_t dead;                       /* nodes seen dead here */
	uint64_t await[WIRE_MAX_NODES];      /* per dead node: who has yet
						to say RECOVERED */
	uint64_t reported[WIRE_MAX_NODES];   /* per dead node: who said it */
	uint64_t recovery_ms;                /* when the last recovery began */
	struct list held;                    /* struct lpend: ops held while
						recovering (master.c) */
	unsigned long nres;                  /* resources known here */
	unsigned sweep;                      /* the next bucket to sweep */
};

static inline bool lock_waits(const struct llock *l)
{
	return l->state == LS_WAITING || l->state == LS_CONVERTING;
}

/* table.c */
int lock_mgr_new(struct dsmd *d);
void lock_mgr_free(struct dsmd *d);
struct lres *lock_res_get(struct dsmd *d, uint64_t key, bool create);
/* Free the idle resources of the next nbuckets buckets (table.c says
 * which are idle). */
void lock_res_sweep(struct dsmd *d, unsigned nbuckets);
struct llock *lock_by_handle(struct dsmd *d, uint64_t handle);
struct llock *lock_by_lkid(struct lclient *lc, uint64_t lkid);
struct lclient *lock_client_find(struct dsmd *d, uint32_t id);
/* l (made by the caller) joins the tables and its owner's locks. */
void lock_llock_add(struct dsmd *d, struct lclient *lc, struct llock *l);
/* l no longer counts as its parent's child. */
void lock_drop_parent(struct llock *l);
void lock_llock_free(struct dsmd *d, struct llock *l);
/* A copy of o from `from` at the end of q; false when out of memory (it
 * is dropped, logged). */
bool lock_pend_keep(struct list *q, int from, const struct wire_lock_op *o);
void lock_pends_free(struct list *q);

/* owner.c */
int lock_recovery_master(const struct dsmd *d, uint64_t key);
int lock_target(struct dsmd *d, uint64_t key, uint32_t *epoch, int *dead);
void lock_fill_op(struct dsmd *d, const struct llock *l, unsigned op,
		  struct wire_lock_op *o);
void lock_send_op(struct dsmd *d, struct wire_lock_op *o);
void lock_owner_send(struct dsmd *d, struct llock *l, unsigned op,
		     int32_t status);
void lock_cancel(struct dsmd *d, struct llock *l, int32_t status);
void lock_complete(struct lclient *lc, uint64_t req_id, uint64_t lkid,
		   int status, unsigned mode);
void lock_released(struct dsmd *d, struct llock *l);
void lock_on_reply(struct dsmd *d, int from,
		   const struct wire_lock_reply *rp);
void lock_resend(struct dsmd *d, struct llock *l);
/* l's operation was refused on its way (DIR_NACK): ask who masters the
 * resource, and send it again there; after HOME_REFUSALS_MAX refusals in a
 * row, give up (a request or conversion fails with -EHOSTDOWN, a release
 * is done here): what the nodes know leads nowhere, and asking again
 * would go round for ever. */
void lock_refused(struct dsmd *d, struct llock *l);
/* Arm l's timer for what it waits for next, or stop it. */
void lock_timer_arm(struct dsmd *d, struct llock *l);

/* ipc.c */
void lock_on_ipc(struct dsmd *d, struct client *c, const struct wire_msg *m,
		 int *fd);
void lock_client_gone(struct dsmd *d, struct client *c);

/* master.c */
struct lkb *lock_lkb_new(const struct wire_lock_id *id, unsigned grmode,
			 unsigned rqmode, uint32_t flags);
struct lkb *lock_find_in(struct list *q, const struct wire_lock_id *id);
void lock_lkbs_free(struct list *q);
void lock_queues_free(struct lres *r);
void lock_grant_pass(struct dsmd *d, struct lres *r);
void lock_replay_parked(struct dsmd *d, struct lres *r);
bool lock_orphaned(struct dsmd *d, struct lres *r);
void lock_on_op(struct dsmd *d, int from, const struct wire_lock_op *o);

/* deadlock.c */
void lock_search(struct dsmd *d, struct lres *r, const struct wire_lock_op *o);
void lock_on_probe(struct dsmd *d, const struct wire_lock_probe *pb);
void lock_search_start(struct dsmd *d, struct llock *l, uint64_t now_ms);

/* recover.c */
bool lock_recovering(const struct dsmd *d);
/* Each tick: a recovery that waited --dead-after-ms for a live node's
 * RECOVERED declares that node dead. */
void lock_recovery_tick(struct dsmd *d);
void lock_heard_recovered(struct dsmd *d, int from, unsigned dead);
void lock_peer_down(struct dsmd *d, int node);

#endif
