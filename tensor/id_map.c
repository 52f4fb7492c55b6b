/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>

#include "id_map.h"

int tn_id_map_init(struct tn_id_map *map, size_t buckets)
{
	size_t n = 16;

	while (n < buckets)
		n <<= 1;
	map->buckets = calloc(n, sizeof(*map->buckets));
	if (map->buckets == NULL)
		return -ENOMEM;
	map->mask = n - 1;
	map->count = 0;
	return 0;
}

void tn_id_map_fini(struct tn_id_map *map)
{
	free(map->buckets);
	map->buckets = NULL;
}

/* Double the buckets when the load passes 1; keep the old table on failure. */
static int grow(struct tn_id_map *map)
{
	size_t n = (map->mask + 1) * 2;
	struct id_node **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	for (size_t i = 0; i <= map->mask; i++) {
		struct id_node *node = map->buckets[i];

		while (node != NULL) {
			struct id_node *next = node->next;

			node->next = b[node->id & (n - 1)];
			b[node->id & (n - 1)] = node;
			node = next;
		}
	}
	free(map->buckets);
	map->buckets = b;
	map->mask = n - 1;
	return 0;
}

int tn_id_map_insert(struct tn_id_map *map, struct id_node *node)
{
	int rc = map->count > map->mask ? grow(map) : 0;
	struct id_node **head = &map->buckets[node->id & map->mask];

	node->next = *head;
	*head = node;
	map->count++;
	return rc;
}

struct id_node *tn_id_map_find(const struct tn_id_map *map, uint64_t id)
{
	struct id_node *node = map->buckets[id & map->mask];

	while (node != NULL && node->id != id)
		node = node->next;
	return node;
}

struct id_node *tn_id_map_remove(struct tn_id_map *map, uint64_t id)
{
	struct id_node **link = &map->buckets[id & map->mask];

	while (*link != NULL && (*link)->id != id)
		link = &(*link)->next;
	struct id_node *node = *link;

	if (node != NULL) {
		*link = node->next;
		map->count--;
	}
	return node;
}

struct id_node *tn_id_map_pop(struct tn_id_map *map)
{
	for (size_t i = 0; i <= map->mask && map->count > 0; i++)
		if (map->buckets[i] != NULL)
			return tn_id_map_remove(map, map->buckets[i]->id);
	return NULL;
}
