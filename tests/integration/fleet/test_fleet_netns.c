/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Three servers and a client, each in its own network namespace on one
 * Linux bridge (scripts/fleet.sh), etcd in the bridge's namespace: the
 * servers' DPDK data planes (net_af_packet on their one port) move tensors
 * straight into each other's memory, every member reaching every other as
 * through a switch. This test process is the client: it enters the client's
 * namespace before it starts any thread.
 *
 *   test_fleet_netns DJINN_DP FLEET_SH clean|lossy
 *
 * clean: moves and copies between every pair (2 B, 1 MiB; 256 MiB between
 * two members, every pair with DJINN_FLEET_LONG=1), over DPDK, byte-exact;
 * routing; a target and a source SIGKILLed mid-move.
 * lossy: the servers drop and reorder 5% of their frames (--dp-impair):
 * moves between every pair (2 B, 1 MiB; 16 MiB between two, 256 MiB every
 * pair with DJINN_FLEET_LONG=1), byte-exact.
 * Needs root, `ip netns` and etcd; exits 77 without.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "fleet_cases.h"

#define MIB (1ull << 20)
#define N 3

static const char *script;
static int lossy;
static char name[16];
static int topology_up;
static struct fe_server servers[N];
static struct fe_etcd etcd;
static struct dj_fleet *fleet;
static char token[128];
static int home_ns = -1;  /* the namespace the test started in */

static void topology_down(void)
{
	char cmd[256];

	if (!topology_up)
		return;
	topology_up = 0;
	/* Out of the client's namespace first: `down` ends whatever is in it. */
	if (home_ns >= 0 && setns(home_ns, CLONE_NEWNET) != 0)
		fprintf(stderr, "cannot leave %s-c\n", name);
	snprintf(cmd, sizeof(cmd), "bash '%s' down %s >/dev/null 2>&1", script, name);
	if (system(cmd) != 0)
		fprintf(stderr, "fleet.sh down %s failed\n", name);
}

static void server_setup(struct fe_server *s, int i)
{
	char vdev[64], listen[16], dp_ip[16];

	snprintf(s->netns, sizeof(s->netns), "%s-s%d", name, i);
	snprintf(s->host, sizeof(s->host), "10.77.0.%d", i + 1);
	s->port = 18515;
	snprintf(s->log, sizeof(s->log), "/tmp/djinn-fleet-%s-s%d.log", name, i);
	snprintf(vdev, sizeof(vdev), "net_af_packet0,iface=%s-v%d,qpairs=1", name, i);
	snprintf(listen, sizeof(listen), "10.77.0.%d", i + 1);
	snprintf(dp_ip, sizeof(dp_ip), "10.78.0.%d", i + 1);
	const char *args[] = {"-l", "0,1", "--no-pci", "--no-huge", "-m", "512", "--vdev", vdev,
			      "--", "--listen", listen, "--dp-ip", dp_ip, "--dp-frame-size", "1514",
			      "--dp-idle-sleep-us", "20", "--gpu", "none", "--stats-interval", "0",
			      "--fleet-etcd", etcd.url, "--fleet-ttl", "2",
			      "--fleet-token-file", token};

	for (size_t k = 0; k < sizeof(args) / sizeof(args[0]); k++)
		fe_server_arg(s, args[k]);
	if (lossy) {
		fe_server_arg(s, "--dp-impair");
		fe_server_arg(s, "drop=0.05,reorder=0.05");
	}
}

