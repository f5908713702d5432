/* The command line and main loop shared by benchmark programs whose cases
 * are plain bench_cases: -n, -w, -b, -j, --direct, -h and --benchmark_*
 * (handed to Google Benchmark), then every selected case run through
 * Google Benchmark (or directly with --direct), the perftest-like table and
 * the JSON. */
#ifndef DSM_BENCH_CLI_H
#define DSM_BENCH_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "benchlib.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bench_cli {
	const char *tool;   /* program name, for messages and the JSON */
	const char *title;  /* a line printed above the table */
	const char *hint;   /* an extra line for errors and --help */
	struct bench_config cfg;
	const char *only;   /* -b NAME */
	const char *json;   /* -j FILE */
	bool direct;        /* --direct */
	int gb_argc;
	char *gb_argv[32];
};

/* Parse argv into o (whose tool/title/hint the caller set).  Returns 0,
 * 1 after printing --help, or -EINVAL after printing the usage. */
int bench_cli_parse(struct bench_cli *o, int argc, char **argv);

/* Run the selected cases, print, write JSON.  Returns the exit status:
 * 0, 1 when a case failed, 2 when -b named no case. */
int bench_cli_run(struct bench_cli *o, const struct bench_case *cases,
		  size_t n);

#ifdef __cplusplus
}
#endif

#endif
