/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every GPU operation against the CPU reference (tn_op_cpu) on random inputs
 * at several shapes, odd sizes included, in every dtype the operation takes.
 * The output buffer is poisoned first, so an element the GPU never wrote
 * fails the comparison; tolerances in gpu_test_util.h. Skipped (exit 77)
 * where there is no CUDA build or no GPU.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "gpu/ops/gpu_ops.h"
#include "tensor/ops.h"
#include "harness.h"
#include "gpu_test_util.h"

/* ---- elementwise ---- */

/* Pairs that broadcast; odd sizes, scalars, a tensor large enough for the
 * vector path and its tail. */
static const struct shape binary_shapes[][2] = {
	{{1, {1}}, {1, {1}}},
	{{1, {7}}, {1, {7}}},
	{{2, {33, 65}}, {2, {33, 65}}},
	{{2, {127, 129}}, {1, {129}}},
	{{3, {5, 1, 7}}, {2, {3, 1}}},
	{{0, {0}}, {2, {4, 5}}},
	{{4, {2, 3, 4, 5}}, {4, {1, 3, 1, 5}}},
	{{2, {1, 9}}, {2, {11, 1}}},
	{{1, {1000003}}, {1, {1000003}}},
	{{2, {0, 5}}, {1, {5}}},
	/* 16-byte runs along the last dimension (the vector walk) */
	{{2, {31, 64}}, {1, {64}}},
	{{3, {5, 3, 16}}, {2, {3, 1}}},
	{{1, {1024}}, {0, {0}}},
	{{2, {1, 32}}, {3, {7, 3, 32}}},
};

static void test_binary(void)
{
	static const char *const names[] = {"add", "sub", "mul", "div"};
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (size_t s = 0; s < sizeof(binary_shapes) / sizeof(binary_shapes[0]); s++)
		for (int o = 0; o < 4; o++)
			for (int d = 0; d < N_ALL; d++) {
				const struct shape *sh = binary_shapes[s];
				struct dj_tensor in[2] = {
					host_random(all_dtypes[d], sh[0].ndim, sh[0].dims, ANY),
					host_random(all_dtypes[d], sh[1].ndim, sh[1].dims,
						    o == 3 ? DIVISOR : ANY),
				};

				label(what, sizeof(what), names[o], all_dtypes[d], &in[0].desc,
				      &in[1].desc);
				check_op(names[o], in, 2, &attrs, what);
				free_host(in, 2);
			}
}

/* Random broadcastable shapes: a fresh set every run. */
static void test_binary_random_shapes(void)
{
	static const char *const names[] = {"add", "sub", "mul", "div"};
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (int c = 0; c < 60; c++) {
		int64_t out[DJ_MAX_DIMS], sa[DJ_MAX_DIMS], sb[DJ_MAX_DIMS];
		int ndim = 1 + (int)(rng_next() % 5), na = ndim, nb = ndim - (int)(rng_next() % ndim);
		int o = (int)(rng_next() % 4);
		enum dj_dtype dtype = all_dtypes[rng_next() % N_ALL];

		for (int i = 0; i < ndim; i++)
			out[i] = 1 + (int64_t)(rng_next() % 9);
		for (int i = 0; i < na; i++)
			sa[i] = rng_next() % 3 == 0 ? 1 : out[i];
		for (int i = 0; i < nb; i++)
			sb[i] = rng_next() % 3 == 0 ? 1 : out[ndim - nb + i];
		struct dj_tensor in[2] = {host_random(dtype, na, sa, ANY),
					  host_random(dtype, nb, sb, o == 3 ? DIVISOR : ANY)};

		label(what, sizeof(what), names[o], dtype, &in[0].desc, &in[1].desc);
		check_op(names[o], in, 2, &attrs, what);
		free_host(in, 2);
	}
}

static const struct shape unary_shapes[] = {
	{0, {0}}, {1, {1}}, {1, {1000003}}, {2, {17, 31}}, {3, {3, 0, 2}},
};

