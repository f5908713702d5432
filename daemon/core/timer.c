/* Timers: one binary min-heap of armed timers, ordered by (when, arming
 * order), behind one timerfd.  Arming, disarming and re-arming are
 * O(log n); running the due ones costs O(log n) each.  The timerfd is set
 * lazily: timer_start() and timer_stop() only change the heap, and the
 * loop (loop.c) sets the fd to the heap's minimum before it sleeps, when
 * that changed, so a burst of timers costs one system call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "dsmd.h"

static bool before(const struct timer *a, const struct timer *b)
{
	return a->when_us < b->when_us ||
	       (a->when_us == b->when_us && a->seq < b->seq);
}

static void place(struct timer_heap *h, unsigned i, struct timer *t)
{
	h->v[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct timer_heap *h, unsigned i)
{
	struct timer *t = h->v[i];

	while (i > 0) {
		unsigned up = (i - 1) / 2;

		if (!before(t, h->v[up]))
			break;
		place(h, i, h->v[up]);
		i = up;
	}
	place(h, i, t);
}

static void sift_down(struct timer_heap *h, unsigned i)
{
	struct timer *t = h->v[i];

	for (;;) {
		unsigned l = 2 * i + 1, m = i;
		struct timer *least = t;

		if (l < h->n && before(h->v[l], least)) {
			m = l;
			least = h->v[l];
		}
		if (l + 1 < h->n && before(h->v[l + 1], least))
			m = l + 1;
		if (m == i)
			break;
		place(h, i, h->v[m]);
		i = m;
	}
	place(h, i, t);
}

int timer_heap_add(struct timer_heap *h, struct timer *t)
{
	if (t->slot)
		timer_heap_remove(h, t);
	if (h->n == h->cap) {
		unsigned cap = h->cap ? 2 * h->cap : 64;
		struct timer **v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	t->seq = ++h->seq;
	place(h, h->n++, t);
	sift_up(h, h->n - 1);
	return 0;
}

void timer_heap_remove(struct timer_heap *h, struct timer *t)
{
	unsigned i = t->slot - 1;
	struct timer *last;

	if (!t->slot)
		return;
	t->slot = 0;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	if (i > 0 && before(last, h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

void timer_heap_free(struct timer_heap *h)
{
	unsigned i;

	for (i = 0; i < h->n; i++)
		h->v[i]->slot = 0;
	free(h->v);
	*h = (struct timer_heap){0};
}

int timer_start(struct dsmd *d, struct timer *t, uint64_t when_us,
		void (*fn)(struct dsmd *, struct timer *))
{
	t->when_us = when_us;
	t->fn = fn;
	return timer_heap_add(&d->timers, t);
}

void timer_stop(struct dsmd *d, struct timer *t)
{
	timer_heap_remove(&d->timers, t);
}

void timers_run(struct dsmd *d)
{
	uint64_t now = dsmd_now_us(d);
	struct timer *t;

	/* A timer a callback arms for now or earlier runs in this pass too;
	 * one armed later waits for the fd. */
	while ((t = timer_heap_min(&d->timers)) && t->when_us <= now) {
		timer_heap_remove(&d->timers, t);
		t->fn(d, t);
	}
}
