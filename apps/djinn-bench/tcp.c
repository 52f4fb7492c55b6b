/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp: the same transfers over plain kernel TCP, for the ratio in
 * scripts/bench-memif.sh. recv listens; send connects. Per transfer the
 * receiver reads exactly size bytes and answers one byte, so the sender's
 * clock covers the whole delivery, as with the data plane.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "bench.h"

static int io_all(int fd, void *buf, uint64_t len, int writing)
{
	uint8_t *p = buf;

	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = writing ? write(fd, p, chunk) : read(fd, p, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		p += n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int tcp_connect_or_accept(const struct bench_opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o->tcp_port)};
	int one = 1, fd, conn = -1;

	if (inet_pton(AF_INET, o->tcp_host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->role == ROLE_RECV) {
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0)
			conn = accept(fd, NULL, NULL);
		close(fd);
	} else {
		/* The listener may not be up yet. */
		for (int tries = 0; tries < 300; tries++) {
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				conn = fd;
				break;
			}
			usleep(100000);
		}
		if (conn < 0)
			close(fd);
	}
	if (conn < 0)
		return -errno;
	setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return conn;
}

static int tcp_size(int fd, const struct bench_opts *o, uint64_t size, unsigned int iters,
		    uint8_t *buf, struct bench_row *row)
{
	uint64_t *ns = calloc(iters, sizeof(*ns)), total = 0, best = UINT64_MAX;
	uint8_t ack = 1;
	int rc = ns ? 0 : -ENOMEM;

	for (unsigned int i = 0; i < iters && rc == 0; i++) {
		uint64_t t0 = djc_time_ns();

		if (o->role == ROLE_SEND) {
			rc = io_all(fd, buf, size, 1);
			if (rc == 0)
				rc = io_all(fd, &ack, 1, 0);
		} else {
			rc = io_all(fd, buf, size, 0);
			if (rc == 0 && o->verify && i == 0 && !bench_pattern_check(buf, size, size))
				rc = -EIO;
			if (rc == 0)
				rc = io_all(fd, &ack, 1, 1);
		}
		ns[i] = djc_time_ns() - t0;
		total += ns[i];
		best = ns[i] < best ? ns[i] : best;
	}
	*row = (struct bench_row){.size = size, .iters = iters};
	if (rc == 0 && o->role == ROLE_SEND) {
		row->gbps = (double)size * 8 * iters / (double)total;
		row->best_gbps = (double)size * 8 / (double)best;
		bench_percentiles(ns, iters, row);
	}
	free(ns);
	return rc;
}

int bench_tcp(const struct bench_opts *o, struct bench_result *r)
{
	uint64_t max = 0;
	uint8_t *buf;
	int fd, rc = 0;

	for (unsigned int s = 0; s < o->n_sizes; s++)
		max = o->sizes[s] > max ? o->sizes[s] : max;
	buf = bench_alloc(max);
	if (buf == NULL)
		return -ENOMEM;
	fd = tcp_connect_or_accept(o);
	r->mode = "tcp";
	for (unsigned int s = 0; fd >= 0 && rc == 0 && s < o->n_sizes; s++) {
		uint64_t size = o->sizes[s];
		unsigned int iters = o->iters ? o->iters : bench_auto_iters(size);

		if (o->role == ROLE_SEND)
			bench_pattern_fill(buf, size, size);
		rc = tcp_size(fd, o, size, iters, buf, &r->rows[r->n_rows++]);
	}
	if (fd < 0)
		rc = fd;
	else
		close(fd);
	bench_free(buf, max);
	return rc;
}
