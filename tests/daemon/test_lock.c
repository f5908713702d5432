/* The lock manager over the in-memory transport (unit test "lock"): dsmd
 * cores with every module, joined by the mock fabric, processes stood in
 * for by socket pairs whose dsmd end is a lock connection.  Each process
 * has a struct client of its own, on no list and watched by nobody: the
 * test hands its IPC_LOCK requests, as libdsm sends them, to the handler
 * the module table gives that type, and its death to the lock module's
 * client_gone (the core's client_close would close and free the struct).
 * The test pumps the fabric until nothing moves and reads the events dsmd
 * sent the process.  The clock is the test's (timeouts and deadlock
 * searches run when it says).
 */
#include "lock_harness.h"

static int lsetup_policy(int n, const struct wire_policy *p)
{
	log_set_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	tc_policy = *p;
	if (setup(n, 0))
		return -1;
	pump();
	return 0;
}

static void lsetup(int n)
{
	static const struct wire_policy none;

	if (lsetup_policy(n, &none))
		abort();
}

/* The completion of request req of p: 1 if none came yet, else its status
 * (and the event in *out). */
static int result(struct proc *p, uint64_t req, struct wire_ipc_lock_event *out)
{
	pump();
	for (unsigned i = 0; i < nprocs; i++)
		drain(&P[i]);
	for (unsigned i = 0; i < ndones; i++) {
		if (dones[i].req == req) {
			if (out)
				*out = dones[i].ev;
			return dones[i].ev.status;
		}
	}
	(void)p;
	return 1;
}

/* Lock and expect status right away. */
static int lock_now(struct proc *p, uint64_t *lkid, int mode, uint32_t flags,
		    const char *name)
{
	return result(p, lock_req(p, lkid, mode, flags, name, 0, 0, false),
		      NULL);
}

static int unlock_now(struct proc *p, uint64_t lkid)
{
	return result(p, unlock_req(p, lkid, 0, NULL), NULL);
}

/* The node that masters name (a top-level resource) as node 0 knows it. */
static int master_of(const char *name)
{
	uint64_t key = lock_key(0, name, strlen(name));

	for (int i = 0; i < tc.n; i++) {
		struct home *h = home_lock_kind.get(&tc.d[i], key, false);

		if (home_is_master(&tc.d[i], key, h))
			return i;
	}
	return -1;
}

static uint64_t sum_stat(size_t off)
{
	uint64_t s = 0;

	for (int i = 0; i < tc.n; i++)
		s += *(const uint64_t *)((const char *)st(i) + off);
	return s;
}

/* ---------------------------------------------------------------------- */

static const bool matrix[6][6] = {
	/*        NL CR CW PR PW EX */
	/* NL */ {1, 1, 1, 1, 1, 1},
	/* CR */ {1, 1, 1, 1, 1, 0},
	/* CW */ {1, 1, 1, 0, 0, 0},
	/* PR */ {1, 1, 0, 1, 0, 0},
	/* PW */ {1, 1, 0, 0, 0, 0},
	/* EX */ {1, 0, 0, 0, 0, 0},
};

/* Every pair of modes, held on one node and asked with NOQUEUE from
 * another, against the standard matrix. */
static int test_matrix(void)
{
	struct proc *a, *b;
	uint64_t la, lb;
	char name[32];

	lsetup(2);
	a = proc_new(0);
	b = proc_new(1);
	for (int x = 0; x < 6; x++) {
		for (int y = 0; y < 6; y++) {
			int ret;

			snprintf(name, sizeof(name), "m%d%d", x, y);
			CHECK(lock_now(a, &la, x, 0, name) == 0);
			ret = lock_now(b, &lb, y, DSM_LKF_NOQUEUE, name);
			CHECKF(ret == (matrix[x][y] ? 0 : -EAGAIN),
			       "held %d asked %d: %d", x, y, ret);
			CHECK(lock_compatible((unsigned)x, (unsigned)y) ==
			      matrix[x][y]);
			CHECK(unlock_now(a, la) == 0);
			if (!ret)
				CHECK(unlock_now(b, lb) == 0);
		}
	}
	return 0;
}

/* Waiters are granted in the order they came, one EX at a time. */
static int test_queue_order(void)
{
	struct proc *p[4];
	uint64_t lk[4], req[4];
	const char *r;

	lsetup(3);
	r = name_on(2, "q");
	for (int i = 0; i < 4; i++)
		p[i] = proc_new(i % 3);
	CHECK(lock_now(p[0], &lk[0], DSM_LK_EX, 0, r) == 0);
	for (int i = 1; i < 4; i++) {
		req[i] = lock_req(p[i], &lk[i], DSM_LK_EX, 0, r, 0, 0, false);
		CHECK(result(p[i], req[i], NULL) == 1);
	}
	for (int i = 1; i < 4; i++) {
		CHECK(unlock_now(p[i - 1], lk[i - 1]) == 0);
		CHECK(result(p[i], req[i], NULL) == 0);
		for (int j = i + 1; j < 4; j++)
			CHECK(result(p[j], req[j], NULL) == 1);
	}
	return 0;
}

/* A conversion waits only for the granted modes; a new request behind it,
 * even a compatible one, waits for the conversion. */
static int test_conversion_first(void)
{
	struct proc *a, *b, *c;
	uint64_t la, lb, lc, conv, late;
	const char *r;

	lsetup(3);
	r = name_on(0, "c");
	a = proc_new(0);
	b = proc_new(1);
	c = proc_new(2);
	CHECK(lock_now(a, &la, DSM_LK_PR, 0, r) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_PR, 0, r) == 0);
	conv = lock_req(b, &lb, DSM_LK_EX, DSM_LKF_CONVERT, NULL, 0, 0, false);
	CHECK(result(b, conv, NULL) == 1);
	late = lock_req(c, &lc, DSM_LK_PR, 0, r, 0, 0, false);
	CHECK(result(c, late, NULL) == 1); /* PR fits, but a conversion waits */
	CHECK(unlock_now(a, la) == 0);
	CHECK(result(b, conv, NULL) == 0);
	CHECK(result(c, late, NULL) == 1);
	/* Down to PR: the late reader fits beside it now. */
	conv = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_CONVERT, NULL, 0, 0, false);
	CHECK(result(b, conv, NULL) == 0);
	CHECK(result(c, late, NULL) == 0);
	/* Converting up with NOQUEUE while c reads: refused, PR kept. */
	conv = lock_req(b, &lb, DSM_LK_EX, DSM_LKF_CONVERT | DSM_LKF_NOQUEUE,
			NULL, 0, 0, false);
	CHECK(result(b, conv, NULL) == -EAGAIN);
	CHECK(lock_now(a, &la, DSM_LK_PW, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	CHECK(lock_now(a, &la, DSM_LK_CR, DSM_LKF_NOQUEUE, r) == 0);
	return 0;
}

/* Holders in a mode that blocks a request are told the mode wanted;
 * holders that do not block it are not. */
static int test_blocking_notes(void)
{
	struct proc *a, *b, *c;
	uint64_t la, lb, lc, req;
	const char *r;

	lsetup(3);
	r = name_on(1, "b");
	a = proc_new(0);
	b = proc_new(1);
	c = proc_new(2);
	CHECK(result(a, lock_req(a, &la, DSM_LK_PR, 0, r, 0, 0, true), NULL) == 0);
	CHECK(result(b, lock_req(b, &lb, DSM_LK_NL, 0, r, 0, 0, true), NULL) == 0);
	req = lock_req(c, &lc, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(c, req, NULL) == 1);
	CHECK(a->basts == 1 && a->bast_mode == DSM_LK_EX && b->basts == 0);
	CHECK(st(0)->lock_basts == 1);
	/* Nothing new: nobody is told again. */
	pump();
	drain(a);
	CHECK(a->basts == 1);
	CHECK(unlock_now(a, la) == 0);
	CHECK(result(c, req, NULL) == 0);
	return 0;
}

/* The value block: written by an EX release and a PW down-conversion,
 * read by PR grants on other nodes; invalid after its writer's process
 * died holding it. */
static int test_value_block(void)
{
	struct proc *a, *b, *c;
	struct wire_ipc_lock_event ev;
	uint64_t la, lb, lc, req;
	const char *r;

	lsetup(3);
	r = name_on(2, "v");
	a = proc_new(0);
	b = proc_new(1);
	c = proc_new(2);
	/* A new resource's block: valid zeros. */
	req = lock_req(a, &la, DSM_LK_EX, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(a, req, &ev) == 0);
	CHECK(ev.has_lvb && !ev.sbflags && !ev.lvb[0]);
	CHECK(result(a, unlock_req(a, la, DSM_LKF_VALBLK, "hello-1"), NULL) == 0);
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, &ev) == 0);
	CHECK(ev.has_lvb && !strcmp((char *)ev.lvb, "hello-1") && !ev.sbflags);
	CHECK(unlock_now(b, lb) == 0);
	/* PW, down to NL with the block: written. */
	CHECK(lock_now(c, &lc, DSM_LK_PW, DSM_LKF_VALBLK, r) == 0);
	{
		struct wire_ipc_lock q = {.op = WIRE_IPC_LK_LOCK,
					  .flags = DSM_LKF_CONVERT |
						   DSM_LKF_VALBLK,
					  .mode = DSM_LK_NL, .lkid = lc};

		memcpy(q.lvb, "hello-2", 8);
		CHECK(result(c, ipc(c, &q), NULL) == 0);
	}
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, &ev) == 0 && !strcmp((char *)ev.lvb, "hello-2"));
	CHECK(unlock_now(b, lb) == 0);
	/* A writer dies holding EX: the block is not valid any more. */
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_VALBLK, r) == 0);
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, NULL) == 1);
	lock_module.client_gone(&tc.d[0], &a->c);
	CHECK(!a->c.lk);
	CHECK(result(b, req, &ev) == 0);
	CHECK(ev.has_lvb && (ev.sbflags & DSM_SBF_VALNOTVALID));
	CHECK(unlock_now(b, lb) == 0);
	/* The next writer makes it valid again. */
	CHECK(lock_now(c, &lc, DSM_LK_EX, DSM_LKF_VALBLK | DSM_LKF_CONVERT,
		       NULL) == 0);
	CHECK(result(c, unlock_req(c, lc, DSM_LKF_VALBLK, "hello-3"), NULL) == 0);
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, &ev) == 0 && !ev.sbflags &&
	      !strcmp((char *)ev.lvb, "hello-3"));
	/* A reader's release with the block writes nothing. */
	CHECK(result(b, unlock_req(b, lb, DSM_LKF_VALBLK, "junk"), NULL) == 0);
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, &ev) == 0 && !strcmp((char *)ev.lvb, "hello-3"));
	return 0;
}

