/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The link watch of a memif client port. A memif client connects to its
 * server only when its port starts: when the server goes away (killed,
 * restarted), the link goes down and stays down even once a new server
 * listens on the socket. The lcore of queue 0 notices (it reads the link
 * state anyway, lcore.c) and restarts the port every DP_RELINK_NS until the
 * link is back, with the other lcores parked off the port meanwhile (no
 * burst may run while a port stops and starts). No thread of its own: the
 * lcore has nothing else to do while the link is down. The sessions are
 * the control plane's business: a restarted server knows none of them, and
 * their transfers end by the protocol's liveness rule.
 */
#include <errno.h>

#include <rte_pause.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"

/* After this long down, restart only every RELINK_SLOW_NS: each failed
 * start logs a line (DPDK's), and a server gone for good should not fill
 * the log. */
#define RELINK_FAST_FOR_NS (5000ull * 1000 * 1000)
#define RELINK_SLOW_NS (1000ull * 1000 * 1000)
/* How long the other lcores may take to step off the port; past it the
 * restart waits for the next round (a starved or stopped lcore). */
#define PARK_WAIT_NS (1000ull * 1000 * 1000)

/* Ask the other lcores to stay off the port (an odd generation) and wait
 * until each acknowledged it: none is inside a burst, none starts one until
 * unpark(). The caller, an lcore, is off the port while it runs this.
 * false when one did not answer in time (the request is withdrawn). */
static bool park(struct dp_lcore *self)
{
	struct dp_engine *dp = self->dp;
	unsigned int gen = atomic_load(&dp->park_gen) + 1;
	uint64_t deadline = djc_time_ns() + PARK_WAIT_NS;

	atomic_store_explicit(&dp->park_gen, gen, memory_order_release);
	for (unsigned int i = 0; i < dp->n_lcores; i++)
		if (dp->lcores[i] != self)
			dp_lcore_kick(dp->lcores[i]); /* it may sleep */
	for (unsigned int i = 0; i < dp->n_lcores; i++) {
		struct dp_lcore *lc = dp->lcores[i];

		while (lc != self &&
		       atomic_load_explicit(&lc->park_ack, memory_order_acquire) != gen) {
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

void dp_link_watch(struct dp_lcore *lc, uint64_t now)
{
	struct dp_engine *dp = lc->dp;

	if (lc->link_up) {
		if (lc->down_since != 0)
			djc_log(DJ_LOG_NOTICE, "dataplane", "port %u: memif link up again after "
			       "%.0f ms (%u restart(s))", dp->cfg.port.port_id,
			       (now - lc->down_since) / 1e6, lc->restarts);
		lc->down_since = 0;
		return;
	}
	if (lc->down_since == 0) {
		lc->down_since = now;
		lc->next_restart = now + DP_RELINK_NS;
		lc->restarts = 0;
		djc_log(DJ_LOG_NOTICE, "dataplane", "port %u: memif link down (the server went "
		       "away); reconnecting every %llu ms, every %llu ms after %llu s",
		       dp->cfg.port.port_id, (unsigned long long)(DP_RELINK_NS / 1000000),
		       (unsigned long long)(RELINK_SLOW_NS / 1000000),
		       (unsigned long long)(RELINK_FAST_FOR_NS / 1000000000));
		return;
	}
	if (now < lc->next_restart)
		return;
	if (park(lc)) {
		dp_port_restart(dp->port);
		unpark(dp);
		lc->restarts++;
	}
	now = djc_time_ns();
	lc->next_restart = now + (now - lc->down_since < RELINK_FAST_FOR_NS ? DP_RELINK_NS :
				  RELINK_SLOW_NS);
	lc->next_link_check = 0; /* look at the link at once */
}
