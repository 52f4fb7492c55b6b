/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp: the Djinn server.
 *
 *   djinn-dp [EAL args] -- [options]
 *
 * Starts EAL (defaults: a memif vdev, private run-time files, --no-huge where
 * no hugepage is free), the DPDK data plane on the first port, the execution
 * runtime (every GPU of the host by default, or those --gpu names: GPU
 * memory and CUDA operations; else host memory and the CPU reference) and
 * the TCP control plane, which also carries tensors itself where the data
 * plane is unavailable. Where EAL cannot start (no hugepages and no
 * --no-huge memory, not root, no port), it serves over TCP alone and says
 * why.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "controlplane/ctl.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "fleet/fl_agent.h"
#include "gpu/gpu.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"
#include "server.h"

#define DEFAULT_VDEV "net_memif0,role=server,socket=/tmp/djinn-dp.memif,socket-abstract=no,bsize=9216"
#define DEFAULT_DP_IP "198.18.0.1"

struct dp_options {
	int probe_only;
	int no_dpdk;
	const char *listen_addr;
	uint16_t ctl_port;
	const char *gpu;
	enum rt_move_mode gpu_move;
	uint64_t mem_limit;
	uint64_t total_mem_limit;
	const char *token_file;
	const char *tls_cert, *tls_key;
	int workers;
	unsigned int stats_interval;
	const char *dp_port;
	uint16_t dp_queues;
	const char *dp_ip;
	uint32_t dp_ipv4;       /* dp_ip, host order */
	uint16_t dp_udp_port;
	uint16_t dp_frame_size;
	const char *dp_impair;
	uint32_t dp_idle_sleep_us;
	enum dp_idle dp_idle;
	int dp_caller_runs;
	uint32_t dp_initial_credit;
	enum djg_gather_mode gpu_gather;
	uint16_t gpu_gather_blocks;
	uint16_t gpu_gather_burst;
	enum djg_rx_mover gpu_rx_mover;
	const char *metrics;     /* ADDR:PORT of the Prometheus endpoint, or NULL */
	int json_log;
	/* Fleet membership (docs/FLEET.md). */
	struct fl_agent_config fleet;
	const char *fleet_token_file, *fleet_id, *fleet_advertise;
};

