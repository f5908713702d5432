/* Public entry points of libdsm.
 *
 * dsm_init() attaches the process to its node's dsmd: it maps the node's
 * memory (a memfd the daemon passes over the Unix socket) at the arena's
 * address, registers the mapping with a userfaultfd for missing, minor and
 * write-protect faults, and passes that userfaultfd to the daemon.  From
 * then on the process's threads never run protocol code: an access the
 * node cannot serve from its own memory blocks in the kernel until dsmd has
 * fetched the page and mapped it.  Every other call is one request to dsmd
 * and its answer, under one lock.
 */
#define _GNU_SOURCE
#include <dsm.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc.h"
#include "kver.h"
#include "locks.h"

#define DSM_STR2(x) #x
#define DSM_STR(x) DSM_STR2(x)

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00) /* /dev/userfaultfd, Linux 6.1 */
#endif

/* What the fault handling needs from userfaultfd on shared memory. */
#define DSM_UFFD_FEATURES (UFFD_FEATURE_MINOR_SHMEM | \
			   UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
/* And what it uses where the kernel has it (Linux 6.6): dsmd poisons a page
 * that cannot be had, so that the faulting access gets SIGBUS itself. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1ull << 14)
#endif

struct opened {
	void *addr;
	struct opened *next;
};

static struct {
	pthread_mutex_t lock;
	bool up;
	int fd, uffd;
	int rank, size, node, nnodes;
	uint64_t job;                  /* DSM_JOB */
	char key[WIRE_JOB_KEY_MAX];    /* DSM_JOB_KEY, "" if none */
	char *base;
	size_t arena_size;
	uint64_t next_req, coll_seq;
	struct opened *opened;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .uffd = -1};

const char *dsm_version(void)
{
	return DSM_STR(DSM_VERSION_MAJOR) "." DSM_STR(DSM_VERSION_MINOR) "."
	       DSM_STR(DSM_VERSION_PATCH);
}

