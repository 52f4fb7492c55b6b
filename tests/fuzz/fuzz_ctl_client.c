/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the client library's reply parsing. A peer on a loopback
 * TCP port answers the client session of ctl_fuzz.c (every request the
 * library makes) with the fuzzed bytes, whatever it asked, then closes; the
 * client must read them (frame headers, JSON, handles, descriptions,
 * capabilities, ERROR replies, GET payloads, batch results) without a crash,
 * a leak or a hang. The input is a mode byte (bit 0: the client holds a
 * token, so a CHALLENGE is answered with AUTH; bit 1: the client has a data
 * path, the fake one of tests/unit/control, so a server announcing DPDK gets
 * a probe, PATH dpdk and PUT/GET over it) and the byte stream.
 *
 * Further connections (a reconnect after the stream ends) are refused by
 * closing them at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "ctl_fuzz.h"
#include "fake_dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct peer {
	int lfd, wake;
	const uint8_t *data;
	size_t size;
};

static int lfd = -1;
static uint16_t port;
static struct fake_dp *fdp;

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ctl_client: %s: %s\n", what, strerror(errno));
		abort();
	}
}

static void init_once(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);

	if (lfd >= 0)
		return;
	dj_log_set_level(DJ_LOG_ERR);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	check(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      listen(lfd, 64) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0,
	      "listen");
	port = ntohs(sa.sin_port);
	fdp = fake_dp_create(fake_net_create(), 47002);
}

/* The first connection gets the input, then end-of-stream; its requests
 * are read and dropped until the client closes. Later ones are closed. */
static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int conn = -1, served = 0;
	char sink[4096];

	for (;;) {
		struct pollfd pf[3] = {{.fd = p->lfd, .events = POLLIN},
				       {.fd = p->wake, .events = POLLIN},
				       {.fd = conn, .events = POLLIN}};

		if (poll(pf, 3, -1) < 0)
			continue;
		if (pf[1].revents)
			break;
		if (pf[2].revents && read(conn, sink, sizeof(sink)) <= 0) {
			close(conn);
			conn = -1;
		}
		if (pf[0].revents) {
			int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd < 0)
				continue;
			if (served) {
				close(fd);
				continue;
			}
			served = 1;
			for (size_t off = 0; off < p->size;) {
				ssize_t w = send(fd, p->data + off, p->size - off, MSG_NOSIGNAL);

				if (w <= 0)
					break;
				off += (size_t)w;
			}
			shutdown(fd, SHUT_WR);
			conn = fd;
		}
	}
	if (conn >= 0)
		close(conn);
	return NULL;
}

/* Connections left in the backlog by the previous input's client (a
 * reconnect it gave up on) would otherwise be served this input. */
static void drain_backlog(void)
{
	struct pollfd pf = {.fd = lfd, .events = POLLIN};

	while (poll(&pf, 1, 0) == 1) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dj_client_options o;
	struct dj_client *cl;
	struct peer p;
	pthread_t th;
	uint64_t one = 1;

	if (size < 1)
		return 0;
	init_once();
	drain_backlog();
	p = (struct peer){.lfd = lfd, .wake = eventfd(0, EFD_CLOEXEC), .data = data + 1,
			  .size = size - 1};
	check(p.wake >= 0, "eventfd");
	check(pthread_create(&th, NULL, peer_main, &p) == 0, "peer thread");
	fz_client_options(&o, port);
	o.token = (data[0] & 1) ? "fuzz-token" : NULL;
	if (data[0] & 2) {
		/* Nothing answers on the fake network: transfers fail at once
		 * or after 1 ms, and the session falls back to TCP. */
		o.datapath = &fdp->dp;
		o.path = DJ_PATH_AUTO;
		o.dp_timeout_ms = 1;
		o.probe_timeout_ms = 1;
	}
	if (dj_client_create(&o, &cl) == 0) {
		fz_client_script(cl);
		dj_client_destroy(cl);
	}
	check(write(p.wake, &one, sizeof(one)) == sizeof(one), "wake");
	pthread_join(th, NULL);
	close(p.wake);
	return 0;
}
