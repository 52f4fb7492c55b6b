/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn top: a live view of one server or several (a fleet later), built
 * from their STATS replies: sessions, requests per second, tensor bytes in
 * and out, latency percentiles of the last interval (from the servers'
 * histograms), queue depth, memory per device, lcore busy share. One row
 * per server in a table, then a block of detail per server. Refreshed every
 * interval; q, Ctrl-C or SIGTERM ends it with the terminal as it was.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <cjson/cJSON.h>

#include "common/cli.h"
#include "common/djc.h"
#include "metrics/metrics.h"
#include "top.h"

#define TOP_SCREEN (64u << 10)
#define MIB (1024.0 * 1024.0)

struct top_server {
	char name[96];
	struct dj_client *client;   /* ours; NULL for the caller's connection */
	struct dj_conn *conn;
	cJSON *prev, *cur;          /* the last two STATS replies */
	uint64_t t_prev, t_cur;
	char error[160];
};

struct top_screen {
	char buf[TOP_SCREEN];
	size_t len;
	int width;
	int tty;
};

static volatile sig_atomic_t stop_requested;
static struct termios saved_tty;
static int tty_changed;

static void on_signal(int sig)
{
	stop_requested = 1;
}

/* ---- the terminal ---------------------------------------------------------- */

static void terminal_restore(void)
{
	if (!tty_changed)
		return;
	/* Cursor back, the main screen back, then the line discipline. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_changed = 0;
}

/* Keys one at a time without echo, on the alternate screen. */
static int terminal_setup(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return -errno;
	raw = saved_tty;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0)
		return -errno;
	tty_changed = 1;
	atexit(terminal_restore);
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

static int terminal_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 120;
}

/* ---- STATS figures --------------------------------------------------------- */

/* The item at a dotted path ("server.tensor_bytes.tcp.in"). */
static const cJSON *jget(const cJSON *o, const char *path)
{
	char key[64];

	while (o != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		o = cJSON_GetObjectItemCaseSensitive(o, key);
		path += n + (path[n] == '.');
	}
	return o;
}

static double jnum(const cJSON *o, const char *path)
{
	const cJSON *v = jget(o, path);

	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double interval_s(const struct top_server *s)
{
	return s->prev != NULL ? (double)(s->t_cur - s->t_prev) / 1e9 : NAN;
}

/* Per second over the last interval; NaN before a second sample. */
static double rate(const struct top_server *s, const char *path)
{
	return (jnum(s->cur, path) - jnum(s->prev, path)) / interval_s(s);
}

/* Requests (ok + error, or errors only) of every type. */
static double requests(const cJSON *stats, int errors_only)
{
	const cJSON *t;
	double n = 0;

	cJSON_ArrayForEach(t, jget(stats, "server.requests_by_type"))
		n += (errors_only ? 0 : jnum(t, "ok")) + jnum(t, "error");
	return n;
}

/* The q-quantile in ms of the requests answered during the last interval. */
static double latency_ms(const struct top_server *s, double q)
{
	const cJSON *bounds = jget(s->cur, "server.latency.bounds_s");
	const cJSON *now = jget(s->cur, "server.latency.counts");
	const cJSON *before = jget(s->prev, "server.latency.counts");
	double b[32];
	uint64_t c[33];
	int n = cJSON_GetArraySize(bounds);

	if (s->prev == NULL || n <= 0 || n > 32 || cJSON_GetArraySize(now) != n + 1 ||
	    cJSON_GetArraySize(before) != n + 1)
		return NAN;
	for (int i = 0; i <= n; i++) {
		if (i < n)
			b[i] = cJSON_GetArrayItem(bounds, i)->valuedouble;
		c[i] = (uint64_t)(cJSON_GetArrayItem(now, i)->valuedouble -
				  cJSON_GetArrayItem(before, i)->valuedouble);
	}
	struct mx_histogram h = {(unsigned int)n, b, c, 0};

	return mx_histogram_quantile(&h, q) * 1e3;
}

/* ---- drawing -------------------------------------------------------------------- */

static void line(struct top_screen *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct top_screen *sc, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n > sc->width)
		n = sc->width; /* no wrapping: a line stays a line */
	if (n < 0 || sc->len + (size_t)n + 8 > sizeof(sc->buf))
		return;
	memcpy(sc->buf + sc->len, text, (size_t)n);
	sc->len += (size_t)n;
	/* On a terminal, clear what an earlier, longer frame left. */
	sc->len += (size_t)snprintf(sc->buf + sc->len, sizeof(sc->buf) - sc->len, "%s\n",
				    sc->tty ? "\033[K" : "");
}

