/* Attached processes: IPC_ATTACH makes a client of kind APP a rank of a
 * job on this node and gives it the node's memory; IPC_DETACH, or its
 * connection closing, ends that, and every module hears of it (app_gone)
 * before the core drops the client's reference.
 *
 * One dsmd serves one job (docs/architecture.md, "Trust model"): the one
 * --job names, else the first whose process says hello.  A process's
 * hello (APP, and its lock connection) names its job and carries the
 * job's key; job_admit() refuses any other.  Within the job a rank
 * attaches once per node, and no more processes attach than the job said
 * run on this node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dsmd.h"
#include "ipc.h"
#include "log.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

void app_put(struct app *a)
{
	if (--a->refs)
		return;
	if (a->pidfd >= 0)
		close(a->pidfd);
	free(a->named);
	free(a);
}

/* A pidfd of the process at the other end of c: the kernel's own
 * (SO_PEERPIDFD), or before Linux 6.5 one opened on the pid the kernel
 * gave at accept (the process is still connected, so that pid is still
 * its own).  -1 if neither works: the process then cannot be signalled. */
static int peer_pidfd(const struct client *c)
{
	socklen_t len;
	int fd;

	len = sizeof(fd);
	if (getsockopt(c->w.fd, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 &&
	    len == sizeof(fd))
		return fd;
	fd = (int)syscall(SYS_pidfd_open, c->cred.pid, 0);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd >= 0 ? fd : -1;
}

int app_reply(struct app *a, uint64_t req_id, int status, uint64_t v1,
	      uint64_t v2)
{
	struct wire_ipc_reply r = {.status = status, .value = v1, .value2 = v2};

	if (!a->c)
		return -ENOTCONN;
	return client_reply(a->c, WIRE_IPC_REPLY, req_id, &r, sizeof(r));
}

/* The keys compared in time independent of where they differ. */
static bool key_equal(const char *a, const char *b)
{
	unsigned char diff = 0;

	for (size_t i = 0; i < WIRE_JOB_KEY_MAX; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int job_admit(struct dsmd *d, uint64_t id, const char *key)
{
	if (!job_is(d, id))
		return -EBUSY;
	if (!d->job.key_bound) {
		memcpy(d->job.key, key, sizeof(d->job.key));
		d->job.key[sizeof(d->job.key) - 1] = 0;
		d->job.key_bound = true;
		return 0;
	}
	return key_equal(d->job.key, key) ? 0 : -EACCES;
}

bool job_is(struct dsmd *d, uint64_t id)
{
	if (!d->job.bound) {
		d->job.bound = true;
		d->job.id = id;
		log_info("serving job %llu", (unsigned long long)id);
	}
	return d->job.id == id;
}

void app_detach(struct dsmd *d, struct app *a, bool died)
{
	size_t i;

	list_del(&a->link);
	for (i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->app_gone)
			dsmd_modules[i]->app_gone(d, a, died);
	a->c->app = NULL;
	a->c = NULL;
	app_put(a);
}

/* Whether this rank may attach: the job's size is the first rank's, a
 * rank attaches once, and at most local_size processes do. */
static int attach_check(struct dsmd *d, const struct wire_ipc_attach *at)
{
	struct app *a;
	uint32_t here = 0;

	if (d->job.size && d->job.size != at->size) {
		log_warn("refused an attach: rank %u says the job has %u "
			 "ranks, its first rank here said %u", at->rank,
			 at->size, d->job.size);
		return -EINVAL;
	}
	list_for_each(a, &d->apps, link) {
		if (a->rank == at->rank) {
			log_warn("refused an attach: rank %u is attached "
				 "already (process %u)", at->rank, a->pid);
			return -EEXIST;
		}
		here++;
	}
	if (here >= at->local_size) {
		log_warn("refused an attach: rank %u would be process %u on "
			 "this node, the job said %u (DSM_LOCAL_SIZE)",
			 at->rank, here + 1, at->local_size);
		return -EUSERS;
	}
	d->job.size = at->size;
	return 0;
}

static void on_attach(struct dsmd *d, struct client *c,
		      const struct wire_msg *m, int *fd)
{
	struct wire_ipc_attach_ok ok = {
		.base = d->arena.base, .size = d->arena.size,
		.page_size = WIRE_PAGE_SIZE, .node = (uint32_t)d->cfg.node,
		.nnodes = (uint32_t)d->cfg.nnodes,
	};
	struct wire_ipc_attach at;
	struct app *a;
	int ret;

	(void)fd;
	memcpy(&at, m->body, sizeof(at));
	if (c->app || at.size == 0 || at.rank >= at.size ||
	    at.local_size == 0 || at.local_size > at.size) {
		client_result(c, m->hdr->req_id, -EINVAL);
		return;
	}
	ret = attach_check(d, &at);
	if (ret) {
		d->refused.attach++;
		client_result(c, m->hdr->req_id, ret);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		client_result(c, m->hdr->req_id, -ENOMEM);
		return;
	}
	*a = (struct app){.c = c, .uffd = -1, .refs = 1, .rank = at.rank,
			  .size = at.size, .local_size = at.local_size,
			  .pid = (uint32_t)c->cred.pid, .job = d->job.id,
			  .pidfd = peer_pidfd(c)};
	a->w.fd = -1;
	list_add_head(&d->apps, &a->link);
	c->app = a;
	if (client_reply_fd(c, WIRE_IPC_ATTACH_OK, m->hdr->req_id, &ok,
			    sizeof(ok), d->memfd))
		client_close(d, c);
}

static void on_detach(struct dsmd *d, struct client *c,
		      const struct wire_msg *m, int *fd)
{
	(void)fd;
	app_detach(d, c->app, false);
	client_result(c, m->hdr->req_id, 0);
}

static const struct dsmd_ipc core_ipcs[] = {
	{WIRE_IPC_ATTACH, IPC_FROM(WIRE_IPC_KIND_APP), false, on_attach},
	{WIRE_IPC_DETACH, IPC_FROM(WIRE_IPC_KIND_APP), true, on_detach},
	{0},
};

/* The core's own requests, as a module (the first in the table). */
const struct dsmd_module core_module = {
	.name = "core",
	.ipcs = core_ipcs,
};
