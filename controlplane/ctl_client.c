/* SPDX-License-Identifier: BSD-3-Clause */
/* Client connection: requests, futures, and the reader thread. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_client.h"

#define TAG "ctl-client"
#define DISCARD_CHUNK 65536
/* Replies are small JSON (a batch's results at most): refuse absurd ones. */
#define CL_MAX_REPLY_JSON (16u << 20)

/*
 * Released futures are kept by the thread that released them, for its
 * next requests: a caller that issues and releases requests by the
 * thousand allocates none per request. At most FUTURE_CACHE per thread;
 * freed when the thread ends (a pthread key's destructor).
 */
#define FUTURE_CACHE 64

struct future_cache {
	struct dj_future *head;
	int n;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static __thread struct future_cache *tl_cache;

static void cache_destroy(void *arg)
{
	struct future_cache *c = arg;

	while (c->head != NULL) {
		struct dj_future *f = c->head;

		c->head = f->next_free;
		free(f);
	}
	free(c);
}

static void cache_key_make(void)
{
	if (pthread_key_create(&cache_key, cache_destroy) != 0)
		cache_key = (pthread_key_t)-1;
}

/* This thread's cache, made on first use; NULL where it cannot be. */
static struct future_cache *cache_get(void)
{
	struct future_cache *c = tl_cache;

	if (c != NULL)
		return c;
	pthread_once(&cache_once, cache_key_make);
	if (cache_key == (pthread_key_t)-1 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (pthread_setspecific(cache_key, c) != 0) {
		free(c);
		return NULL;
	}
	tl_cache = c;
	return c;
}

static void future_unref(struct dj_future *f)
{
	struct future_cache *c;

	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	cJSON_Delete(f->reply);
	c = cache_get();
	if (c == NULL || c->n == FUTURE_CACHE) {
		free(f);
		return;
	}
	f->next_free = c->head;
	c->head = f;
	c->n++;
}

int ctl_client_reply_error(cJSON *reply, char *msg)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(reply, "type");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(reply, "code");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(reply, "message");

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "ERROR") != 0)
		return 0;
	snprintf(msg, CTL_ERRMSG_MAX, "%s", cJSON_IsString(text) ? text->valuestring : "");
	return cJSON_IsNumber(code) && code->valueint < 0 ? code->valueint : -DJ_EPEER;
}

/* A future with its fixed part zeroed (its binary outputs are not: only
 * those a reply filled are read). */
static struct dj_future *future_new(void)
{
	struct future_cache *c = tl_cache;
	struct dj_future *f;

	if (c != NULL && c->head != NULL) {
		f = c->head;
		c->head = f->next_free;
		c->n--;
	} else {
		f = malloc(sizeof(*f));
	}

	if (f != NULL)
		memset(f, 0, offsetof(struct dj_future, outs));
	return f;
}

/* f is done (lock held): its waiters wake, its slot is free. */
static void finish_locked(struct dj_conn *conn, struct dj_future *f)
{
	f->done = 1;
	conn->slots[f->id & (CL_SLOTS - 1)] = NULL;
	pthread_cond_broadcast(&conn->cond);
}

/* Complete f (lock held by the caller); its callback runs after unlocking. */
static void complete_locked(struct dj_conn *conn, struct dj_future *f, int rc, cJSON *reply)
{
	f->rc = rc;
	f->reply = reply;
	if (reply != NULL) {
		int err = ctl_client_reply_error(reply, f->error);

		if (err != 0 && f->rc == 0)
			f->rc = err;
		if (err != 0)
			snprintf(conn->last_error, sizeof(conn->last_error), "%s", f->error);
	} else if (f->error[0] == '\0') {
		snprintf(f->error, sizeof(f->error), "%s", dj_strerror(rc));
	}
	finish_locked(conn, f);
}

/* One debug line per reply: "TYPE ok in X ms" or "TYPE failed ...: why". */
static void reply_log(const char *type, uint64_t t0, cJSON *reply)
{
	char why[CTL_ERRMSG_MAX] = "";
	int rc = ctl_client_reply_error(reply, why);

	DJC_LOG(DJ_LOG_DEBUG, TAG, "%s %s in %.3f ms%s%s", type, rc == 0 ? "ok" : "failed",
		(double)(djc_time_ns() - t0) / 1e6, rc == 0 ? "" : ": ", why);
}

/* From the reader thread, which works for no request itself: the line
 * names the future's. */
static void future_log(const struct dj_future *f, cJSON *reply)
{
	djc_log_req_set(f->trace);
	reply_log(f->type, f->t0, reply);
	djc_log_req_set(NULL);
}

static void run_callback_and_unref(struct dj_future *f)
{
	if (f->cb != NULL)
		f->cb(f, f->arg);
	future_unref(f);
}

void ctl_client_set_broken(struct dj_conn *conn, int broken)
{
	pthread_mutex_lock(&conn->lock);
	atomic_store(&conn->broken, broken);
	pthread_mutex_unlock(&conn->lock);
}

/* Fail every pending request: the connection is gone. */
static void fail_all(struct dj_conn *conn, int rc)
{
	struct dj_future *done[64];
	int n;

	do {
		n = 0;
		pthread_mutex_lock(&conn->lock);
		atomic_store(&conn->broken, 1);
		for (int i = 0; i < CL_SLOTS && n < 64; i++) {
			if (conn->slots[i] != NULL) {
				done[n++] = conn->slots[i];
				complete_locked(conn, conn->slots[i], rc, NULL);
			}
		}
		pthread_cond_broadcast(&conn->cond);
		pthread_mutex_unlock(&conn->lock);
		for (int i = 0; i < n; i++)
			run_callback_and_unref(done[i]);
	} while (n == 64);
}

