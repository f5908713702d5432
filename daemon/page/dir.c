/* The master side of the directory protocol.
 *
 * Each page's entry lives on its master: uncached, shared by a set of
 * nodes, or modified by one owner.  Requests for a page are served one at a
 * time: an entry is busy from the moment a request is served until the
 * requester's DONE says it holds what it was granted, and requests that
 * arrive meanwhile wait in the entry's queue.  So the master never sends a
 * node an invalidation or a forward for a transaction that node has not yet
 * finished, and grants, data and invalidations of one page cannot overtake
 * each other.  Other pages proceed in parallel.
 *
 *   read,  uncached       GRANT S zero-fill (no data moves)
 *   read,  shared         FWD to a sharer (the master if it is one): it
 *                         writes the page, with the grant, into R's slot
 *   read,  modified at O  FWD to O: O write-protects, sends, keeps S
 *   write, uncached       GRANT M zero-fill
 *   write, R shares it    INV to every other sharer (they ack to R),
 *                         GRANT M with the number of acks
 *   write, R does not     FWD+invalidate to one sharer (the data is its
 *                         ack), INV to the others, GRANT M with data
 *   write, modified at O  FWD+invalidate to O, with the grant
 *
 * The master sends to itself through the local queue like to any node, so
 * every case runs the same code whether or not the master takes part.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "page.h"

/* A request waiting for its entry (or parked for an entry on its way). */
struct dreq {
	struct dreq *next;
	int from;            /* the requester (route.origin) */
	uint64_t req_id;
	uint64_t at_ms;      /* when it came */
	struct wire_dsm_req r;
};

struct dentry *dir_entry(struct dsmd *d, uint64_t page, bool create)
{
	return ptab_get(&d->page->dir, page, create);
}

int dir_where(struct dsmd *d, uint64_t page, uint32_t *epoch, bool *hinted)
{
	struct dentry *e = dir_entry(d, page, false);

	*hinted = home_hinted(e ? &e->h : NULL);
	return home_where(d, page, e ? &e->h : NULL, epoch);
}

int dir_master(struct dsmd *d, uint64_t page)
{
	uint32_t epoch;
	bool hinted;

	return dir_where(d, page, &epoch, &hinted);
}

static int lowest(uint64_t set)
{
	return __builtin_ctzll(set);
}

/* `covered`, for a write: the nodes it takes the page from itself, and
 * the requester (see wire_dsm_fwd). */
static void grant(struct dsmd *d, int to, uint64_t id, uint64_t page,
		  const struct dentry *e, unsigned state, unsigned acks,
		  unsigned flags, uint64_t covered)
{
	struct wire_dsm_grant g = {.page = page, .state = state, .acks = acks,
				   .flags = flags, .epoch = e->h.epoch,
				   .version = e->version, .covered = covered};

	node_send(d, to, WIRE_DSM_GRANT, id, &g, sizeof(g));
}

static void fwd(struct dsmd *d, int holder, int to, uint64_t id,
		const struct wire_dsm_req *r, struct dentry *e,
		unsigned flags, unsigned state, uint64_t covered)
{
	struct wire_dsm_fwd f = {.page = r->page, .requester = (uint32_t)to,
				 .flags = flags, .state = state,
				 .epoch = e->h.epoch, .version = e->version,
				 .slot = r->slot, .covered = covered};

	e->owe |= 1ull << holder;
	e->supplier = (int16_t)holder;
	if (holder != d->cfg.node)
		d->st.holder_forwards++;
	if (flags & WIRE_FWD_INVALIDATE)
		d->st.invalidations_sent++;
	node_send(d, holder, WIRE_DSM_FWD, id, &f, sizeof(f));
}

/* Invalidate every node of `set`; each acknowledges to the requester. */
static unsigned inv_all(struct dsmd *d, struct dentry *e, uint64_t set,
			int to, uint64_t id, uint64_t page, uint64_t covered)
{
	struct wire_dsm_inv inv = {.page = page, .requester = (uint32_t)to,
				   .epoch = e->h.epoch, .covered = covered,
				   .version = e->version};
	unsigned n = 0;

	e->owe |= set;
	while (set) {
		int h = lowest(set);

		set &= set - 1;
		node_send(d, h, WIRE_DSM_INV, id, &inv, sizeof(inv));
		d->st.invalidations_sent++;
		n++;
	}
	return n;
}

