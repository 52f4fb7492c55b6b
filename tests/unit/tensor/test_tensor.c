/* SPDX-License-Identifier: BSD-3-Clause */
/* Tensor descriptions, broadcasting and the 16-bit float conversions. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/tensor.h"
#include "harness.h"
#include "ops_test_util.h"

static double half_value(uint16_t h)
{
	return tu_decode16(h, 5, 10);
}

static double bf16_value(uint16_t b)
{
	return tu_decode16(b, 8, 7);
}

static void test_half_decode_exhaustive(void)
{
	for (uint32_t h = 0; h <= 0xffff; h++) {
		double want = half_value((uint16_t)h);
		float got = dj_half_to_float((uint16_t)h);

		if (isnan(want)) {
			CU_ASSERT_FATAL(isnan(got));
			/* Back to a NaN, never to infinity. */
			CU_ASSERT_FATAL((dj_float_to_half(got) & 0x7c00) == 0x7c00 &&
					(dj_float_to_half(got) & 0x3ff) != 0);
			continue;
		}
		CU_ASSERT_FATAL((double)got == want);
		CU_ASSERT_FATAL(!signbit(got) == !signbit(want));
		CU_ASSERT_FATAL(dj_float_to_half(got) == h);
		CU_ASSERT_FATAL(dj_double_to_half(want) == h);
	}
}

static void test_bf16_decode_exhaustive(void)
{
	for (uint32_t b = 0; b <= 0xffff; b++) {
		double want = bf16_value((uint16_t)b);
		float got = dj_bf16_to_float((uint16_t)b);

		if (isnan(want)) {
			CU_ASSERT_FATAL(isnan(got) && isnan(dj_bf16_to_float(dj_float_to_bf16(got))));
			continue;
		}
		CU_ASSERT_FATAL((double)got == want);
		CU_ASSERT_FATAL(dj_float_to_bf16(got) == b);
		CU_ASSERT_FATAL(dj_double_to_bf16(want) == b);
	}
}

/*
 * Nearest-even check by brute force over the neighbours: the chosen code is
 * at least as close as the codes one above and one below, and on a tie its
 * mantissa is even.
 */
static void check_nearest(double x, uint16_t got, double (*value)(uint16_t), double max_finite)
{
	double vg = value(got);

	if (fabs(x) >= max_finite * 1.01) {
		CU_ASSERT_FATAL(isinf(vg) || fabs(vg) == max_finite);
		return;
	}
	if (isinf(vg)) {
		/* Beyond the last midpoint (checked by the fixed cases); never
		 * for a value inside the finite range. */
		CU_ASSERT_FATAL(fabs(x) > max_finite);
		return;
	}
	double err = fabs(x - vg);
	uint16_t mag = got & 0x7fff, sign = got & 0x8000;
	uint16_t up = sign | (uint16_t)(mag + 1), down = sign | (uint16_t)(mag ? mag - 1 : 0);
	double eu = fabs(x - value(up)), ed = fabs(x - value(down));

	CU_ASSERT_FATAL(err <= eu || isnan(eu));
	CU_ASSERT_FATAL(err <= ed);
	if (err == eu || (err == ed && mag != 0 && down != got))
		CU_ASSERT_FATAL((got & 1) == 0);
}

static void test_rounding_random(void)
{
	srand(dj_test_seed());
	for (int i = 0; i < 200000; i++) {
		/* Random bits cover every exponent; scale into each format's range. */
		uint32_t bits = ((uint32_t)rand() << 16) ^ (uint32_t)rand();
		float f;

		memcpy(&f, &bits, sizeof(f));
		if (!isfinite(f))
			continue;
		float fh = ldexpf(frexpf(f, &(int){0}), (int)(bits % 44) - 28);
		double d = (double)fh + ldexp((double)(rand() % 3 - 1), ilogb(fh) - 40);

		check_nearest(fh, dj_float_to_half(fh), half_value, 65504.0);
		check_nearest(d, dj_double_to_half(d), half_value, 65504.0);
		check_nearest(f, dj_float_to_bf16(f), bf16_value, ldexp(255.0 / 128, 127));
		check_nearest((double)f * 1.0000001, dj_double_to_bf16((double)f * 1.0000001),
			      bf16_value, ldexp(255.0 / 128, 127));
	}
}

