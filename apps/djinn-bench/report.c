/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

static uint64_t pattern_word(uint64_t i, uint64_t seed)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	return x ^ (x >> 29);
}

void bench_pattern_fill(void *buf, uint64_t len, uint64_t seed)
{
	uint64_t words = len / 8, w;
	uint8_t *p = buf;

	for (uint64_t i = 0; i < words; i++) {
		w = pattern_word(i, seed);
		memcpy(p + 8 * i, &w, 8);
	}
	w = pattern_word(words, seed);
	memcpy(p + 8 * words, &w, len % 8);
}

bool bench_pattern_check(const void *buf, uint64_t len, uint64_t seed)
{
	uint64_t words = len / 8, w;
	const uint8_t *p = buf;

	for (uint64_t i = 0; i < words; i++) {
		w = pattern_word(i, seed);
		if (memcmp(p + 8 * i, &w, 8) != 0)
			return false;
	}
	w = pattern_word(words, seed);
	return memcmp(p + 8 * words, &w, len % 8) == 0;
}

unsigned int bench_auto_iters(uint64_t size)
{
	/* About 1 GiB per size, between 3 and 200 transfers. */
	uint64_t n = size ? (1ull << 30) / size : 200;

	return n < 3 ? 3 : n > 200 ? 200 : (unsigned int)n;
}

