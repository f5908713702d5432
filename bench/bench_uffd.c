/* bench_uffd: the local floor of a userfaultfd fault, the part of every DSM
 * fault that involves no network.  A page of a memfd mapping (node memory
 * is a memfd in libdsm) is registered with a userfaultfd; a handler thread,
 * blocked in poll() on the userfaultfd, resolves each fault; the timed
 * operation is one access from the faulting thread, from the instruction
 * that faults until it completes.  Resetting the page for the next fault is
 * untimed (benchlib's prepare hook).
 *
 *   uffd_missing_copy  read of a page not in the memfd: MISSING fault,
 *                      resolved with UFFDIO_COPY of 4 KiB in WP mode (a read
 *                      miss once the data has arrived); reset: MADV_REMOVE
 *   uffd_minor         read of a page in the memfd's page cache but not
 *                      mapped here: MINOR fault, UFFDIO_CONTINUE (a second
 *                      process on a node that holds the page); reset:
 *                      MADV_DONTNEED
 *   uffd_wp            write to a write-protected page: WP fault, WP cleared
 *                      with UFFDIO_WRITEPROTECT (an upgrade once granted);
 *                      reset: write-protect again
 *
 * The handler is a thread of this process; in libdsm it is dsmd, another
 * process holding the passed userfaultfd, which costs the same wake-ups.
 * The handler never touches the registered memory itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "benchlib.h"
#include "bench_cli.h"

#define PAGE 4096u

enum uffd_case { C_MISSING, C_MINOR, C_WP, C_MAX };

struct uffd_bench {
	enum uffd_case kind;
	int uffd, memfd, stop_fd[2];
	unsigned char *map;   /* registered mapping (the "application") */
	unsigned char *alias; /* unregistered mapping of the same memfd */
	unsigned char src[PAGE] __attribute__((aligned(PAGE)));
	pthread_t handler;
	bool handler_up;
	int handler_err;      /* first error of the handler, negative errno */
	unsigned long faults; /* resolved by the handler */
	unsigned long ops;    /* accesses made by the faulting thread */
};

static const char *const case_names[C_MAX] = {
	[C_MISSING] = "uffd_missing_copy", [C_MINOR] = "uffd_minor",
	[C_WP] = "uffd_wp",
};

static const char *const case_notes[C_MAX] = {
	[C_MISSING] = "read of a page not in the memfd: MISSING fault, "
		      "UFFDIO_COPY 4 KiB (WP mode) by a handler thread",
	[C_MINOR] = "read of a page cached but not mapped: MINOR fault, "
		    "UFFDIO_CONTINUE by a handler thread",
	[C_WP] = "write to a write-protected page: WP fault, "
		 "UFFDIO_WRITEPROTECT cleared by a handler thread",
};

/* ---------------------------------------------------------------------- */
/* The handler thread                                                     */

static int resolve(struct uffd_bench *b, const struct uffd_msg *m)
{
	unsigned long addr = m->arg.pagefault.address & ~(unsigned long)(PAGE - 1);
	unsigned long flags = m->arg.pagefault.flags;

	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		struct uffdio_writeprotect wp = {
			.range = {.start = addr, .len = PAGE}, .mode = 0,
		};

		return ioctl(b->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
		struct uffdio_continue c = {
			.range = {.start = addr, .len = PAGE},
		};

		if (ioctl(b->uffd, UFFDIO_CONTINUE, &c) && errno != EEXIST)
			return -errno;
		return 0;
	}
	{
		struct uffdio_copy c = {
			.dst = addr, .src = (unsigned long)b->src, .len = PAGE,
			.mode = UFFDIO_COPY_MODE_WP,
		};

		/* EEXIST: another thread resolved it first; it was woken. */
		if (ioctl(b->uffd, UFFDIO_COPY, &c) && errno != EEXIST)
			return -errno;
		return 0;
	}
}

static void *handler_main(void *arg)
{
	struct uffd_bench *b = arg;
	struct pollfd pfd[2] = {
		{.fd = b->uffd, .events = POLLIN},
		{.fd = b->stop_fd[0], .events = POLLIN},
	};
	struct uffd_msg m;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			b->handler_err = -errno;
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (read(b->uffd, &m, sizeof(m)) != sizeof(m)) {
			if (errno == EAGAIN)
				continue;
			b->handler_err = -errno;
			return NULL;
		}
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		/* Counted before the fault is resolved: the release pairs
		 * with the acquire in uffd_counters(), which the faulting
		 * thread runs only after the wake-up this resolve causes. */
		__atomic_fetch_add(&b->faults, 1, __ATOMIC_RELEASE);
		if (resolve(b, &m) && !b->handler_err)
			b->handler_err = -errno;
	}
}

/* ---------------------------------------------------------------------- */
/* Set-up                                                                 */

static int uffd_open(uint64_t *features)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MINOR_SHMEM |
			    UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = -errno;

		close(fd);
		return e;
	}
	*features = api.features;
	return fd;
}

