/* Unit tests of the wire codec (common/wire.c): every message type round
 * trips, and truncated, oversized, mislabelled and random input is refused
 * with the right reason and never accepted. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dsm.h>

#include "harness.h"
#include "wire.h"

static unsigned char buf[WIRE_IPC_MAX + 64];

/* A valid message of each fixed-size type on its channel. */
static const struct {
	unsigned type;
	enum wire_channel ch;
	size_t body;
} fixed[] = {
	{WIRE_CREDIT, WIRE_CH_NODE, 0},
	{WIRE_HEARTBEAT, WIRE_CH_NODE, 0},
	{WIRE_CHECK_BEGIN, WIRE_CH_NODE, sizeof(struct wire_check_begin)},
	{WIRE_CHECK_READY, WIRE_CH_NODE, sizeof(struct wire_check_ready)},
	{WIRE_CHECK_DATA_DONE, WIRE_CH_NODE, sizeof(struct wire_check_result)},
	{WIRE_CHECK_PROGRESS, WIRE_CH_NODE, sizeof(struct wire_check_result)},
	{WIRE_CHECK_WRITE_DONE, WIRE_CH_NODE,
	 sizeof(struct wire_check_result)},
	{WIRE_CHECK_END, WIRE_CH_NODE, sizeof(struct wire_check_end)},
	{WIRE_IPC_HELLO, WIRE_CH_IPC, sizeof(struct wire_ipc_hello)},
	{WIRE_IPC_HELLO_OK, WIRE_CH_IPC, sizeof(struct wire_ipc_hello_ok)},
	{WIRE_IPC_STATUS, WIRE_CH_IPC, 0},
	{WIRE_IPC_CHECK, WIRE_CH_IPC, sizeof(struct wire_ipc_check)},
	{WIRE_IPC_RESULT, WIRE_CH_IPC, sizeof(struct wire_ipc_result)},
	{WIRE_DSM_REQ, WIRE_CH_NODE, sizeof(struct wire_dsm_req)},
	{WIRE_DSM_FWD, WIRE_CH_NODE, sizeof(struct wire_dsm_fwd)},
	{WIRE_DSM_INV, WIRE_CH_NODE, sizeof(struct wire_dsm_inv)},
	{WIRE_DSM_INV_ACK, WIRE_CH_NODE, sizeof(struct wire_dsm_ack)},
	{WIRE_DSM_GRANT, WIRE_CH_NODE, sizeof(struct wire_dsm_grant)},
	{WIRE_DSM_DONE, WIRE_CH_NODE, sizeof(struct wire_dsm_done)},
	{WIRE_DSM_LOST, WIRE_CH_NODE, sizeof(struct wire_dsm_lost)},
	{WIRE_COLL_ARRIVE, WIRE_CH_NODE, sizeof(struct wire_coll_arrive)},
	{WIRE_COLL_DONE, WIRE_CH_NODE, sizeof(struct wire_coll_done)},
	{WIRE_REGION_OP, WIRE_CH_NODE, sizeof(struct wire_region_op)},
	{WIRE_REGION_REPLY, WIRE_CH_NODE, sizeof(struct wire_ipc_reply)},
	{WIRE_RESET, WIRE_CH_NODE, sizeof(struct wire_reset)},
	{WIRE_RESET_ACK, WIRE_CH_NODE, sizeof(struct wire_reset)},
	{WIRE_IPC_ATTACH, WIRE_CH_IPC, sizeof(struct wire_ipc_attach)},
	{WIRE_IPC_ATTACH_OK, WIRE_CH_IPC, sizeof(struct wire_ipc_attach_ok)},
	{WIRE_IPC_UFFD, WIRE_CH_IPC, 0},
	{WIRE_IPC_COLL, WIRE_CH_IPC, sizeof(struct wire_ipc_coll)},
	{WIRE_IPC_REGION, WIRE_CH_IPC, sizeof(struct wire_region_op)},
	{WIRE_IPC_PAGE, WIRE_CH_IPC, sizeof(struct wire_ipc_page)},
	{WIRE_IPC_STATS, WIRE_CH_IPC, 0},
	{WIRE_IPC_STATS_REPLY, WIRE_CH_IPC, sizeof(struct dsm_stats)},
	{WIRE_IPC_REPLY, WIRE_CH_IPC, sizeof(struct wire_ipc_reply)},
	{WIRE_IPC_DETACH, WIRE_CH_IPC, 0},
	{WIRE_DIR_HINT, WIRE_CH_NODE, sizeof(struct wire_dir_where)},
	{WIRE_DIR_NACK, WIRE_CH_NODE, sizeof(struct wire_dir_where)},
	{WIRE_DIR_WHO_HAS, WIRE_CH_NODE, sizeof(struct wire_dir_where)},
	{WIRE_DIR_WHO_HAS_REPLY, WIRE_CH_NODE, sizeof(struct wire_dir_where)},
	{WIRE_DIR_POLICY, WIRE_CH_NODE, sizeof(struct wire_dir_policy)},
	{WIRE_DIR_POLICY_ACK, WIRE_CH_NODE, sizeof(struct wire_dir_policy)},
	{WIRE_IPC_POLICY, WIRE_CH_IPC, sizeof(struct wire_ipc_policy)},
	{WIRE_IPC_POLICY_REPLY, WIRE_CH_IPC,
	 sizeof(struct wire_ipc_policy_reply)},
	{WIRE_LOCK_OP, WIRE_CH_NODE, sizeof(struct wire_lock_op)},
	{WIRE_LOCK_REPLY, WIRE_CH_NODE, sizeof(struct wire_lock_reply)},
	{WIRE_LOCK_PROBE, WIRE_CH_NODE, sizeof(struct wire_lock_probe)},
	{WIRE_LOCK_RECOVERED, WIRE_CH_NODE,
	 sizeof(struct wire_lock_recovered)},
	{WIRE_DSM_PEER_REQ, WIRE_CH_NODE, sizeof(struct wire_dsm_req)},
	{WIRE_DSM_SHARED, WIRE_CH_NODE, sizeof(struct wire_dsm_shared)},
	{WIRE_IPC_LOCK, WIRE_CH_IPC, sizeof(struct wire_ipc_lock)},
	{WIRE_IPC_LOCK_EVENT, WIRE_CH_IPC,
	 sizeof(struct wire_ipc_lock_event)},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static size_t build(unsigned type, size_t body_len, uint64_t req)
{
	unsigned char body[WIRE_IPC_MAX];

	memset(body, 0xab, body_len);
	return wire_build(buf, sizeof(buf), type, req, body, body_len);
}

static void set_len(uint32_t len)
{
	memcpy(buf + offsetof(struct wire_hdr, length), &len, sizeof(len));
}

static int test_roundtrip(void)
{
	struct wire_msg m;
	size_t i, len;

	for (i = 0; i < NFIXED; i++) {
		len = build(fixed[i].type, fixed[i].body, 42 + i);
		CHECK(len == sizeof(struct wire_hdr) + fixed[i].body);
		CHECKF(wire_decode(buf, len, fixed[i].ch, &m) == WIRE_OK,
		       "type %s", wire_type_name(fixed[i].type));
		CHECK(m.hdr->type == fixed[i].type);
		CHECK(m.hdr->req_id == 42 + i);
		CHECK(m.body_len == fixed[i].body);
		CHECK(m.body == buf + sizeof(struct wire_hdr));
	}
	return 0;
}

static int test_truncated(void)
{
	struct wire_msg m;
	size_t i, len, cut;

	for (i = 0; i < NFIXED; i++) {
		len = build(fixed[i].type, fixed[i].body, 1);
		for (cut = 0; cut < len; cut++) {
			enum wire_error e = wire_decode(buf, cut, fixed[i].ch,
							&m);

			CHECKF(e == WIRE_ETRUNC, "%s cut at %zu gave %s",
			       wire_type_name(fixed[i].type), cut,
			       wire_error_str(e));
		}
	}
	CHECK(wire_decode(NULL, 100, WIRE_CH_NODE, &m) == WIRE_ETRUNC);
	return 0;
}

static int test_length_field(void)
{
	struct wire_msg m;
	size_t len = build(WIRE_CHECK_END, sizeof(struct wire_check_end), 1);

	/* More bytes arrived than the header claims. */
	CHECK(wire_decode(buf, len + 1, WIRE_CH_NODE, &m) == WIRE_ELONG);
	/* Header claims more than arrived. */
	set_len((uint32_t)len + 8);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETRUNC);
	/* Header claims less than a header. */
	set_len(3);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETRUNC);
	/* Body shorter than the type demands. */
	len = build(WIRE_CHECK_END, sizeof(struct wire_check_end) - 1, 1);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	/* Body longer than the type demands. */
	len = build(WIRE_HEARTBEAT, 4, 1);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	return 0;
}

