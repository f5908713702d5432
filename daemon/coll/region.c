/* Node 0's allocator of the arena and the regions it handed out.  The
 * allocator is a sorted array of free page extents (first fit, merged on
 * free).  A freed range is first reset on every node (RESET: pages
 * dropped, directory entries cleared, by the page module) and only then
 * returned, so that whoever gets it next finds it zero filled.  Named
 * regions (dsm_open) are counted by the processes that opened them: each
 * node keeps what its processes have open (app.named), so a process
 * closes only what it opened, and what it leaves open when it goes is
 * closed for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "log.h"

/* A reset in progress (node 0) and what to do when every node is done. */
struct reset {
	struct list link;       /* coll_state.resets */
	uint64_t first, npages;
	uint64_t awaiting;      /* nodes whose RESET_ACK is due, one bit each */
	bool coll;              /* complete this collective afterwards */
	uint64_t seq;
};

/* ---------------------------------------------------------------------- */
/* The allocator (node 0)                                                 */

static int ext_insert(struct coll_state *m, size_t at, uint64_t first,
		      uint64_t n)
{
	if (m->nfree_ext == m->cap_ext) {
		size_t cap = m->cap_ext ? 2 * m->cap_ext : 16;
		uint64_t *e = realloc(m->free_ext, cap * 2 * sizeof(*e));

		if (!e)
			return -ENOMEM;
		m->free_ext = e;
		m->cap_ext = cap;
	}
	memmove(&m->free_ext[2 * (at + 1)], &m->free_ext[2 * at],
		(m->nfree_ext - at) * 2 * sizeof(uint64_t));
	m->free_ext[2 * at] = first;
	m->free_ext[2 * at + 1] = n;
	m->nfree_ext++;
	return 0;
}

static void ext_remove(struct coll_state *m, size_t at)
{
	memmove(&m->free_ext[2 * at], &m->free_ext[2 * (at + 1)],
		(m->nfree_ext - at - 1) * 2 * sizeof(uint64_t));
	m->nfree_ext--;
}

/* First fit.  Returns the first page, or -ENOMEM. */
static int64_t arena_alloc(struct coll_state *m, uint64_t n)
{
	size_t i;

	for (i = 0; i < m->nfree_ext; i++) {
		uint64_t *e = &m->free_ext[2 * i];
		uint64_t first = e[0];

		if (e[1] < n)
			continue;
		e[0] += n;
		e[1] -= n;
		if (!e[1])
			ext_remove(m, i);
		return (int64_t)first;
	}
	return -ENOMEM;
}

/* Give a range back, merged with its neighbours. */
static void arena_free(struct coll_state *m, uint64_t first, uint64_t n)
{
	size_t i = 0;
	uint64_t *e;

	while (i < m->nfree_ext && m->free_ext[2 * i] < first)
		i++;
	if (i > 0) {
		e = &m->free_ext[2 * (i - 1)];
		if (e[0] + e[1] == first) {
			e[1] += n;
			if (i < m->nfree_ext && e[0] + e[1] == e[2]) {
				e[1] += e[3];
				ext_remove(m, i);
			}
			return;
		}
	}
	if (i < m->nfree_ext && first + n == m->free_ext[2 * i]) {
		m->free_ext[2 * i] = first;
		m->free_ext[2 * i + 1] += n;
		return;
	}
	if (ext_insert(m, i, first, n))
		log_err("out of memory: %llu pages of the arena are lost",
			(unsigned long long)n);
}


int64_t region_new(struct dsmd *d, uint64_t bytes, const char *name,
		   struct region **out)
{
	struct coll_state *m = d->coll;
	uint64_t n;
	struct region *r;
	int64_t first;

	if (bytes == 0)
		return -EINVAL;
	if (bytes > d->arena.size)
		return -ENOMEM;
	if (m->nregions >= (d->cfg.max_regions ? d->cfg.max_regions
					       : DSMD_MAX_REGIONS)) {
		d->refused.regions++;
		return -ENOSPC;
	}
	n = (bytes + WIRE_PAGE_SIZE - 1) / WIRE_PAGE_SIZE;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	first = arena_alloc(m, n);
	if (first < 0) {
		free(r);
		return first;
	}
	*r = (struct region){.first = (uint64_t)first, .npages = n,
			     .bytes = bytes, .named = name != NULL};
	if (name)
		snprintf(r->name, sizeof(r->name), "%s", name);
	list_add_head(&m->regions, &r->link);
	m->nregions++;
	if (out)
		*out = r;
	return first;
}

struct region *region_at(struct dsmd *d, uint64_t addr, bool named)
{
	struct region *r;

	list_for_each(r, &d->coll->regions, link)
		if (r->named == named &&
		    d->arena.base + r->first * WIRE_PAGE_SIZE == addr)
			return r;
	return NULL;
}

