/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * float16 and bfloat16 conversions, round to nearest even. The float paths
 * are bit manipulations (after F. Giesen's float_to_half_fast3_rtne); the
 * double paths round once in double arithmetic so that a value computed in
 * double never goes through float first (double rounding would break ties).
 */
#include <math.h>
#include <string.h>

#include "djinn/tensor.h"

static uint32_t float_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bits_float(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

#define F32_INF_BITS 0x7f800000u
/* 65520 = halfway between float16's largest finite (65504) and 2^16:
 * ties go to even, which is the overflow side. */
#define F32_HALF_OVERFLOW_BITS 0x477ff000u
/* 2^-14, float16's smallest normal. */
#define F32_HALF_MIN_NORMAL_BITS 0x38800000u

uint16_t dj_float_to_half(float f)
{
	uint32_t x = float_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
	uint32_t abs = x & 0x7fffffffu;

	if (abs > F32_INF_BITS) /* NaN: keep the top payload bits, force quiet */
		return sign | 0x7e00u | ((abs >> 13) & 0x3ffu);
	if (abs >= F32_HALF_OVERFLOW_BITS)
		return sign | 0x7c00u;
	if (abs < F32_HALF_MIN_NORMAL_BITS) {
		/* Adding 0.5 puts the value's 2^-24 units (float16's subnormal
		 * step) in the low mantissa bits, rounded by the FPU. */
		float shifted = bits_float(abs) + 0.5f;

		return sign | (uint16_t)(float_bits(shifted) - float_bits(0.5f));
	}
	uint32_t odd = (abs >> 13) & 1u;

	/* Rebias the exponent (127 -> 15) and add the rounding increment; a
	 * carry out of the mantissa correctly bumps the exponent. */
	abs += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
	return sign | (uint16_t)(abs >> 13);
}

float dj_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t mant = h & 0x3ffu;

	if (exp == 0x1f)
		return bits_float(sign | F32_INF_BITS | (mant << 13));
	if (exp == 0) {
		float v = ldexpf((float)mant, -24);

		return sign ? -v : v;
	}
	return bits_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t dj_float_to_bf16(float f)
{
	uint32_t x = float_bits(f);

	if ((x & 0x7fffffffu) > F32_INF_BITS)
		return (uint16_t)((x >> 16) | 0x40u);
	x += 0x7fffu + ((x >> 16) & 1u);
	return (uint16_t)(x >> 16);
}

float dj_bf16_to_float(uint16_t b)
{
	return bits_float((uint32_t)b << 16);
}

/*
 * Round @p d to a binary format with @p mant_bits stored mantissa bits and
 * smallest normal exponent @p min_exp; returns the rounded value (exactly
 * representable in that format) or an infinity past @p max_finite.
 * Scaling by powers of two is exact, so nearbyint() (round to nearest even
 * in the default mode) is the only rounding.
 */
static double round_to_format(double d, int mant_bits, int min_exp, double max_finite)
{
	if (d == 0 || !isfinite(d))
		return d;
	int e = ilogb(d);
	int quantum = (e < min_exp ? min_exp : e) - mant_bits;
	double r = ldexp(nearbyint(ldexp(d, -quantum)), quantum);

	if (fabs(r) > max_finite)
		return copysign(INFINITY, d);
	return r;
}

/* Most results are exact in float (sums and products of 16-bit values):
 * then the float conversion rounds once and is much cheaper. */
static int exact_in_float(double d)
{
	return (double)(float)d == d;
}

uint16_t dj_double_to_half(double d)
{
	if (exact_in_float(d))
		return dj_float_to_half((float)d);
	return dj_float_to_half((float)round_to_format(d, 10, -14, 65504.0));
}

uint16_t dj_double_to_bf16(double d)
{
	double max_bf16 = ldexp(255.0 / 128.0, 127);

	if (exact_in_float(d))
		return dj_float_to_bf16((float)d);

	return dj_float_to_bf16((float)round_to_format(d, 7, -126, max_bf16));
}
