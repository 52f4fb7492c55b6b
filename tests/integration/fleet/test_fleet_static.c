/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The static fleet alone (no etcd), three djinn-dp over TCP on loopback:
 * the view, moves and copies between every pair, routing by handle, the
 * grants' and the fleet token's refusals, a target and a source killed
 * mid-move. No privileges needed.
 *   test_fleet_static DJINN_DP
 * DJINN_FLEET_LONG=1 moves 256 MiB between every pair (else one pair).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controlplane/ctl_client.h"
#include "harness.h"
#include "fleet_cases.h"

#define MIB (1ull << 20)
#define N 3

static struct fe_server servers[N], outsider, stranger, late[2];
static struct dj_fleet *fleet;
static char token[128], wrong_token[128], members[256], late_list[64];

static void server_setup_in(struct fe_server *s, const char *list, const char *fleet_token)
{
	static char ports[N + 4][8];
	static int n_ports;
	char *port = ports[n_ports++ % (N + 4)];

	snprintf(s->host, sizeof(s->host), "127.0.0.1");
	snprintf(port, sizeof(ports[0]), "%u", s->port);
	const char *args[] = {"--", "--no-dpdk", "--gpu", "none", "--ctl-port", port,
			      "--stats-interval", "0", "--fleet", list,
			      "--fleet-token-file", fleet_token};

	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		fe_server_arg(s, args[i]);
}

static void server_setup(struct fe_server *s, const char *fleet_token)
{
	server_setup_in(s, members, fleet_token);
}

