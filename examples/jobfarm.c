/* jobfarm: a job farm that outlives its coordinator.
 *
 *   dsmrun -n NODES [-p PROCS_PER_NODE] dsm-jobfarm [-j JOBS] [-w MS]
 *                                                   [--kill-coordinator-after K]
 *
 * The same program runs on every rank.  The ranks elect one coordinator
 * with the lock manager; the coordinator hands named jobs to the other
 * ranks (the workers) as they become idle, and the workers report through
 * shared memory.  When the coordinator dies, another rank takes over and
 * finishes the remaining jobs, and no job runs twice.  This is the job
 * farm people otherwise build on a storage service that has no
 * test-and-set; here the lock manager supplies the mutual exclusion and
 * tells the survivors what died holding what.  The program uses only the
 * public API, include/dsm.h.
 *
 * Shared state: one named region (dsm_open, not collective) holding the
 * job table and one mailbox per rank, each mailbox on a page of its own so
 * that a worker polling its mailbox moves only that page between nodes.
 * Every change to the region is made under the table lock; reads outside
 * it are only hints, re-checked under the lock before anything is decided.
 *
 * Locks, all children of "jobfarm.<job id>" so that two jobs on one
 * cluster do not meet:
 *   table        every rank holds it in NL for its whole life and converts
 *                to EX to change the region, back to NL when done.  The NL
 *                locks keep the resource, and so its value block, alive
 *                between updates; the down-conversion writes the block.  A
 *                rank that dies in EX leaves the block marked not valid,
 *                which tells the next holder that an update may be half
 *                done (table_repair).
 *   coordinator  every rank asks for EX asynchronously at start and works
 *                while it waits.  The rank granted it coordinates; the
 *                others stay queued behind it, so when it dies the lock
 *                manager grants the next one: that is the failover.  Its
 *                value block names the last coordinator and whether it
 *                finished; a successor that finds it not valid knows its
 *                predecessor died coordinating.
 *   rank.<r>     EX, held by rank r for its whole life: grantable to
 *                someone else (DSM_LKF_NOQUEUE) only once r is dead.
 *
 * A job goes FREE -> ASSIGNED(w) -> RUNNING(w) -> DONE, every step under
 * the table lock.  The coordinator makes the first step, writing the job
 * and then w's mailbox; w makes the next two.  Exactly once:
 *   - only w moves a job out of ASSIGNED(w) into RUNNING(w), only if its
 *     mailbox names the job, and it counts the run (runs++) in that same
 *     critical section; only the rank that made the move runs the job;
 *   - RUNNING never goes back: a job whose runner died is LOST, reported,
 *     and not run again (the farm cannot know whether it ran), so nothing
 *     runs twice;
 *   - ASSIGNED(w) goes back to FREE only while w cannot claim it: w is
 *     dead, or w's mailbox does not name the job (the coordinator died
 *     between its two writes) and the mailbox is cleared in the same
 *     critical section.  So nothing assigned is lost either;
 *   - the coordinator's own state (which jobs are out, who coordinated)
 *     lives in the region, so a successor resumes from it.
 * At the end the last coordinator checks that every job is DONE, ran
 * exactly once and has the right result, and prints
 *   jobfarm: 40 jobs done, each once (coordinators: 1 then 0)
 *
 * --kill-coordinator-after K makes the first coordinator die by SIGKILL
 * while it hands out job K+1, at the worst moment: holding the table lock,
 * with the job marked ASSIGNED and the worker's mailbox not yet written.
 * dsmrun then exits 137 (128 + SIGKILL, the first failure) once the others
 * have finished.  The death is real: the lock manager releases the dead
 * rank's locks, and no collective (dsm_barrier) is used after the start,
 * since every collective fails once a rank of the job has died.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dsm.h>

#define DEFAULT_JOBS    40
#define MAX_JOBS        1000
#define DEFAULT_WORK_MS 20
#define MAX_WORK_MS     60000
#define MAX_RANKS       128
#define PAGE_SIZE       4096

#define POLL_US         1000    /* idle ranks look at their mailbox this often */
#define STALL_MS        2000    /* no progress this long: look for dead workers */
#define LOCK_TIMEOUT_MS 120000  /* a table lock this late is a bug: say so */
#define LEAVE_WAIT_MS   30000   /* for a cancelled request's answer */

