/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's part in a fleet of servers (docs/FLEET.md,
 * docs/CONTROL.md "Fleet"):
 *
 *  - member connections: a server that says "member" in HELLO proves the
 *    fleet's token (not the clients'), under labels of its own; its session
 *    does not linger, so a member that dies mid-move leaves nothing behind;
 *  - FLEET_GRANT: a client's one-time permission for a tensor of a given
 *    dtype and shape to arrive in its session;
 *  - FLEET_MOVE: a client asks this server (the source) to COPY or MOVE one
 *    of its tensors to another member; this server PUTs it there over its
 *    own member connection (its DPDK data path where both have one, else
 *    TCP), then presents the client's grant (FLEET_ADOPT), which moves the
 *    tensor into the client's session on the target. A MOVE frees the
 *    source only once the target confirmed;
 *  - FLEET_ADOPT: the target's side of the above;
 *  - the member record (capabilities and load) that STATS shows and a
 *    member registers in etcd.
 *
 * Grants live on the epoll thread (no lock); the outgoing member clients and
 * the load's rate sample are shared by workers and the fleet's threads,
 * under fl->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "ctl_client.h"
#include "ctl_server.h"

#define TAG "ctl-fleet"
#define GRANT_LEN 16
#define BOUNCE_CHUNK (64u << 20)
#define MAX_PEERS 256
/* One member request may take this long: the TCP path carries the whole
 * tensor in one PUT. The data path has no such bound: its transfer fails
 * only without progress (the server's dp_timeout_ms) or with a dead target
 * (the protocol's dead_timeout). */
#define MOVE_TIMEOUT_MS 120000
/* A grant is checked when the moved tensor is adopted, after the transfer:
 * it must outlive the slowest move that began in time, or a slow but live
 * move would be refused at the very end ("grant expired"). */
#define GRANT_TTL_DEFAULT_MS (MOVE_TIMEOUT_MS + 60000)

/* A client's permission for one tensor to arrive in its session. */
struct grant {
	struct grant *next;
	uint8_t secret[GRANT_LEN];
	uint64_t session;          /* the session it was made for */
	struct dj_tensor_desc desc;
	uint64_t expires_ns;
};

/* An outgoing member client (a pool of member connections) per target. */
struct peer {
	struct peer *next;
	char host[64];
	uint16_t port;
	struct dj_client *client;
};

struct ctl_fleet {
	char member_id[CTL_MEMBER_ID_MAX];
	char endpoint[96];
	uint64_t incarnation;
	struct grant *grants;      /* epoll thread only */
	uint32_t n_grants;
	pthread_mutex_t lock;      /* peers and the rate sample */
	struct peer *peers;
	int n_peers;
	uint64_t rate_t0_ns, rate_ops0, rate_req0;
	double ops_per_s, requests_per_s;
};

static const struct dj_datapath *server_dp(const struct ctl_server *srv)
{
	return srv->caps.dpdk ? srv->cfg.datapath : NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static void fleet_defaults(struct ctl_fleet_config *f)
{
	if (f->grant_ttl_ms == 0)
		f->grant_ttl_ms = GRANT_TTL_DEFAULT_MS;
	if (f->max_grants == 0)
		f->max_grants = 1024;
	if (f->max_session_grants == 0)
		f->max_session_grants = 64;
}

int ctl_fleet_create(struct ctl_server *srv)
{
	struct ctl_fleet_config *cfg = &srv->cfg.fleet;
	struct ctl_fleet *fl = calloc(1, sizeof(*fl));
	int rc = 0;

	if (fl == NULL)
		return -ENOMEM;
	fleet_defaults(cfg);
	pthread_mutex_init(&fl->lock, NULL);
	srv->fleet = fl;
	if (cfg->token != NULL)
		rc = (srv->fleet_token = strdup(cfg->token)) != NULL ? 0 : -ENOMEM;
	else if (cfg->token_file != NULL)
		rc = dj_token_load(cfg->token_file, &srv->fleet_token);
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, TAG, "fleet token: %s", dj_strerror(rc));
		return rc;
	}
	if (cfg->advertise != NULL)
		snprintf(fl->endpoint, sizeof(fl->endpoint), "%s", cfg->advertise);
	else
		snprintf(fl->endpoint, sizeof(fl->endpoint), "%s:%u", srv->listen_addr, srv->port);
	if (cfg->advertise == NULL && strcmp(srv->listen_addr, "0.0.0.0") == 0)
		DJC_LOG(DJ_LOG_WARN, TAG, "listening on every address: other members and clients "
			"cannot reach %s; give the endpoint to advertise", fl->endpoint);
	if (strlen(cfg->member_id != NULL ? cfg->member_id : fl->endpoint) >= CTL_MEMBER_ID_MAX) {
		DJC_LOG(DJ_LOG_ERR, TAG, "member id longer than %d bytes", CTL_MEMBER_ID_MAX - 1);
		return -ENAMETOOLONG;
	}
	snprintf(fl->member_id, sizeof(fl->member_id), "%s",
		 cfg->member_id != NULL ? cfg->member_id : fl->endpoint);
	if (ctl_auth_random(&fl->incarnation, sizeof(fl->incarnation)) != 0)
		fl->incarnation = djc_time_ns();
	fl->rate_t0_ns = djc_time_ns();
	/* The pointers in cfg are the caller's: this copy must not outlive it. */
	cfg->token = cfg->token_file = cfg->member_id = cfg->advertise = NULL;
	if (srv->fleet_token != NULL)
		DJC_LOG(DJ_LOG_NOTICE, TAG, "fleet member %s (%s): members authenticate with the "
			"fleet token", fl->member_id, fl->endpoint);
	return 0;
}

