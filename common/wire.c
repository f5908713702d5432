#include "wire.h"

#include <dsm.h>

#include <string.h>

/* What a type may carry: on which channel, and a body of exactly `body`
 * bytes, or (var) at least `body` bytes checked by check_var(). */
struct wire_type_info {
	const char *name;
	enum wire_channel ch;
	size_t body;
	int var;
};

static const struct wire_type_info wire_types[WIRE_TYPE_MAX] = {
	[WIRE_CREDIT] = {"CREDIT", WIRE_CH_NODE, 0, 0},
	[WIRE_HEARTBEAT] = {"HEARTBEAT", WIRE_CH_NODE, 0, 1},
	[WIRE_CHECK_BEGIN] = {"CHECK_BEGIN", WIRE_CH_NODE,
			      sizeof(struct wire_check_begin), 0},
	[WIRE_CHECK_READY] = {"CHECK_READY", WIRE_CH_NODE,
			      sizeof(struct wire_check_ready), 0},
	[WIRE_CHECK_DATA] = {"CHECK_DATA", WIRE_CH_NODE,
			     sizeof(struct wire_check_data), 1},
	[WIRE_CHECK_DATA_DONE] = {"CHECK_DATA_DONE", WIRE_CH_NODE,
				  sizeof(struct wire_check_result), 0},
	[WIRE_CHECK_WRITE_DONE] = {"CHECK_WRITE_DONE", WIRE_CH_NODE,
				   sizeof(struct wire_check_result), 0},
	[WIRE_CHECK_PROGRESS] = {"CHECK_PROGRESS", WIRE_CH_NODE,
				 sizeof(struct wire_check_result), 0},
	[WIRE_CHECK_END] = {"CHECK_END", WIRE_CH_NODE,
			    sizeof(struct wire_check_end), 0},
	[WIRE_DSM_REQ] = {"DSM_REQ", WIRE_CH_NODE,
			  sizeof(struct wire_dsm_req), 0},
	[WIRE_DSM_FWD] = {"DSM_FWD", WIRE_CH_NODE,
			  sizeof(struct wire_dsm_fwd), 0},
	[WIRE_DSM_INV] = {"DSM_INV", WIRE_CH_NODE,
			  sizeof(struct wire_dsm_inv), 0},
	[WIRE_DSM_INV_ACK] = {"DSM_INV_ACK", WIRE_CH_NODE,
			      sizeof(struct wire_dsm_ack), 0},
	[WIRE_DSM_GRANT] = {"DSM_GRANT", WIRE_CH_NODE,
			    sizeof(struct wire_dsm_grant), 0},
	[WIRE_DSM_DONE] = {"DSM_DONE", WIRE_CH_NODE,
			   sizeof(struct wire_dsm_done), 0},
	[WIRE_COLL_ARRIVE] = {"COLL_ARRIVE", WIRE_CH_NODE,
			      sizeof(struct wire_coll_arrive), 0},
	[WIRE_COLL_DONE] = {"COLL_DONE", WIRE_CH_NODE,
			    sizeof(struct wire_coll_done), 0},
	[WIRE_REGION_OP] = {"REGION_OP", WIRE_CH_NODE,
			    sizeof(struct wire_region_op), 0},
	[WIRE_REGION_REPLY] = {"REGION_REPLY", WIRE_CH_NODE,
			       sizeof(struct wire_ipc_reply), 0},
	[WIRE_RESET] = {"RESET", WIRE_CH_NODE, sizeof(struct wire_reset), 0},
	[WIRE_RESET_ACK] = {"RESET_ACK", WIRE_CH_NODE,
			    sizeof(struct wire_reset), 0},
	[WIRE_DSM_LOST] = {"DSM_LOST", WIRE_CH_NODE,
			   sizeof(struct wire_dsm_lost), 0},
	[WIRE_DIR_MIGRATE] = {"DIR_MIGRATE", WIRE_CH_NODE,
			      sizeof(struct wire_dir_migrate), 1},
	[WIRE_DIR_HINT] = {"DIR_HINT", WIRE_CH_NODE,
			   sizeof(struct wire_dir_where), 0},
	[WIRE_DIR_NACK] = {"DIR_NACK", WIRE_CH_NODE,
			   sizeof(struct wire_dir_where), 0},
	[WIRE_DIR_WHO_HAS] = {"DIR_WHO_HAS", WIRE_CH_NODE,
			      sizeof(struct wire_dir_where), 0},
	[WIRE_DIR_WHO_HAS_REPLY] = {"DIR_WHO_HAS_REPLY", WIRE_CH_NODE,
				    sizeof(struct wire_dir_where), 0},
	[WIRE_DIR_POLICY] = {"DIR_POLICY", WIRE_CH_NODE,
			     sizeof(struct wire_dir_policy), 0},
	[WIRE_DIR_POLICY_ACK] = {"DIR_POLICY_ACK", WIRE_CH_NODE,
				 sizeof(struct wire_dir_policy), 0},
	[WIRE_LOCK_OP] = {"LOCK_OP", WIRE_CH_NODE,
			  sizeof(struct wire_lock_op), 0},
	[WIRE_LOCK_REPLY] = {"LOCK_REPLY", WIRE_CH_NODE,
			     sizeof(struct wire_lock_reply), 0},
	[WIRE_LOCK_PROBE] = {"LOCK_PROBE", WIRE_CH_NODE,
			     sizeof(struct wire_lock_probe), 0},
	[WIRE_LOCK_RECOVERED] = {"LOCK_RECOVERED", WIRE_CH_NODE,
				 sizeof(struct wire_lock_recovered), 0},
	[WIRE_DSM_PEER_REQ] = {"DSM_PEER_REQ", WIRE_CH_NODE,
			       sizeof(struct wire_dsm_req), 0},
	[WIRE_DSM_SHARED] = {"DSM_SHARED", WIRE_CH_NODE,
			     sizeof(struct wire_dsm_shared), 0},
	[WIRE_PAGE_SLOTS] = {"PAGE_SLOTS", WIRE_CH_NODE,
			     sizeof(struct wire_page_slots), 0},
	[WIRE_DSM_STUCK] = {"DSM_STUCK", WIRE_CH_NODE,
			    sizeof(struct wire_dsm_stuck), 0},
	[WIRE_DSM_PASSED] = {"DSM_PASSED", WIRE_CH_NODE,
			     sizeof(struct wire_dsm_passed), 0},
	[WIRE_IPC_HELLO] = {"IPC_HELLO", WIRE_CH_IPC,
			    sizeof(struct wire_ipc_hello), 0},
	[WIRE_IPC_HELLO_OK] = {"IPC_HELLO_OK", WIRE_CH_IPC,
			       sizeof(struct wire_ipc_hello_ok), 0},
	[WIRE_IPC_STATUS] = {"IPC_STATUS", WIRE_CH_IPC, 0, 0},
	[WIRE_IPC_STATUS_REPLY] = {"IPC_STATUS_REPLY", WIRE_CH_IPC,
				   sizeof(struct wire_status_reply), 1},
	[WIRE_IPC_CHECK] = {"IPC_CHECK", WIRE_CH_IPC,
			    sizeof(struct wire_ipc_check), 0},
	[WIRE_IPC_CHECK_REPLY] = {"IPC_CHECK_REPLY", WIRE_CH_IPC,
				  sizeof(struct wire_check_reply), 1},
	[WIRE_IPC_RESULT] = {"IPC_RESULT", WIRE_CH_IPC,
			    sizeof(struct wire_ipc_result), 0},
	[WIRE_IPC_INJECT] = {"IPC_INJECT", WIRE_CH_IPC,
			     sizeof(struct wire_ipc_inject), 0},
	[WIRE_IPC_ATTACH] = {"IPC_ATTACH", WIRE_CH_IPC,
			     sizeof(struct wire_ipc_attach), 0},
	[WIRE_IPC_ATTACH_OK] = {"IPC_ATTACH_OK", WIRE_CH_IPC,
				sizeof(struct wire_ipc_attach_ok), 0},
	[WIRE_IPC_UFFD] = {"IPC_UFFD", WIRE_CH_IPC, 0, 0},
	[WIRE_IPC_COLL] = {"IPC_COLL", WIRE_CH_IPC,
			   sizeof(struct wire_ipc_coll), 0},
	[WIRE_IPC_REGION] = {"IPC_REGION", WIRE_CH_IPC,
			     sizeof(struct wire_region_op), 0},
	[WIRE_IPC_PAGE] = {"IPC_PAGE", WIRE_CH_IPC,
			   sizeof(struct wire_ipc_page), 0},
	[WIRE_IPC_STATS] = {"IPC_STATS", WIRE_CH_IPC, 0, 0},
	[WIRE_IPC_STATS_REPLY] = {"IPC_STATS_REPLY", WIRE_CH_IPC,
				  sizeof(struct dsm_stats), 0},
	[WIRE_IPC_REPLY] = {"IPC_REPLY", WIRE_CH_IPC,
			    sizeof(struct wire_ipc_reply), 0},
	[WIRE_IPC_DETACH] = {"IPC_DETACH", WIRE_CH_IPC, 0, 0},
	[WIRE_IPC_POLICY] = {"IPC_POLICY", WIRE_CH_IPC,
			     sizeof(struct wire_ipc_policy), 0},
	[WIRE_IPC_POLICY_REPLY] = {"IPC_POLICY_REPLY", WIRE_CH_IPC,
				   sizeof(struct wire_ipc_policy_reply), 0},
	[WIRE_IPC_LOCK] = {"IPC_LOCK", WIRE_CH_IPC,
			   sizeof(struct wire_ipc_lock), 0},
	[WIRE_IPC_LOCK_EVENT] = {"IPC_LOCK_EVENT", WIRE_CH_IPC,
				 sizeof(struct wire_ipc_lock_event), 0},
};

