/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-alloc: what zeroing new tensors costs (docs/CONTROL.md, "ALLOC
 * returns zeros").
 *
 *   bench-alloc [--gpu none|N] [--sizes LIST] [--iters N] [--json]
 *
 * For each size, in the same run and interleaved:
 *   store       allocate + free one tensor the way the runtime does, with
 *               zeroing (what ALLOC and a new PUT get) and without (what an
 *               operation's output gets): host memory through the store's
 *               host backend (calloc against malloc), GPU memory from a
 *               stream-ordered pool (cudaMemsetAsync on the stream, then the
 *               sync the runtime does anyway, against the sync alone);
 *   end to end  ALLOC + FREE through a control-plane server on loopback
 *               backed by the runtime, from a client (what a user sees).
 * Medians, minima and maxima over --iters; a table and one JSON line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "common/djc.h"
#include "gpu/ops/gpu_ops.h"
#include "runtime/runtime.h"
#include "tensor/store.h"
#include "../bench-common/rt_server.h"

#define MAX_SIZES 16
#define MAX_ITERS 1000

struct opts {
	const char *gpu;
	uint64_t sizes[MAX_SIZES];
	int n_sizes;
	int iters;
	int json_only;
};

struct spread {
	double median, min, max;
};

struct row {
	uint64_t bytes;
	struct spread zeroed, plain, e2e;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct spread spread_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return (struct spread){.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
			       .min = v[0], .max = v[n - 1]};
}

/* One allocate + free on the host store, microseconds. */
static int host_once(struct tn_store *st, uint64_t sess, uint64_t bytes, int zero, double *us)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_INT32, .ndim = 1, .shape = {(int64_t)(bytes / 4)}};
	uint64_t t0 = djc_time_ns(), h;
	int rc = zero ? tn_store_alloc(st, sess, &d, &h) : tn_store_alloc_output(st, sess, &d, &h);

	if (rc == 0)
		rc = tn_store_free(st, sess, h);
	*us = (double)(djc_time_ns() - t0) / 1e3;
	return rc;
}

/* One allocate (+ zero) + sync + free + sync on the GPU, as the runtime's
 * store backend does, microseconds. */
static int gpu_once(struct djg_ops *g, uint64_t bytes, int zero, double *us)
{
	uint64_t t0 = djc_time_ns();
	void *p = NULL;
	int rc = djg_ops_alloc(g, bytes, &p);

	if (rc == 0 && zero)
		rc = djg_ops_zero(g, p, bytes);
	if (rc == 0)
		rc = djg_ops_sync(g);
	djg_ops_free(g, p);
	if (rc == 0)
		rc = djg_ops_sync(g);
	*us = (double)(djc_time_ns() - t0) / 1e3;
	return rc;
}

static int e2e_once(struct dj_conn *conn, uint64_t bytes, double *us)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_INT32, .ndim = 1, .shape = {(int64_t)(bytes / 4)}};
	uint64_t t0 = djc_time_ns(), h;
	int rc = dj_alloc(conn, &d, &h);

	if (rc == 0)
		rc = dj_free(conn, h);
	*us = (double)(djc_time_ns() - t0) / 1e3;
	return rc;
}

struct bench {
	struct tn_store *store;
	uint64_t sess;
	struct djg_ops *gpu;
	struct rt_runtime *rt;
	struct bench_server server;
};

static int bench_setup(struct bench *b, const struct opts *o)
{
	struct rt_config rcfg = {.gpu = o->gpu};
	int rc;

	if (strcmp(o->gpu, "none") == 0)
		rc = tn_store_create(NULL, &b->store);
	else
		rc = djg_ops_create(atoi(o->gpu), &b->gpu);
	if (rc == 0 && b->store != NULL)
		rc = tn_store_session_open(b->store, 0, &b->sess);
	if (rc == 0)
		rc = rt_create(&rcfg, &b->rt);
	if (rc == 0)
		rc = bench_server_open(b->rt, &b->server);
	return rc;
}

static void bench_teardown(struct bench *b)
{
	bench_server_close(&b->server);
	rt_destroy(b->rt);
	djg_ops_destroy(b->gpu);
	tn_store_destroy(b->store);
}

