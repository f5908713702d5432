/* The processes' page faults.  Each attached process passes dsmd its
 * userfaultfd (IPC_UFFD), registered over the arena for missing, minor and
 * write-protect faults; dsmd reads the faults off it and resolves each:
 * UFFDIO_CONTINUE maps the page-cache page of a page the node holds
 * (write-protected while the node holds it S), UFFDIO_WRITEPROTECT lifts
 * the protection of a page held M, UFFDIO_COPY puts a received page
 * straight into the faulting process.  This is the only file that issues
 * userfaultfd ioctls.  A fault that needs the network waits on its page's
 * transaction (requester.c), or for a free slot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "page.h"

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1) /* Linux 6.4 */
#endif
#ifndef UFFDIO_POISON /* Linux 6.6 */
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define _UFFDIO_POISON (0x08)
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

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

/* Write-protect the page in every attached process: afterwards no process
 * can change it, so it may be read and sent (a downgrade from M). */
void fault_protect_all(struct dsmd *d, uint64_t page)
{
	uint64_t addr = page_addr(d, page);
	struct app *a;
	int ret;

	list_for_each(a, &d->apps, link) {
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
	bool m = pg->state == WIRE_PS_M;
	int ret;

	if (m && (flags & UFFD_PAGEFAULT_FLAG_WP)) {
		d->st.wp_faults++;
		uffd_wp(a->uffd, addr, false);
		return;
	}
	ret = uffd_continue(a->uffd, addr, !m);
	if (ret == 0) {
		if (flags & UFFD_PAGEFAULT_FLAG_MINOR)
			d->st.minor_faults++;
		return;
	}
	if (ret == -EEXIST) {
		d->st.stale_faults++;
		if (m)
			uffd_wp(a->uffd, addr, false);
		else
			uffd_wake(a->uffd, addr);
	}
}

void fault_queue(struct list *list, struct app *a, uint64_t addr,
		 uint32_t flags)
{
	struct fault *f = calloc(1, sizeof(*f));

	if (!f) {
		log_err("out of memory queueing a fault: the process waits");
		return;
	}
	*f = (struct fault){.app = a, .addr = addr, .flags = flags};
	app_get(a);
	list_add_tail(list, &f->link);
}

static void fault_put(struct fault *f)
{
	list_del(&f->link);
	app_put(f->app);
	free(f);
}

void fault_drop_first(struct list *list)
{
	fault_put(list_first(list, struct fault, link));
}

void fault_free(struct list *list)
{
	struct fault *f, *tmp;

	list_for_each_safe(f, tmp, list, link)
		fault_put(f);
}

void fault_run(struct dsmd *d, struct list *list)
{
	struct fault *f, *tmp;

	list_for_each_safe(f, tmp, list, link) {
		list_del(&f->link);
		if (f->app->uffd >= 0)
			page_fault(d, f->app, f->addr, f->flags);
		app_put(f->app);
		free(f);
	}
}

/* Poison the page in the process's mapping: the faulting access itself
 * then gets SIGBUS (BUS_MCEERR_AR, si_addr in the page), as for memory
 * that is gone.  0, or a negative errno (-EINVAL before Linux 6.6 or
 * without UFFD_FEATURE_POISON). */
static int uffd_poison(int uffd, uint64_t addr)
{
	struct uffdio_poison p = {
		.range = {.start = addr, .len = WIRE_PAGE_SIZE},
	};

	return ioctl(uffd, UFFDIO_POISON, &p) ? -errno : 0;
}

/* The page cannot be had: its directory entry died with its master, or
 * its only copy with its holder.  The faulting access gets SIGBUS rather
 * than a hang: through the poisoned page where the kernel can, otherwise
 * signalled through the process's pidfd, which names the process that
 * attached and no other (not one that took its pid since, nor another pid
 * namespace's).  The page stays poisoned in that process until its
 * mapping is dropped. */
static void lost(struct dsmd *d, struct fault *f, uint64_t page)
{
	struct app *a = f->app;
	int ret;

	d->st.lost_faults++;
	log_err("page %llu is lost (its master or its only holder died): "
		"process %u gets SIGBUS", (unsigned long long)page, a->pid);
	ret = uffd_poison(a->uffd, f->addr & ~(uint64_t)(WIRE_PAGE_SIZE - 1));
	if (ret == 0)
		return;
	if (a->pidfd >= 0 &&
	    syscall(SYS_pidfd_send_signal, a->pidfd, SIGBUS, NULL, 0) == 0)
		return;
	log_err("cannot signal process %u (page %llu): poison: %s; pidfd: "
		"%s", a->pid, (unsigned long long)page, strerror(-ret),
		a->pidfd < 0 ? "none" : strerror(errno));
}

void fault_fail(struct dsmd *d, struct list *list, uint64_t page)
{
	struct fault *f, *tmp;

	list_for_each_safe(f, tmp, list, link) {
		if (f->app->uffd >= 0)
			lost(d, f, page);
		fault_put(f);
	}
}

void page_fault(struct dsmd *d, struct app *a, uint64_t addr, uint32_t flags)
{
	struct page_state *ps = d->page;
	uint64_t page = (addr - d->arena.base) / WIRE_PAGE_SIZE;
	bool write = flags & UFFD_PAGEFAULT_FLAG_WRITE;
	struct page *pg = ptab_get(&ps->pages, page, true);

	if (!pg)
		return;
	if (pg->busy) {
		fault_queue(&req_of(d, pg)->waiters, a, addr, flags);
		return;
	}
	if (pg->state == WIRE_PS_M || (pg->state == WIRE_PS_S && !write)) {
		resolve(d, a, addr, flags, pg);
		return;
	}
	if (!ps->nfree_slots) {
		fault_queue(&ps->slot_wait, a, addr, flags);
		return;
	}
	log_debug("page: %llu %s fault (flags %x) in state %u",
		  (unsigned long long)page, write ? "write" : "read", flags,
		  pg->state);
	req_start(d, page, pg, write, a, addr, flags);
}

static void on_uffd(struct dsmd *d, struct watch *w, uint32_t events)
{
	struct app *a = container_of(w, struct app, w);
	struct uffd_msg msgs[16];
	bool drained;
	ssize_t n;
	size_t i;

	(void)events;
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
			    addr < d->arena.base ||
			    addr - d->arena.base >= d->arena.size)
				continue;
			page_fault(d, a, addr,
				   (uint32_t)u->arg.pagefault.flags);
		}
		if (drained)
			break;
	}
}

