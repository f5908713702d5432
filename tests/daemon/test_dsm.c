/* Unit tests of the directory protocol (daemon/page/) on the host:
 * several dsmd cores joined by the in-memory transport, each with its own
 * node memory (a memfd).  Faults are injected with page_fault() for a
 * stand-in process whose userfaultfd ioctls go nowhere; what a process would
 * have written is written into the node's memfd, and what a node holds is
 * read back from it.  The transport is pumped until nothing moves, so every
 * interleaving here is chosen by the test: the races of the protocol
 * (two upgrades at once, an invalidation while the same node's request is
 * in flight, requests queued at a busy entry, a held page) happen on
 * purpose, and malformed-but-decodable messages are sent on purpose.
 */
#include "dsm_harness.h"
#include "modules.h"

/* ---------------------------------------------------------------------- */

/* A first touch on the master: zero filled, no message at all. */
static int test_first_touch_local(void)
{
	uint64_t page = 4; /* master: 4 % 3 = 1 */

	CHECK(setup(3, 0) == 0);
	pump();
	CHECK(dir_master(&tc.d[1], page) == 1);
	fault(1, page, RD);
	pump();
	CHECK(state(1, page) == WIRE_PS_S);
	CHECK(st(1)->directory_local == 1 && st(1)->directory_remote == 0);
	CHECK(st(1)->msgs_sent == 0 && st(1)->zero_fills == 1);
	CHECK(st(1)->read_faults == 1);
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 2);
	CHECK(!entry(page)->busy);
	teardown();
	return 0;
}

/* Read miss on a page modified elsewhere, remote master: the owner
 * downgrades and writes the page straight into the reader's slot. */
static int test_read_miss_modified(void)
{
	uint64_t page = 4;
	struct dsm_stats before;

	CHECK(setup(3, 0) == 0);
	pump();
	fault(0, page, WR);
	pump();
	CHECK(state(0, page) == WIRE_PS_M && st(0)->write_faults == 1);
	store(0, page, 77);
	before = *st(2);
	fault(2, page, RD);
	pump();
	CHECK(state(2, page) == WIRE_PS_S && state(0, page) == WIRE_PS_S);
	CHECK(holds(2, page, 77) && holds(0, page, 77));
	CHECK(st(0)->downgrades == 1);
	CHECK(st(1)->holder_forwards == 1); /* master 1 asked owner 0 */
	CHECK(st(1)->forwards == 0 && st(1)->migrations_out == 0);
	/* The reader: REQ and DONE out, the page in; no grant message. */
	CHECK(st(2)->msgs_sent - before.msgs_sent == 2);
	CHECK(st(2)->msgs_received - before.msgs_received == 0);
	CHECK(st(2)->pages_received - before.pages_received == 1);
	CHECK(st(2)->directory_remote - before.directory_remote == 1);
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 5);
	teardown();
	return 0;
}

/* Write miss on a page shared by others: one sharer supplies it and drops
 * it, the rest drop theirs, and the writer waits for every ack. */
static int test_write_miss_shared(void)
{
	uint64_t page = 5; /* master: 5 % 4 = 1 */
	int i;

	CHECK(setup(4, 0) == 0);
	pump();
	fault(0, page, WR);
	pump();
	store(0, page, 5);
	for (i = 1; i < 3; i++) {
		fault(i, page, RD);
		pump();
	}
	CHECK(entry(page)->sharers == 7);
	fault(3, page, WR);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && holds(3, page, 5));
	for (i = 0; i < 3; i++)
		CHECK(state(i, page) == WIRE_PS_I && !holds(i, page, 5));
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->owner == 3);
	CHECK(st(1)->invalidations_sent == 3);
	teardown();
	return 0;
}

/* An upgrade with 3 other sharers: no data moves, 3 acks come back. */
static int test_upgrade_three_sharers(void)
{
	uint64_t page = 6; /* master: 6 % 4 = 2 */
	struct dsm_stats b;
	int i;

	CHECK(setup(4, 0) == 0);
	pump();
	fault(2, page, WR);
	pump();
	store(2, page, 9);
	for (i = 0; i < 4; i++)
		if (i != 2) {
			fault(i, page, RD);
			pump();
		}
	b = *st(3);
	fault(3, page, WP);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && holds(3, page, 9));
	CHECK(st(3)->upgrade_faults - b.upgrade_faults == 1);
	CHECK(st(3)->pages_received == b.pages_received);
	/* REQ + DONE out; GRANT + 3 INV_ACKs in. */
	CHECK(st(3)->msgs_sent - b.msgs_sent == 2);
	CHECK(st(3)->msgs_received - b.msgs_received == 4);
	for (i = 0; i < 3; i++)
		CHECK(state(i, page) == WIRE_PS_I);
	teardown();
	return 0;
}

/* Stepwise: the upgrade above, with each sharer's ack held back in turn.
 * While any ack (or the grant) is out, the writer's fault is not resolved
 * and its copy is not writable; the sharers hold nothing any more. */
static int test_upgrade_waits_for_each_ack(void)
{
	uint64_t page = 6; /* master: 2 */

	for (int late = 0; late < 3; late++) {
		CHECK(setup(4, 0) == 0);
		pump();
		fault(2, page, WR);
		pump();
		store(2, page, 9);
		for (int i = 0; i < 3; i++) {
			fault(i, page, RD);
			pump();
		}
		xport_mock_hold(tc.f, late, 3, true);
		fault(3, page, WP);
		pump();
		CHECK(busy(3, page) && state(3, page) != WIRE_PS_M);
		/* Node 2, the master, drops its own copy for its grant. */
		CHECK(xport_mock_pending(tc.d[3].x, late, late == 2 ?
					 WIRE_DSM_GRANT : WIRE_DSM_INV_ACK) ==
		      1);
		for (int i = 0; i < 3; i++)
			CHECK(state(i, page) == WIRE_PS_I);
		CHECK(entry(page)->busy); /* no DONE: nothing else served */
		xport_mock_hold(tc.f, late, 3, false);
		pump();
		CHECK(!busy(3, page) && state(3, page) == WIRE_PS_M &&
		      holds(3, page, 9));
		CHECK(!entry(page)->busy && entry(page)->owner == 3);
		teardown();
	}
	return 0;
}

/* Stepwise: one event at a time, in an order chosen here, a reader never
 * maps a page older than the last write.  Node 1 writes page 4 (master 1)
 * while node 2 reads it and node 0 writes it after; after every single
 * delivery, every node whose fault is over and that holds the page holds
 * the last value written. */
static int one_event(int n)
{
	int moved = 0;

	while (node_run_self(&tc.d[n]))
		moved++;
	for (int from = 0; from < tc.n && !moved; from++)
		if (xport_mock_step_from(tc.d[n].x, from) >= 0)
			moved++;
	return moved;
}

