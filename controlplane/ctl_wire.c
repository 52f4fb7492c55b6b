/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_wire.h"

void ctl_hdr_encode(uint8_t out[CTL_HDR_LEN], uint32_t json_len,
			uint64_t payload_len)
{
	memcpy(out, CTL_MAGIC, 4);
	for (int i = 0; i < 4; i++)
		out[4 + i] = (uint8_t)(json_len >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
}

int ctl_hdr_decode(const uint8_t in[CTL_HDR_LEN], struct ctl_hdr *hdr)
{
	if (memcmp(in, CTL_MAGIC, 4) != 0)
		return -EPROTO;
	hdr->json_len = 0;
	hdr->payload_len = 0;
	for (int i = 0; i < 4; i++)
		hdr->json_len = hdr->json_len << 8 | in[4 + i];
	for (int i = 0; i < 8; i++)
		hdr->payload_len = hdr->payload_len << 8 | in[8 + i];
	return 0;
}

int ctl_json_depth(const char *text, size_t len)
{
	int depth = 0, deepest = 0, in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return deepest;
}

/*
 * The frame printer. cJSON_PrintUnformatted prints every number through
 * sprintf("%1.15g") and reads it back with sscanf, and grows its buffer by
 * realloc; then the text was copied behind a header. Frames are printed
 * here instead, straight behind their header in one buffer: integers (ids,
 * codes, dimensions: nearly every number the protocol has) by a digit loop,
 * other numbers, strings and nesting as cJSON prints them.
 */
struct jbuf {
	char *p;
	size_t len, cap;
};

#define JBUF_FIRST 256
/* Deeper than any peer's parser takes (cJSON's own limit). */
#define JBUF_DEPTH_MAX 1000

static int jb_room(struct jbuf *b, size_t n)
{
	size_t cap = b->cap;
	char *grown;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	grown = realloc(b->p, cap);
	if (grown == NULL)
		return -ENOMEM;
	b->p = grown;
	b->cap = cap;
	return 0;
}

static int jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (jb_room(b, n) != 0)
		return -ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* A JSON string as cJSON escapes it: quote, backslash and the control
 * characters; bytes from 0x80 up pass as they are (UTF-8). */
static int jb_string(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)(s != NULL ? s : "");
	size_t n = strlen((const char *)u);
	char *o;

	/* At most 6 bytes per input byte (\u00XX), plus the quotes. */
	if (jb_room(b, n * 6 + 2) != 0)
		return -ENOMEM;
	o = b->p + b->len;
	*o++ = '"';
	for (; *u != '\0'; u++) {
		if (*u >= 0x20 && *u != '"' && *u != '\\') {
			*o++ = (char)*u;
			continue;
		}
		*o++ = '\\';
		switch (*u) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[*u >> 4];
			o[4] = hex[*u & 15];
			o += 5;
			break;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
	return 0;
}

/* v's decimal digits, written backwards ending just before end; returns
 * where they begin (at most 20 bytes before end). */
static char *u64_digits(uint64_t v, char *end)
{
	do
		*--end = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return end;
}

/* Integers below 2^53 by their digits; the rest as cJSON prints them (15
 * significant digits where they read back equal, else 17; null for NaN and
 * the infinities, which JSON lacks). */
static int jb_number(struct jbuf *b, double d)
{
	char text[32], *o = text + sizeof(text);
	uint64_t v;
	double back;

	if (d != d || d - d != 0)
		return jb_put(b, "null", 4);
	if (d > -CTL_JSON_INT_LIMIT && d < CTL_JSON_INT_LIMIT && d == (double)(int64_t)d) {
		v = d < 0 ? (uint64_t)-(int64_t)d : (uint64_t)d;
		o = u64_digits(v, o);
		if (d < 0)
			*--o = '-';
		return jb_put(b, o, (size_t)(text + sizeof(text) - o));
	}
	snprintf(text, sizeof(text), "%1.15g", d);
	if (sscanf(text, "%lg", &back) != 1 || back != d)
		snprintf(text, sizeof(text), "%1.17g", d);
	return jb_put(b, text, strlen(text));
}

static int jb_value(struct jbuf *b, const cJSON *it, int depth)
{
	const cJSON *child;
	int object;

	if (depth > JBUF_DEPTH_MAX)
		return -E2BIG;
	switch (it->type & 0xFF) {
	case cJSON_False: return jb_put(b, "false", 5);
	case cJSON_True: return jb_put(b, "true", 4);
	case cJSON_NULL: return jb_put(b, "null", 4);
	case cJSON_Number: return jb_number(b, it->valuedouble);
	case cJSON_String: return jb_string(b, it->valuestring);
	case cJSON_Raw:
		/* As cJSON: a raw item without text cannot be printed. */
		return it->valuestring != NULL ? jb_put(b, it->valuestring, strlen(it->valuestring))
					       : -EINVAL;
	case cJSON_Array:
	case cJSON_Object:
		break;
	default:
		return -EINVAL;
	}
	object = cJSON_IsObject(it);
	if (jb_put(b, object ? "{" : "[", 1) != 0)
		return -ENOMEM;
	for (child = it->child; child != NULL; child = child->next) {
		int rc = 0;

		if (child != it->child)
			rc = jb_put(b, ",", 1);
		if (rc == 0 && object) {
			rc = jb_string(b, child->string);
			if (rc == 0)
				rc = jb_put(b, ":", 1);
		}
		if (rc == 0)
			rc = jb_value(b, child, depth + 1);
		if (rc != 0)
			return rc;
	}
	return jb_put(b, object ? "}" : "]", 1);
}

int ctl_frame(const cJSON *msg, uint64_t payload_len, char **buf, size_t *len)
{
	struct jbuf b = {.p = malloc(JBUF_FIRST), .len = CTL_HDR_LEN, .cap = JBUF_FIRST};
	int rc;

	if (b.p == NULL)
		return -ENOMEM;
	rc = jb_value(&b, msg, 0);
	if (rc == 0 && b.len - CTL_HDR_LEN > UINT32_MAX)
		rc = -E2BIG;
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	ctl_hdr_encode((uint8_t *)b.p, (uint32_t)(b.len - CTL_HDR_LEN), payload_len);
	*buf = b.p;
	*len = b.len;
	return 0;
}

static int field_missing(const char *key, const char *what, char *why)
{
	snprintf(why, 128, "field '%s' missing or not %s", key, what);
	return -EINVAL;
}

int ctl_json_u64(const cJSON *obj, const char *key, uint64_t *val, char *why)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	/* Built here by ctl_json_add_u64() and not yet printed. */
	if (cJSON_IsRaw(it)) {
		char *end;

		errno = 0;
		*val = strtoull(it->valuestring, &end, 10);
		if (errno == 0 && end != it->valuestring && *end == '\0' &&
		    *val < (uint64_t)CTL_JSON_INT_LIMIT)
			return 0;
		return field_missing(key, "an integer from 0 to 2^53 - 1", why);
	}

	/* 2^53: beyond it a JSON number no longer holds every integer. */
	if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= CTL_JSON_INT_LIMIT ||
	    it->valuedouble != (double)(uint64_t)it->valuedouble)
		return field_missing(key, "an integer from 0 to 2^53 - 1", why);
	*val = (uint64_t)it->valuedouble;
	return 0;
}

