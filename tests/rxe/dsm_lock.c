/* The lock manager on real rxe (rxe test "dsm_lock", 4 nodes, one rank
 * each), through the public API only.  Phases, in order, each ended by a
 * barrier and reported by rank 0 in one line:
 *
 *   ex        every rank adds to a shared counter N times under EX, with a
 *             read, a sched_yield and a write: the sum is exact.  While one
 *             rank holds EX, every other rank's NOQUEUE request fails in
 *             every mode but NL.
 *   pr        all ranks hold PR at once; EX (new or by conversion) fails.
 *   matrix    rank 0 holds each mode, rank 1 asks each mode with NOQUEUE:
 *             granted exactly where the VMS matrix says compatible.
 *   queue     waiters are granted in the order they queued; a conversion
 *             is granted before a new request that queued earlier.
 *   noqueue   NOQUEUE (-EAGAIN), timeout (-ETIMEDOUT, never granted),
 *             ASYNC (ast later, on another thread), CANCEL (-ECANCELED) of
 *             a new request and of a conversion.
 *   bast      exactly the holders that block a request are told, with its
 *             mode; a bast that unlocks from inside the callback works.
 *   valblk    the value block travels between nodes with grants, and only
 *             a PW or EX release or down-conversion writes it.
 *   tree      child resources are scoped by their parent; a parent with
 *             children cannot be unlocked; a parent must be held.
 *   errors    bad arguments are refused at once.
 *   deadlock  a cycle of two and of three nodes: exactly one victim each,
 *             the others are granted once it gives way.
 *   move      a resource used by one node only moves there: its requests
 *             then send nothing; another node is forwarded and learns.
 *   death     (last) node 3's dsmd is killed while it masters a resource a
 *             survivor holds in EX and another waits for, and while it
 *             holds another resource in EX: the survivors rebuild the first
 *             (it still excludes, its waiter gets it, its value block is
 *             kept, its master is alive) and the second's value block is
 *             marked invalid until it is written again.
 *
 * Where an order between ranks matters, it comes from barriers or from
 * locks, never from timing: the only sleeps let a request reach its master
 * before the next one is made, and the only timing checked is "not granted
 * before X".  After node 3 dies, barriers fail (a rank of the job died) and
 * shared pages node 3 mastered or held are lost, so the survivors meet
 * through a page that node 3 never touched and that a survivor masters.
 *
 * Usage: dsm_lock [N]: N increments per rank in the ex phase (default 100).
 * Each rank prints "FAIL: rank R: ..." and exits 1 on the first wrong
 * thing; rank 0 ends with "PASS".
 */
#define _GNU_SOURCE
#include <dsm.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rxe_job.h"

#define PAGE 4096
#define NODES 4
#define NMODES 6
#define WAIT_MS 20000           /* longest wait for a callback or a peer */
#define SETTLE_US (300 * 1000)  /* for a request to reach its master */
#define CYCLE_TIMEOUT_MS 15000  /* a deadlock not broken by then fails */

#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))


static const char *const mode_name[NMODES] = {"NL", "CR", "CW",
					      "PR", "PW", "EX"};

/* Which modes may be held together (include/dsm.h; VMS). */
static const char compat[NMODES][NMODES] = {
	/*  NL CR CW PR PW EX */
	{1, 1, 1, 1, 1, 1}, /* NL */
	{1, 1, 1, 1, 1, 0}, /* CR */
	{1, 1, 1, 0, 0, 0}, /* CW */
	{1, 1, 0, 1, 0, 0}, /* PR */
	{1, 1, 0, 0, 0, 0}, /* PW */
	{1, 0, 0, 0, 0, 0}, /* EX */
};

/* The page every rank shares until node 3 dies.  Fields are written by
 * one rank and read by others after a barrier, or written and read under
 * an EX lock, unless READ_ONCE says otherwise. */
struct shared {
	long counter;            /* ex */
	int order[NODES];        /* queue: who was granted, in order */
	int norder;
	int released[NODES];     /* set by a holder just before it unlocks */
	int result[NODES];       /* deadlock: each rank's request */
	uint64_t deadlocks[NODES]; /* deadlock: lock_deadlocks per node */
	uint64_t lkid;           /* tree: a lock of rank 0's */
	char names[4][DSM_LOCK_NAME_MAX + 1];
};

/* The survivors' page in the death phase. */
struct survivors {
	int checked;             /* rank 0 found R1 still held in EX */
	int r1_released;         /* rank 1 is about to unlock R1 */
	int done[NODES];
	uint64_t rebuilt[NODES]; /* lock_rebuilt gained per node */
};

/* A lock whose results come through callbacks.  The callbacks run on a
 * libdsm thread: they touch only this struct (never shared memory, which
 * could fault into the thread that serves faults) and publish through the
 * atomics, whose seq_cst stores order the plain fields written before. */
struct cb_lock {
	struct dsm_lksb sb;
	pid_t ast_tid;
	int unlock_in_bast;      /* the bast releases the lock itself */
	int bast_unlock_ret;
	atomic_int asts;
	atomic_int basts;
	atomic_int bast_mode;
	atomic_int bast_unlocked;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int lk(int mode, struct dsm_lksb *sb, uint32_t flags,
	      const char *name, uint64_t parent)
{
	return dsm_lock(mode, sb, flags, name, parent, 0, NULL, NULL, NULL);
}

static void lock_ok(int mode, struct dsm_lksb *sb, uint32_t flags,
		    const char *name, uint64_t parent)
{
	int ret = lk(mode, sb, flags, name, parent);

	if (ret || sb->status)
		FAIL("dsm_lock(%s, %s, flags %#x): %d (%s), status %d", name,
		     mode_name[mode], flags, ret, strerror(-ret), sb->status);
}

static void unlock_ok(struct dsm_lksb *sb, uint32_t flags, const char *name)
{
	int ret = dsm_unlock(sb, flags);

	if (ret)
		FAIL("dsm_unlock(%s, flags %#x): %s", name, flags,
		     strerror(-ret));
}

/* A request that must be refused with `want`, in the return value and,
 * for those that reached a master, in lksb->status. */
static void lock_fails(int want, int mode, struct dsm_lksb *sb,
		       uint32_t flags, const char *name, uint64_t parent,
		       int check_status)
{
	int ret = lk(mode, sb, flags, name, parent);

	if (ret != want || (check_status && sb->status != want))
		FAIL("dsm_lock(%s, %s, flags %#x): %d, status %d, want %d (%s)",
		     name ? name : "(null)", mode >= 0 && mode < NMODES ?
		     mode_name[mode] : "?", flags, ret, sb->status, want,
		     strerror(-want));
}

static void on_ast(void *arg)
{
	struct cb_lock *l = arg;

	l->ast_tid = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&l->asts, 1);
}

