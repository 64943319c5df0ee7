"""Projections that read the same input (q/k/v, gate/up) as one Spense layer.

:func:`fuse_rows`: ``W = cat(W_1, ..., W_n)`` along the outputs is again a Spense weight when every
``W_i`` has a column region (``axis="cols"``) over the *same* input columns: its 2:4 values, metadata,
dense columns and FP8 scales are all stored per output row, so they concatenate, and

    y = x W^T = [x W_1^T | ... | x W_n^T].

One kernel launch then covers all of them, with one grid of ``sum(N_i) / 16`` row tiles instead of n
small ones (the 1024-row k/v projections of Qwen3-8B fill only 64 of 132 SMs alone).  The members keep
their names and hold row views of the fused buffers, so no byte is added; after
:meth:`SpenseLinear.compact` of the fused layer only its kernel layout remains.
"""

from __future__ import annotations

import torch

from spense.errors import InputError
from spense.format import PackedSpense, SpenseLayout
from spense.runtime.linear import SpenseLinear


def _compatible(a: SpenseLinear, m: SpenseLinear) -> bool:
    la, lm = a.layout, m.layout
    return (m._kernel is None and not m._fused and lm.axis == "cols" and lm.shape[1] == la.shape[1]
            and lm.block == la.block and torch.equal(lm.dense_idx, la.dense_idx)
            and m.values.dtype == a.values.dtype and m.values.device == a.values.device
            and (m.scale is None) == (a.scale is None) and (m.bias is None) == (a.bias is None)
            and m.backend == a.backend)


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
    o = 0
    for m in lins:  # row views of the fused buffers: no extra bytes
        n = m.out_features
        for b in bufs:
            setattr(m, b, getattr(fused, b)[o:o + n])
        if bias is not None:
            m.bias.data = fused.bias.data[o:o + n]
        m._fused = True
        o += n
    fused._members = list(lins)
    return fused


def unfuse_rows(fused: SpenseLinear) -> None:
    """Give the members back their own forward (their buffers are already row views).  A compacted
    fused layer holds the only copy of the weight, in kernel layout: refused."""
    if fused._kernel is not None:
        raise InputError(f"the fused projection {fused.name} is compacted (its members hold no weight any "
                         f"more); load the model again to change its layers")
    for m in fused._members:
        m._fused = False
    fused._members = []
