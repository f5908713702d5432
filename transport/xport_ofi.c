/* The transport over libfabric: one reliable-datagram endpoint (FI_EP_RDM)
 * per node, by default tcp;ofi_rxm, so that dsmd runs where there is no RDMA
 * device.  The contract is the verbs transport's (xport_rdma.c); what an RDM
 * endpoint changes is said here.
 *
 * Threading: everything runs on the owner's thread, as in xport_rdma.c.
 * Progress is manual (FI_PROGRESS_MANUAL): the provider moves bytes and
 * handles its connections inside our calls, mostly fi_cq_read.
 *
 * Messages.  The wire format, sequence numbers and credits of xport_rdma.c
 * (credit.h): a peer has at most recv_depth ordinary messages, CREDIT_SPARE
 * credit-only ones and XO_CTL_SPARE control ones unconsumed here.  An RDM
 * endpoint has one receive queue for every peer, so the pool posted at
 * creation holds the sum of those over all peers: a message from a peer that
 * keeps the rules always finds a buffer, and nothing depends on how the
 * provider buffers messages that find none.  Each message's sender is the
 * source address the CQ reports (FI_SOURCE), checked against hdr->src.
 * Operations wait in a per-peer FIFO (messages, READs, WRITEs in call
 * order) of at most XO_QUEUE_MAX: beyond it a call fails with -ENOBUFS.
 *
 * Connections.  RDM is connectionless (ofi_rxm connects underneath on first
 * use), so "connected" is defined by a hello.  connect_all() puts every
 * node's address in the address vector at the index of its node number,
 * then every node greets every peer with HELLO and answers each HELLO with
 * HELLO_ACK.  A peer is up (XPORT_EV_CONNECTED) when its HELLO or HELLO_ACK
 * arrives: it has then put us in its address vector and posted its
 * receives.  The ack covers a HELLO that arrived before our connect_all(),
 * from a source we could not name, and was dropped.  Control messages are
 * CREDIT messages whose req_id holds XO_CTL_MAGIC and the kind; they carry
 * no credits, take no sequence number, and leave before any queued
 * operation, so a peer is always up at the far end before our first
 * message to it arrives there (sends to one peer arrive in order:
 * FI_ORDER_SAS).  A peer that is reachable but never greets (its dsmd
 * never called connect_all()) stays greeted: that is dsmd's join timeout
 * to decide.
 *
 * Peer down.  RDM reports no disconnection.  A peer goes down when a send to
 * it fails (a post error or an error completion), when it says BYE (its
 * owner called close_peer()), when our owner closes it, and when it is
 * unreachable.  ofi_rxm never fails a send to a peer whose listener is gone:
 * it answers -FI_EAGAIN and connects again, refused each time.  So a peer to
 * which the provider has taken nothing for connect_timeout_ms while we had
 * something to send (a hello, a heartbeat) is down, as a verbs queue pair
 * fails once its retries run out.  The clock is read when a send is refused,
 * so dsmd's heartbeats are what notice a peer that died in silence; a peer
 * that is alive but stopped, whose socket fills up, goes the same way.  As
 * in verbs, the owner hears PEER_DOWN from progress (or arm), never from
 * inside its own call, and the peer's queued operations end then.
 *
 * Keys and addresses.  raddr is the target's virtual address, as in verbs.
 * tcp's native registration ("scalable") addresses RMA by offset into the
 * region instead; asked for FI_MR_BASIC (deprecated since 1.5, still
 * honoured by tcp;ofi_rxm in 1.17) it addresses by virtual address, with
 * keys it chooses.  So the modern mr_mode bits are asked for first, and
 * FI_MR_BASIC when the answer lacks FI_MR_VIRT_ADDR.  Keys must fit the 32
 * bits of struct xport_mr.
 *
 * WRITE with immediate.  fi_writedata carries 64 bits of CQ data: the imm in
 * the low 32 bits, the length and the writer's node above, because ofi_rxm
 * reports the target's completion of a remote write with neither its source
 * (it leaves 0 in its place) nor its length.  The writer's node is thus the
 * writer's word (a message's sender is checked against its source
 * address).  A WRITE consumes no receive at the target (FI_RX_CQ_DATA is
 * not accepted as a mode) and so takes no credit; XO_WRITES_MAX bounds them
 * per peer.  Ordering is a verbs queue pair's: a message sent after a WRITE
 * arrives after its data, and a WRITE after a hello after the hello
 * (FI_ORDER_SAW, FI_ORDER_WAS).
 *
 * Completions.  One CQ for everything, with an fd as its wait object
 * (FI_WAIT_FD): xport_fd() is that fd and xport_arm() is fi_trywait() on
 * the CQ, which makes it wake for what comes next or says that something is
 * already there (XO_TRYWAIT_TRIES).
 *
 * Loading.  libfabric is opened when this transport first starts, not when
 * the program loads (see ofi_lib.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "clock.h"
#include "credit.h"
#include "log.h"
#include "ofi_lib.h"
#include "xport.h"

#define XO_DEFAULT_PROVIDER "tcp;ofi_rxm"
#define XO_DEFAULT_ADDR     "127.0.0.1"
#define XO_READS_MAX    16u /* RDMA READs outstanding per peer */
#define XO_WRITES_MAX   16u /* RDMA WRITEs outstanding per peer */
/* HELLO, HELLO_ACK and BYE: each leaves at most once per peer. */
#define XO_CTL_SPARE    3u
#define XO_SEND_EXTRA   (CREDIT_SPARE + XO_CTL_SPARE + 2u)
#define XO_QUEUE_MAX    XPORT_QUEUE_MAX /* queued operations per peer */
#define XO_UNREACHABLE_MS 10000u /* connect_timeout_ms when none is given */
#define XO_CQ_BATCH     32
/* fi_trywait refuses while the provider has work in hand that yields no
 * completion: ofi_rxm reads its connection events once per 128 CQ reads
 * (FI_OFI_RXM_CQ_EQ_FAIRNESS) and refuses until then.  Progress and ask
 * again a few times, then tell the owner to progress instead of blocking:
 * a short burst of polling while a connection changes, none when idle. */
#define XO_TRYWAIT_TRIES 4

/* The CQ data of a WRITE with immediate: node (6 bits), length (26), imm. */
#define XO_IMM_SRC_SHIFT 58
#define XO_IMM_LEN_SHIFT 32
#define XO_IMM_LEN_MAX   ((1u << 26) - 1u)
_Static_assert(WIRE_MAX_NODES <= 64, "a node number takes 6 bits of CQ data");

/* Control messages: a CREDIT message's req_id is XO_CTL_MAGIC | kind. */
#define XO_CTL_MAGIC 0x44534d4f00000000ull /* "DSMO" */
enum xo_ctl { XO_CTL_HELLO = 1u, XO_CTL_ACK = 2u, XO_CTL_BYE = 4u };

enum xo_ctx_kind { XO_CTX_RECV, XO_CTX_SEND, XO_CTX_READ, XO_CTX_WRITE };

/* What an operation's context points at.  fctx comes first: a provider that
 * wants FI_CONTEXT or FI_CONTEXT2 uses it while the operation is posted. */
struct xo_ctx {
	struct fi_context2 fctx;
	enum xo_ctx_kind kind;
	struct xo_peer *peer; /* NULL for receives: one pool serves all peers */
	unsigned index;       /* buffer slot (RECV, SEND), pool entry (READ,
				 WRITE) */
	uint64_t cookie;      /* READ, WRITE */
};

