/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "harness.h"

void dj_test_add_suite(const char *name, CU_InitializeFunc init,
		       CU_CleanupFunc cleanup, const struct dj_test_case *cases)
{
	if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: cannot initialise registry\n");
		exit(1);
	}
	CU_pSuite suite = CU_add_suite(name, init, cleanup);
	if (suite == NULL) {
		fprintf(stderr, "CUnit: cannot add suite %s\n", name);
		exit(1);
	}
	/* DJ_TEST_ONLY=TEXT: only the cases whose name contains TEXT (to
	 * replay one case of a long integration test). */
	const char *only = getenv("DJ_TEST_ONLY");

	for (const struct dj_test_case *c = cases; c->name != NULL; c++) {
		if (only != NULL && strstr(c->name, only) == NULL)
			continue;
		if (CU_add_test(suite, c->name, c->fn) == NULL) {
			fprintf(stderr, "CUnit: cannot add test %s\n", c->name);
			exit(1);
		}
	}
}

static int outcome = -1;

int dj_test_outcome(void)
{
	return outcome;
}

int dj_test_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (CU_get_registry() == NULL) {
		fprintf(stderr, "no suites registered\n");
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned int failed = CU_get_number_of_failures() +
			      CU_get_number_of_suites_failed() +
			      CU_get_number_of_tests_failed();
	unsigned int ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	outcome = failed || ran == 0 ? 1 : 0;
	if (ran == 0)
		fprintf(stderr, "no test ran\n");
	return outcome;
}

void dj_test_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(DJ_TEST_SKIP_STATUS);
}

unsigned int dj_test_seed(void)
{
	static unsigned int seed;
	static int chosen;

	if (!chosen) {
		const char *env = getenv("DJ_TEST_SEED");
		seed = env ? (unsigned int)strtoul(env, NULL, 0)
			   : (unsigned int)time(NULL) ^ ((unsigned int)getpid() << 16);
		chosen = 1;
		printf("test seed %u (replay with DJ_TEST_SEED=%u)\n", seed, seed);
	}
	return seed;
}

int dj_test_netns_enter(const char *name)
{
	char path[256];
	int fd, rc;

	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}
