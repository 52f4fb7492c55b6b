/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn: the Djinn client tool.
 *
 *   djinn [options] COMMAND [args]                       TCP control plane
 *   djinn [EAL args] -- [options] COMMAND [args]         with a DPDK data path
 *
 * Commands: ping, stats, run OP (on .npy files), demo, top; graph
 * (apps/djinn/graph.c) and fleet (apps/djinn/fleet.c) parse their own.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "djinn/npy.h"
#include "common/cli.h"
#include "common/djc.h"
#include "tensor/ops.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "fleet_cmd.h"
#include "graph_cmd.h"
#include "top.h"
#include "plan_cmd.h"

struct client_args {
	struct dj_client_options opts;
	struct dj_dpdk_options dpdk;
	const char *attrs;
	const char *output;
	unsigned int seed;
	int size;
	int count;
	struct top_options top;
};

/* Positional arguments each command takes after its name. */
static const struct {
	const char *name;
	int min_args, max_args;
} commands[] = {
	{"ping", 0, 0}, {"stats", 0, 0}, {"demo", 0, 0}, {"run", 2, 1 + DJ_MAX_OP_ARGS},
	{"top", 0, TOP_MAX_SERVERS - 1},
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
	       "  graph --explain|--run ...    a decoder layer as a lazy graph (djinn graph -h)\n"
	       "  top [HOST:PORT ...] [--interval S] [--once]\n"
	       "                               live view of the server (and those named):\n"
	       "                               sessions, requests/s, bytes in/out, latency,\n"
	       "                               memory, queue; q or Ctrl-C quits\n"
	       "  fleet ...                    members of a fleet, moves between them\n"
	       "                               (djinn fleet --help)\n"
	       "  plan [--sim ...|--servers ...]  the scheduler's decisions for the LLM demo's\n"
	       "                               graphs, with their reasons (djinn plan -h)\n"
	       "\n"
	       "Options:\n"
	       "  --host ADDR        server (default 127.0.0.1)\n"
	       "  --port N           control port (default %d)\n"
	       "  --token-file PATH  pre-shared token (or DJINN_TOKEN / DJINN_TOKEN_FILE)\n"
	       "  --tls [--tls-ca PEM]  TLS on the control connection\n"
	       "  --path auto|tcp|dpdk  data path for tensor bytes (default auto)\n"
	       "  --dp-ip A.B.C.D    this side's data-plane IPv4 with EAL args (198.18.0.2)\n"
	       "  --dp-idle-sleep-us N  idle data-plane lcore naps N us (shared cores)\n"
	       "  --dp-idle poll|nap|interrupt  what an idle data-plane lcore does (default:\n"
	       "                     nap with --dp-idle-sleep-us, else poll)\n"
	       "  --dp-caller-runs   with --dp-idle interrupt: a waiting thread runs the\n"
	       "                     lcore's loop (no wake-up for small transfers)\n"
	       "  --dp-queues N      data-plane queue pairs, one lcore each (1..16)\n"
	       "  --log-level LEVEL  err, warn (default), notice, info, debug (debug: a line\n"
	       "                     per request, with the request id the server logs too)\n"
	       "  --log-format FORMAT  text (default) or json (one object per line)\n"
	       "\n"
	       "  -h, --help         this text\n"
	       "\n"
	       "With EAL args (and \"--\"), djinn starts a DPDK data path, by default on\n"
	       "--vdev '%s'.\n",
	       DJ_DEFAULT_PORT, DJ_DPDK_DEFAULT_VDEV);
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
       OPT_SIZE, OPT_SEED, OPT_DP_IP, OPT_DP_IDLE_SLEEP, OPT_DP_IDLE, OPT_DP_CALLER_RUNS,
       OPT_DP_QUEUES, OPT_LOG_LEVEL, OPT_LOG_FORMAT,
       OPT_INTERVAL, OPT_ONCE };

/* --attrs is checked here, so that a typo is named before anything connects. */
static int attrs_check(const char *text)
{
	cJSON *json = cJSON_Parse(text);
	int ok = cJSON_IsObject(json);

	cJSON_Delete(json);
	if (!ok)
		return djc_cli_error("--attrs: '%s' is not a JSON object (e.g. '{\"dim\": 1}')",
				     text);
	return 0;
}

