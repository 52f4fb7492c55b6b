/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Binary frames of the control plane (docs/CONTROL.md, "Binary frames"):
 *
 * - the codec alone: requests and replies round-trip; truncated bodies,
 *   lengths that do not add up, too many inputs, reserved bytes, handle 0,
 *   bad names, oversize and unknown headers are refused with their code;
 * - the server, by hand on a raw socket: binary frames only after HELLO
 *   negotiated them; EXECUTE by op id and by name, FREE and PING answered
 *   in binary; a bad body (unknown op id, unknown handle, wrong counts,
 *   too many inputs, a bad trace, a request before SESSION) gets an ERROR
 *   for its id and the connection serves on; a bad header (oversize,
 *   flags, unknown type) gets an ERROR and a close; a frame cut short
 *   times out; hundreds of frames in one write, split at odd offsets, are
 *   all answered in order;
 * - the client library: a binary and a JSON-only client get the same
 *   results and errors from dj_execute, dj_free and dj_ping.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "ctl_bin.h"
#include "ctl_client.h"
#include "ctl_wire.h"
#include "fixture.h"
#include "harness.h"

/* ---- the codec --------------------------------------------------------------- */

static size_t exec_body(uint8_t *out, uint16_t op_id, const char *op, const uint64_t *in,
			int n_in, const char *device, const char *attrs)
{
	struct ctl_bin_exec e = {.op_id = op_id, .n_in = n_in};

	if (op != NULL) {
		e.op = op;
		e.op_len = (uint8_t)strlen(op);
	}
	if (device != NULL) {
		e.device = device;
		e.dev_len = (uint8_t)strlen(device);
	}
	if (attrs != NULL) {
		e.attrs = attrs;
		e.attrs_len = (uint32_t)strlen(attrs);
	}
	memcpy(e.in, in, sizeof(*in) * (size_t)n_in);
	ctl_bin_exec_encode(out, &e);
	return ctl_bin_exec_size(&e);
}

static void test_codec_round_trip(void)
{
	uint8_t b[512];
	char why[CTL_ERRMSG_MAX];
	uint64_t in[3] = {0x11, 0x2200000000000001ull, 7}, h;
	struct ctl_bin_exec e;
	struct ctl_bin_output outs[2];
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_INT64, .ndim = 3, .shape = {2, 0, 5}};
	size_t n = exec_body(b, CTL_BIN_OP_NAMED, "matmul", in, 3, "cuda:1", "{\"k\":1}");
	int code;

	CU_ASSERT_EQUAL(n, CTL_BIN_EXEC_FIXED + 24 + 6 + 6 + 7);
	CU_ASSERT_EQUAL_FATAL(ctl_bin_exec_decode(b, n, &e, why), 0);
	CU_ASSERT_EQUAL(e.n_in, 3);
	CU_ASSERT_EQUAL(e.in[1], in[1]);
	CU_ASSERT(e.op_len == 6 && memcmp(e.op, "matmul", 6) == 0);
	CU_ASSERT(e.dev_len == 6 && memcmp(e.device, "cuda:1", 6) == 0);
	CU_ASSERT(e.attrs_len == 7 && memcmp(e.attrs, "{\"k\":1}", 7) == 0);
	/* Little endian on the wire, whatever the host. */
	CU_ASSERT(b[CTL_BIN_EXEC_FIXED + 8] == 0x01 && b[CTL_BIN_EXEC_FIXED + 15] == 0x22);

	ctl_bin_exec_reply_head(b, 2);
	n = CTL_BIN_EXEC_REPLY_FIXED;
	n = (size_t)(ctl_bin_output_encode(b + n, 0xabc, &d, "cuda:0", 6) - b);
	d.ndim = 0;
	n = (size_t)(ctl_bin_output_encode(b + n, 0xdef, &d, "", 0) - b);
	CU_ASSERT_EQUAL_FATAL(ctl_bin_exec_reply_decode(b, n, outs, 2, why), 2);
	CU_ASSERT(outs[0].handle == 0xabc && outs[0].desc.ndim == 3 && outs[0].desc.shape[2] == 5);
	CU_ASSERT_STRING_EQUAL(outs[0].device, "cuda:0");
	CU_ASSERT(outs[1].handle == 0xdef && outs[1].desc.ndim == 0 && outs[1].device[0] == 0);
	/* Outputs beyond max are checked but not kept. */
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, outs, 1, why), 2);

	ctl_bin_error_encode(b, -DJ_EHANDLE, "no such tensor");
	CU_ASSERT_EQUAL(ctl_bin_error_decode(b, ctl_bin_error_size("no such tensor"), &code, why), 0);
	CU_ASSERT_EQUAL(code, -DJ_EHANDLE);
	CU_ASSERT_STRING_EQUAL(why, "no such tensor");

	/* docs/CONTROL.md's example, byte for byte. */
	static const uint8_t doc[] = {
		0xDB, 0x03, 0x02, 0x00, 0x1A, 0x00, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0,
		0x74, 0x31,
		0x01, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x01, 0x00, 0xED, 0x5E, 0, 0, 0, 0,
	};
	uint64_t doc_in = 0x5eed0001;

	n = exec_body(b + CTL_HDR_LEN + 2, 1, NULL, &doc_in, 1, NULL, NULL);
	ctl_bin_hdr_encode(b, CTL_BIN_EXECUTE, 2, (uint32_t)(n + 2), 9);
	memcpy(b + CTL_HDR_LEN, "t1", 2);
	CU_ASSERT_EQUAL(CTL_HDR_LEN + 2 + n, sizeof(doc));
	CU_ASSERT(memcmp(b, doc, sizeof(doc)) == 0);

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(0x99ull >> (8 * i));
	CU_ASSERT_EQUAL(ctl_bin_free_decode(b, 8, &h, why), 0);
	CU_ASSERT_EQUAL(h, 0x99);
}

