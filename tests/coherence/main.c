/* coherence: libdsm's shared-memory tests, one mode per property.
 *
 *   coherence [-w WATCHDOG_S] MODE [ARGS...]
 *
 * Run under dsmrun (tests/coherence/run does), except init_errors, which
 * needs no daemon.  Exit 0: passed; 1: a check failed (the line starting
 * "FAIL:" says what was seen); 3: the watchdog fired; 2: usage.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mode {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
};

static const struct mode modes[] = {
	{"litmus", mode_litmus, "mp|sb|lb|iriw|2+2w [ITERS [BATCH]]"},
	{"bakery", mode_bakery, "[K [packed|spread]]"},
	{"stress", mode_stress, "[OPS [PAGES [SEED]]]"},
	{"upgrade", mode_upgrade, "[ROUNDS]"},
	{"falseshare", mode_falseshare, "[N]"},
	{"memcpy", mode_memcpy, "[ROUNDS]"},
	{"local", mode_local, "[PAGES]"},
	{"cost", mode_cost, ""},
	{"kernel", mode_kernel, ""},
	{"badinput", mode_badinput, ""},
	{"init_errors", mode_init_errors, "socket|kernel|before"},
	{"exit", mode_exit, "[PAGES]"},
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: coherence [-w WATCHDOG_S] MODE [ARGS...]\n");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(stderr, "  %-12s %s\n", modes[i].name, modes[i].args);
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int wd = 300;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[1], "-w")) {
		wd = (unsigned int)atoi(argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		usage();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(argv[1], modes[i].name))
			continue;
		coh_mode = modes[i].name;
		if (wd)
			coh_watchdog(wd);
		return modes[i].fn(argc - 1, argv + 1);
	}
	usage();
}
