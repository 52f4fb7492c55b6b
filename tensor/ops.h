/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_OPS_H
#define DJINN_OPS_H

/**
 * @file
 * Tensor operations: a table looked up by name, shape/dtype inference that
 * names the problem on bad input, and the CPU reference implementation.
 * Semantics follow PyTorch (torch.matmul, broadcasting, negative dims, ...);
 * docs/OPERATIONS.md lists each operation, its attributes and its dtypes.
 *
 * Usage, on any backend:
 *   op = tn_op_find("matmul");
 *   tn_op_infer(op, in_descs, n_in, &attrs, &out_desc, err, sizeof(err));
 *   allocate dj_tensor_nbytes(&out_desc) bytes, then run (tn_op_cpu() or a
 *   GPU implementation) with out->desc = out_desc.
 *
 * Common rules, checked by tn_op_infer() before any op-specific check:
 * - arity within [min_inputs, max_inputs];
 * - every input has the same dtype (no implicit promotion): -DJ_EDTYPE;
 *   index inputs (embedding's indices) are int32 or int64 instead;
 * - the dtype is in the op's mask: -DJ_EDTYPE;
 * - every description passes dj_tensor_desc_check().
 * Errors: -DJ_EUNKNOWN_OP, -DJ_ESHAPE, -DJ_EDTYPE, -EINVAL (attributes),
 * each with a one-line message "<op>: <problem>" in the caller's buffer.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Broadcast shape of @p a and @p b by PyTorch's (numpy's) rules: shapes are
 * aligned at the trailing dimension; each pair must be equal or one of them 1.
 * @p out gets the result shape and a's dtype. Returns 0 or -DJ_ESHAPE.
 */
int tn_broadcast_shape(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b,
		       struct dj_tensor_desc *out);
/**
 * Element strides with which to read @p in while walking the (broadcast)
 * shape @p out: strides[i] belongs to out's dimension i; 0 where @p in has no
 * such dimension or has size 1 there. @p in must broadcast to @p out.
 */
void tn_broadcast_strides(const struct dj_tensor_desc *in, const struct dj_tensor_desc *out,
			  int64_t strides[DJ_MAX_DIMS]);

struct cJSON;

/** Most inputs of one operation (cat takes many). */
#define TN_OP_MAX_INPUTS 16
/** Suggested size of an error message buffer. */
#define TN_OP_ERR_LEN 256

/** Operation identifiers, stable for switch statements in backends. */
enum tn_op_id {
	TN_OP_MATMUL = 0,
	TN_OP_ADD,
	TN_OP_SUB,
	TN_OP_MUL,
	TN_OP_DIV,
	TN_OP_RELU,
	TN_OP_SIGMOID,
	TN_OP_TANH,
	TN_OP_EXP,
	TN_OP_LOG,
	TN_OP_SQRT,
	TN_OP_SUM,
	TN_OP_MEAN,
	TN_OP_TRANSPOSE,
	TN_OP_RESHAPE,
	TN_OP_CAT,
	TN_OP_LINEAR,
	TN_OP_SOFTMAX,
	TN_OP_GELU,
	TN_OP_SILU,
	TN_OP_LAYER_NORM,
	TN_OP_EMBEDDING,
	TN_OP_NARROW,
	TN_OP_SDPA,        /* scaled_dot_product_attention */
	TN_OP_SLICE_WRITE,
	TN_OP_ARGMAX,
	TN_OP_RMS_NORM,
	TN_OP_COUNT
};

/**
 * Attributes of one operation call; start from tn_op_attrs_init(). Each op
 * reads only its own fields (listed per field) and ignores the rest.
 */
