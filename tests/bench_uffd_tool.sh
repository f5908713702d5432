#!/usr/bin/env bash
# bench_uffd, through Google Benchmark and directly: every case runs, its
# statistics are ordered, and the handler resolved exactly one fault per
# access (counted by the benchmark, so a reset that did not re-arm the
# fault shows as less than 1).  Timings are reported, never asserted.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	echo "SKIP: userfaultfd needs root or vm.unprivileged_userfaultfd=1"
	exit 77
fi
"$bin" -n 200 -w 20 --json "$tmp/gb.json" >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: bench_uffd"; exit 1; }
"$bin" --direct -n 100 -w 10 --json "$tmp/d.json" >>"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: bench_uffd --direct"; exit 1; }
cat "$tmp/out"
python3 - "$tmp/gb.json" "$tmp/d.json" <<'PY'
import json, sys
for path, iters in ((sys.argv[1], 200), (sys.argv[2], 100)):
    res = json.load(open(path))["benchmarks"]
    assert {b["name"] for b in res} == {"uffd_missing_copy", "uffd_minor", "uffd_wp"}, res
    for b in res:
        assert b["iterations"] == iters, b
        assert 0 < b["min_us"] <= b["median_us"] <= b["p99_us"] <= b["p999_us"], b
        assert b["faults_per_op"] == 1, b
print("1 passed, 0 failed")
PY
