/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-bench: packet-level benchmarks of the Djinn data plane.
 *
 *   djinn-bench [EAL args] -- --mode MODE --role send|recv [options]
 *
 * Two processes, one per role, joined by any ethdev (memif in
 * scripts/bench-memif.sh). Prints a table and one JSON object.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"
#include "bench.h"

static const char *const default_sizes = "4K,64K,1M,16M,64M,256M,1G";

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- --mode MODE [options]\n"
	       "\n"
	       "Modes (run one process per role, same options on both):\n"
	       "  tx / rx      raw fragment rate at --payload bytes (Mpps, Gbit/s);\n"
	       "               tx sends zero-copy frames, rx counts them\n"
	       "  transfer     goodput of whole transfers for --sizes (--role send|recv)\n"
	       "  pingpong     round trip of a --sizes[0]-byte transfer: p50/p99/p999\n"
	       "  tcp          the same transfers over plain kernel TCP (no EAL needed;\n"
	       "               --role recv listens, send connects)\n"
	       "\n"
	       "Options:\n"
	       "  --role send|recv     side of transfer/pingpong/tcp (default send)\n"
	       "  --port NAME          ethdev name (default: the first port)\n"
	       "  --frame BYTES        largest frame incl. Ethernet header (default 9014)\n"
	       "  --payload BYTES      tx/rx fragment payload (default frame - 98)\n"
	       "  --duration SEC       tx/rx run time (default 5)\n"
	       "  --sizes LIST         e.g. 4K,1M,64M (default %s)\n"
	       "  --iters N            transfers per size (default: by size)\n"
	       "  --count N            pingpong round trips (default 10000)\n"
	       "  --timeout MS         per transfer (default 20000)\n"
	       "  --no-crc             no CRC32C (trusted link: memif, NIC-checked)\n"
	       "  --no-verify          receiver does not check the bytes\n"
	       "  --impair SPEC        in-line impairment, e.g. drop=0.05,reorder=0.05\n"
	       "  --idle-sleep-us N    idle lcores nap N us (shared cores; default 0: poll)\n"
	       "  --initial-credit N   fragments sent before the first ACK (default: the\n"
	       "                       protocol's, 64; a lossless memif can take the window)\n"
	       "  --local IP           this side's IPv4 (default 10.99.0.1 send, .2 recv)\n"
	       "  --session ID --cookie X   (defaults 1 and 0x0d15ea5e)\n"
	       "  --tcp-host H --tcp-port P (tcp mode; default 127.0.0.1 47100)\n"
	       "  --json FILE          write the result object there too\n"
	       "  --log-level LEVEL    err, warn, notice, info, debug\n",
	       prog, default_sizes);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mult = 1;

	switch (*end) {
	case 'G': case 'g': mult <<= 10; /* fall through */
	case 'M': case 'm': mult <<= 10; /* fall through */
	case 'K': case 'k': mult <<= 10; end++; break;
	default: break;
	}
	if (end == s || *end != '\0' || v < 0)
		return -EINVAL;
	*out = (uint64_t)(v * (double)mult);
	return 0;
}

static int parse_sizes(const char *list, struct bench_opts *o)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	o->n_sizes = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (o->n_sizes == BENCH_MAX_SIZES || parse_size(t, &o->sizes[o->n_sizes]) != 0)
			return -EINVAL;
		o->n_sizes++;
	}
	return o->n_sizes ? 0 : -EINVAL;
}

static int parse_mode(const char *s, enum bench_mode *m)
{
	static const char *const names[] = {"tx", "rx", "transfer", "pingpong", "tcp"};

	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*m = (enum bench_mode)i;
			return 0;
		}
	return -EINVAL;
}

static int parse_ipv4(const char *s, uint32_t *ip)
{
	unsigned int a, b, c, d;
	char tail;

	if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
	    c > 255 || d > 255)
		return -EINVAL;
	*ip = a << 24 | b << 16 | c << 8 | d;
	return 0;
}

static void defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = MODE_TRANSFER;
	o->frame_size = 9014;
	o->queues = 1;
	o->duration_s = 5;
	o->count = 10000;
	o->timeout_ms = 20000;
	o->crc = true;
	o->verify = true;
	o->session_id = 1;
	o->cookie = 0x0d15ea5e;
	o->tcp_host = "127.0.0.1";
	o->tcp_port = 47100;
	parse_sizes(default_sizes, o);
}

/* Each role's address and its peer's: the two processes agree by role. */
static void endpoints_fill(struct bench_opts *o, uint32_t local_ip)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint32_t send_ip = 0x0a630001, recv_ip = 0x0a630002;

	o->local.ipv4 = o->role == ROLE_SEND ? send_ip : recv_ip;
	o->peer.ipv4 = o->role == ROLE_SEND ? recv_ip : send_ip;
	if (local_ip != 0) {
		o->peer.ipv4 = o->peer.ipv4 + (local_ip - o->local.ipv4);
		o->local.ipv4 = local_ip;
	}
	o->local.port = o->peer.port = DP_WIRE_UDP_PORT;
	/* Ports run promiscuous: the peer's MAC need not be known. */
	memcpy(o->peer.mac, bcast, sizeof(bcast));
}

