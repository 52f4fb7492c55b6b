/* SPDX-License-Identifier: BSD-3-Clause */
/* Control-plane building blocks without sockets: framing, JSON checks,
 * descriptions, capabilities, auth, path decision, tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "controlplane/ctl.h"
#include "ctl_wire.h"
#include "harness.h"

static void test_frame_header_round_trip(void)
{
	uint8_t hdr[CTL_HDR_LEN];
	struct ctl_hdr h;

	ctl_hdr_encode(hdr, 0x01020304u, 0x1122334455667788ull);
	CU_ASSERT_EQUAL(memcmp(hdr, "DJC1", 4), 0);
	CU_ASSERT_EQUAL(hdr[4], 0x01);
	CU_ASSERT_EQUAL(hdr[15], 0x88);
	CU_ASSERT_EQUAL(ctl_hdr_decode(hdr, &h), 0);
	CU_ASSERT_EQUAL(h.json_len, 0x01020304u);
	CU_ASSERT_EQUAL(h.payload_len, 0x1122334455667788ull);
	hdr[0] = 'X';
	CU_ASSERT_EQUAL(ctl_hdr_decode(hdr, &h), -EPROTO);
}

static void test_json_depth_skips_strings(void)
{
	const char *flat = "{\"a\":\"[[[{{{\"}";
	const char *deep = "{\"a\":[[{\"b\":[1]}]]}";
	const char *esc = "{\"a\":\"\\\"[[\"}";

	CU_ASSERT_EQUAL(ctl_json_depth(flat, strlen(flat)), 1);
	CU_ASSERT_EQUAL(ctl_json_depth(deep, strlen(deep)), 5);
	CU_ASSERT_EQUAL(ctl_json_depth(esc, strlen(esc)), 1);
}

static void test_handles_parse_strictly(void)
{
	uint64_t h = 0;
	char text[20];

	CU_ASSERT_EQUAL(ctl_handle_parse("0x1f", &h), 0);
	CU_ASSERT_EQUAL(h, 0x1f);
	CU_ASSERT_EQUAL(ctl_handle_parse("0xffffffffffffffff", &h), 0);
	CU_ASSERT_EQUAL(h, UINT64_MAX);
	CU_ASSERT_EQUAL(ctl_handle_parse("0x0", &h), -EINVAL);        /* 0 is never a handle */
	CU_ASSERT_EQUAL(ctl_handle_parse("1f", &h), -EINVAL);
	CU_ASSERT_EQUAL(ctl_handle_parse("0x1g", &h), -EINVAL);
	CU_ASSERT_EQUAL(ctl_handle_parse("0x", &h), -EINVAL);
	CU_ASSERT_EQUAL(ctl_handle_parse("0x1ffffffffffffffff", &h), -EINVAL);
	ctl_handle_format(0xabcdef0123ull, text);
	CU_ASSERT_STRING_EQUAL(text, "0xabcdef0123");
	ctl_handle_format(1, text);
	CU_ASSERT_STRING_EQUAL(text, "0x1");
	ctl_handle_format(UINT64_MAX, text);
	CU_ASSERT_STRING_EQUAL(text, "0xffffffffffffffff");
	ctl_handle_format(0x8000000000000000ull, text);
	CU_ASSERT_STRING_EQUAL(text, "0x8000000000000000");
	ctl_handle_format(0x10, text);
	CU_ASSERT_STRING_EQUAL(text, "0x10");
	/* Formatting and parsing agree on every length. */
	for (int bits = 0; bits < 64; bits++) {
		uint64_t want = (1ull << bits) | 1;

		ctl_handle_format(want, text);
		CU_ASSERT_EQUAL(ctl_handle_parse(text, &h), 0);
		CU_ASSERT_EQUAL(h, want);
	}
}

static int desc_rc(const char *json, struct dj_tensor_desc *d)
{
	char why[128];
	cJSON *o = cJSON_Parse(json);
	int rc = ctl_desc_from_json(o, d, why);

	cJSON_Delete(o);
	return rc;
}

