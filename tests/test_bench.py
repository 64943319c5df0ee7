"""End-to-end benchmark harness on CPU: tiny random models, eager timing (no CUDA graphs)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from spense.bench import (
    BUILTIN_CONFIGS,
    classify_kernel,
    magnitude_spense,
    parse_model_spec,
    qwen3_config,
    run_bench,
)
from spense.errors import InputError
from spense.runtime.fp8 import Fp8Linear, quantize_rows

REQUIRED = {"model", "dtype", "batch", "dense_ratio", "prefill_ms", "decode_tok_s", "speedup_vs_dense",
            "device", "commit", "variant", "token_ms_p50", "token_ms_p99", "weight_bytes", "cuda_graph"}


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def test_bench_cpu_rows_and_tokens(tiny_llama_dir, tmp_path):
    rows = _quiet(run_bench, str(tiny_llama_dir), dtypes=["fp32"], batches=[1, 2], prompt_len=8, gen=5,
                  dense_ratios=[0.0, 0.25], backend="auto", out=tmp_path, block=16, device="cpu",
                  check_tokens=5, profile=False, prefill_reps=1, progress=False, name="t")
    assert len(rows) == 3 * 2  # (dense, 2:4, spense 0.25) x 2 batch sizes
    for r in rows:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert r["decode_tok_s"] > 0 and r["prefill_ms"] > 0
        assert r["cuda_graph"] is False  # CPU: eager fallback
    assert {(r["variant"], r["dense_ratio"]) for r in rows} == {("dense", 1.0), ("spense", 0.0), ("spense", 0.25)}
    dense = [r for r in rows if r["variant"] == "dense"]
    assert all(r["speedup_vs_dense"] == pytest.approx(1.0) for r in dense)
    # greedy tokens: static-cache harness == no-cache full recompute (dense); fast == reference (spense)
    checked = [r for r in rows if r.get("tokens_checked")]
    assert {r["variant"] for r in checked} == {"dense", "spense"}
    assert all(r["tokens_identical"] for r in checked), [(r["variant"], r["first_divergence"]) for r in checked]
    # the Spense variants hold fewer weight bytes in the block linears than dense
    lin = {(r["variant"], r["dense_ratio"]): r["linear_weight_bytes"] for r in rows}
    assert lin[("spense", 0.0)] < lin[("spense", 0.25)] < lin[("dense", 1.0)]
    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data) == 6 and (tmp_path / "t.md").read_text().startswith("# End-to-end")


def test_bench_cpu_fp8_builtin_shape(tmp_path):
    rows = _quiet(run_bench, "qwen3-tiny", dtypes=["bf16", "fp8"], batches=[1], prompt_len=6, gen=3,
                  dense_ratios=[0.25], block=16, device="cpu", check_tokens=0, profile=False,
                  prefill_reps=1, progress=False)
    assert [(r["dtype"], r["variant"]) for r in rows] == [("bf16", "dense"), ("bf16", "spense"),
                                                          ("fp8", "dense"), ("fp8", "spense")]
    w = {(r["dtype"], r["variant"]): r["linear_weight_bytes"] for r in rows}
    assert w[("fp8", "dense")] < w[("bf16", "dense")]  # e4m3 weights: half the bytes (+ scales)
    assert w[("fp8", "spense")] < w[("bf16", "spense")]
    assert rows[0]["model"] == "qwen3-tiny"


def test_fp8_linear_matches_float():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48, bias=True)
    x = torch.randn(5, 64)
    f = Fp8Linear.from_linear(lin, out_dtype=torch.float32)
    y, ref = f(x), lin(x)
    assert torch.linalg.norm(y - ref) / torch.linalg.norm(ref) < 0.05
    q, s = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (5, 1)
    assert torch.allclose(q.float().abs().amax(1), torch.full((5,), 448.0))


def test_magnitude_spense_layout():
    torch.manual_seed(0)
    w = torch.randn(64, 128)
    for axis in ("cols", "rows"):
        wp, lay = magnitude_spense(w, 0.25, axis=axis, block=16)
        lay.check_weight(wp)
        assert lay.n_dense == (32 if axis == "cols" else 16) and lay.axis == axis
        s, d = lay.split(wp)
        assert torch.equal(d, lay.split(w)[1])  # dense region untouched
        assert (s != 0).float().mean() == pytest.approx(0.5)


def test_model_specs():
    assert parse_model_spec("qwen3-8b") == ("qwen3-8b", None)
    assert parse_model_spec("qwen3-32b[:16]") == ("qwen3-32b", 16)
    assert parse_model_spec("qwen3-32b[:16 layers]") == ("qwen3-32b", 16)
    assert parse_model_spec("llama-foo") is None
    c = qwen3_config("qwen3-8b")
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
            c.num_key_value_heads, c.head_dim, c.vocab_size, c.tie_word_embeddings) == \
        (4096, 12288, 36, 32, 8, 128, 151936, False)
    assert qwen3_config("qwen3-32b", 16).num_hidden_layers == 16
    with pytest.raises(InputError):
        qwen3_config("qwen3-8b", 99)
    assert set(BUILTIN_CONFIGS) >= {"qwen3-8b", "qwen3-32b"}


def test_bad_inputs():
    with pytest.raises(InputError):
        run_bench("no/such/dir", device="cpu", progress=False)
    with pytest.raises(InputError):
        run_bench("qwen3-tiny", dtypes=["int4"], device="cpu", progress=False)


@pytest.mark.parametrize("name,cls", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32", "gemm_dense"),
    ("nvjet_hsh_64x8_64x16_2x1_v_bz_splitK_TNT", "gemm_dense"),
    ("spense_decode_kernel", "sparse_kernel"),
    ("void spense_mmasp_kernel<2, 8>(...)", "sparse_kernel"),
    ("fmha_cutlassF_bf16_aligned_64x64_rf_sm80", "attention"),
    ("_act_quant_rows", "act_quant"),
    ("void at::native::vectorized_elementwise_kernel<4>", "other"),
])
def test_classify_kernel(name, cls):
    assert classify_kernel(name) == cls


def test_gqa_attention_and_rmsnorm_match_transformers():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from spense.bench_ops import gqa_sdpa_attention, rmsnorm

    torch.manual_seed(0)
    mod = torch.nn.Module()
    mod.num_key_value_groups, mod.is_causal = 4, True
    q = torch.randn(2, 8, 1, 16)
    k, v = torch.randn(2, 2, 10, 16), torch.randn(2, 2, 10, 16)
    mask = torch.zeros(2, 1, 1, 10, dtype=torch.bool)
    mask[:, :, :, :7] = True  # static cache: only the first 7 slots are filled
    a, _ = gqa_sdpa_attention(mod, q, k, v, mask, scaling=0.25)
    b, _ = sdpa_attention_forward(mod, q, k, v, mask, scaling=0.25)
    assert torch.allclose(a, b, atol=1e-5)
    x, w = torch.randn(3, 5, 32), torch.randn(32)
    h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.allclose(rmsnorm(x, w, 1e-6), w * h, atol=1e-6)
