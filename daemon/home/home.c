/* Where directory entries live, and how they move.  See home.h.
 *
 * Why requests never loop and are never served twice:
 * - Only the master moves an entry, and only while it is idle (no open
 *   transaction), so there is one master or, while DIR_MIGRATE is on its
 *   way, none.  Two nodes that both "pull" an entry are two nodes the
 *   master weighs; it picks at most one.
 * - Every pointer to a master carries the epoch at which that node became
 *   master.  A request sent on a pointer carries its epoch (route.epoch):
 *   a node named at an epoch newer than its own knowledge has an entry on
 *   its way to it and parks the request until it arrives.  The old master
 *   sends DIR_MIGRATE before it forwards anything to the new one, on the
 *   same queue pair, so its forwards never overtake the entry.
 * - A forwarded request collects the forwarders in route.chain; a node
 *   whose next hop is already on the chain, is dead, or is one hop too
 *   many refuses it (DIR_NACK) instead of passing it on.  The requester
 *   then asks every node (DIR_WHO_HAS): the one that masters the entry
 *   wins; if none does, the newest pointer wins (its target is about to).
 * - The requester sends the same transaction id again after a refusal,
 *   and the master drops a request whose (requester, id) is already open
 *   or queued.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "home_int.h"
#include "log.h"

const struct home_kind *home_kind_of(const struct dsmd *d, uint32_t kind)
{
	return kind < HOME_KINDS ? d->home->kinds[kind] : NULL;
}

void home_register(struct dsmd *d, const struct home_kind *k)
{
	d->home->kinds[k->kind] = k;
}

/* ---------------------------------------------------------------------- */
/* What this node knows                                                   */

bool home_is_master(const struct dsmd *d, uint64_t key, const struct home *h)
{
	if (h && (h->flags & HOME_KNOWN))
		return h->flags & HOME_MASTER;
	return home_placement(d, key) == d->cfg.node;
}

int home_where(const struct dsmd *d, uint64_t key, const struct home *h,
	       uint32_t *epoch)
{
	bool known = h && (h->flags & HOME_KNOWN);

	*epoch = h ? h->epoch : 0;
	if (known)
		return (h->flags & HOME_MASTER) ? d->cfg.node : h->hint;
	return home_placement(d, key);
}

void home_learn_word(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     int master, uint32_t epoch, bool own_word)
{
	struct home *h;

	if (master < 0 || master >= d->cfg.nnodes || master == d->cfg.node)
		return;
	h = k->get(d, key, true);
	if (!h || home_is_master(d, key, h) || epoch < h->epoch ||
	    (epoch == h->epoch && !own_word))
		return;
	h->flags = HOME_KNOWN;
	h->hint = (uint16_t)master;
	h->epoch = epoch;
}

void home_learn(struct dsmd *d, const struct home_kind *k, uint64_t key,
		int master, uint32_t epoch)
{
	home_learn_word(d, k, key, master, epoch, true);
}

void home_learn_hint(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     int master, uint32_t epoch)
{
	home_learn_word(d, k, key, master, epoch, false);
}

/* ---------------------------------------------------------------------- */
/* Counting and deciding                                                  */

static void roll_load(struct home_state *hs, uint32_t now, uint32_t win_ms)
{
	uint32_t w = now / win_ms + 1; /* 0: never */

	if (w == hs->win)
		return;
	hs->prev_count = w == hs->win + 1 ? hs->win_count : 0;
	hs->win_count = 0;
	hs->win = w;
}

static void mark_active(struct dsmd *d, struct home *h)
{
	struct home_state *hs = d->home;

	roll_load(hs, now32(d), window_of(&hs->cluster));
	if (h->active_win != hs->win) {
		h->active_win = hs->win;
		hs->win_count++;
	}
}

uint32_t home_load(struct dsmd *d)
{
	struct home_state *hs = d->home;

	roll_load(hs, now32(d), window_of(&hs->cluster));
	return hs->win_count > hs->prev_count ? hs->win_count : hs->prev_count;
}

