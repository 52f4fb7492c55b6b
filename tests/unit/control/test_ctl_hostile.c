/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile and careless clients against the control-plane server (loopback,
 * the tests' host-memory backend; many source addresses through 127.x.y.z):
 *
 * - a flood of connections that never authenticate (100 from one address,
 *   then 1024 from 256 addresses) locks nobody out: it is held to its own
 *   budget, a real client connects, authenticates and works, and the rest
 *   of the flood is closed when its time runs out;
 * - guessing the token is slowed per address: 4 threads guessing from one
 *   address for 3 s get a handful of guesses judged (7300/s before), while
 *   a client from another address authenticates at once; failed
 *   authentications are logged a few lines per interval, then summed up;
 * - client text never reaches the log raw (a forged line, ANSI escapes) and
 *   every reply is valid UTF-8 JSON even when the request was not.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_wire.h"
#include "fixture.h"
#include "harness.h"

#define HELLO_NONCE "{\"type\":\"HELLO\",\"id\":1,\"version\":1,\"nonce\":" \
	"\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}"
#define WRONG_AUTH "{\"type\":\"AUTH\",\"id\":2,\"mac\":" \
	"\"0000000000000000000000000000000000000000000000000000000000000000\"}"

/* ---- stderr captured to a file, for counting log lines ---- */

struct capture {
	char path[64];
	int fd, saved;
};

static void capture_begin(struct capture *cap)
{
	snprintf(cap->path, sizeof(cap->path), "/tmp/dj-hostile-log.XXXXXX");
	cap->fd = mkstemp(cap->path);
	CU_ASSERT_FATAL(cap->fd >= 0);
	fflush(stderr);
	cap->saved = dup(2);
	dup2(cap->fd, 2);
}

/* Everything logged since capture_begin (malloc'ed, NUL-terminated). */
static char *capture_end(struct capture *cap)
{
	off_t len;
	char *text;

	fflush(stderr);
	dup2(cap->saved, 2);
	close(cap->saved);
	len = lseek(cap->fd, 0, SEEK_END);
	text = calloc(1, (size_t)len + 1);
	if (text != NULL && pread(cap->fd, text, (size_t)len, 0) != len)
		text[0] = '\0';
	close(cap->fd);
	unlink(cap->path);
	return text;
}

static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (memmem(line, len, needle, strlen(needle)) != NULL)
			n++;
		line = end != NULL ? end + 1 : NULL;
	}
	return n;
}

