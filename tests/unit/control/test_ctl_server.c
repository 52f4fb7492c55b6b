/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control-plane server and client over loopback: handshake and auth,
 * byte-exact TCP-fallback transfers, EXECUTE (single, batch, 1000 in flight,
 * out of order), a catalogue of bad inputs, slow and vanished clients,
 * limits, pooling, session resume, TLS.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_client.h"
#include "fixture.h"
#include "harness.h"

static struct dj_tensor host_tensor(enum dj_dtype dt, int ndim, const int64_t *shape, void *data)
{
	struct dj_tensor t = {.desc = {.dtype = dt, .ndim = ndim}, .data = data, .mem = DJ_MEM_HOST};

	for (int i = 0; i < ndim; i++)
		t.desc.shape[i] = shape[i];
	return t;
}

static struct dj_tensor f32_vec(float *data, int64_t n)
{
	return host_tensor(DJ_DTYPE_FLOAT32, 1, &n, data);
}

/* Server with defaults, one client, one connection. */
struct env {
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn;
};

static void env_up(struct env *e, const struct ctl_server_config *cfg,
		   const struct mem_backend_options *mbo)
{
	struct dj_client_options o;

	memset(e, 0, sizeof(*e));
	CU_ASSERT_FATAL(fx_start(&e->fx, cfg, mbo) == 0);
	fx_client_opts(&e->fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &e->cl) == 0);
	CU_ASSERT_FATAL(dj_connect(e->cl, &e->conn) == 0);
}

static void env_down(struct env *e)
{
	if (e->conn != NULL)
		dj_conn_close(e->conn);
	dj_client_destroy(e->cl);
	fx_stop(&e->fx);
}

static void test_handshake_ping_stats(void)
{
	struct env e;
	const char *reason;
	uint64_t rtt = 0;
	char *json = NULL;
	cJSON *st;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL(dj_conn_path(e.conn, &reason), DJ_PATH_TCP);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "no DPDK"));
	CU_ASSERT(dj_conn_session_id(e.conn) > 0);
	CU_ASSERT_EQUAL(dj_ping(e.conn, &rtt), 0);
	CU_ASSERT(rtt > 0);
	CU_ASSERT_EQUAL_FATAL(dj_stats(e.conn, &json), 0);
	st = cJSON_Parse(json);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "session"), "path")->valuestring,
			       "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "session"),
							  "path_reason")->valuestring, "DPDK"));
	CU_ASSERT(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "server"), "requests")->valuedouble >= 4);
	cJSON_Delete(st);
	free(json);
	env_down(&e);
}

/* The smallest tensor is 2 bytes (a float16 scalar): sizes step from there. */
static void put_get_sizes(const struct mem_backend_options *mbo)
{
	static const size_t sizes[] = {2, 6, 4094, 65536, (1u << 20) + 6, 16u << 20};
	struct env e;

	env_up(&e, NULL, mbo);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int64_t halves = (int64_t)sizes[i] / 2;
		uint8_t *src = malloc(sizes[i]), *dst = calloc(1, sizes[i]);
		struct dj_tensor t = host_tensor(DJ_DTYPE_FLOAT16, 1, &halves, src);
		struct dj_tensor back = host_tensor(DJ_DTYPE_FLOAT16, 1, &halves, dst);
		uint64_t h = 0;

		fx_pattern(src, sizes[i], (uint32_t)i + 1);
		CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h), 0);
		CU_ASSERT(h != 0);
		CU_ASSERT_EQUAL(dj_get(e.conn, h, &back), 0);
		CU_ASSERT_EQUAL(memcmp(src, dst, sizes[i]), 0);
		CU_ASSERT_EQUAL(dj_free(e.conn, h), 0);
		free(src);
		free(dst);
	}
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	env_down(&e);
}

static void test_put_get_byte_exact(void)
{
	put_get_sizes(NULL);
}

static void test_put_get_chunked_backend(void)
{
	struct mem_backend_options mbo = {.chunked = 1};

	put_get_sizes(&mbo);
}

static void test_tensor_lifecycle(void)
{
	struct env e;
	float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {0};
	int64_t shape[2] = {2, 3};
	struct dj_tensor t = host_tensor(DJ_DTYPE_FLOAT32, 2, shape, a);
	struct dj_tensor back = host_tensor(DJ_DTYPE_FLOAT32, 2, shape, b);
	struct dj_tensor_desc d;
	uint64_t h;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL(dj_alloc(e.conn, &t.desc, &h), 0);
	CU_ASSERT_EQUAL(dj_describe(e.conn, h, &d), 0);
	CU_ASSERT_EQUAL(d.ndim, 2);
	CU_ASSERT_EQUAL(d.shape[1], 3);
	CU_ASSERT_EQUAL(dj_put_into(e.conn, h, &t), 0);
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	/* Wrong byte size into an existing tensor. */
	t.desc.shape[1] = 2;
	CU_ASSERT_EQUAL(dj_put_into(e.conn, h, &t), -EMSGSIZE);
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &t), -EMSGSIZE); /* buffer of the wrong size */
	CU_ASSERT_EQUAL(dj_free(e.conn, h), 0);
	CU_ASSERT_EQUAL(dj_free(e.conn, h), -DJ_EHANDLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "no tensor"));
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &back), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0); /* still serving */
	env_down(&e);
}

static void test_execute_and_batch(void)
{
	struct env e;
	float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, c[4];
	struct dj_tensor ta = f32_vec(a, 4), tb = f32_vec(b, 4), tc = f32_vec(c, 4);
	struct dj_tensor_desc d;
	uint64_t ha, hb, hc, outs[3];
	char ha_s[20], hb_s[20];
	int live;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &ta, &ha), 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &tb, &hb), 0);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "add", (uint64_t[]){ha, hb}, 2, NULL, &hc, &d), 0);
	CU_ASSERT_EQUAL(d.dtype, DJ_DTYPE_FLOAT32);
	CU_ASSERT_EQUAL(d.shape[0], 4);
	CU_ASSERT_EQUAL(dj_get(e.conn, hc, &tc), 0);
	CU_ASSERT(c[0] == 11 && c[3] == 44);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", &ha, 1, "{\"factor\":2.5}", &hc, NULL), 0);
	CU_ASSERT_EQUAL(dj_get(e.conn, hc, &tc), 0);
	CU_ASSERT(c[1] == 5.0f);
	/* Several outputs. */
	struct dj_future *f;
	uint64_t two[3];
	struct dj_tensor_desc two_d[3];

	CU_ASSERT_EQUAL_FATAL(dj_execute_async(e.conn, "dup", &hb, 1, NULL, NULL, NULL, &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, 5000), 0);
	CU_ASSERT_EQUAL(dj_future_outputs(f, two, two_d, 3), 2);
	CU_ASSERT_NOT_EQUAL(two[0], two[1]);
	CU_ASSERT_EQUAL(two_d[1].shape[0], 4);
	CU_ASSERT_EQUAL(dj_future_outputs(f, two, NULL, 1), 1);
	dj_future_release(f);
	CU_ASSERT_EQUAL(dj_get(e.conn, two[1], &tc), 0);
	CU_ASSERT(c[2] == 30);
	/* Errors name the problem and leave the server serving. */
	CU_ASSERT_EQUAL(dj_execute(e.conn, "conv9d", &ha, 1, NULL, &hc, NULL), -DJ_EUNKNOWN_OP);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "add", &ha, 1, NULL, &hc, NULL), -EINVAL);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", &ha, 1, "not json", &hc, NULL), -EINVAL);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", (uint64_t[]){0x1234}, 1, NULL, &hc, NULL),
			-DJ_EHANDLE);

	/* Batch: (a + b) * 2, then + a, in one request. */
	ctl_handle_format(ha, ha_s);
	ctl_handle_format(hb, hb_s);
	struct dj_batch_op ops[3] = {
		{.op = "add", .inputs = {ha_s, hb_s}, .n_in = 2},
		{.op = "scale", .inputs = {"$0"}, .n_in = 1, .attrs_json = "{\"factor\":2}"},
		{.op = "add", .inputs = {"$1", ha_s}, .n_in = 2},
	};
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch(e.conn, ops, 3, outs), 0);
	CU_ASSERT_EQUAL(dj_get(e.conn, outs[2], &tc), 0);
	CU_ASSERT(c[0] == 23 && c[3] == 92);
	/* A failing batch leaves nothing behind. */
	live = mem_backend_live(e.fx.mb);
	ops[2].inputs[0] = "$7";
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, ops, 3, outs), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "batch op 2"));
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	env_down(&e);
}

/* Puts, fetches and frees inside one batch: (a + b) * 2 computed from bytes
 * carried in the request and read back from the reply, nothing left behind;
 * an in-place op's destination is neither freed by the batch nor by its
 * failure. */
