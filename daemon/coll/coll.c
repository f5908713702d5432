/* Collectives: barrier, alloc and free.
 *
 * A collective is counted twice: each node counts its own ranks, and when
 * all of them have arrived it tells node 0 (COLL_ARRIVE, with whether its
 * ranks agreed on the operation and its argument); node 0 counts ranks over
 * the nodes, and when the whole job is in, it decides (allocates, frees, or
 * fails every rank with EINVAL when ranks disagreed) and tells every node
 * (COLL_DONE), which answers its waiting ranks.  Collectives are numbered
 * per rank, so a rank that races ahead into the next one is counted there.
 * Node 0's allocator and the named regions are region.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "log.h"

/* A collective being counted: locally (every node), or job-wide (node 0). */
struct coll {
	struct list link;       /* coll_state.colls */
	bool global;
	uint64_t seq, arg;
	uint32_t op, count, size;
	bool mismatch;
};

/* Forget every collective being counted. */
static void colls_clear(struct coll_state *m)
{
	struct coll *c, *tmp;

	list_for_each_safe(c, tmp, &m->colls, link)
		free(c);
	list_init(&m->colls);
}

static struct coll *coll_find(struct coll_state *m, bool global, uint64_t seq,
			      bool create)
{
	struct coll *c;

	list_for_each(c, &m->colls, link)
		if (c->global == global && c->seq == seq)
			return c;
	if (!create)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->global = global;
	c->seq = seq;
	list_add_head(&m->colls, &c->link);
	return c;
}

static void coll_drop(struct coll *c)
{
	list_del(&c->link);
	free(c);
}

static void count(struct coll *c, uint32_t op, uint64_t arg, uint32_t n,
		  bool mismatch)
{
	if (c->count == 0) {
		c->op = op;
		c->arg = arg;
	} else if (c->op != op || c->arg != arg) {
		c->mismatch = true;
	}
	c->mismatch |= mismatch;
	c->count += n;
}

void coll_broadcast_done(struct dsmd *d, uint64_t seq, int status,
			 uint64_t value)
{
	struct wire_coll_done done = {.job = d->job.id, .seq = seq,
				      .status = status, .value = value};
	int i;

	for (i = 0; i < d->cfg.nnodes; i++)
		if (i == d->cfg.node || node_alive(d, i))
			node_send(d, i, WIRE_COLL_DONE, 0, &done, sizeof(done));
}

/* Node 0: the whole job is in. */
static void decide(struct dsmd *d, struct coll *c)
{
	struct region *r;
	uint64_t seq = c->seq, arg = c->arg;
	uint32_t op = c->op;
	bool mismatch = c->mismatch;
	int64_t first;

	coll_drop(c);
	if (mismatch) {
		coll_broadcast_done(d, seq, -EINVAL, 0);
		return;
	}
	switch (op) {
	case WIRE_COLL_BARRIER:
		coll_broadcast_done(d, seq, 0, 0);
		return;
	case WIRE_COLL_ALLOC:
		first = region_new(d, arg, NULL, NULL);
		if (first < 0)
			coll_broadcast_done(d, seq, (int)first, 0);
		else
			coll_broadcast_done(d, seq, 0,
				       d->arena.base + (uint64_t)first *
							       WIRE_PAGE_SIZE);
		return;
	default:
		r = region_at(d, arg, false);
		if (!r) {
			coll_broadcast_done(d, seq, -EINVAL, 0);
			return;
		}
		region_free(d, r, true, seq);
		return;
	}
}

/* Node 0: a rank of the job died.  Every collective of the job, pending
 * or to come, fails with ECONNABORTED on every node, rather than wait for
 * a rank that will never arrive. */
static void abort_job(struct dsmd *d)
{
	struct coll_state *m = d->coll;

	if (m->job_aborted)
		return;
	colls_clear(m);
	coll_broadcast_done(d, WIRE_COLL_SEQ_ABORT, -ECONNABORTED, 0);
}

/* Node 0: ranks of another job arrived (their node was bound to it before
 * it heard of this one, or it is a stranger's): that collective fails on
 * their node with EBUSY, as their processes' attach here would. */
static void refuse_other_job(struct dsmd *d, int from,
			     const struct wire_coll_arrive *a)
{
	struct wire_coll_done done = {.job = a->job, .seq = a->seq,
				      .status = -EBUSY};

	log_warn("node %d's ranks are of job %llu, this cluster serves job "
		 "%llu: their collective is refused", from,
		 (unsigned long long)a->job, (unsigned long long)d->job.id);
	if (a->op != WIRE_COLL_ABORT)
		node_send(d, from, WIRE_COLL_DONE, 0, &done, sizeof(done));
}

static void on_arrive(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_coll_arrive arrive, *a = &arrive;
	struct coll *c;

	memcpy(&arrive, m->body, sizeof(arrive));
	if (d->cfg.node != 0) {
		d->st.bad_msgs++;
		return;
	}
	if (!job_is(d, a->job)) {
		refuse_other_job(d, from, a);
		return;
	}
	if (a->op == WIRE_COLL_ABORT) {
		abort_job(d);
		return;
	}
	if (a->count == 0 || a->size == 0 || a->count > a->size) {
		d->st.bad_msgs++;
		return;
	}
	c = coll_find(d->coll, true, a->seq, true);
	if (!c)
		return;
	if (c->count && c->size != a->size)
		c->mismatch = true;
	c->size = a->size;
	count(c, a->op, a->arg, a->count, a->mismatch);
	if (c->count >= c->size) {
		if (c->count > c->size)
			c->mismatch = true;
		decide(d, c);
	}
}

