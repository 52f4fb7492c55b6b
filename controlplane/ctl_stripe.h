/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_STRIPE_H
#define DJINN_CTL_STRIPE_H

/*
 * Stripes: one control-plane session over several data-plane sessions, one
 * per queue pair, so that a large tensor moves on as many polling lcores at
 * once and small ones spread over them (docs/CONTROL.md, "Stripes").
 *
 * Stripe i of the session (id, cookie) is the data-plane session of id
 * id + i and cookie cookie + i (both sides' engines put session s on queue
 * s % min(their queues), so consecutive ids land on distinct queues). A
 * transfer goes whole on one stripe, or in n parts of whole cache lines,
 * part p on stripe p, every part as the same transfer id. Client and server
 * share these helpers: the plan is computed from the request's fields
 * alone, so both ends agree on every part.
 */
#include <stdint.h>

#include "dataplane/datapath.h"
#include "ctl_wire.h"

/* At most this many stripes a session (DP_PORT_MAX_QUEUES). */
#define CTL_STRIPES_MAX 16
/* Parts are whole multiples of this many bytes (but the last). */
#define CTL_STRIPE_ALIGN 64

/* Where the bytes of one transfer go: part[i] (cookie, address, length)
 * at offset off[i] of the tensor. */
struct ctl_stripe {
	unsigned int n;
	struct dp_send_part part[CTL_STRIPES_MAX];
	uint64_t off[CTL_STRIPES_MAX];
};

/*
 * Plan a transfer of nbytes at base over a session of `stripes` stripes:
 * n == 1: whole on stripe `stripe`; n > 1: n parts on stripes 0..n-1.
 * @return 0, or -EINVAL (n or stripe out of range, a part left empty:
 *   n > 1 needs (n - 1) * part < nbytes, part = nbytes / n rounded up to
 *   a multiple of CTL_STRIPE_ALIGN).
 */
int ctl_stripe_plan(struct ctl_stripe *st, uint64_t cookie, unsigned int stripes,
		    unsigned int n, unsigned int stripe, void *base, uint64_t nbytes);

/* Parts for nbytes where every part gets at least min_part bytes, on at
 * most `stripes` stripes: 1 (whole) where fewer than two would. */
unsigned int ctl_stripe_parts(uint64_t nbytes, unsigned int stripes, uint64_t min_part);

/* A PUT's or GET's optional fields: "stripes" (parts, 1 .. CTL_STRIPES_MAX,
 * default 1) and "stripe" (the stripe of a whole transfer, 0 ..
 * CTL_STRIPES_MAX - 1, default 0). 0, or -EINVAL with why filled. */
int ctl_stripe_fields(const cJSON *msg, unsigned int *n, unsigned int *stripe, char *why);
/* Add them to msg where they differ from their defaults. */
void ctl_stripe_add_fields(cJSON *msg, unsigned int n, unsigned int stripe);
/* SESSION's optional "stripes" (1 .. CTL_STRIPES_MAX): 0 where absent,
 * -EINVAL with why filled where it is not such an integer. */
int ctl_stripe_session_field(const cJSON *msg, unsigned int *want, char *why);

/* Open the data-plane sessions of stripes 0..n-1 toward peer: how many
 * opened, in order (those past the first failure stay closed); 0 where the
 * first failed (*rc: its error). A data path without session_open: n. */
unsigned int ctl_stripe_open(const struct dj_datapath *dp, uint64_t id, uint64_t cookie,
			     unsigned int n, const struct dp_endpoint *peer, int *rc);
/* Close stripes 0..n-1. */
void ctl_stripe_close(const struct dj_datapath *dp, uint64_t cookie, unsigned int n);

/* Arm every part's receive; where one fails, the armed ones are disarmed.
 * 0 or the first error. */
int ctl_stripe_expect(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer, enum dj_mem_kind mem);
/* Wait for every part: 0 or the first error (the others stay armed). */
int ctl_stripe_wait(const struct dj_datapath *dp, const struct ctl_stripe *st,
		    uint64_t xfer, uint32_t timeout_ms);
/* Disarm every part: 0, or -EDEADLK where some destination may still be
 * written (the data path did not let go). */
int ctl_stripe_cancel(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer);
/* Send every part (at once where the data path has send_parts and the
 * source is host memory, else one after another): 0 or the whole's error. */
int ctl_stripe_send(const struct dj_datapath *dp, const struct dp_endpoint *peer,
		    const struct ctl_stripe *st, uint64_t xfer, enum dj_mem_kind mem,
		    uint32_t timeout_ms);
/* After a send that returned -EDEADLK: 1 while frames of some part may
 * still read its source, 0 once none does. One part: only send_pinned's
 * clear 0 frees it; of several, a part the data path holds nothing of
 * (-ENOENT: it never was an orphan, or an earlier call let it go) is free. */
int ctl_stripe_pinned(const struct dj_datapath *dp, const struct ctl_stripe *st,
		      uint64_t xfer);

#endif
