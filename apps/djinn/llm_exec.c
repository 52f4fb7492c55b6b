/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A lazy graph run node by node through an operation table (llm_exec.h):
 * the LLM demo's baselines "one op per request" (over a dj_conn: a PUT per
 * input, an EXECUTE per operation, a GET per result, FREEs not waited for)
 * and "in-process" (the server's runtime in this process, called through
 * its backend table: no network, no batching, the same operations).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "graph/gr.h"
#include "llm_exec.h"

static int cached(const struct llm_exec *e, const struct dj_graph_node_info *ni)
{
	for (int i = 0; i < e->n_c; i++)
		if (e->c[i].is_state == (ni->kind == DJ_GRAPH_STATE) &&
		    strcmp(e->c[i].name, ni->name) == 0 &&
		    (ni->kind == DJ_GRAPH_STATE || e->c[i].hash == ni->hash))
			return i;
	return -1;
}

static int cache_add(struct llm_exec *e, const struct dj_graph_node_info *ni, uint64_t h)
{
	if (e->n_c == e->cap_c) {
		int cap = e->cap_c > 0 ? e->cap_c * 2 : 64;
		struct llm_exec_cached *grown = realloc(e->c, (size_t)cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		e->c = grown;
		e->cap_c = cap;
	}
	snprintf(e->c[e->n_c].name, sizeof(e->c[0].name), "%s", ni->name);
	e->c[e->n_c].hash = ni->hash;
	e->c[e->n_c].is_state = ni->kind == DJ_GRAPH_STATE;
	e->c[e->n_c++].handle = h;
	return 0;
}

/* Upload a leaf: host data, or zeros for a new state. */
static int leaf(struct llm_exec *e, const struct dj_graph_node_info *ni,
		const struct dj_tensor *host, uint64_t *h)
{
	struct dj_tensor t = {.desc = ni->desc, .mem = DJ_MEM_HOST};
	int rc;

	t.data = host != NULL ? host->data : calloc(1, ni->nbytes + 1);
	if (t.data == NULL)
		return -ENOMEM;
	rc = e->ops->put(e->arg, &t, h);
	e->requests++;
	e->waited++;
	e->bytes_up += ni->nbytes;
	if (host == NULL)
		free(t.data);
	return rc;
}

static int deliver(struct llm_exec *e, uint64_t h, const struct dj_graph_node_info *ni, int x,
		   const int *nodes, int n, struct dj_tensor *out)
{
	for (int i = 0; i < n; i++) {
		int rc;

		if (nodes[i] != x)
			continue;
		if (out[i].data == NULL && (out[i].data = malloc(ni->nbytes + 1)) == NULL)
			return -ENOMEM;
		out[i].desc = ni->desc;
		out[i].mem = DJ_MEM_HOST;
		rc = e->ops->get(e->arg, h, &out[i]);
		e->requests++;
		e->waited++;
		e->bytes_down += ni->nbytes;
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The host tensor of an input or parameter node (the graph borrows it;
 * this app links the graph's internals, as `djinn graph` does). */
static int host_of(struct dj_graph *g, int x, const struct dj_graph_node_info *ni,
		   struct dj_tensor *t)
{
	const struct gr_node *n = &g->nodes[x];

	if (!n->has_host)
		return -EINVAL;
	*t = n->host;
	t->desc = ni->desc;
	return 0;
}

int llm_exec_fetch(struct llm_exec *e, struct dj_graph *g, const int *nodes, int n,
		   struct dj_tensor *out)
{
	int count = dj_graph_node_count(g), rc = 0;
	uint64_t *h = calloc((size_t)count + 1, sizeof(*h));
	uint8_t *temp = calloc((size_t)count + 1, 1);

	if (h == NULL || temp == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int x = 0; x < count && rc == 0; x++) {
		struct dj_graph_node_info ni;
		struct dj_tensor host;
		int c;

		rc = dj_graph_node(g, x, &ni);
		if (rc != 0)
			break;
		switch (ni.kind) {
		case DJ_GRAPH_INPUT:
			rc = host_of(g, x, &ni, &host);
			if (rc == 0)
				rc = leaf(e, &ni, &host, &h[x]);
			temp[x] = rc == 0;
			break;
		case DJ_GRAPH_PARAM:
		case DJ_GRAPH_STATE:
			c = cached(e, &ni);
			if (c >= 0) {
				h[x] = e->c[c].handle;
				break;
			}
			rc = ni.kind == DJ_GRAPH_PARAM ? host_of(g, x, &ni, &host) : 0;
			if (rc == 0)
				rc = leaf(e, &ni, ni.kind == DJ_GRAPH_PARAM ? &host : NULL, &h[x]);
			if (rc == 0)
				rc = cache_add(e, &ni, h[x]);
			break;
		case DJ_GRAPH_OP: {
			uint64_t in[DJ_MAX_OP_ARGS];

			for (int k = 0; k < ni.n_in; k++)
				in[k] = h[ni.inputs[k]];
			rc = e->ops->execute(e->arg, ni.name, in, ni.n_in, ni.attrs_json, &h[x]);
			e->requests++;
			e->waited++;
			/* An in-place op answers with its destination: not ours to free. */
			temp[x] = rc == 0 && ni.writes < 0;
			if (rc != 0)
				snprintf(e->err, sizeof(e->err), "node %d (%s): %s", x, ni.name,
					 dj_strerror(rc));
			if (rc == 0)
				rc = deliver(e, h[x], &ni, x, nodes, n, out);
			break;
		}
		}
	}
out:
	for (int x = 0; temp != NULL && x < count; x++)
		if (temp[x]) {
			e->ops->release(e->arg, h[x]);
			e->requests++;
		}
	free(h);
	free(temp);
	return rc;
}

void llm_exec_clear(struct llm_exec *e)
{
	for (int i = 0; i < e->n_c; i++)
		e->ops->release(e->arg, e->c[i].handle);
	free(e->c);
	e->c = NULL;
	e->n_c = e->cap_c = 0;
}

/* ---- over a session: one request per call ---------------------------------- */

static int conn_put(void *arg, const struct dj_tensor *t, uint64_t *h)
{
	return dj_put(arg, t, h);
}

static int conn_execute(void *arg, const char *op, const uint64_t *in, int n_in,
			const char *attrs, uint64_t *out)
{
	return dj_execute(arg, op, in, n_in, attrs, out, NULL);
}

static int conn_get(void *arg, uint64_t h, struct dj_tensor *t)
{
	return dj_get(arg, h, t);
}

static void conn_release(void *arg, uint64_t h)
{
	struct dj_future *f;

	if (dj_free_async(arg, h, NULL, NULL, &f) == 0)
		dj_future_release(f);
}

static const struct llm_exec_ops conn_ops = {
	.put = conn_put, .execute = conn_execute, .get = conn_get, .release = conn_release,
};

void llm_exec_over_conn(struct llm_exec *e, struct dj_conn *conn)
{
	memset(e, 0, sizeof(*e));
	e->ops = &conn_ops;
	e->arg = conn;
}

/* ---- in this process: the runtime's backend table ---------------------------- */

int llm_inproc_open(struct llm_inproc *ip, const char *gpu)
{
	struct rt_config cfg = {.gpu = gpu};
	char err[CTL_ERRMSG_MAX] = "";
	int rc = rt_create(&cfg, &ip->rt);

	if (rc == 0)
		rc = rt_backend()->session_open(ip->rt, 1, &ip->session, err);
	if (rc != 0)
		fprintf(stderr, "in-process runtime: %s %s\n", dj_strerror(rc), err);
	return rc;
}

void llm_inproc_close(struct llm_inproc *ip)
{
	if (ip->session != NULL)
		rt_backend()->session_close(ip->rt, ip->session);
	rt_destroy(ip->rt);
	memset(ip, 0, sizeof(*ip));
}

static int ip_put(void *arg, const struct dj_tensor *t, uint64_t *h)
{
	struct llm_inproc *ip = arg;
	const struct ctl_backend *be = rt_backend();
	struct ctl_tensor_io io = {0};
	char err[CTL_ERRMSG_MAX] = "";
	uint64_t nbytes = dj_tensor_nbytes(&t->desc);
	int rc = be->alloc(ip->rt, ip->session, &t->desc, h, err);

	if (rc == 0)
		rc = be->write_begin(ip->rt, ip->session, *h, &io, err);
	if (rc != 0)
		return rc;
	if (io.host != NULL)
		memcpy(io.host, t->data, nbytes);
	else
		rc = be->write_chunk(ip->rt, ip->session, &io, 0, t->data, nbytes, err);
	be->write_end(ip->rt, ip->session, &io, rc);
	return rc;
}

static int ip_execute(void *arg, const char *op, const uint64_t *in, int n_in, const char *attrs,
		      uint64_t *out)
{
	struct llm_inproc *ip = arg;
	struct dj_tensor_desc desc[DJ_MAX_OP_ARGS];
	uint64_t outs[DJ_MAX_OP_ARGS];
	char err[CTL_ERRMSG_MAX] = "";
	cJSON *a = cJSON_Parse(attrs != NULL && attrs[0] != '\0' ? attrs : "{}");
	int n_out = 0, rc;

	if (a == NULL)
		return -ENOMEM;
	rc = rt_backend()->execute(ip->rt, ip->session, op, in, n_in, a, outs, desc, &n_out, err);
	cJSON_Delete(a);
	if (rc == 0)
		*out = outs[0];
	return rc;
}

static int ip_get(void *arg, uint64_t h, struct dj_tensor *t)
{
	struct llm_inproc *ip = arg;
	const struct ctl_backend *be = rt_backend();
	struct ctl_tensor_io io = {0};
	char err[CTL_ERRMSG_MAX] = "";
	uint64_t nbytes = dj_tensor_nbytes(&t->desc);
	int rc = be->read_begin(ip->rt, ip->session, h, &io, err);

	if (rc != 0)
		return rc;
	if (io.host != NULL)
		memcpy(t->data, io.host, nbytes);
	else
		rc = be->read_chunk(ip->rt, ip->session, &io, 0, t->data, nbytes, err);
	be->read_end(ip->rt, ip->session, &io);
	return rc;
}

static void ip_release(void *arg, uint64_t h)
{
	struct llm_inproc *ip = arg;
	char err[CTL_ERRMSG_MAX] = "";

	rt_backend()->free(ip->rt, ip->session, h, err);
}

static const struct llm_exec_ops inproc_ops = {
	.put = ip_put, .execute = ip_execute, .get = ip_get, .release = ip_release,
};

void llm_exec_over_inproc(struct llm_exec *e, struct llm_inproc *ip)
{
	memset(e, 0, sizeof(*e));
	e->ops = &inproc_ops;
	e->arg = ip;
}
