/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fleet's figures, measured from the client over one session per
 * server (djinn.h alone, so that a server needs nothing new):
 *
 *   round trip     the least of the PINGs;
 *   bandwidth      a 4 MiB PUT (its round trip left in: small beside it);
 *   elementwise    an EXECUTE batch of 9 adds against one of 1 (same
 *                  request, same round trip): the difference is 8 adds'
 *                  time on the server, whatever the network; GB/s of the
 *                  bytes they read and write;
 *   op overhead    33 adds of one element against 1: what one more
 *                  operation in a batch costs beyond its arithmetic;
 *   matmul         per float dtype, 5 square matmuls against 1, the side
 *                  doubled (from 128) while one takes under 0.5 ms;
 *   service time   a batch of one tiny add, its round trip taken off;
 *   memory, queue  STATS: the member record's devices and queue where the
 *                  server has one (fleets), else the session's limit.
 *
 * Four rounds go over all servers in turn and each raw time is the least
 * seen: load on this machine only ever slows a measurement down, and
 * taking turns spreads a burst of it over every server's rounds rather
 * than all of one server's (a busy client once made one of three equal
 * servers look 2.5 times slower). Differences are taken between those
 * least times, so that one unlucky batch cannot make a server look
 * faster either. Links between servers are derived from the client's (a
 * tensor crosses through the client today: fetched from a, put to b); the
 * fleet adapter (sc_fleet_view.c) replaces them where the servers move
 * tensors themselves.
 *
 * Placement units: a server whose STATS (or member record) lists several
 * devices becomes one unit per device (sc_units_expand), its compute
 * figures copied, each device's memory and queue its own (sc_stats_read);
 * the peer-copy links between the devices of one server are timed with
 * to_device of 4 B and 1 MiB (sc_peer_links_probe), simulated where that
 * fails or in a simulation (dj_sched_fleet_devices).
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
#define MATMUL_MAX_N 1024
#define MATMUL_MIN_S 0.5e-3
#define CALIB_ROUNDS 4
#define EW_MANY 9
#define OV_MANY 33
#define MM_MANY 5

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

/* One batch of reps entries "op(h, h)", each freeing its own output: its
 * time, round trip included. */
static int batch_time(struct dj_conn *c, const char *op, uint64_t h, int reps, double *t)
{
	struct dj_batch_op ops[40];
	uint64_t out[40];
	int self[40], rc;
	char txt[24];
	double t0;

	if (reps > 40)
		return -EINVAL;
	snprintf(txt, sizeof(txt), "0x%" PRIx64, h);
	memset(ops, 0, sizeof(ops));
	for (int k = 0; k < reps; k++) {
		ops[k].op = op;
		ops[k].n_in = 2;
		ops[k].inputs[0] = ops[k].inputs[1] = txt;
		self[k] = k;
		ops[k].free = &self[k];
		ops[k].n_free = 1;
	}
	t0 = now_s();
	rc = dj_execute_batch(c, ops, reps, out);
	*t = now_s() - t0;
	return rc;
}

/* *best: the least of itself and one more batch's time. */
static int least(struct dj_conn *c, const char *op, uint64_t h, int reps, double *best)
{
	double t;
	int rc = batch_time(c, op, h, reps, &t);

	if (rc == 0 && t < *best)
		*best = t;
	return rc;
}

static const enum dj_dtype calib_dtypes[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16,
					     DJ_DTYPE_BFLOAT16};
#define N_CALIB_DTYPES 3

/* One server's probe tensors and raw times, each the least seen: batches
 * of one entry [0] and of many [1]. */
struct probe {
	struct dj_conn *c;
	uint64_t hx, h1, hm[N_CALIB_DTYPES];
	int mm_n[N_CALIB_DTYPES];          /* matmul side; 0: the server refuses it */
	double rtt, put, ew[2], ov[2], mm[N_CALIB_DTYPES][2];
};

/* The matmul side for dtype k: doubled while one takes under
 * MATMUL_MIN_S, so that its time is the arithmetic's. */
