/* The self-check behind `dsmctl check`: this node (the checker) proves each
 * peer's connection end to end.  For every peer and every RDMA size asked:
 *
 *   checker                                peer
 *   BEGIN{session, count, len, seed}  -->  fill scratch with pattern(seed+1)
 *                                     <--  READY{addr, rkey}
 *   count x DATA{index, payload}      -->  check order and bytes
 *   RDMA READ of the scratch          <--  (one-sided)
 *     check pattern(seed+1)
 *   RDMA WRITE+imm pattern(seed+2)    -->  check the scratch
 *                                     <--  DATA_DONE{received, errors}
 *                                     <--  WRITE_DONE{errors}
 *   END                               -->
 *
 * The DATA burst (`count` may be many times the receive depth) exercises
 * flow control; READ and WRITE are compared byte for byte.  Every peer runs
 * in parallel; a peer that dies fails its entry, not the whole check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dsmd.h"
#include "log.h"

#define CHECK_TIMEOUT_MS  600000u
/* DATA a checker keeps unanswered per peer: eight times the default
 * receive credits keeps the pipe full, and bounds what waits in the
 * transport whatever the count.  The checked node answers every
 * CHECK_WINDOW / 4. */
#define CHECK_WINDOW      256u
#define CHECK_RDMA_MAX    (16u << 20)
#define CHECK_PAYLOAD_MAX (WIRE_MSG_MAX - sizeof(struct wire_hdr) - \
			   sizeof(struct wire_check_data))

enum out_state { OUT_IDLE, OUT_BEGIN, OUT_RUN, OUT_DONE };

/* Checker side, one per peer. */
struct check_out {
	enum out_state state;
	uint32_t session;
	unsigned round;       /* index into check_req.sizes */
	uint64_t seed;
	void *buf;
	struct xport_mr mr;
	uint64_t raddr;
	uint32_t rkey;
	bool read_done, write_done, data_done;
	uint32_t sent, acked; /* DATA sent, and answered by PROGRESS */
	bool read_posted;
	bool skip;            /* dead peer left out (WIRE_CHECK_LIVE_ONLY) */
	uint64_t t0_us;
	struct wire_check_peer *results; /* [nsizes] */
};

/* The module's state (d->check). */
struct check_state {
	struct check_out *out;  /* [nnodes], NULL when no check runs */
	struct check_in *in;    /* [nnodes] */
	struct client *client;  /* who asked, NULL once gone */
	uint64_t deadline_ms;
	uint32_t session;
	uint64_t req_id;
	struct wire_ipc_check req;
};

/* Peer side, one per checker. */
struct check_in {
	uint32_t session;
	bool active;
	uint32_t count, payload_len, rdma_len, next, errors;
	uint64_t seed, first_bad;
	void *buf;
	size_t cap;
	struct xport_mr mr;
};

static uint64_t data_seed(uint64_t seed, uint32_t index)
{
	return seed * 31u + 1000u + index;
}

static int ensure_in(struct dsmd *d)
{
	if (!d->check->in)
		d->check->in = calloc((size_t)d->cfg.nnodes, sizeof(*d->check->in));
	return d->check->in ? 0 : -ENOMEM;
}

/* Registered buffer of at least len bytes, reused across sessions. */
static int scratch(struct dsmd *d, void **buf, size_t *cap,
		   struct xport_mr *mr, size_t len, unsigned access)
{
	int ret;

	if (*buf && *cap >= len)
		return 0;
	if (*buf) {
		xport_dereg_mr(d->x, mr);
		free(*buf);
		*buf = NULL;
	}
	*buf = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!*buf)
		return -ENOMEM;
	ret = xport_reg_mr(d->x, *buf, len, access, mr);
	if (ret) {
		free(*buf);
		*buf = NULL;
		return ret;
	}
	*cap = len;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Checker side                                                           */

static void out_finish_all(struct dsmd *d);

static struct wire_check_peer *out_result(struct dsmd *d, int peer)
{
	return &d->check->out[peer].results[d->check->out[peer].round];
}

