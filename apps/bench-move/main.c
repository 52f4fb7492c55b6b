/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-move: moves between the GPUs of one server (docs/MULTIGPU.md).
 *
 *   bench-move [--gpu SPEC] [--sizes LIST] [--iters N] [--ring SLOTSxSIZE] [--json]
 *
 * For every ordered pair of the devices SPEC names (default: every GPU, or
 * GPU 0 twice, cuda:0 and its alias cuda:0.1, on a machine of one), and
 * every size, in one run, path after path on the same buffers:
 *   staged      djg_ops_move through a pinned ring on the destination's
 *               NUMA node (the path of GPUs without peer access)
 *   peer        cudaMemcpyPeerAsync: the baseline between two GPUs (and
 *               on one GPU, which CUDA allows)
 *   d2d         cudaMemcpyAsync device to device: the baseline on one GPU
 *   to_device   the runtime's move as a client gets it (output allocated,
 *               path chosen: d2d / peer / staged), and the same with
 *               --gpu-move staged
 * Every path is checked byte for byte once before it is timed (the
 * destination cleared first); a mismatch exits 1. GB/s median [min, max]
 * over --iters; a table and one JSON line. Exit 77 without a GPU.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "gpu/ops/gpu_ops.h"
#include "runtime/runtime.h"
#include "runtime/topo.h"

#define MAX_SIZES 8
#define MAX_ITERS 200
#define N_PATHS 5

enum path { P_STAGED, P_PEER, P_D2D, P_RT_AUTO, P_RT_STAGED };
static const char *const path_names[N_PATHS] = {"staged", "peer", "d2d", "to_device",
						 "to_device(staged)"};

struct opts {
	const char *gpu;
	uint64_t sizes[MAX_SIZES];
	int n_sizes;
	int iters;
	unsigned int slots;
	uint64_t slot_bytes;
	int json_only;
};

struct result {
	int a, b;
	uint64_t bytes;
	int path;
	int ran;          /* 0: not applicable to this pair */
	double median, min, max; /* GB/s */
};

/* Both ends of a move for the raw paths: a context and a buffer on each. */
struct pair {
	struct djg_ops *ctx[2];
	void *buf[2];
	struct djg_stage_ring ring;
	size_t ring_bytes;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	printf("Usage: bench-move [--gpu SPEC] [--sizes 1M,64M,256M] [--iters 10]\n"
	       "                  [--ring 4x4M] [--json]\n"
	       "Moves between every ordered pair of the GPUs SPEC names (default: all, or\n"
	       "0,0 on a machine of one GPU): staged through pinned host memory, peer\n"
	       "(cudaMemcpyPeerAsync), d2d (one GPU), and the runtime's to_device.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"gpu", required_argument, NULL, 'g'}, {"sizes", required_argument, NULL, 's'},
		{"iters", required_argument, NULL, 'i'}, {"ring", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *x;

		switch (c) {
		case 'g': o->gpu = optarg; break;
		case 's':
			if (djc_opt_size_list("--sizes", optarg, 4, UINT64_C(1) << 36, o->sizes,
					      MAX_SIZES, &o->n_sizes) != 0)
				return 2;
			break;
		case 'i':
			if (djc_opt_int("--iters", optarg, 1, MAX_ITERS, &o->iters) != 0)
				return 2;
			break;
		case 'r':
			o->slots = (unsigned int)strtoul(optarg, &x, 10);
			if (*x != 'x' || o->slots < 2 || o->slots > DJG_STAGE_MAX_SLOTS ||
			    djc_parse_size(x + 1, 4096, UINT64_C(1) << 30, &o->slot_bytes) != 0) {
				fprintf(stderr, "bench-move: --ring: '%s' is not SLOTSxSIZE (2..%d "
					"slots of 4K..1G)\n", optarg, DJG_STAGE_MAX_SLOTS);
				return 2;
			}
			break;
		case 'j': o->json_only = 1; break;
		case 'h': usage(); exit(0);
		default: usage(); return 2;
		}
	}
	return optind == argc ? 0 : 2;
}

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static void pair_free(struct pair *p)
{
	for (int k = 0; k < 2; k++) {
		if (p->ctx[k] != NULL && p->buf[k] != NULL) {
			djg_ops_free(p->ctx[k], p->buf[k]);
			djg_ops_sync(p->ctx[k]);
		}
		djg_ops_destroy(p->ctx[k]);
	}
	if (p->ring.host != NULL) {
		djg_ops_host_unregister(p->ring.host);
		tp_free(p->ring.host, p->ring_bytes);
	}
	memset(p, 0, sizeof(*p));
}

/* Contexts, buffers of `bytes` on both devices (the source filled with
 * want), a ring on the destination's node. */
static int pair_make(const struct opts *o, const struct rt_device_info *a,
		     const struct rt_device_info *b, uint64_t bytes, const uint8_t *want,
		     struct pair *p)
{
	int rc;

