/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "harness.h"
#include "peer.h"

#define IP_A 0x0a630001u /* 10.99.0.1, only inside the test's own links */
#define IP_B 0x0a630002u
#define READY_PATIENCE_MS 30000u
#define XFER_TIMEOUT_MS 60000u
/* A killed peer is taken for dead after this long without a sign of life
 * (its survivor fails the transfer, then serves a new peer). A receive is
 * posted before the ready handshake, so this also bounds how long a peer
 * may take to start on a loaded machine: 4 s was too short at load 16. */
#define DEAD_NS (8000ull * 1000 * 1000)
#define CHUNK (64u << 10)

enum child_status {
	CHILD_OK = 0,
	CHILD_SETUP = 10,   /* netns, EAL, engine */
	CHILD_TRANSFER = 11,
	CHILD_CORRUPT = 12,
	CHILD_NO_FAIL = 13, /* a transfer that should have failed did not */
	CHILD_NO_RETRANS = 14,
	CHILD_TOO_FAST = 15, /* a pause meant to land inside the transfer missed it */
	CHILD_NOT_WOKEN = 16, /* a sleeping receiver was not woken by the frame */
	CHILD_TOO_SLOW = 17,  /* a send to a sleeping receiver took too long */
	CHILD_SKIP = PEER_SKIP,
};

static bool link_is_up(void)
{
	struct rte_eth_link link;

	return rte_eth_link_get_nowait(0, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

/* A failure in hugepage mode while the machine has run short of them (a
 * process beside us took them): the case cannot run here now, which is a
 * skip with its reason, not a failure of ours. */
static int resource_check(const struct peer_args *a, int status)
{
	if (status == CHILD_OK || !a->huge || peer_hugepages_free(PEER_PAIR_PAGES / 4))
		return status;
	printf("SKIP: %s: hugepages ran short while it ran (another process took them)\n",
	       a->tag);
	fflush(stdout);
	return CHILD_SKIP;
}

struct peer_ctx {
	const struct peer_args *a;
	struct dp_engine *dp;
	struct dp_endpoint peer;
	uint64_t cookie;
	uint32_t id;
	uint8_t *buf;
	uint64_t buf_len;
	unsigned int receives;
};

/* ---- deterministic contents, checked through CRC32C -------------------------- */

static void pattern_chunk(uint8_t *dst, uint64_t off, uint32_t len, uint64_t seed)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t w = ((off + i) / 8 + 1) * 0x9e3779b97f4a7c15ull ^ seed;

		w ^= w >> 31;
		memcpy(dst + i, &w, len - i < 8 ? len - i : 8);
	}
}

static uint32_t pattern_crc(uint64_t len, uint64_t seed)
{
	static uint8_t chunk[CHUNK];
	uint32_t crc = 0;

	for (uint64_t off = 0; off < len; off += CHUNK) {
		uint32_t n = len - off < CHUNK ? (uint32_t)(len - off) : CHUNK;

		pattern_chunk(chunk, off, n, seed);
		crc = dp_crc32c(crc, chunk, n);
	}
	return crc;
}

static void pattern_fill(uint8_t *buf, uint64_t len, uint64_t seed)
{
	for (uint64_t off = 0; off < len; off += CHUNK)
		pattern_chunk(buf + off, off, len - off < CHUNK ? (uint32_t)(len - off) : CHUNK, seed);
}

/* ---- child side ------------------------------------------------------------------ */

static int eal_start(const struct peer_args *a)
{
	static char prefix[64], vdev[256];
	char *argv[20];
	int argc = 0, app_argc;
	char **app_argv;

	snprintf(prefix, sizeof(prefix), "--file-prefix=%s", a->tag);
	snprintf(vdev, sizeof(vdev), "%s", a->vdev);
	argv[argc++] = "dp-peer";
	argv[argc++] = "-l";
	argv[argc++] = "0,1";
	argv[argc++] = "--main-lcore";
	argv[argc++] = a->is_a ? "0" : "1";
	argv[argc++] = "--no-pci";
	argv[argc++] = "--log-level=lib.eal:warning";
	argv[argc++] = prefix;
	if (a->single_file)
		argv[argc++] = "--single-file-segments";
	if (a->huge) {
		argv[argc++] = "--in-memory";
	} else {
		argv[argc++] = "--no-huge";
		argv[argc++] = "-m";
		argv[argc++] = "512";
	}
	argv[argc++] = "--vdev";
	argv[argc++] = vdev;
	argv[argc] = NULL;
	return dp_eal_init(argc, argv, NULL, &app_argc, &app_argv);
}

