/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUDA runtime side of gpu/: model names, host<->device copies and the
 * staged gather kernel that pulls mbuf payloads out of registered host
 * memory into a destination buffer in GPU memory.
 *
 * Ring protocol (persistent mode), all in mapped pinned host memory:
 * the CPU writes a burst's descriptors, then hdr.n/dest, then hdr.ready = k+1;
 * block ((k - base) % blocks) waits for that value, gathers, fences, writes
 * done = k+1. Burst numbers make flags self-resetting: a stale value is
 * k+1-ring_size.
 *
 * The resident kernel is not left running for good: CUDA calls that need
 * the whole context quiet (loading a module lazily, cuBLAS's first use of a
 * kernel, cuMemHostUnregister) wait for every running kernel and would wait
 * for ever. So the CPU pauses it when nothing is in flight (the data plane
 * does so when a receive completes): it writes the kernel's generation to
 * *stop, and blocks waiting for their next burst leave. The next put
 * launches a fresh generation behind the old one on the same stream. A
 * block of the old generation may still be polling for its next burst when
 * the new one starts: so each generation numbers the ring 'blocks' bursts
 * further on (skew), and no burst it publishes carries the number an old
 * block is waiting for.
 * Host memory is read with ld.global.cv: slots and mbufs are reused while the
 * kernel stays resident, so no cached copy may be trusted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_cuda.h"

#define WARPS_PER_BLOCK 16
#define THREADS (WARPS_PER_BLOCK * 32)
#define POLL_SLEEP_MAX_NS 8192
/* A burst's kernel is short and latency-bound: several streams let the
 * kernels of consecutive bursts overlap instead of queueing. */
#define LAUNCH_STREAMS 8

struct slot_hdr {
	uint32_t ready;
	uint32_t n;
	uint64_t dest;
};

struct ring {
	struct slot_hdr *hdr;     /* [ring_size], CPU writes */
	struct djg_copy *desc; /* [ring_size * max_copies], CPU writes */
	uint32_t *done;           /* [ring_size], GPU writes */
	uint32_t *stop;           /* CPU writes 1 to end the persistent kernel */
	uint32_t ring_size;
	uint32_t max_copies;
};

struct djg_gather {
	struct djg_gather_conf conf;
	struct ring ring;
	bool running;             /* persistent: a generation is launched */
	uint32_t gen;             /* persistent: the last generation launched */
	uint64_t skew;            /* persistent: ring number = burst number + skew */
	uint64_t launches;
	void *mapped;             /* the one cudaHostAlloc holding the ring */
	cudaStream_t stream;
	cudaEvent_t *events;      /* launch mode: one per slot */
	cudaStream_t launch[LAUNCH_STREAMS]; /* launch mode: bursts round-robin */
	uint32_t polls;
};

static int cuda_fail(const char *what)
{
	fprintf(stderr, "gpu: %s: %s\n", what, cudaGetErrorString(cudaGetLastError()));
	return -EIO;
}

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
						: cudaMemcpyDeviceToHost) != cudaSuccess)
		return cuda_fail("cudaMemcpy");
	return 0;
}

extern "C" int djg_stream_create(int ordinal, void **stream)
{
	cudaStream_t s;

	if (cudaSetDevice(ordinal) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
		return cuda_fail("cudaStreamCreate");
	*stream = s;
	return 0;
}

extern "C" void djg_stream_destroy(void *stream)
{
	if (stream != NULL) {
		cudaStreamSynchronize((cudaStream_t)stream);
		cudaStreamDestroy((cudaStream_t)stream);
	}
}

extern "C" int djg_stream_sync(void *stream)
{
	return cudaStreamSynchronize((cudaStream_t)stream) == cudaSuccess ?
	       0 : cuda_fail("stream");
}

extern "C" int djg_copy_async(void *stream, void *dst, const void *src, size_t len)
{
	return cudaMemcpyAsync(dst, src, len, cudaMemcpyDefault, (cudaStream_t)stream) ==
	       cudaSuccess ? 0 : cuda_fail("cudaMemcpyAsync");
}

extern "C" int djg_event_create(void **event)
{
	cudaEvent_t e;

	if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess)
		return cuda_fail("cudaEventCreate");
	*event = e;
	return 0;
}

