/* Asking every node who masters an entry (DIR_WHO_HAS): when the hints
 * and forwards a request followed led nowhere.  The node that masters it
 * wins; if none does, the newest pointer left by a move wins (its target
 * is about to).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "home_int.h"
#include "log.h"

struct home_query {
	struct list link;        /* d->home->queries */
	const struct home_kind *k;
	uint64_t key, token, id;
	uint64_t waiting;        /* nodes yet to answer */
	int master, hint;        /* -1: none */
	uint32_t master_epoch, hint_epoch;
	struct app *app;         /* held: reply to it, not to the kind */
	uint64_t req_id, value;
	uint64_t started_ms;
};

static void finish_query(struct dsmd *d, struct home_query *q)
{
	int master = q->master;
	uint32_t epoch = q->master_epoch;
	bool own_word = true;

	list_del(&q->link);
	if (master >= 0 && !node_usable(d, master))
		master = -1; /* it masters it, and it is dead */
	else if (master < 0 && q->hint >= 0 && q->hint_epoch > 0 &&
		 node_usable(d, q->hint)) {
		/* The newest pointer: on its way there.  Only a move makes
		 * one (it raises the epoch); a pointer of epoch 0 is a
		 * guess (a recovery master's, or one of those pointing at
		 * each other), and with nobody claiming the entry, nobody
		 * masters it. */
		master = q->hint;
		epoch = q->hint_epoch;
		own_word = false;
	}
	log_debug("home: who masters %s %llu: %d (epoch %u)", q->k->name,
		  (unsigned long long)q->key, master, epoch);
	home_learn_word(d, q->k, q->key, master, epoch, own_word);
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

	q->id = ++d->home->next_token;
	q->started_ms = dsmd_now_ms(d);
	q->master = q->hint = -1;
	if (where == d->cfg.node) {
		q->master = where;
		q->master_epoch = epoch;
	} else {
		q->hint = where;
		q->hint_epoch = epoch;
	}
	for (i = 0; q->master < 0 && i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node || !node_alive(d, i))
			continue;
		home_send_where(d, i, WIRE_DIR_WHO_HAS, q->id, q->k->kind,
				q->key, 0, -1, 0);
		q->waiting |= bit(i);
	}
	list_add_head(&d->home->queries, &q->link);
	if (q->waiting)
		d->st.who_has_broadcasts++;
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
	app_get(a);
	start_query(d, q);
}

void home_on_who_has(struct dsmd *d, const struct home_kind *k, int from,
		     uint64_t id, const struct wire_dir_where *w)
{
	const struct home *h = k->get(d, w->key, false);
	uint32_t epoch;
	int where = home_where(d, w->key, h, &epoch);

	home_send_where(d, from, WIRE_DIR_WHO_HAS_REPLY, id, k->kind, w->key,
			where == d->cfg.node, where, epoch);
}

void home_on_who_has_reply(struct dsmd *d, int from, uint64_t id,
			   const struct wire_dir_where *w)
{
	struct home_query *q, *found = NULL;

	list_for_each(q, &d->home->queries, link) {
		if (q->id == id) {
			found = q;
			break;
		}
	}
	q = found;
	if (!q || q->key != w->key || !(q->waiting & bit(from)) ||
	    w->master > 1 ||
	    (w->hint != WIRE_NO_NODE && w->hint >= (uint32_t)d->cfg.nnodes)) {
		d->st.bad_msgs++;
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


/* The nodes that owe a lookup an answer past --dead-after-ms. */
static uint64_t queries_silent(struct dsmd *d)
{
	uint64_t now = dsmd_now_ms(d), silent = 0;
	struct home_query *q;

	list_for_each(q, &d->home->queries, link)
		if (now - q->started_ms >= d->cfg.dead_after_ms)
			silent |= q->waiting;
	return silent;
}

/* Each tick: a node alive but silent on a lookup for --dead-after-ms is
 * declared dead, which ends the lookup as a death does. */
void home_queries_tick(struct dsmd *d)
{
	cluster_suspect_each(d, queries_silent, "answered no DIR_WHO_HAS");
}

/* A node died: lookups stop waiting for it. */
void home_queries_peer_down(struct dsmd *d, int node)
{
	struct home_query *q, *tmp;

	list_for_each_safe(q, tmp, &d->home->queries, link) {
		if (!(q->waiting & bit(node)))
			continue;
		q->waiting &= ~bit(node);
		if (!q->waiting)
			finish_query(d, q);
	}
}

void home_queries_free(struct dsmd *d)
{
	struct home_query *q, *tmp;

	list_for_each_safe(q, tmp, &d->home->queries, link) {
		list_del(&q->link);
		if (q->app)
			app_put(q->app);
		free(q);
	}
}
