/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_FAKE_DP_H
#define DJINN_TEST_FAKE_DP_H

/*
 * An in-process data path for tests: endpoints on one fake "network" copy
 * bytes straight into the peer's expected buffer. Failures are injected on
 * demand (probe result, the next N sends time out), so negotiation and the
 * mid-session move to TCP can be tested without DPDK.
 */
#include <stdatomic.h>

#include "dataplane/datapath.h"

struct fake_net;
struct fake_dp {
	struct dj_datapath dp;      /* give &fake->dp to server / client */
	struct fake_net *net;
	struct dp_endpoint ep;
	int available;              /* local_caps says dpdk = available */
	int probe_rc;               /* what probe returns */
	atomic_int fail_sends;      /* next N sends return -ETIMEDOUT */
	/* next N sends return -EDEADLK with their source still "in flight":
	 * send_pinned() says 1 until fake_dp_release() (one at a time) */
	atomic_int deadlock_sends;
	/* next N cancels return -EDEADLK (the destination may still be written) */
	atomic_int deadlock_cancels;
	/* next N session opens return -EEXIST (the id is open with that peer
	 * already), their ids kept in refused_ids[] (the first 4) */
	atomic_int exist_opens;
	uint64_t refused_ids[4];
	atomic_int n_refused;
	/* next N session opens return -DJ_ELIMIT (an engine whose lcores
	 * hold all the sessions they can) */
	atomic_int limit_opens;
	atomic_ullong last_open_id; /* the id of the last open that succeeded */
	const void *pinned_src;     /* under the net's lock */
	size_t pinned_len;
	uint64_t pinned_cookie, pinned_xfer;
	int released;
	atomic_int sends, sends_ok, probes, sessions_open;
};

struct fake_net *fake_net_create(void);
void fake_net_destroy(struct fake_net *net);
/* port: the endpoint's UDP port, which names it on the fake network. */
struct fake_dp *fake_dp_create(struct fake_net *net, uint16_t port);
void fake_dp_destroy(struct fake_dp *f);
/* The frames of the -EDEADLK send go: they read its source one last time
 * (into copy, pinned_len bytes) and let go of it. 0, or -ENOENT. */
int fake_dp_release(struct fake_dp *f, void *copy);

#endif
