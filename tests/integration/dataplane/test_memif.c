/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Two processes over net_memif: transfers of 1 B, 1 MiB and 256 MiB in both
 * directions, byte-exact; the same under 5% loss plus reordering (in-line
 * impairment on both sides); and a peer killed mid-transfer, after which the
 * survivor fails that transfer within its idle timeout and serves a new peer.
 * Idle lcores sleeping on memif's rx interrupt (--dp-idle interrupt) are
 * woken by the frames, and carry on when the peer goes away while they
 * sleep.
 *
 *   test_dp_memif --huge | --no-huge
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "peer.h"

#define MIB (1ull << 20)
#define PEER_TIMEOUT_S 150

static bool use_huge;

struct pair {
	char sock[96];
	char tag_a[48], tag_b[48];
	char vdev_a[192], vdev_b[192];
	struct peer_args a, b;
};

static void pair_init(struct pair *p, const char *name, const struct peer_step *steps,
		      unsigned int n)
{
	int pid = (int)getpid();

	memset(p, 0, sizeof(*p));
	snprintf(p->sock, sizeof(p->sock), "/tmp/djdp-%d-%s.sock", pid, name);
	snprintf(p->tag_a, sizeof(p->tag_a), "djdp%d%sA", pid, name);
	snprintf(p->tag_b, sizeof(p->tag_b), "djdp%d%sB", pid, name);
	snprintf(p->vdev_a, sizeof(p->vdev_a),
		 "net_memif0,role=server,socket=%s,socket-abstract=no,bsize=9216", p->sock);
	snprintf(p->vdev_b, sizeof(p->vdev_b),
		 "net_memif0,role=client,socket=%s,socket-abstract=no,bsize=9216", p->sock);
	unlink(p->sock);
	p->a = (struct peer_args){.tag = p->tag_a, .is_a = true, .huge = use_huge,
				  .vdev = p->vdev_a, .frame_size = 9014, .cookie = 0x5eed0001,
				  .steps = steps, .n_steps = n, .notify_fd = -1};
	p->b = p->a;
	p->b.tag = p->tag_b;
	p->b.is_a = false;
	p->b.vdev = p->vdev_b;
}

/* Both peers ended: neither left a run-time folder under /var/run/dpdk,
 * and the server's port took its socket file with it (or the test removed
 * what a killed one left). */
static void pair_clean(struct pair *p)
{
	CU_ASSERT_TRUE(peer_left_nothing(p->tag_a, p->sock));
	CU_ASSERT_TRUE(peer_left_nothing(p->tag_b, NULL));
}

/* The hugepages a case needs are not free now (another process holds
 * them): skip it with the reason. */
static bool pages_short(void)
{
	if (!use_huge || peer_hugepages_free(PEER_PAIR_PAGES))
		return false;
	printf("SKIP: fewer than %u free 2 MiB hugepages now (another process holds them)\n",
	       PEER_PAIR_PAGES);
	return true;
}

/* Both peers' exit statuses: 0 passes; a PEER_SKIP of either (hugepages
 * ran short mid-case, said in its output) skips the case. */
static void pair_status(int ra, int rb)
{
	if (ra == PEER_SKIP || rb == PEER_SKIP)
		return;
	CU_ASSERT_EQUAL(ra, 0);
	CU_ASSERT_EQUAL(rb, 0);
}

static void pair_run(struct pair *p)
{
	pid_t a, b;

	if (pages_short())
		return;
	a = peer_spawn(&p->a);
	b = peer_spawn(&p->b);
	CU_ASSERT_FATAL(a > 0 && b > 0);
	pair_status(peer_wait(a, PEER_TIMEOUT_S), peer_wait(b, PEER_TIMEOUT_S));
	pair_clean(p);
}

static void test_both_directions(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, 1, false, 0},         {STEP_B_TO_A, 1, false, 0},
		{STEP_A_TO_B, MIB, false, 0},       {STEP_B_TO_A, MIB, false, 0},
		{STEP_A_TO_B, 256 * MIB, false, 0}, {STEP_B_TO_A, 256 * MIB, false, 0},
	};
	struct pair p;

	pair_init(&p, "both", steps, sizeof(steps) / sizeof(steps[0]));
	pair_run(&p);
}

/* A zero-copy memif client (B): the sender writes into B's mbufs, and B's
 * own transmissions are copied (a zero-copy memif passes DPDK memory only). */
