/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the control plane tells operators: request counters by type and
 * result, latency histograms, tensor bytes by path and direction, queue
 * depth, the session list for other threads, and request ids that name
 * every log line of a request on both sides (over TCP and over a fake
 * data path).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "fake_dp.h"
#include "fixture.h"
#include "harness.h"

#define SERVER_PORT 4793
#define CLIENT_PORT 4794

static uint64_t hist_count(const struct ctl_request_stats *st, enum ctl_req_type t)
{
	uint64_t n = 0;

	for (int b = 0; b <= CTL_LATENCY_BUCKETS; b++)
		n += st->latency[t][b];
	return n;
}

static struct dj_tensor vec(float *v, int64_t n)
{
	struct dj_tensor t = {{DJ_DTYPE_FLOAT32, 1, {n}}, v, DJ_MEM_HOST};

	return t;
}

static const cJSON *path_get(const cJSON *o, const char *a, const char *b, const char *c)
{
	o = cJSON_GetObjectItem(o, a);
	if (b != NULL)
		o = cJSON_GetObjectItem(o, b);
	if (c != NULL)
		o = cJSON_GetObjectItem(o, c);
	return o;
}

static double num(const cJSON *o)
{
	return cJSON_IsNumber(o) ? o->valuedouble : -1;
}

/* Counters move by exactly what was done, histograms agree with them, and
 * STATS carries the same figures. */
static void test_request_counters(void)
{
	struct fixture fx;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct ctl_request_stats st;
	float a[1024], b[1024];
	struct dj_tensor ta = vec(a, 1024), tb = vec(b, 1024);
	uint64_t h;
	char *json;
	cJSON *stats;
	int fd;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	fx_pattern(a, sizeof(a), 1);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dj_ping(conn, NULL), 0);
	CU_ASSERT_EQUAL(dj_put(conn, &ta, &h), 0);
	CU_ASSERT_EQUAL(dj_get(conn, h, &tb), 0);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_EQUAL(dj_free(conn, 0x5eed), -DJ_EHANDLE);
	/* A malformed message and an unknown type on a raw connection. */
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);
	fx_raw_send(fd, "{\"type\":\"PING\",", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"REBOOT\",\"id\":4}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	close(fd);

	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_PING], 3);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_PUT], 1);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_GET], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FREE], 1);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_FREE], 0);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_OTHER], 2);
	/* Two handshakes: the client's and the raw one. */
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_HELLO], 2);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_SESSION], 2);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_IN], sizeof(a));
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_OUT], sizeof(a));
	CU_ASSERT_EQUAL(st.tensor_transfers[DJ_PATH_TCP][CTL_DIR_IN], 1);
	CU_ASSERT_EQUAL(st.tensor_transfers[DJ_PATH_TCP][CTL_DIR_OUT], 1);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_DPDK][CTL_DIR_IN], 0);
	for (int t = 0; t < CTL_REQ_TYPES; t++)
		CU_ASSERT_EQUAL(hist_count(&st, (enum ctl_req_type)t), st.ok[t] + st.errors[t]);
	CU_ASSERT(st.latency_sum_ns[CTL_REQ_PING] > 0);
	CU_ASSERT_EQUAL(st.jobs_queued, 0);
	CU_ASSERT_EQUAL(st.jobs_running, 0);

	/* STATS says the same (its own request counted once answered). */
	CU_ASSERT_EQUAL_FATAL(dj_stats(conn, &json), 0);
	stats = cJSON_Parse(json);
	free(json);
	CU_ASSERT_EQUAL(num(path_get(stats, "server", "requests_by_type", "PUT")), -1);
	CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(path_get(stats, "server", "requests_by_type", "PUT"),
						"ok")), 1);
	CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(path_get(stats, "server", "requests_by_type", "FREE"),
						"error")), 1);
	CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(path_get(stats, "server", "tensor_bytes", "tcp"),
						"in")), sizeof(a));
	CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(path_get(stats, "server", "tensor_bytes", "tcp"),
						"out")), sizeof(a));
	const cJSON *lat = path_get(stats, "server", "latency", NULL), *c;
	double total = 0;

	CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(lat, "bounds_s")), CTL_LATENCY_BUCKETS);
	CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(lat, "counts")),
			CTL_LATENCY_BUCKETS + 1);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(lat, "counts"))
		total += c->valuedouble;
	/* Every request so far but this STATS: 2 HELLO, 2 SESSION, 1 PATH, 3
	 * PING, PUT, GET, FREE, 2 OTHER. */
	CU_ASSERT_EQUAL(total, 13);
	CU_ASSERT_EQUAL(num(path_get(stats, "server", "jobs_queued", NULL)), 0);
	cJSON_Delete(stats);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

