/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Path negotiation and the mid-session move to TCP, with an in-process fake
 * data path: DPDK only when both sides have it and the probe succeeds; the
 * client can insist; a failing data path hands the interrupted transfer to
 * TCP (redone, byte-exact) and, after repeated failures, the whole session.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "controlplane/ctl_wire.h"
#include "fake_dp.h"
#include "fixture.h"
#include "harness.h"

#define SERVER_PORT 4791
#define CLIENT_PORT 4792

struct pathenv {
	struct fake_net *net;
	struct fake_dp *sdp, *cdp;
	struct fixture fx;
	struct dj_client *cl;
	struct dj_conn *conn;
};

/* Queue pairs both fake data paths announce (stripes: see pe_up_striped). */
static uint16_t pe_queues = 1;
/* The client's dp_stripe_min. */
static uint64_t pe_stripe_min = DJ_STRIPE_MIN_DEFAULT;
/* Session opens the server's fake data path refuses with -EEXIST first. */
static int pe_refused_opens;
/* Session opens the server's fake data path refuses with -DJ_ELIMIT first. */
static int pe_limited_opens;

/* server_dp / client_dp: 0 none, 1 present. */
static int pe_up(struct pathenv *pe, int server_dp, int client_dp, enum dj_path want,
		 int probe_rc)
{
	struct ctl_server_config cfg;
	struct dj_client_options o;
	int rc;

	memset(pe, 0, sizeof(*pe));
	pe->net = fake_net_create();
	pe->sdp = fake_dp_create(pe->net, SERVER_PORT);
	pe->cdp = fake_dp_create(pe->net, CLIENT_PORT);
	pe->sdp->available = server_dp;
	pe->cdp->available = client_dp;
	pe->cdp->probe_rc = probe_rc;
	pe->sdp->exist_opens = pe_refused_opens;
	pe->sdp->limit_opens = pe_limited_opens;
	pe->sdp->ep.n_queues = pe->cdp->ep.n_queues = pe_queues;
	ctl_server_config_init(&cfg);
	cfg.datapath = &pe->sdp->dp;
	cfg.dp_timeout_ms = 500;
	CU_ASSERT_FATAL(fx_start(&pe->fx, &cfg, NULL) == 0);
	fx_client_opts(&pe->fx, &o);
	o.datapath = &pe->cdp->dp;
	o.path = want;
	o.dp_timeout_ms = 500;
	o.dp_stripe_min = pe_stripe_min;
	CU_ASSERT_FATAL(dj_client_create(&o, &pe->cl) == 0);
	rc = dj_connect(pe->cl, &pe->conn);
	if (rc != 0)
		pe->conn = NULL;
	return rc;
}

static void pe_down(struct pathenv *pe)
{
	if (pe->conn != NULL)
		dj_conn_close(pe->conn);
	dj_client_destroy(pe->cl);
	fx_stop(&pe->fx);
	/* Both data planes heard every close. */
	CU_ASSERT_EQUAL(pe->sdp->sessions_open, 0);
	CU_ASSERT_EQUAL(pe->cdp->sessions_open, 0);
	fake_dp_destroy(pe->sdp);
	fake_dp_destroy(pe->cdp);
	fake_net_destroy(pe->net);
}

static const char *path_of(struct pathenv *pe, const char **reason)
{
	return dj_path_name(dj_conn_path(pe->conn, reason));
}

/* The server's view, from STATS. */
static int server_says(struct pathenv *pe, const char *path, const char *reason_part)
{
	char *json = NULL;
	cJSON *st, *s;
	int ok;

	if (dj_stats(pe->conn, &json) != 0)
		return 0;
	st = cJSON_Parse(json);
	s = cJSON_GetObjectItem(st, "session");
	/* A missing or non-string field fails the check instead of crashing the test. */
	const char *got_path = cJSON_GetStringValue(cJSON_GetObjectItem(s, "path"));
	const char *got_reason = cJSON_GetStringValue(cJSON_GetObjectItem(s, "path_reason"));
	ok = got_path != NULL && got_reason != NULL && strcmp(got_path, path) == 0 &&
	     strstr(got_reason, reason_part) != NULL;
	if (!ok)
		printf("\n  server STATS: %s\n", json);
	cJSON_Delete(st);
	free(json);
	return ok;
}

