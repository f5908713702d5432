/* What the benchmarks that run as a dsmrun job share: attaching, dying
 * with a message that names the rank, barriers and counters that cannot
 * fail quietly. */
#ifndef DSM_BENCH_JOB_H
#define DSM_BENCH_JOB_H

#include <dsm.h>

extern int job_rank, job_size;

/* dsm_init(), then job_rank and job_size; stdout line-buffered (dsmrun
 * prefixes lines). */
void job_start(const char *tool);
/* Print "TOOL: rank R: WHAT: strerror(err)" and exit 1. */
__attribute__((noreturn)) void job_die(const char *what, int err);
void job_barrier(void);
struct dsm_stats job_stats(void);

#endif
