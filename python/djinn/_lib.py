# SPDX-License-Identifier: BSD-3-Clause
"""libdjinn.so through ctypes: where the library is, and its public API.

Only what libdjinn.map exports is used here (the dj_* functions of
include/djinn/*.h); the structures below mirror those headers field for field
(tests/test_abi.py compares their sizes and offsets with a C compiler's).

ctypes, not cffi: it is in the standard library, so the package needs nothing
beyond the Python it runs on (Debian's or a pyenv one) and installs without a
compiler; ctypes releases the GIL around every foreign call, so a blocking
request never stalls other Python threads; its per-call cost is measured in
bench/bench_overhead.py next to the C client's.

Where the library is found, in order:
  1. DJINN_LIB=/path/to/libdjinn.so;
  2. the build tree this package sits in (python/djinn -> ../../build, or
     DJINN_BUILD=/path/to/build);
  3. the dynamic loader's "libdjinn.so.0": the system library directory after
     `meson install` (run `ldconfig` after), or LD_LIBRARY_PATH.
"""
import ctypes
import os
from pathlib import Path

DJ_MAX_DIMS = 8
DJ_MAX_OP_ARGS = 16
DJ_BATCH_PUT_MAX = 64 << 20

# enum dj_dtype: the numbers travel on the wire.
DTYPE_NAMES = ("float32", "float16", "bfloat16", "int32", "int64")
DTYPE_SIZES = (4, 2, 2, 4, 8)
DTYPE_CODES = {name: code for code, name in enumerate(DTYPE_NAMES)}

PATHS = {"auto": 0, "tcp": 1, "dpdk": 2}
DJ_MEM_HOST = 0

# enum dj_graph_kind / dj_graph_residency / dj_graph_phase.
GRAPH_KINDS = ("input", "param", "state", "op")
RESIDENCIES = ("ephemeral_activation", "persistent_weight", "stateful_kv_cache")
PHASES = ("unknown", "prefill", "decode")


class TensorDesc(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * DJ_MAX_DIMS)]


class Tensor(ctypes.Structure):
    _fields_ = [("desc", TensorDesc), ("data", ctypes.c_void_p), ("mem", ctypes.c_int)]


class ClientOptions(ctypes.Structure):
    _fields_ = [("host", ctypes.c_char_p), ("port", ctypes.c_uint16),
                ("token", ctypes.c_char_p), ("token_file", ctypes.c_char_p),
                ("tls", ctypes.c_int), ("tls_ca", ctypes.c_char_p),
                ("path", ctypes.c_int), ("datapath", ctypes.c_void_p),
                ("probe_timeout_ms", ctypes.c_uint32), ("dp_timeout_ms", ctypes.c_uint32),
                ("dp_max_failures", ctypes.c_int), ("connect_timeout_ms", ctypes.c_uint32),
                ("request_timeout_ms", ctypes.c_uint32), ("max_retries", ctypes.c_int),
                ("backoff_base_ms", ctypes.c_uint32), ("backoff_max_ms", ctypes.c_uint32),
                ("pool_max_idle", ctypes.c_int), ("pool_idle_timeout_ms", ctypes.c_uint32),
                ("pool_check_after_ms", ctypes.c_uint32), ("wait_spin_us", ctypes.c_uint32),
                ("device", ctypes.c_char_p), ("json_only", ctypes.c_int),
                ("dp_stripes", ctypes.c_uint), ("dp_stripe_min", ctypes.c_uint64),
                ("no_autocork", ctypes.c_int), ("cork_flow_us", ctypes.c_uint32)]


class BatchOp(ctypes.Structure):
    _fields_ = [("op", ctypes.c_char_p), ("inputs", ctypes.c_char_p * DJ_MAX_OP_ARGS),
                ("n_in", ctypes.c_int), ("attrs_json", ctypes.c_char_p),
                ("put", ctypes.POINTER(Tensor)), ("fetch", ctypes.c_int),
                ("free", ctypes.POINTER(ctypes.c_int)), ("n_free", ctypes.c_int),
                ("device", ctypes.c_char_p)]


class DpdkOptions(ctypes.Structure):
    _fields_ = [("default_vdev", ctypes.c_char_p), ("port", ctypes.c_char_p),
                ("local_ip", ctypes.c_char_p), ("frame_size", ctypes.c_uint16),
                ("idle_sleep_us", ctypes.c_uint32), ("link_timeout_ms", ctypes.c_uint32),
                ("no_huge_mem_mb", ctypes.c_uint), ("queues", ctypes.c_uint),
                ("idle", ctypes.c_int), ("caller_runs", ctypes.c_int)]


