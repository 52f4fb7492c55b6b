/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GPU memory pool: one rte_gpu_mem_alloc (or host allocation) carved into
 * DJG_PAGE_SIZE pages. The bookkeeping lives in host memory, since GPU
 * memory is not CPU-addressable: a bitmap of used pages (first fit, scanned
 * a word at a time) and, at the first page of each allocation, its length.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_gpudev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"
#endif

#define NO_PAGE UINT32_MAX

struct djg_pool {
	pthread_mutex_t lock;
	int16_t dev_id;
	int ordinal;          /* CUDA ordinal; -1 for host memory */
	uint8_t *base;
	size_t size;
	uint32_t pages;
	uint32_t first_free;  /* no free page below this one */
	uint64_t *used;       /* bit per page */
	uint32_t *run_pages;  /* pages of the allocation starting here, else 0 */
	uint64_t used_pages;
	uint64_t allocs;
	uint64_t failed;
};

static void mark_pages(struct djg_pool *p, uint32_t first, uint32_t n, int used)
{
	for (uint32_t i = first; i < first + n; i++) {
		if (used)
			p->used[i / 64] |= UINT64_C(1) << (i % 64);
		else
			p->used[i / 64] &= ~(UINT64_C(1) << (i % 64));
	}
}

/* First page at or after @from whose used bit equals @want, or p->pages. */
static uint32_t next_page(const struct djg_pool *p, uint32_t from, int want)
{
	while (from < p->pages) {
		uint64_t word = p->used[from / 64];

		if (!want)
			word = ~word;
		word &= ~UINT64_C(0) << (from % 64);
		if (word != 0) {
			uint32_t page = (from & ~63u) + __builtin_ctzll(word);

			return page < p->pages ? page : p->pages;
		}
		from = (from & ~63u) + 64;
	}
	return p->pages;
}

static uint32_t find_free_run(const struct djg_pool *p, uint32_t n)
{
	uint32_t start = next_page(p, p->first_free, 0);

	while (start < p->pages) {
		uint32_t end = next_page(p, start, 1);

		if (end - start >= n)
			return start;
		start = next_page(p, end, 0);
	}
	return NO_PAGE;
}

