/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler's unit is (server, GPU) (docs/SCHEDULER.md, "Devices"): a
 * simulated fleet of 2 servers x 4 GPUs (dj_sched_fleet_devices), each
 * device with its own free memory and queue, placed with dj_sched_plan:
 *   - units are named "server/device", peer-copy links between the
 *     devices of one server, network links between servers;
 *   - load balance: new sequences spread over every device, a busy one
 *     avoided; memory: a device without room takes none;
 *   - KV co-location per device: decode steps stay on their device;
 *   - memory awareness: a step that outgrows its device moves its cache to
 *     another device of the same server (a device copy), not to another
 *     server, while the links say so; across servers where they do not;
 *   - disaggregation: a cache moves to a decode device of its own server
 *     rather than over the network;
 *   - a server that leaves takes all its devices along.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/scheduler.h"
#include "harness.h"
#include "sched_steps.h"

#define SERVERS 2
#define GPUS 4
#define UNITS (SERVERS * GPUS)
#define KV_BYTES (2ull * P * D * 4) /* one sequence's k and v caches */

/* 2 servers "sim0", "sim1" of 4 GPUs with 1 GiB each. */
static struct dj_sched_fleet *fleet_gpus(void)
{
	struct dj_sched_fleet *f = calloc(1, sizeof(*f));

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_sim(f, SERVERS), 0);
	for (int s = 0; s < SERVERS; s++)
		f->servers[s].mem_free = f->servers[s].mem_total = 1ull << 30;
	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_devices(f, GPUS), 0);
	return f;
}

/* Unit u's server (0 or 1). */
static int server_of(int u)
{
	return u / GPUS;
}

static void test_units(void)
{
	struct dj_sched_fleet *f = fleet_gpus(), *g = calloc(1, sizeof(*g));

	CU_ASSERT_EQUAL(f->n_servers, UNITS);
	CU_ASSERT_STRING_EQUAL(f->servers[6].name, "sim1/cuda:2");
	CU_ASSERT_STRING_EQUAL(f->servers[6].device, "cuda:2");
	CU_ASSERT_EQUAL(f->servers[6].group, 2);
	CU_ASSERT_EQUAL(f->servers[1].group, 1);
	CU_ASSERT_EQUAL(f->servers[1].mem_free, 1ull << 30);
	/* Between devices of one server: the peer-copy link; between
	 * servers: through the client, as for servers of one device. */
	CU_ASSERT_DOUBLE_EQUAL(f->link_rtt_s[4][6], 10e-6, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(f->link_bw_Bps[4][6], 20e9, 1);
	CU_ASSERT_DOUBLE_EQUAL(f->link_rtt_s[1][6], 50e-6, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(f->link_bw_Bps[1][6], 0.5e9, 1);
	CU_ASSERT_EQUAL(f->link_rtt_s[3][3], 0);
	/* Deriving links again keeps the peer links. */
	f->link_bw_Bps[4][6] = 300e9;
	dj_sched_fleet_links(f);
	CU_ASSERT_DOUBLE_EQUAL(f->link_bw_Bps[4][6], 300e9, 1);
	/* Bad requests. */
	CU_ASSERT_EQUAL(dj_sched_fleet_devices(f, 2), -EINVAL); /* devices already */
	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_sim(g, 40), 0);
	CU_ASSERT_EQUAL(dj_sched_fleet_devices(g, 2), -EINVAL); /* 80 units */
	CU_ASSERT_EQUAL(dj_sched_fleet_devices(g, 0), -EINVAL);
	CU_ASSERT_EQUAL(dj_sched_fleet_devices(g, 1), 0);
	CU_ASSERT_EQUAL(g->n_servers, 40);
	CU_ASSERT_STRING_EQUAL(g->servers[3].name, "sim3");
	free(g);
	free(f);
}

/* New sequences: one per device where all are equal; a device with a deep
 * queue or no room gets none; every choice named "server/device". */
static void test_load_balance(void)
{
	struct dj_sched_fleet *f = fleet_gpus();
	struct dj_graph_run_stats st;
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	struct dj_graph *g;
	int out[UNITS], count[UNITS], where[UNITS], per_server[SERVERS] = {0};
	char *text;

	g = step_graph(0, UNITS, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
	spread(s, UNITS, count, where, UNITS);
	for (int u = 0; u < UNITS; u++)
		CU_ASSERT_EQUAL(count[u], 1);
	CU_ASSERT_EQUAL(ops_off_seq(g, out, UNITS, where), 0);
	CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_LOAD_BALANCE), UNITS);
	/* One batch per device, nothing crosses; each device its own copy
	 * of the 6 weights (replication per GPU). */
	CU_ASSERT_EQUAL(st.batches, UNITS);
	CU_ASSERT_EQUAL(st.transfers, 0);
	CU_ASSERT_EQUAL(st.params_uploaded, UNITS * 6);
	text = dj_sched_explain(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "-> sim1/cuda:2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "sim0/cuda:3 "));
	free(text);
	dj_graph_destroy(g);
	dj_sched_destroy(s);

	/* sim0/cuda:1 has a deep queue, sim1/cuda:3 no room for a cache:
	 * 6 sequences go to the 6 other devices, 3 on each server. */
	f->servers[1].queued = 500;
	f->servers[7].mem_free = KV_BYTES - 1;
	s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	g = step_graph(0, 6, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 6, &st), 0);
	spread(s, UNITS, count, where, 6);
	CU_ASSERT_EQUAL(count[1], 0);
	CU_ASSERT_EQUAL(count[7], 0);
	for (int i = 0; i < 6; i++)
		per_server[server_of(where[i])]++;
	CU_ASSERT_EQUAL(per_server[0], 3);
	CU_ASSERT_EQUAL(per_server[1], 3);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* Decode steps run on the device holding their caches, loaded or not. */
static void test_kv_colocation(void)
{
	struct dj_sched_fleet *f = fleet_gpus(), *now = calloc(1, sizeof(*now));
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	struct dj_graph *g;
	int out[UNITS], count[UNITS], where[UNITS], again[UNITS];

	g = step_graph(0, UNITS, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
	dj_graph_destroy(g);
	spread(s, UNITS, count, where, UNITS);
	dj_sched_fleet_get(s, now);
	now->servers[where[2]].queued = 10000;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, now), 0);
	for (int pos = 8; pos < 10; pos++) {
		g = step_graph(0, UNITS, pos, 1, out);
		CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
		CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_KV_COLOCATE), UNITS);
		CU_ASSERT_EQUAL(ops_off_seq(g, out, UNITS, where), 0);
		CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
		CU_ASSERT_EQUAL(st.transfers, 0);
		dj_graph_destroy(g);
	}
	spread(s, UNITS, count, again, UNITS);
	CU_ASSERT(memcmp(where, again, sizeof(where)) == 0);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves, 0);
	dj_sched_destroy(s);
	free(now);
	free(f);
}

