"""Dense-region strategies: which rows / columns of a weight stay dense.

Every strategy returns a :class:`~spense.format.SpenseLayout` with
``d = dense_count(axis_dim, ratio, block)`` sorted indices:

* ``loss-rows`` (axis rows): run a trial pure N:M OBS pass and keep dense the ``d`` output rows with
  the highest exact reconstruction loss ``row_loss_i = ‖(W - Ŵ)_i X‖² / n``.  OBS treats rows
  independently, so the final Spense result is the trial with the dense rows restored to ``W``
  (:func:`restore_rows`); no second pass is needed.
* ``salience-cols`` (axis cols): keep dense the ``d`` input columns with the highest salience,
  ``"obs-col"`` (default): ``s_j = ‖W[:, j]‖² / [H⁻¹]_jj`` (the OBS cost, ×2, of removing column
  ``j`` from every row *with* optimal compensation by the other columns), ``"act"``:
  ``s_j = H_jj · ‖W[:, j]‖²`` (the same cost without compensation), or ``"obs"``: ``s_j`` = OBS loss
  of column ``j`` in a trial pure N:M pass.  Measured in docs/results.md: ``obs-col`` gives the lowest
  final layer loss, ``act`` next, ``obs`` ranks no better than random columns.
* ``random`` / ``first`` (ablations, axis given, default cols): ``d`` indices drawn with a seeded
  ``torch.Generator`` / the first ``d`` indices.

``col_blocks=True`` (axis cols only): the dense columns are whole aligned ``block``-wide blocks
(``salience-cols``: the blocks of largest summed salience; ``random``: random blocks); with ``block``
a multiple of 64 the GPU runtime's decode kernel reads them without gathering its inputs
(docs/runtime.md).
"""

from __future__ import annotations

import torch

from spense.errors import InputError
from spense.format import DEFAULT_BLOCK, SpenseLayout, dense_count
from spense.hessian import inverse_cholesky, prepare_hessian
from spense.registry import SALIENCES, STRATEGIES, strategy_axis  # noqa: F401  (the one vocabulary)
from spense.solver import PruneResult, obs_prune, reconstruction_row_loss

def top_indices(scores: torch.Tensor, d: int) -> torch.Tensor:
    """Sorted indices of the ``d`` largest scores (ties: the earlier index wins)."""
    order = torch.sort(scores.float().cpu(), descending=True, stable=True).indices
    return torch.sort(order[:d]).values


def block_indices(blocks: torch.Tensor, block: int) -> torch.Tensor:
    """All indices of the given (sorted) ``block``-aligned blocks: ``b*block + 0..block-1``."""
    return (blocks.long()[:, None] * block + torch.arange(block)).reshape(-1)


