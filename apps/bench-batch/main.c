/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-batch: what one operation of an EXECUTE batch costs beyond the
 * operation itself (issue 14's LLM goal: a decode step is one batch of
 * ~1700 small operations).
 *
 *   bench-batch [--gpu none|N] [--ops N] [--elems LIST] [--runs R] [--json]
 *
 * For each tensor size (float32 elements), a chain of N adds (x = x + b,
 * each freeing the x before it), timed three ways in the same run, each
 * --runs times, interleaved:
 *   in process, per op   the runtime's backend table, one call per op (what
 *                        djinn-llm's "in-process runtime" baseline does:
 *                        on a GPU, a wait after every op);
 *   in process, batch    the same calls between batch_begin / batch_end (the
 *                        runtime's batch mode: on a GPU, one wait at the end);
 *   server batch         one EXECUTE of N entries ("$k" inputs, "free"
 *                        lists) to a control-plane server on loopback over
 *                        the same runtime: JSON, worker, reply included.
 * Microseconds per operation: median, minimum and maximum over the runs; a
 * table and one JSON line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "common/djc.h"
#include "controlplane/ctl.h"
#include "runtime/runtime.h"
#include "../bench-common/rt_server.h"

#define MAX_SIZES 8
#define MAX_RUNS 100
#define N_WAYS 3

static const char *const way_name[N_WAYS] = {"in process, per op", "in process, batch",
					     "server batch"};
static const char *const way_key[N_WAYS] = {"inproc_op", "inproc_batch", "server_batch"};

struct opts {
	const char *gpu;
	int ops;
	int64_t elems[MAX_SIZES];
	int n_sizes;
	int runs;
	int json_only;
};

struct bench {
	struct rt_runtime *rt;
	void *sess;                     /* the runtime's session, in process */
	struct bench_server server;
	const struct opts *o;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A vector of n float32 halves in session s of the runtime. */
static int vec_put(struct bench *b, int64_t n, float value, uint64_t *h)
{
	const struct ctl_backend *be = rt_backend();
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {n}};
	struct ctl_tensor_io io;
	char err[CTL_ERRMSG_MAX] = "";
	float *v = malloc((size_t)n * sizeof(float));
	int rc = v != NULL ? be->alloc(b->rt, b->sess, &d, h, err) : -ENOMEM;

	for (int64_t i = 0; v != NULL && i < n; i++)
		v[i] = value;
	if (rc == 0)
		rc = be->write_begin(b->rt, b->sess, *h, &io, err);
	if (rc == 0) {
		rc = be->write_chunk(b->rt, b->sess, &io, 0, v, (size_t)n * sizeof(float), err);
		be->write_end(b->rt, b->sess, &io, rc);
	}
	free(v);
	return rc;
}

/* The chain through the backend table; batch: bracketed as a batch. */
static int chain_inproc(struct bench *b, uint64_t x0, uint64_t y, int batch, double *us)
{
	const struct ctl_backend *be = rt_backend();
	cJSON *attrs = cJSON_CreateObject();
	struct dj_tensor_desc desc[DJ_MAX_OP_ARGS];
	char err[CTL_ERRMSG_MAX] = "";
	uint64_t x = x0, out[DJ_MAX_OP_ARGS];
	uint64_t t0 = djc_time_ns();
	int rc = attrs != NULL ? 0 : -ENOMEM, n_out;

	if (batch)
		be->batch_begin(b->rt, b->sess);
	for (int k = 0; k < b->o->ops && rc == 0; k++) {
		rc = be->execute(b->rt, b->sess, "add", (uint64_t[]){x, y}, 2, attrs, out, desc,
				 &n_out, err);
		if (rc == 0 && x != x0)
			rc = be->free(b->rt, b->sess, x, err);
		if (rc == 0)
			x = out[0];
	}
	if (batch) {
		int end = be->batch_end(b->rt, b->sess, err);

		rc = rc != 0 ? rc : end;
	}
	*us = (double)(djc_time_ns() - t0) / 1e3 / b->o->ops;
	if (x != x0)
		be->free(b->rt, b->sess, x, err);
	cJSON_Delete(attrs);
	if (rc != 0)
		fprintf(stderr, "bench-batch: in process: %s %s\n", dj_strerror(rc), err);
	return rc;
}

/* The chain as one EXECUTE over the connection (its inputs put inside). */
static int chain_server(struct bench *b, int64_t n, double *us)
{
	int ops = b->o->ops;
	struct dj_batch_op *e = calloc((size_t)ops + 2, sizeof(*e));
	char (*ref)[16] = calloc((size_t)ops + 2, sizeof(*ref));
	int *frees = calloc((size_t)ops + 2, sizeof(int));
	uint64_t *outs = calloc((size_t)ops + 2, sizeof(uint64_t));
	float *v = calloc((size_t)n, sizeof(float));
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {n}},
			      .mem = DJ_MEM_HOST, .data = v};
	uint64_t t0;
	int rc = e != NULL && ref != NULL && frees != NULL && outs != NULL && v != NULL ? 0 :
		 -ENOMEM;

	/* Entries 0 and 1: x0 and y put; entry k + 2: $prev + $1, freeing
	 * $prev (not x0's entry: the last output is freed after). */
	for (int k = 0; rc == 0 && k < ops + 2; k++) {
		snprintf(ref[k], sizeof(ref[k]), "$%d", k);
		frees[k] = k;
		if (k < 2) {
			e[k].put = &t;
			continue;
		}
		e[k].op = "add";
		e[k].n_in = 2;
		e[k].inputs[0] = ref[k == 2 ? 0 : k - 1];
		e[k].inputs[1] = ref[1];
		e[k].free = &frees[k - 1];
		e[k].n_free = k >= 3;
	}
	t0 = djc_time_ns();
	if (rc == 0)
		rc = dj_execute_batch(b->server.conn, e, ops + 2, outs);
	*us = (double)(djc_time_ns() - t0) / 1e3 / ops;
	if (rc == 0) {
		dj_free(b->server.conn, outs[0]);
		dj_free(b->server.conn, outs[1]);
		dj_free(b->server.conn, outs[ops + 1]);
	} else {
		fprintf(stderr, "bench-batch: server batch: %s\n", dj_strerror(rc));
	}
	free(e);
	free(ref);
	free(frees);
	free(outs);
	free(v);
	return rc;
}

