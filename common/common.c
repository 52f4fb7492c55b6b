/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every layer shares: error codes and their text, the log (level, text
 * or JSON lines, the request id of each thread; every line escaped), the
 * escaping of untrusted text, the clock, and the error-text formatter
 * (common/djc.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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

void djc_strcpy(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

void djc_log_req_set(const char *id)
{
	if (id == NULL)
		log_req[0] = '\0';
	else
		djc_strcpy(log_req, id, sizeof(log_req));
}

const char *djc_log_req_get(void)
{
	return log_req;
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

size_t djc_json_escape(char *out, size_t size, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t left = strlen(text), need = 0, done = 0;
	int cut = size == 0;

	while (left > 0) {
		char esc[8];
		const char *piece = esc;
		size_t len = 1, plen;

		if (*s == '"' || *s == '\\') {
			esc[0] = '\\', esc[1] = (char)*s, plen = 2;
		} else if (*s == '\n' || *s == '\r' || *s == '\t') {
			esc[0] = '\\', esc[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't', plen = 2;
		} else if (*s < 0x20 || *s == 0x7f) {
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *s);
		} else if (*s < 0x80) {
			piece = (const char *)s;
			plen = 1;
		} else if ((len = utf8_sequence(s, left)) > 0) {
			piece = (const char *)s;
			plen = len;
		} else if (left >= 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
			/* A C1 control, which utf8_sequence() refuses: \u0080..\u009f. */
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", s[1]);
			len = 2;
		} else {
			piece = "\xef\xbf\xbd"; /* U+FFFD for a byte that is no UTF-8 */
			plen = 3;
			len = 1;
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
		left -= len;
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

/* The formatted message, raw: raw (1024 bytes) where it fits, else a
 * malloc'ed copy the caller frees when it differs from raw; *n receives its
 * length. NULL where the format cannot be printed. */
static char *log_vformat(char raw[1024], int *n, const char *fmt, va_list ap)
{
	char *text = raw;
	va_list copy;

	va_copy(copy, ap);
	*n = vsnprintf(raw, 1024, fmt, copy);
	va_end(copy);
	if (*n < 0)
		return NULL;
	if (*n >= 1024 && (text = malloc((size_t)*n + 1)) != NULL)
		vsnprintf(text, (size_t)*n + 1, fmt, ap);
	else if (text == NULL)
		text = raw, *n = 1023; /* no memory: the message cut short */
	return text;
}

/* text, escaped, into buf (cap bytes) or, where it does not fit, a
 * malloc'ed buffer the caller frees (*heap). */
static const char *log_escape(char *buf, size_t cap, char **heap, const char *text, size_t n)
{
	*heap = NULL;
	/* An escape is at most 4 bytes per byte of text. */
	if (n * 4 + 1 > cap && (*heap = malloc(n * 4 + 1)) != NULL) {
		buf = *heap;
		cap = n * 4 + 1;
	}
	djc_escape(buf, cap, text, n);
	return buf;
}

/* A text line: "SECONDS.MS LEVEL COMPONENT[ req=ID]: escaped message". */
static void log_text_line(FILE *f, const struct timespec *ts, const char *level,
			  const char *component, const char *text, size_t n)
{
	char buf[2048], *heap;
	const char *line = log_escape(buf, sizeof(buf), &heap, text, n);

	fprintf(f, "%ld.%03ld %-6s %s%s%s: %s\n", (long)ts->tv_sec, ts->tv_nsec / 1000000, level,
		component, log_req[0] ? " req=" : "", log_req, line);
	free(heap);
}

void djc_vlog(enum dj_log_level level, const char *component, const char *fmt, va_list ap)
{
	struct timespec ts;
	char raw[1024], *text;
	dj_log_fn fn;
	void *fn_arg;
	FILE *f;
	int n;

	if (level > dj_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	text = log_vformat(raw, &n, fmt, ap);
	if (text == NULL) {
		text = raw;
		n = snprintf(raw, sizeof(raw), "(unprintable log message)");
	}
	/* One lock so concurrent threads never interleave within a line. A
	 * host's handler runs outside it: it may take locks of its own (a
	 * Python handler takes the GIL) that a thread holding ours waits on. */
	pthread_mutex_lock(&log_lock);
	fn = log_fn;
	fn_arg = log_fn_arg;
	if (fn == NULL) {
		f = log_stream != NULL ? log_stream : stderr;
		if (djc_log_get_format() == DJC_LOG_JSON) {
			char when[40];
			struct tm tm;
			size_t w;

			gmtime_r(&ts.tv_sec, &tm);
			w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
			log_json_line(f, when, level_names[level], component, text);
		} else {
			log_text_line(f, &ts, level_names[level], component, text, (size_t)n);
		}
		fflush(f);
	}
	pthread_mutex_unlock(&log_lock);
	if (fn != NULL) {
		char buf[2048], *heap;

		fn(level, component, log_escape(buf, sizeof(buf), &heap, text, (size_t)n), fn_arg);
		free(heap);
	}
	if (text != raw)
		free(text);
}

void djc_log(enum dj_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	djc_vlog(level, component, fmt, ap);
	va_end(ap);
}

static pthread_once_t cpus_once = PTHREAD_ONCE_INIT;
static long cpus_online;

static void cpus_read(void)
{
	cpus_online = sysconf(_SC_NPROCESSORS_ONLN);
}

uint32_t djc_spin_budget_us(uint32_t us)
{
	pthread_once(&cpus_once, cpus_read);
	return cpus_online >= DJC_SPIN_MIN_CPUS ? us : 0;
}

uint64_t djc_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void djc_deadline_ts(uint64_t ns, struct timespec *ts)
{
	uint64_t at = djc_time_ns() + ns;

	ts->tv_sec = (time_t)(at / 1000000000ull);
	ts->tv_nsec = (long)(at % 1000000000ull);
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