static void raise_fd_limit(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		dj_test_skip("needs %llu file descriptors, the limit is %llu",
			     (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

static int still_open(const int *fds, int n)
{
	int open = 0;

	for (int i = 0; i < n; i++)
		open += fds[i] >= 0 && !fx_raw_closed(fds[i], 20);
	return open;
}

/* A client with the right token: connects, authenticates, moves a tensor. */
static void real_client_works(const struct fixture *fx, const char *token, uint64_t *connect_ms)
{
	struct dj_client_options o;
	struct dj_client *cl;
	struct dj_conn *conn = NULL;
	float v[64], back[64] = {0};
	struct dj_tensor t = {.desc = {DJ_DTYPE_FLOAT32, 1, {64}}, .data = v, .mem = DJ_MEM_HOST};
	struct dj_tensor b = t;
	uint64_t t0 = djc_time_ns(), h;

	for (int i = 0; i < 64; i++)
		v[i] = (float)i * 0.5f;
	b.data = back;
	fx_client_opts(fx, &o);
	o.token = token;
	o.max_retries = 0;
	CU_ASSERT_FATAL(dj_client_create(&o, &cl) == 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &conn), 0);
	*connect_ms = (djc_time_ns() - t0) / 1000000;
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	CU_ASSERT_EQUAL(dj_get(conn, h, &b), 0);
	CU_ASSERT_EQUAL(memcmp(v, back, sizeof(v)), 0);
	CU_ASSERT_EQUAL(dj_ping(conn, NULL), 0);
	dj_conn_close(conn);
	dj_client_destroy(cl);
}

static void test_unauthenticated_flood(void)
{
	enum { ONE_ADDR = 100, FLOOD = 1024 };
	static int fds[ONE_ADDR + FLOOD];
	struct ctl_server_config cfg;
	struct ctl_server_stats st;
	struct fixture fx;
	uint64_t connect_ms;
	char src[32];

	raise_fd_limit(4096);
	ctl_server_config_init(&cfg);
	cfg.limits.auth_timeout_ms = 1500;
	fx_start_token(&fx, &cfg, "flood-token");
	/* One address: held to its own budget at once. */
	for (int i = 0; i < ONE_ADDR; i++)
		fds[i] = fx_raw_connect_from(fx.port, "127.0.0.2");
	usleep(300 * 1000);
	int open_one = still_open(fds, ONE_ADDR);

	printf("\n  %d connections from one address: %d still open (budget %u)\n", ONE_ADDR,
	       open_one, cfg.limits.max_unauth_per_addr);
	CU_ASSERT(open_one <= (int)cfg.limits.max_unauth_per_addr);
	/* 1024 more from 256 addresses: held to the budget of all. */
	for (int i = 0; i < FLOOD; i++) {
		snprintf(src, sizeof(src), "127.1.%d.%d", i / 4 / 250, 1 + i / 4 % 250);
		fds[ONE_ADDR + i] = fx_raw_connect_from(fx.port, src);
	}
	/* The server has until the flood's own deadline to make room: watched,
	 * not slept on, so a loaded machine is given the time it needs. */
	for (int i = 0; i < 100; i++) {
		ctl_server_get_stats(fx.srv, &st);
		if (st.unauth_evicted >= ONE_ADDR + FLOOD - cfg.limits.max_unauth_connections)
			break;
		usleep(10 * 1000);
	}
	printf("  then %d from 256 addresses: %llu unauthenticated open (budget %u), %llu closed "
	       "to make room\n", FLOOD, (unsigned long long)st.connections_unauth,
	       cfg.limits.max_unauth_connections, (unsigned long long)st.unauth_evicted);
	CU_ASSERT(st.connections_unauth <= cfg.limits.max_unauth_connections);
	CU_ASSERT(st.unauth_evicted >= ONE_ADDR + FLOOD - cfg.limits.max_unauth_connections);
	/* A real client still gets in, at once, and works. */
	real_client_works(&fx, "flood-token", &connect_ms);
	printf("  a real client connected and authenticated in %llu ms\n",
	       (unsigned long long)connect_ms);
	CU_ASSERT(connect_ms < 1000);
	/* The rest of the flood goes when its time runs out. */
	usleep((cfg.limits.auth_timeout_ms + 400) * 1000);
	CU_ASSERT_EQUAL(still_open(fds, ONE_ADDR + FLOOD), 0);
	ctl_server_get_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.connections_unauth, 0);
	CU_ASSERT_EQUAL(st.connections_open, 0);
	for (int i = 0; i < ONE_ADDR + FLOOD; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	fx_stop(&fx);
}

struct guesser {
	uint16_t port;
	const char *source;
	uint64_t deadline_ns;
	int judged, other;
};

/* Wrong guesses from one address until the deadline, each on a new
 * connection: HELLO, CHALLENGE, AUTH, the verdict. */
static void *guess_loop(void *arg)
{
	struct guesser *g = arg;

	while (djc_time_ns() < g->deadline_ns) {
		int fd = fx_raw_connect_from(g->port, g->source);
		cJSON *r;

		if (fd < 0)
			break;
		fx_raw_send(fd, HELLO_NONCE, 0);
		r = fx_raw_recv(fd, 3000);
		if (r != NULL && fx_error_code(r) == 0) {
			cJSON_Delete(r);
			fx_raw_send(fd, WRONG_AUTH, 0);
			r = fx_raw_recv(fd, 10000);
			if (fx_error_code(r) == -DJ_EAUTH)
				g->judged++;
			else
				g->other++;
		}
		cJSON_Delete(r);
		close(fd);
	}
	return NULL;
}

static void test_guessing_is_slowed_per_address(void)
{
	enum { THREADS = 4, RUN_MS = 3000 };
	struct guesser g[THREADS];
	pthread_t th[THREADS];
	struct ctl_server_config cfg;
	struct fixture fx;
	uint64_t connect_ms, t0;
	int judged = 0, other = 0;

	ctl_server_config_init(&cfg);
	cfg.limits.auth_timeout_ms = 4000;
	fx_start_token(&fx, &cfg, "guess-me");
	t0 = djc_time_ns();
	for (int i = 0; i < THREADS; i++) {
		g[i] = (struct guesser){.port = fx.port, .source = "127.0.0.3",
					.deadline_ns = t0 + RUN_MS * 1000000ull};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, guess_loop, &g[i]) == 0);
	}
	/* Meanwhile, from another address: served at once. */
	usleep(1500 * 1000);
	real_client_works(&fx, "guess-me", &connect_ms);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		judged += g[i].judged;
		other += g[i].other;
	}
	printf("\n  %d threads guessing from one address for %d ms: %d guesses judged (%.1f/s), "
	       "%d ran out of time waiting; another address authenticated in %llu ms\n", THREADS,
	       RUN_MS, judged, judged * 1000.0 / RUN_MS, other, (unsigned long long)connect_ms);
	/* 100, 200, 400, 800, 1600 ms apart: 6 in 3 s, and the sweep's 100 ms. */
	CU_ASSERT(judged >= 2 && judged <= 10);
	CU_ASSERT(connect_ms < 1000);
	fx_stop(&fx);
}

