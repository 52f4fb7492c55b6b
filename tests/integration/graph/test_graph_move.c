/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State between servers, for the scheduler (docs/SCHEDULER.md): a KV cache
 * moved to another server with dj_graph_ctx_state_move (through the client:
 * GET then PUT, the source freed), counted in the stats, and appended to
 * there by the next runs, equal to the local CPU reference throughout (the
 * bytes counted as through the client; with a mover, not); a
 * server that goes away: the fetch names it (dj_graph_failed_server), and
 * dj_graph_ctx_server_lost forgets what the context held there, so that a
 * later run creates the state again on a survivor.
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

static struct test_server srv[2];

static int suite_init(void)
{
	return test_server_start(&srv[0]) != 0 || test_server_start(&srv[1]) != 0 ? -1 : 0;
}

static int suite_cleanup(void)
{
	test_server_stop(&srv[0]);
	test_server_stop(&srv[1]);
	return 0;
}

static const struct dj_tensor_desc cache = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3,
					    .shape = {1, STEPS, WIDTH}};

/* One step: cache[0, t, :] = row; s = sum(cache). Returns s; *w the write. */
static int step_record(struct dj_graph *g, const struct dj_tensor *row, int t, int *w)
{
	char attrs[64];
	int k = dj_graph_state(g, "seq/kv", &cache, NULL), r = dj_graph_input(g, "row", row);

	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", t);
	*w = dj_graph_op(g, "slice_write", (int[]){k, r}, 2, attrs);
	return dj_graph_op(g, "sum", w, 1, NULL);
}

/* Run step t remotely and locally; 0 where both agree byte for byte. */
static int step(struct dj_graph_ctx *ctx, struct gr_local *local, int t,
		struct dj_graph_run_stats *st)
{
	float row[WIDTH];
	struct dj_tensor tr = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, 1, WIDTH}},
			       .data = row, .mem = DJ_MEM_HOST};
	struct dj_tensor got = {0}, ref = {0};
	struct dj_graph *g;
	int w, s, rc;

	for (int i = 0; i < WIDTH; i++)
		row[i] = (float)(t * WIDTH + i) * 0.5f;
	if (dj_graph_create(ctx, &g) != 0)
		return -ENOMEM;
	s = step_record(g, &tr, t, &w);
	rc = s < 0 ? s : dj_graph_fetch(g, &s, 1, &got);
	if (rc == 0)
		rc = gr_local_fetch(local, g, &s, 1, &ref);
	if (rc == 0)
		rc = memcmp(got.data, ref.data, sizeof(float)) == 0 ? 0 : -EBADMSG;
	if (rc != 0)
		printf("\n  step %d: %s (%s)\n", t, dj_strerror(rc), dj_graph_error(g));
	dj_graph_last_run(g, st);
	free(got.data);
	free(ref.data);
	dj_graph_destroy(g);
	return rc;
}

static void test_state_moves_and_stays(void)
{
	struct dj_conn *conns[2] = {srv[0].conn, srv[1].conn};
	struct dj_graph_run_stats st, total;
	struct dj_graph_ctx *ctx;
	struct gr_local *local;
	uint64_t h, moved;
	int server;

	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, conns, 2, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	for (int t = 0; t < STEPS / 2; t++)
		CU_ASSERT_EQUAL(step(ctx, local, t, &st), 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), 0);
	CU_ASSERT_EQUAL(server, 0);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_move(ctx, "seq/kv", 2, &moved), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_move(ctx, "nope", 1, &moved), -ENOENT);
	/* Moved once; a move to where it lives moves nothing. */
	CU_ASSERT_EQUAL(dj_graph_ctx_state_move(ctx, "seq/kv", 1, &moved), 0);
	CU_ASSERT_EQUAL(moved, dj_tensor_nbytes(&cache));
	CU_ASSERT_EQUAL(dj_graph_ctx_state_move(ctx, "seq/kv", 1, &moved), 0);
	CU_ASSERT_EQUAL(moved, 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), 0);
	CU_ASSERT_EQUAL(server, 1);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), 0);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[1]), 1);
	dj_graph_ctx_stats(ctx, &total);
	CU_ASSERT_EQUAL(total.state_moves, 1);
	CU_ASSERT_EQUAL(total.kv_bytes_moved, dj_tensor_nbytes(&cache));
	/* No mover: the bytes came down to this client and went up again. */
	CU_ASSERT_EQUAL(total.kv_bytes_through_client, dj_tensor_nbytes(&cache));
	/* The next runs append there (the default placement: where state
	 * lives), equal to the local reference; the first one counts the
	 * move, the later ones move nothing. */
	for (int t = STEPS / 2; t < STEPS; t++) {
		CU_ASSERT_EQUAL(step(ctx, local, t, &st), 0);
		CU_ASSERT_EQUAL(st.round_trips, 1);
		CU_ASSERT_EQUAL(st.state_moves, t == STEPS / 2);
		CU_ASSERT_EQUAL(st.kv_bytes_moved, t == STEPS / 2 ? dj_tensor_nbytes(&cache) : 0);
		CU_ASSERT_EQUAL(st.kv_bytes_through_client, st.kv_bytes_moved);
	}
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), 0);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[1]), 1);
	dj_graph_ctx_stats(ctx, &total);
	CU_ASSERT_EQUAL(total.state_moves, 1);
	gr_local_destroy(local);
	dj_graph_ctx_destroy(ctx);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[1]), 0);
}

