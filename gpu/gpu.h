/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_H
#define DJINN_GPU_H

/**
 * @file
 * GPUs as DPDK's gpudev sees them, GPU memory pools, and the receive/send
 * paths between NIC buffers and GPU memory. Call after EAL is started;
 * without the gpudev CUDA driver, a GPU or a CUDA build (-Dcuda=disabled)
 * every count is 0, nothing fails, and DJG_HOST gives the same API over
 * plain host memory.
 *
 * Receive paths:
 *  - STAGED: payloads land in host mbufs registered with the GPU; a gather
 *    kernel pulls each burst's payloads into the destination (djg_rx_sink);
 *    what djinn-dp runs with a GPU, through the data-plane placer below;
 *  - HOST: no GPU, the sink memcpys (djinn-dp without a GPU);
 *  - GPUDIRECT: the NIC writes payloads straight into GPU mbufs (Rx buffer
 *    split: headers to host mbufs, payloads to GPU mbufs). Experimental.
 *
 * What runs in djinn-dp: discovery, pools, host registration, the rx sink
 * and the data-plane placer (djg_dp_placer_*). Marked DJG_EXPERIMENTAL and
 * reached only by bench-gpu and tests/unit/gpu: the receive path choice,
 * the GPUDirect set-up (no NIC here does buffer split; the placer runs
 * STAGED or HOST) and the tx stager (the engine stages GPU sends itself,
 * dataplane/stage.c, see "Send side" below). A call to one of them warns
 * unless the file defines DJG_ALLOW_EXPERIMENTAL before its includes, as
 * DPDK's __rte_experimental does without ALLOW_EXPERIMENTAL_API.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef DJG_ALLOW_EXPERIMENTAL
#define DJG_EXPERIMENTAL
#else
#define DJG_EXPERIMENTAL \
	__attribute__((deprecated("experimental, not on djinn-dp's path (gpu/gpu.h)")))
#endif

/** dev_id meaning "no GPU: plain host memory" wherever a dev_id is taken. */
#define DJG_HOST ((int16_t)-1)

/** GPU buffers are carved at this alignment (the GPU's page size). */
#define DJG_PAGE_SIZE (64u * 1024u)

struct djg_info {
	int16_t dev_id;        /**< gpudev device id */
	char name[64];         /**< e.g. "NVIDIA H100 80GB HBM3" */
	char pci_addr[32];     /**< PCI address, e.g. "0000:00:06.0" */
	uint64_t total_memory; /**< bytes */
	uint32_t processors;   /**< streaming multiprocessors */
	int numa_node;         /**< -1 when unknown */
};

/** Number of GPUs gpudev can use (0 when none, no CUDA driver or no CUDA build). */
int djg_count(void);

/** Describe the index-th usable GPU (0-based). 0 or -ENODEV. */
int djg_info_get(int index, struct djg_info *info);

/**
 * Find a GPU by index ("0") or PCI address ("0000:00:06.0", "00:06.0").
 * NULL or "" picks the first GPU. Returns its gpudev dev_id (>= 0),
 * -DJ_ENOGPU when there is none, -ENODEV when spec matches none.
 */
int djg_find(const char *spec);

/*
 * Memory pools: one large allocation (rte_gpu_mem_alloc, or host memory for
 * DJG_HOST) carved into DJG_PAGE_SIZE-aligned buffers, so allocating a
 * tensor is no driver call. Thread safe (a mutex; not for per-packet use).
 */
struct djg_pool;

struct djg_pool_stats {
	uint64_t size;          /**< bytes managed */
	uint64_t used;          /**< bytes handed out (rounded to pages) */
	uint64_t largest_free;  /**< largest allocation that would succeed now */
	uint64_t allocs;        /**< live allocations */
	uint64_t failed;        /**< allocations refused since creation */
};

/**
 * Create a pool of @p size bytes (rounded up to DJG_PAGE_SIZE) on GPU
 * @p dev_id, or in host memory for DJG_HOST. The caller owns the pool
 * and frees it with djg_pool_destroy(). 0, -EINVAL, -ENOMEM,
 * -DJ_ENOGPU (no such GPU or no CUDA build).
 */
int djg_pool_create(int16_t dev_id, size_t size, struct djg_pool **pool);

/** Free the pool and all its memory; buffers still allocated die with it. */
void djg_pool_destroy(struct djg_pool *pool);

