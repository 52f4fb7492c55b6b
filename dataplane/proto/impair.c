/* SPDX-License-Identifier: BSD-3-Clause */
/* Seeded fault injection and the hold queue; see dataplane/proto/impair.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/proto/impair.h"

struct dp_impair {
	struct dp_impair_config cfg;
	uint64_t rng[4]; /* xoshiro256** state */
	struct dp_impair_stats st;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(struct dp_impair *im)
{
	uint64_t *s = im->rng;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double next_unit(struct dp_impair *im)
{
	return (double)(next_u64(im) >> 11) * 0x1.0p-53;
}

static bool prob_valid(double p)
{
	return !isnan(p) && p >= 0.0 && p <= 1.0;
}

int dp_impair_create(const struct dp_impair_config *cfg, struct dp_impair **out)
{
	struct dp_impair *im;
	uint64_t seed;

	if (!cfg || !out || !prob_valid(cfg->drop) || !prob_valid(cfg->duplicate) ||
	    !prob_valid(cfg->corrupt) || !prob_valid(cfg->reorder) ||
	    !prob_valid(cfg->delay))
		return -EINVAL;
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	im->cfg = *cfg;
	seed = cfg->seed;
	for (int i = 0; i < 4; i++)
		im->rng[i] = splitmix64(&seed);
	*out = im;
	return 0;
}

void dp_impair_destroy(struct dp_impair *im)
{
	free(im);
}

void dp_impair_decide(struct dp_impair *im, uint64_t now_ns, uint32_t pkt_len,
		      struct dp_impair_verdict *v)
{
	/* Every packet draws the same numbers whatever happens to it, so one
	 * probability's outcome never shifts another's sequence. */
	double drop = next_unit(im), corrupt = next_unit(im), dup = next_unit(im);
	double delay = next_unit(im), reorder = next_unit(im);
	uint64_t where = next_u64(im), jitter = next_u64(im);
	const struct dp_impair_config *c = &im->cfg;

