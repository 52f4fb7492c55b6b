/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn: the Djinn client tool.
 *
 *   djinn [options] COMMAND [args]                       TCP control plane
 *   djinn [EAL args] -- [options] COMMAND [args]         with a DPDK data path
 *
 * Commands: ping, stats, run OP (on .npy files), demo.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "djinn/djinn.h"
#include "dataplane/eal.h"
#include "djinn/npy.h"
#include "tensor/ops.h"

#define CLIENT_VDEV "net_memif0,role=client,socket=/tmp/djinn-dp.memif,socket-abstract=no,bsize=9216"

struct client_args {
	struct dj_client_options opts;
	const char *attrs;
	const char *output;
	const char *dp_ip;
	unsigned int seed;
	uint32_t dp_idle_sleep_us;
	int size;
	int count;
	int use_dpdk;
};

static void usage(void)
{
	printf("Usage: djinn [options] COMMAND [args]\n"
	       "       djinn [EAL args] -- [options] COMMAND [args]   (DPDK data path)\n"
	       "\n"
	       "Commands:\n"
	       "  ping [-n N]                  N control round trips (default 5)\n"
	       "  stats                        the server's STATS, as JSON\n"
	       "  run OP A.npy [B.npy ...] [--attrs JSON] [-o OUT.npy]\n"
	       "                               upload, run OP on the server, fetch the result\n"
	       "                               (printed, or saved with -o)\n"
	       "  demo [--size N] [--seed S]   x, y random NxN (100): matmul, + bias, relu on\n"
	       "                               the server; checked against the local CPU\n"
	       "\n"
	       "Options:\n"
	       "  --host ADDR        server (default 127.0.0.1)\n"
	       "  --port N           control port (default %d)\n"
	       "  --token-file PATH  pre-shared token (or DJINN_TOKEN / DJINN_TOKEN_FILE)\n"
	       "  --tls [--tls-ca PEM]  TLS on the control connection\n"
	       "  --path auto|tcp|dpdk  data path for tensor bytes (default auto)\n"
	       "  --dp-ip A.B.C.D    this side's data-plane IPv4 with EAL args (198.18.0.2)\n"
	       "  --dp-idle-sleep-us N  idle data-plane lcore naps N us (shared cores)\n"
	       "\n"
	       "With EAL args (and \"--\"), djinn starts a DPDK data path, by default on\n"
	       "--vdev '%s'.\n",
	       DJ_DEFAULT_PORT, CLIENT_VDEV);
}

static void fill_random(float *v, size_t n, unsigned int *seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
}

static int fail(struct dj_conn *conn, const char *what, int rc)
{
	const char *detail = conn ? dj_conn_last_error(conn) : NULL;

	fprintf(stderr, "djinn: %s: %s%s%s\n", what, dj_strerror(rc),
		detail && *detail ? ": " : "", detail && *detail ? detail : "");
	return 1;
}

static double ms_since(uint64_t t0)
{
	return (double)(djc_time_ns() - t0) / 1e6;
}

/* Local reference: the same three steps on the CPU. */
static int demo_reference(const struct dj_tensor *x, const struct dj_tensor *y,
			  const struct dj_tensor *b, struct dj_tensor *out)
{
	struct dj_tensor h1, h2, in[2];
	struct tn_op_attrs attrs;
	char err[256];
	int rc;

	tn_op_attrs_init(&attrs);
	in[0] = *x;
	in[1] = *y;
	rc = tn_op_cpu_alloc(tn_op_find("matmul"), in, 2, &attrs, &h1, err, sizeof(err));
	if (rc != 0)
		return rc;
	in[0] = h1;
	in[1] = *b;
	rc = tn_op_cpu_alloc(tn_op_find("add"), in, 2, &attrs, &h2, err, sizeof(err));
	dj_tensor_free_host(&h1);
	if (rc != 0)
		return rc;
	rc = tn_op_cpu_alloc(tn_op_find("relu"), &h2, 1, &attrs, out, err, sizeof(err));
	dj_tensor_free_host(&h2);
	return rc;
}