static void test_codec_refuses_malformed(void)
{
	uint8_t b[512], hdr[CTL_HDR_LEN];
	char why[CTL_ERRMSG_MAX];
	uint64_t in[DJ_MAX_OP_ARGS + 1] = {1, 2, 3}, zero = 0;
	struct ctl_bin_exec e;
	struct ctl_bin_hdr h;
	struct ctl_bin_output o;
	size_t n = exec_body(b, 1, NULL, in, 2, NULL, NULL);
	int code;

	/* Truncated, and one byte too many. */
	for (size_t cut = 0; cut < n; cut++)
		CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, cut, &e, why), -EBADMSG);
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n + 1, &e, why), -EBADMSG);
	/* Counts that claim more than is there. */
	b[2] = 3;
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -EBADMSG);
	b[2] = DJ_MAX_OP_ARGS + 1;
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -DJ_ELIMIT);
	b[2] = 2;
	b[5] = 1; /* reserved */
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -EBADMSG);
	b[5] = 0;
	b[3] = 1; /* a name with an op id */
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n + 1, &e, why), -EBADMSG);
	b[3] = 0;
	b[0] = b[1] = 0xFF; /* named, without a name */
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -EBADMSG);
	n = exec_body(b, 0, NULL, &zero, 1, NULL, NULL);
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -EINVAL);
	n = exec_body(b, CTL_BIN_OP_NAMED, "sc ale", in, 1, NULL, NULL);
	CU_ASSERT_EQUAL(ctl_bin_exec_decode(b, n, &e, why), -EINVAL);
	CU_ASSERT_EQUAL(ctl_bin_free_decode(b, 7, &zero, why), -EBADMSG);
	memset(b, 0, 8);
	CU_ASSERT_EQUAL(ctl_bin_free_decode(b, 8, &zero, why), -EINVAL);

	/* Headers: flags, types of either direction, lengths. */
	ctl_bin_hdr_encode(hdr, CTL_BIN_PING, 0, 0, 5);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), 0);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 1, &h, why), -EPROTO);
	hdr[3] = 1;
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), -EPROTO);
	CU_ASSERT_EQUAL(h.id, 5);
	ctl_bin_hdr_encode(hdr, 0x04, 0, 0, 5);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), -EPROTO);
	ctl_bin_hdr_encode(hdr, CTL_BIN_EXECUTE, 0, CTL_BIN_BODY_MAX + 1, 5);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), -DJ_ELIMIT);
	ctl_bin_hdr_encode(hdr, CTL_BIN_EXECUTE, CTL_BIN_TRACE_MAX + 1, 100, 5);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), -EBADMSG);
	ctl_bin_hdr_encode(hdr, CTL_BIN_EXECUTE, 10, 9, 5);
	CU_ASSERT_EQUAL(ctl_bin_hdr_decode(hdr, 0, &h, why), -EBADMSG);

	/* Replies: a bad dtype, ndim, a trailing byte, handle 0, a code >= 0. */
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {4}};

	ctl_bin_exec_reply_head(b, 1);
	n = (size_t)(ctl_bin_output_encode(b + CTL_BIN_EXEC_REPLY_FIXED, 9, &d, "", 0) - b);
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, &o, 1, why), 1);
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n + 1, &o, 1, why), -EBADMSG);
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n - 1, &o, 1, why), -EBADMSG);
	b[CTL_BIN_EXEC_REPLY_FIXED + 8] = DJ_DTYPE_COUNT;
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, &o, 1, why), -EBADMSG);
	b[CTL_BIN_EXEC_REPLY_FIXED + 8] = 0;
	b[CTL_BIN_EXEC_REPLY_FIXED + 9] = DJ_MAX_DIMS + 1;
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, &o, 1, why), -EBADMSG);
	b[CTL_BIN_EXEC_REPLY_FIXED + 9] = 1;
	memset(b + CTL_BIN_EXEC_REPLY_FIXED, 0, 8);
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, &o, 1, why), -EBADMSG);
	b[0] = DJ_MAX_OP_ARGS + 1;
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(b, n, &o, 1, why), -EBADMSG);
	ctl_bin_error_encode(b, 5, "x");
	CU_ASSERT_EQUAL(ctl_bin_error_decode(b, ctl_bin_error_size("x"), &code, why), -EBADMSG);
	ctl_bin_error_encode(b, -5, "x");
	CU_ASSERT_EQUAL(ctl_bin_error_decode(b, ctl_bin_error_size("x") + 1, &code, why), -EBADMSG);
}

