/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's fleet pieces in one process (servers on loopback with
 * the host-memory backend): member authentication with the fleet token and
 * its own labels, grants and their limits, FLEET_* protocol errors, a move
 * between two servers, and a member's session that does not linger.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "harness.h"
#include "fixture.h"
#include "ctl_client.h"

#define FLEET_TOKEN "fleet-unit-token"
#define CLIENT_TOKEN "client-unit-token"

static int start_limited(struct fixture *fx, const char *fleet_token, const char *client_token,
			 uint32_t max_session_grants, uint32_t max_handles)
{
	struct ctl_server_config c;

	ctl_server_config_init(&c);
	c.limits.max_handles = max_handles;
	c.n_workers = 2;
	c.token = client_token;
	c.fleet.token = fleet_token;
	c.fleet.max_session_grants = max_session_grants;
	return fx_start(fx, &c, NULL);
}

static int start(struct fixture *fx, const char *fleet_token, const char *client_token,
		 uint32_t max_session_grants)
{
	return start_limited(fx, fleet_token, client_token, max_session_grants, 0);
}

/* A connection to fx: a member's (member_id) or a client's; rc of connect. */
static int open_conn(const struct fixture *fx, const char *member_id, const char *token,
		     struct dj_client **cl, struct dj_conn **conn)
{
	struct dj_client_options o;
	int rc;

	fx_client_opts(fx, &o);
	o.token = token;
	o.max_retries = 0;
	*conn = NULL;
	rc = member_id != NULL ? ctl_client_create_member(&o, member_id, cl) :
	     dj_client_create(&o, cl);
	return rc != 0 ? rc : dj_connect(*cl, conn);
}

static int try_conn(const struct fixture *fx, const char *member_id, const char *token)
{
	struct dj_client *cl = NULL;
	struct dj_conn *conn;
	int rc = open_conn(fx, member_id, token, &cl, &conn);

	if (rc == 0)
		dj_conn_close(conn);
	dj_client_destroy(cl);
	return rc;
}

static void test_member_auth(void)
{
	struct fixture fleet, lone, open;

	CU_ASSERT_EQUAL_FATAL(start(&fleet, FLEET_TOKEN, CLIENT_TOKEN, 0), 0);
	CU_ASSERT_EQUAL_FATAL(start(&lone, NULL, CLIENT_TOKEN, 0), 0);
	CU_ASSERT_EQUAL_FATAL(start(&open, NULL, NULL, 0), 0);
	/* Members prove the fleet token, clients theirs: neither passes for
	 * the other. */
	CU_ASSERT_EQUAL(try_conn(&fleet, "m1", FLEET_TOKEN), 0);
	CU_ASSERT_EQUAL(try_conn(&fleet, "m1", CLIENT_TOKEN), -DJ_EAUTH);
	CU_ASSERT_EQUAL(try_conn(&fleet, NULL, FLEET_TOKEN), -DJ_EAUTH);
	CU_ASSERT_EQUAL(try_conn(&fleet, NULL, CLIENT_TOKEN), 0);
	/* No fleet token: no member, whatever the member brings. */
	CU_ASSERT_EQUAL(try_conn(&lone, "m1", FLEET_TOKEN), -DJ_EAUTH);
	CU_ASSERT_EQUAL(try_conn(&open, "m1", FLEET_TOKEN), -DJ_EAUTH);
	CU_ASSERT_EQUAL(try_conn(&open, NULL, NULL), 0);
	fx_stop(&fleet);
	fx_stop(&lone);
	fx_stop(&open);
}

static int call(struct dj_conn *conn, cJSON *msg, cJSON **reply)
{
	return ctl_client_call(conn, msg, NULL, 0, NULL, 0, reply);
}

static int grant(struct dj_conn *conn, int ttl_ms, char *out)
{
	cJSON *m = ctl_client_msg("FLEET_GRANT"), *reply = NULL;
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {4, 8}};
	int rc;

	ctl_desc_to_json(m, &d);
	if (ttl_ms != 0)
		cJSON_AddNumberToObject(m, "ttl_ms", ttl_ms);
	rc = call(conn, m, &reply);
	if (rc == 0) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(reply, "grant");

		CU_ASSERT(cJSON_IsString(g) && strlen(g->valuestring) == 32);
		if (out != NULL && cJSON_IsString(g))
			snprintf(out, 64, "%s", g->valuestring);
	}
	cJSON_Delete(reply);
	return rc;
}