void ctl_fleet_destroy(struct ctl_server *srv)
{
	struct ctl_fleet *fl = srv->fleet;

	if (fl == NULL)
		return;
	while (fl->grants != NULL) {
		struct grant *g = fl->grants;

		fl->grants = g->next;
		free(g);
	}
	while (fl->peers != NULL) {
		struct peer *p = fl->peers;

		fl->peers = p->next;
		dj_client_destroy(p->client);
		free(p);
	}
	pthread_mutex_destroy(&fl->lock);
	free(srv->fleet_token);
	srv->fleet_token = NULL;
	free(fl);
	srv->fleet = NULL;
}

const char *ctl_server_member_id(const struct ctl_server *srv)
{
	return srv->fleet->member_id;
}

uint64_t ctl_server_incarnation(const struct ctl_server *srv)
{
	return srv->fleet->incarnation;
}

/* ---- member authentication ------------------------------------------------- */

int ctl_fleet_hello(struct ctl_conn *c, const cJSON *hello, char *why)
{
	const cJSON *member = cJSON_GetObjectItemCaseSensitive(hello, "member");

	if (member == NULL)
		return 0;
	if (!cJSON_IsString(member) || member->valuestring[0] == '\0' ||
	    strlen(member->valuestring) >= CTL_MEMBER_ID_MAX) {
		snprintf(why, CTL_ERRMSG_MAX, "HELLO 'member' must be a member id of 1 to %d bytes",
			 CTL_MEMBER_ID_MAX - 1);
		return -DJ_EAUTH;
	}
	if (c->srv->fleet_token == NULL) {
		snprintf(why, CTL_ERRMSG_MAX, "this server has no fleet token: it accepts no members");
		return -DJ_EAUTH;
	}
	c->member = 1;
	snprintf(c->member_id, sizeof(c->member_id), "%s", member->valuestring);
	return 0;
}

void ctl_fleet_auth_params(const struct ctl_conn *c, const char **token,
			   const char **label_client, const char **label_server)
{
	*token = c->member ? c->srv->fleet_token : c->srv->token;
	*label_client = c->member ? CTL_FLEET_LABEL_MEMBER : CTL_AUTH_LABEL_CLIENT;
	*label_server = c->member ? CTL_FLEET_LABEL_SERVER : CTL_AUTH_LABEL_SERVER;
}

/* ---- the member record ------------------------------------------------------- */

/* Recent rates: over the time since the previous sample, once that is at
 * least a second old (the fleet's agent samples about once a second). */
static void rates_sample(struct ctl_server *srv, double *ops, double *requests)
{
	struct ctl_fleet *fl = srv->fleet;
	uint64_t now = djc_time_ns(), o = srv->st.ops, r = srv->st.requests;

	pthread_mutex_lock(&fl->lock);
	if (now - fl->rate_t0_ns >= 1000000000ull) {
		double dt = (double)(now - fl->rate_t0_ns) / 1e9;

		fl->ops_per_s = (double)(o - fl->rate_ops0) / dt;
		fl->requests_per_s = (double)(r - fl->rate_req0) / dt;
		fl->rate_t0_ns = now;
		fl->rate_ops0 = o;
		fl->rate_req0 = r;
	}
	*ops = fl->ops_per_s;
	*requests = fl->requests_per_s;
	pthread_mutex_unlock(&fl->lock);
}