static int engine_start(struct peer_ctx *c)
{
	const struct peer_args *a = c->a;
	struct dp_engine_config cfg = {0};
	int rc;

	cfg.port.port_id = 0;
	cfg.port.frame_size = a->frame_size;
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = a->is_a ? IP_A : IP_B;
	cfg.impair = a->impair;
	cfg.idle = a->idle;
	cfg.caller_runs = a->caller_runs;
	dp_channel_config_init(&cfg.session);
	cfg.session.dead_timeout_ns = DEAD_NS;
	cfg.session_set = true;
	cfg.link_timeout_ms = 30000;
	rc = dp_engine_create(&cfg, &c->dp);
	if (rc != 0)
		return rc;
	dp_engine_endpoint(c->dp, &c->peer);
	memset(c->peer.mac, 0xff, sizeof(c->peer.mac)); /* promiscuous peers */
	c->peer.ipv4 = __builtin_bswap32(a->is_a ? IP_B : IP_A);
	return dp_engine_session_open(c->dp, c->cookie, c->cookie, &c->peer);
}

/* The receiver arms first, then says so with a 1-byte transfer back: one
 * send, which the protocol keeps retransmitting while the peer (alive,
 * answering keep-alives) has not posted its receive yet. Not a loop of
 * short sends of the same id: a given-up send aborts its id at the peer,
 * and the peer's receive of it, posted meanwhile, failed with it. */
static int ready_send(struct peer_ctx *c, uint32_t id)
{
	static const uint8_t ready = 1;

	return dp_engine_send(c->dp, c->cookie, id, &ready, 1, DJ_MEM_HOST, READY_PATIENCE_MS);
}

/* A transfer whose peer was killed: it must fail, detected by the engine
 * (idle or retransmission timeout), well before our own long timeout. */
static int failure_check(struct peer_ctx *c, int rc, uint64_t t0)
{
	uint64_t ms = (djc_time_ns() - t0) / 1000000;

	fprintf(stderr, "%s: transfer %u failed after %lu ms: %s\n", c->a->tag, c->id,
		(unsigned long)ms, dj_strerror(rc));
	return rc != 0 && ms < XFER_TIMEOUT_MS / 4 ? CHILD_OK : CHILD_NO_FAIL;
}

/* A step with min_ms: the pause of a peer fell inside the transfer. */
static int duration_check(struct peer_ctx *c, const struct peer_step *st, uint64_t t0)
{
	uint64_t ms = (djc_time_ns() - t0) / 1000000;

	fprintf(stderr, "%s: transfer %u (%lu B) took %lu ms\n", c->a->tag, c->id,
		(unsigned long)st->size, (unsigned long)ms);
	return ms >= st->min_ms ? CHILD_OK : CHILD_TOO_FAST;
}

/* Sleeps of this peer's lcore that a received frame ended. */
static uint64_t rx_wakes(struct peer_ctx *c)
{
	struct dp_engine_stats st;

	dp_engine_get_stats(c->dp, &st, NULL);
	return st.idle_rx_wakes;
}

