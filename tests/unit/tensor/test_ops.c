/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CPU reference operations: hand-computed cases, then randomized checks
 * against naive loops written here (own indexing, own formulas, double
 * accumulation), on every dtype each operation accepts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "tensor/ops.h"
#include "harness.h"
#include "ops_test_util.h"

#define ROUNDS 50

static const enum dj_dtype all_dtypes[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16,
					   DJ_DTYPE_BFLOAT16, DJ_DTYPE_INT32, DJ_DTYPE_INT64};
#define N_DTYPES 5

static int is_int(enum dj_dtype t)
{
	return t == DJ_DTYPE_INT32 || t == DJ_DTYPE_INT64;
}

static struct tn_op_attrs attrs_default(void)
{
	struct tn_op_attrs a;

	tn_op_attrs_init(&a);
	return a;
}

/* ---- the table ---- */

static void test_table_lookup(void)
{
	static const char *const names[] = {
		"matmul", "add", "sub", "mul", "div", "relu", "sigmoid", "tanh", "exp", "log",
		"sqrt", "sum", "mean", "transpose", "reshape", "cat", "linear", "softmax",
		"gelu", "silu", "layer_norm", "embedding", "narrow",
		"scaled_dot_product_attention", "slice_write", "argmax", "rms_norm"};
	int n = (int)(sizeof(names) / sizeof(names[0]));

	CU_ASSERT_EQUAL(tn_op_count(), n);
	for (int i = 0; i < n; i++) {
		const struct tn_op *op = tn_op_find(names[i]);

		CU_ASSERT_PTR_NOT_NULL_FATAL(op);
		CU_ASSERT_STRING_EQUAL(op->name, names[i]);
		CU_ASSERT_PTR_EQUAL(tn_op_get(op->id), op);
	}
	CU_ASSERT_PTR_NULL(tn_op_find("conv2d"));
	CU_ASSERT_PTR_NULL(tn_op_find("MATMUL"));
	CU_ASSERT_PTR_NULL(tn_op_find(NULL));
	CU_ASSERT_PTR_NULL(tn_op_get(TN_OP_COUNT));
}

/* ---- hand-computed cases ---- */

static void expect_values(const struct dj_tensor *t, int ndim, const int64_t *shape,
			  const double *want, const char *what)
{
	CU_ASSERT_EQUAL_FATAL(t->desc.ndim, ndim);
	for (int i = 0; i < ndim; i++)
		CU_ASSERT_EQUAL_FATAL(t->desc.shape[i], shape[i]);
	CU_ASSERT_EQUAL(tu_check(t, want, NULL, what), 0);
}

static void test_hand_matmul_and_linear(void)
{
	struct dj_tensor in[3];
	struct dj_tensor r;

	in[0] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
	in[1] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){3, 2}, (double[]){7, 8, 9, 10, 11, 12});
	r = tu_run("matmul", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 2}, (double[]){58, 64, 139, 154}, "matmul 2x3@3x2");
	tu_free(&r);
	/* linear: x [2,3] @ W^T with W [2,3] = in[1] reshaped, plus bias. */
	in[2] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){2}, (double[]){0.5, -1});
	in[1].desc.shape[0] = 2;
	in[1].desc.shape[1] = 3;
	struct dj_tensor lin_in[3] = {in[0], in[1], in[2]};

	r = tu_run("linear", lin_in, 3, NULL);
	/* [1,2,3].[7,8,9] = 50, .[10,11,12] = 68; [4,5,6]: 122, 167. */
	expect_values(&r, 2, (int64_t[]){2, 2}, (double[]){50.5, 67, 122.5, 166}, "linear");
	tu_free(&r);
	/* 1-D @ 1-D is a dot product with a 0-D result. */
	in[1].desc.ndim = 1;
	in[1].desc.shape[0] = 3;
	in[0].desc.ndim = 1;
	in[0].desc.shape[0] = 3;
	r = tu_run("matmul", in, 2, NULL);
	expect_values(&r, 0, NULL, (double[]){50}, "dot");
	tu_free(&r);
	for (int i = 0; i < 3; i++)
		tu_free(&in[i]);
}

