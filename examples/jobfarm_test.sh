#!/usr/bin/env bash
# The job farm example (examples/jobfarm.c) on a real rxe device.
#   examples/jobfarm_test.sh BUILD_DIR [plain|failover|procs|all]
# plain:    3 nodes, 40 jobs: one coordinator, every job done once.
# failover: the same, but the first coordinator is SIGKILLed while handing
#           out job 11 holding the table lock; another rank repairs the
#           table, takes over and finishes, and still no job runs twice.
# procs:    failover with 2 nodes x 2 ranks, so that the dead coordinator
#           shares its node (and its dsmd) with a survivor.
# all (the default) runs plain and failover.  Needs an RDMA device: run it
# through scripts/softroce.  Without one it skips (exit 77, reason printed)
# unless DSM_REQUIRE_RDMA=1.  Prints PASS or FAIL lines; exits 0 or 1.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [plain|failover|procs|all]"; exit 2; }
B=$(cd "$1" && pwd) || { echo "FAIL: no build directory $1"; exit 1; }
farm=$B/examples/dsm-jobfarm
jobs=40
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() { echo "FAIL: $*"; echo "---- output ----"; cat "$out"; exit 1; }

[ -x "$farm" ] || { echo "FAIL: $farm not built"; exit 1; }
. "$(dirname "$0")/../tests/need_fabric.sh"

# Count lines of $out matching a pattern.
count() { grep -c -E "$1" "$out" || true; }

# The rank that coordinated first.
first_coordinator() {
	sed -n -E "s/^\[([0-9]+)\] jobfarm: rank \1 coordinates $jobs jobs$/\1/p" "$out"
}

# Every job done exactly once, said by the last coordinator, whose list of
# coordinators is $1 (an ERE).
check_done() {
	local who=$1
	[ "$(count "^\[[0-9]+\] jobfarm: $jobs jobs done, each once \(coordinators: $who\)$")" -eq 1 ] ||
		fail "no single '$jobs jobs done, each once (coordinators: ...)' line for coordinators '$who'"
	if grep -q -E 'jobfarm: FAILED|ran [0-9]+ times|not done|wrong result| lost, ' "$out"; then
		fail "a job was lost, repeated or wrong"
	fi
}

t_plain() {
	local rc c
	"$B/dsmrun" -n 3 -t 240 "$farm" -j $jobs >"$out" 2>&1
	rc=$?
	cat "$out"
	[ $rc -eq 0 ] || fail "dsmrun exited $rc, want 0"
	c=$(first_coordinator)
	[ "$(echo "$c" | grep -c .)" -eq 1 ] || fail "not exactly one coordinator elected: '$c'"
	if grep -q 'takes over' "$out"; then fail "a takeover without a death"; fi
	# Nobody died, so no value block may be reported lost.
	if grep -q 'value block is not valid' "$out"; then
		fail "a value block reported not valid although no holder died"
	fi
	check_done "$c"
	grep -q -E "^\[$c\] jobfarm: $jobs jobs done" "$out" ||
		fail "the final line is not rank $c's"
	echo "PASS: jobfarm: rank $c coordinated; $jobs jobs done, each once"
}

# $1: dsmrun's node and rank options.
t_failover() {
	local rc c next
	# shellcheck disable=SC2086 # $1 is several options
	"$B/dsmrun" $1 -t 240 "$farm" -j $jobs --kill-coordinator-after 10 >"$out" 2>&1
	rc=$?
	cat "$out"
	# dsmrun returns the first failure: the coordinator's SIGKILL.
	[ $rc -eq 137 ] || fail "dsmrun exited $rc, want 137 (the killed coordinator)"
	c=$(first_coordinator)
	[ "$(echo "$c" | grep -c .)" -eq 1 ] || fail "not exactly one first coordinator: '$c'"
	grep -q -E "^\[$c\] jobfarm: rank $c \(coordinator\) dies now by SIGKILL, holding the table lock" "$out" ||
		fail "rank $c did not announce its death"
	[ "$(count '^dsmrun: rank [0-9]+ \(node [0-9]+\) (was killed|exited)')" -eq 1 ] ||
		fail "not exactly one rank ended badly"
	grep -q -E "^dsmrun: rank $c \(node [0-9]+\) was killed by signal 9" "$out" ||
		fail "dsmrun did not see rank $c killed by SIGKILL"
	# Whoever took the table lock next found its value block not valid
	# and put the half-assigned job back.
	[ "$(count "jobfarm: rank [0-9]+: the table lock's value block is not valid")" -eq 1 ] ||
		fail "the table lock's value block was not reported invalid exactly once"
	[ "$(count 'jobfarm: rank [0-9]+: job-011 was half assigned to rank [0-9]+: back to the pool')" -eq 1 ] ||
		fail "job-011, half assigned by the dead coordinator, was not put back"
	next=$(sed -n -E "s/^\[([0-9]+)\] jobfarm: rank \1 takes over from rank $c \(its value block is not valid: it died coordinating\).*/\1/p" "$out")
	[ "$(echo "$next" | grep -c .)" -eq 1 ] || fail "no single successor of rank $c: '$next'"
	[ "$next" != "$c" ] || fail "the dead rank took over from itself"
	check_done "$c then $next"
	grep -q -E "^\[$next\] jobfarm: $jobs jobs done" "$out" ||
		fail "the final line is not rank $next's"
	echo "PASS: jobfarm ($1): coordinator $c killed, rank $next took over; $jobs jobs done, each once"
}

case "${2:-all}" in
plain) t_plain ;;
failover) t_failover "-n 3" ;;
procs) t_failover "-n 2 -p 2" ;;
all) t_plain && t_failover "-n 3" ;;
*) echo "usage: $0 BUILD_DIR [plain|failover|procs|all]"; exit 2 ;;
esac
