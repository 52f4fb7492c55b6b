/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPLANE_PORT_H
#define DJINN_DATAPLANE_PORT_H

/* Internals of a configured port: one rx/tx queue pair per polling lcore,
 * each with its own mempools on the port's NUMA socket. */
#include <rte_mempool.h>

#include "dataplane/dataplane.h"

#define DP_PORT_BURST 32
/* Data room of header mbufs: Ethernet/IPv4/UDP/Djinn headers and short
 * control bodies. */
#define DP_TXFRAME_HDR_ROOM 256

struct dp_port_queue {
	struct rte_mempool *rx_pool;  /* receive buffers (frame_size data room) */
	struct rte_mempool *hdr_pool; /* small mbufs for transmitted headers */
	struct rte_mempool *ext_pool; /* data-less mbufs that carry extbufs */
} __rte_cache_aligned;

struct dp_port {
	struct dp_port_config cfg;
	struct dp_port_caps caps;
	int socket;
	int started;
	struct rte_flow *flows[DP_PORT_MAX_QUEUES];
	struct dp_port_queue q[DP_PORT_MAX_QUEUES];
};

#endif
