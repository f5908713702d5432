/* The versioned wire format shared by dsmd (node to node, over RDMA SEND)
 * and by the Unix-socket protocol between dsmd and its clients (dsmctl,
 * libdsm).
 *
 * Every message starts with struct wire_hdr.  All fields are little-endian
 * (the build refuses big-endian hosts rather than pretending to convert).
 * The receiver trusts nothing: wire_decode() checks magic, version, type,
 * the length field against the bytes that arrived, and the body length the
 * type demands, before any field is used.
 */
#ifndef DSM_WIRE_H
#define DSM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libdsm's wire format is little-endian; this host is not"
#endif

#define WIRE_MAGIC   0xd5a1u
#define WIRE_VERSION 7u /* 2: entries move between nodes; 3: locks;
				  4: read misses sent to a holder;
				  5: a check's DATA paced (CHECK_PROGRESS);
				  6: receive slots named by index
				     (PAGE_SLOTS);
				  7: the master drops strays (INV_STRAY);
				     lock operations numbered; a waiting
				     requester says so (DSM_STUCK); a
				     holder says it passed a read on
				     (DSM_PASSED) */

/* Largest node-to-node message: the size of a pre-posted receive buffer. */
#define WIRE_MSG_MAX 4096u
/* Largest message on the Unix socket. */
#define WIRE_IPC_MAX 65536u
/* Largest cluster: node numbers are 0..WIRE_MAX_NODES-1. */
#define WIRE_MAX_NODES 64u

struct wire_hdr {
	uint16_t magic;   /* WIRE_MAGIC */
	uint8_t version;  /* WIRE_VERSION */
	uint8_t type;     /* enum wire_type */
	uint32_t length;  /* whole message, header included */
	uint16_t src;     /* sending node (node messages), 0 on the socket */
	uint16_t credits; /* receive credits returned to the peer (node msgs) */
	uint32_t seq;     /* per-peer send sequence, for order checks */
	uint64_t req_id;  /* request id; replies echo it */
} __attribute__((packed));

_Static_assert(sizeof(struct wire_hdr) == 24, "wire header is 24 bytes");

enum wire_type {
	/* ---- node to node, over the transport ---- */

	/* Credit return only.  Any node to a connected peer, any time; it
	 * consumes none of the peer's credits (see xport_rdma.c). */
	WIRE_CREDIT = 1,
	/* Liveness.  Every node to every live peer each heartbeat period. */
	WIRE_HEARTBEAT = 2,
	/* Self-check (dsmctl check), checker C to peer P:
	 * BEGIN: C->P, P idle for C's session: P fills its scratch with a
	 *        pattern and answers READY with the scratch's address/rkey. */
	WIRE_CHECK_BEGIN = 3,
	WIRE_CHECK_READY = 4, /* P->C, answer to BEGIN */
	/* DATA: C->P, `count` numbered messages; P verifies order/payload. */
	WIRE_CHECK_DATA = 5,
	/* DATA_DONE: P->C after the last DATA, with what P saw. */
	WIRE_CHECK_DATA_DONE = 6,
	/* After C's RDMA WRITE with immediate lands in P's scratch, P verifies
	 * it and answers WRITE_DONE. */
	WIRE_CHECK_WRITE_DONE = 7,
	/* END: C->P, session over; P may drop its state. */
	WIRE_CHECK_END = 8,