/* An EXECUTE batch's puts and fetches are tensor bytes over TCP: one
 * transfer each way, counted once the batch succeeded; a failed batch
 * moves nothing. */
static void test_batch_tensor_bytes(void)
{
	struct fixture fx;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct ctl_request_stats st;
	struct dj_future *f;
	float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, got[4];
	struct dj_tensor ta = vec(a, 4), tb = vec(b, 4);
	struct dj_batch_op ops[3] = {
		{.put = &ta},
		{.put = &tb},
		{.op = "add", .inputs = {"$0", "$1"}, .n_in = 2, .fetch = 1,
		 .free = (const int[]){0, 1, 2}, .n_free = 3},
	};

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch_async(conn, ops, 3, got, sizeof(got), NULL, NULL,
						     &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, -1), 0);
	dj_future_release(f);
	CU_ASSERT(got[0] == 11 && got[3] == 44);
	/* The same batch with an unknown operation fails as a whole. */
	ops[2].op = "no_such_op";
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch_async(conn, ops, 3, got, sizeof(got), NULL, NULL,
						     &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, -1), -DJ_EUNKNOWN_OP);
	dj_future_release(f);
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_EXECUTE], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_EXECUTE], 1);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_IN], sizeof(a) + sizeof(b));
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_OUT], sizeof(got));
	CU_ASSERT_EQUAL(st.tensor_transfers[DJ_PATH_TCP][CTL_DIR_IN], 1);
	CU_ASSERT_EQUAL(st.tensor_transfers[DJ_PATH_TCP][CTL_DIR_OUT], 1);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

static int session_count(struct ctl_server *srv, struct ctl_session_info *list, int max,
			 int want, int timeout_ms)
{
	int n = 0;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		n = ctl_server_sessions(srv, list, max);
		if (n == want)
			break;
		usleep(10000);
	}
	return n;
}

/* Other threads see the sessions (within a sweep), workers' queue depth. */
static void test_sessions_and_queue(void)
{
	struct ctl_server_config cfg;
	struct fixture fx;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *c1, *c2;
	struct ctl_session_info list[4];
	struct ctl_request_stats st;
	struct dj_future *f[3];
	float v[16] = {0};
	struct dj_tensor t = vec(v, 16);
	uint64_t h;
	int n;

	ctl_server_config_init(&cfg);
	cfg.n_workers = 1;
	CU_ASSERT_FATAL(fx_start(&fx, &cfg, NULL) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &c1) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &c2) == 0);
	CU_ASSERT_EQUAL(dj_put(c2, &t, &h), 0);
	n = session_count(fx.srv, list, 4, 2, 1000);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	for (int i = 0; i < n; i++) {
		const struct ctl_session_info *s = &list[i];
		int mine = s->id == dj_conn_session_id(c2);

		CU_ASSERT(s->attached);
		CU_ASSERT_EQUAL(s->path, DJ_PATH_TCP);
		CU_ASSERT_EQUAL(s->handles, mine ? 1u : 0u);
		CU_ASSERT(strncmp(s->peer, "127.0.0.1:", 10) == 0);
		CU_ASSERT(s->requests >= (mine ? 2u : 1u));
	}
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.sessions[1][DJ_PATH_TCP], 2);
	CU_ASSERT_EQUAL(st.sessions[0][DJ_PATH_TCP] + st.sessions[1][DJ_PATH_DPDK], 0);

	/* One worker, three 600 ms jobs: one runs, two wait. The server is
	 * watched until all three arrived, not for a fixed time: a loaded
	 * machine (a sanitizer build beside other jobs) may take longer than
	 * any sleep to read them. */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dj_execute_async(c2, "sleep", &h, 1, "{\"ms\":600}", NULL, NULL,
						 &f[i]), 0);
	for (int i = 0; i < 400; i++) {
		ctl_server_request_stats(fx.srv, &st);
		if (st.jobs_running + st.jobs_queued == 3)
			break;
		usleep(5000);
	}
	CU_ASSERT_EQUAL(st.jobs_running, 1);
	CU_ASSERT_EQUAL(st.jobs_queued, 2);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(dj_future_wait(f[i], 5000), 0);
		dj_future_release(f[i]);
	}
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.jobs_running + st.jobs_queued, 0);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_EXECUTE], 3);
	/* The last waited about 1.8 s: a bucket at or past 0.5 s holds it. */
	uint64_t slow = 0;

	for (int b = 0; b <= CTL_LATENCY_BUCKETS; b++)
		if (b == CTL_LATENCY_BUCKETS || ctl_latency_bounds[b] > 0.5)
			slow += st.latency[CTL_REQ_EXECUTE][b];
	CU_ASSERT(slow >= 1);

	/* Goodbye: one session left. */
	dj_conn_close(c1);
	CU_ASSERT_EQUAL(session_count(fx.srv, list, 4, 1, 1000), 1);
	CU_ASSERT_EQUAL(list[0].id, dj_conn_session_id(c2));
	/* max 0: only the count. */
	CU_ASSERT_EQUAL(ctl_server_sessions(fx.srv, NULL, 0), 1);
	dj_conn_close(c2);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

