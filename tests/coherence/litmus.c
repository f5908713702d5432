/* Litmus tests of sequential consistency: MP, SB, LB, IRIW, 2+2W.
 *
 *   coherence litmus mp|sb|lb|iriw|2+2w [ITERS [BATCH]]
 *
 * The ranks are dealt into instances of the test (2 or 4 roles each),
 * spreading an instance's roles over different nodes first; ranks left
 * over only take part in the collectives.  x and y sit on different pages,
 * chosen so that their masters differ and rotate over the nodes.  Every
 * iteration starts at a barrier (then a small random delay) on its own
 * pair of pages.  Iterations run in batches, and the pages of a batch are
 * prepared in one of four ways, in turn:
 *   fresh:  a new region (dsm_free + dsm_alloc): nobody holds the pages;
 *   writer: each variable is reset to 0 by the role that writes it, so the
 *           other nodes hold no copy;
 *   other:  reset by another role, which then holds it MODIFIED;
 *   shared: reset by the writer, then read by every role: SHARED copies
 *           everywhere, which the writes must invalidate.
 * At the end the outcomes are gathered through shared memory and counted;
 * an outcome that sequential consistency forbids fails the test, and so
 * does a value that no execution can produce.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOUT 4
#define MAXROLES 4
#define FINAL (-2) /* slot read after the batch by role 0 */

typedef void litmus_fn(int role, volatile uint64_t *x, volatile uint64_t *y,
		       uint8_t *o);

struct litmus {
	const char *name;
	const char *rule;         /* the forbidden outcome, in words */
	int roles;
	int writer[2];            /* the role that writes x, y */
	int nout;
	int slot_role[NOUT];      /* who records slot k */
	const char *slot[NOUT];
	uint8_t lo, hi;           /* the values a slot can hold */
	litmus_fn *run;
	bool (*forbidden)(const uint8_t *o);
};

static uint8_t val8(uint64_t v)
{
	return v > 254 ? 255 : (uint8_t)v;
}

/* MP: P0: x=1; y=1.  P1: r0=y; r1=x.  Forbidden: r0=1, r1=0. */
static void mp_run(int role, volatile uint64_t *x, volatile uint64_t *y,
		   uint8_t *o)
{
	if (role == 0) {
		st64(x, 1);
		st64(y, 1);
		return;
	}
	o[0] = val8(ld64(y));
	o[1] = val8(ld64(x));
}

static bool mp_forbidden(const uint8_t *o)
{
	return o[0] == 1 && o[1] == 0;
}

/* SB: P0: x=1; r0=y.  P1: y=1; r1=x.  Forbidden: r0=0, r1=0. */
static void sb_run(int role, volatile uint64_t *x, volatile uint64_t *y,
		   uint8_t *o)
{
	if (role == 0) {
		st64(x, 1);
		fence();
		o[0] = val8(ld64(y));
	} else {
		st64(y, 1);
		fence();
		o[1] = val8(ld64(x));
	}
}

static bool sb_forbidden(const uint8_t *o)
{
	return o[0] == 0 && o[1] == 0;
}

/* LB: P0: r0=x; y=1.  P1: r1=y; x=1.  Forbidden: r0=1, r1=1. */
static void lb_run(int role, volatile uint64_t *x, volatile uint64_t *y,
		   uint8_t *o)
{
	if (role == 0) {
		o[0] = val8(ld64(x));
		st64(y, 1);
	} else {
		o[1] = val8(ld64(y));
		st64(x, 1);
	}
}

static bool lb_forbidden(const uint8_t *o)
{
	return o[0] == 1 && o[1] == 1;
}

/* IRIW: P0: x=1.  P1: y=1.  P2: r0=x; r1=y.  P3: r2=y; r3=x.
 * Forbidden: r0=1 r1=0 r2=1 r3=0 (the readers disagree on the order). */
static void iriw_run(int role, volatile uint64_t *x, volatile uint64_t *y,
		     uint8_t *o)
{
	switch (role) {
	case 0:
		st64(x, 1);
		break;
	case 1:
		st64(y, 1);
		break;
	case 2:
		o[0] = val8(ld64(x));
		fence();
		o[1] = val8(ld64(y));
		break;
	default:
		o[2] = val8(ld64(y));
		fence();
		o[3] = val8(ld64(x));
		break;
	}
}

static bool iriw_forbidden(const uint8_t *o)
{
	return o[0] == 1 && o[1] == 0 && o[2] == 1 && o[3] == 0;
}

