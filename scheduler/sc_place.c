/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rules that place one graph (docs/SCHEDULER.md), called by the graph
 * as its placer once per fetch (or per dj_sched_plan):
 *
 *   1. groups    the needed operations connected to each other or to a
 *                state, not through weights or inputs: one sequence's step
 *                each (its states name the sequence), or free operations;
 *   2. weights   under the pin policy, every weight read gets its server
 *                (rule 5: pinned, else where it is, else most free memory);
 *   3. groups, in record order, on a timeline per server that starts at its
 *                expected queueing and grows with the work placed there:
 *      - a sequence whose KV cache lives on a server runs there (rule 1),
 *        unless disaggregation sends its decode steps elsewhere (rule 4:
 *        the cache moves once) or its step does not fit there (rule 2: the
 *        cache moves to where it fits); a server that left makes it lost
 *        (recovery rebuilds it; only a prefill may create it again);
 *      - a new sequence goes to the server where it completes earliest
 *        (rule 3), among those it fits on (rule 2), prefill servers only
 *        under disaggregation; sequences already living on a server count
 *        as that much more work there;
 *      - a free operation goes where it finishes earliest (its cost:
 *        compute + moving its inputs there + waiting), where it fits.
 *
 * Every choice is a decision (sc_decide) with its rule, its cost terms and
 * the runner-up, so that `djinn plan` and the logs can say why.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/djc.h"
#include "sc.h"

enum group_kind { G_FREE, G_ANCHORED, G_NEW };

struct pnode {
	struct dj_graph_node_info i;
	int anchor;          /* op: the state it writes or reads (runs beside it), -1 */
	int pin;             /* op: server of a pinned weight it reads, -1 */
	int where;           /* state: its server now, -1 where it does not exist */
	uint64_t copies;     /* param: servers holding (or about to hold) it */
	int last;            /* the last needed op that reads it, -1 */
	int server;          /* the decision (scratch while candidates are tried) */
	double finish;
};

struct group {
	enum group_kind kind;
	int first, n_ops;
	int where;           /* anchored: where its first state lives */
	char seq[DJ_SCHED_NAME_MAX];
	uint64_t state_bytes;
	uint64_t peak;       /* activations alive at once, at most */
	int tokens;          /* positions its KV appends write, >= 1 */
};

/* What one candidate server would cost a group (or one operation). */
struct terms {
	double compute, move, queue, finish;
	uint64_t need;       /* memory it needs there */
};

struct placing {
	struct dj_sched *s;
	struct dj_graph *g;
	const uint8_t *needed;
	int n;
	struct pnode *nd;
	struct dj_graph_node_info *infos; /* nd[x].i, contiguous, for sc_compute_s */
	int *gid;            /* node -> group index, -1 */
	struct group *gr;
	int n_gr;
	double avail[SC_MAX];
	enum dj_graph_phase phase;
	char *why;
	size_t why_len;
};

static int is_up(const struct placing *p, int s)
{
	return s >= 0 && s < p->s->f.n_servers && p->s->f.servers[s].up;
}

static const char *srv_name(const struct placing *p, int s)
{
	return p->s->f.servers[s].name;
}

/* ---- what the graph says ---------------------------------------------------- */

static int uf_find(int *par, int x)
{
	while (par[x] != x) {
		par[x] = par[par[x]];
		x = par[x];
	}
	return x;
}

static uint64_t first_bit_server(uint64_t mask)
{
	return mask != 0 ? (uint64_t)__builtin_ctzll(mask) : UINT64_MAX;
}

/* Node infos, with residency from the simulation's tables where there are
 * no servers. */
static int nodes_read(struct placing *p)
{
	struct dj_sched *s = p->s;

	for (int x = 0; x < p->n; x++) {
		struct pnode *nd = &p->nd[x];
		int rc = dj_graph_node(p->g, x, &nd->i);

		if (rc != 0)
			return rc;
		nd->anchor = nd->pin = nd->where = nd->last = nd->server = -1;
		if (s->ctx == NULL && (nd->i.kind == DJ_GRAPH_STATE || nd->i.kind == DJ_GRAPH_PARAM)) {
			struct sc_sim *e = sc_sim_find(s, nd->i.name, nd->i.kind == DJ_GRAPH_STATE,
						       nd->i.hash);

			nd->i.resident = e != NULL ? e->servers : 0;
		}
		if (nd->i.kind == DJ_GRAPH_STATE && nd->i.resident != 0)
			nd->where = (int)first_bit_server(nd->i.resident);
		nd->copies = nd->i.kind == DJ_GRAPH_PARAM ? nd->i.resident : 0;
		p->infos[x] = nd->i;
	}
	return 0;
}

