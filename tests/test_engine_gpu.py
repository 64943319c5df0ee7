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


@pytest.mark.parametrize("spense", [False, True])
def test_compiled_step_in_a_plain_graph_same_tokens_as_the_trees(spense):
    """``graph="plain"``: the compiled steps captured in plain CUDA graphs of one pool (a prefill and two
    attention-length buckets) give the tokens of Inductor's graph trees, with a compiled prefill or an eager one."""
    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    if spense:
        sparsify(m, 0.25, block=64)
    prompts = [[1, 2, 3, 4, 5], [7, 8, 9]]
    got = {}
    for kind in ("tree", "plain"):
        eng = Engine(m, 2, 256, compile=True, graph=kind)
        assert eng.graph == kind and eng.graphs == (kind == "plain")
        got[kind] = eng.generate(prompts, 140).tokens  # past the 128-slot attention bucket
    assert len(eng._captured) == 3  # one prefill, two decode buckets
    assert got["plain"] == got["tree"]
    eager_prefill = {kind: Engine(m, 2, 256, compile=True, compile_prefill=False, graph=kind) for kind in got}
    assert eager_prefill["plain"].generate(prompts, 4).tokens == eager_prefill["tree"].generate(prompts, 4).tokens
    # an eager prefill is not graphed beside a compiled step
    assert [k[0] for k in eager_prefill["plain"]._captured] == ["decode"]


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


