/* The scripted in-memory transport (xport_mock.c), for unit tests only. */
#ifndef DSM_XPORT_MOCK_H
#define DSM_XPORT_MOCK_H

#include <stdbool.h>

#include "xport.h"

extern const struct xport_ops xport_mock_ops;

struct xport_mock_fabric;

/* A fabric joins the endpoints of one test cluster: create each endpoint
 * with xport_create(&xport_mock_ops, cfg) where cfg->impl_arg is the
 * fabric. */
struct xport_mock_fabric *xport_mock_fabric_new(int nnodes);
void xport_mock_fabric_free(struct xport_mock_fabric *f);
/* Drop everything from `from` to `to` silently (cut) or not. */
void xport_mock_cut(struct xport_mock_fabric *f, int from, int to, bool cut);
/* The node dies: every connected peer gets PEER_DOWN, it hears nothing. */
int xport_mock_kill(struct xport_mock_fabric *f, int node);
/* Messages of `type` that endpoint x has sent to peer. */
unsigned long xport_mock_sent(struct xport *x, int peer, unsigned type);

#endif
