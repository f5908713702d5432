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
grep -q '^Floor set: verbs (bench_verbs)\.$' "$tmp/summary.md" ||
	fail "the summary does not name the verbs floor set"
# The floor sets: a run with bench_verbs' parts takes them; one with only
# bench_ofi's (scripts/bench --native) takes those in their place, and
# says so with the fabric bench_ofi reported.
set_dir() {
	rm -rf "$1" && mkdir -p "$1"
	doc bench_uffd uffd_minor 5 >"$1/uffd.json"
	doc bench_xport xport_send_64 30 >"$1/xport.json"
	doc bench_dsm dsm_read_miss_remote_master 90 >"$1/dsm.json"
	doc bench_lock lock_ex_remote_master 120 >"$1/lock.json"
}
set_dir "$tmp/verbs"
doc bench_verbs verbs_send_64 10 >"$tmp/verbs/v1.json"
doc bench_verbs verbs_read_4k 20 >"$tmp/verbs/v2.json"
python3 "$src/bench/report/bench_report.py" "$tmp/verbs" >/dev/null ||
	fail "bench_report failed on the verbs set"
v=$tmp/verbs/summary.md
grep -q '^| xport_send_64 | .* | 10.00 (verbs_send_64) | 3.00 |$' "$v" ||
	fail "xport_send_64 against verbs_send_64 is wrong: $(cat "$v")"
grep -q '^| dsm_read_miss_remote_master | .* | 45.00 (verbs_read_4k + uffd_minor + verbs_send_64\*2) | 2.00 |$' "$v" ||
	fail "a miss against the verbs floor is wrong: $(cat "$v")"
grep -q '^Floor set: verbs (bench_verbs)\.$' "$v" || fail "verbs set not named: $(cat "$v")"
set_dir "$tmp/native"
printf '{"tool": "bench_ofi", "fabric": "libfabric tcp;ofi_rxm", "benchmarks": [{"name": "ofi_send_64", "iterations": 50, "min_us": 1.5, "median_us": 15, "avg_us": 9, "p99_us": 20, "p999_us": 30, "inline": 1}, {"name": "ofi_read_4k", "iterations": 50, "min_us": 1.5, "median_us": 25, "avg_us": 9, "p99_us": 20, "p999_us": 30, "inline": 0}]}\n' >"$tmp/native/ofi.json"
python3 "$src/bench/report/bench_report.py" "$tmp/native" >/dev/null ||
	fail "bench_report failed on the native set"
v=$tmp/native/summary.md
grep -q '^| xport_send_64 | .* | 15.00 (ofi_send_64) | 2.00 |$' "$v" ||
	fail "xport_send_64 against ofi_send_64 is wrong: $(cat "$v")"
grep -q '^| dsm_read_miss_remote_master | .* | 60.00 (ofi_read_4k + uffd_minor + ofi_send_64\*2) | 1.50 |$' "$v" ||
	fail "a miss against the libfabric floor is wrong: $(cat "$v")"
grep -q '^| lock_ex_remote_master | .* | 60.00 (ofi_send_64\*4) | 2.00 |$' "$v" ||
	fail "a remote lock against the libfabric floor is wrong: $(cat "$v")"
grep -q '^| ofi_send_64 | bench_ofi | 50 | .* | inline=1 | - | - |$' "$v" ||
	fail "the fabric leaked into the counters, or ofi_send_64 is missing: $(cat "$v")"
grep -q '^Floor set: libfabric tcp;ofi_rxm (bench_ofi)\.$' "$v" ||
	fail "the native set is not named: $(cat "$v")"
grep -q verbs_ "$v" && fail "a native summary names a verbs part: $(cat "$v")"
# Both sets in one directory: the verbs one, as before.
cp "$tmp/verbs/v1.json" "$tmp/verbs/v2.json" "$tmp/native/"
python3 "$src/bench/report/bench_report.py" "$tmp/native" >/dev/null ||
	fail "bench_report failed on both sets"
grep -q '^| xport_send_64 | .* | 10.00 (verbs_send_64) | 3.00 |$' "$v" ||
	fail "with both sets the verbs one is not used: $(cat "$v")"
echo '{"benchmarks": [' >"$tmp/e.json"
if python3 "$src/bench/report/bench_report.py" "$tmp" 2>"$tmp/err"; then
	fail "truncated JSON accepted"
fi
grep -q 'e.json' "$tmp/err" || fail "the error does not name the bad file"
echo "1 passed, 0 failed"
