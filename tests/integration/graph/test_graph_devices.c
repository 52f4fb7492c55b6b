/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler per (server, GPU) against real servers (runtime + control
 * plane on loopback, in process): server 0 has two simulated devices
 * (sim:0, sim:1: host memory, CPU operations), server 1 one device. The
 * scheduler over their two sessions (dj_sched_create) makes three units,
 * "s0/sim:0", "s0/sim:1", "s1", with a peer-copy link measured between the
 * first two. Sequences (a KV cache each, "seqN/k" and "seqN/v") spread over
 * both devices of server 0; a device that runs out of memory has its
 * caches moved to the other device of its server by to_device (the
 * server's move counters and the decision log say so; no byte through the
 * client); every step's results byte-exact against the CPU reference run
 * of the same graphs (gr_local), the run without a scheduler.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/graph.h"
#include "djinn/scheduler.h"
#include "graph/gr.h"
#include "harness.h"
#include "servers.h"

#define D 8     /* model width */
#define P 16    /* cache positions */
#define PROMPT 4
#define STEPS 3
#define SEQS 4

static struct test_server srv[2];

static int suite_init(void)
{
	if (test_server_start_on(&srv[0], "sim:2:64M") != 0 || test_server_start(&srv[1]) != 0)
		return -1;
	return 0;
}

static int suite_cleanup(void)
{
	test_server_stop(&srv[0]);
	test_server_stop(&srv[1]);
	return 0;
}

static float wq[D * D], wk[D * D], wv[D * D], xs[SEQS][PROMPT * D];

/* Seeded weights and inputs, small values (exact sums stay exact). */
static void data_init(void)
{
	uint32_t x = 12345;

	for (int i = 0; i < D * D; i++) {
		x = x * 1103515245u + 12345u;
		wq[i] = (float)((int)(x >> 20) % 7 - 3) / 8.0f;
		wk[i] = (float)((int)(x >> 12) % 5 - 2) / 8.0f;
		wv[i] = (float)((int)(x >> 4) % 9 - 4) / 8.0f;
	}
	for (int s = 0; s < SEQS; s++)
		for (int i = 0; i < PROMPT * D; i++) {
			x = x * 1103515245u + 12345u;
			xs[s][i] = (float)((int)(x >> 16) % 11 - 5) / 4.0f;
		}
}

/* One step of sequence seq: T rows of its input at pos, appended to its
 * caches; attention over them; its output node. */
static int seq_step(struct dj_graph *g, int seq, int pos, int T)
{
	struct dj_tensor_desc cache = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, P, D}};
	struct dj_tensor w = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {D, D}},
			      .mem = DJ_MEM_HOST};
	struct dj_tensor x = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, T, D}},
			      .mem = DJ_MEM_HOST, .data = &xs[seq][(pos % PROMPT) * D]};
	char name[32], attrs[96];
	int in, q, k, v, kc, vc, a;

	in = dj_graph_input(g, "x", &x);
	w.data = wq;
	q = dj_graph_op(g, "linear", (int[]){in, dj_graph_param(g, "wq", &w)}, 2, NULL);
	w.data = wk;
	k = dj_graph_op(g, "linear", (int[]){in, dj_graph_param(g, "wk", &w)}, 2, NULL);
	w.data = wv;
	v = dj_graph_op(g, "linear", (int[]){in, dj_graph_param(g, "wv", &w)}, 2, NULL);
	snprintf(name, sizeof(name), "seq%d/k", seq);
	kc = dj_graph_state(g, name, &cache, NULL);
	snprintf(name, sizeof(name), "seq%d/v", seq);
	vc = dj_graph_state(g, name, &cache, NULL);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", pos);
	kc = dj_graph_op(g, "slice_write", (int[]){kc, k}, 2, attrs);
	vc = dj_graph_op(g, "slice_write", (int[]){vc, v}, 2, attrs);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":0,\"length\":%d}", pos + T);
	kc = dj_graph_op(g, "narrow", &kc, 1, attrs);
	vc = dj_graph_op(g, "narrow", &vc, 1, attrs);
	a = dj_graph_op(g, "scaled_dot_product_attention", (int[]){q, kc, vc}, 3,
			T > 1 ? "{\"is_causal\":true}" : NULL);
	return dj_graph_op(g, "add", (int[]){in, a}, 2, NULL);
}

/* Every sequence's step through the scheduler, checked byte for byte
 * against the reference run of the same graph. */
static void step_all(struct dj_sched *s, struct gr_local *local, int pos, int T)
{
	struct dj_graph *g;
	struct dj_tensor got[SEQS] = {0}, ref[SEQS] = {0};
	int out[SEQS], rc;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(dj_sched_ctx(s), &g), 0);
	for (int i = 0; i < SEQS; i++) {
		out[i] = seq_step(g, i, pos, T);
		CU_ASSERT_FATAL(out[i] >= 0);
	}
	rc = dj_sched_fetch(s, g, out, SEQS, got);
	if (rc != 0)
		printf("\n  fetch at %d: %s (%s)\n", pos, dj_strerror(rc), dj_graph_error(g));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_fetch(local, g, out, SEQS, ref), 0);
	for (int i = 0; i < SEQS; i++) {
		CU_ASSERT(memcmp(got[i].data, ref[i].data, dj_tensor_nbytes(&ref[i].desc)) == 0);
		free(got[i].data);
		free(ref[i].data);
	}
	dj_graph_destroy(g);
}

