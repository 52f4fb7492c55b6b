/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_SC_H
#define DJINN_SC_H

/*
 * Scheduler internals, shared by the files of scheduler/: the fleet's
 * figures and their measurement (sc_fleet.c), the cost model (sc_cost.c),
 * the rules that place a graph (sc_place.c), the object, the placer glue,
 * recovery and the decision log (sc_sched.c). Public API:
 * include/djinn/scheduler.h; docs/SCHEDULER.md.
 */
#include <stdint.h>

#include "djinn/fleet.h"
#include "djinn/graph.h"
#include "djinn/scheduler.h"

#define SC_MAX DJ_SCHED_MAX_SERVERS

/* A named thing the scheduler remembers: a sequence, a weight's pin, a
 * simulated state or weight copy. */
struct sc_seq {
	char name[DJ_SCHED_NAME_MAX];
	int server;
	int lost;
	uint64_t kv_bytes;
	double step_s;               /* expected cost of one of its steps, per token */
};

struct sc_pin {
	char name[DJ_SCHED_NAME_MAX];
	int server;
};

/* Simulation: where states and weight copies are (what a context knows). */
struct sc_sim {
	char name[DJ_SCHED_NAME_MAX];
	int is_state;
	uint64_t hash;
	uint64_t servers;            /* bit mask */
};

struct dj_sched {
	struct dj_sched_options o;
	struct dj_graph_options go;
	struct dj_graph_placer placer;
	struct dj_graph_ctx *ctx;    /* NULL: a simulation */
	struct dj_conn *conn[SC_MAX];
	/* Over a fleet (dj_sched_create_fleet): server s is member[s]; KV
	 * caches move with dj_fleet_move where mover is the context's. */
	struct dj_fleet *fleet;
	const struct sc_fleet_ops *fops;
	uint32_t member[SC_MAX];
	struct dj_graph_mover mover;
	int move_failed[2];          /* the last failed move's servers, -1 */
	int rebuilding;              /* inside a lineage callback */
	struct dj_sched_fleet f;
	uint64_t reserved[SC_MAX];   /* bytes placed since the last memory reading */
	int dry;                     /* placing for dj_sched_plan with servers */
	struct sc_seq *seq;
	int n_seq, cap_seq;
	struct sc_pin *pin;
	int n_pin, cap_pin;
	struct sc_sim *sim;
	int n_sim, cap_sim;
	/* What the simulated run will have made, applied once the graph's
	 * plan is built (it counts uploads against the tables before). */
	struct sc_sim *pend;
	int n_pend, cap_pend;
	struct dj_sched_decision *d;
	int n_d, cap_d;
	dj_sched_rebuild_fn rebuild;
	void *rebuild_arg;
	int rr_next;                 /* round-robin mode: the next server */
	struct dj_sched_stats st;
};

/* sc_fleet.c */
/* Whether units a and b are devices of one server (a == b too). */
static inline int sc_same_server(const struct dj_sched_fleet *f, int a, int b)
{
	return a == b || (f->servers[a].group != 0 && f->servers[a].group == f->servers[b].group);
}
/* STATS of one server into the memory and queue figures of its units
 * sv[0..n-1] (one unit without a device: the whole server's). */
int sc_stats_read(struct dj_conn *conn, struct dj_sched_server *sv, int n);
/* The devices of one server. */
#define SC_MAX_DEVICES 16
struct sc_devs {
	int n;
	char name[SC_MAX_DEVICES][DJ_SCHED_DEVICE_MAX];
};
/* A simulated peer-copy link (PCIe class). */
#define SC_SIM_PEER_RTT_S 10e-6
#define SC_SIM_PEER_BPS 20e9
/* The devices a server names (STATS' backend.memory[]); n 0: none. */
int sc_devices_read(struct dj_conn *conn, struct sc_devs *devs);
/* f's servers (one session each, conns[]; NULL in a simulation) made
 * units: server i with devs[i].n >= 2 devices becomes that many units
 * "NAME/device" with its figures, group i + 1; the others stay as they
 * are. Peer links simulated, the rest derived (dj_sched_fleet_links);
 * unit_conn[] (may be NULL) each unit's session. @return 0, -EINVAL (over
 * SC_MAX units). */
int sc_units_expand(struct dj_sched_fleet *f, const struct sc_devs *devs,
		    struct dj_conn *const *conns, struct dj_conn **unit_conn);
/* The peer-copy links between the devices of every server with several,
 * measured with to_device on its session (4 B and 1 MiB, the least of a
 * few); a pair that fails keeps the simulated figures. */
