/* ofi_lib: see ofi_lib.h. */
#include "ofi_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_errno.h>

#include "log.h"

/* Debian's libfabric links its PSM providers' libraries, one of which
 * calibrates a clock when it loads (about 840 short sleeps: 0.2 s on the
 * host, more in an emulated guest).  A dsmd on verbs, or alone, should not
 * pay that, so the library is opened when first needed.  It is the one the
 * headers were built against (same soname), so dlsym's default versions
 * are the ones the linker would have bound. */
#define OFI_LIB_SONAME "libfabric.so.1"

struct ofi_lib ofi_lf;
static pthread_once_t lf_once = PTHREAD_ONCE_INIT;

static void *lf_sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p && !ofi_lf.error[0])
		snprintf(ofi_lf.error, sizeof(ofi_lf.error), "%s has no %s",
			 OFI_LIB_SONAME, name);
	return p;
}

static void lf_open(void)
{
	void *h = dlopen(OFI_LIB_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(ofi_lf.error, sizeof(ofi_lf.error), "%s", dlerror());
		return;
	}
	ofi_lf.getinfo = lf_sym(h, "fi_getinfo");
	ofi_lf.freeinfo = lf_sym(h, "fi_freeinfo");
	ofi_lf.dupinfo = lf_sym(h, "fi_dupinfo");
	ofi_lf.fabric = lf_sym(h, "fi_fabric");
	ofi_lf.strerror = lf_sym(h, "fi_strerror");
	/* Kept open for the life of the process: providers keep threads
	 * and state that outlive any one transport. */
}

int ofi_lib_load(const char *who)
{
	pthread_once(&lf_once, lf_open);
	if (ofi_lf.error[0]) {
		log_err("%s: cannot load libfabric: %s (Debian: apt-get "
			"install libfabric1)", who, ofi_lf.error);
		return -ELIBACC;
	}
	return 0;
}

static struct fi_info *hints(const char *provider, int mr_mode)
{
	struct fi_info *h = ofi_lf.dupinfo(NULL);

	if (!h)
		return NULL;
	h->caps = FI_MSG | FI_RMA | FI_SEND | FI_RECV | FI_READ | FI_WRITE |
		  FI_REMOTE_READ | FI_REMOTE_WRITE | FI_SOURCE;
	h->mode = FI_CONTEXT | FI_CONTEXT2 | FI_LOCAL_MR;
	h->addr_format = FI_SOCKADDR_IN;
	h->ep_attr->type = FI_EP_RDM;
	/* As on a verbs RC queue pair: messages in order, a message after a
	 * WRITE after its data, a peer's hello before its first WRITE. */
	h->tx_attr->msg_order = FI_ORDER_SAS | FI_ORDER_SAW | FI_ORDER_WAS;
	h->rx_attr->msg_order = FI_ORDER_SAS | FI_ORDER_SAW | FI_ORDER_WAS;
	h->domain_attr->mr_mode = mr_mode;
	h->domain_attr->cq_data_size = 8;
	h->domain_attr->av_type = FI_AV_TABLE;
	h->domain_attr->threading = FI_THREAD_DOMAIN;
	h->domain_attr->control_progress = FI_PROGRESS_MANUAL;
	h->domain_attr->data_progress = FI_PROGRESS_MANUAL;
	if (provider) {
		h->fabric_attr->prov_name = strdup(provider);
		if (!h->fabric_attr->prov_name) {
			ofi_lf.freeinfo(h);
			return NULL;
		}
	}
	return h;
}

static int getinfo(const char *provider, const char *addr, int mr_mode,
		   struct fi_info **out)
{
	struct fi_info *h = hints(provider, mr_mode);
	int ret;

	if (!h)
		return -ENOMEM;
	/* FI_SOURCE: node and service are where we listen; port 0 is any. */
	ret = ofi_lf.getinfo(FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION),
			     addr, "0", FI_SOURCE, h, out);
	ofi_lf.freeinfo(h);
	return ret;
}

/* What the user could have asked for: every provider with reliable
 * datagrams, messages and RMA, whatever its modes. */
static void list_providers(char *buf, size_t len)
{
	struct fi_info *h = hints(NULL, 0), *all = NULL, *i, *j;
	size_t used = 0;

	snprintf(buf, len, "none");
	if (!h)
		return;
	h->caps = FI_MSG | FI_RMA;
	h->mode = ~0ull;
	h->addr_format = FI_FORMAT_UNSPEC;
	h->domain_attr->mr_mode = OFI_MR_MODE | FI_MR_ENDPOINT | FI_MR_RAW |
				  FI_MR_MMU_NOTIFY | FI_MR_RMA_EVENT;
	h->domain_attr->cq_data_size = 0;
	h->tx_attr->msg_order = 0;
	h->rx_attr->msg_order = 0;
	if (ofi_lf.getinfo(FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION),
			   NULL, NULL, 0, h, &all) == 0) {
		for (i = all; i; i = i->next) {
			for (j = all; j != i; j = j->next)
				if (!strcmp(j->fabric_attr->prov_name,
					    i->fabric_attr->prov_name))
					break;
			if (j == i && used < len)
				used += (size_t)snprintf(
					buf + used, len - used, "%s%s",
					used ? ", " : "",
					i->fabric_attr->prov_name);
		}
		ofi_lf.freeinfo(all);
	}
	ofi_lf.freeinfo(h);
}

int ofi_pick_info(const char *provider, const char *addr, const char *who,
		  struct fi_info **out)
{
	char list[512];
	int ret;

	*out = NULL;
	ret = getinfo(provider, addr, OFI_MR_MODE, out);
	if (ret == 0 && !((*out)->domain_attr->mr_mode & FI_MR_VIRT_ADDR)) {
		ofi_lf.freeinfo(*out);
		*out = NULL;
		ret = getinfo(provider, addr, FI_MR_BASIC, out);
		if (ret == -FI_ENODATA) {
			log_err("%s: libfabric provider '%s' addresses RMA by "
				"offset, not by virtual address", who,
				provider);
			return -EPROTONOSUPPORT;
		}
	}
	if (ret == -FI_ENODATA) {
		list_providers(list, sizeof(list));
		log_err("%s: libfabric has no provider '%s' with reliable "
			"datagrams, messages, RMA and 8 bytes of CQ data on "
			"%s; providers with reliable datagrams, messages and "
			"RMA: %s", who, provider, addr, list);
		return -ENOENT;
	}
	if (ret) {
		log_err("%s: fi_getinfo: %s", who, ofi_lf.strerror(-ret));
		*out = NULL;
		return ret;
	}
	return 0;
}
