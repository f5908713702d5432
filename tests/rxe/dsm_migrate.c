/* Directory entries moving on real rxe (rxe test "dsm_migrate", 4 nodes,
 * one rank each), through the public API only.  In order:
 *
 *   policy  dsm_set_policy/dsm_get_policy: a range's policy reaches every
 *           node; bad arguments are refused.
 *   pull    every node works on pages mastered by the next node: each page
 *           moves to its user (dsm_page_master on every node agrees), and
 *           the user's misses on them are then directory_local.
 *   even    two nodes take turns writing one page: it does not move.
 *   stale   a page moves 0 -> 1 -> 2 while node 3 remembers node 1: node
 *           3's miss is forwarded by node 1 and completes.
 *   chain   the same for a second page, then node 1's dsmd is killed:
 *           node 3's hint leads to a dead node, it asks everyone, reaches
 *           node 2, and reads the right value.
 *
 * Each rank prints "FAIL: ..." and exits 1 on the first wrong thing;
 * rank 0 ends with "PASS".
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rxe_job.h"

#define PAGE 4096
#define NODES 4
#define PER_NODE 4              /* pages each node pulls */
#define NPULL (NODES * PER_NODE)
#define ROUNDS 6


static int master_of(const void *p)
{
	int m = dsm_page_master(p);

	if (m < 0)
		FAIL("dsm_page_master: %s", strerror(-m));
	return m;
}

static void set_policy(void *addr, size_t len, const struct dsm_policy *p)
{
	int ret = dsm_set_policy(addr, len, p);

	if (ret)
		FAIL("dsm_set_policy: %s", strerror(-ret));
}

/* Rounds of the pull phase are slow in an emulated guest: counts decay
 * slowly there.  The stale phase wants entries to move on soon after they
 * arrived, and old counts to fade while it sleeps. */
static const struct dsm_policy pull_policy = {
	.placement = DSM_PLACE_STATIC, .migrate = 1, .share_pct = 60,
	.min_requests = 4, .window_ms = 2000, .load_pct = 200,
};
static const struct dsm_policy stale_policy = {
	.placement = DSM_PLACE_STATIC, .migrate = 1, .share_pct = 60,
	.min_requests = 2, .window_ms = 500, .load_pct = 200,
};

static void phase_policy(char *region, size_t len)
{
	struct dsm_policy p = pull_policy, got;
	int ret;

	if (rank == 0) {
		struct {
			size_t off, len;
			uint32_t share, reserved;
			int want;
		} bad[] = {
			{0, 0, 60, 0, -EINVAL},    /* empty */
			{0, PAGE, 50, 0, -EINVAL}, /* no hysteresis */
			{0, PAGE, 60, 1, -EINVAL}, /* reserved set */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			p.share_pct = bad[i].share;
			p.reserved[0] = bad[i].reserved;
			ret = dsm_set_policy(region + bad[i].off, bad[i].len,
					     &p);
			if (ret != bad[i].want)
				FAIL("dsm_set_policy case %zu: %d, want %d", i,
				     ret, bad[i].want);
		}
		ret = dsm_set_policy((void *)8, PAGE, &pull_policy);
		if (ret != -EINVAL)
			FAIL("dsm_set_policy outside the arena: %d", ret);
		if (dsm_get_policy(region, NULL) != -EINVAL ||
		    dsm_get_policy((void *)8, &got) != -EFAULT)
			FAIL("dsm_get_policy accepted bad arguments");
		set_policy(region, len, &pull_policy);
	}
	barrier();
	ret = dsm_get_policy(region + len - 1, &got);
	if (ret || got.share_pct != 60 || got.window_ms != 2000 ||
	    !got.migrate)
		FAIL("policy set on node 0 not seen here (%d, share %u)", ret,
		     got.share_pct);
	ret = dsm_get_policy(region + len, &got);
	if (ret || got.share_pct != 60 || got.window_ms != 500)
		FAIL("the page after the range does not have the cluster's "
		     "policy (share %u)", got.share_pct);
}

