/* Processes for the lock manager's tests on the in-memory transport
 * (test_lock.c, test_explore.c): socket pairs whose dsmd end is a lock
 * connection.  Each process has a struct client of its own, on no list
 * and watched by nobody: a test hands its IPC_LOCK requests, as libdsm
 * sends them, to the handler the module table gives that type, and reads
 * the events dsmd sent it off its end. */
#ifndef DSM_LOCK_HARNESS_H
#define DSM_LOCK_HARNESS_H

#include "dsm_harness.h"

#include <fcntl.h>
#include <sys/socket.h>

#include "ipc.h"
#include "lock/lock.h"
#include "modules.h"

#define NPROC 8

struct proc {
	int node;
	struct client c;       /* its lock connection; c.lk once it asked */
	int fd[2];             /* dsmd's end, the process's end */
	unsigned basts;
	int bast_mode;
	uint64_t next_lkid;
};

static struct proc P[NPROC];
static unsigned nprocs;
static uint64_t next_req;

static inline struct proc *proc_new(int node)
{
	struct proc *p = &P[nprocs++];

	*p = (struct proc){.node = node, .bast_mode = -1};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fd))
		abort();
	p->c = (struct client){.hello = true, .kind = WIRE_IPC_KIND_LOCK};
	client_init(&p->c, NULL); /* unwatched: the test flushes it */
	p->c.w.fd = p->fd[0];
	list_init(&p->c.link);
	return p;
}

/* Stashed completions, read off a process's socket. */
struct done {
	uint64_t req;
	struct wire_ipc_lock_event ev;
};
static struct done dones[256];
static unsigned ndones;

/* Close every process's sockets (after the daemons let go of them). */
static inline void procs_close(void)
{
	for (unsigned i = 0; i < nprocs; i++) {
		close(P[i].fd[0]);
		close(P[i].fd[1]);
	}
	nprocs = 0;
	ndones = 0;
}

/* One IPC_LOCK from process p, as libdsm sends it; the request id. */
static inline uint64_t ipc(struct proc *p, struct wire_ipc_lock *q)
{
	unsigned char buf[sizeof(struct wire_hdr) + sizeof(*q)];
	struct wire_msg m;
	struct dsmd *d = &tc.d[p->node];
	const struct dsmd_ipc *h = d->ipc_of[WIRE_IPC_LOCK];
	uint64_t id = ++next_req;
	int fd = -1;

	wire_build(buf, sizeof(buf), WIRE_IPC_LOCK, id, q, sizeof(*q));
	if (wire_decode(buf, sizeof(buf), WIRE_CH_IPC, &m) != WIRE_OK ||
	    dsmd_ipc_owner(d, WIRE_IPC_LOCK) != &lock_module || !h ||
	    !(h->from & IPC_FROM(p->c.kind)))
		abort();
	h->fn(d, &p->c, &m, &fd);
	if (!p->c.lk) /* made at the first request */
		abort();
	return id;
}

/* A new lock of p on name (under parent lkid), or a conversion of lkid
 * when flags has DSM_LKF_CONVERT.  *lkid gets the lock's id. */
static inline uint64_t lock_req(struct proc *p, uint64_t *lkid, int mode,
			 uint32_t flags, const char *name, uint64_t parent,
			 unsigned timeout_ms, bool bast)
{
	struct wire_ipc_lock q = {.op = WIRE_IPC_LK_LOCK, .flags = flags,
				  .mode = (uint32_t)mode,
				  .timeout_ms = timeout_ms, .parent = parent,
				  .bast = bast};

	if (!(flags & DSM_LKF_CONVERT)) {
		*lkid = ++p->next_lkid;
		q.name_len = (uint32_t)strlen(name);
		memcpy(q.name, name, q.name_len > WIRE_LOCK_NAME_MAX ?
			       WIRE_LOCK_NAME_MAX : q.name_len);
	}
	q.lkid = *lkid;
	return ipc(p, &q);
}

static inline uint64_t unlock_req(struct proc *p, uint64_t lkid, uint32_t flags,
			   const char *lvb)
{
	struct wire_ipc_lock q = {.op = WIRE_IPC_LK_UNLOCK, .flags = flags,
				  .lkid = lkid};

	if (lvb)
		memcpy(q.lvb, lvb, strlen(lvb) + 1);
	return ipc(p, &q);
}

static inline void drain(struct proc *p)
{
	char buf[256];
	struct wire_msg m;
	struct wire_ipc_lock_event ev;

	while (ipc_recv(p->fd[1], buf, sizeof(buf), 0, &m, NULL) == 0) {
		memcpy(&ev, m.body, sizeof(ev));
		if (ev.kind == WIRE_IPC_LKE_BAST) {
			p->basts++;
			p->bast_mode = (int)ev.mode;
		} else if (ndones < 256) {
			dones[ndones++] = (struct done){m.hdr->req_id, ev};
		}
	}
}

/* The suite's teardown (the runner calls it after every test): the
 * daemons first (the lock module lets go of the clients), then the
 * processes' sockets. */
static inline void lteardown(void)
{
	teardown();
	procs_close();
}

/* A name whose placement puts its master on node m. */
static inline const char *name_on(int m, const char *prefix)
{
	static char names[8][32];
	static unsigned next;
	char *s = names[next++ % 8];

	for (unsigned i = 0;; i++) {
		snprintf(s, 32, "%s%u", prefix, i);
		if ((int)(lock_key(0, s, strlen(s)) % (uint64_t)tc.n) == m)
			return s;
	}
}

#endif
