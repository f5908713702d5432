/* dsmd's core: what every protocol module may call.
 *
 * One dsmd per node, one thread, an event loop: no field below is touched
 * from another thread, so there are no locks.  The core owns
 *   - the loop: watches (an fd and its callback, loop.c) and timers (one
 *     heap behind one timerfd, timer.c), and the clock;
 *   - node messaging (node.c): sending to a node or to this node itself
 *     (the self queue), messages kept for later (the deferred queue), and
 *     the dispatch of each node message to the one module that handles
 *     its type;
 *   - members (cluster.c): who is up, heartbeats, deaths, and the notice
 *     of a death to every module, in the module table's order;
 *   - clients (client.c): the Unix socket, each client's credentials and
 *     output, the dispatch of its requests; attached processes (app.c);
 *   - the counters (struct dsm_stats) every module adds to.
 * Each protocol is a module described by one struct dsmd_module (module.c
 * fills the dispatch tables from them; modules.c lists them).  Modules call
 * the core and, between each other, only declared interfaces (home.h's
 * entry kinds); the core calls modules only through their tables.
 */
#ifndef DSMD_H
#define DSMD_H

#include <dsm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "list.h"
#include "wire.h"
#include "xport.h"

struct dsmd;

/* Which transport dsmd runs on (--transport). */
enum dsmd_transport {
	DSMD_XPORT_AUTO,  /* verbs where an RDMA device is usable, else ofi */
	DSMD_XPORT_VERBS,
	DSMD_XPORT_OFI,   /* libfabric, provider cfg.provider */
};

struct dsmd_config {
	int node, nnodes;
	uint32_t transport;     /* enum dsmd_transport */
	const char *provider;   /* libfabric provider, default "tcp;ofi_rxm" */
	const char *rendezvous; /* host:port of node 0's rendezvous */
	const char *device;     /* RDMA device, NULL: from addr or first */
	const char *addr;       /* IPv4 on the device, NULL: from its GIDs */
	const char *socket;     /* Unix socket for clients */
	const char *allow_uid;  /* users besides dsmd's own (and root) who
				   may attach: names or uids, comma-separated */
	const char *allow_group; /* groups who may: names or gids */
	unsigned client_queue_kb; /* replies waiting per client, at most */
	unsigned max_clients;   /* connections served at once */
	unsigned max_regions;   /* node 0: regions live at once (0:
				   DSMD_MAX_REGIONS) */
	unsigned max_named;     /* named regions one process has open, at
				   most (0: DSMD_MAX_NAMED) */
	unsigned max_locks;     /* locks one process holds or asks, at most
				   (0: DSMD_MAX_LOCKS) */
	unsigned max_lock_queue; /* locks on one resource this node masters,
				   in all its queues (0: DSMD_MAX_LOCK_QUEUE) */
	unsigned heartbeat_ms;
	unsigned dead_after_ms;
	unsigned join_timeout_ms;
	unsigned recv_depth;
	unsigned poll_us;
	unsigned txn_poll_us;   /* poll, not sleep, while a fault waits */
	int ready_fd;           /* written once the mesh is up, -1: none */
	int rendezvous_fd;      /* node 0: a listening socket to serve the
				   rendezvous on, -1: bind the address */
	bool test_hooks;        /* DSM_TEST_HOOKS=1: honour IPC_INJECT */
	uint64_t arena_base;    /* the arena's address in every process */
	uint64_t arena_size;
	unsigned hold_us;       /* keep a granted page this long */
	bool peer_reads_off;    /* --peer-reads off: read misses go to the
				   master only */
	unsigned peer_hold_us;  /* --peer-hold-us */
	struct wire_policy policy; /* where entries live, when they move */
	unsigned deadlock_ms;   /* a lock waits this long, then a deadlock
				   search starts */
	bool job_set;           /* --job: the one job this dsmd serves */
	uint64_t job;
	const char *job_key;    /* DSM_JOB_KEY (environment), NULL: none */
};

/* ---------------------------------------------------------------------- */
/* The loop: watches and timers                                           */

/* An fd the loop waits on; epoll's data.ptr points at it.  A module embeds
 * one per fd and is called back with the ready events. */
struct watch {
	int fd;
	void (*fn)(struct dsmd *d, struct watch *w, uint32_t events);
};

int watch_add(struct dsmd *d, struct watch *w, int fd, uint32_t events,
	      void (*fn)(struct dsmd *, struct watch *, uint32_t));
void watch_del(struct dsmd *d, struct watch *w);

