/* The holder side: what this node does with pages it holds.  DSM_FWD
 * (send the page to a requester, then keep it S or drop it) and DSM_INV
 * (drop it, acknowledge to the requester).  A freshly granted page is held
 * for hold_us before it is given up, so that the faulting thread runs
 * before its page is taken away: messages about it wait in the core's
 * deferred queue until then.
 *
 * Reads from a holder: a read miss goes straight to the node last heard to
 * write the page (the requester of the invalidation that took our copy),
 * skipping the master: one hand-off fewer.  A node holding the page with
 * the master's knowledge serves it with an S grant and remembers the
 * reader in pg->given.  The reader, once it has mapped the page, tells the
 * master (DSM_SHARED, where DONE would be), which lists it if nothing was
 * written since.  Until then the holder answers for it: every write to the
 * page invalidates or forwards to the holder (or is its own), and a holder
 * losing its copy or writing invalidates those of its `given` readers the
 * master did not (not in the write's `covered` set) in turn
 * (WIRE_INV_RELAYED), announcing them to the writer, which waits for their
 * acks as well.  A copy got so is never given on.  A holder that cannot
 * serve (no copy, its own copy came so, it masters the page) passes the
 * request to the master; one whose own transaction on the page is open
 * keeps it until that ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "page.h"

uint64_t holder_relay_inv(struct dsmd *d, uint64_t page, struct page *pg,
			  int to, uint64_t id, uint64_t covered,
			  uint64_t version)
{
	struct wire_dsm_inv inv = {.page = page, .requester = (uint32_t)to,
				   .flags = WIRE_INV_RELAYED,
				   .version = version};
	uint64_t set = pg->given & ~covered & ~(1ull << to), sent = 0;

	/* `to` (maybe this node) acks to itself; readers in `covered` are
	 * listed at the master, which invalidates them itself. */
	pg->given = 0;
	while (set) {
		int n = __builtin_ctzll(set);

		set &= set - 1;
		if (!node_alive(d, n) ||
		    node_send(d, n, WIRE_DSM_INV, id, &inv, sizeof(inv)))
			continue; /* a dead node holds nothing */
		sent |= 1ull << n;
	}
	return sent;
}

void holder_wake_peer_reqs(struct dsmd *d, struct list *peers)
{
	struct kept *k, *tmp;

	list_for_each_safe(k, tmp, peers, link) {
		list_del(&k->link);
		node_replay(d, k);
	}
}

/* Keep msg until a send slot is free (holder_write_done). */
static void wait_for_send_slot(struct dsmd *d, int from,
			       const struct wire_msg *msg)
{
	struct kept *k = node_keep(from, msg);

	if (!k)
		return;
	list_add_tail(&d->page->send_wait, &k->link);
	d->st.held_back++;
}

void holder_write_done(struct dsmd *d, const struct xport_event *ev)
{
	struct page_state *ps = d->page;
	unsigned s = (unsigned)(ev->cookie & ~PAGE_COOKIE_BIT);
	struct kept *k;

	if (s >= PAGE_NSEND || ps->nsend_free >= PAGE_NSEND)
		return;
	if (ev->status)
		log_warn("writing a page to node %d failed: %s", ev->peer,
			 strerror(-ev->status));
	ps->send_free[ps->nsend_free++] = (uint16_t)s;
	/* Messages that waited for a slot, in order, while slots last: one
	 * that is held for its hold time or waits again stops nothing. */
	while (ps->nsend_free && (k = list_first(&ps->send_wait, struct kept,
						 link))) {
		list_del(&k->link);
		d->st.held_back--; /* counted again if it is kept again */
		node_replay(d, k);
	}
}

void holder_teardown(struct dsmd *d)
{
	struct kept *k, *tmp;

	list_for_each_safe(k, tmp, &d->page->send_wait, link)
		free(k);
	list_init(&d->page->send_wait);
	list_for_each_safe(k, tmp, &d->page->slots_wait, link)
		free(k);
	list_init(&d->page->slots_wait);
	d->page->nslots_wait = 0;
}

static void drop_page(struct dsmd *d, uint64_t page, struct page *pg)
{
	int ret;

	if (pg->state == WIRE_PS_I)
		return;
	ret = nodemem_punch(d, page, 1);
	if (ret)
		log_err("dropping page %llu: %s", (unsigned long long)page,
			strerror(-ret));
	pg->state = WIRE_PS_I;
	d->st.invalidations_received++;
}

/* A message about a page we were granted less than `hold` us ago waits
 * until then. */
static bool held(struct dsmd *d, int from, const struct wire_msg *msg,
		 const struct page *pg, uint64_t hold)
{
	uint64_t until = pg->granted_us + hold;

	if (until <= dsmd_now_us(d))
		return false;
	node_defer(d, from, msg, until);
	return true;
}

