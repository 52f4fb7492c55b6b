/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_H
#define DJINN_GPU_H

/**
 * @file
 * GPUs as DPDK's gpudev sees them. Call after EAL is started; without the
 * gpudev CUDA driver or a GPU every count is 0 and nothing fails.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dj_gpu_info {
	int16_t dev_id;        /**< gpudev device id */
	char name[64];         /**< e.g. "NVIDIA H100 80GB HBM3" */
	char pci_addr[32];     /**< PCI address, e.g. "0000:00:06.0" */
	uint64_t total_memory; /**< bytes */
	uint32_t processors;   /**< streaming multiprocessors */
	int numa_node;         /**< -1 when unknown */
};

/** Number of GPUs gpudev can use (0 when none or no CUDA driver). */
int dj_gpu_count(void);

/** Describe the index-th usable GPU (0-based). 0 or -ENODEV. */
int dj_gpu_info_get(int index, struct dj_gpu_info *info);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GPU_H */
