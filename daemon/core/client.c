/* Clients: the Unix socket through which dsmctl and libdsm talk to dsmd.
 *
 * A client must open with IPC_HELLO carrying the right magic and a known
 * kind; anything else (garbage, a wrong version, a truncated or oversized
 * message, a request not valid on its kind of connection) closes that
 * client, is counted in ipc_refused, and the daemon goes on.  Every other
 * request goes to the module that handles its type (struct dsmd_ipc).
 * The peer's credentials are read at accept (SO_PEERCRED): a process's pid
 * is the kernel's word, not the client's, and who may connect at all is
 * access.c's to say.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsmd.h"
#include "ipc.h"
#include "log.h"

static void on_client(struct dsmd *d, struct watch *w, uint32_t events);
static void out_free(struct client *c);

bool client_count_refusal(struct dsmd *d)
{
	uint64_t n = ++d->ipc_refused;

	return n <= 16 || (n & (n - 1)) == 0;
}

/* A connection dsmd will not serve: closed at once, counted, logged. */
static void turn_away(struct dsmd *d, int fd, const char *why)
{
	close(fd);
	if (client_count_refusal(d))
		log_warn("refused a client on %s: %s; %llu refused so far",
			 d->cfg.socket, why,
			 (unsigned long long)d->ipc_refused);
}

/* Out of descriptors (EMFILE, ENFILE): the listening socket stays
 * readable, and a loop that only retries spins.  As libuv does, let the
 * spare descriptor go, accept the connection with it and close it at
 * once, then take the spare again: the client sees EOF, dsmd goes on. */
static bool shed(struct dsmd *d, int lfd)
{
	int fd;

	if (d->spare_fd < 0)
		return false;
	close(d->spare_fd);
	d->spare_fd = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		turn_away(d, fd, "dsmd is out of file descriptors");
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0;
}

static void on_listen(struct dsmd *d, struct watch *w, uint32_t events)
{
	struct client *c;
	struct ucred cred;
	socklen_t len;
	int fd, ret;

	(void)events;
	for (;;) {
		fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) &&
			    shed(d, w->fd))
				continue;
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			return; /* EAGAIN: none left */
		}
		if (d->nclients >= (d->cfg.max_clients ? d->cfg.max_clients
							: DSMD_MAX_CLIENTS)) {
			turn_away(d, fd, "too many clients (--max-clients)");
			continue;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
			log_warn("dropped a client: %s", strerror(errno));
			close(fd);
			continue;
		}
		if (!access_allowed(d, fd, &cred)) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			turn_away(d, fd, "out of memory");
			continue;
		}
		client_init(c, d);
		ret = watch_add(d, &c->w, fd, EPOLLIN, on_client);
		if (ret) {
			log_warn("dropped a client: %s", strerror(-ret));
			close(fd);
			free(c);
			continue;
		}
		c->cred.pid = cred.pid;
		c->cred.uid = cred.uid;
		c->cred.gid = cred.gid;
		list_add_head(&d->clients, &c->link);
		d->nclients++;
	}
}

int client_listen(struct dsmd *d)
{
	int ret;

	d->listen_fd = access_listen(d);
	if (d->listen_fd < 0)
		return d->listen_fd;
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = watch_add(d, &d->listen_w, d->listen_fd, EPOLLIN, on_listen);
	if (ret)
		log_err("watching %s: %s", d->cfg.socket, strerror(-ret));
	return ret;
}

void client_close(struct dsmd *d, struct client *c)
{
	size_t i;

	if (c->app)
		app_detach(d, c->app, true); /* gone without a goodbye */
	for (i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->client_gone)
			dsmd_modules[i]->client_gone(d, c);
	list_del(&c->link);
	if (c->d)
		d->nclients--;
	watch_del(d, &c->w);
	out_free(c);
	close(c->w.fd);
	free(c);
}

void client_close_all(struct dsmd *d)
{
	struct client *c, *tmp;

	list_for_each_safe(c, tmp, &d->clients, link)
		client_close(d, c);
}

/* A reply that did not fit in the client's socket, sent on EPOLLOUT. */
struct out_msg {
	struct list link;
	size_t len;
	int pass_fd;            /* ours (a dup), or -1 */
	unsigned char buf[];
};

void client_init(struct client *c, struct dsmd *d)
{
	c->d = d;
	list_init(&c->out);
	c->out_bytes = 0;
	c->out_max = d && d->cfg.client_queue_kb ?
			     (size_t)d->cfg.client_queue_kb << 10 :
			     CLIENT_OUT_MAX;
	c->out_broken = false;
}

static void set_events(struct client *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = &c->w};

	if (c->d)
		epoll_ctl(c->d->epfd, EPOLL_CTL_MOD, c->w.fd, &ev);
}

static void out_free(struct client *c)
{
	struct out_msg *o, *tmp;

	list_for_each_safe(o, tmp, &c->out, link) {
		list_del(&o->link);
		if (o->pass_fd >= 0)
			close(o->pass_fd);
		free(o);
	}
	c->out_bytes = 0;
}

/* The queue is over its bound (--client-queue-kb): a process that does not read its
 * connection is cut off (shutdown: it reads EOF, libdsm's calls get -EIO;
 * dsmd's loop then sees the hang-up and closes the client) rather than
 * losing replies in silence or growing dsmd. */
static int out_overflow(struct client *c)
{
	log_warn("a client (pid %d) left over %zu bytes of replies unread: "
		 "cut off", (int)c->cred.pid, c->out_max);
	c->out_broken = true;
	if (c->d)
		c->d->refused.queues++;
	out_free(c);
	shutdown(c->w.fd, SHUT_RDWR);
	return -ENOBUFS;
}