static void on_bast(void *arg, int mode)
{
	struct cb_lock *l = arg;

	atomic_store(&l->bast_mode, mode);
	/* Only the first notification releases: a second one (allowed) must
	 * not unlock a lock that is gone. */
	if (atomic_fetch_add(&l->basts, 1) == 0 && l->unlock_in_bast) {
		l->bast_unlock_ret = dsm_unlock(&l->sb, 0);
		atomic_store(&l->bast_unlocked, 1);
	}
}

static void cb_reset(struct cb_lock *l)
{
	memset(&l->sb, 0, sizeof(l->sb));
	l->ast_tid = 0;
	l->unlock_in_bast = 0;
	l->bast_unlock_ret = 0;
	atomic_store(&l->asts, 0);
	atomic_store(&l->basts, 0);
	atomic_store(&l->bast_mode, -1);
	atomic_store(&l->bast_unlocked, 0);
}

/* An ASYNC request (or conversion, with DSM_LKF_CONVERT in flags). */
static void lock_async(struct cb_lock *l, int mode, uint32_t flags,
		       const char *name)
{
	int ret = dsm_lock(mode, &l->sb, flags | DSM_LKF_ASYNC, name, 0, 0,
			   on_ast, on_bast, l);

	if (ret)
		FAIL("dsm_lock(%s, %s, ASYNC|%#x): %s", name, mode_name[mode],
		     flags, strerror(-ret));
}

static void wait_atomic(atomic_int *v, int want, const char *what)
{
	long long end = now_ms() + WAIT_MS;

	while (atomic_load(v) < want) {
		if (now_ms() > end)
			FAIL("%s: not within %d s", what, WAIT_MS / 1000);
		usleep(2000);
	}
}

/* Wait for a shared flag that a survivor sets (death phase). */
static void wait_shared(int *flag, const char *what)
{
	long long end = now_ms() + WAIT_MS;

	while (!READ_ONCE(*flag)) {
		if (now_ms() > end)
			FAIL("%s: not within %d s", what, WAIT_MS / 1000);
		usleep(5000);
	}
}

/* The ast of an ASYNC request came, once, with status `want`. */
static void wait_ast(struct cb_lock *l, int want, const char *what)
{
	wait_atomic(&l->asts, 1, what);
	if (atomic_load(&l->asts) != 1 || l->sb.status != want)
		FAIL("%s: %d asts, status %d, want one with %d", what,
		     atomic_load(&l->asts), l->sb.status, want);
}

static void no_ast(struct cb_lock *l, const char *what)
{
	if (atomic_load(&l->asts))
		FAIL("%s: granted too early (status %d)", what, l->sb.status);
}

/* The first of prefix.0, prefix.1, ... whose resource `node` masters, as
 * this node sees it.  Names are tried in order, so every run picks the
 * same one for the same hashing. */
static void pick_name(const char *prefix, int node, char *out)
{
	char name[DSM_LOCK_NAME_MAX + 1];
	struct dsm_lksb sb;
	int i, m;

	for (i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "%s.%d", prefix, i);
		lock_ok(DSM_LK_NL, &sb, 0, name, 0);
		m = dsm_lock_master(&sb);
		unlock_ok(&sb, 0, name);
		if (m < 0)
			FAIL("dsm_lock_master(%s): %s", name, strerror(-m));
		if (m == node) {
			strcpy(out, name);
			return;
		}
	}
	FAIL("no name %s.* mastered by node %d in 256 tries", prefix, node);
}

/* ---- phases ---- */

static void phase_ex(struct shared *s, int n)
{
	struct dsm_lksb sb, t;
	long v;
	int i, m;

	for (i = 0; i < n; i++) {
		lock_ok(DSM_LK_EX, &sb, 0, "counter", 0);
		/* Not atomic on purpose: a second holder would lose adds. */
		v = READ_ONCE(s->counter);
		sched_yield();
		WRITE_ONCE(s->counter, v + 1);
		unlock_ok(&sb, 0, "counter");
	}
	barrier();
	if (READ_ONCE(s->counter) != (long)NODES * n)
		FAIL("counter %ld after %d x %d increments under EX",
		     READ_ONCE(s->counter), NODES, n);
	barrier();
	if (rank == 0)
		lock_ok(DSM_LK_EX, &sb, 0, "counter", 0);
	barrier();
	if (rank != 0) {
		for (m = DSM_LK_CR; m <= DSM_LK_EX; m++)
			lock_fails(-EAGAIN, m, &t, DSM_LKF_NOQUEUE, "counter",
				   0, 1);
		lock_ok(DSM_LK_NL, &t, DSM_LKF_NOQUEUE, "counter", 0);
		unlock_ok(&t, 0, "counter");
	}
	barrier();
	if (rank == 0) {
		unlock_ok(&sb, 0, "counter");
		printf("ex: counter %ld = %d ranks x %d under EX; NOQUEUE "
		       "CR..EX refused, NL granted while EX held\n",
		       s->counter, NODES, n);
	}
	barrier();
}

static void phase_pr(void)
{
	struct dsm_lksb sb, t;

	lock_ok(DSM_LK_PR, &sb, 0, "shared", 0);
	barrier(); /* every rank holds PR here */
	if (rank == 1)
		lock_fails(-EAGAIN, DSM_LK_EX, &t, DSM_LKF_NOQUEUE, "shared",
			   0, 1);
	if (rank == 2) {
		/* A conversion that fails keeps the lock in PR. */
		lock_fails(-EAGAIN, DSM_LK_EX, &sb,
			   DSM_LKF_NOQUEUE | DSM_LKF_CONVERT, "shared", 0, 1);
		lock_ok(DSM_LK_PR, &t, DSM_LKF_NOQUEUE, "shared", 0);
		unlock_ok(&t, 0, "shared");
	}
	barrier();
	unlock_ok(&sb, 0, "shared");
	barrier();
	if (rank == 0)
		printf("pr: %d PR holders at once; EX and PR->EX with NOQUEUE "
		       "refused\n", NODES);
}

