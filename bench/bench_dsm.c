/* bench_dsm: libdsm's shared-memory operations, through the public API,
 * one rank per node under dsmrun.
 *
 *   dsmrun -n NODES bench_dsm [-n ITERS] [-w WARMUP] [-b NAME] [-j FILE]
 *                             [--direct] [--benchmark_...]
 *
 * Rank 0 times each operation (benchlib, through Google Benchmark unless
 * --direct); the other ranks are its helpers.  Before every operation
 * (untimed) rank 0 and the helpers set the stage in phases: rank 0 names
 * the case and phase in a control page, every rank passes a barrier, does
 * its part, and passes another.  Entries of the benchmark's pages do not
 * move (their region's policy says so), so every page keeps the master
 * the static placement gave it.
 *
 *   dsm_read_miss_remote_master  node 1 wrote the page, which rank 0 had
 *                                read; its master is node 2 (node 1 with
 *                                two nodes); rank 0 reads it again
 *   dsm_read_miss_local_master   the same, with node 0 the master
 *   dsm_write_miss               node 1 wrote it, master remote; rank 0
 *                                writes
 *   dsm_upgrade_K                rank 0 and nodes 1..K hold it shared;
 *                                rank 0 writes (K = 1, 2, 4, 7 as nodes
 *                                allow)
 *   dsm_pingpong_rtt             rank 0 writes a word, node 1 copies it
 *                                back into the page: ownership there and
 *                                back
 *   dsm_minor_fault              the node holds the page; rank 0's mapping
 *                                of it was dropped (MADV_DONTNEED): a
 *                                userfaultfd minor fault resolved by dsmd
 *   dsm_barrier                  dsm_barrier() across every rank
 *   dsm_scan_64                  node 1 wrote 64 pages rank 0 had read;
 *                                rank 0 reads them in order (bandwidth
 *                                from #bytes)
 *
 * Each result carries, per operation, rank 0's node's counters around the
 * operations only: messages each way, bytes on the network (net_bytes),
 * pages received, faults, its dsmd's wake-ups, pages installed straight
 * into the faulting process.
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench_cli.h"
#include "dsm_job.h"

#define PAGE 4096
#define SCAN 64
#define NPAGES 256
#define STOP (-1L)

enum kind { K_READ_REMOTE, K_READ_LOCAL, K_WRITE, K_UPGRADE, K_PINGPONG,
	    K_MINOR, K_BARRIER, K_SCAN };

/* The control page: rank 0 writes it, helpers read it after a barrier. */
struct ctl {
	long cmd;          /* index of the case, or STOP */
	long phase;
	long stop;         /* nonzero: ends the helpers' loops (below) */
};

struct dcase {
	enum kind kind;
	int sharers;       /* K of an upgrade */
	char *page;        /* the page (first of the scan) */
	struct dsm_stats before, sum;
	unsigned long ops;
	int armed;         /* a `before` snapshot is pending */
};

static volatile struct ctl *ctl;
static char *region;
static struct dcase dcases[16];
static struct bench_case cases[16];
static size_t ncases;
static long pp_value;  /* the last word rank 0 wrote in the ping-pong */
static long barriers;  /* rank 0's timed barriers in the barrier case */

static volatile long *word(char *p, int i)
{
	return (volatile long *)p + i;
}

static void read_pages(char *p, int n)
{
	for (int i = 0; i < n; i++)
		(void)*word(p + (size_t)i * PAGE, 0);
}

static void write_pages(char *p, int n, long v)
{
	for (int i = 0; i < n; i++)
		*word(p + (size_t)i * PAGE, 1) = v;
}

/* What every rank does in phase `ph` of case c (rank 0 too). */
static void act(const struct dcase *c, long ph)
{
	switch (c->kind) {
	case K_UPGRADE:
		if (ph == 0 && job_rank == 1)
			write_pages(c->page, 1, ph);
		if (ph == 1 && job_rank <= c->sharers)
			read_pages(c->page, 1);
		break;
	case K_SCAN:
		if (job_rank == 1)
			write_pages(c->page, SCAN, ph);
		break;
	case K_PINGPONG:
		if (job_rank != 1)
			break;
		/* Copy word 0 into word 2 until rank 0 says stop. */
		for (long last = 0; !ctl->stop;) {
			long v = *word(c->page, 0);

			if (v != last) {
				*word(c->page, 2) = v;
				last = v;
			}
		}
		break;
	case K_BARRIER:
		if (job_rank == 0)
			break;
		/* Rank 0 writes `stop` only after a barrier it times, so a
		 * helper reading it then may already see it: it names the
		 * barrier to leave after, counted from 1 (see c_end()). */
		for (long k = 1;; k++) {
			long stop;

			job_barrier();
			stop = ctl->stop;
			if (stop && k >= stop)
				break;
		}
		break;
	case K_MINOR:
		break;
	default: /* the misses: node 1 takes the page */
		if (job_rank == 1)
			write_pages(c->page, 1, ph);
		break;
	}
}

