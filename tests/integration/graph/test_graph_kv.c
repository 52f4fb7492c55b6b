/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State updated in place across runs: a KV cache appended to with
 * slice_write, one position per run (a decode loop), each run one round
 * trip that uploads only its new row; the cache stays the same tensor on the
 * server, equal to the local CPU reference after every step. Skipped (77)
 * while this build's operation table lacks slice_write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/graph.h"
#include "graph/gr.h"
#include "harness.h"
#include "servers.h"

#define STEPS 6
#define WIDTH 4

static struct test_server srv;

static int suite_init(void)
{
	return test_server_start(&srv);
}

static int suite_cleanup(void)
{
	test_server_stop(&srv);
	return 0;
}

/* One decode step: cache[0, t, :] = row; s = sum(cache). */
static int step_record(struct dj_graph *g, const struct dj_tensor *row, int t, int *w)
{
	struct dj_tensor_desc cache = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, STEPS, WIDTH}};
	char attrs[64];
	int k = dj_graph_state(g, "kv", &cache, NULL), r = dj_graph_input(g, "row", row);

	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", t);
	*w = dj_graph_op(g, "slice_write", (int[]){k, r}, 2, attrs);
	return dj_graph_op(g, "sum", w, 1, NULL);
}

static void test_kv_append_in_place(void)
{
	struct dj_graph_ctx *ctx;
	struct gr_local *local;
	struct dj_graph_run_stats st;
	float row[WIDTH], sum = 0;
	struct dj_tensor tr = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, 1, WIDTH}},
			       .data = row, .mem = DJ_MEM_HOST};
	uint64_t handle = 0, h;
	int server;

	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &srv.conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	for (int t = 0; t < STEPS; t++) {
		struct dj_graph *g;
		struct dj_tensor got[2] = {0}, ref[2] = {0};
		int w, s, up = atomic_load(&srv.uploads);

		for (int i = 0; i < WIDTH; i++) {
			row[i] = (float)(t * WIDTH + i);
			sum += row[i];
		}
		CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
		s = step_record(g, &tr, t, &w);
		CU_ASSERT_FATAL(s >= 0);
		CU_ASSERT_EQUAL(dj_graph_phase(g, NULL), t == 0 ? DJ_PHASE_PREFILL : DJ_PHASE_DECODE);
		CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, (int[]){s, w}, 2, got), 0);
		CU_ASSERT_EQUAL(((float *)got[0].data)[0], sum);
		dj_graph_last_run(g, &st);
		CU_ASSERT_EQUAL(st.round_trips, 1);
		/* The row every time; the cache (zeros) only at the start. */
		CU_ASSERT_EQUAL(atomic_load(&srv.uploads) - up, t == 0 ? 2 : 1);
		CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "kv", &server, &h), 0);
		if (t == 0)
			handle = h;
		CU_ASSERT_EQUAL(h, handle);
		CU_ASSERT_EQUAL_FATAL(gr_local_fetch(local, g, (int[]){s, w}, 2, ref), 0);
		for (int i = 0; i < 2; i++)
			CU_ASSERT(memcmp(got[i].data, ref[i].data, dj_tensor_nbytes(&ref[i].desc)) == 0);
		for (int i = 0; i < 2; i++) {
			free(got[i].data);
			free(ref[i].data);
		}
		dj_graph_destroy(g);
		/* Nothing but the cache stays on the server. */
		CU_ASSERT_EQUAL(test_server_tensors(&srv), 1);
	}
	gr_local_destroy(local);
	dj_graph_ctx_destroy(ctx);
	CU_ASSERT_EQUAL(test_server_tensors(&srv), 0);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"KV append in place across runs", test_kv_append_in_place},
		{NULL, NULL},
	};

	if (tn_op_find("slice_write") == NULL)
		dj_test_skip("this build's operation table has no slice_write yet");
	dj_test_add_suite("graph_kv", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
