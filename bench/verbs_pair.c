#include "verbs_pair.h"

#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define DISCONNECT_WAIT_MS 2000

/* The accept's private data, big-endian: the server's data buffer, which
 * the client may READ.  RoCE pads private data, so the client accepts any
 * length of at least this. */
struct vp_wire_buf {
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;
};

static uint64_t wr_id(enum vp_wr_kind kind, uint32_t slot)
{
	return ((uint64_t)kind << 32) | slot;
}

static const char *kind_name(enum vp_wr_kind kind)
{
	switch (kind) {
	case VP_WR_RECV: return "RECV";
	case VP_WR_SEND: return "SEND";
	case VP_WR_READ: return "RDMA READ";
	}
	return "unknown";
}

/* Log a failed call whose error is `err` (an errno value) and return
 * -err, so callers can write `return fail(ep, "call", errno);`. */
static int fail(const struct vp_endpoint *ep, const char *call, int err)
{
	log_err("%s: %s: %s", ep->role, call, strerror(err));
	return -err;
}

static int resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(addr, service, &hints, &ai);
	if (rc) {
		log_err("address %s: %s", addr, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

static int poll_retry(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
	int rc;

	do
		rc = poll(pfd, n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

/* Wait for the next CM event, which must be `want`; the caller acks it. */
static int cm_wait(struct vp_endpoint *ep, enum rdma_cm_event_type want,
		   int timeout_ms, struct rdma_cm_event **evp)
{
	struct pollfd pfd = { .fd = ep->cm_ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	int rc = poll_retry(&pfd, 1, timeout_ms);

	if (rc < 0)
		return fail(ep, "poll", -rc);
	if (rc == 0) {
		log_err("%s: no %s within %d ms", ep->role,
			rdma_event_str(want), timeout_ms);
		return -ETIMEDOUT;
	}
	if (rdma_get_cm_event(ep->cm_ch, &ev))
		return fail(ep, "rdma_get_cm_event", errno);
	if (ev->event == want) {
		*evp = ev;
		return 0;
	}
	log_err("%s: waiting for %s, got %s (status %d)", ep->role,
		rdma_event_str(want), rdma_event_str(ev->event), ev->status);
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_ERROR: rc = -EADDRNOTAVAIL; break;
	case RDMA_CM_EVENT_REJECTED: rc = -ECONNREFUSED; break;
	case RDMA_CM_EVENT_UNREACHABLE: rc = -EHOSTUNREACH; break;
	default: rc = -EPROTO; break;
	}
	rdma_ack_cm_event(ev);
	return rc;
}

static int open_cm(struct vp_endpoint *ep, struct rdma_cm_id **id)
{
	ep->cm_ch = rdma_create_event_channel();
	if (!ep->cm_ch) {
		log_err("%s: cannot open the RDMA CM (%s): no RDMA device? "
			"Run under scripts/softroce", ep->role, strerror(errno));
		return -ENODEV;
	}
	if (rdma_create_id(ep->cm_ch, id, ep, RDMA_PS_TCP))
		return fail(ep, "rdma_create_id", errno);
	return 0;
}

static int setup_cq(struct vp_endpoint *ep, struct ibv_context *verbs)
{
	ep->pd = ibv_alloc_pd(verbs);
	if (!ep->pd)
		return fail(ep, "ibv_alloc_pd", errno);
	ep->comp_ch = ibv_create_comp_channel(verbs);
	if (!ep->comp_ch)
		return fail(ep, "ibv_create_comp_channel", errno);
	ep->cq = ibv_create_cq(verbs, VP_SEND_DEPTH + VP_RECV_DEPTH, NULL,
			       ep->comp_ch, 0);
	if (!ep->cq)
		return fail(ep, "ibv_create_cq", errno);
	return 0;
}

static int setup_qp(struct vp_endpoint *ep)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = ep->cq,
		.recv_cq = ep->cq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = VP_SEND_DEPTH,
			 .max_recv_wr = VP_RECV_DEPTH,
			 .max_send_sge = 1, .max_recv_sge = 1,
			 .max_inline_data = VP_MSG_SIZE },
	};
	struct ibv_qp_attr qa;

	if (rdma_create_qp(ep->id, ep->pd, &attr)) {
		/* A device without inline sends copies from the send slot. */
		attr.cap.max_inline_data = 0;
		if (rdma_create_qp(ep->id, ep->pd, &attr))
			return fail(ep, "rdma_create_qp", errno);
	}
	if (ibv_query_qp(ep->id->qp, &qa, IBV_QP_CAP, &attr) == 0)
		ep->max_inline = attr.cap.max_inline_data;
	return 0;
}

static int setup_mrs(struct vp_endpoint *ep, int data_access)
{
	size_t msgs_len = (VP_RECV_DEPTH + 1) * VP_MSG_SIZE;
	void *p;
	int rc;

	rc = posix_memalign(&p, VP_DATA_SIZE, VP_DATA_SIZE);
	if (rc)
		return fail(ep, "posix_memalign", rc);
	ep->data = p;
	memset(ep->data, 0xa5, VP_DATA_SIZE);
	rc = posix_memalign(&p, VP_MSG_SIZE, msgs_len);
	if (rc)
		return fail(ep, "posix_memalign", rc);
	ep->msgs = p;
	memset(ep->msgs, 0, msgs_len);
	ep->data_mr = ibv_reg_mr(ep->pd, ep->data, VP_DATA_SIZE, data_access);
	if (!ep->data_mr)
		return fail(ep, "ibv_reg_mr (data)", errno);
	ep->msg_mr = ibv_reg_mr(ep->pd, ep->msgs, msgs_len,
				IBV_ACCESS_LOCAL_WRITE);
	if (!ep->msg_mr)
		return fail(ep, "ibv_reg_mr (messages)", errno);
	return 0;
}

/* Everything a connected id needs, receives posted.  On failure the
 * endpoint holds what was made so far, for vp_close(). */
static int setup_resources(struct vp_endpoint *ep, int data_access)
{
	int rc = setup_cq(ep, ep->id->verbs);

	if (!rc)
		rc = setup_qp(ep);
	if (!rc)
		rc = setup_mrs(ep, data_access);
	for (uint32_t i = 0; !rc && i < VP_RECV_DEPTH; i++)
		rc = vp_post_recv(ep, i);
	return rc;
}

int vp_listen(struct vp_endpoint *ep, const char *addr, uint16_t port,
	      uint16_t *bound)
{
	struct sockaddr_storage ss;
	int rc = resolve(addr, port, &ss);

	if (!rc)
		rc = open_cm(ep, &ep->listen_id);
	if (rc)
		return rc;
	if (rdma_bind_addr(ep->listen_id, (struct sockaddr *)&ss)) {
		rc = errno;
		log_err("%s: cannot bind %s port %u: %s (no RDMA device with "
			"that address? run under scripts/softroce)",
			ep->role, addr, port, strerror(rc));
		return rc == EADDRNOTAVAIL || rc == ENODEV ? -EADDRNOTAVAIL
							    : -rc;
	}
	if (rdma_listen(ep->listen_id, 1))
		return fail(ep, "rdma_listen", errno);
	*bound = be16toh(rdma_get_src_port(ep->listen_id));
	return 0;
}

static uint8_t clamp_u8(int v)
{
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static uint8_t min_u8(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

/* The READ depths to offer: the device's limits, as perftest does ("OUT
 * 0x80" on rxe), so both measure the same QP setup.  One READ is
 * outstanding at a time, but with a depth of 1 rxe's requester may find the
 * slot of the READ that just completed not yet returned by its completer
 * (check_init_depth) and defer the next READ; a larger depth keeps that out
 * of the measured path. */
static void rd_atomic_limits(const struct vp_endpoint *ep, uint8_t *init_depth,
			     uint8_t *resp_res)
{
	struct ibv_device_attr a;

	*init_depth = *resp_res = 1;
	if (ibv_query_device(ep->id->verbs, &a))
		return;
	*init_depth = clamp_u8(a.max_qp_init_rd_atom);
	*resp_res = clamp_u8(a.max_qp_rd_atom);
}

static int accept_request(struct vp_endpoint *ep,
			  const struct rdma_conn_param *req)
{
	struct vp_wire_buf buf = {
		.addr = htobe64((uintptr_t)ep->data),
		.rkey = htobe32(ep->data_mr->rkey),
		.len = htobe32(VP_DATA_SIZE),
	};
	struct rdma_conn_param param = {
		.private_data = &buf,
		.private_data_len = sizeof(buf),
		.rnr_retry_count = 7,
	};
	uint8_t init_depth, resp_res;

	/* No more than the client asked for in either direction. */
	rd_atomic_limits(ep, &init_depth, &resp_res);
	param.responder_resources = min_u8(resp_res, req->initiator_depth);
	param.initiator_depth = min_u8(init_depth, req->responder_resources);
	if (rdma_accept(ep->id, &param))
		return fail(ep, "rdma_accept", errno);
	return 0;
}

int vp_accept(struct vp_endpoint *ep, int timeout_ms)
{
	struct rdma_cm_event *ev;
	int rc = cm_wait(ep, RDMA_CM_EVENT_CONNECT_REQUEST, timeout_ms, &ev);

	if (rc)
		return rc;
	ep->id = ev->id;
	rc = setup_resources(ep, IBV_ACCESS_LOCAL_WRITE |
					 IBV_ACCESS_REMOTE_READ);
	if (!rc)
		rc = accept_request(ep, &ev->param.conn);
	else
		rdma_reject(ep->id, NULL, 0);
	rdma_ack_cm_event(ev);
	if (!rc)
		rc = cm_wait(ep, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, &ev);
	if (rc)
		return rc;
	rdma_ack_cm_event(ev);
	ep->connected = true;
	return 0;
}

static int resolve_route(struct vp_endpoint *ep, const char *addr,
			 uint16_t port, int timeout_ms)
{
	struct sockaddr_storage ss;
	struct rdma_cm_event *ev;
	int rc = resolve(addr, port, &ss);

	if (rc)
		return rc;
	if (rdma_resolve_addr(ep->id, NULL, (struct sockaddr *)&ss,
			      timeout_ms))
		return fail(ep, "rdma_resolve_addr", errno);
	rc = cm_wait(ep, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms, &ev);
	if (rc)
		return rc;
	rdma_ack_cm_event(ev);
	if (rdma_resolve_route(ep->id, timeout_ms))
		return fail(ep, "rdma_resolve_route", errno);
	rc = cm_wait(ep, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms, &ev);
	if (rc)
		return rc;
	rdma_ack_cm_event(ev);
	return 0;
}

/* The server's buffer from the ESTABLISHED event; input from the network,
 * so check it before use. */
static int take_peer_buf(struct vp_endpoint *ep, const struct rdma_cm_event *ev)
{
	struct vp_wire_buf buf;

	if (ev->param.conn.private_data_len < sizeof(buf) ||
	    !ev->param.conn.private_data) {
		log_err("%s: server sent %u bytes of private data, want %zu",
			ep->role, ev->param.conn.private_data_len, sizeof(buf));
		return -EPROTO;
	}
	memcpy(&buf, ev->param.conn.private_data, sizeof(buf));
	if (be32toh(buf.len) < VP_DATA_SIZE) {
		log_err("%s: server buffer is %u bytes, want %d", ep->role,
			be32toh(buf.len), VP_DATA_SIZE);
		return -EPROTO;
	}
	ep->peer_addr = be64toh(buf.addr);
	ep->peer_rkey = be32toh(buf.rkey);
	return 0;
}

int vp_connect(struct vp_endpoint *ep, const char *addr, uint16_t port,
	       int timeout_ms)
{
	struct rdma_conn_param param = {
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	struct rdma_cm_event *ev;
	int rc = open_cm(ep, &ep->id);

	if (!rc)
		rc = resolve_route(ep, addr, port, timeout_ms);
	if (!rc)
		rc = setup_resources(ep, IBV_ACCESS_LOCAL_WRITE);
	if (rc)
		return rc;
	rd_atomic_limits(ep, &param.initiator_depth, &param.responder_resources);
	if (rdma_connect(ep->id, &param))
		return fail(ep, "rdma_connect", errno);
	rc = cm_wait(ep, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, &ev);
	if (rc)
		return rc;
	ep->connected = true;
	rc = take_peer_buf(ep, ev);
	rdma_ack_cm_event(ev);
	return rc;
}

static void disconnect(struct vp_endpoint *ep)
{
	struct pollfd pfd = { .fd = ep->cm_ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;

	ep->connected = false;
	if (rdma_disconnect(ep->id))
		return; /* the peer went first and the event is consumed */
	while (poll_retry(&pfd, 1, DISCONNECT_WAIT_MS) > 0 &&
	       rdma_get_cm_event(ep->cm_ch, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;

		rdma_ack_cm_event(ev);
		if (type == RDMA_CM_EVENT_DISCONNECTED)
			return;
	}
}

void vp_close(struct vp_endpoint *ep)
{
	if (ep->connected)
		disconnect(ep);
	if (ep->id && ep->id->qp)
		rdma_destroy_qp(ep->id);
	if (ep->msg_mr)
		ibv_dereg_mr(ep->msg_mr);
	if (ep->data_mr)
		ibv_dereg_mr(ep->data_mr);
	if (ep->cq)
		ibv_destroy_cq(ep->cq);
	if (ep->comp_ch)
		ibv_destroy_comp_channel(ep->comp_ch);
	if (ep->pd)
		ibv_dealloc_pd(ep->pd);
	if (ep->id)
		rdma_destroy_id(ep->id);
	if (ep->listen_id)
		rdma_destroy_id(ep->listen_id);
	if (ep->cm_ch)
		rdma_destroy_event_channel(ep->cm_ch);
	free(ep->data);
	free(ep->msgs);
	*ep = (struct vp_endpoint){ .role = ep->role };
}

const char *vp_device_name(const struct vp_endpoint *ep)
{
	return ibv_get_device_name(ep->id->verbs->device);
}

int vp_post_recv(struct vp_endpoint *ep, uint32_t slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(ep->msgs + (size_t)slot * VP_MSG_SIZE),
		.length = VP_MSG_SIZE,
		.lkey = ep->msg_mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id(VP_WR_RECV, slot),
		.sg_list = &sge,
		.num_sge = 1,
	};
	struct ibv_recv_wr *bad;
	int rc = ibv_post_recv(ep->id->qp, &wr, &bad);

	return rc ? fail(ep, "ibv_post_recv", rc) : 0;
}

int vp_post_send(struct vp_endpoint *ep, const void *msg, uint32_t len,
		 bool signal)
{
	unsigned char *slot = ep->msgs + (size_t)VP_RECV_DEPTH * VP_MSG_SIZE;
	bool inl = len <= ep->max_inline;
	struct ibv_sge sge = {
		.addr = (uintptr_t)(inl ? msg : slot),
		.length = len,
		.lkey = ep->msg_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id(VP_WR_SEND, 0),
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = inl ? IBV_SEND_INLINE : 0,
	};
	struct ibv_send_wr *bad;
	int rc;

	if (len > VP_MSG_SIZE)
		return -EMSGSIZE;
	if (ep->sends_out >= VP_SEND_DEPTH)
		return -EAGAIN;
	signal = signal || ep->unsignalled + 1 >= VP_SIGNAL_EVERY;
	if (signal) {
		/* Its completion retires it and the unsignalled ones before. */
		wr.wr_id = wr_id(VP_WR_SEND, ep->unsignalled + 1);
		wr.send_flags |= IBV_SEND_SIGNALED;
	}
	if (!inl)
		memcpy(slot, msg, len);
	rc = ibv_post_send(ep->id->qp, &wr, &bad);
	if (rc)
		return fail(ep, "ibv_post_send (SEND)", rc);
	ep->sends_out++;
	ep->unsignalled = signal ? 0 : ep->unsignalled + 1;
	return signal;
}

int vp_post_read(struct vp_endpoint *ep)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)ep->data,
		.length = VP_DATA_SIZE,
		.lkey = ep->data_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id(VP_WR_READ, ep->unsignalled + 1),
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_READ,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = ep->peer_addr,
			     .rkey = ep->peer_rkey },
	};
	struct ibv_send_wr *bad;
	int rc;

	if (ep->sends_out >= VP_SEND_DEPTH)
		return -EAGAIN;
	rc = ibv_post_send(ep->id->qp, &wr, &bad);
	if (rc)
		return fail(ep, "ibv_post_send (RDMA READ)", rc);
	ep->sends_out++;
	ep->unsignalled = 0;
	return 0;
}

int vp_poll(struct vp_endpoint *ep, struct ibv_wc *wc, int n)
{
	int got = ibv_poll_cq(ep->cq, n, wc);

	if (got < 0) {
		log_err("%s: ibv_poll_cq failed (%d)", ep->role, got);
		return -EIO;
	}
	for (int i = 0; i < got; i++) {
		enum vp_wr_kind kind = vp_wr_kind(wc[i].wr_id);

		/* A send-queue completion carries how many entries it
		 * retires (itself and the unsignalled ones before it). */
		if (kind != VP_WR_RECV)
			ep->sends_out -= vp_wr_slot(wc[i].wr_id);
		if (wc[i].status != IBV_WC_SUCCESS) {
			log_err("%s: %s completion failed: %s (vendor error "
				"0x%x)", ep->role, kind_name(kind),
				ibv_wc_status_str(wc[i].status),
				wc[i].vendor_err);
			return -EIO;
		}
	}
	return got;
}

int vp_arm(struct vp_endpoint *ep)
{
	int rc = ibv_req_notify_cq(ep->cq, 0);

	return rc ? fail(ep, "ibv_req_notify_cq", rc) : 0;
}

static int take_cq_event(struct vp_endpoint *ep)
{
	struct ibv_cq *cq;
	void *ctx;

	if (ibv_get_cq_event(ep->comp_ch, &cq, &ctx))
		return fail(ep, "ibv_get_cq_event", errno);
	/* Acked at once: vp_close() must not wait for unacked events. */
	ibv_ack_cq_events(cq, 1);
	return 0;
}

static int take_cm_event(struct vp_endpoint *ep)
{
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type type;

	if (rdma_get_cm_event(ep->cm_ch, &ev))
		return fail(ep, "rdma_get_cm_event", errno);
	type = ev->event;
	rdma_ack_cm_event(ev);
	if (type == RDMA_CM_EVENT_DISCONNECTED) {
		ep->connected = false;
		return -ECONNRESET;
	}
	log_err("%s: unexpected %s while connected", ep->role,
		rdma_event_str(type));
	return -EPROTO;
}

int vp_block(struct vp_endpoint *ep, int extra_fd, int timeout_ms)
{
	struct pollfd pfd[3] = {
		{ .fd = ep->comp_ch->fd, .events = POLLIN },
		{ .fd = ep->cm_ch->fd, .events = POLLIN },
		{ .fd = extra_fd, .events = POLLIN }, /* ignored when < 0 */
	};
	int rc = poll_retry(pfd, 3, timeout_ms);

	if (rc < 0)
		return fail(ep, "poll", -rc);
	if (rc == 0)
		return -ETIMEDOUT;
	if (pfd[0].revents)
		return take_cq_event(ep);
	if (pfd[1].revents)
		return take_cm_event(ep);
	return -ECANCELED;
}
