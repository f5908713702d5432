/* Unit tests of where directory entries live (daemon/home/, and the page
 * kind in daemon/page/dir.c) on the host: dsmd cores on the in-memory
 * transport (tests/daemon/dsm_harness.h), with the clock in the test's
 * hand.  Entries move to the node that uses them
 * most and not back and forth; requests racing with a move are neither lost
 * nor served twice; stale hints, dead ends and a dead node on the way still
 * lead to the master; first-touch placement; policies set per range reach
 * every node.
 */
#include "dsm_harness.h"
#include "home/home_int.h"
#include "modules.h"

static const struct wire_policy moving = {
	.placement = DSM_PLACE_STATIC, .migrate = 1, .share_pct = 60,
	.min_requests = 4, .window_ms = 500, .load_pct = 200,
};

static struct home *home_of(int node, uint64_t page)
{
	struct dentry *e = dir_entry(&tc.d[node], page, false);

	return e ? &e->h : NULL;
}

static bool masters(int node, uint64_t page)
{
	return home_is_master(&tc.d[node], page, home_of(node, page));
}

/* How many nodes believe they master the page: one, always (none only
 * while DIR_MIGRATE is on its way, and pump() delivers it). */
static int nmasters(uint64_t page)
{
	int i, n = 0;

	for (i = 0; i < tc.n; i++)
		n += masters(i, page);
	return n;
}

static struct dentry *master_entry(uint64_t page)
{
	for (int i = 0; i < tc.n; i++)
		if (masters(i, page))
			return dir_entry(&tc.d[i], page, false);
	return NULL;
}

static uint64_t migrations(void)
{
	uint64_t n = 0;

	for (int i = 0; i < tc.n; i++)
		n += st(i)->migrations_out;
	return n;
}

/* Node `who` reads then writes the page; `other` writes it after, so that
 * the next round needs the directory again.  who asks twice, other once. */
static int round_trip(int who, int other, uint64_t page, uint64_t seed)
{
	fault(who, page, RD);
	pump();
	fault(who, page, WR);
	pump();
	CHECK(state(who, page) == WIRE_PS_M);
	store(who, page, seed);
	fault(other, page, WR);
	pump();
	CHECK(state(other, page) == WIRE_PS_M && holds(other, page, seed));
	store(other, page, seed + 1);
	return 0;
}

/* A cluster of n nodes where node `who` took the page over from its home
 * by asking twice as often as node `other`. */
static int moved_to(int n, int who, int other, uint64_t page)
{
	tc_policy = moving;
	CHECK(setup(n, 0) == 0);
	pump();
	for (int i = 0; i < 3; i++)
		CHECK(round_trip(who, other, page, 100 + 2 * i) == 0);
	CHECK(masters(who, page) && nmasters(page) == 1);
	return 0;
}

/* Four nodes where the page (home 1) moved to node 2, then, a window
 * later, to node 3, which asked twice as often as node `other`. */
static int moved_twice(uint64_t page, int other)
{
	CHECK(moved_to(4, 2, 0, page) == 0);
	fake_now += 1000;
	for (int i = 0; i < 6 && !masters(3, page); i++) {
		CHECK(round_trip(3, other, page, 30 + 2 * i) == 0);
		fake_now += 100;
	}
	CHECK(masters(3, page) && nmasters(page) == 1);
	return 0;
}

/* A node that keeps asking for a page mastered elsewhere becomes its
 * master; afterwards its misses need no directory message, and the
 * others learn where the entry went. */
static int test_moves_to_user(void)
{
	uint64_t page = 4; /* home: node 1 */
	struct dsm_stats before;

	CHECK(moved_to(3, 2, 0, page) == 0);
	CHECK(st(1)->migrations_out == 1 && st(2)->migrations_in == 1);
	CHECK(home_of(1, page)->hint == 2 && home_of(1, page)->epoch == 1);
	CHECK(dir_master(&tc.d[0], page) == 2); /* learnt from a grant */
	before = *st(2);
	fault(2, page, RD);
	pump();
	CHECK(holds(2, page, 105));
	CHECK(st(2)->directory_local - before.directory_local == 1);
	CHECK(st(2)->directory_remote == before.directory_remote);
	/* Node 0 goes straight to the new master: a hint hit. */
	before = *st(0);
	fault(0, page, WR);
	pump();
	CHECK(state(0, page) == WIRE_PS_M);
	CHECK(st(0)->hint_hits - before.hint_hits == 1);
	CHECK(st(1)->forwards == 0 || st(0)->hint_misses == 0);
	teardown();
	return 0;
}

