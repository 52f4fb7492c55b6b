/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus' text exposition format and the registry of collectors.
 * Families are written whole by their collectors; this file only knows the
 * format: names, label escaping, numbers, cumulative histogram buckets.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "metrics/metrics.h"

#define MX_MAX_COLLECTORS 32

void mx_writer_init(struct mx_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void mx_writer_fini(struct mx_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static void wprintf(struct mx_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wprintf(struct mx_writer *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->error != 0)
		return;
	for (;;) {
		size_t room = w->cap - w->len;

		va_start(ap, fmt);
		n = vsnprintf(w->buf != NULL ? w->buf + w->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			w->error = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			w->len += (size_t)n;
			return;
		}
		size_t cap = w->cap ? w->cap * 2 : 4096;
		char *grown;

		while (cap - w->len <= (size_t)n)
			cap *= 2;
		grown = realloc(w->buf, cap);
		if (grown == NULL) {
			w->error = -ENOMEM;
			return;
		}
		w->buf = grown;
		w->cap = cap;
	}
}

static int name_valid(const char *name)
{
	if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return 0;
	return 1;
}

void mx_family(struct mx_writer *w, const char *name, enum mx_type type, const char *help)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	if (!name_valid(name)) {
		w->error = -EINVAL;
		return;
	}
	/* HELP text escapes only backslash and newline; ours has neither. */
	wprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, types[type]);
}

static void sample_start(struct mx_writer *w, const char *name, const char *labels)
{
	if (!name_valid(name))
		w->error = -EINVAL;
	else if (labels != NULL && labels[0] != '\0')
		wprintf(w, "%s{%s} ", name, labels);
	else
		wprintf(w, "%s ", name);
}

/* The shortest of %.15g / %.17g that reads back as v. */
static const char *shortest(char buf[32], double v)
{
	snprintf(buf, 32, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, 32, "%.17g", v);
	return buf;
}

static void number(struct mx_writer *w, double v)
{
	char buf[32];

	if (isnan(v))
		wprintf(w, "NaN\n");
	else if (isinf(v))
		wprintf(w, "%sInf\n", v > 0 ? "+" : "-");
	else if (v == floor(v) && fabs(v) < 9e15)
		wprintf(w, "%.0f\n", v);
	else
		wprintf(w, "%s\n", shortest(buf, v));
}

void mx_sample(struct mx_writer *w, const char *name, const char *labels, double value)
{
	sample_start(w, name, labels);
	number(w, value);
}

void mx_sample_u64(struct mx_writer *w, const char *name, const char *labels, uint64_t value)
{
	sample_start(w, name, labels);
	wprintf(w, "%" PRIu64 "\n", value);
}

int mx_labels(char *buf, size_t size, ...)
{
	size_t len = 0;
	const char *key;
	va_list ap;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	va_start(ap, size);
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);
		int n = snprintf(buf + len, size - len, "%s%s=\"", len ? "," : "", key);

		if (n < 0 || (size_t)n >= size - len)
			goto full;
		len += (size_t)n;
		for (const char *p = value; *p != '\0'; p++) {
			const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" :
					  *p == '\n' ? "\\n" : NULL;
			size_t k = esc != NULL ? 2 : 1;

			if (len + k + 2 > size)
				goto full;
			memcpy(buf + len, esc != NULL ? esc : p, k);
			len += k;
		}
		buf[len++] = '"';
		buf[len] = '\0';
	}
	va_end(ap);
	return 0;
full:
	va_end(ap);
	buf[0] = '\0';
	return -ENOSPC;
}

