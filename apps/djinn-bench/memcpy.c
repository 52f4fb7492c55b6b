/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcpy: the host's copy rate with --threads threads, each copying its
 * slice of a --sizes buffer, timed like a transfer (all slices done). The
 * baseline of a transfer striped over as many queues: each queue's lcore
 * copies its part once on each side (no EAL needed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/djc.h"
#include "bench.h"

struct copy_job {
	uint8_t *dst;
	const uint8_t *src;
	uint64_t size;
	unsigned int parts;
};

static int copy_part(unsigned int i, void *arg)
{
	const struct copy_job *j = arg;
	uint64_t off, len;

	bench_part(j->size, j->parts, i, &off, &len);
	memcpy(j->dst + off, j->src + off, len);
	return 0;
}

int bench_memcpy(const struct bench_opts *o, struct bench_result *r)
{
	struct copy_job job = {.parts = o->threads};
	struct bench_pool *pool = NULL;
	uint64_t max = 0;
	uint8_t *src, *dst;
	int rc;

	r->mode = "memcpy";
	for (unsigned int s = 0; s < o->n_sizes; s++)
		max = o->sizes[s] > max ? o->sizes[s] : max;
	src = bench_alloc(max);
	dst = bench_alloc(max);
	rc = src != NULL && dst != NULL ? bench_pool_create(o->threads, &pool) : -ENOMEM;
	for (unsigned int s = 0; rc == 0 && s < o->n_sizes; s++) {
		unsigned int iters = o->iters ? o->iters : bench_auto_iters(o->sizes[s]);
		uint64_t *ns = calloc(iters, sizeof(*ns));

		if (ns == NULL) {
			rc = -ENOMEM;
			break;
		}
		job = (struct copy_job){dst, src, o->sizes[s], o->threads};
		bench_pattern_fill(src, job.size, job.size);
		for (unsigned int i = 0; i < iters && rc == 0; i++) {
			uint64_t t0 = djc_time_ns();

			rc = bench_pool_run(pool, copy_part, &job);
			ns[i] = djc_time_ns() - t0;
		}
		if (rc == 0 && !bench_pattern_check(dst, job.size, job.size))
			rc = -EIO;
		if (rc == 0)
			bench_row_fill(&r->rows[r->n_rows++], job.size, iters, ns);
		free(ns);
	}
	bench_pool_destroy(pool);
	bench_free(src, max);
	bench_free(dst, max);
	return rc;
}
