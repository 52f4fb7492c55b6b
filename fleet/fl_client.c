/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fleet client (include/djinn/fleet.h): a table of members, one session
 * per member opened on first use, requests routed by the member a handle
 * names, moves asked of the source server, and a background thread that
 * keeps the membership fresh (etcd records, or the STATS of a static list).
 *
 * Table entries are never removed while the client lives: a handle's member
 * index stays meaningful. A member that restarts (new incarnation) gets a
 * new entry; the old one is marked gone and its handles fail -EHOSTDOWN.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "djinn/fleet.h"
#include "common/cli.h"
#include "common/djc.h"
#include "controlplane/ctl_client.h"
#include "fl.h"

#define TAG "fleet-client"
#define MAX_ENTRIES 1024
#define STATIC_MISSES 2

struct fl_entry {
	uint32_t index;
	char endpoint[FL_ENDPOINT_MAX];
	struct fl_member rec;
	int have_rec;              /* rec was read at least once */
	int up;                    /* in the current view */
	int gone;                  /* replaced by a newer incarnation */
	int misses;                /* static: STATS failed this many times in a row */
	int why;                   /* static: the last STATS error (0: answered) */
	uint64_t read_ns;
	pthread_mutex_t conn_lock; /* opening conn */
	struct dj_client *client;
	struct dj_conn *conn;
	struct dj_client *mon;     /* static fleets: STATS, never retried */
};

struct dj_fleet {
	struct dj_fleet_options o;
	char *token, *token_file, *tls_ca;
	char prefix[128];
	char (*listed)[FL_ENDPOINT_MAX];   /* static list */
	int n_listed;
	struct fl_etcd *etcd;
	struct fl_view view;               /* etcd: the last records */
	pthread_mutex_t lock;              /* entries, refresh */
	pthread_cond_t refreshed;          /* with lock: after every refresh */
	pthread_mutex_t refresh_lock;      /* one refresh at a time */
	struct fl_entry *entries[MAX_ENTRIES];
	uint32_t n_entries;
	struct fl_loop loop;       /* the background refresh */
};

static __thread char last_error[256];

const char *dj_fleet_last_error(void)
{
	return last_error;
}

static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return rc;
}

void dj_fleet_options_init(struct dj_fleet_options *o)
{
	memset(o, 0, sizeof(*o));
	o->refresh_ms = 500;
	o->member_wait_ms = 10000;
	dj_client_options_init(&o->client);
	/* A move's reply comes once the bytes crossed between the servers. */
	o->client.request_timeout_ms = 120000;
}

/* ---- the table ---------------------------------------------------------------- */

/* A new entry (lock held); NULL where the table is full. */
static struct fl_entry *entry_new(struct dj_fleet *f, const char *endpoint)
{
	struct fl_entry *e;

	if (f->n_entries == MAX_ENTRIES || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->index = f->n_entries;
	snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint);
	snprintf(e->rec.id, sizeof(e->rec.id), "%s", endpoint);
	snprintf(e->rec.endpoint, sizeof(e->rec.endpoint), "%s", endpoint);
	pthread_mutex_init(&e->conn_lock, NULL);
	f->entries[f->n_entries++] = e;
	return e;
}

static void entry_free(struct fl_entry *e)
{
	dj_disconnect(e->conn);
	dj_client_destroy(e->client);
	dj_client_destroy(e->mon);
	pthread_mutex_destroy(&e->conn_lock);
	free(e);
}

/* The live entry of a member id (etcd) or endpoint (static), lock held. */
static struct fl_entry *entry_live(struct dj_fleet *f, const char *id, const char *endpoint)
{
	for (uint32_t i = f->n_entries; i-- > 0;) {
		struct fl_entry *e = f->entries[i];

		if (!e->gone && ((id != NULL && e->have_rec && strcmp(e->rec.id, id) == 0) ||
				 (endpoint != NULL && strcmp(e->endpoint, endpoint) == 0)))
			return e;
	}
	return NULL;
}

