/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler over a fleet (scheduler/sc_fleet_view.c) with simulated
 * members: the fleet reached through its operation table (sc_fleet_ops),
 * no servers. What is asserted:
 *   set-up     servers are the members up, in the view's order; memory
 *              from their devices capped by the store limit, queue from
 *              the view; a member that takes no session left out; none up
 *              or figures of another size refused; the mover installed
 *              only where every member accepts moves;
 *   KV moves   the mover asks the fleet for a MOVE member to member and
 *              counts it (direct, over DPDK, bytes, time); a failed move
 *              names its servers for recovery and counts nothing;
 *   departures a member the view lost is down only once a PING fails too
 *              (a slow STATS is no departure); a restarted one at once;
 *              the sequences there are marked lost;
 *   refresh    memory and queue read again from the view, reservations
 *              forgotten, departures marked.
 * Calibration and link probes need real members: the integration test
 * (tests/integration/llm/test_llm_fleet.sh) covers them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "scheduler/sc.h"

#define N_MEMBERS 4

/* One simulated member: its record, whether it restarted (its earlier
 * incarnation gone), whether it answers a PING or takes a session. */
struct sim_member {
	struct dj_fleet_member m;
	int restarted;
	int ping_rc;
	int conn_rc;
};

static struct sim {
	struct sim_member mem[N_MEMBERS];
	/* The last move asked for, and what the next one does. */
	struct dj_fleet_handle moved;
	uint32_t moved_to;
	unsigned int moved_flags;
	int moves;
	int move_rc;
	enum dj_path move_path;
} sim;

/* The simulation stands behind the opaque fleet and session pointers. */
#define SIM_FLEET ((struct dj_fleet *)&sim)
#define SIM_CONN(i) ((struct dj_conn *)&sim.mem[i])

static int sim_view(struct dj_fleet *fleet, struct dj_fleet_member *members, int max)
{
	int n = 0;

	CU_ASSERT_PTR_EQUAL(fleet, SIM_FLEET);
	for (int i = 0; i < N_MEMBERS && n < max; i++)
		if (!sim.mem[i].restarted)
			members[n++] = sim.mem[i].m;
	return n;
}

static int sim_member(struct dj_fleet *fleet, uint32_t index, struct dj_fleet_member *member)
{
	(void)fleet;
	if (index >= N_MEMBERS)
		return -EINVAL;
	if (sim.mem[index].restarted)
		return -ESTALE;
	*member = sim.mem[index].m;
	return 0;
}

static int sim_conn(struct dj_fleet *fleet, uint32_t index, struct dj_conn **conn)
{
	(void)fleet;
	if (sim.mem[index].conn_rc != 0)
		return sim.mem[index].conn_rc;
	*conn = SIM_CONN(index);
	return 0;
}

static int sim_move(struct dj_fleet *fleet, struct dj_fleet_handle handle, uint32_t to,
		    unsigned int flags, struct dj_fleet_handle *out, struct dj_fleet_move_info *info)
{
	(void)fleet;
	sim.moved = handle;
	sim.moved_to = to;
	sim.moved_flags = flags;
	sim.moves++;
	if (sim.move_rc != 0)
		return sim.move_rc;
	out->member = to;
	out->handle = handle.handle + 0x1000;
	memset(info, 0, sizeof(*info));
	info->path = sim.move_path;
	info->bytes = 40960;
	info->total_ns = 2000000;
	return 0;
}

static int sim_ping(struct dj_conn *conn)
{
	return ((struct sim_member *)conn)->ping_rc;
}

static const char *sim_error(void)
{
	return "simulated";
}

static const struct sc_fleet_ops sim_ops = {
	.view = sim_view, .member = sim_member, .conn = sim_conn,
	.move = sim_move, .ping = sim_ping, .last_error = sim_error,
};

/* Four members, all up and accepting moves, 1 GiB free each on two
 * devices, none queued; nothing moved yet. */
static void sim_reset(void)
{
	memset(&sim, 0, sizeof(sim));
	for (int i = 0; i < N_MEMBERS; i++) {
		struct dj_fleet_member *m = &sim.mem[i].m;

		m->index = (uint32_t)i;
		snprintf(m->id, sizeof(m->id), "m%d", i);
		m->up = 1;
		m->fleet_auth = 1;
		m->n_devices = 2;
		for (int d = 0; d < 2; d++) {
			m->devices[d].mem_total = 1ull << 30;
			m->devices[d].mem_free = 1ull << 29;
		}
	}
	sim.move_path = DJ_PATH_TCP;
}

/* Figures of n servers, as the calibration gives them. */
static struct dj_sched_fleet *given_new(int n)
{
	static struct dj_sched_fleet f;

	CU_ASSERT_EQUAL_FATAL(dj_sched_fleet_sim(&f, n), 0);
	for (int s = 0; s < n; s++)
		snprintf(f.servers[s].name, sizeof(f.servers[s].name), "given%d", s);
	return &f;
}

/* A scheduler over the simulation; rc what the set-up gave. */
static struct dj_sched *sched_fleet(const struct dj_sched_fleet *given, int *rc)
{
	struct dj_conn *conns[SC_MAX];
	struct dj_sched *s;