cJSON *ctl_json_add_u64(cJSON *obj, const char *key, uint64_t val)
{
	char text[24];

	text[sizeof(text) - 1] = '\0';
	return cJSON_AddRawToObject(obj, key, u64_digits(val, text + sizeof(text) - 1));
}

int ctl_json_str(const cJSON *obj, const char *key, const char **val, char *why)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(it))
		return field_missing(key, "a string", why);
	*val = it->valuestring;
	return 0;
}

int ctl_handle_parse(const char *text, uint64_t *handle)
{
	char *end;
	unsigned long long v;

	if (text == NULL || strncmp(text, "0x", 2) != 0 || text[2] == '\0' ||
	    strlen(text) > 18)
		return -EINVAL;
	errno = 0;
	v = strtoull(text + 2, &end, 16);
	if (errno != 0 || *end != '\0' || v == 0)
		return -EINVAL;
	*handle = v;
	return 0;
}

int ctl_json_handle(const cJSON *obj, const char *key, uint64_t *handle, char *why)
{
	const char *text;

	if (ctl_json_str(obj, key, &text, why) != 0 || ctl_handle_parse(text, handle) != 0)
		return field_missing(key, "a handle (\"0x\" and 1-16 hex digits)", why);
	return 0;
}

void ctl_handle_format(uint64_t handle, char out[20])
{
	static const char hex[] = "0123456789abcdef";
	int n = 1;

	while (n < 16 && handle >> (4 * n) != 0)
		n++;
	out[0] = '0';
	out[1] = 'x';
	for (int i = 0; i < n; i++)
		out[2 + i] = hex[(handle >> (4 * (n - 1 - i))) & 15];
	out[2 + n] = '\0';
}

