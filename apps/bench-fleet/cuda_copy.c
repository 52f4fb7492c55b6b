/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-fleet's reference: cudaMemcpy device-to-host then host-to-device of
 * the bytes a GPU-to-GPU move carries (a pinned host buffer, as the staging
 * ring and the gather use). Without CUDA: -ENOTSUP.
 */
#include <errno.h>
#include <stddef.h>

#include "common/djc.h"

int bench_cuda_copy(int device, size_t bytes, double *d2h_s, double *h2d_s);

#ifdef DJ_HAVE_CUDA
#include <cuda_runtime.h>

int bench_cuda_copy(int device, size_t bytes, double *d2h_s, double *h2d_s)
{
	static void *dev, *host;
	static size_t have;
	uint64_t t0;

	if (cudaSetDevice(device) != cudaSuccess)
		return -ENODEV;
	/* One buffer pair, kept across calls: allocation is not the copy. */
	if (have < bytes) {
		cudaFree(dev);
		cudaFreeHost(host);
		dev = host = NULL;
		have = 0;
		if (cudaMalloc(&dev, bytes) != cudaSuccess ||
		    cudaMallocHost(&host, bytes) != cudaSuccess)
			return -ENOMEM;
		have = bytes;
	}
	t0 = djc_time_ns();
	if (cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
		return -EIO;
	*d2h_s = (double)(djc_time_ns() - t0) / 1e9;
	t0 = djc_time_ns();
	if (cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
		return -EIO;
	*h2d_s = (double)(djc_time_ns() - t0) / 1e9;
	return 0;
}
#else
int bench_cuda_copy(int device, size_t bytes, double *d2h_s, double *h2d_s)
{
	(void)device;
	(void)bytes;
	(void)d2h_s;
	(void)h2d_s;
	return -ENOTSUP;
}
#endif
