/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Binary frames of the control plane (docs/CONTROL.md, "Binary frames"):
 * encoders and in-place decoders, shared by server and client. Every decoder
 * checks each length against what is left before it reads, and the sum of
 * the parts against the body's length, so a frame is either taken whole or
 * refused with the reason; none allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "djinn/common.h"
#include "ctl_bin.h"
#include "ctl_wire.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* 1 where n bytes at p are all zero (reserved fields). */
static int zeros(const uint8_t *p, size_t n)
{
	uint8_t any = 0;

	for (size_t i = 0; i < n; i++)
		any |= p[i];
	return any == 0;
}

/* Names (op, device): printable ASCII without spaces, as every op and
 * device name is, so they may go into error texts and log lines as they
 * are. */
static int name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

void ctl_bin_hdr_encode(uint8_t *out, uint8_t type, uint8_t trace_len, uint32_t body_len,
			uint64_t id)
{
	out[0] = CTL_BIN_MAGIC;
	out[1] = type;
	out[2] = trace_len;
	out[3] = 0;
	put32(out + 4, body_len);
	put64(out + 8, id);
}

static int known_type(uint8_t type, int replies)
{
	if (replies)
		return type == CTL_BIN_ERROR || type == (CTL_BIN_REPLY | CTL_BIN_PING) ||
		       type == (CTL_BIN_REPLY | CTL_BIN_FREE) ||
		       type == (CTL_BIN_REPLY | CTL_BIN_EXECUTE);
	return type == CTL_BIN_PING || type == CTL_BIN_FREE || type == CTL_BIN_EXECUTE;
}

int ctl_bin_hdr_decode(const uint8_t *hdr, int replies, struct ctl_bin_hdr *h, char *why)
{
	h->type = hdr[1];
	h->trace_len = hdr[2];
	h->body_len = get32(hdr + 4);
	h->id = get64(hdr + 8);
	if (hdr[3] != 0) {
		snprintf(why, 128, "binary frame: flags byte is 0x%02x, must be 0", hdr[3]);
		return -EPROTO;
	}
	if (!known_type(h->type, replies)) {
		snprintf(why, 128, "binary frame: unknown %s type 0x%02x",
			 replies ? "reply" : "request", h->type);
		return -EPROTO;
	}
	if (h->body_len > CTL_BIN_BODY_MAX) {
		snprintf(why, 128, "binary frame: body of %u bytes (max %u)", h->body_len,
			 CTL_BIN_BODY_MAX);
		return -DJ_ELIMIT;
	}
	if (h->trace_len > CTL_BIN_TRACE_MAX || h->trace_len > h->body_len) {
		snprintf(why, 128, "binary frame: trace of %u bytes (max %d, and within the "
			 "body's %u)", h->trace_len, CTL_BIN_TRACE_MAX, h->body_len);
		return -EBADMSG;
	}
	return 0;
}

int ctl_bin_free_decode(const uint8_t *body, size_t len, uint64_t *handle, char *why)
{
	if (len != 8) {
		snprintf(why, CTL_ERRMSG_MAX, "binary FREE: %zu bytes after the trace, must be 8",
			 len);
		return -EBADMSG;
	}
	*handle = get64(body);
	if (*handle == 0) {
		snprintf(why, CTL_ERRMSG_MAX, "binary FREE: handle 0 is no handle");
		return -EINVAL;
	}
	return 0;
}

/* The fixed part's counts: op name, inputs, device, attrs. */
static int exec_counts(const uint8_t *b, struct ctl_bin_exec *e, char *why)
{
	e->op_id = get16(b);
	e->n_in = b[2];
	e->op_len = b[3];
	e->dev_len = b[4];
	e->attrs_len = get32(b + 8);
	if (b[5] != 0 || get16(b + 6) != 0 || get32(b + 12) != 0) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: reserved bytes must be 0");
		return -EBADMSG;
	}
	if (e->n_in > DJ_MAX_OP_ARGS) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: %d inputs (max %d)", e->n_in,
			 DJ_MAX_OP_ARGS);
		return -DJ_ELIMIT;
	}
	if ((e->op_id == CTL_BIN_OP_NAMED) != (e->op_len > 0)) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: op id 0x%04x with a name of %u bytes "
			 "(a name goes with op id 0xffff, and only with it)", e->op_id, e->op_len);
		return -EBADMSG;
	}
	if (e->op_len > CTL_BIN_OP_MAX || e->dev_len > CTL_BIN_DEVICE_MAX) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: op name of %u bytes (max %d) or "
			 "device of %u (max %d)", e->op_len, CTL_BIN_OP_MAX, e->dev_len,
			 CTL_BIN_DEVICE_MAX);
		return -DJ_ELIMIT;
	}
	return 0;
}

