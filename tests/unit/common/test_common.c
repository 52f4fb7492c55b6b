/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "harness.h"

static void test_strerror_errno_and_djinn_codes(void)
{
	CU_ASSERT_STRING_EQUAL(dj_strerror(0), "success");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-ETIMEDOUT), "Connection timed out");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-EINVAL), "Invalid argument");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-DJ_EAUTH), "authentication failed");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-DJ_EPEER), "peer reported an error");
	/* Out of both ranges: still a string, never NULL. */
	CU_ASSERT_PTR_NOT_NULL(dj_strerror(-DJ_ERROR_MAX));
	CU_ASSERT_PTR_NOT_NULL(dj_strerror(-999999));
}

static void test_log_level_parse(void)
{
	enum dj_log_level level = DJ_LOG_ERR;

	CU_ASSERT_EQUAL(djc_log_level_parse("debug", &level), 0);
	CU_ASSERT_EQUAL(level, DJ_LOG_DEBUG);
	CU_ASSERT_EQUAL(djc_log_level_parse("WARN", &level), 0);
	CU_ASSERT_EQUAL(level, DJ_LOG_WARN);
	CU_ASSERT_EQUAL(djc_log_level_parse("loud", &level), -EINVAL);
	CU_ASSERT_EQUAL(level, DJ_LOG_WARN);
}

