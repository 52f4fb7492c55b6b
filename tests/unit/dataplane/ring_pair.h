/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_RING_PAIR_H
#define DJINN_TEST_RING_PAIR_H

#include <stdint.h>

#include <rte_ring.h>

/* Two net_ring ports wired back to back (names unique within the process):
 * what a sends, b receives. *a_to_b (when not NULL) receives the ring that
 * b reads, for injecting frames. CUnit-fatal on failure. */
void dj_test_ring_pair(uint16_t *a, uint16_t *b, struct rte_ring **a_to_b);

#endif
