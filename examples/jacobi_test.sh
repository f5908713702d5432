#!/usr/bin/env bash
# The Jacobi example (examples/jacobi.c): every cell must match one process
# computing alone (the program checks and prints OK or a difference).
#   examples/jacobi_test.sh BUILD_DIR
# Runs it on one node (natively dsmd then runs no fabric at all: dsmctl
# status must say transport none), then on 3 nodes and on 2 nodes x 2 ranks over the
# fabric: verbs on rxe, or libfabric when DSM_TRANSPORT=ofi (CTest label
# "native").  Without an RDMA device and without DSM_TRANSPORT=ofi it skips
# (exit 77, reason printed) unless DSM_REQUIRE_RDMA=1.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR"; exit 2; }
B=$(cd "$1" && pwd) || { echo "FAIL: no build directory $1"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() { echo "FAIL: $*"; echo "---- output ----"; cat "$out"; exit 1; }

. "$(dirname "$0")/../tests/need_fabric.sh"
want=${DSM_TRANSPORT:-verbs}

# run WHAT RANKS-LINE DSMRUN-ARGS...: the run must pass its own check.
run() {
	local what=$1 ranks=$2
	shift 2
	"$B/dsmrun" "$@" -t 300 sh -c '
		if [ "$DSM_RANK" = 0 ]; then "$0/dsmctl" status | head -1; fi
		exec "$0/examples/dsm-jacobi"' "$B" >"$out" 2>&1 ||
		fail "$what: dsmrun exited $?"
	cat "$out"
	grep -q "jacobi: n=256 iters=50 ranks=$ranks .* max_diff=0 OK" "$out" ||
		fail "$what: the grid does not match one process's"
}

# One node, with the transport left to dsmd: where an RDMA device is
# usable that is verbs (rxe); where none is, a lone dsmd runs no fabric at
# all (transport none), whatever the others were asked for.
lone=none
[ "$want" = verbs ] && lone=verbs
(unset DSM_TRANSPORT; run "one node" "1 nodes=1" -n 1)
grep -q "node 0 of 1, transport $lone on" "$out" ||
	fail "one node: dsmd ran another transport than $lone"
run "3 nodes" "3 nodes=3" -n 3
grep -q "node 0 of 3, transport $want on" "$out" ||
	fail "3 nodes: dsmctl status did not name the $want transport"
run "2 nodes x 2 ranks" "4 nodes=2" -n 2 -p 2
echo "PASS: jacobi matches one process on 1 node (no fabric), 3 nodes and 2x2 ($want)"