	memset(v, 0, sizeof(*v));
	im->st.packets++;
	if (drop < c->drop) {
		v->actions = DP_IMPAIR_DROP;
		im->st.dropped++;
		return;
	}
	if (corrupt < c->corrupt && pkt_len) {
		v->actions |= DP_IMPAIR_CORRUPT;
		v->corrupt_off = (uint32_t)((where >> 8) % pkt_len);
		v->corrupt_xor = (uint8_t)(1u << (where & 7));
		im->st.corrupted++;
	}
	if (dup < c->duplicate) {
		v->actions |= DP_IMPAIR_DUP;
		im->st.duplicated++;
	}
	if (delay < c->delay) {
		v->actions |= DP_IMPAIR_HOLD;
		v->release_ns = now_ns + c->delay_ns +
				(c->delay_jitter_ns ? jitter % c->delay_jitter_ns : 0);
		im->st.delayed++;
	} else if (reorder < c->reorder) {
		v->actions |= DP_IMPAIR_HOLD;
		v->release_ns = now_ns + c->reorder_ns;
		im->st.reordered++;
	}
}

void dp_impair_corrupt(const struct dp_impair_verdict *v, void *pkt, uint32_t len)
{
	if ((v->actions & DP_IMPAIR_CORRUPT) && v->corrupt_off < len)
		((uint8_t *)pkt)[v->corrupt_off] ^= v->corrupt_xor;
}

void dp_impair_get_stats(const struct dp_impair *im, struct dp_impair_stats *st)
{
	*st = im->st;
}

static int parse_prob(const char *val, double *out)
{
	char *end;
	double p = strtod(val, &end);

	if (end == val || *end || !prob_valid(p))
		return -EINVAL;
	*out = p;
	return 0;
}

static int parse_us(const char *val, uint64_t *out_ns)
{
	char *end;
	unsigned long long us = strtoull(val, &end, 10);

	if (end == val || *end || val[0] == '-' || us > UINT64_MAX / 1000)
		return -EINVAL;
	*out_ns = us * 1000;
	return 0;
}

static int parse_pair(const char *key, const char *val,
		      struct dp_impair_config *c)
{
	if (!strcmp(key, "drop"))
		return parse_prob(val, &c->drop);
	if (!strcmp(key, "dup"))
		return parse_prob(val, &c->duplicate);
	if (!strcmp(key, "corrupt"))
		return parse_prob(val, &c->corrupt);
	if (!strcmp(key, "reorder"))
		return parse_prob(val, &c->reorder);
	if (!strcmp(key, "delay"))
		return parse_prob(val, &c->delay);
	if (!strcmp(key, "delay_us"))
		return parse_us(val, &c->delay_ns);
	if (!strcmp(key, "jitter_us"))
		return parse_us(val, &c->delay_jitter_ns);
	if (!strcmp(key, "reorder_us"))
		return parse_us(val, &c->reorder_ns);
	if (!strcmp(key, "seed")) {
		char *end;

		c->seed = strtoull(val, &end, 0);
		return end == val || *end ? -EINVAL : 0;
	}
	return -EINVAL;
}

int dp_impair_config_parse(const char *text, struct dp_impair_config *cfg)
{
	struct dp_impair_config c;
	char buf[512], *save = NULL;

	if (!text || !cfg || strlen(text) >= sizeof(buf))
		return -EINVAL;
	c = *cfg;
	strcpy(buf, text);
	for (char *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if (parse_pair(tok, eq + 1, &c))
			return -EINVAL;
	}
	*cfg = c;
	return 0;
}

/* ---- hold queue: a binary min-heap on (release time, arrival order) ------- */

struct held {
	uint64_t release_ns;
	uint64_t seq;
	void *pkt;
};

struct dp_hold_queue {
	struct held *heap;
	uint32_t count;
	uint32_t cap;
	uint64_t seq;
};

int dp_hold_queue_create(uint32_t capacity, struct dp_hold_queue **out)
{
	struct dp_hold_queue *q;

	if (!capacity || !out)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->heap = calloc(capacity, sizeof(*q->heap));
	if (!q->heap) {
		free(q);
		return -ENOMEM;
	}
	q->cap = capacity;
	*out = q;
	return 0;
}

void dp_hold_queue_destroy(struct dp_hold_queue *q)
{
	if (!q)
		return;
	free(q->heap);
	free(q);
}

static bool held_before(const struct held *a, const struct held *b)
{
	return a->release_ns < b->release_ns ||
	       (a->release_ns == b->release_ns && a->seq < b->seq);
}

static void heap_swap(struct held *h, uint32_t a, uint32_t b)
{
	struct held t = h[a];

	h[a] = h[b];
	h[b] = t;
}

int dp_hold_queue_push(struct dp_hold_queue *q, void *pkt, uint64_t release_ns)
{
	uint32_t i;

	if (q->count == q->cap)
		return -ENOBUFS;
	i = q->count++;
	q->heap[i] = (struct held){release_ns, q->seq++, pkt};
	while (i && held_before(&q->heap[i], &q->heap[(i - 1) / 2])) {
		heap_swap(q->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

static void heap_pop_top(struct dp_hold_queue *q)
{
	uint32_t i = 0;

	q->heap[0] = q->heap[--q->count];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->count && held_before(&q->heap[l], &q->heap[m]))
			m = l;
		if (r < q->count && held_before(&q->heap[r], &q->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(q->heap, i, m);
		i = m;
	}
}

unsigned dp_hold_queue_pop_due(struct dp_hold_queue *q, uint64_t now_ns,
			       void **out, unsigned n)
{
	unsigned k = 0;

	while (k < n && q->count && q->heap[0].release_ns <= now_ns) {
		out[k++] = q->heap[0].pkt;
		heap_pop_top(q);
	}
	return k;
}

uint64_t dp_hold_queue_next(const struct dp_hold_queue *q)
{
	return q->count ? q->heap[0].release_ns : UINT64_MAX;
}

uint32_t dp_hold_queue_count(const struct dp_hold_queue *q)
{
	return q->count;
}
