/* SPDX-License-Identifier: BSD-3-Clause */
/* The resident tensor store: handles, isolation, accounting, limits, threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "tensor/store.h"
#include "harness.h"

/* A backend that counts, can be told to fail, and marks its memory GPU. */
struct counting {
	long allocs, frees;
	long fail_next;
	size_t live_bytes;
	pthread_mutex_t lock;
};

static struct counting counter = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int count_alloc(void *ctx, size_t bytes, int zero, void **ptr)
{
	struct counting *c = ctx;
	int fail;

	pthread_mutex_lock(&c->lock);
	fail = c->fail_next > 0 && c->fail_next-- > 0;
	if (!fail)
		c->allocs++;
	pthread_mutex_unlock(&c->lock);
	if (fail)
		return -ENOMEM;
	/* Size header in front so free can account the bytes. */
	size_t *p = zero ? calloc(1, bytes + sizeof(size_t)) : malloc(bytes + sizeof(size_t));

	if (p == NULL)
		return -ENOMEM;
	p[0] = bytes;
	pthread_mutex_lock(&c->lock);
	c->live_bytes += bytes;
	pthread_mutex_unlock(&c->lock);
	*ptr = p + 1;
	return 0;
}

static void count_free(void *ctx, void *ptr)
{
	struct counting *c = ctx;
	size_t *p = (size_t *)ptr - 1;

	pthread_mutex_lock(&c->lock);
	c->frees++;
	c->live_bytes -= p[0];
	pthread_mutex_unlock(&c->lock);
	free(p);
}

static int count_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return 0;
}

static const struct tn_store_backend counting_backend = {
	.name = "counting", .mem = DJ_MEM_GPU, .ctx = &counter,
	.alloc = count_alloc, .free = count_free, .upload = count_copy, .download = count_copy,
};

static struct dj_tensor_desc vec(enum dj_dtype t, int64_t n)
{
	return (struct dj_tensor_desc){.dtype = t, .ndim = 1, .shape = {n}};
}

static struct tn_store *make_store(uint64_t total, uint64_t per_session, uint32_t max_tensors)
{
	struct tn_store_config cfg = {.backend = &counting_backend, .total_limit = total,
				      .session_limit = per_session,
				      .session_max_tensors = max_tensors};
	struct tn_store *s = NULL;

	CU_ASSERT_EQUAL_FATAL(tn_store_create(&cfg, &s), 0);
	return s;
}

/* Every test ends with the backend balanced: nothing leaked, nothing twice. */
static void destroy_and_check(struct tn_store *s)
{
	tn_store_destroy(s);
	CU_ASSERT_EQUAL(counter.allocs, counter.frees);
	CU_ASSERT_EQUAL(counter.live_bytes, 0);
}

