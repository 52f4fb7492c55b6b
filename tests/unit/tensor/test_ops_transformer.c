/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operations a decoder-only transformer adds to the CPU reference:
 * embedding, narrow, scaled_dot_product_attention, slice_write (in place),
 * argmax and rms_norm. Hand-computed cases, randomized checks against naive
 * loops written here (own indexing, double arithmetic) in every dtype each
 * operation takes, the attention against its unfused composition through
 * the existing ops (matmul, transpose, mul by a 0-d scale, add of a mask,
 * softmax), and the errors each one names.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "tensor/ops.h"
#include "harness.h"
#include "ops_test_util.h"

#define ROUNDS 40

static const enum dj_dtype all_dtypes[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16,
					   DJ_DTYPE_BFLOAT16, DJ_DTYPE_INT32, DJ_DTYPE_INT64};
#define N_DTYPES 5
#define N_FLOAT 3

static char err[TN_OP_ERR_LEN];

static struct tn_op_attrs attrs_none(void)
{
	struct tn_op_attrs a;

	tn_op_attrs_init(&a);
	return a;
}

static struct tn_op_attrs attrs_slice(int dim, int64_t start, int64_t length)
{
	struct tn_op_attrs a = attrs_none();

	a.has_dim = a.has_start = a.has_length = 1;
	a.dim = dim;
	a.start = start;
	a.length = length;
	return a;
}

static void expect_shape(const struct dj_tensor *t, int ndim, const int64_t *shape)
{
	CU_ASSERT_EQUAL_FATAL(t->desc.ndim, ndim);
	for (int i = 0; i < ndim; i++)
		CU_ASSERT_EQUAL(t->desc.shape[i], shape[i]);
}

static int random_shape(int min_ndim, int max_ndim, int64_t lo, int64_t hi, int64_t *shape)
{
	int ndim = (int)tu_rand_range(min_ndim, max_ndim);

	for (int i = 0; i < ndim; i++)
		shape[i] = tu_rand_range(lo, hi);
	return ndim;
}

/* ---- the table ---- */

static void test_table(void)
{
	static const char *const names[] = {"embedding", "narrow", "scaled_dot_product_attention",
					     "slice_write", "argmax", "rms_norm"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct tn_op *op = tn_op_find(names[i]);

		CU_ASSERT_PTR_NOT_NULL_FATAL(op);
		CU_ASSERT_PTR_EQUAL(tn_op_get(op->id), op);
		CU_ASSERT_EQUAL(op->inplace, !strcmp(names[i], "slice_write"));
		CU_ASSERT_EQUAL(op->index_inputs, !strcmp(names[i], "embedding") ? 1u : 0u);
	}
	CU_ASSERT_EQUAL(tn_op_count(), 27);
}

/* ---- hand-computed cases ---- */

static void test_hand_embedding(void)
{
	struct dj_tensor in[2], r;

	in[1] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6});
	in[0] = tu_from(DJ_DTYPE_INT64, 2, (int64_t[]){2, 2}, (double[]){2, 0, 1, 2});
	r = tu_run("embedding", in, 2, NULL);
	expect_shape(&r, 3, (int64_t[]){2, 2, 2});
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){5, 6, 1, 2, 3, 4, 5, 6}, NULL, "embedding"), 0);
	tu_free(&r);
	tu_free(&in[0]);
	/* 0-d int32 indices give one row, [D]. */
	in[0] = tu_from(DJ_DTYPE_INT32, 0, NULL, (double[]){1});
	r = tu_run("embedding", in, 2, NULL);
	expect_shape(&r, 1, (int64_t[]){2});
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){3, 4}, NULL, "embedding 0-d"), 0);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

/* Out of range (either side) is -ERANGE naming the first bad index, and
 * nothing is written. */
static void test_embedding_index_errors(void)
{
	static const int64_t bad[][3] = {{0, 5, 1}, {-1, 0, 0}, {4, 4, 7}};
	static const int64_t at[] = {1, 0, 2}, value[] = {5, 0, 7};
	struct dj_tensor in[2], out;
	float sentinel[6];

	in[1] = tu_random(DJ_DTYPE_FLOAT32, 2, (int64_t[]){5, 2});
	for (int c = 0; c < 3; c++) {
		enum dj_dtype t = c % 2 ? DJ_DTYPE_INT32 : DJ_DTYPE_INT64;

		in[0] = tu_from(t, 1, (int64_t[]){3}, (double[]){bad[c][0], bad[c][1], bad[c][2]});
		out = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2,
						  .shape = {3, 2}},
					 .data = sentinel, .mem = DJ_MEM_HOST};
		for (int i = 0; i < 6; i++)
			sentinel[i] = 42.0f;
		int rc = tn_op_cpu(tn_op_find("embedding"), in, 2, NULL, &out, err, sizeof(err));
		char want[96];

		snprintf(want, sizeof(want),
			 "embedding: index %lld out of range for 5 rows (at position %lld)",
			 (long long)(c == 1 ? -1 : value[c]), (long long)at[c]);
		CU_ASSERT_EQUAL(rc, -ERANGE);
		CU_ASSERT_STRING_EQUAL(err, want);
		if (strcmp(err, want) != 0)
			printf("\n  got \"%s\", want \"%s\"\n", err, want);
		for (int i = 0; i < 6; i++)
			CU_ASSERT_EQUAL(sentinel[i], 42.0f);
		tu_free(&in[0]);
	}
	tu_free(&in[1]);
}