static void phase_matrix(struct shared *s)
{
	struct dsm_lksb held[NMODES], t;
	char name[DSM_LOCK_NAME_MAX + 1];
	int a, b, ret, granted = 0;

	if (rank == 0)
		for (a = 0; a < NMODES; a++) {
			snprintf(name, sizeof(name), "matrix.%s",
				 mode_name[a]);
			lock_ok(a, &held[a], 0, name, 0);
		}
	barrier();
	if (rank == 1)
		for (a = 0; a < NMODES; a++)
			for (b = 0; b < NMODES; b++) {
				snprintf(name, sizeof(name), "matrix.%s",
					 mode_name[a]);
				ret = lk(b, &t, DSM_LKF_NOQUEUE, name, 0);
				if (ret != (compat[a][b] ? 0 : -EAGAIN) ||
				    t.status != ret)
					FAIL("%s held, %s asked: %d (status "
					     "%d), want %s", mode_name[a],
					     mode_name[b], ret, t.status,
					     compat[a][b] ? "granted" :
					     "-EAGAIN");
				if (ret == 0) {
					granted++;
					unlock_ok(&t, 0, name);
				}
			}
	barrier();
	if (rank == 0)
		for (a = 0; a < NMODES; a++)
			unlock_ok(&held[a], 0, "matrix");
	if (rank == 1)
		s->result[0] = granted;
	barrier();
	if (rank == 0)
		printf("matrix: 36 pairs across nodes, %d granted and %d "
		       "refused as the VMS matrix says\n", s->result[0],
		       36 - s->result[0]);
}

/* A waiter granted EX notes its turn, under the lock, then lets go. */
static void take_turn(struct shared *s, struct cb_lock *l, int nrel,
		      const int *rel, const char *name)
{
	int i;

	wait_ast(l, 0, name);
	for (i = 0; i < nrel; i++)
		if (!READ_ONCE(s->released[rel[i]]))
			FAIL("%s granted before rank %d released it", name,
			     rel[i]);
	i = s->norder;
	s->order[i] = rank;
	s->norder = i + 1;
	usleep(20 * 1000); /* a second holder would write over us now */
	unlock_ok(&l->sb, 0, name);
}

/* Ranks 2, 3, 1 queue for EX in that order (not the ranks' order, so
 * that no accident of numbering passes), then rank 0 lets go. */
static void queue_order(struct shared *s)
{
	static const int who[] = {2, 3, 1};
	static struct cb_lock w;
	struct dsm_lksb sb;
	const int zero = 0;
	int i;

	cb_reset(&w);
	if (rank == 0) {
		memset(s->released, 0, sizeof(s->released));
		s->norder = 0;
	}
	if (rank == 0)
		lock_ok(DSM_LK_EX, &sb, 0, "queue", 0);
	barrier();
	for (i = 0; i < 3; i++) {
		if (rank == who[i]) {
			lock_async(&w, DSM_LK_EX, 0, "queue");
			usleep(SETTLE_US); /* at the master before the next */
		}
		barrier();
	}
	if (rank != 0)
		no_ast(&w, "queue");
	barrier();
	if (rank == 0) {
		s->released[0] = 1;
		unlock_ok(&sb, 0, "queue");
	} else {
		take_turn(s, &w, 1, &zero, "queue");
	}
	barrier();
	for (i = 0; i < 3; i++)
		if (s->norder != 3 || s->order[i] != who[i])
			FAIL("queue: granted %d: %d %d %d, want 2 3 1",
			     s->norder, s->order[0], s->order[1], s->order[2]);
	barrier();
}

/* Ranks 0 and 2 hold PR, rank 1 holds `from`.  Rank 3 queues a new EX
 * request, then rank 1 converts to EX.  When 0 and 2 let go, rank 1's
 * conversion must come first.  From NL this is the real test: rank 3's
 * request is then compatible with rank 1's granted NL, so only the rule
 * "conversions before new requests" keeps it waiting; from PR it also
 * shows the conversion waits for the other PR holders. */
static void conversion_first(struct shared *s, int from)
{
	static const int rel[] = {0, 2};
	static struct cb_lock w;
	char name[DSM_LOCK_NAME_MAX + 1];
	struct dsm_lksb sb;

	snprintf(name, sizeof(name), "convert.%s", mode_name[from]);
	cb_reset(&w);
	if (rank == 0) {
		memset(s->released, 0, sizeof(s->released));
		s->norder = 0;
	}
	if (rank == 0 || rank == 2)
		lock_ok(DSM_LK_PR, &sb, 0, name, 0);
	if (rank == 1)
		lock_ok(from, &w.sb, 0, name, 0);
	barrier();
	if (rank == 3) {
		lock_async(&w, DSM_LK_EX, 0, name);
		usleep(SETTLE_US);
	}
	barrier();
	if (rank == 1) {
		lock_async(&w, DSM_LK_EX, DSM_LKF_CONVERT, name);
		usleep(SETTLE_US);
	}
	barrier();
	if (rank == 1 || rank == 3)
		no_ast(&w, name);
	barrier();
	if (rank == 0 || rank == 2) {
		s->released[rank] = 1;
		unlock_ok(&sb, 0, name);
	} else {
		take_turn(s, &w, 2, rel, name);
	}
	barrier();
	if (s->norder != 2 || s->order[0] != 1 || s->order[1] != 3)
		FAIL("%s: granted %d: %d %d, want the conversion (1) first, "
		     "then 3", name, s->norder, s->order[0], s->order[1]);
	barrier();
}

static void phase_queue(struct shared *s)
{
	queue_order(s);
	conversion_first(s, DSM_LK_NL);
	conversion_first(s, DSM_LK_PR);
	if (rank == 0)
		printf("queue: EX waiters granted in queue order (2 3 1); "
		       "NL->EX and PR->EX conversions granted before an "
		       "earlier new EX\n");
}

/* EX on name is granted, in time.  Waits rather than NOQUEUE: a release
 * reaches the master after dsm_unlock() returns, so another node's
 * NOQUEUE request right after it may still find the lock held. */
