/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TOPO_H
#define DJINN_TOPO_H

/**
 * @file
 * The machine's NUMA topology as the server's placement decisions need it
 * (prefix tp_): NUMA nodes and their CPUs, the node of each GPU and of each
 * data-plane port, the lcores EAL gave, and the plan made from them:
 * pinned staging buffers on the node of the GPU they serve, mempools and
 * polling lcores on the port's node, a warning for every pairing that
 * crosses sockets (docs/MULTIGPU.md, "NUMA").
 *
 * The topology is an input: filled from the machine (libnuma, else sysfs;
 * GPUs' and ports' nodes from their PCI devices in sysfs or from DPDK) by
 * the caller, or injected whole or in part from a JSON description
 * (tp_load_json(); DJINN_TOPOLOGY=file.json through tp_from_env()), so
 * that the decisions for a 2-socket, 8-GPU server are tested on a machine
 * of one node. The plan is a pure function of the topology.
 *
 *   struct tp_topology t;
 *   tp_topology_init(&t);
 *   tp_read_nodes(&t);                      // libnuma / sysfs
 *   tp_add_gpu(&t, "cuda:0", "0000:17:00.0", -1);   // node from sysfs
 *   tp_add_port(&t, "0000:31:00.0", rte_eth_dev_socket_id(0));
 *   tp_add_lcore(&t, 1, rte_lcore_to_socket_id(1));
 *   tp_from_env(&t, err, sizeof(err));      // DJINN_TOPOLOGY overrides
 *   tp_plan_make(&t, 0, queues, gpu_names, n, &plan);
 *   tp_print(&t, &plan, stdout);
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TP_MAX_NODES 8
#define TP_MAX_GPUS 16
#define TP_MAX_PORTS 8
#define TP_MAX_LCORES 256
#define TP_MAX_CPUS 1024
#define TP_MAX_WARNINGS 24
#define TP_NAME_MAX 64
#define TP_WARNING_MAX 200

struct tp_node {
	int id;
	int n_cpus;
	uint64_t cpus[TP_MAX_CPUS / 64];  /**< bit per CPU */
};

struct tp_gpu {
	char name[TP_NAME_MAX];  /**< "cuda:0" */
	char pci[TP_NAME_MAX];   /**< "0000:17:00.0", "" where unknown */
	int node;                /**< -1: unknown */
};

struct tp_port {
	char name[TP_NAME_MAX];  /**< ethdev name or PCI address */
	int node;                /**< -1: unknown (a virtual device) */
};

struct tp_lcore {
	unsigned int id;
	int node;
};

struct tp_topology {
	char source[160];        /**< where the figures came from, for the printout */
	int n_nodes;
	struct tp_node nodes[TP_MAX_NODES];
	int n_gpus;
	struct tp_gpu gpus[TP_MAX_GPUS];
	int n_ports;
	struct tp_port ports[TP_MAX_PORTS];
	/** lcores the data plane may poll on (EAL's workers), in EAL order */
	int n_lcores;
	struct tp_lcore lcores[TP_MAX_LCORES];
};

/** Empty topology, source "". */
void tp_topology_init(struct tp_topology *t);

/**
 * Fill the NUMA nodes and their CPUs: libnuma where numa_available(),
 * else /sys/devices/system/node, else one node 0 with every online CPU.
 * @return 0, or -ENOSPC (more nodes than TP_MAX_NODES: the first kept).
 */
int tp_read_nodes(struct tp_topology *t);

/** NUMA node of PCI device @p pci (sysfs numa_node), -1 where unknown. */
int tp_pci_node(const char *pci);

/** Add a GPU; @p node < 0: read from sysfs by @p pci (may be NULL).
 *  0 or -ENOSPC. */
int tp_add_gpu(struct tp_topology *t, const char *name, const char *pci, int node);
/** Add a port (node < 0: unknown). 0 or -ENOSPC. */
int tp_add_port(struct tp_topology *t, const char *name, int node);
/** Add a pollable lcore. 0 or -ENOSPC. */
int tp_add_lcore(struct tp_topology *t, unsigned int id, int node);

