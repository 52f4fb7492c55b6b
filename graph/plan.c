/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cutting one run into batches, without touching the network (so that it is
 * tested alone). Given what the run needs and where the placement put each
 * operation and state:
 *
 *   stage(op) = max over its inputs of stage(input) + 1 where the input is
 *               made on another server, else + 0; ops touching a tensor
 *               written in place keep their record order (a later stage
 *               never runs before an earlier one on that tensor);
 *   batch     = the ops of one server in one stage, in record order, each
 *               upload (input, new parameter, new state, a tensor coming
 *               from another server) a put entry just before its first use;
 *   fetch     = the outputs asked for, and those another server reads (they
 *               travel through the client until servers copy to each other);
 *   free      = each tensor a batch made and nothing after it reads is freed
 *               by the entry that reads it last, in the same batch; those a
 *               later stage reads by handle are freed once the run is over.
 *
 * With everything on one server there is one stage: one batch, one request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gr.h"

static int root_of(const struct dj_graph *g, int id)
{
	return g->nodes[id].root;
}

static int is_leaf(const struct gr_node *n)
{
	return n->kind != DJ_GRAPH_OP;
}

int gr_plan_needed(struct dj_graph *g, const int *nodes, int n, struct gr_plan *p)
{
	int changed = 1;

	memset(p, 0, sizeof(*p));
	p->n_nodes = g->n;
	p->needed = calloc((size_t)g->n + 1, 1);
	p->server = calloc((size_t)g->n + 1, sizeof(int));
	p->stage = calloc((size_t)g->n + 1, sizeof(int));
	if (p->needed == NULL || p->server == NULL || p->stage == NULL)
		return gr_error(g, -ENOMEM, "fetch: out of memory");
	for (int i = 0; i < n; i++) {
		if (nodes[i] < 0 || nodes[i] >= g->n)
			return gr_error(g, -EINVAL, "fetch: node %d does not exist", nodes[i]);
		p->needed[nodes[i]] = 1;
	}
	/* Writes into state are what a run is for, asked for or not. */
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].writes >= 0 && g->nodes[root_of(g, i)].kind == DJ_GRAPH_STATE)
			p->needed[i] = 1;
	/* Inputs of what is needed; and every in-place write into a tensor
	 * that is needed (a reader recorded after it must see it). */
	while (changed) {
		changed = 0;
		for (int i = g->n - 1; i >= 0; i--)
			for (int k = 0; p->needed[i] && k < g->nodes[i].n_in; k++)
				if (!p->needed[g->nodes[i].in[k]]) {
					p->needed[g->nodes[i].in[k]] = 1;
					changed = 1;
				}
		for (int i = 0; i < g->n; i++)
			if (g->nodes[i].writes >= 0 && !p->needed[i] && p->needed[root_of(g, i)]) {
				p->needed[i] = 1;
				changed = 1;
			}
	}
	return 0;
}

void gr_plan_free(struct gr_plan *p)
{
	for (int b = 0; b < p->n_batches; b++) {
		for (int k = 0; k < p->b[b].n; k++)
			free(p->b[b].e[k].free);
		free(p->b[b].e);
	}
	free(p->b);
	free(p->sep);
	free(p->needed);
	free(p->server);
	free(p->stage);
	free(p->linger);
	free(p->transfer);
	memset(p, 0, sizeof(*p));
}

int gr_batch_find(const struct gr_batch *b, int node)
{
	for (int k = 0; k < b->n; k++)
		if (b->e[k].node == node)
			return k;
	return -1;
}

/* Where things may run: servers in range, state where it lives, in-place
 * writes beside their destination, nothing mutable read across servers. */
