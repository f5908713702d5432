/* libdsm: distributed shared memory for Linux clusters with RDMA.
 *
 * This header is the whole public API.  Calls return 0 or a negative errno
 * unless stated otherwise; pointer-returning calls return NULL and set errno.
 *
 * A job is a set of processes (ranks) spread over the nodes of a cluster,
 * one dsmd per node.  Every rank calls dsm_init() once, then shares memory
 * with the others through regions of one arena that sits at the same virtual
 * address in every process of every node.  Shared memory is sequentially
 * consistent: a program that is correct with threads on one machine is
 * correct on the cluster.  Collective calls (dsm_alloc, dsm_free,
 * dsm_barrier) must be called by every rank of the job, in the same order.
 *
 * Threads: every call may be made from any thread once dsm_init() has
 * returned; calls are serialised inside the library.  A process must not
 * fork() and use shared memory in the child without its own dsm_init().
 */
#ifndef DSM_H
#define DSM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the symbols libdsm.so exports; everything else stays hidden. */
#define DSM_API __attribute__((visibility("default")))

#define DSM_VERSION_MAJOR 0
#define DSM_VERSION_MINOR 2
#define DSM_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH"; never NULL. */
DSM_API const char *dsm_version(void);

/* Ask this node's dsmd (at `socket`, or $DSM_SOCKET, or /run/dsm/dsmd.sock
 * when NULL) whether it is up.  On success writes this node's number and the
 * cluster's node count (either pointer may be NULL) and returns 0.  Errors:
 * -ENOENT or -ECONNREFUSED (no daemon at that socket), -ETIMEDOUT (no
 * answer within timeout_ms), -EPROTO (the daemon speaks another version). */
DSM_API int dsm_daemon_ping(const char *socket, int timeout_ms, int *node,
		    int *nnodes);

/* ---- the job ---- */

/* Attach to this node's dsmd and map the shared arena.  The rank and the
 * job size come from DSM_RANK/DSM_SIZE (set by dsmrun), else from
 * SLURM_PROCID/SLURM_NTASKS, OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE or
 * PMI_RANK/PMI_SIZE; the number of ranks on this node from DSM_LOCAL_SIZE
 * (default 1); the socket from DSM_SOCKET (default /run/dsm/dsmd.sock).
 * Errors, each also explained on stderr:
 *   -EINVAL     no or bad rank/size in the environment
 *   -ENOENT, -ECONNREFUSED  no dsmd at the socket (the message names it)
 *   -ENOSYS     the kernel is older than 6.4 or lacks a userfaultfd
 *               feature libdsm needs (the message names it)
 *   -EPERM      userfaultfd is not permitted to this process
 *   -EADDRINUSE the arena's address range is taken in this process
 *   -EALREADY   dsm_init() was already called
 *   -EPROTO     the daemon speaks another protocol version
 *   -EBUSY      the daemon serves another job (DSM_JOB names this one)
 *   -EACCES     not the job's key (DSM_JOB_KEY)
 *   -EEXIST     this rank is attached to the node already
 *   -EUSERS     DSM_LOCAL_SIZE processes are attached to the node already */
DSM_API int dsm_init(void);
/* Detach: unmaps the arena, closes the connection.  Pages stay with the
 * node.  -EINVAL if dsm_init() did not succeed.  A process that ends
 * without it (a crash, a signal, or exit() without dsm_finalize) counts as
 * a rank that died: its pages stay with the node, and every collective of
 * its job fails from then on with -ECONNABORTED on every rank, instead of
 * waiting for it forever. */
DSM_API int dsm_finalize(void);
/* This process in the job: 0..dsm_size()-1; -EINVAL before dsm_init(). */
DSM_API int dsm_rank(void);
DSM_API int dsm_size(void);
/* The node (dsmd) this process is attached to, and the cluster's size. */
DSM_API int dsm_node(void);
DSM_API int dsm_num_nodes(void);

/* ---- shared memory ---- */