/* A holder to supply the page from `set`: ourselves when we can. */
static int supplier(const struct dsmd *d, uint64_t set)
{
	if (set & (1ull << d->cfg.node))
		return d->cfg.node;
	return lowest(set);
}

static void serve_read(struct dsmd *d, struct dentry *e, int r, uint64_t id,
		       const struct wire_dsm_req *q)
{
	uint64_t bit = 1ull << r, others = e->sharers & ~bit;

	switch (e->state) {
	case WIRE_PS_I:
		e->state = WIRE_PS_S;
		e->sharers = bit;
		grant(d, r, id, q->page, e, WIRE_PS_S, 0, WIRE_GRANT_ZERO, 0);
		return;
	case WIRE_PS_S:
		if (!others) {
			/* Only the requester is listed: it cannot miss. */
			log_warn("page %llu: read miss by its only sharer %d",
				 (unsigned long long)q->page, r);
			grant(d, r, id, q->page, e, WIRE_PS_S, 0, 0, 0);
			return;
		}
		fwd(d, supplier(d, others), r, id, q, e, WIRE_FWD_GRANT,
		    WIRE_PS_S, 0);
		e->sharers |= bit;
		return;
	default:
		fwd(d, e->owner, r, id, q, e, WIRE_FWD_GRANT, WIRE_PS_S, 0);
		e->state = WIRE_PS_S;
		e->sharers = bit | 1ull << e->owner;
		return;
	}
}

/* The live nodes a copy a dead holder gave directly may be at, beside
 * the listed ones (`cov`) and this node's own (its copy is never a
 * stray: it would have told this entry first). */
static uint64_t strays_of(struct dsmd *d, const struct dentry *e,
			  uint64_t cov)
{
	uint64_t set = 0;

	if (!e->strays)
		return 0;
	for (int n = 0; n < d->cfg.nnodes; n++)
		if (n != d->cfg.node && node_alive(d, n))
			set |= 1ull << n;
	return set & ~cov;
}

static void serve_write(struct dsmd *d, struct dentry *e, int r, uint64_t id,
			const struct wire_dsm_req *q)
{
	uint64_t bit = 1ull << r, others = e->sharers & ~bit;
	/* R's copy is the page's: nothing was written since it was made.
	 * A copy R got from a holder directly (holder.c) is not listed, but
	 * is dropped only after a write is served here, which changes the
	 * version. */
	bool current = q->has_copy && q->version == e->version;
	/* Every listed holder gets an INV or a FWD from this write. */
	uint64_t cov = (e->state == WIRE_PS_M ? 1ull << e->owner :
			e->state == WIRE_PS_S ? e->sharers : 0) | bit;
	/* A holder that died may have given copies nobody lists: every live
	 * node drops what it has (an INV of a page it lacks is only acked). */
	uint64_t strays = strays_of(d, e, cov);
	unsigned acks;
	int s;

	e->version++;
	e->strays = 0;
	switch (e->state) {
	case WIRE_PS_I:
		acks = inv_all(d, e, strays, r, id, q->page, cov);
		grant(d, r, id, q->page, e, WIRE_PS_M, acks, WIRE_GRANT_ZERO,
		      cov);
		break;
	case WIRE_PS_S:
		if ((e->sharers & bit) || !others || current) {
			/* An upgrade: R's copy is current. */
			acks = inv_all(d, e, others | strays, r, id, q->page,
				       cov);
			grant(d, r, id, q->page, e, WIRE_PS_M, acks, 0, cov);
			break;
		}
		/* R lost its copy (another upgrade won) or never had one:
		 * one sharer sends the page, the others only drop theirs. */
		s = supplier(d, others);
		fwd(d, s, r, id, q, e, WIRE_FWD_INVALIDATE, WIRE_PS_M, cov);
		acks = inv_all(d, e, (others & ~(1ull << s)) | strays, r, id,
			       q->page, cov);
		grant(d, r, id, q->page, e, WIRE_PS_M, acks, WIRE_GRANT_DATA,
		      cov);
		break;
	default:
		if (e->owner == r) {
			/* Its copy went S when it gave readers the page
			 * directly (holder.c); it takes their copies itself. */
			log_debug("page %llu: write by its owner %d",
				  (unsigned long long)q->page, r);
			acks = inv_all(d, e, strays, r, id, q->page, cov);
			grant(d, r, id, q->page, e, WIRE_PS_M, acks, 0, cov);
			break;
		}
		if (current) {
			/* An upgrade of a copy the owner gave R. */
			acks = inv_all(d, e, (1ull << e->owner) | strays, r, id,
				       q->page, cov);
			grant(d, r, id, q->page, e, WIRE_PS_M, acks, 0, cov);
			break;
		}
		if (strays) {
			/* The owner sends the page; the strays only drop
			 * theirs, acking to R, which the grant tells of. */
			fwd(d, e->owner, r, id, q, e, WIRE_FWD_INVALIDATE,
			    WIRE_PS_M, cov);
			acks = inv_all(d, e, strays, r, id, q->page, cov);
			grant(d, r, id, q->page, e, WIRE_PS_M, acks,
			      WIRE_GRANT_DATA, cov);
			break;
		}
		fwd(d, e->owner, r, id, q, e,
		    WIRE_FWD_INVALIDATE | WIRE_FWD_GRANT, WIRE_PS_M, cov);
		break;
	}
	e->state = WIRE_PS_M;
	e->owner = (uint16_t)r;
	e->sharers = 0;
}