static int matmul_size(const struct dj_sched_options *o, struct probe *pr, int k)
{
	int n = o->calib_matmul_n;

	for (;;) {
		struct dj_tensor a;
		double t = 0;
		int rc = zeros(calib_dtypes[k], 2, n, n, &a);

		if (rc == 0)
			rc = dj_put(pr->c, &a, &pr->hm[k]);
		free(a.data);
		if (rc == 0)
			rc = batch_time(pr->c, "matmul", pr->hm[k], 1, &t);
		if (rc == -DJ_EDTYPE || rc == -DJ_EUNKNOWN_OP)
			return 0; /* not on this server: float32's figure stands in */
		if (rc != 0 || t >= MATMUL_MIN_S || n * 2 > MATMUL_MAX_N) {
			pr->mm_n[k] = rc == 0 ? n : 0;
			return rc;
		}
		dj_free(pr->c, pr->hm[k]);
		pr->hm[k] = 0;
		n *= 2;
	}
}

static int probe_open(const struct dj_sched_options *o, struct dj_conn *c, struct probe *pr)
{
	struct dj_tensor x = {0}, one = {0};
	int rc;

	memset(pr, 0, sizeof(*pr));
	pr->c = c;
	pr->rtt = pr->put = pr->ew[0] = pr->ew[1] = pr->ov[0] = pr->ov[1] = 1e9;
	for (int k = 0; k < N_CALIB_DTYPES; k++)
		pr->mm[k][0] = pr->mm[k][1] = 1e9;
	rc = zeros(DJ_DTYPE_FLOAT32, 1, o->calib_elementwise_n, 0, &x);
	if (rc == 0)
		rc = zeros(DJ_DTYPE_FLOAT32, 1, 1, 0, &one);
	if (rc == 0)
		rc = dj_put(c, &x, &pr->hx);
	if (rc == 0)
		rc = dj_put(c, &one, &pr->h1);
	free(x.data);
	free(one.data);
	for (int k = 0; rc == 0 && k < N_CALIB_DTYPES; k++)
		rc = matmul_size(o, pr, k);
	return rc;
}

static void probe_close(struct probe *pr)
{
	uint64_t hs[2 + N_CALIB_DTYPES] = {pr->hx, pr->h1, pr->hm[0], pr->hm[1], pr->hm[2]};

	for (size_t i = 0; pr->c != NULL && i < sizeof(hs) / sizeof(hs[0]); i++)
		if (hs[i] != 0)
			dj_free(pr->c, hs[i]);
}

/* One round: every time taken once more, the least kept. */
static int probe_round(struct probe *pr)
{
	struct dj_tensor t;
	double t0;
	uint64_t h;
	int rc = 0;

	for (int i = 0; i < 3 && rc == 0; i++) {
		uint64_t ns = 0;

		rc = dj_ping(pr->c, &ns);
		pr->rtt = (double)ns / 1e9 < pr->rtt ? (double)ns / 1e9 : pr->rtt;
	}
	if (rc == 0)
		rc = zeros(DJ_DTYPE_FLOAT32, 1, PUT_PROBE_BYTES / 4, 0, &t);
	if (rc == 0) {
		t0 = now_s();
		rc = dj_put(pr->c, &t, &h);
		t0 = now_s() - t0;
		free(t.data);
		if (rc == 0) {
			dj_free(pr->c, h);
			pr->put = t0 < pr->put ? t0 : pr->put;
		}
	}
	if (rc == 0)
		rc = least(pr->c, "add", pr->hx, 1, &pr->ew[0]);
	if (rc == 0)
		rc = least(pr->c, "add", pr->hx, EW_MANY, &pr->ew[1]);
	if (rc == 0)
		rc = least(pr->c, "add", pr->h1, 1, &pr->ov[0]);
	if (rc == 0)
		rc = least(pr->c, "add", pr->h1, OV_MANY, &pr->ov[1]);
	for (int k = 0; rc == 0 && k < N_CALIB_DTYPES; k++) {
		if (pr->mm_n[k] == 0)
			continue;
		rc = least(pr->c, "matmul", pr->hm[k], 1, &pr->mm[k][0]);
		if (rc == 0)
			rc = least(pr->c, "matmul", pr->hm[k], MM_MANY, &pr->mm[k][1]);
	}
	return rc;
}

/* (many - one) / (n - 1), never below 0.1 us (a loaded client can make the
 * difference vanish). */
static double per_entry(const double *t, int n)
{
	return t[1] - t[0] > 1e-7 * (n - 1) ? (t[1] - t[0]) / (n - 1) : 1e-7;
}

