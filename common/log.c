#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "dsm";
static int log_node = -1;
static enum log_level log_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warning",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_setup(const char *prog, int node)
{
	const char *env = getenv("DSM_LOG_LEVEL");

	log_prog = prog;
	log_node = node;
	if (env && *env) {
		for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
			if (!strcmp(env, level_names[i]))
				log_level = (enum log_level)i;
	}
}

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (log_node >= 0)
		n = snprintf(line, sizeof(line), "%s[node %d] %ld.%03ld %s: ",
			     log_prog, log_node, (long)ts.tv_sec,
			     ts.tv_nsec / 1000000, level_names[level]);
	else
		n = snprintf(line, sizeof(line), "%s: %s: ", log_prog,
			     level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line so lines of several processes do not interleave. */
	fprintf(stderr, "%s\n", line);
}