void home_heard_load(struct dsmd *d, int node, uint32_t load)
{
	if (node >= 0 && node < d->cfg.nnodes)
		d->home->load[node] = load;
}

/* Halve the counts once per window gone by. */
static void decay(struct home *h, uint32_t now, uint32_t win)
{
	struct wire_home_counts *c = &h->counts;
	uint32_t n = (now - h->decay_ms) / win;
	unsigned i;

	if (!n)
		return;
	h->decay_ms = n > 16 ? now : h->decay_ms + n * win;
	if (n > 16)
		n = 16;
	c->total = (uint16_t)(c->total >> n);
	for (i = 0; i < WIRE_HOME_TOP; i++)
		c->count[i] = (uint16_t)(c->count[i] >> n);
}

/* Count one request of `node`: the few busiest nodes keep a counter each;
 * a newcomer takes the smallest counter over, plus one (the space-saving
 * count, which can only overestimate a node). */
void home_note(struct dsmd *d, uint64_t key, struct home *h, int node)
{
	struct wire_home_counts *c = &h->counts;
	unsigned i, slot = 0;

	decay(h, now32(d), window_of(home_policy(d, key)));
	mark_active(d, h);
	for (i = 0; i < WIRE_HOME_TOP; i++) {
		if (c->count[i] && c->node[i] == node) {
			slot = i;
			break;
		}
		if (c->count[i] < c->count[slot])
			slot = i;
	}
	c->node[slot] = (uint8_t)node;
	if (c->count[slot] < UINT16_MAX)
		c->count[slot]++;
	if (c->total < UINT16_MAX)
		c->total++;
}

/* Whether `node` already masters far more than its share of the entries
 * in recent use (below 64 of them nobody is too loaded). */
static bool overloaded(struct dsmd *d, int node, const struct wire_policy *p)
{
	uint64_t sum = 0, n = 0, fair, load;
	int i;

	for (i = 0; i < d->cfg.nnodes; i++) {
		if (!node_usable(d, i))
			continue;
		sum += i == d->cfg.node ? home_load(d) : d->home->load[i];
		n++;
	}
	load = d->home->load[node];
	fair = n ? sum / n : 0;
	return load > 64 && load * 100 > (uint64_t)p->load_pct * fair;
}

int home_decide(struct dsmd *d, const struct home_kind *k, uint64_t key,
		struct home *h, int first)
{
	const struct wire_policy *p = k->kind == WIRE_ENTRY_PAGE ?
				      home_policy(d, key) :
				      &d->home->cluster;
	const struct wire_home_counts *c = &h->counts;
	uint32_t now = now32(d), win = window_of(p);
	unsigned i, top = 0;
	int node;

	if (first >= 0 && first != d->cfg.node &&
	    p->placement == DSM_PLACE_FIRST_TOUCH && node_usable(d, first))
		return first;
	if (!p->migrate || ((h->flags & HOME_KNOWN) &&
			    now - h->arrived_ms < win))
		return -1;
	decay(h, now, win);
	for (i = 1; i < WIRE_HOME_TOP; i++)
		if (c->count[i] > c->count[top])
			top = i;
	node = c->node[top];
	if (node == d->cfg.node || node >= d->cfg.nnodes ||
	    c->count[top] < p->min_requests ||
	    (uint32_t)c->count[top] * 100 < p->share_pct * (uint32_t)c->total ||
	    !node_alive(d, node) || overloaded(d, node, p))
		return -1;
	return node;
}

void home_migrate(struct dsmd *d, const struct home_kind *k, uint64_t key,
		  struct home *h, int to)
{
	unsigned char buf[WIRE_MSG_MAX - sizeof(struct wire_hdr)];
	struct wire_dir_migrate mg = {.key = key, .kind = k->kind,
				      .epoch = h->epoch + 1,
				      .counts = h->counts};
	size_t len = k->pack(d, key, h, buf + sizeof(mg),
			     sizeof(buf) - sizeof(mg));