	/* ---- shared memory: the directory protocol (daemon/page/dir.c) ----
	 * R is a node that faults, M the page's master, H a holder.
	 * req_id is always R's transaction id. */
	WIRE_DSM_REQ = 9,     /* R->M: read or write the page */
	WIRE_DSM_FWD = 10,    /* M->H: send the page to R (and downgrade or
				 invalidate); H writes it into R's slot */
	WIRE_DSM_INV = 11,    /* M->H: drop your copy, acknowledge to R */
	WIRE_DSM_INV_ACK = 12, /* H->R */
	WIRE_DSM_GRANT = 13,  /* M->R: rights granted, acks and data to wait
				 for */
	WIRE_DSM_DONE = 14,   /* R->M: transaction over, the entry is free */
	/* ---- collectives, named regions, resets (daemon/coll/) ---- */
	WIRE_COLL_ARRIVE = 15, /* node->0: its ranks entered collective seq */
	WIRE_COLL_DONE = 16,   /* 0->nodes: collective seq is over */
	WIRE_REGION_OP = 17,   /* node->0: open or close a named region */
	WIRE_REGION_REPLY = 18, /* 0->node */
	WIRE_RESET = 19,       /* 0->nodes: drop pages and entries of a range */
	WIRE_RESET_ACK = 20,   /* node->0 */
	/* M->R: a node that owed R's open transaction an ack or the page
	 * died.  R counts the ack, or gives the transaction up (DONE with
	 * aborted) when the page it waits for can no longer come. */
	WIRE_DSM_LOST = 21,
	/* ---- where directory entries live (daemon/home/) ----
	 * An entry (a page's, later a lock's) is mastered by one node and
	 * may move to the node that uses it most. */
	WIRE_DIR_MIGRATE = 22, /* old master -> new: the entry and its counts;
				  the old master keeps a forwarding address */
	WIRE_DIR_HINT = 23,    /* master -> nodes a request was forwarded
				  through: the entry lives here now */
	WIRE_DIR_NACK = 24,    /* node -> requester: I do not master the
				  entry and know nobody who does */
	WIRE_DIR_WHO_HAS = 25, /* requester -> every node: who masters it? */
	WIRE_DIR_WHO_HAS_REPLY = 26,
	WIRE_DIR_POLICY = 27,  /* node -> every node: a region's policy */
	WIRE_DIR_POLICY_ACK = 28,
	/* The lock manager (daemon/lock/).  OP: owner -> master, routed
	 * like DSM_REQ; REPLY: master -> owner; PROBE: a deadlock search
	 * visiting the node of a lock's owner; RECOVERED: node -> every node,
	 * it rebuilt what it holds of a dead node's resources. */
	WIRE_LOCK_OP = 29,
	WIRE_LOCK_REPLY = 30,
	WIRE_LOCK_PROBE = 31,
	WIRE_LOCK_RECOVERED = 32,
	/* R->H: a read miss sent straight to the node R last heard take the
	 * page (daemon/page/holder.c, "Reads from a holder").  H writes the
	 * page into R's slot with an S grant (R then tells the master:
	 * DSM_SHARED), or passes the request on to the master as a DSM_REQ.
	 * Body: struct wire_dsm_req. */
	WIRE_DSM_PEER_REQ = 33,
	/* R->M, once R installed a copy H gave it directly (node = H,
	 * version of the copy): M lists R as a sharer if H is listed and
	 * nothing was written since.  H learns it from the `covered` set of
	 * the next write's INV, FWD or GRANT. */
	WIRE_DSM_SHARED = 34,
	/* node -> each peer, once, as soon as they are connected: where its
	 * receive slots are.  A request names a slot by index only; the
	 * holder writes at the address this gave, and never outside it. */
	WIRE_PAGE_SLOTS = 35,
	/* R->M, req_id = R's transaction: it has waited --dead-after-ms;
	 * what it got so far (struct wire_dsm_stuck).  M declares dead who
	 * still owes it an ack or the page (or R, if R keeps the entry busy
	 * while others wait). */
	WIRE_DSM_STUCK = 36,
	/* H->R, req_id = R's transaction: H passed R's DSM_PEER_REQ on to the
	 * master as R's request (it could not serve it): R's transaction is
	 * an ordinary one now, asked again if a node dies (struct
	 * wire_dsm_passed). */
	WIRE_DSM_PASSED = 37,

	/* ---- Unix socket: client <-> its node's dsmd ---- */

	/* HELLO: client->dsmd, first message of every connection.
	 * HELLO_OK: dsmd->client; anything else closes the connection. */
	WIRE_IPC_HELLO = 64,
	WIRE_IPC_HELLO_OK = 65,
	WIRE_IPC_STATUS = 66,      /* client->dsmd, after HELLO */
	WIRE_IPC_STATUS_REPLY = 67,
	WIRE_IPC_CHECK = 68,       /* client->dsmd: run the self-check */
	WIRE_IPC_CHECK_REPLY = 69,
	WIRE_IPC_RESULT = 70,      /* dsmd->client: done (0) or refused */
	/* Test hook, honoured only by a dsmd started with DSM_TEST_HOOKS=1:
	 * send a deliberately malformed message to a peer.  Answered with
	 * IPC_RESULT. */
	WIRE_IPC_INJECT = 71,
	/* libdsm -> dsmd after HELLO (kind APP): join the job; answered
	 * with ATTACH_OK carrying the node memfd (SCM_RIGHTS). */
	WIRE_IPC_ATTACH = 72,
	WIRE_IPC_ATTACH_OK = 73,
	/* libdsm -> dsmd: the process's userfaultfd (SCM_RIGHTS), registered
	 * over the arena; answered with RESULT. */
	WIRE_IPC_UFFD = 74,
	WIRE_IPC_COLL = 75,     /* barrier, alloc, free: answered with REPLY */
	WIRE_IPC_REGION = 76,   /* open or close a named region: REPLY */
	WIRE_IPC_PAGE = 77,     /* page state and master: REPLY */
	WIRE_IPC_STATS = 78,    /* answered with STATS_REPLY */
	WIRE_IPC_STATS_REPLY = 79,
	WIRE_IPC_REPLY = 80,    /* status and two values */
	WIRE_IPC_DETACH = 81,   /* clean goodbye: answered with RESULT */
	/* libdsm -> dsmd: set, clear or read the placement policy of a
	 * range; answered with POLICY_REPLY (status, the policy in force). */
	WIRE_IPC_POLICY = 82,
	WIRE_IPC_POLICY_REPLY = 83,
	/* libdsm -> dsmd on a lock connection (kind LOCK): a lock request,
	 * conversion, release, cancel or master query.  dsmd answers each
	 * with LOCK_EVENT (COMPLETE, same req_id), and sends blocking
	 * notifications as LOCK_EVENT (BAST, req_id 0). */
	WIRE_IPC_LOCK = 84,
	WIRE_IPC_LOCK_EVENT = 85,
	/* checked node -> checker: DATA received so far (a result with
	 * received set): the checker keeps at most a window unanswered. */
	WIRE_CHECK_PROGRESS = 86,

