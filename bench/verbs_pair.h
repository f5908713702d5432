/* verbs_pair: one end of a reliable-connected QP, set up with librdmacm.
 *
 * The raw-verbs floor for the benchmarks: no libdsm transport, just a PD,
 * one CQ with a completion channel, one RC QP and two memory regions:
 *
 *   data  VP_DATA_SIZE bytes; the server's is remotely readable and its
 *         address and rkey travel to the client in the accept's private
 *         data; the client reads into its own.
 *   msgs  VP_RECV_DEPTH receive slots of VP_MSG_SIZE bytes, then one send
 *         slot (used only when a message cannot go inline).
 *
 * Every receive slot is posted at connection time; whoever consumes a
 * receive completion reposts its slot.  A wr_id carries the kind in its
 * high half and, in its low half, the slot of a RECV or the number of
 * send-queue entries a SEND or READ completion retires.
 * A vp_endpoint is used by one thread.
 */
#ifndef DSM_BENCH_VERBS_PAIR_H
#define DSM_BENCH_VERBS_PAIR_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define VP_DATA_SIZE 4096
#define VP_MSG_SIZE 64
#define VP_RECV_DEPTH 16
#define VP_SEND_DEPTH 32
/* Sends are signalled one in VP_SIGNAL_EVERY (as perftest's cq_mod does),
 * unless the caller asks.  Half the send queue: whenever the queue is full,
 * a signalled send is among the outstanding ones, so polling frees it. */
#define VP_SIGNAL_EVERY (VP_SEND_DEPTH / 2)

enum vp_wr_kind { VP_WR_RECV = 1, VP_WR_SEND = 2, VP_WR_READ = 3 };

static inline enum vp_wr_kind vp_wr_kind(uint64_t wr_id)
{
	return (enum vp_wr_kind)(wr_id >> 32);
}

static inline uint32_t vp_wr_slot(uint64_t wr_id)
{
	return (uint32_t)wr_id;
}

struct vp_endpoint {
	const char *role; /* "server" or "client", for messages */
	struct rdma_event_channel *cm_ch;
	struct rdma_cm_id *listen_id; /* server only */
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *comp_ch;
	struct ibv_cq *cq;
	struct ibv_mr *data_mr;
	struct ibv_mr *msg_mr;
	unsigned char *data;
	unsigned char *msgs;
	uint32_t max_inline;   /* what the QP granted */
	unsigned sends_out;    /* send-queue entries not yet retired */
	unsigned unsignalled;  /* sends posted since the last signalled one */
	uint64_t peer_addr;    /* client: the server's data buffer */
	uint32_t peer_rkey;
	bool connected;
};

/* Server: listen on addr:port (port 0: any); `*bound` is the port. */
int vp_listen(struct vp_endpoint *ep, const char *addr, uint16_t port,
	      uint16_t *bound);
/* Server: take one connection, publish the data buffer, wait until it is
 * established.  A timeout below 0 waits forever. */
int vp_accept(struct vp_endpoint *ep, int timeout_ms);
/* Client: connect to addr:port and learn the server's data buffer. */
int vp_connect(struct vp_endpoint *ep, const char *addr, uint16_t port,
	       int timeout_ms);
/* Disconnect (waiting briefly for the peer) and free everything; safe on
 * a partly set-up endpoint. */
void vp_close(struct vp_endpoint *ep);

const char *vp_device_name(const struct vp_endpoint *ep);
int vp_post_recv(struct vp_endpoint *ep, uint32_t slot);
/* Post a SEND, signalled if `signal` or if its turn has come.  Returns 1
 * when signalled, 0 when not, -EAGAIN when the send queue is full (poll for
 * a SEND completion, then retry).  A message too long to go inline is
 * copied to the one send slot: post the next one only once the peer has
 * received it (a ping-pong does so by design). */
int vp_post_send(struct vp_endpoint *ep, const void *msg, uint32_t len,
		 bool signal);
int vp_post_read(struct vp_endpoint *ep);
static inline const void *vp_recv_buf(const struct vp_endpoint *ep,
				      uint32_t slot)
{
	return ep->msgs + (size_t)slot * VP_MSG_SIZE;
}

/* Poll without blocking: the number of completions stored in wc, or -EIO
 * (logged) when one of them failed. */
int vp_poll(struct vp_endpoint *ep, struct ibv_wc *wc, int n);
/* Ask for an event on the next completion.  Poll once more after this
 * before vp_block(), or a completion that came in between is missed. */
int vp_arm(struct vp_endpoint *ep);
/* Sleep until the completion channel fires (0), the peer disconnects
 * (-ECONNRESET), `extra_fd` becomes readable or hangs up (-ECANCELED; -1
 * for none) or the timeout passes (-ETIMEDOUT; below 0: none). */
int vp_block(struct vp_endpoint *ep, int extra_fd, int timeout_ms);

#endif
