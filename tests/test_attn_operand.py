"""The o projection's side of SPENSE_ATTN_OPERAND (spense.runtime.attn_operand) on CPU: which form a layer names,
and the layer's op on the attention's output written in the bf16 x_perm form (the GPU forms: test_engine_gpu.py)."""

import torch

from spense.format import SpenseLayout, pack
from spense.runtime import SpenseLinear
from spense.runtime.attention import FORM_PERM, as_form
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


def test_fp8_dense_layer_names_the_f16_operand_where_its_kind_reads_it(monkeypatch):
    """The FP8 dense model's layer (Fp8Linear): x's f16 operand (FORM_F16) where its kind at M is the weight-only
    kernel on it (w8a16h), on CUDA and without a bias; else 0"""
    from spense.runtime.attention import FORM_F16
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