class ClientStats(ctypes.Structure):
    _fields_ = [("connects", ctypes.c_uint64), ("reuses", ctypes.c_uint64),
                ("health_checks", ctypes.c_uint64), ("health_failures", ctypes.c_uint64),
                ("idle_closed", ctypes.c_uint64), ("retries", ctypes.c_uint64),
                ("dp_fallbacks", ctypes.c_uint64), ("reuse_rate", ctypes.c_double),
                ("corked", ctypes.c_uint64), ("request_writes", ctypes.c_uint64),
                ("flushes_reader", ctypes.c_uint64), ("flushes_caller", ctypes.c_uint64),
                ("flushes_wait", ctypes.c_uint64)]


class GraphRunStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "round_trips", "stages", "batches", "ops", "puts_inline", "puts_separate",
        "params_uploaded", "params_reused", "states_created", "frees_inline",
        "frees_async", "transfers", "gets")] + [
        ("bytes_up", ctypes.c_uint64), ("bytes_down", ctypes.c_uint64),
        ("kv_bytes_moved", ctypes.c_uint64), ("state_moves", ctypes.c_int),
        ("kv_bytes_through_client", ctypes.c_uint64)]


class GraphNodeInfo(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("name", ctypes.c_char_p),
                ("attrs_json", ctypes.c_char_p), ("n_in", ctypes.c_int),
                ("inputs", ctypes.c_int * DJ_MAX_OP_ARGS), ("desc", TensorDesc),
                ("nbytes", ctypes.c_uint64), ("inferred", ctypes.c_int),
                ("writes", ctypes.c_int), ("state", ctypes.c_int),
                ("residency", ctypes.c_int), ("patterns", ctypes.c_uint32),
                ("block", ctypes.c_int), ("role", ctypes.c_char_p),
                ("flops", ctypes.c_double), ("hash", ctypes.c_uint64),
                ("resident", ctypes.c_uint64), ("server", ctypes.c_int)]


# void (*dj_future_cb)(struct dj_future *, void *);
FUTURE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
# void (*dj_log_fn)(enum dj_log_level, const char *, const char *, void *);
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
# NULL callbacks, for requests nobody is called back for.
NO_CB = FUTURE_CB()
NO_LOG_FN = LOG_FN()

_P = ctypes.c_void_p
_I = ctypes.c_int
_U64 = ctypes.c_uint64
_S = ctypes.c_char_p
_PU64 = ctypes.POINTER(ctypes.c_uint64)
_PT = ctypes.POINTER(Tensor)
_PD = ctypes.POINTER(TensorDesc)

