/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by bench-gpu and bench-gpu-send. */
#include <errno.h>
#include <stdlib.h>
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

int bench_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	}
	if (end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}
