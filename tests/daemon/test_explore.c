/* Every order of delivery, explored (unit test "explore").
 *
 * The real dsmd cores on the in-memory transport, as in test_dsm.c, run a
 * small scenario: a few nodes, one or two pages, each node's operations
 * (read or write faults, in its program order, the next once the last is
 * over) and maybe a node's death at any moment.  A step is one choice
 * among everything that could happen next: a node handles what it sent
 * itself, a node takes the next event one peer sent it (each pair in
 * order, as on a queue pair; the pairs in any order), a node starts its
 * next operation, the death.  The explorer runs every sequence of choices
 * up to a bound, depth first, re-running the scenario from its start for
 * each (the cores cannot be copied), and stops following a sequence that
 * reaches a state already explored (a hash of what the protocol can see:
 * every node's pages, entries, transactions, inbox and queue to itself,
 * the operations' progress and the values last written).
 *
 * After every step it checks: at most one live node holds a page writable,
 * and none holds it readable then; every live node whose copy is readable
 * and not in a transaction holds the last value written; no node counted
 * a bad message (an honest cluster sends none: a grant twice, an ack for
 * nothing); and when nothing can happen any more, every operation of a
 * live node is over (served, or failed with SIGBUS because its page died).
 *
 * Time does not move: hold times are 0, and no deadline or heartbeat
 * runs; a death is a kill, which every live node hears.  The number of
 * runs, the states seen, and the deepest run are printed for each
 * scenario.  DSM_EXPLORE_RUNS bounds the runs per scenario (default
 * below); a scenario that hits the bound says so.
 */
#define ARENA (1u << 20) /* small: a run sets up its nodes anew */
#define TEST_TIMEOUT_S 300 /* a scenario explores for seconds */
#include "lock_harness.h"

#include <stdio.h>

#define MAXOPS 8
#define MAXDEPTH 200
#define NSEEDS 8

enum { OP_READ, OP_WRITE, OP_KILL, OP_LOCK, OP_CONVERT, OP_UNLOCK };

struct op {
	int node, kind;
	uint64_t page;
	int mode;          /* OP_LOCK, OP_CONVERT */
};

struct scenario {
	const char *name;
	int nnodes;
	uint64_t pages[2];
	int npages;
	struct op ops[MAXOPS];
	int nops;
	bool peer_off;     /* --peer-reads off */
	int lock_home;     /* the lock's placement (one lock, "x<n>") */
	bool moving;       /* entries move to the node that uses them most */
	unsigned max_runs; /* 0: the default */
};

/* One run's progress through the scenario. */
static struct {
	const struct scenario *sc;
	int next[NMAX + 1];        /* per node (NMAX: the killer): its next op */
	bool in_flight[NMAX];
	uint64_t lost_before[NMAX];
	bool dead[NMAX];
	int deaths;
	unsigned refaults;
	uint64_t last[2];          /* seed last written to each page */
	/* The lock: each node's process, its lock, the request out. */
	struct proc *proc[NMAX];
	uint64_t lkid[NMAX], req[NMAX];
	uint64_t key;
	const char *name;
	uint64_t seed;
	unsigned long bad_at_start[NMAX];
} R;

/* The choices made so far, and how many there were at each depth. */
static struct {
	uint16_t pick[MAXDEPTH], count[MAXDEPTH];
	int depth;
} path;

/* Visited states: an open-addressed set of hashes. */
static uint64_t *seen;
static size_t seen_cap, seen_n;

