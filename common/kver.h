/* Whether this kernel can run libdsm: Linux 6.4 or later, for
 * UFFDIO_CONTINUE_MODE_WP (map a page-cache page write-protected). */
#ifndef DSM_KVER_H
#define DSM_KVER_H

#include <stddef.h>

#define KVER_MIN_MAJOR 6
#define KVER_MIN_MINOR 4

/* 0 if the kernel is recent enough; else -ENOSYS and a sentence in why.
 * DSM_TEST_KERNEL_RELEASE, when set, replaces uname's release (tests). */
int kver_check(char *why, size_t len);

#endif
