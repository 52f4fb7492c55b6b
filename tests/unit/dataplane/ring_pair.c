/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include <rte_eth_ring.h>

#include "harness.h"
#include "ring_pair.h"

void dj_test_ring_pair(uint16_t *a, uint16_t *b, struct rte_ring **a_to_b)
{
	static unsigned int ring_seq;
	char name[32];
	struct rte_ring *ab, *ba;
	int pa, pb;

	snprintf(name, sizeof(name), "djab%u", ring_seq);
	ab = rte_ring_create(name, 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "djba%u", ring_seq);
	ba = rte_ring_create(name, 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	CU_ASSERT_FATAL(ab != NULL && ba != NULL);
	snprintf(name, sizeof(name), "net_ringA%u", ring_seq);
	pa = rte_eth_from_rings(name, &ba, 1, &ab, 1, 0);
	snprintf(name, sizeof(name), "net_ringB%u", ring_seq);
	pb = rte_eth_from_rings(name, &ab, 1, &ba, 1, 0);
	ring_seq++;
	CU_ASSERT_FATAL(pa >= 0 && pb >= 0);
	*a = (uint16_t)pa;
	*b = (uint16_t)pb;
	if (a_to_b != NULL)
		*a_to_b = ab;
}