static void test_hand_elementwise(void)
{
	struct dj_tensor in[2];
	struct dj_tensor r;

	/* A bias of shape [3] broadcast over [2,3]. */
	in[0] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 3}, (double[]){1, -2, 3, -4, 5, -6});
	in[1] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){3}, (double[]){10, 20, 30});
	r = tu_run("add", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){11, 18, 33, 6, 25, 24}, "add bias");
	tu_free(&r);
	r = tu_run("div", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){0.1, -0.1, 0.1, -0.4, 0.25, -0.2},
		      "div");
	tu_free(&r);
	r = tu_run("relu", in, 1, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){1, 0, 3, 0, 5, 0}, "relu");
	tu_free(&r);
	r = tu_run("sqrt", &in[1], 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){sqrt(10), sqrt(20), sqrt(30)}, "sqrt");
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);

	/* sub/mul broadcast a column [2,1] against a row [3]. */
	in[0] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 1}, (double[]){1, -2});
	in[1] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){3}, (double[]){0.5, 2, 4});
	r = tu_run("sub", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){0.5, -1, -3, -2.5, -4, -6}, "sub");
	tu_free(&r);
	r = tu_run("mul", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){0.5, 2, 4, -1, -4, -8}, "mul");
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
	/* exp(1) = e, log(e) = 1, sigmoid(0) = 1/2, tanh(ln 2) = 3/5. */
	in[0] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){3}, (double[]){0, 1, 0.6931471805599453});
	r = tu_run("exp", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){1, 2.718281828459045, 2}, "exp");
	tu_free(&r);
	r = tu_run("sigmoid", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){0.5, 0.7310585786300049, 2.0 / 3},
		      "sigmoid");
	tu_free(&r);
	r = tu_run("tanh", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){0, 0.7615941559557649, 0.6}, "tanh");
	tu_free(&r);
	tu_free(&in[0]);
	in[0] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){2}, (double[]){2.718281828459045, 1});
	r = tu_run("log", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){2}, (double[]){1, 0}, "log");
	tu_free(&r);
	tu_free(&in[0]);

	/* gelu, erf form: gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.8413447460685429. */
	in[0] = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){3}, (double[]){1, 0, -1});
	r = tu_run("gelu", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){0.8413447460685429, 0, -0.15865525393145707},
		      "gelu");
	tu_free(&r);
	r = tu_run("silu", in, 1, NULL);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){0.7310585786300049, 0, -0.2689414213699951},
		      "silu");
	tu_free(&r);
	tu_free(&in[0]);
}

/* 16-bit results are rounded once, to nearest even. */
static void test_hand_16bit_rounding(void)
{
	struct dj_tensor in[2];
	struct dj_tensor r;

	/* float16 steps are 2 in [2048, 4096): 2049 ties to 2048, 2051 to 2052. */
	in[0] = tu_from(DJ_DTYPE_FLOAT16, 1, (int64_t[]){2}, (double[]){2048, 2048});
	in[1] = tu_from(DJ_DTYPE_FLOAT16, 1, (int64_t[]){2}, (double[]){1, 3});
	r = tu_run("add", in, 2, NULL);
	CU_ASSERT(tu_get(&r, 0) == 2048 && tu_get(&r, 1) == 2052);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
	/* bfloat16 steps are 2 in [256, 512). */
	in[0] = tu_from(DJ_DTYPE_BFLOAT16, 1, (int64_t[]){2}, (double[]){256, 256});
	in[1] = tu_from(DJ_DTYPE_BFLOAT16, 1, (int64_t[]){2}, (double[]){1, 3});
	r = tu_run("add", in, 2, NULL);
	CU_ASSERT(tu_get(&r, 0) == 256 && tu_get(&r, 1) == 260);
	tu_free(&r);
	/* A float16 sum of 4096 ones accumulates exactly (a float16 running sum
	 * would stop at 2048). */
	struct dj_tensor ones = tu_tensor(DJ_DTYPE_FLOAT16, 1, (int64_t[]){4096});

	for (int i = 0; i < 4096; i++)
		((uint16_t *)ones.data)[i] = 0x3c00;
	r = tu_run("sum", &ones, 1, NULL);
	CU_ASSERT_EQUAL(tu_get(&r, 0), 4096);
	tu_free(&r);
	tu_free(&ones);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

static void test_hand_integer_semantics(void)
{
	struct dj_tensor in[2];
	struct dj_tensor r;

	/* int32 add wraps modulo 2^32. */
	in[0] = tu_from(DJ_DTYPE_INT32, 1, (int64_t[]){2}, (double[]){2147483647, -7});
	in[1] = tu_from(DJ_DTYPE_INT32, 1, (int64_t[]){2}, (double[]){1, 2});
	r = tu_run("add", in, 2, NULL);
	CU_ASSERT_EQUAL(((int32_t *)r.data)[0], INT32_MIN);
	CU_ASSERT_EQUAL(((int32_t *)r.data)[1], -5);
	tu_free(&r);
	/* Integer div is true division into float32, as torch.div. */
	r = tu_run("div", in, 2, NULL);
	CU_ASSERT_EQUAL(r.desc.dtype, DJ_DTYPE_FLOAT32);
	CU_ASSERT_DOUBLE_EQUAL(((float *)r.data)[1], -3.5, 0);
	tu_free(&r);
	/* sum of int32 is int64: no overflow at 2^31. */
	r = tu_run("sum", in, 1, NULL);
	CU_ASSERT_EQUAL(r.desc.dtype, DJ_DTYPE_INT64);
	CU_ASSERT_EQUAL(r.desc.ndim, 0);
	CU_ASSERT_EQUAL(((int64_t *)r.data)[0], 2147483640LL);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
	/* int64 sum wraps modulo 2^64. */
	in[0] = tu_tensor(DJ_DTYPE_INT64, 1, (int64_t[]){2});
	((int64_t *)in[0].data)[0] = INT64_MAX;
	((int64_t *)in[0].data)[1] = 2;
	r = tu_run("sum", in, 1, NULL);
	CU_ASSERT_EQUAL(((int64_t *)r.data)[0], INT64_MIN + 1);
	tu_free(&r);
	tu_free(&in[0]);
}

static void test_hand_reductions(void)
{
	struct dj_tensor x = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 3},
				     (double[]){1, 2, 3, 4, 5, 6});
	struct tn_op_attrs a = attrs_default();
	struct dj_tensor r;

	r = tu_run("sum", &x, 1, &a);
	expect_values(&r, 0, NULL, (double[]){21}, "sum all");
	tu_free(&r);
	a.has_dim = 1;
	a.dim = 0;
	r = tu_run("sum", &x, 1, &a);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){5, 7, 9}, "sum dim 0");
	tu_free(&r);
	a.dim = -1;
	a.keepdim = 1;
	r = tu_run("mean", &x, 1, &a);
	expect_values(&r, 2, (int64_t[]){2, 1}, (double[]){2, 5}, "mean dim -1 keepdim");
	tu_free(&r);
	a.has_dim = 0;
	r = tu_run("mean", &x, 1, &a);
	expect_values(&r, 2, (int64_t[]){1, 1}, (double[]){3.5}, "mean all keepdim");
	tu_free(&r);
	/* softmax([1,2,3]) = e^i / (e + e^2 + e^3). */
	double e1 = exp(1), e2 = exp(2), e3 = exp(3), s = e1 + e2 + e3;

	r = tu_run("softmax", &x, 1, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){e1 / s, e2 / s, e3 / s, e1 / s, e2 / s,
							   e3 / s}, "softmax");
	tu_free(&r);
	/* layer_norm of [1,2,3]: mean 2, var 2/3. */
	double inv = 1 / sqrt(2.0 / 3 + 1e-5);

	r = tu_run("layer_norm", &x, 1, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){-inv, 0, inv, -inv, 0, inv},
		      "layer_norm");
	tu_free(&r);
	tu_free(&x);
}

