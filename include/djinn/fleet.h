/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_FLEET_H
#define DJINN_FLEET_H

/**
 * @file
 * The fleet client: one client over every server of a fleet (docs/FLEET.md).
 *
 *   struct dj_fleet_options o;  dj_fleet_options_init(&o);
 *   o.etcd = "http://10.0.0.1:2379";          // or o.members = "10.0.0.2:18515,..."
 *   dj_fleet_create(&o, &fleet);
 *   dj_fleet_put(fleet, DJ_FLEET_ANY, &a, &ha);        // on the least loaded member
 *   dj_fleet_move(fleet, ha, b_index, 0, &hb, NULL);   // server to server
 *   dj_fleet_execute(fleet, "relu", &hb, 1, NULL, &hc, NULL);  // on hc's member
 *   dj_fleet_get(fleet, hc, &c);
 *   dj_fleet_destroy(fleet);
 *
 * Membership comes from a static list (each member's capabilities and load
 * read through its STATS) or from etcd (each member's record under a key
 * prefix), refreshed in the background. A handle names its member: requests
 * go to that member, in this client's session there. A member that left
 * the view (etcd: its lease expired; static: it stopped answering STATS), or
 * came back as a new incarnation (restarted: its tensors are gone), makes
 * its handles fail with -EHOSTDOWN, the member named in
 * dj_fleet_last_error(). Where the membership source stops answering, the
 * client keeps its last view and says so (dj_fleet_view: stale, age).
 *
 * Threads: every call may be made from several threads at once.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/djinn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DJ_FLEET_ID_MAX 64
#define DJ_FLEET_ENDPOINT_MAX 96
#define DJ_FLEET_MAX_DEVICES 16
/** dj_fleet_put() to the member with the most free memory. */
#define DJ_FLEET_ANY UINT32_MAX
/** dj_fleet_move() flag: keep the source (COPY) rather than free it (MOVE). */
#define DJ_FLEET_COPY 1u

struct dj_fleet_options {
	const char *members;       /**< static: "host:port,host:port" */
	const char *members_file;  /**< static: one host:port per line ('#' comments) */
	const char *etcd;          /**< etcd v3 endpoint "http://host:port" */
	const char *prefix;        /**< etcd key prefix (default "/djinn/fleet/") */
	uint32_t refresh_ms;       /**< view refresh (default 500) */
	/** How long a call that picks a member (dj_fleet_put to DJ_FLEET_ANY)
	 * waits for one to be up where none is: servers of a static list may
	 * still be starting when the client is created (default 10000;
	 * 0: fail at once). */
	uint32_t member_wait_ms;
	/** Options of every member connection (token, TLS, path, timeouts;
	 * request_timeout_ms defaults to 120 s here: a move is answered once
	 * its bytes crossed); host and port are the members'. */
	struct dj_client_options client;
};

/** Fill options with the defaults above (client: dj_client_options_init). */
void dj_fleet_options_init(struct dj_fleet_options *opts);

/** A tensor on one member: the member's index in this client's table
 * (dj_fleet_member.index) and the member's handle for it. */
struct dj_fleet_handle {
	uint32_t member;
	uint64_t handle;
};

struct dj_fleet_device {
	char name[64];             /**< "cuda:0", "host" */
	int gpu;                   /**< 1: GPU memory */
	uint64_t mem_total, mem_free;
	/** Operations (and moves) running on it / waiting for it. */
	uint64_t running, queued;
};

/** One member as the view shows it. */
struct dj_fleet_member {
	uint32_t index;            /**< what dj_fleet_handle.member names */
	char id[DJ_FLEET_ID_MAX];
	uint64_t incarnation;      /**< changes when the server restarts */
	char endpoint[DJ_FLEET_ENDPOINT_MAX]; /**< control plane, "host:port" */
	int up;                    /**< in the current view */
	int fleet_auth;            /**< accepts moves (has the fleet token) */
	int dpdk;                  /**< has a DPDK data plane */
	char dp_ipv4[16];          /**< its data-plane address, where dpdk */
	uint16_t dp_udp_port, dp_mtu;
	int n_devices;
	struct dj_fleet_device devices[DJ_FLEET_MAX_DEVICES];
	int n_ops;                 /**< operations it runs */
	uint64_t store_bytes, store_limit; /**< resident tensors; limit 0: none */
	uint64_t queued, jobs;     /**< requests waiting for a worker / in flight */
	double ops_per_s, requests_per_s; /**< recent rates */
	uint64_t age_ms;           /**< since this record was read */
};

enum dj_fleet_source { DJ_FLEET_SOURCE_STATIC = 0, DJ_FLEET_SOURCE_ETCD = 1 };

/** The view as a whole. */
struct dj_fleet_view {
	enum dj_fleet_source source;
	int stale;                 /**< the source did not answer the last read:
					this is the last view it gave */
	uint64_t age_ms;           /**< since the source last answered (UINT64_MAX: never) */
	int n_members;             /**< up */
	char error[160];           /**< why it is stale */
};

struct dj_fleet;