static void probe_figures(const struct dj_sched_options *o, const struct probe *pr, int i,
			  struct dj_sched_server *sv)
{
	memset(sv, 0, sizeof(*sv));
	snprintf(sv->name, sizeof(sv->name), "s%d", i);
	sv->up = 1;
	sv->rtt_s = pr->rtt;
	sv->bw_Bps = PUT_PROBE_BYTES / pr->put;
	sv->elementwise_gbps = 3.0 * 4.0 * (double)o->calib_elementwise_n /
			       per_entry(pr->ew, EW_MANY) / 1e9;
	sv->op_overhead_s = per_entry(pr->ov, OV_MANY);
	sv->service_s = pr->ov[0] > pr->rtt ? pr->ov[0] - pr->rtt : 0;
	for (int k = 0; k < N_CALIB_DTYPES; k++) {
		double n = pr->mm_n[k];

		if (n > 0)
			sv->matmul_gflops[calib_dtypes[k]] = 2.0 * n * n * n /
							     per_entry(pr->mm[k], MM_MANY) / 1e9;
	}
}

static uint64_t json_u64(const cJSON *obj, const char *key, uint64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : def;
}

/* The entry of list whose key names device, NULL where none does. */
static const cJSON *device_find(const cJSON *list, const char *key, const char *device)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, list) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, key);

		if (cJSON_IsString(name) && strcmp(name->valuestring, device) == 0)
			return d;
	}
	return NULL;
}

/* Memory and queue of one unit from a STATS reply: its device's own
 * (backend.memory[], else the member record's load.devices[]), or for a
 * unit without one the whole server's (the member record's devices and
 * queue). */
static void unit_stats(const cJSON *backend, const cJSON *load, struct dj_sched_server *sv)
{
	/* Where a device's figures are, and their keys: the runtime's own
	 * reading first, then the member record's. */
	static const struct {
		int in_load;
		const char *list, *name, *free, *total, *queued;
	} src[] = {
		{0, "memory", "device", "free", "total", "waiting"},
		{1, "devices", "name", "mem_free", "mem_total", "queued"},
	};
	const cJSON *dev;

	sv->mem_free = sv->mem_total = UINT64_MAX;
	sv->queued = 0;
	for (size_t i = 0; sv->device[0] != '\0' && i < sizeof(src) / sizeof(src[0]); i++) {
		dev = device_find(cJSON_GetObjectItemCaseSensitive(src[i].in_load ? load : backend,
								   src[i].list), src[i].name,
				  sv->device);
		if (dev == NULL)
			continue;
		sv->mem_free = json_u64(dev, src[i].free, UINT64_MAX);
		sv->mem_total = json_u64(dev, src[i].total, UINT64_MAX);
		sv->queued = (double)json_u64(dev, src[i].queued, 0);
		return;
	}
	if (sv->device[0] != '\0')
		return;
	if (cJSON_IsObject(load)) {
		sv->queued = (double)json_u64(load, "queued", 0);
		/* A fleet member's record: every device's memory, the queue.
		 * A record that lists no device says nothing of memory. */
		if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(load, "devices")) == 0)
			return;
		sv->mem_free = sv->mem_total = 0;
		cJSON_ArrayForEach(dev, cJSON_GetObjectItemCaseSensitive(load, "devices")) {
			sv->mem_free += json_u64(dev, "mem_free", 0);
			sv->mem_total += json_u64(dev, "mem_total", 0);
		}
	}
}

int sc_stats_read(struct dj_conn *conn, struct dj_sched_server *sv, int n)
{
	char *text = NULL;
	int rc = dj_stats(conn, &text);
	cJSON *root = rc == 0 ? cJSON_Parse(text) : NULL;
	const cJSON *load, *backend;
	uint64_t limit, used;

	free(text);
	if (rc != 0)
		return rc;
	if (root == NULL)
		return -EBADMSG;
	load = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "member"),
						"load");
	backend = cJSON_GetObjectItemCaseSensitive(root, "backend");
	/* The session's own limit caps what it may place there: on each of
	 * its devices, as they share it. */
	limit = json_u64(backend, "session_limit", 0);
	used = json_u64(backend, "session_bytes", 0);
	for (int u = 0; u < n; u++) {
		unit_stats(backend, load, &sv[u]);
		if (limit > 0) {
			uint64_t left = limit > used ? limit - used : 0;

			sv[u].mem_free = left < sv[u].mem_free ? left : sv[u].mem_free;
			sv[u].mem_total = limit < sv[u].mem_total ? limit : sv[u].mem_total;
		}
	}
	cJSON_Delete(root);
	return 0;
}

