/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad input to the operations: every refusal has its code and a message
 * naming the operation and the problem; nothing crashes, nothing is written.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "tensor/ops.h"
#include "harness.h"

static char err[TN_OP_ERR_LEN];

static struct dj_tensor_desc desc(enum dj_dtype t, int ndim, const int64_t *shape)
{
	struct dj_tensor_desc d = {.dtype = t, .ndim = ndim};

	for (int i = 0; i < ndim && i < DJ_MAX_DIMS; i++)
		d.shape[i] = shape[i];
	return d;
}

#define F32(...) desc(DJ_DTYPE_FLOAT32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
		      (int64_t[]){__VA_ARGS__})
#define SCALAR(t) desc((t), 0, NULL)

/* Infer must fail with rc and a message that contains every given piece. */
static void expect_fail(const char *op, const struct dj_tensor_desc *in, int n,
			const struct tn_op_attrs *a, int rc, const char *piece)
{
	struct dj_tensor_desc out;
	char prefix[64];
	int got = tn_op_infer(tn_op_find(op), in, n, a, &out, err, sizeof(err));

	snprintf(prefix, sizeof(prefix), "%s: ", op);
	if (got != rc || strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, piece) == NULL)
		printf("\n%s: rc %d (want %d), message \"%s\" (want \"%s\")\n", op, got, rc, err,
		       piece);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, piece));
	CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
}

static struct tn_op_attrs with_dim(int dim)
{
	struct tn_op_attrs a;

	tn_op_attrs_init(&a);
	a.has_dim = 1;
	a.dim = dim;
	return a;
}

