#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A Djinn client written from docs/CONTROL.md alone (standard library only):
HELLO, SESSION, then one PUT of N float32 zeros with a client-chosen request
id ("trace"); it prints 'session ID handle H' and keeps the session open until
a line arrives on stdin, then says BYE.

  rawclient.py PORT N TRACE
"""
import json
import socket
import struct
import sys

MAGIC = b"DJC1"


def send(sock, msg, payload=b""):
    body = json.dumps(msg).encode()
    sock.sendall(MAGIC + struct.pack(">IQ", len(body), len(payload)) + body + payload)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def recv(sock):
    hdr = recv_exact(sock, 16)
    if hdr[:4] != MAGIC:
        raise ValueError("bad magic")
    json_len, payload_len = struct.unpack(">IQ", hdr[4:])
    msg = json.loads(recv_exact(sock, json_len))
    recv_exact(sock, payload_len)
    if msg.get("type") == "ERROR":
        raise RuntimeError(f"ERROR {msg.get('code')}: {msg.get('message')}")
    return msg


def main():
    port, n, trace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sock = socket.create_connection(("127.0.0.1", port))
    send(sock, {"type": "HELLO", "id": 1, "version": 1, "caps": {}})
    recv(sock)
    send(sock, {"type": "SESSION", "id": 2})
    session = recv(sock)["session"]
    send(sock, {"type": "PUT", "id": 3, "trace": trace, "dtype": "float32", "shape": [n]},
         bytes(4 * n))
    handle = recv(sock)["handle"]
    print(f"session {session} handle {handle}", flush=True)
    sys.stdin.readline()
    send(sock, {"type": "BYE", "id": 4})
    recv(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
