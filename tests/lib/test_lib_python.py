#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""libdjinn.so loads into Python (ctypes), as the Python frontend will use it.

Loading runs DPDK's constructors (driver registration) and needs no static
TLS block; neither may fail or start anything. Then a few calls through the
public API: error text, dtype sizes, path names, the option initialisers
(whose defaults must come back as the header says).

  test_lib_python.py LIBDJINN_SO
"""
import ctypes
import sys

DJ_EAUTH = 10001


class DpdkOptions(ctypes.Structure):
    # struct dj_dpdk_options (include/djinn/djinn.h)
    _fields_ = [("default_vdev", ctypes.c_char_p), ("port", ctypes.c_char_p),
                ("local_ip", ctypes.c_char_p), ("frame_size", ctypes.c_uint16),
                ("idle_sleep_us", ctypes.c_uint32), ("link_timeout_ms", ctypes.c_uint32),
                ("no_huge_mem_mb", ctypes.c_uint)]


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.dj_strerror.restype = ctypes.c_char_p
    lib.dj_dtype_size.restype = ctypes.c_size_t
    lib.dj_path_name.restype = ctypes.c_char_p
    checks = [
        ("dj_strerror(-DJ_EAUTH)", lib.dj_strerror(-DJ_EAUTH), b"authentication failed"),
        ("dj_dtype_size(bfloat16)", lib.dj_dtype_size(2), 2),
        ("dj_path_name(DPDK)", lib.dj_path_name(2), b"dpdk"),
    ]
    path = ctypes.c_int(-1)
    checks.append(("dj_path_parse(tcp)", (lib.dj_path_parse(b"tcp", ctypes.byref(path)),
                                          path.value), (0, 1)))
    opts = DpdkOptions()
    lib.dj_dpdk_options_init(ctypes.byref(opts))
    checks.append(("dpdk defaults", (opts.local_ip, opts.frame_size, opts.port),
                   (b"198.18.0.2", 9014, None)))
    checks.append(("default vdev", opts.default_vdev.startswith(b"net_memif0,role=client"),
                   True))
    # No EAL argument list, no data path: refused without touching EAL.
    dpdk = ctypes.c_void_p()
    checks.append(("dj_dpdk_create(argc 0)",
                   lib.dj_dpdk_create(0, None, None, None, None, ctypes.byref(dpdk)), -22))
    failed = 0
    for name, got, want in checks:
        ok = got == want
        failed |= not ok
        print(f"{'ok' if ok else 'FAIL'}: {name} = {got!r}" + ("" if ok else f", want {want!r}"))
    if failed:
        return 1
    print("PASS: lib_python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