static bool seen_add(uint64_t h)
{
	size_t i;

	if (!h)
		h = 1;
	if (seen_n * 2 >= seen_cap) {
		uint64_t *old = seen;
		size_t cap = seen_cap;

		seen_cap = cap ? cap * 2 : 1 << 16;
		seen = calloc(seen_cap, sizeof(*seen));
		if (!seen)
			abort();
		seen_n = 0;
		for (i = 0; i < cap; i++)
			if (old[i])
				seen_add(old[i]);
		free(old);
	}
	for (i = h & (seen_cap - 1); seen[i]; i = (i + 1) & (seen_cap - 1))
		if (seen[i] == h)
			return false;
	seen[i] = h;
	seen_n++;
	return true;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static int page_idx(uint64_t page)
{
	return page == R.sc->pages[0] ? 0 : 1;
}

/* Which seed the node's copy holds: 0 none of those written. */
static uint64_t content(int n, uint64_t page)
{
	for (uint64_t s = 1; s <= R.seed; s++)
		if (holds(n, page, s))
			return s;
	return 0;
}

/* Entries move after 2 requests of which one node made 60%, at once
 * (the clock does not move, and a window is 1 s). */
static const struct wire_policy moving = {
	.migrate = 1, .share_pct = 60, .min_requests = 2, .window_ms = 1000,
	.load_pct = 100000};

static uint64_t lkb_hash(uint64_t h, const struct list *q)
{
	const struct lkb *b;

	list_for_each(b, q, link)
		h = mix(mix(h, b->id.node | (uint64_t)b->id.handle << 16),
			b->grmode | b->rqmode << 8 | (uint64_t)b->opseq << 16);
	return mix(h, 0xff);
}

/* The lock as node d knows it: the resource (where it is, its queues) and
 * its process's lock. */
static uint64_t lock_hash(struct dsmd *d)
{
	struct lres *r = lock_res_get(d, R.key, false);
	struct proc *p = R.proc[d->cfg.node];
	uint64_t h = mix(0x77, d->lk->dead);
	struct lpend *pe;

	for (int i = 0; i < tc.n; i++)
		h = mix(h, d->lk->await[i]);
	list_for_each(pe, &d->lk->held, link)
		h = mix(h, pe->op.op | (uint64_t)pe->op.id.handle << 8);
	if (r) {
		h = mix(h, r->h.flags | r->h.hint << 8 |
			   (uint64_t)r->h.epoch << 32);
		h = mix(h, r->asking | r->rebuilding << 1 | r->replaying << 2);
		h = lkb_hash(h, &r->granted);
		h = lkb_hash(h, &r->converting);
		h = lkb_hash(h, &r->waiting);
		list_for_each(pe, &r->parked, link)
			h = mix(h, pe->op.op | (uint64_t)pe->op.id.handle << 8);
	}
	if (p && p->c.lk) {
		const struct llock *l;

		list_for_each(l, &p->c.lk->locks, olink)
			h = mix(h, l->state | l->grmode << 8 |
				   (uint64_t)l->rqmode << 16 |
				   (uint64_t)l->opseq << 24 |
				   (uint64_t)(uint32_t)l->cancel << 40);
	}
	return h;
}

static uint64_t state_hash(void)
{
	uint64_t h = 0x1234;

	for (int n = 0; n < tc.n; n++) {
		struct dsmd *d = &tc.d[n];
		struct kept *k;

		h = mix(h, R.dead[n]);
		if (R.dead[n])
			continue;
		for (int i = 0; i < R.sc->npages; i++) {
			uint64_t p = R.sc->pages[i];
			struct page *pg = page_of(n, p);
			struct dentry *e = dir_entry(d, p, false);

			if (pg) {
				h = mix(h, pg->state | pg->busy << 8 |
					   pg->peer << 16 |
					   (uint64_t)pg->peer_copy << 32);
				h = mix(h, pg->given);
				h = mix(h, pg->version);
				if (pg->state != WIRE_PS_I)
					h = mix(h, content(n, p));
				if (pg->busy) {
					struct txn *t = req_of(d, pg);

					h = mix(h, t->grant_seen | t->data_got << 1 |
						   t->asking << 2 | t->peer << 3 |
						   (uint64_t)t->state << 8);
					h = mix(h, t->acks_got | (uint64_t)t->acks_needed << 32);
					h = mix(h, t->also ^ t->also_acked << 1);
					h = mix(h, (uint64_t)(uint16_t)t->master |
						   (uint64_t)(uint16_t)t->sent_to << 16);
				}
			}
			if (e) {
				h = mix(h, e->state | e->busy << 8 |
					   (uint64_t)e->owner << 16 |
					   (uint64_t)e->strays << 32);
				h = mix(h, e->sharers);
				h = mix(h, e->version);
				h = mix(h, e->h.flags | e->h.hint << 8 |
					   (uint64_t)e->h.epoch << 32);
				h = mix(h, e->owe);
			}
		}
		if (R.name)
			h = mix(h, lock_hash(d));
		h = mix(h, xport_mock_inbox_hash(d->x));
		list_for_each(k, &d->self_q, link) {
			h = mix(h, k->type | (uint64_t)k->from << 8);
			for (uint32_t i = 0; i < k->len; i++)
				h = mix(h, k->body[i]);
		}
		h = mix(h, R.next[n] | R.in_flight[n] << 8);
	}
	h = mix(h, R.next[NMAX]);
	h = mix(h, R.last[0] | R.last[1] << 16);
	return h;
}

/* The next op of `who` (a node, or NMAX: the killer), or NULL. */
static const struct op *next_op(int who)
{
	int seen_ops = 0;

	for (int i = 0; i < R.sc->nops; i++) {
		const struct op *o = &R.sc->ops[i];
		int owner = o->kind == OP_KILL ? NMAX : o->node;

		if (owner != who)
			continue;
		if (seen_ops++ == R.next[who])
			return o;
	}
	return NULL;
}

static void start_op(int who)
{
	const struct op *o = next_op(who);

	R.next[who]++;
	if (o->kind == OP_KILL) {
		if (xport_mock_kill(tc.f, o->node))
			abort();
		R.dead[o->node] = true;
		R.deaths++;
		return;
	}
	R.in_flight[who] = true;
	R.lost_before[who] = st(who)->lost_faults;
	switch (o->kind) {
	case OP_READ:
		fault(who, o->page, RD);
		break;
	case OP_WRITE:
		fault(who, o->page, state(who, o->page) == WIRE_PS_S ? WP : WR);
		break;
	case OP_LOCK:
		R.req[who] = lock_req(R.proc[who], &R.lkid[who], o->mode, 0,
				      R.name, 0, 0, false);
		break;
	case OP_CONVERT:
		R.req[who] = lock_req(R.proc[who], &R.lkid[who], o->mode,
				      DSM_LKF_CONVERT, NULL, 0, 0, false);
		break;
	case OP_UNLOCK:
		R.req[who] = unlock_req(R.proc[who], R.lkid[who], 0, NULL);
		break;
	}
}

/* The events a request got so far (the process reads them at once). */
static unsigned answers(uint64_t req)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ndones; i++)
		n += dones[i].req == req;
	return n;
}