	WIRE_TYPE_MAX = 87,
};

/* ---- bodies ---- */

struct wire_check_begin {
	uint32_t session;
	uint32_t count;       /* DATA messages that follow */
	uint32_t payload_len; /* bytes of payload in each DATA */
	uint32_t rdma_len;    /* bytes of scratch for READ and WRITE */
	uint64_t seed;        /* pattern seed */
} __attribute__((packed));

struct wire_check_ready {
	uint32_t session;
	uint32_t rkey;
	uint64_t addr;
	uint32_t len;
	int32_t status; /* 0, or negative errno: P could not set up */
} __attribute__((packed));

struct wire_check_data {
	uint32_t session;
	uint32_t index;       /* 0..count-1, in send order */
	uint32_t payload_len; /* must equal the bytes that follow */
	uint32_t reserved;
	/* uint8_t payload[payload_len]; */
} __attribute__((packed));

struct wire_check_result {
	uint32_t session;
	uint32_t received; /* DATA messages seen (DATA_DONE) */
	uint32_t errors;   /* out-of-order or corrupt messages, bad bytes */
	int32_t status;    /* 0 or negative errno */
	uint64_t first_bad; /* first bad index or byte offset, or ~0 */
} __attribute__((packed));

struct wire_check_end {
	uint32_t session;
	uint32_t reserved;
} __attribute__((packed));

/* Whether a node message belongs to the coherence protocol (counted in
 * dsm_stats' msgs and bytes; collectives and heartbeats are not). */
static inline int wire_is_coherence(unsigned type)
{
	return (type >= WIRE_DSM_REQ && type <= WIRE_DSM_DONE) ||
	       (type >= WIRE_DSM_LOST && type <= WIRE_DIR_WHO_HAS_REPLY) ||
	       (type >= WIRE_LOCK_OP && type <= WIRE_LOCK_PROBE) ||
	       (type >= WIRE_DSM_PEER_REQ && type <= WIRE_DSM_SHARED);
}

/* A heartbeat may carry the sender's load: how many entries it masters
 * that were used recently (daemon/home/).  An empty one is valid too. */
struct wire_heartbeat {
	uint32_t load;
	uint32_t reserved;
} __attribute__((packed));

/* ---- shared-memory bodies ---- */

#define WIRE_PAGE_SIZE 4096u

enum wire_access { WIRE_ACC_READ = 1, WIRE_ACC_WRITE = 2 };
enum wire_pstate { WIRE_PS_I = 0, WIRE_PS_S = 1, WIRE_PS_M = 2 };

/* Where a holder writes the page for R: R's receive slot, by its index
 * among those R's PAGE_SLOTS gave (the index is also the immediate data
 * of the RDMA WRITE). */
struct wire_slot {
	uint64_t reserved;  /* was the address: an index is checked */
	uint32_t reserved2; /* was the rkey */
	uint32_t index;
} __attribute__((packed));

struct wire_page_slots {
	uint64_t addr;      /* slot 0 */
	uint32_t rkey;
	uint32_t nslots;
	uint32_t stride;    /* bytes from one slot to the next */
	uint32_t reserved;
} __attribute__((packed));

/* How a request travels to its entry's master.  A node that no longer
 * masters the entry forwards the request to where it went, adding itself
 * to the chain; the master then tells every node on the chain. */
struct wire_route {
	uint16_t origin;   /* the requester */
	uint16_t hops;     /* forwards so far, at most the node count */
	uint32_t epoch;    /* the epoch of the address it was sent to: a
			      node that does not master the entry yet but
			      is named at a newer epoch than it knows waits
			      for the entry to arrive */
	uint64_t chain;    /* the nodes that forwarded it, bit per node */
} __attribute__((packed));

struct wire_dsm_req {
	uint64_t page;   /* page index in the arena */
	uint32_t access; /* enum wire_access */
	uint32_t has_copy; /* R holds the page S (an upgrade) */
	struct wire_slot slot;
	struct wire_route route;
	uint64_t version;  /* of R's copy, with has_copy */
} __attribute__((packed));

#define WIRE_FWD_INVALIDATE 1u /* drop the copy after sending (else keep S) */
#define WIRE_FWD_GRANT      2u /* the data carries R's grant */

struct wire_dsm_fwd {
	uint64_t page;
	uint32_t requester;
	uint32_t flags;    /* WIRE_FWD_* */
	uint32_t state;    /* granted state, with WIRE_FWD_GRANT */
	uint32_t epoch;    /* the master's epoch of the entry */
	uint64_t version;
	struct wire_slot slot;
	uint64_t covered;  /* with INVALIDATE: every node this write
			      invalidates itself (and R); a holder passes
			      the invalidation on only to readers it gave
			      the page that are not in it */
} __attribute__((packed));

