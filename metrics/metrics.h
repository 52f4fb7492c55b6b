/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_METRICS_H
#define DJINN_METRICS_H

/**
 * @file
 * Metrics in Prometheus' text exposition format (version 0.0.4), a registry
 * of collectors, and an HTTP endpoint that serves them (libmicrohttpd, on its
 * own thread).
 *
 * A collector is a function that writes whole metric families (HELP, TYPE,
 * samples) when a scrape asks for them; it reads counters that their owners
 * publish (per-lcore seqcount snapshots, atomics), so a scrape never stalls
 * the data path. Modules add their own families by registering a collector:
 *
 *   mx_registry_create(&reg);
 *   mx_registry_add(reg, my_collect, my_state);      // e.g. the fleet's members
 *   mx_http_start(reg, "127.0.0.1", 9464, &http);    // GET /metrics
 *
 * Names follow Prometheus' conventions (docs/OBSERVABILITY.md): a djinn_
 * prefix, base units (bytes, seconds) named in the suffix, _total on
 * counters, few labels with bounded values.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mx_type {
	MX_COUNTER,
	MX_GAUGE,
	MX_HISTOGRAM,
};

/** A growing text buffer that collectors write families into. */
struct mx_writer {
	char *buf;
	size_t len, cap;
	/** 0, -ENOMEM, or -EINVAL (a bad name); the scrape then answers 500. */
	int error;
};

void mx_writer_init(struct mx_writer *w);
/** Free the text. */
void mx_writer_fini(struct mx_writer *w);

/** The HELP and TYPE lines that open a family. A name outside
 *  [a-zA-Z_:][a-zA-Z0-9_:]* sets error -EINVAL. */
void mx_family(struct mx_writer *w, const char *name, enum mx_type type, const char *help);

/** One sample "name{labels} value"; labels NULL or "" for none, else as
 *  built by mx_labels(). Integers print exactly, others with 17 digits,
 *  infinities as +Inf / -Inf. */
void mx_sample(struct mx_writer *w, const char *name, const char *labels, double value);
/** A counter sample printed as an exact 64-bit integer. */
void mx_sample_u64(struct mx_writer *w, const char *name, const char *labels, uint64_t value);

/**
 * Label pairs `key="value",...` into buf from NULL-terminated (key, value)
 * arguments; values escaped as the format wants (\\, \", \n).
 * @return 0, or -ENOSPC where buf is too small (buf then holds "").
 */
int mx_labels(char *buf, size_t size, ...) __attribute__((sentinel));

/** A histogram's state. counts[i] (not cumulative) holds the observations
 *  in (bounds[i-1], bounds[i]]; counts[n_bounds] those above the last
 *  bound. The written _count is the sum of counts, so buckets and count
 *  always agree. */
struct mx_histogram {
	unsigned int n_bounds;
	const double *bounds;     /**< increasing, in the metric's unit */
	const uint64_t *counts;   /**< n_bounds + 1 entries */
	double sum;
};

/** name_bucket{labels,le=...} (cumulative, then +Inf), name_sum, name_count. */
void mx_histogram(struct mx_writer *w, const char *name, const char *labels,
		  const struct mx_histogram *h);

/**
 * The q-quantile (0..1) of a histogram's observations, interpolated
 * linearly inside the bucket it falls in, as Prometheus' histogram_quantile
 * does (the first bucket starts at 0; one beyond the last bound answers that
 * bound). NaN where there are no observations.
 */
double mx_histogram_quantile(const struct mx_histogram *h, double q);

/** Writes whole families into w; called on the HTTP thread, once per scrape. */
typedef void mx_collect_fn(void *arg, struct mx_writer *w);

struct mx_registry;

/** @return 0, -ENOMEM. The caller owns *out: mx_registry_destroy(). */
int mx_registry_create(struct mx_registry **out);
/** Free the registry (collectors are not called again). NULL-safe. */
void mx_registry_destroy(struct mx_registry *r);

/**
 * Add a collector; scrapes call collectors in the order they were added.
 * @return 0, -EINVAL (NULL fn), -EEXIST (fn with arg already there), -ENOMEM.
 */
int mx_registry_add(struct mx_registry *r, mx_collect_fn *fn, void *arg);

/**
 * Remove a collector. Returns once no scrape runs it any more, so arg may
 * be freed right after.
 * @return 0, -ENOENT.
 */
int mx_registry_remove(struct mx_registry *r, mx_collect_fn *fn, void *arg);

/**
 * Run every collector into one text, NUL-terminated; the caller frees *text.
 * @return 0, -ENOMEM, -EINVAL (a collector wrote a bad name).
 */
int mx_registry_collect(struct mx_registry *r, char **text, size_t *len);

/**
 * Split "ADDR:PORT" (IPv4 address or "*" for any, port 0-65535; port 0
 * picks a free one).
 * @return 0, -EINVAL.
 */
int mx_parse_listen(const char *text, char *addr, size_t addr_size, uint16_t *port);

struct mx_http;

/**
 * Serve GET /metrics (and a pointer to it on /) from r over HTTP on
 * addr:port, on a thread of its own. r is borrowed and must outlive the
 * server.
 * @return 0, -EINVAL (bad address), -EADDRINUSE and other bind errors,
 *  -ENOTSUP (built without libmicrohttpd).
 */
int mx_http_start(struct mx_registry *r, const char *addr, uint16_t port,
		  struct mx_http **out);
/** The bound port (useful with port 0). */
uint16_t mx_http_port(const struct mx_http *h);
/** Stop serving (joins the thread, closes connections) and free. NULL-safe. */
void mx_http_stop(struct mx_http *h);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_METRICS_H */