static void out_begin_round(struct dsmd *d, int peer)
{
	struct check_out *o = &d->check->out[peer];
	struct wire_check_begin b = {
		.session = o->session,
		.count = o->round == 0 ? d->check->req.count : 0,
		.payload_len = d->check->req.payload_len,
		.rdma_len = d->check->req.sizes[o->round],
		.seed = o->seed,
	};
	struct wire_check_peer *r = out_result(d, peer);
	size_t cap = o->mr.len;
	int ret;

	r->node = (uint32_t)peer;
	r->rdma_len = b.rdma_len;
	o->read_done = o->write_done = o->data_done = false;
	o->t0_us = dsmd_now_us(d);
	/* The checker's buffer: the destination of its READ and the source
	 * of its WRITE, nothing for peers. */
	ret = scratch(d, &o->buf, &cap, &o->mr, b.rdma_len, XPORT_MR_LOCAL);
	if (ret == 0)
		ret = xport_send(d->x, peer, WIRE_CHECK_BEGIN, o->session, &b,
				 sizeof(b));
	if (ret) {
		r->status = ret;
		o->state = OUT_DONE;
		return;
	}
	o->state = OUT_BEGIN;
}

/* The session is over for the peer, which lets its scratch buffer go. */
static void out_send_end(struct dsmd *d, int peer)
{
	struct check_out *o = &d->check->out[peer];
	struct wire_check_end e = {.session = o->session};

	xport_send(d->x, peer, WIRE_CHECK_END, o->session, &e, sizeof(e));
}

static void out_round_done(struct dsmd *d, int peer)
{
	struct check_out *o = &d->check->out[peer];

	if (!o->read_done || !o->write_done || !o->data_done)
		return;
	out_result(d, peer)->elapsed_us = dsmd_now_us(d) - o->t0_us;
	out_send_end(d, peer);
	if (o->round + 1 < d->check->req.nsizes) {
		o->round++;
		o->session = ++d->check->session;
		o->seed += 7;
		out_begin_round(d, peer);
	} else {
		o->state = OUT_DONE;
	}
	out_finish_all(d);
}

static void out_fail(struct dsmd *d, int peer, int status)
{
	struct check_out *o = &d->check->out[peer];

	if (o->state == OUT_DONE || o->state == OUT_IDLE)
		return;
	if (!out_result(d, peer)->status)
		out_result(d, peer)->status = status;
	o->state = OUT_DONE;
	if (status != -ECONNRESET) /* the link still works */
		out_send_end(d, peer);
	out_finish_all(d);
}

/* Send DATA while fewer than CHECK_WINDOW are unanswered; after the last,
 * the READ.  The window, not `count`, bounds what waits in the transport:
 * a check of 10^7 messages once queued them all (about 40 GB per peer). */
static void out_send_more(struct dsmd *d, int peer)
{
	struct check_out *o = &d->check->out[peer];
	uint32_t count = o->round == 0 ? d->check->req.count : 0;
	size_t plen = d->check->req.payload_len;
	unsigned char msg[WIRE_MSG_MAX];
	struct wire_check_data *h = (void *)msg;
	int ret = 0;

	while (ret == 0 && o->sent < count &&
	       o->sent - o->acked < CHECK_WINDOW) {
		*h = (struct wire_check_data){.session = o->session,
					      .index = o->sent,
					      .payload_len = (uint32_t)plen};
		wire_pattern_fill(msg + sizeof(*h), plen,
				  data_seed(o->seed, o->sent));
		ret = xport_send(d->x, peer, WIRE_CHECK_DATA, o->session, msg,
				 sizeof(*h) + plen);
		o->sent += ret == 0;
	}
	if (ret == 0 && o->sent == count && !o->read_posted) {
		o->read_posted = true;
		ret = xport_read(d->x, peer, &o->mr, 0, o->raddr, o->rkey,
				 d->check->req.sizes[o->round], o->session);
	}
	if (ret)
		out_fail(d, peer, ret);
}

