/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp's metric families in Prometheus' text format, and STATS'
 * data-plane object. Names: djinn_ prefix, base units (bytes, seconds),
 * _total on counters; labels: path (tcp, dpdk), direction (in/out for
 * tensors, rx/tx for packets), type and result of requests, reason of
 * drops and rejections, device of memory, lcore index. Every value is
 * read from a published snapshot: a scrape never stalls a polling lcore.
 */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/proto/wire.h"
#include "fleet/fl_agent.h"
#include "server.h"

#define LABELS 160

static const char *const dir_name[CTL_DIRS] = {"in", "out"};

void srv_view_init(struct srv_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->ratio_lock, NULL);
}

void srv_view_fini(struct srv_view *v)
{
	pthread_mutex_destroy(&v->ratio_lock);
}

double srv_lcore_busy_ratio(struct srv_view *v, unsigned int idx, const struct dp_engine_stats *st)
{
	double ratio;

	if (idx >= DP_PORT_MAX_QUEUES)
		return NAN;
	pthread_mutex_lock(&v->ratio_lock);
	typeof(v->lcore[0]) *w = &v->lcore[idx];

	if (st->loop_ns - w->loop_ns >= 1000000000ull) {
		w->ratio = (double)(st->busy_ns - w->busy_ns) / (double)(st->loop_ns - w->loop_ns);
		w->loop_ns = st->loop_ns;
		w->busy_ns = st->busy_ns;
	} else if (w->loop_ns == 0) {
		/* No window yet: since the start. */
		w->ratio = st->loop_ns ? (double)st->busy_ns / (double)st->loop_ns : 0.0;
	}
	ratio = w->ratio;
	pthread_mutex_unlock(&v->ratio_lock);
	return ratio;
}

/* One counter or gauge family with a single unlabelled sample. */
static void one(struct mx_writer *w, const char *name, enum mx_type type, const char *help,
		uint64_t value)
{
	mx_family(w, name, type, help);
	mx_sample_u64(w, name, NULL, value);
}

/* A counter family of two samples that differ in one label's value. */
static void two(struct mx_writer *w, const char *name, const char *help, const char *label,
		const char *a_name, uint64_t a, const char *b_name, uint64_t b)
{
	char l[LABELS];

	mx_family(w, name, MX_COUNTER, help);
	mx_labels(l, sizeof(l), label, a_name, NULL);
	mx_sample_u64(w, name, l, a);
	mx_labels(l, sizeof(l), label, b_name, NULL);
	mx_sample_u64(w, name, l, b);
}

/* A counter family of the control plane's [path][direction] figures. */
static void by_path_dir(struct mx_writer *w, const char *name, const char *help,
			const uint64_t v[3][CTL_DIRS])
{
	char l[LABELS];

	mx_family(w, name, MX_COUNTER, help);
	for (int p = DJ_PATH_TCP; p <= DJ_PATH_DPDK; p++) {
		for (int d = 0; d < CTL_DIRS; d++) {
			mx_labels(l, sizeof(l), "path", dj_path_name((enum dj_path)p), "direction",
				  dir_name[d], NULL);
			mx_sample_u64(w, name, l, v[p][d]);
		}
	}
}