static const char *const wire_errors[WIRE_NERRORS] = {
	[WIRE_OK] = "ok",
	[WIRE_ETRUNC] = "truncated",
	[WIRE_ELONG] = "too long",
	[WIRE_EMAGIC] = "bad magic",
	[WIRE_EVERSION] = "unsupported version",
	[WIRE_ETYPE] = "unknown type",
	[WIRE_EBODY] = "wrong body length",
	[WIRE_ERANGE] = "field out of range",
};

const char *wire_error_str(enum wire_error e)
{
	return (unsigned)e < WIRE_NERRORS ? wire_errors[e] : "?";
}

const char *wire_type_name(unsigned type)
{
	if (type < WIRE_TYPE_MAX && wire_types[type].name)
		return wire_types[type].name;
	return "UNKNOWN";
}

int wire_type_channel(unsigned type)
{
	if (type < WIRE_TYPE_MAX && wire_types[type].name)
		return (int)wire_types[type].ch;
	return -1;
}

/* Variable-length bodies: the trailing part must be exactly what the fixed
 * part announces.  Counts are bounded before they are multiplied. */
static enum wire_error check_var(unsigned type, const void *body, size_t len)
{
	switch (type) {
	case WIRE_HEARTBEAT:
		/* Empty, or carrying the sender's load. */
		if (len != 0 && len != sizeof(struct wire_heartbeat))
			return WIRE_EBODY;
		return WIRE_OK;
	case WIRE_DIR_MIGRATE: {
		struct wire_dir_migrate mg;

		memcpy(&mg, body, sizeof(mg));
		if (mg.state_len != len - sizeof(mg))
			return WIRE_EBODY;
		return WIRE_OK;
	}
	case WIRE_CHECK_DATA: {
		struct wire_check_data d;

		memcpy(&d, body, sizeof(d));
		if (d.payload_len != len - sizeof(d))
			return WIRE_EBODY;
		return WIRE_OK;
	}
	case WIRE_IPC_STATUS_REPLY: {
		struct wire_status_reply r;

		memcpy(&r, body, sizeof(r));
		if (r.nnodes == 0 || r.nnodes > WIRE_MAX_NODES ||
		    r.node >= r.nnodes)
			return WIRE_ERANGE;
		if (len - sizeof(r) != r.nnodes * sizeof(struct wire_member))
			return WIRE_EBODY;
		return WIRE_OK;
	}
	case WIRE_IPC_CHECK_REPLY: {
		struct wire_check_reply r;

		memcpy(&r, body, sizeof(r));
		if (r.npeers > WIRE_MAX_NODES * 8)
			return WIRE_ERANGE;
		if (len - sizeof(r) != r.npeers * sizeof(struct wire_check_peer))
			return WIRE_EBODY;
		return WIRE_OK;
	}
	default:
		return WIRE_ETYPE;
	}
}

