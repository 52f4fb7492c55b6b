/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TENSOR_INTERNAL_H
#define DJINN_TENSOR_INTERNAL_H

/*
 * Element access by dtype, inline so that the CPU kernels' inner loops do
 * not pay a call per element (dj_tensor_load_f64/store_f64 wrap these).
 */
#include <math.h>
#include <stdint.h>

#include "djinn/tensor.h"

static inline double tensor_load_f64(const struct dj_tensor *t, int64_t i)
{
	switch (t->desc.dtype) {
	case DJ_DTYPE_FLOAT32:
		return ((const float *)t->data)[i];
	case DJ_DTYPE_FLOAT16:
		return dj_half_to_float(((const uint16_t *)t->data)[i]);
	case DJ_DTYPE_BFLOAT16:
		return dj_bf16_to_float(((const uint16_t *)t->data)[i]);
	case DJ_DTYPE_INT32:
		return ((const int32_t *)t->data)[i];
	case DJ_DTYPE_INT64:
		return (double)((const int64_t *)t->data)[i];
	default:
		return NAN;
	}
}

/* Truncate toward zero, saturate at [lo, hi]; NaN -> 0 (C leaves it undefined). */
static inline int64_t double_to_int_sat(double v, double lo, double hi)
{
	if (isnan(v))
		return 0;
	if (v <= lo)
		return (int64_t)lo;
	if (v >= hi)
		return hi >= 0x1p63 ? INT64_MAX : (int64_t)hi; /* 2^63 has no int64 */
	return (int64_t)v;
}

static inline void tensor_store_f64(struct dj_tensor *t, int64_t i, double v)
{
	switch (t->desc.dtype) {
	case DJ_DTYPE_FLOAT32:
		((float *)t->data)[i] = (float)v;
		break;
	case DJ_DTYPE_FLOAT16:
		((uint16_t *)t->data)[i] = dj_double_to_half(v);
		break;
	case DJ_DTYPE_BFLOAT16:
		((uint16_t *)t->data)[i] = dj_double_to_bf16(v);
		break;
	case DJ_DTYPE_INT32:
		((int32_t *)t->data)[i] = (int32_t)double_to_int_sat(v, INT32_MIN, INT32_MAX);
		break;
	case DJ_DTYPE_INT64:
		((int64_t *)t->data)[i] = double_to_int_sat(v, -9223372036854775808.0,
							    9223372036854775807.0);
		break;
	default:
		break;
	}
}

#endif
