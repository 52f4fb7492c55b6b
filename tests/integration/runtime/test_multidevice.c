/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "device" field end to end, as an outside client speaks it
 * (docs/CONTROL.md, "Devices"): a control-plane server over a runtime of
 * two simulated devices (no GPU needed), raw frames on a socket. SESSION
 * chooses the default device; ALLOC, PUT and batch puts place tensors;
 * replies and DESCRIBE name the device; EXECUTE places outputs and
 * to_device moves (byte-exact); inputs on two devices are refused naming
 * both; STATS and the member record report memory and load per device;
 * the C client's options.device; a backend without devices refuses the
 * field.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "runtime/runtime.h"
#include "fixture.h"
#include "harness.h"

static struct rt_runtime *rt;
static struct ctl_server *server;
static uint16_t port;
static int fd = -1;
static int next_id = 10;

static int suite_init(void)
{
	struct rt_config rcfg = {.gpu = "sim:2:64M", .stage_slot_bytes = 4096, .stage_slots = 3};
	struct ctl_server_config scfg;

	if (rt_create(&rcfg, &rt) != 0)
		return -1;
	ctl_server_config_init(&scfg);
	scfg.port = 0;
	if (ctl_server_create(&scfg, rt_backend(), rt, &server) != 0 ||
	    ctl_server_start(server) != 0)
		return -1;
	port = ctl_server_port(server);
	return 0;
}

static int suite_cleanup(void)
{
	if (fd >= 0)
		close(fd);
	ctl_server_destroy(server);
	rt_destroy(rt);
	return 0;
}

/* One request (JSON text with "id" filled in for "%d") and its reply. */
static cJSON *call(int sock, const char *fmt, const void *payload, uint64_t len)
{
	char json[1024];

	snprintf(json, sizeof(json), fmt, next_id++);
	CU_ASSERT_EQUAL_FATAL(fx_raw_send(sock, json, len), 0);
	if (len > 0)
		CU_ASSERT_EQUAL_FATAL(fx_raw_send_bytes(sock, payload, len), 0);
	cJSON *r = fx_raw_recv(sock, 5000);

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	return r;
}

static const char *str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : "";
}

/* HELLO, then SESSION with the given extra fields ("" for none). */
static int session(const char *extra, cJSON **reply)
{
	char json[256];
	int s = fx_raw_connect(port);
	cJSON *r;

	CU_ASSERT_FATAL(s >= 0);
	r = call(s, "{\"type\":\"HELLO\",\"id\":%d,\"version\":1}", NULL, 0);
	cJSON_Delete(r);
	snprintf(json, sizeof(json), "{\"type\":\"SESSION\",\"id\":%%d%s}", extra);
	*reply = call(s, json, NULL, 0);
	return s;
}

static void test_session_device(void)
{
	cJSON *r;
	int s = session("", &r);

	/* The first session gets sim:0 (fewest sessions, then index). */
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:0");
	cJSON_Delete(r);
	close(s);
	s = session(",\"device\":\"sim:9\"", &r);
	CU_ASSERT_EQUAL(fx_error_code(r), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(str(r, "message"), "no device 'sim:9' on this server "
				      "(it has sim:0, sim:1)"));
	cJSON_Delete(r);
	close(s);
	s = session(",\"device\":7", &r);
	CU_ASSERT_EQUAL(fx_error_code(r), -EINVAL);
	cJSON_Delete(r);
	close(s);
	fd = session(",\"device\":\"sim:1\"", &r);
	CU_ASSERT_EQUAL(fx_error_code(r), 0);
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:1");
	cJSON_Delete(r);
}

static char handle_a[24], handle_b[24], handle_c[24];

static void keep_handle(const cJSON *r, char *buf)
{
	snprintf(buf, 24, "%s", str(r, "handle"));
	CU_ASSERT_NOT_EQUAL(buf[0], '\0');
}

static void test_alloc_put_describe(void)
{
	float v[4] = {1.5f, -2.0f, 3.25f, 1e9f}, w[4] = {0};
	void *payload = NULL;
	uint64_t plen = 0;
	char *text = NULL, json[256];
	cJSON *r;

	r = call(fd, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4],"
		 "\"device\":\"sim:0\"}", NULL, 0);
	CU_ASSERT_STRING_EQUAL(str(r, "type"), "ALLOC");
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:0");
	keep_handle(r, handle_a);
	cJSON_Delete(r);
	/* No field: the session's device. */
	r = call(fd, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4]}", NULL, 0);
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:1");
	cJSON_Delete(r);
	r = call(fd, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4],"
		 "\"device\":\"cuda:0\"}", NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), -ENODEV);
	cJSON_Delete(r);
	r = call(fd, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4],"
		 "\"device\":\"a-very-long-device-name\"}", NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), -EINVAL);
	cJSON_Delete(r);
	/* PUT into a new tensor on sim:0. */
	r = call(fd, "{\"type\":\"PUT\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4],"
		 "\"device\":\"sim:0\"}", v, sizeof(v));
	CU_ASSERT_STRING_EQUAL(str(r, "type"), "PUT");
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:0");
	keep_handle(r, handle_b);
	cJSON_Delete(r);
	snprintf(json, sizeof(json), "{\"type\":\"DESCRIBE\",\"id\":%%d,\"handle\":\"%s\"}",
		 handle_b);
	r = call(fd, json, NULL, 0);
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:0");
	cJSON_Delete(r);
	/* GET names the device too, and returns the bytes. */
	snprintf(json, sizeof(json), "{\"type\":\"GET\",\"id\":%d,\"handle\":\"%s\"}", next_id++,
		 handle_b);
	CU_ASSERT_EQUAL_FATAL(fx_raw_send(fd, json, 0), 0);
	CU_ASSERT_EQUAL_FATAL(fx_raw_recv_frame(fd, 5000, &text, &payload, &plen), 0);
	r = cJSON_Parse(text);
	CU_ASSERT_STRING_EQUAL(str(r, "device"), "sim:0");
	CU_ASSERT_EQUAL_FATAL(plen, sizeof(w));
	memcpy(w, payload, sizeof(w));
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	cJSON_Delete(r);
	free(text);
	free(payload);
}

