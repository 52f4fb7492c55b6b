/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the binary frame decoders of the control plane
 * (controlplane/ctl_bin.c), alone. The input is one frame, header and body,
 * decoded as a request (first input byte even) or as a reply (odd; the byte
 * itself is not part of the frame). Checks: no decoder reads outside its
 * buffer (ASan), and whatever decodes encodes back to the same bytes, so
 * that encoder and decoder agree on every field and a decoder never
 * accepts a frame with bytes it ignored (reserved ones, trailing ones).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_bin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ctl_bin: %s\n", what);
		abort();
	}
}

static void request_body(uint8_t type, const uint8_t *p, size_t len)
{
	static uint8_t again[CTL_BIN_BODY_MAX];
	char why[CTL_ERRMSG_MAX];
	struct ctl_bin_exec e;
	uint64_t handle;

	if (type == CTL_BIN_FREE && ctl_bin_free_decode(p, len, &handle, why) == 0)
		check(len == 8 && handle != 0, "FREE decoded from other than 8 bytes");
	if (type != CTL_BIN_EXECUTE || ctl_bin_exec_decode(p, len, &e, why) != 0)
		return;
	check(ctl_bin_exec_size(&e) == len, "EXECUTE size differs from its body");
	ctl_bin_exec_encode(again, &e);
	check(memcmp(again, p, len) == 0, "EXECUTE does not encode back to its bytes");
}

static void reply_body(uint8_t type, const uint8_t *p, size_t len)
{
	static uint8_t again[CTL_BIN_BODY_MAX];
	struct ctl_bin_output outs[DJ_MAX_OP_ARGS];
	char why[CTL_ERRMSG_MAX];
	uint8_t *o = again + CTL_BIN_EXEC_REPLY_FIXED;
	int code, n;

	if (type == CTL_BIN_ERROR && ctl_bin_error_decode(p, len, &code, why) == 0) {
		check(code < 0 && ctl_bin_error_size(why) <= len, "ERROR decoded wrong");
		/* A NUL in the text comes out as '?': compare only without one. */
		if (memchr(p + CTL_BIN_ERROR_FIXED, 0, len - CTL_BIN_ERROR_FIXED) == NULL) {
			ctl_bin_error_encode(again, code, why);
			check(ctl_bin_error_size(why) == len && memcmp(again, p, len) == 0,
			      "ERROR does not encode back to its bytes");
		}
	}
	if (type != (CTL_BIN_REPLY | CTL_BIN_EXECUTE))
		return;
	n = ctl_bin_exec_reply_decode(p, len, outs, DJ_MAX_OP_ARGS, why);
	if (n < 0)
		return;
	check(n <= DJ_MAX_OP_ARGS, "more outputs than an op has");
	ctl_bin_exec_reply_head(again, n);
	for (int i = 0; i < n; i++)
		o = ctl_bin_output_encode(o, outs[i].handle, &outs[i].desc, outs[i].device,
					  strlen(outs[i].device));
	check((size_t)(o - again) == len && memcmp(again, p, len) == 0,
	      "EXECUTE reply does not encode back to its bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_bin_hdr h;
	char why[128];
	int replies;

	if (size < 1 + CTL_HDR_LEN)
		return 0;
	replies = data[0] & 1;
	data++;
	size--;
	if (!ctl_bin_is(data) || ctl_bin_hdr_decode(data, replies, &h, why) != 0)
		return 0;
	check(h.body_len <= CTL_BIN_BODY_MAX && h.trace_len <= h.body_len, "header limits");
	if (size - CTL_HDR_LEN < h.body_len)
		return 0;
	data += CTL_HDR_LEN + h.trace_len;
	if (replies)
		reply_body(h.type, data, h.body_len - h.trace_len);
	else
		request_body(h.type, data, h.body_len - h.trace_len);
	return 0;
}
