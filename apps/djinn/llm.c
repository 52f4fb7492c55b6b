/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-llm: the acceptance workload of the scheduler (issue 14). A
 * decoder-only transformer with seeded random weights (llm_model.c)
 * generates greedily for several sequences at once on a fleet of servers:
 * one prefill graph for every sequence, then one graph per decode step
 * holding every sequence's step, placed by the scheduler (each sequence
 * beside its KV cache; new sequences spread by expected completion) and
 * run with one batch per server per step.
 *
 * In the same run: the local CPU reference (the tokens every run must
 * give), and baselines: the same model in this process on a server's own
 * runtime (no network), everything on one server, one operation per
 * request, round-robin placement per operation; optionally prefill/decode
 * disaggregation. A table and JSON: tokens/s, round trips and requests per
 * decode token, bytes moved per token, KV-cache bytes moved after prefill,
 * where the sequences live.
 *
 * --at-step K --exec CMD runs CMD before decode step K (the integration
 * test kills a server with it): the scheduler rebuilds the lost sequences
 * from their lineage (their tokens so far, prefilled again on a survivor)
 * and the run finishes with the same tokens.
 *
 * --fleet / --fleet-file / --fleet-etcd run it on a fleet (djinn/fleet.h)
 * instead of a list of servers: the scheduler over the members up
 * (dj_sched_create_fleet: links probed server to server, members that
 * leave noticed), KV caches that must move (--disagg) moved member to
 * member with dj_fleet_move, never through this client; the baselines use
 * the fleet's sessions.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "djinn/fleet.h"
#include "djinn/graph.h"
#include "djinn/scheduler.h"
#include "common/cli.h"
#include "common/djc.h"
#include "graph/gr.h"
#include "llm_exec.h"
#include "llm_model.h"

#define MAX_SERVERS 16
#define MAX_SEQ 64

struct demo {
	struct llm_cfg cfg;
	struct llm_model m;
	int S, prompt, steps, len;          /* len: prompt + steps + 1 tokens per sequence */
	uint64_t seed;
	int64_t *prompts;                   /* [S][prompt] */
	int64_t *ref;                       /* [S][len]: the local reference */
	float *ref_logits;                  /* [S][steps + 1][vocab] */
	int n;                              /* servers */
	char host[MAX_SERVERS][64];
	uint16_t port[MAX_SERVERS];
	struct dj_client *cl[MAX_SERVERS];
	struct dj_conn *conn[MAX_SERVERS];
	struct dj_client_options copts;
	const char *inproc_gpu;
	int at_step;
	const char *exec_cmd;
	enum dj_sched_weights weights;
	int homogeneous;
	uint64_t prefill_mask, decode_mask;
	struct dj_sched_fleet *fleet;       /* measured once, shared by the runs */
	struct dj_fleet_options fo;         /* --fleet*: a fleet instead of --servers */
	int use_fleet;
	struct dj_fleet *fl;
	uint32_t member[MAX_SERVERS];       /* fleet: server s is member[s] */
	/* The scheduler's placement units: a server, or one device of a
	 * server of several (set by the first scheduler). */
	int units;
};

/* One way of running the model, and what it measured. */
struct run {
	const char *name;
	struct demo *d;
	struct dj_sched *sched;             /* fetch through the scheduler */
	struct dj_graph_ctx *ctx;           /* or a context of its own */
	struct gr_local *local;             /* or the CPU reference */
	struct llm_exec *exec;              /* or node by node */
	int network;                        /* 0: no network at all */
	int64_t *tok;                       /* [S][len] */
	int cache_len;                      /* positions in every KV cache now */
	double prefill_s, decode_s;
	struct dj_graph_run_stats pre, dec; /* graph runs: counters per phase */
	uint64_t dec_requests, dec_waited, dec_bytes;
	int spread[MAX_SERVERS], have_spread; /* where the sequences live after prefill */
	int spread_end[MAX_SERVERS];          /* and at the end */
	int mismatches;
	char first_mismatch[256];
	int failed;
	struct dj_sched_stats sst;          /* scheduler runs */
};