/* ---- request ids in the log ------------------------------------------------ */

struct captured {
	FILE *f;
	char *text;
};

static void capture_start(struct captured *c)
{
	c->f = tmpfile();
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->f);
	c->text = NULL;
	djc_log_set_stream(c->f);
	dj_log_set_level(DJ_LOG_DEBUG);
}

static void capture_end(struct captured *c)
{
	long n;

	dj_log_set_level(DJ_LOG_NOTICE);
	djc_log_set_stream(NULL);
	fflush(c->f);
	n = ftell(c->f);
	rewind(c->f);
	c->text = calloc(1, (size_t)n + 1);
	if (c->text != NULL && fread(c->text, 1, (size_t)n, c->f) != (size_t)n)
		c->text[0] = '\0';
	fclose(c->f);
}

/* The request id of the first line of component naming one, whose
 * message starts with what; "" where there is none. */
static void req_of(const char *text, const char *component, const char *what, char *id,
		   size_t size)
{
	char head[64], body[128];

	snprintf(head, sizeof(head), " %s req=", component);
	snprintf(body, sizeof(body), ": %s", what);
	id[0] = '\0';
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		const char *h = strstr(line, head), *b = strstr(line, body);

		if (h != NULL && b != NULL && (end == NULL || b < end) && h < b) {
			h += strlen(head);
			snprintf(id, size, "%.*s", (int)(b - h), h);
			return;
		}
		line = end != NULL ? end + 1 : NULL;
	}
}

/* Lines that contain the formatted text. */
static int lines_with(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lines_with(const char *text, const char *fmt, ...)
{
	char want[256];
	va_list ap;
	int n = 0;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		const char *hit = strstr(line, want);

		if (hit != NULL && (end == NULL || hit < end))
			n++;
		line = end != NULL ? end + 1 : NULL;
	}
	return n;
}

/* One id from the client's call to the server's reply, in both sides'
 * lines; a client-chosen id (raw "trace") and a made-up one (none sent). */
static void test_request_ids_tcp(void)
{
	struct fixture fx;
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct captured cap;
	float a[256] = {0};
	struct dj_tensor t = vec(a, 256);
	char id[64], id2[64];
	uint64_t h;
	int fd;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fx_client_opts(&fx, &o);
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fx_raw_ready(fd) == 0);

	capture_start(&cap);
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(conn, h, &t), 0);
	fx_raw_send(fd, "{\"type\":\"PING\",\"id\":41,\"trace\":\"job-7.step:3\"}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"PING\",\"id\":42}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	/* A trace that would break a log line is refused, named. */
	fx_raw_send(fd, "{\"type\":\"PING\",\"id\":43,\"trace\":\"x\\n[err] forged\"}", 0);
	cJSON *r = fx_raw_recv(fd, 3000);

	CU_ASSERT_EQUAL(fx_error_code(r), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(r, "message")->valuestring, "trace"));
	cJSON_Delete(r);
	usleep(50000); /* the reader thread's lines */
	capture_end(&cap);

	/* The server's PUT line and the client's name the same request. */
	req_of(cap.text, "ctl", "PUT ok in", id, sizeof(id));
	CU_ASSERT_EQUAL(strncmp(id, "c", 1), 0);
	CU_ASSERT(strlen(id) > 8);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=%s: PUT ok in", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: PUT ok in", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "req=%s: PUT ok in", id), 2);
	CU_ASSERT_EQUAL(lines_with(cap.text, "(1024 B over tcp)"), 2);
	req_of(cap.text, "ctl", "GET ok in", id2, sizeof(id2));
	CU_ASSERT(strlen(id2) > 8);
	CU_ASSERT(strcmp(id, id2) != 0);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: GET ok in", id2), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=job-7.step:3: PING ok"), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=s%" PRIu64 "-42: PING ok",
				   dj_conn_session_id(conn) + 1), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "forged"), 0);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl: PING failed"), 1);
	free(cap.text);
	close(fd);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
}

