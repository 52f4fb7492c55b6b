/* SPDX-License-Identifier: BSD-3-Clause */
/* The operation table and the checks every operation shares. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "ops_internal.h"

/* Trailing arguments set the rarer fields (index_inputs, inplace). */
#define OP(op_name, op_id, lo, hi, types, keys, infer_fn, cpu_fn, ...)          \
	[op_id] = {.name = op_name, .id = op_id, .min_inputs = lo, .max_inputs = hi, \
		   .dtypes = types, .attr_keys = keys, .infer = tn_infer_##infer_fn,  \
		   .cpu = tn_cpu_##cpu_fn, __VA_ARGS__}

static const struct tn_op op_table[TN_OP_COUNT] = {
	OP("matmul", TN_OP_MATMUL, 2, 2, DTYPES_ALL, 0, matmul, matmul),
	OP("add", TN_OP_ADD, 2, 2, DTYPES_ALL, 0, elementwise_binary, add),
	OP("sub", TN_OP_SUB, 2, 2, DTYPES_ALL, 0, elementwise_binary, sub),
	OP("mul", TN_OP_MUL, 2, 2, DTYPES_ALL, 0, elementwise_binary, mul),
	OP("div", TN_OP_DIV, 2, 2, DTYPES_ALL, 0, div, div),
	OP("relu", TN_OP_RELU, 1, 1, DTYPES_ALL, 0, elementwise_unary, relu),
	OP("sigmoid", TN_OP_SIGMOID, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, sigmoid),
	OP("tanh", TN_OP_TANH, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, tanh),
	OP("exp", TN_OP_EXP, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, exp),
	OP("log", TN_OP_LOG, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, log),
	OP("sqrt", TN_OP_SQRT, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, sqrt),
	OP("sum", TN_OP_SUM, 1, 1, DTYPES_ALL, ATTR_DIM | ATTR_KEEPDIM, sum, sum),
	OP("mean", TN_OP_MEAN, 1, 1, DTYPES_FLOAT, ATTR_DIM | ATTR_KEEPDIM, reduce, mean),
	OP("transpose", TN_OP_TRANSPOSE, 1, 1, DTYPES_ALL, ATTR_DIMS | ATTR_PERM,
	   transpose, transpose),
	OP("reshape", TN_OP_RESHAPE, 1, 1, DTYPES_ALL, ATTR_SHAPE, reshape, reshape),
	OP("cat", TN_OP_CAT, 1, TN_OP_MAX_INPUTS, DTYPES_ALL, ATTR_DIM, cat, cat),
	OP("linear", TN_OP_LINEAR, 2, 3, DTYPES_ALL, 0, linear, linear),
	OP("softmax", TN_OP_SOFTMAX, 1, 1, DTYPES_FLOAT, ATTR_DIM, softmax, softmax),
	OP("gelu", TN_OP_GELU, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, gelu),
	OP("silu", TN_OP_SILU, 1, 1, DTYPES_FLOAT, 0, elementwise_unary, silu),
	OP("layer_norm", TN_OP_LAYER_NORM, 1, 3, DTYPES_FLOAT, ATTR_NORM_SHAPE | ATTR_EPS,
	   layer_norm, layer_norm),
	OP("embedding", TN_OP_EMBEDDING, 2, 2, DTYPES_ALL, 0, embedding, embedding,
	   .index_inputs = 1u << 0),
	OP("narrow", TN_OP_NARROW, 1, 1, DTYPES_ALL, ATTR_DIM | ATTR_START | ATTR_LENGTH,
	   narrow, narrow),
	OP("scaled_dot_product_attention", TN_OP_SDPA, 3, 3, DTYPES_FLOAT,
	   ATTR_IS_CAUSAL | ATTR_SCALE, sdpa, sdpa),
	OP("slice_write", TN_OP_SLICE_WRITE, 2, 2, DTYPES_ALL, ATTR_DIM | ATTR_START,
	   slice_write, slice_write, .inplace = 1),
	OP("argmax", TN_OP_ARGMAX, 1, 1, DTYPES_ALL, ATTR_DIM | ATTR_KEEPDIM, argmax, argmax),
	OP("rms_norm", TN_OP_RMS_NORM, 1, 2, DTYPES_FLOAT, ATTR_EPS, rms_norm, rms_norm),
};

const struct tn_op *tn_op_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (int i = 0; i < TN_OP_COUNT; i++)
		if (strcmp(op_table[i].name, name) == 0)
			return &op_table[i];
	return NULL;
}

const struct tn_op *tn_op_get(enum tn_op_id id)
{
	return (unsigned int)id < TN_OP_COUNT ? &op_table[id] : NULL;
}

int tn_op_count(void)
{
	return TN_OP_COUNT;
}

void tn_op_attrs_init(struct tn_op_attrs *attrs)
{
	memset(attrs, 0, sizeof(*attrs));
	attrs->eps = NAN;
}

