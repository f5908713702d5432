/* benchlib: the timing loop and the statistics every benchmark shares.
 *
 * A benchmark is a `struct bench_case`: one operation (`op`) plus optional
 * hooks around the measured loop.  bench_run() runs `warmup` operations
 * whose times are thrown away, then times `iters` operations one by one
 * with CLOCK_MONOTONIC and reduces the samples to what perftest reports:
 * min, max, median, average, stdev, p99 and p99.9 in microseconds.  Like
 * perftest, the largest `trim` samples are dropped before the statistics
 * (perftest drops 2); the output always states the warm-up and the trim.
 *
 * The Google Benchmark shim (gbench_shim.h) drives the same cases through
 * bench_time_op() and the same bench_samples, so both paths agree.
 */
#ifndef DSM_BENCHLIB_H
#define DSM_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_DEFAULT_ITERS 1000
#define BENCH_DEFAULT_WARMUP 100
#define BENCH_DEFAULT_TRIM 2 /* as perftest's LAT_MEASURE_TAIL */
#define BENCH_MAX_COUNTERS 12

struct bench_config {
	unsigned long iters;  /* measured operations */
	unsigned long warmup; /* operations run first, not measured */
	unsigned trim;        /* largest samples dropped from the statistics */
};

struct bench_result;

/* One benchmark.  Every callback returns 0 or a negative errno; `op` does
 * one operation and is the only thing timed.  `prepare` runs before every
 * operation, untimed (to reset state the operation consumes, such as
 * unmapping the page a fault benchmark touches).  `begin` runs before the
 * warm-up; `end` runs after the last operation whenever `begin` succeeded,
 * even if an operation failed.  All three may be NULL. */
struct bench_case {
	const char *name;
	const char *note;  /* one line: what is measured and how */
	size_t bytes;      /* payload per operation (the #bytes column) */
	unsigned divisor;  /* 2 when an op is a round trip reported one-way */
	int (*begin)(void *ctx);
	int (*prepare)(void *ctx);
	int (*op)(void *ctx);
	/* After the last operation, before `end`: add per-operation counters
	 * (messages, faults, ...) to the result.  May be NULL. */
	int (*counters)(void *ctx, struct bench_result *r);
	int (*end)(void *ctx);
	void *ctx;
};

struct bench_counter {
	const char *name; /* static storage: not copied */
	double value;
};

struct bench_result {
	const char *name;
	const char *note;
	size_t bytes;
	unsigned long iterations; /* measured, before the trim */
	unsigned long warmup;
	unsigned long trimmed;
	double min_us, max_us, median_us, avg_us, stdev_us, p99_us, p999_us;
	unsigned ncounters;
	struct bench_counter counters[BENCH_MAX_COUNTERS];
};

/* Latency samples in nanoseconds; adding beyond `cap` counts the sample
 * in `dropped` but keeps no value. */
struct bench_samples {
	uint64_t *ns;
	unsigned long n;
	unsigned long cap;
	unsigned long dropped;
};

int bench_samples_init(struct bench_samples *s, unsigned long cap);
void bench_samples_free(struct bench_samples *s);
void bench_samples_add(struct bench_samples *s, uint64_t ns);
/* Sort the samples and fill the statistics fields of `out` (and
 * iterations/trimmed).  -EINVAL when nothing is left after the trim. */
int bench_samples_reduce(struct bench_samples *s, unsigned trim,
			 struct bench_result *out);

uint64_t bench_now_ns(void);
/* Median cost of one clock read, for the output's footnote. */
uint64_t bench_clock_cost_ns(void);

/* Prepare (untimed) and time one operation; `*ns` is divided by the case's
 * divisor. */
int bench_time_op(const struct bench_case *c, uint64_t *ns);
/* Run `n` operations untimed. */
int bench_warmup(const struct bench_case *c, unsigned long n);
/* begin, warm-up, `iters` timed operations, end; then reduce. */
int bench_run(const struct bench_case *c, const struct bench_config *cfg,
	      struct bench_result *out);

/* -ENOSPC when the result already holds BENCH_MAX_COUNTERS. */
int bench_result_add_counter(struct bench_result *r, const char *name,
			     double value);

/* A perftest-like table of `n` results, notes and warm-up underneath. */
void bench_print_table(FILE *f, const struct bench_result *r, size_t n);
/* {"tool": ..., "clock": ..., "benchmarks": [one object per result]}. */
int bench_write_json(const char *path, const char *tool,
		     const struct bench_result *r, size_t n);
/* The same with "fabric": what the tool ran over ("libfabric
 * tcp;ofi_rxm"), after "tool"; none when NULL. */
int bench_write_json_on(const char *path, const char *tool,
			const char *fabric, const struct bench_result *r,
			size_t n);

#ifdef __cplusplus
}
#endif

#endif
