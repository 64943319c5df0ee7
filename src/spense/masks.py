"""Pure mask selection: N:M and unstructured prune masks from scores, magnitude and Wanda scores.

Every mask returned here is a **prune mask**: ``True`` marks an entry that is set to zero.  Scores are
"importance": the lowest scores are pruned.  Ties are broken by position (the earlier index is
pruned first), so the masks are deterministic.
"""

from __future__ import annotations

import torch

from spense.errors import FormatError, InputError


def nm_prune_mask(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """N:M prune mask along the last dimension.

    The last dim of ``scores`` (size ``K``, a multiple of ``m``) is cut into aligned groups
    ``g = [m*j, m*j + m)``; in every group the ``m - n`` entries with the lowest score are pruned, so
    at most ``n`` of every ``m`` survive::

        mask[..., g] = True  on  argsort(scores[..., g])[: m - n]
    """
    if not 0 <= n <= m or m <= 0:
        raise FormatError(f"invalid N:M pattern {n}:{m}")
    K = scores.shape[-1]
    if K % m:
        raise FormatError(f"last dimension {K} is not a multiple of {m} (needed for {n}:{m} sparsity)")
    groups = scores.reshape(*scores.shape[:-1], K // m, m)
    mask = torch.zeros(groups.shape, dtype=torch.bool, device=scores.device)
    if m - n:
        # stable ascending sort: among equal scores the earlier position is pruned first
        idx = torch.sort(groups, dim=-1, stable=True).indices[..., : m - n]
        mask.scatter_(-1, idx, True)
    return mask.reshape(scores.shape)


def _check_sparsity(sparsity: float) -> float:
    s = float(sparsity)
    if not 0.0 <= s <= 1.0:
        raise InputError(f"sparsity must be in [0, 1], got {sparsity}")
    return s


def unstructured_prune_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Per-row unstructured prune mask: in every row (last dim, size ``K``) prune the
    ``k = round(sparsity * K)`` entries with the lowest score."""
    s = _check_sparsity(sparsity)
    K = scores.shape[-1]
    k = int(round(s * K))
    mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if k:
        idx = torch.sort(scores, dim=-1, stable=True).indices[..., :k]
        mask.scatter_(-1, idx, True)
    return mask


def global_prune_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Unstructured prune mask with one threshold over the whole tensor: prune exactly the
    ``k = round(sparsity * numel)`` lowest scores (SparseGPT applies this per lazy-batch block)."""
    s = _check_sparsity(sparsity)
    flat = scores.reshape(-1)
    k = int(round(s * flat.numel()))
    mask = torch.zeros(flat.shape, dtype=torch.bool, device=scores.device)
    if k:
        mask[torch.sort(flat, stable=True).indices[:k]] = True
    return mask.reshape(scores.shape)


def magnitude_scores(W: torch.Tensor) -> torch.Tensor:
    """Magnitude pruning score ``S_ij = |W_ij|``."""
    return W.abs()


def wanda_scores(W: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Wanda score ``S_ij = |W_ij| * sqrt(H_jj)``.

    With ``H = 2 X Xᵀ / n`` (``X`` = inputs, one column per token) ``sqrt(H_jj) = sqrt(2/n) ‖X_j‖``,
    so this is Wanda's ``|W_ij| · ‖X_j‖₂`` up to a constant factor, which does not change any mask.
    """
    if H.shape != (W.shape[-1], W.shape[-1]):
        raise FormatError(f"Hessian shape {tuple(H.shape)} does not match weight {tuple(W.shape)}")
    return W.abs() * torch.diagonal(H).clamp_min(0).sqrt().to(W.dtype)