/* Each node pulls the pages that start at the next node. */
static void phase_pull(char *base)
{
	static int owner[NPULL];
	volatile long *w;
	struct dsm_stats a, b;
	int i, r, n = 0;

	for (i = 0; i < NPULL; i++)
		owner[i] = (master_of(base + (size_t)i * PAGE) + NODES - 1) %
			   NODES;
	barrier();
	for (r = 1; r <= ROUNDS; r++) {
		/* The owner writes word 0 (an upgrade after round 1)... */
		for (i = 0; i < NPULL; i++)
			if (owner[i] == rank)
				((volatile long *)(base + i * PAGE))[0] =
					r * 100 + rank;
		barrier();
		/* ...its predecessor writes word 1 (taking the page)... */
		for (i = 0; i < NPULL; i++)
			if ((owner[i] + NODES - 1) % NODES == rank)
				((volatile long *)(base + i * PAGE))[1] =
					r * 1000 + rank;
		barrier();
		/* ...and the owner reads both (a read miss). */
		for (i = 0; i < NPULL; i++) {
			if (owner[i] != rank)
				continue;
			w = (volatile long *)(base + i * PAGE);
			if (w[0] != r * 100 + rank ||
			    w[1] != r * 1000 + (rank + NODES - 1) % NODES)
				FAIL("page %d round %d: %ld %ld", i, r, w[0],
				     w[1]);
		}
		barrier();
	}
	for (i = 0; i < NPULL; i++) {
		if (owner[i] != rank)
			continue;
		if (master_of(base + i * PAGE) != dsm_node())
			FAIL("page %d is mastered by %d, not by its user", i,
			     master_of(base + i * PAGE));
		n++;
	}
	/* Every node agrees on every page's master. */
	for (i = 0; i < NPULL; i++)
		if (master_of(base + i * PAGE) != owner[i])
			FAIL("page %d: master %d here, its user is %d", i,
			     master_of(base + i * PAGE), owner[i]);
	barrier();
	/* The predecessor takes the pages once more; the owner's misses now
	 * ask no other node. */
	for (i = 0; i < NPULL; i++)
		if ((owner[i] + NODES - 1) % NODES == rank)
			((volatile long *)(base + i * PAGE))[1] = -rank;
	barrier();
	a = stats();
	for (i = 0; i < NPULL; i++)
		if (owner[i] == rank &&
		    ((volatile long *)(base + i * PAGE))[1] !=
			    -((rank + NODES - 1) % NODES))
			FAIL("page %d: wrong value after it moved", i);
	b = stats();
	if (b.read_faults - a.read_faults != (uint64_t)n ||
	    b.directory_local - a.directory_local != (uint64_t)n ||
	    b.directory_remote != a.directory_remote)
		FAIL("%d misses on pages it masters: %llu faults, %llu local, "
		     "%llu remote", n,
		     (unsigned long long)(b.read_faults - a.read_faults),
		     (unsigned long long)(b.directory_local - a.directory_local),
		     (unsigned long long)(b.directory_remote -
					  a.directory_remote));
	printf("pull: %d pages moved here (migrations in %llu, out %llu); "
	       "%d misses on them, all directory_local\n", n,
	       (unsigned long long)b.migrations_in,
	       (unsigned long long)b.migrations_out, n);
	barrier();
}

/* Nodes 0 and 1 take turns writing one page (mastered by node 3), a
 * barrier between turns: each turn is a read miss and an upgrade by one of
 * them, so the page is shared evenly.  It must not go back and forth: one
 * move at most over the run.  (One can happen: counts halve by the clock,
 * so right after its turn the node that asked last can hold 2/3 of the
 * recent requests when turns come about once a window.) */
static void phase_even(char *base, int npages, long *moves)
{
	volatile long *v = NULL;
	struct dsm_stats a = stats(), b;
	int i, turns = 40;

	for (i = 0; i < npages && !v; i++)
		if (master_of(base + (size_t)i * PAGE) == 3)
			v = (volatile long *)(base + (size_t)i * PAGE);
	if (!v)
		FAIL("no page mastered by node 3");
	barrier();
	for (i = 0; i < 2 * turns; i++) {
		if (i % 2 == rank)
			*v = *v + 1;
		barrier();
	}
	b = stats();
	moves[rank] = (long)(b.migrations_out - a.migrations_out);
	barrier();
	if (rank == 0) {
		long total = 0;

		for (i = 0; i < NODES; i++)
			total += moves[i];
		printf("even: %d turns each by nodes 0 and 1, %ld moves, "
		       "counter %ld\n", turns, total, *v);
		if (*v != 2 * turns || total > 1)
			FAIL("evenly shared page moved %ld times (counter %ld)",
			     total, *v);
	}
	barrier();
}