/** dev_id the pool lives on (DJG_HOST for host memory). */
int16_t djg_pool_dev(const struct djg_pool *pool);

/**
 * Allocate @p len bytes (> 0). *ptr is a device pointer for a GPU pool (not
 * CPU-addressable: use the copy functions), owned by the pool until
 * djg_pool_free(). 0, -EINVAL, -ENOMEM (no free run large enough).
 */
int djg_pool_alloc(struct djg_pool *pool, size_t len, void **ptr);

/** Give back a buffer from djg_pool_alloc(). 0 or -EINVAL (not one of ours). */
int djg_pool_free(struct djg_pool *pool, void *ptr);

/**
 * Copy host bytes into pool memory (@p dst inside the pool) and back out
 * (@p src inside the pool). Synchronous. 0, -EINVAL (range outside the
 * pool), -EIO (the GPU refused the copy).
 */
int djg_pool_copy_in(struct djg_pool *pool, void *dst, const void *src, size_t len);
int djg_pool_copy_out(struct djg_pool *pool, void *dst, const void *src, size_t len);

int djg_pool_stats_get(struct djg_pool *pool, struct djg_pool_stats *stats);

/**
 * Make host memory readable and writable by GPU @p dev_id
 * (rte_gpu_mem_register; the same address works in kernels). No-op for
 * DJG_HOST. Ranges may share pages with other registrations (the pages
 * are registered once and counted). 0, -EINVAL, -EEXIST (@p ptr already
 * registered), -ENOSPC, -ENOMEM (the driver refused). Unregister with the
 * same @p ptr; -ENOENT if it was not registered.
 */
int djg_host_register(int16_t dev_id, void *ptr, size_t len);
int djg_host_unregister(int16_t dev_id, void *ptr);
/** How much of [ptr, ptr + len) lies in the one registered piece that holds
 *  ptr (len where no piece holds it). A range registered in two calls is two
 *  pieces to the driver, and a cudaMemcpy from pinned memory must stay inside
 *  one: it fails with "invalid argument" where the range crosses into the
 *  next, so such copies go piece by piece. Takes no lock. */
size_t djg_host_piece_len(int16_t dev_id, const void *ptr, size_t len);
/** An asynchronous copy on @p stream between GPU memory and host memory
 *  registered for @p dev_id (the source where @p host_is_src, else the
 *  destination), one cudaMemcpyAsync per registered piece it spans.
 *  0, -EIO (the copy could not be queued), -DJ_ENOGPU (no CUDA). */
int djg_copy_async_host(int16_t dev_id, void *stream, void *dst, const void *src, size_t len,
			bool host_is_src);
/** Whether GPU @p dev_id may read [ptr, ptr + len) through registrations
 *  made with djg_host_register(). Takes no lock (polling lcores). */
bool djg_host_readable(int16_t dev_id, const void *ptr, size_t len);

struct rte_mempool;
/**
 * Register every memory chunk of mempool @p mp with GPU @p dev_id, so that
 * its mbufs' data can be read by the staged gather kernel. The chunks
 * registered are recorded: djg_mempool_unregister() releases them without
 * reading the mempool, so it may come after the mempool was freed (before
 * its memory is registered again).
 * @return 0, -EINVAL, -EEXIST (this mempool is registered with this GPU
 * already), -ENOSPC (64 mempools registered), -ENOMEM, or
 * djg_host_register()'s error for a chunk (none is left registered).
 * djg_mempool_unregister(): 0, -EINVAL, -ENOENT (not registered).
 */
int djg_mempool_register(int16_t dev_id, struct rte_mempool *mp);
int djg_mempool_unregister(int16_t dev_id, struct rte_mempool *mp);

/* ---------------------------------------------------------------------- */
/* Receive path choice (experimental but for the names)                    */

enum djg_rx_path {
	DJG_RX_AUTO = 0,  /**< for requests: best the port and GPU allow */
	DJG_RX_HOST,      /**< host memory destination, memcpy */
	DJG_RX_STAGED,    /**< host mbufs, GPU gather kernel */
	DJG_RX_GPUDIRECT, /**< NIC writes payloads into GPU mbufs */
};