static void batch_put_fetch_free(int chunked)
{
	struct mem_backend_options mbo = {.chunked = chunked};
	float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, got[8], acc[4] = {100, 100, 100, 100};
	struct dj_tensor ta = f32_vec(a, 4), tb = f32_vec(b, 4), tacc = f32_vec(acc, 4);
	uint64_t outs[4], hacc;
	struct dj_future *f;
	char hacc_s[20];
	struct env e;
	int live;

	env_up(&e, NULL, &mbo);
	live = mem_backend_live(e.fx.mb);
	struct dj_batch_op ops[4] = {
		{.put = &ta},
		{.put = &tb},
		{.op = "add", .inputs = {"$0", "$1"}, .n_in = 2, .fetch = 1,
		 .free = (const int[]){0, 1}, .n_free = 2},
		{.op = "scale", .inputs = {"$2"}, .n_in = 1, .attrs_json = "{\"factor\":2}",
		 .fetch = 1, .free = (const int[]){2, 3}, .n_free = 2},
	};
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch_async(e.conn, ops, 4, got, sizeof(got), NULL, NULL,
						     &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, -1), 0);
	CU_ASSERT_EQUAL(dj_future_batch_handles(f, outs, 4), 4);
	dj_future_release(f);
	CU_ASSERT(got[0] == 11 && got[3] == 44 && got[4] == 22 && got[7] == 88);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	CU_ASSERT_EQUAL(dj_describe(e.conn, outs[3], &tb.desc), -DJ_EHANDLE);
	/* A fetch buffer of the wrong size: the reply is refused, not spilled. */
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch_async(e.conn, ops, 4, got, sizeof(got) - 4, NULL,
						     NULL, &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, -1), -EMSGSIZE);
	dj_future_release(f);
	/* The client refuses entries it can tell are wrong. */
	ops[0].op = "scale";
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, ops, 1, outs), -EINVAL);
	ops[0].op = NULL;
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, ops, 4, outs), -EINVAL); /* fetch, no buffer */

	/* In place: the destination survives the batch's frees and failure. */
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &tacc, &hacc), 0);
	ctl_handle_format(hacc, hacc_s);
	live = mem_backend_live(e.fx.mb);
	struct dj_batch_op inplace[3] = {
		{.put = &ta},
		{.op = "iadd", .inputs = {hacc_s, "$0"}, .n_in = 2, .free = (const int[]){0},
		 .n_free = 1},
		{.op = "scale", .inputs = {"$1"}, .n_in = 1, .free = (const int[]){1}, .n_free = 1},
	};
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, inplace, 3, outs), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "batch op 2"));
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	inplace[2].n_free = 0;
	inplace[2].op = "nope";
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, inplace, 3, outs), -DJ_EUNKNOWN_OP);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	CU_ASSERT_EQUAL(dj_get(e.conn, hacc, &tacc), 0);
	/* Both failed batches ran iadd before failing: the destination is not
	 * restored (documented), only never freed. */
	CU_ASSERT(acc[0] == 102 && acc[3] == 108);
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, inplace, 2, outs), 0);
	CU_ASSERT_EQUAL(outs[1], hacc);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	CU_ASSERT_EQUAL(dj_free(e.conn, hacc), 0);
	env_down(&e);
}

static void test_batch_put_fetch_free(void)
{
	batch_put_fetch_free(0);
	batch_put_fetch_free(1);
}

/* An EXECUTE's payload beyond the server's limit is refused and skipped; the
 * connection goes on serving. */
static void test_batch_payload_limit(void)
{
	int64_t n = (int64_t)(DJ_BATCH_PUT_MAX / 4) + 1;
	float *big = calloc((size_t)n, sizeof(float));
	struct dj_tensor t = f32_vec(big, n);
	struct dj_batch_op op = {.put = &t};
	uint64_t out;
	struct env e;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, &op, 1, &out), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "at most"));
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	env_down(&e);
	free(big);
}

#define N_FLIGHT 1000

/* A callback runs on the reader thread just after its future is marked
 * done (and dj_future_wait returns): wait up to 5 s for *count to reach
 * want; returns the count then. */
static int callbacks_settle(pthread_mutex_t *lock, const int *count, int want)
{
	uint64_t until = djc_time_ns() + 5000000000ull;
	int n;

	for (;;) {
		pthread_mutex_lock(lock);
		n = *count;
		pthread_mutex_unlock(lock);
		if (n >= want || djc_time_ns() > until)
			return n;
		usleep(1000);
	}
}

struct flight {
	pthread_mutex_t lock;
	int order[N_FLIGHT];
	int n_done;
};

static void flight_cb(struct dj_future *f, void *arg)
{
	struct flight *fl = arg;

	pthread_mutex_lock(&fl->lock);
	fl->order[fl->n_done++] = dj_future_done(f);
	pthread_mutex_unlock(&fl->lock);
}

static void test_thousand_in_flight_out_of_order(void)
{
	struct ctl_server_config cfg;
	struct env e;
	struct flight fl = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct dj_future **f = calloc(N_FLIGHT, sizeof(*f));
	uint64_t *out = calloc(N_FLIGHT, sizeof(*out));
	float v = 3.0f, got;
	struct dj_tensor t = f32_vec(&v, 1), back = f32_vec(&got, 1);
	uint64_t h;
	int first_done = -1, later_before_earlier = 0;

	ctl_server_config_init(&cfg);
	cfg.n_workers = 8;
	env_up(&e, &cfg, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h), 0);
	/* Early requests sleep longest: replies must overtake them. */
	for (int i = 0; i < N_FLIGHT; i++) {
		char attrs[32];

		snprintf(attrs, sizeof(attrs), "{\"ms\":%d}", i < 2 ? 500 : 0);
		CU_ASSERT_EQUAL_FATAL(dj_execute_async(e.conn, "sleep", &h, 1, attrs, flight_cb,
						       &fl, &f[i]), 0);
	}
	for (int i = N_FLIGHT - 1; i >= 0; i--) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], 20000), 0);
		if (i == N_FLIGHT - 1)
			first_done = dj_future_done(f[0]);
	}
	/* The last request finished while the first was still sleeping. */
	later_before_earlier = first_done == 0;
	CU_ASSERT(later_before_earlier);
	CU_ASSERT_EQUAL(callbacks_settle(&fl.lock, &fl.n_done, N_FLIGHT), N_FLIGHT);
	for (int i = 0; i < N_FLIGHT; i++) {
		CU_ASSERT_EQUAL(dj_future_handle(f[i], &out[i], NULL), 0);
		if (i > 0)
			CU_ASSERT_NOT_EQUAL(out[i], out[i - 1]);
		dj_future_release(f[i]);
	}
	CU_ASSERT_EQUAL(dj_get(e.conn, out[N_FLIGHT - 1], &back), 0);
	CU_ASSERT(got == 3.0f);
	free(f);
	free(out);
	env_down(&e);
}

static void test_auth(void)
{
	struct dj_client_options o;
	struct ctl_server_stats st;
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn = NULL;

	fx_start_token(&fx, NULL, "s3cret-token");
	fx_client_opts(&fx, &o);
	unsetenv("DJINN_TOKEN");
	unsetenv("DJINN_TOKEN_FILE");

	/* No token at all. */
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_EQUAL(dj_connect(cl, &conn), -DJ_EAUTH);
	dj_client_destroy(cl);
	/* Wrong token: a clear ERROR, then closed. */
	o.token = "wrong";
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_EQUAL(dj_connect(cl, &conn), -DJ_EAUTH);
	dj_client_destroy(cl);
	/* Right token, from the environment. */
	o.token = NULL;
	setenv("DJINN_TOKEN", "s3cret-token", 1);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	unsetenv("DJINN_TOKEN");
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &conn), 0);
	CU_ASSERT_EQUAL(dj_ping(conn, NULL), 0);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	ctl_server_get_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.auth_failures, 1); /* the tokenless client never got to AUTH */
	fx_stop(&fx);
}

/* Text of an ERROR reply's message, "" otherwise. */
static const char *error_message(const cJSON *r)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "message");

	return cJSON_IsString(m) ? m->valuestring : "";
}

/*
 * What docs/CONTROL.md promises a client written from it alone: the
 * version is an exact match (refused, closed, and not an authentication
 * failure); a second HELLO or AUTH is named; integers stop below 2^53 and
 * the error says why.
 */
