/* The node's memory and the faults of the processes attached to it.
 *
 * Node memory is one memfd, mapped by every attached process at the arena's
 * address.  dsmd never maps it: it reads a page it must send with pread(),
 * installs a page it received with pwrite(), and drops a page with a hole
 * punched in the memfd, which unmaps it from every process at once.  The
 * processes' userfaultfds (passed to dsmd) report every access to a page the
 * process has not mapped, or writes to a page mapped read-only; dsmd
 * resolves each with UFFDIO_CONTINUE (mapping the page-cache page, write
 * protected while the node holds it S) or UFFDIO_WRITEPROTECT.
 *
 * Requester side: a fault that needs the network starts a transaction,
 * sends DSM_REQ to the page's master, and completes when the grant, the
 * data (written by a holder into a receive slot with RDMA WRITE) and the
 * invalidation acknowledgements it announces are all in.  Holder side:
 * DSM_FWD (send the page, then keep it S or drop it) and DSM_INV (drop it).
 * A freshly granted page is held for hold_us before it is given up, so that
 * the faulting thread runs before its page is taken away.
 *
 * Reads from a holder: a read miss goes straight to the node last heard to
 * write the page (the requester of the invalidation that took our copy),
 * skipping the master: one hand-off fewer.  A node holding the page with
 * the master's knowledge serves it with an S grant and remembers the
 * reader in pg->given.  The reader, once it has mapped the page, tells
 * the master (DSM_SHARED, where DONE would be), which lists it if nothing
 * was written since.  Until then the holder answers for it: every write
 * to the page invalidates or forwards to the holder (or is its own), and
 * a holder losing its copy or writing invalidates those of its `given`
 * readers the master did not (not in the write's `covered` set) in turn
 * (WIRE_INV_RELAYED), announcing them to the writer, which waits for
 * their acks as well.  A copy got so
 * is never given on.  A holder that cannot serve (no copy, busy, its own
 * copy came so) passes the request to the master.
 */
#define _GNU_SOURCE
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "dsmd.h"

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1) /* Linux 6.4 */
#endif

#define SLOT_STRIDE 4160u /* WIRE_SLOT_SIZE rounded up to 64 bytes */

_Static_assert(WIRE_SLOT_SIZE <= SLOT_STRIDE, "a slot holds page+trailer");
_Static_assert(sizeof(struct wire_dsm_fwd) <= sizeof(((struct pending *)0)->body),
	       "pending bodies hold every deferred message");

uint64_t mem_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------------------------------------------------------------------- */
/* Tables                                                                 */

static int ptab_init(struct ptab *t, uint64_t n, size_t elem)
{
	t->nchunks = (size_t)(n + PTAB_CHUNK - 1) / PTAB_CHUNK;
	t->elem = elem;
	t->chunks = calloc(t->nchunks, sizeof(*t->chunks));
	return t->chunks ? 0 : -ENOMEM;
}

static void ptab_free(struct ptab *t)
{
	size_t i;

	for (i = 0; t->chunks && i < t->nchunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	t->chunks = NULL;
}

/* The element for idx; NULL if its chunk was never filled (and create is
 * false), or memory ran out. */
void *ptab_get(struct ptab *t, uint64_t idx, bool create)
{
	size_t c = (size_t)(idx / PTAB_CHUNK);

	if (c >= t->nchunks)
		return NULL;
	if (!t->chunks[c]) {
		if (!create)
			return NULL;
		t->chunks[c] = calloc(PTAB_CHUNK, t->elem);
		if (!t->chunks[c]) {
			log_err("out of memory for page tables");
			return NULL;
		}
	}
	return (char *)t->chunks[c] + (idx % PTAB_CHUNK) * t->elem;
}

int mem_page_state(struct dsmd *d, uint64_t page)
{
	struct page *pg = ptab_get(&d->mem.pages, page, false);

	return pg ? pg->state : WIRE_PS_I;
}

/* ---------------------------------------------------------------------- */
/* Set-up                                                                 */

static int reg_buf(struct dsmd *d, size_t len, void **buf,
		   struct xport_mr *mr)
{
	int ret;

	*buf = aligned_alloc(4096, len);
	if (!*buf)
		return -ENOMEM;
	memset(*buf, 0, len);
	ret = xport_reg_mr(d->x, *buf, len, mr);
	if (ret) {
		free(*buf);
		*buf = NULL;
	}
	return ret;
}

int mem_setup(struct dsmd *d)
{
	struct mem *m = &d->mem;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &m->hold_w};
	unsigned i;
	int ret;

	m->base = d->cfg.arena_base;
	m->size = d->cfg.arena_size;
	m->npages = m->size / WIRE_PAGE_SIZE;
	m->hold_us = d->cfg.hold_us;
	m->peer_reads = !d->cfg.peer_reads_off;
	m->peer_hold_us = d->cfg.peer_hold_us;
	m->local_tail = &m->local_q;
	home_setup(d);
	m->memfd = memfd_create("dsm-node-memory", MFD_CLOEXEC);
	if (m->memfd < 0 || ftruncate(m->memfd, (off_t)m->size)) {
		ret = -errno;
		log_err("node memory (memfd of %llu bytes): %s",
			(unsigned long long)m->size, strerror(-ret));
		return ret;
	}
	if (ptab_init(&m->pages, m->npages, sizeof(struct page)) ||
	    ptab_init(&m->dir, m->npages, sizeof(struct dentry)))
		return -ENOMEM;
	ret = reg_buf(d, (size_t)MEM_NSLOTS * SLOT_STRIDE, &m->recv_buf,
		      &m->recv_mr);
	if (ret == 0)
		ret = reg_buf(d, (size_t)MEM_NSEND * SLOT_STRIDE, &m->send_buf,
			      &m->send_mr);
	if (ret) {
		log_err("registering page buffers: %s", strerror(-ret));
		return ret;
	}
	m->nfree_slots = MEM_NSLOTS;
	for (i = 0; i < MEM_NSEND; i++)
		m->send_free[i] = (uint16_t)i;
	m->nsend_free = MEM_NSEND;
	m->hold_w.kind = W_HOLD;
	m->hold_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->hold_fd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, m->hold_fd, &ev))
		return -errno;
	ret = lock_setup(d);
	if (ret)
		return ret;
	ev.data.ptr = lock_watch(d);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, lock_timer_fd(d), &ev))
		return -errno;
	return coll_setup(d);
}

static void free_list(struct pending *p)
{
	while (p) {
		struct pending *n = p->next;

		free(p);
		p = n;
	}
}

static void free_faults(struct fault *f)
{
	while (f) {
		struct fault *n = f->next;

		app_put(f->app);
		free(f);
		f = n;
	}
}