/* A record read for the member at e (lock held): the same incarnation
 * updates e; another one means the server restarted: e is gone and a new
 * entry takes the record. */
static struct fl_entry *entry_record(struct dj_fleet *f, struct fl_entry *e,
				     const struct fl_member *rec)
{
	if (e != NULL && e->have_rec && e->rec.incarnation != rec->incarnation) {
		DJC_LOG(DJ_LOG_NOTICE, TAG, "member %s (%s) restarted: its earlier tensors are gone",
			rec->id, rec->endpoint);
		e->gone = 1;
		e->up = 0;
		e = entry_new(f, rec->endpoint);
	}
	if (e == NULL)
		e = entry_new(f, rec->endpoint);
	if (e == NULL)
		return NULL;
	if (!e->up)
		DJC_LOG(DJ_LOG_INFO, TAG, "member %s (%s) up", rec->id, rec->endpoint);
	e->rec = *rec;
	e->have_rec = 1;
	e->up = 1;
	e->read_ns = djc_time_ns();
	return e;
}

/* Members up now (lock held). */
static int count_up(const struct dj_fleet *f)
{
	int up = 0;

	for (uint32_t i = 0; i < f->n_entries; i++)
		up += f->entries[i]->up;
	return up;
}

/* The first static member's last STATS error (0 where all answered). */
static int first_why(struct dj_fleet *f)
{
	int why = 0;

	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->n_entries && why == 0; i++)
		why = f->entries[i]->why;
	pthread_mutex_unlock(&f->lock);
	return why;
}

/* ---- refresh ------------------------------------------------------------------- */

static int stats_record(struct dj_fleet *f, struct fl_entry *e, struct fl_member *rec)
{
	struct dj_client_options o = f->o.client;
	char host[64], why[FL_WHY_MAX], *json = NULL;
	struct dj_conn *conn = NULL;
	cJSON *stats;
	uint16_t port;
	int rc = 0;

	if (e->mon == NULL) {
		djc_parse_host_port(e->endpoint, host, sizeof(host), 1, &port);
		o.host = host;
		o.port = port;
		o.path = DJ_PATH_TCP;
		o.datapath = NULL;
		o.max_retries = 0;
		o.connect_timeout_ms = 500;
		o.request_timeout_ms = 2000;
		o.pool_max_idle = 1;
		rc = dj_client_create(&o, &e->mon);
	}
	if (rc == 0)
		rc = dj_connect(e->mon, &conn);
	if (rc == 0)
		rc = dj_stats(conn, &json);
	if (conn != NULL)
		dj_disconnect(conn);
	stats = rc == 0 ? cJSON_Parse(json) : NULL;
	if (rc == 0 && fl_member_from_json(cJSON_GetObjectItemCaseSensitive(stats, "member"), rec,
					   why) != 0)
		rc = -EPROTO;
	cJSON_Delete(stats);
	free(json);
	return rc;
}

static int refresh_static(struct dj_fleet *f)
{
	int answered = 0;

	for (int i = 0; i < f->n_listed; i++) {
		struct fl_member rec;
		struct fl_entry *e;
		int rc;

		pthread_mutex_lock(&f->lock);
		e = entry_live(f, NULL, f->listed[i]);
		if (e == NULL)
			e = entry_new(f, f->listed[i]);
		pthread_mutex_unlock(&f->lock);
		if (e == NULL)
			return -ENOSPC;
		/* The monitor client belongs to this thread alone. */
		rc = stats_record(f, e, &rec);
		pthread_mutex_lock(&f->lock);
		e->why = rc;
		if (rc == 0) {
			/* Reach it where we listed it, whatever it advertises. */
			snprintf(rec.endpoint, sizeof(rec.endpoint), "%s", f->listed[i]);
			e->misses = 0;
			e = entry_record(f, e, &rec);
			answered++;
		} else if (e->up && ++e->misses >= STATIC_MISSES) {
			/* Twice in a row: one slow answer on a loaded host is not
			 * a member gone. */
			DJC_LOG(DJ_LOG_NOTICE, TAG, "member %s (%s) down: %s", e->rec.id, e->endpoint,
				dj_strerror(rc));
			e->up = 0;
		}
		pthread_mutex_unlock(&f->lock);
	}
	return answered > 0 ? 0 : -EHOSTUNREACH;
}