static void serve(struct dsmd *d, struct dentry *e, int r, uint64_t id,
		  const struct wire_dsm_req *q)
{
	log_debug("dir: page %llu %s from %d (req %llx), entry %s owner %u "
		  "sharers %llx", (unsigned long long)q->page,
		  q->access == WIRE_ACC_READ ? "read" : "write", r,
		  (unsigned long long)id, (const char[][2]){"I", "S", "M", "L"}[e->state & 3], e->owner,
		  (unsigned long long)e->sharers);
	e->busy = 1;
	e->busy_ms = (uint32_t)dsmd_now_ms(d);
	e->busy_node = (uint16_t)r;
	e->busy_req = id;
	e->busy_write = q->access == WIRE_ACC_WRITE;
	e->owe = 0;
	e->supplier = -1;
	if (e->state == DIR_LOST)
		grant(d, r, id, q->page, e, WIRE_PS_S, 0, WIRE_GRANT_LOST, 0);
	else if (q->access == WIRE_ACC_READ)
		serve_read(d, e, r, id, q);
	else
		serve_write(d, e, r, id, q);
}

/* The oldest request of the entry's queue, taken off it; NULL if none. */
static struct dreq *dequeue(struct dentry *e)
{
	struct dreq *w = e->q_head;

	if (w) {
		e->q_head = w->next;
		if (!e->q_head)
			e->q_tail = NULL;
	}
	return w;
}

static void serve_queue(struct dsmd *d, struct dentry *e)
{
	struct dreq *w;

	while (!e->busy && (w = dequeue(e))) {
		serve(d, e, w->from, w->req_id, &w->r);
		free(w);
	}
}

/* A node has one transaction on a page at a time, so an entry queues at
 * most one request per node: a second (a new id while one waits) is a
 * broken or hostile peer's, refused and counted; the same one asked again
 * is dropped.  So no peer grows a
 * queue past the cluster's size. */
static void enqueue(struct dsmd *d, struct dentry *e, int origin, uint64_t id,
		    const struct wire_dsm_req *q)
{
	struct dreq *w;

	for (w = e->q_head; w; w = w->next) {
		if (w->from == origin) {
			if (w->req_id != id) /* the same asked again: dropped */
				d->st.bad_msgs++;
			return;
		}
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_err("out of memory queueing a request: dropped");
		return;
	}
	*w = (struct dreq){.from = origin, .req_id = id, .r = *q,
			   .at_ms = dsmd_now_ms(d)};
	if (e->q_tail)
		e->q_tail->next = w;
	else
		e->q_head = w;
	e->q_tail = w;
}

/* The same request again: its requester asked again after a refusal or a
 * death on the way, and the first copy got through after all. */