/* Collective over the job: every rank must call it with the same size.
 * Returns the same address on every rank, page aligned, zero filled.
 * NULL and errno on error: EINVAL (size 0, or ranks asked different sizes:
 * every rank gets the error and nothing is allocated), ENOMEM (no room in
 * the arena), ENOSPC (dsmd's --max-regions regions exist), ENOTCONN (dsm_init() not called), ECONNABORTED (a rank of
 * the job died: see dsm_finalize), EIO (the daemon failed). */
DSM_API void *dsm_alloc(size_t size);
/* Collective: free a region from dsm_alloc().  Every rank must pass the
 * same address.  -EINVAL (not the start of an allocated region, or ranks
 * disagree), -ENOTCONN, -ECONNABORTED, -EIO. */
DSM_API int dsm_free(void *addr);

#define DSM_CREATE 0x1 /* create the region if the name is unknown */
#define DSM_EXCL   0x2 /* with DSM_CREATE: fail if it already exists */
#define DSM_NAME_MAX 63 /* longest region name, in bytes */

/* Named region, not collective: any process of any node opens it by name
 * and gets the same address.  size must equal the size it was created
 * with (or be 0 to accept it).  NULL and errno: ENOENT (no such name and
 * no DSM_CREATE), EEXIST (DSM_CREATE|DSM_EXCL and it exists), EINVAL (bad
 * name, flags or size, or size differs from the region's), ENOMEM,
 * EMFILE (this process has dsmd's --max-named, by default 64, named
 * regions open), ENOSPC (dsmd's
 * --max-regions regions exist), EHOSTDOWN (node 0, which
 * keeps the regions, died), ENOTCONN.  What a process leaves open when it
 * ends is closed for it. */
DSM_API void *dsm_open(const char *name, size_t size, int flags);
/* Close a named region.  It is removed, and its memory reclaimed, when the
 * last process that opened it closes it.  -EINVAL if addr is not an open
 * named region of this process. */
DSM_API int dsm_close(void *addr);
/* Collective: returns once every rank of the job has called it.
 * -ENOTCONN, -ECONNABORTED (a rank of the job died), -EIO (the daemon
 * failed). */
DSM_API int dsm_barrier(void);

/* ---- inspection ---- */

enum dsm_page_state { DSM_PAGE_INVALID = 0, DSM_PAGE_SHARED = 1,
		      DSM_PAGE_MODIFIED = 2 };
/* This node's state of the page holding addr (enum dsm_page_state), or
 * -EFAULT (addr outside the arena), -ENOTCONN. */
DSM_API int dsm_page_state(const void *addr);
/* The node that masters the directory entry of that page now, or -EFAULT,
 * -ENOTCONN, -EHOSTDOWN (its master died: the entry is lost).  Entries
 * move (see struct dsm_policy), so the answer is the truth at the moment
 * it was found out: when this node does not master the entry itself, it
 * asks every node. */
DSM_API int dsm_page_master(const void *addr);

/* ---- placement: which node masters a page's directory entry ---- */

enum dsm_placement {
	DSM_PLACE_STATIC = 0,      /* page i starts at node i % nodes */
	DSM_PLACE_FIRST_TOUCH = 1, /* the first node to touch a page (its
				      first request still goes to the
				      static home, which hands the entry
				      over) */
};

/* Where directory entries live, and when they move.  The master of an
 * entry counts the requests of each node, halving the counts every
 * window_ms.  When one node made at least min_requests of them and at least
 * share_pct percent of all, the entry moves to that node, unless that node
 * already masters more than load_pct percent of its fair share of the
 * entries in recent use.  An entry must stay window_ms where it arrived
 * before it moves again.  share_pct above 50 is the hysteresis: an entry
 * shared evenly by two nodes stays where it is, while the default 60 moves
 * a page to an owner whose page another node writes now and then (the
 * owner's read miss and upgrade against the other's write: 2 to 1). */
struct dsm_policy {
	uint32_t placement;    /* enum dsm_placement; default static */
	uint32_t migrate;      /* 1: entries move (default), 0: they stay */
	uint32_t share_pct;    /* 51..100, default 60 */
	uint32_t min_requests; /* 1..65535, default 4 */
	uint32_t window_ms;    /* 1..3600000, default 500 */
	uint32_t load_pct;     /* 100..100000, default 200 */
	uint32_t reserved[2];  /* 0 */
};

