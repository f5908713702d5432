/* The protocol itself under a fuzzer: 3 or 4 real dsmd cores (the real
 * module table, real memfd node memory) joined by the mock transport, as
 * the unit tests set them up (tests/daemon/dsm_harness.h), driven by a
 * sequence of steps decoded from the input (fuzz/proto.h):
 *
 *   - legitimate work: page faults of a stand-in process, its writes,
 *     lock requests, conversions and releases through the lock module's
 *     request handler (as test_lock.c sends them), lock connections
 *     closing, time passing (timers and ticks run), a node dying;
 *   - delivery: everything until nothing moves, or one node's inbox only,
 *     so that the input chooses the interleaving;
 *   - a hostile peer: raw bytes, or a message built field by field from
 *     the input with real transaction ids, slots, versions, epochs and
 *     lock ids where the input asks for them, sent into a node as if from
 *     another one; or an RDMA WRITE of a page and trailer into a receive
 *     slot;
 *   - a hostile client: a real connection accepted by a node's listening
 *     socket (core/client.c), sending raw bytes or requests built field by
 *     field, with or without a descriptor.
 *
 * After every step the checks below run; a broken one aborts, which
 * libFuzzer records with the input.  What a hostile peer may do is lie
 * about what it names: a page, a lock resource, a slot's contents.  So the
 * checks that compare nodes with each other skip whatever a hostile
 * message named ("tainted"), and page contents once any hostile slot or
 * page data was seen; the checks of what each node keeps on its own (its
 * entries, its lock queues) always hold.  With no hostile peer at all
 * ("pure" runs) the protocol must also have finished everything it
 * started once nothing moves, and refused nothing.
 *
 * Always, on every node alive, for every page the steps use and nobody
 * hostile named:
 *   at most one node holds the page M, and then nobody else holds it;
 *   at most one node masters its entry;
 *   no node's version of the page, nor the master's, goes backwards;
 *   every node that holds the page holds what was written last.
 * Always, everywhere: a master's entries are well formed, and the granted
 * and converting locks of every resource it masters are compatible.
 * Once nothing moves (no message, kept message or transaction left):
 *   the page has one master, whose entry agrees with the nodes: the
 *   listed holders hold it at the entry's version, and any other holder
 *   has a copy a listed holder gave it directly;
 *   every lock a process holds is compatible with every other one held
 *   on its resource, and the resource's master has it in that mode, and
 *   the other way round.
 *
 * Each input gets fresh cores and is torn down after; a descriptor left
 * open traps, and LeakSanitizer sees memory left.
 */
#include "dsm_harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "ipc.h"
#include "lock/lock.h"
#include "proto.h"

#define NPAGES PROTO_NPAGES
#define PUMP_ROUNDS 256     /* rounds of delivery for PR_PUMP at most */
#define SELF_BURST 64       /* self-queue passes per node and round */
#define STORM_ROUND 5000    /* events in a round worth a look at */
#define STORM_SELF 20000ul  /* messages to self queued: a storm */
#define TIME_CAP_MS 90000u  /* below dead_after_ms: nobody dies of
			       silence, only by PR_KILL */
#define TICK_MS 100u        /* the cores' heartbeat period */
#define MAX_TAINT_KEYS 32

static const unsigned delays_ms[] = {1, 3, 10, 50, 120, 300, 600, 1100,
				     2100};

static const char *const lock_names[PROTO_NNAMES] = {
	"a", "b", "c", "d", "e", "f",
};

/* The placement policies of PC_POLICY. */
static const struct wire_policy policies[4] = {
	{0},
	{.placement = DSM_PLACE_STATIC, .migrate = 1, .share_pct = 60,
	 .min_requests = 4, .window_ms = 500, .load_pct = 200},
	{.placement = DSM_PLACE_STATIC, .migrate = 1, .share_pct = 51,
	 .min_requests = 2, .window_ms = 50, .load_pct = 200},
	{.placement = DSM_PLACE_FIRST_TOUCH, .migrate = 0, .share_pct = 60,
	 .min_requests = 4, .window_ms = 500, .load_pct = 200},
};

static const unsigned hold_us[4] = {0, 200, 20000, 0};

/* ---------------------------------------------------------------------- */
/* The input                                                              */

static struct {
	const uint8_t *p;
	size_t n;
} in;

static uint8_t u8(void)
{
	if (!in.n)
		return 0;
	in.n--;
	return *in.p++;
}

static uint16_t u16(void)
{
	uint16_t v = u8();

	v |= (uint16_t)(u8() << 8);
	return v;
}

static uint32_t u32(void)
{
	uint32_t v = u16();

	v |= (uint32_t)u16() << 16;
	return v;
}

static uint64_t u64(void)
{
	uint64_t v = u32();

	v |= (uint64_t)u32() << 32;
	return v;
}

/* len bytes of the input, zeros past its end. */
static void take(void *dst, size_t len)
{
	size_t n = len < in.n ? len : in.n;

	memcpy(dst, in.p, n);
	memset((char *)dst + n, 0, len - n);
	in.p += n;
	in.n -= n;
}

/* ---------------------------------------------------------------------- */
/* One run's state                                                        */

/* A process's lock connection, stood in for as test_lock.c does: a
 * socket pair whose dsmd end is a struct client on no list. */
struct lproc {
	bool open;
	int fd[2];              /* dsmd's end, the process's end */
	struct client c;
	uint64_t next_lkid;
};

static char sock_dir[64];

static struct {
	int n;
	bool dead[NMAX];
	int ndead;
	/* No hostile peer message got through the decoder, no hostile page
	 * data, no client reset a range. */
	bool pure;
	bool data_tainted;      /* page contents may be a peer's */
	bool all_pages_tainted; /* a range was (or may have been) reset */
	bool all_keys_tainted;
	bool tainted[NPAGES];
	uint64_t keys[MAX_TAINT_KEYS];
	unsigned nkeys;
	uint64_t seed[NPAGES], next_seed;
	uint64_t ver[NMAX][NPAGES];   /* each node's version, last seen */
	uint64_t dir_ver[NPAGES];     /* the master's, last seen */
	uint64_t time_ms, last_tick;
	struct lproc procs[NMAX][PROTO_NPROC];
	int cl[NMAX][PROTO_NCLIENT];  /* our end of a client, or -1 */
	bool listening[NMAX];
	char sock[NMAX][96];
	uint64_t next_req;
	unsigned step;
} R;

static bool trace;

/* Under FUZZ_PROTO_TRACE, what node i logs from here on says so. */
static void speak_as(int i)
{
	if (trace)
		log_setup("dsmd", i);
}
/* FUZZ_PROTO_HONEST: a hostile peer's steps are read but nothing is sent,
 * to tell whether a finding needs the hostile peer at all. */
static bool honest;
/* stderr as it was at start-up: run with -close_fd_mask=2, libFuzzer
 * points fd 2 at /dev/null, which silences dsmd's log but must not
 * silence what broke. */
static FILE *report;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	if (!trace)
		return;
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
	fflush(report);
}

/* An invariant is broken: say which, then abort for libFuzzer. */
static void broken(const char *fmt, ...) __attribute__((format(printf, 1, 2),
							 noreturn));
static void broken(const char *fmt, ...)
{
	va_list ap;

	fprintf(report, "fuzz_proto: step %u: invariant broken: ", R.step);
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
	fputc('\n', report);
	fflush(report);
	abort();
}

static bool live(int i)
{
	return i >= 0 && i < R.n && !R.dead[i];
}

static uint64_t dead_set(void)
{
	uint64_t s = 0;

	for (int i = 0; i < R.n; i++)
		if (R.dead[i])
			s |= 1ull << i;
	return s;
}

static bool page_tainted(uint64_t p)
{
	return R.all_pages_tainted || (p < NPAGES && R.tainted[p]);
}

static void taint_page(uint64_t p)
{
	if (p < NPAGES)
		R.tainted[p] = true;
}

static bool key_tainted(uint64_t key)
{
	if (R.all_keys_tainted)
		return true;
	for (unsigned i = 0; i < R.nkeys; i++)
		if (R.keys[i] == key)
			return true;
	return false;
}

static void taint_key(uint64_t key)
{
	if (key_tainted(key))
		return;
	if (R.nkeys == MAX_TAINT_KEYS)
		R.all_keys_tainted = true;
	else
		R.keys[R.nkeys++] = key;
}

static uint64_t name_key(unsigned i)
{
	return lock_key(0, lock_names[i], strlen(lock_names[i]));
}

/* ---------------------------------------------------------------------- */
/* What the nodes hold                                                    */

static struct dentry *entry_at(int node, uint64_t page)
{
	return dir_entry(&tc.d[node], page, false);
}

static bool masters_page(int node, uint64_t page)
{
	struct dentry *e = entry_at(node, page);

	return home_is_master(&tc.d[node], page, e ? &e->h : NULL);
}

/* The live node that masters the page, -1 for none; *count how many. */
static int page_master(uint64_t page, int *count)
{
	int m = -1;

	*count = 0;
	for (int i = 0; i < R.n; i++) {
		if (live(i) && masters_page(i, page)) {
			m = i;
			++*count;
		}
	}
	return m;
}

static bool masters_key(int node, uint64_t key)
{
	struct lres *r = lock_res_get(&tc.d[node], key, false);

	return home_is_master(&tc.d[node], key, r ? &r->h : NULL);
}

