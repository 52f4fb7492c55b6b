/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_INTERNAL_H
#define DJINN_GPU_INTERNAL_H

#include <stdint.h>

#define DJG_LOG "gpu"

/* CUDA ordinal of gpudev device @dev_id: >= 0, -DJ_ENOGPU without CUDA,
 * -ENODEV when the runtime does not know it. */
int djg_ordinal(int16_t dev_id);

/* rte_gpu_mem_unregister (@registered) or rte_gpu_mem_free of @ptr, kept
 * clear of a gpu/cuda driver list bug (see gpu_probe.c). 0 or -errno. */
int djg_gpudev_release(int16_t dev_id, void *ptr, int registered);

#endif
