/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every layer shares: error codes and their text, the log (one escaped
 * line per call), the escaping of untrusted text, the clock, and the
 * error-text formatter (common/djc.h).
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
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};
/* The host's handler (dj_log_set_handler), read as one pair under the lock. */
static dj_log_fn log_fn;
static void *log_fn_arg;

void dj_log_set_handler(dj_log_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_fn_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void dj_log_set_level(enum dj_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum dj_log_level dj_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int djc_log_level_parse(const char *name, enum dj_log_level *level)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level = (enum dj_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Length of the well-formed UTF-8 sequence of 2 to 4 bytes at p (at most n
 * bytes), or 0: malformed, overlong, a surrogate, beyond U+10FFFF, or a C1
 * control (U+0080..U+009F: terminals take some for escapes). */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		if (p[0] == 0xc2)
			lo = 0xa0;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len > n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

size_t djc_escape(char *out, size_t cap, const char *in, size_t in_len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t n = in != NULL ? strnlen(in, in_len) : 0, o = 0;

	for (size_t i = 0; i < n;) {
		char esc[4] = {'\\'};
		const char *piece = esc;
		size_t take = 1, len = 2;

		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			piece = (const char *)p + i;
			len = 1;
		} else if (p[i] == '\\' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
			esc[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : p[i] == '\t' ? 't' : '\\';
		} else if ((take = utf8_sequence(p + i, n - i)) > 0) {
			piece = (const char *)p + i;
			len = take;
		} else {
			take = 1;
			len = 4;
			esc[1] = 'x';
			esc[2] = hex[p[i] >> 4];
			esc[3] = hex[p[i] & 15];
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, piece, len);
		o += len;
		i += take;
	}
	if (cap > 0)
		out[o] = '\0';
	return o;
}

/* The formatted message, escaped, into buf (cap bytes) or, where it does
 * not fit, a malloc'ed buffer the caller frees (*heap). */
static const char *log_format(char *buf, size_t cap, char **heap, const char *fmt, va_list ap)
{
	char raw[1024], *text = raw;
	va_list copy;
	int n;

	*heap = NULL;
	va_copy(copy, ap);
	n = vsnprintf(raw, sizeof(raw), fmt, copy);
	va_end(copy);
	if (n < 0)
		return "(unprintable log message)";
	if ((size_t)n >= sizeof(raw) && (text = malloc((size_t)n + 1)) != NULL)
		vsnprintf(text, (size_t)n + 1, fmt, ap);
	else if (text == NULL)
		text = raw;
	/* An escape is at most 4 bytes per byte of text. */
	if ((size_t)n * 4 + 1 > cap && (*heap = malloc((size_t)n * 4 + 1)) != NULL) {
		buf = *heap;
		cap = (size_t)n * 4 + 1;
	}
	djc_escape(buf, cap, text, (size_t)n);
	if (text != raw)
		free(text);
	return buf;
}

void djc_vlog(enum dj_log_level level, const char *component, const char *fmt, va_list ap)
{
	struct timespec ts;
	char buf[2048], *heap;
	const char *line;
	dj_log_fn fn;
	void *fn_arg;

	if (level > dj_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	line = log_format(buf, sizeof(buf), &heap, fmt, ap);
	/* One lock so concurrent threads never interleave within a line. A
	 * host's handler runs outside it: it may take locks of its own (a
	 * Python handler takes the GIL) that a thread holding ours waits on. */
	pthread_mutex_lock(&log_lock);
	fn = log_fn;
	fn_arg = log_fn_arg;
	if (fn == NULL)
		fprintf(stderr, "%ld.%03ld %-6s %s: %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000000,
			level_names[level], component, line);
	pthread_mutex_unlock(&log_lock);
	if (fn != NULL)
		fn(level, component, line, fn_arg);
	free(heap);
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

int djc_verrf(int rc, char *err, size_t errlen, const char *prefix, const char *fmt, va_list ap)
{
	int used = 0;

	if (err == NULL || errlen == 0)
		return rc;
	if (prefix != NULL)
		used = snprintf(err, errlen, "%s: ", prefix);
	/* A prefix that filled the buffer leaves it truncated and terminated. */
	if (used >= 0 && (size_t)used < errlen)
		vsnprintf(err + used, errlen - (size_t)used, fmt, ap);
	return rc;
}

int djc_errf(int rc, char *err, size_t errlen, const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	djc_verrf(rc, err, errlen, prefix, fmt, ap);
	va_end(ap);
	return rc;
}
