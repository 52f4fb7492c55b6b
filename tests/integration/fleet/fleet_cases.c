/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fleet cases shared by every topology (fleet_cases.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "fleet_cases.h"

int fc_member_info(struct dj_fleet *f, uint32_t index, struct dj_fleet_member *m)
{
	struct dj_fleet_member all[64];
	int n = dj_fleet_view(f, NULL, all, 64);

	for (int i = 0; i < n; i++) {
		if (all[i].index == index) {
			*m = all[i];
			return 1;
		}
	}
	return 0;
}

uint32_t fc_member(struct dj_fleet *f, const struct fe_server *s)
{
	uint64_t deadline = fe_now_ms() + 5000;
	uint32_t index;

	while (dj_fleet_member_find(f, s->endpoint, &index) != 0) {
		if (fe_now_ms() > deadline) {
			fprintf(stderr, "member %s never showed: %s\n", s->endpoint,
				dj_fleet_last_error());
			return UINT32_MAX;
		}
		dj_fleet_refresh(f);
		fe_sleep_ms(100);
	}
	return index;
}

uint32_t fc_member_restarted(struct dj_fleet *f, const struct fe_server *s, uint64_t old_inc,
			     int timeout_s)
{
	uint64_t deadline = fe_now_ms() + (uint64_t)timeout_s * 1000;
	struct dj_fleet_member m;
	uint32_t index;

	while (fe_now_ms() < deadline) {
		dj_fleet_refresh(f);
		if (dj_fleet_member_find(f, s->endpoint, &index) == 0 &&
		    fc_member_info(f, index, &m) && m.incarnation != old_inc)
			return index;
		fe_sleep_ms(100);
	}
	return UINT32_MAX;
}

/* ---- moves ------------------------------------------------------------------------ */

static void move_one(struct dj_fleet *f, uint32_t from, uint32_t to, const struct dj_tensor *t,
		     struct dj_tensor *back, int copy, enum dj_path want)
{
	struct dj_fleet_handle h, moved;
	struct dj_fleet_move_info info;
	struct dj_tensor_desc desc;
	uint64_t bytes = dj_tensor_nbytes(&t->desc);
	int rc;

	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(f, from, t, &h), 0);
	rc = dj_fleet_move(f, h, to, copy ? DJ_FLEET_COPY : 0, &moved, &info);
	if (rc != 0)
		fprintf(stderr, "move #%u -> #%u of %" PRIu64 " B: %s\n", from, to, bytes,
			dj_fleet_last_error());
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(moved.member, to);
	CU_ASSERT_EQUAL(info.bytes, bytes);
	CU_ASSERT_EQUAL(info.path, want);
	if (info.path != want)
		fprintf(stderr, "path %s: %s\n", dj_path_name(info.path), info.path_reason);
	memset(back->data, 0, bytes);
	back->desc = t->desc;
	CU_ASSERT_EQUAL(dj_fleet_get(f, moved, back), 0);
	CU_ASSERT(memcmp(back->data, t->data, bytes) == 0);
	/* COPY keeps the source; MOVE lets go of it once the target has it. */
	rc = dj_fleet_describe(f, h, &desc);
	CU_ASSERT_EQUAL(rc, copy ? 0 : -DJ_EHANDLE);
	if (copy)
		CU_ASSERT_EQUAL(dj_fleet_free(f, h), 0);
	CU_ASSERT_EQUAL(dj_fleet_free(f, moved), 0);
	printf("  %s %10" PRIu64 " B #%u -> #%u over %s: %.2f ms on the servers\n",
	       copy ? "copy" : "move", bytes, from, to, dj_path_name(info.path),
	       (double)info.server_ns / 1e6);
}

void fc_moves(struct dj_fleet *f, struct fe_server *servers, int n, const uint64_t *sizes,
	      int n_sizes, enum dj_path want)
{
	uint32_t idx[8];
	int copy = 0;

	CU_ASSERT_FATAL(n <= 8);
	for (int i = 0; i < n; i++) {
		idx[i] = fc_member(f, &servers[i]);
		CU_ASSERT_FATAL(idx[i] != UINT32_MAX);
	}
	for (int s = 0; s < n_sizes; s++) {
		struct dj_tensor t, back;

		CU_ASSERT_EQUAL_FATAL(fe_tensor_make(&t, sizes[s], 0x5eed0000u + (uint32_t)s), 0);
		back = t;
		back.data = malloc(sizes[s]);
		CU_ASSERT_FATAL(back.data != NULL);
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				if (a != b)
					move_one(f, idx[a], idx[b], &t, &back, copy++ & 1, want);
		free(t.data);
		free(back.data);
	}
}