double tn_op_eps(const struct tn_op *op, const struct tn_op_attrs *attrs)
{
	if (attrs != NULL && !isnan(attrs->eps))
		return attrs->eps;
	return op != NULL && op->id == TN_OP_RMS_NORM ? 1e-6 : 1e-5;
}

int tn_op_resolve_dim(int dim, int ndim, int *resolved)
{
	int n = ndim > 0 ? ndim : 1;

	if (dim < -n || dim >= n)
		return -DJ_ESHAPE;
	*resolved = dim < 0 ? dim + n : dim;
	return 0;
}

void tn_op_split_at(const struct dj_tensor_desc *d, int dim, int64_t *outer, int64_t *len,
		 int64_t *inner)
{
	*outer = 1;
	*inner = 1;
	*len = d->ndim > 0 ? d->shape[dim] : 1;
	for (int i = 0; i < dim && i < d->ndim; i++)
		*outer *= d->shape[i];
	for (int i = dim + 1; i < d->ndim; i++)
		*inner *= d->shape[i];
}

static int check_input_desc(const struct tn_op *op, const struct dj_tensor_desc *d, int idx,
			    char *err, size_t errlen)
{
	int rc = dj_tensor_desc_check(d);

	if (rc == -DJ_EDTYPE)
		return tn_op_fail(rc, err, errlen, op->name, "input %d: invalid dtype %d", idx,
			       (int)d->dtype);
	if (rc != 0 && (d->ndim < 0 || d->ndim > DJ_MAX_DIMS))
		return tn_op_fail(rc, err, errlen, op->name, "input %d: %d dimensions (0..%d allowed)",
			       idx, d->ndim, DJ_MAX_DIMS);
	if (rc != 0)
		return tn_op_fail(rc, err, errlen, op->name,
			       "input %d: negative dimension or byte size overflows", idx);
	return 0;
}

static int check_common(const struct tn_op *op, const struct dj_tensor_desc *in, int n_in,
			char *err, size_t errlen)
{
	if (n_in < op->min_inputs || n_in > op->max_inputs) {
		if (op->min_inputs == op->max_inputs)
			return tn_op_fail(-EINVAL, err, errlen, op->name, "takes %d input%s, got %d",
				       op->min_inputs, op->min_inputs == 1 ? "" : "s", n_in);
		return tn_op_fail(-EINVAL, err, errlen, op->name, "takes %d to %d inputs, got %d",
			       op->min_inputs, op->max_inputs, n_in);
	}
	if (in == NULL)
		return tn_op_fail(-EINVAL, err, errlen, op->name, "no input descriptions");
	int ref = -1; /* the input whose dtype the others (but indices) share */

	for (int i = 0; i < n_in; i++) {
		int rc = check_input_desc(op, &in[i], i, err, errlen);

		if (rc != 0)
			return rc;
		if (op->index_inputs & (1u << i)) {
			if (!(DTYPES_INT & DTYPE_BIT(in[i].dtype)))
				return tn_op_fail(-DJ_EDTYPE, err, errlen, op->name,
					       "input %d (indices) must be int32 or int64, got %s", i,
					       dj_dtype_name(in[i].dtype));
			continue;
		}
		if (ref < 0)
			ref = i;
		if (in[i].dtype != in[ref].dtype)
			return tn_op_fail(-DJ_EDTYPE, err, errlen, op->name,
				       "dtypes differ: input %d is %s, input %d is %s", ref,
				       dj_dtype_name(in[ref].dtype), i, dj_dtype_name(in[i].dtype));
	}
	if (ref >= 0 && !(op->dtypes & DTYPE_BIT(in[ref].dtype)))
		return tn_op_fail(-DJ_EDTYPE, err, errlen, op->name, "%s not supported (%s)",
			       dj_dtype_name(in[ref].dtype),
			       op->dtypes == DTYPES_FLOAT ? "float32, float16 and bfloat16 only"
							  : "see docs/OPERATIONS.md");
	return 0;
}

/* The per-op inference functions leave the "<op>: " prefix to us. */
static void prefix_op_name(char *err, size_t errlen, const char *name)
{
	size_t name_len = strlen(name) + 2;

	if (err == NULL || errlen <= name_len)
		return;
	size_t msg_len = strnlen(err, errlen - 1);

	if (msg_len + name_len >= errlen)
		msg_len = errlen - 1 - name_len;
	memmove(err + name_len, err, msg_len);
	memcpy(err, name, name_len - 2);
	memcpy(err + name_len - 2, ": ", 2);
	err[name_len + msg_len] = '\0';
}

