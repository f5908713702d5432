/* The lock library never touches a caller's status block while it holds
 * its mutex (rxe test "lksb_fault", 1 node).
 *
 * A status block may lie in shared memory, where touching it faults and
 * waits for the network.  Here thread B's block lies in a page of this
 * test's own whose first touch is held by the test's userfaultfd: B's
 * dsm_lock() stalls at it.  While it is held the main thread locks and
 * unlocks another resource: that must finish.  If the library touched
 * B's block with its mutex held, the main thread would wait for the
 * mutex until the test let the fault go (after HOLD_S seconds), and the
 * test fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "rxe_job.h"

#define PAGE 4096
#define HOLD_S 20 /* the fault is let go by then at the latest */

static int uffd;
static char *slow_page;
static atomic_bool faulted, released_early;
static atomic_bool main_done;
static int slow_ret = 1;

/* Hold the first fault on the page until the main thread is done (or
 * HOLD_S passed), then resolve it with a zero page. */
static void *handler(void *unused)
{
	struct pollfd pfd = {.fd = uffd, .events = POLLIN};
	struct uffd_msg msg;
	struct uffdio_zeropage z = {
		.range = {.start = (uintptr_t)slow_page, .len = PAGE},
	};

	(void)unused;
	if (poll(&pfd, 1, HOLD_S * 1000) != 1 ||
	    read(uffd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		FAIL("no fault on the status block's page");
	faulted = true;
	for (int i = 0; i < HOLD_S * 100 && !main_done; i++)
		usleep(10000);
	released_early = !main_done;
	if (ioctl(uffd, UFFDIO_ZEROPAGE, &z))
		FAIL("UFFDIO_ZEROPAGE: %s", strerror(errno));
	return NULL;
}

static void *slow_locker(void *unused)
{
	struct dsm_lksb *lksb = (struct dsm_lksb *)slow_page;

	(void)unused;
	slow_ret = dsm_lock(DSM_LK_EX, lksb, 0, "lksb-slow", 0, 0, NULL, NULL,
			    NULL);
	if (!slow_ret)
		slow_ret = lksb->status;
	if (!slow_ret)
		slow_ret = dsm_unlock(lksb, 0);
	return NULL;
}

int main(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
	struct dsm_lksb fast = {0};
	pthread_t h, b;
	int ret;

	job_start(1);
	slow_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slow_page == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		FAIL("userfaultfd: %s", strerror(errno));
	reg.range = (struct uffdio_range){.start = (uintptr_t)slow_page,
					  .len = PAGE};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		FAIL("UFFDIO_REGISTER: %s", strerror(errno));
	/* The lock connection is opened first, so that B's call does not
	 * start it. */
	ret = dsm_lock(DSM_LK_EX, &fast, 0, "lksb-fast", 0, 0, NULL, NULL,
		       NULL);
	if (ret || (ret = dsm_unlock(&fast, 0)))
		FAIL("warm-up lock: %s", strerror(-ret));
	pthread_create(&h, NULL, handler, NULL);
	pthread_create(&b, NULL, slow_locker, NULL);
	while (!faulted)
		usleep(1000);
	/* B is stuck at its block: the library must still serve us. */
	ret = dsm_lock(DSM_LK_EX, &fast, 0, "lksb-fast", 0, 0, NULL, NULL,
		       NULL);
	if (!ret)
		ret = dsm_unlock(&fast, 0);
	main_done = true;
	pthread_join(h, NULL);
	pthread_join(b, NULL);
	if (ret)
		FAIL("lock while B's block faults: %s", strerror(-ret));
	if (released_early)
		FAIL("the other lock call waited for B's faulting status "
		     "block (%d s): the library touched it under its mutex",
		     HOLD_S);
	if (slow_ret)
		FAIL("B's lock on the faulting block: %s", strerror(-slow_ret));
	printf("PASS: a status block that faults stops no other lock call\n");
	dsm_finalize();
	return 0;
}
