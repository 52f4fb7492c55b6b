/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parts of one job on several threads at once: the slices of a
 * multi-threaded memcpy (memcpy mode, the baseline of striped transfers).
 * The caller runs part 0 and n - 1 threads the others; barriers start and
 * end every round, so a round's clock covers its slowest part.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/djc.h"
#include "bench.h"

struct bench_pool;

struct pool_worker {
	struct bench_pool *pool;
	unsigned int idx;
};

struct bench_pool {
	unsigned int n;
	struct pool_worker workers[BENCH_MAX_STRIPES];
	pthread_t th[BENCH_MAX_STRIPES];
	pthread_barrier_t start, end;
	bench_part_fn fn;
	void *arg;
	int rc[BENCH_MAX_STRIPES];
	bool quit;
};

static void *pool_main(void *arg)
{
	const struct pool_worker *w = arg;
	struct bench_pool *p = w->pool;

	for (;;) {
		pthread_barrier_wait(&p->start);
		if (p->quit)
			return NULL;
		p->rc[w->idx] = p->fn(w->idx, p->arg);
		pthread_barrier_wait(&p->end);
	}
}

int bench_pool_create(unsigned int n, struct bench_pool **out)
{
	struct bench_pool *p;
	unsigned int started = 1;

	if (n == 0 || n > BENCH_MAX_STRIPES)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->n = n;
	if (pthread_barrier_init(&p->start, NULL, n) != 0)
		goto error;
	if (pthread_barrier_init(&p->end, NULL, n) != 0) {
		pthread_barrier_destroy(&p->start);
		goto error;
	}
	for (; started < n; started++) {
		p->workers[started] = (struct pool_worker){p, started};
		if (pthread_create(&p->th[started], NULL, pool_main, &p->workers[started]) != 0)
			break;
	}
	if (started == n) {
		*out = p;
		return 0;
	}
	/* The threads already started wait on a barrier that can never
	 * fill: a benchmark without its threads cannot go on. */
	djc_log(DJ_LOG_ERR, "djinn-bench", "could start only %u of %u threads", started, n);
	abort();
error:
	free(p);
	return -ENOMEM;
}

int bench_pool_run(struct bench_pool *p, bench_part_fn fn, void *arg)
{
	p->fn = fn;
	p->arg = arg;
	pthread_barrier_wait(&p->start);
	p->rc[0] = fn(0, arg);
	pthread_barrier_wait(&p->end);
	for (unsigned int i = 0; i < p->n; i++)
		if (p->rc[i] != 0)
			return p->rc[i];
	return 0;
}

void bench_pool_destroy(struct bench_pool *p)
{
	if (p == NULL)
		return;
	p->quit = true;
	pthread_barrier_wait(&p->start);
	for (unsigned int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_barrier_destroy(&p->start);
	pthread_barrier_destroy(&p->end);
	free(p);
}

void bench_part(uint64_t size, unsigned int parts, unsigned int i, uint64_t *off,
		uint64_t *len)
{
	/* Whole cache lines per part, so no two threads write one line. */
	uint64_t chunk = ((size + parts - 1) / parts + 63) & ~63ull;

	*off = (uint64_t)i * chunk;
	*len = *off < size ? (chunk < size - *off ? chunk : size - *off) : 0;
	if (*off > size)
		*off = size;
}