/* Operations that ended in the last step: a writer stores its value at
 * once (its thread runs on). */
static void finish_ops(void)
{
	for (int n = 0; n < tc.n; n++)
		if (R.proc[n] && !R.dead[n])
			drain(R.proc[n]);
	for (int n = 0; n < tc.n; n++) {
		const struct op *o;
		uint64_t p;

		if (!R.in_flight[n] || R.dead[n])
			continue;
		/* in_flight: next[n] was already moved past it */
		R.next[n]--;
		o = next_op(n);
		R.next[n]++;
		if (o->kind >= OP_LOCK) {
			if (answers(R.req[n]))
				R.in_flight[n] = false;
			continue;
		}
		p = o->page;
		if (busy(n, p))
			continue;
		if (st(n)->lost_faults > R.lost_before[n]) {
			R.in_flight[n] = false;
			continue;
		}
		if (o->kind == OP_READ && state(n, p) != WIRE_PS_I) {
			R.in_flight[n] = false;
		} else if (o->kind == OP_WRITE && state(n, p) == WIRE_PS_M) {
			R.in_flight[n] = false;
			R.last[page_idx(p)] = ++R.seed;
			store(n, p, R.seed);
		} else {
			/* Served, and taken again before the thread ran
			 * (a hold time of 0): its access faults again. */
			R.refaults++;
			if (o->kind == OP_READ)
				fault(n, p, RD);
			else
				fault(n, p, state(n, p) == WIRE_PS_S ? WP : WR);
		}
	}
}