void mem_teardown(struct dsmd *d)
{
	struct mem *m = &d->mem;
	struct ptab *t = &m->pages;
	size_t c, i;

	for (c = 0; t->chunks && c < t->nchunks; c++) {
		struct page *pg = t->chunks[c];

		for (i = 0; pg && i < PTAB_CHUNK; i++)
			free_faults(pg[i].waiters);
	}
	free_faults(m->slot_wait);
	m->slot_wait = NULL;
	coll_teardown(d);
	lock_teardown(d);
	home_teardown(d);
	dir_teardown(d);
	free_list(m->deferred);
	free_list(m->peer_wait);
	free_list(m->local_q);
	m->deferred = m->local_q = NULL;
	if (m->recv_buf && d->x)
		xport_dereg_mr(d->x, &m->recv_mr);
	if (m->send_buf && d->x)
		xport_dereg_mr(d->x, &m->send_mr);
	free(m->recv_buf);
	free(m->send_buf);
	ptab_free(&m->pages);
	ptab_free(&m->dir);
	if (m->hold_fd > 0)
		close(m->hold_fd);
	if (m->memfd > 0)
		close(m->memfd);
}

/* ---------------------------------------------------------------------- */
/* Messages                                                               */

/* Send to a node, or to ourselves through the local queue, which the loop
 * drains before it blocks (mem_run_local). */
int mem_send(struct dsmd *d, int node, unsigned type, uint64_t req_id,
	     const void *body, size_t len)
{
	struct mem *m = &d->mem;
	struct pending *p;
	int ret;

	if (node == d->cfg.node) {
		if (!m->local_tail)
			m->local_tail = &m->local_q;
		p = calloc(1, sizeof(*p));
		if (!p || len > sizeof(p->body)) {
			free(p);
			log_err("cannot queue a %s to self", wire_type_name(type));
			return -ENOMEM;
		}
		*p = (struct pending){.from = node, .type = type,
				      .req_id = req_id, .len = len};
		memcpy(p->body, body, len);
		*m->local_tail = p;
		m->local_tail = &p->next;
		return 0;
	}
	ret = xport_send(d->x, node, type, req_id, body, len);
	if (ret) {
		log_warn("cannot send %s to node %d: %s", wire_type_name(type),
			 node, strerror(-ret));
		return ret;
	}
	if (wire_is_coherence(type)) {
		m->st.msgs_sent++;
		m->st.bytes_sent += sizeof(struct wire_hdr) + len;
	}
	return 0;
}

/* Hand a kept message to its handler as if it had just arrived. */
static void replay(struct dsmd *d, struct pending *p, bool local)
{
	unsigned char buf[sizeof(struct wire_hdr) + sizeof(p->body)];
	struct wire_hdr *h = (struct wire_hdr *)buf;
	struct wire_msg msg;

	wire_build(buf, sizeof(buf), p->type, p->req_id, p->body, p->len);
	h->src = (uint16_t)p->from;
	msg = (struct wire_msg){.hdr = h, .body = buf + sizeof(*h),
				.body_len = p->len};
	if (local)
		cluster_dispatch(d, p->from, &msg);
	else
		mem_on_msg(d, p->from, &msg);
}

bool mem_run_local(struct dsmd *d)
{
	struct mem *m = &d->mem;
	struct pending *p;
	bool any = false;

	while ((p = m->local_q)) {
		m->local_q = p->next;
		if (!m->local_q)
			m->local_tail = &m->local_q;
		replay(d, p, true);
		free(p);
		any = true;
	}
	return any;
}

static void arm_hold(struct dsmd *d)
{
	struct mem *m = &d->mem;
	struct itimerspec its = {0};
	uint64_t first = 0, now = mem_now_us();
	struct pending *p;

	for (p = m->deferred; p; p = p->next)
		if (p->not_before_us && (!first || p->not_before_us < first))
			first = p->not_before_us;
	if (first) {
		uint64_t us = first > now ? first - now : 1;

		its.it_value.tv_sec = (time_t)(us / 1000000u);
		its.it_value.tv_nsec = (long)(us % 1000000u) * 1000L;
	}
	timerfd_settime(m->hold_fd, 0, &its, NULL);
}

/* Keep a holder-side message until `when` (0: until a send slot frees). */
/* Append a copy of msg to *list (in arrival order), to be replayed not
 * before `when`.  Returns -ENOMEM (logged) if it cannot be kept. */