static void test_put_read_round_trip(void)
{
	struct tn_store *s = make_store(0, 0, 0);
	float data[5] = {1, 2, 3, 4.5f, -6}, back[5] = {0};
	struct dj_tensor host = {.desc = vec(DJ_DTYPE_FLOAT32, 5), .data = data};
	struct dj_tensor_desc d;
	uint64_t sess, h;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_put(s, sess, &host, &h), 0);
	CU_ASSERT_NOT_EQUAL(h, 0);
	CU_ASSERT_EQUAL(tn_store_read(s, sess, h, back, sizeof(back), &d), 0);
	CU_ASSERT_EQUAL(memcmp(back, data, sizeof(data)), 0);
	CU_ASSERT(dj_tensor_desc_equal(&d, &host.desc));
	CU_ASSERT_EQUAL(tn_store_read(s, sess, h, back, sizeof(back) - 1, NULL), -ERANGE);
	/* Partial writes at an offset, as the data plane lands fragments. */
	CU_ASSERT_EQUAL(tn_store_write(s, sess, h, 8, &data[0], 4), 0);
	CU_ASSERT_EQUAL(tn_store_read(s, sess, h, back, sizeof(back), NULL), 0);
	CU_ASSERT_EQUAL(back[2], 1.0f);
	CU_ASSERT_EQUAL(tn_store_write(s, sess, h, 17, data, 4), -ERANGE);
	CU_ASSERT_EQUAL(tn_store_write(s, sess, h, SIZE_MAX, data, 4), -ERANGE);
	struct tn_store_ref *ref;
	struct dj_tensor view;

	CU_ASSERT_EQUAL(tn_store_acquire(s, sess, h, &ref, &view), 0);
	CU_ASSERT_EQUAL(view.mem, DJ_MEM_GPU);
	CU_ASSERT_EQUAL(((float *)view.data)[3], 4.5f);
	tn_store_release(s, ref);
	/* Zero-size tensors are legal. */
	struct dj_tensor_desc empty = vec(DJ_DTYPE_INT64, 0);

	CU_ASSERT_EQUAL(tn_store_alloc(s, sess, &empty, &h), 0);
	CU_ASSERT_EQUAL(tn_store_read(s, sess, h, NULL, 0, &d), 0);
	CU_ASSERT_EQUAL(d.shape[0], 0);
	destroy_and_check(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_handles_unique_never_reused(void)
{
	enum { N = 20000 };
	struct tn_store *s = make_store(0, 0, 0);
	struct dj_tensor_desc d = vec(DJ_DTYPE_INT32, 1);
	uint64_t *seen = malloc(N * sizeof(*seen)), sess;
	int low_bits_vary = 0;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	/* Allocate and free at once: a reusing allocator would hand the same
	 * handle back every time. */
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, sess, &d, &seen[i]), 0);
		CU_ASSERT_EQUAL_FATAL(tn_store_free(s, sess, seen[i]), 0);
		CU_ASSERT_EQUAL(tn_store_free(s, sess, seen[i]), -DJ_EHANDLE);
		low_bits_vary |= i > 0 && (seen[i] & 0xffff) != ((seen[i - 1] + 1) & 0xffff);
	}
	qsort(seen, N, sizeof(*seen), cmp_u64);
	for (int i = 1; i < N; i++)
		CU_ASSERT_FATAL(seen[i] != seen[i - 1] && seen[i] != sess);
	CU_ASSERT_NOT_EQUAL(seen[0], 0);
	CU_ASSERT(low_bits_vary); /* not a plain counter */
	free(seen);
	destroy_and_check(s);
}

static void test_session_isolation(void)
{
	struct tn_store *s = make_store(0, 0, 0);
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT16, 8), got;
	uint64_t a, b, h;
	struct tn_store_ref *ref;
	char buf[16];

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &a), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &b), 0);
	CU_ASSERT_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, a, &d, &h), 0);
	CU_ASSERT_EQUAL(tn_store_acquire(s, b, h, &ref, NULL), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_read(s, b, h, buf, sizeof(buf), NULL), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_write(s, b, h, 0, buf, 2), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_describe(s, b, h, &got), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_free(s, b, h), -DJ_EHANDLE);
	/* Closing b leaves a's tensor alone. */
	CU_ASSERT_EQUAL(tn_store_session_close(s, b), 0);
	CU_ASSERT_EQUAL(tn_store_describe(s, a, h, &got), 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &d, &h), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_session_close(s, b), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_alloc(s, 12345, &d, &h), -DJ_EHANDLE);
	destroy_and_check(s);
}

