"""The layer-wise Hessian ``H = 2 X Xᵀ / n`` and its preparation for the OBS sweep.

``X`` is ``(K, n)``: one column per calibration token entering the layer, ``n`` = tokens seen.  With
this normalisation ``½ Δ H Δᵀ = ‖Δ X‖² / n``: the per-token squared reconstruction error of a weight
change ``Δ`` summed over outputs.  Everything is float32.
"""

from __future__ import annotations

import torch

from spense.errors import FormatError, NumericalError

_HINT = "use more calibration samples or a larger --percdamp"


def where(name: str) -> str:
    """How messages name a layer: ``layer 'model.layers.0.mlp.up_proj'`` (or just ``layer``)."""
    return f"layer {name!r}" if name else "layer"


def check_layer_inputs(
    W: torch.Tensor, H: torch.Tensor, name: str = "", n: int | None = None, m: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one input check of a layer problem: ``(W, H)`` as float32 (``H`` on ``W``'s device).

    ``W`` must be 2-D ``(N, K)``, ``H`` ``(K, K)``, both finite; with ``m`` given, ``K`` must be a
    multiple of ``m`` (``n:m`` sparsity).  :class:`FormatError` / :class:`NumericalError` name the layer.
    """
    W0 = W.detach().float()
    H0 = H.detach().float().to(W0.device)
    if W0.dim() != 2:
        raise FormatError(f"{where(name)}: weight must be 2-D, got shape {tuple(W.shape)}")
    N, K = W0.shape
    if tuple(H0.shape) != (K, K):
        raise FormatError(f"{where(name)}: Hessian shape {tuple(H0.shape)} does not match weight {(N, K)}")
    if not bool(torch.isfinite(W0).all()):
        raise NumericalError(f"{where(name)}: weight contains NaN/Inf")
    if not bool(torch.isfinite(H0).all()):
        raise NumericalError(f"{where(name)}: Hessian contains NaN/Inf (NaN/Inf activations?)")
    if m is not None and K % m:
        raise FormatError(f"{where(name)}: in_features {K} is not a multiple of {m} ({n}:{m} sparsity)")
    return W0, H0


def accumulate_hessian(
    H: torch.Tensor | None, n: int, x: torch.Tensor, name: str = ""
) -> tuple[torch.Tensor, int]:
    """One streaming update of ``H = 2/n Σ_t x_t x_tᵀ``; returns ``(H', n')`` and leaves ``H`` alone.

    ``x`` is ``(..., K)``; its leading dims are flattened into ``b`` token rows ``X_b`` (``(b, K)``).
    With ``H`` the mean over the first ``n`` tokens::

        n' = n + b
        H' = H · n / n' + (2 / n') · X_bᵀ X_b

    so ``H'`` equals ``2/n' · Σ`` over all ``n'`` tokens exactly (up to float32 rounding).
    ``H = None`` starts from zero.  Raises :class:`NumericalError` on NaN/Inf in ``x``.
    """
    K = x.shape[-1]
    X = x.detach().reshape(-1, K).float()
    if H is None:
        H = torch.zeros(K, K, dtype=torch.float32, device=X.device)
    if H.shape != (K, K):
        raise FormatError(f"{where(name)}: activation width {K} does not match Hessian {tuple(H.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise NumericalError(f"{where(name)}: activations contain NaN/Inf")
    b = X.shape[0]
    if b == 0:
        return H, n
    X = X.to(H.device)
    n_new = n + b
    return torch.addmm(H, X.T, X, beta=n / n_new, alpha=2.0 / n_new), n_new


class HessianAccumulator:
    """Streaming ``H = 2/n Σ x xᵀ`` for one Linear (``K = in_features``), float32."""

    def __init__(self, in_features: int, name: str = "", device=None) -> None:
        self.name = name
        self.H = torch.zeros(in_features, in_features, dtype=torch.float32, device=device)
        self.n = 0

    def add(self, x: torch.Tensor) -> None:
        """Add the tokens of ``x`` (``(..., K)``); NaN/Inf raise :class:`NumericalError` naming the layer."""
        self.H, self.n = accumulate_hessian(self.H, self.n, x, self.name)


def dead_inputs(H: torch.Tensor) -> torch.Tensor:
    """Boolean ``(K,)``: inputs that never fired during calibration (``H_jj == 0``)."""
    return torch.diagonal(H) == 0


def prepare_hessian(
    H: torch.Tensor, W: torch.Tensor, percdamp: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dead-input handling and damping, as SparseGPT does; returns ``(H_damped, W', dead)``.

    For every dead input ``j`` (``H_jj = 0``, so row/column ``j`` of ``H`` is zero): ``H_jj := 1`` and
    ``W'[:, j] := 0`` (the weight never mattered on the calibration data).  Then::

        H_damped = H + λ I,   λ = percdamp · mean(diag H)

    Neither input is modified.
    """
    H = H.detach().float().clone()
    W = W.detach().float().clone()
    dead = dead_inputs(H)
    if bool(dead.any()):
        H[dead, dead] = 1.0
        W[:, dead] = 0.0
    lam = float(percdamp) * float(torch.diagonal(H).mean()) if H.numel() else 0.0
    H.diagonal().add_(lam)
    return H, W, dead


def inverse_cholesky(H: torch.Tensor, name: str = "", percdamp: float = 0.01, retries: int = 3) -> torch.Tensor:
    """Upper Cholesky factor ``U`` of ``H⁻¹`` (``H⁻¹ = Uᵀ U``), the matrix the OBS sweep works with.

    ``H`` should already be damped (:func:`prepare_hessian`).  If ``H`` (or ``H⁻¹``) is not
    numerically positive definite, retry with extra damping ``H + percdamp · 10^k · mean(diag H) · I``
    for ``k = 1..retries`` (``percdamp = 0`` retries with 0.01); if that still fails raise
    :class:`NumericalError` naming the layer.
    """
    H = H.detach().float()
    if not bool(torch.isfinite(H).all()):
        raise NumericalError(f"{where(name)}: Hessian contains NaN/Inf")
    K = H.shape[0]
    eye = torch.eye(K, dtype=H.dtype, device=H.device)
    base = (float(percdamp) if percdamp > 0 else 0.01) * abs(float(torch.diagonal(H).mean()))
    for k in range(retries + 1):
        Hk = H if k == 0 else H + (base * 10**k) * eye
        L, info = torch.linalg.cholesky_ex(Hk)
        if int(info) != 0:
            continue
        U, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(L), upper=True)
        if int(info) == 0 and bool(torch.isfinite(U).all()):
            return U
    raise NumericalError(
        f"{where(name)}: Hessian is not positive definite even after {retries} extra damping "
        f"steps (up to {base * 10**retries:.3g} added to the diagonal); {_HINT}"
    )