void client_flush(struct client *c)
{
	struct out_msg *o, *tmp;
	int ret;

	list_for_each_safe(o, tmp, &c->out, link) {
		ret = ipc_send_raw(c->w.fd, o->buf, o->len, o->pass_fd);
		if (ret == -EAGAIN)
			return;
		list_del(&o->link);
		c->out_bytes -= o->len;
		if (o->pass_fd >= 0)
			close(o->pass_fd);
		free(o);
		if (ret)
			break; /* the connection is gone: its hang-up closes it */
	}
	out_free(c);
	set_events(c, EPOLLIN);
}

int client_reply_fd(struct client *c, unsigned type, uint64_t req_id,
		    const void *body, size_t len, int pass_fd)
{
	size_t n = sizeof(struct wire_hdr) + len;
	struct out_msg *o;
	int ret;

	if (c->out_broken)
		return -ENOBUFS;
	if (list_empty(&c->out)) {
		ret = ipc_send_fd(c->w.fd, type, req_id, body, len, pass_fd);
		if (ret != -EAGAIN)
			return ret;
	}
	if (n > WIRE_IPC_MAX)
		return -EMSGSIZE;
	if (c->out_bytes + n > c->out_max)
		return out_overflow(c);
	o = malloc(sizeof(*o) + n);
	if (!o)
		return out_overflow(c);
	o->len = n;
	o->pass_fd = pass_fd >= 0 ? fcntl(pass_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (pass_fd >= 0 && o->pass_fd < 0) {
		free(o);
		return out_overflow(c);
	}
	wire_build(o->buf, n, type, req_id, body, len);
	if (list_empty(&c->out))
		set_events(c, EPOLLIN | EPOLLOUT);
	list_add_tail(&c->out, &o->link);
	c->out_bytes += n;
	return 0;
}

int client_reply(struct client *c, unsigned type, uint64_t req_id,
		 const void *body, size_t len)
{
	return client_reply_fd(c, type, req_id, body, len, -1);
}

void client_result(struct client *c, uint64_t req_id, int status)
{
	struct wire_ipc_result e = {.status = status};

	client_reply(c, WIRE_IPC_RESULT, req_id, &e, sizeof(e));
}

void client_refuse(struct dsmd *d, struct client *c, const char *why)
{
	d->ipc_refused++;
	log_warn("refused a client on %s: %s", d->cfg.socket, why);
	client_close(d, c);
}

/* A process of another job, or without the job's key: told why (its
 * dsm_init fails with the errno), counted, logged, closed. */
static void refuse_job(struct dsmd *d, struct client *c, uint64_t req_id,
		       uint64_t job, int err)
{
	client_result(c, req_id, err);
	d->refused.job++;
	if (client_count_refusal(d))
		log_warn("refused a process on %s: uid %u (pid %d) %s job "
			 "%llu, this node serves job %llu; %llu refused so "
			 "far", d->cfg.socket, c->cred.uid, (int)c->cred.pid,
			 err == -EBUSY ? "is of" : "has not the key of",
			 (unsigned long long)job,
			 (unsigned long long)d->job.id,
			 (unsigned long long)d->ipc_refused);
	client_close(d, c);
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
		client_refuse(d, c, "bad handshake");
		return;
	}
	if (h.kind != WIRE_IPC_KIND_CTL) {
		int ret = job_admit(d, h.job, h.key);

		if (ret) {
			refuse_job(d, c, m->hdr->req_id, h.job, ret);
			return;
		}
	}
	c->hello = true;
	c->kind = h.kind;
	if (client_reply(c, WIRE_IPC_HELLO_OK, m->hdr->req_id, &ok,
			 sizeof(ok)))
		client_close(d, c);
}

/* A request after the hello: to its module, if valid on this client. */
static void on_request(struct dsmd *d, struct client *c,
		       const struct wire_msg *m, int *fd)
{
	unsigned type = m->hdr->type;
	const struct dsmd_ipc *h = type < WIRE_TYPE_MAX ? d->ipc_of[type]
							: NULL;

	if (!h || !(h->from & IPC_FROM(c->kind)) ||
	    (h->attached && c->kind == WIRE_IPC_KIND_APP && !c->app)) {
		client_refuse(d, c, "request not valid on this connection");
		return;
	}
	h->fn(d, c, m, fd);
}

static void on_client(struct dsmd *d, struct watch *w, uint32_t events)
{
	struct client *c = container_of(w, struct client, w);
	char *buf = malloc(WIRE_IPC_MAX);
	enum wire_error bad = WIRE_OK;
	struct wire_msg m;
	int ret, fd = -1;

	if (events & EPOLLOUT)
		client_flush(c);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		free(buf);
		return;
	}
	if (!buf) {
		client_close(d, c);
		return;
	}
	ret = ipc_recv_fd(w->fd, buf, WIRE_IPC_MAX, 0, &m, &bad, &fd);
	if (ret == -ETIMEDOUT) {
		/* Spurious wake-up. */
	} else if (ret == -EPROTO) {
		client_refuse(d, c, wire_error_str(bad));
	} else if (ret) {
		client_close(d, c); /* hung up */
	} else if (!c->hello) {
		if (m.hdr->type == WIRE_IPC_HELLO)
			on_hello(d, c, &m);
		else
			client_refuse(d, c, "first message is not a hello");
	} else {
		on_request(d, c, &m, &fd);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
}
