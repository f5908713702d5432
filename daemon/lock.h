/* The lock manager inside dsmd (daemon/lock.c).
 *
 * Two sides, like the directory: the owner side keeps the locks of this
 * node's processes (one lock connection each) and talks to masters; the
 * master side keeps, per resource it masters, the granted, converting and
 * waiting queues and the value block.  Resources are directory entries of
 * kind WIRE_ENTRY_LOCK: home.c places, counts and moves them as it does
 * pages.
 */
#ifndef DSMD_LOCK_H
#define DSMD_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"
#include "home.h"

struct dsmd;
struct lclient;

#define LOCK_DEADLOCK_MS 1000 /* default wait before a deadlock search */

extern const struct home_kind home_lock_kind;

int lock_setup(struct dsmd *d);
void lock_teardown(struct dsmd *d);
/* The lock manager's timer fd (deadlines and searches), for the loop. */
int lock_timer_fd(const struct dsmd *d);
void *lock_watch(struct dsmd *d);
void lock_on_timer(struct dsmd *d);
/* A process opened a lock connection (events are sent on fd); NULL when
 * out of memory. */
struct lclient *lock_client_new(struct dsmd *d, int fd);
/* Its connection closed: its locks are released, its waits cancelled. */
void lock_client_gone(struct dsmd *d, struct lclient *lc);
/* A request on a lock connection; false if the type is not one. */
bool lock_ipc(struct dsmd *d, struct lclient *lc, const struct wire_msg *m);
void lock_on_msg(struct dsmd *d, int from, const struct wire_msg *m);
void lock_peer_down(struct dsmd *d, int node);

/* The standard compatibility of two modes (enum dsm_lock_mode). */
bool lock_compatible(unsigned a, unsigned b);
/* A resource's key: its parent's key and its name, hashed; never 0. */
uint64_t lock_key(uint64_t parent, const char *name, size_t len);

#endif
