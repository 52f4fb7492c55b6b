/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "djinn/common.h"
#include "fake_dp.h"

#define MAX_DPS 8
#define MAX_XFERS 256

struct expect {
	int used, done;
	uint64_t cookie, xfer;
	void *dst;
	size_t len;
};

struct fake_net {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fake_dp *dps[MAX_DPS];
	struct expect xfers[MAX_DPS][MAX_XFERS];
};

struct fake_net *fake_net_create(void)
{
	struct fake_net *net = calloc(1, sizeof(*net));

	pthread_mutex_init(&net->lock, NULL);
	pthread_cond_init(&net->cond, NULL);
	return net;
}

void fake_net_destroy(struct fake_net *net)
{
	pthread_mutex_destroy(&net->lock);
	pthread_cond_destroy(&net->cond);
	free(net);
}

static int slot_of(struct fake_net *net, const struct fake_dp *f)
{
	for (int i = 0; i < MAX_DPS; i++)
		if (net->dps[i] == f)
			return i;
	return -1;
}

static struct expect *find(struct fake_net *net, int s, uint64_t cookie, uint64_t xfer)
{
	for (int i = 0; i < MAX_XFERS; i++) {
		struct expect *e = &net->xfers[s][i];

		if (e->used && e->cookie == cookie && e->xfer == xfer)
			return e;
	}
	return NULL;
}

static int f_local_caps(void *ctx, struct dp_caps *caps)
{
	struct fake_dp *f = ctx;

	if (!f->available)
		return -DJ_ENODPDK;
	caps->dpdk = 1;
	caps->endpoint = f->ep;
	return 0;
}

static int f_session_open(void *ctx, uint64_t id, uint64_t cookie, const struct dp_endpoint *peer)
{
	struct fake_dp *f = ctx;

	if (atomic_load(&f->exist_opens) > 0) {
		int n = atomic_fetch_add(&f->n_refused, 1);

		atomic_fetch_sub(&f->exist_opens, 1);
		if (n < 4)
			f->refused_ids[n] = id;
		return -EEXIST;
	}
	if (atomic_load(&f->limit_opens) > 0) {
		atomic_fetch_sub(&f->limit_opens, 1);
		return -DJ_ELIMIT;
	}
	atomic_store(&f->last_open_id, id);
	f->sessions_open++;
	return 0;
}

static void f_session_close(void *ctx, uint64_t cookie)
{
	struct fake_dp *f = ctx;

	f->sessions_open--;
}

static int f_probe(void *ctx, const struct dp_endpoint *peer, uint64_t cookie,
		   uint32_t timeout_ms, uint64_t *rtt_ns)
{
	struct fake_dp *f = ctx;

	f->probes++;
	*rtt_ns = 1000;
	return f->probe_rc;
}

static int f_expect(void *ctx, uint64_t cookie, uint64_t xfer, void *dst, size_t len,
		    enum dj_mem_kind mem)
{
	struct fake_dp *f = ctx;
	struct fake_net *net = f->net;
	int s, rc = -ENOSPC;