static void out_on_ready(struct dsmd *d, int peer,
			 const struct wire_check_ready *r)
{
	struct check_out *o = &d->check->out[peer];
	uint32_t len = d->check->req.sizes[o->round];

	if (r->status || r->len < len) {
		out_fail(d, peer, r->status ? r->status : -EPROTO);
		return;
	}
	o->state = OUT_RUN;
	o->raddr = r->addr;
	o->rkey = r->rkey;
	o->sent = o->acked = 0;
	o->read_posted = false;
	out_send_more(d, peer);
}

/* PROGRESS: received so far, at most what was sent. */
static void out_on_progress(struct dsmd *d, int peer,
			    const struct wire_check_result *res)
{
	struct check_out *o = &d->check->out[peer];

	if (res->received > o->sent || res->received < o->acked) {
		d->bad_msgs++;
		return;
	}
	o->acked = res->received;
	out_send_more(d, peer);
}

static void out_on_read(struct dsmd *d, int peer, int status)
{
	struct check_out *o = &d->check->out[peer];
	uint32_t len = d->check->req.sizes[o->round];
	struct wire_check_peer *r = out_result(d, peer);
	int ret;

	if (status) {
		out_fail(d, peer, status);
		return;
	}
	r->read_ok = wire_pattern_check(o->buf, len, o->seed + 1) < 0;
	if (!r->read_ok)
		r->status = -EILSEQ;
	o->read_done = true;
	wire_pattern_fill(o->buf, len, o->seed + 2);
	ret = xport_write_imm(d->x, peer, &o->mr, 0, o->raddr, o->rkey, len,
			      o->session, o->session);
	if (ret)
		out_fail(d, peer, ret);
}

static void out_on_result(struct dsmd *d, int peer, unsigned type,
			  const struct wire_check_result *res)
{
	struct check_out *o = &d->check->out[peer];
	struct wire_check_peer *r = out_result(d, peer);
	uint32_t count = o->round == 0 ? d->check->req.count : 0;

	if (type == WIRE_CHECK_DATA_DONE) {
		r->msgs_ok = res->errors ? 0 : res->received;
		if (res->errors || res->received != count || res->status) {
			log_warn("check: node %d saw %u of %u messages, %u "
				 "bad (first at %llu)", peer, res->received,
				 count, res->errors,
				 (unsigned long long)res->first_bad);
			r->status = res->status ? res->status : -EILSEQ;
		}
		o->data_done = true;
	} else {
		r->write_ok = !res->errors && !res->status;
		if (!r->write_ok) {
			log_warn("check: node %d found our RDMA WRITE wrong at "
				 "byte %llu", peer,
				 (unsigned long long)res->first_bad);
			r->status = res->status ? res->status : -EILSEQ;
		}
		o->write_done = true;
	}
	out_round_done(d, peer);
}

/* Reply to the client once every peer is done. */
static void out_finish_all(struct dsmd *d)
{
	unsigned nsizes = d->check->req.nsizes, n = 0;
	struct wire_check_reply *rep;
	struct wire_check_peer *e;
	size_t len;
	int i;

	if (!d->check->out)
		return;
	for (i = 0; i < d->cfg.nnodes; i++)
		if (i != d->cfg.node && d->check->out[i].state != OUT_DONE)
			return;
	len = sizeof(*rep) + (size_t)d->cfg.nnodes * nsizes * sizeof(*e);
	rep = calloc(1, len);
	if (rep) {
		rep->node = (uint32_t)d->cfg.node;
		e = (struct wire_check_peer *)(rep + 1);
		for (i = 0; i < d->cfg.nnodes; i++) {
			if (i == d->cfg.node || d->check->out[i].skip)
				continue;
			memcpy(&e[n], d->check->out[i].results, nsizes * sizeof(*e));
			n += nsizes;
		}
		rep->npeers = n;
		len = sizeof(*rep) + n * sizeof(*e);
		if (d->check->client)
			client_reply(d->check->client, WIRE_IPC_CHECK_REPLY,
				  d->check->req_id, rep, len);
		free(rep);
	}
	d->check->client = NULL;
	for (i = 0; i < d->cfg.nnodes; i++) {
		free(d->check->out[i].results);
		if (d->check->out[i].buf) {
			xport_dereg_mr(d->x, &d->check->out[i].mr);
			free(d->check->out[i].buf);
		}
	}
	free(d->check->out);
	d->check->out = NULL;
}

