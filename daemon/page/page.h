/* The page module: coherent shared memory.  Its one private header.
 *
 *   nodemem.c    the node's memory: one memfd, mapped by every attached
 *                process, never by dsmd
 *   ptab.c       lazily filled tables indexed by page
 *   fault.c      the processes' userfaultfds: the only file with uffd ioctls
 *   requester.c  this node's transactions: a fault that needs the network
 *   holder.c     what this node does with the pages it holds: invalidations,
 *                forwards, reads from a holder
 *   dir.c        the master side: directory entries
 *   page.c       the module: set-up, buffers, the message and request tables
 *
 * Everything runs on dsmd's one thread.  docs/architecture.md gives the
 * protocol and the races it is built around.
 */
#ifndef DSMD_PAGE_H
#define DSMD_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "dsmd.h"
#include "home/home.h"

#define PAGE_NSLOTS 256u      /* fetches in flight at once (receive slots) */
#define PAGE_NSEND 256u       /* pages being written to peers at once */
#define PAGE_SLOT_STRIDE 4160u /* WIRE_SLOT_SIZE rounded up to 64 bytes */
/* RDMA immediates and cookies of the page module carry the core's tag. */
#define PAGE_IMM_BIT DSMD_RDMA_IMM_TAG
#define PAGE_COOKIE_BIT DSMD_RDMA_COOKIE_TAG

/* A page fault waiting for its page (on a transaction or for a slot). */
struct fault {
	struct list link;
	struct app *app;     /* referenced while queued */
	uint64_t addr;
	uint32_t flags;      /* UFFD_PAGEFAULT_FLAG_* */
};

/* This node's view of a page. */
struct page {
	uint8_t state;       /* enum wire_pstate */
	uint8_t busy;        /* a transaction of ours is in flight */
	uint16_t slot;       /* its receive slot: its transaction txns[slot] */
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
};

/* A page's directory entry.  Every node has one for a page it has heard
 * of: its struct home says who masters the entry; the rest is the entry
 * itself, meaningful only where HOME_MASTER (or the placement) says this
 * node masters it, and its queue may hold requests parked for an entry on
 * its way here. */
struct dreq;
struct dentry {
	struct home h;       /* where the entry lives (home.c) */
	uint8_t state;       /* I: nobody holds it; S: sharers; M: owner;
				DIR_LOST: its only copy died */
	uint8_t busy;        /* a transaction is open: DONE pending */
	uint16_t owner;
	uint16_t busy_node;
	uint8_t busy_write;  /* the open transaction is a write */
	uint8_t strays;      /* a listed holder died: it may have given
				copies nobody lists (dir.c, serve_write) */
	uint64_t owe;        /* nodes that owe the open transaction's
				requester an ack or the page */
	int16_t supplier;    /* the node sending the page, or -1 */
	uint16_t reserved2;
	uint32_t busy_ms;    /* when the open transaction was served */
	uint64_t sharers;    /* bit per node */
	uint64_t version;
	uint64_t busy_req;
	struct dreq *q_head, *q_tail;
};

static inline struct dentry *to_dentry(struct home *h)
{
	return container_of(h, struct dentry, h);
}

#define DIR_LOST 3

/* A lazily filled table of fixed-size elements indexed by page, in chunks
 * of PTAB_CHUNK zeroed elements. */
#define PTAB_CHUNK 512u
struct ptab {
	void **chunks;
	size_t nchunks;
	size_t elem;
};

int ptab_init(struct ptab *t, uint64_t n, size_t elem);
void ptab_free(struct ptab *t);
/* The element for idx; NULL if its chunk was never filled (and create is
 * false), or memory ran out. */
