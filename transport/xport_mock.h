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
/* Keep back (or let go) what `from` sends `to`: it waits in `to`'s inbox,
 * in order, while what other peers send overtakes it (as on separate
 * queue pairs).  Messages, page writes and PEER_DOWN alike. */
void xport_mock_hold(struct xport_mock_fabric *f, int from, int to, bool hold);
/* Events from `from` waiting in x's inbox, of message `type` (0: any). */
unsigned xport_mock_pending(struct xport *x, int from, unsigned type);
/* Deliver the oldest event from `from` in x's inbox, held or not: 1, 0 if
 * it was a malformed message (dropped and counted), -ENOENT if none. */
int xport_mock_step_from(struct xport *x, int from);
/* A hash of what waits in x's inbox, in order (the queue pairs' sequence
 * numbers left out), for a test that tells states apart. */
uint64_t xport_mock_inbox_hash(struct xport *x);
/* Messages of `type` that endpoint x has sent to peer. */
unsigned long xport_mock_sent(struct xport *x, int peer, unsigned type);

#endif