/** What a port and a GPU can do, as the path choice needs it. */
struct djg_rx_caps {
	bool gpu;                 /**< a usable GPU (and a CUDA build) */
	bool port_dma_map;        /**< port is a bus device that can DMA-map external memory */
	uint64_t rx_offload_capa; /**< the port's rte_eth_dev_info.rx_offload_capa */
	uint16_t rx_seg_max_nseg; /**< rte_eth_dev_info.rx_seg_capa.max_nseg */
	bool rx_seg_multi_pools;  /**< rte_eth_dev_info.rx_seg_capa.multi_pools */
};

/** Fill @p caps from port @p port_id and GPU @p dev_id (DJG_HOST: none). */
DJG_EXPERIMENTAL
int djg_rx_caps_get(uint16_t port_id, int16_t dev_id, struct djg_rx_caps *caps);

/**
 * Decide the receive path for @p want (AUTO: the best available). Writes
 * the decision to *path and a one-line reason to @p why (may be NULL).
 * Returns 0, or -ENOTSUP when @p want is impossible (e.g. GPUDIRECT on a
 * port without RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT), -DJ_ENOGPU when a GPU path
 * is wanted without a GPU; @p why then says what is missing.
 */
DJG_EXPERIMENTAL
int djg_rx_path_choose(const struct djg_rx_caps *caps, enum djg_rx_path want,
			  enum djg_rx_path *path, char *why, size_t why_len);

/** "host", "staged", "gpudirect" or "auto". */
const char *djg_rx_path_name(enum djg_rx_path path);

/* ---------------------------------------------------------------------- */
/* GPUDirect receive set-up (experimental)                                 */

struct djg_direct_pool;
struct rte_eth_rxconf;
union rte_eth_rxseg;

/**
 * Payload mbuf pool in GPU memory for port @p port_id: rte_gpu_mem_alloc
 * (64 KiB aligned) -> rte_extmem_register(RTE_BAD_IOVA) -> rte_dev_dma_map ->
 * rte_pktmbuf_pool_create_extbuf. Needs EAL --iova-mode=va. Refuses with
 * -ENOTSUP (and a log line saying why) where the port lacks buffer split or
 * cannot DMA-map. Caller owns the result: djg_direct_pool_destroy().
 */
DJG_EXPERIMENTAL
int djg_direct_pool_create(int16_t dev_id, uint16_t port_id, const char *name,
			      unsigned int n_mbufs, uint16_t data_room,
			      struct djg_direct_pool **pool);
DJG_EXPERIMENTAL
void djg_direct_pool_destroy(struct djg_direct_pool *pool);
DJG_EXPERIMENTAL
struct rte_mempool *djg_direct_pool_mempool(struct djg_direct_pool *pool);

/**
 * Fill @p segs (two entries) and @p rxconf for Rx buffer split: the first @p hdr_len
 * bytes of each packet into @p hdr_pool (host), the rest into @p payload_pool
 * (GPU). rxconf->rx_seg points at @p segs: keep both alive until
 * rte_eth_rx_queue_setup() returns. 0 or -EINVAL.
 */
DJG_EXPERIMENTAL
int djg_direct_rxconf(struct rte_mempool *hdr_pool, uint16_t hdr_len,
			 struct rte_mempool *payload_pool, union rte_eth_rxseg *segs,
			 struct rte_eth_rxconf *rxconf);

/* ---------------------------------------------------------------------- */
/* Staged (and host) receive sink                                          */

/** One payload piece: @p len bytes at @p src go to destination + @p dst_off. */
struct djg_copy {
	const void *src;  /**< host memory registered with the GPU (mbuf data) */
	uint64_t dst_off; /**< offset in the sink's destination */
	uint32_t len;
	uint32_t reserved; /**< 0 */
};

/** Gives back buffers the sink no longer reads (e.g. rte_pktmbuf_free_bulk). */
typedef void djg_release_fn(void **bufs, uint16_t n, void *arg);

enum djg_gather_mode {
	DJG_GATHER_PERSISTENT = 0, /**< one resident kernel polls the ring */
	DJG_GATHER_LAUNCH,         /**< one kernel launch per burst */
};

