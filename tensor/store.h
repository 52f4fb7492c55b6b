/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_STORE_H
#define DJINN_STORE_H

/**
 * @file
 * The server's resident tensors: tensors live under 64-bit handles, owned by
 * a session, charged to that session's memory budget, until freed explicitly
 * or with the session. Memory comes from a backend (host malloc built in; the
 * GPU module supplies one for device memory).
 *
 * A new tensor never shows an earlier tenant's bytes: tn_store_alloc()
 * hands out zeros; the only other way in, tn_store_alloc_output(), is for
 * a caller that writes every byte before anyone learns the handle.
 *
 * Handles and session ids are unpredictable (a SipHash-keyed 64-bit
 * permutation of a counter, key from getrandom) and never reused by one
 * store; 0 is never
 * valid. A handle presented with another session's id is refused exactly as
 * an unknown one (-DJ_EHANDLE), so sessions cannot probe each other.
 *
 * Devices: a store may keep tensors on several devices (GPUs of one
 * server), one backend each; every tensor lives on one device, named by its
 * index in tn_store_config.backends, and keeps it for its life (a move to
 * another device is a new tensor). Budgets (session and total limits) count
 * the bytes of every device together; tn_store_device_usage() gives each
 * device's own share.
 *
 * Thread safety: every function may be called from any thread. Byte copies
 * (tn_store_write/read/put) run outside the store's lock. A tensor being used
 * by an operation is pinned with tn_store_acquire(); tn_store_free() or the
 * session's close removes its handle at once, and its memory is returned (and
 * uncharged) when the last reference is released.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where resident bytes live. Every callback may be called concurrently. */
