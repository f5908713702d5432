#include "bench_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "gbench_shim.h"

static void usage(const struct bench_cli *o, FILE *f)
{
	fprintf(f,
"usage: %s [options] [--benchmark_*...]\n"
"  -n, --iters N      measured operations per benchmark [%d]\n"
"  -w, --warmup N     operations run first and discarded [%d]\n"
"  -b, --bench NAME   run only that benchmark\n"
"  -j, --json FILE    write the results as JSON\n"
"      --direct       run without Google Benchmark\n"
"%s%s", o->tool, BENCH_DEFAULT_ITERS, BENCH_DEFAULT_WARMUP,
		o->hint ? o->hint : "", o->hint ? "\n" : "");
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

int bench_cli_parse(struct bench_cli *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"iters", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'},
		{"bench", required_argument, NULL, 'b'},
		{"json", required_argument, NULL, 'j'},
		{"direct", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, bad = 0;

	o->cfg = (struct bench_config){.iters = BENCH_DEFAULT_ITERS,
				       .warmup = BENCH_DEFAULT_WARMUP,
				       .trim = BENCH_DEFAULT_TRIM};
	o->gb_argc = gbench_split_args(&argc, argv, o->gb_argv, 32);
	while (!bad && (c = getopt_long(argc, argv, "n:w:b:j:h", lo, NULL)) !=
			       -1) {
		switch (c) {
		case 'n': bad = parse_count(optarg, false, &o->cfg.iters); break;
		case 'w': bad = parse_count(optarg, true, &o->cfg.warmup); break;
		case 'b': o->only = optarg; break;
		case 'j': o->json = optarg; break;
		case 'D': o->direct = true; break;
		case 'h': usage(o, stdout); return 1;
		default: bad = -EINVAL; break;
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
		if (o->json && bench_write_json(o->json, o->tool, res, m)) {
			fprintf(stderr, "%s: cannot write %s\n", o->tool,
				o->json);
			status = 1;
		}
	}
	free(res);
	free(args);
	return status;
}
