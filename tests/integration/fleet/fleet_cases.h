/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_FLEET_CASES_H
#define DJINN_TEST_FLEET_CASES_H

/*
 * Cases every fleet topology runs (static over TCP, etcd, network
 * namespaces over DPDK), against a fleet client and the servers behind it.
 * Each asserts with CUnit.
 */
#include <stdint.h>

#include "djinn/fleet.h"
#include "fleet_env.h"

/* The member index the client has for s (waits up to 5 s for it to be up,
 * refreshing); UINT32_MAX where it never shows. */
uint32_t fc_member(struct dj_fleet *f, const struct fe_server *s);

/* Every ordered pair of servers, every size: put on the source, MOVE or
 * COPY (alternating) to the target, read back byte-exact from the target,
 * the source kept (COPY) or gone (MOVE), the path as want. */
void fc_moves(struct dj_fleet *f, struct fe_server *servers, int n, const uint64_t *sizes,
	      int n_sizes, enum dj_path want);

/* Routing: a tensor on each member, an operation on its owner, a batch,
 * -EXDEV for inputs on two members, put to the least loaded. */
void fc_routing(struct dj_fleet *f, struct fe_server *servers, int n);

/* The target (servers[dst]) SIGKILLed while bytes move to it: the move
 * fails, the source still holds the tensor byte-exact, the target's
 * handles answer -EHOSTDOWN once it left; restarted, it serves again. */
void fc_target_killed(struct dj_fleet *f, struct fe_server *servers, int src, int dst,
		      uint64_t bytes);
/* The source SIGKILLed mid-move: the move fails and the target frees the
 * partial tensor at once (its store back to where it was within 1 s);
 * the source is restarted. */
void fc_source_killed(struct dj_fleet *f, struct fe_server *servers, int src, int dst,
		      uint64_t bytes);

/* Wait (refreshing) until s is up under a new incarnation; its index. */
uint32_t fc_member_restarted(struct dj_fleet *f, const struct fe_server *s, uint64_t old_inc,
			     int timeout_s);
/* The member record of index (0 where absent). */
int fc_member_info(struct dj_fleet *f, uint32_t index, struct dj_fleet_member *m);

#endif