static double now_s(void)
{
	return (double)djc_time_ns() / 1e9;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- one step of every sequence ------------------------------------------- */

static void stats_diff(struct dj_graph_run_stats *out, const struct dj_graph_run_stats *a,
		       const struct dj_graph_run_stats *b)
{
	out->round_trips = b->round_trips - a->round_trips;
	out->batches = b->batches - a->batches;
	out->ops = b->ops - a->ops;
	out->bytes_up = b->bytes_up - a->bytes_up;
	out->bytes_down = b->bytes_down - a->bytes_down;
	out->kv_bytes_moved = b->kv_bytes_moved - a->kv_bytes_moved;
	out->state_moves = b->state_moves - a->state_moves;
	out->kv_bytes_through_client = b->kv_bytes_through_client - a->kv_bytes_through_client;
	out->transfers = b->transfers - a->transfers;
	out->params_uploaded = b->params_uploaded - a->params_uploaded;
}

static struct dj_graph_ctx *run_ctx(const struct run *r)
{
	return r->sched != NULL ? dj_sched_ctx(r->sched) : r->ctx;
}

/* Sequences first..first+count-1, T tokens each from position pos; their
 * next tokens land in r->tok. seq_only >= 0: that one sequence (a rebuild),
 * its next token checked rather than stored. */
static int step(struct run *r, int pos, int T, int first, int count, int rebuild)
{
	struct demo *d = r->d;
	struct llm_step_in *in = calloc((size_t)count, sizeof(*in));
	struct dj_tensor *out = calloc((size_t)count * 2, sizeof(*out));
	int *nodes = calloc((size_t)count * 2, sizeof(int));
	int64_t *next = calloc((size_t)count, sizeof(int64_t));
	struct llm_params p;
	struct dj_graph *g = NULL;
	int rc = in != NULL && out != NULL && nodes != NULL && next != NULL ? 0 : -ENOMEM;
	int n_fetch = count;

	if (rc == 0)
		rc = dj_graph_create(r->local != NULL || r->exec != NULL ? NULL : run_ctx(r), &g);
	if (rc == 0)
		rc = llm_params_record(g, &d->m, &p);
	for (int i = 0; rc == 0 && i < count; i++) {
		int s = first + i;

		nodes[i] = llm_step_record(g, &d->m, &p, s, pos, T, r->tok + (size_t)s * d->len + pos,
					   &in[i]);
		rc = nodes[i] < 0 ? nodes[i] : 0;
		out[i] = (struct dj_tensor){.data = &next[i], .mem = DJ_MEM_HOST};
	}
	if (rc == 0 && r->local != NULL) {
		/* The reference keeps every logit row, to say how close a
		 * different token of another run was. */
		for (int i = 0; i < count; i++) {
			struct dj_graph_node_info ni;

			dj_graph_node(g, nodes[i], &ni);
			nodes[count + i] = ni.inputs[0];
			out[count + i].data = d->ref_logits + ((size_t)(first + i) * (d->steps + 1) +
					      (size_t)(pos + T - d->prompt)) * d->cfg.vocab;
		}
		n_fetch = 2 * count;
	}
	if (rc == 0) {
		if (r->local != NULL)
			rc = gr_local_fetch(r->local, g, nodes, n_fetch, out);
		else if (r->exec != NULL)
			rc = llm_exec_fetch(r->exec, g, nodes, n_fetch, out);
		else if (r->sched != NULL)
			rc = dj_sched_fetch(r->sched, g, nodes, n_fetch, out);
		else
			rc = dj_graph_fetch(g, nodes, n_fetch, out);
		if (rc != 0)
			fprintf(stderr, "djinn-llm: %s: step at %d: %s: %s\n", r->name, pos,
				dj_strerror(rc), r->exec != NULL ? r->exec->err : dj_graph_error(g));
	}
	for (int i = 0; rc == 0 && i < count; i++) {
		int64_t *slot = r->tok + (size_t)(first + i) * d->len + pos + T;

		if (rebuild && *slot != next[i])
			fprintf(stderr, "djinn-llm: %s: rebuilt seq%d predicts %" PRId64 " where %"
				PRId64 " was generated\n", r->name, first + i, next[i], *slot);
		if (!rebuild)
			*slot = next[i];
	}
	dj_graph_destroy(g);
	free(in);
	free(out);
	free(nodes);
	free(next);
	return rc;
}

/* The lineage of a sequence: its tokens so far, prefilled again. */
static int rebuild(void *arg, struct dj_sched *s, const char *sequence)
{
	struct run *r = arg;
	int seq = atoi(sequence + 3);

	(void)s;
	if (strncmp(sequence, "seq", 3) != 0 || seq < 0 || seq >= r->d->S)
		return -EINVAL;
	if (r->cache_len == 0)
		return -EAGAIN; /* lost in its own prefill: that fetch makes it again */
	printf("  recovery: seq%d prefilled again from its %d tokens\n", seq, r->cache_len);
	return step(r, 0, r->cache_len, seq, 1, 1);
}

static void counters(struct run *r, struct dj_graph_run_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (run_ctx(r) != NULL && r->local == NULL && r->exec == NULL)
		dj_graph_ctx_stats(run_ctx(r), st);
	if (r->exec != NULL) {
		st->round_trips = (int)r->exec->waited;
		st->batches = (int)r->exec->requests;
		st->bytes_up = r->exec->bytes_up;
		st->bytes_down = r->exec->bytes_down;
	}
}

/* Sequences per server, as the scheduler placed them (round robin
 * spreads each state on its own: no such figure). */
static void spread_read(struct run *r, int *spread)
{
	struct dj_sched_sequence q[MAX_SEQ];
	int n = r->sched != NULL ? dj_sched_sequences(r->sched, q, MAX_SEQ) : 0;

	memset(spread, 0, sizeof(int) * MAX_SERVERS);
	r->have_spread = n > 0;
	for (int i = 0; i < n && i < MAX_SEQ; i++)
		if (!q[i].lost && q[i].server < MAX_SERVERS)
			spread[q[i].server]++;
}

/* Prefill, then every decode step, timed. */
static int generate(struct run *r)
{
	struct demo *d = r->d;
	struct dj_graph_run_stats a, b, c;
	double t0, t1;
	int rc;

	r->tok = calloc((size_t)d->S * (size_t)d->len, sizeof(int64_t));
	if (r->tok == NULL)
		return -ENOMEM;
	for (int s = 0; s < d->S; s++)
		memcpy(r->tok + (size_t)s * d->len, d->prompts + (size_t)s * d->prompt,
		       sizeof(int64_t) * (size_t)d->prompt);
	if (r->sched != NULL)
		dj_sched_set_lineage(r->sched, rebuild, r);
	counters(r, &a);
	t0 = now_s();
	r->cache_len = 0;
	rc = step(r, 0, d->prompt, 0, d->S, 0);
	t1 = now_s();
	r->prefill_s = t1 - t0;
	spread_read(r, r->spread);
	counters(r, &b);
	for (int j = 0; rc == 0 && j < d->steps; j++) {
		if (d->exec_cmd != NULL && j == d->at_step && r->sched != NULL) {
			double t = now_s();
			int st = system(d->exec_cmd);

			printf("  step %d: ran '%s' (status %d)\n", j, d->exec_cmd, st);
			t1 += now_s() - t; /* the command's own time is not the run's */
		}
		r->cache_len = d->prompt + j;
		rc = step(r, d->prompt + j, 1, 0, d->S, 0);
	}
	r->decode_s = now_s() - t1;
	counters(r, &c);
	stats_diff(&r->pre, &a, &b);
	stats_diff(&r->dec, &b, &c);
	r->failed = rc != 0;
	return rc;
}

/* Every generated token against the reference; the first difference of
 * each sequence explained by the reference's own logits there. */
static void compare(struct run *r)
{
	struct demo *d = r->d;

	r->mismatches = 0;
	r->first_mismatch[0] = '\0';
	for (int s = 0; s < d->S; s++)
		for (int t = d->prompt; t < d->len; t++) {
			int64_t got = r->tok[(size_t)s * d->len + t], want = d->ref[(size_t)s * d->len + t];
			const float *lg = d->ref_logits + ((size_t)s * (d->steps + 1) +
					  (size_t)(t - d->prompt)) * d->cfg.vocab;

			if (got == want)
				continue;
			if (r->mismatches++ == 0 && got >= 0 && got < d->cfg.vocab)
				snprintf(r->first_mismatch, sizeof(r->first_mismatch), "seq%d token %d: "
					 "%" PRId64 " where the reference has %" PRId64 " (reference "
					 "logits %.7g vs %.7g: %s)", s, t - d->prompt, got, want,
					 lg[got], lg[want], lg[got] == lg[want] ? "a tie" :
					 "no tie");
			break; /* the rest of the sequence follows from it */
		}
}

/* ---- the runs ----------------------------------------------------------------- */

static int run_reference(struct demo *d, struct run *r)
{
	int rc = gr_local_create(&r->local);

	r->name = "local CPU reference";
	if (rc == 0)
		rc = generate(r);
	gr_local_destroy(r->local);
	r->local = NULL;
	if (rc == 0)
		memcpy(d->ref, r->tok, sizeof(int64_t) * (size_t)d->S * (size_t)d->len);
	return rc;
}

static int run_sched(struct demo *d, struct run *r, const char *name, int n,
		     enum dj_sched_mode mode, uint64_t prefill, uint64_t decode)
{
	struct dj_sched_options o;
	int rc;

	r->name = name;
	r->network = 1;
	dj_sched_options_init(&o);
	o.mode = mode;
	o.weights = d->weights;
	o.prefill_servers = prefill;
	o.decode_servers = decode;
	o.homogeneous = d->homogeneous;
	o.fleet = n == d->n ? d->fleet : NULL; /* calibrated once, by the first run */
	rc = d->fl != NULL ? dj_sched_create_fleet(&o, d->fl, &r->sched) :
	     dj_sched_create(&o, d->conn, n, &r->sched);
	for (int s = 0; rc == 0 && d->fl != NULL && s < n; s++) {
		uint32_t m;

		if (dj_sched_member(r->sched, s, &m) != 0 || m != d->member[s])
			rc = -ESTALE; /* the fleet changed since it was calibrated */
	}
	if (rc != 0) {
		fprintf(stderr, "djinn-llm: %s: scheduler: %s\n", name, dj_strerror(rc));
		dj_sched_destroy(r->sched);
		r->sched = NULL;
		r->failed = 1;
		return rc;
	}
	if (d->fleet == NULL && n == d->n && (d->fleet = malloc(sizeof(*d->fleet))) != NULL) {
		/* Without a fleet, the first run calibrates; names as given
		 * (servers of several devices: "sN/DEVICE" per unit). */
		dj_sched_fleet_get(r->sched, d->fleet);
		for (int s = 0; s < n && d->fleet->n_servers == n; s++)
			snprintf(d->fleet->servers[s].name, sizeof(d->fleet->servers[s].name),
				 "%.40s:%u", d->host[s], d->port[s]);
		dj_sched_fleet_set(r->sched, d->fleet);
		d->units = d->fleet->n_servers < MAX_SERVERS ? d->fleet->n_servers : MAX_SERVERS;
	}
	rc = generate(r);
	spread_read(r, r->spread_end);
	dj_sched_stats(r->sched, &r->sst);
	dj_sched_destroy(r->sched);
	r->sched = NULL;
	return rc;
}

static int run_one_server(struct demo *d, struct run *r)
{
	int rc = dj_graph_ctx_create(NULL, d->conn, 1, &r->ctx);

	r->name = "everything on one server";
	r->network = 1;
	if (rc == 0)
		rc = generate(r);
	r->have_spread = 1;
	r->spread[0] = r->spread_end[0] = d->S;
	dj_graph_ctx_destroy(r->ctx);
	r->ctx = NULL;
	return rc;
}

static int run_exec(struct demo *d, struct run *r, int inproc)
{
	struct llm_inproc ip = {0};
	struct llm_exec e;
	int rc = 0;

	r->name = inproc ? "in-process runtime, no network" : "one op per request";
	r->network = !inproc;
	if (inproc) {
		rc = llm_inproc_open(&ip, d->inproc_gpu);
		llm_exec_over_inproc(&e, &ip);
	} else {
		llm_exec_over_conn(&e, d->conn[0]);
	}
	r->exec = &e;
	if (rc == 0)
		rc = generate(r);
	llm_exec_clear(&e);
	r->exec = NULL;
	if (inproc) {
		r->dec.round_trips = 0;
		llm_inproc_close(&ip);
	}
	return rc;
}

/* ---- report ------------------------------------------------------------------ */

static double per_tok(const struct demo *d, double x)
{
	return x / (double)(d->S * d->steps);
}

static void row(const struct demo *d, const struct run *r)
{
	char spread[64] = "-";
	size_t o = 0;

	/* After prefill; "> end" where it changed (a server lost, a move). */
	for (int s = 0; r->have_spread && s < d->units && o < sizeof(spread) - 8; s++)
		o += (size_t)snprintf(spread + o, sizeof(spread) - o, "%s%d", s ? "/" : "",
				      r->spread[s]);
	if (r->have_spread && memcmp(r->spread, r->spread_end, sizeof(r->spread)) != 0)
		for (int s = 0; s < d->units && o < sizeof(spread) - 8; s++)
			o += (size_t)snprintf(spread + o, sizeof(spread) - o, "%s%d", s ? "/" : ">",
					      r->spread_end[s]);
	printf("%-32s %9.1f %9.3f %8.2f %9.3f %11.0f %9" PRIu64 " %9" PRIu64 " %-9s %s\n", r->name,
	       r->failed ? 0.0 : (double)(d->S * d->steps) / r->decode_s, r->prefill_s,
	       (double)r->dec.round_trips / d->steps, per_tok(d, r->dec.batches),
	       per_tok(d, (double)(r->dec.bytes_up + r->dec.bytes_down)), r->dec.kv_bytes_moved,
	       r->dec.kv_bytes_through_client, spread,
	       r->failed ? "FAILED" : r->mismatches == 0 ? "MATCH" : "DIFFERS");
	if (r->sst.kv_moves > 0)
		printf("    KV moves: %d (%" PRIu64 " bytes); server to server %d (%d over DPDK), %"
		       PRIu64 " bytes in %.1f ms; through this client %" PRIu64 " bytes\n",
		       r->sst.kv_moves, r->sst.kv_move_bytes, r->sst.kv_moves_direct,
		       r->sst.kv_moves_dpdk, r->sst.kv_move_bytes_direct,
		       (double)r->sst.kv_move_ns / 1e6,
		       r->pre.kv_bytes_through_client + r->dec.kv_bytes_through_client);
	if (r->sst.kv_moves_peer > 0)
		printf("    of them between devices of one server (to_device): %d, %" PRIu64
		       " bytes\n", r->sst.kv_moves_peer, r->sst.kv_move_bytes_peer);
	if (r->mismatches > 0 && !r->failed)
		printf("    %d sequence%s differ; first: %s\n", r->mismatches,
		       r->mismatches == 1 ? "" : "s", r->first_mismatch);
}

static cJSON *run_json(const struct demo *d, const struct run *r)
{
	cJSON *j = cJSON_CreateObject(), *sp = cJSON_CreateArray();

	cJSON_AddStringToObject(j, "name", r->name);
	cJSON_AddBoolToObject(j, "ok", !r->failed);
	cJSON_AddBoolToObject(j, "tokens_match", !r->failed && r->mismatches == 0);
	cJSON_AddNumberToObject(j, "sequences_differing", r->mismatches);
	if (r->first_mismatch[0] != '\0')
		cJSON_AddStringToObject(j, "first_difference", r->first_mismatch);
	cJSON_AddNumberToObject(j, "prefill_s", r->prefill_s);
	cJSON_AddNumberToObject(j, "decode_s", r->decode_s);
	cJSON_AddNumberToObject(j, "decode_tokens", d->S * d->steps);
	cJSON_AddNumberToObject(j, "decode_tokens_per_s",
				r->failed ? 0 : (double)(d->S * d->steps) / r->decode_s);
	cJSON_AddNumberToObject(j, "round_trips_per_decode_step",
				(double)r->dec.round_trips / d->steps);
	cJSON_AddNumberToObject(j, "round_trips_per_decode_token", per_tok(d, r->dec.round_trips));
	cJSON_AddNumberToObject(j, "requests_per_decode_token", per_tok(d, r->dec.batches));
	cJSON_AddNumberToObject(j, "bytes_per_decode_token",
				per_tok(d, (double)(r->dec.bytes_up + r->dec.bytes_down)));
	cJSON_AddNumberToObject(j, "kv_bytes_moved_after_prefill", (double)r->dec.kv_bytes_moved);
	cJSON_AddNumberToObject(j, "kv_bytes_moved_in_prefill", (double)r->pre.kv_bytes_moved);
	cJSON_AddNumberToObject(j, "state_moves", r->pre.state_moves + r->dec.state_moves);
	/* KV bytes that came down to this client and went up again (moves
	 * without the fleet, caches' parts crossing servers), against those
	 * the fleet moved server to server. */
	cJSON_AddNumberToObject(j, "kv_bytes_through_client",
				(double)(r->pre.kv_bytes_through_client +
					 r->dec.kv_bytes_through_client));
	cJSON_AddNumberToObject(j, "kv_bytes_through_client_after_prefill",
				(double)r->dec.kv_bytes_through_client);
	cJSON_AddNumberToObject(j, "kv_moves", r->sst.kv_moves);
	cJSON_AddNumberToObject(j, "kv_moves_server_to_server", r->sst.kv_moves_direct);
	cJSON_AddNumberToObject(j, "kv_moves_over_dpdk", r->sst.kv_moves_dpdk);
	cJSON_AddNumberToObject(j, "kv_bytes_server_to_server", (double)r->sst.kv_move_bytes_direct);
	cJSON_AddNumberToObject(j, "kv_moves_between_devices", r->sst.kv_moves_peer);
	cJSON_AddNumberToObject(j, "kv_bytes_between_devices", (double)r->sst.kv_move_bytes_peer);
	cJSON_AddNumberToObject(j, "kv_move_s", (double)r->sst.kv_move_ns / 1e9);
	cJSON_AddNumberToObject(j, "bytes_moved_per_decode_token",
				per_tok(d, (double)(r->dec.bytes_up + r->dec.bytes_down +
						    r->sst.kv_move_bytes_direct)));
	cJSON_AddNumberToObject(j, "transfers_in_decode", r->dec.transfers);
	cJSON_AddBoolToObject(j, "network", r->network);
	cJSON *end = cJSON_CreateArray();

	for (int s = 0; r->have_spread && s < d->units; s++) {
		cJSON_AddItemToArray(sp, cJSON_CreateNumber(r->spread[s]));
		cJSON_AddItemToArray(end, cJSON_CreateNumber(r->spread_end[s]));
	}
	cJSON_AddItemToObject(j, "spread_after_prefill", sp);
	cJSON_AddItemToObject(j, "spread_at_end", end);
	return j;
}

static int report_json(const struct demo *d, struct run *runs, int n, const char *path,
		       const struct dj_sched_stats *main_stats)
{
	cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	char *text;
	FILE *f;

	cJSON_AddNumberToObject(cfg, "layers", d->cfg.layers);
	cJSON_AddNumberToObject(cfg, "d_model", d->cfg.d_model);
	cJSON_AddNumberToObject(cfg, "heads", d->cfg.heads);
	cJSON_AddNumberToObject(cfg, "vocab", d->cfg.vocab);
	cJSON_AddNumberToObject(cfg, "ffn", d->cfg.ffn);
	cJSON_AddNumberToObject(cfg, "sequences", d->S);
	cJSON_AddNumberToObject(cfg, "prompt", d->prompt);
	cJSON_AddNumberToObject(cfg, "decode_steps", d->steps);
	cJSON_AddNumberToObject(cfg, "servers", d->n);
	cJSON_AddNumberToObject(cfg, "units", d->units);
	cJSON_AddNumberToObject(cfg, "seed", (double)d->seed);
	cJSON_AddNumberToObject(cfg, "weight_bytes", (double)llm_model_bytes(&d->m));
	cJSON_AddItemToObject(root, "config", cfg);
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, run_json(d, &runs[i]));
	cJSON_AddItemToObject(root, "runs", arr);
	cJSON_AddNumberToObject(root, "servers_lost", main_stats->servers_lost);
	cJSON_AddNumberToObject(root, "sequences_rebuilt", main_stats->sequences_rebuilt);
	cJSON_AddNumberToObject(root, "fetch_retries", main_stats->retries);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	f = text != NULL ? fopen(path, "w") : NULL;
	if (f != NULL) {
		fputs(text, f);
		fputc('\n', f);
		fclose(f);
	}
	free(text);
	return f != NULL ? 0 : -EIO;
}

