/* memcpy between two pages that other nodes keep writing.
 *
 *   coherence memcpy [ROUNDS]
 *
 * Page X belongs to rank A (node 0), page Y to rank B (node 1).  Each page
 * has a source area (128 words), a destination area (128 words) and a hot
 * area (256 words).  Every round, A and B fill their source areas with
 * words naming the round, the page and the word's index; then, after a
 * barrier, the copier (a rank of node 2, else another rank of node 0, else
 * B) copies one page's source area into the other's destination area with
 * one memcpy (X to Y in odd rounds, Y to X in even ones) while A and B keep
 * writing numbered values into their hot areas and the remaining ranks
 * read those; the faults of the copy fight the writers for both pages.
 * After a barrier every rank checks the destination word by word (a stale
 * or torn copy shows a wrong round, page or index), that the sources are
 * intact, and that every hot word holds its writer's last value.
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SRC 0
#define DST 128
#define AREA 128
#define HOT 256
#define NHOT 256

struct mc {
	volatile uint64_t *pg[2];  /* X, Y */
	volatile uint64_t *ctl;    /* [0] copied round, [1 + p] hot count */
	int owner[2], copier;
	long rounds;
};

static uint64_t src_word(long round, int p, int i)
{
	return (uint64_t)round << 32 | (uint64_t)(p + 1) << 16 |
	       (uint64_t)i;
}

static uint64_t hot_word(long round, uint64_t c)
{
	return (uint64_t)round << 40 | c;
}

static void fill_src(struct mc *m, long round)
{
	int p, i;

	for (p = 0; p < 2; p++) {
		if (coh.rank != m->owner[p])
			continue;
		for (i = 0; i < AREA; i++)
			st64(&m->pg[p][SRC + i], src_word(round, p, i));
	}
}

/* A or B: number the hot words until the copy is over. */
static void write_hot(struct mc *m, int p, long round)
{
	uint64_t c = 0;

	while (ld64(&m->ctl[0]) != (uint64_t)round && c < 200000) {
		c++;
		st64(&m->pg[p][HOT + c % NHOT], hot_word(round, c));
		if (c % 16 == 0)
			usleep(50);
	}
	st64(&m->ctl[1 + p], c);
}

static void watch_hot(struct mc *m, long round, struct rng *r)
{
	struct backoff bo = {0};

	while (ld64(&m->ctl[0]) != (uint64_t)round) {
		int p = (int)rng_below(r, 2);
		uint64_t v = ld64(&m->pg[p][HOT + rng_below(r, NHOT)]);

		if (v >> 40 > (uint64_t)round)
			coh_fail("round %ld: hot word of page %d from round "
				 "%" PRIu64, round, p, v >> 40);
		backoff(&bo);
	}
}

static void copy_phase(struct mc *m, long round, struct rng *r)
{
	int from = round % 2 ? 0 : 1, p;

	if (coh.rank == m->copier) {
		memcpy((void *)&m->pg[1 - from][DST],
		       (const void *)&m->pg[from][SRC],
		       AREA * sizeof(uint64_t));
		st64(&m->ctl[0], (uint64_t)round);
	}
	for (p = 0; p < 2; p++)
		if (coh.rank == m->owner[p] && coh.rank != m->copier)
			write_hot(m, p, round);
	if (coh.rank != m->owner[0] && coh.rank != m->owner[1] &&
	    coh.rank != m->copier)
		watch_hot(m, round, r);
}

static void check_hot(struct mc *m, int p, long round)
{
	uint64_t c = ld64(&m->ctl[1 + p]), k, v;

	if (m->owner[p] == m->copier)
		return;
	/* Value k went to word k % NHOT: the last NHOT values stand. */
	for (k = c; k > 0 && k + NHOT > c; k--) {
		v = ld64(&m->pg[p][HOT + k % NHOT]);
		if (v != hot_word(round, k))
			coh_fail("round %ld: hot word %" PRIu64 " of page %c "
				 "is %#" PRIx64 ", want its writer's last "
				 "%#" PRIx64, round, k % NHOT, "XY"[p], v,
				 hot_word(round, k));
	}
}

static void check(struct mc *m, long round)
{
	int from = round % 2 ? 0 : 1, p, i;

	for (i = 0; i < AREA; i++) {
		uint64_t v = ld64(&m->pg[1 - from][DST + i]);

		if (v != src_word(round, from, i))
			coh_fail("round %ld: copy %c->%c word %d is %#" PRIx64
				 " (round %" PRIu64 " page %" PRIu64 " index %"
				 PRIu64 "), want %#" PRIx64 ": %s copy",
				 round, "XY"[from], "XY"[1 - from], i, v,
				 v >> 32, (v >> 16) & 0xffff, v & 0xffff,
				 src_word(round, from, i),
				 v >> 32 < (uint64_t)round ? "stale" : "torn");
	}
	for (p = 0; p < 2; p++) {
		for (i = 0; i < AREA; i++)
			if (ld64(&m->pg[p][SRC + i]) != src_word(round, p, i))
				coh_fail("round %ld: source word %d of page %c "
					 "changed", round, i, "XY"[p]);
		check_hot(m, p, round);
	}
}

static void roles(struct mc *m)
{
	m->owner[0] = coh_rank_of(0, 0);
	m->owner[1] = coh_rank_of(1, 0);
	if (coh.nnodes >= 3)
		m->copier = coh_rank_of(2, 0);
	else if (coh.lsize >= 2)
		m->copier = coh_rank_of(0, 1);
	else
		m->copier = m->owner[1];
}

int mode_memcpy(int argc, char **argv)
{
	struct mc m = {0};
	struct rng r;
	char *base;
	long i;
	double t0;

	m.rounds = arg_long(argc, argv, 1, 40);
	coh_init();
	if (coh.nnodes < 2)
		coh_fail("needs 2 nodes");
	r.s = (uint64_t)coh.rank + 99;
	roles(&m);
	base = coh_alloc(3 * PAGE);
	m.pg[0] = word_at(base, 0, 0);
	m.pg[1] = word_at(base, 1, 0);
	m.ctl = word_at(base, 2, 0);
	if (coh.rank == 0)
		coh_say("X: rank %d, master %d; Y: rank %d, master %d; "
			"copier rank %d", m.owner[0], coh_master(base),
			m.owner[1], coh_master(base + PAGE), m.copier);
	t0 = now_s();
	for (i = 1; i <= m.rounds; i++) {
		coh_phase("memcpy round %ld: fill", i);
		fill_src(&m, i);
		coh_barrier();
		coh_phase("memcpy round %ld: copy", i);
		copy_phase(&m, i, &r);
		coh_barrier();
		coh_phase("memcpy round %ld: check", i);
		check(&m, i);
		coh_barrier();
	}
	if (coh.rank == 0)
		coh_say("%ld copies checked in %.1f s", m.rounds, now_s() - t0);
	coh_finish();
	return 0;
}