static int test_reader_never_stale(void)
{
	uint64_t page = 4; /* master 1 of 3 */
	uint64_t last = 0;
	static const int orders[][3] = {
		{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1},
	};

	for (unsigned o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
		bool w0 = false;

		CHECK(setup(3, 0) == 0);
		pump();
		fault(1, page, WR);
		pump();
		store(1, page, last = 21);
		fault(2, page, RD);
		fault(0, page, WR);
		for (int steps = 0; steps < 1000; steps++) {
			int moved = 0;

			for (int k = 0; k < 3; k++)
				moved += one_event(orders[o][k]);
			if (!w0 && !busy(0, page) &&
			    state(0, page) == WIRE_PS_M) {
				store(0, page, last = 22);
				w0 = true;
			}
			for (int n = 0; n < 3; n++)
				CHECK(busy(n, page) ||
				      state(n, page) == WIRE_PS_I ||
				      holds(n, page, last));
			if (!moved)
				break;
		}
		CHECK(w0 && !busy(2, page));
		teardown();
	}
	return 0;
}

/* Two sharers upgrade at once.  The master serves one; the other's copy is
 * invalidated while its own upgrade is in flight, and its upgrade is then
 * served as a write miss, with the winner's data. */
static int test_upgrade_race(void)
{
	uint64_t page = 3; /* master: 0 */
	uint64_t pages[3];
	int winner, loser;

	CHECK(setup(3, 0) == 0);
	pump();
	fault(1, page, WR);
	pump();
	store(1, page, 31);
	fault(2, page, RD);
	pump();
	CHECK(state(1, page) == WIRE_PS_S && state(2, page) == WIRE_PS_S);
	for (int i = 0; i < 3; i++)
		pages[i] = st(i)->pages_received;
	fault(1, page, WP);
	fault(2, page, WP);
	CHECK(busy(1, page) && busy(2, page));
	pump();
	/* Served in turn: the winner upgraded first; the loser, whose copy
	 * was invalidated meanwhile, then got the page with the data and
	 * owns it now. */
	loser = state(1, page) == WIRE_PS_M ? 1 : 2;
	winner = 3 - loser;
	CHECK(state(loser, page) == WIRE_PS_M);
	CHECK(state(winner, page) == WIRE_PS_I);
	CHECK(holds(loser, page, 31));
	CHECK(st(loser)->invalidations_received >= 1);
	CHECK(st(loser)->pages_received - pages[loser] == 1);
	CHECK(st(winner)->pages_received == pages[winner]);
	CHECK(entry(page)->owner == loser && entry(page)->version == 3);
	CHECK(!busy(1, page) && !busy(2, page));
	teardown();
	return 0;
}

/* Requests for one page queue at its master and are served one by one;
 * the last writer ends up with the page and every write is kept. */
static int test_queue_serialises(void)
{
	uint64_t page = 7; /* master: 7 % 3 = 1 */
	int i;

	CHECK(setup(3, 0) == 0);
	pump();
	for (i = 0; i < 3; i++)
		fault(i, page, WR);
	pump();
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->version == 3);
	for (i = 0; i < 3; i++)
		CHECK(st(i)->write_faults == 1 && !busy(i, page));
	CHECK(state(entry(page)->owner, page) == WIRE_PS_M);
	store(entry(page)->owner, page, 70);
	fault((entry(page)->owner + 1) % 3, page, RD);
	pump();
	CHECK(holds((entry(page)->owner + 1) % 3, page, 70));
	teardown();
	return 0;
}

/* A freshly granted page is kept for the hold time: an invalidation that
 * arrives meanwhile waits, then goes through. */
static int test_hold_time(void)
{
	uint64_t page = 4; /* master: 1 */

	CHECK(setup(3, 20000) == 0);
	pump();
	fault(0, page, RD);
	pump();
	CHECK(state(0, page) == WIRE_PS_S);
	fault(2, page, WR);
	pump();
	CHECK(st(0)->held_back == 1);
	CHECK(state(0, page) == WIRE_PS_S && busy(2, page));
	advance(25);
	pump();
	CHECK(state(0, page) == WIRE_PS_I && state(2, page) == WIRE_PS_M);
	CHECK(st(0)->held_back == 0 && !busy(2, page));
	teardown();
	return 0;
}

/* Registered buffers give peers only what they are for: a holder may
 * WRITE a page into a receive slot, and nothing else.  A peer's READ of
 * the receive slots or the send slots, or a WRITE into the send slots,
 * fails as an HCA fails it (the mock checks access as the NIC does), and
 * touches nothing. */
static int test_buffers_least_privilege(void)
{
	static unsigned char mine[WIRE_SLOT_SIZE], probe[WIRE_SLOT_SIZE];
	struct page_state *ps;
	struct xport_mr mr, pmr;
	struct xport *x2;

	CHECK(setup(3, 0) == 0);
	pump();
	x2 = tc.d[2].x;
	ps = tc.d[1].page;
	memset(mine, 0x5a, sizeof(mine));
	CHECK(xport_reg_mr(x2, mine, sizeof(mine), XPORT_MR_LOCAL, &mr) == 0);
	CHECK(xport_reg_mr(x2, probe, sizeof(probe), XPORT_MR_LOCAL,
			   &pmr) == 0);
	memset(ps->send_buf, 0, WIRE_SLOT_SIZE);
	memset(ps->recv_buf, 0x33, WIRE_SLOT_SIZE);
	xport_write_imm(x2, 1, &mr, 0, (uint64_t)(uintptr_t)ps->send_buf,
			ps->send_mr.rkey, WIRE_SLOT_SIZE, 0, 1);
	xport_read(x2, 1, &pmr, 0, (uint64_t)(uintptr_t)ps->recv_buf,
		   ps->recv_mr.rkey, WIRE_SLOT_SIZE, 2);
	xport_read(x2, 1, &pmr, 0, (uint64_t)(uintptr_t)ps->send_buf,
		   ps->send_mr.rkey, WIRE_SLOT_SIZE, 3);
	pump();
	for (size_t i = 0; i < WIRE_SLOT_SIZE; i++) {
		CHECK(((unsigned char *)ps->send_buf)[i] == 0);
		CHECK(probe[i] == 0);
	}
	xport_dereg_mr(x2, &mr);
	xport_dereg_mr(x2, &pmr);
	return 0;
}

/* Well-formed messages that make no sense here are dropped and counted;
 * nothing changes. */
