/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUDA runtime side of gpu/: model names, host<->device copies and the
 * staged gather kernel that pulls mbuf payloads out of registered host
 * memory into a destination buffer in GPU memory.
 *
 * Ring protocol (persistent mode), all in mapped pinned host memory:
 * the CPU writes a burst's descriptors, then hdr.n/dest, then hdr.ready = k+1;
 * block (k % blocks) waits for that value, gathers, fences, writes done = k+1.
 * Burst numbers make flags self-resetting: a stale value is k+1-ring_size.
 * Host memory is read with ld.global.cv: slots and mbufs are reused while the
 * kernel stays resident, so no cached copy may be trusted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_cuda.h"

#define WARPS_PER_BLOCK 8
#define THREADS (WARPS_PER_BLOCK * 32)
#define POLL_SLEEP_MAX_NS 8192

struct slot_hdr {
	uint32_t ready;
	uint32_t n;
	uint64_t dest;
};

struct ring {
	struct slot_hdr *hdr;     /* [ring_size], CPU writes */
	struct dj_gpu_copy *desc; /* [ring_size * max_copies], CPU writes */
	uint32_t *done;           /* [ring_size], GPU writes */
	uint32_t *stop;           /* CPU writes 1 to end the persistent kernel */
	uint32_t ring_size;
	uint32_t max_copies;
};

struct djg_gather {
	struct djg_gather_conf conf;
	struct ring ring;
	void *mapped;             /* the one cudaHostAlloc holding the ring */
	cudaStream_t stream;
	cudaEvent_t *events;      /* launch mode: one per slot */
	uint32_t polls;
};

extern "C" int djg_cuda_ordinal(const char *pci_addr)
{
	int ordinal;

	if (cudaDeviceGetByPCIBusId(&ordinal, pci_addr) != cudaSuccess) {
		cudaGetLastError();
		return -ENODEV;
	}
	return ordinal;
}

extern "C" int djg_cuda_describe(int ordinal, char *name, size_t name_len, uint32_t *sms)
{
	cudaDeviceProp prop;

	if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) {
		cudaGetLastError();
		return -ENODEV;
	}
	snprintf(name, name_len, "%s", prop.name);
	*sms = prop.multiProcessorCount;
	return 0;
}

extern "C" int djg_cuda_copy(int ordinal, void *dst, const void *src, size_t len, int to_device)
{
	if (cudaSetDevice(ordinal) != cudaSuccess ||
	    cudaMemcpy(dst, src, len, to_device ? cudaMemcpyHostToDevice
						: cudaMemcpyDeviceToHost) != cudaSuccess) {
		fprintf(stderr, "gpu: cudaMemcpy: %s\n", cudaGetErrorString(cudaGetLastError()));
		return -EIO;
	}
	return 0;
}

/* 16 bytes starting at byte m (1..15) of the 32 bytes a:b (little endian). */
__device__ static inline uint4 extract16(uint4 a, uint4 b, uint32_t m)
{
	uint32_t s = (m & 3) * 8;
#define F(lo, hi) __funnelshift_r((lo), (hi), s)
	switch (m >> 2) {
	case 0:
		return make_uint4(F(a.x, a.y), F(a.y, a.z), F(a.z, a.w), F(a.w, b.x));
	case 1:
		return make_uint4(F(a.y, a.z), F(a.z, a.w), F(a.w, b.x), F(b.x, b.y));
	case 2:
		return make_uint4(F(a.z, a.w), F(a.w, b.x), F(b.x, b.y), F(b.y, b.z));
	default:
		return make_uint4(F(a.w, b.x), F(b.x, b.y), F(b.y, b.z), F(b.z, b.w));
	}
#undef F
}

/*
 * One warp copies one piece. Stores are 16-byte aligned on the destination;
 * loads are 16-byte aligned on the source and realigned in registers (the
 * neighbour lane's word comes through a shuffle), so PCIe sees full
 * coalesced reads whatever the header length made the payload alignment.
 */
