/* jacobi: a 2-D Jacobi solver for the Laplace equation on shared memory.
 *
 *   dsmrun -n NODES [-p PROCS_PER_NODE] dsm-jacobi [-n SIZE] [-i ITERS]
 *
 * The steady temperature of a square plate whose top edge is held at 100
 * degrees, whose left edge falls linearly from 100 to 0, and whose other
 * edges are held at 0.  The plate is an N x N grid; each sweep replaces
 * every interior cell by the mean of its four neighbours in the previous
 * grid.
 *
 * Every rank of the job maps the same two grids (dsm_alloc: one address on
 * every rank, zero filled).  Rank 0 sets the boundary of both; then each
 * rank updates its own block of rows, reading the rows next to its block
 * from its neighbours' part of the grid, and the ranks meet at a barrier
 * after every sweep before the grids swap roles.  The program uses only
 * the public API, include/dsm.h.
 *
 * At the end rank 0 runs the same sweeps in one process in private memory
 * and compares every cell.  Both run the same sweep function on the same
 * numbers in the same order, so the results must be equal bit for bit:
 * max_diff is 0, and any difference is reported as a failure (exit 1).
 *
 * Rank 0 times the parallel part, from the barrier after initialisation to
 * the barrier after the last sweep, and prints what its node's dsmd counted
 * in that time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dsm.h>

#define DEFAULT_SIZE  256
#define DEFAULT_ITERS 50
#define MAX_SIZE      4096
#define MAX_ITERS     1000000

#define HOT 100.0 /* the top edge, and the top of the left edge */

struct opts {
	int n;     /* grid size, boundary included */
	int iters; /* sweeps */
};

static int my_rank = -1; /* for messages; -1 until dsm_init() */

static void fail(const char *what, int err) __attribute__((noreturn));
static void fail(const char *what, int err)
{
	if (my_rank >= 0)
		fprintf(stderr, "jacobi: rank %d: %s: %s\n", my_rank, what,
			strerror(err));
	else
		fprintf(stderr, "jacobi: %s: %s\n", what, strerror(err));
	exit(1);
}

/* A dsm_* call that returns 0 or a negative errno. */
static void check(int ret, const char *what)
{
	if (ret < 0)
		fail(what, -ret);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------- */
/* The numerical part, shared by the parallel run and the serial check.   */

/* Cell (i, j) of an n x n grid stored row by row. */
#define AT(g, n, i, j) ((g)[(size_t)(i) * (size_t)(n) + (size_t)(j)])

/* Set the boundary of g; the interior is left alone. */
static void set_boundary(double *g, int n)
{
	for (int j = 0; j < n; j++) {
		AT(g, n, 0, j) = HOT;
		AT(g, n, n - 1, j) = 0.0;
	}
	for (int i = 1; i < n - 1; i++) {
		AT(g, n, i, 0) = HOT * (double)(n - 1 - i) / (double)(n - 1);
		AT(g, n, i, n - 1) = 0.0;
	}
}

/* One sweep over rows [r0, r1) of the interior: each cell of dst becomes
 * the mean of its four neighbours in src. */
static void sweep(double *dst, const double *src, int n, int r0, int r1)
{
	for (int i = r0; i < r1; i++)
		for (int j = 1; j < n - 1; j++)
			AT(dst, n, i, j) = 0.25 * (AT(src, n, i - 1, j) +
						   AT(src, n, i + 1, j) +
						   AT(src, n, i, j - 1) +
						   AT(src, n, i, j + 1));
}

/* The interior rows [*r0, *r1) of rank `rank` of `size`: n - 2 rows shared
 * out in contiguous blocks whose sizes differ by at most one. */
static void my_rows(int n, int rank, int size, int *r0, int *r1)
{
	long rows = n - 2;

	*r0 = 1 + (int)(rows * rank / size);
	*r1 = 1 + (int)(rows * (rank + 1) / size);
}

/* ---------------------------------------------------------------------- */
/* The parallel run                                                       */

struct job {
	int rank, size, nodes;
	double *grid[2]; /* shared: same address on every rank */
};

static void job_start(struct job *jb, size_t bytes)
{
	check(dsm_init(), "dsm_init");
	jb->rank = dsm_rank();
	check(jb->rank, "dsm_rank");
	my_rank = jb->rank;
	jb->size = dsm_size();
	check(jb->size, "dsm_size");
	jb->nodes = dsm_num_nodes();
	check(jb->nodes, "dsm_num_nodes");
	for (int k = 0; k < 2; k++) {
		jb->grid[k] = dsm_alloc(bytes);
		if (!jb->grid[k])
			fail("dsm_alloc", errno);
	}
}

static void job_end(struct job *jb)
{
	check(dsm_barrier(), "dsm_barrier");
	for (int k = 0; k < 2; k++)
		check(dsm_free(jb->grid[k]), "dsm_free");
	check(dsm_finalize(), "dsm_finalize");
}

/* All ranks sweep their rows; returns the grid holding the result. */
static double *solve(struct job *jb, const struct opts *o)
{
	int r0, r1, k;

	my_rows(o->n, jb->rank, jb->size, &r0, &r1);
	for (k = 0; k < o->iters; k++) {
		sweep(jb->grid[(k + 1) % 2], jb->grid[k % 2], o->n, r0, r1);
		check(dsm_barrier(), "dsm_barrier");
	}
	return jb->grid[k % 2];
}

/* ---------------------------------------------------------------------- */
/* The check on rank 0                                                    */

/* The same sweeps in one process in private memory. */
static double *solve_serial(const struct opts *o, size_t bytes)
{
	double *g[2];
	int k;

	g[0] = calloc(1, bytes);
	g[1] = calloc(1, bytes);
	if (!g[0] || !g[1])
		fail("private grids", ENOMEM);
	set_boundary(g[0], o->n);
	set_boundary(g[1], o->n);
	for (k = 0; k < o->iters; k++)
		sweep(g[(k + 1) % 2], g[k % 2], o->n, 1, o->n - 1);
	free(g[(k + 1) % 2]);
	return g[k % 2];
}

/* Compare every cell; report the first difference.  Returns the largest
 * difference and counts the cells that differ in *ndiff. */
static double compare(const double *got, const double *want, int n,
		      long *ndiff)
{
	double max = 0.0, d;

	*ndiff = 0;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			if (AT(got, n, i, j) == AT(want, n, i, j))
				continue;
			d = fabs(AT(got, n, i, j) - AT(want, n, i, j));
			if (!*ndiff)
				printf("jacobi: first mismatch at (%d, %d): "
				       "%.17g, one process computes %.17g\n",
				       i, j, AT(got, n, i, j),
				       AT(want, n, i, j));
			if (!(d <= max)) /* NaN sticks */
				max = d;
			(*ndiff)++;
		}
	}
	return max;
}

