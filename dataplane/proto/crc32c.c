/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CRC32C (Castagnoli). The hardware path runs three independent crc32
 * streams (the instruction has a 3-cycle latency and 1-cycle throughput) and
 * joins them with "shift by N zero bytes" tables, after Mark Adler's public
 * crc32c.c. Buffers of 256 bytes and more go through carry-less multiply
 * folding (VPCLMULQDQ on 512-bit registers) where the CPU has it. The table
 * path is slicing-by-8.
 */
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#include "dataplane/proto/wire.h"

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
static int crc_have_vpclmul;
/* Folding constants, x^n mod P bit-reflected and shifted left by one: the
 * low qword multiplies the earlier 64 bits of a lane, the high qword the
 * later ones. fold_2048: 4 registers of 256 bytes in the main loop; fold_512:
 * one register onto the next; fold_128: one lane onto the next. */
static uint64_t fold_2048[2], fold_512[2], fold_128[2];

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

/* x^n mod P (normal representation, P = 0x11EDC6F41), reflected into the
 * bit order of the reflected CRC and shifted left by one (clmul of two
 * reflected operands lands one bit low). */
static uint64_t fold_constant(unsigned n)
{
	uint64_t r = 1, refl = 0;

	for (unsigned i = 0; i < n; i++) {
		r <<= 1;
		if (r & (1ull << 32))
			r ^= 0x11EDC6F41ull;
	}
	for (int i = 0; i < 32; i++)
		if (r & (1ull << i))
			refl |= 1ull << (31 - i);
	return refl << 1;
}

static void fold_pair(uint64_t k[2], unsigned distance_bits)
{
	k[0] = fold_constant(distance_bits + 32);
	k[1] = fold_constant(distance_bits - 32);
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
	fold_pair(fold_2048, 2048);
	fold_pair(fold_512, 512);
	fold_pair(fold_128, 128);
	__builtin_cpu_init();
	crc_have_hw = __builtin_cpu_supports("sse4.2");
	crc_have_vpclmul = crc_have_hw && __builtin_cpu_supports("avx512f") &&
			   __builtin_cpu_supports("vpclmulqdq");
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

uint32_t dp_crc32c_sw(uint32_t crc, const void *buf, size_t len)
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

#define VPCLMUL_TARGET __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))
#define VPCLMUL_MIN 256u

/* Each 128-bit lane of acc advanced by the fold distance of k, plus next. */
VPCLMUL_TARGET
static inline __m512i fold512(__m512i acc, __m512i k, __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00),
					 _mm512_clmulepi64_epi128(acc, k, 0x11), next,
					 0x96);
}

VPCLMUL_TARGET
static inline __m128i fold128(__m128i acc, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(acc, k, 0x00),
					   _mm_clmulepi64_si128(acc, k, 0x11)),
			     next);
}

VPCLMUL_TARGET
static inline __m512i broadcast_pair(const uint64_t k[2])
{
	return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k[1], (long long)k[0]));
}

/* Raw (no inversion) CRC of len >= VPCLMUL_MIN bytes: fold 256-byte blocks
 * into four 512-bit accumulators, fold those into one 128-bit value that is
 * congruent to everything consumed, then finish with the crc32 instruction
 * over those 16 bytes and the tail. */
VPCLMUL_TARGET
static uint32_t crc_vpclmul_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	__m512i k = broadcast_pair(fold_2048);
	__m512i a0 = _mm512_xor_si512(_mm512_loadu_si512(p),
				      _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, crc));
	__m512i a1 = _mm512_loadu_si512(p + 64);
	__m512i a2 = _mm512_loadu_si512(p + 128);
	__m512i a3 = _mm512_loadu_si512(p + 192);
	__m128i x, k128 = _mm_set_epi64x((long long)fold_128[1], (long long)fold_128[0]);
	uint64_t c;

	for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
		a0 = fold512(a0, k, _mm512_loadu_si512(p));
		a1 = fold512(a1, k, _mm512_loadu_si512(p + 64));
		a2 = fold512(a2, k, _mm512_loadu_si512(p + 128));
		a3 = fold512(a3, k, _mm512_loadu_si512(p + 192));
	}
	k = broadcast_pair(fold_512);
	a1 = fold512(a0, k, a1);
	a2 = fold512(a1, k, a2);
	a3 = fold512(a2, k, a3);
	x = _mm512_extracti32x4_epi32(a3, 0);
	x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 1));
	x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 2));
	x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 3));
	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
	/* The caller is SSE code: leave the upper register halves clean, or
	 * every legacy-SSE instruction after us pays a merge with them (GCC
	 * puts no vzeroupper before the tail call below). */
	_mm256_zeroupper();
	return crc_hw_raw((uint32_t)c, p, len);
}

uint32_t dp_crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	if (crc_have_hw)
		return ~crc_hw_raw(~crc, buf, len);
	return ~crc_sw_raw(~crc, buf, len);
}

uint32_t dp_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc_have_vpclmul && len >= VPCLMUL_MIN)
		return ~crc_vpclmul_raw(~crc, buf, len);
	return dp_crc32c_sse42(crc, buf, len);
}