static void test_execute_devices(void)
{
	char json[512];
	cJSON *r, *out;

	/* a (zeros) + b on sim:0, the sum placed on sim:1. */
	snprintf(json, sizeof(json), "{\"type\":\"EXECUTE\",\"id\":%%d,\"op\":\"add\","
		 "\"inputs\":[\"%s\",\"%s\"],\"device\":\"sim:1\"}", handle_a, handle_b);
	r = call(fd, json, NULL, 0);
	out = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "results"), 0), "outputs"), 0);
	CU_ASSERT_STRING_EQUAL(str(out, "device"), "sim:1");
	keep_handle(out, handle_c);
	cJSON_Delete(r);
	/* Inputs on two devices: refused, both named. */
	snprintf(json, sizeof(json), "{\"type\":\"EXECUTE\",\"id\":%%d,\"op\":\"mul\","
		 "\"inputs\":[\"%s\",\"%s\"]}", handle_b, handle_c);
	r = call(fd, json, NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), -EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(str(r, "message"), "is on sim:0, input 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(str(r, "message"), "on sim:1: move one with to_device"));
	cJSON_Delete(r);
	/* to_device brings b over; then they go together. */
	snprintf(json, sizeof(json), "{\"type\":\"EXECUTE\",\"id\":%%d,\"batch\":["
		 "{\"op\":\"to_device\",\"inputs\":[\"%s\"],\"attrs\":{\"device\":\"sim:1\"}},"
		 "{\"op\":\"sub\",\"inputs\":[\"$0\",\"%s\"],\"fetch\":true}]}", handle_b,
		 handle_c);
	char *text = NULL;
	void *payload = NULL;
	uint64_t plen = 0;
	char req[512];

	snprintf(req, sizeof(req), json, next_id++);
	CU_ASSERT_EQUAL_FATAL(fx_raw_send(fd, req, 0), 0);
	CU_ASSERT_EQUAL_FATAL(fx_raw_recv_frame(fd, 5000, &text, &payload, &plen), 0);
	r = cJSON_Parse(text);
	CU_ASSERT_EQUAL_FATAL(fx_error_code(r), 0);
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(r, "results");

	for (int k = 0; k < 2; k++) {
		out = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(results, k), "outputs"), 0);
		CU_ASSERT_STRING_EQUAL(str(out, "device"), "sim:1");
	}
	/* b - (0 + b) = 0, exactly. */
	CU_ASSERT_EQUAL_FATAL(plen, 16);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(((float *)payload)[i], 0.0f);
	cJSON_Delete(r);
	free(text);
	free(payload);
	/* The top-level "device" and attrs' differ: refused. */
	snprintf(json, sizeof(json), "{\"type\":\"EXECUTE\",\"id\":%%d,\"op\":\"neg\","
		 "\"inputs\":[\"%s\"],\"device\":\"sim:0\",\"attrs\":{\"device\":\"sim:1\"}}",
		 handle_b);
	r = call(fd, json, NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), -EINVAL);
	cJSON_Delete(r);
}

/* A batch put placed by its own "device", moved and fetched in one request. */
static void test_batch_put_device(void)
{
	int32_t v[6] = {1, -2, 3, -4, 5, 2147483647};
	char *text = NULL, req[512];
	void *payload = NULL;
	uint64_t plen = 0;
	cJSON *r;

	snprintf(req, sizeof(req), "{\"type\":\"EXECUTE\",\"id\":%d,\"batch\":["
		 "{\"put\":{\"dtype\":\"int32\",\"shape\":[2,3],\"device\":\"sim:0\"}},"
		 "{\"op\":\"to_device\",\"inputs\":[\"$0\"],\"device\":\"sim:1\",\"fetch\":true,"
		 "\"free\":[\"$0\"]}]}", next_id++);
	CU_ASSERT_EQUAL_FATAL(fx_raw_send(fd, req, sizeof(v)), 0);
	CU_ASSERT_EQUAL_FATAL(fx_raw_send_bytes(fd, v, sizeof(v)), 0);
	CU_ASSERT_EQUAL_FATAL(fx_raw_recv_frame(fd, 5000, &text, &payload, &plen), 0);
	r = cJSON_Parse(text);
	CU_ASSERT_EQUAL_FATAL(fx_error_code(r), 0);
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(r, "results");
	const char *devs[2] = {"sim:0", "sim:1"};

	for (int k = 0; k < 2; k++) {
		const cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(results, k), "outputs"), 0);

		CU_ASSERT_STRING_EQUAL(str(out, "device"), devs[k]);
	}
	CU_ASSERT_EQUAL_FATAL(plen, sizeof(v));
	CU_ASSERT_EQUAL(memcmp(payload, v, sizeof(v)), 0);
	cJSON_Delete(r);
	free(text);
	free(payload);
}

