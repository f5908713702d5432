#!/usr/bin/env bash
# Who may attach to dsmd (daemon/core/access.c), on the host with a lone
# dsmd (no fabric):
#   - under umask 0002 the socket is 0600 and its directory 0700;
#   - a second dsmd on the same path fails with EADDRINUSE, and the first
#     still serves;
#   - a group-writable directory, or one of another user, is refused;
#   - with --allow-uid 65534 that uid is served and uid 65533 is refused,
#     counted (dsmctl status) and logged with its uid and pid;
#   - with --allow-group 4242 a member of that group is served.
# Needs root (setpriv to other users, chown): skips (77) otherwise.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR"; exit 2; }
B=$(cd "$1" && pwd) || { echo "FAIL: no build directory $1"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root, to connect as other users (setpriv)"
	exit 77
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "---- $f"; cat "$f"; }; done
	exit 1
}
ok() { echo "ok: $*"; }

# start NAME SOCKET [DSMD-ARGS...]: a lone dsmd; waits until it serves
# (root may always attach): the socket exists from its bind, before its
# mode and group are set and it listens.
start() {
	local name=$1 sock=$2
	shift 2
	"$B/dsmd" -r 0 -n 1 -s "$sock" "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 500); do
		[ -S "$sock" ] && "$B/dsmctl" -s "$sock" -t 5 status \
			>/dev/null 2>&1 && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || fail "$name: dsmd exited"
		sleep 0.02
	done
	fail "$name: not serving on $sock after 10 s"
}
mode() { stat -c %a "$1"; }
status_as() { # UID GROUPS SOCKET (GROUPS empty: none)
	local groups=(--clear-groups)
	[ -z "$2" ] || groups=(--groups "$2")
	setpriv --reuid "$1" --regid "$1" "${groups[@]}" \
		"$B/dsmctl" -s "$3" -t 5 status
}

# 1. Modes, whatever the umask.
sock=$tmp/a/dsmd.sock
(umask 0002; start a "$sock")
[ "$(mode "$sock")" = 600 ] || fail "socket mode $(mode "$sock"), want 600"
[ "$(mode "$tmp/a")" = 700 ] || fail "directory mode $(mode "$tmp/a"), want 700"
ok "umask 0002: socket 0600, directory 0700"

# 2. A second dsmd on the same path.
"$B/dsmd" -r 0 -n 1 -s "$sock" >"$tmp/a2.log" 2>&1 &
p=$!
for _ in $(seq 500); do kill -0 $p 2>/dev/null || break; sleep 0.02; done
if kill -0 $p 2>/dev/null; then kill $p; fail "a second dsmd on $sock keeps running"; fi
wait $p
rc=$?
[ $rc -ne 0 ] || fail "a second dsmd on $sock exited 0"
grep -q 'Address already in use' "$tmp/a2.log" ||
	fail "the second dsmd did not say EADDRINUSE"
"$B/dsmctl" -s "$sock" -t 5 status >"$tmp/status.out" 2>&1 ||
	fail "the first dsmd no longer answers after the second one tried"
ok "a second dsmd fails with EADDRINUSE; the first still serves"

# 3. Directories dsmd must not use.
mkdir -m 0770 "$tmp/gw"
"$B/dsmd" -r 0 -n 1 -s "$tmp/gw/dsmd.sock" >"$tmp/gw.log" 2>&1 &&
	fail "dsmd accepted a group-writable directory"
grep -q 'writable by its group' "$tmp/gw.log" || fail "no reason given for the group-writable directory"
[ ! -e "$tmp/gw/dsmd.sock" ] || fail "a socket was made in the group-writable directory"
mkdir -m 0700 "$tmp/other" && chown 65534 "$tmp/other"
"$B/dsmd" -r 0 -n 1 -s "$tmp/other/dsmd.sock" >"$tmp/other.log" 2>&1 &&
	fail "dsmd accepted a directory of another user"
grep -q 'belongs to uid 65534' "$tmp/other.log" || fail "no reason given for another user's directory"
ok "a group-writable directory and another user's are refused"

# 4. Other users: refused unless allowed.
chmod 0711 "$tmp"
sock=$tmp/u/dsmd.sock
start u "$sock" --allow-uid 65534
[ "$(mode "$sock")" = 666 ] && [ "$(mode "$tmp/u")" = 711 ] ||
	fail "--allow-uid: socket $(mode "$sock"), directory $(mode "$tmp/u")"
status_as 65534 "" "$sock" >"$tmp/u-ok.out" 2>&1 ||
	fail "uid 65534 (allowed) was not served: $(cat "$tmp/u-ok.out")"
grep -q '^node 0 of 1' "$tmp/u-ok.out" || fail "uid 65534 got no status"
status_as 65533 "" "$sock" >"$tmp/u-no.out" 2>&1 &&
	fail "uid 65533 (not allowed) was served"
grep -q 'refused a client on .*: uid 65533 (pid [0-9]*) is not allowed' "$tmp/u.log" ||
	fail "the refusal was not logged with uid and pid"
"$B/dsmctl" -s "$sock" -t 5 status >"$tmp/u-st.out" 2>&1 || fail "root was not served"
grep -Eq 'refused[ =:]+1\b' "$tmp/u-st.out" ||
	fail "the refusal was not counted in dsmctl status: $(cat "$tmp/u-st.out")"
ok "--allow-uid: 65534 served, 65533 refused, logged and counted"

sock=$tmp/g/dsmd.sock
start g "$sock" --allow-group 4242
[ "$(stat -c '%a %g' "$sock")" = "660 4242" ] ||
	fail "--allow-group: socket $(stat -c '%a %g' "$sock"), want 660 4242"
status_as 65533 4242 "$sock" >"$tmp/g-ok.out" 2>&1 ||
	fail "a member of group 4242 was not served: $(cat "$tmp/g-ok.out")"
status_as 65533 "" "$sock" >"$tmp/g-no.out" 2>&1 &&
	fail "a user outside group 4242 was served"
ok "--allow-group: a member served, others not"
echo "PASS: dsmd's socket is its owner's unless allowed"