#define TABLE_MAGIC 0x6a667462u /* "jftb" */
#define COORD_MAGIC 0x6a66636fu /* "jfco" */

/* Shared memory read outside the table lock: a fresh load every time.
 * Such reads are hints only. */
#define PEEK(x) (*(const volatile __typeof__(x) *)&(x))

enum job_state { JOB_FREE = 0, JOB_ASSIGNED, JOB_RUNNING, JOB_DONE, JOB_LOST };

struct job {
	uint32_t state;      /* enum job_state */
	int32_t worker;      /* ASSIGNED, RUNNING, DONE, LOST: the rank */
	uint32_t runs;       /* counted by the runner as it claims the job */
	uint32_t reserved;
	uint64_t result;     /* DONE: what the runner computed */
	char name[24];
};

/* Written by the coordinator (job, stop) and by its rank (want, ran), all
 * under the table lock. */
struct mailbox {
	uint32_t want;       /* the rank is idle and wants a job */
	uint32_t job;        /* 1 + the index of the job handed to it; 0: none */
	uint32_t stop;       /* every job is done: leave */
	uint32_t ran;        /* jobs it ran */
	char pad[PAGE_SIZE - 16];
};

struct table {
	uint32_t njobs;      /* 0 until the first coordinator fills it in */
	uint32_t finished;
	uint32_t ncoord;     /* coordinators so far, and coord[] their ranks */
	int32_t coord[MAX_RANKS];
	uint8_t gone[MAX_RANKS]; /* ranks the coordinator found dead */
	struct job jobs[MAX_JOBS];
};

struct farm {
	struct table t;
	struct mailbox mbox[MAX_RANKS] __attribute__((aligned(PAGE_SIZE)));
};

/* The table lock's value block: how many updates were made, by whom last. */
struct table_lvb {
	uint32_t magic;
	uint32_t last;
	uint64_t updates;
};

/* The coordinator lock's value block, written when a coordinator leaves. */
struct coord_lvb {
	uint32_t magic;
	uint32_t epoch;      /* its place among the coordinators, from 1 */
	int32_t rank;
	uint32_t finished;
};

_Static_assert(sizeof(struct table_lvb) <= DSM_LVB_LEN, "table lvb");
_Static_assert(sizeof(struct coord_lvb) <= DSM_LVB_LEN, "coord lvb");
_Static_assert(sizeof(struct mailbox) == PAGE_SIZE, "mailbox page");

struct opts {
	int jobs;
	int work_ms;
	int kill_after;      /* -1: nobody dies */
};

struct farm_ctx {
	struct opts o;
	int rank, size;
	struct farm *f;
	struct dsm_lksb top, table, self, coord;
	bool coord_held;     /* the coordinator request was granted */
	bool coordinating;   /* ... and this rank took over */
	int assigned;        /* jobs this rank handed out as coordinator */
	int ran;             /* jobs this rank ran */
};

static int my_rank = -1; /* for messages; -1 until dsm_init() */

/* Set by coord_ast on libdsm's callback thread once the coordinator
 * request has ended (lksb.status says how); the release store pairs with
 * the acquire in coord_event(), so the main thread then sees the lksb as
 * the library filled it. */
static int coord_done;

static void fail(const char *what, int err) __attribute__((noreturn));
static void fail(const char *what, int err)
{
	if (my_rank >= 0)
		fprintf(stderr, "jobfarm: rank %d: %s: %s\n", my_rank, what,
			strerror(err));
	else
		fprintf(stderr, "jobfarm: %s: %s\n", what, strerror(err));
	exit(1);
}