static int test_oversized(void)
{
	struct wire_msg m;
	size_t len;

	/* A node message over the receive buffer size, with a consistent
	 * header, is refused even though every byte is there. */
	len = build(WIRE_CHECK_DATA, WIRE_MSG_MAX, 1);
	CHECK(len > WIRE_MSG_MAX);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ELONG);
	set_len(0xffffffffu);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETRUNC);
	return 0;
}

static int test_bad_header_fields(void)
{
	struct wire_msg m;
	size_t len = build(WIRE_HEARTBEAT, 0, 1);

	buf[0] ^= 0xff;
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EMAGIC);
	len = build(WIRE_HEARTBEAT, 0, 1);
	buf[offsetof(struct wire_hdr, version)] = WIRE_VERSION + 1;
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EVERSION);
	len = build(WIRE_HEARTBEAT, 0, 1);
	buf[offsetof(struct wire_hdr, type)] = 0;
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETYPE);
	buf[offsetof(struct wire_hdr, type)] = 200;
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETYPE);
	buf[offsetof(struct wire_hdr, type)] = 40; /* a hole in the table */
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETYPE);
	return 0;
}

static int test_wrong_channel(void)
{
	struct wire_msg m;
	size_t len;

	len = build(WIRE_HEARTBEAT, 0, 1);
	CHECK(wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_ETYPE);
	len = build(WIRE_IPC_STATUS, 0, 1);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_ETYPE);
	return 0;
}

