/* dsmd's options (options.c). */
#ifndef DSMD_OPTIONS_H
#define DSMD_OPTIONS_H

#include "dsmd.h"

/* Fill *c from the options, the environment and the defaults; 0, or
 * -EINVAL after naming the bad value (dsmd exits 2). */
int dsmd_parse_args(int argc, char **argv, struct dsmd_config *c);

#endif