	CU_ASSERT_EQUAL_FATAL(sc_sched_new(NULL, &s), 0);
	*rc = sc_fleet_setup(s, &sim_ops, SIM_FLEET, given, conns);
	for (int i = 0; *rc == 0 && i < s->f.n_servers; i++)
		s->conn[i] = conns[i];
	return s;
}

/* Sequence `name` living on server `server`, as a placement records it. */
static void seq_add(struct dj_sched *s, const char *name, int server)
{
	struct sc_seq *q = realloc(s->seq, sizeof(*q) * (size_t)(s->n_seq + 1));

	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	s->seq = q;
	s->cap_seq = ++s->n_seq;
	memset(&q[s->n_seq - 1], 0, sizeof(*q));
	snprintf(q[s->n_seq - 1].name, sizeof(q->name), "%s", name);
	q[s->n_seq - 1].server = server;
}

static void test_setup(void)
{
	struct dj_sched *s;
	uint32_t member;
	int rc;

	sim_reset();
	/* m1 is nearly full by its store limit; m2 left; m3 has a queue. */
	sim.mem[1].m.store_limit = 300ull << 20;
	sim.mem[1].m.store_bytes = 100ull << 20;
	sim.mem[2].m.up = 0;
	sim.mem[2].m.fleet_auth = 0;
	sim.mem[3].m.queued = 7;
	s = sched_fleet(given_new(3), &rc);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(s->f.n_servers, 3);
	CU_ASSERT_EQUAL(s->member[0], 0);
	CU_ASSERT_EQUAL(s->member[1], 1);
	CU_ASSERT_EQUAL(s->member[2], 3);
	CU_ASSERT_PTR_EQUAL(s->conn[2], SIM_CONN(3));
	CU_ASSERT_EQUAL(dj_sched_member(s, 2, &member), 0);
	CU_ASSERT_EQUAL(member, 3);
	CU_ASSERT_EQUAL(dj_sched_member(s, 3, &member), -EINVAL);
	/* The given figures' names stay; memory and queue are the view's. */
	CU_ASSERT_STRING_EQUAL(s->f.servers[2].name, "given2");
	CU_ASSERT_EQUAL(s->f.servers[0].mem_free, 1ull << 30);
	CU_ASSERT_EQUAL(s->f.servers[0].mem_total, 2ull << 30);
	CU_ASSERT_EQUAL(s->f.servers[1].mem_free, 200ull << 20);
	CU_ASSERT_EQUAL(s->f.servers[1].mem_total, 300ull << 20);
	CU_ASSERT_DOUBLE_EQUAL(s->f.servers[2].queued, 7.0, 1e-9);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_TRUE(s->f.servers[i].up);
	/* Every member up accepts moves (m2, without the token but gone,
	 * does not count). */
	CU_ASSERT_PTR_EQUAL(s->go.mover, &s->mover);
	dj_sched_destroy(s);

	/* A member with no fleet token: no mover, caches go through the
	 * client as without a fleet. */
	sim.mem[1].m.fleet_auth = 0;
	s = sched_fleet(given_new(3), &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NULL(s->go.mover);
	dj_sched_destroy(s);

	/* Figures of another size; a member that takes no session. */
	s = sched_fleet(given_new(4), &rc);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	dj_sched_destroy(s);
	sim.mem[0].conn_rc = -ECONNREFUSED;
	s = sched_fleet(given_new(2), &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(s->member[0], 1);
	CU_ASSERT_EQUAL(s->member[1], 3);
	dj_sched_destroy(s);

	/* None up. */
	for (int i = 0; i < N_MEMBERS; i++)
		sim.mem[i].m.up = 0;
	s = sched_fleet(given_new(1), &rc);
	CU_ASSERT_EQUAL(rc, -EHOSTUNREACH);
	dj_sched_destroy(s);

	/* A scheduler over sessions has no members. */
	CU_ASSERT_EQUAL(dj_sched_create_sim(NULL, given_new(2), &s), 0);
	CU_ASSERT_EQUAL(dj_sched_member(s, 0, &member), -ENOENT);
	dj_sched_destroy(s);
}

static void test_moves(void)
{
	struct dj_tensor_desc desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {10240}};
	struct dj_sched_stats st;
	struct dj_sched *s;
	uint64_t handle = 0;
	int rc;

	sim_reset();
	sim.mem[1].m.up = 0;
	s = sched_fleet(given_new(3), &rc);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_EQUAL_FATAL(s->go.mover, &s->mover);
	/* Server 0 to server 2 is member 0 to member 3: a MOVE (the source
	 * freed once the target confirmed), not a COPY. */
	rc = s->mover.move(s->mover.arg, 0, 0x42, 2, &desc, &handle);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(sim.moved.member, 0);
	CU_ASSERT_EQUAL(sim.moved.handle, 0x42);
	CU_ASSERT_EQUAL(sim.moved_to, 3);
	CU_ASSERT_EQUAL(sim.moved_flags & DJ_FLEET_COPY, 0);
	CU_ASSERT_EQUAL(handle, 0x1042);
	sim.move_path = DJ_PATH_DPDK;
	CU_ASSERT_EQUAL(s->mover.move(s->mover.arg, 2, 0x43, 1, &desc, &handle), 0);
	CU_ASSERT_EQUAL(sim.moved.member, 3);
	CU_ASSERT_EQUAL(sim.moved_to, 2);
	dj_sched_stats(s, &st);
	CU_ASSERT_EQUAL(st.kv_moves_direct, 2);
	CU_ASSERT_EQUAL(st.kv_moves_dpdk, 1);
	CU_ASSERT_EQUAL(st.kv_move_bytes_direct, 2 * 40960);
	CU_ASSERT_EQUAL(st.kv_move_ns, 2 * 2000000);
	CU_ASSERT_EQUAL(s->move_failed[0], -1);

	/* A failed move: its error, its servers named for recovery, nothing
	 * counted, the handle untouched. */
	sim.move_rc = -EHOSTDOWN;
	handle = 7;
	CU_ASSERT_EQUAL(s->mover.move(s->mover.arg, 1, 0x44, 0, &desc, &handle), -EHOSTDOWN);
	CU_ASSERT_EQUAL(handle, 7);
	CU_ASSERT_EQUAL(s->move_failed[0], 1);
	CU_ASSERT_EQUAL(s->move_failed[1], 0);
	dj_sched_stats(s, &st);
	CU_ASSERT_EQUAL(st.kv_moves_direct, 2);
	CU_ASSERT_EQUAL(st.kv_move_bytes_direct, 2 * 40960);
	dj_sched_destroy(s);
}

static void test_departures(void)
{
	struct dj_sched_stats st;
	struct dj_sched *s;
	int rc;

	sim_reset();
	s = sched_fleet(given_new(4), &rc);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	seq_add(s, "seq0", 0);
	seq_add(s, "seq1", 1);
	seq_add(s, "seq2", 2);
	seq_add(s, "seq3", 1);

	/* Nothing changed: nobody down. */
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 0);
	CU_ASSERT_FALSE(sc_fleet_gone(s, 1));

	/* m1 missed its STATS but answers a PING: a loaded machine, not a
	 * departure. */
	sim.mem[1].m.up = 0;
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 0);
	CU_ASSERT_TRUE(s->f.servers[1].up);

	/* Then it stops answering: down, its two sequences lost. */
	sim.mem[1].ping_rc = -ECONNREFUSED;
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 1);
	CU_ASSERT_FALSE(s->f.servers[1].up);
	CU_ASSERT_TRUE(s->seq[1].lost);
	CU_ASSERT_TRUE(s->seq[3].lost);
	CU_ASSERT_FALSE(s->seq[0].lost);
	/* Counted once, not again at the next look. */
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 0);

	/* m2 restarted: gone at once though its new incarnation answers. */
	sim.mem[2].restarted = 1;
	CU_ASSERT_TRUE(sc_fleet_gone(s, 2));
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 1);
	CU_ASSERT_TRUE(s->seq[2].lost);

	/* A member the view still has up, whose PING fails (the static view
	 * has not read its STATS yet): gone when a fetch failed on it. */
	sim.mem[3].ping_rc = -ECONNRESET;
	CU_ASSERT_TRUE(sc_fleet_gone(s, 3));
	CU_ASSERT_EQUAL(sc_fleet_departures(s), 0);
	dj_sched_stats(s, &st);
	CU_ASSERT_EQUAL(st.servers_lost, 2);
	CU_ASSERT_FALSE(s->seq[0].lost);
	dj_sched_destroy(s);
}