/* The decision that moved sequence `seq`'s cache, NULL where none did. */
static const struct dj_sched_decision *move_of(struct dj_sched *s, int seq)
{
	const struct dj_sched_decision *d;
	int n = dj_sched_decisions(s, &d);
	char name[16];

	snprintf(name, sizeof(name), "seq%d", seq);
	for (int i = 0; i < n; i++)
		if (d[i].from >= 0 && strcmp(d[i].what, name) == 0)
			return &d[i];
	return NULL;
}

/* A step that no longer fits beside its cache: the cache moves to another
 * device of its server (a device copy), not to the other server; with a
 * peer link slower than the network, to the other server. */
static void test_memory_move(void)
{
	struct dj_sched_fleet *f = fleet_gpus(), *now = calloc(1, sizeof(*now));
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	const struct dj_sched_decision *d;
	struct dj_sched *s;
	struct dj_graph *g;
	int out[UNITS], count[UNITS], where[UNITS], again[UNITS];

	for (int slow = 0; slow < 2; slow++) {
		s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
		g = step_graph(0, UNITS, 0, 8, out);
		CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
		dj_graph_destroy(g);
		spread(s, UNITS, count, where, UNITS);
		/* seq5's device runs out of memory. */
		dj_sched_fleet_get(s, now);
		now->servers[where[5]].mem_free = 64;
		for (int a = 0; slow && a < UNITS; a++)
			for (int b = 0; b < UNITS; b++)
				if (a != b && server_of(a) == server_of(b))
					now->link_bw_Bps[a][b] = 1e6; /* 1 MB/s */
		CU_ASSERT_EQUAL(dj_sched_fleet_set(s, now), 0);
		g = step_graph(0, UNITS, 8, 1, out);
		CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
		CU_ASSERT_EQUAL(count_rule(s, DJ_SCHED_RULE_MEMORY), 1);
		spread(s, UNITS, count, again, UNITS);
		CU_ASSERT_NOT_EQUAL(again[5], where[5]);
		CU_ASSERT_EQUAL(again[0], where[0]);
		CU_ASSERT_EQUAL(ops_off_seq(g, out, UNITS, again), 0);
		d = move_of(s, 5);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL(d->from, where[5]);
		CU_ASSERT_EQUAL(d->server, again[5]);
		dj_sched_stats(s, &ss);
		CU_ASSERT_EQUAL(ss.kv_moves, 2);
		CU_ASSERT_EQUAL(ss.kv_move_bytes, KV_BYTES);
		if (!slow) {
			CU_ASSERT_EQUAL(server_of(again[5]), server_of(where[5]));
			CU_ASSERT_PTR_NOT_NULL(strstr(d->reason, "a device copy on its server"));
			CU_ASSERT_EQUAL(ss.kv_moves_peer, 2);
			CU_ASSERT_EQUAL(ss.kv_move_bytes_peer, KV_BYTES);
		} else {
			CU_ASSERT_NOT_EQUAL(server_of(again[5]), server_of(where[5]));
			CU_ASSERT_PTR_NOT_NULL(strstr(d->reason, "between servers"));
			CU_ASSERT_EQUAL(ss.kv_moves_peer, 0);
		}
		dj_graph_destroy(g);
		dj_sched_destroy(s);
	}
	free(now);
	free(f);
}

