/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "djinn/common.h"
#include "mem_backend.h"
#include "ctl_wire.h"

struct tensor {
	struct tensor *next;
	uint64_t handle;
	struct mem_session *owner;
	struct dj_tensor_desc desc;
	uint64_t nbytes;
	char *data;
	int refs;                 /* the table + readers in progress */
};

struct mem_session {
	uint64_t id;
	uint64_t bytes;
};

#define MB_BUCKETS 4096 /* handles are sequential: one bucket each, mostly */

struct mem_backend {
	struct mem_backend_options o;
	pthread_mutex_t lock;
	struct tensor *buckets[MB_BUCKETS];
	uint64_t next;
	int live, sessions, allocated;
};

int mem_backend_create(const struct mem_backend_options *opts, struct mem_backend **mbp)
{
	struct mem_backend *mb = calloc(1, sizeof(*mb));

	if (mb == NULL)
		return -ENOMEM;
	if (opts != NULL)
		mb->o = *opts;
	pthread_mutex_init(&mb->lock, NULL);
	mb->next = 0x5eed0000;
	*mbp = mb;
	return 0;
}

void mem_backend_destroy(struct mem_backend *mb)
{
	if (mb == NULL)
		return;
	for (int b = 0; b < MB_BUCKETS; b++) {
		while (mb->buckets[b] != NULL) {
			struct tensor *t = mb->buckets[b];

			mb->buckets[b] = t->next;
			free(t->data);
			free(t);
		}
	}
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

static int counter_read(struct mem_backend *mb, const int *counter)
{
	int n;

	pthread_mutex_lock(&mb->lock);
	n = *counter;
	pthread_mutex_unlock(&mb->lock);
	return n;
}

int mem_backend_live(struct mem_backend *mb)
{
	return counter_read(mb, &mb->live);
}

int mem_backend_tensors(struct mem_backend *mb)
{
	return counter_read(mb, &mb->allocated);
}

int mem_backend_sessions(struct mem_backend *mb)
{
	return counter_read(mb, &mb->sessions);
}

static struct tensor **bucket(struct mem_backend *mb, uint64_t handle)
{
	return &mb->buckets[handle % MB_BUCKETS];
}

static void tensor_unref_locked(struct mem_backend *mb, struct tensor *t)
{
	if (--t->refs > 0)
		return;
	mb->allocated--;
	t->owner->bytes -= t->nbytes;
	free(t->data);
	free(t);
}

/* Find a live handle of session s and take a reference (lock held). */
static struct tensor *find_locked(struct mem_backend *mb, struct mem_session *s, uint64_t h,
				  char *err)
{
	for (struct tensor *t = *bucket(mb, h); t != NULL; t = t->next) {
		if (t->handle == h && t->owner == s) {
			t->refs++;
			return t;
		}
	}
	snprintf(err, CTL_ERRMSG_MAX, "no tensor 0x%llx in this session", (unsigned long long)h);
	return NULL;
}

static int mb_session_open(void *ctx, uint64_t id, void **session, char *err)
{
	struct mem_backend *mb = ctx;
	struct mem_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->id = id;
	*session = s;
	pthread_mutex_lock(&mb->lock);
	mb->sessions++;
	pthread_mutex_unlock(&mb->lock);
	return 0;
}

static void mb_session_close(void *ctx, void *session)
{
	struct mem_backend *mb = ctx;

	pthread_mutex_lock(&mb->lock);
	for (int b = 0; b < MB_BUCKETS; b++) {
		struct tensor **tp = &mb->buckets[b];

		while (*tp != NULL) {
			struct tensor *t = *tp;

			if (t->owner == session) {
				*tp = t->next;
				mb->live--;
				tensor_unref_locked(mb, t);
			} else {
				tp = &t->next;
			}
		}
	}
	mb->sessions--;
	pthread_mutex_unlock(&mb->lock);
	/* The server ends every read and write before closing a session. */
	free(session);
}

/* n bytes more charged to the session, within its limit. */
static int charge(struct mem_backend *mb, struct mem_session *s, uint64_t n, char *err)
{
	pthread_mutex_lock(&mb->lock);
	if (mb->o.session_bytes > 0 && s->bytes + n > mb->o.session_bytes) {
		pthread_mutex_unlock(&mb->lock);
		snprintf(err, CTL_ERRMSG_MAX, "session memory limit: %llu + %llu bytes > %llu",
			 (unsigned long long)s->bytes, (unsigned long long)n,
			 (unsigned long long)mb->o.session_bytes);
		return -DJ_ELIMIT;
	}
	s->bytes += n;
	pthread_mutex_unlock(&mb->lock);
	return 0;
}

/* Memory the server holds outside tensors (an EXECUTE's payload). */
static int mb_hold(void *ctx, void *session, int64_t bytes, char *err)
{
	struct mem_backend *mb = ctx;
	struct mem_session *s = session;

	if (bytes >= 0)
		return charge(mb, s, (uint64_t)bytes, err);
	pthread_mutex_lock(&mb->lock);
	s->bytes -= (uint64_t)-bytes;
	pthread_mutex_unlock(&mb->lock);
	return 0;
}

static int new_tensor(struct mem_backend *mb, struct mem_session *s,
		      const struct dj_tensor_desc *desc, struct tensor **out, char *err)
{
	struct tensor *t;
	uint64_t n;
	int rc;

	if (ctl_desc_nbytes(desc, &n) != 0)
		return -DJ_ESHAPE;
	rc = charge(mb, s, n, err);
	if (rc != 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (t != NULL)
		t->data = calloc(1, n > 0 ? n : 1); /* zeros, as the backend contract says */
	if (t == NULL || t->data == NULL) {
		free(t);
		pthread_mutex_lock(&mb->lock);
		s->bytes -= n;
		pthread_mutex_unlock(&mb->lock);
		return -ENOMEM;
	}
	t->desc = *desc;
	t->nbytes = n;
	t->owner = s;
	t->refs = 1;
	pthread_mutex_lock(&mb->lock);
	t->handle = ++mb->next;
	t->next = *bucket(mb, t->handle);
	*bucket(mb, t->handle) = t;
	mb->live++;
	mb->allocated++;
	pthread_mutex_unlock(&mb->lock);
	*out = t;
	return 0;
}

static int mb_alloc(void *ctx, void *session, const struct dj_tensor_desc *desc,
		    uint64_t *handle, char *err)
{
	struct tensor *t;
	int rc = new_tensor(ctx, session, desc, &t, err);

	if (rc == 0)
		*handle = t->handle;
	return rc;
}

static int mb_describe(void *ctx, void *session, uint64_t handle,
		       struct dj_tensor_desc *desc, char *err)
{
	struct mem_backend *mb = ctx;
	struct tensor *t;

	pthread_mutex_lock(&mb->lock);
	t = find_locked(mb, session, handle, err);
	if (t != NULL) {
		*desc = t->desc;
		t->refs--;
	}
	pthread_mutex_unlock(&mb->lock);
	return t != NULL ? 0 : -DJ_EHANDLE;
}

static int mb_free(void *ctx, void *session, uint64_t handle, char *err)
{
	struct mem_backend *mb = ctx;
	struct tensor **tp;
	int rc = -DJ_EHANDLE;

	pthread_mutex_lock(&mb->lock);
	for (tp = bucket(mb, handle); *tp != NULL; tp = &(*tp)->next) {
		struct tensor *t = *tp;

		if (t->handle == handle && t->owner == session) {
			*tp = t->next;
			mb->live--;
			tensor_unref_locked(mb, t);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&mb->lock);
	if (rc != 0)
		snprintf(err, CTL_ERRMSG_MAX, "no tensor 0x%llx in this session",
			 (unsigned long long)handle);
	return rc;
}

static int io_begin(void *ctx, void *session, uint64_t handle, struct ctl_tensor_io *io, char *err)
{
	struct mem_backend *mb = ctx;
	struct tensor *t;

	pthread_mutex_lock(&mb->lock);
	t = find_locked(mb, session, handle, err);
	pthread_mutex_unlock(&mb->lock);
	if (t == NULL)
		return -DJ_EHANDLE;
	io->host = mb->o.chunked ? NULL : t->data;
	io->dp_addr = t->data;
	io->mem = DJ_MEM_HOST;
	io->nbytes = t->nbytes;
	io->token = t;
	return 0;
}

static void io_end(void *ctx, void *session, struct ctl_tensor_io *io, int status)
{
	struct mem_backend *mb = ctx;

	pthread_mutex_lock(&mb->lock);
	tensor_unref_locked(mb, io->token);
	pthread_mutex_unlock(&mb->lock);
}

static int mb_write_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t off,
			  const void *buf, size_t len, char *err)
{
	struct tensor *t = io->token;

	if (off + len > t->nbytes)
		return -EMSGSIZE;
	memcpy(t->data + off, buf, len);
	return 0;
}

static int mb_read_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t off,
			 void *buf, size_t len, char *err)
{
	struct tensor *t = io->token;

	if (off + len > t->nbytes)
		return -EMSGSIZE;
	memcpy(buf, t->data + off, len);
	return 0;
}

static void mb_read_end(void *ctx, void *session, struct ctl_tensor_io *io)
{
	io_end(ctx, session, io, 0);
}

/* A fleet move's arrival: the tensor changes session and handle. */
static int mb_adopt(void *ctx, void *from, uint64_t handle, void *to, uint64_t *new_handle,
		    char *err)
{
	struct mem_backend *mb = ctx;
	struct mem_session *src = from, *dst = to;
	struct tensor **tp, *t = NULL;

	pthread_mutex_lock(&mb->lock);
	for (tp = bucket(mb, handle); *tp != NULL; tp = &(*tp)->next) {
		if ((*tp)->handle == handle && (*tp)->owner == src) {
			t = *tp;
			*tp = t->next;
			break;
		}
	}
	if (t != NULL) {
		src->bytes -= t->nbytes;
		dst->bytes += t->nbytes;
		t->owner = dst;
		t->handle = mb->next++;
		t->next = *bucket(mb, t->handle);
		*bucket(mb, t->handle) = t;
		*new_handle = t->handle;
	}
	pthread_mutex_unlock(&mb->lock);
	if (t == NULL)
		snprintf(err, CTL_ERRMSG_MAX, "no tensor 0x%llx in this session",
			 (unsigned long long)handle);
	return t != NULL ? 0 : -DJ_EHANDLE;
}

static double attr_num(const cJSON *attrs, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(attrs, key);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Outputs: same description as input 0, values f(inputs). */
static int elementwise(struct mem_backend *mb, struct mem_session *s, const char *op,
		       struct tensor **in, int n_in, const cJSON *attrs, struct tensor **out,
		       char *err)
{
	int rc = new_tensor(mb, s, &in[0]->desc, out, err);
	float *o, *a, *b;
	double factor = attr_num(attrs, "factor", 1.0);

	if (rc != 0)
		return rc;
	o = (float *)(*out)->data;
	a = (float *)in[0]->data;
	b = n_in > 1 ? (float *)in[1]->data : NULL;
	for (uint64_t i = 0; i < in[0]->nbytes / 4; i++)
		o[i] = strcmp(op, "add") == 0 ? a[i] + b[i] : (float)(a[i] * factor);
	if (strcmp(op, "add") != 0 && strcmp(op, "scale") != 0)
		memcpy(o, a, in[0]->nbytes);
	return 0;
}

static int check_args(const char *op, struct tensor **in, int n_in, char *err)
{
	int want = strcmp(op, "add") == 0 || strcmp(op, "iadd") == 0 ? 2 : 1;

	if (n_in != want) {
		snprintf(err, CTL_ERRMSG_MAX, "%s takes %d inputs, got %d", op, want, n_in);
		return -EINVAL;
	}
	for (int i = 0; i < n_in; i++) {
		if (in[i]->desc.dtype != DJ_DTYPE_FLOAT32 && strcmp(op, "sleep") != 0 &&
		    strcmp(op, "dup") != 0) {
			snprintf(err, CTL_ERRMSG_MAX, "%s: float32 only", op);
			return -DJ_EDTYPE;
		}
		if (i > 0 && in[i]->nbytes != in[0]->nbytes) {
			snprintf(err, CTL_ERRMSG_MAX, "%s: shapes differ", op);
			return -DJ_ESHAPE;
		}
	}
	return 0;
}

static int mb_execute(void *ctx, void *session, const char *op, const uint64_t *inputs,
		      int n_in, const cJSON *attrs, uint64_t *outputs,
		      struct dj_tensor_desc *out_desc, int *n_out, char *err)
{
	static const char *const known[] = {"add", "scale", "sleep", "dup", "iadd", NULL};
	struct mem_backend *mb = ctx;
	struct tensor *in[DJ_MAX_OP_ARGS] = {0}, *out[2] = {0};
	int rc = -DJ_EUNKNOWN_OP, got = 0, i;

	for (i = 0; known[i] != NULL && strcmp(known[i], op) != 0; i++)
		;
	if (known[i] == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "unknown operation '%.64s'", op);
		return rc;
	}
	pthread_mutex_lock(&mb->lock);
	for (got = 0; got < n_in; got++)
		if ((in[got] = find_locked(mb, session, inputs[got], err)) == NULL)
			break;
	pthread_mutex_unlock(&mb->lock);
	rc = got == n_in ? check_args(op, in, n_in, err) : -DJ_EHANDLE;
	if (rc == 0 && strcmp(op, "sleep") == 0) {
		long ms = (long)attr_num(attrs, "ms", 0);
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	if (rc == 0 && strcmp(op, "iadd") == 0) {
		/* In place: the result is input 0 itself, as slice_write's. */
		float *a = (float *)in[0]->data, *b = (float *)in[1]->data;

		for (uint64_t k = 0; k < in[0]->nbytes / 4; k++)
			a[k] += b[k];
		outputs[0] = in[0]->handle;
		out_desc[0] = in[0]->desc;
		*n_out = 1;
		goto unref;
	}
	if (rc == 0)
		rc = elementwise(mb, session, op, in, n_in, attrs, &out[0], err);
	*n_out = 0;
	if (rc == 0 && strcmp(op, "dup") == 0 &&
	    elementwise(mb, session, op, in, n_in, attrs, &out[1], err) == 0)
		*n_out = 1;
	if (rc == 0) {
		for (i = 0; i <= *n_out; i++) {
			outputs[i] = out[i]->handle;
			out_desc[i] = out[i]->desc;
		}
		(*n_out)++;
	}
unref:
	pthread_mutex_lock(&mb->lock);
	for (i = 0; i < got; i++)
		tensor_unref_locked(mb, in[i]);
	pthread_mutex_unlock(&mb->lock);
	return rc;
}

static int mb_caps(void *ctx, struct dp_caps *caps)
{
	static const char *const ops[] = {"add", "scale", "sleep", "dup"};

	caps->dtypes = 1u << DJ_DTYPE_FLOAT32;
	for (caps->n_ops = 0; caps->n_ops < 4; caps->n_ops++)
		snprintf(caps->ops[caps->n_ops], DP_OP_NAME_MAX, "%s", ops[caps->n_ops]);
	return 0;
}

static void mb_stats(void *ctx, void *session, cJSON *obj)
{
	struct mem_backend *mb = ctx;
	struct mem_session *s = session;

	pthread_mutex_lock(&mb->lock);
	cJSON_AddNumberToObject(obj, "bytes", (double)s->bytes);
	pthread_mutex_unlock(&mb->lock);
}

/* Elementwise ops on at most a page of floats take well under a
 * microsecond: the server may run them on its connection thread. "sleep"
 * never (it blocks by design). */
#define MB_INLINE_BYTES 4096

static int mb_execute_inline(void *ctx, void *session, const char *op, const uint64_t *inputs,
			     int n_in)
{
	struct mem_backend *mb = ctx;
	uint64_t bytes = 0;
	int known = 1;

	if (strcmp(op, "sleep") == 0 || mb->o.no_inline)
		return 0;
	pthread_mutex_lock(&mb->lock);
	for (int i = 0; i < n_in && known; i++) {
		char err[CTL_ERRMSG_MAX];
		struct tensor *t = find_locked(mb, session, inputs[i], err);

		known = t != NULL;
		if (known) {
			bytes += t->nbytes;
			tensor_unref_locked(mb, t);
		}
	}
	pthread_mutex_unlock(&mb->lock);
	return known && bytes <= MB_INLINE_BYTES;
}

static const struct ctl_backend ops = {
	.caps = mb_caps,
	.session_open = mb_session_open,
	.session_close = mb_session_close,
	.alloc = mb_alloc,
	.describe = mb_describe,
	.free = mb_free,
	.write_begin = io_begin,
	.write_chunk = mb_write_chunk,
	.write_end = io_end,
	.read_begin = io_begin,
	.read_chunk = mb_read_chunk,
	.read_end = mb_read_end,
	.execute = mb_execute,
	.execute_inline = mb_execute_inline,
	.stats = mb_stats,
	.adopt = mb_adopt,
	.hold = mb_hold,
};

const struct ctl_backend *mem_backend_ops(void)
{
	return &ops;
}
