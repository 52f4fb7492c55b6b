/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staging rings of GPU-source sends (struct dp_stage in engine.h). Run by
 * the sending control thread only: the lcore sees nothing of this but the
 * ready mark it reads and the per-slot reference counts its frames hold.
 *
 * Chunk c goes to slot c % n_slots. Copies start in source order on one
 * stream, so they land in order too, and ready only ever grows by whole
 * chunks (the last one may be short). A slot is reused for chunk c once
 * chunk c - n_slots is acknowledged (the session never sends it again) and
 * its last frame is gone (a queued retransmission may still read it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"
#include "txframe.h"

#define STAGE_CHUNK_DEFAULT (1u << 20)
#define STAGE_LOOKAHEAD 2u
#define STAGE_MIN_SLOTS 4u
/* Frames normally let go of a ring within microseconds of the send's end;
 * past this the ring drains on the side (dp->draining) instead. */
#define STAGE_DRAIN_GRACE_NS (2ull * 1000 * 1000)
#define STAGE_SETTLE_NAP_NS 20000l

static void slot_released(void *addr, void *opaque)
{
	/* The ring keeps its own reference until it is destroyed, and reads
	 * the count instead of waiting for this. */
	(void)addr;
	(void)opaque;
}

/* Whole fragments, about cfg.stage_chunk bytes, no more than the tensor. */
static uint64_t chunk_bytes(const struct dp_engine *dp, uint64_t len, uint32_t frag_size)
{
	uint64_t want = dp->cfg.stage_chunk ? dp->cfg.stage_chunk : STAGE_CHUNK_DEFAULT;
	uint64_t chunk = want < frag_size ? frag_size : want / frag_size * frag_size;
	uint64_t whole = (len + frag_size - 1) / frag_size * frag_size;

	return chunk < whole ? chunk : whole;
}

/* The window in flight plus look-ahead, so that the wire never waits for a
 * slot on a link where the window is what limits the rate. */
static unsigned int slot_count(const struct dp_engine *dp, uint64_t chunk, uint32_t frag_size,
			       uint64_t n_chunks)
{
	uint64_t window = (uint64_t)dp->cfg.session.window * frag_size;
	uint64_t n = dp->cfg.stage_slots ? dp->cfg.stage_slots :
		     (window + chunk - 1) / chunk + STAGE_LOOKAHEAD;

	if (dp->cfg.stage_slots == 0 && n < STAGE_MIN_SLOTS)
		n = STAGE_MIN_SLOTS;
	if (n > DP_STAGE_MAX_SLOTS)
		n = DP_STAGE_MAX_SLOTS;
	return (unsigned int)(n < n_chunks ? n : n_chunks);
}

int dp_stage_create(const struct dp_engine *dp, const void *src, uint64_t len,
		    uint32_t frag_size, struct dp_stage **out)
{
	const struct dp_engine_placer *pl = dp->cfg.placer;
	uint64_t chunk, n_chunks;
	unsigned int n;
	struct dp_stage *st;
	void *host;
	int rc;

	/* Before the sizes: they divide by both. */
	if (len == 0 || frag_size == 0)
		return -EINVAL;
	chunk = chunk_bytes(dp, len, frag_size);
	n_chunks = (len + chunk - 1) / chunk;
	n = slot_count(dp, chunk, frag_size, n_chunks);
	st = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*st) + n * sizeof(st->slot[0]));
	if (st == NULL)
		return -ENOMEM;
	memset(st, 0, sizeof(*st));
	rc = pl->stage_get(pl->ctx, chunk, n, dp->port->socket, &st->handle, &host);
	if (rc != 0) {
		free(st);
		return rc;
	}
	st->placer = pl;
	st->host = host;
	st->gpu = src;
	st->len = len;
	st->chunk = chunk;
	st->n_chunks = n_chunks;
	st->n_slots = n;
	st->src.wrap = n * chunk;
	for (unsigned int i = 0; i < n; i++)
		dp_txframe_owner_init(&st->slot[i].shinfo, slot_released, st);
	st->st.staged_sends = 1;
	st->st.max_stage_bytes = n * chunk;
	*out = st;
	return 0;
}

