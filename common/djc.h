/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DJC_H
#define DJINN_DJC_H

/*
 * Internal helpers every layer shares (prefix djc_): logging behind the
 * public log level of djinn/common.h (text or JSON lines, each naming the
 * request its thread works for), escaping of untrusted text, a monotonic
 * clock, and the one formatter of error texts for functions that take (err,
 * errlen). Command-line parsing for the apps is in common/cli.h.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "djinn/common.h"

/** Parse "err", "warn", "notice", "info" or "debug"; -EINVAL otherwise. */
int djc_log_level_parse(const char *name, enum dj_log_level *level);

/**
 * Escape text that may come from a peer so that it prints as one line and
 * is valid UTF-8: printable ASCII and well-formed UTF-8 pass unchanged; a
 * backslash becomes two, newline, carriage return and tab become \n, \r and
 * \t, and every other control character (C0, DEL, the C1 range, hence
 * every ANSI escape) and every byte of malformed UTF-8 becomes \xNN.
 * Reads @p in up to @p in_len bytes or its first NUL. @p out (at least
 * 1 byte) is always NUL-terminated; where @p cap is too small the text is
 * cut before an escape or a UTF-8 sequence, never inside one.
 * @return the length written to @p out (without the NUL).
 */
size_t djc_escape(char *out, size_t cap, const char *in, size_t in_len);

/** How log lines are written: human-readable text (the default) or one JSON
 *  object per line for log shippers (docs/OBSERVABILITY.md). */
enum djc_log_format {
	DJC_LOG_TEXT = 0,
	DJC_LOG_JSON,
};

/** Parse "text" or "json"; -EINVAL otherwise. */
int djc_log_format_parse(const char *name, enum djc_log_format *format);
/** Set the process-wide log format (default DJC_LOG_TEXT). */
void djc_log_set_format(enum djc_log_format format);
enum djc_log_format djc_log_get_format(void);
/** Where log lines go: NULL means stderr (tests capture them in a file). */
void djc_log_set_stream(FILE *stream);

/** Longest request id, terminating NUL included. */
#define DJC_REQ_ID_MAX 48

/**
 * The request this thread works for: every log line the thread writes until
 * it is cleared names it ("req=ID" in text, "req" in JSON), so one request
 * can be followed through the client, the control plane and the data path.
 * NULL or "" clears it. Longer ids are cut to DJC_REQ_ID_MAX - 1 bytes.
 */
void djc_log_req_set(const char *id);
/** This thread's request id, "" when none. */
const char *djc_log_req_get(void);
/** 1 where id is a valid request id: 1 to DJC_REQ_ID_MAX - 1 bytes of
 *  [A-Za-z0-9._:-] (nothing that could break a log line), else 0. */
int djc_req_id_valid(const char *id);
/** Copy src into dst of size bytes (size > 0), cut short where it does not
 *  fit, always terminated: snprintf(dst, size, "%s", src) without the
 *  format machinery, for per-request paths. */
void djc_strcpy(char *dst, const char *src, size_t size);

/**
 * Escape text as the inside of a JSON string (quotes, backslashes, control
 * characters as \u00XX, invalid UTF-8 as U+FFFD) into out, NUL-terminated
 * and cut at a character boundary where size is too small.
 * @return the length the escaped text needs (without the NUL), as
 *  snprintf: a result >= size means out was cut.
 */
size_t djc_json_escape(char *out, size_t size, const char *text);

/**
 * Log one line (to stderr, the stream djc_log_set_stream() names, or the
 * host's dj_log_set_handler(), which gets the escaped message alone) with a
 * level and component tag. Thread safe. In text lines the formatted message
 * goes through djc_escape(), so text from a peer can never forge a line or
 * reach the terminal as an escape sequence; JSON lines carry it through
 * djc_json_escape() alone.
 */
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
/** *ts = ns from now on CLOCK_MONOTONIC, as pthread_cond_timedwait() takes
 *  it for a condition variable on that clock. */
void djc_deadline_ts(uint64_t ns, struct timespec *ts);

/** CPUs online at or above which a thread may spin for work before it
 *  sleeps: with fewer, a spinner takes the core the thread it waits for
 *  needs (the 2-core dev VM), and every wait gets slower. */
#define DJC_SPIN_MIN_CPUS 8
/** Spin budget us where the host has DJC_SPIN_MIN_CPUS CPUs online, else 0
 *  (the count is read once). */
uint32_t djc_spin_budget_us(uint32_t us);

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
