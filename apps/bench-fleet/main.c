/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-fleet: a server-to-server move between two djinn-dp (A and B of a
 * fleet) against the same bytes put by a client over its own DPDK data path
 * (memif) into a third djinn-dp, and, where built with CUDA and asked,
 * cudaMemcpy D2H and H2D of the same bytes; all interleaved in one run.
 *
 *   bench-fleet [EAL args --] --fleet A_HOST:PORT,B_HOST:PORT
 *               [--baseline HOST:PORT] [--sizes 256M,1G] [--reps 5]
 *               [--gpu-copy DEV] [--token-file PATH] [--dp-ip A.B.C.D]
 *               [--dp-idle-sleep-us N] [--json FILE]
 *
 * The tensor is put on A once per size, then moved A -> B -> A ... (each a
 * MOVE, timed by the source server and by this client); the baseline is a
 * dj_put of a host buffer over this process's DPDK data path (EAL args,
 * by default a memif client of the baseline server) into the baseline
 * server. Goodput is tensor bytes over wall time, Gbit/s; medians with the
 * spread over the reps. The moved tensor is read back once at the end and
 * compared byte for byte.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "djinn/fleet.h"
#include "common/cli.h"
#include "common/djc.h"
#include "controlplane/ctl.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"

#define MAX_SIZES 8
#define MAX_REPS 64
#define VDEV "net_memif0,role=client,socket=/tmp/djinn-dp.memif,socket-abstract=no,bsize=9216"

struct bench_args {
	const char *fleet, *baseline, *token_file, *dp_ip, *json;
	uint64_t sizes[MAX_SIZES];
	int n_sizes, reps, gpu_copy;
	uint32_t idle_sleep_us;
};

/* Seconds of each rep, per measure. */
enum measure { M_MOVE_SERVER, M_MOVE_TOTAL, M_PUT, M_D2H, M_H2D, M_COUNT };
static const char *const measure_name[M_COUNT] = {
	"move (source's time)", "move (client's time)", "client PUT over DPDK",
	"cudaMemcpy D2H", "cudaMemcpy H2D"};
static const char *const measure_key[M_COUNT] = {"move_server", "move_client", "put_dpdk",
						  "cuda_d2h", "cuda_h2d"};

struct result {
	uint64_t bytes;
	double s[M_COUNT][MAX_REPS];
	int n[M_COUNT];
	char path_reason[200];
	int exact;
};

int bench_cuda_copy(int device, size_t bytes, double *d2h_s, double *h2d_s);

static int parse_sizes(const char *text, struct bench_args *a)
{
	char *copy = strdup(text), *save = NULL;

	a->n_sizes = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL && a->n_sizes < MAX_SIZES;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		uint64_t v = strtoull(tok, &end, 10);

		v <<= *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
		if (v < 2 || v % 2 != 0) {
			free(copy);
			return -EINVAL;
		}
		a->sizes[a->n_sizes++] = v;
	}
	free(copy);
	return a->n_sizes > 0 ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
	enum { O_FLEET = 256, O_BASELINE, O_SIZES, O_REPS, O_GPU, O_TOKEN, O_DP_IP, O_IDLE, O_JSON };
	static const struct option opts[] = {
		{"fleet", required_argument, NULL, O_FLEET},
		{"baseline", required_argument, NULL, O_BASELINE},
		{"sizes", required_argument, NULL, O_SIZES},
		{"reps", required_argument, NULL, O_REPS},
		{"gpu-copy", required_argument, NULL, O_GPU},
		{"token-file", required_argument, NULL, O_TOKEN},
		{"dp-ip", required_argument, NULL, O_DP_IP},
		{"dp-idle-sleep-us", required_argument, NULL, O_IDLE},
		{"json", required_argument, NULL, O_JSON},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_FLEET: a->fleet = optarg; break;
		case O_BASELINE: a->baseline = optarg; break;
		case O_SIZES: if (parse_sizes(optarg, a) != 0) return -EINVAL; break;
		case O_REPS: a->reps = atoi(optarg); break;
		case O_GPU: a->gpu_copy = atoi(optarg); break;
		case O_TOKEN: a->token_file = optarg; break;
		case O_DP_IP: a->dp_ip = optarg; break;
		case O_IDLE: a->idle_sleep_us = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_JSON: a->json = optarg; break;
		default: return -EINVAL;
		}
	}
	if (a->fleet == NULL || a->reps < 1 || a->reps > MAX_REPS) {
		fprintf(stderr, "bench-fleet: --fleet A,B is required; --reps 1..%d\n", MAX_REPS);
		return -EINVAL;
	}
	return 0;
}

/* ---- the baseline: a client PUT over this process's DPDK data path ------------ */

struct baseline {
	struct dp_engine *dp;
	struct dj_datapath datapath;
	struct dj_client *client;
	struct dj_conn *conn;
};

