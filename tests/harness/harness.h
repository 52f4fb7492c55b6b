/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_HARNESS_H
#define DJINN_TEST_HARNESS_H

/*
 * Shared CUnit driver for every test program: register suites with
 * dj_test_add_suite(), then return dj_test_main(). Exit status: 0 all passed,
 * 1 a failure, 77 skipped (meson's convention), with the reason printed.
 */
#include <CUnit/CUnit.h>

#define DJ_TEST_SKIP_STATUS 77

struct dj_test_case {
	const char *name;
	CU_TestFunc fn;
};

/* Register a suite; the case list ends with {NULL, NULL}. */
void dj_test_add_suite(const char *name, CU_InitializeFunc init,
		       CU_CleanupFunc cleanup, const struct dj_test_case *cases);

/* Run every registered suite; returns the process exit status. */
int dj_test_main(int argc, char **argv);

/* How the run ended, for atexit handlers (the CUnit registry is gone by
 * then): 0 every test passed, 1 a failure or nothing ran, -1 the run did
 * not finish (a skip, a crash, an exit from a test). */
int dj_test_outcome(void);

/* Print why and exit 77 so meson reports the test as skipped. */
void dj_test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Seed for randomised tests: DJ_TEST_SEED from the environment, else fresh;
 * printed once so a failure can be replayed. */
unsigned int dj_test_seed(void);

/* Move the calling thread into the network namespace `ip netns` calls
 * name (threads it starts afterwards are there too); 0 or -errno. */
int dj_test_netns_enter(const char *name);

#endif