/* What can happen next, in a fixed order: choice c of `count`. */
enum act { ACT_SELF, ACT_DELIVER, ACT_OP };

struct choice {
	enum act act;
	int node, from;
};

static int choices(struct choice *c)
{
	int k = 0;

	for (int n = 0; n < tc.n; n++) {
		if (R.dead[n])
			continue;
		if (!list_empty(&tc.d[n].self_q))
			c[k++] = (struct choice){ACT_SELF, n, n};
		for (int from = 0; from < tc.n; from++)
			if (from != n && xport_mock_pending(tc.d[n].x, from, 0))
				c[k++] = (struct choice){ACT_DELIVER, n, from};
	}
	for (int who = 0; who <= NMAX; who++) {
		if (who < NMAX && (who >= tc.n || R.dead[who] ||
				   R.in_flight[who]))
			continue;
		if (next_op(who))
			c[k++] = (struct choice){ACT_OP, who, -1};
	}
	return k;
}

static void apply(const struct choice *c)
{
	log_setup("dsmd", c->node < NMAX ? c->node : -1);
	switch (c->act) {
	case ACT_SELF:
		node_run_self(&tc.d[c->node]);
		break;
	case ACT_DELIVER:
		xport_mock_step_from(tc.d[c->node].x, c->from);
		break;
	case ACT_OP:
		start_op(c->node);
		break;
	}
	finish_ops();
}

static char why[256];
static unsigned long moves_seen; /* entries moved, over a scenario's runs */

static void count_moves(void)
{
	for (int n = 0; n < tc.n; n++)
		moves_seen += st(n)->migrations_out;
}

/* The lock: no two processes hold it in modes the matrix forbids, as
 * their own nodes know it (what each program may do now), nor as a
 * master's queues say; one live master at most; no request answered
 * twice. */
static bool check_lock(void)
{
	int held[NMAX], masters = 0;

	for (int n = 0; n < tc.n; n++) {
		const struct llock *l;

		held[n] = -1;
		if (R.dead[n] || !R.proc[n] || !R.proc[n]->c.lk)
			continue;
		list_for_each(l, &R.proc[n]->c.lk->locks, olink)
			if (l->state == LS_GRANTED ||
			    l->state == LS_CONVERTING)
				held[n] = l->grmode;
		if (R.req[n] && answers(R.req[n]) > 1) {
			snprintf(why, sizeof(why), "node %d's request %llu "
				 "answered %u times", n,
				 (unsigned long long)R.req[n],
				 answers(R.req[n]));
			return false;
		}
	}
	for (int a = 0; a < tc.n; a++)
		for (int b = a + 1; b < tc.n; b++)
			if (held[a] >= 0 && held[b] >= 0 &&
			    !lock_compatible((unsigned)held[a],
					     (unsigned)held[b])) {
				snprintf(why, sizeof(why), "nodes %d and %d hold "
					 "the lock in modes %d and %d", a, b,
					 held[a], held[b]);
				return false;
			}
	for (int n = 0; n < tc.n; n++) {
		struct lres *r;
		const struct lkb *x, *y;
		const struct list *qs[2];

		if (R.dead[n] || !(r = lock_res_get(&tc.d[n], R.key, false)) ||
		    !home_is_master(&tc.d[n], R.key, &r->h))
			continue;
		masters++;
		qs[0] = &r->granted;
		qs[1] = &r->converting;
		for (int i = 0; i < 2; i++)
			list_for_each(x, qs[i], link)
				for (int j = 0; j < 2; j++)
					list_for_each(y, qs[j], link)
						if (x != y &&
						    !lock_compatible(x->grmode,
								     y->grmode)) {
							snprintf(why, sizeof(why),
								 "node %d grants "
								 "modes %d and %d "
								 "at once", n,
								 x->grmode,
								 y->grmode);
							return false;
						}
	}
	if (masters > 1) {
		snprintf(why, sizeof(why), "%d live nodes master the lock",
			 masters);
		return false;
	}
	return true;
}

