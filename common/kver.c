#define _GNU_SOURCE
#include "kver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>

int kver_check(char *why, size_t len)
{
	const char *rel = getenv("DSM_TEST_KERNEL_RELEASE");
	struct utsname u;
	int major = 0, minor = 0;

	if (!rel || !*rel) {
		if (uname(&u)) {
			snprintf(why, len, "uname: cannot read the kernel "
				 "release");
			return -ENOSYS;
		}
		rel = u.release;
	}
	if (sscanf(rel, "%d.%d", &major, &minor) != 2 ||
	    major < KVER_MIN_MAJOR ||
	    (major == KVER_MIN_MAJOR && minor < KVER_MIN_MINOR)) {
		snprintf(why, len, "libdsm needs Linux %d.%d or later "
			 "(UFFDIO_CONTINUE_MODE_WP); this kernel is %s",
			 KVER_MIN_MAJOR, KVER_MIN_MINOR, rel);
		return -ENOSYS;
	}
	return 0;
}
