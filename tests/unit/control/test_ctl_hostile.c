/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile and careless clients against the control-plane server (loopback,
 * the tests' host-memory backend): client text never reaches the log raw (a
 * forged line, ANSI escapes) and every reply is valid UTF-8 JSON even when
 * the request was not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_wire.h"
#include "fixture.h"
#include "harness.h"

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

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"client text is escaped in the log", test_client_text_is_escaped_in_the_log},
		{"replies are valid UTF-8 JSON whatever the request", test_replies_are_valid_utf8_json},
		{NULL, NULL},
	};
	dj_test_add_suite("control-hostile", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