/* A connection from source that says HELLO and then a wrong AUTH; its
 * verdict is still to be read. */
static int wrong_auth_from(uint16_t port, const char *source)
{
	int fd = fx_raw_connect_from(port, source);

	fx_raw_send(fd, HELLO_NONCE, 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, WRONG_AUTH, 0);
	return fd;
}

/* 30 addresses fail once each within an interval: 5 lines, then one
 * summary naming the rest. */
static void test_failed_auth_log_is_rate_limited(void)
{
	enum { ADDRS = 30 };
	struct ctl_server_config cfg;
	struct ctl_server_stats st;
	struct capture cap;
	struct fixture fx;
	char src[32], *log;
	int lines, summaries;
	uint64_t t0, waited_ms;

	ctl_server_config_init(&cfg);
	/* Long enough for all 30 to fail within one interval on a loaded
	 * machine (under a sanitizer beside other jobs 30 took over 1 s). */
	cfg.limits.log_interval_ms = 4000;
	fx_start_token(&fx, &cfg, "log-me");
	capture_begin(&cap);
	t0 = djc_time_ns();
	for (int i = 0; i < ADDRS; i++) {
		int fd;
		cJSON *r;

		snprintf(src, sizeof(src), "127.0.4.%d", i + 1);
		fd = wrong_auth_from(fx.port, src);
		r = fx_raw_recv(fd, 3000);
		CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
		cJSON_Delete(r);
		close(fd);
	}
	/* The interval ends; the sweep (every 100 ms) sums it up. */
	waited_ms = (djc_time_ns() - t0) / 1000000;
	if (waited_ms < 4400)
		usleep((useconds_t)(4400 - waited_ms) * 1000);
	log = capture_end(&cap);
	CU_ASSERT_FATAL(log != NULL);
	lines = count_lines_with(log, "authentication refused");
	summaries = count_lines_with(log, "25 more failed authentications");
	printf("\n  %d failed authentications: %d lines one by one, %d summary line(s)\n", ADDRS,
	       lines, summaries);
	if (lines != 5 || summaries != 1)
		printf("%s", log);
	CU_ASSERT_EQUAL(lines, 5);
	CU_ASSERT_EQUAL(summaries, 1);
	CU_ASSERT_EQUAL(count_lines_with(log, "(from 30 addresses"), 1);
	ctl_server_get_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.auth_failures, ADDRS);
	free(log);
	fx_stop(&fx);
}

