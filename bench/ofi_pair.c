#include "ofi_pair.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "log.h"
#include "ofi_lib.h"

#define OFP_MAGIC 0x6f667062u /* "ofpb" */
/* fi_trywait refusals before ofp_block naps instead of returning at once
 * (ofi_rxm refuses while connection events it reads once per 128 CQ reads
 * are pending). */
#define OFP_TRYWAIT_TRIES 4
#define OFP_NAP_MS 1
#define OFP_KEY_DATA 1
#define OFP_KEY_MSGS 2

/* Log a failed libfabric call once, where it failed; returns its error,
 * so callers can write `return fail(ep, "call", ret);`. */
static int fail(const struct ofp_endpoint *ep, const char *call, int ret)
{
	log_err("%s: %s: %s", ep->role, call, ofi_lf.strerror(-ret));
	return ret;
}

static const char *kind_name(enum ofp_ctx_kind kind)
{
	switch (kind) {
	case OFP_CTX_RECV: return "receive";
	case OFP_CTX_SEND: return "send";
	case OFP_CTX_READ: return "READ";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------- */
/* The provider                                                           */

/* The provider as libdsm's transport asks for it (ofi_lib.h). */
static int pick_info(struct ofp_endpoint *ep, const char *provider,
		     const char *addr)
{
	int ret = ofi_lib_load(ep->role);

	if (!ret)
		ret = ofi_pick_info(provider, addr, ep->role, &ep->info);
	if (ret)
		return ret == -EPROTONOSUPPORT ? -ENOENT : ret;
	ep->mr_local = (ep->info->domain_attr->mr_mode & FI_MR_LOCAL) ||
		       (ep->info->mode & FI_LOCAL_MR);
	ep->inject_size = ep->info->tx_attr->inject_size;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Objects                                                                */

static int open_domain(struct ofp_endpoint *ep)
{
	struct fi_av_attr av_attr = { .type = FI_AV_TABLE, .count = 1 };
	struct fi_cq_attr cq_attr = {
		.size = OFP_RECV_DEPTH + OFP_SEND_DEPTH + 2,
		.format = FI_CQ_FORMAT_DATA,
		.wait_obj = FI_WAIT_FD,
	};
	int ret;

	ret = ofi_lf.fabric(ep->info->fabric_attr, &ep->fabric, NULL);
	if (ret)
		return fail(ep, "fi_fabric", ret);
	ret = fi_domain(ep->fabric, ep->info, &ep->domain, NULL);
	if (ret)
		return fail(ep, "fi_domain", ret);
	ret = fi_av_open(ep->domain, &av_attr, &ep->av, NULL);
	if (ret)
		return fail(ep, "fi_av_open", ret);
	ret = fi_cq_open(ep->domain, &cq_attr, &ep->cq, NULL);
	if (ret)
		return fail(ep, "fi_cq_open (FI_WAIT_FD)", ret);
	return 0;
}

static int reg(struct ofp_endpoint *ep, void *buf, size_t len,
	       uint64_t access, uint64_t key, struct fid_mr **out)
{
	int ret = fi_mr_reg(ep->domain, buf, len, access, 0, key, 0, out,
			    NULL);

	return ret ? fail(ep, "fi_mr_reg", ret) : 0;
}

/* The least access each buffer needs: the server's data is read from
 * afar, the client's is where its READs land. */
static int setup_bufs(struct ofp_endpoint *ep, bool readable)
{
	size_t msgs_len = (size_t)(OFP_RECV_DEPTH + OFP_SEND_DEPTH) *
			  OFP_MSG_SIZE;
	void *p;
	int ret;

	ret = posix_memalign(&p, OFP_DATA_SIZE, OFP_DATA_SIZE);
	if (!ret) {
		ep->data = p;
		ret = posix_memalign(&p, OFP_MSG_SIZE, msgs_len);
	}
	if (ret) {
		log_err("%s: posix_memalign: %s", ep->role, strerror(ret));
		return -ret;
	}
	ep->msgs = p;
	memset(ep->data, 0xa5, OFP_DATA_SIZE);
	memset(ep->msgs, 0, msgs_len);
	ret = reg(ep, ep->data, OFP_DATA_SIZE,
		  readable ? FI_REMOTE_READ : FI_READ, OFP_KEY_DATA,
		  &ep->data_mr);
	if (!ret)
		ret = reg(ep, ep->msgs, msgs_len, FI_SEND | FI_RECV,
			  OFP_KEY_MSGS, &ep->msg_mr);
	for (unsigned i = 0; i < OFP_SEND_DEPTH; i++) {
		ep->sctx[i] = (struct ofp_ctx){ .kind = OFP_CTX_SEND,
						.slot = i };
		ep->sfree[i] = i;
	}
	ep->nsfree = OFP_SEND_DEPTH;
	ep->read_ctx.kind = OFP_CTX_READ;
	return ret;
}

static int start_ep(struct ofp_endpoint *ep)
{
	int ret;

	ret = fi_endpoint(ep->domain, ep->info, &ep->ep, NULL);
	if (ret)
		return fail(ep, "fi_endpoint", ret);
	ret = fi_ep_bind(ep->ep, &ep->av->fid, 0);
	if (ret)
		return fail(ep, "fi_ep_bind (address vector)", ret);
	ret = fi_ep_bind(ep->ep, &ep->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret)
		return fail(ep, "fi_ep_bind (completion queue)", ret);
	ret = fi_enable(ep->ep);
	if (ret)
		return fail(ep, "fi_enable", ret);
	ret = fi_control(&ep->cq->fid, FI_GETWAIT, &ep->wait_fd);
	if (ret)
		return fail(ep, "fi_control (FI_GETWAIT)", ret);
	ep->name_len = sizeof(ep->name);
	ret = fi_getname(&ep->ep->fid, ep->name, &ep->name_len);
	if (ret)
		return fail(ep, "fi_getname", ret);
	return 0;
}

int ofp_open(struct ofp_endpoint *ep, const char *provider, const char *addr,
	     bool readable)
{
	int ret;

	ep->wait_fd = -1;
	ep->peer = FI_ADDR_NOTAVAIL;
	ret = pick_info(ep, provider, addr);
	if (!ret)
		ret = open_domain(ep);
	if (!ret)
		ret = setup_bufs(ep, readable);
	if (!ret)
		ret = start_ep(ep);
	for (unsigned i = 0; !ret && i < OFP_RECV_DEPTH; i++) {
		ep->rctx[i] = (struct ofp_ctx){ .kind = OFP_CTX_RECV,
						.slot = i };
		ret = ofp_post_recv(ep, i);
	}
	return ret;
}

static void close_fid(const struct ofp_endpoint *ep, struct fid *fid,
		      const char *what)
{
	int ret;

	if (!fid)
		return;
	ret = fi_close(fid);
	if (ret)
		log_warn("%s: closing the %s: %s", ep->role, what,
			 ofi_lf.strerror(-ret));
}

void ofp_close(struct ofp_endpoint *ep)
{
	/* The endpoint first: it still holds receives in our buffers. */
	close_fid(ep, ep->ep ? &ep->ep->fid : NULL, "endpoint");
	close_fid(ep, ep->msg_mr ? &ep->msg_mr->fid : NULL,
		  "message buffers' registration");
	close_fid(ep, ep->data_mr ? &ep->data_mr->fid : NULL,
		  "data buffer's registration");
	close_fid(ep, ep->cq ? &ep->cq->fid : NULL, "completion queue");
	close_fid(ep, ep->av ? &ep->av->fid : NULL, "address vector");
	close_fid(ep, ep->domain ? &ep->domain->fid : NULL, "domain");
	close_fid(ep, ep->fabric ? &ep->fabric->fid : NULL, "fabric");
	if (ep->info)
		ofi_lf.freeinfo(ep->info);
	free(ep->data);
	free(ep->msgs);
	*ep = (struct ofp_endpoint){ .role = ep->role, .wait_fd = -1 };
}

/* ---------------------------------------------------------------------- */
/* The peer                                                               */

void ofp_describe(const struct ofp_endpoint *ep, struct ofp_wire *out)
{
	*out = (struct ofp_wire){
		.magic = OFP_MAGIC,
		.name_len = (uint32_t)ep->name_len,
		/* Both answers pick_info accepts address by virtual
		 * address. */
		.data_addr = (uintptr_t)ep->data,
		.data_key = fi_mr_key(ep->data_mr),
		.data_len = OFP_DATA_SIZE,
	};
	memcpy(out->name, ep->name, ep->name_len);
}

int ofp_set_peer(struct ofp_endpoint *ep, const struct ofp_wire *w)
{
	int ret;

	if (w->magic != OFP_MAGIC || w->reserved || !w->name_len ||
	    w->name_len > OFP_NAME_MAX || w->data_len != OFP_DATA_SIZE) {
		log_err("%s: the peer's description is malformed (magic %#x, "
			"name of %u bytes, buffer of %u)", ep->role, w->magic,
			w->name_len, w->data_len);
		return -EPROTO;
	}
	ret = fi_av_insert(ep->av, w->name, 1, &ep->peer, 0, NULL);
	if (ret != 1)
		return fail(ep, "fi_av_insert", ret < 0 ? ret : -FI_EINVAL);
	ep->peer_addr = w->data_addr;
	ep->peer_key = w->data_key;
	return 0;
}

const char *ofp_provider(const struct ofp_endpoint *ep)
{
	return ep->info->fabric_attr->prov_name;
}

uint64_t ofp_mr_mode(const struct ofp_endpoint *ep)
{
	return (uint64_t)ep->info->domain_attr->mr_mode;
}

/* ---------------------------------------------------------------------- */
/* Operations                                                             */

static void *desc(const struct ofp_endpoint *ep, struct fid_mr *mr)
{
	return ep->mr_local ? fi_mr_desc(mr) : NULL;
}

int ofp_post_recv(struct ofp_endpoint *ep, unsigned slot)
{
	ssize_t ret = fi_recv(ep->ep, ep->msgs + (size_t)slot * OFP_MSG_SIZE,
			      OFP_MSG_SIZE, desc(ep, ep->msg_mr),
			      FI_ADDR_UNSPEC, &ep->rctx[slot]);

	return ret ? fail(ep, "fi_recv", (int)ret) : 0;
}

int ofp_post_send(struct ofp_endpoint *ep, const void *msg, size_t len,
		  bool inject)
{
	unsigned slot;
	unsigned char *buf;
	ssize_t ret;

	if (len > OFP_MSG_SIZE)
		return -EMSGSIZE;
	if (inject && len <= ep->inject_size) {
		ret = fi_inject(ep->ep, msg, len, ep->peer);
		if (ret == -FI_EAGAIN)
			return -EAGAIN;
		return ret ? fail(ep, "fi_inject", (int)ret) : 0;
	}
	if (!ep->nsfree)
		return -EAGAIN;
	slot = ep->sfree[ep->nsfree - 1];
	buf = ep->msgs + (size_t)(OFP_RECV_DEPTH + slot) * OFP_MSG_SIZE;
	memcpy(buf, msg, len);
	ret = fi_send(ep->ep, buf, len, desc(ep, ep->msg_mr), ep->peer,
		      &ep->sctx[slot]);
	if (ret == -FI_EAGAIN)
		return -EAGAIN;
	if (ret)
		return fail(ep, "fi_send", (int)ret);
	ep->nsfree--;
	return 0;
}

int ofp_post_read(struct ofp_endpoint *ep)
{
	ssize_t ret = fi_read(ep->ep, ep->data, OFP_DATA_SIZE,
			      desc(ep, ep->data_mr), ep->peer, ep->peer_addr,
			      ep->peer_key, &ep->read_ctx);

	if (ret == -FI_EAGAIN)
		return -EAGAIN;
	return ret ? fail(ep, "fi_read", (int)ret) : 0;
}

static int take_error(struct ofp_endpoint *ep)
{
	struct fi_cq_err_entry e;
	const struct ofp_ctx *c;
	ssize_t n;

	memset(&e, 0, sizeof(e));
	n = fi_cq_readerr(ep->cq, &e, 0);
	if (n < 0)
		return fail(ep, "fi_cq_readerr", (int)n);
	c = e.op_context;
	log_err("%s: %s completion failed: %s (%s)", ep->role,
		c ? kind_name(c->kind) : "a", ofi_lf.strerror(e.err),
		fi_cq_strerror(ep->cq, e.prov_errno, e.err_data, NULL, 0));
	return -EIO;
}

int ofp_poll(struct ofp_endpoint *ep, struct fi_cq_data_entry *e, int n)
{
	ssize_t got = fi_cq_read(ep->cq, e, (size_t)n);

	if (got == -FI_EAGAIN)
		return 0;
	if (got == -FI_EAVAIL)
		return take_error(ep);
	if (got < 0)
		return fail(ep, "fi_cq_read", (int)got);
	for (ssize_t i = 0; i < got; i++) {
		const struct ofp_ctx *c = e[i].op_context;

		if (c && c->kind == OFP_CTX_SEND)
			ep->sfree[ep->nsfree++] = c->slot;
	}
	return (int)got;
}

static int poll_retry(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
	int rc;

	do
		rc = poll(pfd, n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

/* fi_trywait refused too often: sleep a little on extra_fd alone (the
 * wait fd may stay readable while the provider has work in hand). */
static int nap(struct ofp_endpoint *ep, int extra_fd)
{
	struct pollfd pfd = { .fd = extra_fd, .events = POLLIN };
	int rc = poll_retry(&pfd, 1, OFP_NAP_MS);

	if (rc < 0) {
		log_err("%s: poll: %s", ep->role, strerror(-rc));
		return rc;
	}
	return rc ? -ECANCELED : 1;
}

int ofp_block(struct ofp_endpoint *ep, int extra_fd, int timeout_ms)
{
	struct fid *fids[1] = { &ep->cq->fid };
	struct pollfd pfd[2] = {
		{ .fd = ep->wait_fd, .events = POLLIN },
		{ .fd = extra_fd, .events = POLLIN }, /* ignored when < 0 */
	};
	int rc = fi_trywait(ep->fabric, fids, 1);

	if (rc == -FI_EAGAIN)
		return ep->refusals++ < OFP_TRYWAIT_TRIES ? 1
							   : nap(ep, extra_fd);
	if (rc)
		return fail(ep, "fi_trywait", rc);
	ep->refusals = 0;
	rc = poll_retry(pfd, 2, timeout_ms);
	if (rc < 0) {
		log_err("%s: poll: %s", ep->role, strerror(-rc));
		return rc;
	}
	if (rc == 0)
		return -ETIMEDOUT;
	return pfd[0].revents ? 0 : -ECANCELED;
}
