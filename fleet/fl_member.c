/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Member records and static member lists, read the same way by the member
 * agent and the fleet client. A record is what ctl_server_member_json()
 * writes (docs/FLEET.md): {"id", "incarnation", "endpoint", "fleet_auth",
 * "caps": HELLO's capabilities, "load": {"devices": [...], "store_bytes",
 * ...}}; an etcd value adds "updated_ms".
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "fl.h"

static double num(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(it) && it->valuedouble > 0 ? it->valuedouble : 0;
}

static void devices_from_json(const cJSON *load, struct ctl_mem_info *mem)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(load, "devices")) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(d, "mem");

		if (mem->n_devices == DP_MAX_GPUS)
			break;
		snprintf(mem->devices[mem->n_devices].name, sizeof(mem->devices[0].name), "%s",
			 cJSON_IsString(name) ? name->valuestring : "?");
		mem->devices[mem->n_devices].mem = cJSON_IsString(kind) &&
						   strcmp(kind->valuestring, "gpu") == 0 ?
						   DJ_MEM_GPU : DJ_MEM_HOST;
		mem->devices[mem->n_devices].total = (uint64_t)num(d, "mem_total");
		mem->devices[mem->n_devices].free = (uint64_t)num(d, "mem_free");
		mem->devices[mem->n_devices].running = (uint64_t)num(d, "running");
		mem->devices[mem->n_devices].queued = (uint64_t)num(d, "queued");
		mem->n_devices++;
	}
	mem->store_bytes = (uint64_t)num(load, "store_bytes");
	mem->store_limit = (uint64_t)num(load, "store_limit");
}

int fl_member_from_json(const cJSON *obj, struct fl_member *m, char *why)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	const cJSON *inc = cJSON_GetObjectItemCaseSensitive(obj, "incarnation");
	const cJSON *ep = cJSON_GetObjectItemCaseSensitive(obj, "endpoint");
	const cJSON *load = cJSON_GetObjectItemCaseSensitive(obj, "load");
	char host[64];
	uint16_t port;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
	    strlen(id->valuestring) >= sizeof(m->id) || !cJSON_IsString(inc) ||
	    ctl_handle_parse(inc->valuestring, &m->incarnation) != 0 || !cJSON_IsString(ep) ||
	    strlen(ep->valuestring) >= sizeof(m->endpoint) ||
	    djc_parse_host_port(ep->valuestring, host, sizeof(host), 1, &port) != 0) {
		snprintf(why, FL_WHY_MAX, "member record without a valid id, incarnation or endpoint");
		return -EINVAL;
	}
	snprintf(m->id, sizeof(m->id), "%s", id->valuestring);
	snprintf(m->endpoint, sizeof(m->endpoint), "%s", ep->valuestring);
	m->fleet_auth = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "fleet_auth"));
	ctl_caps_from_json(cJSON_GetObjectItemCaseSensitive(obj, "caps"), &m->caps);
	devices_from_json(load, &m->mem);
	m->queued = (uint64_t)num(load, "queued");
	m->jobs = (uint64_t)num(load, "jobs");
	m->workers = (uint64_t)num(load, "workers");
	m->connections = (uint64_t)num(load, "connections");
	m->ops_per_s = num(load, "ops_per_s");
	m->requests_per_s = num(load, "requests_per_s");
	m->updated_ms = (uint64_t)num(obj, "updated_ms");
	return 0;
}

int fl_static_parse(const char *list, char (*endpoints)[FL_ENDPOINT_MAX], int max, char *why)
{
	const char *p = list;
	int n = 0;

	while (p != NULL && *p != '\0') {
		size_t len;
		char host[64];
		uint16_t port;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		len = strcspn(p, ", \t\r\n");
		if (len == 0)
			break;
		if (n == max) {
			snprintf(why, FL_WHY_MAX, "more than %d members", max);
			return -EINVAL;
		}
		if (len >= FL_ENDPOINT_MAX) {
			snprintf(why, FL_WHY_MAX, "member '%.40s...' is too long", p);
			return -EINVAL;
		}
		memcpy(endpoints[n], p, len);
		endpoints[n][len] = '\0';
		if (djc_parse_host_port(endpoints[n], host, sizeof(host), 1, &port) != 0) {
			snprintf(why, FL_WHY_MAX, "member '%.60s' is not host:port", endpoints[n]);
			return -EINVAL;
		}
		n++;
		p += len;
	}
	return n;
}

int fl_static_read(const char *path, char (*endpoints)[FL_ENDPOINT_MAX], int max, char *why)
{
	FILE *f = fopen(path, "r");
	char line[256];
	int n = 0;

	if (f == NULL) {
		snprintf(why, FL_WHY_MAX, "cannot read %.100s", path);
		return -ENOENT;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#');
		int got;

		if (hash != NULL)
			*hash = '\0';
		got = fl_static_parse(line, endpoints + n, max - n, why);
		if (got < 0) {
			fclose(f);
			return got;
		}
		n += got;
	}
	fclose(f);
	return n;
}