/* Set the policy of the pages holding [addr, addr+len) on every node, for
 * every process; it replaces the cluster's policy (dsmd's options) there,
 * and applies to entries first used afterwards as to entries in use.
 * Returns once every live node has it.  p NULL: back to the cluster's
 * policy.  -EINVAL (a field out of range, reserved not 0, len 0, or range
 * not inside the arena; no more than 64 ranges may have their own policy:
 * -ENOSPC), -ENOTCONN. */
DSM_API int dsm_set_policy(void *addr, size_t len,
			   const struct dsm_policy *p);
/* The policy in force for the page holding addr on this node.  -EINVAL
 * (out NULL), -EFAULT, -ENOTCONN. */
DSM_API int dsm_get_policy(const void *addr, struct dsm_policy *out);

/* This node's counters since its dsmd started; every process of the node
 * sees the same numbers.  Take two snapshots and subtract to count what an
 * operation cost. */
struct dsm_stats {
	uint64_t read_faults;      /* faults that fetched a page to read */
	uint64_t write_faults;     /* faults that fetched a page to write */
	uint64_t upgrade_faults;   /* writes to a page held shared */
	uint64_t minor_faults;     /* page already valid in the node: mapped
				      with no network traffic */
	uint64_t zero_fills;       /* first touches granted with no data */
	uint64_t pages_received, pages_sent;
	uint64_t bytes_received, bytes_sent;  /* page data and messages */
	uint64_t invalidations_sent;     /* by this node as master */
	uint64_t invalidations_received; /* copies this node dropped */
	uint64_t downgrades;       /* M pages turned S to supply a reader */
	uint64_t directory_local;  /* requests whose master was this node */
	uint64_t directory_remote; /* requests sent to another master */
	uint64_t forwards;         /* requests this node passed on because
				      the entry had moved away */
	uint64_t msgs_sent, msgs_received; /* coherence protocol messages
					      between nodes (not heartbeats
					      or collectives) */
	uint64_t bad_msgs;         /* malformed messages dropped */
	uint64_t wp_faults;        /* write faults on a page the node held M
				      but this process had mapped read-only */
	uint64_t stale_faults;     /* faults that were already resolved */
	uint64_t held_back;        /* messages about pages waiting now: out
				      the hold time (invalidations,
				      forwards; reads from a holder, the
				      longer --peer-hold-us), or for a
				      send slot */
	uint64_t lost_faults;      /* faults on pages whose master died:
				      the process got SIGBUS */
	uint64_t holder_forwards;  /* requests this node, as master, passed
				      to a holder to supply the page */
	uint64_t migrations_in;    /* entries that moved to this node */
	uint64_t migrations_out;   /* entries that moved away from it */
	uint64_t hint_hits;        /* requests sent on a hint (not the
				      static placement) that reached the
				      master directly */
	uint64_t hint_misses;      /* ... that had to be forwarded, or
				      failed */
	uint64_t who_has_broadcasts; /* times this node asked every node who
					masters an entry */
	uint64_t lock_requests;    /* lock requests and conversions this
				      node's processes made */
	uint64_t lock_remote;      /* ... whose master was another node */
	uint64_t lock_basts;       /* blocking notifications delivered */
	uint64_t lock_deadlocks;   /* victims chosen on this node */
	uint64_t lock_rebuilt;     /* resources this node rebuilt as the
				      new master after a node died */
	uint64_t wakeups;          /* times dsmd slept and was woken (a
				      fault, a message, a timer...) */
	uint64_t poll_hits;        /* times dsmd, polling instead of sleeping
				      while a fault waited for the network,
				      found work: each a wake-up saved */
	uint64_t direct_installs;  /* received pages copied straight into
				      the faulting process (UFFDIO_COPY),
				      not through pwrite and a second call */
	uint64_t peer_requests;    /* read misses sent straight to the node
				      last heard to write the page, not to
				      the master (DSM_PEER_READS) */
	uint64_t peer_served;      /* ... that this node, holding the page,
				      answered itself */
	uint64_t peer_passed;      /* ... that it passed on to the master
				      (it no longer held the page, or was
				      busy with it) */
	uint64_t nodes_dead;       /* nodes this node has declared dead
				      (and begun to recover from) */
	uint64_t stuck_waits;      /* page faults that waited dsmd's
				      --dead-after-ms, and said so (a node
				      that owes them is declared dead) */
};
/* Fill *out.  -EINVAL (out NULL), -ENOTCONN. */
DSM_API int dsm_get_stats(struct dsm_stats *out);

