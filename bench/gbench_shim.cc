// The C face of Google Benchmark (see gbench_shim.h).  Nothing here may
// let a C++ exception reach C: each entry point catches what it can throw.

#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace {

// Samples kept per run when Google Benchmark picks a huge iteration count;
// the rest are timed and reported to it but left out of our statistics.
constexpr unsigned long kMaxSamples = 1ul << 24;

// Set by gbench_skip_with_error(): RunSpecifiedBenchmarks() does not say
// whether a benchmark failed, and bench_main() must.
bool g_failed;

benchmark::State &state_of(gbench_state *st)
{
	return *reinterpret_cast<benchmark::State *>(st);
}

const benchmark::State &state_of(const gbench_state *st)
{
	return *reinterpret_cast<const benchmark::State *>(st);
}

void skip_errno(gbench_state *st, const bench_case *c, const char *when,
		int rc)
{
	std::string msg = std::string(c->name) + ": " + when + ": " +
			  std::strerror(-rc);
	gbench_skip_with_error(st, msg.c_str());
}

void export_counters(gbench_state *st, const bench_result &r)
{
	gbench_set_counter(st, "min_us", r.min_us);
	gbench_set_counter(st, "median_us", r.median_us);
	gbench_set_counter(st, "avg_us", r.avg_us);
	gbench_set_counter(st, "p99_us", r.p99_us);
	gbench_set_counter(st, "p999_us", r.p999_us);
	gbench_set_counter(st, "max_us", r.max_us);
	gbench_set_counter(st, "warmup", static_cast<double>(r.warmup));
	gbench_set_counter(st, "trimmed", static_cast<double>(r.trimmed));
	for (unsigned i = 0; i < r.ncounters; i++)
		gbench_set_counter(st, r.counters[i].name, r.counters[i].value);
}

// The timed loop; returns 0 or the first failing operation's error, after
// which the benchmark has been marked failed and the loop left.
int timed_loop(gbench_state *st, const bench_case *c, bench_samples *s)
{
	while (gbench_keep_running(st)) {
		uint64_t ns;
		int rc = bench_time_op(c, &ns);

		if (rc) {
			skip_errno(st, c, "operation failed", rc);
			return rc;
		}
		gbench_set_iteration_time(st, static_cast<double>(ns) / 1e9);
		bench_samples_add(s, ns);
	}
	return 0;
}

} // namespace

extern "C" int gbench_register(const char *name, gbench_fn fn, void *arg,
			       unsigned long iterations)
{
	try {
		auto *b = benchmark::RegisterBenchmark(
			name, [fn, arg](benchmark::State &st) {
				fn(reinterpret_cast<gbench_state *>(&st), arg);
			});
		b->UseManualTime()->Unit(benchmark::kMicrosecond);
		if (iterations)
			b->Iterations(static_cast<benchmark::IterationCount>(
				iterations));
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	return 0;
}

extern "C" bool gbench_keep_running(gbench_state *st)
{
	return state_of(st).KeepRunning();
}

extern "C" unsigned long gbench_max_iterations(const gbench_state *st)
{
	return static_cast<unsigned long>(state_of(st).max_iterations);
}

extern "C" void gbench_set_iteration_time(gbench_state *st, double seconds)
{
	state_of(st).SetIterationTime(seconds);
}

extern "C" void gbench_set_counter(gbench_state *st, const char *name,
				   double value)
{
	try {
		state_of(st).counters[name] = benchmark::Counter(value);
	} catch (const std::bad_alloc &) {
		// A counter lost to memory pressure is not worth failing for.
	}
}

extern "C" void gbench_skip_with_error(gbench_state *st, const char *msg)
{
	g_failed = true;
	state_of(st).SkipWithError(msg);
}

extern "C" void gbench_run_case(gbench_state *st, const bench_case *c,
				const bench_config *cfg, bench_result *out)
{
	unsigned long cap = std::min(gbench_max_iterations(st), kMaxSamples);
	bench_result r = {};
	bench_samples s;
	int rc, end_rc;

	r.name = c->name;
	r.note = c->note;
	r.bytes = c->bytes;
	r.warmup = cfg->warmup;
	rc = bench_samples_init(&s, std::max(cap, 1ul));
	if (rc)
		return skip_errno(st, c, "samples", rc);
	rc = c->begin ? c->begin(c->ctx) : 0;
	if (rc) {
		bench_samples_free(&s);
		return skip_errno(st, c, "begin", rc);
	}
	rc = bench_warmup(c, cfg->warmup);
	if (rc)
		skip_errno(st, c, "warm-up", rc);
	else
		rc = timed_loop(st, c, &s);
	if (!rc && c->counters) {
		rc = c->counters(c->ctx, &r);
		if (rc)
			skip_errno(st, c, "counters", rc);
	}
	end_rc = c->end ? c->end(c->ctx) : 0;
	if (!rc && end_rc)
		skip_errno(st, c, "end", rc = end_rc);
	if (!rc && bench_samples_reduce(&s, cfg->trim, &r) == 0) {
		export_counters(st, r);
		if (out)
			*out = r;
	}
	bench_samples_free(&s);
}

extern "C" int gbench_split_args(int *argc, char **argv, char **gb, int cap)
{
	int k = 0, g = 0;

	gb[g++] = argv[0];
	for (int i = 1; i < *argc; i++) {
		if (!std::strncmp(argv[i], "--benchmark_", 12) && g < cap - 1)
			gb[g++] = argv[i];
		else
			argv[++k] = argv[i];
	}
	gb[g] = nullptr;
	*argc = k + 1;
	argv[*argc] = nullptr;
	return g;
}

extern "C" int bench_main(int argc, char **argv)
{
	try {
		benchmark::Initialize(&argc, argv);
		if (benchmark::ReportUnrecognizedArguments(argc, argv))
			return 2;
		benchmark::RunSpecifiedBenchmarks();
		benchmark::Shutdown();
	} catch (const std::bad_alloc &) {
		return 1;
	}
	return g_failed ? 1 : 0;
}
