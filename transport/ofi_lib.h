/* ofi_lib: libfabric, opened when first needed, and the provider libdsm
 * asks it for.
 *
 * Used by the ofi transport (xport_ofi.c) and by the raw libfabric floor
 * (bench/ofi_pair.c), so that the floor runs the provider exactly as the
 * transport does: same capabilities, ordering, progress and registration
 * modes, asked in the same order.
 */
#ifndef DSM_OFI_LIB_H
#define DSM_OFI_LIB_H

#include <stdint.h>

#include <rdma/fabric.h>

/* The five functions of libfabric called by name; the rest of the API is
 * inline calls through each object's ops table.  Filled in by
 * ofi_lib_load(). */
struct ofi_lib {
	int (*getinfo)(uint32_t version, const char *node, const char *service,
		       uint64_t flags, const struct fi_info *hints,
		       struct fi_info **info);
	void (*freeinfo)(struct fi_info *info);
	struct fi_info *(*dupinfo)(const struct fi_info *info);
	int (*fabric)(struct fi_fabric_attr *attr, struct fid_fabric **fabric,
		      void *context);
	const char *(*strerror)(int errnum);
	char error[256]; /* why it could not be opened; empty if it could */
};

extern struct ofi_lib ofi_lf;

/* Open libfabric once per process (thread-safe): 0, or -ELIBACC logged
 * under `who` with the Debian package to install. */
int ofi_lib_load(const char *who);

/* The modern registration modes libdsm copes with: it registers its own
 * buffers and passes descriptors (LOCAL), names remote memory by virtual
 * address (VIRT_ADDR), exchanges keys the provider chose (PROV_KEY), and
 * registers allocated memory only (ALLOCATED). */
#define OFI_MR_MODE (FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | \
		     FI_MR_PROV_KEY)

/* Ask for `provider` listening on `addr` (any port): reliable datagrams,
 * messages and RMA with 8 bytes of CQ data, messages ordered after
 * messages and WRITEs, manual progress, OFI_MR_MODE first and FI_MR_BASIC
 * when that answer addresses RMA by offset (tcp's native registration).
 * After ofi_lib_load().  0 with *out to free with ofi_lf.freeinfo;
 * -ENOENT when there is no such provider (logged with the providers there
 * are), -EPROTONOSUPPORT when it addresses RMA only by offset, another
 * negative errno on other failures; all logged under `who`. */
int ofi_pick_info(const char *provider, const char *addr, const char *who,
		  struct fi_info **out);

#endif
