/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_BENCH_H
#define DJINN_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dataplane/dataplane.h"

#define BENCH_MAX_SIZES 32
/* Rows of a result: ctl mode measures four kinds per size. */
#define BENCH_MAX_ROWS (4 * BENCH_MAX_SIZES)
#define BENCH_MAX_STRIPES 64

enum bench_mode { MODE_TX, MODE_RX, MODE_TRANSFER, MODE_PINGPONG, MODE_TCP, MODE_MEMCPY,
		  MODE_CTL };
enum bench_role { ROLE_SEND, ROLE_RECV };

struct bench_opts {
	enum bench_mode mode;
	enum bench_role role;
	const char *port_name;       /* NULL: first port */
	uint16_t frame_size;
	uint16_t queues;             /* queue pairs, one lcore each */
	unsigned int stripes;        /* sessions a transfer is split over */
	unsigned int threads;        /* memcpy mode */
	uint32_t payload;            /* tx/rx: fragment payload bytes */
	double duration_s;           /* tx/rx */
	uint64_t sizes[BENCH_MAX_SIZES];
	unsigned int n_sizes;
	unsigned int iters;          /* 0: auto */
	unsigned int count;          /* pingpong round trips */
	uint32_t timeout_ms;
	bool crc;
	bool verify;
	const char *impair;
	uint32_t idle_sleep_us;
	enum dp_idle idle;           /* DP_IDLE_DEFAULT: by idle_sleep_us */
	bool caller_runs;            /* cfg.caller_runs */
	uint32_t initial_credit;     /* 0: the protocol's default */
	const char *json_path;
	struct dp_netaddr local, peer;
	uint64_t session_id, cookie;
	const char *tcp_host;
	uint16_t tcp_port;
	/* ctl mode: a djinn-dp's control plane at tcp_host:ctl_port; parts of
	 * at least stripe_min bytes (dj_client_options.dp_stripe_min). */
	uint16_t ctl_port;
	uint64_t stripe_min;
};

/* One measured row of a result table. */
#define BENCH_CDF_POINTS 106
extern const double bench_cdf_q[BENCH_CDF_POINTS];

struct bench_row {
	const char *label;    /* what the row measured, where a mode has several kinds */
	uint64_t size;
	unsigned int iters;
	double gbps;          /* goodput over every iteration */
	double best_gbps;
	double p50_us, p99_us, p999_us;
	/* Latency at each of bench_cdf_q (the whole distribution, for CDF
	 * charts: scripts/plot-bench.py); n_cdf 0 where none was measured. */
	unsigned int n_cdf;
	float cdf_us[BENCH_CDF_POINTS];
};

struct bench_result {
	const char *mode;
	unsigned int n_rows;
	struct bench_row rows[BENCH_MAX_ROWS];
	/* tx/rx raw rates */
	double mpps, gbps_payload, gbps_wire;
	uint64_t packets;
	struct dp_engine_stats dp;
	struct dp_proto_stats proto;
	bool have_engine_stats;
	/* Per queue (lcore): packets each way, to show where traffic went. */
	unsigned int n_queues;
	uint64_t queue_rx[BENCH_MAX_STRIPES], queue_tx[BENCH_MAX_STRIPES];
	int errors;
};

int bench_raw(const struct bench_opts *o, struct bench_result *r);
int bench_transfer(const struct bench_opts *o, struct bench_result *r);
int bench_pingpong(const struct bench_opts *o, struct bench_result *r);
int bench_tcp(const struct bench_opts *o, struct bench_result *r);
int bench_memcpy(const struct bench_opts *o, struct bench_result *r);
int bench_ctl(const struct bench_opts *o, struct bench_result *r);

/* Parts of one job run at once (pool.c): fn(i, arg) for i in [0, n), the
 * caller running part 0. bench_pool_run returns the first part's error. */
typedef int (*bench_part_fn)(unsigned int i, void *arg);
struct bench_pool;
int bench_pool_create(unsigned int n, struct bench_pool **out);
int bench_pool_run(struct bench_pool *p, bench_part_fn fn, void *arg);
void bench_pool_destroy(struct bench_pool *p);
/* Part i of parts over size bytes: whole cache lines, the last shorter,
 * empty ones (len 0) where size is small. */
void bench_part(uint64_t size, unsigned int parts, unsigned int i, uint64_t *off,
		uint64_t *len);

/* Engine up on the chosen port (o->queues queue pairs), no session. */
int bench_engine_create(const struct bench_opts *o, struct dp_engine **dp);
/* Engine up on the chosen port with a session per stripe to the peer. */
int bench_engine_start(const struct bench_opts *o, struct dp_engine **dp);
void bench_engine_stop(struct dp_engine *dp, struct bench_result *r);

/* Deterministic contents, so the receiver checks bytes without a copy. */
void bench_pattern_fill(void *buf, uint64_t len, uint64_t seed);
bool bench_pattern_check(const void *buf, uint64_t len, uint64_t seed);
/* Iterations for a size when --iters is not given. */
unsigned int bench_auto_iters(uint64_t size);
void *bench_alloc(uint64_t len);
void bench_free(void *p, uint64_t len);

/* Sort samples (ns) and fill a row's percentiles. */
void bench_percentiles(uint64_t *ns, unsigned int n, struct bench_row *row);
/* A row from per-iteration times (ns): goodput, best, percentiles. */
void bench_row_fill(struct bench_row *row, uint64_t size, unsigned int iters, uint64_t *ns);
void bench_print(const struct bench_opts *o, const struct bench_result *r);

#endif
