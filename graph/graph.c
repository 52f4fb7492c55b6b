/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recording: the node table of a lazy graph. Operations are checked and
 * their results described here, at record time, by the operation table's
 * own inference (tn_op_infer), so that a bad shape is reported where it was
 * written, not when the graph runs on a server.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gr.h"

static const char *const kind_names[] = {"input", "param", "state", "op"};
static const char *const residency_names[] = {
	"ephemeral_activation", "persistent_weight", "stateful_kv_cache",
};
static const char *const phase_names[] = {"unknown", "prefill", "decode"};

const char *dj_graph_kind_name(enum dj_graph_kind kind)
{
	return (unsigned)kind < 4 ? kind_names[kind] : "?";
}

const char *dj_graph_residency_name(enum dj_graph_residency res)
{
	return (unsigned)res < 3 ? residency_names[res] : "?";
}

const char *dj_graph_phase_name(enum dj_graph_phase phase)
{
	return (unsigned)phase < 3 ? phase_names[phase] : "?";
}

/* Operations whose output is their input 0, written in place: the table
 * says which (tn_op.inplace), so that a new in-place operation needs no
 * change here. A name the table lacks (a node recorded from its
 * description) is not in place. */
int gr_op_in_place(const char *op_name)
{
	const struct tn_op *op = tn_op_find(op_name);

	return op != NULL && op->inplace;
}