/* Two nodes sharing a page evenly: it stays where it is, over a long run
 * with the counts decaying as time passes. */
static int test_even_sharing_stays(void)
{
	uint64_t page = 4;
	int i;

	tc_policy = moving; /* share 60%, the default */
	CHECK(setup(3, 0) == 0);
	pump();
	for (i = 0; i < 200; i++) {
		fault(i % 2 ? 2 : 0, page, WR);
		pump();
		CHECK(state(i % 2 ? 2 : 0, page) == WIRE_PS_M);
		fake_now += 37;
	}
	CHECK(migrations() == 0 && masters(1, page));
	teardown();
	return 0;
}

/* Two nodes take turns (a read miss and an upgrade each), one turn every
 * half window, for 100 turns: the page stays where it is. */
static int test_turns_stay(void)
{
	uint64_t page = 4;
	int i;

	tc_policy = moving;
	CHECK(setup(3, 0) == 0);
	pump();
	for (i = 0; i < 100; i++) {
		int n = i % 2 ? 2 : 0;

		fault(n, page, RD);
		pump();
		fault(n, page, WR);
		pump();
		CHECK(state(n, page) == WIRE_PS_M);
		fake_now += 260;
	}
	CHECK(migrations() == 0 && masters(1, page));
	teardown();
	return 0;
}

/* A request queued at the master while the entry moves follows it to the
 * new master and is served exactly once there. */
static int test_queued_request_follows(void)
{
	uint64_t page = 5; /* home: node 1 */
	struct dsm_stats before;

	tc_policy = moving;
	CHECK(setup(4, 0) == 0);
	pump();
	CHECK(round_trip(2, 0, page, 10) == 0);
	fault(2, page, RD);
	pump();
	/* Node 2 asks a fourth time, and would get the entry but for its
	 * load: the entry stays and serves it. */
	home_heard_load(&tc.d[1], 2, 1000);
	fault(2, page, WR);
	CHECK(xport_progress(tc.d[1].x) > 0);
	CHECK(master_entry(page)->busy && masters(1, page));
	/* Node 3's read waits in the queue; node 2's load is back to
	 * normal by the time its DONE comes: the entry moves, and node 3's
	 * request goes with it. */
	before = *st(3);
	fault(3, page, RD);
	home_heard_load(&tc.d[1], 2, 0);
	pump();
	CHECK(masters(2, page) && nmasters(page) == 1);
	CHECK(st(1)->migrations_out == 1 && st(1)->forwards == 1);
	CHECK(state(3, page) == WIRE_PS_S && !busy(3, page));
	CHECK(holds(3, page, 11));
	CHECK(st(3)->pages_received - before.pages_received == 1);
	CHECK(st(3)->read_faults - before.read_faults == 1);
	CHECK(master_entry(page)->sharers == ((1u << 2) | (1u << 3)));
	for (int i = 0; i < tc.n; i++)
		CHECK(st(i)->bad_msgs == 0);
	teardown();
	return 0;
}

/* Node 0's hint names a node that no longer masters the entry: that node
 * forwards, the master tells it (and node 0 learns from its grant). */
static int test_stale_hint(void)
{
	uint64_t page = 4;
	int i;

	CHECK(moved_to(3, 2, 0, page) == 0);
	CHECK(dir_master(&tc.d[0], page) == 2);
	/* Now node 1 takes over (it reads and writes, node 2 writes). */
	fake_now += 1000;
	for (i = 0; i < 4 && !masters(1, page); i++) {
		CHECK(round_trip(1, 2, page, 200 + 2 * i) == 0);
		fake_now += 100;
	}
	CHECK(masters(1, page) && nmasters(page) == 1);
	CHECK(dir_master(&tc.d[0], page) == 2); /* stale */
	fault(0, page, RD);
	pump();
	CHECK(state(0, page) == WIRE_PS_S && !busy(0, page));
	CHECK(st(2)->forwards >= 1 && st(0)->hint_misses == 1);
	CHECK(dir_master(&tc.d[0], page) == 1);
	CHECK(st(0)->lost_faults == 0);
	teardown();
	return 0;
}

