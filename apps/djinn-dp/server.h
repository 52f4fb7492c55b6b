/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DP_SERVER_H
#define DJINN_DP_SERVER_H

/*
 * What djinn-dp's observers read (prefix srv_): the Prometheus collector
 * (metrics.c), DPDK telemetry commands (telemetry.c) and STATS' data-plane
 * object. Every figure comes from a snapshot its owner publishes (per-lcore
 * seqcounts, the control plane's single-writer counters, the session list
 * of the last sweep), so reading never stalls a polling lcore or the
 * control plane's epoll thread.
 */
#include <pthread.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "dataplane/dataplane.h"
#include "gpu/gpu.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"

/* The parts of a running server. ctl and the others are set before any
 * observer starts and outlive every observer (main.c stops them first). */
struct srv_view {
	struct ctl_server *ctl;
	struct dp_engine *dp;            /* NULL: no data plane */
	struct djg_dp_placer *placer;    /* NULL: tensors in host memory */
	enum djg_gather_mode gather_mode;
	struct rt_runtime *rt;
	double start_time;               /* Unix seconds */
	/* Busy ratio of each lcore over its last window of at least 1 s. */
	pthread_mutex_t ratio_lock;
	struct {
		uint64_t loop_ns, busy_ns;
		double ratio;
	} lcore[DP_PORT_MAX_QUEUES];
};

void srv_view_init(struct srv_view *v);
void srv_view_fini(struct srv_view *v);

/** Every djinn_* family of the server (mx_collect_fn; arg: the view). */
void srv_metrics_collect(void *view, struct mx_writer *w);

/** The fleet's families (mx_collect_fn; arg: the fl_agent): members in
 *  this server's view, its registration, a stale view. Nothing for a lone
 *  server. */
void srv_fleet_collect(void *agent, struct mx_writer *w);

/** Busy share of lcore idx's loop over its last window of at least a second
 *  (since start until the first such window); st: its counters now. */
double srv_lcore_busy_ratio(struct srv_view *v, unsigned int idx,
			    const struct dp_engine_stats *st);

/** STATS' "data_plane" object (rt_config.stats_extra; arg: the view). */
void srv_stats_json(void *view, cJSON *obj);

/**
 * Register /djinn/... commands on DPDK's telemetry socket (once per
 * process) and serve them from v until srv_telemetry_detach(). 0, or the
 * error of rte_telemetry_register_cmd.
 */
int srv_telemetry_attach(struct srv_view *v);
/** Commands answer "no server" from now on; returns once none reads v. */
void srv_telemetry_detach(void);

/**
 * The NUMA topology (topology.c: libnuma / sysfs, CUDA's devices, EAL's
 * ports and lcores where @p eal_up, DJINN_TOPOLOGY over them) and the plan
 * for data-plane port @p port (-1: none) with @p queues polling lcores,
 * serving the devices of @p rt, or where @p rt is NULL those @p gpu_spec
 * names among the topology's GPUs (--probe of an injected topology).
 * @p full: print everything (--probe); else only the warnings.
 * @return the number of warnings, or a negative errno.
 */
int srv_topology_report(const struct rt_runtime *rt, const char *gpu_spec, int port,
			uint16_t queues, int eal_up, int full);

#endif
