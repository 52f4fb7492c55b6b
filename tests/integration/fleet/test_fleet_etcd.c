/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fleet membership in a real etcd (started here on loopback, free ports, a
 * temporary data dir): three djinn-dp register with a 2 s lease; two fleet
 * clients watch the prefix. Moves between every pair; a member SIGKILLed is
 * gone from both views within TTL + 1 s, its handles give -EHOSTDOWN naming
 * it, the others serve on, and it rejoins when restarted; etcd stopped:
 * members serve on, the clients keep the last view and say it is stale, a
 * new member cannot join; etcd back: the fleet heals and the newcomer joins.
 * Skipped (77) without etcd (Debian's etcd-server).
 *   test_fleet_etcd DJINN_DP
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "fleet_cases.h"

#define MIB (1ull << 20)
#define N 3
#define TTL_S 2

static struct fe_server servers[N + 1]; /* the last: a newcomer */
static struct fe_etcd etcd;
static struct dj_fleet *clients[2];
static char token[128];

static void server_setup(struct fe_server *s)
{
	char port[8], ttl[8];

	snprintf(s->host, sizeof(s->host), "127.0.0.1");
	s->port = fe_free_port();
	snprintf(port, sizeof(port), "%u", s->port);
	snprintf(ttl, sizeof(ttl), "%d", TTL_S);
	const char *args[] = {"--", "--no-dpdk", "--gpu", "none", "--ctl-port", port,
			      "--stats-interval", "0", "--fleet-etcd", etcd.url,
			      "--fleet-ttl", ttl, "--fleet-token-file", token};

	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		fe_server_arg(s, args[i]);
}

static int suite_init(void)
{
	struct dj_fleet_options o;

	if (fe_etcd_start(&etcd, "127.0.0.1", NULL) != 0 ||
	    fe_token_file("fleet-etcd-test-token", token) != 0)
		return -1;
	for (int i = 0; i <= N; i++)
		server_setup(&servers[i]);
	for (int i = 0; i < N; i++)
		if (fe_server_start(&servers[i], 30) != 0)
			return -1;
	dj_fleet_options_init(&o);
	o.etcd = etcd.url;
	o.refresh_ms = 250;
	for (int c = 0; c < 2; c++) {
		if (dj_fleet_create(&o, &clients[c]) != 0) {
			fprintf(stderr, "fleet: %s\n", dj_fleet_last_error());
			return -1;
		}
	}
	return 0;
}

static int suite_cleanup(void)
{
	for (int c = 0; c < 2; c++)
		dj_fleet_destroy(clients[c]);
	for (int i = 0; i <= N; i++)
		fe_server_kill(&servers[i], SIGTERM);
	fe_etcd_destroy(&etcd);
	unlink(token);
	fe_cleanup();
	return 0;
}

/* Both clients see exactly the members up in want[] (n of them). */
static int views_are(struct fe_server *const *want, int n)
{
	for (int c = 0; c < 2; c++) {
		struct dj_fleet_member m[16];
		struct dj_fleet_view v;
		int got = dj_fleet_view(clients[c], &v, m, 16), found = 0;

		if (v.stale || v.n_members != n)
			return 0;
		for (int i = 0; i < got; i++)
			for (int k = 0; k < n; k++)
				found += m[i].up && strcmp(m[i].endpoint, want[k]->endpoint) == 0;
		if (found != n)
			return 0;
	}
	return 1;
}

static int wait_views(struct fe_server *const *want, int n, int timeout_ms)
{
	uint64_t t0 = fe_now_ms();

	while (fe_now_ms() - t0 < (uint64_t)timeout_ms) {
		if (views_are(want, n))
			return (int)(fe_now_ms() - t0);
		fe_sleep_ms(20);
	}
	return -1;
}

static void test_register_and_move(void)
{
	static const uint64_t sizes[] = {2, MIB};
	struct fe_server *all[N] = {&servers[0], &servers[1], &servers[2]};
	struct dj_fleet_member m[8];
	int n;

	CU_ASSERT(wait_views(all, N, 5000) >= 0);
	n = dj_fleet_view(clients[0], NULL, m, 8);
	for (int i = 0; i < n; i++)
		CU_ASSERT(m[i].n_devices == 1 && m[i].n_ops >= 20 && m[i].age_ms < 3000);
	fc_moves(clients[0], servers, N, sizes, 2, DJ_PATH_TCP);
}

static void test_member_killed(void)
{
	struct fe_server *rest[N - 1] = {&servers[0], &servers[1]};
	struct fe_server *all[N] = {&servers[0], &servers[1], &servers[2]};
	struct dj_fleet_handle on_victim, on_other;
	struct dj_fleet_member info;
	float v[2] = {1, 2}, got[2];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {2}},
			      .data = v};
	struct dj_tensor back = t;
	uint32_t victim = fc_member(clients[0], &servers[2]);
	int gone_ms, back_ms;

	back.data = got;
	CU_ASSERT_FATAL(victim != UINT32_MAX && fc_member_info(clients[0], victim, &info));
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(clients[0], victim, &t, &on_victim), 0);
	CU_ASSERT_EQUAL_FATAL(dj_fleet_put(clients[0], fc_member(clients[0], &servers[0]), &t,
					   &on_other), 0);
	fe_server_kill(&servers[2], SIGKILL);
	gone_ms = wait_views(rest, N - 1, (TTL_S + 1) * 1000);
	printf("  SIGKILLed member gone from both views after %d ms (TTL %d s)\n", gone_ms, TTL_S);
	CU_ASSERT(gone_ms >= 0);
	/* Its handles name it; the others serve on. */
	CU_ASSERT_EQUAL(dj_fleet_get(clients[0], on_victim, &back), -EHOSTDOWN);
	CU_ASSERT(strstr(dj_fleet_last_error(), servers[2].endpoint) != NULL);
	CU_ASSERT(strstr(dj_fleet_last_error(), "left the fleet") != NULL);
	CU_ASSERT_EQUAL(dj_fleet_get(clients[0], on_other, &back), 0);
	CU_ASSERT(got[0] == 1 && got[1] == 2);
	/* Restarted, it rejoins (a new incarnation: its old handles stay gone). */
	CU_ASSERT_EQUAL_FATAL(fe_server_start(&servers[2], 30), 0);
	back_ms = wait_views(all, N, 5000);
	printf("  restarted member back in both views after %d ms\n", back_ms);
	CU_ASSERT(back_ms >= 0);
	CU_ASSERT(fc_member_restarted(clients[0], &servers[2], info.incarnation, 5) != UINT32_MAX);
	CU_ASSERT_EQUAL(dj_fleet_get(clients[0], on_victim, &back), -EHOSTDOWN);
	CU_ASSERT_EQUAL(dj_fleet_free(clients[0], on_other), 0);
}

