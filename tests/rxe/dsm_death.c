/* A node dies in the middle of a job (rxe test "dsm_death", 3 nodes):
 *
 *   rank 2 (node 2) writes page B, mastered by node 1: its only copy;
 *   rank 1 (node 1) writes page D, mastered by node 1;
 *   rank 2 then SIGKILLs its own dsmd and leaves.
 *
 * Once the survivors have declared node 2 dead, rank 0 reads D (served by
 * node 1 as before), B (its only copy died: SIGBUS, not a hang) and a page
 * C mastered by node 2 (its directory entry died: SIGBUS, not a hang).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>

#include "rxe_job.h"

#define PAGE 4096

static sigjmp_buf env;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(env, 1);
}

/* The value at p, or -1 when reading it raised SIGBUS. */
static long read_or_bus(volatile long *p)
{
	if (sigsetjmp(env, 1))
		return -1;
	return *p;
}

/* The first page of the region mastered by node, after `skip` of them. */
static volatile long *page_of(char *base, int npages, int node, int skip)
{
	for (int i = 0; i < npages; i++)
		if (dsm_page_master(base + (size_t)i * PAGE) == node &&
		    skip-- == 0)
			return (volatile long *)(base + (size_t)i * PAGE);
	return NULL;
}

int main(void)
{
	struct sigaction sa = {.sa_handler = on_bus};
	int npages = 16;
	volatile long *b, *c, *dpage;
	struct dsm_stats st;
	long vb, vc, vd;
	char *base;

	job_start(3);
	base = dsm_alloc((size_t)npages * PAGE);
	if (!base) {
		perror("dsm_alloc");
		return 1;
	}
	b = page_of(base, npages, 1, 0);
	dpage = page_of(base, npages, 1, 1);
	c = page_of(base, npages, 2, 0);
	if (!b || !c || !dpage) {
		fprintf(stderr, "no page with the masters wanted\n");
		return 1;
	}
	if (rank == 2)
		*b = 22;
	if (rank == 1)
		*dpage = 11;
	if (dsm_barrier())
		return 1;
	if (rank == 2) {
		kill((pid_t)atol(getenv("DSM_DAEMON_PID")), SIGKILL);
		_exit(0);
	}
	wait_deaths(1); /* node 2's, on this node */
	if (rank == 1)
		return 0;
	sigaction(SIGBUS, &sa, NULL);
	vd = read_or_bus(dpage);
	vb = read_or_bus(b);
	vc = read_or_bus(c);
	if (dsm_get_stats(&st))
		return 1;
	printf("death: D=%ld B=%ld C=%ld lost_faults=%llu\n", vd, vb, vc,
	       (unsigned long long)st.lost_faults);
	if (vd != 11 || vb != -1 || vc != -1 || st.lost_faults < 2) {
		printf("FAIL: want D=11, and SIGBUS (-1) for B and C\n");
		return 1;
	}
	printf("PASS: a dead node's pages fail with SIGBUS, others are served\n");
	return 0;
}