static int keep(struct pending **list, int from, const struct wire_msg *msg,
		uint64_t when)
{
	struct pending *p = calloc(1, sizeof(*p)), **pp;

	if (!p || msg->body_len > sizeof(p->body)) {
		free(p);
		log_err("cannot keep a %s for later: dropped",
			wire_type_name(msg->hdr->type));
		return -ENOMEM;
	}
	*p = (struct pending){.from = from, .type = msg->hdr->type,
			      .req_id = msg->hdr->req_id,
			      .len = msg->body_len, .not_before_us = when};
	memcpy(p->body, msg->body, msg->body_len);
	for (pp = list; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	return 0;
}

static void defer(struct dsmd *d, int from, const struct wire_msg *msg,
		  uint64_t when)
{
	if (keep(&d->mem.deferred, from, msg, when))
		return;
	d->mem.st.held_back++;
	arm_hold(d);
}

static void retry_deferred(struct dsmd *d)
{
	struct mem *m = &d->mem;
	struct pending *list = m->deferred, *p;
	uint64_t now = mem_now_us();

	m->deferred = NULL;
	while ((p = list)) {
		list = p->next;
		p->next = NULL;
		if (p->not_before_us > now) {
			struct pending **pp = &m->deferred;

			while (*pp)
				pp = &(*pp)->next;
			*pp = p;
			continue;
		}
		m->st.held_back--; /* counted again if it is kept again */
		replay(d, p, false);
		free(p);
	}
	arm_hold(d);
}

void mem_on_hold_timer(struct dsmd *d)
{
	uint64_t n;

	if (read(d->mem.hold_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("hold timer: %s", strerror(errno));
	retry_deferred(d);
}

/* ---------------------------------------------------------------------- */
/* userfaultfd                                                            */

static int uffd_continue(int uffd, uint64_t addr, bool wp)
{
	struct uffdio_continue c = {
		.range = {.start = addr, .len = WIRE_PAGE_SIZE},
		.mode = wp ? UFFDIO_CONTINUE_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_CONTINUE, &c) ? -errno : 0;
}

/* Write-protect the page in one process, or lift the protection and wake
 * whoever waits on it.  (The kernel refuses DONTWAKE with WP.) */
static int uffd_wp(int uffd, uint64_t addr, bool on)
{
	struct uffdio_writeprotect w = {
		.range = {.start = addr, .len = WIRE_PAGE_SIZE},
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

static void uffd_wake(int uffd, uint64_t addr)
{
	struct uffdio_range r = {.start = addr, .len = WIRE_PAGE_SIZE};

	ioctl(uffd, UFFDIO_WAKE, &r);
}

static uint64_t page_addr(const struct mem *m, uint64_t page)
{
	return m->base + page * WIRE_PAGE_SIZE;
}

/* Write-protect the page in every attached process: afterwards no process
 * can change it, so it may be read and sent (a downgrade from M). */
static void protect_all(struct dsmd *d, uint64_t page)
{
	uint64_t addr = page_addr(&d->mem, page);
	struct app *a;
	int ret;

	for (a = d->mem.apps; a; a = a->next) {
		if (a->uffd < 0)
			continue;
		ret = uffd_wp(a->uffd, addr, true);
		/* ENOENT/ESRCH: the process is exiting; it writes no more. */
		if (ret && ret != -ENOENT && ret != -ESRCH)
			log_err("write-protecting page %llu in process %u: %s",
				(unsigned long long)page, a->pid,
				strerror(-ret));
	}
}

/* Map a page the node holds into the faulting process, or wake it if some
 * other thread already did.  Errors mean the process is gone. */
static void resolve(struct dsmd *d, struct app *a, uint64_t addr,
		    uint32_t flags, const struct page *pg)
{
	struct dsm_stats *st = &d->mem.st;
	bool m = pg->state == WIRE_PS_M;
	int ret;

	if (m && (flags & UFFD_PAGEFAULT_FLAG_WP)) {
		st->wp_faults++;
		uffd_wp(a->uffd, addr, false);
		return;
	}
	ret = uffd_continue(a->uffd, addr, !m);
	if (ret == 0) {
		if (flags & UFFD_PAGEFAULT_FLAG_MINOR)
			st->minor_faults++;
		return;
	}
	if (ret == -EEXIST) {
		st->stale_faults++;
		if (m)
			uffd_wp(a->uffd, addr, false);
		else
			uffd_wake(a->uffd, addr);
	}
}

static void queue_fault(struct fault **list, struct app *a, uint64_t addr,
			uint32_t flags)
{
	struct fault *f = calloc(1, sizeof(*f)), **pp;

	if (!f) {
		log_err("out of memory queueing a fault: the process waits");
		return;
	}
	*f = (struct fault){.app = a, .addr = addr, .flags = flags};
	a->refs++;
	for (pp = list; *pp; pp = &(*pp)->next)
		;
	*pp = f;
}

/* Send t's request to `node`, which this node believes masters the page
 * (at `epoch`); the same transaction id every time it is sent. */
static void send_req(struct dsmd *d, struct txn *t, int node, uint32_t epoch,
		     unsigned type)
{
	struct mem *m = &d->mem;
	unsigned i = (unsigned)(t->id & 0xffff);
	struct page *pg = ptab_get(&m->pages, t->page, false);
	struct wire_dsm_req r = {
		.page = t->page, .access = t->access, .has_copy = t->has_copy,
		.version = t->has_copy && pg ? pg->version : 0,
		.slot = {.addr = (uint64_t)(uintptr_t)m->recv_buf +
				 (uint64_t)i * SLOT_STRIDE,
			 .rkey = m->recv_mr.rkey, .index = i},
		.route = {.origin = (uint16_t)d->cfg.node, .epoch = epoch},
	};

	t->sent_to = (int16_t)node;
	t->peer = type == WIRE_DSM_PEER_REQ;
	mem_send(d, node, type, t->id, &r, sizeof(r));
}

/* Nobody on the way knew the master: ask every node. */
static void txn_ask(struct dsmd *d, struct txn *t)
{
	if (t->hinted && !t->missed) {
		t->missed = true;
		d->mem.st.hint_misses++;
	}
	t->asking = true;
	t->peer = false;
	home_ask(d, &home_page_kind, t->page, t->id);
}

/* Invalidate the readers we gave the page directly, for `to`'s write
 * (transaction `id`, the page's `version` after it; `to` may be this
 * node), but for those in `covered`: the master lists them and
 * invalidates them itself.  They ack to `to`; returns the set `to` must
 * wait for. */
static uint64_t relay_inv(struct dsmd *d, uint64_t page, struct page *pg,
			  int to, uint64_t id, uint64_t covered,
			  uint64_t version)
{
	struct wire_dsm_inv inv = {.page = page, .requester = (uint32_t)to,
				   .flags = WIRE_INV_RELAYED,
				   .version = version};
	uint64_t set = pg->given & ~covered & ~(1ull << to), sent = 0;

	pg->given = 0;
	while (set) {
		int n = __builtin_ctzll(set);

		set &= set - 1;
		if (!cluster_peer_alive(d, n) ||
		    mem_send(d, n, WIRE_DSM_INV, id, &inv, sizeof(inv)))
			continue; /* a dead node holds nothing */
		sent |= 1ull << n;
	}
	return sent;
}

/* The holder a read miss may ask instead of the master, or -1.  Only
 * when that saves a hop: the master is elsewhere, and not the holder. */
static int peer_for(struct dsmd *d, const struct page *pg, bool write,
		    int master)
{
	int p = (int)pg->peer - 1, me = d->cfg.node;

	if (!d->mem.peer_reads || write || pg->state != WIRE_PS_I ||
	    p < 0 || p >= d->cfg.nnodes || p == me || master == me ||
	    p == master || !cluster_peer_alive(d, p))
		return -1;
	return p;
}

static void start_txn(struct dsmd *d, uint64_t page, struct page *pg,
		      bool write)
{
	struct mem *m = &d->mem;
	struct txn *t = NULL;
	uint32_t epoch;
	bool hinted;
	unsigned i;
	int master = dir_where(d, page, &epoch, &hinted);
	int peer = peer_for(d, pg, write, master);

	for (i = 0; i < MEM_NSLOTS && !t; i++)
		if (!m->txns[i].used)
			t = &m->txns[i];
	i = (unsigned)(t - m->txns);
	*t = (struct txn){.used = true, .page = page,
			  .access = write ? WIRE_ACC_WRITE : WIRE_ACC_READ,
			  .has_copy = pg->state == WIRE_PS_S,
			  .hinted = hinted,
			  .master = -1, .sent_to = -1,
			  .id = (++m->txn_gen << 16) | i};
	m->nfree_slots--;
	m->nwaiting++;
	pg->busy = 1;
	pg->slot = (uint16_t)i;
	if (!write)
		m->st.read_faults++;
	else if (pg->state == WIRE_PS_S)
		m->st.upgrade_faults++;
	else
		m->st.write_faults++;
	if (master == d->cfg.node)
		m->st.directory_local++;
	else
		m->st.directory_remote++;
	if (peer >= 0) {
		t->hinted = false;
		m->st.peer_requests++;
		send_req(d, t, peer, 0, WIRE_DSM_PEER_REQ);
	} else if (master == d->cfg.node || cluster_peer_alive(d, master)) {
		send_req(d, t, master, epoch, WIRE_DSM_REQ);
	} else {
		txn_ask(d, t);
	}
}

/* The page cannot be had: its directory entry died with its master, or
 * its only copy with its holder.  The process gets SIGBUS, as for memory
 * that is gone, rather than a hang. */
static void lost(struct dsmd *d, struct app *a, uint64_t page)
{
	d->mem.st.lost_faults++;
	log_err("page %llu is lost (its master or its only holder died): "
		"process %u gets SIGBUS", (unsigned long long)page, a->pid);
	if (a->pid)
		kill((pid_t)a->pid, SIGBUS);
}

void mem_fault(struct dsmd *d, struct app *a, uint64_t addr,
			 uint32_t flags)
{
	struct mem *m = &d->mem;
	uint64_t page = (addr - m->base) / WIRE_PAGE_SIZE;
	bool write = flags & UFFD_PAGEFAULT_FLAG_WRITE;
	struct page *pg = ptab_get(&m->pages, page, true);

	if (!pg)
		return;
	if (pg->busy) {
		queue_fault(&pg->waiters, a, addr, flags);
		return;
	}
	if (pg->state == WIRE_PS_M || (pg->state == WIRE_PS_S && !write)) {
		resolve(d, a, addr, flags, pg);
		return;
	}
	if (!m->nfree_slots) {
		queue_fault(&m->slot_wait, a, addr, flags);
		return;
	}
	log_debug("mem: page %llu %s fault (flags %x) in state %u",
		  (unsigned long long)page, write ? "write" : "read", flags,
		  pg->state);
	start_txn(d, page, pg, write);
	queue_fault(&pg->waiters, a, addr, flags);
}

void mem_on_uffd(struct dsmd *d, struct app *a)
{
	struct uffd_msg msgs[16];
	bool drained;
	ssize_t n;
	size_t i;

	for (;;) {
		n = read(a->uffd, msgs, sizeof(msgs));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* A read returns every fault pending when it ran (it blocks
		 * for none on a nonblocking fd): a short one drained it, and
		 * a fault raised since makes epoll report the fd again, so
		 * the read that would only say EAGAIN is not made. */
		drained = (size_t)n < sizeof(msgs);
		for (i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			const struct uffd_msg *u = &msgs[i];
			uint64_t addr = u->arg.pagefault.address &
					~(uint64_t)(WIRE_PAGE_SIZE - 1);

			if (u->event != UFFD_EVENT_PAGEFAULT ||
			    addr < d->mem.base ||
			    addr - d->mem.base >= d->mem.size)
				continue;
			mem_fault(d, a, addr, (uint32_t)u->arg.pagefault.flags);
		}
		if (drained)
			break;
	}
}

/* Run the faults that waited for a page, now that it has settled. */
static void run_faults(struct dsmd *d, struct fault *list)
{
	struct fault *f;

	while ((f = list)) {
		list = f->next;
		if (f->app->uffd >= 0)
			mem_fault(d, f->app, f->addr, f->flags);
		app_put(f->app);
		free(f);
	}
}

/* ---------------------------------------------------------------------- */
/* Requester side                                                         */

static struct txn *find_txn(struct dsmd *d, uint64_t id, uint64_t page)
{
	unsigned slot = (unsigned)(id & 0xffff);
	struct txn *t;

	if (slot >= MEM_NSLOTS)
		return NULL;
	t = &d->mem.txns[slot];
	if (!t->used || t->abandoned || t->id != id || t->page != page)
		return NULL;
	return t;
}

/* Copy a received page into process f's mapping with UFFDIO_COPY, which
 * on the node's memfd also puts it in the page cache, where every other
 * process finds it: one system call and one copy instead of pwrite, then
 * UFFDIO_CONTINUE.  Only for a fault the grant resolves (not a write to a
 * page granted S).  Returns 0 when f is resolved. */
static int install_into(struct dsmd *d, const struct fault *f,
			const char *src, uint8_t state)
{
	bool m = state == WIRE_PS_M;
	struct uffdio_copy c = {
		.dst = f->addr, .src = (uint64_t)(uintptr_t)src,
		.len = WIRE_PAGE_SIZE,
		.mode = m ? 0 : UFFDIO_COPY_MODE_WP,
	};

	if (f->app->uffd < 0 || (!m && (f->flags & UFFD_PAGEFAULT_FLAG_WRITE)))
		return -EINVAL;
	if (ioctl(f->app->uffd, UFFDIO_COPY, &c))
		return -errno;
	if (c.copy != WIRE_PAGE_SIZE)
		return c.copy < 0 ? (int)c.copy : -EIO;
	d->mem.st.direct_installs++;
	return 0;
}

/* Put the transaction's page into the node's memory.  A page that came
 * with data goes straight into the first waiting fault's process when it
 * can (install_into); *done then says that fault is resolved.  Otherwise
 * (that process is gone, EEXIST, ...) pwrite puts it in the page cache and
 * every fault maps it from there. */
static int install(struct dsmd *d, struct txn *t, const struct page *pg,
		   bool *done)
{
	struct mem *m = &d->mem;
	off_t off = (off_t)(t->page * WIRE_PAGE_SIZE);
	unsigned slot = (unsigned)(t->id & 0xffff);
	const char *src = (char *)m->recv_buf + (size_t)slot * SLOT_STRIDE;
	ssize_t n;

	*done = false;
	if (t->data_got) {
		if (pg->waiters &&
		    install_into(d, pg->waiters, src, t->state) == 0) {
			*done = true;
			return 0;
		}
		n = pwrite(m->memfd, src, WIRE_PAGE_SIZE, off);
		return n == WIRE_PAGE_SIZE ? 0 : -EIO;
	}
	if (t->zero && pg->state == WIRE_PS_I) {
		m->st.zero_fills++;
		/* Allocates a zeroed page-cache page; nothing is copied. */
		return fallocate(m->memfd, 0, off, WIRE_PAGE_SIZE) ? -errno : 0;
	}
	return 0;
}

enum txn_end {
	TXN_DONE,     /* tell the master; the slot is free again */
	TXN_ABORTED,  /* tell the master it was given up; keep the slot */
	TXN_ORPHANED, /* the master is dead: tell nobody; keep the slot */
};

static void send_done(struct dsmd *d, int master, uint64_t id,
		      uint64_t page, bool aborted)
{
	struct wire_dsm_done done = {.page = page, .aborted = aborted};

	if (master >= 0)
		mem_send(d, master, WIRE_DSM_DONE, id, &done, sizeof(done));
}

/* Our transaction on `page` ended: the reads that waited for it are
 * looked at again, in the order they came. */
static void wake_peer_reqs(struct dsmd *d, uint64_t page)
{
	struct pending **pp = &d->mem.peer_wait, *p, *list = NULL, **tail = &list;
	uint64_t pno;

	if (!*pp)
		return;
	while ((p = *pp)) {
		memcpy(&pno, p->body, sizeof(pno));
		if (pno != page) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = NULL;
		*tail = p;
		tail = &p->next;
	}
	while ((p = list)) {
		list = p->next;
		replay(d, p, false);
		free(p);
	}
}

/* End transaction t: tell its master (unless `tell` is false: the caller
 * does it later), free its slot or keep it out of use (an abandoned slot
 * could still receive a late page), and return the faults that waited on
 * the page, for the caller to run again or fail, and then to call
 * wake_peer_reqs(). */
static struct fault *txn_close(struct dsmd *d, struct txn *t,
			       enum txn_end how, bool tell)
{
	struct mem *m = &d->mem;
	struct page *pg = ptab_get(&m->pages, t->page, true);
	struct fault *list = pg->waiters;

	pg->busy = 0;
	pg->waiters = NULL;
	m->nwaiting--;
	if (how != TXN_ORPHANED && tell)
		send_done(d, t->master, t->id, t->page, how == TXN_ABORTED);
	if (how == TXN_DONE) {
		t->used = false;
		m->nfree_slots++;
	} else {
		t->abandoned = true;
	}
	return list;
}

/* A slot came free: the faults that waited for one try again. */
static void run_slot_wait(struct dsmd *d)
{
	struct fault *list = d->mem.slot_wait;

	d->mem.slot_wait = NULL;
	run_faults(d, list);
}

/* Relayed acks t must wait for too; a node already dead owes none. */
static void owe_also(struct dsmd *d, struct txn *t, uint64_t set)
{
	uint64_t n;

	set &= home_all_nodes(d) & ~(1ull << d->cfg.node);
	for (n = set; n; n &= n - 1)
		if (!cluster_peer_alive(d, __builtin_ctzll(n)))
			set &= ~(n & -n);
	t->also |= set;
}

/* We installed a copy `giver` gave us directly: tell the master, which
 * lists us if the giver's copy is still the page's.  Only now, with the
 * copy in place: once listed, we may be sent an INV or a FWD for it. */
static void tell_shared(struct dsmd *d, uint64_t page, const struct page *pg,
			int giver)
{
	struct wire_dsm_shared sh = {.page = page, .node = (uint32_t)giver,
				     .version = pg->version};
	int master = dir_master(d, page);

	if (master == d->cfg.node || cluster_peer_alive(d, master))
		mem_send(d, master, WIRE_DSM_SHARED, 0, &sh, sizeof(sh));
}

static void txn_maybe_done(struct dsmd *d, struct txn *t)
{
	struct mem *m = &d->mem;
	uint64_t pg_no = t->page, id;
	struct page *pg = ptab_get(&m->pages, pg_no, true);
	struct fault *list, *f;
	int master, giver, ret;
	bool done;

	if (t->grant_seen && t->state == WIRE_PS_M && pg->given)
		/* We write a page we gave readers directly, whom the master
		 * may not know of: we take their copies ourselves.  Only now
		 * that the master has served our write, so that a reader's
		 * copy goes only after the page's version has changed (see
		 * serve_write in dir.c). */
		owe_also(d, t, relay_inv(d, pg_no, pg, d->cfg.node, t->id,
					 t->covered, t->version));
	if (!t->grant_seen || (t->data_needed && !t->data_got) ||
	    t->acks_got < t->acks_needed || (t->also & ~t->also_acked))
		return;
	log_debug("mem: page %llu txn %llx done: %s%s%s, acks %u",
		  (unsigned long long)t->page, (unsigned long long)t->id,
		  t->state == WIRE_PS_M ? "M" : "S",
		  t->data_got ? " data" : "", t->zero ? " zero" : "",
		  t->acks_got);
	ret = install(d, t, pg, &done);
	if (ret)
		log_err("installing page %llu: %s",
			(unsigned long long)t->page, strerror(-ret));
	if (t->version < pg->version)
		log_warn("page %llu: granted version %llu after %llu",
			 (unsigned long long)t->page,
			 (unsigned long long)t->version,
			 (unsigned long long)pg->version);
	pg->state = t->state;
	pg->version = t->version;
	pg->peer_copy = t->peer;
	pg->granted_us = mem_now_us();
	/* Map the page for the waiting faults first, DONE after: posting a
	 * send is a system call that on rxe carries the message through the
	 * kernel's RDMA stack (about 500 us in the emulated guest), and it
	 * stood between the page's arrival and the process running again.  The master needs
	 * DONE only before it serves the page's next request, and a request
	 * the waiting faults start meanwhile queues there behind it. */
	master = t->master;
	id = t->id;
	giver = t->peer ? t->sent_to : -1;
	list = txn_close(d, t, TXN_DONE, false);
	if (done) {
		/* install() mapped it for the first fault already. */
		f = list;
		list = f->next;
		app_put(f->app);
		free(f);
	}
	run_faults(d, list);
	/* Reads sent to us meanwhile: after our faults (the hold time keeps
	 * the page until they ran). */
	wake_peer_reqs(d, pg_no);
	if (giver >= 0)
		tell_shared(d, pg_no, pg, giver);
	else
		send_done(d, master, id, pg_no, false);
	run_slot_wait(d);
}

/* The page is lost: every fault waiting for it gets SIGBUS. */
static void fail_txn(struct dsmd *d, struct txn *t, enum txn_end how)
{
	struct fault *list = txn_close(d, t, how, true), *f;

	while ((f = list)) {
		list = f->next;
		if (f->app->uffd >= 0)
			lost(d, f->app, t->page);
		app_put(f->app);
		free(f);
	}
	wake_peer_reqs(d, t->page);
	run_slot_wait(d);
}

/* Whether `master` may be the node serving t (its first word says so;
 * afterwards only that node may), remembering it and counting whether the
 * hint t went out on was right.  Returns nonzero to refuse. */
static int served_by(struct dsmd *d, struct txn *t, int master,
		     uint32_t epoch)
{
	if (t->master >= 0)
		return t->master != master;
	if (master < 0 || master >= d->cfg.nnodes)
		return -EINVAL;
	t->master = (int16_t)master;
	t->peer = false; /* a holder passed it on: the master serves it */
	if (t->hinted && !t->missed) {
		if (master == t->sent_to)
			d->mem.st.hint_hits++;
		else
			d->mem.st.hint_misses++;
	}
	home_learn(d, &home_page_kind, t->page, master, epoch);
	return 0;
}

static void on_grant(struct dsmd *d, int from, uint64_t id,
		     const struct wire_dsm_grant *g)
{
	struct txn *t = find_txn(d, id, g->page);

	if (!t || t->grant_seen || g->state < WIRE_PS_S ||
	    g->state > WIRE_PS_M || served_by(d, t, from, g->epoch)) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (g->flags & WIRE_GRANT_LOST) {
		fail_txn(d, t, TXN_DONE);
		return;
	}
	t->grant_seen = true;
	t->state = (uint8_t)g->state;
	t->version = g->version;
	t->acks_needed = g->acks;
	t->covered = g->covered;
	t->data_needed = g->flags & WIRE_GRANT_DATA;
	t->zero = g->flags & WIRE_GRANT_ZERO;
	txn_maybe_done(d, t);
}

/* Count node's ack once: the master may also report it for a node that
 * died, not knowing whether its ack got out first. */
static void count_ack(struct dsmd *d, struct txn *t, uint32_t node)
{
	if (node >= (uint32_t)d->cfg.nnodes || (t->acked & (1ull << node)))
		return;
	t->acked |= 1ull << node;
	t->acks_got++;
	txn_maybe_done(d, t);
}

static void on_ack(struct dsmd *d, int from, uint64_t id,
		   const struct wire_dsm_ack *a)
{
	struct txn *t = find_txn(d, id, a->page);

	if (!t || a->node != (uint32_t)from || (a->flags & ~WIRE_ACK_RELAYED)) {
		d->mem.st.bad_msgs++;
		return;
	}
	owe_also(d, t, a->also);
	if (a->flags & WIRE_ACK_RELAYED) {
		t->also_acked |= 1ull << from;
		txn_maybe_done(d, t);
		return;
	}
	count_ack(d, t, a->node);
}

/* The page this transaction waits for died with its sender: give the
 * transaction up and let its faults start over (the master knows whether
 * another copy is left). */
static void abort_txn(struct dsmd *d, struct txn *t)
{
	run_faults(d, txn_close(d, t, TXN_ABORTED, true));
	wake_peer_reqs(d, t->page);
}

static void on_lost(struct dsmd *d, int from, uint64_t id,
		    const struct wire_dsm_lost *l)
{
	struct txn *t = find_txn(d, id, l->page);

	if (l->node >= (uint32_t)d->cfg.nnodes) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (!t)
		return; /* done already */
	if (served_by(d, t, from, 0)) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (!(l->flags & WIRE_LOST_SUPPLIER))
		count_ack(d, t, l->node);
	else if (!t->data_got)
		abort_txn(d, t);
}

static void on_page_data(struct dsmd *d, const struct xport_event *ev)
{
	struct mem *m = &d->mem;
	unsigned slot = ev->imm & ~MEM_IMM_BIT;
	struct wire_trailer tr;
	struct txn *t;

	if (slot >= MEM_NSLOTS || ev->len != WIRE_SLOT_SIZE) {
		m->st.bad_msgs++;
		return;
	}
	memcpy(&tr, (char *)m->recv_buf + (size_t)slot * SLOT_STRIDE +
			    WIRE_PAGE_SIZE, sizeof(tr));
	t = find_txn(d, tr.req_id, tr.page);
	if (!t || tr.magic != WIRE_TRAILER_MAGIC || t->data_got ||
	    tr.master >= (uint32_t)d->cfg.nnodes ||
	    (tr.grant && (t->grant_seen || tr.state < WIRE_PS_S ||
			  tr.state > WIRE_PS_M)) ||
	    (tr.flags & ~WIRE_TR_PEER)) {
		m->st.bad_msgs++;
		return;
	}
	if (tr.flags & WIRE_TR_PEER) {
		/* The holder we asked answered itself: an S grant, no
		 * master, no DONE. */
		if (!t->peer || !tr.grant || tr.state != WIRE_PS_S ||
		    tr.src != (uint32_t)t->sent_to || tr.also) {
			m->st.bad_msgs++;
			return;
		}
	} else if (served_by(d, t, (int)tr.master, tr.epoch)) {
		m->st.bad_msgs++;
		return;
	} else {
		owe_also(d, t, tr.also);
	}
	m->st.pages_received++;
	m->st.bytes_received += WIRE_PAGE_SIZE;
	t->data_got = true;
	if (tr.grant) {
		t->grant_seen = true;
		t->state = (uint8_t)tr.state;
		t->version = tr.version;
	}
	txn_maybe_done(d, t);
}

/* ---------------------------------------------------------------------- */
/* Holder side                                                            */

static void drop_page(struct dsmd *d, uint64_t page, struct page *pg)
{
	if (pg->state == WIRE_PS_I)
		return;
	if (fallocate(d->mem.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(page * WIRE_PAGE_SIZE), WIRE_PAGE_SIZE))
		log_err("dropping page %llu: %s", (unsigned long long)page,
			strerror(errno));
	pg->state = WIRE_PS_I;
	d->mem.st.invalidations_received++;
}

/* A message about a page we were granted less than `hold` us ago waits
 * until then. */
static bool held(struct dsmd *d, int from, const struct wire_msg *msg,
		 const struct page *pg, uint64_t hold)
{
	uint64_t until = pg->granted_us + hold;

	if (until <= mem_now_us())
		return false;
	defer(d, from, msg, until);
	return true;
}

static void on_inv(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct wire_dsm_inv inv;
	struct wire_dsm_ack ack;
	struct page *pg;

	memcpy(&inv, msg->body, sizeof(inv));
	pg = ptab_get(&d->mem.pages, inv.page, true);
	if (!pg || inv.requester >= (uint32_t)d->cfg.nnodes ||
	    (int)inv.requester == d->cfg.node ||
	    (inv.flags & ~WIRE_INV_RELAYED)) {
		d->mem.st.bad_msgs++;
		return;
	}
	if (!(inv.flags & WIRE_INV_RELAYED)) /* a holder is no master */
		home_learn(d, &home_page_kind, inv.page, from, inv.epoch);
	if (held(d, from, msg, pg, d->mem.hold_us))
		return;
	log_debug("mem: page %llu invalidated for %u (state %u)%s",
		  (unsigned long long)inv.page, inv.requester, pg->state,
		  inv.flags & WIRE_INV_RELAYED ? " by its holder" : "");
	ack = (struct wire_dsm_ack){
		.page = inv.page, .node = (uint32_t)d->cfg.node,
		.flags = inv.flags & WIRE_INV_RELAYED ? WIRE_ACK_RELAYED : 0,
	};
	if ((inv.flags & WIRE_INV_RELAYED) && pg->state != WIRE_PS_I &&
	    pg->version >= inv.version) {
		/* Our copy is that write's or a later one: a late duplicate
		 * (two holders passed on one write's invalidation, and we
		 * got the page again since).  It only wants its ack.  The
		 * master's own invalidations are never late: the write waits
		 * for their acks. */
		log_debug("mem: page %llu: stale invalidation (version %llu, "
			  "ours %llu) acked", (unsigned long long)inv.page,
			  (unsigned long long)inv.version,
			  (unsigned long long)pg->version);
	} else {
		drop_page(d, inv.page, pg);
		pg->peer = (uint16_t)(inv.requester + 1); /* it writes */
		ack.also = relay_inv(d, inv.page, pg, (int)inv.requester,
				     msg->hdr->req_id, inv.covered,
				     inv.version);
	}
	mem_send(d, (int)inv.requester, WIRE_DSM_INV_ACK, msg->hdr->req_id,
		 &ack, sizeof(ack));
}

/* Write page (which we hold) into `to`'s slot with trailer *tr, from a
 * free send slot (the caller made sure of one).  From M, the page is
 * write-protected in every process first: no process changes it while,
 * or after, it is read. */
static void send_page(struct dsmd *d, uint64_t page, struct page *pg,
		      int to, const struct wire_slot *slot,
		      const struct wire_trailer *tr)
{
	struct mem *m = &d->mem;
	unsigned s = m->send_free[--m->nsend_free];
	char *buf = (char *)m->send_buf + (size_t)s * SLOT_STRIDE;
	int ret;

	if (pg->state == WIRE_PS_M)
		protect_all(d, page);
	if (pread(m->memfd, buf, WIRE_PAGE_SIZE,
		  (off_t)(page * WIRE_PAGE_SIZE)) != WIRE_PAGE_SIZE)
		log_err("reading page %llu: %s", (unsigned long long)page,
			strerror(errno));
	memcpy(buf + WIRE_PAGE_SIZE, tr, sizeof(*tr));
	ret = xport_write_imm(d->x, to, &m->send_mr, (size_t)s * SLOT_STRIDE,
			      slot->addr, slot->rkey, WIRE_SLOT_SIZE,
			      MEM_IMM_BIT | slot->index, MEM_COOKIE_BIT | s);
	if (ret) {
		log_warn("sending page %llu to node %d: %s",
			 (unsigned long long)page, to, strerror(-ret));
		m->send_free[m->nsend_free++] = (uint16_t)s;
		return;
	}
	m->st.pages_sent++;
	m->st.bytes_sent += WIRE_PAGE_SIZE;
}

static void on_fwd(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct mem *m = &d->mem;
	struct wire_dsm_fwd f;
	struct wire_trailer tr;
	struct page *pg;
	bool inv;

	memcpy(&f, msg->body, sizeof(f));
	pg = ptab_get(&m->pages, f.page, true);
	if (!pg || f.requester >= (uint32_t)d->cfg.nnodes ||
	    (int)f.requester == d->cfg.node || pg->state == WIRE_PS_I) {
		log_once(d->proto_logged, LOG_WARN,
			 "dropped a forward for page %llu from node %d: a "
			 "bad requester, or a page this node does not hold "
			 "(logged once)", (unsigned long long)f.page, from);
		m->st.bad_msgs++;
		return;
	}
	home_learn(d, &home_page_kind, f.page, from, f.epoch);
	if (held(d, from, msg, pg, d->mem.hold_us))
		return;
	if (!m->nsend_free) {
		defer(d, from, msg, 0);
		return;
	}
	inv = f.flags & WIRE_FWD_INVALIDATE;
	log_debug("mem: page %llu sent to %u%s (state %u)",
		  (unsigned long long)f.page, f.requester,
		  inv ? " and dropped" : "", pg->state);
	if (pg->state == WIRE_PS_M && !inv)
		m->st.downgrades++;
	tr = (struct wire_trailer){
		.page = f.page, .req_id = msg->hdr->req_id,
		.version = f.version, .state = f.state,
		.grant = !!(f.flags & WIRE_FWD_GRANT),
		.src = (uint32_t)d->cfg.node, .magic = WIRE_TRAILER_MAGIC,
		.master = (uint32_t)from, .epoch = f.epoch,
	};
	if (inv) {
		tr.also = relay_inv(d, f.page, pg, (int)f.requester,
				    msg->hdr->req_id, f.covered, f.version);
		pg->peer = (uint16_t)(f.requester + 1); /* it is writing */
	}
	send_page(d, f.page, pg, (int)f.requester, &f.slot, &tr);
	if (inv)
		drop_page(d, f.page, pg);
	else
		pg->state = WIRE_PS_S;
}

/* A read miss sent to us as the page's last writer (DSM_PEER_REQ).  We
 * serve it if our copy is one the master knows of and nothing of ours is
 * under way on the page; else the master does, as if R had asked it. */
static void on_peer_req(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct mem *m = &d->mem;
	struct wire_dsm_req q;
	struct wire_trailer tr;
	struct page *pg;

	memcpy(&q, msg->body, sizeof(q));
	pg = ptab_get(&m->pages, q.page, true);
	if (!pg || q.access != WIRE_ACC_READ || q.route.origin != from ||
	    q.route.hops || q.route.chain || q.route.epoch ||
	    from == d->cfg.node) {
		m->st.bad_msgs++;
		return;
	}
	if (pg->busy) {
		/* Our own transaction on the page is open (in a ping-pong,
		 * the write whose invalidation made R miss).  Wait for it:
		 * the master would make R wait for it too, one hop further
		 * away.  wake_peer_reqs() looks at R again. */
		keep(&m->peer_wait, from, msg, 0);
		return;
	}
	if (pg->state == WIRE_PS_I || pg->peer_copy ||
	    dir_master(d, q.page) == d->cfg.node) {
		m->st.peer_passed++;
		dir_on_req(d, from, msg->hdr->req_id, &q);
		return;
	}
	/* The hold time, or --peer-hold-us if longer: just granted, its
	 * faulting thread may not have run (and stored) yet.  Through the
	 * master, R's request would have taken two more hops, which gave it
	 * that time; here R waits for it instead.  Else a reader polling a
	 * flag gets the old page, misses again, and a ping-pong doubles. */
	if (held(d, from, msg, pg,
		 m->peer_hold_us > m->hold_us ? m->peer_hold_us : m->hold_us))
		return;
	if (!m->nsend_free) {
		defer(d, from, msg, 0);
		return;
	}
	log_debug("mem: page %llu given to %d directly (state %u)",
		  (unsigned long long)q.page, from, pg->state);
	if (pg->state == WIRE_PS_M)
		m->st.downgrades++;
	tr = (struct wire_trailer){
		.page = q.page, .req_id = msg->hdr->req_id,
		.version = pg->version, .state = WIRE_PS_S, .grant = 1,
		.src = (uint32_t)d->cfg.node, .magic = WIRE_TRAILER_MAGIC,
		.master = (uint32_t)d->cfg.node, .flags = WIRE_TR_PEER,
	};
	send_page(d, q.page, pg, from, &q.slot, &tr);
	pg->state = WIRE_PS_S;
	pg->given |= 1ull << from;
	m->st.peer_served++;
}

void mem_on_msg(struct dsmd *d, int from, const struct wire_msg *msg)
{
	struct wire_dsm_grant g;
	struct wire_dsm_ack a;
	struct wire_dsm_lost l;
	uint64_t page;

	memcpy(&page, msg->body, sizeof(page)); /* every body starts so */
	if (page >= d->mem.npages) {
		d->mem.st.bad_msgs++;
		return;
	}
	switch (msg->hdr->type) {
	case WIRE_DSM_FWD:
		on_fwd(d, from, msg);
		break;
	case WIRE_DSM_INV:
		on_inv(d, from, msg);
		break;
	case WIRE_DSM_PEER_REQ:
		on_peer_req(d, from, msg);
		break;
	case WIRE_DSM_INV_ACK:
		memcpy(&a, msg->body, sizeof(a));
		on_ack(d, from, msg->hdr->req_id, &a);
		break;
	case WIRE_DSM_LOST:
		memcpy(&l, msg->body, sizeof(l));
		on_lost(d, from, msg->hdr->req_id, &l);
		break;
	case WIRE_DSM_GRANT:
		memcpy(&g, msg->body, sizeof(g));
		on_grant(d, from, msg->hdr->req_id, &g);
		break;
	default:
		d->mem.st.bad_msgs++;
		break;
	}
}

void mem_on_rdma(struct dsmd *d, const struct xport_event *ev)
{
	struct mem *m = &d->mem;
	unsigned s;

	if (ev->type == XPORT_EV_WRITE_IMM) {
		on_page_data(d, ev);
		return;
	}
	if (ev->type != XPORT_EV_WRITE_DONE)
		return;
	s = (unsigned)(ev->cookie & ~MEM_COOKIE_BIT);
	if (s >= MEM_NSEND || m->nsend_free >= MEM_NSEND)
		return;
	if (ev->status)
		log_warn("writing a page to node %d failed: %s", ev->peer,
			 strerror(-ev->status));
	m->send_free[m->nsend_free++] = (uint16_t)s;
	if (m->deferred)
		retry_deferred(d);
}

void mem_peer_down(struct dsmd *d, int node)
{
	struct mem *m = &d->mem;
	unsigned i;

	for (i = 0; i < MEM_NSLOTS; i++) {
		struct txn *t = &m->txns[i];

		if (!t->used || t->abandoned)
			continue;
		if (t->also & (1ull << node)) {
			/* A dead node holds no copy: it owes no ack. */
			t->also_acked |= 1ull << node;
			txn_maybe_done(d, t);
		}
		if (!t->used || t->abandoned || t->asking)
			continue;
		if (t->master == node) {
			/* The entry died with its master: every waiter
			 * learns so (SIGBUS) when it looks again. */
			run_faults(d, txn_close(d, t, TXN_ORPHANED, true));
			wake_peer_reqs(d, t->page);
		} else if (t->master < 0 && t->sent_to == node) {
			/* It may have passed the request on, or not: ask
			 * again (the master drops a second copy). */
			txn_ask(d, t);
		}
	}
}

void mem_txn_nacked(struct dsmd *d, uint64_t page, uint64_t id)
{
	struct txn *t = find_txn(d, id, page);

	if (!t || t->master >= 0 || t->asking)
		return; /* answered meanwhile, or asking already */
	txn_ask(d, t);
}

void mem_txn_located(struct dsmd *d, uint64_t page, uint64_t id, int master,
		     uint32_t epoch)
{
	struct txn *t = find_txn(d, id, page);

	if (!t || !t->asking)
		return;
	t->asking = false;
	if (t->master >= 0)
		return; /* the first request got through meanwhile */
	if (master >= 0) {
		send_req(d, t, master, epoch, WIRE_DSM_REQ);
		return;
	}
	/* Nobody alive masters it: the entry died with its master.  A slot
	 * whose request went out stays out of use (a late page could still
	 * land in it). */
	fail_txn(d, t, t->sent_to < 0 ? TXN_DONE : TXN_ORPHANED);
}

/* ---------------------------------------------------------------------- */
/* Processes                                                              */

int mem_attach(struct dsmd *d, struct app *a, int uffd)
{
	struct uffdio_range r = {.start = d->mem.base, .len = WIRE_PAGE_SIZE};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};

	if (a->uffd >= 0)
		return -EALREADY;
	/* Not a userfaultfd: ENOTTY. */
	if (ioctl(uffd, UFFDIO_WAKE, &r))
		return -errno;
	if (fcntl(uffd, F_SETFL, O_NONBLOCK))
		return -errno;
	a->w.kind = W_UFFD;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, uffd, &ev))
		return -errno;
	a->uffd = uffd;
	return 0;
}

void app_put(struct app *a)
{
	if (--a->refs == 0)
		free(a);
}

void mem_app_gone(struct dsmd *d, struct app *a, bool died)
{
	struct app **pp;

	for (pp = &d->mem.apps; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	if (a->uffd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->uffd, NULL);
		close(a->uffd);
		a->uffd = -1;
	}
	coll_app_gone(d, a, died);
	a->c = NULL;
	app_put(a);
}

/* A region was freed: its pages leave every node and its directory entries
 * start over, so that the range comes back zero filled. */
void mem_reset_range(struct dsmd *d, uint64_t first, uint64_t n)
{
	struct mem *m = &d->mem;
	uint64_t i;

	if (first >= m->npages || n > m->npages - first)
		return;
	if (fallocate(m->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first * WIRE_PAGE_SIZE),
		      (off_t)(n * WIRE_PAGE_SIZE)))
		log_err("dropping a freed range: %s", strerror(errno));
	for (i = first; i < first + n; i++) {
		struct page *pg = ptab_get(&m->pages, i, false);

		if (pg && !pg->busy && !pg->waiters)
			*pg = (struct page){0};
		else if (pg)
			*pg = (struct page){.busy = pg->busy, .slot = pg->slot,
					    .waiters = pg->waiters};
	}
	dir_reset_range(d, first, n);
}
