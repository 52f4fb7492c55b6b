/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-fallback: goodput of the control plane's TCP fallback against plain
 * TCP (iperf3-like: one stream, blocking sockets, same buffer sizes) in the
 * same run, over loopback.
 *
 *   bench-fallback [--size MiB] [--iters N] [--rounds R] [--chunked] [--json]
 *                  [--small] [--pings N] [--execs N] [--window N] [--spin-us N]
 *                  [--no-inline] [--busy-poll-us N] [--json-frames] [--no-cork]
 *
 * Djinn side: an in-process control-plane server with a host-memory backend;
 * PUT into a resident tensor (dj_put_into) and GET back, each a request and
 * its reply; "PUT new" also allocates (and frees) a tensor each time. Plain side: the same bytes over one TCP connection, the receiver
 * answering each message with one byte, so both measure "send S bytes, learn
 * they arrived". Prints a table and one JSON line.
 *
 * Small requests: PING round trips one at a time against a plain 1-byte TCP
 * ping-pong, and EXECUTE on a one-element resident tensor with --window
 * requests in flight (each result freed asynchronously). By default they run
 * once after the transfers; --small runs only them, R rounds interleaved
 * (plain ping-pong, PINGs, EXECUTEs), medians over rounds with the spread.
 * The client corks requests (dj_client_options.no_autocork) unless --no-cork;
 * the JSON line gives how many requests went per socket write.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "controlplane/ctl.h"
#include "djinn/djinn.h"
#include "mem_backend.h"

struct bench_opts {
	size_t size;
	int iters;
	int chunked;
	int json_only;
	int rounds;
	int small;                /* small requests only, every round */
	int pings, execs, window;
	int spin_us;              /* busy-wait budgets; -1: the defaults */
	int no_inline;            /* every EXECUTE through a worker */
	int busy_poll_us;         /* the server's; -1: its default */
	int json_frames;          /* the client sends JSON frames only (no binary) */
	int no_cork;              /* every request its own send(2) */
};

#define MAX_ROUNDS 64

struct result {
	double put_gbps, get_gbps, put_new_gbps;
	double tcp_send_gbps, tcp_recv_gbps;
	double ping_us_median, ping_us_p99, plain_ping_us, plain_spin_us;
	double exec_per_s;        /* small EXECUTEs, window in flight */
	/* --small: each round's figures (medians above are over these). */
	int n_small;
	double r_ping[MAX_ROUNDS], r_p99[MAX_ROUNDS], r_plain[MAX_ROUNDS], r_exec[MAX_ROUNDS];
	double r_spin[MAX_ROUNDS];
	struct dj_client_stats cs; /* the client's, at the end */
};

#define PINGS_MAX 1000000
#define WINDOW_MAX 4096

static double median(double *v, int n);

static double gbps(size_t bytes, int iters, uint64_t ns)
{
	return (double)bytes * iters * 8.0 / (double)ns;
}

/* ---- plain TCP ------------------------------------------------------------ */

struct plain_peer {
	int lfd;
	size_t size;
	int iters;
	int send_back; /* 0: receive messages, 1: send them */
	int spin;      /* both ends poll (MSG_DONTWAIT) instead of blocking */
};

/* len bytes in or out; with spin, non-blocking calls retried until done
 * (the floor of a round trip with no wake-up on either side). */