static int test_bad_messages(void)
{
	struct xport *x2;
	struct wire_dsm_req req = {.access = WIRE_ACC_READ};
	struct wire_dsm_grant g = {.page = 4, .state = WIRE_PS_M};
	struct wire_dsm_fwd f = {.page = 4, .requester = 2};
	struct wire_dsm_done done = {.page = 4};
	struct wire_dsm_ack ack = {.page = 4};
	struct wire_trailer tr = {.magic = WIRE_TRAILER_MAGIC, .page = 4};
	static char junk[WIRE_SLOT_SIZE];
	struct xport_mr mr;
	uint64_t bad;

	CHECK(setup(3, 0) == 0);
	pump();
	x2 = tc.d[2].x;
	bad = st(1)->bad_msgs;
	req.page = ARENA / WIRE_PAGE_SIZE; /* beyond the arena */
	xport_send(x2, 1, WIRE_DSM_REQ, 1, &req, sizeof(req));
	req.page = 3;                      /* mastered by node 0 */
	xport_send(x2, 1, WIRE_DSM_REQ, 2, &req, sizeof(req));
	req.page = 4;
	req.access = 7;                    /* no such access */
	xport_send(x2, 1, WIRE_DSM_REQ, 3, &req, sizeof(req));
	xport_send(x2, 1, WIRE_DSM_DONE, 4, &done, sizeof(done));
	xport_send(x2, 1, WIRE_DSM_GRANT, 5, &g, sizeof(g));
	xport_send(x2, 1, WIRE_DSM_INV_ACK, 6, &ack, sizeof(ack));
	/* node 2 is not the master of page 4 */
	xport_send(x2, 1, WIRE_DSM_FWD, 7, &f, sizeof(f));
	pump();
	CHECK(st(1)->bad_msgs - bad == 7);
	CHECK(entry(4) == NULL || (!entry(4)->busy && !entry(4)->state));
	/* Page data for a slot that expects none, and for no slot. */
	memcpy(junk + WIRE_PAGE_SIZE, &tr, sizeof(tr));
	CHECK(xport_reg_mr(x2, junk, sizeof(junk), XPORT_MR_LOCAL, &mr) == 0);
	xport_write_imm(x2, 1, &mr, 0,
			(uint64_t)(uintptr_t)tc.d[1].page->recv_buf,
			tc.d[1].page->recv_mr.rkey, WIRE_SLOT_SIZE,
			PAGE_IMM_BIT | 0, 1);
	xport_write_imm(x2, 1, &mr, 0,
			(uint64_t)(uintptr_t)tc.d[1].page->recv_buf,
			tc.d[1].page->recv_mr.rkey, WIRE_SLOT_SIZE,
			PAGE_IMM_BIT | 0xffff, 2);
	pump();
	CHECK(st(1)->bad_msgs - bad == 9);
	CHECK(state(1, 4) == WIRE_PS_I);
	/* And the protocol still works. */
	fault(2, 4, WR);
	pump();
	CHECK(state(2, 4) == WIRE_PS_M);
	xport_dereg_mr(x2, &mr);
	teardown();
	return 0;
}

/* A master dies with a fault waiting on it: the fault fails (the process
 * would get SIGBUS) instead of waiting forever, and so does every later
 * fault on a page it mastered; other pages carry on. */
static int test_master_dies(void)
{
	unsigned free_slots;
	uint64_t asked;

	CHECK(setup(3, 0) == 0);
	pump();
	fault(0, 4, RD); /* master 1 */
	CHECK(busy(0, 4));
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	pump();
	CHECK(tc.d[0].members[1].state == WIRE_MEMBER_DEAD);
	CHECK(!busy(0, 4) && state(0, 4) == WIRE_PS_I);
	CHECK(st(0)->lost_faults == 1);
	free_slots = tc.d[0].page->nfree_slots;
	asked = st(0)->who_has_broadcasts;
	fault(0, 7, WR); /* master 1 as well: nobody else masters it */
	CHECK(busy(0, 7));
	pump();
	CHECK(st(0)->who_has_broadcasts == asked + 1);
	CHECK(st(0)->lost_faults == 2 && !busy(0, 7));
	CHECK(tc.d[0].page->nfree_slots == free_slots);
	fault(0, 5, WR); /* master 2, alive */
	pump();
	CHECK(state(0, 5) == WIRE_PS_M && st(0)->lost_faults == 2);
	teardown();
	return 0;
}

/* The requester dies with its write open, after the owner handed the page
 * over to it: the entry is freed, and the page, whose only copy went to the
 * dead node, is lost: a later read fails rather than waits. */
static int test_requester_dies(void)
{
	CHECK(setup(3, 0) == 0);
	pump();
	fault(0, 4, WR); /* master 1 */
	pump();
	fault(2, 4, WR);
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	CHECK(entry(4)->state == DIR_LOST && !entry(4)->busy);
	CHECK(state(0, 4) == WIRE_PS_I);
	fault(0, 4, RD);
	pump();
	CHECK(st(0)->lost_faults == 1 && !busy(0, 4));
	teardown();
	return 0;
}

/* The node chosen to send the page dies: the reader gives its transaction
 * up and asks again, and another sharer sends the page. */
static int test_supplier_dies(void)
{
	uint64_t page = 5; /* master 1 */

	CHECK(setup(4, 0) == 0);
	pump();
	fault(0, page, WR);
	pump();
	store(0, page, 55);
	fault(2, page, RD);
	pump();
	CHECK(entry(page)->sharers == 5);
	fault(3, page, RD); /* FWD goes to node 0, the lowest sharer */
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	pump();
	CHECK(xport_mock_sent(tc.d[1].x, 3, WIRE_DSM_LOST) == 1);
	CHECK(xport_mock_sent(tc.d[3].x, 1, WIRE_DSM_REQ) == 2);
	CHECK(state(3, page) == WIRE_PS_S && holds(3, page, 55));
	CHECK(st(3)->lost_faults == 0 && !busy(3, page));
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 12);
	teardown();
	return 0;
}

/* A sharer dies before it acknowledged an invalidation: the master counts
 * its ack for it, once, and the upgrade completes. */
static int test_sharer_dies_before_ack(void)
{
	uint64_t page = 5; /* master 1 */
	int i;

	CHECK(setup(4, 0) == 0);
	pump();
	fault(2, page, WR);
	pump();
	store(2, page, 25);
	for (i = 0; i < 4; i++)
		if (i != 2) {
			fault(i, page, RD);
			pump();
		}
	fault(3, page, WP);
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	pump();
	CHECK(xport_mock_sent(tc.d[1].x, 3, WIRE_DSM_LOST) == 1);
	CHECK(state(3, page) == WIRE_PS_M && holds(3, page, 25));
	CHECK(!busy(3, page) && st(3)->lost_faults == 0);
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->owner == 3);
	teardown();
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Reads from a holder (DSM_PEER_REQ)                                     */

/* Deliver what one node has received, and nothing else. */
static void step(int node)
{
	while (node_run_self(&tc.d[node]))
		;
	xport_progress(tc.d[node].x);
}

/* `reader` reads the page, then `writer` writes it: the reader holds
 * nothing and heard that `writer` writes it. */
static void hear_writer(int reader, int writer, uint64_t page)
{
	fault(reader, page, RD);
	pump();
	fault(writer, page, WR);
	pump();
}

