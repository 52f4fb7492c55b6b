/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The transfer trace (dataplane/proto/trace.h): a simulated transfer's
 * protocol events land in the file, once each, in causal order, with the
 * transfer's cookie, id, direction and length; records from another thread
 * go to that thread's own array; a dump empties the arrays. Needs a build
 * with -Ddp_trace=true; skipped (77) otherwise.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "sim.h"
#include "dataplane/proto/trace.h"

#ifdef DJ_DP_TRACE
#define SEC 1000000000ull
#define COOKIE 0x5eedull
#define MAX_RECS 64

struct rec {
	uint64_t ns, cookie, id, len;
	int tid;
	char ev[16], dir[4];
};

static char prefix[64], path[96];

/* The dump's records (the header and comments skipped). */
static unsigned int dump_read(struct rec *r, unsigned int max)
{
	FILE *f = fopen(path, "r");
	char line[256];
	unsigned int n = 0;

	CU_ASSERT_FATAL(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		int pid;

		if (line[0] == '#')
			continue;
		CU_ASSERT_EQUAL(sscanf(line, "%" SCNu64 "\t%d\t%d\t%15s\t%3s\t%" SCNu64 "\t%" SCNu64
				       "\t%" SCNu64, &r[n].ns, &pid, &r[n].tid, r[n].ev, r[n].dir,
				       &r[n].cookie, &r[n].id, &r[n].len), 8);
		CU_ASSERT_EQUAL(pid, (int)getpid());
		n++;
	}
	fclose(f);
	return n;
}

static const struct rec *find(const struct rec *r, unsigned int n, const char *ev, const char *dir)
{
	const struct rec *hit = NULL;

	for (unsigned int i = 0; i < n; i++) {
		if (strcmp(r[i].ev, ev) != 0 || strcmp(r[i].dir, dir) != 0)
			continue;
		CU_ASSERT_PTR_NULL(hit); /* once each */
		hit = &r[i];
	}
	return hit;
}

static void *other_thread(void *arg)
{
	(void)arg;
	DP_TRACE(DP_TR_POST, 7, 8, DP_XFER_TX, 9);
	return NULL;
}

static void test_transfer_events(void)
{
	static const char *const order[] = {"rx_first", "rx_last", "ack_out", "ack_in"};
	struct dp_channel_config cfg;
	struct rec r[MAX_RECS];
	const struct rec *at[4];
	uint64_t len = 5 * 1416 + 3;
	uint8_t *src = sim_pattern(len, 1), *dst = calloc(1, len);
	struct sim sim;
	pthread_t t;
	unsigned int n;

	dp_channel_config_init(&cfg);
	cfg.cookie = COOKIE;
	CU_ASSERT_FATAL(sim_init(&sim, &cfg, &cfg, NULL, NULL) == 0);
	CU_ASSERT_FATAL(dp_channel_recv(sim.ep[1], 42, dst, len, DJ_MEM_HOST, NULL, sim.now) == 0);
	CU_ASSERT_FATAL(dp_channel_send(sim.ep[0], 42, src, len, DJ_MEM_HOST, NULL, sim.now) == 0);
	CU_ASSERT(sim_run(&sim, (unsigned[2]){1, 1}, sim.now + 10 * SEC));
	sim_fini(&sim);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, other_thread, NULL) == 0);
	pthread_join(t, NULL);
	CU_ASSERT_FATAL(dp_trace_dump() == 0);

	n = dump_read(r, MAX_RECS);
	CU_ASSERT_EQUAL(n, 5);
	for (unsigned int i = 0; i < 4; i++) {
		at[i] = find(r, n, order[i], i == 3 ? "tx" : "rx");
		CU_ASSERT_FATAL(at[i] != NULL);
		CU_ASSERT_EQUAL(at[i]->cookie, COOKIE);
		CU_ASSERT_EQUAL(at[i]->id, 42);
		CU_ASSERT_EQUAL(at[i]->len, len);
		CU_ASSERT_EQUAL(at[i]->tid, r[0].tid);
		if (i > 0)
			CU_ASSERT(at[i]->ns >= at[i - 1]->ns);
	}
	at[0] = find(r, n, "post", "tx");
	CU_ASSERT_FATAL(at[0] != NULL);
	CU_ASSERT(at[0]->tid != r[0].tid && at[0]->cookie == 7 && at[0]->id == 8 && at[0]->len == 9);

	/* The arrays were emptied: a second dump appends a header only. */
	CU_ASSERT_FATAL(dp_trace_dump() == 0);
	CU_ASSERT_EQUAL(dump_read(r, MAX_RECS), 5);
	free(src);
	free(dst);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"a transfer's events, in order, per thread", test_transfer_events},
		{NULL, NULL},
	};

	snprintf(prefix, sizeof(prefix), "/tmp/djinn-test-trace.%d", (int)getpid());
	snprintf(path, sizeof(path), "%s.%d.tsv", prefix, (int)getpid());
	setenv("DJ_DP_TRACE", prefix, 1);
	setenv("DJ_DP_TRACE_RECS", "64", 1);
	if (dp_trace_open() != 0 || !dp_trace_on)
		dj_test_skip("DJ_DP_TRACE did not turn the trace on");
	dj_test_add_suite("proto_trace", NULL, NULL, cases);
	int rc = dj_test_main(argc, argv);

	unlink(path);
	return rc;
}
#else
int main(void)
{
	dj_test_skip("built without -Ddp_trace=true: no trace to test");
}
#endif
