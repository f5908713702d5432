/* Shared memory inside dsmd: the node's memory, the processes attached to
 * it, their page faults, and the directory protocol (requester, holder and
 * master sides), with the collectives and named regions beside them.
 *
 * Everything runs on dsmd's one thread.  See docs/architecture.md for the
 * protocol and the races it is built around.
 */
#ifndef DSMD_MEM_H
#define DSMD_MEM_H

#include <dsm.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"
#include "xport.h"
#include "home.h"
#include "watch.h"

struct dsmd;
struct client;

#define MEM_NSLOTS 256u      /* fetches in flight at once (receive slots) */
#define MEM_NSEND 256u       /* pages being written to peers at once */
#define MEM_IMM_BIT 0x80000000u       /* RDMA imm: a page for a slot */
#define MEM_COOKIE_BIT (1ull << 63)   /* RDMA cookie: a send slot */

/* One process attached to this node (a libdsm client). */
struct app {
	struct watch w;      /* W_UFFD: first, epoll data.ptr points here */
	struct client *c;    /* NULL once the process is gone */
	int uffd;            /* -1 until passed, and once gone */
	unsigned refs;       /* the client's, plus one per queued fault */
	uint32_t rank, size, local_size, pid;
	uint64_t job;
	uint64_t coll_seq;   /* collectives this rank entered */
	uint64_t coll_req;   /* req_id of the request it waits on, 0: none */
	uint64_t coll_seq_tag; /* its region request's tag at node 0 */
	struct app *next;
};

/* A page fault waiting for its page. */
struct fault {
	struct fault *next;
	struct app *app;
	uint64_t addr;
	uint32_t flags;      /* UFFD_PAGEFAULT_FLAG_* */
};

/* This node's view of a page. */
struct page {
	uint8_t state;       /* enum wire_pstate */
	uint8_t busy;        /* a transaction of ours is in flight */
	uint16_t slot;       /* its receive slot */
	uint16_t peer;       /* 1 + the node last heard to take the page
				(a writer that invalidated us), 0: none.
				A read miss asks it first */
	uint8_t peer_copy;   /* our copy came from a holder directly: the
				master does not know of it */
	uint8_t reserved;
	uint64_t given;      /* nodes we gave a copy directly (the master
				does not know): we invalidate them when we
				lose our copy or write to it */
	uint64_t version;
	uint64_t granted_us; /* when our last transaction on it ended:
				messages about it wait out the hold times */
	struct fault *waiters;
};

/* A page's directory entry.  Every node has one for a page it has heard
 * of: its struct home says who masters the entry; the rest is the entry
 * itself, meaningful only where HOME_MASTER (or the placement) says this
 * node masters it, and its queue may hold requests parked for an entry on
 * its way here. */
struct dreq;
struct dentry {
	struct home h;       /* first: where the entry lives (home.c) */
	uint8_t state;       /* I: nobody holds it; S: sharers; M: owner;
				DIR_LOST: its only copy died */
	uint8_t busy;        /* a transaction is open: DONE pending */
	uint16_t owner;
	uint16_t busy_node;
	uint8_t busy_write;  /* the open transaction is a write */
	uint8_t reserved;
	uint64_t owe;        /* nodes that owe the open transaction's
				requester an ack or the page */
	int16_t supplier;    /* the node sending the page, or -1 */
	uint16_t reserved2[3];
	uint64_t sharers;    /* bit per node */
	uint64_t version;
	uint64_t busy_req;
	struct dreq *q_head, *q_tail;
};

static inline struct dentry *to_dentry(struct home *h)
{
	return (struct dentry *)h; /* h is the first member */
}

#define DIR_LOST 3

/* A lazily filled table of fixed-size elements indexed by page, in chunks
 * of PTAB_CHUNK elements. */
#define PTAB_CHUNK 512u
struct ptab {
	void **chunks;
	size_t nchunks;
	size_t elem;
};

/* A transaction of this node: one fault that needs the network. */
struct txn {
	bool used;
	bool abandoned;      /* its master died: the slot is never reused,
				so a late page cannot land in a new fetch */
	bool grant_seen, data_needed, data_got, zero;
	bool has_copy;       /* it asked as a sharer (an upgrade) */
	bool asking;         /* who masters the page?  No request is out */
	bool hinted;         /* sent on a learnt hint, not the placement */
	bool missed;         /* counted as a hint miss */
	bool peer;           /* a read sent to a holder (DSM_PEER_REQ) */
	int16_t master;      /* the node serving it once known, else -1 */
	int16_t sent_to;     /* where its request went last */
	uint8_t access, state;
	uint32_t acks_needed, acks_got;
	uint64_t acked;      /* nodes whose ack was counted */
	uint64_t also;       /* relayed acks owed: nodes holders had given
				copies the master does not know of */
	uint64_t also_acked; /* relayed acks in (or their node died) */
	uint64_t covered;    /* an M grant's: nodes the master invalidates */
	uint64_t id, page, version;
};

/* A message kept for later (held page, no send slot) or sent to self. */
struct pending {
	struct pending *next;
	int from;
	unsigned type;
	uint64_t req_id;
	size_t len;
	uint64_t not_before_us;
	unsigned char body[sizeof(struct wire_lock_op)];
};
_Static_assert(sizeof(struct wire_lock_op) >= sizeof(struct wire_dsm_req),
	       "a kept message holds a deferred DSM_PEER_REQ");
_Static_assert(sizeof(struct wire_lock_op) >= sizeof(struct wire_region_op),
	       "a kept message holds the largest body sent to self");