void holder_on_inv(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct wire_dsm_inv inv;
	struct wire_dsm_ack ack;
	struct page *pg;

	memcpy(&inv, msg->body, sizeof(inv));
	pg = ptab_get(&d->page->pages, inv.page, true);
	if (!pg || inv.requester >= (uint32_t)d->cfg.nnodes ||
	    (int)inv.requester == d->cfg.node ||
	    (inv.flags & ~(WIRE_INV_RELAYED | WIRE_INV_STRAY)) ||
	    ((inv.flags & WIRE_INV_STRAY) &&
	     (inv.flags != WIRE_INV_STRAY || (int)inv.requester != from))) {
		d->st.bad_msgs++;
		return;
	}
	if (inv.flags & WIRE_INV_STRAY) {
		/* A copy a dead holder gave us, which the master never
		 * listed: it goes if older than the master's (no ack). */
		if (pg->state == WIRE_PS_S && pg->version < inv.version) {
			log_debug("page: %llu: stray copy (version %llu, the "
				  "master's %llu) dropped",
				  (unsigned long long)inv.page,
				  (unsigned long long)pg->version,
				  (unsigned long long)inv.version);
			drop_page(d, inv.page, pg);
		}
		return;
	}
	if (!(inv.flags & WIRE_INV_RELAYED)) /* a holder is no master */
		home_learn(d, &home_page_kind, inv.page, from, inv.epoch);
	if (held(d, from, msg, pg, d->page->hold_us))
		return;
	log_debug("page: %llu invalidated for %u (state %u)%s",
		  (unsigned long long)inv.page, inv.requester, pg->state,
		  inv.flags & WIRE_INV_RELAYED ? " by its holder" : "");
	ack = (struct wire_dsm_ack){
		.page = inv.page, .node = (uint32_t)d->cfg.node,
		.flags = inv.flags & WIRE_INV_RELAYED ? WIRE_ACK_RELAYED : 0,
	};
	if ((inv.flags & WIRE_INV_RELAYED) && pg->state != WIRE_PS_I &&
	    pg->version >= inv.version) {
		/* Our copy is that write's or a later one: a late duplicate
		 * (two holders passed on one write's invalidation, and we
		 * got the page again since).  It only wants its ack.  The
		 * master's own invalidations are never late: the write waits
		 * for their acks. */
		log_debug("page: %llu: stale invalidation (version %llu, "
			  "ours %llu) acked", (unsigned long long)inv.page,
			  (unsigned long long)inv.version,
			  (unsigned long long)pg->version);
	} else {
		drop_page(d, inv.page, pg);
		pg->peer = (uint16_t)(inv.requester + 1); /* it writes */
		ack.also = holder_relay_inv(d, inv.page, pg,
					    (int)inv.requester,
					    msg->hdr->req_id, inv.covered,
					    inv.version);
	}
	node_send(d, (int)inv.requester, WIRE_DSM_INV_ACK, msg->hdr->req_id,
		  &ack, sizeof(ack));
}

/* Write page (which we hold) into `to`'s slot with trailer *tr, from a
 * free send slot (the caller made sure of one).  From M, the page is
 * write-protected in every process first: no process changes it while,
 * or after, it is read. */
static void send_page(struct dsmd *d, uint64_t page, struct page *pg,
		      int to, const struct wire_slot *slot,
		      const struct wire_trailer *tr)
{
	struct page_state *ps = d->page;
	unsigned s = ps->send_free[--ps->nsend_free];
	char *buf = (char *)ps->send_buf + (size_t)s * PAGE_SLOT_STRIDE;
	int ret;

	if (pg->state == WIRE_PS_M)
		fault_protect_all(d, page);
	ret = nodemem_read(d, page, buf);
	if (ret)
		log_err("reading page %llu: %s", (unsigned long long)page,
			strerror(-ret));
	memcpy(buf + WIRE_PAGE_SIZE, tr, sizeof(*tr));
	/* The callers checked the index against the peer's PAGE_SLOTS. */
	ret = xport_write_imm(d->x, to, &ps->send_mr,
			      (size_t)s * PAGE_SLOT_STRIDE,
			      ps->peer_slots[to].addr +
				      (uint64_t)slot->index * PAGE_SLOT_STRIDE,
			      ps->peer_slots[to].rkey, WIRE_SLOT_SIZE,
			      PAGE_IMM_BIT | slot->index, PAGE_COOKIE_BIT | s);
	if (ret) {
		log_warn("sending page %llu to node %d: %s",
			 (unsigned long long)page, to, strerror(-ret));
		ps->send_free[ps->nsend_free++] = (uint16_t)s;
		return;
	}
	d->st.pages_sent++;
	d->st.bytes_sent += WIRE_PAGE_SIZE;
}

