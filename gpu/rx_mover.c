/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The copy-engine receive mover: the chunk packer (packer.c) over pinned
 * host chunks and a CUDA stream, and the start-up measurement that picks
 * between it and the gather kernel (gpu/gpu.h, enum djg_rx_mover).
 *
 * The measurement lays fragments out as rx mbufs hold them: one mbuf-size
 * slot each, the payload after headroom and the protocol headers (so
 * misaligned), in hugepage memory registered with the GPU like an rx pool.
 * Gather: one kernel launch over the whole list (djg_gather_list), the
 * best the staged gather can do. Copy: this thread packs the fragments
 * into chunks and the copy engine moves them, as a receive lcore would.
 * Each is checked byte for byte against the source.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#include "packer.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"
#endif

#define PROBE_FRAG 1416
#define PROBE_BYTES (64u << 20)
#define PROBE_REPS 3
/* Where a payload starts in its mbuf: headroom, then Ethernet, IPv4, UDP
 * and the 56-byte data header of docs/PROTOCOL.md. */
#define PROBE_PAYLOAD_OFF (RTE_PKTMBUF_HEADROOM + 98)

const char *djg_rx_mover_name(enum djg_rx_mover m)
{
	switch (m) {
	case DJG_MOVER_AUTO:
		return "auto";
	case DJG_MOVER_GATHER:
		return "gather";
	case DJG_MOVER_COPY:
		return "copy";
	}
	return "?";
}

#ifdef DJ_HAVE_CUDA

struct djg_cuda_packer {
	struct djg_packer *packer;
	int16_t reg_dev;
	bool registered;
	uint8_t *mem;
	void *stream;
	void *events[DJG_PACKER_MAX_CHUNKS];
};

static int cp_copy(void *ctx, void *dst, const void *src, size_t len)
{
	struct djg_cuda_packer *cp = ctx;

	return djg_copy_async_host(cp->reg_dev, cp->stream, dst, src, len, true);
}

static int cp_fence(void *ctx, unsigned int idx)
{
	struct djg_cuda_packer *cp = ctx;

	return djg_event_record(cp->events[idx], cp->stream);
}

static int cp_done(void *ctx, unsigned int idx)
{
	struct djg_cuda_packer *cp = ctx;

	return djg_event_done(cp->events[idx]);
}

static const struct djg_packer_ops cuda_packer_ops = {
	.copy = cp_copy, .fence = cp_fence, .done = cp_done,
};

int djg_cuda_packer_create(int16_t reg_dev, int ordinal, size_t chunk_size,
			   unsigned int n_chunks, int socket, struct djg_cuda_packer **out)
{
	struct djg_packer_conf pc = {.chunk_size = chunk_size, .n_chunks = n_chunks,
				     .ops = &cuda_packer_ops};
	struct djg_cuda_packer *cp;
	size_t bytes = chunk_size * n_chunks;
	int rc = -ENOMEM;

	if (n_chunks < 2 || n_chunks > DJG_PACKER_MAX_CHUNKS || chunk_size == 0)
		return -EINVAL;
	cp = calloc(1, sizeof(*cp));
	if (cp == NULL)
		return -ENOMEM;
	cp->reg_dev = reg_dev;
	cp->mem = rte_malloc_socket("dj_gpu_rx_chunks", bytes, DJG_PAGE_SIZE, socket);
	if (cp->mem == NULL)
		goto error;
	rc = djg_host_register(reg_dev, cp->mem, bytes);
	if (rc != 0)
		goto error;
	cp->registered = true;
	/* The stream call makes @ordinal this thread's device: the events
	 * belong to it too. */
	rc = djg_stream_create(ordinal, &cp->stream);
	for (unsigned int i = 0; rc == 0 && i < n_chunks; i++)
		rc = djg_event_create(&cp->events[i]);
	if (rc != 0)
		goto error;
	pc.mem = cp->mem;
	pc.ctx = cp;
	rc = djg_packer_create(&pc, &cp->packer);
	if (rc != 0)
		goto error;
	*out = cp;
	return 0;
error:
	DJC_LOG(DJ_LOG_ERR, DJG_LOG, "rx chunks: %u x %zu B on GPU %d: %s", n_chunks, chunk_size,
	       ordinal, dj_strerror(rc));
	djg_cuda_packer_destroy(cp);
	return rc;
}

struct djg_packer *djg_cuda_packer_get(struct djg_cuda_packer *cp)
{
	return cp->packer;
}

