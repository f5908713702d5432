/* The collectives module: coll.c counts and decides collectives (barrier,
 * alloc, free); region.c keeps node 0's allocator of the arena, the
 * regions it handed out (collective and named), and the resets that
 * return a freed range zero filled.  Its one private header.
 */
#ifndef DSMD_COLL_H
#define DSMD_COLL_H

#include "dsmd.h"

/* An allocated range of the arena (node 0). */
struct region {
	struct list link;       /* coll_state.regions */
	uint64_t first, npages, bytes;
	unsigned refs;          /* named regions: processes that opened it */
	bool named;
	char name[WIRE_NAME_MAX];
};

/* The module's state (d->coll). */
struct coll_state {
	struct list colls;      /* struct coll being counted */
	struct list regions;    /* node 0: struct region */
	uint64_t *free_ext;     /* node 0: free extents, pairs first,n */
	size_t nfree_ext, cap_ext;
	bool job_aborted;       /* a rank died: collectives fail */
	struct list resets;     /* node 0: struct reset awaiting acks */
	uint64_t region_tag;
	unsigned nregions;      /* node 0: on regions */
};

/* coll.c: tell every node that collective seq ended. */
void coll_broadcast_done(struct dsmd *d, uint64_t seq, int status,
			 uint64_t value);

/* region.c */
int region_setup(struct dsmd *d);
void region_teardown(struct dsmd *d);
/* A new region of `bytes`: its first page, or a negative errno. */
int64_t region_new(struct dsmd *d, uint64_t bytes, const char *name,
		   struct region **out);
/* The collective (named false) or named region at addr, or NULL. */
struct region *region_at(struct dsmd *d, uint64_t addr, bool named);
/* Take r out and reset its range on every node before it is free again;
 * then, if coll, collective seq ends. */
void region_free(struct dsmd *d, struct region *r, bool coll, uint64_t seq);
void region_on_ipc(struct dsmd *d, struct client *c, const struct wire_msg *m,
		   int *fd);
void region_on_op(struct dsmd *d, int from, const struct wire_msg *m);
void region_on_reply(struct dsmd *d, int from, const struct wire_msg *m);
void region_on_reset_ack(struct dsmd *d, int from, const struct wire_msg *m);
void region_peer_down(struct dsmd *d, int node);
void region_app_gone(struct dsmd *d, struct app *a);

#endif