static int receive_step(struct peer_ctx *c, const struct peer_step *st)
{
	uint64_t t0;
	int rc;

	memset(c->buf, 0, st->size);
	rc = dp_engine_expect(c->dp, c->cookie, c->id, c->buf, st->size, DJ_MEM_HOST);
	if (rc == 0)
		rc = ready_send(c, c->id);
	/* The clock starts before the "armed" note: a pause the parent starts
	 * on reading it may stop this process before its next instruction. */
	t0 = djc_time_ns();
	if (rc == 0 && c->a->notify_fd >= 0 && write(c->a->notify_fd, "r", 1) != 1)
		rc = -EIO;
	if (rc == 0)
		rc = dp_engine_wait(c->dp, c->cookie, c->id, XFER_TIMEOUT_MS);
	if (st->expect_fail) {
		dp_engine_cancel(c->dp, c->cookie, c->id);
		return failure_check(c, rc, t0);
	}
	if (rc != 0) {
		fprintf(stderr, "%s: receive %u (%lu B): %s\n", c->a->tag, c->id,
			(unsigned long)st->size, dj_strerror(rc));
		dp_engine_cancel(c->dp, c->cookie, c->id);
		return CHILD_TRANSFER;
	}
	if (dp_crc32c(0, c->buf, st->size) != pattern_crc(st->size, c->id + st->size)) {
		fprintf(stderr, "%s: transfer %u (%lu B): checksum differs\n", c->a->tag, c->id,
			(unsigned long)st->size);
		return CHILD_CORRUPT;
	}
	c->receives++;
	/* The receiver's clock runs from its "armed" note, which comes before
	 * the pause; a paused sender may be stopped before its own t0. */
	return st->min_ms != 0 ? duration_check(c, st, t0) : CHILD_OK;
}

static int send_step(struct peer_ctx *c, const struct peer_step *st)
{
	uint8_t ready;
	uint64_t t0;
	int rc;

	pattern_fill(c->buf, st->size, c->id + st->size);
	rc = dp_engine_expect(c->dp, c->cookie, c->id, &ready, 1, DJ_MEM_HOST);
	if (rc == 0)
		rc = dp_engine_wait(c->dp, c->cookie, c->id, XFER_TIMEOUT_MS);
	/* A notifying sender says so as it starts: the receiver's own note
	 * comes only once its ready byte was acknowledged, which under loss
	 * can be after the whole transfer went through. */
	if (rc == 0 && c->a->notify_fd >= 0 && write(c->a->notify_fd, "s", 1) != 1)
		rc = -EIO;
	usleep(c->a->pause_ms * 1000u);
	t0 = djc_time_ns();
	if (rc == 0)
		rc = dp_engine_send(c->dp, c->cookie, c->id, c->buf, st->size, DJ_MEM_HOST,
				       XFER_TIMEOUT_MS);
	if (st->expect_fail)
		return failure_check(c, rc, t0);
	if (rc != 0) {
		fprintf(stderr, "%s: send %u (%lu B): %s\n", c->a->tag, c->id,
			(unsigned long)st->size, dj_strerror(rc));
		return CHILD_TRANSFER;
	}
	if (c->a->wake) {
		uint64_t ms = (djc_time_ns() - t0) / 1000000;

		fprintf(stderr, "%s: send %u (%lu B) after %u ms idle took %lu ms\n", c->a->tag,
			c->id, (unsigned long)st->size, c->a->pause_ms, (unsigned long)ms);
		return ms <= PEER_WAKE_MAX_MS + (st->size >> 20) * 20 ? CHILD_OK : CHILD_TOO_SLOW;
	}
	return CHILD_OK;
}

static int reopen_step(struct peer_ctx *c)
{
	dp_engine_session_close(c->dp, c->cookie);
	c->cookie++;
	return dp_engine_session_open(c->dp, c->cookie, c->cookie, &c->peer) == 0 ?
	       CHILD_OK : CHILD_SETUP;
}

static int steps_run(struct peer_ctx *c)
{
	int status = CHILD_OK;

	for (unsigned int i = 0; i < c->a->n_steps && status == CHILD_OK; i++) {
		const struct peer_step *st = &c->a->steps[i];
		bool sending = (st->kind == STEP_A_TO_B) == c->a->is_a;

		if (st->kind == STEP_REOPEN)
			status = reopen_step(c);
		else if (sending)
			status = send_step(c, st);
		else
			status = receive_step(c, st);
		c->id++;
	}
	return status;
}

static uint64_t largest_step(const struct peer_args *a)
{
	uint64_t max = 1;

	for (unsigned int i = 0; i < a->n_steps; i++)
		max = a->steps[i].size > max ? a->steps[i].size : max;
	return max;
}

