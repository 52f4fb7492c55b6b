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
 *    same bytes, and their ratio.
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
#include "common/djc.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "bench_gpu.h"

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- [options]\n"
	       "  --gpu SPEC        GPU index or PCI address (default: the first)\n"
	       "  --host            use host memory even where a GPU is present\n"
	       "  --verify SIZES    net_ring transfer sizes, e.g. 1,1M,256M,1G (default); none\n"
	       "  --bench BYTES     bandwidth bench size (default 1G); 0: none\n"
	       "  --payload N       payload bytes per packet (default 1400)\n"
	       "  --burst N         packets per burst (default 32, at most 256)\n"
	       "  --mode M          persistent, launch, oneshot or all (default all); oneshot\n"
	       "                    is one djg_gather_list() over the whole list\n"

	       "  --blocks N        persistent kernel blocks (default: SMs, SMs/2 for\n"
	       "                    payloads of 4 KiB and more)\n"
	       "  --reps N          bench repetitions, best is kept (default 5)\n"
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

static int parse_sizes(char *list, struct bench_opts *o)
{
	o->n_verify = 0;
	if (strcmp(list, "none") == 0)
		return 0;
	for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
		if (o->n_verify == MAX_SIZES || bench_parse_size(tok, &o->verify[o->n_verify]) != 0 ||
		    o->verify[o->n_verify] == 0)
			return -EINVAL;
		o->n_verify++;
	}
	return 0;
}

static int parse_mode(const char *s, struct bench_opts *o)
{
	static const char *const names[] = {"persistent", "launch", "oneshot"};

	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			o->modes = 1 << i;
			return 0;
		}
	if (strcmp(s, "all") != 0)
		return -EINVAL;
	o->modes = 7;
	return 0;
}

static int parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *v)
{
	char *end;

	*v = strtoul(s, &end, 0);
	return end != s && *end == '\0' && *v >= min && *v <= max ? 0 : -EINVAL;
}

static int parse_option(int c, char *arg, struct bench_opts *o, int *force_host)
{
	enum dj_log_level level;
	unsigned long v = 0;
	int rc = 0;

	switch (c) {
	case 'g': o->gpu = arg; break;
	case 'H': *force_host = 1; break;
	case 'v': rc = parse_sizes(arg, o); break;
	case 'b': rc = bench_parse_size(arg, &o->bench_bytes); break;
	case 'p': rc = parse_number(arg, 1, 9000, &v); o->payload = v; break;
	case 'u': rc = parse_number(arg, 1, 256, &v); o->burst = v; break;
	case 'm': rc = parse_mode(arg, o); break;
	case 'B': rc = parse_number(arg, 1, 65535, &v); o->blocks = v; break;
	case 'r': rc = parse_number(arg, 1, MAX_RUNS, &v); o->reps = v; break;
	case 's': rc = parse_number(arg, 0, UINT32_MAX, &v); o->seed = v; break;
	case 'j': o->json = arg; break;
	case 'L': rc = djc_log_level_parse(arg, &level); dj_log_set_level(level); break;
	default: rc = -EINVAL;
	}
	if (rc != 0 && c != '?')
		fprintf(stderr, "bench-gpu: bad value '%s'\n", arg);
	return rc;
}

static int parse_options(int argc, char **argv, struct bench_opts *o, int *force_host)
{
	static const struct option longopts[] = {
		{"gpu", required_argument, NULL, 'g'}, {"host", no_argument, NULL, 'H'},
		{"verify", required_argument, NULL, 'v'}, {"bench", required_argument, NULL, 'b'},
		{"payload", required_argument, NULL, 'p'}, {"burst", required_argument, NULL, 'u'},
		{"mode", required_argument, NULL, 'm'}, {"blocks", required_argument, NULL, 'B'},
		{"reps", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
		{"json", required_argument, NULL, 'j'}, {"log-level", required_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		if (parse_option(c, optarg, o, force_host) != 0)
			return -EINVAL;
	return optind == argc ? 0 : -EINVAL;
}

static void print_table(const struct bench_report *rep)
{
	printf("\n%-40s %14s %10s %10s %7s %s\n", "what", "bytes", "ms", "GB/s", "ratio", "check");
	for (int i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];

		printf("%-40s %14" PRIu64 " %10.3f %10.2f %7s %s\n", r->what, r->bytes,
		       r->seconds * 1e3, r->gbytes_s, "", r->ok ? "ok" : "FAIL");
		if (r->ratio > 0 && r->ratio != 1)
			printf("%-40s %14s %10s %10s %6.1f%%\n", "", "", "", "", r->ratio * 100);
	}
}

static void print_json(FILE *f, const struct bench_report *rep, const struct bench_opts *o)
{
	fprintf(f, "{\"device\": \"%s\", \"payload\": %u, \"burst\": %u, \"seed\": %u, \"results\": [",
		rep->device, o->payload, o->burst, o->seed);
	for (int i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];

		fprintf(f, "%s\n  {\"what\": \"%s\", \"bytes\": %" PRIu64 ", \"seconds\": %.6f, "
			"\"gbytes_per_s\": %.3f, \"ratio_to_memcpy\": %.4f, \"ok\": %s}",
			i ? "," : "", r->what, r->bytes, r->seconds, r->gbytes_s, r->ratio,
			r->ok ? "true" : "false");
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
		.seed = (unsigned int)time(NULL),
	};
	int app_argc, force_host = 0, failed = 0, rc;
	char **app_argv;
	int16_t dev;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(argv[0]);
			return 0;
		}
	rc = dp_eal_init(argc, argv, &eal_opts, &app_argc, &app_argv);
	if (rc != 0) {
		fprintf(stderr, "bench-gpu: cannot start EAL: %s\n", dj_strerror(rc));
		return 1;
	}
	if (parse_options(app_argc, app_argv, &o, &force_host) != 0) {
		usage(argv[0]);
		dp_eal_cleanup();
		return 2;
	}
	dev = choose_gpu(&o, force_host, &rep);
	printf("bench-gpu: %s, payload %u B, burst %u, seed %u\n", rep.device, o.payload,
	       o.burst, o.seed);
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