static int check_validate(const struct dsmd *d,
			  const struct wire_ipc_check *req)
{
	unsigned i;

	if (!d->formed)
		return -EAGAIN;
	if (req->nsizes == 0 || req->nsizes > 8 ||
	    (req->flags & ~WIRE_CHECK_LIVE_ONLY) ||
	    req->payload_len > CHECK_PAYLOAD_MAX || req->count > 10000000)
		return -EINVAL;
	for (i = 0; i < req->nsizes; i++)
		if (req->sizes[i] == 0 || req->sizes[i] > CHECK_RDMA_MAX)
			return -EINVAL;
	return 0;
}

static int check_start(struct dsmd *d, struct client *c, uint64_t req_id,
		       const struct wire_ipc_check *req)
{
	int i, ret;

	if (d->check->out)
		return -EBUSY;
	ret = check_validate(d, req);
	if (ret)
		return ret;
	d->check->out = calloc((size_t)d->cfg.nnodes, sizeof(*d->check->out));
	if (!d->check->out)
		return -ENOMEM;
	d->check->req = *req;
	d->check->client = c;
	d->check->req_id = req_id;
	d->check->deadline_ms = dsmd_now_ms(d) + CHECK_TIMEOUT_MS;
	for (i = 0; i < d->cfg.nnodes; i++) {
		struct check_out *o = &d->check->out[i];

		o->results = calloc(req->nsizes, sizeof(*o->results));
		if (!o->results) {
			while (i-- > 0)
				free(d->check->out[i].results);
			free(d->check->out);
			d->check->out = NULL;
			return -ENOMEM;
		}
		o->seed = ((uint64_t)d->cfg.node << 32) ^ ((uint64_t)i << 16) ^
			  dsmd_now_us(d);
		o->session = ++d->check->session;
		o->state = OUT_IDLE;
	}
	log_info("check: %u messages of %u bytes and %u RDMA size(s) with "
		 "every peer", req->count, req->payload_len, req->nsizes);
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node) {
			d->check->out[i].state = OUT_DONE;
		} else if (!node_alive(d, i)) {
			d->check->out[i].results[0].node = (uint32_t)i;
			d->check->out[i].results[0].status = -EHOSTDOWN;
			d->check->out[i].state = OUT_DONE;
			d->check->out[i].skip = req->flags & WIRE_CHECK_LIVE_ONLY;
		} else {
			out_begin_round(d, i);
		}
	}
	out_finish_all(d);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Peer side                                                              */

/* The session is over: its scratch buffer, which peers could READ and
 * WRITE, is registered no longer (a buffer open to the network only while
 * a check runs). */
static void in_release(struct dsmd *d, int peer)
{
	struct check_in *in = &d->check->in[peer];

	in->active = false;
	if (in->buf) {
		xport_dereg_mr(d->x, &in->mr);
		free(in->buf);
		in->buf = NULL;
		in->cap = 0;
	}
}

static void in_send_result(struct dsmd *d, int peer, unsigned type,
			   uint32_t received, uint32_t errors, int status,
			   uint64_t first_bad)
{
	struct check_in *in = &d->check->in[peer];
	struct wire_check_result r = {
		.session = in->session, .received = received,
		.errors = errors, .status = status, .first_bad = first_bad,
	};

	xport_send(d->x, peer, type, in->session, &r, sizeof(r));
}