/* 2+2W: P0: x=1; y=2.  P1: y=1; x=2.  Forbidden final: x=1, y=1. */
static void w22_run(int role, volatile uint64_t *x, volatile uint64_t *y,
		    uint8_t *o)
{
	(void)o;
	if (role == 0) {
		st64(x, 1);
		st64(y, 2);
	} else {
		st64(y, 1);
		st64(x, 2);
	}
}

static bool w22_forbidden(const uint8_t *o)
{
	return o[0] == 1 && o[1] == 1;
}

static const struct litmus tests[] = {
	{"mp", "r0=1 r1=0 (saw y=1 but then x=0)", 2, {0, 0}, 2,
	 {1, 1}, {"r0(y)", "r1(x)"}, 0, 1, mp_run, mp_forbidden},
	{"sb", "r0=0 r1=0 (both stores were bypassed)", 2, {0, 1}, 2,
	 {0, 1}, {"r0(y)", "r1(x)"}, 0, 1, sb_run, sb_forbidden},
	{"lb", "r0=1 r1=1 (both loads saw a later store)", 2, {1, 0}, 2,
	 {0, 1}, {"r0(x)", "r1(y)"}, 0, 1, lb_run, lb_forbidden},
	{"iriw", "r0=1 r1=0 r2=1 r3=0 (readers disagree on the order)", 4,
	 {0, 1}, 4, {2, 2, 3, 3}, {"r0(x)", "r1(y)", "r2(y)", "r3(x)"}, 0, 1,
	 iriw_run, iriw_forbidden},
	{"2+2w", "x=1 y=1 (each first store came last)", 2, {0, 1}, 2,
	 {FINAL, FINAL}, {"x", "y"}, 1, 2, w22_run, w22_forbidden},
};

enum prep { PREP_FRESH, PREP_WRITER, PREP_OTHER, PREP_SHARED, NPREP };
static const char *const prep_name[NPREP] = {"fresh", "writer", "other",
					     "shared"};

struct lrun {
	const struct litmus *t;
	long iters, batch;
	int ninst, inst, role;   /* role -1: this rank only watches */
	char *region;
	size_t region_size;
	struct pool pool;
	volatile uint64_t **x, **y;  /* [inst * batch + j] */
	int *xm, *ym;                /* their masters */
	uint8_t *out;                /* [iter * NOUT] recorded here */
	struct rng rng;
};

/* Role `role` of instance `inst`: position inst * roles + role in the
 * order (local 0 of every node, local 1 of every node, ...). */
static int rank_of_role(const struct lrun *r, int inst, int role)
{
	int pos = inst * r->t->roles + role;

	return coh_rank_of(pos % coh.nnodes, pos / coh.nnodes);
}

static void place(struct lrun *r)
{
	int i, n = r->ninst * (int)r->batch;

	pool_reset(&r->pool);
	for (i = 0; i < n; i++) {
		int j = i % (int)r->batch + i / (int)r->batch;

		r->x[i] = pool_take(&r->pool, j % coh.nnodes);
		r->y[i] = pool_take(&r->pool, (j + 1) % coh.nnodes);
		r->xm[i] = coh_master((const void *)r->x[i]);
		r->ym[i] = coh_master((const void *)r->y[i]);
	}
}

static void new_region(struct lrun *r)
{
	char *old = r->region;

	if (old)
		coh_free(old);
	r->region = coh_alloc(r->region_size);
	if (r->region == old)
		return;
	if (old)
		pool_destroy(&r->pool);
	pool_init(&r->pool, r->region, r->region_size / PAGE);
	place(r);
}

static void prepare(struct lrun *r, enum prep p, long nb)
{
	const struct litmus *t = r->t;
	long j;
	int v;

	if (p == PREP_FRESH) {
		new_region(r);
		return;
	}
	for (j = 0; r->role >= 0 && j < nb; j++) {
		volatile uint64_t *var[2] = {r->x[r->inst * r->batch + j],
					     r->y[r->inst * r->batch + j]};

		for (v = 0; v < 2; v++) {
			int who = t->writer[v];

			if (p == PREP_OTHER)
				who = (who + 1) % t->roles;
			if (who == r->role)
				st64(var[v], 0);
		}
	}
	coh_barrier();
	if (p != PREP_SHARED)
		return;
	for (j = 0; r->role >= 0 && j < nb; j++) {
		if (ld64(r->x[r->inst * r->batch + j]) ||
		    ld64(r->y[r->inst * r->batch + j]))
			coh_fail("batch reset to 0 not visible");
	}
	coh_barrier();
}

