/* What the rxe test programs that run as ranks of a job (dsm_lock.c,
 * dsm_migrate.c, dsm_death.c) share: the rank, failing loudly, and the calls every
 * phase makes, each failing the test on an error. */
#ifndef DSM_TEST_RXE_JOB_H
#define DSM_TEST_RXE_JOB_H

#include <dsm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank;

/* Print "FAIL: rank R: ..." and exit 1: the runner prints every log. */
#define FAIL(...)                                                        \
	do {                                                             \
		printf("FAIL: rank %d: ", rank);                         \
		printf(__VA_ARGS__);                                     \
		printf("\n");                                            \
		exit(1);                                                 \
	} while (0)

/* Attach as a rank of a job of `nodes` ranks, one per node. */
static inline void job_start(int nodes)
{
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = dsm_init();
	if (ret) {
		fprintf(stderr, "dsm_init: %s\n", strerror(-ret));
		exit(1);
	}
	rank = dsm_rank();
	if (dsm_size() != nodes || dsm_num_nodes() != nodes)
		FAIL("want %d ranks on %d nodes", nodes, nodes);
}

static inline void barrier(void)
{
	int ret = dsm_barrier();

	if (ret)
		FAIL("dsm_barrier: %s", strerror(-ret));
}

static inline struct dsm_stats stats(void)
{
	struct dsm_stats st;
	int ret = dsm_get_stats(&st);

	if (ret)
		FAIL("dsm_get_stats: %s", strerror(-ret));
	return st;
}

/* Wait until this node's dsmd has declared `count` nodes dead since it
 * started (dsm_stats.nodes_dead).  A test that kills a node waits for the
 * death itself, not for a time a loaded machine may not keep; the limit
 * only turns a death never noticed into a failure. */
#define DEATH_WAIT_MS 60000
static inline void wait_deaths(uint64_t count)
{
	int waited;

	for (waited = 0; stats().nodes_dead < count; waited += 10) {
		if (waited >= DEATH_WAIT_MS)
			FAIL("no death noticed after %d ms (%llu of %llu)",
			     waited,
			     (unsigned long long)stats().nodes_dead,
			     (unsigned long long)count);
		usleep(10 * 1000);
	}
}

#endif
