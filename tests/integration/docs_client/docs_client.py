#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A Djinn control-plane client written from docs/CONTROL.md alone.

Standard library only, so that it runs under any python3 (Debian's and
pyenv's). It proves the page is enough to speak the protocol: frames,
the HMAC handshake, sessions, PUT / EXECUTE / GET with tensor bytes, and
errors by their documented codes.

    docs_client.py --port PORT --token-file FILE [--host 127.0.0.1]

Exit status 0 when every step behaved as the page says, 1 otherwise.
"""
import argparse
import hashlib
import hmac
import json
import os
import socket
import struct
import sys

MAGIC = b"DJC1"
CLIENT_LABEL = b"djinn-auth-client-v1"
SERVER_LABEL = b"djinn-auth-server-v1"

# Codes from the page's table of error codes.
EMSGSIZE = -90
EBADMSG = -74
EALREADY = -114
DJ_EPROTO_VERSION = -10000
DJ_EAUTH = -10001
DJ_EHANDLE = -10005

DTYPE_FORMATS = {"float32": "f", "int32": "i", "int64": "q"}


class ProtocolError(Exception):
    pass


class ServerError(Exception):
    """An ERROR reply: code and message."""

    def __init__(self, code, message):
        super().__init__("%d: %s" % (code, message))
        self.code = code
        self.message = message


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send_frame(self, json_bytes, payload=b""):
        header = MAGIC + struct.pack(">IQ", len(json_bytes), len(payload))
        self.sock.sendall(header + json_bytes + payload)

    def recv_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ProtocolError("connection closed by the server")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv_frame(self):
        """(reply object, its JSON bytes, payload bytes)."""
        header = self.recv_exact(16)
        if header[:4] != MAGIC:
            raise ProtocolError("bad magic %r" % header[:4])
        json_len, payload_len = struct.unpack(">IQ", header[4:])
        text = self.recv_exact(json_len)
        payload = self.recv_exact(payload_len) if payload_len else b""
        # Every reply is valid UTF-8 JSON: decode strictly.
        return json.loads(text.decode("utf-8", errors="strict")), text, payload

    def closed_by_server(self):
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True

    def request(self, msg_type, payload=b"", **fields):
        """Send one request and wait for its reply (ids from 1 up)."""
        rid = self.next_id
        self.next_id += 1
        msg = {"type": msg_type, "id": rid}
        msg.update(fields)
        self.send_frame(json.dumps(msg, separators=(",", ":")).encode("utf-8"), payload)
        reply, _, reply_payload = self.recv_frame()
        if reply.get("id") != rid:
            raise ProtocolError("reply id %r for request %d" % (reply.get("id"), rid))
        if reply["type"] == "ERROR":
            raise ServerError(reply["code"], reply["message"])
        return reply, reply_payload

    def handshake(self, token, version=1):
        """HELLO, CHALLENGE, AUTH with the token; checks the server's proof."""
        nonce_c = os.urandom(32)
        reply, _ = self.request("HELLO", version=version, nonce=nonce_c.hex(),
                                caps={"dpdk": False})
        if reply["type"] == "HELLO":
            return reply  # a server without a token
        if reply["type"] != "CHALLENGE":
            raise ProtocolError("HELLO answered with %s" % reply["type"])
        nonce_s = bytes.fromhex(reply["nonce"])
        mac = hmac.new(token, CLIENT_LABEL + nonce_s + nonce_c, hashlib.sha256).hexdigest()
        reply, _ = self.request("AUTH", mac=mac)
        want = hmac.new(token, SERVER_LABEL + nonce_c + nonce_s, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(reply.get("proof", ""), want):
            raise ProtocolError("the server's proof is wrong: not our server")
        return reply

    def put(self, dtype, shape, values):
        data = struct.pack("<%d%s" % (len(values), DTYPE_FORMATS[dtype]), *values)
        reply, _ = self.request("PUT", payload=data, dtype=dtype, shape=shape)
        return reply["handle"]

    def get(self, handle):
        reply, payload = self.request("GET", handle=handle)
        fmt = DTYPE_FORMATS[reply["dtype"]]
        count = len(payload) // struct.calcsize(fmt)
        return reply["dtype"], reply["shape"], list(struct.unpack("<%d%s" % (count, fmt), payload))

    def execute(self, op, inputs, attrs=None):
        fields = {"op": op, "inputs": inputs}
        if attrs is not None:
            fields["attrs"] = attrs
        reply, _ = self.request("EXECUTE", **fields)
        return reply["results"][0]["outputs"]


def read_token(path):
    """The file's bytes, every trailing newline and carriage return stripped."""
    with open(path, "rb") as f:
        return f.read(4095).rstrip(b"\r\n")


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ServerError as e:
        if e.code != code:
            raise ProtocolError("expected error %d, got %d (%s)" % (code, e.code, e.message))
        return e
    raise ProtocolError("expected error %d, got a reply" % code)


def run(host, port, token):
    steps = []

    def step(text):
        steps.append(text)
        print("  ok:", text)

    # A version other than 1 is refused, not negotiated, and the connection closes.
    c = Connection(host, port)
    expect_error(DJ_EPROTO_VERSION, c.handshake, token, version=2)
    if not c.closed_by_server():
        raise ProtocolError("connection still open after a version refusal")
    c.close()
    step("HELLO version 2: ERROR -10000, closed")

    # A wrong token.
    c = Connection(host, port)
    e = expect_error(DJ_EAUTH, c.handshake, token + b"-wrong")
    c.close()
    step("wrong token: ERROR -10001 (%s)" % e.message)

    # The real thing.
    c = Connection(host, port)
    hello = c.handshake(token)
    if hello.get("version") != 1 or "float32" not in hello["caps"].get("dtypes", []):
        raise ProtocolError("unexpected HELLO reply %r" % hello)
    step("HELLO + AUTH with the token, server proof checked")
    expect_error(EALREADY, c.request, "HELLO", version=1)
    step("a second HELLO: ERROR -114, connection serves on")
    session, _ = c.request("SESSION")
    if session["resumed"] is not False or not session["cookie"].startswith("0x"):
        raise ProtocolError("unexpected SESSION reply %r" % session)
    step("SESSION %d" % session["session"])

    reply, _ = c.request("ALLOC", dtype="int32", shape=[3, 5])
    dtype, shape, zeros = c.get(reply["handle"])
    if dtype != "int32" or shape != [3, 5] or zeros != [0] * 15:
        raise ProtocolError("ALLOC did not return zeros: %r %r %r" % (dtype, shape, zeros))
    c.request("FREE", handle=reply["handle"])
    step("ALLOC int32 [3, 5] reads as zeros; FREE")

    a_vals = [0.5 * i - 1.0 for i in range(6)]       # 2 x 3, exact in float32
    b_vals = [10.0, 20.0, 30.0]                       # 3, broadcast over rows
    m_vals = [1.0, 0.0, 0.5, 2.0, -1.0, 0.25]         # 3 x 2
    a = c.put("float32", [2, 3], a_vals)
    b = c.put("float32", [3], b_vals)
    m = c.put("float32", [3, 2], m_vals)
    step("PUT float32 [2, 3], [3], [3, 2]: handles %s %s %s" % (a, b, m))

    out = c.execute("add", [a, b])
    dtype, shape, got = c.get(out[0]["handle"])
    want = [a_vals[r * 3 + k] + b_vals[k] for r in range(2) for k in range(3)]
    if dtype != "float32" or shape != [2, 3] or got != want:
        raise ProtocolError("add: got %r %r %r, want %r" % (dtype, shape, got, want))
    step("EXECUTE add (broadcast), GET: %r" % got)

    out = c.execute("matmul", [a, m])
    dtype, shape, got = c.get(out[0]["handle"])
    want = [sum(a_vals[r * 3 + k] * m_vals[k * 2 + j] for k in range(3))
            for r in range(2) for j in range(2)]
    if shape != [2, 2] or got != want:
        raise ProtocolError("matmul: got %r %r, want %r" % (shape, got, want))
    step("EXECUTE matmul, GET: %r" % got)

    out = c.execute("sum", [a], attrs={"dim": 1})
    dtype, shape, got = c.get(out[0]["handle"])
    if shape != [2] or got != [sum(a_vals[:3]), sum(a_vals[3:])]:
        raise ProtocolError("sum: got %r %r" % (shape, got))
    step("EXECUTE sum with attrs {dim: 1}: %r" % got)

    # Errors, by their documented codes.
    e = expect_error(DJ_EHANDLE, c.get, "0x1")
    if "0x1" not in e.message:
        raise ProtocolError("the handle is not named as 0x1: %s" % e.message)
    step("GET of an unknown handle: ERROR -10005 (%s)" % e.message)
    e = expect_error(EMSGSIZE, c.request, "PUT", payload=b"\0" * 8, dtype="float32", shape=[3])
    step("PUT of 8 bytes for 12: ERROR -90 (%s)" % e.message)
    # A request that is not valid UTF-8 still gets a valid UTF-8 reply.
    bad = b'{"type":"PI\xffNG\x1b[2J","id":4242}'
    c.send_frame(bad)
    reply, text, _ = c.recv_frame()
    if reply["type"] != "ERROR" or reply["code"] != EBADMSG or reply["id"] != 4242:
        raise ProtocolError("unexpected reply to a bad type: %r" % reply)
    if any(ch < 0x20 for ch in text):
        raise ProtocolError("raw control character in a reply: %r" % text)
    step("a type of invalid UTF-8: ERROR -74, reply valid UTF-8 (%s)" % reply["message"])

    for h in (a, b, m):
        c.request("FREE", handle=h)
    c.request("BYE")
    c.close()
    step("FREE, BYE")
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    args = ap.parse_args()
    print("docs client on Python %s" % sys.version.split()[0])
    try:
        steps = run(args.host, args.port, read_token(args.token_file))
    except (ProtocolError, ServerError, OSError, ValueError, KeyError) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
        return 1
    print("PASS: %d steps as docs/CONTROL.md says" % len(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
