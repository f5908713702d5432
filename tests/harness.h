/* A tiny table-driven runner for the host unit tests:
 *
 *   static const struct test_case tests[] = {{"name", fn}, ...};
 *   int main(int argc, char **argv) { return test_main(tests, N, argc, argv); }
 *
 * `-l` lists the tests, any other argument is a substring filter.  A test
 * returns 0 (pass), or fails through CHECK, which reports file:line and the
 * failed expression.  Ends with "N passed, N failed".
 */
#ifndef DSM_TEST_HARNESS_H
#define DSM_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

struct test_case {
	const char *name;
	int (*fn)(void);
};

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "  %s:%d: check failed: %s\n",  \
				__FILE__, __LINE__, #cond);             \
			return 1;                                       \
		}                                                       \
	} while (0)

#define CHECKF(cond, ...)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "  %s:%d: check failed: %s: ",  \
				__FILE__, __LINE__, #cond);             \
			fprintf(stderr, __VA_ARGS__);                   \
			fputc('\n', stderr);                            \
			return 1;                                       \
		}                                                       \
	} while (0)

static inline int test_main(const struct test_case *t, size_t n, int argc,
			    char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	unsigned pass = 0, fail = 0;
	size_t i;

	if (filter && !strcmp(filter, "-l")) {
		for (i = 0; i < n; i++)
			printf("%s\n", t[i].name);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (filter && !strstr(t[i].name, filter))
			continue;
		if (t[i].fn() == 0) {
			printf("ok   %s\n", t[i].name);
			pass++;
		} else {
			printf("FAIL %s\n", t[i].name);
			fail++;
		}
	}
	printf("%u passed, %u failed\n", pass, fail);
	return fail ? 1 : (pass ? 0 : 1);
}

#endif