/* The node of a writer holding EX dies; its master lives: the block is
 * not valid any more (it may have been half written). */
static int test_dead_writer_block(void)
{
	struct proc *a, *b, *c;
	struct wire_ipc_lock_event ev;
	uint64_t la, lb, lc, req;
	const char *r;

	lsetup(3);
	r = name_on(0, "dw");
	a = proc_new(0);
	b = proc_new(1);
	c = proc_new(2);
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_VALBLK, r) == 0);
	CHECK(result(a, unlock_req(a, la, DSM_LKF_VALBLK, "kept"), NULL) == 0);
	CHECK(lock_now(c, &lc, DSM_LK_EX, DSM_LKF_VALBLK, r) == 0);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	CHECK(pump_within(1000));
	req = lock_req(b, &lb, DSM_LK_PR, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, &ev) == 0);
	CHECK(ev.has_lvb && (ev.sbflags & DSM_SBF_VALNOTVALID));
	return 0;
}

/* Two holders of PR both convert up: each waits for the other's PR (a
 * conversion deadlock, for the search to break), neither is granted
 * beside the other's granted mode because that one is converting. */
static int test_conversions_wait_for_each_other(void)
{
	struct proc *a, *b;
	uint64_t la, lb, ca, cb;
	const char *r;

	lsetup(2);
	r = name_on(0, "cc");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_PR, 0, r) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_PR, 0, r) == 0);
	ca = lock_req(a, &la, DSM_LK_EX, DSM_LKF_CONVERT, NULL, 0, 0, false);
	CHECK(result(a, ca, NULL) == 1);
	cb = lock_req(b, &lb, DSM_LK_PW, DSM_LKF_CONVERT, NULL, 0, 0, false);
	CHECK(result(b, cb, NULL) == 1);
	CHECK(result(a, ca, NULL) == 1);
	return 0;
}

/* A conversion that comes again after a later one (sent again after a
 * death or a refusal, the copy late) is not applied again: the master
 * keeps the number of the last it applied.  a converts EX -> PR -> EX;
 * the PR conversion comes once more, and a keeps EX. */
