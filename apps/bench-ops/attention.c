/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-ops, attention: the fused scaled_dot_product_attention (one kernel,
 * no L x S matrix in memory) against the same attention through our own
 * unfused operations, as a graph without the fused op would record it:
 * transpose(k), matmul(q, k^T), mul by a 0-d scale, add of a causal mask
 * (prefill), softmax over the last dim, matmul(p, v); every one through
 * djg_ops_execute as the server runs a request (outputs from the pool,
 * intermediates freed once consumed).
 *
 * Decode: L = 1 against S = 64 .. 4096 cached keys (no mask). Prefill:
 * L = S = 64 .. 1024 with the causal mask. Heads 4 and 32, head dim 64,
 * float16 and float32, --attn-batch sequences. Both paths' results are
 * compared (largest absolute difference). Decode is memory-bound: its
 * figure is GB/s of q, k, v and the output against the copy bandwidth;
 * prefill's is TFLOP/s of the unmasked pairs (4 flops per pair and dim).
 */
#include <math.h>
#include <string.h>

#include "djinn/common.h"
#include "tensor/ops.h"
#include "bench_ops.h"

#define HEAD_DIM 64
#define MAX_ATTN 64

struct attn_case {
	int prefill;
	enum dj_dtype dtype;
	int64_t heads, L, S;
};

struct attn_result {
	struct attn_case c;
	int64_t batch;
	double fused_ms, unfused_ms;
	double max_diff;
	double bytes, flops; /* decode: bytes; prefill: flops */
};

static struct attn_result attn_results[MAX_ATTN];
static int n_attn;
static double attn_copy_gbps;

struct attn_bench {
	struct djg_ops *g;
	struct dj_tensor q, k, v, scale, mask;
	int causal;
	struct dj_tensor out; /* the last repetition's result */
};

static int execute(struct djg_ops *g, const char *name, const struct dj_tensor *in, int n_in,
		   const struct tn_op_attrs *attrs, struct dj_tensor *out)
{
	char err[TN_OP_ERR_LEN];
	int rc = djg_ops_execute(g, tn_op_find(name), in, n_in, attrs, out, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "%s: %s\n", name, err);
	return rc;
}

static void drop_output(struct attn_bench *b)
{
	djg_ops_free(b->g, b->out.data);
	b->out.data = NULL;
}

static int fused_run(void *arg)
{
	struct attn_bench *b = arg;
	struct dj_tensor in[3] = {b->q, b->k, b->v};
	struct tn_op_attrs attrs;

	drop_output(b);
	tn_op_attrs_init(&attrs);
	attrs.is_causal = b->causal;
	return execute(b->g, "scaled_dot_product_attention", in, 3, &attrs, &b->out);
}

/* One step of the chain: out = name(a[, b]); a is freed when @p own_a. */
static int step(struct djg_ops *g, const char *name, struct dj_tensor *a,
		const struct dj_tensor *second, const struct tn_op_attrs *attrs, int own_a,
		struct dj_tensor *out)
{
	struct dj_tensor in[2] = {*a, second ? *second : *a};
	int rc = execute(g, name, in, second ? 2 : 1, attrs, out);

	if (own_a)
		djg_ops_free(g, a->data); /* stream-ordered: after its reader */
	return rc;
}

static int unfused_run(void *arg)
{
	struct attn_bench *b = arg;
	struct tn_op_attrs none, last;
	struct dj_tensor kt, s, scaled, p;
	int rc;

	drop_output(b);
	tn_op_attrs_init(&none);
	tn_op_attrs_init(&last);
	last.has_dim = 1;
	last.dim = -1;
	if ((rc = step(b->g, "transpose", &b->k, NULL, &none, 0, &kt)) ||
	    (rc = step(b->g, "matmul", &b->q, &kt, &none, 0, &s)))
		return rc;
	djg_ops_free(b->g, kt.data);
	if ((rc = step(b->g, "mul", &s, &b->scale, &none, 1, &scaled)))
		return rc;
	if (b->causal) {
		struct dj_tensor masked;

		if ((rc = step(b->g, "add", &scaled, &b->mask, &none, 1, &masked)))
			return rc;
		scaled = masked;
	}
	if ((rc = step(b->g, "softmax", &scaled, NULL, &last, 1, &p)))
		return rc;
	return step(b->g, "matmul", &p, &b->v, &none, 1, &b->out);
}