extern "C" void djg_event_destroy(void *event)
{
	if (event != NULL)
		cudaEventDestroy((cudaEvent_t)event);
}

extern "C" int djg_event_record(void *event, void *stream)
{
	return cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream) == cudaSuccess ?
	       0 : cuda_fail("cudaEventRecord");
}

extern "C" int djg_event_done(void *event)
{
	cudaError_t e = cudaEventQuery((cudaEvent_t)event);

	if (e == cudaSuccess)
		return 1;
	return e == cudaErrorNotReady ? 0 : cuda_fail("D2H copy");
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
 * A piece is copied in destination-aligned 16-byte words: word j covers
 * [w0 + 16j, +16) of the destination, whose bytes come from source words j
 * and j+1 of an aligned source window (sa0), shifted by m = (src - dst) % 16.
 * So PCIe sees aligned, coalesced 16-byte reads whatever alignment headers
 * gave the payload; only the first and last destination words are stored
 * byte by byte. Source words holding none of the piece's bytes are never
 * read (they may lie outside registered memory).
 */
struct piece {
	uint8_t *w0;        /* destination, aligned down */
	const uint4 *sa0;   /* source window, aligned down */
	uintptr_t dst_lo, dst_hi; /* destination bytes [lo, hi) */
	uint32_t words;     /* destination words */
	uint32_t k_lo, k_hi; /* source words that hold piece bytes */
	uint32_t m;
	uint32_t lead;      /* words from sa0's 128-byte line start to sa0 */
	uint32_t groups;    /* GROUP_WORDS rows, counted from that line start */
};

/* Loads issued per lane before any is used: host memory is a PCIe round trip
 * away, and bandwidth is bytes in flight over latency. */
#define UNROLL 8
#define GROUP_WORDS (32 * UNROLL)

__device__ static struct piece piece_make(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	struct piece p;
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
	uintptr_t w0 = d & ~(uintptr_t)15;
	uintptr_t x = s - (d - w0);

	p.w0 = (uint8_t *)w0;
	p.sa0 = (const uint4 *)(x & ~(uintptr_t)15);
	p.m = x & 15;
	p.dst_lo = d;
	p.dst_hi = d + len;
	p.words = (uint32_t)(((d + len + 15) & ~(uintptr_t)15) - w0) / 16;
	p.k_lo = (uint32_t)(((s & ~(uintptr_t)15) - (uintptr_t)p.sa0) / 16);
	p.k_hi = (uint32_t)((((s + len - 1) & ~(uintptr_t)15) - (uintptr_t)p.sa0) / 16);
	p.lead = ((uintptr_t)p.sa0 & 127) / 16;
	p.groups = (p.lead + p.words + GROUP_WORDS - 1) / GROUP_WORDS;
	return p;
}

__device__ static inline uint4 load_word(const struct piece *p, int32_t k)
{
	if (k < (int32_t)p->k_lo || k > (int32_t)p->k_hi)
		return make_uint4(0, 0, 0, 0);
	return __ldcv(p->sa0 + k);
}

__device__ static inline void store_word(const struct piece *p, int32_t j, uint4 v)
{
	uintptr_t at = (uintptr_t)p->w0 + 16 * (uintptr_t)j;

	if (at >= p->dst_lo && at + 16 <= p->dst_hi) {
		*(uint4 *)at = v;
		return;
	}
	const uint8_t *b = (const uint8_t *)&v;

	for (int i = 0; i < 16; i++)
		if (at + i >= p->dst_lo && at + i < p->dst_hi)
			((uint8_t *)at)[i] = b[i];
}

/* One warp copies destination words [g * GROUP_WORDS, +GROUP_WORDS) of a piece. */
__device__ static inline uint4 shfl_word(uint4 v, int src_lane, bool down)
{
	uint4 r;

	if (down) {
		r.x = __shfl_down_sync(0xffffffffu, v.x, 1);
		r.y = __shfl_down_sync(0xffffffffu, v.y, 1);
		r.z = __shfl_down_sync(0xffffffffu, v.z, 1);
		r.w = __shfl_down_sync(0xffffffffu, v.w, 1);
	} else {
		r.x = __shfl_sync(0xffffffffu, v.x, src_lane);
		r.y = __shfl_sync(0xffffffffu, v.y, src_lane);
		r.z = __shfl_sync(0xffffffffu, v.z, src_lane);
		r.w = __shfl_sync(0xffffffffu, v.w, src_lane);
	}
	return r;
}

/*
 * One warp copies row group g of a piece. PCIe read requests, not bytes, are
 * what runs out first, so: rows start on 128-byte source lines (a 32-lane
 * row of 16-byte loads is then 4 line requests, not 5), and each lane's
 * neighbour word comes by shuffle (lane 31's from lane 0 of the next row):
 * the only extra read is the one word after the group.
 */
__device__ static void copy_group(const struct piece *p, uint32_t g, uint32_t lane)
{
	uint4 cur[UNROLL], after = make_uint4(0, 0, 0, 0);
	int32_t base = (int32_t)(g * GROUP_WORDS) - (int32_t)p->lead;

#pragma unroll
	for (int u = 0; u < UNROLL; u++)
		/* Not bounded by p->words: the last word's tail may sit in source
		 * word p->words, read by the neighbour lane. */
		cur[u] = load_word(p, base + u * 32 + (int32_t)lane);
	if (p->m != 0 && lane == 31)
		after = load_word(p, base + GROUP_WORDS);
#pragma unroll
	for (int u = 0; u < UNROLL; u++) {
		int32_t j = base + u * 32 + (int32_t)lane;
		bool mine = j >= 0 && j < (int32_t)p->words;
		uint4 next, row_next;

		if (p->m == 0) {
			if (mine)
				store_word(p, j, cur[u]);
			continue;
		}
		next = shfl_word(cur[u], 0, true);
		row_next = u + 1 < UNROLL ? shfl_word(cur[u + 1 < UNROLL ? u + 1 : u], 0, false)
					  : after;
		if (lane == 31)
			next = row_next;
		if (mine)
			store_word(p, j, extract16(cur[u], next, p->m));
	}
}

#define DESC_STAGE 256

/*
 * The whole block copies one burst. Descriptors are fetched from host memory
 * in one parallel step into shared memory; then the burst's word groups (all
 * pieces, one after the other) are dealt round-robin to the warps, so that
 * long and short pieces spread evenly and every warp has loads in flight.
 */
__device__ static void gather_burst(const struct djg_copy *desc, uint32_t n, uint8_t *dest)
{
	__shared__ uint8_t *s_dst[DESC_STAGE];
	__shared__ const uint8_t *s_src[DESC_STAGE];
	__shared__ uint32_t s_len[DESC_STAGE];
	__shared__ uint32_t s_groups[DESC_STAGE];
	uint32_t lane = threadIdx.x & 31, warp = threadIdx.x / 32, warps = blockDim.x / 32;

	for (uint32_t first = 0; first < n; first += DESC_STAGE) {
		uint32_t here = n - first < DESC_STAGE ? n - first : DESC_STAGE;

		for (uint32_t c = threadIdx.x; c < here; c += blockDim.x) {
			const unsigned long long *d = (const unsigned long long *)&desc[first + c];
			const uint8_t *src = (const uint8_t *)__ldcv(d);
			uint8_t *dst = dest + __ldcv(d + 1);
			uint32_t len = (uint32_t)__ldcv(d + 2);

			s_src[c] = src;
			s_dst[c] = dst;
			s_len[c] = len;
			s_groups[c] = len == 0 ? 0 : piece_make(dst, src, len).groups;
		}
		__syncthreads();
		for (uint32_t c = 0, t = 0; c < here; t += s_groups[c], c++) {
			uint32_t g = (warp + warps - t % warps) % warps;

			if (g >= s_groups[c])
				continue;
			struct piece p = piece_make(s_dst[c], s_src[c], s_len[c]);

			for (; g < p.groups; g += warps)
				copy_group(&p, g, lane);
		}
		__syncthreads();
	}
}

__global__ void gather_persistent(struct ring r, uint64_t base, uint32_t gen)
{
	__shared__ uint32_t s_n;
	__shared__ uint64_t s_dest;
	__shared__ int s_stop;

	for (uint64_t k = base + blockIdx.x;; k += gridDim.x) {
		uint32_t slot = k & (r.ring_size - 1);
		uint32_t want = (uint32_t)(k + 1);

		if (threadIdx.x == 0) {
			/* ready, n and dest in one read: the CPU writes ready last. */
			const uint4 *h = (const uint4 *)&r.hdr[slot];
			unsigned int sleep = 32;
			uint4 v;

			s_stop = 0;
			while ((v = __ldcv(h)).x != want) {
				if (__ldcv(r.stop) == gen) {
					s_stop = 1;
					break;
				}
				__nanosleep(sleep);
				if (sleep < POLL_SLEEP_MAX_NS)
					sleep *= 2;
			}
			s_n = v.y;
			s_dest = ((uint64_t)v.w << 32) | v.z;
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
	}
}

__global__ void gather_launched(const struct djg_copy *desc, uint32_t n, uint8_t *dest)
{
	uint32_t first = blockIdx.x * WARPS_PER_BLOCK;

	if (first < n)
		gather_burst(desc + first, min(n - first, (uint32_t)WARPS_PER_BLOCK), dest);
}

static int ring_alloc(struct djg_gather *g)
{
	struct ring *r = &g->ring;
	size_t hdr = (size_t)r->ring_size * sizeof(struct slot_hdr);
	size_t desc = (size_t)r->ring_size * r->max_copies * sizeof(struct djg_copy);
	size_t done = (size_t)r->ring_size * sizeof(uint32_t);
	size_t total = hdr + desc + done + 64;

	if (cudaHostAlloc(&g->mapped, total, cudaHostAllocMapped | cudaHostAllocPortable) !=
	    cudaSuccess)
		return cuda_fail("cudaHostAlloc(ring)");
	memset(g->mapped, 0, total);
	/* With unified addressing the host address is the device address. */
	r->hdr = (struct slot_hdr *)g->mapped;
	r->desc = (struct djg_copy *)((char *)g->mapped + hdr);
	r->done = (uint32_t *)((char *)g->mapped + hdr + desc);
	r->stop = (uint32_t *)((char *)g->mapped + hdr + desc + done);
	return 0;
}

/* How many blocks each generation of the resident kernel gets. */
static int persistent_blocks(struct djg_gather *g)
{
	int per_sm = 0, sms = 0;
	unsigned int blocks = g->conf.blocks;

	cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, g->conf.ordinal);
	cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gather_persistent, THREADS, 0);
	/* Every block must be resident at once or bursts of a waiting block stall. */
	/* Measured on H100 (docs/GPU.md): 8832 B pieces 91% of cudaMemcpy with
	 * 16 or 24 blocks, 88-89% with 8 or 33, 83-88% with SMs/2 or SMs (more
	 * blocks only queue more PCIe reads); 1408 B pieces 82-85% with 32 or
	 * more blocks, 45% with 8. 1416 B pieces in bursts of 128 (the placer's
	 * gather burst): 96% of a read-only probe with 33 blocks (SMs/4), 90%
	 * with 66, 80-85% with 132 or more (docs/PERFORMANCE.md, goal 3). A
	 * few blocks also leave the SMs to compute. */
	if (blocks == 0 && g->conf.frag_size >= 4096)
		blocks = 16;
	else if (blocks == 0)
		blocks = sms / 4 >= 32 ? sms / 4 : (sms >= 32 ? 32 : sms);
	if (per_sm > 0 && blocks > (unsigned int)(per_sm * sms))
		blocks = per_sm * sms;
	g->conf.blocks = blocks;
	return 0;
}