/* ---- raw sockets ----------------------------------------------------------------- */

/* One binary request: header, trace, body. */
static size_t bin_frame(uint8_t *out, uint8_t type, uint64_t id, const char *trace,
			const void *body, size_t len)
{
	size_t tl = trace != NULL ? strlen(trace) : 0;

	ctl_bin_hdr_encode(out, type, (uint8_t)tl, (uint32_t)(tl + len), id);
	if (tl > 0)
		memcpy(out + CTL_HDR_LEN, trace, tl);
	if (len > 0)
		memcpy(out + CTL_HDR_LEN + tl, body, len);
	return CTL_HDR_LEN + tl + len;
}

static void bin_send(int fd, uint8_t type, uint64_t id, const char *trace, const void *body,
		     size_t len)
{
	uint8_t f[4096];

	CU_ASSERT_EQUAL_FATAL(fx_raw_send_bytes(fd, f, bin_frame(f, type, id, trace, body, len)), 0);
}

struct bin_reply {
	struct ctl_bin_hdr h;
	uint8_t body[CTL_BIN_BODY_MAX];
	int code;                 /* an ERROR's */
	char msg[CTL_ERRMSG_MAX];
};

/* The next frame, which must be binary; 0, or -1 (closed, not binary). */
static int bin_recv(int fd, struct bin_reply *r)
{
	uint8_t hdr[CTL_HDR_LEN];
	char why[128];

	if (fx_raw_recv_bytes(fd, hdr, sizeof(hdr), 5000) != 0 || !ctl_bin_is(hdr) ||
	    ctl_bin_hdr_decode(hdr, 1, &r->h, why) != 0 ||
	    fx_raw_recv_bytes(fd, r->body, r->h.body_len, 5000) != 0)
		return -1;
	r->code = 0;
	if (r->h.type == CTL_BIN_ERROR &&
	    ctl_bin_error_decode(r->body, r->h.body_len, &r->code, r->msg) != 0)
		return -1;
	return 0;
}