static void test_unary(void)
{
	static const char *const names[] = {"relu", "sigmoid", "tanh", "exp",
					     "log",  "sqrt",    "gelu", "silu"};
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (int o = 0; o < 8; o++)
		for (size_t s = 0; s < sizeof(unary_shapes) / sizeof(unary_shapes[0]); s++)
			for (int d = 0; d < (o == 0 ? N_ALL : N_FLOAT); d++) {
				enum dj_dtype dtype = o == 0 ? all_dtypes[d] : float_dtypes[d];
				enum range r = o == 4 || o == 5 ? POSITIVE : ANY;
				struct dj_tensor x = host_random(dtype, unary_shapes[s].ndim,
								 unary_shapes[s].dims, r);

				label(what, sizeof(what), names[o], dtype, &x.desc, NULL);
				check_op(names[o], &x, 1, &attrs, what);
				free(x.data);
			}
}

/* ---- reductions and normalisations ---- */

struct axis_case {
	struct shape shape;
	int has_dim, dim, keepdim;
};

/* Whole tensor (split across blocks), short and long rows, strided columns
 * with few and many outputs, keepdim. */
static const struct axis_case reduce_cases[] = {
	{{1, {1}}, 0, 0, 0},
	{{3, {7, 300, 5}}, 0, 0, 0},
	{{1, {3000001}}, 0, 0, 0},
	{{3, {7, 300, 5}}, 1, 1, 0},
	{{3, {7, 300, 5}}, 1, -1, 1},
	{{3, {7, 300, 5}}, 1, 0, 1},
	{{2, {3, 100003}}, 1, -1, 0},
	{{2, {100003, 3}}, 1, 0, 0},
	{{2, {5, 40}}, 1, 1, 0},
	{{2, {4099, 129}}, 1, -1, 0},
	{{2, {0, 7}}, 1, 1, 0},
	{{2, {0, 7}}, 0, 0, 0}, /* empty: sum 0, mean NaN */
	{{2, {5, 0}}, 1, 1, 1},
};

static void attrs_for(const struct axis_case *c, struct tn_op_attrs *a)
{
	tn_op_attrs_init(a);
	a->has_dim = c->has_dim;
	a->dim = c->dim;
	a->keepdim = c->keepdim;
}

static void test_reduce(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(reduce_cases) / sizeof(reduce_cases[0]); c++)
		for (int mean = 0; mean < 2; mean++)
			for (int d = 0; d < (mean ? N_FLOAT : N_ALL); d++) {
				enum dj_dtype dtype = mean ? float_dtypes[d] : all_dtypes[d];
				const struct axis_case *rc = &reduce_cases[c];
				struct dj_tensor x = host_random(dtype, rc->shape.ndim,
								 rc->shape.dims, ANY);

				attrs_for(rc, &attrs);
				label(what, sizeof(what), mean ? "mean" : "sum", dtype, &x.desc,
				      NULL);
				snprintf(what + strlen(what), sizeof(what) - strlen(what),
					 " dim %d/%d keepdim %d", rc->has_dim, rc->dim, rc->keepdim);
				check_op(mean ? "mean" : "sum", &x, 1, &attrs, what);
				free(x.data);
			}
}

static const struct axis_case softmax_cases[] = {
	{{2, {7, 301}}, 1, -1, 0},   {{3, {4, 33, 9}}, 1, 1, 0}, {{2, {1000, 10}}, 1, -1, 0},
	{{2, {3, 5000}}, 1, -1, 0},  {{2, {65, 3}}, 1, 0, 0},    {{1, {1}}, 1, 0, 0},
	{{3, {2, 3, 4097}}, 0, 0, 0},
	{{2, {3, 20000}}, 1, -1, 0}, /* too long for the shared-memory row cache */
};

static void test_softmax(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(softmax_cases) / sizeof(softmax_cases[0]); c++)
		for (int d = 0; d < N_FLOAT; d++) {
			const struct axis_case *sc = &softmax_cases[c];
			struct dj_tensor x = host_random(float_dtypes[d], sc->shape.ndim,
							 sc->shape.dims, ANY);

			attrs_for(sc, &attrs);
			/* Larger logits make the max subtraction matter. */
			for (int64_t i = 0; i < dj_tensor_numel(&x.desc); i += 7)
				set_value(&x, i, get_value(&x, i) * 20);
			label(what, sizeof(what), "softmax", float_dtypes[d], &x.desc, NULL);
			check_op("softmax", &x, 1, &attrs, what);
			free(x.data);
		}
}

