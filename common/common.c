/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every layer shares: error text, the log (level, text or JSON lines,
 * the request id of each thread), and the monotonic clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "djinn/common.h"
#include "common/djc.h"

static const char *const dj_error_text[DJ_ERROR_MAX - DJ_EPROTO_VERSION] = {
	[DJ_EPROTO_VERSION - DJ_EPROTO_VERSION] = "unsupported protocol version",
	[DJ_EAUTH - DJ_EPROTO_VERSION] = "authentication failed",
	[DJ_ESHAPE - DJ_EPROTO_VERSION] = "tensor shapes do not fit the operation",
	[DJ_EDTYPE - DJ_EPROTO_VERSION] = "dtype not supported by the operation",
	[DJ_EUNKNOWN_OP - DJ_EPROTO_VERSION] = "unknown operation",
	[DJ_EHANDLE - DJ_EPROTO_VERSION] = "unknown tensor handle",
	[DJ_ENOGPU - DJ_EPROTO_VERSION] = "no usable GPU",
	[DJ_ENODPDK - DJ_EPROTO_VERSION] = "data plane unavailable",
	[DJ_ELIMIT - DJ_EPROTO_VERSION] = "limit exceeded",
	[DJ_EPEER - DJ_EPROTO_VERSION] = "peer reported an error",
};

const char *dj_strerror(int rc)
{
	int code = rc < 0 ? -rc : rc;

	if (rc == 0)
		return "success";
	if (code >= DJ_EPROTO_VERSION && code < DJ_ERROR_MAX)
		return dj_error_text[code - DJ_EPROTO_VERSION];
	/* strerror() is not thread safe; strerrordesc_np (glibc 2.32+) is. */
	const char *text = strerrordesc_np(code);
	return text != NULL ? text : "unknown error";
}

static enum dj_log_level log_level = DJ_LOG_NOTICE;
static enum djc_log_format log_format = DJC_LOG_TEXT;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};
static const char *const format_names[] = {"text", "json"};
/* The request each thread works for (djc_log_req_set). */
static __thread char log_req[DJC_REQ_ID_MAX];

void dj_log_set_level(enum dj_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum dj_log_level dj_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static int name_index(const char *name, const char *const *names, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (strcasecmp(name, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

int djc_log_level_parse(const char *name, enum dj_log_level *level)
{
	int i = name_index(name, level_names, sizeof(level_names) / sizeof(level_names[0]));

	if (i < 0)
		return i;
	*level = (enum dj_log_level)i;
	return 0;
}

int djc_log_format_parse(const char *name, enum djc_log_format *format)
{
	int i = name_index(name, format_names, sizeof(format_names) / sizeof(format_names[0]));

	if (i < 0)
		return i;
	*format = (enum djc_log_format)i;
	return 0;
}

void djc_log_set_format(enum djc_log_format format)
{
	__atomic_store_n(&log_format, format, __ATOMIC_RELAXED);
}

enum djc_log_format djc_log_get_format(void)
{
	return __atomic_load_n(&log_format, __ATOMIC_RELAXED);
}

void djc_log_set_stream(FILE *stream)
{
	pthread_mutex_lock(&log_lock);
	log_stream = stream;
	pthread_mutex_unlock(&log_lock);
}

int djc_req_id_valid(const char *id)
{
	size_t n = 0;

	if (id == NULL)
		return 0;
	for (; id[n] != '\0'; n++) {
		char c = id[n];

		if (n == DJC_REQ_ID_MAX - 1 ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

void djc_log_req_set(const char *id)
{
	if (id == NULL)
		log_req[0] = '\0';
	else
		snprintf(log_req, sizeof(log_req), "%s", id);
}

const char *djc_log_req_get(void)
{
	return log_req;
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 where s starts
 * none (stray continuation byte, overlong form, surrogate, beyond U+10FFFF,
 * cut short). */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t djc_json_escape(char *out, size_t size, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t need = 0, done = 0;
	int cut = size == 0;

	while (*s != '\0') {
		char esc[8];
		const char *piece = esc;
		size_t len = utf8_len(s), plen;

		if (len == 0) {
			piece = "\xef\xbf\xbd"; /* U+FFFD for a byte that is no UTF-8 */
			plen = 3;
			len = 1;
		} else if (*s == '"' || *s == '\\') {
			esc[0] = '\\', esc[1] = (char)*s, plen = 2;
		} else if (*s == '\n' || *s == '\r' || *s == '\t') {
			esc[0] = '\\', esc[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't', plen = 2;
		} else if (*s < 0x20 || *s == 0x7f) {
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *s);
		} else {
			piece = (const char *)s;
			plen = len;
		}
		/* Whole characters and escapes only: a cut line stays valid. */
		if (!cut && done + plen < size) {
			memcpy(out + done, piece, plen);
			done += plen;
		} else {
			cut = 1;
		}
		need += plen;
		s += len;
	}
	if (size > 0)
		out[done] = '\0';
	return need;
}

/* One JSON object: {"time", "level", "component", "req" (where set),
 * "message"}; built whole so that one write carries the line. */
static void log_json_line(FILE *f, const char *when, const char *level, const char *component,
			  const char *msg)
{
	char small[1024], *esc = small;
	size_t need = djc_json_escape(small, sizeof(small), msg);
	char comp[64], req[2 * DJC_REQ_ID_MAX];

	if (need >= sizeof(small) && (esc = malloc(need + 1)) != NULL)
		djc_json_escape(esc, need + 1, msg);
	else if (esc == NULL)
		esc = small; /* no memory: the message cut short, still valid JSON */
	djc_json_escape(comp, sizeof(comp), component);
	djc_json_escape(req, sizeof(req), log_req);
	fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"%s\"%s%s%s,\"message\":\"%s\"}\n",
		when, level, comp, req[0] ? ",\"req\":\"" : "", req, req[0] ? "\"" : "", esc);
	if (esc != small)
		free(esc);
}

void djc_vlog(enum dj_log_level level, const char *component, const char *fmt, va_list ap)
{
	struct timespec ts;

	if (level > dj_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (djc_log_get_format() == DJC_LOG_JSON) {
		char msg[1024], *text = msg, when[40];
		struct tm tm;
		va_list copy;
		int n;

		va_copy(copy, ap);
		n = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (n >= (int)sizeof(msg) && (text = malloc((size_t)n + 1)) != NULL)
			vsnprintf(text, (size_t)n + 1, fmt, copy);
		else if (text == NULL)
			text = msg;
		va_end(copy);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + n, sizeof(when) - (size_t)n, ".%03ldZ", ts.tv_nsec / 1000000);
		pthread_mutex_lock(&log_lock);
		log_json_line(log_stream ? log_stream : stderr, when, level_names[level], component,
			      text);
		fflush(log_stream ? log_stream : stderr);
		pthread_mutex_unlock(&log_lock);
		if (text != msg)
			free(text);
		return;
	}
	/* One lock so concurrent threads never interleave within a line. */
	pthread_mutex_lock(&log_lock);
	FILE *f = log_stream ? log_stream : stderr;

	fprintf(f, "%ld.%03ld %-6s %s%s%s: ", (long)ts.tv_sec, ts.tv_nsec / 1000000,
		level_names[level], component, log_req[0] ? " req=" : "", log_req);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

void djc_log(enum dj_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	djc_vlog(level, component, fmt, ap);
	va_end(ap);
}

uint64_t djc_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