int tn_op_infer(const struct tn_op *op, const struct dj_tensor_desc *in, int n_in,
		const struct tn_op_attrs *attrs, struct dj_tensor_desc *out,
		char *err, size_t errlen)
{
	struct tn_op_attrs defaults;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (op == NULL)
		return tn_op_fail(-DJ_EUNKNOWN_OP, err, errlen, "op", "unknown operation");
	if (out == NULL)
		return tn_op_fail(-EINVAL, err, errlen, op->name, "no output description");
	if (attrs == NULL) {
		tn_op_attrs_init(&defaults);
		attrs = &defaults;
	}
	int rc = check_common(op, in, n_in, err, errlen);

	if (rc == 0) {
		rc = op->infer(in, n_in, attrs, out, err, errlen);
		if (rc != 0)
			prefix_op_name(err, errlen, op->name);
	}
	if (rc == 0 && dj_tensor_desc_check(out) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, op->name, "result too large");
	return rc;
}

static int check_host_tensor(const struct tn_op *op, const struct dj_tensor *t, const char *what,
			     char *err, size_t errlen)
{
	if (t->mem != DJ_MEM_HOST)
		return tn_op_fail(-EINVAL, err, errlen, op->name, "%s is not in host memory", what);
	if (t->data == NULL && dj_tensor_nbytes(&t->desc) > 0)
		return tn_op_fail(-EINVAL, err, errlen, op->name, "%s has no data", what);
	return 0;
}

/* tn_op_infer() on the descriptions of host tensors. */
static int infer_tensors(const struct tn_op *op, const struct dj_tensor *in, int n_in,
			 const struct tn_op_attrs *attrs, const struct dj_tensor *out,
			 struct dj_tensor_desc *result, char *err, size_t errlen)
{
	struct dj_tensor_desc descs[TN_OP_MAX_INPUTS];

	if (op == NULL)
		return tn_op_fail(-DJ_EUNKNOWN_OP, err, errlen, "op", "unknown operation");
	if (in == NULL || out == NULL || n_in < 0 || n_in > TN_OP_MAX_INPUTS)
		return tn_op_fail(-EINVAL, err, errlen, op->name, "bad arguments");
	for (int i = 0; i < n_in; i++)
		descs[i] = in[i].desc;
	return tn_op_infer(op, descs, n_in, attrs, result, err, errlen);
}

int tn_op_cpu(const struct tn_op *op, const struct dj_tensor *in, int n_in,
	      const struct tn_op_attrs *attrs, struct dj_tensor *out,
	      char *err, size_t errlen)
{
	struct dj_tensor_desc expect;
	struct tn_op_attrs defaults;
	int rc = infer_tensors(op, in, n_in, attrs, out, &expect, err, errlen);

	if (rc != 0)
		return rc;
	if (attrs == NULL) {
		tn_op_attrs_init(&defaults);
		attrs = &defaults;
	}
	if (!dj_tensor_desc_equal(&expect, &out->desc))
		return tn_op_fail(-EINVAL, err, errlen, op->name,
			       "output description differs from the inferred one");
	for (int i = 0; i < n_in && rc == 0; i++)
		rc = check_host_tensor(op, &in[i], "an input", err, errlen);
	if (rc == 0)
		rc = check_host_tensor(op, out, "the output", err, errlen);
	/* An empty output has nothing to compute, and the kernels' loops
	 * must not run: their outer extents may still be huge (sum over the
	 * empty dim of [2^33, 0, 128] would loop 2^33 times for nothing). */
	if (rc == 0 && dj_tensor_numel(&out->desc) == 0)
		return 0;
	if (rc == 0) {
		rc = op->cpu(in, n_in, attrs, out, err, errlen);
		if (rc != 0 && err != NULL && errlen > 0 && err[0] != '\0')
			prefix_op_name(err, errlen, op->name);
	}
	if (rc != 0 && err != NULL && errlen > 0 && err[0] == '\0')
		tn_op_fail(rc, err, errlen, op->name, "%s", dj_strerror(rc));
	return rc;
}

int tn_op_cpu_alloc(const struct tn_op *op, const struct dj_tensor *in, int n_in,
		    const struct tn_op_attrs *attrs, struct dj_tensor *out,
		    char *err, size_t errlen)
{
	struct dj_tensor result = {.mem = DJ_MEM_HOST};
	int rc = infer_tensors(op, in, n_in, attrs, out, &result.desc, err, errlen);

	if (rc != 0)
		return rc;
	/* One byte minimum so an empty result still has a pointer to free. */
	size_t bytes = dj_tensor_nbytes(&result.desc);

	result.data = malloc(bytes > 0 ? bytes : 1);
	if (result.data == NULL)
		return tn_op_fail(-ENOMEM, err, errlen, op->name, "cannot allocate %zu bytes", bytes);
	rc = tn_op_cpu(op, in, n_in, attrs, &result, err, errlen);
	if (rc != 0) {
		dj_tensor_free_host(&result);
		return rc;
	}
	*out = result;
	return 0;
}