/* ---- autocorking (ctl_client.h, struct dj_conn) ------------------------- */

/* obuf is empty (wlock held). */
static void obuf_reset_locked(struct dj_conn *conn)
{
	conn->ooff = conn->olen = 0;
	atomic_store_explicit(&conn->reader_tail, 0, memory_order_relaxed);
	atomic_store(&conn->pending, 0);
}

/* obuf's requests are about to go: they count as on the wire before their
 * bytes are written, as a reply can be processed before send() returns. */
static void obuf_commit_locked(struct dj_conn *conn, uint32_t more)
{
	if (conn->oreqs + more > 0)
		atomic_fetch_add(&conn->wire_outstanding, (long)(conn->oreqs + more));
	conn->oreqs = 0;
}

/* Write obuf's unsent bytes, then a and b (either may be empty), blocking,
 * in one call (wlock held); a and b make nreq requests. */
static int send_locked(struct dj_conn *conn, const void *a, size_t alen, const void *b,
		       size_t blen, uint32_t nreq)
{
	struct iovec iov[3];
	int n = 0, rc;

	if (conn->cork)
		obuf_commit_locked(conn, nreq);
	if (conn->olen > conn->ooff)
		iov[n++] = (struct iovec){conn->obuf + conn->ooff, conn->olen - conn->ooff};
	if (alen > 0)
		iov[n++] = (struct iovec){(void *)a, alen};
	if (blen > 0)
		iov[n++] = (struct iovec){(void *)b, blen};
	if (n == 0)
		return 0;
	rc = ctl_stream_writev_all(&conn->io, iov, n);
	/* A frame cut short by an error cannot be taken back: the caller
	 * poisons the connection, and obuf's requests fail with it. */
	obuf_reset_locked(conn);
	atomic_fetch_add_explicit(&conn->cl->st.writes, 1, memory_order_relaxed);
	return rc;
}

/* Append a request (a, then b) to obuf (wlock held); the caller sends
 * obuf itself where nothing is on the wire to bring the reader back. */
static int cork_locked(struct dj_conn *conn, const void *a, size_t alen, const void *b,
		       size_t blen)
{
	struct dj_client *cl = conn->cl;
	size_t len = alen + blen;
	int rc;

	if (conn->olen + len > CL_OBUF && conn->olen - conn->ooff + len <= CL_OBUF) {
		memmove(conn->obuf, conn->obuf + conn->ooff, conn->olen - conn->ooff);
		conn->olen -= conn->ooff;
		conn->ooff = 0;
	} else if (conn->olen + len > CL_OBUF) {
		atomic_fetch_add_explicit(&cl->st.flushes_caller, 1, memory_order_relaxed);
		rc = send_locked(conn, NULL, 0, NULL, 0, 0);
		if (rc != 0)
			return rc;
	}
	memcpy(conn->obuf + conn->olen, a, alen);
	if (blen > 0)
		memcpy(conn->obuf + conn->olen + alen, b, blen);
	conn->olen += (uint32_t)len;
	conn->oreqs++;
	atomic_fetch_add_explicit(&cl->st.corked, 1, memory_order_relaxed);
	/* Dekker's store then load (seq_cst), against the reader's decrement
	 * then load of pending: one of the two sees the other's. */
	atomic_store(&conn->pending, 1);
	if (atomic_load(&conn->wire_outstanding) > 0 && !atomic_load(&conn->reader_idle))
		return 0;
	atomic_fetch_add_explicit(&cl->st.flushes_caller, 1, memory_order_relaxed);
	return send_locked(conn, NULL, 0, NULL, 0, 0);
}

/* One request's bytes (a, then its payload b) onto the connection whose
 * socket is wire_gen: corked where it is small and a request is on the
 * wire, else written now after what obuf holds. Order on the wire is the
 * order of the calls. A socket gone since (a reconnect) takes nothing: the
 * request failed with it, and 0 is returned as for a request sent. */
static int conn_send(struct dj_conn *conn, uint64_t wire_gen, const void *a, size_t alen,
		     const void *b, size_t blen)
{
	int rc;

	pthread_mutex_lock(&conn->wlock);
	if (wire_gen != atomic_load(&conn->wire_gen))
		rc = 0;
	/* What obuf holds goes first (order); else cork only behind requests
	 * whose replies are flowing (the reader comes back soon). */
	else if (conn->cork && alen + blen <= CL_CORK_MAX &&
	    (conn->olen > conn->ooff ||
	     (atomic_load(&conn->wire_outstanding) > 0 &&
	      djc_time_ns() - atomic_load_explicit(&conn->last_reply_ns, memory_order_relaxed) <
		      conn->cork_flow_ns)))
		rc = cork_locked(conn, a, alen, b, blen);
	else
		rc = send_locked(conn, a, alen, b, blen, 1);
	pthread_mutex_unlock(&conn->wlock);
	return rc;
}

/* Send obuf now, blocking; the flush is counted in *counter. */
static int flush_counted(struct dj_conn *conn, atomic_uint_fast64_t *counter)
{
	uint64_t gen;
	int rc = 0;

	if (!atomic_load(&conn->pending))
		return 0;
	pthread_mutex_lock(&conn->wlock);
	gen = atomic_load(&conn->wire_gen);
	if (conn->olen > conn->ooff && !atomic_load(&conn->broken)) {
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
		rc = send_locked(conn, NULL, 0, NULL, 0, 0);
	}
	pthread_mutex_unlock(&conn->wlock);
	if (rc != 0)
		ctl_client_conn_poison(conn, gen, rc);
	return rc;
}

