/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler's rules on simulated fleets (no servers): capacities, loads
 * and links are set by each test, graphs are a small decoder step for
 * several sequences (embedding, q/k/v, KV append into per-sequence state,
 * narrow, fused attention, MLP, tied logits, argmax), placed with
 * dj_sched_plan. One test per rule (docs/SCHEDULER.md):
 *   1. KV co-location: a decode step runs beside its cache, loaded or not;
 *      the cache moves only where the server ran out of memory or left;
 *   2. memory: nothing where it does not fit; weights pinned where memory is;
 *   3. load balance: new sequences to the earliest expected completion, in
 *      one graph or one per graph, faster and busier servers weighed;
 *   4. prefill/decode disaggregation: prefill on some, caches moved once;
 *   5. weights replicated or pinned, as the policy says;
 * plus the cost rule for free operations, round robin, recovery after a
 * server left, and the decision log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/scheduler.h"
#include "harness.h"
#include "sched_steps.h"

/* n equal servers (dj_sched_fleet_sim's figures) with 1 GiB each. */
static struct dj_sched_fleet *fleet_new(int n)
{
	struct dj_sched_fleet *f = calloc(1, sizeof(*f));

	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_sim(f, n), 0);
	for (int s = 0; s < n; s++) {
		snprintf(f->servers[s].name, sizeof(f->servers[s].name), "s%d", s);
		f->servers[s].mem_free = f->servers[s].mem_total = 1ull << 30;
	}
	return f;
}

/* A simulated fleet's links are the client's, one after the other. */
static void test_sim_fleet_links(void)
{
	struct dj_sched_fleet *f = calloc(1, sizeof(*f));

	CU_ASSERT_EQUAL(dj_sched_fleet_sim(f, 0), -EINVAL);
	CU_ASSERT_EQUAL(dj_sched_fleet_sim(f, DJ_SCHED_MAX_SERVERS + 1), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_sim(f, 3), 0);
	CU_ASSERT_EQUAL(f->link_rtt_s[0][1], 50e-6);
	CU_ASSERT_DOUBLE_EQUAL(f->link_bw_Bps[0][1], 0.5e9, 1);
	CU_ASSERT_EQUAL(f->link_rtt_s[1][1], 0);
	CU_ASSERT_EQUAL(f->links_direct, 0);
	f->servers[2].rtt_s = 1e-3;
	f->servers[2].bw_Bps = 3e9;
	dj_sched_fleet_links(f);
	CU_ASSERT_EQUAL(f->link_rtt_s[0][2], 1e-3);
	CU_ASSERT_EQUAL(f->link_rtt_s[2][0], 50e-6);
	CU_ASSERT_DOUBLE_EQUAL(f->link_bw_Bps[2][0], 0.75e9, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->note, "through the client"));
	free(f);
}

/* ---- rule 3 ------------------------------------------------------------------- */