static void test_both_dpdk_probe_ok(void)
{
	struct pathenv pe;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "dpdk");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "probe succeeded"));
	CU_ASSERT_EQUAL(pe.cdp->probes, 1);
	CU_ASSERT(server_says(&pe, "dpdk", "probe succeeded"));
	pe_down(&pe);
}

static void test_server_without_dpdk(void)
{
	struct pathenv pe;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 0, 1, DJ_PATH_AUTO, 0), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "peer has no DPDK"));
	CU_ASSERT_EQUAL(pe.cdp->probes, 0);
	CU_ASSERT(server_says(&pe, "tcp", "peer has no DPDK"));
	pe_down(&pe);
}

static void test_client_without_dpdk(void)
{
	struct pathenv pe;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 0, DJ_PATH_AUTO, 0), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "this side has no DPDK"));
	pe_down(&pe);
}

static void test_probe_failure_falls_back(void)
{
	struct pathenv pe;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, -ETIMEDOUT), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "probe failed"));
	CU_ASSERT(server_says(&pe, "tcp", "probe failed"));
	pe_down(&pe);
}

/* The probe failed (a restarted server's memif link not up yet): TCP for
 * now, and the client probes again before later transfers, backing off,
 * until one succeeds; then the session is back on DPDK, both sides agree,
 * and transfers use the data plane again. */
static void test_probe_retried_until_dpdk(void)
{
	uint8_t src[4096], dst[4096];
	struct dj_tensor t = {.data = src, .mem = DJ_MEM_HOST}, back = {.data = dst, .mem = DJ_MEM_HOST};
	struct pathenv pe;
	uint64_t h, t0;
	int sends;

	t.desc.dtype = DJ_DTYPE_FLOAT32;
	t.desc.ndim = 1;
	t.desc.shape[0] = sizeof(src) / 4;
	back.desc = t.desc;
	fx_pattern(src, sizeof(src), 5);
	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, -ENETDOWN), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "tcp");
	/* Too soon to probe again, and the link still down: TCP, no probe. */
	CU_ASSERT_EQUAL(dj_put(pe.conn, &t, &h), 0);
	CU_ASSERT_EQUAL(pe.cdp->probes, 1);
	usleep(600 * 1000);
	CU_ASSERT_EQUAL(dj_put(pe.conn, &t, &h), 0); /* one more probe, still down */
	CU_ASSERT_EQUAL(pe.cdp->probes, 2);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "tcp");
	pe.cdp->probe_rc = 0; /* the link is back */
	t0 = djc_time_ns();
	while (strcmp(path_of(&pe, NULL), "dpdk") != 0 && djc_time_ns() - t0 < 5000000000ull) {
		CU_ASSERT_EQUAL(dj_put(pe.conn, &t, &h), 0);
		usleep(50 * 1000);
	}
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	CU_ASSERT(server_says(&pe, "dpdk", "succeeded again"));
	sends = pe.sdp->sends + pe.cdp->sends;
	CU_ASSERT_EQUAL(dj_put(pe.conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(pe.conn, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, sizeof(src)), 0);
	CU_ASSERT_EQUAL(pe.sdp->sends + pe.cdp->sends, sends + 2); /* both over the data path */
	pe_down(&pe);
}

#define NO_DP_SESSION "the server's data plane opened no session for it: limit exceeded"

/* The server's data plane opens no session for this one (its engine's
 * lcores hold all they can: -DJ_ELIMIT). SESSION says so and the client
 * goes TCP at once with the server's reason: it never probes a session
 * the server did not open, neither at connect nor before later transfers.
 * A new session, on a new connection, gets its data path again. */
