/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `djinn plan`: what the scheduler would do with the LLM demo's graphs
 * (llm_model.c) and why. The prefill graph of N sequences and then the
 * decode step after it are placed and cut into batches without running
 * anything; every decision is printed with its rule, its cost terms (compute,
 * move, queue, finish) and the other candidates, then what the run would
 * send (round trips, batches, transfers, KV-cache bytes crossing servers).
 *
 * The fleet is simulated (--sim: servers with the figures given, or default
 * ones), or measured on real servers (--servers: the scheduler's
 * calibration runs there; the placement is still simulated, so that the
 * decode step finds the caches the prefill would have made).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "djinn/graph.h"
#include "djinn/scheduler.h"
#include "common/cli.h"
#include "llm_model.h"
#include "plan_cmd.h"

#define MAX_SERVERS 16
#define MAX_SEQ 64

struct plan_args {
	struct llm_cfg cfg;
	int S, prompt;
	int gpus;                      /* --gpus: each server split into that many */
	uint64_t seed;
	const char *servers, *sim, *disagg;
	struct dj_sched_options o;
	struct dj_client_options copts;
};

/* "key=value,key=value": gflops, gbps, op_us, mem (a size), queued,
 * rtt_us, link_gbps. */
static int sim_server(struct dj_sched_server *sv, char *spec)
{
	char *save = NULL, *kv;

	for (kv = strtok_r(spec, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		double v = 0;
		uint64_t bytes;
		int rc = 0;

		if (eq == NULL)
			return djc_cli_error("--sim: '%s' is not key=value", kv);
		*eq = '\0';
		if (strcmp(kv, "mem") == 0) {
			rc = djc_opt_size("--sim mem", eq + 1, 0, UINT64_MAX, &bytes);
			sv->mem_free = sv->mem_total = bytes;
			if (rc != 0)
				return rc;
			continue;
		}
		rc = djc_opt_double("--sim", eq + 1, 0, 1e12, &v);
		if (rc != 0)
			return rc;
		if (strcmp(kv, "gflops") == 0)
			sv->matmul_gflops[DJ_DTYPE_FLOAT32] = v;
		else if (strcmp(kv, "gbps") == 0)
			sv->elementwise_gbps = v;
		else if (strcmp(kv, "op_us") == 0)
			sv->op_overhead_s = v * 1e-6;
		else if (strcmp(kv, "queued") == 0)
			sv->queued = v;
		else if (strcmp(kv, "rtt_us") == 0)
			sv->rtt_s = v * 1e-6;
		else if (strcmp(kv, "link_gbps") == 0)
			sv->bw_Bps = v * 1e9;
		else
			return djc_cli_error("--sim: unknown key '%s' (gflops, gbps, op_us, mem, "
					     "queued, rtt_us, link_gbps)", kv);
	}
	return 0;
}

/* "3" (three default servers) or "SPEC;SPEC;..." (one per server). */
static int sim_fleet(const char *text, struct dj_sched_fleet *f)
{
	char *copy = strdup(text), *p, *next, *end;
	unsigned long n = copy != NULL ? strtoul(copy, &end, 10) : 0;
	int rc = 0, count = 1;

	if (copy == NULL)
		return -ENOMEM;
	for (p = copy; *p != '\0'; p++)
		count += *p == ';';
	if (*end == '\0' && n >= 1 && n <= MAX_SERVERS)
		count = (int)n;
	else if (count > MAX_SERVERS)
		rc = djc_cli_error("--sim: at most %d servers", MAX_SERVERS);
	if (rc == 0)
		rc = dj_sched_fleet_sim(f, count);
	for (p = copy, count = 0; rc == 0 && p != NULL && !(*end == '\0' && n >= 1); p = next) {
		next = strchr(p, ';');
		if (next != NULL)
			*next++ = '\0';
		rc = sim_server(&f->servers[count++], p);
	}
	free(copy);
	dj_sched_fleet_links(f);
	snprintf(f->note, sizeof(f->note), "simulated fleet (--sim)");
	return rc;
}

/* The fleet measured on real servers (their calibration), names set. */
static int measured_fleet(struct plan_args *a, struct dj_sched_fleet *f)
{
	char host[MAX_SERVERS][64];
	uint16_t port[MAX_SERVERS];
	struct dj_client *cl[MAX_SERVERS] = {0};
	struct dj_conn *conn[MAX_SERVERS] = {0};
	int n = llm_servers_parse(a->servers, host, port, MAX_SERVERS), rc = n > 0 ? 0 : -EINVAL;

	for (int s = 0; rc == 0 && s < n; s++) {
		struct dj_client_options o = a->copts;

		o.host = host[s];
		o.port = port[s];
		rc = dj_client_create(&o, &cl[s]);
		if (rc == 0)
			rc = dj_connect(cl[s], &conn[s]);
		if (rc != 0)
			fprintf(stderr, "djinn plan: %s:%u: %s\n", host[s], port[s], dj_strerror(rc));
	}
	if (rc == 0)
		rc = dj_sched_measure(&a->o, conn, n, f);
	for (int s = 0; s < n && s < MAX_SERVERS; s++) {
		if (rc == 0)
			snprintf(f->servers[s].name, sizeof(f->servers[s].name), "%.40s:%u",
				 host[s], port[s]);
		if (conn[s] != NULL)
			dj_conn_close(conn[s]);
		dj_client_destroy(cl[s]);
	}
	return rc;
}

static void fleet_print(const struct dj_sched_fleet *f)
{
	printf("fleet: %d %s (%s)\n", f->n_servers, f->servers[0].group != 0 ? "units (server/GPU)" :
	       "servers", f->note);
	for (int s = 0; s < f->n_servers; s++) {
		const struct dj_sched_server *v = &f->servers[s];

		printf("  %-22s matmul %.2f GFLOP/s, elementwise %.2f GB/s, %.1f us/op, queue %.0f, "
		       "rtt %.1f us, %.2f GB/s", v->name, v->matmul_gflops[DJ_DTYPE_FLOAT32],
		       v->elementwise_gbps, v->op_overhead_s * 1e6, v->queued, v->rtt_s * 1e6,
		       v->bw_Bps / 1e9);
		if (v->mem_free != UINT64_MAX)
			printf(", %" PRIu64 " MiB free", v->mem_free >> 20);
		printf("\n");
	}
	if (f->n_servers > 1 && f->servers[0].group != 0 && f->servers[1].group == f->servers[0].group)
		printf("  between the GPUs of a server (peer copy, to_device): %.1f us, %.2f GB/s\n",
		       f->link_rtt_s[0][1] * 1e6, f->link_bw_Bps[0][1] / 1e9);
}

/* Place one step of every sequence and print why. */
static int plan_step(struct plan_args *a, struct dj_sched *s, const struct llm_model *m,
		     const char *what, int pos, int T)
{
	struct llm_step_in *in = calloc((size_t)a->S, sizeof(*in));
	int64_t *tokens = calloc(128, sizeof(int64_t));
	int *nodes = calloc((size_t)a->S, sizeof(int));
	struct dj_graph_run_stats st;
	struct llm_params p;
	struct dj_graph *g = NULL;
	const char *reason;
	char *text;
	int rc = in != NULL && tokens != NULL && nodes != NULL ? dj_graph_create(NULL, &g) : -ENOMEM;

	if (rc == 0)
		rc = llm_params_record(g, m, &p);
	for (int i = 0; rc == 0 && i < a->S; i++) {
		nodes[i] = llm_step_record(g, m, &p, i, pos, T, tokens, &in[i]);
		rc = nodes[i] < 0 ? nodes[i] : 0;
	}
	if (rc == 0) {
		enum dj_graph_phase ph = dj_graph_phase(g, &reason);

		printf("\n%s graph: %d nodes, phase %s: %s\n", what, dj_graph_node_count(g),
		       dj_graph_phase_name(ph), reason);
		rc = dj_sched_plan(s, g, nodes, a->S, &st);
		text = dj_sched_explain(s);
		printf("decisions:\n%s", text != NULL ? text : "");
		free(text);
	}
	if (rc == 0)
		printf("plan: %d round trip%s, %d stage%s, %d batch%s, %d ops, %d transfers between "
		       "servers, %" PRIu64 " KV-cache bytes crossing, %d states created, %d weights "
		       "uploaded, %" PRIu64 " bytes up\n", st.round_trips, st.round_trips == 1 ? "" : "s",
		       st.stages, st.stages == 1 ? "" : "s", st.batches, st.batches == 1 ? "" : "es",
		       st.ops, st.transfers, st.kv_bytes_moved, st.states_created,
		       st.params_uploaded, st.bytes_up);
	else
		fprintf(stderr, "djinn plan: %s: %s (%s)\n", what, dj_strerror(rc),
			g != NULL ? dj_graph_error(g) : "");
	dj_graph_destroy(g);
	free(in);
	free(tokens);
	free(nodes);
	return rc;
}

static void usage(void)
{
	printf("Usage: djinn plan [--sim N|SPEC;SPEC;...] [--servers HOST:PORT,...]\n"
	       "                  [--sequences N] [--prompt N] [--layers N] [--d-model N]\n"
	       "                  [--heads N] [--vocab N] [--ffn N] [--weights replicate|pin]\n"
	       "                  [--mode rules|round-robin] [--disagg P,..:D,..] [--homogeneous]\n"
	       "                  [--gpus N]\n"
	       "\n"
	       "Places the LLM demo's prefill graph for N sequences (8), then its decode step,\n"
	       "without running them, and prints every decision of the scheduler: its rule,\n"
	       "its cost terms and the other candidates; then what the run would send.\n"
	       "The fleet is simulated: --sim 3 (default: three equal servers) or one SPEC per\n"
	       "server, 'gflops=10,gbps=5,op_us=10,mem=8G,queued=0,rtt_us=50,link_gbps=1';\n"
	       "or measured: --servers runs the scheduler's calibration on real servers\n"
	       "(--homogeneous: they are the same hardware, their figures pooled).\n"
	       "--gpus N: every server is N GPUs of its figures (memory per GPU), the\n"
	       "scheduler's units \"server/cuda:K\"; --disagg then names units.\n");
}

static int args_parse(struct plan_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"sim", required_argument, NULL, 'm'}, {"servers", required_argument, NULL, 'S'},
		{"sequences", required_argument, NULL, 'n'}, {"prompt", required_argument, NULL, 'p'},
		LLM_CFG_LONGOPTS, {"weights", required_argument, NULL, 'w'},
		{"mode", required_argument, NULL, 'M'}, {"disagg", required_argument, NULL, 'D'},
		{"token-file", required_argument, NULL, 'T'}, {"homogeneous", no_argument, NULL, 'E'},
		{"gpus", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	static const char *const wnames[] = {"replicate", "pin"};
	static const char *const mnames[] = {"rules", "round-robin"};
	int c, rc = 0, w = 0, mode = 0;

	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': a->sim = optarg; break;
		case 'S': a->servers = optarg; break;
		case 'n': rc = djc_opt_int("--sequences", optarg, 1, MAX_SEQ, &a->S); break;
		case 'p': rc = djc_opt_int("--prompt", optarg, 1, 127, &a->prompt); break;
		case 'w': rc = djc_parse_choice(optarg, wnames, 2, &w); break;
		case 'M': rc = djc_parse_choice(optarg, mnames, 2, &mode); break;
		case 'D': a->disagg = optarg; break;
		case 'T': a->copts.token_file = optarg; break;
		case 'E': a->o.homogeneous = 1; break;
		case 'G': rc = djc_opt_int("--gpus", optarg, 1, 16, &a->gpus); break;
		case 'h': usage(); return 1;
		default:
			rc = llm_cfg_opt(&a->cfg, c, optarg);
			if (rc == -ENOENT) {
				usage();
				return -EINVAL;
			}
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return djc_cli_error("plan: unexpected '%s'", argv[optind]);
	if (a->sim != NULL && a->servers != NULL)
		return djc_cli_error("plan: --sim or --servers, not both");
	if (llm_cfg_check(&a->cfg) != 0)
		return -EINVAL;
	a->o.weights = (enum dj_sched_weights)w;
	a->o.mode = (enum dj_sched_mode)mode;
	return 0;
}

int djinn_plan_main(int argc, char **argv)
{
	struct plan_args a = {.S = 8, .prompt = 64, .seed = 1, .gpus = 1};
	struct dj_sched_fleet *f = calloc(1, sizeof(*f));
	struct dj_sched *s = NULL;
	struct llm_model m;
	int rc;

	if (f == NULL)
		return 1;
	dj_log_set_level(DJ_LOG_WARN);
	llm_cfg_default(&a.cfg);
	dj_sched_options_init(&a.o);
	dj_client_options_init(&a.copts);
	a.copts.path = DJ_PATH_TCP;
	rc = args_parse(&a, argc, argv);
	if (rc != 0) {
		free(f);
		return rc > 0 ? 0 : 2;
	}
	a.cfg.max_pos = a.prompt + 1;
	rc = a.servers != NULL ? measured_fleet(&a, f) : sim_fleet(a.sim != NULL ? a.sim : "3", f);
	if (rc == 0 && a.gpus > 1 && dj_sched_fleet_devices(f, a.gpus) != 0)
		rc = djc_cli_error("plan: --gpus %d: at most %d units in all", a.gpus,
				   DJ_SCHED_MAX_SERVERS);
	if (rc == 0 && a.disagg != NULL) {
		const char *colon = strchr(a.disagg, ':');
		char pre[64];

		snprintf(pre, sizeof(pre), "%.*s", colon != NULL ? (int)(colon - a.disagg) : 0,
			 a.disagg);
		if (colon == NULL || llm_mask_parse(pre, f->n_servers, &a.o.prefill_servers) != 0 ||
		    llm_mask_parse(colon + 1, f->n_servers, &a.o.decode_servers) != 0)
			rc = djc_cli_error("plan: --disagg '%s': prefill servers ':' decode servers "
					   "(indices below %d)", a.disagg, f->n_servers);
	}
	if (rc == 0)
		rc = llm_model_make(&m, &a.cfg, a.seed);
	else
		memset(&m, 0, sizeof(m));
	if (rc == 0)
		rc = dj_sched_create_sim(&a.o, f, &s);
	if (rc == 0) {
		fleet_print(f);
		printf("model: %d layers, d_model %d, %d heads, vocabulary %d, %.1f MiB of weights; "
		       "%d sequences, prompts of %d\n", a.cfg.layers, a.cfg.d_model, a.cfg.heads,
		       a.cfg.vocab, (double)llm_model_bytes(&m) / (1 << 20), a.S, a.prompt);
		rc = plan_step(&a, s, &m, "prefill", 0, a.prompt);
	}
	if (rc == 0)
		rc = plan_step(&a, s, &m, "decode", a.prompt, 1);
	dj_sched_destroy(s);
	llm_model_free(&m);
	free(f);
	return rc == 0 ? 0 : 1;
}