/* "-" for NaN (nothing yet), else the number. */
static const char *fmt_num(char *buf, size_t size, const char *fmt, double v)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, fmt, v);
	return buf;
}

static const char *fmt_bytes(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (v >= 1024 * MIB)
		snprintf(buf, size, "%.1f GiB", v / (1024 * MIB));
	else if (v >= MIB)
		snprintf(buf, size, "%.1f MiB", v / MIB);
	else if (v >= 1024)
		snprintf(buf, size, "%.1f KiB", v / 1024);
	else
		snprintf(buf, size, "%.0f B", v);
	return buf;
}

static double tensor_rate(const struct top_server *s, const char *dir)
{
	char a[64], b[64];

	snprintf(a, sizeof(a), "server.tensor_bytes.tcp.%s", dir);
	snprintf(b, sizeof(b), "server.tensor_bytes.dpdk.%s", dir);
	return rate(s, a) + rate(s, b);
}

static void draw_row(struct top_screen *sc, const struct top_server *s)
{
	char f[9][24];

	if (s->cur == NULL) {
		line(sc, "%-24.24s  unreachable: %s", s->name, s->error);
		return;
	}
	snprintf(f[0], sizeof(f[0]), "%.0f/%.0f", jnum(s->cur, "server.sessions_attached"),
		 jnum(s->cur, "server.sessions_lingering"));
	fmt_num(f[1], sizeof(f[1]), "%.1f", (requests(s->cur, 0) - requests(s->prev, 0)) /
					      interval_s(s));
	fmt_num(f[2], sizeof(f[2]), "%.1f", (requests(s->cur, 1) - requests(s->prev, 1)) /
					      interval_s(s));
	fmt_num(f[3], sizeof(f[3]), "%.2f", tensor_rate(s, "in") / MIB);
	fmt_num(f[4], sizeof(f[4]), "%.2f", tensor_rate(s, "out") / MIB);
	fmt_num(f[5], sizeof(f[5]), "%.3f", latency_ms(s, 0.5));
	fmt_num(f[6], sizeof(f[6]), "%.3f", latency_ms(s, 0.99));
	snprintf(f[7], sizeof(f[7]), "%.0f+%.0f", jnum(s->cur, "server.jobs_queued"),
		 jnum(s->cur, "server.jobs_running"));
	line(sc, "%-24.24s %9s %9s %7s %9s %9s %8s %8s %7s", s->name, f[0], f[1], f[2], f[3],
	     f[4], f[5], f[6], f[7]);
}

/* Requests of one type (an item of requests_by_type), 0 where absent. */
static double type_count(const cJSON *t)
{
	return t != NULL ? jnum(t, "ok") + jnum(t, "error") : 0;
}

/* Request types answered in the last interval, "PUT 10.0/s  GET 3.0/s". */
static void type_rates(const struct top_server *s, char *out, size_t size)
{
	const cJSON *t, *before = jget(s->prev, "server.requests_by_type");
	size_t len = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(t, jget(s->cur, "server.requests_by_type")) {
		double r = (type_count(t) -
			    type_count(cJSON_GetObjectItemCaseSensitive(before, t->string))) /
			   interval_s(s);

		if (!(r > 0) || len + 32 >= size)
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s %.1f/s  ", t->string, r);
	}
	if (len == 0)
		snprintf(out, size, "none");
}

