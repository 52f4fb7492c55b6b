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

void bench_percentiles(uint64_t *ns, unsigned int n, struct bench_row *row)
{
	if (n == 0)
		return;
	qsort(ns, n, sizeof(ns[0]), cmp_u64);
	row->p50_us = ns[(n - 1) * 50 / 100] / 1e3;
	row->p99_us = ns[(uint64_t)(n - 1) * 99 / 100] / 1e3;
	row->p999_us = ns[(uint64_t)(n - 1) * 999 / 1000] / 1e3;
}

static const char *mode_name(enum bench_mode m)
{
	static const char *const names[] = {"tx", "rx", "transfer", "pingpong", "tcp"};

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

		printf("%-9s %12lu %6u %10.2f %10.2f %10.1f %10.1f %10.1f\n", r->mode,
		       (unsigned long)w->size, w->iters, w->gbps, w->best_gbps, w->p50_us,
		       w->p99_us, w->p999_us);
	}
}

static void json_write(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	fprintf(f, "{\"mode\":\"%s\",\"role\":\"%s\",\"frame\":%u,\"crc\":%s,\"errors\":%d",
		mode_name(o->mode), o->role == ROLE_SEND ? "send" : "recv", o->frame_size,
		o->crc ? "true" : "false", r->errors);
	if (o->mode == MODE_TX || o->mode == MODE_RX)
		fprintf(f, ",\"payload\":%u,\"packets\":%lu,\"mpps\":%.3f,\"gbps_payload\":%.3f,"
			"\"gbps_wire\":%.3f", o->payload, (unsigned long)r->packets, r->mpps,
			r->gbps_payload, r->gbps_wire);
	fprintf(f, ",\"rows\":[");
	for (unsigned int i = 0; i < r->n_rows; i++) {
		const struct bench_row *w = &r->rows[i];

		fprintf(f, "%s{\"size\":%lu,\"iters\":%u,\"gbps\":%.3f,\"best_gbps\":%.3f,"
			"\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f}", i ? "," : "",
			(unsigned long)w->size, w->iters, w->gbps, w->best_gbps, w->p50_us,
			w->p99_us, w->p999_us);
	}
	fprintf(f, "]");
	if (r->have_engine_stats) {
		fprintf(f, ",\"stats\":{\"rx_packets\":%lu,\"tx_packets\":%lu,\"retransmits\":%lu",
			(unsigned long)r->dp.rx_packets, (unsigned long)r->dp.tx_packets,
			(unsigned long)r->dp.retransmits);
		for (int i = 0; i < DP_DROP_MAX; i++)
			fprintf(f, ",\"drop_%s\":%lu", dp_drop_name(i),
				(unsigned long)r->dp.drops[i]);
		fprintf(f, ",\"rto_expired\":%lu,\"nacks_rx\":%lu,\"rejected\":%lu",
			(unsigned long)r->proto.rto_expired, (unsigned long)r->proto.rx_nacks,
			(unsigned long)dp_proto_stats_rejected(&r->proto));
		for (int i = 1; i < DP_REJ_COUNT; i++)
			if (r->proto.rx_reject[i] != 0)
				fprintf(f, ",\"rej_%s\":%lu", dp_wire_reject_name(i),
					(unsigned long)r->proto.rx_reject[i]);
		fprintf(f, "}");
	}
	fprintf(f, "}\n");
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
