/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler over a fleet (dj_sched_create_fleet, include/djinn/fleet.h):
 *
 *   members    those up in dj_fleet_view(), in its order: server s of the
 *              scheduler is member[s], its session dj_fleet_conn()'s;
 *   compute    the calibration of sc_fleet.c over those sessions, all
 *              members in turn (or figures given);
 *   memory     each member's devices (load.devices: free and total),
 *              capped by its store limit; queue: load.queued; both from
 *              the view, which the fleet client keeps fresh in the
 *              background (no request of ours);
 *   links      probed server to server: 4-byte and 1 MiB tensors COPYed
 *              from a to b with dj_fleet_move, timed by the source
 *              (info.server_ns), the least of two each after one that
 *              opens the member connection; derived through the client
 *              where a probe fails or the caller asks;
 *   KV moves   the graph context's mover is dj_fleet_move: a cache goes
 *              from one member's memory into another's over their data
 *              planes (GPU to GPU where both have one), never through this
 *              client; counted in dj_sched_stats;
 *   departures a member the view no longer has up is gone once it does
 *              not answer a PING too (a slow STATS on a loaded machine is
 *              not a departure); one that restarted is gone at once (its
 *              tensors went with its earlier incarnation). Its sequences
 *              are then rebuilt from their lineage (sc_sched.c).
 *
 * The fleet is reached through an operation table (sc_fleet_ops): the
 * fleet client's calls here, simulated members in the unit test.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/fleet.h"
#include "common/djc.h"
#include "sc.h"

#define LINK_PROBE_BYTES (1u << 20)
#define LINK_PROBE_ROUNDS 2

/* ---- figures ------------------------------------------------------------------ */

/* Memory and queue of member m into sv: its device's where the unit names
 * one, else the whole member's. */
static void member_figures(const struct dj_fleet_member *m, struct dj_sched_server *sv)
{
	sv->mem_free = sv->mem_total = 0;
	sv->queued = (double)m->queued;
	for (int d = 0; d < m->n_devices; d++) {
		if (sv->device[0] != '\0' && strcmp(sv->device, m->devices[d].name) != 0)
			continue;
		sv->mem_free += m->devices[d].mem_free;
		sv->mem_total += m->devices[d].mem_total;
		if (sv->device[0] != '\0')
			sv->queued = (double)m->devices[d].queued;
	}
	if (m->store_limit != 0) {
		uint64_t left = m->store_limit > m->store_bytes ? m->store_limit - m->store_bytes : 0;

		sv->mem_free = left < sv->mem_free ? left : sv->mem_free;
		sv->mem_total = m->store_limit < sv->mem_total ? m->store_limit : sv->mem_total;
	}
}

/* A COPY of a new tensor of nbytes from member a to b: its time at the
 * source, both copies freed. */
static int copy_time(struct dj_fleet *fleet, uint32_t a, uint32_t b, size_t nbytes, double *s)
{
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1,
				       .shape = {(int64_t)(nbytes / 4)}},
			      .mem = DJ_MEM_HOST, .data = calloc(1, nbytes + 4)};
	struct dj_fleet_handle h, copy;
	struct dj_fleet_move_info info;
	int rc = t.data != NULL ? dj_fleet_put(fleet, a, &t, &h) : -ENOMEM;

	free(t.data);
	if (rc != 0)
		return rc;
	rc = dj_fleet_move(fleet, h, b, DJ_FLEET_COPY, &copy, &info);
	if (rc == 0) {
		*s = (double)info.server_ns / 1e9;
		dj_fleet_free(fleet, copy);
	}
	dj_fleet_free(fleet, h);
	return rc;
}

/* Link a -> b: the least of LINK_PROBE_ROUNDS copies of each size, after
 * one that opens the member connection between them (its handshake is no
 * part of a move's cost later). */