static int bench_setup(struct bench *b, const struct opts *o)
{
	struct rt_config rcfg = {.gpu = o->gpu};
	char err[CTL_ERRMSG_MAX] = "";
	int rc = rt_create(&rcfg, &b->rt);

	b->o = o;
	if (rc == 0)
		rc = rt_backend()->session_open(b->rt, 1, &b->sess, err);
	if (rc == 0)
		rc = bench_server_open(b->rt, &b->server);
	return rc;
}

static void bench_teardown(struct bench *b)
{
	bench_server_close(&b->server);
	if (b->sess != NULL)
		rt_backend()->session_close(b->rt, b->sess);
	rt_destroy(b->rt);
}

/* One size: every way --runs times, interleaved; us[way][run]. */
static int measure(struct bench *b, int64_t n, double us[N_WAYS][MAX_RUNS])
{
	uint64_t x0 = 0, y = 0;
	int rc = vec_put(b, n, 1.0f, &x0);
	char err[CTL_ERRMSG_MAX];

	if (rc == 0)
		rc = vec_put(b, n, 0.5f, &y);
	/* One of each first, untimed: pools and caches warm. */
	for (int r = -1; r < b->o->runs && rc == 0; r++) {
		double w[N_WAYS];

		rc = chain_inproc(b, x0, y, 0, &w[0]);
		if (rc == 0)
			rc = chain_inproc(b, x0, y, 1, &w[1]);
		if (rc == 0)
			rc = chain_server(b, n, &w[2]);
		for (int k = 0; r >= 0 && k < N_WAYS; k++)
			us[k][r] = w[k];
	}
	if (x0 != 0)
		rt_backend()->free(b->rt, b->sess, x0, err);
	if (y != 0)
		rt_backend()->free(b->rt, b->sess, y, err);
	return rc;
}