void djg_cuda_packer_destroy(struct djg_cuda_packer *cp)
{
	if (cp == NULL)
		return;
	djg_packer_destroy(cp->packer); /* drains: no copy reads the chunks after */
	djg_stream_destroy(cp->stream);
	for (unsigned int i = 0; i < DJG_PACKER_MAX_CHUNKS; i++)
		djg_event_destroy(cp->events[i]);
	if (cp->registered)
		djg_host_unregister(cp->reg_dev, cp->mem);
	rte_free(cp->mem);
	free(cp);
}

/* What one measurement needs, made and freed together. */
struct probe_rig {
	int16_t dev_id;
	int ordinal;
	size_t bytes, n, region;
	uint8_t *src;            /* mbuf-like slots, registered */
	bool registered;
	struct djg_pool *pool;
	void *dest;              /* GPU */
	uint8_t *back;           /* dest copied back for the check */
	struct djg_copy *copies; /* dst_off relative to dest */
	struct djg_cuda_packer *cp;
};

static void rig_free(struct probe_rig *r)
{
	djg_cuda_packer_destroy(r->cp);
	if (r->registered)
		djg_host_unregister(r->dev_id, r->src);
	rte_free(r->src);
	djg_pool_destroy(r->pool);
	free(r->back);
	free(r->copies);
}

static int rig_make(struct probe_rig *r, const struct djg_rx_mover_probe *pr)
{
	size_t slot = RTE_ALIGN_CEIL(PROBE_PAYLOAD_OFF + pr->frag_size, RTE_CACHE_LINE_SIZE);
	int rc;

	r->n = (r->bytes + pr->frag_size - 1) / pr->frag_size;
	r->region = RTE_ALIGN_CEIL(r->n * slot, DJG_PAGE_SIZE);
	r->src = rte_malloc("dj_gpu_rx_probe", r->region, DJG_PAGE_SIZE);
	r->back = malloc(r->bytes);
	r->copies = calloc(r->n, sizeof(*r->copies));
	if (r->src == NULL || r->back == NULL || r->copies == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->region; i++)
		r->src[i] = (uint8_t)(i * 131 + (i >> 12));
	for (size_t f = 0; f < r->n; f++)
		r->copies[f] = (struct djg_copy){
			.src = r->src + f * slot + PROBE_PAYLOAD_OFF,
			.dst_off = f * pr->frag_size,
			.len = (uint32_t)RTE_MIN((size_t)pr->frag_size, r->bytes - f * pr->frag_size),
		};
	rc = djg_host_register(r->dev_id, r->src, r->region);
	r->registered = rc == 0;
	if (rc == 0)
		rc = djg_pool_create(r->dev_id, r->bytes, &r->pool);
	if (rc == 0)
		rc = djg_pool_alloc(r->pool, r->bytes, &r->dest);
	if (rc == 0)
		rc = djg_cuda_packer_create(r->dev_id, r->ordinal, pr->chunk_size, pr->n_chunks,
					    SOCKET_ID_ANY, &r->cp);
	return rc;
}

/* The destination holds the fragments end to end. */
static int rig_check(struct probe_rig *r)
{
	int rc = djg_cuda_copy(r->ordinal, r->back, r->dest, r->bytes, 0);

	for (size_t f = 0; rc == 0 && f < r->n; f++)
		if (memcmp(r->back + r->copies[f].dst_off, r->copies[f].src, r->copies[f].len) != 0)
			rc = -EIO;
	memset(r->back, 0, r->bytes);
	if (rc == 0)
		rc = djg_cuda_copy(r->ordinal, r->dest, r->back, r->bytes, 1); /* clear it */
	return rc;
}

static int copy_path_once(struct probe_rig *r)
{
	struct djg_packer *p = djg_cuda_packer_get(r->cp);
	int rc = 0;

	for (size_t f = 0; rc == 0 && f < r->n; f++)
		rc = djg_packer_add(p, (uint8_t *)r->dest + r->copies[f].dst_off,
				    r->copies[f].src, r->copies[f].len);
	return rc != 0 ? rc : djg_packer_drain(p);
}

/* The baseline: the slots copied whole by cudaMemcpy, one call per
 * registered piece they span (the source may share pages with an earlier
 * registration, and the driver refuses a copy that crosses from one
 * registration into the next). */
