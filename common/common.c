/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every layer shares: error codes and their text, the log, the clock,
 * and the error-text formatter (common/djc.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
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

void djc_vlog(enum dj_log_level level, const char *component, const char *fmt, va_list ap)
{
	struct timespec ts;

	if (level > dj_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* One lock so concurrent threads never interleave within a line. */
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%ld.%03ld %-6s %s: ", (long)ts.tv_sec, ts.tv_nsec / 1000000,
		level_names[level], component);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