int ctl_client_flush(struct dj_conn *conn)
{
	return flush_counted(conn, &conn->cl->st.flushes_caller);
}

int dj_conn_flush(struct dj_conn *conn)
{
	return conn == NULL ? -EINVAL : ctl_client_flush(conn);
}

/*
 * The reader, before it reads more: send what callers corked behind the
 * replies it processed. It never blocks on the socket nor on wlock (a caller
 * blocked in send() under wlock needs the reader to drain the replies that
 * hold the server back). Returns 0 (nothing left to the reader), 1 (bytes
 * it could not write yet: wait for POLLOUT too, then call again), or -errno.
 */
static int reader_flush(struct dj_conn *conn)
{
	ssize_t w;
	int rc = 0;

	while (pthread_mutex_trylock(&conn->wlock) != 0) {
		if (!atomic_load(&conn->pending))
			return 0;
		if (atomic_load(&conn->reader_tail))
			return 1;
		/* A request wholly on the wire: its reply brings us back. */
		if (atomic_load(&conn->wire_outstanding) > 0)
			return 0;
		/* Else the holder appends and leaves at once. */
		__builtin_ia32_pause();
	}
	if (conn->olen > conn->ooff) {
		obuf_commit_locked(conn, 0);
		do
			w = send(conn->io.fd, conn->obuf + conn->ooff, conn->olen - conn->ooff,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			rc = -errno;
		if (w > 0) {
			conn->ooff += (uint32_t)w;
			atomic_fetch_add_explicit(&conn->cl->st.flushes_reader, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&conn->cl->st.writes, 1, memory_order_relaxed);
		}
	}
	if (conn->ooff == conn->olen) {
		obuf_reset_locked(conn);
	} else if (rc == 0) {
		atomic_store(&conn->reader_tail, 1);
		rc = 1;
	}
	pthread_mutex_unlock(&conn->wlock);
	return rc;
}

/* A reply to a request of conn's came: one request fewer on the wire (the
 * reader loads pending before it reads again). */
static inline void reply_seen(struct dj_conn *conn)
{
	if (conn->cork)
		atomic_fetch_sub(&conn->wire_outstanding, 1);
}

/* Before the reader waits for more bytes: flush, and while the socket
 * takes no more of obuf, wait for it to (or for replies). 0 or -errno. */
static int reader_flush_wait(struct dj_conn *conn)
{
	int rc;

	if (!conn->cork || !atomic_load(&conn->pending))
		return 0;
	while ((rc = reader_flush(conn)) == 1) {
		struct pollfd p = {.fd = conn->io.fd, .events = POLLIN | POLLOUT};

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			return -errno;
		if (p.revents & (POLLIN | POLLERR | POLLHUP))
			return 0;
	}
	return rc;
}

/* The reader's blocking reads time out after us (0: never). */
static int set_read_timeout(struct dj_conn *conn, unsigned int us)
{
	struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};

	return setsockopt(conn->io.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 ? 0 : -errno;
}

/* A read of the corked reader timed out (-EAGAIN): send what was corked;
 * after CL_CORK_NAPS silent timeouts in a row, sleep without one. 0 (read
 * again) or -errno. */
static int reader_nap(struct dj_conn *conn)
{
	int rc = reader_flush_wait(conn);

	if (rc != 0 || ++conn->naps < CL_CORK_NAPS)
		return rc;
	/* Dekker's again: idle, then pending, against a caller's pending,
	 * then its load of idle. */
	atomic_store(&conn->reader_idle, 1);
	if (atomic_load(&conn->pending)) {
		atomic_store(&conn->reader_idle, 0);
		return reader_flush_wait(conn);
	}
	return set_read_timeout(conn, 0);
}

/* Bytes came after the reader slept idle: timeouts again. */
static int reader_wake(struct dj_conn *conn)
{
	conn->naps = 0;
	if (!atomic_load_explicit(&conn->reader_idle, memory_order_relaxed))
		return 0;
	atomic_store(&conn->reader_idle, 0);
	return set_read_timeout(conn, CL_CORK_NAP_US);
}

/* A blocking read into rbuf; corked, it sends what was corked whenever it
 * times out. Bytes read, 0 at end of stream, or -errno. */
static ssize_t reader_recv(struct dj_conn *conn)
{
	for (;;) {
		ssize_t r = ctl_stream_read(&conn->io, conn->rbuf, CL_RBUF);
		int rc;

		if (!conn->cork || r != -EAGAIN) {
			rc = r > 0 && conn->cork ? reader_wake(conn) : 0;
			return rc != 0 ? rc : r;
		}
		rc = reader_nap(conn);
		if (rc != 0)
			return rc;
	}
}

/* len bytes straight into place (a large reply payload); corked, what was
 * corked goes out whenever the read times out. 0 or -errno. */
static int read_into_place(struct dj_conn *conn, char *p, size_t len)
{
	while (conn->cork && len > 0) {
		ssize_t n;

		do
			n = recv(conn->io.fd, p, len, MSG_WAITALL);
		while (n < 0 && errno == EINTR);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (n > 0) {
			conn->naps = 0;
			p += n;
			len -= (size_t)n;
		} else {
			int rc = reader_flush_wait(conn);

			if (rc != 0)
				return rc;
		}
	}
	return len == 0 ? 0 : ctl_stream_read_all(&conn->io, p, len);
}

/* Poll the (plain) socket a while rather than sleep in read(2) at once: the
 * next reply of a busy connection comes within microseconds, and the
 * wake-up from read(2) costs as much as its trip. Returns bytes read into
 * rbuf, or -EAGAIN (nothing came: block), or -errno. */
static ssize_t read_spin(struct dj_conn *conn)
{
	uint64_t start = djc_time_ns();

	if (conn->read_spin_ns == 0 || conn->io.ssl != NULL)
		return -EAGAIN;
	while (djc_time_ns() - start < conn->read_spin_ns) {
		ssize_t r = recv(conn->io.fd, conn->rbuf, CL_RBUF, MSG_DONTWAIT);

		if (r >= 0)
			return r;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

/* len bytes from the connection: what the buffer holds first, then large
 * remainders straight into place, small ones through a refill. */
static int conn_read(struct dj_conn *conn, void *dst, size_t len)
{
	char *p = dst;

	while (len > 0) {
		ssize_t r;

		if (conn->roff < conn->rlen) {
			size_t k = len < conn->rlen - conn->roff ? len : conn->rlen - conn->roff;

			memcpy(p, conn->rbuf + conn->roff, k);
			conn->roff += k;
			p += k;
			len -= k;
			continue;
		}
		/* Every reply of the batch processed: corked requests go out. */
		r = reader_flush_wait(conn);
		if (r < 0)
			return (int)r;
		if (len >= CL_RBUF)
			return read_into_place(conn, p, len);
		r = read_spin(conn);
		if (r == -EAGAIN)
			r = reader_recv(conn);
		if (r <= 0)
			return r == 0 ? -ECONNRESET : (int)r;
		conn->roff = 0;
		conn->rlen = (size_t)r;
		/* Replies are flowing (cork_flow_ns): one clock read per
		 * batch of them, not per reply. */
		if (conn->cork)
			atomic_store_explicit(&conn->last_reply_ns, djc_time_ns(),
					      memory_order_relaxed);
	}
	return 0;
}

static int discard(struct dj_conn *conn, uint64_t len)
{
	char buf[DISCARD_CHUNK];

	while (len > 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		int rc = conn_read(conn, buf, n);

		if (rc != 0)
			return rc;
		len -= n;
	}
	return 0;
}

/* A frame's JSON, its header (hdr) read (its payload, if any, still unread). */
static int read_frame_json_after(struct dj_conn *conn, const uint8_t *hdr, struct ctl_hdr *h,
				 cJSON **msg)
{
	char *text;
	int rc = ctl_hdr_decode(hdr, h);

	if (rc == 0 && (h->json_len == 0 || h->json_len > CL_MAX_REPLY_JSON))
		rc = -EPROTO;
	if (rc != 0)
		return rc;
	text = malloc(h->json_len);
	if (text == NULL)
		return -ENOMEM;
	rc = conn_read(conn, text, h->json_len);
	*msg = rc == 0 ? cJSON_ParseWithLength(text, h->json_len) : NULL;
	free(text);
	if (rc == 0 && *msg == NULL)
		rc = -EBADMSG;
	return rc;
}

/* A frame's header and JSON (its payload, if any, still unread). */
static int read_frame_json(struct dj_conn *conn, struct ctl_hdr *h, cJSON **msg)
{
	uint8_t hdr[CTL_HDR_LEN];
	int rc = conn_read(conn, hdr, sizeof(hdr));

	return rc != 0 ? rc : read_frame_json_after(conn, hdr, h, msg);
}

/* The pending future of request id, or NULL. */
static struct dj_future *future_of(struct dj_conn *conn, uint64_t id)
{
	struct dj_future *f = NULL;

	pthread_mutex_lock(&conn->lock);
	if (id != 0 && conn->slots[id & (CL_SLOTS - 1)] != NULL &&
	    conn->slots[id & (CL_SLOTS - 1)]->id == id)
		f = conn->slots[id & (CL_SLOTS - 1)];
	pthread_mutex_unlock(&conn->lock);
	return f;
}

/* A binary reply's body: in place in rbuf where it is whole there, else
 * read into bbuf. */
static int read_bin_body(struct dj_conn *conn, uint32_t len, const uint8_t **body)
{
	int rc;

	if (conn->rlen - conn->roff >= len) {
		*body = conn->rbuf + conn->roff;
		conn->roff += len;
		return 0;
	}
	if (conn->bbuf == NULL && (conn->bbuf = malloc(CTL_BIN_BODY_MAX)) == NULL)
		return -ENOMEM;
	rc = conn_read(conn, conn->bbuf, len);
	*body = conn->bbuf;
	return rc;
}

/* A binary reply's outcome into f (not yet complete): 0 and its outputs,
 * or the ERROR's code and text. A reply of a type that does not answer
 * f's request, or one that does not decode, breaks the connection. */
static int bin_outcome(struct dj_future *f, const struct ctl_bin_hdr *h, const uint8_t *body)
{
	char why[CTL_ERRMSG_MAX];
	int code, n;

	if (h->type == CTL_BIN_ERROR) {
		if (ctl_bin_error_decode(body, h->body_len, &code, f->error) != 0)
			return -EBADMSG;
		return code;
	}
	if (h->type != (CTL_BIN_REPLY | f->bin_type))
		return -EBADMSG;
	if (h->type != (CTL_BIN_REPLY | CTL_BIN_EXECUTE))
		return h->body_len == 0 ? 0 : -EBADMSG;
	n = ctl_bin_exec_reply_decode(body, h->body_len, f->outs, DJ_MAX_OP_ARGS, why);
	if (n < 0)
		return n;
	f->n_out = n < DJ_MAX_OP_ARGS ? n : DJ_MAX_OP_ARGS;
	return 0;
}

/* One binary reply (its header read): its future completed. */
static int read_bin_reply(struct dj_conn *conn, const uint8_t *hdr)
{
	struct ctl_bin_hdr h;
	const uint8_t *body = NULL;
	struct dj_future *f;
	char why[128];
	int rc = ctl_bin_hdr_decode(hdr, 1, &h, why);

	if (rc == 0 && h.trace_len != 0)
		rc = -EPROTO;
	if (rc == 0 && h.body_len > 0)
		rc = read_bin_body(conn, h.body_len, &body);
	if (rc != 0)
		return rc == -ECONNRESET ? rc : -EPROTO;
	f = future_of(conn, h.id);
	/* A binary reply to a JSON request: the peer is not following the
	 * protocol (its future would wait for a reply that never comes). */
	if (f != NULL && f->bin_type == 0)
		return -EPROTO;
	if (f == NULL) {
		/* id 0: the server speaks of the connection itself (why it closes). */
		char text[CTL_ERRMSG_MAX] = "";

		if (h.type == CTL_BIN_ERROR && ctl_bin_error_decode(body, h.body_len, &rc, text) == 0)
			ctl_client_error_set(conn, "%s", text);
		DJC_LOG(DJ_LOG_INFO, TAG, "unmatched binary reply (id %llu): %s",
			(unsigned long long)h.id, text);
		return 0;
	}
	rc = bin_outcome(f, &h, body);
	if (rc == -EBADMSG && h.type != CTL_BIN_ERROR)
		return rc;
	if (DJ_LOG_DEBUG <= dj_log_get_level()) {
		djc_log_req_set(f->trace);
		DJC_LOG(DJ_LOG_DEBUG, TAG, "%s %s in %.3f ms%s%s", f->type, rc == 0 ? "ok" : "failed",
			(double)(djc_time_ns() - f->t0) / 1e6, rc == 0 ? "" : ": ", f->error);
		djc_log_req_set(NULL);
	}
	reply_seen(conn);
	pthread_mutex_lock(&conn->lock);
	f->rc = rc;
	if (rc != 0)
		djc_strcpy(conn->last_error, f->error, sizeof(conn->last_error));
	finish_locked(conn, f);
	pthread_mutex_unlock(&conn->lock);
	run_callback_and_unref(f);
	return 0;
}

/* Read one frame; a payload goes to the matching future's buffer. */
static int read_reply(struct dj_conn *conn)
{
	struct ctl_hdr h;
	struct dj_future *f = NULL;
	uint64_t id = 0;
	char why[128];
	cJSON *msg;
	int rc;

	/* Binary replies are told apart by their header's first byte. The
	 * reader runs only between handshakes: binary holds still. */
	if (conn->binary) {
		uint8_t hdr[CTL_HDR_LEN];

		rc = conn_read(conn, hdr, sizeof(hdr));
		if (rc != 0)
			return rc;
		if (ctl_bin_is(hdr))
			return read_bin_reply(conn, hdr);
		rc = read_frame_json_after(conn, hdr, &h, &msg);
	} else {
		rc = read_frame_json(conn, &h, &msg);
	}
	if (rc != 0)
		return rc;
	ctl_json_u64(msg, "id", &id, why);
	f = future_of(conn, id);
	if (h.payload_len > 0) {
		/* Only the reader writes into dst, and only while f is pending. */
		if (f != NULL && f->dst != NULL && f->dst_len == h.payload_len) {
			rc = conn_read(conn, f->dst, h.payload_len);
		} else {
			rc = discard(conn, h.payload_len);
			if (f != NULL && rc == 0) {
				cJSON_Delete(msg);
				msg = ctl_error_new(id, -EMSGSIZE, "reply payload does not fit the buffer");
			}
		}
	}
	if (rc != 0) {
		cJSON_Delete(msg);
		return rc;
	}
	if (f != NULL && DJ_LOG_DEBUG <= dj_log_get_level())
		future_log(f, msg);
	if (f == NULL) {
		/* id 0: the server speaks of the connection itself (why it closes). */
		char text[CTL_ERRMSG_MAX] = "";

		if (ctl_client_reply_error(msg, text) != 0)
			ctl_client_error_set(conn, "%s", text);
		DJC_LOG(DJ_LOG_INFO, TAG, "unmatched reply (id %llu): %s",
		       (unsigned long long)id, text);
		cJSON_Delete(msg);
		return 0;
	}
	reply_seen(conn);
	pthread_mutex_lock(&conn->lock);
	complete_locked(conn, f, 0, msg);
	pthread_mutex_unlock(&conn->lock);
	run_callback_and_unref(f);
	return 0;
}

static void *reader_main(void *arg)
{
	struct dj_conn *conn = arg;
	int rc;

	do
		rc = read_reply(conn);
	while (rc == 0);
	DJC_LOG(DJ_LOG_INFO, TAG, "connection lost: %s", dj_strerror(rc));
	fail_all(conn, rc == -ECONNRESET || rc == -EPIPE ? -ECONNRESET : rc);
	return NULL;
}

int ctl_client_conn_start(struct dj_conn *conn)
{
	int rc;

	conn->read_spin_ns = 1000ull * djc_spin_budget_us(conn->cl->o.wait_spin_us);
	conn->cork_flow_ns = 1000ull * (conn->cl->o.cork_flow_us != 0 ? conn->cl->o.cork_flow_us
								: CL_CORK_FLOW_US);
	/* TLS writes through OpenSSL's buffers, where the reader's
	 * non-blocking flush cannot go: plain TCP only. */
	pthread_mutex_lock(&conn->wlock);
	conn->cork = !conn->cl->o.no_autocork && conn->io.ssl == NULL &&
		     set_read_timeout(conn, CL_CORK_NAP_US) == 0;
	atomic_store(&conn->wire_outstanding, 0); /* the handshake's are answered */
	atomic_store(&conn->reader_idle, 0);
	atomic_store(&conn->last_reply_ns, 0);
	conn->naps = 0;
	pthread_mutex_unlock(&conn->wlock);
	/* Requests may flow only now that corking is set: one written
	 * before, uncounted, would have its reply counted off. */
	ctl_client_set_broken(conn, 0);
	rc = pthread_create(&conn->reader, NULL, reader_main, conn);

	conn->reader_running = rc == 0;
	if (rc != 0)
		ctl_client_set_broken(conn, 1); /* no reader would ever answer them */
	return -rc;
}

void ctl_client_conn_poison(struct dj_conn *conn, uint64_t wire_gen, int rc)
{
	int mine;

	/* Under lock, as conn_stop moves wire_gen on before it closes the
	 * socket: a socket poisoned here is still open, and it is the one
	 * wire_gen names, never a reopened connection's. */
	pthread_mutex_lock(&conn->lock);
	mine = wire_gen == atomic_load(&conn->wire_gen);
	if (mine) {
		atomic_store(&conn->broken, 1);
		/* The reader wakes with an error and fails every pending request. */
		shutdown(conn->io.fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&conn->lock);
	if (mine)
		DJC_LOG(DJ_LOG_INFO, TAG, "connection abandoned: %s", dj_strerror(rc));
}

void ctl_client_conn_stop(struct dj_conn *conn)
{
	/* Corked requests (a last FREE) reach a server still there. */
	if (conn->reader_running && !atomic_load(&conn->broken))
		ctl_client_flush(conn);
	if (conn->reader_running) {
		shutdown(conn->io.fd, SHUT_RDWR);
		pthread_join(conn->reader, NULL);
		conn->reader_running = 0;
	}
	/* A writer still inside send() on this fd must be out before the
	 * number can be reused by the next connection. Requests claimed on
	 * this socket and poisons of it are stale from here on. */
	pthread_mutex_lock(&conn->wlock);
	pthread_mutex_lock(&conn->lock);
	atomic_fetch_add(&conn->wire_gen, 1);
	pthread_mutex_unlock(&conn->lock);
	ctl_stream_close(&conn->io);
	/* What the old connection corked belongs to failed futures: it must
	 * not reach a reopened one, nor a request claimed on it and not
	 * written yet. */
	obuf_reset_locked(conn);
	conn->oreqs = 0;
	conn->cork = 0; /* until the reader runs again */
	atomic_store(&conn->wire_outstanding, 0);
	pthread_mutex_unlock(&conn->wlock);
}

static int write_frame(struct dj_conn *conn, uint64_t wire_gen, const cJSON *msg,
		       const void *payload, uint64_t payload_len)
{
	char *frame;
	size_t len;
	int rc = ctl_frame(msg, payload_len, &frame, &len);

	if (rc != 0)
		return rc;
	rc = conn_send(conn, wire_gen, frame, len, payload, payload_len);
	free(frame);
	return rc;
}

/* A slot for a new request; waits while CL_SLOTS requests are in flight.
 * hello_gen: the request was built from what HELLO said then (0: it does
 * not depend on it). */
static int claim_slot(struct dj_conn *conn, struct dj_future *f, uint64_t hello_gen)
{
	pthread_mutex_lock(&conn->lock);
	for (;;) {
		if (atomic_load(&conn->broken) ||
		    (hello_gen != 0 && hello_gen != conn->hello_gen)) {
			/* No slot: nobody will complete f (an id of a round
			 * that waited for one would say otherwise). */
			f->id = 0;
			pthread_mutex_unlock(&conn->lock);
			return -ECONNRESET;
		}
		f->id = ++conn->next_id;
		f->wire_gen = atomic_load(&conn->wire_gen);
		if (conn->slots[f->id & (CL_SLOTS - 1)] == NULL)
			break;
		conn->next_id--;
		pthread_cond_wait(&conn->cond, &conn->lock);
	}
	conn->slots[f->id & (CL_SLOTS - 1)] = f;
	pthread_mutex_unlock(&conn->lock);
	return 0;
}

/* A new future of conn's, for cb (arg), its clocks started. */
static struct dj_future *future_start(struct dj_conn *conn, dj_future_cb cb, void *arg)
{
	struct dj_future *f = future_new();
	uint32_t timeout = conn->cl->o.request_timeout_ms;

	if (f == NULL)
		return NULL;
	atomic_init(&f->refs, 2);
	f->conn = conn;
	f->cb = cb;
	f->arg = arg;
	f->t0 = djc_time_ns();
	f->deadline_ns = timeout > 0 ? f->t0 + (uint64_t)timeout * 1000000ull : UINT64_MAX;
	return f;
}

/* f's request was written (rc 0) or not: where f holds a slot, the reader
 * (or the poison) completes it and the caller learns rc from it. */
static int request_sent(struct dj_conn *conn, struct dj_future *f, int rc,
			struct dj_future **future)
{
	if (rc != 0 && f->id != 0)
		/* a half-written frame cannot be taken back */
		ctl_client_conn_poison(conn, f->wire_gen, rc);
	if (rc != 0 && f->id == 0) {
		free(f);
		return rc;
	}
	*future = f;
	return 0;
}

static const char *const bin_names[] = {
	[CTL_BIN_PING] = "PING", [CTL_BIN_FREE] = "FREE", [CTL_BIN_EXECUTE] = "EXECUTE",
};

uint64_t ctl_client_hello(struct dj_conn *conn, int *binary, struct dp_endpoint *peer,
			  const char *op, uint16_t *op_id)
{
	const struct dp_caps *caps = &conn->server_caps;
	uint64_t gen;

	pthread_mutex_lock(&conn->lock);
	if (binary != NULL)
		*binary = conn->binary;
	if (peer != NULL)
		*peer = caps->endpoint;
	if (op != NULL)
		*op_id = CTL_BIN_OP_NAMED;
	if (op != NULL && conn->binary) {
		for (int i = 0; i < caps->n_ops && i < DP_MAX_OPS; i++) {
			if (caps->ops[i][0] == op[0] && strcmp(caps->ops[i], op) == 0) {
				*op_id = (uint16_t)i;
				break;
			}
		}
	}
	gen = conn->hello_gen;
	pthread_mutex_unlock(&conn->lock);
	return gen;
}

int ctl_client_bin_request(struct dj_conn *conn, uint64_t hello_gen, uint8_t type,
			   uint8_t *frame, size_t body_len, dj_future_cb cb, void *arg,
			   struct dj_future **future)
{
	struct dj_future *f = future_start(conn, cb, arg);
	size_t tl;
	uint8_t *start;
	int rc;

	if (f == NULL)
		return -ENOMEM;
	f->bin_type = type;
	djc_strcpy(f->type, bin_names[type], sizeof(f->type));
	tl = ctl_client_trace(f->trace);
	start = frame + CTL_CLIENT_BIN_ROOM - tl - CTL_HDR_LEN;
	memcpy(start + CTL_HDR_LEN, f->trace, tl);
	rc = claim_slot(conn, f, hello_gen);
	if (rc == 0) {
		ctl_bin_hdr_encode(start, type, (uint8_t)tl, (uint32_t)(tl + body_len), f->id);
		rc = conn_send(conn, f->wire_gen, start, CTL_HDR_LEN + tl + body_len, NULL, 0);
	}
	return request_sent(conn, f, rc, future);
}

int ctl_client_request(struct dj_conn *conn, cJSON *msg, const void *payload, uint64_t payload_len,
	       void *dst, uint64_t dst_len, dj_future_cb cb, void *arg,
	       struct dj_future **future)
{
	struct dj_future *f = msg != NULL ? future_start(conn, cb, arg) : NULL;
	int rc;

	if (f == NULL) {
		cJSON_Delete(msg);
		return -ENOMEM;
	}
	f->dst = dst;
	f->dst_len = dst_len;
	djc_strcpy(f->type, cJSON_IsString(cJSON_GetObjectItem(msg, "type")) ?
		   cJSON_GetObjectItem(msg, "type")->valuestring : "?", sizeof(f->type));
	djc_strcpy(f->trace, cJSON_IsString(cJSON_GetObjectItem(msg, "trace")) ?
		   cJSON_GetObjectItem(msg, "trace")->valuestring : "", sizeof(f->trace));
	rc = claim_slot(conn, f, 0);
	if (rc == 0) {
		cJSON_AddNumberToObject(msg, "id", (double)f->id);
		rc = write_frame(conn, f->wire_gen, msg, payload, payload_len);
	}
	cJSON_Delete(msg);
	return request_sent(conn, f, rc, future);
}

int dj_future_wait(struct dj_future *f, int timeout_ms)
{
	struct dj_conn *conn = f->conn;
	uint64_t start = djc_time_ns();
	uint64_t deadline = timeout_ms < 0 ? f->deadline_ns :
			    start + (uint64_t)timeout_ms * 1000000ull;
	uint64_t spin_ns = (uint64_t)conn->cl->o.wait_spin_us * 1000;
	int rc;

	/* A corked request (this one, or one before it) goes out now: the
	 * caller is about to wait. */
	if (!atomic_load_explicit(&f->done, memory_order_acquire))
		flush_counted(conn, &conn->cl->st.flushes_wait); /* an error fails f */
	/* A reply on a fast network arrives within microseconds: spin a little
	 * before paying for a sleep and a wake-up. */
	for (unsigned i = 1; !atomic_load_explicit(&f->done, memory_order_acquire); i++) {
		__builtin_ia32_pause();
		/* The clock every 64 turns: it costs more than a pause. */
		if (i % 64 == 0 && djc_time_ns() - start >= spin_ns)
			break;
	}
	pthread_mutex_lock(&conn->lock);
	while (!f->done) {
		struct timespec ts;
		uint64_t now = djc_time_ns();

		if (now >= deadline)
			break;
		djc_deadline_ts(deadline - now > 100000000ull ? 100000000ull : deadline - now, &ts);
		pthread_cond_timedwait(&conn->cond, &conn->lock, &ts);
	}
	rc = f->done ? f->rc : -ETIMEDOUT;
	pthread_mutex_unlock(&conn->lock);
	return rc;
}

int dj_future_abandon(struct dj_future *f)
{
	if (dj_future_done(f))
		return -EALREADY;
	ctl_client_conn_poison(f->conn, f->wire_gen, -ETIMEDOUT);
	return 0;
}

int dj_future_done(const struct dj_future *f)
{
	int done;

	pthread_mutex_lock(&f->conn->lock);
	done = f->done;
	pthread_mutex_unlock(&f->conn->lock);
	return done;
}

/* A binary reply's first output (EXECUTE); -EBADMSG for replies without
 * one, as a JSON reply without a handle. */
static int bin_handle(const struct dj_future *f, uint64_t *handle, struct dj_tensor_desc *desc)
{
	if ((handle != NULL || desc != NULL) && f->n_out == 0)
		return -EBADMSG;
	if (handle != NULL)
		*handle = f->outs[0].handle;
	if (desc != NULL)
		*desc = f->outs[0].desc;
	return 0;
}

int dj_future_handle(const struct dj_future *f, uint64_t *handle, struct dj_tensor_desc *desc)
{
	const cJSON *src;
	char why[128];

	if (!dj_future_done(f) || f->rc != 0)
		return f->done ? f->rc : -EINPROGRESS;
	if (f->bin_type != 0)
		return bin_handle(f, handle, desc);
	src = cJSON_GetObjectItemCaseSensitive(f->reply, "results");
	if (src != NULL) /* EXECUTE: first output of the (last) op */
		src = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(src, cJSON_GetArraySize(src) - 1), "outputs"), 0);
	else
		src = f->reply;
	if (handle != NULL && ctl_json_handle(src, "handle", handle, why) != 0)
		return -EBADMSG;
	if (desc != NULL && ctl_desc_from_json(src, desc, why) != 0)
		return -EBADMSG;
	return 0;
}

/* The "results" of a completed EXECUTE; NULL with *rc its error, -EINPROGRESS
 * or -EINVAL (not an EXECUTE). */
static const cJSON *execute_results(const struct dj_future *f, int *rc)
{
	const cJSON *results;

	if (!dj_future_done(f) || f->rc != 0) {
		*rc = f->done ? f->rc : -EINPROGRESS;
		return NULL;
	}
	results = cJSON_GetObjectItemCaseSensitive(f->reply, "results");
	*rc = cJSON_IsArray(results) ? 0 : -EINVAL;
	return *rc == 0 ? results : NULL;
}

int dj_future_outputs(const struct dj_future *f, uint64_t *handles,
		      struct dj_tensor_desc *descs, int max)
{
	const cJSON *results, *outputs, *o;
	char why[128];
	int n = 0, rc;

	if (f->bin_type == CTL_BIN_EXECUTE && dj_future_done(f) && f->rc == 0) {
		for (n = 0; n < f->n_out && n < max; n++) {
			handles[n] = f->outs[n].handle;
			if (descs != NULL)
				descs[n] = f->outs[n].desc;
		}
		return n;
	}
	results = execute_results(f, &rc);
	if (results == NULL)
		return rc;
	outputs = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(results, cJSON_GetArraySize(results) - 1), "outputs");
	cJSON_ArrayForEach(o, outputs) {
		if (n == max)
			break;
		if (ctl_json_handle(o, "handle", &handles[n], why) != 0 ||
		    (descs != NULL && ctl_desc_from_json(o, &descs[n], why) != 0))
			return -EBADMSG;
		n++;
	}
	return n;
}

int dj_future_batch_handles(const struct dj_future *f, uint64_t *handles, int max)
{
	const cJSON *results, *res;
	char why[128];
	int n = 0, rc;

	/* A binary EXECUTE is one op: one entry, its first output. */
	if (f->bin_type == CTL_BIN_EXECUTE && dj_future_done(f) && f->rc == 0) {
		if (max > 0 && f->n_out > 0)
			handles[0] = f->outs[0].handle;
		return max > 0 && f->n_out > 0 ? 1 : f->n_out > 0 ? 0 : -EBADMSG;
	}
	results = execute_results(f, &rc);
	if (results == NULL)
		return rc;
	cJSON_ArrayForEach(res, results) {
		const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "outputs"), 0);

		if (n == max)
			break;
		if (o == NULL || ctl_json_handle(o, "handle", &handles[n], why) != 0)
			return -EBADMSG;
		n++;
	}
	return n;
}