static void test_protocol_details_for_clients(void)
{
	/* On a ready connection, each in turn: the connection serves on. */
	static const struct {
		const char *request, *says;
		int code;
	} asks[] = {
		{"{\"type\":\"HELLO\",\"id\":3,\"version\":1}", "HELLO (and AUTH) come once",
		 -EALREADY},
		{"{\"type\":\"AUTH\",\"id\":4,\"mac\":\"00\"}", "HELLO (and AUTH) come once", -EALREADY},
		{"{\"type\":\"ALLOC\",\"id\":5,\"dtype\":\"int32\",\"shape\":[9007199254740992]}",
		 "shape[0] is 2^53 or more", -DJ_ESHAPE},
		{"{\"type\":\"PING\",\"id\":9007199254740992}",
		 "'id' missing or not an integer from 0 to 2^53 - 1", -EINVAL},
		{"{\"type\":\"PING\",\"id\":9007199254740991}", NULL, 0}, /* echoed exactly */
	};
	struct ctl_server_stats st;
	struct fixture fx;
	cJSON *r;
	int fd;

	fx_start_token(&fx, NULL, "tok");
	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":2,\"nonce\":"
		    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EPROTO_VERSION);
	CU_ASSERT_PTR_NOT_NULL(strstr(error_message(r), "exactly version 1"));
	CU_ASSERT(fx_raw_closed(fd, 3000));
	cJSON_Delete(r);
	close(fd);
	ctl_server_get_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.auth_failures, 0);
	CU_ASSERT_EQUAL(st.protocol_errors, 1);
	fx_stop(&fx);

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		CU_ASSERT_EQUAL(fx_raw_send(fd, asks[i].request, 0), 0);
		r = fx_raw_recv(fd, 3000);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_EQUAL(fx_error_code(r), asks[i].code);
		if (asks[i].says != NULL && strstr(error_message(r), asks[i].says) == NULL)
			printf("\n  '%s' said '%s'\n", asks[i].request, error_message(r));
		CU_ASSERT(asks[i].says == NULL || strstr(error_message(r), asks[i].says) != NULL);
		if (asks[i].code == 0)
			CU_ASSERT_EQUAL(cJSON_GetObjectItem(r, "id")->valuedouble, 9007199254740991.0);
		cJSON_Delete(r);
	}
	close(fd);
	fx_stop(&fx);
}

static void test_auth_raw_refusals(void)
{
	struct fixture fx;
	cJSON *r;
	int fd;

	fx_start_token(&fx, NULL, "tok");
	/* HELLO without a nonce on an authenticating server. */
	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
	CU_ASSERT(fx_raw_closed(fd, 3000));
	cJSON_Delete(r);
	close(fd);
	/* Skipping AUTH. */
	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1,\"nonce\":"
		    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "type")->valuestring, "CHALLENGE");
	cJSON_Delete(r);
	fx_raw_send(fd, "{\"type\":\"SESSION\",\"id\":2}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
	CU_ASSERT(fx_raw_closed(fd, 3000));
	cJSON_Delete(r);
	close(fd);
	fx_stop(&fx);
}

/* One bad input: what is sent, the ERROR code expected, whether the server
 * closes the connection afterwards. */
struct bad_input {
	const char *name;
	const char *json;          /* NULL: raw bytes below */
	const char *raw;
	size_t raw_len;
	uint64_t payload_len;      /* stated */
	uint64_t payload_sent;     /* actually sent (zeros) */
	int code;
	int closes;
};

static const struct bad_input catalogue[] = {
	{"malformed JSON", "{\"type\":\"PING\",\"id\":", NULL, 0, 0, 0, -EBADMSG, 0},
	{"JSON array instead of object", "[1,2,3]", NULL, 0, 0, 0, -EBADMSG, 0},
	{"JSON nested too deep",
	 "{\"type\":\"PING\",\"id\":1,\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	 NULL, 0, 0, 0, -DJ_ELIMIT, 0},
	{"missing id", "{\"type\":\"PING\"}", NULL, 0, 0, 0, -EINVAL, 0},
	{"id of the wrong type", "{\"type\":\"PING\",\"id\":\"seven\"}", NULL, 0, 0, 0, -EINVAL, 0},
	{"negative id", "{\"type\":\"PING\",\"id\":-1}", NULL, 0, 0, 0, -EINVAL, 0},
	{"missing type", "{\"id\":3}", NULL, 0, 0, 0, -EINVAL, 0},
	{"type of the wrong type", "{\"id\":3,\"type\":7}", NULL, 0, 0, 0, -EINVAL, 0},
	{"unknown type", "{\"id\":3,\"type\":\"REBOOT\"}", NULL, 0, 0, 0, -EBADMSG, 0},
	{"ALLOC without shape", "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"float32\"}", NULL, 0, 0, 0, -EINVAL, 0},
	{"ALLOC unknown dtype", "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"complex128\",\"shape\":[2]}",
	 NULL, 0, 0, 0, -DJ_EDTYPE, 0},
	{"ALLOC negative dimension", "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"int32\",\"shape\":[2,-1]}",
	 NULL, 0, 0, 0, -DJ_ESHAPE, 0},
	{"ALLOC nine dimensions",
	 "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"int32\",\"shape\":[1,1,1,1,1,1,1,1,1]}",
	 NULL, 0, 0, 0, -DJ_ESHAPE, 0},
	{"ALLOC astronomically large",
	 "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"int64\",\"shape\":[4000000000000000,4000000000000000]}",
	 NULL, 0, 0, 0, -DJ_ESHAPE, 0},
	{"PUT payload shorter than the tensor",
	 "{\"id\":5,\"type\":\"PUT\",\"dtype\":\"float32\",\"shape\":[4]}", NULL, 0, 10, 10, -EMSGSIZE, 0},
	{"PUT without payload", "{\"id\":5,\"type\":\"PUT\",\"dtype\":\"float32\",\"shape\":[4]}",
	 NULL, 0, 0, 0, -EMSGSIZE, 0},
	{"payload on a PING", "{\"id\":6,\"type\":\"PING\"}", NULL, 0, 100, 100, -EPROTO, 0},
	{"GET handle not hex", "{\"id\":7,\"type\":\"GET\",\"handle\":\"0xnothex\"}", NULL, 0, 0, 0, -EINVAL, 0},
	{"GET handle as number", "{\"id\":7,\"type\":\"GET\",\"handle\":12}", NULL, 0, 0, 0, -EINVAL, 0},
	{"GET unknown handle", "{\"id\":7,\"type\":\"GET\",\"handle\":\"0xdead\"}", NULL, 0, 0, 0, -DJ_EHANDLE, 0},
	{"FREE unknown handle", "{\"id\":7,\"type\":\"FREE\",\"handle\":\"0xdead\"}", NULL, 0, 0, 0, -DJ_EHANDLE, 0},
	{"EXECUTE inputs not an array", "{\"id\":8,\"type\":\"EXECUTE\",\"op\":\"add\",\"inputs\":\"0x1\"}",
	 NULL, 0, 0, 0, -EINVAL, 0},
	{"EXECUTE without op", "{\"id\":8,\"type\":\"EXECUTE\",\"inputs\":[]}", NULL, 0, 0, 0, -EINVAL, 0},
	{"EXECUTE attrs not an object",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"op\":\"scale\",\"inputs\":[\"0x1\"],\"attrs\":[1]}",
	 NULL, 0, 0, 0, -EINVAL, 0},
	{"EXECUTE unknown op", "{\"id\":8,\"type\":\"EXECUTE\",\"op\":\"nope\",\"inputs\":[]}",
	 NULL, 0, 0, 0, -DJ_EUNKNOWN_OP, 0},
	{"EXECUTE 17 inputs",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"op\":\"add\",\"inputs\":[\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\","
	 "\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\",\"0x1\"]}",
	 NULL, 0, 0, 0, -DJ_ELIMIT, 0},
	{"batch reference to nothing",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"op\":\"scale\",\"inputs\":[\"$3\"]}]}",
	 NULL, 0, 0, 0, -EINVAL, 0},
	{"batch payload longer than its puts",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[4]}}]}",
	 NULL, 0, 20, 20, -EMSGSIZE, 0},
	{"batch put longer than the payload",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[4]}}]}",
	 NULL, 0, 10, 10, -EMSGSIZE, 0},
	{"batch entry with op and put",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"op\":\"scale\",\"inputs\":[],"
	 "\"put\":{\"dtype\":\"float32\",\"shape\":[1]}}]}", NULL, 0, 4, 4, -EINVAL, 0},
	{"batch fetch not a boolean",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[1]},"
	 "\"fetch\":1}]}", NULL, 0, 4, 4, -EINVAL, 0},
	{"batch free not an array",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[1]},"
	 "\"free\":\"$0\"}]}", NULL, 0, 4, 4, -EINVAL, 0},
	{"batch frees an entry twice",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[1]},"
	 "\"free\":[\"$0\",\"$0\"]}]}", NULL, 0, 4, 4, -EINVAL, 0},
	{"batch frees a later entry",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"put\":{\"dtype\":\"float32\",\"shape\":[1]},"
	 "\"free\":[\"$1\"]},{\"put\":{\"dtype\":\"float32\",\"shape\":[1]}}]}",
	 NULL, 0, 8, 8, -EINVAL, 0},
	{"batch frees a tensor it did not make",
	 "{\"id\":8,\"type\":\"EXECUTE\",\"batch\":[{\"op\":\"scale\",\"inputs\":[\"0x1\"],"
	 "\"free\":[\"0x1\"]}]}", NULL, 0, 0, 0, -DJ_EHANDLE, 0},
	{"PATH to nowhere", "{\"id\":9,\"type\":\"PATH\",\"path\":\"carrier-pigeon\"}", NULL, 0, 0, 0, -EINVAL, 0},
	{"PATH dpdk on a TCP-only server", "{\"id\":9,\"type\":\"PATH\",\"path\":\"dpdk\"}",
	 NULL, 0, 0, 0, -DJ_ENODPDK, 0},
	{"second SESSION", "{\"id\":9,\"type\":\"SESSION\"}", NULL, 0, 0, 0, -EALREADY, 0},
	{"PUT_DONE for no transfer", "{\"id\":9,\"type\":\"PUT_DONE\",\"xfer\":5}", NULL, 0, 0, 0, -ENOENT, 0},
	{"trace that would break a log line", "{\"id\":10,\"type\":\"PING\",\"trace\":\"a\\n[err] x\"}",
	 NULL, 0, 0, 0, -EINVAL, 0},
	{"trace not a string", "{\"id\":10,\"type\":\"PING\",\"trace\":7}", NULL, 0, 0, 0, -EINVAL, 0},
	{"trace too long", "{\"id\":10,\"type\":\"PING\",\"trace\":"
	 "\"123456789012345678901234567890123456789012345678\"}", NULL, 0, 0, 0, -EINVAL, 0},
	/* Framing errors: the stream cannot be trusted any more. */
	{"bad magic", NULL, "HTTP/1.1 GET /\r\n\r\n", 18, 0, 0, -EPROTO, 1},
	{"empty JSON frame", NULL, "DJC1\0\0\0\0\0\0\0\0\0\0\0\0", 16, 0, 0, -DJ_ELIMIT, 1},
	{"JSON length beyond the limit", NULL, "DJC1\x7f\0\0\0\0\0\0\0\0\0\0\0", 16, 0, 0, -DJ_ELIMIT, 1},
	{"payload length beyond the limit", NULL, "DJC1\0\0\0\x02{}\xff\xff\xff\xff\xff\xff\xff\xff", 16, 0, 0,
	 -DJ_ELIMIT, 1},
};