static void test_hand_narrow_and_slice_write(void)
{
	struct dj_tensor x = tu_from(DJ_DTYPE_INT32, 2, (int64_t[]){2, 4},
				     (double[]){0, 1, 2, 3, 4, 5, 6, 7});
	struct tn_op_attrs a = attrs_slice(-1, -3, 2);
	struct dj_tensor r = tu_run("narrow", &x, 1, &a);

	expect_shape(&r, 2, (int64_t[]){2, 2});
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 2, 5, 6}, "narrow start -3"), 0);
	tu_free(&r);
	a = attrs_slice(0, 1, 1);
	r = tu_run("narrow", &x, 1, &a);
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){4, 5, 6, 7}, "narrow dim 0"), 0);
	tu_free(&r);
	a = attrs_slice(1, 4, 0); /* empty, at the very end: allowed as in torch */
	r = tu_run("narrow", &x, 1, &a);
	expect_shape(&r, 2, (int64_t[]){2, 0});
	tu_free(&r);

	/* slice_write in place: the output is dst itself, updated. */
	struct dj_tensor src = tu_from(DJ_DTYPE_INT32, 2, (int64_t[]){2, 1}, (double[]){-1, -2});
	struct dj_tensor in[2] = {x, src};

	a = attrs_none();
	a.has_dim = a.has_start = 1;
	a.dim = 1;
	a.start = 2;
	CU_ASSERT_EQUAL(tn_op_cpu(tn_op_find("slice_write"), in, 2, &a, &x, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(tu_check(&x, NULL, (int64_t[]){0, 1, -1, 3, 4, 5, -2, 7}, "in place"), 0);
	/* Into another buffer: a copy of dst with the slice written. */
	a.start = -1;
	r = tu_run("slice_write", in, 2, &a);
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){0, 1, -1, -1, 4, 5, -2, -2}, "copy"), 0);
	CU_ASSERT_EQUAL(tu_check(&x, NULL, (int64_t[]){0, 1, -1, 3, 4, 5, -2, 7}, "dst kept"), 0);
	tu_free(&r);
	/* dst written with itself is a no-op. */
	in[1] = x;
	a.start = 0;
	CU_ASSERT_EQUAL(tn_op_cpu(tn_op_find("slice_write"), in, 2, &a, &x, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(tu_check(&x, NULL, (int64_t[]){0, 1, -1, 3, 4, 5, -2, 7}, "self"), 0);
	tu_free(&src);
	tu_free(&x);
}

static void test_hand_argmax(void)
{
	struct dj_tensor x = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 3},
				     (double[]){1, 3, 3, 2, NAN, NAN});
	struct tn_op_attrs a = attrs_none();
	struct dj_tensor r = tu_run("argmax", &x, 1, &a);

	/* whole tensor: the first NaN (flat index 4) wins */
	CU_ASSERT_EQUAL(r.desc.dtype, DJ_DTYPE_INT64);
	expect_shape(&r, 0, NULL);
	CU_ASSERT_EQUAL(tu_get_int(&r, 0), 4);
	tu_free(&r);
	a.has_dim = 1;
	a.dim = 1;
	r = tu_run("argmax", &x, 1, &a);
	/* ties keep the first index; NaN beats numbers */
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 1}, "argmax dim 1"), 0);
	tu_free(&r);
	a.dim = 0;
	a.keepdim = 1;
	r = tu_run("argmax", &x, 1, &a);
	expect_shape(&r, 2, (int64_t[]){1, 3});
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 1, 1}, "argmax dim 0 keepdim"), 0);
	tu_free(&r);
	a.has_dim = 0;
	r = tu_run("argmax", &x, 1, &a);
	expect_shape(&r, 2, (int64_t[]){1, 1});
	tu_free(&r);
	tu_free(&x);
	/* int64 beyond 2^53: compared as integers, not as doubles. */
	x = tu_tensor(DJ_DTYPE_INT64, 1, (int64_t[]){3});
	((int64_t *)x.data)[0] = (1LL << 60) + 1;
	((int64_t *)x.data)[1] = (1LL << 60) + 2;
	((int64_t *)x.data)[2] = (1LL << 60);
	r = tu_run("argmax", &x, 1, NULL);
	CU_ASSERT_EQUAL(tu_get_int(&r, 0), 1);
	tu_free(&r);
	tu_free(&x);
}

