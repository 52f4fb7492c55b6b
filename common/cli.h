/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CLI_H
#define DJINN_CLI_H

/*
 * Command-line scaffolding every app shares (prefix djc_): numbers, sizes
 * and lists parsed with their ranges (nothing wraps, truncates or goes
 * through a double silently), names out of a table, IPv4 addresses, --help,
 * and the `prog [EAL args] -- [options]` split.
 *
 * The djc_parse_* functions only parse. The djc_opt_* functions parse the
 * value of one option and, where it is bad, print an error that names the
 * tool, the option and the accepted range:
 *
 *   djinn: --port: '99999' is out of range (1..65535)
 *
 * Return values: 0, -EINVAL (not a value of that kind: empty, a sign,
 * trailing text, an unknown name), -ERANGE (a value outside the range, or
 * beyond 64 bits), -E2BIG (a list longer than its room).
 */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most arguments djc_cli_app_args() hands back. */
#define DJC_CLI_MAX_ARGS 256

/**
 * An unsigned integer, decimal or 0x hexadecimal, in [min, max].
 * @return 0, -EINVAL or -ERANGE; *value is left alone on failure.
 */
int djc_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value);

/** A finite decimal number in [min, max]. @return 0, -EINVAL or -ERANGE. */
int djc_parse_double(const char *text, double min, double max, double *value);

/**
 * A byte count: decimal digits, then optionally K, M, G or T (powers of
 * 1024, either case). No fractions: "1.5M" is -EINVAL.
 * @return 0, -EINVAL, or -ERANGE (beyond 64 bits or outside [min, max]).
 */
int djc_parse_size(const char *text, uint64_t min, uint64_t max, uint64_t *bytes);

/**
 * A comma-separated list of sizes ("4K,1M,64M"), each in [min, max], at most
 * @p max_n of them; *n receives their number.
 * @return 0, -EINVAL (an empty or bad item), -ERANGE, -E2BIG.
 */
int djc_parse_size_list(const char *text, uint64_t min, uint64_t max, uint64_t *sizes,
			int max_n, int *n);

/** The index of @p text in names[0 .. n). @return 0 or -EINVAL. */
int djc_parse_choice(const char *text, const char *const *names, int n, int *index);

/** Dotted IPv4 "a.b.c.d" into host byte order. @return 0 or -EINVAL. */
int djc_parse_ipv4(const char *text, uint32_t *ip);

/**
 * "HOST:PORT", split at its last colon: HOST not empty and at most
 * @p host_len - 1 bytes (not checked further), PORT an integer as
 * djc_parse_u64() reads it, in [min_port, 65535]. One parser for every
 * endpoint the tools and modules take (fleet members, --metrics, top).
 * @return 0 or -EINVAL; host and *port are left alone on failure.
 */
int djc_parse_host_port(const char *text, char *host, size_t host_len, uint16_t min_port,
			uint16_t *port);

/** The tool's name in messages (default "djinn"); borrowed, not copied. */
void djc_cli_set_name(const char *name);
const char *djc_cli_name(void);

/** Print "NAME: message" and a newline on stderr. @return -EINVAL. */
int djc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * One option's value (@p opt is the option as the user wrote it, "--port"),
 * with a message on stderr where it is bad. Same returns as djc_parse_*.
 */
int djc_opt_u64(const char *opt, const char *text, uint64_t min, uint64_t max,
		uint64_t *value);
int djc_opt_u32(const char *opt, const char *text, uint32_t min, uint32_t max,
		uint32_t *value);
int djc_opt_u16(const char *opt, const char *text, uint16_t min, uint16_t max,
		uint16_t *value);
/** For int fields; negative values are refused (min >= 0). */
int djc_opt_int(const char *opt, const char *text, int min, int max, int *value);
int djc_opt_double(const char *opt, const char *text, double min, double max, double *value);
int djc_opt_size(const char *opt, const char *text, uint64_t min, uint64_t max,
		 uint64_t *bytes);
int djc_opt_size_list(const char *opt, const char *text, uint64_t min, uint64_t max,
		      uint64_t *sizes, int max_n, int *n);
/** The message lists the names: "--path: 'x' is not one of auto, tcp, dpdk". */
int djc_opt_choice(const char *opt, const char *text, const char *const *names, int n,
		   int *index);
int djc_opt_ipv4(const char *opt, const char *text, uint32_t *ip);
/** A log level name (djc_log_level_parse()); sets the process's level. */
int djc_opt_log_level(const char *opt, const char *text);
/** A log format name, text or json (djc_log_format_parse()); sets the
 *  process's format. */
int djc_opt_log_format(const char *opt, const char *text);

/**
 * The option loop every app runs: getopt_long() over argv (from its start),
 * @p one called with each option and its value (NULL for options without);
 * getopt itself names an unknown option or a missing value. Then positional
 * arguments: refused ("unexpected argument 'x'") where @p first_arg is
 * NULL, else *first_arg receives the index of the first one (getopt has
 * moved them behind the options).
 *
 * @return 0, -EINVAL (an unknown option, a missing value, an unexpected
 *   argument), or the first error @p one returned.
 */
int djc_cli_getopt(int argc, char **argv, const char *shortopts,
		   const struct option *longopts,
		   int (*one)(int c, const char *arg, void *ctx), void *ctx, int *first_arg);

/** 1 when "-h" or "--help" is one of argv[1 .. argc), else 0. */
int djc_cli_wants_help(int argc, char **argv);

/**
 * The application's arguments of `prog [EAL args] -- [options]`, without
 * starting anything: the program name, then what follows the first "--".
 * Without a "--": every argument where @p all_without_separator (a tool run
 * without EAL), else the program name alone. argv is left as it is;
 * *app_argv points to static storage (one caller at a time), NULL-terminated.
 *
 * @return
 *   1 when a "--" was found, 0 when not, -E2BIG beyond DJC_CLI_MAX_ARGS.
 */
int djc_cli_app_args(int argc, char **argv, bool all_without_separator, int *app_argc,
		     char ***app_argv);

/**
 * How a tool starts, the same in every app: --help prints the usage and
 * ends; the arguments before "--" go to @p start (EAL), the application's
 * own to @p parse. An app fills one and calls djc_cli_begin().
 */
struct djc_cli_tool {
	const char *name;                    /**< for messages: "djinn-impair" */
	void (*usage)(const char *prog);     /**< prints the usage on stdout */
	/** Starts what takes the arguments before "--" (EAL) and returns the
	 *  application's arguments; 0 or a negative errno. NULL: nothing to
	 *  start, the application's arguments are those after "--", or all
	 *  of them without one. */
	int (*start)(void *arg, int argc, char **argv, int *app_argc, char ***app_argv);
	void (*stop)(void *arg);             /**< undoes start (may be NULL) */
	void *start_arg;
	const char *start_what;              /**< "EAL", for the message */
	/** Parses the application's arguments into opts; 0 or a negative
	 *  errno (after printing what is wrong, or not: usage follows). */
	int (*parse)(int argc, char **argv, void *opts);
	void *opts;
};

/**
 * Run a tool's start: djc_cli_set_name(tool->name); --help anywhere: usage,
 * status 0; start fails: "NAME: cannot start WHAT: reason", status 1;
 * parse fails: usage on stdout, stop, status 2.
 *
 * @return
 *   -1 where the tool goes on (started, options parsed), else the exit
 *   status main() returns.
 */
int djc_cli_begin(const struct djc_cli_tool *tool, int argc, char **argv);

#endif /* DJINN_CLI_H */
