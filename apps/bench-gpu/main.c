/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-gpu: checks and measures the GPU receive path.
 *
 *   bench-gpu [EAL args] -- [options]
 *
 * 1. verify: transfers of each --verify size through two net_ring ports and
 *    the rx sink into GPU memory (host memory without a GPU), copied back and
 *    compared byte for byte;
 * 2. bandwidth: cudaMemcpy pinned H2D vs the staged gather kernel on the
 *    same bytes, and their ratio; a read-only probe of the same fragments
 *    (the host's ceiling for any gather) and the copy mover (pinned chunks
 *    and the copy engine), with each mover's share of the probe.
 * Prints a table, then one JSON object (also to --json FILE).
 * Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "gpu/packer.h"
#include "bench_gpu.h"

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- [options]\n"
	       "  --gpu SPEC        GPU index or PCI address (default: the first)\n"
	       "  --host            use host memory even where a GPU is present\n"
	       "  --verify SIZES    net_ring transfer sizes, e.g. 1,1M,256M,1G (default); none\n"
	       "  --verify-queues LIST  then the largest --verify size again, spread over\n"
	       "                    each count of receive queues in LIST (e.g. 1,2,4,8; at\n"
	       "                    most 15): a net_ring pair, a sender thread and a\n"
	       "                    receive thread (its own placer state) per queue,\n"
	       "                    pinned to CPUs 1..2N; default: none\n"
	       "  --verify-prebuilt then each --verify-queues row again with every packet\n"
	       "                    built before the start (a pool per queue holding its\n"
	       "                    whole share): the receive side alone is timed\n"
	       "  --bench BYTES     bandwidth bench size (default 1G); 0: none\n"
	       "  --payload N       payload bytes per packet (default 1400)\n"
	       "  --burst N         packets per rx burst (default 32, at most 256)\n"
	       "  --gather-burst N  fragments per gather burst: the bandwidth rows submit\n"
	       "                    bursts of N, verify's placer gathers rx bursts into\n"
	       "                    bursts of up to N (default: the placer's, 128 under\n"
	       "                    4 KiB payloads, else one rx burst; at most 256)\n"
	       "  --mode M          persistent, launch, oneshot or all (default all); oneshot\n"
	       "                    is one djg_gather_list() over the whole list\n"

	       "  --blocks N        persistent kernel blocks (default: SMs/4, at least 32,\n"
	       "                    under 4 KiB payloads; 16 for larger ones)\n"
	       "  --mover M         verify through gather (the rx sink), copy (pinned\n"
	       "                    chunks and the copy engine) or both (default)\n"
	       "  --chunk SIZE      copy mover chunk size (default 4M)\n"
	       "  --chunks N        copy mover chunks (default 4)\n"
	       "  --reps N          bench repetitions, best and worst kept (default 5)\n"
	       "  --seed N          data pattern seed (default: time)\n"
	       "  --json FILE       also write the JSON result there\n"
	       "  --log-level L     err, warn, notice, info, debug\n",
	       prog);
}

struct bench_result *report_add(struct bench_report *rep, const char *what)
{
	struct bench_result *r = &rep->r[rep->n < (int)RTE_DIM(rep->r) ? rep->n++ : rep->n - 1];

	memset(r, 0, sizeof(*r));
	snprintf(r->what, sizeof(r->what), "%s", what);
	return r;
}

static int parse_sizes(const char *list, struct bench_opts *o)
{
	if (strcmp(list, "none") == 0) {
		o->n_verify = 0;
		return 0;
	}
	return djc_opt_size_list("--verify", list, 1, UINT64_MAX, o->verify, MAX_SIZES,
				 &o->n_verify);
}

static int parse_mover(const char *s, struct bench_opts *o)
{
	static const char *const names[] = {"gather", "copy", "both"};
	int i;
	int rc = djc_opt_choice("--mover", s, names, 3, &i);

	if (rc == 0)
		o->movers = i == 2 ? 3 : 1 << i;
	return rc;
}

static int parse_mode(const char *s, struct bench_opts *o)
{
	static const char *const names[] = {"persistent", "launch", "oneshot", "all"};
	int i;
	int rc = djc_opt_choice("--mode", s, names, 4, &i);

	if (rc == 0)
		o->modes = i == 3 ? 7 : 1 << i;
	return rc;
}

struct parsed {
	struct bench_opts *o;
	int force_host;
};