/* Each needed op's anchor (the state it must run beside) and each node's
 * last reader. */
static void anchors(struct placing *p)
{
	for (int x = 0; x < p->n; x++) {
		struct pnode *nd = &p->nd[x];

		if (!p->needed[x] || nd->i.kind != DJ_GRAPH_OP)
			continue;
		if (nd->i.state >= 0)
			nd->anchor = nd->i.state;
		for (int k = 0; k < nd->i.n_in; k++) {
			int y = nd->i.inputs[k];

			if (nd->anchor < 0 && p->nd[y].i.state >= 0)
				nd->anchor = p->nd[y].i.state;
			p->nd[y].last = x;
		}
	}
}

/* Positions a KV append writes: its source's length along the dimension
 * where source and destination differ (1 where none does). */
static int append_len(const struct placing *p, int x)
{
	const struct dj_graph_node_info *w = &p->nd[x].i;
	const struct dj_tensor_desc *dst, *src;

	if (w->writes < 0 || w->n_in < 2)
		return 1;
	dst = &p->nd[w->inputs[0]].i.desc;
	src = &p->nd[w->inputs[1]].i.desc;
	for (int d = 0; d < src->ndim && d < dst->ndim; d++)
		if (src->shape[d] != dst->shape[d])
			return (int)src->shape[d];
	return 1;
}

/* Connected components of needed ops and states (not through weights or
 * inputs), numbered in order of their first node. */
static int groups(struct placing *p)
{
	int *par = malloc(sizeof(int) * (size_t)(p->n + 1));
	int *root_gid = malloc(sizeof(int) * (size_t)(p->n + 1));

	if (par == NULL || root_gid == NULL) {
		free(par);
		free(root_gid);
		return -ENOMEM;
	}
	for (int x = 0; x < p->n; x++) {
		par[x] = x;
		root_gid[x] = -1;
	}
	for (int x = 0; x < p->n; x++) {
		const struct dj_graph_node_info *i = &p->nd[x].i;

		for (int k = 0; p->needed[x] && i->kind == DJ_GRAPH_OP && k < i->n_in; k++) {
			int y = i->inputs[k];
			enum dj_graph_kind ky = p->nd[y].i.kind;

			if (ky == DJ_GRAPH_OP || ky == DJ_GRAPH_STATE)
				par[uf_find(par, y)] = uf_find(par, x);
		}
	}
	for (int x = 0; x < p->n; x++) {
		const struct dj_graph_node_info *i = &p->nd[x].i;
		struct group *gp;
		int r;

		p->gid[x] = -1;
		if (!p->needed[x] || (i->kind != DJ_GRAPH_OP && i->kind != DJ_GRAPH_STATE))
			continue;
		r = uf_find(par, x);
		if (root_gid[r] < 0) {
			gp = &p->gr[p->n_gr];
			memset(gp, 0, sizeof(*gp));
			gp->first = x;
			gp->where = -1;
			gp->tokens = 1;
			root_gid[r] = p->n_gr++;
		}
		p->gid[x] = root_gid[r];
		gp = &p->gr[p->gid[x]];
		if (i->kind == DJ_GRAPH_OP) {
			gp->n_ops++;
			if (i->writes >= 0 && i->state >= 0 && append_len(p, x) > gp->tokens)
				gp->tokens = append_len(p, x);
		} else {
			if (gp->seq[0] == '\0')
				sc_seq_name(i->name, gp->seq, sizeof(gp->seq));
			gp->state_bytes += i->nbytes;
			if (gp->where < 0 && p->nd[x].where >= 0)
				gp->where = p->nd[x].where;
		}
	}
	free(par);
	free(root_gid);
	return 0;
}

/* The most bytes of a group's op outputs alive at once: each made in
 * record order, freed after its last reader (as the batch frees them). */
static uint64_t group_peak(const struct placing *p, int gi)
{
	uint64_t live = 0, peak = 0;

	for (int x = 0; x < p->n; x++) {
		const struct pnode *nd = &p->nd[x];

		if (p->gid[x] != gi || nd->i.kind != DJ_GRAPH_OP)
			continue;
		if (nd->i.writes < 0)
			live += nd->i.nbytes;
		peak = live > peak ? live : peak;
		for (int k = 0; k < nd->i.n_in; k++) {
			const struct pnode *y = &p->nd[nd->i.inputs[k]];

			if (y->i.kind == DJ_GRAPH_OP && y->i.writes < 0 && y->last == x &&
			    live >= y->i.nbytes)
				live -= y->i.nbytes;
		}
	}
	return peak;
}