static int parse_options(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, 'm'},   {"role", required_argument, NULL, 'r'},
		{"port", required_argument, NULL, 'P'},   {"frame", required_argument, NULL, 'f'},
		{"payload", required_argument, NULL, 'p'}, {"duration", required_argument, NULL, 'd'},
		{"sizes", required_argument, NULL, 's'},  {"iters", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'c'},  {"timeout", required_argument, NULL, 't'},
		{"no-crc", no_argument, NULL, 'C'},       {"no-verify", no_argument, NULL, 'V'},
		{"impair", required_argument, NULL, 'I'}, {"local", required_argument, NULL, 'l'},
		{"session", required_argument, NULL, 'S'}, {"cookie", required_argument, NULL, 'K'},
		{"tcp-host", required_argument, NULL, 'H'}, {"tcp-port", required_argument, NULL, 'T'},
		{"json", required_argument, NULL, 'j'},   {"log-level", required_argument, NULL, 'L'},
		{"idle-sleep-us", required_argument, NULL, 'z'},
		{"initial-credit", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	enum dj_log_level level;
	uint32_t local_ip = 0;
	int c, rc = 0;

	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': rc = parse_mode(optarg, &o->mode); break;
		case 'r':
			rc = strcmp(optarg, "send") == 0 ? 0 : strcmp(optarg, "recv") == 0 ? 0 : -EINVAL;
			o->role = strcmp(optarg, "recv") == 0 ? ROLE_RECV : ROLE_SEND;
			break;
		case 'P': o->port_name = optarg; break;
		case 'f': o->frame_size = (uint16_t)atoi(optarg); break;
		case 'p': o->payload = (uint32_t)atoi(optarg); break;
		case 'd': o->duration_s = atof(optarg); break;
		case 's': rc = parse_sizes(optarg, o); break;
		case 'i': o->iters = (unsigned int)atoi(optarg); break;
		case 'c': o->count = (unsigned int)atoi(optarg); break;
		case 't': o->timeout_ms = (uint32_t)atoi(optarg); break;
		case 'C': o->crc = false; break;
		case 'V': o->verify = false; break;
		case 'I': o->impair = optarg; break;
		case 'l': rc = parse_ipv4(optarg, &local_ip); break;
		case 'S': o->session_id = strtoull(optarg, NULL, 0); break;
		case 'K': o->cookie = strtoull(optarg, NULL, 0); break;
		case 'H': o->tcp_host = optarg; break;
		case 'T': o->tcp_port = (uint16_t)atoi(optarg); break;
		case 'j': o->json_path = optarg; break;
		case 'z': o->idle_sleep_us = (uint32_t)atoi(optarg); break;
		case 'W': o->initial_credit = (uint32_t)atoi(optarg); break;
		case 'L': rc = djc_log_level_parse(optarg, &level); dj_log_set_level(level); break;
		default: rc = -EINVAL; break;
		}
	}
	if (rc == 0 && optind < argc)
		rc = -EINVAL;
	if (o->payload == 0)
		o->payload = o->frame_size > DP_WIRE_FULL_HDR_LEN ? o->frame_size - DP_WIRE_FULL_HDR_LEN : 0;
	endpoints_fill(o, local_ip);
	return rc;
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

/* tcp mode needs no EAL: find "--mode tcp" before starting it. */
static int is_tcp_mode(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "tcp") == 0)
			return 1;
	return 0;
}

/* What dp_eal_init() would hand back, without EAL. */
static void app_argv_split(int argc, char **argv, int *app_argc, char ***app_argv)
{
	int split = 1;

	while (split < argc && strcmp(argv[split], "--") != 0)
		split++;
	if (split == argc) {
		*app_argc = argc;
		*app_argv = argv;
		return;
	}
	argv[split] = argv[0];
	*app_argc = argc - split;
	*app_argv = argv + split;
}

static int run(const struct bench_opts *o, struct bench_result *r)
{
	switch (o->mode) {
	case MODE_TX:
	case MODE_RX:
		return bench_raw(o, r);
	case MODE_TRANSFER:
		return bench_transfer(o, r);
	case MODE_PINGPONG:
		return bench_pingpong(o, r);
	case MODE_TCP:
		return bench_tcp(o, r);
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct dp_eal_options eal_opts = {.no_huge_mem_mb = 1024};
	static struct bench_result result;
	struct bench_opts opts;
	int app_argc, rc, tcp;
	char **app_argv;

	if (wants_help(argc, argv)) {
		usage(argv[0]);
		return 0;
	}
	defaults(&opts);
	tcp = is_tcp_mode(argc, argv);
	if (tcp) {
		app_argv_split(argc, argv, &app_argc, &app_argv);
	} else if ((rc = dp_eal_init(argc, argv, &eal_opts, &app_argc, &app_argv)) != 0) {
		fprintf(stderr, "djinn-bench: cannot start EAL: %s\n", dj_strerror(rc));
		return 1;
	}
	if (parse_options(app_argc, app_argv, &opts) != 0) {
		usage(argv[0]);
		return 2;
	}
	rc = run(&opts, &result);
	if (rc != 0)
		fprintf(stderr, "djinn-bench: %s\n", dj_strerror(rc));
	if (result.mode != NULL)
		bench_print(&opts, &result);
	if (!tcp)
		dp_eal_cleanup();
	return rc == 0 && result.errors == 0 ? 0 : 1;
}