static void collect_control(struct srv_view *v, struct mx_writer *w)
{
	static const char *const state_name[2] = {"lingering", "attached"};
	struct ctl_server_stats s;
	struct ctl_request_stats r;
	char l[LABELS];

	ctl_server_get_stats(v->ctl, &s);
	ctl_server_request_stats(v->ctl, &r);
	one(w, "djinn_connections", MX_GAUGE, "Control connections open.", s.connections_open);
	one(w, "djinn_connections_accepted_total", MX_COUNTER, "Control connections accepted.",
	    s.connections_accepted);
	one(w, "djinn_auth_failures_total", MX_COUNTER, "Handshakes refused.", s.auth_failures);
	one(w, "djinn_protocol_errors_total", MX_COUNTER,
	    "Messages that broke the protocol (malformed, unknown type).", s.protocol_errors);
	two(w, "djinn_control_bytes_total",
	    "Bytes on control connections, TCP tensor payloads included.", "direction", "in",
	    s.bytes_in, "out", s.bytes_out);
	one(w, "djinn_sessions_opened_total", MX_COUNTER, "Sessions opened.", s.sessions_opened);
	mx_family(w, "djinn_sessions", MX_GAUGE,
		  "Sessions now: attached to a connection, or lingering for a resume.");
	for (int a = 0; a < 2; a++) {
		for (int p = DJ_PATH_TCP; p <= DJ_PATH_DPDK; p++) {
			mx_labels(l, sizeof(l), "state", state_name[a], "path",
				  dj_path_name((enum dj_path)p), NULL);
			mx_sample_u64(w, "djinn_sessions", l, r.sessions[a][p]);
		}
	}

	mx_family(w, "djinn_requests_total", MX_COUNTER, "Requests answered, by type and result.");
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		const char *type = ctl_req_type_name((enum ctl_req_type)t);

		mx_labels(l, sizeof(l), "type", type, "result", "ok", NULL);
		mx_sample_u64(w, "djinn_requests_total", l, r.ok[t]);
		mx_labels(l, sizeof(l), "type", type, "result", "error", NULL);
		mx_sample_u64(w, "djinn_requests_total", l, r.errors[t]);
	}
	mx_family(w, "djinn_request_duration_seconds", MX_HISTOGRAM,
		  "From a request read whole to its reply written (a TCP GET: its last byte).");
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		struct mx_histogram h = {CTL_LATENCY_BUCKETS, ctl_latency_bounds, r.latency[t],
					 (double)r.latency_sum_ns[t] / 1e9};

		mx_labels(l, sizeof(l), "type", ctl_req_type_name((enum ctl_req_type)t), NULL);
		mx_histogram(w, "djinn_request_duration_seconds", l, &h);
	}
	one(w, "djinn_request_queue_depth", MX_GAUGE, "Requests waiting for a worker thread.",
	    r.jobs_queued);
	one(w, "djinn_requests_running", MX_GAUGE, "Requests on a worker thread now.",
	    r.jobs_running);

	by_path_dir(w, "djinn_tensor_bytes_total", "Tensor bytes that reached their destination, "
		    "by path and direction (in: PUT, out: GET).", r.tensor_bytes);
	by_path_dir(w, "djinn_tensor_transfers_total",
		    "Tensor transfers completed, by path and direction.", r.tensor_transfers);
	one(w, "djinn_dataplane_transfer_failures_total", MX_COUNTER,
	    "Data-plane transfers of requests that failed (the client redoes them over TCP).",
	    r.dp_failures);
}

static void rx_tx(struct mx_writer *w, const char *name, const char *help, uint64_t rx,
		  uint64_t tx)
{
	two(w, name, help, "direction", "rx", rx, "tx", tx);
}

static void collect_lcores(struct srv_view *v, struct mx_writer *w)
{
	static const char *const names[] = {"djinn_dataplane_lcore_seconds_total",
					    "djinn_dataplane_lcore_busy_seconds_total",
					    "djinn_dataplane_lcore_busy_ratio"};
	static const char *const helps[] = {
		"Time each polling lcore ran its loop.",
		"Time each polling lcore spent in iterations that moved a packet or a command.",
		"Busy share of each polling lcore over its last window of at least 1 s."};
	struct dp_engine_stats st[DP_PORT_MAX_QUEUES];
	unsigned int n = 0;
	char l[LABELS], idx[16];

	while (n < DP_PORT_MAX_QUEUES && dp_engine_lcore_stats(v->dp, n, &st[n]) == 0)
		n++;
	for (int f = 0; f < 3; f++) {
		mx_family(w, names[f], f < 2 ? MX_COUNTER : MX_GAUGE, helps[f]);
		for (unsigned int i = 0; i < n; i++) {
			snprintf(idx, sizeof(idx), "%u", i);
			mx_labels(l, sizeof(l), "lcore", idx, NULL);
			if (f == 0)
				mx_sample(w, names[f], l, (double)st[i].loop_ns / 1e9);
			else if (f == 1)
				mx_sample(w, names[f], l, (double)st[i].busy_ns / 1e9);
			else
				mx_sample(w, names[f], l, srv_lcore_busy_ratio(v, i, &st[i]));
		}
	}
}