/* The invariants after a step; false with `why` set. */
static bool check_step(void)
{
	for (int i = 0; i < R.sc->npages; i++) {
		uint64_t p = R.sc->pages[i];
		int writers = 0, readers = 0;

		for (int n = 0; n < tc.n; n++) {
			if (R.dead[n])
				continue;
			if (state(n, p) == WIRE_PS_M)
				writers++;
			else if (state(n, p) == WIRE_PS_S)
				readers++;
			if (state(n, p) != WIRE_PS_I && !busy(n, p) &&
			    R.last[i] && !holds(n, p, R.last[i])) {
				snprintf(why, sizeof(why),
					 "node %d holds page %llu (state %d) "
					 "without the last value written (%llu)",
					 n, (unsigned long long)p, state(n, p),
					 (unsigned long long)R.last[i]);
				return false;
			}
		}
		if (writers > 1 || (writers && readers)) {
			snprintf(why, sizeof(why),
				 "page %llu: %d writable and %d readable copies",
				 (unsigned long long)p, writers, readers);
			return false;
		}
	}
	if (R.name && !check_lock())
		return false;
	/* After a death a late message for what the death ended is
	 * dropped and counted (a page for an abandoned transaction). */
	for (int n = 0; n < tc.n && !R.deaths; n++)
		if (st(n)->bad_msgs != R.bad_at_start[n]) {
			snprintf(why, sizeof(why),
				 "node %d counted a bad message", n);
			return false;
		}
	return true;
}

static bool check_end(void)
{
	for (int n = 0; n < tc.n; n++) {
		if (R.dead[n])
			continue;
		if (R.in_flight[n] || next_op(n)) {
			snprintf(why, sizeof(why),
				 "nothing can happen, yet node %d's operation "
				 "%d is not over", n, R.next[n] - 1);
			return false;
		}
		for (int i = 0; i < R.sc->npages; i++)
			if (busy(n, R.sc->pages[i])) {
				snprintf(why, sizeof(why),
					 "nothing can happen, yet node %d's "
					 "page %llu waits", n,
					 (unsigned long long)R.sc->pages[i]);
				return false;
			}
	}
	return true;
}

static void say_path(void)
{
	fprintf(stderr, "  the choices:");
	for (int i = 0; i < path.depth; i++)
		fprintf(stderr, " %u/%u", path.pick[i], path.count[i]);
	fprintf(stderr, "\n");
}

/* One run along path (extended by first choices); 0, or -1 when an
 * invariant broke.  *deepest gets the run's length. */