static void test_limits_and_accounting(void)
{
	struct tn_store *s = make_store(1500, 1000, 3);
	struct tn_store_usage u;
	uint64_t a, b, h1, h2, h3;
	struct dj_tensor_desc d600 = vec(DJ_DTYPE_FLOAT32, 150), d400 = vec(DJ_DTYPE_INT64, 50);

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &a), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 2000, &b), 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &d600, &h1), 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &d600, &h2), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &d400, &h2), 0); /* exactly 1000 */
	CU_ASSERT_EQUAL(tn_store_session_usage(s, a, &u), 0);
	CU_ASSERT(u.bytes == 1000 && u.limit == 1000 && u.tensors == 2 && u.refused == 1);
	/* b's own limit is 2000, but the store holds at most 1500. */
	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &d600, &h3), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &d400, &h3), 0);
	tn_store_usage(s, &u);
	CU_ASSERT(u.bytes == 1400 && u.sessions == 2 && u.tensors == 3 && u.refused == 2);
	CU_ASSERT_EQUAL(tn_store_free(s, a, h1), 0);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, a, &u), 0);
	CU_ASSERT(u.bytes == 400 && u.peak_bytes == 1000);
	/* Handle count limit: 3 per session. */
	struct dj_tensor_desc tiny = vec(DJ_DTYPE_INT32, 1);

	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &tiny, &h1), 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &tiny, &h1), 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, b, &tiny, &h1), -DJ_ELIMIT);
	/* Bad descriptions never reach the accounting. */
	struct dj_tensor_desc bad = vec(DJ_DTYPE_INT32, -1);

	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &bad, &h1), -DJ_ESHAPE);
	bad = vec((enum dj_dtype)42, 1);
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &bad, &h1), -DJ_EDTYPE);
	struct dj_tensor bad_host = {.desc = bad, .data = &h1};

	CU_ASSERT_EQUAL(tn_store_put(s, a, &bad_host, &h1), -DJ_EDTYPE);
	bad_host.desc = d400;
	bad_host.data = NULL;
	CU_ASSERT_EQUAL(tn_store_put(s, a, &bad_host, &h1), -EINVAL);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, a, &u), 0);
	CU_ASSERT(u.bytes == 400 && u.tensors == 1);
	destroy_and_check(s);
}

/* Bytes held outside tensors count against the limits as a tensor's do,
 * without touching a device's figures; close gives back what is left. */
static void test_hold(void)
{
	struct tn_store *s = make_store(1000, 600, 0);
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT32, 100); /* 400 bytes */
	struct tn_store_usage u;
	uint64_t a, b, h;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &a), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &b), 0);
	CU_ASSERT_EQUAL(tn_store_hold(s, a, 400), 0);
	CU_ASSERT_EQUAL(tn_store_hold(s, a, 201), -DJ_ELIMIT);  /* the session's 600 */
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &d, &h), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(tn_store_hold(s, b, 601), -DJ_ELIMIT);  /* the store's 1000 */
	CU_ASSERT_EQUAL(tn_store_hold(s, 12345, 1), -DJ_EHANDLE);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_usage(s, a, &u), 0);
	CU_ASSERT(u.bytes == 400 && u.tensors == 0 && u.refused == 2);
	CU_ASSERT_EQUAL(tn_store_device_usage(s, 0, &u), 0);
	CU_ASSERT_EQUAL(u.bytes, 0);
	/* A put's bytes pass from the hold to its tensor. */
	tn_store_unhold(s, a, 400);
	CU_ASSERT_EQUAL(tn_store_alloc(s, a, &d, &h), 0);
	CU_ASSERT_EQUAL(tn_store_hold(s, a, 200), 0);
	tn_store_usage(s, &u);
	CU_ASSERT_EQUAL(u.bytes, 600);
	/* Never more back than held. */
	tn_store_unhold(s, a, 1000);
	tn_store_usage(s, &u);
	CU_ASSERT_EQUAL(u.bytes, 400);
	CU_ASSERT_EQUAL(tn_store_hold(s, a, 200), 0);
	CU_ASSERT_EQUAL(tn_store_session_close(s, a), 0);
	tn_store_unhold(s, a, 200); /* closed: nothing */
	tn_store_usage(s, &u);
	CU_ASSERT_EQUAL(u.bytes, 0);
	CU_ASSERT_EQUAL(tn_store_hold(s, b, 600), 0);
	destroy_and_check(s);
}

static void test_backend_failure_restores_accounting(void)
{
	struct tn_store *s = make_store(0, 100, 0);
	struct tn_store_usage u;
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT32, 20);
	uint64_t sess, h;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	counter.fail_next = 1;
	CU_ASSERT_EQUAL(tn_store_alloc(s, sess, &d, &h), -ENOMEM);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, sess, &u), 0);
	CU_ASSERT(u.bytes == 0 && u.tensors == 0);
	CU_ASSERT_EQUAL(tn_store_alloc(s, sess, &d, &h), 0);
	destroy_and_check(s);
}

