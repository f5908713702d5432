/* The transport over verbs: librdmacm sets up one RC queue pair per pair of
 * nodes, libibverbs moves the data.
 *
 * Threading: everything here runs on the owner's thread (dsmd's event loop,
 * or a benchmark's main thread).  There are no locks.
 *
 * Resources: one protection domain, one completion queue and one
 * completion channel shared by every queue pair.  Per peer: a QP, a block of
 * receive buffers (depth + CREDIT_SPARE) and a block of send buffers, both
 * registered once.  A peer's buffers live until xport_destroy(), because
 * completions flushed from a dead QP still name them in wr_id.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <numa.h>

#include "credit.h"
#include "clock.h"
#include "log.h"
#include "xport.h"

#define XR_READS_MAX     16u /* RDMA READs outstanding per peer */
#define XR_WRITES_MAX    16u /* RDMA WRITEs outstanding per peer */
#define XR_SEND_EXTRA    (CREDIT_SPARE + 2u)
/* One send in XR_SIGNAL_EVERY asks for a completion; it frees the slots of
 * the unsignalled sends before it too (a QP completes its sends in order).
 * Fewer completions, fewer wake-ups of a blocked owner. */
#define XR_SIGNAL_EVERY  8u
/* RDMA WRITEs posted without asking for a completion, at most, over all
 * peers (see xr_post_rdma).  It bounds the caller's buffers (and ours)
 * whose release waits for a later completion on the same queue pair. */
#define XR_LAZY_MAX      16u
#define XR_CONNECT_TRIES 8
#define XR_CONN_MAGIC    0x44534d43u /* "DSMC" */

/* Private data of a connection request and of its acceptance. */
/* A connection request's (and answer's) private data.  tag: SipHash under
 * the cluster key of the fields before it and the node it goes to, so a
 * host without the key cannot pass for a member (its address is checked
 * against the rendezvous table too). */
struct xr_conn_data {
	uint32_t magic;
	uint16_t version;
	uint16_t node;
	uint16_t nnodes;
	uint16_t depth;
	uint64_t tag;
} __attribute__((packed));

static uint64_t xr_conn_tag(const struct xport_config *cfg,
			    const struct xr_conn_data *d, int to)
{
	unsigned char buf[offsetof(struct xr_conn_data, tag) + 2];
	uint16_t t = (uint16_t)to;

	memcpy(buf, d, offsetof(struct xr_conn_data, tag));
	memcpy(buf + offsetof(struct xr_conn_data, tag), &t, sizeof(t));
	return siphash24(&cfg->key, buf, sizeof(buf));
}

enum xr_wr_kind { XR_WR_RECV, XR_WR_SEND, XR_WR_READ, XR_WR_WRITE };

/* What a work request's wr_id points at. */
struct xr_wr {
	enum xr_wr_kind kind;
	struct xr_peer *peer;
	unsigned index;   /* buffer slot (RECV, SEND) */
	uint64_t cookie;  /* READ, WRITE */
	uint64_t seq;     /* SEND, READ, WRITE: its place in the send queue */
	bool credit_only; /* SEND of a credit-only message */
	bool posted;      /* READ, WRITE: posted, its end not yet reported */
	bool lazy;        /* WRITE posted unsignalled */
};

enum xr_op_kind { XR_OP_SEND, XR_OP_READ, XR_OP_WRITE };

/* An operation waiting for a credit, a send slot or a read slot.  Kept in
 * per-peer FIFO order so that messages and writes leave in call order. */
struct xr_op {
	struct xr_op *next;
	enum xr_op_kind kind;
	struct xport_mr *mr;
	size_t off;
	uint64_t raddr;
	uint32_t rkey, len, imm;
	uint64_t cookie;
	size_t msg_len;
	bool stalled;        /* counted once in credit_stalls */
	bool raw;            /* test hook: leave src and credits alone */
	unsigned char msg[]; /* SEND: header + body */
};

enum xr_peer_state {
	XR_PEER_IDLE,       /* no connection yet */
	XR_PEER_CONNECTING,
	XR_PEER_UP,
	XR_PEER_DOWN,
};

struct xr_peer {
	struct xport_rdma *x;
	int node;
	enum xr_peer_state state;
	struct rdma_cm_id *id;
	struct xport_addr addr;
	int tries;
	struct credit credit;
	unsigned char *rbuf, *sbuf; /* receive / send slots, WIRE_MSG_MAX each */
	struct ibv_mr *rmr, *smr;
	struct xr_wr *rwr, *swr;
	unsigned nrecv, nsend;
	unsigned *sfree; /* stack of free send slots */
	unsigned nsfree;
	unsigned *sring; /* slots of posted sends, in post order */
	unsigned shead, stail; /* ring indices, modulo nsend + 1 */
	unsigned unsignaled;   /* sends posted since the last signalled one */
	unsigned reads, writes; /* outstanding */
	uint64_t sq_seq;        /* send-queue work requests ever posted */
	unsigned lazy[XR_WRITES_MAX]; /* unsignalled WRITEs (rdwr indices),
					 in post order */
	unsigned lhead, nlazy;  /* ring of lazy[] */
	struct xr_wr *rdwr;     /* pool for READ/WRITE work requests */
	unsigned *rdfree;
	unsigned nrdfree;
	struct xr_op *head, *tail;
	unsigned queued;        /* ops on head..tail, at most XPORT_QUEUE_MAX */
	bool full_logged;
	uint32_t send_seq, recv_seq;
	bool down_pending;
	char down_reason[96];
	struct wire_counters c;
	bool bad_logged[WIRE_NERRORS];
	bool credit_logged, seq_logged;
};

struct xport_rdma {
	struct xport base;
	struct xport_config cfg;
	int epfd;
	int evfd; /* signalled when deferred events are pending */
	struct rdma_event_channel *cm_ch;
	struct rdma_cm_id *listen_id;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *comp_ch;
	struct ibv_cq *cq;
	unsigned cq_size;
	struct xport_addr self_addr;
	char devname[64];
	int numa_node; /* the device's NUMA node, -1 if unknown */
	bool armed;    /* CQ armed and its event not yet drained */
	unsigned nlazy; /* unsignalled WRITEs over all peers */
	uint64_t progress_calls, cq_arms, cq_events, lazy_writes;
	struct xr_peer *peers;
};

static inline struct xport_rdma *to_xr(struct xport *x)
{
	return (struct xport_rdma *)x;
}

