/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cost model, in seconds, from the fleet's figures and the graph's
 * annotations:
 *
 *   compute(op, s) = flops / matmul GFLOP/s of its dtype   (matmul, linear,
 *                                                          fused attention)
 *                  | bytes read and written / elementwise GB/s  (the rest)
 *                  + the per-op overhead of s
 *   move(x, a, b)  = link_rtt[a][b] + bytes / link_bw[a][b]
 *   upload(x, s)   = bytes / bw(client, s)
 *   queue(s)       = queued requests x the time a request holds s
 *
 * Placing a node costs compute + moving its inputs that are not there yet
 * + the expected queueing (sc_place.c adds the work placed before it).
 */
#include <string.h>

#include "sc.h"

/* Operations whose time is their arithmetic (the rest: their bytes). */
static int is_matmul_class(const char *op)
{
	return strcmp(op, "matmul") == 0 || strcmp(op, "linear") == 0 ||
	       strcmp(op, "scaled_dot_product_attention") == 0;
}

double sc_compute_s(const struct dj_sched_server *sv, const struct dj_graph_node_info *ni,
		    const struct dj_graph_node_info *all)
{
	double t = sv->op_overhead_s, gflops;
	uint64_t bytes = ni->nbytes;
	enum dj_dtype dt = ni->desc.dtype;

	if (is_matmul_class(ni->name)) {
		gflops = (unsigned)dt < DJ_DTYPE_COUNT && sv->matmul_gflops[dt] > 0 ?
			 sv->matmul_gflops[dt] : sv->matmul_gflops[DJ_DTYPE_FLOAT32];
		if (gflops > 0)
			return t + ni->flops / (gflops * 1e9);
	}
	for (int k = 0; k < ni->n_in; k++)
		bytes += all[ni->inputs[k]].nbytes;
	/* An in-place write touches its source and the slice, not the whole
	 * destination. */
	if (ni->writes >= 0 && ni->n_in > 1)
		bytes = 2 * all[ni->inputs[1]].nbytes;
	return sv->elementwise_gbps > 0 ? t + (double)bytes / (sv->elementwise_gbps * 1e9) : t;
}

double sc_move_s(const struct dj_sched_fleet *f, int a, int b, uint64_t bytes)
{
	double bw = f->link_bw_Bps[a][b];

	if (a == b)
		return 0;
	return f->link_rtt_s[a][b] + (bw > 0 ? (double)bytes / bw : 0);
}

double sc_upload_s(const struct dj_sched_server *sv, uint64_t bytes)
{
	return sv->bw_Bps > 0 ? (double)bytes / sv->bw_Bps : 0;
}

double sc_queue_s(const struct dj_sched_server *sv)
{
	return sv->queued * sv->service_s;
}

uint64_t sc_mem_free(const struct dj_sched *s, int server)
{
	const struct dj_sched_server *sv = &s->f.servers[server];

	if (sv->mem_free == UINT64_MAX)
		return UINT64_MAX;
	return sv->mem_free > s->reserved[server] ? sv->mem_free - s->reserved[server] : 0;
}
