/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-dp: the Djinn server.
 *
 *   djinn-dp [EAL args] -- [options]
 *
 * Starts EAL (defaults: a memif vdev, private run-time files, --no-huge where
 * no hugepage is free), the DPDK data plane on the first port, the execution
 * runtime (GPU memory and CUDA operations when a GPU is chosen, else host
 * memory and the CPU reference) and the TCP control plane, which also carries
 * tensors itself where the data plane is unavailable. Where EAL cannot start
 * (no hugepages and no --no-huge memory, not root, no port), it serves over
 * TCP alone and says why.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "controlplane/ctl.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "runtime/runtime.h"

#define DEFAULT_VDEV "net_memif0,role=server,socket=/tmp/djinn-dp.memif,socket-abstract=no,bsize=9216"
#define DEFAULT_DP_IP "198.18.0.1"

struct dp_options {
	int probe_only;
	int no_dpdk;
	const char *listen_addr;
	uint16_t ctl_port;
	const char *gpu;
	uint64_t mem_limit;
	uint64_t total_mem_limit;
	const char *token_file;
	const char *tls_cert, *tls_key;
	int workers;
	unsigned int stats_interval;
	const char *dp_port;
	uint16_t dp_queues;
	const char *dp_ip;
	uint16_t dp_udp_port;
	uint16_t dp_frame_size;
	const char *dp_impair;
	uint32_t dp_idle_sleep_us;
	uint32_t dp_initial_credit;
	enum djg_gather_mode gpu_gather;
	uint16_t gpu_gather_blocks;
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
	       "  --gpu SPEC             auto (default), none, or a CUDA device index\n"
	       "  --gpu-gather MODE      GPU receive gather: persistent (a resident kernel\n"
	       "                         while data arrives, default) or launch (a kernel\n"
	       "                         per burst)\n"
	       "  --gpu-gather-blocks N  resident kernel blocks per data-plane lcore\n"
	       "                         (default: from the frame size)\n"
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
	       "  --dp-initial-credit N  fragments a sender may have out before the first\n"
	       "                         ACK (default: the protocol's)\n"
	       "  --no-dpdk              do not start EAL: TCP fallback only\n"
	       "  --stats-interval SEC   periodic stats line (default 10, 0: off)\n"
	       "  --probe                report ports and GPUs, then exit\n"
	       "  --log-level LEVEL      err, warn, notice (default), info, debug\n"
	       "  -h, --help             this text\n",
	       prog, DEFAULT_VDEV, DJ_DEFAULT_PORT, DEFAULT_DP_IP);
}

/* --help must work without EAL (no hugepages, not root). */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

static int parse_size(const char *text, uint64_t *bytes)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || end == text || text[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	/* A size that does not fit in 64 bits is refused, not wrapped. */
	if (*end != '\0' || v > (ULLONG_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *text, unsigned long max, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 0);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || *value > max)
		return -EINVAL;
	return 0;
}

static int parse_gather_mode(const char *text, enum djg_gather_mode *mode)
{
	if (strcmp(text, "persistent") == 0)
		*mode = DJG_GATHER_PERSISTENT;
	else if (strcmp(text, "launch") == 0)
		*mode = DJG_GATHER_LAUNCH;
	else
		return -EINVAL;
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_CTL_PORT, OPT_GPU, OPT_MEM_LIMIT, OPT_TOTAL_MEM_LIMIT,
	OPT_TOKEN_FILE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_WORKERS, OPT_DP_PORT, OPT_DP_QUEUES,
	OPT_DP_IP, OPT_DP_UDP_PORT, OPT_DP_FRAME_SIZE, OPT_DP_IMPAIR, OPT_NO_DPDK,
	OPT_STATS_INTERVAL, OPT_PROBE, OPT_LOG_LEVEL, OPT_DP_IDLE_SLEEP, OPT_DP_INITIAL_CREDIT, OPT_GPU_GATHER,
	OPT_GPU_GATHER_BLOCKS,
};

