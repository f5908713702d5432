/* The lock API of libdsm (include/dsm.h, "the lock manager").
 *
 * Locks travel on a connection of their own to the node's dsmd, opened at
 * the first lock call, because answers come whenever masters answer, not
 * in the order of the requests, and blocking notifications come unasked.
 * Two threads of the library serve it:
 *
 *   the reader   reads every event off the connection: it wakes the
 *                caller of a blocking request, fills the lock status block
 *                of an asynchronous one and queues its callback; it never
 *                runs the caller's code, so a callback that blocks on a
 *                lock call of its own cannot stop the answer it waits for
 *                from being read;
 *   the runner   runs the queued callbacks, one at a time, in order.
 *
 * The library keeps its own table of the process's locks (lkid, status
 * block, callbacks, state), so arguments that name a lock are checked
 * before anything is sent: a refused asynchronous call never calls back.
 *
 * The caller's memory (the status block, the name) is never touched with
 * L.mu held: it may be in shared memory, where touching it can fault and
 * wait for the network, and the reader must not wait behind that.  A
 * blocking call fills its own block after its answer, outside the mutex;
 * the reader fills an asynchronous call's block, outside the mutex too,
 * before it queues the callback.
 */
#define _GNU_SOURCE
#include <dsm.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "locks.h"

enum { LKS_WAITING = 1, LKS_GRANTED, LKS_CONVERTING };

struct lk {
	struct lk *next;
	uint64_t lkid;
	struct dsm_lksb *lksb;
	dsm_ast_fn ast;
	dsm_bast_fn bast;
	void *arg;
	uint64_t parent;
	unsigned children;
	int state;
};

/* A request waiting for its COMPLETE event. */
struct pend {
	struct pend *next;
	uint64_t req, lkid;
	bool sync, done;
	int status;            /* the answer: */
	uint32_t sbflags;
	bool has_lvb;
	char lvb[DSM_LVB_LEN];
	struct dsm_lksb *lksb; /* filled on completion, NULL: not a request */
	dsm_ast_fn ast;        /* asynchronous: called on completion */
	void *arg;
};

struct cb {
	struct cb *next;
	dsm_ast_fn ast;
	dsm_bast_fn bast;
	void *arg;
	int mode;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t done_cv, cb_cv;
	int fd;
	bool open, broken, stopping;
	pthread_t reader, runner;
	uint64_t next_lkid, next_req;
	struct lk *locks;
	struct pend *pends;
	struct cb *cb_head, **cb_tail;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER,
       .cb_cv = PTHREAD_COND_INITIALIZER, .fd = -1};

static struct lk *find_lk(uint64_t lkid)
{
	struct lk *k;

	for (k = L.locks; k; k = k->next)
		if (k->lkid == lkid)
			return k;
	return NULL;
}

static void drop_lk(uint64_t lkid)
{
	struct lk **pp, *k;

	for (pp = &L.locks; (k = *pp); pp = &k->next) {
		if (k->lkid == lkid) {
			*pp = k->next;
			if (k->parent) {
				struct lk *p = find_lk(k->parent);

				if (p)
					p->children--;
			}
			free(k);
			return;
		}
	}
}

static struct pend *take_pend(uint64_t req)
{
	struct pend **pp, *p;