/* Rank 0: run phase ph of case c with every helper. */
static void phase(const struct dcase *c, long ph)
{
	ctl->cmd = c - dcases;
	ctl->phase = ph;
	job_barrier();
	act(c, ph);
	job_barrier();
}

static void helpers(void)
{
	for (;;) {
		long cmd, ph;

		job_barrier();
		cmd = ctl->cmd;
		ph = ctl->phase;
		if (cmd == STOP)
			return;
		if (cmd < 0 || (size_t)cmd >= ncases)
			job_die("bad command", EINVAL);
		act(&dcases[cmd], ph);
		job_barrier();
	}
}

/* Count what the last operation cost rank 0's node. */
static void account(struct dcase *c)
{
	struct dsm_stats a = job_stats();
	uint64_t *s = (uint64_t *)&c->sum;
	const uint64_t *x = (const uint64_t *)&a;
	const uint64_t *b = (const uint64_t *)&c->before;

	if (!c->armed)
		return;
	for (size_t i = 0; i < sizeof(a) / sizeof(uint64_t); i++)
		s[i] += x[i] - b[i];
	c->ops++;
	c->armed = 0;
}

static void arm(struct dcase *c)
{
	c->before = job_stats();
	c->armed = 1;
}

static int c_begin(void *arg)
{
	struct dcase *c = arg;

	memset(&c->sum, 0, sizeof(c->sum));
	c->ops = 0;
	c->armed = 0;
	ctl->stop = 0;
	barriers = 0;
	if (c->kind == K_PINGPONG || c->kind == K_BARRIER) {
		/* The helpers stay in act() until c_end(). */
		ctl->cmd = c - dcases;
		ctl->phase = 0;
		job_barrier();
		arm(c);
	}
	if (c->kind == K_MINOR)
		*word(c->page, 0) = 1; /* the node holds it M */
	return 0;
}

static int c_prepare(void *arg)
{
	struct dcase *c = arg;

	account(c);
	switch (c->kind) {
	case K_PINGPONG:
	case K_BARRIER:
		break;
	case K_MINOR:
		if (madvise(c->page, PAGE, MADV_DONTNEED))
			return -errno;
		break;
	case K_UPGRADE:
		phase(c, 0);
		phase(c, 1);
		break;
	default:
		phase(c, 0);
		break;
	}
	arm(c);
	return 0;
}


static int c_op(void *arg)
{
	struct dcase *c = arg;
	int ret;

	switch (c->kind) {
	case K_READ_REMOTE:
	case K_READ_LOCAL:
	case K_MINOR:
		read_pages(c->page, 1);
		return 0;
	case K_WRITE:
	case K_UPGRADE:
		write_pages(c->page, 1, -1);
		return 0;
	case K_SCAN:
		read_pages(c->page, SCAN);
		return 0;
	case K_PINGPONG:
		*word(c->page, 0) = ++pp_value;
		while (*word(c->page, 2) != pp_value)
			;
		return 0;
	case K_BARRIER:
		ret = dsm_barrier();
		barriers += !ret;
		return ret;
	}
	return -EINVAL;
}

static int c_counters(void *arg, struct bench_result *r)
{
	struct dcase *c = arg;
	double n;

	account(c);
	n = c->ops ? (double)c->ops : 1;
	bench_result_add_counter(r, "msgs_sent", (double)c->sum.msgs_sent / n);
	bench_result_add_counter(r, "msgs_received",
				 (double)c->sum.msgs_received / n);
	bench_result_add_counter(r, "net_bytes",
				 (double)(c->sum.bytes_sent +
					  c->sum.bytes_received) / n);
	bench_result_add_counter(r, "pages_received",
				 (double)c->sum.pages_received / n);
	bench_result_add_counter(r, "faults",
				 (double)(c->sum.read_faults +
					  c->sum.write_faults +
					  c->sum.upgrade_faults +
					  c->sum.minor_faults) / n);
	/* How often rank 0's dsmd waited for events and got some: the
	 * fault, each message that woke it, the helpers' barrier traffic,
	 * and the stats request that ends the operation; its polling rounds
	 * that found work (--txn-poll-us); and pages that went straight into
	 * the faulting process. */
	bench_result_add_counter(r, "wakeups", (double)c->sum.wakeups / n);
	bench_result_add_counter(r, "poll_hits", (double)c->sum.poll_hits / n);
	bench_result_add_counter(r, "direct_installs",
				 (double)c->sum.direct_installs / n);
	/* Read misses sent to the page's last writer, not its master. */
	bench_result_add_counter(r, "peer_requests",
				 (double)c->sum.peer_requests / n);
	return 0;
}

