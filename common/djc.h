/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DJC_H
#define DJINN_DJC_H

/*
 * Internal helpers every layer shares (prefix djc_): logging behind the
 * public log level of djinn/common.h, a monotonic clock, and the one
 * formatter of error texts for functions that take (err, errlen).
 * Command-line parsing for the apps is in common/cli.h.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "djinn/common.h"

/** Parse "err", "warn", "notice", "info" or "debug"; -EINVAL otherwise. */
int djc_log_level_parse(const char *name, enum dj_log_level *level);

/** Log one line to stderr with a level and component tag. Thread safe. */
void djc_log(enum dj_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void djc_vlog(enum dj_log_level level, const char *component, const char *fmt,
	     va_list ap);

#define DJC_LOG(level, component, ...)                                          \
	do {                                                                   \
		if ((level) <= dj_log_get_level())                             \
			djc_log((level), (component), __VA_ARGS__);             \
	} while (0)

/** Monotonic time in nanoseconds (CLOCK_MONOTONIC). */
uint64_t djc_time_ns(void);

/**
 * Write an error text "PREFIX: message" (just "message" where @p prefix is
 * NULL) into @p err, always NUL-terminated and truncated to @p errlen bytes;
 * nothing where @p err is NULL or @p errlen is 0. Every module that reports
 * failures through a caller's (err, errlen) buffer writes them with this.
 *
 * @return
 *   @p rc, so that a failure is reported and returned in one statement:
 *   `return djc_errf(-EINVAL, err, errlen, "npy", "bad magic");`
 */
int djc_errf(int rc, char *err, size_t errlen, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/** djc_errf() with a va_list. */
int djc_verrf(int rc, char *err, size_t errlen, const char *prefix, const char *fmt,
	      va_list ap) __attribute__((format(printf, 5, 0)));

#endif /* DJINN_DJC_H */