static void test_hand_shapes(void)
{
	struct dj_tensor x = tu_from(DJ_DTYPE_INT64, 2, (int64_t[]){2, 3},
				     (double[]){1, 2, 3, 4, 5, 6});
	struct tn_op_attrs a = attrs_default();
	struct dj_tensor r, in[2];

	r = tu_run("transpose", &x, 1, NULL);
	CU_ASSERT(r.desc.ndim == 2 && r.desc.shape[0] == 3 && r.desc.shape[1] == 2);
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 4, 2, 5, 3, 6}, "transpose"), 0);
	tu_free(&r);
	a.shape_ndim = 3;
	a.shape[0] = 3;
	a.shape[1] = -1;
	a.shape[2] = 1;
	r = tu_run("reshape", &x, 1, &a);
	CU_ASSERT(r.desc.ndim == 3 && r.desc.shape[0] == 3 && r.desc.shape[1] == 2);
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 2, 3, 4, 5, 6}, "reshape"), 0);
	tu_free(&r);
	in[0] = x;
	in[1] = tu_from(DJ_DTYPE_INT64, 2, (int64_t[]){2, 1}, (double[]){7, 8});
	a = attrs_default();
	a.has_dim = 1;
	a.dim = 1;
	r = tu_run("cat", in, 2, &a);
	CU_ASSERT(r.desc.ndim == 2 && r.desc.shape[0] == 2 && r.desc.shape[1] == 4);
	CU_ASSERT_EQUAL(tu_check(&r, NULL, (int64_t[]){1, 2, 3, 7, 4, 5, 6, 8}, "cat dim 1"), 0);
	tu_free(&r);
	tu_free(&in[1]);
	tu_free(&x);
}

