/* A small table-driven runner for the host unit tests, in the manner of
 * the kernel's kselftest harness:
 *
 *   static const struct test_case tests[] = {{"name", fn}, ...};
 *   TEST_MAIN(tests, teardown_fn_or_NULL)
 *
 * The runner owns teardown: after every test, passed, failed or skipped,
 * it calls the suite's teardown (which copes with nothing set up), so a
 * CHECK that fails and returns early never leaks a fixture into the next
 * test.  (That CHECK returns is the one macro that hides a return.)  A
 * test passes (0), fails (CHECK), or skips with a reason (SKIP): skips are
 * reported apart and never counted as passes; a run in which nothing
 * passed and nothing failed exits 77, ctest's skip code.  Every test has
 * TEST_TIMEOUT_S seconds: one that hangs is named and the run fails.
 * `-l` lists the tests; any other argument is a substring filter.
 */
#ifndef DSM_TEST_HARNESS_H
#define DSM_TEST_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 30
#endif

struct test_case {
	const char *name;
	int (*fn)(void);
};

enum { TEST_PASS = 0, TEST_FAIL = 1, TEST_SKIP = 77 };

static char test_skip_why[256];
static const char *test_running;

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "  %s:%d: check failed: %s\n",  \
				__FILE__, __LINE__, #cond);             \
			return TEST_FAIL;                               \
		}                                                       \
	} while (0)

#define CHECKF(cond, ...)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "  %s:%d: check failed: %s: ",  \
				__FILE__, __LINE__, #cond);             \
			fprintf(stderr, __VA_ARGS__);                   \
			fputc('\n', stderr);                            \
			return TEST_FAIL;                               \
		}                                                       \
	} while (0)

/* End the test as skipped, saying why (printf-style). */
#define SKIP(...)                                                         \
	do {                                                              \
		snprintf(test_skip_why, sizeof(test_skip_why), __VA_ARGS__); \
		return TEST_SKIP;                                         \
	} while (0)

static void test_timed_out(int sig)
{
	char msg[320];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg), "FAIL %s (timed out after %d s)\n",
		     test_running ? test_running : "?", TEST_TIMEOUT_S);
	if (write(STDOUT_FILENO, msg, (size_t)n) < 0) {
		/* Nothing more can be said. */
	}
	_exit(TEST_FAIL);
}

static inline int test_run(const struct test_case *t, size_t n,
			   void (*teardown)(void), int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	unsigned pass = 0, fail = 0, skip = 0;
	size_t i;
	int ret;

	if (filter && !strcmp(filter, "-l")) {
		for (i = 0; i < n; i++)
			printf("%s\n", t[i].name);
		return 0;
	}
	signal(SIGALRM, test_timed_out);
	for (i = 0; i < n; i++) {
		if (filter && !strstr(t[i].name, filter))
			continue;
		test_running = t[i].name;
		test_skip_why[0] = 0;
		alarm(TEST_TIMEOUT_S);
		ret = t[i].fn();
		if (teardown)
			teardown();
		alarm(0);
		fflush(stderr);
		if (ret == TEST_PASS) {
			printf("ok   %s\n", t[i].name);
			pass++;
		} else if (ret == TEST_SKIP) {
			printf("skip %s: %s\n", t[i].name,
			       test_skip_why[0] ? test_skip_why : "(no reason)");
			skip++;
		} else {
			printf("FAIL %s\n", t[i].name);
			fail++;
		}
		fflush(stdout);
	}
	printf("%u passed, %u failed, %u skipped\n", pass, fail, skip);
	if (fail)
		return TEST_FAIL;
	if (!pass)
		return skip ? TEST_SKIP : TEST_FAIL; /* nothing ran: a bad filter */
	return TEST_PASS;
}

/* main() of a test program: its table, and the fixture's teardown. */
#define TEST_MAIN(tests, teardown)                                        \
	int main(int argc, char **argv)                                   \
	{                                                                 \
		return test_run(tests, sizeof(tests) / sizeof(tests[0]), \
				teardown, argc, argv);                    \
	}

#endif
