/* A process killed in the middle of the run.
 *
 *   coherence exit [PAGES [barrier]]     (dsmrun -n 2 -p 2)
 *
 * Rank 1 (node 0) does not attach itself: it forks a child that calls
 * dsm_init as rank 1, takes part in the collectives, writes pattern pages
 * A (MODIFIED on node 0), raises a flag, and then keeps writing round
 * numbers into the first word of every page B (racing the other ranks,
 * which read and write B too) until its parent SIGKILLs it at a random
 * moment.  The parent checks the child died of that signal, then leaves a
 * marker file next to the daemons' sockets.
 * The survivors, ranks 0, 2 and 3, read A and B all along; after the
 * marker every one of them checks: A holds the pattern; B's first words
 * read s, ..., s, s-1, ..., s-1 (the child writes them in order) and never
 * went backwards; then they each write their own word of every B page and
 * wait to read the others' (the dead process's node still serves its
 * pages).  With "barrier", a barrier must then fail with -ECONNABORTED
 * (rank 1 is gone, and dsm.h promises that error) within 30 s rather than
 * hang or succeed.  Every wait is bounded by the watchdog.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VICTIM 1
#define BARRIER_S 30 /* a collective must notice a dead rank by then */

struct ex {
	size_t pages;
	char *a, *b;
	volatile uint64_t *ctl;   /* [0]: the child wrote A */
	char marker[512];
	uint64_t *seen;           /* per B page */
};

static uint64_t pat(size_t pg, size_t w)
{
	return 0xa11e0000000000ull | pg << 16 | w;
}

static void marker_path(struct ex *e)
{
	const char *sock = getenv("DSM_SOCKET");
	char dir[400];

	if (!sock)
		coh_fail("no DSM_SOCKET: run under dsmrun");
	snprintf(dir, sizeof(dir), "%s", sock);
	snprintf(e->marker, sizeof(e->marker), "%s/coherence-exit.killed",
		 dirname(dir));
}

static void attach(struct ex *e)
{
	coh_init();
	if (coh.lsize < 2 || coh.nnodes < 2)
		coh_fail("needs 2 nodes and 2 processes per node "
			 "(dsmrun -p 2)");
	e->a = coh_alloc(e->pages * PAGE);
	e->b = coh_alloc(e->pages * PAGE);
	e->ctl = coh_alloc(PAGE);
	coh_barrier();
}

/* The child: rank 1 until it is killed. */
static void __attribute__((noreturn)) victim(struct ex *e, int fd)
{
	uint64_t s;
	size_t pg, w;

	coh_watchdog(120);
	attach(e);
	coh_phase("exit: the child writes A");
	for (pg = 0; pg < e->pages; pg++)
		for (w = 0; w < WORDS_PER_PAGE; w++)
			st64(word_at(e->a, pg, w), pat(pg, w));
	st64(e->ctl, 1);
	if (write(fd, "w", 1) != 1)
		coh_fail("pipe to the parent: %s", strerror(errno));
	coh_phase("exit: the child writes B until killed");
	for (s = 1;; s++)
		for (pg = 0; pg < e->pages; pg++)
			st64(word_at(e->b, pg, 0), s);
}