/* Zero-size dimensions flow through every family of operations. */
static void test_empty_tensors(void)
{
	struct dj_tensor e03 = tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){0, 3});
	struct dj_tensor row = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){3}, (double[]){1, 2, 3});
	struct tn_op_attrs a = attrs_default();
	struct dj_tensor r, in[3];

	in[0] = e03;
	in[1] = row;
	r = tu_run("add", in, 2, NULL);
	CU_ASSERT(r.desc.ndim == 2 && r.desc.shape[0] == 0 && r.desc.shape[1] == 3);
	tu_free(&r);
	a.has_dim = 1;
	a.dim = 0;
	r = tu_run("sum", &e03, 1, &a);
	expect_values(&r, 1, (int64_t[]){3}, (double[]){0, 0, 0}, "sum over an empty dim");
	tu_free(&r);
	r = tu_run("mean", &e03, 1, NULL);
	CU_ASSERT(r.desc.ndim == 0 && isnan(tu_get(&r, 0)));
	tu_free(&r);
	/* [2,0] @ [0,3] is a [2,3] of zeros; linear with 0 in-features is the bias. */
	in[0] = tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){2, 0});
	in[1] = tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){0, 3});
	r = tu_run("matmul", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){0, 0, 0, 0, 0, 0}, "empty matmul");
	tu_free(&r);
	tu_free(&in[1]);
	in[1] = tu_tensor(DJ_DTYPE_FLOAT32, 2, (int64_t[]){3, 0});
	in[2] = row;
	r = tu_run("linear", in, 3, NULL);
	expect_values(&r, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 1, 2, 3}, "empty linear");
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
	/* cat skips the empty input; transpose, softmax, reshape keep shapes. */
	in[0] = e03;
	in[1] = tu_from(DJ_DTYPE_FLOAT32, 2, (int64_t[]){1, 3}, (double[]){4, 5, 6});
	r = tu_run("cat", in, 2, NULL);
	expect_values(&r, 2, (int64_t[]){1, 3}, (double[]){4, 5, 6}, "cat with an empty input");
	tu_free(&r);
	tu_free(&in[1]);
	r = tu_run("transpose", &e03, 1, NULL);
	CU_ASSERT(r.desc.shape[0] == 3 && r.desc.shape[1] == 0);
	tu_free(&r);
	r = tu_run("softmax", &e03, 1, NULL);
	CU_ASSERT(r.desc.shape[0] == 0);
	tu_free(&r);
	a = attrs_default();
	a.shape_ndim = 2;
	a.shape[0] = 3;
	a.shape[1] = -1;
	r = tu_run("reshape", &e03, 1, &a);
	CU_ASSERT(r.desc.shape[0] == 3 && r.desc.shape[1] == 0);
	tu_free(&r);
	tu_free(&e03);
	tu_free(&row);
}

/* ---- randomized checks against naive loops ---- */

static int random_shape(int min_ndim, int max_ndim, int64_t *shape)
{
	int ndim = (int)tu_rand_range(min_ndim, max_ndim);

	for (int i = 0; i < ndim; i++)
		shape[i] = tu_rand_range(1, 5);
	return ndim;
}

/* An operand that broadcasts to out: some leading dims dropped, some set to 1. */
static int broadcast_operand(int out_ndim, const int64_t *out_shape, int64_t *shape)
{
	int drop = (int)tu_rand_range(0, out_ndim);
	int ndim = out_ndim - drop;

	for (int i = 0; i < ndim; i++)
		shape[i] = tu_rand_range(0, 2) == 0 ? 1 : out_shape[drop + i];
	return ndim;
}

/* Flat index in an operand broadcast to the output coordinates. */
static int64_t broadcast_index(const struct dj_tensor_desc *d, int out_ndim, const int64_t *coord)
{
	int64_t c[DJ_MAX_DIMS];
	int lead = out_ndim - d->ndim;

	for (int i = 0; i < d->ndim; i++)
		c[i] = d->shape[i] == 1 ? 0 : coord[lead + i];
	return tu_ravel(d->ndim, d->shape, c);
}

static double naive_binary(const char *op, double x, double y)
{
	switch (op[0]) {
	case 'a':
		return x + y;
	case 's':
		return x - y;
	case 'm':
		return x * y;
	default:
		return x / y;
	}
}