static int measure(struct bench *b, const struct opts *o, uint64_t bytes, struct row *r)
{
	static double zeroed[MAX_ITERS], plain[MAX_ITERS], e2e[MAX_ITERS];
	int rc = 0;

	r->bytes = bytes;
	/* One warm-up round: the pool, the heap and the page tables settle. */
	for (int i = -1; i < o->iters && rc == 0; i++) {
		double z = 0, p = 0, e = 0;

		rc = b->gpu != NULL ? gpu_once(b->gpu, bytes, 1, &z) : host_once(b->store, b->sess, bytes, 1, &z);
		if (rc == 0)
			rc = b->gpu != NULL ? gpu_once(b->gpu, bytes, 0, &p) :
			     host_once(b->store, b->sess, bytes, 0, &p);
		if (rc == 0)
			rc = e2e_once(b->server.conn, bytes, &e);
		if (i >= 0) {
			zeroed[i] = z;
			plain[i] = p;
			e2e[i] = e;
		}
	}
	if (rc != 0)
		return rc;
	r->zeroed = spread_of(zeroed, o->iters);
	r->plain = spread_of(plain, o->iters);
	r->e2e = spread_of(e2e, o->iters);
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	switch (*end) {
	case 'G': case 'g': shift = 30; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'K': case 'k': shift = 10; end++; break;
	default: break;
	}
	if (end == s || *end != '\0' || v == 0 || v > (1ull << 40) >> shift ||
	    ((uint64_t)v << shift) % 4 != 0)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{"gpu", required_argument, NULL, 'g'},
		{"sizes", required_argument, NULL, 's'},
		{"iters", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char list[256] = "64K,16M,1G", *tok, *save = NULL;
	int c;

	*o = (struct opts){.gpu = "none", .iters = 10};
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'g': o->gpu = optarg; break;
		case 's': snprintf(list, sizeof(list), "%s", optarg); break;
		case 'i': o->iters = atoi(optarg); break;
		case 'j': o->json_only = 1; break;
		default:
			printf("Usage: %s [--gpu none|N] [--sizes 64K,16M,1G] [--iters N] [--json]\n",
			       argv[0]);
			return c == 'h' ? 1 : -EINVAL;
		}
	}
	if (optind != argc || o->iters < 1 || o->iters > MAX_ITERS) {
		fprintf(stderr, "bench-alloc: bad arguments (--iters 1..%d, no operands)\n", MAX_ITERS);
		return -EINVAL;
	}
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (o->n_sizes == MAX_SIZES || parse_size(tok, &o->sizes[o->n_sizes++]) != 0) {
			fprintf(stderr, "bench-alloc: bad size '%s' (a multiple of 4 bytes, K/M/G)\n", tok);
			return -EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct row rows[MAX_SIZES];
	struct bench b = {0};
	struct opts o;
	int rc = parse_args(argc, argv, &o);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	dj_log_set_level(DJ_LOG_WARN);
	rc = bench_setup(&b, &o);
	for (int i = 0; i < o.n_sizes && rc == 0; i++)
		rc = measure(&b, &o, o.sizes[i], &rows[i]);
	bench_teardown(&b);
	if (rc != 0) {
		fprintf(stderr, "bench-alloc: %s\n", dj_strerror(rc));
		return 1;
	}
	if (!o.json_only) {
		printf("memory: %s; %d iterations; microseconds, median [min, max]\n",
		       strcmp(o.gpu, "none") ? "GPU (pool + cudaMemsetAsync)" : "host (calloc vs malloc)",
		       o.iters);
		printf("%12s  %-28s  %-28s  %-28s\n", "bytes", "alloc+free, zeroed",
		       "alloc+free, not zeroed", "ALLOC+FREE via server");
		for (int i = 0; i < o.n_sizes; i++)
			printf("%12llu  %8.1f [%8.1f, %8.1f]  %8.1f [%8.1f, %8.1f]  %8.1f [%8.1f, %8.1f]\n",
			       (unsigned long long)rows[i].bytes, rows[i].zeroed.median,
			       rows[i].zeroed.min, rows[i].zeroed.max, rows[i].plain.median,
			       rows[i].plain.min, rows[i].plain.max, rows[i].e2e.median,
			       rows[i].e2e.min, rows[i].e2e.max);
	}
	printf("{\"bench\":\"alloc\",\"memory\":\"%s\",\"iters\":%d,\"sizes\":[", o.gpu, o.iters);
	for (int i = 0; i < o.n_sizes; i++)
		printf("%s{\"bytes\":%llu,\"zeroed_us\":%.1f,\"zeroed_min_us\":%.1f,\"zeroed_max_us\":%.1f,"
		       "\"plain_us\":%.1f,\"plain_min_us\":%.1f,\"plain_max_us\":%.1f,"
		       "\"server_us\":%.1f,\"server_min_us\":%.1f,\"server_max_us\":%.1f}",
		       i ? "," : "", (unsigned long long)rows[i].bytes, rows[i].zeroed.median,
		       rows[i].zeroed.min, rows[i].zeroed.max, rows[i].plain.median, rows[i].plain.min,
		       rows[i].plain.max, rows[i].e2e.median, rows[i].e2e.min, rows[i].e2e.max);
	printf("]}\n");
	return 0;
}