def top_blocks(scores: torch.Tensor, d: int, block: int) -> torch.Tensor:
    """Sorted indices of the ``d // block`` whole aligned ``block``-wide blocks with the largest
    summed score ``Σ_{j in block} s_j`` (only full blocks are candidates)."""
    nb = scores.numel() // block
    bscore = scores.float().cpu()[: nb * block].reshape(nb, block).sum(dim=1)
    return block_indices(top_indices(bscore, d // block), block)


def act_salience(W: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``s_j = H_jj · ‖W[:, j]‖²`` (``(K,)``)."""
    return torch.diagonal(H).float() * W.float().pow(2).sum(dim=0)


def obs_col_salience(W: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01, name: str = "") -> torch.Tensor:
    """``s_j = ‖W[:, j]‖² / [H⁻¹]_jj`` (``(K,)``) with ``H`` damped as the sweep damps it.

    OBS (Hassibi & Stork) removes one weight ``w_q`` at cost ``w_q² / (2 [H⁻¹]_qq)`` after the
    optimal update of the others; rows are independent, so removing input column ``j`` from all rows
    costs ``s_j / 2``.  Dead inputs (``H_jj = 0``) score 0.  ``[H⁻¹]_jj`` = squared column norm of the
    Cholesky factor ``U`` of ``H⁻¹ = UᵀU``.
    """
    Hd, W2, _ = prepare_hessian(H, W, percdamp)
    U = inverse_cholesky(Hd, name, percdamp)
    return W2.pow(2).sum(dim=0) / U.pow(2).sum(dim=0)


def column_salience(W: torch.Tensor, H: torch.Tensor, salience: str = "obs-col", percdamp: float = 0.01,
                    name: str = "") -> torch.Tensor:
    """Per-column salience without a trial pass: ``"obs-col"`` (:func:`obs_col_salience`) or ``"act"``
    (:func:`act_salience`).  Both are sums over output rows, so for linears that read the same input
    (one ``H``) the sum of their saliences is the salience of the stacked weight ``[W_1; W_2; ...]``."""
    if salience == "obs-col":
        return obs_col_salience(W, H, percdamp, name)
    if salience == "act":
        return act_salience(W, H)
    raise InputError(f"column_salience: {salience!r} needs a trial pass; use 'obs-col' or 'act'")


def trial_prune(W: torch.Tensor, H: torch.Tensor, *, n: int = 2, m: int = 4, blocksize: int = 128,
                percdamp: float = 0.01, name: str = "") -> PruneResult:
    """Pure N:M OBS pass (no dense region) with per-entry losses, used for ranking: ``entry_loss[i, j] =
    (w_ij - q_ij)² / U_jj² / 2`` as the sweep meets column ``j`` (:mod:`spense.solver`; 0 where kept)."""
    return obs_prune(W, H, n=n, m=m, blocksize=blocksize, percdamp=percdamp, name=name,
                     return_entry_loss=True)


def restore_rows(trial: PruneResult, W: torch.Tensor, H: torch.Tensor, layout: SpenseLayout) -> PruneResult:
    """Final ``loss-rows`` result from the trial: dense rows set back to ``W`` (rows are independent
    in OBS, so this equals a pass that never swept them); losses recomputed for the sparse rows."""
    W0 = W.detach().float()
    didx = layout.dense_idx.to(W0.device)
    weight = trial.weight.clone()
    weight[didx] = W0[didx]
    row_loss = reconstruction_row_loss(W0, weight, H.to(W0.device))
    if trial.entry_loss is None:
        raise ValueError("restore_rows needs a trial with entry_loss (use trial_prune)")
    entry = trial.entry_loss.clone()
    entry[didx] = 0.0
    return PruneResult(weight, row_loss, entry.sum(dim=0), float(row_loss.sum()), entry)


def select_layout(
    W: torch.Tensor,
    H: torch.Tensor,
    strategy: str,
    ratio: float,
    *,
    axis: str | None = None,
    block: int = DEFAULT_BLOCK,
    salience: str = "obs-col",
    col_blocks: bool = False,
    seed: int = 0,
    n: int = 2,
    m: int = 4,
    blocksize: int = 128,
    percdamp: float = 0.01,
    name: str = "",
    trial: PruneResult | None = None,
    scores: torch.Tensor | None = None,
) -> tuple[SpenseLayout, PruneResult | None]:
    """Dense region for ``W`` by ``strategy``; returns ``(layout, trial)``.

    ``trial`` is the pure N:M OBS pass used for ranking (``loss-rows``, ``salience-cols`` with
    ``"obs"``), computed here unless given, else ``None``.  ``seed`` drives ``random`` only (pass the
    per-layer :func:`spense.methods.stable_seed`).  ``col_blocks``: dense columns as whole aligned
    ``block``-wide blocks (ignored for axis rows).  ``scores``: ``salience-cols`` column scores given
    by the caller (e.g. :func:`column_salience` summed over linears that share their input, so that
    they keep the same dense columns).
    """
    ax = strategy_axis(strategy, axis)
    if salience not in SALIENCES:
        raise InputError(f"unknown salience {salience!r}; choose one of {', '.join(SALIENCES)}")
    N, K = W.shape
    dim = N if ax == "rows" else K
    d = dense_count(dim, ratio, block)

    def layout(idx: torch.Tensor) -> SpenseLayout:
        return SpenseLayout((N, K), axis=ax, dense_idx=idx, block=block, n=n, m=m)

    if d == 0 or d == dim:
        return layout(torch.arange(d)), trial
    needs_trial = strategy == "loss-rows" or (strategy == "salience-cols" and salience == "obs")
    if needs_trial and trial is None:
        trial = trial_prune(W, H, n=n, m=m, blocksize=blocksize, percdamp=percdamp, name=name)
    blocks = col_blocks and ax == "cols"  # d is a multiple of block (dense_count)
    if strategy == "loss-rows":
        idx = top_indices(trial.row_loss, d)
    elif strategy == "salience-cols":
        if scores is None:
            scores = trial.col_loss if salience == "obs" else column_salience(W, H, salience, percdamp, name)
        idx = top_blocks(scores, d, block) if blocks else top_indices(scores, d)
    elif strategy == "random":
        g = torch.Generator().manual_seed(int(seed))
        if blocks:
            idx = block_indices(torch.sort(torch.randperm(dim // block, generator=g)[: d // block]).values, block)
        else:
            idx = torch.sort(torch.randperm(dim, generator=g)[:d]).values
    else:  # first
        idx = torch.arange(d)
    return layout(idx), trial