static int test_conversion_not_twice(void)
{
	struct proc *a, *b;
	struct wire_lock_op o;
	struct llock *l;
	uint64_t la, lb;
	const char *r;

	lsetup(2);
	r = name_on(1, "ct");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_EX, 0, r) == 0);
	CHECK(lock_now(a, &la, DSM_LK_PR, DSM_LKF_CONVERT, NULL) == 0);
	l = list_first(&a->c.lk->locks, struct llock, olink);
	CHECK(l && l->grmode == DSM_LK_PR);
	lock_fill_op(&tc.d[0], l, WIRE_LOCK_CONVERT, &o);
	o.grmode = DSM_LK_EX;
	o.rqmode = DSM_LK_PR;
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_CONVERT, NULL) == 0);
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	CHECK(pump_within(1000));
	CHECK(lock_now(b, &lb, DSM_LK_PR, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* A timeout cancels a wait; a cancel does too; neither ends a lock that
 * was granted. */
static int test_timeout_and_cancel(void)
{
	struct proc *a, *b;
	uint64_t la, lb, lb2, req, req2;
	const char *r;

	lsetup(2);
	r = name_on(1, "t");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_EX, 0, r) == 0);
	req = lock_req(b, &lb, DSM_LK_PR, 0, r, 0, 300, false);
	CHECK(result(b, req, NULL) == 1);
	advance(200);
	CHECK(result(b, req, NULL) == 1);
	advance(101);
	CHECK(result(b, req, NULL) == -ETIMEDOUT);
	/* Cancel a waiting request. */
	req = lock_req(b, &lb, DSM_LK_PR, 0, r, 0, 0, false);
	CHECK(result(b, req, NULL) == 1);
	CHECK(result(b, unlock_req(b, lb, DSM_LKF_CANCEL, NULL), NULL) == 0);
	CHECK(result(b, req, NULL) == -ECANCELED);
	/* Nothing waits any more: cancelling again is refused. */
	CHECK(result(b, unlock_req(b, lb, DSM_LKF_CANCEL, NULL), NULL) ==
	      -ENOLCK);
	/* A granted lock with a timeout is not cancelled later. */
	CHECK(unlock_now(a, la) == 0);
	req2 = lock_req(b, &lb2, DSM_LK_EX, 0, r, 0, 50, false);
	CHECK(result(b, req2, NULL) == 0);
	advance(100);
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* Bad requests are refused at once with the documented errors. */
static int test_bad_requests(void)
{
	struct proc *a;
	uint64_t lk, parent, child;
	char long_name[WIRE_LOCK_NAME_MAX + 2];

	lsetup(2);
	a = proc_new(0);
	CHECK(lock_now(a, &lk, 6, 0, "x") == -EINVAL);
	CHECK(lock_now(a, &lk, DSM_LK_EX, 0x100, "x") == -EINVAL);
	CHECK(lock_now(a, &lk, DSM_LK_EX, 0, "") == -EINVAL);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	{
		struct wire_ipc_lock q = {.op = WIRE_IPC_LK_LOCK,
					  .mode = DSM_LK_EX, .lkid = 99,
					  .name_len = WIRE_LOCK_NAME_MAX + 1};

		CHECK(result(a, ipc(a, &q), NULL) == -ENAMETOOLONG);
	}
	lk = 12345;
	CHECK(result(a, lock_req(a, &lk, DSM_LK_EX, DSM_LKF_CONVERT, NULL, 0,
				 0, false), NULL) == -ENOLCK);
	CHECK(unlock_now(a, 777) == -ENOLCK);
	CHECK(result(a, lock_req(a, &child, DSM_LK_EX, 0, "c", 4242, 0, false),
		      NULL) == -ENOLCK);
	/* Hierarchy: a parent with a child cannot go; names are scoped. */
	CHECK(lock_now(a, &parent, DSM_LK_NL, 0, "p") == 0);
	CHECK(result(a, lock_req(a, &child, DSM_LK_EX, 0, "c", parent, 0,
				 false), NULL) == 0);
	CHECK(unlock_now(a, parent) == -ENOTEMPTY);
	CHECK(lock_now(a, &lk, DSM_LK_EX, DSM_LKF_NOQUEUE, "c") == 0);
	CHECK(unlock_now(a, child) == 0);
	CHECK(unlock_now(a, parent) == 0);
	/* Converting a lock whose request is in progress. */
	{
		struct proc *b = proc_new(1);
		uint64_t lb, req;

		req = lock_req(b, &lb, DSM_LK_EX, 0, "c", 0, 0, false);
		CHECK(result(b, req, NULL) == 1);
		CHECK(result(b, lock_req(b, &lb, DSM_LK_NL, DSM_LKF_CONVERT,
					 NULL, 0, 0, false), NULL) == -EBUSY);
		CHECK(unlock_now(b, lb) == -EBUSY);
	}
	return 0;
}

/* Two owners each hold what the other wants: after the deadlock wait,
 * exactly one request fails with EDEADLK and the other is granted once
 * the victim lets go. */
static int run_cycle(int n)
{
	struct proc *p[4];
	const char *r[4];
	uint64_t held[4], want[4], req[4];
	int victims = 0, granted = 0, victim = -1;

	lsetup(n);
	for (int i = 0; i < n; i++) {
		p[i] = proc_new(i);
		r[i] = name_on(i, i == 0 ? "da" : i == 1 ? "db" : "dc");
		CHECK(lock_now(p[i], &held[i], DSM_LK_EX, 0, r[i]) == 0);
	}
	for (int i = 0; i < n; i++)
		req[i] = lock_req(p[i], &want[i], DSM_LK_EX, 0,
				  r[(i + 1) % n], 0, 0, false);
	for (int i = 0; i < n; i++)
		CHECK(result(p[i], req[i], NULL) == 1);
	/* Searches start once a request waited the deadlock time. */
	advance(LOCK_DEADLOCK_MS + 1);
	pump();
	for (int i = 0; i < n; i++) {
		int ret = result(p[i], req[i], NULL);

		if (ret == -EDEADLK) {
			victims++;
			victim = i;
		}
	}
	CHECKF(victims == 1, "%d victims", victims);
	CHECK(sum_stat(offsetof(struct dsm_stats, lock_deadlocks)) == 1);
	/* A second round of searches finds nothing more. */
	advance(LOCK_DEADLOCK_MS + 1);
	pump();
	CHECK(sum_stat(offsetof(struct dsm_stats, lock_deadlocks)) == 1);
	CHECK(unlock_now(p[victim], held[victim]) == 0);
	for (int i = 0; i < n; i++)
		if (i != victim && result(p[i], req[i], NULL) == 0)
			granted++;
	/* The victim's release lets its predecessor on; the chain then
	 * drains as each releases. */
	CHECK(granted == 1);
	return 0;
}

static int test_deadlock_two(void)
{
	return run_cycle(2);
}

static int test_deadlock_three(void)
{
	return run_cycle(3);
}

/* Waiting is not a deadlock: a chain of waiters with no cycle has no
 * victim, however often it is searched. */
static int test_no_false_deadlock(void)
{
	struct proc *p[3];
	uint64_t lk[3], req[3];
	const char *a, *b;

	lsetup(3);
	a = name_on(0, "na");
	b = name_on(1, "nb");
	for (int i = 0; i < 3; i++)
		p[i] = proc_new(i);
	CHECK(lock_now(p[0], &lk[0], DSM_LK_EX, 0, a) == 0);
	CHECK(lock_now(p[1], &lk[1], DSM_LK_EX, 0, b) == 0);
	req[1] = lock_req(p[1], &lk[2], DSM_LK_EX, 0, a, 0, 0, false);
	req[2] = lock_req(p[2], &lk[2], DSM_LK_PR, 0, b, 0, 0, false);
	for (int round = 0; round < 3; round++) {
		advance(LOCK_DEADLOCK_MS + 1);
		pump();
	}
	CHECK(result(p[1], req[1], NULL) == 1 && result(p[2], req[2], NULL) == 1);
	CHECK(sum_stat(offsetof(struct dsm_stats, lock_deadlocks)) == 0);
	return 0;
}

/* A master dies: the survivors' locks are rebuilt at the recovery master;
 * what was held is still held, what waited still waits, and the value
 * block is kept from a reader (valid) or lost with a dead writer. */
static int test_master_dies(void)
{
	struct proc *a, *b, *c;
	struct wire_ipc_lock_event ev;
	uint64_t la, lb, lc, lw, req, rq2;
	const char *r, *w;

	lsetup(3);
	r = name_on(2, "rb");
	w = name_on(2, "wr");
	a = proc_new(0);
	b = proc_new(1);
	c = proc_new(2);
	/* r: a writes the block, then reads; b waits for EX. */
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_VALBLK, r) == 0);
	CHECK(result(a, unlock_req(a, la, DSM_LKF_VALBLK, "keep"), NULL) == 0);
	CHECK(lock_now(a, &la, DSM_LK_PR, DSM_LKF_VALBLK, r) == 0);
	req = lock_req(b, &lb, DSM_LK_EX, DSM_LKF_VALBLK, r, 0, 0, false);
	CHECK(result(b, req, NULL) == 1);
	/* w: held EX by the node that dies; a waits for it. */
	CHECK(lock_now(c, &lc, DSM_LK_EX, DSM_LKF_VALBLK, w) == 0);
	rq2 = lock_req(a, &lw, DSM_LK_PR, DSM_LKF_VALBLK, w, 0, 0, false);
	CHECK(result(a, rq2, NULL) == 1);
	CHECK(master_of(r) == 2 && master_of(w) == 2);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	/* Rebuilt at node 0 (the first live node after 2). */
	CHECK(master_of(r) == 0 && master_of(w) == 0);
	CHECK(st(0)->lock_rebuilt == 2);
	/* a still reads r, b still waits. */
	CHECK(result(b, req, NULL) == 1);
	CHECK(lock_now(c = proc_new(1), &lc, DSM_LK_EX, DSM_LKF_NOQUEUE, r) ==
	      -EAGAIN);
	CHECK(unlock_now(a, la) == 0);
	CHECK(result(b, req, &ev) == 0);
	CHECK(ev.has_lvb && !ev.sbflags && !strcmp((char *)ev.lvb, "keep"));
	/* w: its holder died in EX: granted to a, the block invalid. */
	CHECK(result(a, rq2, &ev) == 0);
	CHECK(ev.has_lvb && (ev.sbflags & DSM_SBF_VALNOTVALID));
	return 0;
}

/* Resources move to the node that uses them most. */
static const struct wire_policy moving = {
	.migrate = 1, .share_pct = 60, .min_requests = 4, .window_ms = 1000,
	.load_pct = 200};

/* Process p (of node m) takes and releases r in `mode` until r moves to
 * m. */
static int move_to(struct proc *p, const char *r, int mode, int m)
{
	uint64_t lk;

	fake_now += 2000;
	for (int i = 0; i < 8 && master_of(r) != m; i++) {
		CHECK(lock_now(p, &lk, mode, 0, r) == 0);
		CHECK(unlock_now(p, lk) == 0);
	}
	CHECK(master_of(r) == m);
	return 0;
}

/* A resource used from one node moves there; its next requests are
 * local, and a lock held across the move is still held. */
static int test_moves_to_user(void)
{
	struct proc *a, *b;
	uint64_t la, lb, before;
	const char *r;

	CHECK(lsetup_policy(2, &moving) == 0);
	r = name_on(0, "mv");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_NL, 0, r) == 0);
	CHECK(move_to(b, r, DSM_LK_EX, 1) == 0);
	before = st(1)->lock_remote;
	CHECK(lock_now(b, &lb, DSM_LK_EX, 0, r) == 0);
	CHECK(st(1)->lock_remote == before);
	/* a's NL lock came along: converting it to EX waits for b. */
	{
		uint64_t req = lock_req(a, &la, DSM_LK_EX, DSM_LKF_CONVERT,
					NULL, 0, 0, false);

		CHECK(result(a, req, NULL) == 1);
		CHECK(unlock_now(b, lb) == 0);
		CHECK(result(a, req, NULL) == 0);
	}
	return 0;
}

