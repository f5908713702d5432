/* Randomised stress with a checker for lost and stale writes.
 *
 *   coherence stress [OPS [PAGES [SEED]]]
 *
 * A region of PAGES pages (default 64).  In every page, word j belongs to
 * rank j % size, and each rank uses HOT words of its own per page, so every
 * page is written by every rank and words are written again and again.
 * Each rank does OPS operations, half writes and half reads, at random:
 *   write: the rank's k-th write goes to its own word targets[k] (a
 *          sequence drawn from the rank's seed, which every rank can
 *          replay) and stores tag(rank) | k, between publishing
 *          started = k before and done = k after;
 *   read:  of any used word x of writer w: d = done[w], v = x,
 *          s = started[w].  Sequential consistency requires that v carries
 *          w's tag and a k with targets[k] == x (no foreign or torn value),
 *          k <= s (not from the future), k >= the last write to x among
 *          w's first d writes (not stale), and k >= what this rank read
 *          from x before (never backwards).
 * At the end (after a barrier) every word must hold its writer's last
 * write, and unused words zero.  SEED (default: from the clock, chosen by
 * rank 0 and shared) is printed; rank r draws from SEED + r.
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TAG_SHIFT 40
#define HOT 4 /* words per page per rank */
#define SEQ_MASK ((1ull << TAG_SHIFT) - 1)

struct stress {
	long ops;
	size_t pages, nwords;
	uint64_t seed;
	volatile uint64_t *data;
	char *prog;           /* page w: started[w] in word 0, done[w] in 8 */
	uint32_t **targets;   /* [w][k], k = 1..ops */
	uint32_t *seen;       /* highest k this rank read per word */
	long reads, writes, stale_checks;
};

static volatile uint64_t *started(struct stress *s, int w)
{
	return word_at(s->prog, (size_t)w, 0);
}

static volatile uint64_t *done(struct stress *s, int w)
{
	return word_at(s->prog, (size_t)w, 8);
}

/* The rank that owns word x. */
static int owner(size_t x)
{
	return (int)(x % WORDS_PER_PAGE % (size_t)coh.size);
}

/* The i-th word in use in the region (i < pages * HOT * size). */
static size_t used_word(size_t i)
{
	size_t per_page = HOT * (size_t)coh.size;

	return i / per_page * WORDS_PER_PAGE + i % per_page;
}

static uint64_t tag(int w)
{
	return (uint64_t)(w + 1) << TAG_SHIFT;
}

/* Writer w's sequence of target words: its own words only. */
static void replay(struct stress *s, int w)
{
	uint32_t own = (uint32_t)(s->pages * HOT);
	struct rng r = {s->seed + (uint64_t)w};
	long k;

	s->targets[w] = calloc((size_t)s->ops + 1, sizeof(uint32_t));
	if (!s->targets[w])
		coh_fail("out of memory");
	for (k = 1; k <= s->ops; k++) {
		uint32_t i = rng_below(&r, own);

		s->targets[w][k] = (uint32_t)((i / HOT) * WORDS_PER_PAGE +
					      (i % HOT) * (uint32_t)coh.size +
					      (uint32_t)w);
	}
}

/* The last of w's first d writes that went to word x, or 0. */
static uint64_t last_write(const struct stress *s, int w, size_t x,
			   uint64_t d)
{
	for (; d > 0; d--)
		if (s->targets[w][d] == x)
			return d;
	return 0;
}

static void do_write(struct stress *s, uint64_t k)
{
	size_t x = s->targets[coh.rank][k];

	st64(started(s, coh.rank), k);
	st64(&s->data[x], tag(coh.rank) | k);
	st64(done(s, coh.rank), k);
	s->writes++;
}