static int run_once(const struct scenario *sc, int *len)
{
	struct choice c[64];
	int d, n, prefix = path.depth;

	tc_peer_off = sc->peer_off;
	tc_policy = sc->moving ? moving : (struct wire_policy){0};
	if (setup(sc->nnodes, 0))
		abort();
	tc_peer_off = false;
	pump(); /* the cluster forms: before the scenario */
	memset(&R, 0, sizeof(R));
	R.sc = sc;
	nprocs = 0;
	ndones = 0;
	for (int i = 0; i < sc->nops; i++) {
		const struct op *o = &sc->ops[i];

		if (o->kind < OP_LOCK || R.proc[o->node])
			continue;
		R.proc[o->node] = proc_new(o->node);
		if (!R.name) {
			R.name = name_on(sc->lock_home, "x");
			R.key = lock_key(0, R.name, strlen(R.name));
		}
	}
	for (int i = 0; i < tc.n; i++)
		R.bad_at_start[i] = st(i)->bad_msgs;
	for (d = 0; d < MAXDEPTH; d++) {
		n = choices(c);
		if (!n) {
			path.depth = d;
			*len = d;
			if (!check_end()) {
				say_path();
				return -1;
			}
			count_moves();
			lteardown();
			return 0;
		}
		if (n > 64)
			abort();
		if (d >= prefix) {
			path.pick[d] = 0;
			path.count[d] = (uint16_t)n;
		} else if (path.count[d] != n) {
			snprintf(why, sizeof(why), "not deterministic: %d "
				 "choices at depth %d, %u before", n, d,
				 path.count[d]);
			return -1;
		}
		apply(&c[path.pick[d]]);
		path.depth = d + 1;
		if (!check_step()) {
			say_path();
			return -1;
		}
		/* The state after the choice this run changed counts too:
		 * explored from already, its subtree is not run again. */
		if (d >= prefix - 1 && !seen_add(state_hash())) {
			/* Explored from here already. */
			*len = d + 1;
			count_moves();
			lteardown();
			return 0;
		}
	}
	*len = d;
	snprintf(why, sizeof(why), "a run longer than %d steps", MAXDEPTH);
	say_path();
	return -1;
}

/* The next path in depth-first order; false when all were run. */
static bool next_path(void)
{
	while (path.depth > 0) {
		int d = path.depth - 1;

		if (path.pick[d] + 1 < path.count[d]) {
			path.pick[d]++;
			return true;
		}
		path.depth--;
	}
	return false;
}

static int explore(const struct scenario *sc)
{
	unsigned long runs = 0, bound = sc->max_runs ? sc->max_runs : 100000;
	const char *env = getenv("DSM_EXPLORE_RUNS");
	int deepest = 0, len;

	if (env && atol(env) > 0)
		bound = (unsigned long)atol(env);
	log_set_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	seen_n = 0;
	moves_seen = 0;
	if (seen)
		memset(seen, 0, seen_cap * sizeof(*seen));
	path.depth = 0;
	if ((env = getenv("DSM_EXPLORE_PATH"))) {
		/* One run along the choices given ("0/2 1/3 ..." as printed):
		 * to watch it with TEST_DEBUG=1. */
		char *end;

		while (*env && path.depth < MAXDEPTH) {
			path.pick[path.depth] = (uint16_t)strtoul(env, &end, 10);
			if (*end == '/')
				path.count[path.depth] =
					(uint16_t)strtoul(end + 1, &end, 10);
			path.depth++;
			env = end;
			while (*env == ' ')
				env++;
		}
		bound = 1;
	}
	do {
		if (run_once(sc, &len)) {
			fprintf(stderr, "explore %s: run %lu: %s\n", sc->name,
				runs + 1, why);
			lteardown();
			return -1;
		}
		if (len > deepest)
			deepest = len;
		runs++;
	} while (runs < bound && next_path());
	printf("explore %s: %lu runs, %zu states, deepest %d steps%s%s\n",
	       sc->name, runs, seen_n, deepest,
	       runs >= bound ? " (stopped at the bound)" : ", all explored",
	       sc->moving ? (moves_seen ? ", entries moved" :
			     ", NO entry moved") : "");
	if (sc->moving && !moves_seen) {
		fprintf(stderr, "explore %s: no run moved an entry\n",
			sc->name);
		return -1;
	}
	return 0;
}

