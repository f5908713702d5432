/* The module table made into dispatch tables, and the modules' lifetime.
 *
 * Each node message type and each client request type has at most one
 * handler; a second one is a programming error, refused at setup (and the
 * unit test unit.core asserts every node-channel type has exactly one).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "dsmd.h"
#include "log.h"

static int fill_tables(struct dsmd *d)
{
	size_t i;

	memset(d->msg_mod, 0, sizeof(d->msg_mod));
	memset(d->msg_of, 0, sizeof(d->msg_of));
	memset(d->ipc_mod, 0, sizeof(d->ipc_mod));
	memset(d->ipc_of, 0, sizeof(d->ipc_of));
	memset(d->rdma_mod, 0, sizeof(d->rdma_mod));
	for (i = 0; i < dsmd_nmodules; i++) {
		const struct dsmd_module *mod = dsmd_modules[i];
		const struct dsmd_msg *m;
		const struct dsmd_ipc *c;

		for (m = mod->msgs; m && m->type; m++) {
			if (m->type >= WIRE_TYPE_MAX || d->msg_mod[m->type]) {
				log_err("module %s: message type %u taken "
					"twice or out of range", mod->name,
					m->type);
				return -EEXIST;
			}
			d->msg_mod[m->type] = mod;
			d->msg_of[m->type] = m;
		}
		for (c = mod->ipcs; c && c->type; c++) {
			if (c->type >= WIRE_TYPE_MAX || d->ipc_mod[c->type]) {
				log_err("module %s: request type %u taken "
					"twice or out of range", mod->name,
					c->type);
				return -EEXIST;
			}
			d->ipc_mod[c->type] = mod;
			d->ipc_of[c->type] = c;
		}
		if (mod->rdma) {
			if (d->rdma_mod[mod->rdma_tagged]) {
				log_err("module %s: RDMA events taken twice",
					mod->name);
				return -EEXIST;
			}
			d->rdma_mod[mod->rdma_tagged] = mod;
		}
	}
	return 0;
}

int dsmd_modules_setup(struct dsmd *d)
{
	size_t i;
	int ret = fill_tables(d);

	if (ret)
		return ret;
	for (i = 0; i < dsmd_nmodules; i++) {
		const struct dsmd_module *mod = dsmd_modules[i];

		d->modules_up = i + 1; /* its teardown cleans up a failure */
		ret = mod->setup ? mod->setup(d) : 0;
		if (ret) {
			log_err("setting up %s: %s", mod->name, strerror(-ret));
			dsmd_modules_teardown(d);
			return ret;
		}
	}
	return 0;
}

void dsmd_modules_teardown(struct dsmd *d)
{
	size_t i = d->modules_up;

	while (i--)
		if (dsmd_modules[i]->teardown)
			dsmd_modules[i]->teardown(d);
	d->modules_up = 0;
}

const struct dsmd_module *dsmd_msg_owner(const struct dsmd *d, unsigned type)
{
	return type < WIRE_TYPE_MAX ? d->msg_mod[type] : NULL;
}

const struct dsmd_module *dsmd_ipc_owner(const struct dsmd *d, unsigned type)
{
	return type < WIRE_TYPE_MAX ? d->ipc_mod[type] : NULL;
}