static void test_refresh(void)
{
	struct dj_sched *s;
	int rc;

	sim_reset();
	s = sched_fleet(given_new(4), &rc);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	s->reserved[0] = s->reserved[3] = 1ull << 20;
	sim.mem[0].m.devices[0].mem_free = 1ull << 20;
	sim.mem[0].m.queued = 3;
	sim.mem[3].m.up = 0;
	sim.mem[3].ping_rc = -ECONNREFUSED;
	CU_ASSERT_EQUAL(dj_sched_refresh(s), 0);
	CU_ASSERT_EQUAL(s->f.servers[0].mem_free, (1ull << 20) + (1ull << 29));
	CU_ASSERT_DOUBLE_EQUAL(s->f.servers[0].queued, 3.0, 1e-9);
	CU_ASSERT_EQUAL(s->reserved[0], 0);
	/* m3 left and does not answer: down, its figures as they were. */
	CU_ASSERT_FALSE(s->f.servers[3].up);
	CU_ASSERT_EQUAL(s->f.servers[3].mem_free, 1ull << 30);
	dj_sched_destroy(s);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"set-up: members up, figures from the view, the mover", test_setup},
		{"KV moves member to member, counted", test_moves},
		{"departures: left and silent, or restarted", test_departures},
		{"refresh from the view", test_refresh},
		{NULL, NULL},
	};

	/* Departures and failed moves are logged; the test says them. */
	dj_log_set_level(DJ_LOG_ERR);
	dj_test_add_suite("sched_fleet", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
