/* Between the files of the home module (home.c: knowledge, counting,
 * moving, routing; query.c: asking every node; policy.c: policies). */
#ifndef DSMD_HOME_INT_H
#define DSMD_HOME_INT_H

#include "home.h"

static inline uint64_t bit(int node)
{
	return 1ull << node;
}

/* Times in entries: the core's milliseconds, truncated to 32 bits. */
static inline uint32_t now32(const struct dsmd *d)
{
	return (uint32_t)dsmd_now_ms(d);
}

static inline uint32_t window_of(const struct wire_policy *p)
{
	return p->window_ms ? p->window_ms : 1;
}

/* The kind registered for enum wire_entry_kind `kind`, or NULL. */
const struct home_kind *home_kind_of(const struct dsmd *d, uint32_t kind);
/* Learn where an entry lives (own_word: the master's own word, which
 * replaces knowledge of the same epoch). */
void home_learn_word(struct dsmd *d, const struct home_kind *k, uint64_t key,
		     int master, uint32_t epoch, bool own_word);
void home_send_where(struct dsmd *d, int to, unsigned type, uint64_t id,
		     unsigned kind, uint64_t key, int master, int hint,
		     uint32_t epoch);

/* query.c */
void home_on_who_has(struct dsmd *d, const struct home_kind *k, int from,
		     uint64_t id, const struct wire_dir_where *w);
void home_on_who_has_reply(struct dsmd *d, int from, uint64_t id,
			   const struct wire_dir_where *w);
void home_queries_peer_down(struct dsmd *d, int node);
void home_queries_tick(struct dsmd *d);
void home_queries_free(struct dsmd *d);

/* policy.c */
/* A process's policy request: 0 (answered now or once every node has
 * applied it) or the error to answer with. */
int home_policy_ipc(struct dsmd *d, struct app *a, uint64_t req_id,
		    const struct wire_ipc_policy *req);
void home_on_policy_ipc(struct dsmd *d, struct client *c,
			const struct wire_msg *m, int *fd);
void home_on_policy_msg(struct dsmd *d, int from, const struct wire_msg *m);
void home_policy_peer_down(struct dsmd *d, int node);
void home_policy_free(struct dsmd *d);

#endif
