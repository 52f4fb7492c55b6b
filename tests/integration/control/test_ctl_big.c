/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control plane at size and across failures, over loopback: byte-exact TCP
 * fallback transfers up to 256 MiB (zero-copy and chunked backends), several
 * clients at once, and a server restart survived by a retrying client.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "fixture.h"
#include "harness.h"

static int round_trip(struct dj_conn *conn, size_t n, uint32_t seed)
{
	int64_t halves = (int64_t)n / 2;
	uint8_t *src = malloc(n), *dst = malloc(n);
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_BFLOAT16, .ndim = 2,
				       .shape = {2, halves / 2}},
			      .data = src, .mem = DJ_MEM_HOST};
	struct dj_tensor back = t;
	uint64_t h = 0;
	int rc;

	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	back.data = dst;
	fx_pattern(src, n, seed);
	memset(dst, 0xa5, n);
	rc = dj_put(conn, &t, &h);
	if (rc == 0)
		rc = dj_get(conn, h, &back);
	if (rc == 0 && memcmp(src, dst, n) != 0)
		rc = -EIO;
	if (h != 0)
		dj_free(conn, h);
	free(src);
	free(dst);
	return rc;
}

static void big_transfers(int chunked)
{
	static const size_t sizes[] = {4, 64u << 20, (256u << 20) - 4, 256u << 20};
	struct mem_backend_options mbo = {.chunked = chunked};
	struct dj_client_options o;
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, &mbo) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t t0 = djc_time_ns();
		int rc = round_trip(conn, sizes[i], (uint32_t)i + 11);

		CU_ASSERT_EQUAL(rc, 0);
		printf("\n    %zu bytes (%s): %s, %.1f ms round trip", sizes[i],
		       chunked ? "chunked" : "zero-copy", rc == 0 ? "byte-exact" : dj_strerror(rc),
		       (double)(djc_time_ns() - t0) / 1e6);
	}
	CU_ASSERT_EQUAL(mem_backend_live(fx.mb), 0);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

static void test_big_zero_copy(void)
{
	big_transfers(0);
}

static void test_big_chunked(void)
{
	big_transfers(1);
}

struct worker_arg {
	struct dj_client *cl;
	int id, rc;
};

static void *client_worker(void *p)
{
	struct worker_arg *a = p;
	struct dj_conn *conn;

	a->rc = dj_connect(a->cl, &conn);
	for (int i = 0; i < 20 && a->rc == 0; i++)
		a->rc = round_trip(conn, (size_t)(1 + i) * 65536, (uint32_t)(a->id * 100 + i));
	if (a->rc == 0)
		dj_disconnect(conn);
	return NULL;
}

static void test_many_clients_at_once(void)
{
	struct worker_arg args[8];
	pthread_t th[8];
	struct dj_client_options o;
	struct dj_client *cl;
	struct fixture fx;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct worker_arg){.cl = cl, .id = i};
		pthread_create(&th[i], NULL, client_worker, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].rc, 0);
	}
	dj_client_destroy(cl);
	fx_stop(&fx);
}

struct restart {
	struct fixture *fx;
	struct ctl_server_config cfg;
	int rc;
};

static void *restart_later(void *p)
{
	struct restart *r = p;
	struct mem_backend *mb;

	usleep(400 * 1000);
	r->rc = mem_backend_create(NULL, &mb);
	if (r->rc == 0)
		r->rc = ctl_server_create(&r->cfg, mem_backend_ops(), mb, &r->fx->srv);
	if (r->rc == 0)
		r->rc = ctl_server_start(r->fx->srv);
	r->fx->mb = mb;
	return NULL;
}

static void test_server_restart_survived(void)
{
	struct dj_client_options o;
	struct dj_client_stats st;
	struct restart r = {0};
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn;
	pthread_t th;
	float v = 1;
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
			      .data = &v, .mem = DJ_MEM_HOST};
	uint64_t h, sid;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	o.max_retries = 8;
	o.backoff_base_ms = 20;
	o.backoff_max_ms = 300;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	sid = dj_conn_session_id(conn);

	/* Restart on the same port: down now, up 400 ms later. */
	ctl_server_config_init(&r.cfg);
	r.cfg.port = fx.port;
	r.fx = &fx;
	ctl_server_destroy(fx.srv);
	mem_backend_destroy(fx.mb);
	fx.srv = NULL;
	fx.mb = NULL;
	pthread_create(&th, NULL, restart_later, &r);

	/* PING is idempotent: retried with backoff until the server is back. */
	CU_ASSERT_EQUAL(dj_ping(conn, NULL), 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	dj_client_get_stats(cl, &st);
	CU_ASSERT(st.retries >= 2);
	/* A new server: a new session, the old handles are gone and say so. */
	CU_ASSERT_NOT_EQUAL(dj_conn_session_id(conn), 0);
	CU_ASSERT_EQUAL(dj_get(conn, h, &t), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	(void)sid;
	dj_conn_close(conn);
	/* New connections work too. */
	CU_ASSERT_EQUAL(dj_connect(cl, &conn), 0);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"TCP fallback byte-exact up to 256 MiB", test_big_zero_copy},
		{"TCP fallback byte-exact, chunked backend", test_big_chunked},
		{"eight clients at once", test_many_clients_at_once},
		{"server restart survived by retries", test_server_restart_survived},
		{NULL, NULL},
	};
	dj_test_add_suite("control-integration", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