static void draw_memory(struct top_screen *sc, const struct top_server *s)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, jget(s->cur, "backend.memory")) {
		char used[24], peak[24], free_b[24], total[24], limit[24];
		const cJSON *dev = cJSON_GetObjectItem(m, "device");

		fmt_bytes(used, sizeof(used), jnum(m, "used"));
		fmt_bytes(peak, sizeof(peak), jnum(m, "peak"));
		fmt_bytes(free_b, sizeof(free_b), jnum(m, "free"));
		fmt_bytes(total, sizeof(total), jnum(m, "total"));
		if (jnum(m, "limit") > 0)
			fmt_bytes(limit, sizeof(limit), jnum(m, "limit"));
		else
			snprintf(limit, sizeof(limit), "none");
		line(sc, "  memory    %s: used %s (peak %s), %.0f tensors, free %s of %s, limit %s",
		     cJSON_IsString(dev) ? dev->valuestring : "?", used, peak, jnum(m, "tensors"),
		     free_b, total, limit);
	}
}

static void draw_lcores(struct top_screen *sc, const struct top_server *s)
{
	const cJSON *now = jget(s->cur, "backend.data_plane.lcores"), *l;
	char text[512], pct[16];
	size_t len = 0;
	int i = 0;

	if (!cJSON_IsArray(now))
		return;
	cJSON_ArrayForEach(l, now) {
		const cJSON *p = cJSON_GetArrayItem(jget(s->prev, "backend.data_plane.lcores"), i);
		double busy = (jnum(l, "busy_ns") - jnum(p, "busy_ns")) /
			      (jnum(l, "loop_ns") - jnum(p, "loop_ns"));

		fmt_num(pct, sizeof(pct), "%.1f%%", busy * 100);
		if (len + 32 < sizeof(text))
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%d: %s busy  ",
						i, pct);
		i++;
	}
	line(sc, "  lcores    %s", text);
}

static void draw_detail(struct top_screen *sc, const struct top_server *s)
{
	const cJSON *compute = jget(s->cur, "backend.compute");
	char types[512], a[24], b[24], c[24], d[24];

	if (s->cur == NULL)
		return;
	line(sc, "%s", "");
	line(sc, "%s: %s, data plane %s", s->name,
	     cJSON_IsString(compute) ? compute->valuestring : "?",
	     cJSON_IsTrue(jget(s->cur, "backend.data_plane.running")) ? "dpdk" : "none (TCP only)");
	type_rates(s, types, sizeof(types));
	line(sc, "  requests  %.0f answered, %.0f errors; last interval: %s", requests(s->cur, 0),
	     requests(s->cur, 1), types);
	line(sc, "  tensors   in: tcp %s/s, dpdk %s/s   out: tcp %s/s, dpdk %s/s",
	     fmt_bytes(a, sizeof(a), rate(s, "server.tensor_bytes.tcp.in")),
	     fmt_bytes(b, sizeof(b), rate(s, "server.tensor_bytes.dpdk.in")),
	     fmt_bytes(c, sizeof(c), rate(s, "server.tensor_bytes.tcp.out")),
	     fmt_bytes(d, sizeof(d), rate(s, "server.tensor_bytes.dpdk.out")));
	draw_memory(sc, s);
	draw_lcores(sc, s);
	line(sc, "  control   %.0f connections, %.0f sessions opened, %.0f data-plane failures",
	     jnum(s->cur, "server.connections_open"), jnum(s->cur, "server.sessions_opened"),
	     jnum(s->cur, "server.dp_failures"));
}

static void draw(struct top_screen *sc, struct top_server *servers, int n,
		 const struct top_options *o)
{
	time_t now = time(NULL);
	char clock[16];
	struct tm tm;

	sc->len = 0;
	sc->width = sc->tty ? terminal_width() : 200;
	localtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	if (sc->tty)
		sc->len += (size_t)snprintf(sc->buf, sizeof(sc->buf), "\033[H");
	line(sc, "djinn top  %d server%s  every %.1f s  %s  %s", n, n == 1 ? "" : "s",
	     o->interval_s, sc->tty ? "q: quit" : "", clock);
	line(sc, "%s", "");
	line(sc, "%-24s %9s %9s %7s %9s %9s %8s %8s %7s", "SERVER", "SESSIONS", "REQ/S", "ERR/S",
	     "IN MiB/s", "OUT MiB/s", "P50 ms", "P99 ms", "QUEUE");
	for (int i = 0; i < n; i++)
		draw_row(sc, &servers[i]);
	for (int i = 0; i < n; i++)
		draw_detail(sc, &servers[i]);
	if (sc->tty)
		sc->len += (size_t)snprintf(sc->buf + sc->len, sizeof(sc->buf) - sc->len, "\033[J");
	else
		line(sc, "%s", "");
	fwrite(sc->buf, 1, sc->len, stdout);
	fflush(stdout);
}