void *ptab_get(struct ptab *t, uint64_t idx, bool create);

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
	uint64_t nudge_ms;   /* started, or last said it waits (req_tick) */
	uint64_t deaths;     /* nodes this node had seen die when it began */
	int16_t src;         /* the node its page came from, or -1 */
	uint16_t refusals;   /* DIR_NACKs so far (req_nacked) */
	struct list waiters;   /* struct fault: faults on the page */
	struct list peer_wait; /* struct kept: DSM_PEER_REQs for the page,
				  held until this transaction ends */
};

/* The module's state (d->page). */
struct page_state {
	unsigned hold_us;
	bool peer_reads;     /* read misses ask the last writer first */
	unsigned peer_hold_us; /* give a page to a reader directly only this
				  long after we were granted it */
	struct ptab pages, dir;
	/* Receive slots and their transactions. */
	void *recv_buf;
	struct xport_mr recv_mr;
	struct txn txns[PAGE_NSLOTS];
	uint64_t txn_gen;
	unsigned nfree_slots;
	struct list slot_wait;     /* struct fault: waiting for a free slot */
	/* Send slots. */
	void *send_buf;
	struct xport_mr send_mr;
	uint16_t send_free[PAGE_NSEND];
	unsigned nsend_free;
	struct list send_wait;     /* struct kept: waiting for a send slot */
	/* Each peer's receive slots, from its PAGE_SLOTS (holder.c). */
	struct {
		bool known;
		uint32_t rkey, nslots;
		uint64_t addr;
	} peer_slots[WIRE_MAX_NODES];
	struct list slots_wait;    /* struct kept: forwards for a requester
				      whose PAGE_SLOTS has not come yet */
	unsigned nslots_wait;
	size_t dir_sweep;          /* the next chunk dir_sweep looks at */
};

static inline uint64_t page_addr(const struct dsmd *d, uint64_t page)
{
	return d->arena.base + page * WIRE_PAGE_SIZE;
}

/* nodemem.c: the node's memory (d->memfd). */
int nodemem_open(struct dsmd *d);
void nodemem_close(struct dsmd *d);
int nodemem_read(struct dsmd *d, uint64_t page, void *buf);
int nodemem_write(struct dsmd *d, uint64_t page, const void *buf);
/* A zeroed page-cache page; nothing is copied. */
int nodemem_zero(struct dsmd *d, uint64_t page);
/* Punch n pages out: every process that maps them loses them. */
int nodemem_punch(struct dsmd *d, uint64_t first, uint64_t n);
/* This node's state of a page (enum wire_pstate). */
int page_state_of(struct dsmd *d, uint64_t page);
/* A region was freed: its pages leave this node and its entries start
 * over (RESET from node 0). */
void page_reset_range(struct dsmd *d, uint64_t first, uint64_t n);
void page_on_reset(struct dsmd *d, int from, const struct wire_msg *m);

/* fault.c: processes and their userfaultfds. */
/* One page fault of process a at addr (page aligned, in the arena), with
 * the userfaultfd's flags.  Called for every fault read off a process's
 * userfaultfd, and by the unit tests. */
void page_fault(struct dsmd *d, struct app *a, uint64_t addr, uint32_t flags);
void fault_queue(struct list *list, struct app *a, uint64_t addr,
		 uint32_t flags);
/* Run the faults of a list again (the page settled), emptying it. */
void fault_run(struct dsmd *d, struct list *list);
/* Fail them: the page is lost (SIGBUS), emptying it. */
void fault_fail(struct dsmd *d, struct list *list, uint64_t page);
void fault_free(struct list *list);
/* Take the first fault off the list, resolved by the caller. */
void fault_drop_first(struct list *list);
/* Copy a received page into fault f's process (UFFDIO_COPY); 0 when f is
 * resolved. */
int fault_install(struct dsmd *d, const struct fault *f, const char *src,
		  uint8_t state);
/* Write-protect the page in every attached process. */
void fault_protect_all(struct dsmd *d, uint64_t page);
void fault_on_uffd_ipc(struct dsmd *d, struct client *c,
		       const struct wire_msg *m, int *fd);
void fault_app_gone(struct dsmd *d, struct app *a, bool died);

