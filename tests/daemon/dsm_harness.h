/* Several dsmd cores with every module (the real module table) and real
 * node memory (memfds), joined by the in-memory transport, for the unit
 * tests of the directory protocol (test_dsm.c), of where entries live
 * (test_home.c) and of the lock manager (test_lock.c).  Faults are injected
 * with page_fault() for a stand-in process whose userfaultfd ioctls go
 * nowhere; what a process would have written is written into the node's
 * memfd, and what a node holds is read back from it.  The transport is
 * pumped until nothing moves, so every interleaving is chosen by the test.
 * Time is the fake clock below: a test moves it (advance()) and runs the
 * timers that came due; nothing sleeps.  The cluster's placement policy is
 * tc_policy (zero: static placement, entries never move) as setup() finds
 * it.  teardown() is the suite's: the runner calls it after every test.
 */
#ifndef DSM_TEST_DSM_HARNESS_H
#define DSM_TEST_DSM_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dsmd.h"
#include "harness.h"
#include "log.h"
#include "mock_node.h"
#include "page/page.h"

#define NMAX 5
#define BASE 0x200000000000ull
#ifndef ARENA
#define ARENA (16u << 20)
#endif
#define RD 0
#define WR UFFD_PAGEFAULT_FLAG_WRITE
#define WP (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP)

/* The fake clock: fake_now milliseconds (tests move it). */
static uint64_t fake_now = 1000000;

static uint64_t tc_now_us(const struct clock *c)
{
	(void)c;
	return fake_now * 1000u;
}

static const struct clock tc_clock = {.now_us = tc_now_us};

static struct wire_policy tc_policy;
/* Read misses go to the master only (dsmd --peer-reads off). */
static bool tc_peer_off;

static struct {
	int n;
	struct xport_mock_fabric *f;
	struct dsmd d[NMAX];
	struct app app[NMAX];
} tc;

static inline void teardown(void)
{
	for (int i = 0; i < tc.n; i++) {
		mock_node_stop(&tc.d[i]);
		if (tc.app[i].uffd >= 0)
			close(tc.app[i].uffd);
	}
	if (tc.f)
		xport_mock_fabric_free(tc.f);
	memset(&tc, 0, sizeof(tc));
}

static inline int setup(int n, unsigned hold_us)
{
	int i;

	teardown();
	tc.f = xport_mock_fabric_new(n);
	if (!tc.f)
		return -1;
	for (i = 0; i < n; i++) {
		struct dsmd *d = &tc.d[i];

		d->cfg = (struct dsmd_config){
			.node = i, .nnodes = n, .heartbeat_ms = 100,
			.dead_after_ms = 100000, .join_timeout_ms = 100000,
			.ready_fd = -1, .arena_base = BASE,
			.arena_size = ARENA, .hold_us = hold_us,
			.policy = tc_policy,
			.peer_reads_off = tc_peer_off,
		};
		/* A stand-in process: its "userfaultfd" takes no ioctl. */
		tc.app[i] = (struct app){.uffd = open("/dev/null", O_RDONLY),
					 .pidfd = -1, .refs = 1};
		tc.n = i + 1; /* teardown() undoes this node from here on */
		if (mock_node_start(d, tc.f, 16, &tc_clock))
			return -1;
		list_init(&tc.app[i].link);
		cluster_start(d);
	}
	for (i = 0; i < n; i++)
		xport_connect_all(tc.d[i].x, NULL);
	return 0;
}

/* Deliver everything, self queues included, until nothing moves, at most
 * `rounds` rounds: false if it is still moving then (a livelock). */
static inline bool pump_within(unsigned rounds)
{
	for (unsigned r = 0; r < rounds; r++) {
		int moved = 0;

		for (int i = 0; i < tc.n; i++) {
			log_setup("dsmd", i); /* who logs what follows */
			while (node_run_self(&tc.d[i]))
				moved++;
			moved += xport_progress(tc.d[i].x);
		}
		if (!moved)
			return true;
	}
	return false;
}

/* The same, without a bound. */
static inline void pump(void)
{
	while (!pump_within(~0u))
		;
}

/* Move the clock on by ms and run every node's timers that came due. */
static inline void advance(uint64_t ms)
{
	fake_now += ms;
	for (int i = 0; i < tc.n; i++)
		timers_run(&tc.d[i]);
}

static inline void fault(int node, uint64_t page, uint32_t flags)
{
	page_fault(&tc.d[node], &tc.app[node], BASE + page * WIRE_PAGE_SIZE,
		   flags);
}

static inline int state(int node, uint64_t page)
{
	return page_state_of(&tc.d[node], page);
}

static inline const struct dsm_stats *st(int node)
{
	return &tc.d[node].st;
}

static inline struct dentry *entry(uint64_t page)
{
	return dir_entry(&tc.d[dir_master(&tc.d[0], page)], page, false);
}

/* What a process on `node` writes into the page (the node must hold M). */
static inline void store(int node, uint64_t page, uint64_t seed)
{
	char buf[WIRE_PAGE_SIZE];

	wire_pattern_fill(buf, sizeof(buf), seed);
	if (pwrite(tc.d[node].memfd, buf, sizeof(buf),
		   (off_t)(page * WIRE_PAGE_SIZE)) != (ssize_t)sizeof(buf))
		abort();
}

/* Whether the node's copy of the page is the pattern of `seed`. */
static inline bool holds(int node, uint64_t page, uint64_t seed)
{
	char buf[WIRE_PAGE_SIZE];

	if (pread(tc.d[node].memfd, buf, sizeof(buf),
		  (off_t)(page * WIRE_PAGE_SIZE)) != (ssize_t)sizeof(buf))
		return false;
	return wire_pattern_check(buf, sizeof(buf), seed) < 0;
}

static inline struct page *page_of(int node, uint64_t page)
{
	return ptab_get(&tc.d[node].page->pages, page, false);
}

static inline bool busy(int node, uint64_t page)
{
	struct page *pg = page_of(node, page);

	return pg && pg->busy;
}

#endif
