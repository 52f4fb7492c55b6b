/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_BIN_H
#define DJINN_CTL_BIN_H

/*
 * The control plane's binary encoding of its small requests (PING, FREE,
 * single-op EXECUTE) and their replies, shared by server and client. It is
 * negotiated in HELLO and travels on the same connection as the JSON frames,
 * which keep carrying every other message. docs/CONTROL.md, "Binary frames",
 * is its byte-exact specification; this file follows it.
 *
 * A binary frame has the JSON frame's 16-byte header length, so a reader
 * takes 16 bytes and looks at the first: 'D' (0x44, "DJC1") is JSON, 0xDB
 * binary. All integers are little endian. Decoders read in place from the
 * caller's buffer (no copy, no allocation): strings they return point into
 * it and are not NUL-terminated.
 */
#include <stddef.h>
#include <stdint.h>

#include "djinn/djinn.h"
#include "djinn/tensor.h"
#include "controlplane/ctl.h"
#include "ctl_wire.h"

#define CTL_BIN_MAGIC 0xDB
/* The binary encoding's version, offered and accepted in HELLO ("binary"). */
#define CTL_BIN_VERSION 1
/* Largest body (trace included) of any binary frame. */
#define CTL_BIN_BODY_MAX 65536u
/* An EXECUTE naming its op by text rather than by its index in caps.ops. */
#define CTL_BIN_OP_NAMED 0xFFFFu
/* Longest op name, device name and trace in a binary frame (bytes). */
#define CTL_BIN_OP_MAX 31
#define CTL_BIN_DEVICE_MAX (CTL_DEVICE_MAX - 1)
#define CTL_BIN_TRACE_MAX 47
/* EXECUTE's fixed fields, and each output's, before their variable parts. */
#define CTL_BIN_EXEC_FIXED 16
#define CTL_BIN_OUT_FIXED 16
#define CTL_BIN_ERROR_FIXED 8
/* An ERROR's message: at most this many bytes (cut at a UTF-8 boundary). */
#define CTL_BIN_MSG_MAX 255

enum ctl_bin_type {
	CTL_BIN_PING = 0x01,
	CTL_BIN_FREE = 0x02,
	CTL_BIN_EXECUTE = 0x03,
	/* A reply's type is its request's with this bit set. */
	CTL_BIN_REPLY = 0x80,
	CTL_BIN_ERROR = 0xFF,
};

struct ctl_bin_hdr {
	uint8_t type;
	uint8_t trace_len;
	uint32_t body_len;        /* trace included */
	uint64_t id;
};

/* A decoded EXECUTE body; op, device and attrs point into it. */
struct ctl_bin_exec {
	uint16_t op_id;           /* CTL_BIN_OP_NAMED: op holds the name */
	const char *op;
	uint8_t op_len;
	int n_in;
	uint64_t in[DJ_MAX_OP_ARGS];
	const char *device;       /* dev_len 0: none */
	uint8_t dev_len;
	const char *attrs;        /* JSON object text; attrs_len 0: none */
	uint32_t attrs_len;
};

/* One output of an EXECUTE reply. */
struct ctl_bin_output {
	uint64_t handle;
	struct dj_tensor_desc desc;
	char device[CTL_DEVICE_MAX]; /* "" where the server names none */
};

/* 1 where a frame header is a binary one (else JSON, or garbage). */
static inline int ctl_bin_is(const uint8_t *hdr)
{
	return hdr[0] == CTL_BIN_MAGIC;
}

void ctl_bin_hdr_encode(uint8_t *out, uint8_t type, uint8_t trace_len, uint32_t body_len,
			uint64_t id);
/*
 * A binary header (hdr[0] is CTL_BIN_MAGIC). h is filled as far as it could
 * be read (h->id for the ERROR) even where it fails.
 * @return 0; -EPROTO (flags not 0, an unknown type, or a type of the other
 * direction: requests where replies are wanted); -DJ_ELIMIT (body over
 * CTL_BIN_BODY_MAX); -EBADMSG (trace longer than 47 bytes or than the body).
 * why (128 bytes) says which.
 */
int ctl_bin_hdr_decode(const uint8_t *hdr, int replies, struct ctl_bin_hdr *h, char *why);

/*
 * The fields of a request's body after its trace: FREE's handle, EXECUTE's
 * op, inputs, device and attrs (PING has none: len must be 0).
 * @return 0; -EBADMSG (lengths that do not add up to len, a reserved byte
 * not 0, an op name where an op id is given or none where it is not);
 * -DJ_ELIMIT (more than DJ_MAX_OP_ARGS inputs, an op or device name too
 * long); -EINVAL (a handle of 0, a name with bytes outside 0x21..0x7e).
 * why (CTL_ERRMSG_MAX bytes) says which.
 */
int ctl_bin_free_decode(const uint8_t *body, size_t len, uint64_t *handle, char *why);
int ctl_bin_exec_decode(const uint8_t *body, size_t len, struct ctl_bin_exec *e, char *why);

/* Bytes of an EXECUTE request body (trace excluded); 0 where e breaks a
 * limit (the caller then gets -EINVAL / -DJ_ELIMIT from _encode). */
size_t ctl_bin_exec_size(const struct ctl_bin_exec *e);
/* Write e's body at out (ctl_bin_exec_size() bytes). */
void ctl_bin_exec_encode(uint8_t *out, const struct ctl_bin_exec *e);

/* Bytes of one output in an EXECUTE reply; writing it, returning its end. */
size_t ctl_bin_output_size(const struct dj_tensor_desc *desc, size_t dev_len);
uint8_t *ctl_bin_output_encode(uint8_t *out, uint64_t handle, const struct dj_tensor_desc *desc,
			       const char *device, size_t dev_len);
/* The header of an EXECUTE reply's body (its output count). */
#define CTL_BIN_EXEC_REPLY_FIXED 8
void ctl_bin_exec_reply_head(uint8_t *out, int n_out);
/*
 * An EXECUTE reply's outputs into out[0..max) (the rest counted, not kept).
 * @return the number of outputs; -EBADMSG (lengths, reserved bytes, a
 * dtype, ndim or dimension out of range, a handle of 0); why filled.
 */
int ctl_bin_exec_reply_decode(const uint8_t *body, size_t len, struct ctl_bin_output *out,
			      int max, char *why);

/* Bytes of an ERROR body for msg (cut to CTL_BIN_MSG_MAX). */
size_t ctl_bin_error_size(const char *msg);
void ctl_bin_error_encode(uint8_t *out, int code, const char *msg);
/*
 * An ERROR body: *code (negative) and its message into msg (CTL_ERRMSG_MAX
 * bytes, NUL-terminated). @return 0; -EBADMSG (lengths, a code >= 0).
 */
int ctl_bin_error_decode(const uint8_t *body, size_t len, int *code, char *msg);

#endif