void mx_histogram(struct mx_writer *w, const char *name, const char *labels,
		  const struct mx_histogram *h)
{
	char metric[128];
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
	uint64_t cumulative = 0;
	char le[32];

	if (snprintf(metric, sizeof(metric), "%s_bucket", name) >= (int)sizeof(metric) ||
	    !name_valid(name)) {
		w->error = -EINVAL;
		return;
	}
	for (unsigned int i = 0; i <= h->n_bounds; i++) {
		cumulative += h->counts[i];
		if (i < h->n_bounds)
			wprintf(w, "%s{%s%sle=\"%s\"} %" PRIu64 "\n", metric,
				labels != NULL ? labels : "", sep, shortest(le, h->bounds[i]),
				cumulative);
		else
			wprintf(w, "%s{%s%sle=\"+Inf\"} %" PRIu64 "\n", metric,
				labels != NULL ? labels : "", sep, cumulative);
	}
	snprintf(metric, sizeof(metric), "%s_sum", name);
	mx_sample(w, metric, labels, h->sum);
	snprintf(metric, sizeof(metric), "%s_count", name);
	mx_sample_u64(w, metric, labels, cumulative);
}

double mx_histogram_quantile(const struct mx_histogram *h, double q)
{
	uint64_t total = 0, below = 0;
	double rank;

	for (unsigned int i = 0; i <= h->n_bounds; i++)
		total += h->counts[i];
	if (total == 0)
		return NAN;
	rank = q * (double)total;
	for (unsigned int i = 0; i < h->n_bounds; i++) {
		double lo = i == 0 ? 0.0 : h->bounds[i - 1];

		if ((double)(below + h->counts[i]) >= rank && h->counts[i] > 0)
			return lo + (h->bounds[i] - lo) * (rank - (double)below) / (double)h->counts[i];
		below += h->counts[i];
	}
	return h->n_bounds > 0 ? h->bounds[h->n_bounds - 1] : NAN;
}

/* ---- registry ---------------------------------------------------------- */

struct mx_collector {
	mx_collect_fn *fn;
	void *arg;
};

struct mx_registry {
	/* Held for a whole scrape: removing a collector waits for the scrape
	 * that may be running it. */
	pthread_mutex_t lock;
	unsigned int n;
	struct mx_collector collectors[MX_MAX_COLLECTORS];
};

int mx_registry_create(struct mx_registry **out)
{
	struct mx_registry *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void mx_registry_destroy(struct mx_registry *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int collector_find(const struct mx_registry *r, mx_collect_fn *fn, void *arg)
{
	for (unsigned int i = 0; i < r->n; i++)
		if (r->collectors[i].fn == fn && r->collectors[i].arg == arg)
			return (int)i;
	return -ENOENT;
}

int mx_registry_add(struct mx_registry *r, mx_collect_fn *fn, void *arg)
{
	int rc = 0;

	if (r == NULL || fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (collector_find(r, fn, arg) >= 0)
		rc = -EEXIST;
	else if (r->n == MX_MAX_COLLECTORS)
		rc = -ENOMEM;
	else
		r->collectors[r->n++] = (struct mx_collector){fn, arg};
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int mx_registry_remove(struct mx_registry *r, mx_collect_fn *fn, void *arg)
{
	int i;

	pthread_mutex_lock(&r->lock);
	i = collector_find(r, fn, arg);
	if (i >= 0) {
		memmove(&r->collectors[i], &r->collectors[i + 1],
			(r->n - (unsigned int)i - 1) * sizeof(r->collectors[0]));
		r->n--;
	}
	pthread_mutex_unlock(&r->lock);
	return i >= 0 ? 0 : i;
}

int mx_registry_collect(struct mx_registry *r, char **text, size_t *len)
{
	struct mx_writer w;

	mx_writer_init(&w);
	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < r->n; i++)
		r->collectors[i].fn(r->collectors[i].arg, &w);
	pthread_mutex_unlock(&r->lock);
	wprintf(&w, "%s", ""); /* an empty scrape is still a text */
	if (w.error != 0) {
		int rc = w.error;

		mx_writer_fini(&w);
		return rc;
	}
	*text = w.buf;
	*len = w.len;
	return 0;
}

int mx_parse_listen(const char *text, char *addr, size_t addr_size, uint16_t *port)
{
	if (djc_parse_host_port(text, addr, addr_size, 0, port) != 0)
		return -EINVAL;
	if (strcmp(addr, "*") == 0)
		snprintf(addr, addr_size, "0.0.0.0");
	return 0;
}
