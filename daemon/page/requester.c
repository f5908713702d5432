/* The requester side: a fault that needs the network starts a
 * transaction, sends DSM_REQ to the page's master (or DSM_PEER_REQ to the
 * node last heard to write it, holder.c), and completes when the grant,
 * the data (written by a holder into a receive slot with RDMA WRITE) and
 * the invalidation acknowledgements it announces are all in.  Then the
 * page is installed, the faults that waited run, and the master hears
 * DONE (or, for a copy a holder gave directly, DSM_SHARED).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "page.h"

_Static_assert(WIRE_SLOT_SIZE <= PAGE_SLOT_STRIDE, "a slot holds page+trailer");

/* Send t's request to `node`, which this node believes masters the page
 * (at `epoch`); the same transaction id every time it is sent. */
static void send_req(struct dsmd *d, struct txn *t, int node, uint32_t epoch,
		     unsigned type)
{
	struct page_state *ps = d->page;
	unsigned i = (unsigned)(t->id & 0xffff);
	struct page *pg = ptab_get(&ps->pages, t->page, false);
	struct wire_dsm_req r = {
		.page = t->page, .access = t->access, .has_copy = t->has_copy,
		.version = t->has_copy && pg ? pg->version : 0,
		.slot = {.index = i},
		.route = {.origin = (uint16_t)d->cfg.node, .epoch = epoch},
	};

	t->sent_to = (int16_t)node;
	t->peer = type == WIRE_DSM_PEER_REQ;
	node_send(d, node, type, t->id, &r, sizeof(r));
}

/* Nobody on the way knew the master: ask every node. */
static void txn_ask(struct dsmd *d, struct txn *t)
{
	if (t->hinted && !t->missed) {
		t->missed = true;
		d->st.hint_misses++;
	}
	t->asking = true;
	t->peer = false;
	home_ask(d, &home_page_kind, t->page, t->id);
}

/* The holder a read miss may ask instead of the master, or -1.  Only
 * when that saves a hop: the master is elsewhere, and not the holder. */
static int peer_for(struct dsmd *d, const struct page *pg, bool write,
		    int master)
{
	int p = (int)pg->peer - 1, me = d->cfg.node;

	if (!d->page->peer_reads || write || pg->state != WIRE_PS_I ||
	    p < 0 || p >= d->cfg.nnodes || p == me || master == me ||
	    p == master || !node_alive(d, p))
		return -1;
	return p;
}

static void count_fault(struct dsmd *d, const struct page *pg, bool write,
			int master)
{
	if (!write)
		d->st.read_faults++;
	else if (pg->state == WIRE_PS_S)
		d->st.upgrade_faults++;
	else
		d->st.write_faults++;
	if (master == d->cfg.node)
		d->st.directory_local++;
	else
		d->st.directory_remote++;
}

void req_start(struct dsmd *d, uint64_t page, struct page *pg, bool write,
	       struct app *a, uint64_t addr, uint32_t flags)
{
	struct page_state *ps = d->page;
	struct txn *t = NULL;
	uint32_t epoch;
	bool hinted;
	unsigned i;
	int master = dir_where(d, page, &epoch, &hinted);
	int peer = peer_for(d, pg, write, master);

	for (i = 0; i < PAGE_NSLOTS && !t; i++)
		if (!ps->txns[i].used)
			t = &ps->txns[i];
	i = (unsigned)(t - ps->txns);
	*t = (struct txn){.used = true, .page = page,
			  .access = write ? WIRE_ACC_WRITE : WIRE_ACC_READ,
			  .has_copy = pg->state == WIRE_PS_S,
			  .hinted = hinted,
			  .master = -1, .sent_to = -1, .src = -1,
			  .nudge_ms = dsmd_now_ms(d),
			  .deaths = d->st.nodes_dead,
			  .id = (++ps->txn_gen << 16) | i};
	list_init(&t->waiters);
	list_init(&t->peer_wait);
	ps->nfree_slots--;
	d->net_waits++;
	pg->busy = 1;
	pg->slot = (uint16_t)i;
	count_fault(d, pg, write, master);
	/* The fault waits before anything is sent: an answer can come at
	 * once (a lookup with no live node to ask ends here and now). */
	fault_queue(&t->waiters, a, addr, flags);
	if (peer >= 0) {
		t->hinted = false;
		d->st.peer_requests++;
		send_req(d, t, peer, 0, WIRE_DSM_PEER_REQ);
	} else if (master == d->cfg.node || node_alive(d, master)) {
		send_req(d, t, master, epoch, WIRE_DSM_REQ);
	} else {
		txn_ask(d, t);
	}
}