/* A timer: fn runs once, on the loop, at or after when_us (the core's
 * clock).  Embedded in its owner; armed timers sit in one min-heap ordered
 * by (when_us, arming order), so timers due at the same time run in the
 * order they were armed. */
struct timer {
	uint64_t when_us;
	uint64_t seq;
	unsigned slot;          /* 1 + its index in the heap, 0: not armed */
	void (*fn)(struct dsmd *d, struct timer *t);
};

struct timer_heap {
	struct timer **v;
	unsigned n, cap;
	uint64_t seq;
};

/* The heap alone (timer.c; unit tested without a daemon). */
int timer_heap_add(struct timer_heap *h, struct timer *t);
void timer_heap_remove(struct timer_heap *h, struct timer *t);
static inline struct timer *timer_heap_min(const struct timer_heap *h)
{
	return h->n ? h->v[0] : NULL;
}
void timer_heap_free(struct timer_heap *h);

static inline bool timer_armed(const struct timer *t)
{
	return t->slot != 0;
}

/* Arm t (again, if armed already) for when_us; -ENOMEM if the heap cannot
 * grow (t is then not armed). */
int timer_start(struct dsmd *d, struct timer *t, uint64_t when_us,
		void (*fn)(struct dsmd *, struct timer *));
void timer_stop(struct dsmd *d, struct timer *t);
/* Run every timer that is due by the clock.  The loop calls it when its
 * timerfd fires; unit tests call it after moving their fake clock. */
void timers_run(struct dsmd *d);

static inline uint64_t dsmd_now_us(const struct dsmd *d);
static inline uint64_t dsmd_now_ms(const struct dsmd *d);

/* ---------------------------------------------------------------------- */
/* Nodes                                                                  */

struct member {
	enum wire_member_state state;
	uint64_t last_heard_ms;
	bool heard_any;         /* whether anything was ever heard */
};

/* Whether node is a peer that is up; or that, or this node itself. */
bool node_alive(const struct dsmd *d, int node);
bool node_usable(const struct dsmd *d, int node);
/* Every node of the cluster, a bit each. */
uint64_t node_all(const struct dsmd *d);

/* Send to a node, or to this node through the self queue, which the loop
 * drains before it blocks (node_run_self): a module talks to itself as to
 * any node.  Coherence messages are counted.  A failed send to a peer is
 * logged and returned; the transport then reports the peer down, so
 * callers that do not look at the result still learn of it. */
int node_send(struct dsmd *d, int node, unsigned type, uint64_t req_id,
	      const void *body, size_t len);
/* Hand the self queue's messages to their handlers; whether any was. */
bool node_run_self(struct dsmd *d);
/* Hand a node message to the module that handles its type. */
void node_dispatch(struct dsmd *d, int from, const struct wire_msg *m);

/* A node message kept for later: a copy, on a list of its keeper's. */
struct kept {
	struct list link;
	struct timer t;         /* node_defer's */
	int from;
	uint8_t type;
	uint64_t req_id;
	uint32_t len;
	unsigned char body[];
};

/* A copy of m from `from`, on no list; NULL when out of memory (logged,
 * the message is dropped). */
struct kept *node_keep(int from, const struct wire_msg *m);
/* Hand k to its handler as if it had just arrived, then free it. */
void node_replay(struct dsmd *d, struct kept *k);
/* The deferred queue: m is handed to its handler again at when_us.
 * Counted in st.held_back while it waits. */
int node_defer(struct dsmd *d, int from, const struct wire_msg *m,
	       uint64_t when_us);

/* ---------------------------------------------------------------------- */
/* Clients and attached processes                                         */

struct lclient;

/* A connection on the Unix socket. */
/* Bytes of replies a client may have waiting in dsmd (its socket full),
 * by default (--client-queue-kb): over this the client is cut off and its
 * process gets -EIO.  Two thousand lock events take under 200 KiB. */
#define CLIENT_OUT_MAX (4u << 20)
/* Connections served at once, by default (--max-clients): each costs a
 * descriptor and a little memory; a node runs tens of processes. */
#define DSMD_MAX_CLIENTS 1024
/* Regions live at once, by default (--max-regions): node 0 finds a
 * region by a walk of them all, and each costs about 100 bytes. */
#define DSMD_MAX_REGIONS 65536
/* Locks per process, by default (--max-locks): an owner's lock costs
 * about 300 bytes here and 40 at its master, so a process at the cap
 * holds about 20 MiB of dsmd; programs that take a lock per object of a
 * large table stay far below it. */
