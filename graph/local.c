/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A graph run on this machine's CPU with the reference operations
 * (tn_op_cpu), node by node in record order, state kept in a local table:
 * the reference a remote fetch is checked against (tests, `djinn graph
 * --run`) with the same semantics (what runs, in-place writes, state after
 * the run).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gr.h"

struct gr_local_state {
	char *name;
	struct dj_tensor t;
};

struct gr_local {
	struct gr_local_state *s;
	int n, cap;
};

int gr_local_create(struct gr_local **l)
{
	*l = calloc(1, sizeof(**l));
	return *l != NULL ? 0 : -ENOMEM;
}

void gr_local_destroy(struct gr_local *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < l->n; i++) {
		free(l->s[i].name);
		free(l->s[i].t.data);
	}
	free(l->s);
	free(l);
}

/* State node n's tensor, made (init or zeros) the first time. */
static int local_state(struct gr_local *l, const struct gr_node *n, struct dj_tensor *t)
{
	size_t nbytes = dj_tensor_nbytes(&n->desc);
	struct gr_local_state *st;

	for (int i = 0; i < l->n; i++)
		if (strcmp(l->s[i].name, n->name) == 0) {
			*t = l->s[i].t;
			return 0;
		}
	if (l->n == l->cap) {
		int cap = l->cap > 0 ? l->cap * 2 : 8;
		struct gr_local_state *grown = realloc(l->s, (size_t)cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		l->s = grown;
		l->cap = cap;
	}
	st = &l->s[l->n];
	st->name = strdup(n->name);
	st->t = (struct dj_tensor){.desc = n->desc, .mem = DJ_MEM_HOST,
				   .data = calloc(1, nbytes + 1)};
	if (st->name == NULL || st->t.data == NULL) {
		free(st->name);
		free(st->t.data);
		return -ENOMEM;
	}
	if (n->has_host && nbytes > 0)
		memcpy(st->t.data, n->host.data, nbytes);
	l->n++;
	*t = st->t;
	return 0;
}

static int local_op(struct dj_graph *g, int id, struct dj_tensor *vals, uint8_t *owned)
{
	const struct gr_node *n = &g->nodes[id];
	struct dj_tensor in[DJ_MAX_OP_ARGS], res;
	struct tn_op_attrs attrs;
	char err[TN_OP_ERR_LEN] = "";
	cJSON *json;
	int rc;

	if (n->op == NULL)
		return gr_error(g, -DJ_EUNKNOWN_OP, "node %d: %s: not in this build's operation "
				"table", id, n->op_name);
	for (int k = 0; k < n->n_in; k++)
		in[k] = vals[n->in[k]];
	json = cJSON_Parse(n->attrs_json);
	rc = tn_op_attrs_from_json(n->op, json, &attrs, err, sizeof(err));
	cJSON_Delete(json);
	if (rc == 0)
		rc = tn_op_cpu_alloc(n->op, in, n->n_in, &attrs, &res, err, sizeof(err));
	if (rc != 0)
		return gr_error(g, rc, "node %d: %s", id, err);
	if (n->writes < 0) {
		vals[id] = res;
		owned[id] = 1;
		return 0;
	}
	/* In place: the result is the destination's new contents. */
	memcpy(vals[n->root].data, res.data, dj_tensor_nbytes(&res.desc));
	dj_tensor_free_host(&res);
	vals[id] = vals[n->root];
	return 0;
}

/* Copy node x's value into every out[i] asking for it. */
static int deliver(const struct dj_tensor *v, int x, const int *nodes, int n, struct dj_tensor *out)
{
	size_t nbytes = dj_tensor_nbytes(&v->desc);

	for (int i = 0; i < n; i++) {
		if (nodes[i] != x)
			continue;
		if (out[i].data == NULL && (out[i].data = malloc(nbytes + 1)) == NULL)
			return -ENOMEM;
		memcpy(out[i].data, v->data, nbytes);
		out[i].desc = v->desc;
		out[i].mem = DJ_MEM_HOST;
	}
	return 0;
}

int gr_local_fetch(struct gr_local *l, struct dj_graph *g, const int *nodes, int n,
		   struct dj_tensor *out)
{
	struct dj_tensor *vals = calloc((size_t)g->n + 1, sizeof(*vals));
	uint8_t *owned = calloc((size_t)g->n + 1, 1);
	struct gr_plan p = {0};
	int rc = vals != NULL && owned != NULL ? gr_plan_needed(g, nodes, n, &p) : -ENOMEM;

	for (int x = 0; rc == 0 && x < g->n; x++) {
		const struct gr_node *node = &g->nodes[x];

		if (!p.needed[x])
			continue;
		if (node->kind == DJ_GRAPH_OP)
			rc = local_op(g, x, vals, owned);
		else if (node->kind == DJ_GRAPH_STATE)
			rc = local_state(l, node, &vals[x]);
		else if (!node->has_host)
			rc = gr_error(g, -EINVAL, "node %d: input without data", x);
		else
			vals[x] = node->host;
		/* An op's value is the one it has when it runs, as the server
		 * fetches it (a later in-place write into its tensor does not
		 * show); a state node's is the one after the run. */
		if (rc == 0 && node->kind != DJ_GRAPH_STATE)
			rc = deliver(&vals[x], x, nodes, n, out);
	}
	for (int x = 0; rc == 0 && x < g->n; x++)
		if (p.needed[x] && g->nodes[x].kind == DJ_GRAPH_STATE)
			rc = deliver(&vals[x], x, nodes, n, out);
	for (int x = 0; owned != NULL && x < g->n; x++)
		if (owned[x])
			dj_tensor_free_host(&vals[x]);
	gr_plan_free(&p);
	free(vals);
	free(owned);
	return rc;
}
