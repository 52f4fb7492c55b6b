/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The link watch of a memif client port. A memif client connects to its
 * server only when its port starts: when the server goes away (killed,
 * restarted), the link goes down and stays down even once a new server
 * listens on the socket. This thread notices, and restarts the port every
 * DP_RELINK_NS until the link is back, with the lcores parked off the port
 * meanwhile (no burst may run while a port stops and starts). The sessions
 * are the control plane's business: a restarted server knows none of them,
 * and their transfers end by the protocol's liveness rule.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <rte_pause.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"

#define WATCH_PERIOD_NS (10ull * 1000 * 1000)
/* After this long down, restart only every DP_RELINK_SLOW_NS: each failed
 * start logs a line (DPDK's), and a server gone for good should not fill
 * the log. */
#define RELINK_FAST_FOR_NS (5000ull * 1000 * 1000)
#define DP_RELINK_SLOW_NS (1000ull * 1000 * 1000)
/* How long the lcores may take to step off the port; past it the restart
 * waits for the next round (a stopped or starved lcore). */
#define PARK_WAIT_NS (1000ull * 1000 * 1000)

static void nap_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	nanosleep(&ts, NULL);
}

/* Ask every lcore to stay off the port (an odd generation) and wait until
 * each acknowledged it: none is inside a burst, none starts one until
 * unpark(). false when one did not answer in time (the request is
 * withdrawn). */
static bool park(struct dp_engine *dp)
{
	unsigned int gen = atomic_load(&dp->park_gen) + 1;
	uint64_t deadline = djc_time_ns() + PARK_WAIT_NS;

	atomic_store_explicit(&dp->park_gen, gen, memory_order_release);
	for (unsigned int i = 0; i < dp->n_lcores; i++) {
		while (atomic_load_explicit(&dp->lcores[i]->park_ack, memory_order_acquire) != gen) {
			if (atomic_load(&dp->stop) || djc_time_ns() > deadline) {
				atomic_store_explicit(&dp->park_gen, gen + 1, memory_order_release);
				return false;
			}
			rte_pause();
		}
	}
	return true;
}

static void unpark(struct dp_engine *dp)
{
	atomic_fetch_add_explicit(&dp->park_gen, 1, memory_order_release);
}

static void *link_watch(void *arg)
{
	struct dp_engine *dp = arg;
	uint64_t down_since = 0, next_restart = 0;
	unsigned int restarts = 0;

	while (!atomic_load(&dp->stop)) {
		uint64_t now = djc_time_ns();

		if (dp_port_link_up(dp->port)) {
			if (down_since != 0)
				djc_log(DJ_LOG_NOTICE, "dataplane", "port %u: memif link up again "
				       "after %.0f ms (%u restart(s))", dp->cfg.port.port_id,
				       (now - down_since) / 1e6, restarts);
			down_since = 0;
		} else if (down_since == 0) {
			down_since = now;
			next_restart = now + DP_RELINK_NS;
			restarts = 0;
			djc_log(DJ_LOG_NOTICE, "dataplane", "port %u: memif link down (the server "
			       "went away); reconnecting every %llu ms, every %llu ms after %llu s",
			       dp->cfg.port.port_id, (unsigned long long)(DP_RELINK_NS / 1000000),
			       (unsigned long long)(DP_RELINK_SLOW_NS / 1000000),
			       (unsigned long long)(RELINK_FAST_FOR_NS / 1000000000));
		} else if (now >= next_restart) {
			if (park(dp)) {
				dp_port_restart(dp->port);
				unpark(dp);
				restarts++;
			}
			now = djc_time_ns();
			next_restart = now + (now - down_since < RELINK_FAST_FOR_NS ? DP_RELINK_NS :
					      DP_RELINK_SLOW_NS);
		}
		nap_ns(WATCH_PERIOD_NS);
	}
	return NULL;
}

int dp_link_watch_start(struct dp_engine *dp)
{
	int rc;

	if (!dp_port_get_caps(dp->port)->memif_client || getenv("XXX_NO_WATCH"))
		return 0;
	rc = pthread_create(&dp->link_thread, NULL, link_watch, dp);
	if (rc != 0)
		return -rc;
	dp->link_watch = true;
	return 0;
}

void dp_link_watch_stop(struct dp_engine *dp)
{
	if (!dp->link_watch)
		return;
	pthread_join(dp->link_thread, NULL);
	dp->link_watch = false;
}