static uint64_t chunk_len(const struct dp_stage *st, uint64_t c)
{
	uint64_t off = c * st->chunk;

	return st->len - off < st->chunk ? st->len - off : st->chunk;
}

/* Slot of chunk c free: the chunk it held acknowledged, its frames gone. */
static bool slot_free(const struct dp_stage *st, uint64_t c)
{
	uint64_t acked;

	if (c < st->n_slots)
		return true;
	acked = __atomic_load_n(&st->src.acked, __ATOMIC_ACQUIRE);
	if (acked < (c - st->n_slots + 1) * st->chunk)
		return false;
	if (rte_mbuf_ext_refcnt_read(&st->slot[c % st->n_slots].shinfo) != 1)
		return false;
	/* The frames' reads of the slot happen before our copy writes it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return true;
}

/* 1: the next chunk's copy started, 0: it waits for its slot or none is
 * left, or the error of the copy. */
static int copy_start(struct dp_stage *st)
{
	uint64_t c = st->issued;
	unsigned int k = (unsigned int)(c % st->n_slots);
	int rc;

	if (c == st->n_chunks)
		return 0;
	if (!slot_free(st, c)) {
		st->st.ring_waits += !st->waiting;
		st->waiting = true;
		return 0;
	}
	rc = st->placer->stage_copy(st->handle, k, st->host + (uint64_t)k * st->chunk,
				    st->gpu + c * st->chunk, chunk_len(st, c));
	if (rc != 0)
		return rc;
	st->waiting = false;
	st->st.slot_reuses += c >= st->n_slots;
	st->issued++;
	return 1;
}

static int copies_land(struct dp_stage *st)
{
	uint64_t before = st->landed;

	while (st->landed < st->issued) {
		int rc = st->placer->stage_poll(st->handle,
						(unsigned int)(st->landed % st->n_slots));

		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		st->landed++;
	}
	if (st->landed == before)
		return 0;
	st->st.chunks += st->landed - before;
	__atomic_store_n(&st->src.ready, st->landed == st->n_chunks ? st->len :
			 st->landed * st->chunk, __ATOMIC_RELEASE);
	return (int)(st->landed - before);
}

int dp_stage_pump(struct dp_stage *st)
{
	int moved = 0, started;

	/* Publish what landed between two starts: a copy that completes at
	 * once (host memory) must not wait for the whole ring to be issued. */
	do {
		int landed = copies_land(st);

		if (landed < 0)
			return landed;
		started = copy_start(st);
		if (started < 0)
			return started;
		moved += landed + started;
	} while (started > 0);
	return moved;
}

bool dp_stage_idle(const struct dp_stage *st)
{
	for (unsigned int i = 0; i < st->n_slots; i++)
		if (rte_mbuf_ext_refcnt_read(&st->slot[i].shinfo) != 1)
			return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return true;
}

void dp_stage_stats_add(struct dp_engine *dp, const struct dp_engine_stage_stats *add)
{
	struct dp_engine_stage_stats *to = &dp->stage_stats;

	pthread_mutex_lock(&dp->lock);
	to->staged_sends += add->staged_sends;
	to->whole_sends += add->whole_sends;
	to->chunks += add->chunks;
	to->slot_reuses += add->slot_reuses;
	to->ring_waits += add->ring_waits;
	to->copy_failures += add->copy_failures;
	to->late_rings += add->late_rings;
	if (add->max_stage_bytes > to->max_stage_bytes)
		to->max_stage_bytes = add->max_stage_bytes;
	pthread_mutex_unlock(&dp->lock);
}

/* The placer's stage back to it, the ring freed: no frame reads it. */
static void stage_free(struct dp_stage *st)
{
	st->placer->stage_put(st->placer->ctx, st->handle);
	free(st);
}

void dp_stage_settle(struct dp_stage *st)
{
	struct timespec nap = {.tv_nsec = STAGE_SETTLE_NAP_NS};

	/* A failed copy no longer runs: count it landed. A GPU copy always
	 * ends one way or the other, so this wait is bounded. */
	while (st->landed < st->issued) {
		if (st->placer->stage_poll(st->handle,
					   (unsigned int)(st->landed % st->n_slots)) != 0)
			st->landed++;
		else
			nanosleep(&nap, NULL);
	}
}

static bool idle_within(const struct dp_stage *st, uint64_t ns)
{
	struct timespec nap = {.tv_nsec = STAGE_SETTLE_NAP_NS};
	uint64_t start = djc_time_ns();

	while (!dp_stage_idle(st)) {
		if (djc_time_ns() - start >= ns)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

unsigned int dp_stage_reap(struct dp_engine *dp)
{
	struct dp_stage **pp, *st, *idle = NULL;
	unsigned int left = 0;

	pthread_mutex_lock(&dp->lock);
	for (pp = &dp->draining; (st = *pp) != NULL;) {
		if (dp_stage_idle(st)) {
			*pp = st->next;
			st->next = idle;
			idle = st;
		} else {
			pp = &st->next;
			left++;
		}
	}
	pthread_mutex_unlock(&dp->lock);
	/* stage_put() may wait for the GPU: not under the engine's lock. */
	while ((st = idle) != NULL) {
		idle = st->next;
		stage_free(st);
	}
	return left;
}

void dp_stage_finish(struct dp_engine *dp, struct dp_stage *st)
{
	if (st == NULL)
		return;
	dp_stage_stats_add(dp, &st->st);
	if (idle_within(st, STAGE_DRAIN_GRACE_NS)) {
		stage_free(st);
		return;
	}
	/* Frames outlived the send (a retransmission still queued, a peer
	 * slow to drain its ring): the ring waits on the side instead of the
	 * caller, and goes back once the last frame is gone. */
	pthread_mutex_lock(&dp->lock);
	st->next = dp->draining;
	dp->draining = st;
	dp->stage_stats.late_rings++;
	pthread_mutex_unlock(&dp->lock);
}

/* Rings leaked for good: their frames never came back (see below). Kept
 * listed and counted so that the memory stays accounted for (and leak
 * checkers see it as reachable, which it is, from the stranded mbufs). */
static struct dp_stage *abandoned;
static unsigned int n_abandoned;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

void dp_stage_drain_wait(struct dp_engine *dp, uint64_t timeout_ns)
{
	struct timespec nap = {.tv_nsec = STAGE_SETTLE_NAP_NS};
	uint64_t start = djc_time_ns();

	while (dp_stage_reap(dp) != 0 && djc_time_ns() - start < timeout_ns)
		nanosleep(&nap, NULL);
}

void dp_stage_abandon_draining(struct dp_engine *dp)
{
	unsigned int n = 0, total;
	struct dp_stage *st;

	dp_stage_reap(dp);
	pthread_mutex_lock(&abandoned_lock);
	while ((st = dp->draining) != NULL) {
		dp->draining = st->next;
		st->next = abandoned;
		abandoned = st;
		n++;
	}
	n_abandoned += n;
	total = n_abandoned;
	pthread_mutex_unlock(&abandoned_lock);
	if (n != 0)
		djc_log(DJ_LOG_WARN, "dataplane", "%u staging rings still read by stranded frames: "
		       "leaked (%u in this process)", n, total);
}

void dp_engine_stage_stats(const struct dp_engine *dp, struct dp_engine_stage_stats *st)
{
	struct dp_engine *mdp = (struct dp_engine *)dp;

	pthread_mutex_lock(&mdp->lock);
	*st = dp->stage_stats;
	pthread_mutex_unlock(&mdp->lock);
}
