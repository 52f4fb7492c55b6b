/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stripes end to end (docs/CONTROL.md, "Stripes"): djinn-dp with 2 queue
 * pairs on a memif socket, and this process as a client with a 2-queue
 * data path of its own (dj_dpdk_create with queues 2: memif client, its
 * own EAL).
 *
 *  - SESSION grants 2 stripes (STATS session.stripes);
 *  - PUT and GET byte-exact at sizes around the threshold (two parts of
 *    dp_stripe_min): one element below it (whole, on one queue), at it,
 *    above it, sizes whose parts are no multiple of 64, 16 MiB; a striped
 *    transfer carried DATA on both queues, a whole one on one queue only
 *    (the server's per-queue frame counters in STATS,
 *    backend.data_plane.lcores);
 *  - small tensors in a row spread over both queues;
 *  - a client that asks for no stripes (SESSION without "stripes", as an
 *    old client) gets one and moves everything on one queue;
 *  - nothing left behind: every handle freed, the session's count is 0.
 *
 * lossy: the server drops and reorders 2% of its frames (--dp-impair: a
 * GET's data, a PUT's ACKs); the same transfers, byte-exact, and the
 * server resent what was dropped.
 *
 *   test_stripe DJINN_DP clean|lossy
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "dataplane/eal.h"
#include "fleet_env.h"
#include "harness.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)
/* Small enough that the dev VM moves the striped sizes in a blink. */
#define PART_MIN (256 * KIB)
#define THRESHOLD (2 * PART_MIN)
#define IMPAIR "drop=0.02,reorder=0.02"

static int lossy;
static struct fe_server srv;
static char sock[96], vdev_srv[192], vdev_cli[192], prefix[48];

static struct dj_dpdk *dpdk;

/* STATS' backend.data_plane of the server (caller frees the root). */
static cJSON *server_data_plane(struct dj_conn *conn, cJSON **root)
{
	char *text = NULL;
	cJSON *d;

	CU_ASSERT_FATAL(dj_stats(conn, &text) == 0);
	*root = cJSON_Parse(text);
	free(text);
	d = cJSON_GetObjectItem(cJSON_GetObjectItem(*root, "backend"), "data_plane");
	CU_ASSERT_FATAL(d != NULL);
	return d;
}

/* Frames each of the server's queues sent and received. */
struct queue_counts {
	uint64_t tx[2], rx[2];
};

/* The lcores publish their counters every millisecond: read them once
 * they settled. */
static void queue_counts(struct dj_conn *conn, struct queue_counts *c)
{
	cJSON *root, *lcores;

	usleep(20000);
	lcores = cJSON_GetObjectItem(server_data_plane(conn, &root), "lcores");
	CU_ASSERT_FATAL(cJSON_GetArraySize(lcores) == 2);
	for (int q = 0; q < 2; q++) {
		cJSON *l = cJSON_GetArrayItem(lcores, q);

		c->tx[q] = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(l, "tx_packets"));
		c->rx[q] = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(l, "rx_packets"));
	}
	cJSON_Delete(root);
}

static struct dj_client *client_new(unsigned int stripes)
{
	struct dj_client_options o;
	struct dj_client *cl = NULL;

	dj_client_options_init(&o);
	o.port = srv.port;
	o.datapath = dj_dpdk_datapath(dpdk);
	o.path = DJ_PATH_DPDK;
	o.dp_stripes = stripes;
	o.dp_stripe_min = PART_MIN;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	return cl;
}

/* A number field of STATS' session object (-1 where absent). */
static double session_stat(struct dj_conn *conn, const char *key)
{
	char *text = NULL;
	cJSON *root, *it;
	double v = -1;

	if (dj_stats(conn, &text) != 0)
		return -1;
	root = cJSON_Parse(text);
	it = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "session"), key);
	if (cJSON_IsNumber(it))
		v = it->valuedouble;
	cJSON_Delete(root);
	free(text);
	return v;
}

/* PUT bytes, GET them back: byte-exact, freed. The server's frame counts
 * per queue while each ran go to put / get (either may be NULL). */
static void round_trip(struct dj_conn *conn, uint64_t bytes, uint32_t seed,
		       struct queue_counts *put, struct queue_counts *get)
{
	struct queue_counts a, b, c;
	struct dj_tensor t, back;
	uint64_t h = 0;

