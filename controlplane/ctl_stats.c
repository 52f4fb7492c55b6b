/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the server counts of its requests, tensors and sessions, for STATS,
 * metrics and telemetry. The epoll thread is the only writer of every
 * counter here (worker jobs are settled on it too), so an increment is a
 * relaxed load and store, and readers on other threads see whole values.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_server.h"

#define TAG "ctl"

static const char *const type_names[CTL_REQ_TYPES] = {
	[CTL_REQ_HELLO] = "HELLO", [CTL_REQ_AUTH] = "AUTH", [CTL_REQ_SESSION] = "SESSION",
	[CTL_REQ_PATH] = "PATH", [CTL_REQ_STATS] = "STATS", [CTL_REQ_ALLOC] = "ALLOC",
	[CTL_REQ_PUT] = "PUT", [CTL_REQ_PUT_DONE] = "PUT_DONE", [CTL_REQ_GET] = "GET",
	[CTL_REQ_DESCRIBE] = "DESCRIBE", [CTL_REQ_FREE] = "FREE", [CTL_REQ_EXECUTE] = "EXECUTE",
	[CTL_REQ_PING] = "PING", [CTL_REQ_BYE] = "BYE", [CTL_REQ_FLEET_GRANT] = "FLEET_GRANT",
	[CTL_REQ_FLEET_ADOPT] = "FLEET_ADOPT", [CTL_REQ_FLEET_MOVE] = "FLEET_MOVE",
	[CTL_REQ_OTHER] = "OTHER",
};

/* 25 us to 10 s, about 2.5x apart: loopback PINGs to tensor transfers
 * over a loaded link. */
const double ctl_latency_bounds[CTL_LATENCY_BUCKETS] = {
	25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
	25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0,
};

const char *ctl_req_type_name(enum ctl_req_type t)
{
	return t < CTL_REQ_TYPES ? type_names[t] : "OTHER";
}

enum ctl_req_type ctl_req_type_parse(const char *type)
{
	for (int i = 0; i < CTL_REQ_OTHER; i++)
		if (strcmp(type, type_names[i]) == 0)
			return (enum ctl_req_type)i;
	return CTL_REQ_OTHER;
}