static void xr_emit(struct xport_rdma *x, struct xport_event *ev)
{
	x->cfg.cb(x->cfg.cb_arg, ev);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Peer failure                                                           */

static void xr_fail_ops(struct xr_peer *p);

/* Mark a peer down once and let the QP flush.  The owner hears of it from
 * xr_progress(), never from inside one of its own calls (xport_send() may
 * find the QP broken): owners need not expect re-entry.  The eventfd makes
 * the owner's poll wake up for it. */
static void xr_peer_down(struct xr_peer *p, const char *reason)
{
	uint64_t one = 1;

	if (p->state == XR_PEER_DOWN)
		return;
	log_warn("transport: peer %d down: %s", p->node, reason);
	p->state = XR_PEER_DOWN;
	snprintf(p->down_reason, sizeof(p->down_reason), "%s", reason);
	p->down_pending = true;
	if (p->id && p->id->qp)
		rdma_disconnect(p->id);
	if (write(p->x->evfd, &one, sizeof(one)) < 0)
		log_err("transport: eventfd write: %s", strerror(errno));
}

/* Deliver deferred PEER_DOWN events and fail the dead peers' queued ops. */
static int xr_progress_down(struct xport_rdma *x)
{
	uint64_t v;
	int i, n = 0;

	if (read(x->evfd, &v, sizeof(v)) < 0)
		return 0;
	for (i = 0; i < x->cfg.nnodes; i++) {
		struct xr_peer *p = &x->peers[i];
		struct xport_event ev = {
			.type = XPORT_EV_PEER_DOWN, .peer = i,
			.reason = p->down_reason,
		};

		if (!p->down_pending)
			continue;
		p->down_pending = false;
		xr_fail_ops(p);
		xr_emit(x, &ev);
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Buffers                                                                */

/* Page-aligned buffer on the device's NUMA node when it is known. */
static void *xr_alloc(struct xport_rdma *x, size_t len)
{
	if (x->numa_node >= 0)
		return numa_alloc_onnode(len, x->numa_node);
	return aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
}

static void xr_free(struct xport_rdma *x, void *p, size_t len)
{
	if (!p)
		return;
	if (x->numa_node >= 0)
		numa_free(p, len);
	else
		free(p);
}

/* The NUMA node of an RDMA device from sysfs; -1 for a virtual device
 * (rxe), a single-node machine, or no libnuma support. */
static int xr_numa_node(const char *dev)
{
	char path[256];
	FILE *f;
	int node = -1;

	if (numa_available() < 0 || numa_max_node() == 0)
		return -1;
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/device/numa_node",
		 dev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &node) != 1)
		node = -1;
	fclose(f);
	return node;
}

static int xr_peer_alloc(struct xport_rdma *x, struct xr_peer *p)
{
	unsigned depth = x->cfg.recv_depth, i;

	p->nrecv = depth + CREDIT_SPARE;
	p->nsend = depth + XR_SEND_EXTRA;
	p->rbuf = xr_alloc(x, (size_t)p->nrecv * WIRE_MSG_MAX);
	p->sbuf = xr_alloc(x, (size_t)p->nsend * WIRE_MSG_MAX);
	p->rwr = calloc(p->nrecv, sizeof(*p->rwr));
	p->swr = calloc(p->nsend, sizeof(*p->swr));
	p->sfree = calloc(p->nsend, sizeof(*p->sfree));
	/* One spare entry: a full ring must not look empty. */
	p->sring = calloc(p->nsend + 1, sizeof(*p->sring));
	p->rdwr = calloc(XR_READS_MAX + XR_WRITES_MAX, sizeof(*p->rdwr));
	p->rdfree = calloc(XR_READS_MAX + XR_WRITES_MAX, sizeof(*p->rdfree));
	if (!p->rbuf || !p->sbuf || !p->rwr || !p->swr || !p->sfree ||
	    !p->sring ||
	    !p->rdwr || !p->rdfree)
		return -ENOMEM;
	p->rmr = ibv_reg_mr(x->pd, p->rbuf, (size_t)p->nrecv * WIRE_MSG_MAX,
			    IBV_ACCESS_LOCAL_WRITE);
	if (!p->rmr)
		return -errno;
	p->smr = ibv_reg_mr(x->pd, p->sbuf, (size_t)p->nsend * WIRE_MSG_MAX, 0);
	if (!p->smr)
		return -errno;
	for (i = 0; i < p->nrecv; i++)
		p->rwr[i] = (struct xr_wr){.kind = XR_WR_RECV, .peer = p,
					   .index = i};
	for (i = 0; i < p->nsend; i++) {
		p->swr[i] = (struct xr_wr){.kind = XR_WR_SEND, .peer = p,
					   .index = i};
		p->sfree[i] = i;
	}
	p->nsfree = p->nsend;
	for (i = 0; i < XR_READS_MAX + XR_WRITES_MAX; i++) {
		p->rdwr[i].peer = p;
		p->rdwr[i].index = i;
		p->rdfree[i] = i;
	}
	p->nrdfree = XR_READS_MAX + XR_WRITES_MAX;
	credit_init(&p->credit, depth);
	return 0;
}

static void xr_peer_free(struct xr_peer *p)
{
	struct xr_op *op;

	while ((op = p->head)) {
		p->head = op->next;
		free(op);
	}
	if (p->id) {
		if (p->id->qp)
			rdma_destroy_qp(p->id);
		rdma_destroy_id(p->id);
		p->id = NULL;
	}
	if (p->rmr)
		ibv_dereg_mr(p->rmr);
	if (p->smr)
		ibv_dereg_mr(p->smr);
	xr_free(p->x, p->rbuf, (size_t)p->nrecv * WIRE_MSG_MAX);
	xr_free(p->x, p->sbuf, (size_t)p->nsend * WIRE_MSG_MAX);
	free(p->rwr);
	free(p->swr);
	free(p->sfree);
	free(p->sring);
	free(p->rdwr);
	free(p->rdfree);
}

static int xr_post_recv(struct xr_peer *p, unsigned i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(p->rbuf + (size_t)i * WIRE_MSG_MAX),
		.length = WIRE_MSG_MAX,
		.lkey = p->rmr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = (uintptr_t)&p->rwr[i], .sg_list = &sge, .num_sge = 1,
	}, *bad;

	return -ibv_post_recv(p->id->qp, &wr, &bad);
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                */

static void xr_try_send(struct xr_peer *p);

static int xr_post_send_slot(struct xr_peer *p, const void *msg, size_t len,
			     bool credit_only, bool raw)
{
	unsigned slot = p->sfree[--p->nsfree];
	unsigned char *buf = p->sbuf + (size_t)slot * WIRE_MSG_MAX;
	struct wire_hdr h;
	struct ibv_sge sge = {
		.addr = (uintptr_t)buf, .length = (uint32_t)len,
		.lkey = p->smr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = (uintptr_t)&p->swr[slot], .sg_list = &sge,
		.num_sge = 1, .opcode = IBV_WR_SEND,
	}, *bad;
	/* Signal every XR_SIGNAL_EVERY-th send, and always when slots run
	 * low, so the slots held by unsignalled sends come back before they
	 * are needed. */
	bool signal = p->unsignaled + 1 >= XR_SIGNAL_EVERY ||
		      p->nsfree <= CREDIT_SPARE + 1;
	int ret;

	if (signal)
		wr.send_flags = IBV_SEND_SIGNALED;
	memcpy(buf, msg, len);
	memset(&h, 0, sizeof(h));
	if (len >= sizeof(h))
		memcpy(&h, buf, sizeof(h));
	if (!raw) {
		h.src = (uint16_t)p->x->cfg.self;
		h.credits = (uint16_t)credit_piggyback(&p->credit);
	}
	h.seq = p->send_seq;
	if (len >= sizeof(h))
		memcpy(buf, &h, sizeof(h));
	p->swr[slot].credit_only = credit_only;
	p->swr[slot].seq = p->sq_seq;
	ret = -ibv_post_send(p->id->qp, &wr, &bad);
	if (ret) {
		p->sfree[p->nsfree++] = slot;
		if (!raw)
			p->credit.owed += h.credits;
		return ret;
	}
	p->sq_seq++;
	p->sring[p->stail] = slot;
	p->stail = (p->stail + 1) % (p->nsend + 1);
	p->unsignaled = signal ? 0 : p->unsignaled + 1;
	p->send_seq++;
	p->c.msgs_sent++;
	p->c.bytes_sent += len;
	return 0;
}

/* Whether a WRITE may go unsignalled.  Its end is then known only when a
 * later signalled work request of the queue pair completes (a QP completes
 * them in order, xr_lazy_done), which saves the owner a completion and the
 * wake-up that comes with it: a holder that sent a page sleeps on.  The
 * caller's buffer stays in use until then, so they are bounded, and the
 * peer's last free WRITE asks for a completion, so a full queue of WRITEs
 * always ends. */
static bool xr_write_lazy(struct xr_peer *p)
{
	return p->x->nlazy < XR_LAZY_MAX && p->writes + 2 < XR_WRITES_MAX;
}

static int xr_post_rdma(struct xr_peer *p, struct xr_op *op)
{
	unsigned i = p->rdfree[--p->nrdfree];
	struct xr_wr *w = &p->rdwr[i];
	struct ibv_sge sge = {
		.addr = (uintptr_t)op->mr->addr + op->off, .length = op->len,
		.lkey = op->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = (uintptr_t)w, .sg_list = &sge, .num_sge = 1,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = {.remote_addr = op->raddr, .rkey = op->rkey},
	}, *bad;
	int ret;

	w->cookie = op->cookie;
	w->seq = p->sq_seq;
	w->lazy = false;
	if (op->kind == XR_OP_READ) {
		w->kind = XR_WR_READ;
		wr.opcode = IBV_WR_RDMA_READ;
	} else {
		w->kind = XR_WR_WRITE;
		wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = htonl(op->imm);
		w->lazy = xr_write_lazy(p);
		if (w->lazy)
			wr.send_flags = 0;
	}
	ret = -ibv_post_send(p->id->qp, &wr, &bad);
	if (ret) {
		p->rdfree[p->nrdfree++] = i;
		return ret;
	}
	p->sq_seq++;
	w->posted = true;
	if (w->lazy) {
		p->lazy[(p->lhead + p->nlazy++) % XR_WRITES_MAX] = i;
		p->x->nlazy++;
		p->x->lazy_writes++;
	}
	if (op->kind == XR_OP_READ) {
		p->reads++;
		p->c.rdma_reads++;
	} else {
		p->writes++;
		p->c.rdma_writes++;
	}
	p->c.rdma_bytes += op->len;
	return 0;
}

/* A post of an operation that had taken a credit (or not) failed: give the
 * credit back and take the peer down, with the reason. */
static void xr_post_failed(struct xr_peer *p, int err, bool had_credit)
{
	char why[64];

	if (had_credit)
		p->credit.avail++;
	snprintf(why, sizeof(why), "ibv_post_send: %s", strerror(-err));
	xr_peer_down(p, why);
}

/* Whether the op at the head of the queue can leave now; spends the credit
 * if it can. */
static bool xr_op_ready(struct xr_peer *p, struct xr_op *op)
{
	switch (op->kind) {
	case XR_OP_SEND:
		if (p->nsfree <= CREDIT_SPARE)
			return false;
		break;
	case XR_OP_READ:
		return p->reads < XR_READS_MAX && p->nrdfree > 0;
	case XR_OP_WRITE:
		if (p->writes >= XR_WRITES_MAX || p->nrdfree == 0)
			return false;
		break;
	}
	if (!credit_take(&p->credit)) {
		p->c.credit_stalls += !op->stalled;
		op->stalled = true;
		return false;
	}
	return true;
}

static void xr_send_credit_msg(struct xr_peer *p)
{
	unsigned char msg[sizeof(struct wire_hdr)];

	if (p->state != XR_PEER_UP || p->nsfree == 0)
		return;
	wire_hdr_init(msg, WIRE_CREDIT, 0, 0);
	if (xr_post_send_slot(p, msg, sizeof(msg), true, false) == 0)
		p->c.credit_msgs++;
}

/* Post queued operations in order while resources allow; then return owed
 * credits explicitly if nothing carried them. */
static void xr_try_send(struct xr_peer *p)
{
	struct xr_op *op;
	int ret;

	while (p->state == XR_PEER_UP && (op = p->head)) {
		if (!xr_op_ready(p, op))
			break;
		if (op->kind == XR_OP_SEND)
			ret = xr_post_send_slot(p, op->msg, op->msg_len, false,
						op->raw);
		else
			ret = xr_post_rdma(p, op);
		if (ret) {
			xr_post_failed(p, ret, op->kind != XR_OP_READ);
			return;
		}
		p->head = op->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		free(op);
	}
	if (p->state == XR_PEER_UP && credit_need_msg(&p->credit))
		xr_send_credit_msg(p);
}

/* Whether one more operation may wait for p; logged once per peer. */
static int xr_room(struct xr_peer *p)
{
	if (p->queued < XPORT_QUEUE_MAX)
		return 0;
	log_once(p->full_logged, LOG_WARN,
		 "transport: %u operations queued for peer %d; refusing more "
		 "(logged once per peer)", p->queued, p->node);
	return -ENOBUFS;
}

static void xr_enqueue(struct xr_peer *p, struct xr_op *op)
{
	p->queued++;
	op->next = NULL;
	if (p->tail)
		p->tail->next = op;
	else
		p->head = op;
	p->tail = op;
	xr_try_send(p);
}

static struct xr_peer *xr_peer_get(struct xport_rdma *x, int peer)
{
	if (peer < 0 || peer >= x->cfg.nnodes || peer == x->cfg.self)
		return NULL;
	return &x->peers[peer];
}

/* A SEND op of len bytes for peer, or NULL with *err set. */
static struct xr_op *xr_send_op(struct xport_rdma *x, int peer, size_t len,
				int *err)
{
	struct xr_peer *p = xr_peer_get(x, peer);
	struct xr_op *op;

	*err = !p ? -EINVAL : len > WIRE_MSG_MAX ? -EMSGSIZE
	       : p->state != XR_PEER_UP ? -ENOTCONN : xr_room(p);
	if (*err)
		return NULL;
	op = malloc(sizeof(*op) + len);
	if (!op) {
		*err = -ENOMEM;
		return NULL;
	}
	memset(op, 0, sizeof(*op));
	op->kind = XR_OP_SEND;
	op->msg_len = len;
	return op;
}

/* Nothing queued ahead and a credit and a slot free: post at once from a
 * stack copy, with no allocation.  False if the message must queue. */
static bool xr_send_now(struct xr_peer *p, unsigned type, uint64_t req_id,
			const void *body, size_t body_len, int *err)
{
	unsigned char buf[WIRE_MSG_MAX];
	size_t len;

	if (p->head || p->state != XR_PEER_UP || p->nsfree <= CREDIT_SPARE ||
	    !credit_take(&p->credit))
		return false;
	len = wire_build(buf, sizeof(buf), type, req_id, body, body_len);
	*err = xr_post_send_slot(p, buf, len, false, false);
	if (*err)
		xr_post_failed(p, *err, true);
	return true;
}

static int xr_send(struct xport *xp, int peer, unsigned type, uint64_t req_id,
		   const void *body, size_t body_len)
{
	struct xport_rdma *x = to_xr(xp);
	size_t len = sizeof(struct wire_hdr) + body_len;
	struct xr_op *op;
	int err;

	if (len <= WIRE_MSG_MAX && xr_peer_get(x, peer) &&
	    xr_send_now(&x->peers[peer], type, req_id, body, body_len, &err))
		return err;
	op = xr_send_op(x, peer, len, &err);
	if (!op)
		return err;
	wire_build(op->msg, len, type, req_id, body, body_len);
	xr_enqueue(&x->peers[peer], op);
	return 0;
}

static int xr_send_raw(struct xport *xp, int peer, const void *msg,
		       size_t len)
{
	struct xport_rdma *x = to_xr(xp);
	struct xr_op *op;
	int err;

	op = xr_send_op(x, peer, len, &err);
	if (!op)
		return err;
	memcpy(op->msg, msg, len);
	op->raw = true;
	xr_enqueue(&x->peers[peer], op);
	return 0;
}

static int xr_rdma_op(struct xport_rdma *x, enum xr_op_kind kind, int peer,
		      struct xport_mr *mr, size_t off, uint64_t raddr,
		      uint32_t rkey, uint32_t len, uint32_t imm,
		      uint64_t cookie)
{
	struct xr_peer *p = xr_peer_get(x, peer);
	struct xr_op *op;

	if (!p || !mr || off > mr->len || len > mr->len - off)
		return -EINVAL;
	if (p->state != XR_PEER_UP)
		return -ENOTCONN;
	if (xr_room(p))
		return -ENOBUFS;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = (struct xr_op){.kind = kind, .mr = mr, .off = off,
			     .raddr = raddr, .rkey = rkey, .len = len,
			     .imm = imm, .cookie = cookie};
	xr_enqueue(p, op);
	return 0;
}

static int xr_read(struct xport *xp, int peer, struct xport_mr *mr,
		   size_t off, uint64_t raddr, uint32_t rkey, uint32_t len,
		   uint64_t cookie)
{
	return xr_rdma_op(to_xr(xp), XR_OP_READ, peer, mr, off, raddr, rkey,
			  len, 0, cookie);
}

static int xr_write_imm(struct xport *xp, int peer, struct xport_mr *mr,
			size_t off, uint64_t raddr, uint32_t rkey,
			uint32_t len, uint32_t imm, uint64_t cookie)
{
	return xr_rdma_op(to_xr(xp), XR_OP_WRITE, peer, mr, off, raddr, rkey,
			  len, imm, cookie);
}

static void xr_on_rdma_done(struct xport_rdma *x, struct xr_peer *p,
			    struct xr_wr *w, int status);

/* Fail every queued READ/WRITE of a peer that went down, so the owner is not
 * left waiting; queued messages are simply dropped. */
static void xr_fail_ops(struct xr_peer *p)
{
	struct xr_op *op;

	while ((op = p->head)) {
		struct xport_event ev = {
			.peer = p->node, .status = -ECONNRESET,
			.cookie = op->cookie,
		};

		p->head = op->next;
		if (op->kind != XR_OP_SEND) {
			ev.type = op->kind == XR_OP_READ ? XPORT_EV_READ_DONE
							 : XPORT_EV_WRITE_DONE;
			xr_emit(p->x, &ev);
		}
		free(op);
	}
	p->tail = NULL;
	p->queued = 0;
	/* Lazy WRITEs whose later signalled request may never come: end
	 * them now (their flush completions are then ignored). */
	while (p->nlazy) {
		struct xr_wr *w = &p->rdwr[p->lazy[p->lhead]];

		p->lhead = (p->lhead + 1) % XR_WRITES_MAX;
		p->nlazy--;
		p->x->nlazy--;
		xr_on_rdma_done(p->x, p, w, -ECONNRESET);
	}
}

/* ---------------------------------------------------------------------- */
/* Completions                                                            */

static void xr_bad_msg(struct xr_peer *p, enum wire_error e)
{
	p->c.bad_msgs++;
	log_once(p->bad_logged[e], LOG_WARN,
		 "transport: dropped a message from peer %d: %s "
		 "(logged once per peer and kind)", p->node, wire_error_str(e));
}

static void xr_on_recv(struct xport_rdma *x, struct xr_peer *p,
		       struct xr_wr *w, struct ibv_wc *wc)
{
	unsigned char *buf = p->rbuf + (size_t)w->index * WIRE_MSG_MAX;
	struct xport_event ev = {.peer = p->node};
	bool credit_only = false, deliver = true;
	enum wire_error e;

	if (wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
		ev.type = XPORT_EV_WRITE_IMM;
		ev.imm = ntohl(wc->imm_data);
		ev.len = wc->byte_len;
	} else {
		p->c.msgs_received++;
		p->c.bytes_received += wc->byte_len;
		p->recv_seq++; /* every SEND counts, well-formed or not */
		e = wire_decode(buf, wc->byte_len, WIRE_CH_NODE, &ev.msg);
		if (e == WIRE_OK && ev.msg.hdr->src != p->node)
			e = WIRE_ERANGE;
		if (e != WIRE_OK) {
			xr_bad_msg(p, e);
			deliver = false;
		} else {
			if (!credit_grant(&p->credit, ev.msg.hdr->credits)) {
				p->c.bad_msgs++;
				log_once(p->credit_logged, LOG_WARN,
					 "transport: peer %d returned more "
					 "credits than it was owed", p->node);
			}
			/* RC delivers in order; a gap means a bug on one
			 * side, worth one loud line. */
			if (ev.msg.hdr->seq != p->recv_seq - 1) {
				log_once(p->seq_logged, LOG_ERR,
					 "transport: peer %d message %u "
					 "arrived when %u was expected",
					 p->node, ev.msg.hdr->seq,
					 p->recv_seq - 1);
			}
			credit_only = ev.msg.hdr->type == WIRE_CREDIT;
			deliver = !credit_only;
			ev.type = XPORT_EV_MSG;
		}
	}
	if (deliver)
		xr_emit(x, &ev);
	/* The buffer is free again only now: the event's message pointed
	 * into it. */
	if (p->state != XR_PEER_UP)
		return;
	if (xr_post_recv(p, w->index)) {
		xr_peer_down(p, "ibv_post_recv failed");
		return;
	}
	if (!credit_only)
		credit_reposted(&p->credit);
}

static void xr_on_rdma_done(struct xport_rdma *x, struct xr_peer *p,
			    struct xr_wr *w, int status)
{
	struct xport_event ev = {
		.type = w->kind == XR_WR_READ ? XPORT_EV_READ_DONE
					      : XPORT_EV_WRITE_DONE,
		.peer = p->node, .status = status, .cookie = w->cookie,
	};

	/* A lazy WRITE of a dead peer was ended by xr_fail_ops; its flush
	 * completion may still come. */
	if (!w->posted)
		return;
	w->posted = false;
	if (w->kind == XR_WR_READ)
		p->reads--;
	else
		p->writes--;
	p->rdfree[p->nrdfree++] = w->index;
	xr_emit(x, &ev);
}

/* Work request `seq` of p's send queue completed (or was flushed): every
 * unsignalled WRITE posted before it is done, and succeeded, or it would
 * have completed with an error itself.  `upto` includes seq itself, for a
 * flushed lazy WRITE's own completion. */
static void xr_lazy_done(struct xport_rdma *x, struct xr_peer *p,
			 uint64_t seq, bool upto, int status)
{
	while (p->nlazy) {
		struct xr_wr *w = &p->rdwr[p->lazy[p->lhead]];

		if (w->seq > seq || (w->seq == seq && !upto))
			return;
		p->lhead = (p->lhead + 1) % XR_WRITES_MAX;
		p->nlazy--;
		x->nlazy--;
		xr_on_rdma_done(x, p, w, w->seq == seq ? status : 0);
	}
}

/* The send in `slot` completed, and with it every send posted before it:
 * their slots are free again.  (Error completions come for unsignalled
 * sends too, in order, which this handles the same way.) */
static void xr_free_sends(struct xr_peer *p, unsigned slot)
{
	while (p->shead != p->stail) {
		unsigned s = p->sring[p->shead];

		p->shead = (p->shead + 1) % (p->nsend + 1);
		p->sfree[p->nsfree++] = s;
		if (s == slot)
			return;
	}
}

static void xr_on_wc(struct xport_rdma *x, struct ibv_wc *wc)
{
	struct xr_wr *w = (struct xr_wr *)(uintptr_t)wc->wr_id;
	struct xr_peer *p = w->peer;

	if (wc->status != IBV_WC_SUCCESS) {
		if (wc->status != IBV_WC_WR_FLUSH_ERR) {
			char why[96];

			snprintf(why, sizeof(why), "work completion error: %s",
				 ibv_wc_status_str(wc->status));
			xr_peer_down(p, why);
		}
		if (w->kind != XR_WR_RECV)
			xr_lazy_done(x, p, w->seq, true, -EIO);
		if (w->kind == XR_WR_SEND)
			xr_free_sends(p, w->index);
		else if (w->kind != XR_WR_RECV)
			xr_on_rdma_done(x, p, w, -EIO);
		return;
	}
	if (w->kind != XR_WR_RECV)
		xr_lazy_done(x, p, w->seq, false, 0);
	switch (w->kind) {
	case XR_WR_RECV:
		xr_on_recv(x, p, w, wc);
		break;
	case XR_WR_SEND:
		xr_free_sends(p, w->index);
		break;
	case XR_WR_READ:
	case XR_WR_WRITE:
		xr_on_rdma_done(x, p, w, 0);
		break;
	}
	xr_try_send(p);
}

static int xr_poll_cq(struct xport_rdma *x)
{
	struct ibv_wc wc[32];
	int n, i, total = 0;

	while ((n = ibv_poll_cq(x->cq, 32, wc)) > 0) {
		for (i = 0; i < n; i++)
			xr_on_wc(x, &wc[i]);
		total += n;
	}
	if (n < 0) {
		log_err("transport: ibv_poll_cq failed");
		return -EIO;
	}
	return total;
}

/* Poll the CQ; with poll_us, keep polling that long after the last
 * completion. */
static int xr_progress_cq(struct xport_rdma *x)
{
	int n, total;
	uint64_t until;

	total = xr_poll_cq(x);
	if (total < 0 || !x->cfg.poll_us)
		return total;
	until = clock_mono_us() + x->cfg.poll_us;
	while (clock_mono_us() < until) {
		n = xr_poll_cq(x);
		if (n < 0)
			return n;
		if (n > 0) {
			total += n;
			until = clock_mono_us() + x->cfg.poll_us;
		}
	}
	return total;
}

/* The completion channel fired: the CQ is no longer armed.  One arm
 * raises at most one event (the CQ is the channel's only one), so one read
 * takes it; a loop would pay a second system call for its EAGAIN. */
static void xr_drain_comp_channel(struct xport_rdma *x)
{
	struct ibv_cq *cq;
	void *cq_ctx;

	if (ibv_get_cq_event(x->comp_ch, &cq, &cq_ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		x->cq_events++;
	}
	x->armed = false;
}

/* The owner is about to block on xport_fd(): arm the CQ (once; it stays
 * armed until its channel fires), then poll again, because a completion
 * that landed before the arm raises no event.  Returns the completions
 * that poll found: if any, the owner must not block yet. */
static int xr_arm(struct xport *xp)
{
	struct xport_rdma *x = to_xr(xp);

	if (!x->armed) {
		if (ibv_req_notify_cq(x->cq, 0)) {
			log_err("transport: ibv_req_notify_cq failed");
			return -EIO;
		}
		x->armed = true;
		x->cq_arms++;
	}
	return xr_poll_cq(x);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

static int xr_create_qp(struct xport_rdma *x, struct xr_peer *p,
			struct rdma_cm_id *id)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = x->cq, .recv_cq = x->cq,
		.cap = {
			.max_send_wr = p->nsend + XR_READS_MAX + XR_WRITES_MAX,
			.max_recv_wr = p->nrecv,
			.max_send_sge = 1, .max_recv_sge = 1,
		},
		.qp_type = IBV_QPT_RC,
	};
	unsigned i;
	int ret;

	if (rdma_create_qp(id, x->pd, &attr))
		return -errno;
	p->id = id;
	id->context = p;
	for (i = 0; i < p->nrecv; i++) {
		ret = xr_post_recv(p, i);
		if (ret)
			return ret;
	}
	return 0;
}

static void xr_conn_param(struct xport_rdma *x, struct rdma_conn_param *cp,
			  struct xr_conn_data *d, int to)
{
	*d = (struct xr_conn_data){
		.magic = XR_CONN_MAGIC, .version = WIRE_VERSION,
		.node = (uint16_t)x->cfg.self,
		.nnodes = (uint16_t)x->cfg.nnodes,
		.depth = (uint16_t)x->cfg.recv_depth,
	};
	d->tag = xr_conn_tag(&x->cfg, d, to);
	*cp = (struct rdma_conn_param){
		.private_data = d, .private_data_len = sizeof(*d),
		.responder_resources = 4, .initiator_depth = 4,
		.retry_count = 7, .rnr_retry_count = 7,
	};
}

static int xr_start_connect(struct xport_rdma *x, struct xr_peer *p)
{
	struct sockaddr_in dst = {
		.sin_family = AF_INET, .sin_addr.s_addr = p->addr.ip,
		.sin_port = p->addr.port,
	}, src = {
		.sin_family = AF_INET, .sin_addr.s_addr = x->self_addr.ip,
	};
	struct rdma_cm_id *id;

	if (rdma_create_id(x->cm_ch, &id, p, RDMA_PS_TCP))
		return -errno;
	p->id = id;
	p->state = XR_PEER_CONNECTING;
	p->tries++;
	if (rdma_resolve_addr(id, (struct sockaddr *)&src,
			      (struct sockaddr *)&dst,
			      (int)x->cfg.connect_timeout_ms))
		return -errno;
	return 0;
}

/* A connect attempt failed before the connection was up: try again a few
 * times (a TCG guest can be slow enough to time out), then give up. */
static void xr_connect_failed(struct xport_rdma *x, struct xr_peer *p,
			      const char *what)
{
	if (p->id) {
		if (p->id->qp)
			rdma_destroy_qp(p->id);
		rdma_destroy_id(p->id);
		p->id = NULL;
	}
	if (p->tries < XR_CONNECT_TRIES && p->node < x->cfg.self) {
		log_info("transport: connecting to peer %d: %s, retrying",
			 p->node, what);
		if (xr_start_connect(x, p) == 0)
			return;
	}
	xr_peer_down(p, what);
}

static void xr_established(struct xport_rdma *x, struct xr_peer *p)
{
	struct xport_event ev = {.type = XPORT_EV_CONNECTED, .peer = p->node};

	p->state = XR_PEER_UP;
	log_info("transport: connected to peer %d", p->node);
	xr_emit(x, &ev);
	xr_try_send(p);
}

static bool xr_conn_data_ok(struct xport_rdma *x, const void *data,
			    uint8_t len, struct xr_conn_data *out)
{
	if (!data || len < sizeof(*out))
		return false;
	memcpy(out, data, sizeof(*out));
	return out->magic == XR_CONN_MAGIC && out->version == WIRE_VERSION &&
	       out->nnodes == x->cfg.nnodes && out->node < x->cfg.nnodes &&
	       out->node != x->cfg.self && out->depth == x->cfg.recv_depth &&
	       out->tag == xr_conn_tag(&x->cfg, out, x->cfg.self);
}

/* The request comes from the address the rendezvous gave for that node. */
static bool xr_from_table(struct rdma_cm_id *id, const struct xr_peer *p)
{
	const struct sockaddr *sa = rdma_get_peer_addr(id);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

	if (sa && sa->sa_family == AF_INET &&
	    sin->sin_addr.s_addr == p->addr.ip)
		return true;
	log_warn("transport: refused a connection request for node %d from "
		 "%s, not its address in the rendezvous table", p->node,
		 sa && sa->sa_family == AF_INET ? inet_ntoa(sin->sin_addr)
						: "a non-IPv4 address");
	return false;
}

/* Passive side: the connecting node must be a higher-numbered member we
 * have not connected yet, speaking our version, signed with our key, from
 * its address. */
static void xr_on_connect_request(struct xport_rdma *x,
				  struct rdma_cm_event *ev)
{
	struct xr_conn_data in, out;
	struct rdma_conn_param cp;
	struct xr_peer *p;
	int ret;

	if (!xr_conn_data_ok(x, ev->param.conn.private_data,
			     ev->param.conn.private_data_len, &in) ||
	    in.node < x->cfg.self) {
		log_warn("transport: refused a connection request with bad, "
			 "foreign or unsigned (cluster key) private data");
		rdma_reject(ev->id, NULL, 0);
		rdma_destroy_id(ev->id);
		return;
	}
	p = &x->peers[in.node];
	if (!xr_from_table(ev->id, p)) {
		rdma_reject(ev->id, NULL, 0);
		rdma_destroy_id(ev->id);
		return;
	}
	/* The active side retries a connect that failed on its end (a timeout
	 * in a slow guest): our half of the old attempt is stale. */
	if (p->state == XR_PEER_CONNECTING && p->id) {
		log_info("transport: node %u retried its connection; dropping "
			 "the half-open one", in.node);
		rdma_destroy_qp(p->id);
		rdma_destroy_id(p->id);
		p->id = NULL;
		p->state = XR_PEER_IDLE;
	}
	if (p->state != XR_PEER_IDLE) {
		log_warn("transport: refused a second connection from node %u",
			 in.node);
		rdma_reject(ev->id, NULL, 0);
		rdma_destroy_id(ev->id);
		return;
	}
	ret = xr_create_qp(x, p, ev->id);
	if (ret) {
		log_err("transport: creating the QP for peer %d: %s", p->node,
			strerror(-ret));
		rdma_reject(ev->id, NULL, 0);
		if (ev->id->qp)
			rdma_destroy_qp(ev->id);
		rdma_destroy_id(ev->id);
		p->id = NULL;
		return;
	}
	p->state = XR_PEER_CONNECTING;
	xr_conn_param(x, &cp, &out, in.node);
	if (rdma_accept(ev->id, &cp))
		xr_peer_down(p, "rdma_accept failed");
}

static void xr_on_cm_event(struct xport_rdma *x, struct rdma_cm_event *ev)
{
	struct xr_peer *p = ev->id->context;
	struct xr_conn_data d;
	struct rdma_conn_param cp;
	int ret;

	if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
		xr_on_connect_request(x, ev);
		return;
	}
	if (!p || p == (void *)x)
		return;
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		ret = xr_create_qp(x, p, ev->id);
		if (ret == 0 && rdma_resolve_route(ev->id,
					(int)x->cfg.connect_timeout_ms))
			ret = -errno;
		if (ret)
			xr_connect_failed(x, p, "QP creation or route failed");
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		xr_conn_param(x, &cp, &d, p->node);
		if (rdma_connect(ev->id, &cp))
			xr_connect_failed(x, p, "rdma_connect failed");
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		/* We asked (a lower-numbered node): its answer is signed too. */
		if (p->node < x->cfg.self &&
		    (!xr_conn_data_ok(x, ev->param.conn.private_data,
				      ev->param.conn.private_data_len, &d) ||
		     d.node != p->node)) {
			log_warn("transport: node %d answered with bad or "
				 "unsigned (cluster key) private data",
				 p->node);
			xr_peer_down(p, "unsigned connection answer");
			break;
		}
		xr_established(x, p);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		if (p->state == XR_PEER_CONNECTING)
			xr_connect_failed(x, p, rdma_event_str(ev->event));
		else
			xr_peer_down(p, rdma_event_str(ev->event));
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		xr_peer_down(p, rdma_event_str(ev->event));
		break;
	default:
		break;
	}
}