static void test_descriptions_validate(void)
{
	struct dj_tensor_desc d;
	uint64_t n;

	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"float16\",\"shape\":[2,3,4]}", &d), 0);
	CU_ASSERT_EQUAL(d.dtype, DJ_DTYPE_FLOAT16);
	CU_ASSERT_EQUAL(d.ndim, 3);
	CU_ASSERT_EQUAL(ctl_desc_nbytes(&d, &n), 0);
	CU_ASSERT_EQUAL(n, 48);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int64\",\"shape\":[]}", &d), 0);
	CU_ASSERT_EQUAL(ctl_desc_nbytes(&d, &n), 0);
	CU_ASSERT_EQUAL(n, 8); /* a scalar */
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"float64\",\"shape\":[1]}", &d), -DJ_EDTYPE);
	CU_ASSERT_EQUAL(desc_rc("{\"shape\":[1]}", &d), -EINVAL);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int32\",\"shape\":[1,-2]}", &d), -DJ_ESHAPE);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int32\",\"shape\":[1.5]}", &d), -DJ_ESHAPE);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int32\",\"shape\":\"2x2\"}", &d), -EINVAL);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int32\",\"shape\":[1,1,1,1,1,1,1,1,1]}", &d), -DJ_ESHAPE);
	CU_ASSERT_EQUAL(desc_rc("{\"dtype\":\"int64\",\"shape\":[4000000000000000,4000000000000000]}", &d),
			-DJ_ESHAPE);
}

static void test_caps_round_trip(void)
{
	struct dp_caps a = {0}, b;
	cJSON *j;

	a.dpdk = 1;
	memcpy(a.endpoint.mac, "\x02\x00\x00\xaa\xbb\xcc", 6);
	a.endpoint.ipv4 = 0x0201a8c0; /* 192.168.1.2 */
	a.endpoint.udp_port = 4791;
	a.endpoint.n_queues = 4;
	a.endpoint.mtu = 9000;
	strcpy(a.endpoint.memif_socket, "/run/x.memif");
	a.n_gpus = 1;
	strcpy(a.gpus[0].name, "H100");
	a.gpus[0].mem_total = 80ull << 30;
	a.gpus[0].mem_free = 79ull << 30;
	a.dtypes = (1u << DJ_DTYPE_FLOAT16) | (1u << DJ_DTYPE_INT64);
	a.n_ops = 2;
	strcpy(a.ops[0], "matmul");
	strcpy(a.ops[1], "add");
	j = ctl_caps_to_json(&a);
	ctl_caps_from_json(j, &b);
	cJSON_Delete(j);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
}