int dsm_daemon_ping(const char *socket, int timeout_ms, int *node,
		    int *nnodes)
{
	struct wire_ipc_hello_ok hello;
	int fd;

	fd = ipc_client_open(socket ? socket : ipc_socket_path(),
			     WIRE_IPC_KIND_CTL, 0, NULL, timeout_ms, &hello);
	if (fd < 0)
		return fd;
	close(fd);
	if (node)
		*node = (int)hello.node;
	if (nnodes)
		*nnodes = (int)hello.nnodes;
	return 0;
}

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
	va_list ap;

	fputs("libdsm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------------------- */
/* The environment                                                        */

/* The first variable of the list that is set, parsed as a number in
 * [0, max]; -1 when none is set, -2 when it is not a number. */
static long env_num(const char *const *names, long max, const char **which)
{
	const char *v;
	char *end;
	long n;

	for (; *names; names++) {
		v = getenv(*names);
		if (!v || !*v)
			continue;
		*which = *names;
		errno = 0;
		n = strtol(v, &end, 10);
		if (*end || errno || n < 0 || n > max)
			return -2;
		return n;
	}
	return -1;
}

static int read_env(struct wire_ipc_attach *at)
{
	static const char *const ranks[] = {"DSM_RANK", "SLURM_PROCID",
		"OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL};
	static const char *const sizes[] = {"DSM_SIZE", "SLURM_NTASKS",
		"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL};
	static const char *const locals[] = {"DSM_LOCAL_SIZE",
		"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", NULL};
	const char *which = "?", *job = getenv("DSM_JOB"),
		   *key = getenv("DSM_JOB_KEY");
	long rank, size, local;
	char *end;

	rank = env_num(ranks, 1 << 20, &which);
	size = env_num(sizes, 1 << 20, &which);
	if (rank == -1 || size == -1) {
		complain("dsm_init: no rank or job size in the environment "
			 "(DSM_RANK and DSM_SIZE, or a launcher's); start the "
			 "program with dsmrun");
		return -EINVAL;
	}
	if (rank < 0 || size <= 0 || rank >= size) {
		complain("dsm_init: bad rank or job size in the environment "
			 "(%s)", which);
		return -EINVAL;
	}
	local = env_num(locals, size, &which);
	if (local == -2 || local == 0) {
		complain("dsm_init: bad %s", which);
		return -EINVAL;
	}
	*at = (struct wire_ipc_attach){
		.rank = (uint32_t)rank, .size = (uint32_t)size,
		.local_size = local > 0 ? (uint32_t)local : 1,
	};
	/* The job: dsmrun's, else the launcher's. */
	if (!job || !*job)
		job = getenv("SLURM_JOB_ID");
	g.job = 0;
	if (job && *job) {
		errno = 0;
		g.job = strtoull(job, &end, 10);
		if (errno || *end) {
			complain("dsm_init: bad job id in the environment "
				 "(DSM_JOB or SLURM_JOB_ID): \"%s\"", job);
			return -EINVAL;
		}
	}
	if (key && strlen(key) >= sizeof(g.key)) {
		complain("dsm_init: DSM_JOB_KEY is longer than %zu bytes",
			 sizeof(g.key) - 1);
		return -EINVAL;
	}
	snprintf(g.key, sizeof(g.key), "%s", key ? key : "");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* userfaultfd                                                            */

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), dev;

	if (fd >= 0 || errno != EPERM)
		return fd >= 0 ? fd : -errno;
	/* Unprivileged: /dev/userfaultfd, if its mode lets us. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd >= 0 ? fd : -EPERM;
}

static void name_missing(uint64_t have)
{
	if (!(have & UFFD_FEATURE_MINOR_SHMEM))
		complain("dsm_init: this kernel's userfaultfd lacks minor "
			 "faults on shared memory (UFFD_FEATURE_MINOR_SHMEM)");
	if (!(have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		complain("dsm_init: this kernel's userfaultfd lacks write "
			 "protection of shared memory "
			 "(UFFD_FEATURE_WP_HUGETLBFS_SHMEM)");
}

/* A userfaultfd with every feature libdsm needs, or a negative errno
 * after saying what is missing. */
static int uffd_create(void)
{
	struct uffdio_api api = {.api = UFFD_API,
				 .features = DSM_UFFD_FEATURES};
	int fd = uffd_open(), probe;

	if (fd < 0) {
		complain("dsm_init: userfaultfd: %s (needs "
			 "vm.unprivileged_userfaultfd=1, CAP_SYS_PTRACE, or "
			 "access to /dev/userfaultfd)", strerror(-fd));
		return fd == -EPERM ? -EPERM : -ENOSYS;
	}
	/* The features are asked for once per descriptor: with poison
	 * first, then without it on a kernel that lacks it. */
	api.features |= UFFD_FEATURE_POISON;
	if (ioctl(fd, UFFDIO_API, &api) == 0)
		return fd;
	close(fd);
	fd = uffd_open();
	api = (struct uffdio_api){.api = UFFD_API,
				  .features = DSM_UFFD_FEATURES};
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	probe = uffd_open();
	api = (struct uffdio_api){.api = UFFD_API};
	if (probe >= 0 && ioctl(probe, UFFDIO_API, &api) == 0)
		name_missing(api.features);
	else
		complain("dsm_init: userfaultfd refuses its API handshake");
	if (probe >= 0)
		close(probe);
	return -ENOSYS;
}

static int uffd_register(int uffd, void *base, size_t len)
{
	struct uffdio_register reg = {
		.range = {.start = (uint64_t)(uintptr_t)base, .len = len},
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP,
	};
	uint64_t need = (1ull << _UFFDIO_CONTINUE) |
			(1ull << _UFFDIO_WRITEPROTECT);

	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		complain("dsm_init: registering the arena with userfaultfd: "
			 "%s", strerror(errno));
		return -ENOSYS;
	}
	if ((reg.ioctls & need) != need) {
		complain("dsm_init: userfaultfd cannot continue or "
			 "write-protect faults on shared memory here");
		return -ENOSYS;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Requests                                                               */

/* Send a request and wait for its answer: 0 and the answer's body in out,
 * or a negative errno (the daemon's, or the connection's). */
static int call(unsigned type, const void *body, size_t len, void *out,
		size_t out_len, int *passed)
{
	char buf[1024];
	struct wire_msg m;
	uint64_t id = ++g.next_req;
	int ret, fd;

	ret = ipc_send(g.fd, type, id, body, len);
	if (ret)
		return ret;
	for (;;) {
		ret = ipc_recv_fd(g.fd, buf, sizeof(buf), -1, &m, NULL, &fd);
		if (ret)
			return ret == -ECONNRESET ? -EIO : ret;
		if (m.hdr->req_id == id)
			break;
		if (fd >= 0)
			close(fd);
	}
	if (m.hdr->type == WIRE_IPC_RESULT) {
		struct wire_ipc_result r;

		memcpy(&r, m.body, sizeof(r));
		if (fd >= 0)
			close(fd);
		return r.status < 0 ? r.status : -EPROTO;
	}
	if (m.body_len != out_len) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	memcpy(out, m.body, out_len);
	if (passed)
		*passed = fd;
	else if (fd >= 0)
		close(fd);
	return 0;
}

/* A request answered with IPC_REPLY: its status, and its values. */
static int call_reply(unsigned type, const void *body, size_t len,
		      uint64_t *v1, uint64_t *v2)
{
	struct wire_ipc_reply r;
	int ret = call(type, body, len, &r, sizeof(r), NULL);

	if (ret)
		return ret;
	if (v1)
		*v1 = r.value;
	if (v2)
		*v2 = r.value2;
	return r.status;
}

static int coll(unsigned op, uint64_t arg, uint64_t *value)
{
	struct wire_ipc_coll c = {.seq = g.coll_seq, .arg = arg, .op = op};
	int ret;

	ret = call_reply(WIRE_IPC_COLL, &c, sizeof(c), value, NULL);
	/* Counted even when the daemon refused it: every rank saw it. */
	if (ret != -EPROTO && ret != -EIO)
		g.coll_seq++;
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Attach and detach                                                      */

static int attach(const struct wire_ipc_attach *at)
{
	const char *path = ipc_socket_path();
	struct wire_ipc_hello_ok hello;
	struct wire_ipc_attach_ok ok;
	int memfd = -1, ret;
	void *p;

	g.fd = ipc_client_open(path, WIRE_IPC_KIND_APP, g.job, g.key, 10000,
			       &hello);
	if (g.fd == -EBUSY || g.fd == -EACCES) {
		ret = g.fd;
		complain("dsm_init: dsmd at %s refused job %llu: %s", path,
			 (unsigned long long)g.job, ret == -EBUSY
			 ? "it serves another job (one dsmd serves one job; "
			   "DSM_JOB names this one)"
			 : "not the job's key (DSM_JOB_KEY)");
		return ret;
	}
	if (g.fd < 0) {
		ret = g.fd;
		complain("dsm_init: cannot reach dsmd at %s: %s (is dsmd "
			 "running? DSM_SOCKET names its socket)", path,
			 strerror(-ret));
		return ret;
	}
	ret = call(WIRE_IPC_ATTACH, at, sizeof(*at), &ok, sizeof(ok), &memfd);
	if (ret == 0 && memfd < 0)
		ret = -EPROTO;
	if (ret) {
		complain("dsm_init: dsmd at %s refused to attach rank %u: %s",
			 path, at->rank,
			 ret == -EEXIST ? "that rank is attached there already"
			 : ret == -EUSERS ? "DSM_LOCAL_SIZE processes are "
					    "attached there already"
			 : ret == -EINVAL ? "another rank said the job has "
					    "another DSM_SIZE"
			 : strerror(-ret));
		return ret;
	}
	p = mmap((void *)(uintptr_t)ok.base, ok.size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, memfd, 0);
	close(memfd);
	if (p == MAP_FAILED || p != (void *)(uintptr_t)ok.base) {
		if (p != MAP_FAILED)
			munmap(p, ok.size);
		complain("dsm_init: the arena's range %#llx+%llu is taken in "
			 "this process", (unsigned long long)ok.base,
			 (unsigned long long)ok.size);
		return -EADDRINUSE;
	}
	g.base = p;
	g.arena_size = ok.size;
	g.node = (int)ok.node;
	g.nnodes = (int)ok.nnodes;
	madvise(p, ok.size, MADV_DONTFORK);
	ret = uffd_register(g.uffd, p, ok.size);
	if (ret)
		return ret;
	ret = ipc_send_fd(g.fd, WIRE_IPC_UFFD, ++g.next_req, NULL, 0, g.uffd);
	if (ret == 0) {
		char buf[256];
		struct wire_msg m;
		struct wire_ipc_result r = {.status = -EPROTO};

		ret = ipc_recv(g.fd, buf, sizeof(buf), -1, &m, NULL);
		if (ret == 0 && m.hdr->type == WIRE_IPC_RESULT)
			memcpy(&r, m.body, sizeof(r));
		if (ret == 0)
			ret = r.status;
	}
	if (ret)
		complain("dsm_init: dsmd did not take the userfaultfd: %s",
			 strerror(-ret));
	return ret;
}

static void detach_local(void)
{
	if (g.base)
		munmap(g.base, g.arena_size);
	if (g.fd >= 0)
		close(g.fd);
	if (g.uffd >= 0)
		close(g.uffd);
	while (g.opened) {
		struct opened *o = g.opened;

		g.opened = o->next;
		free(o);
	}
	g.base = NULL;
	g.fd = g.uffd = -1;
	g.up = false;
}

int dsm_init(void)
{
	struct wire_ipc_attach at;
	char why[160];
	int ret;

	pthread_mutex_lock(&g.lock);
	if (g.up) {
		pthread_mutex_unlock(&g.lock);
		return -EALREADY;
	}
	ret = read_env(&at);
	if (ret == 0 && kver_check(why, sizeof(why))) {
		complain("dsm_init: %s", why);
		ret = -ENOSYS;
	}
	if (ret == 0) {
		g.uffd = uffd_create();
		ret = g.uffd < 0 ? g.uffd : 0;
	}
	if (ret == 0)
		ret = attach(&at);
	if (ret == 0) {
		g.rank = (int)at.rank;
		g.size = (int)at.size;
		g.coll_seq = 0;
		g.up = true;
	} else {
		detach_local();
	}
	pthread_mutex_unlock(&g.lock);
	return ret;
}

const char *libdsm_job(uint64_t *job)
{
	*job = g.job;
	return g.key;
}

bool libdsm_up(void)
{
	bool up;

	pthread_mutex_lock(&g.lock);
	up = g.up;
	pthread_mutex_unlock(&g.lock);
	return up;
}

int dsm_finalize(void)
{
	struct wire_ipc_result r;

	/* Locks first: they are released as the connection closes. */
	if (libdsm_up())
		libdsm_locks_close();
	pthread_mutex_lock(&g.lock);
	if (!g.up) {
		pthread_mutex_unlock(&g.lock);
		return -EINVAL;
	}
	/* Pages stay with the node whatever the answer. */
	call(WIRE_IPC_DETACH, NULL, 0, &r, sizeof(r), NULL);
	detach_local();
	pthread_mutex_unlock(&g.lock);
	return 0;
}

/* Run f under the lock once attached; -ENOTCONN before dsm_init(). */
#define LOCKED(expr)                                                       \
	({                                                                 \
		int _ret;                                                  \
		pthread_mutex_lock(&g.lock);                               \
		_ret = g.up ? (expr) : -ENOTCONN;                          \
		pthread_mutex_unlock(&g.lock);                             \
		_ret;                                                      \
	})

/* A number fixed at dsm_init(); -EINVAL before it. */
static int attached_int(const int *v)
{
	int r;

	pthread_mutex_lock(&g.lock);
	r = g.up ? *v : -EINVAL;
	pthread_mutex_unlock(&g.lock);
	return r;
}

int dsm_rank(void) { return attached_int(&g.rank); }
int dsm_size(void) { return attached_int(&g.size); }
int dsm_node(void) { return attached_int(&g.node); }
int dsm_num_nodes(void) { return attached_int(&g.nnodes); }

/* ---------------------------------------------------------------------- */
/* Memory                                                                 */

void *dsm_alloc(size_t size)
{
	uint64_t addr = 0;
	int ret = LOCKED(coll(WIRE_COLL_ALLOC, size, &addr));

	if (ret) {
		errno = -ret;
		return NULL;
	}
	return (void *)(uintptr_t)addr;
}

int dsm_free(void *addr)
{
	return LOCKED(coll(WIRE_COLL_FREE, (uint64_t)(uintptr_t)addr, NULL));
}

int dsm_barrier(void)
{
	return LOCKED(coll(WIRE_COLL_BARRIER, 0, NULL));
}

static int open_region(const char *name, size_t size, int flags,
		       uint64_t *addr)
{
	struct wire_region_op op = {.op = WIRE_REGION_OPEN,
				    .flags = (uint32_t)flags, .size = size};
	struct opened *o = malloc(sizeof(*o));
	int ret;

	if (!o)
		return -ENOMEM;
	snprintf(op.name, sizeof(op.name), "%s", name);
	ret = call_reply(WIRE_IPC_REGION, &op, sizeof(op), addr, NULL);
	if (ret) {
		free(o);
		return ret;
	}
	o->addr = (void *)(uintptr_t)*addr;
	o->next = g.opened;
	g.opened = o;
	return 0;
}

void *dsm_open(const char *name, size_t size, int flags)
{
	uint64_t addr = 0;
	size_t len = name ? strnlen(name, DSM_NAME_MAX + 1) : 0;
	int ret;

	if (len == 0 || len > DSM_NAME_MAX ||
	    (flags & ~(DSM_CREATE | DSM_EXCL)) ||
	    ((flags & DSM_EXCL) && !(flags & DSM_CREATE)) ||
	    ((flags & DSM_CREATE) && size == 0)) {
		errno = EINVAL;
		return NULL;
	}
	ret = LOCKED(open_region(name, size, flags, &addr));
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return (void *)(uintptr_t)addr;
}

static int close_region(void *addr)
{
	struct wire_region_op op = {.op = WIRE_REGION_CLOSE,
				    .addr = (uint64_t)(uintptr_t)addr};
	struct opened **pp, *o;

	for (pp = &g.opened; (o = *pp); pp = &o->next)
		if (o->addr == addr)
			break;
	if (!o)
		return -EINVAL;
	*pp = o->next;
	free(o);
	return call_reply(WIRE_IPC_REGION, &op, sizeof(op), NULL, NULL);
}

int dsm_close(void *addr)
{
	return LOCKED(close_region(addr));
}

/* ---------------------------------------------------------------------- */
/* Inspection                                                             */

static int page_info(const void *addr, bool master)
{
	struct wire_ipc_page p = {.addr = (uint64_t)(uintptr_t)addr};
	uint64_t state = 0, node = 0;
	int ret;

	if ((const char *)addr < g.base ||
	    (size_t)((const char *)addr - g.base) >= g.arena_size)
		return -EFAULT;
	ret = call_reply(WIRE_IPC_PAGE, &p, sizeof(p), &state, &node);
	if (ret)
		return ret;
	return (int)(master ? node : state);
}

int dsm_page_state(const void *addr)
{
	return LOCKED(page_info(addr, false));
}

int dsm_page_master(const void *addr)
{
	return LOCKED(page_info(addr, true));
}

/* ---------------------------------------------------------------------- */
/* Placement policy                                                       */

static bool policy_ok(const struct dsm_policy *p)
{
	return p->placement <= DSM_PLACE_FIRST_TOUCH && p->migrate <= 1 &&
	       p->share_pct >= 51 && p->share_pct <= 100 &&
	       p->min_requests >= 1 && p->min_requests <= 65535 &&
	       p->window_ms >= 1 && p->window_ms <= 3600000 &&
	       p->load_pct >= 100 && p->load_pct <= 100000 &&
	       !p->reserved[0] && !p->reserved[1];
}

static int policy_call(const struct wire_ipc_policy *req,
		       struct dsm_policy *out)
{
	struct wire_ipc_policy_reply r;
	int ret = call(WIRE_IPC_POLICY, req, sizeof(*req), &r, sizeof(r),
		       NULL);

	if (ret)
		return ret;
	if (r.status)
		return r.status < 0 ? r.status : -EPROTO;
	if (out)
		*out = (struct dsm_policy){
			.placement = r.p.placement, .migrate = r.p.migrate,
			.share_pct = r.p.share_pct,
			.min_requests = r.p.min_requests,
			.window_ms = r.p.window_ms, .load_pct = r.p.load_pct};
	return 0;
}

int dsm_set_policy(void *addr, size_t len, const struct dsm_policy *p)
{
	struct wire_ipc_policy req = {.addr = (uint64_t)(uintptr_t)addr,
				      .len = len, .op = WIRE_POLICY_CLEAR};

	if (!len || (p && !policy_ok(p)))
		return -EINVAL;
	if (p) {
		req.op = WIRE_POLICY_SET;
		req.p = (struct wire_policy){
			.placement = p->placement, .migrate = p->migrate,
			.share_pct = p->share_pct,
			.min_requests = p->min_requests,
			.window_ms = p->window_ms, .load_pct = p->load_pct};
	}
	return LOCKED(policy_call(&req, NULL));
}

int dsm_get_policy(const void *addr, struct dsm_policy *out)
{
	struct wire_ipc_policy req = {.addr = (uint64_t)(uintptr_t)addr,
				      .op = WIRE_POLICY_GET};

	if (!out)
		return -EINVAL;
	return LOCKED(policy_call(&req, out));
}

static int stats(struct dsm_stats *out)
{
	return call(WIRE_IPC_STATS, NULL, 0, out, sizeof(*out), NULL);
}

int dsm_get_stats(struct dsm_stats *out)
{
	if (!out)
		return -EINVAL;
	return LOCKED(stats(out));
}

static int arena(void **base, size_t *size)
{
	if (base)
		*base = g.base;
	if (size)
		*size = g.arena_size;
	return 0;
}

int dsm_arena(void **base, size_t *size)
{
	return LOCKED(arena(base, size));
}
