/* Unit tests of the credit-based flow control (common/credit.h), driven by
 * a simulated pair of endpoints whose sends, deliveries and processing are
 * interleaved at random.  Each endpoint follows the same rules as
 * xport_rdma.c: spend a credit per ordinary message, piggyback owed credits,
 * repost a buffer after processing, and send a credit-only message once
 * enough is owed.  The simulation fails on a receive-queue overrun (a
 * message arriving with no buffer posted) and on deadlock (nothing can move
 * but messages are still to be delivered). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "credit.h"
#include "harness.h"

#define MAXQ 100000

struct msg {
	unsigned credits;
	bool credit_only;
};

struct fifo {
	struct msg m[MAXQ];
	unsigned head, tail;
};

struct end {
	struct credit cr;
	unsigned posted;      /* receive buffers posted */
	unsigned backlog;     /* ordinary messages still to send */
	unsigned delivered;   /* ordinary messages processed here */
	unsigned credit_msgs; /* credit-only messages sent */
	unsigned max_credit_unconsumed;
	struct fifo rx;       /* arrived, not yet processed */
};

static struct end ends[2];
static struct fifo wire[2]; /* wire[i]: from end i to end 1-i */
static uint64_t seed;

static unsigned rnd(unsigned n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (unsigned)(seed % n);
}

static bool fifo_empty(const struct fifo *f) { return f->head == f->tail; }
static unsigned fifo_len(const struct fifo *f) { return f->tail - f->head; }

static void push(struct fifo *f, struct msg m) { f->m[f->tail++] = m; }
static struct msg pop(struct fifo *f) { return f->m[f->head++]; }

static void send_msg(int i, bool credit_only)
{
	struct msg m = {.credits = credit_piggyback(&ends[i].cr),
			.credit_only = credit_only};

	push(&wire[i], m);
	if (credit_only)
		ends[i].credit_msgs++;
}

/* xr_try_send(): backlog first, then a credit-only message if needed. */
static bool try_send(int i)
{
	struct end *e = &ends[i];
	bool moved = false;

	while (e->backlog && credit_take(&e->cr)) {
		e->backlog--;
		send_msg(i, false);
		moved = true;
	}
	if (credit_need_msg(&e->cr)) {
		send_msg(i, true);
		moved = true;
	}
	return moved;
}

/* Returns -1 on overrun. */
static int deliver(int i)
{
	struct end *dst = &ends[1 - i];
	unsigned credit_msgs = 0, k;

	if (dst->posted == 0)
		return -1;
	dst->posted--;
	push(&dst->rx, pop(&wire[i]));
	for (k = dst->rx.head; k < dst->rx.tail; k++)
		credit_msgs += dst->rx.m[k].credit_only;
	if (credit_msgs > dst->max_credit_unconsumed)
		dst->max_credit_unconsumed = credit_msgs;
	return 0;
}

/* Returns -1 if the peer returned credits it was not owed. */
static int process(int i)
{
	struct end *e = &ends[i];
	struct msg m = pop(&e->rx);

	if (!credit_grant(&e->cr, m.credits))
		return -1;
	e->posted++;
	if (!m.credit_only) {
		credit_reposted(&e->cr);
		e->delivered++;
	}
	try_send(i);
	return 0;
}