static void test_rounding_fixed_cases(void)
{
	/* Ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: even is 1. */
	CU_ASSERT_EQUAL(dj_float_to_half(1.0f + ldexpf(1, -11)), 0x3c00);
	CU_ASSERT_EQUAL(dj_float_to_half(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
	CU_ASSERT_EQUAL(dj_float_to_half(65504.0f), 0x7bff);
	CU_ASSERT_EQUAL(dj_float_to_half(65519.0f), 0x7bff);
	CU_ASSERT_EQUAL(dj_float_to_half(65520.0f), 0x7c00);
	CU_ASSERT_EQUAL(dj_float_to_half(-INFINITY), 0xfc00);
	CU_ASSERT_EQUAL(dj_float_to_half(-0.0f), 0x8000);
	CU_ASSERT_EQUAL(dj_float_to_half(ldexpf(1, -25)), 0x0000); /* tie to even 0 */
	CU_ASSERT_EQUAL(dj_float_to_half(ldexpf(3, -26)), 0x0001);
	CU_ASSERT_EQUAL(dj_double_to_half(65520.0), 0x7c00);
	CU_ASSERT_EQUAL(dj_double_to_half(65519.99), 0x7bff);
	/* Double rounding trap: just above a float16 tie, but the nearest
	 * float is the tie itself. */
	CU_ASSERT_EQUAL(dj_double_to_half(1.0 + ldexp(1, -11) + ldexp(1, -40)), 0x3c01);
	CU_ASSERT_EQUAL(dj_double_to_bf16(1.0 + ldexp(1, -8) + ldexp(1, -40)), 0x3f81);
	CU_ASSERT_EQUAL(dj_float_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
	CU_ASSERT_EQUAL(dj_float_to_bf16(INFINITY), 0x7f80);
	CU_ASSERT_EQUAL(dj_float_to_bf16(FLT_MAX), 0x7f80); /* rounds past the max */
	CU_ASSERT(isnan(dj_half_to_float(dj_double_to_half(NAN))));
	CU_ASSERT(isnan(dj_bf16_to_float(dj_double_to_bf16(-NAN))));
	CU_ASSERT(signbit(dj_bf16_to_float(dj_float_to_bf16(-NAN))));
}

static void test_desc_check_and_sizes(void)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 3, .shape = {2, 3, 5}};
	char buf[64];

	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), 0);
	CU_ASSERT_EQUAL(dj_tensor_numel(&d), 30);
	CU_ASSERT_EQUAL(dj_tensor_nbytes(&d), 60);
	CU_ASSERT_STRING_EQUAL(dj_shape_format(&d, buf, sizeof(buf)), "[2,3,5]");
	CU_ASSERT_STRING_EQUAL(dj_shape_format(&d, buf, 4), "[2,");
	d.shape[1] = -1;
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), -DJ_ESHAPE);
	d.shape[1] = INT64_MAX / 2; /* bytes overflow */
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), -DJ_ESHAPE);
	d.shape[0] = 0; /* empty, but strides would still overflow */
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), -DJ_ESHAPE);
	d.shape[1] = 7;
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), 0);
	CU_ASSERT_EQUAL(dj_tensor_nbytes(&d), 0);
	d.ndim = DJ_MAX_DIMS + 1;
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), -DJ_ESHAPE);
	d.ndim = 0;
	CU_ASSERT_EQUAL(dj_tensor_numel(&d), 1);
	CU_ASSERT_STRING_EQUAL(dj_shape_format(&d, buf, sizeof(buf)), "[]");
	d.dtype = (enum dj_dtype)77;
	CU_ASSERT_EQUAL(dj_tensor_desc_check(&d), -DJ_EDTYPE);
	CU_ASSERT_EQUAL(dj_dtype_size(d.dtype), 0);
}