/* Malformed lock messages are dropped and counted; locking goes on. */
static int test_bad_messages(void)
{
	struct wire_lock_op o = {0};
	struct wire_lock_reply rp = {.kind = 99};
	struct wire_lock_probe pb = {.origin = {.node = 9}};
	struct wire_lock_recovered rc = {.dead = 1};
	struct proc *a;
	uint64_t bad, lk;

	lsetup(2);
	bad = st(1)->bad_msgs;
	o = (struct wire_lock_op){.op = WIRE_LOCK_NEW, .rqmode = DSM_LK_EX,
				  .name_len = 1, .name = "x",
				  .key = lock_key(0, "y", 1)};  /* key lies */
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	o.key = lock_key(0, "x", 1);
	o.rqmode = 7;                                          /* bad mode */
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	o.rqmode = DSM_LK_EX;
	o.op = 42;                                             /* bad op */
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	o.op = WIRE_LOCK_NEW;
	o.name_len = 200;                                      /* too long */
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	o.name_len = 1;
	o.id.node = 40;                                        /* no node */
	xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	rp.id.node = 1;
	xport_send(tc.d[0].x, 1, WIRE_LOCK_REPLY, 0, &rp, sizeof(rp));
	xport_send(tc.d[0].x, 1, WIRE_LOCK_PROBE, 0, &pb, sizeof(pb));
	xport_send(tc.d[0].x, 1, WIRE_LOCK_RECOVERED, 0, &rc, sizeof(rc));
	pump();
	CHECK(st(1)->bad_msgs - bad == 8);
	a = proc_new(1);
	CHECK(lock_now(a, &lk, DSM_LK_EX, 0, "x") == 0);
	return 0;
}

/* Node `at` alone sees `node` die: the link between them is cut both
 * ways and its transport reports the death (the others do not know). */
static void dies_at(int at, int node)
{
	struct xport_event ev = {.type = XPORT_EV_PEER_DOWN, .peer = node,
				 .reason = "cut by the test"};

	xport_mock_cut(tc.f, at, node, true);
	xport_mock_cut(tc.f, node, at, true);
	cluster_on_event(&tc.d[at], &ev);
}

/* A death one node saw is every node's: node 1 alone sees node 3 die, its
 * RECOVERED tells the others, and they declare 3 dead too, so recovery
 * ends and a resource node 3 mastered is granted at once.  (Before, nodes
 * 0 and 2 waited to see 3 die themselves, and a request naming the death
 * waited with them.) */
static int test_death_spreads(void)
{
	struct proc *p;
	uint64_t lk;
	const char *r;

	lsetup(4);
	r = name_on(3, "early");
	p = proc_new(1);
	dies_at(1, 3);
	pump();
	for (int i = 0; i < 3; i++)
		CHECKF(tc.d[i].members[3].state == WIRE_MEMBER_DEAD,
		       "node %d sees node 3 in state %u", i,
		       tc.d[i].members[3].state);
	CHECK(!lock_recovering(&tc.d[0]) && !lock_recovering(&tc.d[2]));
	CHECK(lock_now(p, &lk, DSM_LK_EX, 0, r) == 0);
	return 0;
}

/* A recovery waits for a live node's RECOVERED --dead-after-ms at most:
 * node 1 is alive but what it sends never reaches node 0, so node 0's
 * recovery from node 2's death would wait for ever, granting nothing.
 * Past the deadline node 0 declares node 1 dead and grants again. */
static int test_recovery_deadline(void)
{
	struct proc *p;
	uint64_t lk, req;

	lsetup(3);
	p = proc_new(0);
	xport_mock_cut(tc.f, 1, 0, true);
	tc.d[0].cfg.dead_after_ms = 5000;
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	CHECK(lock_recovering(&tc.d[0]));
	req = lock_req(p, &lk, DSM_LK_EX, 0, name_on(0, "rd"), 0, 0, false);
	CHECK(result(p, req, NULL) == 1);
	fake_now += 4999;
	lock_module.tick(&tc.d[0]);
	pump();
	CHECK(lock_recovering(&tc.d[0]) && st(0)->nodes_dead == 1);
	fake_now += 1;
	lock_module.tick(&tc.d[0]);
	pump();
	CHECK(!lock_recovering(&tc.d[0]) && st(0)->nodes_dead == 2);
	CHECK(tc.d[0].members[1].state == WIRE_MEMBER_DEAD);
	CHECK(result(p, req, NULL) == 0);
	return 0;
}

/* Finding 4 of the review: with only the link between nodes 0 and 2 cut
 * (each sees the other die; node 1 sees both alive), a request of node 1
 * with a 1 s timeout on a resource of either node is answered within its
 * timeout, not left waiting for a recovery that node 1 never joins. */
static int test_partition_timeout(void)
{
	struct proc *p;
	uint64_t lk[3], req[3];
	int m, ret;

	lsetup(3);
	p = proc_new(1);
	dies_at(0, 2);
	dies_at(2, 0);
	pump();
	for (m = 0; m < 3; m++)
		req[m] = lock_req(p, &lk[m], DSM_LK_EX, 0,
				  name_on(m, "cut"), 0, 1000, false);
	pump();
	advance(1001);
	/* Node 1 joined one side: it sees exactly one of them dead. */
	CHECK((tc.d[1].members[0].state == WIRE_MEMBER_DEAD) !=
	      (tc.d[1].members[2].state == WIRE_MEMBER_DEAD));
	for (m = 0; m < 3; m++) {
		ret = result(p, req[m], NULL);
		CHECKF(ret == 0 || ret == -ETIMEDOUT || ret == -EHOSTDOWN,
		       "master %d: %d (1: no answer)", m, ret);
	}
	return 0;
}

/* A process holds at most --max-locks locks, a resource at most
 * --max-lock-queue: past either a request fails with EDQUOT, counted,
 * and what was held is untouched.  (Before, neither was bounded.) */
static int test_lock_caps(void)
{
	struct proc *p, *q[3];
	uint64_t lk[4];
	const char *r;
	int m = 2, ret;

	lsetup(3);
	p = proc_new(1);
	tc.d[1].cfg.max_locks = 2;
	CHECK(lock_now(p, &lk[0], DSM_LK_EX, 0, "a") == 0);
	CHECK(lock_now(p, &lk[1], DSM_LK_EX, 0, "b") == 0);
	ret = lock_now(p, &lk[2], DSM_LK_EX, 0, "c");
	CHECKF(ret == -EDQUOT, "third lock: %d", ret);
	CHECK(tc.d[1].refused.locks == 1);
	CHECK(unlock_now(p, lk[0]) == 0);
	CHECK(lock_now(p, &lk[2], DSM_LK_EX, 0, "c") == 0);

	r = name_on(m, "busy");
	tc.d[m].cfg.max_lock_queue = 2;
	for (int i = 0; i < 3; i++)
		q[i] = proc_new(0);
	CHECK(lock_now(q[0], &lk[0], DSM_LK_PR, 0, r) == 0);
	CHECK(lock_now(q[1], &lk[1], DSM_LK_PR, 0, r) == 0);
	ret = lock_now(q[2], &lk[2], DSM_LK_PR, 0, r);
	CHECKF(ret == -EDQUOT, "third lock on the resource: %d", ret);
	CHECK(tc.d[m].refused.locks == 1);
	CHECK(unlock_now(q[1], lk[1]) == 0);
	CHECK(lock_now(q[2], &lk[2], DSM_LK_PR, 0, r) == 0);
	return 0;
}

/* A process that does not read while it asks: 2,000 requests on a
 * nonblocking connection (dsmd's end, as accept gives it), none read until
 * the last is made.  The socket holds a few hundred events; the rest wait
 * in the client's output queue, and every one arrives, in order, as the
 * process reads (dsmd flushes on EPOLLOUT; here the test does).  Before
 * the queue, 278 arrived and the rest were lost. */
