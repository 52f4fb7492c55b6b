/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-gpu-send: a GPU tensor sent by the data plane, chunked staging
 * against the whole copy it replaces.
 *
 *   bench-gpu-send [EAL args] -- [options]
 *
 * Two engines of this process joined by a net_ring pair; one sends a
 * tensor from GPU memory (host memory with --host or without a GPU), the
 * other receives it into host memory, which is compared byte for byte.
 * Per mode and repetition: the time from dp_engine_send() to the first
 * fragment at the receiver (a watcher thread polls the receiving lcore's
 * counters) and to the send's return (every byte acknowledged).
 *
 *   staged  chunks copied into a ring of pinned host slots while earlier
 *           chunks are on the wire (the placer's stage_* members)
 *   whole   one copy of the whole tensor into malloc'd memory first (the
 *           placer's copy_out only; the engine's fallback)
 *
 * Prints a table, then one JSON object (also to --json FILE). Exit status:
 * 0 every transfer byte-exact, 1 a transfer failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "bench_gpu.h"

#define COOKIE 0x62656e6368000001ull
#define IP_RX 0x0a650001u
#define IP_TX 0x0a650002u
#define FRAME 9014
#define TIMEOUT_MS 120000
#define MAX_REPS 16
#define RING_SLOTS 4096

enum mode { MODE_STAGED, MODE_WHOLE, MODE_COUNT };

static const char *const mode_names[MODE_COUNT] = {"staged", "whole"};

struct opts {
	const char *gpu;
	int force_host;
	size_t size;
	int reps;
	int modes;            /* bit per enum mode */
	uint32_t slots, chunk;
	const char *json;
};

struct run {
	double first_ms, total_ms;
	int ok;
};

struct result {
	enum mode mode;
	struct run best;       /* smallest total of the repetitions */
	uint64_t stage_bytes;  /* host staging the send used */
	int ok;                /* every repetition byte-exact */
};

struct bench {
	const struct opts *o;
	int16_t dev;
	char device[160];
	struct djg_pool *pool;
	void *src;             /* the tensor, device memory */
	uint8_t *want, *got;
	struct djg_dp_placer *placer;
	struct dp_engine_placer ops[MODE_COUNT];
	uint32_t next_id;
};

/* Watches the receiving lcore for the first packet of a send. */
struct watch {
	struct dp_engine *rx;
	uint64_t before;
	atomic_int go, stop;
	uint64_t t_first;     /* djc_time_ns() of the first packet, 0: none */
};

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- [options]\n"
	       "  --gpu SPEC     GPU index or PCI address (default: the first)\n"
	       "  --host         host memory as the \"GPU\" (no GPU needed)\n"
	       "  --size BYTES   tensor size, K/M/G suffixes (default 256M)\n"
	       "  --reps N       repetitions per mode, the fastest is kept (default 3)\n"
	       "  --mode M       staged, whole or both (default both)\n"
	       "  --slots N      staging slots (default: the engine's, window + 2)\n"
	       "  --chunk BYTES  staging chunk before rounding to fragments (default 1M)\n"
	       "  --json FILE    also write the JSON result there\n", prog);
}