static int cmd_demo(struct dj_conn *conn, const struct client_args *a)
{
	const int n = a->size;
	unsigned int seed = a->seed;
	float *xv = malloc(sizeof(float) * n * n), *yv = malloc(sizeof(float) * n * n);
	float *bv = malloc(sizeof(float) * n), *rv = malloc(sizeof(float) * n * n);
	struct dj_tensor x = {{DJ_DTYPE_FLOAT32, 2, {n, n}}, xv, DJ_MEM_HOST};
	struct dj_tensor y = {{DJ_DTYPE_FLOAT32, 2, {n, n}}, yv, DJ_MEM_HOST};
	struct dj_tensor b = {{DJ_DTYPE_FLOAT32, 1, {n}}, bv, DJ_MEM_HOST};
	struct dj_tensor r = {{DJ_DTYPE_FLOAT32, 2, {n, n}}, rv, DJ_MEM_HOST};
	struct dj_tensor ref = {0};
	uint64_t hx, hy, hb, h1, h2, h3;
	const char *reason = "";
	uint64_t t0;
	int rc, status = 1;

	if (!xv || !yv || !bv || !rv) {
		fprintf(stderr, "djinn: out of memory\n");
		goto out;
	}
	fill_random(xv, (size_t)n * n, &seed);
	fill_random(yv, (size_t)n * n, &seed);
	fill_random(bv, (size_t)n, &seed);
	enum dj_path path = dj_conn_path(conn, &reason);
	printf("demo: session %" PRIx64 ", tensor bytes over %s (%s)\n", dj_conn_session_id(conn),
	       path == DJ_PATH_DPDK ? "DPDK" : "TCP", reason);

	t0 = djc_time_ns();
	if ((rc = dj_put(conn, &x, &hx)) != 0 || (rc = dj_put(conn, &y, &hy)) != 0 ||
	    (rc = dj_put(conn, &b, &hb)) != 0) {
		status = fail(conn, "put", rc);
		goto out;
	}
	printf("  1. put x, y [%d, %d] and bias [%d] float32     %8.3f ms\n", n, n, n, ms_since(t0));
	t0 = djc_time_ns();
	if ((rc = dj_execute(conn, "matmul", (uint64_t[]){hx, hy}, 2, NULL, &h1, NULL)) != 0) {
		status = fail(conn, "matmul", rc);
		goto out;
	}
	printf("  2. h1 = matmul(x, y) on the server            %8.3f ms\n", ms_since(t0));
	t0 = djc_time_ns();
	if ((rc = dj_execute(conn, "add", (uint64_t[]){h1, hb}, 2, NULL, &h2, NULL)) != 0) {
		status = fail(conn, "add", rc);
		goto out;
	}
	printf("  3. h2 = h1 + bias (broadcast)                 %8.3f ms\n", ms_since(t0));
	t0 = djc_time_ns();
	if ((rc = dj_execute(conn, "relu", &h2, 1, NULL, &h3, NULL)) != 0) {
		status = fail(conn, "relu", rc);
		goto out;
	}
	printf("  4. h3 = relu(h2)                              %8.3f ms\n", ms_since(t0));
	t0 = djc_time_ns();
	if ((rc = dj_get(conn, h3, &r)) != 0) {
		status = fail(conn, "get", rc);
		goto out;
	}
	printf("  5. fetched h3 [%d, %d]                         %8.3f ms\n", n, n, ms_since(t0));
	for (uint64_t h, *p = (uint64_t[]){hx, hy, hb, h1, h2, h3, 0}; (h = *p) != 0; p++)
		dj_free(conn, h);

	if ((rc = demo_reference(&x, &y, &b, &ref)) != 0) {
		status = fail(NULL, "local reference", rc);
		goto out;
	}
	double max_err = 0, max_ref = 0;
	for (size_t i = 0; i < (size_t)n * n; i++) {
		double e = fabs((double)rv[i] - (double)((float *)ref.data)[i]);
		max_err = e > max_err || isnan(e) ? e : max_err;
		max_ref = fmax(max_ref, fabs(((float *)ref.data)[i]));
	}
	/* float32 with a K-term dot product: relative error well under 1e-4. */
	double tol = 1e-4 * (max_ref > 1 ? max_ref : 1);
	status = !(max_err <= tol);
	printf("  6. local CPU check: max |server - local| = %.3g (tolerance %.3g): %s\n", max_err,
	       tol, status == 0 ? "MATCH" : "MISMATCH");
out:
	dj_tensor_free_host(&ref);
	free(xv);
	free(yv);
	free(bv);
	free(rv);
	return status;
}

static int cmd_ping(struct dj_conn *conn, const struct client_args *a)
{
	for (int i = 0; i < a->count; i++) {
		uint64_t rtt;
		int rc = dj_ping(conn, &rtt);

		if (rc != 0)
			return fail(conn, "ping", rc);
		printf("ping %d: %.1f us\n", i + 1, rtt / 1e3);
	}
	return 0;
}

