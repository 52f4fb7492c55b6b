/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Resident tensors. One mutex guards the maps and the accounting; it is held
 * only for table work, never across byte copies or backend allocation/free
 * (cudaMalloc/cudaFree can take milliseconds).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "djinn/common.h"
#include "tensor/store.h"
#include "id_map.h"

#define DEFAULT_MAX_TENSORS (1u << 20)
#define FEISTEL_ROUNDS 4

struct session;

struct tn_store_ref {
	struct id_node node;          /* id = handle */
	struct session *owner;
	struct tn_store_ref *prev, *next; /* the owner's live tensors */
	struct dj_tensor_desc desc;
	void *data;
	size_t bytes;
	int dev;                      /* index of its backend */
	uint32_t refs;                /* 1 for the handle table + acquires */
	int live;                     /* still reachable through its handle */
};

struct session {
	struct id_node node;          /* id = session id */
	struct tn_store_ref *tensors; /* live ones, doubly linked */
	uint64_t limit, bytes, peak, live_tensors, refused;
	uint64_t charged;             /* tensors still holding memory */
	uint64_t held;                /* bytes of tn_store_hold(), in bytes too */
	int open;
};

/* One device's share of the store (lock held). */
struct device_usage {
	uint64_t bytes, peak, tensors, refused;
};

struct tn_store {
	pthread_mutex_t lock;
	const struct tn_store_backend *backends[TN_STORE_MAX_DEVICES];
	int n_devices;
	struct device_usage dev[TN_STORE_MAX_DEVICES];
	struct tn_id_map handles, sessions;
	uint64_t key[2];            /* SipHash key of the id permutation */
	uint64_t counter;
	uint64_t total_limit, session_limit, max_tensors;
	uint64_t bytes, peak, refused;
};

/* ---- host backend ---- */

#define HOST_ALIGN 64

/*
 * Zeros the calloc way: calloc knows which memory is fresh from the kernel
 * (an mmap'ed chunk, a new heap top) and clears only what is reused, so a
 * large tensor costs no zeroing pass at all. calloc has no alignment
 * argument: both kinds over-allocate by HOST_ALIGN and keep the pointer to
 * free just below the aligned one.
 */
static int host_alloc(void *ctx, size_t bytes, int zero, void **ptr)
{
	size_t total = bytes + HOST_ALIGN;
	char *raw = total > bytes ? (zero ? calloc(1, total) : malloc(total)) : NULL;
	char *aligned;

	if (raw == NULL)
		return -ENOMEM;
	aligned = (char *)(((uintptr_t)raw + sizeof(void *) + HOST_ALIGN - 1) &
			   ~(uintptr_t)(HOST_ALIGN - 1));
	((void **)aligned)[-1] = raw;
	*ptr = aligned;
	return 0;
}

static void host_free(void *ctx, void *ptr)
{
	free(((void **)ptr)[-1]);
}

static int host_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return 0;
}

static const struct tn_store_backend host_backend = {
	.name = "host",
	.mem = DJ_MEM_HOST,
	.alloc = host_alloc,
	.free = host_free,
	.upload = host_copy,
	.download = host_copy,
};

const struct tn_store_backend *tn_store_host_backend(void)
{
	return &host_backend;
}