static struct txn *find_txn(struct dsmd *d, uint64_t id, uint64_t page)
{
	unsigned slot = (unsigned)(id & 0xffff);
	struct txn *t;

	if (slot >= PAGE_NSLOTS)
		return NULL;
	t = &d->page->txns[slot];
	if (!t->used || t->abandoned || t->id != id || t->page != page)
		return NULL;
	return t;
}

/* Put the transaction's page into the node's memory.  A page that came
 * with data goes straight into the first waiting fault's process when it
 * can (fault_install); *done then says that fault is resolved.  Otherwise
 * (that process is gone, EEXIST, ...) it is written to the page cache and
 * every fault maps it from there. */
static int install(struct dsmd *d, struct txn *t, const struct page *pg,
		   bool *done)
{
	struct page_state *ps = d->page;
	unsigned slot = (unsigned)(t->id & 0xffff);
	const char *src = (char *)ps->recv_buf + (size_t)slot * PAGE_SLOT_STRIDE;
	struct fault *first = list_first(&t->waiters, struct fault, link);

	*done = false;
	if (t->data_got) {
		if (first && fault_install(d, first, src, t->state) == 0) {
			*done = true;
			return 0;
		}
		return nodemem_write(d, t->page, src);
	}
	if (t->zero && pg->state == WIRE_PS_I) {
		d->st.zero_fills++;
		return nodemem_zero(d, t->page);
	}
	return 0;
}

enum txn_end {
	TXN_DONE,     /* tell the master; the slot is free again */
	TXN_ABORTED,  /* tell the master it was given up; keep the slot */
	TXN_ORPHANED, /* the master is dead: tell nobody; keep the slot */
};

static void send_done(struct dsmd *d, int master, uint64_t id,
		      uint64_t page, bool aborted)
{
	struct wire_dsm_done done = {.page = page, .aborted = aborted};

	if (master >= 0)
		node_send(d, master, WIRE_DSM_DONE, id, &done, sizeof(done));
}

/* End transaction t: tell its master (unless `tell` is false: the caller
 * does it later), free its slot or keep it out of use (an abandoned slot
 * could still receive a late page), and hand the caller the faults that
 * waited on the page (to run again or fail) and the reads held for it
 * (holder_wake_peer_reqs(), after the faults).  Both are taken out of t:
 * a fault run again may start a new transaction in the same slot. */
static void txn_close(struct dsmd *d, struct txn *t, enum txn_end how,
		      bool tell, struct list *faults, struct list *peers)
{
	struct page_state *ps = d->page;
	struct page *pg = ptab_get(&ps->pages, t->page, true);

	list_init(faults);
	list_init(peers);
	list_splice_tail(faults, &t->waiters);
	list_splice_tail(peers, &t->peer_wait);
	pg->busy = 0;
	d->net_waits--;
	if (how != TXN_ORPHANED && tell)
		send_done(d, t->master, t->id, t->page, how == TXN_ABORTED);
	if (how == TXN_DONE) {
		t->used = false;
		ps->nfree_slots++;
	} else {
		t->abandoned = true;
	}
}

/* End t and run its faults again (their page settled, or must be asked
 * for again), then the reads held for it. */
