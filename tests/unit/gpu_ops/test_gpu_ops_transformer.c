/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operations a decoder-only transformer adds, on the GPU against the CPU
 * reference (tn_op_cpu): embedding (and its index check: an error, never a
 * read out of bounds), narrow, slice_write (in place and into a copy),
 * argmax (ties, NaN, both kernels), rms_norm (cached and long rows) and the
 * fused scaled_dot_product_attention: decode (L = 1) with long key ranges
 * split across blocks, prefill with and without the causal mask, odd head
 * sizes, value dims over several blocks, broadcast batch dims, no keys.
 * Outputs are poisoned first; tolerances as in gpu_test_util.h. Skipped
 * (exit 77) where there is no CUDA build or no GPU.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "harness.h"
#include "gpu_test_util.h"

/* ---- embedding ---- */

struct embedding_case {
	struct shape idx;
	int64_t rows, dim;
};

/* Row widths that take 16-, 8-, 4- and 2-byte accesses; 0-d and empty
 * indices; a long index list (many blocks). */
static const struct embedding_case embedding_cases[] = {
	{{2, {3, 5}}, 11, 64},  {{1, {7}}, 4, 3},       {{0, {0}}, 9, 16},
	{{1, {0}}, 9, 16},      {{3, {2, 2, 3}}, 6, 1}, {{1, {100003}}, 257, 8},
	{{2, {4, 2}}, 1, 4096}, {{1, {5}}, 3, 0},
};

static void test_embedding(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	attrs_default(&attrs);
	for (size_t c = 0; c < sizeof(embedding_cases) / sizeof(embedding_cases[0]); c++)
		for (int d = 0; d < N_ALL; d++)
			for (int it = 0; it < 2; it++) {
				const struct embedding_case *ec = &embedding_cases[c];
				enum dj_dtype idt = it ? DJ_DTYPE_INT64 : DJ_DTYPE_INT32;
				int64_t w_shape[2] = {ec->rows, ec->dim};
				struct dj_tensor in[2] = {host_tensor(idt, ec->idx.ndim, ec->idx.dims),
							  host_random(all_dtypes[d], 2, w_shape, ANY)};

				for (int64_t i = 0; i < dj_tensor_numel(&in[0].desc); i++)
					set_value(&in[0], i, (double)(rng_next() % (uint64_t)ec->rows));
				label(what, sizeof(what), "embedding", all_dtypes[d], &in[0].desc,
				      &in[1].desc);
				snprintf(what + strlen(what), sizeof(what) - strlen(what), " %s indices",
					 dj_dtype_name(idt));
				check_op("embedding", in, 2, &attrs, what);
				free_host(in, 2);
			}
}

/* The CPU's message, the same code, and the context keeps working. */
static void test_embedding_index_errors(void)
{
	static const double bad[][4] = {{0, 1, 7, 2}, {-1, 0, 0, 0}, {3, 3, 3, -5}};
	static const int64_t idx_shape[] = {4}, w_shape[] = {7, 32};
	struct tn_op_attrs attrs;

	attrs_default(&attrs);
	for (int c = 0; c < 3; c++) {
		struct dj_tensor h_in[2] = {host_tensor(c == 1 ? DJ_DTYPE_INT32 : DJ_DTYPE_INT64, 1,
							idx_shape),
					    host_random(DJ_DTYPE_FLOAT32, 2, w_shape, ANY)};
		struct dj_tensor want, d_in[2];
		char cpu_err[TN_OP_ERR_LEN] = "";

		for (int i = 0; i < 4; i++)
			set_value(&h_in[0], i, bad[c][i]);
		CU_ASSERT_EQUAL(tn_op_cpu_alloc(tn_op_find("embedding"), h_in, 2, &attrs, &want,
						cpu_err, sizeof(cpu_err)), -ERANGE);
		d_in[0] = to_gpu(&h_in[0]);
		d_in[1] = to_gpu(&h_in[1]);
		expect_error(tn_op_find("embedding"), d_in, 2, &attrs, -ERANGE, cpu_err);
		free_gpu_tensors(d_in, 2);
		free_host(h_in, 2);
	}
	/* still computing */
	struct dj_tensor ok[2] = {host_tensor(DJ_DTYPE_INT64, 1, idx_shape),
				  host_random(DJ_DTYPE_FLOAT32, 2, w_shape, ANY)};

	for (int i = 0; i < 4; i++)
		set_value(&ok[0], i, 6 - i);
	check_op("embedding", ok, 2, &attrs, "embedding after errors");
	free_host(ok, 2);
}