static void test_layer_norm(void)
{
	static const struct shape shapes[] = {{2, {7, 301}}, {3, {3, 4, 33}}, {2, {1000, 16}},
					      {2, {2, 4096}}, {1, {5}}, {2, {2, 13001}}};
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int d = 0; d < N_FLOAT; d++)
			for (int n_in = 1; n_in <= 3; n_in++) {
				enum dj_dtype dtype = float_dtypes[d];
				const struct shape *sh = &shapes[s];
				/* The 3-D case normalises its last two dims. */
				int norm_ndim = sh->ndim == 3 ? 2 : 1;
				const int64_t *norm = sh->dims + sh->ndim - norm_ndim;
				struct dj_tensor in[3] = {
					host_random(dtype, sh->ndim, sh->dims, ANY),
					host_random(dtype, norm_ndim, norm, ANY),
					host_random(dtype, norm_ndim, norm, ANY),
				};

				tn_op_attrs_init(&attrs);
				attrs.norm_ndim = norm_ndim;
				memcpy(attrs.norm_shape, norm, sizeof(int64_t) * norm_ndim);
				attrs.eps = n_in == 2 ? 1e-3 : 1e-5;
				label(what, sizeof(what), "layer_norm", dtype, &in[0].desc, NULL);
				snprintf(what + strlen(what), sizeof(what) - strlen(what),
					 " inputs %d", n_in);
				check_op("layer_norm", in, n_in, &attrs, what);
				free_host(in, 3);
			}
}

/* ---- layout ---- */

struct transpose_case {
	struct shape shape;
	int has_dims, dims[2];
	int n_perm, perm[DJ_MAX_DIMS];
};

static const struct transpose_case transpose_cases[] = {
	{{2, {37, 65}}, 0, {0, 0}, 0, {0}},                  /* tiled */
	{{3, {3, 37, 65}}, 0, {0, 0}, 0, {0}},               /* batched tiles */
	{{2, {1, 9}}, 0, {0, 0}, 0, {0}},
	{{1, {9}}, 0, {0, 0}, 0, {0}},
	{{3, {4, 5, 6}}, 1, {0, 2}, 0, {0}},
	{{3, {5, 6, 7}}, 0, {0, 0}, 3, {2, 0, 1}},
	{{4, {2, 3, 5, 7}}, 0, {0, 0}, 4, {3, 1, 0, 2}},
	{{2, {1025, 33}}, 1, {-1, -2}, 0, {0}},
};

static void test_transpose(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(transpose_cases) / sizeof(transpose_cases[0]); c++)
		for (int d = 0; d < N_ALL; d++) {
			const struct transpose_case *tc = &transpose_cases[c];
			struct dj_tensor x = host_random(all_dtypes[d], tc->shape.ndim,
							 tc->shape.dims, ANY);

			tn_op_attrs_init(&attrs);
			attrs.has_dims = tc->has_dims;
			memcpy(attrs.dims, tc->dims, sizeof(attrs.dims));
			attrs.n_perm = tc->n_perm;
			memcpy(attrs.perm, tc->perm, sizeof(attrs.perm));
			label(what, sizeof(what), "transpose", all_dtypes[d], &x.desc, NULL);
			check_op("transpose", &x, 1, &attrs, what);
			free(x.data);
		}
}

static void test_reshape(void)
{
	static const int64_t shape[] = {6, 35};
	struct tn_op_attrs attrs;
	char what[256];

	for (int d = 0; d < N_ALL; d++) {
		struct dj_tensor x = host_random(all_dtypes[d], 2, shape, ANY);

		tn_op_attrs_init(&attrs);
		attrs.shape_ndim = 3;
		attrs.shape[0] = -1;
		attrs.shape[1] = 7;
		attrs.shape[2] = 5;
		label(what, sizeof(what), "reshape", all_dtypes[d], &x.desc, NULL);
		check_op("reshape", &x, 1, &attrs, what);
		free(x.data);
	}
}