static void test_zero_copy_client(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, MIB, false, 0},       {STEP_B_TO_A, MIB, false, 0},
		{STEP_A_TO_B, 256 * MIB, false, 0}, {STEP_B_TO_A, 256 * MIB, false, 0},
	};
	char vdev[224];
	struct pair p;

	if (!use_huge)
		return; /* zero-copy memif needs fd-backed (hugepage) memory */
	pair_init(&p, "zc", steps, sizeof(steps) / sizeof(steps[0]));
	snprintf(vdev, sizeof(vdev), "%s,zero-copy=yes", p.vdev_b);
	p.b.vdev = vdev;
	p.b.single_file = true;
	p.a.skip_without_link = p.b.skip_without_link = true;
	pair_run(&p);
}

static void test_loss_and_reordering(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, MIB, false, 0},
		{STEP_B_TO_A, MIB, false, 0},
		{STEP_A_TO_B, 16 * MIB, false, 0},
	};
	struct pair p;

	pair_init(&p, "lossy", steps, sizeof(steps) / sizeof(steps[0]));
	p.a.impair = p.b.impair = "drop=0.05,reorder=0.05,reorder_us=50";
	p.a.require_retransmits = p.b.require_retransmits = true;
	pair_run(&p);
}

/* The survivor (B, memif server, so that a new peer can connect) loses its
 * peer mid-transfer: the transfer fails within the engine's timeouts, then
 * a new session with a new peer process works (ids 0: killed, 1: reopen,
 * 2: new). A victim sender is slowed by loss so that the kill lands
 * mid-transfer; a victim receiver dies as the survivor starts sending. */
static void killed_run(enum peer_step_kind dir, const char *name)
{
	const struct peer_step survivor[] = {
		{dir, 256 * MIB, true, 0},
		{STEP_REOPEN, 0, false, 0},
		{dir, MIB, false, 0},
	};
	const struct peer_step victim[] = {{dir, 256 * MIB, false, 0}};
	const struct peer_step successor[] = {{dir, MIB, false, 0}};
	bool survivor_receives = dir == STEP_A_TO_B;
	struct peer_args next;
	char tag[48];
	struct pair p;

	pair_init(&p, name, survivor, 3);
	p.b.vdev = p.vdev_a;
	p.a.vdev = p.vdev_b;
	p.a.steps = victim;
	p.a.n_steps = 1;
	p.a.impair = survivor_receives ? "drop=0.5" : NULL;
	next = p.a;
	next.steps = successor;
	next.impair = NULL;
	next.cookie++;
	next.first_id = 2;
	snprintf(tag, sizeof(tag), "djdp%d%sA2", (int)getpid(), name);
	next.tag = tag;
	/* Its session would be taken for dead before the survivor's failing
	 * transfer (its dead timeout, 8 s) ends and it opens its own. */
	next.start_delay_ms = 3000;
	/* 256 MiB cannot cross in 5 ms, even without the loss. */
	if (pages_short())
		return;
	pair_status(peer_kill_run(&p.b, &p.a, &next, survivor_receives ? 5000 : 0), 0);
	/* The killed peer's folder was removed by the test; the others'
	 * by themselves (B is the memif server here). */
	CU_ASSERT_TRUE(peer_left_nothing(p.tag_b, p.sock));
	CU_ASSERT_TRUE(peer_left_nothing(p.tag_a, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag, NULL));
}

/* A peer stopped for 3 s (SIGSTOP, then SIGCONT) in the middle of a
 * 512 MiB transfer is alive: the transfer completes byte-exact once it
 * resumes (before wire version 2 the sender gave up after 1.9 s). The
 * receiver checks the transfer spanned the pause. */
static void paused_run(bool pause_receiver, const char *name)
{
	const struct peer_step steps[] = {{STEP_A_TO_B, 512 * MIB, false, 3000}};
	struct pair p;

	if (pages_short())
		return;
	pair_init(&p, name, steps, 1);
	pair_status(peer_pause_run(&p.a, &p.b, false, pause_receiver, 3000), 0);
	pair_clean(&p);
}

static void test_peer_paused(void)
{
	paused_run(true, "stoprx");
	paused_run(false, "stoptx");
}

static void test_receiver_loses_peer(void)
{
	killed_run(STEP_A_TO_B, "killrx");
}

static void test_sender_loses_peer(void)
{
	killed_run(STEP_B_TO_A, "killtx");
}

/* Both sides sleep between transfers (each sender idles 50 ms first): the
 * receiving lcore is woken by the frame's interrupt each time, in both
 * directions, for one frame and for many. */
static void test_sleeper_woken(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, 4096, false, 0}, {STEP_B_TO_A, 4096, false, 0},
		{STEP_A_TO_B, MIB, false, 0},  {STEP_B_TO_A, 64 * MIB, false, 0},
	};
	struct pair p;

	pair_init(&p, "intr", steps, sizeof(steps) / sizeof(steps[0]));
	p.a.idle = p.b.idle = DP_IDLE_INTERRUPT;
	p.a.pause_ms = p.b.pause_ms = 50;
	p.a.wake = p.b.wake = true;
	pair_run(&p);
}