/* A dsm_* call that returns 0 or a negative errno. */
static void check(int ret, const char *what)
{
	if (ret < 0)
		fail(what, -ret);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000,
			      .tv_nsec = (us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---------------------------------------------------------------------- */
/* The jobs themselves                                                    */

/* A job's result: FNV-1a over its name, many times, standing for real
 * work whose answer the coordinator can check. */
static uint64_t job_result(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int round = 0; round < 1000; round++)
		for (const char *p = name; *p; p++) {
			h ^= (unsigned char)*p;
			h *= 0x100000001b3ull;
		}
	return h;
}

/* Runs outside the table lock: the job is RUNNING and this rank's, so no
 * one else writes its entry meanwhile. */
static uint64_t run_job(struct farm_ctx *c, const struct job *jb)
{
	sleep_us((long)c->o.work_ms * 1000);
	return job_result(jb->name);
}

/* ---------------------------------------------------------------------- */
/* The table lock                                                         */

static void table_repair(struct farm_ctx *c);

/* NL -> EX.  A conversion chosen to break a deadlock keeps NL and is
 * tried again: the wait-for graph can show a cycle that is not one,
 * because every rank also has its coordinator request queued (an
 * asynchronous wait) while it takes the table lock. */
static void table_lock(struct farm_ctx *c)
{
	int ret;

	do {
		c->table.flags = 0;
		ret = dsm_lock(DSM_LK_EX, &c->table,
			       DSM_LKF_CONVERT | DSM_LKF_VALBLK, NULL, 0,
			       LOCK_TIMEOUT_MS, NULL, NULL, NULL);
	} while (ret == -EDEADLK);
	check(ret, "table lock (NL to EX)");
	if (c->table.flags & DSM_SBF_VALNOTVALID)
		table_repair(c);
}

/* EX -> NL, writing the value block, which makes it valid again. */
static void table_unlock(struct farm_ctx *c)
{
	struct table_lvb v;

	memcpy(&v, c->table.lvb, sizeof(v));
	if (v.magic != TABLE_MAGIC)
		v = (struct table_lvb){.magic = TABLE_MAGIC};
	v.updates++;
	v.last = (uint32_t)c->rank;
	memcpy(c->table.lvb, &v, sizeof(v));
	check(dsm_lock(DSM_LK_NL, &c->table, DSM_LKF_CONVERT | DSM_LKF_VALBLK,
		       NULL, 0, 0, NULL, NULL, NULL), "table lock (EX to NL)");
}

/* Called with the table lock in EX, when its value block came back not
 * valid: a rank died holding it, perhaps halfway through an update.  Each
 * update is a few aligned stores, so whatever it left is a prefix of one:
 *   - the coordinator marks a job ASSIGNED(w), then names it in w's
 *     mailbox.  A job ASSIGNED(w) that w's mailbox does not name was never
 *     seen by w (w claims only what its mailbox names): back to FREE;
 *   - a mailbox naming a job that is not ASSIGNED or RUNNING to its rank
 *     names nothing (the worker died completing it: DONE is written
 *     before the mailbox is cleared): cleared; a live rank asks again.
 * A job a dead worker claimed (RUNNING) is left to check_workers(). */
static void table_repair(struct farm_ctx *c)
{
	struct table *t = &c->f->t;
	int freed = 0, cleared = 0;

	for (uint32_t j = 0; j < t->njobs && j < MAX_JOBS; j++) {
		struct job *jb = &t->jobs[j];
		int w = jb->worker;

		if (jb->state != JOB_ASSIGNED)
			continue;
		if (w >= 0 && w < c->size && c->f->mbox[w].job == j + 1)
			continue;
		printf("jobfarm: rank %d: %s was half assigned to rank %d: "
		       "back to the pool\n", c->rank, jb->name, w);
		jb->state = JOB_FREE;
		jb->worker = -1;
		freed++;
	}
	for (int w = 0; w < c->size; w++) {
		struct mailbox *m = &c->f->mbox[w];
		struct job *jb;

		if (!m->job)
			continue;
		jb = m->job <= t->njobs ? &t->jobs[m->job - 1] : NULL;
		if (jb && jb->worker == w &&
		    (jb->state == JOB_ASSIGNED || jb->state == JOB_RUNNING))
			continue;
		m->job = 0;
		cleared++;
	}
	printf("jobfarm: rank %d: the table lock's value block is not valid: "
	       "its holder died in an update; repaired (%d jobs freed, "
	       "%d mailboxes cleared)\n", c->rank, freed, cleared);
}

/* ---------------------------------------------------------------------- */
/* Liveness and the election                                              */

/* Whether rank w has died: its rank lock is grantable to us. */
static bool is_dead(struct farm_ctx *c, int w)
{
	struct dsm_lksb l = {0};
	char name[32];
	int ret;

	snprintf(name, sizeof(name), "rank.%d", w);
	ret = dsm_lock(DSM_LK_EX, &l, DSM_LKF_NOQUEUE, name, c->top.lkid, 0,
		       NULL, NULL, NULL);
	if (ret == -EAGAIN)
		return false;
	check(ret, "rank lock (liveness probe)");
	check(dsm_unlock(&l, 0), "rank lock (liveness probe release)");
	return true;
}

static void coord_ast(void *arg)
{
	(void)arg;
	__atomic_store_n(&coord_done, 1, __ATOMIC_RELEASE);
}

static void coord_request(struct farm_ctx *c)
{
	c->coord.flags = 0;
	check(dsm_lock(DSM_LK_EX, &c->coord, DSM_LKF_ASYNC | DSM_LKF_VALBLK,
		       "coordinator", c->top.lkid, 0, coord_ast, NULL, NULL),
	      "coordinator lock");
}

/* Whether the coordinator request has ended, consuming the event. */
static bool coord_event(void)
{
	if (!__atomic_load_n(&coord_done, __ATOMIC_ACQUIRE))
		return false;
	__atomic_store_n(&coord_done, 0, __ATOMIC_RELAXED);
	return true;
}

/* Whether this rank is now the coordinator.  A request chosen as a
 * deadlock victim (see table_lock) queues again, at the back. */
static bool coord_granted(struct farm_ctx *c)
{
	if (!coord_event())
		return false;
	if (c->coord.status == -EDEADLK) {
		coord_request(c);
		return false;
	}
	check(c->coord.status, "coordinator lock");
	c->coord_held = true;
	return true;
}

/* ---------------------------------------------------------------------- */
/* Working                                                                */

/* One step of an idle or assigned rank.  Returns whether it did
 * something (else the caller sleeps a little). */
static bool worker_step(struct farm_ctx *c)
{
	struct mailbox *m = &c->f->mbox[c->rank];
	struct job *jb = NULL;
	uint32_t id = PEEK(m->job);
	uint64_t result;

	if (!id) {
		if (PEEK(m->want))
			return false;
		table_lock(c);
		if (!m->job)
			m->want = 1;
		table_unlock(c);
		return true;
	}
	/* The claim: the one step that lets this rank run the job. */
	table_lock(c);
	if (m->job == id && id <= c->f->t.njobs) {
		jb = &c->f->t.jobs[id - 1];
		if (jb->state == JOB_ASSIGNED && jb->worker == c->rank) {
			jb->state = JOB_RUNNING;
			jb->runs++;
		} else {
			jb = NULL;
		}
	}
	if (!jb && m->job == id) {
		/* Not ours after all (cannot happen once repaired). */
		m->job = 0;
		m->want = 1;
	}
	table_unlock(c);
	if (!jb)
		return true;

	result = run_job(c, jb);

	table_lock(c);
	jb->result = result;
	jb->state = JOB_DONE;
	m->job = 0;
	m->ran++;
	m->want = !m->stop;
	table_unlock(c);
	c->ran++;
	return true;
}

/* ---------------------------------------------------------------------- */
/* Coordinating                                                           */

static int jobs_in(const struct table *t, enum job_state s)
{
	int n = 0;

	for (uint32_t j = 0; j < t->njobs; j++)
		n += PEEK(t->jobs[j].state) == (uint32_t)s;
	return n;
}

/* Live ranks other than this one. */
static int live_workers(struct farm_ctx *c)
{
	int n = 0;

	for (int w = 0; w < c->size; w++)
		n += w != c->rank && !PEEK(c->f->t.gone[w]);
	return n;
}

static void init_jobs(struct farm_ctx *c)
{
	struct table *t = &c->f->t;

	t->njobs = (uint32_t)c->o.jobs;
	for (int j = 0; j < c->o.jobs; j++) {
		snprintf(t->jobs[j].name, sizeof(t->jobs[j].name), "job-%03d",
			 j + 1);
		t->jobs[j].worker = -1;
	}
}

/* The coordinator request was granted.  Under the table lock: record this
 * rank as the next coordinator, take back a job handed to it as a worker
 * that it has not claimed, and mark its predecessor gone.  Returns false
 * when the farm has already finished (the previous coordinator left
 * cleanly after the last job). */
static bool take_over(struct farm_ctx *c)
{
	struct table *t = &c->f->t;
	struct mailbox *m = &c->f->mbox[c->rank];
	bool died = c->coord.flags & DSM_SBF_VALNOTVALID;
	struct coord_lvb v;
	int prev;

	memcpy(&v, c->coord.lvb, sizeof(v));
	table_lock(c);
	if (t->finished || (!died && v.magic == COORD_MAGIC && v.finished)) {
		table_unlock(c);
		return false;
	}
	prev = t->ncoord ? t->coord[t->ncoord - 1] : -1;
	t->coord[t->ncoord++] = c->rank;
	if (!t->njobs)
		init_jobs(c);
	if (m->job) {
		struct job *jb = &t->jobs[m->job - 1];

		if (jb->state == JOB_ASSIGNED && jb->worker == c->rank) {
			jb->state = JOB_FREE;
			jb->worker = -1;
		}
		m->job = 0;
	}
	m->want = 0;
	if (prev >= 0)
		t->gone[prev] = 1;
	c->coordinating = true;
	if (prev < 0)
		printf("jobfarm: rank %d coordinates %u jobs\n", c->rank,
		       t->njobs);
	else
		printf("jobfarm: rank %d takes over from rank %d (%s); "
		       "jobs: %d done, %d running, %d assigned, %d free\n",
		       c->rank, prev,
		       died ? "its value block is not valid: it died "
			      "coordinating" : "it left",
		       jobs_in(t, JOB_DONE), jobs_in(t, JOB_RUNNING),
		       jobs_in(t, JOB_ASSIGNED), jobs_in(t, JOB_FREE));
	table_unlock(c);
	return true;
}

/* --kill-coordinator-after: the first coordinator dies here, in the
 * middle of an assignment, holding the table lock in EX. */
static void maybe_die(struct farm_ctx *c, const struct job *jb, int w)
{
	if (c->o.kill_after < 0 || c->f->t.ncoord != 1 ||
	    c->assigned != c->o.kill_after)
		return;
	printf("jobfarm: rank %d (coordinator) dies now by SIGKILL, holding "
	       "the table lock, %s marked for rank %d whose mailbox is not "
	       "written yet\n", c->rank, jb->name, w);
	fflush(stdout);
	raise(SIGKILL);
}

/* Whether rank w may get a job: it is idle, and it is a worker (the
 * coordinator works only when no worker is left). */
static bool wants_job(struct farm_ctx *c, int w, bool alone)
{
	const struct mailbox *m = &c->f->mbox[w];

	if (PEEK(c->f->t.gone[w]) || (w == c->rank && !alone))
		return false;
	return PEEK(m->want) && !PEEK(m->job) && !PEEK(m->stop);
}

static int next_free(const struct table *t)
{
	for (uint32_t j = 0; j < t->njobs; j++)
		if (t->jobs[j].state == JOB_FREE)
			return (int)j;
	return -1;
}

/* Hand free jobs to idle ranks.  Returns how many it handed out. */
static int assign_jobs(struct farm_ctx *c, bool alone)
{
	struct table *t = &c->f->t;
	bool any = false;
	int n = 0, j;

	for (int w = 0; w < c->size && !any; w++)
		any = wants_job(c, w, alone);
	if (!any || !jobs_in(t, JOB_FREE))
		return 0;
	table_lock(c);
	for (int w = 0; w < c->size; w++) {
		if (!wants_job(c, w, alone))
			continue;
		j = next_free(t);
		if (j < 0)
			break;
		/* The job first, then the mailbox: table_repair relies on
		 * this order. */
		t->jobs[j].worker = w;
		t->jobs[j].state = JOB_ASSIGNED;
		maybe_die(c, &t->jobs[j], w);
		c->f->mbox[w].job = (uint32_t)j + 1;
		c->f->mbox[w].want = 0;
		c->assigned++;
		n++;
	}
	table_unlock(c);
	return n;
}

/* No progress for a while: a worker may have died.  Its unclaimed jobs go
 * back to the pool; a job it was running is LOST, not run again. */
static void check_workers(struct farm_ctx *c)
{
	struct table *t = &c->f->t;

	for (int w = 0; w < c->size; w++) {
		if (w == c->rank || PEEK(t->gone[w]) || !is_dead(c, w))
			continue;
		table_lock(c);
		t->gone[w] = 1;
		for (uint32_t j = 0; j < t->njobs; j++) {
			struct job *jb = &t->jobs[j];

			if (jb->worker != w)
				continue;
			if (jb->state == JOB_ASSIGNED) {
				jb->state = JOB_FREE;
				jb->worker = -1;
			} else if (jb->state == JOB_RUNNING) {
				jb->state = JOB_LOST;
				printf("jobfarm: rank %d died running %s: "
				       "lost, not run again\n", w, jb->name);
			}
		}
		c->f->mbox[w].job = 0;
		c->f->mbox[w].want = 0;
		table_unlock(c);
		printf("jobfarm: rank %d is dead: its jobs are taken back\n",
		       w);
	}
}

/* Every job DONE, run once, with the right result?  Prints each fault and
 * returns their number.  Called with the table lock in EX. */
static int verify(struct farm_ctx *c)
{
	const struct table *t = &c->f->t;
	int bad = 0;

	for (uint32_t j = 0; j < t->njobs; j++) {
		const struct job *jb = &t->jobs[j];

		if (jb->state != JOB_DONE) {
			printf("jobfarm: %s not done (state %u)\n", jb->name,
			       jb->state);
			bad++;
		} else if (jb->runs != 1) {
			printf("jobfarm: %s ran %u times\n", jb->name,
			       jb->runs);
			bad++;
		} else if (jb->result != job_result(jb->name)) {
			printf("jobfarm: %s has a wrong result\n", jb->name);
			bad++;
		}
	}
	return bad;
}

/* The last job is in: tell every rank to stop, check, report.  Returns
 * the exit status. */
static int finish(struct farm_ctx *c)
{
	struct table *t = &c->f->t;
	char who[MAX_RANKS * 12] = "", per[MAX_RANKS * 12] = "";
	size_t wl = 0, pl = 0;
	int bad;

	table_lock(c);
	t->finished = 1;
	for (int w = 0; w < c->size; w++)
		c->f->mbox[w].stop = 1;
	bad = verify(c);
	for (uint32_t i = 0; i < t->ncoord; i++)
		wl += (size_t)snprintf(who + wl, sizeof(who) - wl, "%s%d",
				       i ? " then " : "", t->coord[i]);
	for (int w = 0; w < c->size; w++)
		pl += (size_t)snprintf(per + pl, sizeof(per) - pl, " %d:%u",
				       w, c->f->mbox[w].ran);
	table_unlock(c);
	printf("jobfarm: jobs run per rank:%s\n", per);
	if (bad) {
		printf("jobfarm: FAILED: %d of %u jobs not done exactly once "
		       "(coordinators: %s)\n", bad, t->njobs, who);
		return 1;
	}
	printf("jobfarm: %u jobs done, each once (coordinators: %s)\n",
	       t->njobs, who);
	return 0;
}

/* Run the farm until every job is done or lost.  Returns the exit
 * status. */
static int coordinate(struct farm_ctx *c)
{
	struct table *t = &c->f->t;
	long long last = now_ms();
	int progress = -1, p;
	bool alone;

	for (;;) {
		p = jobs_in(t, JOB_DONE) + jobs_in(t, JOB_LOST);
		if (p == (int)t->njobs)
			break;
		/* Alone, the coordinator runs the jobs itself, through its
		 * own mailbox like any worker. */
		alone = live_workers(c) == 0;
		if (assign_jobs(c, alone) || p != progress) {
			progress = p;
			last = now_ms();
		} else if (now_ms() - last > STALL_MS) {
			check_workers(c);
			last = now_ms();
		}
		if (!alone || !worker_step(c))
			sleep_us(POLL_US);
	}
	return finish(c);
}

/* ---------------------------------------------------------------------- */
/* Joining and leaving                                                    */

static void join(struct farm_ctx *c)
{
	char name[DSM_NAME_MAX + 1];
	const char *job = getenv("DSM_JOB");

	check(dsm_init(), "dsm_init");
	c->rank = dsm_rank();
	check(c->rank, "dsm_rank");
	my_rank = c->rank;
	c->size = dsm_size();
	check(c->size, "dsm_size");
	if (c->size > MAX_RANKS)
		fail("too many ranks for the mailboxes", E2BIG);
	/* Regions and locks belong to the cluster, not to a job: the job's
	 * id in their names keeps two runs apart. */
	snprintf(name, sizeof(name), "jobfarm.%s", job && *job ? job : "0");
	c->f = dsm_open(name, sizeof(struct farm), DSM_CREATE);
	if (!c->f)
		fail("dsm_open", errno);
	check(dsm_lock(DSM_LK_NL, &c->top, 0, name, 0, 0, NULL, NULL, NULL),
	      "top lock");
	check(dsm_lock(DSM_LK_NL, &c->table, DSM_LKF_VALBLK, "table",
		       c->top.lkid, 0, NULL, NULL, NULL), "table lock");
	snprintf(name, sizeof(name), "rank.%d", c->rank);
	check(dsm_lock(DSM_LK_EX, &c->self, 0, name, c->top.lkid, 0, NULL,
		       NULL, NULL), "rank lock");
	/* Every rank has the region open and holds its rank lock before
	 * anyone coordinates: the region cannot vanish under a late rank,
	 * and a rank not holding its lock yet is not taken for dead.  This
	 * is the only collective: after a death they would all fail. */
	check(dsm_barrier(), "dsm_barrier");
	coord_request(c);
}

/* Release everything in order (children before their parent) and detach.
 * A pending coordinator request is cancelled; if it was granted meanwhile,
 * it is released without writing the value block, which keeps the last
 * coordinator's record. */
static void leave(struct farm_ctx *c)
{
	long long end = now_ms() + LEAVE_WAIT_MS;
	int ret;

	if (c->coordinating) {
		struct coord_lvb v = {.magic = COORD_MAGIC,
				      .epoch = c->f->t.ncoord,
				      .rank = c->rank, .finished = 1};

		memcpy(c->coord.lvb, &v, sizeof(v));
		check(dsm_unlock(&c->coord, DSM_LKF_VALBLK),
		      "coordinator unlock");
	} else if (c->coord_held) {
		check(dsm_unlock(&c->coord, 0), "coordinator unlock");
	} else {
		ret = dsm_unlock(&c->coord, DSM_LKF_CANCEL);
		if (ret && ret != -ENOLCK)
			check(ret, "coordinator cancel");
		while (!coord_event()) {
			if (now_ms() > end)
				fail("coordinator cancel: no answer", ETIMEDOUT);
			sleep_us(POLL_US);
		}
		if (c->coord.status == 0)
			check(dsm_unlock(&c->coord, 0), "coordinator unlock");
	}
	check(dsm_unlock(&c->self, 0), "rank unlock");
	check(dsm_unlock(&c->table, 0), "table unlock");
	check(dsm_unlock(&c->top, 0), "top unlock");
	check(dsm_close(c->f), "dsm_close");
	check(dsm_finalize(), "dsm_finalize");
}

/* ---------------------------------------------------------------------- */
/* Command line                                                           */

static void usage(FILE *f)
{
	fprintf(f,
"usage: dsmrun -n NODES [-p PROCS] dsm-jobfarm [-j JOBS] [-w MS]\n"
"                                  [--kill-coordinator-after K]\n"
"  -j JOBS  jobs to run (1..%d, default %d)\n"
"  -w MS    how long each job works (0..%d ms, default %d)\n"
"  --kill-coordinator-after K\n"
"           the first coordinator dies (SIGKILL) while handing out job\n"
"           K+1 (0..JOBS-1); another rank takes over\n"
"The ranks elect a coordinator with the lock manager, which hands the jobs\n"
"to the others; the last coordinator checks that every job ran exactly\n"
"once and exits 1 if not.\n",
		MAX_JOBS, DEFAULT_JOBS, MAX_WORK_MS, DEFAULT_WORK_MS);
}

/* A whole number lo..hi, or exit 2 naming the option. */
static int number(const char *arg, int lo, int hi, const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "jobfarm: bad %s '%s' (%d..%d)\n", name, arg,
			lo, hi);
		exit(2);
	}
	return (int)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_KILL = 256 };
	static const struct option longopts[] = {
		{"jobs", required_argument, NULL, 'j'},
		{"work-ms", required_argument, NULL, 'w'},
		{"kill-coordinator-after", required_argument, NULL, O_KILL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *kill_arg = NULL;
	int ch;

	o->jobs = DEFAULT_JOBS;
	o->work_ms = DEFAULT_WORK_MS;
	o->kill_after = -1;
	while ((ch = getopt_long(argc, argv, "j:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o->jobs = number(optarg, 1, MAX_JOBS, "job count");
			break;
		case 'w':
			o->work_ms = number(optarg, 0, MAX_WORK_MS,
					    "job time");
			break;
		case O_KILL:
			kill_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobfarm: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		exit(2);
	}
	/* Checked last: its range depends on -j. */
	if (kill_arg)
		o->kill_after = number(kill_arg, 0, o->jobs - 1,
				       "--kill-coordinator-after");
}

int main(int argc, char **argv)
{
	static struct farm_ctx c;
	int status = 0;

	parse_args(argc, argv, &c.o);
	/* Lines reach dsmrun as they are printed, and nothing is left in
	 * the buffer of a rank that dies. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	join(&c);
	for (;;) {
		if (coord_granted(&c)) {
			if (take_over(&c))
				status = coordinate(&c);
			break;
		}
		if (PEEK(c.f->mbox[c.rank].stop))
			break;
		if (!worker_step(&c))
			sleep_us(POLL_US);
	}
	if (!c.coordinating)
		printf("jobfarm: rank %d ran %d jobs\n", c.rank, c.ran);
	leave(&c);
	return status;
}
