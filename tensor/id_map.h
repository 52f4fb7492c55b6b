/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TENSOR_ID_MAP_H
#define DJINN_TENSOR_ID_MAP_H

/*
 * An intrusive hash map from 64-bit ids to nodes embedded in the caller's
 * structures. Ids are expected to be random already (the store's permuted
 * counters), so the low bits index the buckets directly. Not thread safe.
 */
#include <stddef.h>
#include <stdint.h>

struct id_node {
	uint64_t id;
	struct id_node *next;
};

struct tn_id_map {
	struct id_node **buckets;
	size_t mask;
	size_t count;
};

int tn_id_map_init(struct tn_id_map *map, size_t buckets);
/* Frees the bucket array only; the nodes belong to the caller. */
void tn_id_map_fini(struct tn_id_map *map);
/* Always inserts; -ENOMEM only means the table could not grow (still works). */
int tn_id_map_insert(struct tn_id_map *map, struct id_node *node);
struct id_node *tn_id_map_find(const struct tn_id_map *map, uint64_t id);
struct id_node *tn_id_map_remove(struct tn_id_map *map, uint64_t id);
/* Remove and return any node (NULL when empty): for teardown. */
struct id_node *tn_id_map_pop(struct tn_id_map *map);

#endif
