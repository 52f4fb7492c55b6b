/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * djinn-impair: forward frames between two ports, both ways, with loss,
 * reordering, duplication, corruption and delay (this kernel has no netem).
 *
 *   djinn-impair [EAL args with two ports] -- --impair SPEC [options]
 *
 * Runs on the main lcore. Each direction has its own seeded impairment and
 * hold queue, so a run with the same seed and traffic is repeatable.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "dataplane/proto/impair.h"

#define BURST 32
#define HOLD_MAX 8192

struct direction {
	const char *name;
	uint16_t in, out;
	struct dp_impair *impair;
	struct dp_hold_queue *hold;
	struct rte_mempool *clone_pool;
	uint64_t forwarded, tx_dropped;
	struct rte_mbuf *txq[BURST * 4];
	unsigned int n_txq;
};

struct impair_opts {
	char spec[2][256];
	int back_given;       /* --impair-back: spec[1] is its own */
	uint16_t frame_size;
	double duration_s;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(const char *prog)
{
	printf("Usage: %s [EAL args] -- --impair SPEC [options]\n"
	       "\n"
	       "EAL args must create exactly two ports, e.g.\n"
	       "  --vdev net_memif0,role=server,socket=/tmp/a.sock,socket-abstract=no\n"
	       "  --vdev net_memif1,role=server,socket=/tmp/b.sock,socket-abstract=no\n"
	       "Frames from port 0 go out of port 1 and back.\n"
	       "\n"
	       "Options:\n"
	       "  --impair SPEC        both directions, e.g. drop=0.05,reorder=0.05,reorder_us=50,\n"
	       "                       dup=0.01,corrupt=0.001,delay=0.1,delay_us=200,jitter_us=50,seed=1\n"
	       "  --impair-back SPEC   port 1 -> port 0 differently (default: as --impair)\n"
	       "  --frame BYTES        largest frame (default 9014)\n"
	       "  --duration SEC       stop after SEC seconds (default: until SIGINT/SIGTERM)\n"
	       "  --log-level LEVEL    err, warn, notice, info, debug\n",
	       prog);
}

static int parse_option(int c, const char *arg, void *opts)
{
	struct impair_opts *o = opts;

	switch (c) {
	case 'i':
		snprintf(o->spec[0], sizeof(o->spec[0]), "%s", arg);
		return 0;
	case 'b':
		snprintf(o->spec[1], sizeof(o->spec[1]), "%s", arg);
		o->back_given = 1;
		return 0;
	case 'f': return djc_opt_u16("--frame", arg, 128, UINT16_MAX, &o->frame_size);
	case 'd': return djc_opt_double("--duration", arg, 0, 1e9, &o->duration_s);
	case 'L': return djc_opt_log_level("--log-level", arg);
	default: return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, void *arg)
{
	static const struct option longopts[] = {
		{"impair", required_argument, NULL, 'i'}, {"impair-back", required_argument, NULL, 'b'},
		{"frame", required_argument, NULL, 'f'},  {"duration", required_argument, NULL, 'd'},
		{"log-level", required_argument, NULL, 'L'}, {NULL, 0, NULL, 0},
	};
	struct impair_opts *o = arg;
	int rc = djc_cli_getopt(argc, argv, "", longopts, parse_option, o, NULL);

	if (rc == 0 && !o->back_given)
		memcpy(o->spec[1], o->spec[0], sizeof(o->spec[0]));
	return rc;
}

static int direction_init(struct direction *d, const char *spec, uint64_t seed,
			  struct rte_mempool *clone_pool)
{
	struct dp_impair_config cfg = {.seed = seed};
	int rc = dp_impair_config_parse(spec, &cfg);

	if (rc != 0) {
		fprintf(stderr, "djinn-impair: bad impairment '%s'\n", spec);
		return rc;
	}
	d->clone_pool = clone_pool;
	rc = dp_impair_create(&cfg, &d->impair);
	return rc == 0 ? dp_hold_queue_create(HOLD_MAX, &d->hold) : rc;
}

static void tx_flush(struct direction *d)
{
	uint16_t sent = rte_eth_tx_burst(d->out, 0, d->txq, (uint16_t)d->n_txq);

	d->forwarded += sent;
	/* A full output ring is a loss like any other on a link. */
	rte_pktmbuf_free_bulk(d->txq + sent, d->n_txq - sent);
	d->tx_dropped += d->n_txq - sent;
	d->n_txq = 0;
}

static void tx_push(struct direction *d, struct rte_mbuf *m)
{
	if (d->n_txq == RTE_DIM(d->txq))
		tx_flush(d);
	d->txq[d->n_txq++] = m;
}

static void apply(struct direction *d, struct rte_mbuf *m, uint64_t now)
{
	struct dp_impair_verdict v;
	struct rte_mbuf *pkts[2] = {m, NULL};

	dp_impair_decide(d->impair, now, m->pkt_len, &v);
	if (v.actions & DP_IMPAIR_DROP) {
		rte_pktmbuf_free(m);
		return;
	}
	if ((v.actions & DP_IMPAIR_CORRUPT) && rte_pktmbuf_linearize(m) == 0)
		dp_impair_corrupt(&v, rte_pktmbuf_mtod(m, void *), m->data_len);
	if (v.actions & DP_IMPAIR_DUP)
		pkts[1] = rte_pktmbuf_copy(m, d->clone_pool, 0, UINT32_MAX);
	for (int i = 0; i < 2; i++) {
		if (pkts[i] == NULL)
			continue;
		if ((v.actions & DP_IMPAIR_HOLD) &&
		    dp_hold_queue_push(d->hold, pkts[i], v.release_ns) == 0)
			continue;
		tx_push(d, pkts[i]);
	}
}

static void forward(struct direction *d, uint64_t now)
{
	struct rte_mbuf *pkts[BURST];
	void *due[BURST];
	uint16_t n = rte_eth_rx_burst(d->in, 0, pkts, BURST);
	unsigned int held;

	for (uint16_t i = 0; i < n; i++)
		apply(d, pkts[i], now);
	held = dp_hold_queue_pop_due(d->hold, now, due, BURST);
	for (unsigned int i = 0; i < held; i++)
		tx_push(d, due[i]);
	if (d->n_txq != 0)
		tx_flush(d);
}

static void report(const struct direction *dirs)
{
	for (int i = 0; i < 2; i++) {
		struct dp_impair_stats s;

		dp_impair_get_stats(dirs[i].impair, &s);
		printf("%-8s packets %lu forwarded %lu dropped %lu duplicated %lu corrupted %lu "
		       "reordered %lu delayed %lu tx_full %lu\n", dirs[i].name,
		       (unsigned long)s.packets, (unsigned long)dirs[i].forwarded,
		       (unsigned long)s.dropped, (unsigned long)s.duplicated,
		       (unsigned long)s.corrupted, (unsigned long)s.reordered,
		       (unsigned long)s.delayed, (unsigned long)dirs[i].tx_dropped);
	}
	fflush(stdout);
}

static int ports_open(const struct impair_opts *o, struct dp_port *ports[2])
{
	if (rte_eth_dev_count_avail() != 2) {
		fprintf(stderr, "djinn-impair: needs exactly two ports, EAL has %u\n",
			rte_eth_dev_count_avail());
		return -EINVAL;
	}
	for (uint16_t p = 0; p < 2; p++) {
		struct dp_port_config cfg = {.port_id = p, .frame_size = o->frame_size,
					     .promiscuous = 1};
		int rc = dp_port_create(&cfg, &ports[p]);

		if (rc != 0)
			return rc;
	}
	return 0;
}

static bool link_up(uint16_t port)
{
	struct rte_eth_link link;

	return rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

/*
 * Stay off ports whose link is down: DPDK 22.11's memif unmaps its rings
 * when the peer goes while a burst may be running on them (as the engine's
 * lcores do, docs/DATAPLANE.md).
 */
static void run(struct direction *dirs, double duration_s)
{
	uint64_t end = duration_s > 0 ? djc_time_ns() + (uint64_t)(duration_s * 1e9) : UINT64_MAX;

	while (!stop && djc_time_ns() < end) {
		uint64_t now = djc_time_ns();

		if (!link_up(0) || !link_up(1)) {
			rte_delay_us_sleep(100);
			continue;
		}
		forward(&dirs[0], now);
		forward(&dirs[1], now);
	}
}

static void directions_free(struct direction *dirs)
{
	for (int i = 0; i < 2; i++) {
		void *left[BURST];
		unsigned int n;

		while (dirs[i].hold != NULL &&
		       (n = dp_hold_queue_pop_due(dirs[i].hold, UINT64_MAX, left, BURST)) != 0)
			rte_pktmbuf_free_bulk((struct rte_mbuf **)left, n);
		dp_hold_queue_destroy(dirs[i].hold);
		dp_impair_destroy(dirs[i].impair);
	}
}

int main(int argc, char **argv)
{
	struct impair_opts opts = {.frame_size = 9014};
	struct direction dirs[2] = {
		{.name = "0->1", .in = 0, .out = 1},
		{.name = "1->0", .in = 1, .out = 0},
	};
	struct dp_port *ports[2] = {NULL, NULL};
	struct rte_mempool *clone_pool = NULL;
	const struct djc_cli_tool tool = {
		.name = "djinn-impair", .usage = usage, .start = dp_eal_cli_start,
		.stop = dp_eal_cli_stop, .start_what = "EAL", .parse = parse_options, .opts = &opts,
	};
	int rc = djc_cli_begin(&tool, argc, argv);

	if (rc >= 0)
		return rc;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = ports_open(&opts, ports);
	if (rc == 0) {
		clone_pool = rte_pktmbuf_pool_create("impair_dup", 4096, 256, 0,
						     (uint16_t)(opts.frame_size + RTE_PKTMBUF_HEADROOM),
						     (int)rte_socket_id());
		rc = clone_pool ? 0 : -ENOMEM;
	}
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = direction_init(&dirs[i], opts.spec[i], 1 + (uint64_t)i, clone_pool);
	if (rc == 0) {
		printf("djinn-impair: forwarding port 0 <-> port 1 (%s | %s)\n", opts.spec[0],
		       opts.spec[1]);
		fflush(stdout);
		run(dirs, opts.duration_s);
		report(dirs);
	} else {
		fprintf(stderr, "djinn-impair: %s\n", dj_strerror(rc));
	}
	directions_free(dirs);
	dp_port_destroy(ports[0]);
	dp_port_destroy(ports[1]);
	rte_mempool_free(clone_pool);
	dp_eal_cleanup();
	return rc == 0 ? 0 : 1;
}
