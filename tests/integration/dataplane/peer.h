/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_DP_PEER_H
#define DJINN_TEST_DP_PEER_H

/*
 * Two-process data-plane tests: each peer is a forked child that starts its
 * own EAL (own --file-prefix), optionally inside a network namespace, and
 * plays a list of steps (transfers in either direction, session reopen).
 * Receivers compare the CRC32C of what arrived with the sender's pattern.
 * A child exits 0 when every step went as expected.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/dataplane.h"

enum peer_step_kind {
	STEP_A_TO_B,   /* A sends size bytes to B */
	STEP_B_TO_A,
	STEP_REOPEN,   /* close the session, open a new one with cookie + 1 */
};

struct peer_step {
	enum peer_step_kind kind;
	uint64_t size;
	/* The receiver expects this transfer to fail (peer killed) within
	 * its rx idle timeout, then carries on. */
	bool expect_fail;
	/* The receiver checks the transfer took at least this long (a pause
	 * of either side landed inside it), else it exits CHILD_TOO_FAST. */
	unsigned int min_ms;
};

/* Generous: a 4 KiB transfer takes well under a millisecond, and a 4 KiB
 * transfer at load 28 on 2 CPUs took up to 55 ms; this catches a receiver
 * left asleep or a send stuck, not a slow machine. */
#define PEER_WAKE_MAX_MS 2000u

struct peer_args {
	const char *tag;          /* unique: file prefix and log lines */
	bool is_a;
	bool huge;                /* hugepages (skip where none are free) or --no-huge */
	bool single_file;         /* --single-file-segments (zero-copy memif) */
	const char *vdev;
	const char *netns;        /* enter this namespace first, or NULL */
	uint16_t frame_size;
	const char *impair;       /* in-line impairment of this peer's tx */
	bool require_retransmits; /* fail unless the engine retransmitted */
	enum dp_idle idle;        /* the engine's idle mode (0: pure polling) */
	bool caller_runs;         /* cfg.caller_runs */
	unsigned int start_delay_ms; /* wait this long before starting */
	/* As a sender, stay idle this long between the receiver's ready note
	 * and each send (the lcores of both sides go to sleep). */
	unsigned int pause_ms;
	/* Idle mode interrupt: a peer that received must have had its lcore
	 * woken by the rx interrupt (idle_rx_wakes > 0 at the end; not per
	 * receive: a frame may land while the lcore polls after a timer, and
	 * a wake is published after the op it ended), else CHILD_NOT_WOKEN;
	 * as a sender, each send after the
	 * pause must complete within PEER_WAKE_MAX_MS plus 20 ms per MiB,
	 * else CHILD_TOO_SLOW. */
	bool wake;
	uint64_t cookie;
	unsigned int first_id;    /* transfer ids start here */
	const struct peer_step *steps;
	unsigned int n_steps;
	/* A receiver writes a byte once armed, a sender once it starts
	 * sending; or -1. */
	int notify_fd;
	/* A link that does not come up is a missing resource, not a failure:
	 * a zero-copy memif maps its peer's hugepage memory, which fails
	 * ("mmap failed: No such device") when the machine cannot give it. */
	bool skip_without_link;
};

/* A peer's exit status when it could not have the hugepages it needs
 * (another process took them meanwhile): the case is skipped, not failed. */
#define PEER_SKIP 77
/* Free hugepages a pair of peers needs (their pools, memif regions). */
#define PEER_PAIR_PAGES 256u

/* Fork a peer; returns its pid or -errno. */
pid_t peer_spawn(const struct peer_args *args);

/* Wait up to timeout_s for pid (killed after that); returns its exit
 * status, 128 + signal, or -ETIMEDOUT. */
int peer_wait(pid_t pid, unsigned int timeout_s);

/*
 * A peer killed mid-transfer. survivor->steps must be {dir, big, fail},
 * {REOPEN}, {dir, small}; victim plays {dir, big}; successor (the victim's
 * args with cookie + 1, first_id 2, steps {dir, small}) starts after the
 * kill. The victim notifies (as its send starts, or once its receive is
 * armed) and dies kill_delay_us later. Returns 0 when the victim died by SIGKILL and
 * survivor and successor exited 0; PEER_SKIP when one of them skipped and
 * none failed.
 */
int peer_kill_run(struct peer_args *survivor, struct peer_args *victim,
		  struct peer_args *successor, unsigned int kill_delay_us);

/*
 * A peer stopped mid-transfer: a and b play their steps (one transfer of
 * min_ms > pause); the receiver notifies once armed, and 1 ms later the
 * paused one (b when pause_b, else a) gets SIGSTOP for pause_ms, then
 * SIGCONT. Returns 0 when both exited 0; PEER_SKIP as peer_kill_run().
 */
int peer_pause_run(struct peer_args *a, struct peer_args *b, bool a_receives, bool pause_b,
		   unsigned int pause_ms);

/*
 * Nothing of a finished peer is left: no run-time folder for its EAL prefix
 * tag, no socket file at sock (NULL: none to check). Removes what is left
 * (a killed peer's), so a failing run leaves the machine clean too; returns
 * true when there was nothing to remove.
 */
bool peer_left_nothing(const char *tag, const char *sock);

/* Free 2 MiB hugepages on a mounted hugetlbfs. */
bool peer_hugepages_free(unsigned int pages);

#endif
