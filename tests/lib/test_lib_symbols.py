#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""libdjinn exports exactly its public API, no more, no less.

Three lists must be equal: the functions declared in the public headers
(include/djinn/*.h, parsed here), the global entries of libdjinn.map, and
what `nm -D --defined-only libdjinn.so` lists (the version node aside).
Anything else exported would be an internal symbol (dp_, ctl_, djg_, tn_,
djc_), DPDK's (rte_) or cJSON's leaking into every program that links us.
Also checked: the .so asks for no static TLS (it must load with dlopen).

  test_lib_symbols.py LIBDJINN_SO LIBDJINN_MAP HEADER...
"""
import re
import subprocess
import sys


def header_functions(paths):
    """Names of the dj_* functions the headers declare."""
    names = set()
    for path in paths:
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        # Preprocessor lines (macros may look like calls), continuations too.
        text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
        # A declaration: the name, then its parameter list. "(*dj_cb)(" of a
        # function-pointer typedef does not match: ")" follows the name.
        names.update(re.findall(r"\b(dj_\w+)\s*\(", text))
    return names


def map_symbols(path):
    """(global names, version nodes) of an ld version script."""
    text = re.sub(r"/\*.*?\*/", " ", open(path, encoding="utf-8").read(), flags=re.S)
    nodes = re.findall(r"([\w.]+)\s*\{", text)
    names = set()
    for block in re.findall(r"global:(.*?)(?:local:|\})", text, flags=re.S):
        names.update(n.strip() for n in block.split(";") if n.strip())
    return names, set(nodes)


def exported(so):
    out = subprocess.run(["nm", "-D", "--defined-only", so], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            # "dj_put@@LIBDJINN_0.1": the name, without its version.
            symbols[parts[2].split("@")[0]] = parts[1]
    return symbols


def main():
    so, map_path, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
    declared = header_functions(headers)
    listed, nodes = map_symbols(map_path)
    symbols = exported(so)
    # The version node itself is an absolute symbol (type A): not a function.
    version_nodes = {n for n, t in symbols.items() if t == "A" and n in nodes}
    nm_names = set(symbols) - version_nodes
    failures = []

    def compare(a_name, a, b_name, b):
        for n in sorted(a - b):
            failures.append(f"{n}: in {a_name}, not in {b_name}")

    compare("the headers", declared, "libdjinn.map", listed)
    compare("libdjinn.map", listed, "the headers", declared)
    compare("the headers", declared, "nm -D", nm_names)
    compare("nm -D", nm_names, "the headers", declared)
    for n in sorted(nm_names):
        if symbols[n] not in "TtWi":
            failures.append(f"{n}: exported as type {symbols[n]}, not a function")
    if not version_nodes:
        failures.append("no version node (LIBDJINN_*) in nm -D: was the map used?")

    dynamic = subprocess.run(["readelf", "-d", so], check=True, capture_output=True,
                             text=True).stdout
    if "STATIC_TLS" in dynamic:
        failures.append("the .so needs static TLS: dlopen (Python) may refuse it")
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.*?)\]", dynamic)
    if soname is None or not re.fullmatch(r"libdjinn\.so\.\d+", soname.group(1)):
        failures.append(f"soname is {soname.group(1) if soname else 'missing'}, "
                        "not libdjinn.so.N")

    print(f"{len(declared)} functions in {len(headers)} public headers, "
          f"{len(listed)} in libdjinn.map, {len(nm_names)} exported "
          f"(+ version nodes {sorted(version_nodes)})")
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print("PASS: lib_symbols")
    return 0


if __name__ == "__main__":
    sys.exit(main())