static void print_stats(const struct dsm_stats *a, const struct dsm_stats *b)
{
	printf("jacobi: rank 0's node during the sweeps: read_faults=%llu "
	       "write_faults=%llu upgrade_faults=%llu msgs_sent=%llu\n",
	       (unsigned long long)(b->read_faults - a->read_faults),
	       (unsigned long long)(b->write_faults - a->write_faults),
	       (unsigned long long)(b->upgrade_faults - a->upgrade_faults),
	       (unsigned long long)(b->msgs_sent - a->msgs_sent));
}

/* Rank 0: check the shared result and print the verdict.  Returns the
 * exit status. */
static int report(const struct job *jb, const struct opts *o,
		  const double *result, double secs, size_t bytes)
{
	double *want = solve_serial(o, bytes), max;
	long ndiff;

	max = compare(result, want, o->n, &ndiff);
	free(want);
	printf("jacobi: n=%d iters=%d ranks=%d nodes=%d time=%.3fs "
	       "max_diff=%g %s\n", o->n, o->iters, jb->size, jb->nodes, secs,
	       max, ndiff ? "MISMATCH" : "OK");
	if (ndiff)
		printf("jacobi: %ld of %ld cells differ\n", ndiff,
		       (long)o->n * o->n);
	return ndiff ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Command line                                                           */

static void usage(FILE *f)
{
	fprintf(f,
"usage: dsmrun -n NODES [-p PROCS] dsm-jacobi [-n SIZE] [-i ITERS]\n"
"  -n SIZE   grid of SIZE x SIZE cells, boundary included (3..%d, "
"default %d)\n"
"  -i ITERS  Jacobi sweeps (1..%d, default %d)\n"
"Rank 0 prints the time of the sweeps, checks every cell against one\n"
"process computing alone, and exits 1 on any difference.\n",
		MAX_SIZE, DEFAULT_SIZE, MAX_ITERS, DEFAULT_ITERS);
}

/* A whole number lo..hi, or exit 2 naming the option. */
static int number(const char *arg, int lo, int hi, const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "jacobi: bad %s '%s' (%d..%d)\n", name, arg,
			lo, hi);
		exit(2);
	}
	return (int)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	int c;

	o->n = DEFAULT_SIZE;
	o->iters = DEFAULT_ITERS;
	while ((c = getopt(argc, argv, "n:i:h")) != -1) {
		switch (c) {
		case 'n':
			o->n = number(optarg, 3, MAX_SIZE, "grid size");
			break;
		case 'i':
			o->iters = number(optarg, 1, MAX_ITERS, "iterations");
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jacobi: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct dsm_stats before, after;
	struct opts o;
	struct job jb;
	double t0, secs, *result;
	size_t bytes;
	int status = 0;

	parse_args(argc, argv, &o);
	bytes = (size_t)o.n * (size_t)o.n * sizeof(double);
	job_start(&jb, bytes);
	if (jb.rank == 0) {
		set_boundary(jb.grid[0], o.n);
		set_boundary(jb.grid[1], o.n);
	}
	check(dsm_barrier(), "dsm_barrier");
	if (jb.rank == 0)
		check(dsm_get_stats(&before), "dsm_get_stats");
	t0 = now_s();
	result = solve(&jb, &o);
	secs = now_s() - t0;
	if (jb.rank == 0) {
		check(dsm_get_stats(&after), "dsm_get_stats");
		status = report(&jb, &o, result, secs, bytes);
		print_stats(&before, &after);
	}
	job_end(&jb);
	return status;
}