static int full_io_how(int fd, void *buf, size_t len, int sending, int spin)
{
	int flags = spin ? MSG_DONTWAIT : 0;
	char *p = buf;

	while (len > 0) {
		ssize_t n = sending ? send(fd, p, len, MSG_NOSIGNAL | flags) : recv(fd, p, len, flags);

		if (n < 0 && spin && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int full_io(int fd, void *buf, size_t len, int sending)
{
	return full_io_how(fd, buf, len, sending, 0);
}

/* The far end: per message, receive S bytes then answer 1 byte (or, in
 * reverse, receive a 1-byte request then send S bytes). */
static void *plain_server(void *arg)
{
	struct plain_peer *pp = arg;
	char *buf = malloc(pp->size), ack = 1;
	int fd = accept(pp->lfd, NULL, NULL), one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(buf, 7, pp->size);
	for (int i = 0; i < pp->iters + 1; i++) {
		if (pp->send_back ? full_io_how(fd, &ack, 1, 0, pp->spin) ||
				    full_io_how(fd, buf, pp->size, 1, pp->spin) :
				    full_io(fd, buf, pp->size, 0) || full_io(fd, &ack, 1, 1))
			break;
	}
	close(fd);
	free(buf);
	return NULL;
}

/* A loopback connection to a plain_server thread (pp says what it does);
 * returns the client socket. */
static int plain_open(struct plain_peer *pp, pthread_t *th)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd, one = 1;

	pp->lfd = socket(AF_INET, SOCK_STREAM, 0);
	bind(pp->lfd, (struct sockaddr *)&sa, sizeof(sa));
	listen(pp->lfd, 1);
	getsockname(pp->lfd, (struct sockaddr *)&sa, &sl);
	pthread_create(th, NULL, plain_server, pp);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void plain_close(struct plain_peer *pp, pthread_t th, int fd)
{
	close(fd);
	pthread_join(th, NULL);
	close(pp->lfd);
}

static double plain_tcp(const struct bench_opts *o, int reverse)
{
	struct plain_peer pp = {.size = o->size, .iters = o->iters, .send_back = reverse};
	char *buf = malloc(o->size), ack = 1;
	pthread_t th;
	uint64_t t0 = 0, ns;
	int fd = plain_open(&pp, &th);

	memset(buf, 3, o->size);
	for (int i = 0; i < o->iters + 1; i++) { /* the first one warms up */
		if (i == 1)
			t0 = djc_time_ns();
		if (reverse ? full_io(fd, &ack, 1, 1) || full_io(fd, buf, o->size, 0) :
			      full_io(fd, buf, o->size, 1) || full_io(fd, &ack, 1, 0))
			break;
	}
	ns = djc_time_ns() - t0;
	plain_close(&pp, th, fd);
	free(buf);
	return gbps(o->size, o->iters, ns);
}

/* Plain TCP ping-pong: one byte each way, the far end a thread blocked in
 * recv(2), as Djinn's server thread is in epoll_wait(2). With spin, both
 * ends poll their sockets instead: no wake-up anywhere, only the loopback
 * stack (the floor under any TCP request/reply). */
static double plain_ping_us(int n, int spin)
{
	struct plain_peer pp = {.size = 1, .iters = n - 1, .send_back = 1, .spin = spin};
	static double rtt[PINGS_MAX];
	char b = 0;
	pthread_t th;
	int fd = plain_open(&pp, &th);

	for (int i = 0; i < n; i++) {
		uint64_t t0 = djc_time_ns();

		if (full_io_how(fd, &b, 1, 1, spin) || full_io_how(fd, &b, 1, 0, spin))
			break;
		rtt[i] = (double)(djc_time_ns() - t0) / 1e3;
	}
	plain_close(&pp, th, fd);
	return median(rtt, n);
}

/* ---- Djinn's TCP fallback ------------------------------------------------- */

struct djinn_side {
	struct mem_backend *mb;
	struct ctl_server *srv;
	struct dj_client *cl;
	struct dj_conn *conn;
	struct dj_tensor t;
	uint64_t h;
};

static int djinn_up(const struct bench_opts *o, struct djinn_side *d)
{
	struct mem_backend_options mbo = {.chunked = o->chunked, .no_inline = o->no_inline};
	struct ctl_server_config cfg;
	struct dj_client_options co;
	int rc;

	memset(d, 0, sizeof(*d));
	ctl_server_config_init(&cfg);
	dj_client_options_init(&co);
	co.path = DJ_PATH_TCP;
	if (o->spin_us >= 0)
		co.wait_spin_us = (uint32_t)o->spin_us;
	co.json_only = o->json_frames;
	co.no_autocork = o->no_cork;
	cfg.busy_poll_us = o->busy_poll_us;
	d->t = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1,
					   .shape = {(int64_t)(o->size / 4)}},
				  .data = malloc(o->size), .mem = DJ_MEM_HOST};
	rc = d->t.data != NULL ? mem_backend_create(&mbo, &d->mb) : -ENOMEM;
	if (rc == 0)
		rc = ctl_server_create(&cfg, mem_backend_ops(), d->mb, &d->srv);
	if (rc == 0)
		rc = ctl_server_start(d->srv);
	co.port = rc == 0 ? ctl_server_port(d->srv) : 0;
	if (rc == 0)
		rc = dj_client_create(&co, &d->cl);
	if (rc == 0)
		rc = dj_connect(d->cl, &d->conn);
	if (rc == 0) {
		memset(d->t.data, 5, o->size);
		rc = dj_put(d->conn, &d->t, &d->h); /* resident from now on */
	}
	return rc;
}

static void djinn_down(struct djinn_side *d)
{
	if (d->conn != NULL)
		dj_conn_close(d->conn);
	dj_client_destroy(d->cl);
	ctl_server_destroy(d->srv);
	mem_backend_destroy(d->mb);
	free(d->t.data);
}

enum djinn_op { OP_PUT, OP_GET, OP_PUT_NEW };

static int djinn_run(const struct bench_opts *o, struct djinn_side *d, enum djinn_op op,
		     double *out)
{
	uint64_t t0 = djc_time_ns(), nh;
	int rc = 0;

	for (int i = 0; i < o->iters && rc == 0; i++) {
		if (op == OP_PUT) {
			rc = dj_put_into(d->conn, d->h, &d->t);
		} else if (op == OP_GET) {
			rc = dj_get(d->conn, d->h, &d->t);
		} else {
			/* Includes the server's allocation and first touch. */
			rc = dj_put(d->conn, &d->t, &nh);
			if (rc == 0)
				rc = dj_free(d->conn, nh);
		}
	}
	*out = gbps(o->size, o->iters, djc_time_ns() - t0);
	if (rc != 0)
		fprintf(stderr, "bench-fallback: %s\n", dj_strerror(rc));
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Wait for a pending future (if any) and release it. */
static int settle(struct dj_future **f, uint64_t *handle)
{
	int rc = 0;

	if (*f == NULL)
		return 0;
	rc = dj_future_wait(*f, -1);
	if (rc == 0 && handle != NULL)
		rc = dj_future_handle(*f, handle, NULL);
	dj_future_release(*f);
	*f = NULL;
	return rc;
}

/* Small requests: PING round trips one at a time, then EXECUTE on a
 * one-element tensor with o->window requests in flight (each result freed
 * asynchronously as it arrives). */
static int small_requests(const struct bench_opts *o, struct djinn_side *d, struct result *r)
{
	static double rtt[PINGS_MAX];
	static struct dj_future *exec[WINDOW_MAX], *frees[WINDOW_MAX];
	float one = 1.0f;
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {1}},
			      .data = &one, .mem = DJ_MEM_HOST};
	uint64_t h, ns, t0, out;
	int rc = dj_put(d->conn, &t, &h);

	for (int i = 0; i < o->pings && rc == 0; i++) {
		rc = dj_ping(d->conn, &ns);
		rtt[i] = (double)ns / 1e3;
	}
	if (rc == 0 && o->pings > 0) {
		r->ping_us_median = median(rtt, o->pings);
		r->ping_us_p99 = rtt[o->pings * 99 / 100];
	}
	t0 = djc_time_ns();
	for (int i = 0; i < o->execs + o->window && o->execs > 0 && rc == 0; i++) {
		int k = i % o->window;

		if (exec[k] != NULL) {
			rc = settle(&exec[k], &out);
			if (rc == 0)
				rc = settle(&frees[k], NULL);
			if (rc == 0)
				rc = dj_free_async(d->conn, out, NULL, NULL, &frees[k]);
		}
		if (rc == 0 && i < o->execs)
			rc = dj_execute_async(d->conn, "scale", &h, 1, NULL, NULL, NULL, &exec[k]);
	}
	r->exec_per_s = (double)o->execs * 1e9 / (double)(djc_time_ns() - t0);
	for (int k = 0; k < o->window; k++) {
		settle(&exec[k], NULL);
		settle(&frees[k], NULL);
	}
	if (rc == 0)
		rc = dj_free(d->conn, h);
	return rc;
}

