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
#include "home.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "dsmd.h"

struct home_query {
	struct home_query *next;
	const struct home_kind *k;
	uint64_t key, token, id;
	uint64_t waiting;        /* nodes yet to answer */
	int master, hint;        /* -1: none */
	uint32_t master_epoch, hint_epoch;
	struct app *app;         /* held: reply to it, not to the kind */
	uint64_t req_id, value;
};

struct home_policy_op {
	struct home_policy_op *next;
	uint64_t id, waiting;
	int status;
	uint64_t first;
	struct app *app;         /* held */
	uint64_t req_id;
};

static uint64_t bit(int node)
{
	return 1ull << node;
}

static uint32_t now32(void)
{
	return (uint32_t)dsmd_now_ms();
}

static uint32_t window_of(const struct wire_policy *p)
{
	return p->window_ms ? p->window_ms : 1;
}

static bool usable(const struct dsmd *d, int node)
{
	return node == d->cfg.node || cluster_peer_alive(d, node);
}

static const struct home_kind *kind_of(uint32_t kind)
{
	if (kind == WIRE_ENTRY_PAGE)
		return &home_page_kind;
	return kind == WIRE_ENTRY_LOCK ? &home_lock_kind : NULL;
}

/* ---------------------------------------------------------------------- */
/* Policy                                                                 */

void home_setup(struct dsmd *d)
{
	struct home_state *hs = &d->mem.home;

	memset(hs, 0, sizeof(*hs));
	hs->cluster = d->cfg.policy;
}

int home_policy_check(const struct wire_policy *p)
{
	if (p->placement > DSM_PLACE_FIRST_TOUCH || p->migrate > 1 ||
	    p->share_pct < 51 || p->share_pct > 100 || p->min_requests < 1 ||
	    p->min_requests > 65535 || p->window_ms < 1 ||
	    p->window_ms > 3600000 || p->load_pct < 100 ||
	    p->load_pct > 100000)
		return -EINVAL;
	return 0;
}

/* The newest range holding key decides; a cleared range means the
 * cluster's policy. */
const struct wire_policy *home_policy(const struct dsmd *d, uint64_t key)
{
	const struct home_state *hs = &d->mem.home;
	unsigned i = hs->nranges;

	while (i--) {
		const struct home_range *r = &hs->ranges[i];

		if (key >= r->first && key - r->first < r->n)
			return r->clear ? &hs->cluster : &r->p;
	}
	return &hs->cluster;
}

static bool overlaps(const struct home_range *r, uint64_t first, uint64_t n)
{
	return r->first < first + n && first < r->first + r->n;
}

/* Ranges wholly inside the new one are gone for good; the new one goes
 * last, so it wins where it overlaps what is left. */
static int apply_policy(struct dsmd *d, uint64_t first, uint64_t n,
			bool clear, const struct wire_policy *p)
{
	struct home_state *hs = &d->mem.home;
	unsigned i, j = 0;
	bool any = false;

	for (i = 0; i < hs->nranges; i++) {
		struct home_range *r = &hs->ranges[i];

		if (r->first >= first && r->first + r->n <= first + n)
			continue;
		any |= overlaps(r, first, n);
		hs->ranges[j++] = *r;
	}
	hs->nranges = j;
	if (clear && !any)
		return 0;
	if (hs->nranges == HOME_MAX_RANGES)
		return -ENOSPC;
	hs->ranges[hs->nranges++] = (struct home_range){
		.first = first, .n = n, .clear = clear, .p = clear ? hs->cluster
								   : *p};
	return 0;
}

/* ---------------------------------------------------------------------- */
/* What this node knows                                                   */

bool home_is_master(const struct dsmd *d, uint64_t key, const struct home *h)
{
	if (h && (h->flags & HOME_KNOWN))
		return h->flags & HOME_MASTER;
	return (int)(key % (uint64_t)d->cfg.nnodes) == d->cfg.node;
}

uint64_t home_all_nodes(const struct dsmd *d)
{
	return d->cfg.nnodes >= 64 ? ~0ull : bit(d->cfg.nnodes) - 1;
}