/* Hints that lead in a circle: the request is refused, not passed around,
 * and the requester finds the master by asking everyone. */
static int test_dead_end_asks_everyone(void)
{
	uint64_t page = 5; /* home: node 1 */
	struct dentry *e0, *e3;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(4, 0) == 0);
	pump();
	e0 = dir_entry(&tc.d[0], page, true);
	e3 = dir_entry(&tc.d[3], page, true);
	e0->h = (struct home){.flags = HOME_KNOWN, .hint = 3};
	e3->h = (struct home){.flags = HOME_KNOWN, .hint = 0};
	fault(0, page, WR);
	pump();
	CHECK(state(0, page) == WIRE_PS_M && !busy(0, page));
	/* 0 -> 3 -> 0, where the next hop (3) is on the chain: refused. */
	CHECK(xport_mock_sent(tc.d[0].x, 3, WIRE_DSM_REQ) == 1);
	CHECK(xport_mock_sent(tc.d[3].x, 0, WIRE_DSM_REQ) == 1);
	CHECK(st(3)->forwards == 1 && st(0)->forwards == 0);
	CHECK(st(0)->who_has_broadcasts == 1 && st(0)->hint_misses == 1);
	CHECK(dir_master(&tc.d[0], page) == 1);
	CHECK(st(1)->directory_local == 0 && nmasters(page) == 1);
	teardown();
	return 0;
}

/* A lookup with nobody claiming the entry does not follow a pointer of
 * epoch 0: only a move raises the epoch, so such a pointer is a guess.
 * Node 1, the home, is dead, and the entry with it; nodes 0 and 3 point at
 * each other at epoch 0, and node 2 at node 3.  Node 2's request goes
 * 3 -> 0 and is refused there (its next hop is on the way already); node
 * 2's lookup finds nobody and its fault fails.  (Before, the lookup
 * followed node 2's own guess, the request went round and was refused
 * again, for ever: fuzz_proto's DIR_NACK storm, 24,576 at one node.) */
static int test_lookup_ignores_guesses(void)
{
	uint64_t page = 5; /* home: node 1 */

	tc_policy = (struct wire_policy){0};
	CHECK(setup(4, 0) == 0);
	pump();
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	CHECK(pump_within(1000));
	dir_entry(&tc.d[0], page, true)->h =
		(struct home){.flags = HOME_KNOWN, .hint = 3};
	dir_entry(&tc.d[3], page, true)->h =
		(struct home){.flags = HOME_KNOWN, .hint = 0};
	dir_entry(&tc.d[2], page, true)->h =
		(struct home){.flags = HOME_KNOWN, .hint = 3};
	fault(2, page, WR);
	CHECK(pump_within(1000));
	CHECK(!busy(2, page) && st(2)->lost_faults == 1);
	CHECK(st(2)->who_has_broadcasts == 1);
	CHECK(xport_mock_sent(tc.d[2].x, 3, WIRE_DSM_REQ) == 1);
	teardown();
	return 0;
}

/* What the nodes know leads nowhere: each points at another at epoch 3,
 * nobody masters the entry (a peer's lies made it so).  The request is
 * refused and asked after a bounded number of times, then the fault fails
 * as for an entry that died; before, it went round for ever. */