static void test_server_opened_no_dp_session(void)
{
	uint8_t src[4096], dst[4096];
	struct dj_tensor t = {.data = src, .mem = DJ_MEM_HOST}, back = {.data = dst, .mem = DJ_MEM_HOST};
	struct pathenv pe;
	struct dj_conn *again = NULL;
	const char *reason;
	uint64_t h, t0;

	t.desc.dtype = DJ_DTYPE_FLOAT32;
	t.desc.ndim = 1;
	t.desc.shape[0] = sizeof(src) / 4;
	back.desc = t.desc;
	fx_pattern(src, sizeof(src), 9);
	pe_limited_opens = 1;
	t0 = djc_time_ns();
	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	pe_limited_opens = 0;
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_STRING_EQUAL(reason, NO_DP_SESSION);
	CU_ASSERT_EQUAL(pe.cdp->probes, 0);
	CU_ASSERT_EQUAL(pe.cdp->sessions_open, 0); /* nor opened one on its side */
	CU_ASSERT_EQUAL(pe.sdp->sessions_open, 0);
	CU_ASSERT(server_says(&pe, "tcp", NO_DP_SESSION));
	/* At once: no probe timeout waited out (it is 500 ms). */
	CU_ASSERT(djc_time_ns() - t0 < 400000000ull);
	/* Past the first re-probe time: still no probe, bytes over TCP. */
	usleep(600 * 1000);
	CU_ASSERT_EQUAL(dj_put(pe.conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(pe.conn, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, sizeof(src)), 0);
	CU_ASSERT_EQUAL(pe.cdp->probes, 0);
	CU_ASSERT_EQUAL(pe.cdp->sends + pe.sdp->sends, 0);
	/* Another session: the server's data plane takes it. */
	CU_ASSERT_EQUAL_FATAL(dj_connect(pe.cl, &again), 0);
	CU_ASSERT_EQUAL(dj_path_name(dj_conn_path(again, NULL))[0], 'd');
	CU_ASSERT_EQUAL(pe.cdp->probes, 1);
	dj_conn_close(again);
	pe_down(&pe);
}

/* dpdk forced, and the server opened no data-plane session: no connection
 * (-DJ_ENODPDK), without a probe. */
static void test_forced_dpdk_no_dp_session(void)
{
	struct pathenv pe;

	pe_limited_opens = 1;
	CU_ASSERT_EQUAL(pe_up(&pe, 1, 1, DJ_PATH_DPDK, 0), -DJ_ENODPDK);
	pe_limited_opens = 0;
	CU_ASSERT_EQUAL(pe.cdp->probes, 0);
	pe_down(&pe);
}

/* A raw connection (*fd) whose HELLO announces a DPDK endpoint; its
 * SESSION reply, or NULL (an ERROR, or none). */
static cJSON *raw_session(uint16_t port, int *fd)
{
	static const char hello[] = "{\"type\":\"HELLO\",\"id\":1,\"version\":1,\"caps\":"
		"{\"dpdk\":true,\"endpoint\":{\"mac\":\"02:00:00:00:00:07\",\"ipv4\":"
		"\"10.9.0.7\",\"udp_port\":4797,\"queues\":1}}}";
	cJSON *r;

	*fd = fx_raw_connect(port);
	if (*fd < 0 || fx_raw_send(*fd, hello, 0) != 0)
		return NULL;
	cJSON_Delete(fx_raw_recv(*fd, 5000));
	if (fx_raw_send(*fd, "{\"type\":\"SESSION\",\"id\":2}", 0) != 0)
		return NULL;
	r = fx_raw_recv(*fd, 5000);
	if (r != NULL && fx_error_code(r) != 0) {
		cJSON_Delete(r);
		r = NULL;
	}
	return r;
}

/* SESSION's fields on the wire, as an outside client sees them: dp_open
 * false, the data path's error and the reason; PATH dpdk is refused with
 * that reason, PATH tcp taken. A session whose data path opened has none
 * of these fields (an old client's reply is unchanged). */
static void test_no_dp_session_on_the_wire(void)
{
	const char *fields[] = {"dp_open", "dp_error", "dp_reason"};
	struct pathenv pe;
	cJSON *r;
	int fd;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 0, DJ_PATH_AUTO, 0), 0);
	pe.sdp->limit_opens = 1;
	r = raw_session(pe.fx.port, &fd);
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(r, "dp_open")));
	CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "dp_error")), -DJ_ELIMIT);
	CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(r, "dp_reason")),
			       NO_DP_SESSION);
	CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(r, "path")), "tcp");
	cJSON_Delete(r);
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"PATH\",\"id\":3,\"path\":\"dpdk\"}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_ENODPDK);
	CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(r, "message")),
			       NO_DP_SESSION);
	cJSON_Delete(r);
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"PATH\",\"id\":4,\"path\":\"tcp\"}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(fx_error_code(r), 0);
	cJSON_Delete(r);
	close(fd);
	/* The same HELLO where the data path opens: none of the fields. */
	r = raw_session(pe.fx.port, &fd);
	CU_ASSERT_FATAL(r != NULL);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(r, fields[i]));
	cJSON_Delete(r);
	close(fd);
	/* The raw sessions linger; the server's stop closes them. */
	pe_down(&pe);
}

