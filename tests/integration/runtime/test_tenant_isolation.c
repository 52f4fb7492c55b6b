/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A new tensor never shows another tenant's bytes, end to end: djinn-dp's
 * runtime behind a real control-plane server on loopback (with an
 * in-process fake data path for data-plane PUTs), sessions through the
 * client API and through raw frames.
 *
 *   test_tenant_isolation        host runtime (host memory, CPU operations)
 *   test_tenant_isolation gpu    GPU runtime (a memory pool that reuses
 *                                what sessions free, CUDA operations);
 *                                skipped where there is no GPU
 *
 * 1. Session A puts a tensor and frees it; session B ALLOCs the same size
 *    and reads it back: zeros, 64 B to 64 MiB in powers of 4.
 * 2. A PUT into a new tensor abandoned midway leaves nothing readable: a
 *    TCP client vanishing half-way, a data-plane PUT whose bytes never come
 *    (its handle, known from READY, reads zeros meanwhile; it times out).
 * Operation outputs are not zeroed: test_remote_ops shows that every
 * operation writes its whole output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "gpu/ops/gpu_ops.h"
#include "runtime/runtime.h"
#include "fake_dp.h"
#include "fixture.h"
#include "harness.h"

#define MAX_BYTES (64u << 20)

static struct rt_runtime *rt;
static struct fake_net *net;
static struct fake_dp *fdp;
static struct ctl_server *server;
static uint16_t port;
static struct dj_client *clients[2];
static struct dj_conn *conns[2];
static const char *gpu_spec = "none";
static unsigned int seed;

static int suite_init(void)
{
	struct rt_config rcfg = {.gpu = gpu_spec};
	struct ctl_server_config scfg;
	struct dj_client_options o;

	seed = dj_test_seed();
	net = fake_net_create();
	fdp = net != NULL ? fake_dp_create(net, 4791) : NULL;
	if (fdp == NULL || rt_create(&rcfg, &rt) != 0)
		return -1;
	fdp->available = 1;
	ctl_server_config_init(&scfg);
	scfg.port = 0;
	scfg.datapath = &fdp->dp;
	scfg.dp_timeout_ms = 300;
	if (ctl_server_create(&scfg, rt_backend(), rt, &server) != 0 ||
	    ctl_server_start(server) != 0)
		return -1;
	port = ctl_server_port(server);
	/* Two clients: two sessions, two tenants. */
	dj_client_options_init(&o);
	o.port = port;
	o.path = DJ_PATH_TCP;
	for (int i = 0; i < 2; i++)
		if (dj_client_create(&o, &clients[i]) != 0 || dj_connect(clients[i], &conns[i]) != 0)
			return -1;
	return dj_conn_session_id(conns[0]) != dj_conn_session_id(conns[1]) ? 0 : -1;
}

static int suite_cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		dj_disconnect(conns[i]);
		dj_client_destroy(clients[i]);
	}
	ctl_server_destroy(server);
	rt_destroy(rt);
	fake_dp_destroy(fdp);
	fake_net_destroy(net);
	return 0;
}

static struct dj_tensor_desc int32_vec(size_t bytes)
{
	return (struct dj_tensor_desc){.dtype = DJ_DTYPE_INT32, .ndim = 1,
				       .shape = {(int64_t)(bytes / 4)}};
}

static size_t count_nonzero(const uint8_t *p, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += p[i] != 0;
	return bad;
}

/* Session A leaves a tensor of bytes behind, filled with 0xa5. */
static void leave_behind(size_t bytes, uint8_t *scratch)
{
	struct dj_tensor t = {.desc = int32_vec(bytes), .data = scratch, .mem = DJ_MEM_HOST};
	uint64_t h;

	memset(scratch, 0xa5, bytes);
	CU_ASSERT_EQUAL_FATAL(dj_put(conns[0], &t, &h), 0);
	CU_ASSERT_EQUAL(dj_free(conns[0], h), 0);
}

/* Session B allocates bytes and reads them: how many are not zero. */
static size_t alloc_and_read(size_t bytes, uint8_t *scratch)
{
	struct dj_tensor_desc d = int32_vec(bytes);
	struct dj_tensor t = {.desc = d, .data = scratch, .mem = DJ_MEM_HOST};
	uint64_t h;

	memset(scratch, 0x33, bytes);
	CU_ASSERT_EQUAL_FATAL(dj_alloc(conns[1], &d, &h), 0);
	CU_ASSERT_EQUAL(dj_get(conns[1], h, &t), 0);
	CU_ASSERT_EQUAL(dj_free(conns[1], h), 0);
	return count_nonzero(scratch, bytes);
}

static void test_alloc_reads_zeros_at_every_size(void)
{
	uint8_t *scratch = malloc(MAX_BYTES);

	CU_ASSERT_FATAL(scratch != NULL);
	for (size_t bytes = 64; bytes <= MAX_BYTES; bytes *= 4) {
		size_t shown = 0;

		/* A few rounds: allocators hand memory back in their own order. */
		for (int round = 0; round < 3; round++) {
			leave_behind(bytes, scratch);
			shown += alloc_and_read(bytes, scratch);
		}
		if (shown != 0)
			printf("\n  %zu B: %zu bytes not zero (another tenant's)\n", bytes, shown);
		CU_ASSERT_EQUAL(shown, 0);
	}
	free(scratch);
}