static void test_path_decision_table(void)
{
	static const struct {
		enum dj_path want;
		int local, peer, probe, rc;
		enum dj_path chosen;
	} rows[] = {
		{DJ_PATH_AUTO, 1, 1, 0, 0, DJ_PATH_DPDK},
		{DJ_PATH_AUTO, 1, 1, -ETIMEDOUT, 0, DJ_PATH_TCP},
		{DJ_PATH_AUTO, 0, 1, 0, 0, DJ_PATH_TCP},
		{DJ_PATH_AUTO, 1, 0, 0, 0, DJ_PATH_TCP},
		{DJ_PATH_TCP, 1, 1, 0, 0, DJ_PATH_TCP},
		{DJ_PATH_DPDK, 1, 1, 0, 0, DJ_PATH_DPDK},
		{DJ_PATH_DPDK, 1, 0, 0, -DJ_ENODPDK, DJ_PATH_TCP},
		{DJ_PATH_DPDK, 1, 1, -EHOSTUNREACH, -DJ_ENODPDK, DJ_PATH_TCP},
	};
	char reason[160];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum dj_path got = DJ_PATH_TCP;
		int rc = ctl_path_decide(rows[i].want, rows[i].local, rows[i].peer, rows[i].probe, NULL,
					&got, reason, sizeof(reason));

		CU_ASSERT_EQUAL(rc, rows[i].rc);
		if (rc == 0)
			CU_ASSERT_EQUAL(got, rows[i].chosen);
		CU_ASSERT(strlen(reason) > 5); /* every decision says why */
	}
	ctl_path_decide(DJ_PATH_AUTO, 1, 1, -ETIMEDOUT, NULL, &(enum dj_path){0}, reason, sizeof(reason));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "probe"));
	ctl_path_decide(DJ_PATH_AUTO, 1, 0, 0, NULL, &(enum dj_path){0}, reason, sizeof(reason));
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "peer"));
	/* The peer opened no data-plane session: TCP with its reason, or no
	 * connection where dpdk is forced; a missing side still says so. */
	{
		const char *why = "the server's data plane opened no session for it: limit exceeded";
		enum dj_path got = DJ_PATH_DPDK;

		CU_ASSERT_EQUAL(ctl_path_decide(DJ_PATH_AUTO, 1, 1, -DJ_ELIMIT, why, &got, reason,
						sizeof(reason)), 0);
		CU_ASSERT_EQUAL(got, DJ_PATH_TCP);
		CU_ASSERT_STRING_EQUAL(reason, why);
		CU_ASSERT_EQUAL(ctl_path_decide(DJ_PATH_DPDK, 1, 1, -DJ_ELIMIT, why, &got, reason,
						sizeof(reason)), -DJ_ENODPDK);
		CU_ASSERT_STRING_EQUAL(reason, why);
		ctl_path_decide(DJ_PATH_AUTO, 0, 1, -DJ_ELIMIT, why, &got, reason, sizeof(reason));
		CU_ASSERT_PTR_NOT_NULL(strstr(reason, "this side has no DPDK"));
	}
}

static void test_path_names(void)
{
	enum dj_path p;

	CU_ASSERT_EQUAL(dj_path_parse("dpdk", &p), 0);
	CU_ASSERT_EQUAL(p, DJ_PATH_DPDK);
	CU_ASSERT_STRING_EQUAL(dj_path_name(DJ_PATH_TCP), "tcp");
	CU_ASSERT_EQUAL(dj_path_parse("rdma", &p), -EINVAL);
}

static void test_hmac_binds_token_and_nonces(void)
{
	uint8_t n1[CTL_NONCE_LEN], n2[CTL_NONCE_LEN], a[CTL_MAC_LEN], b[CTL_MAC_LEN];
	char hex[2 * CTL_MAC_LEN + 1];
	uint8_t back[CTL_MAC_LEN];

	CU_ASSERT_EQUAL(ctl_auth_random(n1, sizeof(n1)), 0);
	CU_ASSERT_EQUAL(ctl_auth_random(n2, sizeof(n2)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(n1, n2, sizeof(n1)), 0);
	if (ctl_auth_mac("secret", CTL_AUTH_LABEL_CLIENT, n1, n2, a) == -ENOTSUP)
		dj_test_skip("built without OpenSSL: no HMAC");
	CU_ASSERT_EQUAL(ctl_auth_mac("secret", CTL_AUTH_LABEL_CLIENT, n1, n2, b), 0);
	CU_ASSERT(ctl_auth_equal(a, b, CTL_MAC_LEN));
	ctl_auth_mac("Secret", CTL_AUTH_LABEL_CLIENT, n1, n2, b);
	CU_ASSERT(!ctl_auth_equal(a, b, CTL_MAC_LEN));
	ctl_auth_mac("secret", CTL_AUTH_LABEL_SERVER, n1, n2, b);
	CU_ASSERT(!ctl_auth_equal(a, b, CTL_MAC_LEN)); /* no reflection */
	ctl_auth_mac("secret", CTL_AUTH_LABEL_CLIENT, n2, n1, b);
	CU_ASSERT(!ctl_auth_equal(a, b, CTL_MAC_LEN));
	ctl_hex_encode(a, CTL_MAC_LEN, hex);
	CU_ASSERT_EQUAL(ctl_hex_decode(hex, back, CTL_MAC_LEN), 0);
	CU_ASSERT(ctl_auth_equal(a, back, CTL_MAC_LEN));
	CU_ASSERT_EQUAL(ctl_hex_decode("zz", back, 1), -EINVAL);
	CU_ASSERT_EQUAL(ctl_hex_decode("abc", back, 2), -EINVAL);
}

static void test_token_sources(void)
{
	char path[] = "/tmp/dj-token-XXXXXX";
	int fd = mkstemp(path);
	char *tok = NULL;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "from-file\n", 10), 10);
	close(fd);
	unsetenv("DJINN_TOKEN");
	unsetenv("DJINN_TOKEN_FILE");
	CU_ASSERT_EQUAL(dj_token_load(NULL, &tok), -ENOENT);
	CU_ASSERT_EQUAL(dj_token_load(path, &tok), 0);
	CU_ASSERT_STRING_EQUAL(tok, "from-file"); /* newline dropped */
	free(tok);
	setenv("DJINN_TOKEN_FILE", path, 1);
	CU_ASSERT_EQUAL(dj_token_load(NULL, &tok), 0);
	CU_ASSERT_STRING_EQUAL(tok, "from-file");
	free(tok);
	setenv("DJINN_TOKEN", "from-env", 1);
	CU_ASSERT_EQUAL(dj_token_load(NULL, &tok), 0);
	CU_ASSERT_STRING_EQUAL(tok, "from-env");
	free(tok);
	unsetenv("DJINN_TOKEN");
	unsetenv("DJINN_TOKEN_FILE");
	CU_ASSERT_EQUAL(dj_token_load("/nonexistent/token", &tok), -ENOENT);
	unlink(path);
}

