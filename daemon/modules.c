/* The modules of dsmd, in the order they are set up (torn down in
 * reverse) and told of a death, a process leaving or a tick.
 *
 * What the order means:
 * - home comes before page and lock: they register their kind of
 *   directory entry with it at setup, and it must still be there when they
 *   tear down.
 * - On a death, home goes first: the lookups (WHO_HAS) that waited only
 *   for the dead node end then, and the page and lock modules they answer
 *   see a settled answer (a live master, or none) before they look at
 *   their own state.  Either order would be correct (a lookup in flight is
 *   left alone by page's peer_down and finishes later), so this is the
 *   order the code has always had, kept so that behaviour is unchanged.
 * - page comes before coll and lock, which keep no page state: their
 *   peer_down hooks neither read nor change what page's did, so they
 *   could go in any order among themselves.
 * - check, ctl and core hold no state another module reads.
 * unit.core (tests/daemon/test_core.c) asserts this order and that every
 * node message type has exactly one module.
 */
#include "modules.h"

const struct dsmd_module *const dsmd_modules[] = {
	&core_module,
	&ctl_module,
	&check_module,
	&home_module,
	&page_module,
	&coll_module,
	&lock_module,
};

const size_t dsmd_nmodules = sizeof(dsmd_modules) / sizeof(dsmd_modules[0]);
