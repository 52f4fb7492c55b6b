# SPDX-License-Identifier: BSD-3-Clause
"""A small decoder-only transformer written as plain PyTorch (nothing of Djinn
in it), in the style of Meta's llama reference: a KV cache preallocated as
module buffers, written with `cache[:, :, pos:pos + L] = k` and read back with
`cache[:, :, :pos + L]`; unfused softmax attention (q @ k^T, scale, additive
causal mask, softmax, @ v) or F.scaled_dot_product_attention where torch has
it and fused=True; LayerNorm and a GELU (or SwiGLU) MLP; an output head, or the embedding's
weights tied (tied=True).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads, max_seq, fused=False):
        super().__init__()
        self.heads, self.hd, self.fused = heads, dim // heads, fused
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim)
        self.register_buffer("k_cache", torch.zeros(1, heads, max_seq, self.hd))
        self.register_buffer("v_cache", torch.zeros(1, heads, max_seq, self.hd))

    def forward(self, x, pos, mask):
        b, n, _ = x.shape
        q = self.wq(x).view(b, n, self.heads, self.hd).transpose(1, 2)
        k = self.wk(x).view(b, n, self.heads, self.hd).transpose(1, 2)
        v = self.wv(x).view(b, n, self.heads, self.hd).transpose(1, 2)
        self.k_cache[:b, :, pos:pos + n] = k
        self.v_cache[:b, :, pos:pos + n] = v
        keys = self.k_cache[:b, :, :pos + n]
        values = self.v_cache[:b, :, :pos + n]
        if self.fused:
            out = F.scaled_dot_product_attention(q, keys, values, is_causal=mask is not None)
        else:
            scores = q @ keys.transpose(-2, -1) / math.sqrt(self.hd)
            if mask is not None:
                scores = scores + mask
            out = scores.softmax(dim=-1) @ values
        return self.wo(out.transpose(1, 2).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, dim, hidden, swiglu=False):
        super().__init__()
        self.swiglu = swiglu
        self.up = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden) if swiglu else None
        self.act = nn.SiLU() if swiglu else nn.GELU()
        self.down = nn.Linear(hidden, dim)

    def forward(self, x):
        h = self.act(self.up(x))
        if self.swiglu:
            h = h * self.gate(x)
        return self.down(h)


class Block(nn.Module):
    def __init__(self, dim, heads, max_seq, swiglu, fused):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, max_seq, fused)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, 4 * dim, swiglu)

    def forward(self, x, pos, mask):
        x = x + self.attn(self.ln1(x), pos, mask)
        return x + self.mlp(self.ln2(x))


class TinyDecoder(nn.Module):
    def __init__(self, vocab=64, dim=32, heads=4, layers=2, max_seq=48, swiglu=False,
                 fused=False, tied=False):
        super().__init__()
        self.tied = tied
        self.tok = nn.Embedding(vocab, dim)
        self.head = None if tied else nn.Linear(dim, vocab, bias=False)
        self.pos = nn.Embedding(max_seq, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, max_seq, swiglu, fused)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens, pos):
        n = tokens.shape[1]
        x = self.tok(tokens) + self.pos(torch.arange(pos, pos + n))
        mask = None
        if n > 1:
            mask = torch.full((n, n), float("-inf")).triu(1)
            mask = torch.cat([torch.zeros(n, pos), mask], dim=1)
        for block in self.blocks:
            x = block(x, pos, mask)
        x = self.norm(x)
        return F.linear(x, self.tok.weight) if self.tied else self.head(x)


def generate(model, prompt, steps):
    """Greedy decoding: the prompt in one forward (prefill), then one token
    per forward (decode), each appended to the KV caches."""
    tokens = prompt.tolist()[0]
    logits = model(prompt, 0)
    nxt = logits[0, -1].argmax()
    out = []
    pos = prompt.shape[1]
    for _ in range(steps):
        t = nxt.item()
        out.append(t)
        logits = model(torch.tensor([[t]]), pos)
        nxt = logits[0, -1].argmax()
        pos += 1
    return tokens, out
