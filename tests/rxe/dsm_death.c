/* A node dies in the middle of a job (rxe test "dsm_death", 3 nodes):
 *
 *   rank 2 (node 2) writes page B, mastered by node 1: its only copy;
 *   rank 1 (node 1) writes page D, mastered by node 1;
 *   rank 2 then SIGKILLs its own dsmd and leaves.
 *
 * Once the survivors have declared node 2 dead, rank 0 reads D (served by
 * node 1 as before), B (its only copy died: SIGBUS, not a hang) and a page
 * C mastered by node 2 (its directory entry died: SIGBUS, not a hang).
 * The SIGBUS is the faulting access's own where the kernel has
 * UFFDIO_POISON (6.6: at an address in the page read, BUS_MCEERR_AR, or
 * BUS_ADRERR on later kernels); before, dsmd sends it (SI_USER from the
 * dsmd's pid).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/utsname.h>

#include "rxe_job.h"

#define PAGE 4096

static sigjmp_buf env;
static siginfo_t bus_info;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_info = *si;
	siglongjmp(env, 1);
}

/* Linux 6.6 or later: dsmd can poison the page. */
static bool kernel_poisons(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 6);
}

/* Whether the last SIGBUS was the one dsmd should give for a read of p. */
static bool bus_is_right(volatile long *p, const char *what)
{
	uintptr_t page = (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
	uintptr_t at = (uintptr_t)bus_info.si_addr;
	pid_t dsmd = (pid_t)atol(getenv("DSM_DAEMON_PID"));

	if (kernel_poisons()) {
		if ((bus_info.si_code == BUS_MCEERR_AR ||
		     bus_info.si_code == BUS_ADRERR) && at >= page &&
		    at < page + PAGE)
			return true;
		printf("FAIL: %s: SIGBUS code %d at %#lx, want the access's "
		       "own (BUS_MCEERR_AR or BUS_ADRERR) in page %#lx\n", what,
		       bus_info.si_code, (unsigned long)at,
		       (unsigned long)page);
		return false;
	}
	if (bus_info.si_code == SI_USER && bus_info.si_pid == dsmd)
		return true;
	printf("FAIL: %s: SIGBUS code %d from pid %d, want SI_USER from dsmd "
	       "(%d)\n", what, bus_info.si_code, (int)bus_info.si_pid,
	       (int)dsmd);
	return false;
}

/* The value at p, or -1 when reading it raised the SIGBUS dsmd should
 * give (-2 for another one). */
static long read_or_bus(volatile long *p, const char *what)
{
	memset(&bus_info, 0, sizeof(bus_info));
	if (sigsetjmp(env, 1))
		return bus_is_right(p, what) ? -1 : -2;
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
	struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO};
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
	vd = read_or_bus(dpage, "D");
	vb = read_or_bus(b, "B");
	vc = read_or_bus(c, "C");
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