#define DSMD_MAX_LOCKS 65536
/* Locks on one resource, by default (--max-lock-queue): one per rank of
 * the largest jobs, several times over. */
#define DSMD_MAX_LOCK_QUEUE 65536

struct client {
	struct watch w;
	struct dsmd *d;         /* for EPOLLOUT; NULL: unwatched (tests) */
	struct list link;       /* d->clients */
	struct list out;        /* struct out_msg: replies not yet sent */
	size_t out_bytes, out_max;
	bool out_broken;        /* queue overflowed: being cut off */
	bool hello;
	uint32_t kind;          /* WIRE_IPC_KIND_*, from its hello */
	struct {                /* the peer's (SO_PEERCRED at accept) */
		int32_t pid;
		uint32_t uid, gid;
	} cred;
	struct app *app;        /* its attached process (kind APP) */
	struct lclient *lk;     /* the lock module's (kind LOCK) */
};

/* Write a reply to the client, in order after any that wait: 0 (sent or
 * queued), or a negative errno (-ENOBUFS: the queue overflowed, and the
 * client is cut off).  client_reply_fd passes a descriptor with it. */
int client_reply(struct client *c, unsigned type, uint64_t req_id,
		 const void *body, size_t len);
int client_reply_fd(struct client *c, unsigned type, uint64_t req_id,
		    const void *body, size_t len, int pass_fd);
/* Send what waits, as far as the socket takes it (on EPOLLOUT). */
void client_flush(struct client *c);
/* A client made outside client.c (tests): its queue set up. */
void client_init(struct client *c, struct dsmd *d);
/* A WIRE_IPC_RESULT with status. */
void client_result(struct client *c, uint64_t req_id, int status);
/* Close the client (its modules hear of it first). */
void client_close(struct dsmd *d, struct client *c);
/* Count a connection refused at accept (ipc_refused): whether to log it,
 * true for the first 16 and then at each power of two, so that a hostile
 * local user cannot flood the log. */
bool client_count_refusal(struct dsmd *d);
/* A client that broke the protocol: counted, logged, closed. */
void client_refuse(struct dsmd *d, struct client *c, const char *why);

/* Named regions one process may have open at once (dsm_open without
 * dsm_close), by default: each is a reference node 0 holds for it. */
#define DSMD_MAX_NAMED 64

/* A process attached to this node (IPC_ATTACH on a client of kind APP).
 * Referenced by its client and by whatever waits on its behalf (a queued
 * fault, a lookup answered to it): app_get/app_put. */
struct app {
	struct list link;       /* d->apps */
	struct client *c;       /* NULL once the process is gone */
	unsigned refs;
	uint32_t rank, size, local_size;
	uint32_t pid;           /* the kernel's (SO_PEERCRED), for messages */
	int pidfd;              /* to signal it: the process, not its pid */
	uint64_t job;
	/* The page module's (page/fault.c): its userfaultfd. */
	struct watch w;
	int uffd;               /* -1 until passed, and once gone */
	/* The collectives' (coll/coll.c, coll/region.c). */
	uint64_t coll_seq;      /* collectives this rank entered */
	uint64_t coll_req;      /* req_id of the request it waits on, 0: none */
	uint64_t coll_seq_tag;  /* its region request's tag at node 0 */
	/* Named regions it has open (their addresses, once per dsm_open),
	 * closed for it when it goes. */
	uint64_t *named;
	unsigned nnamed, named_cap;
	bool region_open;       /* its request in flight: an open, or */
	uint64_t region_addr;   /* the close of this address */
};

static inline void app_get(struct app *a)
{
	a->refs++;
}

void app_put(struct app *a);
/* The process detached (died: without IPC_DETACH): every module's app_gone,
 * then the client's reference goes. */
void app_detach(struct dsmd *d, struct app *a, bool died);
/* Whether a process of job `id` with `key` may be served here: 0, or
 * -EBUSY (this node serves another job), -EACCES (another key).  The
 * first to ask binds an unbound node to its job. */
int job_admit(struct dsmd *d, uint64_t id, const char *key);
/* Whether job `id` is this node's (binding an unbound node to it): a
 * peer's collective of another job is refused. */
bool job_is(struct dsmd *d, uint64_t id);
/* WIRE_IPC_REPLY to the process, if it is still there. */
int app_reply(struct app *a, uint64_t req_id, int status, uint64_t v1,
	      uint64_t v2);

/* ---------------------------------------------------------------------- */
/* Modules                                                                */

/* A node message type a module handles.  `page`: the body starts with a
 * page number, which the core checks against the arena first. */