static void in_on_begin(struct dsmd *d, int peer,
			const struct wire_check_begin *b)
{
	struct check_in *in = &d->check->in[peer];
	struct wire_check_ready r = {.session = b->session};
	int ret = 0;

	if (b->rdma_len == 0 || b->rdma_len > CHECK_RDMA_MAX ||
	    b->payload_len > CHECK_PAYLOAD_MAX)
		ret = -EINVAL;
	if (ret == 0)
		ret = scratch(d, &in->buf, &in->cap, &in->mr, b->rdma_len,
			      XPORT_MR_REMOTE_READ | XPORT_MR_REMOTE_WRITE);
	*in = (struct check_in){
		.session = b->session, .active = ret == 0, .count = b->count,
		.payload_len = b->payload_len, .rdma_len = b->rdma_len,
		.seed = b->seed, .first_bad = ~0ull, .buf = in->buf,
		.cap = in->cap, .mr = in->mr,
	};
	if (ret == 0) {
		wire_pattern_fill(in->buf, b->rdma_len, b->seed + 1);
		r.addr = (uintptr_t)in->buf;
		r.rkey = in->mr.rkey;
		r.len = b->rdma_len;
	}
	r.status = ret;
	xport_send(d->x, peer, WIRE_CHECK_READY, b->session, &r, sizeof(r));
	if (ret == 0 && in->count == 0)
		in_send_result(d, peer, WIRE_CHECK_DATA_DONE, 0, 0, 0, ~0ull);
}

static void in_on_data(struct dsmd *d, int peer, const struct wire_msg *m)
{
	struct check_in *in = &d->check->in[peer];
	struct wire_check_data h;
	const unsigned char *payload = (const unsigned char *)m->body +
				       sizeof(h);

	memcpy(&h, m->body, sizeof(h));
	if (!in->active || h.session != in->session || in->next >= in->count)
		return;
	if (h.index != in->next || h.payload_len != in->payload_len ||
	    wire_pattern_check(payload, h.payload_len,
			       data_seed(in->seed, h.index)) >= 0) {
		if (!in->errors)
			in->first_bad = in->next;
		in->errors++;
	}
	in->next++;
	if (in->next == in->count)
		in_send_result(d, peer, WIRE_CHECK_DATA_DONE, in->next,
			       in->errors, 0, in->first_bad);
	else if (in->next % (CHECK_WINDOW / 4) == 0)
		in_send_result(d, peer, WIRE_CHECK_PROGRESS, in->next,
			       in->errors, 0, in->first_bad);
}

static void in_on_write(struct dsmd *d, const struct xport_event *ev)
{
	struct check_in *in = &d->check->in[ev->peer];
	long bad;

	if (!in->active || ev->imm != in->session)
		return;
	bad = ev->len == in->rdma_len
		      ? wire_pattern_check(in->buf, in->rdma_len, in->seed + 2)
		      : 0;
	in_send_result(d, ev->peer, WIRE_CHECK_WRITE_DONE, 0, bad >= 0, 0,
		       bad >= 0 ? (uint64_t)bad : ~0ull);
}

/* ---------------------------------------------------------------------- */
/* Dispatch                                                               */

static void check_on_msg(struct dsmd *d, int peer, const struct wire_msg *m)
{
	struct check_out *o = d->check->out ? &d->check->out[peer] : NULL;
	uint32_t session;

	if (ensure_in(d))
		return;
	memcpy(&session, m->body, sizeof(session));
	switch (m->hdr->type) {
	case WIRE_CHECK_BEGIN:
		in_on_begin(d, peer, m->body);
		return;
	case WIRE_CHECK_DATA:
		in_on_data(d, peer, m);
		return;
	case WIRE_CHECK_END:
		if (session == d->check->in[peer].session)
			in_release(d, peer);
		return;
	}
	/* Answers to our own check: only for the session running now. */
	if (!o || o->state == OUT_DONE || session != o->session) {
		d->bad_msgs++;
		return;
	}
	if (m->hdr->type == WIRE_CHECK_READY && o->state == OUT_BEGIN)
		out_on_ready(d, peer, m->body);
	else if (m->hdr->type == WIRE_CHECK_PROGRESS && o->state == OUT_RUN)
		out_on_progress(d, peer, m->body);
	else if (m->hdr->type != WIRE_CHECK_READY && o->state == OUT_RUN)
		out_on_result(d, peer, m->hdr->type, m->body);
	else
		d->bad_msgs++;
}