/* ---- routing ---------------------------------------------------------------------- */

static void put_floats(struct dj_fleet *f, uint32_t member, const float *v, int n,
		       struct dj_fleet_handle *h)
{
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {n}},
			      .data = (void *)v, .mem = DJ_MEM_HOST};

	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(f, member, &t, h), 0);
	CU_ASSERT_EQUAL(h->member, member == DJ_FLEET_ANY ? h->member : member);
}

static void get_floats(struct dj_fleet *f, struct dj_fleet_handle h, float *v, int n)
{
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {n}},
			      .data = v, .mem = DJ_MEM_HOST};

	CU_ASSERT_EQUAL(dj_fleet_get(f, h, &t), 0);
}

void fc_routing(struct dj_fleet *f, struct fe_server *servers, int n)
{
	struct dj_fleet_handle x[8], y[8], out[2], any;
	float v[4], got[4];
	char text[20];
	int rc;

	for (int i = 0; i < n; i++) {
		uint32_t m = fc_member(f, &servers[i]);

		CU_ASSERT_FATAL(m != UINT32_MAX);
		for (int k = 0; k < 4; k++)
			v[k] = (float)(i * 10 + k) - 1.5f;
		put_floats(f, m, v, 4, &x[i]);
		/* The operation runs where its input lives; so does its output. */
		CU_ASSERT_EQUAL(dj_fleet_execute(f, "add", (struct dj_fleet_handle[]){x[i], x[i]}, 2,
						 NULL, &y[i], NULL), 0);
		CU_ASSERT_EQUAL(y[i].member, m);
		get_floats(f, y[i], got, 4);
		for (int k = 0; k < 4; k++)
			CU_ASSERT_EQUAL(got[k], 2 * ((float)(i * 10 + k) - 1.5f));
	}
	/* Inputs on two members: the client says so, nothing runs. */
	rc = dj_fleet_execute(f, "add", (struct dj_fleet_handle[]){x[0], x[1]}, 2, NULL, &out[0],
			      NULL);
	CU_ASSERT_EQUAL(rc, -EXDEV);
	CU_ASSERT(strstr(dj_fleet_last_error(), "move them") != NULL);
	/* A batch on one member: relu(x), then relu(x) + x. */
	snprintf(text, sizeof(text), "0x%" PRIx64, x[1].handle);
	struct dj_batch_op ops[2] = {{.op = "relu", .inputs = {text}, .n_in = 1},
				     {.op = "add", .inputs = {"$0", text}, .n_in = 2}};

	CU_ASSERT_EQUAL(dj_fleet_execute_batch(f, x[1].member, ops, 2, out), 0);
	get_floats(f, out[1], got, 4);
	for (int k = 0; k < 4; k++) {
		float xv = (float)(10 + k) - 1.5f;

		CU_ASSERT_EQUAL(got[k], (xv > 0 ? xv : 0) + xv);
	}
	/* Anywhere: the least loaded member takes it. */
	put_floats(f, DJ_FLEET_ANY, v, 4, &any);
	get_floats(f, any, got, 4);
	CU_ASSERT(memcmp(got, v, sizeof(v)) == 0);
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(dj_fleet_free(f, x[i]), 0);
		CU_ASSERT_EQUAL(dj_fleet_free(f, y[i]), 0);
	}
	CU_ASSERT_EQUAL(dj_fleet_free(f, out[0]), 0);
	CU_ASSERT_EQUAL(dj_fleet_free(f, out[1]), 0);
	CU_ASSERT_EQUAL(dj_fleet_free(f, any), 0);
}

/* ---- failures mid-move ------------------------------------------------------------ */

struct async_move {
	struct dj_fleet *f;
	struct dj_fleet_handle h, out;
	uint32_t to;
	int rc;
	char error[256];
	pthread_t thread;
};

static void *move_thread(void *arg)
{
	struct async_move *m = arg;

	m->rc = dj_fleet_move(m->f, m->h, m->to, 0, &m->out, NULL);
	snprintf(m->error, sizeof(m->error), "%s", dj_fleet_last_error());
	return NULL;
}

/* Wait until s holds at least base + bytes (the move's tensor arrived in
 * its member session: bytes are moving), at most timeout_ms. */
static int wait_arrival(const struct fe_server *s, int64_t base, uint64_t bytes, int timeout_ms)
{
	uint64_t deadline = fe_now_ms() + (uint64_t)timeout_ms;

	while (fe_now_ms() < deadline) {
		int64_t now = fe_server_store_bytes(s);

		if (now >= base + (int64_t)bytes)
			return 0;
		fe_sleep_ms(2);
	}
	return -1;
}