static void test_unknown_op(void)
{
	struct dj_tensor_desc in = F32(2), out;

	CU_ASSERT_EQUAL(tn_op_infer(tn_op_find("conv9d"), &in, 1, NULL, &out, err, sizeof(err)),
			-DJ_EUNKNOWN_OP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown operation"));
	CU_ASSERT_EQUAL(tn_op_cpu(NULL, NULL, 0, NULL, NULL, err, sizeof(err)), -DJ_EUNKNOWN_OP);
}

static void test_wrong_arity(void)
{
	struct dj_tensor_desc in[TN_OP_MAX_INPUTS + 1];

	for (int i = 0; i <= TN_OP_MAX_INPUTS; i++)
		in[i] = F32(2);
	expect_fail("add", in, 1, NULL, -EINVAL, "takes 2 inputs, got 1");
	expect_fail("relu", in, 2, NULL, -EINVAL, "takes 1 input, got 2");
	expect_fail("cat", in, TN_OP_MAX_INPUTS + 1, NULL, -EINVAL, "takes 1 to 16 inputs");
	expect_fail("linear", in, 4, NULL, -EINVAL, "takes 2 to 3 inputs, got 4");
	expect_fail("cat", in, 0, NULL, -EINVAL, "got 0");
}

static void test_dtype_refusals(void)
{
	static const char *const float_only[] = {"sigmoid", "tanh", "exp", "log", "sqrt",
						 "gelu", "silu", "softmax", "layer_norm", "mean"};
	struct dj_tensor_desc in[2] = {F32(2, 3), F32(2, 3)};

	in[1].dtype = DJ_DTYPE_INT32;
	expect_fail("add", in, 2, NULL, -DJ_EDTYPE, "dtypes differ: input 0 is float32, input 1 is int32");
	for (size_t i = 0; i < sizeof(float_only) / sizeof(float_only[0]); i++) {
		expect_fail(float_only[i], &in[1], 1, NULL, -DJ_EDTYPE,
			    "int32 not supported (float32, float16 and bfloat16 only)");
		in[1].dtype = DJ_DTYPE_INT64;
		expect_fail(float_only[i], &in[1], 1, NULL, -DJ_EDTYPE, "int64 not supported");
		in[1].dtype = DJ_DTYPE_INT32;
	}
	in[0].dtype = (enum dj_dtype)9;
	expect_fail("relu", in, 1, NULL, -DJ_EDTYPE, "input 0: invalid dtype 9");
}

static void test_matmul_shapes(void)
{
	struct dj_tensor_desc in[2] = {F32(3, 4), F32(5, 6)};

	expect_fail("matmul", in, 2, NULL, -DJ_ESHAPE, "inner dimensions differ: [3,4] @ [5,6]");
	in[0] = F32(2, 3, 4);
	in[1] = F32(3, 4, 5);
	expect_fail("matmul", in, 2, NULL, -DJ_ESHAPE,
		    "batch dimensions do not broadcast: [2,3,4] @ [3,4,5]");
	in[0] = SCALAR(DJ_DTYPE_FLOAT32);
	expect_fail("matmul", in, 2, NULL, -DJ_ESHAPE, "at least 1 dimension");
	in[0] = F32(7);
	in[1] = F32(6);
	expect_fail("matmul", in, 2, NULL, -DJ_ESHAPE, "inner dimensions differ: [7] @ [6]");
}

static void test_broadcast_and_shape_ops(void)
{
	struct dj_tensor_desc in[3] = {F32(2, 3), F32(4), F32(2, 5)};
	struct tn_op_attrs a;

	expect_fail("mul", in, 2, NULL, -DJ_ESHAPE, "shapes do not broadcast: [2,3] and [4]");
	tn_op_attrs_init(&a);
	a.shape_ndim = 2;
	a.shape[0] = 4;
	a.shape[1] = 2;
	expect_fail("reshape", in, 1, &a, -DJ_ESHAPE, "cannot reshape [2,3] (6 elements) to [4,2]");
	a.shape[0] = a.shape[1] = -1;
	expect_fail("reshape", in, 1, &a, -DJ_ESHAPE, "bad target dimension -1");
	a.shape[0] = -2;
	expect_fail("reshape", in, 1, &a, -DJ_ESHAPE, "bad target dimension -2");
	a.shape[0] = 4;
	a.shape[1] = -1;
	expect_fail("reshape", in, 1, &a, -DJ_ESHAPE, "cannot reshape [2,3] (6 elements) to [4,-1]");
	a.shape[0] = 0;
	expect_fail("reshape", in, 1, &a, -DJ_ESHAPE, "to [0,-1]");
	a = with_dim(0);
	struct dj_tensor_desc cat_in[2] = {in[0], in[2]};

	expect_fail("cat", cat_in, 2, &a, -DJ_ESHAPE,
		    "input 1 [2,5] does not match input 0 [2,3] outside dim 0");
	a = with_dim(2);
	expect_fail("cat", cat_in, 2, &a, -DJ_ESHAPE, "dim 2 out of range for 2 dimensions");
	struct dj_tensor_desc s = SCALAR(DJ_DTYPE_FLOAT32);

	expect_fail("cat", &s, 1, NULL, -DJ_ESHAPE, "dim 0 out of range for 0 dimensions");
	a = with_dim(-3);
	expect_fail("sum", in, 1, &a, -DJ_ESHAPE, "dim -3 out of range for 2 dimensions");
	expect_fail("softmax", in, 1, &a, -DJ_ESHAPE, "dim -3 out of range");
}

static void test_transpose_attrs(void)
{
	struct dj_tensor_desc in = F32(2, 3, 4);
	struct tn_op_attrs a;

	tn_op_attrs_init(&a);
	a.n_perm = 3;
	a.perm[0] = 0;
	a.perm[1] = 0;
	a.perm[2] = 1;
	expect_fail("transpose", &in, 1, &a, -DJ_ESHAPE, "perm is not a permutation of 3");
	a.n_perm = 2;
	expect_fail("transpose", &in, 1, &a, -DJ_ESHAPE, "perm is not a permutation");
	tn_op_attrs_init(&a);
	a.has_dims = 1;
	a.dims[0] = 0;
	a.dims[1] = 3;
	expect_fail("transpose", &in, 1, &a, -DJ_ESHAPE, "dims out of range for 3 dimensions");
}

static void test_layer_norm_and_linear_shapes(void)
{
	struct dj_tensor_desc in[3] = {F32(2, 3, 4), F32(3), F32(4)};
	struct tn_op_attrs a;

	expect_fail("layer_norm", in, 2, NULL, -DJ_ESHAPE,
		    "weight shape [3] differs from normalized_shape [4]");
	in[1] = F32(4);
	in[2] = F32(5);
	expect_fail("layer_norm", in, 3, NULL, -DJ_ESHAPE, "bias shape [5] differs");
	tn_op_attrs_init(&a);
	a.norm_ndim = 2;
	a.norm_shape[0] = 2;
	a.norm_shape[1] = 4;
	expect_fail("layer_norm", in, 1, &a, -DJ_ESHAPE,
		    "normalized_shape [2,4] is not the trailing shape of [2,3,4]");
	struct dj_tensor_desc s = SCALAR(DJ_DTYPE_FLOAT16);

	expect_fail("layer_norm", &s, 1, NULL, -DJ_ESHAPE, "input is a scalar");
	in[0] = F32(5, 3);
	in[1] = F32(4, 2);
	expect_fail("linear", in, 2, NULL, -DJ_ESHAPE, "in-features differ: x [5,3], weight [4,2]");
	in[1] = F32(3);
	expect_fail("linear", in, 2, NULL, -DJ_ESHAPE, "weight [out, in]");
	in[1] = F32(4, 3);
	in[2] = F32(3);
	expect_fail("linear", in, 3, NULL, -DJ_ESHAPE, "bias [3] must be [4]");
}

static void test_bad_descriptions(void)
{
	struct dj_tensor_desc in[2] = {F32(2, 3), F32(2, 3)};

	in[0].ndim = DJ_MAX_DIMS + 1;
	expect_fail("relu", in, 1, NULL, -DJ_ESHAPE, "input 0: 9 dimensions (0..8 allowed)");
	in[0].ndim = -1;
	expect_fail("relu", in, 1, NULL, -DJ_ESHAPE, "dimensions");
	in[0] = F32(2, -3);
	expect_fail("relu", in, 1, NULL, -DJ_ESHAPE, "input 0: negative dimension");
	in[0] = F32(1LL << 40, 1LL << 30);
	expect_fail("relu", in, 1, NULL, -DJ_ESHAPE, "byte size overflows");
	/* Each input fits, the broadcast result does not. */
	in[0] = F32(1LL << 31, 1);
	in[1] = F32(1, 1LL << 31);
	expect_fail("add", in, 2, NULL, -DJ_ESHAPE, "result too large");
	in[0] = F32(1LL << 40, 1, 2, 2);
	in[1] = F32(1, 1LL << 40, 2, 2);
	expect_fail("matmul", in, 2, NULL, -DJ_ESHAPE, "batch dimensions");
	struct dj_tensor_desc cat_in[2] = {F32(1LL << 60), F32(1LL << 60)};

	in[0] = cat_in[0];
	expect_fail("cat", cat_in, 2, NULL, -DJ_ESHAPE, "result too large");
}

static void test_cpu_argument_checks(void)
{
	float a[6] = {0}, b[6] = {0}, out[6] = {0};
	struct dj_tensor in[2] = {{.desc = F32(2, 3), .data = a}, {.desc = F32(2, 3), .data = b}};
	struct dj_tensor r = {.desc = F32(3, 2), .data = out};
	const struct tn_op *add = tn_op_find("add");

	CU_ASSERT_EQUAL(tn_op_cpu(add, in, 2, NULL, &r, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "output description differs"));
	r.desc = F32(2, 3);
	in[1].mem = DJ_MEM_GPU;
	CU_ASSERT_EQUAL(tn_op_cpu(add, in, 2, NULL, &r, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not in host memory"));
	in[1].mem = DJ_MEM_HOST;
	in[1].data = NULL;
	CU_ASSERT_EQUAL(tn_op_cpu(add, in, 2, NULL, &r, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "has no data"));
	CU_ASSERT_EQUAL(tn_op_cpu(add, in, -1, NULL, &r, NULL, 0), -EINVAL);
	/* Nothing was written on any refusal. */
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(out[i], 0);
	/* A tiny message buffer is still terminated. */
	char tiny[8];

	CU_ASSERT_EQUAL(tn_op_infer(add, &in[0].desc, 1, NULL, &r.desc, tiny, sizeof(tiny)),
			-EINVAL);
	CU_ASSERT_EQUAL(strlen(tiny), sizeof(tiny) - 1);
}

/* A client can make tensors of no bytes whose other dimensions are huge
 * (ALLOC [250, 2^33 + 1, 0, 0]); an operation whose output is empty must
 * return at once instead of looping over those dimensions for hours (found
 * by fuzz_op_attrs: sum along dim 2 of such a tensor hung the CPU path). */
static void test_empty_outputs_at_once(void)
{
	static const struct {
		const char *op;
		int n_in;
		int64_t shape[2][4];
		int ndim[2];
		int dim;
	} cases[] = {
		{"sum", 1, {{250, 8589934593, 0, 0}}, {4}, 2},
		{"mean", 1, {{250, 8589934593, 0, 0}}, {4}, 2},
		{"softmax", 1, {{1ll << 40, 0}}, {2}, 0},
		{"layer_norm", 1, {{1ll << 40, 0}}, {2}, -1},
		{"matmul", 2, {{1ll << 40, 0, 3}, {3, 4}}, {3, 2}, -1},
	};
	char one[8];

	alarm(20); /* a regression would loop for hours: fail instead */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tn_op *op = tn_op_find(cases[i].op);
		struct dj_tensor in[2] = {0}, out = {.mem = DJ_MEM_HOST, .data = one};
		/* matmul and layer_norm ignore dim. */
		struct tn_op_attrs a = with_dim(cases[i].dim);

		for (int k = 0; k < cases[i].n_in; k++)
			in[k] = (struct dj_tensor){.desc = desc(DJ_DTYPE_FLOAT32, cases[i].ndim[k],
								 cases[i].shape[k]),
						   .data = one, .mem = DJ_MEM_HOST};
		CU_ASSERT_EQUAL_FATAL(tn_op_infer(op, (struct dj_tensor_desc[]){in[0].desc, in[1].desc},
						  cases[i].n_in, &a, &out.desc, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(dj_tensor_numel(&out.desc), 0);
		CU_ASSERT_EQUAL(tn_op_cpu(op, in, cases[i].n_in, &a, &out, err, sizeof(err)), 0);
	}
	alarm(0);
}

/* ---- attributes from JSON ---- */

static int parse(const char *op, const char *json, struct tn_op_attrs *a)
{
	cJSON *j = json ? cJSON_Parse(json) : NULL;
	int rc = tn_op_attrs_from_json(tn_op_find(op), j, a, err, sizeof(err));

	cJSON_Delete(j);
	return rc;
}

static void test_attrs_json_valid(void)
{
	struct tn_op_attrs a;

	CU_ASSERT_EQUAL(parse("sum", "{\"dim\": -1, \"keepdim\": true}", &a), 0);
	CU_ASSERT(a.has_dim && a.dim == -1 && a.keepdim);
	CU_ASSERT_EQUAL(parse("transpose", "{\"dims\": [0, 2]}", &a), 0);
	CU_ASSERT(a.has_dims && a.dims[0] == 0 && a.dims[1] == 2 && a.n_perm == 0);
	CU_ASSERT_EQUAL(parse("transpose", "{\"perm\": [2, 0, 1]}", &a), 0);
	CU_ASSERT(a.n_perm == 3 && a.perm[0] == 2 && a.perm[2] == 1);
	CU_ASSERT_EQUAL(parse("reshape", "{\"shape\": [4, -1, 1099511627776]}", &a), 0);
	CU_ASSERT(a.shape_ndim == 3 && a.shape[1] == -1 && a.shape[2] == 1099511627776LL);
	CU_ASSERT_EQUAL(parse("reshape", "{\"shape\": []}", &a), 0);
	CU_ASSERT_EQUAL(a.shape_ndim, 0);
	CU_ASSERT_EQUAL(parse("layer_norm", "{\"normalized_shape\": [3, 4], \"eps\": 1e-6}", &a), 0);
	CU_ASSERT(a.norm_ndim == 2 && a.norm_shape[1] == 4 && a.eps == 1e-6);
	CU_ASSERT_EQUAL(parse("relu", NULL, &a), 0);
	CU_ASSERT_EQUAL(parse("relu", "null", &a), 0);
	CU_ASSERT_EQUAL(parse("relu", "{}", &a), 0);
	/* eps unset: NaN, read through tn_op_eps() as the op's default */
	CU_ASSERT(isnan(a.eps));
	CU_ASSERT_EQUAL(tn_op_eps(tn_op_find("layer_norm"), &a), 1e-5);
}

static void expect_attr_error(const char *op, const char *json, const char *piece)
{
	struct tn_op_attrs a;
	int rc = parse(op, json, &a);

	if (rc != -EINVAL || strstr(err, piece) == NULL)
		printf("\n%s %s: rc %d, \"%s\" (want \"%s\")\n", op, json, rc, err, piece);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, piece));
}

static void test_attrs_json_errors(void)
{
	expect_attr_error("sum", "{\"dimm\": 1}", "sum: attribute 'dimm' is unknown");
	expect_attr_error("softmax", "{\"keepdim\": true}",
			  "softmax: attribute 'keepdim' does not apply to this operation");
	expect_attr_error("sum", "{\"dim\": \"1\"}", "attribute 'dim' must be an integer");
	expect_attr_error("sum", "{\"dim\": 1.5}", "attribute 'dim' is not an integer in range");
	expect_attr_error("sum", "{\"dim\": 99}", "attribute 'dim' is not an integer in range");
	expect_attr_error("sum", "{\"keepdim\": 1}", "attribute 'keepdim' must be true or false");
	expect_attr_error("transpose", "{\"dims\": [0]}", "'dims' has the wrong number of entries");
	expect_attr_error("transpose", "{\"perm\": [0, 1, 2, 3, 4, 5, 6, 7, 0]}",
			  "'perm' has the wrong number");
	expect_attr_error("transpose", "{\"perm\": [0, 9]}", "holds a dimension out of range");
	expect_attr_error("reshape", "{\"shape\": 4}", "'shape' must be an array of integers");
	expect_attr_error("reshape", "{\"shape\": [1e300]}", "'shape' is not an integer in range");
	expect_attr_error("reshape", "{\"shape\": [-2]}", "'shape' is not an integer in range");
	expect_attr_error("layer_norm", "{\"normalized_shape\": []}", "wrong number of entries");
	expect_attr_error("layer_norm", "{\"eps\": -1}", "'eps' must be a non-negative number");
	expect_attr_error("relu", "[1, 2]", "relu: attributes must be a JSON object");
	expect_attr_error("relu", "{\"dim\": 0}", "does not apply");
	expect_attr_error("sum", "{\"dim\": 0, \"dim\": 1}", "sum: attribute 'dim' is repeated");
}

static void test_attrs_json_round_trip(void)
{
	struct tn_op_attrs a, b;
	const struct tn_op *op = tn_op_find("layer_norm");

	tn_op_attrs_init(&a);
	a.norm_ndim = 2;
	a.norm_shape[0] = 7;
	a.norm_shape[1] = 9;
	a.eps = 0.125;
	cJSON *j = tn_op_attrs_to_json(op, &a);

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(tn_op_attrs_from_json(op, j, &b, err, sizeof(err)), 0);
	CU_ASSERT(b.norm_ndim == 2 && b.norm_shape[0] == 7 && b.norm_shape[1] == 9 && b.eps == 0.125);
	cJSON_Delete(j);
	op = tn_op_find("transpose");
	tn_op_attrs_init(&a);
	a.has_dims = 1;
	a.dims[0] = -1;
	a.dims[1] = 0;
	j = tn_op_attrs_to_json(op, &a);
	CU_ASSERT_EQUAL(tn_op_attrs_from_json(op, j, &b, err, sizeof(err)), 0);
	CU_ASSERT(b.has_dims && b.dims[0] == -1 && b.dims[1] == 0 && b.n_perm == 0);
	cJSON_Delete(j);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"unknown operation", test_unknown_op},
		{"wrong number of inputs", test_wrong_arity},
		{"dtype mismatch and float-only ops on integers", test_dtype_refusals},
		{"matmul shape errors", test_matmul_shapes},
		{"broadcast, reshape, cat, dim errors", test_broadcast_and_shape_ops},
		{"transpose perm/dims errors", test_transpose_attrs},
		{"layer_norm and linear shape errors", test_layer_norm_and_linear_shapes},
		{"invalid descriptions and size overflow", test_bad_descriptions},
		{"tn_op_cpu argument checks, nothing written", test_cpu_argument_checks},
		{"empty outputs of huge shapes return at once", test_empty_outputs_at_once},
		{"attributes from JSON", test_attrs_json_valid},
		{"attribute JSON errors named", test_attrs_json_errors},
		{"attributes JSON round trip", test_attrs_json_round_trip},
		{NULL, NULL},
	};
	dj_test_add_suite("ops errors", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
