"""GPU checks of the engine (marked ``gpu``): compacted Spense layers match the reference backend at
decode and prefill sizes, hold no dense copy, and a compiled decode step gives the eager tokens."""

import pytest
import torch

from spense.engine.generate import Engine
from spense.engine.load import load
from spense.engine.measure import _greedy_check, weight_bytes
from spense.engine.sparsify import sparsify
from spense.runtime.linear import SpenseLinear

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("M", [1, 7, 16, 64, 65, 300])
def test_compact_layer_matches_reference(M):
    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    sparsify(m, 0.25, block=64)
    lin = m.model.layers[0].mlp.down_proj
    assert isinstance(lin, SpenseLinear) and lin._kernel is not None and lin.values.numel() == 0
    x = torch.randn(M, lin.in_features, device="cuda", dtype=torch.bfloat16)
    w = lin.dense_weight(torch.float32)
    ref = x.float() @ w.T
    y = lin(x).float()
    assert (y - ref).norm() / ref.norm() < 1e-2


def test_spense_bytes_below_dense_and_compiled_tokens():
    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    sparsify(m, 0.25, block=64)
    _, lin, dense = weight_bytes(m)
    assert lin / dense < 0.75
    prompts = [[1, 2, 3, 4, 5]]
    comp = Engine(m, 1, 256, compile=True).generate(prompts, 8).tokens
    r = _greedy_check(m, prompts[0], comp[0], 8, True)  # against the eager reference backend
    assert r["tokens_identical"] or r["tie_ulps"] <= 4, r


@pytest.mark.parametrize("M", [1, 8, 300])
def test_fused_projection_compacted_matches_reference(M):
    """A tied q/k/v group runs as one compacted SpenseLinear; its members hold no weight any more."""
    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    sparsify(m, 0.25, block=64)
    att = m.model.layers[0].self_attn
    f = att.qkv_fused
    assert f is not None and f._kernel is not None and f.values.numel() == 0
    assert all(p._fused and p.values.numel() == 0 for p in (att.q_proj, att.k_proj, att.v_proj))
    x = torch.randn(M, f.in_features, device="cuda", dtype=torch.bfloat16)
    ref = x.float() @ f.dense_weight(torch.float32).T
    assert (f(x).float() - ref).norm() / ref.norm() < 1e-2


@pytest.mark.parametrize("attention", ["split", "matmul"])
def test_compiled_tokens_with_other_attention_paths(attention):
    """The compiled step with the split-KV decode kernel or bf16-GEMM attention: greedy tokens equal the
    eager reference, or differ first at a numeric tie."""
    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    sparsify(m, 0.25, block=64)
    prompts = [[1, 2, 3, 4, 5]]
    comp = Engine(m, 1, 256, compile=True, attention=attention).generate(prompts, 8).tokens
    r = _greedy_check(m, prompts[0], comp[0], 8, True)
    assert r["tokens_identical"] or r["tie_ulps"] <= 4, r


def test_fp8_dense_fused_compiled_tokens():
    """The FP8 dense baseline with fused q/k/v and gate/up, compiled: tokens equal the eager engine's,
    or differ first at a numeric tie."""
    from spense.engine.sparsify import fp8_dense

    m = fp8_dense(load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model, tune_ms=(1,))
    eng = Engine(m, 1, 256, compile=True)
    assert m.model.layers[0].self_attn.qkv_fused is not None
    comp = eng.generate([[1, 2, 3, 4, 5]], 8).tokens
    r = _greedy_check(m, [1, 2, 3, 4, 5], comp[0], 8, False)
    assert r["tokens_identical"] or r["tie_ulps"] <= 4, r