static int refresh_etcd(struct dj_fleet *f)
{
	struct fl_member *m = NULL;
	uint64_t age;
	int n = 0, stale, rc = fl_view_read_etcd(&f->view, f->etcd, f->prefix);

	if (rc != 0)
		return rc; /* the last view stays as it was */
	if (fl_view_get(&f->view, &m, &n, &age, &stale, NULL) != 0)
		return -ENOMEM;
	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->n_entries; i++) {
		struct fl_entry *e = f->entries[i];
		int in = 0;

		for (int k = 0; k < n && !in; k++)
			in = e->have_rec && strcmp(m[k].id, e->rec.id) == 0 &&
			     m[k].incarnation == e->rec.incarnation;
		if (e->up && !in)
			DJC_LOG(DJ_LOG_NOTICE, TAG, "member %s (%s) left the fleet", e->rec.id,
				e->endpoint);
		e->up = e->up && in;
	}
	for (int k = 0; k < n; k++)
		entry_record(f, entry_live(f, m[k].id, NULL), &m[k]);
	pthread_mutex_unlock(&f->lock);
	free(m);
	return 0;
}

int dj_fleet_refresh(struct dj_fleet *f)
{
	int rc;

	pthread_mutex_lock(&f->refresh_lock);
	rc = f->etcd != NULL ? refresh_etcd(f) : refresh_static(f);
	pthread_mutex_unlock(&f->refresh_lock);
	/* Wake dj_fleet_wait(): a member may be up now. */
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->refreshed);
	pthread_mutex_unlock(&f->lock);
	if (rc != 0)
		return fail(rc, "%s", f->etcd != NULL ? fl_etcd_error(f->etcd) :
			    "no member of the static list answered");
	return 0;
}

static void *refresh_main(void *arg)
{
	struct dj_fleet *f = arg;

	while (fl_loop_sleep(&f->loop, f->o.refresh_ms * 1000000ull))
		dj_fleet_refresh(f);
	return NULL;
}

/* ---- create / destroy ------------------------------------------------------------ */

static int copy_str(const char *in, char **out)
{
	*out = NULL;
	return in == NULL || (*out = strdup(in)) != NULL ? 0 : -ENOMEM;
}

static int fleet_source(struct dj_fleet *f, const struct dj_fleet_options *o)
{
	char why[FL_WHY_MAX] = "";
	int rc = 0;

	if ((o->members != NULL) + (o->members_file != NULL) + (o->etcd != NULL) != 1)
		return fail(-EINVAL, "name one membership source: a member list, a file or etcd");
	snprintf(f->prefix, sizeof(f->prefix), "%s", o->prefix != NULL ? o->prefix :
		 FL_DEFAULT_PREFIX);
	if (o->etcd != NULL) {
		rc = fl_etcd_create(o->etcd, 1000, &f->etcd);
		return rc != 0 ? fail(rc, "bad etcd endpoint '%.80s' (http://host:port)", o->etcd) : 0;
	}
	f->listed = calloc(FL_MAX_MEMBERS, sizeof(*f->listed));
	if (f->listed == NULL)
		return -ENOMEM;
	rc = o->members != NULL ? fl_static_parse(o->members, f->listed, FL_MAX_MEMBERS, why) :
	     fl_static_read(o->members_file, f->listed, FL_MAX_MEMBERS, why);
	if (rc == 0)
		return fail(-EINVAL, "the member list is empty");
	if (rc < 0)
		return fail(rc, "%s", why);
	f->n_listed = rc;
	return 0;
}