static int xr_progress_cm(struct xport_rdma *x)
{
	struct rdma_cm_event *ev, copy;
	int n = 0;

	while (rdma_get_cm_event(x->cm_ch, &ev) == 0) {
		/* Ack first: handlers may destroy the id, which waits for
		 * its events to be acked.  Keep a copy of what we read. */
		uint8_t pd[64];

		copy = *ev;
		if (ev->param.conn.private_data &&
		    ev->param.conn.private_data_len) {
			uint8_t l = ev->param.conn.private_data_len;

			if (l > sizeof(pd))
				l = sizeof(pd);
			memcpy(pd, ev->param.conn.private_data, l);
			copy.param.conn.private_data = pd;
			copy.param.conn.private_data_len = l;
		}
		rdma_ack_cm_event(ev);
		xr_on_cm_event(x, &copy);
		n++;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK) {
		log_err("transport: rdma_get_cm_event: %s", strerror(errno));
		return -errno;
	}
	return n;
}

/* One epoll_wait(0) tells which of our fds have something, so a call that
 * finds nothing costs one system call; the CQ itself is polled in user
 * space. */
static int xr_progress(struct xport *xp)
{
	struct xport_rdma *x = to_xr(xp);
	struct epoll_event evs[3];
	int i, n, ret, total = 0;

	x->progress_calls++;
	n = epoll_wait(x->epfd, evs, 3, 0);
	for (i = 0; i < n; i++) {
		if (evs[i].data.fd == x->cm_ch->fd) {
			ret = xr_progress_cm(x);
			if (ret < 0)
				return ret;
			total += ret;
		} else if (evs[i].data.fd == x->comp_ch->fd) {
			xr_drain_comp_channel(x);
		} else {
			total += xr_progress_down(x);
		}
	}
	ret = xr_progress_cq(x);
	return ret < 0 ? ret : total + ret;
}