static void run_bad_input(uint16_t port, const struct bad_input *b)
{
	int fd = fx_raw_connect(port), code;
	cJSON *r;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);
	if (b->json != NULL) {
		fx_raw_send(fd, b->json, b->payload_len);
	} else {
		/* "payload length beyond": header must carry the JSON length 2. */
		if (strcmp(b->name, "payload length beyond the limit") == 0) {
			uint8_t hdr[16];

			ctl_hdr_encode(hdr, 2, UINT64_MAX);
			fx_raw_send_bytes(fd, hdr, 16);
		} else {
			fx_raw_send_bytes(fd, b->raw, b->raw_len);
		}
	}
	for (uint64_t left = b->payload_sent; left > 0;) {
		char zeros[256] = {0};
		size_t n = left < sizeof(zeros) ? left : sizeof(zeros);

		fx_raw_send_bytes(fd, zeros, n);
		left -= n;
	}
	r = fx_raw_recv(fd, 3000);
	code = fx_error_code(r);
	if (code != b->code)
		printf("\n  bad input '%s': got code %d, want %d (%s)\n", b->name, code, b->code,
		       r != NULL && cJSON_GetObjectItem(r, "message") ?
		       cJSON_GetObjectItem(r, "message")->valuestring : "no reply");
	CU_ASSERT_EQUAL(code, b->code);
	CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(r, "message"));
	cJSON_Delete(r);
	if (b->closes) {
		CU_ASSERT(fx_raw_closed(fd, 3000));
	} else {
		/* Still serving this connection. */
		fx_raw_send(fd, "{\"type\":\"PING\",\"id\":77}", 0);
		r = fx_raw_recv(fd, 3000);
		if (fx_error_code(r) != 0 || r == NULL)
			printf("\n  bad input '%s': connection not serving afterwards\n", b->name);
		CU_ASSERT(r != NULL && fx_error_code(r) == 0);
		cJSON_Delete(r);
	}
	close(fd);
}

static void test_bad_input_catalogue(void)
{
	struct ctl_server_config cfg;
	struct ctl_server_stats st;
	struct env e;

	ctl_server_config_init(&cfg);
	cfg.limits.max_json_bytes = 64 << 10;
	cfg.limits.max_payload_bytes = 1ull << 30;
	cfg.limits.max_json_depth = 16;
	env_up(&e, &cfg, NULL);
	for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++)
		run_bad_input(e.fx.port, &catalogue[i]);
	/* A well-behaved client was served all along. */
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	ctl_server_get_stats(e.fx.srv, &st);
	CU_ASSERT(st.protocol_errors >= 10);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	env_down(&e);
}

static void test_requests_need_hello_and_session(void)
{
	struct fixture fx;
	cJSON *r;
	int fd;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"PING\",\"id\":1}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
	CU_ASSERT(fx_raw_closed(fd, 3000));
	cJSON_Delete(r);
	close(fd);

	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":99}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EPROTO_VERSION);
	cJSON_Delete(r);
	close(fd);

	fd = fx_raw_connect(fx.port);
	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"ALLOC\",\"id\":2,\"dtype\":\"int32\",\"shape\":[1]}", 0);
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -EPROTO);
	cJSON_Delete(r);
	close(fd);
	fx_stop(&fx);
}

static void test_other_sessions_handles_unreachable(void)
{
	struct env e;
	struct dj_conn *other;
	float v = 1;
	struct dj_tensor t = f32_vec(&v, 1);
	uint64_t h;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h), 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(e.cl, &other), 0); /* pool empty: a new session */
	CU_ASSERT_NOT_EQUAL(dj_conn_session_id(other), dj_conn_session_id(e.conn));
	CU_ASSERT_EQUAL(dj_get(other, h, &t), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_free(other, h), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &t), 0);
	dj_conn_close(other);
	env_down(&e);
}

static void test_half_sent_frame_and_vanished_client(void)
{
	struct ctl_server_config cfg;
	struct env e;
	uint8_t hdr[16];
	cJSON *r;
	int stalled, vanished;
	const char *put = "{\"type\":\"PUT\",\"id\":3,\"dtype\":\"float32\",\"shape\":[1048576]}";

	ctl_server_config_init(&cfg);
	cfg.limits.frame_timeout_ms = 300;
	cfg.limits.session_linger_ms = 100;
	env_up(&e, &cfg, NULL);

	/* Half a frame, then silence: closed with a reason, others unaffected. */
	stalled = fx_raw_connect(e.fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(stalled) == 0);
	ctl_hdr_encode(hdr, 100, 0);
	fx_raw_send_bytes(stalled, hdr, sizeof(hdr));
	fx_raw_send_bytes(stalled, "{\"type\":", 8);
	/* Half a PUT payload, then gone. */
	vanished = fx_raw_connect(e.fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(vanished) == 0);
	fx_raw_send(vanished, put, 4u << 20);
	static char part[1 << 20];

	fx_raw_send_bytes(vanished, part, sizeof(part));
	close(vanished);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	r = fx_raw_recv(stalled, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -ETIMEDOUT);
	CU_ASSERT(fx_raw_closed(stalled, 3000));
	cJSON_Delete(r);
	close(stalled);
	/* Their sessions are gone once the linger time passed; only ours holds on. */
	usleep(500 * 1000);
	CU_ASSERT_EQUAL(mem_backend_sessions(e.fx.mb), 1);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	env_down(&e);
}

static void test_trickling_client_is_dropped(void)
{
	struct ctl_server_config cfg;
	struct env e;
	const char *msg = "{\"type\":\"PING\",\"id\":5,\"padding\":\"xxxxxxxxxxxxxxxxxxxx\"}";
	uint8_t hdr[16];
	uint64_t t0;
	int fd, closed = 0;

	ctl_server_config_init(&cfg);
	cfg.limits.frame_timeout_ms = 300;
	env_up(&e, &cfg, NULL);
	fd = fx_raw_connect(e.fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);
	ctl_hdr_encode(hdr, (uint32_t)strlen(msg), 0);
	fx_raw_send_bytes(fd, hdr, sizeof(hdr));
	/* One byte every 50 ms: always "progressing", never done in time. */
	t0 = djc_time_ns();
	for (size_t i = 0; i < strlen(msg) && !closed; i++) {
		if (fx_raw_send_bytes(fd, msg + i, 1) != 0)
			closed = 1;
		usleep(50 * 1000);
		if (djc_time_ns() - t0 > 2000000000ull)
			break;
	}
	CU_ASSERT(closed || fx_raw_closed(fd, 1000));
	CU_ASSERT(djc_time_ns() - t0 < 2000000000ull);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	close(fd);
	env_down(&e);
}