static void test_grants_and_errors(void)
{
	struct ctl_request_stats st;
	struct fixture fx, lone;
	struct dj_client *cl;
	struct dj_conn *conn;
	char g1[64], g2[64];
	cJSON *r;
	int fd;

	CU_ASSERT_EQUAL_FATAL(start(&fx, FLEET_TOKEN, NULL, 2), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&fx, NULL, NULL, &cl, &conn), 0);
	CU_ASSERT_EQUAL(grant(conn, 0, g1), 0);
	CU_ASSERT_EQUAL(grant(conn, 500, g2), 0);
	CU_ASSERT(strcmp(g1, g2) != 0);
	CU_ASSERT_EQUAL(grant(conn, 0, NULL), -DJ_ELIMIT); /* 2 per session here */
	CU_ASSERT_EQUAL(grant(conn, 3600000, NULL), -EINVAL); /* above grant_ttl_ms */
	/* A client cannot hand tensors into sessions. */
	cJSON *adopt = ctl_client_msg("FLEET_ADOPT");

	ctl_json_add_handle(adopt, "handle", 0x1234);
	cJSON_AddStringToObject(adopt, "grant", g1);
	CU_ASSERT_EQUAL(call(conn, adopt, NULL), -EPERM);
	CU_ASSERT_EQUAL(call(conn, ctl_client_msg("FLEET_NOPE"), NULL), -EBADMSG);
	/* A move needs its fields. */
	cJSON *move = ctl_client_msg("FLEET_MOVE");

	ctl_json_add_handle(move, "handle", 0x1234);
	cJSON_AddStringToObject(move, "to", "nowhere");
	cJSON_AddStringToObject(move, "grant", g1);
	CU_ASSERT_EQUAL(call(conn, move, NULL), -EINVAL);
	/* Each FLEET_ message is counted under its own type. */
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_FLEET_GRANT], 2);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FLEET_GRANT], 2);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FLEET_ADOPT], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FLEET_MOVE], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_OTHER], 1);
	dj_conn_close(conn);
	dj_client_destroy(cl);

	/* On a raw connection: a payload on a FLEET_ message is refused and
	 * skipped, the connection serves on. */
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fd >= 0 && fx_raw_ready(fd) == 0);
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"FLEET_GRANT\",\"id\":3,\"dtype\":\"float32\","
				    "\"shape\":[2]}", 8), 0);
	CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, "12345678", 8), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(fx_error_code(r), -EPROTO);
	cJSON_Delete(r);
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"PING\",\"id\":4}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT(r != NULL && fx_error_code(r) == 0);
	cJSON_Delete(r);
	close(fd);
	/* Without a fleet token no grant is made. */
	CU_ASSERT_EQUAL_FATAL(start(&lone, NULL, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&lone, NULL, NULL, &cl, &conn), 0);
	CU_ASSERT_EQUAL(grant(conn, 0, NULL), -DJ_EAUTH);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	fx_stop(&lone);
	fx_stop(&fx);
}

/* Two servers of one fleet, a client's session on each; B's sessions may
 * hold at most b_max_handles handles (0: the default). */
struct pair {
	struct fixture a, b;
	struct dj_client *ca, *cb;
	struct dj_conn *conn_a, *conn_b;
	char to[32];              /* B's endpoint, a move's "to" */
};

static void pair_up(struct pair *p, uint32_t b_max_handles)
{
	CU_ASSERT_EQUAL_FATAL(start(&p->a, FLEET_TOKEN, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(start_limited(&p->b, FLEET_TOKEN, NULL, 0, b_max_handles), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&p->a, NULL, NULL, &p->ca, &p->conn_a), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&p->b, NULL, NULL, &p->cb, &p->conn_b), 0);
	snprintf(p->to, sizeof(p->to), "127.0.0.1:%u", p->b.port);
}

static void pair_down(struct pair *p)
{
	dj_conn_close(p->conn_a);
	dj_conn_close(p->conn_b);
	dj_client_destroy(p->ca);
	dj_client_destroy(p->cb);
	fx_stop(&p->a);
	fx_stop(&p->b);
}

/* FLEET_MOVE of A's handle h to B with grant g, sent on A; its reply. */
static int move(struct pair *p, uint64_t h, const char *g, cJSON **reply)
{
	cJSON *m = ctl_client_msg("FLEET_MOVE");

	ctl_json_add_handle(m, "handle", h);
	cJSON_AddStringToObject(m, "to", p->to);
	cJSON_AddStringToObject(m, "grant", g);
	return call(p->conn_a, m, reply);
}