static void run_batch(struct lrun *r, long first, long nb)
{
	long j;

	for (j = 0; j < nb; j++) {
		long k = r->inst * r->batch + j;

		coh_barrier();
		if (r->role < 0)
			continue;
		spin_us(rng_below(&r->rng, 40));
		r->t->run(r->role, r->x[k], r->y[k],
			  r->out + (first + j) * NOUT);
	}
	coh_barrier();
	if (r->t->slot_role[0] != FINAL)
		return;
	for (j = 0; r->role == 0 && j < nb; j++) {
		long k = r->inst * r->batch + j;
		uint8_t *o = r->out + (first + j) * NOUT;

		o[0] = val8(ld64(r->x[k]));
		o[1] = val8(ld64(r->y[k]));
	}
	coh_barrier();
}

static void print_layout(const struct lrun *r)
{
	int i, k, n = r->ninst * (int)r->batch;
	int cnt[64][2] = {{0}};
	char line[512];
	size_t used;

	for (i = 0; i < n && coh.nnodes <= 64; i++) {
		cnt[r->xm[i]][0]++;
		cnt[r->ym[i]][1]++;
	}
	for (i = 0; i < r->ninst; i++) {
		used = (size_t)snprintf(line, sizeof(line), "instance %d:", i);
		for (k = 0; k < r->t->roles && used < sizeof(line); k++) {
			int rk = rank_of_role(r, i, k);

			used += (size_t)snprintf(line + used,
						 sizeof(line) - used,
						 " P%d=rank %d (node %d)", k,
						 rk, coh_node_of(rk));
		}
		coh_say("%s", line);
	}
	used = 0;
	for (i = 0; i < coh.nnodes && i < 64 && used < sizeof(line); i++)
		used += (size_t)snprintf(line + used, sizeof(line) - used,
					 " node %d: x %d y %d", i, cnt[i][0],
					 cnt[i][1]);
	coh_say("pages mastered by%s", line);
}

#define NCODES 81 /* 3^NOUT outcomes */

/* Print the outcomes seen, in total and by how the batch was prepared. */
static void print_hist(const struct lrun *r, long hist[NCODES][NPREP])
{
	const struct litmus *t = r->t;
	int i, k, p;

	for (i = 0; i < NCODES; i++) {
		uint8_t o[NOUT] = {0};
		char line[256];
		size_t used = 0;
		long sum = 0;
		int code = i;

		for (k = t->nout - 1; k >= 0; k--) {
			o[k] = (uint8_t)(code % 3);
			code /= 3;
		}
		for (p = 0; p < NPREP; p++)
			sum += hist[i][p];
		if (!sum)
			continue;
		for (k = 0; k < t->nout; k++)
			used += (size_t)snprintf(line + used,
						 sizeof(line) - used, " %s=%d",
						 t->slot[k], o[k]);
		used += (size_t)snprintf(line + used, sizeof(line) - used,
					 ": %ld (", sum);
		for (p = 0; p < NPREP; p++)
			used += (size_t)snprintf(line + used,
						 sizeof(line) - used,
						 "%s%s %ld", p ? ", " : "",
						 prep_name[p], hist[i][p]);
		coh_say("histogram instance %d:%s)%s", r->inst, line,
			t->forbidden(o) ? " FORBIDDEN" : "");
	}
}

/* Iteration i's outcome, merged from the roles' records. */
static void outcome(const struct lrun *r, const uint8_t *res,
		    size_t per_role, long i, uint8_t *o)
{
	const struct litmus *t = r->t;
	int k;

	for (k = 0; k < t->nout; k++) {
		int who = t->slot_role[k] == FINAL ? 0 : t->slot_role[k];

		o[k] = res[(size_t)who * per_role + (size_t)i * NOUT +
			   (size_t)k];
		if (o[k] < t->lo || o[k] > t->hi)
			coh_fail("iteration %ld: %s = %u: no execution gives "
				 "that value", i, t->slot[k], o[k]);
	}
}

