/* The lock manager's modes and names (daemon/lock/mode.c) on their own
 * (unit test "lock_mode"): linked with that one file, no daemon.  The
 * compatibility matrix against the standard VMS table written out below,
 * which conversions can never conflict, resource keys, the deadlock order
 * of owners, and lock identity.
 */
#define LOCK_MODE_ONLY
#include <dsm.h>

#include "harness.h"
#include "lock/lock.h"

/* The VMS lock manager's table: may a lock be granted in the column's mode
 * while another is held in the row's? */
static const bool vms[6][6] = {
	/*        NL CR CW PR PW EX */
	/* NL */ {1, 1, 1, 1, 1, 1},
	/* CR */ {1, 1, 1, 1, 1, 0},
	/* CW */ {1, 1, 1, 0, 0, 0},
	/* PR */ {1, 1, 0, 1, 0, 0},
	/* PW */ {1, 1, 0, 0, 0, 0},
	/* EX */ {1, 0, 0, 0, 0, 0},
};

static int test_matrix(void)
{
	for (unsigned a = 0; a < 6; a++) {
		for (unsigned b = 0; b < 6; b++) {
			CHECKF(lock_compatible(a, b) == vms[a][b],
			       "held %u asked %u", a, b);
			CHECK(lock_compatible(b, a) == lock_compatible(a, b));
		}
		/* No mode blocks nothing, and nothing blocks no mode. */
		CHECK(lock_compatible(a, WIRE_LK_NONE));
		CHECK(lock_compatible(WIRE_LK_NONE, a));
	}
	CHECK(lock_compatible(WIRE_LK_NONE, WIRE_LK_NONE));
	/* Out of range is compatible with nothing. */
	CHECK(!lock_compatible(6, DSM_LK_NL));
	CHECK(!lock_compatible(DSM_LK_NL, 6));
	return 0;
}

/* b lets through everything a does: in the table, b's row has a 1 wherever
 * a's has. */
static bool row_covers(unsigned b, unsigned a)
{
	for (unsigned m = 0; m < 6; m++)
		if (vms[a][m] && !vms[b][m])
			return false;
	return true;
}

static int test_weaker_or_equal(void)
{
	for (unsigned a = 0; a < 6; a++) {
		for (unsigned b = 0; b < 6; b++)
			CHECKF(lock_weaker_or_equal(b, a) == row_covers(b, a),
			       "from %u to %u", a, b);
		CHECK(lock_weaker_or_equal(a, a));
		CHECK(lock_weaker_or_equal(DSM_LK_NL, a));
	}
	/* The pairs that say what the order is not: a total order. */
	CHECK(!lock_weaker_or_equal(DSM_LK_PR, DSM_LK_CW));
	CHECK(!lock_weaker_or_equal(DSM_LK_CW, DSM_LK_PR));
	CHECK(lock_weaker_or_equal(DSM_LK_CR, DSM_LK_PW));
	CHECK(!lock_weaker_or_equal(DSM_LK_EX, DSM_LK_PW));
	CHECK(lock_weaker_or_equal(DSM_LK_PR, DSM_LK_PW));
	CHECK(lock_weaker_or_equal(DSM_LK_CW, DSM_LK_PW));
	return 0;
}

static int test_key(void)
{
	char name[16];
	uint64_t k = lock_key(0, "res", 3);

	CHECK(k == lock_key(0, "res", 3)); /* deterministic */
	CHECK(k != lock_key(1, "res", 3)); /* the parent is part of it */
	CHECK(k != lock_key(k, "res", 3));
	CHECK(k != lock_key(0, "rez", 3));
	CHECK(k != lock_key(0, "res", 2)); /* only len bytes count */
	CHECK(lock_key(0, "resX", 3) == k);
	for (unsigned p = 0; p < 64; p++) {
		for (unsigned i = 0; i < 256; i++) {
			int n = snprintf(name, sizeof(name), "n%u", i);

			CHECK(lock_key(p, name, (size_t)n) != 0);
			CHECK(lock_key((uint64_t)p << 40 | p, name,
				       (size_t)n) != 0);
		}
		CHECK(lock_key(p, "", 0) != 0);
	}
	CHECK(lock_key(UINT64_MAX, "", 0) != 0);
	return 0;
}

static int test_owner_rank(void)
{
	struct wire_lock_id a = {.handle = 9, .owner = 5, .node = 1};
	struct wire_lock_id b = {.handle = 1, .owner = 1, .node = 2};
	struct wire_lock_id c = {.handle = 3, .owner = 6, .node = 1};
	struct wire_lock_id e = {.handle = 4, .owner = 5, .node = 1,
				 .reserved = 7};

	/* The node first, then the connection; the handle is no part. */
	CHECK(lock_owner_rank(&a) < lock_owner_rank(&b));
	CHECK(lock_owner_rank(&a) < lock_owner_rank(&c));
	CHECK(lock_owner_rank(&c) < lock_owner_rank(&b));
	CHECK(lock_owner_rank(&a) == lock_owner_rank(&e));
	b.owner = UINT32_MAX;
	b.node = 0;
	CHECK(lock_owner_rank(&b) < lock_owner_rank(&a));
	return 0;
}

static int test_same_lock(void)
{
	struct wire_lock_id a = {.handle = 9, .owner = 5, .node = 1};
	struct wire_lock_id b = a;

	CHECK(lock_same_lock(&a, &b));
	b.reserved = 3; /* a search keeps its number there */
	CHECK(lock_same_lock(&a, &b));
	b = a;
	b.handle++;
	CHECK(!lock_same_lock(&a, &b));
	b = a;
	b.owner++;
	CHECK(!lock_same_lock(&a, &b));
	b = a;
	b.node++;
	CHECK(!lock_same_lock(&a, &b));
	return 0;
}

static const struct test_case tests[] = {
	{"matrix", test_matrix},
	{"weaker_or_equal", test_weaker_or_equal},
	{"key", test_key},
	{"owner_rank", test_owner_rank},
	{"same_lock", test_same_lock},
};

TEST_MAIN(tests, NULL)
