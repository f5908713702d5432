/* One page, every rank's own word in it.
 *
 *   coherence upgrade [ROUNDS]   contended upgrades
 *   coherence falseshare [N]     false sharing
 *
 * upgrade: each round every rank reads the whole page (checking the last
 * round's words), so after a barrier every node holds it SHARED (asserted
 * with dsm_page_state); after another barrier all ranks write their own word
 * at once, so every node upgrades at the same moment; after a barrier the
 * next round's read checks that every word holds its rank's write.  Each
 * node must have faulted (upgrade or write miss) at least once per round.
 *
 * falseshare: every rank increments its own word N times, pausing 100 us
 * after each so that the page keeps moving between the nodes (read, then
 * write: a lost or stale page loses increments), and now and then reads
 * another rank's word, which may only grow and never pass N.  At the end
 * every rank checks every word is exactly N.
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t mark(long round, int rank)
{
	return (uint64_t)round << 16 | (uint64_t)(rank + 1);
}

static void check_round(volatile uint64_t *w, long round)
{
	int r;

	for (r = 0; r < coh.size; r++) {
		uint64_t v = ld64(&w[r]), want = round ? mark(round, r) : 0;

		if (v != want)
			coh_fail("after round %ld: word of rank %d is %#"
				 PRIx64 ", want %#" PRIx64 "%s", round, r, v,
				 want, v < want ? " (stale or lost write)" :
				 "");
	}
}

/* Write this rank's word of a page the node holds SHARED.  With one
 * process per node, the node's counters move only for this write (and for
 * requests the node serves): the write must have faulted. */
static void write_shared(volatile uint64_t *w, long round)
{
	struct dsm_stats a, b, d;
	const char *pte = coh_pte((const void *)w);
	char buf[512];

	if (coh.lsize == 1)
		coh_stats(&a);
	st64(&w[coh.rank], mark(round + 1, coh.rank));
	if (coh.lsize > 1)
		return;
	coh_stats(&b);
	stats_sub(&d, &a, &b);
	if (d.upgrade_faults + d.write_faults + d.wp_faults == 0) {
		stats_format(buf, sizeof(buf), &d);
		coh_fail("round %ld: my write to a page this node held "
			 "SHARED completed without a fault (node counters "
			 "around the write: %s; the page's PTE before the "
			 "write: %s)", round, buf, pte);
	}
}

static void node_stats(struct dsm_stats *s)
{
	if (coh.local == 0)
		coh_stats(s);
}

int mode_upgrade(int argc, char **argv)
{
	long rounds = arg_long(argc, argv, 1, 100), i;
	struct dsm_stats s0, s1, d;
	volatile uint64_t *w;
	uint64_t faults;
	char buf[512];
	int st;

	coh_init();
	w = coh_alloc(PAGE);
	if (coh.rank == 0)
		coh_say("%ld rounds, %d ranks, page master %d", rounds,
			coh.size, coh_master((const void *)w));
	coh_barrier();
	node_stats(&s0);
	coh_barrier();
	for (i = 0; i < rounds; i++) {
		coh_phase("upgrade round %ld: read", i);
		check_round(w, i);
		coh_barrier();
		st = coh_state((const void *)w);
		if (st != DSM_PAGE_SHARED)
			coh_fail("round %ld: every rank read the page, but "
				 "this node holds it %s, not SHARED", i,
				 coh_state_name(st));
		coh_barrier();
		coh_phase("upgrade round %ld: write", i);
		write_shared(w, i);
		coh_barrier();
	}
	check_round(w, rounds);
	coh_barrier();
	if (coh.local == 0) {
		node_stats(&s1);
		stats_sub(&d, &s0, &s1);
		faults = d.upgrade_faults + d.write_faults;
		stats_format(buf, sizeof(buf), &d);
		coh_say("node %d counters over the rounds: %s", coh.node, buf);
		if (faults < (uint64_t)rounds)
			coh_fail("node %d made %" PRIu64 " upgrades and write "
				 "faults in %ld rounds: a write to a SHARED "
				 "page went through without one", coh.node,
				 faults, rounds);
	}
	coh_barrier();
	coh_say("ok");
	return 0;
}

static void peek(volatile uint64_t *w, uint64_t *seen, long n, int r)
{
	uint64_t v = ld64(&w[r]);

	if (v < seen[r] || v > (uint64_t)n)
		coh_fail("word of rank %d went from %" PRIu64 " to %" PRIu64
			 " (%ld increments in all)", r, seen[r], v, n);
	seen[r] = v;
}

int mode_falseshare(int argc, char **argv)
{
	long n = arg_long(argc, argv, 1, 1000), i;
	struct dsm_stats s0, s1, d;
	volatile uint64_t *w;
	struct rng rng;
	uint64_t *seen, v;
	double t0;
	int r;

	coh_init();
	w = coh_alloc(PAGE);
	seen = calloc((size_t)coh.size, sizeof(*seen));
	if (!seen)
		coh_fail("out of memory");
	rng.s = (uint64_t)coh.rank * 77 + 1;
	coh_barrier();
	node_stats(&s0);
	coh_barrier();
	t0 = now_s();
	for (i = 0; i < n; i++) {
		coh_phase("falseshare increment %ld of %ld", i, n);
		v = ld64(&w[coh.rank]);
		if (v != (uint64_t)i)
			coh_fail("my word is %" PRIu64 " after %ld increments",
				 v, i);
		st64(&w[coh.rank], v + 1);
		usleep(100); /* let the others in: the page must move */
		if (i % 8 == 0)
			peek(w, seen, n, (int)rng_below(&rng,
							(uint32_t)coh.size));
	}
	coh_phase("falseshare final barrier");
	coh_barrier();
	for (r = 0; r < coh.size; r++)
		if (ld64(&w[r]) != (uint64_t)n)
			coh_fail("word of rank %d is %" PRIu64 ", want %ld", r,
				 ld64(&w[r]), n);
	if (coh.rank == 0)
		coh_say("%d words of one page, %ld increments each, exact; "
			"%.1f s", coh.size, n, now_s() - t0);
	if (coh.local == 0) {
		node_stats(&s1);
		stats_sub(&d, &s0, &s1);
		coh_say("node %d fetched the page %" PRIu64 " times to write "
			"and upgraded it %" PRIu64 " times",
			coh.node, d.write_faults, d.upgrade_faults);
	}
	coh_barrier();
	free(seen);
	coh_say("ok");
	return 0;
}
