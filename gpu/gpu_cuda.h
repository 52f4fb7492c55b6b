/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_CUDA_H
#define DJINN_GPU_CUDA_H

/*
 * The CUDA runtime side of gpu/, implemented in gpu_cuda.cu and built only
 * with CUDA (DJ_HAVE_CUDA). gpudev owns discovery and device memory; the
 * runtime gives model names, copies and the gather kernel. Both use the
 * device's primary context, so pointers from one are valid in the other.
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CUDA ordinal of the GPU at @pci_addr, or -ENODEV. */
int djg_cuda_ordinal(const char *pci_addr);
/* Model name and SM count of CUDA device @ordinal. */
int djg_cuda_describe(int ordinal, char *name, size_t name_len, uint32_t *sms);
/* Synchronous copy between host and device memory; -EIO on failure. */
int djg_cuda_copy(int ordinal, void *dst, const void *src, size_t len, int to_device);

/* Asynchronous copies for the send side: one stream, an event per chunk. */
int djg_stream_create(int ordinal, void **stream);
void djg_stream_destroy(void *stream);
/* Wait for every copy queued on @stream; -EIO on failure. */
int djg_stream_sync(void *stream);
int djg_copy_async(void *stream, void *dst, const void *src, size_t len);
int djg_event_create(void **event);
void djg_event_destroy(void *event);
int djg_event_record(void *event, void *stream);
/* 1 done, 0 not yet, -EIO failed. */
int djg_event_done(void *event);

/*
 * The staged gather engine: a ring of bursts in mapped pinned host memory.
 * The caller numbers bursts 0, 1, 2... (k), never puts burst k while burst
 * k - ring_size is unfinished, and asks djg_gather_done() in any order.
 */
struct djg_gather;

struct djg_gather_conf {
	int ordinal;
	uint32_t ring_size;   /* power of two */
	uint16_t max_copies;
	uint16_t blocks;      /* persistent kernel blocks; 0: from frag_size */
	uint32_t frag_size;
	enum djg_gather_mode mode;
};

int djg_gather_create(const struct djg_gather_conf *conf, struct djg_gather **out);
/* Publish burst @k: its copies go to @dest + dst_off. */
int djg_gather_put(struct djg_gather *g, uint64_t k, const struct djg_copy *copies,
		   uint16_t n, void *dest);
/* 1 when burst @k is in the destination, 0 not yet, -EIO on a GPU fault. */
int djg_gather_done(struct djg_gather *g, uint64_t k);
/* Persistent mode, nothing in flight: let the resident kernel exit (the
 * next put starts it again), so that CUDA calls needing a quiet context
 * can run. No-op in launch mode or when it is not running. */
void djg_gather_pause(struct djg_gather *g);
/* Persistent kernel generations launched so far. */
uint64_t djg_gather_launches(const struct djg_gather *g);
/* Stop the kernel (every put burst finishes first) and free everything. */
void djg_gather_destroy(struct djg_gather *g);

/* Gather a whole copy list in one kernel launch, synchronously. */
int djg_gather_oneshot(int ordinal, const struct djg_copy *copies, size_t n, void *dest);

#ifdef __cplusplus
}
#endif

#endif
