/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A member's side of fleet membership (fl_agent.h): the static list, or the
 * etcd registration loop (lease, record, keepalive, heal) and the view of
 * the other members, on one thread of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "fl.h"
#include "fl_agent.h"

#define TAG "fleet"

struct fl_agent {
	struct fl_agent_config cfg;
	char prefix[128], key[256], etcd_url[128];
	char (*members)[FL_ENDPOINT_MAX];   /* static list */
	int n_members;
	struct fl_etcd *etcd;
	/* Move checks read etcd from workers when the view lacks a target (it
	 * may have joined since the last poll): a client of their own. */
	struct fl_etcd *check_etcd;
	pthread_mutex_t check_lock;
	struct ctl_server *server;
	struct fl_view view;                /* etcd: the others */
	struct fl_loop loop;
	pthread_mutex_t lock;               /* registration state */
	int64_t lease;                      /* 0: none; the loop's */
	int registered;
	uint64_t registered_ns;
	char reg_error[FL_WHY_MAX];
};

int fl_agent_create(const struct fl_agent_config *cfg, struct fl_agent **out)
{
	struct fl_agent *a = calloc(1, sizeof(*a));
	char why[FL_WHY_MAX] = "";
	int rc = 0;

	if (a == NULL)
		return -ENOMEM;
	a->cfg = *cfg;
	a->cfg.ttl_s = cfg->ttl_s != 0 ? cfg->ttl_s : 3;
	a->cfg.refresh_ms = cfg->refresh_ms != 0 ? cfg->refresh_ms : 1000;
	a->cfg.poll_ms = cfg->poll_ms != 0 ? cfg->poll_ms : 500;
	snprintf(a->prefix, sizeof(a->prefix), "%s", cfg->prefix != NULL ? cfg->prefix :
		 FL_DEFAULT_PREFIX);
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->check_lock, NULL);
	fl_view_init(&a->view);
	a->members = calloc(FL_MAX_MEMBERS, sizeof(*a->members));
	if (a->members == NULL)
		rc = -ENOMEM;
	if (rc == 0 && cfg->members != NULL)
		rc = fl_static_parse(cfg->members, a->members, FL_MAX_MEMBERS, why);
	else if (rc == 0 && cfg->members_file != NULL)
		rc = fl_static_read(cfg->members_file, a->members, FL_MAX_MEMBERS, why);
	if (rc > 0) {
		a->n_members = rc;
		rc = 0;
	}
	if (rc == 0 && cfg->etcd != NULL) {
		snprintf(a->etcd_url, sizeof(a->etcd_url), "%s", cfg->etcd);
		rc = fl_etcd_create(cfg->etcd, 1000, &a->etcd);
		if (rc == 0)
			rc = fl_etcd_create(cfg->etcd, 1000, &a->check_etcd);
		if (rc != 0)
			snprintf(why, sizeof(why), "bad etcd endpoint '%.80s' (http://host:port)",
				 cfg->etcd);
	}
	a->cfg.members = a->cfg.members_file = a->cfg.etcd = a->cfg.prefix = NULL;
	if (rc != 0) {
		fprintf(stderr, "fleet: %s\n", why[0] ? why : dj_strerror(rc));
		fl_agent_destroy(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* ---- etcd registration ------------------------------------------------------ */

static char *record_text(struct fl_agent *a)
{
	cJSON *rec = ctl_server_member_json(a->server);
	struct timespec now;
	char *text = NULL;

	clock_gettime(CLOCK_REALTIME, &now);
	if (rec != NULL && cJSON_AddNumberToObject(rec, "updated_ms", (double)now.tv_sec * 1e3 +
						   (double)(now.tv_nsec / 1000000)) != NULL)
		text = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	return text;
}

static void set_registered(struct fl_agent *a, int registered, const char *why)
{
	pthread_mutex_lock(&a->lock);
	if (registered && !a->registered) {
		a->registered_ns = djc_time_ns();
		DJC_LOG(DJ_LOG_NOTICE, TAG, "registered in etcd as %s (lease %" PRIx64 ", TTL %u s)",
			a->key, (uint64_t)a->lease, a->cfg.ttl_s);
	} else if (!registered && a->registered) {
		DJC_LOG(DJ_LOG_WARN, TAG, "etcd registration lost, serving on and retrying: %s", why);
	}
	a->registered = registered;
	snprintf(a->reg_error, sizeof(a->reg_error), "%s", registered ? "" : why);
	pthread_mutex_unlock(&a->lock);
}

/* One registration step: a lease where there is none (or it expired), the
 * lease kept alive, the record rewritten. */
static void register_step(struct fl_agent *a)
{
	char *text = record_text(a);
	int64_t ttl = 0;
	int rc = text == NULL ? -ENOMEM : 0;

	if (rc == 0 && a->lease != 0) {
		rc = fl_etcd_lease_keepalive(a->etcd, a->lease, &ttl);
		if (rc == -ENOENT) {
			DJC_LOG(DJ_LOG_NOTICE, TAG, "lease %" PRIx64 " expired: a new one",
				(uint64_t)a->lease);
			a->lease = 0;
			rc = 0;
		}
	}
	if (rc == 0 && a->lease == 0)
		rc = fl_etcd_lease_grant(a->etcd, a->cfg.ttl_s, &a->lease);
	if (rc == 0)
		rc = fl_etcd_put(a->etcd, a->key, text, a->lease);
	free(text);
	set_registered(a, rc == 0, rc == -ENOMEM ? "out of memory" : fl_etcd_error(a->etcd));
}

static void *agent_main(void *arg)
{
	struct fl_agent *a = arg;
	uint64_t next_reg = 0, next_poll = 0, now, wake;

	do {
		now = djc_time_ns();
		if (now >= next_reg) {
			register_step(a);
			next_reg = now + a->cfg.refresh_ms * 1000000ull;
		}
		if (now >= next_poll) {
			fl_view_read_etcd(&a->view, a->etcd, a->prefix);
			next_poll = now + a->cfg.poll_ms * 1000000ull;
		}
		wake = next_reg < next_poll ? next_reg : next_poll;
		now = djc_time_ns();
	} while (fl_loop_sleep(&a->loop, wake > now ? wake - now : 0));
	return NULL;
}

int fl_agent_start(struct fl_agent *a, struct ctl_server *server)
{
	a->server = server;
	if (a->etcd == NULL)
		return 0;
	if (snprintf(a->key, sizeof(a->key), "%s%s", a->prefix, ctl_server_member_id(server)) >=
	    (int)sizeof(a->key))
		return -ENAMETOOLONG;
	return fl_loop_start(&a->loop, "dj-fleet", agent_main, a);
}

void fl_agent_destroy(struct fl_agent *a)
{
	if (a == NULL)
		return;
	fl_loop_stop(&a->loop);
	/* An orderly stop leaves the fleet at once, not after the TTL. */
	if (a->lease != 0 && fl_etcd_lease_revoke(a->etcd, a->lease) == 0)
		DJC_LOG(DJ_LOG_NOTICE, TAG, "left the fleet (lease revoked)");
	fl_etcd_destroy(a->etcd);
	fl_etcd_destroy(a->check_etcd);
	fl_view_fini(&a->view);
	pthread_mutex_destroy(&a->check_lock);
	pthread_mutex_destroy(&a->lock);
	free(a->members);
	free(a);
}

int fl_agent_registered(struct fl_agent *a)
{
	int r;

	if (a->etcd == NULL)
		return 1;
	pthread_mutex_lock(&a->lock);
	r = a->registered;
	pthread_mutex_unlock(&a->lock);
	return r;
}

static const char *membership(const struct fl_agent *a)
{
	return a->etcd != NULL ? "etcd" : a->n_members > 0 ? "static" : "none";
}

const char *fl_agent_members(struct fl_agent *a, int *members, int *stale)
{
	struct fl_member *m = NULL;
	char why[FL_WHY_MAX];
	uint64_t age;

	*members = a->n_members;
	*stale = 0;
	if (a->etcd != NULL) {
		*members = 0;
		fl_view_get(&a->view, &m, members, &age, stale, why);
		free(m);
	}
	return membership(a);
}

/* ---- hooks of the control plane ------------------------------------------- */

static int endpoint_is(const char *endpoint, const char *host, uint16_t port)
{
	char h[64];
	uint16_t p;

	return djc_parse_host_port(endpoint, h, sizeof(h), 1, &p) == 0 && p == port &&
	       strcmp(h, host) == 0;
}

static int in_etcd_view(struct fl_agent *a, const char *host, uint16_t port)
{
	struct fl_member *m = NULL;
	uint64_t age;
	int n = 0, stale, found = 0;

	if (fl_view_get(&a->view, &m, &n, &age, &stale, NULL) == 0)
		for (int i = 0; i < n && !found; i++)
			found = endpoint_is(m[i].endpoint, host, port);
	free(m);
	return found;
}

int fl_agent_peer_check(void *arg, const char *host, uint16_t port, char *why)
{
	struct fl_agent *a = arg;
	int found = 0;

	for (int i = 0; i < a->n_members && !found; i++)
		found = endpoint_is(a->members[i], host, port);
	if (a->etcd != NULL && !found && !(found = in_etcd_view(a, host, port))) {
		/* It may have joined since the last poll: read etcd now. */
		pthread_mutex_lock(&a->check_lock);
		fl_view_read_etcd(&a->view, a->check_etcd, a->prefix);
		pthread_mutex_unlock(&a->check_lock);
		found = in_etcd_view(a, host, port);
	}
	if (found || (a->etcd == NULL && a->n_members == 0))
		return 0;
	snprintf(why, 128, "%.64s:%u is not a member of this fleet", host, port);
	return -EPERM;
}

void fl_agent_stats(void *arg, cJSON *fleet)
{
	struct fl_agent *a = arg;
	cJSON *list = NULL;
	struct fl_member *m = NULL;
	char why[FL_WHY_MAX], inc[20];
	uint64_t age;
	int n = 0, stale = 1;

	cJSON_AddStringToObject(fleet, "membership", membership(a));
	list = cJSON_AddArrayToObject(fleet, "members");
	for (int i = 0; i < a->n_members && list != NULL; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "endpoint", a->members[i]);
		cJSON_AddItemToArray(list, o);
	}
	if (a->etcd == NULL)
		return;
	fl_view_get(&a->view, &m, &n, &age, &stale, why);
	for (int i = 0; i < n && list != NULL; i++) {
		cJSON *o = cJSON_CreateObject();

		ctl_handle_format(m[i].incarnation, inc);
		cJSON_AddStringToObject(o, "id", m[i].id);
		cJSON_AddStringToObject(o, "incarnation", inc);
		cJSON_AddStringToObject(o, "endpoint", m[i].endpoint);
		cJSON_AddItemToArray(list, o);
	}
	free(m);
	cJSON *e = cJSON_AddObjectToObject(fleet, "etcd");

	pthread_mutex_lock(&a->lock);
	cJSON_AddStringToObject(e, "endpoint", a->etcd_url);
	cJSON_AddStringToObject(e, "key", a->key);
	cJSON_AddBoolToObject(e, "registered", a->registered);
	cJSON_AddNumberToObject(e, "ttl_s", a->cfg.ttl_s);
	if (!a->registered)
		cJSON_AddStringToObject(e, "registration_error", a->reg_error);
	pthread_mutex_unlock(&a->lock);
	cJSON_AddBoolToObject(e, "stale", stale);
	cJSON_AddNumberToObject(e, "age_ms", age == UINT64_MAX ? -1 : (double)age);
	if (stale)
		cJSON_AddStringToObject(e, "error", why);
}
