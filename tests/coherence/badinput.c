/* Bad input to the API, with a daemon (badinput) and without (init_errors).
 *
 *   coherence badinput
 *     before dsm_init, rank 0 forks children whose dsm_init must fail with
 *     -EINVAL: no rank in the environment, a rank outside the job; then
 *     dsm_init twice (-EALREADY), dsm_alloc(0) (EINVAL), dsm_alloc(2^62)
 *     (EINVAL or ENOMEM), dsm_alloc(arena size + a page) (ENOMEM), ranks
 *     asking different sizes (every rank EINVAL, twice: all differ, one
 *     differs), then equal sizes still work (page aligned, zero filled,
 *     shared); dsm_free of a non-region (-EINVAL); a freed and re-allocated
 *     region is zero again; dsm_page_state/master outside the arena
 *     (-EFAULT); dsm_get_stats(NULL) (-EINVAL).
 *
 *   coherence init_errors socket|kernel|before     (no daemon needed)
 *     socket: DSM_SOCKET=/nonexistent/sock: dsm_init fails with -ENOENT or
 *             -ECONNREFUSED and stderr names the socket;
 *     kernel: DSM_TEST_KERNEL_RELEASE=5.15.0 (and 6.3.9): -ENOSYS, stderr
 *             says 6.4 is needed, found before any connection is tried
 *             (the socket is missing too); 6.4.0, 6.10.1 and 7.0 pass that
 *             check (the error is the socket's);
 *     before: calls before dsm_init fail with ENOTCONN or EINVAL.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOSOCK "/nonexistent/sock"
#define NOSOCK_ENV "DSM_SOCKET=/nonexistent/sock"

static const char *const launcher_vars[] = {
	"DSM_RANK", "DSM_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
	"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK",
	"PMI_SIZE"};

/* dsm_init() in a child with the environment changes `env` ("NAME=value"
 * sets, "NAME" unsets); returns its result, its stderr in err. */
static int init_in_child(const char *const *env, size_t nenv, char *err,
			 size_t errlen)
{
	char path[] = "/tmp/coherence-stderr-XXXXXX";
	int p[2], rc = 1, fd = mkstemp(path), status;
	ssize_t n;
	pid_t pid;

	if (fd < 0 || pipe(p))
		coh_fail("mkstemp/pipe: %s", strerror(errno));
	unlink(path);
	pid = fork();
	if (pid < 0)
		coh_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		size_t i;

		for (i = 0; i < nenv; i++) {
			const char *eq = strchr(env[i], '=');
			char name[128];

			if (!eq) {
				unsetenv(env[i]);
				continue;
			}
			snprintf(name, sizeof(name), "%.*s",
				 (int)(eq - env[i]), env[i]);
			setenv(name, eq + 1, 1);
		}
		dup2(fd, STDERR_FILENO);
		rc = dsm_init();
		if (write(p[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], &rc, sizeof(rc));
	close(p[0]);
	waitpid(pid, &status, 0);
	if (n != sizeof(rc))
		coh_fail("the child calling dsm_init died (status %#x)",
			 status);
	n = pread(fd, err, errlen - 1, 0);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		n--;
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

static bool kernel_at_least_6_4(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	return major > 6 || (major == 6 && minor >= 4);
}

static int init_socket(void)
{
	static const char *const env[] = {"DSM_RANK=0", "DSM_SIZE=1",
		"DSM_LOCAL_SIZE=1", NOSOCK_ENV,
		"DSM_TEST_KERNEL_RELEASE"};
	char err[4096];
	int rc = init_in_child(env, 5, err, sizeof(err));

	coh_say("dsm_init with DSM_SOCKET=%s: %d (%s); stderr: %s", NOSOCK,
		rc, strerror(-rc), err);
	if (rc == -ENOSYS && !kernel_at_least_6_4()) {
		coh_say("SKIP: this kernel is older than 6.4");
		return 77;
	}
	if (rc == -EPERM) {
		coh_say("SKIP: userfaultfd is not permitted here");
		return 77;
	}
	if (rc != -ENOENT && rc != -ECONNREFUSED)
		coh_fail("dsm_init returned %d (%s), want -ENOENT or "
			 "-ECONNREFUSED", rc, strerror(-rc));
	if (!strstr(err, NOSOCK))
		coh_fail("the error message does not name the socket %s",
			 NOSOCK);
	coh_say("ok");
	return 0;
}

static int init_release(const char *release, char *err, size_t len)
{
	char rel[64];
	const char *env[] = {"DSM_RANK=0", "DSM_SIZE=1", "DSM_LOCAL_SIZE=1",
			     NOSOCK_ENV, rel};
	int rc;

	snprintf(rel, sizeof(rel), "DSM_TEST_KERNEL_RELEASE=%s", release);
	rc = init_in_child(env, 5, err, len);
	coh_say("dsm_init with DSM_TEST_KERNEL_RELEASE=%s: %d (%s); stderr: %s",
		release, rc, strerror(-rc), err);
	return rc;
}

static int init_kernel(void)
{
	static const char *const old[] = {"5.15.0", "6.3.9", "4.19.0-25-amd64"};
	static const char *const ok[] = {"6.4.0", "6.10.1", "7.0"};
	char err[4096];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		rc = init_release(old[i], err, sizeof(err));
		if (rc != -ENOSYS)
			coh_fail("kernel %s: dsm_init returned %d (%s), want "
				 "-ENOSYS%s", old[i], rc, strerror(-rc),
				 rc == -ENOENT ? " (did it connect first?)" :
				 "");
		if (!strstr(err, "6.4"))
			coh_fail("kernel %s: the message does not say 6.4 is "
				 "needed", old[i]);
	}
	if (!kernel_at_least_6_4()) {
		coh_say("this kernel is older than 6.4: not checking that "
			"newer releases pass");
		return 0;
	}
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		rc = init_release(ok[i], err, sizeof(err));
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EPERM)
			coh_fail("kernel %s: dsm_init returned %d (%s), want "
				 "the missing socket's -ENOENT", ok[i], rc,
				 strerror(-rc));
	}
	coh_say("ok");
	return 0;
}