static int bench_begin(void *ctx)
{
	struct uffd_bench *b = ctx;
	struct uffdio_register reg = {.range = {.len = PAGE}};
	/* UFFDIO_COPY_MODE_WP needs the range registered for WP too. */
	static const uint64_t need[C_MAX] = {
		[C_MISSING] = UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
		[C_MINOR] = UFFD_FEATURE_MINOR_SHMEM,
		[C_WP] = UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	uint64_t features = 0;
	int ret;

	memset(b->src, 0xa5, PAGE);
	b->uffd = uffd_open(&features);
	if (b->uffd < 0) {
		fprintf(stderr, "bench_uffd: userfaultfd: %s (root, or "
			"vm.unprivileged_userfaultfd=1, is needed)\n",
			strerror(-b->uffd));
		return b->uffd;
	}
	if ((features & need[b->kind]) != need[b->kind]) {
		fprintf(stderr, "bench_uffd: this kernel lacks the userfaultfd "
			"feature %s needs (Linux 6.4 or later has it)\n",
			case_names[b->kind]);
		return -EOPNOTSUPP;
	}
	b->memfd = memfd_create("bench_uffd", MFD_CLOEXEC);
	if (b->memfd < 0 || ftruncate(b->memfd, PAGE))
		return -errno;
	b->map = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd, 0);
	b->alias = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			b->memfd, 0);
	if (b->map == MAP_FAILED || b->alias == MAP_FAILED)
		return -errno;
	reg.range.start = (unsigned long)b->map;
	reg.mode = b->kind == C_MISSING ? UFFDIO_REGISTER_MODE_MISSING |
						  UFFDIO_REGISTER_MODE_WP
		   : b->kind == C_MINOR ? UFFDIO_REGISTER_MODE_MINOR
					: UFFDIO_REGISTER_MODE_WP;
	if (ioctl(b->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	/* MINOR and WP need the page in the page cache, and WP needs it
	 * mapped: fill it through the alias, map it by a first write. */
	if (b->kind != C_MISSING)
		memset(b->alias, 0x5a, PAGE);
	if (b->kind == C_WP)
		b->map[0] = 1;
	if (pipe2(b->stop_fd, O_CLOEXEC))
		return -errno;
	ret = pthread_create(&b->handler, NULL, handler_main, b);
	if (ret)
		return -ret;
	b->handler_up = true;
	return 0;
}

static int bench_prepare(void *ctx)
{
	struct uffd_bench *b = ctx;

	switch (b->kind) {
	case C_MISSING:
		return madvise(b->map, PAGE, MADV_REMOVE) ? -errno : 0;
	case C_MINOR:
		return madvise(b->map, PAGE, MADV_DONTNEED) ? -errno : 0;
	case C_WP: {
		struct uffdio_writeprotect wp = {
			.range = {.start = (unsigned long)b->map, .len = PAGE},
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		return ioctl(b->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
	}
	default:
		return -EINVAL;
	}
}

/* The timed access.  volatile: the compiler must really touch the page. */
static int bench_op(void *ctx)
{
	struct uffd_bench *b = ctx;
	volatile unsigned char *p = b->map;

	if (b->kind == C_WP)
		p[64] = (unsigned char)(p[64] + 1);
	else
		(void)p[64];
	b->ops++;
	return b->handler_err;
}

static int bench_end(void *ctx)
{
	struct uffd_bench *b = ctx;

	if (b->handler_up) {
		if (write(b->stop_fd[1], "x", 1) != 1)
			return -errno;
		pthread_join(b->handler, NULL);
		b->handler_up = false;
	}
	if (b->map && b->map != MAP_FAILED)
		munmap(b->map, PAGE);
	if (b->alias && b->alias != MAP_FAILED)
		munmap(b->alias, PAGE);
	close(b->uffd);
	close(b->memfd);
	close(b->stop_fd[0]);
	close(b->stop_fd[1]);
	return b->handler_err;
}

/* ---------------------------------------------------------------------- */
/* Main                                                                   */

/* Counted, not assumed: the handler's faults over the accesses made
 * (warm-up included), so a reset that failed to re-arm the fault, or a
 * spurious second fault, shows. */
static int uffd_counters(void *ctx, struct bench_result *r)
{
	struct uffd_bench *b = ctx;
	unsigned long faults = __atomic_load_n(&b->faults, __ATOMIC_ACQUIRE);

	return bench_result_add_counter(r, "faults_per_op",
					b->ops ? (double)faults / (double)b->ops
					       : 0.0);
}

int main(int argc, char **argv)
{
	static struct uffd_bench b[C_MAX];
	struct bench_case cases[C_MAX];
	struct bench_cli o = {
		.tool = "bench_uffd",
		.title = "bench_uffd: the local userfaultfd floor, 4 KiB shmem "
			 "page, handler thread blocked in poll()",
		.hint = "needs root (or vm.unprivileged_userfaultfd=1) and "
			"Linux 6.4 or later",
	};
	int i, ret = bench_cli_parse(&o, argc, argv);

	if (ret)
		return ret > 0 ? 0 : 2;
	for (i = 0; i < C_MAX; i++) {
		b[i] = (struct uffd_bench){.kind = (enum uffd_case)i,
					   .uffd = -1, .memfd = -1,
					   .stop_fd = {-1, -1}};
		cases[i] = (struct bench_case){
			.name = case_names[i], .note = case_notes[i],
			.bytes = PAGE, .divisor = 1, .begin = bench_begin,
			.prepare = bench_prepare, .op = bench_op,
			.counters = uffd_counters, .end = bench_end,
			.ctx = &b[i],
		};
	}
	return bench_cli_run(&o, cases, C_MAX);
}