struct wire_dsm_passed {
	uint64_t page;
	uint64_t reserved;
} __attribute__((packed));

struct wire_dsm_stuck {
	uint64_t page;
	uint64_t heard;    /* nodes whose ack or page R has */
	uint32_t grant;    /* R has its grant */
	uint32_t has_copy; /* R asked as a sharer (its request's has_copy) */
} __attribute__((packed));

/* The invalidation comes from a holder, not the master: it is for a copy
 * the holder gave R directly, which the master does not know of. */
#define WIRE_INV_RELAYED 1u
/* From the master, wanting no ack: drop a copy older than `version` that
 * a holder gave you directly and died before the master listed it (a
 * write was served since, and nobody is left to pass its invalidation
 * on).  `requester` is the master. */
#define WIRE_INV_STRAY 2u

struct wire_dsm_inv {
	uint64_t page;
	uint32_t requester;
	uint32_t epoch;    /* the master's epoch of the entry (0: relayed) */
	uint32_t flags;    /* WIRE_INV_* */
	uint32_t reserved;
	uint64_t covered;  /* as wire_dsm_fwd's */
	uint64_t version;  /* the write's: a copy this new or newer stays (a
			      relayed invalidation may come late, after
			      the node got the page again) */
} __attribute__((packed));

#define WIRE_ACK_RELAYED 1u /* answers a WIRE_INV_RELAYED invalidation */

struct wire_dsm_ack {
	uint64_t page;
	uint32_t node;     /* whose invalidation this acknowledges */
	uint32_t flags;    /* WIRE_ACK_* */
	uint64_t also;     /* nodes the acker gave copies directly and has
			      invalidated in turn: R waits for their
			      (relayed) acks too */
} __attribute__((packed));

struct wire_dsm_shared {
	uint64_t page;
	uint32_t node;     /* H, the giver */
	uint32_t reserved;
	uint64_t version;  /* of the copy R got */
} __attribute__((packed));

#define WIRE_GRANT_ZERO 1u /* first touch: zero fill, no data moves */
#define WIRE_GRANT_DATA 2u /* a holder writes the data into the slot */
#define WIRE_GRANT_LOST 4u /* the page died with its only holder */

struct wire_dsm_grant {
	uint64_t page;
	uint32_t state; /* enum wire_pstate */
	uint32_t acks;  /* INV_ACKs R must collect */
	uint32_t flags; /* WIRE_GRANT_* */
	uint32_t epoch; /* the master's epoch of the entry */
	uint64_t version;
	uint64_t covered; /* M grants: as wire_dsm_fwd's */
} __attribute__((packed));

struct wire_dsm_done {
	uint64_t page;
	uint32_t aborted;  /* 1: R did not get the page (its holder died) */
	uint32_t reserved;
} __attribute__((packed));

#define WIRE_LOST_SUPPLIER 1u /* the dead node was to send the page */

struct wire_dsm_lost {
	uint64_t page;
	uint32_t node;     /* the dead node */
	uint32_t flags;    /* WIRE_LOST_* */
} __attribute__((packed));

/* Written after the page in R's slot by the RDMA WRITE. */
#define WIRE_TRAILER_MAGIC 0x5a1f7e11u
struct wire_trailer {
	uint64_t page;
	uint64_t req_id;   /* R's transaction */
	uint64_t version;
	uint32_t state;    /* granted state when grant != 0 */
	uint32_t grant;    /* 1: this is R's grant too */
	uint32_t src;      /* the holder */
	uint32_t magic;
	uint32_t master;   /* the node serving R's request, which R's DONE */
	uint32_t epoch;    /* goes to, and its epoch of the entry */
	uint64_t also;     /* as wire_dsm_ack's: relayed acks R waits for */
	uint32_t flags;    /* WIRE_TR_* */
	uint32_t reserved;
} __attribute__((packed));

/* The holder answered a DSM_PEER_REQ itself: the grant is S, no master
 * took part, and R sends no DONE. */
#define WIRE_TR_PEER 1u

#define WIRE_SLOT_SIZE (WIRE_PAGE_SIZE + sizeof(struct wire_trailer))

enum wire_coll_op { WIRE_COLL_BARRIER = 1, WIRE_COLL_ALLOC, WIRE_COLL_FREE,
		    /* COLL_ARRIVE only: a rank of the job died */
		    WIRE_COLL_ABORT };
/* COLL_DONE with this seq: the job is aborted, every collective fails. */
#define WIRE_COLL_SEQ_ABORT UINT64_MAX

struct wire_coll_arrive {
	uint64_t job;
	uint64_t seq;
	uint64_t arg;      /* size (ALLOC), address (FREE), 0 */
	uint32_t op;       /* enum wire_coll_op */
	uint32_t count;    /* ranks of this node that arrived */
	uint32_t size;     /* ranks in the job */
	uint32_t mismatch; /* this node's ranks disagreed on op or arg */
} __attribute__((packed));

struct wire_coll_done {
	uint64_t job;
	uint64_t seq;
	int32_t status;
	uint32_t reserved;
	uint64_t value;
} __attribute__((packed));