static void test_hand_rms_norm(void)
{
	/* rms of [3, 4] is sqrt(12.5). */
	struct dj_tensor in[2] = {
		tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 2}, (double[]){3, 4, 0, 0}),
		tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){2}, (double[]){1, -2}),
	};
	struct tn_op_attrs a = attrs_none();
	double inv = 1 / sqrt(12.5 + 1e-6);
	struct dj_tensor r = tu_run("rms_norm", in, 2, &a);

	CU_ASSERT_EQUAL(tu_check(&r, (double[]){3 * inv, -8 * inv, 0, 0}, NULL, "rms_norm"), 0);
	tu_free(&r);
	a.eps = 0.5;
	inv = 1 / sqrt(12.5 + 0.5);
	r = tu_run("rms_norm", in, 1, &a);
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){3 * inv, 4 * inv, 0, 0}, NULL, "rms_norm eps"), 0);
	tu_free(&r);
	CU_ASSERT_EQUAL(tn_op_eps(tn_op_find("rms_norm"), NULL), 1e-6);
	CU_ASSERT_EQUAL(tn_op_eps(tn_op_find("layer_norm"), NULL), 1e-5);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

/* Two keys, E = 2: the weights are a two-way softmax of the logits. */
static void test_hand_attention(void)
{
	struct dj_tensor in[3] = {
		tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 2}, (double[]){1, 0, 0, 2}),
		tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 2}, (double[]){1, 0, 0, 1}),
		tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 10, 20, 30}),
	};
	struct tn_op_attrs a = attrs_none();
	double s = 1 / sqrt(2.0);
	/* row 0: logits [s, 0]; row 1: [0, 2s] */
	double w0 = exp(s) / (exp(s) + 1), w1 = 1 / (1 + exp(2 * s));
	struct dj_tensor r = tu_run("scaled_dot_product_attention", in, 3, &a);

	expect_shape(&r, 2, (int64_t[]){2, 3});
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){w0 + 10 * (1 - w0), 2 * w0 + 20 * (1 - w0),
						3 * w0 + 30 * (1 - w0), w1 + 10 * (1 - w1),
						2 * w1 + 20 * (1 - w1), 3 * w1 + 30 * (1 - w1)},
			       NULL, "attention"), 0);
	tu_free(&r);
	/* causal: row 0 sees key 0 only; an explicit scale of 0 averages row 1 */
	a.is_causal = 1;
	a.has_scale = 1;
	a.scale = 0;
	r = tu_run("scaled_dot_product_attention", in, 3, &a);
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){1, 2, 3, 5.5, 11, 16.5}, NULL, "causal"), 0);
	tu_free(&r);
	/* causal with L = 1 < S = 2 is top-left aligned: the query sees key 0 */
	in[0].desc.shape[0] = 1;
	r = tu_run("scaled_dot_product_attention", in, 3, &a);
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){1, 2, 3}, NULL, "causal L < S"), 0);
	tu_free(&r);
	/* E = 0: every logit is 0, the output the mean of v's rows (torch) */
	struct dj_tensor e0[3] = {tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){1, 0}),
				  tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 0}), in[2]};

	a = attrs_none();
	r = tu_run("scaled_dot_product_attention", e0, 3, &a);
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){5.5, 11, 16.5}, NULL, "E = 0"), 0);
	tu_free(&r);
	tu_free(&e0[0]);
	tu_free(&e0[1]);
	/* no keys: zeros, as torch's matmul of empty operands */
	in[1].desc.shape[0] = 0;
	in[2].desc.shape[0] = 0;
	r = tu_run("scaled_dot_product_attention", in, 3, &a);
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){0, 0, 0}, NULL, "no keys"), 0);
	tu_free(&r);
	for (int i = 0; i < 3; i++)
		tu_free(&in[i]);
}

