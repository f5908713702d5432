/* What one fault costs, from the counters of dsm_get_stats().
 *
 *   coherence cost          (best with 4 nodes, 1 process per node)
 *
 * Rank 0 (node 0) takes one fault of each kind on a fresh page:
 *   read_miss_local_master   page mastered by node 0, MODIFIED on node 1
 *   read_miss_remote_master  mastered by node 2 (node 1 with 2 nodes),
 *                            MODIFIED on node 1
 *   write_miss               mastered by a remote node, MODIFIED on node 1
 *   upgrade                  mastered by a remote node, SHARED on every
 *                            node: nnodes - 1 sharers to invalidate
 *   zero_fill                never touched, mastered by node 0
 * Asserted, from rank 0's counters just around the access: every fault
 * makes one directory request, local (no message to a master) or remote as
 * the page's master says; a read miss counts one read fault and one page
 * received, a write miss one write fault and one page, an upgrade one
 * upgrade fault, a zero fill no page.  Then every node checks its state of
 * the page: MODIFIED at node 0 after a write, SHARED at node 0 and at the
 * old holder after a read, INVALID everywhere else.
 * Printed ("COST" lines): the faulting node's messages and bytes each way,
 * from its counters just around the access, and the whole cluster's, from
 * every node's counters over a window that brackets the fault with
 * barriers, minus the same window without a fault (so the barriers' own
 * messages cancel).  Run with heartbeats off (long
 * --heartbeat-ms) so that nothing else moves in the window.
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum kind { READ_LOCAL, READ_REMOTE, WRITE_MISS, UPGRADE, ZERO_FILL, NKIND };

static const char *const kind_name[NKIND] = {
	"read_miss_local_master", "read_miss_remote_master", "write_miss",
	"upgrade", "zero_fill"};

struct cost {
	struct pool pool;
	char *results;             /* page per node: its net delta */
	volatile uint64_t *page[NKIND];
	int holder;                /* the rank that writes pages first */
};

static int remote_master(void)
{
	return coh.nnodes >= 3 ? 2 : 1;
}

static void pick(struct cost *c)
{
	int want[NKIND] = {0, remote_master(), coh.nnodes - 1,
			   coh.nnodes >= 4 ? 3 : coh.nnodes - 1, 0};
	int k;

	for (k = 0; k < NKIND; k++) {
		c->page[k] = pool_take(&c->pool, want[k]);
		if (coh.rank == 0)
			coh_say("%s: page %p, master %d", kind_name[k],
				(void *)c->page[k],
				coh_master((const void *)c->page[k]));
	}
}

/* Bring the page into the state the case starts from. */
static void setup(struct cost *c, enum kind k)
{
	if (k != ZERO_FILL && coh.rank == c->holder)
		st64(c->page[k], 0xc057);
	coh_barrier();
	if (k == UPGRADE && coh.local == 0 && ld64(c->page[k]) != 0xc057)
		coh_fail("upgrade setup: read a wrong value");
	coh_barrier();
	if (k == UPGRADE && coh.local == 0 &&
	    coh_state((const void *)c->page[k]) != DSM_PAGE_SHARED)
		coh_fail("upgrade setup: page not SHARED after every node "
			 "read it");
	coh_barrier();
}

static void touch(struct cost *c, enum kind k)
{
	uint64_t v;

	switch (k) {
	case READ_LOCAL:
	case READ_REMOTE:
		v = ld64(c->page[k]);
		if (v != 0xc057)
			coh_fail("%s read %#" PRIx64, kind_name[k], v);
		break;
	case ZERO_FILL:
		v = ld64(c->page[k]);
		if (v)
			coh_fail("zero_fill read %#" PRIx64, v);
		break;
	default:
		st64(c->page[k], 0xc058);
		break;
	}
}

/* Each node's counters over barrier; [fault]; barrier. */
static void window(struct cost *c, enum kind k, bool fault,
		   struct dsm_stats *node, struct dsm_stats *tight)
{
	struct dsm_stats a, b, l0, l1;

	coh_barrier();
	if (coh.local == 0)
		coh_stats(&a);
	coh_barrier();
	if (fault && coh.rank == 0) {
		coh_stats(&l0);
		touch(c, k);
		coh_stats(&l1);
		stats_sub(tight, &l0, &l1);
		usleep(100000); /* trailing messages of the transaction */
	}
	coh_barrier();
	if (coh.local == 0) {
		coh_stats(&b);
		stats_sub(node, &a, &b);
	}
}

/* The faulting node's counts come from just around the access (exact:
 * the transaction, its DONE included, is over when the access returns);
 * the cluster's from the barrier windows, one without the fault
 * subtracted. */
#define NET(f) ((long long)tight->f)

