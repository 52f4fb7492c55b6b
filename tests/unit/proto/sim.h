/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_PROTO_SIM_H
#define DJINN_TEST_PROTO_SIM_H

/*
 * Two sessions joined by a simulated link with a virtual clock: each
 * direction has its own impairment (dataplane/proto/impair.h) and a hold queue that
 * models latency, delay and reordering. Deterministic for a given seed.
 */
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/proto/impair.h"
#include "dataplane/proto/transfer.h"

#define SIM_MAX_EVENTS 256

struct sim_dir {
	struct dp_impair *impair;
	struct dp_hold_queue *queue;
	bool cut;             /* the far end vanished: everything is lost */
	uint64_t sent;
	uint64_t delivered;
	/* Optional bottleneck: rate packets per microsecond (0: unlimited)
	 * through a drop-tail queue of queue_pkts packets. */
	uint32_t rate_per_us;
	uint32_t queue_pkts;
	uint64_t busy_until;
	uint64_t tail_drops;
};

struct sim {
	uint64_t now;
	uint64_t latency_ns;  /* one way */
	uint64_t step_ns;     /* time one burst takes on the wire */
	bool split;           /* alternate header/payload in separate buffers */
	bool frozen[2];
	/* endpoint not polled (a descheduled lcore): what reaches it waits on
	 * the link, as in an rx ring nobody reads; nothing leaves it */
	bool stalled[2];
	bool encap[2];        /* packets from endpoint i carry Ethernet/IPv4/UDP */       /* endpoint stopped: no input, no output */
	struct dp_channel *ep[2];
	struct sim_dir dir[2]; /* dir[i]: from ep[i] to ep[1 - i] */
	/* Optional: runs at every step before the endpoints do (a producer
	 * feeding a progressive source, say); while it is set the clock
	 * jumps at most hook_every_ns when nothing is due. */
	void (*hook)(struct sim *sim, void *arg);
	void *hook_arg;
	uint64_t hook_every_ns;
	struct dp_xfer_event ev[2][SIM_MAX_EVENTS];
	unsigned nev[2];
	uint64_t steps;
};

/* imp[i] impairs packets sent by endpoint i (NULL: a perfect link). */
int sim_init(struct sim *sim, const struct dp_channel_config *cfg0,
	     const struct dp_channel_config *cfg1,
	     const struct dp_impair_config *imp0,
	     const struct dp_impair_config *imp1);
void sim_fini(struct sim *sim);

/* Run until every endpoint has seen want[i] events or the virtual clock
 * passes limit_ns; returns true when the events arrived. */
bool sim_run(struct sim *sim, const unsigned want[2], uint64_t limit_ns);

/* Find endpoint i's event for (dir, id); NULL if none. Fails the test if
 * there are two (completion must be reported exactly once). */
const struct dp_xfer_event *sim_event(const struct sim *sim, int i,
				      enum dp_xfer_dir dir, uint64_t id);

/* len deterministic bytes from salt (at least one byte allocated), the
 * caller's to free(). */
uint8_t *sim_pattern(uint64_t len, uint32_t salt);

/* Sensible test defaults: session id/cookie shared by both ends. */
void sim_config(struct dp_channel_config *cfg, uint32_t frag_size);

#endif