static int test_events_not_lost(void)
{
	enum { N = 2000 };
	char buf[256], name[16];
	struct wire_ipc_lock_event ev;
	struct wire_msg m;
	uint64_t lk, first = 0, want;
	unsigned got = 0;
	struct proc *p;
	bool progress;

	lsetup(1);
	p = proc_new(0);
	CHECK(fcntl(p->fd[0], F_SETFL, O_NONBLOCK) == 0);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "r%u", i);
		want = lock_req(p, &lk, DSM_LK_PR, 0, name, 0, 0, false);
		if (!first)
			first = want;
		pump();
	}
	CHECK(p->c.out_bytes > 0); /* the socket did fill */
	do {
		progress = false;
		while (ipc_recv(p->fd[1], buf, sizeof(buf), 0, &m, NULL) == 0) {
			memcpy(&ev, m.body, sizeof(ev));
			CHECK(ev.kind == WIRE_IPC_LKE_COMPLETE && ev.status == 0);
			CHECK(m.hdr->req_id == first + got); /* in order */
			got++;
			progress = true;
		}
		client_flush(&p->c);
	} while (progress);
	CHECK(got == N);
	CHECK(p->c.out_bytes == 0 && list_empty(&p->c.out));
	return 0;
}

/* A process that never reads is cut off once its waiting replies pass the
 * bound (here 16 KiB): its end reads what was sent, then EOF (libdsm's
 * calls then fail with -EIO), and dsmd holds nothing more for it. */
static int test_unread_client_cut_off(void)
{
	char buf[256], name[16];
	struct wire_msg m;
	unsigned got = 0;
	struct proc *p;
	uint64_t lk;
	int ret;

	lsetup(1);
	p = proc_new(0);
	CHECK(fcntl(p->fd[0], F_SETFL, O_NONBLOCK) == 0);
	p->c.out_max = 16 << 10;
	for (unsigned i = 0; i < 2000 && !p->c.out_broken; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		lock_req(p, &lk, DSM_LK_PR, 0, name, 0, 0, false);
		pump();
	}
	CHECK(p->c.out_broken);
	CHECK(p->c.out_bytes == 0 && list_empty(&p->c.out));
	while ((ret = ipc_recv(p->fd[1], buf, sizeof(buf), 0, &m, NULL)) == 0)
		got++;
	CHECK(got > 0);
	CHECK(ret == -ECONNRESET); /* EOF after what was sent */
	return 0;
}

/* A resource moves with its granted locks, and their owners learn of it
 * only from the next answer.  When the node it moved to dies, a holder
 * that still believes in the old master must rebuild its lock all the
 * same: node 1 holds PR on a resource that moved from node 0 to node 2,
 * node 2 dies, and node 0's EX must not be granted beside that PR.
 * (Before, node 1 rebuilt only locks whose master it knew dead; node 0
 * adopted the resource empty and granted EX.) */
static int test_moved_master_dies(void)
{
	struct proc *a, *b, *c;
	uint64_t la, lb;
	const char *r;

	CHECK(lsetup_policy(3, &moving) == 0);
	r = name_on(0, "mm");
	a = proc_new(1);
	b = proc_new(0);
	c = proc_new(2);
	CHECK(lock_now(a, &la, DSM_LK_PR, 0, r) == 0);
	CHECK(move_to(c, r, DSM_LK_PR, 2) == 0);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	CHECK(unlock_now(a, la) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == 0);
	return 0;
}

/* A request lost with a dead node is made again at the master that had
 * the resource all along.  A resource of node 2 moved to node 1; node 0,
 * which does not know, sends its request to node 2 as node 2 dies (the
 * send fails).  Node 0's REBUILD of the waiting lock reaches node 1,
 * which has no such lock: it is queued there as the request, and granted
 * once node 1's process lets go.  (Before, node 1 dropped the REBUILD as
 * a lock it had all along, and the request waited for ever.) */
static int test_request_lost_moved(void)
{
	struct proc *a, *b;
	uint64_t la, lb, req;
	const char *r;

	CHECK(lsetup_policy(3, &moving) == 0);
	r = name_on(2, "rl");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(move_to(b, r, DSM_LK_EX, 1) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_EX, 0, r) == 0);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(a, req, NULL) == 1);
	CHECK(unlock_now(b, lb) == 0);
	CHECK(result(a, req, NULL) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* A grant of a lock its owner no longer has is given back.  A request
 * sent again after a death may reach a master that already granted and
 * released it (recover.c): node 0's lock on a resource of node 1 comes and
 * goes, then node 2 dies and a REBUILD of that lock as a waiting request
 * reaches node 1, which grants it again.  Node 0 has no such lock: it
 * releases it by key, and node 1's process gets EX at once. */
static int test_ghost_given_back(void)
{
	struct wire_lock_op o;
	struct proc *a, *b;
	uint64_t la, lb;
	const char *r;
	struct llock *l;

	lsetup(3);
	r = name_on(1, "gh");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_EX, 0, r) == 0);
	l = lock_by_lkid(a->c.lk, la);
	CHECK(l != NULL);
	lock_fill_op(&tc.d[0], l, WIRE_LOCK_REBUILD, &o);
	CHECK(unlock_now(a, la) == 0);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	o.grmode = LK_NONE; /* as it was while it waited */
	o.rqmode = DSM_LK_EX;
	o.reserved = 3; /* node 2, dead */
	{
		uint64_t bad = st(1)->bad_msgs;

		xport_send(tc.d[0].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
		pump();
		CHECK(st(1)->bad_msgs == bad);
	}
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == 0);
	return 0;
}

/* A process that goes while its request waits: the request is cancelled,
 * and nothing is left at the master for it.  Node 1's process asks EX on
 * a resource node 0 holds in EX, then goes; once node 0 releases, node
 * 0's next EX is granted, and the master holds no lock for node 1.  (The
 * release sent at once, as before, could overtake the request when the
 * master moved between the two, and the request was then granted to
 * nobody: fuzz/regress/proto/lock-granted-not-held.min.) */
static int test_gone_while_waiting(void)
{
	struct proc *a, *b;
	uint64_t la, lb, req;
	const char *r;

	lsetup(2);
	r = name_on(0, "gw");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_EX, 0, r) == 0);
	req = lock_req(b, &lb, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(b, req, NULL) == 1);
	lock_client_gone(&tc.d[1], &b->c);
	pump();
	CHECK(unlock_now(a, la) == 0);
	CHECK(lock_now(a, &la, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == 0);
	{
		uint64_t key = lock_key(0, r, strlen(r));
		struct lres *res = lock_res_get(&tc.d[0], key, false);
		const struct lkb *x;
		unsigned n = 0;

		CHECK(res != NULL);
		list_for_each(x, &res->granted, link)
			CHECK(x->id.node == 0 && ++n == 1);
		CHECK(list_empty(&res->waiting) &&
		      list_empty(&res->converting));
	}
	return 0;
}

/* A REBUILD is a survivor's lock after a death: one that names no death
 * is refused and counted; one at a master that had the resource all
 * along files no granted lock it does not have (those it has are all
 * there).  Node 0 holds "x" in EX (master 1); node 2 claims another EX
 * lock on it by REBUILD naming no death, then naming node 0 dead, which
 * node 1 then declares too (a death one member saw is every member's):
 * node 0's lock goes with it, and node 2's claim is not filed, so node
 * 1's process gets EX at once.  (One that does not fit while a resource
 * is rebuilt: the inputs of fuzz/regress/proto named lock-rebuild-*.) */
static int test_rebuild_checked(void)
{
	struct wire_lock_op o;
	struct proc *a, *b;
	uint64_t la, lb, bad;
	const char *x;

	lsetup(3);
	x = name_on(1, "rb");
	a = proc_new(0);
	b = proc_new(1);
	CHECK(lock_now(a, &la, DSM_LK_EX, 0, x) == 0);
	o = (struct wire_lock_op){.op = WIRE_LOCK_REBUILD, .grmode = DSM_LK_EX,
				  .rqmode = LK_NONE, .seq = 1,
				  .id = {.node = 2, .owner = 1, .handle = 77},
				  .name_len = (uint8_t)strlen(x),
				  .route = {.origin = 2}};
	memcpy(o.name, x, o.name_len);
	o.key = lock_key(0, x, o.name_len);
	bad = st(1)->bad_msgs;
	xport_send(tc.d[2].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o)); /* no death */
	pump();
	CHECK(st(1)->bad_msgs - bad == 1);
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, x) == -EAGAIN);
	o.reserved = 1; /* node 0 */
	xport_send(tc.d[2].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	pump();
	CHECK(st(1)->nodes_dead == 1 && st(1)->bad_msgs - bad == 1);
	CHECK(lock_now(b, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, x) == 0);
	return 0;
}