enum xo_op_kind { XO_OP_SEND, XO_OP_READ, XO_OP_WRITE };

/* An operation waiting for a credit, a send slot, a read or write slot, or
 * a provider that said -FI_EAGAIN. */
struct xo_op {
	struct xo_op *next;
	enum xo_op_kind kind;
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

enum xo_peer_state {
	XO_PEER_IDLE,    /* before connect_all() */
	XO_PEER_GREETED, /* our HELLO is out or queued; nothing heard */
	XO_PEER_UP,
	XO_PEER_DOWN,
};

struct xo_peer {
	struct xport_ofi *x;
	int node;
	enum xo_peer_state state;
	fi_addr_t fi_addr;
	struct credit credit;
	unsigned char *sbuf;  /* send slots, WIRE_MSG_MAX each */
	struct fid_mr *smr;   /* only where the provider wants local MRs */
	struct xo_ctx *sctx;
	unsigned *sfree;      /* stack of free send slots */
	unsigned nsend, nsfree;
	struct xo_ctx rdctx[XO_READS_MAX + XO_WRITES_MAX];
	unsigned rdfree[XO_READS_MAX + XO_WRITES_MAX];
	unsigned nrdfree, reads, writes;
	struct xo_op *head, *tail;
	unsigned queued;
	bool ctl_logged;
	unsigned ctl_pending; /* enum xo_ctl bits still to send */
	uint64_t refused_ms;  /* when the provider began to refuse our sends
				 (-FI_EAGAIN) with nothing taken since; 0 */
	uint32_t send_seq, recv_seq;
	bool down_pending;
	char down_reason[96];
	struct wire_counters c;
	bool bad_logged[WIRE_NERRORS];
	bool credit_logged, seq_logged, full_logged, imm_logged;
};

struct xport_ofi {
	struct xport base;
	struct xport_config cfg;
	char provider[64];
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	int wait_fd;
	bool mr_local;    /* local buffers need registering and descriptors */
	uint64_t next_key; /* requested_key of the next registration */
	unsigned char *rbuf; /* the receive pool, WIRE_MSG_MAX a slot */
	struct fid_mr *rmr;
	struct xo_ctx *rctx;
	unsigned nrecv;
	struct xport_addr self_addr;
	char devname[80];
	bool connected;    /* the AV holds every node: sources can be named */
	bool armed;        /* fi_trywait said the fd may be slept on */
	bool down_pending; /* some peer has a PEER_DOWN to deliver */
	bool stray_logged, err_logged;
	uint64_t progress_calls, cq_arms, cq_events;
	struct xo_peer *peers;
};

static inline struct xport_ofi *to_xo(struct xport *x)
{
	return (struct xport_ofi *)x;
}

static void xo_emit(struct xport_ofi *x, struct xport_event *ev)
{
	x->cfg.cb(x->cfg.cb_arg, ev);
}

/* The tag a control message from src to dst carries, under the cluster
 * key (xport_config.key), in its header's seq (low 32 bits) and credits
 * (16 more), which control messages do not use: a host without the key
 * cannot greet, answer or close for a member. */
static uint64_t xo_ctl_tag(const struct xport_config *cfg, int src, int dst,
			   unsigned kind)
{
	uint32_t v[3] = {(uint32_t)src << 16 | (uint32_t)dst, kind,
			 0x44534d4fu};

	return siphash24(&cfg->key, v, sizeof(v)) & 0xffffffffffffull;
}

/* Log a failed libfabric call once, where it failed; returns its error. */
static int xo_fail(const char *call, int ret)
{
	log_err("transport: %s: %s", call, ofi_lf.strerror(-ret));
	return ret;
}

static void *xo_desc(struct fid_mr *mr)
{
	return mr ? fi_mr_desc(mr) : NULL;
}

static unsigned char *xo_rbuf(struct xport_ofi *x, unsigned i)
{
	return x->rbuf + (size_t)i * WIRE_MSG_MAX;
}

static struct xo_peer *xo_peer_get(struct xport_ofi *x, int peer)
{
	if (peer < 0 || peer >= x->cfg.nnodes || peer == x->cfg.self)
		return NULL;
	return &x->peers[peer];
}

/* The peer a completion's source address names, if any. */
static struct xo_peer *xo_peer_from(struct xport_ofi *x, fi_addr_t src)
{
	if (!x->connected || src == FI_ADDR_NOTAVAIL ||
	    src >= (fi_addr_t)x->cfg.nnodes)
		return NULL;
	return xo_peer_get(x, (int)src);
}

/* ---------------------------------------------------------------------- */
/* Peer failure                                                           */

/* Mark a peer down once.  The owner hears of it from progress or arm,
 * never from inside one of its own calls.  Only a BYE may still leave. */
static void xo_peer_down(struct xo_peer *p, const char *reason)
{
	if (p->state == XO_PEER_DOWN)
		return;
	log_warn("transport: peer %d down: %s", p->node, reason);
	p->state = XO_PEER_DOWN;
	p->ctl_pending &= XO_CTL_BYE;
	snprintf(p->down_reason, sizeof(p->down_reason), "%s", reason);
	p->down_pending = true;
	p->x->down_pending = true;
}

/* End a dead peer's queued operations: READs and WRITEs with -ECONNRESET,
 * so the owner is not left waiting; messages are dropped.  Posted ones end
 * with their completions. */
static void xo_fail_ops(struct xo_peer *p)
{
	struct xo_op *op;

	while ((op = p->head)) {
		struct xport_event ev = {
			.peer = p->node, .status = -ECONNRESET,
			.cookie = op->cookie,
		};

		p->head = op->next;
		if (op->kind != XO_OP_SEND) {
			ev.type = op->kind == XO_OP_READ ? XPORT_EV_READ_DONE
							 : XPORT_EV_WRITE_DONE;
			xo_emit(p->x, &ev);
		}
		free(op);
	}
	p->tail = NULL;
	p->queued = 0;
}

static int xo_deliver_down(struct xport_ofi *x)
{
	int i, n = 0;

	if (!x->down_pending)
		return 0;
	x->down_pending = false;
	for (i = 0; i < x->cfg.nnodes; i++) {
		struct xo_peer *p = &x->peers[i];
		struct xport_event ev = {
			.type = XPORT_EV_PEER_DOWN, .peer = i,
			.reason = p->down_reason,
		};

		if (!p->down_pending)
			continue;
		p->down_pending = false;
		xo_fail_ops(p);
		xo_emit(x, &ev);
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                */

enum xo_tx {
	XO_TX_MSG, /* ordinary or credit-only: src, credits, a sequence no. */
	XO_TX_RAW, /* test hook: only the sequence number */
	XO_TX_CTL, /* control: src only */
};

/* Post one message from a free send slot.  -FI_EAGAIN: the provider cannot
 * take it now (ofi_rxm while it connects); nothing changed, try later. */
static int xo_post_send(struct xo_peer *p, const void *msg, size_t len,
			enum xo_tx tx)
{
	unsigned slot = p->sfree[p->nsfree - 1];
	unsigned char *buf = p->sbuf + (size_t)slot * WIRE_MSG_MAX;
	unsigned credits = 0;
	struct wire_hdr h;
	ssize_t ret;

	memcpy(buf, msg, len);
	if (len >= sizeof(h)) {
		memcpy(&h, buf, sizeof(h));
		if (tx != XO_TX_RAW)
			h.src = (uint16_t)p->x->cfg.self;
		if (tx == XO_TX_MSG) {
			credits = credit_piggyback(&p->credit);
			h.credits = (uint16_t)credits;
		}
		h.seq = p->send_seq;
		if (tx == XO_TX_CTL) {
			uint64_t tag = xo_ctl_tag(&p->x->cfg, p->x->cfg.self,
						  p->node,
						  (unsigned)(h.req_id &
							     0xffffffffu));

			h.seq = (uint32_t)tag;
			h.credits = (uint16_t)(tag >> 32);
		}
		memcpy(buf, &h, sizeof(h));
	}
	ret = fi_send(p->x->ep, buf, len, xo_desc(p->smr), p->fi_addr,
		      &p->sctx[slot]);
	if (ret) {
		p->credit.owed += credits;
		return (int)ret;
	}
	p->nsfree--;
	p->refused_ms = 0;
	if (tx != XO_TX_CTL)
		p->send_seq++;
	p->c.msgs_sent++;
	p->c.bytes_sent += len;
	return 0;
}

static void xo_post_failed(struct xo_peer *p, const char *what, int err)
{
	char why[96];

	snprintf(why, sizeof(why), "%s: %s", what, ofi_lf.strerror(-err));
	xo_peer_down(p, why);
}

/* The provider refused a send (-FI_EAGAIN): fine for a while, but not for
 * connect_timeout_ms on end (see "Peer down" above).  The BYE to a closed
 * peer is then given up: each retry would have ofi_rxm connect again. */
static void xo_refused(struct xo_peer *p)
{
	uint64_t now = clock_mono_ms();
	char why[96];

	if (!p->refused_ms) {
		p->refused_ms = now ? now : 1;
		return;
	}
	if (now - p->refused_ms < p->x->cfg.connect_timeout_ms)
		return;
	if (p->state == XO_PEER_DOWN) {
		p->ctl_pending = 0;
		return;
	}
	snprintf(why, sizeof(why), "unreachable: the provider took nothing "
		 "for %llu ms", (unsigned long long)(now - p->refused_ms));
	xo_peer_down(p, why);
}

/* Send the pending control messages, in the order HELLO, ACK, BYE. */
static void xo_send_ctl(struct xo_peer *p)
{
	static const char *const names[] = {"", "HELLO", "HELLO_ACK", "",
					     "BYE"};
	unsigned char msg[sizeof(struct wire_hdr)];
	unsigned bit;
	int ret;

	for (bit = XO_CTL_HELLO; bit <= XO_CTL_BYE; bit <<= 1) {
		if (!(p->ctl_pending & bit))
			continue;
		if (p->nsfree == 0)
			return;
		wire_hdr_init(msg, WIRE_CREDIT, 0, XO_CTL_MAGIC | bit);
		ret = xo_post_send(p, msg, sizeof(msg), XO_TX_CTL);
		if (ret == -FI_EAGAIN) {
			xo_refused(p);
			return;
		}
		p->ctl_pending &= ~bit;
		if (ret && bit != XO_CTL_BYE)
			xo_post_failed(p, names[bit], ret);
		if (ret)
			return;
	}
}

static int xo_post_rdma(struct xo_peer *p, struct xo_op *op)
{
	struct xport_ofi *x = p->x;
	unsigned i = p->rdfree[p->nrdfree - 1];
	struct xo_ctx *c = &p->rdctx[i];
	void *buf = (char *)op->mr->addr + op->off;
	void *desc = x->mr_local ? xo_desc(op->mr->priv) : NULL;
	uint64_t data;
	ssize_t ret;

	c->cookie = op->cookie;
	if (op->kind == XO_OP_READ) {
		c->kind = XO_CTX_READ;
		ret = fi_read(x->ep, buf, op->len, desc, p->fi_addr, op->raddr,
			      op->rkey, c);
	} else {
		c->kind = XO_CTX_WRITE;
		data = (uint64_t)x->cfg.self << XO_IMM_SRC_SHIFT |
		       (uint64_t)op->len << XO_IMM_LEN_SHIFT | op->imm;
		ret = fi_writedata(x->ep, buf, op->len, desc, data, p->fi_addr,
				   op->raddr, op->rkey, c);
	}
	if (ret)
		return (int)ret;
	p->nrdfree--;
	p->refused_ms = 0;
	if (op->kind == XO_OP_READ) {
		p->reads++;
		p->c.rdma_reads++;
	} else {
		p->writes++;
		p->c.rdma_writes++;
	}
	p->c.rdma_bytes += op->len;
	return 0;
}

/* Whether the op at the head of the queue can leave now; spends the credit
 * of a message if it can.  The last send slots are kept for credit-only and
 * control messages. */
static bool xo_op_ready(struct xo_peer *p, struct xo_op *op)
{
	switch (op->kind) {
	case XO_OP_READ:
		return p->reads < XO_READS_MAX;
	case XO_OP_WRITE:
		return p->writes < XO_WRITES_MAX;
	case XO_OP_SEND:
		break;
	}
	if (p->nsfree <= CREDIT_SPARE + XO_CTL_SPARE)
		return false;
	if (!credit_take(&p->credit)) {
		p->c.credit_stalls += !op->stalled;
		op->stalled = true;
		return false;
	}
	return true;
}

static void xo_send_credit_msg(struct xo_peer *p)
{
	unsigned char msg[sizeof(struct wire_hdr)];

	if (p->nsfree <= XO_CTL_SPARE)
		return;
	wire_hdr_init(msg, WIRE_CREDIT, 0, 0);
	if (xo_post_send(p, msg, sizeof(msg), XO_TX_MSG) == 0)
		p->c.credit_msgs++;
}

static void xo_dequeue(struct xo_peer *p)
{
	struct xo_op *op = p->head;

	p->head = op->next;
	if (!p->head)
		p->tail = NULL;
	p->queued--;
	free(op);
}

/* Control messages first, then queued operations in order while resources
 * allow; then owed credits, if nothing carried them. */
static void xo_try_send(struct xo_peer *p)
{
	struct xo_op *op;
	int ret;

	xo_send_ctl(p);
	while (p->state == XO_PEER_UP && !p->ctl_pending && (op = p->head)) {
		if (!xo_op_ready(p, op))
			break;
		if (op->kind == XO_OP_SEND)
			ret = xo_post_send(p, op->msg, op->msg_len,
					   op->raw ? XO_TX_RAW : XO_TX_MSG);
		else
			ret = xo_post_rdma(p, op);
		if (ret) {
			if (op->kind == XO_OP_SEND)
				p->credit.avail++;
			if (ret == -FI_EAGAIN)
				xo_refused(p);
			else
				xo_post_failed(p, op->kind == XO_OP_SEND ?
					       "fi_send" : "fi_read/writedata",
					       ret);
			return;
		}
		xo_dequeue(p);
	}
	if (p->state == XO_PEER_UP && credit_need_msg(&p->credit))
		xo_send_credit_msg(p);
}

static struct xo_op *xo_op_new(struct xo_peer *p, size_t len, int *err)
{
	struct xo_op *op;

	if (p->queued >= XO_QUEUE_MAX) {
		log_once(p->full_logged, LOG_WARN,
			 "transport: %u operations queued for peer %d; "
			 "refusing more (logged once per peer)", p->queued,
			 p->node);
		*err = -ENOBUFS;
		return NULL;
	}
	op = calloc(1, sizeof(*op) + len);
	if (!op) {
		*err = -ENOMEM;
		return NULL;
	}
	op->msg_len = len;
	return op;
}

static void xo_enqueue(struct xo_peer *p, struct xo_op *op)
{
	op->next = NULL;
	if (p->tail)
		p->tail->next = op;
	else
		p->head = op;
	p->tail = op;
	p->queued++;
	xo_try_send(p);
}

/* Nothing queued ahead, a credit and a slot free: post at once from a stack
 * copy, with no allocation.  False if the message must queue. */
static bool xo_send_now(struct xo_peer *p, unsigned type, uint64_t req_id,
			const void *body, size_t body_len, int *err)
{
	unsigned char buf[WIRE_MSG_MAX];
	size_t len;
	int ret;

	if (p->head || p->ctl_pending ||
	    p->nsfree <= CREDIT_SPARE + XO_CTL_SPARE ||
	    !credit_take(&p->credit))
		return false;
	len = wire_build(buf, sizeof(buf), type, req_id, body, body_len);
	ret = xo_post_send(p, buf, len, XO_TX_MSG);
	if (ret)
		p->credit.avail++;
	if (ret == -FI_EAGAIN)
		return false;
	if (ret)
		xo_post_failed(p, "fi_send", ret);
	*err = ret;
	return true;
}

static int xo_send_check(struct xport_ofi *x, int peer, size_t len)
{
	struct xo_peer *p = xo_peer_get(x, peer);

	if (!p)
		return -EINVAL;
	if (len > WIRE_MSG_MAX)
		return -EMSGSIZE;
	return p->state == XO_PEER_UP ? 0 : -ENOTCONN;
}

static int xo_send(struct xport *xp, int peer, unsigned type,
		   uint64_t req_id, const void *body, size_t body_len)
{
	struct xport_ofi *x = to_xo(xp);
	size_t len = sizeof(struct wire_hdr) + body_len;
	struct xo_op *op;
	int err = xo_send_check(x, peer, len);

	if (err)
		return err;
	if (xo_send_now(&x->peers[peer], type, req_id, body, body_len, &err))
		return err;
	op = xo_op_new(&x->peers[peer], len, &err);
	if (!op)
		return err;
	wire_build(op->msg, len, type, req_id, body, body_len);
	xo_enqueue(&x->peers[peer], op);
	return 0;
}

static int xo_send_raw(struct xport *xp, int peer, const void *msg,
		       size_t len)
{
	struct xport_ofi *x = to_xo(xp);
	struct xo_op *op;
	int err = xo_send_check(x, peer, len);

	if (err)
		return err;
	op = xo_op_new(&x->peers[peer], len, &err);
	if (!op)
		return err;
	memcpy(op->msg, msg, len);
	op->raw = true;
	xo_enqueue(&x->peers[peer], op);
	return 0;
}

static int xo_rdma_op(struct xport_ofi *x, enum xo_op_kind kind, int peer,
		      struct xport_mr *mr, size_t off, uint64_t raddr,
		      uint32_t rkey, uint32_t len, uint32_t imm,
		      uint64_t cookie)
{
	struct xo_peer *p = xo_peer_get(x, peer);
	struct xo_op *op;
	int err;

	if (!p || !mr || !mr->priv || off > mr->len || len > mr->len - off)
		return -EINVAL;
	if (kind == XO_OP_WRITE && len > XO_IMM_LEN_MAX)
		return -EMSGSIZE;
	if (p->state != XO_PEER_UP)
		return -ENOTCONN;
	op = xo_op_new(p, 0, &err);
	if (!op)
		return err;
	op->kind = kind;
	op->mr = mr;
	op->off = off;
	op->raddr = raddr;
	op->rkey = rkey;
	op->len = len;
	op->imm = imm;
	op->cookie = cookie;
	xo_enqueue(p, op);
	return 0;
}

static int xo_read(struct xport *xp, int peer, struct xport_mr *mr,
		   size_t off, uint64_t raddr, uint32_t rkey, uint32_t len,
		   uint64_t cookie)
{
	return xo_rdma_op(to_xo(xp), XO_OP_READ, peer, mr, off, raddr, rkey,
			  len, 0, cookie);
}

static int xo_write_imm(struct xport *xp, int peer, struct xport_mr *mr,
			size_t off, uint64_t raddr, uint32_t rkey,
			uint32_t len, uint32_t imm, uint64_t cookie)
{
	return xo_rdma_op(to_xo(xp), XO_OP_WRITE, peer, mr, off, raddr, rkey,
			  len, imm, cookie);
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */

static int xo_post_recv(struct xport_ofi *x, unsigned i)
{
	ssize_t ret;

	ret = fi_recv(x->ep, xo_rbuf(x, i), WIRE_MSG_MAX, xo_desc(x->rmr),
		      FI_ADDR_UNSPEC, &x->rctx[i]);
	if (ret)
		log_err("transport: fi_recv: %s (a receive buffer is lost, "
			"so peers could overrun us: giving up)",
			ofi_lf.strerror((int)-ret));
	return (int)ret;
}

static void xo_bad_msg(struct xo_peer *p, enum wire_error e)
{
	p->c.bad_msgs++;
	log_once(p->bad_logged[e], LOG_WARN,
		 "transport: dropped a message from peer %d: %s "
		 "(logged once per peer and kind)", p->node, wire_error_str(e));
}

static void xo_peer_up(struct xport_ofi *x, struct xo_peer *p)
{
	struct xport_event ev = {.type = XPORT_EV_CONNECTED, .peer = p->node};

	p->state = XO_PEER_UP;
	log_info("transport: connected to peer %d", p->node);
	xo_emit(x, &ev);
}

/* The control kind of a decoded message, or 0 for an ordinary one. */
static unsigned xo_ctl_kind(const struct wire_hdr *h)
{
	unsigned kind = (unsigned)(h->req_id & 0xffffffffu);

	if (h->type != WIRE_CREDIT ||
	    (h->req_id & ~0xffffffffull) != XO_CTL_MAGIC)
		return 0;
	return kind == XO_CTL_HELLO || kind == XO_CTL_ACK ||
	       kind == XO_CTL_BYE ? kind : 0;
}

static void xo_on_ctl(struct xport_ofi *x, struct xo_peer *p, unsigned kind)
{
	if (p->state == XO_PEER_DOWN)
		return;
	if (kind == XO_CTL_BYE) {
		xo_peer_down(p, "peer closed the connection");
		return;
	}
	/* Answer every HELLO: ours may have come before the peer knew us. */
	if (kind == XO_CTL_HELLO)
		p->ctl_pending |= XO_CTL_ACK;
	if (p->state == XO_PEER_GREETED)
		xo_peer_up(x, p);
}

/* A decoded ordinary message from p, which is up. */
static bool xo_deliver_msg(struct xport_ofi *x, struct xo_peer *p,
			   struct xport_event *ev)
{
	const struct wire_hdr *h = ev->msg.hdr;

	if (!credit_grant(&p->credit, h->credits)) {
		p->c.bad_msgs++;
		log_once(p->credit_logged, LOG_WARN,
			 "transport: peer %d returned more credits than it "
			 "was owed", p->node);
	}
	/* Sends to one peer arrive in order (FI_ORDER_SAS); a gap means a
	 * bug on one side, worth one loud line. */
	if (h->seq != p->recv_seq - 1)
		log_once(p->seq_logged, LOG_ERR,
			 "transport: peer %d message %u arrived when %u was "
			 "expected", p->node, h->seq, p->recv_seq - 1);
	if (h->type == WIRE_CREDIT)
		return false;
	xo_emit(x, ev);
	return true;
}

/* The len bytes at buf came from peer p.  Returns whether they spent one of
 * p's credits, which the buffer's repost then returns. */
static bool xo_take_msg(struct xport_ofi *x, struct xo_peer *p,
			const void *buf, size_t len)
{
	struct xport_event ev = {.type = XPORT_EV_MSG, .peer = p->node};
	enum wire_error e;
	unsigned kind;

	p->c.msgs_received++;
	p->c.bytes_received += len;
	e = len > WIRE_MSG_MAX ? WIRE_ELONG
			       : wire_decode(buf, len, WIRE_CH_NODE, &ev.msg);
	if (e == WIRE_OK && ev.msg.hdr->src != p->node)
		e = WIRE_ERANGE;
	if (e == WIRE_OK && (kind = xo_ctl_kind(ev.msg.hdr))) {
		const struct wire_hdr *h = ev.msg.hdr;
		uint64_t tag = xo_ctl_tag(&x->cfg, p->node, x->cfg.self, kind);

		if (h->seq != (uint32_t)tag ||
		    h->credits != (uint16_t)(tag >> 32)) {
			p->c.bad_msgs++;
			log_once(p->ctl_logged, LOG_WARN,
				 "transport: dropped a control message from "
				 "peer %d not signed with the cluster key "
				 "(DSM_CLUSTER_KEY)", p->node);
			return false;
		}
		xo_on_ctl(x, p, kind);
		return false;
	}
	p->recv_seq++; /* every other message counts, well-formed or not */
	/* Before its hello nothing can come; after a close, nothing counts. */
	if (p->state != XO_PEER_UP)
		return false;
	if (e != WIRE_OK) {
		xo_bad_msg(p, e);
		return true;
	}
	return xo_deliver_msg(x, p, &ev);
}

/* A message from a source we cannot name: a HELLO that came before our
 * connect_all() (its sender will hear ours and answer), or a stranger. */
static void xo_stray(struct xport_ofi *x)
{
	log_once(x->stray_logged, LOG_INFO,
		 "transport: dropped a message from an address not in the "
		 "address vector (a hello before connect_all is answered "
		 "later; logged once)");
}

static int xo_on_recv(struct xport_ofi *x, struct xo_ctx *c, size_t len,
		      fi_addr_t src)
{
	struct xo_peer *p = xo_peer_from(x, src);
	bool spent = false;
	int ret;

	if (p)
		spent = xo_take_msg(x, p, xo_rbuf(x, c->index), len);
	else
		xo_stray(x);
	/* The buffer is free again only now: the event's message pointed
	 * into it. */
	ret = xo_post_recv(x, c->index);
	if (ret || !p)
		return ret;
	if (spent && p->state == XO_PEER_UP)
		credit_reposted(&p->credit);
	xo_try_send(p);
	return 0;
}

/* A peer's WRITE with immediate landed: its node, length and imm are in the
 * CQ data.  The source the CQ gives is not looked at: ofi_rxm 1.17 leaves 0
 * there, not FI_ADDR_NOTAVAIL, whoever wrote.  A length it reports (0
 * there) must agree. */
static void xo_on_write_imm(struct xport_ofi *x,
			    const struct fi_cq_data_entry *e)
{
	unsigned node = (unsigned)(e->data >> XO_IMM_SRC_SHIFT);
	uint32_t len = (uint32_t)(e->data >> XO_IMM_LEN_SHIFT) & XO_IMM_LEN_MAX;
	struct xo_peer *p = xo_peer_get(x, (int)node);
	struct xport_event ev = {
		.type = XPORT_EV_WRITE_IMM, .peer = (int)node,
		.imm = (uint32_t)e->data, .len = len,
	};

	if (!p) {
		xo_stray(x);
		return;
	}
	if (e->len && e->len != len) {
		p->c.bad_msgs++;
		log_once(p->imm_logged, LOG_WARN,
			 "transport: dropped a WRITE with immediate from peer "
			 "%d: %zu bytes landed, %u announced", p->node, e->len,
			 len);
		return;
	}
	if (p->state == XO_PEER_UP)
		xo_emit(x, &ev);
}

static void xo_on_send_done(struct xo_ctx *c, const char *err)
{
	struct xo_peer *p = c->peer;
	char why[96];

	p->sfree[p->nsfree++] = c->index;
	if (err) {
		snprintf(why, sizeof(why), "send completion: %s", err);
		xo_peer_down(p, why);
	}
	xo_try_send(p);
}

static void xo_on_rdma_done(struct xport_ofi *x, struct xo_ctx *c,
			    int status)
{
	struct xo_peer *p = c->peer;
	struct xport_event ev = {
		.type = c->kind == XO_CTX_READ ? XPORT_EV_READ_DONE
					       : XPORT_EV_WRITE_DONE,
		.peer = p->node, .status = status, .cookie = c->cookie,
	};

	if (c->kind == XO_CTX_READ)
		p->reads--;
	else
		p->writes--;
	p->rdfree[p->nrdfree++] = c->index;
	xo_emit(x, &ev);
	xo_try_send(p);
}

static int xo_on_comp(struct xport_ofi *x, const struct fi_cq_data_entry *e,
		      fi_addr_t src)
{
	struct xo_ctx *c = e->op_context;

	if (e->flags & FI_REMOTE_WRITE) {
		xo_on_write_imm(x, e);
		return 0;
	}
	if (!c)
		return 0;
	switch (c->kind) {
	case XO_CTX_RECV:
		return xo_on_recv(x, c, e->len, src);
	case XO_CTX_SEND:
		xo_on_send_done(c, NULL);
		return 0;
	case XO_CTX_READ:
	case XO_CTX_WRITE:
		xo_on_rdma_done(x, c, 0);
		return 0;
	}
	return 0;
}

/* An operation failed.  A receive is posted again (what it held, say a
 * message longer than a buffer, is lost with its unknown sender); a send
 * takes its peer down; a READ or WRITE ends with the error as status. */
static int xo_on_comp_err(struct xport_ofi *x)
{
	struct fi_cq_err_entry e;
	struct xo_ctx *c;
	char detail[64];
	ssize_t n;

	memset(&e, 0, sizeof(e));
	n = fi_cq_readerr(x->cq, &e, 0);
	if (n == -FI_EAGAIN)
		return 0;
	if (n < 0)
		return xo_fail("fi_cq_readerr", (int)n);
	c = e.op_context;
	if (!c || c->kind == XO_CTX_RECV) {
		log_once(x->err_logged, LOG_WARN,
			 "transport: %s failed: %s (logged once)",
			 c ? "a receive" : "an operation of no context",
			 ofi_lf.strerror(e.err));
		return c ? xo_post_recv(x, c->index) : 0;
	}
	if (c->kind == XO_CTX_SEND) {
		snprintf(detail, sizeof(detail), "%s (%s)", ofi_lf.strerror(e.err),
			 fi_cq_strerror(x->cq, e.prov_errno, e.err_data, NULL,
					0));
		xo_on_send_done(c, detail);
	} else {
		xo_on_rdma_done(x, c, -e.err);
	}
	return 0;
}

/* Read the CQ until it is empty; returns the completions handled. */
static int xo_poll_cq(struct xport_ofi *x)
{
	struct fi_cq_data_entry e[XO_CQ_BATCH];
	fi_addr_t src[XO_CQ_BATCH];
	ssize_t n, i;
	int ret, total = 0;

	for (;;) {
		n = fi_cq_readfrom(x->cq, e, XO_CQ_BATCH, src);
		if (n == -FI_EAGAIN)
			return total;
		if (n == -FI_EAVAIL) {
			ret = xo_on_comp_err(x);
			if (ret)
				return ret;
			total++;
			continue;
		}
		if (n < 0)
			return xo_fail("fi_cq_readfrom", (int)n);
		for (i = 0; i < n; i++) {
			ret = xo_on_comp(x, &e[i], src[i]);
			if (ret)
				return ret;
		}
		total += (int)n;
	}
}

/* Poll the CQ; with poll_us, keep polling that long after the last
 * completion. */
static int xo_progress_cq(struct xport_ofi *x)
{
	uint64_t until;
	int n, total;

	total = xo_poll_cq(x);
	if (total < 0 || !x->cfg.poll_us)
		return total;
	until = clock_mono_us() + x->cfg.poll_us;
	while (clock_mono_us() < until) {
		n = xo_poll_cq(x);
		if (n < 0)
			return n;
		if (n > 0) {
			total += n;
			until = clock_mono_us() + x->cfg.poll_us;
		}
	}
	return total;
}

/* The CQ, then what the provider refused earlier (a hello while it was
 * connecting), then the peers that went down meanwhile. */
static int xo_work(struct xport_ofi *x)
{
	int i, n;

	n = xo_progress_cq(x);
	if (n < 0)
		return n;
	if (n > 0 && x->armed)
		x->cq_events++;
	x->armed = false;
	for (i = 0; i < x->cfg.nnodes; i++) {
		struct xo_peer *p = &x->peers[i];

		if (i != x->cfg.self && (p->ctl_pending || p->head))
			xo_try_send(p);
	}
	return n + xo_deliver_down(x);
}

static int xo_progress(struct xport *xp)
{
	struct xport_ofi *x = to_xo(xp);

	x->progress_calls++;
	return xo_work(x);
}

/* The owner is about to block on the wait fd.  fi_trywait says whether it
 * may: it makes the fd wake for new completions, or refuses because some
 * are there (or the provider has work in hand), which are then handled. */
static int xo_arm(struct xport *xp)
{
	struct xport_ofi *x = to_xo(xp);
	struct fid *fids[1] = {&x->cq->fid};
	int i, n, ret;

	n = xo_deliver_down(x);
	if (n)
		return n;
	for (i = 0; i < XO_TRYWAIT_TRIES; i++) {
		ret = fi_trywait(x->fabric, fids, 1);
		if (ret == 0) {
			x->armed = true;
			x->cq_arms++;
			return 0;
		}
		if (ret != -FI_EAGAIN)
			return xo_fail("fi_trywait", ret);
		n = xo_work(x);
		if (n)
			return n;
	}
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

static int xo_check_addrs(struct xport_ofi *x, const struct xport_addr *addrs)
{
	int i;

	for (i = 0; i < x->cfg.nnodes; i++) {
		if (i != x->cfg.self && (!addrs[i].ip || !addrs[i].port)) {
			log_err("transport: no address for peer %d", i);
			return -EINVAL;
		}
	}
	return 0;
}

/* Every node at the index of its number (FI_AV_TABLE fills indices in
 * order), ourselves included, from the address we know. */
static int xo_insert_av(struct xport_ofi *x, const struct xport_addr *addrs)
{
	struct sockaddr_in sin[WIRE_MAX_NODES] = {{0}};
	fi_addr_t fa[WIRE_MAX_NODES] = {0};
	size_t n = (size_t)x->cfg.nnodes, i;
	int ret;

	for (i = 0; i < n; i++) {
		const struct xport_addr *a =
			(int)i == x->cfg.self ? &x->self_addr : &addrs[i];

		sin[i] = (struct sockaddr_in){.sin_family = AF_INET,
					      .sin_port = a->port,
					      .sin_addr.s_addr = a->ip};
	}
	ret = fi_av_insert(x->av, sin, n, fa, 0, NULL);
	if (ret != (int)n) {
		log_err("transport: fi_av_insert took %d of %zu addresses: %s",
			ret, n, ret < 0 ? ofi_lf.strerror(-ret) : "refused");
		return ret < 0 ? ret : -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (fa[i] != i) {
			log_err("transport: the address vector put node %zu at "
				"index %llu", i, (unsigned long long)fa[i]);
			return -EPROTO;
		}
		x->peers[i].fi_addr = fa[i];
	}
	return 0;
}

static int xo_connect_all(struct xport *xp, const struct xport_addr *addrs)
{
	struct xport_ofi *x = to_xo(xp);
	int i, ret;

	if (x->connected)
		return -EALREADY;
	ret = xo_check_addrs(x, addrs);
	if (!ret)
		ret = xo_insert_av(x, addrs);
	if (ret)
		return ret;
	x->connected = true;
	for (i = 0; i < x->cfg.nnodes; i++) {
		struct xo_peer *p = &x->peers[i];

		if (i == x->cfg.self)
			continue;
		p->state = XO_PEER_GREETED;
		p->ctl_pending |= XO_CTL_HELLO;
		xo_try_send(p);
	}
	return 0;
}

static int xo_close_peer(struct xport *xp, int peer)
{
	struct xo_peer *p = xo_peer_get(to_xo(xp), peer);

	if (!p)
		return -EINVAL;
	if (p->state == XO_PEER_DOWN)
		return 0;
	/* A greeted peer may know us already: tell it. */
	if (p->state != XO_PEER_IDLE)
		p->ctl_pending |= XO_CTL_BYE;
	xo_peer_down(p, "closed by owner");
	xo_try_send(p);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Setup: provider                                                        */

static int xo_setup_info(struct xport_ofi *x)
{
	struct fi_info *info;
	int ret;

	ret = ofi_pick_info(x->provider, x->cfg.addr, "transport", &x->info);
	if (ret)
		return ret;
	info = x->info;
	x->mr_local = (info->domain_attr->mr_mode & FI_MR_LOCAL) ||
		      (info->mode & FI_LOCAL_MR);
	snprintf(x->devname, sizeof(x->devname), "ofi:%s",
		 info->fabric_attr->prov_name);
	x->nrecv = (unsigned)(x->cfg.nnodes - 1) *
		   (x->cfg.recv_depth + CREDIT_SPARE + XO_CTL_SPARE);
	if (x->nrecv > info->rx_attr->size) {
		log_err("transport: %s posts at most %zu receives; %u nodes of "
			"depth %u need %u", x->devname, info->rx_attr->size,
			x->cfg.nnodes, x->cfg.recv_depth, x->nrecv);
		return -ENOSPC;
	}
	log_info("transport: %s, registration mode %#x", x->devname,
		 (unsigned)info->domain_attr->mr_mode);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Setup: fabric objects                                                  */

static void xo_close(struct fid *fid, const char *what)
{
	int ret;

	if (!fid)
		return;
	ret = fi_close(fid);
	if (ret)
		log_warn("transport: closing the %s: %s", what,
			 ofi_lf.strerror(-ret));
}

static int xo_open_domain(struct xport_ofi *x)
{
	int ret;

	ret = ofi_lf.fabric(x->info->fabric_attr, &x->fabric, NULL);
	if (ret)
		return xo_fail("fi_fabric", ret);
	ret = fi_domain(x->fabric, x->info, &x->domain, NULL);
	if (ret) {
		xo_close(&x->fabric->fid, "fabric");
		x->fabric = NULL;
		return xo_fail("fi_domain", ret);
	}
	return 0;
}

static void xo_close_domain(struct xport_ofi *x)
{
	xo_close(x->domain ? &x->domain->fid : NULL, "domain");
	xo_close(x->fabric ? &x->fabric->fid : NULL, "fabric");
	x->domain = NULL;
	x->fabric = NULL;
}

/* Room for every completion that can be outstanding: receives, sends,
 * READs and WRITEs of ours, and the peers' WRITEs landing here. */
static size_t xo_cq_size(const struct xport_ofi *x)
{
	size_t per_peer = x->cfg.recv_depth + XO_SEND_EXTRA + XO_READS_MAX +
			  2 * XO_WRITES_MAX;

	return x->nrecv + per_peer * (size_t)(x->cfg.nnodes - 1) + 1;
}

static int xo_open_queues(struct xport_ofi *x)
{
	struct fi_av_attr av_attr = {
		.type = FI_AV_TABLE, .count = (size_t)x->cfg.nnodes,
	};
	struct fi_cq_attr cq_attr = {
		.size = xo_cq_size(x), .format = FI_CQ_FORMAT_DATA,
		.wait_obj = FI_WAIT_FD,
	};
	int ret;

	ret = fi_av_open(x->domain, &av_attr, &x->av, NULL);
	if (ret)
		return xo_fail("fi_av_open", ret);
	ret = fi_cq_open(x->domain, &cq_attr, &x->cq, NULL);
	if (ret) {
		xo_close(&x->av->fid, "address vector");
		x->av = NULL;
		return xo_fail("fi_cq_open (FI_WAIT_FD)", ret);
	}
	return 0;
}

static void xo_close_queues(struct xport_ofi *x)
{
	xo_close(x->cq ? &x->cq->fid : NULL, "completion queue");
	xo_close(x->av ? &x->av->fid : NULL, "address vector");
	x->cq = NULL;
	x->av = NULL;
}

/* ---------------------------------------------------------------------- */
/* Setup: buffers                                                         */

static int xo_reg_buf(struct xport_ofi *x, void *buf, size_t len,
		      uint64_t access, struct fid_mr **out)
{
	int ret;

	if (!x->mr_local)
		return 0;
	ret = fi_mr_reg(x->domain, buf, len, access, 0, x->next_key++, 0, out,
			NULL);
	return ret ? xo_fail("fi_mr_reg (message buffers)", ret) : 0;
}

static int xo_peer_alloc(struct xport_ofi *x, struct xo_peer *p)
{
	unsigned i;

	p->nsend = x->cfg.recv_depth + XO_SEND_EXTRA;
	p->sbuf = aligned_alloc(4096, (size_t)p->nsend * WIRE_MSG_MAX);
	p->sctx = calloc(p->nsend, sizeof(*p->sctx));
	p->sfree = calloc(p->nsend, sizeof(*p->sfree));
	if (!p->sbuf || !p->sctx || !p->sfree)
		return -ENOMEM;
	for (i = 0; i < p->nsend; i++) {
		p->sctx[i] = (struct xo_ctx){.kind = XO_CTX_SEND, .peer = p,
					     .index = i};
		p->sfree[i] = i;
	}
	p->nsfree = p->nsend;
	for (i = 0; i < XO_READS_MAX + XO_WRITES_MAX; i++) {
		p->rdctx[i] = (struct xo_ctx){.peer = p, .index = i};
		p->rdfree[i] = i;
	}
	p->nrdfree = XO_READS_MAX + XO_WRITES_MAX;
	credit_init(&p->credit, x->cfg.recv_depth);
	return xo_reg_buf(x, p->sbuf, (size_t)p->nsend * WIRE_MSG_MAX, FI_SEND,
			  &p->smr);
}

static void xo_peer_free(struct xo_peer *p)
{
	struct xo_op *op;

	while ((op = p->head)) {
		p->head = op->next;
		free(op);
	}
	xo_close(p->smr ? &p->smr->fid : NULL, "send buffers' registration");
	free(p->sbuf);
	free(p->sctx);
	free(p->sfree);
}

static int xo_alloc_recv(struct xport_ofi *x)
{
	unsigned i;

	if (!x->nrecv)
		return 0;
	x->rbuf = aligned_alloc(4096, (size_t)x->nrecv * WIRE_MSG_MAX);
	x->rctx = calloc(x->nrecv, sizeof(*x->rctx));
	if (!x->rbuf || !x->rctx)
		return -ENOMEM;
	for (i = 0; i < x->nrecv; i++)
		x->rctx[i] = (struct xo_ctx){.kind = XO_CTX_RECV, .index = i};
	return xo_reg_buf(x, x->rbuf, (size_t)x->nrecv * WIRE_MSG_MAX, FI_RECV,
			  &x->rmr);
}

static void xo_free_bufs(struct xport_ofi *x)
{
	int i;

	if (x->peers) {
		for (i = 0; i < x->cfg.nnodes; i++)
			if (i != x->cfg.self)
				xo_peer_free(&x->peers[i]);
		free(x->peers);
		x->peers = NULL;
	}
	xo_close(x->rmr ? &x->rmr->fid : NULL, "receive buffers' registration");
	free(x->rbuf);
	free(x->rctx);
	x->rmr = NULL;
	x->rbuf = NULL;
	x->rctx = NULL;
}

static int xo_alloc_bufs(struct xport_ofi *x)
{
	int i, ret;

	x->peers = calloc((size_t)x->cfg.nnodes, sizeof(*x->peers));
	if (!x->peers)
		return -ENOMEM;
	for (i = 0; i < x->cfg.nnodes; i++) {
		x->peers[i].x = x;
		x->peers[i].node = i;
		x->peers[i].fi_addr = FI_ADDR_NOTAVAIL;
	}
	ret = xo_alloc_recv(x);
	for (i = 0; i < x->cfg.nnodes && !ret; i++)
		if (i != x->cfg.self)
			ret = xo_peer_alloc(x, &x->peers[i]);
	if (ret) {
		if (ret == -ENOMEM)
			log_err("transport: allocating message buffers: %s",
				strerror(ENOMEM));
		xo_free_bufs(x);
	}
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Setup: the endpoint                                                    */

/* Our address, as the rendezvous carries it: tcp names an endpoint by the
 * sockaddr_in it listens on. */
static int xo_read_name(struct xport_ofi *x)
{
	struct sockaddr_in sin = {0};
	size_t len = sizeof(sin);
	int ret;

	ret = fi_getname(&x->ep->fid, &sin, &len);
	if (ret)
		return xo_fail("fi_getname", ret);
	if (len != sizeof(sin) || sin.sin_family != AF_INET) {
		log_err("transport: %s names its endpoint with %zu bytes of "
			"family %d, not an IPv4 address", x->devname, len,
			(int)sin.sin_family);
		return -EAFNOSUPPORT;
	}
	x->self_addr = (struct xport_addr){.ip = sin.sin_addr.s_addr,
					   .port = sin.sin_port};
	return 0;
}

static int xo_start_ep(struct xport_ofi *x)
{
	unsigned i;
	int ret;

	ret = fi_ep_bind(x->ep, &x->av->fid, 0);
	if (ret)
		return xo_fail("fi_ep_bind (address vector)", ret);
	ret = fi_ep_bind(x->ep, &x->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret)
		return xo_fail("fi_ep_bind (completion queue)", ret);
	ret = fi_enable(x->ep);
	if (ret)
		return xo_fail("fi_enable", ret);
	ret = fi_control(&x->cq->fid, FI_GETWAIT, &x->wait_fd);
	if (ret)
		return xo_fail("fi_control (FI_GETWAIT)", ret);
	ret = xo_read_name(x);
	for (i = 0; i < x->nrecv && !ret; i++)
		ret = xo_post_recv(x, i);
	return ret;
}

static int xo_open_ep(struct xport_ofi *x)
{
	int ret;

	ret = fi_endpoint(x->domain, x->info, &x->ep, NULL);
	if (ret)
		return xo_fail("fi_endpoint", ret);
	ret = xo_start_ep(x);
	if (ret) {
		xo_close(&x->ep->fid, "endpoint");
		x->ep = NULL;
	}
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Create and destroy                                                     */

static int xo_check_config(const struct xport_config *cfg, const char **addr)
{
	struct in_addr in;

	if (cfg->nnodes < 1 || (unsigned)cfg->nnodes > WIRE_MAX_NODES ||
	    cfg->self < 0 || cfg->self >= cfg->nnodes || !cfg->cb)
		return -EINVAL;
	if (cfg->recv_depth < 4 || cfg->recv_depth > 1024)
		return -EINVAL;
	if (cfg->provider && strlen(cfg->provider) >= 64) {
		log_err("transport: libfabric provider name too long");
		return -EINVAL;
	}
	*addr = cfg->addr ? cfg->addr : XO_DEFAULT_ADDR;
	if (inet_pton(AF_INET, *addr, &in) != 1) {
		log_err("transport: bad IPv4 address '%s'", *addr);
		return -EINVAL;
	}
	return 0;
}

static void xo_destroy(struct xport *xp)
{
	struct xport_ofi *x = to_xo(xp);

	/* The endpoint first: it still holds receives in our buffers. */
	xo_close(x->ep ? &x->ep->fid : NULL, "endpoint");
	xo_free_bufs(x);
	xo_close_queues(x);
	xo_close_domain(x);
	if (x->info)
		ofi_lf.freeinfo(x->info);
	free(x);
}

static int xo_create(const struct xport_config *cfg, struct xport **out)
{
	struct xport_ofi *x;
	const char *addr;
	int ret;

	ret = xo_check_config(cfg, &addr);
	if (ret)
		return ret;
	ret = ofi_lib_load("transport");
	if (ret)
		return ret;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xport_ofi_ops;
	x->cfg = *cfg;
	x->cfg.addr = addr;
	x->wait_fd = -1;
	x->next_key = 1;
	if (!x->cfg.connect_timeout_ms)
		x->cfg.connect_timeout_ms = XO_UNREACHABLE_MS;
	snprintf(x->provider, sizeof(x->provider), "%s",
		 cfg->provider ? cfg->provider : XO_DEFAULT_PROVIDER);
	ret = xo_setup_info(x);
	if (ret)
		goto out_free_info;
	ret = xo_open_domain(x);
	if (ret)
		goto out_free_info;
	ret = xo_open_queues(x);
	if (ret)
		goto out_close_domain;
	ret = xo_alloc_bufs(x);
	if (ret)
		goto out_close_queues;
	ret = xo_open_ep(x);
	if (ret)
		goto out_free_bufs;
	*out = &x->base;
	return 0;

out_free_bufs:
	xo_free_bufs(x);
out_close_queues:
	xo_close_queues(x);
out_close_domain:
	xo_close_domain(x);
out_free_info:
	if (x->info)
		ofi_lf.freeinfo(x->info);
	free(x);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* The rest of the interface                                              */

static int xo_fd(struct xport *xp) { return to_xo(xp)->wait_fd; }

static int xo_stats(struct xport *xp, struct xport_stats *out)
{
	struct xport_ofi *x = to_xo(xp);

	*out = (struct xport_stats){.progress_calls = x->progress_calls,
				    .cq_arms = x->cq_arms,
				    .cq_events = x->cq_events};
	return 0;
}

static int xo_local_addr(struct xport *xp, struct xport_addr *out)
{
	*out = to_xo(xp)->self_addr;
	return 0;
}

static const char *xo_device(struct xport *xp) { return to_xo(xp)->devname; }

static int xo_numa(struct xport *xp)
{
	(void)xp;
	return -1;
}

/* Registered as the source of a WRITE and the target of a READ here, and
 * for peers only what `access` says. */
static int xo_reg_mr(struct xport *xp, void *addr, size_t len,
		     unsigned access_in, struct xport_mr *out)
{
	struct xport_ofi *x = to_xo(xp);
	uint64_t access = FI_READ | FI_WRITE;
	struct fid_mr *mr;
	uint64_t key;
	int ret;

	if (access_in & ~(unsigned)(XPORT_MR_REMOTE_READ | XPORT_MR_REMOTE_WRITE))
		return -EINVAL;
	if (access_in & XPORT_MR_REMOTE_READ)
		access |= FI_REMOTE_READ;
	if (access_in & XPORT_MR_REMOTE_WRITE)
		access |= FI_REMOTE_WRITE;
	ret = fi_mr_reg(x->domain, addr, len, access, 0, x->next_key, 0, &mr,
			NULL);
	if (ret) {
		log_err("transport: fi_mr_reg of %zu bytes at %p: %s", len,
			addr, ofi_lf.strerror(-ret));
		return ret;
	}
	x->next_key++;
	key = fi_mr_key(mr);
	if (key > UINT32_MAX) {
		log_err("transport: %s gave a memory key of more than 32 bits",
			x->devname);
		xo_close(&mr->fid, "memory registration");
		return -EOVERFLOW;
	}
	*out = (struct xport_mr){.addr = addr, .len = len,
				 .lkey = (uint32_t)key, .rkey = (uint32_t)key,
				 .priv = mr};
	return 0;
}

static int xo_dereg_mr(struct xport *xp, struct xport_mr *mr)
{
	struct fid_mr *m;
	int ret;

	(void)xp;
	if (!mr || !mr->priv)
		return -EINVAL;
	m = mr->priv;
	ret = fi_close(&m->fid);
	if (ret)
		return ret;
	mr->priv = NULL;
	return 0;
}

static int xo_counters(struct xport *xp, int peer, struct wire_counters *out)
{
	struct xo_peer *p = xo_peer_get(to_xo(xp), peer);

	if (!p)
		return -EINVAL;
	*out = p->c;
	return 0;
}

const struct xport_ops xport_ofi_ops = {
	.name = "ofi",
	.create = xo_create,
	.destroy = xo_destroy,
	.fd = xo_fd,
	.progress = xo_progress,
	.arm = xo_arm,
	.stats = xo_stats,
	.local_addr = xo_local_addr,
	.device = xo_device,
	.numa_node = xo_numa,
	.connect_all = xo_connect_all,
	.send = xo_send,
	.send_raw = xo_send_raw,
	.reg_mr = xo_reg_mr,
	.dereg_mr = xo_dereg_mr,
	.read = xo_read,
	.write_imm = xo_write_imm,
	.close_peer = xo_close_peer,
	.counters = xo_counters,
};