struct tn_op_attrs {
	/** sum, mean, argmax: reduce along @c dim when set, else over the
	 *  whole tensor. softmax: dim defaults to -1 when unset. cat: dim
	 *  defaults to 0. narrow, slice_write: required. Negative values count
	 *  from the end, as in PyTorch. */
	int has_dim;
	int dim;
	/** sum, mean, argmax: keep the reduced dimension(s) with size 1. */
	int keepdim;
	/** transpose: swap dims[0] and dims[1] (torch.transpose). Default when
	 *  neither this nor @c perm is set: swap the last two dimensions
	 *  (a 0-D or 1-D tensor is copied unchanged). */
	int has_dims;
	int dims[2];
	/** transpose: a full permutation of the input's dimensions
	 *  (torch.permute); n_perm must equal the input's ndim. */
	int n_perm;
	int perm[DJ_MAX_DIMS];
	/** reshape: target shape; at most one entry may be -1 (inferred). */
	int shape_ndim;
	int64_t shape[DJ_MAX_DIMS];
	/** layer_norm: normalised trailing shape; when norm_ndim is 0 the last
	 *  dimension of the input is normalised. */
	int norm_ndim;
	int64_t norm_shape[DJ_MAX_DIMS];
	/** layer_norm (default 1e-5), rms_norm (default 1e-6): added to the
	 *  variance or the mean square. NaN (what tn_op_attrs_init() sets)
	 *  means the op's default: read it through tn_op_eps(). */
	double eps;
	/** narrow, slice_write (required): first index along dim; negative
	 *  counts from the end (start + size(dim)), as torch.narrow. */
	int has_start;
	int64_t start;
	/** narrow (required): number of elements kept along dim, >= 0. */
	int has_length;
	int64_t length;
	/** scaled_dot_product_attention: mask key j from query i where j > i
	 *  (torch's top-left aligned tril(ones(L, S))). */
	int is_causal;
	/** scaled_dot_product_attention: the factor of q.k; default (unset)
	 *  1/sqrt(E), E the last dimension of q. */
	int has_scale;
	double scale;
};

/** Output shape/dtype from input descriptions; see tn_op_infer(). */
typedef int (*tn_op_infer_fn)(const struct dj_tensor_desc *in, int n_in,
			      const struct tn_op_attrs *attrs,
			      struct dj_tensor_desc *out, char *err, size_t errlen);
/**
 * Compute on host memory. @p out->desc is the inferred description and
 * @p out->data holds dj_tensor_nbytes(&out->desc) bytes, owned by the caller.
 * Inputs and output must not overlap, except that an in-place op's output
 * may be its input 0 itself. Errors that depend on the data (an embedding
 * index out of range) are named in @p err, without the "<op>: " prefix.
 */
typedef int (*tn_op_cpu_fn)(const struct dj_tensor *in, int n_in,
			    const struct tn_op_attrs *attrs, struct dj_tensor *out,
			    char *err, size_t errlen);

/** One entry of the operation table (static; never freed). */
struct tn_op {
	const char *name;      /**< e.g. "matmul" */
	enum tn_op_id id;
	int min_inputs;
	int max_inputs;
	uint32_t dtypes;       /**< accepted input dtypes: bit (1u << dtype) */
	/** Inputs holding indices (bit i: input i), int32 or int64 whatever
	 *  the other inputs are: exempt from the same-dtype rule and from
	 *  @c dtypes (embedding's input 0). */
	uint32_t index_inputs;
	/** Nonzero: the result is input 0 updated in place (slice_write). The
	 *  output description is input 0's; a backend may pass input 0 itself
	 *  as the output, or another buffer, which then gets a copy of input 0
	 *  with the update applied. */
	int inplace;
	uint32_t attr_keys;    /**< JSON attribute keys it accepts (internal bits) */
	tn_op_infer_fn infer;  /**< op-specific checks; call tn_op_infer() instead */
	tn_op_cpu_fn cpu;      /**< reference; call tn_op_cpu() instead */
};

/** Look an operation up by name (case-sensitive); NULL when unknown. */
const struct tn_op *tn_op_find(const char *name);
/** The operation with identifier @p id; NULL when out of range. */
const struct tn_op *tn_op_get(enum tn_op_id id);
/** Number of operations in the table (TN_OP_COUNT). */
int tn_op_count(void);

/** Defaults: nothing set (eps NaN: each op's own default). */
void tn_op_attrs_init(struct tn_op_attrs *attrs);