static bool seen(const struct dentry *e, int origin, uint64_t id)
{
	const struct dreq *w;

	if (e->busy && e->busy_node == origin && e->busy_req == id)
		return true;
	for (w = e->q_head; w; w = w->next)
		if (w->from == origin && w->req_id == id)
			return true;
	return false;
}

/* A request asked again (its requester waited --dead-after-ms: req_tick)
 * that waits behind the open transaction: if that one has been open
 * twice as long, its requester neither finished nor said it waits for
 * someone (an honest one would have, and been answered): it is declared
 * dead. */
static void waits_behind(struct dsmd *d, struct dentry *e, int origin)
{
	if (e->busy && e->busy_node != origin &&
	    (uint32_t)dsmd_now_ms(d) - e->busy_ms >=
		    2 * d->cfg.dead_after_ms)
		cluster_suspect(d, e->busy_node, "kept a page's entry busy");
}

static void regrant(struct dsmd *d, struct dentry *e, int to, uint64_t id,
		    uint64_t page, bool has_copy);

/* A request seen already, asked again (req_tick): one waiting behind the
 * open transaction (waits_behind), or the open one itself, whose
 * requester heard nothing from this node yet.  If nothing but its grant
 * was sent for it, the grant was lost: sent again. */
static void asked_again(struct dsmd *d, struct dentry *e, int origin,
			uint64_t id, const struct wire_dsm_req *q)
{
	if (e->busy && e->busy_node == origin && e->busy_req == id) {
		if (!e->owe && (uint32_t)dsmd_now_ms(d) - e->busy_ms >=
				       d->cfg.dead_after_ms)
			regrant(d, e, origin, id, q->page, q->has_copy);
		return;
	}
	waits_behind(d, e, origin);
}

/* The entry is idle: move it if its policy says so, passing the queue on
 * (page_left), else serve what waits. */
static void settle(struct dsmd *d, uint64_t page, struct dentry *e,
		   int first)
{
	int to = home_decide(d, &home_page_kind, page, &e->h, first);

	if (to >= 0)
		home_migrate(d, &home_page_kind, page, &e->h, to);
	else
		serve_queue(d, e);
}

/* A request reached this node: serve it, queue it, park it for the entry
 * on its way here, forward it to where the entry went, or refuse it. */
void dir_on_req(struct dsmd *d, int from, uint64_t id,
		   const struct wire_dsm_req *q)
{
	struct wire_dsm_req fw = *q;
	int origin = q->route.origin, next;
	struct dentry *e;
	bool fresh;

	if ((q->access != WIRE_ACC_READ && q->access != WIRE_ACC_WRITE) ||
	    home_route_check(d, from, &q->route)) {
		d->st.bad_msgs++;
		return;
	}
	if (!node_usable(d, origin))
		return; /* forwarded for a node that died meanwhile */
	e = dir_entry(d, q->page, true);
	if (!e)
		return;
	switch (home_route(d, q->page, &e->h, &fw.route, &next)) {
	case HOME_PARK:
		enqueue(d, e, origin, id, q);
		return;
	case HOME_FORWARD:
		node_send(d, next, WIRE_DSM_REQ, id, &fw, sizeof(fw));
		return;
	case HOME_NACK:
		home_nack(d, &home_page_kind, q->page, origin, id);
		return;
	case HOME_SERVE:
		break;
	}
	if (seen(e, origin, id)) {
		asked_again(d, e, origin, id, q);
		return;
	}
	if (q->route.chain)
		home_tell_chain(d, &home_page_kind, q->page, &e->h,
				q->route.chain);
	fresh = e->state == WIRE_PS_I && !e->h.epoch && !e->q_head;
	home_note(d, q->page, &e->h, origin);
	enqueue(d, e, origin, id, q);
	if (!e->busy)
		settle(d, q->page, e, fresh ? origin : -1);
}

/* The requester gave its transaction up: the page it was to get died with
 * its supplier.  Whatever copies are left stay; with none, it is lost. */
static void undo(struct dentry *e, int r)
{
	if (e->busy_write || e->state == WIRE_PS_M) {
		e->state = DIR_LOST;
		e->sharers = 0;
		return;
	}
	e->sharers &= ~(1ull << r);
	if (!e->sharers)
		e->state = DIR_LOST;
}

