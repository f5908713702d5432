#include "bench_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "gbench_shim.h"

static void usage(const struct bench_cli *o, FILE *f)
{
	char lhs[64];
	size_t i;

	fprintf(f,
"usage: %s [options] [--benchmark_*...]\n"
"  -n, --iters N      measured operations per benchmark [%d]\n"
"  -w, --warmup N     operations run first and discarded [%d]\n"
"  -b, --bench NAME   run only that benchmark\n"
"  -j, --json FILE    write the results as JSON\n"
"      --direct       run without Google Benchmark\n",
		o->tool, BENCH_DEFAULT_ITERS, BENCH_DEFAULT_WARMUP);
	for (i = 0; i < o->nopts; i++) {
		const struct bench_cli_opt *x = &o->opts[i];

		if (x->key)
			snprintf(lhs, sizeof(lhs), "-%c, --%s %s", x->key,
				 x->name, x->arg);
		else
			snprintf(lhs, sizeof(lhs), "    --%s %s", x->name,
				 x->arg);
		/* As wide as the shared ones, or the help on a line of its
		 * own. */
		if (strlen(lhs) > 18)
			fprintf(f, "  %s\n  %-18s %s\n", lhs, "", x->help);
		else
			fprintf(f, "  %-18s %s\n", lhs, x->help);
	}
	if (o->hint)
		fprintf(f, "%s\n", o->hint);
}

static int parse_count(const char *s, bool zero_ok, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || (!zero_ok && v == 0) || *s == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct option common_opts[] = {
	{"iters", required_argument, NULL, 'n'},
	{"warmup", required_argument, NULL, 'w'},
	{"bench", required_argument, NULL, 'b'},
	{"json", required_argument, NULL, 'j'},
	{"direct", no_argument, NULL, 'D'},
	{"help", no_argument, NULL, 'h'},
};

#define N_COMMON (sizeof(common_opts) / sizeof(common_opts[0]))

/* The shared options, then the program's own (long-only ones as 256 + i),
 * then the terminator: lo has room for N_COMMON + nopts + 1. */
static int build_opts(const struct bench_cli *o, struct option *lo,
		      char *shortopts, size_t len)
{
	size_t i, n = N_COMMON, used;

	if (o->nopts > BENCH_CLI_MAX_OPTS)
		return -EINVAL;
	memcpy(lo, common_opts, sizeof(common_opts));
	used = (size_t)snprintf(shortopts, len, "n:w:b:j:h");
	for (i = 0; i < o->nopts; i++) {
		const struct bench_cli_opt *x = &o->opts[i];

		lo[n + i] = (struct option){x->name, required_argument, NULL,
					    x->key ? x->key : 256 + (int)i};
		if (x->key && used + 2 < len)
			used += (size_t)snprintf(shortopts + used, len - used,
						 "%c:", x->key);
	}
	lo[n + i] = (struct option){NULL, 0, NULL, 0};
	return 0;
}

/* A program's own option: stored as given.  -EINVAL if c is none. */
static int take_opt(const struct bench_cli *o, int c, const char *arg)
{
	size_t i;

	for (i = 0; i < o->nopts; i++) {
		if (c == (o->opts[i].key ? o->opts[i].key : 256 + (int)i)) {
			*o->opts[i].value = arg;
			return 0;
		}
	}
	return -EINVAL;
}

int bench_cli_parse(struct bench_cli *o, int argc, char **argv)
{
	struct option lo[N_COMMON + BENCH_CLI_MAX_OPTS + 1];
	char shortopts[16 + 2 * BENCH_CLI_MAX_OPTS];
	int c, bad;

	o->cfg = (struct bench_config){.iters = BENCH_DEFAULT_ITERS,
				       .warmup = BENCH_DEFAULT_WARMUP,
				       .trim = BENCH_DEFAULT_TRIM};
	bad = build_opts(o, lo, shortopts, sizeof(shortopts));
	if (bad)
		return bad;
	o->gb_argc = gbench_split_args(&argc, argv, o->gb_argv, 32);
	while (!bad && (c = getopt_long(argc, argv, shortopts, lo, NULL)) !=
			       -1) {
		switch (c) {
		case 'n': bad = parse_count(optarg, false, &o->cfg.iters); break;
		case 'w': bad = parse_count(optarg, true, &o->cfg.warmup); break;
		case 'b': o->only = optarg; break;
		case 'j': o->json = optarg; break;
		case 'D': o->direct = true; break;
		case 'h': usage(o, stdout); return 1;
		default: bad = take_opt(o, c, optarg); break;
		}
	}
	if (bad || optind != argc) {
		usage(o, stderr);
		return -EINVAL;
	}
	return 0;
}

struct gb_arg {
	const struct bench_case *c;
	const struct bench_config *cfg;
	struct bench_result *out;
};

static void gb_run(gbench_state *st, void *arg)
{
	struct gb_arg *a = arg;

	gbench_run_case(st, a->c, a->cfg, a->out);
}

int bench_cli_run(struct bench_cli *o, const struct bench_case *cases,
		  size_t n)
{
	struct bench_result *res = calloc(n, sizeof(*res));
	struct gb_arg *args = calloc(n, sizeof(*args));
	size_t i, m = 0;
	int ret = 0, status = 0;

	if (!res || !args) {
		free(res);
		free(args);
		return 1;
	}
	for (i = 0; i < n && ret == 0; i++) {
		if (o->only && strcmp(o->only, cases[i].name))
			continue;
		if (o->direct) {
			ret = bench_run(&cases[i], &o->cfg, &res[m]);
		} else {
			args[m] = (struct gb_arg){&cases[i], &o->cfg, &res[m]};
			ret = gbench_register(cases[i].name, gb_run, &args[m],
					      o->cfg.iters);
		}
		m++;
	}
	if (m == 0) {
		fprintf(stderr, "%s: no benchmark named '%s'\n", o->tool,
			o->only);
		status = 2;
	} else if (!o->direct && ret == 0 &&
		   bench_main(o->gb_argc, o->gb_argv)) {
		ret = -EIO;
	}
	if (!status && ret) {
		fprintf(stderr, "%s: %s%s%s\n", o->tool, strerror(-ret),
			o->hint ? "; " : "", o->hint ? o->hint : "");
		status = 1;
	}
	if (!status) {
		printf(" %s\n", o->title);
		bench_print_table(stdout, res, m);
		if (o->json && bench_write_json_on(o->json, o->tool, o->fabric,
						   res, m)) {
			fprintf(stderr, "%s: cannot write %s\n", o->tool,
				o->json);
			status = 1;
		}
	}
	free(res);
	free(args);
	return status;
}