/* mul by a 0-d tensor is the way to scale by a scalar. */
static void test_scale_by_0d_tensor(void)
{
	struct dj_tensor in[2] = {
		tu_from(DJ_DTYPE_FLOAT32, 3, (int64_t[]){1, 2, 2}, (double[]){1, -2, 3, 4}),
		tu_from(DJ_DTYPE_FLOAT32, 0, NULL, (double[]){0.125}),
	};
	struct dj_tensor r = tu_run("mul", in, 2, NULL);

	expect_shape(&r, 3, (int64_t[]){1, 2, 2});
	CU_ASSERT_EQUAL(tu_check(&r, (double[]){0.125, -0.25, 0.375, 0.5}, NULL, "x * 0-d"), 0);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

/* ---- randomized checks against naive loops ---- */

static void check_embedding(enum dj_dtype wt, enum dj_dtype it)
{
	int64_t ishape[DJ_MAX_DIMS];
	int indim = random_shape(0, 3, 0, 4, ishape);
	int64_t rows = tu_rand_range(1, 9), dim = tu_rand_range(0, 7);
	struct dj_tensor in[2] = {tu_tensor(it, indim, ishape),
				  tu_random(wt, 2, (int64_t[]){rows, dim})};
	int64_t n = dj_tensor_numel(&in[0].desc);

	for (int64_t i = 0; i < n; i++)
		dj_tensor_store_f64(&in[0], i, (double)tu_rand_range(0, rows - 1));
	struct dj_tensor r = tu_run("embedding", in, 2, NULL);

	CU_ASSERT_EQUAL(r.desc.ndim, indim + 1);
	CU_ASSERT_EQUAL(r.desc.dtype, wt);
	/* Bytes equal: a gather converts nothing. */
	size_t row = (size_t)dim * dj_dtype_size(wt);

	for (int64_t i = 0; i < n; i++)
		CU_ASSERT(memcmp((char *)r.data + i * row,
				 (char *)in[1].data + tu_get_int(&in[0], i) * row, row) == 0);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

static void test_random_embedding(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int t = 0; t < N_DTYPES; t++)
			check_embedding(all_dtypes[t], round % 2 ? DJ_DTYPE_INT32 : DJ_DTYPE_INT64);
}

/* narrow, then slice_write of the narrowed part into a fresh tensor at the
 * same place: element by element from coordinates. */
static void check_narrow_slice_write(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, 0, 5, shape);
	int dim = (int)tu_rand_range(0, ndim - 1);
	int64_t size = shape[dim], start = tu_rand_range(0, size);
	int64_t length = tu_rand_range(0, size - start);
	/* torch's negative forms: start - size, dim - ndim */
	struct tn_op_attrs a = attrs_slice(tu_rand_range(0, 1) ? dim : dim - ndim,
					   start < size && tu_rand_range(0, 1) ? start - size : start,
					   length);
	struct dj_tensor x = tu_random(t, ndim, shape);
	struct dj_tensor r = tu_run("narrow", &x, 1, &a);
	int64_t n = dj_tensor_numel(&r.desc);
	size_t es = dj_dtype_size(t);

	CU_ASSERT_EQUAL(r.desc.shape[dim], length);
	for (int64_t i = 0; i < n; i++) {
		tu_unravel(i, ndim, r.desc.shape, coord);
		coord[dim] += start;
		CU_ASSERT(memcmp((char *)r.data + i * es,
				 (char *)x.data + tu_ravel(ndim, shape, coord) * es, es) == 0);
	}
	/* Write r back into a random dst: the slice equals r, the rest dst. */
	struct dj_tensor dst = tu_random(t, ndim, shape);
	struct dj_tensor keep = tu_tensor(t, ndim, shape);
	struct dj_tensor in[2] = {dst, r};

	memcpy(keep.data, dst.data, dj_tensor_nbytes(&dst.desc));
	a.has_length = 0;
	CU_ASSERT_EQUAL(tn_op_cpu(tn_op_find("slice_write"), in, 2, &a, &dst, err, sizeof(err)), 0);
	for (int64_t i = 0; i < dj_tensor_numel(&dst.desc); i++) {
		tu_unravel(i, ndim, shape, coord);
		int inside = coord[dim] >= start && coord[dim] < start + length;
		const char *want = (char *)keep.data + i * es;

		if (inside) {
			coord[dim] -= start;
			want = (char *)r.data + tu_ravel(ndim, r.desc.shape, coord) * es;
		}
		CU_ASSERT(memcmp((char *)dst.data + i * es, want, es) == 0);
	}
	tu_free(&keep);
	tu_free(&dst);
	tu_free(&r);
	tu_free(&x);
}

static void test_random_narrow_slice_write(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int t = 0; t < N_DTYPES; t++)
			check_narrow_slice_write(all_dtypes[t]);
}

/* Small value ranges so that ties are common: the first index must win. */
static void check_argmax(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int ndim = random_shape(0, 4, 1, 5, shape);
	struct dj_tensor x = tu_tensor(t, ndim, shape);
	struct tn_op_attrs a = attrs_none();
	int64_t n = dj_tensor_numel(&x.desc);

	for (int64_t i = 0; i < n; i++)
		dj_tensor_store_f64(&x, i, (double)tu_rand_range(-3, 3));
	a.has_dim = ndim > 0 && tu_rand_range(0, 2) != 0;
	int dim = a.has_dim ? (int)tu_rand_range(0, ndim - 1) : 0;

	a.dim = tu_rand_range(0, 1) ? dim : dim - ndim;
	a.keepdim = (int)tu_rand_range(0, 1);
	struct dj_tensor r = tu_run("argmax", &x, 1, &a);
	int64_t m = dj_tensor_numel(&r.desc);
	int64_t *want = calloc((size_t)m, sizeof(int64_t));
	int64_t kept[DJ_MAX_DIMS];

	for (int d = 0; d < ndim; d++)
		kept[d] = a.has_dim && d != dim ? shape[d] : 1;
	for (int64_t o = 0; o < m; o++) {
		int64_t len = a.has_dim ? shape[dim] : n;
		double best = -INFINITY;

		tu_unravel(o, ndim, kept, coord);
		for (int64_t j = 0; j < len; j++) {
			int64_t src = a.has_dim ? (coord[dim] = j, tu_ravel(ndim, shape, coord)) : j;

			if (tu_get(&x, src) > best) {
				best = tu_get(&x, src);
				want[o] = j;
			}
		}
	}
	CU_ASSERT_EQUAL(tu_check(&r, NULL, want, "argmax"), 0);
	free(want);
	tu_free(&r);
	tu_free(&x);
}

static void test_random_argmax(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int t = 0; t < N_DTYPES; t++)
			check_argmax(all_dtypes[t]);
}