static int baseline_open(const struct bench_args *a, int eal_up, struct baseline *b)
{
	struct dj_client_options o;
	struct dp_engine_config cfg;
	struct in_addr ip;
	char host[64];
	const char *reason;
	int rc;

	if (a->baseline == NULL || !eal_up)
		return -ENODEV;
	memset(&cfg, 0, sizeof(cfg));
	cfg.port.frame_size = 9014;
	cfg.port.promiscuous = 1;
	inet_pton(AF_INET, a->dp_ip, &ip);
	cfg.local.ipv4 = ntohl(ip.s_addr);
	cfg.idle_sleep_us = a->idle_sleep_us;
	rc = dp_engine_create(&cfg, &b->dp);
	if (rc != 0)
		return rc;
	dp_engine_datapath(b->dp, &b->datapath);
	dj_client_options_init(&o);
	rc = djc_parse_host_port(a->baseline, host, sizeof(host), 1, &o.port);
	o.host = host;
	o.token_file = a->token_file;
	o.datapath = &b->datapath;
	o.path = DJ_PATH_DPDK;
	o.dp_timeout_ms = 30000;
	if (rc == 0)
		rc = dj_client_create(&o, &b->client);
	if (rc == 0)
		rc = dj_connect(b->client, &b->conn);
	if (rc == 0 && dj_conn_path(b->conn, &reason) != DJ_PATH_DPDK)
		rc = -DJ_ENODPDK;
	return rc;
}

static void baseline_close(struct baseline *b)
{
	if (b->conn != NULL)
		dj_conn_close(b->conn);
	dj_client_destroy(b->client);
	if (b->dp != NULL)
		dp_engine_quiesce(b->dp);
	dp_engine_destroy(b->dp);
}

static int baseline_put(struct baseline *b, const struct dj_tensor *t, double *s)
{
	uint64_t t0 = djc_time_ns(), h;
	int rc = dj_put(b->conn, t, &h);

	*s = (double)(djc_time_ns() - t0) / 1e9;
	if (rc == 0)
		rc = dj_free(b->conn, h);
	return rc;
}

/* ---- one size ----------------------------------------------------------------------- */

static void record(struct result *r, enum measure m, double s)
{
	if (r->n[m] < MAX_REPS)
		r->s[m][r->n[m]++] = s;
}

static int run_size(const struct bench_args *a, struct dj_fleet *f, uint32_t ma, uint32_t mb,
		    struct baseline *b, int have_baseline, uint64_t bytes, struct result *r)
{
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 1,
				       .shape = {(int64_t)(bytes / 2)}}, .mem = DJ_MEM_HOST};
	struct dj_tensor back = t;
	struct dj_fleet_handle h, moved;
	struct dj_fleet_move_info info;
	int rc;

	memset(r, 0, sizeof(*r));
	r->bytes = bytes;
	t.data = malloc(bytes);
	back.data = malloc(bytes);
	if (t.data == NULL || back.data == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < bytes; i += 4096)
		((uint8_t *)t.data)[i] = (uint8_t)(i >> 12);
	((uint8_t *)t.data)[bytes - 1] = 0x5a;
	rc = dj_fleet_put(f, ma, &t, &h);
	/* One move each way first: member connections and probes. */
	for (int w = 0; w < 2 && rc == 0; w++) {
		rc = dj_fleet_move(f, h, h.member == ma ? mb : ma, 0, &moved, &info);
		h = moved;
	}
	for (int rep = 0; rep < a->reps && rc == 0; rep++) {
		double s, d2h, h2d;

		rc = dj_fleet_move(f, h, h.member == ma ? mb : ma, 0, &moved, &info);
		if (rc != 0)
			break;
		h = moved;
		record(r, M_MOVE_SERVER, (double)info.server_ns / 1e9);
		record(r, M_MOVE_TOTAL, (double)info.total_ns / 1e9);
		snprintf(r->path_reason, sizeof(r->path_reason), "%s: %s", dj_path_name(info.path),
			 info.path_reason);
		if (have_baseline && baseline_put(b, &t, &s) == 0)
			record(r, M_PUT, s);
		if (a->gpu_copy >= 0 && bench_cuda_copy(a->gpu_copy, bytes, &d2h, &h2d) == 0) {
			record(r, M_D2H, d2h);
			record(r, M_H2D, h2d);
		}
	}
	if (rc == 0)
		rc = dj_fleet_get(f, h, &back);
	r->exact = rc == 0 && memcmp(t.data, back.data, bytes) == 0;
	if (rc == 0)
		dj_fleet_free(f, h);
	else
		fprintf(stderr, "bench-fleet: %s\n", dj_fleet_last_error());
	free(t.data);
	free(back.data);
	return rc;
}

/* ---- report ----------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* Goodput in Gbit/s: median, lowest, highest over the reps. */
static int goodput(const struct result *r, enum measure m, double out[3])
{
	double s[MAX_REPS];
	int n = r->n[m];

	if (n == 0)
		return 0;
	memcpy(s, r->s[m], (size_t)n * sizeof(double));
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	out[0] = (double)r->bytes * 8 / s[n / 2] / 1e9;
	out[1] = (double)r->bytes * 8 / s[n - 1] / 1e9;
	out[2] = (double)r->bytes * 8 / s[0] / 1e9;
	return n;
}