static int test_check_data_payload(void)
{
	unsigned char body[sizeof(struct wire_check_data) + 100];
	struct wire_check_data *d = (void *)body;
	struct wire_msg m;
	size_t len;

	*d = (struct wire_check_data){.session = 1, .payload_len = 100};
	len = wire_build(buf, sizeof(buf), WIRE_CHECK_DATA, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_OK);
	d->payload_len = 101; /* claims a byte more than it carries */
	len = wire_build(buf, sizeof(buf), WIRE_CHECK_DATA, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	d->payload_len = 0xffffffffu;
	len = wire_build(buf, sizeof(buf), WIRE_CHECK_DATA, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	return 0;
}

/* An entry on the move says how much state follows, and must be right;
 * a heartbeat is empty or carries a load. */
static int test_dir_migrate_state(void)
{
	unsigned char body[sizeof(struct wire_dir_migrate) +
			   sizeof(struct wire_dir_page)];
	struct wire_dir_migrate mg = {.key = 1, .kind = WIRE_ENTRY_PAGE,
				      .state_len = sizeof(struct wire_dir_page)};
	struct wire_heartbeat hb = {.load = 7};
	struct wire_msg m;
	size_t len;

	memset(body, 0, sizeof(body));
	memcpy(body, &mg, sizeof(mg));
	len = wire_build(buf, sizeof(buf), WIRE_DIR_MIGRATE, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_OK);
	len = wire_build(buf, sizeof(buf), WIRE_DIR_MIGRATE, 1, body,
			 sizeof(body) - 1); /* a byte short of its claim */
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	mg.state_len = 0xffffffffu;
	memcpy(body, &mg, sizeof(mg));
	len = wire_build(buf, sizeof(buf), WIRE_DIR_MIGRATE, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	len = wire_build(buf, sizeof(buf), WIRE_DIR_MIGRATE, 1, body,
			 sizeof(mg) - 1);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	len = wire_build(buf, sizeof(buf), WIRE_HEARTBEAT, 0, &hb, sizeof(hb));
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_OK);
	len = wire_build(buf, sizeof(buf), WIRE_HEARTBEAT, 0, &hb, 4);
	CHECK(wire_decode(buf, len, WIRE_CH_NODE, &m) == WIRE_EBODY);
	return 0;
}

static int test_status_counts(void)
{
	size_t n = 3, blen = sizeof(struct wire_status_reply) +
			     n * sizeof(struct wire_member);
	unsigned char *body = calloc(1, blen + sizeof(struct wire_member));
	struct wire_status_reply r = {.node = 1, .nnodes = (uint32_t)n};
	struct wire_msg m;
	size_t len;
	int ok = 1;

	if (!body)
		return 1;
	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_STATUS_REPLY, 1, body, blen);
	ok &= wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_OK;
	/* One member more than nnodes announces. */
	len = wire_build(buf, sizeof(buf), WIRE_IPC_STATUS_REPLY, 1, body,
			 blen + sizeof(struct wire_member));
	ok &= wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_EBODY;
	/* A node count that would overflow a multiplication. */
	r.nnodes = 0x40000000u;
	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_STATUS_REPLY, 1, body, blen);
	ok &= wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_ERANGE;
	/* This node outside the cluster. */
	r.nnodes = (uint32_t)n;
	r.node = (uint32_t)n;
	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_STATUS_REPLY, 1, body, blen);
	ok &= wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_ERANGE;
	free(body);
	CHECK(ok);
	return 0;
}