/* 4095 bytes (and a newline) are a token; one byte more is refused, not cut. */
static void test_token_length(void)
{
	char path[] = "/tmp/dj-token-XXXXXX";
	char body[4097];
	char *tok = NULL;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	memset(body, 'k', sizeof(body));
	body[4095] = '\n';
	CU_ASSERT_EQUAL(write(fd, body, 4096), 4096);
	CU_ASSERT_EQUAL(dj_token_load(path, &tok), 0);
	CU_ASSERT_EQUAL(tok != NULL ? strlen(tok) : 0, 4095);
	free(tok);
	tok = NULL;
	body[4095] = 'k';
	CU_ASSERT_EQUAL(pwrite(fd, body, 4096, 0), 4096);
	CU_ASSERT_EQUAL(dj_token_load(path, &tok), -E2BIG);
	CU_ASSERT_PTR_NULL(tok);
	close(fd);
	unlink(path);
}

/* A token file the caller named but that cannot be read fails the client at
 * once, where it used to pass for "no token" and read as a wrong token at
 * the server. */
static void test_client_named_token_file_missing(void)
{
	struct dj_client_options o;
	struct dj_client *cl = NULL;
	char path[] = "/tmp/dj-token-XXXXXX";
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd); /* an empty file */
	unsetenv("DJINN_TOKEN");
	unsetenv("DJINN_TOKEN_FILE");
	dj_client_options_init(&o);
	o.token_file = "/nonexistent/token";
	CU_ASSERT_EQUAL(dj_client_create(&o, &cl), -ENOENT);
	CU_ASSERT_PTR_NULL(cl);
	o.token_file = path;
	CU_ASSERT_EQUAL(dj_client_create(&o, &cl), -ENODATA);
	o.token_file = NULL;
	setenv("DJINN_TOKEN_FILE", "/nonexistent/token", 1);
	CU_ASSERT_EQUAL(dj_client_create(&o, &cl), -ENOENT);
	/* DJINN_TOKEN wins over the file, as dj_token_load() reads them. */
	setenv("DJINN_TOKEN", "t", 1);
	CU_ASSERT_EQUAL(dj_client_create(&o, &cl), 0);
	dj_client_destroy(cl);
	unsetenv("DJINN_TOKEN");
	unsetenv("DJINN_TOKEN_FILE");
	/* Nothing named at all: a client without a token, as before. */
	CU_ASSERT_EQUAL(dj_client_create(&o, &cl), 0);
	dj_client_destroy(cl);
	unlink(path);
}