/* ---- set-up ----------------------------------------------------------------- */

/* A fleet: its members up, in the scheduler's order (a scheduler made once
 * to calibrate them and probe their links: every run reuses its figures),
 * and their sessions for the baselines. */
static int connect_fleet(struct demo *d)
{
	struct dj_sched_options o;
	struct dj_sched *probe = NULL;
	int rc;

	d->fo.client = d->copts;
	rc = dj_fleet_create(&d->fo, &d->fl);
	if (rc != 0) {
		fprintf(stderr, "djinn-llm: fleet: %s\n", dj_fleet_last_error());
		return rc;
	}
	/* The scheduler takes the members up now: give servers started with
	 * us time to come up (all of them listed, up to member_wait_ms), then
	 * go on with those that did, none being an error. */
	struct dj_fleet_member *m = calloc(MAX_SERVERS, sizeof(*m));
	int listed = m != NULL ? dj_fleet_view(d->fl, NULL, m, MAX_SERVERS) : 0;

	free(m);
	if (listed > 0 && dj_fleet_wait(d->fl, listed, d->fo.member_wait_ms) != 0) {
		fprintf(stderr, "djinn-llm: fleet: %s\n", dj_fleet_last_error());
		if (dj_fleet_wait(d->fl, 1, 0) != 0)
			return -EHOSTUNREACH;
	}
	dj_sched_options_init(&o);
	o.homogeneous = d->homogeneous;
	rc = dj_sched_create_fleet(&o, d->fl, &probe);
	d->fleet = rc == 0 ? malloc(sizeof(*d->fleet)) : NULL;
	if (rc == 0 && d->fleet == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		dj_sched_fleet_get(probe, d->fleet);
		d->n = d->fleet->n_servers;
		d->units = d->n;
		rc = d->n <= MAX_SERVERS ? 0 : -E2BIG;
	}
	for (int s = 0; rc == 0 && s < d->n; s++) {
		rc = dj_sched_member(probe, s, &d->member[s]);
		if (rc == 0)
			rc = dj_fleet_conn(d->fl, d->member[s], &d->conn[s]);
	}
	dj_sched_destroy(probe);
	if (rc != 0)
		fprintf(stderr, "djinn-llm: fleet: %s (%s)\n", dj_strerror(rc), dj_fleet_last_error());
	return rc;
}

