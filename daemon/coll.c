/* Collectives (barrier, alloc, free), named regions, and the arena's
 * allocator.
 *
 * A collective is counted twice: each node counts its own ranks, and when
 * all of them have arrived it tells node 0 (COLL_ARRIVE, with whether its
 * ranks agreed on the operation and its argument); node 0 counts ranks over
 * the nodes, and when the whole job is in, it decides (allocates, frees, or
 * fails every rank with EINVAL when ranks disagreed) and tells every node
 * (COLL_DONE), which answers its waiting ranks.  Collectives are numbered
 * per rank, so a rank that races ahead into the next one is counted there.
 *
 * Node 0 keeps the allocator: a sorted list of free page extents of the
 * arena.  A freed range is first reset on every node (RESET: pages dropped,
 * directory entries cleared) and only then returned, so that whoever gets
 * it next finds it zero filled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "dsmd.h"

/* A collective being counted: locally (every node), or job-wide (node 0). */
struct coll {
	struct coll *next;
	bool global;
	uint64_t seq, arg;
	uint32_t op, count, size;
	bool mismatch;
};

/* An allocated range of the arena (node 0). */
struct region {
	struct region *next;
	uint64_t first, npages, bytes;
	unsigned refs;          /* named regions: processes that opened it */
	bool named;
	char name[WIRE_NAME_MAX];
};

/* A reset in progress (node 0) and what to do when every node is done. */
struct reset {
	struct reset *next;
	uint64_t first, npages;
	unsigned acks_left;
	bool coll;              /* complete this collective afterwards */
	uint64_t seq;
};


int app_reply(struct app *a, uint64_t req_id, int status, uint64_t v1,
	      uint64_t v2)
{
	struct wire_ipc_reply r = {.status = status, .value = v1, .value2 = v2};

	if (!a->c)
		return -ENOTCONN;
	return ctl_reply(a->c, WIRE_IPC_REPLY, req_id, &r, sizeof(r));
}

/* ---------------------------------------------------------------------- */
/* The allocator (node 0)                                                 */

static int ext_insert(struct mem *m, size_t at, uint64_t first, uint64_t n)
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

static void ext_remove(struct mem *m, size_t at)
{
	memmove(&m->free_ext[2 * at], &m->free_ext[2 * (at + 1)],
		(m->nfree_ext - at - 1) * 2 * sizeof(uint64_t));
	m->nfree_ext--;
}

/* First fit.  Returns the first page, or -ENOMEM. */
static int64_t arena_alloc(struct mem *m, uint64_t n)
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
static void arena_free(struct mem *m, uint64_t first, uint64_t n)
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

/* A new region of `bytes`: its first page, or a negative errno. */
static int64_t region_new(struct dsmd *d, uint64_t bytes, const char *name,
			  struct region **out)
{
	struct mem *m = &d->mem;
	uint64_t n;
	struct region *r;
	int64_t first;

	if (bytes == 0)
		return -EINVAL;
	if (bytes > m->size)
		return -ENOMEM;
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
	r->next = m->regions;
	m->regions = r;
	if (out)
		*out = r;
	return first;
}

static struct region *region_at(struct mem *m, uint64_t addr, bool named)
{
	struct region *r;

	for (r = m->regions; r; r = r->next)
		if (r->named == named &&
		    m->base + r->first * WIRE_PAGE_SIZE == addr)
			return r;
	return NULL;
}

static void region_unlink(struct mem *m, struct region *r)
{
	struct region **pp;

	for (pp = &m->regions; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			return;
		}
	}
}

int coll_setup(struct dsmd *d)
{
	struct mem *m = &d->mem;

	if (d->cfg.node != 0)
		return 0;
	/* Page 0 stays unused: no region starts at the arena's base, so a
	 * stray NULL-relative pointer never lands in a region. */
	return ext_insert(m, 0, 1, m->npages - 1);
}

/* Forget every collective being counted. */
static void colls_clear(struct mem *m)
{
	while (m->colls) {
		struct coll *c = m->colls;

		m->colls = c->next;
		free(c);
	}
}

void coll_teardown(struct dsmd *d)
{
	struct mem *m = &d->mem;

	while (m->regions) {
		struct region *r = m->regions;

		m->regions = r->next;
		free(r);
	}
	colls_clear(m);
	while (d->mem.resets) {
		struct reset *r = d->mem.resets;

		d->mem.resets = r->next;
		free(r);
	}
	free(m->free_ext);
	m->free_ext = NULL;
}

/* ---------------------------------------------------------------------- */
/* Counting                                                               */

static struct coll *coll_find(struct mem *m, bool global, uint64_t seq,
			      bool create)
{
	struct coll *c;

	for (c = m->colls; c; c = c->next)
		if (c->global == global && c->seq == seq)
			return c;
	if (!create)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->global = global;
	c->seq = seq;
	c->next = m->colls;
	m->colls = c;
	return c;
}

static void coll_drop(struct mem *m, struct coll *c)
{
	struct coll **pp;

	for (pp = &m->colls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
	}
}