static void test_slow_reader_is_dropped(void)
{
	struct ctl_server_config cfg;
	struct env e;
	size_t n = 64u << 20;
	float *big = calloc(1, n);
	struct dj_tensor t = f32_vec(big, (int64_t)(n / 4));
	uint64_t h;
	char req[128];
	int fd, rcvbuf = 4096;

	ctl_server_config_init(&cfg);
	cfg.limits.frame_timeout_ms = 300;
	env_up(&e, &cfg, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h), 0);
	/* A raw client of the same session cannot reach the handle: resume
	 * is not possible while attached, so use a fresh tensor of its own. */
	fd = fx_raw_connect(e.fx.port);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);
	fx_raw_send(fd, "{\"type\":\"ALLOC\",\"id\":3,\"dtype\":\"float32\",\"shape\":[16777216]}", 0);
	cJSON *r = fx_raw_recv(fd, 3000);
	snprintf(req, sizeof(req), "{\"type\":\"GET\",\"id\":4,\"handle\":\"%s\"}",
		 cJSON_GetObjectItem(r, "handle")->valuestring);
	cJSON_Delete(r);
	fx_raw_send(fd, req, 0);
	/* Never read the 64 MiB: the server gives up on us, not on others. */
	usleep(200 * 1000);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	CU_ASSERT(fx_raw_closed(fd, 5000));
	close(fd);
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &t), 0);
	free(big);
	env_down(&e);
}

static void test_limits(void)
{
	struct ctl_server_config cfg;
	struct mem_backend_options mbo = {.session_bytes = 1000};
	struct env e;
	float v[300] = {0};
	struct dj_tensor t = f32_vec(v, 10), big = f32_vec(v, 300);
	uint64_t h;

	ctl_server_config_init(&cfg);
	cfg.limits.max_handles = 3;
	env_up(&e, &cfg, &mbo);
	CU_ASSERT_EQUAL(dj_put(e.conn, &big, &h), -DJ_ELIMIT); /* 1200 bytes > 1000 */
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "memory limit"));
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dj_put(e.conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_put(e.conn, &t, &h), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", &h, 1, NULL, NULL, NULL), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(dj_free(e.conn, h), 0);
	CU_ASSERT_EQUAL(dj_put(e.conn, &t, &h), 0); /* room again */
	env_down(&e);
}

/* A figure of the session's in STATS: the server's ("handles") or, under
 * "backend", the backend's ("bytes"). */
static int session_stat(struct env *e, const char *name)
{
	char *json = NULL;
	cJSON *st;
	int n = -1;

	if (dj_stats(e->conn, &json) != 0)
		return -1;
	st = cJSON_Parse(json);
	n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st,
			strcmp(name, "bytes") == 0 ? "backend" : "session"), name));
	cJSON_Delete(st);
	free(json);
	return n;
}

/* A put or an op in a batch is held to the session's limits as a PUT is: a
 * put's tensor is charged to its memory, and every tensor the batch holds
 * at once to its handles, also where requests run side by side on the
 * workers (binary single ops and JSON batches). Over a limit, nothing of
 * the batch stays and the session serves on. */
static void test_batch_limits(void)
{
	struct ctl_server_config cfg;
	struct mem_backend_options mbo = {.session_bytes = 1000, .no_inline = 1};
	float v[100] = {0};
	struct dj_tensor small = f32_vec(v, 10), mid = f32_vec(v, 100);
	struct dj_batch_op puts[4] = {{.put = &mid}, {.put = &mid}, {.put = &mid}};
	struct dj_batch_op chain[4] = {
		{.put = &small},
		{.op = "scale", .inputs = {"$0"}, .n_in = 1},
		{.op = "scale", .inputs = {"$1"}, .n_in = 1},
		{.op = "scale", .inputs = {"$2"}, .n_in = 1},
	};
	static const int prev[3] = {0, 1, 2};
	struct dj_future *f[8];
	uint64_t outs[4], h[3];
	char h_s[20];
	int ok = 0;
	struct env e;

	ctl_server_config_init(&cfg);
	cfg.limits.max_handles = 3;
	env_up(&e, &cfg, &mbo);
	/* Memory: 3 x 400 bytes pass 1000, refused with their payload before
	 * the batch runs (test_batch_payload_held). */
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, puts, 3, outs), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn),
				      "session memory limit: 0 + 1200 bytes > 1000"));
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	/* Handles: four puts pass 3 at the fourth; an op's output counts too. */
	for (int i = 0; i < 4; i++)
		puts[i].put = &small;
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, puts, 4, outs), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn),
				      "batch op 3: session holds 3 handles: the limit"));
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, chain, 4, outs), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(e.conn), "batch op 3"));
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	CU_ASSERT_EQUAL(session_stat(&e, "handles"), 0);
	/* Freed as it goes, the chain holds at most 2 at once and keeps 1. */
	for (int i = 1; i < 4; i++) {
		chain[i].free = &prev[i - 1];
		chain[i].n_free = 1;
	}
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch(e.conn, chain, 4, outs), 0);
	CU_ASSERT_EQUAL(session_stat(&e, "handles"), 1);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &small, &h[0]), 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &small, &h[1]), 0);
	CU_ASSERT_EQUAL(dj_put(e.conn, &small, &h[2]), -DJ_ELIMIT);
	CU_ASSERT_EQUAL(dj_free(e.conn, outs[3]), 0);
	/* Room for one more; eight requests that each make one, all in flight
	 * at once (each sleeps 100 ms on a worker): exactly one is served. */
	ctl_handle_format(h[0], h_s);
	struct dj_batch_op sleep = {.op = "sleep", .inputs = {h_s}, .n_in = 1,
				    .attrs_json = "{\"ms\":100}"};
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL_FATAL(i % 2 ? dj_execute_batch_async(e.conn, &sleep, 1, NULL, 0,
								     NULL, NULL, &f[i]) :
				      dj_execute_async(e.conn, "sleep", &h[0], 1, sleep.attrs_json,
						       NULL, NULL, &f[i]), 0);
	for (int i = 0; i < 8; i++) {
		int rc = dj_future_wait(f[i], -1);

		CU_ASSERT(rc == 0 || rc == -DJ_ELIMIT);
		ok += rc == 0;
		if (rc == 0 && i % 2) {
			CU_ASSERT_EQUAL(dj_future_batch_handles(f[i], &h[2], 1), 1);
		} else if (rc == 0) {
			CU_ASSERT_EQUAL(dj_future_handle(f[i], &h[2], NULL), 0);
		}
		dj_future_release(f[i]);
	}
	CU_ASSERT_EQUAL_FATAL(ok, 1);
	CU_ASSERT_EQUAL(session_stat(&e, "handles"), 3);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 3);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dj_free(e.conn, h[i]), 0);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	CU_ASSERT_EQUAL(session_stat(&e, "handles"), 0);
	env_down(&e);
}

/* An EXECUTE's payload is charged to the session's memory from when the
 * server accepts it, not only once its batch runs: requests queued behind
 * a busy worker cannot hold more than the limit between them. A payload
 * over the limit is refused at once and dropped, the session serves on;
 * the bytes pass to the puts' tensors, or back where the batch fails. */
