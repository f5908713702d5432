/* The ctl module's files (ctl.c, inject.c). */
#ifndef DSMD_CTL_H
#define DSMD_CTL_H

#include "dsmd.h"

/* inject.c: test hook sending malformed messages (IPC_INJECT); 0, -EPERM
 * without DSM_TEST_HOOKS=1, or -EINVAL. */
int inject_bad_msg(struct dsmd *d, const struct wire_ipc_inject *req);

#endif
