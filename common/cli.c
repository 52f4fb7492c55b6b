/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Command-line scaffolding of the apps (common/cli.h): one parser per kind
 * of value, each refusing what it cannot represent instead of wrapping it,
 * and the messages that name the option at fault.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"

static const char *cli_name = "djinn";

int djc_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
	int hex = text != NULL && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
	const char *digits = hex ? text + 2 : text;
	unsigned long long v;
	char *end;

	/* strtoull accepts leading blanks and a sign ("-1" is ULLONG_MAX), and
	 * base 0 reads "010" as octal: decimal, or hexadecimal after 0x. */
	if (text == NULL || !(hex ? isxdigit((unsigned char)digits[0])
				  : isdigit((unsigned char)digits[0])))
		return -EINVAL;
	errno = 0;
	v = strtoull(digits, &end, hex ? 16 : 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*value = v;
	return 0;
}

int djc_parse_double(const char *text, double min, double max, double *value)
{
	char *end;
	double v;

	if (text == NULL || text[0] == '\0' || isspace((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (*end != '\0' || isnan(v))
		return -EINVAL;
	if (errno == ERANGE || isinf(v) || v < min || v > max)
		return -ERANGE;
	*value = v;
	return 0;
}

int djc_parse_size(const char *text, uint64_t min, uint64_t max, uint64_t *bytes)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (text == NULL || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end != '\0')
		return -EINVAL;
	/* A size that does not fit in 64 bits is refused, never wrapped. */
	if (errno == ERANGE || v > (UINT64_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (v < min || v > max)
		return -ERANGE;
	*bytes = v;
	return 0;
}

int djc_parse_size_list(const char *text, uint64_t min, uint64_t max, uint64_t *sizes,
			int max_n, int *n)
{
	char item[64];
	int count = 0;

	if (text == NULL || text[0] == '\0')
		return -EINVAL;
	for (const char *p = text;; p++) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		int rc;

		if (len == 0 || len >= sizeof(item))
			return -EINVAL;
		if (count == max_n)
			return -E2BIG;
		memcpy(item, p, len);
		item[len] = '\0';
		rc = djc_parse_size(item, min, max, &sizes[count]);
		if (rc != 0)
			return rc;
		count++;
		if (comma == NULL)
			break;
		p = comma;
	}
	*n = count;
	return 0;
}

int djc_parse_choice(const char *text, const char *const *names, int n, int *index)
{
	for (int i = 0; text != NULL && i < n; i++) {
		if (names[i] != NULL && strcmp(text, names[i]) == 0) {
			*index = i;
			return 0;
		}
	}
	return -EINVAL;
}

int djc_parse_ipv4(const char *text, uint32_t *ip)
{
	uint32_t v = 0;
	const char *p = text;

	for (int part = 0; part < 4; part++) {
		unsigned int octet = 0;
		int digits = 0;

		if (part > 0 && *p++ != '.')
			return -EINVAL;
		/* Plain decimal octets only: no sign, no blank, at most 3 digits. */
		while (isdigit((unsigned char)*p) && digits < 3) {
			octet = octet * 10 + (unsigned int)(*p++ - '0');
			digits++;
		}
		if (digits == 0 || octet > 255)
			return -EINVAL;
		v = v << 8 | octet;
	}
	if (*p != '\0')
		return -EINVAL;
	*ip = v;
	return 0;
}

int djc_parse_host_port(const char *text, char *host, size_t host_len, uint16_t min_port,
			uint16_t *port)
{
	const char *colon = text != NULL ? strrchr(text, ':') : NULL;
	uint64_t p;

	if (colon == NULL || colon == text || (size_t)(colon - text) >= host_len ||
	    djc_parse_u64(colon + 1, min_port, UINT16_MAX, &p) != 0)
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	*port = (uint16_t)p;
	return 0;
}

void djc_cli_set_name(const char *name)
{
	cli_name = name != NULL ? name : "djinn";
}

const char *djc_cli_name(void)
{
	return cli_name;
}

int djc_cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

/* The message of a refused value; rc says which kind of refusal. */
static int opt_refused(int rc, const char *opt, const char *text, const char *kind,
		       const char *range)
{
	if (rc == -ERANGE)
		djc_cli_error("%s: '%s' is out of range (%s)", opt, text, range);
	else if (rc == -E2BIG)
		djc_cli_error("%s: '%s' has too many items (%s)", opt, text, range);
	else
		djc_cli_error("%s: '%s' is not %s", opt, text, kind);
	return rc;
}

/* An integer option into a field of @p width bytes; the range was
 * checked before the store, so the narrowing cannot wrap. */
static int opt_uint(const char *opt, const char *text, uint64_t min, uint64_t max,
		    void *value, size_t width)
{
	char range[64];
	uint64_t v;
	int rc = djc_parse_u64(text, min, max, &v);

	if (rc != 0) {
		snprintf(range, sizeof(range), "%llu..%llu", (unsigned long long)min,
			 (unsigned long long)max);
		return opt_refused(rc, opt, text, "a non-negative integer", range);
	}
	if (width == sizeof(uint64_t))
		*(uint64_t *)value = v;
	else if (width == sizeof(uint32_t))
		*(uint32_t *)value = (uint32_t)v;
	else
		*(uint16_t *)value = (uint16_t)v;
	return 0;
}

int djc_opt_u64(const char *opt, const char *text, uint64_t min, uint64_t max,
		uint64_t *value)
{
	return opt_uint(opt, text, min, max, value, sizeof(*value));
}

int djc_opt_u32(const char *opt, const char *text, uint32_t min, uint32_t max,
		uint32_t *value)
{
	return opt_uint(opt, text, min, max, value, sizeof(*value));
}

int djc_opt_u16(const char *opt, const char *text, uint16_t min, uint16_t max,
		uint16_t *value)
{
	return opt_uint(opt, text, min, max, value, sizeof(*value));
}

int djc_opt_int(const char *opt, const char *text, int min, int max, int *value)
{
	_Static_assert(sizeof(int) == sizeof(uint32_t), "int is 32 bits");
	return opt_uint(opt, text, min < 0 ? 0 : (uint64_t)min, max < 0 ? 0 : (uint64_t)max,
			value, sizeof(*value));
}

int djc_opt_double(const char *opt, const char *text, double min, double max, double *value)
{
	char range[64];
	int rc = djc_parse_double(text, min, max, value);

	if (rc == 0)
		return 0;
	snprintf(range, sizeof(range), "%g..%g", min, max);
	return opt_refused(rc, opt, text, "a number", range);
}

/* "1M", or the exact count where it is not a whole number of KiB. */
static void size_text(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (v != 0 && (v & 1023) == 0 && u < 3) {
		v >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
}

static void size_range(uint64_t min, uint64_t max, char *buf, size_t len)
{
	char lo[32], hi[32];

	size_text(min, lo, sizeof(lo));
	size_text(max, hi, sizeof(hi));
	snprintf(buf, len, "%s..%s bytes", lo, hi);
}

int djc_opt_size(const char *opt, const char *text, uint64_t min, uint64_t max,
		 uint64_t *bytes)
{
	char range[80];
	int rc = djc_parse_size(text, min, max, bytes);

	if (rc == 0)
		return 0;
	size_range(min, max, range, sizeof(range));
	return opt_refused(rc, opt, text, "a size (digits, then K, M, G or T)", range);
}

int djc_opt_size_list(const char *opt, const char *text, uint64_t min, uint64_t max,
		      uint64_t *sizes, int max_n, int *n)
{
	char range[96];
	int rc = djc_parse_size_list(text, min, max, sizes, max_n, n);

	if (rc == 0)
		return 0;
	if (rc == -E2BIG) {
		snprintf(range, sizeof(range), "at most %d", max_n);
	} else {
		size_range(min, max, range, sizeof(range));
	}
	return opt_refused(rc, opt, text, "a list of sizes (e.g. 4K,1M)", range);
}

int djc_opt_choice(const char *opt, const char *text, const char *const *names, int n,
		   int *index)
{
	char list[256];
	size_t used = 0;

	if (djc_parse_choice(text, names, n, index) == 0)
		return 0;
	list[0] = '\0';
	for (int i = 0; i < n && used < sizeof(list); i++) {
		if (names[i] == NULL)
			continue;
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
				 names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	djc_cli_error("%s: '%s' is not one of %s", opt, text ? text : "", list);
	return -EINVAL;
}

int djc_opt_ipv4(const char *opt, const char *text, uint32_t *ip)
{
	int rc = djc_parse_ipv4(text, ip);

	if (rc != 0)
		djc_cli_error("%s: '%s' is not an IPv4 address (A.B.C.D)", opt, text);
	return rc;
}

int djc_opt_log_level(const char *opt, const char *text)
{
	enum dj_log_level level;

	if (djc_log_level_parse(text, &level) != 0)
		return djc_cli_error("%s: '%s' is not one of err, warn, notice, info, debug", opt,
				     text);
	dj_log_set_level(level);
	return 0;
}

int djc_opt_log_format(const char *opt, const char *text)
{
	enum djc_log_format format;

	if (djc_log_format_parse(text, &format) != 0)
		return djc_cli_error("%s: '%s' is not one of text, json", opt, text);
	djc_log_set_format(format);
	return 0;
}

int djc_cli_getopt(int argc, char **argv, const char *shortopts,
		   const struct option *longopts,
		   int (*one)(int c, const char *arg, void *ctx), void *ctx, int *first_arg)
{
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		/* '?' and ':': getopt printed what is wrong. */
		rc = c == '?' || c == ':' ? -EINVAL : one(c, optarg, ctx);
		if (rc != 0)
			return rc;
	}
	if (first_arg != NULL)
		*first_arg = optind;
	else if (optind < argc)
		return djc_cli_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

int djc_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

int djc_cli_app_args(int argc, char **argv, bool all_without_separator, int *app_argc,
		     char ***app_argv)
{
	static char *args[DJC_CLI_MAX_ARGS + 1];
	int split = 1, from, n = 0;

	while (split < argc && strcmp(argv[split], "--") != 0)
		split++;
	from = split < argc ? split + 1 : all_without_separator ? 1 : argc;
	if (1 + argc - from > DJC_CLI_MAX_ARGS)
		return -E2BIG;
	args[n++] = argv[0];
	for (int i = from; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	*app_argc = n;
	*app_argv = args;
	return split < argc;
}

int djc_cli_begin(const struct djc_cli_tool *tool, int argc, char **argv)
{
	char **app_argv;
	int app_argc, rc;

	djc_cli_set_name(tool->name);
	if (djc_cli_wants_help(argc, argv)) {
		tool->usage(argv[0]);
		return 0;
	}
	if (tool->start != NULL) {
		rc = tool->start(tool->start_arg, argc, argv, &app_argc, &app_argv);
		if (rc != 0) {
			djc_cli_error("cannot start %s: %s",
				      tool->start_what ? tool->start_what : "", dj_strerror(rc));
			return 1;
		}
	} else if ((rc = djc_cli_app_args(argc, argv, true, &app_argc, &app_argv)) < 0) {
		djc_cli_error("%s", dj_strerror(rc));
		return 2;
	}
	if (tool->parse(app_argc, app_argv, tool->opts) != 0) {
		tool->usage(argv[0]);
		if (tool->stop != NULL)
			tool->stop(tool->start_arg);
		return 2;
	}
	return -1;
}