static int xr_connect_all(struct xport *xp, const struct xport_addr *addrs)
{
	struct xport_rdma *x = to_xr(xp);
	int i, ret;

	for (i = 0; i < x->cfg.nnodes; i++) {
		if (i == x->cfg.self)
			continue;
		x->peers[i].addr = addrs[i];
		if (i > x->cfg.self)
			continue; /* node i connects to us */
		ret = xr_start_connect(x, &x->peers[i]);
		if (ret) {
			log_err("transport: connecting to peer %d: %s", i,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int xr_close_peer(struct xport *xp, int peer)
{
	struct xr_peer *p = xr_peer_get(to_xr(xp), peer);

	if (!p)
		return -EINVAL;
	xr_peer_down(p, "closed by owner");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Setup                                                                  */

/* Find the IPv4 address of a RoCE device from its GID table
 * (::ffff:a.b.c.d entries). */
static int xr_device_ipv4(const char *name, uint32_t *ip)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	int i, ret = -ENODEV;

	if (!list)
		return -errno;
	for (i = 0; list[i]; i++) {
		if (name && strcmp(ibv_get_device_name(list[i]), name))
			continue;
		ctx = ibv_open_device(list[i]);
		break;
	}
	if (ctx) {
		union ibv_gid gid;
		static const uint8_t v4prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0,
						     0, 0, 0xff, 0xff};

		for (i = 0; i < 16 && ret; i++) {
			if (ibv_query_gid(ctx, 1, i, &gid))
				break;
			if (memcmp(gid.raw, v4prefix, 12) == 0) {
				memcpy(ip, gid.raw + 12, 4);
				ret = 0;
			}
		}
		ibv_close_device(ctx);
		if (ret)
			ret = -EADDRNOTAVAIL;
	}
	ibv_free_device_list(list);
	return ret;
}

bool xport_rdma_usable(const char *device)
{
	uint32_t ip;

	return xr_device_ipv4(device, &ip) == 0;
}

static int xr_setup_listen(struct xport_rdma *x)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const char *dev = x->cfg.device;
	int ret;

	if (x->cfg.addr) {
		if (inet_pton(AF_INET, x->cfg.addr, &sin.sin_addr) != 1) {
			log_err("transport: bad IPv4 address '%s'", x->cfg.addr);
			return -EINVAL;
		}
	} else {
		ret = xr_device_ipv4(dev, &sin.sin_addr.s_addr);
		if (ret) {
			log_err("transport: no IPv4 address found for RDMA "
				"device %s (%s); pass one with --addr",
				dev ? dev : "(first)", strerror(-ret));
			return ret;
		}
	}
	x->cm_ch = rdma_create_event_channel();
	if (!x->cm_ch) {
		log_err("transport: rdma_create_event_channel: %s (is "
			"rdma_ucm loaded and /dev/infiniband/rdma_cm there?)",
			strerror(errno));
		return -errno;
	}
	ret = set_nonblock(x->cm_ch->fd);
	if (ret)
		return ret;
	if (rdma_create_id(x->cm_ch, &x->listen_id, x, RDMA_PS_TCP))
		return -errno;
	if (rdma_bind_addr(x->listen_id, (struct sockaddr *)&sin)) {
		ret = -errno;
		log_err("transport: binding to %s: %s",
			inet_ntoa(sin.sin_addr), strerror(errno));
		return ret;
	}
	if (!x->listen_id->verbs) {
		log_err("transport: address %s is not on an RDMA device",
			inet_ntoa(sin.sin_addr));
		return -EADDRNOTAVAIL;
	}
	if (dev && strcmp(ibv_get_device_name(x->listen_id->verbs->device),
			  dev)) {
		log_err("transport: address %s belongs to device %s, not %s",
			inet_ntoa(sin.sin_addr),
			ibv_get_device_name(x->listen_id->verbs->device), dev);
		return -EINVAL;
	}
	if (rdma_listen(x->listen_id, 64))
		return -errno;
	x->ctx = x->listen_id->verbs;
	snprintf(x->devname, sizeof(x->devname), "%s",
		 ibv_get_device_name(x->ctx->device));
	x->self_addr.ip = sin.sin_addr.s_addr;
	x->self_addr.port = rdma_get_src_port(x->listen_id);
	x->numa_node = xr_numa_node(x->devname);
	if (x->numa_node >= 0)
		log_info("transport: %s is on NUMA node %d; buffers go there",
			 x->devname, x->numa_node);
	else
		log_info("transport: NUMA node of %s unknown (virtual device "
			 "or one node); buffers are local", x->devname);
	return 0;
}

static int xr_setup_cq(struct xport_rdma *x)
{
	unsigned per_peer = x->cfg.recv_depth * 2 + XR_SEND_EXTRA +
			    CREDIT_SPARE + XR_READS_MAX + XR_WRITES_MAX;
	int ret;

	x->pd = ibv_alloc_pd(x->ctx);
	if (!x->pd)
		return -errno;
	x->comp_ch = ibv_create_comp_channel(x->ctx);
	if (!x->comp_ch)
		return -errno;
	ret = set_nonblock(x->comp_ch->fd);
	if (ret)
		return ret;
	x->cq_size = per_peer * (unsigned)(x->cfg.nnodes - 1) + 1;
	x->cq = ibv_create_cq(x->ctx, (int)x->cq_size, NULL, x->comp_ch, 0);
	if (!x->cq)
		return -errno;
	return 0;
}

static int xr_setup_epoll(struct xport_rdma *x)
{
	struct epoll_event ev = {.events = EPOLLIN};

	x->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (x->epfd < 0)
		return -errno;
	ev.data.fd = x->cm_ch->fd;
	if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->cm_ch->fd, &ev))
		return -errno;
	ev.data.fd = x->comp_ch->fd;
	if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->comp_ch->fd, &ev))
		return -errno;
	x->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->evfd < 0)
		return -errno;
	ev.data.fd = x->evfd;
	if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->evfd, &ev))
		return -errno;
	return 0;
}

