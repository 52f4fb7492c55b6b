/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_io.h"

#ifdef DJ_HAVE_OPENSSL
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * OpenSSL writes with write(2), which raises SIGPIPE on a closed peer and
 * would kill a process that did not ignore it (we do not touch the
 * process-wide disposition from a library). Block it around the call and
 * swallow any SIGPIPE this thread raised.
 */
struct sigpipe_guard {
	sigset_t old;
	int blocked;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	g->blocked = !sigismember(&g->old, SIGPIPE);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	struct timespec zero = {0, 0};
	sigset_t set, pending;

	if (!g->blocked)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) > 0)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static ssize_t ssl_write_guarded(SSL *ssl, const void *buf, size_t len);
static ssize_t ssl_read_guarded(SSL *ssl, void *buf, size_t len);

/* SSL_read/SSL_write result -> our convention. */
static ssize_t ssl_result(SSL *ssl, int n)
{
	int err;

	if (n > 0)
		return n;
	err = SSL_get_error(ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (err == SSL_ERROR_SYSCALL && errno != 0)
		return -errno;
	ERR_clear_error();
	return -ECONNRESET;
}
#endif

ssize_t ctl_stream_read(struct ctl_stream *io, void *buf, size_t len)
{
	ssize_t n;

#ifdef DJ_HAVE_OPENSSL
	if (io->ssl != NULL)
		return ssl_read_guarded(io->ssl, buf, len);
#endif
	do
		n = recv(io->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

ssize_t ctl_stream_write(struct ctl_stream *io, const void *buf, size_t len)
{
	ssize_t n;

#ifdef DJ_HAVE_OPENSSL
	if (io->ssl != NULL)
		return ssl_write_guarded(io->ssl, buf, len);
#endif
	do
		n = send(io->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

ssize_t ctl_stream_writev(struct ctl_stream *io, const struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	ssize_t w;

	if (io->ssl != NULL)
		return ctl_stream_write(io, iov[0].iov_base, iov[0].iov_len);
	do
		w = sendmsg(io->fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return w;
}

/* Blocking plain socket: MSG_WAITALL lets the kernel fill a large buffer in
 * one call instead of waking us for every segment batch. */
static ssize_t read_most(struct ctl_stream *io, void *buf, size_t len)
{
	ssize_t n;

	if (io->ssl != NULL)
		return ctl_stream_read(io, buf, len);
	do
		n = recv(io->fd, buf, len, MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

int ctl_stream_read_all(struct ctl_stream *io, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read_most(io, p, len);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_stream_write_all(struct ctl_stream *io, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = ctl_stream_write(io, p, len);

		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_stream_writev_all(struct ctl_stream *io, struct iovec *iov, int n)
{
	/* TLS writes one buffer a time: each whole, in order. */
	for (int i = 0; io->ssl != NULL && i < n; i++) {
		int rc = ctl_stream_write_all(io, iov[i].iov_base, iov[i].iov_len);

		if (rc != 0)
			return rc;
	}
	while (io->ssl == NULL && n > 0) {
		ssize_t w = ctl_stream_writev(io, iov, n);

		if (w < 0)
			return (int)w;
		/* Skip what went; the rest of a buffer cut short stays. */
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int ctl_stream_pending(struct ctl_stream *io)
{
#ifdef DJ_HAVE_OPENSSL
	if (io->ssl != NULL)
		return SSL_pending(io->ssl) > 0;
#endif
	return 0;
}

void ctl_stream_close(struct ctl_stream *io)
{
#ifdef DJ_HAVE_OPENSSL
	if (io->ssl != NULL) {
		struct sigpipe_guard g;

		sigpipe_block(&g);
		SSL_shutdown(io->ssl);
		sigpipe_restore(&g);
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
#endif
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

#ifdef DJ_HAVE_OPENSSL
/* SSL_read writes too (handshake, alerts, key updates). */
static ssize_t ssl_read_guarded(SSL *ssl, void *buf, size_t len)
{
	struct sigpipe_guard g;
	ssize_t n;

	sigpipe_block(&g);
	n = ssl_result(ssl, SSL_read(ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len)));
	sigpipe_restore(&g);
	return n;
}

static ssize_t ssl_write_guarded(SSL *ssl, const void *buf, size_t len)
{
	struct sigpipe_guard g;
	ssize_t n;

	sigpipe_block(&g);
	n = ssl_result(ssl, SSL_write(ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len)));
	sigpipe_restore(&g);
	return n;
}

int ctl_tls_server_ctx(const char *cert, const char *key, void **ctx)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	if (c == NULL)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		DJC_LOG(DJ_LOG_ERR, "ctl", "TLS: cannot load certificate %s / key %s", cert, key);
		ERR_clear_error();
		SSL_CTX_free(c);
		return -EINVAL;
	}
	/* Partial writes: the server's write loop resumes where it stopped, from
	 * a buffer that may move between calls. */
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	*ctx = c;
	return 0;
}

int ctl_tls_client_ctx(const char *ca, void **ctx)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (c == NULL)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (ca != NULL) {
		if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
			ERR_clear_error();
			SSL_CTX_free(c);
			return -EINVAL;
		}
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	} else {
		DJC_LOG(DJ_LOG_WARN, "ctl", "TLS without a CA: the server is not verified");
	}
	*ctx = c;
	return 0;
}

void ctl_tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

int ctl_tls_attach(void *ctx, int fd, int server, struct ctl_stream *io)
{
	SSL *ssl = SSL_new(ctx);
	struct sigpipe_guard g;
	int ok;

	if (ssl == NULL)
		return -ENOMEM;
	SSL_set_fd(ssl, fd);
	io->fd = fd;
	io->ssl = ssl;
	if (server) {
		SSL_set_accept_state(ssl);
		return 0;
	}
	sigpipe_block(&g);
	ok = SSL_connect(ssl) == 1;
	sigpipe_restore(&g);
	if (!ok) {
		DJC_LOG(DJ_LOG_ERR, "ctl", "TLS handshake failed");
		ERR_clear_error();
		SSL_free(ssl);
		io->ssl = NULL;
		return -ECONNREFUSED;
	}
	return 0;
}
#else
int ctl_tls_server_ctx(const char *cert, const char *key, void **ctx)
{
	return -ENOTSUP;
}

int ctl_tls_client_ctx(const char *ca, void **ctx)
{
	return -ENOTSUP;
}

void ctl_tls_ctx_free(void *ctx)
{
}

int ctl_tls_attach(void *ctx, int fd, int server, struct ctl_stream *io)
{
	return -ENOTSUP;
}
#endif
