/* dsmd: one per node.  A single-threaded event loop owns everything below;
 * no field is touched from another thread, so there are no locks.
 */
#ifndef DSMD_H
#define DSMD_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"
#include "xport.h"
#include "lock.h"
#include "mem.h"

struct dsmd_config {
	int node, nnodes;
	const char *rendezvous; /* host:port of node 0's rendezvous */
	const char *device;     /* RDMA device, NULL: from addr or first */
	const char *addr;       /* IPv4 on the device, NULL: from its GIDs */
	const char *socket;     /* Unix socket for clients */
	unsigned heartbeat_ms;
	unsigned dead_after_ms;
	unsigned join_timeout_ms;
	unsigned recv_depth;
	unsigned poll_us;
	unsigned txn_poll_us;   /* poll, not sleep, while a fault waits */
	int ready_fd;           /* written once the mesh is up, -1: none */
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
};

struct member {
	enum wire_member_state state;
	uint64_t last_heard_ms;
	bool heard_any;         /* whether anything was ever heard */
};

struct client;
struct check_out;
struct check_in;

struct dsmd {
	struct dsmd_config cfg;
	struct xport *x;
	int epfd, listen_fd, timer_fd, signal_fd;
	bool stop;
	bool failed;           /* stop with a failure exit status */
	bool formed;            /* every peer connected once */
	uint64_t start_ms;
	uint64_t last_hb_ms;
	struct member members[WIRE_MAX_NODES];
	uint64_t bad_msgs;      /* node messages refused by dsmd itself */
	uint64_t ipc_refused;
	bool proto_logged;
	struct client *clients;
	/* Self-check state (check.c). */
	struct check_out *out;  /* [nnodes], NULL when no check runs */
	struct check_in *in;    /* [nnodes] */
	struct client *check_client;
	uint64_t check_deadline_ms;
	uint32_t check_session;
	uint64_t check_req_id;
	struct wire_ipc_check check_req;
	/* Shared memory (mem.c, dir.c, coll.c). */
	struct mem mem;
	struct lockmgr *lk;     /* the lock manager (lock.c) */
};

uint64_t dsmd_now_ms(void);

/* cluster.c: membership, heartbeats, transport events. */
void cluster_on_event(void *arg, const struct xport_event *ev);
void cluster_start(struct dsmd *d);
void cluster_tick(struct dsmd *d);
bool cluster_peer_alive(const struct dsmd *d, int node);
/* Hand a node message (from a peer, or from ourselves) to its handler. */
void cluster_dispatch(struct dsmd *d, int from, const struct wire_msg *m);

/* ctl.c: the Unix socket. */
int ctl_setup(struct dsmd *d);
void ctl_on_listen(struct dsmd *d);
void ctl_on_client(struct dsmd *d, struct client *c);
void ctl_close_all(struct dsmd *d);
int ctl_reply(struct client *c, unsigned type, uint64_t req_id,
	      const void *body, size_t len);
void ctl_client_gone(struct dsmd *d, struct client *c);

/* inject.c: test hook sending malformed messages (IPC_INJECT). */
int inject_bad_msg(struct dsmd *d, const struct wire_ipc_inject *req);

/* check.c: the self-check behind `dsmctl check`. */
int check_start(struct dsmd *d, struct client *c, uint64_t req_id,
		const struct wire_ipc_check *req);
void check_on_msg(struct dsmd *d, int peer, const struct wire_msg *m);
void check_on_rdma(struct dsmd *d, const struct xport_event *ev);
void check_on_peer_down(struct dsmd *d, int peer);
void check_tick(struct dsmd *d);
void check_client_gone(struct dsmd *d, struct client *c);
void check_free(struct dsmd *d);

#endif