static void test_session_close_frees_all(void)
{
	struct tn_store *s = make_store(0, 0, 0);
	struct tn_store_usage u;
	struct dj_tensor_desc d = vec(DJ_DTYPE_BFLOAT16, 100), got;
	uint64_t sess, h[10];

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(tn_store_alloc(s, sess, &d, &h[i]), 0);
	CU_ASSERT_EQUAL(tn_store_free(s, sess, h[4]), 0);
	CU_ASSERT_EQUAL(counter.live_bytes, 9 * 200);
	CU_ASSERT_EQUAL(tn_store_session_close(s, sess), 0);
	CU_ASSERT_EQUAL(counter.live_bytes, 0);
	tn_store_usage(s, &u);
	CU_ASSERT(u.bytes == 0 && u.tensors == 0 && u.sessions == 0);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(tn_store_describe(s, sess, h[i], &got), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, sess, &u), -DJ_EHANDLE);
	destroy_and_check(s);
}

static void test_references_outlive_free(void)
{
	struct tn_store *s = make_store(0, 0, 0);
	struct tn_store_usage u;
	struct dj_tensor_desc d = vec(DJ_DTYPE_INT32, 4);
	struct tn_store_ref *ref, *ref2;
	struct dj_tensor view;
	uint64_t sess, h;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, sess, &d, &h), 0);
	CU_ASSERT_EQUAL(tn_store_write(s, sess, h, 0, (int32_t[]){7, 8, 9, 10}, 16), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_acquire(s, sess, h, &ref, &view), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_acquire(s, sess, h, &ref2, NULL), 0);
	CU_ASSERT_EQUAL(tn_store_free(s, sess, h), 0);
	/* Gone for new lookups, still valid (and charged) for holders. */
	CU_ASSERT_EQUAL(tn_store_acquire(s, sess, h, &ref, NULL), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(((int32_t *)view.data)[3], 10);
	tn_store_release(s, ref2);
	/* Closing the session while a reference is out is fine too. */
	CU_ASSERT_EQUAL(tn_store_session_close(s, sess), 0);
	tn_store_usage(s, &u);
	CU_ASSERT_EQUAL(u.bytes, 16);
	CU_ASSERT_EQUAL(((int32_t *)view.data)[0], 7);
	tn_store_release(s, ref);
	tn_store_usage(s, &u);
	CU_ASSERT_EQUAL(u.bytes, 0);
	CU_ASSERT_EQUAL(counter.live_bytes, 0);
	destroy_and_check(s);
}

/* ---- threads ---- */

struct worker {
	struct tn_store *store;
	uint64_t shared_session, shared_handle;
	unsigned int seed;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t sess, live[16] = {0};
	int64_t payload[32];

	if (tn_store_session_open(w->store, 1 << 16, &sess) != 0)
		return (void *)1;
	for (int i = 0; i < 3000; i++) {
		int slot = rand_r(&w->seed) % 16, n = 1 + rand_r(&w->seed) % 32;
		struct dj_tensor host = {.desc = vec(DJ_DTYPE_INT64, n), .data = payload};
		struct tn_store_ref *ref;

		for (int j = 0; j < n; j++)
			payload[j] = (int64_t)slot * 1000 + j;
		if (live[slot] != 0) {
			int64_t back[32];

			w->errors += tn_store_read(w->store, sess, live[slot], back, sizeof(back),
						   NULL) != 0 || back[0] != slot * 1000;
			w->errors += tn_store_free(w->store, sess, live[slot]) != 0;
			live[slot] = 0;
		} else {
			w->errors += tn_store_put(w->store, sess, &host, &live[slot]) != 0;
		}
		/* Everyone pins the shared tensor concurrently. */
		if (tn_store_acquire(w->store, w->shared_session, w->shared_handle, &ref, NULL) == 0)
			tn_store_release(w->store, ref);
		else
			w->errors++;
	}
	/* Half the workers leave tensors behind for the session close. */
	if (w->seed & 1)
		for (int i = 0; i < 16; i++)
			if (live[i])
				w->errors += tn_store_free(w->store, sess, live[i]) != 0;
	w->errors += tn_store_session_close(w->store, sess) != 0;
	return NULL;
}