const char *dj_future_error(const struct dj_future *f)
{
	return f->done && f->rc != 0 ? f->error : "";
}

void dj_future_release(struct dj_future *f)
{
	if (f != NULL)
		future_unref(f);
}

int ctl_client_call(struct dj_conn *conn, cJSON *msg, const void *payload, uint64_t payload_len,
	    void *dst, uint64_t dst_len, cJSON **reply)
{
	struct dj_future *f;
	int rc = ctl_client_request(conn, msg, payload, payload_len, dst, dst_len, NULL, NULL, &f);

	if (rc != 0)
		return rc;
	rc = dj_future_wait(f, -1);
	if (rc == -ETIMEDOUT && dj_future_abandon(f) == 0) {
		/* The reply may still come and write dst: abandon the connection. */
		dj_future_wait(f, 10000);
		rc = -ETIMEDOUT;
	}
	if (reply != NULL && f->done) {
		*reply = f->reply;
		f->reply = NULL;
	}
	future_unref(f);
	return rc;
}

int ctl_client_sync_call(struct dj_conn *conn, cJSON *msg, cJSON **reply)
{
	const cJSON *type = cJSON_GetObjectItem(msg, "type");
	char name[16], why[CTL_ERRMSG_MAX];
	uint64_t t0 = djc_time_ns();
	struct ctl_hdr h;
	int rc;

	snprintf(name, sizeof(name), "%s", cJSON_IsString(type) ? type->valuestring : "?");
	cJSON_AddNumberToObject(msg, "id", (double)++conn->next_id);
	rc = write_frame(conn, atomic_load(&conn->wire_gen), msg, NULL, 0);
	cJSON_Delete(msg);
	if (rc == 0)
		rc = read_frame_json(conn, &h, reply);
	if (rc == 0)
		reply_log(name, t0, *reply);
	if (rc == 0 && h.payload_len != 0) {
		cJSON_Delete(*reply);
		*reply = NULL;
		rc = -EPROTO; /* the handshake carries no payloads */
	}
	if (rc == 0 && (rc = ctl_client_reply_error(*reply, why)) != 0) {
		ctl_client_error_set(conn, "%s", why);
		cJSON_Delete(*reply);
		*reply = NULL;
	}
	return rc;
}

void ctl_client_error_set(struct dj_conn *conn, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&conn->lock);
	va_start(ap, fmt);
	vsnprintf(conn->last_error, sizeof(conn->last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&conn->lock);
}
