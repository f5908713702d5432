/* A scripted in-memory transport for unit tests of protocol logic: the
 * endpoints of a "fabric" live in one process, messages are queued in the
 * receiver's inbox and delivered by xport_progress(), RDMA READ and WRITE
 * are memcpy between registered buffers.  Tests can cut a direction
 * silently (a peer that stops talking), kill a node (its peers get
 * PEER_DOWN) and count what was sent.  Messages go through the same
 * encoder and checked decoder as the real transport; flow control is not
 * modelled (tests/test_credit.c covers it).
 *
 * Everything is single-threaded, like its users.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "xport.h"
#include "xport_mock.h"

#define MOCK_MRS 64

struct mock_ev {
	struct mock_ev *next;
	struct xport_event ev;
	size_t len;
	unsigned char msg[]; /* MSG: the encoded message */
};

struct mock_mr {
	bool used;
	unsigned access;     /* XPORT_MR_REMOTE_*: checked as an HCA would */
	struct xport_mr mr;
};

struct xport_mock {
	struct xport base;
	struct xport_config cfg;
	struct xport_mock_fabric *f;
	int evfd;
	bool joined, dead;
	struct mock_ev *head, *tail;
	struct mock_mr mrs[MOCK_MRS];
	uint32_t send_seq[WIRE_MAX_NODES];
	bool up[WIRE_MAX_NODES];
	struct wire_counters c[WIRE_MAX_NODES];
	unsigned long sent_by_type[WIRE_MAX_NODES][WIRE_TYPE_MAX];
};

struct xport_mock_fabric {
	int nnodes;
	struct xport_mock *ep[WIRE_MAX_NODES];
	bool cut[WIRE_MAX_NODES][WIRE_MAX_NODES]; /* [from][to] dropped */
	bool hold[WIRE_MAX_NODES][WIRE_MAX_NODES]; /* [from][to] kept back */
};

static inline struct xport_mock *to_mock(struct xport *x)
{
	return (struct xport_mock *)x;
}

struct xport_mock_fabric *xport_mock_fabric_new(int nnodes)
{
	struct xport_mock_fabric *f;

	if (nnodes < 1 || (unsigned)nnodes > WIRE_MAX_NODES)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f)
		f->nnodes = nnodes;
	return f;
}

void xport_mock_fabric_free(struct xport_mock_fabric *f)
{
	free(f);
}

