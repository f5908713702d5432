/* Placement and migration policies: the cluster's (dsmd's options), and
 * per range of the arena (dsm_set_policy), applied on every node
 * (DIR_POLICY) before the caller is answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "home_int.h"
#include "log.h"

struct home_policy_op {
	struct list link;        /* d->home->policy_ops */
	uint64_t id, waiting;
	int status;
	uint64_t first;
	struct app *app;         /* held */
	uint64_t req_id;
};

int home_policy_check(const struct wire_policy *p)
{
	if (p->placement > DSM_PLACE_FIRST_TOUCH || p->migrate > 1 ||
	    p->share_pct < 51 || p->share_pct > 100 || p->min_requests < 1 ||
	    p->min_requests > 65535 || p->window_ms < 1 ||
	    p->window_ms > 3600000 || p->load_pct < 100 ||
	    p->load_pct > 100000)
		return -EINVAL;
	return 0;
}

/* The newest range holding key decides; a cleared range means the
 * cluster's policy. */
const struct wire_policy *home_policy(const struct dsmd *d, uint64_t key)
{
	const struct home_state *hs = d->home;
	unsigned i = hs->nranges;

	while (i--) {
		const struct home_range *r = &hs->ranges[i];

		if (key >= r->first && key - r->first < r->n)
			return r->clear ? &hs->cluster : &r->p;
	}
	return &hs->cluster;
}

static bool overlaps(const struct home_range *r, uint64_t first, uint64_t n)
{
	return r->first < first + n && first < r->first + r->n;
}

/* Ranges wholly inside the new one are gone for good; the new one goes
 * last, so it wins where it overlaps what is left. */
static int apply_policy(struct dsmd *d, uint64_t first, uint64_t n,
			bool clear, const struct wire_policy *p)
{
	struct home_state *hs = d->home;
	unsigned i, j = 0;
	bool any = false;

	for (i = 0; i < hs->nranges; i++) {
		struct home_range *r = &hs->ranges[i];

		if (r->first >= first && r->first + r->n <= first + n)
			continue;
		any |= overlaps(r, first, n);
		hs->ranges[j++] = *r;
	}
	hs->nranges = j;
	if (clear && !any)
		return 0;
	if (hs->nranges == HOME_MAX_RANGES)
		return -ENOSPC;
	hs->ranges[hs->nranges++] = (struct home_range){
		.first = first, .n = n, .clear = clear, .p = clear ? hs->cluster
								   : *p};
	return 0;
}

static void reply_policy(struct app *a, uint64_t req_id, int status,
			 const struct wire_policy *p)
{
	struct wire_ipc_policy_reply r = {.status = status};

	if (p)
		r.p = *p;
	if (a->c)
		client_reply(a->c, WIRE_IPC_POLICY_REPLY, req_id, &r,
			     sizeof(r));
}

static void finish_policy_op(struct dsmd *d, struct home_policy_op *op)
{
	list_del(&op->link);
	reply_policy(op->app, op->req_id, op->status,
		     home_policy(d, op->first));
	app_put(op->app);
	free(op);
}

static int policy_range(const struct dsmd *d, uint64_t addr, uint64_t len,
			uint64_t *first, uint64_t *n)
{
	uint64_t base = d->arena.base, size = d->arena.size;

	if (!len || addr < base || addr - base >= size ||
	    len > size - (addr - base))
		return -EINVAL;
	*first = (addr - base) / WIRE_PAGE_SIZE;
	*n = (addr - base + len - 1) / WIRE_PAGE_SIZE - *first + 1;
	return 0;
}