/* ---- the timeline ----------------------------------------------------------- */

/*
 * Op x on server s, after what is placed so far (avail[], and the
 * finish/server of its inputs): ready when s is free and its inputs made
 * elsewhere have moved there, then its uploads (they ride in the request)
 * and its compute. Adds to *t; sets nd[x].finish and server; advances
 * avail[s]. Weights do not weigh under replication (the policy accepts a
 * copy everywhere); their memory does (t->need).
 */
static void op_on(struct placing *p, int x, int s, double *avail, struct terms *t,
		  uint64_t *copies_planned)
{
	const struct dj_sched_fleet *f = &p->s->f;
	struct pnode *nd = &p->nd[x];
	double ready = avail[s], up = 0, mv = 0, comp;

	for (int k = 0; k < nd->i.n_in; k++) {
		int y = nd->i.inputs[k];
		struct pnode *in = &p->nd[y];
		double m;

		switch (in->i.kind) {
		case DJ_GRAPH_OP:
			/* Made elsewhere: it arrives a move after it is done. */
			m = in->server != s ? sc_move_s(f, in->server, s, in->i.nbytes) : 0;
			mv += m;
			ready = in->finish + m > ready ? in->finish + m : ready;
			break;
		case DJ_GRAPH_INPUT:
			up += sc_upload_s(&f->servers[s], in->i.nbytes);
			break;
		case DJ_GRAPH_STATE:
			if (in->where < 0) /* created here: its zeros go up */
				up += sc_upload_s(&f->servers[s], in->i.nbytes);
			break;
		case DJ_GRAPH_PARAM:
			if (!((in->copies | copies_planned[y]) >> s & 1)) {
				t->need += in->i.nbytes;
				copies_planned[y] |= 1ull << s;
			}
			break;
		}
	}
	comp = sc_compute_s(&f->servers[s], &nd->i, p->infos);
	nd->server = s;
	nd->finish = ready + up + comp;
	avail[s] = nd->finish;
	t->compute += comp;
	t->move += mv + up;
	t->finish = nd->finish > t->finish ? nd->finish : t->finish;
}

/* Where op x of a group goes when the group's anchor is server a: a
 * pinned weight's server for an op that touches no state, else a. */
static int op_server(const struct placing *p, int x, int a)
{
	const struct pnode *nd = &p->nd[x];

	return nd->anchor < 0 && nd->pin >= 0 ? nd->pin : a;
}

/* The whole group on anchor a, from timeline avail (copied: the caller
 * commits by passing p->avail). copies_planned is per node. */
static void group_on(struct placing *p, int gi, int a, double *avail, struct terms *t,
		     uint64_t *copies_planned)
{
	memset(t, 0, sizeof(*t));
	t->queue = avail[a];
	for (int x = 0; x < p->n; x++)
		if (p->gid[x] == gi && p->nd[x].i.kind == DJ_GRAPH_OP)
			op_on(p, x, op_server(p, x, a), avail, t, copies_planned);
	t->need += p->gr[gi].peak;
}

/* Weight copies a committed placement makes are there for the groups after
 * it (their memory is counted once). */
static void copies_commit(struct placing *p, const uint64_t *planned)
{
	for (int y = 0; y < p->n; y++)
		p->nd[y].copies |= planned[y];
}

/* ---- decisions -------------------------------------------------------------- */

static void fill(struct dj_sched_decision *d, const struct terms *t)
{
	d->compute_s = t->compute;
	d->move_s = t->move;
	d->queue_s = t->queue;
	d->finish_s = t->finish;
	d->bytes = t->need;
}

/* "; s1 3.200 ms, s2: does not fit": the other candidates (ok[s] 1: fits,
 * 0: does not, -1: not a candidate). */
static void others(const struct placing *p, const double *score, const int *ok, int chosen,
		   char *buf, size_t len)
{
	size_t o = 0;
	int any = 0;

	buf[0] = '\0';
	for (int s = 0; s < p->s->f.n_servers && o + 32 < len; s++) {
		if (s == chosen || !is_up(p, s))
			continue;
		if (ok[s] > 0)
			o += (size_t)snprintf(buf + o, len - o, "%s%s %.3f ms", any ? ", " : "; ",
					      srv_name(p, s), score[s] * 1e3);
		else if (ok[s] == 0)
			o += (size_t)snprintf(buf + o, len - o, "%s%s: does not fit", any ? ", " : "; ",
					      srv_name(p, s));
		any |= ok[s] >= 0;
	}
}