/* Over a data path: the client's PUT/GET, the server's READY, PUT_DONE and
 * GET, and the data-plane transfer all carry one id per call; the bytes
 * are counted under dpdk. */
static void test_request_ids_data_path(void)
{
	struct fake_net *net = fake_net_create();
	struct fake_dp *sdp = fake_dp_create(net, SERVER_PORT), *cdp = fake_dp_create(net, CLIENT_PORT);
	struct ctl_server_config cfg;
	struct dj_client_options o;
	struct ctl_request_stats st;
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct captured cap;
	float a[4096] = {0}, b[4096];
	struct dj_tensor ta = vec(a, 4096), tb = vec(b, 4096);
	char id[64], xfer[64];
	const char *x;
	uint64_t h;

	sdp->available = cdp->available = 1;
	ctl_server_config_init(&cfg);
	cfg.datapath = &sdp->dp;
	CU_ASSERT_FATAL(fx_start(&fx, &cfg, NULL) == 0);
	fx_client_opts(&fx, &o);
	o.datapath = &cdp->dp;
	o.path = DJ_PATH_DPDK;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	fx_pattern(a, sizeof(a), 3);

	capture_start(&cap);
	CU_ASSERT_EQUAL(dj_put(conn, &ta, &h), 0);
	CU_ASSERT_EQUAL(dj_get(conn, h, &tb), 0);
	usleep(50000);
	capture_end(&cap);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);

	req_of(cap.text, "ctl", "PUT_DONE ok in", id, sizeof(id));
	CU_ASSERT(strlen(id) > 8);
	/* Client: PUT (READY), the transfer, PUT_DONE; server: the same. */
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: PUT ok", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: PUT_DONE ok", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=%s: PUT ok", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=%s: session", id), 1); /* armed */
	/* The client's and the server's lines name one transfer. */
	x = strstr(cap.text, "ctl-client req=");
	x = x != NULL ? strstr(x, ": session ") : NULL;
	x = x != NULL ? strstr(x, "xfer ") : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	snprintf(xfer, sizeof(xfer), "%.*s,", (int)strcspn(x, ","), x);
	CU_ASSERT_EQUAL(lines_with(cap.text, "%s", xfer), 3);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl req=%s: PUT_DONE ok", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "%s 16384 B over dpdk)", xfer), 1);
	req_of(cap.text, "ctl", "GET ok in", id, sizeof(id));
	CU_ASSERT(strlen(id) > 8);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: session", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "ctl-client req=%s: GET ok", id), 1);
	CU_ASSERT_EQUAL(lines_with(cap.text, "16384 B over dpdk)"), 2);
	free(cap.text);

	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_DPDK][CTL_DIR_IN], sizeof(a));
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_DPDK][CTL_DIR_OUT], sizeof(a));
	CU_ASSERT_EQUAL(st.tensor_transfers[DJ_PATH_DPDK][CTL_DIR_IN], 1);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_IN], 0);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_PUT_DONE], 1);

	/* A failed transfer is counted, and redone over TCP. */
	atomic_store(&cdp->fail_sends, 1);
	CU_ASSERT_EQUAL(dj_put(conn, &ta, &h), 0);
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.tensor_bytes[DJ_PATH_TCP][CTL_DIR_IN], sizeof(a));
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_PUT_DONE], 1);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&fx);
	fake_dp_destroy(sdp);
	fake_dp_destroy(cdp);
	fake_net_destroy(net);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"request counters, histograms, tensor bytes, STATS", test_request_counters},
		{"an EXECUTE batch's puts and fetches are tensor bytes", test_batch_tensor_bytes},
		{"session list and queue depth for other threads", test_sessions_and_queue},
		{"one request id on both sides' log lines (TCP)", test_request_ids_tcp},
		{"request ids over the data path", test_request_ids_data_path},
		{NULL, NULL},
	};
	dj_test_add_suite("control-observe", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
