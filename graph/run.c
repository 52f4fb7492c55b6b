/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Running a graph: the context (servers, placement, the cache of parameters
 * and state on each server) and dj_graph_fetch(), which annotates, places,
 * plans (plan.c) and sends the plan's waves:
 *
 *   wave 0      PUTs of uploads too large to ride inside a batch (if any);
 *   wave 1..n   one stage each: every server's batch of that stage sent at
 *               once (dj_execute_batch_async), then all awaited;
 *   last wave   GETs of state nodes asked for themselves (if any).
 *
 * Each wave is one round trip, whatever the number of servers in it; one
 * server and nothing too large makes a fetch exactly one. Tensors left on a
 * server after their batch (read by handle by a later stage) are freed at
 * the end with FREE requests nobody waits for. Every wait is bounded by
 * the connection's own request_timeout_ms (run_wait).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gr.h"

/* A parameter or state the context keeps on a server. */
struct gr_cached {
	char *name;
	int is_state;
	uint64_t hash;
	struct dj_tensor_desc desc;
	int server;
	uint64_t handle;
};

struct dj_graph_ctx {
	struct dj_graph_options o;
	struct dj_conn *conn[GR_MAX_SERVERS];
	uint64_t session[GR_MAX_SERVERS];
	/* Per server, the device its new tensors go to ("": the session's),
	 * and its session's first server (servers sharing a session are
	 * devices of one djinn-dp: tensors cross between them by to_device). */
	char dev[GR_MAX_SERVERS][DJ_GRAPH_DEVICE_MAX];
	int same[GR_MAX_SERVERS];
	int n_servers;
	pthread_mutex_t lock;
	struct gr_cached *c;
	int n_c, cap_c;
	struct dj_graph_run_stats total;
	/* State moves not yet counted in a fetch: the next one takes them. */
	struct dj_graph_run_stats moved;
};

void dj_graph_options_init(struct dj_graph_options *o)
{
	memset(o, 0, sizeof(*o));
	o->inline_max = DJ_BATCH_PUT_MAX;
}

int dj_graph_ctx_create(const struct dj_graph_options *opts, struct dj_conn *const *servers,
			int n_servers, struct dj_graph_ctx **ctx)
{
	struct dj_graph_ctx *c;

	if (servers == NULL || n_servers <= 0 || n_servers > GR_MAX_SERVERS)
		return -EINVAL;
	for (int s = 0; s < n_servers; s++)
		if (servers[s] == NULL)
			return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (opts != NULL)
		c->o = *opts;
	else
		dj_graph_options_init(&c->o);
	if (c->o.inline_max > DJ_BATCH_PUT_MAX)
		c->o.inline_max = DJ_BATCH_PUT_MAX;
	c->n_servers = n_servers;
	for (int s = 0; s < n_servers; s++) {
		const char *d = opts != NULL && opts->devices != NULL ? opts->devices[s] : NULL;

		c->conn[s] = servers[s];
		c->session[s] = dj_conn_session_id(servers[s]);
		c->same[s] = s;
		for (int t = 0; t < s && c->same[s] == s; t++)
			c->same[s] = servers[t] == servers[s] ? t : s;
		if (d != NULL && strlen(d) >= sizeof(c->dev[s])) {
			free(c);
			return -EINVAL;
		}
		snprintf(c->dev[s], sizeof(c->dev[s]), "%s", d != NULL ? d : "");
	}
	/* Servers of one session must name their devices, each another. */
	for (int s = 0; s < n_servers; s++)
		for (int t = 0; t < s; t++)
			if (c->same[s] == c->same[t] &&
			    (c->dev[s][0] == '\0' || strcmp(c->dev[s], c->dev[t]) == 0)) {
				free(c);
				return -EINVAL;
			}
	c->o.devices = NULL;
	/* Recursive: a placer called inside a fetch (lock held) reads the
	 * caches through dj_graph_node(), which locks too. */
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&c->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	*ctx = c;
	return 0;
}

static void cached_remove(struct dj_graph_ctx *c, int i)
{
	free(c->c[i].name);
	c->c[i] = c->c[--c->n_c];
}

