/* dsmd's main(): reads its configuration (options.c), joins the cluster
 * through the rendezvous, connects the full mesh, sets up the modules
 * (modules.c) and runs the core's event loop until SIGTERM or SIGINT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dsmd.h"
#include "kver.h"
#include "log.h"
#include "options.h"
#include "rendezvous.h"
#include "xport_mock.h"

/* A one-node job without an RDMA device needs no fabric at all: the
 * in-memory transport, with a fabric of one, carries what little a lone
 * node does (registrations; it sends nothing).  It is named "none" where a
 * user reads it (the start-up line, dsmctl status): the mock is the unit
 * tests' fabric, and here there is none. */
static struct xport_mock_fabric *alone;
static struct xport_ops alone_ops;

/* The transport --transport names; auto: verbs where an RDMA device is
 * named (--device: a missing one is an error, not a reason to change
 * fabric) or usable, else nothing for one node, else libfabric (over TCP
 * unless --provider says otherwise). */
static const struct xport_ops *transport_ops(const struct dsmd_config *c)
{
	switch (c->transport) {
	case DSMD_XPORT_VERBS:
		return &xport_rdma_ops;
	case DSMD_XPORT_OFI:
		return &xport_ofi_ops;
	default:
		if (c->device || xport_rdma_usable(NULL))
			return &xport_rdma_ops;
		return c->nnodes == 1 ? &xport_mock_ops : &xport_ofi_ops;
	}
}

/* The cluster's secret comes from the environment only (a command line is
 * visible to every user in ps): dsmrun makes one per job; under another
 * launcher, give every node the same DSM_CLUSTER_KEY. */
static bool cluster_key(const struct dsmd_config *c, struct sip_key *key)
{
	const char *s = getenv("DSM_CLUSTER_KEY");

	if (s && *s) {
		*key = sip_key_from(s);
		return true;
	}
	if (c->nnodes > 1)
		log_warn("no cluster key (DSM_CLUSTER_KEY): any host that "
			 "reaches the rendezvous can join this cluster");
	return false;
}

static int setup_transport(struct dsmd *d)
{
	const struct xport_ops *ops = transport_ops(&d->cfg);
	struct sip_key key = {0};
	bool have_key = cluster_key(&d->cfg, &key);
	struct xport_config xc = {
		.self = d->cfg.node, .nnodes = d->cfg.nnodes,
		.device = d->cfg.device, .addr = d->cfg.addr,
		.provider = d->cfg.provider,
		.recv_depth = d->cfg.recv_depth, .poll_us = d->cfg.poll_us,
		.cb = cluster_on_event, .cb_arg = d,
		.key = key,
	};
	struct xport_addr mine, all[WIRE_MAX_NODES];
	int ret;

	if (ops == &xport_mock_ops) {
		alone_ops = xport_mock_ops;
		alone_ops.name = "none";
		ops = &alone_ops;
		alone = xport_mock_fabric_new(1);
		if (!alone)
			return -ENOMEM;
		xc.impl_arg = alone;
	}
	ret = xport_create(ops, &xc, &d->x);
	if (ret) {
		log_err("cannot start the %s transport: %s", ops->name,
			strerror(-ret));
		return ret;
	}
	if (alone)
		d->x->ops = &alone_ops; /* the mock's ops, under its name here */
	xport_local_addr(d->x, &mine);
	if (alone)
		log_info("node %d of %d: transport none (one node, no fabric)",
			 d->cfg.node, d->cfg.nnodes);
	else
		log_info("node %d of %d: transport %s on %s, at %s:%u",
			 d->cfg.node, d->cfg.nnodes, ops->name,
			 xport_device(d->x),
			 inet_ntoa((struct in_addr){mine.ip}),
			 ntohs(mine.port));
	ret = rdv_exchange(d->cfg.rendezvous, d->cfg.node, d->cfg.nnodes,
			   have_key ? &key : NULL, &mine, all,
			   d->cfg.join_timeout_ms, d->cfg.rendezvous_fd);
	d->cfg.rendezvous_fd = -1; /* closed by the rendezvous */
	if (ret)
		return ret;
	return xport_connect_all(d->x, all);
}

static void on_xport(struct dsmd *d, struct watch *w, uint32_t events)
{
	int ret = xport_progress(d->x);

	(void)w;
	(void)events;
	if (ret < 0) {
		log_err("transport: %s", strerror(-ret));
		d->stop = true;
		d->failed = true;
	}
}

static int setup(struct dsmd *d)
{
	int ret;

	ret = dsmd_loop_setup(d);
	if (ret) {
		log_err("timer/signal setup: %s", strerror(-ret));
		return ret;
	}
	ret = client_listen(d);
	if (ret)
		return ret;
	ret = setup_transport(d);
	if (ret)
		return ret;
	ret = dsmd_modules_setup(d);
	if (ret)
		return ret;
	return watch_add(d, &d->xport_w, xport_fd(d->x), EPOLLIN, on_xport);
}

static void teardown(struct dsmd *d)
{
	client_close_all(d);
	dsmd_modules_teardown(d);
	if (d->x)
		xport_destroy(d->x);
	if (alone)
		xport_mock_fabric_free(alone);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	access_close(d);
	dsmd_fini(d);
}

/* Linux 6.4 or later, or a clear refusal before anything starts. */
static bool kernel_refused(void)
{
	char why[160];

	if (kver_check(why, sizeof(why)) == 0)
		return false;
	log_err("%s", why);
	return true;
}

int main(int argc, char **argv)
{
	static struct dsmd d;
	int ret;

	log_setup("dsmd", -1);
	if (dsmd_parse_args(argc, argv, &d.cfg))
		return 2;
	log_setup("dsmd", d.cfg.node);
	if (kernel_refused())
		return 2;
	ret = dsmd_init(&d, &clock_monotonic);
	if (ret == 0)
		ret = setup(&d);
	if (ret == 0)
		ret = dsmd_run(&d);
	if (ret == 0 && d.failed)
		ret = -EIO;
	teardown(&d);
	log_info("exiting%s", ret ? " after an error" : "");
	return ret ? 1 : 0;
}