/* Page 4 (master 1 of 3, or page 5, master 1 of 4): node 0 wrote it
 * (pattern `seed`) after node 2 had read it, so node 2 holds nothing and
 * heard that node 0 writes it. */
static void peer_stage(uint64_t page, uint64_t seed)
{
	fault(0, page, WR);
	pump();
	store(0, page, seed - 1);
	fault(2, page, RD);
	pump();
	fault(0, page, WP);
	pump();
	store(0, page, seed);
}

/* Node 2 reads the staged page from node 0 directly; with `lose_notice`,
 * its word to the master (DSM_SHARED) is lost. */
static void peer_read_from_0(uint64_t page, bool lose_notice)
{
	xport_mock_cut(tc.f, 2, 1, lose_notice);
	fault(2, page, RD);
	pump();
	xport_mock_cut(tc.f, 2, 1, false);
}

/* A read miss goes to the last writer, not the master: the request out,
 * the page in, and the master hears of it only once the page is
 * installed (DSM_SHARED instead of DONE), and lists the reader.  A later
 * write invalidates the reader directly. */
static int test_peer_read(void)
{
	uint64_t page = 4;
	struct dsm_stats b0, b1, b2;
	unsigned long inv;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 11);
	CHECK(state(0, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	b0 = *st(0);
	b1 = *st(1);
	b2 = *st(2);
	fault(2, page, RD);
	pump();
	CHECK(state(2, page) == WIRE_PS_S && holds(2, page, 11));
	CHECK(state(0, page) == WIRE_PS_S && holds(0, page, 11));
	CHECK(st(2)->peer_requests - b2.peer_requests == 1);
	CHECK(st(2)->msgs_sent - b2.msgs_sent == 2); /* PEER_REQ, SHARED */
	CHECK(xport_mock_sent(tc.d[2].x, 1, WIRE_DSM_SHARED) == 1);
	CHECK(xport_mock_sent(tc.d[2].x, 1, WIRE_DSM_DONE) ==
	      1); /* the stage's read only */
	CHECK(st(2)->msgs_received - b2.msgs_received == 0);
	CHECK(st(2)->pages_received - b2.pages_received == 1);
	CHECK(st(0)->peer_served - b0.peer_served == 1);
	CHECK(st(0)->downgrades - b0.downgrades == 1);
	CHECK(st(1)->msgs_received - b1.msgs_received == 1); /* SHARED */
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 5);
	CHECK(!entry(page)->busy && !busy(2, page));
	/* Node 1 writes: the master invalidates node 2 itself; node 0,
	 * told so by the FWD's `covered`, passes nothing on. */
	b1 = *st(1);
	b2 = *st(2);
	inv = xport_mock_sent(tc.d[1].x, 2, WIRE_DSM_INV);
	fault(1, page, WR);
	pump();
	CHECK(state(1, page) == WIRE_PS_M && holds(1, page, 11));
	CHECK(state(0, page) == WIRE_PS_I && state(2, page) == WIRE_PS_I);
	CHECK(st(2)->invalidations_received - b2.invalidations_received == 1);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 0);
	CHECK(xport_mock_sent(tc.d[1].x, 2, WIRE_DSM_INV) - inv == 1);
	CHECK(!busy(1, page) && !entry(page)->busy);
	teardown();
	return 0;
}

/* The master never hears of the reader (its notice was lost, as when the
 * entry moves meanwhile): a later write still takes the reader's copy,
 * through the writer, which the master asked and which passes the
 * invalidation on; the new writer waits for that ack too. */
static int test_peer_notice_lost(void)
{
	uint64_t page = 4;
	struct dsm_stats b1, b2;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 12);
	peer_read_from_0(page, true);
	CHECK(state(2, page) == WIRE_PS_S && holds(2, page, 12));
	CHECK(st(0)->peer_served == 1);
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->owner == 0);
	b1 = *st(1);
	b2 = *st(2);
	fault(1, page, WR);
	pump();
	CHECK(state(1, page) == WIRE_PS_M && holds(1, page, 12));
	CHECK(state(0, page) == WIRE_PS_I && state(2, page) == WIRE_PS_I);
	CHECK(st(2)->invalidations_received - b2.invalidations_received == 1);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 1);
	CHECK(st(1)->msgs_received - b1.msgs_received == 1); /* the ack */
	CHECK(!busy(1, page) && !entry(page)->busy);
	teardown();
	return 0;
}

/* The notice reaches the master after a write: the reader is not listed
 * (the write took its copy through the holder). */
static int test_peer_notice_late(void)
{
	uint64_t page = 4;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 13);
	fault(2, page, RD);
	step(0); /* node 0 serves it; DSM_SHARED is on its way to node 1 */
	step(2);
	CHECK(state(2, page) == WIRE_PS_S && holds(2, page, 13));
	fault(1, page, WR); /* served before the notice is read */
	pump();
	CHECK(state(1, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 1);
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->owner == 1);
	CHECK(!busy(1, page) && !entry(page)->busy);
	teardown();
	return 0;
}

/* The master lists a reader only once it has installed its copy: a read
 * by another node, served from a listed sharer, is not sent to a reader
 * whose page is still on its way (its FWD would find nothing). */
static int test_peer_listed_once_installed(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	hear_writer(0, 2, page);
	store(2, page, 15);
	fault(0, page, RD); /* to node 2 directly */
	step(2);            /* node 2 sends the page */
	fault(3, page, RD); /* through the master, before node 0 has it */
	step(1);
	pump();
	CHECK(holds(0, page, 15) && holds(3, page, 15));
	CHECK(st(2)->peer_served == 1 && st(0)->bad_msgs == 0);
	CHECK(!busy(0, page) && !busy(3, page) && !entry(page)->busy);
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 13);
	teardown();
	return 0;
}

/* The holder writes again: it takes back the copy it gave (the master,
 * which never heard of it, grants the write alone); the reader's next
 * miss goes to it again and sees the new data. */
static int test_peer_writer_takes_back(void)
{
	uint64_t page = 4;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 21);
	peer_read_from_0(page, true);
	CHECK(state(2, page) == WIRE_PS_S && st(2)->peer_requests == 1);
	fault(0, page, WP);
	pump();
	CHECK(state(0, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	CHECK(!busy(0, page) && !entry(page)->busy);
	CHECK(entry(page)->owner == 0);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 1);
	store(0, page, 22);
	fault(2, page, RD);
	pump();
	CHECK(st(2)->peer_requests == 2 && holds(2, page, 22));
	CHECK(st(0)->peer_served == 2);
	teardown();
	return 0;
}

/* The reader writes the copy it got directly, which the master does not
 * list (the notice was lost): its copy's version says it is current, so
 * the owner only drops its own; no page moves.  The new owner then serves
 * the old one's read miss. */