static volatile sig_atomic_t stop_requested;

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- [options]\n"
	       "\n"
	       "EAL args are DPDK's own: -l CORES, -a PCI, --vdev DEV, --file-prefix NAME,\n"
	       "--no-huge, -m MB... Where none names a device, djinn-dp adds\n"
	       "  --vdev '%s'.\n"
	       "Where no hugepage is free it adds --no-huge -m512 and says so. The data\n"
	       "plane needs one lcore besides the main one per queue (-l 0-1 for one).\n"
	       "\n"
	       "Options (after --):\n"
	       "  --listen ADDR          control-plane address (default 127.0.0.1)\n"
	       "  --ctl-port N           control-plane TCP port (default %d)\n"
	       "  --gpu SPEC             the GPUs to serve: auto (default: every GPU, else\n"
	       "                         host memory), all, none, an index (1) or a list\n"
	       "                         (0,2,3; an index twice is a logical alias cuda:N.1),\n"
	       "                         sim:N[:SIZE] (N simulated GPUs in host memory)\n"
	       "  --gpu-move MODE        moves between GPUs: auto (peer copy where the GPUs\n"
	       "                         reach each other, default) or staged (always\n"
	       "                         through pinned host memory)\n"
	       "  --gpu-gather MODE      GPU receive gather: persistent (a resident kernel\n"
	       "                         while data arrives, default) or launch (a kernel\n"
	       "                         per burst)\n"
	       "  --gpu-gather-blocks N  resident kernel blocks per data-plane lcore\n"
	       "                         (default: from the frame size)\n"
	       "  --gpu-gather-burst N   fragments per gather burst: an lcore's rx bursts\n"
	       "                         go to the gather kernel together, up to N (default:\n"
	       "                         128 for frames under 4 KiB, else one rx burst)\n"
	       "  --gpu-rx-mover M       how received payloads reach GPU memory: gather\n"
	       "                         (the gather kernel reads the mbufs), copy (lcores\n"
	       "                         pack pinned chunks, the copy engine moves them) or\n"
	       "                         auto (the faster, measured at start-up; default)\n"
	       "  --mem-limit SIZE       bytes per session, with K/M/G suffix (default none)\n"
	       "  --total-mem-limit SIZE bytes over all sessions (default none)\n"
	       "  --token-file PATH      pre-shared token (or DJINN_TOKEN / DJINN_TOKEN_FILE)\n"
	       "  --tls-cert PEM --tls-key PEM   TLS on the control connection\n"
	       "  --workers N            execute / transfer threads (default 4)\n"
	       "  --dp-port NAME|ID      data-plane port (default: the first port)\n"
	       "  --dp-queues N          data-plane queue pairs (default 1)\n"
	       "  --dp-ip A.B.C.D        data-plane IPv4 of this side (default %s)\n"
	       "  --dp-udp-port N        data-plane base UDP port (default: the protocol's)\n"
	       "  --dp-frame-size N      largest data-plane frame (default 9014)\n"
	       "  --dp-impair SPEC       in-line impairment, e.g. drop=0.05,reorder=0.05\n"
	       "  --dp-idle-sleep-us N   idle data-plane lcores nap N us (shared cores;\n"
	       "                         default 0: poll without pause)\n"
	       "  --dp-idle MODE         what an idle data-plane lcore does: poll, nap\n"
	       "                         (--dp-idle-sleep-us, default 20), or interrupt:\n"
	       "                         sleep until a frame wakes it (memif; ports\n"
	       "                         without rx interrupts nap). Default: nap with\n"
	       "                         --dp-idle-sleep-us, else poll\n"
	       "  --dp-caller-runs       with --dp-idle interrupt: a thread that waits for a\n"
	       "                         transfer runs the sleeping lcore's loop itself\n"
	       "                         (run to completion: no wake-up per small transfer)\n"
	       "  --dp-initial-credit N  fragments a sender may have out before the first\n"
	       "                         ACK (default: the protocol's)\n"
	       "  --no-dpdk              do not start EAL: TCP fallback only\n"
	       "  --stats-interval SEC   periodic stats line (default 10, 0: off)\n"
	       "  --fleet HOST:PORT,...  static fleet: every member's control endpoint\n"
	       "  --fleet-file PATH      static fleet from a file (one HOST:PORT a line)\n"
	       "  --fleet-etcd URL       register in etcd (http://HOST:PORT) and read the\n"
	       "                         fleet from it\n"
	       "  --fleet-prefix P       etcd key prefix (default /djinn/fleet/)\n"
	       "  --fleet-ttl SEC        etcd lease TTL (default 3)\n"
	       "  --fleet-token-file F   the fleet's token: members authenticate with it;\n"
	       "                         without it no move is made or taken\n"
	       "  --fleet-id ID          this member's id (default: its endpoint)\n"
	       "  --fleet-advertise H:P  the endpoint members and clients use (default:\n"
	       "                         --listen and the control port)\n"
	       "  --probe                report ports and GPUs, then exit\n"
	       "  --log-level LEVEL      err, warn, notice (default), info, debug\n"
	       "  --log-format FORMAT    text (default) or json (one object per line)\n"
	       "  --metrics ADDR:PORT    serve Prometheus metrics on http://ADDR:PORT/metrics\n"
	       "                         (port 0: any free one, printed)\n"
	       "  -h, --help             this text\n",
	       prog, DEFAULT_VDEV, DJ_DEFAULT_PORT, DEFAULT_DP_IP);
}

enum {
	OPT_LISTEN = 256, OPT_CTL_PORT, OPT_GPU, OPT_MEM_LIMIT, OPT_TOTAL_MEM_LIMIT,
	OPT_TOKEN_FILE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_WORKERS, OPT_DP_PORT, OPT_DP_QUEUES,
	OPT_DP_IP, OPT_DP_UDP_PORT, OPT_DP_FRAME_SIZE, OPT_DP_IMPAIR, OPT_NO_DPDK,
	OPT_STATS_INTERVAL, OPT_PROBE, OPT_LOG_LEVEL, OPT_DP_IDLE_SLEEP, OPT_DP_IDLE, OPT_DP_CALLER_RUNS,
	OPT_DP_INITIAL_CREDIT, OPT_GPU_GATHER, OPT_GPU_GATHER_BLOCKS, OPT_GPU_GATHER_BURST,
	OPT_GPU_RX_MOVER, OPT_METRICS, OPT_LOG_FORMAT, OPT_FLEET, OPT_FLEET_FILE,
	OPT_FLEET_ETCD, OPT_FLEET_PREFIX, OPT_FLEET_TTL, OPT_FLEET_TOKEN_FILE, OPT_FLEET_ID,
	OPT_FLEET_ADVERTISE, OPT_GPU_MOVE,
};