static void check_binary(const char *op, enum dj_dtype t)
{
	int64_t so[DJ_MAX_DIMS], sa[DJ_MAX_DIMS], sb[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int no = random_shape(0, 5, so);
	int na = broadcast_operand(no, so, sa), nb = broadcast_operand(no, so, sb);
	struct dj_tensor in[2] = {tu_random(t, na, sa), tu_random(t, nb, sb)};
	struct dj_tensor r = tu_run(op, in, 2, NULL);
	int64_t n = dj_tensor_numel(&r.desc);
	double *wf = calloc((size_t)n + 1, sizeof(double));
	int64_t *wi = calloc((size_t)n + 1, sizeof(int64_t));
	int ints = is_int(r.desc.dtype);

	/* The result may be smaller than so: dims that are 1 in both. */
	for (int64_t i = 0; i < n; i++) {
		tu_unravel(i, r.desc.ndim, r.desc.shape, coord);
		int64_t ia = broadcast_index(&in[0].desc, r.desc.ndim, coord);
		int64_t ib = broadcast_index(&in[1].desc, r.desc.ndim, coord);

		if (ints)
			wi[i] = (int64_t)naive_binary(op, (double)tu_get_int(&in[0], ia),
						      (double)tu_get_int(&in[1], ib));
		else
			wf[i] = naive_binary(op, tu_get(&in[0], ia), tu_get(&in[1], ib));
	}
	CU_ASSERT_EQUAL(tu_check(&r, wf, ints ? wi : NULL, op), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

static void test_random_binary(void)
{
	static const char *const ops[] = {"add", "sub", "mul", "div"};

	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int o = 0; o < 4; o++)
			for (int t = 0; t < N_DTYPES; t++)
				check_binary(ops[o], all_dtypes[t]);
}

static double naive_unary(const char *op, double x)
{
	if (!strcmp(op, "relu"))
		return x < 0 ? 0 : x;
	if (!strcmp(op, "sigmoid"))
		return 1 / (1 + exp(-x));
	if (!strcmp(op, "tanh"))
		return (exp(2 * x) - 1) / (exp(2 * x) + 1);
	if (!strcmp(op, "exp"))
		return exp(x);
	if (!strcmp(op, "log"))
		return log(x);
	if (!strcmp(op, "sqrt"))
		return pow(x, 0.5);
	if (!strcmp(op, "gelu"))
		return 0.5 * x * erfc(-x / sqrt(2));
	return x / (1 + exp(-x)); /* silu */
}

static void check_unary(const char *op, enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS];
	int ndim = random_shape(0, 4, shape);
	struct dj_tensor x = tu_random(t, ndim, shape);
	int64_t n = dj_tensor_numel(&x.desc);

	/* log and sqrt on positive inputs; negatives are checked as NaN below. */
	if (!strcmp(op, "log") || !strcmp(op, "sqrt"))
		for (int64_t i = 0; i < n; i++)
			dj_tensor_store_f64(&x, i, fabs(tu_get(&x, i)) + 0.25);
	struct dj_tensor r = tu_run(op, &x, 1, NULL);
	double *wf = calloc((size_t)n + 1, sizeof(double));
	int64_t *wi = calloc((size_t)n + 1, sizeof(int64_t));

	for (int64_t i = 0; i < n; i++) {
		wf[i] = naive_unary(op, tu_get(&x, i));
		wi[i] = (int64_t)wf[i];
	}
	CU_ASSERT_EQUAL(tu_check(&r, wf, is_int(t) ? wi : NULL, op), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	tu_free(&x);
}

static void test_random_unary(void)
{
	static const char *const ops[] = {"relu", "sigmoid", "tanh", "exp",
					  "log", "sqrt", "gelu", "silu"};

	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++)
		for (int o = 0; o < 8; o++)
			for (int t = 0; t < (o == 0 ? N_DTYPES : 3); t++)
				check_unary(ops[o], all_dtypes[t]);
}

static void test_unary_special_values(void)
{
	struct dj_tensor x = tu_from(DJ_DTYPE_FLOAT32, 1, (int64_t[]){4},
				     (double[]){-1, 0, INFINITY, NAN});
	struct dj_tensor r = tu_run("log", &x, 1, NULL);

	CU_ASSERT(isnan(tu_get(&r, 0)));
	CU_ASSERT(isinf(tu_get(&r, 1)) && tu_get(&r, 1) < 0);
	CU_ASSERT(isinf(tu_get(&r, 2)));
	CU_ASSERT(isnan(tu_get(&r, 3)));
	tu_free(&r);
	r = tu_run("sigmoid", &x, 1, NULL);
	CU_ASSERT_DOUBLE_EQUAL(tu_get(&r, 2), 1.0, 0);
	tu_free(&r);
	r = tu_run("relu", &x, 1, NULL);
	CU_ASSERT(isnan(tu_get(&r, 3)));
	tu_free(&r);
	tu_free(&x);
}

/* Reference reduction: out coordinate -> loop over the reduced dim. */
static void check_reduce(const char *op, enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, shape);
	struct dj_tensor x = tu_random(t, ndim, shape);
	struct tn_op_attrs a = attrs_default();
	int dim = (int)tu_rand_range(0, ndim - 1);

	a.has_dim = tu_rand_range(0, 3) != 0;
	a.dim = tu_rand_range(0, 1) ? dim : dim - ndim;
	a.keepdim = (int)tu_rand_range(0, 1);
	struct dj_tensor r = tu_run(op, &x, 1, &a);
	int64_t n = dj_tensor_numel(&r.desc), len = a.has_dim ? shape[dim] : dj_tensor_numel(&x.desc);
	double *wf = calloc((size_t)n + 1, sizeof(double));
	int64_t *wi = calloc((size_t)n + 1, sizeof(int64_t));

	CU_ASSERT_EQUAL(r.desc.ndim, a.keepdim ? ndim : (a.has_dim ? ndim - 1 : 0));
	for (int64_t o = 0; o < n; o++) {
		/* keepdim or not, output elements are in the same order. */
		int64_t kept[DJ_MAX_DIMS];

		for (int d = 0; d < ndim; d++)
			kept[d] = a.has_dim && d != dim ? shape[d] : 1;
		tu_unravel(o, ndim, kept, coord);
		for (int64_t j = 0; j < len; j++) {
			int64_t src = a.has_dim ? (coord[dim] = j, tu_ravel(ndim, shape, coord)) : j;

			wf[o] += tu_get(&x, src);
			wi[o] += is_int(t) ? tu_get_int(&x, src) : 0;
		}
		if (op[0] == 'm')
			wf[o] /= (double)len;
	}
	CU_ASSERT_EQUAL(tu_check(&r, wf, is_int(t) ? wi : NULL, op), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	tu_free(&x);
}

static void test_random_reductions(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++) {
		for (int t = 0; t < N_DTYPES; t++)
			check_reduce("sum", all_dtypes[t]);
		for (int t = 0; t < 3; t++)
			check_reduce("mean", all_dtypes[t]);
	}
}

