/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler's fleet from the fleet client's view (include/djinn/fleet.h,
 * issue 13): built only where that header is in the tree (meson.build).
 *
 *   members    the view's members, up or not, in its order: server s of
 *              the scheduler is members[s] (index[s] names it for
 *              dj_fleet_conn and dj_fleet_handle);
 *   memory     each member's devices (load.devices: free and total);
 *   queue      load.queued;
 *   compute    the calibration of sc_fleet.c over dj_fleet_conn() sessions;
 *   links      measured server to server where probe_links: a 4-byte and a
 *              1 MiB tensor COPYed from a to b with dj_fleet_move (the
 *              source's own timing, info.server_ns), else derived through
 *              the client as before the fleet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/fleet.h"
#include "sc.h"

#define LINK_PROBE_BYTES (1u << 20)

/* A COPY of a new tensor of nbytes from member a to b: its time at the
 * source (ns), both copies freed. */
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

static void links_probe(struct dj_fleet *fleet, const uint32_t *index, struct dj_sched_fleet *f)
{
	int direct = 1;

	for (int a = 0; a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++) {
			double small, big;

			if (a == b || !f->servers[a].up || !f->servers[b].up)
				continue;
			if (copy_time(fleet, index[a], index[b], 4, &small) != 0 ||
			    copy_time(fleet, index[a], index[b], LINK_PROBE_BYTES, &big) != 0) {
				direct = 0;
				continue;
			}
			f->link_rtt_s[a][b] = small;
			f->link_bw_Bps[a][b] = LINK_PROBE_BYTES / (big - small > 1e-7 ? big - small : 1e-7);
		}
	f->links_direct = direct;
	snprintf(f->note, sizeof(f->note), direct ? "links probed server to server (fleet COPY "
		 "of 4 B and 1 MiB, timed by the source)" : "some server-to-server probes failed: "
		 "those links derived through the client");
}

/*
 * Fill *f from the fleet's view: members, memory, queue; compute calibrated
 * through each up member's session; links probed between members where
 * probe_links. index[s] receives member s's dj_fleet_member.index; conns[s]
 * its session (NULL for a member that is down).
 * @return 0, -EINVAL, -ENOMEM, -EHOSTUNREACH (no member up), or a
 * calibration error.
 */
int sc_fleet_from_view(struct dj_fleet *fleet, const struct dj_sched_options *o, int probe_links,
		       struct dj_sched_fleet *f, uint32_t *index, struct dj_conn **conns)
{
	struct dj_fleet_member *m = calloc(SC_MAX, sizeof(*m));
	int n, up = 0, rc = 0;

	if (m == NULL)
		return -ENOMEM;
	n = dj_fleet_view(fleet, NULL, m, SC_MAX);
	memset(f, 0, sizeof(*f));
	f->n_servers = n;
	for (int s = 0; s < n; s++) {
		struct dj_sched_server *sv = &f->servers[s];

		index[s] = m[s].index;
		conns[s] = NULL;
		if (m[s].up && dj_fleet_conn(fleet, m[s].index, &conns[s]) == 0) {
			/* The calibration of one server, through its session. */
			struct dj_sched_fleet one;

			rc = dj_sched_measure(o, &conns[s], 1, &one);
			if (rc != 0)
				break;
			*sv = one.servers[0];
			up++;
		}
		snprintf(sv->name, sizeof(sv->name), "%s", m[s].id);
		sv->up = conns[s] != NULL;
		sv->mem_free = sv->mem_total = 0;
		for (int d = 0; d < m[s].n_devices; d++) {
			sv->mem_free += m[s].devices[d].mem_free;
			sv->mem_total += m[s].devices[d].mem_total;
		}
		if (m[s].store_limit != 0 && m[s].store_limit - m[s].store_bytes < sv->mem_free)
			sv->mem_free = m[s].store_limit > m[s].store_bytes ?
				       m[s].store_limit - m[s].store_bytes : 0;
		sv->queued = (double)m[s].queued;
	}
	free(m);
	if (rc != 0)
		return rc;
	if (up == 0)
		return -EHOSTUNREACH;
	dj_sched_fleet_links(f);
	if (probe_links)
		links_probe(fleet, index, f);
	return 0;
}
