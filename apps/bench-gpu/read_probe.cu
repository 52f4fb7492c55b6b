/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-gpu-read-probe: how fast can GPU threads read pinned host memory,
 * by TMA (cp.async.bulk into shared memory) or by warp-wide 16-byte loads,
 * for contiguous pieces and for mbuf-like fragments? Reads only: the
 * stores are not realigned, the output is not meant to be right. It bounds
 * what any gather kernel of ours can reach (docs/GPU.md).
 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#define CK(x)                                                                                      \
	do {                                                                                       \
		cudaError_t e = (x);                                                               \
		if (e != cudaSuccess) {                                                            \
			printf("%s: %s\n", #x, cudaGetErrorString(e));                             \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

__device__ __forceinline__ unsigned smem(const void *p)
{
	return (unsigned)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void mbar_init(uint64_t *b, int n)
{
	asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem(b)), "r"(n));
}
__device__ __forceinline__ void mbar_expect(uint64_t *b, uint32_t bytes)
{
	asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem(b)),
	             "r"(bytes)
	             : "memory");
}
__device__ __forceinline__ void tma_load(void *dst, const void *src, uint32_t bytes, uint64_t *b)
{
	asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], "
	             "[%1], %2, [%3];" ::"r"(smem(dst)),
	             "l"(src), "r"(bytes), "r"(smem(b))
	             : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t phase)
{
	asm volatile("{ .reg .pred p; W%=: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; "
	             "@!p bra W%=; }" ::"r"(smem(b)),
	             "r"(phase)
	             : "memory");
}

// Each block: pieces i = blockIdx.x, += gridDim.x; piece i at src + i*stride (+off), len bytes.
// TMA the aligned window into smem (STAGES deep), then threads store it to dst.
#define STAGES 4
#define MAXW 16384
__global__ void tma_gather(const uint8_t *src, uint8_t *dst, size_t n, uint32_t stride,
                           uint32_t off, uint32_t len)
{
	extern __shared__ __align__(128) uint8_t buf[];
	__shared__ uint64_t bar[STAGES];
	if (threadIdx.x == 0)
		for (int s = 0; s < STAGES; s++)
			mbar_init(&bar[s], 1);
	__syncthreads();
	size_t first = blockIdx.x;
	auto window = [&](size_t i, uintptr_t &a, uint32_t &w) {
		uintptr_t s0 = (uintptr_t)(src + i * stride + off);
		a = s0 & ~(uintptr_t)15;
		w = (uint32_t)((((s0 + len + 15) & ~(uintptr_t)15)) - a);
	};
	// prologue
	if (threadIdx.x == 0)
		for (int s = 0; s < STAGES; s++) {
			size_t i = first + (size_t)s * gridDim.x;
			if (i >= n)
				break;
			uintptr_t a;
			uint32_t w;
			window(i, a, w);
			mbar_expect(&bar[s], w);
			tma_load(buf + s * MAXW, (const void *)a, w, &bar[s]);
		}
	uint32_t phase[STAGES] = {0};
	int k = 0;
	for (size_t i = first; i < n; i += gridDim.x, k++) {
		int s = k % STAGES;
		mbar_wait(&bar[s], phase[s]);
		phase[s] ^= 1;
		uintptr_t a;
		uint32_t w;
		window(i, a, w);
		uint4 *d = (uint4 *)(dst + i * (size_t)((len + 15) & ~15u));
		const uint4 *b4 = (const uint4 *)(buf + s * MAXW);
		for (uint32_t t = threadIdx.x; t < w / 16 && t < (len + 15) / 16; t += blockDim.x)
			d[t] = b4[t];
		__syncthreads();
		if (threadIdx.x == 0) {
			size_t nx = i + (size_t)STAGES * gridDim.x;
			if (nx < n) {
				uintptr_t a2;
				uint32_t w2;
				window(nx, a2, w2);
				mbar_expect(&bar[s], w2);
				tma_load(buf + s * MAXW, (const void *)a2, w2, &bar[s]);
			}
		}
	}
}