cJSON *ctl_json_add_handle(cJSON *obj, const char *key, uint64_t handle)
{
	char text[20];

	ctl_handle_format(handle, text);
	return cJSON_AddStringToObject(obj, key, text);
}

/* Wire names of the dtypes, indexed by enum dj_dtype (whose values are
 * themselves wire-stable). */
static const struct {
	const char *name;
	size_t size;
} dtypes[DJ_DTYPE_COUNT] = {
	[DJ_DTYPE_FLOAT32] = {"float32", 4},
	[DJ_DTYPE_FLOAT16] = {"float16", 2},
	[DJ_DTYPE_BFLOAT16] = {"bfloat16", 2},
	[DJ_DTYPE_INT32] = {"int32", 4},
	[DJ_DTYPE_INT64] = {"int64", 8},
};

int ctl_desc_nbytes(const struct dj_tensor_desc *desc, uint64_t *nbytes)
{
	uint64_t n;

	if ((unsigned)desc->dtype >= DJ_DTYPE_COUNT)
		return -DJ_EDTYPE;
	if (desc->ndim < 0 || desc->ndim > DJ_MAX_DIMS)
		return -DJ_ESHAPE;
	n = dtypes[desc->dtype].size;
	for (int i = 0; i < desc->ndim; i++) {
		if (desc->shape[i] < 0)
			return -DJ_ESHAPE;
		if (desc->shape[i] != 0 && n > (UINT64_MAX >> 2) / (uint64_t)desc->shape[i])
			return -DJ_ESHAPE;
		n *= (uint64_t)desc->shape[i];
	}
	*nbytes = n;
	return 0;
}

int ctl_desc_from_json(const cJSON *obj, struct dj_tensor_desc *desc, char *why)
{
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
	const cJSON *dim;
	const char *name;
	uint64_t nbytes;
	int i = 0;

	if (ctl_json_str(obj, "dtype", &name, why) != 0)
		return -EINVAL;
	desc->dtype = DJ_DTYPE_COUNT;
	for (int d = 0; d < DJ_DTYPE_COUNT; d++)
		if (strcmp(name, dtypes[d].name) == 0)
			desc->dtype = (enum dj_dtype)d;
	if (desc->dtype == DJ_DTYPE_COUNT) {
		snprintf(why, 128, "unknown dtype '%.40s'", name);
		return -DJ_EDTYPE;
	}
	if (!cJSON_IsArray(shape))
		return field_missing("shape", "an array", why);
	if (cJSON_GetArraySize(shape) > DJ_MAX_DIMS) {
		snprintf(why, 128, "shape has more than %d dimensions", DJ_MAX_DIMS);
		return -DJ_ESHAPE;
	}
	cJSON_ArrayForEach(dim, shape) {
		if (cJSON_IsNumber(dim) && dim->valuedouble >= CTL_JSON_INT_LIMIT) {
			snprintf(why, 128, "shape[%d] is 2^53 or more: a JSON number holds every "
				 "integer only below 2^53, so no dimension may reach it", i);
			return -DJ_ESHAPE;
		}
		if (!cJSON_IsNumber(dim) || dim->valuedouble < 0 ||
		    dim->valuedouble != (double)(int64_t)dim->valuedouble) {
			snprintf(why, 128, "shape[%d] is not a non-negative integer", i);
			return -DJ_ESHAPE;
		}
		desc->shape[i++] = (int64_t)dim->valuedouble;
	}
	desc->ndim = i;
	if (ctl_desc_nbytes(desc, &nbytes) != 0) {
		snprintf(why, 128, "tensor size overflows");
		return -DJ_ESHAPE;
	}
	return 0;
}