int home_policy_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
		    const struct wire_ipc_policy *req)
{
	bool clear = req->op == WIRE_POLICY_CLEAR;
	struct wire_dir_policy dp;
	struct home_policy_op *op;
	uint64_t first, n;
	int i, ret;

	if (req->op == WIRE_POLICY_GET) {
		if (req->addr < d->arena.base ||
		    req->addr - d->arena.base >= d->arena.size)
			return -EFAULT;
		reply_policy(a, req_id, 0,
			     home_policy(d, (req->addr - d->arena.base) /
						    WIRE_PAGE_SIZE));
		return 0;
	}
	if ((req->op != WIRE_POLICY_SET && !clear) || req->reserved ||
	    policy_range(d, req->addr, req->len, &first, &n) ||
	    (!clear && home_policy_check(&req->p)))
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	ret = apply_policy(d, first, n, clear, &req->p);
	if (ret) {
		free(op);
		return ret;
	}
	*op = (struct home_policy_op){.id = ++d->home->next_token,
				      .first = first, .app = a,
				      .req_id = req_id};
	app_get(a);
	list_add_head(&d->home->policy_ops, &op->link);
	dp = (struct wire_dir_policy){.first_page = first, .npages = n,
				      .clear = clear, .p = req->p};
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node || !node_alive(d, i))
			continue;
		if (xport_send(d->x, i, WIRE_DIR_POLICY, op->id, &dp,
			       sizeof(dp)) == 0)
			op->waiting |= bit(i);
	}
	if (!op->waiting)
		finish_policy_op(d, op);
	return 0;
}

/* dsm_set_policy() and dsm_get_policy() of an attached process. */
void home_on_policy_ipc(struct dsmd *d, struct client *c,
			const struct wire_msg *m, int *fd)
{
	struct wire_ipc_policy req;
	int ret;

	(void)fd;
	memcpy(&req, m->body, sizeof(req));
	ret = home_policy_ipc(d, c->app, m->hdr->req_id, &req);
	if (ret) {
		struct wire_ipc_policy_reply r = {.status = ret};

		client_reply(c, WIRE_IPC_POLICY_REPLY, m->hdr->req_id, &r,
			     sizeof(r));
	}
}

static void on_policy(struct dsmd *d, int from, uint64_t id,
		      const struct wire_dir_policy *dp)
{
	struct wire_dir_policy ack = *dp;
	int ret = -EINVAL;

	if (dp->npages && dp->first_page < d->arena.npages &&
	    dp->npages <= d->arena.npages - dp->first_page && dp->clear <= 1 &&
	    (dp->clear || !home_policy_check(&dp->p)))
		ret = apply_policy(d, dp->first_page, dp->npages, dp->clear,
				   &dp->p);
	if (ret == -EINVAL)
		d->st.bad_msgs++;
	ack.reserved = (uint32_t)-ret; /* 0, or the errno it failed with */
	xport_send(d->x, from, WIRE_DIR_POLICY_ACK, id, &ack, sizeof(ack));
}

static void on_policy_ack(struct dsmd *d, int from, uint64_t id,
			  const struct wire_dir_policy *dp)
{
	struct home_policy_op *op, *found = NULL;

	list_for_each(op, &d->home->policy_ops, link) {
		if (op->id == id) {
			found = op;
			break;
		}
	}
	op = found;
	if (!op || !(op->waiting & bit(from)) || dp->reserved > 4095) {
		d->st.bad_msgs++;
		return;
	}
	op->waiting &= ~bit(from);
	if (dp->reserved && !op->status)
		op->status = -(int)dp->reserved;
	if (!op->waiting)
		finish_policy_op(d, op);
}


/* DIR_POLICY and its ack. */
void home_on_policy_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dir_policy dp;

	memcpy(&dp, m->body, sizeof(dp));
	if (m->hdr->type == WIRE_DIR_POLICY)
		on_policy(d, from, m->hdr->req_id, &dp);
	else
		on_policy_ack(d, from, m->hdr->req_id, &dp);
}

/* A node died: policy changes stop waiting for it. */
void home_policy_peer_down(struct dsmd *d, int node)
{
	struct home_policy_op *op, *tmp;

	list_for_each_safe(op, tmp, &d->home->policy_ops, link) {
		if (!(op->waiting & bit(node)))
			continue;
		op->waiting &= ~bit(node);
		if (!op->waiting)
			finish_policy_op(d, op);
	}
}

void home_policy_free(struct dsmd *d)
{
	struct home_policy_op *op, *tmp;

	list_for_each_safe(op, tmp, &d->home->policy_ops, link) {
		list_del(&op->link);
		app_put(op->app);
		free(op);
	}
}
