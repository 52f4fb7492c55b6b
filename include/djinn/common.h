/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_COMMON_H
#define DJINN_COMMON_H

/**
 * @file
 * Conventions shared by every Djinn layer: error codes, error text, logging,
 * and a monotonic clock.
 *
 * Every function that can fail returns 0 or a negative errno value
 * (-EINVAL, -ENOMEM, -ETIMEDOUT, ...). Djinn-specific failures use the
 * DJ_E* codes below, which lie outside the errno range.
 */

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Djinn-specific error codes, returned negated like errno values. */
enum dj_error {
	DJ_EPROTO_VERSION = 10000, /**< peer speaks an unknown protocol version */
	DJ_EAUTH,                  /**< authentication failed */
	DJ_ESHAPE,                 /**< tensor shapes do not fit the operation */
	DJ_EDTYPE,                 /**< dtype not supported by the operation */
	DJ_EUNKNOWN_OP,            /**< no such operation */
	DJ_EHANDLE,                /**< unknown or freed tensor handle */
	DJ_ENOGPU,                 /**< no usable GPU */
	DJ_ENODPDK,                /**< data plane unavailable */
	DJ_ELIMIT,                 /**< a configured limit was exceeded */
	DJ_EPEER,                  /**< the peer reported an error */
	DJ_ERROR_MAX
};

/**
 * Text for a return code: 0, a negative errno or a negative DJ_E* value.
 * The returned string is static; never free it.
 */
const char *dj_strerror(int rc);

/** Log levels, in increasing verbosity. */
enum dj_log_level {
	DJ_LOG_ERR = 0,
	DJ_LOG_WARN,
	DJ_LOG_NOTICE,
	DJ_LOG_INFO,
	DJ_LOG_DEBUG,
};

/** Set the process-wide log level (default DJ_LOG_NOTICE). */
void dj_log_set_level(enum dj_log_level level);
enum dj_log_level dj_log_get_level(void);
/** Parse "err", "warn", "notice", "info" or "debug"; -EINVAL otherwise. */
int dj_log_level_parse(const char *name, enum dj_log_level *level);

/** Log one line to stderr with a level and component tag. Thread safe. */
void dj_log(enum dj_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void dj_vlog(enum dj_log_level level, const char *component, const char *fmt,
	     va_list ap);

#define DJ_LOG(level, component, ...)                                          \
	do {                                                                   \
		if ((level) <= dj_log_get_level())                             \
			dj_log((level), (component), __VA_ARGS__);             \
	} while (0)

/** Monotonic time in nanoseconds (CLOCK_MONOTONIC). */
uint64_t dj_time_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_COMMON_H */