static void collect_dataplane(struct srv_view *v, struct mx_writer *w)
{
	struct dp_engine_stats e;
	struct dp_proto_stats p;
	struct dp_engine_stage_stats g;
	char l[LABELS];

	dp_engine_get_stats(v->dp, &e, &p);
	rx_tx(w, "djinn_dataplane_packets_total", "Data-plane frames received and sent.",
	      e.rx_packets, e.tx_packets);
	rx_tx(w, "djinn_dataplane_bytes_total", "Data-plane frame bytes received and sent.",
	      e.rx_bytes, e.tx_bytes);
	mx_family(w, "djinn_dataplane_dropped_packets_total", MX_COUNTER,
		  "Frames the data plane dropped, by reason.");
	for (int i = 0; i < DP_DROP_MAX; i++) {
		mx_labels(l, sizeof(l), "reason", dp_drop_name((enum dp_drop)i), NULL);
		mx_sample_u64(w, "djinn_dataplane_dropped_packets_total", l, e.drops[i]);
	}
	mx_family(w, "djinn_dataplane_rejected_frames_total", MX_COUNTER,
		  "Frames the transfer protocol refused, by reason (duplicate: already placed).");
	for (int i = DP_REJ_NONE + 1; i < DP_REJ_COUNT; i++) {
		mx_labels(l, sizeof(l), "reason", dp_wire_reject_name((enum dp_wire_reject)i), NULL);
		mx_sample_u64(w, "djinn_dataplane_rejected_frames_total", l, p.rx_reject[i]);
	}
	/* Two families, not one split by cause: a fragment a NACK queued
	 * may never go out again (an ACK overtook it), so the difference
	 * is no counter. */
	one(w, "djinn_dataplane_retransmitted_fragments_total", MX_COUNTER,
	    "Fragments sent again (after a NACK or a retransmission timeout).", p.tx_retrans);
	one(w, "djinn_dataplane_nack_requested_fragments_total", MX_COUNTER,
	    "Fragments that NACKs asked for again.", p.tx_retrans_nack);
	one(w, "djinn_dataplane_rto_expirations_total", MX_COUNTER,
	    "Retransmission timer expirations (they fail no transfer).", p.rto_expired);
	one(w, "djinn_dataplane_rto_spurious_total", MX_COUNTER,
	    "Retransmission timeouts found spurious: the receiver acknowledged first copies "
	    "of fragments the timeout had not resent yet, and resending stopped.",
	    p.rto_spurious);
	rx_tx(w, "djinn_dataplane_transfer_timeouts_total",
	      "Transfers the protocol failed by its liveness rule: no progress and a silent "
	      "peer for dead_timeout, or no progress for stall_timeout (rx: receiving, tx: "
	      "sending).", p.rx_timeouts, p.tx_timeouts);
	mx_family(w, "djinn_dataplane_transfers_total", MX_COUNTER,
		  "Data-plane transfers finished, by direction and result.");
	mx_labels(l, sizeof(l), "direction", "rx", "result", "ok", NULL);
	mx_sample_u64(w, "djinn_dataplane_transfers_total", l, p.rx_completed);
	mx_labels(l, sizeof(l), "direction", "rx", "result", "failed", NULL);
	mx_sample_u64(w, "djinn_dataplane_transfers_total", l, p.rx_failed);
	mx_labels(l, sizeof(l), "direction", "tx", "result", "ok", NULL);
	mx_sample_u64(w, "djinn_dataplane_transfers_total", l, p.tx_completed);
	mx_labels(l, sizeof(l), "direction", "tx", "result", "failed", NULL);
	mx_sample_u64(w, "djinn_dataplane_transfers_total", l, p.tx_failed);
	rx_tx(w, "djinn_dataplane_payload_bytes_total",
	      "Tensor payload bytes the transfer protocol placed (rx) and handed out (tx).",
	      p.rx_data_bytes, p.tx_data_bytes);
	one(w, "djinn_dataplane_idle_naps_total", MX_COUNTER,
	    "Naps of idle polling lcores (--dp-idle nap, or interrupt without one).",
	    e.idle_naps);
	one(w, "djinn_dataplane_idle_sleeps_total", MX_COUNTER,
	    "Sleeps of idle lcores on their rx interrupt (--dp-idle interrupt).", e.idle_sleeps);
	one(w, "djinn_dataplane_idle_rx_wakes_total", MX_COUNTER,
	    "Of those sleeps, the ones a received frame ended.", e.idle_rx_wakes);
	collect_lcores(v, w);

	dp_engine_stage_stats(v->dp, &g);
	two(w, "djinn_gpu_sends_total",
	    "Tensors sent from GPU memory: through the staging ring, or after one whole copy.",
	    "mode", "staged", g.staged_sends, "whole", g.whole_sends);
	one(w, "djinn_gpu_send_chunks_total", MX_COUNTER,
	    "Staging chunks copied from GPU memory for sending.", g.chunks);
}

