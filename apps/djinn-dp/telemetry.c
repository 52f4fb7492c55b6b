/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp's commands on DPDK's telemetry socket, for usertools'
 * dpdk-telemetry.py and anything else that speaks it:
 *
 *   /djinn/stats      server, request and data-plane counters
 *   /djinn/sessions   one dict per session (as of the last 100 ms sweep)
 *   /djinn/requests   per request type: ok, errors, p50 / p99 latency (us)
 *   /djinn/lcores     per polling lcore: loop and busy time, busy ratio
 *   /djinn/memory     per device: used, peak, limit, free, total bytes
 *
 * Callbacks run on DPDK's telemetry threads (one per client), several at
 * once; they read the same published snapshots as the metrics, under a
 * read lock that srv_telemetry_detach() takes for writing before the
 * server goes away.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "server.h"

static pthread_rwlock_t view_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct srv_view *view;
static int registered;

static void add_u64(struct rte_tel_data *d, const char *name, uint64_t v)
{
	rte_tel_data_add_dict_u64(d, name, v);
}

/* A dict to nest in another (freed with it); NULL where memory ran out. */
static struct rte_tel_data *dict_new(void)
{
	struct rte_tel_data *d = rte_tel_data_alloc();

	if (d != NULL)
		rte_tel_data_start_dict(d);
	return d;
}

static int cmd_stats(struct srv_view *v, struct rte_tel_data *d)
{
	struct ctl_server_stats s;
	struct ctl_request_stats r;
	uint64_t ok = 0, errors = 0;

	ctl_server_get_stats(v->ctl, &s);
	ctl_server_request_stats(v->ctl, &r);
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		ok += r.ok[t];
		errors += r.errors[t];
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "compute", rt_description(v->rt));
	add_u64(d, "connections_open", s.connections_open);
	add_u64(d, "connections_accepted", s.connections_accepted);
	add_u64(d, "sessions_opened", s.sessions_opened);
	add_u64(d, "sessions_attached", r.sessions[1][DJ_PATH_TCP] + r.sessions[1][DJ_PATH_DPDK]);
	add_u64(d, "sessions_lingering", r.sessions[0][DJ_PATH_TCP] + r.sessions[0][DJ_PATH_DPDK]);
	add_u64(d, "requests_ok", ok);
	add_u64(d, "requests_error", errors);
	add_u64(d, "request_queue_depth", r.jobs_queued);
	add_u64(d, "requests_running", r.jobs_running);
	add_u64(d, "tensor_bytes_tcp_in", r.tensor_bytes[DJ_PATH_TCP][CTL_DIR_IN]);
	add_u64(d, "tensor_bytes_tcp_out", r.tensor_bytes[DJ_PATH_TCP][CTL_DIR_OUT]);
	add_u64(d, "tensor_bytes_dpdk_in", r.tensor_bytes[DJ_PATH_DPDK][CTL_DIR_IN]);
	add_u64(d, "tensor_bytes_dpdk_out", r.tensor_bytes[DJ_PATH_DPDK][CTL_DIR_OUT]);
	add_u64(d, "control_bytes_in", s.bytes_in);
	add_u64(d, "control_bytes_out", s.bytes_out);
	add_u64(d, "auth_failures", s.auth_failures);
	add_u64(d, "protocol_errors", s.protocol_errors);
	add_u64(d, "dataplane_transfer_failures", r.dp_failures);
	if (v->dp != NULL) {
		struct dp_engine_stats e;
		struct dp_proto_stats p;

		dp_engine_get_stats(v->dp, &e, &p);
		add_u64(d, "dp_rx_packets", e.rx_packets);
		add_u64(d, "dp_tx_packets", e.tx_packets);
		add_u64(d, "dp_rx_bytes", e.rx_bytes);
		add_u64(d, "dp_tx_bytes", e.tx_bytes);
		add_u64(d, "dp_retransmitted_fragments", p.tx_retrans);
		add_u64(d, "dp_rejected_frames", dp_proto_stats_rejected(&p));
		add_u64(d, "dp_transfer_timeouts", p.tx_timeouts + p.rx_timeouts);
	}
	return 0;
}