/* Every line of the log is one line of ours: a timestamp, a level. */
static int line_is_ours(const char *line, size_t len)
{
	static const char *const levels[] = {"err    ", "warn   ", "notice ", "info   ", "debug  "};
	size_t i = 0;

	while (i < len && line[i] >= '0' && line[i] <= '9')
		i++;
	if (i == 0 || i + 5 > len || line[i] != '.')
		return 0;
	i += 5;
	for (size_t k = 0; k < sizeof(levels) / sizeof(levels[0]); k++)
		if (len - i >= 7 && memcmp(line + i, levels[k], 7) == 0)
			return 1;
	return 0;
}

static void test_client_text_is_escaped_in_the_log(void)
{
	struct capture cap;
	struct fixture fx;
	enum dj_log_level old = dj_log_get_level();
	char *log;
	int fd, foreign = 0;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fd >= 0 && fx_raw_ready(fd) == 0);
	dj_log_set_level(DJ_LOG_INFO);
	capture_begin(&cap);
	fx_raw_send(fd, "{\"type\":\"PATH\",\"id\":3,\"path\":\"tcp\",\"reason\":\"ok\\n"
		    "1700000000.000 err    ctl: forged line\\u001b[2J\\u001b]0;owned\\u0007\"}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"T\\r\\n1700000000.000 err    ctl: forged type\",\"id\":4}", 0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	fx_raw_send(fd, "{\"type\":\"PATH\",\"id\":5,\"path\":\"x\\n1700000000.000 err   \\u001b[31m\"}",
		    0);
	cJSON_Delete(fx_raw_recv(fd, 3000));
	log = capture_end(&cap);
	dj_log_set_level(old);
	CU_ASSERT_FATAL(log != NULL);
	for (const char *line = log; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (!line_is_ours(line, len)) {
			printf("\n  a line not of ours: '%.*s'\n", (int)len, line);
			foreign++;
		}
		line = end != NULL ? end + 1 : line + len;
	}
	CU_ASSERT_EQUAL(foreign, 0);
	CU_ASSERT_PTR_NULL(strchr(log, '\x1b'));
	CU_ASSERT_PTR_NULL(strchr(log, '\x07'));
	/* The text is there, escaped, on the line of the request. */
	CU_ASSERT_EQUAL(count_lines_with(log, "(ok\\n1700000000.000 err    ctl: forged line\\x1b[2J"), 1);
	CU_ASSERT_EQUAL(count_lines_with(log, "'T\\r\\n1700000000.000 err    ctl: f"), 1);
	CU_ASSERT_EQUAL(count_lines_with(log, "not \"x\\n1700000000.000 err   \\x1b[31m\""), 1);
	free(log);
	close(fd);
	fx_stop(&fx);
}

/* Valid UTF-8 (RFC 3629) and no raw control character: what every reply
 * must be. */
static int valid_utf8_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
			     c >= 0xf0 && c <= 0xf4 ? 4 : 0;

		if (len == 0 || i + len > n || c < 0x20 || c == 0x7f)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f))
			return 0;
		i += len;
	}
	return 1;
}