static int link_probe(struct dj_fleet *fleet, uint32_t a, uint32_t b, double *rtt, double *bw)
{
	double small = 1e9, big = 1e9, t;
	int rc = copy_time(fleet, a, b, 4, &t);

	for (int i = 0; rc == 0 && i < LINK_PROBE_ROUNDS; i++) {
		rc = copy_time(fleet, a, b, 4, &t);
		small = rc == 0 && t < small ? t : small;
		if (rc == 0)
			rc = copy_time(fleet, a, b, LINK_PROBE_BYTES, &t);
		big = rc == 0 && t < big ? t : big;
	}
	if (rc != 0)
		return rc;
	*rtt = small;
	/* The bytes' own time; at least 1 us (a loaded machine may make
	 * the difference vanish). */
	*bw = LINK_PROBE_BYTES / (big - small > 1e-6 ? big - small : 1e-6);
	return 0;
}

/* The first unit of u's server. */
static int first_unit(const struct dj_sched_fleet *f, int u)
{
	while (u > 0 && sc_same_server(f, u - 1, u))
		u--;
	return u;
}

/* Every link a -> b between servers probed, once per pair of members (the
 * devices of one member share its figures); those that fail keep the
 * derived figures. */
static void links_probe(struct dj_fleet *fleet, const uint32_t *member, struct dj_sched_fleet *f)
{
	int probed = 0, failed = 0;

	for (int a = 0; a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++) {
			int fa = first_unit(f, a), fb = first_unit(f, b);

			if (sc_same_server(f, a, b))
				continue;
			if (fa != a || fb != b) {
				/* Probed already: units are in order. */
				f->link_rtt_s[a][b] = f->link_rtt_s[fa][fb];
				f->link_bw_Bps[a][b] = f->link_bw_Bps[fa][fb];
				continue;
			}
			if (link_probe(fleet, member[a], member[b], &f->link_rtt_s[a][b],
				       &f->link_bw_Bps[a][b]) != 0) {
				DJC_LOG(DJ_LOG_NOTICE, "sched", "link %s -> %s not probed (%s): "
					"derived through the client", f->servers[a].name,
					f->servers[b].name, dj_fleet_last_error());
				failed++;
				continue;
			}
			probed++;
		}
	f->links_direct = failed == 0 && probed > 0;
	if (probed > 0)
		snprintf(f->note, sizeof(f->note), "links probed server to server (fleet COPYs of "
			 "4 B and 1 MiB, the least of %d each, timed by the source)%s",
			 LINK_PROBE_ROUNDS, failed > 0 ? "; some failed: those derived through "
			 "the client" : "");
}

/* ---- set-up ------------------------------------------------------------------- */

static int client_view(struct dj_fleet *fleet, struct dj_fleet_member *members, int max)
{
	return dj_fleet_view(fleet, NULL, members, max);
}

static int client_ping(struct dj_conn *conn)
{
	return dj_ping(conn, NULL);
}

const struct sc_fleet_ops sc_fleet_client = {
	.view = client_view,
	.member = dj_fleet_member_info,
	.conn = dj_fleet_conn,
	.move = dj_fleet_move,
	.ping = client_ping,
	.last_error = dj_fleet_last_error,
};

/*
 * Server s of the scheduler: s->member[s] and conns[s], the members up in
 * the view; s->f their figures (given's where given, else calibrated),
 * memory and queue from the view, links probed unless s->o.no_link_probe.
 */
static int fleet_figures(struct dj_sched *s, const struct dj_sched_fleet *given,
			 struct dj_conn **conns)
{
	struct dj_fleet_member *m = calloc(SC_MAX, sizeof(*m));
	struct sc_devs *devs = calloc(SC_MAX, sizeof(*devs));
	struct dj_conn *mconn[SC_MAX];
	struct dj_sched_fleet *f = &s->f;
	int n, up = 0, rc = 0;

