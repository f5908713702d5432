/* Where directory entries live, and how they move (daemon/home/).
 *
 * Every directory entry (a page's or a lock resource's) is
 * mastered by exactly one node.  It starts at its home by placement (the
 * key modulo the node count, or the first node to touch it), and its master
 * counts who asks for it: when one node clearly dominates, the master hands
 * the entry over (DIR_MIGRATE) and keeps a forwarding address.  Every node
 * keeps, per entry, what it believes: "I master it", or a hint naming the
 * master with the epoch (the number of moves) that hint is from.  A newer
 * epoch always wins, so hints never go backwards.
 *
 * This file is the mechanism; the kind of entry supplies, through struct
 * home_kind, how to find its struct home, how to pack and unpack its state,
 * and what to do when the entry arrives or a lookup for it ends.
 */
#ifndef DSMD_HOME_H
#define DSMD_HOME_H

#include <stdbool.h>
#include <stdint.h>

#include "dsmd.h"
#include "wire.h"

#define HOME_KNOWN 1u  /* hint and epoch are real knowledge (else the
			  placement's home, epoch 0) */
#define HOME_MASTER 2u /* this node masters the entry */

/* The mastering part of a directory entry; the first member of every
 * kind's entry.  Times are dsmd_now_ms() truncated to 32 bits. */
struct home {
	uint8_t flags;        /* HOME_* */
	uint8_t reserved;
	uint16_t hint;        /* KNOWN, not MASTER: where the master is */
	uint32_t epoch;       /* moves of the entry this node knows of */
	uint32_t arrived_ms;  /* MASTER: when it arrived here */
	uint32_t decay_ms;    /* when its counts were last halved */
	uint32_t active_win;  /* the last load window it was asked for in */
	struct wire_home_counts counts;
};

/* A kind of directory entry. */
struct home_kind {
	const char *name;
	unsigned kind;           /* enum wire_entry_kind */
	/* Whether key names an entry of this kind (it came off the wire). */
	bool (*valid)(const struct dsmd *d, uint64_t key);
	/* The entry of key, created if asked; NULL for a bad key. */
	struct home *(*get)(struct dsmd *d, uint64_t key, bool create);
	/* The entry's own state for DIR_MIGRATE; its length. */
	size_t (*pack)(struct dsmd *d, uint64_t key, struct home *h,
		       void *buf, size_t cap);
	/* Install state that arrived; -EINVAL if it makes no sense. */
	int (*unpack)(struct dsmd *d, uint64_t key, struct home *h,
		      const void *buf, size_t len);
	/* The entry just left for `to` (pass queued requests on) or just
	 * arrived (serve the requests parked for it). */
	void (*left)(struct dsmd *d, uint64_t key, struct home *h, int to);
	void (*arrived)(struct dsmd *d, uint64_t key, struct home *h);
	/* A request of ours (token) was refused: nobody on its way knew the
	 * master.  The kind asks again with home_ask(). */
	void (*nacked)(struct dsmd *d, uint64_t key, uint64_t token);
	/* A lookup of ours ended: master is the node to ask (with the epoch
	 * of that knowledge), or -1 when nobody alive masters the entry. */
	void (*located)(struct dsmd *d, uint64_t key, uint64_t token,
			int master, uint32_t epoch);
};

#define HOME_MAX_RANGES 64

struct home_range {
	uint64_t first, n;
	bool clear;              /* back to the cluster's policy there */
	struct wire_policy p;
};

#define HOME_KINDS 3 /* enum wire_entry_kind, 1 and 2 */

/* The home module's state (d->home). */
struct home_state {
	const struct home_kind *kinds[HOME_KINDS]; /* home_register() */
	struct wire_policy cluster;          /* dsmd's options */
	struct home_range ranges[HOME_MAX_RANGES]; /* oldest first */
	unsigned nranges;
	/* Load: distinct entries mastered here that were asked for in the
	 * current and in the previous window. */
	uint32_t win, win_count, prev_count;
	uint32_t load[WIRE_MAX_NODES];       /* as peers last reported */
	struct list queries;                 /* WHO_HAS in flight (query.c) */
	struct list policy_ops;              /* DIR_POLICY in flight
						(policy.c) */
	uint64_t next_token;
};