static int xr_setup_peers(struct xport_rdma *x)
{
	int i, ret;

	x->peers = calloc((size_t)x->cfg.nnodes, sizeof(*x->peers));
	if (!x->peers)
		return -ENOMEM;
	for (i = 0; i < x->cfg.nnodes; i++) {
		x->peers[i].x = x;
		x->peers[i].node = i;
		if (i == x->cfg.self)
			continue;
		ret = xr_peer_alloc(x, &x->peers[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static void xr_destroy(struct xport *xp)
{
	struct xport_rdma *x = to_xr(xp);
	int i;

	if (x->peers) {
		for (i = 0; i < x->cfg.nnodes; i++)
			if (i != x->cfg.self)
				xr_peer_free(&x->peers[i]);
		free(x->peers);
	}
	if (x->cq)
		ibv_destroy_cq(x->cq);
	if (x->comp_ch)
		ibv_destroy_comp_channel(x->comp_ch);
	if (x->pd)
		ibv_dealloc_pd(x->pd);
	if (x->listen_id)
		rdma_destroy_id(x->listen_id);
	if (x->cm_ch)
		rdma_destroy_event_channel(x->cm_ch);
	if (x->epfd >= 0)
		close(x->epfd);
	if (x->evfd >= 0)
		close(x->evfd);
	free(x);
}

static int xr_check_config(const struct xport_config *cfg)
{
	if (cfg->nnodes < 1 || (unsigned)cfg->nnodes > WIRE_MAX_NODES ||
	    cfg->self < 0 || cfg->self >= cfg->nnodes || !cfg->cb)
		return -EINVAL;
	if (cfg->recv_depth < 4 || cfg->recv_depth > 1024)
		return -EINVAL;
	return 0;
}

static int xr_create(const struct xport_config *cfg, struct xport **out)
{
	struct xport_rdma *x;
	int ret;

	ret = xr_check_config(cfg);
	if (ret)
		return ret;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xport_rdma_ops;
	x->cfg = *cfg;
	x->epfd = -1;
	x->evfd = -1;
	x->numa_node = -1;
	if (!x->cfg.connect_timeout_ms)
		x->cfg.connect_timeout_ms = 5000;
	ret = xr_setup_listen(x);
	if (ret)
		goto out_destroy;
	ret = xr_setup_cq(x);
	if (ret) {
		log_err("transport: creating PD/CQ on %s: %s", x->devname,
			strerror(-ret));
		goto out_destroy;
	}
	ret = xr_setup_peers(x);
	if (ret) {
		log_err("transport: allocating peer buffers: %s",
			strerror(-ret));
		goto out_destroy;
	}
	ret = xr_setup_epoll(x);
	if (ret)
		goto out_destroy;
	*out = &x->base;
	return 0;

out_destroy:
	xr_destroy(&x->base);
	return ret;
}

static int xr_fd(struct xport *xp) { return to_xr(xp)->epfd; }

static int xr_stats(struct xport *xp, struct xport_stats *out)
{
	struct xport_rdma *x = to_xr(xp);

	*out = (struct xport_stats){.progress_calls = x->progress_calls,
				    .cq_arms = x->cq_arms,
				    .cq_events = x->cq_events,
				    .lazy_writes = x->lazy_writes};
	return 0;
}

static int xr_local_addr(struct xport *xp, struct xport_addr *out)
{
	*out = to_xr(xp)->self_addr;
	return 0;
}

static const char *xr_device(struct xport *xp) { return to_xr(xp)->devname; }

static int xr_numa(struct xport *xp) { return to_xr(xp)->numa_node; }

static int xr_reg_mr(struct xport *xp, void *addr, size_t len,
		     unsigned access, struct xport_mr *out)
{
	int flags = IBV_ACCESS_LOCAL_WRITE; /* READ destinations; and what
					       REMOTE_WRITE needs */
	struct ibv_mr *mr;

	if (access & ~(unsigned)(XPORT_MR_REMOTE_READ | XPORT_MR_REMOTE_WRITE))
		return -EINVAL;
	if (access & XPORT_MR_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (access & XPORT_MR_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	mr = ibv_reg_mr(to_xr(xp)->pd, addr, len, flags);
	if (!mr)
		return -errno;
	*out = (struct xport_mr){.addr = addr, .len = len, .lkey = mr->lkey,
				 .rkey = mr->rkey, .priv = mr};
	return 0;
}

static int xr_dereg_mr(struct xport *xp, struct xport_mr *mr)
{
	(void)xp;
	if (!mr || !mr->priv)
		return -EINVAL;
	if (ibv_dereg_mr(mr->priv))
		return -errno;
	mr->priv = NULL;
	return 0;
}

static int xr_counters(struct xport *xp, int peer, struct wire_counters *out)
{
	struct xr_peer *p = xr_peer_get(to_xr(xp), peer);

	if (!p)
		return -EINVAL;
	*out = p->c;
	return 0;
}

const struct xport_ops xport_rdma_ops = {
	.name = "verbs",
	.create = xr_create,
	.destroy = xr_destroy,
	.fd = xr_fd,
	.progress = xr_progress,
	.arm = xr_arm,
	.stats = xr_stats,
	.local_addr = xr_local_addr,
	.device = xr_device,
	.numa_node = xr_numa,
	.connect_all = xr_connect_all,
	.send = xr_send,
	.send_raw = xr_send_raw,
	.reg_mr = xr_reg_mr,
	.dereg_mr = xr_dereg_mr,
	.read = xr_read,
	.write_imm = xr_write_imm,
	.close_peer = xr_close_peer,
	.counters = xr_counters,
};