static int key_master(uint64_t key, int *count)
{
	int m = -1;

	*count = 0;
	for (int i = 0; i < R.n; i++) {
		if (live(i) && masters_key(i, key)) {
			m = i;
			++*count;
		}
	}
	return m;
}

/* Nothing moves: no message in any live node's inbox or self queue, and
 * none kept for later (a hold time, a send slot). */
static bool settled(void)
{
	for (int i = 0; i < R.n; i++) {
		struct dsmd *d = &tc.d[i];

		if (live(i) &&
		    (!list_empty(&d->self_q) || xport_arm(d->x) ||
		     !list_empty(&d->deferred) ||
		     !list_empty(&d->page->send_wait)))
			return false;
	}
	return true;
}

/* Settled, and nothing waits: no transaction or entry open. */
static bool quiet(void)
{
	if (!settled())
		return false;
	for (int i = 0; i < R.n; i++) {
		struct dsmd *d = &tc.d[i];

		if (!live(i))
			continue;
		if (!list_empty(&d->page->slot_wait))
			return false;
		/* Slots given up with a dead master stay used for good. */
		for (unsigned s = 0; s < PAGE_NSLOTS; s++)
			if (d->page->txns[s].used &&
			    !d->page->txns[s].abandoned)
				return false;
		for (uint64_t p = 0; p < NPAGES; p++) {
			struct dentry *e = entry_at(i, p);

			if (busy(i, p) || (e && (e->busy || e->q_head)))
				return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* The checks                                                             */

static void check_entry_shape(int node, uint64_t p)
{
	struct dentry *e = entry_at(node, p);
	uint64_t all = node_all(&tc.d[node]);

	if (!e || !masters_page(node, p))
		return;
	if (e->state > DIR_LOST || (e->sharers & ~all) ||
	    (e->state == WIRE_PS_M && e->owner >= R.n) ||
	    (e->state == WIRE_PS_S && !e->sharers) ||
	    (e->busy && e->busy_node >= R.n))
		broken("node %d: page %llu: malformed entry (state %u owner "
		       "%u sharers %llx busy %u/%u)", node,
		       (unsigned long long)p, e->state, e->owner,
		       (unsigned long long)e->sharers, e->busy, e->busy_node);
}

static void check_pages(void)
{
	for (uint64_t p = 0; p < NPAGES; p++) {
		int nm = 0, ns = 0, count, m;

		for (int i = 0; i < R.n; i++)
			if (live(i))
				check_entry_shape(i, p);
		m = page_master(p, &count);
		for (int i = 0; i < R.n; i++) {
			struct page *pg = page_of(i, p);
			uint64_t v = pg ? pg->version : 0;

			if (!live(i))
				continue;
			nm += state(i, p) == WIRE_PS_M;
			ns += state(i, p) == WIRE_PS_S;
			if (v < R.ver[i][p] && !page_tainted(p))
				broken("node %d: page %llu: version %llu after "
				       "%llu", i, (unsigned long long)p,
				       (unsigned long long)v,
				       (unsigned long long)R.ver[i][p]);
			R.ver[i][p] = v;
		}
		if (page_tainted(p))
			continue;
		if (nm > 1 || (nm == 1 && ns > 0))
			broken("page %llu: %d nodes hold it M, %d S",
			       (unsigned long long)p, nm, ns);
		if (count > 1)
			broken("page %llu: %d masters", (unsigned long long)p,
			       count);
		if (m >= 0) {
			struct dentry *e = entry_at(m, p);
			uint64_t v = e ? e->version : 0;

			if (v < R.dir_ver[p])
				broken("page %llu: master %d's version %llu "
				       "after %llu", (unsigned long long)p, m,
				       (unsigned long long)v,
				       (unsigned long long)R.dir_ver[p]);
			R.dir_ver[p] = v;
		}
		if (R.data_tainted || !R.seed[p])
			continue;
		for (int i = 0; i < R.n; i++)
			if (live(i) && state(i, p) != WIRE_PS_I &&
			    !holds(i, p, R.seed[p]))
				broken("node %d: page %llu (state %d) is not "
				       "what was written last (seed %llu)", i,
				       (unsigned long long)p, state(i, p),
				       (unsigned long long)R.seed[p]);
	}
}

/* The VMS compatibility matrix, written out here rather than taken from
 * lock/mode.c, which is under test too.  LK_NONE (no mode) blocks
 * nothing. */
static bool compatible(unsigned a, unsigned b)
{
	static const bool m[WIRE_LK_MODES][WIRE_LK_MODES] = {
		/*        NL CR CW PR PW EX */
		/* NL */ {1, 1, 1, 1, 1, 1},
		/* CR */ {1, 1, 1, 1, 1, 0},
		/* CW */ {1, 1, 1, 0, 0, 0},
		/* PR */ {1, 1, 0, 1, 0, 0},
		/* PW */ {1, 1, 0, 0, 0, 0},
		/* EX */ {1, 0, 0, 0, 0, 0},
	};

	if (a == LK_NONE || b == LK_NONE)
		return true;
	if (a >= WIRE_LK_MODES || b >= WIRE_LK_MODES)
		return false;
	return m[a][b];
}

static void check_lock_masters(void)
{
	for (int i = 0; i < R.n; i++) {
		struct lockmgr *lk = tc.d[i].lk;

		if (!live(i))
			continue;
		for (unsigned b = 0; b < LK_BUCKETS; b++) {
			struct lres *r;

			list_for_each(r, &lk->res[b], hlink) {
				struct list *qs[2] = {&r->granted,
						      &r->converting};
				const struct lkb *x, *y;

				if (!home_is_master(&tc.d[i], r->key, &r->h))
					continue;
				for (int qa = 0; qa < 2; qa++)
				list_for_each(x, qs[qa], link)
				for (int qb = 0; qb < 2; qb++)
				list_for_each(y, qs[qb], link) {
					if (x == y ||
					    compatible(x->grmode, y->grmode))
						continue;
					broken("node %d: lock %016llx: granted "
					       "%u beside %u", i,
					       (unsigned long long)r->key,
					       x->grmode, y->grmode);
				}
			}
		}
	}
}

/* Once quiet: the master's entry agrees with what the nodes hold. */
static void check_directory(void)
{
	uint64_t dead = dead_set();

	for (uint64_t p = 0; p < NPAGES; p++) {
		int count, m = page_master(p, &count);
		struct dentry *e;
		uint64_t listed;
		unsigned st_;

		if (page_tainted(p))
			continue;
		if (m < 0) {
			if (!R.ndead)
				broken("page %llu: no master, nobody died",
				       (unsigned long long)p);
			continue;
		}
		e = entry_at(m, p);
		st_ = e ? e->state : WIRE_PS_I;
		if (st_ == DIR_LOST) {
			if (!R.ndead)
				broken("page %llu: lost, nobody died",
				       (unsigned long long)p);
			continue;
		}
		listed = st_ == WIRE_PS_M ? 1ull << e->owner :
			 st_ == WIRE_PS_S ? e->sharers : 0;
		if (listed & dead)
			broken("page %llu: master %d lists dead nodes %llx",
			       (unsigned long long)p, m,
			       (unsigned long long)(listed & dead));
		for (int i = 0; i < R.n; i++) {
			struct page *pg = page_of(i, p);
			int s = state(i, p);
			bool given = false;

			if (!live(i))
				continue;
			if (listed & (1ull << i)) {
				if (st_ == WIRE_PS_S ? s != WIRE_PS_S
						     : s == WIRE_PS_I)
					broken("page %llu: master %d lists node "
					       "%d (entry %u), which holds %d",
					       (unsigned long long)p, m, i, st_,
					       s);
				if (pg->version != e->version)
					broken("page %llu: node %d holds version "
					       "%llu, master %d has %llu",
					       (unsigned long long)p, i,
					       (unsigned long long)pg->version,
					       m,
					       (unsigned long long)e->version);
				continue;
			}
			if (s == WIRE_PS_I)
				continue;
			/* Unlisted: a copy a listed holder gave it. */
			for (int h = 0; h < R.n && pg->peer_copy; h++) {
				struct page *hp = page_of(h, p);

				if (live(h) && (listed & (1ull << h)) && hp &&
				    hp->state != WIRE_PS_I &&
				    (hp->given & (1ull << i)))
					given = true;
			}
			if (!given)
				broken("page %llu: node %d holds it (%d) unknown "
				       "to master %d (entry %u, listed %llx)",
				       (unsigned long long)p, i, s, m, st_,
				       (unsigned long long)listed);
		}
	}
}

/* Every lock of this node's processes, in turn. */
#define for_each_llock(d, lc, l)                                        \
	list_for_each(lc, &(d)->lk->clients, link)                      \
		list_for_each(l, &(lc)->locks, olink)

static bool holds_mode(const struct llock *l)
{
	return (l->state == LS_GRANTED || l->state == LS_CONVERTING) &&
	       l->grmode != LK_NONE;
}

static struct lkb *master_lkb(struct lres *r, const struct wire_lock_id *id)
{
	struct lkb *b = lock_find_in(&r->granted, id);

	return b ? b : lock_find_in(&r->converting, id);
}

/* Once quiet: what processes hold agrees across nodes and with masters. */
static void check_locks_quiet(void)
{
	for (int i = 0; i < R.n; i++) {
		struct lclient *lc, *lc2;
		struct llock *l, *l2;

		if (!live(i))
			continue;
		for_each_llock(&tc.d[i], lc, l) {
			struct wire_lock_id id = {.handle = l->handle,
						  .owner = l->owner,
						  .node = (uint16_t)i};
			int count, m;
			struct lres *r;
			struct lkb *b;

			if (!holds_mode(l) || key_tainted(l->key))
				continue;
			for (int j = 0; j < R.n; j++) {
				if (!live(j))
					continue;
				for_each_llock(&tc.d[j], lc2, l2)
					if (l2 != l && l2->key == l->key &&
					    holds_mode(l2) &&
					    !compatible(l->grmode,
							l2->grmode))
						broken("lock %016llx: node %d "
						       "holds %u, node %d %u",
						       (unsigned long long)
						       l->key, i, l->grmode,
						       j, l2->grmode);
			}
			m = key_master(l->key, &count);
			if (count != 1) {
				if (count > 1 || !R.ndead)
					broken("lock %016llx: %d masters",
					       (unsigned long long)l->key,
					       count);
				continue;
			}
			r = lock_res_get(&tc.d[m], l->key, false);
			b = r ? master_lkb(r, &id) : NULL;
			if (!b || b->grmode != l->grmode)
				broken("lock %016llx: node %d holds %u, its "
				       "master %d has %d",
				       (unsigned long long)l->key, i,
				       l->grmode, m, b ? b->grmode : -1);
		}
	}
	/* And every lock a master has granted is held by its process. */
	for (int i = 0; i < R.n; i++) {
		struct lockmgr *lk = tc.d[i].lk;

		if (!live(i))
			continue;
		for (unsigned bk = 0; bk < LK_BUCKETS; bk++) {
			struct lres *r;

			list_for_each(r, &lk->res[bk], hlink) {
				struct list *qs[2] = {&r->granted,
						      &r->converting};
				const struct lkb *b;

				if (!home_is_master(&tc.d[i], r->key, &r->h) ||
				    key_tainted(r->key))
					continue;
				for (int q = 0; q < 2; q++)
				list_for_each(b, qs[q], link) {
					struct llock *l;

					if (!live(b->id.node))
						continue;
					l = lock_by_handle(&tc.d[b->id.node],
							   b->id.handle);
					if (!l || l->owner != b->id.owner ||
					    !holds_mode(l) ||
					    l->grmode != b->grmode)
						broken("lock %016llx: master %d "
						       "granted node %u %u, "
						       "which holds %d",
						       (unsigned long long)
						       r->key, i, b->id.node,
						       b->grmode,
						       l && holds_mode(l) ?
						       l->grmode : -1);
				}
			}
		}
	}
}

/* With no hostile peer, once quiet the protocol has finished all it
 * started and refused nothing of its own. */
static void check_pure(void)
{
	for (int i = 0; i < R.n; i++) {
		struct dsmd *d = &tc.d[i];

		if (!live(i))
			continue;
		if (R.ndead == 0 &&
		    (d->st.bad_msgs || d->bad_msgs ||
		     d->st.lost_faults))
			broken("node %d refused %llu+%llu messages of honest "
			       "nodes, lost %llu faults", i,
			       (unsigned long long)d->st.bad_msgs,
			       (unsigned long long)d->bad_msgs,
			       (unsigned long long)d->st.lost_faults);
	}
}

/* Say what waits with nothing left to move it. */
static void stuck(void) __attribute__((noreturn));
static void stuck(void)
{
	for (int i = 0; i < R.n; i++) {
		const struct page_state *ps = tc.d[i].page;

		for (unsigned s = 0; live(i) && s < PAGE_NSLOTS; s++) {
			const struct txn *t = &ps->txns[s];

			if (t->used && !t->abandoned)
				broken("nothing moves, yet node %d's "
				       "transaction on page %llu waits (sent "
				       "to %d, master %d, asking %d, grant "
				       "%d, acks %u/%u)", i,
				       (unsigned long long)t->page,
				       t->sent_to, t->master, t->asking,
				       t->grant_seen, t->acks_got,
				       t->acks_needed);
		}
		for (uint64_t p = 0; live(i) && p < NPAGES; p++) {
			struct dentry *e = entry_at(i, p);

			if (e && (e->busy || e->q_head))
				broken("nothing moves, yet node %d's entry of "
				       "page %llu is busy (%d, for node %u) or "
				       "has requests queued (%d)", i,
				       (unsigned long long)p, e->busy,
				       e->busy_node, e->q_head != NULL);
		}
	}
	broken("nothing moves, yet something waits");
}

/* With honest peers, once nothing moves every lock operation has been
 * answered or waits in its master's queue: a release or a cancel still
 * out, a wait its master does not know of, an operation parked for an
 * entry or held for a recovery would wait forever. */
static void check_locks_settled(void)
{
	for (int i = 0; i < R.n; i++) {
		struct lockmgr *lk = tc.d[i].lk;
		struct lclient *lc;
		struct llock *l;

		if (!live(i))
			continue;
		if (!list_empty(&lk->held))
			broken("nothing moves, yet node %d holds lock operations "
			       "(recovering: %d)", i,
			       !list_empty(&lk->held));
		for (unsigned b = 0; b < LK_BUCKETS; b++) {
			struct lres *r;

			list_for_each(r, &lk->res[b], hlink)
				if (!list_empty(&r->parked) || r->asking)
					broken("nothing moves, yet node %d has "
					       "operations parked on lock "
					       "%016llx (asking %d)", i,
					       (unsigned long long)r->key,
					       r->asking);
		}
		for_each_llock(&tc.d[i], lc, l) {
			struct wire_lock_id id = {.handle = l->handle,
						  .owner = l->owner,
						  .node = (uint16_t)i};
			struct lres *r;
			int count, m;
			bool queued;

			if (l->state == LS_UNLOCKING || l->cancel)
				broken("nothing moves, yet node %d's lock "
				       "%016llx waits for the answer to its "
				       "%s", i, (unsigned long long)l->key,
				       l->cancel ? "cancel" : "release");
			if (!lock_waits(l))
				continue;
			m = key_master(l->key, &count);
			r = m >= 0 ? lock_res_get(&tc.d[m], l->key, false)
				   : NULL;
			queued = r && lock_find_in(l->state == LS_WAITING ?
						   &r->waiting :
						   &r->converting, &id);
			if (count != 1 || !queued)
				broken("nothing moves, yet node %d's lock "
				       "%016llx waits (state %u) for a master "
				       "that does not know of it (%d masters, "
				       "node %d)", i,
				       (unsigned long long)l->key, l->state,
				       count, m);
		}
	}
}

static void check(void)
{
	check_pages();
	check_lock_masters();
	if (!quiet()) {
		/* Nothing in flight, yet a fault or an entry waits: with
		 * honest peers only, it waits forever. */
		if (R.pure && settled())
			stuck();
		return;
	}
	if (R.pure)
		check_locks_settled();
	check_directory();
	check_locks_quiet();
	if (R.pure)
		check_pure();
}

/* ---------------------------------------------------------------------- */
/* Delivery and time                                                      */

/* What the processes were sent: read and dropped, so that sockets never
 * fill; a descriptor that came along (the node's memfd) is closed. */
static void drain_fd(int fd)
{
	static unsigned char buf[WIRE_IPC_MAX];
	struct wire_msg m;
	enum wire_error bad;
	int passed, ret;

	for (int k = 0; k < 4096; k++) {
		passed = -1;
		ret = ipc_recv_fd(fd, buf, sizeof(buf), 0, &m, &bad, &passed);
		if (passed >= 0)
			close(passed);
		if (ret && ret != -EPROTO)
			return;
	}
}

static void drain_all(void)
{
	for (int i = 0; i < R.n; i++) {
		for (int k = 0; k < PROTO_NPROC; k++) {
			struct lproc *p = &R.procs[i][k];

			if (!p->open)
				continue;
			drain_fd(p->fd[1]);
			if (!list_empty(&p->c.out))
				client_flush(&p->c);
		}
		for (int k = 0; k < PROTO_NCLIENT; k++)
			if (R.cl[i][k] >= 0)
				drain_fd(R.cl[i][k]);
	}
}

/* One node takes what it was sent: its self queue, then its inbox. */
static int step_node(int i)
{
	struct dsmd *d = &tc.d[i];
	int moved = 0, ret;

	speak_as(i);
	for (int k = 0; k < SELF_BURST && node_run_self(d); k++)
		moved++;
	ret = xport_progress(d->x);
	return moved + (ret > 0 ? ret : 0);
}

/* A node whose messages to itself pile up past STORM_SELF: what it sends
 * itself breeds more than it handles.  Nothing legitimate comes near (a
 * node sends itself one message per local operation): a storm is broken. */
static void storm(void)
{
	for (int i = 0; i < R.n; i++) {
		unsigned long n = 0, by[WIRE_TYPE_MAX] = {0};
		struct kept *k;
		unsigned top = 0;

		if (!live(i))
			continue;
		list_for_each(k, &tc.d[i].self_q, link) {
			n++;
			by[k->type]++;
		}
		if (n <= STORM_SELF)
			continue;
		for (unsigned t = 0; t < WIRE_TYPE_MAX; t++)
			if (by[t] > by[top])
				top = t;
		broken("node %d: %lu messages to itself queued, %lu of them "
		       "%s: a message storm", i, n, by[top],
		       wire_type_name(top));
	}
}

static void pump_all(void)
{
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		int moved = 0;

		for (int i = 0; i < R.n; i++)
			if (live(i))
				moved += step_node(i);
		drain_all();
		if (trace && round && !(round & (round - 1)))
			say("pump round %d: %d events\n", round, moved);
		if (moved > STORM_ROUND)
			storm();
		if (!moved)
			return;
	}
}

/* What the core's tick does in dsmd (loop.c): every module's tick, then
 * heartbeats. */
static void tick_all(void)
{
	for (int i = 0; i < R.n; i++) {
		struct dsmd *d = &tc.d[i];

		if (!live(i))
			continue;
		speak_as(i);
		for (size_t k = 0; k < d->modules_up; k++)
			if (dsmd_modules[k]->tick)
				dsmd_modules[k]->tick(d);
		cluster_tick(d);
	}
}

static void advance_ms(unsigned ms)
{
	if (R.time_ms + ms > TIME_CAP_MS)
		ms = TIME_CAP_MS - (unsigned)R.time_ms;
	R.time_ms += ms;
	fake_now += ms;
	for (int i = 0; i < R.n; i++)
		if (live(i)) {
			speak_as(i);
			timers_run(&tc.d[i]);
		}
	if (fake_now - R.last_tick >= TICK_MS) {
		R.last_tick = fake_now;
		tick_all();
	}
}

/* ---------------------------------------------------------------------- */
/* Legitimate work                                                        */

static int pick_live(void)
{
	int i = u8() % R.n;

	return live(i) ? i : -1;
}

static void do_fault(void)
{
	int i = pick_live();
	uint64_t p = u8() % NPAGES;
	static const uint32_t kinds[3] = {RD, WR, WP};
	uint32_t k = kinds[u8() % 3];

	if (i < 0)
		return;
	say("fault node %d page %llu %x\n", i, (unsigned long long)p, k);
	speak_as(i);
	fault(i, p, k);
}

static void do_store(void)
{
	int i = pick_live();
	uint64_t p = u8() % NPAGES;

	if (i < 0 || state(i, p) != WIRE_PS_M || busy(i, p))
		return;
	R.seed[p] = ++R.next_seed;
	say("store node %d page %llu seed %llu\n", i, (unsigned long long)p,
	    (unsigned long long)R.seed[p]);
	store(i, p, R.seed[p]);
}

static struct lproc *proc_get(int node, int k)
{
	struct lproc *p = &R.procs[node][k];

	if (p->open)
		return p;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fd))
		abort();
	/* dsmd's end is nonblocking, as accept gives it: a full socket
	 * queues replies in the client. */
	if (fcntl(p->fd[0], F_SETFL, O_NONBLOCK) ||
	    fcntl(p->fd[1], F_SETFL, O_NONBLOCK))
		abort();
	p->c = (struct client){.hello = true, .kind = WIRE_IPC_KIND_LOCK};
	client_init(&p->c, NULL);
	p->c.w.fd = p->fd[0];
	list_init(&p->c.link);
	p->open = true;
	p->next_lkid = 0;
	return p;
}

