"""The OBS column sweep of SparseGPT (Frantar & Alistarh 2023, Alg. 1), extended with a dense region.

Notation: ``W`` is ``(N, K)``, ``H = 2 X Xᵀ / n`` (``K × K``), ``U`` the upper Cholesky factor of the
damped ``H⁻¹`` (``H⁻¹ = Uᵀ U``).  Columns are processed left to right.  At column ``j`` with current
weights ``w = W[:, j]`` and prune decision ``q`` (``q = 0`` where pruned, ``w`` elsewhere)::

    e         = (w - q) / U_jj                    # scaled error
    W[:, j:] -= e ⊗ U[j, j:]                      # OBS update of the not yet processed columns
    loss_j    = Σ_rows (w - q)² / U_jj² / 2       # OBS loss of the column

Masks are chosen from the saliency ``w² / U_jj²``: for N:M, for each aligned group of ``m`` columns
when the sweep reaches its first column (``j % m == 0``); for unstructured, once per lazy batch of
``blocksize`` columns by one threshold over the batch.  Updates inside a batch are applied
immediately; the rest of the matrix receives them in one GEMM at the end of the batch ("lazy batch").

Dense region (:class:`~spense.format.SpenseLayout`):

* ``axis="rows"``: OBS treats rows independently, so dense rows are simply not swept: they stay
  exactly ``W``.
* ``axis="cols"``: ``W`` and ``H`` are permuted so the sparse columns come first (in their original
  order, so the N:M groups are the groups of :meth:`SpenseLayout.split`'s sparse region) and the
  dense ones last; only the first ``K - d`` columns are swept and pruned, and the dense columns
  receive the OBS updates of every pruned column.  The result is permuted back.

The reported ``row_loss`` is exact: ``diag(Δ H Δᵀ) / 2 = ‖Δ_i X‖² / n`` with the *undamped* ``H`` and
``Δ = W - Ŵ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

import torch

from spense import sweep_graphs
from spense.errors import FormatError, NumericalError
from spense.format import SpenseLayout
from spense.hessian import check_layer_inputs, inverse_cholesky, prepare_hessian, where
from spense.masks import global_prune_mask, nm_prune_mask

MaskFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PruneResult:
    weight: torch.Tensor  # (N, K) float32, pruned
    row_loss: torch.Tensor  # (N,) ‖(W - Ŵ)_i X‖² / n
    col_loss: torch.Tensor  # (K,) OBS loss of each pruned column (0 for never-pruned columns)
    loss: float  # row_loss.sum()
    entry_loss: torch.Tensor | None = None  # (N, K) OBS loss of each entry, if requested


def reconstruction_row_loss(W: torch.Tensor, W_hat: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``max(diag(Δ H Δᵀ) / 2, 0)`` with ``Δ = W - Ŵ``; equals ``‖Δ_i X‖² / n`` for ``H = 2 X Xᵀ / n``.  H is
    positive semidefinite, so the clamp only removes rounding below zero (H of rank one or two: a few tokens)."""
    D = (W.float() - W_hat.float())
    return (((D @ H.float()) * D).sum(dim=1) / 2).clamp_min(0.0)


def sweep_batch(W1: torch.Tensor, U1: torch.Tensor, mask_fn: MaskFn, group: int) -> torch.Tensor:
    """One lazy batch of :func:`obs_sweep`: ``W1`` (``(N, w)``) swept in place with ``U1`` (its
    ``w × w`` block of ``U``), pruned entries set to exact zeros; returns the scaled errors ``E``.

    The mask of a window is fixed when the sweep enters it, so inside a window the error of column
    ``j`` is ``e_j = w_j ⊙ m_j / U_jj`` (``m_j``: pruned entries) and only the window's own later
    columns need the rank-1 update ``w_k −= e_j U_jk`` at once; the rest of the batch gets one
    rank-``group`` update per window, ``W[:, after] −= E_window U[window, after]`` (the same sums,
    fewer and larger operations).
    """
    w = W1.shape[1]
    d = torch.diagonal(U1)
    E = torch.zeros_like(W1)
    step = group or w  # unstructured: one window, the whole lazy batch
    for g0 in range(0, w, step):
        g1 = min(g0 + step, w)
        mask = mask_fn(W1[:, g0:g1] ** 2 / d[g0:g1] ** 2)
        for j in range(g0, g1):
            e = W1[:, j].masked_fill(~mask[:, j - g0], 0.0) / d[j]  # (w − q) / U_jj
            E[:, j] = e
            if j + 1 < g1:
                W1[:, j + 1:g1].addr_(e, U1[j, j + 1:g1], alpha=-1.0)
        W1[:, g0:g1].masked_fill_(mask, 0.0)  # q: exact zeros where pruned
        if g1 < w:
            W1[:, g1:].addmm_(E[:, g0:g1], U1[g0:g1, g1:], alpha=-1.0)
    return E