/* --small: R rounds of plain ping-pong, PINGs and EXECUTEs, interleaved so
 * that load from elsewhere hits all alike; medians over rounds. */
static int small_rounds(const struct bench_opts *o, struct result *r)
{
	double ping[MAX_ROUNDS], p99[MAX_ROUNDS], plain[MAX_ROUNDS], ex[MAX_ROUNDS], spin[MAX_ROUNDS];
	struct djinn_side d;
	int rc = djinn_up(o, &d);

	for (int i = 0; i < o->rounds && rc == 0; i++) {
		r->r_plain[i] = plain[i] = o->pings > 0 ? plain_ping_us(o->pings, 0) : 0;
		r->r_spin[i] = spin[i] = o->pings > 0 ? plain_ping_us(o->pings, 1) : 0;
		rc = small_requests(o, &d, r);
		r->r_ping[i] = ping[i] = r->ping_us_median;
		r->r_p99[i] = p99[i] = r->ping_us_p99;
		r->r_exec[i] = ex[i] = r->exec_per_s;
		r->n_small = i + 1;
	}
	if (d.cl != NULL)
		dj_client_get_stats(d.cl, &r->cs);
	djinn_down(&d);
	if (rc != 0)
		return rc;
	r->plain_ping_us = median(plain, o->rounds);
	r->plain_spin_us = median(spin, o->rounds);
	r->ping_us_median = median(ping, o->rounds);
	r->ping_us_p99 = median(p99, o->rounds);
	r->exec_per_s = median(ex, o->rounds);
	return 0;
}