int sc_devices_read(struct dj_conn *conn, struct sc_devs *devs)
{
	char *text = NULL;
	int rc = dj_stats(conn, &text);
	cJSON *root = rc == 0 ? cJSON_Parse(text) : NULL;
	const cJSON *d;

	free(text);
	devs->n = 0;
	if (rc != 0)
		return rc;
	if (root == NULL)
		return -EBADMSG;
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(
				 cJSON_GetObjectItemCaseSensitive(root, "backend"), "memory")) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "device");

		if (!cJSON_IsString(name) || devs->n == SC_MAX_DEVICES ||
		    strlen(name->valuestring) >= DJ_SCHED_DEVICE_MAX)
			continue;
		snprintf(devs->name[devs->n++], DJ_SCHED_DEVICE_MAX, "%s", name->valuestring);
	}
	cJSON_Delete(root);
	return 0;
}

void dj_sched_fleet_links(struct dj_sched_fleet *f)
{
	for (int a = 0; a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++) {
			const struct dj_sched_server *sa = &f->servers[a], *sb = &f->servers[b];

			if (a == b) {
				f->link_rtt_s[a][b] = 0;
				f->link_bw_Bps[a][b] = 0;
				continue;
			}
			if (sc_same_server(f, a, b))
				continue; /* a peer-copy link: the server's own */
			/* The bytes come back in a's reply, then go out in the
			 * batch of a new stage to b: one more round trip (b's),
			 * both links one after the other. */
			f->link_rtt_s[a][b] = sb->rtt_s;
			f->link_bw_Bps[a][b] = sa->bw_Bps > 0 && sb->bw_Bps > 0 ?
				1.0 / (1.0 / sa->bw_Bps + 1.0 / sb->bw_Bps) : 0;
		}
	f->links_direct = 0;
	snprintf(f->note, sizeof(f->note), "links between servers derived from the client's "
		 "(a tensor crosses through the client: fetch, then put)");
}

/* A homogeneous fleet: every compute figure the best any server gave. */
static void pool(struct dj_sched_fleet *f)
{
	struct dj_sched_server best = f->servers[0];

	for (int i = 1; i < f->n_servers; i++) {
		const struct dj_sched_server *v = &f->servers[i];

		for (int d = 0; d < DJ_DTYPE_COUNT; d++)
			best.matmul_gflops[d] = v->matmul_gflops[d] > best.matmul_gflops[d] ?
						v->matmul_gflops[d] : best.matmul_gflops[d];
		best.elementwise_gbps = v->elementwise_gbps > best.elementwise_gbps ?
					v->elementwise_gbps : best.elementwise_gbps;
		best.op_overhead_s = v->op_overhead_s < best.op_overhead_s ? v->op_overhead_s :
				     best.op_overhead_s;
		best.service_s = v->service_s < best.service_s ? v->service_s : best.service_s;
	}
	for (int i = 0; i < f->n_servers; i++) {
		struct dj_sched_server *v = &f->servers[i];

		memcpy(v->matmul_gflops, best.matmul_gflops, sizeof(v->matmul_gflops));
		v->elementwise_gbps = best.elementwise_gbps;
		v->op_overhead_s = best.op_overhead_s;
		v->service_s = best.service_s;
	}
}

int dj_sched_fleet_sim(struct dj_sched_fleet *f, int n)
{
	if (f == NULL || n < 1 || n > SC_MAX)
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	f->n_servers = n;
	for (int s = 0; s < n; s++) {
		struct dj_sched_server *sv = &f->servers[s];

		snprintf(sv->name, sizeof(sv->name), "sim%d", s);
		sv->up = 1;
		sv->matmul_gflops[DJ_DTYPE_FLOAT32] = 10;
		sv->elementwise_gbps = 5;
		sv->op_overhead_s = 10e-6;
		sv->service_s = 50e-6;
		sv->mem_free = sv->mem_total = UINT64_MAX;
		sv->rtt_s = 50e-6;
		sv->bw_Bps = 1e9;
	}
	dj_sched_fleet_links(f);
	return 0;
}

int sc_units_expand(struct dj_sched_fleet *f, const struct sc_devs *devs,
		    struct dj_conn *const *conns, struct dj_conn **unit_conn)
{
	struct dj_sched_fleet *src = malloc(sizeof(*src));
	int u = 0, rc = 0;

