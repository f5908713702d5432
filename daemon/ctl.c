/* The Unix socket through which dsmctl (and later libdsm) talk to dsmd.
 *
 * A client must open with IPC_HELLO carrying the right magic and a known
 * kind; anything else (garbage, a wrong version, a truncated or oversized
 * message, an unknown request) closes that client, is counted in
 * ipc_refused, and the daemon goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "dsmd.h"
#include "watch.h"

struct client {
	struct watch w; /* first: epoll data.ptr points here */
	struct client *next;
	int fd;
	bool hello;
	uint32_t kind;          /* WIRE_IPC_KIND_* */
	uint32_t pid;
	struct app *app;        /* an attached process (kind APP) */
	struct lclient *lk;     /* a process's lock connection (kind LOCK) */
};

int ctl_setup(struct dsmd *d)
{
	char dir[256], *slash;

	snprintf(dir, sizeof(dir), "%s", d->cfg.socket);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755); /* /run/dsm by default; fine if it exists */
	}
	d->listen_fd = ipc_listen(d->cfg.socket);
	if (d->listen_fd < 0) {
		log_err("cannot listen on Unix socket %s: %s", d->cfg.socket,
			strerror(-d->listen_fd));
		return d->listen_fd;
	}
	return 0;
}

void ctl_on_listen(struct dsmd *d)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct client *c;
	int fd;

	while ((fd = accept4(d->listen_fd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->w.kind = W_CLIENT;
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = d->clients;
		d->clients = c;
	}
}

static void client_close(struct dsmd *d, struct client *c)
{
	struct client **pp;

	check_client_gone(d, c);
	if (c->app)
		mem_app_gone(d, c->app, true); /* gone without a goodbye */
	if (c->lk)
		lock_client_gone(d, c->lk);
	for (pp = &d->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

void ctl_client_gone(struct dsmd *d, struct client *c)
{
	client_close(d, c);
}

void ctl_close_all(struct dsmd *d)
{
	while (d->clients)
		client_close(d, d->clients);
}

int ctl_reply(struct client *c, unsigned type, uint64_t req_id,
	      const void *body, size_t len)
{
	return ipc_send(c->fd, type, req_id, body, len);
}

static void refuse(struct dsmd *d, struct client *c, const char *why)
{
	d->ipc_refused++;
	log_warn("refused a client on %s: %s", d->cfg.socket, why);
	client_close(d, c);
}

static void reply_result(struct client *c, uint64_t req_id, int status)
{
	struct wire_ipc_result e = {.status = status};

	ctl_reply(c, WIRE_IPC_RESULT, req_id, &e, sizeof(e));
}

static int reply_status(struct dsmd *d, struct client *c, uint64_t req_id)
{
	size_t len = sizeof(struct wire_status_reply) +
		     (size_t)d->cfg.nnodes * sizeof(struct wire_member);
	struct wire_status_reply *r = calloc(1, len);
	struct wire_member *m;
	uint64_t now = dsmd_now_ms();
	int i, ret;

	if (!r)
		return -ENOMEM;
	*r = (struct wire_status_reply){
		.node = (uint32_t)d->cfg.node,
		.nnodes = (uint32_t)d->cfg.nnodes,
		.uptime_ms = now - d->start_ms,
		.bad_msgs = d->bad_msgs, .ipc_refused = d->ipc_refused,
		.heartbeat_ms = d->cfg.heartbeat_ms,
		.dead_after_ms = d->cfg.dead_after_ms,
		.numa_node = xport_numa_node(d->x),
	};
	snprintf(r->device, sizeof(r->device), "%s", xport_device(d->x));
	m = (struct wire_member *)(r + 1);
	for (i = 0; i < d->cfg.nnodes; i++) {
		m[i].node = (uint32_t)i;
		m[i].state = d->members[i].state;
		m[i].last_heard_ms = d->members[i].heard_any
					     ? now - d->members[i].last_heard_ms
					     : ~0ull;
		if (i != d->cfg.node) {
			xport_counters(d->x, i, &m[i].c);
			r->bad_msgs += m[i].c.bad_msgs;
		}
	}
	ret = ctl_reply(c, WIRE_IPC_STATUS_REPLY, req_id, r, len);
	free(r);
	return ret;
}

static void on_hello(struct dsmd *d, struct client *c, const struct wire_msg *m)
{
	struct wire_ipc_hello h;
	struct wire_ipc_hello_ok ok = {.node = (uint32_t)d->cfg.node,
				       .nnodes = (uint32_t)d->cfg.nnodes};

	memcpy(&h, m->body, sizeof(h));
	if (memcmp(h.magic, WIRE_IPC_MAGIC, sizeof(h.magic)) ||
	    (h.kind != WIRE_IPC_KIND_CTL && h.kind != WIRE_IPC_KIND_APP &&
	     h.kind != WIRE_IPC_KIND_LOCK)) {
		refuse(d, c, "bad handshake");
		return;
	}
	if (h.kind == WIRE_IPC_KIND_LOCK && !(c->lk = lock_client_new(d, c->fd))) {
		refuse(d, c, "out of memory");
		return;
	}
	c->hello = true;
	c->kind = h.kind;
	c->pid = h.pid;
	if (ctl_reply(c, WIRE_IPC_HELLO_OK, m->hdr->req_id, &ok, sizeof(ok)))
		client_close(d, c);
}

static void on_attach(struct dsmd *d, struct client *c, uint64_t req_id,
		      const struct wire_ipc_attach *at)
{
	struct wire_ipc_attach_ok ok = {
		.base = d->mem.base, .size = d->mem.size,
		.page_size = WIRE_PAGE_SIZE, .node = (uint32_t)d->cfg.node,
		.nnodes = (uint32_t)d->cfg.nnodes,
	};
	struct app *a;

	if (c->kind != WIRE_IPC_KIND_APP || c->app || at->size == 0 ||
	    at->rank >= at->size || at->local_size == 0 ||
	    at->local_size > at->size) {
		reply_result(c, req_id, -EINVAL);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		reply_result(c, req_id, -ENOMEM);
		return;
	}
	*a = (struct app){.c = c, .uffd = -1, .refs = 1, .rank = at->rank,
			  .size = at->size, .local_size = at->local_size,
			  .pid = c->pid, .job = at->job,
			  .next = d->mem.apps};
	d->mem.apps = a;
	c->app = a;
	if (ipc_send_fd(c->fd, WIRE_IPC_ATTACH_OK, req_id, &ok, sizeof(ok),
			d->mem.memfd))
		client_close(d, c);
}

static void reply_page(struct dsmd *d, struct client *c, uint64_t req_id,
		       const struct wire_ipc_page *p)
{
	struct wire_ipc_reply r = {0};
	uint64_t page;

	if (p->addr < d->mem.base || p->addr - d->mem.base >= d->mem.size) {
		r.status = -EFAULT;
	} else {
		page = (p->addr - d->mem.base) / WIRE_PAGE_SIZE;
		r.value = (uint64_t)mem_page_state(d, page);
		r.value2 = (uint64_t)dir_master(d, page);
		if ((int)r.value2 != d->cfg.node) {
			/* Only a master knows for sure: ask every node. */
			home_ask_for_app(d, &home_page_kind, page, c->app,
					 req_id, r.value);
			return;
		}
	}
	ctl_reply(c, WIRE_IPC_REPLY, req_id, &r, sizeof(r));
}

static void reply_stats(struct dsmd *d, struct client *c, uint64_t req_id)
{
	struct dsm_stats st = d->mem.st;
	struct wire_counters wc;
	int i;

	st.bad_msgs += d->bad_msgs;
	for (i = 0; i < d->cfg.nnodes; i++) {
		if (i == d->cfg.node)
			continue;
		xport_counters(d->x, i, &wc);
		st.bad_msgs += wc.bad_msgs;
	}
	ctl_reply(c, WIRE_IPC_STATS_REPLY, req_id, &st, sizeof(st));
}

/* Requests of an attached process. */
static bool on_app_request(struct dsmd *d, struct client *c,
			   const struct wire_msg *m, int *fd)
{
	struct wire_ipc_coll coll;
	struct wire_region_op op;
	struct wire_ipc_page pg;
	struct wire_ipc_policy pol;
	uint64_t id = m->hdr->req_id;
	int ret;

	if (m->hdr->type == WIRE_IPC_ATTACH) {
		struct wire_ipc_attach at;

		memcpy(&at, m->body, sizeof(at));
		on_attach(d, c, id, &at);
		return true;
	}
	if (!c->app)
		return false;
	switch (m->hdr->type) {
	case WIRE_IPC_UFFD:
		ret = *fd < 0 ? -EBADF : mem_attach(d, c->app, *fd);
		if (ret == 0)
			*fd = -1; /* the process's userfaultfd is ours now */
		reply_result(c, id, ret);
		return true;
	case WIRE_IPC_COLL:
		memcpy(&coll, m->body, sizeof(coll));
		ret = coll_ipc(d, c->app, id, &coll);
		if (ret)
			app_reply(c->app, id, ret, 0, 0);
		return true;
	case WIRE_IPC_REGION:
		memcpy(&op, m->body, sizeof(op));
		ret = region_ipc(d, c->app, id, &op);
		if (ret)
			app_reply(c->app, id, ret, 0, 0);
		return true;
	case WIRE_IPC_PAGE:
		memcpy(&pg, m->body, sizeof(pg));
		reply_page(d, c, id, &pg);
		return true;
	case WIRE_IPC_STATS:
		reply_stats(d, c, id);
		return true;
	case WIRE_IPC_POLICY:
		memcpy(&pol, m->body, sizeof(pol));
		ret = home_policy_ipc(d, c->app, id, &pol);
		if (ret) {
			struct wire_ipc_policy_reply r = {.status = ret};

			ctl_reply(c, WIRE_IPC_POLICY_REPLY, id, &r, sizeof(r));
		}
		return true;
	case WIRE_IPC_DETACH:
		mem_app_gone(d, c->app, false);
		c->app = NULL;
		reply_result(c, id, 0);
		return true;
	default:
		return false;
	}
}

static void on_request(struct dsmd *d, struct client *c,
		       const struct wire_msg *m, int *fd)
{
	struct wire_ipc_check req;
	struct wire_ipc_inject inj;
	int ret;

	if (c->kind == WIRE_IPC_KIND_APP) {
		if (!on_app_request(d, c, m, fd))
			refuse(d, c, "request not valid from a process");
		return;
	}
	if (c->kind == WIRE_IPC_KIND_LOCK) {
		if (!lock_ipc(d, c->lk, m))
			refuse(d, c, "request not valid on a lock connection");
		return;
	}
	switch (m->hdr->type) {
	case WIRE_IPC_INJECT:
		memcpy(&inj, m->body, sizeof(inj));
		reply_result(c, m->hdr->req_id, inject_bad_msg(d, &inj));
		return;
	case WIRE_IPC_STATUS:
		if (reply_status(d, c, m->hdr->req_id))
			client_close(d, c);
		return;
	case WIRE_IPC_STATS:
		reply_stats(d, c, m->hdr->req_id);
		return;
	case WIRE_IPC_CHECK:
		memcpy(&req, m->body, sizeof(req));
		ret = check_start(d, c, m->hdr->req_id, &req);
		if (ret)
			reply_result(c, m->hdr->req_id, ret);
		return;
	default:
		refuse(d, c, "request not valid from a client");
		return;
	}
}

void ctl_on_client(struct dsmd *d, struct client *c)
{
	char *buf = malloc(WIRE_IPC_MAX);
	enum wire_error bad = WIRE_OK;
	struct wire_msg m;
	int ret, fd = -1;

	if (!buf) {
		client_close(d, c);
		return;
	}
	ret = ipc_recv_fd(c->fd, buf, WIRE_IPC_MAX, 0, &m, &bad, &fd);
	if (ret == -ETIMEDOUT) {
		/* Spurious wake-up. */
	} else if (ret == -EPROTO) {
		refuse(d, c, wire_error_str(bad));
	} else if (ret) {
		client_close(d, c); /* hung up */
	} else if (!c->hello) {
		if (m.hdr->type == WIRE_IPC_HELLO)
			on_hello(d, c, &m);
		else
			refuse(d, c, "first message is not a hello");
	} else {
		on_request(d, c, &m, &fd);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
}
