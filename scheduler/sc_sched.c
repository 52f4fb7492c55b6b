/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler object: its fleet, its graph context (with itself as the
 * placer), the tables it remembers across graphs (sequences and where their
 * KV caches live, pinned weights, and in a simulation where states and
 * weight copies are), the decision log, and dj_sched_fetch(): a fetch that
 * survives a server leaving, by rebuilding the lost sequences from their
 * lineage on the servers that remain and running the fetch again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/djc.h"
#include "graph/gr.h"
#include "sc.h"

static const char *const rule_names[] = {
	"cost", "kv-colocation", "memory", "load-balance", "disaggregation", "weights",
	"recovery", "round-robin",
};

const char *dj_sched_rule_name(enum dj_sched_rule rule)
{
	return (unsigned)rule < sizeof(rule_names) / sizeof(rule_names[0]) ? rule_names[rule] : "?";
}

void dj_sched_options_init(struct dj_sched_options *o)
{
	memset(o, 0, sizeof(*o));
	o->calib_matmul_n = 128;
	o->calib_elementwise_n = 1 << 18;
}

/* ---- tables ---------------------------------------------------------------- */

static int grow(void **arr, int *cap, int n, size_t size)
{
	int c;
	void *grown;

	if (n < *cap)
		return 0;
	c = *cap > 0 ? *cap * 2 : 16;
	grown = realloc(*arr, (size_t)c * size);
	if (grown == NULL)
		return -ENOMEM;
	*arr = grown;
	*cap = c;
	return 0;
}

void sc_seq_name(const char *state, char *out, size_t len)
{
	const char *slash = strrchr(state, '/');
	size_t n = slash != NULL ? (size_t)(slash - state) : strlen(state);

	snprintf(out, len, "%.*s", (int)n, state);
}

struct sc_seq *sc_seq_find(struct dj_sched *s, const char *name)
{
	for (int i = 0; i < s->n_seq; i++)
		if (strcmp(s->seq[i].name, name) == 0)
			return &s->seq[i];
	return NULL;
}

int sc_seq_set(struct dj_sched *s, const char *name, int server, uint64_t kv_bytes, double step_s)
{
	struct sc_seq *q = sc_seq_find(s, name);

	if (q == NULL) {
		if (grow((void **)&s->seq, &s->cap_seq, s->n_seq, sizeof(*s->seq)) != 0)
			return -ENOMEM;
		q = &s->seq[s->n_seq++];
		snprintf(q->name, sizeof(q->name), "%s", name);
	}
	q->server = server;
	q->lost = 0;
	q->kv_bytes = kv_bytes;
	q->step_s = step_s;
	return 0;
}

void sc_seq_drop(struct dj_sched *s, const char *name)
{
	struct sc_seq *q = sc_seq_find(s, name);

	if (q != NULL)
		*q = s->seq[--s->n_seq];
}

int sc_pin_find(const struct dj_sched *s, const char *name)
{
	for (int i = 0; i < s->n_pin; i++)
		if (strcmp(s->pin[i].name, name) == 0)
			return s->pin[i].server;
	return -1;
}

int sc_pin_set(struct dj_sched *s, const char *name, int server)
{
	for (int i = 0; i < s->n_pin; i++)
		if (strcmp(s->pin[i].name, name) == 0) {
			s->pin[i].server = server;
			return 0;
		}
	if (grow((void **)&s->pin, &s->cap_pin, s->n_pin, sizeof(*s->pin)) != 0)
		return -ENOMEM;
	snprintf(s->pin[s->n_pin].name, sizeof(s->pin[0].name), "%s", name);
	s->pin[s->n_pin++].server = server;
	return 0;
}

struct sc_sim *sc_sim_find(struct dj_sched *s, const char *name, int is_state, uint64_t hash)
{
	for (int i = 0; i < s->n_sim; i++)
		if (s->sim[i].is_state == is_state && strcmp(s->sim[i].name, name) == 0 &&
		    (is_state || s->sim[i].hash == hash))
			return &s->sim[i];
	return NULL;
}