static struct dj_tensor device_tensor(struct djg_ops *g, enum dj_dtype dtype, int ndim,
				      const int64_t *shape)
{
	struct dj_tensor t = {.desc = {.dtype = dtype, .ndim = ndim}, .mem = DJ_MEM_GPU};

	memcpy(t.desc.shape, shape, sizeof(int64_t) * (size_t)ndim);
	t.data = random_device(g, dtype, dj_tensor_numel(&t.desc));
	return t;
}

/* A host tensor's values written into device memory (float16 or float32). */
static struct dj_tensor device_values(struct djg_ops *g, enum dj_dtype dtype, int ndim,
				      const int64_t *shape, const float *values)
{
	struct dj_tensor t = {.desc = {.dtype = dtype, .ndim = ndim}, .mem = DJ_MEM_GPU};
	int64_t n;
	size_t bytes;
	char *host;

	memcpy(t.desc.shape, shape, sizeof(int64_t) * (size_t)ndim);
	n = dj_tensor_numel(&t.desc);
	bytes = dj_tensor_nbytes(&t.desc);
	host = malloc(bytes + 1);
	if (host == NULL || djg_ops_alloc(g, bytes, &t.data) != 0)
		exit(1);
	for (int64_t i = 0; i < n; i++) {
		if (dtype == DJ_DTYPE_FLOAT16)
			((uint16_t *)host)[i] = dj_float_to_half(values[i]);
		else
			((float *)host)[i] = values[i];
	}
	if (djg_ops_copy_in(g, t.data, host, bytes) != 0)
		exit(1);
	free(host);
	return t;
}

static double largest_difference(struct djg_ops *g, const struct dj_tensor *a,
				 const struct dj_tensor *b)
{
	size_t bytes = dj_tensor_nbytes(&a->desc);
	struct dj_tensor ha = {.desc = a->desc, .mem = DJ_MEM_HOST, .data = malloc(bytes + 1)};
	struct dj_tensor hb = {.desc = b->desc, .mem = DJ_MEM_HOST, .data = malloc(bytes + 1)};
	double worst = 0;

	if (ha.data == NULL || hb.data == NULL || djg_ops_copy_out(g, ha.data, a->data, bytes) ||
	    djg_ops_copy_out(g, hb.data, b->data, bytes))
		exit(1);
	for (int64_t i = 0; i < dj_tensor_numel(&a->desc); i++) {
		double d = fabs(dj_tensor_load_f64(&ha, i) - dj_tensor_load_f64(&hb, i));

		worst = isnan(d) ? INFINITY : fmax(worst, d);
	}
	free(ha.data);
	free(hb.data);
	return worst;
}

static void run_case(struct djg_ops *g, const struct options *o, const struct attn_case *c,
		     double *ms)
{
	int64_t B = o->attn_batch, q_shape[4] = {B, c->heads, c->L, HEAD_DIM};
	int64_t kv_shape[4] = {B, c->heads, c->S, HEAD_DIM}, mask_shape[2] = {c->L, c->S};
	struct attn_bench b = {.g = g, .causal = c->prefill};
	struct timed fused = {fused_run, &b}, unfused = {unfused_run, &b};
	struct attn_result *r = &attn_results[n_attn++];
	float scale = 1.0f / sqrtf((float)HEAD_DIM), *mask;
	struct dj_tensor fused_out;
	int64_t pairs = 0;

	b.q = device_tensor(g, c->dtype, 4, q_shape);
	b.k = device_tensor(g, c->dtype, 4, kv_shape);
	b.v = device_tensor(g, c->dtype, 4, kv_shape);
	b.scale = device_values(g, c->dtype, 0, NULL, &scale);
	mask = malloc(sizeof(float) * (size_t)(c->L * c->S));
	if (mask == NULL)
		exit(1);
	for (int64_t i = 0; i < c->L; i++)
		for (int64_t j = 0; j < c->S; j++) {
			int seen = !b.causal || j <= i;

			mask[i * c->S + j] = seen ? 0.0f : -INFINITY;
			pairs += seen;
		}
	b.mask = device_values(g, c->dtype, 2, mask_shape, mask);
	free(mask);

	time_runs(&fused, djg_ops_stream(g), o->warmup, o->reps, ms);
	r->fused_ms = median(ms, o->reps);
	fused_out = b.out;
	b.out.data = NULL;
	time_runs(&unfused, djg_ops_stream(g), o->warmup, o->reps, ms);
	r->unfused_ms = median(ms, o->reps);
	r->max_diff = largest_difference(g, &fused_out, &b.out);
	r->c = *c;
	r->batch = B;
	r->bytes = (double)B * c->heads * (2.0 * c->L + 2.0 * c->S) * HEAD_DIM *
		   dj_dtype_size(c->dtype);
	r->flops = 4.0 * (double)B * c->heads * (double)pairs * HEAD_DIM;
	djg_ops_free(g, fused_out.data);
	drop_output(&b);
	djg_ops_free(g, b.q.data);
	djg_ops_free(g, b.k.data);
	djg_ops_free(g, b.v.data);
	djg_ops_free(g, b.scale.data);
	djg_ops_free(g, b.mask.data);
}