/* A mover standing in for the fleet's server-to-server move: it does the
 * GET and PUT itself (servers here have no fleet), counting its calls. */
struct copy_mover {
	struct dj_conn *conn[2];
	int calls;
};

static int copy_move(void *arg, int from, uint64_t handle, int to,
		     const struct dj_tensor_desc *desc, uint64_t *new_handle)
{
	struct copy_mover *m = arg;
	struct dj_tensor t = {.desc = *desc, .mem = DJ_MEM_HOST,
			      .data = malloc(dj_tensor_nbytes(desc))};
	int rc = t.data != NULL ? dj_get(m->conn[from], handle, &t) : -ENOMEM;

	if (rc == 0)
		rc = dj_put(m->conn[to], &t, new_handle);
	if (rc == 0)
		rc = dj_free(m->conn[from], handle);
	free(t.data);
	m->calls++;
	return rc;
}

/* With a mover, a state move is the mover's: counted in kv_bytes_moved,
 * not in kv_bytes_through_client; the cache is appended to there. */
static void test_state_mover(void)
{
	struct copy_mover cm = {.conn = {srv[0].conn, srv[1].conn}};
	struct dj_graph_mover mover = {.move = copy_move, .arg = &cm};
	struct dj_graph_run_stats st, total;
	struct dj_graph_options o;
	struct dj_graph_ctx *ctx;
	struct gr_local *local;
	uint64_t h, moved;
	int server;

	dj_graph_options_init(&o);
	o.mover = &mover;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, cm.conn, 2, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	CU_ASSERT_EQUAL(step(ctx, local, 0, &st), 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_move(ctx, "seq/kv", 1, &moved), 0);
	CU_ASSERT_EQUAL(moved, dj_tensor_nbytes(&cache));
	CU_ASSERT_EQUAL(cm.calls, 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), 0);
	CU_ASSERT_EQUAL(server, 1);
	CU_ASSERT_EQUAL(step(ctx, local, 1, &st), 0);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, dj_tensor_nbytes(&cache));
	CU_ASSERT_EQUAL(st.kv_bytes_through_client, 0);
	dj_graph_ctx_stats(ctx, &total);
	CU_ASSERT_EQUAL(total.state_moves, 1);
	CU_ASSERT_EQUAL(total.kv_bytes_through_client, 0);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), 0);
	gr_local_destroy(local);
	dj_graph_ctx_destroy(ctx);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[1]), 0);
}

/* A placer that puts everything on server 1 (where the state will be). */
static int place_on_1(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
		      char *why, size_t why_len)
{
	(void)arg;
	(void)why;
	(void)why_len;
	for (int x = 0; x < dj_graph_node_count(g); x++)
		if (needed[x])
			server[x] = *(int *)arg;
	return 0;
}

static void test_server_lost(void)
{
	struct dj_conn *conns[2] = {srv[0].conn, srv[1].conn};
	int target = 1;
	struct dj_graph_placer placer = {.place = place_on_1, .arg = &target};
	struct dj_graph_options o;
	struct dj_graph_run_stats st;
	struct dj_graph_ctx *ctx;
	struct gr_local *local;
	uint64_t h;
	int server;

	dj_graph_options_init(&o);
	o.placer = &placer;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, conns, 2, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	CU_ASSERT_EQUAL(step(ctx, local, 0, &st), 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), 0);
	CU_ASSERT_EQUAL(server, 1);
	/* Server 1 goes away: the next run fails and names it. */
	test_server_kill(&srv[1]);
	struct dj_graph *g;
	float row[WIDTH] = {0};
	struct dj_tensor tr = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, 1, WIDTH}},
			       .data = row, .mem = DJ_MEM_HOST};
	struct dj_tensor got = {0};
	int w, s;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	s = step_record(g, &tr, 1, &w);
	CU_ASSERT(dj_graph_fetch(g, &s, 1, &got) < 0);
	CU_ASSERT_EQUAL(dj_graph_failed_server(g), 1);
	/* Forgotten: one state; nothing is sent to the dead server. */
	CU_ASSERT_EQUAL(dj_graph_ctx_server_lost(ctx, 1), 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_server_lost(ctx, 2), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), -ENOENT);
	/* Rebuilt on the survivor from the start (its lineage: steps 0..),
	 * equal to a fresh local reference. */
	target = 0;
	gr_local_destroy(local);
	CU_ASSERT_EQUAL_FATAL(gr_local_create(&local), 0);
	for (int t = 0; t < 3; t++)
		CU_ASSERT_EQUAL(step(ctx, local, t, &st), 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "seq/kv", &server, &h), 0);
	CU_ASSERT_EQUAL(server, 0);
	CU_ASSERT_EQUAL(dj_graph_failed_server(g), 1);
	dj_graph_destroy(g);
	gr_local_destroy(local);
	dj_graph_ctx_destroy(ctx);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), 0);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"state moved once, appended to where it lives", test_state_moves_and_stays},
		{"state moved by a mover: not through the client", test_state_mover},
		{"a server lost: named, forgotten, rebuilt", test_server_lost},
		{NULL, NULL},
	};

	dj_test_add_suite("graph_move", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