/* This node's side of an aborted job: every rank waiting in a collective
 * (not in a region request) gets the error now, later ones at once. */
static void local_abort(struct dsmd *d)
{
	struct app *a;

	d->coll->job_aborted = true;
	colls_clear(d->coll);
	list_for_each(a, &d->apps, link) {
		if (a->coll_req && !a->coll_seq_tag) {
			app_reply(a, a->coll_req, -ECONNABORTED, 0, 0);
			a->coll_req = 0;
		}
	}
}

static void coll_peer_down(struct dsmd *d, int node)
{
	struct app *a;

	/* Its ranks will never arrive; without node 0 nothing is counted,
	 * and no region is opened or closed. */
	region_peer_down(d, node);
	if (d->cfg.node == 0) {
		abort_job(d);
		return;
	}
	if (node != 0)
		return;
	local_abort(d);
	list_for_each(a, &d->apps, link) {
		if (a->coll_req && a->coll_seq_tag) {
			app_reply(a, a->coll_req, -EHOSTDOWN, 0, 0);
			a->coll_req = 0;
			a->coll_seq_tag = 0;
		}
	}
}

static void on_done(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_coll_done cd, *done = &cd;
	struct app *a;

	if (from != 0)
		return;
	memcpy(&cd, m->body, sizeof(cd));
	/* Node 0 names the cluster's job: a node with no process yet (no
	 * hello has bound it) takes it from there. */
	if (!job_is(d, done->job)) {
		d->st.bad_msgs++;
		return;
	}
	if (done->seq == WIRE_COLL_SEQ_ABORT) {
		local_abort(d);
		return;
	}
	list_for_each(a, &d->apps, link) {
		if (a->coll_req && a->coll_seq == done->seq + 1) {
			app_reply(a, a->coll_req, done->status, done->value, 0);
			a->coll_req = 0;
		}
	}
}

static int coll_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
		    const struct wire_ipc_coll *req)
{
	struct coll_state *m = d->coll;
	struct wire_coll_arrive arr;
	struct coll *c;

	if (req->op < WIRE_COLL_BARRIER || req->op > WIRE_COLL_FREE ||
	    req->seq != a->coll_seq || a->coll_req || req_id == 0)
		return -EPROTO;
	if (m->job_aborted) {
		a->coll_seq++;
		return -ECONNABORTED;
	}
	c = coll_find(m, false, req->seq, true);
	if (!c)
		return -ENOMEM;
	a->coll_seq++;
	a->coll_req = req_id;
	count(c, req->op, req->arg, 1, false);
	if (c->count < a->local_size)
		return 0;
	arr = (struct wire_coll_arrive){
		.job = a->job, .seq = c->seq, .arg = c->arg, .op = c->op,
		.count = c->count, .size = a->size,
		.mismatch = c->mismatch || c->count > a->local_size,
	};
	coll_drop(c);
	node_send(d, 0, WIRE_COLL_ARRIVE, 0, &arr, sizeof(arr));
	return 0;
}

static void coll_app_gone(struct dsmd *d, struct app *a, bool died)
{
	struct wire_coll_arrive abort = {.job = a->job, .op = WIRE_COLL_ABORT,
					 .size = a->size};

	a->coll_req = 0;
	region_app_gone(d, a);
	if (!died)
		return;
	log_warn("rank %u (process %u) left without dsm_finalize(): the "
		 "job's collectives fail from now on", a->rank, a->pid);
	node_send(d, 0, WIRE_COLL_ARRIVE, 0, &abort, sizeof(abort));
}


/* dsm_barrier(), dsm_alloc() and dsm_free() of a process. */
static void on_coll_ipc(struct dsmd *d, struct client *c,
			const struct wire_msg *m, int *fd)
{
	struct wire_ipc_coll req;
	int ret;

	(void)fd;
	memcpy(&req, m->body, sizeof(req));
	ret = coll_ipc(d, c->app, m->hdr->req_id, &req);
	if (ret)
		app_reply(c->app, m->hdr->req_id, ret, 0, 0);
}

static int coll_setup(struct dsmd *d)
{
	d->coll = calloc(1, sizeof(*d->coll));
	if (!d->coll)
		return -ENOMEM;
	list_init(&d->coll->colls);
	list_init(&d->coll->regions);
	list_init(&d->coll->resets);
	return region_setup(d);
}

static void coll_teardown(struct dsmd *d)
{
	if (!d->coll)
		return;
	region_teardown(d);
	colls_clear(d->coll);
	free(d->coll);
	d->coll = NULL;
}

static const struct dsmd_msg coll_msgs[] = {
	{WIRE_COLL_ARRIVE, false, on_arrive},
	{WIRE_COLL_DONE, false, on_done},
	{WIRE_REGION_OP, false, region_on_op},
	{WIRE_REGION_REPLY, false, region_on_reply},
	{WIRE_RESET_ACK, false, region_on_reset_ack},
	{0},
};

static const struct dsmd_ipc coll_ipcs[] = {
	{WIRE_IPC_COLL, IPC_FROM(WIRE_IPC_KIND_APP), true, on_coll_ipc},
	{WIRE_IPC_REGION, IPC_FROM(WIRE_IPC_KIND_APP), true, region_on_ipc},
	{0},
};

const struct dsmd_module coll_module = {
	.name = "coll",
	.setup = coll_setup,
	.teardown = coll_teardown,
	.peer_down = coll_peer_down,
	.app_gone = coll_app_gone,
	.msgs = coll_msgs,
	.ipcs = coll_ipcs,
};
