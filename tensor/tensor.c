/* SPDX-License-Identifier: BSD-3-Clause */
/* Tensor descriptions: dtypes, sizes without overflow, strides, broadcasting. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/tensor.h"
#include "tensor/ops.h"
#include "tensor_internal.h"

static const struct {
	const char *name;
	const char *short_name;
	size_t size;
} dtype_info[DJ_DTYPE_COUNT] = {
	[DJ_DTYPE_FLOAT32] = {"float32", "f32", 4},
	[DJ_DTYPE_FLOAT16] = {"float16", "f16", 2},
	[DJ_DTYPE_BFLOAT16] = {"bfloat16", "bf16", 2},
	[DJ_DTYPE_INT32] = {"int32", "i32", 4},
	[DJ_DTYPE_INT64] = {"int64", "i64", 8},
};

static int dtype_valid(enum dj_dtype dtype)
{
	return (unsigned int)dtype < DJ_DTYPE_COUNT;
}

size_t dj_dtype_size(enum dj_dtype dtype)
{
	return dtype_valid(dtype) ? dtype_info[dtype].size : 0;
}

const char *dj_dtype_name(enum dj_dtype dtype)
{
	return dtype_valid(dtype) ? dtype_info[dtype].name : "invalid";
}

int dj_dtype_parse(const char *name, enum dj_dtype *dtype)
{
	if (name == NULL)
		return -EINVAL;
	for (int i = 0; i < DJ_DTYPE_COUNT; i++) {
		if (strcmp(name, dtype_info[i].name) == 0 ||
		    strcmp(name, dtype_info[i].short_name) == 0) {
			*dtype = (enum dj_dtype)i;
			return 0;
		}
	}
	return -EINVAL;
}

int dj_dtype_is_float(enum dj_dtype dtype)
{
	return dtype == DJ_DTYPE_FLOAT32 || dtype == DJ_DTYPE_FLOAT16 ||
	       dtype == DJ_DTYPE_BFLOAT16;
}

int dj_tensor_desc_check(const struct dj_tensor_desc *desc)
{
	if (desc == NULL || !dtype_valid(desc->dtype))
		return -DJ_EDTYPE;
	if (desc->ndim < 0 || desc->ndim > DJ_MAX_DIMS)
		return -DJ_ESHAPE;
	/* Bound the product of the nonzero dimensions too: strides of an
	 * empty tensor are still products of its other dimensions. */
	int64_t bytes = (int64_t)dtype_info[desc->dtype].size;

	for (int i = 0; i < desc->ndim; i++) {
		int64_t d = desc->shape[i];

		if (d < 0)
			return -DJ_ESHAPE;
		if (d > 0 && __builtin_mul_overflow(bytes, d, &bytes))
			return -DJ_ESHAPE;
	}
	return 0;
}

int64_t dj_tensor_numel(const struct dj_tensor_desc *desc)
{
	int64_t n = 1;

	for (int i = 0; i < desc->ndim; i++)
		n *= desc->shape[i];
	return n;
}

size_t dj_tensor_nbytes(const struct dj_tensor_desc *desc)
{
	return (size_t)dj_tensor_numel(desc) * dj_dtype_size(desc->dtype);
}

int dj_tensor_desc_equal(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b)
{
	if (a->dtype != b->dtype || a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return 1;
}

char *dj_shape_format(const struct dj_tensor_desc *desc, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	used += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < desc->ndim && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
					 (long long)desc->shape[i]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
	return buf;
}

void dj_tensor_strides(const struct dj_tensor_desc *desc, int64_t strides[DJ_MAX_DIMS])
{
	int64_t s = 1;

	for (int i = desc->ndim - 1; i >= 0; i--) {
		strides[i] = s;
		s *= desc->shape[i] > 0 ? desc->shape[i] : 1;
	}
}

int tn_broadcast_shape(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b,
		       struct dj_tensor_desc *out)
{
	int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
	struct dj_tensor_desc r = {.dtype = a->dtype, .ndim = ndim};

	for (int i = 0; i < ndim; i++) {
		int ia = a->ndim - ndim + i, ib = b->ndim - ndim + i;
		int64_t da = ia >= 0 ? a->shape[ia] : 1;
		int64_t db = ib >= 0 ? b->shape[ib] : 1;

		if (da != db && da != 1 && db != 1)
			return -DJ_ESHAPE;
		r.shape[i] = da == 1 ? db : da;
	}
	*out = r;
	return 0;
}

void tn_broadcast_strides(const struct dj_tensor_desc *in, const struct dj_tensor_desc *out,
			  int64_t strides[DJ_MAX_DIMS])
{
	int64_t own[DJ_MAX_DIMS];
	int lead = out->ndim - in->ndim;

	dj_tensor_strides(in, own);
	for (int i = 0; i < out->ndim; i++) {
		int j = i - lead;

		strides[i] = (j < 0 || in->shape[j] == 1) ? 0 : own[j];
	}
}

void dj_tensor_free_host(struct dj_tensor *t)
{
	if (t == NULL)
		return;
	free(t->data);
	t->data = NULL;
}

double dj_tensor_load_f64(const struct dj_tensor *t, int64_t i)
{
	return tensor_load_f64(t, i);
}

void dj_tensor_store_f64(struct dj_tensor *t, int64_t i, double v)
{
	tensor_store_f64(t, i, v);
}