/* Rounds interleave plain and Djinn so that load from elsewhere hits both
 * alike; each figure is the median over rounds. */
static int run_rounds(const struct bench_opts *o, struct result *r)
{
	double ps[MAX_ROUNDS], pr[MAX_ROUNDS], put[MAX_ROUNDS], get[MAX_ROUNDS], pn[MAX_ROUNDS];
	struct djinn_side d;
	int rc = djinn_up(o, &d);

	for (int i = 0; i < o->rounds && rc == 0; i++) {
		ps[i] = plain_tcp(o, 0);
		rc = djinn_run(o, &d, OP_PUT, &put[i]);
		pr[i] = plain_tcp(o, 1);
		if (rc == 0)
			rc = djinn_run(o, &d, OP_GET, &get[i]);
		if (rc == 0)
			rc = djinn_run(o, &d, OP_PUT_NEW, &pn[i]);
	}
	if (rc == 0)
		rc = small_requests(o, &d, r);
	r->plain_ping_us = o->pings > 0 ? plain_ping_us(o->pings, 0) : 0;
	djinn_down(&d);
	if (rc != 0)
		return rc;
	r->tcp_send_gbps = median(ps, o->rounds);
	r->tcp_recv_gbps = median(pr, o->rounds);
	r->put_gbps = median(put, o->rounds);
	r->get_gbps = median(get, o->rounds);
	r->put_new_gbps = median(pn, o->rounds);
	return 0;
}

static void usage(const char *prog)
{
	printf("Usage: %s [--size MiB] [--iters N] [--rounds R] [--chunked] [--json]\n"
	       "  --size MiB   tensor size (default 64)\n"
	       "  --iters N    transfers per timed run (default 5)\n"
	       "  --rounds R   interleaved plain/Djinn runs; medians reported (default 7)\n"
	       "  --chunked    backend without a host pointer (staging copy path)\n"
	       "  --json       print only the JSON line\n"
	       "  --small      small requests only (PING, EXECUTE), every round\n"
	       "  --pings N    PING round trips per round (default 20000)\n"
	       "  --execs N    EXECUTEs per round (default 50000)\n"
	       "  --window N   EXECUTEs in flight (default 1000)\n"
	       "  --spin-us N  the client's busy-wait budget (a waiting caller, and its\n"
	       "               reader where 8+ CPUs are online; 0 for instruction counts\n"
	       "               under callgrind, where spinning is noise; default: the library's)\n"
	       "  --busy-poll-us N  the server's epoll polling before it sleeps (default:\n"
	       "               the server's, 50 where 8+ CPUs are online, else 0)\n"
	       "  --no-inline  every EXECUTE through a server worker (the backend's\n"
	       "               execute_inline off: the path before it existed)\n"
	       "  --json-frames  the client speaks JSON frames only (PING, FREE and\n"
	       "               EXECUTE as they went before the binary encoding)\n"
	       "  --no-cork    every request its own send(2) (no_autocork: as before\n"
	       "               requests were corked)\n",
	       prog);
}

