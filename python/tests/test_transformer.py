# SPDX-License-Identifier: BSD-3-Clause
"""A small decoder-only transformer (tiny_decoder.py: plain PyTorch, llama
style) run remotely unchanged: its greedy decode loop gives the same tokens
as local torch, each token costs one round trip, the weights are graph
parameters uploaded once, the KV caches graph state appended in place on the
server, and the C annotator sees them so (persistent_weight,
stateful_kv_cache, phases prefill and decode)."""
import copy

import pytest
import torch

import djinn
from tiny_decoder import TinyDecoder, generate

PROMPT, STEPS = 6, 16


def reference(seed, **kw):
    torch.manual_seed(seed)
    model = TinyDecoder(**kw).eval()
    prompt = torch.randint(0, 64, (1, PROMPT))
    local = copy.deepcopy(model)
    with torch.no_grad():
        _, want = generate(local, prompt, STEPS)
    # A meaningful comparison: the tokens vary (and margins() below checks
    # that no step is a near tie a 1e-6 difference could flip).
    assert len(set(want)) >= 4, want
    return model, local, prompt, want


def margins(model, prompt, tokens):
    """Smallest gap between the best and second-best logit along the run."""
    m = copy.deepcopy(model)
    seq = torch.cat([prompt, torch.tensor([tokens[:-1]])], dim=1)
    with torch.no_grad():
        top = m(seq, 0)[0, PROMPT - 1:].topk(2, dim=-1).values
    return (top[:, 0] - top[:, 1]).min().item()


@pytest.mark.parametrize("seed,swiglu", [(0, False), (1, True)])
def test_decode_loop_matches_local_torch(address, seed, swiglu):
    model, local, prompt, want = reference(seed, swiglu=swiglu)
    assert margins(model, prompt, want) > 1e-3
    djinn.lazy(model, remote=address)
    with torch.no_grad(), djinn.remote(address) as s:
        f0, rt0 = s.fetches, s.round_trips
        _, got = generate(model, prompt, STEPS)
        # One fetch, one round trip per generated token (the first one is the
        # prefill's).
        assert s.fetches - f0 == STEPS and s.round_trips - rt0 == STEPS
    assert got == want
    # The caches on the server hold what local torch's hold.
    djinn.unlazy(model)
    for (name, mine), (_, theirs) in zip(model.named_buffers(), local.named_buffers()):
        assert not isinstance(mine, djinn.LazyTensor)
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5, msg=name)


def test_weights_are_parameters_and_caches_state(address):
    model, _, prompt, _ = reference(2)
    djinn.lazy(model, remote=address)
    with torch.no_grad(), djinn.remote(address) as s:
        logits = model(prompt, 0)
        prefill = djinn.describe(logits)
        nxt = logits[0, -1].argmax().item()
        st = s.last
        assert st["round_trips"] == 1 and st["states_created"] == 4
        # Every weight is a parameter (one an earlier test's model had, same
        # name and bytes, e.g. a LayerNorm's ones, is found there already).
        weights = st["params_uploaded"] + st["params_reused"]
        assert weights == sum(1 for _ in model.parameters())
        logits = model(torch.tensor([[nxt]]), PROMPT)
        decode = djinn.describe(logits)
        logits[0, -1].argmax().item()
        st = s.last
        # Decode: the weights found on the server, only the step's inputs sent.
        assert st["params_uploaded"] == 0 and st["params_reused"] == weights
        assert st["states_created"] == 0 and st["round_trips"] == 1
        assert st["bytes_up"] < 1024 and st["bytes_down"] < 1024
    assert "phase prefill" in prefill and "(cache created)" in prefill
    assert f"phase decode: query length 1; appends 1 position at {PROMPT} to 4 states" in decode
    lines = decode.splitlines()
    assert sum("persistent_weight" in ln for ln in lines) >= weights
    caches = [ln for ln in lines if ln.split()[1:2] == ["state"]]
    assert len(caches) == 4 and all("stateful_kv_cache" in ln for ln in caches)
    assert sum("kv_append->" in ln for ln in lines) == 4
    assert sum("attention#" in ln for ln in lines) >= 2 and "mlp#" in decode
    djinn.unlazy(model)


@pytest.mark.skipif(not hasattr(torch.nn.functional, "scaled_dot_product_attention"),
                    reason="this torch has no F.scaled_dot_product_attention (2.0+)")
def test_fused_attention_decoder(address):
    model, local, prompt, want = reference(3, fused=True)
    djinn.lazy(model, remote=address)
    with torch.no_grad(), djinn.remote(address):
        _, got = generate(model, prompt, STEPS)
    assert got == want
