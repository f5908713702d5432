/* gbench_shim: write Google Benchmark benchmarks in C.
 *
 * Google Benchmark is C++; this header hides its State behind an opaque
 * pointer.  A benchmark is a C function registered by name; it loops on
 * gbench_keep_running() and reports each iteration's time itself
 * (UseManualTime).  Most benchmarks need only gbench_run_case(), which
 * drives a benchlib case: the warm-up, the timed loop through
 * bench_time_op(), and benchlib's statistics (min, median, avg, p99,
 * p99.9, ...) exported as user counters, so --benchmark_format=json
 * carries them too.
 *
 *	static void bm_read(gbench_state *st, void *arg)
 *	{
 *		gbench_run_case(st, &read_case, &cfg, arg);
 *	}
 *	...
 *	gbench_register("read_4k", bm_read, &result, cfg.iters);
 *	return bench_main(argc, argv);
 */
#ifndef DSM_GBENCH_SHIM_H
#define DSM_GBENCH_SHIM_H

#include <stdbool.h>

#include "benchlib.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gbench_state gbench_state; /* a benchmark::State */
typedef void (*gbench_fn)(gbench_state *st, void *arg);

/* Register `fn(st, arg)` under `name`, timed manually, reported in
 * microseconds.  `iterations` fixes the iteration count (0: Google
 * Benchmark picks it).  Returns 0 or -ENOMEM. */
int gbench_register(const char *name, gbench_fn fn, void *arg,
		    unsigned long iterations);

bool gbench_keep_running(gbench_state *st);
/* How many iterations this run of the benchmark will ask for. */
unsigned long gbench_max_iterations(const gbench_state *st);
void gbench_set_iteration_time(gbench_state *st, double seconds);
void gbench_set_counter(gbench_state *st, const char *name, double value);
/* Mark the run failed; the caller leaves its loop right after. */
void gbench_skip_with_error(gbench_state *st, const char *msg);

/* Run a benchlib case as this benchmark.  `cfg` supplies the warm-up and
 * the trim; Google Benchmark supplies the iteration count.  On success
 * the statistics are exported as counters and, if `out` is not NULL,
 * stored there (the last run wins when the benchmark runs repeatedly). */
void gbench_run_case(gbench_state *st, const struct bench_case *c,
		     const struct bench_config *cfg, struct bench_result *out);

/* Move the --benchmark_* arguments of argv into gb (argv[0] first, NULL
 * terminated, at most cap - 1 entries), leaving the rest in argv, so that
 * getopt never sees them.  Returns gb's count; *argc is updated. */
int gbench_split_args(int *argc, char **argv, char **gb, int cap);

/* Initialize Google Benchmark with the --benchmark_* arguments and run the
 * registered benchmarks.  Returns 0, 1 if a benchmark reported an error,
 * 2 on an unrecognised argument. */
int bench_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