static int fail(struct placing *p, int rc, enum dj_sched_rule rule, int node, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));
static int fail(struct placing *p, int rc, enum dj_sched_rule rule, int node, const char *fmt,
		...)
{
	struct dj_sched_decision *d = sc_decide(p->s, rule, node, -1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, p->why_len, fmt, ap);
	va_end(ap);
	if (d != NULL)
		snprintf(d->reason, sizeof(d->reason), "%s", p->why);
	return rc;
}

/* ---- rule 5: weights pinned --------------------------------------------------- */

static int pin_weights(struct placing *p)
{
	struct dj_sched *s = p->s;
	uint64_t pinned_now[SC_MAX] = {0};

	for (int x = 0; x < p->n; x++) {
		struct pnode *w = &p->nd[x];
		int at, best = -1;
		uint64_t most = 0;

		if (w->i.kind != DJ_GRAPH_PARAM || w->last < 0)
			continue;
		at = sc_pin_find(s, w->i.name);
		if (at >= 0 && !is_up(p, at))
			at = -1; /* its server left: pinned again */
		if (at < 0 && w->copies != 0)
			for (int c = 0; c < s->f.n_servers && at < 0; c++)
				at = (w->copies >> c & 1) && is_up(p, c) ? c : -1;
		if (at < 0) {
			for (int c = 0; c < s->f.n_servers; c++) {
				uint64_t fr = sc_mem_free(s, c);

				fr = fr > pinned_now[c] ? fr - pinned_now[c] : 0;
				if (is_up(p, c) && fr >= w->i.nbytes && (best < 0 || fr > most)) {
					best = c;
					most = fr;
				}
			}
			if (best < 0)
				return fail(p, -ENOMEM, DJ_SCHED_RULE_WEIGHTS, x, "weight '%s' (%" PRIu64
					    " bytes) fits on no server", w->i.name, w->i.nbytes);
			at = best;
			pinned_now[at] += w->i.nbytes;
			struct dj_sched_decision *d = sc_decide(s, DJ_SCHED_RULE_WEIGHTS, x, at);

			if (d != NULL) {
				snprintf(d->what, sizeof(d->what), "%s", w->i.name);
				d->bytes = w->i.nbytes;
				snprintf(d->reason, sizeof(d->reason), "pinned where memory is: %s has "
					 "the most free (%" PRIu64 " MiB)", srv_name(p, at), most >> 20);
			}
		}
		if (!s->dry && sc_pin_set(s, w->i.name, at) != 0)
			return -ENOMEM;
		for (int r = 0; r < p->n; r++)
			for (int k = 0; p->needed[r] && p->nd[r].i.kind == DJ_GRAPH_OP &&
					k < p->nd[r].i.n_in; k++)
				if (p->nd[r].i.inputs[k] == x && p->nd[r].pin < 0)
					p->nd[r].pin = at;
	}
	return 0;
}

/* ---- groups --------------------------------------------------------------- */

/* Work already living on server c, as seen by a new group of `tokens`
 * positions: one step of every sequence there per position. */
static double resident_load(const struct placing *p, int c, int tokens)
{
	double load = 0;

	for (int i = 0; i < p->s->n_seq; i++) {
		const struct sc_seq *q = &p->s->seq[i];
		int here = 0;

		for (int gi = 0; gi < p->n_gr && !here; gi++)
			here = strcmp(p->gr[gi].seq, q->name) == 0;
		if (!here && !q->lost && q->server == c)
			load += q->step_s * tokens;
	}
	return load;
}

/*
 * Try group gi on every server of mask (skipping `skip`), with `extra`
 * bytes more memory there (states created or moved) and a move of the
 * group's states from `from` (-1: none). *best gets the earliest; score[]
 * every candidate's completion; ok[] whether it fits.
 */
static void candidates(struct placing *p, int gi, uint64_t mask, int skip, uint64_t extra,
		       int from, int with_resident, double *score, int *ok, int *best,
		       struct terms *best_t, uint64_t *scratch)
{
	struct group *gp = &p->gr[gi];