/* ---- servers --------------------------------------------------------------------- */

static void sample(struct top_server *s)
{
	char *json = NULL;
	int rc = dj_stats(s->conn, &json);

	cJSON_Delete(s->prev);
	s->prev = s->cur;
	s->t_prev = s->t_cur;
	s->cur = NULL;
	s->t_cur = djc_time_ns();
	if (rc == 0)
		s->cur = cJSON_Parse(json);
	free(json);
	if (s->cur == NULL) {
		snprintf(s->error, sizeof(s->error), "%s", rc != 0 ? dj_strerror(rc) : "bad STATS");
		cJSON_Delete(s->prev);
		s->prev = NULL;
	}
}

static int server_open(struct top_server *s, const struct dj_client_options *opts,
		       const char *hostport)
{
	struct dj_client_options o = *opts;
	char host[80];
	int rc;

	if (djc_parse_host_port(hostport, host, sizeof(host), 1, &o.port) != 0)
		return -EINVAL;
	snprintf(s->name, sizeof(s->name), "%s", hostport);
	o.host = host;
	o.datapath = NULL;          /* STATS only: no tensor bytes */
	o.path = DJ_PATH_TCP;
	rc = dj_client_create(&o, &s->client);
	if (rc == 0)
		rc = dj_connect(s->client, &s->conn);
	return rc;
}

static void servers_close(struct top_server *servers, int n)
{
	for (int i = 0; i < n; i++) {
		cJSON_Delete(servers[i].prev);
		cJSON_Delete(servers[i].cur);
		if (servers[i].client != NULL) {
			if (servers[i].conn != NULL)
				dj_disconnect(servers[i].conn);
			dj_client_destroy(servers[i].client);
		}
	}
}

/* Wait up to ms for q (1), a signal or the end of the interval (0). */
static int wait_key(int tty, int ms)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	uint64_t until = djc_time_ns() + (uint64_t)ms * 1000000ull;
	char c;

	while (!stop_requested) {
		int64_t left = (int64_t)(until - djc_time_ns()) / 1000000;

		if (left <= 0)
			return 0;
		if (!tty) {
			poll(NULL, 0, (int)left);
			continue;
		}
		if (poll(&p, 1, (int)left) > 0 && read(STDIN_FILENO, &c, 1) == 1 &&
		    (c == 'q' || c == 'Q'))
			return 1;
	}
	return 1;
}

int top_main(struct dj_conn *conn, const struct dj_client_options *opts,
	     const struct top_options *o, int argc, char **argv)
{
	static struct top_screen screen;
	struct top_server servers[TOP_MAX_SERVERS];
	struct sigaction sa = {.sa_handler = on_signal};
	int n = 1, status = 0, ms = (int)(o->interval_s * 1000);

	memset(servers, 0, sizeof(servers));
	servers[0].conn = conn;
	snprintf(servers[0].name, sizeof(servers[0].name), "%s:%u", opts->host ? opts->host :
		 "127.0.0.1", opts->port ? opts->port : DJ_DEFAULT_PORT);
	for (int i = 0; i < argc && n < TOP_MAX_SERVERS; i++, n++) {
		int rc = server_open(&servers[n], opts, argv[i]);

		if (rc != 0) {
			fprintf(stderr, "djinn top: %s: %s\n", argv[i], rc == -EINVAL ?
				"not HOST:PORT" : dj_strerror(rc));
			servers_close(servers, n + 1);
			return 1;
		}
	}
	if (ms < 100)
		ms = 100;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	screen.tty = !o->once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) &&
		     terminal_setup() == 0;
	for (int frame = 0; !stop_requested; frame++) {
		for (int i = 0; i < n; i++)
			sample(&servers[i]);
		if (!o->once || frame > 0)
			draw(&screen, servers, n, o);
		if (o->once && frame > 0)
			break;
		if (wait_key(screen.tty, ms))
			break;
	}
	terminal_restore();
	for (int i = 0; i < n; i++)
		status |= servers[i].cur == NULL;
	servers_close(servers, n);
	return status;
}
