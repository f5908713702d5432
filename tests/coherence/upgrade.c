/* One page, every rank's own word in it.
 *
 *   coherence upgrade [ROUNDS]            contended upgrades
 *   coherence falseshare [N [THREADS]]    false sharing
 *
 * upgrade: each round every rank reads the whole page (checking the last
 * round's words), so after a barrier every node holds it SHARED (asserted
 * with dsm_page_state); after another barrier all ranks write their own word
 * at once, so every node upgrades at the same moment; after a barrier the
 * next round's read checks that every word holds its rank's write.  Each
 * node must have faulted (upgrade or write miss) at least once per round.
 *
 * falseshare: every thread (THREADS per rank, default 1; more make one
 * process fault from several threads at once) increments its own word N
 * times, pausing 100 us after each so that the page keeps moving between
 * the nodes (read, then write: a lost or stale page loses increments), and
 * now and then reads another word, which may only grow and never pass N.
 * At the end every rank checks every word is exactly N.
 */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	coh_finish();
	return 0;
}

struct fs {
	volatile uint64_t *w;
	long n;
	int nslots;  /* ranks x threads: one word each */
};

struct fs_thread {
	struct fs *fs;
	int slot;
	pthread_t tid;
};

static void peek(const struct fs *fs, uint64_t *seen, int r)
{
	uint64_t v = ld64(&fs->w[r]);

	if (v < seen[r] || v > (uint64_t)fs->n)
		coh_fail("word %d went from %" PRIu64 " to %" PRIu64
			 " (%ld increments in all)", r, seen[r], v, fs->n);
	seen[r] = v;
}

/* One thread: N increments of its own word, a look at another's now and
 * then. */
static void *increment(void *arg)
{
	struct fs_thread *t = arg;
	struct fs *fs = t->fs;
	struct rng rng = {(uint64_t)t->slot * 77 + 1};
	uint64_t *seen = calloc((size_t)fs->nslots, sizeof(*seen)), v;
	long i;

	if (!seen)
		coh_fail("out of memory");
	for (i = 0; i < fs->n; i++) {
		v = ld64(&fs->w[t->slot]);
		if (v != (uint64_t)i)
			coh_fail("word %d is %" PRIu64 " after %ld increments",
				 t->slot, v, i);
		st64(&fs->w[t->slot], v + 1);
		usleep(100); /* let the others in: the page must move */
		if (i % 8 == 0)
			peek(fs, seen, (int)rng_below(&rng,
						      (uint32_t)fs->nslots));
	}
	free(seen);
	return NULL;
}

static void run_threads(struct fs *fs, int nthreads)
{
	struct fs_thread *t = calloc((size_t)nthreads, sizeof(*t));
	int i, rc;

	if (!t)
		coh_fail("out of memory");
	for (i = 0; i < nthreads; i++) {
		t[i] = (struct fs_thread){.fs = fs,
					  .slot = coh.rank * nthreads + i};
		rc = pthread_create(&t[i].tid, NULL, increment, &t[i]);
		if (rc)
			coh_fail("pthread_create: %s", strerror(rc));
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i].tid, NULL);
	free(t);
}

int mode_falseshare(int argc, char **argv)
{
	struct fs fs = {.n = arg_long(argc, argv, 1, 1000)};
	int nthreads = (int)arg_long(argc, argv, 2, 1), r;
	struct dsm_stats s0, s1, d;
	double t0;

	coh_init();
	fs.nslots = coh.size * nthreads;
	if (fs.nslots > (int)WORDS_PER_PAGE)
		coh_fail("%d words do not fit in a page", fs.nslots);
	fs.w = coh_alloc(PAGE);
	coh_barrier();
	node_stats(&s0);
	coh_barrier();
	t0 = now_s();
	coh_phase("falseshare: %d threads incrementing", nthreads);
	run_threads(&fs, nthreads);
	coh_phase("falseshare final barrier");
	coh_barrier();
	for (r = 0; r < fs.nslots; r++)
		if (ld64(&fs.w[r]) != (uint64_t)fs.n)
			coh_fail("word %d is %" PRIu64 ", want %ld", r,
				 ld64(&fs.w[r]), fs.n);
	if (coh.rank == 0)
		coh_say("%d words of one page (%d threads per rank), %ld "
			"increments each, exact; %.1f s", fs.nslots, nthreads,
			fs.n, now_s() - t0);
	if (coh.local == 0) {
		node_stats(&s1);
		stats_sub(&d, &s0, &s1);
		coh_say("node %d fetched the page %" PRIu64 " times to write "
			"and upgraded it %" PRIu64 " times",
			coh.node, d.write_faults, d.upgrade_faults);
	}
	coh_barrier();
	coh_finish();
	return 0;
}