static cJSON *load_json(struct ctl_server *srv, const struct ctl_mem_info *mi)
{
	cJSON *load = cJSON_CreateObject();
	cJSON *devs = cJSON_AddArrayToObject(load, "devices");
	uint64_t queued, running;
	double ops, requests;

	for (int i = 0; i < mi->n_devices && devs != NULL; i++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddStringToObject(d, "name", mi->devices[i].name);
		cJSON_AddStringToObject(d, "mem", mi->devices[i].mem == DJ_MEM_GPU ? "gpu" : "host");
		cJSON_AddNumberToObject(d, "mem_total", (double)mi->devices[i].total);
		cJSON_AddNumberToObject(d, "mem_free", (double)mi->devices[i].free);
		/* Per device, so that a scheduler places on (server, GPU). */
		cJSON_AddNumberToObject(d, "mem_used", (double)mi->devices[i].used);
		cJSON_AddNumberToObject(d, "tensors", (double)mi->devices[i].tensors);
		cJSON_AddNumberToObject(d, "ops", (double)mi->devices[i].ops);
		cJSON_AddNumberToObject(d, "running", (double)mi->devices[i].running);
		cJSON_AddNumberToObject(d, "queued", (double)mi->devices[i].queued);
		cJSON_AddNumberToObject(d, "sessions", (double)mi->devices[i].sessions);
		cJSON_AddNumberToObject(d, "numa_node", mi->devices[i].numa_node);
		cJSON_AddItemToArray(devs, d);
	}
	rates_sample(srv, &ops, &requests);
	ctl_server_jobs(srv, &queued, &running);
	cJSON_AddNumberToObject(load, "store_bytes", (double)mi->store_bytes);
	cJSON_AddNumberToObject(load, "store_limit", (double)mi->store_limit);
	cJSON_AddNumberToObject(load, "queued", (double)queued);
	cJSON_AddNumberToObject(load, "jobs", (double)(queued + running));
	cJSON_AddNumberToObject(load, "workers", srv->cfg.n_workers);
	cJSON_AddNumberToObject(load, "ops_per_s", ops);
	cJSON_AddNumberToObject(load, "requests_per_s", requests);
	cJSON_AddNumberToObject(load, "connections", (double)srv->st.open);
	return load;
}