	CU_ASSERT_FATAL(fe_tensor_make(&t, bytes, seed) == 0);
	back = t;
	back.data = calloc(1, bytes);
	CU_ASSERT_FATAL(back.data != NULL);
	queue_counts(conn, &a);
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	queue_counts(conn, &b);
	CU_ASSERT_EQUAL(dj_get(conn, h, &back), 0);
	queue_counts(conn, &c);
	if (!fe_tensor_check(&back, seed))
		CU_FAIL("GET differs from what PUT sent");
	CU_ASSERT_EQUAL(dj_free(conn, h), 0);
	for (unsigned int q = 0; q < 2; q++) {
		if (put != NULL) {
			put->tx[q] = b.tx[q] - a.tx[q];
			put->rx[q] = b.rx[q] - a.rx[q];
		}
		if (get != NULL) {
			get->tx[q] = c.tx[q] - b.tx[q];
			get->rx[q] = c.rx[q] - b.rx[q];
		}
	}
	free(t.data);
	free(back.data);
}

/* Data frames of bytes, at most one per 9000 bytes of payload. */
static uint64_t frames_of(uint64_t bytes)
{
	return bytes / 9000;
}

/* Both queues carried a share of the data (each at least a third of what
 * an even split gives it), in frames the server received (PUT) or sent
 * (GET). */
static void check_both(const uint64_t n[2], uint64_t bytes, const char *what)
{
	uint64_t least = frames_of(bytes / 2) / 3;

	printf("    %s %llu B: frames per queue %llu / %llu\n", what, (unsigned long long)bytes,
	       (unsigned long long)n[0], (unsigned long long)n[1]);
	CU_ASSERT(n[0] >= least && n[1] >= least);
}

/* One queue carried the whole, the other next to nothing. */
static void check_one(const uint64_t n[2], uint64_t bytes, const char *what)
{
	uint64_t most = n[0] > n[1] ? n[0] : n[1], least = n[0] > n[1] ? n[1] : n[0];

	printf("    %s %llu B: frames per queue %llu / %llu\n", what, (unsigned long long)bytes,
	       (unsigned long long)n[0], (unsigned long long)n[1]);
	CU_ASSERT(most >= frames_of(bytes));
	CU_ASSERT(least * 10 < most);
}