static int test_refused_gives_up(void)
{
	uint64_t page = 5; /* home: node 1 */
	static const int to[4] = {3, 0, 0, 0};

	tc_policy = (struct wire_policy){0};
	CHECK(setup(4, 0) == 0);
	pump();
	for (int n = 0; n < 4; n++)
		dir_entry(&tc.d[n], page, true)->h =
			(struct home){.flags = HOME_KNOWN,
				      .hint = (uint16_t)to[n], .epoch = 3};
	fault(0, page, WR);
	CHECK(pump_within(100000));
	CHECK(!busy(0, page) && st(0)->lost_faults == 1);
	CHECK(xport_mock_sent(tc.d[0].x, 3, WIRE_DSM_REQ) <=
	      (unsigned long)HOME_REFUSALS_MAX(&tc.d[0]) + 1);
	teardown();
	return 0;
}

/* A lookup waits for a live node's answer --dead-after-ms at most: node 2
 * is alive but what it sends never reaches node 0, so node 0's lookup (its
 * hints lead in a circle) would wait for ever.  Past the deadline node 0
 * declares node 2 dead, the lookup ends with the others' answers, and the
 * fault is served. */
static int test_lookup_deadline(void)
{
	uint64_t page = 5; /* home: node 1 */
	struct dentry *e0, *e3;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(4, 0) == 0);
	pump();
	tc.d[0].cfg.dead_after_ms = 5000;
	e0 = dir_entry(&tc.d[0], page, true);
	e3 = dir_entry(&tc.d[3], page, true);
	e0->h = (struct home){.flags = HOME_KNOWN, .hint = 3};
	e3->h = (struct home){.flags = HOME_KNOWN, .hint = 0};
	xport_mock_cut(tc.f, 2, 0, true);
	fault(0, page, WR);
	pump();
	CHECK(busy(0, page) && st(0)->who_has_broadcasts == 1);
	fake_now += 4999;
	home_module.tick(&tc.d[0]);
	pump();
	CHECK(busy(0, page) && st(0)->nodes_dead == 0);
	fake_now += 1;
	home_module.tick(&tc.d[0]);
	pump();
	CHECK(st(0)->nodes_dead == 1 &&
	      tc.d[0].members[2].state == WIRE_MEMBER_DEAD);
	CHECK(!busy(0, page) && state(0, page) == WIRE_PS_M);
	teardown();
	return 0;
}

/* A request parked for an entry said to be on its way here, which never
 * comes, is refused to its requester after --dead-after-ms (which then
 * asks who masters the page).  Node 2 names node 1 the master of a page
 * of node 0 at epoch 5, as if the entry had moved there. */
static int test_parked_expire(void)
{
	uint64_t page = 3; /* home: node 0 of 3 */
	struct wire_dsm_req q = {.page = page, .access = WIRE_ACC_READ,
				 .route = {.origin = 2, .hops = 1,
					   .epoch = 5}};
	unsigned long nacks;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(3, 0) == 0);
	pump();
	tc.d[1].cfg.dead_after_ms = 5000;
	xport_send(tc.d[2].x, 1, WIRE_DSM_REQ, 77, &q, sizeof(q));
	pump();
	CHECK(dir_entry(&tc.d[1], page, false)->q_head != NULL);
	nacks = xport_mock_sent(tc.d[1].x, 2, WIRE_DIR_NACK);
	fake_now += 4999;
	for (int i = 0; i < 16; i++)
		page_module.tick(&tc.d[1]);
	CHECK(dir_entry(&tc.d[1], page, false)->q_head != NULL);
	fake_now += 1;
	for (int i = 0; i < 16; i++)
		page_module.tick(&tc.d[1]);
	CHECK(dir_entry(&tc.d[1], page, false)->q_head == NULL);
	CHECK(xport_mock_sent(tc.d[1].x, 2, WIRE_DIR_NACK) - nacks == 1);
	pump();
	teardown();
	return 0;
}

/* A node on the forwarding chain is dead: the requester asks everyone and
 * reaches the master. */
static int test_dead_forwarder(void)
{
	uint64_t page = 5; /* home: node 1 */

	CHECK(moved_twice(page, 1) == 0);
	CHECK(dir_master(&tc.d[0], page) == 2);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	fault(0, page, RD);
	pump();
	CHECK(state(0, page) == WIRE_PS_S && !busy(0, page));
	CHECK(st(0)->who_has_broadcasts == 1 && st(0)->lost_faults == 0);
	CHECK(dir_master(&tc.d[0], page) == 3);
	teardown();
	return 0;
}