/* ---- where directory entries live ---- */

enum wire_entry_kind { WIRE_ENTRY_PAGE = 1, WIRE_ENTRY_LOCK = 2 };
#define WIRE_NO_NODE UINT32_MAX

/* Recent requests per node, kept for the few busiest nodes. */
#define WIRE_HOME_TOP 4
struct wire_home_counts {
	uint16_t total;                  /* all requests, decayed */
	uint16_t count[WIRE_HOME_TOP];
	uint8_t node[WIRE_HOME_TOP];
	uint16_t reserved;
} __attribute__((packed));

/* DIR_MIGRATE: the entry's mastering part, then its kind's state. */
struct wire_dir_migrate {
	uint64_t key;
	uint32_t kind;     /* enum wire_entry_kind */
	uint32_t epoch;    /* the entry's epoch at its new master */
	struct wire_home_counts counts;
	uint32_t state_len; /* bytes of state that follow */
	uint32_t reserved;
	/* kind's state */
} __attribute__((packed));

/* A page entry's state, after struct wire_dir_migrate. */
struct wire_dir_page {
	uint32_t state;    /* WIRE_PS_* or 3 (lost) */
	uint32_t owner;
	uint64_t sharers;
	uint64_t version;
	uint32_t flags;    /* WIRE_DIR_STRAYS */
} __attribute__((packed));

/* A listed holder died: it may have given copies nobody lists, and the
 * next write invalidates every live node. */
#define WIRE_DIR_STRAYS 1u

/* DIR_HINT, DIR_NACK, DIR_WHO_HAS and DIR_WHO_HAS_REPLY. */
struct wire_dir_where {
	uint64_t key;
	uint32_t kind;     /* enum wire_entry_kind */
	uint32_t master;   /* HINT: the master.  REPLY: 1 if the sender
			      masters it */
	uint32_t hint;     /* REPLY: where the sender believes it is, or
			      WIRE_NO_NODE */
	uint32_t epoch;    /* HINT, REPLY: the epoch of that knowledge */
} __attribute__((packed));

/* A placement policy (struct dsm_policy on the wire). */
struct wire_policy {
	uint32_t placement; /* DSM_PLACE_* */
	uint32_t migrate;   /* 0: entries stay where they are */
	uint32_t share_pct; /* share of recent requests that moves an entry */
	uint32_t min_requests;
	uint32_t window_ms; /* counts halve every window */
	uint32_t load_pct;  /* refuse nodes over this % of a fair share */
} __attribute__((packed));

/* DIR_POLICY, DIR_POLICY_ACK (req_id matches them). */
struct wire_dir_policy {
	uint64_t first_page;
	uint64_t npages;
	uint32_t clear;     /* 1: back to the cluster's policy */
	uint32_t reserved;
	struct wire_policy p;
} __attribute__((packed));

/* IPC_POLICY: set (op 1) or get (op 2) the policy of a range. */
enum wire_policy_op { WIRE_POLICY_SET = 1, WIRE_POLICY_GET, WIRE_POLICY_CLEAR };
struct wire_ipc_policy {
	uint64_t addr;
	uint64_t len;
	uint32_t op;
	uint32_t reserved;
	struct wire_policy p;
} __attribute__((packed));

/* IPC_POLICY_REPLY */
struct wire_ipc_policy_reply {
	int32_t status;
	uint32_t reserved;
	struct wire_policy p;
} __attribute__((packed));

/* ---- the lock manager ---- */

#define WIRE_LOCK_NAME_MAX 64 /* DSM_LOCK_NAME_MAX */
#define WIRE_LVB_LEN 16
#define WIRE_LK_MODES 6       /* NL..EX */
#define WIRE_LK_NONE 0xffu    /* no mode */

enum wire_lock_opcode {
	WIRE_LOCK_NEW = 1,   /* grant a new lock in rqmode */
	WIRE_LOCK_CONVERT,   /* change a granted lock's mode to rqmode */
	WIRE_LOCK_UNLOCK,    /* release it (answered with UNLOCKED) */
	WIRE_LOCK_CANCEL,    /* stop its wait: it ends with `status` */
	WIRE_LOCK_REBUILD,   /* its master died: the lock as its owner has it */
	WIRE_LOCK_SEARCH,    /* deadlock search: who blocks this lock? */
	WIRE_LOCK_OPCODE_MAX,
};

#define WIRE_LKF_NOQUEUE 0x1u  /* not grantable now: fail */
#define WIRE_LKF_VALBLK  0x2u  /* read (grant) or write (release) the block */
#define WIRE_LKF_BAST    0x4u  /* the owner wants blocking notifications */
#define WIRE_LKF_DIED    0x8u  /* UNLOCK: its process died */
#define WIRE_LKF_LVB     0x10u /* REBUILD: lvb is the owner's valid copy */
#define WIRE_LKF_ALL     0x1fu

/* A lock, cluster wide: its owner's node, the process (a lock connection
 * of that node) and the node's handle for it. */
