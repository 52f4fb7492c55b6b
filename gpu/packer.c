/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The chunk packer (gpu/packer.h): fragments appended to pinned chunks,
 * each chunk's runs of contiguous destination bytes handed to the copy
 * engine when it is full, chunks reused round-robin once their fence says
 * the copies are done.
 *
 * Chunks are numbered by a sequence: 'seq' is the chunk being filled,
 * 'tail' the oldest one in flight; chunk number s lives at slot
 * s % n_chunks. Slot seq is free to write exactly when seq - tail <
 * n_chunks, which is what chunk_ready() waits for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rte_pause.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu_internal.h"
#include "packer.h"

#define MIN_CHUNK (64u * 1024)
#define DEFAULT_RUNS 1024
#define DEFAULT_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)

/* Bytes of the current chunk bound for dst, from offset off in the chunk. */
struct run {
	uint8_t *dst;
	size_t off;
	size_t len;
};

struct djg_packer {
	struct djg_packer_conf conf;
	uint64_t seq;        /* the chunk being filled */
	uint64_t tail;       /* the oldest chunk in flight; == seq: none */
	size_t fill;         /* bytes in the current chunk */
	uint32_t n_runs;
	bool failed;         /* a copy failed since the last drain */
	struct djg_packer_stats stats;
	struct run runs[];   /* [max_runs], the current chunk's */
};

int djg_packer_create(const struct djg_packer_conf *conf, struct djg_packer **out)
{
	struct djg_packer_conf c;
	struct djg_packer *p;

	if (conf == NULL || out == NULL)
		return -EINVAL;
	c = *conf;
	if (c.max_runs == 0)
		c.max_runs = DEFAULT_RUNS;
	if (c.timeout_ns == 0)
		c.timeout_ns = DEFAULT_TIMEOUT_NS;
	if (c.mem == NULL || c.chunk_size < MIN_CHUNK || c.n_chunks < 2 ||
	    c.n_chunks > DJG_PACKER_MAX_CHUNKS || c.ops == NULL || c.ops->copy == NULL ||
	    c.ops->fence == NULL || c.ops->done == NULL)
		return -EINVAL;
	p = calloc(1, sizeof(*p) + (size_t)c.max_runs * sizeof(p->runs[0]));
	if (p == NULL)
		return -ENOMEM;
	p->conf = c;
	*out = p;
	return 0;
}

static uint8_t *chunk_at(const struct djg_packer *p, uint64_t seq)
{
	return p->conf.mem + (seq % p->conf.n_chunks) * p->conf.chunk_size;
}

/* Retire the chunks in flight whose fences are done; never waits. */
static void poll_tail(struct djg_packer *p)
{
	while (p->tail != p->seq) {
		int rc = p->conf.ops->done(p->conf.ctx, (unsigned int)(p->tail % p->conf.n_chunks));

		if (rc == 0)
			return;
		if (rc < 0) {
			/* The slot is reusable: the copy engine is done with it,
			 * one way or the other. */
			p->stats.failures++;
			p->failed = true;
		}
		p->tail++;
	}
}

/* Wait until at most @in_flight chunks are in flight. */
static int wait_tail(struct djg_packer *p, uint64_t in_flight)
{
	uint64_t deadline = 0;

	poll_tail(p);
	while (p->seq - p->tail > in_flight) {
		uint64_t now = djc_time_ns();

		if (deadline == 0)
			deadline = now + p->conf.timeout_ns;
		else if (now > deadline)
			return -ETIMEDOUT;
		rte_pause();
		poll_tail(p);
	}
	return 0;
}

/* Hand the current chunk's runs to the copy engine and start the next
 * chunk (not yet waited for). */
static int send(struct djg_packer *p, bool flush)
{
	const struct djg_packer_ops *ops = p->conf.ops;
	const uint8_t *base = chunk_at(p, p->seq);
	int rc = 0;

	if (p->fill == 0)
		return 0;
	for (uint32_t i = 0; i < p->n_runs && rc == 0; i++)
		rc = ops->copy(p->conf.ctx, p->runs[i].dst, base + p->runs[i].off, p->runs[i].len);
	if (rc == 0)
		rc = ops->fence(p->conf.ctx, (unsigned int)(p->seq % p->conf.n_chunks));
	p->stats.chunks++;
	p->stats.copies += p->n_runs;
	p->stats.partial += flush;
	if (rc != 0) {
		p->stats.failures++;
		p->failed = true;
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "packer: chunk of %zu B not sent: %s", p->fill,
		       dj_strerror(rc));
	}
	p->seq++;
	p->fill = 0;
	p->n_runs = 0;
	return rc != 0 ? -EIO : 0;
}

/* The current chunk's slot is free to write: no copy of its last use is
 * still in flight. */
static int chunk_ready(struct djg_packer *p)
{
	if (p->seq - p->tail < p->conf.n_chunks)
		return 0;
	poll_tail(p);
	if (p->seq - p->tail < p->conf.n_chunks)
		return 0;
	p->stats.waits++;
	return wait_tail(p, p->conf.n_chunks - 1);
}

int djg_packer_add(struct djg_packer *p, void *dst, const void *src, uint32_t len)
{
	struct run *last;
	int rc = 0;

	if (len > p->conf.chunk_size)
		return -E2BIG;
	last = p->n_runs > 0 ? &p->runs[p->n_runs - 1] : NULL;
	if (last != NULL && last->dst + last->len == (uint8_t *)dst &&
	    p->fill + len <= p->conf.chunk_size) {
		last->len += len;
	} else {
		if (p->fill + len > p->conf.chunk_size || p->n_runs == p->conf.max_runs)
			rc = send(p, false);
		if (p->fill == 0) {
			int w = chunk_ready(p);

			if (w != 0)
				return w;
		}
		p->runs[p->n_runs++] = (struct run){.dst = dst, .off = p->fill, .len = len};
	}
	memcpy(chunk_at(p, p->seq) + p->fill, src, len);
	p->fill += len;
	p->stats.fragments++;
	p->stats.bytes += len;
	/* A full chunk goes at once: its copy overlaps the next one's packing. */
	if (p->fill == p->conf.chunk_size) {
		int r = send(p, false);

		rc = rc != 0 ? rc : r;
	}
	return rc;
}

int djg_packer_drain(struct djg_packer *p)
{
	int rc = send(p, true);
	int w = wait_tail(p, 0);

	if (w != 0)
		return w;
	rc = p->failed ? -EIO : rc;
	p->failed = false;
	return rc;
}

unsigned int djg_packer_in_flight(struct djg_packer *p)
{
	poll_tail(p);
	return (unsigned int)(p->seq - p->tail);
}

void djg_packer_stats_get(const struct djg_packer *p, struct djg_packer_stats *st)
{
	*st = p->stats;
}

void djg_packer_destroy(struct djg_packer *p)
{
	int rc;

	if (p == NULL)
		return;
	rc = djg_packer_drain(p);
	if (rc != 0)
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "packer: destroyed with copies unfinished: %s",
		       dj_strerror(rc));
	free(p);
}