def obs_sweep(
    W: torch.Tensor,
    U: torch.Tensor,
    n_sweep: int,
    mask_fn: MaskFn,
    group: int,
    blocksize: int = 128,
    mask_key: Hashable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT's sweep over the first ``n_sweep`` columns of ``W`` (modified in place and returned).

    ``U`` is the upper Cholesky factor of ``H⁻¹``.  ``mask_fn`` gets the saliency ``w² / U_jj²`` of a
    mask window and returns its prune mask; the window is ``group`` columns starting at every
    ``j % group == 0`` (N:M) or, with ``group = 0``, the whole lazy batch (unstructured).  Columns
    ``≥ n_sweep`` are never pruned but receive the updates.  Returns ``(W, losses)`` with
    ``losses[:, j] = (w - q)² / U_jj² / 2`` (``(N, n_sweep)``).  Each batch is
    :func:`sweep_batch`; on CUDA, with ``mask_key`` naming the mask rule, batches replay a CUDA graph
    of it (:mod:`spense.sweep_graphs`; bit-identical, without the launch overhead), captured for a
    full batch when the sweep has at least ``sweep_graphs.MIN_BATCHES`` of them.
    """
    N = W.shape[0]
    losses = torch.zeros(N, n_sweep, dtype=W.dtype, device=W.device)

    def batch(W1: torch.Tensor, U1: torch.Tensor) -> torch.Tensor:
        return sweep_batch(W1, U1, mask_fn, group)

    create = n_sweep // blocksize >= sweep_graphs.MIN_BATCHES  # enough full batches to capture one
    for i1 in range(0, n_sweep, blocksize):
        i2 = min(i1 + blocksize, n_sweep)
        W1, U1 = W[:, i1:i2], U[i1:i2, i1:i2]
        graph = None if mask_key is None else \
            sweep_graphs.batch_runner(batch, W1, (mask_key, group), create and i2 - i1 == blocksize)
        if graph is not None:
            W1, E = graph(W1, U1)
        else:
            W1 = W1.clone()
            E = batch(W1, U1)
        losses[:, i1:i2] = E**2 / 2
        W[:, i1:i2] = W1
        W[:, i2:] -= E @ U[i1:i2, i2:]  # lazy update of everything right of the batch
    return W, losses


def obs_prune(
    W: torch.Tensor,
    H: torch.Tensor,
    *,
    n: int = 2,
    m: int = 4,
    sparsity: float | None = None,
    layout: SpenseLayout | None = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
    prune_mask_fn: MaskFn | None = None,
    name: str = "",
    return_entry_loss: bool = False,
) -> PruneResult:
    """OBS-prune ``W`` (``(N, K)``) with Hessian ``H`` (``(K, K)``, undamped); see the module doc.

    ``sparsity=None``: N:M (``n`` kept of every ``m``) in the sparse region.  ``sparsity=s``:
    unstructured, ``round(s · rows · cols)`` entries of every lazy batch pruned by one threshold.
    ``layout``: dense region never pruned (``None`` = no dense region).  ``prune_mask_fn`` replaces
    the default mask rule (``nm_prune_mask(·, n, m)`` / ``global_prune_mask(·, s)``) and receives the
    saliency window described in :func:`obs_sweep`.  All math in float32.
    """
    nm_mode = sparsity is None
    W0, H0 = check_layer_inputs(W, H, name, n, m if nm_mode else None)
    N, K = W0.shape
    if layout is None:
        layout = SpenseLayout((N, K), axis="cols", n=n, m=m)
    if layout.shape != (N, K):
        raise FormatError(f"{where(name)}: layout shape {layout.shape} does not match weight {(N, K)}")
    layout.validate()

    dev = W0.device
    if layout.axis == "rows":
        rows = layout.sparse_idx.to(dev)
        perm = torch.arange(K, device=dev)
        n_sweep = K
    else:
        rows = torch.arange(N, device=dev)
        perm = torch.cat([layout.sparse_idx, layout.dense_idx]).to(dev)
        n_sweep = K - layout.n_dense
    if nm_mode:
        mask_fn = prune_mask_fn or (lambda s: nm_prune_mask(s, n, m))
        mask_key = None if prune_mask_fn else ("nm", n, m)  # the default rules can be graphed
        group, bs = m, -(-int(blocksize) // m) * m  # batches must hold whole groups
    else:
        mask_fn = prune_mask_fn or (lambda s: global_prune_mask(s, sparsity))
        mask_key = None  # eager: its graph failed the GPU bit-identity test (H200, 2026-11-30)
        group, bs = 0, int(blocksize)
    if bs <= 0:
        raise FormatError(f"blocksize must be positive, got {blocksize}")

    weight = W0.clone()
    col_loss = torch.zeros(K, dtype=torch.float32, device=dev)
    entry = torch.zeros(N, K, dtype=torch.float32, device=dev) if return_entry_loss else None
    if n_sweep and rows.numel():
        Wp = W0.index_select(0, rows).index_select(1, perm)
        Hp = H0.index_select(0, perm).index_select(1, perm)
        Hd, Wz, _ = prepare_hessian(Hp, Wp, percdamp)
        Wz[:, n_sweep:] = Wp[:, n_sweep:]  # dense columns start exactly at W, even if dead
        U = inverse_cholesky(Hd, name, percdamp)[:n_sweep]
        Q, L = obs_sweep(Wz, U, n_sweep, mask_fn, group, bs, mask_key)
        if not bool(torch.isfinite(Q).all()):
            raise NumericalError(f"{where(name)}: OBS sweep produced NaN/Inf; try a larger --percdamp")
        Qu = torch.empty_like(Q)
        Qu[:, perm] = Q
        weight.index_copy_(0, rows, Qu)
        col_loss[perm[:n_sweep]] = L.sum(dim=0)
        if entry is not None:
            Lu = torch.zeros_like(Q)
            Lu[:, perm[:n_sweep]] = L
            entry.index_copy_(0, rows, Lu)
    row_loss = reconstruction_row_loss(W0, weight, H0)
    return PruneResult(
        weight=weight,
        row_loss=row_loss,
        col_loss=col_loss,
        loss=float(row_loss.sum()),
        entry_loss=entry,
    )