static void test_load_balance(void)
{
	struct dj_sched_fleet *f = fleet_new(3);
	struct dj_graph_run_stats st;
	struct dj_sched *s;
	struct dj_graph *g;
	int out[8], count[3], where[8];

	/* 8 new sequences in one graph over 3 equal servers: 3/3/2. */
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 8, 0, 8, out);
	CU_ASSERT_EQUAL(dj_graph_phase(g, NULL), DJ_PHASE_PREFILL);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 8, &st), 0);
	spread(s, 3, count, where, 8);
	CU_ASSERT(count[0] == 3 && count[1] == 3 && count[2] == 2);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_LOAD_BALANCE), 8);
	CU_ASSERT_EQUAL(ops_off_seq(g, out, 8, where), 0);
	/* One batch per server, one round trip: nothing crosses. */
	CU_ASSERT_EQUAL(st.round_trips, 1);
	CU_ASSERT_EQUAL(st.batches, 3);
	CU_ASSERT_EQUAL(st.transfers, 0);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* One sequence per graph: sequences already living on a server
	 * count, the same spread comes out. */
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	for (int i = 0; i < 8; i++) {
		g = step_graph(i, 1, 0, 8, out);
		CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 1, &st), 0);
		dj_graph_destroy(g);
	}
	spread(s, 3, count, where, 8);
	CU_ASSERT(count[0] == 3 && count[1] == 3 && count[2] == 2);
	dj_sched_destroy(s);

	/* Equal servers measured a few per cent apart (a loaded client's
	 * calibration): still 3/3/2, not all on the one that looked fastest. */
	f->servers[1].matmul_gflops[DJ_DTYPE_FLOAT32] = 10.6;
	f->servers[2].elementwise_gbps = 5.3;
	f->servers[0].op_overhead_s = 10.8e-6;
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 8, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 8, &st), 0);
	spread(s, 3, count, where, 8);
	CU_ASSERT(count[0] >= 2 && count[1] >= 2 && count[2] >= 2);
	CU_ASSERT_EQUAL(count[0] + count[1] + count[2], 8);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* Server 2 four times faster: it takes most; server 0 with a deep
	 * queue: it takes fewest. */
	f->servers[2].matmul_gflops[DJ_DTYPE_FLOAT32] = 40;
	f->servers[2].elementwise_gbps = 20;
	f->servers[2].op_overhead_s = 2.5e-6;
	f->servers[0].queued = 200;
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 8, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 8, &st), 0);
	spread(s, 3, count, where, 8);
	CU_ASSERT(count[2] > count[1] && count[1] > count[0]);
	CU_ASSERT_EQUAL(count[0] + count[1] + count[2], 8);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* ---- rule 1 ------------------------------------------------------------------- */

static void test_kv_colocation(void)
{
	struct dj_sched_fleet *f = fleet_new(3), *now = calloc(1, sizeof(*now));
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	struct dj_graph *g;
	int out[3], count[3], where[3], again[3];

	g = step_graph(0, 3, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 3, &st), 0);
	dj_graph_destroy(g);
	spread(s, 3, count, where, 3);
	/* Decode steps: each sequence where its cache is, one round trip,
	 * no KV byte crossing, even with its server loaded far more than
	 * the others. */
	dj_sched_fleet_get(s, now);
	now->servers[where[0]].queued = 10000;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, now), 0);
	for (int pos = 8; pos < 11; pos++) {
		g = step_graph(0, 3, pos, 1, out);
		CU_ASSERT_EQUAL(dj_graph_phase(g, NULL), DJ_PHASE_DECODE);
		CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 3, &st), 0);
		CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
		CU_ASSERT_EQUAL(st.round_trips, 1);
		CU_ASSERT_EQUAL(st.states_created, 0);
		CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_KV_COLOCATE), 3);
		CU_ASSERT_EQUAL(ops_off_seq(g, out, 3, where), 0);
		dj_graph_destroy(g);
	}
	spread(s, 3, count, again, 3);
	CU_ASSERT(memcmp(where, again, sizeof(where)) == 0);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves, 0);

	/* Out of memory beside it: the step does not fit, the cache moves
	 * (once) to a server where it does. */
	dj_sched_fleet_get(s, now);
	now->servers[where[1]].mem_free = 64;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, now), 0);
	g = step_graph(0, 3, 11, 1, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 3, &st), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_MEMORY), 1);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves, 2); /* its k and v caches */
	CU_ASSERT_EQUAL(ss.kv_move_bytes, 2 * P * D * 4);
	spread(s, 3, count, again, 3);
	CU_ASSERT_NOT_EQUAL(again[1], where[1]);
	CU_ASSERT_EQUAL(again[0], where[0]);
	CU_ASSERT_EQUAL(ops_off_seq(g, out, 3, again), 0);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(now);
	free(f);
}

/* A server leaves: its sequences are lost; a decode step of one fails
 * (-EHOSTDOWN, a recovery decision), a prefill (its lineage) recreates it on
 * a survivor, and decoding goes on there. */