int dj_fleet_create(const struct dj_fleet_options *o, struct dj_fleet **out)
{
	pthread_condattr_t ca;
	struct dj_fleet *f;
	int rc;

	if (o == NULL || out == NULL)
		return fail(-EINVAL, "no options");
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return fail(-ENOMEM, "out of memory");
	f->o = *o;
	f->o.refresh_ms = o->refresh_ms != 0 ? o->refresh_ms : 500;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->refreshed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&f->refresh_lock, NULL);
	fl_view_init(&f->view);
	/* The options' strings are the caller's: keep copies. */
	rc = copy_str(o->client.token, &f->token);
	if (rc == 0)
		rc = copy_str(o->client.token_file, &f->token_file);
	if (rc == 0)
		rc = copy_str(o->client.tls_ca, &f->tls_ca);
	f->o.client.token = f->token;
	f->o.client.token_file = f->token_file;
	f->o.client.tls_ca = f->tls_ca;
	f->o.members = f->o.members_file = f->o.etcd = f->o.prefix = NULL;
	if (rc == 0)
		rc = fleet_source(f, o);
	if (rc == 0)
		rc = dj_fleet_refresh(f);
	if (rc == -EHOSTUNREACH && f->etcd == NULL) {
		/* The list is the membership: its servers may still be
		 * starting. They stay listed, down, and are asked again at
		 * every refresh (dj_fleet_wait, DJ_FLEET_ANY). */
		DJC_LOG(DJ_LOG_NOTICE, TAG, "no member of the static list answered yet (%s): %d "
			"member(s) down, asked again every %u ms", dj_strerror(first_why(f)),
			f->n_listed, f->o.refresh_ms);
		rc = 0;
	}
	if (rc == 0)
		rc = fl_loop_start(&f->loop, "dj-fleet-view", refresh_main, f);
	if (rc != 0) {
		char why[sizeof(last_error)];

		snprintf(why, sizeof(why), "%s", last_error);
		dj_fleet_destroy(f);
		return fail(rc, "%s", why);
	}
	*out = f;
	last_error[0] = '\0';
	return 0;
}

void dj_fleet_destroy(struct dj_fleet *f)
{
	if (f == NULL)
		return;
	fl_loop_stop(&f->loop);
	for (uint32_t i = 0; i < f->n_entries; i++)
		entry_free(f->entries[i]);
	fl_etcd_destroy(f->etcd);
	fl_view_fini(&f->view);
	pthread_mutex_destroy(&f->refresh_lock);
	pthread_cond_destroy(&f->refreshed);
	pthread_mutex_destroy(&f->lock);
	free(f->listed);
	free(f->token);
	free(f->token_file);
	free(f->tls_ca);
	free(f);
}

/* ---- the view ---------------------------------------------------------------------- */

static void member_info(const struct fl_entry *e, uint64_t now, struct dj_fleet_member *m)
{
	const struct fl_member *r = &e->rec;
	struct in_addr ip = {.s_addr = r->caps.endpoint.ipv4};

	memset(m, 0, sizeof(*m));
	m->index = e->index;
	snprintf(m->id, sizeof(m->id), "%s", r->id);
	snprintf(m->endpoint, sizeof(m->endpoint), "%s", e->endpoint);
	m->incarnation = r->incarnation;
	m->up = e->up;
	m->fleet_auth = r->fleet_auth;
	m->dpdk = r->caps.dpdk;
	if (r->caps.dpdk)
		inet_ntop(AF_INET, &ip, m->dp_ipv4, sizeof(m->dp_ipv4));
	m->dp_udp_port = r->caps.endpoint.udp_port;
	m->dp_mtu = r->caps.endpoint.mtu;
	m->n_devices = r->mem.n_devices < DJ_FLEET_MAX_DEVICES ? r->mem.n_devices :
		       DJ_FLEET_MAX_DEVICES;
	for (int i = 0; i < m->n_devices; i++) {
		snprintf(m->devices[i].name, sizeof(m->devices[i].name), "%s",
			 r->mem.devices[i].name);
		m->devices[i].gpu = r->mem.devices[i].mem == DJ_MEM_GPU;
		m->devices[i].mem_total = r->mem.devices[i].total;
		m->devices[i].mem_free = r->mem.devices[i].free;
		m->devices[i].running = r->mem.devices[i].running;
		m->devices[i].queued = r->mem.devices[i].queued;
	}
	m->n_ops = r->caps.n_ops;
	m->store_bytes = r->mem.store_bytes;
	m->store_limit = r->mem.store_limit;
	m->queued = r->queued;
	m->jobs = r->jobs;
	m->ops_per_s = r->ops_per_s;
	m->requests_per_s = r->requests_per_s;
	m->age_ms = e->have_rec ? (now - e->read_ns) / 1000000ull : UINT64_MAX;
}