/* One IPC_LOCK from the process, through the handler the module table
 * gives that type. */
static void lock_ipc(int node, struct lproc *p, const struct wire_ipc_lock *q)
{
	unsigned char buf[sizeof(struct wire_hdr) + sizeof(*q)];
	struct dsmd *d = &tc.d[node];
	const struct dsmd_ipc *h = d->ipc_of[WIRE_IPC_LOCK];
	struct wire_msg m;
	int fd = -1;

	wire_build(buf, sizeof(buf), WIRE_IPC_LOCK, ++R.next_req, q,
		   sizeof(*q));
	if (wire_decode(buf, sizeof(buf), WIRE_CH_IPC, &m) != WIRE_OK || !h)
		abort();
	speak_as(node);
	h->fn(d, &p->c, &m, &fd);
}

static void do_lock(unsigned op)
{
	int i = pick_live(), k = u8() % PROTO_NPROC;
	struct wire_ipc_lock q = {0};
	uint8_t a = u8(), mode = u8(), flags = u8();
	struct lproc *p;

	if (i < 0)
		return;
	p = proc_get(i, k);
	q.mode = mode % 7 == 6 ? mode : mode % 6;
	if (flags & 1)
		q.flags |= DSM_LKF_NOQUEUE;
	if (flags & 2)
		q.flags |= DSM_LKF_VALBLK;
	if (op == PR_LOCK) {
		static const unsigned timeouts[4] = {0, 0, 5, 500};
		const char *name = lock_names[a % PROTO_NNAMES];

		q.op = WIRE_IPC_LK_LOCK;
		q.lkid = ++p->next_lkid;
		q.name_len = (uint32_t)strlen(name);
		memcpy(q.name, name, q.name_len);
		q.bast = !!(flags & 4);
		if (flags & 8)
			q.parent = u8() % (p->next_lkid + 1);
		q.timeout_ms = timeouts[(flags >> 4) & 3];
	} else if (op == PR_CONVERT) {
		q.op = WIRE_IPC_LK_LOCK;
		q.flags |= DSM_LKF_CONVERT;
		q.lkid = a % (p->next_lkid + 1);
	} else {
		q.op = WIRE_IPC_LK_UNLOCK;
		q.lkid = a % (p->next_lkid + 1);
		q.flags = (mode & 1 ? DSM_LKF_CANCEL : 0) |
			  (mode & 2 ? DSM_LKF_VALBLK : 0);
		memset(q.lvb, flags, sizeof(q.lvb));
	}
	say("lock op %u node %d proc %d lkid %llu mode %u flags %x\n", q.op,
	    i, k, (unsigned long long)q.lkid, q.mode, q.flags);
	lock_ipc(i, p, &q);
}