static int placement_check(struct dj_graph *g, const struct gr_view *v, struct gr_plan *p,
			   const uint8_t *written)
{
	for (int i = 0; i < g->n; i++) {
		const struct gr_node *n = &g->nodes[i];
		uint64_t res;

		if (!p->needed[i] || n->kind == DJ_GRAPH_INPUT || n->kind == DJ_GRAPH_PARAM)
			continue;
		if (p->server[i] < 0 || p->server[i] >= v->n_servers)
			return gr_error(g, -EINVAL, "placement: node %d on server %d of %d", i,
					p->server[i], v->n_servers);
		res = n->kind == DJ_GRAPH_STATE ? v->resident(v->arg, n) : 0;
		if (res != 0 && !(res >> p->server[i] & 1))
			return gr_error(g, -EXDEV, "placement: state '%s' (node %d) put on server "
					"%d, but it lives on another server", n->name, i,
					p->server[i]);
		if (n->writes >= 0 && p->server[i] != p->server[root_of(g, i)])
			return gr_error(g, -EXDEV, "placement: node %d (%s) writes node %d in place "
					"on server %d, which lives on server %d", i, n->op_name,
					root_of(g, i), p->server[i], p->server[root_of(g, i)]);
		for (int k = 0; n->kind == DJ_GRAPH_OP && k < n->n_in; k++) {
			int x = n->in[k], r = root_of(g, x);

			if (g->nodes[x].kind == DJ_GRAPH_STATE && p->server[x] != p->server[i])
				return gr_error(g, -EXDEV, "placement: node %d (%s) on server %d reads "
						"state '%s' (node %d), which lives on server %d "
						"(state does not move)", i, n->op_name, p->server[i],
						g->nodes[x].name, x, p->server[x]);
			if (!is_leaf(&g->nodes[x]) && written[r] && p->server[r] != p->server[i])
				return gr_error(g, -EXDEV, "placement: node %d (%s) on server %d reads "
						"node %d, a tensor written in place on server %d "
						"(it does not move)", i, n->op_name, p->server[i],
						x, p->server[r]);
		}
	}
	return 0;
}

static void stages(const struct dj_graph *g, struct gr_plan *p, const uint8_t *written,
		   int *last_touch)
{
	for (int i = 0; i < g->n; i++) {
		const struct gr_node *n = &g->nodes[i];
		int st = 0;

		if (!p->needed[i] || n->kind != DJ_GRAPH_OP)
			continue;
		for (int k = 0; k < n->n_in; k++) {
			int x = n->in[k], r = root_of(g, x);

			if (g->nodes[x].kind == DJ_GRAPH_OP) {
				int s = p->stage[x] + (p->server[x] != p->server[i]);

				st = s > st ? s : st;
			}
			if (written[r] && last_touch[r] > st)
				st = last_touch[r];
		}
		p->stage[i] = st;
		for (int k = 0; k < n->n_in; k++)
			if (written[root_of(g, n->in[k])])
				last_touch[root_of(g, n->in[k])] = st;
		if (st + 1 > p->n_stages)
			p->n_stages = st + 1;
	}
}

static int grow(void **arr, int *cap, int n, size_t size)
{
	if (n < *cap)
		return 0;
	int c = *cap > 0 ? *cap * 2 : 8;
	void *grown = realloc(*arr, (size_t)c * size);

	if (grown == NULL)
		return -ENOMEM;
	*arr = grown;
	*cap = c;
	return 0;
}

static int entry_new(struct gr_batch *b, int node, struct gr_entry **e)
{
	if (grow((void **)&b->e, &b->cap, b->n, sizeof(*b->e)) != 0)
		return -ENOMEM;
	*e = &b->e[b->n++];
	memset(*e, 0, sizeof(**e));
	(*e)->node = node;
	return b->n - 1;
}

/* A tensor holding KV-cache data: a state (or an in-place write into one),
 * or a copy of part of one made by data movement alone (narrow, reshape,
 * transpose: no arithmetic, flops 0, reading it as input 0). Its bytes
 * crossing servers are KV-cache bytes moved. */
static int kv_data(const struct dj_graph *g, int x)
{
	for (;;) {
		const struct gr_node *n = &g->nodes[x];

		if (n->residency == DJ_RES_STATEFUL_KV_CACHE)
			return 1;
		if (n->kind != DJ_GRAPH_OP || n->flops != 0 || n->n_in == 0 ||
		    g->nodes[n->in[0]].kind == DJ_GRAPH_INPUT || g->nodes[n->in[0]].kind == DJ_GRAPH_PARAM)
			return 0;
		x = n->in[0];
	}
}