static void test_batch_payload_held(void)
{
	struct ctl_server_config cfg;
	struct mem_backend_options mbo = {.session_bytes = 1000, .no_inline = 1};
	float v[100] = {0};
	struct dj_tensor one = f32_vec(v, 1), mid = f32_vec(v, 100);
	struct dj_batch_op put = {.put = &mid};
	struct dj_batch_op failing[2] = {{.put = &mid}, {.op = "nope", .inputs = {"$0"}, .n_in = 1}};
	struct dj_future *sleep, *f[3];
	uint64_t h, outs[2];
	struct env e;

	ctl_server_config_init(&cfg);
	cfg.n_workers = 1;
	env_up(&e, &cfg, &mbo);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &one, &h), 0);
	/* The only worker sleeps; three puts of 400 bytes wait behind it. */
	CU_ASSERT_EQUAL_FATAL(dj_execute_async(e.conn, "sleep", &h, 1, "{\"ms\":2000}", NULL, NULL,
					       &sleep), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(dj_execute_batch_async(e.conn, &put, 1, NULL, 0, NULL, NULL,
							     &f[i]), 0);
	/* The third is refused before the sleep ends: 4 + 400 + 400 held. */
	CU_ASSERT_EQUAL(dj_future_wait(f[2], 1900), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_future_error(f[2]),
				      "session memory limit: 804 + 400 bytes > 1000"));
	CU_ASSERT_FALSE(dj_future_done(sleep));
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	CU_ASSERT_EQUAL(session_stat(&e, "bytes"), 804);
	CU_ASSERT_EQUAL(dj_future_wait(sleep, -1), 0);
	CU_ASSERT_EQUAL(dj_future_handle(sleep, &outs[0], NULL), 0);
	CU_ASSERT_EQUAL(dj_free(e.conn, outs[0]), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], -1), 0);
		CU_ASSERT_EQUAL(dj_future_batch_handles(f[i], &outs[i], 1), 1);
	}
	for (int i = 0; i < 3; i++)
		dj_future_release(f[i]);
	dj_future_release(sleep);
	/* The payloads became the tensors: charged once, not twice. */
	CU_ASSERT_EQUAL(session_stat(&e, "bytes"), 804);
	CU_ASSERT_EQUAL(dj_free(e.conn, outs[0]), 0);
	CU_ASSERT_EQUAL(dj_free(e.conn, outs[1]), 0);
	/* A failing batch gives its payload's bytes back with its tensors. */
	CU_ASSERT_EQUAL(dj_execute_batch(e.conn, failing, 2, outs), -DJ_EUNKNOWN_OP);
	CU_ASSERT_EQUAL(session_stat(&e, "bytes"), 4);
	CU_ASSERT_EQUAL(dj_free(e.conn, h), 0);
	CU_ASSERT_EQUAL(session_stat(&e, "bytes"), 0);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	env_down(&e);
}

static void test_pool_reuse_health_idle(void)
{
	struct fixture fx;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_client_stats st;
	struct dj_conn *c;
	uint64_t first;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	o.pool_check_after_ms = 50;
	o.pool_idle_timeout_ms = 400;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
	first = dj_conn_session_id(c);
	dj_disconnect(c);
	for (int i = 0; i < 9; i++) {
		CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
		CU_ASSERT_EQUAL(dj_conn_session_id(c), first); /* same session reused */
		dj_disconnect(c);
	}
	dj_client_get_stats(cl, &st);
	CU_ASSERT_EQUAL(st.connects, 1);
	CU_ASSERT_EQUAL(st.reuses, 9);
	CU_ASSERT(st.reuse_rate > 0.89 && st.reuse_rate < 0.91);
	/* Idle past check_after: a PING before reuse. */
	usleep(100 * 1000);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
	dj_disconnect(c);
	dj_client_get_stats(cl, &st);
	CU_ASSERT_EQUAL(st.health_checks, 1);
	CU_ASSERT_EQUAL(st.reuses, 10);
	/* Idle past the idle timeout: closed, a new connection made. */
	usleep(500 * 1000);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
	CU_ASSERT_NOT_EQUAL(dj_conn_session_id(c), first);
	dj_disconnect(c);
	dj_client_get_stats(cl, &st);
	CU_ASSERT_EQUAL(st.idle_closed, 1);
	CU_ASSERT_EQUAL(st.connects, 2);
	/* The server goes: the pooled connection is not handed out. */
	ctl_server_stop(fx.srv);
	usleep(100 * 1000);
	CU_ASSERT_EQUAL(dj_connect(cl, &c), -ECONNREFUSED);
	dj_client_get_stats(cl, &st);
	CU_ASSERT_EQUAL(st.idle_closed + st.health_failures, 2);
	CU_ASSERT(st.retries >= 3); /* connect retried with backoff */
	dj_client_destroy(cl);
	fx_stop(&fx);
}

static void test_session_resumes_after_connection_loss(void)
{
	struct env e;
	struct dj_client_stats st;
	uint8_t src[4096], dst[4096] = {0};
	struct dj_tensor t = host_tensor(DJ_DTYPE_INT32, 1, (int64_t[]){1024}, src);
	struct dj_tensor back = t;
	uint64_t h, sid;

	back.data = dst;
	env_up(&e, NULL, NULL);
	fx_pattern(src, sizeof(src), 9);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h), 0);
	sid = dj_conn_session_id(e.conn);
	/* Cut the connection under the client's feet. */
	shutdown(e.conn->io.fd, SHUT_RDWR);
	usleep(50 * 1000);
	/* GET is idempotent: reconnect, resume, same session, same bytes. */
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, sizeof(src)), 0);
	CU_ASSERT_EQUAL(dj_conn_session_id(e.conn), sid);
	dj_client_get_stats(e.cl, &st);
	CU_ASSERT(st.retries >= 1);
	CU_ASSERT_EQUAL(st.connects, 2);
	env_down(&e);
}

/* A raw connection: HELLO, then SESSION with the given resume text. */
static int raw_resume(uint16_t port, const char *resume)
{
	char req[160];
	cJSON *r;
	int fd = fx_raw_connect(port), code;

	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	snprintf(req, sizeof(req), "{\"type\":\"SESSION\",\"id\":2,\"resume\":%s}", resume);
	fx_raw_send(fd, req, 0);
	r = fx_raw_recv(fd, 3000);
	code = r != NULL ? fx_error_code(r) : -9999;
	cJSON_Delete(r);
	close(fd);
	return code;
}

static void test_resume_needs_session_and_cookie(void)
{
	struct env e;
	char resume[128];
	uint64_t sid;

	env_up(&e, NULL, NULL);
	sid = dj_conn_session_id(e.conn);
	CU_ASSERT_EQUAL(raw_resume(e.fx.port, "{\"session\":999,\"cookie\":\"0x1\"}"), -ENOENT);
	/* Attached to a live connection: not up for grabs, even with its cookie. */
	snprintf(resume, sizeof(resume), "{\"session\":%llu,\"cookie\":\"0x%llx\"}",
		 (unsigned long long)sid, (unsigned long long)e.conn->cookie);
	CU_ASSERT_EQUAL(raw_resume(e.fx.port, resume), -ENOENT);
	/* Lingering after a dropped connection: the wrong cookie is refused. */
	shutdown(e.conn->io.fd, SHUT_RDWR);
	usleep(100 * 1000);
	snprintf(resume, sizeof(resume), "{\"session\":%llu,\"cookie\":\"0x%llx\"}",
		 (unsigned long long)sid, (unsigned long long)(e.conn->cookie ^ 1));
	CU_ASSERT_EQUAL(raw_resume(e.fx.port, resume), -ENOENT);
	CU_ASSERT_EQUAL(raw_resume(e.fx.port, "{\"session\":\"one\"}"), -EINVAL);
	/* The rightful client still gets it back. */
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	CU_ASSERT_EQUAL(dj_conn_session_id(e.conn), sid);
	env_down(&e);
}

struct async_count {
	pthread_mutex_t lock;
	int calls, failures;
};

static void count_cb(struct dj_future *f, void *arg)
{
	struct async_count *ac = arg;

	pthread_mutex_lock(&ac->lock);
	ac->calls++;
	ac->failures += dj_future_error(f)[0] != '\0';
	pthread_mutex_unlock(&ac->lock);
}

static void test_async_get_and_free(void)
{
	struct env e;
	struct async_count ac = {.lock = PTHREAD_MUTEX_INITIALIZER};
	float src[64][256], dst[64][256];
	uint64_t h[64];
	struct dj_future *f[64];

	env_up(&e, NULL, NULL);
	for (int i = 0; i < 64; i++) {
		struct dj_tensor t = f32_vec(src[i], 256);

		for (int k = 0; k < 256; k++)
			src[i][k] = (float)(i * 1000 + k);
		CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &t, &h[i]), 0);
	}
	memset(dst, 0, sizeof(dst));
	for (int i = 0; i < 64; i++) {
		struct dj_tensor t = f32_vec(dst[i], 256);

		CU_ASSERT_EQUAL_FATAL(dj_get_async(e.conn, h[i], &t, count_cb, &ac, &f[i]), 0);
	}
	for (int i = 0; i < 64; i++) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], 5000), 0);
		dj_future_release(f[i]);
	}
	CU_ASSERT_EQUAL(memcmp(src, dst, sizeof(src)), 0);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL_FATAL(dj_free_async(e.conn, h[i], count_cb, &ac, &f[i]), 0);
	/* One freed twice: its future fails with the server's message. */
	struct dj_future *again;

	CU_ASSERT_EQUAL(dj_future_wait(f[0], 5000), 0);
	CU_ASSERT_EQUAL_FATAL(dj_free_async(e.conn, h[0], count_cb, &ac, &again), 0);
	CU_ASSERT_EQUAL(dj_future_wait(again, 5000), -DJ_EHANDLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_future_error(again), "no tensor"));
	dj_future_release(again);
	for (int i = 0; i < 64; i++) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], 5000), 0);
		dj_future_release(f[i]);
	}
	CU_ASSERT_EQUAL(callbacks_settle(&ac.lock, &ac.calls, 64 + 64 + 1), 64 + 64 + 1);
	CU_ASSERT_EQUAL(ac.failures, 1);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	env_down(&e);
}