/* A request passed on to the master as it dies: the requester, which
 * sent it to another node, asks again when it sees the death, and its
 * fault ends (the entry died with its master: SIGBUS), it does not wait
 * for ever.  Node 3 asks the home (1), which passes the request on to
 * node 2, where the entry went; node 2 dies with the request unread. */
static int test_passed_to_dying(void)
{
	uint64_t page = 5; /* home: node 1 */
	uint64_t fw;

	CHECK(moved_to(4, 2, 0, page) == 0);
	CHECK(dir_master(&tc.d[3], page) == 1);
	fw = st(1)->forwards;
	fault(3, page, RD);
	while (node_run_self(&tc.d[3]))
		;
	xport_progress(tc.d[3].x);
	for (int i = 0; i < 4 && st(1)->forwards == fw; i++)
		xport_progress(tc.d[1].x); /* forwarded to node 2 */
	CHECK(st(1)->forwards == fw + 1);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	CHECK(!busy(3, page) && st(3)->lost_faults == 1);
	CHECK(st(3)->who_has_broadcasts == 1);
	teardown();
	return 0;
}

/* A request forwarded twice (home 1 -> 2 -> 3): the master tells both
 * forwarders where it is, so the next request from either goes straight
 * there. */
static int test_chain_compressed(void)
{
	uint64_t page = 5; /* home: node 1 */

	CHECK(moved_twice(page, 2) == 0);
	CHECK(dir_master(&tc.d[1], page) == 2);
	/* Node 0 forgets what it learnt: it asks the home again. */
	dir_entry(&tc.d[0], page, false)->h = (struct home){0};
	fault(0, page, RD);
	pump();
	CHECK(state(0, page) == WIRE_PS_S && !busy(0, page));
	CHECK(st(1)->forwards >= 1 && st(2)->forwards >= 1);
	CHECK(xport_mock_sent(tc.d[3].x, 1, WIRE_DIR_HINT) == 1);
	CHECK(xport_mock_sent(tc.d[3].x, 2, WIRE_DIR_HINT) == 1);
	CHECK(dir_master(&tc.d[1], page) == 3 && dir_master(&tc.d[2], page) == 3);
	CHECK(dir_master(&tc.d[0], page) == 3);
	teardown();
	return 0;
}

/* First-touch placement: the first node to touch a page masters it. */
static int test_first_touch(void)
{
	uint64_t page = 4; /* home: node 1 */
	struct dsm_stats before;

	tc_policy = moving;
	tc_policy.placement = DSM_PLACE_FIRST_TOUCH;
	tc_policy.migrate = 0;
	CHECK(setup(3, 0) == 0);
	pump();
	fault(2, page, WR);
	pump();
	CHECK(state(2, page) == WIRE_PS_M && masters(2, page));
	CHECK(nmasters(page) == 1 && st(2)->zero_fills == 1);
	before = *st(2);
	fault(0, page, RD);
	pump();
	fault(2, page, WR);
	pump();
	CHECK(st(2)->directory_local - before.directory_local == 1);
	/* The home touching first keeps it. */
	fault(1, page + 3, RD);
	pump();
	CHECK(masters(1, page + 3) && migrations() == 1);
	teardown();
	return 0;
}

/* Random faults from every node on a few pages, several at once, with
 * time passing and a policy that moves entries eagerly: every node always
 * reads the last value written, and every page has exactly one master. */