	if (m == NULL || devs == NULL) {
		free(m);
		free(devs);
		return -ENOMEM;
	}
	n = s->fops->view(s->fleet, m, SC_MAX);
	for (int i = 0; i < n; i++) {
		/* A member the view has up but that takes no session now is
		 * as good as gone: left out, as one that left. */
		if (!m[i].up)
			continue;
		if (s->fops->conn(s->fleet, m[i].index, &mconn[up]) == 0)
			m[up++] = m[i];
		else
			DJC_LOG(DJ_LOG_WARN, "sched", "member %s left out: %s", m[i].id,
				s->fops->last_error());
	}
	if (rc == 0 && up == 0)
		rc = -EHOSTUNREACH;
	if (rc == 0 && given != NULL) {
		/* Figures of an earlier scheduler: units as it had them. */
		rc = sc_units_of_given(given, mconn, up, conns) > 0 ? 0 : -EINVAL;
		if (rc == 0)
			*f = *given;
	} else if (rc == 0) {
		rc = dj_sched_measure(&s->o, mconn, up, f);
		/* Each member of several devices: that many units. */
		for (int i = 0; rc == 0 && i < up; i++) {
			snprintf(f->servers[i].name, sizeof(f->servers[i].name), "%s", m[i].id);
			devs[i].n = m[i].n_devices < SC_MAX_DEVICES ? m[i].n_devices : SC_MAX_DEVICES;
			for (int d = 0; d < devs[i].n; d++)
				snprintf(devs[i].name[d], sizeof(devs[i].name[d]), "%.*s",
					 DJ_SCHED_DEVICE_MAX - 1, m[i].devices[d].name);
		}
		if (rc == 0)
			rc = sc_units_expand(f, devs, mconn, conns);
	}
	for (int u = 0; rc == 0 && u < f->n_servers; u++) {
		int i = 0;

		while (i < up - 1 && mconn[i] != conns[u])
			i++;
		s->member[u] = m[i].index;
		f->servers[u].up = 1;
		member_figures(&m[i], &f->servers[u]);
	}
	free(m);
	free(devs);
	if (rc == 0 && given == NULL && !s->o.no_link_probe)
		links_probe(s->fleet, s->member, f);
	if (rc == 0 && given == NULL)
		sc_peer_links_probe(f, conns);
	return rc;
}

/* ---- KV moves ------------------------------------------------------------------- */

/* The graph context's mover: state `handle` of server from to server to,
 * member to member. */
static int fleet_move(void *arg, int from, uint64_t handle, int to,
		      const struct dj_tensor_desc *desc, uint64_t *new_handle)
{
	struct dj_sched *s = arg;
	struct dj_fleet_handle h = {.member = s->member[from], .handle = handle}, out;
	struct dj_fleet_move_info info;
	int rc = s->fops->move(s->fleet, h, s->member[to], 0, &out, &info);

	(void)desc;
	if (rc != 0) {
		s->move_failed[0] = from;
		s->move_failed[1] = to;
		DJC_LOG(DJ_LOG_WARN, "sched", "KV move %s -> %s failed: %s", s->f.servers[from].name,
			s->f.servers[to].name, s->fops->last_error());
		return rc;
	}
	*new_handle = out.handle;
	s->st.kv_moves_direct++;
	s->st.kv_moves_dpdk += info.path == DJ_PATH_DPDK;
	s->st.kv_move_bytes_direct += info.bytes;
	s->st.kv_move_ns += info.total_ns;
	DJC_LOG(DJ_LOG_DEBUG, "sched", "KV move %s -> %s: %" PRIu64 " bytes over %s (%s), %.3f ms",
		s->f.servers[from].name, s->f.servers[to].name, info.bytes, dj_path_name(info.path),
		info.path_reason, (double)info.total_ns / 1e6);
	return 0;
}

