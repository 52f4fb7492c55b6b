/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metrics module: the exposition format byte for byte (labels, numbers,
 * histograms), the registry (order, duplicates, removal while a scrape
 * runs), and the HTTP endpoint over a real socket.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "metrics/metrics.h"
#include "harness.h"

static void test_labels(void)
{
	char buf[64];

	CU_ASSERT_EQUAL(mx_labels(buf, sizeof(buf), "path", "tcp", "direction", "in", NULL), 0);
	CU_ASSERT_STRING_EQUAL(buf, "path=\"tcp\",direction=\"in\"");
	CU_ASSERT_EQUAL(mx_labels(buf, sizeof(buf), "device", "a\"b\\c\nd", NULL), 0);
	CU_ASSERT_STRING_EQUAL(buf, "device=\"a\\\"b\\\\c\\nd\"");
	CU_ASSERT_EQUAL(mx_labels(buf, sizeof(buf), NULL), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT_EQUAL(mx_labels(buf, 12, "device", "cuda:0", NULL), -ENOSPC);
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT_EQUAL(mx_labels(buf, 16, "device", "cuda:0", NULL), 0);
}

static void test_samples_and_families(void)
{
	struct mx_writer w;
	const char *want =
		"# HELP djinn_x_total Things.\n# TYPE djinn_x_total counter\n"
		"djinn_x_total{path=\"tcp\"} 18446744073709551615\n"
		"djinn_x_total 0\n"
		"# HELP djinn_y_ratio A ratio.\n# TYPE djinn_y_ratio gauge\n"
		"djinn_y_ratio 0.25\ndjinn_y_ratio{a=\"1\"} 3\ndjinn_y_ratio{a=\"2\"} +Inf\n"
		"djinn_y_ratio{a=\"3\"} NaN\ndjinn_y_ratio{a=\"4\"} -1.5\n";

	mx_writer_init(&w);
	mx_family(&w, "djinn_x_total", MX_COUNTER, "Things.");
	mx_sample_u64(&w, "djinn_x_total", "path=\"tcp\"", UINT64_MAX);
	mx_sample_u64(&w, "djinn_x_total", NULL, 0);
	mx_family(&w, "djinn_y_ratio", MX_GAUGE, "A ratio.");
	mx_sample(&w, "djinn_y_ratio", "", 0.25);
	mx_sample(&w, "djinn_y_ratio", "a=\"1\"", 3.0);
	mx_sample(&w, "djinn_y_ratio", "a=\"2\"", INFINITY);
	mx_sample(&w, "djinn_y_ratio", "a=\"3\"", NAN);
	mx_sample(&w, "djinn_y_ratio", "a=\"4\"", -1.5);
	CU_ASSERT_EQUAL(w.error, 0);
	CU_ASSERT_STRING_EQUAL(w.buf, want);
	/* A name Prometheus cannot take fails the writer. */
	mx_family(&w, "9lives", MX_GAUGE, "bad");
	CU_ASSERT_EQUAL(w.error, -EINVAL);
	mx_writer_fini(&w);
	mx_writer_init(&w);
	mx_sample(&w, "has-dash", NULL, 1);
	CU_ASSERT_EQUAL(w.error, -EINVAL);
	mx_writer_fini(&w);
}

static void test_histogram(void)
{
	static const double bounds[] = {0.001, 0.01, 0.1};
	static const uint64_t counts[] = {2, 0, 5, 1};
	struct mx_histogram h = {3, bounds, counts, 0.75};
	struct mx_writer w;

	mx_writer_init(&w);
	mx_histogram(&w, "djinn_d_seconds", "type=\"PUT\"", &h);
	mx_histogram(&w, "djinn_e_seconds", NULL, &h);
	CU_ASSERT_EQUAL(w.error, 0);
	CU_ASSERT_STRING_EQUAL(w.buf,
		"djinn_d_seconds_bucket{type=\"PUT\",le=\"0.001\"} 2\n"
		"djinn_d_seconds_bucket{type=\"PUT\",le=\"0.01\"} 2\n"
		"djinn_d_seconds_bucket{type=\"PUT\",le=\"0.1\"} 7\n"
		"djinn_d_seconds_bucket{type=\"PUT\",le=\"+Inf\"} 8\n"
		"djinn_d_seconds_sum{type=\"PUT\"} 0.75\n"
		"djinn_d_seconds_count{type=\"PUT\"} 8\n"
		"djinn_e_seconds_bucket{le=\"0.001\"} 2\n"
		"djinn_e_seconds_bucket{le=\"0.01\"} 2\n"
		"djinn_e_seconds_bucket{le=\"0.1\"} 7\n"
		"djinn_e_seconds_bucket{le=\"+Inf\"} 8\n"
		"djinn_e_seconds_sum 0.75\n"
		"djinn_e_seconds_count 8\n");
	mx_writer_fini(&w);
}

static void test_quantile(void)
{
	static const double bounds[] = {1, 2, 4};
	uint64_t counts[] = {0, 10, 10, 0};
	struct mx_histogram h = {3, bounds, counts, 0};

	/* 10 in (1, 2], 10 in (2, 4]: the median is 2, the 75th 3. */
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&h, 0.5), 2.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&h, 0.75), 3.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&h, 0.05), 1.1, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&h, 1.0), 4.0, 1e-12);
	/* Beyond the last bound: that bound. */
	counts[3] = 100;
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&h, 0.99), 4.0, 1e-12);
	/* The first bucket starts at 0. */
	uint64_t first[] = {4, 0, 0, 0};
	struct mx_histogram f = {3, bounds, first, 0};
	CU_ASSERT_DOUBLE_EQUAL(mx_histogram_quantile(&f, 0.5), 0.5, 1e-12);
	uint64_t none[] = {0, 0, 0, 0};
	struct mx_histogram e = {3, bounds, none, 0};
	CU_ASSERT(isnan(mx_histogram_quantile(&e, 0.5)));
}