static void test_forced_tcp(void)
{
	struct pathenv pe;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_TCP, 0), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "forced"));
	CU_ASSERT_EQUAL(pe.cdp->probes, 0); /* not even tried */
	pe_down(&pe);
}

static void test_forced_dpdk_refused_without_it(void)
{
	struct pathenv pe;

	CU_ASSERT_EQUAL(pe_up(&pe, 0, 1, DJ_PATH_DPDK, 0), -DJ_ENODPDK);
	pe_down(&pe);
	CU_ASSERT_EQUAL(pe_up(&pe, 1, 1, DJ_PATH_DPDK, -EHOSTUNREACH), -DJ_ENODPDK);
	pe_down(&pe);
	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_DPDK, 0), 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	pe_down(&pe);
}

static void put_get_check(struct pathenv *pe, size_t n, uint32_t seed)
{
	int64_t halves = (int64_t)n / 2;
	uint8_t *src = malloc(n), *dst = calloc(1, n);
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT16, .ndim = 1, .shape = {halves}},
			      .data = src, .mem = DJ_MEM_HOST};
	struct dj_tensor back = t;
	uint64_t h;

	back.data = dst;
	fx_pattern(src, n, seed);
	CU_ASSERT_EQUAL_FATAL(dj_put(pe->conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(pe->conn, h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, n), 0);
	CU_ASSERT_EQUAL(dj_free(pe->conn, h), 0);
	free(src);
	free(dst);
}

static void test_transfers_over_dpdk(void)
{
	struct pathenv pe;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	put_get_check(&pe, 2, 1);
	put_get_check(&pe, 3u << 20, 2);
	/* Both directions went over the data path, none over TCP payloads. */
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 2);
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 2);
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0);
	pe_down(&pe);
}

static void test_failed_transfer_redone_then_session_moves(void)
{
	struct pathenv pe;
	struct dj_client_stats st;
	const char *reason;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	/* One PUT times out on the data plane: redone over TCP, bytes intact,
	 * the session stays on DPDK (one failure is not a pattern). */
	pe.cdp->fail_sends = 1;
	put_get_check(&pe, 1u << 20, 3);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	pe.sdp->fail_sends = 1; /* its GET fails after a success: not yet a pattern */
	put_get_check(&pe, 4096, 6);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0); /* the aborted PUT left nothing */
	/* That GET failed; the next PUT fails too: two in a row. Redone over
	 * TCP, and the session moves to TCP, on both sides. */
	pe.cdp->fail_sends = 1;
	put_get_check(&pe, 1u << 20, 4);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, &reason), "tcp");
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "moved from dpdk"));
	CU_ASSERT(server_says(&pe, "tcp", "moved from dpdk"));
	dj_client_get_stats(pe.cl, &st);
	CU_ASSERT_EQUAL(st.dp_fallbacks, 1);
	/* From now on, TCP only: the data path sees nothing more. */
	int sends = pe.cdp->sends + pe.sdp->sends;

	put_get_check(&pe, 4096, 5);
	CU_ASSERT_EQUAL(pe.cdp->sends + pe.sdp->sends, sends);
	pe_down(&pe);
}

/* Readers of the session's path on other threads while transfers on two
 * threads fail at once and move the session to TCP, and FREEs of no
 * tensor set the connection's last error: every read sees a path and the
 * reason that goes with it, and an error text, whole; the session moves
 * once. (Under TSan this is the evidence that path, reason, device, the
 * last error and the failure count are read and written well-defined.) */
struct path_race {
	struct pathenv *pe;
	atomic_int stop;
	atomic_int bad, reads;
};

/* The errors a failing data-plane PUT leaves: its PUT_DONE abort
 * answered, or a PUT that asked for the data plane just after another
 * thread moved the session to TCP (redone over TCP). */