static void txn_rerun(struct dsmd *d, struct txn *t, enum txn_end how)
{
	struct list faults, peers;

	txn_close(d, t, how, true, &faults, &peers);
	fault_run(d, &faults);
	holder_wake_peer_reqs(d, &peers);
}

/* A slot came free: the faults that waited for one try again. */
static void run_slot_wait(struct dsmd *d)
{
	struct list list;

	list_init(&list);
	list_splice_tail(&list, &d->page->slot_wait);
	fault_run(d, &list);
}

/* Relayed acks t must wait for too; a node already dead owes none. */
static void owe_also(struct dsmd *d, struct txn *t, uint64_t set)
{
	uint64_t n;

	set &= node_all(d) & ~(1ull << d->cfg.node);
	for (n = set; n; n &= n - 1)
		if (!node_alive(d, __builtin_ctzll(n)))
			set &= ~(n & -n);
	t->also |= set;
}

/* We installed a copy `giver` gave us directly: tell the master, which
 * lists us if the giver's copy is still the page's.  Only now, with the
 * copy in place: once listed, we may be sent an INV or a FWD for it. */
static void tell_shared(struct dsmd *d, uint64_t page, const struct page *pg,
			int giver)
{
	struct wire_dsm_shared sh = {.page = page, .node = (uint32_t)giver,
				     .version = pg->version};
	int master = dir_master(d, page);

	if (master == d->cfg.node || node_alive(d, master))
		node_send(d, master, WIRE_DSM_SHARED, 0, &sh, sizeof(sh));
}

/* Whether everything t waits for is in. */
static bool txn_complete(const struct txn *t)
{
	return t->grant_seen && (!t->data_needed || t->data_got) &&
	       t->acks_got >= t->acks_needed && !(t->also & ~t->also_acked);
}

/* t is complete: its page becomes this node's. */
static void txn_finish(struct dsmd *d, struct txn *t, struct page *pg)
{
	uint64_t pg_no = t->page, id = t->id;
	struct list faults, peers;
	int master, giver, ret;
	bool done;

	log_debug("page: %llu txn %llx done: %s%s%s, acks %u",
		  (unsigned long long)t->page, (unsigned long long)t->id,
		  t->state == WIRE_PS_M ? "M" : "S",
		  t->data_got ? " data" : "", t->zero ? " zero" : "",
		  t->acks_got);
	ret = install(d, t, pg, &done);
	if (ret)
		log_err("installing page %llu: %s",
			(unsigned long long)t->page, strerror(-ret));
	if (t->version < pg->version)
		log_warn("page %llu: granted version %llu after %llu",
			 (unsigned long long)t->page,
			 (unsigned long long)t->version,
			 (unsigned long long)pg->version);
	pg->state = t->state;
	pg->version = t->version;
	pg->peer_copy = t->peer;
	pg->granted_us = dsmd_now_us(d);
	/* Map the page for the waiting faults first, DONE after: posting a
	 * send is a system call that on rxe carries the message through the
	 * kernel's RDMA stack (about 500 us in the emulated guest), and it
	 * stood between the page's arrival and the process running again.
	 * The master needs DONE only before it serves the page's next
	 * request, and a request the waiting faults start meanwhile queues
	 * there behind it. */
	master = t->master;
	giver = t->peer ? t->sent_to : -1;
	txn_close(d, t, TXN_DONE, false, &faults, &peers);
	if (done) /* install() mapped it for the first fault already */
		fault_drop_first(&faults);
	fault_run(d, &faults);
	/* Reads sent to us meanwhile: after our faults (the hold time keeps
	 * the page until they ran). */
	holder_wake_peer_reqs(d, &peers);
	if (giver >= 0)
		tell_shared(d, pg_no, pg, giver);
	else
		send_done(d, master, id, pg_no, false);
	run_slot_wait(d);
}

