/* The node's memory: one memfd, mapped by every attached process at the
 * arena's address.  dsmd never maps it, so its one thread can never fault
 * on it: it reads a page it must send with pread(), writes one it received
 * with pwrite() (or copies it straight into a process, fault.c), and drops
 * pages by punching a hole in the memfd, which unmaps them from every
 * process at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "page.h"

int nodemem_open(struct dsmd *d)
{
	int ret;

	d->memfd = memfd_create("dsm-node-memory", MFD_CLOEXEC);
	if (d->memfd < 0 || ftruncate(d->memfd, (off_t)d->arena.size)) {
		ret = -errno;
		log_err("node memory (memfd of %llu bytes): %s",
			(unsigned long long)d->arena.size, strerror(-ret));
		return ret;
	}
	return 0;
}

void nodemem_close(struct dsmd *d)
{
	if (d->memfd >= 0)
		close(d->memfd);
	d->memfd = -1;
}

static off_t offset(uint64_t page)
{
	return (off_t)(page * WIRE_PAGE_SIZE);
}

int nodemem_read(struct dsmd *d, uint64_t page, void *buf)
{
	ssize_t n = pread(d->memfd, buf, WIRE_PAGE_SIZE, offset(page));

	return n == WIRE_PAGE_SIZE ? 0 : n < 0 ? -errno : -EIO;
}

int nodemem_write(struct dsmd *d, uint64_t page, const void *buf)
{
	ssize_t n = pwrite(d->memfd, buf, WIRE_PAGE_SIZE, offset(page));

	return n == WIRE_PAGE_SIZE ? 0 : n < 0 ? -errno : -EIO;
}

int nodemem_zero(struct dsmd *d, uint64_t page)
{
	return fallocate(d->memfd, 0, offset(page), WIRE_PAGE_SIZE) ? -errno
								    : 0;
}

int nodemem_punch(struct dsmd *d, uint64_t first, uint64_t n)
{
	if (fallocate(d->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      offset(first), (off_t)(n * WIRE_PAGE_SIZE)))
		return -errno;
	return 0;
}

int page_state_of(struct dsmd *d, uint64_t page)
{
	struct page *pg = ptab_get(&d->page->pages, page, false);

	return pg ? pg->state : WIRE_PS_I;
}

void page_reset_range(struct dsmd *d, uint64_t first, uint64_t n)
{
	uint64_t i;
	int ret;

	if (first >= d->arena.npages || n > d->arena.npages - first)
		return;
	ret = nodemem_punch(d, first, n);
	if (ret)
		log_err("dropping a freed range: %s", strerror(-ret));
	for (i = first; i < first + n; i++) {
		struct page *pg = ptab_get(&d->page->pages, i, false);

		/* A page with a transaction open keeps it (and its slot):
		 * the transaction ends as it would have. */
		if (pg && !pg->busy)
			*pg = (struct page){0};
		else if (pg)
			*pg = (struct page){.busy = pg->busy, .slot = pg->slot};
	}
	dir_reset_range(d, first, n);
}

/* RESET from node 0: a region was freed.  Its pages leave this node and
 * their entries start over, so that the range comes back zero filled;
 * then node 0 hears that this node is done (RESET_ACK, the collectives'). */
void page_on_reset(struct dsmd *d, int from, const struct wire_msg *m)
{
	struct wire_reset r;

	if (from != 0)
		return;
	memcpy(&r, m->body, sizeof(r));
	page_reset_range(d, r.first_page, r.npages);
	node_send(d, 0, WIRE_RESET_ACK, 0, &r, sizeof(r));
}