static void leftover_free(const char *name)
{
	struct dsm_lksb t;
	int ret = dsm_lock(DSM_LK_EX, &t, 0, name, 0, WAIT_MS, NULL, NULL,
			   NULL);

	if (ret)
		FAIL("EX on %s after its holder let go: %s (a request that "
		     "failed was granted after all?)", name, strerror(-ret));
	unlock_ok(&t, 0, name);
}

static void phase_noqueue(struct shared *s)
{
	static struct cb_lock w;
	struct dsm_lksb sb, t;
	pid_t me = (pid_t)syscall(SYS_gettid);
	long long t0, waited = 0;
	int ret;

	/* NOQUEUE and timeout against rank 0's EX. */
	if (rank == 0)
		lock_ok(DSM_LK_EX, &sb, 0, "noqueue", 0);
	barrier();
	if (rank == 1) {
		lock_fails(-EAGAIN, DSM_LK_EX, &t, DSM_LKF_NOQUEUE, "noqueue",
			   0, 1);
		t0 = now_ms();
		ret = dsm_lock(DSM_LK_EX, &t, 0, "noqueue", 0, 300, NULL, NULL,
			       NULL);
		waited = now_ms() - t0;
		if (ret != -ETIMEDOUT || t.status != -ETIMEDOUT)
			FAIL("300 ms timeout against EX: %d, status %d", ret,
			     t.status);
		/* Timers do not fire early: a timeout long before 300 ms
		 * would mean it did not wait at all. */
		if (waited < 150)
			FAIL("timed out after %lld ms of 300", waited);
		ret = dsm_unlock(&t, 0);
		if (ret != -ENOLCK)
			FAIL("unlock of a timed-out request: %d", ret);
		s->result[0] = (int)waited;
	}
	barrier();
	if (rank == 0)
		unlock_ok(&sb, 0, "noqueue");
	barrier();
	/* A leftover of the timed-out request, queued ahead of this one,
	 * would be granted first and never let go. */
	if (rank == 2)
		leftover_free("noqueue");
	barrier();

	/* ASYNC: accepted at once, the ast comes later on another thread. */
	cb_reset(&w);
	if (rank == 0)
		lock_ok(DSM_LK_EX, &sb, 0, "async", 0);
	barrier();
	if (rank == 1) {
		lock_async(&w, DSM_LK_EX, 0, "async");
		usleep(SETTLE_US);
		no_ast(&w, "async");
	}
	barrier();
	if (rank == 0)
		unlock_ok(&sb, 0, "async");
	if (rank == 1) {
		wait_ast(&w, 0, "async");
		if (w.ast_tid == me || w.ast_tid == 0)
			FAIL("ast ran on the caller's thread (%d)", w.ast_tid);
		unlock_ok(&w.sb, 0, "async");
	}
	barrier();

	/* CANCEL of a waiting new request, then of a waiting conversion
	 * (which keeps its granted mode). */
	cb_reset(&w);
	if (rank == 0)
		lock_ok(DSM_LK_EX, &sb, 0, "cancel", 0);
	barrier();
	if (rank == 1) {
		lock_async(&w, DSM_LK_EX, 0, "cancel");
		usleep(SETTLE_US);
		unlock_ok(&w.sb, DSM_LKF_CANCEL, "cancel");
		wait_ast(&w, -ECANCELED, "cancelled request");
		if ((ret = dsm_unlock(&w.sb, DSM_LKF_CANCEL)) != -ENOLCK ||
		    (ret = dsm_unlock(&w.sb, 0)) != -ENOLCK)
			FAIL("cancelled request: unlock gave %d, want -ENOLCK",
			     ret);
		cb_reset(&w);
		lock_ok(DSM_LK_NL, &w.sb, 0, "cancel", 0);
		lock_async(&w, DSM_LK_EX, DSM_LKF_CONVERT, "cancel");
		usleep(SETTLE_US);
		unlock_ok(&w.sb, DSM_LKF_CANCEL, "cancel conversion");
		wait_ast(&w, -ECANCELED, "cancelled conversion");
		/* Still held in NL: another NL->EX NOQUEUE is refused ... */
		lock_fails(-EAGAIN, DSM_LK_EX, &w.sb,
			   DSM_LKF_CONVERT | DSM_LKF_NOQUEUE, "cancel", 0, 1);
		/* ... and the lock unlocks. */
		unlock_ok(&w.sb, 0, "cancel");
	}
	barrier();
	if (rank == 0)
		unlock_ok(&sb, 0, "cancel");
	barrier();
	if (rank == 2) /* nothing cancelled was granted afterwards */
		leftover_free("cancel");
	barrier();
	if (rank == 0)
		printf("noqueue: -EAGAIN; 300 ms timeout -> -ETIMEDOUT after "
		       "%d ms, never granted; ASYNC ast on another thread; "
		       "CANCEL -> -ECANCELED (request and conversion)\n",
		       s->result[0]);
	barrier();
}

static void phase_bast(struct shared *s)
{
	static struct cb_lock l;
	int basts;

	cb_reset(&l);
	s->released[1] = 0;
	if (rank == 1 || rank == 2) {
		l.unlock_in_bast = rank == 2;
		if (dsm_lock(DSM_LK_PR, &l.sb, 0, "bast", 0, 0, NULL, on_bast,
			     &l) || l.sb.status)
			FAIL("PR on bast: %d", l.sb.status);
	}
	if (rank == 3 && (dsm_lock(DSM_LK_NL, &l.sb, 0, "bast", 0, 0, NULL,
				   on_bast, &l) || l.sb.status))
		FAIL("NL on bast: %d", l.sb.status);
	barrier();
	if (rank == 0)
		lock_async(&l, DSM_LK_EX, 0, "bast");
	if (rank == 1) {
		wait_atomic(&l.basts, 1, "bast to PR holder");
		s->released[1] = 1;
		unlock_ok(&l.sb, 0, "bast");
	}
	if (rank == 2) {
		wait_atomic(&l.bast_unlocked, 1, "unlock from inside a bast");
		if (l.bast_unlock_ret)
			FAIL("dsm_unlock from a bast: %s",
			     strerror(-l.bast_unlock_ret));
	}
	if (rank == 0) {
		wait_ast(&l, 0, "EX after the PR holders let go");
		if (!READ_ONCE(s->released[1]))
			FAIL("EX granted while rank 1 held PR");
		if (atomic_load(&l.basts))
			FAIL("the requester itself got a bast");
	}
	barrier();
	basts = atomic_load(&l.basts);
	if ((rank == 1 || rank == 2) &&
	    (basts != 1 || atomic_load(&l.bast_mode) != DSM_LK_EX))
		FAIL("PR holder: %d basts, mode %d; want one, for EX", basts,
		     atomic_load(&l.bast_mode));
	if (rank == 3 && basts)
		FAIL("the NL holder, which blocks nobody, got %d basts",
		     basts);
	barrier();
	if (rank == 0 || rank == 3)
		unlock_ok(&l.sb, 0, "bast");
	if (rank == 0)
		printf("bast: both PR holders told once of EX, the NL holder "
		       "not; a bast that unlocked let EX through\n");
	barrier();
}