static int test_peer_reader_writes(void)
{
	uint64_t page = 4;
	uint64_t pages;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 31);
	peer_read_from_0(page, true);
	pages = st(2)->pages_received;
	fault(2, page, WP);
	pump();
	CHECK(state(2, page) == WIRE_PS_M && holds(2, page, 31));
	CHECK(st(2)->pages_received == pages && st(2)->upgrade_faults == 1);
	CHECK(state(0, page) == WIRE_PS_I && !busy(2, page));
	CHECK(entry(page)->owner == 2 && !entry(page)->busy);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 0);
	store(2, page, 32);
	fault(0, page, RD);
	pump();
	CHECK(st(0)->peer_requests == 1 && st(2)->peer_served == 1);
	CHECK(state(0, page) == WIRE_PS_S && holds(0, page, 32));
	teardown();
	return 0;
}

/* The holder and a reader it gave the page directly (unknown to the
 * master) upgrade at once, in either order: one wins, the other gets the
 * winner's data, and no copy is lost on the way (the reader's copy goes
 * only once the holder's write is served). */
static int test_peer_upgrade_race(void)
{
	uint64_t page = 4;

	for (int first = 0; first < 2; first++) {
		int a = first ? 2 : 0, b = first ? 0 : 2, w;

		CHECK(setup(3, 0) == 0);
		pump();
		peer_stage(page, 35);
		peer_read_from_0(page, true);
		fault(a, page, WP);
		fault(b, page, WP);
		pump();
		w = state(0, page) == WIRE_PS_M ? 0 : 2;
		CHECK(state(w, page) == WIRE_PS_M && holds(w, page, 35));
		CHECK(state(2 - w, page) == WIRE_PS_I);
		CHECK(!busy(0, page) && !busy(2, page) && !entry(page)->busy);
		CHECK(entry(page)->owner == w && entry(page)->version == 4);
		teardown();
	}
	return 0;
}

/* A read sent to a holder busy with its own write of the page (as in a
 * ping-pong: the invalidation that made the reader miss came from that
 * write) waits for the write there and is then served directly, rather
 * than passed to the master to wait behind it. */
static int test_peer_waits_for_holder(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	fault(2, page, RD);
	fault(3, page, RD);
	pump();
	fault(0, page, WR); /* nodes 2 and 3 hear node 0 writes */
	pump();
	store(0, page, 17);
	fault(2, page, RD); /* node 2 from node 0 directly: node 0 is S */
	pump();
	fault(0, page, WP); /* node 0 writes again: its upgrade is open */
	CHECK(busy(0, page));
	fault(3, page, RD); /* to node 0, which is busy */
	pump();
	CHECK(st(3)->peer_requests == 1 && st(0)->peer_passed == 0);
	CHECK(st(0)->peer_served == 2 && holds(3, page, 17));
	CHECK(state(0, page) == WIRE_PS_S && state(3, page) == WIRE_PS_S);
	CHECK(state(2, page) == WIRE_PS_I);
	CHECK(!busy(0, page) && !busy(3, page) && !entry(page)->busy);
	teardown();
	return 0;
}

/* A page granted less than --peer-hold-us ago is given to a reader
 * directly only once that time is over (its writer's thread may not have
 * stored yet). */
static int test_peer_hold(void)
{
	uint64_t page = 4;

	CHECK(setup(3, 0) == 0);
	pump();
	tc.d[0].page->peer_hold_us = 20000;
	peer_stage(page, 19);
	fault(2, page, RD);
	pump();
	CHECK(busy(2, page) && st(0)->peer_served == 0);
	CHECK(state(0, page) == WIRE_PS_M && st(0)->held_back == 1);
	advance(25);
	pump();
	CHECK(!busy(2, page) && holds(2, page, 19));
	CHECK(st(0)->peer_served == 1 && st(0)->held_back == 0);
	teardown();
	return 0;
}

/* The node asked no longer holds the page: it passes the request to the
 * master, which serves it as usual (DONE and all). */
static int test_peer_passed(void)
{
	uint64_t page = 4;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 41);
	fault(1, page, WR); /* node 0 loses it; node 2 does not hear */
	pump();
	store(1, page, 42);
	fault(2, page, RD);
	pump();
	CHECK(st(2)->peer_requests == 1 && st(0)->peer_passed == 1);
	CHECK(st(0)->peer_served == 0);
	CHECK(state(2, page) == WIRE_PS_S && holds(2, page, 42));
	CHECK(!busy(2, page) && !entry(page)->busy);
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 6);
	teardown();
	return 0;
}

/* The node asked passes the read on to the master, which dies with it
 * unread: the holder tells the reader it passed it (DSM_PASSED), so the
 * reader's transaction is an ordinary one, asked again on the death; the
 * entry died with its master and the page's only copy is not the
 * reader's: the fault fails, it does not hang.  (Before, the reader went
 * on waiting for the holder, alive and done with it: for ever.) */
static int test_peer_passed_master_dies(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 43);
	fault(3, page, WR); /* node 0 loses it; node 2 does not hear */
	pump();
	fault(2, page, RD);
	CHECK(busy(2, page));
	step(0); /* node 0 passes it on to node 1 and tells node 2 */
	CHECK(st(0)->peer_passed == 1);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_PASSED) == 1);
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	pump();
	CHECK(!busy(2, page) && st(2)->lost_faults == 1);
	CHECK(state(3, page) == WIRE_PS_M); /* the writer keeps its copy */
	teardown();
	return 0;
}

/* --peer-reads off: the same read miss goes to the master. */
static int test_peer_off(void)
{
	uint64_t page = 4;
	struct dsm_stats b2;

	tc_peer_off = true;
	CHECK(setup(3, 0) == 0);
	tc_peer_off = false;
	pump();
	peer_stage(page, 51);
	b2 = *st(2);
	fault(2, page, RD);
	pump();
	CHECK(holds(2, page, 51) && st(2)->peer_requests == 0);
	CHECK(st(2)->msgs_sent - b2.msgs_sent == 2); /* REQ, DONE */
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 5);
	teardown();
	return 0;
}

/* A reader that got the page directly dies before it acknowledges the
 * invalidation its holder passed on: the writer stops waiting for it. */
static int test_peer_reader_dies(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 61);
	peer_read_from_0(page, true);
	CHECK(st(0)->peer_served == 1);
	fault(3, page, WR);
	step(1); /* REQ: FWD+invalidate to node 0 */
	step(0); /* the page to node 3, the invalidation to node 2 */
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_DSM_INV) == 1);
	step(3); /* the page is in, but node 2's ack is owed */
	CHECK(busy(3, page));
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && holds(3, page, 61));
	CHECK(!busy(3, page) && !entry(page)->busy);
	teardown();
	return 0;
}

/* The holder asked dies before it answers: the reader asks the master,
 * which finds the page's only copy gone: the fault fails, it does not
 * hang. */