/* Single writer: no read-modify-write needed. */
static void bump(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static uint64_t get(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static unsigned int bucket_of(uint64_t ns)
{
	unsigned int b = 0;

	while (b < CTL_LATENCY_BUCKETS && (double)ns > ctl_latency_bounds[b] * 1e9)
		b++;
	return b;
}

void ctl_request_done(struct ctl_server *srv, enum ctl_req_type t, const char *trace,
		      uint64_t t0, int rc, const char *note)
{
	uint64_t ns = djc_time_ns() - t0;
	double ms = (double)ns / 1e6;
	enum dj_log_level level = ms >= srv->cfg.slow_request_ms ? DJ_LOG_NOTICE : DJ_LOG_DEBUG;
	char saved[DJC_REQ_ID_MAX];

	if (t >= CTL_REQ_TYPES)
		t = CTL_REQ_OTHER;
	bump(rc == 0 ? &srv->rq.ok[t] : &srv->rq.errors[t], 1);
	bump(&srv->rq.latency[t][bucket_of(ns)], 1);
	bump(&srv->rq.latency_sum_ns[t], ns);
	if (level > dj_log_get_level())
		return;
	/* The log line names the request even where the thread does not
	 * work for it any more (a reply written long after its dispatch). */
	snprintf(saved, sizeof(saved), "%s", djc_log_req_get());
	djc_log_req_set(trace);
	djc_log(level, TAG, "%s%s %s in %.3f ms%s%s%s%s%s",
		level == DJ_LOG_NOTICE ? "slow request: " : "", type_names[t],
		rc == 0 ? "ok" : "failed", ms, rc == 0 ? "" : ": ", rc == 0 ? "" : dj_strerror(rc),
		note != NULL && note[0] ? " (" : "", note != NULL ? note : "",
		note != NULL && note[0] ? ")" : "");
	djc_log_req_set(saved);
}

void ctl_tensor_moved(struct ctl_server *srv, enum dj_path path, enum ctl_dir dir,
		      uint64_t bytes)
{
	bump(&srv->rq.tensor_bytes[path][dir], bytes);
	bump(&srv->rq.tensor_transfers[path][dir], 1);
}

void ctl_job_done(struct ctl_server *srv, const struct ctl_job *job)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(job->reply, "code");
	int rc = cJSON_IsNumber(code) ? code->valueint : job->reply == NULL ? -ENOMEM : 0;

	if (job->dp_failed)
		bump(&srv->rq.dp_failures, 1);
	if (rc == 0 && job->dp_moved)
		ctl_tensor_moved(srv, DJ_PATH_DPDK, job->dp_dir, job->dp_bytes);
	/* An EXECUTE batch's puts and fetches travel on the control
	 * connection: one transfer each way. */
	if (rc == 0 && job->in_len > 0)
		ctl_tensor_moved(srv, DJ_PATH_TCP, CTL_DIR_IN, job->in_len);
	if (rc == 0 && job->out_len > 0)
		ctl_tensor_moved(srv, DJ_PATH_TCP, CTL_DIR_OUT, job->out_len);
	ctl_request_done(srv, job->type, job->trace, job->t0, rc,
			 job->note);
}

void ctl_server_jobs(struct ctl_server *srv, uint64_t *queued, uint64_t *running)
{
	pthread_mutex_lock(&srv->lock);
	*queued = srv->jobs_queued;
	*running = srv->jobs_running;
	pthread_mutex_unlock(&srv->lock);
}

void ctl_server_request_stats(struct ctl_server *srv, struct ctl_request_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		out->ok[t] = get(&srv->rq.ok[t]);
		out->errors[t] = get(&srv->rq.errors[t]);
		out->latency_sum_ns[t] = get(&srv->rq.latency_sum_ns[t]);
		for (int b = 0; b <= CTL_LATENCY_BUCKETS; b++)
			out->latency[t][b] = get(&srv->rq.latency[t][b]);
	}
	for (int p = 0; p < 3; p++) {
		for (int d = 0; d < CTL_DIRS; d++) {
			out->tensor_bytes[p][d] = get(&srv->rq.tensor_bytes[p][d]);
			out->tensor_transfers[p][d] = get(&srv->rq.tensor_transfers[p][d]);
		}
	}
	out->dp_failures = get(&srv->rq.dp_failures);
	ctl_server_jobs(srv, &out->jobs_queued, &out->jobs_running);
	pthread_mutex_lock(&srv->snap_lock);
	memcpy(out->sessions, srv->snap_count, sizeof(out->sessions));
	pthread_mutex_unlock(&srv->snap_lock);
}

/* ---- sessions, for other threads ---------------------------------------- */

#define SNAP_MAX 4096

void ctl_sessions_publish(struct ctl_server *srv, uint64_t now)
{
	struct ctl_session_info *list;
	uint64_t count[2][3] = {{0}};
	int n = 0, total = 0;

	for (struct ctl_session *s = srv->sessions; s != NULL; s = s->next)
		total++;
	list = calloc(total < SNAP_MAX ? (size_t)total + 1 : SNAP_MAX, sizeof(*list));
	for (struct ctl_session *s = srv->sessions; s != NULL; s = s->next) {
		count[s->conn != NULL][s->path]++;
		if (list == NULL || n == SNAP_MAX)
			continue;
		struct ctl_session_info *i = &list[n++];

		*i = (struct ctl_session_info){
			.id = s->id, .path = s->path, .attached = s->conn != NULL,
			.age_ms = (now - s->opened_ns) / 1000000, .requests = s->requests,
			.bytes_in = s->bytes_in, .bytes_out = s->bytes_out,
			.dp_failures = s->dp_failures, .handles = s->n_handles,
			.inflight = s->conn != NULL ? s->conn->inflight : 0,
		};
		if (s->conn != NULL)
			snprintf(i->peer, sizeof(i->peer), "%s", s->conn->peer);
	}
	pthread_mutex_lock(&srv->snap_lock);
	free(srv->snap);
	srv->snap = list;
	srv->n_snap = list != NULL ? n : 0;
	srv->snap_total = total;
	memcpy(srv->snap_count, count, sizeof(count));
	pthread_mutex_unlock(&srv->snap_lock);
}

