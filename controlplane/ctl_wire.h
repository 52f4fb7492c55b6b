/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_WIRE_H
#define DJINN_CTL_WIRE_H

/*
 * Control-plane wire format, shared by server and client.
 *
 * A frame is a 16-byte header, a JSON object and a raw payload:
 *   magic "DJC1" | json_len (u32, big endian) | payload_len (u64, big endian)
 * The JSON states what the payload is (a tensor's bytes for PUT and GET);
 * tensor bytes never travel inside JSON. Handles travel as "0x..." strings
 * (64 bits do not survive a JSON number).
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "dataplane/datapath.h"
#include "djinn/tensor.h"

#define CTL_HDR_LEN 16
/* 2^53: integers in JSON (ids, transfer ids, dimensions) stay below it,
 * where a JSON number (an IEEE double) stops holding every integer. */
#define CTL_JSON_INT_LIMIT 9007199254740992.0
#define CTL_MAGIC "DJC1"
#define CTL_NONCE_LEN 32
#define CTL_MAC_LEN 32

struct ctl_hdr {
	uint32_t json_len;
	uint64_t payload_len;
};

void ctl_hdr_encode(uint8_t out[CTL_HDR_LEN], uint32_t json_len,
			uint64_t payload_len);
/* -EPROTO on a bad magic. */
int ctl_hdr_decode(const uint8_t in[CTL_HDR_LEN], struct ctl_hdr *hdr);

/* Deepest nesting of objects/arrays in text (strings skipped). */
int ctl_json_depth(const char *text, size_t len);

/* Serialise msg into one malloc'ed buffer: header + JSON, the JSON as
 * cJSON_PrintUnformatted's (the same values; integers below 2^53 always in
 * plain digits), printed without sprintf.
 * @return 0; -ENOMEM; -EINVAL (a raw item without text, an invalid item);
 * -E2BIG (nested deeper than 1000, or over 4 GiB of JSON). */
int ctl_frame(const cJSON *msg, uint64_t payload_len, char **buf, size_t *len);

/* Typed field access; each returns -EINVAL (and fills why) when missing or
 * of the wrong type. why: at least 128 bytes. */
int ctl_json_u64(const cJSON *obj, const char *key, uint64_t *val, char *why);
/* Add an integer printed exactly (cJSON prints numbers with 15 significant
 * digits: ids above 10^15 would come back changed); NULL on -ENOMEM. */
cJSON *ctl_json_add_u64(cJSON *obj, const char *key, uint64_t val);
int ctl_json_str(const cJSON *obj, const char *key, const char **val, char *why);
int ctl_json_handle(const cJSON *obj, const char *key, uint64_t *handle, char *why);
int ctl_handle_parse(const char *text, uint64_t *handle);
void ctl_handle_format(uint64_t handle, char out[20]);
cJSON *ctl_json_add_handle(cJSON *obj, const char *key, uint64_t handle);

/* Tensor descriptions as {"dtype": "float32", "shape": [..]}. */
/* Bytes of a tensor; -DJ_EDTYPE / -DJ_ESHAPE for a bad description. */
int ctl_desc_nbytes(const struct dj_tensor_desc *desc, uint64_t *nbytes);
int ctl_desc_from_json(const cJSON *obj, struct dj_tensor_desc *desc, char *why);
/* -ENOMEM where memory ran out part-way: obj then lacks fields. */
int ctl_desc_to_json(cJSON *obj, const struct dj_tensor_desc *desc);

/* Capabilities (HELLO). */
cJSON *ctl_caps_to_json(const struct dp_caps *caps);
void ctl_caps_from_json(const cJSON *obj, struct dp_caps *caps);

/* Authentication: HMAC-SHA256(token, label | first | second). */
int ctl_auth_random(void *buf, size_t len);
int ctl_auth_mac(const char *token, const char *label, const uint8_t first[CTL_NONCE_LEN],
		const uint8_t second[CTL_NONCE_LEN], uint8_t mac[CTL_MAC_LEN]);
/* Constant-time equality of two MACs (1 equal). */
int ctl_auth_equal(const uint8_t *a, const uint8_t *b, size_t len);
void ctl_hex_encode(const uint8_t *in, size_t len, char *out);
int ctl_hex_decode(const char *in, uint8_t *out, size_t len);

/* Labels that keep the two MACs of one handshake from being replayed as each other. */
#define CTL_AUTH_LABEL_CLIENT "djinn-auth-client-v1"
#define CTL_AUTH_LABEL_SERVER "djinn-auth-server-v1"
/* The same for fleet members authenticating each other (fleet token). */
#define CTL_FLEET_LABEL_MEMBER "djinn-fleet-member-v1"
#define CTL_FLEET_LABEL_SERVER "djinn-fleet-server-v1"

/* Reply helpers. */
cJSON *ctl_reply_new(uint64_t id, const char *type);
cJSON *ctl_error_new(uint64_t id, int code, const char *message);

#endif