struct dsmd_msg {
	uint8_t type;
	bool page;
	void (*fn)(struct dsmd *d, int from, const struct wire_msg *m);
};

/* A client request type a module handles: from which client kinds (bits of
 * IPC_FROM), and whether only from an attached process.  *fd is a
 * descriptor that came with it, or -1; a handler that keeps it sets *fd to
 * -1. */
#define IPC_FROM(kind) (1u << (kind))
struct dsmd_ipc {
	uint8_t type;
	uint8_t from;
	bool attached;
	void (*fn)(struct dsmd *d, struct client *c, const struct wire_msg *m,
		   int *fd);
};

/* One protocol.  Every hook may be NULL.  setup runs in table order,
 * teardown in reverse (also after a failed setup, for the modules set up
 * so far, the failed one included: each teardown copes with a half-made
 * state); peer_down, app_gone, client_gone and tick run in table order,
 * for the modules that are set up. */
struct dsmd_module {
	const char *name;
	int (*setup)(struct dsmd *d);
	void (*teardown)(struct dsmd *d);
	/* A peer's connection is up (told once per node, before any of its
	 * messages is handled). */
	void (*peer_up)(struct dsmd *d, int node);
	/* A node died (told once per node). */
	void (*peer_down)(struct dsmd *d, int node);
	/* A process detached (died: without IPC_DETACH), before the core
	 * drops its reference. */
	void (*app_gone)(struct dsmd *d, struct app *a, bool died);
	/* A client's connection is closing. */
	void (*client_gone)(struct dsmd *d, struct client *c);
	/* Every tick of the core's timer (the heartbeat period or faster). */
	void (*tick)(struct dsmd *d);
	/* RDMA events: those whose immediate (WRITE_IMM) or cookie (READ and
	 * WRITE completions) carries the tag bit go to the module with
	 * rdma_tagged, the others to the one without. */
	void (*rdma)(struct dsmd *d, const struct xport_event *ev);
	bool rdma_tagged;
	const struct dsmd_msg *msgs;   /* ends with type 0 */
	const struct dsmd_ipc *ipcs;   /* ends with type 0 */
};

#define DSMD_RDMA_IMM_TAG 0x80000000u
#define DSMD_RDMA_COOKIE_TAG (1ull << 63)

/* The modules (modules.c), in the order set up. */
extern const struct dsmd_module *const dsmd_modules[];
extern const size_t dsmd_nmodules;

/* Fill the dispatch tables and set every module up, in order; on failure
 * tear down those set up, and return the error (logged). */
int dsmd_modules_setup(struct dsmd *d);
void dsmd_modules_teardown(struct dsmd *d);
/* The module that handles a node message type or a request type, or NULL
 * (for the unit test of the tables). */
const struct dsmd_module *dsmd_msg_owner(const struct dsmd *d, unsigned type);
const struct dsmd_module *dsmd_ipc_owner(const struct dsmd *d, unsigned type);

/* ---------------------------------------------------------------------- */
/* The daemon                                                             */

struct check_state;
struct home_state;
struct page_state;
struct coll_state;
struct lockmgr;

struct ucred;

/* Who may attach (core/access.c). */
#define DSMD_MAX_ALLOW 16
struct dsmd_access {
	uint32_t uids[DSMD_MAX_ALLOW], gids[DSMD_MAX_ALLOW];
	unsigned nuids, ngids;
	int lock_fd;            /* flock on SOCKET.lock; -1 until taken */
};

/* Prepare the socket's directory, take its lock, and listen with the modes
 * the allowed clients need: the listening fd, or a negative errno (logged;
 * -EADDRINUSE when another dsmd serves the path). */
int access_listen(struct dsmd *d);
/* Whether the peer (its kernel credentials) may use dsmd; a refusal is
 * counted in d->ipc_refused and logged. */
bool access_allowed(struct dsmd *d, int fd, const struct ucred *cred);
/* Remove the socket and the lock, if they are this dsmd's. */
void access_close(struct dsmd *d);