static void check_rms_norm(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, 1, 6, shape);
	int64_t len = shape[ndim - 1];
	int n_in = (int)tu_rand_range(1, 2);
	struct dj_tensor in[2] = {tu_random(t, ndim, shape), tu_random(t, 1, &len)};
	struct tn_op_attrs a = attrs_none();

	if (tu_rand_range(0, 1))
		a.eps = 0.25;
	struct dj_tensor r = tu_run("rms_norm", in, n_in, &a);
	int64_t n = dj_tensor_numel(&in[0].desc);
	double *want = calloc((size_t)n, sizeof(double));
	double eps = isnan(a.eps) ? 1e-6 : a.eps;

	for (int64_t row = 0; row < n / len; row++) {
		double sq = 0;

		for (int64_t j = 0; j < len; j++)
			sq += pow(tu_get(&in[0], row * len + j), 2);
		for (int64_t j = 0; j < len; j++)
			want[row * len + j] = tu_get(&in[0], row * len + j) / sqrt(sq / len + eps) *
					      (n_in > 1 ? tu_get(&in[1], j) : 1);
	}
	CU_ASSERT_EQUAL(tu_check(&r, want, NULL, "rms_norm"), 0);
	free(want);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

static void test_random_rms_norm(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int t = 0; t < N_FLOAT; t++)
			check_rms_norm(all_dtypes[t]);
}

/* Flat index of an operand whose leading dims broadcast to @p batch. */
static int64_t batch_index(const struct dj_tensor_desc *d, int nb, const int64_t *bcoord,
			   int64_t row, int64_t col)
{
	int64_t c[DJ_MAX_DIMS];
	int lead = nb - (d->ndim - 2);

	for (int i = 0; i < d->ndim - 2; i++)
		c[i] = d->shape[i] == 1 ? 0 : bcoord[lead + i];
	c[d->ndim - 2] = row;
	c[d->ndim - 1] = col;
	return tu_ravel(d->ndim, d->shape, c);
}

/* Operand shape: some of the batch dims dropped or set to 1 (broadcast). */
static int operand_shape(int nb, const int64_t *batch, int64_t rows, int64_t cols,
			 int64_t *shape)
{
	int drop = (int)tu_rand_range(0, nb), n = 0;

	for (int i = drop; i < nb; i++)
		shape[n++] = tu_rand_range(0, 2) == 0 ? 1 : batch[i];
	shape[n++] = rows;
	shape[n++] = cols;
	return n;
}

static void check_attention(enum dj_dtype t)
{
	int64_t batch[DJ_MAX_DIMS], sq[DJ_MAX_DIMS], sk[DJ_MAX_DIMS], sv[DJ_MAX_DIMS];
	int nb = random_shape(0, 3, 1, 3, batch);
	int64_t L = tu_rand_range(1, 6), S = tu_rand_range(0, 7), E = tu_rand_range(1, 9);
	int64_t Ev = tu_rand_range(1, 5), bcoord[DJ_MAX_DIMS];
	int nq = operand_shape(nb, batch, L, E, sq), nk = operand_shape(nb, batch, S, E, sk);
	int nv = operand_shape(nb, batch, S, Ev, sv);
	struct dj_tensor in[3] = {tu_random(t, nq, sq), tu_random(t, nk, sk), tu_random(t, nv, sv)};
	struct tn_op_attrs a = attrs_none();

	a.is_causal = (int)tu_rand_range(0, 1);
	a.has_scale = tu_rand_range(0, 2) == 0;
	a.scale = 0.3;
	struct dj_tensor r = tu_run("scaled_dot_product_attention", in, 3, &a);
	int rb = r.desc.ndim - 2;
	int64_t nbatch = 1, n = dj_tensor_numel(&r.desc);
	double *want = calloc((size_t)n + 1, sizeof(double)), *logit = calloc(8, sizeof(double));
	double scale = a.has_scale ? a.scale : 1 / sqrt((double)E);

	CU_ASSERT(r.desc.shape[rb] == L && r.desc.shape[rb + 1] == Ev);
	for (int i = 0; i < rb; i++)
		nbatch *= r.desc.shape[i];
	for (int64_t b = 0; b < nbatch; b++) {
		tu_unravel(b, rb, r.desc.shape, bcoord);
		for (int64_t i = 0; i < L; i++) {
			double total = 0, max = -INFINITY;

			for (int64_t j = 0; j < S; j++) {
				logit[j] = 0;
				for (int64_t e = 0; e < E; e++)
					logit[j] += tu_get(&in[0], batch_index(&in[0].desc, rb, bcoord, i, e)) *
						    tu_get(&in[1], batch_index(&in[1].desc, rb, bcoord, j, e));
				logit[j] *= scale;
				if (!(a.is_causal && j > i))
					max = fmax(max, logit[j]);
			}
			for (int64_t j = 0; j < S; j++)
				total += a.is_causal && j > i ? 0 : exp(logit[j] - max);
			for (int64_t e = 0; e < Ev; e++)
				for (int64_t j = 0; j < S; j++)
					if (!(a.is_causal && j > i))
						want[(b * L + i) * Ev + e] +=
							exp(logit[j] - max) / total *
							tu_get(&in[2], batch_index(&in[2].desc, rb, bcoord, j, e));
		}
	}
	CU_ASSERT_EQUAL(tu_check(&r, want, NULL, "attention"), 0);
	free(want);
	free(logit);
	tu_free(&r);
	for (int i = 0; i < 3; i++)
		tu_free(&in[i]);
}