void dj_graph_ctx_destroy(struct dj_graph_ctx *c)
{
	if (c == NULL)
		return;
	while (c->n_c > 0) {
		dj_free(c->conn[c->c[0].server], c->c[0].handle);
		cached_remove(c, 0);
	}
	free(c->c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int dj_graph_ctx_servers(const struct dj_graph_ctx *c)
{
	return c->n_servers;
}

static void stats_add(struct dj_graph_run_stats *t, const struct dj_graph_run_stats *s);

void dj_graph_ctx_stats(struct dj_graph_ctx *c, struct dj_graph_run_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->total;
	stats_add(st, &c->moved);
	pthread_mutex_unlock(&c->lock);
}

static int state_find(const struct dj_graph_ctx *c, const char *name)
{
	for (int i = 0; i < c->n_c; i++)
		if (c->c[i].is_state && strcmp(c->c[i].name, name) == 0)
			return i;
	return -1;
}

static int param_find(const struct dj_graph_ctx *c, const struct gr_node *n, int server)
{
	for (int i = 0; i < c->n_c; i++) {
		const struct gr_cached *e = &c->c[i];

		if (!e->is_state && e->server == server && e->hash == n->hash &&
		    strcmp(e->name, n->name) == 0 && dj_tensor_desc_equal(&e->desc, &n->desc))
			return i;
	}
	return -1;
}

int dj_graph_ctx_state_where(struct dj_graph_ctx *c, const char *name, int *server,
			     uint64_t *handle)
{
	int i, rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	i = state_find(c, name);
	if (i >= 0) {
		*server = c->c[i].server;
		*handle = c->c[i].handle;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int dj_graph_ctx_state_drop(struct dj_graph_ctx *c, const char *name)
{
	int i, rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	i = state_find(c, name);
	if (i >= 0) {
		rc = dj_free(c->conn[c->c[i].server], c->c[i].handle);
		cached_remove(c, i);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* A copy of tensor h of server s's session on s's device (to_device: a
 * device copy on the server), its handle in *out; h stays. */
static int copy_to_device(struct dj_graph_ctx *c, int s, uint64_t h, uint64_t *out)
{
	struct dj_batch_op op = {.op = "to_device", .n_in = 1, .device = c->dev[s]};
	char txt[20];

	snprintf(txt, sizeof(txt), "0x%" PRIx64, h);
	op.inputs[0] = txt;
	return dj_execute_batch(c->conn[s], &op, 1, out);
}

/* Free h on server s without waiting. */
static void free_later(struct dj_graph_ctx *c, int s, uint64_t h)
{
	struct dj_future *f;

	if (dj_free_async(c->conn[s], h, NULL, NULL, &f) == 0)
		dj_future_release(f);
}

/* A tensor that landed on server s's session device (a PUT, a fleet
 * move): where s names another device, it goes there by to_device and the
 * first copy is freed. *h becomes the new handle (0 where the copy
 * failed). */
static int device_settle(struct dj_graph_ctx *c, int s, uint64_t *h)
{
	uint64_t moved = 0;
	int rc;

	if (c->dev[s][0] == '\0' || strcmp(c->dev[s], dj_conn_device(c->conn[s])) == 0)
		return 0;
	rc = copy_to_device(c, s, *h, &moved);
	free_later(c, s, *h);
	*h = rc == 0 ? moved : 0;
	return rc;
}

/* Move through the client: the bytes come down from one server and go up
 * to the other; the source is freed once the target holds them. */
static int move_through_client(struct dj_graph_ctx *c, const struct gr_cached *e, int to,
			       uint64_t *handle)
{
	uint64_t nbytes = dj_tensor_nbytes(&e->desc);
	struct dj_tensor t = {.desc = e->desc, .mem = DJ_MEM_HOST, .data = malloc(nbytes + 1)};
	int rc;

	if (t.data == NULL)
		return -ENOMEM;
	rc = dj_get(c->conn[e->server], e->handle, &t);
	if (rc == 0)
		rc = dj_put(c->conn[to], &t, handle);
	if (rc == 0)
		rc = device_settle(c, to, handle);
	if (rc == 0)
		free_later(c, e->server, e->handle);
	if (rc == 0) {
		c->moved.bytes_down += nbytes;
		c->moved.bytes_up += nbytes;
		c->moved.kv_bytes_through_client += nbytes;
	}
	free(t.data);
	return rc;
}

/* Move between two devices of one session: a to_device on the server (a
 * device copy: peer to peer, or staged through its pinned host memory),
 * then the source freed; the bytes never leave the server. */
static int move_on_device(struct dj_graph_ctx *c, const struct gr_cached *e, int to,
			  uint64_t *handle)
{
	int rc = copy_to_device(c, to, e->handle, handle);

	if (rc == 0)
		free_later(c, e->server, e->handle);
	return rc;
}

int dj_graph_ctx_state_move(struct dj_graph_ctx *c, const char *name, int to, uint64_t *moved)
{
	const struct dj_graph_mover *mv = c->o.mover;
	struct gr_cached *e;
	uint64_t h = 0;
	int i, rc;

	if (moved != NULL)
		*moved = 0;
	if (name == NULL || to < 0 || to >= c->n_servers)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	i = state_find(c, name);
	rc = i < 0 ? -ENOENT : 0;
	e = i >= 0 ? &c->c[i] : NULL;
	if (rc == 0 && e->server != to) {
		if (c->same[e->server] == c->same[to]) {
			rc = move_on_device(c, e, to, &h);
		} else if (mv != NULL && mv->move != NULL) {
			/* The mover lands it on the session's device. */
			rc = mv->move(mv->arg, e->server, e->handle, to, &e->desc, &h);
			if (rc == 0)
				rc = device_settle(c, to, &h);
		} else {
			rc = move_through_client(c, e, to, &h);
		}
		if (rc == 0) {
			e->server = to;
			e->handle = h;
			c->moved.state_moves++;
			c->moved.kv_bytes_moved += dj_tensor_nbytes(&e->desc);
			if (moved != NULL)
				*moved = dj_tensor_nbytes(&e->desc);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int dj_graph_ctx_server_lost(struct dj_graph_ctx *c, int server)
{
	int states = 0;

	if (server < 0 || server >= c->n_servers)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (int i = c->n_c - 1; i >= 0; i--)
		if (c->c[i].server == server) {
			states += c->c[i].is_state;
			cached_remove(c, i);
		}
	pthread_mutex_unlock(&c->lock);
	return states;
}

uint64_t gr_ctx_resident(struct dj_graph_ctx *c, const struct gr_node *n)
{
	uint64_t mask = 0;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (n->kind == DJ_GRAPH_STATE) {
		int i = state_find(c, n->name);

		if (i >= 0 && dj_tensor_desc_equal(&c->c[i].desc, &n->desc))
			mask = 1ull << c->c[i].server;
	} else if (n->kind == DJ_GRAPH_PARAM) {
		for (int s = 0; s < c->n_servers; s++)
			if (param_find(c, n, s) >= 0)
				mask |= 1ull << s;
	}
	pthread_mutex_unlock(&c->lock);
	return mask;
}

static uint64_t view_resident(void *arg, const struct gr_node *n)
{
	return gr_ctx_resident(arg, n);
}

/* A session that changed (the server restarted, or the connection was
 * resumed into a new session) holds none of what the cache says. */
static void sessions_check(struct dj_graph_ctx *c)
{
	for (int s = 0; s < c->n_servers; s++) {
		uint64_t id = dj_conn_session_id(c->conn[s]);

		if (id == c->session[s])
			continue;
		c->session[s] = id;
		for (int i = c->n_c - 1; i >= 0; i--)
			if (c->c[i].server == s)
				cached_remove(c, i);
	}
}

/* Remember a param or state just made on server s. A parameter of the same
 * name there with other contents is an older version: freed. */
static int cache_add(struct dj_graph_ctx *c, const struct gr_node *n, int s, uint64_t handle)
{
	struct gr_cached *e;

	for (int i = c->n_c - 1; i >= 0; i--)
		if (!c->c[i].is_state && n->kind == DJ_GRAPH_PARAM && c->c[i].server == s &&
		    strcmp(c->c[i].name, n->name) == 0) {
			struct dj_future *f;

			if (dj_free_async(c->conn[s], c->c[i].handle, NULL, NULL, &f) == 0)
				dj_future_release(f);
			cached_remove(c, i);
		}
	if (c->n_c == c->cap_c) {
		int cap = c->cap_c > 0 ? c->cap_c * 2 : 16;
		struct gr_cached *grown = realloc(c->c, (size_t)cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		c->c = grown;
		c->cap_c = cap;
	}
	e = &c->c[c->n_c];
	e->name = strdup(n->name);
	if (e->name == NULL)
		return -ENOMEM;
	e->is_state = n->kind == DJ_GRAPH_STATE;
	e->hash = n->hash;
	e->desc = n->desc;
	e->server = s;
	e->handle = handle;
	c->n_c++;
	return 0;
}

/* ---- one fetch ------------------------------------------------------------- */

/* calloc that never returns NULL for want of elements. */
static void *calloc_n(size_t n, size_t size)
{
	return calloc(n > 0 ? n : 1, size);
}


struct run {
	struct dj_graph *g;
	struct dj_graph_ctx *c;
	struct gr_plan p;
	const int *nodes;
	int n;
	struct dj_tensor *out;
	uint8_t *allocated;           /* out[i].data malloc'ed here */
	uint64_t *loc;                /* loc[s * n_nodes + x]: x's handle on server s */
	uint8_t **fetched;            /* per batch: the reply's fetched bytes */
	const uint8_t **xfer;         /* per node: its bytes, fetched to move them */
	void **scratch;               /* zeros for new state, per node */
	struct dj_graph_run_stats st;
	int rc;
};

static uint64_t *loc_at(struct run *r, int s, int x)
{
	return &r->loc[(size_t)s * (size_t)r->g->n + (size_t)x];
}

/* The first failure of the run, kept with its message. */
static int run_fail(struct run *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int run_fail(struct run *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (r->rc != 0)
		return rc;
	r->rc = rc;
	va_start(ap, fmt);
	vsnprintf(r->g->err, sizeof(r->g->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* The server whose request failed first (the scheduler's recovery asks). */
static void failed_at(struct run *r, int server)
{
	if (r->g->failed_server < 0)
		r->g->failed_server = server;
}

/* The bytes a put entry (or separate PUT) of node x sends. */
static int put_tensor(struct run *r, int x, enum gr_put_src src, struct dj_tensor *t)
{
	const struct gr_node *n = &r->g->nodes[x];

	*t = (struct dj_tensor){.desc = n->desc, .mem = DJ_MEM_HOST, .data = n->host.data};
	if (src == GR_PUT_TRANSFER) {
		t->data = (void *)r->xfer[x];
	} else if (src == GR_PUT_STATE_INIT && !n->has_host) {
		if (r->scratch[x] == NULL)
			r->scratch[x] = calloc(1, dj_tensor_nbytes(&n->desc) + 1);
		t->data = r->scratch[x];
	}
	return t->data != NULL || dj_tensor_nbytes(&n->desc) == 0 ? 0 : -ENOMEM;
}

/* Copy node x's bytes into every out[i] asking for it. */
static void deliver(struct run *r, int x, const void *bytes)
{
	for (int i = 0; i < r->n; i++)
		if (r->nodes[i] == x)
			memcpy(r->out[i].data, bytes, dj_tensor_nbytes(&r->g->nodes[x].desc));
}

static const char no_answer[] = "no answer within the connection's request timeout: the "
	"request and its connection were abandoned (the next ping, stats, describe or get "
	"reconnects)";

/*
 * The result of f, waited for at most its request's own timeout (the
 * connection's request_timeout_ms; none where that is 0); *why: its words
 * where it failed. A request still unanswered then is abandoned with its
 * connection (dj_future_abandon): its late reply must not land in a buffer
 * the run frees (a batch's fetched bytes) or hands back (a GET's), and the
 * future then completes, so that releasing it leaves nothing pending.
 */
static int run_wait(struct dj_future *f, const char **why)
{
	int rc = dj_future_wait(f, -1);

	if (rc == -ETIMEDOUT && dj_future_abandon(f) == 0) {
		/* The reader fails it at once (its socket is shut down). */
		dj_future_wait(f, 10000);
		*why = no_answer;
		return -ETIMEDOUT;
	}
	*why = rc == 0 ? "" : dj_future_error(f)[0] != '\0' ? dj_future_error(f) :
	       dj_strerror(rc);
	return rc;
}

/* Uploads too large for a batch: PUT, all at once, before the batches. */
static void wave_separate(struct run *r)
{
	struct gr_plan *p = &r->p;
	struct dj_future **f = calloc((size_t)p->n_sep, sizeof(*f));

	if (f == NULL) {
		run_fail(r, -ENOMEM, "fetch: out of memory");
		return;
	}
	for (int k = 0; k < p->n_sep; k++) {
		const struct gr_sep_put *sp = &p->sep[k];
		struct dj_tensor t;
		int rc = put_tensor(r, sp->node, sp->src, &t);

		if (rc == 0)
			rc = dj_put_async(r->c->conn[sp->server], &t, NULL, NULL, &f[k]);
		if (rc != 0) {
			failed_at(r, sp->server);
			run_fail(r, rc, "node %d: upload to server %d: %s", sp->node, sp->server,
				 dj_strerror(rc));
		}
		else
			r->st.bytes_up += dj_tensor_nbytes(&t.desc);
	}
	for (int k = 0; k < p->n_sep; k++) {
		const struct gr_sep_put *sp = &p->sep[k];
		const struct gr_node *n = &r->g->nodes[sp->node];
		const char *why;
		uint64_t h = 0;
		int rc;

		if (f[k] == NULL)
			continue;
		rc = run_wait(f[k], &why);
		if (rc == 0)
			rc = dj_future_handle(f[k], &h, NULL);
		if (rc == 0)
			rc = device_settle(r->c, sp->server, &h);
		if (rc != 0) {
			failed_at(r, sp->server);
			run_fail(r, rc, "node %d: upload to server %d: %s", sp->node, sp->server,
				 why[0] != '\0' ? why : dj_strerror(rc));
		}
		dj_future_release(f[k]);
		if (rc != 0)
			continue;
		*loc_at(r, sp->server, sp->node) = h;
		r->st.puts_separate++;
		if (n->kind == DJ_GRAPH_PARAM || n->kind == DJ_GRAPH_STATE) {
			cache_add(r->c, n, sp->server, h);
			r->st.params_uploaded += n->kind == DJ_GRAPH_PARAM;
			r->st.states_created += n->kind == DJ_GRAPH_STATE;
		}
	}
	r->st.round_trips++;
	free(f);
}

/* The request of batch bi: its entries, inputs as "$k" or handle text. */
static int batch_ops(struct run *r, int bi, struct dj_batch_op *ops, struct dj_tensor *puts,
		     char (*txt)[20])
{
	const struct gr_batch *b = &r->p.b[bi];

	for (int k = 0; k < b->n; k++) {
		const struct gr_entry *e = &b->e[k];
		const struct gr_node *n = &r->g->nodes[e->node];

		ops[k].fetch = e->fetch;
		ops[k].free = e->free;
		ops[k].n_free = e->n_free;
		ops[k].device = r->c->dev[b->server][0] != '\0' ? r->c->dev[b->server] : NULL;
		if (e->is_put && e->src == GR_PUT_PEER) {
			uint64_t h = *loc_at(r, e->peer_from, e->node);
			char *t = txt[k * DJ_MAX_OP_ARGS];

			if (h == 0)
				return run_fail(r, -EIO, "node %d: no tensor on server %d to copy "
						"(internal error)", e->node, e->peer_from);
			snprintf(t, 20, "0x%" PRIx64, h);
			ops[k].op = "to_device";
			ops[k].inputs[0] = t;
			ops[k].n_in = 1;
			continue;
		}
		if (e->is_put) {
			int rc = put_tensor(r, e->node, e->src, &puts[k]);

			if (rc != 0)
				return rc;
			ops[k].put = &puts[k];
			continue;
		}
		ops[k].op = n->op_name;
		ops[k].attrs_json = n->attrs_json;
		ops[k].n_in = n->n_in;
		/* An operation runs where its inputs are; one without inputs
		 * makes its output on the server's device (an in-place write
		 * may name none). */
		if (n->n_in > 0)
			ops[k].device = NULL;
		for (int j = 0; j < n->n_in; j++) {
			char *t = txt[k * DJ_MAX_OP_ARGS + j];
			uint64_t h = e->in_entry[j] < 0 ? *loc_at(r, b->server, e->in_node[j]) : 0;

			if (e->in_entry[j] >= 0)
				snprintf(t, 20, "$%d", e->in_entry[j]);
			else if (h != 0)
				snprintf(t, 20, "0x%" PRIx64, h);
			else
				return run_fail(r, -EIO, "node %d: input %d has no tensor on its "
						"server (internal error)", e->node, j);
			ops[k].inputs[j] = t;
		}
	}
	return 0;
}

static int batch_send(struct run *r, int bi, struct dj_future **f)
{
	const struct gr_batch *b = &r->p.b[bi];
	struct dj_batch_op *ops = calloc_n((size_t)b->n, sizeof(*ops));
	struct dj_tensor *puts = calloc_n((size_t)b->n, sizeof(*puts));
	char (*txt)[20] = calloc_n((size_t)b->n * DJ_MAX_OP_ARGS, 20);
	int rc = -ENOMEM;

	r->fetched[bi] = malloc(b->fetch_len + 1);
	if (ops == NULL || puts == NULL || txt == NULL || r->fetched[bi] == NULL)
		goto out;
	rc = batch_ops(r, bi, ops, puts, txt);
	if (rc == 0)
		rc = dj_execute_batch_async(r->c->conn[b->server], ops, b->n, r->fetched[bi],
					    b->fetch_len, NULL, NULL, f);
	if (rc == 0)
		r->st.bytes_up += b->inline_bytes;
out:
	if (rc != 0) {
		failed_at(r, b->server);
		run_fail(r, rc, "batch %d for server %d: %s", bi, b->server, dj_strerror(rc));
	}
	free(ops);
	free(puts);
	free(txt);
	return rc;
}

/* A server's "batch op 3: ..." names entry 3: say which node that is. */
static void batch_error(struct run *r, int bi, int rc, const char *msg)
{
	const struct gr_batch *b = &r->p.b[bi];
	int k = 0;
	const char *rest = msg;
	char buf[GR_ERR_LEN];

	if (sscanf(msg, "batch op %d:", &k) == 1 && strchr(msg, ':') != NULL)
		rest = strchr(msg, ':') + 2;
	if (k < 0 || k >= b->n)
		k = 0;
	snprintf(buf, sizeof(buf), "%s: %s", b->e[k].is_put ? "put" :
		 r->g->nodes[b->e[k].node].op_name, rest);
	failed_at(r, b->server);
	run_fail(r, rc, "node %d on server %d: %s", b->e[k].node, b->server, buf);
}

/* A batch came back: its handles, its cached uploads, its fetched bytes. */
static void batch_done(struct run *r, int bi, struct dj_future *f)
{
	const struct gr_batch *b = &r->p.b[bi];
	uint64_t *h = calloc_n((size_t)b->n, sizeof(*h));
	const char *why;
	int rc = run_wait(f, &why);

	if (rc == 0 && h == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = dj_future_batch_handles(f, h, b->n) == b->n ? 0 : -EBADMSG;
	if (rc != 0 && why == no_answer) {
		/* No entry failed: the request as a whole went unanswered. */
		failed_at(r, b->server);
		run_fail(r, rc, "server %d: a batch of %d entries: %s", b->server, b->n, why);
	} else if (rc != 0) {
		batch_error(r, bi, rc, why[0] != '\0' ? why : dj_strerror(rc));
		free(h);
		return;
	}
	for (int k = 0; k < b->n; k++) {
		const struct gr_entry *e = &b->e[k];
		const struct gr_node *n = &r->g->nodes[e->node];

		*loc_at(r, b->server, e->node) = h[k];
		r->st.frees_inline += e->n_free;
		if (e->is_put && e->src == GR_PUT_PEER) {
			r->st.ops++;
		} else if (e->is_put) {
			r->st.puts_inline++;
			if (e->keep && cache_add(r->c, n, b->server, h[k]) != 0)
				run_fail(r, -ENOMEM, "node %d on server %d: out of memory", e->node,
					 b->server);
			r->st.params_uploaded += e->keep && n->kind == DJ_GRAPH_PARAM;
			r->st.states_created += e->keep && n->kind == DJ_GRAPH_STATE;
		} else {
			r->st.ops++;
		}
		if (!e->fetch)
			continue;
		if (r->p.transfer[e->node])
			r->xfer[e->node] = r->fetched[bi] + e->fetch_off;
		deliver(r, e->node, r->fetched[bi] + e->fetch_off);
	}
	r->st.bytes_down += b->fetch_len;
	free(h);
}

static void wave_stage(struct run *r, int stage)
{
	struct dj_future **f = calloc_n((size_t)r->p.n_batches, sizeof(*f));

	if (f == NULL) {
		run_fail(r, -ENOMEM, "fetch: out of memory");
		return;
	}
	for (int bi = 0; bi < r->p.n_batches; bi++)
		if (r->p.b[bi].stage == stage)
			batch_send(r, bi, &f[bi]);
	for (int bi = 0; bi < r->p.n_batches; bi++) {
		if (f[bi] == NULL)
			continue;
		batch_done(r, bi, f[bi]);
		dj_future_release(f[bi]);
	}
	r->st.round_trips++;
	free(f);
}

/* State nodes asked for themselves: their value after the run, by GET. */
static void wave_gets(struct run *r)
{
	struct dj_future **f = calloc_n((size_t)r->n, sizeof(*f));
	int any = 0;

	for (int i = 0; i < r->n && f != NULL; i++) {
		const struct gr_node *n = &r->g->nodes[r->nodes[i]];
		int c = n->kind == DJ_GRAPH_STATE ? state_find(r->c, n->name) : -1;
		int rc;

		if (n->kind != DJ_GRAPH_STATE)
			continue;
		if (c < 0) {
			run_fail(r, -ENOENT, "node %d: state '%s' does not exist yet (no run "
				 "created it)", r->nodes[i], n->name);
			continue;
		}
		rc = dj_get_async(r->c->conn[r->c->c[c].server], r->c->c[c].handle, &r->out[i],
				  NULL, NULL, &f[i]);
		if (rc != 0) {
			failed_at(r, r->c->c[c].server);
			run_fail(r, rc, "node %d: GET from server %d: %s", r->nodes[i],
				 r->c->c[c].server, dj_strerror(rc));
		}
		any = 1;
	}
	for (int i = 0; i < r->n && f != NULL; i++) {
		const char *why;
		int rc;

		if (f[i] == NULL)
			continue;
		rc = run_wait(f[i], &why);
		if (rc != 0) {
			int c = state_find(r->c, r->g->nodes[r->nodes[i]].name);

			if (c >= 0)
				failed_at(r, r->c->c[c].server);
			run_fail(r, rc, "node %d: GET: %s", r->nodes[i], why);
		}
		r->st.gets++;
		r->st.bytes_down += dj_tensor_nbytes(&r->out[i].desc);
		dj_future_release(f[i]);
	}
	r->st.round_trips += any;
	free(f);
}

/* What stayed on a server for a later stage, and inputs PUT on their own:
 * freed now, without waiting (the next request on the connection follows
 * them anyway). */
static void free_leftovers(struct run *r)
{
	const struct gr_plan *p = &r->p;

	for (int x = 0; x < r->g->n; x++)
		for (int s = 0; s < r->c->n_servers; s++) {
			int leftover = p->linger[x] >> s & 1;
			uint64_t *h = loc_at(r, s, x);
			struct dj_future *f;

			for (int k = 0; k < p->n_sep && !leftover; k++)
				leftover = p->sep[k].server == s && p->sep[k].node == x &&
					   r->g->nodes[x].kind == DJ_GRAPH_INPUT;
			if (!leftover || *h == 0)
				continue;
			if (dj_free_async(r->c->conn[s], *h, NULL, NULL, &f) == 0) {
				dj_future_release(f);
				r->st.frees_async++;
			}
			*h = 0;
		}
}

/* Parameters the run finds on their servers already (before any wave):
 * each read by handle there, once per batch. */
static int count_reused(struct run *r)
{
	uint8_t *seen = calloc_n((size_t)r->g->n, 1);

	if (seen == NULL)
		return -ENOMEM;
	for (int bi = 0; bi < r->p.n_batches; bi++) {
		const struct gr_batch *b = &r->p.b[bi];

		memset(seen, 0, (size_t)r->g->n);
		for (int k = 0; k < b->n; k++)
			for (int j = 0; !b->e[k].is_put && j < r->g->nodes[b->e[k].node].n_in; j++) {
				int x = b->e[k].in_node[j];

				if (b->e[k].in_entry[j] >= 0 || seen[x] ||
				    r->g->nodes[x].kind != DJ_GRAPH_PARAM)
					continue;
				seen[x] = 1;
				r->st.params_reused += *loc_at(r, b->server, x) != 0;
			}
	}
	free(seen);
	return 0;
}

/* Checks before anything is sent: inputs have data, state agrees with the
 * context, out[] can take the results. */
static int run_check(struct run *r)
{
	struct dj_graph *g = r->g;

	for (int x = 0; x < g->n; x++) {
		const struct gr_node *n = &g->nodes[x];
		int c = n->kind == DJ_GRAPH_STATE ? state_find(r->c, n->name) : -1;

		if (!r->p.needed[x])
			continue;
		if (n->kind == DJ_GRAPH_INPUT && !n->has_host)
			return gr_error(g, -EINVAL, "fetch: input %d ('%s') has no data "
					"(dj_graph_bind)", x, n->name != NULL ? n->name : "");
		if (c >= 0 && !dj_tensor_desc_equal(&r->c->c[c].desc, &n->desc))
			return gr_error(g, -EINVAL, "fetch: state '%s' (node %d) exists with "
					"another description", n->name, x);
	}
	for (int i = 0; i < r->n; i++) {
		const struct dj_tensor_desc *d = &g->nodes[r->nodes[i]].desc;

		if (r->out[i].data == NULL) {
			r->out[i].data = malloc(dj_tensor_nbytes(d) + 1);
			if (r->out[i].data == NULL)
				return gr_error(g, -ENOMEM, "fetch: out of memory");
			r->allocated[i] = 1;
		}
		r->out[i].desc = *d;
		r->out[i].mem = DJ_MEM_HOST;
	}
	return 0;
}

/* Default placement (server 0; state where it lives), then the placer's;
 * each op node remembers its server (dj_graph_node). */
static int place(struct dj_graph *g, struct dj_graph_ctx *c, const struct dj_graph_placer *pl,
		 struct gr_plan *p)
{
	char why[GR_ERR_LEN] = "";
	int rc = 0;

	for (int x = 0; x < g->n; x++) {
		const struct gr_node *n = &g->nodes[x];
		uint64_t res = n->kind == DJ_GRAPH_STATE ? gr_ctx_resident(c, n) : 0;

		p->server[x] = res != 0 ? __builtin_ctzll(res) : 0;
		/* An op writing or reading a state runs beside it. */
		for (int k = 0; n->kind == DJ_GRAPH_OP && k <= n->n_in; k++) {
			int r = k < n->n_in ? g->nodes[n->in[k]].root : n->root;

			if (g->nodes[r].kind == DJ_GRAPH_STATE)
				p->server[x] = p->server[r];
		}
	}
	if (pl != NULL && pl->place != NULL)
		rc = pl->place(pl->arg, g, p->needed, p->server, why, sizeof(why));
	if (rc != 0)
		return gr_error(g, rc, "placement: %s", why[0] != '\0' ? why : dj_strerror(rc));
	for (int x = 0; x < g->n; x++)
		g->nodes[x].server = p->needed[x] && g->nodes[x].kind == DJ_GRAPH_OP ?
				     p->server[x] : -1;
	return 0;
}

static int run_prepare(struct run *r)
{
	struct dj_graph *g = r->g;
	struct gr_view view = {.n_servers = r->c->n_servers, .inline_max = r->c->o.inline_max,
			       .resident = view_resident, .arg = r->c, .session = r->c->same};
	int rc;

	sessions_check(r->c);
	if (gr_annotate(g) != 0)
		return gr_error(g, -ENOMEM, "fetch: out of memory");
	rc = gr_plan_needed(g, r->nodes, r->n, &r->p);
	if (rc == 0)
		rc = run_check(r);
	if (rc == 0)
		rc = place(g, r->c, r->c->o.placer, &r->p);
	if (rc == 0)
		rc = gr_plan_build(g, &view, r->nodes, r->n, &r->p);
	if (rc != 0)
		return rc;
	r->loc = calloc_n((size_t)g->n * (size_t)r->c->n_servers, sizeof(*r->loc));
	r->fetched = calloc_n((size_t)r->p.n_batches, sizeof(*r->fetched));
	r->xfer = calloc_n((size_t)g->n, sizeof(*r->xfer));
	r->scratch = calloc_n((size_t)g->n, sizeof(*r->scratch));
	if (r->loc == NULL || r->fetched == NULL || r->xfer == NULL || r->scratch == NULL)
		return gr_error(g, -ENOMEM, "fetch: out of memory");
	for (int s = 0; s < r->c->n_servers; s++)
		for (int x = 0; x < g->n; x++) {
			const struct gr_node *n = &g->nodes[x];
			int c = n->kind == DJ_GRAPH_PARAM ? param_find(r->c, n, s) :
				n->kind == DJ_GRAPH_STATE ? state_find(r->c, n->name) : -1;

			if (c >= 0 && r->c->c[c].server == s)
				*loc_at(r, s, x) = r->c->c[c].handle;
		}
	return count_reused(r) != 0 ? gr_error(g, -ENOMEM, "fetch: out of memory") : 0;
}

static void run_end(struct run *r)
{
	for (int bi = 0; r->fetched != NULL && bi < r->p.n_batches; bi++)
		free(r->fetched[bi]);
	for (int x = 0; r->scratch != NULL && x < r->g->n; x++)
		free(r->scratch[x]);
	for (int i = 0; r->rc != 0 && i < r->n; i++)
		if (r->allocated[i]) {
			free(r->out[i].data);
			r->out[i].data = NULL;
		}
	free(r->fetched);
	free(r->scratch);
	free(r->xfer);
	free(r->loc);
	free(r->allocated);
	gr_plan_free(&r->p);
}

static int run(struct run *r)
{
	struct dj_graph *g = r->g;
	int rc = run_prepare(r);

	/* State moves made since the last fetch (by its placer, too) are
	 * this run's. */
	stats_add(&r->st, &r->c->moved);
	memset(&r->c->moved, 0, sizeof(r->c->moved));
	if (rc != 0)
		return r->rc = rc;
	if (r->p.n_sep > 0)
		wave_separate(r);
	for (int st = 0; st < r->p.n_stages && r->rc == 0; st++)
		wave_stage(r, st);
	if (r->rc == 0)
		wave_gets(r);
	free_leftovers(r);
	for (int i = 0; r->rc == 0 && i < r->n; i++) {
		const struct gr_node *n = &g->nodes[r->nodes[i]];

		if (n->kind == DJ_GRAPH_INPUT || n->kind == DJ_GRAPH_PARAM)
			deliver(r, r->nodes[i], n->host.data);
	}
	r->st.stages = r->p.n_stages;
	r->st.batches = r->p.n_batches;
	r->st.transfers = r->p.n_transfers;
	if (r->rc == 0) {
		/* Transfers between servers are fetched and put by this client. */
		r->st.kv_bytes_moved += r->p.kv_transfer_bytes;
		r->st.kv_bytes_through_client += r->p.kv_transfer_bytes;
	}
	return r->rc;
}

static void stats_add(struct dj_graph_run_stats *t, const struct dj_graph_run_stats *s)
{
	t->round_trips += s->round_trips;
	t->stages += s->stages;
	t->batches += s->batches;
	t->ops += s->ops;
	t->puts_inline += s->puts_inline;
	t->puts_separate += s->puts_separate;
	t->params_uploaded += s->params_uploaded;
	t->params_reused += s->params_reused;
	t->states_created += s->states_created;
	t->frees_inline += s->frees_inline;
	t->frees_async += s->frees_async;
	t->transfers += s->transfers;
	t->gets += s->gets;
	t->bytes_up += s->bytes_up;
	t->bytes_down += s->bytes_down;
	t->kv_bytes_moved += s->kv_bytes_moved;
	t->state_moves += s->state_moves;
	t->kv_bytes_through_client += s->kv_bytes_through_client;
}

int dj_graph_fetch(struct dj_graph *g, const int *nodes, int n, struct dj_tensor *out)
{
	struct run r = {.g = g, .c = g->ctx, .nodes = nodes, .n = n, .out = out};
	int rc;

	g->err[0] = '\0';
	g->failed_server = -1;
	if (g->ctx == NULL)
		return gr_error(g, -ENOTCONN, "fetch: the graph has no context (servers)");
	if (n < 0 || (n > 0 && (nodes == NULL || out == NULL)))
		return gr_error(g, -EINVAL, "fetch: bad node list");
	r.allocated = calloc_n((size_t)n, 1);
	if (r.allocated == NULL)
		return gr_error(g, -ENOMEM, "fetch: out of memory");
	pthread_mutex_lock(&g->ctx->lock);
	rc = run(&r);
	stats_add(&g->ctx->total, &r.st);
	pthread_mutex_unlock(&g->ctx->lock);
	g->last = r.st;
	run_end(&r);
	return rc;
}

int dj_graph_failed_server(const struct dj_graph *g)
{
	return g->failed_server;
}

/* What a run of plan p would do, counted from its batches. */
static void plan_expect(const struct dj_graph *g, const struct gr_plan *p, const int *nodes, int n,
			struct dj_graph_run_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->stages = p->n_stages;
	st->batches = p->n_batches;
	st->transfers = p->n_transfers;
	st->puts_separate = p->n_sep;
	st->kv_bytes_moved = p->kv_transfer_bytes;
	st->kv_bytes_through_client = p->kv_transfer_bytes;
	st->round_trips = p->n_stages + (p->n_sep > 0);
	for (int i = 0; i < n; i++)
		if (g->nodes[nodes[i]].kind == DJ_GRAPH_STATE) {
			st->round_trips++;
			break;
		}
	for (int k = 0; k < p->n_sep; k++)
		st->bytes_up += dj_tensor_nbytes(&g->nodes[p->sep[k].node].desc);
	for (int bi = 0; bi < p->n_batches; bi++) {
		const struct gr_batch *b = &p->b[bi];

		st->bytes_up += b->inline_bytes;
		st->bytes_down += b->fetch_len;
		for (int k = 0; k < b->n; k++) {
			const struct gr_node *x = &g->nodes[b->e[k].node];

			st->ops += !b->e[k].is_put || b->e[k].src == GR_PUT_PEER;
			st->puts_inline += b->e[k].is_put && b->e[k].src != GR_PUT_PEER;
			st->params_uploaded += b->e[k].is_put && x->kind == DJ_GRAPH_PARAM;
			st->states_created += b->e[k].is_put && x->kind == DJ_GRAPH_STATE;
		}
	}
}

/* Residency from the placer's own tables, for a plan without a context. */
struct placer_view {
	const struct dj_graph_placer *pl;
	struct dj_graph *g;
};

static uint64_t placer_resident(void *arg, const struct gr_node *n)
{
	const struct placer_view *v = arg;

	return v->pl->resident(v->pl->arg, v->g, (int)(n - v->g->nodes));
}

int dj_graph_plan(struct dj_graph *g, const struct dj_graph_placer *placer, int n_servers,
		  const int *nodes, int n, struct dj_graph_run_stats *expect)
{
	struct dj_graph_ctx *c = g->ctx;
	struct gr_view view = {.inline_max = DJ_BATCH_PUT_MAX, .resident = view_resident, .arg = c};
	struct placer_view pv = {.pl = placer, .g = g};
	struct gr_plan p = {0};
	int rc;

	if (c == NULL && placer != NULL && placer->resident != NULL) {
		view.resident = placer_resident;
		view.arg = &pv;
	}

	g->err[0] = '\0';
	if (c != NULL) {
		n_servers = c->n_servers;
		view.inline_max = c->o.inline_max;
		view.session = c->same;
		if (placer == NULL)
			placer = c->o.placer;
		pthread_mutex_lock(&c->lock);
	}
	view.n_servers = n_servers;
	if (n_servers < 1 || n_servers > GR_MAX_SERVERS)
		rc = gr_error(g, -EINVAL, "plan: %d servers (1 to %d)", n_servers, GR_MAX_SERVERS);
	else if (n < 0 || (n > 0 && nodes == NULL))
		rc = gr_error(g, -EINVAL, "plan: bad node list");
	else if (gr_annotate(g) != 0)
		rc = gr_error(g, -ENOMEM, "plan: out of memory");
	else
		rc = gr_plan_needed(g, nodes, n, &p);
	if (rc == 0)
		rc = place(g, c, placer, &p);
	if (rc == 0)
		rc = gr_plan_build(g, &view, nodes, n, &p);
	if (rc == 0 && expect != NULL)
		plan_expect(g, &p, nodes, n, expect);
	gr_plan_free(&p);
	if (c != NULL)
		pthread_mutex_unlock(&c->lock);
	return rc;
}