__device__ static void warp_copy(uint8_t *dst, const uint8_t *src, uint32_t len, uint32_t lane)
{
	uint32_t head = (16 - ((uintptr_t)dst & 15)) & 15;

	if (head > len)
		head = len;
	if (lane < head)
		dst[lane] = __ldcv(src + lane);
	dst += head;
	src += head;
	len -= head;

	uint32_t words = len / 16;
	uint32_t m = (uintptr_t)src & 15;
	const uint4 *s = (const uint4 *)(src - m);
	uint4 *d = (uint4 *)dst;

	if (m == 0) {
		for (uint32_t i = lane; i < words; i += 32)
			d[i] = __ldcv(s + i);
	} else {
		/* Aligned source words holding bytes of the body. */
		uint32_t src_words = (m + words * 16 + 15) / 16;

		for (uint32_t base = 0; base < words; base += 32) {
			uint32_t i = base + lane;
			uint4 cur = i < src_words ? __ldcv(s + i) : make_uint4(0, 0, 0, 0);
			uint4 next;

			next.x = __shfl_down_sync(0xffffffffu, cur.x, 1);
			next.y = __shfl_down_sync(0xffffffffu, cur.y, 1);
			next.z = __shfl_down_sync(0xffffffffu, cur.z, 1);
			next.w = __shfl_down_sync(0xffffffffu, cur.w, 1);
			if (lane == 31 && i + 1 < src_words)
				next = __ldcv(s + i + 1);
			if (i < words)
				d[i] = extract16(cur, next, m);
		}
	}
	uint32_t tail = len - words * 16;

	if (lane < tail)
		dst[words * 16 + lane] = __ldcv(src + words * 16 + lane);
}

__device__ static void gather_burst(const struct dj_gpu_copy *desc, uint32_t n, uint8_t *dest)
{
	uint32_t lane = threadIdx.x & 31;

	for (uint32_t c = threadIdx.x / 32; c < n; c += blockDim.x / 32) {
		const uint8_t *src = (const uint8_t *)__ldcv((const unsigned long long *)&desc[c].src);
		uint64_t off = __ldcv((const unsigned long long *)&desc[c].dst_off);
		uint32_t len = __ldcv(&desc[c].len);

		warp_copy(dest + off, src, len, lane);
	}
}

__global__ void gather_persistent(struct ring r)
{
	__shared__ uint32_t s_n;
	__shared__ uint64_t s_dest;
	__shared__ int s_stop;

	for (uint64_t k = blockIdx.x;; k += gridDim.x) {
		uint32_t slot = k & (r.ring_size - 1);
		uint32_t want = (uint32_t)(k + 1);

		if (threadIdx.x == 0) {
			volatile struct slot_hdr *h = &r.hdr[slot];
			unsigned int sleep = 32;

			s_stop = 0;
			while (h->ready != want) {
				if (*(volatile uint32_t *)r.stop) {
					s_stop = 1;
					break;
				}
				__nanosleep(sleep);
				if (sleep < POLL_SLEEP_MAX_NS)
					sleep *= 2;
			}
			__threadfence_system();
			s_n = h->n;
			s_dest = h->dest;
		}
		__syncthreads();
		if (s_stop)
			return;
		gather_burst(r.desc + (size_t)slot * r.max_copies, s_n, (uint8_t *)s_dest);
		/* Every thread's stores are in device memory before the flag. */
		__threadfence();
		__syncthreads();
		if (threadIdx.x == 0) {
			__threadfence_system();
			*(volatile uint32_t *)&r.done[slot] = want;
		}
		__syncthreads();
	}
}

__global__ void gather_launched(const struct dj_gpu_copy *desc, uint32_t n, uint8_t *dest)
{
	uint32_t first = blockIdx.x * WARPS_PER_BLOCK;

	if (first < n) {
		uint32_t here = n - first < WARPS_PER_BLOCK ? n - first : WARPS_PER_BLOCK;
		gather_burst(desc + first, here, dest);
	}
}

static int cuda_fail(const char *what)
{
	fprintf(stderr, "gpu: %s: %s\n", what, cudaGetErrorString(cudaGetLastError()));
	return -EIO;
}

static int ring_alloc(struct djg_gather *g)
{
	struct ring *r = &g->ring;
	size_t hdr = (size_t)r->ring_size * sizeof(struct slot_hdr);
	size_t desc = (size_t)r->ring_size * r->max_copies * sizeof(struct dj_gpu_copy);
	size_t done = (size_t)r->ring_size * sizeof(uint32_t);
	size_t total = hdr + desc + done + 64;

	if (cudaHostAlloc(&g->mapped, total, cudaHostAllocMapped | cudaHostAllocPortable) !=
	    cudaSuccess)
		return cuda_fail("cudaHostAlloc(ring)");
	memset(g->mapped, 0, total);
	/* With unified addressing the host address is the device address. */
	r->hdr = (struct slot_hdr *)g->mapped;
	r->desc = (struct dj_gpu_copy *)((char *)g->mapped + hdr);
	r->done = (uint32_t *)((char *)g->mapped + hdr + desc);
	r->stop = (uint32_t *)((char *)g->mapped + hdr + desc + done);
	return 0;
}

static int start_persistent(struct djg_gather *g)
{
	int per_sm = 0, sms = 0;
	unsigned int blocks = g->conf.blocks;

	cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, g->conf.ordinal);
	cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gather_persistent, THREADS, 0);
	/* Every block must be resident at once or bursts of a waiting block stall. */
	if (blocks == 0)
		blocks = sms > 1 ? sms / 2 : 1;
	if (per_sm > 0 && blocks > (unsigned int)(per_sm * sms))
		blocks = per_sm * sms;
	g->conf.blocks = blocks;
	gather_persistent<<<blocks, THREADS, 0, g->stream>>>(g->ring);
	return cudaGetLastError() == cudaSuccess ? 0 : cuda_fail("launch gather_persistent");
}