/* A new job: whatever the last one left half counted is forgotten. */
static void new_job(struct dsmd *d, uint64_t job)
{
	struct mem *m = &d->mem;

	if (m->job == job)
		return;
	colls_clear(m);
	m->job = job;
	m->job_aborted = false;
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

static void broadcast_done(struct dsmd *d, uint64_t seq, int status,
			   uint64_t value)
{
	struct wire_coll_done done = {.job = d->mem.job, .seq = seq,
				      .status = status, .value = value};
	int i;

	for (i = 0; i < d->cfg.nnodes; i++)
		if (i == d->cfg.node || cluster_peer_alive(d, i))
			mem_send(d, i, WIRE_COLL_DONE, 0, &done, sizeof(done));
}

static void start_reset(struct dsmd *d, struct region *r, bool coll,
			uint64_t seq)
{
	struct wire_reset body = {.first_page = r->first, .npages = r->npages};
	struct reset *x = calloc(1, sizeof(*x));
	int i;

	if (!x) {
		log_err("out of memory resetting a region: it is not reused");
		if (coll)
			broadcast_done(d, seq, 0, 0);
		return;
	}
	*x = (struct reset){.first = r->first, .npages = r->npages,
			    .coll = coll, .seq = seq, .next = d->mem.resets};
	d->mem.resets = x;
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i != d->cfg.node && !cluster_peer_alive(d, i))
			continue;
		if (mem_send(d, i, WIRE_RESET, 0, &body, sizeof(body)) == 0)
			x->acks_left++;
	}
}

static void on_reset_ack(struct dsmd *d, const struct wire_reset *b)
{
	struct reset **pp, *x;

	for (pp = &d->mem.resets; (x = *pp); pp = &x->next)
		if (x->first == b->first_page && x->npages == b->npages)
			break;
	if (!x) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (--x->acks_left)
		return;
	*pp = x->next;
	arena_free(&d->mem, x->first, x->npages);
	if (x->coll)
		broadcast_done(d, x->seq, 0, 0);
	free(x);
}

/* Node 0: the whole job is in. */
static void decide(struct dsmd *d, struct coll *c)
{
	struct mem *m = &d->mem;
	struct region *r;
	uint64_t seq = c->seq, arg = c->arg;
	uint32_t op = c->op;
	bool mismatch = c->mismatch;
	int64_t first;

	coll_drop(m, c);
	if (mismatch) {
		broadcast_done(d, seq, -EINVAL, 0);
		return;
	}
	switch (op) {
	case WIRE_COLL_BARRIER:
		broadcast_done(d, seq, 0, 0);
		return;
	case WIRE_COLL_ALLOC:
		first = region_new(d, arg, NULL, NULL);
		if (first < 0)
			broadcast_done(d, seq, (int)first, 0);
		else
			broadcast_done(d, seq, 0,
				       m->base + (uint64_t)first *
							 WIRE_PAGE_SIZE);
		return;
	default:
		r = region_at(m, arg, false);
		if (!r) {
			broadcast_done(d, seq, -EINVAL, 0);
			return;
		}
		region_unlink(m, r);
		start_reset(d, r, true, seq);
		free(r);
		return;
	}
}

/* Node 0: a rank of the job died.  Every collective of the job, pending
 * or to come, fails with ECONNABORTED on every node, rather than wait for
 * a rank that will never arrive. */
static void abort_job(struct dsmd *d, uint64_t job)
{
	struct mem *m = &d->mem;

	new_job(d, job);
	if (m->job_aborted)
		return;
	colls_clear(m);
	broadcast_done(d, WIRE_COLL_SEQ_ABORT, -ECONNABORTED, 0);
}

static void on_arrive(struct dsmd *d, const struct wire_coll_arrive *a)
{
	struct coll *c;

	if (d->cfg.node == 0 && a->op == WIRE_COLL_ABORT) {
		abort_job(d, a->job);
		return;
	}
	if (d->cfg.node != 0 || a->count == 0 || a->size == 0 ||
	    a->count > a->size) {
		d->mem.st.bad_msgs++;
		return;
	}
	new_job(d, a->job);
	c = coll_find(&d->mem, true, a->seq, true);
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
static void local_abort(struct dsmd *d, uint64_t job)
{
	struct app *a;

	new_job(d, job);
	d->mem.job_aborted = true;
	colls_clear(&d->mem);
	for (a = d->mem.apps; a; a = a->next) {
		if (a->job == job && a->coll_req && !a->coll_seq_tag) {
			app_reply(a, a->coll_req, -ECONNABORTED, 0, 0);
			a->coll_req = 0;
		}
	}
}

void coll_peer_down(struct dsmd *d, int node)
{
	/* Its ranks will never arrive; without node 0 nothing is counted. */
	if (d->cfg.node == 0)
		abort_job(d, d->mem.job);
	else if (node == 0)
		local_abort(d, d->mem.job);
}

static void on_done(struct dsmd *d, const struct wire_coll_done *done)
{
	struct app *a;

	if (done->seq == WIRE_COLL_SEQ_ABORT) {
		local_abort(d, done->job);
		return;
	}
	if (done->job != d->mem.job)
		return;
	for (a = d->mem.apps; a; a = a->next) {
		if (a->coll_req && a->coll_seq == done->seq + 1) {
			app_reply(a, a->coll_req, done->status, done->value, 0);
			a->coll_req = 0;
		}
	}
}

int coll_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
	     const struct wire_ipc_coll *req)
{
	struct mem *m = &d->mem;
	struct wire_coll_arrive arr;
	struct coll *c;

	if (req->op < WIRE_COLL_BARRIER || req->op > WIRE_COLL_FREE ||
	    req->seq != a->coll_seq || a->coll_req || req_id == 0)
		return -EPROTO;
	new_job(d, a->job);
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
	coll_drop(m, c);
	mem_send(d, 0, WIRE_COLL_ARRIVE, 0, &arr, sizeof(arr));
	return 0;
}