/* A new generation takes bursts from @k on; it queues behind a paused one. */
static int launch_persistent(struct djg_gather *g, uint64_t k)
{
	if (g->gen++ > 0)
		g->skew += g->conf.blocks;
	gather_persistent<<<g->conf.blocks, THREADS, 0, g->stream>>>(g->ring, k + g->skew,
								       g->gen);
	if (cudaGetLastError() != cudaSuccess)
		return cuda_fail("launch gather_persistent");
	g->running = true;
	g->launches++;
	return 0;
}

extern "C" uint64_t djg_gather_launches(const struct djg_gather *g)
{
	return g != NULL ? g->launches : 0;
}

extern "C" void djg_gather_pause(struct djg_gather *g)
{
	if (g == NULL || !g->running)
		return;
	__atomic_store_n(g->ring.stop, g->gen, __ATOMIC_RELEASE);
	g->running = false;
}

static int create_events(struct djg_gather *g)
{
	g->events = (cudaEvent_t *)calloc(g->ring.ring_size, sizeof(cudaEvent_t));
	if (g->events == NULL)
		return -ENOMEM;
	for (int i = 0; i < LAUNCH_STREAMS; i++)
		if (cudaStreamCreateWithFlags(&g->launch[i], cudaStreamNonBlocking) != cudaSuccess)
			return cuda_fail("cudaStreamCreate");
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
		rc = conf->mode == DJG_GATHER_LAUNCH ? create_events(g) : persistent_blocks(g);
	if (rc != 0) {
		djg_gather_destroy(g);
		return rc;
	}
	*out = g;
	return 0;
}