static void on_done(struct dsmd *d, int from, uint64_t id,
		    const struct wire_dsm_done *done)
{
	struct dentry *e = dir_entry(d, done->page, false);

	if (!e || !home_is_master(d, done->page, &e->h) || !e->busy ||
	    e->busy_node != from || e->busy_req != id) {
		d->st.bad_msgs++;
		return;
	}
	if (done->aborted)
		undo(e, from);
	e->busy = 0;
	settle(d, done->page, e, -1);
}

/* Reader `from` installed a copy that holder `sh->node` gave it directly,
 * and the holder died before this notice came: nobody will pass the next
 * write's invalidation on to it.  A copy of the current version (the
 * entry is S, or lost with the holder) is listed; another is dropped. */
static void on_stray(struct dsmd *d, int from, const struct wire_dsm_shared *sh,
		     struct dentry *e)
{
	struct wire_dsm_inv inv = {.page = sh->page,
				   .requester = (uint32_t)d->cfg.node,
				   .flags = WIRE_INV_STRAY,
				   .epoch = e->h.epoch,
				   .version = e->version};

	if (sh->version == e->version &&
	    (e->state == WIRE_PS_S || e->state == DIR_LOST) &&
	    !(e->busy && e->busy_write)) {
		if (e->state == DIR_LOST) {
			log_info("page %llu: node %d holds its last version: "
				 "not lost", (unsigned long long)sh->page,
				 from);
			e->sharers = 0;
		}
		e->state = WIRE_PS_S;
		e->sharers |= 1ull << from;
		return;
	}
	/* Written since: only copies older than the entry's go (a newer one
	 * the reader got meanwhile stays).  Else the entry's strays flag
	 * covers it: the next write invalidates every node. */
	if (sh->version < e->version)
		node_send(d, from, WIRE_DSM_INV, 0, &inv, sizeof(inv));
}

/* Reader `from` installed a copy holder `sh->node` gave it directly
 * (holder.c).  If the holder's copy is still the page's (it is listed, and
 * nothing was written since), so is the reader's: list the reader.  The
 * next write invalidates it from here, and its `covered` set tells the
 * holder not to.  Else the holder does. */
static void on_shared(struct dsmd *d, int from,
		      const struct wire_dsm_shared *sh)
{
	struct dentry *e = dir_entry(d, sh->page, false);
	int h = (int)sh->node;

	if (sh->node >= (uint32_t)d->cfg.nnodes || h == from) {
		d->st.bad_msgs++;
		return;
	}
	if (!e || !home_is_master(d, sh->page, &e->h))
		return; /* moved: the holder answers for the reader */
	/* The reader used the page as much as if it had asked here: it
	 * counts towards moving the entry to it (home.c). */
	home_note(d, sh->page, &e->h, from);
	if (h != d->cfg.node && !node_alive(d, h) &&
	    !(e->sharers & (1ull << from))) {
		on_stray(d, from, sh, e);
		return;
	}
	if (sh->version != e->version)
		return; /* written since */
	if (e->state == DIR_LOST) {
		/* The holder died before this notice came, taking what
		 * this entry thought the only copy: the reader's copy, of
		 * the same version, is the page. */
		log_info("page %llu: node %d holds its last version: not lost",
			 (unsigned long long)sh->page, from);
		e->state = WIRE_PS_S;
		e->sharers = 1ull << from;
		return;
	}
	if (e->state == WIRE_PS_M && e->owner == h)
		e->sharers = 1ull << h;
	else if (e->state != WIRE_PS_S || !(e->sharers & (1ull << h)))
		return;
	e->state = WIRE_PS_S;
	e->sharers |= 1ull << from;
}

_Static_assert(offsetof(struct wire_dsm_req, page) == 0 &&
	       offsetof(struct wire_dsm_done, page) == 0 &&
	       offsetof(struct wire_dsm_shared, page) == 0 &&
	       offsetof(struct wire_dsm_stuck, page) == 0 &&
	       offsetof(struct wire_dsm_passed, page) == 0,
	       "the core checks the page first");