struct tn_store_backend {
	const char *name;       /**< e.g. "host", "cuda:0" */
	enum dj_mem_kind mem;   /**< kind of the pointers alloc() returns */
	void *ctx;              /**< passed back to every callback */
	/** Allocate @p bytes (> 0), reading as zeros where @p zero is set
	 *  (memory is reused across sessions: another tenant's bytes must
	 *  not show), else of undefined contents. 0 or a negative errno
	 *  (-ENOMEM). */
	int (*alloc)(void *ctx, size_t bytes, int zero, void **ptr);
	void (*free)(void *ctx, void *ptr);
	/** Copy host bytes into backend memory at @p dst. */
	int (*upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
	/** Copy backend memory at @p src into host bytes. */
	int (*download)(void *ctx, void *host_dst, const void *src, size_t bytes);
};

/** The built-in host backend (64-byte aligned malloc, or calloc where
 *  zeros are asked for; memcpy). Static. */
const struct tn_store_backend *tn_store_host_backend(void);

/** Most devices one store keeps tensors on. */
#define TN_STORE_MAX_DEVICES 16

struct tn_store_config {
	const struct tn_store_backend *backend; /**< NULL: host backend; borrowed,
						     must outlive the store */
	/** Several devices: backends[i] is device i (borrowed, outliving the
	 *  store); n_backends > 0 replaces @c backend. At most
	 *  TN_STORE_MAX_DEVICES. */
	const struct tn_store_backend *const *backends;
	int n_backends;
	uint64_t total_limit;      /**< bytes over all sessions; 0 = no limit */
	uint64_t session_limit;    /**< default bytes per session; 0 = no limit */
	uint32_t session_max_tensors; /**< handles per session; 0 = 1048576 */
};

struct tn_store;

/** Create a store; -EINVAL (bad backend), -ENOMEM, or -errno of getrandom. */
int tn_store_create(const struct tn_store_config *config, struct tn_store **store);
/** Free every resident tensor and the store. Outstanding references must
 *  have been released. NULL-safe. */
void tn_store_destroy(struct tn_store *store);

/** Open a session with @p limit bytes (0: the store's session_limit). */
int tn_store_session_open(struct tn_store *store, uint64_t limit, uint64_t *session);
/** Free all the session's tensors and forget it; -DJ_EHANDLE if unknown. */
int tn_store_session_close(struct tn_store *store, uint64_t session);

/**
 * A new resident tensor of @p desc in @p session, every byte zero.
 * -DJ_EHANDLE (unknown session), -DJ_ESHAPE/-DJ_EDTYPE (bad desc),
 * -DJ_ELIMIT (session or store budget, or handle count), -ENOMEM, or the
 * backend's error.
 */
int tn_store_alloc(struct tn_store *store, uint64_t session,
		   const struct dj_tensor_desc *desc, uint64_t *handle);
/**
 * As tn_store_alloc(), but the contents are undefined (no zeroing pass):
 * only for a caller that writes every byte before the handle reaches
 * anyone, and frees it where it cannot (an operation's output: every
 * operation writes its whole output, as test_remote_ops checks by
 * poisoning). Same errors.
 */
int tn_store_alloc_output(struct tn_store *store, uint64_t session,
			  const struct dj_tensor_desc *desc, uint64_t *handle);
/**
 * As tn_store_alloc() (@p zero set) or tn_store_alloc_output() (clear), on
 * device @p dev (an index of tn_store_config.backends; 0 for a store of
 * one backend). -EINVAL for a device the store does not have; otherwise
 * the same errors.
 */
int tn_store_alloc_on(struct tn_store *store, uint64_t session, const struct dj_tensor_desc *desc,
		      int dev, int zero, uint64_t *handle);
/** Allocate and fill from a host tensor (desc and bytes of @p host). */
int tn_store_put(struct tn_store *store, uint64_t session, const struct dj_tensor *host,
		 uint64_t *handle);

/** A counted reference to a resident tensor (opaque). */
struct tn_store_ref;
/**
 * Pin @p handle of @p session and describe it in @p view (data points into
 * backend memory, valid until tn_store_release()). -DJ_EHANDLE when the
 * handle is unknown, freed, or another session's.
 */
int tn_store_acquire(struct tn_store *store, uint64_t session, uint64_t handle,
		     struct tn_store_ref **ref, struct dj_tensor *view);
/** Drop a reference from tn_store_acquire(); NULL-safe. */
void tn_store_release(struct tn_store *store, struct tn_store_ref *ref);

/** Copy @p len host bytes into the tensor at byte @p offset; -ERANGE past
 *  its end. */
int tn_store_write(struct tn_store *store, uint64_t session, uint64_t handle, size_t offset,
		   const void *src, size_t len);
/** Copy the tensor's bytes out; @p len must be at least its size (-ERANGE);
 *  @p desc (may be NULL) receives its description. */
int tn_store_read(struct tn_store *store, uint64_t session, uint64_t handle, void *dst,
		  size_t len, struct dj_tensor_desc *desc);
/** Describe a tensor without pinning it. */
int tn_store_describe(struct tn_store *store, uint64_t session, uint64_t handle,
		      struct dj_tensor_desc *desc);
/** The device @p handle lives on (*dev: its backend index). Same errors as
 *  tn_store_describe(). */
int tn_store_device_of(struct tn_store *store, uint64_t session, uint64_t handle, int *dev);
/** The device of a pinned tensor (no lock: a tensor never changes device). */
int tn_store_ref_device(const struct tn_store_ref *ref);
/** Forget @p handle; its memory goes when the last reference is released. */
int tn_store_free(struct tn_store *store, uint64_t session, uint64_t handle);

/**
 * Hand @p handle of session @p from over to session @p to (a fleet move's
 * arrival): the same bytes, charged to @p to from now on, under a new handle
 * *new_handle; @p from no longer reaches it. References taken before stay
 * valid. -DJ_EHANDLE (unknown handle or session), -DJ_ELIMIT (@p to's budget
 * or handle count).
 */
int tn_store_adopt(struct tn_store *store, uint64_t from, uint64_t handle, uint64_t to,
		   uint64_t *new_handle);

/**
 * Charge @p bytes the server holds for @p session outside any tensor (an
 * EXECUTE's payload waiting for its batch, in host memory) to the session's
 * and the store's limits, as a tensor of that size would be; no device's
 * figures change. tn_store_unhold() gives them back; closing the session
 * gives back all it still holds.
 * @return 0, -DJ_EHANDLE (no such session), -DJ_ELIMIT (over a limit).
 */
int tn_store_hold(struct tn_store *store, uint64_t session, uint64_t bytes);
/** Give back @p bytes of tn_store_hold() (nothing where the session has
 *  closed meanwhile). */
void tn_store_unhold(struct tn_store *store, uint64_t session, uint64_t bytes);

struct tn_store_usage {
	uint64_t bytes;       /**< charged bytes (resident or still referenced) */
	uint64_t peak_bytes;
	uint64_t limit;       /**< 0 = none */
	uint64_t tensors;     /**< live handles */
	uint64_t sessions;    /**< store-wide only */
	uint64_t refused;     /**< allocations refused with -DJ_ELIMIT */
};
/** Usage of one session; -DJ_EHANDLE if unknown. */
int tn_store_session_usage(struct tn_store *store, uint64_t session,
			   struct tn_store_usage *usage);
/** Usage of the whole store. */
void tn_store_usage(struct tn_store *store, struct tn_store_usage *usage);
/** Usage of device @p dev: bytes, peak_bytes, tensors (handles live on it)
 *  and refused (allocations on it refused by a limit); limit is the
 *  store's total limit, sessions 0. -EINVAL for an unknown device. */
int tn_store_device_usage(struct tn_store *store, int dev, struct tn_store_usage *usage);
/** Number of devices (backends) of the store. */
int tn_store_devices(const struct tn_store *store);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_STORE_H */