/* The process's end goes, and with it what dsmd queued for it: the
 * flush fails on the closed socket and frees the queue. */
static void proc_let_go(struct lproc *p)
{
	close(p->fd[1]);
	p->fd[1] = -1;
	client_flush(&p->c);
}

/* The process's lock connection closes: what client_close tells the
 * modules, without freeing the client, which is ours. */
static void proc_gone(int node, struct lproc *p)
{
	struct dsmd *d = &tc.d[node];

	if (!p->open)
		return;
	speak_as(node);
	for (size_t i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->client_gone)
			dsmd_modules[i]->client_gone(d, &p->c);
	proc_let_go(p);
	close(p->fd[0]);
	p->open = false;
}

static void do_proc_gone(void)
{
	int i = pick_live(), k = u8() % PROTO_NPROC;

	if (i < 0)
		return;
	say("lock process node %d proc %d gone\n", i, k);
	proc_gone(i, &R.procs[i][k]);
}

static void do_kill(void)
{
	int i = pick_live();

	if (i < 0 || R.ndead)
		return;
	say("node %d dies\n", i);
	xport_mock_kill(tc.f, i);
	R.dead[i] = true;
	R.ndead++;
}

/* ---------------------------------------------------------------------- */
/* A hostile peer                                                         */

/* What a hostile message names, from its bytes as the receiver will see
 * them; nothing if the decoder refuses it. */
static void taint_msg(const void *msg, size_t len)
{
	struct wire_msg m;
	uint64_t first = 0;
	unsigned type;

	if (wire_decode(msg, len, WIRE_CH_NODE, &m) != WIRE_OK)
		return;
	R.pure = false;
	type = m.hdr->type;
	if (m.body_len >= sizeof(first))
		memcpy(&first, m.body, sizeof(first));
	switch (type) {
	case WIRE_DSM_REQ:
	case WIRE_DSM_PEER_REQ:
	case WIRE_DSM_FWD:
		/* A slot of its choosing: an honest holder writes a page
		 * into whatever that slot is waiting for. */
		R.data_tainted = true;
		taint_page(first);
		break;
	case WIRE_DSM_INV:
	case WIRE_DSM_INV_ACK:
	case WIRE_DSM_GRANT:
	case WIRE_DSM_DONE:
	case WIRE_DSM_LOST:
	case WIRE_DSM_SHARED:
	case WIRE_DSM_PASSED:
		taint_page(first);
		break;
	case WIRE_DIR_MIGRATE:
	case WIRE_DIR_HINT:
	case WIRE_DIR_NACK:
	case WIRE_DIR_WHO_HAS_REPLY: {
		/* Both start with the key and the kind. */
		uint32_t kind;

		memcpy(&kind, (const char *)m.body + 8, sizeof(kind));
		if (kind == WIRE_ENTRY_PAGE)
			taint_page(first);
		else if (kind == WIRE_ENTRY_LOCK)
			taint_key(first);
		break;
	}
	case WIRE_LOCK_OP: {
		struct wire_lock_op o;

		taint_key(first);
		if (m.body_len < sizeof(o))
			break;
		memcpy(&o, m.body, sizeof(o));
		if (o.reserved) {
			/* It names a death: a death report, as below. */
			R.all_keys_tainted = true;
			R.all_pages_tainted = true;
			R.data_tainted = true;
		}
		break;
	}
	case WIRE_LOCK_REPLY:
		taint_key(first);
		break;
	case WIRE_DSM_STUCK:
		/* A requester that says it waits on nodes: the master
		 * declares those dead (cluster_suspect), a cut as below. */
	case WIRE_LOCK_RECOVERED:
		/* A recovery barrier for a death nobody saw, and a death
		 * report: the receiver declares the node it names dead too
		 * (cluster_reported_dead), which splits the cluster as a cut
		 * link would, and whatever pages that node held are lost to
		 * the receiver's side. */
		R.all_keys_tainted = true;
		R.all_pages_tainted = true;
		R.data_tainted = true;
		break;
	case WIRE_RESET:
	case WIRE_REGION_OP:
	case WIRE_COLL_ARRIVE:
		/* A range reset, or node 0 deciding one. */
		R.all_pages_tainted = true;
		R.data_tainted = true;
		break;
	default:
		break;
	}
}