/* The open transaction's grant did not reach its requester (a message
 * lost inside a node), and nothing else was sent for it (nobody owes it):
 * then it was a grant alone, and what it said follows from the entry as
 * served and from the request.  A read: S, from zeros if the requester had
 * no copy (the page was I); a write: M, from zeros unless the requester
 * had the current copy (an upgrade with nobody else to invalidate); the
 * page lost: lost. */
static void regrant(struct dsmd *d, struct dentry *e, int to, uint64_t id,
		    uint64_t page, bool has_copy)
{
	unsigned state = e->busy_write ? WIRE_PS_M : WIRE_PS_S;
	unsigned flags = e->state == DIR_LOST ? WIRE_GRANT_LOST :
			 has_copy ? 0 : WIRE_GRANT_ZERO;

	log_warn("page %llu: node %d never got its grant: sent again",
		 (unsigned long long)page, to);
	grant(d, to, id, page, e, state, 0, flags,
	      e->busy_write ? 1ull << to : 0);
}

/* Requester `from` has waited --dead-after-ms on transaction `id` (its
 * DSM_STUCK), the open one: whoever owes it an ack or the page and has
 * not given it is declared dead (that ends its wait as a death does).
 * (Open transactions of honest nodes take round trips and hold times:
 * far less than the failure detector's bound.) */
void dir_on_stuck(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_stuck s;
	struct dentry *e;
	uint32_t open_ms;

	memcpy(&s, m->body, sizeof(s));
	e = dir_entry(d, s.page, false);
	if (!e || !home_is_master(d, s.page, &e->h) || !e->busy)
		return; /* done meanwhile, or moved: it asks again */
	open_ms = (uint32_t)dsmd_now_ms(d) - e->busy_ms;
	if (e->busy_node == from && e->busy_req == m->hdr->req_id) {
		uint64_t owe = e->owe & ~s.heard & ~(1ull << d->cfg.node) &
			       ~(1ull << from);

		if (open_ms < d->cfg.dead_after_ms)
			return;
		if (!owe && !s.grant) {
			regrant(d, e, from, m->hdr->req_id, s.page,
				s.has_copy);
			return;
		}
		if (!owe) {
			log_once(d->proto_logged, LOG_WARN,
				 "page %llu: node %d waits, but nobody owes it "
				 "anything (a message lost?) (logged once)",
				 (unsigned long long)s.page, from);
			return;
		}
		cluster_suspect_set(d, owe, "owed an ack or a page");
	}
}


void dir_on_req_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_req q;

	memcpy(&q, m->body, sizeof(q));
	dir_on_req(d, from, m->hdr->req_id, &q);
}

void dir_on_done(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_done done;

	memcpy(&done, m->body, sizeof(done));
	on_done(d, from, m->hdr->req_id, &done);
}

void dir_on_shared(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_shared sh;

	memcpy(&sh, m->body, sizeof(sh));
	on_shared(d, from, &sh);
}

static void free_queue(struct dentry *e)
{
	struct dreq *w;

	while ((w = dequeue(e)))
		free(w);
}

void dir_reset_range(struct dsmd *d, uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = first; i < first + n; i++) {
		struct dentry *e = dir_entry(d, i, false);

		if (!e)
			continue;
		/* Every node forgets where the entry went: it starts over at
		 * its placement's home. */
		e->h = (struct home){0};
		if (!e->busy) {
			free_queue(e);
			*e = (struct dentry){0};
		}
	}
}

static void drop_requests_of(struct dentry *e, int node)
{
	struct dreq **pp = &e->q_head, *w;

	e->q_tail = NULL;
	while ((w = *pp)) {
		if (w->from == node) {
			*pp = w->next;
			free(w);
			continue;
		}
		e->q_tail = w;
		pp = &w->next;
	}
}

static void refuse_parked(struct dsmd *d, uint64_t page, struct dentry *e)
{
	struct dreq *w;

	while ((w = dequeue(e))) {
		home_nack(d, &home_page_kind, page, w->from, w->req_id);
		free(w);
	}
}