void fc_target_killed(struct dj_fleet *f, struct fe_server *servers, int src, int dst,
		      uint64_t bytes)
{
	struct async_move m = {.f = f};
	struct dj_fleet_member info;
	struct dj_tensor t, back;
	uint32_t from = fc_member(f, &servers[src]), to = fc_member(f, &servers[dst]);
	int64_t base = fe_server_store_bytes(&servers[dst]);
	struct dj_fleet_handle on_dst;
	float one = 1;
	struct dj_tensor small = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
				  .data = &one};
	uint64_t inc;

	CU_ASSERT_FATAL(from != UINT32_MAX && to != UINT32_MAX && base >= 0);
	CU_ASSERT_FATAL(fc_member_info(f, to, &info));
	inc = info.incarnation;
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(f, to, &small, &on_dst), 0);
	base = fe_server_store_bytes(&servers[dst]);
	CU_ASSERT_EQUAL_FATAL(fe_tensor_make(&t, bytes, 0xdead), 0);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(f, from, &t, &m.h), 0);
	m.to = to;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&m.thread, NULL, move_thread, &m), 0);
	CU_ASSERT_EQUAL(wait_arrival(&servers[dst], base, bytes, 30000), 0);
	fe_server_kill(&servers[dst], SIGKILL);
	pthread_join(m.thread, NULL);
	printf("  target killed mid-move: %s (%s)\n", dj_strerror(m.rc), m.error);
	CU_ASSERT(m.rc != 0);
	/* The source still holds its tensor, byte for byte. */
	back = t;
	back.data = calloc(1, bytes);
	CU_ASSERT_EQUAL(dj_fleet_get(f, m.h, &back), 0);
	CU_ASSERT(fe_tensor_check(&back, 0xdead));
	CU_ASSERT_EQUAL(dj_fleet_free(f, m.h), 0);
	free(back.data);
	free(t.data);
	/* Restarted, it is a new incarnation: the old handle names a member
	 * that is gone, and the new one serves. */
	CU_ASSERT_EQUAL_FATAL(fe_server_start(&servers[dst], 30), 0);
	to = fc_member_restarted(f, &servers[dst], inc, 15);
	CU_ASSERT_FATAL(to != UINT32_MAX);
	CU_ASSERT_EQUAL(dj_fleet_get(f, on_dst, &small), -EHOSTDOWN);
	CU_ASSERT(strstr(dj_fleet_last_error(), servers[dst].endpoint) != NULL);
	CU_ASSERT_EQUAL(dj_fleet_put(f, to, &small, &on_dst), 0);
	CU_ASSERT_EQUAL(dj_fleet_free(f, on_dst), 0);
}

void fc_source_killed(struct dj_fleet *f, struct fe_server *servers, int src, int dst,
		      uint64_t bytes)
{
	struct async_move m = {.f = f};
	struct dj_fleet_member info;
	struct dj_tensor t;
	uint32_t from = fc_member(f, &servers[src]), to = fc_member(f, &servers[dst]);
	int64_t base = fe_server_store_bytes(&servers[dst]), after = -1;
	uint64_t killed_ms, freed_ms = 0;

	CU_ASSERT_FATAL(from != UINT32_MAX && to != UINT32_MAX && base >= 0);
	CU_ASSERT_FATAL(fc_member_info(f, from, &info));
	CU_ASSERT_EQUAL_FATAL(fe_tensor_make(&t, bytes, 0xbeef), 0);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(f, from, &t, &m.h), 0);
	free(t.data);
	m.to = to;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&m.thread, NULL, move_thread, &m), 0);
	CU_ASSERT_EQUAL(wait_arrival(&servers[dst], base, bytes, 30000), 0);
	fe_server_kill(&servers[src], SIGKILL);
	killed_ms = fe_now_ms();
	pthread_join(m.thread, NULL);
	printf("  source killed mid-move: %s (%s)\n", dj_strerror(m.rc), m.error);
	CU_ASSERT(m.rc != 0);
	/* The target frees the partial tensor at once: the member's session
	 * does not linger. */
	while (fe_now_ms() - killed_ms < 5000) {
		after = fe_server_store_bytes(&servers[dst]);
		if (after == base) {
			freed_ms = fe_now_ms() - killed_ms;
			break;
		}
		fe_sleep_ms(20);
	}
	printf("  target's store back to %" PRId64 " B after %" PRIu64 " ms\n", after, freed_ms);
	CU_ASSERT_EQUAL(after, base);
	CU_ASSERT(freed_ms <= 1000);
	CU_ASSERT_EQUAL_FATAL(fe_server_start(&servers[src], 30), 0);
	CU_ASSERT(fc_member_restarted(f, &servers[src], info.incarnation, 15) != UINT32_MAX);
}
