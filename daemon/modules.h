/* Every module of dsmd, for the table in modules.c. */
#ifndef DSMD_MODULES_H
#define DSMD_MODULES_H

#include "dsmd.h"

extern const struct dsmd_module core_module;  /* core/app.c */
extern const struct dsmd_module ctl_module;   /* ctl.c */
extern const struct dsmd_module check_module; /* check.c */
extern const struct dsmd_module home_module;  /* home/home.c */
extern const struct dsmd_module page_module;  /* page/page.c */
extern const struct dsmd_module coll_module;  /* coll/coll.c */
extern const struct dsmd_module lock_module;  /* lock/lock.c */

#endif