	pthread_mutex_lock(&net->lock);
	s = slot_of(net, f);
	if (find(net, s, cookie, xfer) != NULL) {
		rc = -EEXIST;
	} else {
		for (int i = 0; i < MAX_XFERS; i++) {
			struct expect *e = &net->xfers[s][i];

			if (!e->used) {
				*e = (struct expect){1, 0, cookie, xfer, dst, len};
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&net->lock);
	return rc;
}

static void deadline_ts(uint32_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int f_wait(void *ctx, uint64_t cookie, uint64_t xfer, uint32_t timeout_ms)
{
	struct fake_dp *f = ctx;
	struct fake_net *net = f->net;
	struct timespec ts;
	struct expect *e;
	int rc = 0;

	deadline_ts(timeout_ms, &ts);
	pthread_mutex_lock(&net->lock);
	while ((e = find(net, slot_of(net, f), cookie, xfer)) != NULL && !e->done && rc == 0)
		rc = pthread_cond_timedwait(&net->cond, &net->lock, &ts);
	if (e == NULL) {
		rc = -ENOENT;
	} else if (e->done) {
		e->used = 0;
		rc = 0;
	} else {
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&net->lock);
	return rc;
}

static int f_cancel(void *ctx, uint64_t cookie, uint64_t xfer)
{
	struct fake_dp *f = ctx;
	struct fake_net *net = f->net;
	struct expect *e;

	if (atomic_fetch_sub(&f->deadlock_cancels, 1) > 0)
		return -EDEADLK;
	atomic_store(&f->deadlock_cancels, 0);
	pthread_mutex_lock(&net->lock);
	e = find(net, slot_of(net, f), cookie, xfer);
	if (e != NULL)
		e->used = 0;
	pthread_mutex_unlock(&net->lock);
	return e != NULL ? 0 : -ENOENT;
}

/* A send whose frames stay queued: the source is still read later. */
static int send_stuck(struct fake_dp *f, uint64_t cookie, uint64_t xfer, const void *src,
		      size_t len)
{
	pthread_mutex_lock(&f->net->lock);
	f->pinned_src = src;
	f->pinned_len = len;
	f->pinned_cookie = cookie;
	f->pinned_xfer = xfer;
	f->released = 0;
	pthread_mutex_unlock(&f->net->lock);
	return -EDEADLK;
}

static int f_send_pinned(void *ctx, uint64_t cookie, uint64_t xfer)
{
	struct fake_dp *f = ctx;
	int rc = -ENOENT;

	pthread_mutex_lock(&f->net->lock);
	if (f->pinned_src != NULL && f->pinned_cookie == cookie && f->pinned_xfer == xfer) {
		rc = f->released ? 0 : 1;
		if (f->released)
			f->pinned_src = NULL;
	}
	pthread_mutex_unlock(&f->net->lock);
	return rc;
}

int fake_dp_release(struct fake_dp *f, void *copy)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&f->net->lock);
	if (f->pinned_src != NULL && !f->released) {
		memcpy(copy, f->pinned_src, f->pinned_len);
		f->released = 1;
		rc = 0;
	}
	pthread_mutex_unlock(&f->net->lock);
	return rc;
}

static int f_send(void *ctx, const struct dp_endpoint *peer, uint64_t cookie, uint64_t xfer,
		  const void *src, size_t len, enum dj_mem_kind mem, uint32_t timeout_ms)
{
	struct fake_dp *f = ctx;
	struct fake_net *net = f->net;
	struct expect *e = NULL;
	int rc = -EHOSTUNREACH;

	f->sends++;
	if (atomic_fetch_sub(&f->fail_sends, 1) > 0)
		return -ETIMEDOUT;
	atomic_store(&f->fail_sends, 0);
	if (atomic_fetch_sub(&f->deadlock_sends, 1) > 0)
		return send_stuck(f, cookie, xfer, src, len);
	atomic_store(&f->deadlock_sends, 0);
	pthread_mutex_lock(&net->lock);
	for (int i = 0; i < MAX_DPS; i++)
		if (net->dps[i] != NULL && net->dps[i]->ep.udp_port == peer->udp_port)
			e = find(net, i, cookie, xfer);
	if (e != NULL && e->len == len && !e->done) {
		memcpy(e->dst, src, len);
		e->done = 1;
		rc = 0;
		f->sends_ok++;
	} else if (e != NULL) {
		rc = -EMSGSIZE;
	}
	pthread_cond_broadcast(&net->cond);
	pthread_mutex_unlock(&net->lock);
	return rc;
}

static const struct dj_datapath_ops fake_ops = {
	.local_caps = f_local_caps,
	.session_open = f_session_open,
	.session_close = f_session_close,
	.probe = f_probe,
	.expect = f_expect,
	.wait = f_wait,
	.cancel = f_cancel,
	.send = f_send,
	.send_pinned = f_send_pinned,
};

struct fake_dp *fake_dp_create(struct fake_net *net, uint16_t port)
{
	struct fake_dp *f = calloc(1, sizeof(*f));

	f->net = net;
	f->available = 1;
	f->ep.udp_port = port;
	f->ep.ipv4 = 0x0100007f;
	f->ep.mtu = 9000;
	f->ep.n_queues = 1;
	f->dp.ops = &fake_ops;
	f->dp.ctx = f;
	pthread_mutex_lock(&net->lock);
	for (int i = 0; i < MAX_DPS; i++) {
		if (net->dps[i] == NULL) {
			net->dps[i] = f;
			break;
		}
	}
	pthread_mutex_unlock(&net->lock);
	return f;
}

void fake_dp_destroy(struct fake_dp *f)
{
	struct fake_net *net = f->net;

	pthread_mutex_lock(&net->lock);
	net->dps[slot_of(net, f)] = NULL;
	pthread_mutex_unlock(&net->lock);
	free(f);
}