/* ---- narrow and slice_write ---- */

struct slice_case {
	struct shape big;
	int dim;
	int64_t start, len;
};

static const struct slice_case slice_cases[] = {
	{{3, {2, 8, 4}}, 1, 3, 2},     {{3, {2, 8, 4}}, -2, -3, 3},  {{2, {5, 7}}, 0, 1, 4},
	{{2, {5, 7}}, 1, 0, 7},        {{1, {1000}}, 0, 999, 1},     {{2, {5, 7}}, 1, 7, 0},
	{{4, {2, 3, 64, 16}}, 2, 40, 24}, {{2, {33, 65}}, -1, -65, 1},
};

static void slice_attrs(const struct slice_case *sc, int narrow, struct tn_op_attrs *a)
{
	tn_op_attrs_init(a);
	a->has_dim = a->has_start = 1;
	a->has_length = narrow;
	a->dim = sc->dim;
	a->start = sc->start;
	a->length = sc->len;
}

static void test_narrow(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(slice_cases) / sizeof(slice_cases[0]); c++)
		for (int d = 0; d < N_ALL; d++) {
			const struct slice_case *sc = &slice_cases[c];
			struct dj_tensor x = host_random(all_dtypes[d], sc->big.ndim, sc->big.dims, ANY);

			slice_attrs(sc, 1, &attrs);
			label(what, sizeof(what), "narrow", all_dtypes[d], &x.desc, NULL);
			check_op("narrow", &x, 1, &attrs, what);
			free(x.data);
		}
}

/* The small tensor of a slice case: big with len along dim. */
static struct shape slice_shape(const struct slice_case *sc)
{
	struct shape s = sc->big;
	int dim = sc->dim < 0 ? sc->dim + s.ndim : sc->dim;

	s.dims[dim] = sc->len;
	return s;
}

/* Into a fresh output (a copy of dst with the slice written), through
 * check_op; then in place: the output is dst's own memory. */
static void test_slice_write(void)
{
	struct tn_op_attrs attrs;
	char what[256], err[TN_OP_ERR_LEN];

	for (size_t c = 0; c < sizeof(slice_cases) / sizeof(slice_cases[0]); c++)
		for (int d = 0; d < N_ALL; d++) {
			const struct slice_case *sc = &slice_cases[c];
			struct shape small = slice_shape(sc);
			enum dj_dtype dt = all_dtypes[d];
			struct dj_tensor in[2] = {host_random(dt, sc->big.ndim, sc->big.dims, ANY),
						  host_random(dt, small.ndim, small.dims, ANY)};
			struct dj_tensor want, got, dev[2];

			slice_attrs(sc, 0, &attrs);
			label(what, sizeof(what), "slice_write", dt, &in[0].desc, &in[1].desc);
			check_op("slice_write", in, 2, &attrs, what);

			CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(tn_op_find("slice_write"), in, 2, &attrs,
							      &want, err, sizeof(err)), 0);
			dev[0] = to_gpu(&in[0]);
			dev[1] = to_gpu(&in[1]);
			CU_ASSERT_EQUAL(djg_ops_run(gpu, tn_op_find("slice_write"), dev, 2, &attrs,
						    &dev[0], err, sizeof(err)), 0);
			got = host_tensor(dt, sc->big.ndim, sc->big.dims);
			CU_ASSERT_EQUAL(djg_ops_copy_out(gpu, got.data, dev[0].data,
							 dj_tensor_nbytes(&got.desc)), 0);
			CU_ASSERT(memcmp(got.data, want.data, dj_tensor_nbytes(&got.desc)) == 0);
			free(got.data);
			dj_tensor_free_host(&want);
			free_gpu_tensors(dev, 2);
			free_host(in, 2);
		}
}

/* ---- argmax ---- */

struct argmax_case {
	struct shape shape;
	int has_dim, dim, keepdim;
};

/* Block per row (inner 1, len >= 64), thread per output (strided or short
 * rows), the whole tensor, 0-d. */
static const struct argmax_case argmax_cases[] = {
	{{2, {8, 4096}}, 1, -1, 0}, {{2, {3, 100003}}, 1, 1, 1}, {{3, {4, 70, 5}}, 1, 1, 0},
	{{2, {17, 9}}, 1, -1, 0},   {{2, {129, 3}}, 1, 0, 1},    {{2, {300, 301}}, 0, 0, 0},
	{{0, {0}}, 0, 0, 0},        {{1, {1}}, 1, 0, 0},         {{3, {2, 0, 3}}, 1, 2, 0},
};

