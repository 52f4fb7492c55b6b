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
#include "djinn/djinn.h"
#include "common/cli.h"
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
	       "  memcpy       --threads threads copy slices of each size (no EAL, no\n"
	       "               role): the baseline of striped transfers\n"
	       "  ctl          a client of djinn-dp (--tcp-host, --ctl-port): PUT and GET\n"
	       "               of --sizes over DPDK (--queues, --stripes) and over the TCP\n"
	       "               fallback of the same server, interleaved (no role)\n"
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
	       "  --idle MODE          poll, nap (N above, default 20) or interrupt: sleep\n"
	       "                       until a frame wakes the lcore (memif; else nap).\n"
	       "                       Default: nap with --idle-sleep-us, else poll\n"
	       "  --caller-runs        with --idle interrupt: a waiting thread runs the\n"
	       "                       sleeping lcore's loop itself (run to completion)\n"
	       "  --initial-credit N   fragments sent before the first ACK (default: the\n"
	       "                       protocol's, 64; a lossless memif can take the window)\n"
	       "  --queues N           queue pairs, one polling lcore each (EAL -l gives\n"
	       "                       main + N lcores; both sides the same; default 1)\n"
	       "  --stripes K          transfer: one session per stripe, a transfer split\n"
	       "                       into K parts sent at once (dp_engine_send_parts);\n"
	       "                       session i is served by queue (session + i) %% queues\n"
	       "  --threads N          memcpy mode threads (default 1)\n"
	       "  --ctl-port P         ctl mode: the server's control port (default %u)\n"
	       "  --stripe-min BYTES   ctl mode: least bytes of a part (default 8M); ctl's\n"
	       "                       --stripes is the most the session asks for (1: none)\n"
	       "  --local IP           this side's IPv4 (default 10.99.0.1 send, .2 recv)\n"
	       "  --session ID --cookie X   (defaults 1 and 0x0d15ea5e)\n"
	       "  --tcp-host H --tcp-port P (tcp mode; default 127.0.0.1 47100)\n"
	       "  --json FILE          write the result object there too\n"
	       "  --log-level LEVEL    err, warn, notice, info, debug\n",
	       prog, default_sizes, DJ_DEFAULT_PORT);
}

static int parse_sizes(const char *list, struct bench_opts *o)
{
	int n = 0;
	int rc = djc_opt_size_list("--sizes", list, 1, UINT64_MAX, o->sizes, BENCH_MAX_SIZES, &n);

	o->n_sizes = rc == 0 ? (unsigned int)n : o->n_sizes;
	return rc;
}

