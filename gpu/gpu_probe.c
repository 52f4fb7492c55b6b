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

/*
 * What djg_mempool_register() registered, per (device, mempool): the chunk
 * addresses themselves, so that unregistering never walks the mempool. A
 * mempool may be freed before its registration is dropped (test_gpu_dp
 * destroys its engines, and their pools, before the placer that
 * registered them): walking it then read freed memory, left every chunk
 * registered, and the next pool at the same addresses was refused with
 * -EEXIST.
 */
struct pool_reg {
	int16_t dev_id;
	const struct rte_mempool *mp;   /* NULL: a free slot */
	void **chunks;
	unsigned int n, cap;
};

#define POOL_REGS_MAX 64

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_reg pool_regs[POOL_REGS_MAX];

struct mempool_walk {
	struct pool_reg *reg;
	int rc;
};

static void pool_reg_drop(struct pool_reg *reg)
{
	for (unsigned int i = 0; i < reg->n; i++)
		djg_host_unregister(reg->dev_id, reg->chunks[i]);
	free(reg->chunks);
	*reg = (struct pool_reg){0};
}

static void register_chunk(struct rte_mempool *mp, void *opaque,
			   struct rte_mempool_memhdr *memhdr, unsigned int idx)
{
	struct mempool_walk *w = opaque;
	struct pool_reg *reg = w->reg;

	(void)mp;
	(void)idx;
	if (w->rc != 0)
		return;
	if (reg->n == reg->cap) {
		unsigned int cap = reg->cap != 0 ? 2 * reg->cap : 16;
		void **chunks = realloc(reg->chunks, cap * sizeof(*chunks));

		if (chunks == NULL) {
			w->rc = -ENOMEM;
			return;
		}
		reg->chunks = chunks;
		reg->cap = cap;
	}
	w->rc = djg_host_register(reg->dev_id, memhdr->addr, memhdr->len);
	if (w->rc == 0)
		reg->chunks[reg->n++] = memhdr->addr;
}

/* The record of (dev_id, mp); with mp NULL, a free slot (any device). */
static struct pool_reg *pool_reg_find(int16_t dev_id, const struct rte_mempool *mp)
{
	for (unsigned int i = 0; i < POOL_REGS_MAX; i++)
		if (pool_regs[i].mp == mp && (mp == NULL || pool_regs[i].dev_id == dev_id))
			return &pool_regs[i];
	return NULL;
}

int djg_mempool_register(int16_t dev_id, struct rte_mempool *mp)
{
	struct mempool_walk w = {0};
	int rc;

	if (mp == NULL)
		return -EINVAL;
	if (dev_id == DJG_HOST)
		return 0;
	pthread_mutex_lock(&pool_lock);
	if (pool_reg_find(dev_id, mp) != NULL) {
		rc = -EEXIST;
	} else if ((w.reg = pool_reg_find(dev_id, NULL)) == NULL) {
		rc = -ENOSPC;
	} else {
		*w.reg = (struct pool_reg){.dev_id = dev_id, .mp = mp};
		rte_mempool_mem_iter(mp, register_chunk, &w);
		rc = w.rc;
		/* Only what this call registered goes back. */
		if (rc != 0)
			pool_reg_drop(w.reg);
	}
	pthread_mutex_unlock(&pool_lock);
	return rc;
}

int djg_mempool_unregister(int16_t dev_id, struct rte_mempool *mp)
{
	struct pool_reg *reg;

	if (mp == NULL)
		return -EINVAL;
	if (dev_id == DJG_HOST)
		return 0;
	pthread_mutex_lock(&pool_lock);
	reg = pool_reg_find(dev_id, mp);
	if (reg != NULL)
		pool_reg_drop(reg);
	pthread_mutex_unlock(&pool_lock);
	return reg != NULL ? 0 : -ENOENT;
}