static void test_error_reply_shape(void)
{
	cJSON *e = ctl_error_new(7, -DJ_EHANDLE, NULL), *big;
	char *frame, *text;
	size_t len;
	struct ctl_hdr h;

	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(e, "type")->valuestring, "ERROR");
	uint64_t id = 0;
	char why[128];

	CU_ASSERT_EQUAL(ctl_json_u64(e, "id", &id, why), 0);
	CU_ASSERT_EQUAL(id, 7);
	CU_ASSERT_EQUAL(cJSON_GetObjectItem(e, "code")->valueint, -DJ_EHANDLE);
	/* No message given: the code's own text. */
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(e, "message")->valuestring,
			       dj_strerror(-DJ_EHANDLE));
	CU_ASSERT_EQUAL(ctl_frame(e, 42, &frame, &len), 0);
	CU_ASSERT_EQUAL(ctl_hdr_decode((uint8_t *)frame, &h), 0);
	CU_ASSERT_EQUAL(h.json_len + CTL_HDR_LEN, len);
	CU_ASSERT_EQUAL(h.payload_len, 42);
	free(frame);
	cJSON_Delete(e);
	/* Ids up to 2^53 - 1 come back exactly (cJSON's own number printing
	 * keeps 15 digits: 9007199254740991 came back as ...990). */
	big = ctl_error_new(9007199254740991ull, -EINVAL, "x");
	text = cJSON_PrintUnformatted(big);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"id\":9007199254740991,"));
	CU_ASSERT_EQUAL(ctl_json_u64(big, "id", &id, why), 0);
	CU_ASSERT_EQUAL(id, 9007199254740991ull);
	cJSON_free(text);
	cJSON_Delete(big);
}

/* A seeded random JSON value: every kind cJSON has, strings with control
 * characters, quotes and UTF-8, numbers integral and not, huge and tiny. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static void random_text(char *s, int max)
{
	static const char pool[] = "ab\"\\/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9z";
	int n = (int)rnd((uint32_t)max);

	for (int i = 0; i < n; i++)
		s[i] = pool[rnd(sizeof(pool) - 1)];
	s[n] = '\0';
}

static cJSON *random_json(int depth)
{
	static const double nums[] = {0, -0.0, 1, -1, 42, 2147483648.0, -2147483649.0,
				      1e15, 9007199254740991.0, -9007199254740991.0,
				      9007199254740992.0, 1e300, 0.1, -2.5, 1.0 / 3, 6.02e23,
				      5e-324};
	char text[24];
	cJSON *v;

	switch (depth >= 4 ? rnd(5) : rnd(7)) {
	case 0: return cJSON_CreateBool(rnd(2));
	case 1: return cJSON_CreateNull();
	case 2: return cJSON_CreateNumber(nums[rnd(sizeof(nums) / sizeof(nums[0]))]);
	case 3: return cJSON_CreateNumber((double)(int64_t)(rng_state >> 11) * (rnd(2) ? 1 : -1));
	case 4:
		random_text(text, sizeof(text) - 1);
		return cJSON_CreateString(text);
	case 5:
		v = cJSON_CreateArray();
		for (int i = (int)rnd(4); i > 0; i--)
			cJSON_AddItemToArray(v, random_json(depth + 1));
		return v;
	default:
		v = cJSON_CreateObject();
		for (int i = (int)rnd(4); i > 0; i--) {
			/* Distinct keys: cJSON_Compare finds the first of twins. */
			text[0] = (char)('0' + i);
			random_text(text + 1, 8);
			cJSON_AddItemToObject(v, text, random_json(depth + 1));
		}
		return v;
	}
}

/* The frame printer writes what cJSON would: the same text for a request
 * as the client builds it, and text that parses back to the very values
 * of any tree (integers from 10^15 up in plain digits, where cJSON's
 * "9.00719925474099e+15" loses the last ones). */