int home_where(const struct dsmd *d, uint64_t key, const struct home *h,
	       uint32_t *epoch)
{
	bool known = h && (h->flags & HOME_KNOWN);

	*epoch = h ? h->epoch : 0;
	if (known)
		return (h->flags & HOME_MASTER) ? d->cfg.node : h->hint;
	return (int)(key % (uint64_t)d->cfg.nnodes);
}

static void learn(struct dsmd *d, const struct home_kind *k, uint64_t key,
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
	learn(d, k, key, master, epoch, true);
}

void home_learn_hint(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     int master, uint32_t epoch)
{
	learn(d, k, key, master, epoch, false);
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
	struct home_state *hs = &d->mem.home;

	roll_load(hs, now32(), window_of(&hs->cluster));
	if (h->active_win != hs->win) {
		h->active_win = hs->win;
		hs->win_count++;
	}
}

uint32_t home_load(struct dsmd *d)
{
	struct home_state *hs = &d->mem.home;

	roll_load(hs, now32(), window_of(&hs->cluster));
	return hs->win_count > hs->prev_count ? hs->win_count : hs->prev_count;
}

void home_heard_load(struct dsmd *d, int node, uint32_t load)
{
	if (node >= 0 && node < d->cfg.nnodes)
		d->mem.home.load[node] = load;
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

	decay(h, now32(), window_of(home_policy(d, key)));
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
		if (!usable(d, i))
			continue;
		sum += i == d->cfg.node ? home_load(d) : d->mem.home.load[i];
		n++;
	}
	load = d->mem.home.load[node];
	fair = n ? sum / n : 0;
	return load > 64 && load * 100 > (uint64_t)p->load_pct * fair;
}

int home_decide(struct dsmd *d, const struct home_kind *k, uint64_t key,
		struct home *h, int first)
{
	const struct wire_policy *p = k->kind == WIRE_ENTRY_PAGE ?
				      home_policy(d, key) :
				      &d->mem.home.cluster;
	const struct wire_home_counts *c = &h->counts;
	uint32_t now = now32(), win = window_of(p);
	unsigned i, top = 0;
	int node;

	if (first >= 0 && first != d->cfg.node &&
	    p->placement == DSM_PLACE_FIRST_TOUCH && usable(d, first))
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
	    !cluster_peer_alive(d, node) || overloaded(d, node, p))
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
	d->mem.st.migrations_out++;
	mem_send(d, to, WIRE_DIR_MIGRATE, 0, buf, sizeof(mg) + len);
	k->left(d, key, h, to);
}

/* ---------------------------------------------------------------------- */
/* Routing requests                                                       */

int home_route_check(const struct dsmd *d, int from,
		     const struct wire_route *rt)
{
	if (rt->origin >= d->cfg.nnodes || rt->hops > d->cfg.nnodes ||
	    (rt->chain & ~home_all_nodes(d)) || (!rt->hops && rt->origin != from))
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
	    !cluster_peer_alive(d, to))
		return HOME_NACK;
	rt->hops++;
	rt->chain |= bit(me);
	rt->epoch = epoch;
	d->mem.st.forwards++;
	*next = to;
	return HOME_FORWARD;
}

static void send_where(struct dsmd *d, int to, unsigned type, uint64_t id,
		       unsigned kind, uint64_t key, int master, int hint,
		       uint32_t epoch)
{
	struct wire_dir_where w = {
		.key = key, .kind = kind,
		.master = (uint32_t)master,
		.hint = hint < 0 ? WIRE_NO_NODE : (uint32_t)hint,
		.epoch = epoch,
	};

	mem_send(d, to, type, id, &w, sizeof(w));
}

void home_tell_chain(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     const struct home *h, uint64_t chain)
{
	chain &= ~bit(d->cfg.node);
	while (chain) {
		int n = __builtin_ctzll(chain);

		chain &= chain - 1;
		if (cluster_peer_alive(d, n))
			send_where(d, n, WIRE_DIR_HINT, 0, k->kind, key,
				   d->cfg.node, -1, h->epoch);
	}
}