/** Node of CPU @p cpu in @p t, -1 where no node lists it. */
int tp_cpu_node(const struct tp_topology *t, unsigned int cpu);

/**
 * The GPU named @p name ("cuda:1"; a logical alias "cuda:1.2" is the GPU
 * "cuda:1"), or NULL.
 */
const struct tp_gpu *tp_gpu_find(const struct tp_topology *t, const char *name);

/**
 * Read a JSON description and let each section it has replace that part of
 * @p t (absent sections keep what @p t holds):
 *
 *   {"nodes":  [{"id": 0, "cpus": "0-31,64-95"}, ...],
 *    "gpus":   [{"name": "cuda:0", "pci": "0000:17:00.0", "node": 0}, ...],
 *    "ports":  [{"name": "0000:31:00.0", "node": 1}, ...],
 *    "lcores": [{"id": 1, "node": 0}, ...]}
 *
 * Where "nodes" is given and "lcores" is not, the lcores become every CPU
 * of the nodes but CPU 0 (the main lcore), in order.
 * @return 0, -ENOENT / -errno (the file), -EINVAL (malformed: @p err says
 * where), -ENOSPC (over a TP_MAX_* bound).
 */
int tp_load_json(const char *path, struct tp_topology *t, char *err, size_t errlen);

/** tp_load_json() of $DJINN_TOPOLOGY where it is set: 1 loaded, 0 unset,
 *  or its error. */
int tp_from_env(struct tp_topology *t, char *err, size_t errlen);

/** The decisions for a server: one data-plane port and the GPUs it serves. */
struct tp_plan {
	int port;                  /**< index in topology ports, -1: none */
	int port_node;             /**< mempools and send stages go here; -1: any */
	int n_queues;              /**< polling lcores asked for */
	int n_chosen;
	unsigned int lcores[16];   /**< the polling lcores, best first */
	int n_local;               /**< how many of them are on port_node */
	/** A -l list that puts every polling lcore on the port's node, or ""
	 *  where the chosen lcores already are (or no node is known). */
	char suggest_lcores[128];
	int n_gpus;
	struct {
		char name[TP_NAME_MAX];
		int node;          /**< staging buffers of this GPU go here; -1: any */
		int crosses;       /**< the GPU and the port are on different nodes */
	} gpus[TP_MAX_GPUS];
	int n_warnings;
	char warnings[TP_MAX_WARNINGS][TP_WARNING_MAX];
};

/**
 * Decide for port @p port (index into t->ports; -1: no data plane) with
 * @p n_queues polling lcores (1..16), serving the GPUs @p gpus[0..n_gpus)
 * (names as the runtime gives them). Every GPU's staging buffers go on its
 * own node; the port's mempools on the port's node (where unknown: the
 * node of the first GPU); polling lcores are taken from t->lcores, those
 * on the port's node first. A warning names each GPU whose node differs
 * from the port's, the polling lcores placed off the port's node (with
 * the -l list that fixes it), and GPUs or a port whose node is unknown on
 * a machine of several nodes.
 * @return 0 or -EINVAL.
 */
int tp_plan_make(const struct tp_topology *t, int port, int n_queues, const char *const *gpus,
		 int n_gpus, struct tp_plan *plan);

/**
 * Node the staging ring of a move from GPU @p src to GPU @p dst goes on:
 * the destination's (its host-to-device copies read the ring, and reads
 * across the interconnect cost more than writes), else the source's,
 * else -1.
 */
int tp_stage_node(const struct tp_topology *t, const char *src, const char *dst);

/** Print the topology and, where @p plan is not NULL, the plan with its
 *  warnings ("topology:" / "placement:" / "warning:" lines). */
void tp_print(const struct tp_topology *t, const struct tp_plan *plan, FILE *f);

/**
 * @p bytes of page-aligned host memory on NUMA node @p node (libnuma's
 * numa_alloc_onnode; any node where @p node < 0 or libnuma is absent).
 * NULL where memory ran out. Free with tp_free() and the same size.
 */
void *tp_alloc_onnode(size_t bytes, int node);
void tp_free(void *ptr, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_TOPO_H */
