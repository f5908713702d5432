/* bench_partition: a partitioned workload, with directory entries fixed
 * where the static placement put them and with entries moving to their
 * users, in one run.
 *
 *   dsmrun -n NODES bench_partition [-i ITERS] [-p PAGES] [-w WINDOW_MS]
 *                                   [--json PATH]
 *
 * Every rank owns a part of a shared array: PAGES pages, all of them
 * mastered by the wrong node (the next one) under the static placement.
 * Each iteration, every rank reads and writes a word of each page of its
 * part, then (after a barrier) writes a word of each page of the next
 * rank's part, so that the owner misses again next time: the owner makes
 * two directory requests per page and iteration (a read miss, then an
 * upgrade), its neighbour one.  The same iterations run twice, on two
 * regions: one whose policy keeps entries where they are, one whose
 * entries move (the cluster's policy with migration on, and a window of
 * WINDOW_MS, default 5000).  The window must be longer than the time
 * between two uses of a page: counts halve every window, and in the
 * emulated soft-RoCE guest one iteration of 4 nodes x 32 pages takes most
 * of a second, against a few milliseconds on hardware.  With the default
 * 500 ms there, an owner's count never reaches the minimum and nothing
 * moves.
 *
 * Rank 0 prints, for each, perftest's statistics of the iteration time
 * (all iterations: the moves happen in the first ones and belong to the
 * cost) and what every node's counters say: directory lookups of the
 * owners' own misses that were local, of all misses, messages per
 * iteration, and moves.  Timing is for reporting only; counts do not
 * depend on the machine's noise.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "dsm_job.h"

#define PAGE 4096

/* Per rank and run: its node's counters around the owner's phase, and
 * around everything. */
struct slot {
	uint64_t own_local, own_remote, all_local, all_remote, msgs;
	uint64_t migrations;
};


/* The pages of each part: part p is pages whose static master is the
 * node after p's (the wrong node), in address order. */
static void choose_parts(char *region, size_t npages, long **part,
			 long pages)
{
	long *n = calloc((size_t)job_size, sizeof(*n));
	size_t i;

	if (!n)
		job_die("calloc", ENOMEM);
	for (i = 0; i < npages; i++) {
		int m = dsm_page_master(region + i * PAGE);
		int p = (m + job_size - 1) % job_size;

		if (m < 0)
			job_die("dsm_page_master", -m);
		if (n[p] < pages)
			part[p][n[p]++] = (long)i;
	}
	for (int p = 0; p < job_size; p++)
		if (n[p] < pages)
			job_die("not enough pages per master", ENOSPC);
	free(n);
}

static void own_phase(char *region, const long *mine, long pages)
{
	for (long j = 0; j < pages; j++) {
		volatile long *w = (volatile long *)(region + mine[j] * PAGE);

		w[0] = w[0] + 1; /* a read miss, then an upgrade */
	}
}

static void neighbour_phase(char *region, const long *theirs, long pages,
			    long it)
{
	for (long j = 0; j < pages; j++)
		((volatile long *)(region + theirs[j] * PAGE))[1] = it;
}

/* One placement: iterate, time each iteration, count. */
static void run(char *region, long **part, long pages, long iters,
		struct slot *slots, struct bench_samples *smp)
{
	struct dsm_stats a0 = job_stats(), a, b, z;
	struct slot s = {0};
	const long *mine = part[job_rank];
	const long *theirs = part[(job_rank + 1) % job_size];