/* Moves into device `device` of a session's server (its STATS). */
static uint64_t moves_in(struct dj_conn *conn, const char *device)
{
	char *text = NULL;
	const cJSON *d;
	uint64_t n = 0;
	cJSON *root;

	CU_ASSERT_EQUAL_FATAL(dj_stats(conn, &text), 0);
	root = cJSON_Parse(text);
	cJSON_ArrayForEach(d, cJSON_GetObjectItem(cJSON_GetObjectItem(root, "backend"), "memory")) {
		const cJSON *name = cJSON_GetObjectItem(d, "device");

		if (cJSON_IsString(name) && strcmp(name->valuestring, device) == 0)
			n = (uint64_t)cJSON_GetObjectItem(d, "moves_in")->valuedouble;
	}
	cJSON_Delete(root);
	free(text);
	return n;
}

static void test_units_and_moves(void)
{
	struct dj_conn *conns[2] = {srv[0].conn, srv[1].conn};
	struct dj_sched_fleet *f = calloc(1, sizeof(*f));
	struct dj_sched_sequence q[SEQS];
	struct dj_sched_options o;
	struct dj_sched_stats ss;
	struct dj_graph_run_stats gs;
	const struct dj_sched_decision *d;
	struct gr_local *local;
	struct dj_sched *s;
	int per_unit[3] = {0}, victim = -1, victims = 0, remote = 0, from, n_d;
	uint64_t in0, in1;
	char *text;

	data_init();
	dj_sched_options_init(&o);
	o.homogeneous = 1; /* one machine: the calibrations pooled */
	CU_ASSERT_EQUAL_FATAL(dj_sched_create(&o, conns, 2, &s), 0);
	dj_sched_fleet_get(s, f);
	CU_ASSERT_EQUAL_FATAL(f->n_servers, 3);
	CU_ASSERT_STRING_EQUAL(f->servers[0].name, "s0/sim:0");
	CU_ASSERT_STRING_EQUAL(f->servers[1].name, "s0/sim:1");
	CU_ASSERT_STRING_EQUAL(f->servers[2].name, "s1");
	CU_ASSERT_EQUAL(f->servers[0].group, 1);
	CU_ASSERT_EQUAL(f->servers[1].group, 1);
	CU_ASSERT_EQUAL(f->servers[2].group, 0);
	/* Each device's memory (64 MiB simulated, the session's limit
	 * above it). */
	CU_ASSERT(f->servers[0].mem_total <= 64ull << 20);
	CU_ASSERT(f->servers[1].mem_free > 0 && f->servers[1].mem_free != UINT64_MAX);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->note, "2 peer-copy links probed"));
	CU_ASSERT(f->link_bw_Bps[0][1] > 0 && f->link_bw_Bps[1][0] > 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_servers(dj_sched_ctx(s)), 3);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);

	/* Prefill: the sequences spread over the units, both devices of
	 * server 0 among them. */
	step_all(s, local, 0, PROMPT);
	CU_ASSERT_EQUAL(dj_sched_sequences(s, q, SEQS), SEQS);
	for (int i = 0; i < SEQS; i++)
		per_unit[q[i].server]++;
	CU_ASSERT(per_unit[0] >= 1);
	CU_ASSERT(per_unit[1] >= 1);
	for (int pos = PROMPT; pos < PROMPT + 1; pos++)
		step_all(s, local, pos, 1);

	/* sim:0 or sim:1 runs out of memory, and s1 too: the caches of the
	 * first device's sequences go to the other device of server 0 by
	 * to_device; those of s1 come to that device over the network. */
	for (int i = 0; i < SEQS && victim < 0; i++)
		victim = q[i].server <= 1 ? i : -1;
	CU_ASSERT_FATAL(victim >= 0);
	from = q[victim].server;
	for (int i = 0; i < SEQS; i++) {
		victims += q[i].server == from;
		remote += q[i].server == 2;
	}
	dj_sched_fleet_get(s, f);
	f->servers[from].mem_free = 64;
	f->servers[2].mem_free = 64;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, f), 0);
	in0 = moves_in(srv[0].conn, "sim:0");
	in1 = moves_in(srv[0].conn, "sim:1");
	dj_graph_ctx_stats(dj_sched_ctx(s), &gs);
	uint64_t through = gs.kv_bytes_through_client;

	step_all(s, local, PROMPT + 1, 1);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves_peer, 2 * victims);
	CU_ASSERT_EQUAL(ss.kv_moves, 2 * (victims + remote));
	CU_ASSERT_EQUAL(ss.kv_move_bytes_peer, 2ull * victims * P * D * 4);
	CU_ASSERT_EQUAL(ss.kv_moves_direct, 0);
	CU_ASSERT_EQUAL(from == 0 ? moves_in(srv[0].conn, "sim:1") - in1 :
			moves_in(srv[0].conn, "sim:0") - in0, 2 * (victims + remote));
	dj_graph_ctx_stats(dj_sched_ctx(s), &gs);
	CU_ASSERT_EQUAL(gs.kv_bytes_through_client, through + 2ull * remote * P * D * 4);
	dj_sched_sequences(s, q, SEQS);
	CU_ASSERT_EQUAL(q[victim].server, 1 - from);
	for (int i = 0; i < SEQS; i++)
		CU_ASSERT_EQUAL(q[i].server, 1 - from);
	n_d = dj_sched_decisions(s, &d);
	text = dj_sched_explain(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "a device copy on its server"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, from == 0 ? "s0/sim:0 -> s0/sim:1" :
					    "s0/sim:1 -> s0/sim:0"));
	free(text);
	CU_ASSERT(n_d > 0);

	/* Decoding goes on there, byte-exact. */
	dj_sched_fleet_get(s, f);
	f->servers[from].mem_free = f->servers[2].mem_free = 64ull << 20;
	CU_ASSERT_EQUAL(dj_sched_fleet_set(s, f), 0);
	for (int pos = PROMPT + 2; pos < PROMPT + STEPS; pos++)
		step_all(s, local, pos, 1);
	dj_sched_stats(s, &ss);
	CU_ASSERT_EQUAL(ss.kv_moves_peer, 2 * victims);
	gr_local_destroy(local);
	dj_sched_destroy(s);
	free(f);
}