static void defaults(struct bench_opts *o)
{
	int n = 0;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_TRANSFER;
	o->frame_size = 9014;
	o->queues = 1;
	o->stripes = 1;
	o->threads = 1;
	o->duration_s = 5;
	o->count = 10000;
	o->timeout_ms = 20000;
	o->crc = true;
	o->verify = true;
	o->session_id = 1;
	o->cookie = 0x0d15ea5e;
	o->tcp_host = "127.0.0.1";
	o->tcp_port = 47100;
	o->ctl_port = DJ_DEFAULT_PORT;
	djc_parse_size_list(default_sizes, 1, UINT64_MAX, o->sizes, BENCH_MAX_SIZES, &n);
	o->n_sizes = (unsigned int)n;
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

/* What parse_options() gathers before the endpoints are filled. */
struct parsed {
	struct bench_opts *o;
	uint32_t local_ip;
};

static int parse_option(int c, const char *arg, void *ctx)
{
	static const char *const modes[] = {"tx", "rx", "transfer", "pingpong", "tcp", "memcpy",
					    "ctl"};
	static const char *const roles[] = {"send", "recv"};
	struct parsed *p = ctx;
	struct bench_opts *o = p->o;
	int i, rc = 0;

	switch (c) {
	case 'm':
		rc = djc_opt_choice("--mode", arg, modes, 7, &i);
		o->mode = rc == 0 ? (enum bench_mode)i : o->mode;
		break;
	case 'r':
		rc = djc_opt_choice("--role", arg, roles, 2, &i);
		o->role = rc == 0 ? (enum bench_role)i : o->role;
		break;
	case 'P': o->port_name = arg; break;
	case 'f': rc = djc_opt_u16("--frame", arg, 128, UINT16_MAX, &o->frame_size); break;
	case 'p': rc = djc_opt_u32("--payload", arg, 0, UINT16_MAX, &o->payload); break;
	case 'd': rc = djc_opt_double("--duration", arg, 0.001, 86400, &o->duration_s); break;
	case 's': rc = parse_sizes(arg, o); break;
	case 'i': rc = djc_opt_u32("--iters", arg, 0, UINT32_MAX, &o->iters); break;
	case 'c': rc = djc_opt_u32("--count", arg, 1, UINT32_MAX, &o->count); break;
	case 't': rc = djc_opt_u32("--timeout", arg, 1, UINT32_MAX, &o->timeout_ms); break;
	case 'C': o->crc = false; break;
	case 'V': o->verify = false; break;
	case 'I': o->impair = arg; break;
	case 'l': rc = djc_opt_ipv4("--local", arg, &p->local_ip); break;
	case 'S': rc = djc_opt_u64("--session", arg, 0, UINT64_MAX, &o->session_id); break;
	case 'K': rc = djc_opt_u64("--cookie", arg, 0, UINT64_MAX, &o->cookie); break;
	case 'H': o->tcp_host = arg; break;
	case 'T': rc = djc_opt_u16("--tcp-port", arg, 1, UINT16_MAX, &o->tcp_port); break;
	case 'j': o->json_path = arg; break;
	case 'z':
		rc = djc_opt_u32("--idle-sleep-us", arg, 0, 1000000, &o->idle_sleep_us);
		break;
	case 'W':
		rc = djc_opt_u32("--initial-credit", arg, 0, 1u << 20, &o->initial_credit);
		break;
	case 'R': o->caller_runs = true; break;
	case 'E':
		rc = djc_opt_choice("--idle", arg, dp_idle_names + 1, DP_IDLE_INTERRUPT, &i);
		o->idle = rc == 0 ? (enum dp_idle)(i + 1) : o->idle;
		break;
	case 'q': rc = djc_opt_u16("--queues", arg, 1, BENCH_MAX_STRIPES, &o->queues); break;
	case 'X': rc = djc_opt_u32("--stripes", arg, 1, BENCH_MAX_STRIPES, &o->stripes); break;
	case 'N': rc = djc_opt_u32("--threads", arg, 1, BENCH_MAX_STRIPES, &o->threads); break;
	case 'L': rc = djc_opt_log_level("--log-level", arg); break;
	case 'G': rc = djc_opt_u16("--ctl-port", arg, 1, UINT16_MAX, &o->ctl_port); break;
	case 'M': rc = djc_opt_size("--stripe-min", arg, 64, UINT64_MAX, &o->stripe_min); break;
	default: rc = -EINVAL; break;
	}
	return rc;
}

static int parse_options(int argc, char **argv, void *arg)
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
		{"idle", required_argument, NULL, 'E'},
		{"caller-runs", no_argument, NULL, 'R'},
		{"initial-credit", required_argument, NULL, 'W'},
		{"queues", required_argument, NULL, 'q'},
		{"stripes", required_argument, NULL, 'X'},
		{"threads", required_argument, NULL, 'N'},
		{"ctl-port", required_argument, NULL, 'G'},
		{"stripe-min", required_argument, NULL, 'M'},
		{NULL, 0, NULL, 0},
	};
	struct parsed p = {.o = arg};
	int rc = djc_cli_getopt(argc, argv, "", longopts, parse_option, &p, NULL);

	if (p.o->payload == 0)
		p.o->payload = p.o->frame_size > DP_WIRE_FULL_HDR_LEN ?
			       p.o->frame_size - DP_WIRE_FULL_HDR_LEN : 0;
	endpoints_fill(p.o, p.local_ip);
	return rc;
}

/* tcp and memcpy modes need no EAL: find them before starting it. */
static int is_tcp_mode(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--mode") == 0 &&
		    (strcmp(argv[i + 1], "tcp") == 0 || strcmp(argv[i + 1], "memcpy") == 0))
			return 1;
	return 0;
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
	case MODE_MEMCPY:
		return bench_memcpy(o, r);
	case MODE_CTL:
		return bench_ctl(o, r);
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct dp_eal_options eal_opts = {.no_huge_mem_mb = 1024};
	static struct bench_result result;
	struct bench_opts opts;
	/* tcp mode needs no EAL: its options are all the arguments. */
	int tcp = is_tcp_mode(argc, argv), rc;
	const struct djc_cli_tool tool = {
		.name = "djinn-bench", .usage = usage,
		.start = tcp ? NULL : dp_eal_cli_start, .stop = tcp ? NULL : dp_eal_cli_stop,
		.start_arg = (void *)&eal_opts, .start_what = "EAL",
		.parse = parse_options, .opts = &opts,
	};

	defaults(&opts);
	rc = djc_cli_begin(&tool, argc, argv);
	if (rc >= 0)
		return rc;
	rc = run(&opts, &result);
	if (rc != 0)
		fprintf(stderr, "djinn-bench: %s\n", dj_strerror(rc));
	if (result.mode != NULL)
		bench_print(&opts, &result);
	if (!tcp)
		dp_eal_cleanup();
	return rc == 0 && result.errors == 0 ? 0 : 1;
}