static void stats_dump(struct peer_ctx *c)
{
	struct dp_engine_stats st;
	struct dp_proto_stats ps;

	dp_engine_get_stats(c->dp, &st, &ps);
	fprintf(stderr, "%s: link %s, rx %lu tx %lu retrans %lu naps %lu sleeps %lu "
		"rx wakes %lu drops", c->a->tag, link_is_up() ? "up" : "down",
		(unsigned long)st.rx_packets, (unsigned long)st.tx_packets,
		(unsigned long)st.retransmits, (unsigned long)st.idle_naps,
		(unsigned long)st.idle_sleeps, (unsigned long)st.idle_rx_wakes);
	for (int i = 0; i < DP_DROP_MAX; i++)
		fprintf(stderr, " %s=%lu", dp_drop_name(i), (unsigned long)st.drops[i]);
	fprintf(stderr, " | rejects");
	for (int i = 1; i < DP_REJ_COUNT; i++)
		if (ps.rx_reject[i] != 0)
			fprintf(stderr, " %s=%lu", dp_wire_reject_name(i), (unsigned long)ps.rx_reject[i]);
	fprintf(stderr, "\n");
}

static int retransmits_check(struct peer_ctx *c)
{
	struct dp_engine_stats st;

	dp_engine_get_stats(c->dp, &st, NULL);
	fprintf(stderr, "%s: %lu packets out, %lu retransmitted, %lu dropped by impairment\n",
		c->a->tag, (unsigned long)st.tx_packets, (unsigned long)st.retransmits,
		(unsigned long)st.drops[DP_DROP_IMPAIR]);
	return st.retransmits > 0 ? CHILD_OK : CHILD_NO_RETRANS;
}

static int child_main(const struct peer_args *a)
{
	struct peer_ctx c = {.a = a, .cookie = a->cookie, .id = a->first_id};
	int status;

	usleep(a->start_delay_ms * 1000u);
	if (a->netns != NULL && dj_test_netns_enter(a->netns) != 0) {
		fprintf(stderr, "%s: cannot enter netns %s\n", a->tag, a->netns);
		return CHILD_SETUP;
	}
	if (eal_start(a) != 0) {
		fprintf(stderr, "%s: EAL did not start\n", a->tag);
		return resource_check(a, CHILD_SETUP);
	}
	c.buf_len = largest_step(a);
	c.buf = mmap(NULL, c.buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c.buf == MAP_FAILED || engine_start(&c) != 0) {
		fprintf(stderr, "%s: engine did not start\n", a->tag);
		dp_engine_destroy(c.dp);
		dp_eal_cleanup();
		return resource_check(a, CHILD_SETUP);
	}
	if (a->skip_without_link && !link_is_up()) {
		printf("SKIP: %s: the memif link never came up (a zero-copy peer's memory "
		       "could not be mapped: see the PMD's \"mmap failed\" above)\n", a->tag);
		fflush(stdout);
		dp_engine_destroy(c.dp);
		dp_eal_cleanup();
		return CHILD_SKIP;
	}
	status = resource_check(a, steps_run(&c));
	if (status != CHILD_OK || a->idle == DP_IDLE_INTERRUPT)
		stats_dump(&c);
	if (status == CHILD_OK && a->require_retransmits)
		status = retransmits_check(&c);
	/* Let the last ACKs leave, stop polling, and give the peer time to
	 * stop polling too before our port (memif) disconnects. */
	usleep(200000);
	/* A wake is published with the lcore's next loop that did work, which
	 * may come after the op it brought in ended: counted here, after the
	 * pause, not per receive. */
	if (status == CHILD_OK && a->wake && c.receives != 0 && rx_wakes(&c) == 0) {
		fprintf(stderr, "%s: no frame woke the sleeping lcore\n", a->tag);
		status = CHILD_NOT_WOKEN;
	}
	dp_engine_quiesce(c.dp);
	usleep(300000);
	dp_engine_destroy(c.dp);
	dp_eal_cleanup();
	return status;
}

pid_t peer_spawn(const struct peer_args *args)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fflush(stdout);
		_exit(child_main(args));
	}
	return pid;
}

