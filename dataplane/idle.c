/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What an idle polling lcore does (cfg.idle, docs/DATAPLANE.md "Idle
 * lcores"). DP_IDLE_POLL polls on. DP_IDLE_NAP sleeps idle_sleep_us at a
 * time on a futex that a command ends early; a frame waits for the nap's
 * end. DP_IDLE_INTERRUPT arms the rx queue's interrupt
 * (rte_eth_dev_rx_intr_enable: on memif the peer then writes the ring's
 * eventfd after its next burst) and sleeps in epoll_wait on that eventfd
 * and on the lcore's wake eventfd (commands, parking) until one fires or
 * the next timer of its sessions is due: a frame wakes the lcore as the
 * kernel wakes a TCP receiver. Where the queue has no interrupt (the driver
 * has none, a memif whose link is down) the lcore naps as DP_IDLE_NAP.
 * Everything here runs only once the lcore found nothing to do for
 * DP_IDLE_POLL_NS: the per-packet path never gets here.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"

/* epoll_event.data of the two sources. */
#define EV_WAKE 1
#define EV_RX 2

const char *const dp_idle_names[DP_IDLE_INTERRUPT + 1] = {
	[DP_IDLE_DEFAULT] = "default", [DP_IDLE_POLL] = "poll", [DP_IDLE_NAP] = "nap",
	[DP_IDLE_INTERRUPT] = "interrupt",
};

int dp_idle_init(struct dp_lcore *lc)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_WAKE};
	int rc;

	lc->epfd = lc->wake_fd = lc->rx_fd = -1;
	atomic_init(&lc->baton, DP_BATON_LCORE);
	if (lc->dp->cfg.idle != DP_IDLE_INTERRUPT)
		return 0;
	lc->rx_intr = dp_port_get_caps(lc->dp->port)->rx_intr;
	lc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lc->epfd < 0)
		goto error;
	lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lc->wake_fd < 0 || epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->wake_fd, &ev) != 0)
		goto error;
	return 0;
error:
	rc = -errno;
	dp_idle_fini(lc);
	return rc;
}

void dp_idle_fini(struct dp_lcore *lc)
{
	if (lc->wake_fd >= 0)
		close(lc->wake_fd);
	if (lc->epfd >= 0)
		close(lc->epfd);
	lc->epfd = lc->wake_fd = -1;
}

/* The fence orders the caller's publication (a command in the ring, a park
 * request) before the read of lc->napping, against the lcore's store of
 * napping before its look at them. */
void dp_lcore_kick(struct dp_lcore *lc)
{
	static const uint64_t one = 1;
	int how;

	atomic_thread_fence(memory_order_seq_cst);
	how = atomic_load_explicit(&lc->napping, memory_order_relaxed);
	if (how == DP_NAP_FUTEX)
		syscall(SYS_futex, &lc->napping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	else if (how == DP_NAP_EPOLL && write(lc->wake_fd, &one, sizeof(one)) < 0)
		DJC_LOG(DJ_LOG_WARN, "dataplane", "lcore %u wake: %s", lc->lcore_id,
			strerror(errno));
}

/* Something another thread hands the lcore without a kick is waiting, or
 * the park request came: no sleep. */
static bool lcore_has_input(const struct dp_lcore *lc)
{
	return !rte_ring_empty(lc->cmds) ||
	       (lc->dp->sw_dispatch && !rte_ring_empty(lc->handoff)) ||
	       (atomic_load_explicit(&lc->dp->park_gen, memory_order_relaxed) & 1) != 0;
}

static void nap(struct dp_lcore *lc)
{
	struct timespec ts = {.tv_nsec = (long)lc->dp->cfg.idle_sleep_us * 1000};

	lc->stats.idle_naps++;
	atomic_store(&lc->napping, DP_NAP_FUTEX);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_empty(lc->cmds))
		syscall(SYS_futex, &lc->napping, FUTEX_WAIT_PRIVATE, DP_NAP_FUTEX, &ts, NULL, 0);
	atomic_store_explicit(&lc->napping, 0, memory_order_relaxed);
}

/* How long the lcore may sleep: until its sessions' next timer, at most
 * DP_SLEEP_MAX_NS; a nap's length where something it must watch does not
 * wake it (a send's staging ring filled by a control thread, frames
 * handed over by other lcores). 0: do not sleep. */
static uint64_t sleep_budget(struct dp_lcore *lc, uint64_t now)
{
	uint64_t until = now + DP_SLEEP_MAX_NS;

	if (lc->sends_inflight != 0 || lc->dp->sw_dispatch)
		until = now + (uint64_t)lc->dp->cfg.idle_sleep_us * 1000;
	for (unsigned int i = 0; i < lc->n_sessions; i++)
		until = RTE_MIN(until, dp_channel_deadline(lc->sessions[i]->s, now));
	return until > now ? until - now : 0;
}

/* The rx queue's interrupt eventfd in lc->epfd. Its number changes when a
 * memif reconnects; EPOLL_CTL_MOD fails with ENOENT when the registration
 * went with a closed file, even one whose number came back. false: the
 * queue has no interrupt now. */