	*best = -1;
	for (int c = 0; c < p->s->f.n_servers; c++) {
		double av[SC_MAX];
		struct terms t;

		ok[c] = -1;
		score[c] = 0;
		if (!is_up(p, c) || c == skip || !(mask >> c & 1))
			continue;
		ok[c] = 0;
		memcpy(av, p->avail, sizeof(av));
		memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
		if (from >= 0 && from != c)
			av[c] += sc_move_s(&p->s->f, from, c, gp->state_bytes);
		group_on(p, gi, c, av, &t, scratch);
		t.need += extra;
		if (from >= 0 && from != c)
			t.move += sc_move_s(&p->s->f, from, c, gp->state_bytes);
		if (with_resident) {
			double load = resident_load(p, c, gp->tokens);

			t.queue += load;
			t.finish += load;
		}
		if (t.need > sc_mem_free(p->s, c))
			continue;
		ok[c] = 1;
		score[c] = t.finish;
		/* Ties: the server with less waiting, then the lower index. */
		if (*best < 0 || t.finish < best_t->finish ||
		    (t.finish == best_t->finish && t.queue < best_t->queue)) {
			*best = c;
			*best_t = t;
		}
	}
}

/* The group's states go to server `to`: counted, moved where there are
 * servers (now, so that the run finds them there). */
static int move_states(struct placing *p, int gi, int to, enum dj_sched_rule rule)
{
	struct dj_sched *s = p->s;

	for (int x = 0; x < p->n; x++) {
		struct pnode *st = &p->nd[x];
		uint64_t moved = 0;
		int rc = 0;

		if (p->gid[x] != gi || st->i.kind != DJ_GRAPH_STATE || st->where < 0 ||
		    st->where == to)
			continue;
		if (s->ctx != NULL)
			rc = dj_graph_ctx_state_move(s->ctx, st->i.name, to, &moved);
		else {
			struct sc_sim *e = sc_sim_find(s, st->i.name, 1, 0);

			if (e != NULL)
				e->servers = 1ull << to;
			moved = st->i.nbytes;
		}
		if (rc != 0)
			return fail(p, rc, rule, x, "moving state '%s' to %s: %s", st->i.name,
				    srv_name(p, to), dj_strerror(rc));
		s->st.kv_moves++;
		s->st.kv_move_bytes += moved;
		if (sc_same_server(&s->f, st->where, to)) {
			/* Two devices of one server: to_device there. */
			s->st.kv_moves_peer++;
			s->st.kv_move_bytes_peer += moved;
		}
		st->where = to;
	}
	struct sc_seq *q = sc_seq_find(s, p->gr[gi].seq);

	if (q != NULL)
		q->server = to;
	return 0;
}

static int place_anchored(struct placing *p, int gi, uint64_t *scratch, double *score, int *ok)
{
	struct dj_sched *s = p->s;
	struct group *gp = &p->gr[gi];
	uint64_t all = ~0ull, decode = s->o.decode_servers;
	int a = gp->where, to = -1;
	double mv = 0;
	enum dj_sched_rule rule = DJ_SCHED_RULE_KV_COLOCATE;
	struct terms t, here;
	char rest[160] = "";
	struct dj_sched_decision *d;

	if (!is_up(p, a))
		return fail(p, -EHOSTDOWN, DJ_SCHED_RULE_RECOVERY, gp->first, "sequence '%s': its "
			    "KV cache was on %s, which left the fleet: rebuild it from its lineage",
			    gp->seq, srv_name(p, a));
	if (p->phase == DJ_PHASE_DECODE && decode != 0 && !(decode >> a & 1)) {
		/* Rule 4: decode elsewhere; the cache moves once. */
		rule = DJ_SCHED_RULE_DISAGG;
		candidates(p, gi, decode, -1, gp->state_bytes, a, 1, score, ok, &to, &t, scratch);
		if (to < 0)
			return fail(p, -ENOMEM, rule, gp->first, "sequence '%s': no decode server "
				    "has room for its KV cache (%" PRIu64 " bytes)", gp->seq,
				    gp->state_bytes);
	} else {
		double av[SC_MAX];

		memcpy(av, p->avail, sizeof(av));
		memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
		group_on(p, gi, a, av, &here, scratch);
		if (here.need > sc_mem_free(s, a)) {
			/* Rule 2 before rule 1: the step does not fit beside its
			 * cache; the cache moves to where it does. */
			rule = DJ_SCHED_RULE_MEMORY;
			candidates(p, gi, all, a, gp->state_bytes, a, 0, score, ok, &to, &t,
				   scratch);
			if (to < 0)
				return fail(p, -ENOMEM, rule, gp->first, "sequence '%s': its step "
					    "needs %" PRIu64 " bytes, %s has %" PRIu64 " free and "
					    "no other server has room for it and its KV cache",
					    gp->seq, here.need, srv_name(p, a), sc_mem_free(s, a));
		}
	}
	if (to >= 0 && !s->dry) {
		int rc = move_states(p, gi, to, rule);

		if (rc != 0)
			return rc;
		others(p, score, ok, to, rest, sizeof(rest));
	} else if (to >= 0) {
		snprintf(rest, sizeof(rest), " (dry run: placed where it is)");
		to = -1;
	}
	d = sc_decide(s, rule, gp->first, to >= 0 ? to : a);
	if (d == NULL)
		return -ENOMEM;
	snprintf(d->what, sizeof(d->what), "%s", gp->seq);
	d->n_ops = gp->n_ops;
	if (to >= 0) {
		d->from = a;
		snprintf(d->reason, sizeof(d->reason), "%s: KV cache (%" PRIu64 " bytes) moved "
			 "once %s -> %s (%s)%s", rule == DJ_SCHED_RULE_DISAGG ? "decode servers only" :
			 "its step does not fit beside it", gp->state_bytes, srv_name(p, a),
			 srv_name(p, to), sc_same_server(&s->f, a, to) ? "a device copy on its server" :
			 "between servers", rest);
		mv = sc_move_s(&s->f, a, to, gp->state_bytes);
		p->avail[to] += mv;
		a = to;
	} else {
		snprintf(d->reason, sizeof(d->reason), "beside its KV cache on %s (%" PRIu64
			 " bytes): it does not move%s", srv_name(p, a), gp->state_bytes, rest);
		/* A step touching caches on two servers brings them together
		 * (counted as moves); one cache, the usual case, stays. */
		if (!s->dry) {
			int rc = move_states(p, gi, a, rule);

			if (rc != 0)
				return rc;
		}
	}
	memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
	group_on(p, gi, a, p->avail, &t, scratch);
	copies_commit(p, scratch);
	t.move += mv;
	fill(d, &t);
	return 0;
}