/* HELLO offering binary frames (answered "binary": 1), then SESSION. */
static int ready_binary(int fd)
{
	cJSON *hello = NULL;
	int rc = fx_raw_ready_with(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1,"
				   "\"binary\":1}", &hello);
	int ok = rc == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(hello, "binary")) == 1;

	cJSON_Delete(hello);
	return ok ? 0 : -1;
}

/* A one-element float32 tensor, by JSON ALLOC on the same connection. */
static uint64_t alloc_one(int fd)
{
	uint64_t h = 0;
	char why[128];
	cJSON *r;

	CU_ASSERT_EQUAL_FATAL(fx_raw_send(fd, "{\"type\":\"ALLOC\",\"id\":3,\"dtype\":\"float32\","
					  "\"shape\":[1]}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(ctl_json_handle(r, "handle", &h, why), 0);
	cJSON_Delete(r);
	return h;
}

static void expect_error(int fd, struct bin_reply *r, uint64_t id, int code)
{
	CU_ASSERT_EQUAL_FATAL(bin_recv(fd, r), 0);
	CU_ASSERT_EQUAL(r->h.type, CTL_BIN_ERROR);
	CU_ASSERT_EQUAL(r->h.id, id);
	CU_ASSERT_EQUAL(r->code, code);
	if (r->code != code)
		fprintf(stderr, "id %llu: got %d (%s), wanted %d\n", (unsigned long long)id, r->code,
			r->msg, code);
}

static void expect_ping(int fd, struct bin_reply *r, uint64_t id)
{
	bin_send(fd, CTL_BIN_PING, id, NULL, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(bin_recv(fd, r), 0);
	CU_ASSERT_EQUAL(r->h.type, CTL_BIN_REPLY | CTL_BIN_PING);
	CU_ASSERT_EQUAL(r->h.id, id);
}

static void test_binary_needs_negotiation(void)
{
	struct fixture fx;
	uint8_t f[64];
	cJSON *r;
	int fd;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fd >= 0);
	/* A JSON-only HELLO: no "binary" in the reply ... */
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", 0), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT(r != NULL && cJSON_GetObjectItem(r, "binary") == NULL);
	cJSON_Delete(r);
	/* ... and a binary frame is a bad magic: JSON ERROR, closed. */
	CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, f, bin_frame(f, CTL_BIN_PING, 9, NULL, NULL, 0)), 0);
	r = fx_raw_recv(fd, 5000);
	CU_ASSERT_EQUAL(fx_error_code(r), -EPROTO);
	cJSON_Delete(r);
	CU_ASSERT(fx_raw_closed(fd, 5000));
	close(fd);
	fx_stop(&fx);
}

static void test_binary_requests_answered(void)
{
	static struct bin_reply r;
	struct ctl_bin_output o[2];
	struct fixture fx;
	uint8_t b[256];
	char why[CTL_ERRMSG_MAX];
	uint64_t h, out;
	size_t n;
	int fd;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_EQUAL_FATAL(ready_binary(fd), 0);
	h = alloc_one(fd);
	expect_ping(fd, &r, 10);
	/* "scale" is caps.ops[1] of the test backend. */
	n = exec_body(b, 1, NULL, &h, 1, NULL, "{\"factor\":2}");
	bin_send(fd, CTL_BIN_EXECUTE, 11, "t-11", b, n);
	CU_ASSERT_EQUAL_FATAL(bin_recv(fd, &r), 0);
	CU_ASSERT_EQUAL(r.h.type, CTL_BIN_REPLY | CTL_BIN_EXECUTE);
	CU_ASSERT_EQUAL(r.h.id, 11);
	CU_ASSERT_EQUAL_FATAL(ctl_bin_exec_reply_decode(r.body, r.h.body_len, o, 2, why), 1);
	CU_ASSERT(o[0].desc.dtype == DJ_DTYPE_FLOAT32 && o[0].desc.ndim == 1 &&
		  o[0].desc.shape[0] == 1 && o[0].handle != h);
	out = o[0].handle;
	/* By name, two outputs ("dup"). */
	n = exec_body(b, CTL_BIN_OP_NAMED, "dup", &h, 1, NULL, NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 12, NULL, b, n);
	CU_ASSERT_EQUAL_FATAL(bin_recv(fd, &r), 0);
	CU_ASSERT_EQUAL(ctl_bin_exec_reply_decode(r.body, r.h.body_len, o, 2, why), 2);
	/* FREE answers empty; a second FREE of it is an unknown handle. */
	bin_send(fd, CTL_BIN_FREE, 13, NULL, &out, 8); /* the host is little endian */
	CU_ASSERT_EQUAL_FATAL(bin_recv(fd, &r), 0);
	CU_ASSERT(r.h.type == (CTL_BIN_REPLY | CTL_BIN_FREE) && r.h.id == 13 && r.h.body_len == 0);
	bin_send(fd, CTL_BIN_FREE, 14, NULL, &out, 8);
	expect_error(fd, &r, 14, -DJ_EHANDLE);
	/* JSON on the same connection still works (DESCRIBE of a dup output). */
	snprintf((char *)b, sizeof(b), "{\"type\":\"DESCRIBE\",\"id\":15,\"handle\":\"0x%llx\"}",
		 (unsigned long long)o[1].handle);
	CU_ASSERT_EQUAL(fx_raw_send(fd, (char *)b, 0), 0);
	cJSON *j = fx_raw_recv(fd, 5000);

	CU_ASSERT(j != NULL && fx_error_code(j) == 0);
	cJSON_Delete(j);
	expect_ping(fd, &r, 16);
	close(fd);
	fx_stop(&fx);
}