	mg.state_len = (uint32_t)len;
	memcpy(buf, &mg, sizeof(mg));
	log_debug("home: %s %llu moves to node %d (epoch %u)", k->name,
		  (unsigned long long)key, to, mg.epoch);
	h->flags = HOME_KNOWN;
	h->hint = (uint16_t)to;
	h->epoch = mg.epoch;
	d->st.migrations_out++;
	node_send(d, to, WIRE_DIR_MIGRATE, 0, buf, sizeof(mg) + len);
	k->left(d, key, h, to);
}

/* ---------------------------------------------------------------------- */
/* Routing requests                                                       */

int home_route_check(const struct dsmd *d, int from,
		     const struct wire_route *rt)
{
	if (rt->origin >= d->cfg.nnodes || rt->hops > d->cfg.nnodes ||
	    (rt->chain & ~node_all(d)) || (!rt->hops && rt->origin != from))
		return -EINVAL;
	return 0;
}

enum home_step home_route(struct dsmd *d, uint64_t key, struct home *h,
			  struct wire_route *rt, int *next)
{
	int me = d->cfg.node, to;
	uint32_t epoch;

	if (home_is_master(d, key, h))
		return HOME_SERVE;
	if (rt->epoch > h->epoch)
		return HOME_PARK; /* named master before it knows: on its way */
	to = home_where(d, key, h, &epoch);
	if (to == me || rt->hops >= d->cfg.nnodes || (rt->chain & bit(to)) ||
	    !node_alive(d, to))
		return HOME_NACK;
	rt->hops++;
	rt->chain |= bit(me);
	rt->epoch = epoch;
	d->st.forwards++;
	*next = to;
	return HOME_FORWARD;
}

void home_send_where(struct dsmd *d, int to, unsigned type, uint64_t id,
		       unsigned kind, uint64_t key, int master, int hint,
		       uint32_t epoch)
{
	struct wire_dir_where w = {
		.key = key, .kind = kind,
		.master = (uint32_t)master,
		.hint = hint < 0 ? WIRE_NO_NODE : (uint32_t)hint,
		.epoch = epoch,
	};

	node_send(d, to, type, id, &w, sizeof(w));
}

void home_tell_chain(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     const struct home *h, uint64_t chain)
{
	chain &= ~bit(d->cfg.node);
	while (chain) {
		int n = __builtin_ctzll(chain);

		chain &= chain - 1;
		if (node_alive(d, n))
			home_send_where(d, n, WIRE_DIR_HINT, 0, k->kind, key,
					d->cfg.node, -1, h->epoch);
	}
}

void home_nack(struct dsmd *d, const struct home_kind *k, uint64_t key,
	       int origin, uint64_t token)
{
	log_debug("home: request %llx for %llu refused: no master known",
		  (unsigned long long)token, (unsigned long long)key);
	home_send_where(d, origin, WIRE_DIR_NACK, token, k->kind, key, 0, -1,
			0);
}

/* ---------------------------------------------------------------------- */
/* Entries arriving                                                       */

static void on_migrate(struct dsmd *d, int from, const struct wire_msg *m)
{
	const struct home_kind *k;
	struct wire_dir_migrate mg;
	struct home *h;
	unsigned i;

	memcpy(&mg, m->body, sizeof(mg));
	k = home_kind_of(d, mg.kind);
	h = k && k->valid(d, mg.key) ? k->get(d, mg.key, true) : NULL;
	if (!h || home_is_master(d, mg.key, h) || mg.epoch <= h->epoch ||
	    k->unpack(d, mg.key, h, (const char *)m->body + sizeof(mg),
		      mg.state_len)) {
		log_once(d->proto_logged, LOG_WARN,
			 "dropped an entry from node %d: unknown, stale or "
			 "malformed (logged once)", from);
		d->st.bad_msgs++;
		return;
	}
	for (i = 0; i < WIRE_HOME_TOP; i++)
		if (mg.counts.node[i] >= d->cfg.nnodes)
			mg.counts.count[i] = 0;
	log_debug("home: %s %llu arrived from node %d (epoch %u)", k->name,
		  (unsigned long long)mg.key, from, mg.epoch);
	h->flags = HOME_KNOWN | HOME_MASTER;
	h->hint = (uint16_t)d->cfg.node;
	h->epoch = mg.epoch;
	h->counts = mg.counts;
	h->arrived_ms = h->decay_ms = now32(d);
	mark_active(d, h);
	d->st.migrations_in++;
	k->arrived(d, mg.key, h);
}


