/* Unit tests of dsmd's membership logic (daemon/core/cluster.c) on the host:
 * several dsmd cores joined by the in-memory transport, driven by a fake
 * clock.  Formation, heartbeats, death by silence at exactly the configured
 * time, death by a lost connection, the join timeout, and messages that are
 * well-formed but out of place. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsmd.h"
#include "harness.h"
#include "mock_node.h"

#define HB_MS   100u
#define DEAD_MS 1000u
#define JOIN_MS 5000u

/* The fake clock the cores read: fake_now milliseconds. */
static uint64_t fake_now = 1000000;

static uint64_t fake_now_us(const struct clock *c)
{
	(void)c;
	return fake_now * 1000u;
}

static const struct clock fake_clock = {.now_us = fake_now_us};

struct tcluster {
	int n;
	struct xport_mock_fabric *f;
	struct dsmd d[4];
	int ready_rd[4];
};

static struct tcluster tc;

static void teardown(void);

static int setup(int n, int joiners)
{
	int i, p[2];

	teardown();
	tc.f = xport_mock_fabric_new(n);
	if (!tc.f)
		return -1;
	for (i = 0; i < n; i++) {
		struct dsmd *d = &tc.d[i];

		if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
			return -1;
		tc.ready_rd[i] = p[0];
		d->cfg = (struct dsmd_config){
			.node = i, .nnodes = n, .heartbeat_ms = HB_MS,
			.dead_after_ms = DEAD_MS, .join_timeout_ms = JOIN_MS,
			.ready_fd = p[1], .arena_base = 0x200000000000ull,
			.arena_size = 1u << 20,
		};
		tc.n = i + 1;
		/* Every module, as in dsmd: they hear of deaths too. */
		if (mock_node_start(d, tc.f, 8, &fake_clock))
			return -1;
		cluster_start(d);
	}
	for (i = 0; i < joiners; i++)
		xport_connect_all(tc.d[i].x, NULL);
	return 0;
}

static void teardown(void)
{
	for (int i = 0; i < tc.n; i++) {
		mock_node_stop(&tc.d[i]);
		close(tc.ready_rd[i]);
		if (tc.d[i].cfg.ready_fd >= 0)
			close(tc.d[i].cfg.ready_fd);
	}
	if (tc.f)
		xport_mock_fabric_free(tc.f);
	memset(&tc, 0, sizeof(tc));
}

/* Deliver until nothing moves. */
static void pump(void)
{
	int moved;

	do {
		moved = 0;
		for (int i = 0; i < tc.n; i++)
			moved += xport_progress(tc.d[i].x);
	} while (moved > 0);
}

/* Advance the clock by ms in tick-sized steps, ticking every live node. */
static void run_for(uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t += HB_MS / 4) {
		fake_now += HB_MS / 4;
		for (int i = 0; i < tc.n; i++)
			cluster_tick(&tc.d[i]);
		pump();
	}
}

static enum wire_member_state state(int at, int of)
{
	return tc.d[at].members[of].state;
}

static int test_forms(void)
{
	char buf[16] = {0};

	CHECK(setup(3, 3) == 0);
	pump();
	for (int i = 0; i < 3; i++) {
		CHECK(tc.d[i].formed);
		for (int j = 0; j < 3; j++)
			CHECK(state(i, j) == (i == j ? WIRE_MEMBER_SELF
						     : WIRE_MEMBER_ALIVE));
		CHECK(read(tc.ready_rd[i], buf, sizeof(buf) - 1) == 6);
		CHECK(!strcmp(buf, "ready\n"));
		CHECK(tc.d[i].cfg.ready_fd == -1); /* written once, closed */
	}
	teardown();
	return 0;
}

static int test_single_node_forms_at_once(void)
{
	CHECK(setup(1, 0) == 0);
	CHECK(tc.d[0].formed);
	teardown();
	return 0;
}

static int test_heartbeats(void)
{
	CHECK(setup(3, 3) == 0);
	pump();
	run_for(10 * HB_MS);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 3; j++) {
			unsigned long hb;

			if (i == j)
				continue;
			hb = xport_mock_sent(tc.d[i].x, j, WIRE_HEARTBEAT);
			CHECKF(hb >= 9 && hb <= 11, "node %d sent %lu heartbeats "
			       "to %d in 10 periods", i, hb, j);
			CHECK(state(i, j) == WIRE_MEMBER_ALIVE);
		}
	}
	teardown();
	return 0;
}

/* Node 2 goes silent (its sends vanish, like a stopped process): the
 * others call it dead after dead_after, not before, and not much later;
 * node 2 itself, still hearing them, keeps them alive. */