static int suite_init(void)
{
	struct dj_fleet_options o;
	size_t off = 0;

	if (fe_token_file("fleet-static-test-token", token) != 0 ||
	    fe_token_file("some-other-fleet", wrong_token) != 0)
		return -1;
	for (int i = 0; i < N; i++)
		servers[i].port = fe_free_port();
	outsider.port = fe_free_port();
	stranger.port = fe_free_port();
	/* The members' list names the outsider (it holds another fleet's
	 * token); the stranger is in no list. */
	for (int i = 0; i < N; i++)
		off += (size_t)snprintf(members + off, sizeof(members) - off, "127.0.0.1:%u,",
					servers[i].port);
	snprintf(members + off, sizeof(members) - off, "127.0.0.1:%u", outsider.port);
	for (int i = 0; i < N; i++) {
		server_setup(&servers[i], token);
		if (fe_server_start(&servers[i], 30) != 0)
			return -1;
	}
	server_setup(&outsider, wrong_token);
	server_setup(&stranger, token);
	if (fe_server_start(&outsider, 30) != 0 || fe_server_start(&stranger, 30) != 0)
		return -1;
	/* The client knows the three members only. */
	dj_fleet_options_init(&o);
	members[off - 1] = '\0';
	o.members = members;
	if (dj_fleet_create(&o, &fleet) != 0) {
		fprintf(stderr, "fleet: %s\n", dj_fleet_last_error());
		return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	dj_fleet_destroy(fleet);
	for (int i = 0; i < N; i++)
		fe_server_kill(&servers[i], SIGTERM);
	fe_server_kill(&outsider, SIGTERM);
	fe_server_kill(&stranger, SIGTERM);
	fe_server_kill(&late[0], SIGTERM);
	fe_server_kill(&late[1], SIGTERM);
	unlink(token);
	unlink(wrong_token);
	fe_cleanup();
	return 0;
}

static void test_view(void)
{
	struct dj_fleet_member m[8];
	struct dj_fleet_view v;
	int n = dj_fleet_view(fleet, &v, m, 8);

	CU_ASSERT_EQUAL(n, N);
	CU_ASSERT_EQUAL(v.n_members, N);
	CU_ASSERT_EQUAL(v.source, DJ_FLEET_SOURCE_STATIC);
	CU_ASSERT_FALSE(v.stale);
	for (int i = 0; i < n; i++) {
		CU_ASSERT(m[i].up && m[i].fleet_auth && !m[i].dpdk);
		CU_ASSERT(m[i].n_devices == 1 && strcmp(m[i].devices[0].name, "host") == 0);
		CU_ASSERT(m[i].devices[0].mem_total > 0 && m[i].devices[0].mem_free > 0);
		CU_ASSERT(m[i].n_ops >= 20);
		CU_ASSERT(m[i].incarnation != 0);
		CU_ASSERT(m[i].age_ms < 5000);
	}
}

static void test_moves(void)
{
	static const uint64_t small[] = {2, MIB};
	static const uint64_t big[] = {256 * MIB};
	int long_run = getenv("DJINN_FLEET_LONG") != NULL;

	fc_moves(fleet, servers, N, small, 2, DJ_PATH_TCP);
	fc_moves(fleet, servers, long_run ? N : 2, big, 1, DJ_PATH_TCP);
}

static void test_routing(void)
{
	fc_routing(fleet, servers, N);
}

/* ---- refusals, with raw messages ---------------------------------------------------- */

static int raw_grant(struct dj_conn *conn, const struct dj_tensor_desc *desc, int ttl_ms,
		     char *grant)
{
	cJSON *m = ctl_client_msg("FLEET_GRANT"), *reply = NULL;
	int rc;

	ctl_desc_to_json(m, desc);
	if (ttl_ms > 0)
		cJSON_AddNumberToObject(m, "ttl_ms", ttl_ms);
	rc = ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	if (rc == 0)
		snprintf(grant, 64, "%s",
			 cJSON_GetObjectItemCaseSensitive(reply, "grant")->valuestring);
	cJSON_Delete(reply);
	return rc;
}

static int raw_move(struct dj_conn *conn, uint64_t handle, const char *to, const char *grant)
{
	cJSON *m = ctl_client_msg("FLEET_MOVE"), *reply = NULL;
	int rc;

	ctl_json_add_handle(m, "handle", handle);
	cJSON_AddStringToObject(m, "to", to);
	cJSON_AddStringToObject(m, "grant", grant);
	rc = ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	if (rc != 0)
		printf("  refused (%d): %s\n", rc, dj_conn_last_error(conn));
	cJSON_Delete(reply);
	return rc;
}

static struct dj_conn *plain_conn(const struct fe_server *s, struct dj_client **cl)
{
	struct dj_client_options o;
	struct dj_conn *conn = NULL;

	dj_client_options_init(&o);
	o.host = s->host;
	o.port = s->port;
	CU_ASSERT_EQUAL_FATAL(dj_client_create(&o, cl), 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(*cl, &conn), 0);
	return conn;
}

static void test_refusals(void)
{
	uint32_t a = fc_member(fleet, &servers[0]), b = fc_member(fleet, &servers[1]);
	struct dj_conn *ca, *cb, *co, *cs;
	struct dj_client *outsider_cl, *stranger_cl;
	struct dj_fleet_handle h;
	struct dj_tensor t, back;
	struct dj_tensor_desc other = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {3}};
	char grant[64], zeros[33];
	int64_t base = fe_server_store_bytes(&servers[1]);

	CU_ASSERT_FATAL(a != UINT32_MAX && b != UINT32_MAX);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_conn(fleet, a, &ca), 0);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_conn(fleet, b, &cb), 0);
	CU_ASSERT_EQUAL_FATAL(fe_tensor_make(&t, 4096, 77), 0);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(fleet, a, &t, &h), 0);

	/* A client is no member: it cannot hand tensors into sessions. */
	cJSON *adopt = ctl_client_msg("FLEET_ADOPT");

	ctl_json_add_handle(adopt, "handle", h.handle);
	cJSON_AddStringToObject(adopt, "grant", "00000000000000000000000000000000");
	CU_ASSERT_EQUAL(ctl_client_call(ca, adopt, NULL, 0, NULL, 0, NULL), -EPERM);
	/* An unknown grant: the target takes nothing and keeps nothing. */
	memset(zeros, '0', 32);
	zeros[32] = '\0';
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, servers[1].endpoint, zeros), -EACCES);
	CU_ASSERT_EQUAL(fe_server_store_bytes(&servers[1]), base);
	/* A grant for another shape. */
	CU_ASSERT_EQUAL_FATAL(raw_grant(cb, &other, 0, grant), 0);
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, servers[1].endpoint, grant), -DJ_ESHAPE);
	/* A grant used twice. */
	CU_ASSERT_EQUAL_FATAL(raw_grant(cb, &t.desc, 0, grant), 0);
	cJSON *copy = ctl_client_msg("FLEET_MOVE"), *reply = NULL;

	ctl_json_add_handle(copy, "handle", h.handle);
	cJSON_AddStringToObject(copy, "to", servers[1].endpoint);
	cJSON_AddStringToObject(copy, "grant", grant);
	cJSON_AddTrueToObject(copy, "copy");
	CU_ASSERT_EQUAL(ctl_client_call(ca, copy, NULL, 0, NULL, 0, &reply), 0);
	uint64_t copied = 0;
	char why[128];

	CU_ASSERT_EQUAL(ctl_json_handle(reply, "handle", &copied, why), 0);
	cJSON_Delete(reply);
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, servers[1].endpoint, grant), -EACCES);
	CU_ASSERT_EQUAL(dj_free(cb, copied), 0);
	/* An expired grant. */
	CU_ASSERT_EQUAL_FATAL(raw_grant(cb, &t.desc, 1, grant), 0);
	fe_sleep_ms(20);
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, servers[1].endpoint, grant), -EACCES);
	/* A member of another fleet (listed, but its token differs): the
	 * source will not authenticate with it. */
	co = plain_conn(&outsider, &outsider_cl);
	CU_ASSERT_EQUAL_FATAL(raw_grant(co, &t.desc, 0, grant), 0);
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, outsider.endpoint, grant), -DJ_EAUTH);
	/* A server with the right token but outside the membership. */
	cs = plain_conn(&stranger, &stranger_cl);
	CU_ASSERT_EQUAL_FATAL(raw_grant(cs, &t.desc, 0, grant), 0);
	CU_ASSERT_EQUAL(raw_move(ca, h.handle, stranger.endpoint, grant), -EPERM);
	/* After all that the source still holds its tensor, and the target
	 * holds nothing of the failed attempts. */
	back = t;
	back.data = calloc(1, 4096);
	CU_ASSERT_EQUAL(dj_fleet_get(fleet, h, &back), 0);
	CU_ASSERT(fe_tensor_check(&back, 77));
	CU_ASSERT_EQUAL(fe_server_store_bytes(&servers[1]), base);
	CU_ASSERT_EQUAL(dj_fleet_free(fleet, h), 0);
	dj_conn_close(co);
	dj_conn_close(cs);
	dj_client_destroy(outsider_cl);
	dj_client_destroy(stranger_cl);
	free(back.data);
	free(t.data);
}

