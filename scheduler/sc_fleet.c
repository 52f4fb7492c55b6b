/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fleet's figures, measured from the client over one session per
 * server (djinn.h alone, so that a server needs nothing new):
 *
 *   round trip     the least of 5 PINGs;
 *   bandwidth      a 4 MiB PUT;
 *   elementwise    an EXECUTE batch of 9 adds against one of 1 (same
 *                  request, same round trip): the difference is 8 adds'
 *                  time on the server, whatever the network; GB/s of the
 *                  bytes they read and write;
 *   op overhead    33 adds of one element against 1: what one more
 *                  operation in a batch costs beyond its arithmetic;
 *   matmul         per float dtype, 3 square matmuls against 1, the side
 *                  doubled (from 128) while one takes under 0.5 ms;
 *   service time   a batch of one tiny add, its round trip taken off;
 *   memory, queue  STATS: the member record's devices and queue where the
 *                  server has one (fleets), else the session's limit.
 *
 * Each timing is the best of two, and the whole calibration runs three
 * rounds over all servers in turn, each figure the best round's (load on
 * this machine only slows a measurement down; taking turns spreads a burst
 * of it over every server). Links between servers are derived from
 * the client's (a tensor crosses through the client today: fetched from a,
 * put to b); the fleet adapter (sc_fleet_view.c) replaces them where the
 * servers move tensors themselves.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/djc.h"
#include "sc.h"

#define PUT_PROBE_BYTES (4u << 20)
#define BEST_OF 2
#define MATMUL_MAX_N 1024
#define MATMUL_MIN_S 0.5e-3
#define CALIB_ROUNDS 3

static double now_s(void)
{
	return (double)djc_time_ns() / 1e9;
}

/* A host tensor of zeros (the time of these operations does not depend on
 * the values; zeros have no denormals). */
static int zeros(enum dj_dtype dt, int ndim, int64_t a, int64_t b, struct dj_tensor *t)
{
	*t = (struct dj_tensor){.desc = {.dtype = dt, .ndim = ndim, .shape = {a, b}},
				.mem = DJ_MEM_HOST};
	t->data = calloc(1, dj_tensor_nbytes(&t->desc) + 1);
	return t->data != NULL ? 0 : -ENOMEM;
}

/* Best time of a batch of reps entries "op(h, h)" (n_in inputs), each
 * freeing its own output. */
static int batch_time(struct dj_conn *c, const char *op, uint64_t h, int n_in, int reps,
		      double *best)
{
	struct dj_batch_op ops[40];
	uint64_t out[40];
	int self[40];
	char txt[24];

	if (reps > 40)
		return -EINVAL;
	snprintf(txt, sizeof(txt), "0x%" PRIx64, h);
	memset(ops, 0, sizeof(ops));
	for (int k = 0; k < reps; k++) {
		ops[k].op = op;
		ops[k].n_in = n_in;
		for (int j = 0; j < n_in; j++)
			ops[k].inputs[j] = txt;
		self[k] = k;
		ops[k].free = &self[k];
		ops[k].n_free = 1;
	}
	*best = 1e9;
	for (int i = 0; i < BEST_OF; i++) {
		double t0 = now_s();
		int rc = dj_execute_batch(c, ops, reps, out);
		double t = now_s() - t0;

		if (rc != 0)
			return rc;
		*best = t < *best ? t : *best;
	}
	return 0;
}

/* Per-operation time: batches of many against one, the difference shared. */
static int per_op(struct dj_conn *c, const char *op, uint64_t h, int n_in, int many, double *t)
{
	double one, lots;
	int rc = batch_time(c, op, h, n_in, 1, &one);

	if (rc == 0)
		rc = batch_time(c, op, h, n_in, many, &lots);
	/* A loaded client can make the difference vanish: never below 0.1 us. */
	*t = rc == 0 && lots - one > 1e-7 * (many - 1) ? (lots - one) / (many - 1) : 1e-7;
	return rc;
}

static int link_probe(struct dj_conn *c, struct dj_sched_server *sv)
{
	struct dj_tensor t;
	double t0, dt;
	uint64_t h;
	int rc;

	sv->rtt_s = 1e9;
	for (int i = 0; i < 5; i++) {
		uint64_t ns = 0;

		rc = dj_ping(c, &ns);
		if (rc != 0)
			return rc;
		/* The least: what the link can do; a loaded client only adds. */
		sv->rtt_s = (double)ns / 1e9 < sv->rtt_s ? (double)ns / 1e9 : sv->rtt_s;
	}
	rc = zeros(DJ_DTYPE_FLOAT32, 1, PUT_PROBE_BYTES / 4, 0, &t);
	if (rc != 0)
		return rc;
	t0 = now_s();
	rc = dj_put(c, &t, &h);
	dt = now_s() - t0;
	free(t.data);
	if (rc != 0)
		return rc;
	dj_free(c, h);
	/* Its round trip stays in: small beside 4 MiB, and never a negative
	 * time where the PINGs were slower than the PUT. */
	sv->bw_Bps = PUT_PROBE_BYTES / dt;
	return 0;
}