/* `node` died owing the open write its ack: it may have given readers
 * copies directly that nobody lists (holder.c), and it can no longer pass
 * the write's invalidation on to them.  This node does, to every live node
 * but the writer and itself (one without such a copy only acks), and
 * tells the writer first, on the same path as the LOST that counts the
 * dead node's ack, to wait for their acks too: otherwise the write
 * completed while such a reader went on reading the old page (fuzz_proto:
 * M at the writer beside S at the reader). */
static void relay_for_dead(struct dsmd *d, uint64_t page,
			   const struct dentry *e, int node)
{
	struct wire_dsm_inv inv = {.page = page,
				   .requester = e->busy_node,
				   .flags = WIRE_INV_RELAYED,
				   .version = e->version};
	struct wire_dsm_ack also = {.page = page,
				    .node = (uint32_t)d->cfg.node,
				    .flags = WIRE_ACK_RELAYED};

	for (int n = 0; n < d->cfg.nnodes; n++)
		if (n != node && n != d->cfg.node && n != e->busy_node &&
		    node_alive(d, n))
			also.also |= 1ull << n;
	if (!also.also)
		return;
	node_send(d, e->busy_node, WIRE_DSM_INV_ACK, e->busy_req, &also,
		  sizeof(also));
	for (uint64_t set = also.also; set; set &= set - 1)
		node_send(d, __builtin_ctzll(set), WIRE_DSM_INV, e->busy_req,
			  &inv, sizeof(inv));
}

static void entry_peer_down(struct dsmd *d, uint64_t page, struct dentry *e,
			    int node)
{
	uint64_t bit = 1ull << node;
	struct wire_dsm_lost lost = {.page = page, .node = (uint32_t)node};

	drop_requests_of(e, node);
	if (!home_is_master(d, page, &e->h)) {
		/* Parked for an entry that may have died on its way: their
		 * requesters look again. */
		refuse_parked(d, page, e);
		return;
	}
	/* Copies it gave readers directly that the master has not heard of
	 * yet: nobody is left to pass the next write's invalidation on. */
	if (d->page->peer_reads &&
	    ((e->sharers & bit) || (e->state == WIRE_PS_M && e->owner == node)))
		e->strays = 1;
	e->sharers &= ~bit;
	if (e->busy && e->busy_node == node) {
		e->busy = 0; /* the requester is gone */
	} else if (e->busy && (e->owe & bit)) {
		e->owe &= ~bit;
		lost.flags = e->supplier == node ? WIRE_LOST_SUPPLIER : 0;
		if (e->busy_write && !lost.flags && d->page->peer_reads)
			relay_for_dead(d, page, e, node);
		node_send(d, e->busy_node, WIRE_DSM_LOST, e->busy_req, &lost,
			 sizeof(lost));
	}
	if (e->busy)
		return;
	if ((e->state == WIRE_PS_M && e->owner == node) ||
	    (e->state == WIRE_PS_S && !e->sharers)) {
		log_warn("page %llu: its only copy was on node %d: lost",
			 (unsigned long long)page, node);
		e->state = DIR_LOST;
	}
	serve_queue(d, e);
}

/* Each tick, the next `n` chunks of entries: requests parked for an entry
 * said to be on its way here that has not come in --dead-after-ms (its
 * sender died, or lied) are refused to their requesters, which ask again
 * who masters the page. */
void dir_sweep(struct dsmd *d, unsigned n)
{
	struct page_state *ps = d->page;
	struct ptab *t = &ps->dir;
	uint64_t now = dsmd_now_ms(d);

	for (; n && t->nchunks; n--) {
		size_t c = ps->dir_sweep++ % t->nchunks;
		struct dentry *e = t->chunks[c];

		for (size_t i = 0; e && i < PTAB_CHUNK; i++) {
			uint64_t page = (uint64_t)c * PTAB_CHUNK + i;

			if (e[i].q_head &&
			    !home_is_master(d, page, &e[i].h) &&
			    now - e[i].q_head->at_ms >= d->cfg.dead_after_ms)
				refuse_parked(d, page, &e[i]);
		}
	}
}

void dir_peer_down(struct dsmd *d, int node)
{
	struct ptab *t = &d->page->dir;
	size_t c, i;

	for (c = 0; t->chunks && c < t->nchunks; c++) {
		struct dentry *e = t->chunks[c];

		for (i = 0; e && i < PTAB_CHUNK; i++)
			if (e[i].state || e[i].busy || e[i].q_head)
				entry_peer_down(d, (uint64_t)c * PTAB_CHUNK + i,
						&e[i], node);
	}
}

