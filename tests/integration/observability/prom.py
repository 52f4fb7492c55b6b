#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""HTTP helpers for the observability tests (standard library only).

  prom.py get URL                      print the body (exit 1 on failure)
  prom.py ready URL TIMEOUT_S          wait until URL answers 200
  prom.py expect BASE TIMEOUT_S Q=V... wait until every PromQL query Q has
                                       the single value V ('>=V' for at least
                                       V), printing what each last returned
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def query(base, q):
    """The value of an instant query with one result, else None."""
    status, body = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise RuntimeError(f"query {q}: {body}")
    result = data["data"]["result"]
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def expect(base, timeout, pairs):
    wanted = []
    for p in pairs:
        q, v = p.rsplit("=", 1)
        at_least = q.endswith(">")
        wanted.append((q[:-1] if at_least else q, float(v), at_least))
    deadline = time.time() + timeout
    while True:
        got = {q: query(base, q) for q, _, _ in wanted}
        ok = all(got[q] is not None and (got[q] >= v if least else got[q] == v)
                 for q, v, least in wanted)
        if ok or time.time() > deadline:
            for q, v, least in wanted:
                mark = "ok  " if got[q] is not None and (got[q] >= v if least else got[q] == v) else "FAIL"
                print(f"{mark} {q} = {got[q]} (want {'>=' if least else ''}{v:g})")
            return ok
        time.sleep(0.5)


def main():
    cmd = sys.argv[1]
    if cmd == "get":
        try:
            status, body = get(sys.argv[2])
        except (OSError, urllib.error.URLError) as e:
            print(f"GET {sys.argv[2]}: {e}", file=sys.stderr)
            return 1
        sys.stdout.write(body)
        return 0 if status == 200 else 1
    if cmd == "ready":
        deadline = time.time() + float(sys.argv[3])
        while time.time() < deadline:
            try:
                if get(sys.argv[2], timeout=2)[0] == 200:
                    return 0
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        return 1
    if cmd == "expect":
        return 0 if expect(sys.argv[2], float(sys.argv[3]), sys.argv[4:]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
