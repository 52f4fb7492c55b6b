/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data plane's transfer trace (trace.h): per-thread preallocated
 * arrays of records, written without locks, dumped as TSV. Built only with
 * -Ddp_trace=true.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/djc.h"
#include "dataplane/proto/trace.h"

/* Threads that may record, and records per thread (DJ_DP_TRACE_RECS). */
#define TRACE_THREADS 16
#define TRACE_RECS_DEFAULT (1u << 17)

struct trace_rec {
	uint64_t ns;
	uint64_t cookie;
	uint64_t id;
	uint64_t len;
	uint8_t ev;
	uint8_t dir;
};

struct trace_buf {
	int tid;
	uint32_t n;
	uint64_t dropped;
	struct trace_rec *rec;
};

bool dp_trace_on;

static const char *const ev_names[DP_TR_N] = {
	[DP_TR_POST] = "post", [DP_TR_TAKE] = "take",
	[DP_TR_TX_FIRST] = "tx_first", [DP_TR_TX_LAST] = "tx_last",
	[DP_TR_RX_FIRST] = "rx_first", [DP_TR_RX_LAST] = "rx_last",
	[DP_TR_ACK_OUT] = "ack_out", [DP_TR_ACK_IN] = "ack_in",
	[DP_TR_DONE] = "done", [DP_TR_RELEASED] = "released", [DP_TR_RETURN] = "return",
	[DP_TR_ASSIST] = "assist", [DP_TR_ASSIST_END] = "assist_end",
};

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *prefix;
static uint32_t recs_per_thread;
static struct trace_buf bufs[TRACE_THREADS];
static atomic_uint claimed;
static atomic_ullong lost_threads;
static __thread struct trace_buf *self;

int dp_trace_open(void)
{
	const char *recs;
	int rc = 0;

	pthread_mutex_lock(&open_lock);
	if (dp_trace_on || (prefix = getenv("DJ_DP_TRACE")) == NULL || prefix[0] == '\0')
		goto out;
	recs = getenv("DJ_DP_TRACE_RECS");
	recs_per_thread = recs != NULL && atoi(recs) > 0 ? (uint32_t)atoi(recs) : TRACE_RECS_DEFAULT;
	/* Every array allocated and touched now: no page fault on the
	 * packet path later. */
	for (unsigned int i = 0; i < TRACE_THREADS; i++) {
		bufs[i].rec = calloc(recs_per_thread, sizeof(struct trace_rec));
		if (bufs[i].rec == NULL) {
			rc = -ENOMEM;
			goto error;
		}
		memset(bufs[i].rec, 0xff, (size_t)recs_per_thread * sizeof(struct trace_rec));
	}
	dp_trace_on = true;
	DJC_LOG(DJ_LOG_INFO, "dataplane", "tracing transfers into %s.%d.tsv", prefix, (int)getpid());
	goto out;
error:
	for (unsigned int i = 0; i < TRACE_THREADS; i++) {
		free(bufs[i].rec);
		bufs[i].rec = NULL;
	}
out:
	pthread_mutex_unlock(&open_lock);
	return rc;
}

void dp_trace_thread(void)
{
	unsigned int i;

	if (self != NULL)
		return;
	i = atomic_fetch_add(&claimed, 1);
	if (i >= TRACE_THREADS) {
		atomic_fetch_add(&lost_threads, 1);
		return;
	}
	self = &bufs[i];
	self->tid = (int)syscall(SYS_gettid);
}

void dp_trace_rec(enum dp_trace_ev ev, uint64_t cookie, uint64_t id, unsigned int dir,
		  uint64_t len, uint64_t now)
{
	struct trace_buf *b = self;
	struct trace_rec *r;

	if (b == NULL) {
		dp_trace_thread();
		if ((b = self) == NULL)
			return;
	}
	if (b->n == recs_per_thread) {
		b->dropped++;
		return;
	}
	r = &b->rec[b->n++];
	r->ns = now != 0 ? now : djc_time_ns();
	r->cookie = cookie;
	r->id = id;
	r->len = len;
	r->ev = (uint8_t)ev;
	r->dir = (uint8_t)dir;
}

int dp_trace_dump(void)
{
	unsigned int n = atomic_load(&claimed);
	uint64_t dropped = 0;
	char path[4096];
	FILE *f;

	if (!dp_trace_on)
		return 0;
	snprintf(path, sizeof(path), "%s.%d.tsv", prefix, (int)getpid());
	f = fopen(path, "a");
	if (f == NULL)
		return -errno;
	n = n < TRACE_THREADS ? n : TRACE_THREADS;
	fprintf(f, "#ns\tpid\ttid\tevent\tdir\tcookie\txfer\tlen\n");
	for (unsigned int i = 0; i < n; i++) {
		struct trace_buf *b = &bufs[i];

		for (uint32_t k = 0; k < b->n; k++) {
			const struct trace_rec *r = &b->rec[k];

			fprintf(f, "%" PRIu64 "\t%d\t%d\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n",
				r->ns, (int)getpid(), b->tid, ev_names[r->ev], r->dir ? "rx" : "tx",
				r->cookie, r->id, r->len);
		}
		dropped += b->dropped;
		b->n = 0;
		b->dropped = 0;
	}
	dropped += atomic_exchange(&lost_threads, 0);
	if (dropped != 0)
		fprintf(f, "#dropped\t%" PRIu64 "\n", dropped);
	if (fclose(f) != 0)
		return -errno;
	DJC_LOG(DJ_LOG_INFO, "dataplane", "transfer trace in %s (%" PRIu64 " records dropped)",
		path, dropped);
	return 0;
}