struct djg_rx_sink_conf {
	int16_t dev_id;        /**< GPU, or DJG_HOST: memcpy into host memory */
	/** Destination buffer (device pointer for a GPU); borrowed. NULL with
	 *  dest_len 0: absolute mode, each copy's dst_off is the destination
	 *  address itself, unchecked (the caller has validated it): one sink then
	 *  serves fragments of many transfers, as dp_place_fn delivers them. */
	void *dest;
	size_t dest_len;
	uint16_t max_copies;   /**< most copies per burst (1..1024); 0: 256 */
	uint16_t max_bufs;     /**< most buffers released per burst; 0: max_copies */
	uint32_t ring_size;    /**< bursts in flight, power of two; 0: 512 */
	enum djg_gather_mode mode;
	uint16_t blocks;       /**< persistent kernel blocks; 0: from frag_size */
	uint32_t frag_size;    /**< typical copy length (0: MTU-size): jumbo
	                            fragments (4 KiB and more) go fastest with 16
	                            blocks, MTU-size ones with a quarter of the
	                            SMs (at least 32) */
	djg_release_fn *release; /**< required */
	void *release_arg;
};

struct djg_rx_sink_stats {
	enum djg_rx_path path; /**< HOST or STAGED, for STATS lines */
	enum djg_gather_mode mode;
	uint64_t bursts;    /**< bursts accepted */
	uint64_t copies;
	uint64_t bytes;
	uint64_t completed; /**< bursts the GPU finished (buffers released) */
	uint64_t rejected;  /**< bursts refused (bad copies) */
	uint64_t ring_full; /**< submits answered -EAGAIN */
	/** PERSISTENT: kernel generations started. The resident kernel exits
	 *  when the sink is drained (CUDA calls that need a quiet context, such
	 *  as lazy module loads and host unregistration, wait for every running
	 *  kernel) and the next submit starts it again. */
	uint64_t generations;
};

struct djg_rx_sink;

/**
 * Create a sink bound to conf->dest. Caller owns it: djg_rx_sink_destroy().
 * A persistent-mode sink keeps one kernel resident on the GPU until destroyed
 * (cudaDeviceSynchronize() elsewhere in the process would wait for it).
 * 0, -EINVAL, -ENOMEM, -DJ_ENOGPU.
 */
int djg_rx_sink_create(const struct djg_rx_sink_conf *conf,
			  struct djg_rx_sink **sink);

/**
 * Hand over one burst: copies[0..n) and the buffers they read from. On 0 the
 * sink owns @p bufs until it passes them to release() (from a later
 * submit/poll/drain call, on the caller's thread). -EAGAIN: the ring is full,
 * poll and retry. -EINVAL: a copy falls outside the destination (or n/nbufs
 * too large); nothing was done and the caller keeps @p bufs.
 * Not thread safe: one sink per lcore.
 */
int djg_rx_sink_submit(struct djg_rx_sink *sink, const struct djg_copy *copies,
			  uint16_t n, void **bufs, uint16_t nbufs);

/** Release the buffers of finished bursts. Returns how many bursts finished, or -EIO. */
int djg_rx_sink_poll(struct djg_rx_sink *sink);

/** Wait until every burst is in the destination; a persistent kernel then
 *  exits until the next submit (see stats.generations). 0, -ETIMEDOUT or
 *  -EIO. */
int djg_rx_sink_drain(struct djg_rx_sink *sink, uint64_t timeout_ns);

/** Point an idle (drained) sink at another destination (not for absolute
 *  mode). 0, -EBUSY, -EINVAL. */
int djg_rx_sink_rebind(struct djg_rx_sink *sink, void *dest, size_t dest_len);

/** Which path the sink runs: DJG_RX_HOST or DJG_RX_STAGED. */
enum djg_rx_path djg_rx_sink_path(const struct djg_rx_sink *sink);

void djg_rx_sink_stats_get(const struct djg_rx_sink *sink,
			      struct djg_rx_sink_stats *stats);

/** Drain (1 s at most), release everything still held, free the sink. */
void djg_rx_sink_destroy(struct djg_rx_sink *sink);

/**
 * Gather a whole copy list into @p dest at once and wait: one kernel launch
 * (GPU), or memcpy (DJG_HOST). For lists already complete in registered
 * host memory (e.g. a reassembled window); the rx sink is the per-burst path.
 * 0, -EINVAL (a copy outside the destination), -DJ_ENOGPU, -EIO.
 */
int djg_gather_list(int16_t dev_id, void *dest, size_t dest_len, const struct djg_copy *copies,
		  size_t n);

/* ---------------------------------------------------------------------- */
/* Send side: a GPU buffer staged through pinned host chunks (experimental) */