static bool rx_fd_register(struct dp_lcore *lc)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_RX};
	int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(lc->dp->cfg.port.port_id, lc->queue);

	if (fd != lc->rx_fd && lc->rx_fd >= 0)
		epoll_ctl(lc->epfd, EPOLL_CTL_DEL, lc->rx_fd, &ev); /* may be gone: ignored */
	if (fd < 0) {
		lc->rx_fd = -1;
		return false;
	}
	if (fd == lc->rx_fd && epoll_ctl(lc->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return true;
	if (epoll_ctl(lc->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		lc->rx_fd = -1;
		return false;
	}
	lc->rx_fd = fd;
	return true;
}

/* Wait on lc->epfd for up to ns; the events seen. epoll_pwait2 (Linux
 * 5.11) takes nanoseconds; older kernels get epoll_wait's milliseconds,
 * rounded up. */
static int epoll_sleep(struct dp_lcore *lc, uint64_t ns, struct epoll_event *ev, int n)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};
	static bool no_pwait2;
	int rc = -1;

	if (!no_pwait2) {
		rc = epoll_pwait2(lc->epfd, ev, n, &ts, NULL);
		if (rc < 0 && errno == ENOSYS)
			no_pwait2 = true;
	}
	if (no_pwait2)
		rc = epoll_wait(lc->epfd, ev, n, (int)((ns + 999999) / 1000000));
	return rc;
}

/* Back from a sleep: a caller may be running our loop (cfg.caller_runs);
 * nap until it is done. */
static void baton_take(struct dp_lcore *lc)
{
	struct timespec ts = {.tv_nsec = (long)lc->dp->cfg.idle_sleep_us * 1000};
	int free_baton = DP_BATON_FREE;

	while (!atomic_compare_exchange_weak(&lc->baton, &free_baton, DP_BATON_LCORE)) {
		free_baton = DP_BATON_FREE;
		nanosleep(&ts, NULL);
	}
}

/* Sleep until a frame, a kick or the budget's end. false: the queue has no
 * rx interrupt now (nap instead). */
static bool intr_sleep(struct dp_lcore *lc, uint64_t budget)
{
	uint16_t port = lc->dp->cfg.port.port_id;
	struct epoll_event ev[2];
	uint64_t drain;
	int rc, n;

	rc = rte_eth_dev_rx_intr_enable(port, lc->queue);
	if (rc == -ENOTSUP || rc == -ENODEV || rc == -EIO)
		lc->rx_intr = false; /* the driver has none: never again */
	/* Otherwise (a memif between connections) nap this time. */
	if (rc != 0)
		return false;
	if (!rx_fd_register(lc)) {
		rte_eth_dev_rx_intr_disable(port, lc->queue);
		return false;
	}
	lc->stats.idle_sleeps++;
	atomic_store(&lc->napping, DP_NAP_EPOLL);
	atomic_thread_fence(memory_order_seq_cst);
	if (lc->dp->cfg.caller_runs)
		atomic_store_explicit(&lc->baton, DP_BATON_FREE, memory_order_release);
	n = lcore_has_input(lc) ? 0 : epoll_sleep(lc, budget, ev, RTE_DIM(ev));
	atomic_store_explicit(&lc->napping, 0, memory_order_relaxed);
	if (lc->dp->cfg.caller_runs)
		baton_take(lc);
	/* Masked again before the next burst: polling, the peer need not
	 * write the eventfd (a system call) after each of its bursts. */
	rte_eth_dev_rx_intr_disable(port, lc->queue);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == EV_RX)
			lc->stats.idle_rx_wakes++;
		else if (read(lc->wake_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
			DJC_LOG(DJ_LOG_WARN, "dataplane", "lcore %u wake: %s", lc->lcore_id,
				strerror(errno));
	}
	return true;
}

void dp_idle(struct dp_lcore *lc, uint64_t work_before, uint64_t now, bool up)
{
	enum dp_idle mode = lc->dp->cfg.idle;
	uint64_t poll_ns = DP_IDLE_POLL_NS, budget;

	if (mode == DP_IDLE_POLL)
		return;
	if (lc->stats.rx_packets + lc->stats.tx_packets + lc->commands != work_before ||
	    lc->n_txq != 0) {
		lc->idle_since = now;
		return;
	}
	/* Napping, an ACK due within a round trip waits for the nap's end:
	 * poll longer while a send is in flight. Its frame wakes a sleeper. */
	if (lc->sends_inflight != 0 && !(mode == DP_IDLE_INTERRUPT && lc->rx_intr))
		poll_ns = DP_IDLE_INFLIGHT_NS;
	if (now - lc->idle_since < poll_ns)
		return;
	if (mode == DP_IDLE_INTERRUPT && lc->rx_intr && up) {
		budget = sleep_budget(lc, now);
		if (budget == 0 || intr_sleep(lc, budget))
			return;
	}
	nap(lc);
}