int ctl_server_sessions(struct ctl_server *srv, struct ctl_session_info *out, int max)
{
	int total;

	pthread_mutex_lock(&srv->snap_lock);
	total = srv->snap_total;
	if (max > srv->n_snap)
		max = srv->n_snap;
	if (max > 0)
		memcpy(out, srv->snap, (size_t)max * sizeof(*out));
	pthread_mutex_unlock(&srv->snap_lock);
	return total;
}

/* ---- STATS ---------------------------------------------------------------- */

static cJSON *by_direction(const uint64_t v[CTL_DIRS])
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "in", (double)v[CTL_DIR_IN]);
	cJSON_AddNumberToObject(o, "out", (double)v[CTL_DIR_OUT]);
	return o;
}

static cJSON *by_path(const uint64_t v[3][CTL_DIRS])
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddItemToObject(o, "tcp", by_direction(v[DJ_PATH_TCP]));
	cJSON_AddItemToObject(o, "dpdk", by_direction(v[DJ_PATH_DPDK]));
	return o;
}

void ctl_stats_json(struct ctl_server *srv, cJSON *so)
{
	struct ctl_request_stats st;
	uint64_t all[CTL_LATENCY_BUCKETS + 1] = {0}, sum_ns = 0;
	cJSON *types = cJSON_CreateObject(), *lat = cJSON_CreateObject();
	cJSON *bounds = cJSON_CreateArray(), *counts = cJSON_CreateArray();

	ctl_server_request_stats(srv, &st);
	cJSON_AddNumberToObject(so, "sessions_attached",
				(double)(st.sessions[1][DJ_PATH_TCP] + st.sessions[1][DJ_PATH_DPDK]));
	cJSON_AddNumberToObject(so, "sessions_lingering",
				(double)(st.sessions[0][DJ_PATH_TCP] + st.sessions[0][DJ_PATH_DPDK]));
	cJSON_AddNumberToObject(so, "jobs_queued", (double)st.jobs_queued);
	cJSON_AddNumberToObject(so, "jobs_running", (double)st.jobs_running);
	cJSON_AddNumberToObject(so, "dp_failures", (double)st.dp_failures);
	cJSON_AddItemToObject(so, "tensor_bytes", by_path(st.tensor_bytes));
	cJSON_AddItemToObject(so, "tensor_transfers", by_path(st.tensor_transfers));
	for (int t = 0; t < CTL_REQ_TYPES; t++) {
		if (st.ok[t] + st.errors[t] == 0)
			continue;
		cJSON *o = cJSON_AddObjectToObject(types, type_names[t]);

		cJSON_AddNumberToObject(o, "ok", (double)st.ok[t]);
		cJSON_AddNumberToObject(o, "error", (double)st.errors[t]);
		for (int b = 0; b <= CTL_LATENCY_BUCKETS; b++)
			all[b] += st.latency[t][b];
		sum_ns += st.latency_sum_ns[t];
	}
	cJSON_AddItemToObject(so, "requests_by_type", types);
	for (int b = 0; b < CTL_LATENCY_BUCKETS; b++)
		cJSON_AddItemToArray(bounds, cJSON_CreateNumber(ctl_latency_bounds[b]));
	for (int b = 0; b <= CTL_LATENCY_BUCKETS; b++)
		cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)all[b]));
	cJSON_AddItemToObject(lat, "bounds_s", bounds);
	cJSON_AddItemToObject(lat, "counts", counts);
	cJSON_AddNumberToObject(lat, "sum_s", (double)sum_ns / 1e9);
	cJSON_AddItemToObject(so, "latency", lat);
}
