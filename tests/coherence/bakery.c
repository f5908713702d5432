/* Mutual exclusion by Lamport's bakery algorithm over plain shared
 * variables: it is correct exactly when memory is sequentially consistent.
 *
 *   coherence bakery [K [packed|spread]]
 *
 * choosing[] and number[] live in shared memory: packed, each array on one
 * page (every rank's entry falsely shared), or spread, every entry on its
 * own page.  Every rank enters the critical section K times; inside it
 * reads the counter, marks itself as the owner, lingers, checks it is still
 * the owner and writes counter + 1.  Two ranks inside at once lose an
 * increment or see each other's mark.  At the end every rank checks the
 * counter is K * size exactly.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bakery {
	volatile uint64_t **choosing, **number;
	volatile uint64_t *counter, *owner;
	int n, me;
};

static void layout(struct bakery *b, char *base, bool spread)
{
	int i;

	for (i = 0; i < b->n; i++) {
		if (spread) {
			b->choosing[i] = word_at(base, (size_t)i, 0);
			b->number[i] = word_at(base, (size_t)(b->n + i), 0);
		} else {
			b->choosing[i] = word_at(base, 0, (size_t)i);
			b->number[i] = word_at(base, 1, (size_t)i);
		}
	}
	b->counter = word_at(base, spread ? (size_t)(2 * b->n) : 2, 0);
	b->owner = b->counter + 1;
}

static void lock(struct bakery *b)
{
	uint64_t max = 0, mine, nj;
	int j;

	st64(b->choosing[b->me], 1);
	for (j = 0; j < b->n; j++) {
		nj = ld64(b->number[j]);
		if (nj > max)
			max = nj;
	}
	mine = max + 1;
	st64(b->number[b->me], mine);
	st64(b->choosing[b->me], 0);
	for (j = 0; j < b->n; j++) {
		struct backoff bo = {0};

		if (j == b->me)
			continue;
		while (ld64(b->choosing[j]))
			backoff(&bo);
		for (;;) {
			nj = ld64(b->number[j]);
			if (!nj || nj > mine || (nj == mine && j > b->me))
				break;
			backoff(&bo);
		}
	}
}

static void unlock(struct bakery *b)
{
	st64(b->number[b->me], 0);
}

static void critical(struct bakery *b, long i)
{
	uint64_t c = ld64(b->counter), o;

	st64(b->owner, (uint64_t)b->me + 1);
	spin_us(20);
	o = ld64(b->owner);
	if (o != (uint64_t)b->me + 1)
		coh_fail("mutual exclusion violated: in my critical section "
			 "(entry %ld) the owner became rank %lld", i,
			 (long long)o - 1);
	st64(b->counter, c + 1);
}

int mode_bakery(int argc, char **argv)
{
	struct bakery b = {0};
	long k = arg_long(argc, argv, 1, 100), i;
	bool spread = argc > 2 && !strcmp(argv[2], "spread");
	uint64_t want, got;
	char *base;
	double t0;

	if (argc > 2 && !spread && strcmp(argv[2], "packed"))
		coh_fail("layout '%s': packed or spread", argv[2]);
	coh_init();
	b.n = coh.size;
	b.me = coh.rank;
	b.choosing = calloc((size_t)b.n, sizeof(*b.choosing));
	b.number = calloc((size_t)b.n, sizeof(*b.number));
	if (!b.choosing || !b.number)
		coh_fail("out of memory");
	base = coh_alloc((size_t)(2 * b.n + 1) * PAGE);
	layout(&b, base, spread);
	if (coh.rank == 0)
		coh_say("%d ranks x %ld entries, %s layout, counter master %d",
			b.n, k, spread ? "spread" : "packed",
			coh_master((const void *)b.counter));
	coh_barrier();
	t0 = now_s();
	for (i = 0; i < k; i++) {
		coh_phase("bakery entry %ld of %ld", i, k);
		lock(&b);
		critical(&b, i);
		unlock(&b);
	}
	coh_phase("bakery final barrier");
	coh_barrier();
	want = (uint64_t)k * (uint64_t)b.n;
	got = ld64(b.counter);
	if (got != want)
		coh_fail("counter is %llu, want %llu (%ld entries by %d "
			 "ranks): increments lost, mutual exclusion failed",
			 (unsigned long long)got, (unsigned long long)want, k,
			 b.n);
	if (coh.rank == 0)
		coh_say("counter %llu as expected; %.1f s (%.1f ms per entry)",
			(unsigned long long)got, now_s() - t0,
			(now_s() - t0) * 1e3 / (double)want);
	coh_barrier();
	free(b.choosing);
	free(b.number);
	coh_finish();
	return 0;
}
