/* SPDX-License-Identifier: BSD-3-Clause */
/* GPU discovery (gpudev, names from the CUDA runtime) and mempool
 * registration (host ranges: host_reg.c). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_gpudev.h>
#include <rte_mempool.h>

#include "djinn/common.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"
#endif

int djg_count(void)
{
#ifdef DJ_HAVE_CUDA
	return rte_gpu_count_avail();
#else
	/* Without the runtime we can neither copy nor launch: no usable GPU. */
	return 0;
#endif
}

/* gpudev's CUDA driver names a device by its PCI address only. */
static void describe_model(struct djg_info *info)
{
#ifdef DJ_HAVE_CUDA
	int ordinal = djg_cuda_ordinal(info->pci_addr);
	uint32_t sms;

	if (ordinal >= 0 && djg_cuda_describe(ordinal, info->name, sizeof(info->name), &sms) == 0)
		return;
#endif
	snprintf(info->name, sizeof(info->name), "GPU at %s", info->pci_addr);
}

int djg_info_get(int index, struct djg_info *info)
{
	int16_t dev_id;
	int i = 0;

	if (info == NULL || index < 0 || index >= djg_count())
		return -ENODEV;
	RTE_GPU_FOREACH(dev_id) {
		struct rte_gpu_info gi;

		if (i++ != index)
			continue;
		if (rte_gpu_info_get(dev_id, &gi) != 0)
			return -ENODEV;
		memset(info, 0, sizeof(*info));
		info->dev_id = dev_id;
		snprintf(info->pci_addr, sizeof(info->pci_addr), "%s", gi.name ? gi.name : "");
		info->total_memory = gi.total_memory;
		info->processors = gi.processor_count;
		info->numa_node = gi.numa_node;
		describe_model(info);
		return 0;
	}
	return -ENODEV;
}

/* "00:06.0" matches "0000:00:06.0": compare from the end. */
static int pci_matches(const char *full, const char *spec)
{
	size_t fl = strlen(full), sl = strlen(spec);

	return sl > 0 && sl <= fl && strcasecmp(full + fl - sl, spec) == 0 &&
	       (sl == fl || full[fl - sl - 1] == ':');
}

int djg_find(const char *spec)
{
	int n = djg_count();
	char *end;
	long index;

	if (n == 0)
		return -DJ_ENOGPU;
	if (spec == NULL || spec[0] == '\0')
		spec = "0";
	index = strtol(spec, &end, 10);
	for (int i = 0; i < n; i++) {
		struct djg_info info;

		if (djg_info_get(i, &info) != 0)
			continue;
		if ((*end == '\0' && index == i) || pci_matches(info.pci_addr, spec))
			return info.dev_id;
	}
	return -ENODEV;
}

int djg_ordinal(int16_t dev_id)
{
#ifdef DJ_HAVE_CUDA
	struct rte_gpu_info gi;

	if (rte_gpu_info_get(dev_id, &gi) != 0 || gi.name == NULL)
		return -DJ_ENOGPU;
	return djg_cuda_ordinal(gi.name);
#else
	(void)dev_id;
	return -DJ_ENOGPU;
#endif
}

/*
 * DPDK 22.11's gpu/cuda driver keeps its allocations and registrations in a
 * list whose tail pointer is left dangling when the tail entry is deleted:
 * the next entry is linked to freed memory, can never be found again and
 * later fails with "not found in driver memory" (docs/GPU.md has the driver
 * patch). Until that patch is in scripts/dpdk, never delete the tail: put a
 * fresh one-page guard allocation at the tail first, then drop the previous
 * guard, which no longer is the tail. One guard stays alive per GPU.
 */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static void *guard[RTE_GPU_DEFAULT_MAX];

int djg_gpudev_release(int16_t dev_id, void *ptr, int registered)
{
	void *fresh, *old = NULL;
	int rc;

	if (dev_id < 0 || dev_id >= RTE_GPU_DEFAULT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&guard_lock);
	fresh = rte_gpu_mem_alloc(dev_id, DJG_PAGE_SIZE, 0);
	rc = registered ? rte_gpu_mem_unregister(dev_id, ptr) : rte_gpu_mem_free(dev_id, ptr);
	rc = rc == 0 ? 0 : -rte_errno;
	if (fresh != NULL) {
		old = guard[dev_id];
		guard[dev_id] = fresh;
	}
	if (old != NULL)
		rte_gpu_mem_free(dev_id, old);
	pthread_mutex_unlock(&guard_lock);
	return rc;
}

struct mempool_walk {
	int16_t dev_id;
	int rc;
	int registering;
};

static void register_chunk(struct rte_mempool *mp, void *opaque,
			   struct rte_mempool_memhdr *memhdr, unsigned int idx)
{
	struct mempool_walk *w = opaque;
	int rc;

	if (w->registering && w->rc != 0)
		return;
	rc = w->registering ? djg_host_register(w->dev_id, memhdr->addr, memhdr->len)
			    : djg_host_unregister(w->dev_id, memhdr->addr);
	if (rc != 0 && w->rc == 0)
		w->rc = rc;
}

static int mempool_walk(int16_t dev_id, struct rte_mempool *mp, int registering)
{
	struct mempool_walk w = {.dev_id = dev_id, .registering = registering};

	if (mp == NULL)
		return -EINVAL;
	if (dev_id == DJG_HOST)
		return 0;
	rte_mempool_mem_iter(mp, register_chunk, &w);
	return w.rc;
}

int djg_mempool_register(int16_t dev_id, struct rte_mempool *mp)
{
	int rc = mempool_walk(dev_id, mp, 1);

	if (rc != 0)
		mempool_walk(dev_id, mp, 0);
	return rc;
}

int djg_mempool_unregister(int16_t dev_id, struct rte_mempool *mp)
{
	return mempool_walk(dev_id, mp, 0);
}
