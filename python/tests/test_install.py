# SPDX-License-Identifier: BSD-3-Clause
"""`pip install ./python` works offline with Debian's setuptools, and the
installed package finds libdjinn through DJINN_LIB (or the dynamic loader
after `meson install`), away from this tree."""
import os
import subprocess
import sys

import pytest

from djinn import _lib

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pip_install_offline(tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      capture_output=True).returncode != 0:
        pytest.skip("no pip for this Python (Debian: python3-pip)")
    target = tmp_path / "site"
    # A copy of the source, so the build leaves nothing in the tree.
    src = tmp_path / "src"
    subprocess.run(["cp", "-r", os.path.join(TOP, "python"), str(src)], check=True)
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-deps", "--no-index", "--target", str(target), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (target / "djinn" / "core" / "coordinator.py").exists()
    env = dict(os.environ, PYTHONPATH=str(target), DJINN_LIB=_lib.lib.path)
    code = ("import djinn, djinn.core.coordinator as c; "
            "print(djinn.__file__); print(djinn._lib.lib.path)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, libpath = out.stdout.split()
    assert where.startswith(str(target)) and libpath == _lib.lib.path
    # Without DJINN_LIB, away from the build tree: the dynamic loader's
    # libdjinn.so.0, or a clear ImportError saying where it looked.
    env.pop("DJINN_LIB")
    env.pop("DJINN_BUILD", None)
    out = subprocess.run([sys.executable, "-c", "import djinn"], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 or "libdjinn not found" in out.stderr, out.stderr