static int parse_option(int c, const char *arg, struct dp_options *o)
{
	unsigned long v;
	enum dj_log_level level;

	switch (c) {
	case OPT_LISTEN: o->listen_addr = arg; return 0;
	case OPT_GPU: o->gpu = arg; return 0;
	case OPT_TOKEN_FILE: o->token_file = arg; return 0;
	case OPT_TLS_CERT: o->tls_cert = arg; return 0;
	case OPT_TLS_KEY: o->tls_key = arg; return 0;
	case OPT_DP_PORT: o->dp_port = arg; return 0;
	case OPT_DP_IP: o->dp_ip = arg; return 0;
	case OPT_DP_IMPAIR: o->dp_impair = arg; return 0;
	case OPT_NO_DPDK: o->no_dpdk = 1; return 0;
	case OPT_PROBE: o->probe_only = 1; return 0;
	case OPT_GPU_GATHER: return parse_gather_mode(arg, &o->gpu_gather);
	case OPT_MEM_LIMIT: return parse_size(arg, &o->mem_limit);
	case OPT_TOTAL_MEM_LIMIT: return parse_size(arg, &o->total_mem_limit);
	case OPT_LOG_LEVEL:
		if (djc_log_level_parse(arg, &level) != 0)
			return -EINVAL;
		dj_log_set_level(level);
		return 0;
	default:
		break;
	}
	/* Numeric options. */
	static const struct { int opt; unsigned long max; } limits[] = {
		{OPT_CTL_PORT, 65535}, {OPT_WORKERS, 64}, {OPT_DP_QUEUES, DP_PORT_MAX_QUEUES},
		{OPT_DP_UDP_PORT, 65535}, {OPT_DP_FRAME_SIZE, 65535}, {OPT_STATS_INTERVAL, 86400},
		{OPT_DP_IDLE_SLEEP, 1000000}, {OPT_DP_INITIAL_CREDIT, 1u << 20},
		{OPT_GPU_GATHER_BLOCKS, 1024},
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (limits[i].opt != c)
			continue;
		if (parse_uint(arg, limits[i].max, &v) != 0)
			return -EINVAL;
		switch (c) {
		case OPT_CTL_PORT: o->ctl_port = (uint16_t)v; break;
		case OPT_WORKERS: o->workers = (int)v; break;
		case OPT_DP_QUEUES: o->dp_queues = (uint16_t)v; break;
		case OPT_DP_UDP_PORT: o->dp_udp_port = (uint16_t)v; break;
		case OPT_DP_FRAME_SIZE: o->dp_frame_size = (uint16_t)v; break;
		case OPT_DP_IDLE_SLEEP: o->dp_idle_sleep_us = (uint32_t)v; break;
		case OPT_DP_INITIAL_CREDIT: o->dp_initial_credit = (uint32_t)v; break;
		case OPT_GPU_GATHER_BLOCKS: o->gpu_gather_blocks = (uint16_t)v; break;
		default: o->stats_interval = (unsigned int)v; break;
		}
		return 0;
	}
	return -EINVAL;
}