int ctl_desc_to_json(cJSON *obj, const struct dj_tensor_desc *desc)
{
	cJSON *shape = cJSON_AddArrayToObject(obj, "shape");
	int ok = shape != NULL &&
		 cJSON_AddStringToObject(obj, "dtype", (unsigned)desc->dtype < DJ_DTYPE_COUNT ?
					 dtypes[desc->dtype].name : "invalid") != NULL;

	/* cJSON_AddItemToArray refuses a NULL item: a failed number shows. */
	for (int i = 0; i < desc->ndim && ok; i++)
		ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)desc->shape[i]));
	return ok ? 0 : -ENOMEM;
}

static void endpoint_to_json(cJSON *obj, const struct dp_endpoint *ep)
{
	char mac[18], ip[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = ep->ipv4};

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", ep->mac[0],
		 ep->mac[1], ep->mac[2], ep->mac[3], ep->mac[4], ep->mac[5]);
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	cJSON_AddStringToObject(obj, "mac", mac);
	cJSON_AddStringToObject(obj, "ipv4", ip);
	cJSON_AddNumberToObject(obj, "udp_port", ep->udp_port);
	cJSON_AddNumberToObject(obj, "queues", ep->n_queues);
	cJSON_AddNumberToObject(obj, "mtu", ep->mtu);
	cJSON_AddStringToObject(obj, "memif_socket", ep->memif_socket);
}

static uint64_t json_num(const cJSON *obj, const char *key, uint64_t max)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > (double)max)
		return 0;
	return (uint64_t)it->valuedouble;
}