static int test_silent_peer_dies_on_time(void)
{
	uint64_t t0, waited = 0;

	CHECK(setup(3, 3) == 0);
	pump();
	run_for(3 * HB_MS);
	xport_mock_cut(tc.f, 2, 0, true);
	xport_mock_cut(tc.f, 2, 1, true);
	t0 = fake_now;
	while (state(0, 2) == WIRE_MEMBER_ALIVE && waited < 10 * DEAD_MS) {
		run_for(HB_MS / 4);
		waited = fake_now - t0;
	}
	CHECK(state(0, 2) == WIRE_MEMBER_DEAD);
	CHECK(state(1, 2) == WIRE_MEMBER_DEAD);
	/* The last heartbeat from 2 left at most one period before the cut. */
	CHECKF(waited > DEAD_MS - HB_MS && waited <= DEAD_MS + HB_MS,
	       "declared dead after %llu ms of silence, configured %u",
	       (unsigned long long)waited, DEAD_MS);
	CHECK(state(2, 0) == WIRE_MEMBER_ALIVE);
	CHECK(state(0, 1) == WIRE_MEMBER_ALIVE);
	/* Dead stays dead: no heartbeat goes to it any more. */
	unsigned long hb = xport_mock_sent(tc.d[0].x, 2, WIRE_HEARTBEAT);
	run_for(5 * HB_MS);
	CHECK(xport_mock_sent(tc.d[0].x, 2, WIRE_HEARTBEAT) == hb);
	teardown();
	return 0;
}

static int test_lost_connection_is_immediate(void)
{
	CHECK(setup(3, 3) == 0);
	pump();
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	pump();
	CHECK(state(0, 1) == WIRE_MEMBER_DEAD);
	CHECK(state(2, 1) == WIRE_MEMBER_DEAD);
	CHECK(state(0, 2) == WIRE_MEMBER_ALIVE);
	/* Counted once per death (dsm_stats.nodes_dead), on the survivors. */
	CHECK(tc.d[0].st.nodes_dead == 1 && tc.d[2].st.nodes_dead == 1);
	xport_mock_kill(tc.f, 1);
	pump();
	CHECK(tc.d[0].st.nodes_dead == 1);
	CHECK(!tc.d[0].failed && !tc.d[0].stop);
	teardown();
	return 0;
}

static int test_join_timeout(void)
{
	uint64_t t0;

	CHECK(setup(3, 2) == 0); /* node 2 never connects */
	t0 = fake_now;
	pump();
	CHECK(!tc.d[0].formed);
	while (!tc.d[0].stop && fake_now - t0 < 2 * JOIN_MS)
		run_for(HB_MS / 4);
	CHECK(tc.d[0].stop && tc.d[0].failed);
	/* Given up once the join time is over, not before; meanwhile the
	 * two that did connect kept each other alive with heartbeats. */
	CHECKF(fake_now - t0 > JOIN_MS && fake_now - t0 <= JOIN_MS + HB_MS,
	       "gave up after %llu ms, join timeout %u",
	       (unsigned long long)(fake_now - t0), JOIN_MS);
	CHECK(state(0, 1) == WIRE_MEMBER_ALIVE);
	teardown();
	return 0;
}

static int test_death_before_formation_fails(void)
{
	CHECK(setup(3, 2) == 0);
	pump();
	CHECK(xport_mock_kill(tc.f, 1) == 0);
	pump();
	CHECK(tc.d[0].stop && tc.d[0].failed);
	teardown();
	return 0;
}

/* Well-formed but out of place: an answer to a self-check nobody started
 * is counted and ignored; a malformed one never reaches dsmd. */
static int test_out_of_place_messages(void)
{
	struct wire_check_result r = {.session = 77};
	unsigned char junk[40];
	struct wire_counters c;

	CHECK(setup(2, 2) == 0);
	pump();
	CHECK(xport_send(tc.d[1].x, 0, WIRE_CHECK_DATA_DONE, 1, &r,
			 sizeof(r)) == 0);
	pump();
	CHECK(tc.d[0].bad_msgs == 1);
	memset(junk, 0x11, sizeof(junk));
	CHECK(xport_send_raw(tc.d[1].x, 0, junk, sizeof(junk)) == 0);
	pump();
	CHECK(tc.d[0].bad_msgs == 1);
	CHECK(xport_counters(tc.d[0].x, 1, &c) == 0 && c.bad_msgs == 1);
	CHECK(state(0, 1) == WIRE_MEMBER_ALIVE);
	teardown();
	return 0;
}

static const struct test_case tests[] = {
	{"forms", test_forms},
	{"single_node_forms_at_once", test_single_node_forms_at_once},
	{"heartbeats", test_heartbeats},
	{"silent_peer_dies_on_time", test_silent_peer_dies_on_time},
	{"lost_connection_is_immediate", test_lost_connection_is_immediate},
	{"join_timeout", test_join_timeout},
	{"death_before_formation_fails", test_death_before_formation_fails},
	{"out_of_place_messages", test_out_of_place_messages},
};

TEST_MAIN(tests, teardown)
