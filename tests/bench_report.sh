#!/usr/bin/env bash
# bench_report.py on made-up results: every statistic and counter reaches
# the Markdown, a floor's ratio is computed from the medians, a missing
# floor part leaves the ratio out, bad JSON is a clear error.
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/summary.md" 2>/dev/null; exit 1; }
doc() {
	printf '{"tool": "%s", "benchmarks": [{"name": "%s", "iterations": 50, "min_us": 1.5, "median_us": %s, "avg_us": 9, "p99_us": 20, "p999_us": 30, "msgs_per_op": 2}]}\n' "$1" "$2" "$3"
}
doc bench_verbs raw_a 100 >"$tmp/a.json"
doc bench_uffd raw_b 50 >"$tmp/b.json"
doc bench_dsm op 300 >"$tmp/c.json"
doc bench_dsm op2 10 >"$tmp/d.json"
python3 "$src/bench/report/bench_report.py" --floor op=raw_a+raw_b \
	--floor op2=raw_a+missing "$tmp" >/dev/null || fail "bench_report failed"
grep -q '^| op | bench_dsm | 50 | 1.50 | 300.00 | 9.00 | 20.00 | 30.00 | msgs_per_op=2 | 150.00 (raw_a + raw_b) | 2.00 |$' "$tmp/summary.md" ||
	fail "the ratio row for op is wrong"
grep -q '^| op2 | .* | - | - |$' "$tmp/summary.md" || fail "op2 got a ratio with a floor part missing"
grep -q '^| raw_b | bench_uffd | 50 |' "$tmp/summary.md" || fail "raw_b missing"
if command -v gnuplot >/dev/null; then
	[ -s "$tmp/latency.png" ] || fail "no plot although gnuplot is installed"
fi
# A part counted K times; the upgrade and application plots.
doc bench_dsm op3 500 >"$tmp/f.json"
doc bench_dsm dsm_upgrade_1 40 >"$tmp/g.json"
doc bench_dsm dsm_upgrade_4 70 >"$tmp/h.json"
printf '{"tool": "app_jacobi", "benchmarks": [{"name": "jacobi_2", "nodes": 2, "iterations": 1, "min_us": 2e6, "median_us": 2e6, "avg_us": 2e6, "p99_us": 2e6, "p999_us": 2e6}]}\n' >"$tmp/i.json"
python3 "$src/bench/report/bench_report.py" --floor op=raw_a+raw_b \
	--floor op3=raw_a*2+raw_b "$tmp" >/dev/null || fail "bench_report failed"
grep -q '^| op3 | .* | 250.00 (raw_a\*2 + raw_b) | 2.00 |$' "$tmp/summary.md" ||
	fail "a part counted twice is not in op3's floor"
grep -q '^| jacobi_2 | app_jacobi | 1 |' "$tmp/summary.md" || fail "jacobi_2 missing"
if command -v gnuplot >/dev/null; then
	[ -s "$tmp/upgrade.png" ] || fail "no upgrade plot"
	[ -s "$tmp/app.png" ] || fail "no application plot"
fi
echo '{"benchmarks": [' >"$tmp/e.json"
if python3 "$src/bench/report/bench_report.py" "$tmp" 2>"$tmp/err"; then
	fail "truncated JSON accepted"
fi
grep -q 'e.json' "$tmp/err" || fail "the error does not name the bad file"
echo "1 passed, 0 failed"