/* Big buffers from mmap, prefaulted, so page faults are not measured. */
void *bench_alloc(uint64_t len)
{
	void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bench_free(void *p, uint64_t len)
{
	if (p != NULL)
		munmap(p, len ? len : 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Quantiles of the CDF: every percent, then the tail more finely. */
const double bench_cdf_q[BENCH_CDF_POINTS] = {
	0.00, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.13,
	0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.20, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26, 0.27,
	0.28, 0.29, 0.30, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.38, 0.39, 0.40, 0.41,
	0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.50, 0.51, 0.52, 0.53, 0.54, 0.55,
	0.56, 0.57, 0.58, 0.59, 0.60, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69,
	0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.80, 0.81, 0.82, 0.83,
	0.84, 0.85, 0.86, 0.87, 0.88, 0.89, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97,
	0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 1.00,
};

void bench_percentiles(uint64_t *ns, unsigned int n, struct bench_row *row)
{
	if (n == 0)
		return;
	qsort(ns, n, sizeof(ns[0]), cmp_u64);
	row->p50_us = ns[(n - 1) * 50 / 100] / 1e3;
	row->p99_us = ns[(uint64_t)(n - 1) * 99 / 100] / 1e3;
	row->p999_us = ns[(uint64_t)(n - 1) * 999 / 1000] / 1e3;
	for (unsigned int i = 0; i < BENCH_CDF_POINTS; i++)
		row->cdf_us[i] = (float)(ns[(uint64_t)((n - 1) * bench_cdf_q[i])] / 1e3);
	row->n_cdf = BENCH_CDF_POINTS;
}

static const char *mode_name(enum bench_mode m)
{
	static const char *const names[] = {"tx", "rx", "transfer", "pingpong", "tcp", "memcpy",
					    "ctl"};

	return names[m];
}

static void print_table(const struct bench_opts *o, const struct bench_result *r)
{
	if (o->mode == MODE_TX || o->mode == MODE_RX) {
		printf("%-6s %10s %12s %10s %12s %12s\n", "mode", "payload", "packets", "Mpps",
		       "Gbit/s pay", "Gbit/s wire");
		printf("%-6s %10u %12lu %10.2f %12.2f %12.2f\n", mode_name(o->mode), o->payload,
		       (unsigned long)r->packets, r->mpps, r->gbps_payload, r->gbps_wire);
		return;
	}
	printf("%-9s %12s %6s %10s %10s %10s %10s %10s\n", r->mode, "size", "iters", "Gbit/s",
	       "best", "p50 us", "p99 us", "p999 us");
	for (unsigned int i = 0; i < r->n_rows; i++) {
		const struct bench_row *w = &r->rows[i];

		printf("%-9s %12lu %6u %10.2f %10.2f %10.1f %10.1f %10.1f\n",
		       w->label != NULL ? w->label : r->mode,
		       (unsigned long)w->size, w->iters, w->gbps, w->best_gbps, w->p50_us,
		       w->p99_us, w->p999_us);
	}
	for (unsigned int q = 0; r->n_queues > 1 && q < r->n_queues; q++)
		printf("queue %u: rx %lu tx %lu packets\n", q, (unsigned long)r->queue_rx[q],
		       (unsigned long)r->queue_tx[q]);
}

static void json_write(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	fprintf(f, "{\"mode\":\"%s\",\"role\":\"%s\",\"frame\":%u,\"crc\":%s,\"errors\":%d,"
		"\"queues\":%u,\"stripes\":%u,\"threads\":%u",
		mode_name(o->mode), o->role == ROLE_SEND ? "send" : "recv", o->frame_size,
		o->crc ? "true" : "false", r->errors, o->queues, o->stripes, o->threads);
	if (o->mode == MODE_TX || o->mode == MODE_RX)
		fprintf(f, ",\"payload\":%u,\"packets\":%lu,\"mpps\":%.3f,\"gbps_payload\":%.3f,"
			"\"gbps_wire\":%.3f", o->payload, (unsigned long)r->packets, r->mpps,
			r->gbps_payload, r->gbps_wire);
	fprintf(f, ",\"rows\":[");
	for (unsigned int i = 0; i < r->n_rows; i++) {
		const struct bench_row *w = &r->rows[i];

		fprintf(f, "%s{\"size\":%lu,\"iters\":%u,\"gbps\":%.3f,\"best_gbps\":%.3f,"
			"\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f", i ? "," : "",
			(unsigned long)w->size, w->iters, w->gbps, w->best_gbps, w->p50_us,
			w->p99_us, w->p999_us);
		if (w->label != NULL)
			fprintf(f, ",\"label\":\"%s\"", w->label);
		if (w->n_cdf > 0) {
			/* [[quantile, us], ...]: the latency distribution. */
			fprintf(f, ",\"cdf_us\":[");
			for (unsigned int k = 0; k < w->n_cdf; k++)
				fprintf(f, "%s[%g,%.2f]", k ? "," : "", bench_cdf_q[k], w->cdf_us[k]);
			fprintf(f, "]");
		}
		fprintf(f, "}");
	}
	fprintf(f, "]");
	if (r->have_engine_stats) {
		fprintf(f, ",\"stats\":{\"rx_packets\":%lu,\"tx_packets\":%lu,\"retransmits\":%lu",
			(unsigned long)r->dp.rx_packets, (unsigned long)r->dp.tx_packets,
			(unsigned long)r->dp.retransmits);
		for (int i = 0; i < DP_DROP_MAX; i++)
			fprintf(f, ",\"drop_%s\":%lu", dp_drop_name(i),
				(unsigned long)r->dp.drops[i]);
		fprintf(f, ",\"idle_naps\":%lu,\"idle_sleeps\":%lu,\"idle_rx_wakes\":%lu",
			(unsigned long)r->dp.idle_naps, (unsigned long)r->dp.idle_sleeps,
			(unsigned long)r->dp.idle_rx_wakes);
		fprintf(f, ",\"rto_expired\":%lu,\"rto_spurious\":%lu,\"nacks_rx\":%lu,"
			"\"rejected\":%lu",
			(unsigned long)r->proto.rto_expired, (unsigned long)r->proto.rto_spurious,
			(unsigned long)r->proto.rx_nacks,
			(unsigned long)dp_proto_stats_rejected(&r->proto));
		for (int i = 1; i < DP_REJ_COUNT; i++)
			if (r->proto.rx_reject[i] != 0)
				fprintf(f, ",\"rej_%s\":%lu", dp_wire_reject_name(i),
					(unsigned long)r->proto.rx_reject[i]);
		fprintf(f, "}");
		fprintf(f, ",\"queue_packets\":[");
		for (unsigned int q = 0; q < r->n_queues; q++)
			fprintf(f, "%s{\"rx\":%lu,\"tx\":%lu}", q ? "," : "",
				(unsigned long)r->queue_rx[q], (unsigned long)r->queue_tx[q]);
		fprintf(f, "]");
	}
	fprintf(f, "}\n");
}

void bench_row_fill(struct bench_row *row, uint64_t size, unsigned int iters, uint64_t *ns)
{
	uint64_t total = 0, best = UINT64_MAX;

	for (unsigned int i = 0; i < iters; i++) {
		total += ns[i];
		best = ns[i] < best ? ns[i] : best;
	}
	row->size = size;
	row->iters = iters;
	row->gbps = total ? (double)size * 8 * iters / (double)total : 0;
	row->best_gbps = best ? (double)size * 8 / (double)best : 0;
	bench_percentiles(ns, iters, row);
}

void bench_print(const struct bench_opts *o, const struct bench_result *r)
{
	print_table(o, r);
	json_write(stdout, o, r);
	if (o->json_path != NULL) {
		FILE *f = fopen(o->json_path, "w");

		if (f == NULL) {
			perror(o->json_path);
			return;
		}
		json_write(f, o, r);
		fclose(f);
	}
	fflush(stdout);
}
