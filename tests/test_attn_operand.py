"""The o projection's side of SPENSE_ATTN_OPERAND (spense.runtime.attn_operand) on CPU: which form a layer names,
and the layer's op on the attention's output written in the bf16 x_perm form (the GPU forms: test_engine_gpu.py;
the stream-K form's f16 operand: the last test here)."""

from types import SimpleNamespace

import pytest
import torch

from spense.format import SpenseLayout, pack
from spense.runtime import SpenseLinear
from spense.runtime.attn_forms import FORM_PERM, as_form
from spense.runtime.attn_operand import linear_on_operand, operand_form
from test_runtime import pruned_24


def _layer(fp8=False):
    gen = torch.Generator().manual_seed(2)
    lay = SpenseLayout((96, 128), "cols", torch.arange(64, 128), block=64)
    return SpenseLinear(pack(pruned_24(lay, gen), lay, fp8=fp8), backend="reference").to(torch.bfloat16)


def test_forms_named_only_where_the_layer_reads_an_operand():
    assert operand_form(torch.nn.Linear(128, 96), 1, True) == 0  # not a Spense layer
    lin = _layer()
    assert operand_form(lin, 1, False) == 0  # not planned: forward() passes x as is
    lin._perm_buckets = {1}
    assert operand_form(lin, 1, False) == FORM_PERM  # bf16 x_perm: passed as x itself, also on CPU
    assert operand_form(lin, 8, False) == 0
    f8 = _layer(fp8=True)
    f8._perm_buckets, f8._frag_buckets = {1}, {8}
    # e4m3: the op would read x itself for its f16 operand (reads_operand_only: CUDA and the mma.sp kernel only)
    assert operand_form(f8, 1, False) == 0 and operand_form(f8, 8, False) == 0


def test_forms_follow_the_layers_input_plan_on_cuda():
    """The CUDA side of the plan, decided in Python alone: an e4m3 layer on the mma.sp kernel reads nothing of x
    but its shape beside x_perm of its f16 operand (M = 1) and its fragments (M = 8), so the attention writes those;
    at M = 16 (no planned operand) and for a layer with a column gather (x_perm layout) at M = 8 it writes none."""
    from spense.runtime.attn_forms import FORM_F16, FORM_FRAG

    f8 = _layer(fp8=True)
    f8.backend, f8._perm_buckets, f8._frag_buckets = "mmasp", {1}, {8}
    assert f8.input_plan(1, True) == (True, True, True) and operand_form(f8, 1, True) == FORM_PERM | FORM_F16
    assert f8.input_plan(8, True) == (False, True, True) and operand_form(f8, 8, True) == FORM_FRAG | FORM_F16
    assert f8.input_plan(16, True)[2] is False and operand_form(f8, 16, True) == 0
    assert f8.input_plan(1, False) == (True, True, False)  # on CPU the op reads x itself
    f8._xperm = torch.arange(128)
    assert operand_form(f8, 8, True) == 0
    bf = _layer()
    bf.backend, bf._perm_buckets = "mmasp", {1}
    assert bf.input_plan(1, True) == (True, False, False) and operand_form(bf, 1, True) == FORM_PERM


def test_fp8_dense_layer_names_the_f16_operand_where_its_kind_reads_it(monkeypatch):
    """The FP8 dense model's layer (Fp8Linear): x's f16 operand (FORM_F16) where its kind at M is the weight-only
    kernel on it (w8a16h), on CUDA and without a bias; else 0"""
    from spense.runtime.attn_forms import FORM_F16
    from spense.runtime.fp8 import Fp8Linear

    w = torch.randn(96, 128).to(torch.float8_e4m3fn)
    lin = Fp8Linear(w, torch.rand(96) + 0.5)
    assert operand_form(lin, 1, False) == 0
    monkeypatch.setattr(lin, "kind_for", lambda M: "w8a16h:32x256x1x4" if M == 1 else "nt")
    assert operand_form(lin, 1, True) == FORM_F16 and operand_form(lin, 8, True) == 0
    lin.bias = torch.nn.Parameter(torch.zeros(96))
    assert operand_form(lin, 1, True) == 0