static int test_random_moves(void)
{
	uint64_t seeds[4] = {0}, next = 1000, rnd = 12345;
	int round, i;

	tc_policy = moving;
	tc_policy.min_requests = 2;
	tc_policy.share_pct = 51;
	tc_policy.window_ms = 50;
	CHECK(setup(4, 0) == 0);
	pump();
	for (round = 0; round < 400; round++) {
		int k = 1 + (int)(rnd % 3), writer[3], wpage[3];

		/* One node is busier than the others, in turn. */
		for (i = 0; i < k; i++) {
			rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
			writer[i] = (int)((rnd >> 33) % 8);
			if (writer[i] >= 4)
				writer[i] = round / 40 % 4;
			wpage[i] = (int)((rnd >> 40) % 4);
			fault(writer[i], (uint64_t)wpage[i],
			      (rnd >> 50) & 1 ? WR : RD);
		}
		pump();
		fake_now += (rnd >> 20) % 40;
		for (i = 0; i < k; i++) {
			int n = writer[i], p = wpage[i];

			CHECK(!busy(n, (uint64_t)p));
			if (state(n, (uint64_t)p) == WIRE_PS_M) {
				store(n, (uint64_t)p, ++next);
				seeds[p] = next;
			}
		}
		for (i = 0; i < 4 * 4; i++) {
			int n = i / 4, p = i % 4;

			CHECK(nmasters((uint64_t)p) == 1);
			if (state(n, (uint64_t)p) != WIRE_PS_I && seeds[p])
				CHECKF(holds(n, (uint64_t)p, seeds[p]),
				       "node %d page %d round %d", n, p, round);
		}
	}
	CHECK(migrations() > 10);
	for (i = 0; i < 4; i++)
		CHECK(st(i)->bad_msgs == 0 && st(i)->lost_faults == 0);
	teardown();
	return 0;
}

/* A policy set for a range on one node reaches every node; cleared, the
 * range is back to the cluster's policy; bad ones are refused. */
static int test_policy_everywhere(void)
{
	struct wire_ipc_policy req = {
		.addr = BASE + 8 * WIRE_PAGE_SIZE, .len = 3 * WIRE_PAGE_SIZE,
		.op = WIRE_POLICY_SET, .p = moving,
	};
	int i;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(3, 0) == 0);
	pump();
	CHECK(home_policy_ipc(&tc.d[1], &tc.app[1], 1, &req) == 0);
	pump();
	for (i = 0; i < 3; i++) {
		CHECK(home_policy(&tc.d[i], 8)->migrate == 1);
		CHECK(home_policy(&tc.d[i], 10)->share_pct == 60);
		CHECK(home_policy(&tc.d[i], 11)->migrate == 0);
		CHECK(home_policy(&tc.d[i], 7)->migrate == 0);
	}
	CHECK(list_empty(&tc.d[1].home->policy_ops) && tc.app[1].refs == 1);
	req.op = WIRE_POLICY_CLEAR;
	CHECK(home_policy_ipc(&tc.d[2], &tc.app[2], 2, &req) == 0);
	pump();
	for (i = 0; i < 3; i++)
		CHECK(home_policy(&tc.d[i], 9)->migrate == 0 &&
		      tc.d[i].home->nranges == 0);
	req.op = WIRE_POLICY_SET;
	req.p.share_pct = 50;
	CHECK(home_policy_ipc(&tc.d[0], &tc.app[0], 3, &req) == -EINVAL);
	req.p = moving;
	req.len = 0;
	CHECK(home_policy_ipc(&tc.d[0], &tc.app[0], 4, &req) == -EINVAL);
	req.len = ARENA;
	CHECK(home_policy_ipc(&tc.d[0], &tc.app[0], 5, &req) == -EINVAL);
	req.addr = BASE;
	for (i = 0; i < HOME_MAX_RANGES; i++) {
		req.addr = BASE + (uint64_t)i * 2 * WIRE_PAGE_SIZE;
		req.len = WIRE_PAGE_SIZE;
		CHECK(home_policy_ipc(&tc.d[0], &tc.app[0], 6, &req) == 0);
	}
	req.addr += 2 * WIRE_PAGE_SIZE;
	CHECK(home_policy_ipc(&tc.d[0], &tc.app[0], 7, &req) == -ENOSPC);
	pump();
	CHECK(tc.d[2].home->nranges == HOME_MAX_RANGES);
	teardown();
	return 0;
}

/* An entry of an epoch the node knows already is an old move arriving
 * late (or a peer's forgery): dropped, counted; a newer one is taken. */