static void lvb_is(const struct dsm_lksb *sb, const char *want,
		   const char *what)
{
	if (strncmp(sb->lvb, want, DSM_LVB_LEN) ||
	    (sb->flags & DSM_SBF_VALNOTVALID))
		FAIL("%s: value block \"%.16s\" (flags %#x), want \"%s\"",
		     what, sb->lvb, sb->flags, want);
}

static void lvb_set(struct dsm_lksb *sb, const char *v)
{
	memset(sb->lvb, 0, DSM_LVB_LEN);
	memcpy(sb->lvb, v, strnlen(v, DSM_LVB_LEN));
}

/* Rank 3 holds NL throughout: a resource may be forgotten, value block
 * and all, when no lock is left on it (VMS does so); ours keeps it. */
static void phase_valblk(void)
{
	struct dsm_lksb sb, keep;

	if (rank == 3)
		lock_ok(DSM_LK_NL, &keep, 0, "valblk", 0);
	barrier();
	if (rank == 0) {
		lock_ok(DSM_LK_EX, &sb, DSM_LKF_VALBLK, "valblk", 0);
		lvb_set(&sb, "hello-1");
		unlock_ok(&sb, DSM_LKF_VALBLK, "valblk");
	}
	barrier();
	if (rank == 1) {
		lock_ok(DSM_LK_PR, &sb, DSM_LKF_VALBLK, "valblk", 0);
		lvb_is(&sb, "hello-1", "PR after EX wrote hello-1");
		unlock_ok(&sb, 0, "valblk");
	}
	barrier();
	if (rank == 2) {
		lock_ok(DSM_LK_PW, &sb, DSM_LKF_VALBLK, "valblk", 0);
		lvb_is(&sb, "hello-1", "PW after EX wrote hello-1");
		lvb_set(&sb, "hello-2");
		lock_ok(DSM_LK_NL, &sb, DSM_LKF_CONVERT | DSM_LKF_VALBLK,
			"valblk", 0);
		unlock_ok(&sb, 0, "valblk");
	}
	barrier();
	if (rank == 3) {
		lock_ok(DSM_LK_PR, &keep, DSM_LKF_CONVERT | DSM_LKF_VALBLK,
			"valblk", 0);
		lvb_is(&keep, "hello-2", "NL->PR after PW->NL wrote hello-2");
		/* A PR holder's block is never written back. */
		lvb_set(&keep, "junk-pr");
		lock_ok(DSM_LK_NL, &keep, DSM_LKF_CONVERT | DSM_LKF_VALBLK,
			"valblk", 0);
	}
	barrier();
	if (rank == 0) {
		/* Nor an EX holder's without VALBLK on the unlock. */
		lock_ok(DSM_LK_EX, &sb, DSM_LKF_VALBLK, "valblk", 0);
		lvb_is(&sb, "hello-2", "EX after PR released");
		lvb_set(&sb, "junk-ex");
		unlock_ok(&sb, 0, "valblk");
	}
	barrier();
	if (rank == 1) {
		lock_ok(DSM_LK_PR, &sb, DSM_LKF_VALBLK, "valblk", 0);
		lvb_is(&sb, "hello-2", "PR after releases that do not write");
		unlock_ok(&sb, 0, "valblk");
	}
	barrier();
	if (rank == 3)
		unlock_ok(&keep, 0, "valblk");
	if (rank == 0)
		printf("valblk: hello-1 (EX on node 0) read by PR on node 1; "
		       "hello-2 (PW->NL on node 2) by NL->PR on node 3; PR and "
		       "plain EX releases do not write\n");
	barrier();
}

static void phase_tree(struct shared *s)
{
	struct dsm_lksb p1, p2, kid, kid2, t;
	uint64_t gone;

	if (rank == 0) {
		lock_ok(DSM_LK_PR, &p1, 0, "tree.p1", 0);
		s->lkid = p1.lkid;
	}
	if (rank == 1) {
		lock_ok(DSM_LK_PR, &p1, 0, "tree.p1", 0);
		lock_ok(DSM_LK_PR, &p2, 0, "tree.p2", 0);
	}
	barrier();
	if (rank == 0)
		lock_ok(DSM_LK_EX, &kid, DSM_LKF_NOQUEUE, "kid", p1.lkid);
	barrier();
	if (rank == 1) {
		/* Under another parent: another resource. */
		lock_ok(DSM_LK_EX, &kid, DSM_LKF_NOQUEUE, "kid", p2.lkid);
		/* Under the same parent resource: rank 0's child. */
		lock_fails(-EAGAIN, DSM_LK_EX, &kid2, DSM_LKF_NOQUEUE, "kid",
			   p1.lkid, 1);
		if (dsm_lock_master(&kid) < 0)
			FAIL("dsm_lock_master of a child: %d",
			     dsm_lock_master(&kid));
	}
	if (rank == 2) {
		/* At the top: another resource again. */
		lock_ok(DSM_LK_EX, &t, DSM_LKF_NOQUEUE, "kid", 0);
		unlock_ok(&t, 0, "kid");
		/* Rank 2 holds no lock: rank 0's lkid is not its own. */
		lock_fails(-ENOLCK, DSM_LK_NL, &t, 0, "kid", s->lkid, 0);
		lock_fails(-ENOLCK, DSM_LK_NL, &t, 0, "kid", 0x5eed5eed5eedull,
			   0);
	}
	if (rank == 0) {
		int ret = dsm_unlock(&p1, 0);

		if (ret != -ENOTEMPTY)
			FAIL("unlock of a parent with a child held: %d", ret);
	}
	barrier();
	if (rank == 0) {
		unlock_ok(&kid, 0, "kid");
		gone = p1.lkid;
		unlock_ok(&p1, 0, "tree.p1");
		lock_fails(-ENOLCK, DSM_LK_NL, &t, 0, "kid", gone, 0);
	}
	if (rank == 1) {
		unlock_ok(&kid, 0, "kid");
		unlock_ok(&p2, 0, "tree.p2");
		unlock_ok(&p1, 0, "tree.p1");
	}
	barrier();
	if (rank == 0)
		printf("tree: \"kid\" under two parents and at the top are three "
		       "resources; -ENOTEMPTY, -ENOLCK for parents as they "
		       "should\n");
}