int region_setup(struct dsmd *d)
{
	if (d->cfg.node != 0)
		return 0;
	/* Page 0 stays unused: no region starts at the arena's base, so a
	 * stray NULL-relative pointer never lands in a region. */
	return ext_insert(d->coll, 0, 1, d->arena.npages - 1);
}

void region_teardown(struct dsmd *d)
{
	struct coll_state *m = d->coll;
	struct region *r, *rt;
	struct reset *x, *xt;

	list_for_each_safe(r, rt, &m->regions, link)
		free(r);
	list_for_each_safe(x, xt, &m->resets, link)
		free(x);
	list_init(&m->regions);
	list_init(&m->resets);
	m->nregions = 0;
	free(m->free_ext);
	m->free_ext = NULL;
}

/* Every node has dropped the range: it goes back to the allocator. */
static void reset_done(struct dsmd *d, struct reset *x)
{
	list_del(&x->link);
	arena_free(d->coll, x->first, x->npages);
	if (x->coll)
		coll_broadcast_done(d, x->seq, 0, 0);
	free(x);
}

void region_free(struct dsmd *d, struct region *r, bool coll, uint64_t seq)
{
	struct wire_reset body = {.first_page = r->first, .npages = r->npages};
	struct reset *x = calloc(1, sizeof(*x));
	int i;

	list_del(&r->link);
	d->coll->nregions--;
	free(r);
	if (!x) {
		log_err("out of memory resetting a region: it is not reused");
		if (coll)
			coll_broadcast_done(d, seq, 0, 0);
		return;
	}
	*x = (struct reset){.first = body.first_page, .npages = body.npages,
			    .coll = coll, .seq = seq};
	list_add_head(&d->coll->resets, &x->link);
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i != d->cfg.node && !node_alive(d, i))
			continue;
		if (node_send(d, i, WIRE_RESET, 0, &body, sizeof(body)) == 0)
			x->awaiting |= 1ull << i;
	}
	if (!x->awaiting)
		reset_done(d, x);
}

/* Node 0: a node has reset a range (the page module acks RESET). */
void region_on_reset_ack(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_reset b;
	struct reset *x, *found = NULL;

	if (d->cfg.node != 0)
		return;
	memcpy(&b, m->body, sizeof(b));
	/* Only a node the reset was sent to acks it, once: a repeated or
	 * stray ack would return the range while a node still holds it. */
	list_for_each(x, &d->coll->resets, link) {
		if (x->first == b.first_page && x->npages == b.npages &&
		    (x->awaiting & (1ull << from))) {
			found = x;
			break;
		}
	}
	if (!found) {
		d->st.bad_msgs++;
		return;
	}
	found->awaiting &= ~(1ull << from);
	if (!found->awaiting)
		reset_done(d, found);
}

/* Node 0: a node died; it will not ack, and its copies are gone. */
void region_peer_down(struct dsmd *d, int node)
{
	struct reset *x, *xt;

	if (d->cfg.node != 0)
		return;
	list_for_each_safe(x, xt, &d->coll->resets, link) {
		x->awaiting &= ~(1ull << node);
		if (!x->awaiting)
			reset_done(d, x);
	}
}

/* ---------------------------------------------------------------------- */
/* Named regions                                                          */

static int region_open(struct dsmd *d, const struct wire_region_op *op,
		       uint64_t *addr, uint64_t *size)
{
	struct region *r, *found = NULL;
	int64_t first;

	list_for_each(r, &d->coll->regions, link) {
		if (r->named && !strcmp(r->name, op->name)) {
			found = r;
			break;
		}
	}
	r = found;
	if (r) {
		if ((op->flags & DSM_CREATE) && (op->flags & DSM_EXCL))
			return -EEXIST;
		if (op->size && op->size != r->bytes)
			return -EINVAL;
		r->refs++;
	} else {
		if (!(op->flags & DSM_CREATE))
			return -ENOENT;
		first = region_new(d, op->size, op->name, &r);
		if (first < 0)
			return (int)first;
		r->refs = 1;
	}
	*addr = d->arena.base + r->first * WIRE_PAGE_SIZE;
	*size = r->bytes;
	return 0;
}

static int region_close(struct dsmd *d, uint64_t addr)
{
	struct region *r = region_at(d, addr, true);

	if (!r)
		return -EINVAL;
	if (--r->refs)
		return 0;
	region_free(d, r, false, 0);
	return 0;
}

/* Node 0 serves a region operation from `from`. */
void region_on_op(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_ipc_reply rep = {0};
	struct wire_region_op op;
	uint64_t addr = 0, size = 0;

	if (d->cfg.node != 0) {
		d->st.bad_msgs++;
		return;
	}
	memcpy(&op, m->body, sizeof(op));
	op.name[WIRE_NAME_MAX - 1] = 0;
	if (op.op == WIRE_REGION_OPEN) {
		rep.status = region_open(d, &op, &addr, &size);
		rep.value = addr;
		rep.value2 = size;
	} else
		rep.status = region_close(d, op.addr);
	node_send(d, from, WIRE_REGION_REPLY, m->hdr->req_id, &rep,
		  sizeof(rep));
}