static int compute_probe(const struct dj_sched_options *o, struct dj_conn *c,
			 struct dj_sched_server *sv)
{
	struct dj_tensor x = {0}, one = {0};
	uint64_t hx = 0, h1 = 0;
	double t;
	int rc = zeros(DJ_DTYPE_FLOAT32, 1, o->calib_elementwise_n, 0, &x);

	if (rc == 0)
		rc = zeros(DJ_DTYPE_FLOAT32, 1, 1, 0, &one);
	if (rc == 0)
		rc = dj_put(c, &x, &hx);
	if (rc == 0)
		rc = dj_put(c, &one, &h1);
	if (rc == 0)
		rc = per_op(c, "add", hx, 2, 9, &t);
	if (rc == 0)
		sv->elementwise_gbps = 3.0 * (double)dj_tensor_nbytes(&x.desc) / t / 1e9;
	if (rc == 0)
		rc = per_op(c, "add", h1, 2, 33, &sv->op_overhead_s);
	if (rc == 0)
		rc = batch_time(c, "add", h1, 2, 1, &t);
	if (rc == 0)
		sv->service_s = t > sv->rtt_s ? t - sv->rtt_s : 0;
	if (hx != 0)
		dj_free(c, hx);
	if (h1 != 0)
		dj_free(c, h1);
	free(x.data);
	free(one.data);
	return rc;
}

/* Matmul GFLOP/s of one dtype; 0 where the server refuses it. */
static int matmul_probe(const struct dj_sched_options *o, struct dj_conn *c, enum dj_dtype dt,
			double *gflops)
{
	int n = o->calib_matmul_n;

	*gflops = 0;
	for (;;) {
		struct dj_tensor a;
		uint64_t h = 0;
		double t;
		int rc = zeros(dt, 2, n, n, &a);

		if (rc == 0)
			rc = dj_put(c, &a, &h);
		free(a.data);
		if (rc == 0)
			rc = per_op(c, "matmul", h, 2, 3, &t);
		if (h != 0)
			dj_free(c, h);
		if (rc == -DJ_EDTYPE || rc == -DJ_EUNKNOWN_OP)
			return 0; /* not on this server: float32's stands in */
		if (rc != 0)
			return rc;
		if (t < MATMUL_MIN_S && n * 2 <= MATMUL_MAX_N) {
			n *= 2;
			continue;
		}
		*gflops = 2.0 * (double)n * (double)n * (double)n / t / 1e9;
		return 0;
	}
}

static uint64_t json_u64(const cJSON *obj, const char *key, uint64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : def;
}

int sc_stats_read(struct dj_conn *conn, struct dj_sched_server *sv)
{
	char *text = NULL;
	int rc = dj_stats(conn, &text);
	cJSON *root = rc == 0 ? cJSON_Parse(text) : NULL;
	const cJSON *load, *backend, *dev;
	uint64_t limit, used;

	free(text);
	if (rc != 0)
		return rc;
	if (root == NULL)
		return -EBADMSG;
	load = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "member"),
						"load");
	backend = cJSON_GetObjectItemCaseSensitive(root, "backend");
	sv->mem_free = sv->mem_total = UINT64_MAX;
	sv->queued = 0;
	if (cJSON_IsObject(load)) {
		/* A fleet member's record: every device's memory, the queue. */
		sv->mem_free = sv->mem_total = 0;
		cJSON_ArrayForEach(dev, cJSON_GetObjectItemCaseSensitive(load, "devices")) {
			sv->mem_free += json_u64(dev, "mem_free", 0);
			sv->mem_total += json_u64(dev, "mem_total", 0);
		}
		sv->queued = (double)json_u64(load, "queued", 0);
	}
	/* The session's own limit caps what it may place there. */
	limit = json_u64(backend, "session_limit", 0);
	used = json_u64(backend, "session_bytes", 0);
	if (limit > 0) {
		uint64_t left = limit > used ? limit - used : 0;

		sv->mem_free = left < sv->mem_free ? left : sv->mem_free;
		sv->mem_total = limit < sv->mem_total ? limit : sv->mem_total;
	}
	cJSON_Delete(root);
	return 0;
}

