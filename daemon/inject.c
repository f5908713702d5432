/* Test hook: send a peer deliberately malformed messages, so that tests can
 * prove end to end, over real RDMA, that a peer drops, counts and logs them
 * once and goes on working.  Enabled only when dsmd runs with
 * DSM_TEST_HOOKS=1. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* Build malformation `kind` into buf; returns its length, or 0. */
static size_t build_bad(struct dsmd *d, unsigned kind, unsigned char *buf,
			size_t cap)
{
	struct wire_hdr h;
	size_t len = wire_build(buf, cap, WIRE_HEARTBEAT, 0, NULL, 0);

	memcpy(&h, buf, sizeof(h));
	h.src = (uint16_t)d->cfg.node;
	switch (kind) {
	case WIRE_INJECT_VERSION:
		h.version = WIRE_VERSION + 1;
		break;
	case WIRE_INJECT_TYPE:
		h.type = WIRE_TYPE_MAX + 10;
		break;
	case WIRE_INJECT_LONG_FIELD:
		h.length = (uint32_t)len + 100;
		break;
	case WIRE_INJECT_SHORT_FIELD:
		len += 16;
		memset(buf + sizeof(h), 0x5a, 16);
		break;
	case WIRE_INJECT_GARBAGE:
		wire_pattern_fill(buf, 200, 0xbad);
		return 200;
	case WIRE_INJECT_BODY:
		h.length = (uint32_t)len + 4;
		memset(buf + sizeof(h), 0, 4);
		len += 4;
		break;
	case WIRE_INJECT_SRC:
		h.src = (uint16_t)((d->cfg.node + 1) % d->cfg.nnodes);
		break;
	case WIRE_INJECT_CREDITS:
		h.credits = 60000;
		break;
	case WIRE_INJECT_IPC_TYPE:
		h.type = WIRE_IPC_STATUS;
		break;
	default:
		return 0;
	}
	memcpy(buf, &h, sizeof(h));
	return len;
}

int inject_bad_msg(struct dsmd *d, const struct wire_ipc_inject *req)
{
	unsigned char buf[256];
	size_t len;

	if (!d->cfg.test_hooks)
		return -EPERM;
	if (req->peer >= (uint32_t)d->cfg.nnodes ||
	    req->peer == (uint32_t)d->cfg.node)
		return -EINVAL;
	len = build_bad(d, req->kind, buf, sizeof(buf));
	if (!len)
		return -EINVAL;
	log_info("test hook: sending malformation %u to node %u", req->kind,
		 req->peer);
	return xport_send_raw(d->x, (int)req->peer, buf, len);
}