/* Page 3: master node 1 of 2; page 4: node 1 of 3; page 5: node 2. */
#define W(n, p) {.node = n, .kind = OP_WRITE, .page = p}
#define RD_(n, p) {.node = n, .kind = OP_READ, .page = p}
#define KILL(n) {.node = n, .kind = OP_KILL}
#define LK(n, m) {.node = n, .kind = OP_LOCK, .mode = DSM_LK_##m}
#define CV(n, m) {.node = n, .kind = OP_CONVERT, .mode = DSM_LK_##m}
#define UL(n) {.node = n, .kind = OP_UNLOCK}
static const struct scenario scenarios[] = {
	{.name = "read_write_2", .nnodes = 2, .pages = {3}, .npages = 1,
	 .ops = {W(0, 3), RD_(1, 3), W(1, 3)}, .nops = 3},
	{.name = "two_writers_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), W(2, 4), RD_(0, 4)}, .nops = 3},
	{.name = "upgrade_race_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {RD_(0, 4), RD_(2, 4), W(0, 4), W(2, 4)}, .nops = 4},
	{.name = "peer_read_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), RD_(2, 4), W(0, 4), RD_(2, 4)}, .nops = 4},
	{.name = "master_dies_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), RD_(2, 4), KILL(1)}, .nops = 3},
	{.name = "holder_dies_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), RD_(2, 4), W(2, 4), KILL(0)}, .nops = 4},
	{.name = "two_pages_3", .nnodes = 3, .pages = {4, 5}, .npages = 2,
	 .ops = {W(0, 4), W(2, 5), RD_(0, 5), RD_(2, 4)}, .nops = 4},
	{.name = "three_writers_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), W(1, 4), W(2, 4), RD_(0, 4)}, .nops = 4},
	{.name = "sharer_dies_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {RD_(0, 4), RD_(2, 4), W(0, 4), KILL(2)}, .nops = 4},
	{.name = "writer_dies_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(2, 4), RD_(0, 4), W(0, 4), KILL(2)}, .nops = 4},
	{.name = "peer_holder_dies_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .ops = {W(0, 4), RD_(2, 4), W(0, 4), RD_(2, 4), KILL(0)}, .nops = 5},
	{.name = "upgrades_4", .nnodes = 4, .pages = {5}, .npages = 1,
	 .ops = {RD_(0, 5), RD_(2, 5), RD_(3, 5), W(0, 5), W(3, 5)},
	 .nops = 5},
	{.name = "lock_two_3", .nnodes = 3, .lock_home = 1,
	 .ops = {LK(0, EX), LK(2, PR), UL(0), UL(2)}, .nops = 4},
	{.name = "lock_convert_3", .nnodes = 3, .lock_home = 1,
	 .ops = {LK(0, PR), LK(2, PR), CV(0, EX), UL(2), UL(0)}, .nops = 5},
	{.name = "lock_three_3", .nnodes = 3, .lock_home = 0,
	 .ops = {LK(0, PW), LK(1, CR), LK(2, PR), UL(0), UL(1), UL(2)},
	 .nops = 6},
	{.name = "lock_master_dies_3", .nnodes = 3, .lock_home = 1,
	 .ops = {LK(0, EX), LK(2, EX), KILL(1), UL(0), UL(2)}, .nops = 5},
	{.name = "lock_holder_dies_3", .nnodes = 3, .lock_home = 1,
	 .ops = {LK(0, EX), LK(2, PR), KILL(0), UL(2)}, .nops = 4},
	{.name = "lock_convert_dies_3", .nnodes = 3, .lock_home = 0,
	 .ops = {LK(0, PR), LK(2, PR), CV(0, EX), KILL(2), UL(0)},
	 .nops = 5},
	{.name = "lock_waiter_master_dies_3", .nnodes = 3, .lock_home = 2,
	 .ops = {LK(0, PR), LK(1, EX), KILL(2), UL(0), UL(1)}, .nops = 5},
	{.name = "page_moves_3", .nnodes = 3, .pages = {4}, .npages = 1,
	 .moving = true,
	 .ops = {RD_(0, 4), W(0, 4), RD_(2, 4), W(0, 4), RD_(2, 4)},
	 .nops = 5},
	{.name = "lock_moves_3", .nnodes = 3, .lock_home = 1, .moving = true,
	 .ops = {LK(0, EX), UL(0), LK(0, PR), LK(2, EX), UL(0), UL(2)},
	 .nops = 6},
	{.name = "page_moves_writers_3", .nnodes = 3, .pages = {4},
	 .npages = 1, .moving = true,
	 .ops = {W(0, 4), W(2, 4), W(0, 4), RD_(2, 4), W(0, 4)}, .nops = 5},
	{.name = "page_moves_home_dies_3", .nnodes = 3, .pages = {4},
	 .npages = 1, .moving = true,
	 .ops = {RD_(0, 4), W(0, 4), RD_(2, 4), KILL(1)}, .nops = 4},
	{.name = "lock_moves_home_dies_3", .nnodes = 3, .lock_home = 1,
	 .moving = true,
	 .ops = {LK(0, EX), UL(0), LK(0, PR), LK(2, PR), KILL(1), UL(0),
		 UL(2)}, .nops = 7},
};

#define EXPLORE_TEST(i, fn)                                                 \
	static int fn(void) { return explore(&scenarios[i]); }
EXPLORE_TEST(0, test_read_write_2)
EXPLORE_TEST(1, test_two_writers_3)
EXPLORE_TEST(2, test_upgrade_race_3)
EXPLORE_TEST(3, test_peer_read_3)
EXPLORE_TEST(4, test_master_dies_3)
EXPLORE_TEST(5, test_holder_dies_3)
EXPLORE_TEST(6, test_two_pages_3)
EXPLORE_TEST(7, test_three_writers_3)
EXPLORE_TEST(8, test_sharer_dies_3)
EXPLORE_TEST(9, test_writer_dies_3)
EXPLORE_TEST(10, test_peer_holder_dies_3)
EXPLORE_TEST(11, test_upgrades_4)
EXPLORE_TEST(12, test_lock_two_3)
EXPLORE_TEST(13, test_lock_convert_3)
EXPLORE_TEST(14, test_lock_three_3)
EXPLORE_TEST(15, test_lock_master_dies_3)
EXPLORE_TEST(16, test_lock_holder_dies_3)
EXPLORE_TEST(17, test_lock_convert_dies_3)
EXPLORE_TEST(18, test_lock_waiter_master_dies_3)
EXPLORE_TEST(19, test_page_moves_3)
EXPLORE_TEST(20, test_lock_moves_3)
EXPLORE_TEST(21, test_page_moves_writers_3)
EXPLORE_TEST(22, test_page_moves_home_dies_3)
EXPLORE_TEST(23, test_lock_moves_home_dies_3)

static const struct test_case tests[] = {
	{"read_write_2", test_read_write_2},
	{"two_writers_3", test_two_writers_3},
	{"upgrade_race_3", test_upgrade_race_3},
	{"peer_read_3", test_peer_read_3},
	{"master_dies_3", test_master_dies_3},
	{"holder_dies_3", test_holder_dies_3},
	{"two_pages_3", test_two_pages_3},
	{"three_writers_3", test_three_writers_3},
	{"sharer_dies_3", test_sharer_dies_3},
	{"writer_dies_3", test_writer_dies_3},
	{"peer_holder_dies_3", test_peer_holder_dies_3},
	{"upgrades_4", test_upgrades_4},
	{"lock_two_3", test_lock_two_3},
	{"lock_convert_3", test_lock_convert_3},
	{"lock_three_3", test_lock_three_3},
	{"lock_master_dies_3", test_lock_master_dies_3},
	{"lock_holder_dies_3", test_lock_holder_dies_3},
	{"lock_convert_dies_3", test_lock_convert_dies_3},
	{"lock_waiter_master_dies_3", test_lock_waiter_master_dies_3},
	{"page_moves_3", test_page_moves_3},
	{"lock_moves_3", test_lock_moves_3},
	{"page_moves_writers_3", test_page_moves_writers_3},
	{"page_moves_home_dies_3", test_page_moves_home_dies_3},
	{"lock_moves_home_dies_3", test_lock_moves_home_dies_3},
};

TEST_MAIN(tests, lteardown)