/* One option; a bad value is named by common/cli.h's helpers. */
static int parse_option(int c, const char *arg, void *opts)
{
	struct dp_options *o = opts;
	static const char *const gather_modes[] = {
		[DJG_GATHER_PERSISTENT] = "persistent", [DJG_GATHER_LAUNCH] = "launch",
	};
	static const char *const movers[] = {
		[DJG_MOVER_AUTO] = "auto", [DJG_MOVER_GATHER] = "gather", [DJG_MOVER_COPY] = "copy",
	};
	static const char *const move_modes[] = {
		[RT_MOVE_AUTO] = "auto", [RT_MOVE_STAGED] = "staged",
	};
	int i, rc;

	switch (c) {
	case OPT_LISTEN: o->listen_addr = arg; return 0;
	case OPT_GPU: o->gpu = arg; return 0;
	case OPT_TOKEN_FILE: o->token_file = arg; return 0;
	case OPT_TLS_CERT: o->tls_cert = arg; return 0;
	case OPT_TLS_KEY: o->tls_key = arg; return 0;
	case OPT_DP_PORT: o->dp_port = arg; return 0;
	case OPT_DP_IP: o->dp_ip = arg; return djc_opt_ipv4("--dp-ip", arg, &o->dp_ipv4);
	case OPT_DP_IMPAIR: o->dp_impair = arg; return 0;
	case OPT_DP_CALLER_RUNS: o->dp_caller_runs = 1; return 0;
	case OPT_NO_DPDK: o->no_dpdk = 1; return 0;
	case OPT_PROBE: o->probe_only = 1; return 0;
	case OPT_GPU_GATHER:
		rc = djc_opt_choice("--gpu-gather", arg, gather_modes, 2, &i);
		o->gpu_gather = rc == 0 ? (enum djg_gather_mode)i : o->gpu_gather;
		return rc;
	case OPT_GPU_RX_MOVER:
		rc = djc_opt_choice("--gpu-rx-mover", arg, movers, 3, &i);
		o->gpu_rx_mover = rc == 0 ? (enum djg_rx_mover)i : o->gpu_rx_mover;
		return rc;
	case OPT_GPU_MOVE:
		rc = djc_opt_choice("--gpu-move", arg, move_modes, 2, &i);
		o->gpu_move = rc == 0 ? (enum rt_move_mode)i : o->gpu_move;
		return rc;
	case OPT_MEM_LIMIT: return djc_opt_size("--mem-limit", arg, 0, UINT64_MAX, &o->mem_limit);
	case OPT_TOTAL_MEM_LIMIT:
		return djc_opt_size("--total-mem-limit", arg, 0, UINT64_MAX, &o->total_mem_limit);
	case OPT_LOG_LEVEL: return djc_opt_log_level("--log-level", arg);
	case OPT_CTL_PORT: return djc_opt_u16("--ctl-port", arg, 0, UINT16_MAX, &o->ctl_port);
	case OPT_WORKERS: return djc_opt_int("--workers", arg, 1, 64, &o->workers);
	case OPT_DP_QUEUES:
		return djc_opt_u16("--dp-queues", arg, 1, DP_PORT_MAX_QUEUES, &o->dp_queues);
	case OPT_DP_UDP_PORT: return djc_opt_u16("--dp-udp-port", arg, 0, UINT16_MAX, &o->dp_udp_port);
	case OPT_DP_FRAME_SIZE:
		return djc_opt_u16("--dp-frame-size", arg, 128, UINT16_MAX, &o->dp_frame_size);
	case OPT_STATS_INTERVAL:
		return djc_opt_u32("--stats-interval", arg, 0, 86400, &o->stats_interval);
	case OPT_DP_IDLE_SLEEP:
		return djc_opt_u32("--dp-idle-sleep-us", arg, 0, 1000000, &o->dp_idle_sleep_us);
	case OPT_DP_IDLE:
		rc = djc_opt_choice("--dp-idle", arg, dp_idle_names + 1, DP_IDLE_INTERRUPT, &i);
		o->dp_idle = rc == 0 ? (enum dp_idle)(i + 1) : o->dp_idle;
		return rc;
	case OPT_DP_INITIAL_CREDIT:
		return djc_opt_u32("--dp-initial-credit", arg, 0, 1u << 20, &o->dp_initial_credit);
	case OPT_GPU_GATHER_BLOCKS:
		return djc_opt_u16("--gpu-gather-blocks", arg, 0, 1024, &o->gpu_gather_blocks);
	case OPT_GPU_GATHER_BURST:
		return djc_opt_u16("--gpu-gather-burst", arg, 1, DJG_PLACER_BURST_MAX,
				   &o->gpu_gather_burst);
	case OPT_FLEET: o->fleet.members = arg; return 0;
	case OPT_FLEET_FILE: o->fleet.members_file = arg; return 0;
	case OPT_FLEET_ETCD: o->fleet.etcd = arg; return 0;
	case OPT_FLEET_PREFIX: o->fleet.prefix = arg; return 0;
	case OPT_FLEET_TTL: return djc_opt_u32("--fleet-ttl", arg, 0, 3600, &o->fleet.ttl_s);
	case OPT_FLEET_TOKEN_FILE: o->fleet_token_file = arg; return 0;
	case OPT_FLEET_ID: o->fleet_id = arg; return 0;
	case OPT_FLEET_ADVERTISE: o->fleet_advertise = arg; return 0;
	case OPT_METRICS: {
		char addr[64];
		uint16_t port;

		o->metrics = arg;
		if (mx_parse_listen(arg, addr, sizeof(addr), &port) != 0)
			return djc_cli_error("--metrics: '%s' is not ADDR:PORT (IPv4 or *, port "
					     "0..65535)", arg);
		return 0;
	}
	case OPT_LOG_FORMAT:
		rc = djc_opt_log_format("--log-format", arg);
		o->json_log = rc == 0 && djc_log_get_format() == DJC_LOG_JSON;
		return rc;
	default:
		return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, struct dp_options *o)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"ctl-port", required_argument, NULL, OPT_CTL_PORT},
		{"gpu", required_argument, NULL, OPT_GPU},
		{"gpu-gather", required_argument, NULL, OPT_GPU_GATHER},
		{"gpu-gather-blocks", required_argument, NULL, OPT_GPU_GATHER_BLOCKS},
		{"gpu-gather-burst", required_argument, NULL, OPT_GPU_GATHER_BURST},
		{"gpu-rx-mover", required_argument, NULL, OPT_GPU_RX_MOVER},
		{"gpu-move", required_argument, NULL, OPT_GPU_MOVE},
		{"mem-limit", required_argument, NULL, OPT_MEM_LIMIT},
		{"total-mem-limit", required_argument, NULL, OPT_TOTAL_MEM_LIMIT},
		{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"dp-port", required_argument, NULL, OPT_DP_PORT},
		{"dp-queues", required_argument, NULL, OPT_DP_QUEUES},
		{"dp-ip", required_argument, NULL, OPT_DP_IP},
		{"dp-udp-port", required_argument, NULL, OPT_DP_UDP_PORT},
		{"dp-frame-size", required_argument, NULL, OPT_DP_FRAME_SIZE},
		{"dp-impair", required_argument, NULL, OPT_DP_IMPAIR},
		{"dp-idle-sleep-us", required_argument, NULL, OPT_DP_IDLE_SLEEP},
		{"dp-idle", required_argument, NULL, OPT_DP_IDLE},
		{"dp-caller-runs", no_argument, NULL, OPT_DP_CALLER_RUNS},
		{"dp-initial-credit", required_argument, NULL, OPT_DP_INITIAL_CREDIT},
		{"no-dpdk", no_argument, NULL, OPT_NO_DPDK},
		{"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
		{"probe", no_argument, NULL, OPT_PROBE},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"metrics", required_argument, NULL, OPT_METRICS},
		{"fleet", required_argument, NULL, OPT_FLEET},
		{"fleet-file", required_argument, NULL, OPT_FLEET_FILE},
		{"fleet-etcd", required_argument, NULL, OPT_FLEET_ETCD},
		{"fleet-prefix", required_argument, NULL, OPT_FLEET_PREFIX},
		{"fleet-ttl", required_argument, NULL, OPT_FLEET_TTL},
		{"fleet-token-file", required_argument, NULL, OPT_FLEET_TOKEN_FILE},
		{"fleet-id", required_argument, NULL, OPT_FLEET_ID},
		{"fleet-advertise", required_argument, NULL, OPT_FLEET_ADVERTISE},
		{NULL, 0, NULL, 0},
	};

	return djc_cli_getopt(argc, argv, "", longopts, parse_option, o, NULL);
}