static int create_events(struct djg_gather *g)
{
	g->events = (cudaEvent_t *)calloc(g->ring.ring_size, sizeof(cudaEvent_t));
	if (g->events == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->ring.ring_size; i++)
		if (cudaEventCreateWithFlags(&g->events[i], cudaEventDisableTiming) != cudaSuccess)
			return cuda_fail("cudaEventCreate");
	return 0;
}

extern "C" int djg_gather_create(const struct djg_gather_conf *conf, struct djg_gather **out)
{
	struct djg_gather *g = (struct djg_gather *)calloc(1, sizeof(*g));
	int rc;

	if (g == NULL)
		return -ENOMEM;
	g->conf = *conf;
	g->ring.ring_size = conf->ring_size;
	g->ring.max_copies = conf->max_copies;
	if (cudaSetDevice(conf->ordinal) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking) != cudaSuccess) {
		free(g);
		return cuda_fail("cudaStreamCreate");
	}
	rc = ring_alloc(g);
	if (rc == 0)
		rc = conf->mode == DJ_GPU_GATHER_LAUNCH ? create_events(g) : start_persistent(g);
	if (rc != 0) {
		djg_gather_destroy(g);
		return rc;
	}
	*out = g;
	return 0;
}

extern "C" int djg_gather_put(struct djg_gather *g, uint64_t k, const struct dj_gpu_copy *copies,
			      uint16_t n, void *dest)
{
	struct ring *r = &g->ring;
	uint32_t slot = k & (r->ring_size - 1);
	struct dj_gpu_copy *desc = r->desc + (size_t)slot * r->max_copies;

	memcpy(desc, copies, n * sizeof(*copies));
	if (g->conf.mode == DJ_GPU_GATHER_LAUNCH) {
		unsigned int blocks = (n + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;

		if (n == 0)
			return cudaEventRecord(g->events[slot], g->stream) == cudaSuccess ?
				0 : cuda_fail("cudaEventRecord");
		gather_launched<<<blocks, THREADS, 0, g->stream>>>(desc, n, (uint8_t *)dest);
		if (cudaEventRecord(g->events[slot], g->stream) != cudaSuccess)
			return cuda_fail("gather launch");
		return 0;
	}
	r->hdr[slot].n = n;
	r->hdr[slot].dest = (uint64_t)(uintptr_t)dest;
	/* Descriptors and header are visible before the ready flag (x86 keeps
	 * store order; the barrier keeps the compiler from reordering). */
	__atomic_store_n(&r->hdr[slot].ready, (uint32_t)(k + 1), __ATOMIC_RELEASE);
	return 0;
}

static int kernel_alive(struct djg_gather *g)
{
	cudaError_t e = cudaStreamQuery(g->stream);

	if (e == cudaErrorNotReady)
		return 0;
	fprintf(stderr, "gpu: gather kernel ended: %s\n",
		e == cudaSuccess ? "exited early" : cudaGetErrorString(e));
	return -EIO;
}

extern "C" int djg_gather_done(struct djg_gather *g, uint64_t k)
{
	uint32_t slot = k & (g->ring.ring_size - 1);

	if (g->conf.mode == DJ_GPU_GATHER_LAUNCH) {
		cudaError_t e = cudaEventQuery(g->events[slot]);

		if (e == cudaSuccess)
			return 1;
		if (e == cudaErrorNotReady)
			return 0;
		return cuda_fail("gather kernel");
	}
	if (__atomic_load_n(&g->ring.done[slot], __ATOMIC_ACQUIRE) == (uint32_t)(k + 1))
		return 1;
	/* A faulted kernel never writes its flag: look at it now and then. */
	if ((++g->polls & 1023) == 0)
		return kernel_alive(g);
	return 0;
}

extern "C" void djg_gather_destroy(struct djg_gather *g)
{
	if (g == NULL)
		return;
	if (g->ring.stop != NULL)
		__atomic_store_n(g->ring.stop, 1, __ATOMIC_RELEASE);
	if (g->stream != NULL) {
		cudaStreamSynchronize(g->stream);
		cudaStreamDestroy(g->stream);
	}
	if (g->events != NULL) {
		for (uint32_t i = 0; i < g->ring.ring_size; i++)
			if (g->events[i] != NULL)
				cudaEventDestroy(g->events[i]);
		free(g->events);
	}
	if (g->mapped != NULL)
		cudaFreeHost(g->mapped);
	free(g);
}