struct wire_lock_id {
	uint64_t handle;
	uint32_t owner;
	uint16_t node;
	uint16_t reserved;
} __attribute__((packed));

struct wire_lock_op {
	uint64_t key;        /* the resource: a hash of parent key and name */
	uint64_t parent;     /* the parent resource's key, 0 at the top */
	struct wire_lock_id id;
	uint32_t op;         /* enum wire_lock_opcode */
	uint32_t flags;      /* WIRE_LKF_* */
	uint8_t grmode;      /* REBUILD: held mode, or WIRE_LK_NONE */
	uint8_t rqmode;      /* NEW, CONVERT; REBUILD: wanted, or NONE */
	uint8_t name_len;    /* 1..WIRE_LOCK_NAME_MAX; 0: an UNLOCK by key
				alone (of a lock its owner does not have) */
	uint8_t reserved;
	int32_t status;      /* CANCEL: the error the request ends with */
	uint32_t seq;        /* SEARCH: the initiator's search number; else
				the owner's operation on the lock: 1 for
				NEW, one more per CONVERT or UNLOCK (a
				CANCEL, a resend, a REBUILD: the one under
				way), so a master drops one it applied */
	uint32_t hops;       /* SEARCH: lock owners visited so far */
	struct wire_lock_id origin; /* SEARCH: the lock that started it */
	uint8_t lvb[WIRE_LVB_LEN];
	struct wire_route route;
	char name[WIRE_LOCK_NAME_MAX]; /* not NUL terminated */
} __attribute__((packed));

enum wire_lock_reply_kind {
	WIRE_LKR_DONE = 1,   /* the request or conversion ended: status */
	WIRE_LKR_BAST,       /* your lock blocks a request for `mode` */
	WIRE_LKR_UNLOCKED,   /* the release is done */
	WIRE_LKR_DEADLOCK,   /* SEARCH came back: your lock closes a cycle */
	WIRE_LKR_KIND_MAX,
};

#define WIRE_LKR_LVB      0x1u /* lvb carries the value block */
#define WIRE_LKR_LVB_BAD  0x2u /* the value block is not valid */

struct wire_lock_reply {
	uint64_t key;
	struct wire_lock_id id;
	uint32_t kind;       /* enum wire_lock_reply_kind */
	int32_t status;      /* DONE: 0 or a negative errno */
	uint8_t mode;        /* DONE: granted mode; BAST: the mode wanted */
	uint8_t flags;       /* WIRE_LKR_* */
	uint16_t reserved;
	uint32_t epoch;      /* the master's epoch of the resource */
	uint32_t seq;        /* DEADLOCK: the search that came back; DONE: the
				operation answered (wire_lock_op.seq) */
	uint32_t reserved2;
	uint8_t lvb[WIRE_LVB_LEN];
} __attribute__((packed));

/* A deadlock search visiting the node of lock owner `target`. */
struct wire_lock_probe {
	struct wire_lock_id origin;
	uint32_t seq;
	uint32_t hops;
	uint32_t target;     /* the owner (lock connection) on that node */
	uint32_t reserved;
} __attribute__((packed));

struct wire_lock_recovered {
	uint32_t dead;       /* the node that died */
	uint32_t reserved;
} __attribute__((packed));

/* A lock resource's state in a DIR_MIGRATE (kind WIRE_ENTRY_LOCK), after
 * struct wire_dir_migrate: this, then nlocks struct wire_lock_held, the
 * granted queue in order.  Sent by the resource's master to the node it
 * hands the resource to; legal only from a master whose resource is idle
 * (nothing converting, waiting or parked, no adoption lookup out, at most
 * 96 granted locks), and installed only by a node that does not master the
 * resource and keeps no lock of it, with a name that hashes to the key. */
struct wire_lock_state {
	uint64_t parent;     /* the parent resource's key, 0 at the top */
	uint8_t name_len;    /* 1..WIRE_LOCK_NAME_MAX */
	uint8_t lvb_valid;   /* 0: the value block was lost with a writer */
	uint16_t nlocks;     /* struct wire_lock_held that follow */
	uint32_t reserved;
	char name[WIRE_LOCK_NAME_MAX];
	uint8_t lvb[WIRE_LVB_LEN];
} __attribute__((packed));

/* One granted lock of a resource that moves (see above). */
struct wire_lock_held {
	struct wire_lock_id id;
	uint8_t grmode;      /* NL..EX */
	uint8_t flags;       /* WIRE_LKF_BAST, WIRE_LKF_VALBLK */
	uint16_t reserved;
	uint32_t opseq;      /* the owner's last operation applied */
} __attribute__((packed));

/* IPC_LOCK */
enum wire_ipc_lock_op { WIRE_IPC_LK_LOCK = 1, WIRE_IPC_LK_UNLOCK,
			WIRE_IPC_LK_MASTER };
struct wire_ipc_lock {
	uint32_t op;         /* enum wire_ipc_lock_op */
	uint32_t flags;      /* DSM_LKF_* */
	uint32_t mode;
	uint32_t timeout_ms;
	uint64_t lkid;       /* the process's name for the lock */
	uint64_t parent;     /* lkid of the parent lock, 0: none */
	uint32_t name_len;
	uint32_t bast;       /* 1: the process wants blocking notifications */
	uint8_t lvb[WIRE_LVB_LEN];
	char name[WIRE_LOCK_NAME_MAX];
} __attribute__((packed));