static int parse_option(int c, const char *arg, void *opts)
{
	struct bench_opts *o = opts;
	uint32_t mib;
	int rc;

	switch (c) {
	case 's':
		rc = djc_opt_u32("--size", arg, 1, 1u << 20, &mib);
		o->size = rc == 0 ? (size_t)mib << 20 : o->size;
		return rc;
	case 'n': return djc_opt_int("--iters", arg, 1, 1000000, &o->iters);
	case 'r': return djc_opt_int("--rounds", arg, 1, MAX_ROUNDS, &o->rounds);
	case 'c': o->chunked = 1; return 0;
	case 'j': o->json_only = 1; return 0;
	case 'S': o->small = 1; return 0;
	case 'P': return djc_opt_int("--pings", arg, 0, PINGS_MAX, &o->pings);
	case 'E': return djc_opt_int("--execs", arg, 0, 100000000, &o->execs);
	case 'W': return djc_opt_int("--window", arg, 1, WINDOW_MAX, &o->window);
	case 'U': return djc_opt_int("--spin-us", arg, 0, 1000000, &o->spin_us);
	case 'I': o->no_inline = 1; return 0;
	case 'B': return djc_opt_int("--busy-poll-us", arg, 0, 1000000, &o->busy_poll_us);
	case 'J': o->json_frames = 1; return 0;
	case 'K': o->no_cork = 1; return 0;
	default: return -EINVAL;
	}
}

static int parse(int argc, char **argv, void *opts)
{
	static const struct option longopts[] = {
		{"size", required_argument, NULL, 's'},
		{"iters", required_argument, NULL, 'n'},
		{"rounds", required_argument, NULL, 'r'},
		{"chunked", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"small", no_argument, NULL, 'S'},
		{"pings", required_argument, NULL, 'P'},
		{"execs", required_argument, NULL, 'E'},
		{"window", required_argument, NULL, 'W'},
		{"spin-us", required_argument, NULL, 'U'},
		{"no-inline", no_argument, NULL, 'I'},
		{"busy-poll-us", required_argument, NULL, 'B'},
		{"json-frames", no_argument, NULL, 'J'},
		{"no-cork", no_argument, NULL, 'K'},
		{NULL, 0, NULL, 0},
	};

	return djc_cli_getopt(argc, argv, "s:n:", longopts, parse_option, opts, NULL);
}

/* The --small table: one line per round, then the medians. */
static void print_small(const struct bench_opts *o, const struct result *r)
{
	printf("small requests, loopback, %d PINGs and %d EXECUTEs (%d in flight) per round, "
	       "%d rounds, %s frames, corking %s\n", o->pings, o->execs, o->window, r->n_small,
	       o->json_frames ? "JSON" : "binary", o->no_cork ? "off" : "on");
	printf("%-8s %16s %16s %14s %14s %14s\n", "round", "plain ping us", "plain spin us",
	       "PING p50 us", "PING p99 us", "EXECUTE /s");
	for (int i = 0; i < r->n_small; i++)
		printf("%-8d %16.1f %16.1f %14.1f %14.1f %14.0f\n", i + 1, r->r_plain[i], r->r_spin[i],
		       r->r_ping[i], r->r_p99[i], r->r_exec[i]);
	printf("%-8s %16.1f %16.1f %14.1f %14.1f %14.0f\n", "median", r->plain_ping_us,
	       r->plain_spin_us, r->ping_us_median, r->ping_us_p99, r->exec_per_s);
	printf("client: %llu requests corked, %llu socket writes of requests "
	       "(flushes: %llu by the reader, %llu by callers, %llu by waits)\n",
	       (unsigned long long)r->cs.corked, (unsigned long long)r->cs.request_writes,
	       (unsigned long long)r->cs.flushes_reader, (unsigned long long)r->cs.flushes_caller,
	       (unsigned long long)r->cs.flushes_wait);
}