/* Ops from node `split` on go to server 1, the rest to server 0. */
static int split_place(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
		       char *why, size_t why_len)
{
	int split = *(int *)arg;

	(void)why;
	(void)why_len;
	for (int x = 0; x < dj_graph_node_count(g); x++)
		if (needed[x])
			server[x] = x >= split;
	return 0;
}

/* One session given as two servers, one per device: an op's output read
 * on the other device crosses as a to_device on the server (no transfer
 * through the client), byte-exact, nothing left behind. */
static void test_context_over_devices(void)
{
	struct dj_conn *two[2] = {srv[0].conn, srv[0].conn};
	const char *devs[2] = {"sim:0", "sim:1"}, *same[2] = {"sim:0", "sim:0"};
	const char *longname[2] = {"sim:0", "sim:1234567890123456"};
	float xv[16];
	struct dj_tensor x = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {4, 4}},
			      .mem = DJ_MEM_HOST, .data = xv};
	struct dj_graph_options o;
	struct dj_graph_placer pl = {.place = split_place};
	struct dj_graph_run_stats st;
	struct dj_tensor got = {0}, ref = {0};
	struct dj_graph_ctx *ctx;
	struct gr_local *local;
	struct dj_graph *g;
	int a, b, split, before = test_server_tensors(&srv[0]);
	uint64_t in1 = moves_in(srv[0].conn, "sim:1");

	for (int i = 0; i < 16; i++)
		xv[i] = (float)(i - 7) / 2.0f;
	dj_graph_options_init(&o);
	CU_ASSERT_EQUAL(dj_graph_ctx_create(&o, two, 2, &ctx), -EINVAL); /* no devices */
	o.devices = same;
	CU_ASSERT_EQUAL(dj_graph_ctx_create(&o, two, 2, &ctx), -EINVAL);
	o.devices = longname;
	CU_ASSERT_EQUAL(dj_graph_ctx_create(&o, two, 2, &ctx), -EINVAL);
	o.devices = devs;
	o.placer = &pl;
	pl.arg = &split;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, two, 2, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	a = dj_graph_op(g, "relu", (int[]){dj_graph_input(g, "x", &x)}, 1, NULL);
	split = a + 1;
	b = dj_graph_op(g, "mul", (int[]){a, a}, 2, NULL);
	CU_ASSERT_FATAL(b >= 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &b, 1, &got), 0);
	dj_graph_last_run(g, &st);
	CU_ASSERT_EQUAL(st.transfers, 0);
	CU_ASSERT_EQUAL(st.stages, 2);
	CU_ASSERT_EQUAL(st.ops, 3); /* relu, to_device, mul */
	CU_ASSERT_EQUAL(st.bytes_down, sizeof(xv));
	CU_ASSERT_EQUAL(st.kv_bytes_through_client, 0);
	CU_ASSERT_EQUAL(moves_in(srv[0].conn, "sim:1") - in1, 1);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_fetch(local, g, &b, 1, &ref), 0);
	CU_ASSERT(memcmp(got.data, ref.data, sizeof(xv)) == 0);
	CU_ASSERT_EQUAL(((float *)got.data)[15], 16.0f);
	free(got.data);
	free(ref.data);
	gr_local_destroy(local);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	/* The source kept for the copy and the copy: both freed. */
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"one session as two servers: tensors cross by to_device",
		 test_context_over_devices},
		{"sequences over the devices of a server; KV moved by to_device",
		 test_units_and_moves},
		{NULL, NULL},
	};

	dj_log_set_level(DJ_LOG_ERR);
	dj_test_add_suite("graph_devices", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