	memset(p, 0, sizeof(*p));
	rc = djg_ops_create(a->ordinal, &p->ctx[0]);
	if (rc == 0)
		rc = djg_ops_create(b->ordinal, &p->ctx[1]);
	for (int k = 0; rc == 0 && k < 2; k++)
		rc = djg_ops_alloc(p->ctx[k], bytes, &p->buf[k]);
	if (rc == 0)
		rc = djg_ops_copy_in(p->ctx[0], p->buf[0], want, bytes);
	/* Peer copies between two GPUs read and write pool memory: open each
	 * side's pool to the other (-ENOTSUP: no peer access, staged only). */
	for (int k = 0; rc == 0 && k < 2; k++) {
		int r = djg_ops_pool_share(p->ctx[k], (k == 0 ? b : a)->ordinal);

		rc = r == -ENOTSUP ? 0 : r;
	}
	p->ring_bytes = (size_t)o->slots * o->slot_bytes;
	p->ring = (struct djg_stage_ring){.host = tp_alloc_onnode(p->ring_bytes, b->numa_node),
					  .slot_bytes = o->slot_bytes, .slots = o->slots};
	if (rc == 0 && p->ring.host == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = djg_ops_host_register(p->ring.host, p->ring_bytes);
	if (rc != 0) {
		fprintf(stderr, "bench-move: %s -> %s, %llu B: %s\n", a->name, b->name,
			(unsigned long long)bytes, dj_strerror(rc));
		pair_free(p);
	}
	return rc;
}

/* A raw path once; -ENOTSUP where it does not apply to the pair. */
static int raw_once(struct pair *p, int path, uint64_t bytes)
{
	enum djg_move_path m = path == P_STAGED ? DJG_MOVE_STAGED :
			       path == P_PEER ? DJG_MOVE_PEER : DJG_MOVE_D2D;

	return djg_ops_move(p->ctx[0], p->ctx[1], p->buf[1], p->buf[0], bytes, m, &p->ring, NULL);
}

static int raw_check(struct pair *p, int path, uint64_t bytes, const uint8_t *want, uint8_t *got)
{
	int rc = djg_ops_zero(p->ctx[1], p->buf[1], bytes);

	if (rc == 0)
		rc = djg_ops_sync(p->ctx[1]);
	if (rc == 0)
		rc = raw_once(p, path, bytes);
	if (rc == 0)
		rc = djg_ops_copy_out(p->ctx[1], got, p->buf[1], bytes);
	if (rc == 0 && memcmp(got, want, bytes) != 0)
		rc = -EBADMSG;
	return rc;
}

/* The runtime's to_device from a to b: one move, its output freed. */
static int rt_once(struct rt_runtime *rt, void *s, uint64_t h, const char *to, uint64_t *out)
{
	const struct ctl_backend *be = rt_backend();
	char attrs[64], err[CTL_ERRMSG_MAX];
	struct dj_tensor_desc d[DJ_MAX_OP_ARGS];
	cJSON *a;
	int n, rc;

	snprintf(attrs, sizeof(attrs), "{\"device\": \"%.15s\"}", to);
	a = cJSON_Parse(attrs);
	rc = be->execute(rt, s, "to_device", &h, 1, a, out, d, &n, err);
	cJSON_Delete(a);
	if (rc != 0)
		fprintf(stderr, "bench-move: to_device %s: %s\n", to, err);
	return rc;
}

static int rt_put(struct rt_runtime *rt, void *s, const char *dev, const uint8_t *bytes,
		  uint64_t n, uint64_t *h)
{
	const struct ctl_backend *be = rt_backend();
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_INT32, .ndim = 1, .shape = {(int64_t)(n / 4)}};
	struct ctl_tensor_io io;
	char err[CTL_ERRMSG_MAX];
	int rc = be->alloc_on(rt, s, &d, dev, h, err);