static void test_move(void)
{
	struct ctl_request_stats st;
	struct pair p;
	float v[32], got[32];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {4, 8}},
			      .data = v};
	struct dj_tensor back = t;
	struct dj_tensor_desc d;
	uint64_t h, moved;
	char g[64], why[128];
	cJSON *reply = NULL;

	back.data = got;
	fx_pattern(v, sizeof(v), 7);
	pair_up(&p, 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(p.conn_a, &t, &h), 0);
	CU_ASSERT_EQUAL_FATAL(grant(p.conn_b, 0, g), 0);
	CU_ASSERT_EQUAL_FATAL(move(&p, h, g, &reply), 0);
	CU_ASSERT_EQUAL(ctl_json_handle(reply, "handle", &moved, why), 0);
	CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "source_freed")));
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(reply, "path")->valuestring, "tcp");
	CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(reply, "bytes")->valuedouble, sizeof(v));
	cJSON_Delete(reply);
	/* The tensor is the client's on B, byte for byte, and gone from A. */
	CU_ASSERT_EQUAL(dj_get(p.conn_b, moved, &back), 0);
	CU_ASSERT(memcmp(v, got, sizeof(v)) == 0);
	CU_ASSERT_EQUAL(dj_describe(p.conn_a, h, &d), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(mem_backend_live(p.a.mb), 0);
	CU_ASSERT_EQUAL(mem_backend_live(p.b.mb), 1);
	/* The grant was used up. */
	CU_ASSERT_EQUAL_FATAL(dj_put(p.conn_a, &t, &h), 0);
	CU_ASSERT_EQUAL(move(&p, h, g, NULL), -EACCES);
	CU_ASSERT_EQUAL(dj_describe(p.conn_a, h, &d), 0);
	CU_ASSERT_EQUAL(mem_backend_live(p.b.mb), 1);
	/* A counted one move done and one refused; B the member's adoptions. */
	ctl_server_request_stats(p.a.srv, &st);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_FLEET_MOVE], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FLEET_MOVE], 1);
	ctl_server_request_stats(p.b.srv, &st);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_FLEET_ADOPT], 1);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FLEET_ADOPT], 1);
	pair_down(&p);
}

/* The handles conn's session holds, from STATS. */
static int handles_of(struct dj_conn *conn)
{
	char *json = NULL;
	cJSON *st;
	int n = -1;

	if (dj_stats(conn, &json) != 0)
		return -1;
	st = cJSON_Parse(json);
	n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "session"),
							 "handles"));
	cJSON_Delete(st);
	free(json);
	return n;
}

/* A move counts its tensor's handle in the receiving session, taken before
 * the hand-over: into a session at max_handles it is refused, the source
 * keeps its tensor, no count moves. */
static void test_move_handle_limit(void)
{
	struct pair p;
	float v[32];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {4, 8}},
			      .data = v};
	uint64_t h[2], held;
	char g[2][64];

	fx_pattern(v, sizeof(v), 3);
	pair_up(&p, 2);
	CU_ASSERT_EQUAL_FATAL(dj_put(p.conn_b, &t, &held), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(dj_put(p.conn_a, &t, &h[i]), 0);
		CU_ASSERT_EQUAL_FATAL(grant(p.conn_b, 0, g[i]), 0);
		CU_ASSERT_EQUAL(move(&p, h[i], g[i], NULL), i == 0 ? 0 : -DJ_ELIMIT);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(p.conn_a), "holds 2 handles: the limit"));
	CU_ASSERT_EQUAL(handles_of(p.conn_b), 2);
	CU_ASSERT_EQUAL(handles_of(p.conn_a), 1);
	CU_ASSERT_EQUAL(mem_backend_live(p.a.mb), 1);
	CU_ASSERT_EQUAL(mem_backend_live(p.b.mb), 2);
	pair_down(&p);
}

/* Live tensors of fx after ms, polling. */
static int live_after(struct fixture *fx, int want, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		if (mem_backend_live(fx->mb) == want)
			return want;
		usleep(10000);
	}
	return mem_backend_live(fx->mb);
}

static void test_member_session_does_not_linger(void)
{
	struct fixture fx;
	struct dj_client *cl[2];
	struct dj_conn *conn[2];
	float v[4] = {1, 2, 3, 4};
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {4}},
			      .data = v};
	uint64_t h;

	CU_ASSERT_EQUAL_FATAL(start(&fx, FLEET_TOKEN, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&fx, "m1", FLEET_TOKEN, &cl[0], &conn[0]), 0);
	CU_ASSERT_EQUAL_FATAL(open_conn(&fx, NULL, NULL, &cl[1], &conn[1]), 0);
	CU_ASSERT_EQUAL(dj_put(conn[0], &t, &h), 0);
	CU_ASSERT_EQUAL(dj_put(conn[1], &t, &h), 0);
	/* Both connections vanish without BYE: the client's session lingers
	 * (resumable), the member's goes at once with its tensor. */
	for (int i = 0; i < 2; i++)
		shutdown(conn[i]->io.fd, SHUT_RDWR);
	CU_ASSERT_EQUAL(live_after(&fx, 1, 1000), 1);
	usleep(300000);
	CU_ASSERT_EQUAL(mem_backend_live(fx.mb), 1);
	for (int i = 0; i < 2; i++) {
		ctl_client_conn_free(conn[i]);
		dj_client_destroy(cl[i]);
	}
	fx_stop(&fx);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"members prove the fleet token, clients theirs", test_member_auth},
		{"grants, their limits, FLEET_* errors", test_grants_and_errors},
		{"a move between two servers, the grant used up", test_move},
		{"a move into a session at its handle limit", test_move_handle_limit},
		{"a member's session does not linger", test_member_session_does_not_linger},
		{NULL, NULL},
	};

	dj_log_set_level(DJ_LOG_ERR);
	dj_test_add_suite("control fleet", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