#define EXPECT_RC(call, want)                                              \
	do {                                                               \
		int rc_ = (call);                                          \
		if (rc_ != (want))                                         \
			coh_fail("%s = %d (%s), want %d (%s)", #call, rc_, \
				 strerror(-rc_), want, strerror(-(want)));  \
	} while (0)

#define EXPECT_NULL(call, e1, e2)                                          \
	do {                                                               \
		void *p_;                                                  \
		errno = 0;                                                 \
		p_ = (call);                                               \
		if (p_ || (errno != (e1) && errno != (e2)))                \
			coh_fail("%s = %p, errno %d (%s), want NULL with " \
				 "%s", #call, p_, errno, strerror(errno),  \
				 strerror(e1));                            \
	} while (0)

static int init_before(void)
{
	struct dsm_stats s;
	void *base;
	size_t size;
	int x = 0;

	EXPECT_NULL(dsm_alloc(PAGE), ENOTCONN, ENOTCONN);
	EXPECT_RC(dsm_barrier(), -ENOTCONN);
	EXPECT_RC(dsm_page_state(&x), -ENOTCONN);
	EXPECT_RC(dsm_page_master(&x), -ENOTCONN);
	EXPECT_RC(dsm_get_stats(&s), -ENOTCONN);
	EXPECT_RC(dsm_arena(&base, &size), -ENOTCONN);
	EXPECT_RC(dsm_free(&x), -ENOTCONN);
	EXPECT_RC(dsm_rank(), -EINVAL);
	EXPECT_RC(dsm_size(), -EINVAL);
	EXPECT_RC(dsm_finalize(), -EINVAL);
	coh_say("ok");
	return 0;
}

int mode_init_errors(int argc, char **argv)
{
	if (argc < 2)
		coh_fail("which case? socket, kernel or before");
	if (!strcmp(argv[1], "socket"))
		return init_socket();
	if (!strcmp(argv[1], "kernel"))
		return init_kernel();
	if (!strcmp(argv[1], "before"))
		return init_before();
	coh_fail("unknown case '%s'", argv[1]);
}

/* ---- with a daemon ---- */