static int c_end(void *arg)
{
	struct dcase *c = arg;

	if (c->kind == K_PINGPONG) {
		ctl->stop = 1;
		job_barrier(); /* the second barrier of the phase */
	} else if (c->kind == K_BARRIER) {
		/* The helpers leave after the next barrier, the one after
		 * the timed ones, and then pass the phase's second. */
		ctl->stop = barriers + 1;
		job_barrier();
		job_barrier();
	}
	return 0;
}

/* The first page of the region mastered by `node`, after `skip` of them. */
static char *page_of(int node, int skip)
{
	for (int i = 1; i < NPAGES; i++)
		if (dsm_page_master(region + (size_t)i * PAGE) == node &&
		    skip-- == 0)
			return region + (size_t)i * PAGE;
	job_die("no page with that master", ENOENT);
	return NULL;
}

static void add(const char *name, const char *note, enum kind k, int sharers,
		char *page, size_t bytes)
{
	struct dcase *c = &dcases[ncases];

	*c = (struct dcase){.kind = k, .sharers = sharers, .page = page};
	cases[ncases] = (struct bench_case){
		.name = name, .note = note, .bytes = bytes, .divisor = 1,
		.begin = c_begin, .prepare = c_prepare, .op = c_op,
		.counters = c_counters, .end = c_end, .ctx = c,
	};
	ncases++;
}

static void build_cases(void)
{
	static const int ks[] = {1, 2, 4, 7};
	static const char *const names[] = {"dsm_upgrade_1", "dsm_upgrade_2",
					    "dsm_upgrade_4", "dsm_upgrade_7"};
	int remote = job_size > 2 ? 2 : 1, skip = 0;
	char *scan = region + (size_t)(NPAGES - SCAN) * PAGE;

	add("dsm_read_miss_remote_master", "read a page node 1 holds M; "
	    "master remote", K_READ_REMOTE, 0, page_of(remote, skip++), PAGE);
	add("dsm_read_miss_local_master", "read a page node 1 holds M; "
	    "master local", K_READ_LOCAL, 0, page_of(0, 0), PAGE);
	add("dsm_write_miss", "write a page node 1 holds M; master remote",
	    K_WRITE, 0, page_of(remote, skip++), PAGE);
	for (size_t i = 0; i < 4; i++)
		if (ks[i] < job_size)
			add(names[i], "write a page held S by this node and K "
			    "others; master remote", K_UPGRADE, ks[i],
			    page_of(1, (int)i), PAGE);
	add("dsm_pingpong_rtt", "write a word, node 1 writes it back: the "
	    "page's ownership there and back", K_PINGPONG, 0,
	    page_of(remote, skip++), PAGE);
	add("dsm_minor_fault", "the node holds the page M; this process's "
	    "mapping dropped: one minor fault", K_MINOR, 0, page_of(0, 1),
	    PAGE);
	add("dsm_barrier", "dsm_barrier() across every rank", K_BARRIER, 0,
	    NULL, 0);
	add("dsm_scan_64", "read 64 consecutive pages node 1 holds M",
	    K_SCAN, 0, scan, (size_t)SCAN * PAGE);
}

int main(int argc, char **argv)
{
	struct bench_cli o = {
		.tool = "bench_dsm",
		.title = "libdsm shared memory, rank 0 of a dsmrun job",
		.hint = "run under dsmrun -n NODES (2 or more), one rank per "
			"node",
		.cfg = {.iters = 200, .warmup = 10, .trim = BENCH_DEFAULT_TRIM},
	};
	struct dsm_policy p;
	int ret, status = 0;

	ret = bench_cli_parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	job_start("bench_dsm");
	if (job_size < 2 || dsm_num_nodes() != job_size) {
		fprintf(stderr, "bench_dsm: %s\n", o.hint);
		return 2;
	}
	ctl = dsm_alloc(PAGE);
	region = dsm_alloc((size_t)NPAGES * PAGE);
	if (!ctl || !region)
		job_die("dsm_alloc", errno);
	if (job_rank == 0) {
		ret = dsm_get_policy(region, &p);
		p.migrate = 0; /* every page keeps its static master */
		if (!ret)
			ret = dsm_set_policy(region, (size_t)NPAGES * PAGE, &p);
		if (ret)
			job_die("dsm_set_policy", -ret);
	}
	job_barrier();
	build_cases();
	if (job_rank == 0) {
		status = bench_cli_run(&o, cases, ncases);
		ctl->cmd = STOP;
		job_barrier();
	} else {
		helpers();
	}
	job_barrier();
	dsm_finalize();
	return status;
}