/*
 * The token, read here rather than by the control plane so that its file is
 * named in every error: --token-file, else DJINN_TOKEN, else the file
 * DJINN_TOKEN_FILE (the control plane alone read only --token-file). A file
 * that group or others may read is served, with a warning.
 */
static int token_load(const struct dp_options *o, char **token)
{
	const char *env = getenv("DJINN_TOKEN"), *path = o->token_file;
	const char *source = "--token-file";
	struct stat st;
	int rc;

	*token = NULL;
	if (path == NULL && (env == NULL || env[0] == '\0')) {
		path = getenv("DJINN_TOKEN_FILE");
		source = "DJINN_TOKEN_FILE";
	}
	rc = dj_token_load(path != NULL && path[0] != '\0' ? path : NULL, token);
	if (rc == -ENOENT && (path == NULL || path[0] == '\0'))
		return 0; /* no token anywhere: the server says it runs without auth */
	if (rc == -ENODATA)
		return djc_cli_error("token file %s (%s) is empty", path, source);
	if (rc != 0)
		return djc_cli_error("token file %s (%s): %s", path, source, dj_strerror(rc));
	if (path != NULL && stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		djc_cli_error("warning: token file %s is readable by group or others "
			      "(mode %04o): chmod 600 %s", path, (unsigned int)(st.st_mode & 07777),
			      path);
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
	int n = djg_count();

	printf("gpus (gpudev): %d\n", n);
	for (int i = 0; i < n; i++) {
		struct djg_info g;

		if (djg_info_get(i, &g) != 0)
			continue;
		printf("  gpu %d: gpudev id %d %s (%s) memory %.1f GB SMs %u numa %d\n", i,
		       g.dev_id, g.name, g.pci_addr, g.total_memory / 1e9, g.processors,
		       g.numa_node);
	}
}

/* GPU-resident tensors reach the data plane through the GPU module's placer
 * on every GPU the runtime serves, device i of the placer being the
 * runtime's device i (gpudev numbers GPUs its own way). *placer stays NULL
 * for a host runtime. The resident gather kernel by default: it leaves the
 * GPU whenever a receive completes, so the runtime's CUDA work never waits
 * behind it for long (docs/GPU.md). */
static int gpu_placer_create(const struct dp_options *o, const struct rt_runtime *rt,
			     struct djg_dp_placer **placer)
{
	struct djg_dp_placer_conf pc = {.mode = o->gpu_gather,
					   .blocks = o->gpu_gather_blocks,
					   .gather_burst = o->gpu_gather_burst,
					   .frag_size = o->dp_frame_size,
					   .mover = o->gpu_rx_mover};
	struct rt_device_info devs[RT_MAX_DEVICES];
	int n = rt_devices(rt, devs, RT_MAX_DEVICES), rc;

	*placer = NULL;
	if (n < 1 || devs[0].kind != RT_DEVICE_CUDA)
		return 0;
	for (int i = 0; i < n && i < DJG_PLACER_MAX_DEVS; i++) {
		int dev = djg_find_cuda(devs[i].ordinal);

		if (dev < 0) {
			fprintf(stderr, "djinn-dp: %s is not seen by gpudev: %s\n", devs[i].name,
				dj_strerror(dev));
			return dev;
		}
		pc.dev_ids[pc.n_devs++] = (int16_t)dev;
	}
	rc = djg_dp_placer_create(&pc, placer);
	if (rc == 0) {
		struct djg_dp_placer_stats g;

		djg_dp_placer_stats_get(*placer, &g);
		printf("data plane: GPU tensors received by %s into the GPU each lies on "
		       "(%d device(s), mover %s of %s: gather %.1f GB/s, copy %.1f GB/s), sent "
		       "through pinned staging rings\n",
		       g.mover == DJG_MOVER_COPY ? "pinned chunks and the copy engine" :
		       o->gpu_gather == DJG_GATHER_PERSISTENT ? "resident gather kernels"
							      : "a gather kernel per burst",
		       pc.n_devs, djg_rx_mover_name(g.mover), djg_rx_mover_name(g.mover_asked),
		       g.gather_gbytes_s, g.copy_gbytes_s);
	}
	return rc;
}

/* The data-plane port's index, as --dp-port names it (default 0). */
static int dp_port_index(const struct dp_options *o)
{
	uint16_t port_id = 0;

	if (o->dp_port != NULL && dp_port_find(o->dp_port, &port_id) != 0)
		return -1;
	return port_id;
}

/* --probe (rt NULL: the GPUs --gpu names) or a starting server (its
 * devices, warnings only): the NUMA topology and the plan. */
static void report_topology(const struct dp_options *o, const struct rt_runtime *rt, int eal_up)
{
	srv_topology_report(rt, o->gpu, eal_up ? dp_port_index(o) : -1, o->dp_queues, eal_up,
			    rt == NULL);
}

static int dataplane_start(const struct dp_options *o, const struct djg_dp_placer *placer,
			   struct dp_engine **dp)
{
	struct dp_engine_config cfg;
	uint16_t port_id = 0;
	int rc;

	if (rte_eth_dev_count_avail() == 0)
		return -ENODEV;
	if (o->dp_port != NULL && dp_port_find(o->dp_port, &port_id) != 0) {
		fprintf(stderr, "djinn-dp: no data-plane port '%s'\n", o->dp_port);
		return -ENODEV;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.port.port_id = port_id;
	cfg.port.nb_queues = o->dp_queues;
	cfg.port.frame_size = o->dp_frame_size;
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = o->dp_ipv4;
	cfg.local.port = o->dp_udp_port;
	cfg.impair = o->dp_impair;
	cfg.idle_sleep_us = o->dp_idle_sleep_us;
	cfg.idle = o->dp_idle;
	cfg.caller_runs = o->dp_caller_runs != 0;
	cfg.placer = djg_dp_placer_ops(placer);
	if (o->dp_initial_credit != 0) {
		dp_channel_config_init(&cfg.session);
		cfg.session.initial_credit = o->dp_initial_credit;
		cfg.session_set = true;
	}
	rc = dp_engine_create(&cfg, dp);
	if (rc == 0)
		printf("data plane: port %u, %u queue(s), %s, frames up to %u B\n", port_id,
		       o->dp_queues, o->dp_ip, o->dp_frame_size);
	return rc;
}

static void on_signal(int sig)
{
	stop_requested = 1;
}

static void print_gather_stats(struct djg_dp_placer *placer)
{
	struct djg_dp_placer_stats g;

	djg_dp_placer_stats_get(placer, &g);
	printf(", gpu rx %s %.1f MB in %" PRIu64 " bursts, %" PRIu64 " direct, %" PRIu64 " failed",
	       djg_rx_path_name(g.sink.path), g.sink.bytes / 1e6, g.sink.bursts,
	       g.direct_copies, g.failures);
	if (g.mover == DJG_MOVER_COPY)
		printf(", %.1f MB in %" PRIu64 " chunks", g.chunk_bytes / 1e6, g.chunks);
}

static void print_stats(struct ctl_server *server, struct dp_engine *dp,
			struct djg_dp_placer *placer)
{
	struct ctl_server_stats s;

	ctl_server_get_stats(server, &s);
	printf("stats: connections %" PRIu64 " open, sessions %" PRIu64 " (dpdk %" PRIu64
	       ", tcp %" PRIu64 "), requests %" PRIu64 ", errors %" PRIu64 ", in %.1f MB, out %.1f MB",
	       s.connections_open, s.sessions_opened, s.sessions_dpdk, s.sessions_tcp, s.requests,
	       s.errors_sent, s.bytes_in / 1e6, s.bytes_out / 1e6);
	if (dp != NULL) {
		struct dp_engine_stats d;

		dp_engine_get_stats(dp, &d, NULL);
		printf(", dp rx %" PRIu64 " pkts tx %" PRIu64 " pkts", d.rx_packets, d.tx_packets);
		if (d.drops[DP_DROP_IMPAIR] != 0 || d.retransmits != 0)
			printf(" (%" PRIu64 " retransmitted, %" PRIu64 " dropped by --dp-impair)",
			       d.retransmits, d.drops[DP_DROP_IMPAIR]);
	}
	if (placer != NULL)
		print_gather_stats(placer);
	printf("\n");
	fflush(stdout);
}

/* What STATS, the metrics and telemetry read of the running server: its
 * parts are filled in before the control plane starts (server.h). */
static struct srv_view view;
static int telemetry_on;

static int runtime_create(const struct dp_options *o, struct rt_runtime **rt)
{
	struct rt_config rt_cfg = {
		.gpu = o->gpu,
		.session_limit = o->mem_limit,
		.total_limit = o->total_mem_limit,
		.n_contexts = o->workers,
		.move_mode = o->gpu_move,
		.stats_extra = srv_stats_json,
		.stats_arg = &view,
	};
	int rc = rt_create(&rt_cfg, rt);

	if (rc != 0) {
		fprintf(stderr, "djinn-dp: runtime (--gpu %s): %s\n", o->gpu, dj_strerror(rc));
		return rc;
	}
	printf("compute: %s\n", rt_description(*rt));
	return 0;
}

/* The fleet's part of the control plane's configuration: the membership
 * agent checks move targets and fills STATS' "fleet". */
static void fleet_config(const struct dp_options *o, struct fl_agent *agent,
			 struct ctl_fleet_config *f)
{
	f->token_file = o->fleet_token_file;
	f->member_id = o->fleet_id;
	f->advertise = o->fleet_advertise;
	f->peer_check = fl_agent_peer_check;
	f->stats = fl_agent_stats;
	f->arg = agent;
}

/* Metrics endpoint (the server's families and the fleet's) and telemetry
 * commands, once the server runs; stopped before it and the fleet's agent
 * go (observers_stop). */
static int observers_start(const struct dp_options *o, struct fl_agent *agent,
			   struct mx_registry **reg, struct mx_http **http)
{
	char addr[64];
	uint16_t port;
	int rc;

	if (telemetry_on && srv_telemetry_attach(&view) != 0)
		printf("djinn-dp: telemetry commands not registered\n");
	if (o->metrics == NULL)
		return 0;
	mx_parse_listen(o->metrics, addr, sizeof(addr), &port);
	rc = mx_registry_create(reg);
	if (rc == 0)
		rc = mx_registry_add(*reg, srv_metrics_collect, &view);
	if (rc == 0)
		rc = mx_registry_add(*reg, srv_fleet_collect, agent);
	if (rc == 0)
		rc = mx_http_start(*reg, addr, port, http);
	if (rc != 0) {
		fprintf(stderr, "djinn-dp: metrics on %s: %s\n", o->metrics, dj_strerror(rc));
		return rc;
	}
	printf("metrics: http://%s:%u/metrics\n", addr, mx_http_port(*http));
	return 0;
}

static void observers_stop(struct mx_registry *reg, struct mx_http *http)
{
	mx_http_stop(http);
	mx_registry_destroy(reg);
	srv_telemetry_detach();
}

static int serve(const struct dp_options *o, const char *token, struct rt_runtime *rt,
		 struct dp_engine *dp, struct djg_dp_placer *placer)
{
	struct mx_registry *reg = NULL;
	struct mx_http *http = NULL;
	struct ctl_server_config ctl_cfg;
	struct dj_datapath datapath;
	struct ctl_server *server = NULL;
	struct fl_agent *agent = NULL;
	int rc;

	ctl_server_config_init(&ctl_cfg);
	ctl_cfg.listen_addr = o->listen_addr;
	ctl_cfg.port = o->ctl_port;
	ctl_cfg.token = token;
	ctl_cfg.tls_cert = o->tls_cert;
	ctl_cfg.tls_key = o->tls_key;
	ctl_cfg.n_workers = o->workers;
	if (dp != NULL) {
		dp_engine_datapath(dp, &datapath);
		ctl_cfg.datapath = &datapath;
	}
	rc = fl_agent_create(&o->fleet, &agent);
	if (rc != 0)
		return rc;
	fleet_config(o, agent, &ctl_cfg.fleet);
	rc = ctl_server_create(&ctl_cfg, rt_backend(), rt, &server);
	if (rc == 0)
		rc = ctl_server_start(server);
	if (rc == 0)
		rc = fl_agent_start(agent, server);
	if (rc != 0) {
		fprintf(stderr, "djinn-dp: control plane on %s:%u: %s\n", o->listen_addr,
			o->ctl_port, dj_strerror(rc));
		fl_agent_destroy(agent);
		ctl_server_destroy(server);
		return rc;
	}
	printf("fleet: member %s, %s\n", ctl_server_member_id(server),
	       o->fleet.etcd != NULL ? "membership in etcd" :
	       o->fleet.members != NULL || o->fleet.members_file != NULL ? "static membership" :
	       "no membership (a lone server)");
	view.ctl = server;
	rc = observers_start(o, agent, &reg, &http);
	if (rc != 0) {
		observers_stop(reg, http);
		fl_agent_destroy(agent);
		ctl_server_destroy(server);
		return rc;
	}
	printf("control plane: listening on %s:%u (%s); tensor bytes over %s\n", o->listen_addr,
	       ctl_server_port(server), o->tls_cert ? "TLS" : "plain TCP",
	       dp != NULL ? "DPDK where the client has it, else TCP" : "TCP (no data plane)");
	fflush(stdout);

	unsigned int seconds = 0;
	while (!stop_requested) {
		sleep(1);
		if (o->stats_interval != 0 && ++seconds % o->stats_interval == 0)
			print_stats(server, dp, placer);
	}
	printf("djinn-dp: shutting down\n");
	print_stats(server, dp, placer);
	observers_stop(reg, http);
	fl_agent_destroy(agent);   /* leaves the fleet at once */
	ctl_server_destroy(server); /* tells sessions, closes connections */
	return 0;
}

int main(int argc, char **argv)
{
	struct dp_eal_options eal_opts = {.default_vdev = DEFAULT_VDEV};
	char socket_path[PATH_MAX];
	struct dp_options o = {
		.listen_addr = "127.0.0.1",
		.ctl_port = DJ_DEFAULT_PORT,
		.gpu = "auto",
		.gpu_gather = DJG_GATHER_PERSISTENT,
		.workers = 4,
		.stats_interval = 10,
		.dp_queues = 1,
		.dp_ip = DEFAULT_DP_IP,
		.dp_frame_size = 9014,
	};
	struct dp_engine *dp = NULL;
	struct djg_dp_placer *placer = NULL;
	struct rt_runtime *rt = NULL;
	int app_argc, eal_argc, rc, eal_up = 0;
	char **app_argv, **eal_app_argv, *token = NULL;

	djc_cli_set_name("djinn-dp");
	/* --help must work without EAL (no hugepages, not root). */
	if (djc_cli_wants_help(argc, argv)) {
		usage(argv[0]);
		return 0;
	}
	djc_parse_ipv4(DEFAULT_DP_IP, &o.dp_ipv4);
	if (djc_cli_app_args(argc, argv, false, &app_argc, &app_argv) < 0 ||
	    parse_options(app_argc, app_argv, &o) != 0) {
		usage(argv[0]);
		return 2;
	}
	if (token_load(&o, &token) != 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.json_log)
		dp_eal_log_bridge();
	if (!o.no_dpdk) {
		rc = dp_eal_init(argc, argv, &eal_opts, &eal_argc, &eal_app_argv);
		if (rc == 0)
			eal_up = 1;
		else if (o.probe_only)
			return 1;
		else if (rc == -EADDRINUSE || rc == -EEXIST) {
			/* Another server owns the memif socket (path logged): two
			 * servers cannot share it, and one without its data plane
			 * would only hide the mistake. */
			fprintf(stderr, "djinn-dp: the data plane's memif socket is taken (see "
				"above): not starting\n");
			return 1;
		}
		else
			printf("djinn-dp: DPDK unavailable (%s): serving over TCP only\n",
			       dj_strerror(rc));
	}
	if (eal_up) {
		printf("djinn-dp: EAL up (%s), %u lcores\n",
		       dp_eal_has_hugepages() ? "hugepages" : "--no-huge", rte_lcore_count());
		report_ports();
		report_gpus();
		if (o.probe_only)
			report_topology(&o, NULL, eal_up);
		telemetry_on = dp_eal_telemetry_socket(socket_path, sizeof(socket_path)) == 0;
		if (telemetry_on)
			printf("telemetry: %s (dpdk-telemetry.py -f %s%s; /djinn/stats ...)\n",
			       socket_path, dp_eal_file_prefix(),
			       strchr(strrchr(socket_path, '/'), ':') != NULL ? " -i N" : "");
	}
	if (o.probe_only) {
		printf("djinn-dp: probe done, exiting\n");
		dp_eal_cleanup();
		free(token);
		return 0;
	}
	/* The runtime outlives the data plane: no queued GPU copy lands in a
	 * freed tensor. */
	rc = runtime_create(&o, &rt);
	if (rc == 0)
		report_topology(&o, rt, eal_up);
	if (rc == 0 && eal_up) {
		int dp_rc = gpu_placer_create(&o, rt, &placer);

		if (dp_rc == 0)
			dp_rc = dataplane_start(&o, placer, &dp);
		if (dp_rc != 0)
			printf("djinn-dp: data plane not started (%s): tensors travel over TCP\n",
			       dj_strerror(dp_rc));
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	srv_view_init(&view);
	view.dp = dp;
	view.placer = placer;
	view.gather_mode = o.gpu_gather;
	view.rt = rt;
	view.start_time = (double)time(NULL);
	if (rc == 0)
		rc = serve(&o, token, rt, dp, placer);
	view.dp = NULL;
	view.placer = NULL;
	srv_view_fini(&view);
	/* Stop polling before the port goes, so a memif peer never sees its
	 * rings vanish under a burst (DPDK 22.11). */
	if (dp != NULL)
		dp_engine_quiesce(dp);
	dp_engine_destroy(dp);
	djg_dp_placer_destroy(placer);
	rt_destroy(rt);        /* frees every resident tensor */
	if (eal_up)
		dp_eal_cleanup();
	free(token);
	return rc == 0 ? 0 : 1;
}
