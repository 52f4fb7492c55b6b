/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The apps' command-line helpers (common/cli.h): every kind of value at and
 * past its limits, the messages that name the option, the "--" split and
 * the tool start (--help, start failure, bad options).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "harness.h"

static void test_u64_limits(void)
{
	uint64_t v = 7;

	CU_ASSERT_EQUAL(djc_parse_u64("0", 0, 10, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(djc_parse_u64("65535", 1, 65535, &v), 0);
	CU_ASSERT_EQUAL(v, 65535);
	CU_ASSERT_EQUAL(djc_parse_u64("0x1F", 0, 100, &v), 0);
	CU_ASSERT_EQUAL(v, 31);
	CU_ASSERT_EQUAL(djc_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);
	/* Decimal with a leading zero stays decimal (base 0 would read octal). */
	CU_ASSERT_EQUAL(djc_parse_u64("010", 0, 100, &v), 0);
	CU_ASSERT_EQUAL(v, 10);

	v = 7;
	CU_ASSERT_EQUAL(djc_parse_u64("99999", 1, 65535, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_u64("0", 1, 65535, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("+1", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64(" 1", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("1 ", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("x", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("0x", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64("12abc", 0, 100, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_u64(NULL, 0, 100, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 7); /* untouched by every failure */
}

static void test_double_limits(void)
{
	double v = -1;

	CU_ASSERT_EQUAL(djc_parse_double("2.5", 0, 10, &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 2.5, 0);
	CU_ASSERT_EQUAL(djc_parse_double("1e3", 0, 1e4, &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 1000, 0);
	CU_ASSERT_EQUAL(djc_parse_double("11", 0, 10, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_double("-0.5", 0, 10, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_double("inf", 0, 1e308, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_double("nan", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_double("1e999", 0, 1e308, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_double("2s", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_double("", 0, 10, &v), -EINVAL);
	CU_ASSERT_DOUBLE_EQUAL(v, 1000, 0);
}

static void test_size_suffixes_and_overflow(void)
{
	uint64_t v = 0;

	CU_ASSERT_EQUAL(djc_parse_size("4096", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(djc_parse_size("4k", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(djc_parse_size("256M", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 256ull << 20);
	CU_ASSERT_EQUAL(djc_parse_size("1G", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 1ull << 30);
	CU_ASSERT_EQUAL(djc_parse_size("16777215T", 0, UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, 16777215ull << 40);
	/* The old bench parser wrapped these to small numbers. */
	CU_ASSERT_EQUAL(djc_parse_size("16777216T", 0, UINT64_MAX, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_size("17179869184G", 0, UINT64_MAX, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_size("99999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_size("2G", 1, 1ull << 30, &v), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_size("0", 1, 10, &v), -ERANGE);
	/* No fractions, no signs, no other suffixes. */
	CU_ASSERT_EQUAL(djc_parse_size("1.5M", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size("-1M", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size("12Q", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size("1MB", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size("M", 0, UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 16777215ull << 40);
}

static void test_size_list(void)
{
	uint64_t s[3] = {0};
	int n = -1;

	CU_ASSERT_EQUAL(djc_parse_size_list("4K,1M,64", 1, UINT64_MAX, s, 3, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(s[0], 4096);
	CU_ASSERT_EQUAL(s[1], 1u << 20);
	CU_ASSERT_EQUAL(s[2], 64);
	CU_ASSERT_EQUAL(djc_parse_size_list("1", 1, UINT64_MAX, s, 3, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(djc_parse_size_list("1,2,3,4", 1, UINT64_MAX, s, 3, &n), -E2BIG);
	CU_ASSERT_EQUAL(djc_parse_size_list("1,,2", 1, UINT64_MAX, s, 3, &n), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size_list("1,", 1, UINT64_MAX, s, 3, &n), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size_list("", 1, UINT64_MAX, s, 3, &n), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_size_list("0,1", 1, UINT64_MAX, s, 3, &n), -ERANGE);
	CU_ASSERT_EQUAL(djc_parse_size_list("1,x", 1, UINT64_MAX, s, 3, &n), -EINVAL);
	CU_ASSERT_EQUAL(n, 1);
}

static void test_choice_and_ipv4(void)
{
	static const char *const names[] = {"auto", "tcp", "dpdk"};
	uint32_t ip = 0;
	int i = -1;

	CU_ASSERT_EQUAL(djc_parse_choice("dpdk", names, 3, &i), 0);
	CU_ASSERT_EQUAL(i, 2);
	CU_ASSERT_EQUAL(djc_parse_choice("DPDK", names, 3, &i), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_choice("", names, 3, &i), -EINVAL);

	CU_ASSERT_EQUAL(djc_parse_ipv4("198.18.0.2", &ip), 0);
	CU_ASSERT_EQUAL(ip, 0xc6120002u);
	CU_ASSERT_EQUAL(djc_parse_ipv4("255.255.255.255", &ip), 0);
	CU_ASSERT_EQUAL(ip, 0xffffffffu);
	CU_ASSERT_EQUAL(djc_parse_ipv4("256.0.0.1", &ip), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_ipv4("1.2.3", &ip), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_ipv4("1.2.3.4.5", &ip), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_ipv4("1.2.3.4 ", &ip), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_ipv4("1.-2.3.4", &ip), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_ipv4("0001.2.3.4", &ip), -EINVAL);
	CU_ASSERT_EQUAL(ip, 0xffffffffu);
}

/* "HOST:PORT" split at its last colon, the port in its range. */
static void test_host_port(void)
{
	char host[16] = "untouched";
	uint16_t port = 7;

	CU_ASSERT_EQUAL(djc_parse_host_port("127.0.0.1:7707", host, sizeof(host), 1, &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 7707);
	CU_ASSERT_EQUAL(djc_parse_host_port("*:0", host, sizeof(host), 0, &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "*");
	CU_ASSERT_EQUAL(port, 0);
	CU_ASSERT_EQUAL(djc_parse_host_port("::1:65535", host, sizeof(host), 1, &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_EQUAL(port, 65535);
	/* Refused, and nothing written: no port, no host, a port out of range,
	 * trailing text, a sign, a host that does not fit. */
	port = 7;
	snprintf(host, sizeof(host), "untouched");
	CU_ASSERT_EQUAL(djc_parse_host_port("h:0", host, sizeof(host), 1, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("h:65536", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("h:", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port(":80", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("h80", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("h:80x", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("h:-1", host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port("a-host-name-too-long:80", host, sizeof(host), 0, &port),
			-EINVAL);
	CU_ASSERT_EQUAL(djc_parse_host_port(NULL, host, sizeof(host), 0, &port), -EINVAL);
	CU_ASSERT_STRING_EQUAL(host, "untouched");
	CU_ASSERT_EQUAL(port, 7);
}

/* What a djc_opt_* call printed on stderr. */
static char captured[512];

static void capture_begin(FILE **tmp, int *saved)
{
	fflush(stderr);
	*tmp = tmpfile();
	*saved = dup(STDERR_FILENO);
	dup2(fileno(*tmp), STDERR_FILENO);
}

static void capture_end(FILE *tmp, int saved)
{
	size_t n;

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
}

static void test_option_messages_name_the_option(void)
{
	static const char *const names[] = {"auto", "tcp", "dpdk"};
	uint16_t port = 1;
	uint64_t size = 0;
	uint32_t ip;
	int seed = 0, i;
	FILE *tmp;
	int saved;

	djc_cli_set_name("djt");
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_u16("--port", "99999", 1, 65535, &port), -ERANGE);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "djt: --port: '99999' is out of range (1..65535)\n");
	CU_ASSERT_EQUAL(port, 1);

	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_int("--seed", "x", 0, 100, &seed), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "djt: --seed: 'x' is not a non-negative integer\n");

	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_size("--mem-limit", "12Q", 0, UINT64_MAX, &size), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_PTR_NOT_NULL(strstr(captured, "--mem-limit: '12Q' is not a size"));

	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_size("--chunk", "2G", 1, 1ull << 30, &size), -ERANGE);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured,
			       "djt: --chunk: '2G' is out of range (1..1G bytes)\n");

	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_choice("--path", "x", names, 3, &i), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "djt: --path: 'x' is not one of auto, tcp, dpdk\n");

	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_ipv4("--dp-ip", "1.2.3", &ip), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_PTR_NOT_NULL(strstr(captured, "--dp-ip: '1.2.3' is not an IPv4 address"));

	/* Success prints nothing. */
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_u16("--port", "8080", 1, 65535, &port), 0);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "");
	CU_ASSERT_EQUAL(port, 8080);
}

static void test_app_args_split(void)
{
	char *with[] = {"prog", "-l", "0-1", "--", "--port", "5", "ping", NULL};
	char *without[] = {"prog", "--port", "5", "ping", NULL};
	char **app;
	int n;

	CU_ASSERT_EQUAL(djc_cli_app_args(7, with, false, &n, &app), 1);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_STRING_EQUAL(app[0], "prog");
	CU_ASSERT_STRING_EQUAL(app[1], "--port");
	CU_ASSERT_STRING_EQUAL(app[3], "ping");
	CU_ASSERT_PTR_NULL(app[4]);
	CU_ASSERT_STRING_EQUAL(with[3], "--"); /* argv left as it was */

	CU_ASSERT_EQUAL(djc_cli_app_args(4, without, true, &n, &app), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_STRING_EQUAL(app[1], "--port");
	CU_ASSERT_EQUAL(djc_cli_app_args(4, without, false, &n, &app), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(app[0], "prog");
}

static void test_wants_help(void)
{
	char *a[] = {"prog", "--", "--help", NULL};
	char *b[] = {"prog", "-l", "0", "--", "--port", "1", NULL};
	char *c[] = {"prog", "-h", NULL};

	CU_ASSERT_EQUAL(djc_cli_wants_help(3, a), 1);
	CU_ASSERT_EQUAL(djc_cli_wants_help(6, b), 0);
	CU_ASSERT_EQUAL(djc_cli_wants_help(2, c), 1);
}

/* The option loop: values reach the callback, its error stops the loop,
 * positional arguments are refused or handed back. */
static int seen_n;
static char seen_s[32];

static int one_option(int c, const char *arg, void *ctx)
{
	(void)ctx;
	if (c == 'n')
		return djc_opt_int("-n", arg, 1, 10, &seen_n);
	if (c == 's')
		snprintf(seen_s, sizeof(seen_s), "%s", arg);
	return c == 'n' || c == 's' ? 0 : -EINVAL;
}

static void test_getopt_loop(void)
{
	static const struct option longs[] = {
		{"name", required_argument, NULL, 's'}, {NULL, 0, NULL, 0},
	};
	char *ok[] = {"prog", "-n", "3", "--name", "x", NULL};
	char *extra[] = {"prog", "cmd", "-n", "4", "arg", NULL};
	char *bad[] = {"prog", "-n", "30", "--name", "never", NULL};
	FILE *tmp;
	int saved, first = 0;

	djc_cli_set_name("djt");
	CU_ASSERT_EQUAL(djc_cli_getopt(5, ok, "n:", longs, one_option, NULL, NULL), 0);
	CU_ASSERT_EQUAL(seen_n, 3);
	CU_ASSERT_STRING_EQUAL(seen_s, "x");
	/* getopt moves the positional arguments behind the options. */
	CU_ASSERT_EQUAL(djc_cli_getopt(5, extra, "n:", longs, one_option, NULL, &first), 0);
	CU_ASSERT_EQUAL(seen_n, 4);
	CU_ASSERT_EQUAL(first, 3);
	CU_ASSERT_STRING_EQUAL(extra[3], "cmd");
	CU_ASSERT_STRING_EQUAL(extra[4], "arg");
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_cli_getopt(5, (char *[]){"prog", "a", "-n", "5", "b", NULL}, "n:",
				       longs, one_option, NULL, NULL), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "djt: unexpected argument 'a'\n");
	/* The callback's error stops the loop: --name is never seen. */
	seen_s[0] = '\0';
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_cli_getopt(5, bad, "n:", longs, one_option, NULL, NULL), -ERANGE);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(seen_s, "");
	/* Unknown options and missing values: getopt's message, -EINVAL. */
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_cli_getopt(2, (char *[]){"prog", "--bogus", NULL}, "n:", longs,
				       one_option, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(djc_cli_getopt(2, (char *[]){"prog", "-n", NULL}, "n:", longs,
				       one_option, NULL, NULL), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_PTR_NOT_NULL(strstr(captured, "bogus"));
}

static void test_log_options(void)
{
	enum dj_log_level before = dj_log_get_level();
	FILE *tmp;
	int saved;

	CU_ASSERT_EQUAL(djc_opt_log_level("--log-level", "debug"), 0);
	CU_ASSERT_EQUAL(dj_log_get_level(), DJ_LOG_DEBUG);
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_log_level("--log-level", "loud"), -EINVAL);
	capture_end(tmp, saved);
	CU_ASSERT_PTR_NOT_NULL(strstr(captured, "--log-level: 'loud' is not one of err, warn"));
	CU_ASSERT_EQUAL(dj_log_get_level(), DJ_LOG_DEBUG);
	dj_log_set_level(before);
	/* The format likewise: set where good, named and left alone where not. */
	CU_ASSERT_EQUAL(djc_opt_log_format("--log-format", "json"), 0);
	CU_ASSERT_EQUAL(djc_log_get_format(), DJC_LOG_JSON);
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_opt_log_format("--log-format", "xml"), -EINVAL);
	capture_end(tmp, saved);
	djc_log_set_format(DJC_LOG_TEXT);
	CU_ASSERT_PTR_NOT_NULL(strstr(captured, "--log-format: 'xml' is not one of text, json"));
}

/* A tool whose start and parse are recorded. */
static int usages, starts, stops, parsed_argc;
static int start_rc, parse_rc;

static void fake_usage(const char *prog)
{
	(void)prog;
	usages++;
}

static int fake_start(void *arg, int argc, char **argv, int *app_argc, char ***app_argv)
{
	(void)arg;
	starts++;
	if (start_rc != 0)
		return start_rc;
	return djc_cli_app_args(argc, argv, false, app_argc, app_argv) < 0 ? -E2BIG : 0;
}

static void fake_stop(void *arg)
{
	(void)arg;
	stops++;
}

static int fake_parse(int argc, char **argv, void *opts)
{
	(void)argv;
	(void)opts;
	parsed_argc = argc;
	return parse_rc;
}

static void test_tool_begin(void)
{
	struct djc_cli_tool tool = {
		.name = "djt-tool", .usage = fake_usage, .start = fake_start, .stop = fake_stop,
		.start_what = "EAL", .parse = fake_parse,
	};
	char *help[] = {"prog", "-l", "0", "--", "-h", NULL};
	char *plain[] = {"prog", "-l", "0", "--", "--x", "1", NULL};
	FILE *tmp;
	int saved;

	usages = starts = stops = 0;
	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 5, help), 0);
	CU_ASSERT_EQUAL(usages, 1);
	CU_ASSERT_EQUAL(starts, 0); /* --help never needs EAL */
	CU_ASSERT_STRING_EQUAL(djc_cli_name(), "djt-tool");

	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 6, plain), -1);
	CU_ASSERT_EQUAL(starts, 1);
	CU_ASSERT_EQUAL(parsed_argc, 3);
	CU_ASSERT_EQUAL(stops, 0);

	parse_rc = -EINVAL;
	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 6, plain), 2);
	CU_ASSERT_EQUAL(usages, 2);
	CU_ASSERT_EQUAL(stops, 1);
	parse_rc = 0;

	start_rc = -ENOMEM;
	capture_begin(&tmp, &saved);
	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 6, plain), 1);
	capture_end(tmp, saved);
	CU_ASSERT_STRING_EQUAL(captured, "djt-tool: cannot start EAL: Cannot allocate memory\n");
	start_rc = 0;

	/* No start: the application's arguments are all of them. */
	tool.start = NULL;
	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 6, plain), -1);
	CU_ASSERT_EQUAL(parsed_argc, 3);
	CU_ASSERT_EQUAL(djc_cli_begin(&tool, 2, (char *[]){"prog", "--x", NULL}), -1);
	CU_ASSERT_EQUAL(parsed_argc, 2);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"integers: ranges, bases, signs, overflow", test_u64_limits},
		{"decimals: ranges, inf and nan", test_double_limits},
		{"sizes: suffixes, overflow refused", test_size_suffixes_and_overflow},
		{"size lists", test_size_list},
		{"choices and IPv4 addresses", test_choice_and_ipv4},
		{"HOST:PORT", test_host_port},
		{"option messages name the option and range", test_option_messages_name_the_option},
		{"application arguments after --", test_app_args_split},
		{"--help anywhere", test_wants_help},
		{"tool start: help, start failure, bad options", test_tool_begin},
		{"the option loop", test_getopt_loop},
		{"log level and format options", test_log_options},
		{NULL, NULL},
	};
	dj_test_add_suite("cli", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