int peer_wait(pid_t pid, unsigned int timeout_s)
{
	uint64_t deadline = djc_time_ns() + (uint64_t)timeout_s * 1000000000ull;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

			if (rc != 0)
				fprintf(stderr, "peer %d ended with status %d\n", (int)pid, rc);
			return rc;
		}
		if (r < 0)
			return -errno;
		if (djc_time_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}

/* Wait for the receiver's "armed" byte. */
static bool armed(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&pfd, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1;
}

/* 1 when a peer's exit status is a failure; a skip is noted, not counted. */
static int status_bad(int status, bool *skipped)
{
	if (status == PEER_SKIP) {
		*skipped = true;
		return 0;
	}
	return status != 0;
}

/* Spawn first and second, notifier (one of them, the receiver) writing its
 * "armed" byte to a pipe, and wait for it. 0 (and the pids: fds must be
 * closed after the run), 1 when the note did not come in time, -errno. */
static int spawn_armed(struct peer_args *first, struct peer_args *second,
		       struct peer_args *notifier, int fds[2], pid_t *p1, pid_t *p2)
{
	if (pipe(fds) != 0)
		return -errno;
	first->notify_fd = notifier == first ? fds[1] : -1;
	second->notify_fd = notifier == second ? fds[1] : -1;
	*p1 = peer_spawn(first);
	*p2 = peer_spawn(second);
	if (*p1 < 0 || *p2 < 0)
		return -ECHILD;
	return !armed(fds[0], 60000);
}

/* Wait for both peers of a run (a pid < 0 failed to start: a failure) and
 * close its pipe; bad counts earlier failures. 0, PEER_SKIP, or failures. */
static int run_end(pid_t p1, pid_t p2, int fds[2], int bad)
{
	bool skipped = false;

	bad += p1 < 0 || status_bad(peer_wait(p1, 200), &skipped);
	bad += p2 < 0 || status_bad(peer_wait(p2, 200), &skipped);
	close(fds[0]);
	close(fds[1]);
	return bad == 0 && skipped ? PEER_SKIP : bad;
}

int peer_kill_run(struct peer_args *survivor, struct peer_args *victim,
		  struct peer_args *successor, unsigned int kill_delay_us)
{
	int fds[2], bad;
	pid_t s, v;

	/* The victim is the one that notifies: as its send starts, or as its
	 * receive is armed; the kill then lands inside the transfer. */
	bad = spawn_armed(survivor, victim, victim, fds, &s, &v);
	if (bad < 0)
		return bad;
	usleep(kill_delay_us);
	kill(v, SIGKILL);
	bad += peer_wait(v, 10) != 128 + SIGKILL;
	/* A killed process removes nothing: its run-time folder is ours to. */
	dp_eal_prefix_remove(victim->tag);
	successor->notify_fd = -1;
	return run_end(peer_spawn(successor), s, fds, bad);
}

int peer_pause_run(struct peer_args *a, struct peer_args *b, bool a_receives, bool pause_b,
		   unsigned int pause_ms)
{
	int fds[2], bad;
	pid_t pa, pb;

	bad = spawn_armed(a, b, a_receives ? a : b, fds, &pa, &pb);
	if (bad < 0)
		return bad;
	usleep(1000);
	kill(pause_b ? pb : pa, SIGSTOP);
	usleep(pause_ms * 1000u);
	kill(pause_b ? pb : pa, SIGCONT);
	return run_end(pa, pb, fds, bad);
}

bool peer_left_nothing(const char *tag, const char *sock)
{
	bool clean = !dp_eal_prefix_exists(tag) && (sock == NULL || access(sock, F_OK) != 0);

	if (!clean)
		fprintf(stderr, "%s: left behind:%s%s\n", tag,
			dp_eal_prefix_exists(tag) ? " its run-time folder" : "",
			sock != NULL && access(sock, F_OK) == 0 ? " its memif socket" : "");
	dp_eal_prefix_remove(tag);
	if (sock != NULL)
		unlink(sock);
	return clean;
}

bool peer_hugepages_free(unsigned int pages)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long free_pages = 0;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
		sscanf(line, "HugePages_Free: %ld", &free_pages);
	fclose(f);
	return free_pages >= (long)pages;
}
