/* ofi_pair: one end of a libfabric reliable-datagram pair, for bench_ofi.
 *
 * The raw libfabric floor: no libdsm transport, just a fabric, a domain,
 * an address vector holding the one peer, one CQ with an fd as its wait
 * object, one FI_EP_RDM endpoint and two registered buffers:
 *
 *   data  OFP_DATA_SIZE bytes; the server's is remotely readable and its
 *         address and key travel to the client with the endpoint's name;
 *         the client reads into its own.
 *   msgs  OFP_RECV_DEPTH receive slots of OFP_MSG_SIZE bytes, then
 *         OFP_SEND_DEPTH send slots (for sends that cannot be injected or
 *         whose completion is wanted).
 *
 * The provider is picked by the code libdsm's transport uses
 * (transport/ofi_lib.h: the same capabilities, ordering, manual progress
 * and registration modes), so the floor is the provider as libdsm's
 * transport runs it.
 *
 * Every receive slot is posted when the endpoint opens; whoever consumes a
 * receive completion reposts its slot.  An ofp_endpoint is used by one
 * thread.  Both ends run this program: what they swap (struct ofp_wire)
 * is in host byte order.
 */
#ifndef DSM_BENCH_OFI_PAIR_H
#define DSM_BENCH_OFI_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_eq.h>

#define OFP_DATA_SIZE 4096
#define OFP_MSG_SIZE 64
#define OFP_RECV_DEPTH 16
#define OFP_SEND_DEPTH 16
#define OFP_NAME_MAX 64 /* an endpoint's name (tcp: a sockaddr_in) */
#define OFP_DEFAULT_PROVIDER "tcp;ofi_rxm"
#define OFP_DEFAULT_ADDR "127.0.0.1"

enum ofp_ctx_kind { OFP_CTX_RECV = 1, OFP_CTX_SEND = 2, OFP_CTX_READ = 3 };

/* What an operation's context points at.  fctx comes first: a provider
 * that wants FI_CONTEXT or FI_CONTEXT2 uses it while the operation is
 * posted. */
struct ofp_ctx {
	struct fi_context2 fctx;
	enum ofp_ctx_kind kind;
	unsigned slot;
};

/* One end's description, through the socketpair to the other. */
struct ofp_wire {
	uint32_t magic;
	uint32_t name_len;
	unsigned char name[OFP_NAME_MAX];
	uint64_t data_addr; /* the data buffer as RMA names it */
	uint64_t data_key;
	uint32_t data_len;
	uint32_t reserved;  /* 0 */
};

struct ofp_endpoint {
	const char *role; /* "server" or "client", for messages */
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	struct fid_mr *data_mr;
	struct fid_mr *msg_mr;
	int wait_fd;
	bool mr_local;      /* descriptors are passed with local buffers */
	size_t inject_size; /* what fi_inject takes */
	unsigned refusals;  /* fi_trywait refusals in a row */
	unsigned char name[OFP_NAME_MAX]; /* fi_getname's */
	size_t name_len;
	unsigned char *data;
	unsigned char *msgs;
	struct ofp_ctx rctx[OFP_RECV_DEPTH];
	struct ofp_ctx sctx[OFP_SEND_DEPTH];
	struct ofp_ctx read_ctx;
	unsigned sfree[OFP_SEND_DEPTH]; /* stack of free send slots */
	unsigned nsfree;
	fi_addr_t peer;
	uint64_t peer_addr; /* client: the server's data buffer */
	uint64_t peer_key;
};

/* Open an endpoint on `provider` listening on `addr` (any port), its
 * buffers registered (the data buffer remotely readable if `readable`) and
 * its receives posted.  -ENOENT (logged, with the providers there are) when
 * libfabric has no such provider.  On failure the endpoint holds what was
 * made so far, for ofp_close(). */
int ofp_open(struct ofp_endpoint *ep, const char *provider, const char *addr,
	     bool readable);
/* Free everything; safe on a partly opened endpoint. */
void ofp_close(struct ofp_endpoint *ep);

/* This end's name and data buffer, for the peer. */
void ofp_describe(const struct ofp_endpoint *ep, struct ofp_wire *out);
/* Take the peer's description (input from another process: checked) and
 * put it in the address vector. */
int ofp_set_peer(struct ofp_endpoint *ep, const struct ofp_wire *w);

const char *ofp_provider(const struct ofp_endpoint *ep);
uint64_t ofp_mr_mode(const struct ofp_endpoint *ep);

int ofp_post_recv(struct ofp_endpoint *ep, unsigned slot);
/* Send `len` bytes to the peer: injected (no completion) when `inject` and
 * the provider takes that much inline, otherwise from a send slot with a
 * completion.  -EAGAIN when the provider cannot take it now (ofi_rxm while
 * it connects) or no slot is free: poll, then retry. */
int ofp_post_send(struct ofp_endpoint *ep, const void *msg, size_t len,
		  bool inject);
/* fi_read of OFP_DATA_SIZE bytes of the peer's data buffer into ours;
 * -EAGAIN as for a send. */
int ofp_post_read(struct ofp_endpoint *ep);
static inline const void *ofp_recv_buf(const struct ofp_endpoint *ep,
				       unsigned slot)
{
	return ep->msgs + (size_t)slot * OFP_MSG_SIZE;
}

/* Poll without blocking: the number of completions stored in e (a send's
 * slot is free again already), or -EIO (logged) when one of them failed. */
int ofp_poll(struct ofp_endpoint *ep, struct fi_cq_data_entry *e, int n);
/* Sleep until the CQ's wait fd fires (0), `extra_fd` becomes readable or
 * hangs up (-ECANCELED; -1 for none) or the timeout passes (-ETIMEDOUT;
 * below 0: none).  1 without sleeping when fi_trywait says completions or
 * provider work are waiting: poll, then call again.  After a few refusals
 * in a row it naps a millisecond instead, so that a provider with work in
 * hand is not spun on. */
int ofp_block(struct ofp_endpoint *ep, int extra_fd, int timeout_ms);

#endif
