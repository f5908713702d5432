#include "benchlib.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int bench_samples_init(struct bench_samples *s, unsigned long cap)
{
	memset(s, 0, sizeof(*s));
	if (cap == 0)
		return -EINVAL;
	s->ns = calloc(cap, sizeof(*s->ns));
	if (!s->ns)
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->ns);
	memset(s, 0, sizeof(*s));
}

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
	else
		s->dropped++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of m sorted samples, per mille: the smallest
 * sample with at least pm/1000 of the samples at or below it. */
static uint64_t percentile(const uint64_t *sorted, unsigned long m,
			   unsigned pm)
{
	unsigned long rank = (unsigned long)(((uint64_t)m * pm + 999) / 1000);

	return sorted[rank ? rank - 1 : 0];
}

static double median(const uint64_t *sorted, unsigned long m)
{
	if (m % 2)
		return (double)sorted[m / 2];
	return ((double)sorted[m / 2 - 1] + (double)sorted[m / 2]) / 2;
}

int bench_samples_reduce(struct bench_samples *s, unsigned trim,
			 struct bench_result *out)
{
	const uint64_t *v = s->ns;
	unsigned long m;
	double sum = 0, sq = 0, avg;

	if (s->n <= trim)
		return -EINVAL;
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
	m = s->n - trim;
	for (unsigned long i = 0; i < m; i++)
		sum += (double)v[i];
	avg = sum / (double)m;
	for (unsigned long i = 0; i < m; i++)
		sq += ((double)v[i] - avg) * ((double)v[i] - avg);

	out->iterations = s->n;
	out->trimmed = trim;
	out->min_us = (double)v[0] / 1e3;
	out->max_us = (double)v[m - 1] / 1e3;
	out->median_us = median(v, m) / 1e3;
	out->avg_us = avg / 1e3;
	out->stdev_us = sqrt(sq / (double)m) / 1e3;
	out->p99_us = (double)percentile(v, m, 990) / 1e3;
	out->p999_us = (double)percentile(v, m, 999) / 1e3;
	return 0;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_clock_cost_ns(void)
{
	enum { N = 201 };
	uint64_t d[N];

	for (int i = 0; i < N; i++) {
		uint64_t t0 = bench_now_ns();

		d[i] = bench_now_ns() - t0;
	}
	qsort(d, N, sizeof(d[0]), cmp_u64);
	return d[N / 2];
}

int bench_time_op(const struct bench_case *c, uint64_t *ns)
{
	uint64_t t0, t1;
	int rc;

	if (c->prepare) {
		rc = c->prepare(c->ctx);
		if (rc)
			return rc;
	}
	t0 = bench_now_ns();
	rc = c->op(c->ctx);
	t1 = bench_now_ns();
	if (rc)
		return rc;
	*ns = (t1 - t0) / (c->divisor ? c->divisor : 1);
	return 0;
}

int bench_warmup(const struct bench_case *c, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		int rc = c->prepare ? c->prepare(c->ctx) : 0;

		if (!rc)
			rc = c->op(c->ctx);
		if (rc)
			return rc;
	}
	return 0;
}

static int run_loop(const struct bench_case *c, const struct bench_config *cfg,
		    struct bench_samples *s)
{
	int rc = bench_warmup(c, cfg->warmup);

	for (unsigned long i = 0; !rc && i < cfg->iters; i++) {
		uint64_t ns;

		rc = bench_time_op(c, &ns);
		if (!rc)
			bench_samples_add(s, ns);
	}
	return rc;
}

int bench_run(const struct bench_case *c, const struct bench_config *cfg,
	      struct bench_result *out)
{
	struct bench_samples s;
	struct bench_result r = {
		.name = c->name, .note = c->note, .bytes = c->bytes,
		.warmup = cfg->warmup,
	};
	int rc, end_rc = 0;