/* Resources are made on every node an operation passes, and idle ones go
 * again: after 100 locks taken and released, and 16 ticks, the nodes keep
 * only the resource still locked and the one whose value block was
 * written (at its master), and what the owner learnt of where those
 * live. */
static int test_idle_resources_freed(void)
{
	struct proc *a;
	uint64_t lk, held, before;
	char name[16];

	lsetup(2);
	a = proc_new(0);
	before = tc.d[1].lk->nres;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "idle%d", i);
		CHECK(lock_now(a, &lk, DSM_LK_EX, 0, name) == 0);
		if (i == 7)
			CHECK(result(a, unlock_req(a, lk, DSM_LKF_VALBLK,
						   "kept"), NULL) == 0);
		else if (i != 9)
			CHECK(unlock_now(a, lk) == 0);
		else
			held = lk;
	}
	CHECK(tc.d[0].lk->nres + tc.d[1].lk->nres - before >= 100);
	/* The core's tick (no loop runs here: the test ticks). */
	for (int i = 0; i < 16; i++)
		for (int n = 0; n < 2; n++)
			lock_module.tick(&tc.d[n]);
	CHECK(tc.d[0].lk->nres + tc.d[1].lk->nres - before == 2);
	/* What went is made again as it was. */
	CHECK(lock_now(a, &lk, DSM_LK_EX, DSM_LKF_NOQUEUE, "idle3") == 0);
	CHECK(lock_now(a, &lk, DSM_LK_EX, DSM_LKF_NOQUEUE, "idle9") ==
	      -EAGAIN);
	(void)held;
	return 0;
}

/* An operation parked for a resource said to be on its way here, which
 * never comes, is refused to its origin after --dead-after-ms (which
 * then asks who masters it).  Node 2 names node 1 the master of a
 * resource of node 0 at epoch 5, as if it had moved there. */
static int test_parked_expire(void)
{
	struct wire_lock_op o = {.op = WIRE_LOCK_NEW, .rqmode = DSM_LK_EX,
				 .seq = 1,
				 .id = {.node = 2, .owner = 1, .handle = 5},
				 .route = {.origin = 2, .hops = 1, .epoch = 5}};
	const char *r;
	struct lres *res;
	unsigned long nacks;

	lsetup(3);
	r = name_on(0, "pk");
	o.name_len = (uint8_t)strlen(r);
	memcpy(o.name, r, o.name_len);
	o.key = lock_key(0, r, o.name_len);
	tc.d[1].cfg.dead_after_ms = 5000;
	xport_send(tc.d[2].x, 1, WIRE_LOCK_OP, 0, &o, sizeof(o));
	pump();
	res = lock_res_get(&tc.d[1], o.key, false);
	CHECK(res && !list_empty(&res->parked));
	nacks = xport_mock_sent(tc.d[1].x, 2, WIRE_DIR_NACK);
	fake_now += 4999;
	for (int i = 0; i < 16; i++)
		lock_module.tick(&tc.d[1]);
	CHECK(!list_empty(&res->parked));
	fake_now += 1;
	for (int i = 0; i < 16; i++)
		lock_module.tick(&tc.d[1]);
	CHECK(xport_mock_sent(tc.d[1].x, 2, WIRE_DIR_NACK) - nacks == 1);
	pump();
	return 0;
}

/* How many searches an owner of node 1 passed on for one probe: the
 * probe is delivered alone, and the SEARCHes it makes (to node 1 itself,
 * the master here) are counted on node 1's queue to itself. */
static unsigned probe_passes(const struct wire_lock_probe *pb)
{
	const struct kept *k;
	unsigned n = 0;

	xport_send(tc.d[0].x, 1, WIRE_LOCK_PROBE, 0, pb, sizeof(*pb));
	while (xport_progress(tc.d[1].x) > 0)
		;
	list_for_each(k, &tc.d[1].self_q, link)
		n += k->type == WIRE_LOCK_OP;
	pump();
	return n;
}

/* Each owner passes a deadlock search on once, however many paths lead
 * there, and never an origin's older one.  An owner remembered only the
 * last 16 searches it passed on, so with more crossing it the ring forgot
 * them and searches went round and multiplied (fuzz_proto found a storm
 * of 13,097 LOCK_OPs from three processes).  Process h waits on a lock g
 * holds; probes reach h from origin A, then from 20 others, then from A
 * again. */
static int test_search_once(void)
{
	struct wire_lock_probe pb = {.origin = {.node = 0, .owner = 500,
						.handle = 1},
				     .seq = 1, .hops = 1};
	struct proc *g, *h;
	uint64_t lg, lh, req;
	const char *r;

	lsetup(2);
	r = name_on(1, "so");
	g = proc_new(1);
	h = proc_new(1);
	CHECK(lock_now(g, &lg, DSM_LK_EX, 0, r) == 0);
	req = lock_req(h, &lh, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(h, req, NULL) == 1);
	pb.target = h->c.lk->id;
	CHECK(probe_passes(&pb) == 1);
	CHECK(probe_passes(&pb) == 0);        /* the same search again */
	for (unsigned i = 0; i < 20; i++) {
		struct wire_lock_probe other = pb;

		other.origin.handle = 100 + i;
		CHECK(probe_passes(&other) == 1);
	}
	CHECK(probe_passes(&pb) == 0);        /* still remembered */
	pb.seq = 0;
	CHECK(probe_passes(&pb) == 0);        /* older than one passed on */
	pb.seq = 2;
	CHECK(probe_passes(&pb) == 1);        /* the origin's next search */
	CHECK(result(h, req, NULL) == 1);     /* no deadlock: h waits on */
	return 0;
}

/* Whether node n masters name (a top-level resource). */
static bool masters(int n, const char *name)
{
	uint64_t key = lock_key(0, name, strlen(name));

	return home_is_master(&tc.d[n], key,
			      home_lock_kind.get(&tc.d[n], key, false));
}

/* A DIR_HINT as node `from` would send it to `to`: that `from` masters
 * key at epoch. */
static void hint_from(int from, int to, uint64_t key, uint32_t epoch)
{
	struct wire_dir_where w = {.key = key, .kind = WIRE_ENTRY_LOCK,
				   .master = (uint32_t)from,
				   .hint = WIRE_NO_NODE, .epoch = epoch};

	xport_send(tc.d[from].x, to, WIRE_DIR_HINT, 0, &w, sizeof(w));
}

/* The recovery master does not follow a guess.  Node 1, the placement's
 * home, is dead; node 2 is the recovery master and holds a pointer of
 * epoch 0 to node 0 (a peer made it up; a recovery leaves such guesses).
 * Node 0's request went to node 2, which sent it to node 0, which found
 * nobody and pointed at node 2: refused, asked, sent again, for ever
 * (fuzz_proto: 9 events a round, 36,860 LOCK_OPs in 38 s).  Node 2 asks
 * instead, nobody claims the resource, and it adopts it. */
static int test_recovery_master_guess(void)
{
	struct proc *a;
	uint64_t la, req, key;
	const char *r;

	lsetup(3);
	r = name_on(1, "gu");
	key = lock_key(0, r, strlen(r));
	a = proc_new(0);
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	CHECK(pump_within(1000));
	hint_from(0, 2, key, 0);
	CHECK(pump_within(1000));
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(pump_within(1000));
	CHECK(result(a, req, NULL) == 0);
	CHECK(masters(2, r) && !masters(0, r));
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_LOCK_OP) == 1);
	CHECK(unlock_now(a, la) == 0);
	return 0;
}

