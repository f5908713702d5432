#!/usr/bin/env bash
# The native bench tools on this machine, over libfabric (tcp;ofi_rxm on
# 127.0.0.1, no RDMA), as scripts/bench --native runs them: bench_ofi (the
# raw floor) through Google Benchmark and directly, and bench_xport over
# the ofi transport.  Each produces the perftest statistics, in order (min
# <= median <= p99 <= p99.9), in JSON of the shape bench_report.py reads;
# bench_ofi names its fabric there; bench_xport's counts are the protocol's
# (one message out and one back per ping-pong, one READ and no message per
# read).  An unknown provider is exit status 2.  No timing is asserted:
# benchmarks report, tests assert.
#
#   tests/bench_native.sh BUILD_DIR
set -u
B=${1:?usage: bench_native.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
fail() { echo "FAIL: $*"; cat "$out" 2>/dev/null; exit 1; }
pass=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }

j=$tmp/ofi.json g=$tmp/ofi-gb.json
"$B/bench/bench_ofi" -n 200 -w 20 --json "$j" --benchmark_out="$g" \
	--benchmark_out_format=json >"$out" 2>&1 ||
	fail "bench_ofi (Google Benchmark) failed"
python3 - "$j" "$g" <<'PY' >"$out" 2>&1 || fail "bad bench_ofi JSON"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["tool"] == "bench_ofi", doc
assert doc["fabric"] == "libfabric tcp;ofi_rxm", doc["fabric"]
res = {b["name"]: b for b in doc["benchmarks"]}
assert set(res) == {"ofi_read_4k", "ofi_send_64"}, sorted(res)
for name, b in res.items():
    assert b["iterations"] == 200 and b["warmup"] == 20, b
    assert 0 < b["min_us"] <= b["median_us"] <= b["p99_us"] <= b["p999_us"], b
    assert b["busy_poll"] == 1, b
assert res["ofi_send_64"]["rtt_divisor"] == 2 and res["ofi_send_64"]["bytes"] == 64
assert res["ofi_read_4k"]["rtt_divisor"] == 1 and res["ofi_read_4k"]["bytes"] == 4096
gb = json.load(open(sys.argv[2]))["benchmarks"]
assert len(gb) == 2 and all("median_us" in b and "p999_us" in b for b in gb), gb
PY
ok "bench_ofi through Google Benchmark: JSON complete and ordered"

"$B/bench/bench_ofi" --direct -n 100 -w 10 -b ofi_send_64 >"$out" 2>&1 ||
	fail "bench_ofi --direct failed"
grep -q '^ ofi_send_64 \+64 \+100 ' "$out" || fail "no perftest-style row"
grep -q 'FI_EP_RDM over tcp;ofi_rxm on 127.0.0.1' "$out" ||
	fail "the header does not name the provider"
ok "bench_ofi --direct: the perftest-style row"

"$B/bench/bench_ofi" --direct -n 10 --provider no-such-provider >"$out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "an unknown provider exits $rc, not 2"
grep -q "no provider 'no-such-provider'.*tcp;ofi_rxm" "$out" ||
	fail "the error does not list the providers there are"
ok "bench_ofi: an unknown provider is refused with the list"

j=$tmp/xport.json
"$B/bench/bench_xport" --transport ofi -n 200 -w 20 --json "$j" \
	>"$out" 2>&1 || fail "bench_xport --transport ofi failed"
grep -q 'xport_ofi over tcp;ofi_rxm' "$out" ||
	fail "bench_xport's header does not name the transport"
python3 - "$j" <<'PY' >"$out" 2>&1 || fail "bad bench_xport JSON"
import json, sys
res = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
assert set(res) == {"xport_send_64", "xport_send_64_poll", "xport_read_4k",
                    "xport_read_4k_poll"}, sorted(res)
for name, b in res.items():
    assert b["iterations"] == 200, b
    assert 0 < b["min_us"] <= b["median_us"] <= b["p99_us"] <= b["p999_us"], b
    if "send" in name:
        assert 1 <= b["msgs_sent_per_op"] <= 1.1, b
        assert 1 <= b["msgs_recv_per_op"] <= 1.1, b
        assert b["rdma_reads_per_op"] == 0, b
    else:
        assert b["rdma_reads_per_op"] == 1, b
        assert b["msgs_sent_per_op"] == 0, b
PY
ok "bench_xport --transport ofi: JSON complete, counts as the protocol says"

# DSM_TRANSPORT=ofi (as scripts/bench --native and this test's CTest
# entry set it) is the default, directly as well.
DSM_TRANSPORT=ofi "$B/bench/bench_xport" --direct -n 50 -w 5 \
	-b xport_send_64_poll >"$out" 2>&1 ||
	fail "bench_xport with DSM_TRANSPORT=ofi failed"
grep -q 'xport_ofi over tcp;ofi_rxm' "$out" ||
	fail "DSM_TRANSPORT=ofi did not pick the ofi transport"
grep -q '^ xport_send_64_poll \+64 \+50 ' "$out" || fail "no perftest-style row"
ok "bench_xport: DSM_TRANSPORT=ofi picks ofi"

echo "$pass passed, 0 failed"