static void check_softmax(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, shape);
	struct dj_tensor x = tu_random(t, ndim, shape);
	struct tn_op_attrs a = attrs_default();
	int dim = (int)tu_rand_range(0, ndim - 1);

	a.has_dim = 1;
	a.dim = dim;
	struct dj_tensor r = tu_run("softmax", &x, 1, &a);
	int64_t n = dj_tensor_numel(&x.desc);
	double *want = calloc((size_t)n + 1, sizeof(double));

	for (int64_t i = 0; i < n; i++) {
		double total = 0;

		tu_unravel(i, ndim, shape, coord);
		int64_t own = coord[dim];

		for (int64_t j = 0; j < shape[dim]; j++) {
			coord[dim] = j;
			total += exp(tu_get(&x, tu_ravel(ndim, shape, coord)));
		}
		coord[dim] = own;
		want[i] = exp(tu_get(&x, i)) / total;
	}
	CU_ASSERT_EQUAL(tu_check(&r, want, NULL, "softmax"), 0);
	free(want);
	tu_free(&r);
	tu_free(&x);
}

static void check_layer_norm(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, shape);
	struct tn_op_attrs a = attrs_default();
	int norm_ndim = (int)tu_rand_range(1, ndim);
	int n_in = (int)tu_rand_range(1, 3);
	struct dj_tensor in[3];

	a.norm_ndim = norm_ndim;
	for (int i = 0; i < norm_ndim; i++)
		a.norm_shape[i] = shape[ndim - norm_ndim + i];
	a.eps = 1e-3;
	in[0] = tu_random(t, ndim, shape);
	for (int i = 1; i < n_in; i++)
		in[i] = tu_random(t, norm_ndim, a.norm_shape);
	struct dj_tensor r = tu_run("layer_norm", in, n_in, &a);
	int64_t n = dj_tensor_numel(&in[0].desc), len = n_in > 1 ? dj_tensor_numel(&in[1].desc) : 1;
	double *want = calloc((size_t)n + 1, sizeof(double));

	if (n_in == 1)
		for (int i = 0; i < norm_ndim; i++)
			len *= a.norm_shape[i];
	for (int64_t row = 0; row < n / len; row++) {
		double s = 0, sq = 0;

		for (int64_t j = 0; j < len; j++) {
			double v = tu_get(&in[0], row * len + j);

			s += v;
			sq += v * v;
		}
		double mean = s / len, var = sq / len - mean * mean;

		for (int64_t j = 0; j < len; j++) {
			double w = n_in > 1 ? tu_get(&in[1], j) : 1, b = n_in > 2 ? tu_get(&in[2], j) : 0;

			want[row * len + j] = (tu_get(&in[0], row * len + j) - mean) /
						      sqrt(var + a.eps) * w + b;
		}
	}
	CU_ASSERT_EQUAL(tu_check(&r, want, NULL, "layer_norm"), 0);
	free(want);
	tu_free(&r);
	for (int i = 0; i < n_in; i++)
		tu_free(&in[i]);
}

static void test_random_normalisations(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++) {
		for (int t = 0; t < 3; t++) {
			check_softmax(all_dtypes[t]);
			check_layer_norm(all_dtypes[t]);
		}
	}
}