static void test_recovery_placement(void)
{
	struct dj_sched_fleet *f = fleet_new(3);
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	struct dj_graph *g;
	int out[3], count[3], where[3], lost;

	g = step_graph(0, 3, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 3, &st), 0);
	dj_graph_destroy(g);
	spread(s, 3, count, where, 3);
	lost = where[2];
	CU_ASSERT_EQUAL(dj_sched_server_down(s, lost), 1);
	CU_ASSERT_EQUAL(dj_sched_server_down(s, 7), -EINVAL);
	g = step_graph(0, 3, 8, 1, out);
	CU_ASSERT_EQUAL(plan(s, g, out, 3, &st), -EHOSTDOWN);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "lost"));
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_RECOVERY), 1);
	dj_graph_destroy(g);
	/* The lineage: a prefill of its 9 tokens so far. */
	g = step_graph(2, 1, 0, 9, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 1, &st), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_RECOVERY), 1);
	dj_graph_destroy(g);
	spread(s, 3, count, where, 3);
	CU_ASSERT_NOT_EQUAL(where[2], lost);
	CU_ASSERT_EQUAL(count[lost], 0);
	g = step_graph(0, 3, 9, 1, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 3, &st), 0);
	CU_ASSERT_EQUAL(ops_off_seq(g, out, 3, where), 0);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
	dj_graph_destroy(g);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.servers_lost, 1);
	dj_sched_destroy(s);
	free(f);
}

/* ---- rule 2 ------------------------------------------------------------------- */

static void test_memory(void)
{
	struct dj_sched_fleet *f = fleet_new(3);
	struct dj_graph_run_stats st;
	struct dj_sched *s;
	struct dj_graph *g;
	int out[6], count[3], where[6];

	/* Server 0 has room for no KV cache: nothing goes there. */
	f->servers[0].mem_free = 1000;
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 6, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 6, &st), 0);
	spread(s, 3, count, where, 6);
	CU_ASSERT(count[0] == 0 && count[1] == 3 && count[2] == 3);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* Then servers 1 and 2 fill up (less free than one KV cache): a new
	 * sequence fits nowhere, and says so. */
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 4, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 4, &st), 0);
	dj_graph_destroy(g);
	struct dj_sched_fleet *now = calloc(1, sizeof(*now));

	dj_sched_fleet_get(s, now);
	now->servers[1].mem_free = now->servers[2].mem_free = 2 * P * D * 4 - 1;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, now), 0);
	free(now);
	g = step_graph(4, 1, 0, 8, out);
	CU_ASSERT_EQUAL(plan(s, g, out, 1, &st), -ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "fits on no server"));
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* ---- rule 4 ------------------------------------------------------------------- */

static void test_disaggregation(void)
{
	struct dj_sched_fleet *f = fleet_new(3);
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 1u << 0, 1u << 1 | 1u << 2);
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	struct dj_graph *g;
	int out[4], count[3], where[4];

	g = step_graph(0, 4, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 4, &st), 0);
	spread(s, 3, count, where, 4);
	CU_ASSERT_EQUAL(count[0], 4); /* prefill on server 0 only */
	dj_graph_destroy(g);
	/* First decode step: every cache moved once to a decode server,
	 * balanced between them. */
	g = step_graph(0, 4, 8, 1, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 4, &st), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_DISAGG), 4);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves, 8);
	spread(s, 3, count, where, 4);
	CU_ASSERT(count[0] == 0 && count[1] == 2 && count[2] == 2);
	CU_ASSERT_EQUAL(ops_off_seq(g, out, 4, where), 0);
	dj_graph_destroy(g);
	/* Later steps: they stay. */
	g = step_graph(0, 4, 9, 1, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 4, &st), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_KV_COLOCATE), 4);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves, 8);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* ---- rule 5 ------------------------------------------------------------------- */

/* Which servers the ops reading weight w run on (bit mask). */
static uint64_t readers_of(struct dj_graph *g, int w)
{
	uint64_t mask = 0;

	for (int x = 0; x < dj_graph_node_count(g); x++) {
		struct dj_graph_node_info ni;

		dj_graph_node(g, x, &ni);
		for (int k = 0; ni.kind == DJ_GRAPH_OP && k < ni.n_in; k++)
			if (ni.inputs[k] == w)
				mask |= 1ull << ni.server;
	}
	return mask;
}

