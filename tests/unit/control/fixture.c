/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "fixture.h"
#include "harness.h"
#include "ctl_wire.h"

int fx_start(struct fixture *fx, const struct ctl_server_config *cfg,
	     const struct mem_backend_options *mbo)
{
	struct ctl_server_config c;
	int rc;

	memset(fx, 0, sizeof(*fx));
	if (cfg != NULL) {
		c = *cfg;
	} else {
		ctl_server_config_init(&c);
		c.n_workers = 4;
	}
	rc = mem_backend_create(mbo, &fx->mb);
	if (rc == 0)
		rc = ctl_server_create(&c, mem_backend_ops(), fx->mb, &fx->srv);
	if (rc == 0)
		rc = ctl_server_start(fx->srv);
	if (rc != 0) {
		fx_stop(fx);
		return rc;
	}
	fx->port = ctl_server_port(fx->srv);
	return 0;
}

void fx_stop(struct fixture *fx)
{
	ctl_server_destroy(fx->srv);
	mem_backend_destroy(fx->mb);
	fx->srv = NULL;
	fx->mb = NULL;
}

void fx_start_token(struct fixture *fx, struct ctl_server_config *cfg, const char *token)
{
	struct ctl_server_config defaults;
	uint8_t probe[CTL_MAC_LEN] = {0};

	if (ctl_auth_mac("k", "l", probe, probe, probe) == -ENOTSUP)
		dj_test_skip("built without OpenSSL: no HMAC authentication");
	if (cfg == NULL) {
		ctl_server_config_init(&defaults);
		cfg = &defaults;
	}
	cfg->token = token;
	CU_ASSERT_FATAL(fx_start(fx, cfg, NULL) == 0);
}

void fx_client_opts(const struct fixture *fx, struct dj_client_options *o)
{
	dj_client_options_init(o);
	o->port = fx->port;
	o->max_retries = 3;
	o->backoff_base_ms = 10;
	o->backoff_max_ms = 100;
	o->request_timeout_ms = 20000;
}

int fx_raw_connect_from(uint16_t port, const char *source)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in src = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd >= 0 && source != NULL &&
	    (inet_pton(AF_INET, source, &src.sin_addr) != 1 ||
	     bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)) {
		close(fd);
		return -1;
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* A frame goes out in two sends (header, JSON): without this, Nagle
	 * holds the second until the first is acknowledged (40 ms). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int fx_raw_connect(uint16_t port)
{
	return fx_raw_connect_from(port, NULL);
}

int fx_raw_send_bytes(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fx_raw_send(int fd, const char *json, uint64_t payload_len)
{
	uint8_t hdr[CTL_HDR_LEN];

	ctl_hdr_encode(hdr, (uint32_t)strlen(json), payload_len);
	if (fx_raw_send_bytes(fd, hdr, sizeof(hdr)) != 0)
		return -1;
	return fx_raw_send_bytes(fd, json, strlen(json));
}

int fx_raw_recv_bytes(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fx_raw_recv_frame(int fd, int timeout_ms, char **text, void **payload,
		      uint64_t *payload_len)
{
	uint8_t hdr[CTL_HDR_LEN];
	struct ctl_hdr h;
	char drop[4096], *t;
	uint8_t *pay = NULL;

	if (fx_raw_recv_bytes(fd, hdr, sizeof(hdr), timeout_ms) != 0 || ctl_hdr_decode(hdr, &h) != 0)
		return -1;
	t = malloc(h.json_len + 1);
	if (t == NULL || fx_raw_recv_bytes(fd, t, h.json_len, timeout_ms) != 0) {
		free(t);
		return -1;
	}
	t[h.json_len] = '\0';
	if (payload != NULL && h.payload_len > 0 &&
	    ((pay = malloc(h.payload_len)) == NULL ||
	     fx_raw_recv_bytes(fd, pay, h.payload_len, timeout_ms) != 0)) {
		free(pay);
		free(t);
		return -1;
	}
	for (uint64_t left = payload != NULL ? 0 : h.payload_len; left > 0;) {
		size_t n = left < sizeof(drop) ? left : sizeof(drop);

		if (fx_raw_recv_bytes(fd, drop, n, timeout_ms) != 0)
			break;
		left -= n;
	}
	*text = t;
	if (payload != NULL) {
		*payload = pay;
		*payload_len = h.payload_len;
	}
	return 0;
}

cJSON *fx_raw_recv(int fd, int timeout_ms)
{
	char *text;
	cJSON *msg;

	if (fx_raw_recv_frame(fd, timeout_ms, &text, NULL, NULL) != 0)
		return NULL;
	msg = cJSON_Parse(text);
	free(text);
	return msg;
}

int fx_raw_closed(int fd, int timeout_ms)
{
	char buf[4096];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return 0;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			return 1;
	}
}

int fx_error_code(const cJSON *msg)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(msg, "type");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(msg, "code");

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "ERROR") != 0)
		return 0;
	return cJSON_IsNumber(code) ? code->valueint : -9999;
}

int fx_raw_ready(int fd)
{
	return fx_raw_ready_with(fd, "{\"type\":\"HELLO\",\"id\":1,\"version\":1}", NULL);
}

int fx_raw_ready_with(int fd, const char *hello, cJSON **hello_reply)
{
	cJSON *r;
	int ok;

	if (fx_raw_send(fd, hello, 0) != 0)
		return -1;
	r = fx_raw_recv(fd, 5000);
	ok = r != NULL && fx_error_code(r) == 0;
	if (hello_reply != NULL)
		*hello_reply = r;
	else
		cJSON_Delete(r);
	if (!ok || fx_raw_send(fd, "{\"type\":\"SESSION\",\"id\":2}", 0) != 0)
		return -1;
	r = fx_raw_recv(fd, 5000);
	ok = r != NULL && fx_error_code(r) == 0;
	cJSON_Delete(r);
	return ok ? 0 : -1;
}

void fx_pattern(void *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	uint8_t *p = buf;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		memcpy(p + i, &x, 4);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)(x >> (8 * (i & 3)));
}