struct dsmd {
	struct dsmd_config cfg;
	struct dsmd_access access;
	const struct clock *clock;
	struct xport *x;
	int epfd, listen_fd, timer_fd, signal_fd;
	struct watch xport_w, listen_w, timer_w, signal_w;
	bool stop;
	bool failed;            /* stop with a failure exit status */
	bool formed;            /* every peer connected once */
	uint64_t start_ms;
	uint64_t last_hb_ms;
	struct member members[WIRE_MAX_NODES];
	/* The arena, the same in every process and on every node. */
	struct {
		uint64_t base, size, npages;
	} arena;
	int memfd;              /* the node's memory (the page module's),
				   given to each process at attach */
	struct dsm_stats st;    /* every module's counters */
	uint64_t bad_msgs;      /* node messages no module takes */
	uint64_t ipc_refused;
	struct wire_refusals refused;   /* by rule (dsmctl status) */
	/* The one job this node serves (app.c): from --job, else the first
	 * process to attach (or, at node 0, the first node's ranks) binds
	 * it, for the life of the daemon. */
	struct {
		bool bound, key_bound;
		uint64_t id;
		uint32_t size;          /* ranks, from the first attach */
		char key[WIRE_JOB_KEY_MAX];
	} job;
	unsigned nclients;      /* on d->clients */
	int spare_fd;           /* given up to accept-and-close at EMFILE */
	bool proto_logged;
	unsigned net_waits;     /* faults waiting for the network: the loop
				   may poll then (--txn-poll-us) */
	uint32_t load;          /* sent with heartbeats; the home module
				   keeps it current */
	struct list clients;    /* struct client */
	struct list apps;       /* struct app */
	struct list self_q;     /* struct kept: sent to this node */
	struct list deferred;   /* struct kept: node_defer's, each timed */
	struct timer_heap timers;
	uint64_t timer_fd_us;   /* when the timerfd is set to fire, 0: off */
	struct timer tick;
	/* Dispatch, filled from the module table. */
	const struct dsmd_module *msg_mod[WIRE_TYPE_MAX];
	const struct dsmd_msg *msg_of[WIRE_TYPE_MAX];
	const struct dsmd_module *ipc_mod[WIRE_TYPE_MAX];
	const struct dsmd_ipc *ipc_of[WIRE_TYPE_MAX];
	const struct dsmd_module *rdma_mod[2]; /* [tagged] */
	size_t modules_up;      /* modules set up: teardown undoes those */
	/* The modules' own state. */
	struct check_state *check;
	struct home_state *home;
	struct page_state *page;
	struct coll_state *coll;
	struct lockmgr *lk;
};

static inline uint64_t dsmd_now_us(const struct dsmd *d)
{
	return clock_now_us(d->clock);
}

static inline uint64_t dsmd_now_ms(const struct dsmd *d)
{
	return dsmd_now_us(d) / 1000u;
}

/* Set d up as a node of cfg (d->cfg filled) on the given clock: the loop's
 * fds, lists, members, the arena's geometry.  No transport, no modules. */
int dsmd_init(struct dsmd *d, const struct clock *clock);
void dsmd_fini(struct dsmd *d);
/* The loop's timer and signal fds (dsmd proper; tests run without). */
int dsmd_loop_setup(struct dsmd *d);
/* Run until stopped; 0, or the error that stopped it. */
int dsmd_run(struct dsmd *d);

/* cluster.c: the transport's event callback (xport_config.cb). */
void cluster_on_event(void *arg, const struct xport_event *ev);
/* The transport is connecting: from now on peers join. */
void cluster_start(struct dsmd *d);
/* A live member `by` has declared `node` dead: so does this node.  A
 * death one member saw is every member's, so that a link cut between two
 * nodes splits the cluster the same way on every side of it instead of
 * leaving a node that sees both alive waiting on each for ever (each
 * waits for it to join a recovery it never starts). */
void cluster_reported_dead(struct dsmd *d, int node, int by);
/* A protocol step waited --dead-after-ms for `node`, alive (it heartbeats)
 * but silent on that step (`what`: "no RECOVERED", ...): it is declared
 * dead, and every wait on it ends as for a death.  The protocol's own
 * steps take a few round trips and hold times; a peer that takes as long
 * as the failure detector's own bound is broken, or hostile. */
void cluster_suspect(struct dsmd *d, int node, const char *what);
/* The same for every live node of a set. */
void cluster_suspect_set(struct dsmd *d, uint64_t set, const char *what);
/* A tick's deadline on a wait for several nodes: silent(d) gives the nodes
 * that owe it past --dead-after-ms.  They are declared dead one at a time,
 * asking silent(d) again after each: a death ends waits and starts
 * others. */
void cluster_suspect_each(struct dsmd *d, uint64_t (*silent)(struct dsmd *),
			  const char *what);
/* Heartbeats, silence, the join deadline (each tick). */
void cluster_tick(struct dsmd *d);
/* client.c: listen on cfg.socket. */
int client_listen(struct dsmd *d);
void client_close_all(struct dsmd *d);

#endif