static void test_connection_limit(void)
{
	struct ctl_server_config cfg;
	struct env e;
	cJSON *r;
	int fds[3];

	ctl_server_config_init(&cfg);
	cfg.limits.max_connections = 3;
	env_up(&e, &cfg, NULL); /* one connection in use */
	fds[0] = fx_raw_connect(e.fx.port);
	fds[1] = fx_raw_connect(e.fx.port);
	CU_ASSERT_EQUAL(fx_raw_ready(fds[0]), 0);
	CU_ASSERT_EQUAL(fx_raw_ready(fds[1]), 0);
	/* Accepted (unauthenticated connections live on a budget of their
	 * own), refused once it would make a fourth authenticated one. */
	fds[2] = fx_raw_connect(e.fx.port);
	fx_raw_send(fds[2], "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0);
	r = fx_raw_recv(fds[2], 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_ELIMIT);
	CU_ASSERT(r != NULL && strstr(cJSON_GetObjectItem(r, "message")->valuestring,
				      "too many connections") != NULL);
	cJSON_Delete(r);
	CU_ASSERT(fx_raw_closed(fds[2], 3000));
	close(fds[1]);
	usleep(200 * 1000);
	fds[1] = fx_raw_connect(e.fx.port); /* room again */
	CU_ASSERT_EQUAL(fx_raw_ready(fds[1]), 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	env_down(&e);
}

static int make_cert(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
		 "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", dir, dir);
	return system(cmd);
}

static void test_tls(void)
{
	char dir[] = "/tmp/dj-tls-XXXXXX", cert[64], key[64];
	struct ctl_server_config cfg;
	struct dj_client_options o;
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *c;
	uint8_t src[100000], dst[100000];
	struct dj_tensor t = host_tensor(DJ_DTYPE_INT32, 1, (int64_t[]){25000}, src), back = t;
	uint64_t h;
	void *probe = NULL;

	if (ctl_tls_client_ctx(NULL, &probe) == -ENOTSUP)
		dj_test_skip("built without OpenSSL: no TLS");
	ctl_tls_ctx_free(probe);
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	if (make_cert(dir) != 0)
		dj_test_skip("openssl CLI cannot make a certificate");
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	ctl_server_config_init(&cfg);
	cfg.tls_cert = cert;
	cfg.tls_key = key;
	cfg.token = "tls-and-token";
	CU_ASSERT_FATAL(fx_start(&fx, &cfg, NULL) == 0);
	fx_client_opts(&fx, &o);
	o.token = "tls-and-token";
	o.tls = 1;
	o.tls_ca = cert;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
	back.data = dst;
	fx_pattern(src, sizeof(src), 4);
	CU_ASSERT_EQUAL(dj_put(c, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(c, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, sizeof(src)), 0);
	/* Many requests pipelined through TLS records (the server must read
	 * what OpenSSL already decrypted, which epoll cannot see). */
	struct dj_future *f[300];

	for (int i = 0; i < 300; i++)
		CU_ASSERT_EQUAL_FATAL(dj_execute_async(c, "dup", &h, 1, NULL, NULL, NULL, &f[i]), 0);
	for (int i = 0; i < 300; i++) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], 10000), 0);
		dj_future_release(f[i]);
	}
	dj_conn_close(c);
	dj_client_destroy(cl);
	/* Plain TCP against the TLS server: refused, server fine. */
	o.tls = 0;
	o.max_retries = 0;
	o.request_timeout_ms = 2000;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_NOT_EQUAL(dj_connect(cl, &c), 0);
	dj_client_destroy(cl);
	/* TLS, but trusting another CA: refused. */
	o.tls = 1;
	o.tls_ca = "/etc/ssl/certs/ca-certificates.crt";
	if (access(o.tls_ca, R_OK) == 0) {
		CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
		CU_ASSERT_NOT_EQUAL(dj_connect(cl, &c), 0);
		dj_client_destroy(cl);
	}
	fx_stop(&fx);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

/* ---- lifetimes ------------------------------------------------------------ */

/* HELLO + SESSION on a raw socket; *resume receives the resume object. */
static int raw_session(int fd, char *resume, size_t cap)
{
	const cJSON *sid, *cookie;
	cJSON *r;
	int ok;

	fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"SESSION\",\"id\":2}", 0);
	r = fx_raw_recv(fd, 3000);
	sid = cJSON_GetObjectItem(r, "session");
	cookie = cJSON_GetObjectItem(r, "cookie");
	ok = cJSON_IsNumber(sid) && cJSON_IsString(cookie);
	if (ok)
		snprintf(resume, cap, "{\"session\":%.0f,\"cookie\":\"%s\"}", sid->valuedouble,
			 cookie->valuestring);
	cJSON_Delete(r);
	return ok ? 0 : -1;
}

/* The "handle" text of an ALLOC of 4 floats on a raw socket. */
static int raw_alloc(int fd, char *handle, size_t cap)
{
	cJSON *r;
	const cJSON *h;
	int ok;

	fx_raw_send(fd, "{\"type\":\"ALLOC\",\"id\":3,\"dtype\":\"float32\",\"shape\":[4]}", 0);
	r = fx_raw_recv(fd, 3000);
	h = cJSON_GetObjectItem(r, "handle");
	ok = cJSON_IsString(h);
	if (ok)
		snprintf(handle, cap, "%s", h->valuestring);
	cJSON_Delete(r);
	return ok ? 0 : -1;
}

/* A job that outlives its connection and the session's linger: the session
 * is resumable at once (the job does not pin it to the dead connection),
 * stays open while the job runs, and closes only after it, leaving
 * nothing. */
static void test_linger_waits_for_running_job(void)
{
	struct ctl_server_config cfg;
	char resume[128], handle[40], req[256];
	struct env e;
	int fd;

	ctl_server_config_init(&cfg);
	cfg.limits.session_linger_ms = 100;
	env_up(&e, &cfg, NULL);
	fd = fx_raw_connect(e.fx.port);
	CU_ASSERT_FATAL(raw_session(fd, resume, sizeof(resume)) == 0);
	CU_ASSERT_FATAL(raw_alloc(fd, handle, sizeof(handle)) == 0);
	snprintf(req, sizeof(req), "{\"type\":\"EXECUTE\",\"id\":4,\"op\":\"sleep\","
		 "\"inputs\":[\"%s\"],\"attrs\":{\"ms\":900}}", handle);
	fx_raw_send(fd, req, 0);
	usleep(100 * 1000);
	close(fd);
	usleep(200 * 1000);
	CU_ASSERT_EQUAL(raw_resume(e.fx.port, resume), 0);
	/* Dropped again: linger long passed, the job still runs. */
	usleep(300 * 1000);
	CU_ASSERT_EQUAL(mem_backend_sessions(e.fx.mb), 2);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 1);
	/* The job ends (~900 ms in), its output lands in the session, then
	 * the session goes with everything it held. */
	usleep(900 * 1000);
	CU_ASSERT_EQUAL(mem_backend_sessions(e.fx.mb), 1);
	CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), 0);
	CU_ASSERT_EQUAL(mem_backend_tensors(e.fx.mb), 0);
	CU_ASSERT_EQUAL(dj_ping(e.conn, NULL), 0);
	env_down(&e);
}

/* dj_future_abandon, an event loop's own timeout: the connection is given up
 * at once (every pending request fails, its late reply lands nowhere), and
 * the next idempotent call resumes the session with its tensors. */
static void test_future_abandon(void)
{
	float a[4] = {1, 2, 3, 4}, back[4] = {0};
	struct dj_tensor ta = f32_vec(a, 4), tb = f32_vec(back, 4);
	struct dj_future *slow, *other;
	struct dj_tensor_desc d;
	uint64_t h, sid, start;
	struct env e;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &ta, &h), 0);
	sid = dj_conn_session_id(e.conn);
	CU_ASSERT_EQUAL_FATAL(
		dj_execute_async(e.conn, "sleep", &h, 1, "{\"ms\":2000}", NULL, NULL, &slow), 0);
	CU_ASSERT_EQUAL_FATAL(dj_get_async(e.conn, h, &tb, NULL, NULL, &other), 0);
	CU_ASSERT_EQUAL(dj_future_wait(slow, 20), -ETIMEDOUT);
	start = djc_time_ns();
	CU_ASSERT_EQUAL(dj_future_abandon(slow), 0);
	CU_ASSERT_EQUAL(dj_future_wait(slow, 1000), -ECONNRESET);
	/* The GET may have been answered before the connection went. */
	CU_ASSERT(dj_future_wait(other, 1000) == -ECONNRESET || dj_future_wait(other, 0) == 0);
	CU_ASSERT(djc_time_ns() - start < 1000ull * 1000 * 1000);
	CU_ASSERT_EQUAL(dj_future_abandon(slow), -EALREADY);
	dj_future_release(slow);
	dj_future_release(other);
	/* Not idempotent: refused until something reconnects. */
	CU_ASSERT_EQUAL(dj_execute(e.conn, "relu", &h, 1, NULL, NULL, NULL), -ECONNRESET);
	CU_ASSERT_EQUAL(dj_describe(e.conn, h, &d), 0);
	CU_ASSERT_EQUAL(dj_conn_session_id(e.conn), sid);
	CU_ASSERT_EQUAL(dj_get(e.conn, h, &tb), 0);
	CU_ASSERT(back[3] == 4.0f);
	env_down(&e);
}