static void peer_send(int from, int to, const void *msg, size_t len)
{
	if (honest)
		return;
	taint_msg(msg, len);
	xport_send_raw(tc.d[from].x, to, msg, len);
}

/* A sender and a receiver: two different nodes, the receiver alive. */
static bool pick_pair(int *from, int *to)
{
	uint8_t a = u8(), b = u8();

	*to = a % R.n;
	*from = (*to + 1 + b % (R.n - 1)) % R.n;
	return live(*to);
}

static void do_peer_raw(void)
{
	static unsigned char buf[WIRE_MSG_MAX];
	int from, to;
	size_t len;
	bool ok = pick_pair(&from, &to);

	len = u16() % (WIRE_MSG_MAX + 1);
	take(buf, len);
	if (!ok)
		return;
	say("peer raw %d -> %d, %zu bytes\n", from, to, len);
	peer_send(from, to, buf, len);
}

/* Field pickers: a byte chooses the value a node really has, one next to
 * it, or one the input spells out. */

static uint32_t pick_node(void)
{
	uint8_t b = u8();

	if (b < 0xf8)
		return b % (uint32_t)R.n;
	switch (b & 7) {
	case 0:
		return (uint32_t)R.n;
	case 1:
		return 63;
	case 2:
		return 64;
	case 3:
		return 0xffff;
	default:
		return u32();
	}
}

static uint64_t pick_set(void)
{
	uint8_t b = u8();

	return b < 0xe0 ? b & ((1u << R.n) - 1) : u64();
}

static uint64_t pick_page(void)
{
	uint8_t b = u8();

	if (b < 0xe0)
		return b % NPAGES;
	switch (b & 3) {
	case 0:
		return ARENA / WIRE_PAGE_SIZE - 1;
	case 1:
		return ARENA / WIRE_PAGE_SIZE;
	case 2:
		return NPAGES + (b >> 2 & 7);
	default:
		return u64();
	}
}

/* The k-th open transaction of node (k from the input), or NULL. */
static const struct txn *pick_txn_at(int node, uint8_t k)
{
	const struct page_state *ps = tc.d[node].page;
	unsigned n = 0, want;

	for (unsigned i = 0; i < PAGE_NSLOTS; i++)
		n += ps->txns[i].used && !ps->txns[i].abandoned;
	if (!n)
		return NULL;
	want = k % n;
	for (unsigned i = 0; i < PAGE_NSLOTS; i++)
		if (ps->txns[i].used && !ps->txns[i].abandoned && !want--)
			return &ps->txns[i];
	return NULL;
}

/* A transaction id: one of `node`'s open ones, or anything. */
static uint64_t pick_txn_id(int node)
{
	uint8_t b = u8(), k = u8();
	const struct txn *t = NULL;

	if (b < 0xc0 && live(node))
		t = pick_txn_at(node, k);
	if (t)
		return t->id;
	if (b < 0xe0)
		return (1ull << 16) | (k % PAGE_NSLOTS);
	return u64();
}

/* A receive slot of `node`, by index: that of one of its transactions,
 * another of its slots, or anything (beyond those it announced). */
static struct wire_slot pick_slot(int node)
{
	uint8_t b = u8(), k = u8();
	struct wire_slot s = {0};
	const struct txn *t;

	if (b >= 0xe0 || node < 0 || node >= R.n) {
		s.index = u32();
		return s;
	}
	t = b < 0xc0 ? pick_txn_at(node, k) : NULL;
	s.index = t ? (unsigned)(t->id & 0xffff) : k % PAGE_NSLOTS;
	return s;
}

/* The entry of page as its master (any live one) has it, or NULL. */
static struct dentry *master_entry(uint64_t page)
{
	int count, m = page < NPAGES ? page_master(page, &count) : -1;

	return m >= 0 ? entry_at(m, page) : NULL;
}

static uint64_t pick_version(uint64_t page)
{
	struct dentry *e = master_entry(page);
	uint64_t v = e ? e->version : 0;

	switch (u8() & 3) {
	case 0:
		return v;
	case 1:
		return v + 1;
	case 2:
		return v - 1;
	default:
		return u64();
	}
}

static uint32_t pick_epoch(uint64_t page)
{
	struct dentry *e = master_entry(page);
	uint32_t v = e ? e->h.epoch : 0;

	switch (u8() & 3) {
	case 0:
		return v;
	case 1:
		return v + 1;
	case 2:
		return 0;
	default:
		return u32();
	}
}

static struct wire_route pick_route(int from)
{
	struct wire_route r = {.origin = (uint16_t)from};
	uint8_t b = u8();

	if (b & 1)
		r.origin = (uint16_t)pick_node();
	if (b & 2)
		r.hops = u8() % (R.n + 2);
	if (b & 4)
		r.epoch = u8() % 4;
	if (b & 8)
		r.chain = pick_set();
	return r;
}

/* A lock resource: a name of the steps' (key matching), or anything. */
struct resource {
	uint64_t key, parent;
	uint8_t len;
	char name[WIRE_LOCK_NAME_MAX];
};

static struct resource pick_resource(void)
{
	struct resource r = {0};
	uint8_t b = u8();

	if (b < 0xc0) {
		const char *s = lock_names[b % PROTO_NNAMES];

		r.len = (uint8_t)strlen(s);
		memcpy(r.name, s, r.len);
		r.key = lock_key(0, r.name, r.len);
		if (b & 0x80)
			r.key ^= 1; /* a key that lies about its name */
		return r;
	}
	r.parent = b & 1 ? name_key(b % PROTO_NNAMES) : 0;
	r.len = u8();
	take(r.name, WIRE_LOCK_NAME_MAX);
	r.key = b & 2 ? u64() : lock_key(r.parent, r.name,
					 r.len > WIRE_LOCK_NAME_MAX ?
					 WIRE_LOCK_NAME_MAX : r.len);
	return r;
}

/* A lock: one a process of a live node holds or waits for, or anything. */
static struct wire_lock_id pick_lock_id(void)
{
	uint8_t b = u8(), k = u8();
	struct wire_lock_id id = {0};

	if (b < 0xc0) {
		for (int pass = 0; pass < 2; pass++) {
			unsigned n = 0;

			for (int i = 0; i < R.n; i++) {
				struct lclient *lc;
				struct llock *l;

				if (!live(i))
					continue;
				for_each_llock(&tc.d[i], lc, l) {
					if (pass && n == k) {
						id.handle = l->handle;
						id.owner = l->owner;
						id.node = (uint16_t)i;
						return id;
					}
					n++;
				}
			}
			if (!n)
				break;
			k %= n;
		}
	}
	id.handle = b < 0xe0 ? k % 8 : u64();
	id.owner = b < 0xe0 ? k % 4 : u32();
	id.node = (uint16_t)pick_node();
	return id;
}

static uint8_t pick_mode(void)
{
	uint8_t b = u8();

	return b < 0xf0 ? b % WIRE_LK_MODES : b == 0xff ? LK_NONE : b;
}

static size_t build_dsm(unsigned type, int from, int to, void *body,
			uint64_t *req_id)
{
	switch (type) {
	case WIRE_DSM_REQ:
	case WIRE_DSM_PEER_REQ: {
		struct wire_dsm_req q = {0};

		q.page = pick_page();
		q.access = u8() % 4;
		q.has_copy = u8() & 1;
		q.slot = pick_slot(from);
		q.route = pick_route(from);
		q.version = pick_version(q.page);
		*req_id = pick_txn_id(from);
		memcpy(body, &q, sizeof(q));
		return sizeof(q);
	}
	case WIRE_DSM_FWD: {
		struct wire_dsm_fwd f = {0};

		f.page = pick_page();
		f.requester = pick_node();
		f.flags = u8() & 7;
		f.state = u8() % 4;
		f.epoch = pick_epoch(f.page);
		f.version = pick_version(f.page);
		f.slot = pick_slot((int)f.requester);
		f.covered = pick_set();
		*req_id = pick_txn_id((int)f.requester);
		memcpy(body, &f, sizeof(f));
		return sizeof(f);
	}
	case WIRE_DSM_INV: {
		struct wire_dsm_inv v = {0};

		v.page = pick_page();
		v.requester = pick_node();
		v.epoch = pick_epoch(v.page);
		v.flags = u8() % 4;
		v.covered = pick_set();
		v.version = pick_version(v.page);
		*req_id = pick_txn_id((int)v.requester);
		memcpy(body, &v, sizeof(v));
		return sizeof(v);
	}
	case WIRE_DSM_INV_ACK: {
		struct wire_dsm_ack a = {0};
		uint8_t b = u8();

		a.page = pick_page();
		a.node = b & 1 ? pick_node() : (uint32_t)from;
		a.flags = b >> 1 & 3;
		a.also = b & 8 ? pick_set() : 0;
		*req_id = pick_txn_id(to);
		memcpy(body, &a, sizeof(a));
		return sizeof(a);
	}
	case WIRE_DSM_GRANT: {
		struct wire_dsm_grant g = {0};

		g.page = pick_page();
		g.state = u8() % 4;
		g.acks = u8() % 4;
		g.flags = u8() & 7;
		g.epoch = pick_epoch(g.page);
		g.version = pick_version(g.page);
		g.covered = pick_set();
		*req_id = pick_txn_id(to);
		memcpy(body, &g, sizeof(g));
		return sizeof(g);
	}
	case WIRE_DSM_DONE: {
		struct wire_dsm_done dn = {0};
		struct dentry *e;
		uint8_t b = u8();

		dn.page = pick_page();
		dn.aborted = b & 1;
		e = dn.page < NPAGES ? entry_at(to, dn.page) : NULL;
		/* The open transaction's id: a replayed or forged DONE. */
		*req_id = (b & 2) && e && e->busy ? e->busy_req
						  : pick_txn_id(from);
		memcpy(body, &dn, sizeof(dn));
		return sizeof(dn);
	}
	case WIRE_DSM_SHARED: {
		struct wire_dsm_shared sh = {0};

		sh.page = pick_page();
		sh.node = pick_node();
		sh.version = pick_version(sh.page);
		memcpy(body, &sh, sizeof(sh));
		return sizeof(sh);
	}
	case WIRE_DSM_LOST: {
		struct wire_dsm_lost l = {0};

		l.page = pick_page();
		l.node = pick_node();
		l.flags = u8() & 3;
		*req_id = pick_txn_id(to);
		memcpy(body, &l, sizeof(l));
		return sizeof(l);
	}
	}
	return 0;
}

