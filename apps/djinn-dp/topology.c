/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp's NUMA report (runtime/topo.h): the nodes (libnuma / sysfs),
 * every CUDA device with its node (sysfs by PCI address), the ports and
 * worker lcores EAL gave with their sockets, DJINN_TOPOLOGY over all of
 * them; then the plan for the data-plane port and the GPUs served, with a
 * warning for every pairing that crosses sockets. --probe prints it all;
 * a starting server prints the plan and its warnings.
 */
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "gpu/ops/gpu_ops.h"
#include "runtime/topo.h"
#include "server.h"

static void topology_build(struct tp_topology *t, int eal_up)
{
	char err[200];
	unsigned int lcore;
	uint16_t port;
	int rc;

	tp_topology_init(t);
	tp_read_nodes(t);
	for (int i = 0; i < djg_ops_device_count() && i < TP_MAX_GPUS; i++) {
		char name[16], pci[32] = "";

		snprintf(name, sizeof(name), "cuda:%d", i);
		djg_ops_device_pci(i, pci, sizeof(pci));
		tp_add_gpu(t, name, pci, -1);
	}
	if (eal_up) {
		RTE_ETH_FOREACH_DEV(port) {
			char name[RTE_ETH_NAME_MAX_LEN] = "?";

			rte_eth_dev_get_name_by_port(port, name);
			tp_add_port(t, name, rte_eth_dev_socket_id(port));
		}
		RTE_LCORE_FOREACH_WORKER(lcore)
			tp_add_lcore(t, lcore, (int)rte_lcore_to_socket_id(lcore));
	}
	rc = tp_from_env(t, err, sizeof(err));
	if (rc < 0)
		printf("warning: DJINN_TOPOLOGY ignored: %s\n", err);
}

/* The names of the devices served: the runtime's, or those the spec
 * names on a machine of the topology's GPUs. */
static int served(const struct rt_runtime *rt, const char *spec_text, const struct tp_topology *t,
		  char names[][RT_DEVICE_NAME_MAX])
{
	struct rt_device_info devs[RT_MAX_DEVICES];
	struct rt_device_spec spec;
	char err[160];
	int n;

	if (rt != NULL) {
		n = rt_devices(rt, devs, RT_MAX_DEVICES);
		for (int i = 0; i < n; i++)
			memcpy(names[i], devs[i].name, RT_DEVICE_NAME_MAX);
		return devs[0].kind == RT_DEVICE_HOST ? 0 : n;
	}
	if (rt_device_spec_parse(spec_text, t->n_gpus, &spec, err, sizeof(err)) != 0) {
		printf("warning: --gpu %s\n", err);
		return 0;
	}
	for (int i = 0; i < spec.n; i++)
		rt_device_spec_name(&spec, i, names[i], RT_DEVICE_NAME_MAX);
	return spec.kind == RT_DEVICE_HOST ? 0 : spec.n;
}

int srv_topology_report(const struct rt_runtime *rt, const char *gpu_spec, int port,
			uint16_t queues, int eal_up, int full)
{
	char names[RT_MAX_DEVICES][RT_DEVICE_NAME_MAX];
	const char *gpus[RT_MAX_DEVICES];
	struct tp_topology t;
	struct tp_plan plan;
	int n_gpus, rc;

	topology_build(&t, eal_up);
	n_gpus = served(rt, gpu_spec, &t, names);
	for (int i = 0; i < n_gpus; i++)
		gpus[i] = names[i];
	if (!eal_up || port >= t.n_ports)
		port = -1;
	rc = tp_plan_make(&t, port, queues, gpus, n_gpus, &plan);
	if (rc != 0)
		return rc;
	if (full) {
		tp_print(&t, &plan, stdout);
		return plan.n_warnings;
	}
	for (int i = 0; i < plan.n_warnings; i++)
		printf("numa: warning: %s\n", plan.warnings[i]);
	if (t.n_nodes > 1 && plan.n_warnings == 0)
		printf("numa: %d nodes, no pairing crosses sockets\n", t.n_nodes);
	return plan.n_warnings;
}
