/* Node messaging: sending to a node or to this node (the self queue),
 * messages kept for later (the deferred queue), and the dispatch of every
 * node message, from a peer, from this node or replayed, to the one module
 * that handles its type (module.c filled the table).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dsmd.h"
#include "log.h"

bool node_alive(const struct dsmd *d, int node)
{
	return node >= 0 && node < d->cfg.nnodes &&
	       d->members[node].state == WIRE_MEMBER_ALIVE;
}

bool node_usable(const struct dsmd *d, int node)
{
	return node == d->cfg.node || node_alive(d, node);
}

uint64_t node_all(const struct dsmd *d)
{
	return d->cfg.nnodes >= 64 ? ~0ull : (1ull << d->cfg.nnodes) - 1;
}

static struct kept *kept_new(int from, unsigned type, uint64_t req_id,
			     const void *body, size_t len)
{
	struct kept *k;

	if (len > WIRE_MSG_MAX - sizeof(struct wire_hdr))
		return NULL;
	k = malloc(sizeof(*k) + len);
	if (!k)
		return NULL;
	*k = (struct kept){.from = from, .type = (uint8_t)type,
			   .req_id = req_id, .len = (uint32_t)len};
	list_init(&k->link);
	if (len) /* a body of none may come as NULL */
		memcpy(k->body, body, len);
	return k;
}

int node_send(struct dsmd *d, int node, unsigned type, uint64_t req_id,
	      const void *body, size_t len)
{
	struct kept *k;
	int ret;

	if (node == d->cfg.node) {
		k = kept_new(node, type, req_id, body, len);
		if (!k) {
			log_err("cannot queue a %s to self", wire_type_name(type));
			return -ENOMEM;
		}
		list_add_tail(&d->self_q, &k->link);
		return 0;
	}
	ret = xport_send(d->x, node, type, req_id, body, len);
	if (ret) {
		log_warn("cannot send %s to node %d: %s", wire_type_name(type),
			 node, strerror(-ret));
		return ret;
	}
	if (wire_is_coherence(type)) {
		d->st.msgs_sent++;
		d->st.bytes_sent += sizeof(struct wire_hdr) + len;
	}
	return 0;
}

bool node_run_self(struct dsmd *d)
{
	struct list q;
	struct kept *k, *tmp;

	if (list_empty(&d->self_q))
		return false;
	/* What these send to self runs in the next round, in order. */
	list_init(&q);
	list_splice_tail(&q, &d->self_q);
	list_for_each_safe(k, tmp, &q, link) {
		list_del(&k->link);
		node_replay(d, k);
	}
	return true;
}

void node_dispatch(struct dsmd *d, int from, const struct wire_msg *m)
{
	unsigned type = m->hdr->type;
	const struct dsmd_msg *h = type < WIRE_TYPE_MAX ? d->msg_of[type]
							: NULL;
	uint64_t page;

	if (!h) {
		d->bad_msgs++;
		log_once(d->proto_logged, LOG_WARN,
			 "dropped a %s message from node %d: not expected "
			 "here (logged once)", wire_type_name(type), from);
		return;
	}
	if (h->page) {
		/* Every such body starts with the page (the decoder checked
		 * the body's length). */
		memcpy(&page, m->body, sizeof(page));
		if (page >= d->arena.npages) {
			d->st.bad_msgs++;
			return;
		}
	}
	h->fn(d, from, m);
}

struct kept *node_keep(int from, const struct wire_msg *m)
{
	struct kept *k = kept_new(from, m->hdr->type, m->hdr->req_id, m->body,
				  m->body_len);

	if (!k)
		log_err("cannot keep a %s for later: dropped",
			wire_type_name(m->hdr->type));
	return k;
}

void node_replay(struct dsmd *d, struct kept *k)
{
	/* A kept message is at most what a node message may be (kept_new
	 * refused longer ones). */
	unsigned char buf[WIRE_MSG_MAX];
	struct wire_hdr *h = (struct wire_hdr *)buf;
	struct wire_msg msg;

	wire_build(buf, sizeof(buf), k->type, k->req_id, k->body, k->len);
	h->src = (uint16_t)k->from;
	msg = (struct wire_msg){.hdr = h, .body = buf + sizeof(*h),
				.body_len = k->len};
	free(k);
	node_dispatch(d, (int)h->src, &msg);
}

static void deferred_due(struct dsmd *d, struct timer *t)
{
	struct kept *k = container_of(t, struct kept, t);

	list_del(&k->link);
	d->st.held_back--; /* counted again if it is kept again */
	node_replay(d, k);
}

int node_defer(struct dsmd *d, int from, const struct wire_msg *m,
	       uint64_t when_us)
{
	struct kept *k = node_keep(from, m);
	int ret;

	if (!k)
		return -ENOMEM;
	ret = timer_start(d, &k->t, when_us, deferred_due);
	if (ret) {
		log_err("cannot keep a %s for later: dropped",
			wire_type_name(m->hdr->type));
		free(k);
		return ret;
	}
	list_add_tail(&d->deferred, &k->link);
	d->st.held_back++;
	return 0;
}
