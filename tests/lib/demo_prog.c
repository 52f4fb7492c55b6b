/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program written against the installed libdjinn alone: the public
 * headers under <djinn/...> and `pkg-config --cflags --libs djinn`, built out
 * of tree by tests/lib/test_lib_install.sh. It runs the demo's computation
 * (x @ y + bias, relu) on a server, fetches the result and compares it with
 * the same computation done here in plain C.
 *
 *   demo_prog PORT [tcp]                         TCP data path
 *   demo_prog [EAL args] -- PORT dpdk            the DPDK data path (dj_dpdk_*)
 *
 * Exit status 0 when the result matches and the wanted path was used.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <djinn/common.h>
#include <djinn/djinn.h>
#include <djinn/tensor.h>

#define N 64

static int failed(const char *what, struct dj_conn *conn, int rc)
{
	fprintf(stderr, "demo_prog: %s: %s %s\n", what, dj_strerror(rc),
		conn != NULL ? dj_conn_last_error(conn) : "");
	return 1;
}

/* Deterministic inputs in [-1, 1). */
static void fill(float *v, int n, unsigned int seed)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
	}
}

/* relu(x @ y + b) on the CPU, in double; *max_abs receives its largest value. */
static void reference(const float *x, const float *y, const float *b, double *out,
		      double *max_abs)
{
	*max_abs = 0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			double acc = b[j];

			for (int k = 0; k < N; k++)
				acc += (double)x[i * N + k] * (double)y[k * N + j];
			out[i * N + j] = acc > 0 ? acc : 0;
			*max_abs = fmax(*max_abs, out[i * N + j]);
		}
}

static int run(struct dj_conn *conn)
{
	static float x[N * N], y[N * N], b[N], r[N * N];
	static double want[N * N];
	struct dj_tensor tx = {{DJ_DTYPE_FLOAT32, 2, {N, N}}, x, DJ_MEM_HOST};
	struct dj_tensor ty = {{DJ_DTYPE_FLOAT32, 2, {N, N}}, y, DJ_MEM_HOST};
	struct dj_tensor tb = {{DJ_DTYPE_FLOAT32, 1, {N}}, b, DJ_MEM_HOST};
	struct dj_tensor tr = {{DJ_DTYPE_FLOAT32, 2, {N, N}}, r, DJ_MEM_HOST};
	uint64_t hx, hy, hb, h1, h2, h3;
	double max_abs, max_err = 0;
	int rc;

	fill(x, N * N, 1);
	fill(y, N * N, 2);
	fill(b, N, 3);
	if ((rc = dj_put(conn, &tx, &hx)) != 0 || (rc = dj_put(conn, &ty, &hy)) != 0 ||
	    (rc = dj_put(conn, &tb, &hb)) != 0)
		return failed("put", conn, rc);
	if ((rc = dj_execute(conn, "matmul", (uint64_t[]){hx, hy}, 2, NULL, &h1, NULL)) != 0)
		return failed("matmul", conn, rc);
	if ((rc = dj_execute(conn, "add", (uint64_t[]){h1, hb}, 2, NULL, &h2, NULL)) != 0)
		return failed("add", conn, rc);
	if ((rc = dj_execute(conn, "relu", &h2, 1, NULL, &h3, NULL)) != 0)
		return failed("relu", conn, rc);
	if ((rc = dj_get(conn, h3, &tr)) != 0)
		return failed("get", conn, rc);
	reference(x, y, b, want, &max_abs);
	for (int i = 0; i < N * N; i++) {
		double e = fabs((double)r[i] - want[i]);

		max_err = e > max_err || isnan(e) ? e : max_err;
	}
	printf("demo_prog: max |server - local| = %.3g: %s\n", max_err,
	       max_err <= 1e-4 * fmax(1, max_abs) ? "MATCH" : "MISMATCH");
	return max_err <= 1e-4 * fmax(1, max_abs) ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct dj_client_options opts;
	struct dj_dpdk_options dopts;
	struct dj_dpdk *dpdk = NULL;
	struct dj_client *client = NULL;
	struct dj_conn *conn = NULL;
	const char *reason = "";
	int want_dpdk = 0, rc, status;

	for (int i = 1; i < argc; i++)
		want_dpdk |= strcmp(argv[i], "--") == 0;
	dj_client_options_init(&opts);
	if (want_dpdk) {
		dj_dpdk_options_init(&dopts);
		dopts.idle_sleep_us = 20; /* a shared, loaded test machine */
		rc = dj_dpdk_create(argc, argv, &dopts, &argc, &argv, &dpdk);
		if (rc != 0)
			return failed("dj_dpdk_create", NULL, rc);
		opts.datapath = dj_dpdk_datapath(dpdk);
		opts.path = DJ_PATH_DPDK;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: demo_prog [EAL args --] PORT [tcp|dpdk]\n");
		return 2;
	}
	opts.port = (uint16_t)atoi(argv[1]);
	if (!want_dpdk)
		opts.path = DJ_PATH_TCP;
	rc = dj_client_create(&opts, &client);
	if (rc == 0)
		rc = dj_connect(client, &conn);
	if (rc != 0) {
		dj_client_destroy(client);
		dj_dpdk_destroy(dpdk);
		return failed("connect", NULL, rc);
	}
	printf("demo_prog: path %s (%s)\n", dj_path_name(dj_conn_path(conn, &reason)), reason);
	status = run(conn);
	if (status == 0 && dj_conn_path(conn, NULL) != opts.path)
		status = failed("path", conn, -EPROTO);
	dj_conn_close(conn);
	dj_client_destroy(client);
	dj_dpdk_destroy(dpdk);
	return status;
}
