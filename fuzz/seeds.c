/* Writes the seed corpora: for every message type, the smallest all-zero
 * body wire_decode() accepts, as a message (corpus/wire/TYPE) and as a
 * client's IPC message with and without a descriptor (corpus/ipc/). */
#include <stdio.h>
#include <string.h>

#include "wire.h"

static void put(const char *dir, const char *name, const void *p, size_t n,
		int flag)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return;
	if (flag >= 0)
		fputc(flag, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

int main(int argc, char **argv)
{
	static unsigned char msg[WIRE_IPC_MAX], body[WIRE_IPC_MAX];
	struct wire_msg m;
	char name[96];

	if (argc != 3) {
		fprintf(stderr, "usage: %s WIRE_DIR IPC_DIR\n", argv[0]);
		return 2;
	}
	for (unsigned t = 0; t < WIRE_TYPE_MAX; t++) {
		int ch = wire_type_channel(t);

		if (ch < 0)
			continue;
		for (size_t len = 0; len <= 1024; len++) {
			size_t n = wire_build(msg, sizeof(msg), t, 7, body, len);

			if (!n || wire_decode(msg, n, ch, &m) != WIRE_OK)
				continue;
			snprintf(name, sizeof(name), "%s", wire_type_name(t));
			put(argv[1], name, msg, n, -1);
			if (ch == WIRE_CH_IPC) {
				put(argv[2], name, msg, n, 0);
				snprintf(name, sizeof(name), "%s.fd",
					 wire_type_name(t));
				put(argv[2], name, msg, n, 1);
			}
			break;
		}
	}
	return 0;
}