/* The gather per GPU: the placer's device i is the runtime's device i. */
static void collect_gather_devices(struct srv_view *v, const struct djg_dp_placer_stats *g,
				   struct mx_writer *w)
{
	struct rt_device_info devs[RT_MAX_DEVICES];
	int n = rt_devices(v->rt, devs, RT_MAX_DEVICES);
	char l[LABELS];

	mx_family(w, "djinn_gpu_gather_device_bytes_total", MX_COUNTER,
		  "Received bytes gathered into tensors, per GPU.");
	for (int i = 0; i < n && i < g->n_devs; i++) {
		mx_labels(l, sizeof(l), "device", devs[i].name, NULL);
		mx_sample_u64(w, "djinn_gpu_gather_device_bytes_total", l, g->dev[i].bytes);
	}
	one(w, "djinn_gpu_gather_mixed_bursts_total", MX_COUNTER,
	    "Receive bursts whose fragments went to several GPUs.", g->mixed_bursts);
}

/* Which receive mover runs, what the start-up measurement found, and what
 * the copy mover's chunks carried. */
static void collect_mover(const struct djg_dp_placer_stats *g, struct mx_writer *w)
{
	static const enum djg_rx_mover movers[] = {DJG_MOVER_GATHER, DJG_MOVER_COPY};
	const double rates[] = {g->gather_gbytes_s, g->copy_gbytes_s};
	char l[LABELS];

	mx_family(w, "djinn_gpu_rx_mover", MX_GAUGE,
		  "1 for the receive mover in use (gather kernel or copy engine).");
	mx_labels(l, sizeof(l), "mover", djg_rx_mover_name(g->mover), "asked",
		  djg_rx_mover_name(g->mover_asked), NULL);
	mx_sample_u64(w, "djinn_gpu_rx_mover", l, 1);
	mx_family(w, "djinn_gpu_rx_mover_measured_bytes_per_second", MX_GAUGE,
		  "Start-up measurement of each receive mover (0: not measured).");
	for (int i = 0; i < 2; i++) {
		mx_labels(l, sizeof(l), "mover", djg_rx_mover_name(movers[i]), NULL);
		mx_sample(w, "djinn_gpu_rx_mover_measured_bytes_per_second", l, rates[i] * 1e9);
	}
	one(w, "djinn_gpu_rx_chunk_bytes_total", MX_COUNTER,
	    "Received bytes packed into pinned chunks (copy mover).", g->chunk_bytes);
	one(w, "djinn_gpu_rx_chunks_total", MX_COUNTER,
	    "Pinned chunks handed to the copy engine.", g->chunks);
	one(w, "djinn_gpu_rx_chunk_copies_total", MX_COUNTER,
	    "Copy-engine copies issued for chunks (one per run of contiguous bytes).",
	    g->chunk_copies);
	one(w, "djinn_gpu_rx_chunk_waits_total", MX_COUNTER,
	    "Times a receive lcore waited for a chunk still in flight.", g->chunk_waits);
}