static void phase_errors(void)
{
	static struct cb_lock l;
	char name[DSM_LOCK_NAME_MAX + 2];
	struct dsm_lksb sb, t;
	int ret;

	cb_reset(&l);
	memset(&sb, 0, sizeof(sb));
	lock_fails(-EINVAL, -1, &sb, 0, "err", 0, 0);
	lock_fails(-EINVAL, DSM_LK_EX + 1, &sb, 0, "err", 0, 0);
	lock_fails(-EINVAL, DSM_LK_NL, &sb, 0x100, "err", 0, 0);
	lock_fails(-EINVAL, DSM_LK_NL, &sb, 0, "", 0, 0);
	lock_fails(-EINVAL, DSM_LK_NL, &sb, 0, NULL, 0, 0);
	if ((ret = lk(DSM_LK_NL, NULL, 0, "err", 0)) != -EINVAL)
		FAIL("dsm_lock with no lksb: %d", ret);
	lock_fails(-EINVAL, DSM_LK_NL, &sb, DSM_LKF_ASYNC, "err", 0, 0);
	/* Refused at once means no callback either. */
	if ((ret = dsm_lock(DSM_LK_EX + 1, &l.sb, DSM_LKF_ASYNC, "err", 0, 0,
			    on_ast, on_bast, &l)) != -EINVAL)
		FAIL("ASYNC with a bad mode: %d", ret);
	memset(name, 'n', DSM_LOCK_NAME_MAX + 1);
	name[DSM_LOCK_NAME_MAX + 1] = '\0';
	lock_fails(-ENAMETOOLONG, DSM_LK_NL, &sb, 0, name, 0, 0);
	name[DSM_LOCK_NAME_MAX] = '\0'; /* the longest name is fine */
	lock_ok(DSM_LK_NL, &t, 0, name, 0);
	sb.lkid = t.lkid ^ 0x40000000ull;
	lock_fails(-ENOLCK, DSM_LK_EX, &sb, DSM_LKF_CONVERT, NULL, 0, 0);
	if ((ret = dsm_unlock(&sb, 0)) != -ENOLCK)
		FAIL("unlock of an unknown lkid: %d", ret);
	if ((ret = dsm_unlock(&t, 0x100)) != -EINVAL)
		FAIL("unlock with bad flags: %d", ret);
	if ((ret = dsm_unlock(NULL, 0)) != -EINVAL)
		FAIL("unlock of NULL: %d", ret);
	if ((ret = dsm_unlock(&t, DSM_LKF_CANCEL)) != -ENOLCK)
		FAIL("cancel with nothing waiting: %d", ret);
	if ((ret = dsm_lock_master(&sb)) != -ENOLCK)
		FAIL("dsm_lock_master of an unknown lkid: %d", ret);
	unlock_ok(&t, 0, "the longest name");
	usleep(100 * 1000);
	if (atomic_load(&l.asts) || atomic_load(&l.basts))
		FAIL("a refused request called back");
	barrier();
	if (rank == 0)
		printf("errors: bad mode, flags, lksb, names (empty, NULL, 65 "
		       "bytes), ASYNC without ast, unknown lkids refused on "
		       "every rank\n");
}

/* ranks[i] holds names[i] in EX, then asks for names[(i+1) % n]. */
static void cycle(struct shared *s, int n, const char *what)
{
	struct dsm_lksb held, want;
	struct dsm_stats a, b;
	uint64_t total = 0;
	int i, ret, victims = 0;

	if (rank == 0)
		s->released[0] = 0;
	a = stats();
	if (rank < n)
		lock_ok(DSM_LK_EX, &held, 0, s->names[rank], 0);
	barrier();
	if (rank < n) {
		/* The timeout only turns a missed deadlock into a failure
		 * instead of a hang. */
		ret = dsm_lock(DSM_LK_EX, &want, 0, s->names[(rank + 1) % n],
			       0, CYCLE_TIMEOUT_MS, NULL, NULL, NULL);
		if (ret != want.status)
			FAIL("%s: returned %d, status %d", what, ret,
			     want.status);
		if (ret == -EDEADLK) {
			WRITE_ONCE(s->released[0], 1);
			unlock_ok(&held, 0, s->names[rank]);
		} else if (ret == 0) {
			/* Every grant in the cycle follows the victim's
			 * release. */
			if (!READ_ONCE(s->released[0]))
				FAIL("%s: granted before the victim let go",
				     what);
			unlock_ok(&want, 0, s->names[(rank + 1) % n]);
			unlock_ok(&held, 0, s->names[rank]);
		} else {
			FAIL("%s: %s", what, strerror(-ret));
		}
		s->result[rank] = ret;
	}
	barrier();
	b = stats();
	s->deadlocks[rank] = b.lock_deadlocks - a.lock_deadlocks;
	barrier();
	if (rank == 0) {
		for (i = 0; i < n; i++)
			victims += s->result[i] == -EDEADLK;
		for (i = 0; i < NODES; i++)
			total += s->deadlocks[i];
		if (victims != 1 || total != 1)
			FAIL("%s: %d victims, lock_deadlocks grew by %llu; "
			     "want 1 and 1", what, victims,
			     (unsigned long long)total);
	}
	barrier();
}

