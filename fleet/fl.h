/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_FLEET_FL_H
#define DJINN_FLEET_FL_H

/*
 * Fleet internals shared by the member agent (fl_agent.c, in djinn-dp) and
 * the fleet client (fl_client.c, dj_fleet_*): member records, static member
 * lists, the etcd v3 JSON gateway (fl_etcd.c) and a membership view with its
 * staleness (fl_view.c). docs/FLEET.md describes the records and the keys.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "controlplane/ctl_wire.h"
#include "dataplane/datapath.h"

#define FL_ENDPOINT_MAX 96
#define FL_MAX_MEMBERS 256
#define FL_DEFAULT_PREFIX "/djinn/fleet/"
#define FL_WHY_MAX 160

/* One member as its record says (STATS "member", or its etcd value). */
struct fl_member {
	char id[CTL_MEMBER_ID_MAX];
	uint64_t incarnation;
	char endpoint[FL_ENDPOINT_MAX];   /* control plane, "host:port" */
	struct dp_caps caps;              /* data-plane endpoint, GPUs, ops */
	int fleet_auth;                   /* takes member connections (has the fleet token) */
	struct ctl_mem_info mem;          /* devices' memory, the store's bytes */
	uint64_t queued, jobs, workers, connections;
	double ops_per_s, requests_per_s;
	uint64_t updated_ms;              /* the member's clock when it wrote the record (etcd) */
};

/* Parse a record; -EINVAL with why (FL_WHY_MAX) when a field is missing. */
int fl_member_from_json(const cJSON *obj, struct fl_member *m, char *why);

/*
 * A static member list: "host:port,host:port" (commas or white space), or a
 * file with one per line ('#' starts a comment). Fills up to max endpoints;
 * returns their number, or -EINVAL (with why) for a malformed entry, -ENOENT
 * for an unreadable file.
 */
int fl_static_parse(const char *list, char (*endpoints)[FL_ENDPOINT_MAX], int max, char *why);
int fl_static_read(const char *path, char (*endpoints)[FL_ENDPOINT_MAX], int max, char *why);

/* ---- etcd v3 through its JSON gateway (libcurl) ---------------------------- */

struct fl_etcd;

/* url: "http://127.0.0.1:2379"; every request gives up after timeout_ms.
 * One request at a time per fl_etcd (callers serialise). */
int fl_etcd_create(const char *url, uint32_t timeout_ms, struct fl_etcd **etcd);
void fl_etcd_destroy(struct fl_etcd *etcd);
/* The last failure's text ("connection refused", "HTTP 404: ..."). */
const char *fl_etcd_error(const struct fl_etcd *etcd);
/* A lease of ttl_s seconds; *lease receives its id. */
int fl_etcd_lease_grant(struct fl_etcd *etcd, int64_t ttl_s, int64_t *lease);
/* Refresh a lease: 0 with *ttl_s its new TTL, -ENOENT where etcd no longer
 * has it (expired while we could not reach etcd). */
int fl_etcd_lease_keepalive(struct fl_etcd *etcd, int64_t lease, int64_t *ttl_s);
int fl_etcd_lease_revoke(struct fl_etcd *etcd, int64_t lease);
/* key = value, attached to lease (0: none). */
int fl_etcd_put(struct fl_etcd *etcd, const char *key, const char *value, int64_t lease);
/* Every key under prefix: cb(key, value, arg) for each (NUL-terminated
 * copies, valid during the call); *revision receives the store's revision. */
int fl_etcd_range_prefix(struct fl_etcd *etcd, const char *prefix,
			 void (*cb)(const char *key, const char *value, void *arg), void *arg,
			 int64_t *revision);

/* Base64 (RFC 4648, padded), as the gateway carries keys and values. out
 * holds at least 4 * ((len + 2) / 3) + 1 bytes / 3 * (strlen(in) / 4) + 1.
 * Decode returns the byte count or -EINVAL. */
void fl_base64_encode(const void *in, size_t len, char *out);
int fl_base64_decode(const char *in, void *out, size_t cap);

/* ---- a membership view ------------------------------------------------------ */

/*
 * The members a source (etcd, or the STATS of a static list) said exist the
 * last time it answered, and how old that answer is. Thread safe.
 */
struct fl_view {
	pthread_mutex_t lock;
	struct fl_member *members;
	int n;
	uint64_t confirmed_ns;     /* last successful read (0: never) */
	int64_t revision;          /* etcd's, where the source is etcd */
	int stale;                 /* the last read failed */
	char error[FL_WHY_MAX];
};

void fl_view_init(struct fl_view *v);
void fl_view_fini(struct fl_view *v);
/* A successful read: the view becomes members[0..n) (copied). */
int fl_view_set(struct fl_view *v, const struct fl_member *members, int n, int64_t revision);
/* A failed read: the view stays, marked stale with why. */
void fl_view_fail(struct fl_view *v, const char *why);
/* A copy of the view (*members malloc'ed, caller frees), its age in ms
 * (UINT64_MAX: never read) and staleness; why (FL_WHY_MAX) may be NULL. */
int fl_view_get(struct fl_view *v, struct fl_member **members, int *n, uint64_t *age_ms,
		int *stale, char *why);

/* Read every member record under prefix from etcd into v (records that do
 * not parse are skipped, logged). 0, or the failure (v marked stale). */
int fl_view_read_etcd(struct fl_view *v, struct fl_etcd *etcd, const char *prefix);

/* ---- a background loop ------------------------------------------------------- */

/* A thread that sleeps between rounds and is woken at once to stop. */
struct fl_loop {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;       /* on CLOCK_MONOTONIC */
	int stop, running;
};

/* Start fn(arg) on a thread named name (at most 15 bytes). */
int fl_loop_start(struct fl_loop *l, const char *name, void *(*fn)(void *), void *arg);
/* From fn: sleep up to ns; 0 once asked to stop (then return), else 1. */
int fl_loop_sleep(struct fl_loop *l, uint64_t ns);
/* Ask the thread to stop and join it; a loop never started is fine. */
void fl_loop_stop(struct fl_loop *l);

#endif
