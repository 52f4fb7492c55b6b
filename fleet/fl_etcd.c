/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * etcd v3 through its JSON gateway (grpc-gateway: POST /v3/kv/put,
 * /v3/kv/range, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke),
 * with libcurl. Keys and values travel base64-encoded, 64-bit integers as
 * decimal strings. Chosen over gRPC because it needs only libcurl and cJSON
 * (both in Debian), no code generation, and every request is one short
 * HTTP exchange with its own timeout (docs/FLEET.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/djc.h"
#include "fl.h"

#define TAG "fleet-etcd"

struct fl_etcd {
	CURL *curl;
	char *url;
	uint32_t timeout_ms;
	char error[FL_WHY_MAX];
	char *buf;                 /* the response being read */
	size_t len, cap;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

/* ---- base64 ------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void fl_base64_encode(const void *in, size_t len, char *out)
{
	const uint8_t *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	const char *at = c != '\0' ? strchr(b64, c) : NULL;

	return at != NULL ? (int)(at - b64) : -1;
}

int fl_base64_decode(const char *in, void *out, size_t cap)
{
	size_t n = strlen(in), o = 0;
	uint8_t *p = out;

	if (n % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_value(in[i + k]);
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (v[k] < 0 || pad > 0) {
				return -EINVAL;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];

		if (o + 3 - (size_t)pad > cap)
			return -EINVAL;
		p[o++] = (uint8_t)(w >> 16);
		if (pad < 2)
			p[o++] = (uint8_t)(w >> 8);
		if (pad < 1)
			p[o++] = (uint8_t)w;
	}
	return (int)o;
}

/* A malloc'ed NUL-terminated copy of a base64 text; NULL where invalid. */
static char *base64_text(const char *in)
{
	size_t cap = strlen(in) / 4 * 3 + 1;
	char *out = malloc(cap);
	int n = out != NULL ? fl_base64_decode(in, out, cap - 1) : -ENOMEM;

	if (n < 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

static cJSON *add_base64(cJSON *obj, const char *key, const char *text)
{
	size_t len = strlen(text);
	char *enc = malloc(4 * ((len + 2) / 3) + 1);
	cJSON *item = NULL;

	if (enc != NULL) {
		fl_base64_encode(text, len, enc);
		item = cJSON_AddStringToObject(obj, key, enc);
		free(enc);
	}
	return item;
}

/* ---- requests ----------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct fl_etcd *e = arg;
	size_t add = size * n;

	if (e->len + add + 1 > e->cap) {
		size_t cap = (e->len + add + 1) * 2;
		char *b = realloc(e->buf, cap);

		if (b == NULL)
			return 0; /* curl fails the transfer */
		e->buf = b;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, data, add);
	e->len += add;
	e->buf[e->len] = '\0';
	return add;
}

int fl_etcd_create(const char *url, uint32_t timeout_ms, struct fl_etcd **etcd)
{
	struct fl_etcd *e;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != 0)
		return curl_init_rc;
	if (url == NULL || strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->url = strdup(url);
	e->curl = curl_easy_init();
	e->timeout_ms = timeout_ms != 0 ? timeout_ms : 2000;
	if (e->url == NULL || e->curl == NULL) {
		fl_etcd_destroy(e);
		return -ENOMEM;
	}
	/* A trailing slash would double in the request paths. */
	size_t n = strlen(e->url);

	while (n > 7 && e->url[n - 1] == '/')
		e->url[--n] = '\0';
	*etcd = e;
	return 0;
}

void fl_etcd_destroy(struct fl_etcd *e)
{
	if (e == NULL)
		return;
	if (e->curl != NULL)
		curl_easy_cleanup(e->curl);
	free(e->url);
	free(e->buf);
	free(e);
}

const char *fl_etcd_error(const struct fl_etcd *e)
{
	return e->error;
}

/* POST body (taken) to path; *reply receives the parsed answer. */
static int post(struct fl_etcd *e, const char *path, cJSON *body, cJSON **reply)
{
	char url[256];
	char *text = cJSON_PrintUnformatted(body);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	long status = 0;
	CURLcode cc;
	int rc = 0;

	cJSON_Delete(body);
	*reply = NULL;
	if (text == NULL || hdr == NULL) {
		free(text);
		curl_slist_free_all(hdr);
		snprintf(e->error, sizeof(e->error), "out of memory");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", e->url, path);
	e->len = 0;
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(e->curl);
	curl_slist_free_all(hdr);
	free(text);
	if (cc != CURLE_OK) {
		snprintf(e->error, sizeof(e->error), "%s: %s", e->url, curl_easy_strerror(cc));
		return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	*reply = e->len > 0 ? cJSON_Parse(e->buf) : NULL;
	if (status != 200) {
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(*reply, "message");

		if (!cJSON_IsString(msg))
			msg = cJSON_GetObjectItemCaseSensitive(*reply, "error");
		snprintf(e->error, sizeof(e->error), "%s: HTTP %ld: %.100s", path, status,
			 cJSON_IsString(msg) ? msg->valuestring : "no message");
		rc = status == 404 && cJSON_IsString(msg) &&
		     strstr(msg->valuestring, "not found") != NULL ? -ENOENT : -EPROTO;
	} else if (*reply == NULL) {
		snprintf(e->error, sizeof(e->error), "%s: answer is not JSON", path);
		rc = -EPROTO;
	}
	if (rc != 0) {
		cJSON_Delete(*reply);
		*reply = NULL;
	}
	return rc;
}

/* An int64 the gateway writes as a decimal string (or, rarely, a number). */
static int64_t json_i64(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsString(it))
		return strtoll(it->valuestring, NULL, 10);
	return cJSON_IsNumber(it) ? (int64_t)it->valuedouble : 0;
}

static cJSON *add_i64(cJSON *obj, const char *key, int64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%" PRId64, v);
	return cJSON_AddStringToObject(obj, key, text);
}

int fl_etcd_lease_grant(struct fl_etcd *e, int64_t ttl_s, int64_t *lease)
{
	cJSON *body = cJSON_CreateObject(), *reply;
	int rc;

	add_i64(body, "TTL", ttl_s);
	rc = post(e, "/v3/lease/grant", body, &reply);
	if (rc == 0) {
		*lease = json_i64(reply, "ID");
		if (*lease == 0) {
			snprintf(e->error, sizeof(e->error), "lease grant without an ID");
			rc = -EPROTO;
		}
	}
	cJSON_Delete(reply);
	return rc;
}

/* POST {"ID": lease} to path. */
static int lease_call(struct fl_etcd *e, const char *path, int64_t lease, cJSON **reply)
{
	cJSON *body = cJSON_CreateObject();

	if (body == NULL || add_i64(body, "ID", lease) == NULL) {
		cJSON_Delete(body);
		return -ENOMEM;
	}
	return post(e, path, body, reply);
}

int fl_etcd_lease_keepalive(struct fl_etcd *e, int64_t lease, int64_t *ttl_s)
{
	cJSON *reply;
	int rc = lease_call(e, "/v3/lease/keepalive", lease, &reply);

	if (rc == 0) {
		/* A lease etcd no longer has comes back with no TTL (0). */
		*ttl_s = json_i64(cJSON_GetObjectItemCaseSensitive(reply, "result"), "TTL");
		if (*ttl_s <= 0) {
			snprintf(e->error, sizeof(e->error), "lease %" PRId64 " expired", lease);
			rc = -ENOENT;
		}
	}
	cJSON_Delete(reply);
	return rc;
}

int fl_etcd_lease_revoke(struct fl_etcd *e, int64_t lease)
{
	cJSON *reply;
	int rc = lease_call(e, "/v3/lease/revoke", lease, &reply);

	cJSON_Delete(reply);
	return rc;
}

int fl_etcd_put(struct fl_etcd *e, const char *key, const char *value, int64_t lease)
{
	cJSON *body = cJSON_CreateObject(), *reply;
	int rc;

	if (body == NULL || add_base64(body, "key", key) == NULL ||
	    add_base64(body, "value", value) == NULL ||
	    (lease != 0 && add_i64(body, "lease", lease) == NULL)) {
		cJSON_Delete(body);
		return -ENOMEM;
	}
	rc = post(e, "/v3/kv/put", body, &reply);
	cJSON_Delete(reply);
	return rc;
}

/* The end of the range of every key that starts with prefix: prefix with
 * its last byte incremented (etcd's "prefix" convention). */
static int prefix_end(const char *prefix, char *end, size_t cap)
{
	size_t n = strlen(prefix);

	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(end, prefix, n + 1);
	while (n > 0 && (uint8_t)end[n - 1] == 0xff)
		end[--n] = '\0';
	if (n == 0)
		return -EINVAL;
	end[n - 1] = (char)((uint8_t)end[n - 1] + 1);
	return 0;
}

int fl_etcd_range_prefix(struct fl_etcd *e, const char *prefix,
			 void (*cb)(const char *key, const char *value, void *arg), void *arg,
			 int64_t *revision)
{
	cJSON *body = cJSON_CreateObject(), *reply;
	const cJSON *kv;
	char end[256];
	int rc = prefix_end(prefix, end, sizeof(end));

	if (rc != 0 || body == NULL || add_base64(body, "key", prefix) == NULL ||
	    add_base64(body, "range_end", end) == NULL) {
		cJSON_Delete(body);
		return rc != 0 ? rc : -ENOMEM;
	}
	rc = post(e, "/v3/kv/range", body, &reply);
	if (rc != 0)
		return rc;
	*revision = json_i64(cJSON_GetObjectItemCaseSensitive(reply, "header"), "revision");
	cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(reply, "kvs")) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
		char *key = cJSON_IsString(k) ? base64_text(k->valuestring) : NULL;
		char *value = cJSON_IsString(v) ? base64_text(v->valuestring) : NULL;

		if (key != NULL && value != NULL)
			cb(key, value, arg);
		free(key);
		free(value);
	}
	cJSON_Delete(reply);
	return 0;
}