static void txn_maybe_done(struct dsmd *d, struct txn *t)
{
	struct page *pg = ptab_get(&d->page->pages, t->page, true);

	if (t->grant_seen && t->state == WIRE_PS_M && pg->given)
		/* We write a page we gave readers directly, whom the master
		 * may not know of: we take their copies ourselves.  Only now
		 * that the master has served our write, so that a reader's
		 * copy goes only after the page's version has changed (see
		 * serve_write in dir.c). */
		owe_also(d, t, holder_relay_inv(d, t->page, pg, d->cfg.node,
						t->id, t->covered,
						t->version));
	if (txn_complete(t))
		txn_finish(d, t, pg);
}

/* The page is lost: every fault waiting for it gets SIGBUS. */
static void fail_txn(struct dsmd *d, struct txn *t, enum txn_end how)
{
	struct list faults, peers;

	txn_close(d, t, how, true, &faults, &peers);
	fault_fail(d, &faults, t->page);
	holder_wake_peer_reqs(d, &peers);
	run_slot_wait(d);
}

/* Whether `master` may be the node serving t (its first word says so;
 * afterwards only that node may), remembering it and counting whether the
 * hint t went out on was right. */
static bool served_by(struct dsmd *d, struct txn *t, int master,
		      uint32_t epoch)
{
	if (t->master >= 0)
		return t->master == master;
	if (master < 0 || master >= d->cfg.nnodes)
		return false;
	t->master = (int16_t)master;
	t->peer = false; /* a holder passed it on: the master serves it */
	if (t->hinted && !t->missed) {
		if (master == t->sent_to)
			d->st.hint_hits++;
		else
			d->st.hint_misses++;
	}
	home_learn(d, &home_page_kind, t->page, master, epoch);
	return true;
}

void req_on_grant(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_grant g;
	struct txn *t;

	memcpy(&g, m->body, sizeof(g));
	t = find_txn(d, m->hdr->req_id, g.page);
	if (!t || t->grant_seen || g.state < WIRE_PS_S ||
	    g.state > WIRE_PS_M || !served_by(d, t, from, g.epoch)) {
		d->st.bad_msgs++;
		return;
	}
	if (g.flags & WIRE_GRANT_LOST) {
		fail_txn(d, t, TXN_DONE);
		return;
	}
	t->grant_seen = true;
	t->state = (uint8_t)g.state;
	t->version = g.version;
	t->acks_needed = g.acks;
	t->covered = g.covered;
	t->data_needed = g.flags & WIRE_GRANT_DATA;
	t->zero = g.flags & WIRE_GRANT_ZERO;
	txn_maybe_done(d, t);
}

/* Count node's ack once: the master may also report it for a node that
 * died, not knowing whether its ack got out first. */
static void count_ack(struct dsmd *d, struct txn *t, uint32_t node)
{
	if (node >= (uint32_t)d->cfg.nnodes || (t->acked & (1ull << node)))
		return;
	t->acked |= 1ull << node;
	t->acks_got++;
	txn_maybe_done(d, t);
}

void req_on_ack(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_ack a;
	struct txn *t;

	memcpy(&a, m->body, sizeof(a));
	t = find_txn(d, m->hdr->req_id, a.page);
	if (!t || a.node != (uint32_t)from || (a.flags & ~WIRE_ACK_RELAYED)) {
		d->st.bad_msgs++;
		return;
	}
	owe_also(d, t, a.also);
	if (a.flags & WIRE_ACK_RELAYED) {
		t->also_acked |= 1ull << from;
		txn_maybe_done(d, t);
		return;
	}
	count_ack(d, t, a.node);
}

void req_on_lost(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_lost l;
	struct txn *t;

	memcpy(&l, m->body, sizeof(l));
	t = find_txn(d, m->hdr->req_id, l.page);
	if (l.node >= (uint32_t)d->cfg.nnodes) {
		d->st.bad_msgs++;
		return;
	}
	if (!t)
		return; /* done already */
	if (!served_by(d, t, from, 0)) {
		d->st.bad_msgs++;
		return;
	}
	if (!(l.flags & WIRE_LOST_SUPPLIER))
		count_ack(d, t, l.node);
	else if (!t->data_got)
		/* The page died with its sender: give the transaction up
		 * and let its faults start over (the master knows whether
		 * another copy is left). */
		txn_rerun(d, t, TXN_ABORTED);
}

