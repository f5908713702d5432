/* Several processes on one node share the node's pages.
 *
 *   coherence local [PAGES]        (run with -p 2 or more)
 *
 * Rank 0 writes PAGES pages (MODIFIED on node 0).  On node 0, each other
 * local rank in turn reads every page, then writes one word of each: the
 * node holds them MODIFIED, so neither may cost network traffic
 * (msgs_sent, pages_received unchanged) or a read, write or upgrade fault,
 * and the reads must count at least one minor fault per page.  Then on
 * every other node local rank 0 reads the pages in (read faults), and the
 * node's other local ranks, one at a time, read them again: again no
 * traffic, only minor faults.  A node's counters are snapshotted by the
 * process under test while the node's other ranks wait at a barrier.
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>

struct local {
	char *base;
	size_t pages;
};

static uint64_t pat(size_t pg, size_t w)
{
	return 0x10ca100000000000ull | pg << 16 | w;
}

static void read_all(struct local *l, uint64_t extra)
{
	size_t pg, w;

	for (pg = 0; pg < l->pages; pg++)
		for (w = 0; w < WORDS_PER_PAGE; w++) {
			uint64_t v = ld64(word_at(l->base, pg, w));
			uint64_t want = pat(pg, w) + (w == 1 ? extra : 0);

			if (v != want)
				coh_fail("page %zu word %zu is %#" PRIx64
					 ", want %#" PRIx64, pg, w, v, want);
		}
}

static void no_traffic(const struct dsm_stats *d, const char *what)
{
	char buf[512];

	stats_format(buf, sizeof(buf), d);
	coh_say("node %d, %s: %s", coh.node, what, buf);
	if (d->msgs_sent || d->pages_received || d->read_faults ||
	    d->write_faults || d->upgrade_faults)
		coh_fail("%s cost network traffic or a remote fault on node "
			 "%d, which already held the pages: msgs_sent %"
			 PRIu64 ", pages_received %" PRIu64 ", read_faults %"
			 PRIu64 ", write_faults %" PRIu64 ", upgrade_faults %"
			 PRIu64, what, coh.node, d->msgs_sent,
			 d->pages_received, d->read_faults, d->write_faults,
			 d->upgrade_faults);
}

static void second_reader(struct local *l, uint64_t extra)
{
	struct dsm_stats a, b, d;

	coh_stats(&a);
	read_all(l, extra);
	coh_stats(&b);
	stats_sub(&d, &a, &b);
	no_traffic(&d, "reads by a second process");
	if (d.minor_faults < l->pages)
		coh_fail("node %d: %zu pages read by a second process, but "
			 "only %" PRIu64 " minor faults", coh.node, l->pages,
			 d.minor_faults);
}

static void local_writer(struct local *l, int round)
{
	struct dsm_stats a, b, d;
	size_t pg;

	coh_stats(&a);
	for (pg = 0; pg < l->pages; pg++)
		st64(word_at(l->base, pg, 1), pat(pg, 1) + (uint64_t)round);
	coh_stats(&b);
	stats_sub(&d, &a, &b);
	no_traffic(&d, "writes to MODIFIED pages by another process");
}

/* Node 0 holds the pages MODIFIED: its other processes read, then write. */
static void node0_phase(struct local *l)
{
	int lr;

	for (lr = 1; lr < coh.lsize; lr++) {
		coh_phase("local: node 0, process %d reads and writes", lr);
		if (coh.node == 0 && coh.local == lr) {
			second_reader(l, (uint64_t)lr - 1);
			local_writer(l, lr);
		}
		coh_barrier();
	}
}

/* The other nodes: local rank 0 fetches, the others then map. */
static void others_phase(struct local *l)
{
	uint64_t extra = (uint64_t)coh.lsize - 1;
	int lr;

	coh_phase("local: first reader of each node");
	if (coh.local == 0 && coh.node != 0)
		read_all(l, extra);
	coh_barrier();
	for (lr = 1; lr < coh.lsize; lr++) {
		coh_phase("local: second reader %d", lr);
		if (coh.local == lr && coh.node != 0)
			second_reader(l, extra);
		coh_barrier();
	}
}

int mode_local(int argc, char **argv)
{
	struct local l;
	size_t pg, w;

	l.pages = (size_t)arg_long(argc, argv, 1, 16);
	coh_init();
	if (coh.lsize < 2 || coh.nnodes < 2)
		coh_fail("needs 2 nodes and 2 processes per node "
			 "(dsmrun -p 2)");
	l.base = coh_alloc(l.pages * PAGE);
	coh_phase("local: rank 0 writes");
	if (coh.rank == 0)
		for (pg = 0; pg < l.pages; pg++)
			for (w = 0; w < WORDS_PER_PAGE; w++)
				st64(word_at(l.base, pg, w), pat(pg, w));
	coh_barrier();
	node0_phase(&l);
	others_phase(&l);
	coh_phase("local: final read");
	read_all(&l, (uint64_t)coh.lsize - 1);
	coh_barrier();
	coh_finish();
	return 0;
}