/* The parent: kill the child at a random moment after it wrote A. */
static void parent(struct ex *e)
{
	int p[2], status;
	struct rng r = {(uint64_t)getpid()};
	unsigned int delay;
	char c;
	pid_t pid;

	if (pipe(p))
		coh_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		coh_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		victim(e, p[1]);
	}
	close(p[1]);
	coh_phase("exit: waiting for the child to write A");
	if (read(p[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		coh_fail("the child ended before writing A (status %#x)",
			 status);
	}
	delay = 50000 + rng_below(&r, 400000);
	usleep(delay);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		coh_fail("the child was not killed by SIGKILL (status %#x)",
			 status);
	close(open(e->marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	coh_say("killed rank 1's process %d with SIGKILL %u ms after it "
		"wrote A", (int)pid, delay / 1000);
}

static void check_a(struct ex *e, const char *when)
{
	size_t pg, w;

	for (pg = 0; pg < e->pages; pg++)
		for (w = 0; w < WORDS_PER_PAGE; w++) {
			uint64_t v = ld64(word_at(e->a, pg, w));

			if (v != pat(pg, w))
				coh_fail("%s: A page %zu word %zu is %#" PRIx64
					 ", the dead process wrote %#" PRIx64,
					 when, pg, w, v, pat(pg, w));
		}
}

/* B's first words never go below what this rank read before; once the
 * child is dead they read s, ..., s, s-1, ..., s-1. */
static void check_b(struct ex *e, const char *when, bool dead)
{
	uint64_t first = ld64(word_at(e->b, 0, 0)), v;
	size_t pg;

	for (pg = 0; pg < e->pages; pg++) {
		v = ld64(word_at(e->b, pg, 0));
		if (v < e->seen[pg] || (dead && (v > first || v + 1 < first)))
			coh_fail("%s: B page %zu holds round %" PRIu64
				 " (page 0: %" PRIu64 ", read before: %"
				 PRIu64 ")", when, pg, v, first, e->seen[pg]);
		e->seen[pg] = v;
	}
}

static void while_alive(struct ex *e)
{
	struct backoff bo = {0};
	size_t pg;
	long n = 0;

	coh_phase("exit: waiting for the child's flag");
	while (!ld64(e->ctl))
		backoff(&bo);
	coh_phase("exit: reading while the child runs and dies");
	while (access(e->marker, F_OK)) {
		check_a(e, "while the child ran");
		check_b(e, "while the child ran", false);
		pg = (size_t)n % e->pages;
		st64(word_at(e->b, pg, 8 + (size_t)coh.rank), (uint64_t)n);
		n++;
		usleep(1000);
	}
	coh_say("%ld rounds of reads while the child lived", n);
}

static void after_death(struct ex *e)
{
	size_t pg;
	int r;

	coh_phase("exit: checking after the death");
	check_a(e, "after the death");
	check_b(e, "after the death", true);
	for (pg = 0; pg < e->pages; pg++)
		st64(word_at(e->b, pg, 16 + (size_t)coh.rank), pg + 1);
	for (r = 0; r < coh.size; r++) {
		if (r == VICTIM)
			continue;
		for (pg = 0; pg < e->pages; pg++) {
			struct backoff bo = {0};

			while (ld64(word_at(e->b, pg, 16 + (size_t)r)) !=
			       pg + 1)
				backoff(&bo);
		}
	}
	coh_say("survived rank 1's death");
}

/* dsm.h: collectives fail with -ECONNABORTED once a rank of the job died. */
static void barrier_after_death(void)
{
	int rc;

	coh_phase("exit: a barrier without rank 1 (it must fail within %d s)",
		  BARRIER_S);
	coh_watchdog(BARRIER_S);
	rc = dsm_barrier();
	if (rc != -ECONNABORTED)
		coh_fail("a barrier after rank 1 died returned %d (%s), want "
			 "-ECONNABORTED", rc, strerror(-rc));
	coh_say("the barrier after the death says %s", strerror(-rc));
}

int mode_exit(int argc, char **argv)
{
	struct ex e = {0};
	const char *rank = getenv("DSM_RANK");

	e.pages = (size_t)arg_long(argc, argv, 1, 8);
	e.seen = calloc(e.pages, sizeof(*e.seen));
	if (!e.seen)
		coh_fail("out of memory");
	marker_path(&e);
	if (rank && atoi(rank) == VICTIM) {
		parent(&e);
	} else {
		attach(&e);
		while_alive(&e);
		after_death(&e);
		if (argc > 2 && !strcmp(argv[2], "barrier"))
			barrier_after_death();
		coh_finish();
	}
	free(e.seen);
	return 0;
}