/*
 * ---- ids ----
 * A 4-round Feistel network whose round function is SipHash-2-4 under a
 * random key: a pseudorandom permutation of a 64-bit counter (Luby-Rackoff),
 * so ids are unique for the store's life and reveal nothing about each other.
 */

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/* SipHash-2-4 of one 8-byte message. */
static uint64_t siphash64(const uint64_t key[2], uint64_t m)
{
	uint64_t v[4] = {key[0] ^ 0x736f6d6570736575ULL, key[1] ^ 0x646f72616e646f6dULL,
			 key[0] ^ 0x6c7967656e657261ULL, key[1] ^ 0x7465646279746573ULL};
	const uint64_t tail = (uint64_t)8 << 56; /* the length block */

	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
	v[3] ^= tail;
	sip_round(v);
	sip_round(v);
	v[0] ^= tail;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint64_t permute(const uint64_t key[2], uint64_t x)
{
	uint32_t left = (uint32_t)(x >> 32), right = (uint32_t)x;

	for (uint64_t round = 0; round < FEISTEL_ROUNDS; round++) {
		uint32_t t = left ^ (uint32_t)siphash64(key, round << 32 | right);

		left = right;
		right = t;
	}
	return ((uint64_t)left << 32) | right;
}

static uint64_t next_id(struct tn_store *s)
{
	uint64_t id;

	do
		id = permute(s->key, ++s->counter);
	while (id == 0);
	return id;
}

/* ---- create/destroy ---- */

static int backend_valid(const struct tn_store_backend *b)
{
	return b != NULL && b->alloc && b->free && b->upload && b->download;
}

int tn_store_create(const struct tn_store_config *config, struct tn_store **out)
{
	const struct tn_store_backend *one = config && config->backend ? config->backend
									: &host_backend;
	const struct tn_store_backend *const *list = &one;
	int n = 1;
	struct tn_store *s;

	if (config != NULL && config->n_backends > 0) {
		list = config->backends;
		n = config->n_backends;
	}
	if (out == NULL || list == NULL || n > TN_STORE_MAX_DEVICES)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (!backend_valid(list[i]))
			return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	if (getrandom(s->key, sizeof(s->key), 0) != (ssize_t)sizeof(s->key)) {
		free(s);
		return errno ? -errno : -EIO;
	}
	if (tn_id_map_init(&s->handles, 1024) != 0 || tn_id_map_init(&s->sessions, 64) != 0) {
		tn_id_map_fini(&s->handles);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < n; i++)
		s->backends[i] = list[i];
	s->n_devices = n;
	if (config != NULL) {
		s->total_limit = config->total_limit;
		s->session_limit = config->session_limit;
		s->max_tensors = config->session_max_tensors;
	}
	if (s->max_tensors == 0)
		s->max_tensors = DEFAULT_MAX_TENSORS;
	*out = s;
	return 0;
}

static void destroy_tensor(struct tn_store *s, struct tn_store_ref *t)
{
	const struct tn_store_backend *b = s->backends[t->dev];

	if (t->data != NULL)
		b->free(b->ctx, t->data);
	free(t);
}

void tn_store_destroy(struct tn_store *s)
{
	struct id_node *node;

	if (s == NULL)
		return;
	while ((node = tn_id_map_pop(&s->handles)) != NULL)
		destroy_tensor(s, (struct tn_store_ref *)node);
	while ((node = tn_id_map_pop(&s->sessions)) != NULL)
		free(node);
	tn_id_map_fini(&s->handles);
	tn_id_map_fini(&s->sessions);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- sessions ---- */

static struct session *find_session(struct tn_store *s, uint64_t id)
{
	struct id_node *node = tn_id_map_find(&s->sessions, id);

	return (struct session *)node; /* node is the first member */
}

int tn_store_session_open(struct tn_store *s, uint64_t limit, uint64_t *id)
{
	struct session *sess = calloc(1, sizeof(*sess));

	if (sess == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	sess->node.id = next_id(s);
	sess->limit = limit ? limit : s->session_limit;
	sess->open = 1;
	tn_id_map_insert(&s->sessions, &sess->node);
	*id = sess->node.id;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Unlink a live tensor from its handle and session list (lock held). */
static void unlink_tensor(struct tn_store *s, struct tn_store_ref *t)
{
	struct session *sess = t->owner;

	tn_id_map_remove(&s->handles, t->node.id);
	if (t->prev)
		t->prev->next = t->next;
	else
		sess->tensors = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->live = 0;
	sess->live_tensors--;
	s->dev[t->dev].tensors--;
}

/*
 * Drop one reference (lock held). At zero the bytes are uncharged and the
 * tensor is returned for destroy_tensor() outside the lock; a closed
 * session goes with its last tensor.
 */
static struct tn_store_ref *put_ref(struct tn_store *s, struct tn_store_ref *t)
{
	if (--t->refs > 0)
		return NULL;
	struct session *sess = t->owner;

	sess->bytes -= t->bytes;
	s->bytes -= t->bytes;
	s->dev[t->dev].bytes -= t->bytes;
	if (--sess->charged == 0 && !sess->open)
		free(sess);
	return t;
}

int tn_store_session_close(struct tn_store *s, uint64_t id)
{
	struct tn_store_ref *dead = NULL;

	pthread_mutex_lock(&s->lock);
	struct session *sess = find_session(s, id);

	if (sess == NULL) {
		pthread_mutex_unlock(&s->lock);
		return -DJ_EHANDLE;
	}
	tn_id_map_remove(&s->sessions, id);
	sess->open = 0;
	sess->bytes -= sess->held;
	s->bytes -= sess->held;
	sess->held = 0;
	/* Keep the session alive while we walk its list. */
	sess->charged++;
	while (sess->tensors != NULL) {
		struct tn_store_ref *t = sess->tensors;

		unlink_tensor(s, t);
		if (put_ref(s, t) != NULL) {
			t->next = dead; /* reuse the list link for the free list */
			dead = t;
		}
	}
	if (--sess->charged == 0)
		free(sess);
	pthread_mutex_unlock(&s->lock);
	while (dead != NULL) {
		struct tn_store_ref *next = dead->next;

		destroy_tensor(s, dead);
		dead = next;
	}
	return 0;
}

/* ---- tensors ---- */

/* 1 where bytes more would pass the session's or the store's limit, or
 * where the session holds as many tensors as it may and asks for one more
 * (new_tensor); the refusal counted (lock held). */
static int over_limits(struct tn_store *s, struct session *sess, uint64_t bytes, int new_tensor)
{
	if ((!new_tensor || sess->live_tensors < s->max_tensors) &&
	    (!sess->limit || sess->bytes + bytes <= sess->limit) &&
	    (!s->total_limit || s->bytes + bytes <= s->total_limit))
		return 0;
	sess->refused++;
	s->refused++;
	return 1;
}

/* Charge bytes to the session and the store, their peaks kept (lock held). */
static void add_bytes(struct tn_store *s, struct session *sess, uint64_t bytes)
{
	sess->bytes += bytes;
	s->bytes += bytes;
	sess->peak = sess->bytes > sess->peak ? sess->bytes : sess->peak;
	s->peak = s->bytes > s->peak ? s->bytes : s->peak;
}

static int charge(struct tn_store *s, struct session *sess, int dev, size_t bytes)
{
	struct device_usage *d = &s->dev[dev];

	if (over_limits(s, sess, bytes, 1)) {
		d->refused++;
		return -DJ_ELIMIT;
	}
	add_bytes(s, sess, bytes);
	d->bytes += bytes;
	d->peak = d->bytes > d->peak ? d->bytes : d->peak;
	sess->charged++;
	sess->live_tensors++;
	return 0;
}

int tn_store_hold(struct tn_store *s, uint64_t session, uint64_t bytes)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	struct session *sess = find_session(s, session);

	if (sess == NULL) {
		rc = -DJ_EHANDLE;
	} else if (over_limits(s, sess, bytes, 0)) {
		rc = -DJ_ELIMIT;
	} else {
		sess->held += bytes;
		add_bytes(s, sess, bytes);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void tn_store_unhold(struct tn_store *s, uint64_t session, uint64_t bytes)
{
	pthread_mutex_lock(&s->lock);
	struct session *sess = find_session(s, session);

	if (sess != NULL) {
		bytes = bytes < sess->held ? bytes : sess->held;
		sess->held -= bytes;
		sess->bytes -= bytes;
		s->bytes -= bytes;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Undo charge() for an allocation that failed after it (lock held). */
static void uncharge(struct tn_store *s, struct session *sess, int dev, size_t bytes)
{
	sess->bytes -= bytes;
	s->bytes -= bytes;
	s->dev[dev].bytes -= bytes;
	sess->live_tensors--;
	if (--sess->charged == 0 && !sess->open)
		free(sess);
}

static void publish(struct tn_store *s, struct session *sess, struct tn_store_ref *t,
		    uint64_t *handle)
{
	t->node.id = next_id(s);
	t->owner = sess;
	t->live = 1;
	t->prev = NULL;
	t->next = sess->tensors;
	if (sess->tensors)
		sess->tensors->prev = t;
	sess->tensors = t;
	s->dev[t->dev].tensors++;
	tn_id_map_insert(&s->handles, &t->node);
	*handle = t->node.id;
}

static int alloc_tensor(struct tn_store *s, uint64_t session, const struct dj_tensor_desc *desc,
			int dev, int zero, uint64_t *handle)
{
	int rc = dj_tensor_desc_check(desc);

	if (rc != 0)
		return rc;
	if (dev < 0 || dev >= s->n_devices)
		return -EINVAL;
	struct tn_store_ref *t = calloc(1, sizeof(*t));
	const struct tn_store_backend *b = s->backends[dev];

	if (t == NULL)
		return -ENOMEM;
	t->desc = *desc;
	t->bytes = dj_tensor_nbytes(desc);
	t->dev = dev;
	pthread_mutex_lock(&s->lock);
	struct session *sess = find_session(s, session);

	rc = sess == NULL ? -DJ_EHANDLE : charge(s, sess, dev, t->bytes);
	pthread_mutex_unlock(&s->lock);
	if (rc != 0) {
		free(t);
		return rc;
	}
	if (t->bytes > 0)
		rc = b->alloc(b->ctx, t->bytes, zero, &t->data);
	pthread_mutex_lock(&s->lock);
	/* The session may have closed meanwhile; being charged, it still exists. */
	if (rc == 0 && !sess->open)
		rc = -DJ_EHANDLE;
	if (rc == 0) {
		t->refs = 1; /* the handle table's */
		publish(s, sess, t, handle);
	} else {
		uncharge(s, sess, dev, t->bytes);
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != 0)
		destroy_tensor(s, t);
	return rc;
}

int tn_store_alloc(struct tn_store *s, uint64_t session, const struct dj_tensor_desc *desc,
		   uint64_t *handle)
{
	return alloc_tensor(s, session, desc, 0, 1, handle);
}

int tn_store_alloc_output(struct tn_store *s, uint64_t session,
			  const struct dj_tensor_desc *desc, uint64_t *handle)
{
	return alloc_tensor(s, session, desc, 0, 0, handle);
}

int tn_store_alloc_on(struct tn_store *s, uint64_t session, const struct dj_tensor_desc *desc,
		      int dev, int zero, uint64_t *handle)
{
	return alloc_tensor(s, session, desc, dev, zero != 0, handle);
}

/* A live tensor of this session, or NULL (lock held). */
static struct tn_store_ref *find_tensor(struct tn_store *s, uint64_t session, uint64_t handle)
{
	struct tn_store_ref *t = (struct tn_store_ref *)tn_id_map_find(&s->handles, handle);

	return t != NULL && t->owner->node.id == session ? t : NULL;
}

int tn_store_acquire(struct tn_store *s, uint64_t session, uint64_t handle,
		     struct tn_store_ref **ref, struct dj_tensor *view)
{
	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *t = find_tensor(s, session, handle);

	if (t != NULL)
		t->refs++;
	pthread_mutex_unlock(&s->lock);
	if (t == NULL)
		return -DJ_EHANDLE;
	*ref = t;
	if (view != NULL) {
		view->desc = t->desc;
		view->data = t->data;
		view->mem = s->backends[t->dev]->mem;
	}
	return 0;
}

void tn_store_release(struct tn_store *s, struct tn_store_ref *ref)
{
	if (ref == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *dead = put_ref(s, ref);

	pthread_mutex_unlock(&s->lock);
	if (dead != NULL)
		destroy_tensor(s, dead);
}

int tn_store_put(struct tn_store *s, uint64_t session, const struct dj_tensor *host,
		 uint64_t *handle)
{
	uint64_t h;
	int rc;

	if (host == NULL || (host->data == NULL && dj_tensor_desc_check(&host->desc) == 0 &&
			     dj_tensor_nbytes(&host->desc) > 0))
		return -EINVAL;
	/* Written whole below, or freed: nobody sees it before. */
	rc = alloc_tensor(s, session, &host->desc, 0, 0, &h);
	if (rc != 0)
		return rc;
	rc = tn_store_write(s, session, h, 0, host->data, dj_tensor_nbytes(&host->desc));
	if (rc == 0)
		*handle = h;
	else
		tn_store_free(s, session, h);
	return rc;
}

int tn_store_write(struct tn_store *s, uint64_t session, uint64_t handle, size_t offset,
		   const void *src, size_t len)
{
	struct tn_store_ref *ref;
	struct dj_tensor view;
	int rc = tn_store_acquire(s, session, handle, &ref, &view);

	if (rc != 0)
		return rc;
	if (offset > ref->bytes || len > ref->bytes - offset)
		rc = -ERANGE;
	else if (len > 0)
		rc = s->backends[ref->dev]->upload(s->backends[ref->dev]->ctx,
						   (char *)view.data + offset, src, len);
	tn_store_release(s, ref);
	return rc;
}

int tn_store_read(struct tn_store *s, uint64_t session, uint64_t handle, void *dst, size_t len,
		  struct dj_tensor_desc *desc)
{
	struct tn_store_ref *ref;
	struct dj_tensor view;
	int rc = tn_store_acquire(s, session, handle, &ref, &view);

	if (rc != 0)
		return rc;
	if (len < ref->bytes)
		rc = -ERANGE;
	else if (ref->bytes > 0)
		rc = s->backends[ref->dev]->download(s->backends[ref->dev]->ctx, dst, view.data,
						     ref->bytes);
	if (rc == 0 && desc != NULL)
		*desc = view.desc;
	tn_store_release(s, ref);
	return rc;
}

int tn_store_describe(struct tn_store *s, uint64_t session, uint64_t handle,
		      struct dj_tensor_desc *desc)
{
	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *t = find_tensor(s, session, handle);

	if (t != NULL)
		*desc = t->desc;
	pthread_mutex_unlock(&s->lock);
	return t != NULL ? 0 : -DJ_EHANDLE;
}

int tn_store_device_of(struct tn_store *s, uint64_t session, uint64_t handle, int *dev)
{
	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *t = find_tensor(s, session, handle);

	if (t != NULL)
		*dev = t->dev;
	pthread_mutex_unlock(&s->lock);
	return t != NULL ? 0 : -DJ_EHANDLE;
}

int tn_store_ref_device(const struct tn_store_ref *ref)
{
	return ref->dev;
}

int tn_store_free(struct tn_store *s, uint64_t session, uint64_t handle)
{
	struct tn_store_ref *dead = NULL;

	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *t = find_tensor(s, session, handle);

	if (t != NULL) {
		unlink_tensor(s, t);
		dead = put_ref(s, t);
	}
	pthread_mutex_unlock(&s->lock);
	if (dead != NULL)
		destroy_tensor(s, dead);
	return t != NULL ? 0 : -DJ_EHANDLE;
}

/* Move t's charge from its owner to sess, which has room (lock held). */
static void recharge(struct tn_store *s, struct tn_store_ref *t, struct session *sess)
{
	struct session *old = t->owner;

	old->bytes -= t->bytes;
	old->charged--;
	sess->bytes += t->bytes;
	sess->peak = sess->bytes > sess->peak ? sess->bytes : sess->peak;
	sess->charged++;
	sess->live_tensors++;
	/* The old owner may be closing: it goes with its last charge. */
	if (old->charged == 0 && !old->open)
		free(old);
}

int tn_store_adopt(struct tn_store *s, uint64_t from, uint64_t handle, uint64_t to,
		   uint64_t *new_handle)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	struct tn_store_ref *t = find_tensor(s, from, handle);
	struct session *sess = find_session(s, to);

	if (t == NULL || sess == NULL) {
		rc = -DJ_EHANDLE;
	} else if ((sess->limit && sess->bytes + t->bytes > sess->limit) ||
		   sess->live_tensors >= s->max_tensors) {
		sess->refused++;
		s->refused++;
		rc = -DJ_ELIMIT;
	} else {
		unlink_tensor(s, t);
		recharge(s, t, sess);
		publish(s, sess, t, new_handle);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int tn_store_session_usage(struct tn_store *s, uint64_t session, struct tn_store_usage *u)
{
	pthread_mutex_lock(&s->lock);
	struct session *sess = find_session(s, session);

	if (sess != NULL)
		*u = (struct tn_store_usage){.bytes = sess->bytes, .peak_bytes = sess->peak,
					     .limit = sess->limit, .tensors = sess->live_tensors,
					     .sessions = 1, .refused = sess->refused};
	pthread_mutex_unlock(&s->lock);
	return sess != NULL ? 0 : -DJ_EHANDLE;
}

void tn_store_usage(struct tn_store *s, struct tn_store_usage *u)
{
	pthread_mutex_lock(&s->lock);
	*u = (struct tn_store_usage){.bytes = s->bytes, .peak_bytes = s->peak,
				     .limit = s->total_limit, .tensors = s->handles.count,
				     .sessions = s->sessions.count, .refused = s->refused};
	pthread_mutex_unlock(&s->lock);
}

int tn_store_device_usage(struct tn_store *s, int dev, struct tn_store_usage *u)
{
	if (dev < 0 || dev >= s->n_devices)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*u = (struct tn_store_usage){.bytes = s->dev[dev].bytes, .peak_bytes = s->dev[dev].peak,
				     .limit = s->total_limit, .tensors = s->dev[dev].tensors,
				     .refused = s->dev[dev].refused};
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int tn_store_devices(const struct tn_store *s)
{
	return s->n_devices;
}
