/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What keeps a hostile or careless client from hurting the others before it
 * has authenticated (docs/CONTROL.md, "Hostile clients"):
 *
 * - Unauthenticated connections live on a budget of their own: at most
 *   max_unauth_connections of them, max_unauth_per_addr per source
 *   address, each for auth_timeout_ms. A newcomer beyond a budget closes
 *   the oldest unauthenticated connection in it, so a flood of idle
 *   connections ages out instead of locking everyone out; only
 *   authenticated connections count against max_connections.
 * - Failed AUTH attempts are slowed per source address: after n failures
 *   in a row the address's next AUTH is judged no sooner than
 *   100 ms * 2^(n-1) later (at most auth_delay_max_ms), whatever the number
 *   of connections it uses. Addresses live in a fixed table (bounded
 *   memory): a full set gives up the entry that failed longest ago.
 * - Log lines about them are rate-limited: a few per interval, then one
 *   summary line when the interval ends.
 *
 * Everything here runs on the server's epoll thread: no locks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_server.h"

#define TAG "ctl"
#define AUTH_DELAY_BASE_MS 100
/* An address that stopped failing this long ago starts afresh. */
#define AUTH_FORGET_MS 60000
/* Probes of the address table: a set of this many slots per hash. */
#define AUTH_WAYS 8
/* Lines of one kind logged per interval before the summary takes over. */
#define LOG_BURST 5

static uint64_t ms_to_ns(uint64_t ms)
{
	return ms * 1000000ull;
}

int ctl_guard_init(struct ctl_server *srv)
{
	srv->auth_addrs = calloc(CTL_AUTH_ADDRS, sizeof(*srv->auth_addrs));
	if (srv->auth_addrs == NULL)
		return -ENOMEM;
	srv->log_auth.what = "failed authentications";
	srv->log_flood.what = "unauthenticated connections closed to stay within budget";
	srv->log_timeout.what = "connections closed for not authenticating in time";
	return 0;
}

void ctl_guard_fini(struct ctl_server *srv)
{
	free(srv->auth_addrs);
	srv->auth_addrs = NULL;
}

/* ---- rate-limited log lines --------------------------------------------- */

int ctl_log_allowed(struct ctl_log_limit *l, uint64_t now)
{
	if (l->logged == 0 && l->suppressed == 0)
		l->window_start_ns = now;
	if (l->logged < LOG_BURST) {
		l->logged++;
		return 1;
	}
	l->suppressed++;
	return 0;
}

static void log_summary(struct ctl_server *srv, struct ctl_log_limit *l, uint64_t now,
			const char *detail)
{
	if (l->logged == 0 && l->suppressed == 0)
		return;
	if (now - l->window_start_ns < ms_to_ns(srv->cfg.limits.log_interval_ms))
		return;
	if (l->suppressed > 0)
		DJC_LOG(DJ_LOG_NOTICE, TAG, "%" PRIu64 " more %s in the last %.1f s, not logged "
			"one by one%s", l->suppressed, l->what,
			(double)(now - l->window_start_ns) / 1e9, detail);
	l->logged = 0;
	l->suppressed = 0;
}

/* ---- failed AUTH, per source address ------------------------------------- */

static uint32_t addr_hash(uint32_t addr)
{
	return (addr * 2654435761u) >> 16;
}

/* The address's entry, or NULL; with create, a slot for it (evicting the
 * set's stalest). */
static struct ctl_auth_addr *addr_entry(struct ctl_server *srv, uint32_t addr, int create,
					uint64_t now)
{
	uint32_t base = addr_hash(addr);
	struct ctl_auth_addr *victim = NULL;

	for (uint32_t i = 0; i < AUTH_WAYS; i++) {
		struct ctl_auth_addr *e = &srv->auth_addrs[(base + i) % CTL_AUTH_ADDRS];

		if (e->failures > 0 && e->addr == addr) {
			/* now may precede last_ns: a sweep judges with its start time. */
			if (now > e->last_ns + ms_to_ns(AUTH_FORGET_MS))
				e->failures = 0; /* forgiven: starts afresh */
			else
				return e;
		}
		if (victim == NULL || e->failures == 0 ||
		    (victim->failures > 0 && e->last_ns < victim->last_ns))
			victim = e;
	}
	if (!create)
		return NULL;
	*victim = (struct ctl_auth_addr){.addr = addr};
	return victim;
}

uint64_t ctl_guard_auth_due(struct ctl_server *srv, uint32_t addr, uint64_t now)
{
	const struct ctl_auth_addr *e = addr_entry(srv, addr, 0, now);

	return e != NULL ? e->next_ns : 0;
}