static void report(const struct opts *o, const char *compute, double us[][N_WAYS][MAX_RUNS])
{
	cJSON *j = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(j, "rows");
	char *text;

	if (!o->json_only) {
		printf("bench-batch: %d adds in a chain, %d runs, compute %s\n", o->ops, o->runs,
		       compute);
		printf("%8s  %-20s %10s %10s %10s\n", "elems", "way", "us/op med", "min", "max");
	}
	for (int s = 0; s < o->n_sizes; s++)
		for (int k = 0; k < N_WAYS; k++) {
			double v[MAX_RUNS];
			cJSON *row = cJSON_CreateObject();

			memcpy(v, us[s][k], sizeof(double) * (size_t)o->runs);
			qsort(v, (size_t)o->runs, sizeof(double), cmp_double);
			if (!o->json_only)
				printf("%8lld  %-20s %10.2f %10.2f %10.2f\n", (long long)o->elems[s],
				       way_name[k], v[o->runs / 2], v[0], v[o->runs - 1]);
			cJSON_AddNumberToObject(row, "elems", (double)o->elems[s]);
			cJSON_AddStringToObject(row, "way", way_key[k]);
			cJSON_AddNumberToObject(row, "us_per_op_median", v[o->runs / 2]);
			cJSON_AddNumberToObject(row, "us_per_op_min", v[0]);
			cJSON_AddNumberToObject(row, "us_per_op_max", v[o->runs - 1]);
			cJSON_AddItemToArray(rows, row);
		}
	cJSON_AddStringToObject(j, "bench", "batch");
	cJSON_AddStringToObject(j, "compute", compute);
	cJSON_AddNumberToObject(j, "ops", o->ops);
	cJSON_AddNumberToObject(j, "runs", o->runs);
	text = cJSON_PrintUnformatted(j);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	cJSON_Delete(j);
}

static void usage(void)
{
	printf("usage: bench-batch [--gpu none|N] [--ops N] [--elems LIST] [--runs R] [--json]\n"
	       "A chain of N adds (default 1000) on float32 vectors of each size in LIST\n"
	       "(default 1,256): in process one call per op, in process as a batch, and as\n"
	       "one EXECUTE to a server on loopback; microseconds per op over R runs (5).\n");
}

static int options(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{"gpu", required_argument, NULL, 'g'}, {"ops", required_argument, NULL, 'n'},
		{"elems", required_argument, NULL, 'e'}, {"runs", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct opts){.gpu = "none", .ops = 1000, .elems = {1, 256}, .n_sizes = 2,
			   .runs = 5};
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		char *p, *end;

		switch (c) {
		case 'g': o->gpu = optarg; break;
		case 'n': o->ops = atoi(optarg); break;
		case 'r': o->runs = atoi(optarg); break;
		case 'j': o->json_only = 1; break;
		case 'e':
			o->n_sizes = 0;
			for (p = optarg; *p != '\0' && o->n_sizes < MAX_SIZES; p = end + (*end == ',')) {
				o->elems[o->n_sizes] = strtoll(p, &end, 10);
				if (end == p || o->elems[o->n_sizes] < 1)
					return -EINVAL;
				o->n_sizes++;
			}
			break;
		case 'h': usage(); exit(0);
		default: return -EINVAL;
		}
	}
	if (o->ops < 1 || o->ops > 100000 || o->runs < 1 || o->runs > MAX_RUNS ||
	    o->n_sizes == 0)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	static double us[MAX_SIZES][N_WAYS][MAX_RUNS];
	struct bench b = {0};
	struct opts o;
	int rc = options(argc, argv, &o);

	if (rc != 0) {
		usage();
		return 2;
	}
	dj_log_set_level(DJ_LOG_WARN);
	rc = bench_setup(&b, &o);
	for (int s = 0; s < o.n_sizes && rc == 0; s++)
		rc = measure(&b, o.elems[s], us[s]);
	if (rc == 0)
		report(&o, rt_description(b.rt), us);
	else
		fprintf(stderr, "bench-batch: %s\n", dj_strerror(rc));
	bench_teardown(&b);
	return rc == 0 ? 0 : 1;
}
