/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn fleet: the fleet as a client sees it, and moves between members.
 *
 *   djinn fleet [SOURCE] [--json]                     members, load, capabilities
 *   djinn fleet move SOURCE --from M --to M [--copy] (FILE.npy | --size BYTES)
 *
 * SOURCE: --fleet HOST:PORT,... | --fleet-file PATH | --fleet-etcd URL
 * [--fleet-prefix P]. A handle belongs to the session that made it, and this
 * tool's sessions are its own: a move uploads the tensor (a .npy file, or
 * --size bytes of a seeded pattern) to --from, moves it server to server,
 * reads it back from --to and compares it byte for byte. Programs move their
 * own handles with dj_fleet_move() (include/djinn/fleet.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/fleet.h"
#include "djinn/npy.h"
#include "common/djc.h"
#include "fleet_cmd.h"

struct fleet_args {
	struct dj_fleet_options o;
	const char *from, *to, *file;
	uint64_t size;
	int json, copy;
};

static void fleet_usage(void)
{
	printf("Usage: djinn fleet SOURCE [--json] [--token-file PATH]\n"
	       "       djinn fleet move SOURCE --from MEMBER --to MEMBER [--copy]\n"
	       "                        (FILE.npy | --size BYTES)\n"
	       "\n"
	       "SOURCE: --fleet HOST:PORT,... | --fleet-file PATH |\n"
	       "        --fleet-etcd URL [--fleet-prefix P] (default /djinn/fleet/)\n"
	       "MEMBER: an id, a HOST:PORT endpoint, or #INDEX as listed.\n"
	       "A move uploads the tensor to --from, moves it server to server to --to\n"
	       "(the bytes do not pass through this tool), reads it back and compares.\n");
}

enum { OPT_FLEET = 256, OPT_FLEET_FILE, OPT_FLEET_ETCD, OPT_FLEET_PREFIX, OPT_FROM, OPT_TO,
       OPT_COPY, OPT_SIZE, OPT_JSON, OPT_TOKEN_FILE };

static int fleet_parse(int argc, char **argv, struct fleet_args *a)
{
	static const struct option longopts[] = {
		{"fleet", required_argument, NULL, OPT_FLEET},
		{"fleet-file", required_argument, NULL, OPT_FLEET_FILE},
		{"fleet-etcd", required_argument, NULL, OPT_FLEET_ETCD},
		{"fleet-prefix", required_argument, NULL, OPT_FLEET_PREFIX},
		{"from", required_argument, NULL, OPT_FROM},
		{"to", required_argument, NULL, OPT_TO},
		{"copy", no_argument, NULL, OPT_COPY},
		{"size", required_argument, NULL, OPT_SIZE},
		{"json", no_argument, NULL, OPT_JSON},
		{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_FLEET: a->o.members = optarg; break;
		case OPT_FLEET_FILE: a->o.members_file = optarg; break;
		case OPT_FLEET_ETCD: a->o.etcd = optarg; break;
		case OPT_FLEET_PREFIX: a->o.prefix = optarg; break;
		case OPT_FROM: a->from = optarg; break;
		case OPT_TO: a->to = optarg; break;
		case OPT_COPY: a->copy = 1; break;
		case OPT_JSON: a->json = 1; break;
		case OPT_TOKEN_FILE: a->o.client.token_file = optarg; break;
		case OPT_SIZE:
			errno = 0;
			a->size = strtoull(optarg, &end, 0);
			if (errno != 0 || *end != '\0' || a->size < 2 || a->size % 2 != 0) {
				fprintf(stderr, "djinn fleet: --size takes an even byte count >= 2\n");
				return -EINVAL;
			}
			break;
		default:
			return -EINVAL;
		}
	}
	return optind;
}

static const char *gib(uint64_t bytes, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f", (double)bytes / (1024.0 * 1024 * 1024));
	return buf;
}

static void print_member(const struct dj_fleet_member *m)
{
	char line[256] = "", a[16], b[16];
	size_t off = 0;

	for (int d = 0; d < m->n_devices && off < sizeof(line); d++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s %s/%s GiB free",
					d > 0 ? ", " : "", m->devices[d].name,
					gib(m->devices[d].mem_free, a, sizeof(a)),
					gib(m->devices[d].mem_total, b, sizeof(b)));
	printf("#%-3u %-22s %-22s %-4s %-15s %-38s %8.1f %6" PRIu64 " %5" PRIu64 " %8.1f %6s\n",
	       m->index, m->id, m->endpoint,
	       m->up ? "up" : m->age_ms == UINT64_MAX ? "DOWN" : "LEFT", /* DOWN: never answered */
	       m->dpdk ? m->dp_ipv4 : "tcp only", line, (double)m->store_bytes / 1048576.0,
	       m->queued, m->jobs, m->ops_per_s,
	       m->age_ms == UINT64_MAX ? "-" : (snprintf(a, sizeof(a), "%.1fs",
							   (double)m->age_ms / 1e3), a));
}

/* The view as JSON, through cJSON: ids and errors are escaped. */
static void print_json(const struct dj_fleet_view *v, const struct dj_fleet_member *m, int n)
{
	cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "members");
	char inc[24], *text;

	cJSON_AddStringToObject(o, "source", v->source == DJ_FLEET_SOURCE_ETCD ? "etcd" : "static");
	cJSON_AddBoolToObject(o, "stale", v->stale);
	cJSON_AddNumberToObject(o, "age_ms", v->age_ms == UINT64_MAX ? -1.0 : (double)v->age_ms);
	cJSON_AddNumberToObject(o, "n_up", v->n_members);
	cJSON_AddStringToObject(o, "error", v->stale ? v->error : "");
	for (int i = 0; i < n; i++) {
		cJSON *e = cJSON_CreateObject(), *devs = cJSON_AddArrayToObject(e, "devices");

		snprintf(inc, sizeof(inc), "0x%016" PRIx64, m[i].incarnation);
		cJSON_AddNumberToObject(e, "index", m[i].index);
		cJSON_AddStringToObject(e, "id", m[i].id);
		cJSON_AddStringToObject(e, "endpoint", m[i].endpoint);
		cJSON_AddStringToObject(e, "incarnation", inc);
		cJSON_AddBoolToObject(e, "up", m[i].up);
		cJSON_AddBoolToObject(e, "dpdk", m[i].dpdk);
		cJSON_AddStringToObject(e, "dp_ipv4", m[i].dp_ipv4);
		cJSON_AddNumberToObject(e, "store_bytes", (double)m[i].store_bytes);
		cJSON_AddNumberToObject(e, "queued", (double)m[i].queued);
		cJSON_AddNumberToObject(e, "jobs", (double)m[i].jobs);
		cJSON_AddNumberToObject(e, "ops_per_s", m[i].ops_per_s);
		cJSON_AddNumberToObject(e, "age_ms", m[i].age_ms == UINT64_MAX ? -1.0 :
							(double)m[i].age_ms);
		for (int d = 0; d < m[i].n_devices; d++) {
			cJSON *dev = cJSON_CreateObject();

			cJSON_AddStringToObject(dev, "name", m[i].devices[d].name);
			cJSON_AddBoolToObject(dev, "gpu", m[i].devices[d].gpu);
			cJSON_AddNumberToObject(dev, "mem_total", (double)m[i].devices[d].mem_total);
			cJSON_AddNumberToObject(dev, "mem_free", (double)m[i].devices[d].mem_free);
			cJSON_AddItemToArray(devs, dev);
		}
		cJSON_AddItemToArray(list, e);
	}
	text = cJSON_PrintUnformatted(o);
	printf("%s\n", text != NULL ? text : "{}");
	free(text);
	cJSON_Delete(o);
}