static void bad_env_children(void)
{
	size_t nvars = sizeof(launcher_vars) / sizeof(launcher_vars[0]);
	char rank[32], err[4096];
	const char *too_big[] = {rank};
	int rc;

	rc = init_in_child(launcher_vars, nvars, err, sizeof(err));
	if (rc != -EINVAL)
		coh_fail("dsm_init without a rank in the environment: %d (%s), "
			 "want -EINVAL; stderr: %s", rc, strerror(-rc), err);
	snprintf(rank, sizeof(rank), "DSM_RANK=%s", getenv("DSM_SIZE"));
	rc = init_in_child(too_big, 1, err, sizeof(err));
	if (rc != -EINVAL)
		coh_fail("dsm_init with DSM_RANK=DSM_SIZE: %d (%s), want "
			 "-EINVAL; stderr: %s", rc, strerror(-rc), err);
	coh_say("dsm_init refused a missing and an out-of-range rank");
}

static void mismatched_sizes(void)
{
	size_t all = PAGE * (size_t)(coh.rank + 1);
	size_t one = coh.rank == coh.size - 1 ? 2 * PAGE : PAGE;

	EXPECT_NULL(dsm_alloc(all), EINVAL, EINVAL);
	EXPECT_NULL(dsm_alloc(one), EINVAL, EINVAL);
}

static void equal_sizes(void)
{
	volatile uint8_t *p = coh_alloc(100);
	size_t i;

	for (i = 0; i < PAGE; i++)
		if (p[i])
			coh_fail("dsm_alloc(100): byte %zu is %#x, not zero",
				 i, p[i]);
	coh_barrier();
	if (coh.rank == 0)
		for (i = 0; i < 100; i++)
			p[i] = (uint8_t)(i + 1);
	coh_barrier();
	for (i = 0; i < 100; i++)
		if (p[i] != (uint8_t)(i + 1))
			coh_fail("byte %zu written by rank 0 reads %#x", i,
				 p[i]);
	coh_barrier();
	EXPECT_RC(dsm_free((void *)(p + PAGE)), -EINVAL);
	EXPECT_RC(dsm_free((void *)(p + 8)), -EINVAL);
	EXPECT_RC(dsm_free((void *)p), 0);
}

static void refill_zero(void)
{
	volatile uint64_t *q = coh_alloc(2 * PAGE);
	size_t i;

	st64(&q[coh.rank], 0xdead0000u + (unsigned int)coh.rank);
	st64(&q[WORDS_PER_PAGE + (size_t)coh.rank], 1);
	coh_barrier();
	coh_free((void *)q);
	q = coh_alloc(2 * PAGE);
	for (i = 0; i < 2 * WORDS_PER_PAGE; i++)
		if (ld64(&q[i]))
			coh_fail("a re-allocated region is not zero: word %zu "
				 "is %#llx", i,
				 (unsigned long long)ld64(&q[i]));
	coh_barrier();
	coh_free((void *)q);
}

static void outside(void)
{
	static int global;
	int local = 0;
	void *base;
	size_t size;

	EXPECT_RC(dsm_page_state(&local), -EFAULT);
	EXPECT_RC(dsm_page_state(&global), -EFAULT);
	EXPECT_RC(dsm_page_master(&local), -EFAULT);
	EXPECT_RC(dsm_page_state(NULL), -EFAULT);
	EXPECT_RC(dsm_get_stats(NULL), -EINVAL);
	EXPECT_RC(dsm_arena(&base, &size), 0);
	EXPECT_NULL(dsm_alloc(size + PAGE), ENOMEM, ENOMEM);
}

int mode_badinput(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (atoi(getenv("DSM_RANK") ? getenv("DSM_RANK") : "0") == 0)
		bad_env_children();
	coh_init();
	EXPECT_RC(dsm_init(), -EALREADY);
	coh_phase("badinput: dsm_alloc(0)");
	EXPECT_NULL(dsm_alloc(0), EINVAL, EINVAL);
	coh_phase("badinput: dsm_alloc(2^62)");
	EXPECT_NULL(dsm_alloc((size_t)1 << 62), EINVAL, ENOMEM);
	coh_phase("badinput: different sizes");
	mismatched_sizes();
	coh_phase("badinput: equal sizes");
	equal_sizes();
	coh_phase("badinput: freed and re-allocated");
	refill_zero();
	coh_phase("badinput: outside the arena");
	outside();
	coh_barrier();
	coh_finish();
	return 0;
}