static void test_bad_bodies_serve_on(void)
{
	static struct bin_reply r;
	struct fixture fx;
	uint64_t h, unknown = 0x1234567, in[DJ_MAX_OP_ARGS];
	uint8_t b[512];
	size_t n;
	int fd;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	fd = fx_raw_connect(fx.port);
	/* Before SESSION: FREE and EXECUTE refused, PING answered. */
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1,\"binary\":1}", 0),
			0);
	cJSON_Delete(fx_raw_recv(fd, 5000));
	bin_send(fd, CTL_BIN_FREE, 20, NULL, &unknown, 8);
	expect_error(fd, &r, 20, -EPROTO);
	expect_ping(fd, &r, 21);
	CU_ASSERT_EQUAL(fx_raw_send(fd, "{\"type\":\"SESSION\",\"id\":2}", 0), 0);
	cJSON_Delete(fx_raw_recv(fd, 5000));
	h = alloc_one(fd);
	for (int i = 0; i < DJ_MAX_OP_ARGS; i++)
		in[i] = h;

	n = exec_body(b, 99, NULL, &h, 1, NULL, NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 30, NULL, b, n);
	expect_error(fd, &r, 30, -DJ_EUNKNOWN_OP);
	n = exec_body(b, 1, NULL, &unknown, 1, NULL, NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 31, NULL, b, n);
	expect_error(fd, &r, 31, -DJ_EHANDLE);
	n = exec_body(b, 1, NULL, &h, 1, NULL, NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 32, NULL, b, n - 1);   /* a byte short */
	expect_error(fd, &r, 32, -EBADMSG);
	b[2] = DJ_MAX_OP_ARGS + 1;
	bin_send(fd, CTL_BIN_EXECUTE, 33, NULL, b, n);
	expect_error(fd, &r, 33, -DJ_ELIMIT);
	n = exec_body(b, 1, NULL, in, 2, NULL, NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 34, NULL, b, n + 8);  /* counts say 2 inputs, 3 sent */
	expect_error(fd, &r, 34, -EBADMSG);
	n = exec_body(b, 1, NULL, &h, 1, NULL, "[1]");
	bin_send(fd, CTL_BIN_EXECUTE, 35, NULL, b, n);
	expect_error(fd, &r, 35, -EINVAL);
	n = exec_body(b, 1, NULL, &h, 1, "cuda:0", NULL);
	bin_send(fd, CTL_BIN_EXECUTE, 36, NULL, b, n);
	expect_error(fd, &r, 36, -ENOTSUP);
	bin_send(fd, CTL_BIN_PING, 37, "bad trace!", NULL, 0);
	expect_error(fd, &r, 37, -EINVAL);
	bin_send(fd, CTL_BIN_PING, 38, NULL, b, 1);
	expect_error(fd, &r, 38, -EBADMSG);
	bin_send(fd, CTL_BIN_FREE, 39, NULL, b, 4);
	expect_error(fd, &r, 39, -EBADMSG);
	expect_ping(fd, &r, 40);
	close(fd);
	fx_stop(&fx);
}