static void test_argmax(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(argmax_cases) / sizeof(argmax_cases[0]); c++)
		for (int d = 0; d < N_ALL; d++)
			for (int ties = 0; ties < 2; ties++) {
				const struct argmax_case *ac = &argmax_cases[c];
				struct dj_tensor x = host_random(all_dtypes[d], ac->shape.ndim,
								 ac->shape.dims, ANY);
				int64_t n = dj_tensor_numel(&x.desc);

				/* Few distinct values: ties everywhere, the first must win;
				 * NaNs in the float runs, the first of them must win. */
				for (int64_t i = 0; ties && i < n; i++)
					set_value(&x, i, (double)(rng_next() % 3));
				for (int64_t i = 5; ties && dj_dtype_is_float(all_dtypes[d]) && i < n;
				     i += 997)
					set_value(&x, i, NAN);
				tn_op_attrs_init(&attrs);
				attrs.has_dim = ac->has_dim;
				attrs.dim = ac->dim;
				attrs.keepdim = ac->keepdim;
				label(what, sizeof(what), "argmax", all_dtypes[d], &x.desc, NULL);
				snprintf(what + strlen(what), sizeof(what) - strlen(what),
					 " dim %d/%d ties %d", ac->has_dim, ac->dim, ties);
				check_op("argmax", &x, 1, &attrs, what);
				free(x.data);
			}
}

/* ---- rms_norm ---- */

static void test_rms_norm(void)
{
	static const struct shape shapes[] = {{2, {7, 301}}, {3, {3, 4, 64}}, {2, {1000, 16}},
					      {1, {5}}, {2, {2, 13001}}, {2, {3, 256}}};
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int d = 0; d < N_FLOAT; d++)
			for (int n_in = 1; n_in <= 2; n_in++) {
				const struct shape *sh = &shapes[s];
				int64_t len = sh->dims[sh->ndim - 1];
				struct dj_tensor in[2] = {host_random(float_dtypes[d], sh->ndim, sh->dims,
								      ANY),
							  host_random(float_dtypes[d], 1, &len, ANY)};

				tn_op_attrs_init(&attrs);
				if (n_in == 2)
					attrs.eps = 0.01;
				label(what, sizeof(what), "rms_norm", float_dtypes[d], &in[0].desc, NULL);
				snprintf(what + strlen(what), sizeof(what) - strlen(what), " inputs %d",
					 n_in);
				check_op("rms_norm", in, n_in, &attrs, what);
				free_host(in, 2);
			}
}

/* ---- scaled_dot_product_attention ---- */

struct attention_case {
	struct shape q, k, v;
	int causal;
	double scale; /* 0: the default 1/sqrt(E) */
};

/*
 * Decode (L = 1): key ranges split across blocks (33 .. 4096 keys), heads in
 * the batch dims. Prefill: L = S with and without the mask, blocks of 32 rows
 * with a partial last tile; L < S and L > S with the top-left mask; head
 * sizes 1, 80 (not a multiple of 32), 200 (several dim steps); value dims
 * 1, 64, 100, 300 (several blocks along z); k and v broadcast over heads
 * (multi-query); no keys; E = 0 (all logits 0); an explicit scale.
 */