void dir_teardown(struct dsmd *d)
{
	struct ptab *t = &d->page->dir;
	size_t c, i;

	for (c = 0; t->chunks && c < t->nchunks; c++) {
		struct dentry *e = t->chunks[c];

		for (i = 0; e && i < PTAB_CHUNK; i++)
			free_queue(&e[i]);
	}
}

/* ---------------------------------------------------------------------- */
/* Pages as a kind of directory entry (home.c moves them)                 */

static bool page_valid(const struct dsmd *d, uint64_t page)
{
	return page < d->arena.npages;
}

static struct home *page_get(struct dsmd *d, uint64_t page, bool create)
{
	struct dentry *e = page_valid(d, page) ? dir_entry(d, page, create)
					       : NULL;

	return e ? &e->h : NULL;
}

static size_t page_pack(struct dsmd *d, uint64_t page, struct home *h,
			void *buf, size_t cap)
{
	const struct dentry *e = to_dentry(h);
	struct wire_dir_page p = {.state = e->state, .owner = e->owner,
				  .sharers = e->sharers,
				  .version = e->version,
				  .flags = e->strays ? WIRE_DIR_STRAYS : 0};

	(void)d;
	(void)page;
	if (cap < sizeof(p))
		return 0;
	memcpy(buf, &p, sizeof(p));
	return sizeof(p);
}

static int page_unpack(struct dsmd *d, uint64_t page, struct home *h,
		       const void *buf, size_t len)
{
	struct dentry *e = to_dentry(h);
	struct wire_dir_page p;

	(void)page;
	if (len != sizeof(p) || e->busy)
		return -EINVAL;
	memcpy(&p, buf, sizeof(p));
	if (p.state > DIR_LOST || p.owner >= (uint32_t)d->cfg.nnodes ||
	    (p.sharers & ~node_all(d)) || (p.state == WIRE_PS_S && !p.sharers) ||
	    (p.flags & ~WIRE_DIR_STRAYS))
		return -EINVAL;
	e->strays = (p.flags & WIRE_DIR_STRAYS) != 0;
	e->state = (uint8_t)p.state;
	e->owner = (uint16_t)p.owner;
	e->sharers = p.sharers;
	e->version = p.version;
	return 0;
}

/* The entry left for `to`: what waited for it follows it there, after the
 * entry on the same queue pair, in the order it arrived here. */
static void page_left(struct dsmd *d, uint64_t page, struct home *h, int to)
{
	struct dentry *e = to_dentry(h);
	struct dreq *w;

	e->state = WIRE_PS_I;
	e->sharers = 0;
	e->owner = 0;
	while ((w = dequeue(e))) {
		if (!w->r.route.hops)
			w->r.route.hops = 1; /* no longer from its origin */
		w->r.route.epoch = h->epoch;
		d->st.forwards++;
		node_send(d, to, WIRE_DSM_REQ, w->req_id, &w->r, sizeof(w->r));
		free(w);
	}
	(void)page;
}

/* The entry came from a node that had not seen every death this node has
 * (it may have been sent before): it learns of them now, as if it had
 * been here then. */
static void page_arrived(struct dsmd *d, uint64_t page, struct home *h)
{
	struct dentry *e = to_dentry(h);

	for (int n = 0; n < d->cfg.nnodes; n++) {
		uint64_t bit = 1ull << n;

		if (d->members[n].state == WIRE_MEMBER_DEAD &&
		    ((e->sharers & bit) ||
		     (e->state == WIRE_PS_M && e->owner == n)))
			entry_peer_down(d, page, e, n);
	}
	serve_queue(d, e);
}

const struct home_kind home_page_kind = {
	.name = "page",
	.kind = WIRE_ENTRY_PAGE,
	.valid = page_valid,
	.get = page_get,
	.pack = page_pack,
	.unpack = page_unpack,
	.left = page_left,
	.arrived = page_arrived,
	.nacked = req_nacked,
	.located = req_located,
};