static int parse_option(int c, const char *arg, void *args)
{
	struct client_args *a = args;
	static const char *const paths[] = {"auto", "tcp", "dpdk"};
	uint32_t ip;
	int i, rc = 0;

	switch (c) {
	case OPT_HOST: a->opts.host = arg; break;
	case OPT_PORT: rc = djc_opt_u16("--port", arg, 1, UINT16_MAX, &a->opts.port); break;
	case OPT_TOKEN_FILE: a->opts.token_file = arg; break;
	case OPT_TLS: a->opts.tls = 1; break;
	case OPT_TLS_CA: a->opts.tls_ca = arg; break;
	case OPT_PATH:
		rc = djc_opt_choice("--path", arg, paths, 3, &i);
		a->opts.path = rc == 0 ? (enum dj_path)i : a->opts.path;
		break;
	case OPT_ATTRS: a->attrs = arg; rc = attrs_check(arg); break;
	case OPT_SIZE: rc = djc_opt_int("--size", arg, 1, 8192, &a->size); break;
	case OPT_SEED: rc = djc_opt_u32("--seed", arg, 0, UINT32_MAX, &a->seed); break;
	case OPT_DP_IP: a->dpdk.local_ip = arg; rc = djc_opt_ipv4("--dp-ip", arg, &ip); break;
	case OPT_DP_IDLE_SLEEP:
		rc = djc_opt_u32("--dp-idle-sleep-us", arg, 0, 1000000, &a->dpdk.idle_sleep_us);
		break;
	case OPT_DP_IDLE:
		/* The engine's names; dj_dpdk_idle has its values. */
		rc = djc_opt_choice("--dp-idle", arg, dp_idle_names + 1, DP_IDLE_INTERRUPT, &i);
		a->dpdk.idle = rc == 0 ? (enum dj_dpdk_idle)(i + 1) : a->dpdk.idle;
		break;
	case OPT_DP_CALLER_RUNS: a->dpdk.caller_runs = 1; break;
	case OPT_DP_QUEUES: rc = djc_opt_u32("--dp-queues", arg, 1, 16, &a->dpdk.queues); break;
	case OPT_LOG_LEVEL: rc = djc_opt_log_level("--log-level", arg); break;
	case OPT_LOG_FORMAT: rc = djc_opt_log_format("--log-format", arg); break;
	case OPT_INTERVAL:
		rc = djc_opt_double("--interval", arg, 0.1, 3600, &a->top.interval_s);
		break;
	case OPT_ONCE: a->top.once = 1; break;
	case 'o': a->output = arg; break;
	case 'n': rc = djc_opt_int("-n", arg, 1, 1000000, &a->count); break;
	default: rc = -EINVAL; break;
	}
	return rc;
}

/* The command argv[0] with its n_args arguments argv[1 ..]: 0 where it
 * takes that many. */
static int command_check(char **argv, int n_args)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (n_args < commands[i].min_args)
			return djc_cli_error("%s: too few arguments", argv[0]);
		if (n_args > commands[i].max_args)
			return djc_cli_error("%s: unexpected argument '%s'", argv[0],
					     argv[1 + commands[i].max_args]);
		return 0;
	}
	return djc_cli_error("unknown command '%s'", argv[0]);
}

/* Options anywhere (getopt permutes); returns the index of the command in
 * argv, or a negative errno after saying what is wrong. */
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
		{"dp-idle", required_argument, NULL, OPT_DP_IDLE},
		{"dp-caller-runs", no_argument, NULL, OPT_DP_CALLER_RUNS},
		{"dp-queues", required_argument, NULL, OPT_DP_QUEUES},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{"once", no_argument, NULL, OPT_ONCE},
		{NULL, 0, NULL, 0},
	};
	int first;

	if (djc_cli_getopt(argc, argv, "o:n:", longopts, parse_option, a, &first) != 0)
		return -EINVAL;
	if (first >= argc)
		return djc_cli_error("no command (ping, stats, run, demo or top)");
	if (command_check(argv + first, argc - first - 1) != 0)
		return -EINVAL;
	return first;
}

/* A token file named by --token-file or DJINN_TOKEN_FILE must be readable:
 * without this a missing file read as a wrong token at the server. The
 * token is handed to the library as read here. */
static int token_load(struct client_args *a, char **token)
{
	const char *env_token = getenv("DJINN_TOKEN");
	const char *path = a->opts.token_file, *source = "--token-file";
	int rc;

	*token = NULL;
	if (path == NULL && (env_token == NULL || env_token[0] == '\0')) {
		path = getenv("DJINN_TOKEN_FILE");
		source = "DJINN_TOKEN_FILE";
	}
	if (path == NULL || path[0] == '\0')
		return 0; /* a token from DJINN_TOKEN, or none */
	rc = dj_token_load(path, token);
	if (rc == -ENODATA)
		return djc_cli_error("%s %s: the file is empty", source, path);
	if (rc != 0)
		return djc_cli_error("%s %s: %s", source, path, dj_strerror(rc));
	a->opts.token = *token;
	return 0;
}