/* ---------------------------------------------------------------------- */
/* Each peer's receive slots                                              */

/* At most this many forwards wait for their requester's PAGE_SLOTS: one
 * per transaction the cluster's requesters can have open at once. */
#define SLOTS_WAIT_MAX (PAGE_NSLOTS * 4u)

/* The node a kept FWD or PEER_REQ is for. */
static int requester_of(const struct kept *k)
{
	struct wire_dsm_fwd f;

	if (k->type != WIRE_DSM_FWD)
		return k->from;
	memcpy(&f, k->body, sizeof(f));
	return (int)f.requester;
}

/* Keep msg until `to`'s PAGE_SLOTS comes (it travels another path, or
 * was queued behind msg while the connection came up). */
static void wait_for_slots(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct page_state *ps = d->page;
	struct kept *k = ps->nslots_wait < SLOTS_WAIT_MAX ? node_keep(from, msg)
							  : NULL;

	if (!k) {
		d->st.bad_msgs++;
		return;
	}
	list_add_tail(&ps->slots_wait, &k->link);
	ps->nslots_wait++;
}

void holder_peer_up(struct dsmd *d, int node)
{
	struct page_state *ps = d->page;
	struct wire_page_slots s = {
		.addr = (uint64_t)(uintptr_t)ps->recv_buf,
		.rkey = ps->recv_mr.rkey, .nslots = PAGE_NSLOTS,
		.stride = PAGE_SLOT_STRIDE,
	};

	node_send(d, node, WIRE_PAGE_SLOTS, 0, &s, sizeof(s));
}

void holder_on_slots(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct page_state *ps = d->page;
	struct wire_page_slots s;
	struct kept *k, *tmp;

	memcpy(&s, msg->body, sizeof(s));
	if (from == d->cfg.node || ps->peer_slots[from].known ||
	    s.stride != PAGE_SLOT_STRIDE || s.nslots == 0 ||
	    s.nslots > PAGE_NSLOTS || s.addr == 0) {
		/* Said once, at connect; never moved. */
		log_once(d->proto_logged, LOG_WARN,
			 "node %d announced receive slots twice or badly: "
			 "refused (logged once)", from);
		d->st.bad_msgs++;
		return;
	}
	ps->peer_slots[from].known = true;
	ps->peer_slots[from].addr = s.addr;
	ps->peer_slots[from].rkey = s.rkey;
	ps->peer_slots[from].nslots = s.nslots;
	list_for_each_safe(k, tmp, &ps->slots_wait, link) {
		if (requester_of(k) != from)
			continue;
		list_del(&k->link);
		ps->nslots_wait--;
		node_replay(d, k);
	}
}

/* Forwards waiting for a node that died go with it. */
void holder_peer_down(struct dsmd *d, int node)
{
	struct page_state *ps = d->page;
	struct kept *k, *tmp;

	list_for_each_safe(k, tmp, &ps->slots_wait, link) {
		if (requester_of(k) != node && k->from != node)
			continue;
		list_del(&k->link);
		ps->nslots_wait--;
		free(k);
	}
}

/* Whether the page may be written into slot `index` of node `to`: 1 yes,
 * 0 not yet (its PAGE_SLOTS has not come), -1 never (a bad index). */
static int slot_ok(const struct page_state *ps, int to, uint32_t index)
{
	if (!ps->peer_slots[to].known)
		return 0;
	return index < ps->peer_slots[to].nslots ? 1 : -1;
}