static int map_memory(struct djg_pool *p)
{
	if (p->dev_id == DJG_HOST) {
		p->base = aligned_alloc(DJG_PAGE_SIZE, p->size);
		return p->base != NULL ? 0 : -ENOMEM;
	}
	p->ordinal = djg_ordinal(p->dev_id);
	if (p->ordinal < 0)
		return -DJ_ENOGPU;
	p->base = rte_gpu_mem_alloc(p->dev_id, p->size, DJG_PAGE_SIZE);
	if (p->base == NULL) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "GPU %d: cannot allocate a %zu MiB pool: %s",
		       p->dev_id, p->size >> 20, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

int djg_pool_create(int16_t dev_id, size_t size, struct djg_pool **pool)
{
	struct djg_pool *p;
	size_t pages;
	int rc;

	if (pool == NULL || size == 0)
		return -EINVAL;
	if (dev_id != DJG_HOST && djg_count() == 0)
		return -DJ_ENOGPU;
	pages = (size + DJG_PAGE_SIZE - 1) / DJG_PAGE_SIZE;
	if (pages >= NO_PAGE)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->dev_id = dev_id;
	p->ordinal = -1;
	p->pages = pages;
	p->size = pages * DJG_PAGE_SIZE;
	p->used = calloc((pages + 63) / 64, sizeof(*p->used));
	p->run_pages = calloc(pages, sizeof(*p->run_pages));
	rc = p->used != NULL && p->run_pages != NULL ? map_memory(p) : -ENOMEM;
	if (rc != 0) {
		free(p->used);
		free(p->run_pages);
		free(p);
		return rc;
	}
	pthread_mutex_init(&p->lock, NULL);
	DJC_LOG(DJ_LOG_INFO, DJG_LOG, "pool: %zu MiB of %s memory at %p", p->size >> 20,
	       dev_id == DJG_HOST ? "host" : "GPU", (void *)p->base);
	*pool = p;
	return 0;
}

void djg_pool_destroy(struct djg_pool *pool)
{
	if (pool == NULL)
		return;
	if (pool->dev_id == DJG_HOST)
		free(pool->base);
	else
		djg_gpudev_release(pool->dev_id, pool->base, 0);
	pthread_mutex_destroy(&pool->lock);
	free(pool->used);
	free(pool->run_pages);
	free(pool);
}

int16_t djg_pool_dev(const struct djg_pool *pool)
{
	return pool->dev_id;
}

int djg_pool_alloc(struct djg_pool *pool, size_t len, void **ptr)
{
	uint32_t n, first;

	if (pool == NULL || ptr == NULL || len == 0 || len > pool->size)
		return -EINVAL;
	n = (len + DJG_PAGE_SIZE - 1) / DJG_PAGE_SIZE;
	pthread_mutex_lock(&pool->lock);
	first = find_free_run(pool, n);
	if (first == NO_PAGE) {
		pool->failed++;
		pthread_mutex_unlock(&pool->lock);
		return -ENOMEM;
	}
	mark_pages(pool, first, n, 1);
	pool->run_pages[first] = n;
	pool->used_pages += n;
	pool->allocs++;
	if (first == pool->first_free)
		pool->first_free = first + n;
	pthread_mutex_unlock(&pool->lock);
	*ptr = pool->base + (size_t)first * DJG_PAGE_SIZE;
	return 0;
}

/* Page index of the allocation starting at @ptr, or NO_PAGE. */
static uint32_t alloc_page(const struct djg_pool *pool, const void *ptr)
{
	const uint8_t *b = ptr;
	size_t off;

	if (b < pool->base || b >= pool->base + pool->size)
		return NO_PAGE;
	off = b - pool->base;
	if (off % DJG_PAGE_SIZE != 0 || pool->run_pages[off / DJG_PAGE_SIZE] == 0)
		return NO_PAGE;
	return off / DJG_PAGE_SIZE;
}

int djg_pool_free(struct djg_pool *pool, void *ptr)
{
	uint32_t first, n;

	if (pool == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	first = alloc_page(pool, ptr);
	if (first == NO_PAGE) {
		pthread_mutex_unlock(&pool->lock);
		DJC_LOG(DJ_LOG_WARN, DJG_LOG, "pool: free of %p, not an allocation of this pool",
		       ptr);
		return -EINVAL;
	}
	n = pool->run_pages[first];
	pool->run_pages[first] = 0;
	mark_pages(pool, first, n, 0);
	pool->used_pages -= n;
	pool->allocs--;
	if (first < pool->first_free)
		pool->first_free = first;
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

static int in_pool(const struct djg_pool *pool, const void *ptr, size_t len)
{
	const uint8_t *b = ptr;

	return b >= pool->base && len <= pool->size && (size_t)(b - pool->base) <= pool->size - len;
}

static int pool_copy(struct djg_pool *pool, void *dst, const void *src, size_t len,
		     int to_pool)
{
	if (pool == NULL || dst == NULL || src == NULL || !in_pool(pool, to_pool ? dst : src, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (pool->dev_id == DJG_HOST) {
		memcpy(dst, src, len);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	return djg_cuda_copy(pool->ordinal, dst, src, len, to_pool);
#else
	return -DJ_ENOGPU;
#endif
}

int djg_pool_copy_in(struct djg_pool *pool, void *dst, const void *src, size_t len)
{
	return pool_copy(pool, dst, src, len, 1);
}

int djg_pool_copy_out(struct djg_pool *pool, void *dst, const void *src, size_t len)
{
	return pool_copy(pool, dst, src, len, 0);
}

int djg_pool_stats_get(struct djg_pool *pool, struct djg_pool_stats *stats)
{
	uint32_t start, largest = 0;

	if (pool == NULL || stats == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	for (start = next_page(pool, 0, 0); start < pool->pages;) {
		uint32_t end = next_page(pool, start, 1);

		if (end - start > largest)
			largest = end - start;
		start = next_page(pool, end, 0);
	}
	stats->size = pool->size;
	stats->used = pool->used_pages * DJG_PAGE_SIZE;
	stats->largest_free = (uint64_t)largest * DJG_PAGE_SIZE;
	stats->allocs = pool->allocs;
	stats->failed = pool->failed;
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