static int parse_option(int c, const char *arg, void *opts)
{
	struct opts *o = opts;
	static const char *const modes[] = {"staged", "whole", "both"};
	uint64_t v = 0;
	int i, rc;

	switch (c) {
	case 'g': o->gpu = arg; return 0;
	case 'H': o->force_host = 1; return 0;
	case 's':
		rc = djc_opt_size("--size", arg, 1, SIZE_MAX, &v);
		o->size = rc == 0 ? (size_t)v : o->size;
		return rc;
	case 'r': return djc_opt_int("--reps", arg, 1, MAX_REPS, &o->reps);
	case 'm':
		rc = djc_opt_choice("--mode", arg, modes, 3, &i);
		o->modes = rc == 0 ? i + 1 : o->modes;
		return rc;
	case 'S': return djc_opt_u32("--slots", arg, 1, DP_STAGE_MAX_SLOTS, &o->slots);
	case 'c':
		rc = djc_opt_size("--chunk", arg, 1, UINT32_MAX, &v);
		o->chunk = rc == 0 ? (uint32_t)v : o->chunk;
		return rc;
	case 'j': o->json = arg; return 0;
	default: return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, void *o)
{
	static const struct option longopts[] = {
		{"gpu", required_argument, NULL, 'g'}, {"host", no_argument, NULL, 'H'},
		{"size", required_argument, NULL, 's'}, {"reps", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'}, {"slots", required_argument, NULL, 'S'},
		{"chunk", required_argument, NULL, 'c'}, {"json", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};

	return djc_cli_getopt(argc, argv, "", longopts, parse_option, o, NULL);
}

/* Each repetition gets fresh engines, so fresh ports (ethdevs stay EAL's). */
static int ring_pair(uint16_t *a, uint16_t *b)
{
	static unsigned int seq;
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *ab, *ba;
	int pa, pb;

	snprintf(name, sizeof(name), "bgs_ab%u", seq);
	ab = rte_ring_create(name, RING_SLOTS, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "bgs_ba%u", seq);
	ba = rte_ring_create(name, RING_SLOTS, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (ab == NULL || ba == NULL)
		return -ENOMEM;
	snprintf(name, sizeof(name), "net_ring_bgs_a%u", seq);
	pa = rte_eth_from_rings(name, &ba, 1, &ab, 1, 0);
	snprintf(name, sizeof(name), "net_ring_bgs_b%u", seq++);
	pb = rte_eth_from_rings(name, &ab, 1, &ba, 1, 0);
	if (pa < 0 || pb < 0)
		return -ENODEV;
	*a = (uint16_t)pa;
	*b = (uint16_t)pb;
	return 0;
}

static int engine_create(const struct opts *o, uint16_t port, uint32_t ip,
			 const struct dp_engine_placer *placer, struct dp_engine **dp)
{
	struct dp_engine_config cfg = {0};

	cfg.port.port_id = port;
	cfg.port.frame_size = FRAME;
	cfg.local.ipv4 = ip;
	cfg.placer = placer;
	cfg.stage_slots = o->slots;
	cfg.stage_chunk = o->chunk;
	return dp_engine_create(&cfg, dp);
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;

	while (!atomic_load(&w->stop)) {
		struct dp_engine_stats st;

		if (!atomic_load(&w->go))
			continue;
		dp_engine_lcore_stats(w->rx, 0, &st);
		if (w->t_first == 0 && st.rx_packets != w->before)
			w->t_first = djc_time_ns();
	}
	return NULL;
}

/* One send of the tensor in mode m over a fresh engine pair. */
static int run_once(struct bench *b, enum mode m, struct run *r, uint64_t *stage_bytes)
{
	struct dp_engine *rx = NULL, *tx = NULL;
	struct dp_engine_stage_stats sst;
	struct dp_endpoint erx, etx;
	struct dp_engine_stats st;
	struct watch w = {0};
	pthread_t thread;
	uint32_t id = b->next_id++;
	uint16_t pa, pb;
	uint64_t t0, t1;
	int rc;

	rc = ring_pair(&pa, &pb);
	if (rc == 0)
		rc = engine_create(b->o, pa, IP_RX, NULL, &rx);
	if (rc == 0)
		rc = engine_create(b->o, pb, IP_TX, &b->ops[m], &tx);
	if (rc != 0)
		goto out;
	dp_engine_endpoint(rx, &erx);
	dp_engine_endpoint(tx, &etx);
	rc = dp_engine_session_open(rx, 1, COOKIE, &etx);
	if (rc == 0)
		rc = dp_engine_session_open(tx, 1, COOKIE, &erx);
	if (rc == 0)
		rc = dp_engine_expect(rx, COOKIE, id, b->got, b->o->size, DJ_MEM_HOST);
	if (rc != 0)
		goto out;
	memset(b->got, 0, b->o->size);
	dp_engine_lcore_stats(rx, 0, &st);
	w.rx = rx;
	w.before = st.rx_packets;
	pthread_create(&thread, NULL, watch_main, &w);
	t0 = djc_time_ns();
	atomic_store(&w.go, 1);
	rc = dp_engine_send(tx, COOKIE, id, b->src, b->o->size, DJ_MEM_GPU, TIMEOUT_MS);
	t1 = djc_time_ns();
	atomic_store(&w.stop, 1);
	pthread_join(thread, NULL);
	if (rc == 0)
		rc = dp_engine_wait(rx, COOKIE, id, TIMEOUT_MS);
	r->ok = rc == 0 && memcmp(b->got, b->want, b->o->size) == 0;
	r->total_ms = (double)(t1 - t0) / 1e6;
	r->first_ms = w.t_first ? (double)(w.t_first - t0) / 1e6 : -1;
	dp_engine_stage_stats(tx, &sst);
	*stage_bytes = m == MODE_STAGED ? sst.max_stage_bytes : b->o->size;
out:
	if (rc != 0)
		fprintf(stderr, "bench-gpu-send: %s: %s\n", mode_names[m], dj_strerror(rc));
	dp_engine_destroy(tx);
	dp_engine_destroy(rx);
	return rc;
}

static void run_mode(struct bench *b, enum mode m, struct result *res)
{
	memset(res, 0, sizeof(*res));
	res->mode = m;
	res->ok = 1;
	res->best.total_ms = -1;
	for (int i = 0; i < b->o->reps; i++) {
		struct run r = {0};

		if (run_once(b, m, &r, &res->stage_bytes) != 0)
			r.ok = 0;
		res->ok &= r.ok;
		if (r.ok && (res->best.total_ms < 0 || r.total_ms < res->best.total_ms))
			res->best = r;
	}
}

static void print_json(FILE *f, const struct bench *b, const struct result *res, int n)
{
	fprintf(f, "{\"bench\": \"gpu-send\", \"device\": \"%s\", \"bytes\": %zu, \"reps\": %d, "
		"\"results\": [", b->device, b->o->size, b->o->reps);
	for (int i = 0; i < n; i++) {
		const struct result *r = &res[i];

		fprintf(f, "%s\n  {\"mode\": \"%s\", \"first_fragment_ms\": %.3f, \"total_ms\": %.3f, "
			"\"gbytes_per_s\": %.3f, \"host_staging_bytes\": %" PRIu64 ", \"ok\": %s}",
			i ? "," : "", mode_names[r->mode], r->best.first_ms, r->best.total_ms,
			r->best.total_ms > 0 ? (double)b->o->size / r->best.total_ms / 1e6 : 0,
			r->stage_bytes, r->ok ? "true" : "false");
	}
	fprintf(f, "\n]}\n");
}

static void report(const struct bench *b, const struct result *res, int n)
{
	printf("\n%-8s %14s %14s %12s %10s %16s %s\n", "mode", "bytes", "first frag ms",
	       "total ms", "GB/s", "host staging B", "check");
	for (int i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%-8s %14zu %14.3f %12.3f %10.2f %16" PRIu64 " %s\n", mode_names[r->mode],
		       b->o->size, r->best.first_ms, r->best.total_ms,
		       r->best.total_ms > 0 ? (double)b->o->size / r->best.total_ms / 1e6 : 0,
		       r->stage_bytes, r->ok ? "ok" : "FAIL");
	}
	print_json(stdout, b, res, n);
	if (b->o->json != NULL) {
		FILE *f = fopen(b->o->json, "w");

		if (f != NULL) {
			print_json(f, b, res, n);
			fclose(f);
		}
	}
}

static int16_t choose_device(const struct opts *o, char *name, size_t len)
{
	struct djg_info info;
	int dev = o->force_host ? -DJ_ENOGPU : djg_find(o->gpu);

	if (dev < 0) {
		snprintf(name, len, "host memory (%s)", o->force_host ? "--host" : dj_strerror(dev));
		return DJG_HOST;
	}
	snprintf(name, len, "GPU %d", dev);
	for (int i = 0; i < djg_count(); i++)
		if (djg_info_get(i, &info) == 0 && info.dev_id == dev)
			snprintf(name, len, "%s (%s)", info.name, info.pci_addr);
	return (int16_t)dev;
}

/* The tensor in device memory, its expected bytes, the receive buffer and
 * the placer whose callbacks each mode uses. */
static int bench_setup(struct bench *b)
{
	struct djg_dp_placer_conf pc = {.dev_id = b->dev, .mode = DJG_GATHER_LAUNCH,
					   .mover = DJG_MOVER_GATHER};
	size_t len = b->o->size;
	int rc;

	b->want = malloc(len);
	b->got = malloc(len);
	if (b->want == NULL || b->got == NULL)
		return -ENOMEM;
	fill_pattern(b->want, len, 1);
	rc = djg_pool_create(b->dev, len + DJG_PAGE_SIZE, &b->pool);
	if (rc == 0)
		rc = djg_pool_alloc(b->pool, len, &b->src);
	if (rc == 0)
		rc = djg_pool_copy_in(b->pool, b->src, b->want, len);
	if (rc == 0)
		rc = djg_dp_placer_create(&pc, &b->placer);
	if (rc != 0)
		return rc;
	b->ops[MODE_STAGED] = *djg_dp_placer_ops(b->placer);
	b->ops[MODE_WHOLE] = b->ops[MODE_STAGED];
	b->ops[MODE_WHOLE].stage_get = NULL; /* the engine falls back to copy_out */
	return 0;
}

static void bench_teardown(struct bench *b)
{
	djg_dp_placer_destroy(b->placer);
	if (b->pool != NULL && b->src != NULL)
		djg_pool_free(b->pool, b->src);
	djg_pool_destroy(b->pool);
	free(b->want);
	free(b->got);
}

int main(int argc, char **argv)
{
	struct opts o = {.size = 256u << 20, .reps = 3, .modes = 3};
	struct result res[MODE_COUNT];
	struct bench b = {.o = &o, .next_id = 1};
	const struct djc_cli_tool tool = {
		.name = "bench-gpu-send", .usage = usage, .start = dp_eal_cli_start,
		.stop = dp_eal_cli_stop, .start_what = "EAL", .parse = parse_options, .opts = &o,
	};
	int n = 0, failed = 0, rc;

	rc = djc_cli_begin(&tool, argc, argv);
	if (rc >= 0)
		return rc;
	b.dev = choose_device(&o, b.device, sizeof(b.device));
	printf("bench-gpu-send: %s, %zu bytes, %d reps, net_ring, %u-byte frames\n", b.device,
	       o.size, o.reps, FRAME);
	rc = bench_setup(&b);
	if (rc != 0) {
		fprintf(stderr, "bench-gpu-send: setup: %s\n", dj_strerror(rc));
		failed = 1;
	}
	for (int m = 0; rc == 0 && m < MODE_COUNT; m++) {
		if (!(o.modes & (1 << m)))
			continue;
		run_mode(&b, (enum mode)m, &res[n]);
		failed |= !res[n].ok;
		n++;
	}
	if (n != 0)
		report(&b, res, n);
	bench_teardown(&b);
	dp_eal_cleanup();
	return failed ? 1 : 0;
}