static size_t build_dir(unsigned type, int from, int to, void *body,
			uint64_t *req_id)
{
	uint8_t b = u8();
	bool lock = b & 1;
	uint64_t key;

	if (lock) {
		key = pick_resource().key;
	} else {
		key = pick_page();
	}
	if (type == WIRE_DIR_MIGRATE) {
		struct wire_dir_migrate mg = {.key = key};
		unsigned char *p = (unsigned char *)body + sizeof(mg);
		size_t len;

		/* One field at a time: the input is read in this order. */
		mg.kind = b & 2 ? u32() : lock ? WIRE_ENTRY_LOCK
					       : WIRE_ENTRY_PAGE;
		mg.epoch = lock ? u8() % 4 : pick_epoch(key);
		take(&mg.counts, sizeof(mg.counts));
		if (!lock) {
			struct wire_dir_page pg;
			uint8_t sb = u8();

			/* One byte for both, so that the inputs found before
			 * the flags came are read as they were. */
			pg.state = sb % 5;
			pg.flags = (sb / 5) % 3; /* 2: not a flag */
			pg.owner = pick_node();
			pg.sharers = pick_set();
			pg.version = pick_version(key);
			memcpy(p, &pg, sizeof(pg));
			len = sizeof(pg);
		} else {
			struct wire_lock_state ls = {0};
			uint8_t nlocks = u8() % 4;
			struct resource r = pick_resource();

			ls.parent = r.parent;
			ls.name_len = r.len;
			memcpy(ls.name, r.name, sizeof(ls.name));
			mg.key = key = r.key;
			ls.lvb_valid = u8() & 1;
			ls.nlocks = nlocks;
			take(ls.lvb, sizeof(ls.lvb));
			memcpy(p, &ls, sizeof(ls));
			len = sizeof(ls);
			for (unsigned i = 0; i < nlocks; i++) {
				struct wire_lock_held h = {0};

				h.id = pick_lock_id();
				h.grmode = pick_mode();
				h.flags = u8() & 6;
				memcpy(p + len, &h, sizeof(h));
				len += sizeof(h);
			}
		}
		if (b & 4)
			len = u8() % (len + 8); /* a length that lies */
		mg.state_len = (uint32_t)len;
		memcpy(body, &mg, sizeof(mg));
		*req_id = 0;
		return sizeof(mg) + len;
	} else {
		struct wire_dir_where w = {.key = key};

		w.kind = b & 2 ? u32() : lock ? WIRE_ENTRY_LOCK
					      : WIRE_ENTRY_PAGE;
		w.master = b & 4 ? pick_node() : (uint32_t)from;
		w.hint = b & 8 ? WIRE_NO_NODE : pick_node();
		w.epoch = lock ? u8() % 4 : pick_epoch(key);
		if (type == WIRE_DIR_WHO_HAS_REPLY && !(b & 4))
			w.master = u8() & 1;
		memcpy(body, &w, sizeof(w));
		/* A token: a transaction's (NACK), a query's, or anything. */
		*req_id = b & 0x10 ? pick_txn_id(to)
				   : b & 0x20 ? u8() % 8 : u64();
		return sizeof(w);
	}
}

static size_t build_lock(unsigned type, int from, int to, void *body,
			 uint64_t *req_id)
{
	*req_id = 0;
	(void)from;
	(void)to;
	switch (type) {
	case WIRE_LOCK_OP: {
		struct wire_lock_op o = {0};
		uint8_t b = u8();
		struct resource r = pick_resource();

		o.key = r.key;
		o.parent = r.parent;
		o.name_len = r.len;
		memcpy(o.name, r.name, sizeof(o.name));
		o.id = pick_lock_id();
		o.op = u8() % (WIRE_LOCK_OPCODE_MAX + 1);
		o.flags = u8() & 0x3f;
		o.grmode = pick_mode();
		o.rqmode = pick_mode();
		o.status = b & 1 ? -(int32_t)(u8() % 130) : 0;
		o.seq = u8();
		o.hops = u8() % 8;
		o.origin = b & 2 ? pick_lock_id() : o.id;
		take(o.lvb, sizeof(o.lvb));
		o.route = pick_route(from);
		o.reserved = b & 4 ? u8() % (R.n + 2) : 0;
		memcpy(body, &o, sizeof(o));
		return sizeof(o);
	}
	case WIRE_LOCK_REPLY: {
		struct wire_lock_reply rp = {0};

		rp.key = pick_resource().key;
		rp.id = pick_lock_id();
		rp.kind = u8() % (WIRE_LKR_KIND_MAX + 1);
		rp.status = -(int32_t)(u8() % 4 * 11) ;
		rp.mode = pick_mode();
		rp.flags = u8() & 3;
		rp.epoch = u8() % 4;
		rp.seq = u8() % 4;
		take(rp.lvb, sizeof(rp.lvb));
		memcpy(body, &rp, sizeof(rp));
		return sizeof(rp);
	}
	case WIRE_LOCK_PROBE: {
		struct wire_lock_probe pb = {0};

		pb.origin = pick_lock_id();
		pb.seq = u8() % 4;
		pb.hops = u8() % 4 ? u8() : u32();
		pb.target = u8() % 4;
		memcpy(body, &pb, sizeof(pb));
		return sizeof(pb);
	}
	case WIRE_LOCK_RECOVERED: {
		struct wire_lock_recovered rc = {0};

		rc.dead = pick_node();
		memcpy(body, &rc, sizeof(rc));
		return sizeof(rc);
	}
	}
	return 0;
}

/* The node-channel types, for the selector's type index. */
static const uint8_t node_types[] = {
	WIRE_DSM_REQ, WIRE_DSM_PEER_REQ, WIRE_DSM_FWD, WIRE_DSM_INV,
	WIRE_DSM_INV_ACK, WIRE_DSM_GRANT, WIRE_DSM_DONE, WIRE_DSM_SHARED,
	WIRE_DSM_LOST, WIRE_DIR_MIGRATE, WIRE_DIR_HINT, WIRE_DIR_NACK,
	WIRE_DIR_WHO_HAS, WIRE_DIR_WHO_HAS_REPLY, WIRE_LOCK_OP,
	WIRE_LOCK_REPLY, WIRE_LOCK_PROBE, WIRE_LOCK_RECOVERED,
	/* Built from the input's bytes only. */
	WIRE_CREDIT, WIRE_HEARTBEAT, WIRE_CHECK_BEGIN, WIRE_CHECK_READY,
	WIRE_CHECK_DATA, WIRE_CHECK_DATA_DONE, WIRE_CHECK_WRITE_DONE,
	WIRE_CHECK_END, WIRE_CHECK_PROGRESS, WIRE_COLL_ARRIVE,
	WIRE_COLL_DONE, WIRE_REGION_OP, WIRE_REGION_REPLY, WIRE_RESET,
	WIRE_RESET_ACK, WIRE_DIR_POLICY, WIRE_DIR_POLICY_ACK,
};

/* The smallest body wire_decode() takes for a type (the variable ones
 * get their counts patched to match). */
static size_t body_min(unsigned type)
{
	static unsigned char msg[WIRE_MSG_MAX], zero[WIRE_MSG_MAX];
	static int16_t cache[WIRE_TYPE_MAX];
	struct wire_msg m;

	if (cache[type])
		return (size_t)(cache[type] - 1);
	for (size_t len = 0; len + sizeof(struct wire_hdr) <= WIRE_MSG_MAX;
	     len++) {
		size_t n = wire_build(msg, sizeof(msg), type, 0, zero, len);

		if (n && wire_decode(msg, n, WIRE_CH_NODE, &m) == WIRE_OK) {
			cache[type] = (int16_t)(len + 1);
			return len;
		}
	}
	cache[type] = 1;
	return 0;
}

