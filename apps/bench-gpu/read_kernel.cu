/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-gpu's read-only probe: how fast GPU threads read the very fragments
 * the gather copies, out of mapped pinned host memory. Each block takes a
 * fragment at a time (grid-stride), its threads load the aligned 16-byte
 * words that hold the fragment's bytes with ld.global.cv (as the gather
 * does) and fold them into one word per block, so that nothing is stored
 * per byte. It bounds what any gather of these fragments can reach on this
 * host; bench-gpu prints the gather as a share of it (issue 17, goal 3).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cuda_runtime.h>

#include "gpu/gpu.h"

#define PROBE_THREADS 128

__global__ static void read_probe(const struct djg_copy *copies, size_t n, uint4 *sink)
{
	uint4 acc = make_uint4(0, 0, 0, 0);

	for (size_t i = blockIdx.x; i < n; i += gridDim.x) {
		uintptr_t s = (uintptr_t)copies[i].src;
		const uint4 *w = (const uint4 *)(s & ~(uintptr_t)15);
		size_t words = (s + copies[i].len - (uintptr_t)w + 15) / 16;

		for (size_t j = threadIdx.x; j < words; j += blockDim.x) {
			uint4 v = __ldcv(w + j);

			acc.x ^= v.x;
			acc.y ^= v.y;
			acc.z ^= v.z;
			acc.w ^= v.w;
		}
	}
	/* One word per thread: the loads cannot be optimised away. */
	sink[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* bench_gpu.h */
extern "C" int bench_read_probe(const struct djg_copy *copies, size_t n, unsigned int blocks,
				int reps, double *best_s, double *worst_s)
{
	struct djg_copy *dcopies = NULL;
	uint4 *sink = NULL;
	int rc = -1;

	*best_s = 1e30;
	*worst_s = 0;
	/* The descriptors in device memory: only the fragments cross PCIe. */
	if (cudaMalloc(&dcopies, n * sizeof(*copies)) != cudaSuccess ||
	    cudaMemcpy(dcopies, copies, n * sizeof(*copies), cudaMemcpyHostToDevice) !=
		    cudaSuccess ||
	    cudaMalloc(&sink, (size_t)blocks * PROBE_THREADS * sizeof(*sink)) != cudaSuccess)
		goto out;
	for (int r = 0; r <= reps; r++) { /* the first run warms up */
		double t0 = now_s(), s;

		read_probe<<<blocks, PROBE_THREADS>>>(dcopies, n, sink);
		if (cudaDeviceSynchronize() != cudaSuccess)
			goto out;
		s = now_s() - t0;
		if (r > 0) {
			*best_s = s < *best_s ? s : *best_s;
			*worst_s = s > *worst_s ? s : *worst_s;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "bench-gpu: read probe: %s\n",
			cudaGetErrorString(cudaGetLastError()));
	cudaFree(dcopies);
	cudaFree(sink);
	return rc;
}