static int parse_options(int argc, char **argv, struct dp_options *o)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"ctl-port", required_argument, NULL, OPT_CTL_PORT},
		{"gpu", required_argument, NULL, OPT_GPU},
		{"gpu-gather", required_argument, NULL, OPT_GPU_GATHER},
		{"gpu-gather-blocks", required_argument, NULL, OPT_GPU_GATHER_BLOCKS},
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
		{"dp-initial-credit", required_argument, NULL, OPT_DP_INITIAL_CREDIT},
		{"no-dpdk", no_argument, NULL, OPT_NO_DPDK},
		{"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
		{"probe", no_argument, NULL, OPT_PROBE},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{NULL, 0, NULL, 0},
	};
	int c, index = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, &index)) != -1) {
		if (c == '?' || parse_option(c, optarg, o) != 0) {
			if (c != '?')
				fprintf(stderr, "djinn-dp: bad value '%s' for --%s\n", optarg,
					longopts[index].name);
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
 * on the GPU the runtime computes on (gpudev numbers GPUs its own way).
 * *placer stays NULL for a host runtime. The resident gather kernel by
 * default: it leaves the GPU whenever a receive completes, so the runtime's
 * CUDA work never waits behind it for long (docs/GPU.md). */
static int gpu_placer_create(const struct dp_options *o, const struct rt_runtime *rt,
			     struct djg_dp_placer **placer)
{
	struct djg_dp_placer_conf pc = {.mode = o->gpu_gather,
					   .blocks = o->gpu_gather_blocks,
					   .frag_size = o->dp_frame_size};
	int ordinal = rt_gpu_device(rt);
	int dev, rc;

	*placer = NULL;
	if (ordinal < 0)
		return 0;
	dev = djg_find_cuda(ordinal);
	if (dev < 0) {
		fprintf(stderr, "djinn-dp: CUDA device %d is not seen by gpudev: %s\n", ordinal,
			dj_strerror(dev));
		return dev;
	}
	pc.dev_id = (int16_t)dev;
	rc = djg_dp_placer_create(&pc, placer);
	if (rc == 0)
		printf("data plane: GPU tensors received by %s on gpudev %d "
		       "(cuda:%d), sent through a pinned staging ring\n",
		       o->gpu_gather == DJG_GATHER_PERSISTENT ? "a resident gather kernel"
								 : "a gather kernel per burst",
		       dev, ordinal);
	return rc;
}

static int dataplane_start(const struct dp_options *o, const struct djg_dp_placer *placer,
			   struct dp_engine **dp)
{
	struct dp_engine_config cfg;
	struct in_addr ip;
	uint16_t port_id = 0;
	int rc;

	if (rte_eth_dev_count_avail() == 0)
		return -ENODEV;
	if (o->dp_port != NULL && dp_port_find(o->dp_port, &port_id) != 0) {
		fprintf(stderr, "djinn-dp: no data-plane port '%s'\n", o->dp_port);
		return -ENODEV;
	}
	if (inet_pton(AF_INET, o->dp_ip, &ip) != 1) {
		fprintf(stderr, "djinn-dp: bad --dp-ip '%s'\n", o->dp_ip);
		return -EINVAL;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.port.port_id = port_id;
	cfg.port.nb_queues = o->dp_queues;
	cfg.port.frame_size = o->dp_frame_size;
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = ntohl(ip.s_addr);
	cfg.local.port = o->dp_udp_port;
	cfg.impair = o->dp_impair;
	cfg.idle_sleep_us = o->dp_idle_sleep_us;
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
	}
	if (placer != NULL)
		print_gather_stats(placer);
	printf("\n");
	fflush(stdout);
}

/* What STATS replies say of the data plane; filled once both exist, before
 * the control plane starts. */
static struct {
	const struct dp_engine *dp;
	struct djg_dp_placer *placer;
	enum djg_gather_mode mode;
} dp_view;

static void dp_stats_json(void *arg, cJSON *obj)
{
	cJSON *d = cJSON_AddObjectToObject(obj, "data_plane");
	struct djg_dp_placer_stats g;

	(void)arg;
	if (d == NULL)
		return;
	cJSON_AddBoolToObject(d, "running", dp_view.dp != NULL);
	if (dp_view.placer == NULL) {
		cJSON_AddStringToObject(d, "gpu_rx_path", "none (tensors in host memory)");
		return;
	}
	djg_dp_placer_stats_get(dp_view.placer, &g);
	cJSON_AddStringToObject(d, "gpu_rx_path", djg_rx_path_name(g.sink.path));
	cJSON_AddStringToObject(d, "gpu_gather", dp_view.mode == DJG_GATHER_PERSISTENT ?
						 "persistent" : "launch");
	cJSON_AddNumberToObject(d, "gpu_rx_bytes", (double)g.sink.bytes);
	cJSON_AddNumberToObject(d, "gpu_rx_bursts", (double)g.sink.bursts);
	cJSON_AddNumberToObject(d, "gpu_rx_direct_copies", (double)g.direct_copies);
	cJSON_AddNumberToObject(d, "gpu_rx_failures", (double)g.failures);
	cJSON_AddNumberToObject(d, "gpu_rx_kernel_generations", (double)g.sink.generations);
}

static int runtime_create(const struct dp_options *o, struct rt_runtime **rt)
{
	struct rt_config rt_cfg = {
		.gpu = o->gpu,
		.session_limit = o->mem_limit,
		.total_limit = o->total_mem_limit,
		.n_contexts = o->workers,
		.stats_extra = dp_stats_json,
	};
	int rc = rt_create(&rt_cfg, rt);

	if (rc != 0) {
		fprintf(stderr, "djinn-dp: runtime (--gpu %s): %s\n", o->gpu, dj_strerror(rc));
		return rc;
	}
	printf("compute: %s\n", rt_description(*rt));
	return 0;
}

static int serve(const struct dp_options *o, struct rt_runtime *rt, struct dp_engine *dp,
		 struct djg_dp_placer *placer)
{
	struct ctl_server_config ctl_cfg;
	struct dj_datapath datapath;
	struct ctl_server *server = NULL;
	int rc;

	ctl_server_config_init(&ctl_cfg);
	ctl_cfg.listen_addr = o->listen_addr;
	ctl_cfg.port = o->ctl_port;
	ctl_cfg.token_file = o->token_file;
	ctl_cfg.tls_cert = o->tls_cert;
	ctl_cfg.tls_key = o->tls_key;
	ctl_cfg.n_workers = o->workers;
	if (dp != NULL) {
		dp_engine_datapath(dp, &datapath);
		ctl_cfg.datapath = &datapath;
	}
	rc = ctl_server_create(&ctl_cfg, rt_backend(), rt, &server);
	if (rc == 0)
		rc = ctl_server_start(server);
	if (rc != 0) {
		fprintf(stderr, "djinn-dp: control plane on %s:%u: %s\n", o->listen_addr,
			o->ctl_port, dj_strerror(rc));
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
	ctl_server_destroy(server); /* tells sessions, closes connections */
	return 0;
}

int main(int argc, char **argv)
{
	struct dp_eal_options eal_opts = {.default_vdev = DEFAULT_VDEV};
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
	char **app_argv, **eal_app_argv;

	if (wants_help(argc, argv)) {
		usage(argv[0]);
		return 0;
	}
	dp_eal_app_args(argc, argv, &app_argc, &app_argv);
	if (parse_options(app_argc, app_argv, &o) != 0) {
		usage(argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
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
	}
	if (o.probe_only) {
		printf("djinn-dp: probe done, exiting\n");
		dp_eal_cleanup();
		return 0;
	}
	/* The runtime outlives the data plane: no queued GPU copy lands in a
	 * freed tensor. */
	rc = runtime_create(&o, &rt);
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
	dp_view.dp = dp;
	dp_view.placer = placer;
	dp_view.mode = o.gpu_gather;
	if (rc == 0)
		rc = serve(&o, rt, dp, placer);
	dp_view.dp = NULL;
	dp_view.placer = NULL;
	/* Stop polling before the port goes, so a memif peer never sees its
	 * rings vanish under a burst (DPDK 22.11). */
	if (dp != NULL)
		dp_engine_quiesce(dp);
	dp_engine_destroy(dp);
	djg_dp_placer_destroy(placer);
	rt_destroy(rt);        /* frees every resident tensor */
	if (eal_up)
		dp_eal_cleanup();
	return rc == 0 ? 0 : 1;
}
