/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process servers with a counting backend; see servers.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "servers.h"

/* The runtime's table, every call passed through; ctx is the test_server. */
static const struct ctl_backend *inner(void)
{
	return rt_backend();
}

#define RT(ctx) (((struct test_server *)(ctx))->rt)

static void stall(void *ctx)
{
	int ms = atomic_load(&((struct test_server *)ctx)->stall_ms);
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	if (ms > 0)
		nanosleep(&ts, NULL);
}

static int w_caps(void *ctx, struct dp_caps *caps)
{
	return inner()->caps(RT(ctx), caps);
}

static int w_session_open(void *ctx, uint64_t id, void **session, char *err)
{
	return inner()->session_open(RT(ctx), id, session, err);
}

static void w_session_close(void *ctx, void *session)
{
	inner()->session_close(RT(ctx), session);
}

static int w_alloc(void *ctx, void *session, const struct dj_tensor_desc *desc, uint64_t *h,
		   char *err)
{
	return inner()->alloc(RT(ctx), session, desc, h, err);
}

static int w_describe(void *ctx, void *session, uint64_t h, struct dj_tensor_desc *desc, char *err)
{
	return inner()->describe(RT(ctx), session, h, desc, err);
}

static int w_free(void *ctx, void *session, uint64_t h, char *err)
{
	atomic_fetch_add(&((struct test_server *)ctx)->frees, 1);
	return inner()->free(RT(ctx), session, h, err);
}

static int w_write_begin(void *ctx, void *session, uint64_t h, struct ctl_tensor_io *io, char *err)
{
	atomic_fetch_add(&((struct test_server *)ctx)->uploads, 1);
	return inner()->write_begin(RT(ctx), session, h, io, err);
}

static int w_write_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t off,
			 const void *buf, size_t len, char *err)
{
	return inner()->write_chunk(RT(ctx), session, io, off, buf, len, err);
}

static void w_write_end(void *ctx, void *session, struct ctl_tensor_io *io, int status)
{
	inner()->write_end(RT(ctx), session, io, status);
}

static int w_read_begin(void *ctx, void *session, uint64_t h, struct ctl_tensor_io *io, char *err)
{
	stall(ctx);
	return inner()->read_begin(RT(ctx), session, h, io, err);
}

static int w_read_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t off,
			void *buf, size_t len, char *err)
{
	return inner()->read_chunk(RT(ctx), session, io, off, buf, len, err);
}

static void w_read_end(void *ctx, void *session, struct ctl_tensor_io *io)
{
	inner()->read_end(RT(ctx), session, io);
}

static int w_execute(void *ctx, void *session, const char *op, const uint64_t *in, int n_in,
		     const cJSON *attrs, uint64_t *out, struct dj_tensor_desc *desc, int *n_out,
		     char *err)
{
	stall(ctx);
	return inner()->execute(RT(ctx), session, op, in, n_in, attrs, out, desc, n_out, err);
}

static void w_stats(void *ctx, void *session, cJSON *obj)
{
	inner()->stats(RT(ctx), session, obj);
}

static int w_alloc_on(void *ctx, void *session, const struct dj_tensor_desc *desc,
		      const char *device, uint64_t *h, char *err)
{
	return inner()->alloc_on(RT(ctx), session, desc, device, h, err);
}

static int w_device_of(void *ctx, void *session, uint64_t h, char *device)
{
	return inner()->device_of(RT(ctx), session, h, device);
}

static int w_session_device(void *ctx, void *session, const char *want, char *device, char *err)
{
	return inner()->session_device(RT(ctx), session, want, device, err);
}

#define COUNTING_OPS \
	.caps = w_caps, .session_open = w_session_open, .session_close = w_session_close, \
	.alloc = w_alloc, .describe = w_describe, .free = w_free, \
	.write_begin = w_write_begin, .write_chunk = w_write_chunk, .write_end = w_write_end, \
	.read_begin = w_read_begin, .read_chunk = w_read_chunk, .read_end = w_read_end, \
	.execute = w_execute, .stats = w_stats

static const struct ctl_backend counting = {COUNTING_OPS};
/* A runtime of several devices: they are named, placed on, moved between. */
static const struct ctl_backend counting_devices = {
	COUNTING_OPS, .alloc_on = w_alloc_on, .device_of = w_device_of,
	.session_device = w_session_device,
};

int test_server_start(struct test_server *s)
{
	return test_server_start_on(s, "none");
}

int test_server_start_on(struct test_server *s, const char *gpu)
{
	struct rt_config rcfg = {.gpu = gpu, .session_limit = 256u << 20};
	struct ctl_server_config scfg;
	struct dj_client_options copts;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = rt_create(&rcfg, &s->rt);
	if (rc != 0)
		return rc;
	ctl_server_config_init(&scfg);
	scfg.port = 0;
	rc = ctl_server_create(&scfg, strcmp(gpu, "none") == 0 ? &counting : &counting_devices, s,
			       &s->srv);
	if (rc == 0)
		rc = ctl_server_start(s->srv);
	if (rc != 0)
		return rc;
	dj_client_options_init(&copts);
	copts.port = ctl_server_port(s->srv);
	copts.path = DJ_PATH_TCP;
	rc = dj_client_create(&copts, &s->cl);
	return rc != 0 ? rc : dj_connect(s->cl, &s->conn);
}

void test_server_stop(struct test_server *s)
{
	if (s->conn != NULL)
		dj_conn_close(s->conn);
	dj_client_destroy(s->cl);
	ctl_server_destroy(s->srv);
	rt_destroy(s->rt);
	memset(s, 0, sizeof(*s));
}

void test_server_kill(struct test_server *s)
{
	ctl_server_destroy(s->srv);
	rt_destroy(s->rt);
	s->srv = NULL;
	s->rt = NULL;
}

int test_server_tensors(struct test_server *s)
{
	char *json = NULL;
	cJSON *st;
	int n = -1;

	if (dj_ping(s->conn, NULL) != 0 || dj_stats(s->conn, &json) != 0)
		return -1;
	st = cJSON_Parse(json);
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "backend"), "session_tensors");

	if (cJSON_IsNumber(v))
		n = v->valueint;
	cJSON_Delete(st);
	free(json);
	return n;
}