static void test_replies_are_valid_utf8_json(void)
{
	static const char *const requests[] = {
		"{\"type\":\"PI\xffNG\",\"id\":3}",
		"{\"type\":\"EXECUTE\",\"id\":4,\"op\":\"re\xc3\x28lu\",\"inputs\":[]}",
		"{\"type\":\"ALLOC\",\"id\":5,\"dtype\":\"fl\xe2\x82oat\",\"shape\":[2]}",
		"{\"type\":\"PATH\",\"id\":6,\"path\":\"\xff\xfe\\u001b[2J\"}",
		"{\"type\":\"EXECUTE\",\"id\":7,\"batch\":[{\"op\":\"scale\",\"inputs\":[\"$\xed\xa0\x80\"]}]}",
		"{\"type\":\"GET\",\"id\":8,\"handle\":\"0x\xf4\x90\x80\x80\"}",
		"{\"type\":\"PATH\",\"id\":9,\"path\":\"tcp\",\"reason\":\"\xc0\xaf" "bad\\n\\u001b[2J\xc2\x9b\"}",
		"{\"type\":\"STATS\",\"id\":10}",
	};
	struct fixture fx;
	int fd;

	CU_ASSERT_FATAL(fx_start(&fx, NULL, NULL) == 0);
	fd = fx_raw_connect(fx.port);
	CU_ASSERT_FATAL(fd >= 0 && fx_raw_ready(fd) == 0);
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		char *text = NULL;
		cJSON *r;

		CU_ASSERT_EQUAL(fx_raw_send(fd, requests[i], 0), 0);
		CU_ASSERT_EQUAL_FATAL(fx_raw_recv_frame(fd, 3000, &text, NULL, NULL), 0);
		r = cJSON_Parse(text);
		if (!valid_utf8_text((const unsigned char *)text, strlen(text)))
			printf("\n  request %zu: reply not valid UTF-8 text: %s\n", i, text);
		CU_ASSERT(valid_utf8_text((const unsigned char *)text, strlen(text)));
		CU_ASSERT_PTR_NOT_NULL(r);
		/* Every request but the good PATH and STATS was an error. */
		CU_ASSERT_EQUAL(fx_error_code(r) != 0, i < 6);
		cJSON_Delete(r);
		free(text);
	}
	close(fd);
	fx_stop(&fx);
}

/* A parked AUTH is one request: counted when judged (an error here, never
 * an answer at dispatch), and as an error where its client goes first. */
static void test_parked_auth_counted_when_judged(void)
{
	struct ctl_server_config cfg;
	struct ctl_request_stats st;
	struct fixture fx;
	uint64_t t0;
	int fd;
	cJSON *r;

	ctl_server_config_init(&cfg);
	fx_start_token(&fx, &cfg, "count-me");
	/* The first failure: judged at once; the address's next AUTH waits. */
	fd = wrong_auth_from(fx.port, "127.0.5.1");
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
	cJSON_Delete(r);
	close(fd);
	/* The second: parked about 100 ms, not counted until then. */
	t0 = djc_time_ns();
	fd = wrong_auth_from(fx.port, "127.0.5.1");
	usleep(20 * 1000);
	ctl_server_request_stats(fx.srv, &st);
	if (djc_time_ns() - t0 < 90000000ull) {
		CU_ASSERT_EQUAL(st.errors[CTL_REQ_AUTH], 1);
		CU_ASSERT_EQUAL(st.ok[CTL_REQ_AUTH], 0);
	}
	r = fx_raw_recv(fd, 3000);
	CU_ASSERT_EQUAL(fx_error_code(r), -DJ_EAUTH);
	cJSON_Delete(r);
	close(fd);
	ctl_server_request_stats(fx.srv, &st);
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_AUTH], 2);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_AUTH], 0);
	/* Its latency holds the wait. */
	CU_ASSERT(st.latency_sum_ns[CTL_REQ_AUTH] >= 90000000ull);
	/* The third is parked too; its client leaves first: an error. */
	close(wrong_auth_from(fx.port, "127.0.5.1"));
	for (int waited = 0; waited < 2000; waited += 10) {
		ctl_server_request_stats(fx.srv, &st);
		if (st.errors[CTL_REQ_AUTH] == 3)
			break;
		usleep(10 * 1000);
	}
	CU_ASSERT_EQUAL(st.errors[CTL_REQ_AUTH], 3);
	CU_ASSERT_EQUAL(st.ok[CTL_REQ_AUTH], 0);
	fx_stop(&fx);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"an unauthenticated flood locks nobody out", test_unauthenticated_flood},
		{"guessing the token is slowed per address", test_guessing_is_slowed_per_address},
		{"failed authentications: a few lines, then a summary",
		 test_failed_auth_log_is_rate_limited},
		{"client text is escaped in the log", test_client_text_is_escaped_in_the_log},
		{"replies are valid UTF-8 JSON whatever the request", test_replies_are_valid_utf8_json},
		{"a parked AUTH is counted when judged", test_parked_auth_counted_when_judged},
		{NULL, NULL},
	};
	dj_test_add_suite("control-hostile", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
