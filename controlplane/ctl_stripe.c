/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stripes (ctl_stripe.h): the plan of a striped transfer and the data-path
 * calls over its parts, shared by the client and the server.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl_stripe.h"

int ctl_stripe_plan(struct ctl_stripe *st, uint64_t cookie, unsigned int stripes,
		    unsigned int n, unsigned int stripe, void *base, uint64_t nbytes)
{
	uint64_t part;

	if (stripes == 0 || stripes > CTL_STRIPES_MAX || n == 0 || n > stripes ||
	    (n == 1 && stripe >= stripes) || (n > 1 && stripe != 0))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->n = n;
	if (n == 1) {
		st->part[0] = (struct dp_send_part){cookie + stripe, base, nbytes};
		return 0;
	}
	part = (nbytes + n - 1) / n;
	part = (part + CTL_STRIPE_ALIGN - 1) / CTL_STRIPE_ALIGN * CTL_STRIPE_ALIGN;
	/* Every part carries bytes: a part of none would be a transfer the
	 * receiver waits for and the sender never starts. */
	if ((n - 1) * part >= nbytes)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = i * part, len = i + 1 < n ? part : nbytes - off;

		st->off[i] = off;
		st->part[i] = (struct dp_send_part){cookie + i, (uint8_t *)base + off, len};
	}
	return 0;
}

unsigned int ctl_stripe_parts(uint64_t nbytes, unsigned int stripes, uint64_t min_part)
{
	uint64_t n = min_part != 0 ? nbytes / min_part : stripes;

	n = n < stripes ? n : stripes;
	return n >= 2 ? (unsigned int)n : 1;
}

unsigned int ctl_stripe_open(const struct dj_datapath *dp, uint64_t id, uint64_t cookie,
			     unsigned int n, const struct dp_endpoint *peer, int *rc)
{
	unsigned int i = 0;

	*rc = 0;
	if (dp->ops->session_open == NULL)
		return n;
	for (; i < n; i++) {
		*rc = dp->ops->session_open(dp->ctx, id + i, cookie + i, peer);
		if (*rc != 0)
			break;
	}
	return i;
}

void ctl_stripe_close(const struct dj_datapath *dp, uint64_t cookie, unsigned int n)
{
	for (unsigned int i = 0; dp->ops->session_close != NULL && i < n; i++)
		dp->ops->session_close(dp->ctx, cookie + i);
}

int ctl_stripe_expect(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer, enum dj_mem_kind mem)
{
	int rc = 0;
	unsigned int i;

	for (i = 0; i < st->n && rc == 0; i++) {
		const struct dp_send_part *p = &st->part[i];

		rc = dp->ops->expect(dp->ctx, p->cookie, xfer, (void *)(uintptr_t)p->src, p->len,
				     mem);
	}
	/* Part i - 1 failed: nothing of this transfer stays armed. */
	while (rc != 0 && --i > 0)
		dp->ops->cancel(dp->ctx, st->part[i - 1].cookie, xfer);
	return rc;
}

int ctl_stripe_wait(const struct dj_datapath *dp, const struct ctl_stripe *st,
		    uint64_t xfer, uint32_t timeout_ms)
{
	int rc = 0;

	for (unsigned int i = 0; i < st->n && rc == 0; i++)
		rc = dp->ops->wait(dp->ctx, st->part[i].cookie, xfer, timeout_ms);
	return rc;
}

int ctl_stripe_cancel(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer)
{
	int rc = 0;

	for (unsigned int i = 0; i < st->n; i++)
		if (dp->ops->cancel(dp->ctx, st->part[i].cookie, xfer) == -EDEADLK)
			rc = -EDEADLK;
	return rc;
}

int ctl_stripe_send(const struct dj_datapath *dp, const struct dp_endpoint *peer,
		    const struct ctl_stripe *st, uint64_t xfer, enum dj_mem_kind mem,
		    uint32_t timeout_ms)
{
	int rc = 0;

	if (st->n > 1 && mem == DJ_MEM_HOST && dp->ops->send_parts != NULL)
		return dp->ops->send_parts(dp->ctx, st->part, st->n, xfer, timeout_ms);
	for (unsigned int i = 0; i < st->n && rc == 0; i++)
		rc = dp->ops->send(dp->ctx, peer, st->part[i].cookie, xfer, st->part[i].src,
				   st->part[i].len, mem, timeout_ms);
	return rc;
}

int ctl_stripe_pinned(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer)
{
	if (dp->ops->send_pinned == NULL)
		return 1;
	if (st->n == 1)
		return dp->ops->send_pinned(dp->ctx, st->part[0].cookie, xfer) != 0;
	for (unsigned int i = 0; i < st->n; i++) {
		int rc = dp->ops->send_pinned(dp->ctx, st->part[i].cookie, xfer);

		if (rc != 0 && rc != -ENOENT)
			return 1;
	}
	return 0;
}

/* The optional integer key of msg in lo..hi: *val untouched where absent. */
static int field_in(const cJSON *msg, const char *key, unsigned int lo, unsigned int hi,
		    unsigned int *val, char *why)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(msg, key);

	if (it == NULL)
		return 0;
	if (!cJSON_IsNumber(it) || it->valuedouble < lo || it->valuedouble > hi ||
	    it->valuedouble != (double)(unsigned int)it->valuedouble) {
		snprintf(why, CTL_ERRMSG_MAX, "field '%s' must be an integer from %u to %u", key,
			 lo, hi);
		return -EINVAL;
	}
	*val = (unsigned int)it->valuedouble;
	return 0;
}

int ctl_stripe_fields(const cJSON *msg, unsigned int *n, unsigned int *stripe, char *why)
{
	*n = 1;
	*stripe = 0;
	if (field_in(msg, "stripes", 1, CTL_STRIPES_MAX, n, why) != 0 ||
	    field_in(msg, "stripe", 0, CTL_STRIPES_MAX - 1, stripe, why) != 0)
		return -EINVAL;
	return 0;
}

void ctl_stripe_add_fields(cJSON *msg, unsigned int n, unsigned int stripe)
{
	if (n > 1)
		cJSON_AddNumberToObject(msg, "stripes", n);
	else if (stripe != 0)
		cJSON_AddNumberToObject(msg, "stripe", stripe);
}

int ctl_stripe_session_field(const cJSON *msg, unsigned int *want, char *why)
{
	*want = 0;
	return field_in(msg, "stripes", 1, CTL_STRIPES_MAX, want, why);
}