static void report(struct cost *c, enum kind k, const struct dsm_stats *d,
		   const struct dsm_stats *tight)
{
	struct dsm_stats *slot;
	long long msgs = 0, bytes = 0, pages = 0, inv = 0, fwd = 0;
	int n;

	slot = (struct dsm_stats *)(c->results + (size_t)coh.node * PAGE);
	if (coh.local == 0)
		stats_sub(slot, &d[0], &d[1]);
	coh_barrier();
	if (coh.rank == 0) {
		for (n = 0; n < coh.nnodes; n++) {
			slot = (struct dsm_stats *)(c->results +
						    (size_t)n * PAGE);
			msgs += (long long)slot->msgs_sent;
			bytes += (long long)slot->bytes_sent;
			pages += (long long)slot->pages_sent;
			inv += (long long)slot->invalidations_received;
			fwd += (long long)slot->holder_forwards;
		}
		coh_say("COST %s (%d nodes): faulting node: msgs sent %lld "
			"received %lld, bytes sent %lld received %lld, pages "
			"received %lld; whole cluster: msgs %lld, bytes %lld, "
			"pages %lld, invalidations %lld, forwards %lld",
			kind_name[k], coh.nnodes, NET(msgs_sent),
			NET(msgs_received), NET(bytes_sent),
			NET(bytes_received), NET(pages_received), msgs, bytes,
			pages, inv, fwd);
	}
	coh_barrier();
}

/* One directory request, local or remote as the page's master says. */
static bool directory_ok(const struct dsm_stats *t, int master)
{
	if (master == coh.node)
		return t->directory_local == 1 && t->directory_remote == 0;
	return t->directory_remote == 1 && t->directory_local == 0;
}

static void expect(struct cost *c, enum kind k, const struct dsm_stats *t)
{
	int master = coh_master((const void *)c->page[k]);
	char buf[512];
	bool ok = directory_ok(t, master);

	stats_format(buf, sizeof(buf), t);
	coh_say("%s (master %d), faulting process's window: %s",
		kind_name[k], master, buf);
	switch (k) {
	case READ_LOCAL:
	case READ_REMOTE:
		ok = ok && t->read_faults == 1 && t->write_faults == 0 &&
		     t->pages_received == 1;
		break;
	case WRITE_MISS:
		ok = ok && t->write_faults == 1 && t->read_faults == 0 &&
		     t->pages_received == 1;
		break;
	case UPGRADE:
		ok = ok && t->upgrade_faults == 1 && t->read_faults == 0 &&
		     t->write_faults == 0;
		break;
	default:
		ok = ok && t->pages_received == 0;
		break;
	}
	if (!ok)
		coh_fail("%s: counters not as expected (see the line above)",
			 kind_name[k]);
}

/* After the fault: the faulting node holds the page as the access needs,
 * the holder kept a copy only if it was read, everyone else has none. */
static void check_state(struct cost *c, enum kind k)
{
	bool write = k == WRITE_MISS || k == UPGRADE;
	int want = DSM_PAGE_INVALID, st;

	if (coh.local)
		return;
	if (coh.node == 0)
		want = write ? DSM_PAGE_MODIFIED : DSM_PAGE_SHARED;
	else if (coh.rank == c->holder && (k == READ_LOCAL || k == READ_REMOTE))
		want = DSM_PAGE_SHARED;
	st = coh_state((const void *)c->page[k]);
	if (st != want)
		coh_fail("after %s by node 0, node %d holds the page %s, want "
			 "%s", kind_name[k], coh.node, coh_state_name(st),
			 coh_state_name(want));
}

static void one_case(struct cost *c, enum kind k)
{
	struct dsm_stats d[2], tight;

	coh_phase("cost %s", kind_name[k]);
	memset(d, 0, sizeof(d));
	setup(c, k);
	window(c, k, false, &d[0], &tight);
	window(c, k, true, &d[1], &tight);
	if (coh.rank == 0)
		expect(c, k, &tight);
	check_state(c, k);
	report(c, k, d, &tight);
}

int mode_cost(int argc, char **argv)
{
	struct cost c;
	char *base;
	size_t npages;
	int k;

	(void)argc;
	(void)argv;
	coh_init();
	if (coh.nnodes < 2)
		coh_fail("needs 2 nodes");
	c.holder = coh_rank_of(1, 0);
	npages = (size_t)(16 * coh.nnodes);
	base = coh_alloc(npages * PAGE);
	c.results = coh_alloc((size_t)coh.nnodes * PAGE);
	pool_init(&c.pool, base, npages);
	pick(&c);
	for (k = 0; k < NKIND; k++)
		one_case(&c, (enum kind)k);
	pool_destroy(&c.pool);
	coh_finish();
	return 0;
}