static void collect_gather(struct srv_view *v, struct mx_writer *w)
{
	struct djg_dp_placer_stats g;

	djg_dp_placer_stats_get(v->placer, &g);
	one(w, "djinn_gpu_gather_bytes_total", MX_COUNTER,
	    "Received bytes the GPU gathered into tensors.", g.sink.bytes);
	one(w, "djinn_gpu_gather_bursts_total", MX_COUNTER, "Receive bursts handed to the GPU.",
	    g.sink.bursts);
	one(w, "djinn_gpu_gather_kernel_generations_total", MX_COUNTER,
	    "Resident gather kernels started (one leaves whenever the GPU goes idle).",
	    g.sink.generations);
	one(w, "djinn_gpu_gather_direct_copies_total", MX_COUNTER,
	    "Fragments copied synchronously because the gather could not take them.",
	    g.direct_copies);
	one(w, "djinn_gpu_gather_failures_total", MX_COUNTER, "Fragments whose copy failed.",
	    g.failures);
	collect_gather_devices(v, &g, w);
	collect_mover(&g, w);
}

/* One counter family per device and direction: fields @p in and @p out of
 * each device's figures. */
static void in_out(struct mx_writer *w, const struct rt_memory *m, int n, const char *name,
		   const char *help, size_t in, size_t out)
{
	char l[LABELS];

	mx_family(w, name, MX_COUNTER, help);
	for (int i = 0; i < n; i++) {
		uint64_t vi, vo;

		memcpy(&vi, (const char *)&m[i] + in, sizeof(vi));
		memcpy(&vo, (const char *)&m[i] + out, sizeof(vo));
		mx_labels(l, sizeof(l), "device", m[i].device, "direction", "in", NULL);
		mx_sample_u64(w, name, l, vi);
		mx_labels(l, sizeof(l), "device", m[i].device, "direction", "out", NULL);
		mx_sample_u64(w, name, l, vo);
	}
}

/* What each device does: the unit a scheduler places on is (server, GPU). */
static void collect_device_load(const struct rt_memory *m, int n, struct mx_writer *w)
{
	static const struct {
		const char *name;
		enum mx_type type;
		const char *help;
		size_t off;
	} fams[] = {
		{"djinn_device_ops_total", MX_COUNTER, "Operations run on the device.",
		 offsetof(struct rt_memory, ops)},
		{"djinn_device_ops_failed_total", MX_COUNTER, "Operations that failed on the device.",
		 offsetof(struct rt_memory, ops_failed)},
		{"djinn_device_running", MX_GAUGE, "Operations and moves on the device now.",
		 offsetof(struct rt_memory, running)},
		{"djinn_device_queued", MX_GAUGE,
		 "Operations and moves waiting for one of the device's contexts.",
		 offsetof(struct rt_memory, waiting)},
		{"djinn_device_sessions", MX_GAUGE, "Open sessions whose default device it is.",
		 offsetof(struct rt_memory, sessions)},
	};
	char l[LABELS];

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		mx_family(w, fams[f].name, fams[f].type, fams[f].help);
		for (int i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&m[i] + fams[f].off, sizeof(v));
			mx_labels(l, sizeof(l), "device", m[i].device, NULL);
			mx_sample_u64(w, fams[f].name, l, v);
		}
	}
	in_out(w, m, n, "djinn_device_moves_total",
	       "Moves between devices of this server (to_device), by direction.",
	       offsetof(struct rt_memory, moves_in), offsetof(struct rt_memory, moves_out));
	in_out(w, m, n, "djinn_device_move_bytes_total",
	       "Bytes moved between devices of this server, by direction.",
	       offsetof(struct rt_memory, move_bytes_in), offsetof(struct rt_memory, move_bytes_out));
}

