/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_INTERNAL_H
#define DJINN_GPU_INTERNAL_H

#include <stdint.h>

#define DJ_GPU_LOG "gpu"

/* CUDA ordinal of gpudev device @dev_id: >= 0, -DJ_ENOGPU without CUDA,
 * -ENODEV when the runtime does not know it. */
int djg_ordinal(int16_t dev_id);

#endif
