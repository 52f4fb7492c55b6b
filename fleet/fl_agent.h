/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_FLEET_AGENT_H
#define DJINN_FLEET_AGENT_H

/**
 * @file
 * A server's membership in a fleet (docs/FLEET.md), run by djinn-dp beside
 * its control plane:
 *
 *  - static fleet (the embedded default): the members are a list given at
 *    start; each member and client reads the others' capabilities and load
 *    through STATS;
 *  - etcd: the member registers its record (ctl_server_member_json()) under
 *    prefix + id with a lease of ttl_s seconds, rewrites it about once a
 *    second (its load) and keeps the lease alive; killed, it leaves the
 *    fleet within the TTL; stopped in order, at once (lease revoked). It
 *    reads the prefix to know the others. With etcd unreachable it keeps
 *    serving; back, it heals (a new lease where the old one expired, the
 *    record written again).
 *
 *   fl_agent_create(&cfg, &agent);          // before the control plane
 *   ctl_cfg.fleet.peer_check = fl_agent_peer_check; ...arg = agent;
 *   fl_agent_start(agent, server);          // once the server listens
 *   ...
 *   fl_agent_destroy(agent);                // before the server goes
 */
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fl_agent_config {
	const char *members;       /**< static: "host:port,host:port" */
	const char *members_file;  /**< static: one host:port per line */
	const char *etcd;          /**< etcd endpoint "http://host:port", or NULL */
	const char *prefix;        /**< key prefix (default "/djinn/fleet/") */
	uint32_t ttl_s;            /**< lease TTL (default 3) */
	uint32_t refresh_ms;       /**< record rewrite and keepalive (default 1000) */
	uint32_t poll_ms;          /**< view refresh (default 500) */
};

struct fl_agent;

/** Parse the configuration (static list read, etcd client made); nothing
 *  runs yet. -EINVAL with a message on stderr for a bad list or URL. */
int fl_agent_create(const struct fl_agent_config *config, struct fl_agent **agent);
/** Start registering (etcd) with server's record. */
int fl_agent_start(struct fl_agent *agent, struct ctl_server *server);
/** Stop, revoke the lease (the member leaves at once), free. NULL is fine. */
void fl_agent_destroy(struct fl_agent *agent);

/** For ctl_fleet_config.peer_check: host:port must be a member (in the
 *  static list, or in the last etcd view). */
int fl_agent_peer_check(void *agent, const char *host, uint16_t port, char *why);
/** For ctl_fleet_config.stats: the membership as STATS' "fleet" object. */
void fl_agent_stats(void *agent, cJSON *fleet);

/** 1 once the member's record is in etcd under a live lease (static: 1). */
int fl_agent_registered(struct fl_agent *agent);

/** The membership ("static", "etcd" or "none"); *members receives the
 *  members in this server's view (the static list, or the last etcd view)
 *  and *stale 1 where that view is stale (etcd unreachable). Any thread. */
const char *fl_agent_members(struct fl_agent *agent, int *members, int *stale);

#ifdef __cplusplus
}
#endif

#endif