/* ---- the lock manager ----
 *
 * Named locks in the manner of the VMS distributed lock manager.  A lock
 * is held on a resource, named by up to DSM_LOCK_NAME_MAX bytes; a
 * resource opened under a parent lock (parent = that lock's lkid) is the
 * parent's child, and its name is scoped by the parent: "a" under lock P
 * and "a" at the top are different resources.  Every resource is mastered
 * by one node, which moves to the node that uses it most, like a page's
 * directory entry (struct dsm_policy's cluster defaults apply).
 *
 * Modes, weakest first, and which may be held together:
 *
 *        NL CR CW PR PW EX
 *    NL  y  y  y  y  y  y
 *    CR  y  y  y  y  y  -
 *    CW  y  y  y  -  -  -
 *    PR  y  y  -  y  -  -
 *    PW  y  y  -  -  -  -
 *    EX  y  -  -  -  -  -
 *
 * A resource's master keeps three queues: granted, converting and waiting.
 * A conversion is granted as soon as it is compatible with the granted
 * locks, before any new request; conversions and new requests are each
 * granted in the order they came.
 *
 * Completion: without DSM_LKF_ASYNC a call returns when the request is
 * over.  With it, the call returns 0 once the request is accepted, and the
 * result is given later: lksb->status (and lksb->lvb, lksb->flags) are
 * filled, then ast(arg) is called.  A holder that passed a bast is called
 * bast(arg, mode) when its lock blocks a request for `mode`, so it can
 * release or down-convert.  Callbacks run on a thread of libdsm, one at a
 * time, never inside a signal handler, and may call the lock API
 * themselves (a blocking call from a callback waits for its own answer).
 *
 * Value block: 16 bytes per resource.  With DSM_LKF_VALBLK, a grant in
 * PR, PW or EX copies it into lksb->lvb, and a release or down-conversion
 * of a PW or EX lock writes lksb->lvb back.  If a node or process holding
 * the resource in PW or EX dies, the block is marked invalid: grants then
 * set DSM_SBF_VALNOTVALID in lksb->flags until a PW or EX holder writes it.
 *
 * Deadlocks: a request that waits longer than dsmd's --deadlock-ms starts
 * a search of the wait-for graph across nodes; of the requests that form a
 * cycle, exactly one fails with -EDEADLK (a conversion that fails keeps
 * its granted mode).
 *
 * Failures: a process that dies releases its locks.  When a node dies,
 * its locks are released, and the resources it mastered are rebuilt by the
 * survivors from the locks they hold; lock requests pause while that runs.
 */
enum dsm_lock_mode {
	DSM_LK_NL = 0, /* null: holds the resource, blocks nobody */
	DSM_LK_CR = 1, /* concurrent read */
	DSM_LK_CW = 2, /* concurrent write */
	DSM_LK_PR = 3, /* protected read */
	DSM_LK_PW = 4, /* protected write */
	DSM_LK_EX = 5, /* exclusive */
};

#define DSM_LOCK_NAME_MAX 64 /* longest resource name, in bytes */
#define DSM_LVB_LEN 16       /* bytes in a value block */

/* dsm_lock flags */
#define DSM_LKF_NOQUEUE 0x01 /* not grantable now: fail with -EAGAIN */
#define DSM_LKF_CONVERT 0x02 /* convert the lock lksb->lkid (up or down) */
#define DSM_LKF_ASYNC   0x04 /* return at once; ast() tells the result */
#define DSM_LKF_VALBLK  0x08 /* read the value block on grant; with
				dsm_unlock or a down-conversion of PW or EX:
				write it */