int gr_error(struct dj_graph *g, int rc, const char *fmt, ...)
{
	va_list ap;

	/* The first error is the one worth reading: later ones often follow
	 * from it. */
	if (g->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(g->err, sizeof(g->err), fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *dj_graph_error(const struct dj_graph *g)
{
	return g->err;
}

int dj_graph_create(struct dj_graph_ctx *ctx, struct dj_graph **graph)
{
	struct dj_graph *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return -ENOMEM;
	g->ctx = ctx;
	g->failed_server = -1;
	*graph = g;
	return 0;
}

void dj_graph_destroy(struct dj_graph *g)
{
	if (g == NULL)
		return;
	for (int i = 0; i < g->n; i++) {
		free(g->nodes[i].name);
		free(g->nodes[i].op_name);
		free(g->nodes[i].attrs_json);
	}
	free(g->nodes);
	free(g);
}

int dj_graph_node_count(const struct dj_graph *g)
{
	return g->n;
}

int dj_graph_node_desc(const struct dj_graph *g, int node, struct dj_tensor_desc *desc)
{
	if (node < 0 || node >= g->n || desc == NULL)
		return -EINVAL;
	*desc = g->nodes[node].desc;
	return 0;
}

/* A new node at the end of the table (zeroed, its own root); the caller
 * fills it. The annotations are stale from now on. */
int gr_node_new(struct dj_graph *g, struct gr_node **node)
{
	struct gr_node *n;

	if (g->n == g->cap) {
		int cap = g->cap > 0 ? g->cap * 2 : 32;
		struct gr_node *grown = realloc(g->nodes, (size_t)cap * sizeof(*grown));

		if (grown == NULL)
			return gr_error(g, -ENOMEM, "node %d: out of memory", g->n);
		g->nodes = grown;
		g->cap = cap;
	}
	n = &g->nodes[g->n];
	memset(n, 0, sizeof(*n));
	n->writes = -1;
	n->root = g->n;
	n->block = -1;
	n->role = "";
	n->server = -1;
	g->annot.valid = 0;
	*node = n;
	return g->n++;
}

static int dup_name(struct dj_graph *g, const char *name, char **out)
{
	*out = NULL;
	if (name == NULL)
		return 0;
	*out = strdup(name);
	return *out != NULL ? 0 : gr_error(g, -ENOMEM, "node %d: out of memory", g->n);
}

static int host_check(struct dj_graph *g, const char *what, const struct dj_tensor *t)
{
	if (t == NULL || t->mem != DJ_MEM_HOST)
		return gr_error(g, -EINVAL, "node %d: %s: a host tensor is required", g->n, what);
	if (dj_tensor_desc_check(&t->desc) != 0)
		return gr_error(g, -EINVAL, "node %d: %s: invalid description", g->n, what);
	return 0;
}

/* An input, param or state node. */
static int leaf_new(struct dj_graph *g, enum dj_graph_kind kind, const char *name,
		    const struct dj_tensor_desc *desc, const struct dj_tensor *host)
{
	struct gr_node *n;
	char *copy;
	int id, rc = dup_name(g, name, &copy);

	if (rc != 0)
		return rc;
	id = gr_node_new(g, &n);
	if (id < 0) {
		free(copy);
		return id;
	}
	n->kind = kind;
	n->name = copy;
	n->desc = *desc;
	n->inferred = 1;
	if (host != NULL) {
		n->host = *host;
		n->has_host = host->data != NULL || dj_tensor_nbytes(desc) == 0;
	}
	return id;
}

int dj_graph_input(struct dj_graph *g, const char *name, const struct dj_tensor *t)
{
	int rc = host_check(g, "input", t);

	return rc != 0 ? rc : leaf_new(g, DJ_GRAPH_INPUT, name, &t->desc, t);
}

int dj_graph_bind(struct dj_graph *g, int node, const struct dj_tensor *t)
{
	struct gr_node *n = node >= 0 && node < g->n ? &g->nodes[node] : NULL;

	if (n == NULL || n->kind != DJ_GRAPH_INPUT)
		return gr_error(g, -EINVAL, "bind: node %d is not an input", node);
	if (t == NULL || t->mem != DJ_MEM_HOST || !dj_tensor_desc_equal(&t->desc, &n->desc) ||
	    (t->data == NULL && dj_tensor_nbytes(&t->desc) > 0))
		return gr_error(g, -EINVAL, "bind: node %d: a host tensor of the input's "
				"description is required", node);
	n->host = *t;
	n->has_host = 1;
	return 0;
}

uint64_t dj_graph_hash(const struct dj_tensor *t)
{
	return gr_xxh64(t->data, dj_tensor_nbytes(&t->desc), 0);
}

int dj_graph_param_hashed(struct dj_graph *g, const char *name, const struct dj_tensor *t,
			  uint64_t hash)
{
	int rc = host_check(g, "param", t);

	if (rc == 0 && (name == NULL || name[0] == '\0'))
		rc = gr_error(g, -EINVAL, "node %d: a parameter needs a name", g->n);
	if (rc == 0 && t->data == NULL && dj_tensor_nbytes(&t->desc) > 0)
		rc = gr_error(g, -EINVAL, "node %d: param '%s' has no data", g->n, name);
	if (rc != 0)
		return rc;
	rc = leaf_new(g, DJ_GRAPH_PARAM, name, &t->desc, t);
	if (rc >= 0)
		g->nodes[rc].hash = hash;
	return rc;
}

int dj_graph_param(struct dj_graph *g, const char *name, const struct dj_tensor *t)
{
	int rc = host_check(g, "param", t);

	if (rc == 0 && t->data == NULL && dj_tensor_nbytes(&t->desc) > 0)
		rc = gr_error(g, -EINVAL, "node %d: param '%s' has no data", g->n,
			      name != NULL ? name : "");
	return rc != 0 ? rc : dj_graph_param_hashed(g, name, t, dj_graph_hash(t));
}

int dj_graph_state(struct dj_graph *g, const char *name, const struct dj_tensor_desc *desc,
		   const struct dj_tensor *init)
{
	if (name == NULL || name[0] == '\0' || desc == NULL || dj_tensor_desc_check(desc) != 0)
		return gr_error(g, -EINVAL, "node %d: state needs a name and a valid description",
				g->n);
	if (init != NULL && (init->mem != DJ_MEM_HOST || !dj_tensor_desc_equal(&init->desc, desc) ||
			     (init->data == NULL && dj_tensor_nbytes(desc) > 0)))
		return gr_error(g, -EINVAL, "node %d: state '%s': init must be a host tensor of "
				"the state's description", g->n, name);
	/* Two nodes of one name must agree on what the tensor is. */
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].kind == DJ_GRAPH_STATE && strcmp(g->nodes[i].name, name) == 0 &&
		    !dj_tensor_desc_equal(&g->nodes[i].desc, desc))
			return gr_error(g, -EINVAL, "node %d: state '%s' is already node %d with "
					"another description", g->n, name, i);
	return leaf_new(g, DJ_GRAPH_STATE, name, desc, init);
}

/* Inputs exist and are not errors; an error passed in is returned as is. */
static int inputs_check(struct dj_graph *g, const char *op, const int *inputs, int n_in)
{
	if (op == NULL)
		return gr_error(g, -EINVAL, "node %d: no operation name", g->n);
	if (n_in < 0 || n_in > DJ_MAX_OP_ARGS || (n_in > 0 && inputs == NULL))
		return gr_error(g, -EINVAL, "node %d: %s: %d inputs (at most %d)", g->n, op, n_in,
				DJ_MAX_OP_ARGS);
	for (int i = 0; i < n_in; i++) {
		if (inputs[i] < 0)
			return inputs[i];
		if (inputs[i] >= g->n)
			return gr_error(g, -EINVAL, "node %d: %s: input %d is node %d, which does "
					"not exist", g->n, op, i, inputs[i]);
	}
	return 0;
}

/* The attributes as compact JSON text ("{}" for none); *json parsed. */
static int attrs_parse(struct dj_graph *g, const char *op, const char *attrs_json, cJSON **json,
		       char **text)
{
	*json = attrs_json != NULL ? cJSON_Parse(attrs_json) : cJSON_CreateObject();
	if (*json == NULL || !cJSON_IsObject(*json)) {
		cJSON_Delete(*json);
		*json = NULL;
		return gr_error(g, -EINVAL, "node %d: %s: attributes are not a JSON object", g->n,
				op);
	}
	*text = cJSON_PrintUnformatted(*json);
	if (*text == NULL) {
		cJSON_Delete(*json);
		return gr_error(g, -ENOMEM, "node %d: out of memory", g->n);
	}
	return 0;
}

/* An in-place write must not touch a parameter: the cached weight would
 * change under every other graph. */
static int write_check(struct dj_graph *g, const char *op, int dst)
{
	const struct gr_node *root = &g->nodes[g->nodes[dst].root];

	if (root->kind == DJ_GRAPH_PARAM)
		return gr_error(g, -EINVAL, "node %d: %s writes in place into parameter '%s' "
				"(node %d), which is read-only", g->n, op, root->name,
				g->nodes[dst].root);
	return 0;
}

static int op_add(struct dj_graph *g, const struct tn_op *top, const char *op, const int *inputs,
		  int n_in, char *attrs_text, const struct dj_tensor_desc *desc, int inferred)
{
	struct gr_node *n;
	char *name = strdup(op);
	int id;

	if (name == NULL) {
		cJSON_free(attrs_text);
		return gr_error(g, -ENOMEM, "node %d: out of memory", g->n);
	}
	id = gr_node_new(g, &n);
	if (id < 0) {
		free(name);
		cJSON_free(attrs_text);
		return id;
	}
	n->kind = DJ_GRAPH_OP;
	n->op = top;
	n->op_name = name;
	n->attrs_json = attrs_text;
	n->n_in = n_in;
	memcpy(n->in, inputs, sizeof(int) * (size_t)n_in);
	n->desc = *desc;
	n->inferred = inferred;
	if (gr_op_in_place(op) && n_in > 0) {
		n->writes = inputs[0];
		n->root = g->nodes[inputs[0]].root;
	}
	return id;
}

int dj_graph_op(struct dj_graph *g, const char *op, const int *inputs, int n_in,
		const char *attrs_json)
{
	struct dj_tensor_desc in[DJ_MAX_OP_ARGS], out;
	const struct tn_op *top;
	struct tn_op_attrs attrs;
	char err[TN_OP_ERR_LEN] = "", *text;
	cJSON *json;
	int rc = inputs_check(g, op, inputs, n_in);

	if (rc != 0)
		return rc;
	top = tn_op_find(op);
	if (top == NULL)
		return gr_error(g, -DJ_EUNKNOWN_OP, "node %d: %s: unknown operation", g->n, op);
	if (gr_op_in_place(op) && n_in > 0 && (rc = write_check(g, op, inputs[0])) != 0)
		return rc;
	rc = attrs_parse(g, op, attrs_json, &json, &text);
	if (rc != 0)
		return rc;
	rc = tn_op_attrs_from_json(top, json, &attrs, err, sizeof(err));
	cJSON_Delete(json);
	for (int i = 0; i < n_in; i++)
		in[i] = g->nodes[inputs[i]].desc;
	if (rc == 0)
		rc = tn_op_infer(top, in, n_in, &attrs, &out, err, sizeof(err));
	if (rc != 0) {
		cJSON_free(text);
		return gr_error(g, rc, "node %d: %s", g->n, err);
	}
	return op_add(g, top, op, inputs, n_in, text, &out, 1);
}

int gr_op_raw(struct dj_graph *g, const char *op_name, const int *inputs, int n_in,
	      const char *attrs_json, const struct dj_tensor_desc *desc)
{
	char *text;
	cJSON *json;
	int rc = inputs_check(g, op_name, inputs, n_in);

	if (rc == 0 && gr_op_in_place(op_name) && n_in > 0)
		rc = write_check(g, op_name, inputs[0]);
	if (rc == 0 && (desc == NULL || dj_tensor_desc_check(desc) != 0))
		rc = gr_error(g, -EINVAL, "node %d: %s: invalid description", g->n, op_name);
	if (rc == 0)
		rc = attrs_parse(g, op_name, attrs_json, &json, &text);
	if (rc != 0)
		return rc;
	cJSON_Delete(json);
	return op_add(g, tn_op_find(op_name), op_name, inputs, n_in, text, desc, 0);
}

int64_t gr_attr_int(const struct gr_node *n, const char *key, int64_t def)
{
	cJSON *json = n->attrs_json != NULL ? cJSON_Parse(n->attrs_json) : NULL;
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(json, key);
	int64_t v = cJSON_IsNumber(it) ? (int64_t)it->valuedouble : def;

	cJSON_Delete(json);
	return v;
}

void dj_graph_last_run(const struct dj_graph *g, struct dj_graph_run_stats *stats)
{
	*stats = g->last;
}