cJSON *ctl_server_member_json(struct ctl_server *srv)
{
	struct ctl_fleet *fl = srv->fleet;
	struct ctl_mem_info mi = {0};
	struct dp_caps caps = srv->caps;
	char inc[20];
	cJSON *m = cJSON_CreateObject();

	if (srv->be->mem_info != NULL && srv->be->mem_info(srv->bctx, &mi) == 0) {
		/* HELLO's GPUs, with their memory as of now. */
		for (int i = 0; i < caps.n_gpus && i < mi.n_devices; i++) {
			caps.gpus[i].mem_total = mi.devices[i].total;
			caps.gpus[i].mem_free = mi.devices[i].free;
		}
	}
	ctl_handle_format(fl->incarnation, inc);
	cJSON_AddStringToObject(m, "id", fl->member_id);
	cJSON_AddStringToObject(m, "incarnation", inc);
	cJSON_AddStringToObject(m, "endpoint", fl->endpoint);
	cJSON_AddBoolToObject(m, "fleet_auth", srv->fleet_token != NULL);
	cJSON_AddItemToObject(m, "caps", ctl_caps_to_json(&caps));
	cJSON_AddItemToObject(m, "load", load_json(srv, &mi));
	if (cJSON_GetObjectItemCaseSensitive(m, "load") == NULL ||
	    cJSON_GetObjectItemCaseSensitive(m, "caps") == NULL ||
	    cJSON_GetObjectItemCaseSensitive(m, "endpoint") == NULL) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

void ctl_fleet_stats(struct ctl_server *srv, cJSON *reply)
{
	cJSON *member = ctl_server_member_json(srv);
	cJSON *fleet;

	if (member != NULL && !cJSON_AddItemToObject(reply, "member", member))
		cJSON_Delete(member);
	if (srv->cfg.fleet.stats == NULL)
		return;
	fleet = cJSON_AddObjectToObject(reply, "fleet");
	if (fleet != NULL)
		srv->cfg.fleet.stats(srv->cfg.fleet.arg, fleet);
}

/* ---- grants (epoll thread) ---------------------------------------------------- */

static void grants_prune(struct ctl_fleet *fl, uint64_t now)
{
	struct grant **pp = &fl->grants, *g;

	while ((g = *pp) != NULL) {
		if (now >= g->expires_ns) {
			*pp = g->next;
			free(g);
			fl->n_grants--;
		} else {
			pp = &g->next;
		}
	}
}

static uint32_t session_grants(const struct ctl_fleet *fl, uint64_t session)
{
	uint32_t n = 0;

	for (const struct grant *g = fl->grants; g != NULL; g = g->next)
		n += g->session == session;
	return n;
}

static int on_grant(struct ctl_conn *c, const cJSON *msg, uint64_t id, char *err)
{
	struct ctl_server *srv = c->srv;
	struct ctl_fleet *fl = srv->fleet;
	uint64_t now = djc_time_ns(), ttl = srv->cfg.fleet.grant_ttl_ms;
	char hex[2 * GRANT_LEN + 1];
	struct grant *g;
	cJSON *reply;
	int rc;

	grants_prune(fl, now);
	if (srv->fleet_token == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "this server has no fleet token: it takes no moves");
		return -DJ_EAUTH;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	rc = ctl_desc_from_json(msg, &g->desc, err);
	if (rc == 0 && cJSON_GetObjectItemCaseSensitive(msg, "ttl_ms") != NULL &&
	    (rc = ctl_json_u64(msg, "ttl_ms", &ttl, err)) == 0 &&
	    (ttl == 0 || ttl > srv->cfg.fleet.grant_ttl_ms)) {
		snprintf(err, CTL_ERRMSG_MAX, "ttl_ms must be 1 to %u", srv->cfg.fleet.grant_ttl_ms);
		rc = -EINVAL;
	}
	if (rc == 0 && (fl->n_grants >= srv->cfg.fleet.max_grants ||
			session_grants(fl, c->sess->id) >= srv->cfg.fleet.max_session_grants)) {
		snprintf(err, CTL_ERRMSG_MAX, "too many grants outstanding (%u in this session, %u "
			 "on this server)", session_grants(fl, c->sess->id), fl->n_grants);
		rc = -DJ_ELIMIT;
	}
	if (rc == 0 && ctl_auth_random(g->secret, GRANT_LEN) != 0)
		rc = -EIO;
	if (rc != 0) {
		free(g);
		return rc;
	}
	g->session = c->sess->id;
	g->expires_ns = now + ttl * 1000000ull;
	ctl_hex_encode(g->secret, GRANT_LEN, hex);
	reply = ctl_reply_new(id, "FLEET_GRANT");
	if (reply == NULL || cJSON_AddStringToObject(reply, "grant", hex) == NULL ||
	    cJSON_AddNumberToObject(reply, "ttl_ms", (double)ttl) == NULL ||
	    cJSON_AddStringToObject(reply, "member", fl->member_id) == NULL ||
	    cJSON_AddStringToObject(reply, "endpoint", fl->endpoint) == NULL) {
		cJSON_Delete(reply);
		free(g);
		return -ENOMEM;
	}
	g->next = fl->grants;
	fl->grants = g;
	fl->n_grants++;
	ctl_send(c, reply);
	return 0;
}

/* Take the grant with this secret off the list (one use only), compared in
 * constant time: the secret is all a member shows. */
static struct grant *grant_take(struct ctl_fleet *fl, const uint8_t secret[GRANT_LEN])
{
	struct grant **pp, *found = NULL, **found_pp = NULL;

	for (pp = &fl->grants; *pp != NULL; pp = &(*pp)->next) {
		if (ctl_auth_equal((*pp)->secret, secret, GRANT_LEN) && found == NULL) {
			found = *pp;
			found_pp = pp;
		}
	}
	if (found != NULL) {
		*found_pp = found->next;
		fl->n_grants--;
	}
	return found;
}

static int adopt_checks(struct ctl_conn *c, const struct grant *g, uint64_t handle,
			struct ctl_session **target, char *err)
{
	struct ctl_server *srv = c->srv;
	struct dj_tensor_desc have;
	char a[64], b[64];
	int rc;

	if (djc_time_ns() >= g->expires_ns) {
		snprintf(err, CTL_ERRMSG_MAX, "grant expired");
		return -EACCES;
	}
	*target = ctl_session_find(srv, g->session);
	if (*target == NULL || (*target)->bye) {
		snprintf(err, CTL_ERRMSG_MAX, "session %" PRIu64 " the grant was made for is gone",
			 g->session);
		return -ENOENT;
	}
	rc = srv->be->describe(srv->bctx, c->sess->bsess, handle, &have, err);
	if (rc != 0)
		return rc;
	if (!dj_tensor_desc_equal(&have, &g->desc)) {
		snprintf(err, CTL_ERRMSG_MAX, "tensor %s %s does not match the grant's %s %s",
			 dj_dtype_name(have.dtype), dj_shape_format(&have, a, sizeof(a)),
			 dj_dtype_name(g->desc.dtype), dj_shape_format(&g->desc, b, sizeof(b)));
		return -DJ_ESHAPE;
	}
	/* Taken now (on_adopt gives it back where the move fails): a batch
	 * on a worker may take the session's last handle meanwhile. */
	if (ctl_handles_take(srv, *target, 1, err) != 0) {
		snprintf(err, CTL_ERRMSG_MAX, "session %" PRIu64 " holds %u handles: the limit",
			 g->session, atomic_load(&(*target)->n_handles));
		return -DJ_ELIMIT;
	}
	return 0;
}

static int on_adopt(struct ctl_conn *c, const cJSON *msg, uint64_t id, char *err)
{
	struct ctl_server *srv = c->srv;
	uint8_t secret[GRANT_LEN];
	struct ctl_session *target = NULL;
	struct dj_tensor_desc desc;
	struct grant *g;
	const char *text;
	uint64_t handle, adopted = 0;
	cJSON *reply;
	int rc;

	if (!c->member) {
		snprintf(err, CTL_ERRMSG_MAX, "FLEET_ADOPT is for fleet members only");
		return -EPERM;
	}
	if (srv->be->adopt == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "this server's backend cannot hand tensors over");
		return -ENOTSUP;
	}
	rc = ctl_json_handle(msg, "handle", &handle, err);
	if (rc == 0 && (ctl_json_str(msg, "grant", &text, err) != 0 ||
			ctl_hex_decode(text, secret, GRANT_LEN) != 0)) {
		snprintf(err, CTL_ERRMSG_MAX, "field 'grant' must be %d hex digits", 2 * GRANT_LEN);
		rc = -EINVAL;
	}
	if (rc != 0)
		return rc;
	g = grant_take(srv->fleet, secret);
	if (g == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "no such grant (unknown, used or expired)");
		return -EACCES;
	}
	rc = adopt_checks(c, g, handle, &target, err);
	if (rc == 0) {
		rc = srv->be->adopt(srv->bctx, c->sess->bsess, handle, target->bsess, &adopted, err);
		if (rc != 0)
			ctl_handles_give(target, 1);
	}
	desc = g->desc;
	free(g);
	if (rc != 0)
		return rc;
	ctl_handles_give(c->sess, 1);
	DJC_LOG(DJ_LOG_INFO, TAG, "member %s: tensor 0x%" PRIx64 " adopted into session %" PRIu64,
		c->member_id, adopted, target->id);
	reply = ctl_handle_reply(id, "FLEET_ADOPT", adopted, &desc);
	if (reply != NULL && cJSON_AddStringToObject(reply, "member", srv->fleet->member_id) == NULL) {
		cJSON_Delete(reply);
		reply = NULL;
	}
	ctl_send(c, reply);
	return 0;
}