static void check_on_rdma(struct dsmd *d, const struct xport_event *ev)
{
	struct check_out *o = d->check->out ? &d->check->out[ev->peer] : NULL;

	switch (ev->type) {
	case XPORT_EV_WRITE_IMM:
		if (d->check->in)
			in_on_write(d, ev);
		return;
	case XPORT_EV_READ_DONE:
		if (o && o->state == OUT_RUN && ev->cookie == o->session)
			out_on_read(d, ev->peer, ev->status);
		return;
	case XPORT_EV_WRITE_DONE:
		if (o && o->state == OUT_RUN && ev->cookie == o->session &&
		    ev->status)
			out_fail(d, ev->peer, ev->status);
		return;
	default:
		return;
	}
}

static void check_on_peer_down(struct dsmd *d, int peer)
{
	if (d->check->in)
		in_release(d, peer);
	if (d->check->out)
		out_fail(d, peer, -ECONNRESET);
}

static void check_tick(struct dsmd *d)
{
	int i;

	if (!d->check->out || dsmd_now_ms(d) < d->check->deadline_ms)
		return;
	log_warn("check: timed out");
	for (i = 0; i < d->cfg.nnodes && d->check->out; i++)
		out_fail(d, i, -ETIMEDOUT);
}

static void check_client_gone(struct dsmd *d, struct client *c)
{
	if (d->check->client == c)
		d->check->client = NULL;
}

static void check_teardown(struct dsmd *d)
{
	int i;

	if (!d->check)
		return;
	if (d->check->out) {
		d->check->client = NULL;
		for (i = 0; i < d->cfg.nnodes; i++)
			d->check->out[i].state = OUT_DONE;
		out_finish_all(d);
	}
	if (d->check->in) {
		for (i = 0; i < d->cfg.nnodes; i++) {
			if (!d->check->in[i].buf)
				continue;
			xport_dereg_mr(d->x, &d->check->in[i].mr);
			free(d->check->in[i].buf);
		}
		free(d->check->in);
		d->check->in = NULL;
	}
	free(d->check);
	d->check = NULL;
}

static int check_setup(struct dsmd *d)
{
	d->check = calloc(1, sizeof(*d->check));
	return d->check ? 0 : -ENOMEM;
}

static void on_check_ipc(struct dsmd *d, struct client *c,
			 const struct wire_msg *m, int *fd)
{
	struct wire_ipc_check req;
	int ret;

	(void)fd;
	memcpy(&req, m->body, sizeof(req));
	ret = check_start(d, c, m->hdr->req_id, &req);
	if (ret)
		client_result(c, m->hdr->req_id, ret);
}

static const struct dsmd_msg check_msgs[] = {
	{WIRE_CHECK_BEGIN, false, check_on_msg},
	{WIRE_CHECK_READY, false, check_on_msg},
	{WIRE_CHECK_DATA, false, check_on_msg},
	{WIRE_CHECK_DATA_DONE, false, check_on_msg},
	{WIRE_CHECK_WRITE_DONE, false, check_on_msg},
	{WIRE_CHECK_PROGRESS, false, check_on_msg},
	{WIRE_CHECK_END, false, check_on_msg},
	{0},
};

static const struct dsmd_ipc check_ipcs[] = {
	{WIRE_IPC_CHECK, IPC_FROM(WIRE_IPC_KIND_CTL), false, on_check_ipc},
	{0},
};

const struct dsmd_module check_module = {
	.name = "check",
	.setup = check_setup,
	.teardown = check_teardown,
	.peer_down = check_on_peer_down,
	.client_gone = check_client_gone,
	.tick = check_tick,
	.rdma = check_on_rdma,
	.rdma_tagged = false,
	.msgs = check_msgs,
	.ipcs = check_ipcs,
};