static int test_peer_holder_dies(void)
{
	uint64_t page = 5;

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 71);
	fault(2, page, RD);
	CHECK(busy(2, page));
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	pump();
	CHECK(!busy(2, page) && st(2)->lost_faults == 1);
	teardown();
	return 0;
}

/* The holder dies after the reader installed its copy but before the
 * master read the reader's notice: the master marks the page lost when it
 * hears of the death, then the notice names the page's last version, so
 * the reader's copy is the page: it is listed and serves the next reader.
 */
static int test_peer_holder_dies_after(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 73);
	fault(2, page, RD);
	step(0); /* node 0 serves it */
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	step(1); /* the master hears of the death first: lost */
	CHECK(entry(page)->state == DIR_LOST);
	pump();  /* node 2 installs; its DSM_SHARED reaches the master */
	CHECK(holds(2, page, 73) && st(2)->lost_faults == 0);
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 4);
	fault(3, page, RD);
	pump();
	CHECK(holds(3, page, 73) && st(3)->lost_faults == 0);
	teardown();
	return 0;
}

/* A transaction waits --dead-after-ms at most for a live node: node 2,
 * alive but cut off from node 1, never acks node 1's write (the master,
 * node 0, sends the page).  Past the
 * deadline node 1 says it waits (DSM_STUCK, with the acks it has); the
 * master declares node 2 dead, and node 1's write completes. */
static int test_stuck_write(void)
{
	uint64_t page = 3; /* master 0 of 3 */

	CHECK(setup(3, 0) == 0);
	pump();
	for (int i = 0; i < 3; i++)
		tc.d[i].cfg.dead_after_ms = 5000;
	fault(0, page, WR);
	pump();
	fault(2, page, RD);
	pump();
	CHECK(state(0, page) == WIRE_PS_S && state(2, page) == WIRE_PS_S);
	xport_mock_cut(tc.f, 2, 1, true);
	fault(1, page, WR);
	pump();
	CHECK(busy(1, page) && entry(page)->busy);
	fake_now += 4999;
	page_module.tick(&tc.d[1]);
	pump();
	CHECK(busy(1, page) && st(1)->stuck_waits == 0);
	fake_now += 1;
	page_module.tick(&tc.d[1]);
	pump();
	CHECK(st(1)->stuck_waits == 1 && st(0)->nodes_dead == 1);
	CHECK(tc.d[0].members[2].state == WIRE_MEMBER_DEAD);
	CHECK(!busy(1, page) && state(1, page) == WIRE_PS_M);
	CHECK(!entry(page)->busy && entry(page)->owner == 1);
	teardown();
	return 0;
}

/* A grant lost inside a node (nothing else was sent for it) is sent again
 * when the requester says it waits: node 1's write of a page nobody
 * holds; its grant from node 0 is lost. */
static int test_grant_lost(void)
{
	uint64_t page = 2; /* master 0 of 2 */

	CHECK(setup(2, 0) == 0);
	pump();
	tc.d[0].cfg.dead_after_ms = tc.d[1].cfg.dead_after_ms = 5000;
	fault(1, page, WR);
	step(1);
	xport_mock_cut(tc.f, 0, 1, true);
	step(0); /* served: the grant is lost */
	xport_mock_cut(tc.f, 0, 1, false);
	pump();
	CHECK(busy(1, page) && entry(page)->busy);
	fake_now += 5000;
	page_module.tick(&tc.d[1]);
	pump();
	CHECK(st(1)->stuck_waits == 1 && st(0)->nodes_dead == 0);
	CHECK(!busy(1, page) && state(1, page) == WIRE_PS_M);
	CHECK(!entry(page)->busy && entry(page)->owner == 1);
	teardown();
	return 0;
}

/* Acks relayed by a holder are known to the requester only: node 0 gave
 * node 2 the page directly (the master never heard: the notice was lost)
 * and writes it again; node 2, alive but cut off from node 0, never acks
 * the invalidation node 0 relays.  Past the deadline node 0 itself
 * declares node 2 dead, and its write completes. */
static int test_stuck_relayed_ack(void)
{
	uint64_t page = 4; /* master 1 of 3 */

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 21);
	peer_read_from_0(page, true);
	CHECK(state(2, page) == WIRE_PS_S && state(0, page) == WIRE_PS_S);
	tc.d[0].cfg.dead_after_ms = 5000;
	xport_mock_cut(tc.f, 2, 0, true);
	fault(0, page, WP);
	pump();
	CHECK(busy(0, page));
	fake_now += 5000;
	page_module.tick(&tc.d[0]);
	pump();
	CHECK(st(0)->stuck_waits == 1 && st(0)->nodes_dead == 1);
	CHECK(tc.d[0].members[2].state == WIRE_MEMBER_DEAD);
	CHECK(!busy(0, page) && state(0, page) == WIRE_PS_M);
	teardown();
	return 0;
}

/* A requester that keeps an entry busy (never sends DONE) is declared
 * dead once another waits behind it twice --dead-after-ms: node 2 is
 * granted the page but its DONE never reaches the master; node 1's
 * request waits behind it and says so. */
static int test_stuck_behind(void)
{
	uint64_t page = 3; /* master 0 of 3 */

	CHECK(setup(3, 0) == 0);
	pump();
	for (int i = 0; i < 3; i++)
		tc.d[i].cfg.dead_after_ms = 5000;
	fault(2, page, WR);
	step(2);
	step(0); /* granted */
	xport_mock_cut(tc.f, 2, 0, true);
	pump();
	CHECK(state(2, page) == WIRE_PS_M && entry(page)->busy);
	fault(1, page, RD);
	pump();
	CHECK(busy(1, page));
	for (int i = 0; i < 4 && st(0)->nodes_dead == 0; i++) {
		fake_now += 5000;
		page_module.tick(&tc.d[1]);
		pump();
	}
	CHECK(st(0)->nodes_dead == 1 &&
	      tc.d[0].members[2].state == WIRE_MEMBER_DEAD);
	/* The page's only copy died with node 2: node 1's fault fails. */
	CHECK(!busy(1, page) && st(1)->lost_faults == 1);
	teardown();
	return 0;
}

/* A fault on a page whose master died, with no live node left to ask:
 * the lookup ends at once, inside the fault's own call, and the fault
 * must already be waiting to hear it (it was queued after the request
 * went, and waited for ever on a transaction already closed). */
static int test_lookup_with_nobody(void)
{
	uint64_t page = 5; /* master 1 of 2 */

	CHECK(setup(2, 0) == 0);
	pump();
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	pump();
	fault(0, page, RD);
	CHECK(st(0)->lost_faults == 1 && !busy(0, page));
	teardown();
	return 0;
}

/* The holder dies after the reader installed its copy but before the
 * master read the reader's notice, and another sharer keeps the page:
 * the reader's copy is of the current version, so the notice lists it,
 * and the next write takes it.  (Before, the notice of a dead giver was
 * dropped: nobody knew of the reader's copy, and node 3's write was
 * granted while node 2 kept reading the old page.) */