static void test_weights_policy(void)
{
	struct dj_sched_fleet *f = fleet_new(3);
	struct dj_graph_run_stats st;
	struct dj_sched *s;
	struct dj_graph *g;
	int out[6], w1 = -1;

	/* Replicated: each server that runs a sequence reads its own copy. */
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 6, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 6, &st), 0);
	for (int x = 0; x < dj_graph_node_count(g) && w1 < 0; x++) {
		struct dj_graph_node_info ni;

		dj_graph_node(g, x, &ni);
		w1 = ni.kind == DJ_GRAPH_PARAM && strcmp(ni.name, "w1") == 0 ? x : -1;
	}
	CU_ASSERT_EQUAL(readers_of(g, w1), 7);
	CU_ASSERT_EQUAL(st.params_uploaded, 6 * 3);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* Pinned: each weight on the server with the most free memory when
	 * first seen (server 1 here), or where the user pinned it (w2 on 2);
	 * the ops reading them run there, the caches stay with their
	 * sequences (no KV byte crosses). */
	f->servers[0].mem_free = 1 << 20;
	f->servers[1].mem_free = 64 << 20;
	f->servers[2].mem_free = 8 << 20;
	s = sched_new(f, DJ_SCHED_WEIGHTS_PIN, 0, 0);
	CU_ASSERT_EQUAL(dj_sched_pin(s, "w2", 2), 0);
	CU_ASSERT_EQUAL(dj_sched_pin(s, "w2", 9), -EINVAL);
	g = step_graph(0, 6, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 6, &st), 0);
	CU_ASSERT_EQUAL(readers_of(g, w1), 1u << 1);
	CU_ASSERT_EQUAL(readers_of(g, w1 + 1), 1u << 2);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_WEIGHTS), 5); /* w2 was pinned by hand */
	CU_ASSERT_EQUAL(st.params_uploaded, 6);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
	CU_ASSERT(st.transfers > 0);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* ---- free operations and round robin ------------------------------------------ */

static void test_free_ops_cost(void)
{
	struct dj_sched_fleet *f = fleet_new(2);
	struct dj_graph_run_stats st;
	struct dj_sched_options o;
	struct dj_sched *s;
	struct dj_graph *g;
	struct dj_graph_node_info ni;
	struct dj_tensor x = host(DJ_DTYPE_FLOAT32, 2, 64, 64);
	int a, b, c;

	/* A matmul chain, no state: it goes to the faster server and stays
	 * there (moving its intermediate would cost more than it saves). */
	f->servers[1].matmul_gflops[DJ_DTYPE_FLOAT32] = 100;
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	a = dj_graph_input(g, "x", &x);
	b = op2(g, "matmul", a, a);
	c = op2(g, "matmul", b, a);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, &c, 1, &st), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_COST), 2);
	dj_graph_node(g, b, &ni);
	CU_ASSERT_EQUAL(ni.server, 1);
	dj_graph_node(g, c, &ni);
	CU_ASSERT_EQUAL(ni.server, 1);
	CU_ASSERT_EQUAL(st.round_trips, 1);
	char *text = dj_sched_explain(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "cost"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "earliest finish; s0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "compute"));
	free(text);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* Round robin: ops in turn, state ops beside their state. */
	dj_sched_options_init(&o);
	o.mode = DJ_SCHED_MODE_ROUND_ROBIN;
	f->n_servers = 2;
	CU_ASSERT_EQUAL_FATAL(dj_sched_create_sim(&o, f, &s), 0);
	int out[2];

	g = step_graph(0, 2, 0, 4, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 2, &st), 0);
	CU_ASSERT(count_rule(s, DJ_SCHED_RULE_ROUND_ROBIN) > 20);
	CU_ASSERT(st.transfers > 10);
	CU_ASSERT(st.round_trips > 5);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"simulated fleet: links through the client", test_sim_fleet_links},
		{"rule 3: new sequences to the earliest completion", test_load_balance},
		{"rule 1: a step beside its KV cache; moved only for memory", test_kv_colocation},
		{"recovery: lost sequences rebuilt by a prefill only", test_recovery_placement},
		{"rule 2: nothing placed where it does not fit", test_memory},
		{"rule 4: prefill/decode disaggregation, caches moved once", test_disaggregation},
		{"rule 5: weights replicated or pinned", test_weights_policy},
		{"free operations by cost; round robin", test_free_ops_cost},
		{NULL, NULL},
	};

	/* The recovery case logs the server leaving; the test says it. */
	dj_log_set_level(DJ_LOG_ERR);
	dj_test_add_suite("scheduler", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