static void test_etcd_down(void)
{
	struct fe_server *all[N] = {&servers[0], &servers[1], &servers[2]};
	struct fe_server *more[N + 1] = {&servers[0], &servers[1], &servers[2], &servers[3]};
	static const uint64_t one[] = {MIB};
	struct dj_fleet_handle h;
	struct dj_fleet_view v;
	float x[3] = {4, 5, 6}, got[3];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {3}},
			      .data = x};
	struct dj_tensor back = t;
	int healed_ms;

	back.data = got;
	CU_ASSERT_FATAL(wait_views(all, N, 5000) >= 0);
	fe_etcd_stop(&etcd);
	fe_sleep_ms(1500);
	/* The clients keep the last view, and say so. */
	for (int c = 0; c < 2; c++) {
		dj_fleet_view(clients[c], &v, NULL, 0);
		printf("  client %d: stale %d, %d members, age %" PRIu64 " ms: %s\n", c, v.stale,
		       v.n_members, v.age_ms, v.error);
		CU_ASSERT(v.stale);
		CU_ASSERT_EQUAL(v.n_members, N);
		CU_ASSERT(v.age_ms >= 1000 && v.age_ms != UINT64_MAX);
		CU_ASSERT(v.error[0] != '\0');
	}
	/* The members serve their sessions on. */
	for (int i = 0; i < N; i++) {
		uint32_t m = fc_member(clients[1], &servers[i]);

		CU_ASSERT_EQUAL(dj_fleet_put(clients[1], m, &t, &h), 0);
		memset(got, 0, sizeof(got));
		CU_ASSERT_EQUAL(dj_fleet_get(clients[1], h, &back), 0);
		CU_ASSERT(memcmp(got, x, sizeof(x)) == 0);
		CU_ASSERT_EQUAL(dj_fleet_free(clients[1], h), 0);
	}
	/* A new member cannot join while etcd is away. */
	CU_ASSERT_EQUAL_FATAL(fe_server_start(&servers[3], 30), 0);
	fe_sleep_ms(1500);
	CU_ASSERT_EQUAL(dj_fleet_member_find(clients[0], servers[3].endpoint, &(uint32_t){0}),
			-ENOENT);
	/* etcd back: the views are fresh again, every member (re)registered,
	 * the newcomer in. */
	CU_ASSERT_EQUAL_FATAL(fe_etcd_restart(&etcd), 0);
	healed_ms = wait_views(more, N + 1, 10000);
	printf("  etcd back: both views fresh with %d members after %d ms\n", N + 1, healed_ms);
	CU_ASSERT(healed_ms >= 0);
	fc_moves(clients[0], (struct fe_server[]){servers[0], servers[3]}, 2, one, 1, DJ_PATH_TCP);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"members register; moves between every pair", test_register_and_move},
		{"a member SIGKILLed leaves within TTL + 1 s, rejoins", test_member_killed},
		{"etcd down: members serve, views stale; back: heals", test_etcd_down},
		{NULL, NULL},
	};

	if (argc < 2)
		dj_test_skip("usage: test_fleet_etcd DJINN_DP");
	if (system("command -v etcd >/dev/null 2>&1") != 0)
		dj_test_skip("etcd is not installed (Debian: etcd-server)");
	fe_init(argv[1]);
	dj_log_set_level(DJ_LOG_WARN);
	dj_test_add_suite("fleet etcd", suite_init, suite_cleanup, cases);
	return dj_test_main(argc - 1, argv + 1);
}