/*
 * Superseded on djinn-dp's path by the engine's staging ring
 * (dataplane/stage.c over the placer's stage_* callbacks): a reliable
 * sender may have to send a chunk again until the receiver acknowledged
 * it, while this stager refills a buffer as soon as its mbufs are freed,
 * so a retransmission could read bytes of a later chunk. It stays as a
 * standalone API measured by bench-gpu (docs/GPU.md), for senders that
 * never retransmit.
 *
 * The source is copied device-to-host chunk by chunk into a few pinned
 * buffers; a chunk is handed out as soon as its copy is done, while the next
 * ones are still copying, and its buffer is refilled once every mbuf
 * attached to it (external buffer, no copy) has been freed. For DJG_HOST
 * the chunks are plain host copies (host tensors are better sent straight by
 * the engine's own zero-copy path). Needs EAL (buffers come from rte_malloc).
 */
struct djg_tx_stager;
struct rte_mbuf;

struct djg_tx_stager_conf {
	int16_t dev_id;      /**< GPU the sources live on, or DJG_HOST */
	uint32_t chunk_size; /**< bytes per chunk; 0: 1 MiB */
	uint16_t n_chunks;   /**< pinned buffers (copies in flight + chunks out); 0: 4 */
	int socket;          /**< NUMA socket for the buffers (SOCKET_ID_ANY: -1) */
};

/** A staged chunk: bytes [offset, offset + len) of the source. */
struct djg_tx_chunk {
	const uint8_t *data; /**< pinned host copy; valid until the chunk is put */
	uint64_t iova;       /**< IO address of data */
	uint64_t offset;
	uint32_t len;
	uint16_t buffer;     /**< internal: which pinned buffer */
};

/** Create a stager (caller owns it: djg_tx_stager_destroy). 0, -EINVAL, -ENOMEM, -DJ_ENOGPU. */
DJG_EXPERIMENTAL
int djg_tx_stager_create(const struct djg_tx_stager_conf *conf,
			    struct djg_tx_stager **stager);

/**
 * Start staging @p len bytes at @p src (GPU memory for a GPU stager; borrowed
 * until djg_tx_stager_done()). -EBUSY while a previous source is not done.
 */
DJG_EXPERIMENTAL
int djg_tx_stager_start(struct djg_tx_stager *st, const void *src, size_t len);

/**
 * The next chunk, in source order: 0, -EAGAIN (its copy is still running, or
 * no buffer is free yet: free mbufs, put chunks), -ENODATA (all handed out),
 * -EIO (the GPU copy failed). Same lcore as start.
 */
DJG_EXPERIMENTAL
int djg_tx_stager_next(struct djg_tx_stager *st, struct djg_tx_chunk *chunk);

/**
 * Point mbuf @p m (freshly allocated, no data) at @p len bytes of @p chunk
 * from @p off as an external buffer: the chunk's buffer stays busy until @p m
 * is freed. 0 or -EINVAL.
 */
DJG_EXPERIMENTAL
int djg_tx_chunk_attach(struct djg_tx_stager *st, const struct djg_tx_chunk *chunk,
			   struct rte_mbuf *m, uint32_t off, uint16_t len);

/** The caller is done with @p chunk (its mbufs may still be in flight). */
DJG_EXPERIMENTAL
void djg_tx_chunk_put(struct djg_tx_stager *st, const struct djg_tx_chunk *chunk);

/** true when every chunk of the current source was handed out and its buffer is free. */
DJG_EXPERIMENTAL
bool djg_tx_stager_done(struct djg_tx_stager *st);

/** Free the stager; every chunk must be done (mbufs freed) first. */
DJG_EXPERIMENTAL
void djg_tx_stager_destroy(struct djg_tx_stager *st);


/* ---------------------------------------------------------------------- */
/* Data-plane integration                                                  */

/*
 * The data plane's GPU placement (struct dp_engine_placer in
 * dataplane/dataplane.h) on the staged receive sink: one sink per polling
 * lcore and device in absolute mode gathers every fragment of a DJ_MEM_GPU
 * receive into the GPU its destination lies on, and frees the rx mbufs once
 * every GPU that read them is done (a burst whose fragments go to several
 * GPUs holds one mbuf reference per GPU); the engine's sync() drains the
 * sinks before a receive is reported complete. Rx mempools are registered
 * with CUDA the first time their mbufs are seen (gpudev's registration is
 * portable: every GPU reads them). A GPU source on transmit is staged on a
 * stream of the GPU it lies on. DJG_HOST gives the same behaviour over host
 * memory (memcpy).
 */