/* Queue an event for endpoint m; wakes its fd. */
static int mock_push(struct xport_mock *m, const struct xport_event *ev,
		     const void *msg, size_t len)
{
	struct mock_ev *e = calloc(1, sizeof(*e) + len);
	uint64_t one = 1;

	if (!e)
		return -ENOMEM;
	e->ev = *ev;
	e->len = len;
	if (len)
		memcpy(e->msg, msg, len);
	if (m->tail)
		m->tail->next = e;
	else
		m->head = e;
	m->tail = e;
	if (write(m->evfd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int mock_create(const struct xport_config *cfg, struct xport **out)
{
	struct xport_mock_fabric *f = cfg->impl_arg;
	struct xport_mock *m;

	if (!f || cfg->self < 0 || cfg->self >= f->nnodes ||
	    cfg->nnodes != f->nnodes || !cfg->cb || f->ep[cfg->self])
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base.ops = &xport_mock_ops;
	m->cfg = *cfg;
	m->f = f;
	m->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->evfd < 0) {
		free(m);
		return -errno;
	}
	f->ep[cfg->self] = m;
	*out = &m->base;
	return 0;
}

static void mock_destroy(struct xport *x)
{
	struct xport_mock *m = to_mock(x);
	struct mock_ev *e;

	while ((e = m->head)) {
		m->head = e->next;
		free(e);
	}
	m->f->ep[m->cfg.self] = NULL;
	close(m->evfd);
	free(m);
}

static int mock_fd(struct xport *x) { return to_mock(x)->evfd; }

/* Whether e waits: events from a peer the test holds back stay, in order
 * (the ones from other peers overtake them, as on separate queue pairs). */
static bool mock_held(const struct xport_mock *m, const struct mock_ev *e)
{
	return e->ev.peer >= 0 && e->ev.peer < m->f->nnodes &&
	       m->f->hold[e->ev.peer][m->cfg.self];
}

/* Take e (whose predecessor is prev, or none) off m's inbox and hand it
 * to the callback; 1 if it was delivered. */
static int mock_hand(struct xport_mock *m, struct mock_ev *prev,
		     struct mock_ev *e)
{
	if (prev)
		prev->next = e->next;
	else
		m->head = e->next;
	if (m->tail == e)
		m->tail = prev;
	if (e->ev.type == XPORT_EV_MSG &&
	    wire_decode(e->msg, e->len, WIRE_CH_NODE, &e->ev.msg) != WIRE_OK) {
		m->c[e->ev.peer].bad_msgs++;
		free(e);
		return 0;
	}
	if (!m->dead)
		m->cfg.cb(m->cfg.cb_arg, &e->ev);
	free(e);
	return 1;
}

static int mock_progress(struct xport *x)
{
	struct xport_mock *m = to_mock(x);
	struct mock_ev *e, *prev = NULL;
	uint64_t v;
	int n = 0;

	if (read(m->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* What the callback queues here meanwhile is taken in this pass. */
	while ((e = prev ? prev->next : m->head)) {
		if (mock_held(m, e)) {
			prev = e;
			continue;
		}
		n += mock_hand(m, prev, e);
	}
	return n;
}

/* Nothing to arm; an inbox with something to deliver means "do not
 * block". */
static int mock_arm(struct xport *x)
{
	struct xport_mock *m = to_mock(x);

	for (struct mock_ev *e = m->head; e; e = e->next)
		if (!mock_held(m, e))
			return 1;
	return 0;
}

static int mock_stats(struct xport *x, struct xport_stats *out)
{
	(void)x;
	*out = (struct xport_stats){0};
	return -EOPNOTSUPP;
}

static int mock_local_addr(struct xport *x, struct xport_addr *out)
{
	*out = (struct xport_addr){.ip = 0x0100007f,
				   .port = (uint16_t)to_mock(x)->cfg.self};
	return 0;
}

static const char *mock_device(struct xport *x)
{
	(void)x;
	return "mock";
}

static int mock_numa_node(struct xport *x)
{
	(void)x;
	return -1;
}

/* Both ends up once both have asked to connect. */
static int mock_connect_all(struct xport *x, const struct xport_addr *addrs)
{
	struct xport_mock *m = to_mock(x);
	int i;

	(void)addrs;
	m->joined = true;
	for (i = 0; i < m->f->nnodes; i++) {
		struct xport_mock *p = m->f->ep[i];
		struct xport_event ev = {.type = XPORT_EV_CONNECTED};

		if (i == m->cfg.self || !p || !p->joined || p->dead)
			continue;
		m->up[i] = p->up[m->cfg.self] = true;
		ev.peer = i;
		mock_push(m, &ev, NULL, 0);
		ev.peer = m->cfg.self;
		mock_push(p, &ev, NULL, 0);
	}
	return 0;
}

static struct xport_mock *mock_peer(struct xport_mock *m, int peer)
{
	if (peer < 0 || peer >= m->f->nnodes || peer == m->cfg.self)
		return NULL;
	return m->f->ep[peer];
}

/* Deliver an encoded message from m to peer, unless the direction is cut. */
static int mock_deliver(struct xport_mock *m, int peer, void *msg, size_t len)
{
	struct xport_mock *p = mock_peer(m, peer);
	struct xport_event ev = {.type = XPORT_EV_MSG, .peer = m->cfg.self};
	struct wire_hdr h;

	if (!p || !m->up[peer])
		return -ENOTCONN;
	if (len > WIRE_MSG_MAX)
		return -EMSGSIZE;
	if (len >= sizeof(h)) {
		memcpy(&h, msg, sizeof(h));
		h.seq = m->send_seq[peer]++;
		memcpy(msg, &h, sizeof(h));
		if (h.type < WIRE_TYPE_MAX)
			m->sent_by_type[peer][h.type]++;
	}
	m->c[peer].msgs_sent++;
	m->c[peer].bytes_sent += len;
	if (m->f->cut[m->cfg.self][peer] || p->dead)
		return 0; /* lost silently, as to a stopped process */
	p->c[m->cfg.self].msgs_received++;
	p->c[m->cfg.self].bytes_received += len;
	return mock_push(p, &ev, msg, len);
}

static int mock_send(struct xport *x, int peer, unsigned type, uint64_t req_id,
		     const void *body, size_t body_len)
{
	struct xport_mock *m = to_mock(x);
	unsigned char buf[WIRE_MSG_MAX];
	struct wire_hdr h;
	size_t len;

	len = wire_build(buf, sizeof(buf), type, req_id, body, body_len);
	if (!len)
		return -EMSGSIZE;
	memcpy(&h, buf, sizeof(h));
	h.src = (uint16_t)m->cfg.self;
	memcpy(buf, &h, sizeof(h));
	return mock_deliver(m, peer, buf, len);
}

static int mock_send_raw(struct xport *x, int peer, const void *msg,
			 size_t len)
{
	unsigned char buf[WIRE_MSG_MAX];

	if (len > sizeof(buf))
		return -EMSGSIZE;
	memcpy(buf, msg, len);
	return mock_deliver(to_mock(x), peer, buf, len);
}

static int mock_reg_mr(struct xport *x, void *addr, size_t len,
		       unsigned access, struct xport_mr *out)
{
	struct xport_mock *m = to_mock(x);

	if (access & ~(unsigned)(XPORT_MR_REMOTE_READ | XPORT_MR_REMOTE_WRITE))
		return -EINVAL;
	for (unsigned i = 0; i < MOCK_MRS; i++) {
		if (m->mrs[i].used)
			continue;
		m->mrs[i].used = true;
		m->mrs[i].access = access;
		m->mrs[i].mr = (struct xport_mr){.addr = addr, .len = len,
						 .lkey = i + 1, .rkey = i + 1,
						 .priv = &m->mrs[i]};
		*out = m->mrs[i].mr;
		return 0;
	}
	return -ENOMEM;
}

static int mock_dereg_mr(struct xport *x, struct xport_mr *mr)
{
	struct mock_mr *mm;

	(void)x;
	if (!mr || !mr->priv)
		return -EINVAL;
	mm = mr->priv;
	mm->used = false;
	mr->priv = NULL;
	return 0;
}

/* The remote bytes [raddr, raddr+len) inside a buffer registered with rkey
 * for `access`, or NULL: what a real HCA would answer with a remote access
 * error. */
static unsigned char *mock_remote(struct xport_mock *p, uint64_t raddr,
				  uint32_t rkey, uint32_t len, unsigned access)
{
	struct mock_mr *mm;
	uintptr_t base;

	if (rkey == 0 || rkey > MOCK_MRS)
		return NULL;
	mm = &p->mrs[rkey - 1];
	base = (uintptr_t)mm->mr.addr;
	if (!mm->used || (mm->access & access) != access || raddr < base ||
	    raddr - base > mm->mr.len ||
	    len > mm->mr.len - (raddr - base))
		return NULL;
	return (unsigned char *)(uintptr_t)raddr;
}

static int mock_rdma(struct xport_mock *m, bool write, int peer,
		     struct xport_mr *mr, size_t off, uint64_t raddr,
		     uint32_t rkey, uint32_t len, uint32_t imm, uint64_t cookie)
{
	struct xport_mock *p = mock_peer(m, peer);
	struct xport_event done = {
		.type = write ? XPORT_EV_WRITE_DONE : XPORT_EV_READ_DONE,
		.peer = peer, .cookie = cookie,
	};
	unsigned char *remote;

	if (!p || !mr || off > mr->len || len > mr->len - off)
		return -EINVAL;
	if (!m->up[peer])
		return -ENOTCONN;
	remote = mock_remote(p, raddr, rkey, len,
			     write ? XPORT_MR_REMOTE_WRITE : XPORT_MR_REMOTE_READ);
	if (!remote || p->dead || m->f->cut[m->cfg.self][peer]) {
		done.status = -EIO;
		return mock_push(m, &done, NULL, 0);
	}
	if (write) {
		struct xport_event imm_ev = {.type = XPORT_EV_WRITE_IMM,
					     .peer = m->cfg.self, .imm = imm,
					     .len = len};

		memcpy(remote, (unsigned char *)mr->addr + off, len);
		m->c[peer].rdma_writes++;
		mock_push(p, &imm_ev, NULL, 0);
	} else {
		memcpy((unsigned char *)mr->addr + off, remote, len);
		m->c[peer].rdma_reads++;
	}
	m->c[peer].rdma_bytes += len;
	return mock_push(m, &done, NULL, 0);
}

static int mock_read(struct xport *x, int peer, struct xport_mr *mr,
		     size_t off, uint64_t raddr, uint32_t rkey, uint32_t len,
		     uint64_t cookie)
{
	return mock_rdma(to_mock(x), false, peer, mr, off, raddr, rkey, len, 0,
			 cookie);
}

static int mock_write_imm(struct xport *x, int peer, struct xport_mr *mr,
			  size_t off, uint64_t raddr, uint32_t rkey,
			  uint32_t len, uint32_t imm, uint64_t cookie)
{
	return mock_rdma(to_mock(x), true, peer, mr, off, raddr, rkey, len,
			 imm, cookie);
}

static int mock_close_peer(struct xport *x, int peer)
{
	struct xport_mock *m = to_mock(x);

	if (!mock_peer(m, peer))
		return -EINVAL;
	m->up[peer] = false;
	return 0;
}

static int mock_counters(struct xport *x, int peer, struct wire_counters *out)
{
	struct xport_mock *m = to_mock(x);

	if (!mock_peer(m, peer) && peer != m->cfg.self)
		return -EINVAL;
	*out = m->c[peer];
	return 0;
}

const struct xport_ops xport_mock_ops = {
	.name = "mock",
	.create = mock_create,
	.destroy = mock_destroy,
	.fd = mock_fd,
	.progress = mock_progress,
	.arm = mock_arm,
	.stats = mock_stats,
	.local_addr = mock_local_addr,
	.device = mock_device,
	.numa_node = mock_numa_node,
	.connect_all = mock_connect_all,
	.send = mock_send,
	.send_raw = mock_send_raw,
	.reg_mr = mock_reg_mr,
	.dereg_mr = mock_dereg_mr,
	.read = mock_read,
	.write_imm = mock_write_imm,
	.close_peer = mock_close_peer,
	.counters = mock_counters,
};

/* ---------------------------------------------------------------------- */
/* Scripting                                                              */

void xport_mock_cut(struct xport_mock_fabric *f, int from, int to, bool cut)
{
	if (from >= 0 && from < f->nnodes && to >= 0 && to < f->nnodes)
		f->cut[from][to] = cut;
}

int xport_mock_kill(struct xport_mock_fabric *f, int node)
{
	struct xport_mock *dead;
	int i;

	if (node < 0 || node >= f->nnodes || !(dead = f->ep[node]))
		return -EINVAL;
	dead->dead = true;
	for (i = 0; i < f->nnodes; i++) {
		struct xport_mock *p = f->ep[i];
		struct xport_event ev = {.type = XPORT_EV_PEER_DOWN,
					 .peer = node,
					 .reason = "killed by the test"};

		if (i == node || !p || !p->up[node])
			continue;
		p->up[node] = false;
		mock_push(p, &ev, NULL, 0);
	}
	return 0;
}

void xport_mock_hold(struct xport_mock_fabric *f, int from, int to, bool hold)
{
	if (from >= 0 && from < f->nnodes && to >= 0 && to < f->nnodes)
		f->hold[from][to] = hold;
}

unsigned xport_mock_pending(struct xport *x, int from, unsigned type)
{
	struct xport_mock *m = to_mock(x);
	unsigned n = 0;

	for (struct mock_ev *e = m->head; e; e = e->next) {
		struct wire_hdr h;

		if (e->ev.peer != from)
			continue;
		if (type) {
			if (e->ev.type != XPORT_EV_MSG || e->len < sizeof(h))
				continue;
			memcpy(&h, e->msg, sizeof(h));
			if (h.type != type)
				continue;
		}
		n++;
	}
	return n;
}

int xport_mock_step_from(struct xport *x, int from)
{
	struct xport_mock *m = to_mock(x);
	struct mock_ev *e, *prev = NULL;

	for (e = m->head; e; prev = e, e = e->next)
		if (e->ev.peer == from)
			return mock_hand(m, prev, e) ? 1 : 0;
	return -ENOENT;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t xport_mock_inbox_hash(struct xport *x)
{
	struct xport_mock *m = to_mock(x);
	uint64_t h = 0xcbf29ce484222325ull;

	for (struct mock_ev *e = m->head; e; e = e->next) {
		struct wire_hdr hdr;

		h = fnv(h, &e->ev.type, sizeof(e->ev.type));
		h = fnv(h, &e->ev.peer, sizeof(e->ev.peer));
		h = fnv(h, &e->ev.imm, sizeof(e->ev.imm));
		if (e->len >= sizeof(hdr)) {
			memcpy(&hdr, e->msg, sizeof(hdr));
			hdr.seq = 0; /* the queue pair's count, not content */
			h = fnv(h, &hdr, sizeof(hdr));
			h = fnv(h, e->msg + sizeof(hdr), e->len - sizeof(hdr));
		}
	}
	return h;
}

unsigned long xport_mock_sent(struct xport *x, int peer, unsigned type)
{
	struct xport_mock *m = to_mock(x);

	if (peer < 0 || peer >= m->f->nnodes || type >= WIRE_TYPE_MAX)
		return 0;
	return m->sent_by_type[peer][type];
}