static void test_random_attention(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int t = 0; t < N_FLOAT; t++)
			check_attention(all_dtypes[t]);
}

/*
 * The fused op equals the unfused path a graph would record without it:
 * softmax(q @ transpose(k) * scale + mask) @ v through matmul (batch dims),
 * transpose (last two dims), mul by a 0-d tensor, add of a broadcast [L, S]
 * mask of 0 / -inf, softmax (last dim), matmul. float32, multi-head shapes.
 */
static struct dj_tensor run_op(const char *op, struct dj_tensor a, struct dj_tensor b,
			       int n_in)
{
	struct dj_tensor in[2] = {a, b};

	return tu_run(op, in, n_in, NULL);
}

static void test_attention_equals_unfused(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < 8; round++) {
		int64_t B = tu_rand_range(1, 2), H = tu_rand_range(1, 4), E = 8 * tu_rand_range(1, 2);
		int64_t S = tu_rand_range(1, 12), L = round % 2 ? 1 : S;
		int causal = round % 2 == 0;
		struct dj_tensor q = tu_random(DJ_DTYPE_FLOAT32, 4, (int64_t[]){B, H, L, E});
		struct dj_tensor k = tu_random(DJ_DTYPE_FLOAT32, 4, (int64_t[]){B, H, S, E});
		struct dj_tensor v = tu_random(DJ_DTYPE_FLOAT32, 4, (int64_t[]){B, H, S, E});
		struct dj_tensor scale = tu_from(DJ_DTYPE_FLOAT32, 0, NULL,
						 (double[]){1 / sqrt((double)E)});
		struct dj_tensor mask = tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){L, S});
		struct tn_op_attrs a = attrs_none();

		for (int64_t i = 0; i < L; i++)
			for (int64_t j = 0; j < S; j++)
				((float *)mask.data)[i * S + j] = causal && j > i ? -INFINITY : 0;
		struct dj_tensor kt = run_op("transpose", k, k, 1);
		struct dj_tensor logits = run_op("matmul", q, kt, 2);
		struct dj_tensor scaled = run_op("mul", logits, scale, 2);
		struct dj_tensor masked = run_op("add", scaled, mask, 2);
		struct dj_tensor p = run_op("softmax", masked, masked, 1);
		struct dj_tensor unfused = run_op("matmul", p, v, 2);
		struct dj_tensor in[3] = {q, k, v};

		a.is_causal = causal;
		struct dj_tensor fused = tu_run("scaled_dot_product_attention", in, 3, &a);
		int64_t n = dj_tensor_numel(&fused.desc);

		CU_ASSERT_FATAL(dj_tensor_desc_equal(&fused.desc, &unfused.desc));
		/* The unfused path rounds to float32 four times on the way. */
		for (int64_t i = 0; i < n; i++)
			CU_ASSERT_DOUBLE_EQUAL(tu_get(&fused, i), tu_get(&unfused, i), 1e-5);
		struct dj_tensor *all[] = {&q, &k, &v, &scale, &mask, &kt, &logits, &scaled,
					   &masked, &p, &unfused, &fused};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			tu_free(all[i]);
	}
}

/* ---- errors named at inference ---- */

static struct dj_tensor_desc desc(enum dj_dtype t, int ndim, const int64_t *shape)
{
	struct dj_tensor_desc d = {.dtype = t, .ndim = ndim};

	for (int i = 0; i < ndim; i++)
		d.shape[i] = shape[i];
	return d;
}

#define D(t, ...) desc((t), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
		       (int64_t[]){__VA_ARGS__})
#define F32(...) D(DJ_DTYPE_FLOAT32, __VA_ARGS__)

static void expect_fail(const char *op, const struct dj_tensor_desc *in, int n,
			const struct tn_op_attrs *a, int rc, const char *piece)
{
	struct dj_tensor_desc out;
	int got = tn_op_infer(tn_op_find(op), in, n, a, &out, err, sizeof(err));

	if (got != rc || strstr(err, piece) == NULL || strncmp(err, op, strlen(op)) != 0)
		printf("\n%s: rc %d (want %d), \"%s\" (want \"%s\")\n", op, got, rc, err, piece);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, piece));
	CU_ASSERT_EQUAL(strncmp(err, op, strlen(op)), 0);
}

