/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's control side: creation, sessions, and the blocking
 * operations of the data path. Everything here runs on control threads;
 * the lcores (lcore.c) do the packet work.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"
#include "txframe.h"

/* An lcore answers a command within one loop. On a loaded machine (shared
 * cores, a VM whose vCPUs wait on the host's) a loop can take seconds, so
 * only an lcore silent this long is taken for stopped: what it may still
 * read is then kept (orphans) or leaked rather than freed. */
#define LCORE_ANSWER_NS (60ull * 1000 * 1000 * 1000)
#define RELEASE_MIN_NS (1000ull * 1000 * 1000)
/* dp_engine_destroy(): how long rings still read by frames may take
 * to come back while the lcores run. */
#define DRAIN_AT_DESTROY_NS (500ull * 1000 * 1000)
#define SPIN_NS 20000ull
/* On a host with CPUs to spare (djc_spin_budget_us()), waiters spin this
 * long instead: a sleep there costs a futex wake-up (5-15 us) on every
 * transfer that outlasts the spin, which on the H100 host is most 4 KiB
 * and every 64 KiB transfer (20-90 us); past 200 us the wake-up is a few
 * per cent of the wait. */
#define SPIN_SPARE_US 200u
#define SLEEP_MIN_NS 10000ull
#define SLEEP_MAX_NS 500000ull

/* ---- waiting ------------------------------------------------------------------ */

/* Control threads that sleep in the kernel on an op's flag, process-wide:
 * whoever raises a flag makes the wake-up system call only while one does.
 * A counter outside the ops, because the raiser reads it after the flag
 * store, when the op may be gone already. */
static atomic_int flag_sleepers;

