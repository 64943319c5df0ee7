"""Fast Spense conversion of a loaded engine model (benchmarks; accuracy is not the point here).

:func:`magnitude_spense`: dense region = the ``block``-aligned rows (``axis="rows"``) or whole
aligned ``block``-column blocks (``axis="cols"``) of largest L2 norm, magnitude 2:4 elsewhere:
``keep(i) = |w_i|`` among the 2 largest of its aligned group of 4.  :func:`sparsify` swaps every block
linear of the model for a :class:`~spense.runtime.SpenseLinear` (compacted on CUDA).
"""

from __future__ import annotations

import torch
from torch import nn

from spense.engine.model import MLP, Attention, Transformer
from spense.format import SpenseLayout, dense_count, pack
from spense.masks import nm_prune_mask
from spense.runtime.xops import env_flag
from spense.selection import top_blocks, top_indices

LINEAR_NAMES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def block_linears(m: Transformer) -> dict[str, nn.Module]:
    """``{full name: module}`` of the seven linears of every block."""
    return {f"model.layers.{i}.{n}": blk.get_submodule(n) for i, blk in enumerate(m.model.layers)
            for n in LINEAR_NAMES}


# linears that read the same input: with ``tie`` their column regions are chosen together, so that the
# engine runs each group as one Spense kernel (spense.runtime.fuse)
TIED_GROUPS = (tuple(f"self_attn.{n}" for n in Attention.FUSED), tuple(f"mlp.{n}" for n in MLP.FUSED))


@torch.no_grad()
def magnitude_spense(w: torch.Tensor, ratio: float, axis: str = "cols", block: int = 64,
                     score: torch.Tensor | None = None) -> tuple[torch.Tensor, SpenseLayout]:
    """``(dense-with-zeros weight, layout)`` of the fast pruning of one ``(N, K)`` weight.  ``score``:
    the per-column (``cols``) or per-row score that picks the region (default ``‖w_:,j‖²`` / ``‖w_i,:‖²``;
    a group of linears sharing their input passes the sum of their column scores)."""
    N, K = w.shape
    dim = K if axis == "cols" else N
    d = dense_count(dim, ratio, block)
    if d:
        if score is None:
            score = w.float().pow(2).sum(dim=0 if axis == "cols" else 1)
        idx = top_blocks(score, d, block) if axis == "cols" and d < dim else top_indices(score, d)
    else:
        idx = torch.zeros(0, dtype=torch.long)
    lay = SpenseLayout((N, K), axis=axis, dense_idx=idx.cpu(), block=block)
    lay.validate()
    s, dn = lay.split(w)
    if s.numel():
        s = s.masked_fill(nm_prune_mask(s.float().abs(), 2, 4), 0)
    return lay.merge(s, dn).to(w.dtype), lay


@torch.no_grad()
def whole_layer_names(m: Transformer, share: float) -> list[str]:
    """The linears of the first ``k = ⌊share · L⌋`` decoder layers (the whole-layer alternative to a
    dense region at the same dense share: those layers stay dense, the rest is pruned 2:4)."""
    k = int(share * len(m.model.layers) + 1e-9)
    return [n for n in block_linears(m) if int(n.split(".")[2]) < k]


def _tied_scores(m: Transformer, names: list[str]) -> dict[str, torch.Tensor]:
    """``{name: summed column score of its group}`` for the members of :data:`TIED_GROUPS` in ``names``."""
    out = {}
    for i in range(len(m.model.layers)):
        for group in TIED_GROUPS:
            full = [f"model.layers.{i}.{n}" for n in group]
            if all(n in names for n in full):
                score = sum(m.get_submodule(n).weight.detach().float().pow(2).sum(dim=0) for n in full)
                out.update({n: score for n in full})
    return out


@torch.no_grad()
def sparsify(m: Transformer, ratio: float, axis: str = "cols", block: int = 64, fp8: bool = False,
             backend: str = "auto", keep: frozenset[str] | set[str] = frozenset(), tie: bool = True) -> Transformer:
    """Replace every block linear of ``m`` but those in ``keep`` by a SpenseLinear of its fast
    pruning (in place).  ``tie`` (cols): q/k/v and gate/up get the same dense columns (chosen by their
    summed column score) and are fused into one Spense layer each; then every layer is compacted."""
    from spense.engine.load import _mount, compact_all
    from spense.runtime.linear import SpenseLinear

    names = [n for n in block_linears(m) if n not in keep]
    tied = _tied_scores(m, names) if tie and axis == "cols" else {}
    for name in names:  # one layer at a time: the dense original is freed as soon as it is swapped
        lin = m.get_submodule(name)
        w, lay = magnitude_spense(lin.weight.detach(), ratio, axis, block, tied.get(name))
        new = SpenseLinear(pack(w.contiguous(), lay, fp8=fp8), lin.bias, backend=backend, name=name)
        del w, lin
        _mount(m, name, new)
        if new.values.device.type == "cuda" and name not in tied:  # compacted once fused, below
            new.compact()
    del tied
    if tie:
        m.fuse_projections()
    compact_all(m)
    return m


@torch.no_grad()
def fp8_dense(m: Transformer, kernel: str = "auto", tune_ms=(), names=None) -> Transformer:
    """Replace every block linear of ``m`` by ``Fp8Linear.from_linear(lin, kernel=kernel)`` (the FP8
    dense baseline: e4m3 weights, per-channel scales, fastest kernel per shape/M bucket) and fix each
    layer's kernel for the M of ``tune_ms`` now (``layer.tune``: before any compile / graph capture).
    One layer at a time, each original freed once swapped: the peak is the model as given plus one layer
    (holding every original to the end ran the 32B shape's 64 layers out of an 80 GB GPU)."""
    from spense.engine.load import _mount
    from spense.runtime.fp8 import Fp8Linear

    for name in [n for n in block_linears(m) if names is None or n in names]:
        lin = m.get_submodule(name)
        new = Fp8Linear.from_linear(lin, kernel=kernel, name=name)
        del lin
        _mount(m, name, new)
        if tune_ms:
            new.tune(ms=tuple(tune_ms))
    return m


def fp8_lm_head_on() -> bool:
    """``SPENSE_FP8_LM_HEAD`` (default ``0``; ``1``: on): the FP8 models of a benchmark (dense FP8, Spense FP8
    and whole-layer FP8 alike) also take their lm_head in e4m3 (:func:`fp8_lm_head`).  Off by default: it changes
    the logits, and the sampled tokens with them."""
    return env_flag("SPENSE_FP8_LM_HEAD", False)


@torch.no_grad()
def fp8_lm_head(m: Transformer, tune_ms=()) -> Transformer:
    """Replace ``m.lm_head`` by ``Fp8Linear.from_linear`` (e4m3 weight, per-row scales: the FP8 dense baseline's
    kernels), its kernel per M bucket of ``tune_ms`` fixed now.  A tied lm_head gets its own e4m3 copy (the
    embedding table stays as it is)."""
    from spense.runtime.fp8 import Fp8Linear

    m.lm_head = Fp8Linear.from_linear(m.lm_head, name="lm_head")
    if tune_ms:
        m.lm_head.tune(ms=tuple(tune_ms))
    return m
