# SPDX-License-Identifier: BSD-3-Clause
"""LazyTensor: torch functions captured into lazy graphs, shapes known before
anything runs, values on demand in one round trip, nn modules remote and
unchanged, unsupported functions run locally (warned once per name), and
in-place writes that keep torch's meaning or refuse."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import djinn
from djinn.lazytensor import DjinnFallbackWarning, LazyTensor


@pytest.fixture
def session(address):
    s = djinn.session_for(address)
    yield s


def fetches(s):
    return s.fetches


def test_shapes_known_without_running(session):
    x = djinn.lazy(torch.randn(2, 5, 8), remote=session)
    w = torch.randn(3, 8)
    n = fetches(session)
    y = F.linear(x, w).softmax(-1).transpose(0, 1).reshape(5, -1)
    z = y.argmax(dim=1, keepdim=True)
    assert isinstance(y, LazyTensor) and y.shape == (5, 6) and y.dtype == torch.float32
    assert z.shape == (5, 1) and z.dtype == torch.int64 and z.dim() == 2 and len(z) == 5
    assert y.size(1) == 6 and y.numel() == 30 and y.is_floating_point()
    assert torch.zeros_like(y).shape == (5, 6)       # needs no values either
    assert fetches(session) == n                      # nothing ran
    ref = F.linear(x.cpu(), w).softmax(-1).transpose(0, 1).reshape(5, -1)
    torch.testing.assert_close(y.cpu(), ref)
    assert torch.equal(z.cpu(), ref.argmax(1, keepdim=True))


@pytest.mark.parametrize("how", ["cpu", "numpy", "item", "tolist", "repr", "str", "format",
                                 "eq", "lt", "allclose", "bool", "float", "iter"])
def test_materialization_is_one_round_trip(session, how):
    x = torch.tensor([[1.5, -2.0, 3.0]])
    y = djinn.lazy(x, remote=session) * 2 + 1
    s = y.sum()
    local_y, local_s = x * 2 + 1, (x * 2 + 1).sum()
    n, rt = session.fetches, session.round_trips
    got = {
        "cpu": lambda: torch.equal(y.cpu(), local_y),
        "numpy": lambda: np.array_equal(y.numpy(), local_y.numpy()),
        "item": lambda: s.item() == local_s.item(),
        "tolist": lambda: y.tolist() == local_y.tolist(),
        "repr": lambda: repr(y) == repr(local_y),
        "str": lambda: str(y) == str(local_y),
        "format": lambda: f"{s:.3f}" == f"{local_s:.3f}",
        "eq": lambda: bool((y == local_y).all()),
        "lt": lambda: torch.equal(y < 2, local_y < 2),
        "allclose": lambda: torch.allclose(y, local_y),
        "bool": lambda: bool(s > 0) is True,
        "float": lambda: float(s) == float(local_s),
        "iter": lambda: [r.tolist() for r in y] == local_y.tolist(),
    }[how]()
    assert got
    assert session.fetches == n + 1 and session.round_trips == rt + 1
    # Values stay: asking again runs nothing.
    y.cpu(), s.item()
    assert session.fetches == n + 1


def test_one_fetch_brings_every_live_tensor(session):
    x = djinn.lazy(torch.randn(4, 4), remote=session)
    a, b = x.exp(), x.relu()
    n = session.fetches
    a.cpu()
    b.cpu()
    assert session.fetches == n + 1
    torch.testing.assert_close(b.cpu(), x.cpu().relu())


def test_nn_modules_run_remotely_unchanged(address):
    torch.manual_seed(3)
    mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16), nn.SiLU(),
                        nn.LayerNorm(16), nn.Dropout(0.1), nn.ReLU()).eval()
    emb = nn.Embedding(20, 16)
    ids = torch.randint(0, 20, (2, 7))
    with djinn.remote(address) as s:
        n = s.fetches
        h = emb(ids)
        y = mlp(h)
        p = F.softmax(y, dim=-1)
        assert isinstance(y, LazyTensor) and y.shape == (2, 7, 16)
    assert s.fetches == n  # leaving the block ran nothing: no state written
    torch.testing.assert_close(p.cpu(), F.softmax(mlp(emb(ids)), dim=-1))
    # embedding, linear, gelu, linear, silu, layer_norm, relu, softmax; dropout
    # in eval mode is the identity, as in torch.
    assert s.last["round_trips"] == 1 and s.last["ops"] == 8


class SelfAttention(nn.Module):
    """Softmax attention written out (torch 1.13 has no
    F.scaled_dot_product_attention): q @ k^T, scale, causal mask, softmax, @ v."""

    def __init__(self, dim, heads):
        super().__init__()
        self.h, self.d = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).split(self.h * self.d, dim=-1)
        q, k, v = (t.view(b, n, self.h, self.d).transpose(1, 2) for t in (q, k, v))
        mask = torch.full((n, n), float("-inf")).triu(1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d)) + mask
        y = att.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).contiguous().view(b, n, -1))


def test_softmax_attention(address):
    torch.manual_seed(4)
    attn = SelfAttention(32, 4)
    x = torch.randn(2, 9, 32)
    with djinn.remote(address):
        y = attn(x)
        text = djinn.describe(y)
    torch.testing.assert_close(y.cpu(), attn(x), rtol=1e-5, atol=1e-5)
    assert "attention#0" in text and "softmax" in text


@pytest.mark.skipif(not hasattr(F, "scaled_dot_product_attention"),
                    reason="this torch has no F.scaled_dot_product_attention (2.0+)")
def test_fused_attention(address):
    q, k, v = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    with djinn.remote(address):
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(y.cpu(), F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_unsupported_runs_locally_warned_once(session):
    import djinn.lazytensor as lt
    lt._warned.discard("torch.cumsum")
    x = djinn.lazy(torch.arange(6.0).reshape(2, 3), remote=session)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = torch.cumsum(x, dim=1)
        b = torch.cumsum(x * 2, dim=0)
    hits = [m for m in w if issubclass(m.category, DjinnFallbackWarning)]
    assert len(hits) == 1 and "torch.cumsum runs locally" in str(hits[0].message)
    # Its result goes on remotely (uploaded as an input).
    c = (a + b).relu()
    assert isinstance(c, LazyTensor)
    ref = torch.arange(6.0).reshape(2, 3)
    torch.testing.assert_close(c.cpu(), (ref.cumsum(1) + (ref * 2).cumsum(0)).relu())


def test_type_promotion_is_torchs(session):
    i = djinn.lazy(torch.tensor([1, 2, 3]), remote=session)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DjinnFallbackWarning)
        f = i * 0.5                     # int64 * float -> float32, as torch
        g = i.float() / 2
    assert f.dtype == torch.float32
    torch.testing.assert_close(f.cpu(), torch.tensor([0.5, 1.0, 1.5]))
    torch.testing.assert_close(g.cpu(), torch.tensor([0.5, 1.0, 1.5]))
    assert (i + 2).dtype == torch.int64 and torch.equal((i + 2).cpu(), torch.tensor([3, 4, 5]))
    assert torch.equal((i / i).cpu(), torch.ones(3))   # true division, into float32


def test_shape_errors_are_torchs(session):
    a = djinn.lazy(torch.ones(3, 4), remote=session)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DjinnFallbackWarning)
        with pytest.raises(RuntimeError):
            a @ a


def test_numpy_and_indexing(session):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = djinn.lazy(arr, remote=session)
    y = x[1, :, 1:3] * 10
    z = x[..., None, -1]
    assert y.shape == (3, 2) and z.shape == (2, 3, 1)
    assert np.array_equal(y.numpy(), arr[1, :, 1:3] * 10)
    assert np.array_equal(z.numpy(), arr[..., None, -1])
    q, k = x.chunk(2, dim=-1)
    assert np.array_equal(k.numpy(), arr[..., 2:])
    assert torch.equal(torch.stack([q, k]).cpu(), torch.stack(torch.from_numpy(arr).chunk(2, -1)))


def test_in_place_keeps_torchs_meaning(session):
    x = djinn.lazy(torch.ones(2, 3), remote=session) * 1
    before = x * 2          # recorded before the write: keeps the old value
    x += 1
    x[:, 1:2] = torch.full((2, 1), 7.0)
    x.mul_(2)
    assert torch.equal(before.cpu(), torch.full((2, 3), 2.0))
    assert torch.equal(x.cpu(), torch.tensor([[4.0, 14.0, 4.0], [4.0, 14.0, 4.0]]))


def test_in_place_that_would_break_views_refuses(session):
    x = djinn.lazy(torch.zeros(4), remote=session) + 0
    v = x[1:3]
    with pytest.raises(djinn.NotSupportedError, match="through a view"):
        v.add_(1)
    x[0:1] = torch.ones(1)
    with pytest.raises(djinn.NotSupportedError, match="view of a lazy tensor read after"):
        v.cpu()                  # torch would show the write through v
    assert torch.equal(x.cpu(), torch.tensor([1.0, 0, 0, 0]))


def test_borrowed_input_changed_before_the_run_refuses(session):
    t = torch.ones(3)
    y = djinn.lazy(torch.zeros(3), remote=session) + t    # t's buffer is borrowed
    t.add_(1)
    with pytest.raises(djinn.DjinnError, match="modified in place before the graph ran"):
        y.cpu()


def test_parameters_cached_by_hash(address):
    torch.manual_seed(5)
    lin = nn.Linear(8, 8)
    djinn.lazy(lin, remote=address)
    x = torch.randn(2, 8)
    with djinn.remote(address) as s:
        lin(x).cpu()
        assert s.last["params_uploaded"] == 2
        lin(x).cpu()
        assert s.last["params_uploaded"] == 0 and s.last["params_reused"] == 2
        with torch.no_grad():
            lin.weight.mul_(2)          # a new version: hashed and sent again
        y = lin(x).cpu()
        assert s.last["params_uploaded"] == 1 and s.last["params_reused"] == 1
    with torch.no_grad():
        torch.testing.assert_close(y, lin(x))