struct dp_engine_placer;
struct djg_dp_placer;

/**
 * How a staged receive moves payloads from host mbufs into GPU memory.
 * GATHER: the gather kernel reads each burst's fragments out of the mbufs
 * (zero-copy on the host, bounded by how fast GPU threads read host memory:
 * 56-63 % of the copy engine on the H100 host of 2026-12-06). COPY: the
 * receive lcore copies each fragment into a pinned host chunk and the copy
 * engine moves full chunks (cudaMemcpyAsync), bounded by the lcore's memcpy
 * and the copy engine. AUTO: whichever djg_rx_mover_measure() finds faster
 * on this host when the placer is created.
 */
enum djg_rx_mover {
	DJG_MOVER_AUTO = 0,
	DJG_MOVER_GATHER,
	DJG_MOVER_COPY,
};

/** "auto", "gather", "copy". */
const char *djg_rx_mover_name(enum djg_rx_mover m);

/** What djg_rx_mover_measure() measures, and what it found. */
struct djg_rx_mover_probe {
	uint32_t frag_size;      /**< fragment payload; 0: 1416 B */
	size_t bytes;            /**< bytes per run; 0: 64 MiB */
	int reps;                /**< runs after a warm-up, best kept; 0: 3 */
	size_t chunk_size;       /**< copy path chunk; 0: DJG_RX_CHUNK_SIZE */
	unsigned int n_chunks;   /**< copy path chunks; 0: DJG_RX_CHUNKS */
	/* Results, GB/s (1e9 bytes per second), best run. */
	double gather_gbytes_s;  /**< one gather kernel launch over the fragments */
	double copy_gbytes_s;    /**< this thread packing chunks, copy engine moving them */
	double memcpy_gbytes_s;  /**< cudaMemcpy H2D of the same bytes, contiguous */
	double seconds;          /**< the measurement's wall time */
};

/** Copy path defaults: chunks per lcore and device, and their size. */
#define DJG_RX_CHUNK_SIZE (4u << 20)
#define DJG_RX_CHUNKS 4

/**
 * Measure both movers on GPU @p dev_id with fragments laid out as rx mbufs
 * hold them (misaligned payloads, one mbuf-size slot each) in hugepage
 * memory registered with the GPU, into GPU memory; each result is checked
 * byte for byte. Takes tens of milliseconds and some 100 MiB of host and
 * GPU memory for the default 64 MiB.
 * @return 0, -EINVAL, -ENOMEM, -EIO (a CUDA call failed or a result was
 *   wrong), -DJ_ENOGPU.
 */
int djg_rx_mover_measure(int16_t dev_id, struct djg_rx_mover_probe *pr);

/** Most devices one placer serves. */
#define DJG_PLACER_MAX_DEVS 16
/** Most fragments per gather burst (djg_dp_placer_conf.gather_burst). */
#define DJG_PLACER_BURST_MAX 256
/** Default gather burst for fragments under DJG_PLACER_SMALL_FRAG bytes:
 *  the resident kernel's best on the H100 at 1416 B (docs/PERFORMANCE.md,
 *  goal 3). Larger fragments go a rx burst at a time, as they always did. */
#define DJG_PLACER_BURST_SMALL 128
#define DJG_PLACER_SMALL_FRAG 4096

/** The gather burst a placer uses for fragments of @p frag_size bytes (0:
 *  MTU-size) when its configuration asks for 0: DJG_PLACER_BURST_SMALL
 *  under DJG_PLACER_SMALL_FRAG, else 1 (each rx burst alone). */
uint16_t djg_dp_placer_gather_burst(uint32_t frag_size);

/**
 * Which of a placer's devices the memory at @p addr (a receive's
 * destination, a send's source) lies on: an index into
 * djg_dp_placer_conf.dev_ids, or < 0 where unknown (device 0 then). Runs on
 * polling lcores once per destination (cached until the receive ends) and
 * on sending threads once per chunk: quick, no lock held long.
 */
typedef int djg_dp_device_fn(void *arg, const void *addr);

