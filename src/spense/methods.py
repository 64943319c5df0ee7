"""Pruning methods for one layer: ``prune_layer(W, H, cfg, name)``.

=============  ==============================================================================
method         what it does (the names and their options: :mod:`spense.registry`)
=============  ==============================================================================
dense          weight kept as is, recorded as an all-dense layout
magnitude      N:M mask on ``|W|``, no weight update (``dense_ratio`` must be 0)
wanda          N:M mask on ``|W| · sqrt(diag H)``, no weight update (``dense_ratio`` must be 0)
sparsegpt      OBS sweep, pure N:M (= spense with ``dense_ratio`` 0, which it must be)
spense         dense region chosen by ``strategy`` (``dense_ratio`` of rows/cols) + OBS N:M sweep
unstructured   OBS sweep, unstructured at the same density as spense:
               ``sparsity = 1 - (r + (1 - r) · n / m)``, ``r = dense_ratio``
=============  ==============================================================================

Every result reports the exact ``row_loss_i = ‖(W - Ŵ)_i X‖² / n`` (``= diag(Δ H Δᵀ) / 2``).
``col_loss`` is the OBS loss of each pruned column for OBS methods and the no-update loss
``Σ_i Δ_ij² H_jj / 2`` for magnitude / wanda.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, fields

import torch

from spense.errors import InputError, NumericalError
from spense.format import SpenseLayout
from spense.hessian import check_layer_inputs
from spense.masks import magnitude_scores, nm_prune_mask, wanda_scores
from spense.registry import METHODS, method_spec, validate_config
from spense.selection import restore_rows, select_layout
from spense.solver import PruneResult, obs_prune, reconstruction_row_loss

#: methods whose dense_ratio must be 0 (generated from the registry)
NO_DENSE_METHODS = tuple(n for n, s in METHODS.items() if s.fixed_dense_ratio == 0.0)


def stable_seed(seed: int, name: str) -> int:
    """Deterministic 63-bit seed for ``(seed, layer name)``: first 8 bytes of
    ``sha256(f"{seed}:{name}")`` (independent of Python's hash randomisation)."""
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def check_seed(seed: int, what: str = "seed") -> None:
    """One-line :class:`InputError` unless ``0 <= seed <= 2**63 - 1``: the seeds ``torch.Generator.manual_seed``
    takes (a larger one failed there with an overflow)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**63 - 1:
        raise InputError(f"{what} must be an integer in 0..2**63-1, got {seed}")


@dataclass
class PruneConfig:
    """Every option of one layer's pruning; which fields a method reads is in :mod:`spense.registry`."""

    method: str = "spense"  # a name of spense.registry.METHODS
    dense_ratio: float = 0.25  # spense only (others: 0); unstructured: sparsity = 1 - density(dense_ratio)
    strategy: str = "salience-cols"  # a name of spense.registry.STRATEGIES
    axis: str | None = None  # for random/first: rows|cols (default cols); implied by the other two
    block: int = 64
    n: int = 2
    m: int = 4
    blocksize: int = 128  # OBS lazy-batch block
    percdamp: float = 0.01
    seed: int = 0
    salience: str = "obs-col"  # salience-cols ranking: "obs-col" (‖W[:,j]‖²/[H⁻¹]_jj), "act" or "obs"
    col_blocks: bool = False  # axis cols: dense columns as whole aligned `block`-wide blocks
    tie_cols: bool = False  # salience-cols: linears reading the same input keep the same dense columns

    def validate(self) -> None:
        """Raise :class:`InputError` with a clear message on any bad option."""
        validate_config(self)  # names, dense-ratio rules, axis, col_blocks
        if not (isinstance(self.n, int) and isinstance(self.m, int) and 0 < self.n < self.m):
            raise InputError(f"N:M pattern must satisfy 0 < n < m, got {self.n}:{self.m}")
        if not isinstance(self.block, int) or self.block <= 0 or self.block % 4 or self.block % self.m:
            raise InputError(f"block must be a positive multiple of 4 and of m={self.m}, got {self.block}")
        if not isinstance(self.blocksize, int) or self.blocksize <= 0:
            raise InputError(f"blocksize must be a positive integer, got {self.blocksize}")
        if not (math.isfinite(float(self.percdamp)) and float(self.percdamp) >= 0.0):
            raise InputError(f"percdamp must be a finite number >= 0, got {self.percdamp}")
        check_seed(self.seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PruneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown prune config keys: {', '.join(unknown)}")
        return cls(**d)


def all_dense_layout(layout: SpenseLayout) -> SpenseLayout:
    """The layout of a weight stored wholly dense (no N:M region): every column dense."""
    n, k = layout.shape
    return SpenseLayout((n, k), axis="cols", dense_idx=torch.arange(k), block=layout.block, n=layout.n, m=layout.m)


@dataclass
class LayerResult:
    weight: torch.Tensor  # pruned (N, K), float32
    layout: SpenseLayout  # dense region (empty for pure 2:4 / unstructured); axis "cols" by default
    row_loss: torch.Tensor  # (N,)  ‖(W - Ŵ)_i X‖² / n
    col_loss: torch.Tensor  # (K,)  OBS loss attributed to each pruned column
    loss: float  # row_loss.sum()
    seconds: float


def _mask_only(W: torch.Tensor, H: torch.Tensor, scores: torch.Tensor, n: int, m: int) -> PruneResult:
    """Apply an N:M mask from ``scores`` without updates; col loss = ``Σ_i Δ_ij² H_jj / 2``."""
    weight = W.masked_fill(nm_prune_mask(scores, n, m), 0.0)
    row_loss = reconstruction_row_loss(W, weight, H)
    col_loss = (W - weight).pow(2).sum(dim=0) * torch.diagonal(H) / 2
    return PruneResult(weight, row_loss, col_loss, float(row_loss.sum()))


def prune_layer(W: torch.Tensor, H: torch.Tensor, cfg: PruneConfig, name: str = "",
                col_scores: torch.Tensor | None = None) -> LayerResult:
    """Prune one ``(N, K)`` weight with Hessian ``H = 2 X Xᵀ / n`` according to ``cfg`` (float32).
    ``col_scores``: ``salience-cols`` column scores chosen by the caller (a tied group's sum)."""
    cfg.validate()
    t0 = time.perf_counter()
    spec = method_spec(cfg.method)
    W, H = check_layer_inputs(W, H, name, cfg.n, None if spec.all_dense_record else cfg.m)
    N, K = W.shape
    obs_kw = dict(n=cfg.n, m=cfg.m, blocksize=cfg.blocksize, percdamp=cfg.percdamp, name=name)
    layout = SpenseLayout((N, K), axis="cols", block=cfg.block, n=cfg.n, m=cfg.m)

    if cfg.method == "dense":
        zero = torch.zeros(N, dtype=torch.float32, device=W.device)
        res = PruneResult(W.clone(), zero, torch.zeros(K, dtype=torch.float32, device=W.device), 0.0)
        layout = all_dense_layout(layout)
    elif cfg.method == "magnitude":
        res = _mask_only(W, H, magnitude_scores(W), cfg.n, cfg.m)
    elif cfg.method == "wanda":
        res = _mask_only(W, H, wanda_scores(W, H), cfg.n, cfg.m)
    elif cfg.method == "sparsegpt":
        res = obs_prune(W, H, **obs_kw)
    elif cfg.method == "unstructured":
        r = float(cfg.dense_ratio)
        res = obs_prune(W, H, sparsity=1.0 - (r + (1.0 - r) * cfg.n / cfg.m), **obs_kw)
    else:  # spense
        layout, trial = select_layout(
            W, H, cfg.strategy, cfg.dense_ratio, axis=cfg.axis, block=cfg.block, salience=cfg.salience,
            col_blocks=cfg.col_blocks, seed=stable_seed(cfg.seed, name), scores=col_scores, **obs_kw,
        )
        if cfg.strategy == "loss-rows" and trial is not None:
            res = restore_rows(trial, W, H, layout)  # rows are independent: no second pass
        else:
            res = obs_prune(W, H, layout=layout, **obs_kw)

    weight = res.weight
    if not bool(torch.isfinite(weight).all()):
        raise NumericalError(f"layer {name!r}: pruned weight contains NaN/Inf; try a larger --percdamp")
    if cfg.method != "unstructured":
        layout.check_weight(weight)  # raises FormatError; never skipped (not an `assert`)
    return LayerResult(
        weight=weight,
        layout=layout,
        row_loss=res.row_loss,
        col_loss=res.col_loss,
        loss=res.loss,
        seconds=time.perf_counter() - t0,
    )