	for (pp = &L.pends; (p = *pp); pp = &p->next) {
		if (p->req == req) {
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

/* With L.mu held. */
static void queue_cb(dsm_ast_fn ast, dsm_bast_fn bast, void *arg, int mode)
{
	struct cb *c = calloc(1, sizeof(*c));

	if (!c)
		return; /* out of memory: the callback is lost, not the lock */
	*c = (struct cb){.ast = ast, .bast = bast, .arg = arg, .mode = mode};
	*L.cb_tail = c;
	L.cb_tail = &c->next;
	pthread_cond_signal(&L.cb_cv);
}

/* A request's answer into its status block: without L.mu (see the top). */
static void fill_lksb(struct dsm_lksb *lksb, const struct pend *p)
{
	lksb->status = p->status;
	lksb->flags = p->sbflags;
	if (p->has_lvb)
		memcpy(lksb->lvb, p->lvb, sizeof(lksb->lvb));
}

/* With L.mu held: a request ended.  A blocking one's caller is woken; an
 * asynchronous one is returned, for the reader to fill its block and queue
 * its callback once the mutex is let go. */
static struct pend *on_complete(uint64_t req,
				const struct wire_ipc_lock_event *ev)
{
	struct pend *p = take_pend(req);
	struct lk *k;

	_Static_assert(sizeof(p->lvb) == sizeof(ev->lvb), "value blocks");
	if (!p)
		return NULL;
	p->status = ev->status;
	p->sbflags = ev->sbflags;
	p->has_lvb = ev->has_lvb;
	memcpy(p->lvb, ev->lvb, sizeof(p->lvb));
	k = find_lk(p->lkid);
	if (p->lksb) {
		if (k && k->state == LKS_WAITING && ev->status)
			drop_lk(p->lkid); /* never granted: no lock */
		else if (k && (k->state == LKS_WAITING ||
			       k->state == LKS_CONVERTING))
			k->state = LKS_GRANTED;
	}
	if (p->sync) {
		p->done = true;
		pthread_cond_broadcast(&L.done_cv);
		return NULL;
	}
	return p;
}

/* An asynchronous request's end, L.mu not held: its block, then its
 * callback. */
static void end_async(struct pend *p)
{
	if (p->lksb)
		fill_lksb(p->lksb, p);
	pthread_mutex_lock(&L.mu);
	if (p->ast)
		queue_cb(p->ast, NULL, p->arg, 0);
	pthread_mutex_unlock(&L.mu);
	free(p);
}

/* With L.mu held: dsmd went away (or we are closing).  Every request in
 * flight fails with -EIO: blocking callers are woken, asynchronous ones
 * are returned as a list, to be ended without the mutex. */
static struct pend *fail_all(void)
{
	struct pend *p, *next, *async = NULL, **keep = &L.pends;

	L.broken = true;
	for (p = L.pends; p; p = next) {
		next = p->next;
		p->status = -EIO;
		p->sbflags = 0;
		p->has_lvb = false;
		if (p->sync) {
			p->done = true;
			*keep = p;
			keep = &p->next;
		} else {
			p->next = async;
			async = p;
		}
	}
	*keep = NULL;
	pthread_cond_broadcast(&L.done_cv);
	pthread_cond_signal(&L.cb_cv);
	return async;
}

static void *reader(void *unused)
{
	char buf[512];
	struct wire_msg m;
	struct wire_ipc_lock_event ev;
	struct pend *done;

	(void)unused;
	for (;;) {
		int ret = ipc_recv(L.fd, buf, sizeof(buf), -1, &m, NULL);

		done = NULL;
		pthread_mutex_lock(&L.mu);
		if (ret) {
			done = fail_all();
			pthread_mutex_unlock(&L.mu);
			while (done) {
				struct pend *next = done->next;

				end_async(done);
				done = next;
			}
			return NULL;
		}
		if (m.hdr->type == WIRE_IPC_LOCK_EVENT) {
			memcpy(&ev, m.body, sizeof(ev));
			if (ev.kind == WIRE_IPC_LKE_COMPLETE) {
				done = on_complete(m.hdr->req_id, &ev);
			} else if (ev.kind == WIRE_IPC_LKE_BAST) {
				struct lk *k = find_lk(ev.lkid);

				if (k && k->bast)
					queue_cb(NULL, k->bast, k->arg,
						 (int)ev.mode);
			}
		}
		pthread_mutex_unlock(&L.mu);
		if (done)
			end_async(done);
	}
}

static void *runner(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&L.mu);
	for (;;) {
		struct cb *c;

		while (!L.cb_head && !L.stopping)
			pthread_cond_wait(&L.cb_cv, &L.mu);
		if (!L.cb_head)
			break;
		c = L.cb_head;
		L.cb_head = c->next;
		if (!L.cb_head)
			L.cb_tail = &L.cb_head;
		pthread_mutex_unlock(&L.mu);
		if (c->ast)
			c->ast(c->arg);
		else
			c->bast(c->arg, c->mode);
		free(c);
		pthread_mutex_lock(&L.mu);
	}
	pthread_mutex_unlock(&L.mu);
	return NULL;
}

/* With L.mu held: the connection, opened on first use. */
static int open_conn(void)
{
	struct wire_ipc_hello_ok hello;
	const char *key;
	uint64_t job;
	int fd;

	if (L.open)
		return L.broken ? -EIO : 0;
	if (!libdsm_up())
		return -ENOTCONN;
	key = libdsm_job(&job);
	fd = ipc_client_open(ipc_socket_path(), WIRE_IPC_KIND_LOCK, job, key,
			     5000, &hello);
	if (fd < 0)
		return fd == -ETIMEDOUT ? -EIO : fd;
	L.fd = fd;
	L.cb_tail = &L.cb_head;
	L.broken = L.stopping = false;
	if (pthread_create(&L.reader, NULL, reader, NULL)) {
		close(fd);
		L.fd = -1;
		return -ENOMEM;
	}
	if (pthread_create(&L.runner, NULL, runner, NULL)) {
		shutdown(fd, SHUT_RDWR);
		pthread_join(L.reader, NULL);
		close(fd);
		L.fd = -1;
		return -ENOMEM;
	}
	L.open = true;
	return 0;
}

/* With L.mu held: send q and, for a blocking call, wait for its answer,
 * which is copied to *answer (its status, flags and value block) for the
 * caller to put in its block once it has let go of the mutex. */
static int request(struct wire_ipc_lock *q, struct dsm_lksb *lksb, bool sync,
		   dsm_ast_fn ast, void *arg, struct pend *answer)
{
	struct pend *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	*p = (struct pend){.req = ++L.next_req, .lkid = q->lkid, .sync = sync,
			   .lksb = lksb, .ast = sync ? NULL : ast, .arg = arg};
	p->next = L.pends;
	L.pends = p;
	ret = ipc_send(L.fd, WIRE_IPC_LOCK, p->req, q, sizeof(*q));
	if (ret) {
		take_pend(p->req);
		free(p);
		return ret == -EPIPE || ret == -ECONNRESET ? -EIO : ret;
	}
	if (!sync)
		return 0;
	while (!p->done)
		pthread_cond_wait(&L.done_cv, &L.mu);
	ret = p->status;
	take_pend(p->req); /* still listed only if the connection broke */
	if (answer) {
		*answer = *p;
		answer->done = true;
	}
	free(p);
	return ret;
}

int dsm_lock(int mode, struct dsm_lksb *lksb, uint32_t flags,
	     const char *name, uint64_t parent, unsigned timeout_ms,
	     dsm_ast_fn ast, dsm_bast_fn bast, void *arg)
{
	struct wire_ipc_lock q = {.op = WIRE_IPC_LK_LOCK, .flags = flags,
				  .mode = (uint32_t)mode,
				  .timeout_ms = timeout_ms,
				  .bast = bast != NULL};
	bool convert = flags & DSM_LKF_CONVERT, sync = !(flags & DSM_LKF_ASYNC);
	struct pend answer = {.done = false};
	struct lk *k = NULL;
	bool asked = false;     /* a request was made: the block gets its end */
	uint64_t lkid = 0;
	size_t len = 0;
	int ret;

	if (!lksb || mode < DSM_LK_NL || mode > DSM_LK_EX ||
	    (flags & ~(uint32_t)(DSM_LKF_NOQUEUE | DSM_LKF_CONVERT |
				 DSM_LKF_ASYNC | DSM_LKF_VALBLK)) ||
	    (!sync && !ast))
		return -EINVAL;
	if (!convert) {
		if (!name || !*name)
			return -EINVAL;
		len = strnlen(name, DSM_LOCK_NAME_MAX + 1);
		if (len > DSM_LOCK_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(q.name, name, len);
		q.name_len = (uint32_t)len;
	} else {
		/* Read before the mutex (see the top). */
		lkid = lksb->lkid;
		memcpy(q.lvb, lksb->lvb, sizeof(q.lvb));
	}
	pthread_mutex_lock(&L.mu);
	ret = open_conn();
	if (ret)
		goto out;
	if (convert) {
		k = find_lk(lkid);
		ret = !k ? -ENOLCK : k->state != LKS_GRANTED ? -EBUSY : 0;
		if (ret)
			goto out;
		q.lkid = k->lkid;
		k->state = LKS_CONVERTING;
		k->ast = ast;
		k->bast = bast;
		k->arg = arg;
	} else {
		struct lk *pk = parent ? find_lk(parent) : NULL;

		if (parent && (!pk || pk->state == LKS_WAITING)) {
			ret = -ENOLCK;
			goto out;
		}
		k = calloc(1, sizeof(*k));
		if (!k) {
			ret = -ENOMEM;
			goto out;
		}
		*k = (struct lk){.lkid = ++L.next_lkid, .lksb = lksb,
				 .ast = ast, .bast = bast, .arg = arg,
				 .parent = parent, .state = LKS_WAITING};
		if (pk)
			pk->children++;
		k->next = L.locks;
		L.locks = k;
		lkid = k->lkid;
		q.lkid = k->lkid;
		q.parent = parent;
	}
	if (!sync) {
		/* The block says "in progress" and names its lock before the
		 * answer can come (the reader then fills it). */
		pthread_mutex_unlock(&L.mu);
		lksb->lkid = lkid;
		lksb->status = -EINPROGRESS;
		pthread_mutex_lock(&L.mu);
	}
	asked = true;
	ret = request(&q, lksb, sync, ast, arg, &answer);
	if (ret && !sync) {
		/* Not sent: no callback will come. */
		if (convert)
			k->state = LKS_GRANTED;
		else
			drop_lk(q.lkid);
	}
out:
	pthread_mutex_unlock(&L.mu);
	if (sync && asked) {
		lksb->lkid = lkid;
		if (answer.done)
			fill_lksb(lksb, &answer);
		else
			lksb->status = ret;
	}
	return ret;
}

int dsm_unlock(struct dsm_lksb *lksb, uint32_t flags)
{
	struct wire_ipc_lock q = {.op = WIRE_IPC_LK_UNLOCK, .flags = flags};
	struct lk *k;
	uint64_t lkid;
	int ret;

	if (!lksb || (flags & ~(uint32_t)(DSM_LKF_CANCEL | DSM_LKF_VALBLK)))
		return -EINVAL;
	/* Read before the mutex (see the top). */
	lkid = lksb->lkid;
	memcpy(q.lvb, lksb->lvb, sizeof(q.lvb));
	pthread_mutex_lock(&L.mu);
	ret = open_conn();
	if (ret)
		goto out;
	k = find_lk(lkid);
	if (!k) {
		ret = -ENOLCK;
		goto out;
	}
	if (flags & DSM_LKF_CANCEL) {
		if (k->state == LKS_GRANTED) {
			ret = -ENOLCK;
			goto out;
		}
	} else if (k->state != LKS_GRANTED) {
		ret = -EBUSY;
		goto out;
	} else if (k->children) {
		ret = -ENOTEMPTY;
		goto out;
	}
	q.lkid = k->lkid;
	ret = request(&q, NULL, true, NULL, NULL, NULL);
	if (!ret && !(flags & DSM_LKF_CANCEL))
		drop_lk(q.lkid);
out:
	pthread_mutex_unlock(&L.mu);
	return ret;
}

int dsm_lock_master(const struct dsm_lksb *lksb)
{
	struct wire_ipc_lock q = {.op = WIRE_IPC_LK_MASTER};
	uint64_t lkid;
	int ret;

	if (!lksb)
		return -EINVAL;
	lkid = lksb->lkid; /* before the mutex (see the top) */
	pthread_mutex_lock(&L.mu);
	ret = open_conn();
	if (!ret && !find_lk(lkid))
		ret = -ENOLCK;
	if (!ret) {
		q.lkid = lkid;
		ret = request(&q, NULL, true, NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&L.mu);
	return ret;
}

void libdsm_locks_close(void)
{
	pthread_mutex_lock(&L.mu);
	if (!L.open) {
		pthread_mutex_unlock(&L.mu);
		return;
	}
	L.stopping = true;
	shutdown(L.fd, SHUT_RDWR);
	pthread_cond_signal(&L.cb_cv);
	pthread_mutex_unlock(&L.mu);
	pthread_join(L.reader, NULL);
	if (!pthread_equal(pthread_self(), L.runner))
		pthread_join(L.runner, NULL);
	else
		pthread_detach(L.runner);
	pthread_mutex_lock(&L.mu);
	close(L.fd);
	L.fd = -1;
	L.open = false;
	while (L.locks) {
		struct lk *k = L.locks;

		L.locks = k->next;
		free(k);
	}
	while (L.cb_head) {
		struct cb *c = L.cb_head;

		L.cb_head = c->next;
		free(c);
	}
	L.cb_tail = &L.cb_head;
	pthread_mutex_unlock(&L.mu);
}
