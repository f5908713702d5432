/* The transport between dsmd daemons: connections between N nodes, two-sided
 * messages with credit-based flow control, and one-sided RDMA READ and
 * WRITE-with-immediate between registered buffers.
 *
 * A replaceable part: struct xport_ops is implemented over verbs/librdmacm
 * (xport_rdma.c) and, for unit tests of protocol logic, in memory
 * (xport_mock.c).  Everything runs on the owner's thread: the owner polls
 * xport_fd() and calls xport_progress(), which delivers events through the
 * callback given at creation.  No call blocks on the network.
 */
#ifndef DSM_XPORT_H
#define DSM_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "siphash.h"
#include "wire.h"

struct xport;

/* Where a node's transport listens; learnt through the rendezvous. */
struct xport_addr {
	uint32_t ip;   /* IPv4, network order */
	uint16_t port; /* network order */
	uint16_t reserved;
} __attribute__((packed));

/* A registered buffer: RDMA READ/WRITE move bytes between these. */
struct xport_mr {
	void *addr;
	size_t len;
	uint32_t lkey, rkey;
	void *priv;
};

enum xport_event_type {
	XPORT_EV_CONNECTED,  /* peer's connection is up */
	XPORT_EV_MSG,        /* a message arrived (already decoded) */
	XPORT_EV_WRITE_IMM,  /* peer's RDMA WRITE with immediate landed */
	XPORT_EV_READ_DONE,  /* our RDMA READ finished (status) */
	XPORT_EV_WRITE_DONE, /* our RDMA WRITE finished (status) */
	XPORT_EV_PEER_DOWN,  /* connection lost or failed; reason says why */
};

struct xport_event {
	enum xport_event_type type;
	int peer;
	int status;           /* 0 or negative errno (DONE events) */
	struct wire_msg msg;  /* MSG: valid only during the callback */
	uint32_t imm;         /* WRITE_IMM */
	uint32_t len;         /* WRITE_IMM: bytes written */
	uint64_t cookie;      /* READ_DONE / WRITE_DONE: caller's cookie */
	const char *reason;   /* PEER_DOWN */
};

typedef void (*xport_event_fn)(void *arg, const struct xport_event *ev);

struct xport_config {
	int self;             /* this node, 0..nnodes-1 */
	int nnodes;
	const char *device;   /* RDMA device name; NULL: the one bound to addr,
				 or the first device */
	const char *addr;     /* IPv4 address to listen on; NULL: derived from
				 the device's GID table (ofi: 127.0.0.1) */
	const char *provider; /* libfabric provider (xport_ofi); NULL:
				 tcp;ofi_rxm */
	unsigned recv_depth;  /* receive credits per peer, 4..1024 */
	unsigned poll_us;     /* busy-poll the CQ this long before blocking */
	unsigned connect_timeout_ms;
	xport_event_fn cb;
	void *cb_arg;
	void *impl_arg;       /* transport-specific (the mock's fabric) */
	struct sip_key key;   /* the cluster's (all zero: none): verbs signs
				 its connection requests with it */
};

/* How often the transport woke and re-armed: counts per operation that do
 * not depend on machine noise. */
struct xport_stats {
	uint64_t progress_calls; /* xport_progress() calls */
	uint64_t cq_arms;        /* completion notifications requested */
	uint64_t cq_events;      /* completion channel events taken */
	uint64_t lazy_writes;    /* RDMA WRITEs posted unsignalled: their end
				    came with a later completion */
};

struct xport_ops {
	const char *name;
	int (*create)(const struct xport_config *cfg, struct xport **out);
	void (*destroy)(struct xport *x);
	int (*fd)(struct xport *x);
	int (*progress)(struct xport *x);
	int (*arm)(struct xport *x);
	int (*stats)(struct xport *x, struct xport_stats *out);
	int (*local_addr)(struct xport *x, struct xport_addr *out);
	const char *(*device)(struct xport *x);
	int (*numa_node)(struct xport *x);
	int (*connect_all)(struct xport *x, const struct xport_addr *addrs);
	int (*send)(struct xport *x, int peer, unsigned type, uint64_t req_id,
		    const void *body, size_t body_len);
	int (*send_raw)(struct xport *x, int peer, const void *msg,
			size_t len);
	int (*reg_mr)(struct xport *x, void *addr, size_t len,
		      unsigned access, struct xport_mr *out);
	int (*dereg_mr)(struct xport *x, struct xport_mr *mr);
	int (*read)(struct xport *x, int peer, struct xport_mr *mr, size_t off,
		    uint64_t raddr, uint32_t rkey, uint32_t len,
		    uint64_t cookie);
	int (*write_imm)(struct xport *x, int peer, struct xport_mr *mr,
			 size_t off, uint64_t raddr, uint32_t rkey,
			 uint32_t len, uint32_t imm, uint64_t cookie);
	int (*close_peer)(struct xport *x, int peer);
	int (*counters)(struct xport *x, int peer, struct wire_counters *out);
};