static void test_errors(void)
{
	struct dj_tensor_desc in[3];
	struct tn_op_attrs a = attrs_none();

	in[0] = D(DJ_DTYPE_FLOAT32, 3);
	in[1] = F32(5, 4);
	expect_fail("embedding", in, 2, NULL, -DJ_EDTYPE,
		    "input 0 (indices) must be int32 or int64, got float32");
	in[0] = D(DJ_DTYPE_INT64, 3);
	in[1] = F32(5);
	expect_fail("embedding", in, 2, NULL, -DJ_ESHAPE, "weight [5] must be 2-D");
	in[0] = D(DJ_DTYPE_INT32, 1, 1, 1, 1, 1, 1, 1, 1);
	in[1] = F32(5, 4);
	expect_fail("embedding", in, 2, NULL, -DJ_ESHAPE, "would have 9 dimensions");

	in[0] = F32(4, 6);
	expect_fail("narrow", in, 1, &a, -EINVAL, "narrow: attribute 'dim' is required");
	a = attrs_slice(1, 2, 3);
	a.has_length = 0;
	expect_fail("narrow", in, 1, &a, -EINVAL, "attribute 'length' is required");
	a = attrs_slice(1, 4, 3);
	expect_fail("narrow", in, 1, &a, -DJ_ESHAPE,
		    "start 4, length 3 out of range for size 6 of dim 1");
	a = attrs_slice(1, -7, 1);
	expect_fail("narrow", in, 1, &a, -DJ_ESHAPE, "start -7");
	a = attrs_slice(2, 0, 1);
	expect_fail("narrow", in, 1, &a, -DJ_ESHAPE, "dim 2 out of range for 2 dimensions");
	in[0] = desc(DJ_DTYPE_FLOAT32, 0, NULL);
	a = attrs_slice(0, 0, 1);
	expect_fail("narrow", in, 1, &a, -DJ_ESHAPE, "cannot slice a 0-dimensional tensor");

	in[0] = F32(2, 8, 4);
	in[1] = F32(2, 3, 5);
	a = attrs_slice(1, 0, 0);
	a.has_length = 0;
	expect_fail("slice_write", in, 2, &a, -DJ_ESHAPE,
		    "src [2,3,5] does not match dst [2,8,4] outside dim 1");
	in[1] = F32(2, 3, 4);
	a.start = 6;
	expect_fail("slice_write", in, 2, &a, -DJ_ESHAPE,
		    "start 6, length 3 out of range for size 8 of dim 1");
	a.has_start = 0;
	expect_fail("slice_write", in, 2, &a, -EINVAL, "attribute 'start' is required");
	in[1] = D(DJ_DTYPE_FLOAT16, 2, 3, 4);
	a.has_start = 1;
	a.start = 0;
	expect_fail("slice_write", in, 2, &a, -DJ_EDTYPE, "dtypes differ");

	in[0] = F32(2, 5, 8);
	in[1] = F32(2, 7, 6);
	in[2] = F32(2, 7, 3);
	expect_fail("scaled_dot_product_attention", in, 3, NULL, -DJ_ESHAPE,
		    "q [2,5,8] and k [2,7,6] differ in the last dimension (E)");
	in[1] = F32(2, 7, 8);
	in[2] = F32(2, 6, 3);
	expect_fail("scaled_dot_product_attention", in, 3, NULL, -DJ_ESHAPE,
		    "k [2,7,8] and v [2,6,3] differ in the key dimension (S)");
	in[2] = F32(3, 7, 3);
	expect_fail("scaled_dot_product_attention", in, 3, NULL, -DJ_ESHAPE,
		    "batch dimensions do not broadcast");
	in[2] = F32(7);
	expect_fail("scaled_dot_product_attention", in, 3, NULL, -DJ_ESHAPE,
		    "need at least 2 dimensions");
	in[0].dtype = in[1].dtype = in[2].dtype = DJ_DTYPE_INT32;
	expect_fail("scaled_dot_product_attention", in, 3, NULL, -DJ_EDTYPE,
		    "int32 not supported (float32, float16 and bfloat16 only)");

	in[0] = F32(3, 0);
	a = attrs_none();
	a.has_dim = 1;
	a.dim = -1;
	expect_fail("argmax", in, 1, &a, -DJ_ESHAPE, "dim -1 of [3,0] is empty");
	a.has_dim = 0;
	expect_fail("argmax", in, 1, &a, -DJ_ESHAPE, "input [3,0] has no elements");
	a.has_dim = 1;
	a.dim = 2;
	expect_fail("argmax", in, 1, &a, -DJ_ESHAPE, "dim 2 out of range");

	in[0] = F32(3, 4);
	in[1] = F32(3);
	expect_fail("rms_norm", in, 2, NULL, -DJ_ESHAPE,
		    "weight [3] must be [4], the last dimension of [3,4]");
	in[0] = desc(DJ_DTYPE_FLOAT32, 0, NULL);
	expect_fail("rms_norm", in, 1, NULL, -DJ_ESHAPE, "input is a scalar");
	in[0] = D(DJ_DTYPE_INT64, 3);
	expect_fail("rms_norm", in, 1, NULL, -DJ_EDTYPE, "int64 not supported");
}

/* ---- attributes from and to JSON ---- */

static int parse(const char *op, const char *json, struct tn_op_attrs *a)
{
	cJSON *j = cJSON_Parse(json);
	int rc = tn_op_attrs_from_json(tn_op_find(op), j, a, err, sizeof(err));

	cJSON_Delete(j);
	return rc;
}