static void do_read(struct stress *s, size_t x)
{
	int w = owner(x);
	uint64_t d = ld64(done(s, w));
	uint64_t v = ld64(&s->data[x]);
	uint64_t st = ld64(started(s, w));
	uint64_t k = v & SEQ_MASK, floor = last_write(s, w, x, d);

	s->reads++;
	if (v && (v & ~SEQ_MASK) != tag(w))
		coh_fail("word %zu (page %zu) of writer %d holds %#" PRIx64
			 ": not that writer's tag", x, x / WORDS_PER_PAGE, w,
			 v);
	if (k > st || k > (uint64_t)s->ops || (k && s->targets[w][k] != x))
		coh_fail("word %zu (page %zu) of writer %d holds write %" PRIu64
			 ", which the writer has not made there (started "
			 "%" PRIu64 ")", x, x / WORDS_PER_PAGE, w, k, st);
	if (k < floor)
		coh_fail("STALE: word %zu (page %zu) of writer %d holds write "
			 "%" PRIu64 ", but the writer had finished write %"
			 PRIu64 " to it (done %" PRIu64 ")", x,
			 x / WORDS_PER_PAGE, w, k, floor, d);
	if (k < s->seen[x])
		coh_fail("BACKWARDS: word %zu (page %zu) of writer %d holds "
			 "write %" PRIu64 ", I read write %u there before", x,
			 x / WORDS_PER_PAGE, w, k, s->seen[x]);
	if (floor)
		s->stale_checks++;
	s->seen[x] = (uint32_t)k;
}

static void final_check(struct stress *s)
{
	size_t x;
	int w;

	for (w = 0; w < coh.size; w++)
		if (ld64(done(s, w)) != ld64(started(s, w)))
			coh_fail("writer %d: started %" PRIu64 " done %" PRIu64
				 " after the barrier", w,
				 ld64(started(s, w)), ld64(done(s, w)));
	for (x = 0; x < s->nwords; x++) {
		uint64_t k, v;

		w = owner(x);
		k = last_write(s, w, x, ld64(done(s, w)));
		v = ld64(&s->data[x]);
		if (v != (k ? tag(w) | k : 0))
			coh_fail("LOST: word %zu (page %zu) holds %#" PRIx64
				 ", want writer %d's last write %" PRIu64
				 " (%#" PRIx64 ")", x, x / WORDS_PER_PAGE, v,
				 w, k, k ? tag(w) | k : 0);
	}
}

static void share_seed(struct stress *s, uint64_t arg)
{
	volatile uint64_t *ctl = coh_alloc(PAGE);

	if (coh.rank == 0)
		st64(ctl, arg ? arg : (uint64_t)time(NULL) * 2654435761u);
	coh_barrier();
	s->seed = ld64(ctl);
	coh_say("seed %#" PRIx64 " (this rank draws from %#" PRIx64 ")",
		s->seed, s->seed + (uint64_t)coh.rank);
}

static void run(struct stress *s)
{
	struct rng r = {(s->seed + (uint64_t)coh.rank) ^ 0x5eed5eedull};
	uint64_t k = 0;
	long i;

	for (i = 0; i < s->ops; i++) {
		coh_phase("stress op %ld of %ld", i, s->ops);
		if (rng_next(&r) & 1)
			do_write(s, ++k);
		else
			do_read(s, used_word(rng_below(&r, (uint32_t)(s->pages *
						HOT * (size_t)coh.size))));
	}
}

int mode_stress(int argc, char **argv)
{
	struct stress s = {0};
	double t0;
	int w;

	s.ops = arg_long(argc, argv, 1, 1000);
	s.pages = (size_t)arg_long(argc, argv, 2, 64);
	coh_init();
	if (HOT * (size_t)coh.size > WORDS_PER_PAGE)
		coh_fail("%d ranks do not fit %d words each in a page",
			 coh.size, HOT);
	share_seed(&s, argc > 3 ? (uint64_t)arg_long(argc, argv, 3, 1) : 0);
	s.nwords = s.pages * WORDS_PER_PAGE;
	s.data = coh_alloc(s.pages * PAGE);
	s.prog = coh_alloc((size_t)coh.size * PAGE);
	s.targets = calloc((size_t)coh.size, sizeof(*s.targets));
	s.seen = calloc(s.nwords, sizeof(*s.seen));
	if (!s.targets || !s.seen)
		coh_fail("out of memory");
	for (w = 0; w < coh.size; w++)
		replay(&s, w);
	coh_barrier();
	t0 = now_s();
	run(&s);
	coh_phase("stress final barrier");
	coh_barrier();
	final_check(&s);
	coh_say("%ld writes, %ld reads (%ld of them of words with a finished "
		"earlier write) in %.1f s; final contents right", s.writes,
		s.reads, s.stale_checks, now_s() - t0);
	coh_check_masters((const char *)s.data, s.pages);
	for (w = 0; w < coh.size; w++)
		free(s.targets[w]);
	free(s.targets);
	free(s.seen);
	coh_finish();
	return 0;
}