/* A bad header: ERROR for its id, then the server closes. */
static void header_closes(uint16_t port, const uint8_t *hdr, uint64_t id, int code)
{
	static struct bin_reply r;
	int fd = fx_raw_connect(port);

	CU_ASSERT_EQUAL_FATAL(ready_binary(fd), 0);
	CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, hdr, CTL_HDR_LEN), 0);
	expect_error(fd, &r, id, code);
	CU_ASSERT(fx_raw_closed(fd, 5000));
	close(fd);
}

static void test_bad_headers_close(void)
{
	struct ctl_server_config cfg;
	static struct bin_reply r;
	struct fixture fx;
	uint8_t hdr[CTL_HDR_LEN];
	int fd;

	ctl_server_config_init(&cfg);
	cfg.limits.frame_timeout_ms = 300;
	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, &cfg, NULL), 0);
	ctl_bin_hdr_encode(hdr, CTL_BIN_EXECUTE, 0, CTL_BIN_BODY_MAX + 1, 50);
	header_closes(fx.port, hdr, 50, -DJ_ELIMIT);
	ctl_bin_hdr_encode(hdr, CTL_BIN_PING, 0, 0, 51);
	hdr[3] = 0x80;
	header_closes(fx.port, hdr, 51, -EPROTO);
	ctl_bin_hdr_encode(hdr, 0x7e, 0, 0, 52);
	header_closes(fx.port, hdr, 52, -EPROTO);
	ctl_bin_hdr_encode(hdr, CTL_BIN_PING | CTL_BIN_REPLY, 0, 0, 53);
	header_closes(fx.port, hdr, 53, -EPROTO);
	/* Truncated: a body promised and never finished times out. */
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_EQUAL_FATAL(ready_binary(fd), 0);
	ctl_bin_hdr_encode(hdr, CTL_BIN_EXECUTE, 0, 100, 54);
	CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, hdr, CTL_HDR_LEN), 0);
	CU_ASSERT_EQUAL(fx_raw_send_bytes(fd, hdr, 10), 0);
	cJSON *j = fx_raw_recv(fd, 5000);

	CU_ASSERT_EQUAL(fx_error_code(j), -ETIMEDOUT);
	cJSON_Delete(j);
	CU_ASSERT(fx_raw_closed(fd, 5000));
	close(fd);
	(void)r;
	fx_stop(&fx);
}

/* Hundreds of frames in one buffer, sent in pieces cut at odd offsets (a
 * body across reads, several in one): every reply, in order. */
static void test_pipelined_frames(void)
{
	enum { N = 600 };
	static uint8_t buf[N * 128];
	static struct bin_reply r;
	struct fixture fx;
	struct ctl_bin_output o;
	char why[CTL_ERRMSG_MAX];
	uint8_t b[128];
	size_t len = 0, n;
	uint64_t h;
	int fd, ok = 1;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_EQUAL_FATAL(ready_binary(fd), 0);
	h = alloc_one(fd);
	n = exec_body(b, 0, NULL, (uint64_t[]){h, h}, 2, NULL, NULL); /* "add" */
	for (int i = 0; i < N; i++)
		len += i % 3 == 0 ? bin_frame(buf + len, CTL_BIN_PING, 100 + i, "p", NULL, 0)
				  : bin_frame(buf + len, CTL_BIN_EXECUTE, 100 + i, NULL, b, n);
	for (size_t off = 0, step = 7; off < len; off += step, step = step * 3 % 1001 + 1) {
		CU_ASSERT_EQUAL_FATAL(fx_raw_send_bytes(fd, buf + off, off + step < len ? step :
							len - off), 0);
	}
	for (int i = 0; i < N && ok; i++) {
		ok = bin_recv(fd, &r) == 0 && r.h.id == (uint64_t)(100 + i);
		if (ok && i % 3 != 0)
			ok = ctl_bin_exec_reply_decode(r.body, r.h.body_len, &o, 1, why) == 1;
	}
	CU_ASSERT(ok);
	close(fd);
	fx_stop(&fx);
}