static void report_table(const struct result *r)
{
	double put[3], mv[3], d2h[3], h2d[3];
	int have_put = goodput(r, M_PUT, put), have_mv = goodput(r, M_MOVE_TOTAL, mv);

	printf("\n%-12s %-24s %10s %19s %6s\n", "size", "measure", "Gbit/s", "(min..max)", "n");
	for (int m = 0; m < M_COUNT; m++) {
		double g[3];
		int k = goodput(r, (enum measure)m, g);

		if (k > 0)
			printf("%-12" PRIu64 " %-24s %10.2f %8.2f..%-8.2f %6d\n", r->bytes,
			       measure_name[m], g[0], g[1], g[2], k);
	}
	if (goodput(r, M_D2H, d2h) > 0 && goodput(r, M_H2D, h2d) > 0)
		printf("%-12" PRIu64 " %-24s %10.2f\n", r->bytes, "D2H then H2D (serial)",
		       1 / (1 / d2h[0] + 1 / h2d[0]));
	if (have_put && have_mv)
		printf("%-12" PRIu64 " move / PUT: %.0f %% (medians, client's times)\n", r->bytes,
		       100 * mv[0] / put[0]);
	printf("%-12" PRIu64 " path %s; read back %s\n", r->bytes, r->path_reason,
	       r->exact ? "byte-exact" : "DIFFERENT");
	fflush(stdout);
}

static void report_json(const char *path, int reps, const struct result *res, int n)
{
	FILE *j = path != NULL ? fopen(path, "w") : NULL;

	if (j == NULL)
		return;
	fprintf(j, "{\"bench\":\"fleet-move\",\"reps\":%d,\"results\":[", reps);
	for (int i = 0; i < n; i++) {
		fprintf(j, "%s{\"bytes\":%" PRIu64 ",\"exact\":%s,\"path\":\"%s\"", i ? "," : "",
			res[i].bytes, res[i].exact ? "true" : "false", res[i].path_reason);
		for (int m = 0; m < M_COUNT; m++) {
			double g[3];

			if (goodput(&res[i], (enum measure)m, g) > 0)
				fprintf(j, ",\"%s_gbps\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}",
					measure_key[m], g[0], g[1], g[2]);
		}
		fprintf(j, "}");
	}
	fprintf(j, "]}\n");
	fclose(j);
}

int main(int argc, char **argv)
{
	struct bench_args a = {.reps = 5, .gpu_copy = -1, .dp_ip = "198.18.2.2",
			       .sizes = {256ull << 20, 1ull << 30}, .n_sizes = 2};
	struct dp_eal_options eal_opts = {.default_vdev = VDEV};
	struct dj_fleet_options fo;
	struct dj_fleet *fleet = NULL;
	struct baseline base = {0};
	struct result res[MAX_SIZES];
	uint32_t ma, mb;
	int app_argc = argc, eal_up = 0, have_baseline, rc = 0;
	char **app_argv = argv, first[96], *comma;

	dj_log_set_level(DJ_LOG_WARN);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			eal_up = dp_eal_init(argc, argv, &eal_opts, &app_argc, &app_argv) == 0;
	if (parse_args(app_argc, app_argv, &a) != 0)
		return 2;
	have_baseline = baseline_open(&a, eal_up, &base) == 0;
	if (!have_baseline)
		printf("bench-fleet: no DPDK baseline (%s)\n", a.baseline == NULL ?
		       "no --baseline" : eal_up ? "cannot reach it over DPDK" : "no EAL");
	dj_fleet_options_init(&fo);
	fo.members = a.fleet;
	fo.client.token_file = a.token_file;
	fo.client.path = DJ_PATH_TCP;
	snprintf(first, sizeof(first), "%s", a.fleet);
	comma = strchr(first, ',');
	if (comma == NULL) {
		fprintf(stderr, "bench-fleet: --fleet names two members\n");
		return 2;
	}
	*comma = '\0';
	if (dj_fleet_create(&fo, &fleet) != 0 || dj_fleet_member_find(fleet, first, &ma) != 0 ||
	    dj_fleet_member_find(fleet, comma + 1, &mb) != 0) {
		fprintf(stderr, "bench-fleet: %s\n", dj_fleet_last_error());
		rc = 1;
	}
	int done = 0;

	for (int i = 0; i < a.n_sizes && rc == 0; i++) {
		printf("bench-fleet: %" PRIu64 " bytes, %d reps\n", a.sizes[i], a.reps);
		fflush(stdout);
		rc = run_size(&a, fleet, ma, mb, &base, have_baseline, a.sizes[i], &res[i]) != 0;
		if (rc == 0) {
			report_table(&res[i]);
			done++;
		}
	}
	report_json(a.json, a.reps, res, done);
	dj_fleet_destroy(fleet);
	baseline_close(&base);
	if (eal_up)
		dp_eal_cleanup();
	for (int i = 0; i < done && rc == 0; i++)
		rc = !res[i].exact;
	return rc;
}