/* Interrupt mode with callers running the sleeping lcores' loops (run to
 * completion): transfers of every size in both directions, byte-exact,
 * back to back (the callers take the loop) and after 50 ms of idle (the
 * lcores sleep and wake). */
static void test_caller_runs(void)
{
	static const struct peer_step steps[] = {
		{STEP_A_TO_B, 1, false, 0},    {STEP_B_TO_A, 4096, false, 0},
		{STEP_A_TO_B, MIB, false, 0},  {STEP_B_TO_A, MIB + 7, false, 0},
		{STEP_A_TO_B, 64 * MIB, false, 0}, {STEP_B_TO_A, 64 * MIB, false, 0},
	};
	struct pair p;

	pair_init(&p, "rtc", steps, sizeof(steps) / sizeof(steps[0]));
	p.a.idle = p.b.idle = DP_IDLE_INTERRUPT;
	p.a.caller_runs = p.b.caller_runs = true;
	pair_run(&p);
	p.a.pause_ms = p.b.pause_ms = 50;
	pair_run(&p);
}

/* The survivor (B, memif server) sleeps when its peer is killed (100 ms of
 * idle before its send, the kill 20 ms in): nothing hangs, the send fails
 * by the protocol's timeouts, and a new peer's frame wakes it through the
 * eventfd of the new connection. */
static void test_peer_gone_while_asleep(void)
{
	const struct peer_step survivor[] = {
		{STEP_B_TO_A, MIB, true, 0},
		{STEP_REOPEN, 0, false, 0},
		{STEP_A_TO_B, 4096, false, 0},
	};
	const struct peer_step victim[] = {{STEP_B_TO_A, MIB, false, 0}};
	const struct peer_step successor[] = {{STEP_A_TO_B, 4096, false, 0}};
	struct peer_args next;
	char tag[48];
	struct pair p;

	if (pages_short())
		return;
	pair_init(&p, "intrgone", survivor, 3);
	p.b.vdev = p.vdev_a;
	p.a.vdev = p.vdev_b;
	p.a.steps = victim;
	p.a.n_steps = 1;
	p.a.idle = p.b.idle = DP_IDLE_INTERRUPT;
	p.b.pause_ms = 100; /* its send, 80 ms after the kill */
	p.b.wake = true;    /* its last receive */
	next = p.a;
	next.steps = successor;
	next.pause_ms = 50;
	next.wake = true;
	/* Its session would be taken for dead before the survivor's failing
	 * send (8 s, from 100 ms after the kill) ends and it opens its own. */
	next.start_delay_ms = 3000;
	next.cookie++;
	next.first_id = 2;
	snprintf(tag, sizeof(tag), "djdp%dintrgoneA2", (int)getpid());
	next.tag = tag;
	pair_status(peer_kill_run(&p.b, &p.a, &next, 20000), 0);
	CU_ASSERT_TRUE(peer_left_nothing(p.tag_b, p.sock));
	CU_ASSERT_TRUE(peer_left_nothing(p.tag_a, NULL));
	CU_ASSERT_TRUE(peer_left_nothing(tag, NULL));
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"1 B, 1 MiB, 256 MiB both directions", test_both_directions},
		{"5% loss + reordering, retransmissions", test_loss_and_reordering},
		{"zero-copy memif client (hugepages only)", test_zero_copy_client},
		{"sender killed mid-transfer, receiver serves on", test_receiver_loses_peer},
		{"receiver killed mid-transfer, sender serves on", test_sender_loses_peer},
		{"peer stopped for 3 s mid-transfer (SIGSTOP/SIGCONT)", test_peer_paused},
		{"idle interrupt: a sleeping receiver is woken by the frame", test_sleeper_woken},
		{"idle interrupt: peer killed while the survivor sleeps", test_peer_gone_while_asleep},
		{"idle interrupt: callers run the sleeping lcores' loops", test_caller_runs},
		{NULL, NULL},
	};

	use_huge = argc > 1 && strcmp(argv[1], "--huge") == 0;
	if (use_huge && !peer_hugepages_free(256))
		dj_test_skip("fewer than 256 free 2 MiB hugepages (scripts/hugepages.sh)");
	if (geteuid() != 0 && use_huge)
		dj_test_skip("hugepages need root");
	dj_test_add_suite(use_huge ? "dataplane memif (hugepages)" : "dataplane memif (--no-huge)",
			  NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