/** The eps @p op uses: @p attrs->eps, or the op's default where it is NaN
 *  (layer_norm 1e-5, rms_norm 1e-6). */
double tn_op_eps(const struct tn_op *op, const struct tn_op_attrs *attrs);

/**
 * Attributes from a JSON object (NULL means none): "dim" (integer),
 * "keepdim" (bool), "dims" ([d0, d1]), "perm" ([...]), "shape" ([...]),
 * "normalized_shape" ([...]), "eps" (number), "start" (integer), "length"
 * (integer >= 0), "is_causal" (bool), "scale" (finite number). Strict: a key the op does not
 * take, a repeated key, a wrong type, a non-integral or out-of-range number
 * is -EINVAL with a message naming the key.
 */
int tn_op_attrs_from_json(const struct tn_op *op, const struct cJSON *json,
			  struct tn_op_attrs *attrs, char *err, size_t errlen);
/**
 * The JSON form of @p attrs for @p op (only the fields it uses and that are
 * set). Returns a new object owned by the caller (cJSON_Delete), NULL on
 * allocation failure.
 */
struct cJSON *tn_op_attrs_to_json(const struct tn_op *op, const struct tn_op_attrs *attrs);

/**
 * Validate inputs and attributes and compute the output description.
 * @p op NULL gives -DJ_EUNKNOWN_OP. @p err (may be NULL) gets a message
 * naming the problem, e.g. "matmul: inner dimensions differ: [3,4] @ [5,6]".
 * Returns 0, -DJ_ESHAPE, -DJ_EDTYPE, -DJ_EUNKNOWN_OP or -EINVAL.
 */
int tn_op_infer(const struct tn_op *op, const struct dj_tensor_desc *in, int n_in,
		const struct tn_op_attrs *attrs, struct dj_tensor_desc *out,
		char *err, size_t errlen);

/**
 * Run the CPU reference: validates as tn_op_infer() does, checks that
 * @p out->desc equals the inferred description (-EINVAL otherwise) and that
 * every tensor is in host memory with non-NULL data (-EINVAL), then computes.
 * Float types accumulate in double (matmul, sum, mean, softmax, layer_norm);
 * float16/bfloat16 results are rounded once, to nearest even. Integer
 * arithmetic wraps modulo 2^32 / 2^64 (two's complement) and never traps.
 * Output dtypes: the input dtype, except sum of int32 -> int64, div of
 * integers -> float32 (true division) and argmax -> int64, as in PyTorch.
 * An in-place op (slice_write) may be given its input 0 as @p out.
 * Data-dependent errors: embedding's index out of range, -ERANGE ("embedding:
 * index 7 out of range for 5 rows (at position 3)"); nothing is written then.
 */
int tn_op_cpu(const struct tn_op *op, const struct dj_tensor *in, int n_in,
	      const struct tn_op_attrs *attrs, struct dj_tensor *out,
	      char *err, size_t errlen);

/**
 * Convenience for tests and tools: infer, allocate the output (host memory,
 * malloc; release with dj_tensor_free_host()) and run on the CPU.
 */
int tn_op_cpu_alloc(const struct tn_op *op, const struct dj_tensor *in, int n_in,
		    const struct tn_op_attrs *attrs, struct dj_tensor *out,
		    char *err, size_t errlen);

/*
 * Geometry helpers, so that every backend derives layouts from the same code
 * (call them after tn_op_infer() succeeded on the same inputs).
 */

/** Resolve a PyTorch-style dim (negative counts from the end) for @p ndim
 *  dimensions; a 0-D tensor accepts -1 and 0. 0 or -DJ_ESHAPE. */
int tn_op_resolve_dim(int dim, int ndim, int *resolved);

/**
 * View the input of an axis operation as [outer][len][inner] (contiguous):
 * sum/mean/argmax reduce len (without a dim: outer = inner = 1,
 * len = numel); softmax normalises along len; layer_norm and rms_norm:
 * outer rows of len normalised elements, inner = 1; cat: the input @p in
 * split at the cat dim.
 * Returns 0, or -EINVAL for another op.
 */
