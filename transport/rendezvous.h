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

#include "xport.h"

/* Fill all[0..nnodes-1] with every node's address.  Blocks at most
 * timeout_ms.  0 or negative errno (-ETIMEDOUT, -EINVAL, -EPROTO). */
int rdv_exchange(const char *rendezvous, int self, int nnodes,
		 const struct xport_addr *mine, struct xport_addr *all,
		 unsigned timeout_ms);

/* Parse "host:port" (IPv4 dotted or a resolvable name). */
int rdv_parse(const char *s, struct sockaddr_in *out);

#endif