void sc_fleet_derive_links(struct dj_sched_fleet *f)
{
	for (int a = 0; a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++) {
			const struct dj_sched_server *sa = &f->servers[a], *sb = &f->servers[b];

			if (a == b) {
				f->link_rtt_s[a][b] = 0;
				f->link_bw_Bps[a][b] = 0;
				continue;
			}
			/* The bytes come back in a's reply, then go out in the
			 * batch of a new stage to b: one more round trip (b's),
			 * both links one after the other. */
			f->link_rtt_s[a][b] = sb->rtt_s;
			f->link_bw_Bps[a][b] = sa->bw_Bps > 0 && sb->bw_Bps > 0 ?
				1.0 / (1.0 / sa->bw_Bps + 1.0 / sb->bw_Bps) : 0;
		}
	f->links_direct = 0;
	snprintf(f->note, sizeof(f->note), "links between servers derived from the client's "
		 "(a tensor crosses through the client: fetch, then put); no server-to-server "
		 "probe before the fleet");
}

static int measure_one(const struct dj_sched_options *o, struct dj_conn *c, int i,
		       struct dj_sched_server *sv)
{
	static const enum dj_dtype dts[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16, DJ_DTYPE_BFLOAT16};
	int rc;

	memset(sv, 0, sizeof(*sv));
	snprintf(sv->name, sizeof(sv->name), "s%d", i);
	sv->up = 1;
	rc = link_probe(c, sv);
	if (rc == 0)
		rc = compute_probe(o, c, sv);
	for (size_t k = 0; rc == 0 && k < sizeof(dts) / sizeof(dts[0]); k++)
		rc = matmul_probe(o, c, dts[k], &sv->matmul_gflops[dts[k]]);
	if (rc == 0)
		rc = sc_stats_read(c, sv);
	if (rc != 0)
		DJC_LOG(DJ_LOG_ERR, "sched", "server %d: calibration failed: %s (%s)", i,
			dj_strerror(rc), dj_conn_last_error(c));
	return rc;
}

static double best_max(double a, double b)
{
	return a > b ? a : b;
}

static double best_min(double a, double b)
{
	return a < b ? a : b;
}

/* The better of two rounds' figures: load on the client (or on a server
 * shared with others) only ever makes a measurement worse. */
static void keep_best(struct dj_sched_server *best, const struct dj_sched_server *now)
{
	for (int d = 0; d < DJ_DTYPE_COUNT; d++)
		best->matmul_gflops[d] = best_max(best->matmul_gflops[d], now->matmul_gflops[d]);
	best->elementwise_gbps = best_max(best->elementwise_gbps, now->elementwise_gbps);
	best->op_overhead_s = best_min(best->op_overhead_s, now->op_overhead_s);
	best->service_s = best_min(best->service_s, now->service_s);
	best->rtt_s = best_min(best->rtt_s, now->rtt_s);
	best->bw_Bps = best_max(best->bw_Bps, now->bw_Bps);
	/* Memory and queue: the latest reading. */
	best->mem_free = now->mem_free;
	best->mem_total = now->mem_total;
	best->queued = now->queued;
}

int dj_sched_measure(const struct dj_sched_options *opts, struct dj_conn *const *servers, int n,
		     struct dj_sched_fleet *f)
{
	struct dj_sched_options o;
	int rc = 0;

	if (servers == NULL || f == NULL || n < 1 || n > SC_MAX)
		return -EINVAL;
	if (opts != NULL)
		o = *opts;
	else
		dj_sched_options_init(&o);
	memset(f, 0, sizeof(*f));
	f->n_servers = n;
	/* Rounds over every server in turn, each figure the best of them: a
	 * burst of load on this machine then hits every server's figures,
	 * not one server's, and the best round of each is its capacity. */
	for (int round = 0; round < CALIB_ROUNDS && rc == 0; round++)
		for (int i = 0; i < n && rc == 0; i++) {
			struct dj_sched_server now;

			rc = servers[i] != NULL ? measure_one(&o, servers[i], i, &now) : -EINVAL;
			if (rc == 0 && round == 0)
				f->servers[i] = now;
			else if (rc == 0)
				keep_best(&f->servers[i], &now);
		}
	for (int i = 0; rc == 0 && i < n; i++)
		DJC_LOG(DJ_LOG_INFO, "sched", "server %d: rtt %.0f us, %.2f GB/s up; matmul f32 %.2f "
			"GFLOP/s; elementwise %.2f GB/s; %.1f us per op; free %" PRIu64 " bytes", i,
			f->servers[i].rtt_s * 1e6, f->servers[i].bw_Bps / 1e9,
			f->servers[i].matmul_gflops[DJ_DTYPE_FLOAT32], f->servers[i].elementwise_gbps,
			f->servers[i].op_overhead_s * 1e6, f->servers[i].mem_free);
	if (rc == 0)
		sc_fleet_derive_links(f);
	return rc;
}