static int suite_init(void)
{
	struct dj_fleet_options o;
	char cmd[256], sw[32];

	snprintf(cmd, sizeof(cmd), "bash '%s' up %d %s", script, N, name);
	topology_up = 1;
	fe_at_cleanup(topology_down); /* after the processes inside, also on SIGTERM */
	if (system(cmd) != 0 || fe_token_file("fleet-netns-test-token", token) != 0)
		return -1;
	snprintf(sw, sizeof(sw), "%s-sw", name);
	if (fe_etcd_start(&etcd, "10.77.0.254", sw) != 0)
		return -1;
	for (int i = 0; i < N; i++) {
		server_setup(&servers[i], i);
		if (fe_server_start(&servers[i], 60) != 0)
			return -1;
	}
	/* This thread, the only one yet, into the client's namespace: every
	 * thread made from here on is there too. */
	snprintf(sw, sizeof(sw), "%s-c", name);
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (dj_test_netns_enter(sw) != 0) {
		fprintf(stderr, "cannot enter %s-c\n", name);
		return -1;
	}
	dj_fleet_options_init(&o);
	o.etcd = etcd.url;
	o.refresh_ms = 250;
	if (dj_fleet_create(&o, &fleet) != 0) {
		fprintf(stderr, "fleet: %s\n", dj_fleet_last_error());
		return -1;
	}
	for (int i = 0; i < N; i++) {
		if (fc_member(fleet, &servers[i]) == UINT32_MAX)
			return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	dj_fleet_destroy(fleet);
	for (int i = 0; i < N; i++)
		fe_server_kill(&servers[i], SIGTERM);
	fe_etcd_destroy(&etcd);
	unlink(token);
	fe_cleanup();
	return 0;
}

static void test_view(void)
{
	struct dj_fleet_member m[8];
	int n = dj_fleet_view(fleet, NULL, m, 8);

	CU_ASSERT_EQUAL(n, N);
	for (int i = 0; i < n; i++) {
		CU_ASSERT(m[i].up && m[i].dpdk);
		CU_ASSERT(strncmp(m[i].dp_ipv4, "10.78.0.", 8) == 0);
	}
}

static void test_moves(void)
{
	static const uint64_t small[] = {2, MIB};
	uint64_t big = lossy ? 16 * MIB : 256 * MIB;
	int long_run = getenv("DJINN_FLEET_LONG") != NULL;

	fc_moves(fleet, servers, N, small, 2, DJ_PATH_DPDK);
	fc_moves(fleet, servers, long_run ? N : 2, &big, 1, DJ_PATH_DPDK);
	if (long_run && lossy) {
		big = 256 * MIB;
		fc_moves(fleet, servers, N, &big, 1, DJ_PATH_DPDK);
	}
}

static void test_routing(void)
{
	fc_routing(fleet, servers, N);
}

static void test_target_killed(void)
{
	fc_target_killed(fleet, servers, 0, 2, 64 * MIB);
}

static void test_source_killed(void)
{
	fc_source_killed(fleet, servers, 1, 0, 64 * MIB);
}

/* The servers' last stats lines say their frames were dropped on purpose:
 * the moves above really crossed a lossy path. */
static void test_impairment_seen(void)
{
	char cmd[256];

	for (int i = 0; i < N; i++) {
		fe_server_kill(&servers[i], SIGTERM);
		snprintf(cmd, sizeof(cmd), "grep -q 'retransmitted, [1-9][0-9]* dropped by "
			 "--dp-impair' '%s'", servers[i].log);
		CU_ASSERT_EQUAL(system(cmd), 0);
	}
}

int main(int argc, char **argv)
{
	static const struct dj_test_case clean[] = {
		{"three members with DPDK data planes on one bridge", test_view},
		{"moves and copies between every pair over DPDK, byte-exact", test_moves},
		{"routing by handle", test_routing},
		{"target killed mid-move: error, source keeps its tensor", test_target_killed},
		{"source killed mid-move: error, target frees at once", test_source_killed},
		{NULL, NULL},
	};
	static const struct dj_test_case impaired[] = {
		{"moves between every pair with 5% loss and reordering", test_moves},
		{"the servers dropped frames on purpose", test_impairment_seen},
		{NULL, NULL},
	};

	if (argc < 4 || (strcmp(argv[3], "clean") != 0 && strcmp(argv[3], "lossy") != 0))
		dj_test_skip("usage: test_fleet_netns DJINN_DP FLEET_SH clean|lossy");
	if (geteuid() != 0)
		dj_test_skip("network namespaces need root");
	if (system("ip netns list >/dev/null 2>&1") != 0)
		dj_test_skip("`ip netns` is not available (iproute2)");
	if (system("command -v etcd >/dev/null 2>&1") != 0)
		dj_test_skip("etcd is not installed (Debian: etcd-server)");
	script = argv[2];
	lossy = strcmp(argv[3], "lossy") == 0;
	snprintf(name, sizeof(name), "djf%d%c", (int)getpid() % 100000, lossy ? 'l' : 'c');
	fe_init(argv[1]);
	dj_log_set_level(DJ_LOG_WARN);
	dj_test_add_suite(lossy ? "fleet netns, 5% loss" : "fleet netns", suite_init,
			  suite_cleanup, lossy ? impaired : clean);
	return dj_test_main(argc - 1, argv + 1);
}
