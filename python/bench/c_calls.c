/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The C client's per-call cost, the baseline of bench_overhead.py: the same
 * small requests the Python bench makes, through the public API only
 * (include/djinn/djinn.h), against the same server, timed here so that
 * process start-up is not counted. Built by bench_overhead.py with the
 * system compiler against build/libdjinn.so.
 *
 *   c_calls PORT ITERS   ->  one JSON object: microseconds per call, wall
 *                           clock and the calling thread's CPU time (_cpu)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "djinn/djinn.h"

static double clock_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Wall time and this thread's CPU time of a stretch of calls. */
struct span {
	double wall, cpu;
};

static struct span span_start(void)
{
	return (struct span){clock_us(CLOCK_MONOTONIC), clock_us(CLOCK_THREAD_CPUTIME_ID)};
}

static void span_print(const char *name, struct span s, int iters, const char *sep)
{
	printf("\"%s\": %.3f, \"%s_cpu\": %.3f%s", name,
	       (clock_us(CLOCK_MONOTONIC) - s.wall) / iters, name,
	       (clock_us(CLOCK_THREAD_CPUTIME_ID) - s.cpu) / iters, sep);
}

/* A FREE nobody waits for, as a collected Python RemoteTensor sends. */
static void free_later(struct dj_conn *conn, uint64_t h)
{
	struct dj_future *f;

	if (dj_free_async(conn, h, NULL, NULL, &f) == 0)
		dj_future_release(f);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "c_calls: %s: %s\n", what, dj_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	static float page[1024], back[1024];
	struct dj_tensor one = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
				.data = page, .mem = DJ_MEM_HOST};
	struct dj_tensor kib4 = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1024}},
				 .data = page, .mem = DJ_MEM_HOST};
	struct dj_tensor out = kib4;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn;
	uint64_t h1, h4, h;
	struct span t;
	int iters, rc;

	if (argc != 3)
		return fprintf(stderr, "usage: c_calls PORT ITERS\n"), 2;
	iters = atoi(argv[2]);
	out.data = back;
	dj_client_options_init(&o);
	o.port = (uint16_t)atoi(argv[1]);
	o.path = DJ_PATH_TCP;
	if ((rc = dj_client_create(&o, &cl)) != 0 || (rc = dj_connect(cl, &conn)) != 0)
		return fail("connect", rc);
	if ((rc = dj_put(conn, &one, &h1)) != 0 || (rc = dj_put(conn, &kib4, &h4)) != 0)
		return fail("put", rc);

	printf("{");
	t = span_start();
	for (int i = 0; i < iters; i++) {
		if ((rc = dj_execute(conn, "relu", &h1, 1, NULL, &h, NULL)) != 0)
			return fail("execute", rc);
		free_later(conn, h);
	}
	span_print("execute", t, iters, ", ");

	t = span_start();
	for (int i = 0; i < iters; i++) {
		struct dj_future *f;

		if ((rc = dj_execute_async(conn, "relu", &h1, 1, NULL, NULL, NULL, &f)) != 0)
			return fail("execute_async", rc);
		rc = dj_future_wait(f, -1);
		if (rc == 0)
			rc = dj_future_handle(f, &h, NULL);
		dj_future_release(f);
		if (rc != 0)
			return fail("execute_async", rc);
		free_later(conn, h);
	}
	span_print("execute_async", t, iters, ", ");

	t = span_start();
	for (int i = 0; i < iters; i++) {
		if ((rc = dj_put(conn, &kib4, &h)) != 0)
			return fail("put 4K", rc);
		free_later(conn, h);
	}
	span_print("put_4k", t, iters, ", ");

	t = span_start();
	for (int i = 0; i < iters; i++)
		if ((rc = dj_get(conn, h4, &out)) != 0)
			return fail("get 4K", rc);
	span_print("get_4k", t, iters, "}\n");
	dj_conn_close(conn);
	dj_client_destroy(cl);
	return 0;
}