static int memcpy_once(struct probe_rig *r)
{
	size_t off = 0;
	int rc = 0;

	while (rc == 0 && off < r->bytes) {
		size_t n = djg_host_piece_len(r->dev_id, r->src + off, r->bytes - off);

		rc = djg_cuda_copy(r->ordinal, (uint8_t *)r->dest + off, r->src + off, n, 1);
		off += n;
	}
	return rc;
}

enum probe_what { PROBE_GATHER, PROBE_COPY, PROBE_MEMCPY };

static int run_once(struct probe_rig *r, enum probe_what what)
{
	switch (what) {
	case PROBE_GATHER:
		return djg_gather_list(r->dev_id, r->dest, r->bytes, r->copies, r->n);
	case PROBE_COPY:
		return copy_path_once(r);
	case PROBE_MEMCPY:
		return memcpy_once(r);
	}
	return -EINVAL;
}

/* Best GB/s of @reps timed runs after a warm-up; the warm-up's result is
 * checked (cudaMemcpy's is not meant to match: it copies the slots). */
static int measure(struct probe_rig *r, enum probe_what what, int reps, double *gbytes_s)
{
	uint64_t best = UINT64_MAX;
	int rc = run_once(r, what);

	if (rc == 0 && what != PROBE_MEMCPY)
		rc = rig_check(r);
	for (int i = 0; rc == 0 && i < reps; i++) {
		uint64_t t0 = djc_time_ns();

		rc = run_once(r, what);
		best = RTE_MIN(best, djc_time_ns() - t0);
	}
	*gbytes_s = rc == 0 ? (double)r->bytes / (double)RTE_MAX(best, (uint64_t)1) : 0;
	return rc;
}

int djg_rx_mover_measure(int16_t dev_id, struct djg_rx_mover_probe *pr)
{
	struct probe_rig r = {.dev_id = dev_id};
	uint64_t t0 = djc_time_ns();
	int rc;

	if (pr == NULL || dev_id == DJG_HOST)
		return -EINVAL;
	pr->frag_size = pr->frag_size != 0 ? pr->frag_size : PROBE_FRAG;
	pr->reps = pr->reps > 0 ? pr->reps : PROBE_REPS;
	pr->chunk_size = pr->chunk_size != 0 ? pr->chunk_size : DJG_RX_CHUNK_SIZE;
	pr->n_chunks = pr->n_chunks != 0 ? pr->n_chunks : DJG_RX_CHUNKS;
	r.bytes = pr->bytes != 0 ? pr->bytes : PROBE_BYTES;
	pr->bytes = r.bytes;
	pr->gather_gbytes_s = pr->copy_gbytes_s = pr->memcpy_gbytes_s = 0;
	if (pr->frag_size > pr->chunk_size)
		return -EINVAL;
	r.ordinal = djg_ordinal(dev_id);
	if (r.ordinal < 0)
		return r.ordinal;
	rc = rig_make(&r, pr);
	/* cudaMemcpy first: the baseline of the same run. */
	if (rc == 0)
		rc = measure(&r, PROBE_MEMCPY, pr->reps, &pr->memcpy_gbytes_s);
	if (rc == 0)
		rc = measure(&r, PROBE_GATHER, pr->reps, &pr->gather_gbytes_s);
	if (rc == 0)
		rc = measure(&r, PROBE_COPY, pr->reps, &pr->copy_gbytes_s);
	rig_free(&r);
	pr->seconds = (djc_time_ns() - t0) / 1e9;
	if (rc != 0)
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "rx mover measurement: %s", dj_strerror(rc));
	return rc;
}

#else

int djg_cuda_packer_create(int16_t reg_dev, int ordinal, size_t chunk_size,
			   unsigned int n_chunks, int socket, struct djg_cuda_packer **out)
{
	(void)reg_dev;
	(void)ordinal;
	(void)chunk_size;
	(void)n_chunks;
	(void)socket;
	(void)out;
	return -DJ_ENOGPU;
}

struct djg_packer *djg_cuda_packer_get(struct djg_cuda_packer *cp)
{
	(void)cp;
	return NULL;
}

void djg_cuda_packer_destroy(struct djg_cuda_packer *cp)
{
	(void)cp;
}

int djg_rx_mover_measure(int16_t dev_id, struct djg_rx_mover_probe *pr)
{
	(void)dev_id;
	return pr == NULL ? -EINVAL : -DJ_ENOGPU;
}

#endif