struct coll;
struct region;
struct reset;

struct mem {
	int memfd;
	uint64_t base, size, npages;
	unsigned hold_us;
	bool peer_reads;     /* read misses ask the last writer first */
	unsigned peer_hold_us; /* give a page to a reader directly only this
				  long after we were granted it */
	struct ptab pages, dir;
	struct app *apps;
	/* Receive slots and their transactions. */
	void *recv_buf;
	struct xport_mr recv_mr;
	struct txn txns[MEM_NSLOTS];
	uint64_t txn_gen;
	unsigned nfree_slots;
	unsigned nwaiting;         /* transactions waiting for the network */
	struct fault *slot_wait;   /* faults waiting for a free slot */
	/* Send slots. */
	void *send_buf;
	struct xport_mr send_mr;
	uint16_t send_free[MEM_NSEND];
	unsigned nsend_free;
	struct pending *deferred;  /* held back: hold time, no send slot */
	struct pending *peer_wait; /* DSM_PEER_REQs waiting for our own
				      transaction on their page */
	struct pending *local_q, **local_tail; /* messages to self */
	int hold_fd;               /* timerfd for held-back messages */
	struct watch hold_w;
	struct dsm_stats st;
	struct home_state home;    /* where entries live (home.c) */
	/* Collectives and regions (node 0 keeps the arena's allocator). */
	struct coll *colls;
	struct region *regions;
	uint64_t *free_ext;        /* node 0: free extents, pairs first,n */
	size_t nfree_ext, cap_ext;
	uint64_t job;
	bool job_aborted;          /* a rank died: collectives fail */
	struct reset *resets;      /* node 0: resets awaiting acks */
	uint64_t region_tag;
};

/* mem.c */
int mem_setup(struct dsmd *d);
void mem_teardown(struct dsmd *d);
int mem_attach(struct dsmd *d, struct app *a, int uffd);
void mem_on_uffd(struct dsmd *d, struct app *a);
/* One page fault of process a at addr (page aligned, in the arena), with
 * the userfaultfd's flags.  Called for every fault read off a process's
 * userfaultfd, and by the unit tests. */
void mem_fault(struct dsmd *d, struct app *a, uint64_t addr, uint32_t flags);
/* A process detached (died: it left without IPC_DETACH). */
void mem_app_gone(struct dsmd *d, struct app *a, bool died);
void app_put(struct app *a);
void mem_on_msg(struct dsmd *d, int from, const struct wire_msg *m);
void mem_on_rdma(struct dsmd *d, const struct xport_event *ev);
void mem_on_hold_timer(struct dsmd *d);
/* A node died: faults that need its directory entries fail (SIGBUS). */
void mem_peer_down(struct dsmd *d, int node);
bool mem_run_local(struct dsmd *d);
/* Whether a transaction of this node waits for the network (dsmd's loop
 * polls rather than sleeps then). */
static inline bool mem_waiting(const struct mem *m)
{
	return m->nwaiting > 0;
}
int mem_page_state(struct dsmd *d, uint64_t page);
void mem_reset_range(struct dsmd *d, uint64_t first, uint64_t n);
int mem_send(struct dsmd *d, int node, unsigned type, uint64_t req_id,
	     const void *body, size_t len);
void *ptab_get(struct ptab *t, uint64_t idx, bool create);
uint64_t mem_now_us(void);

/* A who-masters lookup for a transaction of ours ended (home.c). */
void mem_txn_located(struct dsmd *d, uint64_t page, uint64_t id, int master,
		     uint32_t epoch);
/* A request of ours was refused by a node that knew no master. */
void mem_txn_nacked(struct dsmd *d, uint64_t page, uint64_t id);

/* dir.c: the master side. */
/* The node this node believes masters the page now: itself, a hint, or
 * the placement's home. */
int dir_master(struct dsmd *d, uint64_t page);
/* The same, with the epoch of that knowledge and whether it is a learnt
 * hint (not the placement, not this node). */
int dir_where(struct dsmd *d, uint64_t page, uint32_t *epoch, bool *hinted);
/* The directory entry of a page, created if asked. */
struct dentry *dir_entry(struct dsmd *d, uint64_t page, bool create);
void dir_on_msg(struct dsmd *d, int from, const struct wire_msg *m);
/* A read or write request, as if it had come from `from` (a holder passes
 * on a DSM_PEER_REQ it cannot serve). */
void dir_on_req(struct dsmd *d, int from, uint64_t id,
		const struct wire_dsm_req *q);
void dir_reset_range(struct dsmd *d, uint64_t first, uint64_t n);
/* A node died: its requests and copies are forgotten, open transactions
 * that wait on it are told, and pages whose only copy it held are lost. */
void dir_peer_down(struct dsmd *d, int node);
void dir_teardown(struct dsmd *d);

/* coll.c: collectives, named regions, the allocator. */
int coll_setup(struct dsmd *d);
void coll_teardown(struct dsmd *d);
int coll_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
	     const struct wire_ipc_coll *req);
int region_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
	       const struct wire_region_op *req);
void coll_on_msg(struct dsmd *d, int from, const struct wire_msg *m);
void coll_app_gone(struct dsmd *d, struct app *a, bool died);
/* A node died: the job's collectives fail (ECONNABORTED). */
void coll_peer_down(struct dsmd *d, int node);
int app_reply(struct app *a, uint64_t req_id, int status, uint64_t v1,
	      uint64_t v2);

#endif