	rc = bench_samples_init(&s, cfg->iters);
	if (rc)
		return rc;
	rc = c->begin ? c->begin(c->ctx) : 0;
	if (!rc) {
		rc = run_loop(c, cfg, &s);
		if (!rc && c->counters)
			rc = c->counters(c->ctx, &r);
		end_rc = c->end ? c->end(c->ctx) : 0;
	}
	if (!rc)
		rc = end_rc;
	if (!rc)
		rc = bench_samples_reduce(&s, cfg->trim, &r);
	bench_samples_free(&s);
	if (!rc)
		*out = r;
	return rc;
}

int bench_result_add_counter(struct bench_result *r, const char *name,
			     double value)
{
	if (r->ncounters == BENCH_MAX_COUNTERS)
		return -ENOSPC;
	r->counters[r->ncounters].name = name;
	r->counters[r->ncounters].value = value;
	r->ncounters++;
	return 0;
}

static const char rule[] =
	"-----------------------------------------------------------------"
	"-----------------------------------------------------------------";

void bench_print_table(FILE *f, const struct bench_result *r, size_t n)
{
	fprintf(f, "%s\n", rule);
	fprintf(f, " %-18s %-7s %-11s %12s %12s %15s %12s %14s %11s %13s\n",
		"benchmark", "#bytes", "#iterations", "t_min[usec]",
		"t_max[usec]", "t_median[usec]", "t_avg[usec]",
		"t_stdev[usec]", "99%[usec]", "99.9%[usec]");
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %-18s %-7zu %-11lu %12.2f %12.2f %15.2f %12.2f "
			   "%14.2f %11.2f %13.2f\n",
			r[i].name, r[i].bytes, r[i].iterations, r[i].min_us,
			r[i].max_us, r[i].median_us, r[i].avg_us,
			r[i].stdev_us, r[i].p99_us, r[i].p999_us);
	fprintf(f, "%s\n", rule);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s: %s; warm-up: first %lu iterations discarded; "
			   "largest %lu of %lu samples trimmed\n",
			r[i].name, r[i].note ? r[i].note : "", r[i].warmup,
			r[i].trimmed, r[i].iterations);
	fprintf(f, " clock: CLOCK_MONOTONIC around each operation, "
		   "one read costs ~%llu ns\n",
		(unsigned long long)bench_clock_cost_ns());
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_result(FILE *f, const struct bench_result *r)
{
	fputs("    {\"name\": ", f);
	json_string(f, r->name);
	fputs(", \"note\": ", f);
	json_string(f, r->note);
	fprintf(f, ", \"bytes\": %zu, \"iterations\": %lu, \"warmup\": %lu, "
		   "\"trimmed\": %lu,\n     \"min_us\": %.3f, \"median_us\": %.3f, "
		   "\"avg_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, "
		   "\"max_us\": %.3f, \"stdev_us\": %.3f",
		r->bytes, r->iterations, r->warmup, r->trimmed, r->min_us,
		r->median_us, r->avg_us, r->p99_us, r->p999_us, r->max_us,
		r->stdev_us);
	for (unsigned i = 0; i < r->ncounters; i++) {
		fputs(", ", f);
		json_string(f, r->counters[i].name);
		fprintf(f, ": %.6g", r->counters[i].value);
	}
	fputs("}", f);
}

int bench_write_json(const char *path, const char *tool,
		     const struct bench_result *r, size_t n)
{
	return bench_write_json_on(path, tool, NULL, r, n);
}

int bench_write_json_on(const char *path, const char *tool,
			const char *fabric, const struct bench_result *r,
			size_t n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;

	if (!f)
		return -errno;
	fputs("{\"tool\": ", f);
	json_string(f, tool);
	if (fabric) {
		fputs(", \"fabric\": ", f);
		json_string(f, fabric);
	}
	fprintf(f, ", \"clock\": \"CLOCK_MONOTONIC\", \"clock_cost_ns\": %llu,"
		   " \"unit\": \"us\",\n \"benchmarks\": [\n",
		(unsigned long long)bench_clock_cost_ns());
	for (size_t i = 0; i < n; i++) {
		json_result(f, &r[i]);
		fputs(i + 1 < n ? ",\n" : "\n", f);
	}
	fputs(" ]}\n", f);
	if (f == stdout)
		return fflush(f) ? -errno : 0;
	return fclose(f) ? -errno : 0;
}
