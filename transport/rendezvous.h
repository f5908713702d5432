/* The rendezvous through which the dsmd of a cluster learn each other's
 * transport addresses before any RDMA connection exists.
 *
 * Node 0 listens on the rendezvous address (TCP host:port); every other node
 * connects, says who it is and where its transport listens; when all have
 * come, node 0 sends everyone the whole table.  Every field read off a
 * socket is checked: a stray or malformed connection is dropped and the
 * rendezvous goes on.
 */
#ifndef DSM_RENDEZVOUS_H
#define DSM_RENDEZVOUS_H

#include "siphash.h"
#include "xport.h"

/* Fill all[0..nnodes-1] with every node's address.  Blocks at most
 * timeout_ms.  0 or negative errno (-ETIMEDOUT, -EINVAL, -EPROTO, -EPERM:
 * node 0's table is not signed with our key).
 *
 * With a cluster key (NULL: none, any host that reaches node 0 can join),
 * node 0 sends each joiner a fresh nonce, the joiner's hello carries a
 * SipHash tag over that nonce and its fields, and node 0's table a tag
 * over it and a nonce of the joiner's: a hello without the key is dropped
 * (it no longer takes the node's place by coming first), and a joiner
 * takes no table from a node 0 without the key.
 *
 * listen_fd, for node 0 only (else -1): a socket already listening on the
 * rendezvous port, bound by a launcher before any dsmd started, served
 * instead of binding the address anew.  It is closed in every case. */
int rdv_exchange(const char *rendezvous, int self, int nnodes,
		 const struct sip_key *key, const struct xport_addr *mine,
		 struct xport_addr *all, unsigned timeout_ms, int listen_fd);

/* Parse "host:port" (IPv4 dotted or a resolvable name). */
int rdv_parse(const char *s, struct sockaddr_in *out);

#endif