static void collect_memory(struct srv_view *v, struct mx_writer *w)
{
	static const char *const names[] = {"djinn_memory_used_bytes", "djinn_memory_peak_bytes",
					    "djinn_memory_free_bytes", "djinn_memory_total_bytes",
					    "djinn_memory_limit_bytes", "djinn_tensors"};
	static const char *const helps[] = {
		"Bytes resident tensors hold, per device.",
		"The most bytes resident tensors held at once, per device.",
		"The device's free memory (GPU: cudaMemGetInfo; host: MemAvailable).",
		"The device's memory.",
		"Bytes tensors may hold over all sessions (--total-mem-limit; absent: none).",
		"Resident tensors, per device."};
	struct rt_memory m[RT_MAX_DEVICES];
	int n = rt_memory(v->rt, m, RT_MAX_DEVICES);
	char l[LABELS];

	for (int f = 0; f < 6; f++) {
		mx_family(w, names[f], MX_GAUGE, helps[f]);
		for (int i = 0; i < n; i++) {
			const uint64_t vals[] = {m[i].used, m[i].peak, m[i].free, m[i].total,
						 m[i].limit, m[i].tensors};

			if (f == 4 && m[i].limit == 0)
				continue;
			mx_labels(l, sizeof(l), "device", m[i].device, NULL);
			mx_sample_u64(w, names[f], l, vals[f]);
		}
	}
	mx_family(w, "djinn_memory_refused_allocations_total", MX_COUNTER,
		  "Allocations refused by the memory limits, per device.");
	for (int i = 0; i < n; i++) {
		mx_labels(l, sizeof(l), "device", m[i].device, NULL);
		mx_sample_u64(w, "djinn_memory_refused_allocations_total", l, m[i].refused);
	}
	collect_device_load(m, n, w);
}

void srv_metrics_collect(void *view, struct mx_writer *w)
{
	struct srv_view *v = view;
	char l[LABELS];

	mx_family(w, "djinn_build_info", MX_GAUGE, "Always 1; the labels say what runs.");
	mx_labels(l, sizeof(l), "version", DJINN_VERSION, "compute", rt_description(v->rt),
		  "dataplane", v->dp != NULL ? "dpdk" : "none", NULL);
	mx_sample(w, "djinn_build_info", l, 1);
	mx_family(w, "djinn_start_time_seconds", MX_GAUGE, "When the server started (Unix time).");
	mx_sample(w, "djinn_start_time_seconds", NULL, v->start_time);
	collect_control(v, w);
	collect_memory(v, w);
	if (v->dp != NULL)
		collect_dataplane(v, w);
	if (v->placer != NULL)
		collect_gather(v, w);
}

void srv_fleet_collect(void *agent, struct mx_writer *w)
{
	struct fl_agent *a = agent;
	int members, stale;
	const char *kind = fl_agent_members(a, &members, &stale);
	char l[LABELS];

	if (strcmp(kind, "none") == 0)
		return;
	mx_family(w, "djinn_fleet_members", MX_GAUGE,
		  "Members in this server's view of its fleet (static list or etcd).");
	mx_labels(l, sizeof(l), "membership", kind, NULL);
	mx_sample_u64(w, "djinn_fleet_members", l, (uint64_t)members);
	one(w, "djinn_fleet_registered", MX_GAUGE,
	    "1 while this member's record is registered (etcd: under a live lease; static: 1).",
	    (uint64_t)fl_agent_registered(a));
	one(w, "djinn_fleet_view_stale", MX_GAUGE,
	    "1 while etcd cannot be read and the view is the last one read.", (uint64_t)stale);
}

/* ---- STATS' data_plane object ----------------------------------------------- */

static void stats_lcores(struct srv_view *v, cJSON *d)
{
	cJSON *list = cJSON_AddArrayToObject(d, "lcores");
	struct dp_engine_stats st;

	for (unsigned int i = 0; list != NULL && dp_engine_lcore_stats(v->dp, i, &st) == 0; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "loop_ns", (double)st.loop_ns);
		cJSON_AddNumberToObject(o, "busy_ns", (double)st.busy_ns);
		cJSON_AddNumberToObject(o, "rx_packets", (double)st.rx_packets);
		cJSON_AddNumberToObject(o, "tx_packets", (double)st.tx_packets);
		cJSON_AddItemToArray(list, o);
	}
}

