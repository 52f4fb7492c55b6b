/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host memory made readable by a GPU (rte_gpu_mem_register).
 *
 * CUDA registers whole pages and refuses a range that shares a page with
 * one registered before: two small mempools in one page, a staging buffer
 * next to a pool, a tensor next to either. So registrations are kept in
 * two layers:
 *   pieces         page-aligned, disjoint ranges registered with the driver,
 *                  each counted by the registrations that cover it;
 *   registrations  what callers asked for (ptr, len), to find their pieces
 *                  again at unregister.
 * A registration registers only the pages no piece covers yet, and a piece
 * goes back to the driver when its last registration does.
 *
 * Polling lcores ask djg_host_readable() whether a buffer (an attached
 * external buffer, say) may be handed to the gather kernel: that lookup
 * takes no lock. Pieces live in a fixed table; each slot has a sequence
 * count, odd while the slot changes, so a reader never mixes two pieces.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_gpudev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#ifdef DJ_HAVE_CUDA
#include "gpu/gpu_cuda.h"
#endif

#define HOSTREG_MAX_PIECES 1024
#define HOSTREG_MAX_REGS 512

struct piece {
	uint32_t seq;      /* odd while the slot is written */
	int16_t dev_id;
	uintptr_t start;   /* page aligned; end == 0: free slot */
	uintptr_t end;
	uint32_t refs;     /* registrations covering it; under the lock */
};

struct registration {
	int16_t dev_id;
	uintptr_t ptr;     /* 0: free slot */
	size_t len;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct piece pieces[HOSTREG_MAX_PIECES];
static struct registration regs[HOSTREG_MAX_REGS];
static unsigned int pieces_used; /* slots [0, pieces_used) were ever used */

static uintptr_t page_size(void)
{
	static uintptr_t size;

	if (size == 0) {
		long s = sysconf(_SC_PAGESIZE);

		size = s > 0 ? (uintptr_t)s : 4096;
	}
	return size;
}

static void piece_write(struct piece *p, int16_t dev_id, uintptr_t start, uintptr_t end)
{
	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	p->dev_id = dev_id;
	__atomic_store_n(&p->start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&p->end, end, __ATOMIC_RELAXED);
	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELEASE);
}

/* A consistent copy of slot @i; false while it is being written. */
static bool piece_read(unsigned int i, int16_t *dev_id, uintptr_t *start, uintptr_t *end)
{
	const struct piece *p = &pieces[i];
	uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);

	if (seq & 1)
		return false;
	*dev_id = p->dev_id;
	*start = __atomic_load_n(&p->start, __ATOMIC_RELAXED);
	*end = __atomic_load_n(&p->end, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&p->seq, __ATOMIC_RELAXED) == seq;
}

/* The piece of @dev_id holding address @a, or NULL. */
static const struct piece *piece_at(int16_t dev_id, uintptr_t a, uintptr_t *end)
{
	unsigned int used = __atomic_load_n(&pieces_used, __ATOMIC_ACQUIRE);

	for (unsigned int i = 0; i < used; i++) {
		int16_t d;
		uintptr_t s, e;

		if (piece_read(i, &d, &s, &e) && e != 0 && d == dev_id && a >= s && a < e) {
			*end = e;
			return &pieces[i];
		}
	}
	return NULL;
}

size_t djg_host_piece_len(int16_t dev_id, const void *ptr, size_t len)
{
	uintptr_t a = (uintptr_t)ptr, end;

	if (dev_id == DJG_HOST || piece_at(dev_id, a, &end) == NULL)
		return len;
	return end - a < len ? end - a : len;
}

int djg_copy_async_host(int16_t dev_id, void *stream, void *dst, const void *src, size_t len,
			bool host_is_src)
{
#ifdef DJ_HAVE_CUDA
	size_t off = 0;
	int rc = 0;

	while (rc == 0 && off < len) {
		const uint8_t *host = (const uint8_t *)(host_is_src ? src : dst) + off;
		size_t n = djg_host_piece_len(dev_id, host, len - off);

		rc = djg_copy_async(stream, (uint8_t *)dst + off, (const uint8_t *)src + off, n);
		off += n;
	}
	return rc;
#else
	(void)dev_id;
	(void)stream;
	(void)dst;
	(void)src;
	(void)len;
	(void)host_is_src;
	return -DJ_ENOGPU;
#endif
}

bool djg_host_readable(int16_t dev_id, const void *ptr, size_t len)
{
	uintptr_t a = (uintptr_t)ptr, last = a + (len ? len : 1), end;

	if (dev_id == DJG_HOST)
		return true;
	/* Adjacent pieces together may cover the range. */
	while (a < last) {
		if (piece_at(dev_id, a, &end) == NULL)
			return false;
		a = end;
	}
	return true;
}