static int cmd_sessions(struct srv_view *v, struct rte_tel_data *d)
{
	enum { MAX = RTE_TEL_MAX_DICT_ENTRIES };
	/* DPDK runs a thread per telemetry client: no static buffer. */
	struct ctl_session_info *list = calloc(MAX, sizeof(*list));
	int n = list != NULL ? ctl_server_sessions(v->ctl, list, MAX) : 0;

	if (list == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(d);
	for (int i = 0; i < n && i < MAX; i++) {
		struct rte_tel_data *s = dict_new();
		char name[24];

		if (s == NULL) {
			free(list);
			return -ENOMEM;
		}
		rte_tel_data_add_dict_string(s, "path", dj_path_name(list[i].path));
		rte_tel_data_add_dict_string(s, "state", list[i].attached ? "attached" : "lingering");
		rte_tel_data_add_dict_string(s, "peer", list[i].peer);
		add_u64(s, "age_ms", list[i].age_ms);
		add_u64(s, "requests", list[i].requests);
		add_u64(s, "bytes_in", list[i].bytes_in);
		add_u64(s, "bytes_out", list[i].bytes_out);
		add_u64(s, "handles", list[i].handles);
		add_u64(s, "inflight", list[i].inflight);
		add_u64(s, "dp_failures", list[i].dp_failures);
		snprintf(name, sizeof(name), "%" PRIu64, list[i].id);
		rte_tel_data_add_dict_container(d, name, s, 0);
	}
	free(list);
	return 0;
}

static int cmd_requests(struct srv_view *v, struct rte_tel_data *d)
{
	struct ctl_request_stats r;

	ctl_server_request_stats(v->ctl, &r);
	rte_tel_data_start_dict(d);
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		struct mx_histogram h = {CTL_LATENCY_BUCKETS, ctl_latency_bounds, r.latency[t], 0};
		struct rte_tel_data *o;

		if (r.ok[t] + r.errors[t] == 0 || (o = dict_new()) == NULL)
			continue;
		add_u64(o, "ok", r.ok[t]);
		add_u64(o, "error", r.errors[t]);
		add_u64(o, "mean_us", (r.latency_sum_ns[t] / (r.ok[t] + r.errors[t])) / 1000);
		add_u64(o, "p50_us", (uint64_t)(mx_histogram_quantile(&h, 0.5) * 1e6));
		add_u64(o, "p99_us", (uint64_t)(mx_histogram_quantile(&h, 0.99) * 1e6));
		rte_tel_data_add_dict_container(d, ctl_req_type_name((enum ctl_req_type)t), o, 0);
	}
	return 0;
}

static int cmd_lcores(struct srv_view *v, struct rte_tel_data *d)
{
	struct dp_engine_stats st;

	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; v->dp != NULL && dp_engine_lcore_stats(v->dp, i, &st) == 0; i++) {
		struct rte_tel_data *o = dict_new();
		char name[16];

		if (o == NULL)
			return -ENOMEM;
		add_u64(o, "loop_ns", st.loop_ns);
		add_u64(o, "busy_ns", st.busy_ns);
		add_u64(o, "busy_permille", (uint64_t)lround(srv_lcore_busy_ratio(v, i, &st) * 1000));
		add_u64(o, "rx_packets", st.rx_packets);
		add_u64(o, "tx_packets", st.tx_packets);
		add_u64(o, "idle_naps", st.idle_naps);
		add_u64(o, "idle_sleeps", st.idle_sleeps);
		add_u64(o, "idle_rx_wakes", st.idle_rx_wakes);
		snprintf(name, sizeof(name), "%u", i);
		rte_tel_data_add_dict_container(d, name, o, 0);
	}
	return 0;
}

static int cmd_memory(struct srv_view *v, struct rte_tel_data *d)
{
	struct rt_memory m[RT_MAX_DEVICES];
	int n = rt_memory(v->rt, m, RT_MAX_DEVICES);

	rte_tel_data_start_dict(d);
	for (int i = 0; i < n; i++) {
		struct rte_tel_data *o = dict_new();
		char name[32];

		if (o == NULL)
			return -ENOMEM;
		add_u64(o, "used", m[i].used);
		add_u64(o, "peak", m[i].peak);
		add_u64(o, "limit", m[i].limit);
		add_u64(o, "free", m[i].free);
		add_u64(o, "total", m[i].total);
		add_u64(o, "tensors", m[i].tensors);
		add_u64(o, "ops", m[i].ops);
		add_u64(o, "running", m[i].running);
		add_u64(o, "waiting", m[i].waiting);
		add_u64(o, "sessions", m[i].sessions);
		/* Telemetry names take [A-Za-z0-9_/]: cuda:0 is cuda_0. */
		snprintf(name, sizeof(name), "%.15s", m[i].device);
		for (char *c = name; *c != '\0'; c++)
			if (*c == ':')
				*c = '_';
		rte_tel_data_add_dict_container(d, name, o, 0);
	}
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct srv_view *v, struct rte_tel_data *d);
	const char *help;
} commands[] = {
	{"/djinn/stats", cmd_stats, "Djinn server, request and data-plane counters. No parameters."},
	{"/djinn/sessions", cmd_sessions, "Djinn sessions by id (as of the last 100 ms). No parameters."},
	{"/djinn/requests", cmd_requests, "Djinn requests by type: ok, error, mean/p50/p99 latency in us."},
	{"/djinn/lcores", cmd_lcores, "Djinn polling lcores: loop and busy time, busy per mille."},
	{"/djinn/memory", cmd_memory, "Djinn tensor memory per device, in bytes."},
};

static int on_command(const char *cmd, const char *params, struct rte_tel_data *d)
{
	int rc = -ENOENT;

	pthread_rwlock_rdlock(&view_lock);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		if (view == NULL) {
			rte_tel_data_string(d, "djinn-dp is not serving");
			rc = 0;
		} else {
			rc = commands[i].fn(view, d);
		}
	}
	pthread_rwlock_unlock(&view_lock);
	return rc;
}

int srv_telemetry_attach(struct srv_view *v)
{
	int rc = 0;

	for (size_t i = 0; !registered && rc == 0 && i < sizeof(commands) / sizeof(commands[0]); i++)
		rc = rte_telemetry_register_cmd(commands[i].name, on_command, commands[i].help);
	if (rc != 0)
		return rc;
	registered = 1;
	pthread_rwlock_wrlock(&view_lock);
	view = v;
	pthread_rwlock_unlock(&view_lock);
	return 0;
}

void srv_telemetry_detach(void)
{
	pthread_rwlock_wrlock(&view_lock);
	view = NULL;
	pthread_rwlock_unlock(&view_lock);
}
