/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-ops: the GPU operations timed on the device.
 *
 *   bench-ops [--size N] [--elems N] [--reps N] [--warmup N] [--device N]
 *             [--attn-batch N] [--attention-only] [--json FILE]
 *
 * 1. matmul: fp16 N x N x N through Djinn's op path (djg_ops_execute:
 *    inference, output allocation from the pool, cuBLAS) against cuBLAS
 *    called directly (cublasGemmEx, same types, output allocated once), in
 *    the same run, interleaved; TFLOP/s of each and their ratio. Both outputs
 *    are compared bit for bit.
 * 2. memory-bound operations on --elems float32 elements against the floor
 *    of their bytes at the measured device-to-device copy bandwidth;
 * 3. the host cost of one request (a one-element relu): run into a fixed
 *    output, and execute + free;
 * 4. attention (attention.c): the fused scaled_dot_product_attention
 *    against the unfused chain of our own ops, decode and prefill.
 * Times: CUDA events around each run on the context's stream, median of
 * --reps runs after --warmup. Prints a table, then one JSON object.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "gpu/ops/gpu_ops.h"
#include "tensor/ops.h"
#include "bench_ops.h"

struct result {
	char name[48];
	double ms;       /* median */
	double bytes;    /* minimum traffic, 0 for matmul */
	double flops;    /* 0 for memory-bound ops */
};

#define MAX_RESULTS 32
static struct result results[MAX_RESULTS];
static int n_results;
static double copy_gbps;
static double host_us_per_op, host_us_run, host_us_memset;

static void usage(const char *prog)
{
	printf("Usage: %s [options]\n"
	       "  --size N            matmul M = N = K, fp16 (default 4096)\n"
	       "  --elems N           float32 elements for memory-bound ops (default 67108864)\n"
	       "  --reps N            timed repetitions, the median is kept (default 50)\n"
	       "  --warmup N          untimed repetitions first (default 10)\n"
	       "  --device N          CUDA device (default 0)\n"
	       "  --attn-batch N      sequences in the attention cases (default 1)\n"
	       "  --attention-only    only the attention section\n"
	       "  --json FILE         also write the JSON result there\n",
	       prog);
}