struct builder {
	struct dj_graph *g;
	const struct gr_view *v;
	struct gr_plan *p;
	/* avail[s * n + x]: 0 not on server s yet, k + 1 put by batch k,
	 * -1 there by handle (cache, separate PUT). */
	int *avail;
};

/* Upload x to the server of batch bi, inline or (too large) beforehand. */
static int upload(struct builder *bd, int bi, int x, enum gr_put_src src, int *entry)
{
	struct gr_plan *p = bd->p;
	struct gr_batch *b = &p->b[bi];
	const struct gr_node *n = &bd->g->nodes[x];
	uint64_t nbytes = dj_tensor_nbytes(&n->desc);
	int *av = &bd->avail[(size_t)b->server * (size_t)p->n_nodes + (size_t)x];
	struct gr_entry *e;

	if (src != GR_PUT_TRANSFER && b->inline_bytes + nbytes > bd->v->inline_max) {
		if (grow((void **)&p->sep, &p->cap_sep, p->n_sep, sizeof(*p->sep)) != 0)
			return -ENOMEM;
		p->sep[p->n_sep++] = (struct gr_sep_put){.server = b->server, .node = x, .src = src};
		*av = -1;
		*entry = -1;
		return 0;
	}
	if (src == GR_PUT_TRANSFER && b->inline_bytes + nbytes > DJ_BATCH_PUT_MAX)
		return gr_error(bd->g, -EFBIG, "node %d (%llu bytes) would cross servers inside a "
				"batch already carrying %llu bytes (at most %llu)", x,
				(unsigned long long)nbytes, (unsigned long long)b->inline_bytes,
				(unsigned long long)DJ_BATCH_PUT_MAX);
	*entry = entry_new(b, x, &e);
	if (*entry < 0)
		return -ENOMEM;
	if (src == GR_PUT_TRANSFER) {
		p->transfer_bytes += nbytes;
		p->kv_transfer_bytes += kv_data(bd->g, x) ? nbytes : 0;
	}
	e->is_put = 1;
	e->src = src;
	e->keep = n->kind == DJ_GRAPH_PARAM || n->kind == DJ_GRAPH_STATE;
	b->inline_bytes += nbytes;
	*av = bi + 1;
	return 0;
}

/* Op output x, made by an earlier stage on another device of the same
 * session, reaches batch bi as a to_device entry reading it by handle
 * there: a device copy on the server, never through this client. */
static int peer_copy(struct builder *bd, int bi, int x, int *entry)
{
	struct gr_plan *p = bd->p;
	struct gr_batch *b = &p->b[bi];
	struct gr_entry *e;

	*entry = entry_new(b, x, &e);
	if (*entry < 0)
		return -ENOMEM;
	e->is_put = 1;
	e->src = GR_PUT_PEER;
	e->peer_from = p->server[x];
	bd->avail[(size_t)b->server * (size_t)p->n_nodes + (size_t)x] = bi + 1;
	return 0;
}

/* How op input x reaches batch bi: an entry of it ("$k") or a handle. */
static int input_ref(struct builder *bd, int bi, int x, int *entry, int *by_node)
{
	struct gr_plan *p = bd->p;
	struct gr_batch *b = &p->b[bi];
	const struct gr_node *n = &bd->g->nodes[x];
	int s = b->server, *av = &bd->avail[(size_t)s * (size_t)p->n_nodes + (size_t)x];

	*entry = -1;
	*by_node = x;
	if (n->kind == DJ_GRAPH_OP && p->server[x] == s) {
		*entry = p->stage[x] == b->stage ? gr_batch_find(b, x) : -1;
		return 0;
	}
	if (*av == bi + 1) {
		*entry = gr_batch_find(b, x);
		return 0;
	}
	if (*av != 0)
		return 0; /* an earlier batch or the caches left it there */
	if ((n->kind == DJ_GRAPH_PARAM || n->kind == DJ_GRAPH_STATE) &&
	    (bd->v->resident(bd->v->arg, n) >> s & 1)) {
		*av = -1;
		return 0;
	}
	if (n->kind == DJ_GRAPH_OP && bd->v->session != NULL &&
	    bd->v->session[p->server[x]] == bd->v->session[s])
		return peer_copy(bd, bi, x, entry);
	if (n->kind == DJ_GRAPH_OP) {
		/* Made on another server (an earlier stage): it comes back with
		 * that batch's reply and goes out with this one. */
		if (!p->transfer[x])
			p->n_transfers++;
		p->transfer[x] = 1;
		return upload(bd, bi, x, GR_PUT_TRANSFER, entry);
	}
	return upload(bd, bi, x, n->kind == DJ_GRAPH_STATE ? GR_PUT_STATE_INIT : GR_PUT_HOST,
		      entry);
}