static const struct attention_case attention_cases[] = {
	{{3, {4, 1, 64}}, {3, {4, 4096, 64}}, {3, {4, 4096, 64}}, 0, 0},
	{{4, {2, 8, 1, 64}}, {4, {2, 8, 1000, 64}}, {4, {2, 8, 1000, 64}}, 0, 0},
	{{3, {32, 1, 64}}, {3, {32, 33, 64}}, {3, {32, 33, 64}}, 0, 0},
	{{2, {1, 16}}, {2, {1, 16}}, {2, {1, 16}}, 0, 0},
	{{3, {4, 1, 64}}, {3, {4, 300, 64}}, {3, {4, 300, 64}}, 1, 0},
	{{4, {1, 4, 100, 64}}, {4, {1, 4, 100, 64}}, {4, {1, 4, 100, 64}}, 1, 0},
	{{4, {1, 4, 100, 64}}, {4, {1, 4, 100, 64}}, {4, {1, 4, 100, 64}}, 0, 0},
	{{3, {2, 257, 32}}, {3, {2, 257, 32}}, {3, {2, 257, 32}}, 1, 0},
	{{3, {2, 40, 16}}, {3, {2, 4096, 16}}, {3, {2, 4096, 16}}, 1, 0},
	{{3, {2, 70, 16}}, {3, {2, 9, 16}}, {3, {2, 9, 16}}, 1, 0},
	{{3, {3, 7, 1}}, {3, {3, 5, 1}}, {3, {3, 5, 1}}, 0, 0},
	{{3, {2, 9, 80}}, {3, {2, 130, 80}}, {3, {2, 130, 100}}, 0, 0},
	{{3, {2, 5, 200}}, {3, {2, 70, 200}}, {3, {2, 70, 300}}, 1, 0.02},
	{{4, {2, 4, 1, 64}}, {4, {2, 1, 500, 64}}, {4, {2, 1, 500, 64}}, 0, 0},
	{{4, {2, 4, 33, 64}}, {3, {1, 33, 64}}, {2, {33, 64}}, 1, 0},
	{{3, {2, 6, 8}}, {3, {2, 0, 8}}, {3, {2, 0, 4}}, 0, 0},
	{{3, {2, 3, 0}}, {3, {2, 5, 0}}, {3, {2, 5, 4}}, 1, 0},
	{{3, {4, 1, 64}}, {3, {4, 77, 64}}, {3, {4, 77, 64}}, 0, -0.5},
};

static void test_attention(void)
{
	struct tn_op_attrs attrs;
	char what[256];

	for (size_t c = 0; c < sizeof(attention_cases) / sizeof(attention_cases[0]); c++)
		for (int d = 0; d < N_FLOAT; d++) {
			const struct attention_case *ac = &attention_cases[c];
			enum dj_dtype dt = float_dtypes[d];
			struct dj_tensor in[3] = {host_random(dt, ac->q.ndim, ac->q.dims, ANY),
						  host_random(dt, ac->k.ndim, ac->k.dims, ANY),
						  host_random(dt, ac->v.ndim, ac->v.dims, ANY)};

			tn_op_attrs_init(&attrs);
			attrs.is_causal = ac->causal;
			attrs.has_scale = ac->scale != 0;
			attrs.scale = ac->scale;
			label(what, sizeof(what), "attention", dt, &in[0].desc, &in[1].desc);
			snprintf(what + strlen(what), sizeof(what) - strlen(what), " causal %d",
				 ac->causal);
			check_op("scaled_dot_product_attention", in, 3, &attrs, what);
			free_host(in, 3);
		}
}

/* Operands one element past an aligned address: results must not change. */
static void test_unaligned(void)
{
	static const int64_t q[] = {4, 1, 64}, kv[] = {4, 200, 64}, idx[] = {9}, w[] = {12, 64};
	struct tn_op_attrs attrs;

	misalign = 1;
	attrs_default(&attrs);
	for (int d = 0; d < N_FLOAT; d++) {
		enum dj_dtype dt = float_dtypes[d];
		struct dj_tensor att[3] = {host_random(dt, 3, q, ANY), host_random(dt, 3, kv, ANY),
					   host_random(dt, 3, kv, ANY)};
		struct dj_tensor emb[2] = {host_tensor(DJ_DTYPE_INT64, 1, idx),
					   host_random(dt, 2, w, ANY)};

		for (int i = 0; i < 9; i++)
			set_value(&emb[0], i, (double)(11 - i));
		check_op("scaled_dot_product_attention", att, 3, &attrs, "unaligned attention");
		check_op("embedding", emb, 2, &attrs, "unaligned embedding");
		check_op("rms_norm", &att[1], 1, &attrs, "unaligned rms_norm");
		free_host(att, 3);
		free_host(emb, 2);
	}
	misalign = 0;
}

int main(int argc, char **argv)
{
	static const struct dj_test_case tests[] = {
		{"embedding", test_embedding},
		{"embedding index out of range: an error, the context lives", test_embedding_index_errors},
		{"narrow", test_narrow},
		{"slice_write, into a copy and in place", test_slice_write},
		{"argmax with ties and NaN", test_argmax},
		{"rms_norm", test_rms_norm},
		{"scaled_dot_product_attention (fused)", test_attention},
		{"misaligned operands", test_unaligned},
		{NULL, NULL},
	};
	return gpu_test_main(argc, argv, "gpu_ops_transformer", tests);
}