/* A new entry at the end of a table of named things. */
static struct sc_sim *sim_new(struct sc_sim **arr, int *n, int *cap, const char *name,
			      int is_state, uint64_t hash)
{
	struct sc_sim *e;

	if (grow((void **)arr, cap, *n, sizeof(**arr)) != 0)
		return NULL;
	e = &(*arr)[(*n)++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->is_state = is_state;
	e->hash = hash;
	return e;
}

int sc_sim_add(struct dj_sched *s, const char *name, int is_state, uint64_t hash, int server)
{
	struct sc_sim *e = sc_sim_find(s, name, is_state, hash);

	if (e == NULL && (e = sim_new(&s->sim, &s->n_sim, &s->cap_sim, name, is_state, hash)) == NULL)
		return -ENOMEM;
	/* A state lives on one server; a weight may have copies. */
	e->servers = is_state ? 1ull << server : e->servers | 1ull << server;
	return 0;
}

int sc_sim_pend(struct dj_sched *s, const char *name, int is_state, uint64_t hash, int server)
{
	struct sc_sim *e = sim_new(&s->pend, &s->n_pend, &s->cap_pend, name, is_state, hash);

	if (e == NULL)
		return -ENOMEM;
	e->servers = 1ull << server;
	return 0;
}

struct dj_sched_decision *sc_decide(struct dj_sched *s, enum dj_sched_rule rule, int node,
				    int server)
{
	struct dj_sched_decision *d;

	if (grow((void **)&s->d, &s->cap_d, s->n_d, sizeof(*s->d)) != 0)
		return NULL;
	d = &s->d[s->n_d++];
	memset(d, 0, sizeof(*d));
	d->rule = rule;
	d->node = node;
	d->server = server;
	d->from = -1;
	return d;
}

/* ---- the object ------------------------------------------------------------ */

static int placer_cb(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
		     char *why, size_t why_len)
{
	return sc_place(arg, g, needed, server, why, why_len);
}

/* A simulation's residency, for the graph's plan (where it has no
 * context to ask). */
static uint64_t resident_cb(void *arg, struct dj_graph *g, int node)
{
	struct dj_sched *s = arg;
	struct dj_graph_node_info ni;
	struct sc_sim *e;

	if (dj_graph_node(g, node, &ni) != 0)
		return 0;
	e = sc_sim_find(s, ni.name, ni.kind == DJ_GRAPH_STATE, ni.hash);
	return e != NULL ? e->servers : 0;
}

int sc_sched_new(const struct dj_sched_options *opts, struct dj_sched **out)
{
	struct dj_sched *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	if (opts != NULL)
		s->o = *opts;
	else
		dj_sched_options_init(&s->o);
	if (s->o.calib_matmul_n <= 0)
		s->o.calib_matmul_n = 128;
	if (s->o.calib_elementwise_n <= 0)
		s->o.calib_elementwise_n = 1 << 18;
	if (s->o.graph != NULL)
		s->go = *s->o.graph;
	else
		dj_graph_options_init(&s->go);
	s->o.graph = NULL;
	s->o.fleet = NULL;
	s->placer.place = placer_cb;
	s->placer.resident = resident_cb;
	s->placer.arg = s;
	s->go.placer = &s->placer;
	s->move_failed[0] = s->move_failed[1] = -1;
	*out = s;
	return 0;
}

int sc_sched_attach(struct dj_sched *s, struct dj_conn *const *servers, int n)
{
	const char *dev[SC_MAX];
	int rc;

	/* Each unit's tensors on its device: the context is over units, the
	 * devices of one server sharing its session. */
	for (int u = 0; u < n; u++)
		dev[u] = s->f.servers[u].device;
	s->go.devices = dev;
	rc = dj_graph_ctx_create(&s->go, servers, n, &s->ctx);
	s->go.devices = NULL;
	if (rc == 0)
		memcpy(s->conn, servers, sizeof(*servers) * (size_t)n);
	return rc;
}

/* The units of n sessions (s->f measured per session, one entry each):
 * every session whose server names several devices made that many units,
 * their peer-copy links probed. */
static int units_make(struct dj_sched *s, struct dj_conn *const *servers, int n,
		      struct dj_conn **unit_conn)
{
	struct sc_devs *devs = calloc((size_t)n, sizeof(*devs));
	int rc = devs != NULL ? 0 : -ENOMEM, several = 0;

	for (int i = 0; rc == 0 && i < n; i++) {
		rc = sc_devices_read(servers[i], &devs[i]);
		several |= devs[i].n >= 2;
	}
	if (rc == 0)
		rc = sc_units_expand(&s->f, devs, servers, unit_conn);
	for (int u = 0; rc == 0 && several && u < s->f.n_servers; u++) {
		int first = u;

		/* Each device's own memory and queue. */
		while (u + 1 < s->f.n_servers && s->f.servers[u + 1].group != 0 &&
		       s->f.servers[u + 1].group == s->f.servers[first].group)
			u++;
		rc = sc_stats_read(unit_conn[first], &s->f.servers[first], u - first + 1);
	}
	if (rc == 0 && several)
		sc_peer_links_probe(&s->f, unit_conn);
	free(devs);
	return rc;
}

int dj_sched_create_sim(const struct dj_sched_options *opts, const struct dj_sched_fleet *fleet,
			struct dj_sched **sched)
{
	int rc;

	if (fleet == NULL || sched == NULL || fleet->n_servers < 1 || fleet->n_servers > SC_MAX)
		return -EINVAL;
	rc = sc_sched_new(opts, sched);
	if (rc == 0)
		(*sched)->f = *fleet;
	return rc;
}

int dj_sched_create(const struct dj_sched_options *opts, struct dj_conn *const *servers, int n,
		    struct dj_sched **sched)
{
	struct dj_conn *unit_conn[SC_MAX];
	struct dj_sched *s;
	int rc;

	if (servers == NULL || sched == NULL || n < 1 || n > SC_MAX)
		return -EINVAL;
	rc = sc_sched_new(opts, &s);
	if (rc != 0)
		return rc;
	if (opts != NULL && opts->fleet != NULL) {
		rc = sc_units_of_given(opts->fleet, servers, n, unit_conn);
		if (rc > 0)
			s->f = *opts->fleet;
		rc = rc > 0 ? 0 : -EINVAL;
	} else {
		rc = dj_sched_measure(&s->o, servers, n, &s->f);
		if (rc == 0)
			rc = units_make(s, servers, n, unit_conn);
	}
	if (rc == 0)
		rc = sc_sched_attach(s, unit_conn, s->f.n_servers);
	if (rc != 0) {
		dj_sched_destroy(s);
		return rc;
	}
	*sched = s;
	return 0;
}

void dj_sched_destroy(struct dj_sched *s)
{
	if (s == NULL)
		return;
	dj_graph_ctx_destroy(s->ctx);
	free(s->seq);
	free(s->pin);
	free(s->sim);
	free(s->pend);
	free(s->d);
	free(s);
}

struct dj_graph_ctx *dj_sched_ctx(struct dj_sched *s)
{
	return s->ctx;
}

int dj_sched_refresh(struct dj_sched *s)
{
	int rc = 0;

	if (s->fleet != NULL)
		return sc_fleet_refresh(s);
	for (int i = 0; s->ctx != NULL && i < s->f.n_servers; i++) {
		struct dj_sched_server sv[SC_MAX_DEVICES];
		int n = 1, r;

		/* One STATS for the units of one server. */
		while (i + n < s->f.n_servers && n < SC_MAX_DEVICES && s->conn[i + n] == s->conn[i])
			n++;
		if (!s->f.servers[i].up) {
			i += n - 1;
			continue;
		}
		memcpy(sv, &s->f.servers[i], sizeof(sv[0]) * (size_t)n);
		r = sc_stats_read(s->conn[i], sv, n);
		for (int u = 0; u < n && r == 0; u++) {
			s->f.servers[i + u] = sv[u];
			s->reserved[i + u] = 0;
		}
		if (r != 0 && rc == 0)
			rc = r;
		i += n - 1;
	}
	return rc;
}

void dj_sched_fleet_get(const struct dj_sched *s, struct dj_sched_fleet *f)
{
	*f = s->f;
}

int dj_sched_fleet_set(struct dj_sched *s, const struct dj_sched_fleet *f)
{
	if (f == NULL || f->n_servers != s->f.n_servers)
		return -EINVAL;
	s->f = *f;
	memset(s->reserved, 0, sizeof(s->reserved));
	return 0;
}

int dj_sched_pin(struct dj_sched *s, const char *name, int server)
{
	if (name == NULL || server < 0 || server >= s->f.n_servers)
		return -EINVAL;
	return sc_pin_set(s, name, server);
}

/* Unit u left: its sequences lost, what it held forgotten. */
static int unit_down(struct dj_sched *s, int u)
{
	int lost = 0;

	s->f.servers[u].up = 0;
	for (int i = 0; i < s->n_seq; i++)
		if (s->seq[i].server == u && !s->seq[i].lost) {
			s->seq[i].lost = 1;
			lost++;
		}
	/* What lived there is gone: the context forgets it, the simulation
	 * too. */
	if (s->ctx != NULL)
		dj_graph_ctx_server_lost(s->ctx, u);
	for (int i = s->n_sim - 1; i >= 0; i--) {
		s->sim[i].servers &= ~(1ull << u);
		if (s->sim[i].servers == 0)
			s->sim[i] = s->sim[--s->n_sim];
	}
	return lost;
}

int dj_sched_server_down(struct dj_sched *s, int server)
{
	int lost = 0;

	if (server < 0 || server >= s->f.n_servers)
		return -EINVAL;
	if (s->f.servers[server].up)
		s->st.servers_lost++;
	/* A server takes every device of it along (one session, one
	 * process). */
	for (int u = 0; u < s->f.n_servers; u++)
		if (sc_same_server(&s->f, u, server))
			lost += unit_down(s, u);
	DJC_LOG(DJ_LOG_WARN, "sched", "server %s left: %d sequence%s lost", s->f.servers[server].name,
		lost, lost == 1 ? "" : "s");
	return lost;
}

void dj_sched_set_lineage(struct dj_sched *s, dj_sched_rebuild_fn rebuild, void *arg)
{
	s->rebuild = rebuild;
	s->rebuild_arg = arg;
}

/* ---- fetch with recovery ----------------------------------------------------- */

/* Errors a server that went away gives (its connection, or the fleet's
 * view of it). */
static int connection_error(int rc)
{
	switch (-rc) {
	case ECONNRESET: case ECONNREFUSED: case ECONNABORTED: case EPIPE: case ENOTCONN:
	case EHOSTDOWN: case EHOSTUNREACH: case ENETUNREACH: case ETIMEDOUT: case ESHUTDOWN:
	case EIO:
		return 1;
	default:
		return 0;
	}
}

/* Whether server f has gone: over a fleet, the view's word (a restart) or
 * its word and a PING's; else a PING alone (which reconnects where it
 * can). */
static int gone(struct dj_sched *s, int f)
{
	if (f < 0 || f >= s->f.n_servers || !s->f.servers[f].up)
		return 0;
	if (s->fleet != NULL)
		return sc_fleet_gone(s, f);
	return dj_ping(s->conn[f], NULL) != 0;
}

/* The server the fetch failed on (its request, or a KV move from or to
 * it), where it is gone; -1 otherwise. */
static int server_gone(struct dj_sched *s, struct dj_graph *g, int rc)
{
	int cand[3] = {dj_graph_failed_server(g), s->move_failed[0], s->move_failed[1]};

	s->move_failed[0] = s->move_failed[1] = -1;
	if (!connection_error(rc))
		return -1;
	for (int i = 0; i < 3; i++)
		if (gone(s, cand[i]))
			return cand[i];
	return -1;
}

/* Every lost sequence rebuilt through the lineage callback. */
static int rebuild_lost(struct dj_sched *s, struct dj_graph *g)
{
	for (int i = 0; i < s->n_seq; i++) {
		char name[DJ_SCHED_NAME_MAX];
		struct sc_seq *q;
		int rc;

		if (!s->seq[i].lost)
			continue;
		snprintf(name, sizeof(name), "%s", s->seq[i].name);
		if (s->rebuild == NULL) {
			snprintf(g->err, sizeof(g->err), "sequence '%s' was lost with its server "
				 "and no lineage rebuilds it (dj_sched_set_lineage)", name);
			return -EHOSTDOWN;
		}
		s->rebuilding++;
		rc = s->rebuild(s->rebuild_arg, s, name);
		s->rebuilding--;
		if (rc == -EAGAIN) {
			/* Nothing to rebuild yet (lost in the fetch that makes
			 * it): forgotten, that fetch makes it again. */
			sc_seq_drop(s, name);
			i = -1;
			continue;
		}
		q = sc_seq_find(s, name);
		if (rc == 0 && q != NULL && q->lost)
			rc = -EHOSTDOWN; /* the callback did not write it again */
		if (rc != 0) {
			DJC_LOG(DJ_LOG_ERR, "sched", "sequence '%s': rebuild failed: %s", name,
				dj_strerror(rc));
			return rc;
		}
		s->st.sequences_rebuilt++;
		DJC_LOG(DJ_LOG_NOTICE, "sched", "sequence '%s' rebuilt from its lineage on %s", name,
			q != NULL ? s->f.servers[q->server].name : "?");
		i = -1; /* the table may have changed: look again from the start */
	}
	return 0;
}

/* Members that left the fleet since the last fetch, marked down, and the
 * sequences lost with them (or with a server earlier) rebuilt before the
 * fetch runs: the fetch then finds every cache it reads. Not inside a
 * rebuild (the lineage's own fetch), which would rebuild its own
 * sequence again. */
static int recover_first(struct dj_sched *s, struct dj_graph *g)
{
	int lost = 0;

	if (s->rebuilding)
		return 0;
	if (s->fleet != NULL)
		sc_fleet_departures(s);
	for (int i = 0; i < s->n_seq && !lost; i++)
		lost = s->seq[i].lost;
	return lost ? rebuild_lost(s, g) : 0;
}

int dj_sched_fetch(struct dj_sched *s, struct dj_graph *g, const int *nodes, int n,
		   struct dj_tensor *out)
{
	int rc = -ENOTCONN;

	if (s->ctx == NULL)
		return rc;
	rc = recover_first(s, g);
	if (rc != 0)
		return rc;
	for (int attempt = 0; attempt <= s->f.n_servers; attempt++) {
		int down;

		if (attempt > 0)
			s->st.retries++;
		rc = dj_graph_fetch(g, nodes, n, out);
		if (rc == 0)
			return 0;
		down = server_gone(s, g, rc);
		if (down >= 0) {
			DJC_LOG(DJ_LOG_WARN, "sched", "fetch failed on %s (%s): it has left",
				s->f.servers[down].name, dj_strerror(rc));
			dj_sched_server_down(s, down);
		} else if (rc != -EHOSTDOWN) {
			/* An error of the work itself, or a connection that came
			 * back (PING answered): retried once, else given back. */
			if (!connection_error(rc) || dj_graph_failed_server(g) < 0 || attempt > 0)
				return rc;
			continue;
		}
		rc = rebuild_lost(s, g);
		if (rc != 0)
			return rc;
	}
	return rc;
}

int dj_sched_plan(struct dj_sched *s, struct dj_graph *g, const int *nodes, int n,
		  struct dj_graph_run_stats *expect)
{
	int rc;

	s->dry = s->ctx != NULL;
	s->n_pend = 0;
	rc = dj_graph_plan(g, &s->placer, s->f.n_servers, nodes, n, expect);
	s->dry = 0;
	for (int i = 0; rc == 0 && i < s->n_pend; i++)
		rc = sc_sim_add(s, s->pend[i].name, s->pend[i].is_state, s->pend[i].hash,
				__builtin_ctzll(s->pend[i].servers));
	s->n_pend = 0;
	return rc;
}

/* ---- what it did ------------------------------------------------------------ */

int dj_sched_decisions(const struct dj_sched *s, const struct dj_sched_decision **d)
{
	*d = s->d;
	return s->n_d;
}

char *dj_sched_explain(const struct dj_sched *s)
{
	size_t cap = 512 + (size_t)s->n_d * 400, o = 0;
	char *text = malloc(cap);

	if (text == NULL)
		return NULL;
	text[0] = '\0';
	for (int i = 0; i < s->n_d; i++) {
		const struct dj_sched_decision *d = &s->d[i];
		char where[80];

		if (d->server < 0)
			snprintf(where, sizeof(where), "FAILED");
		else if (d->from >= 0)
			snprintf(where, sizeof(where), "%s -> %s", s->f.servers[d->from].name,
				 s->f.servers[d->server].name);
		else
			snprintf(where, sizeof(where), "-> %s", s->f.servers[d->server].name);
		o += (size_t)snprintf(text + o, cap - o, "%-14s %-12s %%%-4d %3d op%s %-12s "
				      "finish %8.3f ms (compute %.3f, move %.3f, queue %.3f) mem %"
				      PRIu64 ": %s\n", dj_sched_rule_name(d->rule), d->what, d->node,
				      d->n_ops, d->n_ops == 1 ? " " : "s", where, d->finish_s * 1e3,
				      d->compute_s * 1e3, d->move_s * 1e3, d->queue_s * 1e3, d->bytes,
				      d->reason);
		if (o >= cap)
			break;
	}
	return text;
}

int dj_sched_sequences(const struct dj_sched *s, struct dj_sched_sequence *seqs, int max)
{
	for (int i = 0; i < s->n_seq && i < max; i++) {
		snprintf(seqs[i].name, sizeof(seqs[i].name), "%s", s->seq[i].name);
		seqs[i].server = s->seq[i].server;
		seqs[i].lost = s->seq[i].lost;
		seqs[i].kv_bytes = s->seq[i].kv_bytes;
	}
	return s->n_seq;
}

void dj_sched_stats(const struct dj_sched *s, struct dj_sched_stats *st)
{
	*st = s->st;
}
