/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DJC_H
#define DJINN_DJC_H

/*
 * Internal helpers every layer shares (prefix djc_): logging behind the
 * public log level of djinn/common.h, and a monotonic clock.
 */

#include <stdarg.h>
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

#endif /* DJINN_DJC_H */