/* What to do with a request that reached a node. */
enum home_step {
	HOME_SERVE,   /* this node masters the entry */
	HOME_PARK,    /* the entry is on its way here: keep the request */
	HOME_FORWARD, /* pass it on to *next */
	HOME_NACK,    /* nobody known: tell the requester */
};

/* The home module (modules.c lists it before the kinds' modules, which
 * register their kind at setup). */
extern const struct dsmd_module home_module;
void home_register(struct dsmd *d, const struct home_kind *k);

int home_policy_check(const struct wire_policy *p);
const struct wire_policy *home_policy(const struct dsmd *d, uint64_t key);

/* The node the placement gives the entry, its master until it moves. */
static inline int home_placement(const struct dsmd *d, uint64_t key)
{
	return (int)(key % (uint64_t)d->cfg.nnodes);
}
bool home_is_master(const struct dsmd *d, uint64_t key,
		    const struct home *h);
/* Where this node would send a request for the entry now, with the epoch
 * of that knowledge (h NULL: nothing learnt, the placement's home). */
int home_where(const struct dsmd *d, uint64_t key, const struct home *h,
	       uint32_t *epoch);
/* Whether that is a learnt hint rather than the placement. */
static inline bool home_hinted(const struct home *h)
{
	return h && (h->flags & HOME_KNOWN) && !(h->flags & HOME_MASTER);
}
/* A message from `master` at `epoch` tells where the entry lives (a
 * master's own word replaces knowledge of the same epoch; a pointer passed
 * on by another node only older knowledge). */
void home_learn(struct dsmd *d, const struct home_kind *k, uint64_t key,
		int master, uint32_t epoch);
void home_learn_hint(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     int master, uint32_t epoch);

/* At the master: count a request of `node`. */
void home_note(struct dsmd *d, uint64_t key, struct home *h, int node);
/* At the master, with the entry idle: the node it should move to now, or
 * -1.  `first` is the node of the first request of a fresh entry.  Pages
 * follow the policy of their range; lock resources the cluster's. */
int home_decide(struct dsmd *d, const struct home_kind *k, uint64_t key,
		struct home *h, int first);
/* Hand the entry to `to`: DIR_MIGRATE, then the kind's left(). */
void home_migrate(struct dsmd *d, const struct home_kind *k, uint64_t key,
		  struct home *h, int to);

/* At a node that got a request: serve, park, forward or refuse it.  On
 * FORWARD the route is updated for the next hop. */
enum home_step home_route(struct dsmd *d, uint64_t key, struct home *h,
			  struct wire_route *rt, int *next);
/* Checks a route that came off the wire: 0 or -EINVAL. */
int home_route_check(const struct dsmd *d, int from,
		     const struct wire_route *rt);
/* The master tells the nodes that forwarded a request where it is. */
void home_tell_chain(struct dsmd *d, const struct home_kind *k,
		     uint64_t key, const struct home *h, uint64_t chain);
void home_nack(struct dsmd *d, const struct home_kind *k, uint64_t key,
	       int origin, uint64_t token);
/* How many refusals in a row (DIR_NACK, each followed by a lookup) one
 * operation takes before it gives up: every honest one is ended by its
 * lookup within a round or two, so only a cycle of pointers no lookup can
 * break gets this far (a lock's lock_refused, a page's req_nacked).  A
 * count of round trips, not a time: the same on any fabric. */
#define HOME_REFUSALS_MAX(d) (8 + 4 * (d)->cfg.nnodes)

/* Ask every live node who masters the entry.  The answer goes to the
 * kind's located() with token, or, with home_ask_for_app(), to process a
 * as the reply to its request req_id: status 0 and (value, master), or
 * -EHOSTDOWN when the master died.  The process is held until then. */
void home_ask(struct dsmd *d, const struct home_kind *k, uint64_t key,
	      uint64_t token);
void home_ask_for_app(struct dsmd *d, const struct home_kind *k,
		      uint64_t key, struct app *a, uint64_t req_id,
		      uint64_t value);

/* Entries mastered here and asked for lately (sent with heartbeats). */
uint32_t home_load(struct dsmd *d);
void home_heard_load(struct dsmd *d, int node, uint32_t load);

#endif