void coll_app_gone(struct dsmd *d, struct app *a, bool died)
{
	struct wire_coll_arrive abort = {.job = a->job, .op = WIRE_COLL_ABORT,
					 .size = a->size};

	a->coll_req = 0;
	if (!died)
		return;
	log_warn("rank %u (process %u) left without dsm_finalize(): the "
		 "job's collectives fail from now on", a->rank, a->pid);
	mem_send(d, 0, WIRE_COLL_ARRIVE, 0, &abort, sizeof(abort));
}

/* ---------------------------------------------------------------------- */
/* Named regions                                                          */

static int region_open(struct dsmd *d, const struct wire_region_op *op,
		       uint64_t *addr, uint64_t *size)
{
	struct mem *m = &d->mem;
	struct region *r;
	int64_t first;

	for (r = m->regions; r; r = r->next)
		if (r->named && !strcmp(r->name, op->name))
			break;
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
	*addr = m->base + r->first * WIRE_PAGE_SIZE;
	*size = r->bytes;
	return 0;
}

static int region_close(struct dsmd *d, uint64_t addr)
{
	struct region *r = region_at(&d->mem, addr, true);

	if (!r)
		return -EINVAL;
	if (--r->refs)
		return 0;
	region_unlink(&d->mem, r);
	start_reset(d, r, false, 0);
	free(r);
	return 0;
}

/* Node 0 serves a region operation from `from`. */
static void on_region_op(struct dsmd *d, int from, uint64_t req_id,
			 const struct wire_region_op *op)
{
	struct wire_ipc_reply rep = {0};
	uint64_t addr = 0, size = 0;

	if (d->cfg.node != 0) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (op->op == WIRE_REGION_OPEN) {
		rep.status = region_open(d, op, &addr, &size);
		rep.value = addr;
		rep.value2 = size;
	} else
		rep.status = region_close(d, op->addr);
	mem_send(d, from, WIRE_REGION_REPLY, req_id, &rep, sizeof(rep));
}

static bool name_ok(const char *name)
{
	size_t n = strnlen(name, WIRE_NAME_MAX);

	return n > 0 && n < WIRE_NAME_MAX;
}

int region_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
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
	/* The reply finds this process by the tag. */
	a->coll_req = req_id;
	a->coll_seq_tag = ++d->mem.region_tag;
	return mem_send(d, 0, WIRE_REGION_OP, a->coll_seq_tag, &op, sizeof(op));
}

static void on_region_reply(struct dsmd *d, uint64_t tag,
			    const struct wire_ipc_reply *rep)
{
	struct app *a;

	for (a = d->mem.apps; a; a = a->next) {
		if (a->coll_req && a->coll_seq_tag == tag) {
			app_reply(a, a->coll_req, rep->status, rep->value,
				  rep->value2);
			a->coll_req = 0;
			a->coll_seq_tag = 0;
			return;
		}
	}
}

void coll_on_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	union {
		struct wire_coll_arrive arrive;
		struct wire_coll_done done;
		struct wire_region_op op;
		struct wire_ipc_reply rep;
		struct wire_reset reset;
	} b;

	memcpy(&b, m->body, m->body_len);
	switch (m->hdr->type) {
	case WIRE_COLL_ARRIVE:
		on_arrive(d, &b.arrive);
		break;
	case WIRE_COLL_DONE:
		if (from == 0)
			on_done(d, &b.done);
		break;
	case WIRE_REGION_OP:
		b.op.name[WIRE_NAME_MAX - 1] = 0;
		on_region_op(d, from, m->hdr->req_id, &b.op);
		break;
	case WIRE_REGION_REPLY:
		if (from == 0)
			on_region_reply(d, m->hdr->req_id, &b.rep);
		break;
	case WIRE_RESET:
		if (from != 0)
			break;
		mem_reset_range(d, b.reset.first_page, b.reset.npages);
		mem_send(d, 0, WIRE_RESET_ACK, 0, &b.reset, sizeof(b.reset));
		break;
	case WIRE_RESET_ACK:
		if (d->cfg.node == 0)
			on_reset_ack(d, &b.reset);
		break;
	}
}