static void phase_deadlock(struct shared *s)
{
	int i, v2 = -1, v3 = -1;

	/* Masters on nodes other than the requesters' where possible, so
	 * the search crosses nodes. */
	if (rank == 0) {
		pick_name("dl2.a", 2, s->names[0]);
		pick_name("dl2.b", 3, s->names[1]);
	}
	barrier();
	cycle(s, 2, "two-node cycle");
	for (i = 0; i < 2; i++)
		if (s->result[i] == -EDEADLK)
			v2 = i;
	barrier();
	if (rank == 0) {
		pick_name("dl3.a", 1, s->names[0]);
		pick_name("dl3.b", 2, s->names[1]);
		pick_name("dl3.c", 3, s->names[2]);
	}
	barrier();
	cycle(s, 3, "three-node cycle");
	for (i = 0; i < 3; i++)
		if (s->result[i] == -EDEADLK)
			v3 = i;
	if (rank == 0)
		printf("deadlock: 2-cycle (masters 2, 3): rank %d the only "
		       "victim; 3-cycle (masters 1, 2, 3): rank %d the only "
		       "victim; the others granted after\n", v2, v3);
	barrier();
}

/* A resource used by one node only moves there (the cluster's default
 * policy: 4 requests and 60% of the recent ones): its next requests need
 * no message, and a node that still names the old master is forwarded and
 * learns the new one. */
static void phase_move(struct shared *s)
{
	struct dsm_lksb sb;
	struct dsm_stats before;
	int i, m;

	if (rank == 0)
		pick_name("mv", 2, s->names[0]);
	barrier();
	if (rank == 1) {
		for (i = 0; i < 12; i++) {
			lock_ok(DSM_LK_EX, &sb, 0, s->names[0], 0);
			unlock_ok(&sb, 0, s->names[0]);
		}
		lock_ok(DSM_LK_NL, &sb, 0, s->names[0], 0);
		m = dsm_lock_master(&sb);
		if (m != 1)
			FAIL("%s used by node 1 only: master %d", s->names[0],
			     m);
		before = stats();
		for (i = 0; i < 5; i++) {
			struct dsm_lksb ex;

			lock_ok(DSM_LK_EX, &ex, 0, s->names[0], 0);
			unlock_ok(&ex, 0, s->names[0]);
		}
		if (stats().lock_remote != before.lock_remote ||
		    stats().msgs_sent != before.msgs_sent)
			FAIL("%s mastered here: requests still went out",
			     s->names[0]);
		unlock_ok(&sb, 0, s->names[0]);
	}
	barrier();
	if (rank == 0) {
		lock_ok(DSM_LK_PR, &sb, 0, s->names[0], 0);
		m = dsm_lock_master(&sb);
		unlock_ok(&sb, 0, s->names[0]);
		if (m != 1)
			FAIL("node 0 still names node %d as %s's master", m,
			     s->names[0]);
		printf("move: a resource of node 2 used by node 1 only moved "
		       "there; 5 more lock+unlock sent nothing; node 0 was "
		       "forwarded and learnt it\n");
	}
	barrier();
}

/* The first page of the region that `node` masters. */
static void *page_of(char *base, int npages, int node)
{
	for (int i = 0; i < npages; i++)
		if (dsm_page_master(base + (size_t)i * PAGE) == node)
			return base + (size_t)i * PAGE;
	FAIL("no page of the survivors' region mastered by node %d", node);
}

/* Says how a grant that came too early overlapped the holder: whether
 * and when the holder let go after all. */
static const char *overlap(int *released)
{
	static char why[64];
	long long t0 = now_ms();

	while (!READ_ONCE(*released) && now_ms() - t0 < 5000)
		usleep(5000);
	if (READ_ONCE(*released))
		snprintf(why, sizeof(why), "let go %lld ms later",
			 now_ms() - t0);
	else
		snprintf(why, sizeof(why), "still held it 5 s later");
	return why;
}

static void wait_live_master(const struct dsm_lksb *sb, const char *what)
{
	long long end = now_ms() + WAIT_MS;
	int m;

	while ((m = dsm_lock_master(sb)) < 0 || m == NODES - 1) {
		if (m < 0 && m != -EHOSTDOWN)
			FAIL("%s: dsm_lock_master: %s", what, strerror(-m));
		if (now_ms() > end)
			FAIL("%s: master still %d after the death", what, m);
		usleep(20 * 1000);
	}
}

/* R1 is mastered by node 3: rank 3 writes "v-keep" into it, rank 1 holds
 * it in EX, rank 2 waits for it.  R2 is mastered by node 1: rank 0 writes
 * "v-old", rank 3 holds it in EX (and dies with it), rank 0 waits in PR.
 * Then node 3's dsmd is killed. */
