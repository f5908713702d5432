/* libdsm's public calls against a running dsmd (under dsmrun). */
#include <dsm.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Through the emulated guest, slower than the host. */
#define TEST_TIMEOUT_S 120
#include "harness.h"

static int test_version(void)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", DSM_VERSION_MAJOR,
		 DSM_VERSION_MINOR, DSM_VERSION_PATCH);
	CHECK(!strcmp(dsm_version(), want));
	return 0;
}

static int test_ping(void)
{
	int node = -1, nnodes = -1;

	CHECK(getenv("DSM_NODE") && getenv("DSM_NNODES"));
	CHECK(dsm_daemon_ping(NULL, 20000, &node, &nnodes) == 0);
	CHECK(node == atoi(getenv("DSM_NODE")));
	CHECK(nnodes == atoi(getenv("DSM_NNODES")));
	return 0;
}

static int test_no_daemon(void)
{
	CHECK(dsm_daemon_ping("/nonexistent/dsmd.sock", 1000, NULL, NULL) ==
	      -ENOENT);
	return 0;
}

static const struct test_case tests[] = {
	{"version", test_version},
	{"ping", test_ping},
	{"no_daemon", test_no_daemon},
};

int main(int argc, char **argv)
{
	return test_run(tests, sizeof(tests) / sizeof(tests[0]), NULL, argc, argv);
}