/* Role 0 of each instance: merge the records, count, judge. */
static long judge(const struct lrun *r, const uint8_t *res, size_t per_role)
{
	const struct litmus *t = r->t;
	long hist[NCODES][NPREP] = {{0}}, bad = 0, i;
	int k;

	for (i = 0; i < r->iters; i++) {
		int prep = (int)((i / r->batch) % NPREP), code = 0;
		long j = r->inst * r->batch + i % r->batch;
		uint8_t o[NOUT] = {0};

		outcome(r, res, per_role, i, o);
		for (k = 0; k < t->nout; k++)
			code = code * 3 + o[k];
		hist[code][prep]++;
		if (t->forbidden(o) && bad++ < 5)
			coh_say("FORBIDDEN at iteration %ld (batch %s; x %p "
				"master %d, y %p master %d)", i,
				prep_name[prep], (void *)r->x[j], r->xm[j],
				(void *)r->y[j], r->ym[j]);
	}
	print_hist(r, hist);
	return bad;
}

static void gather(struct lrun *r)
{
	size_t per_role = ((size_t)r->iters * NOUT + PAGE - 1) / PAGE * PAGE;
	size_t per_inst = per_role * (size_t)r->t->roles;
	uint8_t *res = coh_alloc(per_inst * (size_t)r->ninst);
	long bad;

	coh_phase("gathering outcomes");
	if (r->role >= 0)
		memcpy(res + per_inst * (size_t)r->inst +
			       per_role * (size_t)r->role,
		       r->out, (size_t)r->iters * NOUT);
	coh_barrier();
	if (r->role == 0) {
		bad = judge(r, res + per_inst * (size_t)r->inst, per_role);
		if (bad)
			coh_fail("litmus %s instance %d: forbidden outcome %s "
				 "in %ld of %ld iterations", r->t->name,
				 r->inst, r->t->rule, bad, r->iters);
	}
	coh_barrier();
}

static void setup(struct lrun *r, const struct litmus *t, long iters,
		  long batch)
{
	int pos = coh.local * coh.nnodes + coh.node, n;

	r->t = t;
	r->iters = iters;
	r->batch = batch;
	r->ninst = coh.size / t->roles;
	if (r->ninst < 1)
		coh_fail("litmus %s needs %d ranks, the job has %d", t->name,
			 t->roles, coh.size);
	r->inst = pos / t->roles;
	r->role = r->inst < r->ninst ? pos % t->roles : -1;
	if (r->role < 0)
		r->inst = 0;
	n = r->ninst * (int)batch;
	r->region_size = ((size_t)n * 2 * (size_t)coh.nnodes + 16) * PAGE;
	r->x = calloc((size_t)n, sizeof(*r->x));
	r->y = calloc((size_t)n, sizeof(*r->y));
	r->xm = calloc((size_t)n, sizeof(*r->xm));
	r->ym = calloc((size_t)n, sizeof(*r->ym));
	r->out = calloc((size_t)iters, NOUT);
	if (!r->x || !r->y || !r->xm || !r->ym || !r->out)
		coh_fail("out of memory");
	r->rng.s = 0x1111ull * (uint64_t)(coh.rank + 1);
}

static void teardown(struct lrun *r)
{
	pool_destroy(&r->pool);
	free(r->x);
	free(r->y);
	free(r->xm);
	free(r->ym);
	free(r->out);
}

int mode_litmus(int argc, char **argv)
{
	struct lrun r = {0};
	const struct litmus *t = NULL;
	long first, nb, b;
	size_t i;
	double t0;

	for (i = 0; argc > 1 && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!strcmp(argv[1], tests[i].name))
			t = &tests[i];
	if (!t)
		coh_fail("which litmus test? mp, sb, lb, iriw or 2+2w");
	coh_init();
	setup(&r, t, arg_long(argc, argv, 2, 1000),
	      arg_long(argc, argv, 3, 32));
	new_region(&r);
	if (coh.rank == 0)
		print_layout(&r);
	t0 = now_s();
	for (first = 0, b = 0; first < r.iters; first += nb, b++) {
		nb = r.iters - first < r.batch ? r.iters - first : r.batch;
		coh_phase("litmus %s batch %ld (%s)", t->name, b,
			  prep_name[b % NPREP]);
		if (b)
			prepare(&r, (enum prep)(b % NPREP), nb);
		run_batch(&r, first, nb);
	}
	if (coh.rank == 0)
		coh_say("%ld iterations in %.1f s (%.1f ms each)", r.iters,
			now_s() - t0, (now_s() - t0) * 1e3 / (double)r.iters);
	gather(&r);
	teardown(&r);
	coh_finish();
	return 0;
}
