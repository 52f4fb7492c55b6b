/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pre-shared token and HMAC-SHA256 challenge-response.
 *
 * Handshake: the client's HELLO carries nonce_c; the server answers with a
 * CHALLENGE carrying nonce_s; the client proves the token with
 * HMAC(token, client label | nonce_s | nonce_c); the server proves it back
 * with HMAC(token, server label | nonce_c | nonce_s) in its HELLO reply, so a
 * client never talks to a server that merely accepts anything. The token
 * itself never crosses the wire.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "djinn/common.h"
#include "controlplane/ctl.h"
#include "ctl_wire.h"

#ifdef DJ_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#endif

int ctl_auth_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#ifdef DJ_HAVE_OPENSSL
int ctl_auth_mac(const char *token, const char *label, const uint8_t first[CTL_NONCE_LEN],
		const uint8_t second[CTL_NONCE_LEN], uint8_t mac[CTL_MAC_LEN])
{
	uint8_t msg[64 + 2 * CTL_NONCE_LEN];
	size_t llen = strlen(label);
	unsigned int mlen = CTL_MAC_LEN;

	if (llen > 64)
		return -EINVAL;
	memcpy(msg, label, llen);
	memcpy(msg + llen, first, CTL_NONCE_LEN);
	memcpy(msg + llen + CTL_NONCE_LEN, second, CTL_NONCE_LEN);
	if (HMAC(EVP_sha256(), token, (int)strlen(token), msg, llen + 2 * CTL_NONCE_LEN,
		 mac, &mlen) == NULL || mlen != CTL_MAC_LEN)
		return -EIO;
	return 0;
}

int ctl_auth_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
#else
int ctl_auth_mac(const char *token, const char *label, const uint8_t first[CTL_NONCE_LEN],
		const uint8_t second[CTL_NONCE_LEN], uint8_t mac[CTL_MAC_LEN])
{
	return -ENOTSUP;
}

int ctl_auth_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}
#endif

/* Tokens are at most this long: a longer file is refused, not cut (a cut
 * token would fail AUTH with nothing to say why). */
#define TOKEN_MAX 4095

static int read_token_file(const char *path, char **token)
{
	char buf[TOKEN_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n > TOKEN_MAX && !(n == TOKEN_MAX + 1 && buf[TOKEN_MAX] == '\n'))
		return -E2BIG;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0)
		return -ENODATA;
	*token = strdup(buf);
	return *token != NULL ? 0 : -ENOMEM;
}

int dj_token_load(const char *path, char **token)
{
	const char *env = getenv("DJINN_TOKEN");

	if (path != NULL)
		return read_token_file(path, token);
	if (env != NULL && env[0] != '\0') {
		*token = strdup(env);
		return *token != NULL ? 0 : -ENOMEM;
	}
	env = getenv("DJINN_TOKEN_FILE");
	if (env != NULL && env[0] != '\0')
		return read_token_file(env, token);
	return -ENOENT;
}

static const char *const path_names[] = {
	[DJ_PATH_AUTO] = "auto",
	[DJ_PATH_TCP] = "tcp",
	[DJ_PATH_DPDK] = "dpdk",
};

const char *dj_path_name(enum dj_path path)
{
	return (unsigned)path <= DJ_PATH_DPDK ? path_names[path] : "invalid";
}

int dj_path_parse(const char *name, enum dj_path *path)
{
	for (unsigned i = 0; name != NULL && i <= DJ_PATH_DPDK; i++) {
		if (strcmp(name, path_names[i]) == 0) {
			*path = (enum dj_path)i;
			return 0;
		}
	}
	return -EINVAL;
}

int ctl_path_decide(enum dj_path want, int local_dpdk, int peer_dpdk, int probe_rc,
		    const char *refused, enum dj_path *chosen, char *reason, size_t reason_len)
{
	const char *missing = !local_dpdk ? "this side has no DPDK data path" :
			      !peer_dpdk ? "the peer has no DPDK data path" : NULL;

	if (want == DJ_PATH_TCP) {
		snprintf(reason, reason_len, "tcp forced by the client");
		*chosen = DJ_PATH_TCP;
		return 0;
	}
	if (missing == NULL && probe_rc == 0) {
		snprintf(reason, reason_len, "both sides have DPDK and the probe succeeded%s",
			 want == DJ_PATH_DPDK ? " (dpdk forced)" : "");
		*chosen = DJ_PATH_DPDK;
		return 0;
	}
	if (missing == NULL && refused != NULL)
		snprintf(reason, reason_len, "%s", refused);
	else if (missing == NULL)
		snprintf(reason, reason_len, "data-plane probe failed: %s", dj_strerror(probe_rc));
	else
		snprintf(reason, reason_len, "%s", missing);
	if (want == DJ_PATH_DPDK)
		return -DJ_ENODPDK;
	*chosen = DJ_PATH_TCP;
	return 0;
}