/* Copy a received page into process f's mapping with UFFDIO_COPY, which
 * on the node's memfd also puts it in the page cache, where every other
 * process finds it: one system call and one copy instead of pwrite, then
 * UFFDIO_CONTINUE.  Only for a fault the grant resolves (not a write to a
 * page granted S).  Returns 0 when f is resolved. */
int fault_install(struct dsmd *d, const struct fault *f, const char *src,
		  uint8_t state)
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
	d->st.direct_installs++;
	return 0;
}

/* The process hands over its userfaultfd (IPC_UFFD, with the fd). */
static int attach_uffd(struct dsmd *d, struct app *a, int uffd)
{
	struct uffdio_range r = {.start = d->arena.base, .len = WIRE_PAGE_SIZE};
	int ret;

	if (a->uffd >= 0)
		return -EALREADY;
	/* Not a userfaultfd: ENOTTY. */
	if (ioctl(uffd, UFFDIO_WAKE, &r))
		return -errno;
	if (fcntl(uffd, F_SETFL, O_NONBLOCK))
		return -errno;
	ret = watch_add(d, &a->w, uffd, EPOLLIN, on_uffd);
	if (ret)
		return ret;
	a->uffd = uffd;
	return 0;
}

void fault_on_uffd_ipc(struct dsmd *d, struct client *c,
		       const struct wire_msg *m, int *fd)
{
	int ret = *fd < 0 ? -EBADF : attach_uffd(d, c->app, *fd);

	if (ret == 0)
		*fd = -1; /* the process's userfaultfd is ours now */
	client_result(c, m->hdr->req_id, ret);
}

void fault_app_gone(struct dsmd *d, struct app *a, bool died)
{
	(void)died;
	if (a->uffd >= 0) {
		watch_del(d, &a->w);
		close(a->uffd);
		a->uffd = -1;
	}
}
