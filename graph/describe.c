/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The annotated graph as text (dj_graph_describe, `djinn graph --explain`):
 * one line per node with its kind, operation, inputs, description,
 * residency, pattern and role, and where the last fetch placed it; then the
 * recognised patterns one per line, and the phase with its reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gr.h"

static void node_line(FILE *f, const struct dj_graph *g, int id)
{
	const struct gr_node *n = &g->nodes[id];
	char what[96], ins[64] = "", shape[96], ann[64] = "";
	size_t off = 0;

	if (n->kind == DJ_GRAPH_OP)
		snprintf(what, sizeof(what), "%s%s%s", n->op_name,
			 strcmp(n->attrs_json, "{}") != 0 ? " " : "",
			 strcmp(n->attrs_json, "{}") != 0 ? n->attrs_json : "");
	else if (n->kind == DJ_GRAPH_PARAM)
		snprintf(what, sizeof(what), "%s #%016llx", n->name, (unsigned long long)n->hash);
	else
		snprintf(what, sizeof(what), "%s", n->name != NULL ? n->name : "-");
	for (int k = 0; k < n->n_in && off < sizeof(ins); k++)
		off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%s%%%d", k > 0 ? " " : "",
					n->in[k]);
	dj_shape_format(&n->desc, shape, sizeof(shape));
	if (n->patterns & (DJ_PAT_ATTENTION | DJ_PAT_MLP))
		snprintf(ann, sizeof(ann), "%s#%d:%s", n->patterns & DJ_PAT_ATTENTION ? "attention" :
			 "mlp", n->block, n->role);
	else if (n->patterns & DJ_PAT_NORM)
		snprintf(ann, sizeof(ann), "norm");
	else if (n->patterns & DJ_PAT_KV_APPEND)
		snprintf(ann, sizeof(ann), "kv_append->%s", g->nodes[n->root].name);
	fprintf(f, "  %%%-3d %-5s %-34s %-11s %-8s %-16s %-20s %s", id, dj_graph_kind_name(n->kind),
		what, ins, dj_dtype_name(n->desc.dtype), shape, dj_graph_residency_name(n->residency),
		ann);
	if (n->server >= 0)
		fprintf(f, " @s%d", n->server);
	if (!n->inferred)
		fprintf(f, " (description given, not inferred)");
	fputc('\n', f);
}

/* One attention or MLP instance: its nodes with their roles. */
static void block_line(FILE *f, const struct dj_graph *g, int block)
{
	const char *sep = "";
	int attention = 0, fused = 0;

	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].block == block) {
			attention |= (g->nodes[i].patterns & DJ_PAT_ATTENTION) != 0;
			fused |= strcmp(g->nodes[i].role, "sdpa") == 0;
		}
	fprintf(f, "  %s#%d%s:", attention ? "attention" : "mlp", block,
		!attention ? "" : fused ? " (fused)" : " (unfused)");
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].block == block) {
			fprintf(f, "%s %%%d %s", sep, i, g->nodes[i].role);
			sep = ",";
		}
	fputc('\n', f);
}

static void patterns(FILE *f, const struct dj_graph *g)
{
	int blocks = g->annot.n_attention + g->annot.n_mlp, norms = 0;

	fprintf(f, "patterns:\n");
	for (int b = 0; b < blocks; b++)
		block_line(f, g, b);
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].patterns & DJ_PAT_NORM)
			fprintf(f, "%s %%%d %s", norms++ == 0 ? "  norm:" : ",", i, g->nodes[i].op_name);
	if (norms > 0)
		fputc('\n', f);
	for (int i = 0; i < g->n; i++) {
		const struct gr_node *n = &g->nodes[i];

		if (n->patterns & DJ_PAT_KV_APPEND)
			fprintf(f, "  kv_append: %%%d writes state '%s' (node %d) %s\n", i,
				g->nodes[n->root].name, n->root, n->attrs_json);
	}
	if (blocks == 0 && norms == 0 && g->annot.n_appends == 0)
		fprintf(f, "  none\n");
}

char *dj_graph_describe(struct dj_graph *g)
{
	int count[4] = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (gr_annotate(g) != 0)
		return NULL;
	f = open_memstream(&text, &len);
	if (f == NULL)
		return NULL;
	for (int i = 0; i < g->n; i++)
		count[g->nodes[i].kind]++;
	fprintf(f, "graph: %d nodes (%d inputs, %d params, %d states, %d ops), phase %s: %s\n",
		g->n, count[DJ_GRAPH_INPUT], count[DJ_GRAPH_PARAM], count[DJ_GRAPH_STATE],
		count[DJ_GRAPH_OP], dj_graph_phase_name(g->annot.phase), g->annot.reason);
	fprintf(f, "  %-4s %-5s %-34s %-11s %-8s %-16s %-20s %s\n", "id", "kind", "name / op",
		"inputs", "dtype", "shape", "residency", "pattern");
	for (int i = 0; i < g->n; i++)
		node_line(f, g, i);
	patterns(f, g);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
