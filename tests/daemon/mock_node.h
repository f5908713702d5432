/* One dsmd core with every module on the in-memory transport, for the
 * host unit tests that drive dsmd's logic.  The caller fills d->cfg (node,
 * nnodes and the rest) first; the clock is the test's.  mock_node_stop()
 * undoes whatever of it was done. */
#ifndef DSM_TEST_MOCK_NODE_H
#define DSM_TEST_MOCK_NODE_H

#include "dsmd.h"
#include "xport_mock.h"

static inline int mock_node_start(struct dsmd *d, struct xport_mock_fabric *f,
				  unsigned recv_depth,
				  const struct clock *clock)
{
	struct xport_config xc = {
		.self = d->cfg.node, .nnodes = d->cfg.nnodes,
		.recv_depth = recv_depth, .cb = cluster_on_event, .cb_arg = d,
		.impl_arg = f,
	};
	int ret = dsmd_init(d, clock);

	if (ret == 0)
		ret = xport_create(&xport_mock_ops, &xc, &d->x);
	return ret ? ret : dsmd_modules_setup(d);
}

static inline void mock_node_stop(struct dsmd *d)
{
	client_close_all(d);
	dsmd_modules_teardown(d);
	if (d->x)
		xport_destroy(d->x);
	d->x = NULL;
	dsmd_fini(d); /* and what a death queued to self */
}

#endif
