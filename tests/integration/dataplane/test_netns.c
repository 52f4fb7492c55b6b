/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Two network namespaces joined by a veth pair, one peer process in each on
 * net_af_packet: 1 B, 1 MiB and 256 MiB in both directions, byte-exact.
 * The namespaces (and with them the veth pair) are this test's own and are
 * removed at exit, also after a failure or a signal. Skipped (77) without
 * root or `ip netns`.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "peer.h"

#define MIB (1ull << 20)
#define PEER_TIMEOUT_S 200

static char ns_a[32], ns_b[32], if_a[16], if_b[16];
static volatile sig_atomic_t created;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void topology_remove(void)
{
	if (!created)
		return;
	created = 0;
	/* Deleting a namespace deletes the veth end inside it, and its peer. */
	sh("ip netns del %s 2>/dev/null", ns_a);
	sh("ip netns del %s 2>/dev/null", ns_b);
}

static void on_signal(int sig)
{
	topology_remove();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int topology_create(void)
{
	int pid = (int)getpid();

	snprintf(ns_a, sizeof(ns_a), "djdp%da", pid);
	snprintf(ns_b, sizeof(ns_b), "djdp%db", pid);
	snprintf(if_a, sizeof(if_a), "djv%da", pid % 1000000);
	snprintf(if_b, sizeof(if_b), "djv%db", pid % 1000000);
	created = 1;
	atexit(topology_remove);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (sh("ip netns add %s && ip netns add %s", ns_a, ns_b) != 0 ||
	    sh("ip link add %s type veth peer name %s", if_a, if_b) != 0 ||
	    sh("ip link set %s netns %s && ip link set %s netns %s", if_a, ns_a, if_b, ns_b) != 0 ||
	    sh("ip -n %s link set %s up && ip -n %s link set %s up", ns_a, if_a, ns_b, if_b) != 0)
		return -1;
	return 0;
}

static char tag_a[48], tag_b[48], vdev_a[96], vdev_b[96];

static void peers_init(struct peer_args *a, struct peer_args *b, const struct peer_step *steps,
		       unsigned int n, const char *name)
{
	snprintf(tag_a, sizeof(tag_a), "djdp%d%sA", (int)getpid(), name);
	snprintf(tag_b, sizeof(tag_b), "djdp%d%sB", (int)getpid(), name);
	*a = (struct peer_args){.tag = tag_a, .is_a = true, .vdev = vdev_a, .netns = ns_a,
				.frame_size = 1514, .cookie = 0x5eed0101, .steps = steps,
				.n_steps = n, .notify_fd = -1};
	*b = *a;
	b->tag = tag_b;
	b->is_a = false;
	b->vdev = vdev_b;
	b->netns = ns_b;
}

static void test_veth_af_packet(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, 1, false, 0},         {STEP_B_TO_A, 1, false, 0},
		{STEP_A_TO_B, MIB, false, 0},       {STEP_B_TO_A, MIB, false, 0},
		{STEP_A_TO_B, 256 * MIB, false, 0}, {STEP_B_TO_A, 256 * MIB, false, 0},
	};
	struct peer_args a, b;
	pid_t pa, pb;

	peers_init(&a, &b, steps, sizeof(steps) / sizeof(steps[0]), "veth");
	pa = peer_spawn(&a);
	pb = peer_spawn(&b);
	CU_ASSERT_FATAL(pa > 0 && pb > 0);
	CU_ASSERT_EQUAL(peer_wait(pa, PEER_TIMEOUT_S), 0);
	CU_ASSERT_EQUAL(peer_wait(pb, PEER_TIMEOUT_S), 0);
	CU_ASSERT_TRUE(peer_left_nothing(tag_a, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag_b, NULL));
}

/* B sends; its receiver A is killed as the transfer starts. B's send fails
 * within the retransmission limits, then B serves a new A. */
static void test_sender_loses_peer(void)
{
	static const struct peer_step survivor[] = {
		{STEP_B_TO_A, 256 * MIB, true, 0},
		{STEP_REOPEN, 0, false, 0},
		{STEP_B_TO_A, MIB, false, 0},
	};
	static const struct peer_step victim[] = {{STEP_B_TO_A, 256 * MIB, false, 0}};
	static const struct peer_step successor[] = {{STEP_B_TO_A, MIB, false, 0}};
	struct peer_args a, b, next;
	char tag[48];

	peers_init(&a, &b, survivor, 3, "kill");
	a.steps = victim;
	a.n_steps = 1;
	next = a;
	next.steps = successor;
	next.cookie++;
	next.first_id = 2;
	snprintf(tag, sizeof(tag), "djdp%dkillA2", (int)getpid());
	next.tag = tag;
	CU_ASSERT_EQUAL(peer_kill_run(&b, &a, &next, 0), 0);
	/* The killed A's folder was removed by the test, the rest by themselves. */
	CU_ASSERT_TRUE(peer_left_nothing(tag_a, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag_b, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag, NULL));
}

static int suite_init(void)
{
	if (topology_create() != 0)
		return -1;
	snprintf(vdev_a, sizeof(vdev_a), "net_af_packet0,iface=%s,qpairs=1", if_a);
	snprintf(vdev_b, sizeof(vdev_b), "net_af_packet0,iface=%s,qpairs=1", if_b);
	return 0;
}

static int suite_cleanup(void)
{
	topology_remove();
	return sh("ip netns list | grep -q '^%s\\b'", ns_a) != 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"veth between two netns, af_packet, both directions", test_veth_af_packet},
		{"receiver killed mid-transfer, sender serves on", test_sender_loses_peer},
		{NULL, NULL},
	};

	if (geteuid() != 0)
		dj_test_skip("network namespaces need root");
	if (system("ip netns list >/dev/null 2>&1") != 0)
		dj_test_skip("`ip netns` is not available (iproute2)");
	dj_test_add_suite("dataplane netns af_packet", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