static void test_session_stripes(void)
{
	struct dj_client *cl = client_new(0);
	struct dj_conn *conn = NULL;

	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	CU_ASSERT_EQUAL(dj_conn_path(conn, NULL), DJ_PATH_DPDK);
	CU_ASSERT_EQUAL(session_stat(conn, "stripes"), 2);
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

static void test_sizes_around_threshold(void)
{
	static const uint64_t striped[] = {THRESHOLD, THRESHOLD + 2, 3 * THRESHOLD + 6,
					   16 * MIB + 2};
	struct dj_client *cl = client_new(0);
	struct dj_conn *conn = NULL;
	struct queue_counts put, get;

	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	CU_ASSERT_FATAL(dj_conn_path(conn, NULL) == DJ_PATH_DPDK);
	/* One element below: whole, on one queue. */
	round_trip(conn, THRESHOLD - 2, 1, &put, &get);
	check_one(put.rx, THRESHOLD - 2, "PUT whole");
	check_one(get.tx, THRESHOLD - 2, "GET whole");
	for (size_t i = 0; i < sizeof(striped) / sizeof(striped[0]); i++) {
		round_trip(conn, striped[i], 2 + (uint32_t)i, &put, &get);
		check_both(put.rx, striped[i], "PUT striped");
		check_both(get.tx, striped[i], "GET striped");
	}
	CU_ASSERT_EQUAL(session_stat(conn, "handles"), 0);
	CU_ASSERT_EQUAL(session_stat(conn, "dp_failures"), 0);
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

/* Whole transfers take the stripes in turn: eight in a row use both. */
static void test_small_spread(void)
{
	struct dj_client *cl = client_new(0);
	struct dj_conn *conn = NULL;
	struct queue_counts put, sum = {0};

	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	for (uint32_t i = 0; i < 8; i++) {
		round_trip(conn, 64 * KIB, 100 + i, &put, NULL);
		sum.rx[0] += put.rx[0];
		sum.rx[1] += put.rx[1];
	}
	printf("    8 PUTs of 64 KiB: frames per queue %llu / %llu\n",
	       (unsigned long long)sum.rx[0], (unsigned long long)sum.rx[1]);
	CU_ASSERT(sum.rx[0] >= 4 * frames_of(64 * KIB) && sum.rx[1] >= 4 * frames_of(64 * KIB));
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

/* A client that asks for none: one stripe, one queue, as before. */
static void test_no_stripes_asked(void)
{
	struct dj_client *cl = client_new(1);
	struct dj_conn *conn = NULL;
	struct queue_counts put, get;

	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	CU_ASSERT_EQUAL(dj_conn_path(conn, NULL), DJ_PATH_DPDK);
	CU_ASSERT_EQUAL(session_stat(conn, "stripes"), 1);
	round_trip(conn, 4 * THRESHOLD, 7, &put, &get);
	check_one(put.rx, 4 * THRESHOLD, "PUT, no stripes");
	check_one(get.tx, 4 * THRESHOLD, "GET, no stripes");
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

/* The server resent what its impairment dropped. */
static void test_impairment_seen(void)
{
	struct dj_client *cl = client_new(0);
	struct dj_conn *conn = NULL;
	cJSON *root;
	double resent;

	CU_ASSERT_FATAL(dj_connect(cl, &conn) == 0);
	resent = cJSON_GetNumberValue(cJSON_GetObjectItem(server_data_plane(conn, &root),
							  "retransmits"));
	printf("    server: %.0f fragments resent\n", resent);
	CU_ASSERT(resent > 0);
	cJSON_Delete(root);
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

/* The public client data path, 2 queue pairs. */
static int client_start(void)
{
	char pfx[64];
	char *argv[] = {"test_stripe", "--lcores", "0@1,1@0,2@1", "--main-lcore", "0",
			"--no-pci", "--log-level=lib.eal:warning", pfx, NULL};
	struct dj_dpdk_options d;

	snprintf(pfx, sizeof(pfx), "--file-prefix=%s", prefix);
	dj_dpdk_options_init(&d);
	d.default_vdev = vdev_cli;
	d.queues = 2;
	d.idle_sleep_us = 50;
	d.link_timeout_ms = 10000;
	return dj_dpdk_create((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv, &d, NULL, NULL,
			      &dpdk);
}

static int suite_init(void)
{
	static const char *const args[] = {
		"--lcores", "0@0,1@1,2@0", "--main-lcore", "0", "--no-pci",
		"--log-level=lib.eal:warning", "--vdev", vdev_srv, "--", "--ctl-port", NULL,
		"--stats-interval", "0", "--gpu", "none", "--dp-idle-sleep-us", "50",
		"--dp-queues", "2"};
	char port[16];
	int pid = (int)getpid();

	snprintf(sock, sizeof(sock), "/tmp/djinn-stripe-%d.memif", pid);
	snprintf(vdev_srv, sizeof(vdev_srv),
		 "net_memif0,role=server,socket=%s,socket-abstract=no,bsize=9216", sock);
	snprintf(vdev_cli, sizeof(vdev_cli),
		 "net_memif0,role=client,socket=%s,socket-abstract=no,bsize=9216", sock);
	snprintf(prefix, sizeof(prefix), "djstripe%dc", pid);
	unlink(sock);
	srv.port = fe_free_port();
	snprintf(srv.host, sizeof(srv.host), "127.0.0.1");
	snprintf(port, sizeof(port), "%u", srv.port);
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		fe_server_arg(&srv, args[i] != NULL ? args[i] : port);
	if (lossy) {
		fe_server_arg(&srv, "--dp-impair");
		fe_server_arg(&srv, IMPAIR);
	}
	if (fe_server_start(&srv, 60) != 0)
		return -1;
	return client_start();
}

static int suite_cleanup(void)
{
	/* Polling stops on this side (dj_dpdk_destroy quiesces first)
	 * before the server goes: a memif peer must never vanish under a
	 * burst. */
	dj_dpdk_destroy(dpdk);
	fe_server_kill(&srv, SIGINT);
	dp_eal_prefix_remove(prefix);
	unlink(sock);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct dj_test_case clean[] = {
		{"SESSION grants a stripe per queue", test_session_stripes},
		{"PUT/GET around the threshold: byte-exact, parts on both queues",
		 test_sizes_around_threshold},
		{"small transfers spread over the queues", test_small_spread},
		{"a client asking for no stripes: one queue", test_no_stripes_asked},
		{NULL, NULL},
	};
	static const struct dj_test_case impaired[] = {
		{"PUT/GET striped over a lossy link: byte-exact", test_sizes_around_threshold},
		{"the impairment dropped frames, the protocol resent them", test_impairment_seen},
		{NULL, NULL},
	};

	if (argc < 3)
		dj_test_skip("usage: test_stripe DJINN_DP clean|lossy");
	if (geteuid() != 0)
		dj_test_skip("memif sockets and EAL need root here");
	lossy = strcmp(argv[2], "lossy") == 0;
	fe_init(argv[1]);
	dj_test_add_suite(lossy ? "stripe_lossy" : "stripe", suite_init, suite_cleanup,
			  lossy ? impaired : clean);
	return dj_test_main(argc, argv);
}