@pytest.mark.parametrize("fp8", [False, True])
def test_o_projection_on_the_attention_operand_forms(fp8):
    """SPENSE_ATTN_OPERAND's layer side: a planned compacted o projection names a form at M = 1 (x_perm) and 8
    (fragments), and the op on the attention's output written in that form (``as_form``, whose bits the merge
    kernel's stores give: tests/test_attention.py) is the bits of the module on the plain output."""
    from spense.runtime.attn_forms import FORM_F16, FORM_FRAG, FORM_PERM, as_form
    from spense.runtime.attn_operand import linear_on_operand, operand_form

    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    sparsify(m, 0.25, block=64, fp8=fp8)
    att = m.model.layers[0].self_attn
    lin = att.o_proj.plan((1, 8))
    assert isinstance(lin, SpenseLinear) and lin._kernel is not None
    for M, kind in ((1, FORM_PERM), (8, FORM_FRAG)):
        form = operand_form(lin, M, True)
        assert form == kind | (FORM_F16 if fp8 else 0), (M, form)
        y = torch.randn(M, att.n_kv, att.n_head // att.n_kv, att.hd, device="cuda").to(torch.bfloat16)
        want = lin(y.reshape(M, -1))
        got = linear_on_operand(lin, as_form(y, form), M, form, torch.bfloat16)
        assert torch.equal(got, want), (M, form)


@pytest.mark.parametrize("kind", ["spense", "spense-fp8", "dense-fp8"])
def test_compiled_tokens_with_the_attention_writing_the_operand(kind, monkeypatch):
    """SPENSE_ATTN_OPERAND=1: the compiled decode steps at B = 1 and 8 give the same tokens as without it (Spense
    BF16 and FP8, and the FP8 dense model, whose o projection takes x's f16 operand)."""
    from spense.engine.sparsify import fp8_dense
    from spense.runtime import attention

    m = load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model
    if kind == "dense-fp8":
        m = fp8_dense(m, tune_ms=(1, 8))
    else:
        sparsify(m, 0.25, block=64, fp8=kind == "spense-fp8")
    prompts = [[1 + i, 2, 3, 4, 5] for i in range(8)]
    out = {}
    for v in ("0", "1"):
        monkeypatch.setenv("SPENSE_ATTN_OPERAND", v)
        attention.operand_on.cache_clear()
        out[v] = [Engine(m, b, 256, compile=True).generate(prompts[:b], 8).tokens for b in (1, 8)]
    attention.operand_on.cache_clear()
    assert out["0"] == out["1"]


def test_fp8_dense_o_projection_on_the_f16_operand():
    """The FP8 dense model's o projection on the attention's output written as x's f16 operand (FORM_F16, where its
    kind at M reads that operand) gives the module's output on the plain one."""
    from spense.engine.sparsify import fp8_dense
    from spense.runtime.attn_forms import as_form
    from spense.runtime.attn_operand import linear_on_operand, operand_form

    m = fp8_dense(load("qwen3-tiny", torch.device("cuda"), torch.bfloat16).model, tune_ms=(1, 8))
    att = m.model.layers[0].self_attn
    seen = 0
    for M in (1, 8):
        form = operand_form(att.o_proj, M, True)
        if not form:
            continue
        y = torch.randn(M, att.n_kv, att.n_head // att.n_kv, att.hd, device="cuda").to(torch.bfloat16)
        got = linear_on_operand(att.o_proj, as_form(y, form), M, form, torch.bfloat16)
        # (a split-K kind may add its parts in another order from call to call: the layout is what is checked)
        torch.testing.assert_close(got, att.o_proj(y.reshape(M, -1)), rtol=1e-2, atol=1e-3)
        seen += 1
    assert seen or all(not att.o_proj.kind_for(M).startswith("w8a16h") for M in (1, 8))


def _tiny_gemma3(path, head_dim: int):
    """A tiny Gemma 3 saved at ``path`` and loaded on the GPU in bf16: sliding layers (window 16) around a global
    one, random norm weights (so that (1 + w) counts)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=head_dim,
                           query_pre_attn_scalar=head_dim, max_position_embeddings=1024, sliding_window=16,
                           layer_types=["sliding_attention", "full_attention", "sliding_attention"])
    hf = Gemma3ForCausalLM(cfg)
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 1:
                p.normal_(0.0, 0.3)
    hf.save_pretrained(path)
    return load(str(path), torch.device("cuda"), torch.bfloat16).model


@pytest.mark.parametrize("head_dim,spense", [(32, True), (256, True), (256, False)])
def test_gemma3_compiled_tokens(tmp_path, head_dim, spense, monkeypatch):
    """A tiny Gemma 3 (sliding layers past their window, their own RoPE base; random norm weights, so that (1 + w)
    counts) compiled on CUDA graphs, dense or with compacted Spense layers: greedy tokens equal the eager reference,
    or differ first at a numeric tie; its decode steps go through the split-KV op (at head dim 256, Gemma-3-270M's:
    the kernel itself at that width is checked in tests/test_attention.py)."""
    import spense.engine.model as model_mod

    m = _tiny_gemma3(tmp_path / "g", head_dim)
    if spense:
        sparsify(m, 0.25, block=64)
    calls = []
    real = model_mod.decode_attention
    monkeypatch.setattr(model_mod, "decode_attention", lambda q, k, *a: calls.append(k.shape[2]) or real(q, k, *a))
    prompts = [list(range(1, 300))]  # decode steps in the bucket of 384 slots: sliding layers read from 128 on
    eng = Engine(m, 1, 512, compile=True)
    assert eng.attention == "split"
    comp = eng.generate(prompts, 8).tokens
    assert 256 in calls and 384 in calls  # traced into the compiled decode step: the window's slots, and all
    r = _greedy_check(m, prompts[0], comp[0], 8, spense)
    assert r["tokens_identical"] or r["tie_ulps"] <= 4, r


def test_gemma3_attention_writes_the_operand(tmp_path, monkeypatch):
    """Gemma's decode steps take the plain split-KV op (not the fused one), and with SPENSE_ATTN_OPERAND (the default)
    its merge kernel writes the o projection's operand too (a form != 0 at B = 1 and 8, where the compacted layer
    reads one): the compiled steps give the same tokens as with the switch off."""
    import spense.engine.model as model_mod
    from spense.runtime import attention

    m = _tiny_gemma3(tmp_path / "g", 256)
    sparsify(m, 0.25, block=64)
    forms = []
    real = model_mod.decode_attention
    monkeypatch.setattr(model_mod, "decode_attention", lambda *a: forms.append(a[4]) or real(*a))
    prompts = [list(range(1 + i, 40 + i)) for i in range(8)]
    out = {}
    for v in ("0", "1"):
        monkeypatch.setenv("SPENSE_ATTN_OPERAND", v)
        attention.operand_on.cache_clear()
        forms.clear()
        out[v] = [Engine(m, b, 256, compile=True).generate(prompts[:b], 8).tokens for b in (1, 8)]
        assert any(forms) == (v == "1"), (v, forms)
    attention.operand_on.cache_clear()
    assert out["0"] == out["1"]


@pytest.mark.parametrize("spense", [False, True])
def test_mistral_sliding_fused_compiled_tokens(tmp_path, spense, monkeypatch):
    """A tiny Mistral (every layer sliding, window 16) compiled on CUDA graphs, dense or with compacted Spense layers:
    its decode steps take the fused split-KV op on the caches from the window's first slot on (a view at slot 128 in
    the bucket of 384), and the greedy tokens equal the eager reference's (its attention the two GEMMs, not the op),
    or differ first at a numeric tie."""
    from transformers import MistralConfig, MistralForCausalLM

    import spense.engine.model as model_mod

    torch.manual_seed(0)
    cfg = MistralConfig(vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, sliding_window=16)
    MistralForCausalLM(cfg).save_pretrained(tmp_path / "m")
    m = load(str(tmp_path / "m"), torch.device("cuda"), torch.bfloat16).model
    if spense:
        sparsify(m, 0.25, block=64)
    slots = []  # the slots of the caches the op gets (a storage offset is not traceable: the view's length)
    real = model_mod.decode_attention_fused
    monkeypatch.setattr(model_mod, "decode_attention_fused", lambda q, k, v, qw, kw, cos, sin, kc, *a:
                        slots.append(kc.shape[2]) or real(q, k, v, qw, kw, cos, sin, kc, *a))
    prompts = [list(range(1, 300))]
    eng = Engine(m, 1, 512, compile=True)
    assert eng.attention == "split" and m.model.layers[0].self_attn.fused
    comp = eng.generate(prompts, 8).tokens
    assert 512 - 128 in slots  # traced into the compiled decode step: the caches from slot 128 on
    monkeypatch.setenv("SPENSE_ATTENTION", "matmul")  # the reference apart from the fused op: two GEMMs, eager
    r = _greedy_check(m, prompts[0], comp[0], 8, spense)
    assert r["tokens_identical"] or r["tie_ulps"] <= 4, r


def test_measure_keeps_the_setup_peak_apart_from_the_run(monkeypatch):
    """A row's ``peak_mem_bytes`` is the run's (the weights and cache held, prefill, the first steps' compile and
    capture, steps); what making the engine took for a moment (here 2 GiB freed again inside the kernel choices, as a
    choice measured on first use takes) is ``setup_peak_bytes``.  2 GiB stands above the run's own transients: the
    tiny dense model's run peaked at 674 MiB on an H100 (results wgsd_2026-12-07 er), where 256 MiB could not tell
    the two apart."""
    from spense.engine import generate, measure

    real = generate.plan_decode

    def plan(*a, **k):
        tmp = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
        del tmp
        return real(*a, **k)

    monkeypatch.setattr(generate, "plan_decode", plan)
    (r,) = measure.run("qwen3-tiny", batches=(1,), variants=["dense"], device="cuda", prompt_len=16, gen=6,
                       check_tokens=0, copy_bw=1e12, log=lambda m: None)
    assert r["peak_mem_bytes"] >= r["weight_bytes"]
    assert r["setup_peak_bytes"] >= r["weight_bytes"] + (2 << 30) > r["peak_mem_bytes"]
    assert r["weight_bytes"] <= r["held_mem_bytes"] <= r["peak_mem_bytes"]