static void phase_death(struct shared *s, struct survivors *sp)
{
	static struct cb_lock w;
	struct dsm_lksb r1, r2, keep, gate, t;
	char n1[DSM_LOCK_NAME_MAX + 1], n2[DSM_LOCK_NAME_MAX + 1];
	char ng[DSM_LOCK_NAME_MAX + 1];
	struct dsm_stats a, b;
	int i, ret;
	uint64_t rebuilt = 0;

	cb_reset(&w);
	if (rank == 3) {
		/* Picked by node 3, so node 3's own use keeps it there. */
		pick_name("death.r1", 3, s->names[0]);
		lock_ok(DSM_LK_NL, &keep, 0, s->names[0], 0);
		lock_ok(DSM_LK_EX, &r1, DSM_LKF_VALBLK, s->names[0], 0);
		lvb_set(&r1, "v-keep");
		unlock_ok(&r1, DSM_LKF_VALBLK, s->names[0]);
	}
	if (rank == 1) {
		pick_name("death.r2", 1, s->names[1]);
		lock_ok(DSM_LK_NL, &keep, 0, s->names[1], 0);
		/* The gate: rank 1 holds it EX until just before it lets R1
		 * go, so that rank 2 can tell by locks alone, without shared
		 * memory, whether R1 came to it too early. */
		pick_name("death.gate", 1, s->names[2]);
		lock_ok(DSM_LK_EX, &gate, 0, s->names[2], 0);
	}
	barrier();
	strcpy(n1, s->names[0]);
	strcpy(n2, s->names[1]);
	strcpy(ng, s->names[2]);
	if (rank == 0) {
		lock_ok(DSM_LK_EX, &r2, DSM_LKF_VALBLK, n2, 0);
		lvb_set(&r2, "v-old");
		unlock_ok(&r2, DSM_LKF_VALBLK, n2);
	}
	barrier();
	if (rank == 1) {
		lock_ok(DSM_LK_EX, &r1, DSM_LKF_VALBLK, n1, 0);
		lvb_is(&r1, "v-keep", "EX on R1");
		if ((ret = dsm_lock_master(&r1)) != 3)
			FAIL("R1 %s is mastered by %d, not 3, before the "
			     "death: nothing to rebuild", n1, ret);
	}
	if (rank == 3) {
		lock_ok(DSM_LK_EX, &r2, DSM_LKF_VALBLK, n2, 0);
		lvb_is(&r2, "v-old", "EX on R2");
		lvb_set(&r2, "v-dead"); /* never written back */
		if ((ret = dsm_lock_master(&r2)) != 1)
			FAIL("R2 %s is mastered by %d, not 1", n2, ret);
	}
	barrier();
	if (rank == 2)
		lock_async(&w, DSM_LK_EX, DSM_LKF_VALBLK, n1);
	if (rank == 0)
		lock_async(&w, DSM_LK_PR, DSM_LKF_VALBLK, n2);
	usleep(SETTLE_US);
	if (rank == 0 || rank == 2)
		no_ast(&w, rank ? "R1 wait" : "R2 wait");
	if (rank != 3)
		a = stats();
	barrier();
	if (rank == 3) {
		kill((pid_t)atol(getenv("DSM_DAEMON_PID")), SIGKILL);
		usleep(100 * 1000);
		_exit(0);
	}

	/* Survivors only from here: no barrier, no page but sp. */
	wait_deaths(1);
	if (rank == 0) {
		wait_ast(&w, 0, "PR on R2 after its EX holder died");
		if (!(w.sb.flags & DSM_SBF_VALNOTVALID))
			FAIL("R2's value block (\"%.16s\") is not marked "
			     "invalid after its EX holder died", w.sb.lvb);
		/* R1's rebuilt master must still know rank 1's EX. */
		lock_fails(-EAGAIN, DSM_LK_EX, &t, DSM_LKF_NOQUEUE, n1, 0, 1);
		WRITE_ONCE(sp->checked, 1);
		/* Invalid until a PW or EX holder writes it. */
		lock_ok(DSM_LK_EX, &w.sb, DSM_LKF_CONVERT | DSM_LKF_VALBLK, n2,
			0);
		if (!(w.sb.flags & DSM_SBF_VALNOTVALID))
			FAIL("R2 valid again before anyone wrote it");
		lvb_set(&w.sb, "v-new");
		lock_ok(DSM_LK_NL, &w.sb, DSM_LKF_CONVERT | DSM_LKF_VALBLK, n2,
			0);
		lock_ok(DSM_LK_PR, &w.sb, DSM_LKF_CONVERT | DSM_LKF_VALBLK, n2,
			0);
		lvb_is(&w.sb, "v-new", "R2 after it was written again");
		unlock_ok(&w.sb, 0, n2);
	}
	if (rank == 1) {
		wait_shared(&sp->checked, "rank 0's check of R1");
		wait_live_master(&r1, "R1 (holder)");
		/* A conversion returns once its master has made it (a
		 * release need not), so this is done before R1 goes. */
		lock_ok(DSM_LK_NL, &gate, DSM_LKF_CONVERT, ng, 0);
		WRITE_ONCE(sp->r1_released, 1);
		unlock_ok(&r1, 0, n1); /* no VALBLK: "v-keep" stays */
		unlock_ok(&gate, 0, ng);
		unlock_ok(&keep, 0, n2);
	}
	if (rank == 2) {
		wait_ast(&w, 0, "EX on R1 after the rebuild");
		ret = lk(DSM_LK_EX, &t, DSM_LKF_NOQUEUE, ng, 0);
		if (ret == -EAGAIN)
			FAIL("R1 granted to its waiter while rank 1 held EX: "
			     "rank 1 still held the gate in EX (rank 1 %s)",
			     overlap(&sp->r1_released));
		if (ret)
			FAIL("NOQUEUE EX on the gate: %s", strerror(-ret));
		unlock_ok(&t, 0, ng);
		if (!READ_ONCE(sp->r1_released))
			FAIL("R1 granted to its waiter while rank 1 held EX "
			     "(rank 1 %s)", overlap(&sp->r1_released));
		lvb_is(&w.sb, "v-keep", "R1 after the rebuild");
		wait_live_master(&w.sb, "R1 (waiter)");
		unlock_ok(&w.sb, 0, n1);
	}
	b = stats();
	WRITE_ONCE(sp->rebuilt[rank], b.lock_rebuilt - a.lock_rebuilt);
	WRITE_ONCE(sp->done[rank], 1);
	if (rank != 0)
		return;
	for (i = 1; i < NODES - 1; i++)
		wait_shared(&sp->done[i], "a survivor");
	for (i = 0; i < NODES - 1; i++)
		rebuilt += READ_ONCE(sp->rebuilt[i]);
	if (!rebuilt)
		FAIL("no survivor counted a rebuilt resource (lock_rebuilt)");
	printf("death: node 3 killed; R1 rebuilt (lock_rebuilt +%llu), still "
	       "EX for rank 1, then granted to rank 2 with v-keep, master "
	       "alive; R2 VALNOTVALID until rewritten\n",
	       (unsigned long long)rebuilt);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100, npages = 8;
	struct survivors *sp = NULL;
	struct shared *s;
	char *spare;

	job_start(NODES);
	if (n < 1)
		FAIL("bad increment count %d", n);
	s = dsm_alloc(PAGE);
	spare = dsm_alloc((size_t)npages * PAGE);
	if (!s || !spare)
		FAIL("dsm_alloc: %s", strerror(errno));
	/* Node 3 never touches it; node 0 masters it (and only survivors'
	 * use could move it). */
	if (rank != 3)
		sp = page_of(spare, npages, 0);
	barrier();
	phase_ex(s, n);
	phase_pr();
	phase_matrix(s);
	phase_queue(s);
	phase_noqueue(s);
	phase_bast(s);
	phase_valblk();
	phase_tree(s);
	phase_errors();
	phase_deadlock(s);
	phase_move(s);
	phase_death(s, sp);
	if (rank == 0)
		printf("PASS: exclusion, sharing, the matrix, queue order, "
		       "callbacks, value blocks, hierarchy, errors, deadlocks "
		       "and a master's death\n");
	return 0;
}