/* cJSON allocations on the server's workers fail one at a time: the k-th
 * of a request's, for every k. */
static atomic_int oom_countdown;

static void *oom_malloc(size_t n)
{
	char name[16];

	if (atomic_load(&oom_countdown) > 0 &&
	    pthread_getname_np(pthread_self(), name, sizeof(name)) == 0 &&
	    strcmp(name, "dj-ctl-worker") == 0 && atomic_fetch_sub(&oom_countdown, 1) == 1)
		return NULL;
	return malloc(n);
}

/* An EXECUTE whose reply cannot be built answers a clean -ENOMEM, never a
 * crash or a partial reply, and leaves no output handle behind. */
static void test_execute_out_of_memory(void)
{
	float a[4] = {1, 2, 3, 4}, c[4];
	struct dj_tensor ta = f32_vec(a, 4), tc = f32_vec(c, 4);
	cJSON_Hooks hooks = {.malloc_fn = oom_malloc, .free_fn = free};
	uint64_t ha, outs[2];
	char ha_s[20];
	struct env e;
	int k, rc, failed = 0, live;

	env_up(&e, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &ta, &ha), 0);
	ctl_handle_format(ha, ha_s);
	struct dj_batch_op ops[2] = {
		{.op = "dup", .inputs = {ha_s}, .n_in = 1},
		{.op = "scale", .inputs = {"$0"}, .n_in = 1, .attrs_json = "{\"factor\":2}"},
	};
	live = mem_backend_live(e.fx.mb);
	cJSON_InitHooks(&hooks);
	for (k = 1; k < 500; k++) {
		atomic_store(&oom_countdown, k);
		rc = dj_execute_batch(e.conn, ops, 2, outs);
		if (atomic_load(&oom_countdown) > 0) {
			/* the request needed fewer than k allocations: done */
			CU_ASSERT_EQUAL(rc, 0);
			break;
		}
		failed++;
		CU_ASSERT_EQUAL(rc, -ENOMEM);
		CU_ASSERT_EQUAL(mem_backend_live(e.fx.mb), live);
	}
	atomic_store(&oom_countdown, 0);
	cJSON_InitHooks(NULL);
	printf("\n  %d allocations failed one by one\n", failed);
	CU_ASSERT(failed > 5);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(dj_get(e.conn, outs[1], &tc), 0);
	CU_ASSERT(c[3] == 8.0f);
	env_down(&e);
}

/* A quick EXECUTE (the backend's execute_inline says so) runs on the
 * connection thread: answered while the only worker sleeps, with the same
 * result as through a worker, where it waits for the sleeper. */
static void quick_execute_behind_sleeper(int no_inline, uint64_t *waited_ms)
{
	float a[4] = {1, 2, 3, 4}, back[4] = {0};
	struct dj_tensor ta = f32_vec(a, 4), tb = f32_vec(back, 4);
	struct mem_backend_options mbo = {.no_inline = no_inline};
	struct ctl_server_config cfg;
	struct dj_future *slow;
	struct dj_tensor_desc d;
	uint64_t h, out, start;
	struct env e;

	ctl_server_config_init(&cfg);
	cfg.n_workers = 1;
	env_up(&e, &cfg, &mbo);
	CU_ASSERT_EQUAL_FATAL(dj_put(e.conn, &ta, &h), 0);
	CU_ASSERT_EQUAL_FATAL(
		dj_execute_async(e.conn, "sleep", &h, 1, "{\"ms\":1500}", NULL, NULL, &slow), 0);
	usleep(100 * 1000); /* the worker has it */
	start = djc_time_ns();
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", &h, 1, "{\"factor\":3}", &out, &d), 0);
	*waited_ms = (djc_time_ns() - start) / 1000000;
	CU_ASSERT_EQUAL(d.ndim, 1);
	CU_ASSERT_EQUAL(d.shape[0], 4);
	CU_ASSERT_EQUAL(dj_get(e.conn, out, &tb), 0);
	CU_ASSERT(back[0] == 3.0f && back[3] == 12.0f);
	/* A handle it does not know goes to a worker, whose ERROR names it. */
	CU_ASSERT_EQUAL(dj_execute(e.conn, "scale", &(uint64_t){0x7777}, 1, NULL, &out, &d),
			-DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_future_wait(slow, 5000), 0);
	dj_future_release(slow);
	env_down(&e);
}

static void test_quick_execute_inline(void)
{
	uint64_t inline_ms = 0, worker_ms = 0;

	quick_execute_behind_sleeper(0, &inline_ms);
	quick_execute_behind_sleeper(1, &worker_ms);
	printf("\n  behind a 1.5 s sleeper: inline %llu ms, through the worker %llu ms\n",
	       (unsigned long long)inline_ms, (unsigned long long)worker_ms);
	CU_ASSERT(inline_ms < 700);
	CU_ASSERT(worker_ms >= 1000);
}

/* A server polling its epoll set (busy_poll_us) serves as a sleeping one
 * does and still stops at once, also in the middle of a poll. */
static void test_busy_poll_serves_and_stops(void)
{
	struct ctl_server_config cfg;
	uint64_t rtt, start;
	struct env e;

	ctl_server_config_init(&cfg);
	cfg.busy_poll_us = 200000;
	env_up(&e, &cfg, NULL);
	for (int i = 0; i < 200; i++)
		CU_ASSERT_EQUAL_FATAL(dj_ping(e.conn, &rtt), 0);
	dj_conn_close(e.conn);
	e.conn = NULL;
	start = djc_time_ns();
	env_down(&e);
	CU_ASSERT(djc_time_ns() - start < 1000ull * 1000 * 1000);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"handshake, ping, stats show the path", test_handshake_ping_stats},
		{"PUT/GET byte-exact 1 B .. 16 MiB", test_put_get_byte_exact},
		{"PUT/GET through a chunked backend", test_put_get_chunked_backend},
		{"alloc, describe, put_into, free, errors", test_tensor_lifecycle},
		{"EXECUTE and batches", test_execute_and_batch},
		{"batch puts, fetches and frees", test_batch_put_fetch_free},
		{"batch limits", test_batch_limits},
		{"batch payload held", test_batch_payload_held},
		{"batch payload limit", test_batch_payload_limit},
		{"1000 requests in flight, out of order", test_thousand_in_flight_out_of_order},
		{"quick EXECUTEs run on the connection thread", test_quick_execute_inline},
		{"a busy-polling server serves and stops", test_busy_poll_serves_and_stops},
		{"auth: none, wrong, right token", test_auth},
		{"auth: raw refusals close", test_auth_raw_refusals},
		{"protocol details a client relies on", test_protocol_details_for_clients},
		{"bad input catalogue", test_bad_input_catalogue},
		{"HELLO and SESSION come first", test_requests_need_hello_and_session},
		{"another session's handles are unreachable", test_other_sessions_handles_unreachable},
		{"half-sent frame and vanished client", test_half_sent_frame_and_vanished_client},
		{"trickling client is dropped", test_trickling_client_is_dropped},
		{"slow reader is dropped, others served", test_slow_reader_is_dropped},
		{"handle and memory limits", test_limits},
		{"pool: reuse, health check, idle timeout", test_pool_reuse_health_idle},
		{"session resumes after connection loss", test_session_resumes_after_connection_loss},
		{"resume needs the session's cookie", test_resume_needs_session_and_cookie},
		{"linger waits for a running job", test_linger_waits_for_running_job},
		{"EXECUTE out of memory: clean error", test_execute_out_of_memory},
		{"abandoned future: connection given up, session resumed", test_future_abandon},
		{"async GET and FREE with callbacks", test_async_get_and_free},
		{"connection limit", test_connection_limit},
		{"TLS with a generated certificate", test_tls},
		{NULL, NULL},
	};
	dj_test_add_suite("control-server", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