static int simulate(unsigned depth, unsigned burst0, unsigned burst1,
		    uint64_t s)
{
	unsigned steps = 0;
	int i;

	seed = s;
	for (i = 0; i < 2; i++) {
		ends[i] = (struct end){.posted = depth + CREDIT_SPARE};
		credit_init(&ends[i].cr, depth);
		wire[i].head = wire[i].tail = 0;
	}
	ends[0].backlog = burst0;
	ends[1].backlog = burst1;
	for (;;) {
		bool can[6] = {
			ends[0].backlog && ends[0].cr.avail,
			ends[1].backlog && ends[1].cr.avail,
			!fifo_empty(&wire[0]), !fifo_empty(&wire[1]),
			!fifo_empty(&ends[0].rx), !fifo_empty(&ends[1].rx),
		};
		unsigned n = 0, pick, k;

		for (k = 0; k < 6; k++)
			n += can[k];
		if (n == 0)
			break;
		pick = rnd(n);
		for (k = 0; k < 6; k++)
			if (can[k] && pick-- == 0)
				break;
		if (k < 2) {
			try_send((int)k);
		} else if (k < 4) {
			CHECKF(deliver((int)k - 2) == 0,
			       "receive queue overrun at node %u (depth %u)",
			       1 - (k - 2), depth);
		} else {
			CHECKF(process((int)k - 4) == 0,
			       "credit grant beyond what was owed");
		}
		CHECK(++steps < 50u * MAXQ);
		CHECK(fifo_len(&wire[0]) < MAXQ - 10 &&
		      fifo_len(&wire[1]) < MAXQ - 10);
	}
	/* Nothing can move: everything must have arrived. */
	CHECKF(ends[1].delivered == burst0 && ends[0].delivered == burst1,
	       "deadlock: delivered %u/%u and %u/%u (depth %u)",
	       ends[1].delivered, burst0, ends[0].delivered, burst1, depth);
	CHECK(ends[0].max_credit_unconsumed <= CREDIT_SPARE);
	CHECK(ends[1].max_credit_unconsumed <= CREDIT_SPARE);
	return 0;
}

static int test_burst_one_way(void)
{
	static const unsigned depths[] = {4, 5, 7, 16, 32};

	for (unsigned d = 0; d < 5; d++)
		for (uint64_t s = 1; s <= 20; s++)
			if (simulate(depths[d], 10 * depths[d], 0, s * 7919))
				return 1;
	return 0;
}

static int test_burst_both_ways(void)
{
	static const unsigned depths[] = {4, 5, 7, 16, 32};

	for (unsigned d = 0; d < 5; d++)
		for (uint64_t s = 1; s <= 20; s++)
			if (simulate(depths[d], 10 * depths[d] + 3,
				     8 * depths[d] + 1, s * 104729))
				return 1;
	return 0;
}

/* A one-message exchange returns its credit lazily (piggyback or at the
 * threshold), never by a storm of credit-only messages. */
static int test_few_credit_msgs(void)
{
	CHECK(simulate(32, 3200, 0, 99) == 0);
	/* At most one credit-only message per depth/2 messages received. */
	CHECK(ends[1].credit_msgs <= 3200 / 16 + 1);
	CHECK(ends[0].credit_msgs == 0);
	return 0;
}

static int test_grant_bounds(void)
{
	struct credit c;

	credit_init(&c, 8);
	CHECK(!credit_grant(&c, 1)); /* nothing outstanding yet */
	CHECK(credit_take(&c) && credit_take(&c));
	CHECK(c.avail == 6);
	CHECK(!credit_grant(&c, 3));
	CHECK(c.avail == 6);
	CHECK(credit_grant(&c, 2));
	CHECK(c.avail == 8);
	for (int i = 0; i < 8; i++)
		CHECK(credit_take(&c));
	CHECK(!credit_take(&c));
	return 0;
}

static int test_need_msg_threshold(void)
{
	struct credit c;

	credit_init(&c, 5);
	CHECK(!credit_need_msg(&c));
	credit_reposted(&c);
	credit_reposted(&c);
	CHECK(!credit_need_msg(&c));
	credit_reposted(&c); /* 3 == ceil(5/2) */
	CHECK(credit_need_msg(&c));
	CHECK(credit_piggyback(&c) == 3);
	CHECK(!credit_need_msg(&c));
	return 0;
}

static const struct test_case tests[] = {
	{"grant_bounds", test_grant_bounds},
	{"need_msg_threshold", test_need_msg_threshold},
	{"burst_one_way", test_burst_one_way},
	{"burst_both_ways", test_burst_both_ways},
	{"few_credit_msgs", test_few_credit_msgs},
};

TEST_MAIN(tests, NULL)
