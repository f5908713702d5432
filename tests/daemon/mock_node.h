/* One dsmd core on the in-memory transport, for the host unit tests that
 * drive dsmd's logic (test_cluster.c, test_dsm.c).  The caller fills
 * d->cfg (node, nnodes and the rest) first. */
#ifndef DSM_TEST_MOCK_NODE_H
#define DSM_TEST_MOCK_NODE_H

#include "dsmd.h"
#include "xport_mock.h"

static inline int mock_node_start(struct dsmd *d, struct xport_mock_fabric *f,
				  unsigned recv_depth, uint64_t now_ms)
{
	struct xport_config xc = {
		.self = d->cfg.node, .nnodes = d->cfg.nnodes,
		.recv_depth = recv_depth, .cb = cluster_on_event, .cb_arg = d,
		.impl_arg = f,
	};

	d->listen_fd = d->timer_fd = d->signal_fd = -1;
	d->start_ms = now_ms;
	for (int j = 0; j < d->cfg.nnodes; j++)
		d->members[j].state = j == d->cfg.node ? WIRE_MEMBER_SELF
						       : WIRE_MEMBER_JOINING;
	return xport_create(&xport_mock_ops, &xc, &d->x);
}

#endif