static void test_attrs_json(void)
{
	struct tn_op_attrs a, b;

	CU_ASSERT_EQUAL(parse("narrow", "{\"dim\": -1, \"start\": -3, \"length\": 2}", &a), 0);
	CU_ASSERT(a.has_dim && a.dim == -1 && a.has_start && a.start == -3 && a.has_length &&
		  a.length == 2);
	CU_ASSERT_EQUAL(parse("scaled_dot_product_attention",
			      "{\"is_causal\": true, \"scale\": 0.125}", &a), 0);
	CU_ASSERT(a.is_causal && a.has_scale && a.scale == 0.125);
	CU_ASSERT_EQUAL(parse("scaled_dot_product_attention", "{}", &a), 0);
	CU_ASSERT(!a.is_causal && !a.has_scale);
	CU_ASSERT_EQUAL(parse("rms_norm", "{\"eps\": 1e-5}", &a), 0);
	CU_ASSERT_EQUAL(tn_op_eps(tn_op_find("rms_norm"), &a), 1e-5);
	CU_ASSERT_EQUAL(parse("argmax", "{\"dim\": 1, \"keepdim\": true}", &a), 0);
	CU_ASSERT_EQUAL(parse("slice_write", "{\"dim\": 2, \"start\": 17}", &a), 0);
	CU_ASSERT_EQUAL(parse("embedding", "{}", &a), 0);

	CU_ASSERT_EQUAL(parse("narrow", "{\"length\": -1}", &a), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'length' is not an integer in range"));
	CU_ASSERT_EQUAL(parse("slice_write", "{\"length\": 1}", &a), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'length' does not apply"));
	CU_ASSERT_EQUAL(parse("scaled_dot_product_attention", "{\"is_causal\": 1}", &a), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'is_causal' must be true or false"));
	CU_ASSERT_EQUAL(parse("scaled_dot_product_attention", "{\"scale\": \"x\"}", &a), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'scale' must be a finite number"));
	CU_ASSERT_EQUAL(parse("embedding", "{\"dim\": 0}", &a), -EINVAL);
	CU_ASSERT_EQUAL(parse("narrow", "{\"start\": 1.5}", &a), -EINVAL);

	/* Round trip: what to_json writes parses back to the same values. */
	const struct tn_op *ops[] = {tn_op_find("narrow"), tn_op_find("scaled_dot_product_attention"),
				     tn_op_find("rms_norm")};

	a = attrs_slice(-2, -5, 3);
	a.is_causal = 1;
	a.has_scale = 1;
	a.scale = -0.5;
	a.eps = 0.25;
	for (int i = 0; i < 3; i++) {
		cJSON *j = tn_op_attrs_to_json(ops[i], &a);

		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		CU_ASSERT_EQUAL(tn_op_attrs_from_json(ops[i], j, &b, err, sizeof(err)), 0);
		cJSON_Delete(j);
	}
	/* the last one parsed is rms_norm's: only eps travels */
	CU_ASSERT(b.eps == 0.25 && !b.has_dim && !b.is_causal);
	cJSON *j = tn_op_attrs_to_json(ops[0], &a);

	CU_ASSERT_EQUAL(tn_op_attrs_from_json(ops[0], j, &b, err, sizeof(err)), 0);
	CU_ASSERT(b.dim == -2 && b.start == -5 && b.length == 3 && !b.has_scale);
	cJSON_Delete(j);
	j = tn_op_attrs_to_json(ops[1], &a);
	CU_ASSERT_EQUAL(tn_op_attrs_from_json(ops[1], j, &b, err, sizeof(err)), 0);
	CU_ASSERT(b.is_causal && b.has_scale && b.scale == -0.5 && !b.has_start);
	cJSON_Delete(j);
	/* An unset eps is not written: the op's default applies on the far side. */
	a = attrs_none();
	j = tn_op_attrs_to_json(ops[2], &a);
	CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "eps"));
	cJSON_Delete(j);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"the table holds the six operations", test_table},
		{"hand: embedding", test_hand_embedding},
		{"embedding index out of range is named, nothing written", test_embedding_index_errors},
		{"hand: narrow, slice_write in place and copied", test_hand_narrow_and_slice_write},
		{"hand: argmax ties, NaN, keepdim, int64", test_hand_argmax},
		{"hand: rms_norm and eps defaults", test_hand_rms_norm},
		{"hand: attention, causal, L < S, no keys", test_hand_attention},
		{"mul by a 0-d tensor scales", test_scale_by_0d_tensor},
		{"random: embedding, every weight dtype", test_random_embedding},
		{"random: narrow and slice_write", test_random_narrow_slice_write},
		{"random: argmax with ties", test_random_argmax},
		{"random: rms_norm", test_random_rms_norm},
		{"random: attention with broadcast batch dims", test_random_attention},
		{"attention equals its unfused composition", test_attention_equals_unfused},
		{"errors named at inference", test_errors},
		{"attributes to and from JSON", test_attrs_json},
		{NULL, NULL},
	};
	dj_test_add_suite("ops transformer", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