/* Every transport starts with this base. */
struct xport {
	const struct xport_ops *ops;
};

extern const struct xport_ops xport_rdma_ops;
/* Whether the verbs transport can run here: an RDMA device (the one named,
 * or any) with an IPv4 address in its GID table. */
bool xport_rdma_usable(const char *device);
/* Over a libfabric reliable-datagram endpoint (xport_ofi.c): runs without
 * RDMA hardware, over tcp by default. */
extern const struct xport_ops xport_ofi_ops;

static inline int xport_create(const struct xport_ops *ops,
			       const struct xport_config *cfg,
			       struct xport **out)
{
	return ops->create(cfg, out);
}
static inline void xport_destroy(struct xport *x) { x->ops->destroy(x); }
static inline int xport_fd(struct xport *x) { return x->ops->fd(x); }
/* Handle whatever is ready, without blocking; returns the events and
 * completions handled, or a negative errno.  Spinning on it costs one
 * system call per call that finds nothing. */
static inline int xport_progress(struct xport *x) { return x->ops->progress(x); }
/* Call before blocking on xport_fd(): makes the fd wake up for new
 * completions and handles those that arrived meanwhile.  A positive return
 * means work was done: progress again instead of blocking.  The loop is
 *	for (;;) { if (xport_arm(x) == 0) poll(xport_fd(x)); xport_progress(x); }
 */
static inline int xport_arm(struct xport *x) { return x->ops->arm(x); }
static inline int xport_stats(struct xport *x, struct xport_stats *out)
{
	return x->ops->stats(x, out);
}
static inline int xport_local_addr(struct xport *x, struct xport_addr *out)
{
	return x->ops->local_addr(x, out);
}
/* The transport's name: "verbs", "ofi", "mock" (in memory, for tests) or
 * "none" (the same, for a lone node, which needs no fabric: daemon/main.c). */
static inline const char *xport_name(struct xport *x)
{
	return x->ops->name;
}
static inline const char *xport_device(struct xport *x)
{
	return x->ops->device(x);
}
/* The RDMA device's NUMA node, where buffers are placed; -1 if unknown. */
static inline int xport_numa_node(struct xport *x)
{
	return x->ops->numa_node(x);
}
/* Start connecting to every other node: node j connects to node i < j. */
static inline int xport_connect_all(struct xport *x,
				    const struct xport_addr *addrs)
{
	return x->ops->connect_all(x, addrs);
}
/* Queue a message; it leaves when the peer has a receive credit.
 * -ENOTCONN if the peer is not connected, -EMSGSIZE if too long. */
static inline int xport_send(struct xport *x, int peer, unsigned type,
			     uint64_t req_id, const void *body, size_t len)
{
	return x->ops->send(x, peer, type, req_id, body, len);
}
/* Test hook: send `len` bytes as they are (only the sequence number is
 * filled in), to prove that a peer refuses malformed input. */
static inline int xport_send_raw(struct xport *x, int peer, const void *msg,
				 size_t len)
{
	return x->ops->send_raw(x, peer, msg, len);
}
/* Operations (messages, READs, WRITEs) that may wait per peer for credits,
 * slots or the provider; beyond, a call fails with -ENOBUFS, so a peer that
 * stops answering cannot make a node grow without bound.  A dsmd keeps far
 * fewer in flight (a check keeps a window of 256). */
#define XPORT_QUEUE_MAX 8192u

/* What peers may do to a registered buffer (this node may always read and
 * write it): least privilege, so ask only for what the buffer is for. */
enum xport_access {
	XPORT_MR_LOCAL = 0,             /* a source or destination of ours */
	XPORT_MR_REMOTE_READ = 1u << 0, /* peers' READs read it */
	XPORT_MR_REMOTE_WRITE = 1u << 1, /* peers' WRITEs write it */
};
static inline int xport_reg_mr(struct xport *x, void *addr, size_t len,
			       unsigned access, struct xport_mr *out)
{
	return x->ops->reg_mr(x, addr, len, access, out);
}
static inline int xport_dereg_mr(struct xport *x, struct xport_mr *mr)
{
	return x->ops->dereg_mr(x, mr);
}
static inline int xport_read(struct xport *x, int peer, struct xport_mr *mr,
			     size_t off, uint64_t raddr, uint32_t rkey,
			     uint32_t len, uint64_t cookie)
{
	return x->ops->read(x, peer, mr, off, raddr, rkey, len, cookie);
}
static inline int xport_write_imm(struct xport *x, int peer,
				  struct xport_mr *mr, size_t off,
				  uint64_t raddr, uint32_t rkey, uint32_t len,
				  uint32_t imm, uint64_t cookie)
{
	return x->ops->write_imm(x, peer, mr, off, raddr, rkey, len, imm,
				 cookie);
}
static inline int xport_close_peer(struct xport *x, int peer)
{
	return x->ops->close_peer(x, peer);
}
static inline int xport_counters(struct xport *x, int peer,
				 struct wire_counters *out)
{
	return x->ops->counters(x, peer, out);
}

#endif
