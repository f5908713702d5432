/* The page module: coherent shared memory (page.h lists its files).  Here:
 * its state and registered buffers, and its tables of messages, requests
 * and hooks for the core.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "page.h"

_Static_assert(PAGE_NSLOTS <= 0xffff && PAGE_NSEND <= 0xffff,
	       "slots are numbered in 16 bits");

static int reg_buf(struct dsmd *d, size_t len, unsigned access, void **buf,
		   struct xport_mr *mr)
{
	int ret;

	/* Zeroed by the kernel, page by page as it is first touched (the
	 * registration pins it on a real device). */
	*buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*buf == MAP_FAILED) {
		*buf = NULL;
		return -ENOMEM;
	}
	ret = xport_reg_mr(d->x, *buf, len, access, mr);
	if (ret) {
		munmap(*buf, len);
		*buf = NULL;
	}
	return ret;
}

static void dereg_buf(struct dsmd *d, void **buf, struct xport_mr *mr,
		      size_t len)
{
	if (*buf && d->x)
		xport_dereg_mr(d->x, mr);
	if (*buf)
		munmap(*buf, len);
	*buf = NULL;
}

static int page_setup(struct dsmd *d)
{
	struct page_state *ps = calloc(1, sizeof(*ps));
	unsigned i;
	int ret;

	if (!ps)
		return -ENOMEM;
	d->page = ps;
	ps->hold_us = d->cfg.hold_us;
	ps->peer_reads = !d->cfg.peer_reads_off;
	ps->peer_hold_us = d->cfg.peer_hold_us;
	list_init(&ps->slot_wait);
	list_init(&ps->slots_wait);
	list_init(&ps->send_wait);
	for (i = 0; i < PAGE_NSLOTS; i++) {
		list_init(&ps->txns[i].waiters);
		list_init(&ps->txns[i].peer_wait);
	}
	home_register(d, &home_page_kind);
	ret = nodemem_open(d);
	if (ret)
		return ret;
	if (ptab_init(&ps->pages, d->arena.npages, sizeof(struct page)) ||
	    ptab_init(&ps->dir, d->arena.npages, sizeof(struct dentry))) {
		log_err("out of memory for the page tables");
		return -ENOMEM;
	}
	/* Least privilege: holders WRITE pages into the receive slots;
	 * the send slots are only ever the source of our own WRITEs. */
	ret = reg_buf(d, (size_t)PAGE_NSLOTS * PAGE_SLOT_STRIDE,
		      XPORT_MR_REMOTE_WRITE, &ps->recv_buf, &ps->recv_mr);
	if (ret == 0)
		ret = reg_buf(d, (size_t)PAGE_NSEND * PAGE_SLOT_STRIDE,
			      XPORT_MR_LOCAL, &ps->send_buf, &ps->send_mr);
	if (ret) {
		log_err("registering page buffers: %s", strerror(-ret));
		return ret;
	}
	ps->nfree_slots = PAGE_NSLOTS;
	for (i = 0; i < PAGE_NSEND; i++)
		ps->send_free[i] = (uint16_t)i;
	ps->nsend_free = PAGE_NSEND;
	return 0;
}

static void page_teardown(struct dsmd *d)
{
	struct page_state *ps = d->page;

	if (!ps)
		return;
	req_teardown(d);
	holder_teardown(d);
	dir_teardown(d);
	dereg_buf(d, &ps->recv_buf, &ps->recv_mr,
		  (size_t)PAGE_NSLOTS * PAGE_SLOT_STRIDE);
	dereg_buf(d, &ps->send_buf, &ps->send_mr,
		  (size_t)PAGE_NSEND * PAGE_SLOT_STRIDE);
	ptab_free(&ps->pages);
	ptab_free(&ps->dir);
	nodemem_close(d);
	free(ps);
	d->page = NULL;
}

/* The requester side first: the transactions that wait on the dead node
 * learn of it before the master side, here, tells them of what died. */
static void page_peer_down(struct dsmd *d, int node)
{
	req_peer_down(d, node);
	dir_peer_down(d, node);
	holder_peer_down(d, node);
}

static void page_rdma(struct dsmd *d, const struct xport_event *ev)
{
	if (ev->type == XPORT_EV_WRITE_IMM)
		req_on_page_data(d, ev);
	else if (ev->type == XPORT_EV_WRITE_DONE)
		holder_write_done(d, ev);
}

/* dsm_page_state(): this node's state of the page, and its master.  Only
 * a master knows for sure: unless it is this node, every node is asked. */
static void on_page_ipc(struct dsmd *d, struct client *c,
			const struct wire_msg *m, int *fd)
{
	struct wire_ipc_reply r = {0};
	struct wire_ipc_page p;
	uint64_t page;

	(void)fd;
	memcpy(&p, m->body, sizeof(p));
	if (p.addr < d->arena.base || p.addr - d->arena.base >= d->arena.size) {
		r.status = -EFAULT;
	} else {
		page = (p.addr - d->arena.base) / WIRE_PAGE_SIZE;
		r.value = (uint64_t)page_state_of(d, page);
		r.value2 = (uint64_t)dir_master(d, page);
		if ((int)r.value2 != d->cfg.node) {
			home_ask_for_app(d, &home_page_kind, page, c->app,
					 m->hdr->req_id, r.value);
			return;
		}
	}
	client_reply(c, WIRE_IPC_REPLY, m->hdr->req_id, &r, sizeof(r));
}

/* Each tick: the transactions' deadlines, and a sixteenth of the
 * directory's chunks (at most 32, 16,384 entries) for parked requests. */
static void page_tick(struct dsmd *d)
{
	size_t n = (d->page->dir.nchunks + 15) / 16;

	req_tick(d);
	dir_sweep(d, (unsigned)(n < 32 ? n : 32));
}

static const struct dsmd_msg page_msgs[] = {
	/* The master side (dir.c). */
	{WIRE_DSM_REQ, true, dir_on_req_msg},
	{WIRE_DSM_DONE, true, dir_on_done},
	{WIRE_DSM_SHARED, true, dir_on_shared},
	{WIRE_DSM_STUCK, true, dir_on_stuck},
	/* The holder side (holder.c). */
	{WIRE_DSM_FWD, true, holder_on_fwd},
	{WIRE_DSM_INV, true, holder_on_inv},
	{WIRE_DSM_PEER_REQ, true, holder_on_peer_req},
	{WIRE_PAGE_SLOTS, false, holder_on_slots},
	/* The requester side (requester.c). */
	{WIRE_DSM_INV_ACK, true, req_on_ack},
	{WIRE_DSM_PASSED, true, req_on_passed},
	{WIRE_DSM_GRANT, true, req_on_grant},
	{WIRE_DSM_LOST, true, req_on_lost},
	/* A freed region (nodemem.c; node 0's collectives send it). */
	{WIRE_RESET, false, page_on_reset},
	{0},
};

static const struct dsmd_ipc page_ipcs[] = {
	{WIRE_IPC_UFFD, IPC_FROM(WIRE_IPC_KIND_APP), true, fault_on_uffd_ipc},
	{WIRE_IPC_PAGE, IPC_FROM(WIRE_IPC_KIND_APP), true, on_page_ipc},
	{0},
};

const struct dsmd_module page_module = {
	.name = "page",
	.setup = page_setup,
	.teardown = page_teardown,
	.peer_up = holder_peer_up,
	.peer_down = page_peer_down,
	.app_gone = fault_app_gone,
	.tick = page_tick,
	.rdma = page_rdma,
	.rdma_tagged = true,
	.msgs = page_msgs,
	.ipcs = page_ipcs,
};
