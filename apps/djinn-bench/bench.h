/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_BENCH_H
#define DJINN_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dataplane/dataplane.h"

#define BENCH_MAX_SIZES 32

enum bench_mode { MODE_TX, MODE_RX, MODE_TRANSFER, MODE_PINGPONG, MODE_TCP };
enum bench_role { ROLE_SEND, ROLE_RECV };

struct bench_opts {
	enum bench_mode mode;
	enum bench_role role;
	const char *port_name;       /* NULL: first port */
	uint16_t frame_size;
	uint16_t queues;
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
	uint32_t initial_credit;     /* 0: the protocol's default */
	const char *json_path;
	struct dp_netaddr local, peer;
	uint64_t session_id, cookie;
	const char *tcp_host;
	uint16_t tcp_port;
};

/* One measured row of a result table. */
#define BENCH_CDF_POINTS 106
extern const double bench_cdf_q[BENCH_CDF_POINTS];

struct bench_row {
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
	struct bench_row rows[BENCH_MAX_SIZES];
	/* tx/rx raw rates */
	double mpps, gbps_payload, gbps_wire;
	uint64_t packets;
	struct dp_engine_stats dp;
	struct dp_proto_stats proto;
	bool have_engine_stats;
	int errors;
};

int bench_raw(const struct bench_opts *o, struct bench_result *r);
int bench_transfer(const struct bench_opts *o, struct bench_result *r);
int bench_pingpong(const struct bench_opts *o, struct bench_result *r);
int bench_tcp(const struct bench_opts *o, struct bench_result *r);

/* Engine up on the chosen port with a session to the peer. */
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
void bench_print(const struct bench_opts *o, const struct bench_result *r);

#endif
