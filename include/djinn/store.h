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
 * Handles and session ids are unpredictable (a SipHash-keyed 64-bit
 * permutation of a counter, key from getrandom) and never reused by one
 * store; 0 is never
 * valid. A handle presented with another session's id is refused exactly as
 * an unknown one (-DJ_EHANDLE), so sessions cannot probe each other.
 *
 * Thread safety: every function may be called from any thread. Byte copies
 * (dj_store_write/read/put) run outside the store's lock. A tensor being used
 * by an operation is pinned with dj_store_acquire(); dj_store_free() or the
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
struct dj_store_backend {
	const char *name;       /**< e.g. "host", "cuda:0" */
	enum dj_mem_kind mem;   /**< kind of the pointers alloc() returns */
	void *ctx;              /**< passed back to every callback */
	/** Allocate @p bytes (> 0); 0 or a negative errno (-ENOMEM). */
	int (*alloc)(void *ctx, size_t bytes, void **ptr);
	void (*free)(void *ctx, void *ptr);
	/** Copy host bytes into backend memory at @p dst. */
	int (*upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
	/** Copy backend memory at @p src into host bytes. */
	int (*download)(void *ctx, void *host_dst, const void *src, size_t bytes);
};

/** The built-in host backend (64-byte aligned malloc, memcpy). Static. */
const struct dj_store_backend *dj_store_host_backend(void);

struct dj_store_config {
	const struct dj_store_backend *backend; /**< NULL: host backend; borrowed,
						     must outlive the store */
	uint64_t total_limit;      /**< bytes over all sessions; 0 = no limit */
	uint64_t session_limit;    /**< default bytes per session; 0 = no limit */
	uint32_t session_max_tensors; /**< handles per session; 0 = 1048576 */
};

struct dj_store;

/** Create a store; -EINVAL (bad backend), -ENOMEM, or -errno of getrandom. */
int dj_store_create(const struct dj_store_config *config, struct dj_store **store);
/** Free every resident tensor and the store. Outstanding references must
 *  have been released. NULL-safe. */
void dj_store_destroy(struct dj_store *store);

/** Open a session with @p limit bytes (0: the store's session_limit). */
int dj_store_session_open(struct dj_store *store, uint64_t limit, uint64_t *session);
/** Free all the session's tensors and forget it; -DJ_EHANDLE if unknown. */
int dj_store_session_close(struct dj_store *store, uint64_t session);

/**
 * A new resident tensor of @p desc (contents undefined) in @p session.
 * -DJ_EHANDLE (unknown session), -DJ_ESHAPE/-DJ_EDTYPE (bad desc),
 * -DJ_ELIMIT (session or store budget, or handle count), -ENOMEM.
 */
int dj_store_alloc(struct dj_store *store, uint64_t session,
		   const struct dj_tensor_desc *desc, uint64_t *handle);
/** Allocate and fill from a host tensor (desc and bytes of @p host). */
int dj_store_put(struct dj_store *store, uint64_t session, const struct dj_tensor *host,
		 uint64_t *handle);

/** A counted reference to a resident tensor (opaque). */
struct dj_store_ref;
/**
 * Pin @p handle of @p session and describe it in @p view (data points into
 * backend memory, valid until dj_store_release()). -DJ_EHANDLE when the
 * handle is unknown, freed, or another session's.
 */
int dj_store_acquire(struct dj_store *store, uint64_t session, uint64_t handle,
		     struct dj_store_ref **ref, struct dj_tensor *view);
/** Drop a reference from dj_store_acquire(); NULL-safe. */
void dj_store_release(struct dj_store *store, struct dj_store_ref *ref);

/** Copy @p len host bytes into the tensor at byte @p offset; -ERANGE past
 *  its end. */
int dj_store_write(struct dj_store *store, uint64_t session, uint64_t handle, size_t offset,
		   const void *src, size_t len);
/** Copy the tensor's bytes out; @p len must be at least its size (-ERANGE);
 *  @p desc (may be NULL) receives its description. */
int dj_store_read(struct dj_store *store, uint64_t session, uint64_t handle, void *dst,
		  size_t len, struct dj_tensor_desc *desc);
/** Describe a tensor without pinning it. */
int dj_store_describe(struct dj_store *store, uint64_t session, uint64_t handle,
		      struct dj_tensor_desc *desc);
/** Forget @p handle; its memory goes when the last reference is released. */
int dj_store_free(struct dj_store *store, uint64_t session, uint64_t handle);

struct dj_store_usage {
	uint64_t bytes;       /**< charged bytes (resident or still referenced) */
	uint64_t peak_bytes;
	uint64_t limit;       /**< 0 = none */
	uint64_t tensors;     /**< live handles */
	uint64_t sessions;    /**< store-wide only */
	uint64_t refused;     /**< allocations refused with -DJ_ELIMIT */
};
/** Usage of one session; -DJ_EHANDLE if unknown. */
int dj_store_session_usage(struct dj_store *store, uint64_t session,
			   struct dj_store_usage *usage);
/** Usage of the whole store. */
void dj_store_usage(struct dj_store *store, struct dj_store_usage *usage);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_STORE_H */