static int place_new(struct placing *p, int gi, uint64_t *scratch, double *score, int *ok)
{
	struct dj_sched *s = p->s;
	struct group *gp = &p->gr[gi];
	uint64_t mask = s->o.prefill_servers != 0 ? s->o.prefill_servers : ~0ull;
	struct sc_seq *lost = sc_seq_find(s, gp->seq);
	struct dj_sched_decision *d;
	struct terms t;
	char rest[160];
	int to;

	if (lost != NULL && lost->lost && p->phase != DJ_PHASE_PREFILL)
		return fail(p, -EHOSTDOWN, DJ_SCHED_RULE_RECOVERY, gp->first, "sequence '%s' was "
			    "lost with %s: only a prefill (its lineage) may create it again",
			    gp->seq, srv_name(p, lost->server));
	candidates(p, gi, mask, -1, gp->state_bytes, -1, 1, score, ok, &to, &t, scratch);
	if (to < 0)
		return fail(p, -ENOMEM, DJ_SCHED_RULE_MEMORY, gp->first, "sequence '%s' (KV cache "
			    "%" PRIu64 " bytes, step %" PRIu64 ") fits on no %sserver", gp->seq,
			    gp->state_bytes, gp->peak, s->o.prefill_servers ? "prefill " : "");
	others(p, score, ok, to, rest, sizeof(rest));
	d = sc_decide(s, lost != NULL && lost->lost ? DJ_SCHED_RULE_RECOVERY :
		      DJ_SCHED_RULE_LOAD_BALANCE, gp->first, to);
	if (d == NULL)
		return -ENOMEM;
	snprintf(d->what, sizeof(d->what), "%s", gp->seq);
	d->n_ops = gp->n_ops;
	snprintf(d->reason, sizeof(d->reason), "%s%s: earliest expected completion%s",
		 lost != NULL && lost->lost ? "rebuilt on a survivor; " : "",
		 gp->seq[0] ? "new sequence" : "new state", rest);
	fill(d, &t);
	memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
	group_on(p, gi, to, p->avail, &t, scratch);
	copies_commit(p, scratch);
	for (int x = 0; x < p->n; x++)
		if (p->gid[x] == gi && p->nd[x].i.kind == DJ_GRAPH_STATE)
			p->nd[x].where = to;
	if (!s->dry && gp->seq[0] != '\0')
		return sc_seq_set(s, gp->seq, to, gp->state_bytes, t.compute / gp->tokens);
	return 0;
}