/* ---- FLEET_MOVE (worker) ------------------------------------------------------ */

struct move {
	uint64_t handle;
	char to[96], host[64];
	uint16_t port;
	const char *grant;
	int copy;
	struct dj_tensor_desc desc;
	struct ctl_tensor_io io;
	int reading;
	enum dj_path path;
	char path_reason[160];
	uint64_t target_handle;
	char target_member[CTL_MEMBER_ID_MAX];
	char err[CTL_ERRMSG_MAX];
};

static int move_parse(const cJSON *req, struct move *m)
{
	const char *to;
	const cJSON *copy = cJSON_GetObjectItemCaseSensitive(req, "copy");

	if (ctl_json_handle(req, "handle", &m->handle, m->err) != 0 ||
	    ctl_json_str(req, "to", &to, m->err) != 0 ||
	    ctl_json_str(req, "grant", &m->grant, m->err) != 0)
		return -EINVAL;
	if (copy != NULL && !cJSON_IsBool(copy)) {
		snprintf(m->err, sizeof(m->err), "field 'copy' must be true or false");
		return -EINVAL;
	}
	m->copy = cJSON_IsTrue(copy);
	if (djc_parse_host_port(to, m->host, sizeof(m->host), 1, &m->port) != 0) {
		snprintf(m->err, sizeof(m->err), "field 'to' must be \"host:port\", not \"%.40s\"", to);
		return -EINVAL;
	}
	snprintf(m->to, sizeof(m->to), "%s", to);
	return 0;
}