void sc_peer_links_probe(struct dj_sched_fleet *f, struct dj_conn *const *unit_conn);
/* Given figures (an earlier scheduler's) over n sessions: each unit's
 * session, the units of one group on one session. @return the number of
 * units, -EINVAL (they do not match n sessions). */
int sc_units_of_given(const struct dj_sched_fleet *given, struct dj_conn *const *conns, int n,
		      struct dj_conn **unit_conn);

/* sc_fleet_view.c: the scheduler over a fleet (dj_sched_create_fleet). */
/* What the scheduler asks of a fleet: the fleet client's calls
 * (sc_fleet_client), or a unit test's simulated members. Calibration and
 * link probes are no part of it: they need real members. */
struct sc_fleet_ops {
	int (*view)(struct dj_fleet *fleet, struct dj_fleet_member *members, int max);
	int (*member)(struct dj_fleet *fleet, uint32_t index, struct dj_fleet_member *member);
	int (*conn)(struct dj_fleet *fleet, uint32_t index, struct dj_conn **conn);
	int (*move)(struct dj_fleet *fleet, struct dj_fleet_handle handle, uint32_t to,
		    unsigned int flags, struct dj_fleet_handle *out,
		    struct dj_fleet_move_info *info);
	int (*ping)(struct dj_conn *conn);
	const char *(*last_error)(void);
};
extern const struct sc_fleet_ops sc_fleet_client;
/* s over the members of fleet up now: s->member[], conns[] (their
 * sessions, for sc_sched_attach), s->f (given's figures where given, else
 * calibrated and links probed), the mover where every member accepts
 * moves. @return 0, -EHOSTUNREACH (none up), -EINVAL (given of another
 * size), a session's or the calibration's error. */
int sc_fleet_setup(struct dj_sched *s, const struct sc_fleet_ops *ops, struct dj_fleet *fleet,
		   const struct dj_sched_fleet *given, struct dj_conn **conns);
/* Members that left (and do not answer a PING) or restarted since the
 * last look, marked down: their number. */
int sc_fleet_departures(struct dj_sched *s);
/* Whether fleet server `server` is gone: the view says it restarted, or
 * a PING goes unanswered. */
int sc_fleet_gone(struct dj_sched *s, int server);
/* Memory and queue of every up server from the view; departures marked. */
int sc_fleet_refresh(struct dj_sched *s);

/* sc_sched.c: the object. */
/* A scheduler with its options, no servers yet. */
int sc_sched_new(const struct dj_sched_options *opts, struct dj_sched **out);
/* Its graph context over servers[0..n-1] (figures in s->f already). */
int sc_sched_attach(struct dj_sched *s, struct dj_conn *const *servers, int n);

/* sc_cost.c: seconds. */
/* The arithmetic of op node ni on server sv, plus its per-op overhead. */
double sc_compute_s(const struct dj_sched_server *sv, const struct dj_graph_node_info *ni,
		    const struct dj_graph_node_info *all);
/* Bytes moved from server a to b (a != b). */
double sc_move_s(const struct dj_sched_fleet *f, int a, int b, uint64_t bytes);
/* Bytes uploaded from the client to server s. */
double sc_upload_s(const struct dj_sched_server *sv, uint64_t bytes);
/* Waiting for the requests queued there. */
double sc_queue_s(const struct dj_sched_server *sv);
/* Memory still free on s: its reading minus what was placed since. */
uint64_t sc_mem_free(const struct dj_sched *s, int server);

/* sc_place.c: the placer's body. */
int sc_place(struct dj_sched *s, struct dj_graph *g, const uint8_t *needed, int *server,
	     char *why, size_t why_len);

/* sc_sched.c: the tables and the log. */
struct sc_seq *sc_seq_find(struct dj_sched *s, const char *name);
int sc_seq_set(struct dj_sched *s, const char *name, int server, uint64_t kv_bytes,
	       double step_s);
void sc_seq_drop(struct dj_sched *s, const char *name);
int sc_pin_find(const struct dj_sched *s, const char *name);
int sc_pin_set(struct dj_sched *s, const char *name, int server);
struct sc_sim *sc_sim_find(struct dj_sched *s, const char *name, int is_state, uint64_t hash);
int sc_sim_add(struct dj_sched *s, const char *name, int is_state, uint64_t hash, int server);
/* Remember a state or weight copy to add once the plan is built. */
int sc_sim_pend(struct dj_sched *s, const char *name, int is_state, uint64_t hash, int server);
/* A new decision, zeroed but for rule, node and server; NULL: no memory. */
struct dj_sched_decision *sc_decide(struct dj_sched *s, enum dj_sched_rule rule, int node,
				    int server);
/* The sequence a state's name belongs to (the part before its last '/'). */
void sc_seq_name(const char *state, char *out, size_t len);

#endif