/* Free ops (no state): each where it finishes earliest and fits. */
static int place_free(struct placing *p, int gi, uint64_t *scratch, double *score, int *ok)
{
	for (int x = 0; x < p->n; x++) {
		struct pnode *nd = &p->nd[x];
		struct terms t, best_t = {0};
		int best = -1;
		char rest[160];

		if (p->gid[x] != gi || nd->i.kind != DJ_GRAPH_OP)
			continue;
		for (int c = 0; c < p->s->f.n_servers; c++) {
			double av[SC_MAX];

			ok[c] = -1;
			if (!is_up(p, c) || (nd->pin >= 0 && c != nd->pin))
				continue;
			ok[c] = 0;
			memcpy(av, p->avail, sizeof(av));
			memset(&t, 0, sizeof(t));
			memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
			t.queue = av[c];
			op_on(p, x, c, av, &t, scratch);
			t.need += nd->i.nbytes;
			if (t.need > sc_mem_free(p->s, c))
				continue;
			ok[c] = 1;
			score[c] = t.finish;
			if (best < 0 || t.finish < best_t.finish) {
				best = c;
				best_t = t;
			}
		}
		if (best < 0)
			return fail(p, -ENOMEM, DJ_SCHED_RULE_MEMORY, x, "node %d (%s, %" PRIu64
				    " bytes) fits on no server", x, nd->i.name, nd->i.nbytes);
		others(p, score, ok, best, rest, sizeof(rest));
		memset(&t, 0, sizeof(t));
		memset(scratch, 0, sizeof(uint64_t) * (size_t)p->n);
		op_on(p, x, best, p->avail, &t, scratch);
		copies_commit(p, scratch);
		struct dj_sched_decision *d = sc_decide(p->s, nd->pin >= 0 ? DJ_SCHED_RULE_WEIGHTS :
							DJ_SCHED_RULE_COST, x, best);

		if (d == NULL)
			return -ENOMEM;
		snprintf(d->what, sizeof(d->what), "%s", nd->i.name);
		d->n_ops = 1;
		fill(d, &best_t);
		snprintf(d->reason, sizeof(d->reason), "%s%s", nd->pin >= 0 ?
			 "beside its pinned weight" : "earliest finish", rest);
	}
	return 0;
}

/* ---- round robin (a baseline) ------------------------------------------------ */

static int next_up(struct placing *p)
{
	for (int k = 0; k < p->s->f.n_servers; k++) {
		int c = p->s->rr_next++ % p->s->f.n_servers;

		if (is_up(p, c))
			return c;
	}
	return 0;
}

static int round_robin(struct placing *p, int *server)
{
	for (int x = 0; x < p->n; x++) {
		struct pnode *nd = &p->nd[x];
		int c;

		if (!p->needed[x] || (nd->i.kind != DJ_GRAPH_OP && nd->i.kind != DJ_GRAPH_STATE))
			continue;
		if (nd->i.kind == DJ_GRAPH_STATE) {
			if (nd->where >= 0 && !is_up(p, nd->where))
				return fail(p, -EHOSTDOWN, DJ_SCHED_RULE_RECOVERY, x, "state '%s' was "
					    "on %s, which left", nd->i.name, srv_name(p, nd->where));
			nd->where = nd->where >= 0 ? nd->where : next_up(p);
			server[x] = nd->where;
			continue;
		}
		c = nd->anchor >= 0 ? p->nd[nd->anchor].where : next_up(p);
		server[x] = c;
		struct dj_sched_decision *d = sc_decide(p->s, DJ_SCHED_RULE_ROUND_ROBIN, x, c);

		if (d == NULL)
			return -ENOMEM;
		snprintf(d->what, sizeof(d->what), "%s", nd->i.name);
		d->n_ops = 1;
		snprintf(d->reason, sizeof(d->reason), "%s", nd->anchor >= 0 ?
			 "beside the state it touches" : "the next server in turn");
	}
	return 0;
}

/* ---- the placer ------------------------------------------------------------ */

/* The simulation remembers what a run would have made: new states, and
 * weight copies where ops read them (applied after the graph's plan). */
