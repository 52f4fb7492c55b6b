/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl: PUT and GET through a djinn-dp's control plane, as a client sees
 * them (dj_put_into / dj_get), over the DPDK data path with this process's
 * queue pairs (striped as the session negotiates, docs/CONTROL.md
 * "Stripes") and over the TCP fallback of the same server (kernel TCP, the
 * baseline), interleaved size by size in one run: PUT over DPDK, PUT over
 * TCP, GET over DPDK, GET over TCP. Every GET's bytes are checked once per
 * size and kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "common/djc.h"
#include "bench.h"

enum { KIND_PUT_DPDK, KIND_PUT_TCP, KIND_GET_DPDK, KIND_GET_TCP, KINDS };

static const char *const kind_label[KINDS] = {"put-dpdk", "put-tcp", "get-dpdk", "get-tcp"};

/* One of the two sessions the run compares. */
struct ctl_side {
	struct dj_client *cl;
	struct dj_conn *conn;
};

/* Iterations per size: about 256 MiB each, 3 to 50 (four kinds a size). */
static unsigned int ctl_iters(const struct bench_opts *o, uint64_t size)
{
	uint64_t n = (256ull << 20) / size;

	if (o->iters != 0)
		return o->iters;
	return n < 3 ? 3 : n > 50 ? 50 : (unsigned int)n;
}

static int side_open(const struct bench_opts *o, const struct dj_datapath *dp, enum dj_path path,
		     struct ctl_side *s)
{
	struct dj_client_options co;
	int rc;

	dj_client_options_init(&co);
	co.host = o->tcp_host;
	co.port = o->ctl_port;
	co.path = path;
	co.datapath = path == DJ_PATH_DPDK ? dp : NULL;
	co.dp_timeout_ms = o->timeout_ms;
	co.dp_stripes = o->stripes;
	if (o->stripe_min != 0)
		co.dp_stripe_min = o->stripe_min;
	rc = dj_client_create(&co, &s->cl);
	if (rc == 0)
		rc = dj_connect(s->cl, &s->conn);
	if (rc == 0 && dj_conn_path(s->conn, NULL) != path)
		rc = -DJ_ENODPDK;
	return rc;
}

static void side_close(struct ctl_side *s)
{
	if (s->conn != NULL)
		dj_conn_close(s->conn);
	dj_client_destroy(s->cl);
}

/* iters of one kind on a resident tensor h: times into ns. */
static int measure(struct ctl_side *s, int kind, uint64_t h, struct dj_tensor *t,
		   struct dj_tensor *back, uint64_t size, unsigned int iters, uint64_t *ns,
		   int *errors)
{
	int put = kind == KIND_PUT_DPDK || kind == KIND_PUT_TCP;
	int rc = 0;

	for (unsigned int i = 0; i < iters && rc == 0; i++) {
		uint64_t t0 = djc_time_ns();

		rc = put ? dj_put_into(s->conn, h, t) : dj_get(s->conn, h, back);
		ns[i] = djc_time_ns() - t0;
		if (rc == 0 && !put && i == 0) {
			if (!bench_pattern_check(back->data, size, 7))
				(*errors)++;
			memset(back->data, 0, size);
		}
	}
	return rc;
}

/* The four kinds at one size (even: float16 elements), into rows. */
static int ctl_size(const struct bench_opts *o, struct ctl_side *side, uint64_t size,
		    uint8_t *src, uint8_t *dst, struct bench_result *r)
{
	unsigned int iters = ctl_iters(o, size);
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 1,
				       .shape = {(int64_t)(size / 2)}},
			      .data = src, .mem = DJ_MEM_HOST};
	struct dj_tensor back = t;
	uint64_t *ns = calloc(iters, sizeof(*ns)), h[2] = {0, 0};
	int rc = ns != NULL ? 0 : -ENOMEM;

	back.data = dst;
	/* One resident tensor per side, overwritten by every PUT: the
	 * server allocates nothing while the clock runs. */
	for (int s = 0; rc == 0 && s < 2; s++)
		rc = dj_put(side[s].conn, &t, &h[s]);
	for (int k = 0; rc == 0 && k < KINDS; k++) {
		struct bench_row *row = &r->rows[r->n_rows];
		int s = k == KIND_PUT_DPDK || k == KIND_GET_DPDK ? 0 : 1;

		rc = measure(&side[s], k, h[s], &t, &back, size, iters, ns, &r->errors);
		if (rc == 0) {
			bench_row_fill(row, size, iters, ns);
			row->label = kind_label[k];
			r->n_rows++;
		}
	}
	for (int s = 0; s < 2; s++)
		if (h[s] != 0)
			dj_free(side[s].conn, h[s]);
	free(ns);
	return rc;
}

int bench_ctl(const struct bench_opts *o, struct bench_result *r)
{
	struct ctl_side side[2] = {{0}};
	struct dj_datapath datapath;
	struct dp_engine *dp = NULL;
	uint64_t max = 0;
	uint8_t *src = NULL, *dst = NULL;
	int rc;

	r->mode = "ctl";
	for (unsigned int s = 0; s < o->n_sizes; s++)
		max = o->sizes[s] > max ? o->sizes[s] : max;
	rc = bench_engine_create(o, &dp);
	if (rc == 0) {
		dp_engine_datapath(dp, &datapath);
		rc = side_open(o, &datapath, DJ_PATH_DPDK, &side[0]);
	}
	if (rc == 0)
		rc = side_open(o, NULL, DJ_PATH_TCP, &side[1]);
	if (rc == 0) {
		src = bench_alloc(max);
		dst = bench_alloc(max);
		rc = src != NULL && dst != NULL ? 0 : -ENOMEM;
	}
	if (rc == 0)
		bench_pattern_fill(src, max, 7);
	for (unsigned int s = 0; rc == 0 && s < o->n_sizes; s++)
		rc = ctl_size(o, side, o->sizes[s] & ~1ull, src, dst, r);
	for (int s = 0; s < 2; s++)
		side_close(&side[s]);
	bench_free(src, max);
	bench_free(dst, max);
	bench_engine_stop(dp, r);
	return rc;
}