/* HELLO announcing a data-plane endpoint, SESSION, PATH dpdk. */
static int raw_dpdk_session(int fd)
{
	static const char *const msgs[] = {
		"{\"type\":\"HELLO\",\"id\":1,\"version\":1,\"caps\":{\"dpdk\":true,\"endpoint\":"
		"{\"mac\":\"02:00:00:00:00:02\",\"ipv4\":\"198.18.0.2\",\"udp_port\":4792,"
		"\"queues\":1,\"mtu\":9000,\"memif_socket\":\"\"}}}",
		"{\"type\":\"SESSION\",\"id\":2}",
		"{\"type\":\"PATH\",\"id\":3,\"path\":\"dpdk\",\"reason\":\"test\"}",
	};

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		cJSON *r;
		int ok;

		if (fx_raw_send(fd, msgs[i], 0) != 0)
			return -1;
		r = fx_raw_recv(fd, 5000);
		ok = r != NULL && fx_error_code(r) == 0;
		cJSON_Delete(r);
		if (!ok)
			return -1;
	}
	return 0;
}

/* A raw GET of handle: how many payload bytes are not zero (-1: no payload). */
static long raw_get_nonzero(int fd, const char *handle, size_t bytes)
{
	char req[128], *text = NULL;
	void *payload = NULL;
	uint64_t len = 0;
	long bad = -1;

	snprintf(req, sizeof(req), "{\"type\":\"GET\",\"id\":11,\"handle\":\"%s\"}", handle);
	if (fx_raw_send(fd, req, 0) == 0 &&
	    fx_raw_recv_frame(fd, 10000, &text, &payload, &len) == 0 && len == bytes)
		bad = (long)count_nonzero(payload, bytes);
	free(text);
	free(payload);
	return bad;
}

static void test_abandoned_puts_leave_nothing(void)
{
	const size_t bytes = 1u << 20;
	uint8_t *scratch = malloc(bytes);
	char req[256];
	cJSON *r;
	int fd;

	CU_ASSERT_FATAL(scratch != NULL);
	/* TCP: half the payload, then the client vanishes. */
	for (int round = 0; round < 3; round++) {
		leave_behind(bytes, scratch);
		fd = fx_raw_connect(port);
		CU_ASSERT_FATAL(fd >= 0 && fx_raw_ready(fd) == 0);
		snprintf(req, sizeof(req), "{\"type\":\"PUT\",\"id\":5,\"dtype\":\"int32\","
			 "\"shape\":[%zu]}", bytes / 4);
		memset(scratch, 0x5a, bytes / 2);
		CU_ASSERT_EQUAL(fx_raw_send(fd, req, bytes), 0);
		CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, scratch, bytes / 2), 0);
		usleep(50 * 1000);
		close(fd);
		usleep(100 * 1000); /* the server notices and drops the half tensor */
		CU_ASSERT_EQUAL(alloc_and_read(bytes, scratch), 0);
	}
	/* Data plane: READY names the handle before any byte lands. */
	leave_behind(bytes, scratch);
	fd = fx_raw_connect(port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(raw_dpdk_session(fd), 0);
	snprintf(req, sizeof(req), "{\"type\":\"PUT\",\"id\":6,\"dtype\":\"int32\",\"shape\":[%zu],"
		 "\"via\":\"dpdk\",\"xfer\":77}", bytes / 4);
	CU_ASSERT_EQUAL(fx_raw_send(fd, req, 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_FATAL(r != NULL && fx_error_code(r) == 0);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "type")->valuestring, "READY");
	CU_ASSERT_EQUAL(raw_get_nonzero(fd, cJSON_GetObjectItem(r, "handle")->valuestring, bytes), 0);
	cJSON_Delete(r);
	/* No byte ever comes: the PUT times out and its tensor goes. */
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"PUT_DONE\",\"id\":7,\"xfer\":77}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(fx_error_code(r), -ETIMEDOUT);
	cJSON_Delete(r);
	close(fd);
	CU_ASSERT_EQUAL(alloc_and_read(bytes, scratch), 0);
	free(scratch);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case tests[] = {
		{"ALLOC reads zeros after another session's tensor, 64 B .. 64 MiB",
		 test_alloc_reads_zeros_at_every_size},
		{"abandoned PUTs (TCP, data plane) leave nothing readable",
		 test_abandoned_puts_leave_nothing},
		{NULL, NULL},
	};
	if (argc > 1 && strcmp(argv[1], "gpu") == 0) {
		if (djg_ops_device_count() == 0)
			dj_test_skip("no CUDA GPU: the GPU runtime cannot be tested here");
		gpu_spec = "0";
	}
	dj_test_add_suite(strcmp(gpu_spec, "none") ? "tenant isolation (GPU runtime)"
						   : "tenant isolation (host runtime)",
			  suite_init, suite_cleanup, tests);
	return dj_test_main(argc, argv);
}
