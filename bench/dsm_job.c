#include "dsm_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int job_rank, job_size;
static const char *job_tool = "bench";

void job_die(const char *what, int err)
{
	fprintf(stderr, "%s: rank %d: %s: %s\n", job_tool, job_rank, what,
		strerror(err));
	exit(1);
}

void job_start(const char *tool)
{
	int ret;

	job_tool = tool;
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = dsm_init();
	if (ret)
		job_die("dsm_init", -ret);
	job_rank = dsm_rank();
	job_size = dsm_size();
}

void job_barrier(void)
{
	int ret = dsm_barrier();

	if (ret)
		job_die("dsm_barrier", -ret);
}

struct dsm_stats job_stats(void)
{
	struct dsm_stats s;
	int ret = dsm_get_stats(&s);

	if (ret)
		job_die("dsm_get_stats", -ret);
	return s;
}