/* Whether a page's trailer is acceptable for t. */
static bool trailer_ok(struct dsmd *d, struct txn *t,
		       const struct wire_trailer *tr)
{
	if (!t || tr->magic != WIRE_TRAILER_MAGIC || t->data_got ||
	    tr->master >= (uint32_t)d->cfg.nnodes ||
	    (tr->grant && (t->grant_seen || tr->state < WIRE_PS_S ||
			   tr->state > WIRE_PS_M)) ||
	    (tr->flags & ~WIRE_TR_PEER))
		return false;
	if (tr->flags & WIRE_TR_PEER)
		/* The holder we asked answered itself: an S grant, no
		 * master, no DONE. */
		return t->peer && tr->grant && tr->state == WIRE_PS_S &&
		       tr->src == (uint32_t)t->sent_to && !tr->also;
	if (!served_by(d, t, (int)tr->master, tr->epoch))
		return false;
	owe_also(d, t, tr->also);
	return true;
}

void req_on_page_data(struct dsmd *d, const struct xport_event *ev)
{
	struct page_state *ps = d->page;
	unsigned slot = ev->imm & ~PAGE_IMM_BIT;
	struct wire_trailer tr;
	struct txn *t;

	if (slot >= PAGE_NSLOTS || ev->len != WIRE_SLOT_SIZE) {
		d->st.bad_msgs++;
		return;
	}
	memcpy(&tr, (char *)ps->recv_buf + (size_t)slot * PAGE_SLOT_STRIDE +
			    WIRE_PAGE_SIZE, sizeof(tr));
	t = find_txn(d, tr.req_id, tr.page);
	if (!trailer_ok(d, t, &tr)) {
		d->st.bad_msgs++;
		return;
	}
	d->st.pages_received++;
	d->st.bytes_received += WIRE_PAGE_SIZE;
	t->data_got = true;
	t->src = (int16_t)tr.src;
	if (tr.grant) {
		t->grant_seen = true;
		t->state = (uint8_t)tr.state;
		t->version = tr.version;
	}
	txn_maybe_done(d, t);
}

void req_peer_down(struct dsmd *d, int node)
{
	unsigned i;

	for (i = 0; i < PAGE_NSLOTS; i++) {
		struct txn *t = &d->page->txns[i];

		if (!t->used || t->abandoned)
			continue;
		if (t->also & (1ull << node)) {
			/* A dead node holds no copy: it owes no ack. */
			t->also_acked |= 1ull << node;
			txn_maybe_done(d, t);
		}
		if (!t->used || t->abandoned || t->asking)
			continue;
		if (t->master == node) {
			/* The entry died with its master: every waiter
			 * learns so (SIGBUS) when it looks again. */
			txn_rerun(d, t, TXN_ORPHANED);
		} else if (t->master < 0 && (t->sent_to == node || !t->peer)) {
			/* Not answered yet: the request may have been passed
			 * on to the dead node, by the one it was sent to or
			 * further on (an entry moving there takes what waits
			 * for it along).  Ask again; the master drops a second
			 * copy.  A read sent to a live holder is answered by
			 * it, or passed to the master as a request of ours. */
			txn_ask(d, t);
		}
	}
}

/* Each tick: a transaction that waited --dead-after-ms says so.  To its
 * master, once it answered (DSM_STUCK, with what came: the master
 * declares dead whoever still owes it); else it asks again who masters
 * the page (the request may have been lost; the master drops a second
 * copy).  A read sent to a holder directly is answered by it or passed
 * on within its hold time: after twice the bound (the holder may itself
 * wait on its own transaction for one) the holder is declared dead.  A
 * lookup under way has its own deadline (home/query.c). */