static int cmd_stats(struct dj_conn *conn)
{
	char *json = NULL;
	int rc = dj_stats(conn, &json);

	if (rc != 0)
		return fail(conn, "stats", rc);
	printf("%s\n", json);
	free(json);
	return 0;
}

static void print_tensor(const struct dj_tensor *t)
{
	char shape[128];
	int64_t n = dj_tensor_numel(&t->desc);

	printf("%s %s\n", dj_dtype_name(t->desc.dtype), dj_shape_format(&t->desc, shape, sizeof(shape)));
	for (int64_t i = 0; i < n && i < 64; i++)
		printf("%s%.6g", i ? " " : "", dj_tensor_load_f64(t, i));
	printf(n > 64 ? " ...\n" : "\n");
}

static int cmd_run(struct dj_conn *conn, const struct client_args *a, int argc, char **argv)
{
	struct dj_tensor in[DJ_MAX_OP_ARGS] = {0}, out = {0};
	uint64_t handles[DJ_MAX_OP_ARGS], result = 0;
	struct dj_tensor_desc desc;
	int n_in = argc - 1, loaded = 0, rc, status = 1;
	char err[256];

	if (n_in < 1 || n_in > DJ_MAX_OP_ARGS) {
		fprintf(stderr, "djinn: run OP A.npy [B.npy ...]\n");
		return 2;
	}
	for (; loaded < n_in; loaded++) {
		rc = dj_npy_load(argv[1 + loaded], DJ_NPY_U2_AS_BF16 | DJ_NPY_F64_TO_F32, &in[loaded], err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "djinn: %s: %s\n", argv[1 + loaded], err);
			goto out;
		}
		if ((rc = dj_put(conn, &in[loaded], &handles[loaded])) != 0) {
			fail(conn, argv[1 + loaded], rc);
			goto out;
		}
	}
	rc = dj_execute(conn, argv[0], handles, n_in, a->attrs, &result, &desc);
	if (rc != 0) {
		fail(conn, argv[0], rc);
		goto out;
	}
	out.desc = desc;
	out.mem = DJ_MEM_HOST;
	out.data = malloc(dj_tensor_nbytes(&desc) ? dj_tensor_nbytes(&desc) : 1);
	if (out.data == NULL || (rc = dj_get(conn, result, &out)) != 0) {
		fail(conn, "get", out.data ? rc : -ENOMEM);
		goto out;
	}
	if (a->output != NULL) {
		if ((rc = dj_npy_save(a->output, &out, err, sizeof(err))) != 0) {
			fprintf(stderr, "djinn: %s: %s\n", a->output, err);
			goto out;
		}
		printf("saved %s\n", a->output);
	} else {
		print_tensor(&out);
	}
	status = 0;
out:
	for (int i = 0; i < loaded; i++)
		dj_tensor_free_host(&in[i]);
	free(out.data);
	return status;
}

enum { OPT_HOST = 256, OPT_PORT, OPT_TOKEN_FILE, OPT_TLS, OPT_TLS_CA, OPT_PATH, OPT_ATTRS,
       OPT_SIZE, OPT_SEED, OPT_DP_IP, OPT_DP_IDLE_SLEEP };

static int parse_args(int argc, char **argv, struct client_args *a)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, OPT_HOST},
		{"port", required_argument, NULL, OPT_PORT},
		{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"tls", no_argument, NULL, OPT_TLS},
		{"tls-ca", required_argument, NULL, OPT_TLS_CA},
		{"path", required_argument, NULL, OPT_PATH},
		{"attrs", required_argument, NULL, OPT_ATTRS},
		{"size", required_argument, NULL, OPT_SIZE},
		{"seed", required_argument, NULL, OPT_SEED},
		{"dp-ip", required_argument, NULL, OPT_DP_IP},
		{"dp-idle-sleep-us", required_argument, NULL, OPT_DP_IDLE_SLEEP},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:n:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_HOST: a->opts.host = optarg; break;
		case OPT_PORT: a->opts.port = (uint16_t)atoi(optarg); break;
		case OPT_TOKEN_FILE: a->opts.token_file = optarg; break;
		case OPT_TLS: a->opts.tls = 1; break;
		case OPT_TLS_CA: a->opts.tls_ca = optarg; break;
		case OPT_PATH:
			if (dj_path_parse(optarg, &a->opts.path) != 0) {
				fprintf(stderr, "djinn: --path auto|tcp|dpdk\n");
				return -EINVAL;
			}
			break;
		case OPT_ATTRS: a->attrs = optarg; break;
		case OPT_SIZE: a->size = atoi(optarg); break;
		case OPT_SEED: a->seed = (unsigned int)strtoul(optarg, NULL, 0); break;
		case OPT_DP_IP: a->dp_ip = optarg; break;
		case OPT_DP_IDLE_SLEEP: a->dp_idle_sleep_us = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'o': a->output = optarg; break;
		case 'n': a->count = atoi(optarg); break;
		default:
			return -EINVAL;
		}
	}
	if (a->size < 1 || a->size > 8192 || a->count < 1) {
		fprintf(stderr, "djinn: --size 1..8192, -n >= 1\n");
		return -EINVAL;
	}
	return optind;
}

