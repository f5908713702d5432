# Sourced by the test scripts that run dsmd over a fabric: returns when
# there is one to run on, verbs on an RDMA device or libfabric when
# DSM_TRANSPORT=ofi (CTest label "native"); otherwise exits 77 (skip, with
# the reason) or, when DSM_REQUIRE_RDMA=1 (scripts/test in the soft-RoCE
# guest, where nothing may skip), 1.
if [ "${DSM_TRANSPORT:-}" != ofi ] &&
	! ibv_devices 2>/dev/null | awk 'NR>2 {found=1} END {exit !found}'; then
	if [ "${DSM_REQUIRE_RDMA:-0}" = 1 ]; then
		echo "FAIL: no RDMA device, and DSM_REQUIRE_RDMA=1"
		exit 1
	fi
	echo "SKIP: no RDMA device here; run through scripts/softroce" \
		"(or scripts/test), or natively with DSM_TRANSPORT=ofi"
	exit 77
fi
