/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_BENCH_OPS_H
#define DJINN_BENCH_OPS_H

/* Shared by bench-ops' sections (main.c: matmul, memory-bound ops, host
 * cost; attention.c: fused against unfused attention). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "gpu/ops/gpu_ops.h"

struct options {
	int64_t size;  /* matmul M = N = K */
	int64_t elems; /* memory-bound ops */
	int reps, warmup, device;
	int attn_batch;     /* sequences in the attention cases */
	int attention_only; /* skip the other sections */
	const char *json_path;
};

/* One timed thing: run() enqueues one repetition on the context's stream. */
struct timed {
	int (*run)(void *arg);
	void *arg;
};

#define CHECK_CUDA(call)                                                                   \
	do {                                                                               \
		cudaError_t e_ = (call);                                                   \
		if (e_ != cudaSuccess) {                                                   \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,        \
				cudaGetErrorString(e_));                                   \
			exit(1);                                                           \
		}                                                                          \
	} while (0)

/* Median of @p n values (sorts them). */
double median(double *v, int n);
/* Milliseconds of each of @p reps repetitions (CUDA events on @p stream),
 * after @p warmup untimed ones; exits on a failed run. */
void time_runs(const struct timed *t, cudaStream_t stream, int warmup, int reps, double *ms);
/* @p n random values in [-1, 1] (float32 or float16) in new device memory. */
void *random_device(struct djg_ops *g, enum dj_dtype dtype, int64_t n);

/* Attention: fused scaled_dot_product_attention against the unfused chain
 * of our own ops, decode and prefill; table and JSON. */
int bench_attention(struct djg_ops *g, const struct options *o, double copy_gbps);
void print_attention(void);
void write_attention_json(FILE *f);

#endif