static int test_stale_migrate(void)
{
	struct {
		struct wire_dir_migrate mg;
		struct wire_dir_page p;
	} __attribute__((packed)) m = {
		.mg = {.key = 4, .kind = WIRE_ENTRY_PAGE, .epoch = 3,
		       .state_len = sizeof(struct wire_dir_page)},
		.p = {.state = WIRE_PS_I},
	};
	uint64_t bad;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(3, 0) == 0);
	pump();
	dir_entry(&tc.d[2], 4, true)->h =
		(struct home){.flags = HOME_KNOWN, .hint = 1, .epoch = 3};
	bad = st(2)->bad_msgs;
	xport_send(tc.d[1].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	pump();
	CHECK(st(2)->bad_msgs - bad == 1 && !masters(2, 4));
	m.mg.epoch = 4;
	xport_send(tc.d[1].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	pump();
	CHECK(st(2)->bad_msgs - bad == 1 && masters(2, 4));
	teardown();
	return 0;
}

/* Entries that make no sense are dropped and counted; the entry stays. */
static int test_bad_migrate(void)
{
	struct {
		struct wire_dir_migrate mg;
		struct wire_dir_page p;
	} __attribute__((packed)) m = {
		.mg = {.key = 4, .kind = WIRE_ENTRY_PAGE, .epoch = 1,
		       .state_len = sizeof(struct wire_dir_page)},
		.p = {.state = WIRE_PS_M, .owner = 9},
	};
	struct wire_dir_where w = {.key = 4, .kind = 7};
	uint64_t bad;

	tc_policy = (struct wire_policy){0};
	CHECK(setup(3, 0) == 0);
	pump();
	bad = st(2)->bad_msgs;
	xport_send(tc.d[0].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	m.p = (struct wire_dir_page){.state = WIRE_PS_S, .sharers = 0};
	xport_send(tc.d[0].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	m.p = (struct wire_dir_page){.state = 9};
	xport_send(tc.d[0].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	m.p = (struct wire_dir_page){.state = WIRE_PS_I, .flags = 2};
	xport_send(tc.d[0].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	m.mg.key = ~0ull;
	xport_send(tc.d[0].x, 2, WIRE_DIR_MIGRATE, 0, &m, sizeof(m));
	xport_send(tc.d[0].x, 2, WIRE_DIR_WHO_HAS, 0, &w, sizeof(w));
	w.kind = WIRE_ENTRY_PAGE;
	w.master = 1; /* a hint from node 0 naming node 1 */
	xport_send(tc.d[0].x, 2, WIRE_DIR_HINT, 0, &w, sizeof(w));
	xport_send(tc.d[0].x, 2, WIRE_DIR_WHO_HAS_REPLY, 99, &w, sizeof(w));
	pump();
	CHECK(st(2)->bad_msgs - bad == 8);
	CHECK(masters(1, 4) && nmasters(4) == 1);
	fault(2, 4, WR);
	pump();
	CHECK(state(2, 4) == WIRE_PS_M);
	teardown();
	return 0;
}

static const struct test_case tests[] = {
	{"moves_to_user", test_moves_to_user},
	{"even_sharing_stays", test_even_sharing_stays},
	{"turns_stay", test_turns_stay},
	{"queued_request_follows", test_queued_request_follows},
	{"stale_hint", test_stale_hint},
	{"dead_end_asks_everyone", test_dead_end_asks_everyone},
	{"lookup_ignores_guesses", test_lookup_ignores_guesses},
	{"refused_gives_up", test_refused_gives_up},
	{"dead_forwarder", test_dead_forwarder},
	{"chain_compressed", test_chain_compressed},
	{"first_touch", test_first_touch},
	{"passed_to_dying", test_passed_to_dying},
	{"lookup_deadline", test_lookup_deadline},
	{"parked_expire", test_parked_expire},
	{"random_moves", test_random_moves},
	{"policy_everywhere", test_policy_everywhere},
	{"bad_migrate", test_bad_migrate},
	{"stale_migrate", test_stale_migrate},
};

int main(int argc, char **argv)
{
	log_set_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	/* These tests count the requests that reach a master; a read miss
	 * sent to the page's holder (test_dsm.c) never does. */
	tc_peer_off = true;
	return test_run(tests, sizeof(tests) / sizeof(tests[0]), teardown,
			argc, argv);
}