int dj_fleet_view(struct dj_fleet *f, struct dj_fleet_view *view,
		  struct dj_fleet_member *members, int max)
{
	uint64_t now = djc_time_ns();
	int written = 0, up = 0;

	if (view != NULL) {
		struct fl_member *m = NULL;
		int n, stale = 0;
		uint64_t age = 0;

		memset(view, 0, sizeof(*view));
		view->source = f->etcd != NULL ? DJ_FLEET_SOURCE_ETCD : DJ_FLEET_SOURCE_STATIC;
		if (f->etcd != NULL) {
			fl_view_get(&f->view, &m, &n, &age, &stale, view->error);
			free(m);
		}
		view->stale = stale;
		view->age_ms = age;
	}
	pthread_mutex_lock(&f->lock);
	/* Members up first, then those that left (not replaced ones). */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < f->n_entries; i++) {
			const struct fl_entry *e = f->entries[i];

			if (e->gone || e->up != (pass == 0))
				continue;
			up += e->up;
			if (members != NULL && written < max)
				member_info(e, now, &members[written++]);
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (view != NULL)
		view->n_members = up;
	return written;
}

int dj_fleet_member_info(struct dj_fleet *f, uint32_t index, struct dj_fleet_member *member)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (index >= f->n_entries)
		rc = fail(-EINVAL, "no member #%u in this client's table", index);
	else if (f->entries[index]->gone)
		rc = fail(-ESTALE, "member %s (%s) restarted: tensors of its earlier incarnation "
			  "are gone", f->entries[index]->rec.id, f->entries[index]->endpoint);
	else
		member_info(f->entries[index], djc_time_ns(), member);
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)
		last_error[0] = '\0';
	return rc;
}

int dj_fleet_member_find(struct dj_fleet *f, const char *name, uint32_t *index)
{
	int rc = fail(-ENOENT, "no member '%.64s' up in the fleet", name);

	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->n_entries && rc != 0; i++) {
		const struct fl_entry *e = f->entries[i];
		char num[16];

		snprintf(num, sizeof(num), "#%u", e->index);
		if (e->up && (strcmp(e->rec.id, name) == 0 || strcmp(e->endpoint, name) == 0 ||
			      strcmp(num, name) == 0)) {
			*index = e->index;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)
		last_error[0] = '\0';
	return rc;
}