static void endpoint_from_json(const cJSON *obj, struct dp_endpoint *ep)
{
	const cJSON *mac = cJSON_GetObjectItemCaseSensitive(obj, "mac");
	const cJSON *ip = cJSON_GetObjectItemCaseSensitive(obj, "ipv4");
	const cJSON *memif = cJSON_GetObjectItemCaseSensitive(obj, "memif_socket");
	unsigned int m[6];
	struct in_addr a;

	if (cJSON_IsString(mac) && sscanf(mac->valuestring, "%2x:%2x:%2x:%2x:%2x:%2x",
					  &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			ep->mac[i] = (uint8_t)m[i];
	if (cJSON_IsString(ip) && inet_pton(AF_INET, ip->valuestring, &a) == 1)
		ep->ipv4 = a.s_addr;
	ep->udp_port = (uint16_t)json_num(obj, "udp_port", UINT16_MAX);
	ep->n_queues = (uint16_t)json_num(obj, "queues", UINT16_MAX);
	ep->mtu = (uint16_t)json_num(obj, "mtu", UINT16_MAX);
	if (cJSON_IsString(memif))
		snprintf(ep->memif_socket, sizeof(ep->memif_socket), "%s", memif->valuestring);
}

cJSON *ctl_caps_to_json(const struct dp_caps *caps)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *gpus = cJSON_AddArrayToObject(obj, "gpus");
	cJSON *dts = cJSON_AddArrayToObject(obj, "dtypes");
	cJSON *ops = cJSON_AddArrayToObject(obj, "ops");

	cJSON_AddBoolToObject(obj, "dpdk", caps->dpdk);
	if (caps->dpdk)
		endpoint_to_json(cJSON_AddObjectToObject(obj, "endpoint"), &caps->endpoint);
	for (int i = 0; i < caps->n_gpus && i < DP_MAX_GPUS; i++) {
		cJSON *g = cJSON_CreateObject();

		cJSON_AddStringToObject(g, "name", caps->gpus[i].name);
		cJSON_AddNumberToObject(g, "mem_total", (double)caps->gpus[i].mem_total);
		cJSON_AddNumberToObject(g, "mem_free", (double)caps->gpus[i].mem_free);
		cJSON_AddItemToArray(gpus, g);
	}
	for (int d = 0; d < DJ_DTYPE_COUNT; d++)
		if (caps->dtypes & (1u << d))
			cJSON_AddItemToArray(dts, cJSON_CreateString(dtypes[d].name));
	for (int i = 0; i < caps->n_ops && i < DP_MAX_OPS; i++)
		cJSON_AddItemToArray(ops, cJSON_CreateString(caps->ops[i]));
	return obj;
}

void ctl_caps_from_json(const cJSON *obj, struct dp_caps *caps)
{
	const cJSON *it;

	memset(caps, 0, sizeof(*caps));
	caps->dpdk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "dpdk"));
	it = cJSON_GetObjectItemCaseSensitive(obj, "endpoint");
	if (cJSON_IsObject(it))
		endpoint_from_json(it, &caps->endpoint);
	else
		caps->dpdk = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "gpus")) {
		struct dp_gpu *g;
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");

		if (caps->n_gpus == DP_MAX_GPUS)
			break;
		g = &caps->gpus[caps->n_gpus++];
		if (cJSON_IsString(name))
			snprintf(g->name, sizeof(g->name), "%s", name->valuestring);
		g->mem_total = json_num(it, "mem_total", UINT64_MAX >> 1);
		g->mem_free = json_num(it, "mem_free", UINT64_MAX >> 1);
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "dtypes"))
		for (int d = 0; d < DJ_DTYPE_COUNT; d++)
			if (cJSON_IsString(it) && strcmp(it->valuestring, dtypes[d].name) == 0)
				caps->dtypes |= 1u << d;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "ops")) {
		if (caps->n_ops == DP_MAX_OPS)
			break;
		if (cJSON_IsString(it))
			snprintf(caps->ops[caps->n_ops++], DP_OP_NAME_MAX, "%s", it->valuestring);
	}
}

void ctl_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ctl_hex_decode(const char *in, uint8_t *out, size_t len)
{
	if (in == NULL || strlen(in) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Without its type or id a reply is unanswerable (never matched to its
 * request, or taken for another kind): all or nothing. */
cJSON *ctl_reply_new(uint64_t id, const char *type)
{
	cJSON *msg = cJSON_CreateObject();

	if (msg != NULL && (cJSON_AddStringToObject(msg, "type", type) == NULL ||
			    ctl_json_add_u64(msg, "id", id) == NULL)) {
		cJSON_Delete(msg);
		msg = NULL;
	}
	return msg;
}

/* The message may quote a request (a type, an op name, a reason): escaped,
 * so that the reply is valid UTF-8 JSON whatever the request held and a
 * client printing it prints one plain line. */
cJSON *ctl_error_new(uint64_t id, int code, const char *message)
{
	cJSON *msg = ctl_reply_new(id, "ERROR");
	char safe[4 * CTL_ERRMSG_MAX];

	if (message == NULL || message[0] == '\0')
		message = dj_strerror(code);
	djc_escape(safe, sizeof(safe), message, strlen(message));
	if (msg != NULL && (cJSON_AddNumberToObject(msg, "code", code) == NULL ||
			    cJSON_AddStringToObject(msg, "message", safe) == NULL)) {
		cJSON_Delete(msg);
		msg = NULL;
	}
	return msg;
}