/* Prefill on sim0/cuda:0; decode on sim0/cuda:1 or sim1/cuda:0: the
 * cache goes to the device of its own server (the cheaper move). */
static void test_disaggregation(void)
{
	struct dj_sched_fleet *f = fleet_gpus();
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 1u << 0, 1u << 1 | 1u << 4);
	struct dj_graph_run_stats st;
	struct dj_sched_stats ss;
	const struct dj_sched_decision *d;
	struct dj_graph *g;
	int out[1], count[UNITS], where[1];
	char *text;

	g = step_graph(0, 1, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 1, &st), 0);
	dj_graph_destroy(g);
	spread(s, UNITS, count, where, 1);
	CU_ASSERT_EQUAL(where[0], 0);
	g = step_graph(0, 1, 8, 1, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 1, &st), 0);
	spread(s, UNITS, count, where, 1);
	CU_ASSERT_EQUAL(where[0], 1);
	d = move_of(s, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->rule, DJ_SCHED_RULE_DISAGG);
	text = dj_sched_explain(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "sim0/cuda:0 -> sim0/cuda:1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "a device copy on its server"));
	free(text);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves_peer, 2);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* Weights pinned per device: to the GPU with the most free memory, and
 * the ops reading them (not touching a cache) beside them. */
static void test_weights_pinned(void)
{
	struct dj_sched_fleet *f = fleet_gpus();
	struct dj_graph_run_stats st;
	const struct dj_sched_decision *d;
	struct dj_sched *s;
	struct dj_graph *g;
	int out[2], n, pinned = 0;

	f->servers[6].mem_free = f->servers[6].mem_total = 4ull << 30;
	s = sched_new(f, DJ_SCHED_WEIGHTS_PIN, 0, 0);
	g = step_graph(0, 2, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 2, &st), 0);
	n = dj_sched_decisions(s, &d);
	for (int i = 0; i < n; i++)
		if (d[i].rule == DJ_SCHED_RULE_WEIGHTS && d[i].n_ops == 0) {
			pinned++;
			CU_ASSERT_EQUAL(d[i].server, 6);
			CU_ASSERT_PTR_NOT_NULL(strstr(d[i].reason, "sim1/cuda:2 has the most free"));
		}
	CU_ASSERT_EQUAL(pinned, 6);
	/* Each weight uploaded once, to that GPU. */
	CU_ASSERT_EQUAL(st.params_uploaded, 6);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(f);
}

/* A server leaves: every device of it, every sequence on them. */
static void test_server_down(void)
{
	struct dj_sched_fleet *f = fleet_gpus(), *now = calloc(1, sizeof(*now));
	struct dj_sched *s = sched_new(f, DJ_SCHED_WEIGHTS_REPLICATE, 0, 0);
	struct dj_graph_run_stats st;
	struct dj_graph *g;
	int out[UNITS], count[UNITS], where[UNITS + 1];

	g = step_graph(0, UNITS, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, UNITS, &st), 0);
	dj_graph_destroy(g);
	CU_ASSERT_EQUAL(dj_sched_server_down(s, 6), GPUS);
	dj_sched_fleet_get(s, now);
	for (int u = 0; u < UNITS; u++)
		CU_ASSERT_EQUAL(now->servers[u].up, server_of(u) == 0);
	/* A new sequence goes to a device of the server that remains. */
	g = step_graph(UNITS, 1, 0, 8, out);
	CU_ASSERT_EQUAL_FATAL(plan(s, g, out, 1, &st), 0);
	spread(s, UNITS, count, where, UNITS + 1);
	CU_ASSERT_EQUAL(server_of(where[UNITS]), 0);
	dj_graph_destroy(g);
	dj_sched_destroy(s);
	free(now);
	free(f);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"units: server/device, peer-copy and network links", test_units},
		{"load balance over every device; busy or full ones avoided", test_load_balance},
		{"KV co-location per device", test_kv_colocation},
		{"memory: a cache moves to a device of its server first", test_memory_move},
		{"disaggregation: decode on a device of the same server", test_disaggregation},
		{"weights pinned to a GPU", test_weights_pinned},
		{"a server leaves with all its devices", test_server_down},
		{NULL, NULL},
	};

	/* Servers leaving are logged; the test says it. */
	dj_log_set_level(DJ_LOG_ERR);
	dj_test_add_suite("sched_devices", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
