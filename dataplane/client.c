/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client's DPDK data path as the public API gives it (dj_dpdk_*, in
 * include/djinn/djinn.h): EAL started the Djinn way (dp_eal_init) and one
 * engine on one port, wrapped so that a program linking only libdjinn, or
 * Python through it, reaches none of the data plane's internal headers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "common/cli.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"

#define TAG "dpdk"
#define DEFAULT_FRAME 9014
#define MIN_FRAME 128

struct dj_dpdk {
	struct dp_engine *engine;
	struct dj_datapath datapath;
};

/* EAL starts once per process (rte_eal_init cannot run again, not even
 * after a failure or rte_eal_cleanup). */
static int eal_tried;

void dj_dpdk_options_init(struct dj_dpdk_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->default_vdev = DJ_DPDK_DEFAULT_VDEV;
	opts->local_ip = DJ_DPDK_DEFAULT_IP;
	opts->frame_size = DEFAULT_FRAME;
}

/* dj_dpdk_options.idle is handed to the engine as it is. */
_Static_assert((int)DJ_DPDK_IDLE_POLL == (int)DP_IDLE_POLL &&
	       (int)DJ_DPDK_IDLE_NAP == (int)DP_IDLE_NAP &&
	       (int)DJ_DPDK_IDLE_INTERRUPT == (int)DP_IDLE_INTERRUPT,
	       "dj_dpdk_idle and dp_idle differ");

/* The engine on the chosen port: one polling lcore per queue pair. */
static int engine_start(const struct dj_dpdk_options *o, uint32_t ip, struct dj_dpdk *d)
{
	struct dp_engine_config cfg;
	uint16_t port_id = 0;

	if (rte_eth_dev_count_avail() == 0) {
		djc_log(DJ_LOG_ERR, TAG, "EAL found no port (no device named, or none probed)");
		return -ENODEV;
	}
	if (o->port != NULL && dp_port_find(o->port, &port_id) != 0) {
		djc_log(DJ_LOG_ERR, TAG, "no port '%s'", o->port);
		return -ENODEV;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.port.port_id = port_id;
	cfg.port.frame_size = o->frame_size;
	cfg.port.nb_queues = (uint16_t)(o->queues != 0 ? o->queues : 1);
	/* Software endpoints (memif) and peers that address us by IP alone. */
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = ip;
	cfg.idle_sleep_us = o->idle_sleep_us;
	cfg.idle = (enum dp_idle)o->idle;
	cfg.caller_runs = o->caller_runs != 0;
	cfg.link_timeout_ms = o->link_timeout_ms;
	return dp_engine_create(&cfg, &d->engine);
}

int dj_dpdk_create(int argc, char **argv, const struct dj_dpdk_options *opts,
		   int *app_argc, char ***app_argv, struct dj_dpdk **dpdk)
{
	struct dp_eal_options eal_opts = {0};
	struct dj_dpdk_options defaults;
	struct dj_dpdk *d = NULL;
	char **args = NULL;
	int nargs = 0, rc;
	uint32_t ip;

	if (argc < 1 || argv == NULL || dpdk == NULL)
		return -EINVAL;
	*dpdk = NULL;
	/* The application's arguments come back whatever happens below. Only
	 * where asked: djc_cli_app_args() fills one static vector, which the
	 * caller may hold (and getopt may have permuted) from its own call. */
	if (app_argc != NULL && app_argv != NULL &&
	    djc_cli_app_args(argc, argv, false, &nargs, &args) < 0)
		nargs = 0;
	if (opts == NULL) {
		dj_dpdk_options_init(&defaults);
		opts = &defaults;
	}
	rc = -EINVAL;
	if (djc_parse_ipv4(opts->local_ip ? opts->local_ip : DJ_DPDK_DEFAULT_IP, &ip) != 0 ||
	    (opts->frame_size != 0 && opts->frame_size < MIN_FRAME) ||
	    opts->queues > DP_PORT_MAX_QUEUES || opts->idle > DJ_DPDK_IDLE_INTERRUPT ||
	    (opts->caller_runs && opts->idle != DJ_DPDK_IDLE_INTERRUPT))
		goto error;
	rc = -EALREADY;
	if (eal_tried)
		goto error;
	rc = -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		goto error;
	eal_tried = 1;
	eal_opts.default_vdev = opts->default_vdev;
	eal_opts.no_huge_mem_mb = opts->no_huge_mem_mb;
	rc = dp_eal_init(argc, argv, &eal_opts, &nargs, &args);
	if (rc != 0)
		goto error;
	rc = engine_start(opts, ip, d);
	if (rc != 0) {
		dp_eal_cleanup();
		goto error;
	}
	dp_engine_datapath(d->engine, &d->datapath);
	*dpdk = d;
	rc = 0;
	goto out;
error:
	free(d);
out:
	if (app_argc != NULL)
		*app_argc = nargs;
	if (app_argv != NULL)
		*app_argv = args;
	return rc;
}

const struct dj_datapath *dj_dpdk_datapath(const struct dj_dpdk *dpdk)
{
	return dpdk != NULL ? &dpdk->datapath : NULL;
}

void dj_dpdk_destroy(struct dj_dpdk *dpdk)
{
	if (dpdk == NULL)
		return;
	/* Polling stops before the port goes, so that a memif peer never sees
	 * its rings vanish under a burst (DPDK 22.11). */
	dp_engine_quiesce(dpdk->engine);
	dp_engine_destroy(dpdk->engine);
	dp_eal_cleanup();
	free(dpdk);
}