/* Node p pulls page from wherever it is, with node 0 as the other user. */
static void pull_to(volatile long *pg, int p, long tag)
{
	for (int r = 0; r < 4; r++) {
		if (rank == 0)
			pg[1] = tag + r;
		barrier();
		if (rank == p) {
			if (pg[1] != tag + r)
				FAIL("pull: read %ld, want %ld", pg[1], tag + r);
			pg[0] = tag + r;
		}
		barrier();
	}
	/* Asked by p only: the others would learn where it is by asking. */
	if (rank == p && master_of((const void *)pg) != p)
		FAIL("page did not move to node %d (master %d)", p,
		     master_of((const void *)pg));
}

/* Two pages go 0 -> 1 -> 2 while node 3 remembers node 1 for both. */
static void phase_stale_and_chain(char *base, int npages)
{
	volatile long *s1 = NULL, *s2 = NULL;
	struct dsm_stats a, b;
	long got;
	int i;

	for (i = 0; i < npages; i++) {
		volatile long *p = (volatile long *)(base + (size_t)i * PAGE);

		if (master_of((const void *)p) != 0)
			continue;
		if (!s1)
			s1 = p;
		else if (!s2)
			s2 = p;
	}
	if (!s1 || !s2)
		FAIL("no two pages mastered by node 0");
	barrier();
	pull_to(s1, 1, 10);
	pull_to(s2, 1, 20);
	if (rank == 3 && (s1[1] != 13 || s2[1] != 23))
		FAIL("node 3 read %ld %ld", s1[1], s2[1]); /* learns node 1 */
	barrier();
	/* An entry stays a window where it arrived; node 1's counts fade
	 * (halved five times). */
	usleep(2600 * 1000);
	pull_to(s1, 2, 30);
	pull_to(s2, 2, 40);
	/* stale: node 3's hint for s1 names node 1, which forwards. */
	if (rank == 3) {
		a = stats();
		if (s1[1] != 33)
			FAIL("stale hint: read %ld, want 33", s1[1]);
		b = stats();
		if (b.hint_misses - a.hint_misses != 1 ||
		    master_of((const void *)s1) != 2)
			FAIL("stale hint: %llu misses, master %d",
			     (unsigned long long)(b.hint_misses -
						  a.hint_misses),
			     master_of((const void *)s1));
		printf("stale: node 3 reached node 2 through node 1 "
		       "(hint misses 1)\n");
	}
	barrier();
	/* chain: node 1 dies; node 3's hint for s2 still names it. */
	if (rank == 1) {
		kill((pid_t)atol(getenv("DSM_DAEMON_PID")), SIGKILL);
		_exit(0);
	}
	wait_deaths(1); /* node 1's, on this node */
	if (rank == 3) {
		a = stats();
		got = s2[1];
		b = stats();
		if (got != 43 || b.who_has_broadcasts == a.who_has_broadcasts ||
		    b.lost_faults != a.lost_faults)
			FAIL("dead forwarder: read %ld (want 43), asked %llu",
			     got, (unsigned long long)(b.who_has_broadcasts -
						       a.who_has_broadcasts));
		printf("chain: node 1 dead, node 3 asked everyone and read "
		       "%ld from node 2's page\n", got);
	}
	/* Every survivor agrees: node 2 masters both. */
	if (master_of((const void *)s1) != 2 || master_of((const void *)s2) != 2)
		FAIL("after node 1 died: masters %d %d, want 2 2",
		     master_of((const void *)s1), master_of((const void *)s2));
	sleep(2); /* let rank 3 finish before the others detach */
}

int main(void)
{
	int npages = 64;
	char *pull, *other;
	long *moves;

	job_start(NODES);
	pull = dsm_alloc((size_t)NPULL * PAGE);
	other = dsm_alloc((size_t)npages * PAGE);
	moves = dsm_alloc(PAGE);
	if (!pull || !other || !moves)
		FAIL("dsm_alloc: %s", strerror(errno));
	phase_policy(pull, (size_t)NPULL * PAGE);
	phase_pull(pull);
	phase_even(other, npages / 2, moves);
	if (rank == 0)
		set_policy(other + (size_t)npages / 2 * PAGE,
			   (size_t)npages / 2 * PAGE, &stale_policy);
	barrier();
	phase_stale_and_chain(other + (size_t)npages / 2 * PAGE, npages / 2);
	if (rank == 0)
		printf("PASS: entries move to their users, stay when shared "
		       "evenly, and stale or dead hints still lead to them\n");
	return 0;
}
