"""Projections that read the same input (q/k/v, gate/up) as one Spense layer, or one FP8 layer.

:func:`fuse_rows`: ``W = cat(W_1, ..., W_n)`` along the outputs is again a Spense weight when every
``W_i`` has a column region (``axis="cols"``) over the *same* input columns: its 2:4 values, metadata,
dense columns and FP8 scales are all stored per output row, so they concatenate, and

    y = x W^T = [x W_1^T | ... | x W_n^T].

One kernel launch then covers all of them, with one grid of ``sum(N_i) / 16`` row tiles instead of n
small ones (the 1024-row k/v projections of Qwen3-8B fill only 64 of 132 SMs alone).  The members keep
their names and hold row views of the fused buffers, so no byte is added; after
:meth:`SpenseLinear.compact` of the fused layer only its kernel layout remains.

:func:`fuse_fp8_rows` does the same for :class:`~spense.runtime.fp8.Fp8Linear` layers (the FP8 dense
baseline): weight rows and their per-row scales concatenate, ``W = cat(W_i)``, ``s = cat(s_i)``.
:func:`fuse_group` tries both.
"""

from __future__ import annotations

import torch

from spense.errors import InputError
from spense.format import PackedSpense, SpenseLayout
from spense.runtime.fp8 import Fp8Linear
from spense.runtime.linear import SpenseLinear


def _compatible(a: SpenseLinear, m: SpenseLinear) -> bool:
    la, lm = a.layout, m.layout
    return (m._kernel is None and not m._fused and lm.axis == "cols" and lm.shape[1] == la.shape[1]
            and lm.block == la.block and torch.equal(lm.dense_idx, la.dense_idx)
            and m.values.dtype == a.values.dtype and m.values.device == a.values.device
            and (m.scale is None) == (a.scale is None) and (m.bias is None) == (a.bias is None)
            and m.backend == a.backend)


def _members_as_views(fused, lins, bufs):
    """Point each member's buffers ``bufs`` (and bias) at its rows of ``fused``: no extra bytes."""
    o = 0
    for m in lins:
        n = m.out_features
        for b in bufs:
            setattr(m, b, getattr(fused, b)[o:o + n])
        if fused.bias is not None:
            m.bias.data = fused.bias.data[o:o + n]
        m._fused = True
        o += n
    fused._members = list(lins)
    return fused


def fuse_rows(lins) -> SpenseLinear | None:
    """One :class:`SpenseLinear` computing ``cat(y_i)`` for the layers ``lins`` (module doc), or None
    when they are not all uncompacted column-region Spense layers over the same dense columns."""
    lins = tuple(lins)
    if not lins or not all(isinstance(m, SpenseLinear) for m in lins):
        return None
    a = lins[0]
    if a.layout.axis != "cols" or not all(_compatible(a, m) for m in lins):
        return None
    N, K = sum(m.out_features for m in lins), a.in_features
    bufs = ("values", "meta", "dense") + (("scale",) if a.scale is not None else ())
    cat = {b: torch.cat([getattr(m, b) for m in lins]) for b in bufs}
    lay = SpenseLayout((N, K), "cols", a.layout.dense_idx, block=a.layout.block)
    bias = torch.cat([m.bias.data for m in lins]) if a.bias is not None else None
    fused = SpenseLinear(PackedSpense(lay, cat["values"], cat["meta"], cat["dense"], cat.get("scale")), bias,
                         backend=a.backend, name="+".join(m.name for m in lins))
    return _members_as_views(fused, lins, bufs)


def fuse_fp8_rows(lins) -> Fp8Linear | None:
    """One :class:`Fp8Linear` computing ``cat(y_i)`` for FP8 layers that read the same input (same
    input width, device, output dtype, kernel choice and bias presence), or None.  The members hold
    row views of the fused weight and scales."""
    lins = tuple(lins)
    if not lins or not all(type(m) is Fp8Linear and not getattr(m, "_fused", False) for m in lins):
        return None
    a = lins[0]
    if any(m.in_features != a.in_features or m.weight.device != a.weight.device or m.out_dtype != a.out_dtype
           or m.kernel != a.kernel or (m.bias is None) != (a.bias is None) for m in lins):
        return None
    bias = torch.cat([m.bias.data for m in lins]) if a.bias is not None else None
    fused = Fp8Linear(torch.cat([m.weight for m in lins]), torch.cat([m.scale for m in lins]), bias,
                      out_dtype=a.out_dtype, kernel=a.kernel, name="+".join(m.name for m in lins))
    return _members_as_views(fused, lins, ("weight", "scale"))


def fuse_group(lins):
    """:func:`fuse_rows` or :func:`fuse_fp8_rows`, whichever applies; None if neither."""
    lins = tuple(lins)
    return fuse_rows(lins) or fuse_fp8_rows(lins)


def unfuse_rows(fused) -> None:
    """Give the members back their own forward (their buffers are already row views).  A compacted
    fused Spense layer holds the only copy of the weight, in kernel layout: refused."""
    if getattr(fused, "_kernel", None) is not None:
        raise InputError(f"the fused projection {fused.name} is compacted (its members hold no weight any "
                         f"more); load the model again to change its layers")
    for m in fused._members:
        m._fused = False
    fused._members = []