struct djg_dp_placer_conf {
	int16_t dev_id;   /**< gpudev id of the GPU the destinations live on, or DJG_HOST
			       (one device: n_devs 0) */
	/** PERSISTENT: a resident gather kernel per lcore (fastest; its blocks
	 *  stay on the SMs). LAUNCH: a kernel per burst, the GPU is free for
	 *  other work between bursts (servers that also compute). */
	enum djg_gather_mode mode;
	uint16_t blocks;     /**< persistent blocks per lcore; 0: from frag_size */
	uint32_t frag_size;  /**< typical fragment payload; 0: MTU-size */
	/** Fragments per gather burst: an lcore's consecutive rx bursts are
	 *  handed to the gather kernel as one burst of up to this many
	 *  (1..DJG_PLACER_BURST_MAX; at most one rx burst: each rx burst
	 *  alone). The batch goes early when the engine's rx poll comes back
	 *  short (flush()) and before a receive completes (sync()). 0:
	 *  djg_dp_placer_gather_burst(frag_size). */
	uint16_t gather_burst;
	/** Several devices (every GPU of a server): dev_ids[0..n_devs),
	 *  gpudev ids or DJG_HOST; a GPU may appear more than once (logical
	 *  devices of one GPU, each with its own sinks). 0: dev_id alone. */
	uint16_t n_devs;
	int16_t dev_ids[DJG_PLACER_MAX_DEVS];
	/** Which device an address lies on; NULL: CUDA's pointer attributes
	 *  (the first of dev_ids on that GPU). */
	djg_dp_device_fn *device_of;
	void *device_arg;
	/** GPU receives: gather kernel or chunks through the copy engine;
	 *  AUTO measures both on the first GPU at create (djg_rx_mover_measure
	 *  with frag_size) and takes the faster. */
	enum djg_rx_mover mover;
	uint32_t chunk_size;  /**< copy mover: bytes per chunk; 0: DJG_RX_CHUNK_SIZE */
	uint16_t n_chunks;    /**< copy mover: chunks per lcore and GPU; 0: DJG_RX_CHUNKS */
};

struct djg_dp_placer_stats {
	struct djg_rx_sink_stats sink; /**< summed over the lcores' sinks */
	uint64_t direct_copies; /**< fragments copied synchronously (the sink could not take them) */
	uint64_t failures;      /**< fragments whose copy failed (sync() returned -EIO) */
	uint64_t pools;         /**< mempools registered with the GPU */
	uint64_t mixed_bursts;  /**< rx bursts whose fragments went to several devices */
	uint16_t n_devs;
	enum djg_rx_mover mover;       /**< the one in use: GATHER or COPY */
	enum djg_rx_mover mover_asked; /**< what the configuration asked */
	/** The start-up measurement (AUTO only; 0 where not measured). */
	double gather_gbytes_s, copy_gbytes_s;
	/** Copy mover, summed over lcores and GPUs (gpu/packer.h). */
	uint64_t chunk_bytes;   /**< bytes packed into chunks */
	uint64_t chunks;        /**< chunks handed to the copy engine */
	uint64_t chunk_copies;  /**< copy-engine copies issued */
	uint64_t chunk_waits;   /**< times an lcore waited for a chunk to come free */
	/** Per device (summed over lcores): what its sinks gathered. */
	struct {
		uint64_t bytes, copies, bursts;
	} dev[DJG_PLACER_MAX_DEVS];
};

/** gpudev dev_id of the GPU that is CUDA device @p ordinal (the ordinal the
 *  runtime and gpu_ops use): >= 0, -DJ_ENOGPU (no GPU), -ENODEV. */
int djg_find_cuda(int ordinal);

/** Create the placer for dp_engine_config.placer. The caller owns *out
 *  and destroys it after the data plane. 0, -EINVAL, -ENOMEM, -DJ_ENOGPU. */
int djg_dp_placer_create(const struct djg_dp_placer_conf *conf,
			    struct djg_dp_placer **out);

/** The callbacks to put in dp_engine_config.placer; owned by @p p.
 *  Its lcore_init() gives every call a state of its own (sinks, gather
 *  kernels, chunks), whatever the lcore index: several engines, or several
 *  receive threads, may share one placer and place into one destination at
 *  once, each on its own state. Up to 16 states at once; lcore_init()
 *  returns -ENOSPC beyond, -ENOMEM, or a sink's error. */
const struct dp_engine_placer *djg_dp_placer_ops(const struct djg_dp_placer *p);

/** Counters summed over the lcores that use the placer now. */
void djg_dp_placer_stats_get(struct djg_dp_placer *p, struct djg_dp_placer_stats *st);

/** Free the placer; every data plane using it must be destroyed first. */
void djg_dp_placer_destroy(struct djg_dp_placer *p);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GPU_H */