void home_nack(struct dsmd *d, const struct home_kind *k, uint64_t key,
	       int origin, uint64_t token)
{
	log_debug("home: request %llx for %llu refused: no master known",
		  (unsigned long long)token, (unsigned long long)key);
	send_where(d, origin, WIRE_DIR_NACK, token, k->kind, key, 0, -1, 0);
}

/* ---------------------------------------------------------------------- */
/* Asking every node                                                      */

static void finish_query(struct dsmd *d, struct home_query *q)
{
	struct home_query **pp;
	int master = q->master;
	uint32_t epoch = q->master_epoch;
	bool own_word = true;

	for (pp = &d->mem.home.queries; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	if (master >= 0 && !usable(d, master))
		master = -1; /* it masters it, and it is dead */
	else if (master < 0 && q->hint >= 0 && usable(d, q->hint)) {
		master = q->hint; /* the newest pointer: on its way there */
		epoch = q->hint_epoch;
		own_word = false;
	}
	log_debug("home: who masters %s %llu: %d (epoch %u)", q->k->name,
		  (unsigned long long)q->key, master, epoch);
	learn(d, q->k, q->key, master, epoch, own_word);
	if (q->app) {
		app_reply(q->app, q->req_id, master < 0 ? -EHOSTDOWN : 0,
			  q->value, master < 0 ? 0 : (uint64_t)master);
		app_put(q->app);
	} else {
		q->k->located(d, q->key, q->token, master, epoch);
	}
	free(q);
}

static void start_query(struct dsmd *d, struct home_query *q)
{
	const struct home *h = q->k->get(d, q->key, false);
	uint32_t epoch;
	int i, where = home_where(d, q->key, h, &epoch);

	q->id = ++d->mem.home.next_token;
	q->master = q->hint = -1;
	if (where == d->cfg.node) {
		q->master = where;
		q->master_epoch = epoch;
	} else {
		q->hint = where;
		q->hint_epoch = epoch;
	}
	for (i = 0; q->master < 0 && i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node || !cluster_peer_alive(d, i))
			continue;
		send_where(d, i, WIRE_DIR_WHO_HAS, q->id, q->k->kind, q->key, 0,
			   -1, 0);
		q->waiting |= bit(i);
	}
	q->next = d->mem.home.queries;
	d->mem.home.queries = q;
	if (q->waiting)
		d->mem.st.who_has_broadcasts++;
	else
		finish_query(d, q);
}

void home_ask(struct dsmd *d, const struct home_kind *k, uint64_t key,
	      uint64_t token)
{
	struct home_query *q = calloc(1, sizeof(*q));

	if (!q) {
		log_err("out of memory asking who masters %s %llu", k->name,
			(unsigned long long)key);
		k->located(d, key, token, -1, 0);
		return;
	}
	*q = (struct home_query){.k = k, .key = key, .token = token};
	start_query(d, q);
}

void home_ask_for_app(struct dsmd *d, const struct home_kind *k,
		      uint64_t key, struct app *a, uint64_t req_id,
		      uint64_t value)
{
	struct home_query *q = calloc(1, sizeof(*q));

	if (!q) {
		app_reply(a, req_id, -ENOMEM, 0, 0);
		return;
	}
	*q = (struct home_query){.k = k, .key = key, .app = a,
				 .req_id = req_id, .value = value};
	a->refs++;
	start_query(d, q);
}

static void on_who_has(struct dsmd *d, const struct home_kind *k, int from,
		       uint64_t id, const struct wire_dir_where *w)
{
	const struct home *h = k->get(d, w->key, false);
	uint32_t epoch;
	int where = home_where(d, w->key, h, &epoch);

	send_where(d, from, WIRE_DIR_WHO_HAS_REPLY, id, k->kind, w->key,
		   where == d->cfg.node, where, epoch);
}