/* torch.matmul semantics, derived here from coordinates. */
static void check_matmul(enum dj_dtype t)
{
	int64_t batch[DJ_MAX_DIMS], sa[DJ_MAX_DIMS], sb[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int nbatch = random_shape(0, 3, batch);
	/* Now and then odd sizes past any small-size special case. */
	int64_t big = tu_rand_range(0, 3) == 0 ? 40 : 6;
	int64_t m = tu_rand_range(1, big), k = tu_rand_range(1, big + 1), n = tu_rand_range(1, big);
	int na = broadcast_operand(nbatch, batch, sa), nb = broadcast_operand(nbatch, batch, sb);
	int a_vec = tu_rand_range(0, 4) == 0, b_vec = tu_rand_range(0, 4) == 0;

	if (a_vec) {
		na = 0;
	} else {
		sa[na++] = m;
	}
	sa[na++] = k;
	sb[nb++] = k;
	if (b_vec)
		nb = 1;
	else
		sb[nb++] = n;
	if (b_vec)
		sb[0] = k;
	struct dj_tensor in[2] = {tu_random(t, na, sa), tu_random(t, nb, sb)};
	struct dj_tensor r = tu_run("matmul", in, 2, NULL);
	int64_t total = dj_tensor_numel(&r.desc);
	int rb = r.desc.ndim - !a_vec - !b_vec;
	double *wf = calloc((size_t)total + 1, sizeof(double));
	int64_t *wi = calloc((size_t)total + 1, sizeof(int64_t));

	for (int64_t o = 0; o < total; o++) {
		int64_t ca[DJ_MAX_DIMS] = {0}, cb[DJ_MAX_DIMS] = {0};
		int64_t i = 0, j = 0;

		tu_unravel(o, r.desc.ndim, r.desc.shape, coord);
		if (!a_vec)
			i = coord[rb];
		if (!b_vec)
			j = coord[r.desc.ndim - 1];
		int ab = in[0].desc.ndim - (a_vec ? 1 : 2), bb = in[1].desc.ndim - (b_vec ? 1 : 2);

		for (int d = 0; d < ab; d++)
			ca[d] = in[0].desc.shape[d] == 1 ? 0 : coord[rb - ab + d];
		for (int d = 0; d < bb; d++)
			cb[d] = in[1].desc.shape[d] == 1 ? 0 : coord[rb - bb + d];
		for (int64_t p = 0; p < k; p++) {
			if (!a_vec)
				ca[ab] = i;
			ca[in[0].desc.ndim - 1] = p;
			cb[bb] = p;
			if (!b_vec)
				cb[bb + 1] = j;
			int64_t ia = tu_ravel(in[0].desc.ndim, in[0].desc.shape, ca);
			int64_t ib = tu_ravel(in[1].desc.ndim, in[1].desc.shape, cb);

			wf[o] += tu_get(&in[0], ia) * tu_get(&in[1], ib);
			wi[o] += is_int(t) ? tu_get_int(&in[0], ia) * tu_get_int(&in[1], ib) : 0;
		}
	}
	CU_ASSERT_EQUAL(tu_check(&r, wf, is_int(t) ? wi : NULL, "matmul"), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	tu_free(&in[0]);
	tu_free(&in[1]);
}

static void check_linear(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS];
	int ndim = random_shape(1, 3, shape);
	int64_t k = shape[ndim - 1], n = tu_rand_range(1, 6);
	int n_in = (int)tu_rand_range(2, 3);
	struct dj_tensor in[3] = {tu_random(t, ndim, shape), tu_random(t, 2, (int64_t[]){n, k}),
				  tu_random(t, 1, (int64_t[]){n})};
	struct dj_tensor r = tu_run("linear", in, n_in, NULL);
	int64_t rows = dj_tensor_numel(&in[0].desc) / k;
	double *wf = calloc((size_t)(rows * n), sizeof(double));
	int64_t *wi = calloc((size_t)(rows * n), sizeof(int64_t));

	for (int64_t i = 0; i < rows; i++) {
		for (int64_t j = 0; j < n; j++) {
			for (int64_t p = 0; p < k; p++) {
				wf[i * n + j] += tu_get(&in[0], i * k + p) * tu_get(&in[1], j * k + p);
				wi[i * n + j] += (int64_t)(tu_get(&in[0], i * k + p) *
							   tu_get(&in[1], j * k + p));
			}
			wf[i * n + j] += n_in > 2 ? tu_get(&in[2], j) : 0;
			wi[i * n + j] += n_in > 2 ? (int64_t)tu_get(&in[2], j) : 0;
		}
	}
	CU_ASSERT_EQUAL(r.desc.shape[r.desc.ndim - 1], n);
	CU_ASSERT_EQUAL(tu_check(&r, wf, is_int(t) ? wi : NULL, "linear"), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	for (int i = 0; i < 3; i++)
		tu_free(&in[i]);
}

static void test_random_matmul_linear(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++) {
		for (int t = 0; t < N_DTYPES; t++) {
			check_matmul(all_dtypes[t]);
			check_linear(all_dtypes[t]);
		}
	}
}

static void check_transpose(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS], src[DJ_MAX_DIMS];
	int ndim = random_shape(2, 5, shape);
	struct dj_tensor x = tu_random(t, ndim, shape);
	struct tn_op_attrs a = attrs_default();
	int perm[DJ_MAX_DIMS];

	/* Fisher-Yates permutation, or a swap of two dims. */
	for (int i = 0; i < ndim; i++)
		perm[i] = i;
	if (tu_rand_range(0, 1)) {
		for (int i = ndim - 1; i > 0; i--) {
			int j = (int)tu_rand_range(0, i), tmp = perm[i];

			perm[i] = perm[j];
			perm[j] = tmp;
		}
		a.n_perm = ndim;
		memcpy(a.perm, perm, sizeof(perm));
	} else {
		a.has_dims = 1;
		a.dims[0] = (int)tu_rand_range(0, ndim - 1);
		a.dims[1] = (int)tu_rand_range(0, ndim - 1) - ndim;
		perm[a.dims[0]] = a.dims[1] + ndim;
		perm[a.dims[1] + ndim] = a.dims[0];
	}
	struct dj_tensor r = tu_run("transpose", &x, 1, &a);
	int64_t n = dj_tensor_numel(&x.desc);

	for (int64_t i = 0; i < n; i++) {
		tu_unravel(i, ndim, r.desc.shape, coord);
		for (int d = 0; d < ndim; d++)
			src[perm[d]] = coord[d];
		if (memcmp((char *)r.data + i * (int64_t)dj_dtype_size(t),
			   (char *)x.data + tu_ravel(ndim, shape, src) * (int64_t)dj_dtype_size(t),
			   dj_dtype_size(t)) != 0) {
			printf("\ntranspose: element %lld differs (seed %u)\n", (long long)i,
			       dj_test_seed());
			CU_FAIL("transpose element");
			break;
		}
	}
	tu_free(&r);
	tu_free(&x);
}

