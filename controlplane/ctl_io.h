/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_IO_H
#define DJINN_CTL_IO_H

/*
 * A byte stream that is a plain socket or TLS over it (OpenSSL), so the
 * server and client code never care which. Non-blocking sockets give -EAGAIN
 * (also while a TLS handshake waits for the peer).
 */
#include <stddef.h>
#include <sys/types.h>

struct ctl_stream {
	int fd;
	void *ssl;  /* SSL *, or NULL for plain TCP */
};

/* >0 bytes, 0 at end of stream, or -EAGAIN / -errno. */
ssize_t ctl_stream_read(struct ctl_stream *io, void *buf, size_t len);
ssize_t ctl_stream_write(struct ctl_stream *io, const void *buf, size_t len);
/* Gathered write (plain sockets); TLS writes the first buffer only. */
struct iovec;
ssize_t ctl_stream_writev(struct ctl_stream *io, const struct iovec *iov, int n);
/* Blocking sockets: the whole buffer, or -errno (-ECONNRESET at end of stream). */
int ctl_stream_read_all(struct ctl_stream *io, void *buf, size_t len);
int ctl_stream_write_all(struct ctl_stream *io, const void *buf, size_t len);
/* Every byte of iov[0 .. n-1], in order (iov is consumed), or -errno. */
int ctl_stream_writev_all(struct ctl_stream *io, struct iovec *iov, int n);
/* TLS: bytes already decrypted and waiting (epoll cannot see them). */
int ctl_stream_pending(struct ctl_stream *io);
/* Shut TLS down (best effort) and close the socket. */
void ctl_stream_close(struct ctl_stream *io);

/* TLS contexts (SSL_CTX *); -ENOTSUP where built without OpenSSL. */
int ctl_tls_server_ctx(const char *cert, const char *key, void **ctx);
/* ca NULL: no verification of the server certificate. */
int ctl_tls_client_ctx(const char *ca, void **ctx);
void ctl_tls_ctx_free(void *ctx);
/* Wrap fd; the server side handshakes lazily inside read/write, the client
 * side handshakes now (blocking socket). */
int ctl_tls_attach(void *ctx, int fd, int server, struct ctl_stream *io);

#endif