static int test_peer_holder_dies_sharer_left(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 74);
	fault(3, page, RD); /* through the master: S at 0 and 3 */
	pump();
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 9);
	fault(2, page, RD);
	step(0); /* node 0 serves it directly */
	CHECK(st(0)->peer_served == 1);
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	step(1); /* the master hears of the death first */
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 8);
	pump();  /* node 2 installs; its notice names a dead giver */
	CHECK(holds(2, page, 74) && state(2, page) == WIRE_PS_S);
	CHECK(entry(page)->sharers == 12);
	fault(3, page, WP);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	teardown();
	return 0;
}

/* The entry's "a dead holder may have given copies nobody lists" moves
 * with it.  Node 2 reads from node 0 directly and its notice to the
 * master is lost; node 0 dies; the entry moves to node 3, which then
 * writes: every live node drops its copy, node 2's unlisted one too.
 * (Before, the new master knew nothing of it, and node 2 went on reading
 * the old page beside node 3's writes.) */
static int test_strays_move_with_entry(void)
{
	uint64_t page = 5; /* master 1 of 4 */
	struct dentry *e;

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 77);
	fault(3, page, RD); /* through the master: S at 0 and 3 */
	pump();
	xport_mock_cut(tc.f, 2, 1, true);
	fault(2, page, RD);
	step(0); /* node 0 serves it directly */
	CHECK(st(0)->peer_served == 1);
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	pump(); /* node 2 installs; its notice is lost */
	xport_mock_cut(tc.f, 2, 1, false);
	CHECK(holds(2, page, 77) && state(2, page) == WIRE_PS_S);
	e = dir_entry(&tc.d[1], page, false);
	CHECK(e && e->strays && !e->busy && !(e->sharers & 4));
	home_migrate(&tc.d[1], &home_page_kind, page, &e->h, 3);
	pump();
	e = dir_entry(&tc.d[3], page, false);
	CHECK(e && home_is_master(&tc.d[3], page, &e->h) && e->strays);
	fault(3, page, WP);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	teardown();
	return 0;
}

/* A sharer dies owing a write its ack, after it gave a reader the page
 * directly: the master passes the write's invalidation on in its place,
 * and the writer waits for that reader's ack too.  Page 4 (master 1 of
 * 3): node 2 writes, nodes 1 and 0 read, node 0 from node 2 directly (its
 * notice to the master held back); node 1 writes, and node 2 dies with the
 * invalidation unread.  (Before, node 1's write completed on the LOST
 * while node 0 still read the old page: fuzz_proto.) */
static int test_dead_sharer_gave_copies(void)
{
	uint64_t page = 4;

	CHECK(setup(3, 0) == 0);
	pump();
	fault(0, page, WR);
	pump();
	fault(2, page, WR); /* node 0 hears that node 2 writes */
	pump();
	store(2, page, 81);
	fault(1, page, RD);
	pump();
	xport_mock_hold(tc.f, 0, 1, true);
	fault(0, page, RD); /* from node 2 directly */
	pump();
	CHECK(st(2)->peer_served == 1 && holds(0, page, 81));
	fault(1, page, WP);
	while (node_run_self(&tc.d[1]))
		; /* served here: the INV to node 2 is out */
	CHECK(xport_mock_kill(tc.f, 2) == 0);
	CHECK(pump_within(1000));
	CHECK(!(state(1, page) == WIRE_PS_M && state(0, page) == WIRE_PS_S));
	CHECK(busy(1, page) && state(0, page) == WIRE_PS_I);
	xport_mock_hold(tc.f, 0, 1, false);
	CHECK(pump_within(1000));
	CHECK(!busy(1, page) && state(1, page) == WIRE_PS_M &&
	      holds(1, page, 81) && state(0, page) == WIRE_PS_I);
	teardown();
	return 0;
}

/* As above, but node 3 writes before the notice comes: a listed holder
 * died, so that write invalidates every live node (the dead one may have
 * given copies nobody lists), and the notice, of an older version, has
 * the master drop the reader's copy if it is still there (INV_STRAY). */
static int test_peer_holder_dies_then_write(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	peer_stage(page, 75);
	fault(3, page, RD);
	pump();
	fault(2, page, RD);
	step(0);
	CHECK(xport_mock_kill(tc.f, 0) == 0);
	step(1);
	CHECK(entry(page)->strays);
	fault(3, page, WP);
	step(3);
	step(1); /* the write is served before node 2's notice is read */
	CHECK(!entry(page)->strays);
	pump();
	CHECK(state(3, page) == WIRE_PS_M && state(2, page) == WIRE_PS_I);
	CHECK(entry(page)->state == WIRE_PS_M && entry(page)->owner == 3);
	teardown();
	return 0;
}

/* A copy got directly is not given on: the node holding it passes a read
 * miss sent to it to the master. */
static int test_peer_copy_not_given_on(void)
{
	uint64_t page = 5; /* master 1 of 4 */

	CHECK(setup(4, 0) == 0);
	pump();
	hear_writer(0, 2, page);
	fault(3, page, WR); /* node 2 hears node 3 writes */
	pump();
	store(3, page, 91);
	fault(2, page, RD); /* from node 3, directly */
	pump();
	CHECK(st(3)->peer_served == 1 && holds(2, page, 91));
	fault(0, page, RD); /* to node 2, which passes it on */
	pump();
	CHECK(st(0)->peer_requests == 1 && st(2)->peer_passed == 1);
	CHECK(st(2)->peer_served == 0 && holds(0, page, 91));
	CHECK(entry(page)->state == WIRE_PS_S && entry(page)->sharers == 13);
	teardown();
	return 0;
}

/* A relayed invalidation that comes after the node got the page again
 * (from that write or a later one: its copy's version is at least the
 * write's) only wants its ack: the copy stays.  An older copy goes. */
static int test_peer_late_relay(void)
{
	uint64_t page = 4;
	struct wire_dsm_inv inv = {.page = page, .requester = 0,
				   .flags = WIRE_INV_RELAYED};
	uint64_t v, acks;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(page, 23);
	peer_read_from_0(page, false);
	v = ((struct page *)ptab_get(&tc.d[2].page->pages, page, false))->version;
	acks = xport_mock_sent(tc.d[2].x, 0, WIRE_DSM_INV_ACK);
	inv.version = v;
	xport_send(tc.d[0].x, 2, WIRE_DSM_INV, 77, &inv, sizeof(inv));
	pump();
	CHECK(state(2, page) == WIRE_PS_S && holds(2, page, 23));
	CHECK(xport_mock_sent(tc.d[2].x, 0, WIRE_DSM_INV_ACK) == acks + 1);
	inv.version = v + 1;
	xport_send(tc.d[0].x, 2, WIRE_DSM_INV, 78, &inv, sizeof(inv));
	pump();
	CHECK(state(2, page) == WIRE_PS_I);
	CHECK(xport_mock_sent(tc.d[2].x, 0, WIRE_DSM_INV_ACK) == acks + 2);
	teardown();
	return 0;
}