#define NOT_DPDK "this session does not use the DPDK data path"

static int aborted_put(const char *err)
{
	return strncmp(err, "data-plane transfer ", 20) == 0 &&
	       strstr(err, " aborted by the client: Operation canceled") != NULL;
}

static void *path_reader(void *arg)
{
	struct path_race *pr = arg;
	const char *reason;

	while (!atomic_load(&pr->stop)) {
		enum dj_path p = dj_conn_path(pr->pe->conn, &reason);
		int dpdk = strstr(reason, "probe succeeded") != NULL;
		int moved = strncmp(reason, "moved from dpdk after ", 22) == 0;

		const char *err = dj_conn_last_error(pr->pe->conn);

		if ((p == DJ_PATH_DPDK) != dpdk || (p == DJ_PATH_TCP) != moved ||
		    strcmp(dj_conn_device(pr->pe->conn), "") != 0 ||
		    (err[0] != '\0' && (strncmp(err, "no tensor 0xdead", 16) != 0 ||
					strstr(err, " in this session") == NULL) &&
		     !aborted_put(err) && strcmp(err, NOT_DPDK) != 0))
			atomic_fetch_add(&pr->bad, 1);
		atomic_fetch_add(&pr->reads, 1);
	}
	return NULL;
}

static void *failing_puts(void *arg)
{
	struct path_race *pr = arg;
	static _Thread_local uint8_t src[4096];
	struct dj_tensor t = {.data = src, .mem = DJ_MEM_HOST};
	uint64_t h;

	t.desc.dtype = DJ_DTYPE_FLOAT32;
	t.desc.ndim = 1;
	t.desc.shape[0] = sizeof(src) / 4;
	for (int i = 0; i < 8; i++)
		if (dj_put(pr->pe->conn, &t, &h) != 0 || dj_free(pr->pe->conn, h) != 0 ||
		    dj_free(pr->pe->conn, 0xdead0000u + (uint64_t)i) != -DJ_EHANDLE)
			atomic_fetch_add(&pr->bad, 1);
	return NULL;
}

static void test_path_read_while_moving(void)
{
	struct path_race pr = {0};
	struct dj_client_stats st;
	struct pathenv pe;
	pthread_t rd, wr[2];

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	pr.pe = &pe;
	pe.cdp->fail_sends = 1000; /* every data-plane PUT fails */
	CU_ASSERT_FATAL(pthread_create(&rd, NULL, path_reader, &pr) == 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_FATAL(pthread_create(&wr[i], NULL, failing_puts, &pr) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(wr[i], NULL);
	atomic_store(&pr.stop, 1);
	pthread_join(rd, NULL);
	CU_ASSERT_EQUAL(atomic_load(&pr.bad), 0);
	CU_ASSERT(atomic_load(&pr.reads) > 0);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "tcp");
	dj_client_get_stats(pe.cl, &st);
	CU_ASSERT_EQUAL(st.dp_fallbacks, 1);
	CU_ASSERT(server_says(&pe, "tcp", "moved from dpdk"));
	pe_down(&pe);
}

/* Both sides with 4 queues: 4 stripes, parts of at least 64 KiB. */
static int pe_up_striped(struct pathenv *pe)
{
	int rc;

	pe_queues = 4;
	pe_stripe_min = 64 << 10;
	rc = pe_up(pe, 1, 1, DJ_PATH_AUTO, 0);
	pe_queues = 1;
	pe_stripe_min = DJ_STRIPE_MIN_DEFAULT;
	return rc;
}

/* Stripes over the fake: one data-plane session per stripe on each side,
 * a PUT and a GET of 4 parts (one send per part: the fake has no
 * send_parts), one under the threshold whole; STATS says 4. */
static void test_striped_transfers(void)
{
	struct pathenv pe;
	char *json = NULL;

	CU_ASSERT_EQUAL_FATAL(pe_up_striped(&pe), 0);
	CU_ASSERT_EQUAL(pe.sdp->sessions_open, 4);
	CU_ASSERT_EQUAL(pe.cdp->sessions_open, 4);
	CU_ASSERT_EQUAL(dj_stats(pe.conn, &json), 0);
	CU_ASSERT_PTR_NOT_NULL(json != NULL ? strstr(json, "\"stripes\":\t4") : NULL);
	free(json);
	put_get_check(&pe, (4u << 16) + 2, 1);
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 4);
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 4);
	put_get_check(&pe, (2u << 16) - 2, 2);
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 5);
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 5);
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0);
	pe_down(&pe);
}

