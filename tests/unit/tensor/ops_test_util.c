/* SPDX-License-Identifier: BSD-3-Clause */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "harness.h"
#include "ops_test_util.h"

int64_t tu_rand_range(int64_t lo, int64_t hi)
{
	uint64_t r = ((uint64_t)rand() << 31) ^ (uint64_t)rand();

	return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

struct dj_tensor tu_tensor(enum dj_dtype dtype, int ndim, const int64_t *shape)
{
	struct dj_tensor t = {.desc = {.dtype = dtype, .ndim = ndim}, .mem = DJ_MEM_HOST};

	for (int i = 0; i < ndim; i++)
		t.desc.shape[i] = shape[i];
	t.data = calloc(1, dj_tensor_nbytes(&t.desc) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t.data);
	return t;
}

/* Values on a 1/64 grid in [-2, 2]: exact in every float dtype. */
struct dj_tensor tu_random(enum dj_dtype dtype, int ndim, const int64_t *shape)
{
	struct dj_tensor t = tu_tensor(dtype, ndim, shape);
	int64_t n = dj_tensor_numel(&t.desc);

	for (int64_t i = 0; i < n; i++) {
		if (dj_dtype_is_float(dtype))
			dj_tensor_store_f64(&t, i, (double)tu_rand_range(-128, 128) / 64.0);
		else
			dj_tensor_store_f64(&t, i, (double)tu_rand_range(-20, 20));
	}
	return t;
}

struct dj_tensor tu_from(enum dj_dtype dtype, int ndim, const int64_t *shape,
			 const double *values)
{
	struct dj_tensor t = tu_tensor(dtype, ndim, shape);
	int64_t n = dj_tensor_numel(&t.desc);

	for (int64_t i = 0; i < n; i++)
		dj_tensor_store_f64(&t, i, values[i]);
	return t;
}

void tu_free(struct dj_tensor *t)
{
	free(t->data);
	t->data = NULL;
}

double tu_decode16(uint16_t v, int exp_bits, int mant_bits)
{
	int bias = (1 << (exp_bits - 1)) - 1;
	int exp = (v >> mant_bits) & ((1 << exp_bits) - 1);
	int mant = v & ((1 << mant_bits) - 1);
	double sign = (v & 0x8000) ? -1.0 : 1.0;

	if (exp == (1 << exp_bits) - 1)
		return mant ? NAN : sign * INFINITY;
	if (exp == 0)
		return sign * ldexp(mant, 1 - bias - mant_bits);
	return sign * ldexp((1 << mant_bits) + mant, exp - bias - mant_bits);
}

double tu_get(const struct dj_tensor *t, int64_t i)
{
	switch (t->desc.dtype) {
	case DJ_DTYPE_FLOAT32:
		return ((const float *)t->data)[i];
	case DJ_DTYPE_FLOAT16:
		return tu_decode16(((const uint16_t *)t->data)[i], 5, 10);
	case DJ_DTYPE_BFLOAT16:
		return tu_decode16(((const uint16_t *)t->data)[i], 8, 7);
	default:
		return (double)tu_get_int(t, i);
	}
}

int64_t tu_get_int(const struct dj_tensor *t, int64_t i)
{
	if (t->desc.dtype == DJ_DTYPE_INT32)
		return ((const int32_t *)t->data)[i];
	return ((const int64_t *)t->data)[i];
}

void tu_unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *coord)
{
	for (int d = ndim - 1; d >= 0; d--) {
		coord[d] = flat % shape[d];
		flat /= shape[d];
	}
}

int64_t tu_ravel(int ndim, const int64_t *shape, const int64_t *coord)
{
	int64_t flat = 0;

	for (int d = 0; d < ndim; d++)
		flat = flat * shape[d] + coord[d];
	return flat;
}

double tu_tolerance(enum dj_dtype dtype, double want)
{
	double eps = dtype == DJ_DTYPE_FLOAT32 ? ldexp(1, -23)
		   : dtype == DJ_DTYPE_FLOAT16 ? ldexp(1, -10) : ldexp(1, -7);

	/* One unit in the last place, plus a floor for results near zero
	 * (cancellation, float16 subnormals). */
	return eps * fabs(want) + eps * 1e-3;
}

static int float_matches(double got, double want, enum dj_dtype dtype)
{
	if (isnan(want) || isnan(got))
		return isnan(want) && isnan(got);
	if (isinf(want) || isinf(got))
		return got == want;
	return fabs(got - want) <= tu_tolerance(dtype, want);
}

int tu_check(const struct dj_tensor *got, const double *want_f, const int64_t *want_i,
	     const char *what)
{
	int64_t n = dj_tensor_numel(&got->desc);

	for (int64_t i = 0; i < n; i++) {
		int ok = want_i ? tu_get_int(got, i) == want_i[i]
				: float_matches(tu_get(got, i), want_f[i], got->desc.dtype);

		if (!ok) {
			printf("\n%s (%s): element %lld is %.9g, expected %.9g (seed %u)\n", what,
			       dj_dtype_name(got->desc.dtype), (long long)i, tu_get(got, i),
			       want_i ? (double)want_i[i] : want_f[i], dj_test_seed());
			return -1;
		}
	}
	return 0;
}

struct dj_tensor tu_run(const char *name, const struct dj_tensor *in, int n_in,
			const struct tn_op_attrs *attrs)
{
	struct dj_tensor out = {0};
	char err[TN_OP_ERR_LEN] = "";
	int rc = tn_op_cpu_alloc(tn_op_find(name), in, n_in, attrs, &out, err, sizeof(err));

	if (rc != 0)
		printf("\n%s failed: %s (%s), seed %u\n", name, err, dj_strerror(rc), dj_test_seed());
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return out;
}

int tu_tmpdir_create(char *dir, size_t len, const char *tag)
{
	snprintf(dir, len, "/tmp/djinn-%s-XXXXXX", tag);
	return mkdtemp(dir) != NULL ? 0 : -1;
}

int tu_tmpdir_remove(const char *dir)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}