/* Any type, its body the input's bytes at the length its type wants. */
static size_t build_generic(unsigned type, void *body, uint64_t *req_id)
{
	size_t len = body_min(type);

	*req_id = u8() < 0x80 ? u8() : u64();
	take(body, len);
	if (type == WIRE_HEARTBEAT && (u8() & 1)) {
		len = sizeof(struct wire_heartbeat);
		take(body, len);
	} else if (type == WIRE_CHECK_DATA) {
		struct wire_check_data cd;
		uint32_t extra = u8();

		memcpy(&cd, body, sizeof(cd));
		cd.payload_len = extra;
		memcpy(body, &cd, sizeof(cd));
		take((char *)body + len, extra);
		len += extra;
	} else if (type == WIRE_RESET || type == WIRE_RESET_ACK) {
		struct wire_reset r;

		memcpy(&r, body, sizeof(r));
		if (r.first_page & 1) { /* mostly ranges the steps use */
			r.first_page = r.first_page >> 1 & 7;
			r.npages = r.npages % 4;
		}
		memcpy(body, &r, sizeof(r));
	}
	return len;
}

/* Types that came after node_types[] was fixed: picked by the top of the
 * type index's range (TYPE_MORE on), so that the inputs found before are
 * read as they were, but for that top part. */
#define TYPE_MORE 245
static const uint8_t more_types[] = {
	WIRE_DSM_STUCK, WIRE_DSM_PASSED, WIRE_PAGE_SLOTS,
};

/* DSM_STUCK and DSM_PASSED about a page of the steps, in a transaction
 * of the receiver's or made up; PAGE_SLOTS from the input's bytes. */
static size_t build_more(unsigned type, int from, int to, void *body,
			 uint64_t *req_id)
{
	switch (type) {
	case WIRE_DSM_STUCK: {
		struct wire_dsm_stuck k = {0};

		k.page = pick_page();
		k.heard = pick_set();
		k.grant = u8() & 1;
		k.has_copy = u8() & 1;
		*req_id = pick_txn_id(from);
		memcpy(body, &k, sizeof(k));
		return sizeof(k);
	}
	case WIRE_DSM_PASSED: {
		struct wire_dsm_passed p = {0};

		p.page = pick_page();
		*req_id = pick_txn_id(to);
		memcpy(body, &p, sizeof(p));
		return sizeof(p);
	}
	default:
		return build_generic(type, body, req_id);
	}
}

static void do_peer_msg(void)
{
	static unsigned char body[WIRE_MSG_MAX], msg[WIRE_MSG_MAX];
	int from, to;
	bool ok = pick_pair(&from, &to);
	uint8_t sel = u8(), ti = u8();
	unsigned type = ti >= TYPE_MORE ?
		more_types[(ti - TYPE_MORE) % sizeof(more_types)] :
		node_types[ti % sizeof(node_types)];
	uint64_t req_id = 0;
	size_t len, n;

	if (!ok)
		return;
	if (ti >= TYPE_MORE)
		len = build_more(type, from, to, body, &req_id);
	else if (!sel || ti % sizeof(node_types) >= 18)
		len = build_generic(type, body, &req_id);
	else if (type <= WIRE_DSM_DONE || type == WIRE_DSM_LOST ||
		 type == WIRE_DSM_PEER_REQ || type == WIRE_DSM_SHARED)
		len = build_dsm(type, from, to, body, &req_id);
	else if (type >= WIRE_DIR_MIGRATE && type <= WIRE_DIR_WHO_HAS_REPLY)
		len = build_dir(type, from, to, body, &req_id);
	else
		len = build_lock(type, from, to, body, &req_id);
	n = wire_build(msg, sizeof(msg), type, req_id, body, len);
	if (!n)
		return;
	say("peer %s %d -> %d, req %llx, %zu bytes\n", wire_type_name(type),
	    from, to, (unsigned long long)req_id, len);
	peer_send(from, to, msg, n);
}

/* A peer's RDMA WRITE with immediate into one of `to`'s receive slots:
 * the page, then a trailer, landing as an HCA puts them (the slots are
 * remote-writable) and announced by the completion the receiver gets. */
static void do_peer_rdma(void)
{
	static unsigned char slot[WIRE_SLOT_SIZE];
	struct xport_event ev = {.type = XPORT_EV_WRITE_IMM};
	struct wire_trailer tr = {.magic = WIRE_TRAILER_MAGIC};
	const struct txn *t = NULL;
	int from, to;
	bool ok = pick_pair(&from, &to);
	uint8_t b = u8(), k = u8();
	unsigned idx;
	struct page_state *ps;

	if (!ok)
		return;
	ps = tc.d[to].page;
	if (b < 0xc0)
		t = pick_txn_at(to, k);
	idx = t ? (unsigned)(t->id & 0xffff) : k % PAGE_NSLOTS;
	/* The trailer: the transaction's own fields, or the input's. */
	tr.page = b & 1 ? pick_page() : t ? t->page : 0;
	tr.req_id = b & 2 ? pick_txn_id(to) : t ? t->id : 0;
	tr.version = pick_version(tr.page);
	tr.state = u8() % 4;
	tr.grant = u8() % 3;
	tr.src = b & 4 ? pick_node() : (uint32_t)from;
	if (b & 8)
		tr.magic = u32();
	tr.master = pick_node();
	tr.epoch = pick_epoch(tr.page);
	tr.also = b & 0x10 ? pick_set() : 0;
	tr.flags = u8() & 3;
	wire_pattern_fill(slot, WIRE_PAGE_SIZE, u64());
	memcpy(slot + WIRE_PAGE_SIZE, &tr, sizeof(tr));
	ev.peer = from;
	ev.imm = u8() < 0xf0 ? PAGE_IMM_BIT | idx : u32();
	ev.len = u8() < 0xf0 ? WIRE_SLOT_SIZE : u16();
	if (honest)
		return;
	R.pure = false;
	R.data_tainted = true;
	taint_page(tr.page);
	if (idx < PAGE_NSLOTS && ps->txns[idx].used)
		taint_page(ps->txns[idx].page);
	memcpy((char *)ps->recv_buf + (size_t)idx * PAGE_SLOT_STRIDE, slot,
	       sizeof(slot));
	say("peer rdma %d -> %d slot %u imm %x page %llu\n", from, to, idx,
	    ev.imm, (unsigned long long)tr.page);
	cluster_on_event(&tc.d[to], &ev);
}

/* ---------------------------------------------------------------------- */
/* A hostile client                                                       */

static int listen_on(int i)
{
	struct dsmd *d = &tc.d[i];

	if (R.listening[i])
		return 0;
	snprintf(R.sock[i], sizeof(R.sock[i]), "%s/n%d.sock", sock_dir, i);
	d->cfg.socket = R.sock[i];
	d->listen_w.fd = -1;
	R.listening[i] = true; /* unlisten() undoes what was done */
	return client_listen(d);
}

static void unlisten(int i)
{
	struct dsmd *d = &tc.d[i];

	if (!R.listening[i])
		return;
	watch_del(d, &d->listen_w);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	d->listen_fd = -1;
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	d->spare_fd = -1;
	access_close(d);
	R.listening[i] = false;
}

/* What dsmd's loop does with the node's ready descriptors: its listening
 * socket and its clients (the harness's cores watch nothing else). */
static void client_events(int i)
{
	struct dsmd *d = &tc.d[i];
	struct epoll_event evs[32];
	int n;

	for (int round = 0; round < 8; round++) {
		n = epoll_wait(d->epfd, evs, 32, 0);
		if (n <= 0)
			return;
		for (int k = 0; k < n; k++) {
			struct watch *w = evs[k].data.ptr;

			w->fn(d, w, evs[k].events);
		}
	}
}

/* The request types a client may send, and a few it may not. */
static const uint8_t ipc_types[] = {
	WIRE_IPC_HELLO, WIRE_IPC_STATUS, WIRE_IPC_CHECK, WIRE_IPC_INJECT,
	WIRE_IPC_ATTACH, WIRE_IPC_UFFD, WIRE_IPC_COLL, WIRE_IPC_REGION,
	WIRE_IPC_PAGE, WIRE_IPC_STATS, WIRE_IPC_DETACH, WIRE_IPC_POLICY,
	WIRE_IPC_LOCK, WIRE_IPC_RESULT, WIRE_IPC_HELLO_OK, WIRE_DSM_REQ,
};