static struct piece *piece_new(int16_t dev_id, uintptr_t start, uintptr_t end)
{
	for (unsigned int i = 0; i < HOSTREG_MAX_PIECES; i++) {
		if (pieces[i].end != 0)
			continue;
		if (rte_gpu_mem_register(dev_id, end - start, (void *)start) != 0) {
			DJC_LOG(DJ_LOG_ERR, DJG_LOG, "cannot register %zu host bytes at %p with "
			       "GPU %d: %s", (size_t)(end - start), (void *)start, dev_id,
			       rte_strerror(rte_errno));
			return NULL;
		}
		pieces[i].refs = 1;
		piece_write(&pieces[i], dev_id, start, end);
		if (i >= pieces_used)
			__atomic_store_n(&pieces_used, i + 1, __ATOMIC_RELEASE);
		return &pieces[i];
	}
	DJC_LOG(DJ_LOG_ERR, DJG_LOG, "more than %d registered host ranges", HOSTREG_MAX_PIECES);
	return NULL;
}

static void piece_put(struct piece *p)
{
	uintptr_t start = p->start;

	if (--p->refs != 0)
		return;
	piece_write(p, p->dev_id, 0, 0);
	djg_gpudev_release(p->dev_id, (void *)start, 1);
}

/* Drop one reference on every piece of @dev_id in [start, end). */
static void pieces_put(int16_t dev_id, uintptr_t start, uintptr_t end)
{
	for (unsigned int i = 0; i < pieces_used; i++)
		if (pieces[i].end != 0 && pieces[i].dev_id == dev_id &&
		    pieces[i].start < end && pieces[i].end > start)
			piece_put(&pieces[i]);
}

/* The lowest piece of @dev_id that ends after @a and starts before @end. */
static struct piece *piece_next(int16_t dev_id, uintptr_t a, uintptr_t end)
{
	struct piece *best = NULL;

	for (unsigned int i = 0; i < pieces_used; i++) {
		struct piece *p = &pieces[i];

		if (p->end != 0 && p->dev_id == dev_id && p->end > a && p->start < end &&
		    (best == NULL || p->start < best->start))
			best = p;
	}
	return best;
}

/* Cover [start, end): count the pieces there, register the gaps. */
static int pieces_cover(int16_t dev_id, uintptr_t start, uintptr_t end)
{
	uintptr_t a = start;

	while (a < end) {
		struct piece *p = piece_next(dev_id, a, end);
		uintptr_t gap_end = p != NULL && p->start < end ? RTE_MAX(p->start, a) : end;

		if (gap_end > a && piece_new(dev_id, a, gap_end) == NULL) {
			pieces_put(dev_id, start, a);
			return -ENOMEM;
		}
		if (p == NULL)
			break;
		p->refs++;
		a = p->end;
	}
	return 0;
}

static struct registration *registration_find(int16_t dev_id, uintptr_t ptr)
{
	for (unsigned int i = 0; i < HOSTREG_MAX_REGS; i++)
		if (regs[i].ptr == ptr && regs[i].dev_id == dev_id)
			return &regs[i];
	return NULL;
}

static struct registration *registration_free_slot(void)
{
	for (unsigned int i = 0; i < HOSTREG_MAX_REGS; i++)
		if (regs[i].ptr == 0)
			return &regs[i];
	return NULL;
}

static void registration_span(const struct registration *r, uintptr_t *start, uintptr_t *end)
{
	uintptr_t pg = page_size();

	*start = r->ptr & ~(pg - 1);
	*end = (r->ptr + r->len + pg - 1) & ~(pg - 1);
}

int djg_host_register(int16_t dev_id, void *ptr, size_t len)
{
	struct registration *r;
	uintptr_t start, end;
	int rc;

	if (dev_id == DJG_HOST)
		return 0;
	if (ptr == NULL || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&reg_lock);
	if (registration_find(dev_id, (uintptr_t)ptr) != NULL) {
		rc = -EEXIST;
	} else if ((r = registration_free_slot()) == NULL) {
		rc = -ENOSPC;
	} else {
		*r = (struct registration){.dev_id = dev_id, .ptr = (uintptr_t)ptr, .len = len};
		registration_span(r, &start, &end);
		rc = pieces_cover(dev_id, start, end);
		if (rc != 0)
			r->ptr = 0;
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

int djg_host_unregister(int16_t dev_id, void *ptr)
{
	struct registration *r;
	uintptr_t start, end;

	if (dev_id == DJG_HOST)
		return 0;
	pthread_mutex_lock(&reg_lock);
	r = ptr != NULL ? registration_find(dev_id, (uintptr_t)ptr) : NULL;
	if (r != NULL) {
		registration_span(r, &start, &end);
		pieces_put(dev_id, start, end);
		r->ptr = 0;
	}
	pthread_mutex_unlock(&reg_lock);
	return r != NULL ? 0 : -ENOENT;
}