void holder_on_fwd(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct page_state *ps = d->page;
	struct wire_dsm_fwd f;
	struct wire_trailer tr;
	struct page *pg;
	bool inv;

	memcpy(&f, msg->body, sizeof(f));
	pg = ptab_get(&ps->pages, f.page, true);
	if (!pg || f.requester >= (uint32_t)d->cfg.nnodes ||
	    (int)f.requester == d->cfg.node || pg->state == WIRE_PS_I) {
		log_once(d->proto_logged, LOG_WARN,
			 "dropped a forward for page %llu from node %d: a "
			 "bad requester, or a page this node does not hold "
			 "(logged once)", (unsigned long long)f.page, from);
		d->st.bad_msgs++;
		return;
	}
	switch (slot_ok(ps, (int)f.requester, f.slot.index)) {
	case 0:
		wait_for_slots(d, from, msg);
		return;
	case -1:
		log_once(d->proto_logged, LOG_WARN,
			 "dropped a forward for page %llu from node %d: "
			 "slot %u of node %u is not one it announced "
			 "(logged once)", (unsigned long long)f.page, from,
			 f.slot.index, f.requester);
		d->st.bad_msgs++;
		return;
	}
	home_learn(d, &home_page_kind, f.page, from, f.epoch);
	if (held(d, from, msg, pg, ps->hold_us))
		return;
	if (!ps->nsend_free) {
		wait_for_send_slot(d, from, msg);
		return;
	}
	inv = f.flags & WIRE_FWD_INVALIDATE;
	log_debug("page: %llu sent to %u%s (state %u)",
		  (unsigned long long)f.page, f.requester,
		  inv ? " and dropped" : "", pg->state);
	if (pg->state == WIRE_PS_M && !inv)
		d->st.downgrades++;
	tr = (struct wire_trailer){
		.page = f.page, .req_id = msg->hdr->req_id,
		.version = f.version, .state = f.state,
		.grant = !!(f.flags & WIRE_FWD_GRANT),
		.src = (uint32_t)d->cfg.node, .magic = WIRE_TRAILER_MAGIC,
		.master = (uint32_t)from, .epoch = f.epoch,
	};
	if (inv) {
		tr.also = holder_relay_inv(d, f.page, pg, (int)f.requester,
					   msg->hdr->req_id, f.covered,
					   f.version);
		pg->peer = (uint16_t)(f.requester + 1); /* it is writing */
	}
	send_page(d, f.page, pg, (int)f.requester, &f.slot, &tr);
	if (inv)
		drop_page(d, f.page, pg);
	else
		pg->state = WIRE_PS_S;
}

/* Serve a read sent to us directly, from our copy (the caller checked
 * that we may, and that a send slot is free). */
static void give_page(struct dsmd *d, int from, const struct wire_msg *msg,
		      const struct wire_dsm_req *q, struct page *pg)
{
	struct wire_trailer tr = {
		.page = q->page, .req_id = msg->hdr->req_id,
		.version = pg->version, .state = WIRE_PS_S, .grant = 1,
		.src = (uint32_t)d->cfg.node, .magic = WIRE_TRAILER_MAGIC,
		.master = (uint32_t)d->cfg.node, .flags = WIRE_TR_PEER,
	};

	log_debug("page: %llu given to %d directly (state %u)",
		  (unsigned long long)q->page, from, pg->state);
	if (pg->state == WIRE_PS_M)
		d->st.downgrades++;
	send_page(d, q->page, pg, from, &q->slot, &tr);
	pg->state = WIRE_PS_S;
	pg->given |= 1ull << from;
	d->st.peer_served++;
}

/* A read miss sent to us as the page's last writer (DSM_PEER_REQ).  We
 * serve it if our copy is one the master knows of and nothing of ours is
 * under way on the page; else the master does, as if R had asked it. */
void holder_on_peer_req(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct page_state *ps = d->page;
	struct wire_dsm_req q;
	struct page *pg;
	struct kept *k;

	memcpy(&q, msg->body, sizeof(q));
	pg = ptab_get(&ps->pages, q.page, true);
	if (!pg || q.access != WIRE_ACC_READ || q.route.origin != from ||
	    q.route.hops || q.route.chain || q.route.epoch ||
	    from == d->cfg.node || slot_ok(ps, from, q.slot.index) < 0) {
		d->st.bad_msgs++;
		return;
	}
	if (!slot_ok(ps, from, q.slot.index)) {
		wait_for_slots(d, from, msg);
		return;
	}
	if (pg->busy) {
		/* Our own transaction on the page is open (in a ping-pong,
		 * the write whose invalidation made R miss).  Wait for it:
		 * the master would make R wait for it too, one hop further
		 * away.  Looked at again when it ends. */
		if ((k = node_keep(from, msg)))
			list_add_tail(&req_of(d, pg)->peer_wait, &k->link);
		return;
	}
	if (pg->state == WIRE_PS_I || pg->peer_copy ||
	    dir_master(d, q.page) == d->cfg.node) {
		struct wire_dsm_passed p = {.page = q.page};

		d->st.peer_passed++;
		/* R learns that its read is an ordinary request now: one a
		 * death may have lost, and that it asks again then. */
		node_send(d, from, WIRE_DSM_PASSED, msg->hdr->req_id, &p,
			  sizeof(p));
		dir_on_req(d, from, msg->hdr->req_id, &q);
		return;
	}
	/* The hold time, or --peer-hold-us if longer: just granted, its
	 * faulting thread may not have run (and stored) yet.  Through the
	 * master, R's request would have taken two more hops, which gave it
	 * that time; here R waits for it instead.  Else a reader polling a
	 * flag gets the old page, misses again, and a ping-pong doubles. */
	if (held(d, from, msg, pg,
		 ps->peer_hold_us > ps->hold_us ? ps->peer_hold_us
						: ps->hold_us))
		return;
	if (!ps->nsend_free) {
		wait_for_send_slot(d, from, msg);
		return;
	}
	give_page(d, from, msg, &q, pg);
}
