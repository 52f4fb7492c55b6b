/* SPDX-License-Identifier: BSD-3-Clause */
/* The one CUDA runtime call of the data-plane placer (dp_placer.c). */
#include <errno.h>
#include <stdio.h>

#include <cuda_runtime.h>

/* Polling lcores are threads CUDA has not seen: kernel launches into a
 * stream of another device than the thread's current one fail. */
extern "C" int djg_dp_device_use(int ordinal)
{
	if (cudaSetDevice(ordinal) != cudaSuccess) {
		fprintf(stderr, "gpu: dp placer: cudaSetDevice(%d): %s\n", ordinal,
			cudaGetErrorString(cudaGetLastError()));
		return -EIO;
	}
	return 0;
}

/* The CUDA device whose memory @p ptr is (UVA: every device pointer names
 * its device), or -1 for host or unknown memory. A driver query of about a
 * microsecond: the placer asks once per destination, not per fragment. */
extern "C" int djg_dp_pointer_device(const void *ptr)
{
	cudaPointerAttributes a;

	if (cudaPointerGetAttributes(&a, ptr) != cudaSuccess) {
		cudaGetLastError();
		return -1;
	}
	return a.type == cudaMemoryTypeDevice ? a.device : -1;
}
