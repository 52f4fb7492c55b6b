# SPDX-License-Identifier: BSD-3-Clause
"""Every aten:: name of djinn.ATEN_OPS and every server operation, from
Python, against torch on the CPU: the same inputs go to the server (one batch
per call, as the coordinator sends it) and to torch."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import djinn
from djinn._record import record_aten

g = torch.Generator().manual_seed(7)


def rn(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=g).to(dtype)


def ri(*shape, lo=0, hi=10):
    return torch.randint(lo, hi, shape, generator=g)


# (name, args, kwargs, torch reference, exact?)
CASES = [
    ("aten::matmul", (rn(3, 4), rn(4, 5)), {}, torch.matmul, False),
    ("aten::matmul", (rn(2, 3, 4), rn(4)), {}, torch.matmul, False),
    ("aten::mm", (rn(3, 4), rn(4, 2)), {}, torch.mm, False),
    ("aten::bmm", (rn(2, 3, 4), rn(2, 4, 2)), {}, torch.bmm, False),
    ("aten::add", (rn(3, 4), rn(4)), {}, torch.add, True),
    ("aten::add", (rn(3, 4), rn(3, 4)), {"alpha": 2.5}, torch.add, False),
    ("aten::add", (ri(3, 4), 7), {}, torch.add, True),
    ("aten::sub", (rn(3, 4), rn(3, 1)), {}, torch.sub, True),
    ("aten::sub", (rn(3), rn(3)), {"alpha": -2}, torch.sub, False),
    ("aten::rsub", (rn(3), 1.5), {}, torch.rsub, True),
    ("aten::mul", (rn(2, 3), 0.25), {}, torch.mul, True),
    ("aten::mul", (ri(2, 3), ri(3)), {}, torch.mul, True),
    ("aten::div", (rn(2, 3), rn(2, 3)), {}, torch.div, True),
    ("aten::div", (ri(5, lo=-9), ri(5, lo=1)), {}, torch.div, True),  # ints -> float32
    ("aten::neg", (rn(4),), {}, torch.neg, True),
    ("aten::relu", (rn(3, 3),), {}, torch.relu, True),
    ("aten::sigmoid", (rn(3, 3),), {}, torch.sigmoid, False),
    ("aten::tanh", (rn(3, 3),), {}, torch.tanh, False),
    ("aten::exp", (rn(3, 3),), {}, torch.exp, False),
    ("aten::log", (rn(3, 3).abs() + 0.1,), {}, torch.log, False),
    ("aten::sqrt", (rn(3, 3).abs(),), {}, torch.sqrt, False),
    ("aten::rsqrt", (rn(3, 3).abs() + 0.1,), {}, torch.rsqrt, False),
    ("aten::pow", (rn(3, 3), 2), {}, torch.pow, True),
    ("aten::pow", (rn(3, 3).abs(), 0.5), {}, torch.pow, False),
    ("aten::gelu", (rn(3, 5),), {}, F.gelu, False),
    ("aten::silu", (rn(3, 5),), {}, F.silu, False),
    ("aten::softmax", (rn(3, 5), -1), {}, torch.softmax, False),
    ("aten::softmax", (rn(3, 5, 2), 1), {}, torch.softmax, False),
    ("aten::_softmax", (rn(3, 5), 0, False), {}, lambda x, d, h: torch.softmax(x, d), False),
    ("aten::sum", (rn(3, 5),), {}, torch.sum, False),
    ("aten::sum", (rn(3, 5), [1]), {"keepdim": True}, torch.sum, False),
    ("aten::sum", (ri(3, 5).int(),), {"dim": 0}, torch.sum, True),  # int32 -> int64
    ("aten::mean", (rn(3, 5), 1), {}, torch.mean, False),
    ("aten::linear", (rn(2, 3, 4), rn(5, 4), rn(5)), {}, F.linear, False),
    ("aten::linear", (rn(2, 4), rn(5, 4)), {}, F.linear, False),
    ("aten::layer_norm", (rn(2, 3, 8), [8], rn(8), rn(8), 1e-5), {}, F.layer_norm, False),
    ("aten::layer_norm", (rn(2, 8), [8]), {}, F.layer_norm, False),
    ("aten::rms_norm", (rn(2, 8), [8], rn(8), 1e-6), {},
     lambda x, s, w, e: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + e) * w, False),
    ("aten::transpose", (rn(2, 3, 4), 0, 2), {}, torch.transpose, True),
    ("aten::t", (rn(2, 3),), {}, torch.t, True),
    ("aten::permute", (rn(2, 3, 4), [2, 0, 1]), {}, torch.permute, True),
    ("aten::reshape", (rn(2, 6), [3, -1]), {}, torch.reshape, True),
    ("aten::view", (rn(2, 6), [4, 3]), {}, lambda x, s: x.view(s), True),
    ("aten::flatten", (rn(2, 3, 4), 1), {}, torch.flatten, True),
    ("aten::unsqueeze", (rn(2, 3), 1), {}, torch.unsqueeze, True),
    ("aten::squeeze", (rn(2, 1, 3), 1), {}, torch.squeeze, True),
    ("aten::clone", (rn(2, 3),), {}, torch.clone, True),
    ("aten::contiguous", (rn(2, 3).t(),), {}, lambda x: x.contiguous(), True),
    ("aten::cat", ([rn(2, 3), rn(4, 3)], 0), {}, torch.cat, True),
    ("aten::cat", ([rn(2, 3), rn(2, 1), rn(2, 2)],), {"dim": 1}, torch.cat, True),
    ("aten::stack", ([rn(2, 3), rn(2, 3)], 1), {}, torch.stack, True),
    ("aten::embedding", (rn(10, 4), ri(2, 3)), {}, lambda w, i: F.embedding(i, w), True),
    ("aten::narrow", (rn(4, 6), 1, 2, 3), {}, torch.narrow, True),
    ("aten::slice", (rn(4, 6), 1, -4, 100), {}, lambda x, d, s, e: x[:, s:e], True),
    ("aten::select", (rn(4, 6), 0, -1), {}, torch.select, True),
    ("aten::slice_scatter", (rn(2, 8, 3), rn(2, 2, 3)), {"dim": 1, "start": 5, "end": 7},
     lambda x, s, dim, start, end: _scatter(x, s, dim, start, end), True),
    ("aten::scaled_dot_product_attention", (rn(2, 2, 5, 8), rn(2, 2, 7, 8), rn(2, 2, 7, 4)),
     {}, None, False),
    ("aten::scaled_dot_product_attention", (rn(1, 2, 6, 8), rn(1, 2, 6, 8), rn(1, 2, 6, 8)),
     {"is_causal": True}, None, False),
    ("aten::argmax", (rn(3, 7), 1), {}, torch.argmax, True),
    ("aten::argmax", (rn(3, 7),), {}, torch.argmax, True),
    ("aten::argmax", (rn(3, 7), -1, True), {}, torch.argmax, True),
    ("aten::add", (rn(3, dtype=torch.float16), rn(3, dtype=torch.float16)), {}, torch.add, True),
    ("aten::matmul", (rn(4, 8, dtype=torch.bfloat16), rn(8, 2, dtype=torch.bfloat16)), {},
     torch.matmul, False),
]


def _scatter(x, src, dim, start, end):
    # torch.slice_scatter itself: Debian's 1.13 computes the wrong slice size.
    y = x.clone()
    y.narrow(dim, start, end - start).copy_(src)
    return y


def sdpa_reference(q, k, v, is_causal=False):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if is_causal:
        s = s + torch.full((q.shape[-2], k.shape[-2]), float("-inf")).triu(1)
    return s.softmax(-1) @ v


def run(conn, name, args, kwargs):
    b = conn.batch()
    out = record_aten(b, name, list(args), dict(kwargs))
    b.fetch(out)
    return b.run()[out]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_aten_against_torch(conn, case):
    name, args, kwargs, ref, exact = case
    got = run(conn, name, args, kwargs)
    want = sdpa_reference(*args, **kwargs) if ref is None else ref(*args, **kwargs)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape)
    if exact:
        assert torch.equal(got, want)
    else:
        tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[got.dtype]
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_every_aten_name_is_tested():
    assert {c[0] for c in CASES} == set(djinn.ATEN_OPS)


@pytest.mark.parametrize("op", djinn.OPERATIONS)
def test_our_names_directly(conn, op):
    """The server's own names with their attributes, numpy in and out."""
    x = rn(3, 4).numpy()
    y = rn(3, 4).numpy()
    cases = {
        "matmul": ((x, y.T), {}, x @ y.T),
        "add": ((x, y), {}, x + y), "sub": ((x, y), {}, x - y),
        "mul": ((x, y), {}, x * y), "div": ((x, y), {}, x / y),
        "relu": ((x,), {}, np.maximum(x, 0)), "sigmoid": ((x,), {}, 1 / (1 + np.exp(-x))),
        "tanh": ((x,), {}, np.tanh(x)), "exp": ((x,), {}, np.exp(x)),
        "log": ((np.abs(x),), {}, np.log(np.abs(x))), "sqrt": ((np.abs(x),), {}, np.sqrt(np.abs(x))),
        "gelu": ((x,), {}, F.gelu(torch.from_numpy(x)).numpy()),
        "silu": ((x,), {}, F.silu(torch.from_numpy(x)).numpy()),
        "sum": ((x,), {"dim": 1}, x.sum(1)), "mean": ((x,), {"dim": 0}, x.mean(0)),
        "softmax": ((x,), {"dim": -1}, torch.softmax(torch.from_numpy(x), -1).numpy()),
        "layer_norm": ((x,), {}, F.layer_norm(torch.from_numpy(x), (4,)).numpy()),
        "linear": ((x, y), {}, x @ y.T),
        "transpose": ((x,), {}, x.T), "reshape": ((x,), {"shape": [2, 6]}, x.reshape(2, 6)),
        "cat": ((x, y), {"dim": 1}, np.concatenate([x, y], 1)),
        "embedding": ((np.array([2, 0], np.int64), x), {}, x[[2, 0]]),
        "narrow": ((x,), {"dim": 1, "start": 1, "length": 2}, x[:, 1:3]),
        "scaled_dot_product_attention": ((x, y, y), {},
                                         sdpa_reference(*map(torch.from_numpy, (x, y, y))).numpy()),
        "slice_write": ((x, y[:, :2]), {"dim": 1, "start": 1},
                        np.concatenate([x[:, :1], y[:, :2], x[:, 3:]], 1)),
        "argmax": ((x,), {"dim": 1}, x.argmax(1)),
        "rms_norm": ((x,), {}, x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)),
    }
    args, attrs, want = cases[op]
    got = conn.compute(op, *args, **attrs)
    assert isinstance(got, np.ndarray) and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