static void collect_a(void *arg, struct mx_writer *w)
{
	mx_family(w, "djinn_a", MX_GAUGE, "A.");
	mx_sample(w, "djinn_a", NULL, *(int *)arg);
}

static void collect_b(void *arg, struct mx_writer *w)
{
	mx_family(w, "djinn_b", MX_GAUGE, "B.");
	mx_sample(w, "djinn_b", NULL, 2);
}

static void collect_bad(void *arg, struct mx_writer *w)
{
	mx_family(w, "bad name", MX_GAUGE, "bad");
}

/* A long "scrape", to prove removal waits for it. */
static atomic_int slow_running, slow_done;
static void collect_slow(void *arg, struct mx_writer *w)
{
	atomic_store(&slow_running, 1);
	usleep(200 * 1000);
	atomic_store(&slow_done, 1);
}

static void *scrape_thread(void *arg)
{
	char *text;
	size_t len;

	if (mx_registry_collect(arg, &text, &len) == 0)
		free(text);
	return NULL;
}

static void test_registry(void)
{
	struct mx_registry *r;
	int one = 1, seven = 7;
	char *text = NULL;
	size_t len = 0;
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(mx_registry_create(&r), 0);
	CU_ASSERT_EQUAL(mx_registry_collect(r, &text, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_STRING_EQUAL(text, "");
	free(text);
	CU_ASSERT_EQUAL(mx_registry_add(r, collect_b, NULL), 0);
	CU_ASSERT_EQUAL(mx_registry_add(r, collect_a, &one), 0);
	CU_ASSERT_EQUAL(mx_registry_add(r, collect_a, &one), -EEXIST);
	CU_ASSERT_EQUAL(mx_registry_add(r, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(mx_registry_collect(r, &text, &len), 0);
	CU_ASSERT_STRING_EQUAL(text, "# HELP djinn_b B.\n# TYPE djinn_b gauge\ndjinn_b 2\n"
				     "# HELP djinn_a A.\n# TYPE djinn_a gauge\ndjinn_a 1\n");
	CU_ASSERT_EQUAL(len, strlen(text));
	free(text);
	CU_ASSERT_EQUAL(mx_registry_remove(r, collect_b, NULL), 0);
	CU_ASSERT_EQUAL(mx_registry_remove(r, collect_b, NULL), -ENOENT);
	CU_ASSERT_EQUAL(mx_registry_remove(r, collect_a, &seven), -ENOENT);
	CU_ASSERT_EQUAL(mx_registry_collect(r, &text, &len), 0);
	CU_ASSERT_STRING_EQUAL(text, "# HELP djinn_a A.\n# TYPE djinn_a gauge\ndjinn_a 1\n");
	free(text);
	CU_ASSERT_EQUAL(mx_registry_add(r, collect_bad, NULL), 0);
	CU_ASSERT_EQUAL(mx_registry_collect(r, &text, &len), -EINVAL);
	CU_ASSERT_EQUAL(mx_registry_remove(r, collect_bad, NULL), 0);

	/* Removal returns only after the scrape that runs the collector. */
	CU_ASSERT_EQUAL(mx_registry_add(r, collect_slow, NULL), 0);
	pthread_create(&t, NULL, scrape_thread, r);
	while (!atomic_load(&slow_running))
		usleep(1000);
	CU_ASSERT_EQUAL(mx_registry_remove(r, collect_slow, NULL), 0);
	CU_ASSERT(atomic_load(&slow_done));
	pthread_join(t, NULL);
	mx_registry_destroy(r);
}

static void test_parse_listen(void)
{
	char addr[32];
	uint16_t port;

	CU_ASSERT_EQUAL(mx_parse_listen("127.0.0.1:9464", addr, sizeof(addr), &port), 0);
	CU_ASSERT_STRING_EQUAL(addr, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 9464);
	CU_ASSERT_EQUAL(mx_parse_listen("*:0", addr, sizeof(addr), &port), 0);
	CU_ASSERT_STRING_EQUAL(addr, "0.0.0.0");
	CU_ASSERT_EQUAL(port, 0);
	CU_ASSERT_EQUAL(mx_parse_listen("9464", addr, sizeof(addr), &port), -EINVAL);
	CU_ASSERT_EQUAL(mx_parse_listen(":9464", addr, sizeof(addr), &port), -EINVAL);
	CU_ASSERT_EQUAL(mx_parse_listen("1.2.3.4:65536", addr, sizeof(addr), &port), -EINVAL);
	CU_ASSERT_EQUAL(mx_parse_listen("1.2.3.4:-1", addr, sizeof(addr), &port), -EINVAL);
	CU_ASSERT_EQUAL(mx_parse_listen("1.2.3.4:9x", addr, sizeof(addr), &port), -EINVAL);
	CU_ASSERT_EQUAL(mx_parse_listen("a-very-long-host-name-that-does-not-fit:1", addr, 8,
					&port), -EINVAL);
}

/* One HTTP/1.0 exchange; the whole answer into buf. */
static int http(uint16_t port, const char *request, char *buf, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t n;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		close(fd);
		return -1;
	}
	while (got + 1 < size && (n = read(fd, buf + got, size - got - 1)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	return (int)got;
}

static void test_http(void)
{
	struct mx_registry *r;
	struct mx_http *h = NULL;
	int value = 42;
	char buf[4096];
	int rc;

	CU_ASSERT_EQUAL_FATAL(mx_registry_create(&r), 0);
	mx_registry_add(r, collect_a, &value);
	CU_ASSERT_EQUAL(mx_http_start(r, "not-an-address", 0, &h), -EINVAL);
	rc = mx_http_start(r, "127.0.0.1", 0, &h);
	if (rc == -ENOTSUP) {
		mx_registry_destroy(r);
		return; /* built without libmicrohttpd: nothing to serve with */
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT(mx_http_port(h) != 0);

	CU_ASSERT(http(mx_http_port(h), "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0);
	CU_ASSERT(strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\r\n\r\n# HELP djinn_a A.\n# TYPE djinn_a gauge\ndjinn_a 42\n"));
	/* Fresh on every scrape. */
	value = 43;
	http(mx_http_port(h), "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "djinn_a 43\n"));
	http(mx_http_port(h), "GET /other HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, " 404 "));
	http(mx_http_port(h), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, " 405 "));
	http(mx_http_port(h), "GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "GET /metrics"));
	/* A collector that fails makes a 500, and the server keeps serving. */
	mx_registry_add(r, collect_bad, NULL);
	http(mx_http_port(h), "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, " 500 "));
	mx_registry_remove(r, collect_bad, NULL);
	http(mx_http_port(h), "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "djinn_a 43\n"));

	uint16_t port = mx_http_port(h);
	mx_http_stop(h);
	CU_ASSERT_EQUAL(http(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)), -1);
	mx_registry_destroy(r);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"labels escaped, too small refused", test_labels},
		{"families and samples byte for byte", test_samples_and_families},
		{"histograms: cumulative buckets, +Inf, sum, count", test_histogram},
		{"quantiles interpolated in their bucket", test_quantile},
		{"registry: order, duplicates, removal waits for a scrape", test_registry},
		{"ADDR:PORT parsed", test_parse_listen},
		{"HTTP: /metrics, 404, 405, 500, stop", test_http},
		{NULL, NULL},
	};
	dj_test_add_suite("metrics", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