/* DIR_HINT, DIR_NACK, DIR_WHO_HAS and its reply: about one entry of a
 * kind. */
static void on_where(struct dsmd *d, int from, const struct wire_msg *m)
{
	uint64_t id = m->hdr->req_id;
	const struct home_kind *k;
	struct wire_dir_where w;

	memcpy(&w, m->body, sizeof(w));
	k = home_kind_of(d, w.kind);
	if (!k || !k->valid(d, w.key)) {
		d->st.bad_msgs++;
		return;
	}
	switch (m->hdr->type) {
	case WIRE_DIR_HINT:
		if (w.master >= (uint32_t)d->cfg.nnodes ||
		    (int)w.master != from) {
			d->st.bad_msgs++;
			return;
		}
		home_learn(d, k, w.key, from, w.epoch);
		return;
	case WIRE_DIR_NACK:
		k->nacked(d, w.key, id);
		return;
	case WIRE_DIR_WHO_HAS:
		home_on_who_has(d, k, from, id, &w);
		return;
	default:
		home_on_who_has_reply(d, from, id, &w);
		return;
	}
}

/* A heartbeat may carry its sender's load. */
static void on_heartbeat(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_heartbeat hb;

	if (m->body_len != sizeof(hb))
		return;
	memcpy(&hb, m->body, sizeof(hb));
	home_heard_load(d, from, hb.load);
}

static int home_setup(struct dsmd *d)
{
	d->home = calloc(1, sizeof(*d->home));
	if (!d->home)
		return -ENOMEM;
	d->home->cluster = d->cfg.policy;
	list_init(&d->home->queries);
	list_init(&d->home->policy_ops);
	return 0;
}

static void home_teardown(struct dsmd *d)
{
	if (!d->home)
		return;
	home_queries_free(d);
	home_policy_free(d);
	free(d->home);
	d->home = NULL;
}

static void home_peer_down(struct dsmd *d, int node)
{
	home_queries_peer_down(d, node);
	home_policy_peer_down(d, node);
}

/* The load the next heartbeats carry; lookups' deadlines. */
static void home_tick(struct dsmd *d)
{
	d->load = home_load(d);
	home_queries_tick(d);
}

static const struct dsmd_msg home_msgs[] = {
	{WIRE_HEARTBEAT, false, on_heartbeat},
	{WIRE_DIR_MIGRATE, false, on_migrate},
	{WIRE_DIR_HINT, false, on_where},
	{WIRE_DIR_NACK, false, on_where},
	{WIRE_DIR_WHO_HAS, false, on_where},
	{WIRE_DIR_WHO_HAS_REPLY, false, on_where},
	{WIRE_DIR_POLICY, false, home_on_policy_msg},
	{WIRE_DIR_POLICY_ACK, false, home_on_policy_msg},
	{0},
};

static const struct dsmd_ipc home_ipcs[] = {
	{WIRE_IPC_POLICY, IPC_FROM(WIRE_IPC_KIND_APP), true, home_on_policy_ipc},
	{0},
};

const struct dsmd_module home_module = {
	.name = "home",
	.setup = home_setup,
	.teardown = home_teardown,
	.peer_down = home_peer_down,
	.tick = home_tick,
	.msgs = home_msgs,
	.ipcs = home_ipcs,
};