/* An owner told that nobody masters a resource forgets its own pointer
 * of epoch 0, and sends the request to the recovery master, not along
 * the guess again.  Five nodes; node 1, the placement's home, is dead;
 * node 2 is the recovery master.  Node 0 points at node 3 and node 3 at
 * node 4, node 4 at node 3 (made-up pointers of epoch 0): node 0's
 * request goes to 3 and 4, node 4 refuses it (3 is on its way already)
 * and node 0's lookup finds nobody.  The request then goes to node 2,
 * which adopts the resource; before, it went to node 3 again. */
static int test_owner_forgets_guess(void)
{
	struct proc *a;
	uint64_t la, req, key;
	const char *r;

	lsetup(5);
	r = name_on(1, "of");
	key = lock_key(0, r, strlen(r));
	a = proc_new(0);
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	CHECK(pump_within(1000));
	hint_from(3, 0, key, 0);
	hint_from(4, 3, key, 0);
	hint_from(3, 4, key, 0);
	CHECK(pump_within(1000));
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(pump_within(1000));
	CHECK(result(a, req, NULL) == 0);
	CHECK(masters(2, r) && !masters(0, r) && !masters(3, r) &&
	      !masters(4, r));
	CHECK(xport_mock_sent(tc.d[0].x, 3, WIRE_LOCK_OP) == 1);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_LOCK_OP) == 1);
	return 0;
}

/* A forwarder whose pointer led round forgets it if no move left it
 * (epoch 0: a recovery's guess, here made up by a peer), so that the next
 * operation goes by the placement.  Four nodes; node 3 is the placement's
 * home.  Node 0 points at node 1, node 1 at node 2 and node 2 at node 1:
 * node 0's request goes to node 1 and on to node 2, whose next hop is on
 * the request's way already: node 2 refuses it and forgets its pointer.
 * Node 0 asks, finds node 3 and is granted there, and node 2's own request
 * then goes to node 3 at once.  (Before, node 2 kept the pointer, and
 * every operation it sent or passed on went round again and was refused:
 * fuzz/regress/proto/lookup-pointers-cycle-2.raw, a DIR_NACK storm.)  A
 * pointer a move left (epoch above 0) is kept, on a second resource: its
 * target is about to get the resource. */
static int test_forwarder_forgets_guess(void)
{
	struct proc *a, *b;
	uint64_t la, lb, req, key, moved;
	const char *r, *r2;
	struct lres *res;

	lsetup(4);
	r = name_on(3, "fg");
	r2 = name_on(3, "fm");
	key = lock_key(0, r, strlen(r));
	moved = lock_key(0, r2, strlen(r2));
	a = proc_new(0);
	b = proc_new(2);
	hint_from(1, 0, key, 0);
	hint_from(2, 1, key, 0);
	hint_from(1, 2, key, 0);
	CHECK(pump_within(1000));
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(pump_within(1000));
	CHECK(xport_mock_sent(tc.d[2].x, 0, WIRE_DIR_NACK) == 1);
	res = lock_res_get(&tc.d[2], key, false);
	CHECK(res && res->h.flags == 0);
	/* Node 1 passed the request on: its pointer did not lead round. */
	res = lock_res_get(&tc.d[1], key, false);
	CHECK(res && res->h.flags == HOME_KNOWN && res->h.hint == 2);
	CHECK(result(a, req, NULL) == 0);
	CHECK(masters(3, r));
	CHECK(unlock_now(a, la) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_EX, 0, r) == 0);
	CHECK(xport_mock_sent(tc.d[2].x, 1, WIRE_LOCK_OP) == 0);
	CHECK(xport_mock_sent(tc.d[2].x, 3, WIRE_LOCK_OP) == 1);

	/* The same cycle between nodes 1 and 2 at epoch 1. */
	hint_from(1, 0, moved, 0);
	hint_from(2, 1, moved, 1);
	hint_from(1, 2, moved, 1);
	CHECK(pump_within(1000));
	req = lock_req(a, &la, DSM_LK_EX, 0, r2, 0, 0, false);
	CHECK(pump_within(1000));
	CHECK(xport_mock_sent(tc.d[2].x, 0, WIRE_DIR_NACK) == 2);
	res = lock_res_get(&tc.d[2], moved, false);
	CHECK(res && res->h.flags == HOME_KNOWN && res->h.hint == 1 &&
	      res->h.epoch == 1);
	CHECK(result(a, req, NULL) == 0);
	return 0;
}

/* An answer from before a death, to a request asked anew since, is
 * dropped: it is of another incarnation of the lock.  Four nodes, the
 * resource moving to the node that uses it most; node 1 is its
 * placement's home.  Node 1 grants node 3's CR request, but the grant is
 * held back (the link is cut; the test sends a copy later).  Node 2's
 * process then uses the resource until it moves there, the CR lock
 * granted with it, and node 0's EX request waits behind that lock at node
 * 2.  Node 2 dies: node 1 rebuilds the resource from the survivors'
 * locks, both waiting, node 0's first, and grants node 0 EX.  Now the
 * grant from before arrives: node 3 renumbered its request when it
 * rebuilt it, so the grant is not its answer, and node 3 waits until
 * node 0 lets go.  (Before, node 3 took it and held CR beside node 0's
 * EX, while its master had it waiting:
 * fuzz/regress/proto/lock-answer-from-before-rebuild.raw, where a
 * timeout's cancel of the wait then left CR held and no lock at the
 * master.)  A master that had a resource all along renumbers a wait
 * rebuilt there: node 3's second process waits at node 0 behind node 2's
 * EX, and is granted under its new number once node 2's lock goes. */