/* The server's data path has an id open with this peer already (-EEXIST:
 * the peer numbered it, for a session where the server is a member): the
 * session takes the next range of ids, whole, until every stripe opens,
 * and the client opens the same ids. */
static void test_session_id_taken_next_range(void)
{
	struct pathenv pe;
	uint64_t id;

	pe_refused_opens = 2;
	CU_ASSERT_EQUAL_FATAL(pe_up_striped(&pe), 0);
	pe_refused_opens = 0;
	id = dj_conn_session_id(pe.conn);
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	CU_ASSERT_EQUAL(pe.sdp->sessions_open, 4);
	CU_ASSERT_EQUAL(pe.cdp->sessions_open, 4);
	CU_ASSERT_EQUAL(atomic_load(&pe.sdp->n_refused), 2);
	/* Stripe 0 of two ranges refused, the third range taken whole. */
	CU_ASSERT_EQUAL(pe.sdp->refused_ids[0] + 8, id);
	CU_ASSERT_EQUAL(pe.sdp->refused_ids[1] + 4, id);
	CU_ASSERT_EQUAL(atomic_load(&pe.sdp->last_open_id), id + 3);
	CU_ASSERT_EQUAL(atomic_load(&pe.cdp->last_open_id), id + 3);
	put_get_check(&pe, (4u << 16) + 2, 1);
	pe_down(&pe);
}

/* A part that fails fails the whole: the PUT is aborted (its other parts
 * disarmed, the new tensor freed) and redone over TCP, a GET's parts are
 * cancelled on the client and it is redone too; bytes intact, nothing
 * left behind, the session still on DPDK. */
static void test_striped_part_fails(void)
{
	struct pathenv pe;

	CU_ASSERT_EQUAL_FATAL(pe_up_striped(&pe), 0);
	pe.cdp->fail_sends = 1;
	put_get_check(&pe, 1u << 20, 3);
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 0); /* the PUT's first part failed, no other went */
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 4);
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0);
	pe.sdp->fail_sends = 1;
	put_get_check(&pe, 1u << 20, 4);
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 4);
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 4); /* the GET's first part failed */
	CU_ASSERT_STRING_EQUAL(path_of(&pe, NULL), "dpdk");
	/* The next transfers go over the data path again, in parts. */
	put_get_check(&pe, 1u << 20, 5);
	CU_ASSERT_EQUAL(pe.cdp->sends_ok, 8);
	CU_ASSERT_EQUAL(pe.sdp->sends_ok, 8);
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0);
	pe_down(&pe);
}

/* Up to 3 s for fn(mb) to reach want (the sweep runs every 100 ms). */
static int backend_settles(int (*fn)(struct mem_backend *), struct mem_backend *mb, int want)
{
	for (int i = 0; i < 300 && fn(mb) != want; i++)
		usleep(10 * 1000);
	return fn(mb) == want;
}

/* A 64 KiB patterned tensor, a buffer to GET it back into and one for what
 * stuck frames read of it last. */
struct pinned_bufs {
	size_t n;
	uint8_t *src, *dst, *late;
	struct dj_tensor t, back;
};

static void pinned_bufs_init(struct pinned_bufs *b, uint32_t seed)
{
	b->n = 64u << 10;
	b->src = malloc(b->n);
	b->dst = calloc(1, b->n);
	b->late = calloc(1, b->n);
	CU_ASSERT_FATAL(b->src != NULL && b->dst != NULL && b->late != NULL);
	fx_pattern(b->src, b->n, seed);
	b->t = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_INT32, .ndim = 1,
					   .shape = {(int64_t)b->n / 4}},
				  .data = b->src, .mem = DJ_MEM_HOST};
	b->back = b->t;
	b->back.data = b->dst;
}

static void pinned_bufs_fini(struct pinned_bufs *b)
{
	free(b->src);
	free(b->dst);
	free(b->late);
}