static long futex(atomic_int *addr, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

void dp_flag_raise(atomic_int *flag)
{
	atomic_store(flag, 1);
	/* Dekker with flag_wait(): it counts itself in, then reads the flag;
	 * we store the flag, then read the count (both sequentially
	 * consistent), so one of us sees the other. FUTEX_WAKE on a flag whose
	 * op was freed meanwhile wakes at most a spurious waiter. */
	if (atomic_load(&flag_sleepers) != 0)
		futex(flag, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

/* Spin briefly (latency; longer where CPUs are to spare, SPIN_SPARE_US),
 * then sleep in the kernel until dp_flag_raise()
 * wakes us (control threads share cores with lcores) or the sleep ends.
 * Sleeps grow with the wait (a long transfer is looked at within ~3% of
 * its time) but stay short: on an EEVDF kernel (6.18 on the dev VM) a
 * thread that slept for milliseconds, woken on a CPU where an lcore
 * polls, waited for the next tick (4 ms) to run, and 16 MiB transfers
 * fell from 33 to 6 Gbit/s. 0 when *flag is set, -ETIMEDOUT after
 * timeout_ns. */
static int flag_wait(atomic_int *flag, uint64_t timeout_ns)
{
	uint64_t start = djc_time_ns();
	uint64_t spin = RTE_MAX(SPIN_NS, 1000ull * djc_spin_budget_us(SPIN_SPARE_US));

	for (;;) {
		if (atomic_load_explicit(flag, memory_order_acquire))
			return 0;
		uint64_t waited = djc_time_ns() - start;

		if (waited >= timeout_ns)
			return -ETIMEDOUT;
		if (waited > spin) {
			uint64_t ns = waited / 32;
			struct timespec ts;

			ns = ns > SLEEP_MAX_NS ? SLEEP_MAX_NS : ns < SLEEP_MIN_NS ? SLEEP_MIN_NS : ns;
			ns = ns < timeout_ns - waited ? ns : timeout_ns - waited;
			ts = (struct timespec){.tv_nsec = (long)ns};

			atomic_fetch_add(&flag_sleepers, 1);
			if (!atomic_load(flag))
				futex(flag, FUTEX_WAIT_PRIVATE, 0, &ts);
			atomic_fetch_sub(&flag_sleepers, 1);
		} else {
			rte_pause();
		}
	}
}

/* ---- session references (see engine.h) ------------------------------------------ */

static void session_hold(struct dp_session *ses)
{
	atomic_fetch_add_explicit(&ses->refs, 1, memory_order_relaxed);
}

static void session_put(struct dp_session *ses)
{
	if (ses == NULL || atomic_fetch_sub_explicit(&ses->refs, 1, memory_order_acq_rel) != 1)
		return;
	dp_channel_destroy(ses->s);
	rte_free(ses);
}

/* The op holds its own reference on ses: op_free() drops it. */
static struct dp_op *op_new(enum dp_cmd cmd, struct dp_session *ses)
{
	/* Cache-line aligned: the tx source's fields are. */
	struct dp_op *op = aligned_alloc(RTE_CACHE_LINE_SIZE,
					 RTE_ALIGN_CEIL(sizeof(*op), RTE_CACHE_LINE_SIZE));

	if (op != NULL) {
		memset(op, 0, sizeof(*op));
		op->cmd = cmd;
		op->sess = ses;
		session_hold(ses);
	}
	return op;
}

static void op_free(struct dp_op *op)
{
	if (op == NULL)
		return;
	session_put(op->sess);
	free(op);
}

static void op_released(void *addr, void *opaque)
{
	struct dp_op *op = opaque;

	(void)addr;
	dp_op_trace(op, DP_TR_RELEASED);
	dp_flag_raise(&op->released);
}

/* kick: wake the lcore if it sleeps; false where a caller is about to run
 * its loop (cfg.caller_runs, caller_assist() kicks if it cannot). */
static int op_post(struct dp_engine *dp, struct dp_op *op, bool kick)
{
	struct dp_lcore *lc = dp->lcores[op->sess->lcore_idx];

	if (op->cmd == DP_CMD_SEND || op->cmd == DP_CMD_RECV)
		dp_op_trace(op, DP_TR_POST);
	if (rte_ring_mp_enqueue(lc->cmds, op) != 0)
		return -EBUSY;
	if (kick)
		dp_lcore_kick(lc);
	return 0;
}

/* cfg.caller_runs: run the op's lcore's loop here while it sleeps, for a
 * while, before waiting as usual (not for an op that ended already: a
 * striped send's parts were run by parts_wait()). */
static void caller_assist(struct dp_engine *dp, struct dp_op *op)
{
	struct dp_lcore *lc = dp->lcores[op->sess->lcore_idx];

	if (!dp->cfg.caller_runs || atomic_load_explicit(&op->done, memory_order_acquire))
		return;
	dp_op_trace(op, DP_TR_ASSIST);
	if (!dp_lcore_assist(lc, &op->done, DP_ASSIST_NS))
		dp_lcore_kick(lc);
	dp_op_trace(op, DP_TR_ASSIST_END);
}

/* Post and wait for the lcore's answer (it answers within extra_ns plus
 * a loop); 0 or the op's status. The caller frees op unless the lcore
 * never answered (-EDEADLK): then leaking beats a use after free. */
static int op_run(struct dp_engine *dp, struct dp_op *op, uint64_t extra_ns)
{
	int rc = op_post(dp, op, true);

	if (rc != 0)
		return rc;
	if (flag_wait(&op->done, LCORE_ANSWER_NS + extra_ns) != 0) {
		djc_log(DJ_LOG_ERR, "dataplane", "lcore did not answer command %d", op->cmd);
		return -EDEADLK;
	}
	return op->status;
}

/* op_run for commands whose op the caller does not keep. */
static int op_run_free(struct dp_engine *dp, struct dp_op *op)
{
	int rc = op_run(dp, op, 0);

	if (rc != -EDEADLK)
		op_free(op);
	return rc;
}

/* ---- sessions --------------------------------------------------------------------- */

/* Caller holds dp->lock. Sessions still opening count: a cookie is taken
 * from the moment its open begins. */
static struct dp_session *session_find(struct dp_engine *dp, uint64_t cookie)
{
	struct dp_session *ses;

	for (ses = dp->sessions; ses != NULL; ses = ses->next)
		if (ses->cookie == cookie)
			break;
	return ses;
}

/* The open session of cookie with a reference for the caller
 * (session_put), or NULL. */
static struct dp_session *session_get(struct dp_engine *dp, uint64_t cookie)
{
	struct dp_session *ses;

	if (dp == NULL)
		return NULL;
	pthread_mutex_lock(&dp->lock);
	ses = session_find(dp, cookie);
	if (ses != NULL && ses->ready)
		session_hold(ses);
	else
		ses = NULL;
	pthread_mutex_unlock(&dp->lock);
	return ses;
}

static void endpoint_from_dp(const struct dp_endpoint *in, uint16_t queue,
			     struct dp_netaddr *out)
{
	memcpy(out->mac, in->mac, sizeof(out->mac));
	out->ipv4 = rte_be_to_cpu_32(in->ipv4);
	out->port = (uint16_t)(in->udp_port + queue);
}

static int session_build(struct dp_engine *dp, uint64_t session_id, uint64_t cookie,
			 const struct dp_endpoint *peer, struct dp_session *ses)
{
	struct dp_channel_config sc = dp->cfg.session;
	uint16_t peer_queues = peer->n_queues ? peer->n_queues : 1;
	uint16_t queues = RTE_MIN(dp->n_lcores, peer_queues);
	uint16_t mtu = peer->mtu ? RTE_MIN(peer->mtu, dp->mtu) : dp->mtu;

	/* Both sides pick the same queue pair from the session id alone, so
	 * a session's packets stay on one lcore at each end. */
	ses->id = (uint32_t)session_id;
	ses->cookie = cookie;
	ses->lcore_idx = ses->id % queues;
	sc.session_id = ses->id;
	sc.cookie = cookie;
	sc.frag_size = dp_wire_frag_size(mtu);
	sc.encap = true;
	sc.local = dp->local;
	sc.local.port = (uint16_t)(dp->local.port + ses->lcore_idx);
	if (dp->cfg.placer != NULL) {
		sc.place = dp_place;
		sc.place_ctx = dp->lcores[ses->lcore_idx];
	}
	endpoint_from_dp(peer, (uint16_t)ses->lcore_idx, &sc.peer);
	ses->peer_ipv4 = sc.peer.ipv4;
	ses->peer_port = sc.peer.port;
	return dp_channel_create(&sc, &ses->s);
}

/* Caller holds dp->lock. Lcores find a packet's session by its 32-bit id
 * and the peer's address: each server numbers its sessions on its own and
 * a fleet member takes part in sessions numbered by several servers, so
 * two peers may well use one id, and both sessions work. Two sessions of
 * one id with the same peer would take each other's packets. */
static bool session_key_taken(struct dp_engine *dp, const struct dp_session *key)
{
	for (struct dp_session *ses = dp->sessions; ses != NULL; ses = ses->next)
		if (dp_session_is(ses, key->id, key->peer_ipv4, key->peer_port))
			return true;
	return false;
}

/* List ses (not ready yet) unless its cookie, or its id with its peer, is
 * taken: -EEXIST. */
static int session_list(struct dp_engine *dp, struct dp_session *ses)
{
	int rc = 0;

	pthread_mutex_lock(&dp->lock);
	if (session_find(dp, ses->cookie) != NULL || session_key_taken(dp, ses)) {
		rc = -EEXIST;
	} else {
		ses->next = dp->sessions;
		dp->sessions = ses;
	}
	pthread_mutex_unlock(&dp->lock);
	return rc;
}

/* to += add - sub (sub may be NULL), counter by counter: every field is a
 * uint64_t counter but the RTT gauges, which are left as they were. */
static void proto_counters_add(struct dp_proto_stats *to, const struct dp_proto_stats *add,
			       const struct dp_proto_stats *sub)
{
	uint64_t srtt = to->srtt_ns, rttvar = to->rttvar_ns, rto = to->rto_ns;
	uint64_t *t = (uint64_t *)to;
	const uint64_t *a = (const uint64_t *)add, *b = (const uint64_t *)sub;

	for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += a[i] - (b != NULL ? b[i] : 0);
	to->srtt_ns = srtt;
	to->rttvar_ns = rttvar;
	to->rto_ns = rto;
}

/* Take the session of cookie off the list; the caller inherits the list's
 * reference. ready: only an open one (else only one still opening). */
static struct dp_session *session_unlink(struct dp_engine *dp, uint64_t cookie, bool ready)
{
	struct dp_session **pp, *ses = NULL;

	pthread_mutex_lock(&dp->lock);
	for (pp = &dp->sessions; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->cookie == cookie && (*pp)->ready == ready) {
			ses = *pp;
			*pp = ses->next;
			break;
		}
	}
	/* Its counters so far stay in the engine's sums, in the same breath:
	 * a reader never sees them vanish (see session_retire). */
	if (ses != NULL) {
		dp_seq_read(&ses->snap_seq, &ses->retired, &ses->snap_pub, sizeof(ses->retired));
		proto_counters_add(&dp->proto_closed, &ses->retired, NULL);
	}
	pthread_mutex_unlock(&dp->lock);
	return ses;
}

/* After its CLOSE ran (the lcore's last snapshot published): what the
 * session counted since it was unlinked joins the closed sessions' sums,
 * so the engine's protocol counters only ever grow. */
static void session_retire(struct dp_engine *dp, struct dp_session *ses)
{
	struct dp_proto_stats last;

	dp_seq_read(&ses->snap_seq, &last, &ses->snap_pub, sizeof(last));
	pthread_mutex_lock(&dp->lock);
	proto_counters_add(&dp->proto_closed, &last, &ses->retired);
	pthread_mutex_unlock(&dp->lock);
}

static void session_set_ready(struct dp_engine *dp, struct dp_session *ses)
{
	pthread_mutex_lock(&dp->lock);
	ses->ready = true;
	pthread_mutex_unlock(&dp->lock);
}

int dp_engine_session_open(struct dp_engine *dp, uint64_t session_id, uint64_t cookie,
			      const struct dp_endpoint *peer)
{
	struct dp_session *ses;
	struct dp_op *op;
	int rc;

	if (dp == NULL || peer == NULL)
		return -EINVAL;
	ses = rte_zmalloc("dj_dp_session", sizeof(*ses), RTE_CACHE_LINE_SIZE);
	if (ses == NULL)
		return -ENOMEM;
	atomic_init(&ses->refs, 1); /* the list's */
	rc = session_build(dp, session_id, cookie, peer, ses);
	if (rc == 0)
		rc = session_list(dp, ses);
	if (rc != 0) {
		session_put(ses);
		return rc;
	}
	op = op_new(DP_CMD_OPEN, ses);
	rc = op == NULL ? -ENOMEM : op_run_free(dp, op);
	if (rc == -EDEADLK) {
		/* The lcore may still take the (leaked) op and list the
		 * session: leak it too rather than have it freed under it. */
		djc_log(DJ_LOG_ERR, "dataplane", "session %u: open unanswered; leaking it", ses->id);
		return rc;
	}
	if (rc != 0) {
		session_put(session_unlink(dp, cookie, false));
		return rc;
	}
	session_set_ready(dp, ses);
	DJC_LOG(DJ_LOG_INFO, "dataplane", "session %u open on lcore %u", ses->id,
	       dp->lcores[ses->lcore_idx]->lcore_id);
	return 0;
}

/* Caller holds dp->lock and took op off the list: free it unless a waiter
 * still looks at it (that waiter frees it). */
static void expected_unlisted(struct dp_op *op)
{
	op->unlisted = true;
	if (op->waiters == 0)
		op_free(op);
}

static void expected_drop_session(struct dp_engine *dp, uint64_t cookie)
{
	struct dp_op **pp, *op;

	pthread_mutex_lock(&dp->lock);
	for (pp = &dp->expected; (op = *pp) != NULL;) {
		if (op->cookie == cookie && atomic_load(&op->done)) {
			*pp = op->next;
			expected_unlisted(op);
		} else {
			pp = &op->next;
		}
	}
	pthread_mutex_unlock(&dp->lock);
}

/* Threads still inside an operation of the session keep it (their
 * references): they finish with -ECONNRESET or -ENOENT, and the last one
 * frees it. */
void dp_engine_session_close(struct dp_engine *dp, uint64_t cookie)
{
	struct dp_session *ses = dp ? session_unlink(dp, cookie, true) : NULL;
	struct dp_op *op;

	if (ses == NULL)
		return;
	op = op_new(DP_CMD_CLOSE, ses);
	if (op == NULL || op_run_free(dp, op) != 0) {
		djc_log(DJ_LOG_ERR, "dataplane", "session %u: close failed; leaking it", ses->id);
		return;
	}
	session_retire(dp, ses);
	expected_drop_session(dp, cookie);
	session_put(ses);
}

/* ---- probe --------------------------------------------------------------------------- */

/* A memif's link for a probe: a young engine's first connection may still
 * be under way (DP_PROBE_LINK_GRACE_NS, within the probe's timeout); after
 * that a memif whose server is gone answers nothing: say so at once. The
 * lcores' link watch does the reconnecting; this only looks. */
static bool probe_link_up(const struct dp_engine *dp, uint32_t timeout_ms)
{
	uint64_t now = djc_time_ns();
	uint64_t until = RTE_MIN(dp->created_ns + DP_PROBE_LINK_GRACE_NS,
				 now + (uint64_t)timeout_ms * 1000000ull);

	return dp_port_wait_link(dp->port, until > now ? until - now : 0, false) == 0;
}

int dp_engine_probe(struct dp_engine *dp, uint64_t cookie, uint32_t timeout_ms,
		       uint64_t *rtt_ns)
{
	struct dp_session *ses = session_get(dp, cookie);
	struct dp_op *op;
	int rc;

	if (ses == NULL)
		return -ENOENT;
	if (dp->lcores[0]->link_gated && !probe_link_up(dp, timeout_ms)) {
		session_put(ses);
		return -ENETDOWN;
	}
	op = op_new(DP_CMD_PING, ses);
	session_put(ses);
	if (op == NULL)
		return -ENOMEM;
	/* The lcore ends the probe at its deadline, so the op is always
	 * answered and freed here. */
	op->len = (uint64_t)timeout_ms * 1000000ull;
	rc = op_run(dp, op, op->len);
	if (rc == -EDEADLK)
		return rc; /* the lcore may still complete it: leaked */
	if (rc == 0 && rtt_ns != NULL)
		*rtt_ns = op->rtt_ns;
	op_free(op);
	return rc;
}

/* ---- receive: expect, wait, cancel ------------------------------------------------- */

/* Unlinks the op when unlink is set. Caller holds dp->lock. */
static struct dp_op *expected_find(struct dp_engine *dp, uint64_t cookie, uint64_t id,
				   int unlink)
{
	for (struct dp_op **pp = &dp->expected; *pp != NULL; pp = &(*pp)->next) {
		struct dp_op *op = *pp;

		if (op->cookie == cookie && op->xfer_id == id) {
			if (unlink)
				*pp = op->next;
			return op;
		}
	}
	return NULL;
}

/* The op of one transfer of session cookie; -ENOENT without the session. */
static int xfer_op_new(struct dp_engine *dp, enum dp_cmd cmd, uint64_t cookie,
		       uint64_t xfer_id, void *buf, uint64_t len, enum dj_mem_kind mem,
		       struct dp_op **out)
{
	struct dp_session *ses = session_get(dp, cookie);
	struct dp_op *op;

	if (ses == NULL)
		return -ENOENT;
	op = op_new(cmd, ses);
	session_put(ses);
	if (op == NULL)
		return -ENOMEM;
	op->cookie = cookie;
	op->xfer_id = xfer_id;
	op->buf = buf;
	op->len = len;
	op->mem = mem;
	*out = op;
	return 0;
}

int dp_engine_expect(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
			void *dst, size_t len, enum dj_mem_kind mem)
{
	struct dp_op *op;
	int rc = xfer_op_new(dp, DP_CMD_RECV, cookie, xfer_id, dst, len, mem, &op);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&dp->lock);
	if (expected_find(dp, cookie, op->xfer_id, 0) != NULL) {
		rc = -EEXIST;
	} else {
		rc = op_post(dp, op, !dp->cfg.caller_runs);
		if (rc == 0) {
			op->next = dp->expected;
			dp->expected = op;
		}
	}
	pthread_mutex_unlock(&dp->lock);
	if (rc != 0)
		op_free(op);
	return rc;
}

/* The expected op of (cookie, id), pinned for a waiter: nobody frees it
 * until expected_unpin(). NULL: no such transfer. */
static struct dp_op *expected_pin(struct dp_engine *dp, uint64_t cookie, uint64_t id)
{
	struct dp_op *op;

	pthread_mutex_lock(&dp->lock);
	op = expected_find(dp, cookie, id, 0);
	if (op != NULL)
		op->waiters++;
	pthread_mutex_unlock(&dp->lock);
	return op;
}

/* Unpin op; a finished one leaves the list (and is freed once no other
 * waiter holds it). Its status, -EINPROGRESS while it runs, or -ENOENT
 * where a session close reaped it first. */
static int expected_unpin(struct dp_engine *dp, struct dp_op *op)
{
	int rc = -EINPROGRESS;

	pthread_mutex_lock(&dp->lock);
	op->waiters--;
	if (op->unlisted) {
		rc = -ENOENT;
		if (op->waiters == 0)
			op_free(op);
	} else if (atomic_load_explicit(&op->done, memory_order_acquire)) {
		expected_find(dp, op->cookie, op->xfer_id, 1);
		rc = op->status;
		expected_unlisted(op);
	}
	pthread_mutex_unlock(&dp->lock);
	return rc;
}

int dp_engine_wait(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
		      uint32_t timeout_ms)
{
	struct dp_op *op;
	uint64_t len;
	int rc, status;

	if (dp == NULL)
		return -EINVAL;
	op = expected_pin(dp, cookie, xfer_id);
	if (op == NULL)
		return -ENOENT;
	caller_assist(dp, op);
	rc = flag_wait(&op->done, (uint64_t)timeout_ms * 1000000ull);
	len = op->len;
	status = expected_unpin(dp, op);
	DP_TRACE(DP_TR_RETURN, cookie, xfer_id, DP_XFER_RX, len);
	(void)len;
	return rc != 0 && status == -EINPROGRESS ? rc : status;
}

static int cancel_post(struct dp_engine *dp, struct dp_session *ses, enum dp_xfer_dir dir,
		       uint64_t id)
{
	struct dp_op *op = op_new(DP_CMD_CANCEL, ses);

	if (op == NULL)
		return -ENOMEM;
	op->dir = dir;
	op->xfer_id = id;
	return op_run_free(dp, op);
}

int dp_engine_cancel(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id)
{
	struct dp_session *ses;
	struct dp_op *op;
	int rc;

	if (dp == NULL)
		return -ENOENT;
	op = expected_pin(dp, cookie, xfer_id);
	if (op == NULL)
		return -ENOENT;
	/* A closed session failed its receives: the op is done or about to
	 * be, and only needs reaping. */
	ses = session_get(dp, cookie);
	rc = ses != NULL ? cancel_post(dp, ses, DP_XFER_RX, xfer_id) : -ENOENT;
	session_put(ses);
	/* Cancelled or finished meanwhile: either way the lcore reports the
	 * op done now, and the destination is not written again. */
	if (flag_wait(&op->done, LCORE_ANSWER_NS) != 0)
		return -EDEADLK; /* stays pinned: leaked */
	expected_unpin(dp, op);
	return rc == 0 ? 0 : -ENOENT;
}

/* ---- send ------------------------------------------------------------------------------ */

/* Feeding a staging ring: spin this long after the last progress, then nap
 * this long between looks (a chunk takes tens of microseconds to copy and
 * more to transmit, so the ring never runs dry while we sleep). */
#define STAGE_SPIN_NS 20000ull
#define STAGE_NAP_NS 10000l

/* A send given up on while the lcore or the driver still holds it: kept
 * until its frames let go of the source (dp_send_pinned). */
static int orphan_keep(struct dp_engine *dp, struct dp_op *op)
{
	pthread_mutex_lock(&dp->lock);
	op->next = dp->orphans;
	dp->orphans = op;
	pthread_mutex_unlock(&dp->lock);
	return -EDEADLK;
}

/* Released: no frame reads the source or the staging ring, and (the owner
 * reference goes last, after done) the lcore is finished with the op. */
int dp_send_pinned(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id)
{
	struct dp_op **pp, *op;
	int rc = -ENOENT;

	pthread_mutex_lock(&dp->lock);
	for (pp = &dp->orphans; (op = *pp) != NULL; pp = &op->next) {
		if (op->cookie != cookie || op->xfer_id != xfer_id)
			continue;
		rc = atomic_load_explicit(&op->released, memory_order_acquire) &&
		     (op->stage == NULL || dp_stage_idle(op->stage)) ? 0 : 1;
		if (rc == 0)
			*pp = op->next;
		break;
	}
	pthread_mutex_unlock(&dp->lock);
	if (rc == 0) {
		dp_stage_finish(dp, op->stage);
		op_free(op);
	}
	return rc;
}

/*
 * The CPU must never read GPU memory, and a NIC cannot without a DMA
 * mapping of it: a GPU source goes out of host copies. A placer without
 * staging members gives one whole copy (copy_out): the tensor's size in
 * host memory, and the copy's time before the first fragment.
 */
static int send_whole_copy(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
			   const void *src, size_t len, uint32_t timeout_ms)
{
	const struct dp_engine_placer *pl = dp->cfg.placer;
	struct dp_engine_stage_stats count = {.whole_sends = 1};
	void *host = NULL;
	int rc;

	if (pl == NULL || pl->copy_out == NULL)
		return -ENOTSUP;
	if (len != 0 && posix_memalign(&host, RTE_CACHE_LINE_SIZE, len) != 0)
		return -ENOMEM;
	rc = len != 0 ? pl->copy_out(pl->ctx, host, src, len) : 0;
	if (rc == 0)
		rc = dp_engine_send(dp, cookie, xfer_id, host, len, DJ_MEM_HOST, timeout_ms);
	/* -EDEADLK: queued frames may still point into the copy; leak it. */
	if (rc != -EDEADLK)
		free(host);
	dp_stage_stats_add(dp, &count);
	return rc;
}

static bool placer_stages(const struct dp_engine_placer *pl)
{
	return pl != NULL && pl->stage_get != NULL && pl->stage_put != NULL &&
	       pl->stage_copy != NULL && pl->stage_poll != NULL;
}

/* A send's progress as its waiter sees it: the bytes the peer acknowledged
 * (the session publishes them in the source's acked mark) and when they
 * last grew. */
struct send_progress {
	const struct dp_tx_source *src;
	uint64_t acked;
	uint64_t at_ns;
};

static void send_progress_init(struct send_progress *p, struct dp_op *op)
{
	p->src = dp_op_source(op);
	p->acked = 0;
	p->at_ns = djc_time_ns();
}

/* true once the peer acknowledged nothing new for timeout_ns. A peer that
 * keeps acknowledging never times a send out, however large it is. */
static bool send_stalled(struct send_progress *p, uint64_t now, uint64_t timeout_ns)
{
	uint64_t acked = __atomic_load_n(&p->src->acked, __ATOMIC_ACQUIRE);

	if (acked != p->acked) {
		p->acked = acked;
		p->at_ns = now;
	}
	return now - p->at_ns >= timeout_ns;
}

/* Wait for a host send's end: 0 (the op says how it ended), or -ETIMEDOUT
 * once it stalled for timeout_ns. Slices of SEND_SLICE_NS, each spinning
 * briefly and then napping longer and longer as flag_wait() does. */
#define SEND_SLICE_NS (100ull * 1000 * 1000)

static int send_wait(struct dp_engine *dp, struct dp_op *op, uint64_t timeout_ns)
{
	struct send_progress p;

	send_progress_init(&p, op);
	caller_assist(dp, op);
	while (flag_wait(&op->done, SEND_SLICE_NS) != 0)
		if (send_stalled(&p, djc_time_ns(), timeout_ns))
			return -ETIMEDOUT;
	return 0;
}

/* Copy chunks into the ring and publish them until the send ends: 0 (the
 * op says how it ended), -ETIMEDOUT once it stalled for timeout_ns, or
 * -EIO when a copy failed. */
static int stage_feed(struct dp_op *op, uint64_t timeout_ns)
{
	struct timespec nap = {.tv_nsec = STAGE_NAP_NS};
	uint64_t last_move = djc_time_ns();
	struct send_progress p;

	send_progress_init(&p, op);

	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	while (!atomic_load_explicit(&op->done, memory_order_acquire)) {
		int moved = dp_stage_pump(op->stage);
		uint64_t now = djc_time_ns();

		if (moved < 0) {
			djc_log(DJ_LOG_ERR, "dataplane", "transfer %" PRIu64 ": GPU copy failed (%s)",
			       op->xfer_id, dj_strerror(moved));
			op->stage->st.copy_failures++;
			return -EIO;
		}
		if (send_stalled(&p, now, timeout_ns))
			return -ETIMEDOUT;
		if (moved > 0)
			last_move = now;
		else if (now - last_move > STAGE_SPIN_NS)
			nanosleep(&nap, NULL);
		else
			rte_pause();
	}
	return 0;
}

/* How long a SEND that ended may take to set op->released. A staged one:
 * no frame holds op, only the lcore's finishing touch, so as long as an
 * lcore may take to answer. A host one: its frames must let go of the
 * caller's buffer, within the caller's timeout but never less than
 * RELEASE_MIN_NS (frames still queued when a send fails go within a loop
 * or two); past it the send is an orphan (-EDEADLK, send_pinned). */
static uint64_t release_wait_ns(const struct dp_op *op, uint64_t timeout_ns)
{
	if (op->stage != NULL)
		return LCORE_ANSWER_NS;
	return timeout_ns > RELEASE_MIN_NS ? timeout_ns : RELEASE_MIN_NS;
}

/* Post a SEND (its frames' owner reference armed first). */
static int send_start(struct dp_engine *dp, struct dp_op *op, bool kick)
{
	dp_txframe_owner_init(&op->shinfo, op_released, op);
	if (op->stage == NULL)
		op->src.ready = op->len;
	return op_post(dp, op, kick);
}

/* Wait for a posted SEND's end, then for every frame that points into its
 * source to be gone (a staged source: none does, its ring's slots are the
 * frames' owners, see send_end()). -EDEADLK: the lcore or frames still
 * hold op, which send_end() keeps. */
static int send_finish(struct dp_engine *dp, struct dp_op *op, uint32_t timeout_ms)
{
	uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000ull;
	int rc = op->stage != NULL ? stage_feed(op, timeout_ns) : send_wait(dp, op, timeout_ns);

	if (rc != 0) {
		cancel_post(dp, op->sess, DP_XFER_TX, op->xfer_id);
		if (flag_wait(&op->done, LCORE_ANSWER_NS) != 0)
			return -EDEADLK;
	}
	if (flag_wait(&op->released, release_wait_ns(op, timeout_ns)) != 0) {
		djc_log(DJ_LOG_ERR, "dataplane", "transfer %" PRIu64 ": frames still queued", op->xfer_id);
		return -EDEADLK;
	}
	return rc != 0 ? rc : op->status;
}

/* The send is over: once its copies stopped reading the caller's GPU
 * memory, a staging ring goes back, at once or when its last frame is
 * gone. -EDEADLK: the lcore or the frames still hold op (and its ring),
 * kept as an orphan until they let go. Returns rc. */
static int send_end(struct dp_engine *dp, struct dp_op *op, int rc)
{
	if (op->stage != NULL)
		dp_stage_settle(op->stage);
	if (rc == -EDEADLK)
		return orphan_keep(dp, op);
	dp_stage_finish(dp, op->stage);
	op_free(op);
	return rc;
}

int dp_engine_send(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
		      const void *src, size_t len, enum dj_mem_kind mem, uint32_t timeout_ms)
{
	struct dp_op *op;
	int rc;

	if (dp != NULL && mem == DJ_MEM_GPU && !placer_stages(dp->cfg.placer))
		return send_whole_copy(dp, cookie, xfer_id, src, len, timeout_ms);
	rc = xfer_op_new(dp, DP_CMD_SEND, cookie, xfer_id, (void *)(uintptr_t)src, len, mem, &op);
	if (rc != 0)
		return rc;
	/* A GPU source goes out of a ring of host chunks (stage.c); rings of
	 * earlier sends that drained meanwhile go back first, for reuse. */
	if (mem == DJ_MEM_GPU && len != 0) {
		dp_stage_reap(dp);
		rc = dp_stage_create(dp, src, len, dp_channel_frag_size(op->sess->s), &op->stage);
		if (rc != 0) {
			op_free(op);
			return rc;
		}
		op->buf = op->stage->host;
		op->mem = DJ_MEM_HOST;
	}
	rc = send_start(dp, op, !dp->cfg.caller_runs);
	if (rc == 0)
		rc = send_finish(dp, op, timeout_ms);
	rc = send_end(dp, op, rc);
	DP_TRACE(DP_TR_RETURN, cookie, xfer_id, DP_XFER_TX, len);
	return rc;
}

/* A striped send's waiter looks at every part this often: a part that
 * fails stops the others within a slice, not after their own timeouts. */
#define PARTS_SLICE_NS (2ull * 1000 * 1000)

/* Stop every part of ops[0..n) still running (their sends end with
 * -ECANCELED). */
static void parts_cancel(struct dp_engine *dp, struct dp_op **ops, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (!atomic_load_explicit(&ops[i]->done, memory_order_acquire))
			cancel_post(dp, ops[i]->sess, DP_XFER_TX, ops[i]->xfer_id);
}

/*
 * Wait until every part ended, in slices of PARTS_SLICE_NS on the first one
 * still running; with cfg.caller_runs, first run that part's sleeping
 * lcore here, as a single send does (caller_assist()). The first part that
 * fails or stalls for timeout_ns (its peer acknowledged nothing new)
 * cancels the others. rc[i] receives
 * -ETIMEDOUT for a part that stalled, 0 for the others (their ops say how
 * they ended).
 */
static void parts_wait(struct dp_engine *dp, struct dp_op **ops, unsigned int n,
		       uint64_t timeout_ns, int *rc)
{
	struct send_progress p[DP_SEND_PARTS_MAX];
	bool cancelled = false;
	unsigned int i = 0, assisted = UINT_MAX;

	for (unsigned int k = 0; k < n; k++) {
		send_progress_init(&p[k], ops[k]);
		rc[k] = 0;
	}
	while (i < n) {
		uint64_t now;

		if (assisted != i) {
			caller_assist(dp, ops[i]);
			assisted = i;
		}
		if (flag_wait(&ops[i]->done, PARTS_SLICE_NS) == 0 && ops[i]->status == 0) {
			i++;
			continue;
		}
		now = djc_time_ns();
		for (unsigned int k = i; k < n && !cancelled; k++) {
			bool done = atomic_load_explicit(&ops[k]->done, memory_order_acquire);

			if (!done && send_stalled(&p[k], now, timeout_ns))
				rc[k] = -ETIMEDOUT;
			if ((done && ops[k]->status != 0) || rc[k] != 0) {
				parts_cancel(dp, ops, n);
				cancelled = true;
			}
		}
		/* Once cancelled, every part ends within an lcore's answer. */
		if (cancelled && flag_wait(&ops[i]->done, LCORE_ANSWER_NS) != 0)
			return;
		if (atomic_load_explicit(&ops[i]->done, memory_order_acquire))
			i++;
	}
}

int dp_engine_send_parts(struct dp_engine *dp, const struct dp_send_part *parts,
			 unsigned int n, uint64_t xfer_id, uint32_t timeout_ms)
{
	struct dp_op *ops[DP_SEND_PARTS_MAX];
	int stalled[DP_SEND_PARTS_MAX];
	unsigned int started = 0;
	int rc = 0, first = 0, cause = 0;

	if (dp == NULL || parts == NULL || n == 0 || n > DP_SEND_PARTS_MAX)
		return -EINVAL;
	/* All parts on their lcores before the first wait: they run at once. */
	for (; started < n; started++) {
		const struct dp_send_part *p = &parts[started];

		rc = xfer_op_new(dp, DP_CMD_SEND, p->cookie, xfer_id, (void *)(uintptr_t)p->src,
				 p->len, DJ_MEM_HOST, &ops[started]);
		if (rc != 0)
			break;
		rc = send_start(dp, ops[started], !dp->cfg.caller_runs || n > 1);
		if (rc != 0) {
			op_free(ops[started]);
			break;
		}
	}
	/* A part that could not start fails the whole: the others stop. */
	if (rc != 0)
		parts_cancel(dp, ops, started);
	else
		parts_wait(dp, ops, started, (uint64_t)timeout_ms * 1000000ull, stalled);
	first = rc;
	for (unsigned int i = 0; i < started; i++) {
		int one = send_finish(dp, ops[i], timeout_ms);

		one = send_end(dp, ops[i], rc == 0 && stalled[i] != 0 && one != -EDEADLK ?
				stalled[i] : one);
		first = first != 0 ? first : one;
		/* The part that failed says why; the ones it stopped say
		 * -ECANCELED. */
		cause = cause != 0 || one == -ECANCELED ? cause : one;
	}
	for (unsigned int i = 0; i < started; i++)
		DP_TRACE(DP_TR_RETURN, parts[i].cookie, xfer_id, DP_XFER_TX, parts[i].len);
	return first == -ECANCELED && cause != 0 ? cause : first;
}

/* ---- create / destroy ---------------------------------------------------------------- */

static int lcore_state_create(struct dp_engine *dp, unsigned int idx, unsigned int lcore_id)
{
	char name[RTE_RING_NAMESIZE];
	struct dp_lcore *lc;
	bool memif;
	int rc = 0;

	lc = rte_zmalloc_socket("dj_dp_lcore", sizeof(*lc), RTE_CACHE_LINE_SIZE,
				(int)rte_lcore_to_socket_id(lcore_id));
	if (lc == NULL)
		return -ENOMEM;
	dp->lcores[idx] = lc;
	lc->dp = dp;
	rc = dp_idle_init(lc);
	if (rc != 0)
		return rc;
	lc->lcore_id = lcore_id;
	lc->queue = (uint16_t)idx;
	memif = strcmp(dp_port_get_caps(dp->port)->driver, "net_memif") == 0;
	lc->link_gated = memif;
	lc->tx_chunk = memif ? DP_MEMIF_TX_CHUNK : DP_TXQ_MAX;
	lc->link_watch = idx == 0 && dp_port_get_caps(dp->port)->memif_client;
	lc->tx_ip_cksum_offload = dp_port_get_caps(dp->port)->tx_ipv4_cksum;
	snprintf(name, sizeof(name), "djcmd%u_%u", dp->cfg.port.port_id, idx);
	lc->cmds = rte_ring_create(name, DP_CMD_RING, (int)rte_lcore_to_socket_id(lcore_id),
				   RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "djho%u_%u", dp->cfg.port.port_id, idx);
	lc->handoff = rte_ring_create(name, DP_HANDOFF_RING, (int)rte_lcore_to_socket_id(lcore_id),
				      RING_F_SC_DEQ);
	if (lc->cmds == NULL || lc->handoff == NULL)
		return -ENOMEM;
	if (dp->cfg.placer != NULL) {
		rc = dp->cfg.placer->lcore_init(dp->cfg.placer->ctx, idx, &lc->placer_state);
		if (rc != 0)
			return rc;
	}
	if (dp->cfg.impair != NULL && dp->cfg.impair[0] != '\0') {
		struct dp_impair_config ic = {.seed = 1 + idx};

		rc = dp_impair_config_parse(dp->cfg.impair, &ic);
		if (rc == 0)
			rc = dp_impair_create(&ic, &lc->impair);
		if (rc == 0)
			rc = dp_hold_queue_create(DP_HOLD_MAX, &lc->hold);
	}
	return rc;
}

/* A placer still holds received mbufs: it must give them back while their
 * mempools (the port's) exist. */
static void lcore_placer_fini(const struct dp_engine *dp, struct dp_lcore *lc)
{
	if (lc == NULL || dp->cfg.placer == NULL || lc->placer_state == NULL)
		return;
	dp->cfg.placer->lcore_fini(lc->placer_state);
	lc->placer_state = NULL;
}

static void lcore_state_destroy(const struct dp_engine *dp, struct dp_lcore *lc)
{
	if (lc == NULL)
		return;
	lcore_placer_fini(dp, lc);
	dp_idle_fini(lc);
	dp_impair_destroy(lc->impair);
	dp_hold_queue_destroy(lc->hold);
	rte_ring_free(lc->cmds);
	if (lc->handoff != NULL) {
		struct rte_mbuf *m;

		while (rte_ring_sc_dequeue(lc->handoff, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(lc->handoff);
	}
	rte_free(lc);
}

static int lcores_launch(struct dp_engine *dp)
{
	unsigned int lcore_id, idx = 0;
	int rc;

	RTE_LCORE_FOREACH_WORKER(lcore_id) {
		if (idx == dp->n_lcores)
			break;
		if (rte_eal_get_lcore_state(lcore_id) != WAIT)
			continue;
		rc = lcore_state_create(dp, idx, lcore_id);
		if (rc != 0)
			return rc;
		idx++;
	}
	if (idx < dp->n_lcores) {
		djc_log(DJ_LOG_ERR, "dataplane", "%u queue pairs need %u free worker lcores, "
		       "EAL has %u (pass -l with more cores)", dp->n_lcores, dp->n_lcores, idx);
		return -EINVAL;
	}
	for (idx = 0; idx < dp->n_lcores; idx++) {
		rc = rte_eal_remote_launch(dp_lcore_main, dp->lcores[idx], dp->lcores[idx]->lcore_id);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int config_check(const struct dp_engine_config *cfg)
{
	struct dp_impair_config ic = {0};

	if (cfg->impair != NULL && cfg->impair[0] != '\0' &&
	    dp_impair_config_parse(cfg->impair, &ic) != 0) {
		djc_log(DJ_LOG_ERR, "dataplane", "bad impairment '%s'", cfg->impair);
		return -EINVAL;
	}
	if (cfg->stage_slots > DP_STAGE_MAX_SLOTS) {
		djc_log(DJ_LOG_ERR, "dataplane", "%u staging slots, at most %u", cfg->stage_slots,
		       DP_STAGE_MAX_SLOTS);
		return -EINVAL;
	}
	return 0;
}

/* DP_IDLE_DEFAULT as before cfg.idle existed; a nap length for the modes
 * that nap; rx interrupts asked of the port where lcores sleep on them. */
static void idle_config(struct dp_engine_config *cfg)
{
	if (cfg->idle != DP_IDLE_INTERRUPT || cfg->placer != NULL)
		cfg->caller_runs = false;
	if (cfg->idle == DP_IDLE_DEFAULT)
		cfg->idle = cfg->idle_sleep_us != 0 ? DP_IDLE_NAP : DP_IDLE_POLL;
	if (cfg->idle != DP_IDLE_POLL && cfg->idle_sleep_us == 0)
		cfg->idle_sleep_us = DP_IDLE_NAP_US;
	cfg->port.rx_intr = cfg->idle == DP_IDLE_INTERRUPT;
}

static void local_endpoint_fill(struct dp_engine *dp)
{
	static const uint8_t zero[6];
	struct rte_ether_addr mac;

	dp->local = dp->cfg.local;
	if (memcmp(dp->local.mac, zero, sizeof(zero)) == 0 &&
	    rte_eth_macaddr_get(dp->cfg.port.port_id, &mac) == 0)
		memcpy(dp->local.mac, mac.addr_bytes, sizeof(dp->local.mac));
	if (dp->local.port == 0)
		dp->local.port = DP_WIRE_UDP_PORT;
}

/* Queue q serves UDP port local.port + q: steer it there in hardware, or
 * hand frames over between lcores where the port cannot. */
static void steering_setup(struct dp_engine *dp)
{
	if (dp->n_lcores < 2)
		return;
	for (unsigned int q = 0; q < dp->n_lcores; q++)
		if (dp_port_steer_udp(dp->port, (uint16_t)(dp->local.port + q), (uint16_t)q) != 0)
			dp->sw_dispatch = true;
	djc_log(DJ_LOG_INFO, "dataplane", "port %u: %u queues, sessions steered %s",
	       dp->cfg.port.port_id, dp->n_lcores, dp->sw_dispatch ? "in software" : "by rte_flow");
}

int dp_engine_create(const struct dp_engine_config *cfg, struct dp_engine **out)
{
	struct dp_engine *dp;
	int rc;

	if (cfg == NULL || out == NULL)
		return -EINVAL;
	if ((rc = config_check(cfg)) != 0)
		return rc;
	/* DJ_DP_TRACE (only with -Ddp_trace): the arrays exist before any
	 * thread records. */
	rc = DP_TRACE_OPEN();
	if (rc != 0)
		return rc;
	dp = rte_zmalloc("dp_engine", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL)
		return -ENOMEM;
	dp->cfg = *cfg;
	if (!cfg->session_set)
		dp_channel_config_init(&dp->cfg.session);
	idle_config(&dp->cfg);
	pthread_mutex_init(&dp->lock, NULL);
	rc = dp_port_create(&dp->cfg.port, &dp->port);
	if (rc != 0) {
		dp_engine_destroy(dp);
		return rc;
	}
	dp->n_lcores = dp_port_get_config(dp->port)->nb_queues;
	dp->mtu = cfg->mtu ? cfg->mtu :
		  (uint16_t)(dp_port_get_config(dp->port)->frame_size - RTE_ETHER_HDR_LEN);
	local_endpoint_fill(dp);
	steering_setup(dp);
	if (cfg->link_timeout_ms != 0 &&
	    dp_port_wait_link(dp->port, (uint64_t)cfg->link_timeout_ms * 1000000ull, true) != 0)
		djc_log(DJ_LOG_WARN, "dataplane", "port %u: link still down after %u ms",
		       cfg->port.port_id, cfg->link_timeout_ms);
	rc = lcores_launch(dp);
	if (rc != 0) {
		dp_engine_destroy(dp);
		return rc;
	}
	dp->created_ns = djc_time_ns();
	*out = dp;
	return 0;
}

/* With the lcores stopped this thread owns every session: fail what is
 * left so no waiter hangs, then free. */
static void sessions_teardown(struct dp_engine *dp)
{
	struct dp_xfer_event ev[16];
	struct dp_session *ses;
	unsigned int n;

	while ((ses = dp->sessions) != NULL) {
		dp->sessions = ses->next;
		dp_channel_close(ses->s);
		while ((n = dp_channel_events(ses->s, ev, 16)) != 0)
			for (unsigned int i = 0; i < n; i++)
				dp_event_deliver(&ev[i]);
		session_put(ses);
	}
	while (dp->expected != NULL) {
		struct dp_op *op = dp->expected;

		dp->expected = op->next;
		expected_unlisted(op);
	}
}

/* With the port stopped its rings hold no frame: what is still not
 * released sits in a peer's ring (net_ring, memif) and stays leaked. */
static void orphans_free(struct dp_engine *dp)
{
	struct dp_op *op, *next;

	for (op = dp->orphans; op != NULL; op = next) {
		next = op->next;
		dp_send_pinned(dp, op->cookie, op->xfer_id);
	}
}

void dp_engine_quiesce(struct dp_engine *dp)
{
	if (dp == NULL)
		return;
	atomic_store(&dp->stop, 1);
	for (unsigned int i = 0; i < DP_MAX_LCORES; i++)
		if (dp->lcores[i] != NULL)
			rte_eal_wait_lcore(dp->lcores[i]->lcore_id);
}

void dp_engine_destroy(struct dp_engine *dp)
{
	int rc;

	if (dp == NULL)
		return;
	/* While the lcores still run, late rings come back as they drain. */
	if (!atomic_load(&dp->stop))
		dp_stage_drain_wait(dp, DRAIN_AT_DESTROY_NS);
	dp_engine_quiesce(dp);
	/* Queued GPU copies land before waiters hear of their transfers. */
	for (unsigned int i = 0; i < DP_MAX_LCORES; i++)
		lcore_placer_fini(dp, dp->lcores[i]);
	sessions_teardown(dp);
	dp_port_destroy(dp->port);
	orphans_free(dp);
	/* Frames the port never gave back (the peer's ring of a net_ring
	 * pair, a peer that stopped polling) may still point into a ring. */
	dp_stage_abandon_draining(dp);
	for (unsigned int i = 0; i < DP_MAX_LCORES; i++)
		lcore_state_destroy(dp, dp->lcores[i]);
	pthread_mutex_destroy(&dp->lock);
	rte_free(dp);
	/* Every thread that records stopped (lcores) or is this one. */
	rc = DP_TRACE_DUMP();
	if (rc != 0)
		djc_log(DJ_LOG_ERR, "dataplane", "transfer trace: %s", dj_strerror(rc));
}

/* ---- endpoint, stats --------------------------------------------------------------------- */

void dp_engine_endpoint(const struct dp_engine *dp, struct dp_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	memcpy(ep->mac, dp->local.mac, sizeof(ep->mac));
	ep->ipv4 = rte_cpu_to_be_32(dp->local.ipv4);
	ep->udp_port = dp->local.port;
	ep->n_queues = (uint16_t)dp->n_lcores;
	ep->mtu = dp->mtu;
}

static void proto_stats_add(struct dp_proto_stats *to, const struct dp_proto_stats *from)
{
	/* The RTT fields sum meaninglessly: the last session's instead. */
	proto_counters_add(to, from, NULL);
	to->srtt_ns = from->srtt_ns;
	to->rttvar_ns = from->rttvar_ns;
	to->rto_ns = from->rto_ns;
}

int dp_engine_lcore_stats(const struct dp_engine *dp, unsigned int idx,
			     struct dp_engine_stats *st)
{
	const struct dp_lcore *lc;

	if (idx >= dp->n_lcores)
		return -ENOENT;
	lc = dp->lcores[idx];
	dp_seq_read(&lc->stats_seq, st, &lc->stats_pub, sizeof(*st));
	return 0;
}

void dp_engine_get_stats(const struct dp_engine *dp, struct dp_engine_stats *st,
			    struct dp_proto_stats *proto)
{
	struct dp_engine *mdp = (struct dp_engine *)dp;

	struct dp_engine_stats one;
	struct dp_proto_stats snap;

	memset(st, 0, sizeof(*st));
	for (unsigned int i = 0; i < dp->n_lcores; i++) {
		dp_engine_lcore_stats(dp, i, &one);
		dp_engine_stats_add(st, &one);
	}
	if (proto == NULL)
		return;
	pthread_mutex_lock(&mdp->lock);
	*proto = dp->proto_closed;
	for (struct dp_session *ses = dp->sessions; ses != NULL; ses = ses->next) {
		dp_seq_read(&ses->snap_seq, &snap, &ses->snap_pub, sizeof(snap));
		proto_stats_add(proto, &snap);
	}
	pthread_mutex_unlock(&mdp->lock);
}
