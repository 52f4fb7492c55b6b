/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_CTL_FIXTURE_H
#define DJINN_TEST_CTL_FIXTURE_H

/* A control-plane server on a loopback port with the host-memory backend,
 * plus raw-socket helpers for speaking (bad) protocol by hand. */
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "djinn/djinn.h"
#include "mem_backend.h"

struct fixture {
	struct mem_backend *mb;
	struct ctl_server *srv;
	uint16_t port;
};

/* cfg / mbo may be NULL (defaults). Returns 0 or the failing rc. */
int fx_start(struct fixture *fx, const struct ctl_server_config *cfg,
	     const struct mem_backend_options *mbo);
void fx_stop(struct fixture *fx);
/* A server that authenticates with token: cfg (NULL: defaults) with the
 * token set, started. Skips the test (77) in a build without HMAC. */
void fx_start_token(struct fixture *fx, struct ctl_server_config *cfg, const char *token);
/* Client options aimed at the fixture, fast retries. */
void fx_client_opts(const struct fixture *fx, struct dj_client_options *o);

int fx_raw_connect(uint16_t port);
/* The same from a chosen loopback source address ("127.0.3.7"): the
 * server sees as many peers as the test likes. */
int fx_raw_connect_from(uint16_t port, const char *source);
int fx_raw_send_bytes(int fd, const void *buf, size_t len);
/* Exactly len bytes, each within timeout_ms of the last; 0, or -1 on
 * timeout / close. */
int fx_raw_recv_bytes(int fd, void *buf, size_t len, int timeout_ms);
/* A frame with this JSON text and a stated payload length (payload not sent). */
int fx_raw_send(int fd, const char *json, uint64_t payload_len);
/* Next frame's JSON (payload, if any, is read and dropped); NULL on timeout/close. */
cJSON *fx_raw_recv(int fd, int timeout_ms);
/* Next frame: its JSON text as sent (*text, NUL-terminated) and its payload
 * (*payload, *payload_len; payload may be NULL to drop it); the caller
 * frees both. 0, or -1 on timeout/close. */
int fx_raw_recv_frame(int fd, int timeout_ms, char **text, void **payload,
		      uint64_t *payload_len);
/* 1 when the server closed fd within timeout_ms. */
int fx_raw_closed(int fd, int timeout_ms);
/* HELLO (no auth) + SESSION on a raw socket; 0 on success. */
int fx_raw_ready(int fd);
/* The same with this HELLO; its reply into *hello_reply (may be NULL;
 * the caller deletes it, also on failure). */
int fx_raw_ready_with(int fd, const char *hello, cJSON **hello_reply);
/* "code" of an ERROR reply, 0 when msg is not an ERROR. */
int fx_error_code(const cJSON *msg);

/* Fill buf with a pattern derived from seed (byte-exact checks). */
void fx_pattern(void *buf, size_t len, uint32_t seed);

#endif
