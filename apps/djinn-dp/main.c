/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp: the Djinn server launcher.
 *
 *   djinn-dp [EAL args] -- [options]
 *
 * Starts EAL (defaults: a memif vdev, --in-memory, --no-huge where no
 * hugepage is free), reports the ports and GPUs it found.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>

#include "djinn/common.h"
#include "djinn/eal.h"
#include "djinn/gpu.h"

#define DEFAULT_VDEV "net_memif0,role=server,socket=/run/djinn-dp.memif,socket-abstract=no"

struct dp_options {
	int probe_only;
};

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- [options]\n"
	       "\n"
	       "EAL args are DPDK's own (see any DPDK app's --help): -l CORES, -a PCI,\n"
	       "--vdev DEV, --file-prefix NAME, --no-huge, -m MB... Where none names a\n"
	       "device, djinn-dp adds --vdev '%s'.\n"
	       "Where no hugepage is free, it adds --no-huge -m512 and says so.\n"
	       "\n"
	       "Options (after --):\n"
	       "  --probe              report ports and GPUs, then exit\n"
	       "  --log-level LEVEL    err, warn, notice (default), info, debug\n"
	       "  -h, --help           this text\n",
	       prog, DEFAULT_VDEV);
}

/* --help must work without EAL (no hugepages, not root). */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

static int parse_options(int argc, char **argv, struct dp_options *opts)
{
	static const struct option longopts[] = {
		{"probe", no_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum dj_log_level level;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			opts->probe_only = 1;
			break;
		case 'L':
			if (dj_log_level_parse(optarg, &level) != 0) {
				fprintf(stderr, "djinn-dp: unknown log level '%s'\n", optarg);
				return -EINVAL;
			}
			dj_log_set_level(level);
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "djinn-dp: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static void report_ports(void)
{
	uint16_t port;

	printf("ports: %u\n", rte_eth_dev_count_avail());
	RTE_ETH_FOREACH_DEV(port) {
		struct rte_eth_dev_info info;
		struct rte_ether_addr mac;
		char name[RTE_ETH_NAME_MAX_LEN] = "?";

		if (rte_eth_dev_info_get(port, &info) != 0)
			continue;
		rte_eth_dev_get_name_by_port(port, name);
		rte_eth_macaddr_get(port, &mac);
		printf("  port %u: %s driver %s mac " RTE_ETHER_ADDR_PRT_FMT
		       " rxq<=%u txq<=%u socket %d\n",
		       port, name, info.driver_name, RTE_ETHER_ADDR_BYTES(&mac),
		       info.max_rx_queues, info.max_tx_queues, rte_eth_dev_socket_id(port));
	}
}

static void report_gpus(void)
{
	int n = dj_gpu_count();

	printf("gpus: %d%s\n", n, n == 0 ? " (host memory will be used)" : "");
	for (int i = 0; i < n; i++) {
		struct dj_gpu_info g;

		if (dj_gpu_info_get(i, &g) != 0)
			continue;
		printf("  gpu %d: gpudev id %d %s memory %.1f GB SMs %u numa %d\n", i, g.dev_id,
		       g.name, g.total_memory / 1e9, g.processors, g.numa_node);
	}
}

int main(int argc, char **argv)
{
	struct dj_eal_options eal_opts = {.default_vdev = DEFAULT_VDEV};
	struct dp_options opts = {0};
	int app_argc, rc;
	char **app_argv;

	if (wants_help(argc, argv)) {
		usage(argv[0]);
		return 0;
	}
	rc = dj_eal_init(argc, argv, &eal_opts, &app_argc, &app_argv);
	if (rc != 0) {
		fprintf(stderr, "djinn-dp: cannot start EAL: %s\n", dj_strerror(rc));
		return 1;
	}
	rc = parse_options(app_argc, app_argv, &opts);
	if (rc != 0) {
		usage(argv[0]);
		dj_eal_cleanup();
		return 2;
	}
	printf("djinn-dp: EAL up (%s)\n", dj_eal_has_hugepages() ? "hugepages" : "--no-huge");
	report_ports();
	report_gpus();
	if (opts.probe_only)
		printf("djinn-dp: probe done, exiting\n");
	dj_eal_cleanup();
	return 0;
}
