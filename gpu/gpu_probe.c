/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_gpudev.h>

#include "djinn/gpu.h"

int dj_gpu_count(void)
{
	return rte_gpu_count_avail();
}

int dj_gpu_info_get(int index, struct dj_gpu_info *info)
{
	int16_t dev_id;
	int i = 0;

	RTE_GPU_FOREACH(dev_id) {
		struct rte_gpu_info gi;

		if (i++ != index)
			continue;
		if (rte_gpu_info_get(dev_id, &gi) != 0)
			return -ENODEV;
		memset(info, 0, sizeof(*info));
		info->dev_id = dev_id;
		/* gpudev's CUDA driver names a device by its PCI address; the
		 * model name needs the CUDA runtime (see dj_gpu_describe). */
		snprintf(info->name, sizeof(info->name), "%s", gi.name ? gi.name : "?");
		info->total_memory = gi.total_memory;
		info->processors = gi.processor_count;
		info->numa_node = gi.numa_node;
		snprintf(info->pci_addr, sizeof(info->pci_addr), "%s", gi.name ? gi.name : "");
		return 0;
	}
	return -ENODEV;
}