int ctl_bin_exec_decode(const uint8_t *body, size_t len, struct ctl_bin_exec *e, char *why)
{
	const uint8_t *p = body + CTL_BIN_EXEC_FIXED;
	uint64_t want;
	int rc;

	if (len < CTL_BIN_EXEC_FIXED) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: %zu bytes after the trace, at least "
			 "%d needed", len, CTL_BIN_EXEC_FIXED);
		return -EBADMSG;
	}
	rc = exec_counts(body, e, why);
	if (rc != 0)
		return rc;
	want = CTL_BIN_EXEC_FIXED + 8ull * (unsigned)e->n_in + e->op_len + e->dev_len +
	       (uint64_t)e->attrs_len;
	if (want != len) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: %d inputs, op of %u, device of %u "
			 "and attrs of %u bytes make %llu bytes, the body has %zu", e->n_in,
			 e->op_len, e->dev_len, e->attrs_len, (unsigned long long)want, len);
		return -EBADMSG;
	}
	for (int i = 0; i < e->n_in; i++, p += 8) {
		e->in[i] = get64(p);
		if (e->in[i] == 0) {
			snprintf(why, CTL_ERRMSG_MAX, "input %d is not a handle (0)", i);
			return -EINVAL;
		}
	}
	e->op = (const char *)p;
	e->device = (const char *)p + e->op_len;
	e->attrs = e->device + e->dev_len;
	if (!name_ok(e->op, e->op_len) || !name_ok(e->device, e->dev_len)) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE: op or device name with a byte "
			 "outside 0x21..0x7e");
		return -EINVAL;
	}
	return 0;
}

size_t ctl_bin_exec_size(const struct ctl_bin_exec *e)
{
	if (e->n_in < 0 || e->n_in > DJ_MAX_OP_ARGS || e->op_len > CTL_BIN_OP_MAX ||
	    e->dev_len > CTL_BIN_DEVICE_MAX)
		return 0;
	return CTL_BIN_EXEC_FIXED + 8u * (unsigned)e->n_in + e->op_len + e->dev_len +
	       e->attrs_len;
}

void ctl_bin_exec_encode(uint8_t *out, const struct ctl_bin_exec *e)
{
	uint8_t *p = out + CTL_BIN_EXEC_FIXED;

	memset(out, 0, CTL_BIN_EXEC_FIXED);
	put16(out, e->op_id);
	out[2] = (uint8_t)e->n_in;
	out[3] = e->op_len;
	out[4] = e->dev_len;
	put32(out + 8, e->attrs_len);
	for (int i = 0; i < e->n_in; i++, p += 8)
		put64(p, e->in[i]);
	/* Absent parts may be NULL: memcpy must not see them. */
	if (e->op_len > 0)
		memcpy(p, e->op, e->op_len);
	p += e->op_len;
	if (e->dev_len > 0)
		memcpy(p, e->device, e->dev_len);
	p += e->dev_len;
	if (e->attrs_len > 0)
		memcpy(p, e->attrs, e->attrs_len);
}

size_t ctl_bin_output_size(const struct dj_tensor_desc *desc, size_t dev_len)
{
	return CTL_BIN_OUT_FIXED + 8u * (unsigned)desc->ndim + dev_len;
}

uint8_t *ctl_bin_output_encode(uint8_t *out, uint64_t handle, const struct dj_tensor_desc *desc,
			       const char *device, size_t dev_len)
{
	put64(out, handle);
	out[8] = (uint8_t)desc->dtype;
	out[9] = (uint8_t)desc->ndim;
	out[10] = (uint8_t)dev_len;
	memset(out + 11, 0, 5);
	out += CTL_BIN_OUT_FIXED;
	for (int i = 0; i < desc->ndim; i++, out += 8)
		put64(out, (uint64_t)desc->shape[i]);
	if (dev_len > 0)
		memcpy(out, device, dev_len);
	return out + dev_len;
}