int tn_op_axis_split(const struct tn_op *op, const struct dj_tensor_desc *in,
		     const struct tn_op_attrs *attrs, int64_t *outer, int64_t *len,
		     int64_t *inner);

/** transpose: output dim i is input dim perm[i]. 0 or -DJ_ESHAPE. */
int tn_op_transpose_perm(const struct dj_tensor_desc *in, const struct tn_op_attrs *attrs,
			 int perm[DJ_MAX_DIMS]);

/**
 * matmul layout (torch.matmul): a is [batch..., m, k] (a 1-D a is [1, k]),
 * b is [batch..., k, n] (a 1-D b is [k, 1]); batch dims broadcast. For batch
 * index i (row-major over batch_shape) the matrices start at elements
 * sum(idx[d] * a_batch_stride[d]) and sum(idx[d] * b_batch_stride[d]); the
 * output's matrices are contiguous, m * n elements apart.
 */
struct tn_op_matmul_plan {
	int64_t m, k, n;
	int64_t k_right;       /**< b's inner dimension; differs from k on error */
	int batch_ndim;
	int64_t batch_shape[DJ_MAX_DIMS];
	int64_t batch;         /**< product of batch_shape (1 when none) */
	int64_t a_batch_stride[DJ_MAX_DIMS]; /**< 0 where a is broadcast */
	int64_t b_batch_stride[DJ_MAX_DIMS];
};
/** Fill @p plan; -DJ_ESHAPE when k differs or batch dims do not broadcast. */
int tn_op_matmul_plan(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b,
		      struct tn_op_matmul_plan *plan);

/**
 * narrow and slice_write as one block copy: the large tensor (narrow's
 * input, slice_write's dst) is [outer][big][inner] and the small one
 * (narrow's output, slice_write's src) is [outer][len][inner], which sits
 * at [.., start .. start + len, ..] of the large one. Copy outer rows of
 * len * inner elements; the large tensor's rows are big * inner apart.
 */
struct tn_op_slice_plan {
	int64_t outer, inner;
	int64_t big, start, len;
};
/** Fill @p plan for narrow (@p in: its input) or slice_write (@p in: dst,
 *  src). 0, or -EINVAL for another op. */
int tn_op_slice_plan(const struct tn_op *op, const struct dj_tensor_desc *in,
		     const struct tn_op_attrs *attrs, struct tn_op_slice_plan *plan);

/**
 * scaled_dot_product_attention layout: q [batch..., L, E], k [batch..., S, E],
 * v [batch..., S, Ev]; the batch dims of the three broadcast (torch's rule).
 * For batch index b (row-major over batch_shape) the operands' matrices
 * start at sum(idx[d] * q_stride[d]) (k_stride, v_stride likewise; 0 where
 * broadcast); the output [batch..., L, Ev] is contiguous. @c scale is the
 * factor applied to q.k: the attribute, or 1/sqrt(E); 0 when E is 0 (the
 * logits are then all 0, as torch's scaling of q and k before the product).
 */
struct tn_op_sdpa_plan {
	int64_t L, S, E, Ev;
	int batch_ndim;
	int64_t batch_shape[DJ_MAX_DIMS];
	int64_t batch;
	int64_t q_stride[DJ_MAX_DIMS], k_stride[DJ_MAX_DIMS], v_stride[DJ_MAX_DIMS];
	double scale;
	int causal;
};
/** Fill @p plan from q, k, v (@p in[0..2]). 0 or -DJ_ESHAPE. */
int tn_op_sdpa_plan(const struct dj_tensor_desc *in, const struct tn_op_attrs *attrs,
		    struct tn_op_sdpa_plan *plan);

/** Element offset of batch index @p b given per-dim strides of a batch
 *  shape (row-major), as used by the matmul and attention plans. */
int64_t tn_op_batch_offset(int batch_ndim, const int64_t *batch_shape, const int64_t *strides,
			   int64_t b);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_OPS_H */