void ctl_guard_auth_failed(struct ctl_server *srv, uint32_t addr, const char *peer,
			   const char *why, uint64_t now)
{
	struct ctl_auth_addr *e = addr_entry(srv, addr, 1, now);
	uint64_t delay_ms = srv->cfg.limits.auth_delay_max_ms;
	uint32_t shift;

	e->failures++;
	e->window_failures++;
	e->last_ns = now;
	shift = e->failures - 1 < 20 ? e->failures - 1 : 20;
	if ((uint64_t)AUTH_DELAY_BASE_MS << shift < delay_ms)
		delay_ms = (uint64_t)AUTH_DELAY_BASE_MS << shift;
	e->next_ns = now + ms_to_ns(delay_ms);
	srv->st.auth_failures++;
	if (ctl_log_allowed(&srv->log_auth, now))
		DJC_LOG(DJ_LOG_NOTICE, TAG, "%s: authentication refused: %s (failure %u in a row "
			"from this address: its next AUTH waits %" PRIu64 " ms)", peer, why,
			e->failures, delay_ms);
}

void ctl_guard_auth_ok(struct ctl_server *srv, uint32_t addr, uint64_t now)
{
	struct ctl_auth_addr *e = addr_entry(srv, addr, 0, now);

	if (e != NULL)
		e->failures = 0;
}

/* The summary of failed authentications names the address that failed
 * most this interval. */
static void auth_summary(struct ctl_server *srv, uint64_t now)
{
	struct ctl_log_limit *l = &srv->log_auth;
	uint32_t addrs = 0, top_addr = 0, top_failures = 0;
	char detail[96] = "", ip[INET_ADDRSTRLEN];

	if ((l->logged == 0 && l->suppressed == 0) ||
	    now - l->window_start_ns < ms_to_ns(srv->cfg.limits.log_interval_ms))
		return;
	for (uint32_t i = 0; i < CTL_AUTH_ADDRS; i++) {
		struct ctl_auth_addr *e = &srv->auth_addrs[i];

		if (e->window_failures == 0)
			continue;
		addrs++;
		if (e->window_failures > top_failures) {
			top_failures = e->window_failures;
			top_addr = e->addr;
		}
		e->window_failures = 0;
	}
	if (addrs > 0) {
		struct in_addr a = {.s_addr = top_addr};

		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(detail, sizeof(detail), " (from %u addresses; most from %s: %u)", addrs, ip,
			 top_failures);
	}
	log_summary(srv, l, now, detail);
}

void ctl_guard_sweep(struct ctl_server *srv, uint64_t now)
{
	auth_summary(srv, now);
	log_summary(srv, &srv->log_flood, now, "");
	log_summary(srv, &srv->log_timeout, now, "");
}

/* ---- the unauthenticated budget ------------------------------------------ */

static void unauth_unlink(struct ctl_server *srv, struct ctl_conn *c)
{
	if (c->unauth_prev != NULL)
		c->unauth_prev->unauth_next = c->unauth_next;
	else
		srv->unauth_head = c->unauth_next;
	if (c->unauth_next != NULL)
		c->unauth_next->unauth_prev = c->unauth_prev;
	else
		srv->unauth_tail = c->unauth_prev;
	c->unauth_prev = c->unauth_next = NULL;
	c->unauth = 0;
	srv->n_unauth--;
}

struct ctl_conn *ctl_guard_admit(struct ctl_server *srv, struct ctl_conn *c)
{
	const struct ctl_limits *l = &srv->cfg.limits;
	struct ctl_conn *oldest_here = NULL, *victim = NULL;
	uint32_t here = 0;

	/* Oldest first: the list is in order of arrival. */
	for (struct ctl_conn *u = srv->unauth_head; u != NULL; u = u->unauth_next) {
		if (u->addr != c->addr)
			continue;
		if (oldest_here == NULL)
			oldest_here = u;
		here++;
	}
	if (here >= l->max_unauth_per_addr)
		victim = oldest_here;
	else if (srv->n_unauth >= l->max_unauth_connections)
		victim = srv->unauth_head;
	c->unauth = 1;
	c->unauth_prev = srv->unauth_tail;
	if (srv->unauth_tail != NULL)
		srv->unauth_tail->unauth_next = c;
	else
		srv->unauth_head = c;
	srv->unauth_tail = c;
	srv->n_unauth++;
	if (victim != NULL) {
		srv->st.unauth_evicted++;
		if (ctl_log_allowed(&srv->log_flood, djc_time_ns()))
			DJC_LOG(DJ_LOG_NOTICE, TAG, "%s: closed, not authenticated yet, to make room "
				"for %s (%s)", victim->peer, c->peer, victim->addr == c->addr ?
				"the address's budget of unauthenticated connections is full" :
				"the budget of unauthenticated connections is full");
	}
	return victim;
}

void ctl_guard_forget(struct ctl_server *srv, struct ctl_conn *c)
{
	if (c->unauth)
		unauth_unlink(srv, c);
}

int ctl_guard_authenticated(struct ctl_conn *c, char *why, size_t why_len)
{
	struct ctl_server *srv = c->srv;
	uint64_t authed;

	if (c->unauth)
		unauth_unlink(srv, c);
	authed = srv->st.open - srv->n_unauth;
	if (authed <= srv->cfg.limits.max_connections)
		return 0;
	snprintf(why, why_len, "too many connections: %" PRIu64 " authenticated ones is the "
		 "limit (max_connections); try again later", (uint64_t)srv->cfg.limits.max_connections);
	return -DJ_ELIMIT;
}