/* A fleet move's arrival: the tensor changes session and handle, keeps its
 * bytes, is charged to its new session (within that one's budget), and a
 * reference taken before stays valid, released against the new owner. */
static void test_adopt(void)
{
	struct tn_store *s = make_store(0, 0, 0);
	struct tn_store_usage u;
	struct dj_tensor_desc d = vec(DJ_DTYPE_INT32, 4), big = vec(DJ_DTYPE_INT32, 100);
	struct tn_store_ref *ref;
	struct dj_tensor view;
	int32_t got[4];
	uint64_t from, to, small, h, h2, hb, moved;

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &from), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &to), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 64, &small), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, from, &d, &h), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, from, &d, &h2), 0);
	CU_ASSERT_EQUAL(tn_store_write(s, from, h, 0, (int32_t[]){1, 2, 3, 4}, 16), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_acquire(s, from, h, &ref, &view), 0);
	CU_ASSERT_EQUAL(tn_store_adopt(s, from, h, to, &moved), 0);
	CU_ASSERT(moved != h && moved != 0);
	CU_ASSERT_EQUAL(tn_store_describe(s, from, h, &d), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_describe(s, to, h, &d), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_read(s, to, moved, got, sizeof(got), NULL), 0);
	CU_ASSERT(got[0] == 1 && got[3] == 4);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, from, &u), 0);
	CU_ASSERT(u.bytes == 16 && u.tensors == 1);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, to, &u), 0);
	CU_ASSERT(u.bytes == 16 && u.tensors == 1);
	/* The old reference still reads the bytes; releasing it uncharges nobody
	 * while the handle lives. */
	CU_ASSERT_EQUAL(((int32_t *)view.data)[2], 3);
	tn_store_release(s, ref);
	CU_ASSERT_EQUAL(tn_store_session_usage(s, to, &u), 0);
	CU_ASSERT_EQUAL(u.bytes, 16);
	/* Unknown handle, another session's handle, a budget too small. */
	CU_ASSERT_EQUAL(tn_store_adopt(s, from, h, to, &moved), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(tn_store_adopt(s, to, h2, from, &moved), -DJ_EHANDLE);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, from, &big, &hb), 0);
	CU_ASSERT_EQUAL(tn_store_adopt(s, from, hb, small, &moved), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(tn_store_describe(s, from, hb, &d), 0);
	/* The adopted tensor goes with its new session. */
	CU_ASSERT_EQUAL(tn_store_session_close(s, to), 0);
	CU_ASSERT_EQUAL(counter.live_bytes, 16 + 400);
	destroy_and_check(s);
}

static void test_threads(void)
{
	enum { THREADS = 4 };
	struct tn_store *s = make_store(0, 0, 0);
	struct worker w[THREADS];
	pthread_t tid[THREADS];
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT32, 64);
	struct tn_store_usage u;
	uint64_t shared, h;
	unsigned int seed = dj_test_seed();

	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &shared), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, shared, &d, &h), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.store = s, .shared_session = shared, .shared_handle = h,
				       .seed = seed + (unsigned int)i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret;

		pthread_join(tid[i], &ret);
		CU_ASSERT_PTR_NULL(ret);
		CU_ASSERT_EQUAL(w[i].errors, 0);
	}
	tn_store_usage(s, &u);
	CU_ASSERT(u.bytes == 256 && u.tensors == 1 && u.sessions == 1);
	destroy_and_check(s);
}

static void test_host_backend(void)
{
	struct tn_store *s = NULL;
	uint64_t sess, h;
	struct tn_store_ref *ref;
	struct dj_tensor view;
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT16, 3);
	struct tn_store_backend broken = {.name = "broken"};
	struct tn_store_config cfg = {.backend = &broken};

	CU_ASSERT_EQUAL(tn_store_create(&cfg, &s), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(tn_store_create(NULL, &s), 0);
	CU_ASSERT_STRING_EQUAL(tn_store_host_backend()->name, "host");
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, sess, &d, &h), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_acquire(s, sess, h, &ref, &view), 0);
	CU_ASSERT_EQUAL(view.mem, DJ_MEM_HOST);
	CU_ASSERT_EQUAL((uintptr_t)view.data % 64, 0);
	tn_store_release(s, ref);
	/* Destroy with tensors and sessions still open frees them (ASan checks). */
	tn_store_destroy(s);
}

