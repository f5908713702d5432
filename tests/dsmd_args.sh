#!/usr/bin/env bash
# dsmd's configuration errors: each case must exit 2 and name the problem.
set -u
dsmd=$1
pass=0 failn=0
unset DSM_NODE DSM_NNODES DSM_RENDEZVOUS SLURM_PROCID SLURM_NTASKS \
	OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE PMI_RANK PMI_SIZE
# expect WHAT-TO-FIND ARGS...
expect() {
	local want=$1 out rc
	shift
	out=$(timeout 10 "$dsmd" "$@" 2>&1)
	rc=$?
	if [ $rc -eq 2 ] && grep -q -- "$want" <<<"$out"; then
		echo "ok   dsmd $*"
		pass=$((pass + 1))
	else
		echo "FAIL dsmd $*: exit $rc, output: $out (wanted '$want')"
		failn=$((failn + 1))
	fi
}
expect "node number and node count are required"
expect "bad node count" -r 0 -n 0
expect "bad node count" -r 0 -n 65
expect "bad node count" -r 0 -n 3x
expect "bad node number" -r 4 -n 4
expect "bad node number" -r -1 -n 4
expect "rendezvous address is required" -r 1 -n 2
expect "must be at least twice" -r 0 -n 1 --heartbeat-ms 1000 --dead-after-ms 1500
expect "bad heartbeat" -r 0 -n 1 --heartbeat-ms 0
expect "bad recv depth" -r 0 -n 1 --recv-depth 2
expect "unexpected argument" -r 0 -n 1 extra
expect "usage" --no-such-option
expect "bad arena size" -r 0 -n 1 --arena-mb 0
expect "bad arena size" -r 0 -n 1 --arena-mb 2000000
expect "bad hold time" -r 0 -n 1 --hold-us -5
expect "bad txn poll" -r 0 -n 1 --txn-poll-us 2000000
DSM_TXN_POLL_US=soon expect "bad txn poll" -r 0 -n 1
DSM_ARENA_MB=lots expect "bad arena size" -r 0 -n 1
expect "bad arena base" -r 0 -n 1 --arena-base 0x200000000001
expect "bad arena base" -r 0 -n 1 --arena-base 0x7fffffff0000
expect "bad arena base" -r 0 -n 1 --arena-base nowhere
expect "bad placement" -r 0 -n 1 --placement nearest
expect "bad --migrate" -r 0 -n 1 --migrate maybe
expect "bad migrate share" -r 0 -n 1 --migrate-share 50
expect "bad migrate share" -r 0 -n 1 --migrate-share 101
expect "bad migrate minimum" -r 0 -n 1 --migrate-min 0
expect "bad migrate window" -r 0 -n 1 --migrate-window-ms 0
expect "bad migrate load" -r 0 -n 1 --migrate-load 99
expect "bad deadlock wait" -r 0 -n 1 --deadlock-ms 0
DSM_DEADLOCK_MS=soon expect "bad deadlock wait" -r 0 -n 1
expect "bad --peer-reads" -r 0 -n 1 --peer-reads sometimes
DSM_PEER_READS=yes expect "bad --peer-reads" -r 0 -n 1
expect "bad peer hold time" -r 0 -n 1 --peer-hold-us 2000000
DSM_MIGRATE_SHARE=half expect "bad migrate share" -r 0 -n 1
DSM_PLACEMENT=first expect "bad placement" -r 0 -n 1
expect "bad --transport" -r 0 -n 1 --transport carrier-pigeon
DSM_TRANSPORT=rdma expect "bad --transport" -r 0 -n 1
expect "names an RDMA device, but the transport is ofi" -r 0 -n 1 --transport ofi --device mlx5_0
# Too old a kernel is refused before anything starts, naming the version.
DSM_TEST_KERNEL_RELEASE=5.15.0-91-generic expect "needs Linux 6.4 or later.*5.15.0" -r 0 -n 1
DSM_TEST_KERNEL_RELEASE=6.3.9 expect "needs Linux 6.4 or later" -r 0 -n 1
DSM_NODE=9 DSM_NNODES=4 expect "bad node number"
SLURM_PROCID=1 SLURM_NTASKS=2 expect "rendezvous address is required"
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