enum wire_error wire_decode(const void *buf, size_t len, enum wire_channel ch,
			    struct wire_msg *out)
{
	const struct wire_type_info *ti;
	struct wire_hdr h;
	size_t max = ch == WIRE_CH_NODE ? WIRE_MSG_MAX : WIRE_IPC_MAX;
	size_t body_len;
	enum wire_error e;

	if (!buf || len < sizeof(h))
		return WIRE_ETRUNC;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != WIRE_MAGIC)
		return WIRE_EMAGIC;
	if (h.version != WIRE_VERSION)
		return WIRE_EVERSION;
	if (h.length < sizeof(h) || h.length > len)
		return WIRE_ETRUNC;
	if (h.length < len || h.length > max)
		return WIRE_ELONG;
	if (h.type >= WIRE_TYPE_MAX || !wire_types[h.type].name ||
	    wire_types[h.type].ch != ch)
		return WIRE_ETYPE;
	ti = &wire_types[h.type];
	body_len = h.length - sizeof(h);
	if (ti->var ? body_len < ti->body : body_len != ti->body)
		return WIRE_EBODY;
	if (ti->var) {
		e = check_var(h.type, (const char *)buf + sizeof(h), body_len);
		if (e != WIRE_OK)
			return e;
	}
	out->hdr = buf;
	out->body = (const char *)buf + sizeof(h);
	out->body_len = body_len;
	return WIRE_OK;
}

