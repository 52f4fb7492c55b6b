# SPDX-License-Identifier: BSD-3-Clause
"""The ctypes mirrors of the public structures (djinn/_lib.py) have the C
compiler's sizes and field offsets, and every function the package calls is
exported by libdjinn (the lib_symbols test keeps that list equal to the
headers')."""
import ctypes
import json
import os
import shutil
import subprocess

import pytest

from djinn import _lib

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRUCTS = {
    "dj_tensor_desc": _lib.TensorDesc, "dj_tensor": _lib.Tensor,
    "dj_client_options": _lib.ClientOptions, "dj_batch_op": _lib.BatchOp,
    "dj_dpdk_options": _lib.DpdkOptions, "dj_client_stats": _lib.ClientStats,
    "dj_graph_run_stats": _lib.GraphRunStats, "dj_graph_node_info": _lib.GraphNodeInfo,
}


def test_struct_layouts_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "djinn/djinn.h"',
             '#include "djinn/graph.h"', "int main(void) {", 'printf("{");']
    first = True
    for cname, py in STRUCTS.items():
        for field, _ in py._fields_:
            sep = "" if first else ","
            first = False
            lines.append(f'printf("{sep}\\"{cname}.{field}\\": %zu", '
                         f'offsetof(struct {cname}, {field}));')
        lines.append(f'printf(",\\"{cname}\\": %zu", sizeof(struct {cname}));')
    lines += ['printf("}\\n");', "return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(TOP, "include"), str(src), "-o",
                    str(exe)], check=True)
    c = json.loads(subprocess.run([str(exe)], check=True, capture_output=True,
                                  text=True).stdout)
    for cname, py in STRUCTS.items():
        assert ctypes.sizeof(py) == c[cname], cname
        for field, _ in py._fields_:
            assert getattr(py, field).offset == c[f"{cname}.{field}"], f"{cname}.{field}"


def test_every_prototype_is_exported():
    for name in _lib._PROTOTYPES:
        assert hasattr(_lib.lib, name), name