enum wire_ipc_lock_event_kind { WIRE_IPC_LKE_COMPLETE = 1,
				WIRE_IPC_LKE_BAST };
struct wire_ipc_lock_event {
	uint32_t kind;
	int32_t status;      /* COMPLETE: 0 or negative errno (MASTER: the
				node, when >= 0) */
	uint64_t lkid;
	uint32_t mode;       /* COMPLETE: granted; BAST: wanted */
	uint32_t sbflags;    /* DSM_SBF_* */
	uint32_t has_lvb;    /* lvb carries the value block */
	uint32_t reserved;
	uint8_t lvb[WIRE_LVB_LEN];
} __attribute__((packed));

#define WIRE_NAME_MAX 64 /* a region name with its NUL */
enum wire_region_kind { WIRE_REGION_OPEN = 1, WIRE_REGION_CLOSE };

struct wire_region_op {
	uint32_t op;
	uint32_t flags;  /* DSM_CREATE, DSM_EXCL */
	uint64_t size;   /* OPEN */
	uint64_t addr;   /* CLOSE */
	char name[WIRE_NAME_MAX]; /* OPEN: NUL terminated */
} __attribute__((packed));

struct wire_reset {
	uint64_t first_page;
	uint64_t npages;
} __attribute__((packed));

#define WIRE_IPC_KIND_CTL 1u
#define WIRE_IPC_KIND_APP 2u
#define WIRE_IPC_KIND_LOCK 3u /* a process's lock connection */
/* 02: the hello lost its pid (dsmd takes the peer's from the kernel).
 * 03: a process's hello names its job and carries the job's key. */
#define WIRE_IPC_MAGIC "DSMIPC03"
#define WIRE_JOB_KEY_MAX 64 /* a job key with its NUL */

struct wire_ipc_hello {
	char magic[8]; /* WIRE_IPC_MAGIC, not NUL terminated */
	uint32_t kind; /* WIRE_IPC_KIND_* */
	uint32_t reserved;
	/* APP and LOCK: the job this process is a rank of (DSM_JOB) and its
	 * key (DSM_JOB_KEY, NUL padded; empty: none).  dsmd serves one job
	 * and refuses a process of another, or with another key. */
	uint64_t job;
	char key[WIRE_JOB_KEY_MAX];
} __attribute__((packed));

struct wire_ipc_hello_ok {
	uint32_t node;
	uint32_t nnodes;
} __attribute__((packed));

struct wire_ipc_attach {
	uint32_t rank, size;
	uint32_t local_size; /* ranks on this node */
	uint32_t reserved;
	uint64_t reserved2;  /* was the job id: the hello names it now */
} __attribute__((packed));

struct wire_ipc_attach_ok {
	uint64_t base;      /* the arena's address in every process */
	uint64_t size;
	uint32_t page_size;
	uint32_t node, nnodes;
	uint32_t reserved;
} __attribute__((packed));

struct wire_ipc_coll {
	uint64_t seq;  /* this rank's collective count */
	uint64_t arg;
	uint32_t op;   /* enum wire_coll_op */
	uint32_t reserved;
} __attribute__((packed));

struct wire_ipc_page {
	uint64_t addr;
} __attribute__((packed));

struct wire_ipc_reply {
	int32_t status; /* 0 or negative errno */
	uint32_t reserved;
	uint64_t value, value2;
} __attribute__((packed));

/* Malformations WIRE_IPC_INJECT can send. */
enum wire_inject {
	WIRE_INJECT_VERSION = 1,  /* unsupported version */
	WIRE_INJECT_TYPE,         /* unknown type */
	WIRE_INJECT_LONG_FIELD,   /* length field beyond the bytes sent */
	WIRE_INJECT_SHORT_FIELD,  /* bytes sent beyond the length field */
	WIRE_INJECT_GARBAGE,      /* random bytes */
	WIRE_INJECT_BODY,         /* body length wrong for its type */
	WIRE_INJECT_SRC,          /* claims to come from another node */
	WIRE_INJECT_CREDITS,      /* returns credits it does not owe */
	WIRE_INJECT_IPC_TYPE,     /* a socket-only type on the node channel */
	WIRE_INJECT_MAX,
};

struct wire_ipc_inject {
	uint32_t peer;
	uint32_t kind; /* enum wire_inject */
} __attribute__((packed));

struct wire_ipc_result {
	int32_t status; /* negative errno */
	uint32_t reserved;
} __attribute__((packed));

/* Per-peer transport counters. */
struct wire_counters {
	uint64_t msgs_sent, msgs_received;
	uint64_t bytes_sent, bytes_received;
	uint64_t rdma_reads, rdma_writes, rdma_bytes;
	uint64_t credit_stalls; /* sends that waited for a credit */
	uint64_t credit_msgs;   /* credit-only messages sent */
	uint64_t bad_msgs;      /* dropped by the decoder */
} __attribute__((packed));