static void test_dtype_names(void)
{
	enum dj_dtype t;

	for (int i = 0; i < DJ_DTYPE_COUNT; i++) {
		CU_ASSERT_EQUAL(dj_dtype_parse(dj_dtype_name((enum dj_dtype)i), &t), 0);
		CU_ASSERT_EQUAL(t, i);
	}
	CU_ASSERT_EQUAL(dj_dtype_parse("bf16", &t), 0);
	CU_ASSERT_EQUAL(t, DJ_DTYPE_BFLOAT16);
	CU_ASSERT_EQUAL(dj_dtype_parse("float64", &t), -EINVAL);
	CU_ASSERT_EQUAL(dj_dtype_size(DJ_DTYPE_INT64), 8);
	CU_ASSERT(dj_dtype_is_float(DJ_DTYPE_BFLOAT16));
	CU_ASSERT(!dj_dtype_is_float(DJ_DTYPE_INT32));
}

static void test_broadcast(void)
{
	struct dj_tensor_desc a = {.ndim = 3, .shape = {4, 1, 3}};
	struct dj_tensor_desc b = {.ndim = 2, .shape = {5, 1}};
	struct dj_tensor_desc out;
	int64_t s[DJ_MAX_DIMS];

	CU_ASSERT_EQUAL(tn_broadcast_shape(&a, &b, &out), 0);
	CU_ASSERT_EQUAL(out.ndim, 3);
	CU_ASSERT(out.shape[0] == 4 && out.shape[1] == 5 && out.shape[2] == 3);
	tn_broadcast_strides(&a, &out, s);
	CU_ASSERT(s[0] == 3 && s[1] == 0 && s[2] == 1);
	tn_broadcast_strides(&b, &out, s);
	CU_ASSERT(s[0] == 0 && s[1] == 1 && s[2] == 0);
	b.shape[1] = 2;
	CU_ASSERT_EQUAL(tn_broadcast_shape(&a, &b, &out), -DJ_ESHAPE);
	struct dj_tensor_desc scalar = {.ndim = 0};

	CU_ASSERT_EQUAL(tn_broadcast_shape(&scalar, &a, &out), 0);
	CU_ASSERT(dj_tensor_desc_equal(&out, &a));
}

static void test_load_store_saturate(void)
{
	int32_t i32[3];
	int64_t i64[2];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_INT32, .ndim = 1, .shape = {3}}, .data = i32};

	dj_tensor_store_f64(&t, 0, 1e20);
	dj_tensor_store_f64(&t, 1, -2.9);
	dj_tensor_store_f64(&t, 2, NAN);
	CU_ASSERT(i32[0] == INT32_MAX && i32[1] == -2 && i32[2] == 0);
	t.desc.dtype = DJ_DTYPE_INT64;
	t.data = i64;
	dj_tensor_store_f64(&t, 0, 1e30);
	dj_tensor_store_f64(&t, 1, -1e30);
	CU_ASSERT(i64[0] == INT64_MAX && i64[1] == INT64_MIN);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"float16 decode, exhaustive round trip", test_half_decode_exhaustive},
		{"bfloat16 decode, exhaustive round trip", test_bf16_decode_exhaustive},
		{"round to nearest even, random values", test_rounding_random},
		{"rounding ties, overflow, NaN, signed zero", test_rounding_fixed_cases},
		{"description checks and sizes", test_desc_check_and_sizes},
		{"dtype names", test_dtype_names},
		{"broadcast shape and strides", test_broadcast},
		{"store to integers saturates", test_load_store_saturate},
		{NULL, NULL},
	};
	dj_test_add_suite("tensor", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