static int cmd_members(struct dj_fleet *fleet, const struct fleet_args *a)
{
	struct dj_fleet_member m[64];
	struct dj_fleet_view v;
	int n = dj_fleet_view(fleet, &v, m, 64);

	if (a->json) {
		print_json(&v, m, n);
		return v.n_members > 0 ? 0 : 1;
	}
	if (v.stale)
		printf("membership: %s, STALE: the last view, %.1f s old (%s)\n",
		       v.source == DJ_FLEET_SOURCE_ETCD ? "etcd" : "static",
		       v.age_ms == UINT64_MAX ? -1.0 : (double)v.age_ms / 1e3, v.error);
	else
		printf("membership: %s, %d up\n", v.source == DJ_FLEET_SOURCE_ETCD ? "etcd" :
		       "static (STATS of each member)", v.n_members);
	printf("%-4s %-22s %-22s %-4s %-15s %-38s %8s %6s %5s %8s %6s\n", "#", "id", "endpoint",
	       "", "data plane", "memory", "MiB held", "queued", "jobs", "ops/s", "age");
	for (int i = 0; i < n; i++)
		print_member(&m[i]);
	/* The members are listed, down: still a failure to the operator. */
	if (v.n_members == 0 && dj_fleet_wait(fleet, 1, 0) != 0) {
		fprintf(stderr, "djinn fleet: %s\n", dj_fleet_last_error());
		return 1;
	}
	return 0;
}

