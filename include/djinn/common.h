/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_COMMON_H
#define DJINN_COMMON_H

/**
 * @file
 * Error codes and their text, and the library's log level.
 *
 * Every function that can fail returns 0 or a negative errno value
 * (-EINVAL, -ENOMEM, -ETIMEDOUT, ...). Djinn-specific failures use the
 * DJ_E* codes below, which lie outside the errno range.
 */

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

/**
 * Where log lines go instead of stderr: @p line is the message alone
 * (escaped, no time stamp, no newline), valid only during the call.
 * @p component names the library's part ("ctl-client", "graph"...).
 */
typedef void (*dj_log_fn)(enum dj_log_level level, const char *component, const char *line,
			  void *arg);

/**
 * Send the library's log lines at or above the log level to @p fn (with
 * @p arg) instead of stderr; fn NULL: back to stderr. For hosts with a log
 * of their own (Python's logging). fn runs on whichever thread logs,
 * outside the library's locks, possibly on several threads at once: keep
 * it short and do not call back into the library from it. A line being
 * logged while the handler changes may still reach the old one.
 */
void dj_log_set_handler(dj_log_fn fn, void *arg);
#ifdef __cplusplus
}
#endif

#endif /* DJINN_COMMON_H */