static void print_rounds(const char *key, const double *v, int n, const char *fmt)
{
	printf(",\"%s\":[", key);
	for (int i = 0; i < n; i++) {
		printf(i > 0 ? "," : "");
		printf(fmt, v[i]);
	}
	printf("]");
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.size = 64u << 20, .iters = 5, .rounds = 7, .pings = 20000,
			       .execs = 50000, .window = 1000, .spin_us = -1, .busy_poll_us = -1};
	const struct djc_cli_tool tool = {
		.name = "bench-fallback", .usage = usage, .parse = parse, .opts = &o,
	};
	struct result r = {0};
	int rc = djc_cli_begin(&tool, argc, argv);

	if (rc >= 0)
		return rc;
	dj_log_set_level(DJ_LOG_WARN);
	if ((o.small ? small_rounds(&o, &r) : run_rounds(&o, &r)) != 0)
		return 1;
	if (o.small) {
		if (!o.json_only)
			print_small(&o, &r);
		printf("{\"bench\":\"fallback-small\",\"frames\":\"%s\",\"cork\":%s,\"rounds\":%d,"
		       "\"pings\":%d,\"execs\":%d,"
		       "\"window\":%d,\"ping_us_median\":%.2f,\"ping_us_p99\":%.2f,"
		       "\"plain_ping_us\":%.2f,\"plain_spin_us\":%.2f,\"exec_per_s\":%.0f,"
		       "\"corked\":%llu,\"request_writes\":%llu",
		       o.json_frames ? "json" : "binary", o.no_cork ? "false" : "true", r.n_small,
		       o.pings, o.execs, o.window, r.ping_us_median, r.ping_us_p99, r.plain_ping_us,
		       r.plain_spin_us, r.exec_per_s, (unsigned long long)r.cs.corked,
		       (unsigned long long)r.cs.request_writes);
		print_rounds("ping_us_rounds", r.r_ping, r.n_small, "%.2f");
		print_rounds("plain_ping_us_rounds", r.r_plain, r.n_small, "%.2f");
		print_rounds("plain_spin_us_rounds", r.r_spin, r.n_small, "%.2f");
		print_rounds("exec_per_s_rounds", r.r_exec, r.n_small, "%.0f");
		printf("}\n");
		return 0;
	}
	if (!o.json_only) {
		printf("TCP fallback vs plain TCP, loopback, %zu MiB x %d, median of %d rounds%s\n",
		       o.size >> 20, o.iters, o.rounds, o.chunked ? ", chunked backend" : "");
		printf("%-28s %10s %12s %8s\n", "direction", "plain Gb/s", "djinn Gb/s", "ratio");
		printf("%-28s %10.2f %12.2f %7.0f%%\n", "client->server (PUT)", r.tcp_send_gbps,
		       r.put_gbps, 100.0 * r.put_gbps / r.tcp_send_gbps);
		printf("%-28s %10.2f %12.2f %7.0f%%\n", "server->client (GET)", r.tcp_recv_gbps,
		       r.get_gbps, 100.0 * r.get_gbps / r.tcp_recv_gbps);
		printf("%-28s %10.2f %12.2f %7.0f%%\n", "PUT new tensor + FREE", r.tcp_send_gbps,
		       r.put_new_gbps, 100.0 * r.put_new_gbps / r.tcp_send_gbps);
		printf("small requests: PING rtt median %.1f us (plain TCP 1-byte ping-pong %.1f us), "
		       "p99 %.1f us; EXECUTE %d in flight: %.0f /s\n", r.ping_us_median,
		       r.plain_ping_us, r.ping_us_p99, o.window, r.exec_per_s);
	}
	printf("{\"bench\":\"fallback\",\"size_bytes\":%zu,\"iters\":%d,\"rounds\":%d,\"chunked\":%s,"
	       "\"plain_send_gbps\":%.3f,\"plain_recv_gbps\":%.3f,\"put_gbps\":%.3f,"
	       "\"get_gbps\":%.3f,\"put_new_gbps\":%.3f,\"put_ratio\":%.3f,\"get_ratio\":%.3f,"
	       "\"ping_us_median\":%.2f,\"ping_us_p99\":%.2f,\"plain_ping_us\":%.2f,"
	       "\"exec_per_s\":%.0f}\n",
	       o.size, o.iters, o.rounds, o.chunked ? "true" : "false", r.tcp_send_gbps, r.tcp_recv_gbps,
	       r.put_gbps, r.get_gbps, r.put_new_gbps, r.put_gbps / r.tcp_send_gbps,
	       r.get_gbps / r.tcp_recv_gbps, r.ping_us_median, r.ping_us_p99, r.plain_ping_us, r.exec_per_s);
	return 0;
}