/* Malformed peer requests, relayed invalidations and acks are dropped. */
static int test_peer_bad_messages(void)
{
	struct wire_dsm_req req = {.page = 4, .access = WIRE_ACC_WRITE,
				   .route = {.origin = 2}};
	struct wire_dsm_inv inv = {.page = 4, .requester = 0, .flags = 6};
	struct xport *x2;
	uint64_t bad;

	CHECK(setup(3, 0) == 0);
	pump();
	peer_stage(4, 81);
	x2 = tc.d[2].x;
	bad = st(0)->bad_msgs;
	xport_send(x2, 0, WIRE_DSM_PEER_REQ, 1, &req, sizeof(req));
	req.access = WIRE_ACC_READ;
	req.route.origin = 1;          /* not the sender */
	xport_send(x2, 0, WIRE_DSM_PEER_REQ, 2, &req, sizeof(req));
	req.route.origin = 2;
	req.route.hops = 1;            /* a holder never forwards it */
	xport_send(x2, 0, WIRE_DSM_PEER_REQ, 3, &req, sizeof(req));
	inv.requester = 2;
	xport_send(x2, 0, WIRE_DSM_INV, 4, &inv, sizeof(inv)); /* flags */
	pump();
	CHECK(st(0)->bad_msgs - bad == 4);
	CHECK(state(0, 4) == WIRE_PS_M && st(0)->peer_served == 0);
	teardown();
	return 0;
}

/* A holder writes a page only into a receive slot the requester announced
 * (PAGE_SLOTS, once, at connect), named by index: a forward naming a slot
 * beyond them is refused and nothing is written; a second announcement is
 * refused; a forward that comes before its requester's announcement waits
 * for it.  (Before, a message named the address and rkey to write to, and
 * the holder wrote there.) */
static int test_slots_by_index(void)
{
	struct wire_dsm_fwd f = {.page = 5, .requester = 0, .state = WIRE_PS_S,
				 .slot = {.index = 5000}};
	struct page_state *ps;
	struct wire_page_slots again = {.addr = 0x1000, .rkey = 1,
					.nslots = 1,
					.stride = PAGE_SLOT_STRIDE};
	uint64_t bad, addr0;

	CHECK(setup(3, 0) == 0);
	pump();
	ps = tc.d[1].page;
	CHECK(ps->peer_slots[0].known && ps->peer_slots[2].known);
	CHECK(ps->peer_slots[0].addr ==
	      (uint64_t)(uintptr_t)tc.d[0].page->recv_buf);
	fault(1, 5, WR); /* node 1 holds page 5 (master: node 2) in M */
	pump();
	store(1, 5, 9);
	CHECK(state(1, 5) == WIRE_PS_M);
	bad = st(1)->bad_msgs;
	xport_send(tc.d[2].x, 1, WIRE_DSM_FWD, 77, &f, sizeof(f));
	pump();
	CHECK(st(1)->bad_msgs - bad == 1);
	CHECK(state(1, 5) == WIRE_PS_M && st(1)->pages_sent == 0);
	addr0 = ps->peer_slots[0].addr;
	xport_send(tc.d[0].x, 1, WIRE_PAGE_SLOTS, 0, &again, sizeof(again));
	pump();
	CHECK(st(1)->bad_msgs - bad == 2 && ps->peer_slots[0].addr == addr0);
	/* As if node 0's announcement were still on its way. */
	ps->peer_slots[0].known = false;
	fault(0, 5, RD);
	pump();
	CHECK(ps->nslots_wait == 1 && state(0, 5) != WIRE_PS_S);
	holder_peer_up(&tc.d[0], 1);
	pump();
	CHECK(ps->nslots_wait == 0);
	CHECK(state(0, 5) == WIRE_PS_S && holds(0, 5, 9));
	return 0;
}

static const struct test_case tests[] = {
	{"first_touch_local", test_first_touch_local},
	{"slots_by_index", test_slots_by_index},
	{"read_miss_modified", test_read_miss_modified},
	{"write_miss_shared", test_write_miss_shared},
	{"upgrade_three_sharers", test_upgrade_three_sharers},
	{"upgrade_waits_for_each_ack", test_upgrade_waits_for_each_ack},
	{"reader_never_stale", test_reader_never_stale},
	{"upgrade_race", test_upgrade_race},
	{"queue_serialises", test_queue_serialises},
	{"hold_time", test_hold_time},
	{"bad_messages", test_bad_messages},
	{"buffers_least_privilege", test_buffers_least_privilege},
	{"master_dies", test_master_dies},
	{"requester_dies", test_requester_dies},
	{"supplier_dies", test_supplier_dies},
	{"sharer_dies_before_ack", test_sharer_dies_before_ack},
	{"peer_read", test_peer_read},
	{"peer_notice_lost", test_peer_notice_lost},
	{"peer_notice_late", test_peer_notice_late},
	{"peer_listed_once_installed", test_peer_listed_once_installed},
	{"peer_writer_takes_back", test_peer_writer_takes_back},
	{"peer_reader_writes", test_peer_reader_writes},
	{"peer_upgrade_race", test_peer_upgrade_race},
	{"peer_passed", test_peer_passed},
	{"peer_waits_for_holder", test_peer_waits_for_holder},
	{"peer_hold", test_peer_hold},
	{"peer_late_relay", test_peer_late_relay},
	{"peer_off", test_peer_off},
	{"peer_reader_dies", test_peer_reader_dies},
	{"peer_holder_dies", test_peer_holder_dies},
	{"peer_passed_master_dies", test_peer_passed_master_dies},
	{"peer_holder_dies_after", test_peer_holder_dies_after},
	{"peer_holder_dies_sharer_left", test_peer_holder_dies_sharer_left},
	{"lookup_with_nobody", test_lookup_with_nobody},
	{"stuck_write", test_stuck_write},
	{"stuck_behind", test_stuck_behind},
	{"grant_lost", test_grant_lost},
	{"stuck_relayed_ack", test_stuck_relayed_ack},
	{"peer_holder_dies_then_write", test_peer_holder_dies_then_write},
	{"strays_move_with_entry", test_strays_move_with_entry},
	{"dead_sharer_gave_copies", test_dead_sharer_gave_copies},
	{"peer_copy_not_given_on", test_peer_copy_not_given_on},
	{"peer_bad_messages", test_peer_bad_messages},
};

int main(int argc, char **argv)
{
	log_set_level(LOG_WARN);
	return test_run(tests, sizeof(tests) / sizeof(tests[0]), teardown,
			argc, argv);
}