	for (long it = 0; it < iters; it++) {
		uint64_t t0 = bench_now_ns();

		a = job_stats();
		own_phase(region, mine, pages);
		b = job_stats();
		s.own_local += b.directory_local - a.directory_local;
		s.own_remote += b.directory_remote - a.directory_remote;
		job_barrier();
		neighbour_phase(region, theirs, pages, it);
		job_barrier();
		bench_samples_add(smp, bench_now_ns() - t0);
	}
	z = job_stats();
	s.all_local = z.directory_local - a0.directory_local;
	s.all_remote = z.directory_remote - a0.directory_remote;
	s.msgs = z.msgs_sent - a0.msgs_sent;
	s.migrations = z.migrations_in - a0.migrations_in;
	/* Each owner checks its part: every write of its own is there. */
	for (long j = 0; j < pages; j++)
		if (((volatile long *)(region + mine[j] * PAGE))[0] != iters)
			job_die("a write of the owner was lost", EIO);
	slots[job_rank] = s;
	job_barrier();
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void report(const char *name, const char *note,
		   struct bench_samples *smp, const struct slot *slots,
		   long iters, struct bench_result *r)
{
	struct slot t = {0};

	for (int i = 0; i < job_size; i++) {
		t.own_local += slots[i].own_local;
		t.own_remote += slots[i].own_remote;
		t.all_local += slots[i].all_local;
		t.all_remote += slots[i].all_remote;
		t.msgs += slots[i].msgs;
		t.migrations += slots[i].migrations;
	}
	if (bench_samples_reduce(smp, 0, r))
		job_die("no samples", EINVAL);
	r->name = name;
	r->note = note;
	bench_result_add_counter(r, "own_local_pct",
				 pct(t.own_local, t.own_local + t.own_remote));
	bench_result_add_counter(r, "all_local_pct",
				 pct(t.all_local, t.all_local + t.all_remote));
	bench_result_add_counter(r, "msgs_per_iter",
				 (double)t.msgs / (double)iters);
	bench_result_add_counter(r, "lookups_per_iter",
				 (double)(t.all_local + t.all_remote) /
					 (double)iters);
	bench_result_add_counter(r, "migrations", (double)t.migrations);
	printf("%s: own misses with a local directory %llu of %llu "
	       "(%.1f%%), all %llu of %llu (%.1f%%), %.1f msgs/iteration, "
	       "%llu moves, total %.3f s\n",
	       name, (unsigned long long)t.own_local,
	       (unsigned long long)(t.own_local + t.own_remote),
	       pct(t.own_local, t.own_local + t.own_remote),
	       (unsigned long long)t.all_local,
	       (unsigned long long)(t.all_local + t.all_remote),
	       pct(t.all_local, t.all_local + t.all_remote),
	       (double)t.msgs / (double)iters,
	       (unsigned long long)t.migrations,
	       r->avg_us * (double)iters / 1e6);
}

static char *region_with(long npages, int migrate, long window_ms)
{
	struct dsm_policy p;
	char *r = dsm_alloc((size_t)npages * PAGE);
	int ret;

	if (!r)
		job_die("dsm_alloc", errno);
	if (job_rank == 0) {
		ret = dsm_get_policy(r, &p);
		if (!ret) {
			p.placement = DSM_PLACE_STATIC;
			p.migrate = (uint32_t)migrate;
			if (migrate)
				p.window_ms = (uint32_t)window_ms;
			ret = dsm_set_policy(r, (size_t)npages * PAGE, &p);
		}
		if (ret)
			job_die("dsm_set_policy", -ret);
	}
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	long iters = 20, pages = 32, window_ms = 5000, npages;
	const char *json = NULL;
	struct bench_result res[2];
	struct bench_samples smp[2];
	long *part[2][64];
	struct slot *slots;
	char *reg[2];
	int o, k;

	while ((o = getopt_long(argc, argv, "i:p:w:", opts, NULL)) != -1) {
		switch (o) {
		case 'i': iters = atol(optarg); break;
		case 'p': pages = atol(optarg); break;
		case 'w': window_ms = atol(optarg); break;
		case 'j': json = optarg; break;
		default:
			fprintf(stderr, "usage: bench_partition [-i ITERS] "
					"[-p PAGES] [-w WINDOW_MS] "
					"[--json PATH]\n");
			return 2;
		}
	}
	job_start("bench_partition");
	if (iters < 1 || pages < 1 || pages > 4096 || job_size < 2 ||
	    job_size > 64 || window_ms < 1 || window_ms > 3600000 ||
	    dsm_num_nodes() != job_size) {
		fprintf(stderr, "bench_partition: want 2..64 ranks, one per "
				"node, ITERS >= 1, 1 <= PAGES <= 4096, "
				"1 <= WINDOW_MS <= 3600000\n");
		return 2;
	}
	npages = pages * job_size;
	slots = dsm_alloc(((size_t)job_size * sizeof(*slots) + PAGE - 1) /
			  PAGE * PAGE);
	if (!slots)
		job_die("dsm_alloc", errno);
	reg[0] = region_with(npages, 0, window_ms);
	reg[1] = region_with(npages, 1, window_ms);
	job_barrier();
	for (k = 0; k < 2; k++) {
		for (int p = 0; p < job_size; p++) {
			part[k][p] = calloc((size_t)pages, sizeof(long));
			if (!part[k][p])
				job_die("calloc", ENOMEM);
		}
		choose_parts(reg[k], (size_t)npages, part[k], pages);
		if (bench_samples_init(&smp[k], (unsigned long)iters))
			job_die("samples", ENOMEM);
	}
	job_barrier();
	for (k = 0; k < 2; k++) {
		run(reg[k], part[k], pages, iters, slots, &smp[k]);
		if (job_rank == 0) {
			memset(&res[k], 0, sizeof(res[k]));
			report(k ? "partition/migrate" : "partition/static",
			       k ? "entries move to their users"
				 : "entries stay on the wrong node",
			       &smp[k], slots, iters, &res[k]);
		}
		job_barrier();
	}
	if (job_rank == 0) {
		bench_print_table(stdout, res, 2);
		printf("partition: migrate/static median iteration time "
		       "%.2f\n", res[1].median_us / res[0].median_us);
		if (json && bench_write_json(json, "bench_partition", res, 2))
			job_die("writing JSON", EIO);
	}
	for (k = 0; k < 2; k++) {
		for (int p = 0; p < job_size; p++)
			free(part[k][p]);
		bench_samples_free(&smp[k]);
	}
	job_barrier();
	dsm_finalize();
	return 0;
}