def test_the_op_on_the_x_perm_form_is_the_module_on_the_plain_output():
    lin = _layer()
    lin._perm_buckets = {1}
    y = torch.randn(1, 2, 2, 32, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    want = lin(y.reshape(1, 128))
    got = linear_on_operand(lin, as_form(y, FORM_PERM), 1, FORM_PERM, torch.bfloat16)
    assert torch.equal(got, want)


def test_engine_decodes_the_same_tokens_with_the_attention_writing_the_operand(monkeypatch):
    """The decode module's path under SPENSE_ATTN_OPERAND=1 (eager, CPU): Spense o projections planned for x_perm at
    M = 1 take the attention's output in that order (the op's CPU path), and greedy tokens equal those without it"""
    from spense.engine.generate import Engine
    from spense.engine.load import load
    from spense.engine.sparsify import sparsify
    from spense.runtime import attention

    import spense.engine.model as model_mod

    calls = []
    real = model_mod.linear_on_operand
    monkeypatch.setattr(model_mod, "linear_on_operand", lambda *a: calls.append(a[3]) or real(*a))
    m = load("qwen3-tiny", torch.device("cpu"), torch.bfloat16).model
    sparsify(m, 0.25, block=64)
    out = {}
    for v in ("0", "1"):
        monkeypatch.setenv("SPENSE_ATTN_OPERAND", v)
        attention.operand_on.cache_clear()
        eng = Engine(m, 1, 64, compile=False, attention="split")
        for blk in m.model.layers:  # plan() runs on CUDA only: the x_perm bucket as it sets it there
            blk.self_attn.o_proj._perm_buckets = {1}
        assert all(b.self_attn.operand == (v == "1") for b in m.model.layers)
        out[v] = eng.generate([[1, 2, 3, 4, 5]], 6).tokens
    attention.operand_on.cache_clear()
    assert out["0"] == out["1"]
    assert calls and set(calls) == {FORM_PERM}  # every decode step's o projections, under "1" only


def test_stream_k_f16_layer_names_the_f16_operand_and_its_op_reads_no_other_x(monkeypatch):
    """A compacted e4m3 layer on the stream-K form with x in f16 at M (SpenseLinear.wgsd_f16) names FORM_F16 on CUDA
    (not on CPU, not with a bias), and the op on the attention's output gets a placeholder x and the operand as
    (M, K). (Routing only, on the CPU: the layer's serving rule and the op are stand-ins.)"""
    from spense.runtime.attn_forms import FORM_F16, as_form

    lin = _layer(fp8=True)
    monkeypatch.setattr(lin, "wgsd_f16", lambda M: M == 32)
    assert operand_form(lin, 32, True) == FORM_F16 and operand_form(lin, 32, False) == 0
    assert operand_form(lin, 16, True) == 0
    seen = []
    monkeypatch.setattr(torch.ops, "spense", SimpleNamespace(
        linear_apply=lambda x, xf, h: seen.append((x.shape, x.dtype, xf.shape, xf.dtype)) or x.new_zeros(32, 96)))
    y = torch.randn(32, 2, 2, 32).to(torch.bfloat16)
    linear_on_operand(lin, as_form(y, FORM_F16), 32, FORM_F16, torch.bfloat16)
    assert seen == [((32, 128), torch.bfloat16, (32, 128), torch.float16)]
    lin.bias = torch.nn.Parameter(torch.zeros(96))
    assert operand_form(lin, 32, True) == 0


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)),
                    reason="needs an sm_90 GPU")
def test_gpu_stream_k_layer_on_the_attentions_f16_operand(monkeypatch):
    """By default (SPENSE_WGSD_F16_MAX_M=32) a compacted FP8 layer at M = 17-32 runs the stream-K form on x's f16
    operand: it names FORM_F16, and its op on the attention's output written in that form is the bits of the
    module on the plain output (the same kernel on the same operand); at M = 33 it names none."""
    from spense.format import unpack
    from spense.runtime import wgsp
    from spense.runtime.attn_forms import FORM_F16, as_form
    from test_wgsp import prefill_weight

    monkeypatch.setenv("SPENSE_WGSD_F16_MAX_M", "32")
    wgsp.wgsd_f16_max_m.cache_clear()
    try:
        gen = torch.Generator().manual_seed(21)
        w, lay = prefill_weight("blocks", 1024, 4096, gen)
        p = pack(w.to("cuda", torch.bfloat16), lay, fp8=True)
        lin = SpenseLinear(p, backend="auto").compact()
        wref = unpack(p, dtype=torch.float32).double()
        for M in (17, 32):
            assert operand_form(lin, M, True) == FORM_F16, M
            y = torch.randn(M, 8, 4, 128, generator=gen).to("cuda", torch.bfloat16)
            want = lin(y.reshape(M, -1))
            got = linear_on_operand(lin, as_form(y, FORM_F16), M, FORM_F16, torch.bfloat16)
            assert torch.equal(got, want), M
            ref = y.reshape(M, -1).double() @ wref.T
            assert ((got.double() - ref).norm() / ref.norm()).item() <= 1e-2, M
        assert operand_form(lin, 33, True) == 0
    finally:
        wgsp.wgsd_f16_max_m.cache_clear()
