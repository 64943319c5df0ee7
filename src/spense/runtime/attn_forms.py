"""The decode attention's output written as the next linear's operand (``form`` of
:func:`spense.runtime.attention.decode_attention_fused`, ``SPENSE_ATTN_OPERAND``): the forms, their shapes and dtypes,
the refusals, and the tensor ops the kernel's store replaces (:func:`as_form`: the CPU path and the tests'
reference)."""

from __future__ import annotations

import torch

#: ``form`` of :func:`~spense.runtime.attention.decode_attention_fused`: ``FORM_PERM`` (1) ``y`` in
#: :func:`~spense.runtime.xops.x_perm` order, ``FORM_FRAG`` (2) as :func:`~spense.runtime.xops.x_fragments` at one tile
#: of 8 tokens (B = 8), either plus ``FORM_F16`` (4): of x's f16 operand (:func:`~spense.runtime.xops.f16_operand`)
#: instead of bf16; ``FORM_F16`` alone: the f16 operand in y's own layout (the FP8 dense model's weight-only kernel on
#: it)
FORM_PERM, FORM_FRAG, FORM_F16 = 1, 2, 4


def check_form(form: int, B: int, K: int, dtype: torch.dtype = torch.bfloat16) -> None:
    """Refuse a ``form`` that the kernels do not write: an unknown one, one for a ``y`` not in bf16 (the operands
    are made from bf16 x), a row of K not a multiple of 64 (the operands' 32-column chunks, in pairs), fragments
    for other than 8 tokens (one tile, no padding to zero)."""
    if form not in (0, 1, 2, 4, 5, 6):
        raise ValueError(f"decode attention: unknown output form {form}")
    if form and dtype != torch.bfloat16:
        raise ValueError(f"decode attention: output form {form} is made from bf16 y, got {dtype}")
    if form & 3 and K % 64:
        raise ValueError(f"decode attention: output form {form} needs rows of a multiple of 64 values, got {K}")
    if form & 3 == FORM_FRAG and B != 8:
        raise ValueError(f"decode attention: fragments (form {form}) are written for 8 tokens, got {B}")


def form_shape(form: int, shape: tuple) -> tuple:
    """The output's shape: ``(B, H, G, D)``, or :func:`~spense.runtime.xops.x_fragments`'s ``(K / 32, 1, 8, 4, 4,
    2)``."""
    if form & 3 != FORM_FRAG:
        return shape
    K = shape[1] * shape[2] * shape[3]
    return (K // 32, 1, 8, 4, 4, 2)


def form_dtype(form: int, dtype: torch.dtype) -> torch.dtype:
    return torch.float16 if form & FORM_F16 else dtype


def as_form(y: torch.Tensor, form: int) -> torch.Tensor:
    """``y`` ``(B, H, G, D)`` in ``form`` by the tensor ops the kernel's store replaces (the CPU path, and the
    tests' reference)."""
    from spense.runtime.xops import f16_operand, x_fragments, x_perm

    if form == 0:
        return y
    B = y.shape[0]
    x2 = y.reshape(B, -1).to(torch.bfloat16)
    x2 = f16_operand(x2) if form & FORM_F16 else x2
    if form & 3 == FORM_PERM:
        return x_perm(x2).view(y.shape)
    if form & 3 == 0:
        return x2.view(y.shape)
    return x_fragments(x2)