// SM loads: same pieces, warp-wide 16B loads, UNROLL 8.
__global__ void sm_gather(const uint8_t *src, uint8_t *dst, size_t n, uint32_t stride, uint32_t off,
                          uint32_t len)
{
	uint32_t warp = threadIdx.x / 32, lane = threadIdx.x & 31, warps = blockDim.x / 32;
	for (size_t i = (size_t)blockIdx.x * warps + warp; i < n; i += (size_t)gridDim.x * warps) {
		uintptr_t s0 = (uintptr_t)(src + i * stride + off);
		const uint4 *a = (const uint4 *)(s0 & ~(uintptr_t)15);
		uint32_t words =
		    (uint32_t)((((s0 + len + 15) & ~(uintptr_t)15) - (uintptr_t)a) / 16);
		uint4 *d = (uint4 *)(dst + i * (size_t)((len + 15) & ~15u));
		for (uint32_t base = 0; base < words; base += 256) {
			uint4 v[8];
#pragma unroll
			for (int u = 0; u < 8; u++) {
				uint32_t j = base + u * 32 + lane;
				if (j < words)
					v[u] = __ldcv(a + j);
			}
#pragma unroll
			for (int u = 0; u < 8; u++) {
				uint32_t j = base + u * 32 + lane;
				if (j < words && j < (len + 15) / 16)
					d[j] = v[u];
			}
		}
	}
}

int main(int argc, char **argv)
{
	size_t bytes = 1ull << 30;
	uint8_t *host, *dev;
	size_t region = bytes * 2;
	CK(cudaHostAlloc((void **)&host, region, cudaHostAllocMapped));
	memset(host, 1, region);
	CK(cudaMalloc(&dev, bytes + (64 << 20)));
	cudaEvent_t e0, e1;
	cudaEventCreate(&e0);
	cudaEventCreate(&e1);
	float ms, best;
	best = 1e9;
	for (int r = 0; r < 4; r++) {
		cudaEventRecord(e0);
		CK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
		cudaEventRecord(e1);
		cudaEventSynchronize(e1);
		cudaEventElapsedTime(&ms, e0, e1);
		if (r)
			best = fminf(best, ms);
	}
	double memcpy_gbs = bytes / best / 1e6;
	printf("%-44s %8.2f GB/s\n", "cudaMemcpy H2D (cudaHostAlloc)", memcpy_gbs);
	int sms;
	cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
	CK(cudaFuncSetAttribute(tma_gather, cudaFuncAttributeMaxDynamicSharedMemorySize,
	                        STAGES * MAXW));
	struct {
		const char *name;
		uint32_t stride, off, len;
	} cases[] = {
	    {"contiguous 16 KiB pieces", 16384, 0, 16384},
	    {"contiguous 8000 B pieces (packed)", 8000, 0, 8000},
	    {"mbuf 8000 B (stride 8192, off 186)", 8192, 186, 8000},
	    {"contiguous 1400 B pieces (packed)", 1400, 0, 1400},
	    {"mbuf 1400 B (stride 1600, off 186)", 1600, 186, 1400},
	};
	for (auto &c : cases) {
		size_t n = bytes / c.len;
		for (int kind = 0; kind < 2; kind++)
			for (int bm = 1; bm <= 4; bm *= 2) {
				best = 1e9;
				for (int r = 0; r < 4; r++) {
					cudaEventRecord(e0);
					if (kind == 0)
						tma_gather<<<sms * bm, 256, STAGES * MAXW>>>(
						    host, dev, n, c.stride, c.off, c.len);
					else
						sm_gather<<<sms * bm, 512>>>(host, dev, n, c.stride,
						                             c.off, c.len);
					cudaEventRecord(e1);
					CK(cudaEventSynchronize(e1));
					cudaEventElapsedTime(&ms, e0, e1);
					if (r)
						best = fminf(best, ms);
				}
				CK(cudaGetLastError());
				double gbs = (double)n * c.len / best / 1e6;
				printf("%-4s x%d blk/SM %-36s %8.2f GB/s %5.1f%%\n",
				       kind ? "SM" : "TMA", bm, c.name, gbs,
				       100 * gbs / memcpy_gbs);
			}
	}
	return 0;
}