static void test_target_killed(void)
{
	fc_target_killed(fleet, servers, 0, 2, 512 * MIB);
}

static void test_source_killed(void)
{
	fc_source_killed(fleet, servers, 1, 0, 512 * MIB);
}

/* ---- a client created before its servers -------------------------------------------- */

struct late_put {
	struct dj_fleet *f;
	const struct dj_tensor *t;
	struct dj_fleet_handle h;
	int rc;
	uint64_t ms;
};

static void *late_put_main(void *arg)
{
	struct late_put *p = arg;
	uint64_t t0 = fe_now_ms();

	p->rc = dj_fleet_put(p->f, DJ_FLEET_ANY, p->t, &p->h);
	p->ms = fe_now_ms() - t0;
	return NULL;
}

/* A static fleet's client created while its servers are still starting:
 * created all the same, every member listed and down; a placement waits
 * for one up to member_wait_ms (then -EHOSTUNREACH saying why), a call to
 * a member that is down fails at once; servers started later come up at
 * the next refresh, the waiting placement lands on the first. */
static void test_members_start_late(void)
{
	float x[4] = {1, 2, 3, 4}, y[4] = {0};
	struct dj_tensor t = {.desc = {DJ_DTYPE_FLOAT32, 1, {4}}, .data = x, .mem = DJ_MEM_HOST};
	struct dj_tensor back = {.desc = t.desc, .data = y, .mem = DJ_MEM_HOST};
	struct dj_fleet_options o;
	struct dj_fleet_member m[4];
	struct dj_fleet_view v;
	struct dj_fleet_handle h;
	struct dj_fleet *lf;
	struct late_put p = {.t = &t};
	pthread_t th;
	uint64_t t0;

	for (int i = 0; i < 2; i++)
		late[i].port = fe_free_port();
	snprintf(late_list, sizeof(late_list), "127.0.0.1:%u,127.0.0.1:%u", late[0].port,
		 late[1].port);
	dj_fleet_options_init(&o);
	o.members = late_list;
	o.refresh_ms = 100;
	o.member_wait_ms = 300;
	CU_ASSERT_EQUAL_FATAL(dj_fleet_create(&o, &lf), 0);
	CU_ASSERT_EQUAL(dj_fleet_view(lf, &v, m, 4), 2);
	CU_ASSERT(v.n_members == 0 && !m[0].up && !m[1].up && m[0].age_ms == UINT64_MAX);
	t0 = fe_now_ms();
	CU_ASSERT_EQUAL(dj_fleet_put(lf, DJ_FLEET_ANY, &t, &h), -EHOSTUNREACH);
	CU_ASSERT(fe_now_ms() - t0 >= 300);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_fleet_last_error(), "no member is up after waiting 300 "
				      "ms: none of the 2 listed answers STATS"));
	CU_ASSERT_EQUAL(dj_fleet_put(lf, 0, &t, &h), -EHOSTDOWN);
	CU_ASSERT_EQUAL(dj_fleet_wait(lf, 1, 0), -ETIMEDOUT);
	dj_fleet_destroy(lf);

	/* The first server starts while a placement waits for it. */
	o.member_wait_ms = 30000;
	CU_ASSERT_EQUAL_FATAL(dj_fleet_create(&o, &lf), 0);
	p.f = lf;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, late_put_main, &p), 0);
	fe_sleep_ms(300);
	server_setup_in(&late[0], late_list, token);
	CU_ASSERT_FATAL(fe_server_start(&late[0], 30) == 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(p.rc, 0);
	CU_ASSERT(p.ms >= 300);
	CU_ASSERT_EQUAL(p.h.member, 0);
	CU_ASSERT_EQUAL(dj_fleet_get(lf, p.h, &back), 0);
	CU_ASSERT_EQUAL(memcmp(x, y, sizeof(x)), 0);
	/* The second joins at a later refresh. */
	server_setup_in(&late[1], late_list, token);
	CU_ASSERT_FATAL(fe_server_start(&late[1], 30) == 0);
	CU_ASSERT_EQUAL(dj_fleet_wait(lf, 2, 30000), 0);
	CU_ASSERT_EQUAL(dj_fleet_view(lf, &v, m, 4), 2);
	CU_ASSERT_EQUAL(v.n_members, 2);
	CU_ASSERT_EQUAL(dj_fleet_free(lf, p.h), 0);
	dj_fleet_destroy(lf);
	fe_server_kill(&late[0], SIGTERM);
	fe_server_kill(&late[1], SIGTERM);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"view: three members with their capabilities and load", test_view},
		{"moves and copies between every pair, byte-exact", test_moves},
		{"routing by handle, batches, -EXDEV, least loaded", test_routing},
		{"grants and fleet token refusals leave nothing behind", test_refusals},
		{"target killed mid-move: error, source keeps its tensor", test_target_killed},
		{"source killed mid-move: error, target frees at once", test_source_killed},
		{"a client created before its servers: members down, then up", test_members_start_late},
		{NULL, NULL},
	};

	if (argc < 2)
		dj_test_skip("usage: test_fleet_static DJINN_DP");
	fe_init(argv[1]);
	dj_log_set_level(DJ_LOG_WARN);
	dj_test_add_suite("fleet static (TCP)", suite_init, suite_cleanup, cases);
	return dj_test_main(argc - 1, argv + 1);
}
