/* Unit tests of dsmd's timers (daemon/core/timer.c): the heap alone, then
 * timers on a core driven by a fake clock. */
#include <stdlib.h>
#include <string.h>

#include "dsmd.h"
#include "harness.h"

static uint64_t now_us = 1000;

static uint64_t fake(const struct clock *c)
{
	(void)c;
	return now_us;
}

static const struct clock fake_clock = {.now_us = fake};

/* Heap order: (when, arming order), whatever the order of arming, with
 * removals from anywhere. */
static int test_heap_order(void)
{
	enum { N = 200 };
	struct timer t[N];
	struct timer_heap h = {0};
	uint64_t last_when = 0, last_seq = 0;
	unsigned i, n = 0;

	srand(7);
	for (i = 0; i < N; i++) {
		t[i] = (struct timer){.when_us = (uint64_t)(rand() % 50)};
		CHECK(timer_heap_add(&h, &t[i]) == 0 && timer_armed(&t[i]));
	}
	for (i = 0; i < N; i += 3) /* every third goes early */
		timer_heap_remove(&h, &t[i]);
	for (i = 0; i < N; i += 3)
		CHECK(!timer_armed(&t[i]));
	while (timer_heap_min(&h)) {
		struct timer *m = timer_heap_min(&h);

		CHECK(m->when_us > last_when ||
		      (m->when_us == last_when && m->seq > last_seq));
		last_when = m->when_us;
		last_seq = m->seq;
		timer_heap_remove(&h, m);
		n++;
	}
	CHECK(n == N - (N + 2) / 3);
	timer_heap_free(&h);
	return 0;
}

/* Arming an armed timer moves it; it is in the heap once. */
static int test_heap_rearm(void)
{
	struct timer a = {.when_us = 10}, b = {.when_us = 20};
	struct timer_heap h = {0};

	CHECK(timer_heap_add(&h, &a) == 0 && timer_heap_add(&h, &b) == 0);
	a.when_us = 30;
	CHECK(timer_heap_add(&h, &a) == 0);
	CHECK(h.n == 2 && timer_heap_min(&h) == &b);
	timer_heap_remove(&h, &b);
	CHECK(timer_heap_min(&h) == &a);
	timer_heap_free(&h);
	CHECK(!timer_armed(&a));
	return 0;
}

static struct dsmd d;
static bool d_up;
static int order[8], norder;

static void fired(struct dsmd *dd, struct timer *t)
{
	(void)dd;
	order[norder++] = (int)t->when_us / 100;
}

static void teardown(void)
{
	if (d_up)
		dsmd_fini(&d);
	d_up = false;
	memset(&d, 0, sizeof(d));
	norder = 0;
}

static int setup(void)
{
	d.cfg = (struct dsmd_config){.node = 0, .nnodes = 1};
	d_up = true;
	return dsmd_init(&d, &fake_clock);
}

/* timers_run runs what is due by the clock, in time order, and nothing
 * else; a stopped timer never runs. */
static int test_run_due(void)
{
	struct timer t[4] = {{0}};

	CHECK(setup() == 0);
	now_us = 1000;
	CHECK(timer_start(&d, &t[0], 1300, fired) == 0);
	CHECK(timer_start(&d, &t[1], 1100, fired) == 0);
	CHECK(timer_start(&d, &t[2], 1200, fired) == 0);
	CHECK(timer_start(&d, &t[3], 1150, fired) == 0);
	timer_stop(&d, &t[3]);
	timers_run(&d);
	CHECK(norder == 0);
	now_us = 1250;
	timers_run(&d);
	CHECK(norder == 2 && order[0] == 11 && order[1] == 12);
	CHECK(timer_armed(&t[0]) && !timer_armed(&t[1]));
	now_us = 5000;
	timers_run(&d);
	CHECK(norder == 3 && order[2] == 13 && !timer_armed(&t[3]));
	return 0;
}

/* A deferred message waits for its time, counted in held_back, then goes
 * to its handler: here none takes it, so dsmd counts it as unexpected. */
static int test_deferred_message(void)
{
	unsigned char buf[sizeof(struct wire_hdr) + 8];
	struct wire_msg m;
	size_t len;

	CHECK(setup() == 0);
	len = wire_build(buf, sizeof(buf), WIRE_HEARTBEAT, 0, NULL, 0);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_OK);
	now_us = 1000;
	CHECK(node_defer(&d, 0, &m, 1500) == 0);
	CHECK(d.st.held_back == 1 && d.bad_msgs == 0);
	now_us = 1499;
	timers_run(&d);
	CHECK(d.st.held_back == 1 && d.bad_msgs == 0);
	now_us = 1500;
	timers_run(&d);
	CHECK(d.st.held_back == 0 && d.bad_msgs == 1);
	return 0;
}

static const struct test_case tests[] = {
	{"heap_order", test_heap_order},
	{"heap_rearm", test_heap_rearm},
	{"run_due", test_run_due},
	{"deferred_message", test_deferred_message},
};

TEST_MAIN(tests, teardown)