/* requester.c: this node's transactions. */
/* A fault that needs the network starts a transaction (a slot is free)
 * and waits on it. */
void req_start(struct dsmd *d, uint64_t page, struct page *pg, bool write,
	       struct app *a, uint64_t addr, uint32_t flags);
static inline struct txn *req_of(struct dsmd *d, const struct page *pg)
{
	return &d->page->txns[pg->slot];
}
void req_on_grant(struct dsmd *d, int from, const struct wire_msg *m);
void req_on_ack(struct dsmd *d, int from, const struct wire_msg *m);
void req_on_lost(struct dsmd *d, int from, const struct wire_msg *m);
void req_on_page_data(struct dsmd *d, const struct xport_event *ev);
void req_peer_down(struct dsmd *d, int node);
void req_tick(struct dsmd *d);
void req_on_passed(struct dsmd *d, int from, const struct wire_msg *m);
/* The page kind's nacked() and located() (home.h). */
void req_nacked(struct dsmd *d, uint64_t page, uint64_t id);
void req_located(struct dsmd *d, uint64_t page, uint64_t id, int master,
		 uint32_t epoch);
void req_teardown(struct dsmd *d);

/* holder.c: pages this node holds. */
/* Invalidate the readers we gave the page directly, for `to`'s write,
 * but for those in `covered`; returns the set `to` must wait for. */
uint64_t holder_relay_inv(struct dsmd *d, uint64_t page, struct page *pg,
			  int to, uint64_t id, uint64_t covered,
			  uint64_t version);
/* Reads that waited for a transaction of ours (the list of it, spliced
 * out when it closed) are looked at again, in the order they came. */
void holder_wake_peer_reqs(struct dsmd *d, struct list *peers);
void holder_on_inv(struct dsmd *d, int from, const struct wire_msg *m);
void holder_on_fwd(struct dsmd *d, int from, const struct wire_msg *m);
void holder_on_peer_req(struct dsmd *d, int from, const struct wire_msg *m);
/* Our RDMA WRITE of a page finished: its send slot is free again. */
void holder_write_done(struct dsmd *d, const struct xport_event *ev);
void holder_teardown(struct dsmd *d);
void holder_peer_up(struct dsmd *d, int node);
void holder_peer_down(struct dsmd *d, int node);
void holder_on_slots(struct dsmd *d, int from, const struct wire_msg *m);

/* dir.c: the master side. */
extern const struct home_kind home_page_kind;
/* The node this node believes masters the page now: itself, a hint, or
 * the placement's home. */
int dir_master(struct dsmd *d, uint64_t page);
/* The same, with the epoch of that knowledge and whether it is a learnt
 * hint (not the placement, not this node). */
int dir_where(struct dsmd *d, uint64_t page, uint32_t *epoch, bool *hinted);
/* The directory entry of a page, created if asked. */
struct dentry *dir_entry(struct dsmd *d, uint64_t page, bool create);
/* A read or write request, as if it had come from `from` (a holder passes
 * on a DSM_PEER_REQ it cannot serve). */
void dir_on_req(struct dsmd *d, int from, uint64_t id,
		const struct wire_dsm_req *q);
void dir_on_req_msg(struct dsmd *d, int from, const struct wire_msg *m);
void dir_on_done(struct dsmd *d, int from, const struct wire_msg *m);
void dir_on_shared(struct dsmd *d, int from, const struct wire_msg *m);
void dir_on_stuck(struct dsmd *d, int from, const struct wire_msg *m);
void dir_sweep(struct dsmd *d, unsigned nchunks);
void dir_reset_range(struct dsmd *d, uint64_t first, uint64_t n);
/* A node died: its requests and copies are forgotten, open transactions
 * that wait on it are told, and pages whose only copy it held are lost. */
void dir_peer_down(struct dsmd *d, int node);
void dir_teardown(struct dsmd *d);

#endif
