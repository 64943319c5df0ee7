"""The o projection's side of ``SPENSE_ATTN_OPERAND`` (:func:`spense.runtime.attention.operand_on`): in which form
a :class:`~spense.runtime.linear.SpenseLinear` at M tokens reads its input, so that
``spense::decode_attention_fused`` (or the plain ``spense::decode_attention``) writes that form itself (its ``form``
argument) and the kernel that would build it from the attention's output (one per layer and step) is gone; then the
layer's op on it.

The forms are those :meth:`SpenseLinear.forward` builds at a planned M (:meth:`SpenseLinear.plan`):

- ``FORM_PERM``: x_perm of x in bf16, passed as x itself (bf16 weights, M in the x_perm buckets);
- ``FORM_PERM | FORM_F16``: x_perm of x's f16 operand beside a placeholder x (e4m3 weights there);
- ``FORM_FRAG`` (``| FORM_F16`` for e4m3): x's fragments at M = 8 (one tile), no column gather, beside a
  placeholder x;
- ``FORM_F16`` alone: x's f16 operand in x's own layout, for an :class:`~spense.runtime.fp8.Fp8Linear` (the FP8
  dense model) whose kind at M is the weight-only kernel on it (``w8a16h``), and for a compacted e4m3
  SpenseLinear that runs the stream-K form on it at M (:meth:`SpenseLinear.wgsd_f16`), beside a placeholder x.

A placeholder x carries only M, K, dtype and device (:meth:`SpenseLinear._reads_operand_only`); where the op would
read x itself, or the layer is not a SpenseLinear, the form is 0 and the module runs as before."""

from __future__ import annotations

import torch

from spense.runtime.attn_forms import FORM_F16, FORM_FRAG, FORM_PERM
from spense.runtime.fp8 import Fp8Linear, run_kind
from spense.runtime.linear import SpenseLinear


def operand_form(layer, M: int, cuda: bool) -> int:
    """The ``form`` for ``decode_attention_fused`` or ``decode_attention`` feeding ``layer`` at ``M`` tokens (0: its
    plain output)."""
    if isinstance(layer, Fp8Linear):
        return FORM_F16 if cuda and layer.bias is None and layer.kind_for(M).startswith("w8a16h") else 0
    if not isinstance(layer, SpenseLinear) or layer.bias is not None or layer.in_features % 64:
        return 0
    if cuda and layer.wgsd_f16(M):  # the stream-K form on x's f16 operand (the op reads no other x)
        return FORM_F16
    perm, f16, only = layer.input_plan(M, cuda)  # what its forward() would build from the plain output
    f = FORM_F16 if f16 else 0
    if perm:  # bf16 x_perm is x itself; x_perm of the f16 operand only where x is not read besides
        return FORM_PERM | f if only or not f16 else 0
    return FORM_FRAG | f if only and M == 8 and layer._xperm is None else 0


def linear_on_operand(layer, y: torch.Tensor, M: int, form: int, dtype: torch.dtype) -> torch.Tensor:
    """``layer`` on the attention's output ``y`` written in ``form`` (:func:`operand_form`) for ``M`` tokens of
    ``dtype``: ``(M, out_features)``, the op the layer's ``forward`` would call on the plain output."""
    K = layer.in_features
    if isinstance(layer, Fp8Linear):  # Fp8Linear.forward: run_kind with x2's f16 operand made beforehand
        xh = y.reshape(M, K)
        return run_kind(layer.kind_for(M), xh, layer.weight, layer.scale, layer.out_dtype, kw=layer._sk,
                        xh=xh).to(dtype)
    if form == FORM_PERM:
        return torch.ops.spense.linear_apply(y.reshape(M, K), y.new_empty(0, dtype=torch.bfloat16), layer.handle)
    xf = y if form & 3 == FORM_FRAG else y.reshape(M, K)  # x_perm or the f16 operand alone: (M, K)
    return torch.ops.spense.linear_apply(y.new_empty((M, K), dtype=dtype), xf, layer.handle)