/* With EAL up: a client-side DPDK data path on the (memif client) port. */
static int start_dataplane(struct client_args *a, struct dp_engine **dp,
			   struct dj_datapath *datapath)
{
	struct dp_engine_config cfg;
	struct in_addr ip;
	int rc;

	if (inet_pton(AF_INET, a->dp_ip, &ip) != 1) {
		fprintf(stderr, "djinn: bad --dp-ip '%s'\n", a->dp_ip);
		return -EINVAL;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.port.frame_size = 9014;
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = ntohl(ip.s_addr);
	cfg.idle_sleep_us = a->dp_idle_sleep_us;
	rc = dp_engine_create(&cfg, dp);
	if (rc == 0) {
		dp_engine_datapath(*dp, datapath);
		a->opts.datapath = datapath;
	}
	return rc;
}

static int has_separator(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct client_args a = {.size = 100, .count = 5, .dp_ip = "198.18.0.2"};
	struct dp_engine *dp = NULL;
	struct dj_datapath datapath;
	struct dj_client *client = NULL;
	struct dj_conn *conn = NULL;
	int app_argc = argc, rc, status;
	char **app_argv = argv;

	dj_client_options_init(&a.opts);
	/* The tool prints what matters itself (the demo says which path). */
	dj_log_set_level(DJ_LOG_WARN);
	a.seed = (unsigned int)djc_time_ns();
	/* EAL first (it finds the split), the data path once the options are known. */
	int want_dpdk = has_separator(argc, argv), eal_rc = 0;
	if (want_dpdk) {
		struct dp_eal_options eal_opts = {.default_vdev = CLIENT_VDEV};

		eal_rc = dp_eal_init(argc, argv, &eal_opts, &app_argc, &app_argv);
		if (eal_rc != 0)
			dp_eal_app_args(argc, argv, &app_argc, &app_argv);
	}
	int first = parse_args(app_argc, app_argv, &a);
	if (first < 0 || first >= app_argc) {
		usage();
		return first < 0 ? 2 : 0;
	}
	if (want_dpdk) {
		rc = eal_rc == 0 ? start_dataplane(&a, &dp, &datapath) : eal_rc;
		if (rc != 0)
			printf("djinn: no DPDK data path (%s): using TCP\n", dj_strerror(rc));
	}
	const char *cmd = app_argv[first];
	if ((rc = dj_client_create(&a.opts, &client)) != 0 || (rc = dj_connect(client, &conn)) != 0) {
		fprintf(stderr, "djinn: cannot reach %s:%u: %s\n", a.opts.host ? a.opts.host : "127.0.0.1",
			a.opts.port ? a.opts.port : DJ_DEFAULT_PORT, dj_strerror(rc));
		dj_client_destroy(client);
		dp_engine_destroy(dp);
		if (want_dpdk && eal_rc == 0)
			dp_eal_cleanup();
		return 1;
	}
	if (strcmp(cmd, "demo") == 0) {
		printf("demo: seed %u\n", a.seed);
		status = cmd_demo(conn, &a);
	} else if (strcmp(cmd, "ping") == 0) {
		status = cmd_ping(conn, &a);
	} else if (strcmp(cmd, "stats") == 0) {
		status = cmd_stats(conn);
	} else if (strcmp(cmd, "run") == 0) {
		status = cmd_run(conn, &a, app_argc - first - 1, app_argv + first + 1);
	} else {
		fprintf(stderr, "djinn: unknown command '%s'\n", cmd);
		usage();
		status = 2;
	}
	dj_disconnect(conn);
	dj_client_destroy(client);
	if (dp != NULL)
		dp_engine_quiesce(dp);
	dp_engine_destroy(dp);
	if (want_dpdk && eal_rc == 0)
		dp_eal_cleanup(); /* nothing left under /var/run/dpdk */
	return status;
}