static int batch_fill(struct builder *bd, int bi)
{
	struct dj_graph *g = bd->g;
	struct gr_plan *p = bd->p;

	for (int i = 0; i < g->n; i++) {
		const struct gr_node *n = &g->nodes[i];
		int in_entry[DJ_MAX_OP_ARGS], in_node[DJ_MAX_OP_ARGS], k, rc;
		struct gr_entry *e;

		if (!p->needed[i] || n->kind != DJ_GRAPH_OP || p->server[i] != p->b[bi].server ||
		    p->stage[i] != p->b[bi].stage)
			continue;
		for (k = 0; k < n->n_in; k++) {
			rc = input_ref(bd, bi, n->in[k], &in_entry[k], &in_node[k]);
			if (rc != 0)
				return rc;
		}
		if (entry_new(&p->b[bi], i, &e) < 0)
			return -ENOMEM;
		memcpy(e->in_entry, in_entry, sizeof(int) * (size_t)n->n_in);
		memcpy(e->in_node, in_node, sizeof(int) * (size_t)n->n_in);
	}
	return 0;
}

static int free_add(struct gr_entry *e, int victim)
{
	if (grow((void **)&e->free, &e->cap_free, e->n_free, sizeof(int)) != 0)
		return -ENOMEM;
	e->free[e->n_free++] = victim;
	return 0;
}

/* by_handle[s * n + r]: some batch on server s reads the tensor of root r
 * by handle (it was made by an earlier batch there). */
static uint8_t *read_by_handle(const struct dj_graph *g, const struct gr_plan *p)
{
	uint8_t *by_handle = calloc((size_t)g->n * (size_t)p->n_servers + 1, 1);

	for (int bi = 0; by_handle != NULL && bi < p->n_batches; bi++)
		for (int k = 0; k < p->b[bi].n; k++) {
			const struct gr_entry *e = &p->b[bi].e[k];

			/* A device copy reads its source by handle where it was
			 * made: that batch keeps it to the end of the run. */
			if (e->is_put && e->src == GR_PUT_PEER)
				by_handle[(size_t)e->peer_from * (size_t)g->n +
					  (size_t)root_of(g, e->node)] = 1;
			for (int j = 0; !e->is_put && j < g->nodes[e->node].n_in; j++)
				if (e->in_entry[j] < 0)
					by_handle[(size_t)p->b[bi].server * (size_t)g->n +
						  (size_t)root_of(g, e->in_node[j])] = 1;
		}
	return by_handle;
}

/* Each tensor batch bi made, freed by its last reader there (last[] is
 * scratch, one slot per node), or left to the end of the run where a later
 * batch reads it by handle. */