/* "gpu_rx_devices": [{device, bytes, bursts}], the placer's device i
 * being the runtime's device i. */
static void stats_gather_devices(struct srv_view *v, const struct djg_dp_placer_stats *g,
				 cJSON *d)
{
	struct rt_device_info devs[RT_MAX_DEVICES];
	int n = rt_devices(v->rt, devs, RT_MAX_DEVICES);
	cJSON *list = cJSON_AddArrayToObject(d, "gpu_rx_devices");

	for (int i = 0; i < n && i < g->n_devs && list != NULL; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "device", devs[i].name);
		cJSON_AddNumberToObject(o, "bytes", (double)g->dev[i].bytes);
		cJSON_AddNumberToObject(o, "bursts", (double)g->dev[i].bursts);
		cJSON_AddItemToArray(list, o);
	}
}

void srv_stats_json(void *view, cJSON *obj)
{
	struct srv_view *v = view;
	cJSON *d = cJSON_AddObjectToObject(obj, "data_plane");
	struct djg_dp_placer_stats g;

	if (d == NULL)
		return;
	cJSON_AddBoolToObject(d, "running", v->dp != NULL);
	if (v->dp != NULL) {
		struct dp_engine_stats e;
		struct dp_proto_stats p;

		dp_engine_get_stats(v->dp, &e, &p);
		cJSON_AddNumberToObject(d, "rx_bytes", (double)e.rx_bytes);
		cJSON_AddNumberToObject(d, "tx_bytes", (double)e.tx_bytes);
		cJSON_AddNumberToObject(d, "retransmits", (double)p.tx_retrans);
		cJSON_AddNumberToObject(d, "rejected", (double)dp_proto_stats_rejected(&p));
		stats_lcores(v, d);
	}
	if (v->placer == NULL) {
		cJSON_AddStringToObject(d, "gpu_rx_path", "none (tensors in host memory)");
		return;
	}
	djg_dp_placer_stats_get(v->placer, &g);
	cJSON_AddStringToObject(d, "gpu_rx_path", djg_rx_path_name(g.sink.path));
	cJSON_AddStringToObject(d, "gpu_gather", v->gather_mode == DJG_GATHER_PERSISTENT ?
						 "persistent" : "launch");
	cJSON_AddNumberToObject(d, "gpu_rx_bytes", (double)g.sink.bytes);
	cJSON_AddNumberToObject(d, "gpu_rx_bursts", (double)g.sink.bursts);
	cJSON_AddNumberToObject(d, "gpu_rx_direct_copies", (double)g.direct_copies);
	cJSON_AddNumberToObject(d, "gpu_rx_failures", (double)g.failures);
	cJSON_AddNumberToObject(d, "gpu_rx_kernel_generations", (double)g.sink.generations);
	cJSON_AddNumberToObject(d, "gpu_rx_mixed_bursts", (double)g.mixed_bursts);
	cJSON_AddStringToObject(d, "gpu_rx_mover", djg_rx_mover_name(g.mover));
	cJSON_AddStringToObject(d, "gpu_rx_mover_asked", djg_rx_mover_name(g.mover_asked));
	cJSON_AddNumberToObject(d, "gpu_rx_gather_gbytes_s", g.gather_gbytes_s);
	cJSON_AddNumberToObject(d, "gpu_rx_copy_gbytes_s", g.copy_gbytes_s);
	cJSON_AddNumberToObject(d, "gpu_rx_chunk_bytes", (double)g.chunk_bytes);
	cJSON_AddNumberToObject(d, "gpu_rx_chunks", (double)g.chunks);
	cJSON_AddNumberToObject(d, "gpu_rx_chunk_copies", (double)g.chunk_copies);
	cJSON_AddNumberToObject(d, "gpu_rx_chunk_waits", (double)g.chunk_waits);
	stats_gather_devices(v, &g, d);
}