extern "C" int djg_gather_put(struct djg_gather *g, uint64_t k, const struct djg_copy *copies,
			      uint16_t n, void *dest)
{
	struct ring *r = &g->ring;
	uint32_t slot;
	struct djg_copy *desc;

	if (g->conf.mode == DJG_GATHER_PERSISTENT && !g->running) {
		int rc = launch_persistent(g, k);

		if (rc != 0)
			return rc;
	}
	k += g->skew;
	slot = k & (r->ring_size - 1);
	desc = r->desc + (size_t)slot * r->max_copies;
	memcpy(desc, copies, n * sizeof(*copies));
	if (g->conf.mode == DJG_GATHER_LAUNCH) {
		unsigned int blocks = (n + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
		cudaStream_t stream = g->launch[k % LAUNCH_STREAMS];

		if (n > 0)
			gather_launched<<<blocks, THREADS, 0, stream>>>(desc, n, (uint8_t *)dest);
		if (cudaEventRecord(g->events[slot], stream) != cudaSuccess)
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
	uint32_t slot;

	k += g->skew;
	slot = k & (g->ring.ring_size - 1);

	if (g->conf.mode == DJG_GATHER_LAUNCH) {
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
	djg_gather_pause(g);
	if (g->stream != NULL) {
		cudaStreamSynchronize(g->stream);
		cudaStreamDestroy(g->stream);
	}
	for (int i = 0; i < LAUNCH_STREAMS; i++)
		if (g->launch[i] != NULL) {
			cudaStreamSynchronize(g->launch[i]);
			cudaStreamDestroy(g->launch[i]);
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

extern "C" int djg_gather_oneshot(int ordinal, const struct djg_copy *copies, size_t n,
				  void *dest)
{
	struct djg_copy *desc = NULL;
	size_t bytes = n * sizeof(*copies);
	unsigned int blocks = (n + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
	cudaStream_t stream;
	int rc = 0;

	if (n == 0)
		return 0;
	if (cudaSetDevice(ordinal) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess)
		return cuda_fail("cudaStreamCreate");
	/* Descriptors in device memory: one upload, then the kernel reads them
	 * at HBM latency. */
	if (cudaMalloc(&desc, bytes) != cudaSuccess ||
	    cudaMemcpyAsync(desc, copies, bytes, cudaMemcpyHostToDevice, stream) != cudaSuccess)
		rc = cuda_fail("descriptors");
	if (rc == 0) {
		gather_launched<<<blocks, THREADS, 0, stream>>>(desc, (uint32_t)n, (uint8_t *)dest);
		if (cudaStreamSynchronize(stream) != cudaSuccess)
			rc = cuda_fail("gather");
	}
	cudaFree(desc);
	cudaStreamDestroy(stream);
	return rc;
}