	if (src == NULL)
		return -ENOMEM;
	*src = *f;
	for (int i = 0; i < src->n_servers && rc == 0; i++) {
		int k = devs[i].n >= 2 ? devs[i].n : 1, first = u;

		if (u + k > SC_MAX) {
			rc = -EINVAL;
			break;
		}
		for (int d = 0; d < k; d++, u++) {
			struct dj_sched_server *v = &f->servers[u];

			*v = src->servers[i];
			if (unit_conn != NULL)
				unit_conn[u] = conns[i];
			if (k == 1)
				continue;
			snprintf(v->name, sizeof(v->name), "%.*s/%s", DJ_SCHED_NAME_MAX - 18,
				 src->servers[i].name, devs[i].name[d]);
			snprintf(v->device, sizeof(v->device), "%s", devs[i].name[d]);
			v->group = i + 1;
		}
		for (int a = first; a < u; a++)
			for (int b = first; b < u; b++) {
				f->link_rtt_s[a][b] = a != b ? SC_SIM_PEER_RTT_S : 0;
				f->link_bw_Bps[a][b] = a != b ? SC_SIM_PEER_BPS : 0;
			}
	}
	if (rc == 0) {
		f->n_servers = u;
		dj_sched_fleet_links(f);
		snprintf(f->note, sizeof(f->note), "%s", src->note);
	} else {
		*f = *src;
	}
	free(src);
	return rc;
}

int dj_sched_fleet_devices(struct dj_sched_fleet *f, int n_devices)
{
	struct sc_devs *devs;
	int rc;

	if (f == NULL || n_devices < 1 || n_devices > SC_MAX_DEVICES ||
	    f->n_servers * n_devices > SC_MAX)
		return -EINVAL;
	for (int i = 0; i < f->n_servers; i++)
		if (f->servers[i].group != 0 || f->servers[i].device[0] != '\0')
			return -EINVAL;
	if (n_devices == 1)
		return 0;
	devs = calloc((size_t)f->n_servers, sizeof(*devs));
	if (devs == NULL)
		return -ENOMEM;
	for (int i = 0; i < f->n_servers; i++) {
		devs[i].n = n_devices;
		for (int d = 0; d < n_devices; d++)
			snprintf(devs[i].name[d], sizeof(devs[i].name[d]), "cuda:%d", d);
	}
	rc = sc_units_expand(f, devs, NULL, NULL);
	free(devs);
	return rc;
}

/* A batch on conn: entry 0 a put of src (on device `on`, NULL: the
 * session's) or, with src NULL, `op` of handle h with device `to`, its
 * output freed; the time it took. */
static int device_batch(struct dj_conn *conn, const struct dj_tensor *src, const char *on,
			uint64_t h, const char *to, double *t, uint64_t *out)
{
	struct dj_batch_op op = {.put = src, .device = src != NULL ? on : to};
	int self = 0;
	char txt[24];
	double t0;
	int rc;

	if (src == NULL) {
		snprintf(txt, sizeof(txt), "0x%" PRIx64, h);
		op.op = "to_device";
		op.inputs[0] = txt;
		op.n_in = 1;
		op.free = &self;
		op.n_free = 1;
	}
	t0 = now_s();
	rc = dj_execute_batch(conn, &op, 1, out);
	*t = now_s() - t0;
	return rc;
}

/* Peer-copy link a -> b of one server: to_device of 4 bytes and of 1 MiB,
 * the least of a few each; the client's round trip (rtt) taken off the
 * small one, the small one off the large one. */
static int peer_probe(struct dj_conn *conn, const char *a, const char *b, double rtt,
		      double *lat, double *bw)
{
	struct dj_tensor small, big;
	uint64_t hs = 0, hb = 0, out;
	double ts = 1e9, tb = 1e9, t;
	int rc = zeros(DJ_DTYPE_FLOAT32, 1, 1, 0, &small);

	if (rc == 0)
		rc = zeros(DJ_DTYPE_FLOAT32, 1, (1 << 20) / 4, 0, &big);
	if (rc == 0)
		rc = device_batch(conn, &small, a, 0, NULL, &t, &hs);
	if (rc == 0)
		rc = device_batch(conn, &big, a, 0, NULL, &t, &hb);
	for (int i = 0; rc == 0 && i < 3; i++) {
		rc = device_batch(conn, NULL, NULL, hs, b, &t, &out);
		ts = t < ts ? t : ts;
		if (rc == 0)
			rc = device_batch(conn, NULL, NULL, hb, b, &t, &out);
		tb = t < tb ? t : tb;
	}
	if (hs != 0)
		dj_free(conn, hs);
	if (hb != 0)
		dj_free(conn, hb);
	free(small.data);
	free(big.data);
	if (rc != 0)
		return rc;
	*lat = ts - rtt > 1e-6 ? ts - rtt : 1e-6;
	*bw = (double)(1 << 20) / (tb - ts > 1e-6 ? tb - ts : 1e-6);
	return 0;
}