static int frees(struct dj_graph *g, struct gr_plan *p, int bi, const uint8_t *by_handle,
		 int *last)
{
	struct gr_batch *b = &p->b[bi];

	/* The last entry reading (or writing in place) each root's tensor. */
	for (int k = 0; k < b->n; k++)
		last[b->e[k].node] = -1;
	for (int k = 0; k < b->n; k++) {
		const struct gr_entry *e = &b->e[k];

		if (e->is_put)
			continue;
		if (g->nodes[e->node].writes >= 0)
			last[root_of(g, e->node)] = k;
		for (int q = 0; q < g->nodes[e->node].n_in; q++)
			if (e->in_entry[q] >= 0)
				last[root_of(g, b->e[e->in_entry[q]].node)] = k;
	}
	for (int k = 0; k < b->n; k++) {
		const struct gr_entry *made = &b->e[k];
		int r = made->node;

		/* Puts of params and state are kept; an in-place op's output is
		 * its destination, made elsewhere. */
		if (made->keep || (!made->is_put && g->nodes[r].writes >= 0))
			continue;
		if (by_handle[(size_t)b->server * (size_t)g->n + (size_t)r]) {
			p->linger[r] |= 1ull << b->server;
			continue;
		}
		if (free_add(&b->e[last[r] > k ? last[r] : k], k) != 0)
			return -ENOMEM;
	}
	return 0;
}

static void fetches(const struct dj_graph *g, struct gr_plan *p, const int *fetch, int n_fetch)
{
	for (int bi = 0; bi < p->n_batches; bi++) {
		struct gr_batch *b = &p->b[bi];

		for (int k = 0; k < b->n; k++) {
			struct gr_entry *e = &b->e[k];
			int asked = 0;

			for (int f = 0; f < n_fetch && !e->is_put; f++)
				asked |= fetch[f] == e->node;
			e->fetch = asked || (!e->is_put && p->transfer[e->node]);
			if (!e->fetch)
				continue;
			e->fetch_off = b->fetch_len;
			b->fetch_len += dj_tensor_nbytes(&g->nodes[e->node].desc);
		}
	}
}

int gr_plan_build(struct dj_graph *g, const struct gr_view *v, const int *fetch, int n_fetch,
		  struct gr_plan *p)
{
	struct builder bd = {.g = g, .v = v, .p = p};
	uint8_t *written = calloc((size_t)g->n + 1, 1), *by_handle = NULL;
	int *last_touch = calloc((size_t)g->n + 1, sizeof(int));
	int rc = -ENOMEM;

	p->n_servers = v->n_servers;
	if (gr_annotate(g) != 0)
		goto error;
	p->linger = calloc((size_t)g->n + 1, sizeof(uint64_t));
	p->transfer = calloc((size_t)g->n + 1, 1);
	bd.avail = calloc((size_t)g->n * (size_t)v->n_servers + 1, sizeof(int));
	if (written == NULL || last_touch == NULL || p->linger == NULL || p->transfer == NULL ||
	    bd.avail == NULL)
		goto error;
	for (int i = 0; i < g->n; i++)
		if (p->needed[i] && g->nodes[i].writes >= 0)
			written[root_of(g, i)] = 1;
	rc = placement_check(g, v, p, written);
	if (rc != 0)
		goto error;
	stages(g, p, written, last_touch);
	for (int st = 0; st < p->n_stages; st++)
		for (int s = 0; s < v->n_servers; s++) {
			int any = 0;

			for (int i = 0; i < g->n && !any; i++)
				any = p->needed[i] && g->nodes[i].kind == DJ_GRAPH_OP &&
				      p->server[i] == s && p->stage[i] == st;
			if (!any)
				continue;
			rc = grow((void **)&p->b, &p->cap_batches, p->n_batches, sizeof(*p->b));
			if (rc != 0)
				goto error;
			memset(&p->b[p->n_batches], 0, sizeof(*p->b));
			p->b[p->n_batches].server = s;
			p->b[p->n_batches].stage = st;
			rc = batch_fill(&bd, p->n_batches++);
			if (rc != 0)
				goto error;
		}
	by_handle = read_by_handle(g, p);
	rc = by_handle != NULL ? 0 : -ENOMEM;
	for (int bi = 0; rc == 0 && bi < p->n_batches; bi++)
		rc = frees(g, p, bi, by_handle, last_touch); /* stages are done with it */
	if (rc != 0)
		goto error;
	fetches(g, p, fetch, n_fetch);
	rc = 0;
error:
	if (rc == -ENOMEM)
		gr_error(g, rc, "fetch: out of memory");
	free(written);
	free(last_touch);
	free(by_handle);
	free(bd.avail);
	return rc;
}