static int parse_option(int c, const char *arg, void *opts)
{
	struct options *o = opts;
	uint64_t v;
	int rc;

	switch (c) {
	case 's':
		rc = djc_opt_u64("--size", arg, 1, 1 << 20, &v);
		o->size = rc == 0 ? (int64_t)v : o->size;
		return rc;
	case 'e':
		rc = djc_opt_size("--elems", arg, 1, INT64_MAX / 8, &v);
		o->elems = rc == 0 ? (int64_t)v : o->elems;
		return rc;
	case 'r': return djc_opt_int("--reps", arg, 1, 100000, &o->reps);
	case 'w': return djc_opt_int("--warmup", arg, 0, 100000, &o->warmup);
	case 'd': return djc_opt_int("--device", arg, 0, 1023, &o->device);
	case 'j': o->json_path = arg; return 0;
	case 'b': return djc_opt_int("--attn-batch", arg, 1, 4096, &o->attn_batch);
	case 'a': o->attention_only = 1; return 0;
	default: return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, void *opts)
{
	static const struct option longs[] = {
		{"size", required_argument, NULL, 's'},  {"elems", required_argument, NULL, 'e'},
		{"reps", required_argument, NULL, 'r'},  {"warmup", required_argument, NULL, 'w'},
		{"device", required_argument, NULL, 'd'}, {"json", required_argument, NULL, 'j'},
		{"attn-batch", required_argument, NULL, 'b'},
		{"attention-only", no_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};

	return djc_cli_getopt(argc, argv, "", longs, parse_option, opts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Milliseconds of each repetition, between events on @p stream. */
void time_runs(const struct timed *t, cudaStream_t stream, int warmup, int reps, double *ms)
{
	cudaEvent_t start, stop;

	CHECK_CUDA(cudaEventCreate(&start));
	CHECK_CUDA(cudaEventCreate(&stop));
	for (int i = 0; i < warmup; i++)
		if (t->run(t->arg) != 0)
			exit(1);
	for (int i = 0; i < reps; i++) {
		float elapsed;

		CHECK_CUDA(cudaEventRecord(start, stream));
		if (t->run(t->arg) != 0)
			exit(1);
		CHECK_CUDA(cudaEventRecord(stop, stream));
		CHECK_CUDA(cudaEventSynchronize(stop));
		CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
		ms[i] = elapsed;
	}
	CHECK_CUDA(cudaEventDestroy(start));
	CHECK_CUDA(cudaEventDestroy(stop));
}

static struct result *add_result(const char *name, double ms, double bytes, double flops)
{
	struct result *r = &results[n_results++];

	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ms = ms;
	r->bytes = bytes;
	r->flops = flops;
	return r;
}

/* Random values in [-1, 1], written with the library's own conversions. */
void *random_device(struct djg_ops *g, enum dj_dtype dtype, int64_t n)
{
	size_t esize = dj_dtype_size(dtype);
	char *host = malloc((size_t)n * esize);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	void *dev;

	if (host == NULL || djg_ops_alloc(g, (size_t)n * esize, &dev) != 0) {
		fprintf(stderr, "out of memory for %lld elements\n", (long long)n);
		exit(1);
	}
	for (int64_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		float v = (float)((double)(x >> 11) / 4503599627370496.0 - 1.0);

		if (dtype == DJ_DTYPE_FLOAT16)
			((uint16_t *)host)[i] = dj_float_to_half(v);
		else
			((float *)host)[i] = v;
	}
	if (djg_ops_copy_in(g, dev, host, (size_t)n * esize) != 0)
		exit(1);
	free(host);
	return dev;
}

/* ---- matmul ---- */

struct matmul_bench {
	struct djg_ops *g;
	cublasHandle_t blas;
	struct dj_tensor in[3]; /* A, B (also linear's weight), linear's bias */
	void *direct_out;
	int64_t n;
	struct dj_tensor last; /* Djinn's output of the last repetition */
};

/* As the server runs a request: infer, allocate the result, compute. */
static int execute_op(struct matmul_bench *b, const char *name, int n_in)
{
	struct tn_op_attrs attrs;
	char err[TN_OP_ERR_LEN];
	int rc;

	tn_op_attrs_init(&attrs);
	djg_ops_free(b->g, b->last.data);
	b->last.data = NULL;
	rc = djg_ops_execute(b->g, tn_op_find(name), b->in, n_in, &attrs, &b->last, err,
				sizeof(err));
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

static int matmul_djinn(void *arg)
{
	return execute_op(arg, "matmul", 2);
}

/* linear(x, W, b): the same product with W transposed and the bias fused. */
static int linear_djinn(void *arg)
{
	return execute_op(arg, "linear", 3);
}

static int matmul_direct(void *arg)
{
	struct matmul_bench *b = arg;
	const float one = 1.0f, zero = 0.0f;
	int n = (int)b->n;
	cublasStatus_t s;

	/* Row-major C = A.B is column-major C^T = B^T.A^T. */
	s = cublasGemmEx(b->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b->in[1].data,
			 CUDA_R_16F, n, b->in[0].data, CUDA_R_16F, n, &zero, b->direct_out,
			 CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	if (s != CUBLAS_STATUS_SUCCESS)
		fprintf(stderr, "cublasGemmEx: %s\n", cublasGetStatusString(s));
	return s == CUBLAS_STATUS_SUCCESS ? 0 : -EIO;
}

static int outputs_identical(struct matmul_bench *b)
{
	size_t bytes = (size_t)(b->n * b->n) * 2;
	char *x = malloc(bytes), *y = malloc(bytes);
	int same;

	if (x == NULL || y == NULL || djg_ops_copy_out(b->g, x, b->last.data, bytes) != 0 ||
	    djg_ops_copy_out(b->g, y, b->direct_out, bytes) != 0)
		exit(1);
	same = memcmp(x, y, bytes) == 0;
	free(x);
	free(y);
	return same;
}

static int bench_matmul(struct djg_ops *g, const struct options *o)
{
	struct matmul_bench b = {.g = g, .n = o->size};
	cudaStream_t stream = djg_ops_stream(g);
	double *ms_djinn = calloc(o->reps, sizeof(double));
	double *ms_direct = calloc(o->reps, sizeof(double));
	double flops = 2.0 * (double)o->size * (double)o->size * (double)o->size;
	struct timed djinn = {matmul_djinn, &b}, direct = {matmul_direct, &b};
	struct timed linear = {linear_djinn, &b};
	int same;

	if (ms_djinn == NULL || ms_direct == NULL)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		b.in[i] = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 2,
						      .shape = {o->size, o->size}},
					     .mem = DJ_MEM_GPU};
		b.in[i].data = random_device(g, DJ_DTYPE_FLOAT16, o->size * o->size);
	}
	b.in[2] = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 1,
					      .shape = {o->size}},
				     .mem = DJ_MEM_GPU};
	b.in[2].data = random_device(g, DJ_DTYPE_FLOAT16, o->size);
	if (djg_ops_alloc(g, (size_t)(o->size * o->size) * 2, &b.direct_out) != 0 ||
	    cublasCreate(&b.blas) != CUBLAS_STATUS_SUCCESS ||
	    cublasSetStream(b.blas, stream) != CUBLAS_STATUS_SUCCESS)
		return -EIO;
	/* Interleaved rounds so clock or thermal drift hits both alike. */
	for (int round = 0; round < 2; round++) {
		int half = (o->reps + 1) / 2, off = round * half;
		int n = round ? o->reps - half : half;

		time_runs(&djinn, stream, o->warmup, n, ms_djinn + off);
		time_runs(&direct, stream, o->warmup, n, ms_direct + off);
	}
	same = outputs_identical(&b);
	add_result("matmul fp16 djinn", median(ms_djinn, o->reps), 0, flops);
	add_result("matmul fp16 cublas", median(ms_direct, o->reps), 0, flops);
	time_runs(&linear, stream, o->warmup, o->reps, ms_djinn);
	add_result("linear fp16 +bias djinn", median(ms_djinn, o->reps), 0, flops);
	printf("matmul outputs of Djinn and direct cuBLAS: %s\n",
	       same ? "bit-identical" : "DIFFERENT");
	cublasDestroy(b.blas);
	djg_ops_free(g, b.last.data);
	djg_ops_free(g, b.direct_out);
	djg_ops_free(g, b.in[0].data);
	djg_ops_free(g, b.in[1].data);
	djg_ops_free(g, b.in[2].data);
	free(ms_djinn);
	free(ms_direct);
	return same ? 0 : -EIO;
}

/* ---- memory-bound operations ---- */

struct op_bench {
	struct djg_ops *g;
	const struct tn_op *op;
	struct dj_tensor in[2], out;
	struct tn_op_attrs attrs;
};

static int op_run(void *arg)
{
	struct op_bench *b = arg;
	char err[TN_OP_ERR_LEN];
	int n_in = b->op->min_inputs;
	int rc = djg_ops_run(b->g, b->op, b->in, n_in, &b->attrs, &b->out, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

static int copy_run(void *arg)
{
	struct op_bench *b = arg;

	return cudaMemcpyAsync(b->out.data, b->in[0].data, dj_tensor_nbytes(&b->in[0].desc),
			       cudaMemcpyDeviceToDevice, djg_ops_stream(b->g)) == cudaSuccess
		       ? 0 : -EIO;
}

struct op_case {
	const char *label, *op;
	enum dj_dtype dtype;
	int second_is_row; /* second input: [cols] (a bias) instead of the full shape */
	int has_dim, dim;
	int bytes_in_out;  /* passes over the tensor's bytes: reads plus writes */
};

/* Inputs of one dtype: a and b of the full shape, a bias row. */
struct op_inputs {
	void *a, *b, *bias;
};

static void run_op_case(struct djg_ops *g, const struct options *o, const struct op_case *c,
			const struct op_inputs *in, void *out, double *ms)
{
	int64_t cols = 8192, rows = o->elems / cols;
	struct op_bench b = {.g = g, .op = c->op ? tn_op_find(c->op) : NULL};
	struct dj_tensor_desc desc = {.dtype = c->dtype, .ndim = 2, .shape = {rows, cols}};
	struct dj_tensor_desc row = {.dtype = c->dtype, .ndim = 1, .shape = {cols}};
	struct timed t = {c->op ? op_run : copy_run, &b};
	char err[TN_OP_ERR_LEN];

	tn_op_attrs_init(&b.attrs);
	b.attrs.has_dim = c->has_dim;
	b.attrs.dim = c->dim;
	b.in[0] = (struct dj_tensor){.desc = desc, .data = in->a, .mem = DJ_MEM_GPU};
	b.in[1] = (struct dj_tensor){.desc = c->second_is_row ? row : desc,
				     .data = c->second_is_row ? in->bias : in->b,
				     .mem = DJ_MEM_GPU};
	b.out = (struct dj_tensor){.desc = desc, .data = out, .mem = DJ_MEM_GPU};
	if (c->op && tn_op_infer(b.op, (struct dj_tensor_desc[]){b.in[0].desc, b.in[1].desc},
				 b.op->min_inputs, &b.attrs, &b.out.desc, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	time_runs(&t, djg_ops_stream(g), o->warmup, o->reps, ms);
	add_result(c->label, median(ms, o->reps),
		   (double)c->bytes_in_out * (double)(rows * cols) * dj_dtype_size(c->dtype), 0);
}

static struct op_inputs make_inputs(struct djg_ops *g, enum dj_dtype dtype, int64_t n)
{
	return (struct op_inputs){random_device(g, dtype, n), random_device(g, dtype, n),
				  random_device(g, dtype, 8192)};
}

static void free_inputs(struct djg_ops *g, struct op_inputs *in)
{
	djg_ops_free(g, in->a);
	djg_ops_free(g, in->b);
	djg_ops_free(g, in->bias);
}

static void bench_memory_ops(struct djg_ops *g, const struct options *o)
{
	static const struct op_case cases[] = {
		{"copy d2d (ceiling)", NULL, DJ_DTYPE_FLOAT32, 0, 0, 0, 2},
		{"add f32", "add", DJ_DTYPE_FLOAT32, 0, 0, 0, 3},
		{"add f32 + bias[cols]", "add", DJ_DTYPE_FLOAT32, 1, 0, 0, 2},
		{"add f16", "add", DJ_DTYPE_FLOAT16, 0, 0, 0, 3},
		{"relu f32", "relu", DJ_DTYPE_FLOAT32, 0, 0, 0, 2},
		{"gelu f32", "gelu", DJ_DTYPE_FLOAT32, 0, 0, 0, 2},
		{"sum f32 (all)", "sum", DJ_DTYPE_FLOAT32, 0, 0, 0, 1},
		{"sum f32 dim -1", "sum", DJ_DTYPE_FLOAT32, 0, 1, -1, 1},
		{"sum f32 dim 0", "sum", DJ_DTYPE_FLOAT32, 0, 1, 0, 1},
		{"softmax f32 dim -1", "softmax", DJ_DTYPE_FLOAT32, 0, 1, -1, 2},
		{"softmax f16 dim -1", "softmax", DJ_DTYPE_FLOAT16, 0, 1, -1, 2},
		{"layer_norm f32", "layer_norm", DJ_DTYPE_FLOAT32, 0, 0, 0, 2},
		{"layer_norm f16", "layer_norm", DJ_DTYPE_FLOAT16, 0, 0, 0, 2},
		{"transpose f32", "transpose", DJ_DTYPE_FLOAT32, 0, 0, 0, 2},
	};
	int64_t n = o->elems / 8192 * 8192;
	struct op_inputs f32 = make_inputs(g, DJ_DTYPE_FLOAT32, n);
	struct op_inputs f16 = make_inputs(g, DJ_DTYPE_FLOAT16, n);
	double *ms = calloc(o->reps, sizeof(double));
	void *out;

	if (ms == NULL || djg_ops_alloc(g, (size_t)n * 4, &out) != 0)
		exit(1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_op_case(g, o, &cases[i], cases[i].dtype == DJ_DTYPE_FLOAT16 ? &f16 : &f32, out,
			    ms);
		if (i == 0)
			copy_gbps = results[n_results - 1].bytes / results[n_results - 1].ms / 1e6;
	}
	free(ms);
	djg_ops_free(g, out);
	free_inputs(g, &f32);
	free_inputs(g, &f16);
}

/*
 * Host cost of one request on a warm context, for a one-element relu whose
 * GPU work is negligible, enqueued back to back: the bound on one thread's
 * request rate. "run" writes into an output allocated once (as the runtime
 * does with store memory); "execute" also allocates and frees it.
 */
struct host_cost {
	struct djg_ops *g;
	const struct tn_op *relu;
	struct tn_op_attrs attrs;
	struct dj_tensor x, y;
};

static int host_run(struct host_cost *h)
{
	char err[TN_OP_ERR_LEN];

	return djg_ops_run(h->g, h->relu, &h->x, 1, &h->attrs, &h->y, err, sizeof(err));
}

static int host_execute(struct host_cost *h)
{
	char err[TN_OP_ERR_LEN];
	struct dj_tensor y;
	int rc = djg_ops_execute(h->g, h->relu, &h->x, 1, &h->attrs, &y, err, sizeof(err));

	djg_ops_free(h->g, y.data);
	return rc;
}

/* A floor for comparison: one bare asynchronous CUDA call. */
static int host_memset(struct host_cost *h)
{
	return cudaMemsetAsync(h->y.data, 0, 4, djg_ops_stream(h->g)) == cudaSuccess ? 0 : -EIO;
}

static double host_us(struct host_cost *h, int (*request)(struct host_cost *))
{
	enum { CALLS = 20000 };
	uint64_t start = 0;

	for (int pass = 0; pass < 2; pass++) { /* the first one warms up */
		start = djc_time_ns();
		for (int i = 0; i < CALLS; i++)
			if (request(h) != 0)
				exit(1);
		if (djg_ops_sync(h->g) != 0)
			exit(1);
	}
	return (double)(djc_time_ns() - start) / 1e3 / CALLS;
}

static void bench_host_cost(struct djg_ops *g)
{
	struct host_cost h = {.g = g, .relu = tn_op_find("relu")};

	tn_op_attrs_init(&h.attrs);
	h.x = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
				 .mem = DJ_MEM_GPU};
	h.y = h.x;
	h.x.data = random_device(g, DJ_DTYPE_FLOAT32, 1);
	h.y.data = random_device(g, DJ_DTYPE_FLOAT32, 1);
	host_us_memset = host_us(&h, host_memset);
	host_us_run = host_us(&h, host_run);
	host_us_per_op = host_us(&h, host_execute);
	djg_ops_free(g, h.x.data);
	djg_ops_free(g, h.y.data);
}

/* ---- report ---- */

static double matmul_ratio(void)
{
	return n_results >= 2 ? results[1].ms / results[0].ms : 0.0;
}

static void print_table(const char *device)
{
	printf("\nbench-ops on %s (median of CUDA-event times)\n", device);
	if (n_results == 0)
		return;
	printf("%-24s %10s %10s %10s %9s\n", "operation", "ms", "TFLOP/s", "GB/s", "of copy");
	for (int i = 0; i < n_results; i++) {
		const struct result *r = &results[i];

		printf("%-24s %10.4f", r->name, r->ms);
		if (r->flops)
			printf(" %10.1f %10s %9s\n", r->flops / r->ms / 1e9, "-", "-");
		else
			printf(" %10s %10.0f %8.0f%%\n", "-", r->bytes / r->ms / 1e6,
			       100.0 * (r->bytes / r->ms / 1e6) / copy_gbps);
	}
	printf("matmul Djinn / direct cuBLAS: %.1f%% (goal >= 85%%)\n", 100.0 * matmul_ratio());
	printf("host cost per request (tiny relu): run %.2f us, execute + free %.2f us "
	       "(a bare cudaMemsetAsync: %.2f us)\n",
	       host_us_run, host_us_per_op, host_us_memset);
}

static void write_json(FILE *f, const char *device, const struct options *o)
{
	fprintf(f, "{\"bench\":\"bench-ops\",\"device\":\"%s\",\"matmul_size\":%lld,"
		   "\"elems\":%lld,\"reps\":%d,\"warmup\":%d,\"copy_gbps\":%.1f,"
		   "\"matmul_ratio\":%.4f,\"host_us_run\":%.3f,\"host_us_execute\":%.3f,"
		   "\"host_us_memset\":%.3f,\"results\":[",
		device, (long long)o->size, (long long)o->elems, o->reps, o->warmup, copy_gbps,
		matmul_ratio(), host_us_run, host_us_per_op, host_us_memset);
	for (int i = 0; i < n_results; i++) {
		const struct result *r = &results[i];

		fprintf(f, "%s{\"name\":\"%s\",\"ms\":%.5f", i ? "," : "", r->name, r->ms);
		if (r->flops)
			fprintf(f, ",\"tflops\":%.2f}", r->flops / r->ms / 1e9);
		else
			fprintf(f, ",\"gbps\":%.1f,\"of_copy\":%.3f}", r->bytes / r->ms / 1e6,
				(r->bytes / r->ms / 1e6) / copy_gbps);
	}
	fprintf(f, "],");
	write_attention_json(f);
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	struct cudaDeviceProp prop;
	struct djg_ops *g;
	struct options o = {.size = 4096, .elems = 64 << 20, .reps = 50, .warmup = 10,
			     .attn_batch = 1};
	const struct djc_cli_tool tool = {
		.name = "bench-ops", .usage = usage, .parse = parse_options, .opts = &o,
	};
	int rc = djc_cli_begin(&tool, argc, argv);

	if (rc >= 0)
		return rc;
	rc = djg_ops_create(o.device, &g);
	if (rc != 0) {
		fprintf(stderr, "bench-ops: no GPU context: %s\n", dj_strerror(rc));
		return 1;
	}
	CHECK_CUDA(cudaGetDeviceProperties(&prop, o.device));
	/* Results 0 and 1 are the two matmuls: the table and JSON rely on it. */
	if (!o.attention_only) {
		rc = bench_matmul(g, &o);
		bench_memory_ops(g, &o);
		bench_host_cost(g);
	}
	if (bench_attention(g, &o, copy_gbps) != 0)
		rc = -ENOMEM;
	print_table(prop.name);
	print_attention();
	write_json(stdout, prop.name, &o);
	if (o.json_path) {
		FILE *f = fopen(o.json_path, "w");

		if (f) {
			write_json(f, prop.name, &o);
			fclose(f);
		}
	}
	djg_ops_destroy(g);
	return rc ? 1 : 0;
}