void sc_peer_links_probe(struct dj_sched_fleet *f, struct dj_conn *const *unit_conn)
{
	int probed = 0, failed = 0;

	for (int a = 0; a < f->n_servers; a++)
		for (int b = 0; b < f->n_servers; b++) {
			const struct dj_sched_server *sa = &f->servers[a], *sb = &f->servers[b];

			if (a == b || !sc_same_server(f, a, b))
				continue;
			if (peer_probe(unit_conn[a], sa->device, sb->device, sa->rtt_s,
				       &f->link_rtt_s[a][b], &f->link_bw_Bps[a][b]) != 0) {
				DJC_LOG(DJ_LOG_NOTICE, "sched", "peer link %s -> %s not probed: "
					"simulated figures kept", sa->name, sb->name);
				failed++;
				continue;
			}
			probed++;
			DJC_LOG(DJ_LOG_INFO, "sched", "peer link %s -> %s: %.1f us, %.2f GB/s",
				sa->name, sb->name, f->link_rtt_s[a][b] * 1e6,
				f->link_bw_Bps[a][b] / 1e9);
		}
	if (probed + failed > 0) {
		size_t o = strlen(f->note);

		snprintf(f->note + o, sizeof(f->note) - o, "; %d peer-copy link%s probed "
			 "(to_device of 1 MiB)%s", probed, probed == 1 ? "" : "s",
			 failed > 0 ? ", some simulated" : "");
	}
}

int sc_units_of_given(const struct dj_sched_fleet *given, struct dj_conn *const *conns, int n,
		      struct dj_conn **unit_conn)
{
	int i = -1;

	for (int u = 0; u < given->n_servers; u++) {
		int g = given->servers[u].group;

		if (u == 0 || g == 0 || g != given->servers[u - 1].group)
			i++;
		if (i >= n)
			return -EINVAL;
		unit_conn[u] = conns[i];
	}
	return i + 1 == n ? given->n_servers : -EINVAL;
}

int dj_sched_measure(const struct dj_sched_options *opts, struct dj_conn *const *servers, int n,
		     struct dj_sched_fleet *f)
{
	struct dj_sched_options o;
	struct probe *pr;
	int rc = 0, opened = 0;

	if (servers == NULL || f == NULL || n < 1 || n > SC_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (servers[i] == NULL)
			return -EINVAL;
	if (opts != NULL)
		o = *opts;
	else
		dj_sched_options_init(&o);
	pr = calloc((size_t)n, sizeof(*pr));
	if (pr == NULL)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	f->n_servers = n;
	for (; opened < n && rc == 0; opened++)
		rc = probe_open(&o, servers[opened], &pr[opened]);
	for (int round = 0; round < CALIB_ROUNDS && rc == 0; round++)
		for (int i = 0; i < n && rc == 0; i++)
			rc = probe_round(&pr[i]);
	for (int i = 0; i < n && rc == 0; i++) {
		probe_figures(&o, &pr[i], i, &f->servers[i]);
		rc = sc_stats_read(servers[i], &f->servers[i], 1);
		DJC_LOG(DJ_LOG_INFO, "sched", "server %d: rtt %.0f us, %.2f GB/s up; matmul f32 %.2f "
			"GFLOP/s; elementwise %.2f GB/s; %.1f us per op; free %" PRIu64 " bytes", i,
			f->servers[i].rtt_s * 1e6, f->servers[i].bw_Bps / 1e9,
			f->servers[i].matmul_gflops[DJ_DTYPE_FLOAT32], f->servers[i].elementwise_gbps,
			f->servers[i].op_overhead_s * 1e6, f->servers[i].mem_free);
	}
	if (rc == 0 && o.homogeneous)
		pool(f);
	if (rc != 0)
		DJC_LOG(DJ_LOG_ERR, "sched", "calibration failed: %s", dj_strerror(rc));
	for (int i = 0; i < opened; i++)
		probe_close(&pr[i]);
	free(pr);
	if (rc == 0)
		dj_sched_fleet_links(f);
	return rc;
}