void wire_hdr_init(void *buf, unsigned type, size_t body_len, uint64_t req_id)
{
	struct wire_hdr h = {
		.magic = WIRE_MAGIC,
		.version = WIRE_VERSION,
		.type = (uint8_t)type,
		.length = (uint32_t)(sizeof(h) + body_len),
		.req_id = req_id,
	};

	memcpy(buf, &h, sizeof(h));
}

size_t wire_build(void *buf, size_t buf_len, unsigned type, uint64_t req_id,
		  const void *body, size_t body_len)
{
	size_t len = sizeof(struct wire_hdr) + body_len;

	if (len > buf_len)
		return 0;
	wire_hdr_init(buf, type, body_len, req_id);
	if (body_len)
		memcpy((char *)buf + sizeof(struct wire_hdr), body, body_len);
	return len;
}

/* xorshift64*: cheap, deterministic, different for every seed. */
static uint64_t pattern_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

void wire_pattern_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1, v;
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = pattern_next(&s);
		memcpy(p + i, &v, 8);
	}
	v = pattern_next(&s);
	memcpy(p + i, &v, len - i);
}

long wire_pattern_check(const void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1, v;
	const unsigned char *p = buf;
	size_t i, j;

	for (i = 0; i < len; i += 8) {
		size_t n = len - i < 8 ? len - i : 8;

		v = pattern_next(&s);
		if (memcmp(p + i, &v, n) == 0)
			continue;
		for (j = 0; j < n; j++)
			if (p[i + j] != ((unsigned char *)&v)[j])
				return (long)(i + j);
	}
	return -1;
}
