/* Between the lock API (locks.c) and the rest of libdsm (api.c). */
#ifndef LIBDSM_LOCKS_H
#define LIBDSM_LOCKS_H

#include <stdbool.h>
#include <stdint.h>

/* Whether dsm_init() succeeded and dsm_finalize() has not run. */
bool libdsm_up(void);
/* The job this process attached as: its id in *job, its key returned. */
const char *libdsm_job(uint64_t *job);
/* Close the lock connection: dsmd releases the process's locks. */
void libdsm_locks_close(void);

#endif
