/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CRC32C (Castagnoli). The hardware path runs three independent crc32
 * streams (the instruction has a 3-cycle latency and 1-cycle throughput) and
 * joins them with "shift by N zero bytes" tables, after Mark Adler's public
 * crc32c.c. The table path is slicing-by-8.
 */
#include <stdint.h>
#include <string.h>
#include <nmmintrin.h>

#include "djinn/wire.h"

#define CRC32C_POLY 0x82f63b78u
/* Stream lengths of the interleaved loop: long for big buffers, short and
 * tiny so that most of a 1 KiB fragment still runs three streams. Powers of
 * two. */
#define CRC_LONG 8192u
#define CRC_SHORT 256u
#define CRC_TINY 64u

static uint32_t crc_table[8][256];
static uint32_t crc_long_zeros[4][256];
static uint32_t crc_short_zeros[4][256];
static uint32_t crc_tiny_zeros[4][256];
static int crc_have_hw;

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_matrix_times(mat, mat[n]);
}

/* Operator appending len (a power of two) zero bytes to a CRC. */
static void crc_zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32];
	uint32_t row = 1;

	odd[0] = CRC32C_POLY;
	for (int n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_matrix_square(even, odd); /* 2 zero bits */
	gf2_matrix_square(odd, even); /* 4 zero bits */
	for (;;) {
		gf2_matrix_square(even, odd);
		len >>= 1;
		if (len == 0)
			return;
		gf2_matrix_square(odd, even);
		len >>= 1;
		if (len == 0)
			break;
	}
	memcpy(even, odd, sizeof(odd));
}

static void crc_zeros_table(uint32_t zeros[4][256], size_t len)
{
	uint32_t op[32];

	crc_zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++)
		for (int b = 0; b < 4; b++)
			zeros[b][n] = gf2_matrix_times(op, n << (8 * b));
}

static uint32_t crc_shift(uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^
	       zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

/* Tables at load time, so the per-packet path has no once-check. */
__attribute__((constructor)) static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t crc = n;

		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc_table[0][n] = crc;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			crc_table[k][n] = (crc_table[k - 1][n] >> 8) ^
					  crc_table[0][crc_table[k - 1][n] & 0xff];
	crc_zeros_table(crc_long_zeros, CRC_LONG);
	crc_zeros_table(crc_short_zeros, CRC_SHORT);
	crc_zeros_table(crc_tiny_zeros, CRC_TINY);
	__builtin_cpu_init();
	crc_have_hw = __builtin_cpu_supports("sse4.2");
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t crc_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v = load64(p) ^ crc;

		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t dj_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	return ~crc_sw_raw(~crc, buf, len);
}

/* Three streams of stream bytes each; returns the joined CRC. */
__attribute__((target("sse4.2")))
static uint64_t crc_hw_3way(uint64_t crc0, const unsigned char *p, size_t stream,
			    uint32_t zeros[4][256])
{
	uint64_t crc1 = 0, crc2 = 0;
	const unsigned char *end = p + stream;

	for (; p < end; p += 8) {
		crc0 = _mm_crc32_u64(crc0, load64(p));
		crc1 = _mm_crc32_u64(crc1, load64(p + stream));
		crc2 = _mm_crc32_u64(crc2, load64(p + 2 * stream));
	}
	crc0 = crc_shift(zeros, (uint32_t)crc0) ^ crc1;
	return crc_shift(zeros, (uint32_t)crc0) ^ crc2;
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	for (; len >= 3 * CRC_LONG; len -= 3 * CRC_LONG, p += 3 * CRC_LONG)
		c = crc_hw_3way(c, p, CRC_LONG, crc_long_zeros);
	for (; len >= 3 * CRC_SHORT; len -= 3 * CRC_SHORT, p += 3 * CRC_SHORT)
		c = crc_hw_3way(c, p, CRC_SHORT, crc_short_zeros);
	for (; len >= 3 * CRC_TINY; len -= 3 * CRC_TINY, p += 3 * CRC_TINY)
		c = crc_hw_3way(c, p, CRC_TINY, crc_tiny_zeros);
	for (; len >= 8; len -= 8, p += 8)
		c = _mm_crc32_u64(c, load64(p));
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}

uint32_t dj_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc_have_hw)
		return ~crc_hw_raw(~crc, buf, len);
	return ~crc_sw_raw(~crc, buf, len);
}