static int connect_all(struct demo *d)
{
	if (d->use_fleet)
		return connect_fleet(d);
	for (int s = 0; s < d->n; s++) {
		struct dj_client_options o = d->copts;
		int rc;

		o.host = d->host[s];
		o.port = d->port[s];
		rc = dj_client_create(&o, &d->cl[s]);
		if (rc == 0)
			rc = dj_connect(d->cl[s], &d->conn[s]);
		if (rc != 0) {
			fprintf(stderr, "djinn-llm: cannot reach %s:%u: %s\n", d->host[s], d->port[s],
				dj_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static void disconnect_all(struct demo *d)
{
	if (d->fl != NULL) {
		/* The sessions are the fleet's. */
		dj_fleet_destroy(d->fl);
		return;
	}
	for (int s = 0; s < d->n; s++) {
		if (d->conn[s] != NULL)
			dj_conn_close(d->conn[s]);
		dj_client_destroy(d->cl[s]);
	}
}

static void fleet_print(const struct demo *d)
{
	const struct dj_sched_fleet *f = d->fleet;

	if (f == NULL)
		return;
	printf("%s (calibrated from this client):\n", d->fl != NULL ? "fleet members" : "fleet");
	for (int s = 0; s < f->n_servers; s++) {
		const struct dj_sched_server *v = &f->servers[s];

		printf("  s%d %-21s matmul f32 %8.2f GFLOP/s, elementwise %6.2f GB/s, %5.1f us/op, "
		       "rtt %6.1f us, %5.2f GB/s up", s, v->name, v->matmul_gflops[DJ_DTYPE_FLOAT32],
		       v->elementwise_gbps, v->op_overhead_s * 1e6, v->rtt_s * 1e6, v->bw_Bps / 1e9);
		if (v->mem_free != UINT64_MAX)
			printf(", %" PRIu64 " MiB free", v->mem_free >> 20);
		printf("\n");
	}
	for (int a = 0; f->links_direct && a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++)
			if (a != b)
				printf("  link s%d -> s%d: %7.1f us, %6.2f GB/s (server to server)\n", a,
				       b, f->link_rtt_s[a][b] * 1e6, f->link_bw_Bps[a][b] / 1e9);
	printf("  %s\n", f->note);
}

static void usage(void)
{
	printf("Usage: djinn-llm [--servers HOST:PORT,... | --fleet HOST:PORT,... |\n"
	       "                  --fleet-file PATH | --fleet-etcd URL [--fleet-prefix P]]\n"
	       "                 [--sequences N] [--prompt N] [--steps N]\n"
	       "                 [--layers N] [--d-model N] [--heads N] [--vocab N] [--ffn N]\n"
	       "                 [--seed S] [--baselines LIST|all|none] [--inproc-gpu SPEC]\n"
	       "                 [--weights replicate|pin] [--disagg P,..:D,..] [--json PATH]\n"
	       "                 [--at-step K --exec CMD] [--homogeneous] [--token-file PATH]\n"
	       "\n"
	       "A decoder-only transformer (seeded random weights; default 4 layers, d_model\n"
	       "256, 4 heads, vocabulary 4096, learned positions, float32) generates greedily\n"
	       "for N sequences (8) from prompts of 64 tokens, 32 decode steps, on the servers\n"
	       "(default 127.0.0.1:18515,18516,18517) through the scheduler, and checks every\n"
	       "token against the local CPU run. Baselines in the same run (default all):\n"
	       "inproc (the server's runtime in this process, --inproc-gpu, default auto),\n"
	       "one-server, one-op (a request per operation), round-robin (per operation).\n"
	       "--disagg 0:1,2 adds a run with prefill on server 0 and decode on 1 and 2.\n"
	       "--homogeneous: the servers are the same hardware (their calibrations pooled).\n"
	       "--fleet, --fleet-file, --fleet-etcd: the members of a fleet instead (as\n"
	       "`djinn fleet` takes them): links probed server to server, KV caches moved\n"
	       "member to member (never through this client), members that leave noticed.\n"
	       "--at-step K --exec CMD runs CMD before decode step K (e.g. kill a server):\n"
	       "the lost sequences are rebuilt on the others; baselines are skipped.\n"
	       "Exit status 0 when every run gave the reference's tokens.\n");
}

/* Baselines, bit i for names[i] of baselines_parse(). */
enum { B_ALL = 15 };

static int baselines_parse(const char *text, int *mask)
{
	static const char *const names[] = {"inproc", "one-server", "one-op", "round-robin"};
	char *copy = strdup(text), *save = NULL, *item;
	int rc = 0;

	*mask = 0;
	if (copy == NULL)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		int i;

		if (strcmp(item, "all") == 0)
			*mask = B_ALL;
		else if (strcmp(item, "none") != 0 && (rc = djc_parse_choice(item, names, 4, &i)) == 0)
			*mask |= 1 << i;
	}
	free(copy);
	return rc;
}

static int disagg_parse(struct demo *d, const char *text)
{
	char pre[64], dec[64];
	const char *colon = strchr(text, ':');

	if (colon == NULL || colon - text >= 64 || strlen(colon + 1) >= 64)
		return -EINVAL;
	snprintf(pre, sizeof(pre), "%.*s", (int)(colon - text), text);
	snprintf(dec, sizeof(dec), "%s", colon + 1);
	return llm_mask_parse(pre, d->n, &d->prefill_mask) == 0 &&
	       llm_mask_parse(dec, d->n, &d->decode_mask) == 0 ? 0 : -EINVAL;
}

static int options(struct demo *d, int argc, char **argv, int *baselines, const char **json,
		   const char **disagg)
{
	static const struct option longopts[] = {
		{"servers", required_argument, NULL, 'S'}, {"sequences", required_argument, NULL, 'n'},
		{"prompt", required_argument, NULL, 'p'}, {"steps", required_argument, NULL, 't'},
		LLM_CFG_LONGOPTS, {"seed", required_argument, NULL, 's'},
		{"baselines", required_argument, NULL, 'b'}, {"json", required_argument, NULL, 'j'},
		{"inproc-gpu", required_argument, NULL, 'g'}, {"at-step", required_argument, NULL, 'k'},
		{"exec", required_argument, NULL, 'x'}, {"weights", required_argument, NULL, 'w'},
		{"disagg", required_argument, NULL, 'D'}, {"token-file", required_argument, NULL, 'T'},
		{"homogeneous", no_argument, NULL, 'E'}, {"help", no_argument, NULL, 'h'},
		{"fleet", required_argument, NULL, 'F'}, {"fleet-file", required_argument, NULL, 'L'},
		{"fleet-etcd", required_argument, NULL, 'C'},
		{"fleet-prefix", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	static const char *const wnames[] = {"replicate", "pin"};
	const char *servers = "127.0.0.1:18515,127.0.0.1:18516,127.0.0.1:18517";
	uint64_t seed = 1;
	int c, rc = 0, w = 0, servers_given = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': servers = optarg; servers_given = 1; break;
		case 'n': rc = djc_opt_int("--sequences", optarg, 1, MAX_SEQ, &d->S); break;
		case 'p': rc = djc_opt_int("--prompt", optarg, 1, 128, &d->prompt); break;
		case 't': rc = djc_opt_int("--steps", optarg, 1, 1024, &d->steps); break;
		case 's': rc = djc_opt_u64("--seed", optarg, 0, UINT64_MAX, &seed); break;
		case 'b': rc = baselines_parse(optarg, baselines); break;
		case 'j': *json = optarg; break;
		case 'g': d->inproc_gpu = optarg; break;
		case 'k': rc = djc_opt_int("--at-step", optarg, 0, 1 << 20, &d->at_step); break;
		case 'x': d->exec_cmd = optarg; break;
		case 'w': rc = djc_parse_choice(optarg, wnames, 2, &w); break;
		case 'D': *disagg = optarg; break;
		case 'T': d->copts.token_file = optarg; break;
		case 'E': d->homogeneous = 1; break;
		case 'F': d->fo.members = optarg; d->use_fleet = 1; break;
		case 'L': d->fo.members_file = optarg; d->use_fleet = 1; break;
		case 'C': d->fo.etcd = optarg; d->use_fleet = 1; break;
		case 'P': d->fo.prefix = optarg; break;
		case 'h': usage(); exit(0);
		default:
			rc = llm_cfg_opt(&d->cfg, c, optarg);
			if (rc == -ENOENT) {
				usage();
				return -EINVAL;
			}
		}
	}
	d->seed = seed;
	d->weights = (enum dj_sched_weights)w;
	if (rc == 0 && d->use_fleet && servers_given)
		rc = djc_cli_error("--servers or a fleet (--fleet, --fleet-file, --fleet-etcd), "
				   "not both");
	if (rc == 0 && !d->use_fleet)
		d->n = llm_servers_parse(servers, d->host, d->port, MAX_SERVERS);
	if (d->n < 0)
		return d->n;
	d->units = d->n;
	return rc == 0 ? llm_cfg_check(&d->cfg) : rc;
}

static int demo_init(struct demo *d)
{
	uint64_t seed = d->seed ^ 0x5eed;
	int rc;

	d->cfg.max_pos = d->prompt + d->steps;
	d->len = d->prompt + d->steps + 1;
	rc = llm_model_make(&d->m, &d->cfg, d->seed);
	d->prompts = calloc((size_t)d->S * (size_t)d->prompt, sizeof(int64_t));
	d->ref = calloc((size_t)d->S * (size_t)d->len, sizeof(int64_t));
	d->ref_logits = calloc((size_t)d->S * (size_t)(d->steps + 1) * (size_t)d->cfg.vocab,
			       sizeof(float));
	if (rc == 0 && (d->prompts == NULL || d->ref == NULL || d->ref_logits == NULL))
		rc = -ENOMEM;
	for (int i = 0; rc == 0 && i < d->S * d->prompt; i++)
		d->prompts[i] = (int64_t)(splitmix(&seed) % (uint64_t)d->cfg.vocab);
	return rc;
}

static void demo_free(struct demo *d, struct run *runs, int n)
{
	for (int i = 0; i < n; i++)
		free(runs[i].tok);
	llm_model_free(&d->m);
	free(d->prompts);
	free(d->ref);
	free(d->ref_logits);
	free(d->fleet);
}

int main(int argc, char **argv)
{
	struct demo d = {.S = 8, .prompt = 64, .steps = 32, .inproc_gpu = "auto", .at_step = -1};
	struct run runs[8], ref = {.d = &d};
	struct dj_sched_stats main_stats = {0};
	const char *json = NULL, *disagg = NULL;
	int baselines = B_ALL, n_runs = 0, status = 0, rc;

	djc_cli_set_name("djinn-llm");
	dj_log_set_level(DJ_LOG_WARN);
	memset(runs, 0, sizeof(runs));
	llm_cfg_default(&d.cfg);
	dj_client_options_init(&d.copts);
	dj_fleet_options_init(&d.fo);
	d.copts.path = DJ_PATH_TCP;
	d.copts.max_retries = 2;
	d.copts.connect_timeout_ms = 1000;
	/* A step's batch carries hundreds of operations: on a busy shared
	 * machine it may take longer than the default 30 s request limit. */
	d.copts.request_timeout_ms = 600000;
	rc = options(&d, argc, argv, &baselines, &json, &disagg);
	if (rc != 0)
		return 2;
	if (d.exec_cmd != NULL && baselines != 0) {
		printf("note: --exec kills or changes servers mid-run: baselines skipped\n");
		baselines = 0;
	}
	rc = demo_init(&d);
	if (rc != 0) {
		fprintf(stderr, "djinn-llm: model: %s\n", dj_strerror(rc));
		return 1;
	}
	printf("model: %d layers, d_model %d, %d heads, vocabulary %d, ffn %d, float32, %.1f MiB "
	       "of weights (seed %" PRIu64 "); %d sequences, prompts of %d, %d decode steps; ",
	       d.cfg.layers, d.cfg.d_model, d.cfg.heads, d.cfg.vocab, d.cfg.ffn,
	       (double)llm_model_bytes(&d.m) / (1 << 20), d.seed, d.S, d.prompt, d.steps);
	if (d.use_fleet)
		printf("a fleet (%s)\n", d.fo.etcd != NULL ? d.fo.etcd : d.fo.members != NULL ?
		       d.fo.members : d.fo.members_file);
	else
		printf("%d server%s\n", d.n, d.n == 1 ? "" : "s");
	rc = run_reference(&d, &ref);
	if (rc != 0)
		goto out;
	printf("local CPU reference: prefill %.3f s, decode %.3f s (%.1f tokens/s)\n",
	       ref.prefill_s, ref.decode_s, (double)(d.S * d.steps) / ref.decode_s);
	rc = connect_all(&d);
	if (rc != 0)
		goto out;
	/* Server indices are known now (a fleet's: its members up). */
	if (disagg != NULL && disagg_parse(&d, disagg) != 0) {
		rc = djc_cli_error("--disagg: '%s': servers to prefill on, ':', servers to decode "
				   "on (indices below %d)", disagg, d.n);
		goto out;
	}
	runs[n_runs].d = &d;
	rc = run_sched(&d, &runs[n_runs++], "djinn: scheduler", d.n, DJ_SCHED_MODE_RULES, 0, 0);
	main_stats = runs[0].sst;
	fleet_print(&d);
	if (main_stats.servers_lost > 0)
		printf("recovery: %d server%s lost, %d sequence%s rebuilt from their lineage, %d "
		       "fetch%s run again\n", main_stats.servers_lost,
		       main_stats.servers_lost == 1 ? "" : "s", main_stats.sequences_rebuilt,
		       main_stats.sequences_rebuilt == 1 ? "" : "s", main_stats.retries,
		       main_stats.retries == 1 ? "" : "es");
	for (int b = 0; b < 5; b++) {
		struct run *r = &runs[n_runs];
		int want = b == 4 ? disagg != NULL : (baselines >> b & 1);

		if (!want)
			continue;
		r->d = &d;
		n_runs++;
		if (b == 0)
			run_exec(&d, r, 1);
		else if (b == 1)
			run_one_server(&d, r);
		else if (b == 2)
			run_exec(&d, r, 0);
		else if (b == 3)
			run_sched(&d, r, "round robin per op", d.n, DJ_SCHED_MODE_ROUND_ROBIN, 0, 0);
		else
			run_sched(&d, r, "djinn: disaggregated", d.n, DJ_SCHED_MODE_RULES,
				  d.prefill_mask, d.decode_mask);
	}
	printf("\n%-32s %9s %9s %8s %9s %11s %9s %9s %-9s %s\n", "run", "decode/s", "prefill s",
	       "RT/step", "req/token", "bytes/token", "KV moved", "KV client", "spread", "tokens");
	for (int i = 0; i < n_runs; i++) {
		compare(&runs[i]);
		row(&d, &runs[i]);
		if (runs[i].failed || runs[i].mismatches > 0)
			status = 1;
	}
	printf("(decode/s: decode tokens per second; RT/step: round trips per decode step, all "
	       "sequences; req/token: requests per decode token; KV moved: KV-cache bytes that "
	       "crossed servers after prefill; KV client: of them, those that passed through "
	       "this client)\n");
	if (json != NULL && report_json(&d, runs, n_runs, json, &main_stats) != 0)
		fprintf(stderr, "djinn-llm: cannot write %s\n", json);
out:
	if (rc != 0)
		status = 1;
	disconnect_all(&d);
	free(ref.tok);
	demo_free(&d, runs, n_runs);
	return status;
}
