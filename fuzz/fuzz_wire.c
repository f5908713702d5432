/* wire_decode() on arbitrary bytes, on both channels.  What it accepts
 * must be exactly a message wire_build() makes again from the decoded
 * header and body, with its type legal on that channel; what it refuses
 * gets a named reason.  Any other outcome traps. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int ch = WIRE_CH_NODE; ch <= WIRE_CH_IPC; ch++) {
		struct wire_msg m;
		enum wire_error e = wire_decode(data, size, ch, &m);
		unsigned char *again;

		if (e != WIRE_OK) {
			REQUIRE(e > WIRE_OK && e < WIRE_NERRORS);
			REQUIRE(wire_error_str(e) != NULL);
			continue;
		}
		REQUIRE((const void *)m.hdr == (const void *)data);
		REQUIRE(m.body == data + sizeof(struct wire_hdr));
		REQUIRE(m.body_len == size - sizeof(struct wire_hdr));
		REQUIRE(m.hdr->length == size);
		REQUIRE(size <= (ch == WIRE_CH_NODE ? WIRE_MSG_MAX
						    : WIRE_IPC_MAX));
		REQUIRE(wire_type_channel(m.hdr->type) == ch);
		REQUIRE(wire_type_name(m.hdr->type) != NULL);
		again = malloc(size);
		REQUIRE(again != NULL);
		REQUIRE(wire_build(again, size, m.hdr->type, m.hdr->req_id,
				   m.body, m.body_len) == size);
		/* src, credits and seq are the transport's: wire_build
		 * leaves them 0. */
		memcpy(again + offsetof(struct wire_hdr, src),
		       data + offsetof(struct wire_hdr, src),
		       offsetof(struct wire_hdr, req_id) -
			       offsetof(struct wire_hdr, src));
		REQUIRE(memcmp(again, data, size) == 0);
		free(again);
	}
	return 0;
}