static int test_answer_from_before(void)
{
	struct wire_lock_reply rp;
	struct proc *a, *b, *c, *e;
	uint64_t la, lb, lc, le, ra, rb, re;
	const char *r, *s;
	struct llock *l;

	CHECK(lsetup_policy(4, &moving) == 0);
	r = name_on(1, "af");
	s = name_on(0, "al");
	a = proc_new(3);
	b = proc_new(3);
	c = proc_new(2);
	e = proc_new(0);
	xport_mock_cut(tc.f, 1, 3, true);
	ra = lock_req(a, &la, DSM_LK_CR, 0, r, 0, 0, false);
	CHECK(result(a, ra, NULL) == 1);
	l = lock_by_lkid(a->c.lk, la);
	CHECK(l != NULL);
	rp = (struct wire_lock_reply){
		.key = l->key, .kind = WIRE_LKR_DONE, .mode = DSM_LK_CR,
		.seq = l->opseq,
		.id = {.handle = l->handle, .owner = l->owner, .node = 3}};
	CHECK(move_to(c, r, DSM_LK_NL, 2) == 0);
	xport_mock_cut(tc.f, 1, 3, false);
	re = lock_req(e, &le, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(e, re, NULL) == 1);
	CHECK(lock_now(c, &lc, DSM_LK_EX, 0, s) == 0);
	rb = lock_req(b, &lb, DSM_LK_EX, 0, s, 0, 0, false);
	CHECK(result(b, rb, NULL) == 1);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	CHECK(pump_within(1000));
	CHECK(masters(1, r) && masters(0, s));
	CHECK(result(e, re, NULL) == 0);
	CHECK(result(a, ra, NULL) == 1);
	CHECK(result(b, rb, NULL) == 0);
	xport_send(tc.d[1].x, 3, WIRE_LOCK_REPLY, 0, &rp, sizeof(rp));
	CHECK(pump_within(1000));
	CHECK(result(a, ra, NULL) == 1);
	CHECK(unlock_now(e, le) == 0);
	CHECK(result(a, ra, NULL) == 0);
	CHECK(lock_now(e, &le, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* A request asked anew under a new number reaches a master that granted
 * it under the old one: answered again.  Five nodes, the resource moving;
 * its placement's home is node 1, and it moved to node 2.  Node 0's EX
 * request waits there behind node 4's EX; nodes 1 and 3 point at each
 * other at epoch 5 (made up by a peer).  Node 4 dies.  Node 2 drops its
 * lock and grants node 0's request under the number it came with; but
 * node 0 renumbered its wait at the death (so the grant is dropped) and
 * sent it as a REBUILD to the recovery master, node 1, which passed it
 * to node 3, which refused it (its pointer leads back).  Node 0 asks who
 * masters the resource and sends the request again, under its new
 * number, to node 2, which has it granted and answers again.  (Before,
 * node 2 dropped it as a request it had, and node 0 waited for ever:
 * fuzz/regress/proto/lock-asked-anew-after-move.raw.) */
static int test_asked_anew_answered(void)
{
	struct proc *a, *h, *m;
	uint64_t la, lh, lm, req, key;
	const char *r;

	CHECK(lsetup_policy(5, &moving) == 0);
	r = name_on(1, "aa");
	key = lock_key(0, r, strlen(r));
	a = proc_new(0);
	h = proc_new(4);
	m = proc_new(2);
	CHECK(move_to(m, r, DSM_LK_EX, 2) == 0);
	CHECK(lock_now(h, &lh, DSM_LK_EX, 0, r) == 0);
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(result(a, req, NULL) == 1);
	hint_from(3, 1, key, 5);
	hint_from(1, 3, key, 5);
	CHECK(pump_within(1000));
	CHECK(xport_mock_kill(tc.f, 4) == 0);
	CHECK(pump_within(1000));
	CHECK(xport_mock_sent(tc.d[3].x, 0, WIRE_DIR_NACK) == 1);
	CHECK(masters(2, r));
	CHECK(result(a, req, NULL) == 0);
	/* Node 2's answers: the grant under the old number, then again. */
	CHECK(xport_mock_sent(tc.d[2].x, 0, WIRE_LOCK_REPLY) == 2);
	CHECK(lock_now(m, &lm, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* Only a master moves a resource.  Node 1, the placement's home of a
 * resource that moved to node 2, is its recovery master when node 3
 * dies: the REBUILD of node 0's lock is parked there while it asks, then
 * passed on to node 2.  (Before, node 1 then weighed the resource as if
 * it were its own, from the counts it had kept, and sent node 2 an empty
 * copy: dropped there as stale, or, had the resource moved on, a second
 * master.) */
static int test_only_master_moves(void)
{
	struct proc *a, *b;
	uint64_t lb, moved, bad;
	const char *r;

	CHECK(lsetup_policy(4, &moving) == 0);
	r = name_on(1, "om");
	a = proc_new(2);
	b = proc_new(0);
	CHECK(move_to(a, r, DSM_LK_EX, 2) == 0);
	CHECK(lock_now(b, &lb, DSM_LK_PR, 0, r) == 0);
	moved = st(1)->migrations_out;
	bad = st(2)->bad_msgs;
	CHECK(xport_mock_kill(tc.f, 3) == 0);
	CHECK(pump_within(1000));
	CHECK(st(1)->migrations_out == moved && st(2)->bad_msgs == bad);
	CHECK(masters(2, r) && !masters(1, r));
	CHECK(lock_now(a, &lb, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == -EAGAIN);
	return 0;
}

/* A CANCEL may come under the number a death gave the wait before the
 * REBUILD that carries it: the master renumbers the wait and cancels it.
 * A resource of node 1 moved to node 2, where node 0 (which knows it)
 * waits behind an EX.  Node 3 dies: node 0's REBUILD (the wait, renumbered)
 * goes to node 1, the recovery master, which asks and passes it on,
 * while the CANCEL of node 0's timeout goes to node 2 straight; what
 * node 1 sends node 2 is held back meanwhile.  (Before, node 2 dropped the
 * CANCEL as one of an operation that ended, and node 0 waited for its
 * answer for ever: fuzz_proto.)  The REBUILD, last, files a wait nobody
 * has, granted in its turn and given back. */
static int test_cancel_before_rebuild(void)
{
	struct proc *a, *c;
	uint64_t la, lc, req;
	const char *r;

	CHECK(lsetup_policy(4, &moving) == 0);
	r = name_on(1, "cb");
	c = proc_new(2);
	a = proc_new(0);
	CHECK(move_to(c, r, DSM_LK_EX, 2) == 0);
	CHECK(lock_now(a, &la, DSM_LK_CR, 0, r) == 0); /* node 0 learns */
	CHECK(unlock_now(a, la) == 0);                  /* where it is */
	CHECK(lock_now(c, &lc, DSM_LK_EX, 0, r) == 0);
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 1000, false);
	CHECK(result(a, req, NULL) == 1);
	xport_mock_hold(tc.f, 1, 2, true);
	CHECK(xport_mock_kill(tc.f, 3) == 0);
	CHECK(pump_within(1000));
	CHECK(xport_mock_pending(tc.d[2].x, 1, 0) > 0);
	advance(1000); /* the timeout: CANCEL */
	xport_mock_hold(tc.f, 1, 2, false);
	CHECK(pump_within(1000));
	CHECK(result(a, req, NULL) == -ETIMEDOUT);
	CHECK(unlock_now(c, lc) == 0);
	CHECK(pump_within(1000));
	CHECK(lock_now(c, &lc, DSM_LK_EX, DSM_LKF_NOQUEUE, r) == 0);
	return 0;
}

/* What the nodes know leads nowhere: every node points at another at
 * epoch 3, and nobody masters the resource (a peer's lies made it so, or
 * a move whose entry was dropped).  The request is refused, asked after
 * and sent again a bounded number of times, then fails with -EHOSTDOWN.
 * (Before, the refusals and lookups went round for ever: fuzz_proto's
 * third DIR_NACK storm, 32,769 queued at one node.) */
static int test_refused_gives_up(void)
{
	struct proc *a;
	uint64_t la, req, key;
	const char *r;
	static const int to[3] = {1, 0, 0};

	lsetup(3);
	r = name_on(2, "gu");
	key = lock_key(0, r, strlen(r));
	a = proc_new(0);
	for (int n = 0; n < 3; n++)
		lock_res_get(&tc.d[n], key, true)->h =
			(struct home){.flags = HOME_KNOWN,
				      .hint = (uint16_t)to[n], .epoch = 3};
	req = lock_req(a, &la, DSM_LK_EX, 0, r, 0, 0, false);
	CHECK(pump_within(100000));
	CHECK(result(a, req, NULL) == -EHOSTDOWN);
	CHECK(xport_mock_sent(tc.d[0].x, 1, WIRE_LOCK_OP) <=
	      (unsigned long)HOME_REFUSALS_MAX(&tc.d[0]) + 1);
	return 0;
}

static const struct test_case tests[] = {
	{"matrix", test_matrix},
	{"queue_order", test_queue_order},
	{"conversion_first", test_conversion_first},
	{"blocking_notes", test_blocking_notes},
	{"value_block", test_value_block},
	{"dead_writer_block", test_dead_writer_block},
	{"conversions_wait_for_each_other",
	 test_conversions_wait_for_each_other},
	{"conversion_not_twice", test_conversion_not_twice},
	{"timeout_and_cancel", test_timeout_and_cancel},
	{"bad_requests", test_bad_requests},
	{"deadlock_two", test_deadlock_two},
	{"deadlock_three", test_deadlock_three},
	{"no_false_deadlock", test_no_false_deadlock},
	{"master_dies", test_master_dies},
	{"death_spreads", test_death_spreads},
	{"partition_timeout", test_partition_timeout},
	{"recovery_deadline", test_recovery_deadline},
	{"lock_caps", test_lock_caps},
	{"events_not_lost", test_events_not_lost},
	{"unread_client_cut_off", test_unread_client_cut_off},
	{"moves_to_user", test_moves_to_user},
	{"bad_messages", test_bad_messages},
	{"moved_master_dies", test_moved_master_dies},
	{"request_lost_moved", test_request_lost_moved},
	{"ghost_given_back", test_ghost_given_back},
	{"gone_while_waiting", test_gone_while_waiting},
	{"rebuild_checked", test_rebuild_checked},
	{"search_once", test_search_once},
	{"recovery_master_guess", test_recovery_master_guess},
	{"owner_forgets_guess", test_owner_forgets_guess},
	{"only_master_moves", test_only_master_moves},
	{"cancel_before_rebuild", test_cancel_before_rebuild},
	{"refused_gives_up", test_refused_gives_up},
	{"forwarder_forgets_guess", test_forwarder_forgets_guess},
	{"answer_from_before", test_answer_from_before},
	{"asked_anew_answered", test_asked_anew_answered},
	{"idle_resources_freed", test_idle_resources_freed},
	{"parked_expire", test_parked_expire},
};

TEST_MAIN(tests, lteardown)
