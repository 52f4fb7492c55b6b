/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "harness.h"

static void test_strerror_errno_and_djinn_codes(void)
{
	CU_ASSERT_STRING_EQUAL(dj_strerror(0), "success");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-ETIMEDOUT), "Connection timed out");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-EINVAL), "Invalid argument");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-DJ_EAUTH), "authentication failed");
	CU_ASSERT_STRING_EQUAL(dj_strerror(-DJ_EPEER), "peer reported an error");
	/* Out of both ranges: still a string, never NULL. */
	CU_ASSERT_PTR_NOT_NULL(dj_strerror(-DJ_ERROR_MAX));
	CU_ASSERT_PTR_NOT_NULL(dj_strerror(-999999));
}

static void test_log_level_parse(void)
{
	enum dj_log_level level = DJ_LOG_ERR;

	CU_ASSERT_EQUAL(djc_log_level_parse("debug", &level), 0);
	CU_ASSERT_EQUAL(level, DJ_LOG_DEBUG);
	CU_ASSERT_EQUAL(djc_log_level_parse("WARN", &level), 0);
	CU_ASSERT_EQUAL(level, DJ_LOG_WARN);
	CU_ASSERT_EQUAL(djc_log_level_parse("loud", &level), -EINVAL);
	CU_ASSERT_EQUAL(level, DJ_LOG_WARN);
}

static void test_error_text_formatter(void)
{
	char err[16];

	memset(err, 'x', sizeof(err));
	CU_ASSERT_EQUAL(djc_errf(-EINVAL, err, sizeof(err), "npy", "bad %s", "magic"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "npy: bad magic");
	CU_ASSERT_EQUAL(djc_errf(-DJ_ESHAPE, err, sizeof(err), NULL, "rank %d", 9), -DJ_ESHAPE);
	CU_ASSERT_STRING_EQUAL(err, "rank 9");
	/* Truncated, always terminated, whether the prefix or the text overflows. */
	CU_ASSERT_EQUAL(djc_errf(-1, err, sizeof(err), "op", "%s", "0123456789abcdef"), -1);
	CU_ASSERT_STRING_EQUAL(err, "op: 0123456789a");
	CU_ASSERT_EQUAL(djc_errf(-1, err, sizeof(err), "a-very-long-prefix", "x"), -1);
	CU_ASSERT_EQUAL(strlen(err), sizeof(err) - 1);
	CU_ASSERT_EQUAL(djc_errf(-1, err, 1, "p", "x"), -1);
	CU_ASSERT_STRING_EQUAL(err, "");
	/* No buffer: only the code comes back. */
	CU_ASSERT_EQUAL(djc_errf(-ENOMEM, NULL, 64, "p", "x"), -ENOMEM);
	CU_ASSERT_EQUAL(djc_errf(-ENOMEM, err, 0, "p", "x"), -ENOMEM);
}

static void test_clock_is_monotonic(void)
{
	uint64_t a = djc_time_ns();
	uint64_t b = djc_time_ns();

	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"strerror covers errno and Djinn codes", test_strerror_errno_and_djinn_codes},
		{"log level names parse", test_log_level_parse},
		{"monotonic clock", test_clock_is_monotonic},
		{"error text formatter", test_error_text_formatter},
		{NULL, NULL},
	};
	dj_test_add_suite("common", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