	if (rc == 0)
		rc = be->write_begin(rt, s, *h, &io, err);
	if (rc == 0) {
		rc = be->write_chunk(rt, s, &io, 0, bytes, n, err);
		be->write_end(rt, s, &io, rc);
	}
	return rc;
}

static int rt_read(struct rt_runtime *rt, void *s, uint64_t h, uint8_t *got, uint64_t n)
{
	const struct ctl_backend *be = rt_backend();
	struct ctl_tensor_io io;
	char err[CTL_ERRMSG_MAX];
	int rc = be->read_begin(rt, s, h, &io, err);

	if (rc == 0) {
		rc = be->read_chunk(rt, s, &io, 0, got, n, err);
		be->read_end(rt, s, &io);
	}
	return rc;
}

static void spread(struct result *r, double *gbps, int n)
{
	qsort(gbps, (size_t)n, sizeof(*gbps), cmp_double);
	r->median = n % 2 ? gbps[n / 2] : (gbps[n / 2 - 1] + gbps[n / 2]) / 2;
	r->min = gbps[0];
	r->max = gbps[n - 1];
	r->ran = 1;
}

/* Time `iters` moves of one path (the first checked); 1: mismatch. */
static int measure(const struct opts *o, struct pair *p, struct rt_runtime *rts[2], void *sess[2],
		   const struct rt_device_info *a, const struct rt_device_info *b, int path,
		   uint64_t bytes, const uint8_t *want, uint8_t *got, struct result *r)
{
	double gbps[MAX_ITERS];
	uint64_t h = 0, out;
	int rt_path = path >= P_RT_AUTO, rc;
	struct rt_runtime *rt = rt_path ? rts[path - P_RT_AUTO] : NULL;
	void *s = rt_path ? sess[path - P_RT_AUTO] : NULL;
	char err[CTL_ERRMSG_MAX];

	if (rt_path) {
		rc = rt_put(rt, s, a->name, want, bytes, &h);
		if (rc == 0)
			rc = rt_once(rt, s, h, b->name, &out);
		if (rc == 0 && (rc = rt_read(rt, s, out, got, bytes)) == 0 &&
		    memcmp(got, want, bytes) != 0)
			rc = -EBADMSG;
		if (rc == 0)
			rt_backend()->free(rt, s, out, err);
	} else {
		rc = raw_check(p, path, bytes, want, got);
	}
	if (rc == -ENOTSUP)
		return 0;
	if (rc != 0) {
		fprintf(stderr, "bench-move: %s: %s\n", path_names[path],
			rc == -EBADMSG ? "BYTES DIFFER" : dj_strerror(rc));
		return 1;
	}
	for (int i = 0; i < o->iters; i++) {
		uint64_t t0 = djc_time_ns();

		rc = rt_path ? rt_once(rt, s, h, b->name, &out) : raw_once(p, path, bytes);
		gbps[i] = (double)bytes / (double)(djc_time_ns() - t0);
		if (rc != 0)
			return 1;
		if (rt_path)
			rt_backend()->free(rt, s, out, err);
	}
	if (rt_path)
		rt_backend()->free(rt, s, h, err);
	spread(r, gbps, o->iters);
	return 0;
}

static void print_table(const struct result *res, int n, const struct rt_device_info *devs)
{
	printf("%-10s %-10s %10s  %-18s %28s\n", "from", "to", "bytes", "path",
	       "GB/s median [min, max]");
	for (int i = 0; i < n; i++) {
		const struct result *r = &res[i];

		if (!r->ran)
			continue;
		printf("%-10s %-10s %10llu  %-18s %10.2f [%6.2f, %6.2f]\n", devs[r->a].name,
		       devs[r->b].name, (unsigned long long)r->bytes, path_names[r->path],
		       r->median, r->min, r->max);
	}
}

static void print_json(const struct result *res, int n, const struct rt_device_info *devs,
		       const struct opts *o, const char *what)
{
	printf("{\"bench\":\"move\",\"runtime\":\"%s\",\"iters\":%d,\"ring\":\"%ux%llu\","
	       "\"results\":[", what, o->iters, o->slots, (unsigned long long)o->slot_bytes);
	for (int i = 0, first = 1; i < n; i++) {
		const struct result *r = &res[i];

		if (!r->ran)
			continue;
		printf("%s{\"from\":\"%s\",\"to\":\"%s\",\"bytes\":%llu,\"path\":\"%s\","
		       "\"gbps\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}}", first ? "" : ",",
		       devs[r->a].name, devs[r->b].name, (unsigned long long)r->bytes,
		       path_names[r->path], r->median, r->min, r->max);
		first = 0;
	}
	printf("]}\n");
}

int main(int argc, char **argv)
{
	struct opts o = {.iters = 10, .slots = 4, .slot_bytes = 4u << 20, .n_sizes = 3,
			 .sizes = {1u << 20, 64u << 20, 256u << 20}};
	struct rt_device_info devs[RT_MAX_DEVICES];
	struct rt_runtime *rts[2] = {NULL, NULL};
	void *sess[2] = {NULL, NULL};
	struct result *res;
	char err[CTL_ERRMSG_MAX];
	int n_dev, n_res = 0, bad = 0, rc;

	if (parse(argc, argv, &o) != 0)
		return 2;
	if (djg_ops_device_count() == 0) {
		printf("bench-move: no CUDA device (or built without CUDA): nothing to measure\n");
		return 77;
	}
	if (o.gpu == NULL)
		o.gpu = djg_ops_device_count() >= 2 ? "all" : "0,0";
	for (int m = 0; m < 2; m++) {
		struct rt_config cfg = {.gpu = o.gpu, .n_contexts = 2,
					.move_mode = m == 0 ? RT_MOVE_AUTO : RT_MOVE_STAGED,
					.stage_slot_bytes = o.slot_bytes, .stage_slots = o.slots};

		rc = rt_create(&cfg, &rts[m]);
		if (rc == 0)
			rc = rt_backend()->session_open(rts[m], 1, &sess[m], err);
		if (rc != 0) {
			fprintf(stderr, "bench-move: runtime on --gpu %s: %s\n", o.gpu, dj_strerror(rc));
			return 1;
		}
	}
	n_dev = rt_devices(rts[0], devs, RT_MAX_DEVICES);
	if (n_dev < 2) {
		fprintf(stderr, "bench-move: --gpu %s names one device: nothing to move between\n",
			o.gpu);
		return 2;
	}
	res = calloc((size_t)(n_dev * n_dev * o.n_sizes * N_PATHS), sizeof(*res));
	if (!o.json_only)
		printf("bench-move: %s; ring %u x %llu B on the destination's node; %d iterations\n",
		       rt_description(rts[0]), o.slots, (unsigned long long)o.slot_bytes, o.iters);
	for (int k = 0; k < o.n_sizes && res != NULL; k++) {
		uint64_t bytes = o.sizes[k] & ~UINT64_C(3);
		uint8_t *want = malloc(bytes), *got = malloc(bytes);

		if (want == NULL || got == NULL) {
			fprintf(stderr, "bench-move: %llu B: out of memory\n", (unsigned long long)bytes);
			return 1;
		}
		pattern(want, bytes, (uint32_t)k + 1);
		for (int a = 0; a < n_dev; a++)
			for (int b = 0; b < n_dev; b++) {
				struct pair p;

				if (a == b || pair_make(&o, &devs[a], &devs[b], bytes, want, &p) != 0)
					continue;
				for (int path = 0; path < N_PATHS; path++) {
					struct result *r = &res[n_res++];

					*r = (struct result){.a = a, .b = b, .bytes = bytes, .path = path};
					bad |= measure(&o, &p, rts, sess, &devs[a], &devs[b], path, bytes,
						       want, got, r);
				}
				pair_free(&p);
			}
		free(want);
		free(got);
	}
	if (!o.json_only)
		print_table(res, n_res, devs);
	print_json(res, n_res, devs, &o, rt_description(rts[0]));
	for (int m = 0; m < 2; m++) {
		rt_backend()->session_close(rts[m], sess[m]);
		rt_destroy(rts[m]);
	}
	free(res);
	if (bad)
		printf("bench-move: BYTES DIFFER or a move failed (above)\n");
	return bad ? 1 : 0;
}