static size_t ipc_body(unsigned type, unsigned char *body)
{
	uint8_t b = u8();

	switch (type) {
	case WIRE_IPC_HELLO: {
		struct wire_ipc_hello h;

		take(&h, sizeof(h));
		if (b & 1)
			memcpy(h.magic, WIRE_IPC_MAGIC, sizeof(h.magic));
		if (b & 2)
			h.kind = 1 + (b >> 2) % 3;
		memcpy(body, &h, sizeof(h));
		return sizeof(h);
	}
	case WIRE_IPC_CHECK: {
		struct wire_ipc_check c;

		take(&c, sizeof(c));
		if (b & 1) { /* small enough to finish within a run */
			c.count %= 300;
			c.payload_len %= 256;
			c.nsizes %= 3;
			for (int k = 0; k < 8; k++)
				c.sizes[k] = 4096u << (c.sizes[k] % 3);
		}
		memcpy(body, &c, sizeof(c));
		return sizeof(c);
	}
	case WIRE_IPC_ATTACH: {
		struct wire_ipc_attach a;

		take(&a, sizeof(a));
		if (b & 1) {
			a.size = 1 + b % 2;
			a.rank = (b >> 1) % 2;
			a.local_size = 1;
		}
		memcpy(body, &a, sizeof(a));
		return sizeof(a);
	}
	case WIRE_IPC_COLL: {
		struct wire_ipc_coll c;

		take(&c, sizeof(c));
		if (b & 1) {
			c.op = 1 + (b >> 1) % 4;
			c.seq = (b >> 3) % 4;
			c.arg = c.op == WIRE_COLL_FREE
					? BASE + (c.arg % 8) * WIRE_PAGE_SIZE
					: (c.arg % 4) * WIRE_PAGE_SIZE;
		}
		memcpy(body, &c, sizeof(c));
		return sizeof(c);
	}
	case WIRE_IPC_REGION: {
		struct wire_region_op r;

		take(&r, sizeof(r));
		if (b & 1) {
			r.op = 1 + (b >> 1) % 2;
			r.size = (r.size % 4) * WIRE_PAGE_SIZE;
			r.addr = BASE + (r.addr % 8) * WIRE_PAGE_SIZE;
			r.name[1] = 0;
		}
		memcpy(body, &r, sizeof(r));
		return sizeof(r);
	}
	case WIRE_IPC_PAGE: {
		struct wire_ipc_page p;

		take(&p, sizeof(p));
		if (b & 1)
			p.addr = BASE + (p.addr % NPAGES) * WIRE_PAGE_SIZE;
		memcpy(body, &p, sizeof(p));
		return sizeof(p);
	}
	case WIRE_IPC_POLICY: {
		struct wire_ipc_policy p;

		take(&p, sizeof(p));
		if (b & 1) {
			p.addr = BASE + (p.addr % NPAGES) * WIRE_PAGE_SIZE;
			p.len = (1 + p.len % NPAGES) * WIRE_PAGE_SIZE;
			p.op = 1 + (b >> 1) % 3;
			p.p = policies[1 + (b >> 3) % 3];
		}
		memcpy(body, &p, sizeof(p));
		return sizeof(p);
	}
	case WIRE_IPC_LOCK: {
		struct wire_ipc_lock q;

		take(&q, sizeof(q));
		if (b & 1) {
			const char *s = lock_names[b % PROTO_NNAMES];

			q.op = 1 + (b >> 1) % 3;
			q.mode %= 6;
			q.flags &= 0x1f;
			q.lkid %= 4;
			q.parent = 0;
			q.timeout_ms %= 1000;
			q.name_len = (uint32_t)strlen(s);
			memcpy(q.name, s, q.name_len);
		}
		memcpy(body, &q, sizeof(q));
		return sizeof(q);
	}
	default: {
		/* Fixed bodies: the decoder's own length for the type. */
		static const struct {
			uint8_t type;
			uint16_t len;
		} lens[] = {
			{WIRE_IPC_INJECT, sizeof(struct wire_ipc_inject)},
			{WIRE_IPC_RESULT, sizeof(struct wire_ipc_result)},
			{WIRE_IPC_HELLO_OK, sizeof(struct wire_ipc_hello_ok)},
			{WIRE_DSM_REQ, sizeof(struct wire_dsm_req)},
		};
		size_t len = 0;

		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
			if (lens[k].type == type)
				len = lens[k].len;
		take(body, len);
		return len;
	}
	}
}

static void do_client(void)
{
	static unsigned char body[WIRE_IPC_MAX], msg[WIRE_IPC_MAX];
	int i = pick_live(), k = u8() % PROTO_NCLIENT, pass = -1;
	uint8_t what = u8() % 4, flags = u8();
	size_t n = 0;
	int *fd;

	if (i < 0)
		return;
	fd = &R.cl[i][k];
	if (what == 0 || (*fd < 0 && what != 3)) {
		/* Connect (again); dsmd accepts on its listening socket. */
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		if (listen_on(i))
			return;
		*fd = ipc_connect(R.sock[i]);
		if (*fd < 0)
			return;
		fcntl(*fd, F_SETFL, O_NONBLOCK);
		say("client node %d slot %d connects\n", i, k);
		client_events(i);
		if (what == 0)
			return;
	}
	if (what == 3) {
		if (*fd < 0)
			return;
		say("client node %d slot %d closes\n", i, k);
		close(*fd);
		*fd = -1;
		client_events(i);
		return;
	}
	if (what == 1) {
		n = u16() % 2048;
		take(msg, n);
	} else {
		unsigned type = ipc_types[u8() % sizeof(ipc_types)];
		size_t len = ipc_body(type, body);

		n = wire_build(msg, sizeof(msg), type, u8(), body, len);
		if (type == WIRE_IPC_COLL || type == WIRE_IPC_REGION) {
			/* Ranges may be freed, so reset everywhere. */
			R.all_pages_tainted = true;
			R.data_tainted = true;
			R.pure = false;
		}
	}
	if (flags & 1)
		pass = open("/dev/null", O_RDONLY | O_CLOEXEC);
	say("client node %d slot %d sends %zu bytes%s\n", i, k, n,
	    pass >= 0 ? " and a descriptor" : "");
	if (n)
		ipc_send_raw(*fd, msg, n, pass);
	else
		send(*fd, "", 0, MSG_NOSIGNAL);
	if (pass >= 0)
		close(pass);
	client_events(i);
}

/* ---------------------------------------------------------------------- */
/* A run                                                                  */

/* With FUZZ_PROTO_TRACE: the step, and the lock messages sent so far. */
static void say_traffic(unsigned op)
{
	unsigned long ops = 0, probes = 0;

	for (int i = 0; i < R.n; i++)
		for (int j = 0; j < R.n; j++) {
			ops += xport_mock_sent(tc.d[i].x, j, WIRE_LOCK_OP);
			probes += xport_mock_sent(tc.d[i].x, j,
						  WIRE_LOCK_PROBE);
		}
	say("step %u (op %u): %lu LOCK_OP and %lu LOCK_PROBE sent so far\n",
	    R.step, op, ops, probes);
}

static int lowest_free_fd(void)
{
	int fd = dup(0);

	REQUIRE(fd >= 0);
	close(fd);
	return fd;
}

static void run_setup(uint8_t cfg)
{
	memset(&R, 0, sizeof(R));
	for (int i = 0; i < NMAX; i++)
		for (int k = 0; k < PROTO_NCLIENT; k++)
			R.cl[i][k] = -1;
	R.n = cfg & PC_FOUR ? 4 : 3;
	R.pure = true;
	fake_now = 1000000;
	R.last_tick = fake_now;
	tc_policy = policies[PC_POLICY(cfg)];
	tc_peer_off = cfg & PC_PEER_OFF;
	if (setup(R.n, hold_us[PC_HOLD(cfg)]))
		abort();
	pump_all(); /* the cluster forms */
}

static void run_teardown(void)
{
	for (int i = 0; i < R.n; i++) {
		for (int k = 0; k < PROTO_NCLIENT; k++)
			if (R.cl[i][k] >= 0)
				close(R.cl[i][k]);
		unlisten(i);
		/* The processes' ends go; the lock module lets go of the
		 * clients in teardown(), then dsmd's ends close. */
		for (int k = 0; k < PROTO_NPROC; k++)
			if (R.procs[i][k].open)
				proc_let_go(&R.procs[i][k]);
	}
	teardown();
	for (int i = 0; i < R.n; i++)
		for (int k = 0; k < PROTO_NPROC; k++)
			if (R.procs[i][k].open)
				close(R.procs[i][k].fd[0]);
}

/* Every input took its sockets away; the directory goes at exit. */
static void remove_sock_dir(void)
{
	rmdir(sock_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	report = fdopen(fcntl(2, F_DUPFD_CLOEXEC, 3), "w");
	if (!report)
		report = stderr;
	trace = getenv("FUZZ_PROTO_TRACE") != NULL;
	honest = getenv("FUZZ_PROTO_HONEST") != NULL;
	log_set_level(trace ? LOG_DEBUG : LOG_ERR);
	/* A client that dsmd closed, or that closed on dsmd, must not kill
	 * the fuzzer (dsmd ignores SIGPIPE the same way). */
	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_dir, sizeof(sock_dir), "%s/fuzz_proto.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(sock_dir))
		abort();
	atexit(remove_sock_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd_before = lowest_free_fd();

	in.p = data;
	in.n = size;
	run_setup(u8());
	for (R.step = 0; R.step < PROTO_MAX_STEPS && in.n; R.step++) {
		unsigned op = u8() % PR_NOPS;

		switch (op) {
		case PR_FAULT:
			do_fault();
			break;
		case PR_STORE:
			do_store();
			break;
		case PR_PUMP:
			pump_all();
			break;
		case PR_STEP: {
			int i = pick_live(), times = 1 + u8() % 4;

			while (i >= 0 && times--)
				step_node(i);
			drain_all();
			break;
		}
		case PR_ADVANCE:
			advance_ms(delays_ms[u8() % (sizeof(delays_ms) /
						    sizeof(delays_ms[0]))]);
			break;
		case PR_LOCK:
		case PR_CONVERT:
		case PR_UNLOCK:
			do_lock(op);
			break;
		case PR_PROC_GONE:
			do_proc_gone();
			break;
		case PR_PEER_RAW:
			do_peer_raw();
			break;
		case PR_PEER_MSG:
			do_peer_msg();
			break;
		case PR_PEER_RDMA:
			do_peer_rdma();
			break;
		case PR_CLIENT:
			do_client();
			break;
		case PR_KILL:
			do_kill();
			break;
		}
		drain_all();
		if (trace)
			say_traffic(op);
		check();
	}
	pump_all();
	check();
	run_teardown();
	REQUIRE(lowest_free_fd() == fd_before);
	return 0;
}