/* The tensor to move: a .npy file, or size bytes of a seeded pattern. */
static int move_tensor(const struct fleet_args *a, struct dj_tensor *t)
{
	if (a->file != NULL) {
		char err[256] = "";
		int rc = dj_npy_load(a->file, DJ_NPY_U2_AS_BF16 | DJ_NPY_F64_TO_F32, t, err,
				     sizeof(err));

		if (rc != 0)
			fprintf(stderr, "djinn fleet: %s: %s\n", a->file, err[0] ? err : dj_strerror(rc));
		return rc;
	}
	t->desc = (struct dj_tensor_desc){.dtype = DJ_DTYPE_FLOAT16, .ndim = 1,
					  .shape = {(int64_t)(a->size / 2)}};
	t->mem = DJ_MEM_HOST;
	t->data = malloc(a->size);
	if (t->data == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < a->size; i++)
		((uint8_t *)t->data)[i] = (uint8_t)(i * 131 + (i >> 12));
	return 0;
}

static int cmd_move(struct dj_fleet *fleet, const struct fleet_args *a)
{
	struct dj_fleet_handle h, moved;
	struct dj_fleet_move_info info;
	struct dj_tensor t = {0}, back = {0};
	uint32_t from, to;
	int rc;

	if (a->from == NULL || a->to == NULL || (a->file == NULL) == (a->size == 0)) {
		fleet_usage();
		return 2;
	}
	if ((rc = dj_fleet_member_find(fleet, a->from, &from)) != 0 ||
	    (rc = dj_fleet_member_find(fleet, a->to, &to)) != 0) {
		fprintf(stderr, "djinn fleet: %s\n", dj_fleet_last_error());
		return 1;
	}
	if (move_tensor(a, &t) != 0)
		return 1;
	back.desc = t.desc;
	back.data = malloc(dj_tensor_nbytes(&t.desc) + 1);
	rc = back.data == NULL ? -ENOMEM : dj_fleet_put(fleet, from, &t, &h);
	if (rc == 0)
		rc = dj_fleet_move(fleet, h, to, a->copy ? DJ_FLEET_COPY : 0, &moved, &info);
	if (rc == 0)
		rc = dj_fleet_get(fleet, moved, &back);
	if (rc != 0) {
		fprintf(stderr, "djinn fleet: %s\n", dj_fleet_last_error());
	} else if (memcmp(t.data, back.data, dj_tensor_nbytes(&t.desc)) != 0) {
		fprintf(stderr, "djinn fleet: the tensor read back from %s differs\n", a->to);
		rc = -EIO;
	} else {
		printf("%s %" PRIu64 " bytes %s -> %s over %s (%s): %.3f ms on the servers, "
		       "%.3f ms in all, %.2f Gbit/s; byte-exact\n", a->copy ? "copied" : "moved",
		       info.bytes, a->from, a->to, dj_path_name(info.path), info.path_reason,
		       (double)info.server_ns / 1e6, (double)info.total_ns / 1e6,
		       info.server_ns > 0 ? (double)info.bytes * 8 / (double)info.server_ns : 0.0);
	}
	dj_tensor_free_host(&t);
	free(back.data);
	return rc == 0 ? 0 : 1;
}

int djinn_fleet_main(int argc, char **argv)
{
	struct fleet_args a = {0};
	struct dj_fleet *fleet = NULL;
	int first, status, move;

	dj_log_set_level(DJ_LOG_WARN); /* the tool says what matters itself */
	dj_fleet_options_init(&a.o);
	first = fleet_parse(argc, argv, &a);
	if (first < 0) {
		fleet_usage();
		return 2;
	}
	move = first < argc && strcmp(argv[first], "move") == 0;
	if (move && first + 1 < argc)
		a.file = argv[first + 1];
	if ((!move && first < argc) || (move && first + 2 < argc)) {
		fleet_usage();
		return 2;
	}
	if (dj_fleet_create(&a.o, &fleet) != 0) {
		fprintf(stderr, "djinn fleet: %s\n", dj_fleet_last_error());
		return 1;
	}
	status = move ? cmd_move(fleet, &a) : cmd_members(fleet, &a);
	dj_fleet_destroy(fleet);
	return status;
}