/* With EAL args: the DPDK data path, or TCP (the reason said) unless --path
 * dpdk asked for DPDK alone. Without them, --path dpdk cannot be had. */
static int dataplane_start(int argc, char **argv, int eal_given, struct client_args *a,
			   struct dj_dpdk **dpdk)
{
	int rc;

	if (!eal_given) {
		if (a->opts.path != DJ_PATH_DPDK)
			return 0;
		return djc_cli_error("--path dpdk needs a DPDK data path: give EAL arguments "
				     "before \"--\" (djinn -l 0-1 -- --path dpdk COMMAND)");
	}
	rc = dj_dpdk_create(argc, argv, &a->dpdk, NULL, NULL, dpdk);
	if (rc == 0) {
		a->opts.datapath = dj_dpdk_datapath(*dpdk);
		return 0;
	}
	if (a->opts.path == DJ_PATH_DPDK)
		return djc_cli_error("--path dpdk: no DPDK data path (%s)", dj_strerror(rc));
	printf("djinn: no DPDK data path (%s): using TCP\n", dj_strerror(rc));
	return 0;
}

int main(int argc, char **argv)
{
	struct client_args a = {.size = 100, .count = 5, .top = {.interval_s = 1.0}};
	struct dj_dpdk *dpdk = NULL;
	struct dj_client *client = NULL;
	struct dj_conn *conn = NULL;
	char **app_argv, *token = NULL;
	int app_argc, eal_given, first, rc, status;

	if (argc > 1 && strcmp(argv[1], "graph") == 0)
		return djinn_graph_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "fleet") == 0)
		return djinn_fleet_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "plan") == 0)
		return djinn_plan_main(argc - 1, argv + 1);
	djc_cli_set_name("djinn");
	if (djc_cli_wants_help(argc, argv)) {
		usage();
		return 0;
	}
	dj_client_options_init(&a.opts);
	dj_dpdk_options_init(&a.dpdk);
	/* The tool prints what matters itself (the demo says which path). */
	dj_log_set_level(DJ_LOG_WARN);
	a.seed = (unsigned int)djc_time_ns();
	/* Options first, so that a bad one is named before EAL starts. */
	eal_given = djc_cli_app_args(argc, argv, true, &app_argc, &app_argv);
	if (eal_given < 0 || (first = parse_args(app_argc, app_argv, &a)) < 0) {
		fprintf(stderr, "Try 'djinn --help'.\n");
		return 2;
	}
	/* --log-format json: EAL's lines are JSON lines too. */
	if (eal_given && djc_log_get_format() == DJC_LOG_JSON)
		dp_eal_log_bridge();
	if (token_load(&a, &token) != 0 || dataplane_start(argc, argv, eal_given, &a, &dpdk) != 0) {
		free(token);
		return 1;
	}
	const char *cmd = app_argv[first];
	if ((rc = dj_client_create(&a.opts, &client)) != 0 || (rc = dj_connect(client, &conn)) != 0) {
		fprintf(stderr, "djinn: cannot reach %s:%u: %s\n", a.opts.host ? a.opts.host : "127.0.0.1",
			a.opts.port ? a.opts.port : DJ_DEFAULT_PORT, dj_strerror(rc));
		dj_client_destroy(client);
		dj_dpdk_destroy(dpdk);
		free(token);
		return 1;
	}
	if (strcmp(cmd, "demo") == 0) {
		printf("demo: seed %u\n", a.seed);
		status = cmd_demo(conn, &a);
	} else if (strcmp(cmd, "ping") == 0) {
		status = cmd_ping(conn, &a);
	} else if (strcmp(cmd, "stats") == 0) {
		status = cmd_stats(conn);
	} else if (strcmp(cmd, "top") == 0) {
		status = top_main(conn, &a.opts, &a.top, app_argc - first - 1, app_argv + first + 1);
	} else {
		status = cmd_run(conn, &a, app_argc - first - 1, app_argv + first + 1);
	}
	dj_disconnect(conn);
	dj_client_destroy(client);
	dj_dpdk_destroy(dpdk);
	free(token);
	return status;
}