/**
 * Read the membership once, then keep it fresh in the background (every
 * refresh_ms). A static list is the membership itself: its members are in
 * the view whether they answer yet or not, those that do not down until
 * they do (servers started after the client come up at a later refresh;
 * dj_fleet_wait() waits for them). etcd must answer this first read
 * (-EHOSTUNREACH, its error in dj_fleet_last_error()); members it does not
 * list yet join later. Sessions open on first use of a member.
 * @return 0, -EINVAL (bad list or URL), -ENOMEM, -EHOSTUNREACH (etcd).
 */
int dj_fleet_create(const struct dj_fleet_options *opts, struct dj_fleet **fleet);
/** Close every session (their tensors are freed) and the background thread. */
void dj_fleet_destroy(struct dj_fleet *fleet);

/**
 * The view: the whole (view, may be NULL) and up to max members (members
 * may be NULL), those up first. Members that left stay listed with up = 0
 * until replaced. @return the number of members written.
 */
int dj_fleet_view(struct dj_fleet *fleet, struct dj_fleet_view *view,
		  struct dj_fleet_member *members, int max);
/**
 * Member @p index of this client's table as the view has it now (up or
 * left), without a request.
 * @return 0, -ESTALE (it restarted: a newer incarnation took its place and
 * its tensors are gone), -EINVAL (no such index).
 */
int dj_fleet_member_info(struct dj_fleet *fleet, uint32_t index, struct dj_fleet_member *member);
/** Read the membership now instead of waiting for the background refresh.
 *  @return 0, -EHOSTUNREACH (no static member answered; etcd's error). */
int dj_fleet_refresh(struct dj_fleet *fleet);
/**
 * Wait until at least @p n members are up (each refresh is looked at as it
 * ends), at most @p timeout_ms: for a client started beside its servers.
 * @return 0, -ETIMEDOUT (how many are up and, where none, why, in
 * dj_fleet_last_error()), -EINVAL (n < 1).
 */
int dj_fleet_wait(struct dj_fleet *fleet, int n, uint32_t timeout_ms);
/** A member by id, by endpoint "host:port", or by index "#N", among those
 *  up. @return 0, -ENOENT. */
int dj_fleet_member_find(struct dj_fleet *fleet, const char *name, uint32_t *index);
/** This client's session on a member (opened on first use), for calls of
 *  djinn.h; borrowed: valid until dj_fleet_destroy. @return 0, -EHOSTDOWN,
 *  or the connect error. */
int dj_fleet_conn(struct dj_fleet *fleet, uint32_t member, struct dj_conn **conn);

/* Tensor calls, routed to the member the handle names. Each returns 0 or
 * a negative errno / DJ_E* code (as djinn.h), -EHOSTDOWN for a member that
 * left, -EXDEV for inputs on different members. */

/** Upload t to member (DJ_FLEET_ANY: the one with the most free memory,
 *  waiting up to member_wait_ms for one to be up, else -EHOSTUNREACH). */
int dj_fleet_put(struct dj_fleet *fleet, uint32_t member, const struct dj_tensor *t,
		 struct dj_fleet_handle *handle);
int dj_fleet_get(struct dj_fleet *fleet, struct dj_fleet_handle handle, struct dj_tensor *t);
int dj_fleet_describe(struct dj_fleet *fleet, struct dj_fleet_handle handle,
		      struct dj_tensor_desc *desc);
int dj_fleet_free(struct dj_fleet *fleet, struct dj_fleet_handle handle);
/** Run op on the member that holds every input (-EXDEV otherwise: move them
 *  first); the output stays there. */
int dj_fleet_execute(struct dj_fleet *fleet, const char *op, const struct dj_fleet_handle *inputs,
		     int n_in, const char *attrs_json, struct dj_fleet_handle *out,
		     struct dj_tensor_desc *out_desc);
/** A batch (djinn.h's dj_batch_op: inputs as "0x..." handle text of that
 *  member, or "$k") on one member; outputs[i] is op i's first output. */
int dj_fleet_execute_batch(struct dj_fleet *fleet, uint32_t member, const struct dj_batch_op *ops,
			   int n_ops, struct dj_fleet_handle *outputs);

/** What a move did. */
struct dj_fleet_move_info {
	enum dj_path path;          /**< between the servers: DPDK or TCP */
	char path_reason[160];      /**< why that path */
	uint64_t bytes;
	uint64_t server_ns;         /**< the source's time for the transfer and hand-over */
	uint64_t total_ns;          /**< this call, grant and routing included */
};

/**
 * Move (or, with DJ_FLEET_COPY, copy) a tensor to member to, server to
 * server: the client asks to for a one-time receive grant, then asks the
 * source to send the bytes straight into to's memory (its data plane where
 * both have one, else TCP between them); the bytes never pass through this
 * client. *out receives the tensor's handle on to. A MOVE frees the source
 * only once to confirmed; on any error the source still holds the tensor.
 * info may be NULL.
 */
int dj_fleet_move(struct dj_fleet *fleet, struct dj_fleet_handle handle, uint32_t to,
		  unsigned int flags, struct dj_fleet_handle *out, struct dj_fleet_move_info *info);

/** Text of this thread's last failed dj_fleet_* call ("" after success). */
const char *dj_fleet_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_FLEET_H */