void ctl_bin_exec_reply_head(uint8_t *out, int n_out)
{
	memset(out, 0, CTL_BIN_EXEC_REPLY_FIXED);
	out[0] = (uint8_t)n_out;
}

/* One output at p (left bytes remain); its size, or 0 where it is bad. */
static size_t output_decode(const uint8_t *p, size_t left, struct ctl_bin_output *o, char *why)
{
	size_t need;
	uint8_t ndim, dev_len;

	if (left < CTL_BIN_OUT_FIXED) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: an output cut short");
		return 0;
	}
	o->handle = get64(p);
	o->desc.dtype = (enum dj_dtype)p[8];
	ndim = p[9];
	dev_len = p[10];
	o->desc.ndim = ndim;
	need = CTL_BIN_OUT_FIXED + 8u * ndim + dev_len;
	if (o->handle == 0 || p[8] >= DJ_DTYPE_COUNT || ndim > DJ_MAX_DIMS ||
	    dev_len > CTL_BIN_DEVICE_MAX || !zeros(p + 11, 5) || need > left) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: a malformed output");
		return 0;
	}
	for (int i = 0; i < ndim; i++) {
		uint64_t d = get64(p + CTL_BIN_OUT_FIXED + 8 * i);

		if (d >= (uint64_t)CTL_JSON_INT_LIMIT) {
			snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: a dimension of 2^53 or more");
			return 0;
		}
		o->desc.shape[i] = (int64_t)d;
	}
	memcpy(o->device, p + CTL_BIN_OUT_FIXED + 8u * ndim, dev_len);
	o->device[dev_len] = '\0';
	if (!name_ok(o->device, dev_len)) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: a malformed device name");
		return 0;
	}
	return need;
}

int ctl_bin_exec_reply_decode(const uint8_t *body, size_t len, struct ctl_bin_output *out,
			      int max, char *why)
{
	struct ctl_bin_output scratch;
	size_t off = CTL_BIN_EXEC_REPLY_FIXED;
	int n;

	if (len < CTL_BIN_EXEC_REPLY_FIXED || body[0] > DJ_MAX_OP_ARGS ||
	    !zeros(body + 1, CTL_BIN_EXEC_REPLY_FIXED - 1)) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: a malformed head");
		return -EBADMSG;
	}
	n = body[0];
	for (int i = 0; i < n; i++) {
		size_t used = output_decode(body + off, len - off, i < max ? &out[i] : &scratch, why);

		if (used == 0)
			return -EBADMSG;
		off += used;
	}
	if (off != len) {
		snprintf(why, CTL_ERRMSG_MAX, "binary EXECUTE reply: %zu bytes beyond its outputs",
			 len - off);
		return -EBADMSG;
	}
	return n;
}

/* msg's length cut to CTL_BIN_MSG_MAX bytes, at a UTF-8 character's start. */
static size_t msg_len(const char *msg)
{
	size_t n = msg != NULL ? strlen(msg) : 0;

	if (n <= CTL_BIN_MSG_MAX)
		return n;
	n = CTL_BIN_MSG_MAX;
	while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
		n--;
	return n;
}

size_t ctl_bin_error_size(const char *msg)
{
	return CTL_BIN_ERROR_FIXED + msg_len(msg);
}

void ctl_bin_error_encode(uint8_t *out, int code, const char *msg)
{
	size_t n = msg_len(msg);

	put32(out, (uint32_t)code);
	put16(out + 4, (uint16_t)n);
	put16(out + 6, 0);
	if (n > 0)
		memcpy(out + CTL_BIN_ERROR_FIXED, msg, n);
}

int ctl_bin_error_decode(const uint8_t *body, size_t len, int *code, char *msg)
{
	size_t n;

	msg[0] = '\0';
	if (len < CTL_BIN_ERROR_FIXED)
		return -EBADMSG;
	*code = (int)get32(body);
	n = get16(body + 4);
	if (*code >= 0 || get16(body + 6) != 0 || n > CTL_BIN_MSG_MAX ||
	    CTL_BIN_ERROR_FIXED + n != len)
		return -EBADMSG;
	memcpy(msg, body + CTL_BIN_ERROR_FIXED, n);
	msg[n] = '\0';
	/* A NUL inside would cut the text short where it is shown. */
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '\0')
			msg[i] = '?';
	return 0;
}