static void test_cat(void)
{
	static const int64_t a[] = {3, 4, 5}, b[] = {3, 1, 5}, c[] = {3, 7, 5};
	static const int64_t a0[] = {2, 4, 5}, c2[] = {3, 4, 9};
	struct tn_op_attrs attrs;
	char what[256];

	for (int d = 0; d < N_ALL; d++) {
		enum dj_dtype dt = all_dtypes[d];
		struct dj_tensor mid[3] = {host_random(dt, 3, a, ANY), host_random(dt, 3, b, ANY),
					   host_random(dt, 3, c, ANY)};
		struct dj_tensor first[2] = {host_random(dt, 3, a, ANY),
					     host_random(dt, 3, a0, ANY)};
		struct dj_tensor last[2] = {host_random(dt, 3, a, ANY),
					    host_random(dt, 3, c2, ANY)};

		tn_op_attrs_init(&attrs);
		attrs.has_dim = 1;
		attrs.dim = 1;
		label(what, sizeof(what), "cat dim 1", dt, &mid[0].desc, &mid[2].desc);
		check_op("cat", mid, 3, &attrs, what);
		attrs.dim = 0;
		label(what, sizeof(what), "cat dim 0", dt, &first[0].desc, &first[1].desc);
		check_op("cat", first, 2, &attrs, what);
		check_op("cat", first, 1, &attrs, what);
		attrs.dim = -1;
		label(what, sizeof(what), "cat dim -1", dt, &last[0].desc, &last[1].desc);
		check_op("cat", last, 2, &attrs, what);
		free_host(mid, 3);
		free_host(first, 2);
		free_host(last, 2);
	}
}

/* ---- matmul, linear ---- */

static const struct shape matmul_shapes[][2] = {
	{{2, {64, 48}}, {2, {48, 80}}},
	{{2, {33, 17}}, {2, {17, 65}}},
	{{1, {17}}, {2, {17, 5}}},
	{{2, {5, 17}}, {1, {17}}},
	{{1, {129}}, {1, {129}}},
	{{3, {3, 33, 17}}, {3, {3, 17, 9}}},
	{{4, {2, 1, 5, 7}}, {3, {3, 7, 4}}},
	{{3, {4, 5, 7}}, {2, {7, 3}}},
	{{2, {5, 7}}, {3, {4, 7, 3}}},
	{{1, {7}}, {3, {3, 7, 4}}},
	{{2, {3, 0}}, {2, {0, 4}}},
	{{2, {1, 300}}, {2, {300, 1}}},
	{{2, {1048592, 2}}, {2, {2, 3}}}, /* more row tiles than a grid's y extent */
};

static void test_matmul(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (size_t s = 0; s < sizeof(matmul_shapes) / sizeof(matmul_shapes[0]); s++)
		for (int d = 0; d < N_ALL; d++) {
			const struct shape *sh = matmul_shapes[s];
			struct dj_tensor in[2] = {
				host_random(all_dtypes[d], sh[0].ndim, sh[0].dims, ANY),
				host_random(all_dtypes[d], sh[1].ndim, sh[1].dims, ANY),
			};

			label(what, sizeof(what), "matmul", all_dtypes[d], &in[0].desc,
			      &in[1].desc);
			check_op("matmul", in, 2, &attrs, what);
			free_host(in, 2);
		}
}

static void test_linear(void)
{
	static const struct shape xs[] = {{2, {33, 17}}, {3, {2, 5, 17}}, {1, {17}},
					  {2, {256, 17}}};
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (size_t s = 0; s < sizeof(xs) / sizeof(xs[0]); s++)
		for (int d = 0; d < N_ALL; d++)
			for (int n_in = 2; n_in <= 3; n_in++) {
				/* 16 out-features: the bias add takes the vector walk */
				int64_t out_features = s % 2 ? 16 : 9;
				int64_t w[] = {out_features, 17}, bias[] = {out_features};
				enum dj_dtype dt = all_dtypes[d];
				struct dj_tensor in[3] = {host_random(dt, xs[s].ndim, xs[s].dims, ANY),
							  host_random(dt, 2, w, ANY),
							  host_random(dt, 1, bias, ANY)};

				label(what, sizeof(what), "linear", dt, &in[0].desc, &in[1].desc);
				snprintf(what + strlen(what), sizeof(what) - strlen(what),
					 " inputs %d", n_in);
				check_op("linear", in, n_in, &attrs, what);
				free_host(in, 3);
			}
}

/* ---- bad input and the allocating form ---- */