static void test_error_text_formatter(void)
{
	char err[16];

	memset(err, 'x', sizeof(err));
	CU_ASSERT_EQUAL(djc_errf(-EINVAL, err, sizeof(err), "npy", "bad %s", "magic"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "npy: bad magic");
	CU_ASSERT_EQUAL(djc_errf(-DJ_ESHAPE, err, sizeof(err), NULL, "rank %d", 9), -DJ_ESHAPE);
	CU_ASSERT_STRING_EQUAL(err, "rank 9");
	/* Truncated, always terminated, whether the prefix or the text overflows. */
	CU_ASSERT_EQUAL(djc_errf(-1, err, sizeof(err), "op", "%s", "0123456789abcdef"), -1);
	CU_ASSERT_STRING_EQUAL(err, "op: 0123456789a");
	CU_ASSERT_EQUAL(djc_errf(-1, err, sizeof(err), "a-very-long-prefix", "x"), -1);
	CU_ASSERT_EQUAL(strlen(err), sizeof(err) - 1);
	CU_ASSERT_EQUAL(djc_errf(-1, err, 1, "p", "x"), -1);
	CU_ASSERT_STRING_EQUAL(err, "");
	/* No buffer: only the code comes back. */
	CU_ASSERT_EQUAL(djc_errf(-ENOMEM, NULL, 64, "p", "x"), -ENOMEM);
	CU_ASSERT_EQUAL(djc_errf(-ENOMEM, err, 0, "p", "x"), -ENOMEM);
}

/* Escaped text is one printable line of valid UTF-8, whatever came in. */
static void test_escape(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain text 123", "plain text 123"},
		{"a\nb\r\tc", "a\\nb\\r\\tc"},
		{"back\\slash", "back\\\\slash"},
		{"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
		{"del\x7f bell\x07", "del\\x7f bell\\x07"},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		{"C1 csi \xc2\x9b", "C1 csi \\xc2\\x9b"},
		{"bad \xff\xfe", "bad \\xff\\xfe"},
		{"truncated \xe2\x82", "truncated \\xe2\\x82"},
		{"overlong \xc0\xaf", "overlong \\xc0\\xaf"},
		{"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
		{"too high \xf4\x90\x80\x80", "too high \\xf4\\x90\\x80\\x80"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = djc_escape(out, sizeof(out), cases[i].in, strlen(cases[i].in));

		if (strcmp(out, cases[i].want) != 0)
			printf("\n  escape case %zu: got '%s', want '%s'\n", i, out, cases[i].want);
		CU_ASSERT_STRING_EQUAL(out, cases[i].want);
		CU_ASSERT_EQUAL(n, strlen(cases[i].want));
	}
	/* in_len bounds the input; a NUL ends it. */
	CU_ASSERT_EQUAL(djc_escape(out, sizeof(out), "abcdef", 3), 3);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	CU_ASSERT_EQUAL(djc_escape(out, sizeof(out), "ab\0cd", 5), 2);
	CU_ASSERT_EQUAL(djc_escape(out, sizeof(out), NULL, 5), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	/* Cut before an escape or a sequence, never inside one. */
	CU_ASSERT_EQUAL(djc_escape(out, 5, "abc\ndef", 7), 3);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	CU_ASSERT_EQUAL(djc_escape(out, 5, "abc\xc3\xa9", 5), 3);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	CU_ASSERT_EQUAL(djc_escape(out, 1, "abc", 3), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
}

/* A log line with a peer's newline and ANSI escape stays one escaped line. */
static void test_log_escapes_peer_text(void)
{
	char path[] = "/tmp/dj-test-log.XXXXXX", line[512];
	int fd = mkstemp(path), saved = dup(2), lines = 0;
	enum dj_log_level old = dj_log_get_level();
	FILE *f;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	dj_log_set_level(DJ_LOG_INFO);
	djc_log(DJ_LOG_NOTICE, "test", "reason '%s'", "ok\n1700000000.000 err    ctl: forged\x1b[2J");
	dj_log_set_level(old);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		lines++;
		CU_ASSERT_PTR_NOT_NULL(strstr(line, "reason 'ok\\n1700000000.000 err    ctl: forged\\x1b[2J'"));
		CU_ASSERT_PTR_NULL(strchr(line, '\x1b'));
	}
	CU_ASSERT_EQUAL(lines, 1);
	fclose(f);
	unlink(path);
}

struct captured_log {
	int calls;
	enum dj_log_level level;
	char component[32], line[256];
};

static void capture_log(enum dj_log_level level, const char *component, const char *line, void *arg)
{
	struct captured_log *c = arg;

	c->calls++;
	c->level = level;
	snprintf(c->component, sizeof(c->component), "%s", component);
	snprintf(c->line, sizeof(c->line), "%s", line);
}

/* A host's handler gets each line at or above the level (escaped, without
 * time stamp or newline) and stderr gets nothing; NULL restores stderr. */
static void test_log_handler(void)
{
	char path[] = "/tmp/dj-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	enum dj_log_level old = dj_log_get_level();
	struct captured_log c = {0};
	struct stat st;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	dj_log_set_level(DJ_LOG_NOTICE);
	dj_log_set_handler(capture_log, &c);
	djc_log(DJ_LOG_WARN, "test", "peer said '%s' %d", "a\nb", 7);
	DJC_LOG(DJ_LOG_DEBUG, "test", "below the level: %d", 1);
	fflush(stderr);
	CU_ASSERT_EQUAL(c.calls, 1);
	CU_ASSERT_EQUAL(c.level, DJ_LOG_WARN);
	CU_ASSERT_STRING_EQUAL(c.component, "test");
	CU_ASSERT_STRING_EQUAL(c.line, "peer said 'a\\nb' 7");
	CU_ASSERT(fstat(fd, &st) == 0 && st.st_size == 0);
	dj_log_set_handler(NULL, NULL);
	djc_log(DJ_LOG_WARN, "test", "back on stderr");
	fflush(stderr);
	CU_ASSERT_EQUAL(c.calls, 1);
	CU_ASSERT(fstat(fd, &st) == 0 && st.st_size > 0);
	dj_log_set_level(old);
	dup2(saved, 2);
	close(saved);
	close(fd);
	unlink(path);
}

static void test_clock_is_monotonic(void)
{
	uint64_t a = djc_time_ns();
	uint64_t b = djc_time_ns();

	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a);
}

static void test_log_format_parse(void)
{
	enum djc_log_format f = DJC_LOG_TEXT;

	CU_ASSERT_EQUAL(djc_log_format_parse("json", &f), 0);
	CU_ASSERT_EQUAL(f, DJC_LOG_JSON);
	CU_ASSERT_EQUAL(djc_log_format_parse("TEXT", &f), 0);
	CU_ASSERT_EQUAL(f, DJC_LOG_TEXT);
	CU_ASSERT_EQUAL(djc_log_format_parse("xml", &f), -EINVAL);
	CU_ASSERT_EQUAL(f, DJC_LOG_TEXT);
}

static void test_json_escape(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "plain"},
		{"say \"hi\"\\", "say \\\"hi\\\"\\\\"},
		{"two\nlines\r\tx", "two\\nlines\\r\\tx"},
		{"\x1b[31mred\x1b[0m\x7f", "\\u001b[31mred\\u001b[0m\\u007f"},
		{"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},    /* valid UTF-8 kept */
		{"bad \xff\xc3 end", "bad \xef\xbf\xbd\xef\xbf\xbd end"},     /* invalid: U+FFFD */
		{"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                     /* overlong '/' */
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},     /* a surrogate */
		{"C1 \xc2\x9b" "[2J", "C1 \\u009b[2J"},                      /* a C1 control */
		{"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},                /* cut short */
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = djc_json_escape(out, sizeof(out), cases[i].in);

		CU_ASSERT_STRING_EQUAL(out, cases[i].out);
		CU_ASSERT_EQUAL(n, strlen(cases[i].out));
	}
	/* Cut short: whole escapes only, the result says what was needed. */
	CU_ASSERT_EQUAL(djc_json_escape(out, 4, "a\"b"), 4);
	CU_ASSERT_STRING_EQUAL(out, "a\\\"");
	CU_ASSERT_EQUAL(djc_json_escape(out, 3, "a\"b"), 4);
	CU_ASSERT_STRING_EQUAL(out, "a");
}

static void test_req_id_valid(void)
{
	char long_id[DJC_REQ_ID_MAX + 1];

	CU_ASSERT(djc_req_id_valid("c1a2-000042"));
	CU_ASSERT(djc_req_id_valid("s3-17:retry_1.a"));
	CU_ASSERT(!djc_req_id_valid(""));
	CU_ASSERT(!djc_req_id_valid(NULL));
	CU_ASSERT(!djc_req_id_valid("a b"));
	CU_ASSERT(!djc_req_id_valid("x\n[FAKE] line"));
	CU_ASSERT(!djc_req_id_valid("quote\""));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[DJC_REQ_ID_MAX - 1] = '\0';
	CU_ASSERT(djc_req_id_valid(long_id));
	long_id[DJC_REQ_ID_MAX - 1] = 'a';
	long_id[DJC_REQ_ID_MAX] = '\0';
	CU_ASSERT(!djc_req_id_valid(long_id));
}

/* djc_strcpy copies what fits and always terminates. */
static void test_strcpy_cuts_and_terminates(void)
{
	char out[4];

	memset(out, 'x', sizeof(out));
	djc_strcpy(out, "ab", sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "ab");
	djc_strcpy(out, "abc", sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "abc");
	djc_strcpy(out, "abcdef", sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "abc");
	djc_strcpy(out, "", sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "");
	djc_strcpy(out, "zz", 1);
	CU_ASSERT_STRING_EQUAL(out, "");
}

/* Every line of f as JSON objects; n receives their number. */
static cJSON **read_json_lines(FILE *f, int *n)
{
	static cJSON *lines[16];
	char buf[4096];

	*n = 0;
	rewind(f);
	while (*n < 16 && fgets(buf, sizeof(buf), f) != NULL) {
		CU_ASSERT_PTR_NOT_NULL(strchr(buf, '\n'));
		lines[(*n)++] = cJSON_ParseWithOpts(buf, NULL, 1);
	}
	return lines;
}

static void *log_from_other_thread(void *arg)
{
	/* Request ids are per thread: this line names none. */
	djc_log(DJ_LOG_NOTICE, "other", "no request here");
	return arg;
}

static void test_json_log_lines(void)
{
	FILE *f = tmpfile();
	enum dj_log_level saved = dj_log_get_level();
	pthread_t t;
	cJSON **lines;
	int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	dj_log_set_level(DJ_LOG_INFO);
	djc_log_set_stream(f);
	djc_log_set_format(DJC_LOG_JSON);
	djc_log_req_set("c1a2-000042");
	djc_log(DJ_LOG_NOTICE, "ctl", "PUT of %d bytes: \"quoted\"\nsecond line \x1b[2J", 4096);
	pthread_create(&t, NULL, log_from_other_thread, NULL);
	pthread_join(t, NULL);
	djc_log_req_set(NULL);
	djc_log(DJ_LOG_DEBUG, "ctl", "below the level: not written");
	djc_log(DJ_LOG_WARN, "ctl", "bad bytes \xff here");
	djc_log_set_format(DJC_LOG_TEXT);
	djc_log_req_set("c1a2-000043");
	djc_log(DJ_LOG_INFO, "ctl", "text line");
	djc_log_req_set(NULL);
	djc_log_set_stream(NULL);
	dj_log_set_level(saved);

	lines = read_json_lines(f, &n);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(lines[i]);
		CU_ASSERT(cJSON_IsString(cJSON_GetObjectItem(lines[i], "time")));
		CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(lines[i], "time")->valuestring),
				strlen("2025-01-01T00:00:00.000Z"));
	}
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[0], "level")->valuestring, "notice");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[0], "component")->valuestring, "ctl");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[0], "req")->valuestring, "c1a2-000042");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[0], "message")->valuestring,
			       "PUT of 4096 bytes: \"quoted\"\nsecond line \x1b[2J");
	CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(lines[1], "req"));
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[1], "component")->valuestring, "other");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[2], "level")->valuestring, "warn");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(lines[2], "message")->valuestring,
			       "bad bytes \xef\xbf\xbd here");
	/* The text line is not JSON, and names its request. */
	CU_ASSERT_PTR_NULL(lines[3]);
	rewind(f);
	char buf[512], last[512] = "";
	while (fgets(buf, sizeof(buf), f) != NULL)
		snprintf(last, sizeof(last), "%s", buf);
	CU_ASSERT_PTR_NOT_NULL(strstr(last, " info   ctl req=c1a2-000043: text line\n"));
	for (int i = 0; i < n; i++)
		cJSON_Delete(lines[i]);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"strerror covers errno and Djinn codes", test_strerror_errno_and_djinn_codes},
		{"log level names parse", test_log_level_parse},
		{"escaping of untrusted text", test_escape},
		{"a log line escapes a peer's text", test_log_escapes_peer_text},
		{"log lines go to the host's handler", test_log_handler},
		{"monotonic clock", test_clock_is_monotonic},
		{"error text formatter", test_error_text_formatter},
		{"log format names parse", test_log_format_parse},
		{"JSON escaping: quotes, controls, UTF-8", test_json_escape},
		{"request ids: what is valid", test_req_id_valid},
		{"strcpy cuts short and terminates", test_strcpy_cuts_and_terminates},
		{"JSON log lines parse and name their request", test_json_log_lines},
		{NULL, NULL},
	};
	dj_test_add_suite("common", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