static void test_frame_prints_as_cjson(void)
{
	cJSON *m = ctl_reply_new(12345, "EXECUTE"), *back;
	char *frame, *text, *theirs;
	size_t len;
	struct ctl_hdr h;

	cJSON_AddStringToObject(m, "op", "sc\"a\\le\n\x01\xc3\xa9");
	cJSON_AddItemToObject(m, "inputs", cJSON_CreateStringArray((const char *[]){"0x1f"}, 1));
	cJSON_AddNumberToObject(m, "alpha", 0.1);
	cJSON_AddNumberToObject(m, "n", -7);
	cJSON_AddBoolToObject(m, "f", 0);
	cJSON_AddNullToObject(m, "z");
	cJSON_AddObjectToObject(m, "empty");
	CU_ASSERT_EQUAL_FATAL(ctl_frame(m, 0, &frame, &len), 0);
	theirs = cJSON_PrintUnformatted(m);
	CU_ASSERT_EQUAL(len, CTL_HDR_LEN + strlen(theirs));
	CU_ASSERT_EQUAL(memcmp(frame + CTL_HDR_LEN, theirs, len - CTL_HDR_LEN), 0);
	CU_ASSERT_EQUAL(ctl_hdr_decode((uint8_t *)frame, &h), 0);
	CU_ASSERT_EQUAL(h.json_len, len - CTL_HDR_LEN);
	cJSON_free(theirs);
	free(frame);
	cJSON_Delete(m);

	for (int i = 0; i < 2000; i++) {
		m = random_json(0);
		CU_ASSERT_EQUAL_FATAL(ctl_frame(m, 0, &frame, &len), 0);
		text = strndup(frame + CTL_HDR_LEN, len - CTL_HDR_LEN);
		back = cJSON_Parse(text);
		CU_ASSERT_PTR_NOT_NULL(back);
		CU_ASSERT_TRUE(cJSON_Compare(back, m, 1));
		if (!cJSON_Compare(back, m, 1))
			printf("\nnot read back the same: %s\n", text);
		cJSON_Delete(back);
		free(text);
		free(frame);
		cJSON_Delete(m);
	}
}

/* What cannot be printed is refused, never half-written: a raw item
 * without text, nesting deeper than any parser takes. */
static void test_frame_refuses_unprintable(void)
{
	cJSON *m = cJSON_CreateObject(), *deep = cJSON_CreateArray(), *at = deep;
	cJSON *raw = cJSON_CreateRaw("1");
	char *frame = NULL;
	size_t len;

	free(raw->valuestring);
	raw->valuestring = NULL;
	cJSON_AddItemToObject(m, "r", raw);
	CU_ASSERT_EQUAL(ctl_frame(m, 0, &frame, &len), -EINVAL);
	for (int i = 0; i < 1100; i++) {
		cJSON *next = cJSON_CreateArray();

		cJSON_AddItemToArray(at, next);
		at = next;
	}
	CU_ASSERT_EQUAL(ctl_frame(deep, 0, &frame, &len), -E2BIG);
	CU_ASSERT_PTR_NULL(frame);
	cJSON_Delete(deep);
	cJSON_Delete(m);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"frame header round trip and magic", test_frame_header_round_trip},
		{"JSON depth ignores brackets in strings", test_json_depth_skips_strings},
		{"handles parse strictly", test_handles_parse_strictly},
		{"tensor descriptions validate", test_descriptions_validate},
		{"capabilities survive JSON", test_caps_round_trip},
		{"path decision table", test_path_decision_table},
		{"path names", test_path_names},
		{"HMAC binds token, label and nonces", test_hmac_binds_token_and_nonces},
		{"token from env, env file, file", test_token_sources},
		{"token of 4095 bytes, and one too long", test_token_length},
		{"client: a named token file that cannot be read", test_client_named_token_file_missing},
		{"ERROR reply and frame", test_error_reply_shape},
		{"frames print as cJSON does", test_frame_prints_as_cjson},
		{"frames refuse what cannot be printed", test_frame_refuses_unprintable},
		{NULL, NULL},
	};
	dj_test_add_suite("control-wire", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