static int test_check_reply_counts(void)
{
	unsigned char body[sizeof(struct wire_check_reply) +
			   2 * sizeof(struct wire_check_peer)] = {0};
	struct wire_check_reply r = {.node = 0, .npeers = 2};
	struct wire_msg m;
	size_t len;

	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_CHECK_REPLY, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_OK);
	r.npeers = 3;
	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_CHECK_REPLY, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_EBODY);
	r.npeers = 0xffffffffu;
	memcpy(body, &r, sizeof(r));
	len = wire_build(buf, sizeof(buf), WIRE_IPC_CHECK_REPLY, 1, body,
			 sizeof(body));
	CHECK(wire_decode(buf, len, WIRE_CH_IPC, &m) == WIRE_ERANGE);
	return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Random bytes are never taken for a message; random headers with valid
 * magic and version are accepted only if fully consistent. */
static int test_garbage(void)
{
	struct wire_msg m;
	int i;
	size_t len, j;

	for (i = 0; i < 200000; i++) {
		len = rnd() % 256;
		for (j = 0; j < len; j++)
			buf[j] = (unsigned char)rnd();
		if (i & 1 && len >= sizeof(struct wire_hdr)) {
			struct wire_hdr h;

			memcpy(&h, buf, sizeof(h));
			h.magic = WIRE_MAGIC;
			h.version = WIRE_VERSION;
			h.type = (uint8_t)(rnd() % WIRE_TYPE_MAX);
			h.length = (i & 2) ? (uint32_t)len : h.length;
			memcpy(buf, &h, sizeof(h));
		}
		for (int ch = 0; ch < 2; ch++) {
			if (wire_decode(buf, len, (enum wire_channel)ch, &m))
				continue;
			/* Whatever was accepted must be self-consistent. */
			CHECK(m.hdr->magic == WIRE_MAGIC);
			CHECK(m.hdr->length == len);
			CHECK(m.body_len == len - sizeof(struct wire_hdr));
		}
	}
	return 0;
}

/* Every single-bit flip of a valid message's magic, version or length is
 * refused: the fields the codec guards are guarded bit by bit. */
static int test_bit_flips(void)
{
	static const struct {
		size_t off, size;
	} guarded[] = {
		{offsetof(struct wire_hdr, magic), 2},
		{offsetof(struct wire_hdr, version), 1},
		{offsetof(struct wire_hdr, length), 4},
	};
	struct wire_msg m;
	size_t len, f;
	unsigned bit;

	for (f = 0; f < sizeof(guarded) / sizeof(guarded[0]); f++) {
		for (bit = 0; bit < 8 * guarded[f].size; bit++) {
			len = build(WIRE_CHECK_BEGIN,
				    sizeof(struct wire_check_begin), 1);
			buf[guarded[f].off + bit / 8] ^=
				(unsigned char)(1u << (bit % 8));
			CHECKF(wire_decode(buf, len, WIRE_CH_NODE, &m) !=
				       WIRE_OK,
			       "field at %zu bit %u", guarded[f].off, bit);
		}
	}
	return 0;
}

static int test_pattern(void)
{
	unsigned char a[1000];

	wire_pattern_fill(a, sizeof(a), 7);
	CHECK(wire_pattern_check(a, sizeof(a), 7) == -1);
	CHECK(wire_pattern_check(a, sizeof(a), 8) >= 0);
	a[997] ^= 1;
	CHECK(wire_pattern_check(a, sizeof(a), 7) == 997);
	wire_pattern_fill(a, 13, 9); /* a length not a multiple of 8 */
	CHECK(wire_pattern_check(a, 13, 9) == -1);
	return 0;
}

static int test_names(void)
{
	CHECK(!strcmp(wire_type_name(WIRE_HEARTBEAT), "HEARTBEAT"));
	CHECK(!strcmp(wire_type_name(255), "UNKNOWN"));
	CHECK(!strcmp(wire_error_str(WIRE_ETRUNC), "truncated"));
	CHECK(!strcmp(wire_error_str((enum wire_error)99), "?"));
	return 0;
}

static const struct test_case tests[] = {
	{"roundtrip", test_roundtrip},
	{"truncated", test_truncated},
	{"length_field", test_length_field},
	{"oversized", test_oversized},
	{"bad_header_fields", test_bad_header_fields},
	{"wrong_channel", test_wrong_channel},
	{"check_data_payload", test_check_data_payload},
	{"dir_migrate_state", test_dir_migrate_state},
	{"status_counts", test_status_counts},
	{"check_reply_counts", test_check_reply_counts},
	{"garbage", test_garbage},
	{"bit_flips", test_bit_flips},
	{"pattern", test_pattern},
	{"names", test_names},
};

TEST_MAIN(tests, NULL)