/* dsm_unlock flags (and DSM_LKF_VALBLK) */
#define DSM_LKF_CANCEL  0x10 /* cancel the lock's waiting request or
				conversion: it fails with -ECANCELED */

/* lksb->flags */
#define DSM_SBF_VALNOTVALID 0x1 /* the value block was lost with a holder */

/* The lock status block: names the lock and receives its results. */
struct dsm_lksb {
	int32_t status;   /* the request's result: 0 or a negative errno */
	uint32_t flags;   /* DSM_SBF_* */
	uint64_t lkid;    /* set by dsm_lock: the lock, for converting and
			     unlocking it and as a parent */
	char lvb[DSM_LVB_LEN];
};

typedef void (*dsm_ast_fn)(void *arg);
typedef void (*dsm_bast_fn)(void *arg, int mode);

/* Request a lock on resource `name` in `mode` (enum dsm_lock_mode), or,
 * with DSM_LKF_CONVERT, change the mode of the lock lksb->lkid (name and
 * parent are then ignored).  parent: 0 for a top-level resource, else the
 * lkid of a lock this process holds (granted, in any mode), under which
 * `name` is opened.  timeout_ms: 0 waits for ever, else the request is
 * cancelled (-ETIMEDOUT) if it is not granted by then.  ast and bast may
 * be NULL (not with DSM_LKF_ASYNC); the lksb must stay valid until the
 * lock is unlocked.  The request's result, also in lksb->status:
 *   0            granted
 *   -EAGAIN      DSM_LKF_NOQUEUE and not grantable now
 *   -ETIMEDOUT   timeout_ms passed
 *   -EDEADLK     chosen to break a deadlock
 *   -ECANCELED   cancelled with dsm_unlock(DSM_LKF_CANCEL)
 *   -ENOTUNIQ    another name of the same parent hashes to the same
 *                resource (rename one)
 *   -EDQUOT      the process has dsmd's --max-locks locks already, or the
 *                resource --max-lock-queue
 * Refused at once, with no callback:
 *   -EINVAL      lksb NULL, mode out of range, unknown flags, ASYNC
 *                without ast, name NULL or empty (new requests)
 *   -ENAMETOOLONG  name longer than DSM_LOCK_NAME_MAX
 *   -ENOLCK      CONVERT of, or parent, a lkid this process does not hold
 *   -EBUSY       CONVERT of a lock whose request is still in progress
 *   -ENOTCONN    dsm_init() not called
 *   -ENOMEM, -EIO (the daemon failed)
 */
DSM_API int dsm_lock(int mode, struct dsm_lksb *lksb, uint32_t flags,
		     const char *name, uint64_t parent, unsigned timeout_ms,
		     dsm_ast_fn ast, dsm_bast_fn bast, void *arg);
/* Release the lock lksb->lkid (with DSM_LKF_VALBLK, after writing lksb->lvb
 * as the value block if it is held in PW or EX), or with DSM_LKF_CANCEL
 * cancel its waiting request or conversion.  A release returns once the
 * resource's master has released the lock; a cancel once it is on its
 * way (the request then ends with -ECANCELED, or is granted if the grant
 * came first).  lksb stays the caller's.  -EINVAL (lksb NULL, unknown flags), -ENOLCK (no
 * such lock; CANCEL: nothing of it waits), -EBUSY (its request is still in
 * progress: cancel it first), -ENOTEMPTY (locks opened under it are still
 * held), -ENOTCONN, -EIO. */
DSM_API int dsm_unlock(struct dsm_lksb *lksb, uint32_t flags);
/* The node that masters the resource of the lock lksb->lkid, as this
 * node last learnt it (every answer from a master tells it; a resource
 * that moved since is found at its next request), or -ENOLCK,
 * -ENOTCONN. */
DSM_API int dsm_lock_master(const struct dsm_lksb *lksb);

/* The arena: where it starts and how long it is, for tools.  -ENOTCONN. */
DSM_API int dsm_arena(void **base, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
