/* bench_lock: an uncontended EX lock and unlock, through the public API,
 * with the resource's master on this node and on another.
 *
 *   DSM_MIGRATE=off dsmrun -n 2 bench_lock [-n ITERS] [-w WARMUP] [-b NAME]
 *                                          [-j FILE] [--direct]
 *
 * Rank 0 times dsm_lock(EX) + dsm_unlock() on a resource nobody else
 * uses; rank 1 only waits.  Resources move to the node that uses them
 * most, so the remote case needs masters that stay put: run it with
 * DSM_MIGRATE=off (dsmd reads it), and the case fails if the master moved
 * anyway.  Each result carries rank 0's node's coherence messages per
 * operation (sent and received): 0 with a local master, 2 and 2 with a
 * remote one (request, grant, release, its answer), counted between two
 * conversions of an NL lock held on the same resource, which come back
 * only after every earlier answer.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench_cli.h"
#include "dsm_job.h"

struct lcase {
	int master;              /* the node that must master the resource */
	char name[32];
	unsigned long prepared;  /* operations set up so far */
	struct dsm_lksb nl;      /* held in NL around the measured ones */
	struct dsm_stats before;
};

static struct lcase lcases[2];
static unsigned long warmup;

/* A resource name whose master is `node` (placement: a hash of the name
 * modulo the node count, as long as nothing moves). */
static int pick(struct lcase *c)
{
	struct dsm_lksb sb = {0};

	for (int i = 0; i < 1000; i++) {
		int m, ret;

		snprintf(c->name, sizeof(c->name), "bench.%d.%d", c->master, i);
		ret = dsm_lock(DSM_LK_NL, &sb, 0, c->name, 0, 0, NULL, NULL,
			       NULL);
		if (ret)
			return ret;
		m = dsm_lock_master(&sb);
		ret = dsm_unlock(&sb, 0);
		if (m < 0 || ret)
			return m < 0 ? m : ret;
		if (m == c->master)
			return 0;
	}
	return -ENOENT;
}

static int c_begin(void *arg)
{
	struct lcase *c = arg;
	int ret;

	c->prepared = 0;
	ret = pick(c);
	if (!ret)
		ret = dsm_lock(DSM_LK_NL, &c->nl, 0, c->name, 0, 0, NULL, NULL,
			       NULL);
	return ret;
}

/* A release's answer reaches the node after dsm_unlock() has returned.
 * Converting the NL lock to NL (one request, one answer with a remote
 * master, none with a local one) comes back after every answer the
 * master sent before it: the counters are then complete. */
static int settle(struct lcase *c, struct dsm_stats *out)
{
	int ret = dsm_lock(DSM_LK_NL, &c->nl, DSM_LKF_CONVERT, NULL, 0, 0,
			   NULL, NULL, NULL);

	*out = job_stats();
	return ret;
}

static int c_end(void *arg)
{
	struct lcase *c = arg;

	return dsm_unlock(&c->nl, 0);
}

/* The counters cover the measured operations only: they start before
 * the first one after the warm-up. */
static int c_prepare(void *arg)
{
	struct lcase *c = arg;

	if (++c->prepared == warmup + 1)
		return settle(c, &c->before);
	return 0;
}

static int c_op(void *arg)
{
	struct lcase *c = arg;
	struct dsm_lksb sb = {0};
	int ret = dsm_lock(DSM_LK_EX, &sb, 0, c->name, 0, 0, NULL, NULL, NULL);

	return ret ? ret : dsm_unlock(&sb, 0);
}

static int c_counters(void *arg, struct bench_result *r)
{
	struct lcase *c = arg;
	double n = (double)(c->prepared - warmup);
	struct dsm_stats now;
	int m, ret, own;

	ret = settle(c, &now);
	if (ret)
		return ret;
	/* Still where it was put?  Else the figures are not what the name
	 * says. */
	m = dsm_lock_master(&c->nl);
	own = m == dsm_node() ? 0 : 1; /* the settling conversion's */
	if (n <= 0)
		return -EINVAL;
	if (m != c->master) {
		fprintf(stderr, "bench_lock: the master of %s moved to node %d;"
			" run with DSM_MIGRATE=off\n", c->name, m);
		return -EAGAIN;
	}
	bench_result_add_counter(r, "msgs_sent",
				 (double)(now.msgs_sent - c->before.msgs_sent -
					  own) / n);
	bench_result_add_counter(r, "msgs_received",
				 (double)(now.msgs_received -
					  c->before.msgs_received - own) / n);
	bench_result_add_counter(r, "lock_requests",
				 (double)(now.lock_requests -
					  c->before.lock_requests - 1) / n);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_cli o = {
		.tool = "bench_lock",
		.title = "libdsm locks: uncontended EX lock + unlock, rank 0",
		.hint = "run under DSM_MIGRATE=off dsmrun -n 2 (or more)",
		.cfg = {.iters = 200, .warmup = 10, .trim = BENCH_DEFAULT_TRIM},
	};
	struct bench_case cases[2];
	int ret, status = 0;

	ret = bench_cli_parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	job_start("bench_lock");
	if (job_size < 2 || dsm_num_nodes() != job_size) {
		fprintf(stderr, "bench_lock: %s\n", o.hint);
		return 2;
	}
	lcases[0].master = 0;
	lcases[1].master = 1;
	for (int i = 0; i < 2; i++)
		cases[i] = (struct bench_case){
			.name = i ? "lock_ex_remote_master"
				  : "lock_ex_local_master",
			.note = i ? "dsm_lock(EX) + dsm_unlock(), master on "
				    "node 1"
				  : "dsm_lock(EX) + dsm_unlock(), master on "
				    "this node",
			.divisor = 1, .begin = c_begin, .prepare = c_prepare,
			.op = c_op, .counters = c_counters, .end = c_end,
			.ctx = &lcases[i],
		};
	warmup = o.cfg.warmup;
	job_barrier();
	if (job_rank == 0)
		status = bench_cli_run(&o, cases, 2);
	job_barrier();
	dsm_finalize();
	return status;
}