/* Where a process's open named region at addr is in a->named, or -1. */
static int named_index(const struct app *a, uint64_t addr)
{
	for (unsigned i = 0; i < a->nnamed; i++)
		if (a->named[i] == addr)
			return (int)i;
	return -1;
}

static void named_forget(struct app *a, int i)
{
	a->named[i] = a->named[--a->nnamed];
}

static void send_close(struct dsmd *d, uint64_t addr)
{
	struct wire_region_op op = {.op = WIRE_REGION_CLOSE, .addr = addr};

	/* Tag 0: the reply is for nobody. */
	node_send(d, 0, WIRE_REGION_OP, 0, &op, sizeof(op));
}

/* The process is gone: what it left open is closed for it. */
void region_app_gone(struct dsmd *d, struct app *a)
{
	while (a->nnamed)
		send_close(d, a->named[--a->nnamed]);
}

static bool name_ok(const char *name)
{
	size_t n = strnlen(name, WIRE_NAME_MAX);

	return n > 0 && n < WIRE_NAME_MAX;
}

static int region_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
		      const struct wire_region_op *req)
{
	struct wire_region_op op = *req;

	if (a->coll_req)
		return -EPROTO;
	if (op.op == WIRE_REGION_OPEN &&
	    (!name_ok(op.name) || op.flags & ~(unsigned)(DSM_CREATE | DSM_EXCL)))
		return -EINVAL;
	if (op.op != WIRE_REGION_OPEN && op.op != WIRE_REGION_CLOSE)
		return -EINVAL;
	/* A process closes what it opened, and holds a bounded number. */
	if (op.op == WIRE_REGION_CLOSE && named_index(a, op.addr) < 0)
		return -EINVAL;
	if (op.op == WIRE_REGION_OPEN) {
		unsigned max = d->cfg.max_named ? d->cfg.max_named
						: DSMD_MAX_NAMED;

		if (a->nnamed >= max) {
			d->refused.regions++;
			return -EMFILE;
		}
		/* Room for the answer's address, made before it is asked. */
		if (a->nnamed == a->named_cap) {
			unsigned cap = a->named_cap ? 2 * a->named_cap : 8;
			uint64_t *n;

			if (cap > max)
				cap = max;
			n = realloc(a->named, cap * sizeof(*n));
			if (!n) {
				d->refused.nomem++;
				return -ENOMEM;
			}
			a->named = n;
			a->named_cap = cap;
		}
	}
	/* The reply finds this process by the tag. */
	a->region_open = op.op == WIRE_REGION_OPEN;
	a->region_addr = op.addr;
	a->coll_req = req_id;
	a->coll_seq_tag = ++d->coll->region_tag;
	return node_send(d, 0, WIRE_REGION_OP, a->coll_seq_tag, &op,
			 sizeof(op));
}

/* dsm_open() and dsm_close() of a process: node 0 answers. */
void region_on_ipc(struct dsmd *d, struct client *c, const struct wire_msg *m,
		   int *fd)
{
	struct wire_region_op op;
	int ret;

	(void)fd;
	memcpy(&op, m->body, sizeof(op));
	ret = region_ipc(d, c->app, m->hdr->req_id, &op);
	if (ret)
		app_reply(c->app, m->hdr->req_id, ret, 0, 0);
}

/* Node 0 answered a process's open (value: the address) or close. */
static void region_done(struct app *a, const struct wire_ipc_reply *rep)
{
	int i = named_index(a, a->region_addr);

	if (rep->status == 0) {
		if (a->region_open)
			a->named[a->nnamed++] = rep->value;
		else if (i >= 0)
			named_forget(a, i);
	}
	app_reply(a, a->coll_req, rep->status, rep->value, rep->value2);
	a->coll_req = 0;
	a->coll_seq_tag = 0;
}

void region_on_reply(struct dsmd *d, int from, const struct wire_msg *m)
{
	uint64_t tag = m->hdr->req_id;
	struct wire_ipc_reply rep;
	struct app *a;

	if (from != 0)
		return;
	memcpy(&rep, m->body, sizeof(rep));
	if (tag == 0)
		return; /* a close for a process that is gone */
	list_for_each(a, &d->apps, link) {
		if (a->coll_req && a->coll_seq_tag == tag) {
			region_done(a, &rep);
			return;
		}
	}
	/* Its process went while node 0 opened the region for it. */
	if (rep.status == 0 && rep.value)
		send_close(d, rep.value);
}