/* ---- the client library ------------------------------------------------------------ */

/* The same calls through a binary and a JSON-only client: same answers. */
static void client_calls(const struct fixture *fx, int json_only)
{
	struct dj_client_options co;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct dj_future *f;
	struct dj_tensor_desc d, ds[2];
	float one = 1.0f;
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
			      .data = &one, .mem = DJ_MEM_HOST};
	uint64_t h, out, outs[2];

	fx_client_opts(fx, &co);
	co.json_only = json_only;
	CU_ASSERT_EQUAL_FATAL(dj_client_create(&co, &cl), 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &conn), 0);
	CU_ASSERT_EQUAL(conn->binary, !json_only);
	CU_ASSERT_EQUAL(dj_ping(conn, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_execute(conn, "scale", &h, 1, "{\"factor\":3}", &out, &d), 0);
	CU_ASSERT(d.dtype == DJ_DTYPE_FLOAT32 && d.ndim == 1 && d.shape[0] == 1);
	t.data = &one;
	one = 0;
	CU_ASSERT_EQUAL(dj_get(conn, out, &t), 0);
	CU_ASSERT_EQUAL(one, 3.0f);
	CU_ASSERT_EQUAL(dj_free(conn, out), 0);
	CU_ASSERT_EQUAL(dj_free(conn, out), -DJ_EHANDLE);
	CU_ASSERT(strstr(dj_conn_last_error(conn), "no tensor 0x") != NULL);
	/* An op the server did not announce goes by name (iadd: in place). */
	CU_ASSERT_EQUAL(dj_execute(conn, "iadd", (uint64_t[]){h, h}, 2, NULL, &out, NULL), 0);
	CU_ASSERT_EQUAL(out, h);
	CU_ASSERT_EQUAL(dj_execute(conn, "nosuchop", &h, 1, NULL, &out, NULL), -DJ_EUNKNOWN_OP);
	CU_ASSERT_EQUAL(dj_execute(conn, "scale", &h, 1, "[", &out, NULL), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(dj_execute_async(conn, "dup", &h, 1, NULL, NULL, NULL, &f), 0);
	CU_ASSERT_EQUAL(dj_future_wait(f, -1), 0);
	CU_ASSERT_EQUAL(dj_future_outputs(f, outs, ds, 2), 2);
	CU_ASSERT_EQUAL(dj_future_batch_handles(f, &out, 1), 1);
	CU_ASSERT_EQUAL(out, outs[0]);
	CU_ASSERT_EQUAL(ds[1].shape[0], 1);
	dj_future_release(f);
	CU_ASSERT_EQUAL(dj_free(conn, outs[0]), 0);
	CU_ASSERT_EQUAL(dj_free(conn, outs[1]), 0);
	CU_ASSERT_EQUAL(dj_free(conn, h), 0);
	dj_disconnect(conn);
	dj_client_destroy(cl);
}

static void test_client_binary_and_json_agree(void)
{
	struct ctl_request_stats st;
	struct fixture fx;

	CU_ASSERT_EQUAL_FATAL(fx_start(&fx, NULL, NULL), 0);
	client_calls(&fx, 0);
	client_calls(&fx, 1);
	ctl_server_request_stats(fx.srv, &st);
	/* Both clients' requests counted alike: 2 x (4 ok EXECUTEs + 2 failed). */
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_EXECUTE], 6);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_EXECUTE], 2);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_FREE], 2);
	fx_stop(&fx);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"the codec round-trips requests and replies", test_codec_round_trip},
		{"the codec refuses malformed frames", test_codec_refuses_malformed},
		{"binary frames need HELLO's negotiation", test_binary_needs_negotiation},
		{"PING, EXECUTE and FREE are answered in binary", test_binary_requests_answered},
		{"a bad body gets an ERROR, the connection serves on", test_bad_bodies_serve_on},
		{"a bad header gets an ERROR and a close", test_bad_headers_close},
		{"pipelined frames split at odd offsets", test_pipelined_frames},
		{"binary and JSON clients agree", test_client_binary_and_json_agree},
		{NULL, NULL},
	};
	dj_test_add_suite("control-binary", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