/* Whether every member up accepts moves (holds the fleet token). */
static int all_move(struct dj_sched *s)
{
	struct dj_fleet_member *m = calloc(SC_MAX, sizeof(*m));
	int n = m != NULL ? s->fops->view(s->fleet, m, SC_MAX) : 0, ok = m != NULL;

	for (int i = 0; i < n; i++)
		ok = ok && (!m[i].up || m[i].fleet_auth);
	free(m);
	return ok;
}

int sc_fleet_setup(struct dj_sched *s, const struct sc_fleet_ops *ops, struct dj_fleet *fleet,
		   const struct dj_sched_fleet *given, struct dj_conn **conns)
{
	int rc;

	s->fleet = fleet;
	s->fops = ops;
	rc = fleet_figures(s, given, conns);
	if (rc != 0 || s->go.mover != NULL)
		return rc;
	if (all_move(s)) {
		s->mover.move = fleet_move;
		s->mover.arg = s;
		s->go.mover = &s->mover;
	} else {
		DJC_LOG(DJ_LOG_NOTICE, "sched", "a member accepts no moves (no fleet token): KV "
			"caches that must move go through this client");
	}
	return 0;
}

int dj_sched_create_fleet(const struct dj_sched_options *opts, struct dj_fleet *fleet,
			  struct dj_sched **sched)
{
	struct dj_conn *conns[SC_MAX];
	struct dj_sched *s;
	int rc;

	if (fleet == NULL || sched == NULL)
		return -EINVAL;
	rc = sc_sched_new(opts, &s);
	if (rc != 0)
		return rc;
	rc = sc_fleet_setup(s, &sc_fleet_client, fleet, opts != NULL ? opts->fleet : NULL, conns);
	if (rc == 0)
		rc = sc_sched_attach(s, conns, s->f.n_servers);
	if (rc != 0) {
		dj_sched_destroy(s);
		return rc;
	}
	*sched = s;
	return 0;
}

int dj_sched_member(const struct dj_sched *s, int server, uint32_t *member)
{
	if (s == NULL || server < 0 || server >= s->f.n_servers)
		return -EINVAL;
	if (s->fleet == NULL)
		return -ENOENT;
	*member = s->member[server];
	return 0;
}

/* ---- membership ----------------------------------------------------------------- */

/* Server s's member as the view has it: 1 up, 0 left, -1 restarted (a
 * newer incarnation replaced it: its tensors are gone); *m filled where it
 * is listed. */
static int member_state(struct dj_sched *s, int server, struct dj_fleet_member *m)
{
	int rc = s->fops->member(s->fleet, s->member[server], m);

	return rc == -ESTALE ? -1 : rc == 0 && m->up;
}

int sc_fleet_gone(struct dj_sched *s, int server)
{
	struct dj_fleet_member m;

	/* Where the view still says up, it may not have seen the departure
	 * yet (a static fleet notices at its next STATS): a PING decides, as
	 * without a fleet. */
	return member_state(s, server, &m) == -1 || s->fops->ping(s->conn[server]) != 0;
}

int sc_fleet_departures(struct dj_sched *s)
{
	struct dj_fleet_member m;
	int down = 0;

	for (int i = 0; i < s->f.n_servers; i++) {
		int st = s->f.servers[i].up ? member_state(s, i, &m) : 1;

		if (st == 1 || (st == 0 && s->fops->ping(s->conn[i]) == 0))
			continue;
		DJC_LOG(DJ_LOG_WARN, "sched", "member %s %s", s->f.servers[i].name, st < 0 ?
			"restarted: its tensors are gone" : "left the fleet and does not answer");
		dj_sched_server_down(s, i);
		down++;
	}
	return down;
}

int sc_fleet_refresh(struct dj_sched *s)
{
	struct dj_fleet_member m;

	for (int i = 0; i < s->f.n_servers; i++)
		if (s->f.servers[i].up && member_state(s, i, &m) == 1) {
			member_figures(&m, &s->f.servers[i]);
			s->reserved[i] = 0;
		}
	sc_fleet_departures(s);
	return 0;
}