/* A GET whose data-plane frames stay queued (send returns -EDEADLK): the
 * tensor's storage outlives FREE and the session's end until the data
 * path lets go, the frames read intact bytes to the last, and then
 * everything is reclaimed. */
static void test_get_pinned_by_data_path(void)
{
	struct pinned_bufs b;
	struct pathenv pe;
	uint64_t h;

	pinned_bufs_init(&b, 11);
	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(pe.conn, &b.t, &h), 0);
	pe.sdp->deadlock_sends = 1;
	/* The client redoes the failed GET over TCP. */
	CU_ASSERT_EQUAL(dj_get(pe.conn, h, &b.back), 0);
	CU_ASSERT_EQUAL(memcmp(b.src, b.dst, b.n), 0);
	CU_ASSERT_PTR_NOT_NULL(pe.sdp->pinned_src);
	CU_ASSERT_EQUAL(dj_free(pe.conn, h), 0);
	CU_ASSERT_EQUAL(mem_backend_live(pe.fx.mb), 0);
	dj_conn_close(pe.conn);
	pe.conn = NULL;
	/* Handle and connection gone; storage and session kept for the frames. */
	usleep(300 * 1000);
	CU_ASSERT_EQUAL(mem_backend_tensors(pe.fx.mb), 1);
	CU_ASSERT_EQUAL(mem_backend_sessions(pe.fx.mb), 1);
	CU_ASSERT_EQUAL(fake_dp_release(pe.sdp, b.late), 0);
	CU_ASSERT_EQUAL(memcmp(b.src, b.late, b.n), 0);
	CU_ASSERT(backend_settles(mem_backend_tensors, pe.fx.mb, 0));
	CU_ASSERT(backend_settles(mem_backend_sessions, pe.fx.mb, 0));
	pe_down(&pe);
	pinned_bufs_fini(&b);
}

/* The frames of the client's stuck send go after 100 ms. */
static void *release_later(void *arg)
{
	struct fake_dp *f = arg;
	static uint8_t sink[64u << 10];

	usleep(100 * 1000);
	fake_dp_release(f, sink);
	return NULL;
}

/* The client's own data path holds on to the caller's tensor: PUT returns
 * only once it lets go (then redone over TCP), or -EDEADLK when it does not
 * within the transfer timeout; a GET whose destination may still be written
 * is -EDEADLK too, never redone into the same memory. */
static void test_client_tensor_pinned(void)
{
	struct pinned_bufs b;
	struct pathenv pe;
	pthread_t rel;
	uint64_t h, t0;

	pinned_bufs_init(&b, 12);
	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	/* Let go after 100 ms: the PUT waits for it, then succeeds over TCP. */
	pe.cdp->deadlock_sends = 1;
	CU_ASSERT_FATAL(pthread_create(&rel, NULL, release_later, pe.cdp) == 0);
	t0 = djc_time_ns();
	CU_ASSERT_EQUAL(dj_put(pe.conn, &b.t, &h), 0);
	CU_ASSERT(djc_time_ns() - t0 >= 100000000ull);
	CU_ASSERT(pe.cdp->released);
	pthread_join(rel, NULL);
	CU_ASSERT_EQUAL(dj_get(pe.conn, h, &b.back), 0);
	CU_ASSERT_EQUAL(memcmp(b.src, b.dst, b.n), 0);
	/* Never let go: -EDEADLK after the transfer timeout, src still read. */
	pe.cdp->deadlock_sends = 1;
	CU_ASSERT_EQUAL(dj_put(pe.conn, &b.t, &h), -EDEADLK);
	CU_ASSERT_EQUAL(fake_dp_release(pe.cdp, b.late), 0);
	CU_ASSERT_EQUAL(memcmp(b.src, b.late, b.n), 0);
	/* A failed GET whose receive cannot be disarmed. */
	pe.sdp->fail_sends = 1;
	pe.cdp->deadlock_cancels = 1;
	CU_ASSERT_EQUAL(dj_get(pe.conn, h, &b.back), -EDEADLK);
	pe_down(&pe);
	pinned_bufs_fini(&b);
}

/* A raw request and its reply's type ("" when none came). */
static const char *raw_call(int fd, const char *json, char *type, size_t cap)
{
	cJSON *r = fx_raw_send(fd, json, 0) == 0 ? fx_raw_recv(fd, 5000) : NULL;
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(r, "type"));

	snprintf(type, cap, "%s", t != NULL ? t : "");
	cJSON_Delete(r);
	return type;
}