int bench_attention(struct djg_ops *g, const struct options *o, double copy_gbps)
{
	static const int64_t decode_s[] = {64, 256, 1024, 4096}, prefill_s[] = {64, 256, 1024};
	static const int64_t heads[] = {4, 32};
	static const enum dj_dtype dtypes[] = {DJ_DTYPE_FLOAT16, DJ_DTYPE_FLOAT32};
	double *ms = calloc((size_t)o->reps, sizeof(double));

	if (ms == NULL)
		return -1;
	attn_copy_gbps = copy_gbps;
	for (int d = 0; d < 2; d++)
		for (int h = 0; h < 2; h++) {
			for (int s = 0; s < 4; s++) {
				struct attn_case c = {0, dtypes[d], heads[h], 1, decode_s[s]};

				run_case(g, o, &c, ms);
			}
			for (int s = 0; s < 3; s++) {
				struct attn_case c = {1, dtypes[d], heads[h], prefill_s[s], prefill_s[s]};

				run_case(g, o, &c, ms);
			}
		}
	free(ms);
	return 0;
}

void print_attention(void)
{
	if (n_attn == 0)
		return;
	printf("\nattention, head dim %d: fused = one scaled_dot_product_attention; unfused = "
	       "transpose, matmul, mul, [add mask], softmax, matmul, each through "
	       "djg_ops_execute\n", HEAD_DIM);
	printf("%-8s %-8s %5s %5s %5s %5s %10s %10s %8s %18s %10s\n", "phase", "dtype", "batch",
	       "heads", "L", "S", "fused ms", "unfused ms", "speedup", "fused", "max|diff|");
	for (int i = 0; i < n_attn; i++) {
		const struct attn_result *r = &attn_results[i];
		char figure[32];

		if (r->c.prefill)
			snprintf(figure, sizeof(figure), "%.2f TFLOP/s", r->flops / r->fused_ms / 1e9);
		else
			snprintf(figure, sizeof(figure), "%.0f GB/s (%.0f%%)",
				 r->bytes / r->fused_ms / 1e6,
				 attn_copy_gbps > 0 ? 100.0 * r->bytes / r->fused_ms / 1e6 /
							      attn_copy_gbps : 0.0);
		printf("%-8s %-8s %5lld %5lld %5lld %5lld %10.4f %10.4f %7.2fx %18s %10.2g\n",
		       r->c.prefill ? "prefill" : "decode", dj_dtype_name(r->c.dtype),
		       (long long)r->batch, (long long)r->c.heads, (long long)r->c.L,
		       (long long)r->c.S, r->fused_ms, r->unfused_ms, r->unfused_ms / r->fused_ms,
		       figure, r->max_diff);
	}
}

void write_attention_json(FILE *f)
{
	fprintf(f, "\"attention\":[");
	for (int i = 0; i < n_attn; i++) {
		const struct attn_result *r = &attn_results[i];

		fprintf(f, "%s{\"phase\":\"%s\",\"dtype\":\"%s\",\"batch\":%lld,\"heads\":%lld,"
			   "\"L\":%lld,\"S\":%lld,\"head_dim\":%d,\"causal\":%s,\"fused_ms\":%.5f,"
			   "\"unfused_ms\":%.5f,\"speedup\":%.3f,\"max_abs_diff\":%.3g,",
			i ? "," : "", r->c.prefill ? "prefill" : "decode", dj_dtype_name(r->c.dtype),
			(long long)r->batch, (long long)r->c.heads, (long long)r->c.L,
			(long long)r->c.S, HEAD_DIM, r->c.prefill ? "true" : "false", r->fused_ms,
			r->unfused_ms, r->unfused_ms / r->fused_ms, r->max_diff);
		if (r->c.prefill)
			fprintf(f, "\"fused_tflops\":%.3f}", r->flops / r->fused_ms / 1e9);
		else
			fprintf(f, "\"fused_gbps\":%.1f}", r->bytes / r->fused_ms / 1e6);
	}
	fprintf(f, "]");
}