/*
 * A tensor freed by one session and its memory handed to the next: the new
 * tensor reads as zeros at every size, on the host backend (whose memory
 * malloc reuses at once). Output allocations skip the zeroing.
 */
/* Two devices: each tensor stays on the one it was allocated on, reads and
 * writes go through that device's backend, and each device's usage counts
 * only its own tensors while the budgets count them together. */
static void test_devices(void)
{
	struct counting second = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct tn_store_backend dev1 = counting_backend;
	const struct tn_store_backend *list[2] = {&counting_backend, &dev1};
	struct tn_store_config cfg = {.backends = list, .n_backends = 2, .total_limit = 1000};
	struct dj_tensor_desc d = vec(DJ_DTYPE_FLOAT32, 100); /* 400 bytes */
	struct tn_store_usage u0, u1, all;
	uint64_t sess, h0, h1, h2;
	float in[100], out[100];
	int dev = -1;
	struct tn_store *s = NULL;

	dev1.ctx = &second;
	CU_ASSERT_EQUAL_FATAL(tn_store_create(&cfg, &s), 0);
	CU_ASSERT_EQUAL(tn_store_devices(s), 2);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &sess), 0);
	CU_ASSERT_EQUAL(tn_store_alloc_on(s, sess, &d, 0, 1, &h0), 0);
	CU_ASSERT_EQUAL(tn_store_alloc_on(s, sess, &d, 1, 1, &h1), 0);
	CU_ASSERT_EQUAL(tn_store_alloc_on(s, sess, &d, 2, 1, &h2), -EINVAL);
	CU_ASSERT_EQUAL(tn_store_alloc_on(s, sess, &d, -1, 1, &h2), -EINVAL);
	CU_ASSERT_EQUAL(counter.allocs - counter.frees, 1);
	CU_ASSERT_EQUAL(second.allocs, 1);
	CU_ASSERT_EQUAL(tn_store_device_of(s, sess, h1, &dev), 0);
	CU_ASSERT_EQUAL(dev, 1);
	CU_ASSERT_EQUAL(tn_store_device_of(s, sess, h0, &dev), 0);
	CU_ASSERT_EQUAL(dev, 0);
	for (int i = 0; i < 100; i++)
		in[i] = (float)i;
	CU_ASSERT_EQUAL(tn_store_write(s, sess, h1, 0, in, sizeof(in)), 0);
	CU_ASSERT_EQUAL(tn_store_read(s, sess, h1, out, sizeof(out), NULL), 0);
	CU_ASSERT_EQUAL(memcmp(in, out, sizeof(in)), 0);
	CU_ASSERT_EQUAL(tn_store_device_usage(s, 0, &u0), 0);
	CU_ASSERT_EQUAL(tn_store_device_usage(s, 1, &u1), 0);
	CU_ASSERT_EQUAL(tn_store_device_usage(s, 2, &u1), -EINVAL);
	CU_ASSERT_EQUAL(tn_store_device_usage(s, 1, &u1), 0);
	CU_ASSERT_EQUAL(u0.bytes, 400);
	CU_ASSERT_EQUAL(u1.bytes, 400);
	CU_ASSERT_EQUAL(u1.tensors, 1);
	/* The total limit counts both devices: 800 + 400 > 1000. */
	CU_ASSERT_EQUAL(tn_store_alloc_on(s, sess, &d, 1, 1, &h2), -DJ_ELIMIT);
	tn_store_device_usage(s, 1, &u1);
	CU_ASSERT_EQUAL(u1.refused, 1);
	tn_store_device_usage(s, 0, &u0);
	CU_ASSERT_EQUAL(u0.refused, 0);
	/* A pinned tensor keeps its device; its bytes stay charged to it. */
	struct tn_store_ref *ref;
	struct dj_tensor view;

	CU_ASSERT_EQUAL_FATAL(tn_store_acquire(s, sess, h1, &ref, &view), 0);
	CU_ASSERT_EQUAL(tn_store_ref_device(ref), 1);
	CU_ASSERT_EQUAL(tn_store_free(s, sess, h1), 0);
	tn_store_device_usage(s, 1, &u1);
	CU_ASSERT_EQUAL(u1.tensors, 0);
	CU_ASSERT_EQUAL(u1.bytes, 400);
	tn_store_release(s, ref);
	tn_store_device_usage(s, 1, &u1);
	CU_ASSERT_EQUAL(u1.bytes, 0);
	CU_ASSERT_EQUAL(u1.peak_bytes, 400);
	CU_ASSERT_EQUAL(second.allocs, second.frees);
	tn_store_usage(s, &all);
	CU_ASSERT_EQUAL(all.bytes, 400);
	CU_ASSERT_EQUAL(tn_store_session_close(s, sess), 0);
	tn_store_device_usage(s, 0, &u0);
	CU_ASSERT_EQUAL(u0.bytes, 0);
	CU_ASSERT_EQUAL(u0.tensors, 0);
	/* Too many devices, or a bad one in the list, is refused. */
	struct tn_store *bad = NULL;
	const struct tn_store_backend *holes[2] = {&counting_backend, NULL};

	cfg.backends = holes;
	CU_ASSERT_EQUAL(tn_store_create(&cfg, &bad), -EINVAL);
	cfg.n_backends = TN_STORE_MAX_DEVICES + 1;
	CU_ASSERT_EQUAL(tn_store_create(&cfg, &bad), -EINVAL);
	destroy_and_check(s);
}