/* A DPDK client dies (its connection breaks) between READY and PUT_DONE:
 * the tensor its PUT was creating is freed, and its destination disarmed,
 * at once, as over TCP; before, both stayed for the session's 30 s linger. */
static void test_client_killed_mid_put(void)
{
	struct dp_caps caps = {.dpdk = 1};
	struct pathenv pe;
	char hello[1024], type[32], *text;
	cJSON *m;
	int fd;

	CU_ASSERT_EQUAL_FATAL(pe_up(&pe, 1, 1, DJ_PATH_AUTO, 0), 0);
	caps.endpoint = pe.cdp->ep;
	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "type", "HELLO");
	cJSON_AddNumberToObject(m, "id", 1);
	cJSON_AddNumberToObject(m, "version", CTL_PROTO_VERSION);
	cJSON_AddItemToObject(m, "caps", ctl_caps_to_json(&caps));
	text = cJSON_PrintUnformatted(m);
	snprintf(hello, sizeof(hello), "%s", text);
	free(text);
	cJSON_Delete(m);
	fd = fx_raw_connect(pe.fx.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_STRING_EQUAL(raw_call(fd, hello, type, sizeof(type)), "HELLO");
	CU_ASSERT_STRING_EQUAL(raw_call(fd, "{\"type\":\"SESSION\",\"id\":2}", type,
					sizeof(type)), "SESSION");
	CU_ASSERT_STRING_EQUAL(raw_call(fd, "{\"type\":\"PATH\",\"id\":3,\"path\":\"dpdk\","
					"\"reason\":\"test\"}", type, sizeof(type)), "PATH");
	CU_ASSERT_STRING_EQUAL(raw_call(fd, "{\"type\":\"PUT\",\"id\":4,\"via\":\"dpdk\","
					"\"xfer\":1,\"dtype\":\"float32\",\"shape\":[1048576]}",
					type, sizeof(type)), "READY");
	CU_ASSERT_EQUAL(mem_backend_tensors(pe.fx.mb), 1);
	close(fd); /* killed: no PUT_DONE, no BYE */
	CU_ASSERT(backend_settles(mem_backend_tensors, pe.fx.mb, 0));
	/* The session itself lingers, resumable, for the same 30 s. */
	CU_ASSERT_EQUAL(mem_backend_sessions(pe.fx.mb), 2);
	pe_down(&pe);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"both sides DPDK, probe ok: dpdk", test_both_dpdk_probe_ok},
		{"server without DPDK: tcp", test_server_without_dpdk},
		{"client without DPDK: tcp", test_client_without_dpdk},
		{"probe fails: tcp", test_probe_failure_falls_back},
		{"probe fails, retried: back on dpdk", test_probe_retried_until_dpdk},
		{"client forces tcp", test_forced_tcp},
		{"client forces dpdk", test_forced_dpdk_refused_without_it},
		{"server opened no data-plane session: tcp at once, never probed",
		 test_server_opened_no_dp_session},
		{"client forces dpdk, server opened no data-plane session",
		 test_forced_dpdk_no_dp_session},
		{"no data-plane session: SESSION's fields, PATH dpdk refused",
		 test_no_dp_session_on_the_wire},
		{"PUT/GET over the data path", test_transfers_over_dpdk},
		{"failed transfer redone over TCP, then the session moves",
		 test_failed_transfer_redone_then_session_moves},
		{"path read on other threads while two failing ones move it",
		 test_path_read_while_moving},
		{"GET pinned by the data path: storage kept, then reclaimed",
		 test_get_pinned_by_data_path},
		{"client tensor pinned by its data path", test_client_tensor_pinned},
		{"DPDK client killed mid-PUT: its tensor freed at once", test_client_killed_mid_put},
		{"stripes: a session per queue, PUT/GET in parts", test_striped_transfers},
		{"stripes: ids in use on the data path, the next range taken",
		 test_session_id_taken_next_range},
		{"stripes: a part that fails fails the whole, redone over TCP",
		 test_striped_part_fails},
		{NULL, NULL},
	};
	dj_test_add_suite("control-path", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