/* The member client for host:port, made on first use. */
static int peer_client(struct ctl_server *srv, const char *host, uint16_t port,
		       struct dj_client **client)
{
	struct ctl_fleet *fl = srv->fleet;
	struct dj_client_options o;
	struct peer *p;
	int rc = 0;

	pthread_mutex_lock(&fl->lock);
	for (p = fl->peers; p != NULL; p = p->next)
		if (p->port == port && strcmp(p->host, host) == 0)
			break;
	if (p == NULL && fl->n_peers >= MAX_PEERS)
		rc = -ENOSPC;
	if (p == NULL && rc == 0) {
		p = calloc(1, sizeof(*p));
		rc = p == NULL ? -ENOMEM : 0;
	}
	if (rc == 0 && p->client == NULL) {
		dj_client_options_init(&o);
		snprintf(p->host, sizeof(p->host), "%s", host);
		p->port = port;
		o.host = p->host;
		o.port = port;
		o.token = srv->fleet_token;
		o.path = srv->cfg.fleet.move_path;
		o.datapath = server_dp(srv);
		/* The data path's deadline follows progress, not size: a large
		 * move that keeps moving never times out, one that stands still
		 * for dp_timeout_ms is redone over TCP, a dead target fails it
		 * within the protocol's dead_timeout. */
		o.dp_timeout_ms = srv->cfg.dp_timeout_ms;
		o.max_retries = 2;
		o.request_timeout_ms = MOVE_TIMEOUT_MS;
		rc = ctl_client_create_member(&o, fl->member_id, &p->client);
		if (rc == 0) {
			p->next = fl->peers;
			fl->peers = p;
			fl->n_peers++;
		} else {
			free(p);
		}
	}
	if (rc == 0)
		*client = p->client;
	pthread_mutex_unlock(&fl->lock);
	return rc;
}

/* GPU bytes over TCP: the fallback reads host memory, so copy them out
 * first (whole: the TCP fallback between servers is the slow path). */
static int put_bounced(struct ctl_server *srv, struct ctl_job *job, struct dj_conn *conn,
		       struct move *m, uint64_t *handle)
{
	struct dj_tensor t = {.desc = m->desc, .mem = DJ_MEM_HOST};
	uint64_t n = m->io.nbytes;
	enum dj_path used;
	int rc = 0;

	t.data = n > 0 ? malloc(n) : NULL;
	if (n > 0 && t.data == NULL)
		return -ENOMEM;
	for (uint64_t off = 0; off < n && rc == 0; off += BOUNCE_CHUNK)
		rc = srv->be->read_chunk(srv->bctx, job->bsess, &m->io, off, (char *)t.data + off,
					 n - off < BOUNCE_CHUNK ? n - off : BOUNCE_CHUNK, m->err);
	if (rc == 0)
		rc = ctl_client_put(conn, &t, &used, handle);
	free(t.data);
	return rc;
}

/* PUT the source into a new tensor of this server's member session on the
 * target; say which path carried it and why. */
static int move_put(struct ctl_server *srv, struct ctl_job *job, struct dj_conn *conn,
		    struct move *m, uint64_t *handle)
{
	struct dj_tensor t = {.desc = m->desc, .mem = m->io.mem,
			      .data = m->io.host != NULL ? m->io.host : m->io.dp_addr};
	const char *reason;
	enum dj_path before = dj_conn_path(conn, &reason);
	int rc;

