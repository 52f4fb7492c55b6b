/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by bench-gpu and bench-gpu-send. */
#include <string.h>

#include "bench_gpu.h"

void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	for (; i < len; i++)
		buf[i] = (uint8_t)(x >> (8 * (i & 7))) ^ (uint8_t)i;
}

int bench_cuda_ordinal(int16_t dev_id)
{
	for (int i = 0; i < djg_count(); i++)
		if (djg_find_cuda(i) == dev_id)
			return i;
	return -1;
}

uint16_t bench_gather_burst(const struct bench_opts *o)
{
	uint16_t g = djg_dp_placer_gather_burst(o->payload);

	if (o->gather_burst != 0)
		return o->gather_burst;
	return g > o->burst ? g : o->burst;
}