# name: (restype, argtypes). Every function this package calls, as declared
# in include/djinn/*.h.
_PROTOTYPES = {
    "dj_strerror": (_S, [_I]),
    "dj_log_set_level": (None, [_I]),
    "dj_log_get_level": (_I, []),
    "dj_log_set_handler": (None, [LOG_FN, _P]),
    "dj_client_options_init": (None, [ctypes.POINTER(ClientOptions)]),
    "dj_client_create": (_I, [ctypes.POINTER(ClientOptions), ctypes.POINTER(_P)]),
    "dj_client_destroy": (None, [_P]),
    "dj_client_get_stats": (None, [_P, ctypes.POINTER(ClientStats)]),
    "dj_connect": (_I, [_P, ctypes.POINTER(_P)]),
    "dj_disconnect": (None, [_P]),
    "dj_conn_close": (None, [_P]),
    "dj_conn_path": (_I, [_P, ctypes.POINTER(_S)]),
    "dj_conn_session_id": (_U64, [_P]),
    "dj_conn_device": (ctypes.c_char_p, [_P]),
    "dj_conn_last_error": (_S, [_P]),
    "dj_put": (_I, [_P, _PT, _PU64]),
    "dj_put_into": (_I, [_P, _U64, _PT]),
    "dj_alloc": (_I, [_P, _PD, _PU64]),
    "dj_get": (_I, [_P, _U64, _PT]),
    "dj_describe": (_I, [_P, _U64, _PD]),
    "dj_free": (_I, [_P, _U64]),
    "dj_execute": (_I, [_P, _S, _PU64, _I, _S, _PU64, _PD]),
    "dj_ping": (_I, [_P, _PU64]),
    "dj_stats": (_I, [_P, ctypes.POINTER(ctypes.c_void_p)]),
    "dj_execute_batch": (_I, [_P, ctypes.POINTER(BatchOp), _I, _PU64]),
    "dj_put_async": (_I, [_P, _PT, FUTURE_CB, _P, ctypes.POINTER(_P)]),
    "dj_get_async": (_I, [_P, _U64, _PT, FUTURE_CB, _P, ctypes.POINTER(_P)]),
    "dj_execute_async": (_I, [_P, _S, _PU64, _I, _S, FUTURE_CB, _P, ctypes.POINTER(_P)]),
    "dj_free_async": (_I, [_P, _U64, FUTURE_CB, _P, ctypes.POINTER(_P)]),
    "dj_execute_batch_async": (_I, [_P, ctypes.POINTER(BatchOp), _I, _P, _U64, FUTURE_CB, _P,
                                    ctypes.POINTER(_P)]),
    "dj_future_wait": (_I, [_P, _I]),
    "dj_future_done": (_I, [_P]),
    "dj_future_handle": (_I, [_P, _PU64, _PD]),
    "dj_future_outputs": (_I, [_P, _PU64, _PD, _I]),
    "dj_future_batch_handles": (_I, [_P, _PU64, _I]),
    "dj_future_error": (_S, [_P]),
    "dj_future_abandon": (_I, [_P]),
    "dj_future_release": (None, [_P]),
    "dj_dpdk_options_init": (None, [ctypes.POINTER(DpdkOptions)]),
    "dj_dpdk_create": (_I, [_I, ctypes.POINTER(_S), ctypes.POINTER(DpdkOptions),
                            ctypes.POINTER(_I), _P, ctypes.POINTER(_P)]),
    "dj_dpdk_datapath": (_P, [_P]),
    "dj_dpdk_destroy": (None, [_P]),
    "dj_graph_ctx_create": (_I, [_P, ctypes.POINTER(_P), _I, ctypes.POINTER(_P)]),
    "dj_graph_ctx_destroy": (None, [_P]),
    "dj_graph_ctx_state_drop": (_I, [_P, _S]),
    "dj_graph_ctx_state_where": (_I, [_P, _S, ctypes.POINTER(_I), _PU64]),
    "dj_graph_ctx_stats": (None, [_P, ctypes.POINTER(GraphRunStats)]),
    "dj_graph_create": (_I, [_P, ctypes.POINTER(_P)]),
    "dj_graph_destroy": (None, [_P]),
    "dj_graph_input": (_I, [_P, _S, _PT]),
    "dj_graph_param_hashed": (_I, [_P, _S, _PT, _U64]),
    "dj_graph_hash": (_U64, [_PT]),
    "dj_graph_state": (_I, [_P, _S, _PD, _PT]),
    "dj_graph_op": (_I, [_P, _S, ctypes.POINTER(_I), _I, _S]),
    "dj_graph_error": (_S, [_P]),
    "dj_graph_fetch": (_I, [_P, ctypes.POINTER(_I), _I, _PT]),
    "dj_graph_last_run": (None, [_P, ctypes.POINTER(GraphRunStats)]),
    "dj_graph_node_count": (_I, [_P]),
    "dj_graph_node_desc": (_I, [_P, _I, _PD]),
    "dj_graph_node": (_I, [_P, _I, ctypes.POINTER(GraphNodeInfo)]),
    "dj_graph_phase": (_I, [_P, ctypes.POINTER(_S)]),
    "dj_graph_describe": (ctypes.c_void_p, [_P]),
}

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def c_free(ptr):
    """free() a string the library malloc'ed for us (dj_stats, describe)."""
    _libc.free(ptr)


def _candidates():
    env = os.environ.get("DJINN_LIB")
    if env:
        return [env], "DJINN_LIB"
    builds = []
    if os.environ.get("DJINN_BUILD"):
        builds.append(Path(os.environ["DJINN_BUILD"]))
    # python/djinn/_lib.py -> the checkout's build/ (running from the tree).
    builds.append(Path(__file__).resolve().parent.parent.parent / "build")
    found = [str(b / "libdjinn.so") for b in builds if (b / "libdjinn.so").exists()]
    return found + ["libdjinn.so.0"], "the build tree, then the dynamic loader"


def load():
    """Load libdjinn and declare its prototypes; ImportError says where it looked."""
    paths, how = _candidates()
    errors = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        missing = [n for n in _PROTOTYPES if not hasattr(lib, n)]
        if missing:
            raise ImportError(f"{path} lacks {', '.join(missing)}: a libdjinn older than "
                              "this package (rebuild it, or point DJINN_LIB at a newer one)")
        for name, (res, args) in _PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        lib.path = path
        return lib
    raise ImportError("libdjinn not found (looked in " + how + "): " + "; ".join(errors) +
                      ". Build it (bash scripts/setup.sh), set DJINN_LIB=/path/libdjinn.so, "
                      "or `meson install` it and run ldconfig")


lib = load()


def strerror(rc):
    return lib.dj_strerror(rc).decode()


def make_desc(dtype_code, shape):
    d = TensorDesc()
    d.dtype = dtype_code
    d.ndim = len(shape)
    for i, s in enumerate(shape):
        d.shape[i] = s
    return d


def desc_shape(d):
    return tuple(d.shape[i] for i in range(d.ndim))


def desc_nbytes(d):
    n = DTYPE_SIZES[d.dtype]
    for i in range(d.ndim):
        n *= d.shape[i]
    return n