static void test_alloc_never_shows_freed_bytes(void)
{
	struct tn_store *s = NULL;
	uint64_t a, b, h;

	CU_ASSERT_EQUAL_FATAL(tn_store_create(NULL, &s), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &a), 0);
	CU_ASSERT_EQUAL_FATAL(tn_store_session_open(s, 0, &b), 0);
	for (size_t bytes = 64; bytes <= (64u << 20); bytes *= 4) {
		struct dj_tensor_desc d = vec(DJ_DTYPE_INT32, (int64_t)(bytes / 4));
		struct dj_tensor host = {.desc = d, .mem = DJ_MEM_HOST};
		uint8_t *back = malloc(bytes);
		size_t nonzero = 0;

		host.data = malloc(bytes);
		CU_ASSERT_FATAL(host.data != NULL && back != NULL);
		memset(host.data, 0xa5, bytes);
		CU_ASSERT_EQUAL_FATAL(tn_store_put(s, a, &host, &h), 0);
		CU_ASSERT_EQUAL(tn_store_free(s, a, h), 0);
		CU_ASSERT_EQUAL_FATAL(tn_store_alloc(s, b, &d, &h), 0);
		CU_ASSERT_EQUAL(tn_store_read(s, b, h, back, bytes, NULL), 0);
		for (size_t i = 0; i < bytes; i++)
			nonzero += back[i] != 0;
		if (nonzero != 0)
			printf("\n  %zu bytes: %zu bytes of the freed tensor showed\n", bytes, nonzero);
		CU_ASSERT_EQUAL(nonzero, 0);
		CU_ASSERT_EQUAL(tn_store_free(s, b, h), 0);
		free(host.data);
		free(back);
	}
	tn_store_destroy(s);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"put, read, partial write, acquire, empty tensor", test_put_read_round_trip},
		{"handles unique, unpredictable, never reused", test_handles_unique_never_reused},
		{"sessions cannot touch each other's handles", test_session_isolation},
		{"per-session and store limits, accounting", test_limits_and_accounting},
		{"bytes held outside tensors", test_hold},
		{"backend failure restores accounting", test_backend_failure_restores_accounting},
		{"session close frees everything", test_session_close_frees_all},
		{"references outlive free and close", test_references_outlive_free},
		{"concurrent sessions and shared pins", test_threads},
		{"a tensor handed to another session", test_adopt},
		{"host backend and bad backend", test_host_backend},
		{"a new tensor never shows freed bytes", test_alloc_never_shows_freed_bytes},
		{"tensors on several devices", test_devices},
		{NULL, NULL},
	};
	dj_test_add_suite("store", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