static void test_bad_input(void)
{
	static const int64_t s34[] = {3, 4}, s5[] = {5}, s45[] = {4, 5};
	struct dj_tensor a = gpu_random(DJ_DTYPE_FLOAT32, 2, s34);
	struct dj_tensor b = gpu_random(DJ_DTYPE_FLOAT32, 1, s5);
	struct dj_tensor i = gpu_random(DJ_DTYPE_INT32, 2, s34);
	struct dj_tensor m = gpu_random(DJ_DTYPE_FLOAT32, 2, s45);
	struct dj_tensor host = a, pair[2];
	struct tn_op_attrs attrs;

	attrs_default(&attrs);
	host.mem = DJ_MEM_HOST;
	expect_error(NULL, &a, 1, &attrs, -DJ_EUNKNOWN_OP, "");
	pair[0] = a, pair[1] = b;
	expect_error(tn_op_find("add"), pair, 2, &attrs, -DJ_ESHAPE, "add");
	pair[0] = a, pair[1] = i;
	expect_error(tn_op_find("mul"), pair, 2, &attrs, -DJ_EDTYPE, "mul");
	expect_error(tn_op_find("log"), &i, 1, &attrs, -DJ_EDTYPE, "log");
	pair[0] = a, pair[1] = a;
	expect_error(tn_op_find("matmul"), pair, 2, &attrs, -DJ_ESHAPE, "matmul");
	expect_error(tn_op_find("relu"), &host, 1, &attrs, -EINVAL, "not in GPU memory");
	pair[0] = a, pair[1] = a;
	expect_error(tn_op_find("relu"), pair, 2, &attrs, -EINVAL, "relu");
	attrs.has_dim = 1;
	attrs.dim = 5;
	expect_error(tn_op_find("sum"), &a, 1, &attrs, -DJ_ESHAPE, "sum");

	/* A wrong output description is refused by the caller-allocates form. */
	struct dj_tensor out = {.desc = a.desc, .mem = DJ_MEM_GPU, .data = m.data};
	char err[TN_OP_ERR_LEN] = "";

	pair[0] = a, pair[1] = m;
	attrs_default(&attrs);
	CU_ASSERT_EQUAL(djg_ops_run(gpu, tn_op_find("matmul"), pair, 2, &attrs, &out, err,
				       sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "output"));

	/* After all that the context still computes. */
	struct dj_tensor prod;
	CU_ASSERT_EQUAL(djg_ops_execute(gpu, tn_op_find("matmul"), pair, 2, &attrs, &prod,
					   err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(prod.desc.shape[0], 3);
	CU_ASSERT_EQUAL(prod.desc.shape[1], 5);
	CU_ASSERT_EQUAL(prod.mem, DJ_MEM_GPU);
	CU_ASSERT_EQUAL(djg_ops_sync(gpu), 0);
	djg_ops_free(gpu, prod.data);
	gpu_release(&a);
	gpu_release(&b);
	gpu_release(&i);
	gpu_release(&m);
}

/* A chain through the allocating form, compared with the same chain on the
 * CPU: x @ w + bias, relu, sum over rows (the demo's shape of work). */
static void test_chain(void)
{
	static const int64_t sx[] = {100, 100}, sb[] = {100};
	struct tn_op_attrs attrs, rows;
	struct dj_tensor x = host_random(DJ_DTYPE_FLOAT32, 2, sx, ANY);
	struct dj_tensor w = host_random(DJ_DTYPE_FLOAT32, 2, sx, ANY);
	struct dj_tensor bias = host_random(DJ_DTYPE_FLOAT32, 1, sb, ANY);
	struct dj_tensor gx = to_gpu(&x), gw = to_gpu(&w), gb = to_gpu(&bias);
	struct dj_tensor cpu[4], dev[4], in[2];
	char err[TN_OP_ERR_LEN];

	attrs_default(&attrs);
	tn_op_attrs_init(&rows);
	rows.has_dim = 1;
	rows.dim = 1;
	in[0] = x, in[1] = w;
	CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(tn_op_find("matmul"), in, 2, &attrs, &cpu[0], err,
					      sizeof(err)), 0);
	in[0] = cpu[0], in[1] = bias;
	CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(tn_op_find("add"), in, 2, &attrs, &cpu[1], err,
					      sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(tn_op_find("relu"), &cpu[1], 1, &attrs, &cpu[2],
					      err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(tn_op_find("sum"), &cpu[2], 1, &rows, &cpu[3], err,
					      sizeof(err)), 0);
	in[0] = gx, in[1] = gw;
	CU_ASSERT_EQUAL_FATAL(djg_ops_execute(gpu, tn_op_find("matmul"), in, 2, &attrs,
						 &dev[0], err, sizeof(err)), 0);
	in[0] = dev[0], in[1] = gb;
	CU_ASSERT_EQUAL_FATAL(djg_ops_execute(gpu, tn_op_find("add"), in, 2, &attrs, &dev[1],
						 err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(djg_ops_execute(gpu, tn_op_find("relu"), &dev[1], 1, &attrs,
						 &dev[2], err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(djg_ops_execute(gpu, tn_op_find("sum"), &dev[2], 1, &rows,
						 &dev[3], err, sizeof(err)), 0);

	struct dj_tensor got = host_tensor(DJ_DTYPE_FLOAT32, 1, sb);
	CU_ASSERT_EQUAL(djg_ops_copy_out(gpu, got.data, dev[3].data, 100 * sizeof(float)), 0);
	CU_ASSERT(elements_match(&got, &cpu[3], "chain matmul+add+relu+sum", TN_OP_SUM));
	free(got.data);
	for (int k = 0; k < 4; k++) {
		djg_ops_free(gpu, dev[k].data);
		dj_tensor_free_host(&cpu[k]);
	}
	gpu_release(&gx);
	gpu_release(&gw);
	gpu_release(&gb);
	free(x.data);
	free(w.data);
	free(bias.data);
}

/*
 * Every operand one element past an aligned address: the 16-byte vector
 * paths must step aside (flat, broadcast walk, rows) and linear must fall
 * back from the fused cuBLASLt path, all with the same results.
 */
static void test_unaligned(void)
{
	static const int64_t s2[] = {33, 64}, row[] = {64}, big[] = {1000}, sm[] = {7, 256};
	static const int64_t x[] = {33, 17}, w[] = {16, 17}, bias[] = {16}, k9[] = {17, 9};
	struct tn_op_attrs attrs;
	char what[256];

	misalign = 1;
	for (int d = 0; d < N_FLOAT; d++) {
		enum dj_dtype dt = float_dtypes[d];
		struct dj_tensor full[2] = {host_random(dt, 2, s2, ANY), host_random(dt, 2, s2, ANY)};
		struct dj_tensor with_row[2] = {host_random(dt, 2, s2, ANY),
						host_random(dt, 1, row, ANY)};
		struct dj_tensor flat = host_random(dt, 1, big, ANY), rows = host_random(dt, 2, sm, ANY);
		struct dj_tensor lin[3] = {host_random(dt, 2, x, ANY), host_random(dt, 2, w, ANY),
					   host_random(dt, 1, bias, ANY)};
		struct dj_tensor mm[2] = {lin[0], host_random(dt, 2, k9, ANY)};

		snprintf(what, sizeof(what), "unaligned %s", dj_dtype_name(dt));
		attrs_default(&attrs);
		check_op("add", full, 2, &attrs, what);
		check_op("mul", with_row, 2, &attrs, what);
		check_op("relu", &flat, 1, &attrs, what);
		check_op("exp", &flat, 1, &attrs, what);
		check_op("layer_norm", &rows, 1, &attrs, what);
		check_op("linear", lin, 3, &attrs, what);
		check_op("matmul", mm, 2, &attrs, what);
		check_op("sum", &flat, 1, &attrs, what);
		attrs.has_dim = 1;
		attrs.dim = -1;
		check_op("softmax", &rows, 1, &attrs, what);
		free_host(full, 2);
		free_host(with_row, 2);
		free_host(lin, 3);
		free(mm[1].data);
		free(flat.data);
		free(rows.data);
	}
	misalign = 0;
}

/* ---- several contexts on several threads: requests in flight at once ---- */

#define WORKERS 4
#define WORKER_ROUNDS 25

struct worker {
	uint64_t rng;
	int rounds_ok;
	char error[TN_OP_ERR_LEN + 64];
};

/* linear(x [m,k], W [n,k], b [n]) then relu, resident on this thread's own
 * context, against the same chain on the CPU. 0 when the results agree. */
static int worker_round(struct djg_ops *g, struct worker *w)
{
	int64_t m = 1 + rng_step(&w->rng) % 64, k = 1 + rng_step(&w->rng) % 64;
	int64_t n = 1 + rng_step(&w->rng) % 64;
	int64_t sx[] = {m, k}, sw[] = {n, k}, sb[] = {n};
	struct dj_tensor host[3] = {host_random_with(&w->rng, DJ_DTYPE_FLOAT32, 2, sx, ANY),
				    host_random_with(&w->rng, DJ_DTYPE_FLOAT32, 2, sw, ANY),
				    host_random_with(&w->rng, DJ_DTYPE_FLOAT32, 1, sb, ANY)};
	struct dj_tensor dev[3], lin, act, cpu_lin, cpu_act, got;
	struct tn_op_attrs attrs;
	double ratio;
	int rc = 0;

	memset(dev, 0, sizeof(dev));
	memset(&lin, 0, sizeof(lin));
	act = cpu_lin = cpu_act = got = lin;
	tn_op_attrs_init(&attrs);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = upload_with(g, &host[i], &dev[i]);
	if (rc == 0)
		rc = djg_ops_execute(g, tn_op_find("linear"), dev, 3, &attrs, &lin, w->error,
					sizeof(w->error));
	if (rc == 0)
		rc = djg_ops_execute(g, tn_op_find("relu"), &lin, 1, &attrs, &act, w->error,
					sizeof(w->error));
	if (rc == 0)
		rc = tn_op_cpu_alloc(tn_op_find("linear"), host, 3, &attrs, &cpu_lin, w->error,
				     sizeof(w->error));
	if (rc == 0)
		rc = tn_op_cpu_alloc(tn_op_find("relu"), &cpu_lin, 1, &attrs, &cpu_act, w->error,
				     sizeof(w->error));
	if (rc == 0) {
		got = (struct dj_tensor){.desc = cpu_act.desc, .mem = DJ_MEM_HOST,
					 .data = malloc(dj_tensor_nbytes(&cpu_act.desc) + 1)};
		rc = got.data ? djg_ops_copy_out(g, got.data, act.data,
						    dj_tensor_nbytes(&cpu_act.desc)) : -ENOMEM;
	}
	if (rc == 0 && first_mismatch(&got, &cpu_act, &ratio) >= 0) {
		snprintf(w->error, sizeof(w->error), "linear+relu [%lld,%lld]x[%lld,%lld]^T differs",
			 (long long)m, (long long)k, (long long)n, (long long)k);
		rc = -EIO;
	}
	for (int i = 0; i < 3; i++) {
		djg_ops_free(g, dev[i].data);
		free(host[i].data);
	}
	djg_ops_free(g, lin.data);
	djg_ops_free(g, act.data);
	if (cpu_lin.data)
		dj_tensor_free_host(&cpu_lin);
	if (cpu_act.data)
		dj_tensor_free_host(&cpu_act);
	free(got.data);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct djg_ops *g;
	int rc = djg_ops_create(0, &g);

	if (rc != 0) {
		snprintf(w->error, sizeof(w->error), "create: %s", dj_strerror(rc));
		return NULL;
	}
	while (w->rounds_ok < WORKER_ROUNDS && worker_round(g, w) == 0)
		w->rounds_ok++;
	djg_ops_destroy(g);
	return NULL;
}

static void test_threads(void)
{
	struct worker workers[WORKERS];
	pthread_t threads[WORKERS];

	for (int i = 0; i < WORKERS; i++) {
		workers[i] = (struct worker){.rng = rng_next() | 1};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(threads[i], NULL);
		if (workers[i].rounds_ok != WORKER_ROUNDS)
			printf("\n  worker %d: %s (replay with DJ_TEST_SEED=%u)\n", i,
			       workers[i].error, dj_test_seed());
		CU_ASSERT_EQUAL(workers[i].rounds_ok, WORKER_ROUNDS);
	}
}

int main(int argc, char **argv)
{
	static const struct dj_test_case tests[] = {
		{"binary ops, fixed shapes", test_binary},
		{"binary ops, random shapes", test_binary_random_shapes},
		{"unary ops", test_unary},
		{"sum and mean", test_reduce},
		{"softmax", test_softmax},
		{"layer_norm", test_layer_norm},
		{"transpose", test_transpose},
		{"reshape", test_reshape},
		{"cat", test_cat},
		{"matmul", test_matmul},
		{"linear", test_linear},
		{"bad input", test_bad_input},
		{"chain with allocated outputs", test_chain},
		{"misaligned operands", test_unaligned},
		{"four contexts on four threads", test_threads},
		{NULL, NULL},
	};
	return gpu_test_main(argc, argv, "gpu_ops", tests);
}