static void on_who_has_reply(struct dsmd *d, int from, uint64_t id,
			     const struct wire_dir_where *w)
{
	struct home_query *q;

	for (q = d->mem.home.queries; q && q->id != id; q = q->next)
		;
	if (!q || q->key != w->key || !(q->waiting & bit(from)) ||
	    w->master > 1 ||
	    (w->hint != WIRE_NO_NODE && w->hint >= (uint32_t)d->cfg.nnodes)) {
		d->mem.st.bad_msgs++;
		return;
	}
	q->waiting &= ~bit(from);
	if (w->master && (q->master < 0 || w->epoch > q->master_epoch)) {
		q->master = from; /* two claims: the newer epoch wins */
		q->master_epoch = w->epoch;
	} else if (!w->master && w->hint != WIRE_NO_NODE &&
		   (q->hint < 0 || w->epoch > q->hint_epoch)) {
		q->hint = (int)w->hint;
		q->hint_epoch = w->epoch;
	}
	if (!q->waiting)
		finish_query(d, q);
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
	k = kind_of(mg.kind);
	h = k && k->valid(d, mg.key) ? k->get(d, mg.key, true) : NULL;
	if (!h || home_is_master(d, mg.key, h) || mg.epoch <= h->epoch ||
	    k->unpack(d, mg.key, h, (const char *)m->body + sizeof(mg),
		      mg.state_len)) {
		log_once(d->proto_logged, LOG_WARN,
			 "dropped an entry from node %d: unknown, stale or "
			 "malformed (logged once)", from);
		d->mem.st.bad_msgs++;
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
	h->arrived_ms = h->decay_ms = now32();
	mark_active(d, h);
	d->mem.st.migrations_in++;
	k->arrived(d, mg.key, h);
}

/* ---------------------------------------------------------------------- */
/* Policy across the cluster                                              */

static void reply_policy(struct app *a, uint64_t req_id, int status,
			 const struct wire_policy *p)
{
	struct wire_ipc_policy_reply r = {.status = status};

	if (p)
		r.p = *p;
	if (a->c)
		ctl_reply(a->c, WIRE_IPC_POLICY_REPLY, req_id, &r, sizeof(r));
}

static void finish_policy_op(struct dsmd *d, struct home_policy_op *op)
{
	struct home_policy_op **pp;

	for (pp = &d->mem.home.policy_ops; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	reply_policy(op->app, op->req_id, op->status,
		     home_policy(d, op->first));
	app_put(op->app);
	free(op);
}

static int policy_range(const struct dsmd *d, uint64_t addr, uint64_t len,
			uint64_t *first, uint64_t *n)
{
	const struct mem *m = &d->mem;

	if (!len || addr < m->base || addr - m->base >= m->size ||
	    len > m->size - (addr - m->base))
		return -EINVAL;
	*first = (addr - m->base) / WIRE_PAGE_SIZE;
	*n = (addr - m->base + len - 1) / WIRE_PAGE_SIZE - *first + 1;
	return 0;
}

int home_policy_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
		    const struct wire_ipc_policy *req)
{
	bool clear = req->op == WIRE_POLICY_CLEAR;
	struct wire_dir_policy dp;
	struct home_policy_op *op;
	uint64_t first, n;
	int i, ret;

	if (req->op == WIRE_POLICY_GET) {
		if (req->addr < d->mem.base ||
		    req->addr - d->mem.base >= d->mem.size)
			return -EFAULT;
		reply_policy(a, req_id, 0,
			     home_policy(d, (req->addr - d->mem.base) /
						    WIRE_PAGE_SIZE));
		return 0;
	}
	if ((req->op != WIRE_POLICY_SET && !clear) || req->reserved ||
	    policy_range(d, req->addr, req->len, &first, &n) ||
	    (!clear && home_policy_check(&req->p)))
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	ret = apply_policy(d, first, n, clear, &req->p);
	if (ret) {
		free(op);
		return ret;
	}
	*op = (struct home_policy_op){.id = ++d->mem.home.next_token,
				      .first = first, .app = a,
				      .req_id = req_id,
				      .next = d->mem.home.policy_ops};
	a->refs++;
	d->mem.home.policy_ops = op;
	dp = (struct wire_dir_policy){.first_page = first, .npages = n,
				      .clear = clear, .p = req->p};
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node || !cluster_peer_alive(d, i))
			continue;
		if (xport_send(d->x, i, WIRE_DIR_POLICY, op->id, &dp,
			       sizeof(dp)) == 0)
			op->waiting |= bit(i);
	}
	if (!op->waiting)
		finish_policy_op(d, op);
	return 0;
}