/* STATS: backend.memory and member.load.devices, one entry per device. */
static void test_stats_per_device(void)
{
	cJSON *r = call(fd, "{\"type\":\"STATS\",\"id\":%d}", NULL, 0);
	const cJSON *mem = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "backend"), "memory");
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "member"),
						 "load"), "devices");
	const cJSON *gpus = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "member"),
						 "caps"), "gpus");

	CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(mem), 2);
	CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(devs), 2);
	CU_ASSERT_EQUAL(cJSON_GetArraySize(gpus), 2);
	for (int i = 0; i < 2; i++) {
		const cJSON *m = cJSON_GetArrayItem(mem, i), *d = cJSON_GetArrayItem(devs, i);
		double used = cJSON_GetObjectItemCaseSensitive(m, "used")->valuedouble;

		CU_ASSERT_STRING_EQUAL(str(m, "device"), str(d, "name"));
		CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(d, "mem_used")->valuedouble, used);
		for (const char *const *k = (const char *const[]){"tensors", "ops", "running",
								   "queued", "sessions",
								   "numa_node", NULL}; *k; k++)
			CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(d, *k));
	}
	/* sim:0 holds a and b (32 bytes; the batch's put was freed); sim:1
	 * the ALLOC, c, the moved b, the difference and the batch's moved
	 * put: 88 bytes. The add ran on sim:0, the sub on sim:1. */
	CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(mem, 0),
							 "used")->valuedouble, 32);
	CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(mem, 1),
							 "used")->valuedouble, 88);
	CU_ASSERT_TRUE(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(devs, 0),
							"ops")->valuedouble >= 1);
	CU_ASSERT_TRUE(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(devs, 1),
							"ops")->valuedouble >= 1);
	CU_ASSERT_STRING_EQUAL(str(cJSON_GetObjectItemCaseSensitive(r, "backend"),
				   "session_device"), "sim:1");
	cJSON_Delete(r);
}

/* The C client: options.device goes in SESSION; a bad one fails dj_connect. */
static void test_client_option(void)
{
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn;
	char *json = NULL;

	dj_client_options_init(&o);
	o.port = port;
	o.path = DJ_PATH_TCP;
	o.max_retries = 0;
	o.device = "sim:1";
	CU_ASSERT_EQUAL_FATAL(dj_client_create(&o, &cl), 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &conn), 0);
	CU_ASSERT_STRING_EQUAL(dj_conn_device(conn), "sim:1");
	CU_ASSERT_EQUAL_FATAL(dj_stats(conn, &json), 0);
	cJSON *st = cJSON_Parse(json);

	CU_ASSERT_STRING_EQUAL(str(cJSON_GetObjectItemCaseSensitive(st, "backend"),
				   "session_device"), "sim:1");
	cJSON_Delete(st);
	free(json);
	dj_conn_close(conn);
	dj_client_destroy(cl);
	o.device = "sim:5";
	CU_ASSERT_EQUAL_FATAL(dj_client_create(&o, &cl), 0);
	CU_ASSERT_EQUAL(dj_connect(cl, &conn), -ENODEV);
	dj_client_destroy(cl);
}

/* A backend that names no devices refuses the field; its replies name none. */
static void test_backend_without_devices(void)
{
	struct fixture fx;
	cJSON *r;
	int s;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	s = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(s >= 0);
	CU_ASSERT_EQUAL_FATAL(fx_raw_ready(s), 0);
	r = call(s, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4],"
		 "\"device\":\"cuda:0\"}", NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), -ENOTSUP);
	cJSON_Delete(r);
	r = call(s, "{\"type\":\"ALLOC\",\"id\":%d,\"dtype\":\"float32\",\"shape\":[4]}", NULL, 0);
	CU_ASSERT_EQUAL(fx_error_code(r), 0);
	CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(r, "device"));
	cJSON_Delete(r);
	close(s);
	fx_stop(&fx);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"SESSION chooses the default device", test_session_device},
		{"ALLOC, PUT, DESCRIBE, GET name the device", test_alloc_put_describe},
		{"EXECUTE places outputs; inputs on two devices refused",
		 test_execute_devices},
		{"a batch put on its device, moved, fetched", test_batch_put_device},
		{"STATS and the member record per device", test_stats_per_device},
		{"the C client's options.device", test_client_option},
		{"a backend without devices", test_backend_without_devices},
		{NULL, NULL},
	};

	dj_test_add_suite("multidevice", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