	snprintf(m->path_reason, sizeof(m->path_reason), "%s", reason);
	rc = t.data == NULL && m->io.nbytes > 0 ? -ENOTSUP :
	     ctl_client_put(conn, &t, &m->path, handle);
	if (rc == -ENOTSUP && m->io.mem == DJ_MEM_GPU) {
		m->path = DJ_PATH_TCP;
		rc = put_bounced(srv, job, conn, m, handle);
		snprintf(m->path_reason, sizeof(m->path_reason), "%s; GPU bytes copied to host "
			 "memory for TCP", before == DJ_PATH_DPDK ? "the data-plane transfer failed" :
			 reason);
	} else if (rc == 0 && before == DJ_PATH_DPDK && m->path == DJ_PATH_TCP) {
		snprintf(m->path_reason, sizeof(m->path_reason), "the data-plane transfer failed: "
			 "redone over TCP");
	}
	if (rc != 0 && m->err[0] == '\0')
		snprintf(m->err, sizeof(m->err), "transfer failed: %s%s%s", dj_strerror(rc),
			 dj_conn_last_error(conn)[0] ? ": " : "", dj_conn_last_error(conn));
	return rc;
}

static int move_adopt(struct dj_conn *conn, struct move *m, uint64_t handle)
{
	cJSON *msg = ctl_client_msg("FLEET_ADOPT"), *reply = NULL;
	const cJSON *member;
	char why[128];
	int rc;

	if (msg == NULL || ctl_json_add_handle(msg, "handle", handle) == NULL ||
	    cJSON_AddStringToObject(msg, "grant", m->grant) == NULL) {
		cJSON_Delete(msg);
		return -ENOMEM;
	}
	rc = ctl_client_call(conn, msg, NULL, 0, NULL, 0, &reply);
	if (rc == 0 && ctl_json_handle(reply, "handle", &m->target_handle, why) != 0)
		rc = -EBADMSG;
	member = cJSON_GetObjectItemCaseSensitive(reply, "member");
	if (rc == 0 && cJSON_IsString(member))
		snprintf(m->target_member, sizeof(m->target_member), "%s", member->valuestring);
	if (rc != 0)
		snprintf(m->err, sizeof(m->err), "target refused the grant: %s",
			 dj_conn_last_error(conn)[0] ? dj_conn_last_error(conn) : dj_strerror(rc));
	cJSON_Delete(reply);
	return rc;
}

/* Connect, PUT, ADOPT; on failure the target keeps nothing of ours. */
static int move_to_target(struct ctl_server *srv, struct ctl_job *job, struct move *m)
{
	struct dj_client *client;
	struct dj_conn *conn = NULL;
	uint64_t staged = 0;
	int rc = peer_client(srv, m->host, m->port, &client);

	if (rc == 0 && (rc = dj_connect(client, &conn)) != 0)
		snprintf(m->err, sizeof(m->err), "cannot reach the target as a fleet member: %s",
			 dj_strerror(rc));
	if (rc == 0) {
		/* A pooled connection: an earlier move's error text is not ours. */
		ctl_client_error_set(conn, "%s", "");
		rc = move_put(srv, job, conn, m, &staged);
	}
	if (rc == 0) {
		rc = move_adopt(conn, m, staged);
		if (rc != 0 && dj_free(conn, staged) != 0)
			dj_conn_close(conn); /* its session (and the tensor) go with it */
		else
			dj_disconnect(conn);
	} else if (conn != NULL) {
		dj_disconnect(conn);
	}
	return rc;
}

static cJSON *move_reply(struct ctl_job *job, const struct move *m, int freed, uint64_t ns)
{
	cJSON *r = ctl_handle_reply(job->id, "FLEET_MOVE", m->target_handle, &m->desc);

	if (r == NULL || cJSON_AddStringToObject(r, "to", m->to) == NULL ||
	    cJSON_AddStringToObject(r, "member", m->target_member) == NULL ||
	    cJSON_AddStringToObject(r, "path", dj_path_name(m->path)) == NULL ||
	    cJSON_AddStringToObject(r, "path_reason", m->path_reason) == NULL ||
	    cJSON_AddNumberToObject(r, "bytes", (double)m->io.nbytes) == NULL ||
	    cJSON_AddNumberToObject(r, "ns", (double)ns) == NULL ||
	    cJSON_AddBoolToObject(r, "source_freed", freed) == NULL) {
		cJSON_Delete(r);
		return NULL;
	}
	return r;
}