static void on_policy(struct dsmd *d, int from, uint64_t id,
		      const struct wire_dir_policy *dp)
{
	struct wire_dir_policy ack = *dp;
	int ret = -EINVAL;

	if (dp->npages && dp->first_page < d->mem.npages &&
	    dp->npages <= d->mem.npages - dp->first_page && dp->clear <= 1 &&
	    (dp->clear || !home_policy_check(&dp->p)))
		ret = apply_policy(d, dp->first_page, dp->npages, dp->clear,
				   &dp->p);
	if (ret == -EINVAL)
		d->mem.st.bad_msgs++;
	ack.reserved = (uint32_t)-ret; /* 0, or the errno it failed with */
	xport_send(d->x, from, WIRE_DIR_POLICY_ACK, id, &ack, sizeof(ack));
}

static void on_policy_ack(struct dsmd *d, int from, uint64_t id,
			  const struct wire_dir_policy *dp)
{
	struct home_policy_op *op;

	for (op = d->mem.home.policy_ops; op && op->id != id; op = op->next)
		;
	if (!op || !(op->waiting & bit(from)) || dp->reserved > 4095) {
		d->mem.st.bad_msgs++;
		return;
	}
	op->waiting &= ~bit(from);
	if (dp->reserved && !op->status)
		op->status = -(int)dp->reserved;
	if (!op->waiting)
		finish_policy_op(d, op);
}

/* ---------------------------------------------------------------------- */

void home_on_msg(struct dsmd *d, int from, const struct wire_msg *m)
{
	uint64_t id = m->hdr->req_id;
	const struct home_kind *k;
	struct wire_dir_policy dp;
	struct wire_dir_where w;

	switch (m->hdr->type) {
	case WIRE_DIR_MIGRATE:
		on_migrate(d, from, m);
		return;
	case WIRE_DIR_POLICY:
	case WIRE_DIR_POLICY_ACK:
		memcpy(&dp, m->body, sizeof(dp));
		if (m->hdr->type == WIRE_DIR_POLICY)
			on_policy(d, from, id, &dp);
		else
			on_policy_ack(d, from, id, &dp);
		return;
	default:
		break;
	}
	memcpy(&w, m->body, sizeof(w));
	k = kind_of(w.kind);
	if (!k || !k->valid(d, w.key)) {
		d->mem.st.bad_msgs++;
		return;
	}
	switch (m->hdr->type) {
	case WIRE_DIR_HINT:
		if (w.master >= (uint32_t)d->cfg.nnodes ||
		    (int)w.master != from) {
			d->mem.st.bad_msgs++;
			return;
		}
		home_learn(d, k, w.key, from, w.epoch);
		return;
	case WIRE_DIR_NACK:
		k->nacked(d, w.key, id);
		return;
	case WIRE_DIR_WHO_HAS:
		on_who_has(d, k, from, id, &w);
		return;
	case WIRE_DIR_WHO_HAS_REPLY:
		on_who_has_reply(d, from, id, &w);
		return;
	default:
		d->mem.st.bad_msgs++;
		return;
	}
}

void home_peer_down(struct dsmd *d, int node)
{
	struct home_query *q, *qn;
	struct home_policy_op *op, *opn;

	for (q = d->mem.home.queries; q; q = qn) {
		qn = q->next;
		if (!(q->waiting & bit(node)))
			continue;
		q->waiting &= ~bit(node);
		if (!q->waiting)
			finish_query(d, q);
	}
	for (op = d->mem.home.policy_ops; op; op = opn) {
		opn = op->next;
		if (!(op->waiting & bit(node)))
			continue;
		op->waiting &= ~bit(node);
		if (!op->waiting)
			finish_policy_op(d, op);
	}
}

void home_teardown(struct dsmd *d)
{
	struct home_state *hs = &d->mem.home;

	while (hs->queries) {
		struct home_query *q = hs->queries;

		hs->queries = q->next;
		if (q->app)
			app_put(q->app);
		free(q);
	}
	while (hs->policy_ops) {
		struct home_policy_op *op = hs->policy_ops;

		hs->policy_ops = op->next;
		app_put(op->app);
		free(op);
	}
}
