/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Two peer processes through a djinn-impair process (5% loss plus
 * reordering both ways): transfers stay byte-exact and both senders'
 * retransmission counters show the recovery.
 *
 *   test_dp_impair PATH-TO-djinn-impair
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "peer.h"

#define MIB (1ull << 20)

static const char *impair_path;

static pid_t impair_spawn(const char *sock_a, const char *sock_b, const char *prefix)
{
	char vdev_a[160], vdev_b[160], pfx[64];
	pid_t pid;

	snprintf(vdev_a, sizeof(vdev_a), "net_memif0,role=server,socket=%s,socket-abstract=no,bsize=9216", sock_a);
	snprintf(vdev_b, sizeof(vdev_b), "net_memif1,role=server,socket=%s,socket-abstract=no,bsize=9216", sock_b);
	snprintf(pfx, sizeof(pfx), "--file-prefix=%s", prefix);
	pid = fork();
	if (pid == 0) {
		execl(impair_path, impair_path, "-l", "0", "--no-pci", "--no-huge", "-m", "512", pfx,
		      "--log-level=lib.eal:warning", "--vdev", vdev_a, "--vdev", vdev_b, "--",
		      "--impair", "drop=0.05,reorder=0.05,reorder_us=50,seed=7", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void test_through_impair(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, MIB, false, 0},
		{STEP_B_TO_A, MIB, false, 0},
		{STEP_A_TO_B, 16 * MIB, false, 0},
	};
	char sock_a[96], sock_b[96], vdev_a[160], vdev_b[160], tag_a[48], tag_b[48], tag_i[48];
	int pid = (int)getpid();
	struct peer_args a, b;
	pid_t pi, pa, pb;

	snprintf(sock_a, sizeof(sock_a), "/tmp/djdp-%d-impA.sock", pid);
	snprintf(sock_b, sizeof(sock_b), "/tmp/djdp-%d-impB.sock", pid);
	snprintf(vdev_a, sizeof(vdev_a), "net_memif0,role=client,socket=%s,socket-abstract=no,bsize=9216", sock_a);
	snprintf(vdev_b, sizeof(vdev_b), "net_memif0,role=client,socket=%s,socket-abstract=no,bsize=9216", sock_b);
	snprintf(tag_a, sizeof(tag_a), "djdp%dimpA", pid);
	snprintf(tag_b, sizeof(tag_b), "djdp%dimpB", pid);
	snprintf(tag_i, sizeof(tag_i), "djdp%dimpI", pid);
	a = (struct peer_args){.tag = tag_a, .is_a = true, .vdev = vdev_a, .frame_size = 9014,
			       .cookie = 0x5eed0201, .require_retransmits = true, .steps = steps,
			       .n_steps = 3, .notify_fd = -1};
	b = a;
	b.tag = tag_b;
	b.is_a = false;
	b.vdev = vdev_b;
	pi = impair_spawn(sock_a, sock_b, tag_i);
	CU_ASSERT_FATAL(pi > 0);
	pa = peer_spawn(&a);
	pb = peer_spawn(&b);
	CU_ASSERT_FATAL(pa > 0 && pb > 0);
	CU_ASSERT_EQUAL(peer_wait(pa, 200), 0);
	CU_ASSERT_EQUAL(peer_wait(pb, 200), 0);
	kill(pi, SIGTERM);
	CU_ASSERT_EQUAL(peer_wait(pi, 20), 0);
	/* djinn-impair (the memif server of both links) and the peers left
	 * nothing: no run-time folders, no socket files. */
	CU_ASSERT_TRUE(peer_left_nothing(tag_i, sock_a));
	CU_ASSERT_TRUE(peer_left_nothing(tag_i, sock_b));
	CU_ASSERT_TRUE(peer_left_nothing(tag_a, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag_b, NULL));
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"5% loss + reordering through djinn-impair", test_through_impair},
		{NULL, NULL},
	};

	if (argc < 2 || access(argv[1], X_OK) != 0)
		dj_test_skip("djinn-impair binary not given");
	impair_path = argv[1];
	dj_test_add_suite("dataplane through djinn-impair", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