static int sim_commit(struct placing *p, const int *server)
{
	for (int x = 0; x < p->n; x++) {
		const struct pnode *nd = &p->nd[x];

		if (nd->i.kind == DJ_GRAPH_STATE && p->needed[x] &&
		    sc_sim_pend(p->s, nd->i.name, 1, 0, server[x]) != 0)
			return -ENOMEM;
		for (int k = 0; nd->i.kind == DJ_GRAPH_OP && p->needed[x] && k < nd->i.n_in; k++) {
			const struct pnode *w = &p->nd[nd->i.inputs[k]];

			if (w->i.kind == DJ_GRAPH_PARAM &&
			    sc_sim_pend(p->s, w->i.name, 0, w->i.hash, server[x]) != 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* Memory the run will take for good: new states, new weight copies. */
static void reserve(struct placing *p, const int *server)
{
	uint64_t *seen = calloc((size_t)p->n + 1, sizeof(uint64_t));

	for (int x = 0; seen != NULL && x < p->n; x++) {
		const struct pnode *nd = &p->nd[x];

		if (nd->i.kind == DJ_GRAPH_STATE && p->needed[x] && nd->i.resident == 0)
			p->s->reserved[server[x]] += nd->i.nbytes;
		for (int k = 0; nd->i.kind == DJ_GRAPH_OP && p->needed[x] && k < nd->i.n_in; k++) {
			int y = nd->i.inputs[k];
			const struct pnode *w = &p->nd[y];

			if (w->i.kind == DJ_GRAPH_PARAM && !((w->i.resident | seen[y]) >> server[x] & 1)) {
				p->s->reserved[server[x]] += w->i.nbytes;
				seen[y] |= 1ull << server[x];
			}
		}
	}
	free(seen);
}

static int rules(struct placing *p, int *server)
{
	uint64_t *scratch = calloc((size_t)p->n + 1, sizeof(uint64_t));
	double score[SC_MAX];
	int ok[SC_MAX], rc = scratch != NULL ? 0 : -ENOMEM;

	if (rc == 0 && p->s->o.weights == DJ_SCHED_WEIGHTS_PIN)
		rc = pin_weights(p);
	for (int gi = 0; rc == 0 && gi < p->n_gr; gi++) {
		struct group *gp = &p->gr[gi];

		if (gp->n_ops == 0)
			continue;
		gp->peak = group_peak(p, gi);
		gp->kind = gp->state_bytes == 0 ? G_FREE : gp->where >= 0 ? G_ANCHORED : G_NEW;
		if (gp->kind == G_ANCHORED)
			rc = place_anchored(p, gi, scratch, score, ok);
		else if (gp->kind == G_NEW)
			rc = place_new(p, gi, scratch, score, ok);
		else
			rc = place_free(p, gi, scratch, score, ok);
	}
	free(scratch);
	for (int x = 0; rc == 0 && x < p->n; x++) {
		const struct pnode *nd = &p->nd[x];

		if (!p->needed[x])
			continue;
		if (nd->i.kind == DJ_GRAPH_OP && nd->server >= 0)
			server[x] = nd->server;
		else if (nd->i.kind == DJ_GRAPH_STATE && nd->where >= 0)
			server[x] = nd->where;
	}
	return rc;
}

int sc_place(struct dj_sched *s, struct dj_graph *g, const uint8_t *needed, int *server,
	     char *why, size_t why_len)
{
	struct placing p = {.s = s, .g = g, .needed = needed, .n = dj_graph_node_count(g),
			    .why = why, .why_len = why_len};
	int rc = -ENOMEM;

	s->n_d = 0;
	p.nd = calloc((size_t)p.n + 1, sizeof(*p.nd));
	p.infos = calloc((size_t)p.n + 1, sizeof(*p.infos));
	p.gid = calloc((size_t)p.n + 1, sizeof(int));
	p.gr = calloc((size_t)p.n + 1, sizeof(*p.gr));
	if (p.nd == NULL || p.infos == NULL || p.gid == NULL || p.gr == NULL)
		goto error;
	p.phase = dj_graph_phase(g, NULL);
	for (int c = 0; c < s->f.n_servers; c++)
		p.avail[c] = sc_queue_s(&s->f.servers[c]);
	rc = nodes_read(&p);
	if (rc != 0)
		goto error;
	anchors(&p);
	rc = groups(&p);
	if (rc == 0)
		rc = s->o.mode == DJ_SCHED_MODE_ROUND_ROBIN ? round_robin(&p, server) :
		     rules(&p, server);
	if (rc == 0 && !s->dry)
		reserve(&p, server);
	if (rc == 0 && s->ctx == NULL)
		rc = sim_commit(&p, server);
	s->st.placements++;
	s->st.decisions += s->n_d;
	for (int i = 0; i < s->n_d; i++)
		DJC_LOG(DJ_LOG_DEBUG, "sched", "%s %s -> %s: %s", dj_sched_rule_name(s->d[i].rule),
			s->d[i].what, s->d[i].server >= 0 ? s->f.servers[s->d[i].server].name : "-",
			s->d[i].reason);
error:
	if (rc == -ENOMEM && why[0] == '\0')
		snprintf(why, why_len, "scheduler: out of memory");
	free(p.nd);
	free(p.infos);
	free(p.gid);
	free(p.gr);
	return rc;
}
