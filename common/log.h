/* Logging shared by dsmd, the tools and libdsm.
 *
 * One line per event on stderr: "<prog>[node N] <level>: message".  An error
 * is logged once, where it is decided (STYLE.md); LOG_ONCE helps where the
 * same bad input may arrive many times.
 */
#ifndef DSM_LOG_H
#define DSM_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_setup(const char *prog, int node);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Log the first time only: `flag` is a caller-owned bool. */
#define log_once(flag, level, ...)                    \
	do {                                          \
		if (!(flag)) {                        \
			(flag) = true;                \
			log_msg((level), __VA_ARGS__); \
		}                                     \
	} while (0)

#endif