static void check_cat(enum dj_dtype t)
{
	int64_t shape[DJ_MAX_DIMS], coord[DJ_MAX_DIMS];
	int ndim = random_shape(1, 4, shape);
	int n_in = (int)tu_rand_range(1, 4), dim = (int)tu_rand_range(0, ndim - 1);
	struct dj_tensor in[4];
	struct tn_op_attrs a = attrs_default();

	for (int i = 0; i < n_in; i++) {
		int64_t s[DJ_MAX_DIMS];

		memcpy(s, shape, sizeof(s));
		s[dim] = tu_rand_range(0, 3);
		in[i] = tu_random(t, ndim, s);
	}
	a.has_dim = 1;
	a.dim = dim;
	struct dj_tensor r = tu_run("cat", in, n_in, &a);
	int64_t n = dj_tensor_numel(&r.desc);
	double *wf = calloc((size_t)n + 1, sizeof(double));
	int64_t *wi = calloc((size_t)n + 1, sizeof(int64_t));

	for (int64_t o = 0; o < n; o++) {
		int src = 0;

		tu_unravel(o, ndim, r.desc.shape, coord);
		while (coord[dim] >= in[src].desc.shape[dim])
			coord[dim] -= in[src++].desc.shape[dim];
		int64_t at = tu_ravel(ndim, in[src].desc.shape, coord);

		wf[o] = tu_get(&in[src], at);
		wi[o] = is_int(t) ? tu_get_int(&in[src], at) : 0;
	}
	CU_ASSERT_EQUAL(tu_check(&r, wf, is_int(t) ? wi : NULL, "cat"), 0);
	free(wf);
	free(wi);
	tu_free(&r);
	for (int i = 0; i < n_in; i++)
		tu_free(&in[i]);
}

static void test_random_data_movement(void)
{
	srand(dj_test_seed());
	for (int round = 0; round < ROUNDS; round++) {
		for (int t = 0; t < N_DTYPES; t++) {
			check_transpose(all_dtypes[t]);
			check_cat(all_dtypes[t]);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"op table lookup", test_table_lookup},
		{"hand: matmul, dot, linear", test_hand_matmul_and_linear},
		{"hand: every elementwise op, broadcasting", test_hand_elementwise},
		{"hand: integer wrap, int div, int32 sum to int64", test_hand_integer_semantics},
		{"hand: float16/bfloat16 rounding and accumulation", test_hand_16bit_rounding},
		{"hand: sum, mean, softmax, layer_norm", test_hand_reductions},
		{"hand: transpose, reshape, cat", test_hand_shapes},
		{"empty tensors through every family", test_empty_tensors},
		{"random: broadcast binary ops, all dtypes", test_random_binary},
		{"random: unary ops", test_random_unary},
		{"unary special values", test_unary_special_values},
		{"random: sum and mean along dims", test_random_reductions},
		{"random: softmax and layer_norm", test_random_normalisations},
		{"random: batched/broadcast matmul, linear", test_random_matmul_linear},
		{"random: transpose and cat", test_random_data_movement},
		{NULL, NULL},
	};
	dj_test_add_suite("ops", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