void req_tick(struct dsmd *d)
{
	uint64_t now = dsmd_now_ms(d), bound = d->cfg.dead_after_ms;

	for (unsigned i = 0; i < PAGE_NSLOTS; i++) {
		struct txn *t = &d->page->txns[i];

		if (!t->used || t->abandoned || t->asking ||
		    now - t->nudge_ms < (t->peer ? 2 * bound : bound))
			continue;
		t->nudge_ms = now;
		if (t->master >= 0 && t->grant_seen &&
		    (!t->data_needed || t->data_got) &&
		    t->acks_got >= t->acks_needed) {
			/* All the master arranged is in: what is missing are
			 * acks relayed by holders, from readers they gave the
			 * page directly, which only this node knows of. */
			d->st.stuck_waits++;
			cluster_suspect_set(d, t->also & ~t->also_acked,
					    "owed a relayed ack");
		} else if (t->master >= 0) {
			struct wire_dsm_stuck s = {
				.page = t->page, .grant = t->grant_seen,
				.has_copy = t->has_copy,
				.heard = t->acked | t->also_acked |
					 (t->src >= 0 ? 1ull << t->src : 0)};

			d->st.stuck_waits++;
			node_send(d, t->master, WIRE_DSM_STUCK, t->id, &s,
				  sizeof(s));
		} else if (t->peer) {
			cluster_suspect(d, t->sent_to,
					"answered no read sent to it");
		} else {
			d->st.stuck_waits++;
			txn_ask(d, t);
		}
	}
}

/* The holder our read went to passed it on to the master (DSM_PASSED). */
void req_on_passed(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_dsm_passed p;
	struct txn *t;

	memcpy(&p, m->body, sizeof(p));
	t = find_txn(d, m->hdr->req_id, p.page);
	if (!t || !t->peer || t->sent_to != from || t->master >= 0)
		return;
	t->peer = false;
	/* A node died since it began: the holder may have passed it on to
	 * that node (not knowing yet), and this node did not ask again then
	 * (it was still the holder's to answer).  Ask now. */
	if (d->st.nodes_dead != t->deaths && !t->asking)
		txn_ask(d, t);
}

void req_nacked(struct dsmd *d, uint64_t page, uint64_t id)
{
	struct txn *t = find_txn(d, id, page);

	if (!t || t->master >= 0 || t->asking)
		return; /* answered meanwhile, or asking already */
	if (++t->refusals > HOME_REFUSALS_MAX(d)) {
		/* What the nodes know leads nowhere (every lookup names a
		 * node that passes the request on round a cycle): asking
		 * again would go round for ever.  As if the entry had died. */
		log_warn("page %llu: request refused %u times on its way, and "
			 "nobody answers for it: the fault fails",
			 (unsigned long long)page, t->refusals);
		fail_txn(d, t, t->sent_to < 0 ? TXN_DONE : TXN_ORPHANED);
		return;
	}
	txn_ask(d, t);
}

void req_located(struct dsmd *d, uint64_t page, uint64_t id, int master,
		 uint32_t epoch)
{
	struct txn *t = find_txn(d, id, page);

	if (!t || !t->asking)
		return;
	t->asking = false;
	if (t->master >= 0)
		return; /* the first request got through meanwhile */
	if (master >= 0) {
		send_req(d, t, master, epoch, WIRE_DSM_REQ);
		return;
	}
	/* Nobody alive masters it: the entry died with its master.  A slot
	 * whose request went out stays out of use (a late page could still
	 * land in it). */
	fail_txn(d, t, t->sent_to < 0 ? TXN_DONE : TXN_ORPHANED);
}

void req_teardown(struct dsmd *d)
{
	struct kept *k, *tmp;
	unsigned i;

	for (i = 0; i < PAGE_NSLOTS; i++) {
		struct txn *t = &d->page->txns[i];

		if (!t->waiters.next)
			continue; /* never used */
		fault_free(&t->waiters);
		list_for_each_safe(k, tmp, &t->peer_wait, link)
			free(k);
		list_init(&t->peer_wait);
	}
	fault_free(&d->page->slot_wait);
}
