/* The command line and main loop shared by benchmark programs whose cases
 * are plain bench_cases: -n, -w, -b, -j, --direct, -h and --benchmark_*
 * (handed to Google Benchmark), plus a program's own options taking a
 * value (struct bench_cli_opt), then every selected case run through
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

#define BENCH_CLI_MAX_OPTS 8

/* An option of one program beyond the shared ones: --name ARG (and -key
 * ARG when key is a letter other than the shared n, w, b, j, h and D, which
 * --direct uses inside), whose argument is stored in *value as given. */
struct bench_cli_opt {
	const char *name;
	int key;           /* short option letter, or 0 for none */
	const char *arg;   /* the argument in the usage: "NAME" */
	const char *help;  /* one line, default included */
	const char **value;
};

struct bench_cli {
	const char *tool;   /* program name, for messages and the JSON */
	const char *title;  /* a line printed above the table */
	const char *hint;   /* an extra line for errors and --help */
	const char *fabric; /* the JSON's "fabric" (bench_write_json_on), or
			       NULL */
	const struct bench_cli_opt *opts; /* the program's own, or NULL */
	size_t nopts;       /* at most BENCH_CLI_MAX_OPTS */
	struct bench_config cfg;
	const char *only;   /* -b NAME */
	const char *json;   /* -j FILE */
	bool direct;        /* --direct */
	int gb_argc;
	char *gb_argv[32];
};

/* Parse argv into o (whose tool, title, hint and opts the caller set).
 * Returns 0, 1 after printing --help, or -EINVAL after printing the
 * usage. */
int bench_cli_parse(struct bench_cli *o, int argc, char **argv);

/* Run the selected cases, print, write JSON.  Returns the exit status:
 * 0, 1 when a case failed, 2 when -b named no case. */
int bench_cli_run(struct bench_cli *o, const struct bench_case *cases,
		  size_t n);

#ifdef __cplusplus
}
#endif

#endif