/* Until n members are up or timeout_ms passed: 1 where they are. */
static int wait_up(struct dj_fleet *f, int n, uint32_t timeout_ms)
{
	struct timespec until;
	int ok;

	djc_deadline_ts(timeout_ms * 1000000ull, &until);
	pthread_mutex_lock(&f->lock);
	while (count_up(f) < n &&
	       pthread_cond_timedwait(&f->refreshed, &f->lock, &until) != ETIMEDOUT)
		;
	ok = count_up(f) >= n;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/* Why no member is up, for an error message: the source's words. */
static void why_down(struct dj_fleet *f, char *why, size_t len)
{
	if (f->etcd != NULL)
		snprintf(why, len, "no member in etcd under %s", f->prefix);
	else
		snprintf(why, len, "none of the %d listed answers STATS: %s", f->n_listed,
			 dj_strerror(first_why(f)));
}

int dj_fleet_wait(struct dj_fleet *f, int n, uint32_t timeout_ms)
{
	char why[160];
	int up;

	if (n < 1)
		return fail(-EINVAL, "wait for at least one member");
	if (wait_up(f, n, timeout_ms)) {
		last_error[0] = '\0';
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	up = count_up(f);
	pthread_mutex_unlock(&f->lock);
	why_down(f, why, sizeof(why));
	return fail(-ETIMEDOUT, "%d of %d members up after %u ms%s%s", up, n, timeout_ms,
		    up == 0 ? ": " : "", up == 0 ? why : "");
}

/* ---- routing ------------------------------------------------------------------------- */

/* The entry of member index, up: else -EHOSTDOWN naming it. */
static int entry_get(struct dj_fleet *f, uint32_t index, struct fl_entry **out)
{
	struct fl_entry *e;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	e = index < f->n_entries ? f->entries[index] : NULL;
	if (e == NULL)
		rc = fail(-EINVAL, "no member #%u in this client's table", index);
	else if (e->gone)
		rc = fail(-EHOSTDOWN, "member %s (%s) restarted: tensors of its earlier "
			  "incarnation are gone", e->rec.id, e->endpoint);
	else if (!e->up)
		rc = fail(-EHOSTDOWN, "member %s (%s) left the fleet", e->rec.id, e->endpoint);
	pthread_mutex_unlock(&f->lock);
	*out = e;
	return rc;
}

/* The session on e, opened on first use. */
static int entry_conn(struct dj_fleet *f, struct fl_entry *e, struct dj_conn **conn)
{
	struct dj_client_options o = f->o.client;
	char host[64];
	uint16_t port;
	int rc = 0;

	pthread_mutex_lock(&e->conn_lock);
	if (e->client == NULL) {
		djc_parse_host_port(e->endpoint, host, sizeof(host), 1, &port);
		o.host = host;
		o.port = port;
		rc = dj_client_create(&o, &e->client);
	}
	if (rc == 0 && e->conn == NULL)
		rc = dj_connect(e->client, &e->conn);
	*conn = e->conn;
	pthread_mutex_unlock(&e->conn_lock);
	if (rc != 0)
		return fail(rc, "member %s (%s): %s", e->rec.id, e->endpoint, dj_strerror(rc));
	return 0;
}

static int member_conn(struct dj_fleet *f, uint32_t index, struct fl_entry **e,
		       struct dj_conn **conn)
{
	int rc = entry_get(f, index, e);

	return rc != 0 ? rc : entry_conn(f, *e, conn);
}

int dj_fleet_conn(struct dj_fleet *f, uint32_t member, struct dj_conn **conn)
{
	struct fl_entry *e;
	int rc = member_conn(f, member, &e, conn);

	if (rc == 0)
		last_error[0] = '\0';
	return rc;
}

/* conn, its last ERROR text cleared: a failure without an ERROR reply (a
 * lost connection) must not be told with an earlier call's text. */
static struct dj_conn *fresh(struct dj_conn *conn)
{
	conn->last_error[0] = '\0';
	return conn;
}

/* After a call on e's session: the server's text where it answered. */
static int settle(struct fl_entry *e, struct dj_conn *conn, const char *what, int rc)
{
	if (rc == 0) {
		last_error[0] = '\0';
		return 0;
	}
	return fail(rc, "%s on member %s (%s): %s", what, e->rec.id, e->endpoint,
		    dj_conn_last_error(conn)[0] != '\0' ? dj_conn_last_error(conn) : dj_strerror(rc));
}

/* The up member with the most free memory on its devices, fewest queued;
 * where none is up, waiting up to member_wait_ms for one. */
static int least_loaded(struct dj_fleet *f, uint32_t *index)
{
	uint64_t best_free = 0, best_queued = UINT64_MAX;
	char why[160];
	int found = 0;

	if (!wait_up(f, 1, f->o.member_wait_ms)) {
		why_down(f, why, sizeof(why));
		return fail(-EHOSTUNREACH, "no member is up after waiting %u ms: %s",
			    f->o.member_wait_ms, why);
	}
	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->n_entries; i++) {
		const struct fl_entry *e = f->entries[i];
		uint64_t free_b = 0;

		if (!e->up)
			continue;
		for (int d = 0; d < e->rec.mem.n_devices; d++)
			free_b += e->rec.mem.devices[d].free;
		if (!found || free_b > best_free ||
		    (free_b == best_free && e->rec.queued < best_queued)) {
			best_free = free_b;
			best_queued = e->rec.queued;
			*index = e->index;
			found = 1;
		}
	}
	pthread_mutex_unlock(&f->lock);
	/* Where the one up went down since the wait: as if it never came. */
	return found ? 0 : fail(-EHOSTUNREACH, "no member is up");
}

int dj_fleet_put(struct dj_fleet *f, uint32_t member, const struct dj_tensor *t,
		 struct dj_fleet_handle *h)
{
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc = member == DJ_FLEET_ANY ? least_loaded(f, &member) : 0;

	if (rc == 0)
		rc = member_conn(f, member, &e, &conn);
	if (rc != 0)
		return rc;
	h->member = member;
	return settle(e, conn, "put", dj_put(fresh(conn), t, &h->handle));
}

int dj_fleet_get(struct dj_fleet *f, struct dj_fleet_handle h, struct dj_tensor *t)
{
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc = member_conn(f, h.member, &e, &conn);

	return rc != 0 ? rc : settle(e, conn, "get", dj_get(fresh(conn), h.handle, t));
}

int dj_fleet_describe(struct dj_fleet *f, struct dj_fleet_handle h, struct dj_tensor_desc *desc)
{
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc = member_conn(f, h.member, &e, &conn);

	return rc != 0 ? rc : settle(e, conn, "describe", dj_describe(fresh(conn), h.handle, desc));
}

int dj_fleet_free(struct dj_fleet *f, struct dj_fleet_handle h)
{
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc = member_conn(f, h.member, &e, &conn);

	return rc != 0 ? rc : settle(e, conn, "free", dj_free(fresh(conn), h.handle));
}

int dj_fleet_execute(struct dj_fleet *f, const char *op, const struct dj_fleet_handle *inputs,
		     int n_in, const char *attrs_json, struct dj_fleet_handle *out,
		     struct dj_tensor_desc *out_desc)
{
	uint64_t handles[DJ_MAX_OP_ARGS];
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc;

	if (n_in < 1 || n_in > DJ_MAX_OP_ARGS || inputs == NULL)
		return fail(-EINVAL, "an operation takes 1 to %d inputs here", DJ_MAX_OP_ARGS);
	for (int i = 0; i < n_in; i++) {
		if (inputs[i].member != inputs[0].member)
			return fail(-EXDEV, "inputs 0 and %d are on members #%u and #%u: move them "
				    "to one member first", i, inputs[0].member, inputs[i].member);
		handles[i] = inputs[i].handle;
	}
	rc = member_conn(f, inputs[0].member, &e, &conn);
	if (rc != 0)
		return rc;
	rc = dj_execute(fresh(conn), op, handles, n_in, attrs_json, out != NULL ? &out->handle : NULL,
			out_desc);
	if (rc == 0 && out != NULL)
		out->member = inputs[0].member;
	return settle(e, conn, op, rc);
}

int dj_fleet_execute_batch(struct dj_fleet *f, uint32_t member, const struct dj_batch_op *ops,
			   int n_ops, struct dj_fleet_handle *outputs)
{
	uint64_t *handles = n_ops > 0 ? calloc((size_t)n_ops, sizeof(*handles)) : NULL;
	struct fl_entry *e;
	struct dj_conn *conn;
	int rc = handles == NULL ? fail(-EINVAL, "an empty batch") : 0;

	if (rc == 0)
		rc = member_conn(f, member, &e, &conn);
	if (rc == 0) {
		rc = settle(e, conn, "batch", dj_execute_batch(fresh(conn), ops, n_ops, handles));
		for (int i = 0; i < n_ops && rc == 0; i++)
			outputs[i] = (struct dj_fleet_handle){.member = member, .handle = handles[i]};
	}
	free(handles);
	return rc;
}

/* ---- moves ---------------------------------------------------------------------------- */

/* A one-time receive grant for desc in this client's session on dst. */
static int move_grant(struct fl_entry *dst, struct dj_conn *conn,
		      const struct dj_tensor_desc *desc, char grant[64])
{
	cJSON *m = ctl_client_msg("FLEET_GRANT"), *reply = NULL;
	const cJSON *g;
	int rc = m != NULL && ctl_desc_to_json(m, desc) == 0 ? 0 : -ENOMEM;

	if (rc == 0)
		rc = ctl_client_call(fresh(conn), m, NULL, 0, NULL, 0, &reply);
	else
		cJSON_Delete(m);
	g = cJSON_GetObjectItemCaseSensitive(reply, "grant");
	if (rc == 0 && (!cJSON_IsString(g) || strlen(g->valuestring) >= 64))
		rc = -EBADMSG;
	if (rc == 0)
		snprintf(grant, 64, "%s", g->valuestring);
	cJSON_Delete(reply);
	return settle(dst, conn, "receive grant", rc);
}

static void move_info(const cJSON *reply, struct dj_fleet_move_info *info)
{
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(reply, "path");
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(reply, "path_reason");
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(reply, "bytes");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(reply, "ns");

	if (cJSON_IsString(path))
		dj_path_parse(path->valuestring, &info->path);
	if (cJSON_IsString(reason))
		snprintf(info->path_reason, sizeof(info->path_reason), "%s", reason->valuestring);
	info->bytes = cJSON_IsNumber(bytes) ? (uint64_t)bytes->valuedouble : 0;
	info->server_ns = cJSON_IsNumber(ns) ? (uint64_t)ns->valuedouble : 0;
}

int dj_fleet_move(struct dj_fleet *f, struct dj_fleet_handle h, uint32_t to, unsigned int flags,
		  struct dj_fleet_handle *out, struct dj_fleet_move_info *info)
{
	struct dj_fleet_move_info local;
	struct fl_entry *src, *dst;
	struct dj_conn *sconn, *dconn;
	struct dj_tensor_desc desc;
	uint64_t t0 = djc_time_ns();
	char grant[64], why[128];
	cJSON *m, *reply = NULL;
	int rc;

	info = info != NULL ? info : &local;
	memset(info, 0, sizeof(*info));
	rc = member_conn(f, h.member, &src, &sconn);
	if (rc == 0)
		rc = member_conn(f, to, &dst, &dconn);
	if (rc == 0)
		rc = settle(src, sconn, "describe", dj_describe(fresh(sconn), h.handle, &desc));
	if (rc == 0)
		rc = move_grant(dst, dconn, &desc, grant);
	if (rc != 0)
		return rc;
	m = ctl_client_msg("FLEET_MOVE");
	if (m == NULL || ctl_json_add_handle(m, "handle", h.handle) == NULL ||
	    cJSON_AddStringToObject(m, "to", dst->endpoint) == NULL ||
	    cJSON_AddStringToObject(m, "grant", grant) == NULL ||
	    cJSON_AddBoolToObject(m, "copy", (flags & DJ_FLEET_COPY) != 0) == NULL) {
		cJSON_Delete(m);
		return fail(-ENOMEM, "out of memory");
	}
	rc = ctl_client_call(fresh(sconn), m, NULL, 0, NULL, 0, &reply);
	if (rc == 0 && ctl_json_handle(reply, "handle", &out->handle, why) != 0)
		rc = -EBADMSG;
	if (rc == 0) {
		out->member = to;
		move_info(reply, info);
	}
	cJSON_Delete(reply);
	info->total_ns = djc_time_ns() - t0;
	return settle(src, sconn, "move", rc);
}
