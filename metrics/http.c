/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GET /metrics over HTTP with libmicrohttpd: one internal polling thread of
 * its own (never a control or data-plane thread), a few connections at
 * most, every scrape collected fresh from the registry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/djc.h"
#include "metrics/metrics.h"

#ifdef DJ_HAVE_MICROHTTPD
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>

#define TAG "metrics"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MAX_CONNECTIONS 16
#define CONNECTION_TIMEOUT_S 10

struct mx_http {
	struct MHD_Daemon *daemon;
	struct mx_registry *registry;
	uint16_t port;
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status,
			      const char *type, char *body, size_t len, int owned)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (resp == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	static char index[] = "Djinn metrics: GET /metrics (Prometheus text format)\n";
	static char not_found[] = "not found: GET /metrics\n";
	static char bad_method[] = "only GET and HEAD\n";
	static char failed[] = "collecting the metrics failed\n";
	struct mx_http *h = cls;
	char *text;
	size_t len;
	int rc;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
			      strlen(bad_method), 0);
	if (strcmp(url, "/") == 0)
		return answer(conn, MHD_HTTP_OK, "text/plain", index, strlen(index), 0);
	if (strcmp(url, "/metrics") != 0)
		return answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			      strlen(not_found), 0);
	rc = mx_registry_collect(h->registry, &text, &len);
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, TAG, "collecting the metrics: %s", dj_strerror(rc));
		return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", failed,
			      strlen(failed), 0);
	}
	return answer(conn, MHD_HTTP_OK, CONTENT_TYPE, text, len, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	djc_vlog(DJ_LOG_WARN, TAG, fmt, ap);
}

int mx_http_start(struct mx_registry *r, const char *addr, uint16_t port, struct mx_http **out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	const union MHD_DaemonInfo *info;
	struct mx_http *h;

	if (r == NULL || addr == NULL || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->registry = r;
	errno = 0;
	h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port,
				     NULL, NULL, on_request, h,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
				     MHD_OPTION_END);
	if (h->daemon == NULL) {
		int rc = errno != 0 ? -errno : -EADDRINUSE;

		free(h);
		return rc;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : port;
	*out = h;
	return 0;
}

uint16_t mx_http_port(const struct mx_http *h)
{
	return h->port;
}

void mx_http_stop(struct mx_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->daemon);
	free(h);
}

#else /* no libmicrohttpd: the rest of the module still works */

struct mx_http {
	uint16_t port;
};

int mx_http_start(struct mx_registry *r, const char *addr, uint16_t port, struct mx_http **out)
{
	return -ENOTSUP;
}

uint16_t mx_http_port(const struct mx_http *h)
{
	return h->port;
}

void mx_http_stop(struct mx_http *h)
{
}

#endif