static cJSON *move_job(struct ctl_server *srv, struct ctl_job *job)
{
	struct move *m = calloc(1, sizeof(*m));
	uint64_t t0 = djc_time_ns();
	char ignored[CTL_ERRMSG_MAX], err[CTL_ERRMSG_MAX];
	int rc = m == NULL ? -ENOMEM : move_parse(job->req, m), freed = 0;
	cJSON *reply;

	if (rc == 0 && srv->fleet_token == NULL) {
		snprintf(m->err, sizeof(m->err), "this server has no fleet token: it makes no moves");
		rc = -DJ_EAUTH;
	}
	if (rc == 0 && srv->cfg.fleet.peer_check != NULL)
		rc = srv->cfg.fleet.peer_check(srv->cfg.fleet.arg, m->host, m->port, m->err);
	if (rc == 0)
		rc = srv->be->describe(srv->bctx, job->bsess, m->handle, &m->desc, m->err);
	if (rc == 0 && (rc = srv->be->read_begin(srv->bctx, job->bsess, m->handle, &m->io,
						   m->err)) == 0)
		m->reading = 1;
	if (rc == 0)
		rc = move_to_target(srv, job, m);
	if (m != NULL && m->reading)
		srv->be->read_end(srv->bctx, job->bsess, &m->io);
	/* A MOVE lets go of the source only once the target has the tensor. */
	if (rc == 0 && !m->copy && srv->be->free(srv->bctx, job->bsess, m->handle, ignored) == 0) {
		freed = 1;
		job->handles_delta = -1;
	}
	if (rc != 0) {
		srv->st.moves_failed++;
		snprintf(err, sizeof(err), "move to %.96s: %.150s", m != NULL ? m->to : "?",
			 m != NULL ? m->err : "out of memory");
		DJC_LOG(DJ_LOG_NOTICE, TAG, "%s", err);
		free(m);
		return ctl_error_new(job->id, rc, err);
	}
	srv->st.moves_out++;
	DJC_LOG(DJ_LOG_INFO, TAG, "%s 0x%" PRIx64 " (%" PRIu64 " B) to %s over %s in %.1f ms",
		m->copy ? "copied" : "moved", m->handle, m->io.nbytes, m->to, dj_path_name(m->path),
		(double)(djc_time_ns() - t0) / 1e6);
	reply = move_reply(job, m, freed, djc_time_ns() - t0);
	free(m);
	return reply;
}

/* ---- dispatch ------------------------------------------------------------------ */

int ctl_fleet_dispatch(struct ctl_conn *c, const char *type, const cJSON *msg, uint64_t id,
		       uint64_t payload_len)
{
	static const char *const known[] = {"FLEET_GRANT", "FLEET_ADOPT", "FLEET_MOVE"};
	char err[CTL_ERRMSG_MAX] = "";
	size_t k = 0;
	int rc;

	while (k < sizeof(known) / sizeof(known[0]) && strcmp(type, known[k]) != 0)
		k++;
	if (k == sizeof(known) / sizeof(known[0]) || payload_len > 0) {
		/* As for any other message: the payload is skipped. */
		if (payload_len > 0 && k < sizeof(known) / sizeof(known[0]))
			snprintf(err, sizeof(err), "%.16s carries no payload", type);
		else
			snprintf(err, sizeof(err), "unknown message type '%.32s'", type);
		c->srv->st.protocol_errors++;
		rc = payload_len > 0 && k < sizeof(known) / sizeof(known[0]) ? -EPROTO : -EBADMSG;
	} else if (c->sess == NULL) {
		snprintf(err, sizeof(err), "%.32s needs a SESSION first", type);
		rc = -EPROTO;
	} else if (k == 0) {
		rc = on_grant(c, msg, id, err);
	} else if (k == 1) {
		rc = on_adopt(c, msg, id, err);
	} else {
		rc = ctl_submit(c->srv, c, id, (cJSON *)msg, move_job, NULL);
	}
	if (rc != 0)
		ctl_send_error(c, id, rc, err[0] != '\0' ? err : dj_strerror(rc));
	return rc;
}