static int parse_option(int c, const char *arg, void *ctx)
{
	struct parsed *p = ctx;
	struct bench_opts *o = p->o;

	switch (c) {
	case 'g': o->gpu = arg; return 0;
	case 'H': p->force_host = 1; return 0;
	case 'v': return parse_sizes(arg, o);
	case 'P': o->prebuilt = 1; return 0;
	case 'Q': return djc_opt_size_list("--verify-queues", arg, 1, MAX_QUEUES, o->queues,
					   MAX_SIZES, &o->n_queues);
	case 'b': return djc_opt_size("--bench", arg, 0, UINT64_MAX, &o->bench_bytes);
	case 'p': return djc_opt_u32("--payload", arg, 1, 9000, &o->payload);
	case 'u': return djc_opt_u16("--burst", arg, 1, 256, &o->burst);
	case 'G': return djc_opt_u16("--gather-burst", arg, 1, DJG_PLACER_BURST_MAX,
				     &o->gather_burst);
	case 'm': return parse_mode(arg, o);
	case 'B': return djc_opt_u16("--blocks", arg, 1, UINT16_MAX, &o->blocks);
	case 'M': return parse_mover(arg, o);
	case 'c': return djc_opt_size("--chunk", arg, 64 * 1024, 1u << 30, &o->chunk_size);
	case 'C': return djc_opt_int("--chunks", arg, 2, DJG_PACKER_MAX_CHUNKS, &o->n_chunks);
	case 'r': return djc_opt_int("--reps", arg, 1, MAX_RUNS, &o->reps);
	case 's': return djc_opt_u32("--seed", arg, 0, UINT32_MAX, &o->seed);
	case 'j': o->json = arg; return 0;
	case 'L': return djc_opt_log_level("--log-level", arg);
	default: return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, void *arg)
{
	static const struct option longopts[] = {
		{"gpu", required_argument, NULL, 'g'}, {"host", no_argument, NULL, 'H'},
		{"verify", required_argument, NULL, 'v'}, {"bench", required_argument, NULL, 'b'},
		{"verify-queues", required_argument, NULL, 'Q'},
		{"verify-prebuilt", no_argument, NULL, 'P'},
		{"payload", required_argument, NULL, 'p'}, {"burst", required_argument, NULL, 'u'},
		{"gather-burst", required_argument, NULL, 'G'},
		{"mode", required_argument, NULL, 'm'}, {"blocks", required_argument, NULL, 'B'},
		{"reps", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
		{"mover", required_argument, NULL, 'M'}, {"chunk", required_argument, NULL, 'c'},
		{"chunks", required_argument, NULL, 'C'},
		{"json", required_argument, NULL, 'j'}, {"log-level", required_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};

	return djc_cli_getopt(argc, argv, "", longopts, parse_option, arg, NULL);
}

/* The read probe of @r's layout, or NULL. */
static const struct bench_result *probe_of(const struct bench_report *rep,
					   const struct bench_result *r)
{
	for (int i = 0; i < rep->n; i++)
		if (rep->r[i].probe && strcmp(rep->r[i].layout, r->layout) == 0 &&
		    rep->r[i].ok && rep->r[i].seconds > 0)
			return &rep->r[i];
	return NULL;
}

/* A mover's best time as a share of its layout's read probe (0: none). */
static double probe_share(const struct bench_report *rep, const struct bench_result *r)
{
	const struct bench_result *p = r->layout[0] != '\0' && !r->probe ? probe_of(rep, r) : NULL;

	return p != NULL && r->ok && r->seconds > 0 ? p->seconds / r->seconds : 0;
}

static void print_table(const struct bench_report *rep)
{
	printf("\n%-40s %14s %10s %10s %10s %7s %s\n", "what", "bytes", "ms", "GB/s",
	       "worst GB/s", "ratio", "check");
	for (int i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];

		printf("%-40s %14" PRIu64 " %10.3f %10.2f %10.2f %7s %s\n", r->what, r->bytes,
		       r->seconds * 1e3, r->gbytes_s,
		       r->worst_s > 0 ? r->bytes / r->worst_s / 1e9 : 0.0, "",
		       r->ok ? "ok" : "FAIL");
		if (r->ratio > 0 && r->ratio != 1)
			printf("%-40s %14s %10s %10s %10s %6.1f%%\n", "", "", "", "", "",
			       r->ratio * 100);
	}
	printf("\nshare of the read probe (same fragments, same run):\n");
	for (int i = 0; i < rep->n; i++)
		if (probe_share(rep, &rep->r[i]) > 0)
			printf("  %-40s %6.1f%%\n", rep->r[i].what,
			       probe_share(rep, &rep->r[i]) * 100);
}

/* A --verify-queues row: its queues, each one's receive and send rate. */
static void print_json_queues(FILE *f, const struct bench_result *r)
{
	fprintf(f, ", \"queues\": %u, \"gbits_per_s\": %.2f, \"lcores_gbytes_per_s\": [",
		r->queues, r->gbytes_s * 8);
	for (unsigned int q = 0; q < r->queues; q++)
		fprintf(f, "%s%.3f", q ? ", " : "", r->lcore_gbytes_s[q]);
	fprintf(f, "], \"senders_gbytes_per_s\": [");
	for (unsigned int q = 0; q < r->queues; q++)
		fprintf(f, "%s%.3f", q ? ", " : "", r->sender_gbytes_s[q]);
	fprintf(f, "], \"sends_into_full_ring\": %.4f, \"polls_empty\": %.4f", r->ring_full,
		r->polls_empty);
}

static void print_json(FILE *f, const struct bench_report *rep, const struct bench_opts *o)
{
	fprintf(f, "{\"device\": \"%s\", \"payload\": %u, \"burst\": %u, \"gather_burst\": %u, "
		"\"seed\": %u, \"results\": [", rep->device, o->payload, o->burst,
		bench_gather_burst(o), o->seed);
	for (int i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];

		fprintf(f, "%s\n  {\"what\": \"%s\", \"bytes\": %" PRIu64 ", \"seconds\": %.6f, "
			"\"worst_seconds\": %.6f, \"gbytes_per_s\": %.3f, "
			"\"ratio_to_memcpy\": %.4f, \"share_of_probe\": %.4f, \"ok\": %s",
			i ? "," : "", r->what, r->bytes, r->seconds, r->worst_s, r->gbytes_s,
			r->ratio, probe_share(rep, r), r->ok ? "true" : "false");
		if (r->queues > 0)
			print_json_queues(f, r);
		fprintf(f, "}");
	}
	fprintf(f, "\n]}\n");
}

static int16_t choose_gpu(const struct bench_opts *o, int force_host, struct bench_report *rep)
{
	struct djg_info info;
	int dev = force_host ? -DJ_ENOGPU : djg_find(o->gpu);

	if (dev < 0) {
		snprintf(rep->device, sizeof(rep->device), "host memory (%s)",
			 force_host ? "--host" : dj_strerror(dev));
		return DJG_HOST;
	}
	for (int i = 0; i < djg_count(); i++)
		if (djg_info_get(i, &info) == 0 && info.dev_id == dev)
			snprintf(rep->device, sizeof(rep->device), "%s (%s, %u SMs)", info.name,
				 info.pci_addr, info.processors);
	return dev;
}

int main(int argc, char **argv)
{
	static struct bench_report rep;
	struct dp_eal_options eal_opts = {0};
	struct bench_opts o = {
		.verify = {1, 1 << 20, 256 << 20, 1 << 30}, .n_verify = 4,
		.bench_bytes = 1 << 30, .payload = 1400, .burst = 32, .modes = 7, .reps = 5,
		.movers = 3, .chunk_size = DJG_RX_CHUNK_SIZE, .n_chunks = DJG_RX_CHUNKS,
		.seed = (unsigned int)time(NULL),
	};
	struct parsed parsed = {.o = &o};
	const struct djc_cli_tool tool = {
		.name = "bench-gpu", .usage = usage, .start = dp_eal_cli_start,
		.stop = dp_eal_cli_stop, .start_arg = &eal_opts, .start_what = "EAL",
		.parse = parse_options, .opts = &parsed,
	};
	int failed = 0, rc;
	int16_t dev;

	rc = djc_cli_begin(&tool, argc, argv);
	if (rc >= 0)
		return rc;
	dev = choose_gpu(&o, parsed.force_host, &rep);
	printf("bench-gpu: %s, payload %u B, rx burst %u, gather burst %u, seed %u\n",
	       rep.device, o.payload, o.burst, bench_gather_burst(&o), o.seed);
	if (o.n_verify > 0)
		failed |= run_verify(&o, dev, &rep) != 0;
	if (o.bench_bytes > 0 && dev != DJG_HOST)
		failed |= run_bandwidth(&o, dev, &rep) != 0;
	for (int i = 0; i < rep.n; i++)
		failed |= !rep.r[i].ok;
	print_table(&rep);
	print_json(stdout, &rep, &o);
	if (o.json != NULL) {
		FILE *f = fopen(o.json, "w");

		if (f != NULL) {
			print_json(f, &rep, &o);
			fclose(f);
		}
	}
	dp_eal_cleanup();
	return failed ? 1 : 0;
}