enum wire_member_state {
	WIRE_MEMBER_SELF = 0,
	WIRE_MEMBER_JOINING = 1,
	WIRE_MEMBER_ALIVE = 2,
	WIRE_MEMBER_DEAD = 3,
};

struct wire_member {
	uint32_t node;
	uint32_t state;          /* enum wire_member_state */
	uint64_t last_heard_ms;  /* ms since the last message; ~0 if never */
	struct wire_counters c;
} __attribute__((packed));

/* What dsmd refused, by the limit or rule that refused it (dsmctl
 * status).  Connections refused at accept are ipc_refused. */
struct wire_refusals {
	uint64_t job;      /* processes of another job, or without its key */
	uint64_t attach;   /* a rank attached twice, or more than the job
			      said run on the node */
	uint64_t regions;  /* named regions over a process's cap, regions
			      over node 0's */
	uint64_t locks;    /* locks over a process's or resource's cap */
	uint64_t checks;   /* dsmctl check beyond its caps */
	uint64_t queues;   /* clients cut off: their replies overflowed */
	uint64_t nomem;    /* requests failed for want of memory */
} __attribute__((packed));

struct wire_status_reply {
	uint32_t node;
	uint32_t nnodes;
	uint64_t uptime_ms;
	uint64_t bad_msgs;      /* node messages dropped by the decoder */
	uint64_t ipc_refused;   /* socket clients refused */
	uint64_t job;           /* the job this node serves */
	uint32_t job_bound;     /* 1: it has one (0: the first to attach) */
	uint32_t reserved0;
	struct wire_refusals refused;
	uint64_t heartbeat_ms;
	uint64_t dead_after_ms;
	int32_t numa_node;      /* the RDMA device's, -1 if unknown */
	uint32_t reserved;
	char device[32];        /* the device, or for ofi the provider */
	char transport[16];     /* "verbs", "ofi", "mock" (a lone node) */
	/* struct wire_member members[nnodes]; */
} __attribute__((packed));

#define WIRE_CHECK_LIVE_ONLY 1u /* leave out peers known dead */

struct wire_ipc_check {
	uint32_t count;       /* DATA messages per peer */
	uint32_t payload_len;
	uint32_t nsizes;      /* RDMA sizes that follow, at most 8 */
	uint32_t flags;       /* WIRE_CHECK_* */
	uint32_t sizes[8];
} __attribute__((packed));

struct wire_check_peer {
	uint32_t node;
	uint32_t rdma_len;
	int32_t status;      /* 0 when every step passed */
	uint32_t msgs_ok;    /* DATA messages acknowledged in order */
	uint32_t read_ok;    /* 1 if the RDMA READ matched byte for byte */
	uint32_t write_ok;   /* 1 if the RDMA WRITE matched byte for byte */
	uint64_t elapsed_us;
} __attribute__((packed));

struct wire_check_reply {
	uint32_t node;
	uint32_t npeers; /* entries that follow */
	/* struct wire_check_peer peers[npeers]; */
} __attribute__((packed));

/* ---- codec ---- */

/* Why wire_decode refused a message. */
enum wire_error {
	WIRE_OK = 0,
	WIRE_ETRUNC,   /* fewer bytes than a header, or than `length` says */
	WIRE_ELONG,    /* more bytes than `length`, or over the maximum */
	WIRE_EMAGIC,
	WIRE_EVERSION,
	WIRE_ETYPE,    /* unknown type, or not legal on this channel */
	WIRE_EBODY,    /* body length wrong for the type */
	WIRE_ERANGE,   /* a count or index inside the body out of range */
	WIRE_NERRORS,
};

enum wire_channel { WIRE_CH_NODE, WIRE_CH_IPC };

struct wire_msg {
	const struct wire_hdr *hdr;
	const void *body;
	size_t body_len;
};

/* Check `len` bytes at `buf` as one message arriving on channel `ch`.
 * Returns WIRE_OK and fills *out, or a wire_error and leaves *out alone. */
enum wire_error wire_decode(const void *buf, size_t len, enum wire_channel ch,
			    struct wire_msg *out);
const char *wire_error_str(enum wire_error e);
const char *wire_type_name(unsigned type);
/* The channel a type is legal on (enum wire_channel), or -1: unknown. */
int wire_type_channel(unsigned type);

/* Write a header for a message of `body_len` bytes into buf. */
void wire_hdr_init(void *buf, unsigned type, size_t body_len, uint64_t req_id);

/* Build a whole message (header + body copy) into buf of buf_len bytes.
 * Returns the message length, or 0 if it does not fit. */
size_t wire_build(void *buf, size_t buf_len, unsigned type, uint64_t req_id,
		  const void *body, size_t body_len);

/* The deterministic byte pattern used by the self-check. */
void wire_pattern_fill(void *buf, size_t len, uint64_t seed);
/* Offset of the first byte that differs from the pattern, or -1. */
long wire_pattern_check(const void *buf, size_t len, uint64_t seed);

#endif
